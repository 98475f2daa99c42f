//! Consistency: sampled instances are predicted alone while the service is idle (each twice),
//! then each `rounds` more times with `concurrency` requests in flight. Every answer under load
//! must match the idle one.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proctor::check::{Category, CheckResult};
use proctor::phases::consistency::run;
use proctor::report::ConsistencyReport;
use serde_json::json;

use crate::fixture::{self, load, rows, try_load, Row, SLOW, TIMEOUT_MS};
use crate::server::{refused_url, Reply, Req, Server};
use crate::{assert_has, assert_points};

const INSTANCES: usize = 12;
const ROUNDS: usize = 3;
const CONCURRENCY: usize = 4;
/// Requests of the idle part: each instance fresh, then repeated.
const IDLE: u64 = 2 * INSTANCES as u64;
const UNDER_LOAD: u64 = (INSTANCES * ROUNDS) as u64;
const NAME: &str = "same predictions idle and under 4 concurrent requests";

fn data() -> Vec<Row> {
    rows(60, 3)
}

async fn grade_with(tolerance: f64, url: &str) -> (CheckResult, ConsistencyReport) {
    let toml = format!(
        r#"{}
[consistency]
dataset = "holdout"
instances = {INSTANCES}
concurrency = {CONCURRENCY}
rounds = {ROUNDS}
tolerance = {tolerance:e}
points = 4
"#,
        fixture::prediction(64)
    );
    let d = data();
    let g = load(&toml, &[("holdout", &d)]);
    let (mut checks, report) = run(
        &fixture::target(url, &g),
        g.grader.prediction.as_ref().unwrap(),
        g.grader.consistency.as_ref().unwrap(),
        &g.datasets["holdout"],
        7,
        g.grader.grader.visibility,
    )
    .await;
    assert_eq!(checks.len(), 1);
    let c = checks.pop().unwrap();
    assert_eq!((c.name.as_str(), c.category), (NAME, Category::Consistency));
    (c, report)
}

async fn grade(
    handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
) -> (CheckResult, ConsistencyReport, Server) {
    let server = Server::start(handler);
    let (c, r) = grade_with(1e-6, &server.url).await;
    (c, r, server)
}

/// The model's answer, a little late so that requests under load overlap.
fn model(r: &Req) -> Reply {
    fixture::predictions(r, fixture::model).after(Duration::from_millis(5))
}

/// The model's answer with `delta` added under load (requests after the idle part).
fn shifted_under_load(r: &Req, delta: f64) -> Reply {
    let d = if r.n >= IDLE { delta } else { 0.0 };
    fixture::predictions(r, |i| fixture::model(i) + d)
}

#[tokio::test]
async fn a_deterministic_service_matches_under_load() {
    let (c, report, server) = grade(model).await;
    assert_points(&c, 4.0, 4.0);
    assert_eq!(
        c.message,
        format!("{UNDER_LOAD} answers under load matched the idle answers")
    );
    assert_eq!(
        report,
        ConsistencyReport {
            instances: INSTANCES as u64,
            requests_under_load: UNDER_LOAD,
            concurrency: CONCURRENCY as u64,
            mismatches: 0,
            failures: 0,
            fresh_median_ms: report.fresh_median_ms,
            repeat_median_ms: report.repeat_median_ms,
            caching_suspected: false,
        }
    );
    let sent = server.requests();
    assert_eq!(sent.len() as u64, IDLE + UNDER_LOAD);
    // One instance per request; each sampled instance twice idle and `rounds` times under
    // load; all of them complete rows.
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for r in &sent {
        let inst = fixture::instances(r);
        assert_eq!(inst.len(), 1);
        assert!(!inst[0]["n"].is_null(), "only complete rows");
        *times.entry(inst[0].to_string()).or_default() += 1;
    }
    assert_eq!(times.len(), INSTANCES);
    assert!(times.values().all(|&k| k == 2 + ROUNDS), "{times:?}");
    // Idle means one at a time; under load, several at once but never more than allowed.
    assert!(sent[..IDLE as usize].iter().all(|r| r.in_flight == 1));
    let most = sent.iter().map(|r| r.in_flight).max().unwrap();
    assert!((2..=CONCURRENCY).contains(&most), "{most} in flight");
}

#[tokio::test]
async fn answers_that_change_under_concurrency_cost_the_points() {
    // A service whose answers depend on what else it is serving.
    let perturbed = Arc::new(AtomicU64::new(0));
    let p = perturbed.clone();
    let (c, report, _s) = grade(move |r| {
        let busy = r.in_flight > 1;
        if busy {
            p.fetch_add(1, Ordering::SeqCst);
        }
        fixture::predictions(r, |i| fixture::model(i) * if busy { 0.5 } else { 1.0 })
            .after(Duration::from_millis(5))
    })
    .await;
    let perturbed = perturbed.load(Ordering::SeqCst);
    assert!(perturbed > 0);
    assert_eq!((report.mismatches, report.failures), (perturbed, 0));
    assert_points(&c, 0.0, 4.0);
    assert_has(
        &c.message,
        &[
            &format!("{perturbed} of {UNDER_LOAD} answers under load differed from the same instances' idle answers and 0 failed"),
            "idle but",
            "under load",
        ],
    );
}

