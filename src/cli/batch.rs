//! `proctor batch`: its flags, and the batch run under signal handling with its progress on
//! stderr and where it wrote on stdout.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::batch::{self, BatchOptions};
use crate::exit;
use crate::intake::Limits;
use crate::pipeline::{GradeOptions, Source};
use crate::report::Status;

#[derive(clap::Args, Debug)]
pub(super) struct BatchArgs {
    /// The submissions: a directory holding one per entry (a subdirectory, .tar, .tar.gz or
    /// .tgz; the entry's name is its id), or a CSV manifest with the columns id, source and
    /// optionally ref (a source is a git URL, or a path relative to the manifest).
    submissions: PathBuf,
    /// The grader file; repeat it to grade with several graders in one run per submission.
    #[arg(long, short, required = true)]
    grader: Vec<PathBuf>,
    /// Where the reports (reports/ID.json), summary.csv, leaderboard.md and leaderboard.html (and
    /// calibration.json with --latency-reference) go.
    #[arg(long, default_value = "proctor-batch")]
    out_dir: PathBuf,
    /// Submissions graded at once. Latency phases never overlap (the machine-wide latency
    /// lock), but with more than 1 one submission's build or other phases may run while
    /// another's latency is measured: faster, and noisier latency.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Seed of every submission's run (the same for all, recorded in each report). Random when
    /// omitted.
    #[arg(long)]
    seed: Option<u64>,
    /// Grade every submission again, also those whose report (same submission, graders and
    /// proctor version) exists.
    #[arg(long)]
    regrade: bool,
    /// Grade shard I of N only (e.g. 2/4): the entries whose id's digest falls in it, the same
    /// split whatever the manifest's order. Join the shards' folders with `proctor merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// The assignment's reference submission (a directory or archive): measured under the same
    /// load at the start of the batch, which widens every submission's latency curves by how
    /// much slower it runs on this machine (as `grade --latency-reference` does, but measured
    /// once), and again at the end, to flag a batch during which the machine's speed moved.
    #[arg(long, value_name = "SUBMISSION")]
    latency_reference: Option<PathBuf>,
    /// With --latency-reference: the largest share (0.25 = 25%) by which the reference's median
    /// latency may move between the start and the end of the batch. Past it the batch is
    /// flagged (calibration.json, the leaderboards) and exits 4.
    #[arg(long, value_name = "SHARE", default_value_t = 0.25, value_parser = parse_share)]
    max_speed_change: f64,
    /// Override the graders' build timeout.
    #[arg(long, value_name = "SECS")]
    build_timeout: Option<u64>,
    /// Override the graders' readiness deadline.
    #[arg(long, value_name = "SECS")]
    ready_timeout: Option<u64>,
}

fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("{s}: need a share above 0 (0.25 = 25%)"));
    }
    Ok(v)
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not I/N (e.g. 2/4)"))?;
    let (i, n): (usize, usize) = (
        i.trim()
            .parse()
            .map_err(|_| format!("{i:?} is not a number"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a number"))?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(format!("shard {i}/{n}: need 1 <= I <= N"));
    }
    Ok((i, n))
}

#[derive(clap::Args, Debug)]
pub(super) struct MergeArgs {
    /// The output folders of a batch's shards (each holds reports/).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where the merged summary.csv, leaderboard.md and leaderboard.html go.
    #[arg(long, default_value = "proctor-batch")]
    out_dir: PathBuf,
}

/// `proctor merge`: 0 when merged, 2 when a folder is not a batch's or the folders do not
/// belong together.
pub(super) fn merge(args: MergeArgs) -> i32 {
    match batch::merge(&args.dirs, &args.out_dir) {
        Ok(rows) => {
            println!(
                "{} submissions from {} folders",
                rows.len(),
                args.dirs.len()
            );
            println!("summary: {}", args.out_dir.join("summary.csv").display());
            println!(
                "leaderboard: {} and {}",
                args.out_dir.join("leaderboard.md").display(),
                args.out_dir.join("leaderboard.html").display()
            );
            exit::GRADED
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

/// `proctor batch`; returns the exit code: 0 when every submission has a report that is a
/// grade or the submission's own failure, 4 when an infrastructure error remained, 130 when
/// interrupted, 2 for a usage error.
pub(super) async fn batch(args: BatchArgs) -> i32 {
    let graders = match super::grade::load_graders(&args.grader) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let entries = match batch::read_entries(&args.submissions) {
        Ok(e) => match args.shard {
            Some((i, n)) => batch::shard(e, i, n),
            None => e,
        },
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    let opts = BatchOptions {
        entries,
        grade: GradeOptions {
            source: Source::Url(String::new()),
            graders,
            seed,
            keep_image: false,
            build_timeout: args.build_timeout.map(Duration::from_secs),
            ready_timeout: args.ready_timeout.map(Duration::from_secs),
            intake_limits: Limits::default(),
            latency_reference: None,
            probe_all: false,
        },
        out_dir: args.out_dir.clone(),
        jobs: args.jobs.into(),
        regrade: args.regrade,
        latency_reference: args.latency_reference.clone(),
        max_speed_change: args.max_speed_change,
    };
    eprintln!(
        "batch: {} submissions, {} at a time, seed {seed}, into {}",
        opts.entries.len(),
        opts.jobs,
        opts.out_dir.display()
    );
    let cancel = CancellationToken::new();
    // The runs themselves report nothing; the signal handler's warning must still show.
    let events: crate::events::Events =
        std::sync::Arc::new(crate::events::LineReporter::stderr(false));
    let signals = tokio::spawn(super::grade::cancel_on_signal(cancel.clone(), events));
    let started = Instant::now();
    let progress: batch::Progress = std::sync::Arc::new(move |line: String| {
        eprintln!("[{:>7.1}s] {line}", started.elapsed().as_secs_f64());
    });
    let outcome = batch::run(&opts, cancel, progress).await;
    signals.abort();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e @ batch::BatchError::Usage(_)) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
        Err(e @ batch::BatchError::Reference(_)) => {
            eprintln!("error: {e}; nothing was graded (this is the machine's failure, not a submission's)");
            return exit::INFRASTRUCTURE_ERROR;
        }
    };
    let infra = outcome
        .rows
        .iter()
        .filter(|r| r.report.status == Status::InfrastructureError)
        .count();
    println!(
        "{} submissions: {} graded now, {} kept from an earlier run{}",
        outcome.rows.len(),
        outcome.graded,
        outcome.rows.len() - outcome.graded,
        if infra > 0 {
            format!(", {infra} infrastructure errors (not ranked; grade them again)")
        } else {
            String::new()
        }
    );
    println!("summary: {}", opts.out_dir.join("summary.csv").display());
    println!(
        "leaderboard: {} and {}",
        opts.out_dir.join("leaderboard.md").display(),
        opts.out_dir.join("leaderboard.html").display()
    );
    let flagged = match &outcome.calibration {
        Some(c) => {
            println!(
                "calibration: {}",
                opts.out_dir.join(batch::calibration::FILE).display()
            );
            if let Some(note) = c.note() {
                eprintln!("warning: {note}");
            }
            c.flagged
        }
        None => false,
    };
    if outcome.interrupted {
        exit::INTERRUPTED
    } else if infra > 0 || flagged {
        exit::INFRASTRUCTURE_ERROR
    } else {
        exit::GRADED
    }
}
