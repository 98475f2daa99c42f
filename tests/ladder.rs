//! The calibrated ladder: submissions of known quality, graded with both churn graders (public
//! and hidden, one run each), must land in order and in the bands a hiring team reads:
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

/// Grades `submission` with the public and the hidden grader and returns the combined percent
/// and the band each grader's report names.
fn combined(name: &str, submission: &Path) -> (f64, Vec<String>) {
    require_docker();
    let mut earned = 0.0;
    let mut total = 0.0;
    let mut lines = Vec::new();
    let mut bands = Vec::new();
    for file in ["public.toml", "hidden.toml"] {
        let run = grade(submission, &grader(file), &["--seed", "7", "--quiet"]);
        assert_eq!(run.code, 0, "{name} with {file}: {}", run.explain());
        assert_eq!(
            run.report()["status"],
            Value::from("graded"),
            "{name} with {file}: {}",
            run.explain()
        );
        assert_no_leftovers(&run.run_id());
        let (p, m) = totals(&run);
        earned += p;
        total += m;
        let band = run.report()["band"]
            .as_str()
            .unwrap_or("no band")
            .to_string();
        lines.push(format!(
            "{file} {p:.1}/{m:.0} ({band}){}",
            failed_checks(&run)
        ));
        bands.push(band);
    }
    let percent = 100.0 * earned / total;
    println!(
        "ladder: {name}: {percent:.1}% ({earned:.1}/{total:.0})\n{}",
        lines.join("\n")
    );
    (percent, bands)
}

#[test]
fn reference_is_exceptional() {
    let (pct, bands) = combined("reference", &fixture("submissions/reference"));
    assert!(pct >= 95.0, "reference: {pct:.1}% < 95%");
    assert_eq!(bands, ["exceptional", "exceptional"]);
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
    assert_eq!(bands, ["does not meet", "does not meet"]);
}
