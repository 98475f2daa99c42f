//! The harness image (docker/harness) on the real engine: built with this test's proctor, run
//! as its README runs it (the host's Docker socket, network, pid namespace and cgroups, the
//! host's /tmp for the latency lock), it grades the reference submission from a read-only
//! mount and writes the report into a mounted folder, owned by that folder's owner, leaving
//! nothing behind. `proctor doctor` inside it says that it runs in a container and that what
//! grading needs is shared, and without those flags says what is missing.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A tag of this test process's own, so that the test's (debug) proctor never replaces a
/// harness image built for use, and removing it at the end removes nothing another run uses.
fn image() -> String {
    format!("proctor/harness:test-{}", std::process::id())
}

/// Removes the test's containers and its image when the test ends, also when it fails. After
/// a failure it also sweeps the runs whose proctor was killed with its container (`proctor gc`
/// removes only runs whose process is gone).
struct Cleanup {
    containers: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
        let _ = Command::new("docker")
            .args(["image", "rm", &image()])
            .output();
        if std::thread::panicking() {
            let _ = proctor().arg("gc").output();
        }
    }
}

/// The host's latency lock, as host proctor processes find it: its directory is mounted at
/// /host-tmp, and the lock is named as the image expects unless PROCTOR_LATENCY_LOCK renames it.
fn lock_mount() -> (PathBuf, String) {
    let lock = std::env::var_os("PROCTOR_LATENCY_LOCK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/proctor-latency.lock"));
    let dir = lock.parent().unwrap_or(Path::new("/tmp")).to_path_buf();
    let name = lock.file_name().unwrap().to_string_lossy().into_owned();
    (dir, format!("PROCTOR_LATENCY_LOCK=/host-tmp/{name}"))
}

/// `docker run` of the image with the README's flags, named `name`.
fn harness_run(name: &str, mounts: &[(&Path, &str)]) -> Command {
    let (lock_dir, lock_env) = lock_mount();
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--name", name])
        .args(["--network", "host", "--pid", "host", "--cgroupns", "host"])
        .args(["--cap-add", "NET_ADMIN", "--cap-add", "SYS_NICE"])
        .args(["-v", "/var/run/docker.sock:/var/run/docker.sock"])
        .args(["-v", "/sys/fs/cgroup:/sys/fs/cgroup"])
        .arg("-v")
        .arg(format!("{}:/host-tmp", lock_dir.display()))
        .args(["-e", &lock_env]);
    for (host, inside) in mounts {
        cmd.arg("-v").arg(format!("{}:{inside}", host.display()));
    }
    cmd.arg(image());
    cmd
}

/// Runs `cmd` for at most `limit`; past it the container `name` is removed, which ends the
/// docker CLI too, and the test fails.
fn run_within(mut cmd: Command, name: &str, limit: Duration) -> Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the docker CLI runs");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("docker run finishes"),
        Err(_) => {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
            panic!("the harness container {name} ran longer than {limit:?}");
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `proctor doctor --json` in the harness, as (exit code, checks by name, raw output).
fn doctor(cmd: Command, name: &str) -> (i32, Vec<Value>, String) {
    let out = run_within(cmd, name, Duration::from_secs(120));
    let raw = format!(
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let checks: Vec<Value> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{raw}"));
    (out.status.code().unwrap_or(-1), checks, raw)
}

fn check<'a>(checks: &'a [Value], name: &str, raw: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?}:\n{raw}"))
}

