//! Reports for the renderers' unit tests: the fixture report of `tests/fixtures/reports/`
//! (graded, with two hidden checks, a latency section and hidden probes), and a check builder.

use super::{Category, CheckResult, Report, Visibility};

pub(crate) fn report() -> Report {
    serde_json::from_str(include_str!("../../tests/fixtures/reports/graded.json"))
        .expect("the fixture report parses")
}

pub(crate) fn infrastructure_error() -> Report {
    serde_json::from_str(include_str!(
        "../../tests/fixtures/reports/infrastructure-error.json"
    ))
    .expect("the fixture report parses")
}

pub(crate) fn check(
    name: &str,
    category: Category,
    visibility: Visibility,
    passed: bool,
    message: &str,
) -> CheckResult {
    CheckResult {
        // The fixture reports' one grader.
        grader: "churn-public".into(),
        name: name.into(),
        category,
        points: if passed { 2.0 } else { 0.0 },
        max_points: 2.0,
        passed,
        message: message.into(),
        visibility,
    }
}
