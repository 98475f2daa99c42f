//! Dockerfile practice: six named rules, each passed, failed or not applicable, with a message a
//! candidate can act on. These are review aids, not gates: the build sandbox enforces what must
//! hold (`sandbox::dockerfile` refuses disallowed bases; the container runs as 65534 whatever
//! `USER` says), while these rules say whether the image would be safe and quick to build
//! outside proctor.
//!
//! The instructions come from `crate::dockerfile`, the parser the sandbox's checks use too; the
//! rules read the JSON (exec) form of `RUN`, `COPY` and `ADD` as well as their shell form.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::secrets::is_secret_name;
use crate::dockerfile::{expand, instructions, Instruction};

/// The rules, in the order their findings are listed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The image runs as a user other than root: the final stage's last `USER` is a uid other
    /// than 0 or a name other than `root`.
    NonRootUser,
    /// Every base image has a tag other than `latest`, or a digest.
    PinnedBase,
    /// The context has a `.dockerignore`.
    Dockerignore,
    /// Dependencies are installed before the whole context is copied, so that a code change
    /// does not reinstall them.
    DependenciesBeforeCopy,
    /// No `ENV` or `ARG` gives a secret-like name a literal value (it would stay in the image).
    NoSecretsInEnv,
    /// A `HEALTHCHECK`, or a health or readiness route documented in the README.
    Healthcheck,
}

impl Rule {
    pub const ALL: [Rule; 6] = [
        Rule::NonRootUser,
        Rule::PinnedBase,
        Rule::Dockerignore,
        Rule::DependenciesBeforeCopy,
        Rule::NoSecretsInEnv,
        Rule::Healthcheck,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    NotApplicable,
}

/// One rule's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    pub rule: Rule,
    pub status: Status,
    pub message: String,
    /// The Dockerfile line (1-based) the finding points at, when there is one.
    pub line: Option<u64>,
}

/// What the rules need to know about the rest of the context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextFacts {
    pub has_dockerignore: bool,
    /// The README documents a health or readiness route (see `readme::Readme::documents_probe`).
    pub readme_documents_probe: bool,
}

/// The words of an exec-form (`["a", "b"]`) argument list, or None for the shell form.
fn exec_form(args: &str) -> Option<Vec<String>> {
    let a = args.trim();
    if !a.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(a).ok()
}

/// Splits shell-form arguments into words the way the builder does for `ENV`, `ARG` and `LABEL`:
/// at whitespace outside quotes, quotes removed, a backslash escaping the next character.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// `(name, value)` of every variable an `ENV` or `ARG` sets (`ARG NAME` alone sets none).
fn assignments(ins: &Instruction) -> Vec<(String, String)> {
    let words = shell_words(&ins.args);
    match ins.keyword.as_str() {
        // The legacy form `ENV NAME value with spaces`.
        "ENV" if words.first().is_some_and(|w| !w.contains('=')) => {
            let (name, value) = ins
                .args
                .split_once(char::is_whitespace)
                .unwrap_or((&ins.args, ""));
            let value = shell_words(value).join(" ");
            vec![(name.to_string(), value)]
        }
        "ENV" | "ARG" => words
            .iter()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

/// One build stage: its `FROM` and what follows it.
struct Stage {
    from_line: u64,
    /// The image as written (variables not expanded); empty for a `FROM` without one.
    image: String,
    /// `AS name`, lower-cased.
    name: Option<String>,
    instructions: Vec<Instruction>,
}

struct Parsed {
    /// `ARG`s before the first `FROM`.
    global: Vec<Instruction>,
    stages: Vec<Stage>,
}

fn parse(text: &str) -> Parsed {
    let mut p = Parsed {
        global: Vec::new(),
        stages: Vec::new(),
    };
    for ins in instructions(text) {
        if ins.keyword == "FROM" {
            let words: Vec<&str> = ins
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => {
                    Some(name.to_ascii_lowercase())
                }
                _ => None,
            };
            p.stages.push(Stage {
                from_line: ins.line,
                image: words.first().unwrap_or(&"").to_string(),
                name,
                instructions: Vec::new(),
            });
        } else {
            match p.stages.last_mut() {
                Some(stage) => stage.instructions.push(ins),
                None => p.global.push(ins),
            }
        }
    }
    p
}

impl Parsed {
    /// Variables set by the global `ARG`s with a default.
    fn global_vars(&self) -> HashMap<String, String> {
        self.global.iter().flat_map(assignments).collect()
    }

    /// The index of the earlier stage a stage builds `FROM`, if it does.
    fn parent(&self, index: usize) -> Option<usize> {
        let image = self.stages[index].image.to_ascii_lowercase();
        self.stages[..index]
            .iter()
            .rposition(|s| s.name.as_deref() == Some(image.as_str()))
    }

    /// The final stage, then the stages it builds upon, nearest first: what the image that runs
    /// inherits its settings (`USER`, `HEALTHCHECK`) from.
    fn final_chain(&self) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut at = self.stages.len().checked_sub(1);
        while let Some(i) = at {
            chain.push(i);
            // Only earlier stages: the walk always ends.
            at = self.parent(i);
        }
        chain
    }
}

