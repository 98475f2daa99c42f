//! What one load thread measures, merged across threads at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::conn;

/// Histogram range: 1 µs to 60 s at 3 significant digits (~0.1% error).
pub const HIST_MAX_US: u64 = 60_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("static bounds are valid")
}

/// Windows only need the middle of the distribution: 2 digits keep them ~20 KB each.
fn window_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 2).expect("static bounds are valid")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, HIST_MAX_US);
    h.record(us).expect("value clamped into range");
}

/// One measurement window: responses that completed in it.
#[derive(Debug, Clone)]
pub struct WindowStats {
    pub responses: u64,
    /// Sends due in this window that went out over 1 ms late.
    pub late: u64,
    pub ok: u64,
    pub corrected: Histogram<u64>,
}

#[derive(Debug, Clone)]
pub struct Stats {
    /// From the intended send time to the last body byte (graded).
    pub corrected: Histogram<u64>,
    /// From the actual send to the last body byte.
    pub uncorrected: Histogram<u64>,
    /// From the intended to the actual send: the generator's lateness plus any wait for a free
    /// connection.
    pub lateness: Histogram<u64>,
    /// From the intended send time to when the generator noticed it was due: the generator's
    /// own lateness, which decides whether the run is valid.
    pub dispatch_lateness: Histogram<u64>,
    pub dispatched: u64,
    pub dispatched_late: u64,
    /// Requests that waited for a free connection (the service was saturated).
    pub queued: u64,
    /// Measured requests still waiting for a free connection at the run's deadline: never
    /// sent, counted as timeouts at the deadline (included in `requests`).
    pub unsent: u64,
    /// Measured requests that finished (response or failure).
    pub requests: u64,
    pub ok: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub failures: BTreeMap<&'static str, u64>,
    pub body_bytes: u64,
    pub last_intended: Option<Instant>,
    pub last_sent: Option<Instant>,
    pub last_done: Option<Instant>,
    pub windows: Vec<WindowStats>,
    pub window: Duration,
    pub cpu: Duration,
    pub warnings: Vec<String>,
    /// Every thread ran at real-time priority.
    pub realtime: bool,
    ok_status: u16,
}

/// Sends more than this late count against the run's validity.
pub const LATE: Duration = Duration::from_millis(1);

impl Stats {
    pub fn new(window: Duration, windows: usize, ok_status: u16) -> Stats {
        Stats {
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            lateness: new_histogram(),
            dispatch_lateness: new_histogram(),
            dispatched: 0,
            dispatched_late: 0,
            queued: 0,
            unsent: 0,
            requests: 0,
            ok: 0,
            statuses: BTreeMap::new(),
            failures: BTreeMap::new(),
            body_bytes: 0,
            last_intended: None,
            last_sent: None,
            last_done: None,
            windows: (0..windows.max(1))
                .map(|_| WindowStats {
                    responses: 0,
                    late: 0,
                    ok: 0,
                    corrected: window_histogram(),
                })
                .collect(),
            window,
            cpu: Duration::ZERO,
            warnings: Vec::new(),
            realtime: false,
            ok_status,
        }
    }

    pub fn ok_status(&self) -> u16 {
        self.ok_status
    }

    fn window_of(&self, at: Instant, measure_start: Instant) -> usize {
        ((at.saturating_duration_since(measure_start).as_nanos() / self.window.as_nanos().max(1))
            as usize)
            .min(self.windows.len() - 1)
    }

    pub fn record_dispatch(&mut self, intended: Instant, late: Duration, measure_start: Instant) {
        self.dispatched += 1;
        if late > LATE {
            self.dispatched_late += 1;
            let w = self.window_of(intended, measure_start);
            self.windows[w].late += 1;
        }
        record(&mut self.dispatch_lateness, late);
    }

