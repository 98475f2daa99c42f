//! The command line: parses arguments, wires the pipeline to the terminal, writes the report,
//! and maps the outcome to an exit code. This is the only place that turns errors into printed
//! messages, and the only place (with the event reporter) that prints.
//!
//! Each command that does more than call into another module has a file here: `grade` (with
//! the run, report and exit code that `demo` shares), `demo`, `report` (with the formats and
//! views `grade` shares), `validate` and `gc`. `doctor`
//! and `load` are modules of their own; exit codes are in `crate::exit`.

mod batch;
mod demo;
mod gc;
mod grade;
mod report;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::exit;

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
    Grade(grade::GradeArgs),
    /// Grade every submission of a directory or CSV manifest with the same graders: one report
    /// each, a ranked summary.csv and leaderboard.md; a rerun grades only what is missing.
    Batch(batch::BatchArgs),
    /// Join the output folders of a batch's shards (`proctor batch --shard I/N`) into one
    /// summary.csv and leaderboard.md; refuses folders graded with other grader files.
    Merge(batch::MergeArgs),
    /// Grade the bundled reference submission with the public and the hidden churn grader in
    /// one run, and write the JSON and HTML reports (builds the base image first if missing).
    Demo {
        /// Where to write the JSON report.
        #[arg(long, default_value = "proctor-demo-report.json")]
        out: PathBuf,
        /// Where to write the HTML report (the grader's view: every check, charts).
        #[arg(long, default_value = "proctor-demo-report.html")]
        html: PathBuf,
        /// Fewer progress lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check grader files and exit: 0 when valid (and, for several, when they can be graded in
    /// one run), 2 with file:line:column and field when not.
    Validate {
        /// The grader files (TOML); several are also checked for one run together.
        #[arg(required = true)]
        graders: Vec<PathBuf>,
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
    /// Draw an existing report JSON in another format (Markdown, JUnit XML, Gradescope's
    /// results.json, the summary or JSON) for the grader or a candidate. Exit 0 when written, 2
    /// when the report cannot be read (missing, not a proctor report, another schema_version)
    /// or the output cannot be written.
    Report(report::ReportArgs),
    /// Print the JSON Schema of the report.
    Schema,
    /// Write a candidate's starter kit for an assignment: its brief, contract, schema and
    /// public data, the public grader (and the files it reads), a skeleton submission on the
    /// allowed base image and a README on self-testing. Nothing else of graders/ is copied.
    Init {
        /// The assignment's name, a folder under assignments/ (e.g. churn).
        assignment: String,
        /// Where to write the kit (a new or empty folder).
        dir: PathBuf,
        /// The folder holding assignments/ and graders/ (default: the current folder, else
        /// the source tree proctor was built from).
        #[arg(long)]
        root: Option<PathBuf>,
    },
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
        Command::Grade(args) => grade::grade(args).await,
        Command::Batch(args) => batch::batch(args).await,
        Command::Merge(args) => batch::merge(args),
        Command::Demo { out, html, quiet } => demo::demo(out, html, quiet).await,
        Command::Validate { graders } => validate::validate_all(&graders),
        Command::Gc { all } => gc::gc(all).await,
        Command::Doctor { grader, json } => crate::doctor::run(&repo_root(), &grader, json).await,
        Command::Load(args) => crate::load::cli::run(args).await,
        Command::Report(args) => report::run(args),
        Command::Init {
            assignment,
            dir,
            root,
        } => init(&assignment, &dir, root),
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::report::json_schema())
                    .expect("schema serializes")
            );
            exit::GRADED
        }
    }
}

/// The repository holding the bundled assignment, grader and reference submission.
/// `proctor init`: 0 when the kit is written, 2 when it cannot be.
fn init(assignment: &str, dir: &std::path::Path, root: Option<PathBuf>) -> i32 {
    let root = root.unwrap_or_else(|| {
        if PathBuf::from("assignments").join(assignment).is_dir() {
            PathBuf::from(".")
        } else {
            repo_root()
        }
    });
    match crate::kit::init(&root, assignment, dir) {
        Ok(kit) => {
            println!(
                "wrote the {assignment} kit to {}: {} files copied, {} written",
                kit.dir.display(),
                kit.copied.len(),
                kit.written.len()
            );
            println!(
                "self-test: proctor grade {} --grader {}",
                kit.dir.join("submission").display(),
                kit.dir
                    .join(format!("graders/{assignment}/public.toml"))
                    .display()
            );
            exit::GRADED
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

fn repo_root() -> PathBuf {
    let built_in = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if built_in.join("graders").is_dir() {
        built_in
    } else {
        PathBuf::from(".")
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
}
