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
//! - **Shards.** `--shard I/N` grades the entries whose id falls in shard I of N (by a digest
//!   of the id: the same split whatever the order of the manifest), so that N machines (a CI
//!   matrix, a Kubernetes Indexed Job) share a round; `merge` joins their output folders.
//!
//! - `entries`: what a batch grades (a directory of submissions, or a CSV manifest);
//! - `summary`: the ranked `summary.csv` and `leaderboard.md`.

pub mod calibration;
mod entries;
mod summary;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

pub use entries::{read as read_entries, Entry};
pub use summary::Row;

use crate::events::{Event, Reporter};
use crate::pipeline::{
    self, GradeOptions, LatencyReference, MeasuredReference, Source, UsageError,
};
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
    /// The assignment's reference submission: measured at the start (every submission's
    /// latency curves are widened by that measurement) and at the end of the batch.
    pub latency_reference: Option<PathBuf>,
    /// The largest share by which the reference's median latency may move between the start
    /// and the end before the batch is flagged.
    pub max_speed_change: f64,
}

/// Why a batch could not run, or not to its end.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Its graders, entries or output folder: nothing was graded (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The latency reference could not be measured at the start: every grade would be the
    /// machine's failure (exit 4).
    #[error("{0}")]
    Reference(String),
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
    /// The latency reference at the start and the end, with `--latency-reference`.
    pub calibration: Option<calibration::Calibration>,
}

/// The folder of the reports, under the output folder.
const REPORTS: &str = "reports";

/// Shard `index` (1-based) of `count`: the entries whose id's digest falls in it.
pub fn shard(entries: Vec<Entry>, index: usize, count: usize) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|e| shard_of(&e.id, count) == index)
        .collect()
}

/// The shard (1-based, of `count`) an id belongs to.
fn shard_of(id: &str, count: usize) -> usize {
    let digest = crate::digest::sha256_hex(id.as_bytes());
    let n = u64::from_str_radix(&digest[..16], 16).expect("hex digits");
    (n % count.max(1) as u64) as usize + 1
}

/// Joins the output folders of a batch's shards into one `summary.csv` and `leaderboard.md`
/// in `out_dir`. Refuses folders graded with other graders (by their files' digests) or
/// another proctor, and an id graded twice.
pub fn merge(dirs: &[PathBuf], out_dir: &Path) -> Result<Vec<Row>, String> {
    let mut rows: Vec<Row> = Vec::new();
    let mut first: Option<(Vec<String>, String, PathBuf)> = None;
    for dir in dirs {
        let reports = dir.join(REPORTS);
        let read = std::fs::read_dir(&reports).map_err(|e| {
            format!(
                "{} is not a batch's output folder (cannot read {}: {e})",
                dir.display(),
                reports.display()
            )
        })?;
        let mut files: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let report: Report = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not a proctor report: {e}", file.display()))?;
            let graders: Vec<String> = report
                .graders
                .iter()
                .map(|g| g.grader.sha256.clone())
                .collect();
            let version = report.harness.proctor_version.clone();
            match &first {
                None => first = Some((graders, version, file.clone())),
                Some((g, v, at)) if *g != graders || *v != version => {
                    return Err(format!(
                        "{} and {} were graded with other grader files or another proctor \
                         (graders {} vs {}, proctor {v} vs {version}): a merged summary \
                         compares like with like only",
                        at.display(),
                        file.display(),
                        g.join("+"),
                        graders.join("+")
                    ))
                }
                Some(_) => {}
            }
            let id = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(other) = rows.iter().find(|r| r.id == id) {
                return Err(format!(
                    "{id} was graded twice: {} and {}",
                    other.report_file,
                    file.display()
                ));
            }
            rows.push(Row {
                id,
                report_file: file.display().to_string(),
                report,
            });
        }
    }
    if rows.is_empty() {
        return Err("no report in the folders given".into());
    }
    // A shard whose machine moved keeps its flag in the merged leaderboard.
    let mut notes = Vec::new();
    for dir in dirs {
        if let Some(note) = calibration::Calibration::read(dir)?.and_then(|c| c.note()) {
            notes.push(format!("{}: {note}", dir.display()));
        }
    }
    let rows = summary::ranked(rows);
    write_summaries(out_dir, &rows, &notes)?;
    Ok(rows)
}

