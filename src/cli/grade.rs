//! `proctor grade`: its flags, how they become the pipeline's options, and the run itself:
//! the pipeline under signal handling, the report written, the summary printed and the exit
//! code picked (`demo` runs through the same).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::report::{Format, ViewArg};
use crate::events::Events;
use crate::exit;
use crate::grader::{self, LoadedGrader};
use crate::intake::Limits;
use crate::pipeline::{self, GradeOptions, Source};
use crate::report::{self, Report, Status, View};

#[derive(clap::Args, Debug)]
pub(super) struct GradeArgs {
    /// The submission: a directory, a .tar, a .tar.gz/.tgz, or a git repository (an https://
    /// or git+file:// URL; a local repository with --ref). Omit when using --url.
    #[arg(required_unless_present = "url")]
    submission: Option<PathBuf>,
    /// The grader file (TOML) that declares the checks, points and limits. Repeat it to grade
    /// with several graders at once (e.g. public and hidden): one build, one container, one
    /// report holding every grader's checks, each with its own visibility. The graders must
    /// declare the same submission rules, sandbox and readiness request.
    #[arg(long, short, required = true)]
    grader: Vec<PathBuf>,
    /// Grade a service that is already running at this base URL instead of building one
    /// (e.g. http://127.0.0.1:8080). Useful for candidates testing their own service.
    #[arg(long, conflicts_with = "submission")]
    url: Option<String>,
    /// Grade this branch, tag or full commit id of a git repository. With it, a local path is
    /// read as a repository (its committed state) rather than as a directory.
    #[arg(long = "ref", value_name = "REV", conflicts_with = "url")]
    git_ref: Option<String>,
    /// Where to write the JSON report (written atomically, also when grading fails).
    #[arg(long, short, default_value = "proctor-report.json")]
    out: PathBuf,
    /// Print the JSON report on stdout instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Also write the report as Markdown to FILE (for a GitHub job summary, e.g.
    /// "$GITHUB_STEP_SUMMARY", or a merge-request comment). Written atomically after the JSON.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Also write the report as JUnit XML to FILE (one testsuite per category, one testcase per
    /// check), for CI test tabs. Written atomically after the JSON.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write the report as a Gradescope autograder results.json to FILE (hidden checks
    /// marked "hidden"; no score for an infrastructure error). Written atomically after the JSON.
    #[arg(long, value_name = "FILE")]
    gradescope: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page to FILE (charts as inline SVG, no
    /// script, nothing fetched: opens from disk or as a CI artifact). Written atomically after
    /// the JSON.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Whose view the JSON report (--out, --json) and every --markdown, --junit, --gradescope
    /// and --html file hold: `grader` (everything) or `candidate` (hidden checks only counted, per
    /// category, never named). The terminal summary is always the candidate's.
    #[arg(long, value_enum, default_value = "grader")]
    view: ViewArg,
    /// Seed for every random choice; the same seed regrades the same. Random when omitted
    /// (the report records it).
    #[arg(long)]
    seed: Option<u64>,
    /// Exit 1 when the score is below this percentage of the points.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    min_score: Option<f64>,
    /// Keep the candidate's image after the run as proctor/kept:<run id> (containers and
    /// networks are still removed); `proctor gc --all` removes it.
    #[arg(long)]
    keep_image: bool,
    /// Override the grader's build timeout.
    #[arg(long, value_name = "SECS")]
    build_timeout: Option<u64>,
    /// Override the grader's readiness deadline.
    #[arg(long, value_name = "SECS")]
    ready_timeout: Option<u64>,
    /// The assignment's reference submission (a directory or archive). It is built and
    /// measured under the same latency load first; when this machine makes it slower than the
    /// grader's `reference_ms`, the candidate's latency curves are widened by the same factor.
    /// A grader with `[cost] cpu_vs_reference` also runs it beside the candidate and compares
    /// their CPU per prediction under the same load, request by request in turns.
    #[arg(long, value_name = "SUBMISSION")]
    latency_reference: Option<PathBuf>,
    /// Fewer progress lines (warnings and the run id are still shown).
    #[arg(long, short)]
    quiet: bool,
    /// Which contract probes to send: `sample` (the grader's seeded sample of at most
    /// `[probes] max_cases`) or `all` (every generated case).
    #[arg(long, value_enum, default_value = "sample")]
    probe: ProbeScope,
}

/// `--probe`: the grader's sample of the contract probes, or all of them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeScope {
    Sample,
    All,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 100".into())
    }
}

