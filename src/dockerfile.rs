//! Reading a Dockerfile as the classic builder does: instructions with the line each starts on,
//! continuation lines joined (the `# escape=` directive is honoured), comment lines dropped, also
//! inside a continuation, keywords upper-cased; and the expansion of build variables. One parser
//! for the sandbox's checks (which base images a build may use) and the review's practices, so
//! that the two never read a Dockerfile differently. Heredocs (`RUN <<EOF`) are a BuildKit
//! feature the classic builder does not run; they are read as ordinary lines.

use std::collections::HashMap;

/// One instruction with the line it starts on, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based.
    pub line: u64,
    /// Upper-cased.
    pub keyword: String,
    pub args: String,
}

/// The instructions of a Dockerfile, in order.
pub fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut escape = '\\';
    let mut directives_allowed = true;
    let mut current: Option<Instruction> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(comment) = line.strip_prefix('#') {
            // Parser directives (`# escape=`, `# syntax=`) count only before anything else.
            if directives_allowed {
                let d = comment.trim().to_ascii_lowercase();
                match d.split_once('=') {
                    Some((k, v)) if k.trim() == "escape" => {
                        escape = v.trim().chars().next().unwrap_or('\\');
                        continue;
                    }
                    Some((k, _)) if k.trim() == "syntax" || k.trim() == "check" => continue,
                    _ => {}
                }
            }
            directives_allowed = false;
            continue;
        }
        directives_allowed = false;
        if line.is_empty() {
            continue;
        }
        let (content, continued) = match line.strip_suffix(escape) {
            Some(c) => (c.trim_end(), true),
            None => (line, false),
        };
        match current.as_mut() {
            Some(ins) => {
                if !ins.args.is_empty() && !content.is_empty() {
                    ins.args.push(' ');
                }
                ins.args.push_str(content);
            }
            None => {
                let (keyword, args) = content
                    .split_once(char::is_whitespace)
                    .unwrap_or((content, ""));
                current = Some(Instruction {
                    line: i as u64 + 1,
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_string(),
                });
            }
        }
        if !continued {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// Expands `$NAME`, `${NAME}` and `${NAME:-default}` from `vars`; None when a name is unknown.
pub fn expand(s: &str, vars: &HashMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        let mut default = None;
        if braced {
            let mut rest = String::new();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                rest.push(c);
            }
            default = rest.strip_prefix(":-").map(str::to_string);
        }
        match vars
            .get(&name)
            .filter(|v| !v.is_empty())
            .cloned()
            .or(default)
        {
            Some(v) => out.push_str(&v),
            None => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_directives_and_case() {
        let ins = instructions(
            "# syntax=docker/dockerfile:1\n# escape=`\nfrom python:3.11 as base\nrun pip install `\n  a `\n  # a comment inside\n  b\n\nUSER app\n",
        );
        let got: Vec<(u64, &str, &str)> = ins
            .iter()
            .map(|i| (i.line, i.keyword.as_str(), i.args.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (3, "FROM", "python:3.11 as base"),
                (4, "RUN", "pip install a b"),
                (9, "USER", "app"),
            ]
        );
    }

    #[test]
    fn variables_expand_with_defaults_and_unknown_ones_do_not() {
        let vars = HashMap::from([("BASE".to_string(), "python".to_string())]);
        assert_eq!(
            expand("${BASE}:3.11", &vars).as_deref(),
            Some("python:3.11")
        );
        assert_eq!(expand("$BASE", &vars).as_deref(), Some("python"));
        assert_eq!(expand("${TAG:-1}", &vars).as_deref(), Some("1"));
        assert_eq!(expand("$TAG", &vars), None);
    }
}
