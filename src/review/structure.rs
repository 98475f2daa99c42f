//! The shape of the code: how many files and Python modules, lines of code per language, the
//! largest Python function, the tests and how much test code there is for the code it tests.
//!
//! Nothing here parses Python. A small line scanner (`scan_python`) follows strings, brackets and
//! backslash continuations well enough to tell where a statement starts and what its indentation
//! is; functions are found from there:
//!
//! - A function is a statement starting `def name` or `async def name`. It ends before the next
//!   statement indented no deeper than its `def` (a decorator of the next function included),
//!   so nested functions and methods are found too, each with its own length, and a nested
//!   function's lines also count in the function around it.
//! - Its length is the physical lines from the `def` line to the last line of code in its body
//!   (blank lines and comments in between count, trailing ones do not; decorators above the
//!   `def` do not). Names are qualified by the enclosing classes and functions: `Scorer.predict`.
//! - Known limits: a function defined inside an `if`, `try` or `with` block is named as if the
//!   block were not there; a `def` produced by `exec` or in a notebook cell is not looked for;
//!   tabs count as 8 columns; an f-string that nests its own quote character (allowed since
//!   Python 3.12) can be misread.
//!
//! Lines of code are non-blank lines that are not comments. For Python a docstring (a string
//! that is a statement of its own, starting with a triple quote) counts as a comment, as cloc
//! counts it. Other languages are recognised by extension; their comments are `#` lines or
//! `//` and `/* */` lines by language, without looking into their strings.

use std::collections::BTreeMap;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::files::{extension_of, Files};

/// Test files listed by path at most; `test_file_count` counts them all.
const MAX_TEST_FILES_LISTED: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Structure {
    /// Regular files in the build context.
    pub files: u64,
    /// Bytes of the files listed (those past `files::Limits::max_files` are only counted).
    pub bytes: u64,
    /// `.py` files, tests included.
    pub python_modules: u64,
    /// Lines of code per language, most lines first. Only source and configuration languages
    /// are listed; data and prose (`.csv`, `.json`, `.md`, ...) show in `extensions` alone.
    pub languages: Vec<LanguageLines>,
    /// Files per extension, lower-cased without the dot; `(none)` for names without one.
    pub extensions: BTreeMap<String, u64>,
    /// Files of a known language that could not be counted: larger than the text limit or not
    /// UTF-8.
    pub not_counted: u64,
    /// Python functions and methods found (`def` and `async def`).
    pub python_functions: u64,
    pub largest_function: Option<FunctionSize>,
    /// Python test files: `test_*.py`, `*_test.py`, `conftest.py`, or any `.py` under a `tests/`
    /// or `test/` directory. At most 100 are listed.
    pub test_files: Vec<String>,
    pub test_file_count: u64,
    /// Lines of code in the Python test files.
    pub test_lines: u64,
    /// Lines of code in the other Python files.
    pub code_lines: u64,
    /// `test_lines / code_lines`; absent when there is no non-test Python code.
    pub test_to_code_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LanguageLines {
    pub language: String,
    pub files: u64,
    /// Non-blank, non-comment lines.
    pub lines: u64,
}

/// A Python function and its length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FunctionSize {
    /// Qualified by its enclosing classes and functions: `Scorer.predict`, `main.handler`.
    pub name: String,
    pub file: String,
    /// 1-based line of the `def`.
    pub line: u64,
    /// Physical lines from the `def` to the last line of code of its body.
    pub lines: u64,
}

/// How a language marks its comments, which is all that counting lines needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comments {
    /// Python: `#`, and docstrings, through the Python scanner.
    Python,
    /// `#` to the end of the line (shell, YAML, TOML, R, Dockerfile, Make).
    Hash,
    /// `//` lines and `/* ... */` blocks (C family, JavaScript, Go, Rust, ...).
    CStyle,
    /// `--` lines (SQL).
    DoubleDash,
    /// `<!-- ... -->` blocks (HTML).
    Markup,
    /// Jupyter notebooks: the code cells, counted as Python.
    Notebook,
}

