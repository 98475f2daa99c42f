//! The calibrated ladder: submissions of known quality, graded with both churn graders (public
//! and hidden, in one run: one build, one report), must land in order and in the bands a hiring
//! team reads:
//!
//! | submission | what it is | combined grade |
//! |---|---|---|
//! | `reference` | the careful submission | >= 95% |
//! | `happy-path` | a quick one, written from the brief alone: lax pydantic validation, mean imputation, a mean-threshold drift check, a histogram that counts rejected requests | <= 80% |
//! | `random-model` | the reference with a model that carries no signal | <= 50% |
//! | `constant` | 0.5 for everyone, drift never, metrics frozen | <= 25% |
//!
//! The bands are disjoint, so they also fix the order and the gaps. Each submission is its own
//! test (they grade in parallel; their latency phases never overlap, see `load::exclusive`),
//! and each prints its line, so `cargo test --test ladder -- --nocapture` shows the ladder.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn grader(name: &str) -> PathBuf {
    repo().join("graders/churn").join(name)
}

/// (points, max points) of a report.
fn totals(run: &Run) -> (f64, f64) {
    let score = &run.report()["score"];
    (
        score["points"].as_f64().expect("score.points"),
        score["max_points"].as_f64().expect("score.max_points"),
    )
}

fn failed_checks(run: &Run) -> String {
    run.report()["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .filter(|c| c["points"].as_f64() < c["max_points"].as_f64())
                .map(|c| {
                    format!(
                        "\n  [{}] {}: {} / {}: {}",
                        c["category"].as_str().unwrap_or("?"),
                        c["name"].as_str().unwrap_or("?"),
                        c["points"],
                        c["max_points"],
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Grades `submission` with the public and the hidden grader in one run (one build, one
/// report) and returns the combined percent and the bands: the combined one, then each
/// grader's for its own points.
fn combined(name: &str, submission: &Path) -> (f64, Vec<String>) {
    require_docker();
    let hidden = grader("hidden.toml");
    let run = grade(
        submission,
        &grader("public.toml"),
        &[
            "--grader",
            hidden.to_str().unwrap(),
            "--seed",
            "7",
            "--quiet",
        ],
    );
    assert_eq!(run.code, 0, "{name}: {}", run.explain());
    let r = run.report();
    assert_eq!(
        r["status"],
        Value::from("graded"),
        "{name}: {}",
        run.explain()
    );
    assert_no_leftovers(&run.run_id());
    assert_eq!(stage_count(r, "build"), 1, "one build for both graders");
    assert_eq!(stage_count(r, "ready"), 1, "one readiness wait");
    let (earned, total) = totals(&run);
    let band = |v: &Value| v["band"].as_str().unwrap_or("no band").to_string();
    let mut bands = vec![band(r)];
    let mut lines = Vec::new();
    for g in r["graders"].as_array().unwrap() {
        let (p, m) = (&g["score"]["points"], &g["score"]["max_points"]);
        lines.push(format!("{} {p}/{m} ({})", g["grader"]["name"], band(g)));
        bands.push(band(g));
    }
    // The total is the sum of the graders' own points.
    let sum: f64 = r["graders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["score"]["max_points"].as_f64().unwrap())
        .sum();
    assert!((sum - total).abs() < 1e-6, "{sum} != {total}");
    let percent = 100.0 * earned / total;
    println!(
        "ladder: {name}: {percent:.1}% ({earned:.1}/{total:.0}): {}{}",
        lines.join(", "),
        failed_checks(&run)
    );
    (percent, bands)
}

#[test]
fn reference_is_exceptional() {
    let (pct, bands) = combined("reference", &fixture("submissions/reference"));
    assert!(pct >= 95.0, "reference: {pct:.1}% < 95%");
    assert_eq!(bands, ["exceptional", "exceptional", "exceptional"]);
}

#[test]
fn happy_path_is_at_most_80_percent() {
    let (pct, _) = combined("happy-path", &fixture("submissions/happy-path"));
    assert!(pct <= 80.0, "happy-path: {pct:.1}% > 80%");
    // It is a working service with a real model: acceptable, not at the bottom.
    assert!(pct >= 55.0, "happy-path: {pct:.1}% < 55%");
}

#[test]
fn random_model_is_at_most_50_percent() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("random-model");
    let status = std::process::Command::new("bash")
        .arg(fixture("make-variant.sh"))
        .arg("random-model")
        .arg(&dest)
        .status()
        .expect("make-variant.sh runs");
    assert!(status.success(), "make-variant.sh random-model failed");
    let (pct, _) = combined("random-model", &dest);
    assert!(pct <= 50.0, "random-model: {pct:.1}% > 50%");
    assert!(pct > 25.0, "random-model: {pct:.1}% <= 25%");
}

#[test]
fn constant_is_at_most_25_percent() {
    let (pct, bands) = combined("constant", &fixture("submissions/constant"));
    assert!(pct <= 25.0, "constant: {pct:.1}% > 25%");
    assert_eq!(bands, ["does not meet", "does not meet", "does not meet"]);
}
