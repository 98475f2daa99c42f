//! Production-readiness grading (hidden churn grader): the reference keeps its points, the same
//! seed regrades the same, and each fixture with one known defect loses points in exactly the
//! category of that defect.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use serde_json::Value;

fn hidden_grader() -> std::path::PathBuf {
    repo().join("graders/churn/hidden.toml")
}

/// Category name -> (points, max points).
fn categories(run: &Run) -> BTreeMap<String, (f64, f64)> {
    run.report()["categories"]
        .as_array()
        .unwrap_or_else(|| panic!("no categories: {}", run.explain()))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                (
                    c["points"].as_f64().unwrap(),
                    c["max_points"].as_f64().unwrap(),
                ),
            )
        })
        .collect()
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

/// Grades the variant and asserts that exactly `losing` categories lost points.
fn assert_loses_only(name: &str, losing: &[&str]) {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let sub = variant(name, tmp.path());
    let run = grade(&sub, &hidden_grader(), &["--seed", "21", "--quiet"]);
    assert_eq!(run.code, 0, "{name}: {}", run.explain());
    assert_eq!(run.report()["status"], "graded");
    let cats = categories(&run);
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
    let (ca, cb) = (categories(&a), categories(&b));
    for cat in ["quality", "drift"] {
        assert_eq!(
            ca[cat], cb[cat],
            "{cat} points differ between two grades with the same seed"
        );
    }
    // The harness's own drift statistics depend only on the rows drawn: equal for equal seeds,
    // different for another seed.
    let stat = |r: &Run| {
        r.report()["drift"]["scenarios"][0]["recomputed"][0]["statistic"]
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

#[test]
fn nan_on_null_loses_missing_data_points_only() {
    assert_loses_only("nan-on-null", &["missing_data"]);
}

/// A 500 on nulls also breaks drift monitoring: the drift traffic is real traffic, about a fifth
/// of its rows have a null, so nearly every batch fails and the service's window goes stale.
/// (Quality is scored on complete rows precisely so that it does not also lose points.)
#[test]
fn crash_on_null_loses_missing_data_and_drift_points_only() {
    assert_loses_only("crash-on-null", &["missing_data", "drift"]);
}

#[test]
fn random_model_loses_quality_points_only() {
    assert_loses_only("random-model", &["quality"]);
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
