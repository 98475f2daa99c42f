//! Phase budgets on the real engine: a service that answers readiness at once and then drips
//! every body at one byte per second (`tests/fixtures/hostile/run-drip`), graded with the churn
//! assignment's hidden grader. Each phase must stop at the budget it derives from
//! what it declares, say so in the report, and score the checks it did not finish as zeros;
//! nothing the service does may stretch a grade past the sum of its budgets.

mod common;

use std::time::Instant;

use common::*;
use serde_json::Value;

/// Time a run may spend outside its phases: intake, build, start, readiness and cleanup of a
/// small image (the build dominates; its own timeout is far larger).
const OUTSIDE_PHASES_SECS: f64 = 120.0;

fn graded_within_budgets(grader: &str) -> (f64, Value) {
    let started = Instant::now();
    let run = grade(
        &fixture("hostile/run-drip"),
        &repo().join(format!("graders/churn/{grader}.toml")),
        &[],
    );
    let wall = started.elapsed().as_secs_f64();
    let r = run.report().clone();
    assert_eq!(r["status"], "graded", "{}", run.explain());
    let timings = r["timings"].as_array().expect("timings");
    let mut budgets = 0.0;
    for t in timings.iter().filter(|t| t["budget_seconds"].is_number()) {
        let (spent, budget) = (
            t["seconds"].as_f64().unwrap(),
            t["budget_seconds"].as_f64().unwrap(),
        );
        budgets += budget;
        assert!(
            spent <= budget + 2.0,
            "{} took {spent}s, past its budget of {budget}s\n{}",
            t["stage"],
            run.explain()
        );
    }
    // The dripping service costs every phase that sends it requests its budget (or the phase
    // ends sooner on its own deadlines), and the report says which ran out.
    let cut: Vec<&str> = timings
        .iter()
        .filter(|t| t["out_of_budget"] == true)
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert!(cut.contains(&"checks"), "{cut:?}\n{}", run.explain());
    // Only what is answered at once (readiness and the model's metadata on the same route)
    // earns points.
    for c in r["checks"].as_array().unwrap() {
        let cut = c["message"]
            .as_str()
            .unwrap()
            .contains("ran out of its time budget");
        assert!(
            !cut || c["points"] == 0.0,
            "a check cut at its budget earned {c}"
        );
    }
    assert!(run.percent() < 25.0, "{}", run.explain());
    let out_of_budget = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["message"]
                .as_str()
                .unwrap()
                .contains("ran out of its time budget")
        })
        .count();
    assert!(out_of_budget > 0, "{}", run.explain());
    assert!(
        wall <= budgets + OUTSIDE_PHASES_SECS,
        "{grader}: {wall:.0}s in all, past its phases' budgets ({budgets:.0}s) and \
         {OUTSIDE_PHASES_SECS}s for the rest\n{}",
        run.explain()
    );
    assert_no_leftovers(&run.run_id());
    eprintln!("{grader}: {wall:.0}s in all; out of budget: {cut:?}; phase budgets {budgets:.0}s");
    (wall, r)
}

/// The hidden grader alone: it holds every kind of phase the public one has (scripted checks,
/// probes, latency) and the model phases besides, so one run covers them all.
#[test]
fn a_dripping_service_costs_each_phase_its_budget_not_hours() {
    require_docker();
    let (hidden, r) = graded_within_budgets("hidden");
    // The model phases are cut too.
    let cut: Vec<&str> = r["timings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["out_of_budget"] == true)
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert!(cut.contains(&"quality"), "{cut:?}");
    eprintln!("hidden: {hidden:.0}s");
}
