//! Lifecycle: how the service starts, stops and starts again, as an orchestrator drives it.
//!
//! - **Cold start**: from the container's start to the first ready answer (the run measured it
//!   when readiness passed).
//! - **Graceful shutdown**: under a steady load of the largest batches the API allows, on
//!   several connections (so that requests are in flight whenever the signal lands, even for a
//!   fast service), proctor sends SIGTERM as `docker stop` and Kubernetes do. The requests in
//!   flight at that moment must be answered (no reset, no 5xx); new connections may be
//!   refused; the process must exit 0 within the grace period, else it is killed, and that is
//!   recorded. A request counts as in flight when it was sent before the signal was sent and
//!   ended after it was delivered: a server that exits at once drops exactly those. proctor
//!   sends the signal straight to the container's first process when it can (`kill(2)`, a
//!   window of microseconds); through the engine's API the window is tens of milliseconds on a
//!   busy machine, and a request that ended inside it is left out.
//! - **Restart**: the same container (same image, same sandbox, its anonymous volumes; its
//!   /tmp starts empty) is started again; it must become ready and pass the grader's
//!   correctness checks it passed before the stop (those it fails anyway cost their own
//!   category, not this one).
//!
//! It stops the service, so it runs after every other phase of every grader (`disrupts`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use rand::{RngExt, SeedableRng};

use crate::check::{Category, CheckResult, DeclaredCheck, Visibility};
use crate::control::ServiceControl;
use crate::grader::{LifecycleSpec, LoadedGrader, ShutdownSpec};
use crate::http;
use crate::phases::readiness::{self, ReadyOutcome};
use crate::phases::Needs;
use crate::report::{LifecycleReport, RestartReport, ShutdownReport};
use crate::target::Target;

pub const COLD_START: &str = "starts and answers ready quickly (cold start)";
pub const IN_FLIGHT: &str = "answers the requests in flight when SIGTERM arrives";
pub const EXIT: &str = "exits with code 0 within the grace period after SIGTERM";
pub const RESTART_READY: &str = "is ready again after a restart of the same container";
pub const RESTART_CORRECT: &str = "answers the correctness checks after a restart";

/// One request of the shutdown load, as it ended.
#[derive(Debug, Clone)]
struct Sent {
    sent: Instant,
    ended: Instant,
    /// `ok`, or how it failed: `status_503`, `reset`, `refused`, `timeout`.
    outcome: String,
}

pub struct Lifecycle;

fn vis(spec: &LifecycleSpec, g: &LoadedGrader) -> Visibility {
    spec.visibility.unwrap_or(g.grader.grader.visibility)
}

fn check(name: &str, points: f64, max: f64, message: String, vis: Visibility) -> CheckResult {
    CheckResult {
        grader: String::new(),
        name: name.to_string(),
        category: Category::Lifecycle,
        points: crate::score::round2(points),
        max_points: max,
        passed: points >= max,
        message,
        visibility: vis,
    }
}