    /// Records a measured request.
    pub fn record(
        &mut self,
        intended: Instant,
        sent: Instant,
        done: Instant,
        outcome: conn::Outcome,
        measure_start: Instant,
    ) {
        self.requests += 1;
        self.last_intended = self.last_intended.max(Some(intended));
        self.last_sent = self.last_sent.max(Some(sent));
        self.last_done = self.last_done.max(Some(done));
        record(&mut self.lateness, sent.saturating_duration_since(intended));
        let w = self.window_of(done, measure_start);
        let latency = done - intended;
        match outcome {
            conn::Outcome::Response {
                status,
                body_bytes,
                truncated,
            } => {
                self.body_bytes += body_bytes;
                if truncated {
                    *self.failures.entry("body_too_large").or_default() += 1;
                } else {
                    *self.statuses.entry(status).or_default() += 1;
                    if status == self.ok_status {
                        self.ok += 1;
                        self.windows[w].ok += 1;
                    }
                }
                record(&mut self.corrected, latency);
                record(&mut self.uncorrected, done - sent);
                self.windows[w].responses += 1;
                record(&mut self.windows[w].corrected, latency);
            }
            conn::Outcome::Failed(f) => {
                *self.failures.entry(f.as_str()).or_default() += 1;
                // A timeout is a latency too (at least the deadline); leaving it out would let a
                // service that hangs look fast. Refused or reset connections have none.
                if f == conn::Failure::Timeout {
                    record(&mut self.corrected, latency);
                    record(&mut self.uncorrected, done - sent);
                    record(&mut self.windows[w].corrected, latency);
                }
                self.windows[w].responses += 1;
            }
        }
    }

    /// Records a measured request that was still waiting for a free connection at `deadline`
    /// (the run's deadline): never sent, it timed out at the deadline. Its corrected latency
    /// runs from its intended send time to the deadline, so the service is charged for it; it
    /// has no actual send, hence no uncorrected latency and no send lateness.
    pub fn record_unsent(&mut self, intended: Instant, deadline: Instant, measure_start: Instant) {
        self.requests += 1;
        self.unsent += 1;
        self.last_done = self.last_done.max(Some(deadline));
        *self
            .failures
            .entry(conn::Failure::Timeout.as_str())
            .or_default() += 1;
        let latency = deadline.saturating_duration_since(intended);
        record(&mut self.corrected, latency);
        let w = self.window_of(deadline, measure_start);
        self.windows[w].responses += 1;
        record(&mut self.windows[w].corrected, latency);
    }

    /// Adds another thread's statistics (same window layout).
    pub fn merge(&mut self, o: Stats) {
        let add = |a: &mut Histogram<u64>, b: &Histogram<u64>| a.add(b).expect("same bounds");
        add(&mut self.corrected, &o.corrected);
        add(&mut self.uncorrected, &o.uncorrected);
        add(&mut self.lateness, &o.lateness);
        add(&mut self.dispatch_lateness, &o.dispatch_lateness);
        self.dispatched += o.dispatched;
        self.dispatched_late += o.dispatched_late;
        self.queued += o.queued;
        self.unsent += o.unsent;
        self.requests += o.requests;
        self.ok += o.ok;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
        self.body_bytes += o.body_bytes;
        self.last_intended = self.last_intended.max(o.last_intended);
        self.last_sent = self.last_sent.max(o.last_sent);
        self.last_done = self.last_done.max(o.last_done);
        for (a, b) in self.windows.iter_mut().zip(o.windows) {
            a.responses += b.responses;
            a.late += b.late;
            a.ok += b.ok;
            add(&mut a.corrected, &b.corrected);
        }
        self.cpu += o.cpu;
        self.warnings.extend(o.warnings);
        self.realtime &= o.realtime;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_never_sent_times_out_at_the_deadline() {
        let t0 = Instant::now();
        let mut s = Stats::new(Duration::from_secs(1), 3, 200);
        let intended = t0 + Duration::from_millis(2500);
        let deadline = t0 + Duration::from_secs(8);
        s.record_unsent(intended, deadline, t0);
        assert_eq!((s.requests, s.unsent, s.ok), (1, 1, 0));
        assert_eq!(s.failures.get("timeout"), Some(&1));
        // Charged from its intended send time to the deadline.
        assert_eq!(s.corrected.len(), 1);
        assert!((5_495_000..=5_505_000).contains(&s.corrected.max()));
        // Never sent: no actual send to measure from.
        assert!(s.uncorrected.is_empty() && s.lateness.is_empty());
        assert_eq!(s.last_done, Some(deadline));
        assert_eq!(s.last_sent, None);
        // Completed at the deadline, after the measured period: the last window.
        assert_eq!(s.windows[2].responses, 1);
    }
}

/// A latency distribution in milliseconds, as the load generator summarizes it (and the report
/// keeps it).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub count: u64,
}
