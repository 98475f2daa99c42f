//! `.dockerignore`, applied the way `docker build` applies it.
//!
//! Docker reads the file with moby's `ignorefile.ReadAll` and matches with moby's
//! `patternmatcher`; this module follows both step by step:
//!
//! - a line whose first character is `#` is a comment; other lines are trimmed, blank ones
//!   skipped; a UTF-8 byte-order mark at the start of the file is dropped;
//! - a leading `!` makes an exception (it re-includes what earlier lines excluded);
//! - each pattern is cleaned as Go's `filepath.Clean` cleans it and a leading `/` is dropped, so
//!   `/foo`, `./foo` and `foo/` all mean `foo`;
//! - the glob is Go's `filepath.Match` (`*` and `?` stop at `/`, `[...]` classes negated by `^`,
//!   `\` escapes) plus `**`, which matches any number of directories, none included;
//! - a pattern matches a path when it matches the path itself or one of its parent directories;
//!   the last matching line decides;
//! - a directory that is excluded is not entered at all unless the text of some exception starts
//!   with that directory's path (moby's walk: `!**/keep` does not bring back `docs/keep`, while
//!   `!docs/keep` does);
//! - `Dockerfile` and `.dockerignore` are always sent to the builder (the CLI appends `!` lines
//!   for them; the daemon then leaves them out of `COPY` by itself).
//!
//! Like moby, a pattern becomes an exact, prefix or suffix comparison when it can, and a regular
//! expression otherwise; the expression is the one moby builds, read with Go's regexp syntax and
//! re-expressed for the `regex` crate (linear time, so a hostile pattern cannot stall intake).
//!
//! Where Docker would fail the build (a bare `!`, an unterminated `[`, a class range that runs
//! backwards, a line over 64 KiB) the submission is rejected with the line. A few regexp escapes
//! that moby passes through unchecked (`\p{..}`, `\x41`, octal, `\Q..\E`, `\b`) are also refused
//! rather than guessed at; `\d`, `\s`, `\w` and their negations are supported. Real
//! `.dockerignore` files use none of these.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder};

/// Most patterns a `.dockerignore` may hold. Matching costs patterns × entries; real files have
/// a few dozen lines.
pub const MAX_PATTERNS: usize = 1000;
/// Largest `.dockerignore` read.
pub const MAX_BYTES: u64 = 1 << 20;
/// bufio.Scanner's token limit: Docker fails on a longer line.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regexp(Regex),
}

#[derive(Debug)]
struct Pattern {
    exclusion: bool,
    /// The cleaned pattern text (without `!`), as moby keeps it.
    text: String,
    kind: Kind,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.text[2..];
                path.ends_with(suffix) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            Kind::Regexp(re) => re.is_match(path),
        }
    }
}

/// The rules of one `.dockerignore`.
#[derive(Debug, Default)]
pub struct Dockerignore {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// What becomes of one path of the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sent to the builder.
    Keep,
    /// Left out; for a directory, its entries are still visited (an exception may bring some
    /// back).
    Skip,
    /// A directory left out together with everything below it.
    Prune,
}

/// Per-pattern results of a directory, handed to its entries (moby's `MatchInfo`).
pub type MatchInfo = Vec<bool>;