#[tokio::test]
async fn differences_within_the_tolerance_pass_and_beyond_it_fail() {
    let server = Server::start(|r| shifted_under_load(r, 1e-7));
    let (c, report) = grade_with(1e-6, &server.url).await;
    assert_points(&c, 4.0, 4.0);
    assert_eq!(report.mismatches, 0);

    let server = Server::start(|r| shifted_under_load(r, 1e-5));
    let (c, report) = grade_with(1e-6, &server.url).await;
    assert_points(&c, 0.0, 4.0);
    assert_eq!(report.mismatches, UNDER_LOAD);
}

#[tokio::test]
async fn a_service_answering_500_fails_even_idle() {
    let (c, report, _s) = grade(|_| Reply::text(500, "oops")).await;
    assert_points(&c, 0.0, 4.0);
    assert_has(
        &c.message,
        &[&format!(
            "{INSTANCES} of {INSTANCES} instances got no valid prediction even when idle"
        )],
    );
    assert_eq!(report.failures, UNDER_LOAD);
}

#[tokio::test]
async fn a_refused_connection_fails_even_idle() {
    let (c, report) = grade_with(1e-6, &refused_url()).await;
    assert_points(&c, 0.0, 4.0);
    assert_has(
        &c.message,
        &[&format!(
            "{INSTANCES} of {INSTANCES} instances got no valid prediction even when idle"
        )],
    );
    assert_eq!(report.failures, UNDER_LOAD);
}

#[tokio::test]
async fn one_nan_while_idle_fails_the_check() {
    let (c, report, _s) = grade(|r| {
        if r.n == 0 {
            fixture::raw_predictions(&["NaN".into()])
        } else {
            fixture::predictions(r, fixture::model)
        }
    })
    .await;
    assert_points(&c, 0.0, 4.0);
    assert_has(
        &c.message,
        &[&format!(
            "1 of {INSTANCES} instances got no valid prediction even when idle"
        )],
    );
    assert_eq!((report.mismatches, report.failures), (0, 0));
}

#[tokio::test]
async fn empty_answers_under_load_are_counted_as_failures() {
    // Every third request under load gets an answer without its prediction.
    let (c, report, _s) = grade(|r| {
        if r.n >= IDLE && r.n % 3 == 0 {
            Reply::json(200, &json!({"predictions": []}))
        } else {
            fixture::predictions(r, fixture::model)
        }
    })
    .await;
    let short = (IDLE..IDLE + UNDER_LOAD).filter(|n| n % 3 == 0).count() as u64;
    assert_eq!((report.mismatches, report.failures), (0, short));
    assert_points(&c, 0.0, 4.0);
    assert_has(
        &c.message,
        &[
            &format!("0 of {UNDER_LOAD} answers under load differed from the same instances' idle answers and {short} failed"),
            "a request under load failed: 0 predictions for 1 instances",
        ],
    );
}

#[tokio::test]
async fn a_request_timing_out_under_load_fails_the_check() {
    let (c, report, _s) = grade(|r| {
        let reply = fixture::predictions(r, fixture::model);
        if r.n == IDLE {
            reply.after(SLOW)
        } else {
            reply
        }
    })
    .await;
    assert_eq!((report.mismatches, report.failures), (0, 1));
    assert_points(&c, 0.0, 4.0);
    assert_has(
        &c.message,
        &[&format!(
            "a request under load failed: no response within {TIMEOUT_MS}ms"
        )],
    );
}

#[tokio::test]
async fn repeated_inputs_answered_much_faster_are_reported_as_caching() {
    // Fresh inputs take 15 ms, inputs seen before are answered at once.
    let seen = Mutex::new(HashSet::new());
    let (c, report, _s) = grade(move |r| {
        let reply = fixture::predictions(r, fixture::model);
        if seen.lock().unwrap().insert(r.body.clone()) {
            reply.after(Duration::from_millis(15))
        } else {
            reply
        }
    })
    .await;
    assert!(report.caching_suspected, "{report:?}");
    assert!(report.fresh_median_ms >= 15.0, "{report:?}");
    assert!(
        report.repeat_median_ms < report.fresh_median_ms / 2.0,
        "{report:?}"
    );
    // A hint, not a penalty: the answers matched.
    assert_points(&c, 4.0, 4.0);
    assert_has(
        &c.message,
        &["matched the idle answers", "the service may be caching"],
    );
}

/// Consistency sends complete rows only: a dataset whose every row has a null is refused at
/// load, not graded as a service that got 0 of 0 answers right.
#[test]
fn a_dataset_without_complete_rows_is_refused() {
    let toml = format!(
        "{}\n[consistency]\ndataset = \"holdout\"\npoints = 4\n",
        fixture::prediction(64)
    );
    let nulls: Vec<Row> = data().into_iter().map(|r| Row { n: None, ..r }).collect();
    let e = try_load("", &toml, &[("holdout", &nulls)]).unwrap_err();
    assert_has(
        &e.to_string(),
        &["consistency.dataset: dataset \"holdout\" has no row without a null"],
    );
}