/// The language of a file from its name, when it is one whose lines are counted.
fn language_of(name: &str) -> Option<(&'static str, Comments)> {
    let lower = name.to_ascii_lowercase();
    if lower == "dockerfile" || lower.starts_with("dockerfile.") || lower.ends_with(".dockerfile") {
        return Some(("Dockerfile", Comments::Hash));
    }
    if lower == "makefile" || lower == "gnumakefile" {
        return Some(("Make", Comments::Hash));
    }
    let lang = match extension_of(&lower).as_str() {
        "py" | "pyi" | "pyw" => ("Python", Comments::Python),
        "ipynb" => ("Jupyter Notebook", Comments::Notebook),
        "sh" | "bash" | "zsh" => ("Shell", Comments::Hash),
        "r" => ("R", Comments::Hash),
        "yml" | "yaml" => ("YAML", Comments::Hash),
        "toml" => ("TOML", Comments::Hash),
        "ini" | "cfg" => ("INI", Comments::Hash),
        "js" | "mjs" | "cjs" | "jsx" => ("JavaScript", Comments::CStyle),
        "ts" | "tsx" => ("TypeScript", Comments::CStyle),
        "go" => ("Go", Comments::CStyle),
        "rs" => ("Rust", Comments::CStyle),
        "java" => ("Java", Comments::CStyle),
        "kt" | "kts" => ("Kotlin", Comments::CStyle),
        "scala" => ("Scala", Comments::CStyle),
        "c" | "h" => ("C", Comments::CStyle),
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => ("C++", Comments::CStyle),
        "cs" => ("C#", Comments::CStyle),
        "swift" => ("Swift", Comments::CStyle),
        "css" => ("CSS", Comments::CStyle),
        "sql" => ("SQL", Comments::DoubleDash),
        "html" | "htm" => ("HTML", Comments::Markup),
        _ => return None,
    };
    Some(lang)
}

/// A Python test file, by the names pytest and unittest discover.
pub fn is_python_test(path: &str) -> bool {
    if extension_of(path) != "py" {
        return false;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or("");
    let stem = name.strip_suffix(".py").unwrap_or(name);
    stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem == "conftest"
        || parts.iter().any(|d| *d == "tests" || *d == "test")
}

/// Counts, languages, functions and tests of the context's files.
pub fn analyse(files: &Files) -> Structure {
    let mut languages: BTreeMap<&'static str, LanguageLines> = BTreeMap::new();
    let mut extensions: BTreeMap<String, u64> = BTreeMap::new();
    let mut s = Structure {
        files: files.files.len() as u64 + files.not_listed,
        bytes: files.files.iter().map(|f| f.size).sum(),
        python_modules: 0,
        languages: Vec::new(),
        extensions: BTreeMap::new(),
        not_counted: 0,
        python_functions: 0,
        largest_function: None,
        test_files: Vec::new(),
        test_file_count: 0,
        test_lines: 0,
        code_lines: 0,
        test_to_code_ratio: None,
    };
    let defs = DefPatterns::new();
    for f in &files.files {
        let ext = f.extension();
        let key = if ext.is_empty() {
            "(none)".to_string()
        } else {
            ext.clone()
        };
        *extensions.entry(key).or_default() += 1;
        if ext == "py" {
            s.python_modules += 1;
        }
        let is_test = is_python_test(&f.path);
        if is_test {
            s.test_file_count += 1;
            if s.test_files.len() < MAX_TEST_FILES_LISTED {
                s.test_files.push(f.path.clone());
            }
        }
        let Some((language, comments)) = language_of(f.name()) else {
            continue;
        };
        let entry = languages.entry(language).or_insert_with(|| LanguageLines {
            language: language.to_string(),
            files: 0,
            lines: 0,
        });
        entry.files += 1;
        let Some(text) = f.text() else {
            s.not_counted += 1;
            continue;
        };
        let loc = match comments {
            Comments::Python => {
                let lines = scan_python(text);
                for func in functions(&lines, text, &defs) {
                    s.python_functions += 1;
                    let bigger = s
                        .largest_function
                        .as_ref()
                        .is_none_or(|best| func.lines > best.lines);
                    if bigger {
                        s.largest_function = Some(FunctionSize {
                            file: f.path.clone(),
                            ..func
                        });
                    }
                }
                let loc = lines.iter().filter(|l| l.kind == Kind::Code).count() as u64;
                if is_test {
                    s.test_lines += loc;
                } else if ext == "py" {
                    s.code_lines += loc;
                }
                loc
            }
            Comments::Notebook => notebook_lines(text),
            Comments::Hash => count_prefixed(text, &["#"]),
            Comments::DoubleDash => count_prefixed(text, &["--"]),
            Comments::CStyle => count_blocks(text, "//", "/*", "*/"),
            Comments::Markup => count_blocks(text, "", "<!--", "-->"),
        };
        entry.lines += loc;
    }
    if s.code_lines > 0 {
        s.test_to_code_ratio = Some(s.test_lines as f64 / s.code_lines as f64);
    }
    let mut langs: Vec<LanguageLines> = languages.into_values().collect();
    langs.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.language.cmp(&b.language)));
    s.languages = langs;
    s.extensions = extensions;
    s
}

