//! Monitoring: the service's Prometheus endpoint must count what proctor sent. It is scraped,
//! a known number of requests and instances is sent, and it is scraped again.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{Category, DeclaredCheck};
use crate::data::Dataset;
use crate::grader::LoadedGrader;
use crate::grader::{MetricsSpec, PredictionApi, Visibility};
use crate::http;
use crate::phases::predict::{rows_of, Predictor};
use crate::report::{CheckResult, MonitoringReport};
use crate::target::Target;

pub fn counter_check_name(counter: &str) -> String {
    format!("{counter} counts every instance predicted")
}

pub fn histogram_check_name(histogram: &str) -> String {
    format!("{histogram} observes every predict request")
}

/// What one scrape said about the two metrics; `Err` when the endpoint could not be read.
struct Reading {
    counter: Option<f64>,
    histogram_count: Option<f64>,
    names: Vec<String>,
}

async fn scrape(target: &Target, spec: &MetricsSpec) -> Result<Reading, String> {
    let resp = http::send(
        &target.client,
        reqwest::Method::GET,
        &target.url(&spec.path.0),
        None,
        target.request_timeout,
        target.max_body,
    )
    .await
    .map_err(|e| format!("GET {}: {e}", spec.path))?;
    if resp.status != 200 {
        return Err(format!("GET {} answered {}", spec.path, resp.status));
    }
    let text = String::from_utf8_lossy(&resp.body).into_owned();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .map_err(|e| format!("{} is not Prometheus text: {e}", spec.path))?;
    let value = |v: &prometheus_parse::Value| match v {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => Some(*x),
        _ => None,
    };
    let counter_names = [
        spec.predictions_counter.clone(),
        format!("{}_total", spec.predictions_counter),
    ];
    let counter: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| counter_names.contains(&s.metric))
        .filter_map(|s| value(&s.value))
        .collect();
    // A histogram's count is its `_count` series, or its +Inf bucket.
    let count_name = format!("{}_count", spec.latency_histogram);
    let mut counts: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == count_name)
        .filter_map(|s| value(&s.value))
        .collect();
    if counts.is_empty() {
        counts = scrape
            .samples
            .iter()
            .filter(|s| s.metric == spec.latency_histogram)
            .filter_map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map(|b| b.count),
                _ => None,
            })
            .collect();
    }
    let mut names: Vec<String> = scrape.samples.iter().map(|s| s.metric.clone()).collect();
    names.sort();
    names.dedup();
    Ok(Reading {
        counter: (!counter.is_empty()).then(|| counter.iter().sum()),
        histogram_count: (!counts.is_empty()).then(|| counts.iter().sum()),
        names,
    })
}

