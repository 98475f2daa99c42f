//! The command line: parses arguments, wires the pipeline to the terminal, writes the report,
//! and maps the outcome to an exit code. This is the only place that uses anyhow-style errors
//! and the only place (with the event reporter) that prints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::events::{Events, LineReporter};
use crate::exit;
use crate::grader;
use crate::intake::Limits;
use crate::pipeline::{self, GradeOptions, Source};
use crate::report::{self, Report, Status};
use crate::sandbox::{cleanup, system, Engine};

const AFTER_HELP: &str = "\
Exit codes:
  0    graded (and at or above --min-score when given)
  1    graded, but below --min-score
  2    usage or grader-file error (nothing was graded)
  3    submission_error: the submission could not be graded (rejected, build failed,
       never became ready, crashed); the report says why
  4    infrastructure_error: the harness or the machine failed; not a grade
  130  interrupted (Ctrl-C / SIGTERM); everything the run created was removed

Docker is found through DOCKER_HOST, else /var/run/docker.sock.";

#[derive(Parser, Debug)]
#[command(name = "proctor", version, about = "Grade ML-engineering take-home submissions: build the candidate's model service in a sandbox, drive it with scripted checks and load, write a grade report.", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Grade one submission (a directory, .tar or .tar.gz with a Dockerfile at its root), or a
    /// service that is already running (--url).
    Grade(GradeArgs),
    /// Grade the bundled reference submission with the public churn grader (builds the base
    /// image first if it is missing).
    Demo {
        /// Where to write the JSON report.
        #[arg(long, default_value = "proctor-demo-report.json")]
        out: PathBuf,
        /// Fewer progress lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check a grader file and exit: 0 when valid, 2 with file:line:column and field when not.
    Validate {
        /// The grader file (TOML).
        grader: PathBuf,
    },
    /// Remove Docker resources left by proctor runs whose process is gone (e.g. killed with
    /// SIGKILL). Only resources labelled io.proctor.managed=1 are ever touched.
    Gc {
        /// Also remove resources of runs that are still going.
        #[arg(long)]
        all: bool,
    },
    /// Check this machine before grading: the Docker engine and its API version, runc, cgroup
    /// limits, the storage driver, the graders' base images, free disk, leftovers of dead runs
    /// and CPUs. Exit 0 when nothing fails (warnings allowed), 1 when something fails.
    Doctor {
        /// Also check the base images this grader file allows (repeatable). The graders under
        /// the repository's graders/ directory are always checked.
        #[arg(long, short, value_name = "FILE")]
        grader: Vec<PathBuf>,
        /// Print the checks as JSON: [{name, status, detail, fix}].
        #[arg(long)]
        json: bool,
    },
    /// Drive any HTTP endpoint with an open-loop load and print latency percentiles as JSON.
    Load(crate::load::cli::LoadArgs),
    /// Print the JSON Schema of the report.
    Schema,
}

#[derive(clap::Args, Debug)]
struct GradeArgs {
    /// The submission: a directory, a .tar, a .tar.gz/.tgz, or a git repository (an https://
    /// or git+file:// URL; a local repository with --ref). Omit when using --url.
    #[arg(required_unless_present = "url")]
    submission: Option<PathBuf>,
    /// The grader file (TOML) that declares the checks, points and limits.
    #[arg(long, short)]
    grader: PathBuf,
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
    #[arg(long, value_name = "SUBMISSION")]
    latency_reference: Option<PathBuf>,
    /// Fewer progress lines (warnings and the run id are still shown).
    #[arg(long, short)]
    quiet: bool,
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 100".into())
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::GRADED
            };
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INFRASTRUCTURE_ERROR;
        }
    };
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Grade(args) => grade(args).await,
        Command::Demo { out, quiet } => demo(out, quiet).await,
        Command::Validate { grader } => match grader::load(&grader) {
            Ok(g) => {
                let n: usize = g.grader.check_lists().iter().map(|(_, l)| l.len()).sum();
                let gr = &g.grader;
                let phases: Vec<&str> = [
                    ("latency", gr.latency.is_some()),
                    ("quality", gr.quality.is_some()),
                    ("consistency", gr.consistency.is_some()),
                    ("drift", gr.drift.is_some()),
                    ("monitoring", gr.metrics.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, on)| on.then_some(name))
                .collect();
                println!(
                    "{}: valid ({n} scripted checks; {} dataset(s); phases: {})",
                    grader.display(),
                    g.datasets.len(),
                    if phases.is_empty() {
                        "none".to_string()
                    } else {
                        phases.join(", ")
                    }
                );
                exit::GRADED
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::USAGE
            }
        },
        Command::Gc { all } => gc(all).await,
        Command::Doctor { grader, json } => crate::doctor::run(&repo_root(), &grader, json).await,
        Command::Load(args) => crate::load::cli::run(args).await,
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report::json_schema()).expect("schema serializes")
            );
            exit::GRADED
        }
    }
}

