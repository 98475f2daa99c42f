//! The README: is there one, how big, does it say how to build and run the service ("run
//! notes") and does it explain the design ("design notes"). Simple heuristics, meant to point a
//! reviewer at what to read, not to grade prose:
//!
//! - **Which file**: `README.md`, `README`, `README.rst`, `README.txt` or `README.markdown` at the
//!   context root, any case, in that order of preference. A README that `.dockerignore` leaves
//!   out is not in the build context and so is not found.
//! - **Run notes**, any one of: `docker build` (or `docker compose build`), `docker run` (or
//!   `docker compose up`), a port (`port 8080`, `-p 8080:8080`, `localhost:8080`,
//!   `--port 8080`, `EXPOSE 8080`), or a command in a code block (a fenced or indented line
//!   that starts with `$ ` or with a known command: `docker`, `python`, `uvicorn`, `curl`,
//!   `make`, `pip`, `pytest`, ...).
//! - **Design notes**: a heading (Markdown `#` or underlined, reStructuredText underlined)
//!   naming a topic, or a prose paragraph of 12 words or more that mentions one. Topics:
//!   design, architecture, model choice (a heading with "model"; in a paragraph "model" with
//!   "chose", "choice", "instead of", "compared", "baseline", ...), trade-offs, decisions,
//!   monitoring, drift. Table rows and code blocks are not prose.
//! - **A documented probe**: a route whose last segment names a health or readiness check
//!   (`/health`, `/healthz`, `/ready`, `/v1/readyz`, `/livez`, `/ping`, `/status`), or the
//!   words "health/readiness/liveness route, endpoint or probe". The Dockerfile's
//!   `HEALTHCHECK` rule accepts it in place of the instruction.

use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::files::Files;

/// README names at the context root, most preferred first (compared lower-cased).
const NAMES: &[&str] = &[
    "readme.md",
    "readme",
    "readme.rst",
    "readme.txt",
    "readme.markdown",
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Readme {
    /// The README's path; absent when there is none.
    pub path: Option<String>,
    pub bytes: u64,
    /// Lines, when it was read as text (a README larger than the text limit, or not UTF-8, is
    /// only sized).
    pub lines: u64,
    /// It says how to build or run the service.
    pub run_notes: bool,
    /// What made `run_notes` true.
    pub run_signals: Vec<RunSignal>,
    /// It explains the design.
    pub design_notes: bool,
    /// What made `design_notes` true.
    pub design_topics: Vec<DesignTopic>,
    /// It names a health or readiness route.
    pub documents_probe: bool,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RunSignal {
    DockerBuild,
    DockerRun,
    Port,
    CodeBlockCommand,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DesignTopic {
    Design,
    Architecture,
    ModelChoice,
    TradeOffs,
    Decisions,
    Monitoring,
    Drift,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid regex")
}

static DOCKER_BUILD: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\bdocker\s+(?:buildx\s+)?build\b|\bdocker[- ]compose\s+build\b"));
static DOCKER_RUN: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\bdocker\s+(?:container\s+)?run\b|\bdocker[- ]compose\s+up\b"));
static PORT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?ix)
        \bport\s*[:=]?\s*\d{2,5}\b
        | \b(?:localhost|127\.0\.0\.1|0\.0\.0\.0):\d{2,5}\b
        | (?:^|\s)-p\s+(?:[\d.]+:)?\d{2,5}(?::\d{2,5})?\b
        | --port[\s=]\d{2,5}\b
        | \bexpose\s+\d{2,5}\b
    ")
});
/// A command line in a code block: a prompt, or a command a README would tell one to run.
static COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?x)
        ^(?:\$|>)\s+\S
        | ^(?:sudo\s+)?(?: docker | docker-compose | podman | python3? | uvicorn | gunicorn | curl
          | wget | http | make | pip3? | poetry | uv | pipenv | conda | bash | sh | pytest | flask
          | streamlit | mlflow | bentoml | kubectl | helm | \./[\w.\-/]+ )(?:\s|$)
    ")
});
static PROBE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?ix)
        /(?:[\w.\-]+/)*(?:health\w*|ready\w*|readiness|livez?|liveness|ping|status)\b
        | \b(?:health|readiness|ready|liveness)[\s-]+(?:route|endpoint|probe|check\s+(?:route|endpoint))s?\b
    ")
});

