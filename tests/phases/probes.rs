//! Contract probes: a service that follows the contract to the letter passes every class; one
//! that coerces `"5"` into an integer loses exactly the cases that send one, in proportion; one
//! that fails with a 500 on a class loses that class; one that a request kills loses every case
//! after it. Failed cases are listed in the section with their feature.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use proctor::check::{Category, CheckResult};
use proctor::grader::LoadedGrader;
use proctor::phases::{Phase, PhaseOutput, Section};
use proctor::probe::contract::{check_request, RequestRules};
use proctor::probe::Class;
use proctor::report::ProbesReport;
use serde_json::{json, Value};

use crate::fixture::{self, load, rows};
use crate::server::{Reply, Req, Server};
use crate::{assert_has, assert_points, find};

/// Points of every class: 2 each, so the shares are easy to read.
const POINTS_EACH: f64 = 2.0;

fn grader(extra: &str) -> LoadedGrader {
    let d = rows(40, 5);
    // Points are spread evenly: give the total that makes 2 per class.
    let probe = load(
        &format!(
            "{}\n[probes]\ndataset = \"v\"\npoints = 1\n",
            fixture::prediction(8)
        ),
        &[("v", &d)],
    );
    let classes = Phase::checks(&proctor::phases::probes::Probes, &probe).len();
    let toml = format!(
        "{}\n[probes]\ndataset = \"v\"\npoints = {}\n{extra}",
        fixture::prediction(8),
        POINTS_EACH * classes as f64
    );
    load(&toml, &[("v", &d)])
}

/// The contract's answer to a predict request whose (possibly rewritten) body is `body`.
fn answer(g: &LoadedGrader, body: &[u8]) -> Reply {
    let rules = RequestRules {
        instances_key: "instances",
        max_batch: 8,
        max_request_bytes: 1 << 20,
    };
    match check_request(&g.datasets["v"].schema, &rules, body) {
        Ok(n) => Reply::json(200, &json!({"predictions": vec![json!({"p": 0.5}); n]})),
        Err(e) => Reply::json(422, &json!({ "error": e })),
    }
}

/// A service answering by the contract, after `rewrite` had its say on the body (the lax
/// coercions) or `override_` answered instead.
fn service(
    g: &LoadedGrader,
    rewrite: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
    override_: impl Fn(&Req) -> Option<Reply> + Send + Sync + 'static,
) -> Server {
    let g = g.clone();
    Server::start(move |req| {
        if let Some(r) = override_(req) {
            return r;
        }
        match req.path.as_str() {
            "/ready" => Reply::json(200, &json!({"ready": true})),
            "/predict" => answer(&g, &rewrite(&req.raw)),
            _ => Reply::not_found(),
        }
    })
}

async fn grade(g: &LoadedGrader, server: &Server, all: bool) -> (Vec<CheckResult>, ProbesReport) {
    let mut out = PhaseOutput::default();
    proctor::phases::probes::run(&fixture::target(&server.url, g), g, 3, all, &mut out).await;
    let Some(Section::Probes(report)) = out.section else {
        panic!("no probes section");
    };
    assert!(out
        .checks
        .iter()
        .all(|c| c.category == Category::Robustness));
    (out.checks, report)
}

fn check(checks: &[CheckResult], class: Class) -> &CheckResult {
    find(checks, &class.check_name())
}

#[tokio::test]
async fn a_strict_service_passes_every_class() {
    let g = grader("");
    let server = service(&g, |b| b.to_vec(), |_| None);
    let (checks, report) = grade(&g, &server, true).await;
    assert!(checks.len() >= 25, "{} classes", checks.len());
    for c in &checks {
        assert_points(c, POINTS_EACH, POINTS_EACH);
    }
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.sent, report.generated);
    // Every case was sent, plus the liveness requests.
    assert_eq!(server.requests_to("/predict").len() as u64, report.sent);
    assert!(!server.requests_to("/ready").is_empty());
}