/// `summary.csv`, `leaderboard.md` and `leaderboard.html` of `rows`, in `out_dir`, with
/// `notes` on the whole batch at the top of the leaderboards.
fn write_summaries(out_dir: &Path, rows: &[Row], notes: &[String]) -> Result<(), String> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = out_dir.join(name);
        crate::report::write_atomic(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("summary.csv", &summary::csv_of(rows))?;
    write(
        "leaderboard.md",
        summary::leaderboard_of(rows, notes).as_bytes(),
    )?;
    write(
        "leaderboard.html",
        summary::leaderboard_html(rows, notes).as_bytes(),
    )
}

/// Where progress lines go (stderr, in the CLI).
pub type Progress = Arc<dyn Fn(String) + Send + Sync>;

/// Grades every entry (or takes its report from an earlier run), writes each report as it
/// finishes, then `summary.csv` and `leaderboard.md`. `progress` gets one line per event: an
/// entry started, a running entry reached a new stage, an entry is done.
/// `Err` for a usage error (the graders' prerequisites) or an output folder that cannot be
/// written.
pub async fn run(
    opts: &BatchOptions,
    cancel: CancellationToken,
    progress: Progress,
) -> Result<BatchOutcome, BatchError> {
    let reports = opts.out_dir.join(REPORTS);
    std::fs::create_dir_all(&reports)
        .map_err(|e| BatchError::Usage(format!("cannot create {}: {e}", reports.display())))?;
    let board = Arc::new(Board {
        total: opts.entries.len(),
        started: Instant::now(),
        done: AtomicUsize::new(0),
        graded: AtomicUsize::new(0),
        running: Mutex::new(BTreeMap::new()),
        progress,
    });
    let mut grade = opts.grade.clone();
    let start = match &opts.latency_reference {
        None => None,
        Some(path) => {
            let m = measure_reference(&grade, path, "start", &board, &cancel)
                .await
                .map_err(BatchError::Reference)?;
            grade.latency_reference = Some(LatencyReference::Measured(Arc::new(m.clone())));
            Some(m)
        }
    };
    let results: Vec<Result<Option<Row>, String>> = stream::iter(&opts.entries)
        .map(|entry| grade_or_keep(entry, &grade, opts.regrade, &reports, &board, &cancel))
        .buffered(opts.jobs.max(1))
        .collect()
        .await;
    let mut rows = Vec::new();
    for r in results {
        if let Some(row) = r.map_err(BatchError::Usage)? {
            rows.push(row);
        }
    }
    let interrupted = cancel.is_cancelled()
        || rows
            .iter()
            .any(|r| r.report.verdict == Some(Verdict::Interrupted));
    let calibration = match (&opts.latency_reference, &start) {
        (Some(path), Some(start)) => {
            let end = if interrupted {
                Err("the batch was interrupted before its end".to_string())
            } else {
                measure_reference(&opts.grade, path, "end", &board, &cancel)
                    .await
                    .map(|m| calibration::Measurement::of(&m))
            };
            let c = calibration::Calibration::new(
                path,
                calibration::Measurement::of(start),
                end,
                opts.max_speed_change,
            );
            c.write(&opts.out_dir).map_err(BatchError::Usage)?;
            Some(c)
        }
        _ => None,
    };
    let notes: Vec<String> = calibration.iter().filter_map(|c| c.note()).collect();
    let rows = summary::ranked(rows);
    write_summaries(&opts.out_dir, &rows, &notes).map_err(BatchError::Usage)?;
    Ok(BatchOutcome {
        rows,
        graded: board.graded.load(Ordering::SeqCst),
        interrupted,
        calibration,
    })
}

/// Measures the latency reference under the batch's graders, its stages shown on the board as
/// those of a submission named `reference-at-start` or `reference-at-end`.
async fn measure_reference(
    grade: &GradeOptions,
    path: &Path,
    when: &str,
    board: &Arc<Board>,
    cancel: &CancellationToken,
) -> Result<MeasuredReference, String> {
    let id = format!("reference-at-{when}");
    board.say(format!("{id}: measuring {}", path.display()));
    let events: crate::events::Events = Arc::new(StageReporter {
        id: id.clone(),
        board: board.clone(),
    });
    let measured = pipeline::measure_reference(grade, path, events, cancel.clone()).await;
    board.finished(&id);
    let measured = measured.map_err(|why| format!("at the {when} of the batch, {why}"))?;
    if let Some(m) = calibration::Measurement::of(&measured) {
        board.say(format!(
            "{id}: median {:.2} ms, p99 {:.2} ms",
            m.p50_ms, m.p99_ms
        ));
    }
    Ok(measured)
}

