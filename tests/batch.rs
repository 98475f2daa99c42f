//! `proctor batch` on the real engine: a directory of submissions of known rank (two working
//! static sites, one with a page more; a build that fails; one that never becomes ready) gives one
//! report each and a summary in rank order with the broken ones listed, not ranked; a rerun
//! grades only what changed.

mod common;

use std::path::Path;

use common::*;

/// Readiness, the index page and a page only the better site has; no load, so it is quick.
const GRADER: &str = r#"
[grader]
name = "batch-test"
assignment = "static-site"

[submission]
port = 8080
allowed_base_images = ["proctor/busybox:test"]
build_timeout_secs = 120
ready_timeout_secs = 5

[sandbox]
memory_mb = 64
cpus = 0.5
pids_limit = 32
tmpfs_mb = 8

[readiness]
path = "/index.html"
points = 1
poll_interval_ms = 100

[[correctness]]
name = "serves the page"
points = 1
path = "/index.html"

[[correctness]]
name = "serves the extra page"
points = 1
path = "/extra.html"
"#;

fn batch(dir: &Path, grader: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    batch_command(dir, grader, out, extra)
        .output()
        .expect("proctor runs")
}

fn batch_command(dir: &Path, grader: &Path, out: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = proctor();
    cmd.arg("batch")
        .arg(dir)
        .arg("--grader")
        .arg(grader)
        .arg("--out-dir")
        .arg(out)
        .args(["--seed", "3"])
        .args(extra);
    cmd
}

/// summary.csv as (rank, id, status, verdict) per row.
fn summary(out: &Path) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (rank, id, status, verdict) = (col("rank"), col("id"), col("status"), col("verdict"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[rank].to_string(),
                f[id].to_string(),
                f[status].to_string(),
                f[verdict].to_string(),
            )
        })
        .collect()
}

