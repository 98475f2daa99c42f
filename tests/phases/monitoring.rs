//! Monitoring: `/metrics` is scraped, a known number of predict requests is sent, and it is
//! scraped again. The prediction counter must rise by exactly the instances predicted and the
//! latency histogram's count by exactly the successful requests.

use std::sync::{Arc, Mutex};

use proctor::check::{Category, CheckResult};
use proctor::phases::monitoring::{
    counter_check_name, histogram_check_name, run, window_check_name,
};
use proctor::report::MonitoringReport;
use serde_json::json;

use crate::fixture::{self, load, rows, try_load, Row, SLOW, TIMEOUT_MS};
use crate::server::{refused_url, Reply, Req, Server};
use crate::{assert_has, assert_points};

const COUNTER: &str = "churn_predictions";
const HISTOGRAM: &str = "churn_request_duration_seconds";
const REQUESTS: u64 = 10;
const PER_REQUEST: u64 = 3;

fn metrics_toml() -> String {
    format!(
        r#"{}
[metrics]
path = "/metrics"
dataset = "holdout"
predictions_counter = "{COUNTER}"
latency_histogram = "{HISTOGRAM}"
requests = {REQUESTS}
instances_per_request = {PER_REQUEST}
counter_points = 3
histogram_points = 2
"#,
        fixture::prediction(64)
    )
}

/// How the fake service keeps its metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Instances and requests of successful predictions, as the contract says.
    Exact,
    /// Every fourth predict request is refused with a 503, and not counted.
    Rejects,
    /// Every fourth predict request is refused with a 503, and counted anyway.
    CountsRejected,
    /// The counter counts requests instead of instances.
    CountsRequests,
    /// Exact, but the counter is not exposed (the histogram is).
    NoCounter,
    /// Exact, with the counter split over two labels and a histogram without `_count`.
    LabelsAndBucketsOnly,
    /// Every predict request fails; the metrics stay honest.
    PredictFails,
    /// Exact, but the histogram also observes requests it rejected as invalid.
    HistogramCountsInvalid,
    /// Exact metrics, but the drift window also takes the instances of rejected batches.
    WindowTakesInvalid,
    /// Accepts the invalid requests it can read (lax validation) and counts them everywhere.
    AcceptsInvalid,
}

/// The instances of a predict request when it is valid for the test schema (x a number, n a
/// number or null, c a string, every key present, at least one instance); else None.
fn valid_instances(r: &Req) -> Option<Vec<serde_json::Value>> {
    let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    let instances = body.get("instances")?.as_array()?.clone();
    let ok = |i: &serde_json::Value| {
        i["x"].is_number()
            && (i["n"].is_number() || i.get("n") == Some(&serde_json::Value::Null))
            && i["c"].is_string()
    };
    (!instances.is_empty() && instances.iter().all(ok)).then_some(instances)
}

/// A predict answer for valid requests, and a 422 for invalid ones, as the contract says.
fn predict_or_reject(r: &Req) -> Reply {
    match valid_instances(r) {
        Some(_) => fixture::predictions(r, fixture::model),
        None => Reply::json(422, &json!({"error": "invalid"})),
    }
}

struct Metrics {
    mode: Mode,
    predicts: u64,
    /// Counter values by label; starts above zero, as after earlier traffic.
    instances: [f64; 2],
    requests: f64,
    /// The drift window's count of instances seen.
    seen: f64,
}

impl Metrics {
    fn new(mode: Mode) -> Metrics {
        Metrics {
            mode,
            predicts: 0,
            instances: [12.0, 5.0],
            requests: 5.0,
            seen: 40.0,
        }
    }