impl Dockerignore {
    /// Reads a `.dockerignore` file's bytes (moby's `ignorefile.ReadAll`, then
    /// `patternmatcher.New`). The error names the line.
    pub fn parse(bytes: &[u8]) -> Result<Dockerignore, String> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        let mut number = 0usize;
        while !rest.is_empty() {
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = next;
            number += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > MAX_LINE {
                return Err(format!(
                    "line {number} is longer than 64 KiB (Docker cannot read it)"
                ));
            }
            let line = if number == 1 {
                line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
            } else {
                line
            };
            // Not UTF-8 can only come from a line that no UTF-8 path (the only kind accepted)
            // could match anyway.
            let line = String::from_utf8_lossy(line);
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = go_trim(&line).to_string();
            if pattern.is_empty() {
                continue;
            }
            let invert = pattern.starts_with('!');
            if invert {
                pattern = go_trim(&pattern[1..]).to_string();
            }
            if !pattern.is_empty() {
                pattern = go_clean(&pattern);
                if pattern.len() > 1 && pattern.starts_with('/') {
                    pattern.remove(0);
                }
            }
            if invert {
                pattern.insert(0, '!');
            }
            lines.push((number, pattern));
        }
        if lines.len() > MAX_PATTERNS {
            return Err(format!(
                "more than {MAX_PATTERNS} patterns (proctor's limit)"
            ));
        }
        let mut rules = Dockerignore::default();
        for (number, pattern) in lines {
            rules
                .push(&pattern)
                .map_err(|e| format!("line {number}: pattern {pattern:?}: {e}"))?;
        }
        Ok(rules)
    }

    /// Adds one pattern as `patternmatcher.New` does.
    fn push(&mut self, raw: &str) -> Result<(), String> {
        let p = go_trim(raw);
        if p.is_empty() {
            return Ok(());
        }
        let mut p = go_clean(p);
        let exclusion = p.starts_with('!');
        if exclusion {
            if p.len() == 1 {
                return Err("a lone \"!\" is not a pattern (Docker refuses it)".into());
            }
            p.remove(0);
            self.exclusions = true;
        }
        check_glob_syntax(&p)?;
        let kind = compile(&p)?;
        self.patterns.push(Pattern {
            exclusion,
            text: p,
            kind,
        });
        Ok(())
    }

    /// Appends the exceptions the docker CLI adds so that the builder always receives the
    /// Dockerfile and the `.dockerignore` itself (`TrimBuildFilesFromExcludes`).
    pub fn keep_build_files(&mut self) {
        for name in [".dockerignore", "Dockerfile"] {
            if self.matches_or_parent_matches(name) {
                self.push(&format!("!{name}"))
                    .expect("a plain name is a valid pattern");
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// moby's `MatchesOrParentMatches`.
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        self.matches_using_parent(path, None).0
    }

    /// moby's `MatchesUsingParentResults`: whether `path` is excluded, and the per-pattern
    /// results its entries need. `parent` is `None` for an entry of the root.
    pub fn matches_using_parent(&self, path: &str, parent: Option<&[bool]>) -> (bool, MatchInfo) {
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|p| p[i]);
            if !hit {
                // An inclusion cannot change an excluded path, an exception cannot change an
                // included one: moby skips them (and records no match).
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit && parent.is_none() {
                    if let Some((dir, _)) = path.rsplit_once('/') {
                        let mut end = 0;
                        for part in dir.split('/') {
                            end += part.len();
                            if pattern.matches(&dir[..end]) {
                                hit = true;
                                break;
                            }
                            end += 1;
                        }
                    }
                }
            }
            info[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }

    /// What the walk does with `path`, given its parent directory's results.
    pub fn decide(
        &self,
        path: &str,
        is_dir: bool,
        parent: Option<&[bool]>,
    ) -> (Decision, MatchInfo) {
        let (skip, info) = self.matches_using_parent(path, parent);
        let decision = if !skip {
            Decision::Keep
        } else if !is_dir {
            Decision::Skip
        } else if !self.exclusions {
            Decision::Prune
        } else {
            let dir_slash = format!("{path}/");
            let walk_in = self
                .patterns
                .iter()
                .any(|p| p.exclusion && format!("{}/", p.text).starts_with(&dir_slash));
            if walk_in {
                Decision::Skip
            } else {
                Decision::Prune
            }
        };
        (decision, info)
    }
}

/// Applies the rules to a whole set of paths at once (an archive, read before its
/// `.dockerignore` was known). Missing parent directories are treated as directories, as they
/// would be on disk. Returns the paths to keep.
pub fn filter<'a>(
    rules: &Dockerignore,
    paths: impl Iterator<Item = (&'a str, bool)>,
) -> Vec<&'a str> {
    // Results of directories: None when pruned (with everything below).
    let mut dirs: HashMap<String, Option<MatchInfo>> = HashMap::new();
    let mut kept = Vec::new();
    'paths: for (path, is_dir) in paths {
        let mut parent: Option<MatchInfo> = None;
        let mut end = 0;
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            end += part.len();
            let dir = &path[..end];
            end += 1;
            let state = match dirs.get(dir) {
                Some(s) => s.clone(),
                None => {
                    let (d, info) = rules.decide(dir, true, parent.as_deref());
                    let s = (d != Decision::Prune).then_some(info);
                    dirs.insert(dir.to_string(), s.clone());
                    s
                }
            };
            match state {
                None => continue 'paths,
                Some(info) => parent = Some(info),
            }
        }
        let (d, info) = rules.decide(path, is_dir, parent.as_deref());
        if is_dir {
            dirs.insert(path.to_string(), (d != Decision::Prune).then_some(info));
        }
        if d == Decision::Keep {
            kept.push(path);
        }
    }
    kept
}

