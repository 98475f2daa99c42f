//! `proctor batch`: a hiring round graded under the same conditions. Every submission of a
//! directory or manifest is graded with the same graders and seed, one report each, then a
//! ranked `summary.csv` and `leaderboard.md`.
//!
//! - **Fair latency.** Every latency phase takes the machine-wide latency lock
//!   (`load::exclusive`), so no two measurements overlap, also across proctor processes. With
//!   `--jobs 1` (the default) a submission is graded alone; with more, builds and other phases
//!   of one submission may run while another's latency is measured (faster, noisier).
//! - **One failure never stops the batch.** A submission's own failure is its report's verdict.
//!   An infrastructure error is retried once, then listed apart, never ranked.
//! - **Resume.** A submission whose report exists for the same submission (its build context's
//!   digest; for a git source, its URL and ref), the same grader files and the same proctor
//!   version is not graded again, unless `regrade`. A batch killed halfway, run again, grades
//!   only what is missing; `proctor gc` (or the next run's start-up sweep) removes what the
//!   killed run left in Docker.
//!
//! - `entries`: what a batch grades (a directory of submissions, or a CSV manifest);
//! - `summary`: the ranked `summary.csv` and `leaderboard.md`.

mod entries;
mod summary;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

pub use entries::{read as read_entries, Entry};
pub use summary::Row;

use crate::events::Silent;
use crate::pipeline::{self, GradeOptions, Source, UsageError};
use crate::report::{Report, Status};
use crate::verdict::Verdict;

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub entries: Vec<Entry>,
    /// Everything but the source: the graders, the seed, the limits of every submission's run.
    pub grade: GradeOptions,
    pub out_dir: PathBuf,
    /// Submissions graded at once.
    pub jobs: usize,
    /// Grade again even where a report for the same submission and graders exists.
    pub regrade: bool,
}

/// What a batch did.
#[derive(Debug)]
pub struct BatchOutcome {
    /// Every submission's row, in summary order.
    pub rows: Vec<Row>,
    /// Submissions graded now (the others had a report already).
    pub graded: usize,
    /// The batch was interrupted: the rows hold what was graded before.
    pub interrupted: bool,
}

/// The folder of the reports, under the output folder.
const REPORTS: &str = "reports";

