//! The reference submission, graded end to end on the real engine, as a directory, as a
//! .tar.gz, and renamed (to show that nothing in proctor is specific to the churn assignment).

mod common;

use std::path::Path;

use common::*;

fn public_grader() -> std::path::PathBuf {
    repo().join("graders/churn/public.toml")
}

fn assert_graded_well(run: &Run) {
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(run.report()["status"], "graded", "{}", run.explain());
    assert!(
        run.percent() >= 90.0,
        "reference should keep >= 90% of the points: {}",
        run.explain()
    );
    assert_no_leftovers(&run.run_id());
}

#[test]
fn reference_directory_and_tar_gz_grade_the_same() {
    require_docker();
    let dir_run = grade(
        &fixture("submissions/reference"),
        &public_grader(),
        &["--seed", "7"],
    );
    assert_graded_well(&dir_run);
    let r = dir_run.report();
    // The parts of the report a grader relies on are all there.
    assert_eq!(r["schema_version"], 2);
    assert_eq!(r["submission"]["kind"], "directory");
    assert!(r["image"]["id"].as_str().unwrap().starts_with("sha256:"));
    assert!(r["harness"]["engine_version"].is_string());
    assert!(
        r["graders"][0]["latency"]["corrected"]["p99_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(r["graders"][0]["latency"]["requests"], 500);
    // The percentile plot's points: 0% to the maximum at 100%, at most log2(500) + 2 of them.
    let curve = r["graders"][0]["latency"]["corrected_curve"]
        .as_array()
        .unwrap();
    assert!((3..=11).contains(&curve.len()), "{curve:?}");
    assert_eq!(curve.last().unwrap()["percentile"], 100.0);
    assert_eq!(
        curve.last().unwrap()["ms"],
        r["graders"][0]["latency"]["corrected"]["max_ms"]
    );
    // The quality section's curves for its charts.
    assert!(r["graders"][0]["quality"]["roc"].as_array().unwrap().len() > 2);
    assert!(!r["graders"][0]["quality"]["calibration"]
        .as_array()
        .unwrap()
        .is_empty());
    let stages: Vec<&str> = r["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "intake",
            "build",
            "start",
            "ready",
            "checks",
            "probes",
            "quality",
            "invariants",
            "latency",
            "cleanup"
        ],
        "{stages:?}"
    );
    let categories: Vec<&str> = r["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        categories,
        [
            "readiness",
            "correctness",
            "robustness",
            "quality",
            "consistency",
            "latency"
        ]
    );
    assert!(
        r["container"]["log_tail"]
            .as_str()
            .unwrap()
            .contains("Uvicorn"),
        "log tail: {}",
        r["container"]
    );

    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("reference.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(fixture("submissions/reference"))
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let tar_run = grade(&archive, &public_grader(), &["--seed", "7"]);
    assert_graded_well(&tar_run);
    assert_eq!(tar_run.report()["submission"]["kind"], "tar.gz");
    assert_eq!(
        tar_run.report()["submission"]["context_sha256"],
        dir_run.report()["submission"]["context_sha256"],
        "the same files must give the same build context"
    );

    // A candidate self-testing: the service started by hand, outside proctor, graded through
    // its URL with the public grader, gets what its directory got, check by check.
    let started = StartedByHand::run(&fixture("submissions/reference"));
    let url_run = grade_url(&started.url, &public_grader(), &["--seed", "7"]);
    assert_eq!(url_run.code, 0, "{}", url_run.explain());
    let u = url_run.report();
    assert_eq!(u["submission"]["kind"], "url");
    assert!(u["container"].is_null(), "{}", u["container"]);
    let points = |r: &serde_json::Value| -> Vec<(String, f64)> {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["points"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(points(u), points(r), "{}", url_run.explain());
    assert_eq!(u["score"]["points"], r["score"]["points"]);
}

/// The reference built and started with the docker CLI, as a candidate would, on a loopback
/// port; removed (container and image) when dropped.
struct StartedByHand {
    image: String,
    container: String,
    url: String,
}

impl StartedByHand {
    fn run(dir: &Path) -> StartedByHand {
        let image = format!("proctor-test/self-test:{}", std::process::id());
        let label = "io.proctor.test=self-test";
        docker(&[
            "build",
            "--quiet",
            "--label",
            label,
            "-t",
            &image,
            dir.to_str().unwrap(),
        ]);
        let container = docker(&[
            "run",
            "-d",
            "--label",
            label,
            "-p",
            "127.0.0.1::8080",
            &image,
        ]);
        let mut s = StartedByHand {
            image,
            container,
            url: String::new(),
        };
        // "127.0.0.1:49153"
        let port = docker(&["port", &s.container, "8080/tcp"]);
        s.url = format!("http://{}", port.lines().next().unwrap());
        s
    }
}

impl Drop for StartedByHand {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

/// Rewrites every file below `dir`, replacing each (from, to) pair.
fn rename_everywhere(dir: &Path, pairs: &[(&str, &str)]) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            rename_everywhere(&e.path(), pairs);
            continue;
        }
        let Ok(mut text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        for (from, to) in pairs {
            text = text.replace(from, to);
        }
        std::fs::write(e.path(), text).unwrap();
    }
}

#[test]
fn renamed_service_is_graded_by_a_grader_that_says_so() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("submission");
    // The grader and the assignment it reads (schema and public data, by relative paths) keep
    // their layout.
    let graders = tmp.path().join("graders/churn");
    let assignment = tmp.path().join("assignments/churn");
    copy_tree(&fixture("submissions/reference"), &sub);
    copy_tree(&repo().join("graders/churn"), &graders);
    copy_tree(&repo().join("assignments/churn"), &assignment);
    // Routes, a response field and a request feature all get new names, in the service (code,
    // schema and training data) and in the grader alike.
    let pairs = [
        ("/v1/models/churn", "/api/v3/retention"),
        ("churn_probability", "leave_score"),
        ("tenure_months", "months_active"),
    ];
    rename_everywhere(&sub, &pairs);
    rename_everywhere(&graders, &pairs);
    rename_everywhere(&assignment, &pairs);
    let renamed_grader = graders.join("public.toml");
    let text = std::fs::read_to_string(&renamed_grader).unwrap();
    assert!(!text.contains("tenure_months") && text.contains("months_active"));

    let run = grade(&sub, &renamed_grader, &["--seed", "3"]);
    assert_graded_well(&run);

    // The original grader really looks at those names: against the renamed service its
    // readiness probe never passes.
    let run = grade(&sub, &public_grader(), &["--ready-timeout", "8"]);
    assert_eq!(run.code, 3, "{}", run.explain());
    assert_eq!(run.report()["verdict"], "never_ready", "{}", run.explain());
    assert_no_leftovers(&run.run_id());
}
