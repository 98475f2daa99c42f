//! Production-readiness grading (hidden churn grader): the reference keeps its points, the same
//! seed regrades the same, and each fixture with one known defect loses points in exactly the
//! category of that defect.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn hidden_grader() -> std::path::PathBuf {
    repo().join("graders/churn/hidden.toml")
}

/// Builds the variant `name` of the reference (its patch applied) in a temp dir.
fn variant(name: &str, dir: &Path) -> std::path::PathBuf {
    let dest = dir.join(name);
    let status = std::process::Command::new("bash")
        .arg(fixture("make-variant.sh"))
        .arg(name)
        .arg(&dest)
        .status()
        .expect("make-variant.sh runs");
    assert!(status.success(), "make-variant.sh {name} failed");
    dest
}

/// Grades the variant and asserts that exactly `losing` categories lost points; returns the run.
fn assert_loses_only(name: &str, losing: &[&str]) -> Run {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let sub = variant(name, tmp.path());
    // The variants break other categories than CPU (see `uncalibrated`).
    let grader = uncalibrated(&hidden_grader());
    let run = grade(&sub, grader.path(), &["--seed", "21", "--quiet"]);
    assert_eq!(run.code, 0, "{name}: {}", run.explain());
    assert_eq!(run.report()["status"], "graded");
    let cats = categories(run.report());
    for (cat, (points, max)) in &cats {
        let lost = points < max;
        let should = losing.contains(&cat.as_str());
        assert_eq!(
            lost,
            should,
            "{name}: category {cat} has {points}/{max}, expected it {} lose points\nchecks: {}",
            if should { "to" } else { "not to" },
            failed_checks(&run)
        );
    }
    for l in losing {
        assert!(
            cats.contains_key(*l),
            "{name}: no category {l} in the report"
        );
    }
    assert_no_leftovers(&run.run_id());
    run
}

/// The checks that lost points.
fn losing_checks(run: &Run) -> Vec<String> {
    run.report()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["points"].as_f64() < c["max_points"].as_f64())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn check<'a>(run: &'a Run, name: &str) -> &'a Value {
    run.report()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?}: {}", failed_checks(run)))
}

fn failed_checks(run: &Run) -> String {
    run.report()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == Value::Bool(false))
        .map(|c| {
            format!(
                "\n  [{}] {}: {} / {}: {}",
                c["category"], c["name"], c["points"], c["max_points"], c["message"]
            )
        })
        .collect()
}