fn finding(rule: Rule, status: Status, message: impl Into<String>, line: Option<u64>) -> Finding {
    Finding {
        rule,
        status,
        message: message.into(),
        line,
    }
}

/// Every rule's finding for a Dockerfile, in `Rule::ALL` order.
pub fn findings(dockerfile: &str, facts: &ContextFacts) -> Vec<Finding> {
    let parsed = parse(dockerfile);
    vec![
        non_root_user(&parsed),
        pinned_base(&parsed),
        dockerignore(facts),
        dependencies_before_copy(&parsed),
        no_secrets_in_env(&parsed),
        healthcheck(&parsed, facts),
    ]
}

fn non_root_user(p: &Parsed) -> Finding {
    let rule = Rule::NonRootUser;
    let chain = p.final_chain();
    if chain.is_empty() {
        return finding(rule, Status::Fail, "the Dockerfile has no FROM", None);
    }
    let user = chain.iter().find_map(|&i| {
        let s = &p.stages[i];
        s.instructions
            .iter()
            .rev()
            .find(|ins| ins.keyword == "USER")
            .map(|ins| (i, ins))
    });
    let Some((stage, ins)) = user else {
        return finding(
            rule,
            Status::Fail,
            "no USER in the final stage: the image runs as root; add e.g. `USER 10001` after \
             the steps that need root",
            None,
        );
    };
    // Variables from the global ARGs and the stage's own ARG/ENV before the USER line.
    let mut vars = p.global_vars();
    for i in p.stages[stage]
        .instructions
        .iter()
        .take_while(|x| x.line < ins.line)
    {
        vars.extend(assignments(i));
    }
    let written = ins.args.split_whitespace().next().unwrap_or("");
    let Some(value) = expand(written, &vars) else {
        return finding(
            rule,
            Status::Fail,
            format!("USER {written} uses a variable without a value in the Dockerfile; name the user directly"),
            Some(ins.line),
        );
    };
    let user = value.split(':').next().unwrap_or("");
    let root = match user.parse::<u64>() {
        Ok(uid) => uid == 0,
        Err(_) => user.is_empty() || user == "root",
    };
    if root {
        finding(
            rule,
            Status::Fail,
            format!("USER {written} is root; use an unprivileged user"),
            Some(ins.line),
        )
    } else {
        finding(
            rule,
            Status::Pass,
            format!("runs as USER {written}"),
            Some(ins.line),
        )
    }
}

/// Why an image reference is not pinned, if it is not.
fn unpinned(image: &str) -> Option<&'static str> {
    if image.contains("@sha256:") {
        return None;
    }
    // A registry port (`host:5000/img`) is not a tag: look at the last path component.
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Some("has no tag, which means `latest`"),
        Some((_, tag)) if tag.is_empty() || tag.eq_ignore_ascii_case("latest") => {
            Some("uses the `latest` tag")
        }
        Some(_) => None,
    }
}

fn pinned_base(p: &Parsed) -> Finding {
    let rule = Rule::PinnedBase;
    if p.stages.is_empty() {
        return finding(rule, Status::Fail, "the Dockerfile has no FROM", None);
    }
    let vars = p.global_vars();
    let mut bases = Vec::new();
    let mut problems = Vec::new();
    let mut first_line = None;
    for (i, stage) in p.stages.iter().enumerate() {
        if p.parent(i).is_some() || stage.image.eq_ignore_ascii_case("scratch") {
            continue;
        }
        let why = match expand(&stage.image, &vars) {
            _ if stage.image.is_empty() => Some("FROM without an image".to_string()),
            None => Some(format!(
                "FROM {} uses a build argument without a default",
                stage.image
            )),
            Some(image) => {
                bases.push(image.clone());
                unpinned(&image).map(|why| format!("FROM {image} {why}"))
            }
        };
        if let Some(why) = why {
            first_line.get_or_insert(stage.from_line);
            problems.push(format!("{why} (line {})", stage.from_line));
        }
    }
    if problems.is_empty() {
        let what = if bases.is_empty() {
            "no external base image".to_string()
        } else {
            format!("pinned: {}", bases.join(", "))
        };
        finding(rule, Status::Pass, what, None)
    } else {
        finding(
            rule,
            Status::Fail,
            format!(
                "{}; pin a version tag or a digest so that rebuilds get the same base",
                problems.join("; ")
            ),
            first_line,
        )
    }
}

