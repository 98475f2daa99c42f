//! Quality: every (complete) row of the holdout goes through the service in batches, and the
//! answers are scored against the labels on the grader's point curves.

use std::collections::BTreeMap;
use std::time::Instant;

use proctor::check::{Category, CheckResult};
use proctor::phases::quality::run;
use proctor::report::QualityReport;
use serde_json::json;

use crate::fixture::{self, complete, load, rows, separable, try_load, Row, SLOW, TIMEOUT_MS};
use crate::server::{refused_url, Reply, Req, Server};
use crate::{assert_has, assert_points, find};

// Ground truth, computed from the definitions (not with proctor's code).

/// P(score of a random positive > score of a random negative), ties counting half.
fn auc(s: &[f64], y: &[f64]) -> f64 {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, &yi) in y.iter().enumerate() {
        for (j, &yj) in y.iter().enumerate() {
            if yi == 1.0 && yj == 0.0 {
                pairs += 1.0;
                wins += if s[i] > s[j] {
                    1.0
                } else if s[i] == s[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    wins / pairs
}

fn accuracy(s: &[f64], y: &[f64]) -> f64 {
    let right = s
        .iter()
        .zip(y)
        .filter(|(s, y)| (**s >= 0.5) == (**y == 1.0))
        .count();
    right as f64 / s.len() as f64
}

fn log_loss(s: &[f64], y: &[f64]) -> f64 {
    let eps = 1e-15;
    s.iter()
        .zip(y)
        .map(|(s, y)| {
            let p = s.clamp(eps, 1.0 - eps);
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / s.len() as f64
}

/// Expected calibration error over 10 equal-width bins.
fn calibration_error(s: &[f64], y: &[f64]) -> f64 {
    (0..10)
        .map(|b| {
            let in_bin: Vec<usize> = (0..s.len())
                .filter(|&i| ((s[i] * 10.0) as usize).min(9) == b)
                .collect();
            let p: f64 = in_bin.iter().map(|&i| s[i]).sum();
            let o: f64 = in_bin.iter().map(|&i| y[i]).sum();
            (p - o).abs()
        })
        .sum::<f64>()
        / s.len() as f64
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Points on a curve from full at `full` to none at `zero`, rounded to cents.
fn curve(value: f64, full: f64, zero: f64, max: f64) -> f64 {
    let t = ((value - zero) / (full - zero)).clamp(0.0, 1.0);
    (max * t * 100.0).round() / 100.0
}

/// Scores and labels of the fake model on `rows`.
fn truth(rows: &[Row]) -> (Vec<f64>, Vec<f64>) {
    rows.iter()
        .map(|r| ((r.x / 100.0).clamp(0.0, 1.0), r.y as f64))
        .unzip()
}

/// `[quality]` of the holdout, with `extra` fields in its table, and four metrics.
fn quality_toml(extra: &str) -> String {
    format!("\n[quality]\ndataset = \"holdout\"\n{extra}\n{METRICS}")
}

const METRICS: &str = r#"
[[quality.metric]]
metric = "auc"
full_points_at = 0.7
zero_points_at = 0.5
points = 8

[[quality.metric]]
metric = "accuracy"
full_points_at = 0.6
zero_points_at = 0.5
points = 2

[[quality.metric]]
metric = "log_loss"
full_points_at = 0.5
zero_points_at = 0.7
points = 2

[[quality.metric]]
metric = "calibration_error"
full_points_at = 0.15
zero_points_at = 0.3
points = 2
"#;

const MAX_BATCH: usize = 64;

fn holdout() -> Vec<Row> {
    rows(300, 1)
}

async fn grade(
    url: &str,
    extra: &str,
    datasets: &[(&str, &[Row])],
) -> (Vec<CheckResult>, QualityReport) {
    let g = load(
        &format!("{}{}", fixture::prediction(MAX_BATCH), quality_toml(extra)),
        datasets,
    );
    let (checks, report) = run(
        &fixture::target(url, &g),
        g.grader.prediction.as_ref().unwrap(),
        g.grader.quality.as_ref().unwrap(),
        &g.datasets,
        g.grader.grader.visibility,
    )
    .await;
    assert!(checks.iter().all(|c| c.category == Category::Quality));
    (checks, report)
}

async fn grade_holdout(
    handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
) -> (Vec<CheckResult>, QualityReport, Server) {
    let server = Server::start(handler);
    let h = holdout();
    let (checks, report) = grade(&server.url, "", &[("holdout", &h)]).await;
    (checks, report, server)
}

/// The holdout's metrics and points when every complete row is scored by the model: the fake
/// model reaches full points on AUC, accuracy and calibration, and part of them on log loss
/// (a curve falling from 0.5 to 0.7).
fn assert_model_scores(checks: &[CheckResult], report: &QualityReport, rows: &[Row]) {
    let (s, y) = truth(rows);
    let (auc, acc, ll, ece) = (
        auc(&s, &y),
        accuracy(&s, &y),
        log_loss(&s, &y),
        calibration_error(&s, &y),
    );
    let want: BTreeMap<String, f64> = [
        ("AUC", auc),
        ("accuracy", acc),
        ("log loss", ll),
        ("calibration error", ece),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), round4(v)))
    .collect();
    assert_eq!(report.metrics, want);
    let a = find(checks, "AUC on holdout");
    assert!(auc >= 0.7 && acc >= 0.6 && ece <= 0.15 && (0.5..0.7).contains(&ll));
    assert_points(a, 8.0, 8.0);
    assert_has(
        &a.message,
        &[&format!("AUC = {auc:.4} (full points at 0.7, none at 0.5)")],
    );
    assert_points(find(checks, "accuracy on holdout"), 2.0, 2.0);
    assert_points(find(checks, "calibration error on holdout"), 2.0, 2.0);
    let l = find(checks, "log loss on holdout");
    assert_points(l, curve(ll, 0.5, 0.7, 2.0), 2.0);
    assert!(l.points > 0.0 && l.points < 2.0, "{}", l.points);
}

/// Instances per predict request the service saw.
fn batch_sizes(server: &Server) -> Vec<usize> {
    server
        .requests_to("/predict")
        .iter()
        .map(|r| fixture::instances(r).len())
        .collect()
}

/// Predict requests of one pass over `n` instances in full batches.
fn batches(n: usize) -> usize {
    n.div_ceil(MAX_BATCH)
}

#[tokio::test]
async fn a_correct_service_is_scored_against_the_labels() {
    let (checks, report, server) = grade_holdout(|r| fixture::predictions(r, fixture::model)).await;
    let h = complete(&holdout());
    assert!(h.len() < holdout().len(), "the holdout has rows with nulls");
    assert_eq!(checks.len(), 4);
    assert_model_scores(&checks, &report, &h);
    assert_eq!(
        (report.instances, report.scored),
        (h.len() as u64, h.len() as u64)
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    // The report's curves for the charts: the ROC's area is the AUC, and the reliability
    // bins hold every scored instance and give the calibration error.
    let roc = &report.roc;
    assert!(roc.len() >= 3 && roc.len() <= 101, "{}", roc.len());
    let ends = (roc[0], roc[roc.len() - 1]);
    assert_eq!(
        (
            (ends.0.false_positive_rate, ends.0.true_positive_rate),
            (ends.1.false_positive_rate, ends.1.true_positive_rate)
        ),
        ((0.0, 0.0), (1.0, 1.0))
    );
    let area: f64 = roc
        .windows(2)
        .map(|w| {
            (w[1].false_positive_rate - w[0].false_positive_rate)
                * (w[1].true_positive_rate + w[0].true_positive_rate)
                / 2.0
        })
        .sum();
    let (s, y) = truth(&h);
    assert!((area - auc(&s, &y)).abs() < 0.01, "{area}");
    let bins = &report.calibration;
    assert_eq!(bins.iter().map(|b| b.count).sum::<u64>(), h.len() as u64);
    let ece: f64 = bins
        .iter()
        .map(|b| b.count as f64 / h.len() as f64 * (b.mean_predicted - b.observed_rate).abs())
        .sum();
    assert!((ece - calibration_error(&s, &y)).abs() < 1e-3, "{ece}");
    // Complete rows only, in batches of at most max_batch, each sent once.
    let sizes = batch_sizes(&server);
    assert_eq!(sizes.len(), batches(h.len()));
    assert!(sizes.iter().all(|&n| n <= MAX_BATCH), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), h.len());
    for r in server.requests_to("/predict") {
        assert!(
            fixture::instances(&r).iter().all(|i| !i["n"].is_null()),
            "a null was sent"
        );
    }
}

const GAP: &str = r#"
compare_dataset = "validation"
gap = { max_auc_gap = MAX_GAP, points = 1 }
"#;

#[tokio::test]
async fn an_auc_much_higher_on_public_data_costs_the_gap_points() {
    let (h, v) = (holdout(), separable(200, 2));
    let (hs, hy) = truth(&complete(&h));
    let (vs, vy) = truth(&complete(&v));
    let gap = auc(&vs, &vy) - auc(&hs, &hy);
    assert!(gap > 0.2, "{gap}");
    let server = Server::start(|r| fixture::predictions(r, fixture::model));
    for (max_gap, passes) in [(0.05, false), (0.5, true)] {
        let extra = GAP.replace("MAX_GAP", &max_gap.to_string());
        let (checks, report) =
            grade(&server.url, &extra, &[("holdout", &h), ("validation", &v)]).await;
        assert_eq!(report.compare_auc, Some(round4(auc(&vs, &vy))));
        assert_eq!(report.auc_gap, Some(round4(gap)));
        let c = find(&checks, "AUC gap between validation and holdout");
        if passes {
            assert_points(c, 1.0, 1.0);
            assert_has(
                &c.message,
                &[&format!(
                    "AUC validation - holdout = {gap:.4} (allowed up to 0.5)"
                )],
            );
        } else {
            assert_points(c, 0.0, 1.0);
            assert_has(
                &c.message,
                &[
                    &format!("AUC on validation is {gap:.4} above holdout"),
                    "overfitted",
                ],
            );
        }
    }
}

#[tokio::test]
async fn a_gap_measured_on_a_few_answers_earns_nothing() {
    // A service that answers only where it is sure (NaN for 30 <= x < 70) on both datasets:
    // its AUC on what it answered looks the same everywhere, but it answered too few.
    let (h, v) = (holdout(), separable(200, 2));
    let server = Server::start(|r| {
        let tokens: Vec<String> = fixture::instances(r)
            .iter()
            .map(|i| match fixture::model(i) {
                p if (0.3..0.7).contains(&p) => "NaN".to_string(),
                p => p.to_string(),
            })
            .collect();
        fixture::raw_predictions(&tokens)
    });
    let extra = GAP.replace("MAX_GAP", "0.5");
    let (checks, report) = grade(&server.url, &extra, &[("holdout", &h), ("validation", &v)]).await;
    assert!(
        (report.scored as f64) < 0.9 * report.instances as f64,
        "{} of {}",
        report.scored,
        report.instances
    );
    let c = find(&checks, "AUC gap between validation and holdout");
    assert_points(c, 0.0, 1.0);
    assert_has(
        &c.message,
        &["too few to measure the AUC gap", "of holdout"],
    );
}

#[tokio::test]
async fn a_service_answering_500_gets_no_points_and_the_reason() {
    let (checks, report, server) = grade_holdout(|_| Reply::text(500, "model exploded")).await;
    let n = complete(&holdout()).len();
    assert_eq!(checks.len(), 4);
    for c in &checks {
        assert_points(c, 0.0, c.max_points);
        assert_has(
            &c.message,
            &[
                &format!("only 0 of {n} instances got a valid probability"),
                &format!("{n}x status 500: model exploded"),
            ],
        );
    }
    assert_eq!(report.scored, 0);
    assert_eq!(
        report.failures,
        BTreeMap::from([("status 500: model exploded".to_string(), n as u64)])
    );
    // Every failed batch was retried one instance at a time.
    assert_eq!(batch_sizes(&server).len(), batches(n) + n);
}

#[tokio::test]
async fn a_refused_connection_gets_no_points_and_says_so() {
    let h = holdout();
    let (checks, report) = grade(&refused_url(), "", &[("holdout", &h)]).await;
    assert_eq!(report.scored, 0);
    for c in &checks {
        assert_points(c, 0.0, c.max_points);
        assert_has(
            &c.message,
            &["got a valid probability", "could not connect"],
        );
    }
}

#[tokio::test]
async fn a_few_nan_probabilities_cost_only_their_own_instances() {
    // A bare NaN (as Python's json writes it) for x < 8: under 10% of the instances.
    let (checks, report, server) = grade_holdout(|r| {
        let tokens: Vec<String> = fixture::instances(r)
            .iter()
            .map(|i| match fixture::model(i) {
                p if p < 0.08 => "NaN".to_string(),
                p => p.to_string(),
            })
            .collect();
        fixture::raw_predictions(&tokens)
    })
    .await;
    let h = complete(&holdout());
    let (valid, nan): (Vec<Row>, Vec<Row>) = h.iter().cloned().partition(|r| r.x >= 8.0);
    assert!(
        !nan.is_empty() && nan.len() * 10 < h.len(),
        "{} of {}",
        nan.len(),
        h.len()
    );
    assert_eq!(report.scored, valid.len() as u64);
    assert_eq!(
        report.failures,
        BTreeMap::from([(
            "probability is not a number (NaN, Infinity or null)".to_string(),
            nan.len() as u64
        )])
    );
    // The metrics are those of the validly answered rows; no batch was lost or retried.
    let (s, y) = truth(&valid);
    assert_eq!(report.metrics["AUC"], round4(auc(&s, &y)));
    assert_points(
        find(&checks, "AUC on holdout"),
        curve(auc(&s, &y), 0.7, 0.5, 8.0),
        8.0,
    );
    assert_eq!(batch_sizes(&server).len(), batches(h.len()));
}

#[tokio::test]
async fn too_many_probabilities_outside_0_1_leave_no_metric_points() {
    // 1.5 for x >= 80: about a fifth of the instances, more than the 10% allowed.
    let (checks, report, _s) = grade_holdout(|r| {
        fixture::predictions(r, |i| match fixture::model(i) {
            p if p >= 0.8 => 1.5,
            p => p,
        })
    })
    .await;
    let h = complete(&holdout());
    let bad = h.iter().filter(|r| r.x >= 80.0).count();
    assert!(bad * 10 > h.len());
    assert_eq!(report.scored, (h.len() - bad) as u64);
    for c in &checks {
        assert_points(c, 0.0, c.max_points);
        assert_has(
            &c.message,
            &[
                &format!(
                    "only {} of {} instances got a valid probability",
                    h.len() - bad,
                    h.len()
                ),
                &format!("{bad}x probability 1.5 is outside [0, 1]"),
            ],
        );
    }
}

#[tokio::test]
async fn a_batch_answered_short_is_retried_one_instance_at_a_time() {
    // One prediction short for every batch of several instances; single instances are fine.
    let (checks, report, server) = grade_holdout(|r| {
        let reply = fixture::predictions(r, fixture::model);
        let mut v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let ps = v["predictions"].as_array_mut().unwrap();
        if ps.len() > 1 {
            ps.pop();
        }
        Reply::json(200, &v)
    })
    .await;
    let h = complete(&holdout());
    assert_model_scores(&checks, &report, &h);
    assert_eq!(report.scored, h.len() as u64);
    let sizes = batch_sizes(&server);
    assert_eq!(sizes.len(), batches(h.len()) + h.len());
    assert_eq!(sizes.iter().filter(|&&n| n == 1).count(), h.len());
}

#[tokio::test]
async fn an_answer_short_even_for_one_instance_gets_no_points() {
    let (checks, report, _s) =
        grade_holdout(|_| Reply::json(200, &json!({"predictions": []}))).await;
    let n = complete(&holdout()).len();
    assert_eq!(report.scored, 0);
    for c in &checks {
        assert_points(c, 0.0, c.max_points);
        assert_has(
            &c.message,
            &[&format!("{n}x 0 predictions for 1 instances")],
        );
    }
}

#[tokio::test]
async fn a_wrong_json_shape_gets_no_points_and_names_the_pointer() {
    let (checks, report, _s) = grade_holdout(|r| {
        let ps: Vec<f64> = fixture::instances(r).iter().map(fixture::model).collect();
        Reply::json(200, &json!({ "preds": ps }))
    })
    .await;
    assert_eq!(report.scored, 0);
    for c in &checks {
        assert_points(c, 0.0, c.max_points);
        assert_has(&c.message, &["no array at `/predictions` in the response"]);
    }
}

#[tokio::test]
async fn batches_that_time_out_are_retried_and_single_instances_scored() {
    let started = Instant::now();
    let (checks, report, server) = grade_holdout(|r| {
        let reply = fixture::predictions(r, fixture::model);
        if fixture::instances(r).len() > 1 {
            reply.after(SLOW)
        } else {
            reply
        }
    })
    .await;
    let h = complete(&holdout());
    assert_model_scores(&checks, &report, &h);
    assert_eq!(batch_sizes(&server).len(), batches(h.len()) + h.len());
    // Each batch cost one request timeout, not the service's delay.
    let took = started.elapsed();
    let per_batch = std::time::Duration::from_millis(TIMEOUT_MS);
    assert!(took >= per_batch * batches(h.len()) as u32, "{took:?}");
    assert!(took < SLOW * batches(h.len()) as u32, "{took:?}");
}

#[tokio::test]
async fn a_service_that_always_times_out_gets_no_points() {
    let server = Server::start(|r| fixture::predictions(r, fixture::model).after(SLOW));
    let tiny = complete(&holdout())[..3].to_vec();
    let (checks, report) = grade(&server.url, "", &[("holdout", &tiny)]).await;
    assert_eq!(report.scored, 0);
    for c in &checks {
        assert_points(c, 0.0, c.max_points);
        assert_has(
            &c.message,
            &[&format!("3x no response within {TIMEOUT_MS}ms")],
        );
    }
    // One batch and three single retries, each given up at the timeout.
    assert_eq!(server.requests().len(), 4);
}

/// With `complete_rows_only` (the default) a dataset whose every row has a null leaves nothing
/// to score: refused at load. Without it the same dataset is fine.
#[test]
fn a_dataset_without_complete_rows_is_refused_when_only_complete_rows_are_scored() {
    let nulls: Vec<Row> = holdout()
        .into_iter()
        .map(|r| Row { n: None, ..r })
        .collect();
    let text = |extra: &str| format!("{}{}", fixture::prediction(MAX_BATCH), quality_toml(extra));
    let e = try_load("", &text(""), &[("holdout", &nulls)]).unwrap_err();
    assert_has(
        &e.to_string(),
        &["quality.dataset: dataset \"holdout\" has no row without a null"],
    );
    try_load(
        "",
        &text("complete_rows_only = false"),
        &[("holdout", &nulls)],
    )
    .unwrap();
}
