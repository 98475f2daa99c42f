//! Ctrl-C (SIGINT) during the build and during the load phase: proctor stops, removes every
//! Docker resource of the run, writes a report that says it was interrupted (not a grade), and
//! exits 130.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Starts a grade, sends SIGINT once a stderr line contains `trigger`, and returns the run.
fn interrupt_when(submission: &str, trigger: &str) -> Run {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r.json");
    let mut child = proctor()
        .arg("grade")
        .arg(fixture(submission))
        .arg("--grader")
        .arg(fixture("graders/tiny.toml"))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        match line {
            Ok(l) if l.contains(trigger) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "never saw {trigger:?} on stderr ({e}); stderr so far: {}",
                    reader.join().unwrap()
                );
            }
        }
    }
    // Let the stage get going, then interrupt as a terminal would.
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let waited = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if waited.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("proctor did not stop within 90 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let stderr = reader.join().unwrap();
    let report = std::fs::read(&out)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    Run {
        code,
        stdout,
        stderr,
        report,
    }
}

fn assert_interrupted_and_clean(run: &Run) {
    assert_eq!(run.code, 130, "{}", run.explain());
    let r = run.report();
    assert_eq!(r["status"], "infrastructure_error", "{}", run.explain());
    assert_eq!(r["verdict"], "interrupted");
    assert!(r["score"].is_null(), "an interrupted run is not a grade");
    assert_no_leftovers(&run.run_id());
}

#[test]
fn ctrl_c_during_build_removes_everything() {
    let run = interrupt_when("submissions/slow-build", "build: Step 2/");
    assert_interrupted_and_clean(&run);
    // The engine also stopped the build container of the cancelled RUN step (it carries no
    // label, so look for its command).
    assert_no_container_runs("sleep 120");
}

#[test]
fn ctrl_c_during_load_removes_everything_and_keeps_earned_points_out_of_the_score() {
    let run = interrupt_when("submissions/static-site", "latency: started");
    assert_interrupted_and_clean(&run);
    // The checks graded before the interruption are still in the report.
    let checks = run.report()["checks"].as_array().unwrap();
    let served = checks
        .iter()
        .find(|c| c["name"] == "serves the page")
        .unwrap();
    assert_eq!(served["passed"], true, "{}", run.explain());
}
