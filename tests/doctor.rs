//! `proctor doctor` against the real engine: it passes on a machine that can grade, fails with
//! a fix when the engine is unreachable or a grader's base image is missing, and its JSON parses.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;

fn doctor(args: &[&str], docker_host: Option<&str>) -> (i32, String, String) {
    let mut cmd = proctor();
    cmd.arg("doctor").args(args);
    if let Some(h) = docker_host {
        cmd.env("DOCKER_HOST", h);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("proctor runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The line of the check called `name`, and the line after it (the fix, when there is one).
fn line_of<'a>(out: &'a str, name: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = out.lines().collect();
    let i = lines
        .iter()
        .position(|l| {
            l.split_once(' ')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(&format!("{name}:")))
        })
        .unwrap_or_else(|| panic!("no line for {name:?} in:\n{out}"));
    (lines[i], lines.get(i + 1).copied().unwrap_or(""))
}

/// A copy of the tiny grader that allows only `image`.
fn grader_allowing(dir: &Path, image: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture("graders/tiny.toml")).unwrap();
    let line = "allowed_base_images = [\"proctor/busybox:test\"]";
    assert!(text.contains(line), "tiny.toml changed: {line} not found");
    let path = dir.join("grader.toml");
    std::fs::write(
        &path,
        text.replace(line, &format!("allowed_base_images = [\"{image}\"]")),
    )
    .unwrap();
    path
}

#[test]
fn passes_on_this_machine_with_a_line_per_check() {
    require_docker();
    let (code, out, err) = doctor(&[], None);
    assert_eq!(
        code, 0,
        "doctor failed on a machine that grades:\n{out}\n{err}"
    );
    for name in [
        "engine",
        "api version",
        "runc",
        "cgroups",
        "resource limits",
        "storage driver",
        "base image proctor/python-ml:3.11",
        "disk (docker root)",
        "disk (temp)",
        "leftovers",
        "cpus",
    ] {
        let (line, _) = line_of(&out, name);
        let status = line.split_whitespace().next().unwrap();
        assert!(
            ["ok", "warn"].contains(&status),
            "{name}: {line}\nwhole output:\n{out}"
        );
    }
    assert!(line_of(&out, "engine").0.starts_with("ok "), "{out}");
    // Every non-ok check says what to do.
    let lines: Vec<&str> = out.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("warn ") || l.starts_with("FAIL ") {
            assert!(
                lines
                    .get(i + 1)
                    .is_some_and(|n| n.trim_start().starts_with("fix: ")),
                "no fix under {l:?}:\n{out}"
            );
        }
    }
    // runc's verdict is the shared one: this machine's runc 1.1.x predates the fixes.
    let (runc, _) = line_of(&out, "runc");
    let version = std::process::Command::new("docker")
        .args([
            "version",
            "--format",
            "{{range .Server.Components}}{{if eq .Name \"runc\"}}{{.Version}}{{end}}{{end}}",
        ])
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    assert!(
        runc.contains(&version),
        "{runc} does not name runc {version}"
    );
    if version.starts_with("1.1.") || version.starts_with("1.0.") {
        assert!(runc.starts_with("warn "), "{runc}");
        assert!(runc.contains("2025 runc CVEs"), "{runc}");
    }
}

#[test]
fn an_unreachable_engine_fails_and_says_how_to_fix_it() {
    let (code, out, err) = doctor(&[], Some("unix:///nonexistent"));
    assert_eq!(code, 1, "{out}\n{err}");
    let (line, fix) = line_of(&out, "engine");
    assert!(line.starts_with("FAIL "), "{out}");
    assert!(line.contains("unix:///nonexistent"), "{line}");
    assert!(fix.trim_start().starts_with("fix: "), "{out}");
    assert!(fix.contains("DOCKER_HOST"), "{fix}");
    assert!(fix.contains("systemctl start docker"), "{fix}");
    // The local checks still run.
    assert!(line_of(&out, "disk (temp)").0.starts_with("ok "), "{out}");
}

#[test]
fn a_missing_base_image_fails_and_is_named() {
    require_docker();
    let image = "proctor/nonexistent:1";
    let exists = std::process::Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .unwrap();
    assert!(!exists.status.success(), "{image} exists on this engine");
    let dir = tempfile::tempdir().unwrap();
    let grader = grader_allowing(dir.path(), image);
    let (code, out, err) = doctor(&["--grader", grader.to_str().unwrap()], None);
    assert_eq!(code, 1, "{out}\n{err}");
    let (line, fix) = line_of(&out, &format!("base image {image}"));
    assert!(line.starts_with("FAIL "), "{out}");
    assert!(line.contains("missing"), "{line}");
    assert!(line.contains(grader.to_str().unwrap()), "{line}");
    assert!(fix.contains("no registry"), "{fix}");
    // The repository's graders are still checked, and their image is there.
    assert!(
        line_of(&out, "base image proctor/python-ml:3.11")
            .0
            .starts_with("ok "),
        "{out}"
    );
}

#[test]
fn json_parses_and_matches_the_exit_code() {
    require_docker();
    let dir = tempfile::tempdir().unwrap();
    let missing = grader_allowing(dir.path(), "proctor/nonexistent:1");
    for (args, want_code) in [
        (vec!["--json"], 0),
        (vec!["--json", "--grader", missing.to_str().unwrap()], 1),
        (
            vec![
                "--json",
                "--grader",
                fixture("graders/tiny.toml").to_str().unwrap(),
            ],
            0,
        ),
    ] {
        let (code, out, err) = doctor(&args, None);
        assert_eq!(code, want_code, "{args:?}\n{out}\n{err}");
        let checks: Vec<Value> = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"));
        assert!(checks.len() >= 10, "{out}");
        for c in &checks {
            let status = c["status"].as_str().expect("status");
            assert!(["ok", "warn", "fail"].contains(&status), "{c}");
            assert!(c["name"].is_string() && c["detail"].is_string(), "{c}");
            assert_eq!(c["fix"].is_string(), status != "ok", "{c}");
        }
        let fails = checks.iter().filter(|c| c["status"] == "fail").count();
        assert_eq!(fails > 0, want_code == 1, "{out}");
        let engine = checks.iter().find(|c| c["name"] == "engine").unwrap();
        assert_eq!(engine["status"], "ok", "{out}");
    }
}

#[test]
fn an_unreadable_grader_is_a_usage_error() {
    let (code, out, err) = doctor(&["--grader", "/nonexistent/grader.toml"], None);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("/nonexistent/grader.toml"), "{err}");
    let (code, _, err) = doctor(&["--no-such-flag"], None);
    assert_eq!(code, 2, "{err}");
}