/// Coerces integer-looking strings in `n`, the schema's integer, as a lax validator does.
fn coerce_n(body: &[u8]) -> Vec<u8> {
    // Rewriting drops the padding of an over-long body: leave those as they came.
    let Ok(mut v) = serde_json::from_slice::<Value>(body)
        .map_err(|_| ())
        .and_then(|v| if body.len() > 1 << 20 { Err(()) } else { Ok(v) })
    else {
        return body.to_vec();
    };
    if let Some(instances) = v.get_mut("instances").and_then(Value::as_array_mut) {
        for inst in instances {
            if let Some(n) = inst.get_mut("n") {
                if let Some(parsed) = n.as_str().and_then(|s| s.parse::<i64>().ok()) {
                    *n = Value::from(parsed);
                }
            }
        }
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn a_service_that_takes_a_string_for_an_integer_loses_that_class_in_proportion() {
    let g = grader("");
    let server = service(&g, coerce_n, |_| None);
    let (checks, report) = grade(&g, &server, true).await;
    // Number as string: for x and for n, each alone and inside a valid batch; the two cases
    // of n are coerced: half the points, and no other class loses any.
    let c = check(&checks, Class::NumberAsString);
    assert_points(c, POINTS_EACH / 2.0, POINTS_EACH);
    assert_eq!(c.message, "2 of 4 cases failed, on n");
    for c in &checks {
        if c.name != Class::NumberAsString.check_name() {
            assert_points(c, POINTS_EACH, POINTS_EACH);
        }
    }
    // The section lists both failed cases with their feature and what was sent; the messages
    // never hold a request.
    assert_eq!(report.failures.len(), 2);
    for f in &report.failures {
        assert_eq!(f.feature.as_deref(), Some("n"), "{f:?}");
        assert_eq!(f.expected, "refused");
        assert_has(&f.request_excerpt, &[r#""n":""#]);
        assert_has(&f.received, &["status 200"]);
    }
    assert!(checks.iter().all(|c| !c.message.contains("instances")));
}

#[tokio::test]
async fn a_service_that_fails_on_a_class_loses_it() {
    let g = grader("");
    // A 500 whenever a category is empty (an unguarded lookup, say).
    let server = service(
        &g,
        |b| b.to_vec(),
        |req| {
            (req.path == "/predict" && req.body.contains(r#""c":"""#))
                .then(|| Reply::text(500, "Internal Server Error"))
        },
    );
    let (checks, report) = grade(&g, &server, true).await;
    let c = check(&checks, Class::EmptyCategory);
    assert_points(c, 0.0, POINTS_EACH);
    // The empty category alone and inside a valid batch.
    assert_eq!(c.message, "2 of 2 cases failed, on c");
    let f = report
        .failures
        .iter()
        .find(|f| f.class == "empty_category")
        .unwrap();
    assert_eq!(f.feature.as_deref(), Some("c"));
    assert_has(&f.received, &["status 500"]);
    assert_points(check(&checks, Class::NanLiteral), POINTS_EACH, POINTS_EACH);
}

#[tokio::test]
async fn a_service_that_a_request_kills_fails_every_case_from_there() {
    let g = grader("");
    let dead = Arc::new(AtomicBool::new(false));
    let d = dead.clone();
    // NaN kills it: from then on, every request (readiness too) gets a 503.
    let server = service(
        &g,
        |b| b.to_vec(),
        move |req| {
            if req.body.contains("NaN") {
                d.store(true, Ordering::SeqCst);
            }
            d.load(Ordering::SeqCst)
                .then(|| Reply::json(503, &json!({"ready": false})))
        },
    );
    let (checks, report) = grade(&g, &server, true).await;
    assert!(dead.load(Ordering::SeqCst));
    assert_points(check(&checks, Class::NanLiteral), 0.0, POINTS_EACH);
    // Classes sent after the NaN case (class order) never reach the service.
    let late = check(&checks, Class::LargestBatch);
    assert_points(late, 0.0, POINTS_EACH);
    assert_has(&late.message, &["the service stopped serving"]);
    assert!(report.sent < report.generated, "{report:?}");
    // One liveness failure ends the phase: no request is sent to a dead service after it.
    assert_eq!(server.requests_to("/predict").len() as u64, report.sent);
}

#[tokio::test]
async fn a_sample_keeps_every_class_and_a_zero_class_is_not_run() {
    let g = grader("max_cases = 5\n[probes.class_points]\nempty_batch = 0\n");
    let server = service(&g, |b| b.to_vec(), |_| None);
    let (checks, report) = grade(&g, &server, false).await;
    assert!(checks
        .iter()
        .all(|c| c.name != Class::EmptyBatch.check_name()));
    // One case per class, though max_cases is smaller.
    assert_eq!(report.sent as usize, checks.len());
    assert!(!server
        .requests_to("/predict")
        .iter()
        .any(|r| r.body == r#"{"instances": []}"#));
}
