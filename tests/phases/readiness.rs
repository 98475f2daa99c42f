//! Readiness: the probe is polled until its expectations hold, within a deadline that a
//! hanging service cannot stretch.

use std::time::{Duration, Instant};

use proctor::check::Category;
use proctor::phases::readiness::{result, wait_ready, ReadyOutcome};
use serde_json::json;

use crate::fixture::{self, load, SLOW, TIMEOUT_MS};
use crate::server::{refused_url, Reply, Server};
use crate::{assert_has, assert_points};

const READY_JSON: &str = r#"
[[readiness.json]]
pointer = "/ready"
equals = true
"#;

/// Waits up to `deadline` and grades the outcome; returns the result, the last probe's
/// message when it timed out, and how long the wait took.
async fn probe(
    url: &str,
    deadline: Duration,
) -> (proctor::check::CheckResult, Option<String>, Duration) {
    let g = load(READY_JSON, &[]);
    let t = fixture::target(url, &g);
    let started = Instant::now();
    let outcome = wait_ready(&t, &g.grader.readiness, deadline).await;
    let took = started.elapsed();
    let r = result(&g.grader.readiness, g.grader.grader.visibility, &outcome);
    assert_eq!(r.category, Category::Readiness);
    assert_eq!(r.name, "becomes ready");
    let last = match outcome {
        ReadyOutcome::Ready { after } => {
            assert!(after <= took, "{after:?} > {took:?}");
            None
        }
        ReadyOutcome::TimedOut { last } => Some(last),
    };
    (r, last, took)
}

#[tokio::test]
async fn ready_after_a_few_failing_probes_earns_the_points() {
    let server = Server::start(|r| match (r.path.as_str(), r.n) {
        ("/ready", 0 | 1) => Reply::text(503, "loading the model"),
        ("/ready", _) => Reply::json(200, &json!({"ready": true})),
        _ => Reply::not_found(),
    });
    let (r, last, took) = probe(&server.url, Duration::from_secs(3)).await;
    assert_eq!(last, None, "it became ready");
    assert_points(&r, 2.0, 2.0);
    assert_has(&r.message, &["ready after "]);
    let probes = server.requests_to("/ready");
    assert_eq!(server.requests().len(), 3);
    assert_eq!(
        probes.len(),
        3,
        "polled until the third probe passed, then stopped"
    );
    assert!(probes
        .iter()
        .all(|p| p.method == "GET" && p.path == "/ready"));
    // Two 20 ms poll intervals between the three probes.
    assert!(took >= Duration::from_millis(40), "{took:?}");
}

#[tokio::test]
async fn a_probe_that_says_not_ready_never_passes() {
    let server = Server::start(|_| Reply::json(200, &json!({"ready": false})));
    let deadline = Duration::from_millis(300);
    let (r, last, took) = probe(&server.url, deadline).await;
    let last = last.expect("never ready");
    assert_has(&last, &["`/ready` should be true, got false"]);
    assert_points(&r, 0.0, 2.0);
    assert_has(
        &r.message,
        &["never became ready; last probe: `/ready` should be true, got false"],
    );
    assert!(
        server.requests().len() >= 3,
        "polled repeatedly until the deadline"
    );
    assert!(
        took >= deadline && took < deadline + Duration::from_millis(200),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_wrong_json_shape_is_not_ready() {
    let server = Server::start(|_| Reply::json(200, &json!({"status": "ready"})));
    let (r, last, _) = probe(&server.url, Duration::from_millis(150)).await;
    assert_has(&last.unwrap(), &["`/ready` is missing from the response"]);
    assert_points(&r, 0.0, 2.0);
}

#[tokio::test]
async fn a_500_is_not_ready_and_the_message_quotes_the_body() {
    let server = Server::start(|_| Reply::text(500, "Traceback: model.pkl not found"));
    let (r, _, _) = probe(&server.url, Duration::from_millis(150)).await;
    assert_points(&r, 0.0, 2.0);
    assert_has(
        &r.message,
        &[
            "never became ready",
            "expected status 200, got 500",
            "model.pkl not found",
        ],
    );
}

#[tokio::test]
async fn a_refused_connection_is_never_ready() {
    let (r, _, took) = probe(&refused_url(), Duration::from_millis(150)).await;
    assert_points(&r, 0.0, 2.0);
    assert_has(&r.message, &["never became ready", "could not connect"]);
    assert!(took < Duration::from_millis(400), "{took:?}");
}

#[tokio::test]
async fn a_hanging_probe_times_out_within_the_deadline() {
    let server = Server::start(|_| Reply::json(200, &json!({"ready": true})).after(SLOW));
    let deadline = Duration::from_millis(500);
    let (r, last, took) = probe(&server.url, deadline).await;
    assert_has(&last.unwrap(), &["no response within"]);
    assert_points(&r, 0.0, 2.0);
    assert_has(
        &r.message,
        &["never became ready; last probe: no response within"],
    );
    // Each probe gave up after the request timeout (or the time left), so the deadline held
    // although every answer would have come after it.
    assert!(
        took < deadline + Duration::from_millis(TIMEOUT_MS / 2),
        "{took:?}"
    );
    let probes = server.requests().len();
    assert!(
        (2..=3).contains(&probes),
        "{probes} probes of at most {TIMEOUT_MS} ms in 500 ms"
    );
}