/// Where the batch stands, for its progress lines: counts, and the stage each running
/// submission is in.
struct Board {
    total: usize,
    started: Instant,
    done: AtomicUsize,
    /// Graded in this run (not kept from an earlier one): what the ETA is reckoned from.
    graded: AtomicUsize,
    /// Running submissions by id, with the stage each is in.
    running: Mutex<BTreeMap<String, &'static str>>,
    progress: Progress,
}

impl Board {
    fn set_stage(&self, id: &str, stage: &'static str) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), stage);
    }

    fn finished(&self, id: &str) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// `3 of 10 done · running: alice (latency), bob (build) · 5 queued · about 7 min left`.
    fn status(&self) -> String {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let done = self.done.load(Ordering::SeqCst);
        let graded = self.graded.load(Ordering::SeqCst);
        let queued = self.total.saturating_sub(done + running.len());
        let now: Vec<String> = running
            .iter()
            .map(|(id, stage)| format!("{id} ({stage})"))
            .collect();
        let eta = if graded > 0 && done < self.total {
            let per = self.started.elapsed().as_secs_f64() / graded as f64;
            format!(
                " · about {:.0} min left",
                (per * (self.total - done) as f64 / 60.0).ceil()
            )
        } else {
            String::new()
        };
        format!(
            "{done} of {} done · running: {} · {queued} queued{eta}",
            self.total,
            if now.is_empty() {
                "none".to_string()
            } else {
                now.join(", ")
            }
        )
    }

    fn say(&self, what: String) {
        (self.progress)(format!("{what} · {}", self.status()));
    }
}

/// One submission's run as the board sees it: each stage it starts moves its line.
struct StageReporter {
    id: String,
    board: Arc<Board>,
}

impl Reporter for StageReporter {
    fn event(&self, event: &Event) {
        if let Event::StageStarted(stage) = event {
            self.board.set_stage(&self.id, stage.name());
            self.board.say(format!("{}: {}", self.id, stage.name()));
        }
    }
}

