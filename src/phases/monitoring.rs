//! Monitoring: the service's Prometheus endpoint must count what proctor sent. It is scraped,
//! a known number of requests and instances is sent, and it is scraped again.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{Category, DeclaredCheck};
use crate::data::Dataset;
use crate::grader::LoadedGrader;
use crate::grader::{MetricsSpec, PredictionApi, UrlPath, Visibility};
use crate::http;
use crate::phases::predict::{rows_of, Predictor};
use crate::report::{CheckResult, MonitoringReport};
use crate::target::Target;
use serde_json::{Map, Value};

pub fn counter_check_name(counter: &str) -> String {
    format!("{counter} counts each instance of a successful predict request, and only those")
}

pub fn histogram_check_name(histogram: &str) -> String {
    format!("{histogram} observes each successful predict request, and only those")
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

pub fn window_check_name(path: &str) -> String {
    format!("only accepted instances enter the drift window ({path})")
}

/// The kinds of request the contract says must be rejected, sent in turn between the accepted
/// ones. Each is built from dataset rows and the schema alone, for any assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejected {
    /// A valid instance and one with its first feature's key removed (the whole batch must go).
    MissingFeature,
    /// The first numeric feature sent as a string, `"5"` for `5`.
    NumberAsString,
    /// `instances` is an empty array.
    EmptyBatch,
    /// The body is cut before its closing bracket: not JSON.
    InvalidJson,
}

const REJECTED_KINDS: [Rejected; 4] = [
    Rejected::MissingFeature,
    Rejected::NumberAsString,
    Rejected::EmptyBatch,
    Rejected::InvalidJson,
];

impl Rejected {
    fn name(self) -> &'static str {
        match self {
            Rejected::MissingFeature => "a missing feature",
            Rejected::NumberAsString => "a number sent as a string",
            Rejected::EmptyBatch => "an empty batch",
            Rejected::InvalidJson => "invalid JSON",
        }
    }

    /// The body, and how many instances a service that wrongly accepted it could count; None
    /// when the schema has nothing to break this way (no numeric feature).
    fn body(
        self,
        api: &PredictionApi,
        data: &Dataset,
        a: &Map<String, Value>,
        b: &Map<String, Value>,
    ) -> Option<(String, u64)> {
        let (body, count) = match self {
            Rejected::MissingFeature => {
                let mut broken = b.clone();
                broken.remove(&data.schema.features[0].name);
                (api.body(&[a.clone(), broken]), 2)
            }
            Rejected::NumberAsString => {
                let f = data.schema.features.iter().find(|f| f.kind.is_numeric())?;
                let mut broken = a.clone();
                let v = broken.get(&f.name).cloned().unwrap_or(Value::Null);
                broken.insert(f.name.clone(), Value::String(v.to_string()));
                (api.body(&[broken]), 1)
            }
            Rejected::EmptyBatch => (api.body(&[]), 0),
            // The body cut before its last character: not JSON, in any encoding.
            Rejected::InvalidJson => {
                let mut text = api.body(std::slice::from_ref(a));
                text.pop();
                (text, 1)
            }
        };
        Some((body, count))
    }
}

/// Reads the drift window's count of instances seen.
async fn instances_seen(target: &Target, path: &UrlPath, pointer: &str) -> Result<f64, String> {
    let resp = http::send(
        &target.client,
        reqwest::Method::GET,
        &target.url(&path.0),
        None,
        target.request_timeout,
        target.max_body,
    )
    .await
    .map_err(|e| format!("GET {path}: {e}"))?;
    if resp.status != 200 {
        return Err(format!("GET {path} answered {}", resp.status));
    }
    let body: Value =
        serde_json::from_slice(&resp.body).map_err(|e| format!("GET {path} is not JSON ({e})"))?;
    body.pointer(pointer)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("no number at `{pointer}` in GET {path}"))
}

