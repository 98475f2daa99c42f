//! Submissions that cannot be graded, and a harness that cannot grade: each gets the right
//! status, verdict and exit code, no grade where the harness failed, and no Docker leftovers.

mod common;

use common::*;

fn tiny() -> std::path::PathBuf {
    fixture("graders/tiny.toml")
}

#[test]
fn failing_build_is_a_submission_error_naming_the_step() {
    require_docker();
    let run = grade(
        &fixture("submissions/broken-build"),
        &repo().join("graders/churn/public.toml"),
        &[],
    );
    assert_eq!(run.code, 3, "{}", run.explain());
    let r = run.report();
    assert_eq!(r["status"], "submission_error");
    assert_eq!(r["verdict"], "build_failed");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("Step 3/") && reason.contains("a_module_that_does_not_exist"),
        "{reason}"
    );
    assert!(
        r["build_log_tail"]
            .as_str()
            .unwrap()
            .contains("ModuleNotFoundError"),
        "{}",
        r["build_log_tail"]
    );
    // Nothing was graded: every declared check is there, with zero points, out of the full total.
    assert_eq!(r["score"]["points"], 0.0);
    let checks = r["checks"].as_array().unwrap();
    let total: f64 = checks
        .iter()
        .map(|c| c["max_points"].as_f64().unwrap())
        .sum();
    assert!(
        (total - r["score"]["max_points"].as_f64().unwrap()).abs() < 1e-6 && total > 0.0,
        "the score is out of every declared check's points: {total} vs {}",
        r["score"]["max_points"]
    );
    assert!(checks.iter().all(|c| c["points"] == 0.0));
    // The phases' checks are declared too (the probes' classes, the latency objectives), not
    // only the scripted ones.
    for name in [
        "rejects invalid input: number as string",
        "p99 latency at 50 req/s",
    ] {
        assert!(
            checks.iter().any(|c| c["name"] == name),
            "{name} is not listed: {}",
            run.explain()
        );
    }
    assert_no_leftovers(&run.run_id());
}

#[test]
fn service_that_never_listens_is_never_ready() {
    require_docker();
    let run = grade(
        &fixture("submissions/never-ready"),
        &tiny(),
        &["--ready-timeout", "4"],
    );
    assert_eq!(run.code, 3, "{}", run.explain());
    assert_eq!(run.report()["verdict"], "never_ready");
    assert!(
        run.report()["reason"]
            .as_str()
            .unwrap()
            .contains("within 4s"),
        "{}",
        run.explain()
    );
    assert_no_leftovers(&run.run_id());
}

#[test]
fn service_that_exits_at_once_says_how() {
    require_docker();
    let views = tempfile::tempdir().unwrap();
    let html = views.path().join("report.html");
    let markdown = views.path().join("report.md");
    let gradescope = views.path().join("results.json");
    let run = grade(
        &fixture("submissions/exits-at-once"),
        &tiny(),
        &[
            "--html",
            html.to_str().unwrap(),
            "--markdown",
            markdown.to_str().unwrap(),
            "--gradescope",
            gradescope.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 3, "{}", run.explain());
    let r = run.report();
    assert_eq!(r["verdict"], "exited");
    assert!(
        r["reason"].as_str().unwrap().contains("exited with code 3"),
        "{}",
        run.explain()
    );
    assert_eq!(r["container"]["exit_code"], 3);
    assert!(
        r["container"]["log_tail"]
            .as_str()
            .unwrap()
            .contains("config file missing"),
        "{}",
        run.explain()
    );
    // The summary shows the cause, from the service's own log, and what did not run per
    // category rather than check by check.
    assert!(
        run.stdout.contains("  | config file missing"),
        "{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("not run, because the run stopped:"),
        "{}",
        run.explain()
    );
    // So does every view, from the same report.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("config file missing"), "{page}");
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.contains("config file missing"), "{md}");
    assert!(md.contains("### Not run, because the run stopped"), "{md}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&gradescope).unwrap()).unwrap();
    let output = results["output"].as_str().unwrap();
    assert!(output.contains("  | config file missing"), "{output}");
    assert_no_leftovers(&run.run_id());
}

#[test]
fn unreachable_engine_is_an_infrastructure_error_not_a_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r.json");
    let output = proctor()
        .args(["grade"])
        .arg(fixture("submissions/static-site"))
        .arg("--grader")
        .arg(tiny())
        .arg("--out")
        .arg(&out)
        .env("DOCKER_HOST", "unix:///nonexistent")
        .output()
        .unwrap();
    let run = finish(output, &out);
    assert_eq!(run.code, 4, "{}", run.explain());
    let r = run.report();
    assert_eq!(r["status"], "infrastructure_error");
    assert_eq!(r["verdict"], "engine_unreachable");
    assert!(
        r["score"].is_null(),
        "an infrastructure error must carry no score: {}",
        r["score"]
    );
    assert!(
        r["reason"].as_str().unwrap().contains("/nonexistent"),
        "{}",
        run.explain()
    );
    assert!(run.stdout.contains("not a grade"), "{}", run.explain());
}

#[test]
fn bad_grader_file_is_a_usage_error_naming_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    let text = std::fs::read_to_string(tiny())
        .unwrap()
        .replace("rate = 20.0", "rate = \"fast\"");
    std::fs::write(&bad, &text).unwrap();
    let run = grade(&fixture("submissions/static-site"), &bad, &[]);
    assert_eq!(run.code, 2, "{}", run.explain());
    let line = text.lines().position(|l| l.starts_with("rate = ")).unwrap() + 1;
    assert!(
        run.stderr.contains(&format!("bad.toml:{line}:")),
        "{}",
        run.explain()
    );
    assert!(run.stderr.contains("latency.rate"), "{}", run.explain());
    assert!(
        run.report.is_none(),
        "no report for a run that never started"
    );
}

#[test]
fn missing_submission_is_a_usage_error() {
    let run = grade(
        std::path::Path::new("/nonexistent/submission"),
        &tiny(),
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(run.stderr.contains("does not exist"), "{}", run.explain());
}