/// One entry's row: its earlier report when it still holds, else a new grade, written to
/// `reports` as soon as it is done. `None` when the batch was interrupted before it started.
async fn grade_or_keep(
    entry: &Entry,
    grade: &GradeOptions,
    regrade: bool,
    reports: &Path,
    board: &Arc<Board>,
    cancel: &CancellationToken,
) -> Result<Option<Row>, String> {
    let file = reports.join(format!("{}.json", entry.id));
    let kept = if regrade {
        None
    } else {
        earlier_report(&file, entry, grade).await
    };
    let (report, fresh) = match kept {
        Some(r) => (r, false),
        None if cancel.is_cancelled() => return Ok(None),
        None => {
            board.set_stage(&entry.id, "queued");
            let r = grade_entry(entry, grade, cancel, board).await;
            board.finished(&entry.id);
            let r = r?;
            crate::report::write_json_atomic(&r, &file)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            board.graded.fetch_add(1, Ordering::SeqCst);
            (r, true)
        }
    };
    board.done.fetch_add(1, Ordering::SeqCst);
    board.say(format!(
        "{}: {}{}",
        entry.id,
        outcome_of(&report),
        if fresh {
            ""
        } else {
            " (report kept from an earlier run)"
        }
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
    board: &Arc<Board>,
) -> Result<Report, String> {
    let opts = GradeOptions {
        source: entry.source.clone(),
        ..base.clone()
    };
    let events: crate::events::Events = Arc::new(StageReporter {
        id: entry.id.clone(),
        board: board.clone(),
    });
    let usage = |e: UsageError| format!("{}: {e}", entry.id);
    let first = pipeline::grade(&opts, events.clone(), cancel.clone())
        .await
        .map_err(usage)?;
    if first.status != Status::InfrastructureError
        || first.verdict == Some(Verdict::Interrupted)
        || cancel.is_cancelled()
    {
        return Ok(first);
    }
    board.say(format!(
        "{}: infrastructure error ({}); grading once more",
        entry.id, first.reason
    ));
    pipeline::grade(&opts, events, cancel.clone())
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

/// `graded 87.5%`, or `submission_error (build_failed)`.
fn outcome_of(report: &Report) -> String {
    match (&report.score, report.status) {
        (Some(s), Status::Graded) => format!("graded {:.1}%", s.percent),
        _ => format!(
            "{} ({})",
            report.status.as_str(),
            report.verdict.map_or("", |v| v.as_str())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            source: Source::Submission(id.into()),
        }
    }

    #[test]
    fn shards_split_every_entry_once_whatever_the_order() {
        let ids: Vec<String> = (0..50).map(|i| format!("cand-{i}")).collect();
        let all: Vec<Entry> = ids.iter().map(|i| entry(i)).collect();
        let mut seen: Vec<String> = (1..=3)
            .flat_map(|i| shard(all.clone(), i, 3))
            .map(|e| e.id)
            .collect();
        seen.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(seen, want, "each entry in exactly one shard");
        let sizes: Vec<usize> = (1..=3).map(|i| shard(all.clone(), i, 3).len()).collect();
        assert!(sizes.iter().all(|&n| n >= 8), "{sizes:?}");
        let reversed: Vec<Entry> = all.iter().rev().cloned().collect();
        let ids_of = |v: Vec<Entry>| {
            let mut v: Vec<String> = v.into_iter().map(|e| e.id).collect();
            v.sort();
            v
        };
        assert_eq!(ids_of(shard(reversed, 2, 3)), ids_of(shard(all, 2, 3)));
    }

    #[test]
    fn progress_names_the_stage_of_each_running_submission() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let board = Arc::new(Board {
            total: 4,
            started: Instant::now(),
            done: AtomicUsize::new(1),
            graded: AtomicUsize::new(1),
            running: Mutex::new(BTreeMap::new()),
            progress: Arc::new(move |l: String| sink.lock().unwrap().push(l)),
        });
        for (id, stage) in [
            ("bob", crate::events::Stage::Build),
            ("alice", crate::events::Stage::Phase("latency")),
        ] {
            StageReporter {
                id: id.into(),
                board: board.clone(),
            }
            .event(&Event::StageStarted(stage));
        }
        let last = lines.lock().unwrap().last().cloned().unwrap();
        assert!(last.starts_with("alice: latency · 1 of 4 done"), "{last}");
        assert!(
            last.contains("running: alice (latency), bob (build) · 1 queued"),
            "{last}"
        );
        assert!(
            last.contains("min left"),
            "an ETA once one is graded: {last}"
        );
        board.finished("bob");
        assert!(board
            .status()
            .contains("running: alice (latency) · 2 queued"));
    }

    fn write_report(dir: &Path, id: &str, percent: f64, grader_sha: &str) {
        let mut r = crate::report::test_support::report();
        r.score.as_mut().unwrap().percent = percent;
        r.graders[0].grader.sha256 = grader_sha.into();
        std::fs::create_dir_all(dir.join(REPORTS)).unwrap();
        crate::report::write_json_atomic(&r, &dir.join(format!("{REPORTS}/{id}.json"))).unwrap();
    }

    #[test]
    fn merged_shards_rank_together_and_refuse_mixed_graders() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, out) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("out"),
        );
        write_report(&a, "alice", 70.0, "g1");
        write_report(&a, "carol", 90.0, "g1");
        write_report(&b, "bob", 80.0, "g1");
        let rows = merge(&[a.clone(), b.clone()], &out).unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["carol", "bob", "alice"]);
        let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
        assert!(
            csv.lines().nth(1).unwrap().starts_with("1,carol,graded"),
            "{csv}"
        );
        assert!(out.join("leaderboard.md").exists());

        write_report(&b, "dave", 60.0, "g2");
        let err = merge(&[a.clone(), b.clone()], &out).unwrap_err();
        assert!(err.contains("other grader files"), "{err}");
        std::fs::remove_file(b.join("reports/dave.json")).unwrap();
        write_report(&b, "alice", 60.0, "g1");
        let err = merge(&[a, b], &out).unwrap_err();
        assert!(err.contains("alice was graded twice"), "{err}");
    }
}