/// Go's `strings.TrimSpace` (Unicode white space, like `str::trim`).
fn go_trim(s: &str) -> &str {
    s.trim()
}

/// Go's `filepath.Clean` on a Unix system.
pub fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// The syntax check of Go's `filepath.Match` (moby calls it on every pattern first).
fn check_glob_syntax(p: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{why} (Docker refuses the pattern)"));
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return bad("it ends with a lone \\");
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if chars.get(i) == Some(&']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    // getEsc for the low end, then for the high end after '-'.
                    let Some(next) = class_char(&chars, i) else {
                        return bad("a [ class is malformed or not closed");
                    };
                    i = next;
                    if chars.get(i) == Some(&'-') {
                        let Some(next) = class_char(&chars, i + 1) else {
                            return bad("a [ class is malformed or not closed");
                        };
                        i = next;
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `getEsc`: one class character at `i`; the index after it, or None on a syntax error.
fn class_char(chars: &[char], mut i: usize) -> Option<usize> {
    match chars.get(i) {
        None | Some('-') | Some(']') => return None,
        Some('\\') => {
            i += 1;
            chars.get(i)?;
        }
        _ => {}
    }
    i += 1;
    // Something must follow (at least the closing bracket).
    chars.get(i)?;
    Some(i)
}

/// moby's `Pattern.compile`: the match kind, with the regular expression moby would build.
fn compile(p: &str) -> Result<Kind, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut re = String::from("^");
    let mut kind = 0u8; // 0 exact, 1 prefix, 2 suffix, 3 regexp
    let mut pos = 0;
    let mut i = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        if ch == '*' {
            if chars.get(pos) == Some(&'*') {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    if kind == 0 {
                        kind = 1;
                    } else {
                        re.push_str(".*");
                        kind = 3;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = 3;
                }
                if i == 0 {
                    kind = 2;
                }
            } else {
                re.push_str("[^/]*");
                kind = 3;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            kind = 3;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            if pos < chars.len() {
                re.push('\\');
                re.push(chars[pos]);
                pos += 1;
                kind = 3;
            } else {
                re.push('\\');
            }
        } else if ch == '[' || ch == ']' {
            re.push(ch);
            kind = 3;
        } else {
            re.push(ch);
        }
        i += 1;
    }
    Ok(match kind {
        0 => Kind::Exact,
        1 => Kind::Prefix,
        2 => Kind::Suffix,
        _ => {
            re.push('$');
            let rust = go_regexp_to_rust(&re)?;
            Kind::Regexp(
                RegexBuilder::new(&rust)
                    .size_limit(1 << 20)
                    .dfa_size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        let msg = e.to_string();
                        let last = msg.lines().last().unwrap_or("").trim().to_string();
                        format!("Docker cannot use it either ({last})")
                    })?,
            )
        }
    })
}

fn lit(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        out.push_str(&format!("\\x{{{:X}}}", c as u32));
    }
}

/// Go's Perl classes are ASCII-only.
fn perl_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => "[\\t\\n\\x{C}\\r ]",
        'S' => "[^\\t\\n\\x{C}\\r ]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        _ => return None,
    })
}

