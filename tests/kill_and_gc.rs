//! What SIGKILL leaves behind and how `proctor gc` removes it; parallel runs that stay apart and
//! a `proctor gc` that leaves live runs alone.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// The tests here run one at a time: every grade sweeps dead runs when it starts, which would
/// remove the leftovers the SIGKILL test must first see.
static SERIAL: Mutex<()> = Mutex::new(());

/// A grade running in the background, its stderr going to a file.
struct Background {
    child: Child,
    stderr: PathBuf,
    report: PathBuf,
    _dir: tempfile::TempDir,
}

impl Background {
    fn start(submission: &Path, grader: &Path) -> Background {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr");
        let report = dir.path().join("report.json");
        let child = proctor()
            .arg("grade")
            .arg(submission)
            .arg("--grader")
            .arg(grader)
            .arg("--out")
            .arg(&report)
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("proctor starts");
        Background {
            child,
            stderr,
            report,
            _dir: dir,
        }
    }

    fn progress(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process (at most `limit`) and returns the run.
    fn finish(mut self, limit: Duration) -> Run {
        let started = Instant::now();
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "proctor did not finish within {limit:?}; stderr:\n{}",
                    self.progress()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let report = std::fs::read(&self.report)
            .ok()
            .map(|b| serde_json::from_slice(&b).expect("the report is valid JSON"));
        Run {
            code,
            stdout: String::new(),
            stderr: self.progress(),
            report,
        }
    }
}

/// A test that fails midway stops its grades the way Ctrl-C would, so they clean up after
/// themselves instead of running on.
impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signals a child process this test started and has not reaped.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let until = Instant::now() + Duration::from_secs(60);
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > until {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.wait();
        }
    }
}

/// The run id of the running, proctor-labelled container that process `pid` created.
fn running_container_of(pid: u32) -> Option<String> {
    let listing = docker(&[
        "ps",
        "--filter",
        "label=io.proctor.managed=1",
        "--filter",
        &format!("label=io.proctor.pid={pid}"),
        "--format",
        "{{.Label \"io.proctor.run\"}}",
    ]);
    listing.lines().next().map(str::to_string)
}

/// The containers (running or not) of one run.
fn containers_of_run(run_id: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=io.proctor.run={run_id}"),
    ])
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

