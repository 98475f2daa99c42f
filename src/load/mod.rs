//! Load generation with HdrHistogram: open loop (constant, Poisson and ramped schedules) and
//! closed loop.
//!
//! Open loop: every request has an intended send time computed up front. Latency is measured
//! from that intended time, so a service that stalls is charged for the requests that queued
//! behind the stall (coordinated-omission correction, as in wrk2); the latency from the actual
//! send and the send lateness are kept beside it. Sends are paced with a timerfd, not tokio's
//! millisecond timer wheel. Each load thread records into its own histograms, merged at the end,
//! so there is no shared lock on the hot path. A run is judged valid or not from the
//! generator's own lateness and pace: a machine too busy to keep the schedule is the harness's
//! failure, never the service's. docs/load.md has the details and the measurements.

pub mod cli;
mod conn;
mod engine;
pub mod exclusive;
pub mod lateness;
pub mod schedule;
pub mod search;
mod stats;
pub mod sys;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use conn::TargetError;
pub use schedule::{Arrivals, ScheduleError, Stage};
pub use stats::{new_histogram, Percentiles, HIST_MAX_US};

/// What to send.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: reqwest::Method,
    pub url: String,
    /// Sent with each body.
    pub content_type: String,
    /// Bodies to draw from (seeded); empty means no body.
    pub bodies: Vec<String>,
    /// A response with this status counts as a success.
    pub ok_status: u16,
    /// Total deadline of one request: connect, headers and body.
    pub timeout: Duration,
    /// Bodies are read up to this many bytes; past it the response counts as `body_too_large`.
    pub max_body: usize,
}

/// Open or closed loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Requests at precomputed times whatever the service does, up to `concurrency` in flight.
    Open {
        stages: Vec<Stage>,
        arrivals: Arrivals,
    },
    /// Each connection sends its next request as soon as the previous one is answered: finds
    /// throughput, hides queueing (no correction is possible).
    Closed { duration: Duration },
}

/// How to send it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    /// Unmeasured time before measurement starts (at the first stage's rate).
    pub warmup: Duration,
    /// Connections, hence most requests in flight at once.
    pub concurrency: usize,
    pub seed: u64,
    /// Load threads; chosen from the rate and the cores when `None`.
    pub threads: Option<usize>,
    /// Pin load thread i to `cpus[i % len]` (keep it off the service's cores).
    pub cpus: Option<Vec<usize>>,
    /// A run that measures fewer requests is invalid.
    pub min_requests: u64,
    /// Run open-loop threads at real-time priority when allowed (see `sys::make_realtime`).
    pub realtime: bool,
    /// Sleep until this long before a send, then poll the event loop until it.
    pub spin: Duration,
    /// The graded percentiles the generator's lateness is judged against (see `lateness`);
    /// without any, over 1% of sends more than 1 ms late make the run invalid.
    pub curves: Vec<lateness::Curve>,
}

/// Default of `Plan::spin`: waking a halted virtual CPU takes tens of microseconds.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// One thread keeps well over this many requests per second on schedule.
const RATE_PER_THREAD: f64 = 20_000.0;

impl Plan {
    /// A constant open-loop rate.
    pub fn constant(
        rate: f64,
        warmup: Duration,
        duration: Duration,
        concurrency: usize,
        seed: u64,
    ) -> Plan {
        Plan {
            mode: Mode::Open {
                stages: vec![Stage::constant(rate, duration)],
                arrivals: Arrivals::Constant,
            },
            warmup,
            concurrency,
            seed,
            threads: None,
            cpus: None,
            min_requests: 1,
            realtime: true,
            spin: DEFAULT_SPIN,
            curves: Vec::new(),
        }
    }

    /// Length of the measured period.
    pub fn measured_duration(&self) -> Duration {
        match &self.mode {
            Mode::Open { stages, .. } => stages.iter().map(|s| s.duration).sum(),
            Mode::Closed { duration } => *duration,
        }
    }

    /// The mean rate the schedule asks for during measurement (open loop only).
    pub fn target_rate(&self) -> Option<f64> {
        match &self.mode {
            Mode::Open { stages, .. } => {
                let n: f64 = stages
                    .iter()
                    .map(|s| (s.from_rate + s.to_rate) / 2.0 * s.duration.as_secs_f64())
                    .sum();
                Some(n / self.measured_duration().as_secs_f64())
            }
            Mode::Closed { .. } => None,
        }
    }
}

