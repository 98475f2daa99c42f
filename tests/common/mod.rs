//! Shared helpers of the integration tests. They run the real `proctor` binary against the real
//! Docker engine; when no engine answers they fail with a message saying so (never skip).

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the grader at `path` with `[cost] calibrate = false`, beside it (its data paths are
/// relative), removed on drop. For rounds of variants that break other categories than CPU:
/// each comparison with proctor's yardstick costs half a minute under the machine-wide latency
/// lock, and the calibrated CPU check has tests of its own (tests/cost_reference.rs, and the
/// reference's grades in tests/production.rs).
pub fn uncalibrated(path: &Path) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains("\ncalibrate = true\n"),
        "{} calibrates",
        path.display()
    );
    let f = tempfile::Builder::new()
        .prefix(".uncalibrated-")
        .suffix(".toml")
        .tempfile_in(path.parent().unwrap())
        .unwrap();
    std::fs::write(
        f.path(),
        text.replace("\ncalibrate = true\n", "\ncalibrate = false\n"),
    )
    .unwrap();
    f
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// Fails the test with instructions when the engine is not reachable, and builds the local base
/// images once (the scripts are idempotent and serialise concurrent callers with a lock).
pub fn require_docker() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        let info = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
        match info {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "integration tests need a Docker engine, and `docker info` failed: {}\nStart dockerd (or set DOCKER_HOST) and run again; .ci/run does this on a fresh machine.",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => return Err(format!("integration tests need the docker CLI and a Docker engine: {e}")),
        }
        for script in ["docker/base/build.sh", "docker/testbase/build.sh", "docker/review/build.sh", "docker/yardstick/build.sh"] {
            let status = Command::new("bash").arg(repo().join(script)).status().map_err(|e| format!("{script}: {e}"))?;
            if !status.success() {
                return Err(format!("{script} failed ({status}); its output is above"));
            }
        }
        Ok(())
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<Value>,
}

impl Run {
    pub fn report(&self) -> &Value {
        self.report
            .as_ref()
            .unwrap_or_else(|| panic!("no report was written\nstderr:\n{}", self.stderr))
    }
    pub fn run_id(&self) -> String {
        self.report()["run_id"]
            .as_str()
            .expect("run_id")
            .to_string()
    }
    pub fn percent(&self) -> f64 {
        self.report()["score"]["percent"]
            .as_f64()
            .unwrap_or_else(|| panic!("no score in {}", self.report()))
    }
    /// Everything about the run, for assertion messages.
    pub fn explain(&self) -> String {
        format!(
            "exit code {}\nstdout:\n{}\nstderr:\n{}\nreport:\n{}",
            self.code,
            self.stdout,
            self.stderr,
            self.report
                .as_ref()
                .map(|r| serde_json::to_string_pretty(r).unwrap())
                .unwrap_or_default()
        )
    }
}

pub fn proctor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_proctor"))
}

/// `proctor grade <submission> --grader <grader> --out <tmp>` plus `extra` arguments.
/// Grades a submission. A run whose latency measurement was invalid (the load generator could
/// not keep its schedule: this machine runs the tests in parallel) is regraded once, as proctor
/// itself tells a grader to do; it is never taken as the submission's result.
pub fn grade(submission: &Path, grader: &Path, extra: &[&str]) -> Run {
    let run = grade_once(submission, grader, extra);
    let invalid = run
        .report
        .as_ref()
        .is_some_and(|r| r["verdict"] == "latency_measurement_invalid");
    if !invalid {
        return run;
    }
    eprintln!(
        "latency measurement invalid on this busy machine; regrading once: {}",
        run.report()["reason"]
    );
    grade_once(submission, grader, extra)
}

/// Grades a service that is already running at `url` (`proctor grade --url`).
pub fn grade_url(url: &str, grader: &Path, extra: &[&str]) -> Run {
    grade_what(&["--url".as_ref(), url.as_ref()], grader, extra)
}

fn grade_once(submission: &Path, grader: &Path, extra: &[&str]) -> Run {
    grade_what(&[submission.as_os_str()], grader, extra)
}

/// `proctor grade WHAT --grader GRADER --out TMP EXTRA...`, and its report.
fn grade_what(what: &[&std::ffi::OsStr], grader: &Path, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let mut cmd = proctor();
    cmd.arg("grade")
        .args(what)
        .arg("--grader")
        .arg(grader)
        .arg("--out")
        .arg(&out)
        .args(extra);
    finish(cmd.output().expect("proctor runs"), &out)
}

pub fn finish(output: Output, report_path: &Path) -> Run {
    let report = std::fs::read(report_path)
        .ok()
        .map(|b| serde_json::from_slice(&b).expect("the report is valid JSON"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        report,
    }
}

/// How many entries of a report's `timings` are of `stage` (`build`, `ready`, a phase name).
pub fn stage_count(report: &Value, stage: &str) -> usize {
    report["timings"]
        .as_array()
        .expect("timings")
        .iter()
        .filter(|t| t["stage"] == stage)
        .count()
}

/// Containers, networks and images that still carry the run's label.
pub fn leftovers(run_id: &str) -> Vec<String> {
    let filter = format!("label=io.proctor.run={run_id}");
    let mut found = Vec::new();
    for (what, args) in [
        ("container", vec!["ps", "-a", "-q", "--filter", &filter]),
        ("network", vec!["network", "ls", "-q", "--filter", &filter]),
        ("image", vec!["images", "-a", "-q", "--filter", &filter]),
    ] {
        for id in docker(&args).split_whitespace() {
            found.push(format!("{what} {id}"));
        }
    }
    // The host-side pieces of a run: its firewall rule and its build cgroup.
    if let Ok(out) = Command::new("iptables")
        .args(["-w", "5", "-S", "INPUT"])
        .output()
    {
        let rules = String::from_utf8_lossy(&out.stdout).into_owned();
        for rule in rules
            .lines()
            .filter(|l| l.contains(&format!("proctor:{run_id}")))
        {
            found.push(format!("iptables rule {rule}"));
        }
    }
    let cgroup = format!("proctor-build-{run_id}");
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        if h.path().join(&cgroup).exists() {
            found.push(format!("cgroup {}", h.path().join(&cgroup).display()));
        }
    }
    found
}

/// Runs the docker CLI and returns its trimmed stdout; fails the test when the CLI fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits (20 s at most) until no container's command contains `needle`: the engine removes a
/// cancelled build step's container, which carries no label, shortly after the build stops.
pub fn assert_no_container_runs(needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let listing = docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
        if !listing.contains(needle) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a container running {needle:?} is still there:\n{listing}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

pub fn assert_no_leftovers(run_id: &str) {
    let left = leftovers(run_id);
    assert!(
        left.is_empty(),
        "run {run_id} left Docker resources behind: {left:?}"
    );
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// A batch's report of submission `id`, from its output folder.
pub fn batch_report(out: &Path, id: &str) -> Value {
    let text = std::fs::read_to_string(out.join(format!("reports/{id}.json")))
        .unwrap_or_else(|e| panic!("no report for {id}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A report's categories: name -> (points, max points).
pub fn categories(report: &Value) -> std::collections::BTreeMap<String, (f64, f64)> {
    report["categories"]
        .as_array()
        .unwrap_or_else(|| panic!("no categories: {report}"))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                (
                    c["points"].as_f64().unwrap(),
                    c["max_points"].as_f64().unwrap(),
                ),
            )
        })
        .collect()
}