pub async fn run(
    target: &Target,
    api: &PredictionApi,
    spec: &MetricsSpec,
    data: &Dataset,
    default_vis: Visibility,
) -> (Vec<CheckResult>, MonitoringReport) {
    let vis = spec.visibility.unwrap_or(default_vis);
    let predictor = Predictor { target, api };
    let before = scrape(target, spec).await;
    let rows = rows_of(data, true);
    let mut sent_requests = 0u64;
    let mut sent_instances = 0u64;
    let mut first_failure = None;
    for r in 0..spec.requests {
        let instances: Vec<_> = (0..spec.instances_per_request)
            .map(|k| {
                data.instance(&data.rows[rows[(r * spec.instances_per_request + k) % rows.len()]])
            })
            .collect();
        match predictor.request(&instances).await {
            Ok(_) => {
                sent_requests += 1;
                sent_instances += instances.len() as u64;
            }
            Err(e) => {
                first_failure.get_or_insert(e);
            }
        }
    }
    let after = scrape(target, spec).await;
    let mut report = MonitoringReport {
        requests_sent: sent_requests,
        instances_sent: sent_instances,
        ..Default::default()
    };
    let mk = |name: String, max: f64, verdict: Result<String, String>| CheckResult {
        name,
        category: Category::Monitoring,
        points: if verdict.is_ok() { max } else { 0.0 },
        max_points: max,
        passed: verdict.is_ok(),
        message: verdict.unwrap_or_else(|e| e),
        visibility: vis,
    };
    let (before, after) = match (before, after) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(e), _) | (_, Err(e)) => {
            return (
                vec![
                    mk(
                        counter_check_name(&spec.predictions_counter),
                        spec.counter_points.0,
                        Err(e.clone()),
                    ),
                    mk(
                        histogram_check_name(&spec.latency_histogram),
                        spec.histogram_points.0,
                        Err(e),
                    ),
                ],
                report,
            )
        }
    };
    let listed = || {
        after
            .names
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    report.counter_delta = before.counter.zip(after.counter).map(|(b, a)| a - b);
    report.histogram_count_delta = before
        .histogram_count
        .zip(after.histogram_count)
        .map(|(b, a)| a - b);
    let counter = match report.counter_delta {
        None => Err(format!("no metric named {} in {} (found: {})", spec.predictions_counter, spec.path, listed())),
        Some(d) if d == sent_instances as f64 => Ok(format!("rose by {d} for {sent_instances} instances")),
        Some(d) => Err(format!(
            "rose by {d} while proctor sent {sent_instances} instances in {sent_requests} requests{}",
            if d > 0.0 && sent_instances > 0 { format!(" (off by a factor of {:.2})", d / sent_instances as f64) } else { String::new() }
        )),
    };
    let histogram = match report.histogram_count_delta {
        None => Err(format!(
            "no histogram named {} in {} (found: {})",
            spec.latency_histogram,
            spec.path,
            listed()
        )),
        Some(d) if d == sent_requests as f64 => {
            Ok(format!("count rose by {d} for {sent_requests} requests"))
        }
        Some(d) => Err(format!(
            "count rose by {d} while proctor sent {sent_requests} predict requests"
        )),
    };
    // With no prediction accepted there was nothing to count: metrics that did not move prove
    // nothing about counting, so neither check can pass.
    let (counter, histogram) = if sent_requests == 0 {
        let why = format!(
            "all {} predict requests failed (first: {}): the service accepted no prediction request, so nothing could be counted",
            spec.requests,
            crate::http::sanitize(first_failure.as_deref().unwrap_or("none sent"), 160)
        );
        (Err(why.clone()), Err(why))
    } else {
        (counter, histogram)
    };
    (
        vec![
            mk(
                counter_check_name(&spec.predictions_counter),
                spec.counter_points.0,
                counter,
            ),
            mk(
                histogram_check_name(&spec.latency_histogram),
                spec.histogram_points.0,
                histogram,
            ),
        ],
        report,
    )
}

/// The Prometheus counter and latency histogram count exactly what was sent.
pub struct Monitoring;

impl super::Phase for Monitoring {
    fn name(&self) -> &'static str {
        "monitoring"
    }

    fn declared(&self, loaded: &LoadedGrader) -> bool {
        loaded.grader.metrics.is_some() && loaded.grader.prediction.is_some()
    }

    fn checks(&self, loaded: &LoadedGrader) -> Vec<DeclaredCheck> {
        let g = &loaded.grader;
        let Some(m) = &g.metrics else {
            return Vec::new();
        };
        let v = m.visibility.unwrap_or(g.grader.visibility);
        vec![
            DeclaredCheck::new(
                counter_check_name(&m.predictions_counter),
                Category::Monitoring,
                m.counter_points.0,
                v,
            ),
            DeclaredCheck::new(
                histogram_check_name(&m.latency_histogram),
                Category::Monitoring,
                m.histogram_points.0,
                v,
            ),
        ]
    }

    fn budget(&self, loaded: &LoadedGrader) -> Duration {
        let g = &loaded.grader;
        let Some(m) = &g.metrics else {
            return Duration::ZERO;
        };
        // Two scrapes around the requests.
        super::budget_for(
            Duration::ZERO,
            m.requests + 2,
            m.requests * m.instances_per_request,
            g.http.request_timeout(),
        )
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let g = &cx.grader.grader;
            let (Some(spec), Some(api)) = (&g.metrics, &g.prediction) else {
                return;
            };
            let data = &cx.grader.datasets[&spec.dataset];
            let (checks, report) = run(cx.target, api, spec, data, g.grader.visibility).await;
            out.checks = checks;
            out.section = Some(super::Section::Monitoring(report));
        })
    }
}
