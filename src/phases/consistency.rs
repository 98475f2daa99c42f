//! Consistency under load: each sampled instance is predicted alone while the service is idle,
//! then again many times under concurrent load. The answers must match: a service that
//! degrades, caches or mixes up requests under load shows here. A repeated input answered
//! much faster than a fresh one is reported as a hint of caching.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{Category, DeclaredCheck};
use crate::grader::LoadedGrader;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use rand::seq::SliceRandom;

use crate::data::Dataset;
use crate::grader::{ConsistencySpec, PredictionApi, Visibility};
use crate::phases::predict::{rows_of, Predictor};
use crate::report::{CheckResult, ConsistencyReport};
use crate::target::Target;

pub fn check_name(concurrency: usize) -> String {
    format!("same predictions idle and under {concurrency} concurrent requests")
}

pub async fn run(
    target: &Target,
    api: &PredictionApi,
    spec: &ConsistencySpec,
    data: &Dataset,
    seed: u64,
    default_vis: Visibility,
) -> (Vec<CheckResult>, ConsistencyReport) {
    let predictor = Predictor { target, api };
    let mut rng = crate::data::rng(seed, "consistency");
    let mut pool = rows_of(data, true);
    pool.shuffle(&mut rng);
    pool.truncate(spec.instances);
    let instances: Vec<_> = pool.iter().map(|&i| data.instance(&data.rows[i])).collect();

    // Idle: one request at a time, first fresh, then repeated.
    let mut idle = Vec::new();
    let mut fresh_ms = Vec::new();
    for inst in &instances {
        let t = Instant::now();
        let r = predictor
            .request(std::slice::from_ref(inst))
            .await
            .and_then(|mut v| v.pop().unwrap_or(Err("no prediction".into())));
        fresh_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        idle.push(r);
    }
    let mut repeat_ms = Vec::new();
    for inst in &instances {
        let t = Instant::now();
        let _ = predictor.request(std::slice::from_ref(inst)).await;
        repeat_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    // Under load: every instance `rounds` times, shuffled, `concurrency` in flight.
    let mut order: Vec<usize> = (0..instances.len())
        .flat_map(|i| std::iter::repeat_n(i, spec.rounds))
        .collect();
    order.shuffle(&mut rng);
    let loaded: Vec<(usize, Result<f64, String>)> = stream::iter(order.iter().copied())
        .map(|i| {
            let predictor = &predictor;
            let inst = &instances[i];
            async move {
                (
                    i,
                    predictor
                        .request(std::slice::from_ref(inst))
                        .await
                        .and_then(|mut v| v.pop().unwrap_or(Err("no prediction".into()))),
                )
            }
        })
        .buffer_unordered(spec.concurrency.max(1))
        .collect()
        .await;

    let mut mismatches = 0u64;
    let mut failures = 0u64;
    let mut example = None;
    for (i, r) in &loaded {
        match (&idle[*i], r) {
            (Ok(a), Ok(b)) if (a - b).abs() <= spec.tolerance => {}
            (Ok(a), Ok(b)) => {
                mismatches += 1;
                example.get_or_insert(format!(
                    "one instance got {a:.4} idle but {b:.4} under load"
                ));
            }
            (_, Err(e)) => {
                failures += 1;
                example.get_or_insert(format!("a request under load failed: {e}"));
            }
            (Err(_), Ok(_)) => {}
        }
    }
    let idle_failures = idle.iter().filter(|r| r.is_err()).count();
    let fresh_median = median(&mut fresh_ms);
    let repeat_median = median(&mut repeat_ms);
    let caching_suspected = fresh_median > 0.5 && repeat_median < 0.5 * fresh_median;
    let report = ConsistencyReport {
        instances: instances.len() as u64,
        requests_under_load: loaded.len() as u64,
        concurrency: spec.concurrency as u64,
        mismatches,
        failures,
        fresh_median_ms: (fresh_median * 1000.0).round() / 1000.0,
        repeat_median_ms: (repeat_median * 1000.0).round() / 1000.0,
        caching_suspected,
    };
    let passed = mismatches == 0 && failures == 0 && idle_failures == 0 && !instances.is_empty();
    let mut message = if passed {
        format!(
            "{} answers under load matched the idle answers",
            loaded.len()
        )
    } else if idle_failures > 0 {
        format!(
            "{idle_failures} of {} instances got no valid prediction even when idle",
            instances.len()
        )
    } else {
        format!(
            "{mismatches} of {} answers under load differed from the same instances' idle answers and {failures} failed; {}",
            loaded.len(),
            example.unwrap_or_default()
        )
    };
    if caching_suspected {
        message.push_str(&format!(
            "; repeated inputs were answered much faster ({:.2} ms) than fresh ones ({:.2} ms): the service may be caching",
            repeat_median, fresh_median
        ));
    }
    let check = CheckResult {
        grader: String::new(),
        name: check_name(spec.concurrency),
        category: Category::Consistency,
        points: if passed { spec.points.0 } else { 0.0 },
        max_points: spec.points.0,
        passed,
        message,
        visibility: spec.visibility.unwrap_or(default_vis),
    };
    (vec![check], report)
}

fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The same instances get the same predictions idle and under concurrent load.
pub struct Consistency;

impl super::Phase for Consistency {
    fn name(&self) -> &'static str {
        "consistency"
    }

    fn declared(&self, loaded: &LoadedGrader) -> bool {
        loaded.grader.consistency.is_some() && loaded.grader.prediction.is_some()
    }

    fn checks(&self, loaded: &LoadedGrader) -> Vec<DeclaredCheck> {
        let g = &loaded.grader;
        g.consistency
            .iter()
            .map(|c| {
                DeclaredCheck::new(
                    check_name(c.concurrency),
                    Category::Consistency,
                    c.points.0,
                    c.visibility.unwrap_or(g.grader.visibility),
                )
            })
            .collect()
    }

    fn budget(&self, loaded: &LoadedGrader) -> Duration {
        let g = &loaded.grader;
        let Some(c) = &g.consistency else {
            return Duration::ZERO;
        };
        // Twice idle, one at a time; then `rounds` times with `concurrency` in flight.
        // Requests under load overlap `concurrency` at a time.
        let requests = c.instances * 2 + (c.instances * c.rounds).div_ceil(c.concurrency.max(1));
        super::budget_for(Duration::ZERO, requests, requests, g.http.request_timeout())
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let g = &cx.grader.grader;
            let (Some(spec), Some(api)) = (&g.consistency, &g.prediction) else {
                return;
            };
            let data = &cx.grader.datasets[&spec.dataset];
            let (checks, report) = run(
                cx.target,
                api,
                spec,
                data,
                cx.plan.seed,
                g.grader.visibility,
            )
            .await;
            out.checks = checks;
            out.section = Some(super::Section::Consistency(report));
        })
    }
}