fn run_id(out: &Path, id: &str) -> String {
    let text = std::fs::read_to_string(out.join(format!("reports/{id}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["run_id"].as_str().unwrap().to_string()
}

#[test]
fn a_batch_ranks_the_graded_lists_the_broken_and_resumes() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let subs = tmp.path().join("subs");
    copy_tree(&fixture("submissions/static-site"), &subs.join("bob"));
    copy_tree(&fixture("submissions/static-site"), &subs.join("alice"));
    std::fs::write(subs.join("alice/www/extra.html"), "more").unwrap();
    std::fs::create_dir_all(subs.join("carol")).unwrap();
    std::fs::write(
        subs.join("carol/Dockerfile"),
        "FROM proctor/busybox:test\nRUN exit 3\n",
    )
    .unwrap();
    copy_tree(&fixture("submissions/never-ready"), &subs.join("dave"));
    let grader = tmp.path().join("grader.toml");
    std::fs::write(&grader, GRADER).unwrap();
    let out = tmp.path().join("out");

    let first = batch(&subs, &grader, &out, &[]);
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stdout}\n{stderr}");
    let s = |r: &str, id: &str, st: &str, v: &str| (r.into(), id.into(), st.into(), v.into());
    assert_eq!(
        summary(&out),
        [
            s("1", "alice", "graded", ""),
            s("2", "bob", "graded", ""),
            s("", "carol", "submission_error", "build_failed"),
            s("", "dave", "submission_error", "never_ready"),
        ],
        "{stderr}"
    );
    assert!(stdout.contains("4 submissions: 4 graded now"), "{stdout}");
    assert!(stderr.contains("of 4 done"), "progress: {stderr}");
    let board = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    assert!(board.contains("| 1 | alice | 100.0 |"), "{board}");
    assert!(
        board.contains("| dave | submission_error | never_ready |"),
        "{board}"
    );
    for id in ["alice", "bob", "carol", "dave"] {
        assert_no_leftovers(&run_id(&out, id));
    }

    // A rerun keeps every report; a changed submission is graded again, and only it.
    let before: Vec<String> = ["alice", "bob"].iter().map(|i| run_id(&out, i)).collect();
    std::fs::write(subs.join("bob/www/extra.html"), "more").unwrap();
    let second = batch(&subs, &grader, &out, &[]);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{stdout}");
    // carol's and dave's intake worked (their build or readiness failed): kept too.
    assert!(stdout.contains("4 submissions: 1 graded now"), "{stdout}");
    assert_eq!(run_id(&out, "alice"), before[0], "alice was kept");
    assert_ne!(
        run_id(&out, "bob"),
        before[1],
        "bob changed and was graded again"
    );
    let ranks: Vec<(String, String)> = summary(&out)
        .into_iter()
        .map(|(r, id, ..)| (r, id))
        .take(2)
        .collect();
    assert_eq!(
        ranks,
        [("1".into(), "alice".into()), ("2".into(), "bob".into())],
        "tied at 100%, by id"
    );

    // --regrade grades everything again.
    let third = batch(&subs, &grader, &out, &["--regrade"]);
    assert!(String::from_utf8_lossy(&third.stdout).contains("4 graded now"));

    // Two shards, merged, give the summary of the whole batch.
    let shards: Vec<_> = ["1/2", "2/2"]
        .iter()
        .enumerate()
        .map(|(i, shard)| {
            let dir = tmp.path().join(format!("shard{i}"));
            let run = batch(&subs, &grader, &dir, &["--shard", shard]);
            assert_eq!(run.status.code(), Some(0), "{run:?}");
            dir
        })
        .collect();
    let merged = tmp.path().join("merged");
    let run = proctor()
        .arg("merge")
        .args(&shards)
        .arg("--out-dir")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let without_report_column = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("summary.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(without_report_column(&merged), without_report_column(&out));
}

/// The ids of containers and networks labelled with process `pid`, and of images of its runs.
fn labelled_by(pid: u32) -> Vec<String> {
    let filter = format!("label=io.proctor.pid={pid}");
    let mut found: Vec<String> = docker(&["ps", "-a", "-q", "--filter", &filter])
        .split_whitespace()
        .chain(docker(&["network", "ls", "-q", "--filter", &filter]).split_whitespace())
        .map(String::from)
        .collect();
    let images = docker(&["images", "-q", "--filter", "label=io.proctor.run"]);
    for id in images.split_whitespace() {
        let run = docker(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"io.proctor.run\"}}",
            id,
        ]);
        if run.split('-').nth(1) == Some(&pid.to_string()) {
            found.push(format!("image {id}"));
        }
    }
    found
}

/// Like the test grader, with a load, so that each submission takes a few seconds.
fn slower_grader() -> String {
    format!(
        "{GRADER}\n[latency]\npath = \"/index.html\"\nmethod = \"GET\"\nrate = 50.0\n\
         duration_secs = 3.0\nwarmup_secs = 0.0\nconcurrency = 2\n\n[[latency.objective]]\n\
         percentile = 50.0\nfull_points_ms = 100.0\nzero_points_ms = 1000.0\npoints = 1\n"
    )
}

#[test]
fn a_batch_killed_halfway_grades_only_the_missing_ones_and_leaves_nothing() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let subs = tmp.path().join("subs");
    for id in ["a1", "a2", "a3", "a4"] {
        copy_tree(&fixture("submissions/static-site"), &subs.join(id));
    }
    let grader = tmp.path().join("grader.toml");
    std::fs::write(&grader, slower_grader()).unwrap();
    let out = tmp.path().join("out");
    let mut child = batch_command(&subs, &grader, &out, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let reports = |out: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(out.join("reports"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    // Halfway: a report written, and the next submission's container running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch made no progress"
        );
        let running = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=io.proctor.pid={pid}"),
        ]);
        if !reports(&out).is_empty() && !running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = reports(&out);
    assert!(!kept.is_empty() && kept.len() < 4, "{kept:?}");
    assert!(
        !labelled_by(pid).is_empty(),
        "the kill left nothing to clean"
    );
    let kept_runs: Vec<String> = kept
        .iter()
        .map(|f| run_id(&out, f.trim_end_matches(".json")))
        .collect();

    let rerun = batch(&subs, &grader, &out, &[]);
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert_eq!(rerun.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("4 submissions: {} graded now", 4 - kept.len())),
        "only the missing ones are graded: {stdout}"
    );
    for (f, before) in kept.iter().zip(&kept_runs) {
        assert_eq!(
            &run_id(&out, f.trim_end_matches(".json")),
            before,
            "{f} regraded"
        );
    }
    assert_eq!(reports(&out).len(), 4);
    assert!(labelled_by(pid).is_empty(), "{:?}", labelled_by(pid));
}