/// Throughput and latency in one measurement window.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Window {
    /// From the start of measurement.
    pub start_secs: f64,
    /// Responses (and failures) completed in the window, per second.
    pub rate: f64,
    pub ok: u64,
    /// Sends due in the window that went out more than 1 ms late (open loop).
    pub late: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Whether the measurement can be trusted, and if not, why.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Validity {
    pub valid: bool,
    /// Empty when valid.
    pub reasons: Vec<String>,
}

/// What was measured (warm-up excluded).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// From the intended send time (graded). Responses of any status, and timeouts.
    pub corrected: Histogram<u64>,
    /// From the actual send.
    pub uncorrected: Histogram<u64>,
    /// Actual send minus intended send: generator lateness plus waits for a free connection.
    pub lateness: Histogram<u64>,
    /// When the generator noticed a send was due, minus its intended time.
    pub dispatch_lateness: Histogram<u64>,
    /// Measured requests that finished.
    pub requests: u64,
    pub ok: u64,
    /// Every request sent, the warm-up's included: what the service worked on while the load
    /// ran (the cost of a prediction is reckoned from it).
    pub sent: u64,
    /// Failures by kind: `status_500`, `timeout`, `connect`, `closed`, `body_too_large`, ...
    pub errors: BTreeMap<String, u64>,
    /// Every status received (successes included).
    pub statuses: BTreeMap<u16, u64>,
    /// Response body bytes received.
    pub body_bytes: u64,
    /// Measured requests that waited for a free connection: the service was saturated at the
    /// grader's concurrency, and the wait counts in the corrected latency.
    pub queued: u64,
    /// Measured requests still waiting for a free connection at the run's deadline (the end of
    /// the schedule plus one request timeout): never sent, counted in `requests` and as
    /// `timeout` errors, with a corrected latency up to the deadline.
    pub unsent: u64,
    /// Open loop: the mean rate the schedule asked for.
    pub target_rate: Option<f64>,
    /// Measured requests finished per second, from the start of measurement to the last
    /// completion.
    pub achieved_rate: f64,
    /// Measured requests sent per second of the schedule (open loop; equals the target rate
    /// when every send went out on time).
    pub send_rate: f64,
    pub measured_secs: f64,
    pub windows: Vec<Window>,
    /// Every window's rate within 10% of the median window's, and its median latency within
    /// 10% (or 0.1 ms); `None` when windows hold too few responses to tell.
    pub stable: Option<bool>,
    pub validity: Validity,
    /// Share of measured sends dispatched more than 1 ms late (open loop).
    pub late_share: f64,
    /// What the lateness could have done to each of the plan's curves.
    pub lateness_effects: Vec<lateness::Effect>,
    pub threads: usize,
    /// The load threads ran at real-time priority.
    pub realtime: bool,
    /// CPU time of the load threads (user + system).
    pub cpu_secs: f64,
    pub warnings: Vec<String>,
}