/// Topic patterns for headings and for paragraphs. A paragraph needs every pattern of its list.
fn topics() -> &'static [(DesignTopic, Regex, Vec<Regex>)] {
    static T: LazyLock<Vec<(DesignTopic, Regex, Vec<Regex>)>> = LazyLock::new(|| {
        use DesignTopic::*;
        vec![
            (
                Design,
                re(r"(?i)\bdesign"),
                vec![re(r"(?i)\bdesign(?:ed)?\b")],
            ),
            (
                Architecture,
                re(r"(?i)\barchitect"),
                vec![re(r"(?i)\barchitecture|\barchitectural\b")],
            ),
            (
                ModelChoice,
                re(r"(?i)\bmodel"),
                vec![
                    re(r"(?i)\bmodels?\b"),
                    re(
                        r"(?i)\b(?:chose|chosen|choose|choice|picked|selected|instead of|compared|outperform\w*|baseline|alternatives?)\b",
                    ),
                ],
            ),
            (
                TradeOffs,
                re(r"(?i)\btrade[\s-]?offs?\b"),
                vec![re(r"(?i)\btrade[\s-]?offs?\b")],
            ),
            (
                Decisions,
                re(r"(?i)\bdecision|\bdecided\b|\bwhy\b"),
                vec![re(r"(?i)\bdecisions?\b|\bdecided\b")],
            ),
            (
                Monitoring,
                re(r"(?i)\bmonitor|\bobservability\b"),
                vec![re(r"(?i)\bmonitor(?:s|ed|ing)?\b|\bobservability\b")],
            ),
            (Drift, re(r"(?i)\bdrift"), vec![re(r"(?i)\bdrift")]),
        ]
    });
    &T
}

/// Shortest paragraph, in words, whose mention of a topic counts.
const MIN_PARAGRAPH_WORDS: usize = 12;

/// The README's parts that the heuristics look at.
#[derive(Debug, Default, PartialEq, Eq)]
struct Parts {
    headings: Vec<String>,
    paragraphs: Vec<String>,
    code_lines: Vec<String>,
}

/// A line that underlines the heading above it (`===`, `---`, `~~~`, ...).
fn is_underline(line: &str) -> bool {
    let t = line.trim();
    let Some(first) = t.chars().next() else {
        return false;
    };
    t.len() >= 3 && "=-~^\"'`#*+:._".contains(first) && t.chars().all(|c| c == first)
}