/// The latency reference is measured once at the start (every submission's curves are widened
/// by that measurement) and once at the end; the batch is flagged exactly when the reference's
/// median moved by more than the share allowed.
#[test]
fn a_batch_measures_its_latency_reference_at_the_start_and_the_end() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let subs = tmp.path().join("subs");
    for id in ["erin", "frank"] {
        copy_tree(&fixture("submissions/static-site"), &subs.join(id));
    }
    let out = tmp.path().join("out");
    // Objectives that declare what the reference measures (so the batch scales by it), loose
    // enough that the measurement is a grade on a busy machine.
    let grader = tmp.path().join("grader.toml");
    let latency = "\n[latency]\npath = \"/index.html\"\nmethod = \"GET\"\nrate = 50.0\n\
                   duration_secs = 3.0\nwarmup_secs = 0.5\nconcurrency = 2\n\n\
                   [[latency.objective]]\npercentile = 50.0\nfull_points_ms = 100.0\n\
                   zero_points_ms = 1000.0\nreference_ms = 50.0\npoints = 1\n";
    std::fs::write(&grader, format!("{GRADER}{latency}")).unwrap();
    let run = batch(
        &subs,
        &grader,
        &out,
        &[
            "--latency-reference",
            fixture("submissions/static-site").to_str().unwrap(),
            // Any move at all flags the batch: the exit code must follow the file.
            "--max-speed-change",
            "0.000001",
        ],
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let text = std::fs::read_to_string(out.join("calibration.json"))
        .unwrap_or_else(|e| panic!("no calibration.json ({e}): {stdout}\n{stderr}"));
    let c: serde_json::Value = serde_json::from_str(&text).unwrap();
    let p50 = |at: &str| {
        c[at]["p50_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{at}: {c}"))
    };
    let (start, end) = (p50("start"), p50("end"));
    assert!(start > 0.0 && end > 0.0, "{c}");
    let change = c["change"].as_f64().unwrap();
    assert!(((end / start - 1.0).abs() - change).abs() < 1e-9, "{c}");
    let flagged = c["flagged"].as_bool().unwrap();
    assert_eq!(flagged, change > 0.000001, "{c}");
    assert_eq!(
        run.status.code(),
        Some(if flagged { 4 } else { 0 }),
        "{stdout}\n{stderr}"
    );
    let board = std::fs::read_to_string(out.join("leaderboard.md")).unwrap();
    assert_eq!(board.contains("speed moved"), flagged, "{board}");
    let html = std::fs::read_to_string(out.join("leaderboard.html")).unwrap();
    assert!(
        html.contains(">erin</a>") && html.contains(">frank</a>"),
        "{html}"
    );
    // Every submission was scaled by the start's measurement, not one of its own.
    let start_run = c["start"]["run_id"].as_str().unwrap();
    for id in ["erin", "frank"] {
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("reports/{id}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(r["status"], "graded", "{id}: {r}");
        let reference = &r["graders"][0]["latency"]["reference"];
        assert_eq!(reference["run_id"], start_run, "{id}: {reference}");
        assert_no_leftovers(r["run_id"].as_str().unwrap());
    }
    assert_no_leftovers(start_run);
    assert_no_leftovers(c["end"]["run_id"].as_str().unwrap());
    // The progress named the stage each running submission was in.
    assert!(
        stderr.contains("running: erin (") || stderr.contains("running: frank ("),
        "{stderr}"
    );
    assert!(stderr.contains("reference-at-start: median"), "{stderr}");
}
