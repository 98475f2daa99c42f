//! Hostile builds: Dockerfiles that try to run forever, exhaust memory or processes, reach the
//! network, flood the log or ship a huge image. Each gets its exact verdict, a reason that names
//! the limit, and leaves nothing behind: no labelled resource, no step container, no build
//! cgroup. The fixtures are under `tests/fixtures/hostile/build-*`; their limits are in
//! `tests/fixtures/graders/build-limits.toml`.

mod common;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn limits() -> PathBuf {
    fixture("graders/build-limits.toml")
}

fn hostile(name: &str) -> PathBuf {
    fixture(&format!("hostile/{name}"))
}

/// Grades a fixture with the tight build limits and checks the verdict and the cleanup.
fn assert_verdict(submission: &Path, verdict: &str, extra: &[&str]) -> Run {
    require_docker();
    let run = grade(submission, &limits(), extra);
    assert_eq!(run.code, 3, "{}", run.explain());
    let r = run.report();
    assert_eq!(r["status"], "submission_error", "{}", run.explain());
    assert_eq!(r["verdict"], verdict, "{}", run.explain());
    assert_no_leftovers(&run.run_id());
    assert_no_build_cgroup(&run.run_id());
    run
}

fn reason(run: &Run) -> String {
    run.report()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The run's build cgroup is gone from every hierarchy.
fn assert_no_build_cgroup(run_id: &str) {
    let name = format!("proctor-build-{run_id}");
    let left: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .chain([PathBuf::from("/sys/fs/cgroup")])
        .map(|h| h.join(&name))
        .filter(|p| p.exists())
        .collect();
    assert!(left.is_empty(), "build cgroups left behind: {left:?}");
}

#[test]
fn a_step_that_never_ends_is_cancelled_at_the_build_timeout() {
    let started = Instant::now();
    let run = assert_verdict(
        &hostile("build-sleep-infinity"),
        "build_timeout",
        &["--build-timeout", "6"],
    );
    assert!(reason(&run).contains("within 6s"), "{}", reason(&run));
    assert!(
        reason(&run).contains("RUN sleep infinity"),
        "{}",
        reason(&run)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_no_container_runs("sleep infinity");
}

#[test]
fn a_step_over_the_build_memory_limit_is_killed_and_named() {
    let run = assert_verdict(&hostile("build-memory-hog"), "build_failed", &[]);
    let why = reason(&run);
    assert!(why.contains("code: 137"), "{why}");
    assert!(why.contains("64 MB of memory"), "{why}");
}

#[test]
fn a_build_fork_bomb_is_held_at_the_process_limit() {
    let started = Instant::now();
    let run = assert_verdict(&hostile("build-fork-bomb"), "build_failed", &[]);
    // The limit held: forks failed inside the step (and the shell gave up) long before the
    // host's process table filled or the build timed out.
    let why = reason(&run);
    assert!(why.contains("process limit"), "{why}");
    let log = run.report()["build_log_tail"].as_str().unwrap_or_default();
    assert!(log.contains("can't fork"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(14), "{why}");
    assert_no_container_runs("sleep 300");
    let left = Command::new("pgrep")
        .args(["-f", "^sleep 300$"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes of the fork bomb survived: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn a_build_cannot_reach_the_host_or_the_internet() {
    // A listener on every host address: the build step tries it through the bridge gateway.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let gateway = bridge_gateway();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(hostile("build-network").join("Dockerfile.in")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        text.replace("@GATEWAY@", &gateway).replace("@PORT@", &port),
    )
    .unwrap();

    let run = assert_verdict(dir.path(), "build_failed", &[]);
    let why = reason(&run);
    assert!(why.contains("without network"), "{why}");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the build reached the host's listener: {other:?}"),
    }
}

#[test]
fn add_from_a_url_is_refused_before_building() {
    let run = assert_verdict(&hostile("build-add-url"), "network_access", &[]);
    assert!(reason(&run).contains("line 3"), "{}", reason(&run));
    // Refused by reading the Dockerfile: nothing was built.
    assert!(run.report()["image"].is_null(), "{}", run.explain());
}

#[test]
fn a_base_image_outside_the_allowlist_is_refused_before_building() {
    let run = assert_verdict(
        &hostile("build-from-not-allowed"),
        "base_image_not_allowed",
        &[],
    );
    let why = reason(&run);
    assert!(why.contains("alpine:3.20"), "{why}");
    assert!(why.contains("proctor/busybox:test"), "{why}");
    assert!(run.report()["image"].is_null(), "{}", run.explain());
}

#[test]
fn a_build_that_floods_its_output_is_stopped() {
    let started = Instant::now();
    let run = assert_verdict(&hostile("build-output-flood"), "build_failed", &[]);
    let why = reason(&run);
    assert!(why.contains("more than 1 MB of output"), "{why}");
    // Stopped at the cap, not at the 15 s build timeout.
    assert!(started.elapsed() < Duration::from_secs(14), "{why}");
    let tail = run.report()["build_log_tail"].as_str().unwrap_or_default();
    assert!(tail.len() <= 40 * 1024, "log tail of {} bytes", tail.len());
    assert_no_container_runs("flooding the build log");
}

#[test]
fn an_image_over_the_size_cap_is_refused_and_removed() {
    let run = assert_verdict(&hostile("build-huge-image"), "image_too_large", &[]);
    let why = reason(&run);
    assert!(why.contains("over the limit of 16 MB"), "{why}");
}

/// The default bridge's gateway: the host as seen from a container.
fn bridge_gateway() -> String {
    let out = Command::new("docker")
        .args([
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        ])
        .output()
        .unwrap();
    let gw = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if gw.is_empty() {
        "172.17.0.1".into()
    } else {
        gw
    }
}
