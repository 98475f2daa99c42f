//! Two `proctor grade` processes started together on one machine: their latency phases never
//! overlap (the machine-wide latency lock), and the one that waited says how long.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;

/// Readiness, one check and a 3-second load of a static page (150 requests).
const GRADER: &str = r#"
[grader]
name = "fair-latency"
assignment = "static-site"

[submission]
port = 8080
allowed_base_images = ["proctor/busybox:test"]
build_timeout_secs = 120
ready_timeout_secs = 10

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

[latency]
path = "/index.html"
method = "GET"
rate = 50.0
duration_secs = 3.0
warmup_secs = 0.0
concurrency = 2

[[latency.objective]]
percentile = 50.0
full_points_ms = 100.0
zero_points_ms = 1000.0
points = 1
"#;

/// (start, end) of the report's latency phase, in seconds since the epoch.
fn latency_interval(report: &Value) -> (f64, f64) {
    let t = report["timings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["stage"] == "latency")
        .unwrap_or_else(|| panic!("no latency timing: {report}"));
    let at = t["started_at"].as_str().expect("started_at");
    let start = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    let start = start.unix_timestamp_nanos() as f64 / 1e9;
    (start, start + t["seconds"].as_f64().unwrap())
}

#[test]
fn two_grades_started_together_measure_latency_one_after_the_other() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let grader = tmp.path().join("grader.toml");
    std::fs::write(&grader, GRADER).unwrap();
    let children: Vec<_> = (0..2)
        .map(|i| {
            let out = tmp.path().join(format!("r{i}.json"));
            let child = proctor()
                .arg("grade")
                .arg(fixture("submissions/static-site"))
                .arg("--grader")
                .arg(&grader)
                .arg("--out")
                .arg(&out)
                .args(["--seed", "1", "--quiet"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("proctor starts");
            (child, out)
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|(child, out)| finish(child.wait_with_output().unwrap(), &out))
        .collect();
    for run in &runs {
        assert_eq!(run.code, 0, "{}", run.explain());
        assert_no_leftovers(&run.run_id());
    }
    let mut spans: Vec<_> = runs.iter().map(|r| latency_interval(r.report())).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (first, second) = (spans[0], spans[1]);
    assert!(
        second.0 >= first.1 - 0.05,
        "latency phases overlap: {first:?} and {second:?}"
    );
    // Started together, one of them had to wait: its latency phase for the other's, or one of
    // its stages (build, checks) for the other's measurement to finish. The report says so.
    let waited: f64 = runs
        .iter()
        .flat_map(|r| r.report()["timings"].as_array().unwrap().clone())
        .filter_map(|t| t["lock_wait_seconds"].as_f64())
        .sum();
    assert!(waited > 0.5, "no stage waited for the lock: {spans:?}");
}