/// A Go escape that stands for one character: escaped ASCII punctuation, or a C escape.
fn escaped_char(c: char) -> Option<char> {
    if c.is_ascii() && !c.is_ascii_alphanumeric() {
        return Some(c);
    }
    Some(match c {
        'a' => '\x07',
        'f' => '\x0C',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0B',
        _ => return None,
    })
}

fn unsupported_escape(c: char) -> String {
    format!(
        "the escape \\{c} is handed by Docker to its regular-expression engine; proctor does not accept it (escape only punctuation)"
    )
}

const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Re-expresses the Go regular expression moby builds for the `regex` crate. Only what moby can
/// produce is handled: literals, `\` escapes, `.`, `*`, `?`, groups from `**`, anchors and
/// bracket classes (read with Go's class grammar: a leading `]` or `-` is literal, `[` inside is
/// literal unless it opens `[:name:]`).
fn go_regexp_to_rust(go: &str) -> Result<String, String> {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '^' | '$' | '.' | '*' | '?' | '+' | '|' | ')' => out.push(c),
            '(' => out.push_str("(?:"),
            '\\' => {
                let Some(&e) = chars.get(i) else {
                    return Err("it ends with a lone \\".into());
                };
                i += 1;
                if let Some(class) = perl_class(e) {
                    out.push_str(class);
                } else if let Some(ch) = escaped_char(e) {
                    lit(&mut out, ch);
                } else {
                    return Err(unsupported_escape(e));
                }
            }
            '[' => i = class(&chars, i, &mut out)?,
            _ => lit(&mut out, c),
        }
    }
    Ok(out)
}

/// A Go bracket class starting after `[` at `i`; returns the index after its `]`.
fn class(chars: &[char], mut i: usize, out: &mut String) -> Result<usize, String> {
    let unclosed = || "a [ class is not closed".to_string();
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(unclosed());
        };
        if c == ']' && !first {
            out.push(']');
            return Ok(i + 1);
        }
        first = false;
        // [:name:] and [:^name:]
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let rest: String = chars[i + 2..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let name = &rest[..end];
                let bare = name.strip_prefix('^').unwrap_or(name);
                if !POSIX_CLASSES.contains(&bare) {
                    return Err(format!("[:{name}:] is not a character class"));
                }
                out.push_str(&format!("[:{name}:]"));
                i += 2 + name.chars().count() + 2;
                continue;
            }
        }
        if c == '\\' {
            if let Some(&e) = chars.get(i + 1) {
                if e == 'p' || e == 'P' {
                    return Err(unsupported_escape(e));
                }
                if let Some(class) = perl_class(e) {
                    out.push_str(class);
                    i += 2;
                    continue;
                }
            }
        }
        let (lo, next) = class_member(chars, i)?;
        i = next;
        lit(out, lo);
        // "a-" followed by "]" is two members.
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let (hi, next) = class_member(chars, i + 1)?;
            if hi < lo {
                return Err(format!(
                    "the class range {lo}-{hi} runs backwards (Docker refuses it)"
                ));
            }
            i = next;
            out.push('-');
            lit(out, hi);
        }
    }
}

