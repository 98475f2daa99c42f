//! The latency phase: a fixed-rate load, then points from the grader's objectives.

use std::time::Duration;

use crate::events::{Event, Events};
use crate::grader::{LatencySpec, Method, Visibility};
use crate::load::{self, Plan, RequestSpec};
use crate::report::{CheckResult, LatencyReport};
use crate::score::linear_points;
use crate::target::Target;

pub async fn run(
    target: &Target,
    spec: &LatencySpec,
    seed: u64,
    default_vis: Visibility,
    events: &Events,
) -> (Vec<CheckResult>, LatencyReport) {
    let method = spec
        .method
        .unwrap_or(if spec.bodies.is_empty() {
            Method::Get
        } else {
            Method::Post
        })
        .as_reqwest();
    let request = RequestSpec {
        method: method.clone(),
        url: target.url(&spec.path.0),
        content_type: spec
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".into()),
        bodies: spec.bodies.clone(),
        ok_status: spec.status,
        timeout: target.request_timeout,
        max_body: target.max_body,
    };
    let plan = Plan {
        rate: spec.rate,
        warmup: Duration::from_secs_f64(spec.warmup_secs),
        duration: Duration::from_secs_f64(spec.duration_secs),
        concurrency: spec.concurrency,
        seed,
    };
    let outcome = load::run(&target.client, &request, &plan, |done, total| {
        events.event(&Event::LoadProgress { done, total })
    })
    .await;

    let vis = spec.visibility.unwrap_or(default_vis);
    let mut results = Vec::new();
    for o in &spec.objective {
        let name = o
            .name
            .clone()
            .unwrap_or_else(|| objective_name(o.percentile, spec.rate));
        let (points, message) = if outcome.corrected.is_empty() {
            (0.0, "no successful response to measure".to_string())
        } else {
            let value = load::percentile_ms(&outcome.corrected, o.percentile);
            let points = linear_points(value, o.full_points_ms, o.zero_points_ms, o.points.0);
            (
                points,
                format!(
                    "p{} = {:.2} ms (full points at <= {} ms, none at >= {} ms)",
                    trim(o.percentile),
                    value,
                    trim(o.full_points_ms),
                    trim(o.zero_points_ms)
                ),
            )
        };
        results.push(CheckResult {
            name,
            category: "latency".into(),
            points,
            max_points: o.points.0,
            passed: points >= o.points.0,
            message,
            visibility: vis,
        });
    }
    if let Some(e) = &spec.errors {
        let failed = outcome.requests - outcome.ok;
        let rate = if outcome.requests == 0 {
            1.0
        } else {
            failed as f64 / outcome.requests as f64
        };
        let passed = outcome.requests > 0 && rate <= e.max_error_rate;
        let detail: Vec<String> = outcome
            .errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        results.push(CheckResult {
            name: errors_name(spec.rate),
            category: "latency".into(),
            points: if passed { e.points.0 } else { 0.0 },
            max_points: e.points.0,
            passed,
            message: if detail.is_empty() {
                format!("{} of {} requests succeeded", outcome.ok, outcome.requests)
            } else {
                format!(
                    "{} of {} requests failed ({:.2}%, allowed {:.2}%): {}",
                    failed,
                    outcome.requests,
                    rate * 100.0,
                    e.max_error_rate * 100.0,
                    detail.join(", ")
                )
            },
            visibility: vis,
        });
    }
    let report = LatencyReport {
        method: method.to_string(),
        path: spec.path.0.clone(),
        target_rate: spec.rate,
        achieved_rate: (outcome.achieved_rate * 10.0).round() / 10.0,
        duration_secs: spec.duration_secs,
        warmup_secs: spec.warmup_secs,
        concurrency: spec.concurrency,
        requests: outcome.requests,
        ok: outcome.ok,
        errors: outcome.errors.clone(),
        corrected: load::percentiles(&outcome.corrected),
        uncorrected: load::percentiles(&outcome.uncorrected),
        send_lateness: load::percentiles(&outcome.lateness),
    };
    (results, report)
}

/// The name of a latency objective's check when the grader gives none.
pub fn objective_name(percentile: f64, rate: f64) -> String {
    format!("p{} latency at {} req/s", trim(percentile), trim(rate))
}

/// The name of the error-rate check.
pub fn errors_name(rate: f64) -> String {
    format!("errors under load at {} req/s", trim(rate))
}

/// `99` rather than `99.0` in names and messages.
fn trim(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}