/// Grades every entry (or takes its report from an earlier run), writes each report as it
/// finishes, then `summary.csv` and `leaderboard.md`. `progress` gets one line per event.
/// `Err` for a usage error (the graders' prerequisites) or an output folder that cannot be
/// written.
pub async fn run(
    opts: &BatchOptions,
    cancel: CancellationToken,
    progress: &(dyn Fn(String) + Sync),
) -> Result<BatchOutcome, String> {
    let reports = opts.out_dir.join(REPORTS);
    std::fs::create_dir_all(&reports)
        .map_err(|e| format!("cannot create {}: {e}", reports.display()))?;
    let counters = Counters {
        total: opts.entries.len(),
        started: Instant::now(),
        done: AtomicUsize::new(0),
        running: AtomicUsize::new(0),
        graded: AtomicUsize::new(0),
    };
    let results: Vec<Result<Option<Row>, String>> = stream::iter(&opts.entries)
        .map(|entry| grade_or_keep(entry, opts, &reports, &counters, &cancel, progress))
        .buffered(opts.jobs.max(1))
        .collect()
        .await;
    let mut rows = Vec::new();
    for r in results {
        if let Some(row) = r? {
            rows.push(row);
        }
    }
    let interrupted = cancel.is_cancelled()
        || rows
            .iter()
            .any(|r| r.report.verdict == Some(Verdict::Interrupted));
    let rows = summary::ranked(rows);
    let write = |name: &str, bytes: &[u8]| {
        let path = opts.out_dir.join(name);
        crate::report::write_atomic(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("summary.csv", &summary::csv_of(&rows))?;
    write("leaderboard.md", summary::leaderboard_of(&rows).as_bytes())?;
    Ok(BatchOutcome {
        rows,
        graded: counters.graded.load(Ordering::SeqCst),
        interrupted,
    })
}

/// Where the batch stands, for its progress lines.
struct Counters {
    total: usize,
    started: Instant,
    done: AtomicUsize,
    running: AtomicUsize,
    graded: AtomicUsize,
}

/// One entry's row: its earlier report when it still holds, else a new grade, written to
/// `reports` as soon as it is done. `None` when the batch was interrupted before it started.
async fn grade_or_keep(
    entry: &Entry,
    opts: &BatchOptions,
    reports: &Path,
    n: &Counters,
    cancel: &CancellationToken,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Option<Row>, String> {
    let file = reports.join(format!("{}.json", entry.id));
    let kept = if opts.regrade {
        None
    } else {
        earlier_report(&file, entry, &opts.grade).await
    };
    let (report, fresh) = match kept {
        Some(r) => (r, false),
        None if cancel.is_cancelled() => return Ok(None),
        None => {
            n.running.fetch_add(1, Ordering::SeqCst);
            let r = grade_entry(entry, &opts.grade, cancel, progress).await;
            n.running.fetch_sub(1, Ordering::SeqCst);
            let r = r?;
            crate::report::write_json_atomic(&r, &file)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            n.graded.fetch_add(1, Ordering::SeqCst);
            (r, true)
        }
    };
    let done = n.done.fetch_add(1, Ordering::SeqCst) + 1;
    progress(progress_line(
        entry,
        &report,
        fresh,
        done,
        n.total,
        n.running.load(Ordering::SeqCst),
        n.started.elapsed().as_secs_f64(),
        n.graded.load(Ordering::SeqCst),
    ));
    Ok(Some(Row {
        id: entry.id.clone(),
        report_file: format!("{REPORTS}/{}.json", entry.id),
        report,
    }))
}

/// Grades one entry; an infrastructure error (not an interruption) is graded once more.
async fn grade_entry(
    entry: &Entry,
    base: &GradeOptions,
    cancel: &CancellationToken,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Report, String> {
    let opts = GradeOptions {
        source: entry.source.clone(),
        ..base.clone()
    };
    progress(format!("{}: grading", entry.id));
    let usage = |e: UsageError| format!("{}: {e}", entry.id);
    let first = pipeline::grade(&opts, std::sync::Arc::new(Silent), cancel.clone())
        .await
        .map_err(usage)?;
    if first.status != Status::InfrastructureError
        || first.verdict == Some(Verdict::Interrupted)
        || cancel.is_cancelled()
    {
        return Ok(first);
    }
    progress(format!(
        "{}: infrastructure error ({}); grading once more",
        entry.id, first.reason
    ));
    pipeline::grade(&opts, std::sync::Arc::new(Silent), cancel.clone())
        .await
        .map_err(usage)
}

/// The report an earlier run wrote for this entry, when it was graded (or stopped by the
/// submission) from the same submission, with the same graders and the same proctor.
async fn earlier_report(file: &Path, entry: &Entry, opts: &GradeOptions) -> Option<Report> {
    let text = std::fs::read_to_string(file).ok()?;
    let report: Report = serde_json::from_str(&text).ok()?;
    let same_graders = report
        .graders
        .iter()
        .map(|g| g.grader.sha256.as_str())
        .eq(opts.graders.iter().map(|g| g.sha256.as_str()));
    let same_proctor = report.harness.proctor_version == env!("CARGO_PKG_VERSION");
    if report.status == Status::InfrastructureError || !same_graders || !same_proctor {
        return None;
    }
    let same_submission = match &entry.source {
        Source::Submission(path) => {
            let (path, limits) = (path.clone(), opts.intake_limits.clone());
            let digest = tokio::task::spawn_blocking(move || {
                crate::intake::intake(&path, &limits).ok().map(|c| c.sha256)
            })
            .await
            .ok()
            .flatten();
            digest.is_some() && digest == report.submission.context_sha256
        }
        Source::Git { url, rev } => {
            let source = match rev {
                Some(r) => format!("{url}@{r}"),
                None => url.clone(),
            };
            report.submission.source == source
        }
        Source::Url(_) => false,
    };
    same_submission.then_some(report)
}

/// `alice: graded 87.5% (new) · 3 of 10 done, 1 running, 6 queued · about 7 min left`.
#[allow(clippy::too_many_arguments)]
fn progress_line(
    entry: &Entry,
    report: &Report,
    fresh: bool,
    done: usize,
    total: usize,
    running: usize,
    elapsed_secs: f64,
    graded: usize,
) -> String {
    let what = match (&report.score, report.status) {
        (Some(s), Status::Graded) => format!("graded {:.1}%", s.percent),
        _ => format!(
            "{} ({})",
            report.status.as_str(),
            report.verdict.map_or("", |v| v.as_str())
        ),
    };
    let queued = total.saturating_sub(done + running);
    let eta = if graded > 0 && done < total {
        let per = elapsed_secs / graded as f64;
        format!(
            " · about {:.0} min left",
            (per * (total - done) as f64 / 60.0).ceil()
        )
    } else {
        String::new()
    };
    format!(
        "{}: {what}{} · {done} of {total} done, {running} running, {queued} queued{eta}",
        entry.id,
        if fresh {
            ""
        } else {
            " (report kept from an earlier run)"
        }
    )
}
