//! Scripted request/response checks (correctness and robustness phases).

use crate::grader::{CheckSpec, Visibility};
use crate::http;
use crate::report::CheckResult;
use crate::target::Target;

pub async fn run_check(
    target: &Target,
    spec: &CheckSpec,
    category: crate::check::Category,
    default_vis: Visibility,
) -> CheckResult {
    let content_type = spec.content_type.as_deref().unwrap_or("application/json");
    let body = spec.body.as_deref().map(|b| (content_type, b));
    let outcome = http::send(
        &target.client,
        spec.method().as_reqwest(),
        &target.url(&spec.path.0),
        body,
        target.request_timeout,
        target.max_body,
    )
    .await;
    let verdict = match outcome {
        Ok(resp) => spec.expect().check(&resp),
        Err(e) => Err(format!("{} {}: {e}", spec.method().as_reqwest(), spec.path)),
    };
    let max = spec.points.0;
    CheckResult {
        name: spec.name.clone(),
        category,
        points: if verdict.is_ok() { max } else { 0.0 },
        max_points: max,
        passed: verdict.is_ok(),
        message: verdict.err().unwrap_or_default(),
        visibility: spec.visibility.unwrap_or(default_vis),
    }
}
