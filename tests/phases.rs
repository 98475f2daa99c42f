//! Scoring of the grading phases against an in-process fake service (no Docker). Each module
//! drives one phase through its public entry point with a grader loaded from TOML (and small
//! CSV datasets), and checks points, messages and the report's numbers against ground truth the
//! test computes.
//!
//! `[http] request_timeout_ms` is 200 ms in every test grader, so timeouts cost little; the
//! whole binary runs in a few seconds.
//!
//! The modules live in `tests/phases/` (a test binary's root looks for modules next to itself,
//! hence the `#[path]`s).

#[path = "phases/checks.rs"]
mod checks;
#[path = "phases/consistency.rs"]
mod consistency;
#[path = "phases/drift.rs"]
mod drift;
#[path = "phases/fixture.rs"]
mod fixture;
#[path = "phases/invariants.rs"]
mod invariants;
#[path = "phases/monitoring.rs"]
mod monitoring;
#[path = "phases/probes.rs"]
mod probes;
#[path = "phases/quality.rs"]
mod quality;
#[path = "phases/readiness.rs"]
mod readiness;
#[path = "phases/server.rs"]
mod server;

use proctor::check::CheckResult;

/// The result named `name` (fails the test, listing the names, when there is none).
pub fn find<'a>(results: &'a [CheckResult], name: &str) -> &'a CheckResult {
    results.iter().find(|r| r.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
        panic!("no check named {name:?} among {names:?}")
    })
}

/// Asserts that `text` contains every fragment, showing the whole text when it does not.
#[track_caller]
pub fn assert_has(text: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(text.contains(f), "expected {f:?} in: {text}");
    }
}

/// Asserts a check's points and that it passed exactly when it earned all of them.
#[track_caller]
pub fn assert_points(r: &CheckResult, points: f64, max: f64) {
    assert!(
        (r.points - points).abs() < 1e-9 && (r.max_points - max).abs() < 1e-9,
        "{}: expected {points} of {max} points, got {} of {} ({})",
        r.name,
        r.points,
        r.max_points,
        r.message
    );
    assert_eq!(r.passed, points >= max, "{}: passed: {}", r.name, r.message);
}