impl super::Phase for Lifecycle {
    fn name(&self) -> &'static str {
        "lifecycle"
    }

    fn declared(&self, g: &LoadedGrader) -> bool {
        g.grader.lifecycle.is_some()
    }

    fn checks(&self, g: &LoadedGrader) -> Vec<DeclaredCheck> {
        let Some(spec) = &g.grader.lifecycle else {
            return Vec::new();
        };
        let v = vis(spec, g);
        let mut out = Vec::new();
        if let Some(c) = &spec.cold_start {
            out.push(DeclaredCheck::new(
                COLD_START,
                Category::Lifecycle,
                c.points.0,
                v,
            ));
        }
        if let Some(s) = &spec.shutdown {
            out.push(DeclaredCheck::new(
                IN_FLIGHT,
                Category::Lifecycle,
                s.in_flight_points.0,
                v,
            ));
            out.push(DeclaredCheck::new(
                EXIT,
                Category::Lifecycle,
                s.exit_points.0,
                v,
            ));
        }
        if let Some(r) = &spec.restart {
            out.push(DeclaredCheck::new(
                RESTART_READY,
                Category::Lifecycle,
                r.ready_points.0,
                v,
            ));
            out.push(DeclaredCheck::new(
                RESTART_CORRECT,
                Category::Lifecycle,
                r.correctness_points.0,
                v,
            ));
        }
        out
    }

    fn budget(&self, g: &LoadedGrader) -> Duration {
        let Some(spec) = &g.grader.lifecycle else {
            return Duration::ZERO;
        };
        let timeout = g.grader.http.request_timeout();
        let mut declared = Duration::ZERO;
        if let Some(s) = &spec.shutdown {
            // The load, the grace period, a kill's own wait, and the requests left in flight.
            declared += Duration::from_secs_f64(s.load_secs + s.grace_secs + 10.0) + 2 * timeout;
        }
        if spec.restart.is_some() {
            declared += Duration::from_secs(g.grader.submission.ready_timeout_secs);
        }
        // The correctness checks run before the stop and after the restart.
        let requests = 2 * g.grader.correctness.len();
        super::budget_for(declared, requests, 0, timeout)
    }

    fn needs(&self) -> Needs {
        Needs::Container
    }

    fn disrupts(&self) -> bool {
        true
    }

    /// Its shutdown check tells requests in flight at the signal from those answered before it
    /// by the client's clock: a client starved of CPU by another grade reads answers late, and
    /// a server that dies at once would then pass. So it runs alone, as a latency load does.
    fn measures_latency(&self, _: &LoadedGrader) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let (Some(spec), Some(container)) = (&cx.grader.grader.lifecycle, cx.container) else {
                return;
            };
            let v = vis(spec, cx.grader);
            let mut report = LifecycleReport {
                cold_start_seconds: container
                    .startup()
                    .cold_start
                    .map(|d| (d.as_secs_f64() * 100.0).round() / 100.0),
                ..Default::default()
            };
            if let Some(c) = &spec.cold_start {
                out.checks.push(match report.cold_start_seconds {
                    Some(s) => check(
                        COLD_START,
                        c.points_for(s),
                        c.points.0,
                        format!(
                            "ready {s:.1} s after the container started (full points within {} s, \
                             none from {} s)",
                            c.full, c.zero
                        ),
                        v,
                    ),
                    None => check(COLD_START, 0.0, c.points.0, "not measured".into(), v),
                });
            }
            out.section = Some(super::Section::Lifecycle(report.clone()));
            let Some(s) = &spec.shutdown else {
                return;
            };
            // The correctness checks this service passes now: a restart must keep them (the
            // ones it fails anyway are another category's to score).
            let before = match &spec.restart {
                Some(_) => passing_checks(cx, cx.target).await,
                None => Vec::new(),
            };
            let shutdown = match shutdown(cx, container, s).await {
                Ok(r) => r,
                Err(e) => {
                    out.machine_failure = Some(e);
                    return;
                }
            };
            out.checks.extend(grade_shutdown(s, &shutdown, v));
            report.shutdown = Some(shutdown);
            out.section = Some(super::Section::Lifecycle(report.clone()));
            let Some(r) = &spec.restart else {
                return;
            };
            let url = match container.restart().await {
                Ok(u) => u,
                Err(e) => {
                    out.machine_failure = Some(e);
                    return;
                }
            };
            let restart = restart(cx, &url, &before).await;
            let (ready, correct) = grade_restart(r, &restart, v);
            out.checks.push(ready);
            out.checks.push(correct);
            report.restart = Some(restart);
            out.section = Some(super::Section::Lifecycle(report));
        })
    }
}

