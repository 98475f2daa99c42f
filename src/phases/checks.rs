//! Scripted request/response checks (correctness and robustness phases).

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{CheckResult, DeclaredCheck};
use crate::grader::{CheckSpec, LoadedGrader, Visibility};
use crate::http;
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
        grader: String::new(),
        name: spec.name.clone(),
        category,
        points: if verdict.is_ok() { max } else { 0.0 },
        max_points: max,
        passed: verdict.is_ok(),
        message: verdict.err().unwrap_or_default(),
        visibility: spec.visibility.unwrap_or(default_vis),
    }
}

/// The scripted checks of the grader file: correctness, robustness and missing data, in that
/// order, one request each.
pub struct Scripted;

impl super::Phase for Scripted {
    fn name(&self) -> &'static str {
        "checks"
    }

    fn declared(&self, _: &LoadedGrader) -> bool {
        true
    }

    fn checks(&self, loaded: &LoadedGrader) -> Vec<DeclaredCheck> {
        let g = &loaded.grader;
        let vis = g.grader.visibility;
        g.check_lists()
            .into_iter()
            .flat_map(|(cat, specs)| {
                specs.iter().map(move |s| {
                    DeclaredCheck::new(s.name.clone(), cat, s.points.0, s.visibility.unwrap_or(vis))
                })
            })
            .collect()
    }

    fn budget(&self, loaded: &LoadedGrader) -> Duration {
        let g = &loaded.grader;
        let requests = g.check_lists().iter().map(|(_, s)| s.len()).sum();
        super::budget_for(Duration::ZERO, requests, 0, g.http.request_timeout())
    }

    /// The reference runs them too, so that it is as warm as a candidate when its load starts.
    fn in_latency_reference(&self) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let g = &cx.grader.grader;
            for (category, specs) in g.check_lists() {
                for spec in specs {
                    let r = run_check(cx.target, spec, category, g.grader.visibility).await;
                    out.checks.push(r);
                }
            }
        })
    }
}