#[test]
fn reference_keeps_its_points_and_the_same_seed_regrades_the_same() {
    require_docker();
    let reference = fixture("submissions/reference");
    let a = grade(&reference, &hidden_grader(), &["--seed", "11", "--quiet"]);
    assert_eq!(a.code, 0, "{}", a.explain());
    assert!(
        a.percent() >= 90.0,
        "the reference should keep >= 90%: {}",
        failed_checks(&a)
    );
    let b = grade(&reference, &hidden_grader(), &["--seed", "11", "--quiet"]);
    let c = grade(&reference, &hidden_grader(), &["--seed", "12", "--quiet"]);
    let (ca, cb) = (categories(a.report()), categories(b.report()));
    for cat in ["quality", "drift"] {
        assert_eq!(
            ca[cat], cb[cat],
            "{cat} points differ between two grades with the same seed"
        );
    }
    // CPU at the standard speed (the hidden grader calibrates): measured beside the yardstick
    // in both grades, and graded the same.
    for run in [&a, &b] {
        let cost = &run.report()["graders"][0]["cost"];
        assert_eq!(cost["paired"]["against"], "yardstick", "{cost}");
        assert!(
            cost["calibrated_cpu_ms_per_1000"].as_f64().unwrap() > 0.0,
            "{cost}"
        );
    }
    assert_eq!(
        ca["cost"], cb["cost"],
        "cost points differ between two grades"
    );
    // The harness's own drift statistics depend only on the rows drawn: equal for equal seeds,
    // different for another seed.
    let stat = |r: &Run| {
        r.report()["graders"][0]["drift"]["scenarios"][0]["runs"][0]["recomputed"][0]["statistic"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(stat(&a), stat(&b));
    assert_ne!(stat(&a), stat(&c), "another seed should draw other rows");
    for r in [&a, &b, &c] {
        assert_no_leftovers(&r.run_id());
    }
}

#[test]
fn no_drift_loses_drift_points_only() {
    assert_loses_only("no-drift", &["drift"]);
}

#[test]
fn noisy_drift_loses_drift_points_only() {
    assert_loses_only("noisy-drift", &["drift"]);
}

#[test]
fn wrong_feature_loses_drift_points_only() {
    assert_loses_only("wrong-feature", &["drift"]);
}

/// NaN for a null: the missing-data checks, and wherever else the hidden grader sends a null on
/// purpose (its five-instance correctness batch holds one; the probes' "every nullable feature
/// null" case): NaN is not JSON, so those answers are not predictions.
#[test]
fn nan_on_null_loses_points_where_nulls_are_sent_only() {
    assert_loses_only(
        "nan-on-null",
        &["missing_data", "correctness", "robustness"],
    );
}

/// A 500 on nulls: as NaN, plus drift monitoring (the drift traffic is real traffic, about a
/// fifth of its rows have a null, so nearly every batch fails and the service's window goes
/// stale) and latency (some hidden load bodies hold a null). Quality and the invariants are
/// scored on complete rows precisely so that they do not also lose points.
#[test]
fn crash_on_null_loses_points_where_nulls_are_sent_only() {
    assert_loses_only(
        "crash-on-null",
        &[
            "missing_data",
            "correctness",
            "robustness",
            "drift",
            "latency",
        ],
    );
}

/// No signal: quality, and every check the signal prerequisite gates (predictions, valid edge
/// cases, missing values, invariants, latency, cost, lifecycle, its own tests), each saying why.
#[test]
fn random_model_loses_quality_and_the_points_that_need_signal() {
    let run = assert_loses_only(
        "random-model",
        &[
            "quality",
            "correctness",
            "robustness",
            "missing_data",
            "consistency",
            "latency",
            "cost",
            "tests",
            "lifecycle",
        ],
    );
    for name in losing_checks(&run) {
        let c = check(&run, &name);
        let gated = c["message"]
            .as_str()
            .unwrap()
            .contains("needs \"predictions carry signal\"");
        assert!(
            c["category"] == "quality" || gated,
            "{name} lost points for another reason than the missing signal: {}",
            c["message"]
        );
    }
}

#[test]
fn no_metrics_loses_monitoring_points_only() {
    assert_loses_only("no-metrics", &["monitoring"]);
}

#[test]
fn lying_metrics_loses_monitoring_points_only() {
    assert_loses_only("lying-metrics", &["monitoring"]);
}

#[test]
fn cache_under_load_loses_consistency_points_only() {
    assert_loses_only("cache-under-load", &["consistency"]);
}

/// `"5"` accepted for an integer feature: exactly the probe class "number as string".
#[test]
fn lax_integers_loses_the_number_as_string_probes_only() {
    let run = assert_loses_only("lax-integers", &["robustness"]);
    assert_eq!(
        losing_checks(&run),
        ["rejects invalid input: number as string"],
        "{}",
        failed_checks(&run)
    );
}

/// Rejected requests observed by the latency histogram: the histogram check under mixed
/// traffic, nothing else (the counter and the drift window count accepted traffic only).
#[test]
fn counts_rejected_loses_the_histogram_check_only() {
    let run = assert_loses_only("counts-rejected", &["monitoring"]);
    assert_eq!(
        losing_checks(&run),
        ["churn_request_duration_seconds observes each successful predict request, and only those"],
        "{}",
        failed_checks(&run)
    );
}

/// p-values off by a factor of 10: the drift-statistics check loses, detection keeps its points
/// (the decisions are made on the true p-values).
#[test]
fn drift_pvalues_off_loses_statistics_points_and_keeps_detection() {
    let run = assert_loses_only("drift-pvalues-off", &["drift"]);
    assert_eq!(
        losing_checks(&run),
        ["drift statistics agree with proctor's recomputation"],
        "{}",
        failed_checks(&run)
    );
    let stats = check(&run, "drift statistics agree with proctor's recomputation");
    assert_eq!(stats["points"].as_f64(), Some(0.0), "{stats}");
}