async fn grade(args: GradeArgs) -> i32 {
    let loaded = match grader::load(&args.grader) {
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
        let scalable = loaded
            .grader
            .latency
            .as_ref()
            .is_some_and(|l| l.has_reference());
        if !scalable {
            eprintln!(
                "error: --latency-reference needs a [[latency.objective]] with reference_ms in \
                 {} (what the reference measures on a machine fit for grading)",
                args.grader.display()
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
    let opts = GradeOptions {
        source,
        grader: loaded,
        seed: args.seed.unwrap_or_else(rand::random),
        keep_image: args.keep_image,
        build_timeout: args.build_timeout.map(Duration::from_secs),
        ready_timeout: args.ready_timeout.map(Duration::from_secs),
        intake_limits: Limits::default(),
        latency_reference: args.latency_reference.clone(),
    };
    run_grade(&opts, &args.out, args.quiet, args.json, args.min_score).await
}

/// Runs the pipeline under signal handling, writes the report, prints the summary, and picks
/// the exit code.
async fn run_grade(
    opts: &GradeOptions,
    out: &Path,
    quiet: bool,
    json: bool,
    min_score: Option<f64>,
) -> i32 {
    let events: Events = Arc::new(LineReporter::stderr(quiet));
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone(), events.clone()));
    let result = pipeline::grade(opts, events, cancel.clone()).await;
    signals.abort();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let mut code = exit_code(&report, min_score);
    if let Err(e) = report::write_json_atomic(&report, out) {
        eprintln!(
            "error: could not write the report to {}: {e}",
            out.display()
        );
        // The grade exists but is lost: the caller must not take silence for a result.
        code = exit::INFRASTRUCTURE_ERROR;
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print!("{}", report::summary_text(&report));
        println!("report: {}", out.display());
        if let (Some(min), Some(s)) = (min_score, &report.score) {
            if report.status == Status::Graded && s.percent < min {
                println!("below the minimum score of {min}%");
            }
        }
    }
    code
}

fn exit_code(report: &Report, min_score: Option<f64>) -> i32 {
    match report.status {
        Status::Graded => match (min_score, &report.score) {
            (Some(min), Some(s)) if s.percent < min => exit::BELOW_MIN_SCORE,
            _ => exit::GRADED,
        },
        Status::SubmissionError => exit::SUBMISSION_ERROR,
        Status::InfrastructureError if report.verdict.as_deref() == Some("interrupted") => {
            exit::INTERRUPTED
        }
        Status::InfrastructureError => exit::INFRASTRUCTURE_ERROR,
    }
}

/// First SIGINT/SIGTERM cancels the run (which then cleans up); a second one exits at once.
async fn cancel_on_signal(cancel: CancellationToken, events: Events) {
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

/// The repository holding the bundled assignment, grader and reference submission.
fn repo_root() -> PathBuf {
    let built_in = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if built_in.join("graders").is_dir() {
        built_in
    } else {
        PathBuf::from(".")
    }
}

async fn demo(out: PathBuf, quiet: bool) -> i32 {
    let root = repo_root();
    let grader_path = root.join("graders/churn/public.toml");
    let submission = root.join("tests/fixtures/submissions/reference");
    let loaded = match grader::load(&grader_path) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    if let Err(code) =
        ensure_base_images(&root, &loaded.grader.submission.allowed_base_images).await
    {
        return code;
    }
    let opts = GradeOptions {
        source: Source::Submission(submission),
        grader: loaded,
        seed: 1,
        keep_image: false,
        build_timeout: None,
        ready_timeout: None,
        intake_limits: Limits::default(),
        latency_reference: None,
    };
    run_grade(&opts, &out, quiet, false, None).await
}

/// Builds missing base images with the recipe in `docker/base/` (only that recipe's image).
async fn ensure_base_images(root: &Path, images: &[String]) -> Result<(), i32> {
    let engine = match Engine::connect().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::INFRASTRUCTURE_ERROR);
        }
    };
    for image in images {
        if let Ok(true) = system::image_exists(&engine, image).await {
            continue;
        }
        let script = root.join("docker/base/build.sh");
        eprintln!(
            "base image {image} is missing; building it with {} (a few minutes, once)",
            script.display()
        );
        let status = tokio::process::Command::new("bash")
            .arg(&script)
            .status()
            .await;
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!(
                    "error: {} failed ({s}); see its output above",
                    script.display()
                );
                return Err(exit::INFRASTRUCTURE_ERROR);
            }
            Err(e) => {
                eprintln!("error: cannot run {}: {e}", script.display());
                return Err(exit::INFRASTRUCTURE_ERROR);
            }
        }
    }
    Ok(())
}

async fn gc(all: bool) -> i32 {
    let engine = match Engine::connect().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INFRASTRUCTURE_ERROR;
        }
    };
    match cleanup::sweep(&engine, all).await {
        Ok((runs, removed)) => {
            println!(
                "removed {} container(s), {} network(s), {} image(s) of {} run(s), and {} \
                 firewall rule(s), build cgroup(s) and temp dir(s)",
                removed.containers,
                removed.networks,
                removed.images,
                runs.len(),
                removed.host
            );
            for e in &removed.errors {
                eprintln!("warning: {e}");
            }
            if removed.errors.is_empty() {
                exit::GRADED
            } else {
                exit::INFRASTRUCTURE_ERROR
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INFRASTRUCTURE_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn percent_bounds() {
        assert!(parse_percent("90").is_ok());
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("x").is_err());
    }
}