/// Loads the service, sends SIGTERM while requests are in flight, and watches it end.
async fn shutdown(
    cx: &super::Context<'_>,
    container: &dyn ServiceControl,
    spec: &ShutdownSpec,
) -> Result<ShutdownReport, crate::control::MachineError> {
    let g = &cx.grader.grader;
    let api = g
        .prediction
        .as_ref()
        .expect("validated: shutdown needs [prediction]");
    let data = &cx.grader.datasets[&spec.dataset];
    // The largest batch, of complete rows (a service's handling of nulls is graded elsewhere).
    let mut rows = super::predict::rows_of(data, true);
    if rows.is_empty() {
        rows = super::predict::rows_of(data, false);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cx.plan.seed ^ 0x5147_5445_524d);
    let batch: Vec<_> = (0..api.max_batch)
        .map(|_| data.instance(&data.rows[rows[rng.random_range(0..rows.len())]]))
        .collect();
    let body = Arc::new(api.body(&batch));
    let url = Arc::new(cx.target.url(&api.path.0));
    let timeout = cx.target.request_timeout + Duration::from_secs_f64(spec.grace_secs);

    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let in_flight = Arc::new(AtomicU64::new(0));
    // Set once the engine has delivered the signal: each connection then sends one request
    // more (to see what a new request meets) and stops.
    let signalled = Arc::new(AtomicBool::new(false));
    let mut tasks = AbortOnDrop(Vec::new());
    for _ in 0..spec.connections {
        // One client, one connection: the requests of a connection go one after another.
        let client = http::client(Duration::from_secs(2), http::Connections::KeepAlive(1));
        let (log, in_flight, signalled) = (log.clone(), in_flight.clone(), signalled.clone());
        let (body, url, max_body) = (body.clone(), url.clone(), cx.target.max_body);
        tasks.0.push(tokio::spawn(async move {
            let mut after = 0;
            while after < 1 {
                if signalled.load(Ordering::SeqCst) {
                    after += 1;
                }
                let sent = Instant::now();
                in_flight.fetch_add(1, Ordering::SeqCst);
                let r = http::send(
                    &client,
                    reqwest::Method::POST,
                    &url,
                    Some(("application/json", &body)),
                    timeout,
                    max_body,
                )
                .await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let outcome = match r {
                    Ok(resp) if (200..300).contains(&resp.status) => "ok".to_string(),
                    Ok(resp) => format!("status_{}", resp.status),
                    Err(http::HttpError::Timeout(_)) => "timeout".into(),
                    Err(http::HttpError::Connect(_)) => "refused".into(),
                    Err(http::HttpError::Other(_)) => "reset".into(),
                };
                log.lock().unwrap_or_else(|e| e.into_inner()).push(Sent {
                    sent,
                    ended: Instant::now(),
                    outcome,
                });
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(spec.load_secs)).await;
    // The load's requests are slow ones: the connections nearly always all have one out. Wait
    // a moment for that when they do not (a connection between two requests has nothing the
    // server could drop), and for at least one at worst.
    let wait = Instant::now();
    let all = spec.connections as u64;
    while wait.elapsed() < Duration::from_secs(2) {
        let out = in_flight.load(Ordering::SeqCst);
        if out >= all || (out > 0 && wait.elapsed() >= Duration::from_secs(1)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let sent = container.signal("SIGTERM").await;
    signalled.store(true, Ordering::SeqCst);
    let signal = sent?;
    let (before_signal, delivered) = (signal.sent, signal.delivered);
    let grace = Duration::from_secs_f64(spec.grace_secs);
    let (exit_code, seconds_to_exit, killed) = match container.wait_stopped(grace).await? {
        // Timed from the signal (to a tenth of a second: the stop is polled).
        Some(stopped) => (
            stopped.exit_code,
            Some((delivered - before_signal + stopped.after).as_secs_f64()),
            false,
        ),
        None => {
            container.signal("SIGKILL").await?;
            let stopped = container.wait_stopped(Duration::from_secs(10)).await?;
            (
                stopped.and_then(|s| s.exit_code),
                Some(before_signal.elapsed().as_secs_f64()),
                true,
            )
        }
    };
    // Every request ends by its own deadline; the service is gone by now.
    for t in &mut tasks.0 {
        let _ = tokio::time::timeout(timeout + Duration::from_secs(1), t).await;
    }
    let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut r = ShutdownReport {
        signal_direct: signal.direct,
        signal_delivery_ms: ((delivered - before_signal).as_secs_f64() * 1e5).round() / 100.0,
        connections: spec.connections,
        batch_size: api.max_batch,
        exit_code,
        seconds_to_exit: seconds_to_exit.map(|s| (s * 100.0).round() / 100.0),
        killed,
        grace_seconds: spec.grace_secs,
        ..Default::default()
    };
    classify(&log, before_signal, delivered, &mut r);
    Ok(r)
}

/// The load's connections, stopped whenever the phase ends (also on an engine failure, or
/// when the phase is cut at its budget).
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Sorts the load's requests by when they were sent and ended against the signal.
fn classify(log: &[Sent], before_signal: Instant, delivered: Instant, r: &mut ShutdownReport) {
    let mut failures = BTreeMap::new();
    for s in log {
        let ok = s.outcome == "ok";
        if s.ended < before_signal {
            r.answered_before += u64::from(ok);
        } else if s.sent < delivered && s.ended >= delivered {
            r.in_flight += 1;
            if ok {
                r.in_flight_completed += 1;
            } else {
                *failures.entry(s.outcome.clone()).or_insert(0) += 1;
            }
        } else if s.sent >= delivered {
            r.sent_after += 1;
            r.answered_after += u64::from(ok);
        }
    }
    r.in_flight_failures = failures;
}

fn grade_shutdown(spec: &ShutdownSpec, r: &ShutdownReport, v: Visibility) -> Vec<CheckResult> {
    let failures: Vec<String> = r
        .in_flight_failures
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let in_flight = if r.in_flight == 0 {
        // Not one request was in flight: nothing shows whether it drains (a service that
        // answers batches of the largest size this fast is rare; the report says so).
        check(
            IN_FLIGHT,
            0.0,
            spec.in_flight_points.0,
            format!(
                "no request was in flight when SIGTERM was sent ({} connections sending batches \
                 of {}): not shown to drain",
                r.connections, r.batch_size
            ),
            v,
        )
    } else {
        let share = r.in_flight_completed as f64 / r.in_flight as f64;
        check(
            IN_FLIGHT,
            spec.in_flight_points.0 * share,
            spec.in_flight_points.0,
            if failures.is_empty() {
                format!(
                    "all {} requests in flight when SIGTERM arrived were answered",
                    r.in_flight
                )
            } else {
                format!(
                    "{} of {} requests in flight when SIGTERM arrived were answered; the others \
                     failed ({}): a server that stops without draining drops them",
                    r.in_flight_completed,
                    r.in_flight,
                    failures.join(", ")
                )
            },
            v,
        )
    };
    let exit_ok = !r.killed && r.exit_code == Some(0);
    let exit = check(
        EXIT,
        if exit_ok { spec.exit_points.0 } else { 0.0 },
        spec.exit_points.0,
        match (r.killed, r.exit_code, r.seconds_to_exit) {
            (true, _, _) => format!(
                "still running {} s after SIGTERM: killed with SIGKILL (handle SIGTERM, or run \
                 a server that does)",
                spec.grace_secs
            ),
            (false, Some(0), Some(s)) => format!("exited with code 0, {s:.1} s after SIGTERM"),
            (false, Some(code), Some(s)) => format!(
                "exited with code {code}, {s:.1} s after SIGTERM (expected 0: a clean shutdown)"
            ),
            _ => "its exit could not be read".to_string(),
        },
        v,
    );
    vec![in_flight, exit]
}

/// The names of the grader's correctness checks that pass against `target`.
async fn passing_checks(cx: &super::Context<'_>, target: &Target) -> Vec<String> {
    let g = &cx.grader.grader;
    let mut out = Vec::new();
    for spec in &g.correctness {
        let c = super::checks::run_check(target, spec, Category::Correctness, g.grader.visibility)
            .await;
        if c.passed {
            out.push(c.name);
        }
    }
    out
}

/// Readiness of the restarted service, then the correctness checks that passed before the
/// stop (`before`), against it.
async fn restart(cx: &super::Context<'_>, url: &str, before: &[String]) -> RestartReport {
    let g = &cx.grader.grader;
    let target = Target::new(url, &g.http);
    let mut r = RestartReport {
        correctness_total: before.len(),
        ..Default::default()
    };
    match readiness::wait_ready(&target, &g.readiness, cx.plan.ready_timeout).await {
        ReadyOutcome::Ready { after } => {
            r.ready = true;
            r.seconds_to_ready = Some((after.as_secs_f64() * 100.0).round() / 100.0);
        }
        ReadyOutcome::TimedOut { last } => {
            r.last_probe = Some(last);
            return r;
        }
    }
    let now = passing_checks(cx, &target).await;
    r.correctness_passed = before.iter().filter(|n| now.contains(n)).count();
    r
}

fn grade_restart(
    spec: &crate::grader::RestartSpec,
    r: &RestartReport,
    v: Visibility,
) -> (CheckResult, CheckResult) {
    let ready = if r.ready {
        check(
            RESTART_READY,
            spec.ready_points.0,
            spec.ready_points.0,
            format!(
                "ready again {:.1} s after the same container was started again",
                r.seconds_to_ready.unwrap_or(0.0)
            ),
            v,
        )
    } else {
        check(
            RESTART_READY,
            0.0,
            spec.ready_points.0,
            format!(
                "not ready after the same container was started again (last probe: {}); does \
                 it depend on files its first run left behind?",
                r.last_probe.as_deref().unwrap_or("none")
            ),
            v,
        )
    };
    let share = if r.correctness_total == 0 {
        f64::from(u8::from(r.ready))
    } else {
        r.correctness_passed as f64 / r.correctness_total as f64
    };
    let correct = check(
        RESTART_CORRECT,
        spec.correctness_points.0 * share,
        spec.correctness_points.0,
        format!(
            "{} of the {} correctness checks that passed before the restart passed after it",
            r.correctness_passed, r.correctness_total
        ),
        v,
    );
    (ready, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(t0: Instant, sent_ms: u64, ended_ms: u64, outcome: &str) -> Sent {
        Sent {
            sent: t0 + Duration::from_millis(sent_ms),
            ended: t0 + Duration::from_millis(ended_ms),
            outcome: outcome.into(),
        }
    }

    #[test]
    fn requests_are_in_flight_when_they_span_the_signals_delivery() {
        let t0 = Instant::now();
        let (before, delivered) = (
            t0 + Duration::from_millis(100),
            t0 + Duration::from_millis(110),
        );
        let log = [
            sent(t0, 0, 50, "ok"),         // answered before
            sent(t0, 60, 105, "ok"),       // ended while the signal was being sent: left out
            sent(t0, 70, 150, "ok"),       // in flight, answered
            sent(t0, 80, 120, "reset"),    // in flight, dropped
            sent(t0, 130, 131, "refused"), // after: may be refused
        ];
        let mut r = ShutdownReport::default();
        classify(&log, before, delivered, &mut r);
        assert_eq!(r.answered_before, 1);
        assert_eq!((r.in_flight, r.in_flight_completed), (2, 1));
        assert_eq!(r.in_flight_failures.get("reset"), Some(&1));
        assert_eq!((r.sent_after, r.answered_after), (1, 0));
    }

    fn spec() -> ShutdownSpec {
        toml::from_str("dataset = \"d\"\nin_flight_points = 3\nexit_points = 2\n").unwrap()
    }

    #[test]
    fn a_dropped_request_or_a_kill_costs_its_own_check_only() {
        let v = Visibility::Visible;
        let drained = ShutdownReport {
            in_flight: 4,
            in_flight_completed: 4,
            exit_code: Some(0),
            seconds_to_exit: Some(0.4),
            ..Default::default()
        };
        let c = grade_shutdown(&spec(), &drained, v);
        assert!(c.iter().all(|c| c.passed), "{c:?}");
        let dropped = ShutdownReport {
            in_flight_completed: 1,
            in_flight_failures: BTreeMap::from([("reset".to_string(), 3)]),
            ..drained.clone()
        };
        let c = grade_shutdown(&spec(), &dropped, v);
        assert_eq!((c[0].points, c[1].points), (0.75, 2.0));
        assert!(c[0].message.contains("3 reset"), "{}", c[0].message);
        let ignored = ShutdownReport {
            killed: true,
            exit_code: Some(137),
            ..drained
        };
        let c = grade_shutdown(&spec(), &ignored, v);
        assert_eq!((c[0].points, c[1].points), (3.0, 0.0));
        assert!(
            c[1].message.contains("killed with SIGKILL"),
            "{}",
            c[1].message
        );
    }

    #[test]
    fn a_restart_that_never_gets_ready_fails_both_checks() {
        let s: crate::grader::RestartSpec =
            toml::from_str("ready_points = 2\ncorrectness_points = 2\n").unwrap();
        let r = RestartReport {
            ready: false,
            last_probe: Some("could not connect".into()),
            correctness_total: 5,
            ..Default::default()
        };
        let (ready, correct) = grade_restart(&s, &r, Visibility::Visible);
        assert_eq!((ready.points, correct.points), (0.0, 0.0));
        assert!(
            ready.message.contains("files its first run left"),
            "{}",
            ready.message
        );
    }
}