/// Lines that are not blank and do not start with one of the comment markers.
fn count_prefixed(text: &str, markers: &[&str]) -> u64 {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !markers.iter().any(|m| l.starts_with(m)))
        .count() as u64
}

/// Lines with something left once line comments (`line`, when not empty) and block comments
/// (`open` ... `close`, possibly over several lines) are taken out. Strings are not looked
/// into: a `/*` inside a string literal would be taken for a comment.
fn count_blocks(text: &str, line: &str, open: &str, close: &str) -> u64 {
    let mut in_block = false;
    let mut count = 0;
    for raw in text.lines() {
        let mut rest = raw.trim();
        let mut code = false;
        while !rest.is_empty() {
            if in_block {
                match rest.find(close) {
                    Some(i) => {
                        in_block = false;
                        rest = rest[i + close.len()..].trim_start();
                    }
                    None => rest = "",
                }
            } else if !line.is_empty() && rest.starts_with(line) {
                rest = "";
            } else if let Some(after) = rest.strip_prefix(open) {
                in_block = true;
                rest = after;
            } else {
                code = true;
                // Code on the line; a block comment may still open after it.
                match rest.find(open) {
                    Some(i) => {
                        in_block = true;
                        rest = &rest[i + open.len()..];
                    }
                    None => rest = "",
                }
            }
        }
        if code {
            count += 1;
        }
    }
    count
}

/// Lines of code in a notebook's code cells, counted as Python. A notebook that is not valid
/// JSON counts no lines.
fn notebook_lines(text: &str) -> u64 {
    let Ok(nb) = serde_json::from_str::<serde_json::Value>(text) else {
        return 0;
    };
    let Some(cells) = nb.get("cells").and_then(|c| c.as_array()) else {
        return 0;
    };
    cells
        .iter()
        .filter(|c| c.get("cell_type").and_then(|t| t.as_str()) == Some("code"))
        .map(|c| {
            let source = match c.get("source") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Array(parts)) => {
                    parts.iter().filter_map(|p| p.as_str()).collect::<String>()
                }
                _ => String::new(),
            };
            scan_python(&source)
                .iter()
                .filter(|l| l.kind == Kind::Code)
                .count() as u64
        })
        .sum()
}

/// What a physical line of Python is, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Blank,
    Comment,
    /// Part of a string that is a statement of its own (a docstring).
    Docstring,
    Code,
}

/// One physical line of Python, as the scanner saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PyLine {
    kind: Kind,
    /// The line starts a statement: it is not inside brackets, a multi-line string or a
    /// backslash continuation.
    starts_statement: bool,
    /// Columns of leading whitespace (a tab advances to the next multiple of 8).
    indent: usize,
}