/// Whether a count rose as expected: by exactly `accepted`, or, when some requests meant as
/// invalid were answered 2xx, by anything up to `accepted + wrongly_accepted` (those were
/// served, so counting them follows the contract's "successful requests"; not counting them
/// follows its "rejected requests count nowhere"; validation itself is scored elsewhere).
fn judge_count(
    delta: f64,
    accepted: u64,
    wrongly_accepted: u64,
    unit: &str,
    rejected: &RejectedTally,
) -> Result<String, String> {
    let (lo, hi) = (accepted as f64, (accepted + wrongly_accepted) as f64);
    let note = rejected.note();
    if delta >= lo && delta <= hi {
        return Ok(format!(
            "rose by {delta} for {accepted} accepted {unit}{note}"
        ));
    }
    let expected = if wrongly_accepted == 0 {
        format!("{accepted}")
    } else {
        format!("{lo} to {hi}")
    };
    let which = if delta > hi && rejected.sent > 0 {
        format!(
            "; it counted more than was accepted: neither failed requests nor the {} requests sent to be rejected ({}) may count",
            rejected.sent,
            rejected.kinds.join(", ")
        )
    } else if delta > hi {
        "; it counted more than was accepted".to_string()
    } else {
        "; it missed accepted traffic".to_string()
    };
    Err(format!(
        "rose by {delta}, expected {expected} ({accepted} accepted {unit}){which}{}{note}",
        if delta > 0.0 && accepted > 0 {
            format!(" (off by a factor of {:.2})", delta / accepted as f64)
        } else {
            String::new()
        }
    ))
}

/// The rejected traffic sent, for the messages.
#[derive(Default)]
struct RejectedTally {
    sent: u64,
    kinds: Vec<&'static str>,
    answered_2xx: Vec<&'static str>,
}

