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
    let rows = summary::ranked(rows);
    write_summaries(out_dir, &rows)?;
    Ok(rows)
}

/// `summary.csv` and `leaderboard.md` of `rows`, in `out_dir`.
fn write_summaries(out_dir: &Path, rows: &[Row]) -> Result<(), String> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = out_dir.join(name);
        crate::report::write_atomic(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write("summary.csv", &summary::csv_of(rows))?;
    write("leaderboard.md", summary::leaderboard_of(rows).as_bytes())
}

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
    write_summaries(&opts.out_dir, &rows)?;
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