    fn answer(&mut self, r: &Req) -> Reply {
        match r.path.as_str() {
            "/predict" => {
                let Some(valid) = valid_instances(r) else {
                    // Readable but invalid instances, as a lax service would take them.
                    let readable = serde_json::from_str::<serde_json::Value>(&r.body)
                        .ok()
                        .and_then(|b| b["instances"].as_array().map(|a| a.len() as f64));
                    match self.mode {
                        Mode::HistogramCountsInvalid => self.requests += 1.0,
                        Mode::WindowTakesInvalid => self.seen += readable.unwrap_or(0.0),
                        Mode::AcceptsInvalid if readable.is_some() => {
                            let n = readable.unwrap_or(0.0);
                            self.instances[0] += n;
                            self.requests += 1.0;
                            self.seen += n;
                            return Reply::json(200, &json!({"predictions": []}));
                        }
                        _ => {}
                    }
                    return Reply::json(422, &json!({"error": "invalid"}));
                };
                let k = self.predicts;
                self.predicts += 1;
                let n = valid.len() as f64;
                let rejected = match self.mode {
                    Mode::Rejects | Mode::CountsRejected => k % 4 == 3,
                    Mode::PredictFails => true,
                    _ => false,
                };
                if !rejected || self.mode == Mode::CountsRejected {
                    let counted = if self.mode == Mode::CountsRequests {
                        1.0
                    } else {
                        n
                    };
                    self.instances[(k % 2) as usize] += counted;
                    self.requests += 1.0;
                    self.seen += n;
                }
                if rejected {
                    Reply::text(503, "overloaded")
                } else {
                    fixture::predictions(r, fixture::model)
                }
            }
            "/metrics" => Reply::raw(200, "text/plain; version=0.0.4", self.exposition()),
            "/drift" => Reply::json(
                200,
                &json!({"window_size": 500, "instances_seen": self.seen}),
            ),
            _ => Reply::not_found(),
        }
    }

    /// The text exposition format, as Python's prometheus_client writes it.
    fn exposition(&self) -> String {
        let mut s = String::from(
            "# HELP process_cpu_seconds_total Total user and system CPU time.\n\
             # TYPE process_cpu_seconds_total counter\n\
             process_cpu_seconds_total 1.25\n",
        );
        if self.mode != Mode::NoCounter {
            s.push_str(&format!(
                "# HELP {COUNTER} Instances predicted.\n# TYPE {COUNTER} counter\n"
            ));
            if self.mode == Mode::LabelsAndBucketsOnly {
                s.push_str(&format!(
                    "{COUNTER}_total{{model=\"a\"}} {:.1}\n{COUNTER}_total{{model=\"b\"}} {:.1}\n",
                    self.instances[0], self.instances[1]
                ));
            } else {
                s.push_str(&format!(
                    "{COUNTER}_total {:.1}\n",
                    self.instances[0] + self.instances[1]
                ));
            }
            s.push_str(&format!("{COUNTER}_created 1.7e+09\n"));
        }
        s.push_str(&format!(
            "# HELP {HISTOGRAM} Time to answer a predict request.\n\
             # TYPE {HISTOGRAM} histogram\n\
             {HISTOGRAM}_bucket{{le=\"0.005\"}} {r:.1}\n\
             {HISTOGRAM}_bucket{{le=\"+Inf\"}} {r:.1}\n",
            r = self.requests
        ));
        if self.mode != Mode::LabelsAndBucketsOnly {
            s.push_str(&format!(
                "{HISTOGRAM}_count {:.1}\n{HISTOGRAM}_sum 0.02\n",
                self.requests
            ));
        }
        s
    }
}

fn holdout() -> Vec<Row> {
    rows(40, 9)
}

async fn grade_url(url: &str, data: &[Row]) -> (CheckResult, CheckResult, MonitoringReport) {
    let g = load(&metrics_toml(), &[("holdout", data)]);
    let (checks, report) = run(
        &fixture::target(url, &g),
        g.grader.prediction.as_ref().unwrap(),
        g.grader.metrics.as_ref().unwrap(),
        &g.datasets["holdout"],
        g.grader.grader.visibility,
    )
    .await;
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|c| c.category == Category::Monitoring));
    let [counter, histogram] = <[CheckResult; 2]>::try_from(checks).unwrap();
    assert_eq!(counter.name, counter_check_name(COUNTER));
    assert_eq!(histogram.name, histogram_check_name(HISTOGRAM));
    (counter, histogram, report)
}