impl RejectedTally {
    fn note(&self) -> String {
        if self.answered_2xx.is_empty() {
            String::new()
        } else {
            format!(
                "; {} requests the contract says must be rejected were answered 2xx ({}), so this count could not be judged cleanly: counting them or not is both allowed here, and the validation is scored elsewhere",
                self.answered_2xx.len(),
                self.answered_2xx.join(", ")
            )
        }
    }
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
    let window = match (&spec.drift_path, &spec.instances_seen, spec.window_points) {
        (Some(p), Some(ptr), Some(points)) => Some((p, ptr, points)),
        _ => None,
    };
    let before = scrape(target, spec).await;
    let seen_before = match window {
        Some((p, ptr, _)) => Some(instances_seen(target, p, ptr).await),
        None => None,
    };
    let rows = rows_of(data, true);
    let sizes = spec.batch_sizes();
    let mut next_row = 0usize;
    let mut take = |n: usize| -> Vec<Map<String, Value>> {
        (0..n)
            .map(|_| {
                next_row += 1;
                data.instance(&data.rows[rows[(next_row - 1) % rows.len()]])
            })
            .collect()
    };
    let mut sent_requests = 0u64;
    let mut sent_instances = 0u64;
    let mut wrong_requests = 0u64;
    let mut wrong_instances = 0u64;
    let mut rejected = RejectedTally::default();
    let mut first_failure = None;
    for r in 0..spec.requests.max(spec.rejected_requests) {
        if r < spec.requests {
            let instances = take(sizes[r % sizes.len()]);
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
        if r < spec.rejected_requests {
            let kind = REJECTED_KINDS[r % REJECTED_KINDS.len()];
            let pair = take(2);
            let Some((body, count)) = kind.body(api, data, &pair[0], &pair[1]) else {
                continue;
            };
            rejected.sent += 1;
            if !rejected.kinds.contains(&kind.name()) {
                rejected.kinds.push(kind.name());
            }
            let resp = http::send(
                &target.client,
                reqwest::Method::POST,
                &target.url(&api.path.0),
                Some(("application/json", &body)),
                target.request_timeout,
                target.max_body,
            )
            .await;
            if resp.is_ok_and(|r| (200..300).contains(&r.status)) {
                wrong_requests += 1;
                wrong_instances += count;
                rejected.answered_2xx.push(kind.name());
            }
        }
    }
    let after = scrape(target, spec).await;
    let seen_after = match window {
        Some((p, ptr, _)) => Some(instances_seen(target, p, ptr).await),
        None => None,
    };
    let mut report = MonitoringReport {
        requests_sent: sent_requests,
        instances_sent: sent_instances,
        rejected_sent: rejected.sent,
        rejected_answered_2xx: wrong_requests,
        ..Default::default()
    };
    let mk = |name: String, max: f64, verdict: Result<String, String>| CheckResult {
        grader: String::new(),
        name,
        category: Category::Monitoring,
        points: if verdict.is_ok() { max } else { 0.0 },
        max_points: max,
        passed: verdict.is_ok(),
        message: verdict.unwrap_or_else(|e| e),
        visibility: vis,
    };
    let nothing_accepted = (sent_requests == 0).then(|| {
        format!(
            "all {} predict requests failed (first: {}): the service accepted no prediction request, so nothing could be counted",
            spec.requests,
            crate::http::sanitize(first_failure.as_deref().unwrap_or("none sent"), 160)
        )
    });
    let mut checks = Vec::new();
    match (before, after) {
        (Err(e), _) | (_, Err(e)) => {
            checks.push(mk(
                counter_check_name(&spec.predictions_counter),
                spec.counter_points.0,
                Err(e.clone()),
            ));
            checks.push(mk(
                histogram_check_name(&spec.latency_histogram),
                spec.histogram_points.0,
                Err(e),
            ));
        }
        (Ok(before), Ok(after)) => {
            let listed = after
                .names
                .iter()
                .take(12)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            report.counter_delta = before.counter.zip(after.counter).map(|(b, a)| a - b);
            report.histogram_count_delta = before
                .histogram_count
                .zip(after.histogram_count)
                .map(|(b, a)| a - b);
            let counter = match report.counter_delta {
                None => Err(format!(
                    "no metric named {} in {} (found: {listed})",
                    spec.predictions_counter, spec.path
                )),
                Some(d) => judge_count(d, sent_instances, wrong_instances, "instances", &rejected),
            };
            let histogram = match report.histogram_count_delta {
                None => Err(format!(
                    "no histogram named {} in {} (found: {listed})",
                    spec.latency_histogram, spec.path
                )),
                Some(d) => judge_count(d, sent_requests, wrong_requests, "requests", &rejected)
                    .map(|m| format!("count {m}"))
                    .map_err(|m| format!("count {m}")),
            };
            // With no prediction accepted there was nothing to count: metrics that did not
            // move prove nothing about counting, so neither check can pass.
            let (counter, histogram) = match &nothing_accepted {
                Some(why) => (Err(why.clone()), Err(why.clone())),
                None => (counter, histogram),
            };
            checks.push(mk(
                counter_check_name(&spec.predictions_counter),
                spec.counter_points.0,
                counter,
            ));
            checks.push(mk(
                histogram_check_name(&spec.latency_histogram),
                spec.histogram_points.0,
                histogram,
            ));
        }
    }
    if let (Some((path, _, points)), Some(b), Some(a)) = (window, seen_before, seen_after) {
        let verdict = match (b, a) {
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(b), Ok(a)) => {
                report.instances_seen_delta = Some(a - b);
                match &nothing_accepted {
                    Some(why) => Err(why.clone()),
                    None => judge_count(
                        a - b,
                        sent_instances,
                        wrong_instances,
                        "instances",
                        &rejected,
                    )
                    .map(|m| format!("instances_seen {m}"))
                    .map_err(|m| format!("instances_seen {m}")),
                }
            }
        };
        checks.push(mk(window_check_name(&path.0), points.0, verdict));
    }
    (checks, report)
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
        .into_iter()
        .chain(
            m.drift_path
                .as_ref()
                .zip(m.window_points)
                .map(|(p, points)| {
                    DeclaredCheck::new(window_check_name(&p.0), Category::Monitoring, points.0, v)
                }),
        )
        .collect()
    }

    fn budget(&self, loaded: &LoadedGrader) -> Duration {
        let g = &loaded.grader;
        let Some(m) = &g.metrics else {
            return Duration::ZERO;
        };
        // Two scrapes and two reads of the drift window around the requests.
        let largest = m.batch_sizes().into_iter().max().unwrap_or(1);
        super::budget_for(
            Duration::ZERO,
            m.requests + m.rejected_requests + 4,
            m.requests * largest + 2 * m.rejected_requests,
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
