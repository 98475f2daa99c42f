//! Secret-like strings in the context's text files. A finding says what kind of secret it looks
//! like, in which file and on which line; **never the value**: the report is read by people and
//! tools that must not learn a leaked credential from it. No type here has a field that could
//! hold one.
//!
//! What is looked for, line by line:
//!
//! - tokens with a recognisable shape: AWS access key ids (`AKIA`/`ASIA` and 16 upper-case
//!   letters or digits), private key blocks (`-----BEGIN ... PRIVATE KEY-----`), GitHub tokens
//!   (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), Slack tokens (`xoxb-`, `xoxp-`, ...)
//!   and Slack webhook URLs;
//! - a quoted literal assigned to a secret-like name (`password = "..."`, `api_key: '...'`,
//!   `"token": "..."`, `client_secret="..."` as a keyword argument, `password: str = "..."`);
//!   in configuration files (`.env`, YAML, INI, `.cfg`, `.conf`, `.properties`) an unquoted
//!   value too. The literal must have 8 characters or more, no whitespace (a prompt or a
//!   message is not a credential) and not be an obvious placeholder (`changeme`, `example`,
//!   `xxx`, `<...>`, `${...}`, `{{...}}`, `your_...`, one character repeated, ...);
//! - a high-entropy literal (16+ characters, at least two of lower case, upper case and digits,
//!   3.5+ bits of Shannon entropy per character) assigned to such a name, or to a name with a
//!   weaker word (`key`, `auth`, `credential`, `pass`): the more confident finding.
//!
//! Names are split into words (`snake_case`, `kebab-case`, `camelCase`); a word that ends in
//! `PASSWORD`, `PASSWD`, `PASSPHRASE`, `SECRET`, `TOKEN`, `APIKEY`, `ACCESSKEY` or `PRIVATEKEY`, or
//! starts with `PASSWORD`, `PASSWD` or `SECRET`, or the pairs `API KEY`, `ACCESS KEY`,
//! `PRIVATE KEY`, make a name secret-like. So `HF_TOKEN`, `DBPASSWORD` and `apiKey` are secret
//! names while `TOKENIZERS_PARALLELISM` and `max_tokens` are not; a name whose last word describes
//! rather than holds a value (`password_file`, `token_header`, `api_key_name`) is not either.
//!
//! Known limits: a secret split over lines, built by concatenation, encoded, or assigned to a
//! name with no secret-like word is missed; a realistic-looking test fixture is reported. Files
//! larger than the text limit and binary files are not scanned (they are counted).

use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::files::Files;

/// Findings kept at most; the rest are counted in `SecretScan::omitted`.
const MAX_FINDINGS: usize = 200;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    AwsAccessKeyId,
    PrivateKey,
    GithubToken,
    /// A Slack token (`xox?-`) or an incoming-webhook URL.
    SlackToken,
    /// A literal of 8+ characters assigned to a secret-like name.
    CredentialAssignment,
    /// A random-looking literal assigned to a secret-like name.
    HighEntropyAssignment,
}

/// Where a secret-like string is. Deliberately without the string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretFinding {
    pub kind: SecretKind,
    pub file: String,
    /// 1-based.
    pub line: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretScan {
    /// In file order, then line order. At most 200.
    pub findings: Vec<SecretFinding>,
    /// Findings past the first 200.
    pub omitted: u64,
    /// Text files scanned.
    pub files_scanned: u64,
    /// Files not scanned: binary, not UTF-8, or larger than the text limit.
    pub files_not_scanned: u64,
}

static TOKENS: LazyLock<Vec<(SecretKind, Regex)>> = LazyLock::new(|| {
    [
        (SecretKind::AwsAccessKeyId, r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        (
            SecretKind::PrivateKey,
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        ),
        (
            SecretKind::GithubToken,
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        ),
        (
            SecretKind::SlackToken,
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}",
        ),
    ]
    .into_iter()
    .map(|(k, p)| (k, Regex::new(p).expect("valid regex")))
    .collect()
});

