//! `[cost] cpu_vs_reference` with `--latency-reference`: the reference is built in the
//! candidate's sandbox, runs beside the service, and the two take turns under the same load;
//! the CPU check grades the ratio of their CPU per prediction. `[cost] calibrate`: proctor's
//! yardstick runs beside the service instead, and the absolute curve grades the CPU at the
//! standard speed. Two small busybox services made here: a CGI endpoint that answers at once
//! (the reference) and one that computes for a while before it answers (several times the CPU
//! a request).

mod common;

use std::path::{Path, PathBuf};

use common::*;

const GRADER: &str = r#"
[grader]
name = "cost-beside"
assignment = "cgi"

[submission]
port = 8080
allowed_base_images = ["proctor/busybox:test"]
build_timeout_secs = 120
ready_timeout_secs = 20

[sandbox]
memory_mb = 64
cpus = 1.0
cpuset = "auto"
pids_limit = 32
tmpfs_mb = 8

[readiness]
path = "/index.html"
status = 200
points = 1
poll_interval_ms = 100

[latency]
path = "/cgi-bin/work"
method = "GET"
rate = 40.0
duration_secs = 3.0
warmup_secs = 0.5
concurrency = 2

[[latency.objective]]
percentile = 50.0
full_points_ms = 1000.0
zero_points_ms = 2000.0
points = 1

[cost]
cpu_vs_reference = { full = 1.5, zero = 3.0, points = 2 }
pairs = 6
window_secs = 1.0
"#;

/// A busybox httpd whose `/cgi-bin/work` counts to `loops` in the shell before it answers.
fn cgi_service(dir: &Path, loops: u32) {
    let cgi = dir.join("www/cgi-bin");
    std::fs::create_dir_all(&cgi).unwrap();
    std::fs::write(dir.join("www/index.html"), "ok\n").unwrap();
    let script = cgi.join("work");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho 'Content-Type: application/json'\necho\ni=0\n\
             while [ $i -lt {loops} ]; do i=$((i+1)); done\necho \"{{\\\"done\\\": $i}}\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM proctor/busybox:test\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
}

/// In `dir`: the light service (answers at once), the heavy one (counts to 3000 first) and
/// `grader` written to a file.
fn light_heavy_and_grader(dir: &Path, grader: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (light, heavy) = (dir.join("light"), dir.join("heavy"));
    cgi_service(&light, 0);
    cgi_service(&heavy, 3000);
    let file = dir.join("grader.toml");
    std::fs::write(&file, grader).unwrap();
    (light, heavy, file)
}

fn cost(run: &Run) -> serde_json::Value {
    run.report()["graders"][0]["cost"].clone()
}

fn cpu_check(run: &Run) -> serde_json::Value {
    run.report()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "CPU per 1000 predictions")
        .cloned()
        .unwrap_or_else(|| panic!("no CPU check: {}", run.explain()))
}

#[test]
fn the_cpu_check_grades_the_ratio_to_the_reference_running_beside_it() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let (light, heavy, grader) = light_heavy_and_grader(tmp.path(), GRADER);
    let reference = ["--latency-reference", light.to_str().unwrap()];

    // The reference against itself: the same CPU per request, whatever the machine's speed.
    let same = grade(&light, &grader, &reference);
    assert_eq!(same.code, 0, "{}", same.explain());
    let c = cost(&same);
    let ratio = c["cpu_vs_reference"]
        .as_f64()
        .unwrap_or_else(|| panic!("{c}"));
    assert!((0.75..=1.33).contains(&ratio), "{c}");
    assert_eq!(c["paired"]["pairs"], 6, "{c}");
    assert_eq!(c["paired"]["kept"], 4, "{c}");
    assert!(
        c["reference_cpu_ms_per_1000"].as_f64().unwrap() > 0.0,
        "{c}"
    );
    let check = cpu_check(&same);
    assert_eq!(check["points"], 2.0, "{check}");
    assert_no_leftovers(&same.run_id());

    // Several times the reference's CPU a request: the check says so and loses its points.
    let costly = grade(&heavy, &grader, &reference);
    assert_eq!(costly.code, 0, "{}", costly.explain());
    let c = cost(&costly);
    let ratio = c["cpu_vs_reference"]
        .as_f64()
        .unwrap_or_else(|| panic!("{c}"));
    assert!(ratio > 3.0, "{c}");
    let check = cpu_check(&costly);
    assert_eq!(check["points"], 0.0, "{check}");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("× the reference's CPU per prediction"),
        "{check}"
    );
    assert_no_leftovers(&costly.run_id());

    // Without a reference, a grader that declares only the ratio has nothing to grade it by:
    // the check is not applicable, neither earned nor lost.
    let alone = grade(&heavy, &grader, &[]);
    assert_eq!(alone.code, 0, "{}", alone.explain());
    let check = cpu_check(&alone);
    assert_eq!(check["max_points"], 0.0, "{check}");
    assert!(cost(&alone)["paired"].is_null(), "{}", cost(&alone));
}