fn dockerignore(facts: &ContextFacts) -> Finding {
    if facts.has_dockerignore {
        finding(
            Rule::Dockerignore,
            Status::Pass,
            ".dockerignore present",
            None,
        )
    } else {
        finding(
            Rule::Dockerignore,
            Status::Fail,
            "no .dockerignore: everything in the folder (data, caches, virtualenvs, .env files) \
             is sent to the builder and may be copied into the image",
            None,
        )
    }
}

/// A command that installs dependencies.
static INSTALLS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        \b(?: pip3? | python[0-9.]*\s+-m\s+pip | uv\s+pip | pipenv ) \s+ install\b
        | \bapt(?:-get)?\s+(?:-\S+\s+)*install\b
        | \b(?:conda|mamba|micromamba)\s+(?:env\s+)?(?:install|create|update)\b
        | \bpoetry\s+install\b
        | \buv\s+sync\b
        | \bapk\s+add\b
        ",
    )
    .expect("valid regex")
});

/// The command a `RUN` runs, as one string for matching.
fn run_command(ins: &Instruction) -> String {
    match exec_form(&ins.args) {
        Some(words) => words.join(" "),
        None => ins.args.clone(),
    }
}

/// `COPY` or `ADD` of the whole build context (`.`, `./`, `*`), not from another stage.
fn copies_whole_context(ins: &Instruction) -> bool {
    if ins.keyword != "COPY" && ins.keyword != "ADD" {
        return false;
    }
    let mut args = ins.args.trim();
    let mut from_stage = false;
    while let Some(rest) = args.strip_prefix("--") {
        let (flag, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        from_stage |= flag.to_ascii_lowercase().starts_with("from=");
        args = after.trim_start();
    }
    if from_stage {
        return false;
    }
    let words =
        exec_form(args).unwrap_or_else(|| args.split_whitespace().map(String::from).collect());
    let Some((_, sources)) = words.split_last() else {
        return false;
    };
    sources.iter().any(|s| {
        let s = s.trim_end_matches('/');
        matches!(s, "." | "" | "./." | "*" | "./*")
    })
}

fn dependencies_before_copy(p: &Parsed) -> Finding {
    let rule = Rule::DependenciesBeforeCopy;
    let mut any_install = false;
    for stage in &p.stages {
        let ins = &stage.instructions;
        let Some(install) = ins
            .iter()
            .position(|i| i.keyword == "RUN" && INSTALLS.is_match(&run_command(i)))
        else {
            continue;
        };
        any_install = true;
        if let Some(copy) = ins[..install].iter().find(|i| copies_whole_context(i)) {
            return finding(
                rule,
                Status::Fail,
                format!(
                    "{} on line {} copies the whole context before dependencies are installed \
                     on line {}: every code change reinstalls them; copy the requirements or \
                     lock file first, install, then copy the rest",
                    copy.keyword, copy.line, ins[install].line
                ),
                Some(copy.line),
            );
        }
    }
    if any_install {
        finding(
            rule,
            Status::Pass,
            "dependencies are installed before the whole context is copied",
            None,
        )
    } else {
        finding(
            rule,
            Status::NotApplicable,
            "no RUN installs dependencies (pip, uv, poetry, conda, apt-get, apk)",
            None,
        )
    }
}

fn no_secrets_in_env(p: &Parsed) -> Finding {
    let rule = Rule::NoSecretsInEnv;
    let all = p
        .global
        .iter()
        .chain(p.stages.iter().flat_map(|s| s.instructions.iter()));
    let mut leaks = Vec::new();
    let mut first_line = None;
    for ins in all {
        for (name, value) in assignments(ins) {
            // A value from another variable (`${API_KEY}`) is not written in the Dockerfile.
            let literal = !value.is_empty() && !value.starts_with('$');
            if literal && is_secret_name(&name) {
                first_line.get_or_insert(ins.line);
                // The name and the line only: the value must not reach the report.
                leaks.push(format!("{} {name} (line {})", ins.keyword, ins.line));
            }
        }
    }
    if leaks.is_empty() {
        finding(
            rule,
            Status::Pass,
            "no ENV or ARG sets a secret-like name to a literal value",
            None,
        )
    } else {
        finding(
            rule,
            Status::Fail,
            format!(
                "literal values for secret-like names stay in the image's history: {}; pass \
                 secrets at run time instead",
                leaks.join(", ")
            ),
            first_line,
        )
    }
}

fn healthcheck(p: &Parsed, facts: &ContextFacts) -> Finding {
    let rule = Rule::Healthcheck;
    let last = p.final_chain().into_iter().find_map(|i| {
        p.stages[i]
            .instructions
            .iter()
            .rev()
            .find(|ins| ins.keyword == "HEALTHCHECK")
    });
    match last {
        Some(ins) if !ins.args.trim().eq_ignore_ascii_case("none") => {
            finding(rule, Status::Pass, "HEALTHCHECK declared", Some(ins.line))
        }
        _ if facts.readme_documents_probe => finding(
            rule,
            Status::Pass,
            "no HEALTHCHECK, but the README documents a health or readiness route",
            None,
        ),
        _ => finding(
            rule,
            Status::Fail,
            "no HEALTHCHECK and no health or readiness route in the README: an orchestrator \
             cannot tell a started service from a ready one",
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: ContextFacts = ContextFacts {
        has_dockerignore: true,
        readme_documents_probe: false,
    };

    fn status(dockerfile: &str, rule: Rule) -> (Status, String, Option<u64>) {
        let f = findings(dockerfile, &GOOD)
            .into_iter()
            .find(|f| f.rule == rule)
            .unwrap();
        (f.status, f.message, f.line)
    }

    #[test]
    fn shell_words_and_env_forms() {
        assert_eq!(
            shell_words(r#"A="x y" B=c\ d 'e f'"#),
            ["A=x y", "B=c d", "e f"]
        );
        let env = |args: &str| {
            assignments(&Instruction {
                line: 1,
                keyword: "ENV".into(),
                args: args.into(),
            })
        };
        assert_eq!(
            env("KEY value with spaces"),
            [("KEY".into(), "value with spaces".into())]
        );
        assert_eq!(
            env(r#"A=1 B="two words""#),
            [("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
    }

    #[test]
    fn non_root_user() {
        let df = |user: &str| format!("FROM python:3.11-slim\nRUN true\n{user}\nCMD [\"x\"]\n");
        assert_eq!(
            status(&df("USER 65534:65534"), Rule::NonRootUser).0,
            Status::Pass
        );
        assert_eq!(status(&df("USER app"), Rule::NonRootUser).0, Status::Pass);
        assert_eq!(status(&df("user 10001"), Rule::NonRootUser).0, Status::Pass);
        assert_eq!(status(&df("USER 0"), Rule::NonRootUser).0, Status::Fail);
        assert_eq!(
            status(&df("USER root:root"), Rule::NonRootUser).0,
            Status::Fail
        );
        assert_eq!(status(&df(""), Rule::NonRootUser).0, Status::Fail);
        // The last USER counts.
        assert_eq!(
            status(&df("USER app\nRUN x\nUSER root"), Rule::NonRootUser),
            (
                Status::Fail,
                "USER root is root; use an unprivileged user".into(),
                Some(5)
            )
        );
        // Variables resolve from ARG and ENV defaults.
        assert_eq!(
            status(&df("ARG UID=1000\nUSER ${UID}"), Rule::NonRootUser).0,
            Status::Pass
        );
        assert_eq!(status(&df("USER $NOPE"), Rule::NonRootUser).0, Status::Fail);
    }

    #[test]
    fn the_final_stage_decides_the_user() {
        let multi = "FROM python:3.11 AS build\nUSER app\nRUN make\nFROM python:3.11-slim\nCOPY --from=build /w /w\n";
        assert_eq!(status(multi, Rule::NonRootUser).0, Status::Fail);
        let inherits = "FROM python:3.11 AS base\nUSER app\nFROM base\nCMD x\n";
        assert_eq!(status(inherits, Rule::NonRootUser).0, Status::Pass);
    }

    #[test]
    fn pinned_base() {
        let ok = |df: &str| status(df, Rule::PinnedBase).0 == Status::Pass;
        assert!(ok("FROM python:3.11-slim"));
        assert!(ok("FROM --platform=linux/amd64 python:3.11 AS b\nFROM b\n"));
        assert!(ok("FROM python@sha256:0123abcd"));
        assert!(ok("FROM registry.local:5000/team/py:1.2"));
        assert!(ok("ARG V=3.11\nFROM python:${V}"));
        assert!(ok("FROM scratch"));
        assert!(!ok("FROM python"));
        assert!(!ok("FROM python:latest"));
        assert!(!ok("FROM registry.local:5000/team/py"));
        assert!(!ok("ARG V\nFROM python:${V}"));
        assert!(!ok("FROM python:3.11 AS a\nFROM ubuntu\n"));
        assert!(!ok(""));
    }

    #[test]
    fn dockerignore() {
        let f = findings("FROM x:1", &ContextFacts::default());
        assert_eq!(f[2].rule, Rule::Dockerignore);
        assert_eq!(f[2].status, Status::Fail);
        assert_eq!(findings("FROM x:1", &GOOD)[2].status, Status::Pass);
    }

    #[test]
    fn dependencies_before_copy() {
        let st = |df: &str| status(df, Rule::DependenciesBeforeCopy).0;
        let good = "FROM p:1\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\nRUN pip install --no-deps .\n";
        assert_eq!(st(good), Status::Pass);
        let poetry = "FROM p:1\nCOPY pyproject.toml poetry.lock ./\nRUN poetry install --no-root\nCOPY . .\n";
        assert_eq!(st(poetry), Status::Pass);
        let bad = "FROM p:1\nCOPY . .\nRUN python3 -m pip install -r requirements.txt\n";
        assert_eq!(
            status(bad, Rule::DependenciesBeforeCopy).2,
            Some(2),
            "points at the COPY"
        );
        assert_eq!(st(bad), Status::Fail);
        assert_eq!(
            st("FROM p:1\nADD ./ /app\nRUN apt-get -y install gcc\n"),
            Status::Fail
        );
        assert_eq!(
            st("FROM p:1\nCOPY [\".\", \"/app\"]\nRUN [\"uv\", \"pip\", \"install\", \"x\"]\n"),
            Status::Fail
        );
        assert_eq!(
            st("FROM p:1\nCOPY --chown=1:1 * /app/\nRUN conda env create -f env.yml\n"),
            Status::Fail
        );
        // Copying the whole output of another stage is not copying the context.
        assert_eq!(
            st("FROM p:1 AS b\nFROM p:1\nCOPY --from=b . .\nRUN pip install x\n"),
            Status::Pass
        );
        // No dependency step at all: the reference trains at build time, nothing to install.
        assert_eq!(
            st("FROM p:1\nCOPY . .\nRUN python3 train.py\n"),
            Status::NotApplicable
        );
    }

    #[test]
    fn secrets_in_env_and_arg_are_named_never_shown() {
        let df = "ARG HF_TOKEN=hf_abcdefghijklmnop\nFROM p:1\nENV TOKENIZERS_PARALLELISM=false API_KEY=${API_KEY}\nENV DB_PASSWORD hunter2hunter2\nARG GITHUB_TOKEN\n";
        let (st, msg, line) = status(df, Rule::NoSecretsInEnv);
        assert_eq!(st, Status::Fail);
        assert_eq!(line, Some(1));
        assert!(msg.contains("ARG HF_TOKEN (line 1)"), "{msg}");
        assert!(msg.contains("ENV DB_PASSWORD (line 4)"), "{msg}");
        assert!(
            !msg.contains("API_KEY"),
            "a variable reference is not a literal: {msg}"
        );
        assert!(
            !msg.contains("GITHUB_TOKEN"),
            "an ARG without a default sets nothing"
        );
        let all = format!("{:?}", findings(df, &GOOD));
        assert!(!all.contains("hf_abcdefghijklmnop") && !all.contains("hunter2hunter2"));
        assert_eq!(
            status("FROM p:1\nENV MODEL_DIR=/m\n", Rule::NoSecretsInEnv).0,
            Status::Pass
        );
    }

    #[test]
    fn healthcheck() {
        let hc = "FROM p:1\nHEALTHCHECK --interval=5s CMD curl -f http://localhost:8080/health\n";
        assert_eq!(
            status(hc, Rule::Healthcheck),
            (Status::Pass, "HEALTHCHECK declared".into(), Some(2))
        );
        assert_eq!(
            status("FROM p:1\nHEALTHCHECK NONE\n", Rule::Healthcheck).0,
            Status::Fail
        );
        assert_eq!(status("FROM p:1\n", Rule::Healthcheck).0, Status::Fail);
        let documented = ContextFacts {
            readme_documents_probe: true,
            ..GOOD
        };
        assert_eq!(findings("FROM p:1\n", &documented)[5].status, Status::Pass);
    }

    #[test]
    fn a_bad_dockerfile_fails_every_rule() {
        let bad = "\
from python
env AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCY
copy . /app
run pip install -r /app/requirements.txt
";
        let f = findings(bad, &ContextFacts::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), Rule::ALL);
        for f in &f {
            assert_eq!(f.status, Status::Fail, "{f:?}");
        }
        assert!(!format!("{f:?}").contains("wJalrXUtnFEMIK7MDENGbPxRfiCY"));
    }
}