impl Outcome {
    /// Client CPU per finished request, in microseconds.
    pub fn cpu_us_per_request(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.cpu_secs * 1e6 / self.requests as f64
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("schedule: {0}")]
    Schedule(#[from] ScheduleError),
    #[error("{0}")]
    Plan(String),
}

/// Shares of sends over 1 ms late above this make the run invalid.
pub const MAX_LATE_SHARE: f64 = 0.01;
/// The generator must keep at least this share of the scheduled rate.
pub const MIN_SEND_RATIO: f64 = 0.99;

/// Runs the plan. `progress` is called with (sent, total) about ten times a second (`total` is
/// 0 in closed loop). Dropping the future stops the load threads. The run ends by its deadline,
/// the end of the schedule plus one request timeout, whatever the service does: requests then
/// in flight are cut and requests still waiting for a connection are never sent (`unsent`);
/// both count as timeouts.
pub async fn run(
    spec: &RequestSpec,
    plan: &Plan,
    progress: impl Fn(u64, u64),
) -> Result<Outcome, LoadError> {
    if plan.concurrency == 0 {
        return Err(LoadError::Plan("concurrency must be at least 1".into()));
    }
    let target = conn::Target::new(
        &spec.url,
        spec.method.clone(),
        (!spec.bodies.is_empty()).then_some(spec.content_type.as_str()),
        spec.timeout,
        spec.max_body,
    )
    .await?;
    let (work, total, peak_rate) = match &plan.mode {
        Mode::Open { stages, arrivals } => {
            let t = schedule::timeline(stages, plan.warmup, *arrivals, plan.seed)?;
            let total = t.offsets_ns.len() as u64;
            let peak = stages
                .iter()
                .map(|s| s.from_rate.max(s.to_rate))
                .fold(0.0, f64::max);
            (engine::Work::Open(Arc::new(t)), total, Some(peak))
        }
        Mode::Closed { duration } => {
            if duration.is_zero() {
                return Err(LoadError::Plan("the duration must be positive".into()));
            }
            (
                engine::Work::Closed {
                    duration: *duration,
                },
                0,
                None,
            )
        }
    };
    let cores = plan.cpus.clone().unwrap_or_else(sys::allowed_cpus);
    let threads = plan
        .threads
        .unwrap_or_else(|| match peak_rate {
            Some(r) => (r / RATE_PER_THREAD).ceil() as usize,
            None => cores.len(),
        })
        .clamp(1, cores.len().max(1))
        .min(plan.concurrency);
    // Polling before each send keeps the core busy for `spin` per send: at high rates (gaps
    // under four spins) the thread barely sleeps anyway, and spinning at real-time priority
    // would take most of the core from anything else on it.
    let spin = match peak_rate {
        Some(r) if r > 0.0 && plan.spin.as_secs_f64() * 4.0 > threads as f64 / r => Duration::ZERO,
        _ => plan.spin,
    };
    let measured = plan.measured_duration();
    let windows = ((measured.as_secs_f64()).floor() as usize).clamp(3, 600);
    let window = measured / windows as u32;

    let work = Arc::new(work);
    let target = Arc::new(target);
    let requests: Arc<Vec<Bytes>> = Arc::new(if spec.bodies.is_empty() {
        vec![target.request(None)]
    } else {
        spec.bodies
            .iter()
            .map(|b| target.request(Some(b)))
            .collect()
    });
    let sent = Arc::new(AtomicU64::new(0));
    let cancel = CancellationToken::new();
    let _stop_on_drop = cancel.clone().drop_guard();
    // A short lead so that starting the threads does not make the first sends late.
    let start = Instant::now() + Duration::from_millis(50);
    let measure_start = start + plan.warmup;
    let deadline = measure_start + measured + spec.timeout;
    let mut handles = Vec::with_capacity(threads);
    for index in 0..threads {
        let ctx = engine::ThreadCtx {
            index,
            threads,
            conns: plan.concurrency / threads + usize::from(index < plan.concurrency % threads),
            pin: plan.cpus.as_ref().map(|c| c[index % c.len()]),
            realtime: plan.realtime,
            spin,
            target: target.clone(),
            requests: requests.clone(),
            seed: plan.seed,
            ok_status: spec.ok_status,
            start,
            measure_start,
            deadline,
            work: work.clone(),
            window,
            windows,
            sent: sent.clone(),
            cancel: cancel.clone(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("proctor-load-{index}"))
            .spawn(move || {
                let _ = tx.send(engine::thread_main(ctx));
            })
            .map_err(|e| LoadError::Plan(format!("could not start a load thread: {e}")))?;
        handles.push(rx);
    }

    let joined = async {
        let mut all = Vec::with_capacity(handles.len());
        for h in handles {
            // A thread only ends by finishing its loop; a panic there is a harness bug.
            all.push(h.await.expect("load thread panicked"));
        }
        all
    };
    tokio::pin!(joined);
    let all = loop {
        tokio::select! {
            all = &mut joined => break all,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                progress(sent.load(Ordering::Relaxed), total)
            }
        }
    };
    progress(sent.load(Ordering::Relaxed), total);
    let mut merged = stats::Stats::new(window, windows, spec.ok_status);
    merged.realtime = true;
    for s in all {
        merged.merge(s);
    }
    Ok(Outcome {
        sent: sent.load(Ordering::Relaxed),
        ..summarize(merged, plan, measure_start, threads)
    })
}

fn summarize(s: stats::Stats, plan: &Plan, measure_start: Instant, threads: usize) -> Outcome {
    let measured_secs = plan.measured_duration().as_secs_f64();
    let since_start = |t: Option<Instant>| {
        t.map(|t| t.saturating_duration_since(measure_start).as_secs_f64())
            .unwrap_or(0.0)
    };
    let done_span = since_start(s.last_done);
    let achieved_rate = if done_span > 0.0 {
        s.requests as f64 / done_span
    } else {
        0.0
    };
    let target_rate = plan.target_rate();
    let open = target_rate.is_some();
    // How much of the schedule's pace the sends kept: the last measured send against its
    // intended time.
    let (intended_span, sent_span) = (since_start(s.last_intended), since_start(s.last_sent));
    let send_ratio = if open && sent_span > 0.0 {
        (intended_span / sent_span).min(1.0)
    } else {
        1.0
    };
    let send_rate = match target_rate {
        Some(r) => r * send_ratio,
        None => achieved_rate,
    };

    let mut errors: BTreeMap<String, u64> = s
        .failures
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    for (code, n) in &s.statuses {
        if *code != s.ok_status() {
            *errors.entry(format!("status_{code}")).or_default() += n;
        }
    }

    let windows: Vec<Window> = s
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| Window {
            start_secs: round3(i as f64 * s.window.as_secs_f64()),
            rate: round1(w.responses as f64 / s.window.as_secs_f64()),
            ok: w.ok,
            late: w.late,
            p50_ms: ms(w.corrected.value_at_quantile(0.5)),
            p99_ms: ms(w.corrected.value_at_quantile(0.99)),
        })
        .collect();
    let stable = stability(&s);