#[test]
fn calibrated_the_cpu_check_grades_the_cpu_beside_the_yardstick() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let (light, heavy, grader) = light_heavy_and_grader(
        tmp.path(),
        &GRADER.replace(
            "cpu_vs_reference = { full = 1.5, zero = 3.0, points = 2 }",
            "cpu_ms_per_1000 = { full = 1.0, zero = 100000.0, points = 2 }\ncalibrate = true",
        ),
    );
    let calibrated = |run: &Run| {
        assert_eq!(run.code, 0, "{}", run.explain());
        let c = cost(run);
        assert_eq!(c["paired"]["against"], "yardstick", "{c}");
        assert_eq!(c["paired"]["pairs"], 6, "{c}");
        assert!(c["cpu_vs_reference"].is_null(), "{c}");
        // The yardstick's request costs about a millisecond on a common machine.
        let speed = c["yardstick_ms_per_request"].as_f64().unwrap();
        assert!((0.1..=20.0).contains(&speed), "{c}");
        let check = cpu_check(run);
        assert!(
            check["message"]
                .as_str()
                .unwrap()
                .contains("at the standard speed"),
            "{check}"
        );
        assert_no_leftovers(&run.run_id());
        let value = c["calibrated_cpu_ms_per_1000"].as_f64().unwrap();
        assert!(value > 0.0, "{c}");
        (value, check["points"].as_f64().unwrap())
    };
    let (light_ms, light_points) = calibrated(&grade(&light, &grader, &[]));
    let (heavy_ms, heavy_points) = calibrated(&grade(&heavy, &grader, &[]));
    // Beside the reference the heavy service costs more than three times the light one. At the
    // standard speed the two are graded minutes apart, each against its own yardstick: the
    // order and a clear gap must hold.
    assert!(heavy_ms > 2.0 * light_ms, "{heavy_ms} vs {light_ms}");
    assert!(
        heavy_points < light_points,
        "{heavy_points} vs {light_points}"
    );
}

/// A reference that does not build beside the service is the machine's (or the grader's)
/// problem: an infrastructure error, never the candidate's zero.
#[test]
fn a_reference_that_cannot_be_built_beside_is_an_infrastructure_error() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let (light, broken) = (tmp.path().join("light"), tmp.path().join("broken"));
    cgi_service(&light, 0);
    cgi_service(&broken, 0);
    std::fs::write(
        broken.join("Dockerfile"),
        "FROM proctor/busybox:test\nRUN exit 3\n",
    )
    .unwrap();
    let grader = tmp.path().join("grader.toml");
    std::fs::write(&grader, GRADER).unwrap();
    let run = grade(
        &light,
        &grader,
        &["--latency-reference", broken.to_str().unwrap()],
    );
    let r = run.report();
    assert_eq!(r["verdict"], "reference_failed", "{}", run.explain());
    assert_eq!(r["status"], "infrastructure_error", "{}", run.explain());
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("could not be built beside the submission"),
        "{}",
        run.explain()
    );
    assert_no_leftovers(&run.run_id());
}
