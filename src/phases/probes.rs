//! Contract probes: the cases `probe` derives from the dataset's schema, sent one at a time to
//! the prediction path, each judged as refused (a status of `reject_status` with a JSON object
//! body) or answered (`200`, one prediction per instance), and scored per class on a curve: a
//! class earns its points times the share of its cases the service got right, so one weakness
//! costs in proportion.
//!
//! Every few cases, and after the last, the readiness path must still answer as it did when the
//! service became ready: a service that a bad request kills fails the cases since the last good
//! liveness answer and every case it could no longer be sent.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::check::{Category, CheckResult, DeclaredCheck};
use crate::grader::{LoadedGrader, PredictionApi, ProbesSpec};
use crate::probe::{self, Case, Class, Envelope, Expected};
use crate::report::{ProbeClassReport, ProbeFailure, ProbesReport};
use crate::target::Target;

/// Cases between two liveness requests.
const LIVENESS_EVERY: usize = 20;
/// Bytes of a request body kept in the report.
const EXCERPT_BYTES: usize = 300;

/// The cases to send, how many were generated, and the points of each class.
type Planned = (Vec<Case>, usize, Vec<(Class, f64)>);

/// The generated cases of the grader's `[probes]` worth points, with the points of each class
/// (`None`: no probes declared), and how many were generated: with `sample`, the seeded
/// sample of at most `max_cases` (`--probe all` sends every case).
fn cases(loaded: &LoadedGrader, seed: u64, sample: bool) -> Option<Planned> {
    let g = &loaded.grader;
    let (spec, api) = (g.probes.as_ref()?, g.prediction.as_ref()?);
    let data = loaded.datasets.get(&spec.dataset)?;
    let mut rng = crate::data::rng(seed, &format!("probes{}", spec.salt));
    let base = probe::generate::base_rows(&data.schema, &data.rows, spec.base_rows, &mut rng);
    let env = Envelope {
        body_template: &api.body_template,
        mark: crate::grader::placeholder(api.tensors.is_some()),
        max_batch: api.max_batch,
        max_request_bytes: spec.max_request_bytes,
        tensors: api.tensors.as_ref().map(|t| &t.by_feature),
    };
    let all = probe::generate(&data.schema, &base, &env);
    let mut classes: Vec<Class> = all.iter().map(|c| c.class).collect();
    classes.dedup();
    let points = spec.class_points(&classes);
    let mut worth: Vec<Case> = all
        .into_iter()
        .filter(|c| points.iter().any(|(p, _)| *p == c.class))
        .collect();
    let generated = worth.len();
    if sample {
        let mut rng = crate::data::rng(seed, &format!("probes-sample{}", spec.salt));
        worth = probe::sample(worth, spec.max_cases, &mut rng);
    }
    Some((worth, generated, points))
}

/// What happened to one case.
struct Outcome {
    ok: bool,
    received: String,
}

/// Sends `body` as the prediction request, with the request timeout as a total deadline and
/// the response cut at the body cap (the hardened client's rules, for a body of raw bytes).
async fn send_raw(
    target: &Target,
    path: &str,
    body: Vec<u8>,
) -> Result<crate::http::Response, String> {
    let deadline = target.request_timeout;
    let fut = async {
        let mut resp = target
            .client
            .post(target.url(path))
            .timeout(deadline)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e, deadline))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e, deadline))? {
            let room = target.max_body - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(crate::http::Response {
            status,
            content_type: None,
            body,
            truncated,
        })
    };
    match tokio::time::timeout(deadline + Duration::from_millis(100), fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("no response within {deadline:?}")),
    }
}

fn describe(e: &reqwest::Error, deadline: Duration) -> String {
    if e.is_timeout() {
        format!("no response within {deadline:?}")
    } else {
        format!("request failed: {}", crate::http::root_cause(e))
    }
}

fn judge(
    case: &Case,
    sent: &Result<crate::http::Response, String>,
    spec: &ProbesSpec,
    api: &PredictionApi,
) -> Outcome {
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                ok: false,
                received: e.clone(),
            }
        }
    };
    let json: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let ok = match case.expected {
        Expected::Rejected => {
            spec.reject_status.accepts(resp.status) && json.as_ref().is_some_and(Value::is_object)
        }
        Expected::Accepted { instances } => {
            resp.status == 200
                && json.is_some_and(|mut v| api.predictions_of(&mut v, instances).is_ok())
        }
    };
    Outcome {
        ok,
        received: format!("status {}: {}", resp.status, resp.excerpt(120)),
    }
}

/// Whether the readiness path still answers as readiness expects; `Err` says what it did.
async fn alive(target: &Target, loaded: &LoadedGrader) -> Result<(), String> {
    let r = &loaded.grader.readiness;
    let resp = crate::http::send(
        &target.client,
        reqwest::Method::GET,
        &target.url(&r.path.0),
        None,
        target.request_timeout,
        target.max_body,
    )
    .await
    .map_err(|e| e.to_string())?;
    r.expect().check(&resp)
}