/// An open string literal the scanner is inside.
#[derive(Debug, Clone, Copy)]
struct OpenString {
    quote: u8,
    triple: bool,
    docstring: bool,
}

/// Classifies each line of a Python source. Follows string literals (single, triple, with
/// escapes), comments, bracket depth and backslash continuations; nothing else of the grammar.
fn scan_python(text: &str) -> Vec<PyLine> {
    let mut out = Vec::new();
    let mut depth: usize = 0;
    let mut string: Option<OpenString> = None;
    let mut continued = false;
    for line in text.lines() {
        let bytes = line.as_bytes();
        let starts_statement = depth == 0 && string.is_none() && !continued;
        let trimmed = line.trim_start();
        let indent = indentation(line);
        let in_string_at_start = string;
        // A statement that is only a string (a docstring, or a string used as a comment).
        let docstring_start = starts_statement && starts_with_triple_quote(trimmed);
        let kind = match in_string_at_start {
            Some(s) if !trimmed.is_empty() => {
                if s.docstring {
                    Kind::Docstring
                } else {
                    Kind::Code
                }
            }
            _ if trimmed.is_empty() => Kind::Blank,
            None if trimmed.starts_with('#') => Kind::Comment,
            _ if docstring_start => Kind::Docstring,
            _ => Kind::Code,
        };
        continued = false;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if let Some(s) = string {
                if b == b'\\' {
                    if i + 1 == bytes.len() {
                        continued = true;
                    }
                    i += 2;
                    continue;
                }
                if s.triple && bytes[i..].starts_with(&[s.quote; 3]) {
                    string = None;
                    i += 3;
                    continue;
                }
                if !s.triple && b == s.quote {
                    string = None;
                }
                i += 1;
                continue;
            }
            match b {
                b'#' => break,
                b'\'' | b'"' => {
                    let triple = bytes[i..].starts_with(&[b; 3]);
                    string = Some(OpenString {
                        quote: b,
                        triple,
                        docstring: docstring_start,
                    });
                    i += if triple { 3 } else { 1 };
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b'\\' if i + 1 == bytes.len() => continued = true,
                _ => {}
            }
            i += 1;
        }
        // A single-quoted string ends with its line unless the line ends in a backslash; an
        // unterminated one is a syntax error the scanner should not carry over.
        if let Some(s) = string {
            if !s.triple && !continued {
                string = None;
            }
        }
        out.push(PyLine {
            kind,
            starts_statement,
            indent,
        });
    }
    out
}

fn indentation(line: &str) -> usize {
    let mut col = 0;
    for c in line.chars() {
        match c {
            ' ' => col += 1,
            '\t' => col = (col / 8 + 1) * 8,
            '\x0c' => col = 0,
            _ => break,
        }
    }
    col
}

/// `"""`, `'''`, or one of them after a string prefix (`r`, `b`, `u`, `f`, up to two letters).
fn starts_with_triple_quote(s: &str) -> bool {
    let rest = s.trim_start_matches(|c: char| "rRbBuUfF".contains(c));
    (s.len() - rest.len() <= 2) && (rest.starts_with("\"\"\"") || rest.starts_with("'''"))
}

struct DefPatterns {
    def: Regex,
    class: Regex,
}

impl DefPatterns {
    fn new() -> Self {
        DefPatterns {
            def: Regex::new(r"^(?:async\s+)?def\s+([^\W\d]\w*)").expect("valid regex"),
            class: Regex::new(r"^class\s+([^\W\d]\w*)").expect("valid regex"),
        }
    }
}

/// A class or function whose body the scan is in.
struct Scope {
    indent: usize,
    name: String,
    /// 1-based line of its `def`; None for a class.
    def_line: Option<usize>,
}

