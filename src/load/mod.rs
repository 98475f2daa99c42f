//! Open-loop load generation with HdrHistogram.
//!
//! Every request has an intended send time computed up front (constant rate). Latency is
//! measured from that intended time, so a service that stalls is charged for the requests that
//! queued behind the stall (coordinated-omission correction, as in wrk2); the latency from the
//! actual send and the send lateness are kept beside it. Workers record into their own
//! histograms, merged at the end, so there is no shared lock on the hot path.

pub mod cli;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::http;
use crate::report::Percentiles;

/// Histogram range: 1 µs to 60 s at 3 significant digits (~0.1% error).
const HIST_MAX_US: u64 = 60_000_000;

/// What to send.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: reqwest::Method,
    pub url: String,
    pub content_type: String,
    /// Bodies to draw from; empty means no body.
    pub bodies: Vec<String>,
    /// A response with this status counts as a success.
    pub ok_status: u16,
    pub timeout: Duration,
    pub max_body: usize,
}

/// How to send it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub concurrency: usize,
    pub seed: u64,
}

impl Plan {
    pub fn warmup_requests(&self) -> usize {
        (self.rate * self.warmup.as_secs_f64()).round() as usize
    }
    pub fn measured_requests(&self) -> usize {
        ((self.rate * self.duration.as_secs_f64()).round() as usize).max(1)
    }
}

/// What was measured (warm-up excluded).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub corrected: Histogram<u64>,
    pub uncorrected: Histogram<u64>,
    pub lateness: Histogram<u64>,
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// Measured requests divided by the time from the first measured intended send to the last
    /// completion.
    pub achieved_rate: f64,
}

struct WorkerStats {
    corrected: Histogram<u64>,
    uncorrected: Histogram<u64>,
    lateness: Histogram<u64>,
    requests: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
    last_done: Option<Instant>,
}

impl WorkerStats {
    fn new() -> Self {
        WorkerStats {
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            lateness: new_histogram(),
            requests: 0,
            ok: 0,
            errors: BTreeMap::new(),
            last_done: None,
        }
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("static bounds are valid")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, HIST_MAX_US);
    h.record(us).expect("value clamped into range");
}

/// Runs the plan. `progress` is called with (sent, total) about ten times a second.
pub async fn run(
    client: &reqwest::Client,
    spec: &RequestSpec,
    plan: &Plan,
    progress: impl Fn(u64, u64),
) -> Outcome {
    let warm = plan.warmup_requests();
    let total = warm + plan.measured_requests();
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let order: Arc<Vec<usize>> = Arc::new(if spec.bodies.is_empty() {
        Vec::new()
    } else {
        (0..total)
            .map(|_| rng.random_range(0..spec.bodies.len()))
            .collect()
    });
    let spec = Arc::new(spec.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    // A short lead so that spawning the workers does not make the first sends late.
    let start = Instant::now() + Duration::from_millis(20);
    let measure_start = start + interval * warm as u32;

    let mut workers = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency.min(total) {
        let (client, spec, order, next, sent) = (
            client.clone(),
            spec.clone(),
            order.clone(),
            next.clone(),
            sent.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut stats = WorkerStats::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let intended = start + interval.mul_f64(i as f64);
                tokio::time::sleep_until(intended).await;
                let sent_at = Instant::now();
                sent.fetch_add(1, Ordering::Relaxed);
                let body = order
                    .get(i)
                    .map(|&b| (spec.content_type.as_str(), spec.bodies[b].as_str()));
                let result = http::send(
                    &client,
                    spec.method.clone(),
                    &spec.url,
                    body,
                    spec.timeout,
                    spec.max_body,
                )
                .await;
                let done = Instant::now();
                if i < warm {
                    continue;
                }
                stats.requests += 1;
                stats.last_done = Some(stats.last_done.map_or(done, |d| d.max(done)));
                record(&mut stats.lateness, sent_at - intended);
                match result {
                    Ok(r) => {
                        record(&mut stats.corrected, done - intended);
                        record(&mut stats.uncorrected, done - sent_at);
                        if r.status == spec.ok_status && !r.truncated {
                            stats.ok += 1;
                        } else {
                            let kind = if r.truncated {
                                "body_too_large".to_string()
                            } else {
                                format!("status_{}", r.status)
                            };
                            *stats.errors.entry(kind).or_default() += 1;
                        }
                    }
                    Err(e) => *stats.errors.entry(e.kind().to_string()).or_default() += 1,
                }
            }
            stats
        }));
    }

    let ticker = {
        let sent = sent.clone();
        async move {
            loop {
                progress(sent.load(Ordering::Relaxed), total as u64);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let joined = async {
        let mut all = Vec::new();
        for w in workers {
            // A worker only ends by finishing its loop; a panic there is a harness bug.
            all.push(w.await.expect("load worker panicked"));
        }
        all
    };
    let all = tokio::select! {
        all = joined => all,
        _ = ticker => unreachable!("the ticker never ends"),
    };
    merge(all, measure_start)
}

fn merge(all: Vec<WorkerStats>, measure_start: Instant) -> Outcome {
    let mut out = WorkerStats::new();
    for w in all {
        out.corrected.add(&w.corrected).expect("same bounds");
        out.uncorrected.add(&w.uncorrected).expect("same bounds");
        out.lateness.add(&w.lateness).expect("same bounds");
        out.requests += w.requests;
        out.ok += w.ok;
        for (k, v) in w.errors {
            *out.errors.entry(k).or_default() += v;
        }
        out.last_done = match (out.last_done, w.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    let span = out
        .last_done
        .map(|d| d.saturating_duration_since(measure_start))
        .unwrap_or_default();
    let achieved_rate = if span.is_zero() {
        0.0
    } else {
        out.requests as f64 / span.as_secs_f64()
    };
    Outcome {
        corrected: out.corrected,
        uncorrected: out.uncorrected,
        lateness: out.lateness,
        requests: out.requests,
        ok: out.ok,
        errors: out.errors,
        achieved_rate,
    }
}

/// Milliseconds at the usual percentiles.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let ms = |us: u64| us as f64 / 1000.0;
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
        mean_ms: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
        count: h.len(),
    }
}

/// Milliseconds at an arbitrary percentile (0-100].
pub fn percentile_ms(h: &Histogram<u64>, p: f64) -> f64 {
    h.value_at_quantile(p / 100.0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_values() {
        let mut h = new_histogram();
        for ms in 1..=100u64 {
            record(&mut h, Duration::from_millis(ms));
        }
        let p = percentiles(&h);
        assert!((p.p50_ms - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() < 0.1, "{p:?}");
        assert!((p.max_ms - 100.0).abs() < 0.1, "{p:?}");
        assert_eq!(p.count, 100);
    }

    #[test]
    fn request_counts_follow_rate_and_duration() {
        let plan = Plan {
            rate: 200.0,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(3),
            concurrency: 4,
            seed: 1,
        };
        assert_eq!(plan.warmup_requests(), 100);
        assert_eq!(plan.measured_requests(), 600);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = new_histogram();
        record(&mut h, Duration::from_secs(3600));
        record(&mut h, Duration::ZERO);
        assert_eq!(h.len(), 2);
    }
}