/// Sends the cases and scores them; the checks and section land in `out`.
pub async fn run(
    target: &Target,
    loaded: &LoadedGrader,
    seed: u64,
    probe_all: bool,
    out: &mut super::PhaseOutput,
) {
    let g = &loaded.grader;
    let (Some(spec), Some(api)) = (&g.probes, &g.prediction) else {
        return;
    };
    let vis = spec.visibility.unwrap_or(g.grader.visibility);
    let Some((cases, generated, points)) = cases(loaded, seed, !probe_all) else {
        return;
    };
    if cases.is_empty() {
        for (class, pts) in &points {
            out.checks.push(
                DeclaredCheck::new(class.check_name(), Category::Robustness, *pts, vis).failed(
                    format!(
                        "dataset {:?} has no valid row to build probes from",
                        spec.dataset
                    ),
                ),
            );
        }
        return;
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..cases.len()).map(|_| None).collect();
    let mut checked_up_to = 0;
    let mut dead: Option<String> = None;
    for (i, case) in cases.iter().enumerate() {
        let sent = send_raw(target, &api.path.0, case.body.clone()).await;
        let transport_error = sent.is_err();
        outcomes[i] = Some(judge(case, &sent, spec, api));
        let last = i + 1 == cases.len();
        if transport_error || last || (i + 1) % LIVENESS_EVERY == 0 {
            if let Err(why) = alive(target, loaded).await {
                let reason = format!(
                    "the service stopped serving after one of these requests (GET {} then: {why})",
                    g.readiness.path.0
                );
                for o in outcomes[checked_up_to..=i].iter_mut().flatten() {
                    o.ok = false;
                    o.received = format!("{}; {reason}", o.received);
                }
                dead = Some(reason);
                break;
            }
            checked_up_to = i + 1;
        }
    }
    let not_sent = "not sent: the service had stopped serving".to_string();
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome {
                ok: false,
                received: not_sent.clone(),
            })
        })
        .collect();

    let data = &loaded.datasets[&spec.dataset];
    let feature_order = |f: &str| data.schema.feature(f).map_or(usize::MAX, |(i, _)| i);
    let mut by_class: BTreeMap<Class, Vec<(&Case, &Outcome)>> = BTreeMap::new();
    for (c, o) in cases.iter().zip(&outcomes) {
        by_class.entry(c.class).or_default().push((c, o));
    }
    let mut report = ProbesReport {
        dataset: spec.dataset.clone(),
        generated: generated as u64,
        sent: outcomes.iter().filter(|o| o.received != not_sent).count() as u64,
        hidden: vis == crate::check::Visibility::Hidden,
        ..Default::default()
    };
    for (class, max) in &points {
        let results = by_class.remove(class).unwrap_or_default();
        let failed: Vec<&(&Case, &Outcome)> = results.iter().filter(|(_, o)| !o.ok).collect();
        let share = failed.len() as f64 / results.len().max(1) as f64;
        let mut features: Vec<&str> = failed
            .iter()
            .filter_map(|(c, _)| c.feature.as_deref())
            .collect();
        features.sort_by_key(|f| feature_order(f));
        features.dedup();
        let message = if failed.is_empty() {
            format!("all {} cases handled as the contract says", results.len())
        } else {
            let on = if features.is_empty() {
                String::new()
            } else {
                format!(", on {}", features.join(", "))
            };
            let died = dead
                .as_ref()
                .map_or("", |_| "; the service stopped serving during the probes");
            format!(
                "{} of {} cases failed{on}{died}",
                failed.len(),
                results.len()
            )
        };
        out.checks.push(CheckResult {
            grader: String::new(),
            name: class.check_name(),
            category: Category::Robustness,
            points: crate::score::linear_points(share, 0.0, 1.0, *max),
            max_points: *max,
            passed: failed.is_empty(),
            message,
            visibility: vis,
        });
        report.classes.push(ProbeClassReport {
            class: class.name().into(),
            cases: results.len() as u64,
            failed: failed.len() as u64,
        });
        for (c, o) in failed {
            let head = &c.body[..c.body.len().min(EXCERPT_BYTES)];
            report.failures.push(ProbeFailure {
                class: class.name().into(),
                feature: c.feature.clone(),
                request_excerpt: crate::http::sanitize(
                    &String::from_utf8_lossy(head),
                    EXCERPT_BYTES,
                ),
                expected: match c.expected {
                    Expected::Rejected => "refused".into(),
                    Expected::Accepted { .. } => "answered".into(),
                },
                received: o.received.clone(),
            });
        }
    }
    out.section = Some(super::Section::Probes(report));
}

/// Contract probes generated from the dataset's schema (category `robustness`).
pub struct Probes;

impl super::Phase for Probes {
    fn name(&self) -> &'static str {
        "probes"
    }

    fn declared(&self, loaded: &LoadedGrader) -> bool {
        loaded.grader.probes.is_some() && loaded.grader.prediction.is_some()
    }

    fn checks(&self, loaded: &LoadedGrader) -> Vec<DeclaredCheck> {
        let g = &loaded.grader;
        let Some(spec) = &g.probes else {
            return Vec::new();
        };
        let vis = spec.visibility.unwrap_or(g.grader.visibility);
        // The classes do not depend on the seed; only the rows and the sample do.
        let Some((_, _, points)) = cases(loaded, 0, false) else {
            return Vec::new();
        };
        points
            .into_iter()
            .map(|(c, p)| DeclaredCheck::new(c.check_name(), Category::Robustness, p, vis))
            .collect()
    }

    fn budget(&self, loaded: &LoadedGrader) -> Duration {
        let g = &loaded.grader;
        // Every case (`--probe all` sends them all) and a liveness request every few.
        let n = cases(loaded, 0, false).map_or(0, |(c, _, _)| c.len());
        let requests = n + n.div_ceil(LIVENESS_EVERY);
        super::budget_for(Duration::ZERO, requests, 0, g.http.request_timeout())
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(run(
            cx.target,
            cx.grader,
            cx.plan.seed,
            cx.plan.probe_all,
            out,
        ))
    }
}