/// The functions of one Python file (`file` left empty), by the indentation rule of the module
/// documentation.
fn functions(lines: &[PyLine], text: &str, defs: &DefPatterns) -> Vec<FunctionSize> {
    let mut found = Vec::new();
    let mut open: Vec<Scope> = Vec::new();
    // The last line of code seen so far: the end of every scope that the next statement closes.
    let mut last_code = 0;
    let mut close = |scope: Scope, last_code: usize, open: &[Scope]| {
        if let Some(def_line) = scope.def_line {
            let mut name: Vec<&str> = open.iter().map(|s| s.name.as_str()).collect();
            name.push(&scope.name);
            found.push(FunctionSize {
                name: name.join("."),
                file: String::new(),
                line: def_line as u64,
                lines: (last_code.max(def_line) - def_line + 1) as u64,
            });
        }
    };
    for (i, (line, raw)) in lines.iter().zip(text.lines()).enumerate() {
        let number = i + 1;
        let statement = matches!(line.kind, Kind::Code | Kind::Docstring);
        if line.starts_statement && statement {
            while open.last().is_some_and(|s| s.indent >= line.indent) {
                let scope = open.pop().expect("checked");
                close(scope, last_code, &open);
            }
            let content = raw.trim_start();
            if let Some(c) = defs.def.captures(content) {
                open.push(Scope {
                    indent: line.indent,
                    name: c[1].to_string(),
                    def_line: Some(number),
                });
            } else if let Some(c) = defs.class.captures(content) {
                open.push(Scope {
                    indent: line.indent,
                    name: c[1].to_string(),
                    def_line: None,
                });
            }
        }
        if statement {
            last_code = number;
        }
    }
    while let Some(scope) = open.pop() {
        close(scope, last_code, &open);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::files::{read_tar, test_support, Limits};
    use super::*;

    fn structure_of(files: &[(&str, &[u8])]) -> Structure {
        analyse(&read_tar(&test_support::tar_of(files), &Limits::default()))
    }

    fn funcs(src: &str) -> Vec<(String, u64, u64)> {
        functions(&scan_python(src), src, &DefPatterns::new())
            .into_iter()
            .map(|f| (f.name, f.line, f.lines))
            .collect()
    }

    #[test]
    fn python_lines_of_code_leave_out_blanks_comments_and_docstrings() {
        let src = r#""""Module docstring
over two lines."""

import os  # a trailing comment keeps the line

# a comment line
def f(x):
    '''One-line docstring.'''
    s = """a string
that is data, not a docstring"""
    return s
"#;
        let kinds: Vec<Kind> = scan_python(src).iter().map(|l| l.kind).collect();
        use Kind::*;
        assert_eq!(
            kinds,
            [
                Docstring, Docstring, Blank, Code, Blank, Comment, Code, Docstring, Code, Code,
                Code
            ]
        );
    }

    #[test]
    fn brackets_strings_and_backslashes_continue_a_statement() {
        let src = "x = f(\n    1,\n)\ny = 'a(' + \\\n  \"b\"\nz = '''\n#not a comment\n'''\n";
        let starts: Vec<bool> = scan_python(src)
            .iter()
            .map(|l| l.starts_statement)
            .collect();
        assert_eq!(
            starts,
            [true, false, false, true, false, true, false, false]
        );
        // The `#` inside the triple-quoted string is data.
        assert_eq!(scan_python(src)[6].kind, Kind::Code);
    }

    #[test]
    fn functions_nested_methods_and_decorators() {
        let src = "\
import functools

@functools.cache
def outer(a,
          b):
    x = 1

    def inner():
        return x
    # a comment inside
    return inner
# a trailing comment after the body


class Scorer:
    @staticmethod
    async def predict(rows):
        return [
    0.5,  # a dedented continuation line stays in the function
        ]

    def fit(self): pass
";
        assert_eq!(
            funcs(src),
            [
                ("outer.inner".to_string(), 8, 2),
                ("outer".to_string(), 4, 8),
                ("Scorer.predict".to_string(), 17, 4),
                ("Scorer.fit".to_string(), 22, 1),
            ]
        );
    }

    #[test]
    fn a_dedented_string_inside_a_function_does_not_end_it() {
        let src = "def f():\n    s = '''\nno indent here\n'''\n    return s\n\nx = 1\n";
        assert_eq!(funcs(src), [("f".to_string(), 1, 5)]);
    }

    #[test]
    fn tests_and_the_ratio() {
        let s = structure_of(&[
            ("app.py", b"def a():\n    return 1\n\n\nx = a()\n"),
            ("test_app.py", b"def test_a():\n    assert True\n"),
            ("pkg/model_test.py", b"x = 1\n"),
            ("tests/helpers.py", b"y = 2\n"),
            ("tests/data.csv", b"a,b\n1,2\n"),
            ("conftest.py", b"# only a comment\n"),
        ]);
        assert_eq!(s.python_modules, 5);
        assert_eq!(s.test_file_count, 4);
        assert_eq!(
            s.test_files,
            [
                "test_app.py",
                "pkg/model_test.py",
                "tests/helpers.py",
                "conftest.py"
            ]
        );
        assert_eq!(s.code_lines, 3);
        assert_eq!(s.test_lines, 4);
        assert_eq!(s.test_to_code_ratio, Some(4.0 / 3.0));
        assert_eq!(s.extensions["py"], 5);
        assert_eq!(s.extensions["csv"], 1);
        assert_eq!(s.python_functions, 2);
        assert_eq!(s.largest_function.as_ref().unwrap().name, "a");
        assert_eq!(s.largest_function.as_ref().unwrap().file, "app.py");
    }

    #[test]
    fn other_languages_are_counted_by_extension() {
        let s = structure_of(&[
            ("Dockerfile", b"# base\nFROM x\n\nRUN y\n"),
            ("run.sh", b"#!/bin/sh\necho hi\n"),
            (
                "web/app.js",
                b"// c\n/* block\n still */ let a = 1;\nlet b = 2; /* c */\n",
            ),
            ("README.md", b"# Title\n"),
            ("config.yaml", b"a: 1 # c\n# c\n"),
        ]);
        let by: BTreeMap<_, _> = s
            .languages
            .iter()
            .map(|l| (l.language.as_str(), (l.files, l.lines)))
            .collect();
        assert_eq!(by["Dockerfile"], (1, 2));
        assert_eq!(by["Shell"], (1, 1));
        assert_eq!(by["JavaScript"], (1, 2));
        assert_eq!(by["YAML"], (1, 1));
        assert!(!by.contains_key("Markdown"), "prose is not code");
        assert_eq!(s.extensions["(none)"], 1);
        assert_eq!(s.test_to_code_ratio, None);
    }

    #[test]
    fn notebooks_count_their_code_cells() {
        let nb = br##"{"cells": [
            {"cell_type": "markdown", "source": ["# Title\n", "text\n"]},
            {"cell_type": "code", "source": ["import pandas as pd\n", "# comment\n", "\n", "df = pd.DataFrame()\n"]},
            {"cell_type": "code", "source": "x = 1"}
        ]}"##;
        let s = structure_of(&[("explore.ipynb", nb)]);
        assert_eq!(s.languages[0].language, "Jupyter Notebook");
        assert_eq!(s.languages[0].lines, 3);
    }

    #[test]
    fn a_binary_or_oversized_source_is_not_counted() {
        let s = structure_of(&[("weird.py", b"x = 1\0\n")]);
        assert_eq!(s.not_counted, 1);
        assert_eq!(s.languages[0].lines, 0);
    }

    #[test]
    fn the_reference_submission() {
        let files = read_tar(&test_support::reference_tar(), &Limits::default());
        let s = analyse(&files);
        assert!(s.python_modules >= 5, "{s:?}");
        assert!(s.test_files.contains(&"test_app.py".to_string()));
        assert!(s.code_lines > 300, "{s:?}");
        let ratio = s.test_to_code_ratio.unwrap();
        assert!(ratio > 0.2 && ratio < 2.0, "{ratio}");
        let f = s.largest_function.unwrap();
        assert!(f.lines > 10, "{f:?}");
        assert!(f.file.ends_with(".py"));
    }
}