/// `proctor grade`: checks what the flags name, then grades.
pub(super) async fn grade(args: GradeArgs) -> i32 {
    let loaded = match load_graders(&args.grader) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let source = match (&args.submission, &args.url) {
        (_, Some(url)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                eprintln!("error: --url must start with http:// (got {url:?})");
                return exit::USAGE;
            }
            Source::Url(url.clone())
        }
        (Some(p), None) => {
            let spec = p.to_string_lossy().into_owned();
            if crate::intake::is_git_source(&spec) || args.git_ref.is_some() {
                Source::Git {
                    url: spec,
                    rev: args.git_ref.clone(),
                }
            } else {
                Source::Submission(p.clone())
            }
        }
        (None, None) => unreachable!("clap requires one of them"),
    };
    if let Some(r) = &args.latency_reference {
        let scalable = loaded.iter().any(|g| {
            g.grader.latency.as_ref().is_some_and(|l| l.has_reference())
                || g.grader
                    .cost
                    .as_ref()
                    .is_some_and(|c| c.cpu_vs_reference.is_some())
        });
        if !scalable {
            eprintln!(
                "error: --latency-reference needs a [[latency.objective]] with reference_ms \
                 (what the reference measures on a machine fit for grading) or a [cost] \
                 cpu_vs_reference curve in {}",
                args.grader
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            );
            return exit::USAGE;
        }
        if !r.exists() {
            eprintln!(
                "error: the latency reference {} does not exist",
                r.display()
            );
            return exit::USAGE;
        }
        // The reference is measured first: a mistyped submission path should not wait for it.
        if let Source::Submission(p) = &source {
            if !p.exists() {
                eprintln!("error: the submission {} does not exist", p.display());
                return exit::USAGE;
            }
        }
        if matches!(source, Source::Url(_)) {
            eprintln!(
                "error: --latency-reference needs a submission to build next to it, not --url"
            );
            return exit::USAGE;
        }
    }
    let opts = options(&args, source, loaded);
    let outputs = outputs(&args);
    run_grade_to(
        &opts,
        &args.out,
        args.quiet,
        args.json,
        args.min_score,
        &outputs,
    )
    .await
}

/// Loads every grader file and checks that they can be graded in one run.
pub(super) fn load_graders(paths: &[PathBuf]) -> Result<Vec<LoadedGrader>, grader::GraderError> {
    let graders = paths
        .iter()
        .map(|p| grader::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    grader::check_composable(&graders)?;
    Ok(graders)
}

/// The view and the view files the flags ask for.
fn outputs(args: &GradeArgs) -> Outputs {
    Outputs {
        view: args.view.into(),
        views: [
            (Format::Markdown, &args.markdown),
            (Format::Junit, &args.junit),
            (Format::Gradescope, &args.gradescope),
            (Format::Html, &args.html),
        ]
        .into_iter()
        .filter_map(|(f, p)| p.clone().map(|p| (f, p)))
        .collect(),
    }
}

/// What a run writes besides the terminal summary: whose view, and the formats asked for with
/// their files (the JSON report's file is `out`).
#[derive(Debug, Default)]
pub(super) struct Outputs {
    pub view: View,
    pub views: Vec<(Format, PathBuf)>,
}

/// The pipeline's options for `proctor grade`: what the flags say, and the defaults for what
/// no flag sets.
fn options(args: &GradeArgs, source: Source, graders: Vec<LoadedGrader>) -> GradeOptions {
    GradeOptions {
        source,
        graders,
        seed: args.seed.unwrap_or_else(rand::random),
        keep_image: args.keep_image,
        build_timeout: args.build_timeout.map(Duration::from_secs),
        ready_timeout: args.ready_timeout.map(Duration::from_secs),
        intake_limits: Limits::default(),
        latency_reference: args
            .latency_reference
            .clone()
            .map(crate::pipeline::LatencyReference::Measure),
        probe_all: args.probe == ProbeScope::All,
    }
}

/// Runs the pipeline under signal handling, writes the JSON report and every view of `outputs`
/// in its view, prints the summary, and picks the exit code.
pub(super) async fn run_grade_to(
    opts: &GradeOptions,
    out: &Path,
    quiet: bool,
    json: bool,
    min_score: Option<f64>,
    outputs: &Outputs,
) -> i32 {
    let events: Events = crate::progress::reporter(quiet);
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone(), events.clone()));
    let result = pipeline::grade(opts, events.clone(), cancel.clone()).await;
    signals.abort();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let mut code = exit_code(&report, min_score);
    if !write_reports(&report, out, outputs) {
        // The grade exists but is lost: the caller must not take silence for a result.
        code = exit::INFRASTRUCTURE_ERROR;
    }
    let seen = report.for_view(outputs.view);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&seen).expect("report serializes")
        );
    } else {
        // The warnings were shown on stderr as they happened: each prints once.
        print!(
            "{}",
            report::summary_text_except(&report, &events.shown_warnings())
        );
        println!("report: {}", out.display());
        for (format, path) in &outputs.views {
            println!("{}: {}", format.name(), path.display());
        }
        if let (Some(min), Some(s)) = (min_score, &report.score) {
            if report.status == Status::Graded && s.percent < min {
                println!("below the minimum score of {min}%");
            }
        }
    }
    code
}