fn split_parts(text: &str) -> Parts {
    let mut parts = Parts::default();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut fence: Option<&str> = None;
    let lines: Vec<&str> = text.lines().collect();
    let flush = |paragraph: &mut Vec<&str>, parts: &mut Parts| {
        if !paragraph.is_empty() {
            parts.paragraphs.push(paragraph.join(" "));
            paragraph.clear();
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        i += 1;
        if let Some(f) = fence {
            if t.starts_with(f) {
                fence = None;
            } else {
                parts.code_lines.push(t.to_string());
            }
            continue;
        }
        if t.starts_with("```") || t.starts_with("~~~") {
            flush(&mut paragraph, &mut parts);
            fence = Some(&t[..3]);
            continue;
        }
        if t.is_empty() {
            flush(&mut paragraph, &mut parts);
            continue;
        }
        if let Some(h) = t.strip_prefix('#') {
            flush(&mut paragraph, &mut parts);
            parts
                .headings
                .push(h.trim_start_matches('#').trim().to_string());
            continue;
        }
        // An underlined heading: this line, then a line of one repeated character. (A lone
        // underline line, an reStructuredText overline, is skipped as punctuation.)
        if lines.get(i).is_some_and(|next| is_underline(next)) && !is_underline(line) {
            flush(&mut paragraph, &mut parts);
            parts.headings.push(t.to_string());
            i += 1;
            continue;
        }
        if is_underline(line) {
            continue;
        }
        // Indented lines may be code (Markdown's indented blocks, reStructuredText's `::`
        // blocks) or a list item's continuation: they count for both.
        if line.starts_with("    ") || line.starts_with('\t') {
            parts.code_lines.push(t.to_string());
        }
        // Table rows are not prose.
        if t.starts_with('|') || t.starts_with("+-") {
            flush(&mut paragraph, &mut parts);
            continue;
        }
        paragraph.push(t);
    }
    flush(&mut paragraph, &mut parts);
    parts
}

fn analyse_text(text: &str, readme: &mut Readme) {
    readme.lines = text.lines().count() as u64;
    let parts = split_parts(text);
    let mut signals = Vec::new();
    if DOCKER_BUILD.is_match(text) {
        signals.push(RunSignal::DockerBuild);
    }
    if DOCKER_RUN.is_match(text) {
        signals.push(RunSignal::DockerRun);
    }
    if PORT.is_match(text) {
        signals.push(RunSignal::Port);
    }
    if parts.code_lines.iter().any(|l| COMMAND.is_match(l)) {
        signals.push(RunSignal::CodeBlockCommand);
    }
    readme.run_notes = !signals.is_empty();
    readme.run_signals = signals;

    let mut found = Vec::new();
    for (topic, heading, paragraph) in topics() {
        let in_heading = parts.headings.iter().any(|h| heading.is_match(h));
        let in_paragraph = parts.paragraphs.iter().any(|p| {
            p.split_whitespace().count() >= MIN_PARAGRAPH_WORDS
                && paragraph.iter().all(|r| r.is_match(p))
        });
        if in_heading || in_paragraph {
            found.push(*topic);
        }
    }
    readme.design_notes = !found.is_empty();
    readme.design_topics = found;
    readme.documents_probe = PROBE.is_match(text);
}

/// Finds and reads the README of the context.
pub fn analyse(files: &Files) -> Readme {
    let mut readme = Readme::default();
    let found = NAMES.iter().find_map(|name| {
        files
            .files
            .iter()
            .find(|f| !f.path.contains('/') && f.path.eq_ignore_ascii_case(name))
    });
    let Some(file) = found else {
        return readme;
    };
    readme.path = Some(file.path.clone());
    readme.bytes = file.size;
    if let Some(text) = file.text() {
        analyse_text(text, &mut readme);
    }
    readme
}

#[cfg(test)]
mod tests {
    use super::super::files::{read_tar, test_support, Limits};
    use super::*;

    fn of(text: &str) -> Readme {
        let mut r = Readme::default();
        analyse_text(text, &mut r);
        r
    }

    fn readme_of(files: &[(&str, &[u8])]) -> Readme {
        analyse(&read_tar(&test_support::tar_of(files), &Limits::default()))
    }

    #[test]
    fn finds_the_root_readme_by_preference() {
        let r = readme_of(&[
            ("docs/README.md", b"# nested"),
            ("readme.txt", b"plain"),
            ("README.md", b"# Title\n\nText.\n"),
        ]);
        assert_eq!(r.path.as_deref(), Some("README.md"));
        assert_eq!(r.bytes, 15);
        assert_eq!(r.lines, 3);
        assert_eq!(
            readme_of(&[("Readme.TXT", b"x")]).path.as_deref(),
            Some("Readme.TXT")
        );
        assert_eq!(readme_of(&[("docs/README.md", b"x")]), Readme::default());
    }

    #[test]
    fn run_notes() {
        use RunSignal::*;
        assert_eq!(
            of("Build with `docker build -t svc .`").run_signals,
            [DockerBuild]
        );
        assert_eq!(
            of("docker run -p 8080:8080 svc").run_signals,
            [DockerRun, Port]
        );
        assert_eq!(of("The service listens on port 8080.").run_signals, [Port]);
        assert_eq!(of("Open http://localhost:8000/docs").run_signals, [Port]);
        assert_eq!(
            of("Start it:\n\n```sh\nuvicorn app:app --host 0.0.0.0\n```\n").run_signals,
            [CodeBlockCommand]
        );
        assert_eq!(
            of("Usage::\n\n    $ make serve\n").run_signals,
            [CodeBlockCommand]
        );
        let none = of("# Churn\n\nA model.\n\n```python\nimport app\n```\n");
        assert!(!none.run_notes);
        assert!(none.run_signals.is_empty());
    }

    #[test]
    fn design_notes_from_headings_and_paragraphs() {
        use DesignTopic::*;
        assert_eq!(
            of("## Design decisions\n\nShort.\n").design_topics,
            [Design, Decisions]
        );
        assert_eq!(
            of("Architecture\n============\n\nx\n").design_topics,
            [Architecture]
        );
        assert_eq!(
            of("Model\n-----\nLogistic regression.\n").design_topics,
            [ModelChoice]
        );
        let prose = "We chose a gradient boosting model over logistic regression because it \
                     handled the skewed features better on validation.";
        assert_eq!(of(prose).design_topics, [ModelChoice]);
        let tradeoff = "The main trade-off is latency against accuracy: a bigger ensemble \
                        would add a few points of AUC but triple the p99 latency.";
        assert_eq!(of(tradeoff).design_topics, [TradeOffs]);
        // Too short to count, or not prose.
        assert!(!of("No drift here.").design_notes);
        assert!(!of("| `drift.py` | the drift window, the per-feature tests and the report of the drift route |").design_notes);
        assert!(!of("```\n# design\ndrift = monitor(model) # a long enough line of code to be a paragraph\n```\n").design_notes);
    }

    #[test]
    fn documented_probes() {
        assert!(of("`GET /health` answers 200 when the model is loaded").documents_probe);
        assert!(of("readiness: GET /v1/models/churn/ready").documents_probe);
        assert!(of("curl localhost:8080/healthz").documents_probe);
        assert!(of("The readiness endpoint is the model route.").documents_probe);
        assert!(!of("A mapping of /mapping routes, a /predictions route.").documents_probe);
        assert!(!of("Everything is healthy.").documents_probe);
    }

    #[test]
    fn an_oversized_readme_is_only_sized() {
        let big = "docker run x\n".repeat(100);
        let tar = test_support::tar_of(&[("README.md", big.as_bytes())]);
        let limits = Limits {
            max_text_bytes: 100,
            ..Limits::default()
        };
        let r = analyse(&read_tar(&tar, &limits));
        assert_eq!(r.bytes, big.len() as u64);
        assert!(!r.run_notes);
        assert_eq!(r.lines, 0);
    }

    #[test]
    fn the_reference_readme() {
        let r = analyse(&read_tar(
            &test_support::reference_tar(),
            &Limits::default(),
        ));
        assert_eq!(r.path.as_deref(), Some("README.md"));
        assert!(r.run_notes);
        assert!(r.run_signals.contains(&RunSignal::DockerBuild));
        assert!(r.run_signals.contains(&RunSignal::DockerRun));
        assert!(r.design_notes);
        assert!(r.design_topics.contains(&DesignTopic::ModelChoice));
        assert!(r.design_topics.contains(&DesignTopic::Drift));
    }
}