async fn grade(mode: Mode) -> (CheckResult, CheckResult, MonitoringReport, Server) {
    let metrics = Arc::new(Mutex::new(Metrics::new(mode)));
    let server = Server::start(move |r| metrics.lock().unwrap().answer(r));
    let (c, h, report) = grade_url(&server.url, &holdout()).await;
    (c, h, report, server)
}

async fn grade_with(
    handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
) -> (CheckResult, CheckResult, MonitoringReport) {
    let server = Server::start(handler);
    grade_url(&server.url, &holdout()).await
}

#[tokio::test]
async fn exact_counters_earn_both_checks() {
    let (c, h, report, server) = grade(Mode::Exact).await;
    assert_eq!(
        report,
        MonitoringReport {
            requests_sent: REQUESTS,
            instances_sent: REQUESTS * PER_REQUEST,
            counter_delta: Some(30.0),
            histogram_count_delta: Some(10.0),
            rejected_sent: 4,
            rejected_answered_2xx: 0,
            instances_seen_delta: None,
        }
    );
    assert_points(&c, 3.0, 3.0);
    assert_eq!(c.message, "rose by 30 for 30 accepted instances");
    assert_points(&h, 2.0, 2.0);
    assert_eq!(h.message, "count rose by 10 for 10 accepted requests");
    assert_eq!((report.rejected_sent, report.rejected_answered_2xx), (4, 0));
    // A scrape before and after; between them an accepted request, then a rejected one, while
    // rejected ones remain, all of complete rows.
    let sent = server.requests();
    assert_eq!(sent.len() as u64, REQUESTS + 4 + 2);
    assert_eq!(
        (sent[0].path.as_str(), sent.last().unwrap().path.as_str()),
        ("/metrics", "/metrics")
    );
    let predicts = &sent[1..sent.len() - 1];
    for (i, r) in predicts.iter().enumerate() {
        let valid = valid_instances(r);
        if i < 8 && i % 2 == 1 {
            assert!(
                valid.is_none(),
                "request {i} should be invalid: {:?}",
                r.body
            );
        } else {
            let inst = valid.unwrap_or_else(|| panic!("request {i} should be valid"));
            assert_eq!(inst.len() as u64, PER_REQUEST);
            assert!(inst.iter().all(|i| !i["n"].is_null()));
        }
    }
}

#[tokio::test]
async fn requests_the_service_rejected_and_did_not_count_are_not_expected() {
    // Predict requests 3 and 7 get a 503: 8 requests and 24 instances were predicted.
    let (c, h, report, _s) = grade(Mode::Rejects).await;
    assert_eq!((report.requests_sent, report.instances_sent), (8, 24));
    assert_eq!(
        (report.counter_delta, report.histogram_count_delta),
        (Some(24.0), Some(8.0))
    );
    assert_points(&c, 3.0, 3.0);
    assert_points(&h, 2.0, 2.0);
}

#[tokio::test]
async fn counting_rejected_requests_too_fails_both_checks() {
    let (c, h, report, _s) = grade(Mode::CountsRejected).await;
    assert_eq!((report.requests_sent, report.instances_sent), (8, 24));
    assert_points(&c, 0.0, 3.0);
    assert_eq!(
        c.message,
        "rose by 30, expected 24 (24 accepted instances); it counted more than was accepted: neither failed requests nor the 4 requests sent to be rejected (a missing feature, a number sent as a string, an empty batch, invalid JSON) may count (off by a factor of 1.25)"
    );
    assert_points(&h, 0.0, 2.0);
    assert_eq!(
        h.message,
        "count rose by 10, expected 8 (8 accepted requests); it counted more than was accepted: neither failed requests nor the 4 requests sent to be rejected (a missing feature, a number sent as a string, an empty batch, invalid JSON) may count (off by a factor of 1.25)"
    );
}

