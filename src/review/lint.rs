//! The summary of a Python linter's output. The linter itself runs elsewhere, in a container (it
//! reads the candidate's code; proctor never runs a tool over it on the host); this module only
//! parses what it printed, so that parsing is unit-tested here and the summary can go into the
//! report.
//!
//! Lines are read in the forms pycodestyle, pyflakes and flake8 print:
//!
//! - `path:line:col: CODE message` (pycodestyle, flake8): the code is taken as printed;
//! - `path:line:col: message` and the older `path:line:col message` and `path:line: message`
//!   (pyflakes): the message is classified into flake8's code for it (`F401` "imported but
//!   unused", `F841` "assigned to but never used", `F811`, `F821` "undefined name", ... the table
//!   `PYFLAKES` below, in flake8's numbering). A syntax error, which pyflakes reports with
//!   Python's own message, is `E999` as in flake8; a message of a newer pyflakes that the table
//!   does not know is `F999`, flake8's code for the same case.
//!
//! Other lines (the source line and caret pyflakes prints under a syntax error, `--show-source`
//! output, statistics) are not violations and are skipped.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LintSummary {
    /// The linter that ran, e.g. `pycodestyle` or `pyflakes`.
    pub tool: String,
    /// Files it was run over.
    pub files: u64,
    /// Lines in those files.
    pub lines: u64,
    pub violations: u64,
    /// Violations per 1000 lines; 0 when there are no lines.
    pub per_1000_lines: f64,
    /// Violations per code (`E501`, `F401`, ...).
    pub by_code: BTreeMap<String, u64>,
}

/// `path:line[:col][:] message`. The path is the shortest prefix before `:<digits>:`.
static LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.+?):(\d+):(?:(\d+):?)?\s+(\S.*)$").expect("valid regex"));

/// A code as pycodestyle and flake8 print it: a capital letter or two and three or four digits.
static CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z]{1,3}\d{3,4}$").expect("valid regex"));

/// pyflakes' message templates, in flake8's numbering. Order matters where one message starts
/// like another (`undefined name 'x' in __all__` before `undefined name 'x'`).
static PYFLAKES: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("F401", r"imported but unused$"),
        ("F402", r"^import .+ from line \d+ shadowed by loop variable$"),
        ("F403", r"^'from .+ import \*' used; unable to detect undefined names$"),
        ("F404", r"^from __future__ imports must occur at the beginning of the file$|^future import\(s\) .+ after other statements$"),
        ("F405", r" may be undefined, or defined from star imports"),
        ("F406", r"^'from .+ import \*' only allowed at module level$"),
        ("F407", r"^future feature .+ is not defined$"),
        ("F501", r"^'\.\.\.' % \.\.\. has invalid format string"),
        ("F502", r"^'\.\.\.' % \.\.\. expected mapping but got sequence"),
        ("F503", r"^'\.\.\.' % \.\.\. expected sequence but got mapping"),
        ("F504", r"^'\.\.\.' % \.\.\. has unused named argument"),
        ("F505", r"^'\.\.\.' % \.\.\. is missing argument"),
        ("F506", r"^'\.\.\.' % \.\.\. has mixed positional and named placeholders"),
        ("F507", r"^'\.\.\.' % \.\.\. has \d+ placeholder\(s\) but \d+ substitution"),
        ("F508", r"^'\.\.\.' % \.\.\. `\*` specifier requires sequence"),
        ("F509", r"^'\.\.\.' % \.\.\. has unsupported format character"),
        ("F521", r"^'\.\.\.'\.format\(\.\.\.\) has invalid format string"),
        ("F522", r"^'\.\.\.'\.format\(\.\.\.\) has unused named argument"),
        ("F523", r"^'\.\.\.'\.format\(\.\.\.\) has unused arguments at position"),
        ("F524", r"^'\.\.\.'\.format\(\.\.\.\) is missing argument"),
        ("F525", r"^'\.\.\.'\.format\(\.\.\.\) mixes automatic and manual numbering"),
        ("F541", r"^f-string is missing placeholders"),
        ("F542", r"^t-string is missing placeholders"),
        ("F602", r"^dictionary key variable .+ repeated with different values"),
        ("F601", r"^dictionary key .+ repeated with different values"),
        ("F621", r"^too many expressions in star-unpacking assignment"),
        ("F622", r"^two starred expressions in assignment"),
        ("F631", r"^assertion is always true"),
        ("F632", r"^use ==/!= to compare"),
        ("F633", r"^use of >> is invalid with print function"),
        ("F634", r"^'if tuple literal' is always true"),
        ("F701", r"^'break' outside loop"),
        ("F702", r"^'continue' not properly in loop"),
        ("F704", r"^'yield' outside function"),
        ("F706", r"^'return' outside function"),
        ("F707", r"^default 'except:' must be last"),
        ("F721", r"^syntax error in doctest"),
        ("F722", r"^syntax error in forward annotation"),
        ("F811", r"^redefinition of unused .+ from line \d+"),
        ("F812", r"^list comprehension redefines .+ from line \d+"),
        ("F822", r"^undefined name .+ in __all__$"),
        ("F821", r"^undefined name "),
        ("F823", r"^local variable .+ referenced before assignment"),
        ("F824", r"is unused: name is never assigned in scope"),
        ("F831", r"^duplicate argument .+ in function definition"),
        ("F841", r"^local variable .+ is assigned to but never used"),
        ("F842", r"^local variable .+ is annotated but never used"),
        ("F901", r"^'raise NotImplemented' should be 'raise NotImplementedError'"),
    ]
    .into_iter()
    .map(|(code, p)| (code, Regex::new(p).expect("valid regex")))
    .collect()
});