/// `name <assign> "literal"`: plain and annotated assignment, keyword argument, mapping entry
/// (the key quoted or not), walrus and `=>`. Group 1 is the name, group 2 or 3 the literal.
static QUOTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?x)
        (?:^|[^A-Za-z0-9_])
        ["']?([A-Za-z_][A-Za-z0-9_.\-]*)["']?
        \s*
        (?: :\s*[A-Za-z_][\w.\[\],\ |]*?\s*= | := | => | : | = )
        \s*
        [rRbBuU]?
        (?: "((?:[^"\\]|\\.)*)" | '((?:[^'\\]|\\.)*)' )
        "#,
    )
    .expect("valid regex")
});

/// `NAME=value` or `name: value` with an unquoted value, for configuration files only (in code
/// an unquoted right-hand side is an expression, not a literal).
static UNQUOTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*[:=]\s*([^\s"'#;][^\s#;]*)\s*(?:[#;].*)?$"#,
    )
    .expect("valid regex")
});

/// A word ending in one of these makes a name secret-like on its own (`PASSWORD`, `DBPASSWORD`,
/// `HFTOKEN`); `TOKENS` and `TOKENIZERS` do not end in `TOKEN`.
const SECRET_ENDINGS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "ACCESSKEY",
    "PRIVATEKEY",
];

/// A word starting with one of these does too (`SECRETS`, `SECRETKEY`, `PASSWORDHASH`).
const SECRET_BEGINNINGS: &[&str] = &["PASSWORD", "PASSWD", "SECRET"];

/// Word pairs that make a name secret-like (`API_KEY`, `accessKey`, ...).
const SECRET_PAIRS: &[(&str, &str)] = &[("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY")];

/// Words that make a name secret-like only with a random-looking value.
const WEAK_WORDS: &[&str] = &["KEY", "AUTH", "CREDENTIAL", "CREDENTIALS", "PASS", "PWD"];

/// A last word that says the name describes a secret rather than holds it.
const DESCRIPTIVE_LAST_WORDS: &[&str] = &[
    "FILE", "PATH", "DIR", "NAME", "ENV", "VAR", "FIELD", "HEADER", "PARAM", "URL", "ENDPOINT",
    "LENGTH", "LEN", "TYPE", "PREFIX", "ID", "COUNT", "SIZE", "LIMIT", "REGEX", "PATTERN",
];

/// The upper-cased words of a name: split at `_`, `-`, `.` and camelCase boundaries.
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_ascii_uppercase()
            && match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
        if boundary && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        word.push(c.to_ascii_uppercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NameStrength {
    None,
    /// Secret-like only with a random-looking value (`key`, `auth`).
    Weak,
    /// Secret-like (`password`, `api_key`, `HF_TOKEN`).
    Strong,
}

fn name_strength(name: &str) -> NameStrength {
    let w = words(name);
    let Some(last) = w.last() else {
        return NameStrength::None;
    };
    if DESCRIPTIVE_LAST_WORDS.contains(&last.as_str()) {
        return NameStrength::None;
    }
    let strong = w.iter().any(|x| {
        SECRET_ENDINGS.iter().any(|e| x.ends_with(e))
            || SECRET_BEGINNINGS.iter().any(|b| x.starts_with(b))
    }) || w
        .windows(2)
        .any(|p| SECRET_PAIRS.contains(&(p[0].as_str(), p[1].as_str())));
    if strong {
        NameStrength::Strong
    } else if w.iter().any(|x| WEAK_WORDS.contains(&x.as_str())) {
        NameStrength::Weak
    } else {
        NameStrength::None
    }
}

/// A name that holds a secret: `HF_TOKEN`, `db_password`, `apiKey` (not `TOKENIZERS_PARALLELISM`,
/// `max_tokens` or `password_file`). The Dockerfile review uses it for `ENV` and `ARG`.
pub fn is_secret_name(name: &str) -> bool {
    name_strength(name) == NameStrength::Strong
}

/// A value that is obviously not a real credential.
fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    const MARKERS: &[&str] = &[
        "changeme",
        "change_me",
        "change-me",
        "example",
        "placeholder",
        "your_",
        "your-",
        "yourpass",
        "<",
        ">",
        "${",
        "{{",
        "%(",
        "xxx",
        "***",
        "...",
        "dummy",
        "redacted",
        "replace",
        "todo",
        "fixme",
        "sample",
        "fake",
        "secret_here",
        "insert",
    ];
    if MARKERS.iter().any(|m| lower.contains(m)) || lower.starts_with('$') {
        return true;
    }
    let mut chars = value.chars();
    let first = chars.next();
    chars.all(|c| Some(c) == first)
}