#[tokio::test]
async fn a_counter_of_requests_instead_of_instances_fails_by_its_factor() {
    let (c, h, report, _s) = grade(Mode::CountsRequests).await;
    assert_eq!(report.counter_delta, Some(10.0));
    assert_points(&c, 0.0, 3.0);
    assert_eq!(
        c.message,
        "rose by 10, expected 30 (30 accepted instances); it missed accepted traffic (off by a factor of 0.33)"
    );
    assert_points(&h, 2.0, 2.0);
}

#[tokio::test]
async fn a_missing_counter_fails_naming_what_was_found() {
    let (c, h, report, _s) = grade(Mode::NoCounter).await;
    assert_eq!(report.counter_delta, None);
    assert_points(&c, 0.0, 3.0);
    assert_has(
        &c.message,
        &[
            &format!("no metric named {COUNTER} in /metrics (found: "),
            "process_cpu_seconds_total",
            HISTOGRAM,
        ],
    );
    assert_points(&h, 2.0, 2.0);
}

#[tokio::test]
async fn labelled_counter_series_are_summed_and_the_inf_bucket_counts() {
    let (c, h, report, _s) = grade(Mode::LabelsAndBucketsOnly).await;
    assert_eq!(
        (report.counter_delta, report.histogram_count_delta),
        (Some(30.0), Some(10.0))
    );
    assert_points(&c, 3.0, 3.0);
    assert_points(&h, 2.0, 2.0);
}

#[tokio::test]
async fn metrics_that_are_not_prometheus_text_are_missing() {
    let (c, h, report) = grade_with(|r| match r.path.as_str() {
        "/metrics" => Reply::json(200, &json!({"churn_predictions_total": 3})),
        _ => predict_or_reject(r),
    })
    .await;
    assert_eq!(
        (report.counter_delta, report.histogram_count_delta),
        (None, None)
    );
    assert_points(&c, 0.0, 3.0);
    assert_has(
        &c.message,
        &[&format!("no metric named {COUNTER} in /metrics (found: )")],
    );
    assert_points(&h, 0.0, 2.0);
    assert_has(
        &h.message,
        &[&format!(
            "no histogram named {HISTOGRAM} in /metrics (found: )"
        )],
    );
}

#[tokio::test]
async fn a_metrics_endpoint_answering_500_fails_both_checks() {
    let (c, h, report) = grade_with(|r| match r.path.as_str() {
        "/metrics" => Reply::text(500, "no metrics"),
        _ => predict_or_reject(r),
    })
    .await;
    assert_eq!(report.requests_sent, REQUESTS);
    for (r, max) in [(&c, 3.0), (&h, 2.0)] {
        assert_points(r, 0.0, max);
        assert_eq!(r.message, "GET /metrics answered 500");
    }
}

#[tokio::test]
async fn a_refused_connection_fails_both_checks() {
    let (c, h, report) = grade_url(&refused_url(), &holdout()).await;
    assert_eq!((report.requests_sent, report.instances_sent), (0, 0));
    for (r, max) in [(&c, 3.0), (&h, 2.0)] {
        assert_points(r, 0.0, max);
        assert_has(&r.message, &["GET /metrics: could not connect"]);
    }
}

#[tokio::test]
async fn a_metrics_endpoint_slower_than_the_timeout_fails_both_checks() {
    let (c, h, _) = grade_with(|r| match r.path.as_str() {
        "/metrics" => Reply::text(200, "").after(SLOW),
        _ => predict_or_reject(r),
    })
    .await;
    for (r, max) in [(&c, 3.0), (&h, 2.0)] {
        assert_points(r, 0.0, max);
        assert_eq!(
            r.message,
            format!("GET /metrics: no response within {TIMEOUT_MS}ms")
        );
    }
}

