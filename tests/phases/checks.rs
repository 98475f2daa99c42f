//! Scripted checks (correctness, robustness, missing data): one declared request each, all or
//! nothing, with a message that says what was expected and what came back.

use std::time::{Duration, Instant};

use proctor::check::{Category, CheckResult};
use proctor::phases::checks::run_check;
use serde_json::json;

use crate::fixture::{self, try_load, SLOW, TIMEOUT_MS};
use crate::server::{refused_url, Reply, Req, Server};
use crate::{assert_has, assert_points};

/// A batch of three instances that must get three probabilities.
const BATCH: &str = r#"
[[correctness]]
name = "predicts a batch"
points = 4
path = "/predict"
body = '''{"instances":[{"x":10},{"x":20},{"x":30}]}'''

[[correctness.json]]
pointer = "/predictions"
type = "array"
length = 3

[[correctness.json]]
pointer = "/predictions/*/p"
type = "number"
min = 0.0
max = 1.0
"#;

/// Runs the first check of `toml` (in `category`'s list) against `url`.
async fn run_first(http_extra: &str, toml: &str, category: Category, url: &str) -> CheckResult {
    let g = try_load(http_extra, toml, &[]).unwrap();
    let spec = match category {
        Category::Correctness => &g.grader.correctness[0],
        Category::Robustness => &g.grader.robustness[0],
        Category::MissingData => &g.grader.missing_data[0],
        other => panic!("{other} has no scripted checks"),
    };
    let r = run_check(
        &fixture::target(url, &g),
        spec,
        category,
        g.grader.grader.visibility,
    )
    .await;
    assert_eq!(r.category, category);
    assert_eq!(r.name, spec.name);
    r
}

async fn batch(reply: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> (CheckResult, Server) {
    let server = Server::start(reply);
    let r = run_first("", BATCH, Category::Correctness, &server.url).await;
    (r, server)
}

#[tokio::test]
async fn a_right_answer_earns_the_points_and_the_request_is_sent_as_declared() {
    let (r, server) = batch(|r| fixture::predictions(r, fixture::model)).await;
    assert_points(&r, 4.0, 4.0);
    assert_eq!(r.message, "");
    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].method, "POST",
        "a check with a body defaults to POST"
    );
    assert_eq!(sent[0].path, "/predict");
    assert_eq!(sent[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        sent[0].body,
        r#"{"instances":[{"x":10},{"x":20},{"x":30}]}"#
    );
}