/// Words of Python's own syntax-error messages ("invalid syntax", "unexpected indent",
/// "unterminated string literal", "'(' was never closed", "expected ':'", ...).
static SYNTAX_ERROR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)syntax|indent|unterminated|unexpected|expected|\bEOF\b|invalid|unmatched|never closed|cannot assign|does not match")
        .expect("valid regex")
});

/// flake8's code for a pyflakes message.
pub fn classify_pyflakes(message: &str) -> &'static str {
    let message = message.trim();
    if let Some((code, _)) = PYFLAKES.iter().find(|(_, re)| re.is_match(message)) {
        return code;
    }
    if SYNTAX_ERROR.is_match(message) {
        "E999"
    } else {
        "F999"
    }
}

/// The code of one output line, or None when the line is not a violation.
fn code_of(line: &str) -> Option<String> {
    let c = LINE.captures(line.trim_end())?;
    let message = c.get(4)?.as_str();
    let first = message.split_whitespace().next().unwrap_or("");
    if CODE.is_match(first) {
        Some(first.to_string())
    } else {
        Some(classify_pyflakes(message).to_string())
    }
}

impl LintSummary {
    /// Summarises a linter's output over `files` files of `lines` lines in all.
    pub fn from_output(tool: &str, output: &str, files: u64, lines: u64) -> LintSummary {
        let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
        for code in output.lines().filter_map(code_of) {
            *by_code.entry(code).or_default() += 1;
        }
        let violations: u64 = by_code.values().sum();
        LintSummary {
            tool: tool.to_string(),
            files,
            lines,
            violations,
            per_1000_lines: if lines == 0 {
                0.0
            } else {
                violations as f64 * 1000.0 / lines as f64
            },
            by_code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pycodestyle_output() {
        let out = "\
app.py:1:80: E501 line too long (88 > 79 characters)
app.py:10:1: E302 expected 2 blank lines, found 1
src/model.py:3:1: W391 blank line at end of file
app.py:12:80: E501 line too long (100 > 79 characters)
";
        let s = LintSummary::from_output("pycodestyle", out, 2, 500);
        assert_eq!(s.violations, 4);
        assert_eq!(s.by_code["E501"], 2);
        assert_eq!(
            s.by_code["E302"], 1,
            "\"expected\" in a coded line is not a syntax error"
        );
        assert_eq!(s.by_code["W391"], 1);
        assert_eq!(s.per_1000_lines, 8.0);
        assert_eq!(s.tool, "pycodestyle");
        assert_eq!((s.files, s.lines), (2, 500));
    }

    #[test]
    fn pyflakes_output_is_classified_into_flake8_codes() {
        let out = "\
app.py:1:1: 'os' imported but unused
app.py:2:1: 'sys.path' imported but unused
app.py:14:5: local variable 'x' is assigned to but never used
app.py:20:1: redefinition of unused 'load' from line 3
app.py:31:12: undefined name 'np'
app.py:40:1: undefined name 'missing' in __all__
app.py:44:1: 'from utils import *' used; unable to detect undefined names
app.py:45:5: 'helper' may be undefined, or defined from star imports: utils
app.py:50:11: f-string is missing placeholders
app.py:51:11: '...' % ... has 2 placeholder(s) but 1 substitution(s)
app.py:52:11: '...'.format(...) has unused arguments at position(s): 1
app.py:53:8: use ==/!= to compare constant literals (str, bytes, int, float, tuple)
app.py:60:5: local variable 'y' defined in enclosing scope on line 2 referenced before assignment
app.py:61:1: dictionary key 'a' repeated with different values
app.py:62:1: dictionary key variable k repeated with different values
app.py:63:5: 'return' outside function
app.py:64:5: 'raise NotImplemented' should be 'raise NotImplementedError'
";
        let s = LintSummary::from_output("pyflakes", out, 1, 100);
        let expect: BTreeMap<String, u64> = [
            ("F401", 2),
            ("F841", 1),
            ("F811", 1),
            ("F821", 1),
            ("F822", 1),
            ("F403", 1),
            ("F405", 1),
            ("F541", 1),
            ("F507", 1),
            ("F523", 1),
            ("F632", 1),
            ("F823", 1),
            ("F601", 1),
            ("F602", 1),
            ("F706", 1),
            ("F901", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(s.by_code, expect);
        assert_eq!(s.violations, 17);
    }

    #[test]
    fn syntax_errors_older_formats_and_noise() {
        let out = "\
broken.py:3:5: invalid syntax
    def f(:
        ^
old.py:7:1 'json' imported but unused
nocol.py:9: undefined name 'foo'
other.py:1:1: some message a future pyflakes prints
broken2.py:2:12: unterminated string literal (detected at line 2)

3     E501 line too long
";
        let s = LintSummary::from_output("pyflakes", out, 4, 0);
        assert_eq!(s.by_code["E999"], 2);
        assert_eq!(s.by_code["F401"], 1);
        assert_eq!(s.by_code["F821"], 1);
        assert_eq!(s.by_code["F999"], 1);
        assert_eq!(s.violations, 5);
        assert_eq!(
            s.per_1000_lines, 0.0,
            "no lines: no rate, no division by zero"
        );
    }

    #[test]
    fn empty_output_is_a_clean_run() {
        let s = LintSummary::from_output("pycodestyle", "", 6, 1200);
        assert_eq!(s.violations, 0);
        assert!(s.by_code.is_empty());
        assert_eq!(s.per_1000_lines, 0.0);
    }

    #[test]
    fn paths_with_colons_and_windows_drives_keep_their_line() {
        assert_eq!(
            code_of("C:\\work\\app.py:3:1: E225 missing whitespace"),
            Some("E225".into())
        );
        assert_eq!(code_of("just some text: not a violation"), None);
    }
}