fn gc(extra: &[&str]) -> (i32, String, String) {
    let out = proctor()
        .arg("gc")
        .args(extra)
        .output()
        .expect("proctor gc runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sigkill_leaves_resources_that_gc_removes() {
    require_docker();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // tiny.toml's latency load runs 60 s: the run is still going when it is killed.
    let mut run = Background::start(
        &fixture("submissions/static-site"),
        &fixture("graders/tiny.toml"),
    );
    let deadline = Instant::now() + Duration::from_secs(240);
    let run_id = loop {
        if let Some(id) = running_container_of(run.pid()) {
            break id;
        }
        if let Some(status) = run.child.try_wait().unwrap() {
            panic!(
                "proctor exited ({status}) before its container ran; stderr:\n{}",
                run.progress()
            );
        }
        if Instant::now() > deadline {
            let _ = run.child.kill();
            panic!(
                "no running container after 240 s; stderr:\n{}",
                run.progress()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    run.child.kill().expect("SIGKILL"); // std's kill() sends SIGKILL
                                        // Reap it: a zombie still has its /proc entry, and gc would take the run for alive.
    let status = run.child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}"
    );

    // No cleanup ran: the container, its network and the image are still there.
    let left = leftovers(&run_id);
    for kind in ["container", "network", "image"] {
        assert!(
            left.iter().any(|l| l.starts_with(kind)),
            "after SIGKILL the run's {kind} should remain, found only {left:?}\nstderr:\n{}",
            run.progress()
        );
    }

    let (code, out, err) = gc(&[]);
    assert_eq!(code, 0, "proctor gc failed:\n{out}\n{err}");
    assert!(
        out.contains("removed") && !out.starts_with("removed 0 container(s)"),
        "gc reported removing nothing: {out}"
    );
    assert_no_leftovers(&run_id);
}

/// A copy of tiny.toml with a 4 s load (the fixture's 60 s is for interruption tests).
fn short_tiny(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(fixture("graders/tiny.toml")).unwrap();
    let (long, slow) = ("duration_secs = 60.0", "rate = 20.0");
    for line in [long, slow] {
        assert!(text.contains(line), "tiny.toml changed: {line} not found");
    }
    // Two runs and a gc share two cores, so a send now and then leaves more than 1 ms late, and
    // a measurement with more than 1% late sends is invalid (an infrastructure error). At
    // 20 req/s for 4 s one late send of 80 is already too many; at 100 req/s it takes five of
    // 400. 400 requests are fewer than a p99 needs by default: say that 300 will do.
    let path = dir.join("tiny-short.toml");
    std::fs::write(
        &path,
        text.replace(long, "duration_secs = 4.0\nmin_requests = 300")
            .replace(slow, "rate = 100.0"),
    )
    .unwrap();
    path
}

#[test]
fn parallel_runs_stay_apart_and_gc_spares_live_runs() {
    require_docker();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let grader = short_tiny(dir.path());
    let submission = fixture("submissions/static-site");
    let a = Background::start(&submission, &grader);
    let b = Background::start(&submission, &grader);

    // Wait until both services are up and neither run has begun its cleanup.
    let live = |r: &Background| {
        let p = r.progress();
        p.contains("ready: started") && !p.contains("cleanup: started")
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if live(&a) && live(&b) {
            break;
        }
        let done = [&a, &b]
            .iter()
            .any(|r| r.progress().contains("cleanup: started"));
        assert!(
            !done && Instant::now() < deadline,
            "the two runs were never live at the same time\nA:\n{}\nB:\n{}",
            a.progress(),
            b.progress()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ids: Vec<String> = [&a, &b]
        .iter()
        .map(|r| {
            running_container_of(r.pid()).unwrap_or_else(|| {
                panic!(
                    "run {} has no running container:\n{}",
                    r.pid(),
                    r.progress()
                )
            })
        })
        .collect();
    assert_ne!(ids[0], ids[1], "two runs share a run id");

    // A gc while they run (not --all): the owners are alive, so nothing of theirs goes.
    let (code, out, err) = gc(&[]);
    assert_eq!(code, 0, "proctor gc failed:\n{out}\n{err}");
    for (run, id) in [(&a, &ids[0]), (&b, &ids[1])] {
        let containers = containers_of_run(id);
        // Only the run's own cleanup may remove its container; give its progress line time
        // to arrive before concluding that gc did.
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !containers.is_empty() || run.progress().contains("cleanup: started"),
            "gc removed the container of live run {id}:\n{}",
            run.progress()
        );
    }

    let runs = [a, b].map(|r| r.finish(Duration::from_secs(180)));
    for (run, id) in runs.iter().zip(&ids) {
        assert_eq!(run.code, 0, "{}", run.explain());
        let r = run.report();
        assert_eq!(r["status"], "graded", "{}", run.explain());
        assert_eq!(&run.run_id(), id, "{}", run.explain());
        for c in r["checks"].as_array().unwrap() {
            if c["name"] == "becomes ready" || c["name"] == "serves the page" {
                assert_eq!(c["passed"], true, "{}", run.explain());
            }
        }
        assert_eq!(
            r["graders"][0]["latency"]["ok"],
            r["graders"][0]["latency"]["requests"],
            "requests failed during the load: {}",
            run.explain()
        );
        assert_ne!(r["container"]["oom_killed"], true, "{}", run.explain());
        assert_no_leftovers(id);
    }
}

/// `--keep-image` keeps the candidate's image as `proctor/kept:<run id>`: the sweeps of later
/// runs and `proctor gc` leave it, `proctor gc --all` removes it.
#[test]
fn a_kept_image_survives_gc_until_gc_all() {
    require_docker();
    // Its gc runs must not meet the other tests' live runs, nor load the machine under them.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let run = grade(
        &fixture("submissions/static-site"),
        &fixture("graders/build-limits.toml"),
        &["--keep-image"],
    );
    assert_eq!(run.code, 0, "{}", run.explain());
    let kept = format!("proctor/kept:{}", run.run_id());
    let present = || {
        std::process::Command::new("docker")
            .args(["image", "inspect", &kept])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(present(), "{kept} is missing after the run");
    let gc = proctor().arg("gc").output().unwrap();
    assert!(gc.status.success());
    assert!(present(), "proctor gc removed the kept image {kept}");
    let gc_all = proctor().args(["gc", "--all"]).output().unwrap();
    assert!(gc_all.status.success(), "{gc_all:?}");
    assert!(!present(), "proctor gc --all left the kept image {kept}");
    assert_no_leftovers(&run.run_id());
}