/// Bits of Shannon entropy per character.
fn entropy(value: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut n = 0usize;
    for c in value.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

fn looks_random(value: &str) -> bool {
    let classes = [
        value.chars().any(|c| c.is_ascii_lowercase()),
        value.chars().any(|c| c.is_ascii_uppercase()),
        value.chars().any(|c| c.is_ascii_digit()),
    ];
    value.chars().count() >= 16
        && classes.iter().filter(|c| **c).count() >= 2
        && entropy(value) >= 3.5
}

/// What assigning `value` to `name` looks like, if anything.
fn judge_assignment(name: &str, value: &str) -> Option<SecretKind> {
    let strength = name_strength(name);
    if strength == NameStrength::None
        || value.chars().count() < 8
        || value.chars().any(char::is_whitespace)
        || is_placeholder(value)
    {
        return None;
    }
    if looks_random(value) {
        Some(SecretKind::HighEntropyAssignment)
    } else if strength == NameStrength::Strong {
        Some(SecretKind::CredentialAssignment)
    } else {
        None
    }
}

/// Files whose values are written unquoted.
fn is_config_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    name == ".env"
        || name.starts_with(".env.")
        || [
            ".env",
            ".yml",
            ".yaml",
            ".ini",
            ".cfg",
            ".conf",
            ".properties",
        ]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The kinds of secret a line looks like it holds (each at most once).
fn line_findings(line: &str, config: bool) -> Vec<SecretKind> {
    let mut kinds: Vec<SecretKind> = TOKENS
        .iter()
        .filter(|(_, re)| re.is_match(line))
        .map(|(k, _)| *k)
        .collect();
    // A recognised token already says what the line holds.
    if kinds.is_empty() {
        let mut best: Option<SecretKind> = None;
        for c in QUOTED.captures_iter(line) {
            let value = c.get(2).or_else(|| c.get(3)).map_or("", |m| m.as_str());
            best = best.max(judge_assignment(&c[1], value));
        }
        if config {
            if let Some(c) = UNQUOTED.captures(line) {
                best = best.max(judge_assignment(&c[1], &c[2]));
            }
        }
        kinds.extend(best);
    }
    kinds
}

/// Scans every text file of the context.
pub fn scan(files: &Files) -> SecretScan {
    let mut out = SecretScan::default();
    for f in &files.files {
        let Some(text) = f.text() else {
            out.files_not_scanned += 1;
            continue;
        };
        out.files_scanned += 1;
        let config = is_config_file(&f.path);
        // A notebook stores its cells as JSON strings: `"x = \"value\""`; unescaping the quotes
        // lets the assignment pattern see the literal (one source line is one JSON line).
        let notebook = f.extension() == "ipynb";
        for (i, line) in text.lines().enumerate() {
            let unescaped;
            let line = if notebook {
                unescaped = line.replace("\\\"", "\"");
                unescaped.as_str()
            } else {
                line
            };
            for kind in line_findings(line, config) {
                if out.findings.len() < MAX_FINDINGS {
                    out.findings.push(SecretFinding {
                        kind,
                        file: f.path.clone(),
                        line: i as u64 + 1,
                    });
                } else {
                    out.omitted += 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::files::{read_tar, test_support, Limits};
    use super::*;

    fn scan_of(files: &[(&str, &[u8])]) -> SecretScan {
        scan(&read_tar(&test_support::tar_of(files), &Limits::default()))
    }

    fn kinds(line: &str) -> Vec<SecretKind> {
        line_findings(line, false)
    }

    // Made-up values in the shapes the patterns look for. Built at run time so that this file
    // does not itself look like it leaks credentials.
    fn aws() -> String {
        format!("AKIA{}", "Q7ZP3K5XW2M4N6R8")
    }
    fn github() -> String {
        format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
    }
    fn slack() -> String {
        format!("xoxb-{}", "1234567890-abcdefghijkl")
    }

    #[test]
    fn names_are_split_into_words() {
        assert_eq!(words("apiKey"), ["API", "KEY"]);
        assert_eq!(words("APIKey"), ["API", "KEY"]);
        assert_eq!(words("HF_TOKEN"), ["HF", "TOKEN"]);
        assert_eq!(words("db.password-v2"), ["DB", "PASSWORD", "V2"]);
        assert!(is_secret_name("HF_TOKEN"));
        assert!(is_secret_name("apiKey"));
        assert!(is_secret_name("AWS_SECRET_ACCESS_KEY"));
        assert!(is_secret_name("DB_PASSWORD"));
        assert!(is_secret_name("DBPASSWORD"));
        assert!(is_secret_name("githubtoken"));
        assert!(is_secret_name("SECRETKEY"));
        assert!(!is_secret_name("MAX_NEW_TOKENS"));
        assert!(!is_secret_name("TOKENIZERS_PARALLELISM"));
        assert!(!is_secret_name("max_tokens"));
        assert!(!is_secret_name("password_file"));
        assert!(!is_secret_name("monkey"));
        assert!(!is_secret_name("key"), "only with a random-looking value");
    }

    #[test]
    fn shaped_tokens() {
        use SecretKind::*;
        assert_eq!(kinds(&format!("aws_id = {}", aws())), [AwsAccessKeyId]);
        assert_eq!(kinds("-----BEGIN RSA PRIVATE KEY-----"), [PrivateKey]);
        assert_eq!(kinds("-----BEGIN OPENSSH PRIVATE KEY-----"), [PrivateKey]);
        assert_eq!(kinds("-----BEGIN PUBLIC KEY-----"), []);
        assert_eq!(kinds(&format!("t = '{}'", github())), [GithubToken]);
        assert_eq!(kinds(&format!("SLACK = \"{}\"", slack())), [SlackToken]);
        assert_eq!(kinds("AKIAIOSFODNN7EXAMPL"), [], "too short");
    }

    #[test]
    fn assignments_to_secret_names() {
        use SecretKind::*;
        assert_eq!(
            kinds(r#"password = "hunter2hunter2""#),
            [CredentialAssignment]
        );
        assert_eq!(
            kinds(r#"cfg = {"api_key": 'letmein99'}"#),
            [CredentialAssignment]
        );
        assert_eq!(
            kinds(r#"connect(db_password="s3cretpass")"#),
            [CredentialAssignment]
        );
        assert_eq!(
            kinds(r#"PASSWORD: str = "hunter2hunter2""#),
            [CredentialAssignment]
        );
        assert_eq!(
            kinds(r#"SECRET_KEY = "k8Gq2ZrT5vX9pL3mN7bW1cY4""#),
            [HighEntropyAssignment]
        );
        assert_eq!(
            kinds(r#"stripe_key = "q9Zr7Tx2Lm4Nb8Vc3Xw6Ks1""#),
            [HighEntropyAssignment],
            "a weak name with a random value"
        );
        assert_eq!(
            kinds(r#"key = "model_version""#),
            [],
            "a weak name needs randomness"
        );
    }

    #[test]
    fn placeholders_prompts_and_comparisons_are_not_secrets() {
        for line in [
            r#"password = "changeme""#,
            r#"api_key = "<your-api-key>""#,
            r#"token = "${HF_TOKEN}""#,
            r#"password = "xxxxxxxxxx""#,
            r#"API_KEY = "example-key-123""#,
            r#"password = "short""#,
            r#"password = input("Enter your password: ")"#,
            r#"if password == "hunter2hunter2":"#,
            r#"password = os.environ["DB_PASSWORD"]"#,
            r#"password_file = "/run/secrets/db_password""#,
            r#"TOKENIZERS_PARALLELISM = "falsefalse""#,
        ] {
            assert_eq!(kinds(line), [], "{line}");
        }
    }

    #[test]
    fn configuration_files_have_unquoted_values() {
        let s = scan_of(&[
            (
                ".env",
                b"# local settings\nDB_PASSWORD=hunter2hunter2\nDEBUG=true\n",
            ),
            (
                "config.yaml",
                b"db:\n  password: ${DB_PASSWORD}\n  api_token: s3cr3tT0ken\n",
            ),
            ("app.py", b"password = get_password()\n"),
        ]);
        let found: Vec<(&str, u64)> = s
            .findings
            .iter()
            .map(|f| (f.file.as_str(), f.line))
            .collect();
        assert_eq!(found, [(".env", 2), ("config.yaml", 3)]);
        assert_eq!(s.files_scanned, 3);
    }

    #[test]
    fn notebooks_are_scanned_through_their_json_escapes() {
        let nb = b"{\"cells\": [{\"cell_type\": \"code\", \"source\": [\n\"api_key = \\\"hunter2hunter2\\\"\\n\"\n]}]}";
        let s = scan_of(&[("explore.ipynb", nb)]);
        assert_eq!(s.findings.len(), 1);
        assert_eq!(s.findings[0].line, 2);
    }

    #[test]
    fn binary_files_are_counted_not_scanned() {
        let mut bin = b"\0\0".to_vec();
        bin.extend_from_slice(aws().as_bytes());
        let s = scan_of(&[("model.bin", &bin)]);
        assert!(s.findings.is_empty());
        assert_eq!(s.files_not_scanned, 1);
    }

    #[test]
    fn findings_are_bounded() {
        let text = "password = \"hunter2hunter2\"\n".repeat(MAX_FINDINGS + 5);
        let s = scan_of(&[("a.py", text.as_bytes())]);
        assert_eq!(s.findings.len(), MAX_FINDINGS);
        assert_eq!(s.omitted, 5);
    }

    #[test]
    fn a_finding_never_carries_the_value() {
        let values = [
            aws(),
            github(),
            slack(),
            "hunter2hunter2".to_string(),
            "k8Gq2ZrT5vX9pL3mN7bW1cY4".to_string(),
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".to_string(),
        ];
        let source = format!(
            "AWS_ACCESS_KEY_ID = \"{}\"\nGH = \"{}\"\nslack = '{}'\npassword = \"{}\"\n\
             SECRET_KEY = \"{}\"\n-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            values[0], values[1], values[2], values[3], values[4], values[5]
        );
        let s = scan_of(&[("settings.py", source.as_bytes())]);
        assert_eq!(s.findings.len(), 6, "{s:?}");
        let debug = format!("{s:?} {:#?}", s.findings);
        let json = serde_json::to_string(&s).unwrap();
        for v in &values {
            assert!(!debug.contains(v.as_str()), "value in Debug output");
            assert!(!json.contains(v.as_str()), "value in JSON output");
            // Nor a telling part of it.
            assert!(!json.contains(&v[..8]), "prefix of a value in JSON output");
        }
    }
}