/// A service whose every predict request fails has predicted nothing, so its counters show
/// nothing about counting: both checks fail, although the counters did not move
/// ("rose by 0 for 0 instances" would be a vacuous pass).
#[tokio::test]
async fn a_service_that_predicts_nothing_gets_no_monitoring_points() {
    let (c, h, report, _s) = grade(Mode::PredictFails).await;
    assert_eq!(report.requests_sent, 0);
    for (r, max) in [(&c, 3.0), (&h, 2.0)] {
        assert_points(r, 0.0, max);
        assert_has(&r.message, &["fail"]);
        assert_has(
            &r.message,
            &[
                &format!("all {REQUESTS} predict requests failed (first: status 503: overloaded)"),
                "the service accepted no prediction request, so nothing could be counted",
            ],
        );
    }
}

/// A grader that sends no request, or requests of no instance, is refused: there would be
/// nothing to count.
#[test]
fn a_metrics_section_that_sends_nothing_is_refused() {
    for (field, zero) in [
        ("metrics.requests", format!("requests = {REQUESTS}")),
        (
            "metrics.instances_per_request",
            format!("instances_per_request = {PER_REQUEST}"),
        ),
    ] {
        let key = zero.split(' ').next().unwrap().to_string();
        let toml = metrics_toml().replace(&zero, &format!("{key} = 0"));
        let e = try_load("", &toml, &[("holdout", &holdout())]).unwrap_err();
        assert_has(&e.to_string(), &[&format!("{field}: must be at least 1")]);
    }
}

/// A metrics dataset whose every row has a null leaves no complete row to send (the phase
/// would divide by zero). The grader file is refused, naming the dataset.
#[tokio::test]
async fn a_dataset_without_complete_rows_is_refused_or_scored_zero() {
    let nulls: Vec<Row> = holdout()
        .into_iter()
        .map(|r| Row { n: None, ..r })
        .collect();
    if let Err(e) = try_load("", &metrics_toml(), &[("holdout", &nulls)]) {
        // Refusing the grader file is a correct answer too.
        match &e {
            proctor::grader::GraderError::Invalid {
                field,
                message,
                line,
                ..
            } => {
                assert_eq!(field, "metrics.dataset", "{e}");
                assert_has(message, &["\"holdout\" has no row without a null"]);
                let text = fixture::head("") + &metrics_toml();
                assert_eq!(
                    text.lines().nth(line - 1),
                    Some("dataset = \"holdout\""),
                    "{e}"
                );
            }
            other => panic!("unexpected {other}"),
        }
        return;
    }
    let metrics = Arc::new(Mutex::new(Metrics::new(Mode::Exact)));
    let server = Server::start(move |r| metrics.lock().unwrap().answer(r));
    let url = server.url.clone();
    let graded = tokio::spawn(async move { grade_url(&url, &nulls).await }).await;
    let (c, h, _) = graded.expect("the phase must not panic");
    assert_points(&c, 0.0, 3.0);
    assert_points(&h, 0.0, 2.0);
}

/// `[metrics]` with mixed batch sizes and the drift window check.
fn mixed_toml() -> String {
    metrics_toml().replace(
        "counter_points = 3",
        "batch_sizes = [1, 3, 7]\ncounter_points = 3\ndrift_path = \"/drift\"\ninstances_seen = \"/instances_seen\"\nwindow_points = 2",
    )
}

async fn grade_mixed(mode: Mode) -> (Vec<CheckResult>, MonitoringReport, Server) {
    let metrics = Arc::new(Mutex::new(Metrics::new(mode)));
    let server = Server::start(move |r| metrics.lock().unwrap().answer(r));
    let data = holdout();
    let g = load(&mixed_toml(), &[("holdout", &data)]);
    let (checks, report) = run(
        &fixture::target(&server.url, &g),
        g.grader.prediction.as_ref().unwrap(),
        g.grader.metrics.as_ref().unwrap(),
        &g.datasets["holdout"],
        g.grader.grader.visibility,
    )
    .await;
    (checks, report, server)
}

