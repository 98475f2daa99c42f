//! The hostile corpus at run time and over HTTP: submissions that build fine and then misbehave
//! once they run. Each is a real image on the real engine (`tests/fixtures/hostile/run-*` and
//! `http-*`, all `FROM proctor/busybox:test`), graded with a small grader
//! (`tests/fixtures/graders/hostile-*.toml`).
//!
//! Whatever a submission does, the run must end in bounded time with the right verdict and exit
//! code, keep the points earned before things went wrong, say what happened in a report that
//! parses, and leave no Docker resources behind.
//!
//! Run time: a service that never listens, exits at once, crashes under load, grows past its
//! memory limit, fills its tmpfs, fork-bombs, spins the CPU, floods its logs, writes to its
//! read-only root, or tries to reach the host and the internet.
//!
//! HTTP: a service that answers with a huge body, an endless chunked body, a drip, a redirect
//! loop, invalid UTF-8, JSON nested 100k deep, a 500 full of control characters, or no HTTP at
//! all. Every such check gets 0 points and a short, printable message naming the problem.
//!
//! Most serving fixtures use a CGI readiness probe (`www/cgi-bin/ready`) that leaves a mark in
//! /tmp, so that they start misbehaving only once readiness has passed, while they are graded.

mod common;

use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const MIB: u64 = 1024 * 1024;

fn hostile(name: &str) -> PathBuf {
    fixture(&format!("hostile/{name}"))
}

fn grader(name: &str) -> PathBuf {
    fixture(&format!("graders/{name}.toml"))
}

/// Grades and measures how long the whole run took.
fn grade_timed(submission: &Path, grader: &Path, extra: &[&str]) -> (Run, Duration) {
    require_docker();
    let started = Instant::now();
    let run = grade(submission, grader, extra);
    (run, started.elapsed())
}

/// Exit code, status and verdict: 0 / graded / none, or 3 / submission_error / `verdict`.
fn assert_outcome(run: &Run, verdict: Option<&str>) {
    let r = run.report();
    match verdict {
        None => {
            assert_eq!(run.code, 0, "{}", run.explain());
            assert_eq!(r["status"], "graded", "{}", run.explain());
            assert!(r["verdict"].is_null(), "{}", run.explain());
        }
        Some(v) => {
            assert_eq!(run.code, 3, "{}", run.explain());
            assert_eq!(r["status"], "submission_error", "{}", run.explain());
            assert_eq!(r["verdict"], v, "{}", run.explain());
        }
    }
}

fn check<'a>(run: &'a Run, name: &str) -> &'a Value {
    run.report()["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?}\n{}", run.explain()))
}

fn assert_passed(run: &Run, name: &str) {
    let c = check(run, name);
    assert_eq!(c["passed"], true, "{name}: {c}\n{}", run.explain());
    assert_eq!(c["points"], c["max_points"], "{name}: {c}");
}

fn container(run: &Run) -> &Value {
    let c = &run.report()["container"];
    assert!(c.is_object(), "no container section\n{}", run.explain());
    c
}

fn log_tail(run: &Run) -> &str {
    container(run)["log_tail"].as_str().expect("log_tail")
}