    let mut reasons = Vec::new();
    let late_share = if s.dispatched > 0 {
        s.dispatched_late as f64 / s.dispatched as f64
    } else {
        0.0
    };
    let lateness_effects: Vec<lateness::Effect> = if open && s.dispatched > 0 {
        plan.curves
            .iter()
            .map(|c| lateness::effect(&s.corrected, &s.dispatch_lateness, c))
            .collect()
    } else {
        Vec::new()
    };
    reasons.extend(
        lateness_effects
            .iter()
            .filter(|e| !e.harmless)
            .map(lateness::Effect::reason),
    );
    if open && s.dispatched > 0 && plan.curves.is_empty() {
        let late = late_share;
        if late > MAX_LATE_SHARE {
            reasons.push(format!(
                "the load generator sent {:.1}% of requests more than 1 ms late (at most {}% \
                 allowed): the machine was too busy to keep the schedule",
                late * 100.0,
                MAX_LATE_SHARE * 100.0
            ));
        }
    }
    // A slower pace is the service's doing when requests waited for a busy connection; it is
    // the generator's when they did not.
    if open && send_ratio < MIN_SEND_RATIO && s.queued == 0 {
        reasons.push(format!(
            "the load generator kept {:.1}% of the target rate (at least {}% needed)",
            send_ratio * 100.0,
            MIN_SEND_RATIO * 100.0
        ));
    }
    if s.requests < plan.min_requests {
        reasons.push(format!(
            "{} requests were measured; at least {} are needed",
            s.requests, plan.min_requests
        ));
    }
    let mut warnings = s.warnings.clone();
    warnings.dedup();
    Outcome {
        requests: s.requests,
        ok: s.ok,
        sent: s.requests,
        errors,
        statuses: s.statuses.clone(),
        body_bytes: s.body_bytes,
        queued: s.queued,
        unsent: s.unsent,
        target_rate,
        achieved_rate,
        send_rate,
        measured_secs,
        windows,
        stable,
        validity: Validity {
            valid: reasons.is_empty(),
            reasons,
        },
        late_share,
        lateness_effects,
        threads,
        realtime: s.realtime,
        cpu_secs: s.cpu.as_secs_f64(),
        warnings,
        corrected: s.corrected,
        uncorrected: s.uncorrected,
        lateness: s.lateness,
        dispatch_lateness: s.dispatch_lateness,
    }
}

/// Fewer responses per window than this and stability is not judged.
const MIN_WINDOW_RESPONSES: f64 = 20.0;