#[test]
fn the_harness_image_grades_the_reference_through_the_hosts_engine() {
    require_docker();
    let tag = format!("proctor-harness-test-{}", std::process::id());
    let (grade_name, doctor_name, bare_name) = (
        format!("{tag}-grade"),
        format!("{tag}-doctor"),
        format!("{tag}-bare"),
    );
    let _cleanup = Cleanup {
        containers: vec![grade_name.clone(), doctor_name.clone(), bare_name.clone()],
    };

    // The image, with this test's binary (a debug build is fine: only its top layer changes).
    let t0 = Instant::now();
    let built = Command::new("bash")
        .arg(repo().join("docker/harness/build.sh"))
        .arg(env!("CARGO_BIN_EXE_proctor"))
        .env("PROCTOR_HARNESS_IMAGE", image())
        .status()
        .expect("bash runs");
    assert!(
        built.success(),
        "docker/harness/build.sh failed ({built}); its output is above"
    );
    eprintln!("harness image built in {:.0?}", t0.elapsed());
    let labels = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &image(),
    ]);
    let labels: Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["io.proctor.harness"], "1", "{labels}");
    assert!(
        labels.get("io.proctor.managed").is_none(),
        "gc would remove the image: {labels}"
    );

    // The output folder belongs to someone else than root, as a user's folder would: the
    // report must be theirs. (Run as a user, the folder is already theirs.)
    let out = tempfile::tempdir().unwrap();
    if is_root() {
        std::os::unix::fs::chown(out.path(), Some(4242), Some(4242)).unwrap();
    }
    let owner = std::fs::metadata(out.path()).unwrap();
    let (graders, assignments) = (repo().join("graders"), repo().join("assignments"));
    let reference = fixture("submissions/reference");
    let mounts = [
        (reference.as_path(), "/work/sub:ro"),
        (graders.as_path(), "/work/graders:ro"),
        (assignments.as_path(), "/work/assignments:ro"),
        (out.path(), "/out"),
    ];

    let grade_once = || {
        let mut cmd = harness_run(&grade_name, &mounts);
        cmd.args([
            "grade",
            "/work/sub",
            "--grader",
            "graders/churn/public.toml",
        ])
        .args(["--out", "/out/report.json", "--seed", "7"]);
        let t0 = Instant::now();
        let output = run_within(cmd, &grade_name, Duration::from_secs(900));
        eprintln!("graded in the harness in {:.0?}", t0.elapsed());
        finish(output, &out.path().join("report.json"))
    };
    let mut run = grade_once();
    // As common::grade does: a latency measurement this busy machine could not keep on
    // schedule is the machine's failure, graded again once.
    if run
        .report
        .as_ref()
        .is_some_and(|r| r["verdict"] == "latency_measurement_invalid")
    {
        eprintln!("latency measurement invalid on this busy machine; grading again once");
        run = grade_once();
    }
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(run.report()["status"], "graded", "{}", run.explain());
    assert!(
        run.percent() >= 95.0,
        "the reference keeps >= 95% of the points: {}",
        run.explain()
    );
    // Nothing ran degraded: the firewall rule and the build's process limit were in place.
    let warnings = run.report()["warnings"].to_string();
    for degraded in ["process limit", "reach ports on this machine"] {
        assert!(
            !warnings.contains(degraded),
            "{degraded}: {}",
            run.explain()
        );
    }
    assert_no_leftovers(&run.run_id());
    let gone = docker(&["ps", "-a", "-q", "--filter", &format!("name={grade_name}")]);
    assert!(gone.is_empty(), "the harness container stayed: {gone}");

    // The report is the folder owner's, and readable by them.
    let report = out.path().join("report.json");
    let meta = std::fs::metadata(&report).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (owner.uid(), owner.gid()),
        "the report is not owned by the output folder's owner"
    );
    assert!(meta.mode() & 0o400 != 0, "the owner cannot read the report");
    let leftover_temp: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "report.json")
        .collect();
    assert!(leftover_temp.is_empty(), "{leftover_temp:?}");

    // doctor with the README's flags: a container that shares what grading needs.
    let mut cmd = harness_run(&doctor_name, &mounts[1..3]);
    cmd.args(["doctor", "--json"]);
    let (code, checks, raw) = doctor(cmd, &doctor_name);
    eprintln!("doctor in the harness:\n{raw}");
    assert_eq!(code, 0, "{raw}");
    let container = check(&checks, "container", &raw);
    assert!(
        container["detail"]
            .as_str()
            .unwrap()
            .contains("runs in a container"),
        "{raw}"
    );
    for name in [
        "network namespace",
        "pid namespace",
        "build process limit",
        "host firewall",
        "latency lock",
    ] {
        assert_eq!(check(&checks, name, &raw)["status"], "ok", "{name}:\n{raw}");
    }
    assert_eq!(
        check(&checks, "base image proctor/python-ml:3.11", &raw)["status"],
        "ok",
        "the mounted graders' base image:\n{raw}"
    );

    // doctor without them names each missing piece and the flag that gives it.
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--name", &bare_name])
        .args(["-v", "/var/run/docker.sock:/var/run/docker.sock"])
        .arg(image())
        .args(["doctor", "--json"]);
    let (code, checks, raw) = doctor(cmd, &bare_name);
    assert_eq!(code, 1, "{raw}");
    for (name, status, flag) in [
        ("network namespace", "fail", "--network host"),
        ("pid namespace", "fail", "--pid host"),
        (
            "build process limit",
            "warn",
            "-v /sys/fs/cgroup:/sys/fs/cgroup",
        ),
        ("host firewall", "warn", "--network host"),
        ("latency lock", "warn", "-v /tmp:/host-tmp"),
    ] {
        let c = check(&checks, name, &raw);
        assert_eq!(c["status"], status, "{name}:\n{raw}");
        assert!(
            c["fix"].as_str().unwrap().contains(flag),
            "{name} does not name {flag}:\n{raw}"
        );
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