/// One character of a class (Go's `parseClassChar`).
fn class_member(chars: &[char], i: usize) -> Result<(char, usize), String> {
    match chars.get(i) {
        None => Err("a [ class is not closed".into()),
        Some('\\') => {
            let Some(&e) = chars.get(i + 1) else {
                return Err("a [ class is not closed".into());
            };
            escaped_char(e)
                .map(|c| (c, i + 2))
                .ok_or_else(|| unsupported_escape(e))
        }
        Some(&c) => Ok((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(lines: &[&str]) -> Dockerignore {
        Dockerignore::parse(lines.join("\n").as_bytes()).unwrap()
    }

    /// moby's MatchesOrParentMatches over one or several patterns.
    fn m(patterns: &[&str], path: &str) -> bool {
        let mut r = Dockerignore::default();
        for p in patterns {
            r.push(p).unwrap();
        }
        r.matches_or_parent_matches(path)
    }

    /// MatchesUsingParentResults walked from the top, as the tar walk does it.
    fn walked(patterns: &[&str], path: &str) -> bool {
        let mut r = Dockerignore::default();
        for p in patterns {
            r.push(p).unwrap();
        }
        let mut info: Option<MatchInfo> = None;
        let parts: Vec<&str> = path.split('/').collect();
        for k in 1..parts.len() {
            let dir = parts[..k].join("/");
            info = Some(r.matches_using_parent(&dir, info.as_deref()).1);
        }
        r.matches_using_parent(path, info.as_deref()).0
    }

    #[test]
    fn reads_the_file_like_moby_ignorefile() {
        // moby/patternmatcher ignorefile_test.go
        let text =
            "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n";
        let r = Dockerignore::parse(text.as_bytes()).unwrap();
        let texts: Vec<(bool, &str)> = r
            .patterns
            .iter()
            .map(|p| (p.exclusion, p.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (false, "test1"),
                (false, "test2"),
                (false, "a/file/here"),
                (false, "lastfile"),
                (true, "inverted/abs/path"),
            ]
        );
        let err = Dockerignore::parse(b"ok\n!\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains('!'), "{err}");
        let err = Dockerignore::parse(b"a\n[\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("class"), "{err}");
        // BOM, CRLF, comment only at column 0, trailing spaces.
        let r = Dockerignore::parse(b"\xEF\xBB\xBFfoo\r\n  # not a comment\r\nbar   \r\n").unwrap();
        let texts: Vec<&str> = r.patterns.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["foo", "# not a comment", "bar"]);
    }

    #[test]
    fn cleans_like_go() {
        for (a, b) in [
            ("", "."),
            ("a/", "a"),
            ("./a", "a"),
            ("a//b", "a/b"),
            ("a/../..", ".."),
            ("../../a", "../../a"),
            ("/../a", "/a"),
            ("/", "/"),
            ("a/./b/../c/", "a/c"),
        ] {
            assert_eq!(go_clean(a), b, "{a:?}");
        }
    }

    // moby/patternmatcher patternmatcher_test.go TestMatches: (pattern, text, exact, or-parent).
    const MOBY: &[(&str, &str, bool, bool)] = &[
        ("**", "file", true, true),
        ("**", "file/", true, true),
        ("**/", "file", true, true),
        ("**/", "file/", true, true),
        ("**", "/", true, true),
        ("**/", "/", true, true),
        ("**", "dir/file", true, true),
        ("**/", "dir/file", true, true),
        ("**", "dir/file/", true, true),
        ("**/", "dir/file/", true, true),
        ("**/**", "dir/file", true, true),
        ("**/**", "dir/file/", true, true),
        ("dir/**", "dir/file", true, true),
        ("dir/**", "dir/file/", true, true),
        ("dir/**", "dir/dir2/file", true, true),
        ("dir/**", "dir/dir2/file/", true, true),
        ("**/dir", "dir", true, true),
        ("**/dir", "dir/file", false, true),
        ("**/dir2/*", "dir/dir2/file", true, true),
        ("**/dir2/*", "dir/dir2/file/", false, true),
        ("**/dir2/**", "dir/dir2/dir3/file", true, true),
        ("**/dir2/**", "dir/dir2/dir3/file/", true, true),
        ("**file", "file", true, true),
        ("**file", "dir/file", true, true),
        ("**/file", "dir/file", true, true),
        ("**file", "dir/dir/file", true, true),
        ("**/file", "dir/dir/file", true, true),
        ("**/file*", "dir/dir/file", true, true),
        ("**/file*", "dir/dir/file.txt", true, true),
        ("**/file*txt", "dir/dir/file.txt", true, true),
        ("**/file*.txt", "dir/dir/file.txt", true, true),
        ("**/file*.txt*", "dir/dir/file.txt", true, true),
        ("**/**/*.txt", "dir/dir/file.txt", true, true),
        ("**/**/*.txt2", "dir/dir/file.txt", false, false),
        ("**/*.txt", "file.txt", true, true),
        ("**/**/*.txt", "file.txt", true, true),
        ("a**/*.txt", "a/file.txt", true, true),
        ("a**/*.txt", "a/dir/file.txt", true, true),
        ("a**/*.txt", "a/dir/dir/file.txt", true, true),
        ("a/*.txt", "a/dir/file.txt", false, false),
        ("a/*.txt", "a/file.txt", true, true),
        ("a/*.txt**", "a/file.txt", true, true),
        ("a[b-d]e", "ae", false, false),
        ("a[b-d]e", "ace", true, true),
        ("a[b-d]e", "aae", false, false),
        ("a[^b-d]e", "aze", true, true),
        (".*", ".foo", true, true),
        (".*", "foo", false, false),
        ("abc.def", "abcdef", false, false),
        ("abc.def", "abc.def", true, true),
        ("abc.def", "abcZdef", false, false),
        ("abc?def", "abcZdef", true, true),
        ("abc?def", "abcdef", false, false),
        ("**/foo/bar", "foo/bar", true, true),
        ("**/foo/bar", "dir/foo/bar", true, true),
        ("**/foo/bar", "dir/dir2/foo/bar", true, true),
        ("abc/**", "abc", false, false),
        ("abc/**", "abc/def", true, true),
        ("abc/**", "abc/def/ghi", true, true),
        ("**/.foo", ".foo", true, true),
        ("**/.foo", "bar.foo", false, false),
        ("a(b)c/def", "a(b)c/def", true, true),
        ("a(b)c/def", "a(b)c/xyz", false, false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true, true),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
            true,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
            true,
        ),
        ("a\\\\", "a\\", true, true),
        ("a\\*b", "a*b", true, true),
    ];

    #[test]
    fn matches_the_moby_table() {
        for &(pattern, text, exact, or_parent) in MOBY {
            let mut r = Dockerignore::default();
            r.push(pattern).unwrap();
            let got = r.patterns[0].matches(text);
            assert_eq!(got, exact, "exact: pattern {pattern:?} text {text:?}");
            assert_eq!(
                m(&[pattern], text),
                or_parent,
                "pattern {pattern:?} text {text:?}"
            );
            assert_eq!(
                walked(&[pattern], text),
                or_parent,
                "walked {pattern:?} {text:?}"
            );
        }
        for (patterns, text, want) in [
            (
                &["**", "!util/docker/web"][..],
                "util/docker/web/foo",
                false,
            ),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"][..],
                "util/docker/web/foo",
                true,
            ),
            (
                &[
                    "**",
                    "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                ][..],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
            (
                &["**", "!dist/*.whl"][..],
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
            (&["docs", "!docs/README.md"][..], "docs/README.md", false),
            (&["docs/", "!docs/README.md"][..], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"][..], "docs/README.md", false),
            (&["*.go", "!fileutils.go"][..], "fileutils.go", false),
            (&["!fileutils.go", "*.go"][..], "fileutils.go", true),
        ] {
            assert_eq!(m(patterns, text), want, "{patterns:?} {text:?}");
            assert_eq!(walked(patterns, text), want, "walked {patterns:?} {text:?}");
        }
    }

    // Go's filepath.Match table as moby runs it (TestMatch), through MatchesOrParentMatches.
    #[test]
    fn matches_the_go_filepath_table() {
        let ok = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for (pattern, text, want) in ok {
            assert_eq!(
                m(&[pattern], text),
                want,
                "pattern {pattern:?} text {text:?}"
            );
        }
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            let mut r = Dockerignore::default();
            assert!(r.push(bad).is_err(), "{bad:?} must be refused");
        }
        let mut r = Dockerignore::default();
        assert!(r.push("[z-a]").is_err(), "a backwards range is refused");
    }

    #[test]
    fn go_regexp_quirks_are_kept() {
        // moby copies brackets into a Go regexp, so '*' inside a class is not a literal star.
        assert!(m(&["[*]"], "]"));
        assert!(!m(&["[*]"], "*"));
        // POSIX classes and Perl classes come from Go's regexp syntax.
        assert!(m(&["[[:digit:]]x"], "7x"));
        assert!(m(&["v\\d"], "v7"));
        assert!(!m(&["v\\d"], "vd"));
        // Unsupported escapes are refused, not guessed.
        let err = Dockerignore::parse(b"a\\pL\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("\\p"), "{err}");
    }

    fn kept(ignore: &str, paths: &[(&str, bool)]) -> Vec<String> {
        let mut r = rules(&ignore.lines().collect::<Vec<_>>());
        r.keep_build_files();
        filter(&r, paths.iter().copied())
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn documented_examples() {
        // docs.docker.com "Dockerignore files": */temp*, */*/temp*, temp?
        let paths = [
            ("Dockerfile", false),
            ("a", true),
            ("a/temporary.txt", false),
            ("a/b", true),
            ("a/b/temp", false),
            ("tempa", false),
            ("temp.txt", false),
            ("templates", true),
            ("templates/x", false),
        ];
        assert_eq!(
            kept("# comment\n*/temp*\n*/*/temp*\ntemp?", &paths),
            [
                "Dockerfile",
                "a",
                "a/b",
                "temp.txt",
                "templates",
                "templates/x"
            ]
        );
        // *.md, !README*.md, README-secret.md: last match wins.
        let paths = [
            ("Dockerfile", false),
            ("README.md", false),
            ("README-secret.md", false),
            ("notes.md", false),
            ("app.py", false),
        ];
        assert_eq!(
            kept("*.md\n!README*.md\nREADME-secret.md", &paths),
            ["Dockerfile", "README.md", "app.py"]
        );
        assert_eq!(
            kept("*.md\nREADME-secret.md\n!README*.md", &paths),
            ["Dockerfile", "README.md", "README-secret.md", "app.py"]
        );
        // ** at any depth; leading / and ./ mean the root.
        let paths = [
            ("Dockerfile", false),
            ("a.go", false),
            ("x", true),
            ("x/y", true),
            ("x/y/b.go", false),
            ("x/keep.txt", false),
        ];
        assert_eq!(
            kept("**/*.go\n/x/keep.txt", &paths),
            ["Dockerfile", "x", "x/y"]
        );
    }

    #[test]
    fn dockerfile_and_dockerignore_are_always_sent() {
        let paths = [
            (".dockerignore", false),
            ("Dockerfile", false),
            ("app.py", false),
            ("data", true),
            ("data/big.bin", false),
        ];
        assert_eq!(
            kept("*\n!app.py", &paths),
            [".dockerignore", "Dockerfile", "app.py"]
        );
        assert_eq!(
            kept("Dockerfile\n.dockerignore\ndata", &paths),
            [".dockerignore", "Dockerfile", "app.py"]
        );
    }

    #[test]
    fn excluded_directories_follow_the_moby_walk() {
        let paths = [
            ("Dockerfile", false),
            ("docs", true),
            ("docs/keep.md", false),
            ("docs/other.md", false),
            ("lib", true),
            ("lib/keep.md", false),
        ];
        // The exception names the directory's path: the walk enters it.
        assert_eq!(
            kept("docs\n!docs/keep.md", &paths),
            ["Dockerfile", "docs/keep.md", "lib", "lib/keep.md"]
        );
        // A ** exception does not start with "docs/": moby never enters docs.
        assert_eq!(kept("docs\nlib\n!**/keep.md", &paths), ["Dockerfile"]);
        // Missing directory entries (as in an archive) are treated as directories.
        let paths = [
            ("Dockerfile", false),
            ("docs/keep.md", false),
            ("docs/x", false),
        ];
        assert_eq!(
            kept("docs\n!docs/keep.md", &paths),
            ["Dockerfile", "docs/keep.md"]
        );
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        let mut text = String::new();
        for i in 0..MAX_PATTERNS {
            text.push_str(&format!("*a*a*a*a*a*a*a*a*a*a*a*a*{i}\n"));
        }
        let r = Dockerignore::parse(text.as_bytes()).unwrap();
        let name = "a".repeat(200);
        let t = std::time::Instant::now();
        for _ in 0..20 {
            assert!(!r.matches_or_parent_matches(&name));
        }
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
        text.push_str("one-too-many\n");
        assert!(Dockerignore::parse(text.as_bytes()).is_err());
    }
}