fn stability(s: &stats::Stats) -> Option<bool> {
    let n = s.windows.len();
    let responses: u64 = s.windows.iter().map(|w| w.responses).sum();
    if n < 2 || (responses as f64 / n as f64) < MIN_WINDOW_RESPONSES {
        return None;
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rates: Vec<f64> = s.windows.iter().map(|w| w.responses as f64).collect();
    let p50s: Vec<f64> = s
        .windows
        .iter()
        .map(|w| w.corrected.value_at_quantile(0.5) as f64)
        .collect();
    let (mr, mp) = (median(rates.clone()), median(p50s.clone()));
    let rates_ok = rates.iter().all(|r| (r - mr).abs() <= 0.1 * mr);
    let p50_ok = p50s.iter().all(|p| (p - mp).abs() <= (0.1 * mp).max(100.0));
    Some(rates_ok && p50_ok)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Milliseconds at the usual percentiles.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
        mean_ms: round3(h.mean() / 1000.0),
        count: h.len(),
    }
}

/// (percentile, milliseconds) for a percentile plot: 0%, then 50%, 75%, 87.5%, ... (each step
/// halves what is left) while fewer than one request in that many is left out, then the maximum
/// at 100%. About log2(requests) + 2 points.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = vec![(0.0, ms(h.min()))];
    let mut left = 0.5;
    while left * h.len() as f64 >= 1.0 {
        let q = 1.0 - left;
        points.push((q * 100.0, ms(h.value_at_quantile(q))));
        left /= 2.0;
    }
    points.push((100.0, ms(h.max())));
    points
}