#[tokio::test]
async fn invalid_input_is_sent_byte_for_byte_with_its_method_and_content_type() {
    let toml = r#"
[[robustness]]
name = "invalid JSON is a client error"
points = 2
method = "PUT"
path = "/predict"
content_type = "text/plain"
body = '''{"instances": [{"x": 5,'''
status = [400, 422]
json_body = true
"#;
    let server = Server::start(|_| Reply::json(422, &json!({"error": "invalid JSON"})));
    let r = run_first("", toml, Category::Robustness, &server.url).await;
    assert_points(&r, 2.0, 2.0);
    let sent = &server.requests()[0];
    assert_eq!(sent.method, "PUT");
    assert_eq!(sent.content_type.as_deref(), Some("text/plain"));
    assert_eq!(sent.body, r#"{"instances": [{"x": 5,"#);

    // The same status with a body that is not JSON fails `json_body`.
    let server = Server::start(|_| Reply::text(400, "bad request"));
    let r = run_first("", toml, Category::Robustness, &server.url).await;
    assert_points(&r, 0.0, 2.0);
    assert_has(
        &r.message,
        &["response body is not valid JSON", "body: bad request"],
    );
}

#[tokio::test]
async fn a_check_without_a_body_is_a_get() {
    let toml = r#"
[[missing_data]]
name = "still serving"
points = 1
path = "/ready"
"#;
    let server = Server::start(|_| Reply::text(200, "ok"));
    let r = run_first("", toml, Category::MissingData, &server.url).await;
    assert_points(&r, 1.0, 1.0);
    let sent = &server.requests()[0];
    assert_eq!((sent.method.as_str(), sent.body.as_str()), ("GET", ""));
    assert_eq!(sent.content_type, None);
}

#[tokio::test]
async fn a_status_outside_the_accepted_set_fails_and_quotes_the_body() {
    let toml = r#"
[[robustness]]
name = "missing feature is a client error"
points = 2
path = "/predict"
body = '''{"instances":[{}]}'''
status = [400, 422]
"#;
    let server =
        Server::start(|_| Reply::text(500, "Traceback (most recent call last):\n  KeyError: 'x'"));
    let r = run_first("", toml, Category::Robustness, &server.url).await;
    assert_points(&r, 0.0, 2.0);
    assert_has(
        &r.message,
        &[
            "expected status one of 400, 422, got 500",
            "body: Traceback",
            "KeyError: 'x'",
        ],
    );
    assert!(!r.message.contains('\n'), "one line: {:?}", r.message);
}

#[tokio::test]
async fn a_refused_connection_fails_naming_the_request() {
    let r = run_first("", BATCH, Category::Correctness, &refused_url()).await;
    assert_points(&r, 0.0, 4.0);
    assert_has(&r.message, &["POST /predict: could not connect"]);
}

#[tokio::test]
async fn a_service_slower_than_the_request_timeout_fails() {
    let started = Instant::now();
    let (r, _server) = batch(|_| {
        Reply::json(
            200,
            &json!({"predictions": [{"p": 0.1}, {"p": 0.2}, {"p": 0.3}]}),
        )
        .after(SLOW)
    })
    .await;
    assert_points(&r, 0.0, 4.0);
    assert_has(
        &r.message,
        &[&format!("POST /predict: no response within {TIMEOUT_MS}ms")],
    );
    assert!(
        started.elapsed() < SLOW,
        "gave up at the timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn fewer_predictions_than_instances_fail() {
    let (r, _s) =
        batch(|_| Reply::json(200, &json!({"predictions": [{"p": 0.1}, {"p": 0.2}]}))).await;
    assert_points(&r, 0.0, 4.0);
    assert_has(
        &r.message,
        &["`/predictions` should have 3 elements, got 2"],
    );
}

#[tokio::test]
async fn a_probability_outside_0_1_fails_naming_the_instance() {
    let (r, _s) = batch(|_| {
        Reply::json(
            200,
            &json!({"predictions": [{"p": 0.1}, {"p": 1.5}, {"p": 0.3}]}),
        )
    })
    .await;
    assert_points(&r, 0.0, 4.0);
    assert_has(
        &r.message,
        &["`/predictions/1/p` should be at most 1, got 1.5"],
    );
}

#[tokio::test]
async fn a_nan_probability_is_not_json_and_fails() {
    let (r, _s) =
        batch(|_| fixture::raw_predictions(&["0.1".into(), "NaN".into(), "0.3".into()])).await;
    assert_points(&r, 0.0, 4.0);
    assert_has(&r.message, &["response body is not valid JSON", "NaN"]);
}

#[tokio::test]
async fn a_wrong_json_shape_fails_naming_what_is_missing() {
    let (r, _s) = batch(|_| Reply::json(200, &json!({"result": [0.1, 0.2, 0.3]}))).await;
    assert_points(&r, 0.0, 4.0);
    assert_has(&r.message, &["`/predictions` is missing from the response"]);
}

#[tokio::test]
async fn a_json_body_past_the_size_cap_fails() {
    let server = Server::start(|_| {
        Reply::json(
            200,
            &json!({"predictions": [{"p": 0.1}, {"p": 0.2}, {"p": 0.3}], "pad": "x".repeat(200)}),
        )
    });
    let r = run_first(
        "max_body_bytes = 64",
        BATCH,
        Category::Correctness,
        &server.url,
    )
    .await;
    assert_points(&r, 0.0, 4.0);
    assert_has(
        &r.message,
        &["response body is larger than the 64 byte limit"],
    );
}

#[tokio::test]
async fn timeouts_do_not_outlast_their_deadline_across_checks() {
    // Two slow checks in a row each cost one timeout, not the service's full delay.
    let server = Server::start(|_| Reply::text(200, "late").after(Duration::from_secs(5)));
    let started = Instant::now();
    for _ in 0..2 {
        let r = run_first("", BATCH, Category::Correctness, &server.url).await;
        assert_points(&r, 0.0, 4.0);
    }
    assert!(
        started.elapsed() < Duration::from_millis(4 * TIMEOUT_MS),
        "{:?}",
        started.elapsed()
    );
}

/// docs/grader-format.md, `[http] max_body_bytes`: "responses are cut at this size, and a cut
/// response fails its check", also a check that asserts only the status.
#[tokio::test]
async fn a_status_only_check_fails_on_a_body_past_the_size_cap() {
    let toml = r#"
[[correctness]]
name = "exposes metrics"
points = 1
path = "/metrics"
"#;
    let server = Server::start(|_| Reply::text(200, "x".repeat(10_000)));
    let r = run_first(
        "max_body_bytes = 64",
        toml,
        Category::Correctness,
        &server.url,
    )
    .await;
    assert_points(&r, 0.0, 1.0);
    assert_has(&r.message, &["64 byte limit"]);
}
