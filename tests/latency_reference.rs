//! `--latency-reference`: the reference submission is measured under the same load first, and
//! objectives that declare `reference_ms` are widened by how much slower it ran here (never
//! narrowed). A reference that cannot be measured, or a machine that slows it beyond
//! `max_reference_factor`, is an infrastructure error, not the candidate's grade.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn scaled_grader() -> PathBuf {
    fixture("graders/reference-scaled.toml")
}

fn site() -> PathBuf {
    fixture("submissions/static-site")
}

/// One `proctor grade` (no regrade on an invalid measurement: that is what some tests expect).
fn grade_with_reference(grader: &Path, reference: &Path, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let output = proctor()
        .arg("grade")
        .arg(site())
        .arg("--grader")
        .arg(grader)
        .arg("--latency-reference")
        .arg(reference)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .expect("proctor runs");
    finish(output, &out)
}

#[test]
fn curves_widen_by_the_reference_measured_here_and_never_narrow() {
    require_docker();
    let mut run = grade_with_reference(&scaled_grader(), &site(), &[]);
    if run.report()["verdict"] == "latency_measurement_invalid" {
        // The machine was too busy for either load: measure again, as proctor advises.
        run = grade_with_reference(&scaled_grader(), &site(), &[]);
    }
    assert_eq!(run.code, 0, "{}", run.explain());
    let r = run.report();
    let reference = &r["graders"][0]["latency"]["reference"];
    let objectives = reference["objectives"]
        .as_array()
        .expect("scaled objectives");
    assert_eq!(objectives.len(), 2, "{reference}");

    // p50: declared 0.01 ms, far below any real service: widened by measured / declared.
    let p50 = &objectives[0];
    let measured = p50["measured_ms"].as_f64().unwrap();
    let factor = p50["factor"].as_f64().unwrap();
    assert_eq!(measured, reference["corrected"]["p50_ms"].as_f64().unwrap());
    assert!(factor > 1.0, "{p50}");
    assert!((factor - measured / 0.01).abs() < 0.01, "{p50}");
    let check = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == p50["name"])
        .unwrap();
    let message = check["message"].as_str().unwrap();
    let full = format!("full points at <= {}", round2(0.01 * factor));
    assert!(message.contains(&full), "{message} (wanted {full})");
    assert!(message.contains("widened"), "{message}");

    // p99: declared 10 s, far above: the curve stays as written.
    let p99 = &objectives[1];
    assert_eq!(p99["factor"].as_f64().unwrap(), 1.0, "{p99}");

    // Both runs cleaned up after themselves.
    assert_no_leftovers(&run.run_id());
    assert_no_leftovers(reference["run_id"].as_str().unwrap());
}

#[test]
fn a_machine_that_slows_the_reference_too_much_is_not_fit_to_grade() {
    require_docker();
    let dir = tempfile::tempdir().unwrap();
    let grader = dir.path().join("strict.toml");
    let text = std::fs::read_to_string(scaled_grader()).unwrap();
    std::fs::write(
        &grader,
        text.replace(
            "max_reference_factor = 100000.0",
            "max_reference_factor = 4.0",
        ),
    )
    .unwrap();
    let run = grade_with_reference(&grader, &site(), &[]);
    assert_eq!(run.code, 4, "{}", run.explain());
    let r = run.report();
    assert_eq!(r["status"], "infrastructure_error");
    assert_eq!(r["verdict"], "latency_measurement_invalid");
    assert!(r["score"].is_null(), "{}", run.explain());
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("too slow or too busy"), "{reason}");
    assert_no_leftovers(&run.run_id());
}

#[test]
fn a_reference_that_cannot_be_measured_is_not_the_candidates_fault() {
    require_docker();
    let run = grade_with_reference(
        &scaled_grader(),
        &fixture("submissions/never-ready"),
        &["--ready-timeout", "3"],
    );
    assert_eq!(run.code, 4, "{}", run.explain());
    let r = run.report();
    assert_eq!(r["verdict"], "reference_failed", "{}", run.explain());
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("never_ready"), "{reason}");
    assert!(r["score"].is_null());
    assert_no_leftovers(&run.run_id());
}

#[test]
fn a_grader_without_reference_ms_refuses_the_option() {
    let run = grade_with_reference(&fixture("graders/tiny.toml"), &site(), &[]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert!(run.stderr.contains("reference_ms"), "{}", run.explain());
}

fn round2(x: f64) -> String {
    let x = (x * 100.0).round() / 100.0;
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}