/// Milliseconds at an arbitrary percentile (0-100].
pub fn percentile_ms(h: &Histogram<u64>, p: f64) -> f64 {
    h.value_at_quantile(p / 100.0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_curve_halves_what_is_left_as_far_as_the_requests_resolve() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let c = percentile_curve(&h);
        let ps: Vec<f64> = c.iter().map(|p| p.0).collect();
        // 0, 50, 75, ... down to 1 request in 512 left out, then the max: 11 points.
        assert_eq!(ps.len(), 11, "{ps:?}");
        assert_eq!((ps[0], ps[1], ps[2], ps[10]), (0.0, 50.0, 75.0, 100.0));
        assert!((ps[9] - 100.0 * (1.0 - 1.0 / 512.0)).abs() < 1e-9);
        assert!(c[0].1 == 1.0 && (c[10].1 - 1000.0).abs() < 1.0, "{c:?}");
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1), "{c:?}");
        assert!(percentile_curve(&Histogram::<u64>::new(3).unwrap()).is_empty());
    }

    #[test]
    fn percentiles_of_known_values() {
        let mut h = new_histogram();
        for ms in 1..=100u64 {
            stats::record(&mut h, Duration::from_millis(ms));
        }
        let p = percentiles(&h);
        assert!((p.p50_ms - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max_ms - 100.0).abs() < 0.1, "{p:?}");
        assert_eq!(p.count, 100);
    }

    #[test]
    fn target_rate_and_duration_follow_the_stages() {
        let mut plan = Plan::constant(
            200.0,
            Duration::from_millis(500),
            Duration::from_secs(3),
            4,
            1,
        );
        assert_eq!(plan.target_rate(), Some(200.0));
        assert_eq!(plan.measured_duration(), Duration::from_secs(3));
        plan.mode = Mode::Open {
            stages: vec![
                Stage {
                    duration: Duration::from_secs(2),
                    from_rate: 0.0,
                    to_rate: 100.0,
                },
                Stage::constant(100.0, Duration::from_secs(2)),
            ],
            arrivals: Arrivals::Poisson,
        };
        assert_eq!(plan.target_rate(), Some(75.0));
        plan.mode = Mode::Closed {
            duration: Duration::from_secs(1),
        };
        assert_eq!(plan.target_rate(), None);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = new_histogram();
        stats::record(&mut h, Duration::from_secs(3600));
        stats::record(&mut h, Duration::ZERO);
        assert_eq!(h.len(), 2);
    }

    fn stats_with(windows: &[(u64, u64)]) -> stats::Stats {
        let mut s = stats::Stats::new(Duration::from_secs(1), windows.len(), 200);
        for (w, (n, p50_us)) in s.windows.iter_mut().zip(windows) {
            w.responses = *n;
            for _ in 0..*n {
                w.corrected.record(*p50_us).unwrap();
            }
        }
        s
    }

    /// 1000 measured sends of a 10 s schedule at 100 req/s, the last one `lag` late.
    fn judged(late: u64, queued: u64, lag: Duration, min_requests: u64) -> Validity {
        let plan = Plan {
            min_requests,
            ..Plan::constant(100.0, Duration::ZERO, Duration::from_secs(10), 8, 1)
        };
        let t0 = Instant::now();
        let mut s = stats::Stats::new(Duration::from_secs(1), 10, 200);
        s.dispatched = 1000;
        s.dispatched_late = late;
        s.queued = queued;
        s.requests = 1000;
        s.last_intended = Some(t0 + Duration::from_millis(9990));
        s.last_sent = Some(t0 + Duration::from_millis(9990) + lag);
        s.last_done = s.last_sent;
        summarize(s, &plan, t0, 1).validity
    }

    #[test]
    fn lateness_is_judged_against_the_curves_when_the_plan_has_them() {
        // 5% of 1000 sends 1.5 ms late (invalid by the absolute rule), latencies 8..18 ms.
        let judge = |curve: lateness::Curve| {
            let plan = Plan {
                curves: vec![curve],
                ..Plan::constant(100.0, Duration::ZERO, Duration::from_secs(10), 8, 1)
            };
            let t0 = Instant::now();
            let mut s = stats::Stats::new(Duration::from_secs(1), 10, 200);
            for i in 0..1000u64 {
                let late = Duration::from_micros(if i % 20 == 0 { 1500 } else { 50 });
                s.record_dispatch(t0, late, t0);
                s.corrected.record(8000 + i * 10).unwrap();
            }
            s.requests = 1000;
            s.last_intended = Some(t0 + Duration::from_millis(9990));
            s.last_sent = s.last_intended;
            s.last_done = s.last_sent;
            summarize(s, &plan, t0, 1)
        };
        let far = judge(lateness::Curve {
            name: "p50 latency at 100 req/s".into(),
            percentile: 50.0,
            full_ms: 25.0,
            zero_ms: 250.0,
        });
        assert!(far.validity.valid, "{:?}", far.validity);
        assert!((far.late_share - 0.05).abs() < 1e-9);
        assert_eq!(far.lateness_effects.len(), 1);
        // A curve whose points the lateness could move: invalid, and it says which.
        let near = judge(lateness::Curve {
            name: "p50 latency at 100 req/s".into(),
            percentile: 50.0,
            full_ms: 10.0,
            zero_ms: 20.0,
        });
        assert!(!near.validity.valid);
        assert!(
            near.validity.reasons[0].contains("could have moved p50 latency at 100 req/s"),
            "{:?}",
            near.validity
        );
    }

    #[test]
    fn validity_blames_the_generator_only() {
        assert!(judged(10, 0, Duration::ZERO, 1).valid);
        let v = judged(11, 0, Duration::ZERO, 1);
        assert!(!v.valid);
        assert!(
            v.reasons[0].contains("1.1% of requests more than 1 ms late"),
            "{v:?}"
        );
        // 2% behind the schedule with no request waiting for a connection: the generator.
        let v = judged(0, 0, Duration::from_millis(200), 1);
        assert!(
            !v.valid && v.reasons[0].contains("98.0% of the target rate"),
            "{v:?}"
        );
        // The same pace with requests waiting for a busy connection: a saturated service.
        assert!(judged(0, 50, Duration::from_millis(200), 1).valid);
        let v = judged(0, 0, Duration::ZERO, 2000);
        assert!(!v.valid && v.reasons[0].contains("at least 2000"), "{v:?}");
    }

    #[test]
    fn stability_needs_windows_that_agree() {
        assert_eq!(stability(&stats_with(&[(100, 2000); 5])), Some(true));
        assert_eq!(
            stability(&stats_with(&[(100, 2000), (100, 2000), (50, 2000)])),
            Some(false)
        );
        assert_eq!(
            stability(&stats_with(&[(100, 2000), (100, 2000), (100, 3000)])),
            Some(false)
        );
        // Microsecond noise on a fast service is not instability.
        assert_eq!(
            stability(&stats_with(&[(100, 200), (100, 260), (100, 200)])),
            Some(true)
        );
        assert_eq!(stability(&stats_with(&[(5, 2000); 3])), None);
    }
}
