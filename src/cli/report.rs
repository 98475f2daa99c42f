//! `proctor report`: an existing report JSON drawn again in another format or for another
//! reader; and the `--format` / `--view` values that `proctor grade` shares.

use std::path::{Path, PathBuf};

use crate::exit;
use crate::report::{self, Render, Report, View};

#[derive(clap::Args, Debug)]
pub(super) struct ReportArgs {
    /// A report JSON written by `proctor grade` (its --out), in the grader's view (a candidate's
    /// view has no hidden checks left to show).
    report: PathBuf,
    /// The format to draw: `json` (the report as the view sees it), `summary` (the terminal
    /// summary), `markdown` (for a GitHub job summary or a merge-request comment), `junit`
    /// (JUnit XML for CI test tabs), `gradescope` (a Gradescope autograder's results.json) or
    /// `html` (one self-contained page with charts: no script, nothing fetched; opens from disk
    /// or as a CI artifact).
    #[arg(long, value_enum)]
    format: Format,
    /// Who reads it: `grader` (everything) or `candidate` (hidden checks only counted, per
    /// category, never named).
    #[arg(long, value_enum, default_value = "grader")]
    view: ViewArg,
    /// Write to this file (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// An output format of the report.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Summary,
    Markdown,
    Junit,
    Gradescope,
    Html,
}

impl Format {
    pub(super) fn render(self, r: &Report, view: View) -> String {
        match self {
            Format::Json => report::Json.render(r, view),
            Format::Summary => report::Summary.render(r, view),
            Format::Markdown => report::Markdown.render(r, view),
            Format::Junit => report::Junit.render(r, view),
            Format::Gradescope => report::Gradescope.render(r, view),
            Format::Html => report::Html.render(r, view),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Summary => "summary",
            Format::Markdown => "markdown",
            Format::Junit => "junit",
            Format::Gradescope => "gradescope",
            Format::Html => "html",
        }
    }
}

/// `--view`: whose view of the report to write.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) enum ViewArg {
    #[default]
    Grader,
    Candidate,
}

impl From<ViewArg> for View {
    fn from(v: ViewArg) -> View {
        match v {
            ViewArg::Grader => View::Grader,
            ViewArg::Candidate => View::Candidate,
        }
    }
}

/// Reads a report JSON, or says in words why `path` is not one this proctor can read.
pub(super) fn load(path: &Path) -> Result<Report, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the report {shown}: {e}"))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{shown} is not a proctor report: not JSON ({e})"))?;
    let Some(version) = value.get("schema_version").and_then(|v| v.as_u64()) else {
        return Err(format!(
            "{shown} is not a proctor report: it has no schema_version"
        ));
    };
    if version != u64::from(report::SCHEMA_VERSION) {
        return Err(format!(
            "{shown} has schema_version {version}; this proctor reads schema_version {} \
             (render it with the proctor that wrote it)",
            report::SCHEMA_VERSION
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        format!(
            "{shown} is not a proctor report of schema_version {version}: at {}: {}",
            e.path(),
            e.inner()
        )
    })
}

/// `proctor report`: 0 when written, 2 when the report cannot be read or the output written.
pub(super) fn run(args: ReportArgs) -> i32 {
    let r = match load(&args.report) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let text = args.format.render(&r, args.view.into());
    match &args.out {
        None => {
            print!("{text}");
            exit::GRADED
        }
        Some(out) => match report::write_atomic(out, text.as_bytes()) {
            Ok(()) => exit::GRADED,
            Err(e) => {
                eprintln!(
                    "error: could not write the {} report to {}: {e}",
                    args.format.name(),
                    out.display()
                );
                exit::USAGE
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_report_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("other.json");
        std::fs::write(&p, r#"{"hello": 1}"#).unwrap();
        let e = load(&p).unwrap_err();
        assert!(e.contains("other.json is not a proctor report"), "{e}");
        std::fs::write(&p, r#"{"schema_version": 99}"#).unwrap();
        let e = load(&p).unwrap_err();
        assert!(e.contains("schema_version 99"), "{e}");
        std::fs::write(&p, r#"{"schema_version": 2, "run_id": 3}"#).unwrap();
        let e = load(&p).unwrap_err();
        assert!(e.contains("at run_id"), "{e}");
        let e = load(&dir.path().join("missing.json")).unwrap_err();
        assert!(e.contains("missing.json"), "{e}");
    }
}