fn has_warning(run: &Run, needle: &str) -> bool {
    run.report()["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .any(|w| w.as_str().is_some_and(|w| w.contains(needle)))
}

/// An integer field of the report's `container` section.
fn report_u64(run: &Run, field: &str) -> u64 {
    container(run)[field]
        .as_u64()
        .unwrap_or_else(|| panic!("container.{field} is not an integer\n{}", run.explain()))
}

/// The checks of `category`, which the run stopped before: 0 points, and a message saying so.
fn assert_not_run(run: &Run, category: &str) {
    let checks: Vec<&Value> = run.report()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["category"] == category)
        .collect();
    assert!(
        !checks.is_empty(),
        "no {category} checks\n{}",
        run.explain()
    );
    for c in checks {
        assert_eq!(c["points"], 0.0, "{c}");
        assert!(
            c["message"].as_str().unwrap().starts_with("not run: "),
            "{c}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Run time
// ---------------------------------------------------------------------------------------------

/// run-never-ready: never listens, and ignores SIGTERM, so only a kill ends it.
#[test]
fn never_listening_is_never_ready_and_still_cleaned_up() {
    let (run, took) = grade_timed(
        &hostile("run-never-ready"),
        &grader("hostile-run"),
        &["--ready-timeout", "4"],
    );
    assert_outcome(&run, Some("never_ready"));
    let r = run.report();
    assert!(
        r["reason"].as_str().unwrap().contains("within 4s"),
        "{}",
        run.explain()
    );
    assert_eq!(r["score"]["points"], 0.0, "{}", run.explain());
    assert!(
        log_tail(&run).contains("loading model"),
        "{}",
        run.explain()
    );
    // Ignoring SIGTERM must not stretch the run: the container is killed, not asked to stop.
    assert!(took < Duration::from_secs(40), "took {took:?}");
    assert_no_leftovers(&run.run_id());
}

/// run-exits-at-once: fails at start-up with exit code 3.
#[test]
fn exiting_at_once_is_exited_with_its_code() {
    let (run, _) = grade_timed(&hostile("run-exits-at-once"), &grader("hostile-run"), &[]);
    assert_outcome(&run, Some("exited"));
    let r = run.report();
    assert!(
        r["reason"].as_str().unwrap().contains("exited with code 3"),
        "{}",
        run.explain()
    );
    assert_eq!(container(&run)["exit_code"], 3, "{}", run.explain());
    assert_eq!(container(&run)["oom_killed"], false, "{}", run.explain());
    assert!(
        log_tail(&run).contains("model.pkl not found"),
        "{}",
        run.explain()
    );
    assert_eq!(r["score"]["points"], 0.0);
    assert_no_leftovers(&run.run_id());
}

/// run-crash-mid-load: serves, then dies of SIGSEGV after 30 requests, during the load.
#[test]
fn crash_under_load_keeps_the_points_earned_before_it() {
    let (run, _) = grade_timed(
        &hostile("run-crash-mid-load"),
        &grader("hostile-crash"),
        &[],
    );
    assert_outcome(&run, Some("crashed_during_grading"));
    let r = run.report();
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("exited with code 139 (killed by signal 11)"),
        "{}",
        run.explain()
    );
    assert_eq!(container(&run)["exit_code"], 139, "{}", run.explain());
    assert_eq!(container(&run)["oom_killed"], false, "{}", run.explain());
    assert!(
        log_tail(&run).contains("segfault after"),
        "{}",
        run.explain()
    );
    // Readiness and the scripted checks ran before the crash and keep their points; the load's
    // checks are listed, with nothing, out of the full total.
    assert_passed(&run, "becomes ready");
    assert_passed(&run, "serves the page");
    assert_passed(&run, "answers the API");
    assert_not_run(&run, "latency");
    assert_eq!(r["score"]["points"], 3.0, "{}", run.explain());
    assert_eq!(r["score"]["max_points"], 5.0, "{}", run.explain());
    assert!(!has_warning(&run, "memory limit"), "{}", run.explain());
    assert_no_leftovers(&run.run_id());
}

/// run-memory-hog: once ready, the service itself holds 40 MiB, then grows past its 128 MB.
#[test]
fn memory_hog_is_oom_killed_with_its_peak() {
    let (run, _) = grade_timed(&hostile("run-memory-hog"), &grader("hostile-memory"), &[]);
    assert_outcome(&run, Some("oom_killed"));
    let c = container(&run);
    assert_eq!(c["oom_killed"], true, "{}", run.explain());
    assert_eq!(c["exit_code"], 137, "{}", run.explain());
    assert!(
        log_tail(&run).contains("holding 40 MiB"),
        "{}",
        run.explain()
    );
    assert_passed(&run, "becomes ready");
    assert!(run.report()["score"]["points"].as_f64().unwrap() > 0.0);
    assert_not_run(&run, "latency");
    // It held at least 40 MiB for two seconds, and never more than its limit.
    let peak = report_u64(&run, "memory_peak_bytes");
    assert!(
        (40 * MIB..=128 * MIB).contains(&peak),
        "memory_peak_bytes {peak}\n{}",
        run.explain()
    );
    assert!(has_warning(&run, "memory limit"), "{}", run.explain());
    assert_no_leftovers(&run.run_id());
}

/// run-tmpfs-filler: once ready, a child fills /tmp past the memory limit; the kernel kills it
/// and the service exits 0, as if nothing had happened.
#[test]
fn filling_tmpfs_is_oom_killed_even_when_the_exit_code_is_zero() {
    let (run, _) = grade_timed(&hostile("run-tmpfs-filler"), &grader("hostile-tmpfs"), &[]);
    assert_outcome(&run, Some("oom_killed"));
    let c = container(&run);
    assert_eq!(c["exit_code"], 0, "{}", run.explain());
    assert_eq!(c["oom_killed"], true, "{}", run.explain());
    assert!(
        log_tail(&run).contains("the fill ended with status 137"),
        "{}",
        run.explain()
    );
    assert_passed(&run, "becomes ready");
    assert!(has_warning(&run, "memory limit"), "{}", run.explain());
    assert_no_leftovers(&run.run_id());
}

/// run-fork-bomb: a second after readiness, a fork bomb takes every process slot and keeps it,
/// while a five-second answer keeps grading going.
#[test]
fn fork_bomb_is_held_at_the_pids_limit_and_the_run_ends() {
    let (run, took) = grade_timed(&hostile("run-fork-bomb"), &grader("hostile-fork-bomb"), &[]);
    assert_outcome(&run, None);
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_passed(&run, "becomes ready");
    // Its processes existed before the bomb, so the answer in flight still arrives.
    assert_passed(&run, "slow answer");
    assert!(
        log_tail(&run).contains("starting the fork bomb"),
        "{}",
        run.explain()
    );
    let peak = report_u64(&run, "pids_peak");
    assert!(peak <= 32, "pids_peak {peak} is over the limit of 32");
    assert!(has_warning(&run, "process limit"), "{}", run.explain());
    assert_no_leftovers(&run.run_id());
}

/// run-cpu-spinner: serves while four busy loops spin for as long as it lives.
#[test]
fn cpu_spinner_is_graded_and_still_answers() {
    let (run, took) = grade_timed(&hostile("run-cpu-spinner"), &grader("hostile-run"), &[]);
    assert_outcome(&run, None);
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // The spinners share the container's CPU quota with the service, which still answers
    // within the request deadline.
    assert_passed(&run, "becomes ready");
    assert_passed(&run, "serves the page");
    assert_no_leftovers(&run.run_id());
}

/// run-log-flood: serves while writing endless 1 KB lines full of terminal escapes to stdout.
#[test]
fn log_flood_leaves_a_bounded_printable_tail() {
    let (run, _) = grade_timed(&hostile("run-log-flood"), &grader("hostile-run"), &[]);
    assert_outcome(&run, None);
    assert_passed(&run, "becomes ready");
    let tail = log_tail(&run);
    assert!(
        tail.contains("FLOOD"),
        "the tail is not the flood: {tail:.300}"
    );
    assert!(
        tail.len() <= 16 * 1024 + 256,
        "log tail of {} bytes",
        tail.len()
    );
    let bad: Vec<char> = tail
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(
        bad.is_empty(),
        "control characters in the log tail: {bad:?}"
    );
    assert!(!run.stdout.contains('\u{1b}'), "escapes in the summary");
    assert_no_leftovers(&run.run_id());
}

/// The candidate's own test suite never ends: it is stopped at its deadline, the run goes on to
/// a grade, and its container is gone.
#[test]
fn a_test_suite_that_sleeps_forever_is_stopped_at_its_deadline() {
    let (run, took) = grade_timed(
        &hostile("tests-sleep-forever"),
        &grader("hostile-tests"),
        &[],
    );
    assert_outcome(&run, None);
    let tests = &run.report()["graders"][0]["tests"];
    assert_eq!(tests["timed_out"], true, "{tests}");
    let seconds = tests["seconds"].as_f64().unwrap();
    assert!((8.0..20.0).contains(&seconds), "stopped after {seconds} s");
    assert!(took < Duration::from_secs(120), "the run took {took:?}");
    let pass = check(&run, "the candidate's own tests pass");
    assert_eq!(pass["points"], 0.0);
    assert!(
        pass["message"]
            .as_str()
            .unwrap()
            .contains("stopped after 8 s"),
        "{pass}"
    );
    assert!(tests["output_tail"]
        .as_str()
        .unwrap()
        .contains("collecting tests"));
    assert_no_leftovers(&run.run_id());
}

/// The suite prints 100 MB, then writes its JUnit report: all of it is read (it passes), and
/// the report keeps only the end of the output.
#[test]
fn a_test_suite_that_floods_its_output_is_read_to_the_end_and_kept_short() {
    let (run, took) = grade_timed(
        &hostile("tests-output-flood"),
        &grader("hostile-tests"),
        &["--quiet"],
    );
    assert_outcome(&run, None);
    let tests = &run.report()["graders"][0]["tests"];
    assert!(
        tests["output_bytes"].as_u64().unwrap() >= 100 * MIB,
        "{}",
        tests["output_bytes"]
    );
    let tail = tests["output_tail"].as_str().unwrap();
    assert!(
        tail.len() <= 16 * 1024 + 256,
        "a tail of {} bytes",
        tail.len()
    );
    assert!(
        tail.ends_with("1 passed\n"),
        "{:.200}",
        &tail[tail.len().saturating_sub(200)..]
    );
    assert_eq!(
        (tests["tests"].as_u64(), tests["passed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_passed(&run, "the candidate's own tests pass");
    let report_bytes = serde_json::to_string(run.report()).unwrap().len();
    assert!(
        report_bytes < 256 * 1024,
        "a report of {report_bytes} bytes"
    );
    assert!(took < Duration::from_secs(180), "the run took {took:?}");
    assert_no_leftovers(&run.run_id());
}

/// run-writes-rootfs: tries to write into /etc and /app and to run a program from /tmp.
#[test]
fn writes_to_the_root_filesystem_fail_and_the_service_is_graded() {
    let (run, _) = grade_timed(&hostile("run-writes-rootfs"), &grader("hostile-run"), &[]);
    assert_outcome(&run, None);
    assert_passed(&run, "becomes ready");
    assert_passed(&run, "serves the page");
    let tail = log_tail(&run);
    for expected in [
        "Read-only file system",
        "could not write /etc/proctor-was-here",
        "could not write /app/proctor-was-here",
        "could not run /tmp/bb",
        "uid=65534",
    ] {
        assert!(
            tail.contains(expected),
            "{expected:?} not in the log:\n{tail}"
        );
    }
    assert!(!tail.contains("WROTE"), "a write succeeded:\n{tail}");
    assert!(!tail.contains("RAN /tmp/bb"), "/tmp is executable:\n{tail}");
    assert_no_leftovers(&run.run_id());
}

/// The address of the default bridge (docker0) on the host: its gateway, or the first address
/// of its subnet when the engine does not list a gateway.
fn default_bridge_gateway() -> Ipv4Addr {
    let out = Command::new("docker")
        .args(["network", "inspect", "bridge"])
        .output()
        .expect("docker CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nets: Value = serde_json::from_slice(&out.stdout).unwrap();
    let configs = nets[0]["IPAM"]["Config"].as_array().expect("IPAM.Config");
    for c in configs {
        if let Some(gw) = c["Gateway"].as_str().and_then(|g| g.parse().ok()) {
            return gw;
        }
    }
    for c in configs {
        if let Some((net, _)) = c["Subnet"].as_str().and_then(|s| s.split_once('/')) {
            if let Ok(net) = net.parse::<Ipv4Addr>() {
                return Ipv4Addr::from(u32::from(net) + 1);
            }
        }
    }
    panic!("no IPv4 gateway or subnet for the default bridge: {nets}");
}

/// Every connection waiting on the listener, with what the peer sent.
fn drain_connections(listener: &TcpListener) -> Vec<String> {
    listener.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    loop {
        match listener.accept() {
            Ok((mut s, peer)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let mut buf = [0u8; 200];
                let n = s.read(&mut buf).unwrap_or(0);
                got.push(format!(
                    "{peer}: {:?}",
                    String::from_utf8_lossy(&buf[..n]).trim()
                ));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return got,
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// run-egress: before serving, connects to a listener on the host through the default bridge's
/// gateway and through its own network's gateway, and to 8.8.8.8.
#[test]
fn egress_reaches_neither_the_host_nor_the_internet() {
    require_docker();
    // Like any service on the grading machine that listens on every address.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let gateway = default_bridge_gateway();
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("run-egress");
    copy_tree(&hostile("run-egress"), &sub);
    std::fs::write(
        sub.join("egress.conf"),
        format!("PORT={port}\nHOST_GATEWAY={gateway}\n"),
    )
    .unwrap();

    let (run, _) = grade_timed(&sub, &grader("hostile-run"), &["--ready-timeout", "30"]);
    assert_outcome(&run, None);
    assert_passed(&run, "becomes ready");
    // The fixture made all three attempts (the tail shows it), and none got through.
    let tail = log_tail(&run);
    assert_eq!(
        tail.matches("egress probe to ").count(),
        3,
        "the fixture did not try every address:\n{tail}"
    );
    assert!(
        tail.contains(&format!("egress probe to {gateway}:{port}")),
        "{tail}"
    );
    assert!(
        tail.contains(&format!("egress probe to 8.8.8.8:{port}")),
        "{tail}"
    );
    let got = drain_connections(&listener);
    assert!(
        got.is_empty(),
        "the container reached a listener on the host: {got:?}\nits log:\n{tail}"
    );
    assert_no_leftovers(&run.run_id());
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// http-hostile: one endpoint per way of answering badly, and a control that answers well.
/// Each hostile check must fail with a message that says what happened.
#[test]
fn hostile_answers_fail_their_checks_with_short_printable_messages() {
    let (run, took) = grade_timed(&hostile("http-hostile"), &grader("hostile-http"), &[]);
    assert_outcome(&run, None);
    // The drip alone would take 12 s, the bodies are endless or 50 MB, the redirect never
    // ends if followed: the request deadline and the body cap must bound all of them.
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_passed(&run, "becomes ready");
    assert_passed(&run, "answers well (control)");

    let expected: [(&str, &[&str]); 8] = [
        ("huge body", &["larger than the 1048576 byte limit"]),
        (
            "endless chunked body",
            &["larger than the 1048576 byte limit"],
        ),
        ("one byte per second", &["no response within 2s"]),
        ("redirect loop", &["expected status 200, got 302"]),
        (
            "invalid UTF-8 in JSON",
            &["not valid JSON", "invalid unicode"],
        ),
        (
            "JSON nested 100k deep",
            &["not valid JSON", "recursion limit"],
        ),
        ("500 on every request", &["expected status 200, got 500"]),
        ("not HTTP at all", &["invalid HTTP version"]),
    ];
    for (name, needles) in expected {
        let c = check(&run, name);
        assert_eq!(c["passed"], false, "{name}: {c}");
        assert_eq!(c["points"], 0.0, "{name}: {c}");
        let m = c["message"].as_str().unwrap();
        for needle in needles {
            assert!(m.contains(needle), "{name}: {needle:?} not in {m:?}");
        }
    }
    // Every message of the report is short and printable: the service wrote the bodies.
    for c in run.report()["checks"].as_array().unwrap() {
        let m = c["message"].as_str().unwrap();
        assert!(
            m.chars().count() <= 400,
            "{} chars: {m:?}",
            m.chars().count()
        );
        let bad: Vec<char> = m.chars().filter(|c| c.is_control()).collect();
        assert!(bad.is_empty(), "control characters {bad:?} in {m:?}");
    }
    assert!(!run.stdout.contains('\u{1b}'), "escapes in the summary");
    assert_no_leftovers(&run.run_id());
}