// 10 accepted requests of 1, 3, 7, 1, 3, 7, ... instances: 1+3+7 three times, and 1.
const MIXED_INSTANCES: f64 = 34.0;

#[tokio::test]
async fn mixed_traffic_counted_exactly_earns_all_three_checks() {
    let (checks, report, server) = grade_mixed(Mode::Exact).await;
    assert_eq!(checks.len(), 3);
    for c in &checks {
        assert!(c.passed, "{}: {}", c.name, c.message);
    }
    assert_eq!(checks[2].name, window_check_name("/drift"));
    assert_eq!(
        checks[2].message,
        "instances_seen rose by 34 for 34 accepted instances"
    );
    assert_eq!(report.instances_seen_delta, Some(MIXED_INSTANCES));
    let sizes: Vec<usize> = server
        .requests_to("/predict")
        .iter()
        .filter_map(valid_instances)
        .map(|i| i.len())
        .collect();
    assert_eq!(sizes, vec![1, 3, 7, 1, 3, 7, 1, 3, 7, 1]);
}

#[tokio::test]
async fn a_histogram_that_observes_rejected_requests_loses_the_histogram_check_only() {
    let (checks, report, _s) = grade_mixed(Mode::HistogramCountsInvalid).await;
    assert_eq!(report.histogram_count_delta, Some(14.0));
    let [c, h, w] = <[CheckResult; 3]>::try_from(checks).unwrap();
    assert_points(&c, 3.0, 3.0);
    assert_points(&w, 2.0, 2.0);
    assert_points(&h, 0.0, 2.0);
    assert_has(
        &h.message,
        &["count rose by 14, expected 10 (10 accepted requests); it counted more than was accepted: neither failed requests nor the 4 requests sent to be rejected"],
    );
}

#[tokio::test]
async fn a_drift_window_that_takes_rejected_instances_loses_the_window_check_only() {
    let (checks, report, _s) = grade_mixed(Mode::WindowTakesInvalid).await;
    // The rejected batches held 2 + 1 + 0 instances readable as an array (invalid JSON none).
    assert_eq!(report.instances_seen_delta, Some(MIXED_INSTANCES + 3.0));
    let [c, h, w] = <[CheckResult; 3]>::try_from(checks).unwrap();
    assert_points(&c, 3.0, 3.0);
    assert_points(&h, 2.0, 2.0);
    assert_points(&w, 0.0, 2.0);
    assert_has(
        &w.message,
        &["instances_seen rose by 37, expected 34 (34 accepted instances)"],
    );
}

/// Requests answered 2xx although the contract says reject them are the probes' to score:
/// here the counts may include them or not, and the message says the count was not clean.
#[tokio::test]
async fn invalid_requests_answered_2xx_are_reported_and_not_scored_here() {
    let (checks, report, _s) = grade_mixed(Mode::AcceptsInvalid).await;
    assert_eq!((report.rejected_sent, report.rejected_answered_2xx), (4, 3));
    for c in &checks {
        assert!(c.passed, "{}: {}", c.name, c.message);
        assert_has(
            &c.message,
            &["3 requests the contract says must be rejected were answered 2xx (a missing feature, a number sent as a string, an empty batch), so this count could not be judged cleanly"],
        );
    }
}

#[test]
fn the_window_check_needs_all_three_fields() {
    let toml = mixed_toml().replace("window_points = 2", "");
    let e = try_load("", &toml, &[("holdout", &holdout())]).unwrap_err();
    assert_has(
        &e.to_string(),
        &[
            "metrics.window_points",
            "needs drift_path, instances_seen and window_points together",
        ],
    );
}