/// Writes the JSON report to `out`, then every view of `outputs`, all from the same report in
/// `outputs.view`, each atomically. False when one could not be written (each says why).
fn write_reports(report: &Report, out: &Path, outputs: &Outputs) -> bool {
    let mut all = true;
    if let Err(e) = report::write_json_atomic(&report.for_view(outputs.view), out) {
        eprintln!(
            "error: could not write the report to {}: {e}",
            out.display()
        );
        all = false;
    }
    for (format, path) in &outputs.views {
        let text = format.render(report, outputs.view);
        if let Err(e) = report::write_atomic(path, text.as_bytes()) {
            eprintln!(
                "error: could not write the {} report to {}: {e}",
                format.name(),
                path.display()
            );
            all = false;
        }
    }
    all
}

fn exit_code(report: &Report, min_score: Option<f64>) -> i32 {
    match report.status {
        Status::Graded => match (min_score, &report.score) {
            (Some(min), Some(s)) if s.percent < min => exit::BELOW_MIN_SCORE,
            _ => exit::GRADED,
        },
        Status::SubmissionError => exit::SUBMISSION_ERROR,
        Status::InfrastructureError
            if report.verdict == Some(crate::verdict::Verdict::Interrupted) =>
        {
            exit::INTERRUPTED
        }
        Status::InfrastructureError => exit::INFRASTRUCTURE_ERROR,
    }
}

/// First SIGINT/SIGTERM cancels the run (which then cleans up); a second one exits at once.
pub(super) async fn cancel_on_signal(cancel: CancellationToken, events: Events) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    events.event(&crate::events::Event::Warning(format!("{name} received: stopping and removing this run's containers, network and image (press Ctrl-C again to exit at once)")));
    cancel.cancel();
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    eprintln!("exiting without cleanup; run `proctor gc` to remove leftovers");
    std::process::exit(exit::INTERRUPTED);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> GradeArgs {
        use clap::Parser;
        let argv = ["proctor", "grade", "sub", "-g", "g.toml"];
        match crate::cli::Cli::try_parse_from(argv.iter().chain(extra))
            .unwrap()
            .command
        {
            crate::cli::Command::Grade(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn view_flags_name_the_files_and_the_view() {
        let o = outputs(&args(&[]));
        assert_eq!(o.view, View::Grader);
        assert!(o.views.is_empty());
        let o = outputs(&args(&[
            "--markdown",
            "s.md",
            "--gradescope",
            "results.json",
            "--junit",
            "j.xml",
            "--html",
            "r.html",
            "--view",
            "candidate",
        ]));
        assert_eq!(o.view, View::Candidate);
        assert_eq!(
            o.views,
            [
                (Format::Markdown, PathBuf::from("s.md")),
                (Format::Junit, PathBuf::from("j.xml")),
                (Format::Gradescope, PathBuf::from("results.json")),
                (Format::Html, PathBuf::from("r.html")),
            ]
        );
    }

    #[test]
    fn every_view_is_written_from_the_same_report_in_the_asked_view() {
        let report = crate::report::test_support::report();
        let dir = tempfile::tempdir().unwrap();
        let at = |n: &str| dir.path().join(n);
        let outputs = Outputs {
            view: View::Candidate,
            views: vec![
                (Format::Markdown, at("s.md")),
                (Format::Junit, at("j.xml")),
                (Format::Gradescope, at("g.json")),
                (Format::Html, at("r.html")),
            ],
        };
        assert!(write_reports(&report, &at("r.json"), &outputs));
        for (name, format) in [
            ("r.json", Format::Json),
            ("s.md", Format::Markdown),
            ("j.xml", Format::Junit),
            ("g.json", Format::Gradescope),
            ("r.html", Format::Html),
        ] {
            let text = std::fs::read_to_string(at(name)).unwrap();
            assert!(!text.contains("secret"), "{name}: {text}");
            assert_eq!(text, format.render(&report, View::Candidate), "{name}");
        }
        // A file that cannot be written is reported, and the others are still written.
        let outputs = Outputs {
            view: View::Grader,
            views: vec![
                (Format::Junit, at("no/such/dir/j.xml")),
                (Format::Markdown, at("s2.md")),
            ],
        };
        assert!(!write_reports(&report, &at("r2.json"), &outputs));
        assert!(std::fs::read_to_string(at("s2.md"))
            .unwrap()
            .contains("secret probe"));
    }

    #[test]
    fn percent_bounds() {
        assert!(parse_percent("90").is_ok());
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("x").is_err());
    }
}
