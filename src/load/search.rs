//! Throughput search: the highest open-loop rate the service sustains within a latency
//! objective (e.g. p99 <= 100 ms) and an error budget, in a bounded number of steps, as Triton's
//! perf_analyzer or MLPerf's Server scenario do. The rate doubles until a step fails, then
//! bisects between the highest passing and the lowest failing rate until they are within
//! `precision` of each other or the steps run out.

use std::time::Duration;

use serde::Serialize;

use super::{percentile_ms, run, Arrivals, LoadError, Mode, Plan, RequestSpec, Stage};

#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    /// The objective: `percentile` of the corrected latency at or under `slo_ms`.
    pub percentile: f64,
    pub slo_ms: f64,
    /// Largest share of failed requests a passing step may have.
    pub max_error_rate: f64,
    pub start_rate: f64,
    pub max_rate: f64,
    pub max_steps: usize,
    /// Stop when the highest pass and the lowest failure are this close (relative).
    pub precision: f64,
    pub step_duration: Duration,
    pub step_warmup: Duration,
    pub arrivals: Arrivals,
    /// Pause between steps so that one step's backlog does not spill into the next.
    pub cooldown: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Step {
    pub rate: f64,
    pub passed: bool,
    /// Whether the generator kept its schedule; an invalid step counts as failed.
    pub valid: bool,
    pub latency_ms: f64,
    pub error_rate: f64,
    pub achieved_rate: f64,
    /// Why it failed, empty when it passed.
    pub reason: String,
    /// 2 when the first measurement of the step was invalid.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SearchResult {
    pub percentile: f64,
    pub slo_ms: f64,
    /// The highest rate that passed; `None` when none did.
    pub capacity_rate: Option<f64>,
    /// The lowest rate that failed above it, if any.
    pub failed_rate: Option<f64>,
    /// What ended the search: `converged`, `max_rate`, `max_steps`, `no_passing_rate`.
    pub ended_by: String,
    pub steps: Vec<Step>,
}

impl SearchResult {
    /// The failing bound, when its step failed only because its measurement stayed invalid:
    /// the capacity found is then a lower bound set by the machine, not by the service.
    pub fn bounded_by_invalid_step(&self) -> Option<&Step> {
        let failed = self.failed_rate?;
        self.steps
            .iter()
            .find(|st| st.rate == failed && !st.passed && !st.valid)
    }
}

/// Runs the search. `base` gives concurrency, seed, threads and pinning; its mode and warm-up
/// are replaced at each step. `on_step` sees each step as it finishes.
pub async fn search(
    spec: &RequestSpec,
    base: &Plan,
    s: &SearchSpec,
    mut on_step: impl FnMut(&Step),
) -> Result<SearchResult, LoadError> {
    let mut steps: Vec<Step> = Vec::new();
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = s.start_rate.min(s.max_rate);
    let mut ended_by = "max_steps";
    for i in 0..s.max_steps {
        let plan = Plan {
            mode: Mode::Open {
                stages: vec![Stage::constant(rate, s.step_duration)],
                arrivals: s.arrivals,
            },
            warmup: s.step_warmup,
            seed: base.seed.wrapping_add(i as u64),
            ..base.clone()
        };
        // A step the generator could not keep on schedule says nothing about the service:
        // it is measured once more before it counts (as failed, if it is still invalid).
        let mut o = run(spec, &plan, |_, _| {}).await?;
        let mut attempts = 1;
        if !o.validity.valid {
            tokio::time::sleep(s.cooldown).await;
            o = run(spec, &plan, |_, _| {}).await?;
            attempts = 2;
        }
        let latency_ms = if o.corrected.is_empty() {
            f64::INFINITY
        } else {
            percentile_ms(&o.corrected, s.percentile)
        };
        let error_rate = if o.requests == 0 {
            1.0
        } else {
            (o.requests - o.ok) as f64 / o.requests as f64
        };
        let mut why = Vec::new();
        if !o.validity.valid {
            why.push(format!(
                "invalid measurement: {}",
                o.validity.reasons.join("; ")
            ));
        }
        if latency_ms > s.slo_ms {
            why.push(format!(
                "p{} {:.2} ms over {} ms",
                s.percentile, latency_ms, s.slo_ms
            ));
        }
        if error_rate > s.max_error_rate {
            why.push(format!("{:.2}% errors", error_rate * 100.0));
        }
        let passed = why.is_empty();
        let step = Step {
            rate: round2(rate),
            passed,
            valid: o.validity.valid,
            latency_ms: if latency_ms.is_finite() {
                latency_ms
            } else {
                -1.0
            },
            error_rate,
            achieved_rate: round2(o.achieved_rate),
            reason: why.join("; "),
            attempts,
        };
        on_step(&step);
        steps.push(step);
        if passed {
            lo = Some(lo.map_or(rate, |l| l.max(rate)));
            if hi.is_some_and(|h| h <= rate) {
                hi = None;
            }
        } else {
            hi = Some(hi.map_or(rate, |h| h.min(rate)));
            if lo.is_some_and(|l| l >= rate) {
                lo = None;
            }
        }
        rate = match (lo, hi) {
            (Some(l), None) if l >= s.max_rate => {
                ended_by = "max_rate";
                break;
            }
            (Some(l), None) => (l * 2.0).min(s.max_rate),
            (Some(l), Some(h)) if (h - l) / l <= s.precision => {
                ended_by = "converged";
                break;
            }
            (Some(l), Some(h)) => (l + h) / 2.0,
            (None, Some(h)) if h / 2.0 < s.start_rate / 64.0 => {
                ended_by = "no_passing_rate";
                break;
            }
            (None, Some(h)) => h / 2.0,
            (None, None) => unreachable!("every step sets one bound"),
        };
        if i + 1 < s.max_steps {
            tokio::time::sleep(s.cooldown).await;
        }
    }
    if lo.is_none() && ended_by == "max_steps" {
        ended_by = "no_passing_rate";
    }
    Ok(SearchResult {
        percentile: s.percentile,
        slo_ms: s.slo_ms,
        capacity_rate: lo.map(round2),
        failed_rate: hi.map(round2),
        ended_by: ended_by.into(),
        steps,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: f64, passed: bool, valid: bool) -> Step {
        Step {
            rate,
            passed,
            valid,
            latency_ms: 1.0,
            error_rate: 0.0,
            achieved_rate: rate,
            reason: String::new(),
            attempts: if valid { 1 } else { 2 },
        }
    }

    #[test]
    fn a_capacity_bounded_by_an_invalid_step_is_flagged() {
        let mut r = SearchResult {
            percentile: 99.0,
            slo_ms: 50.0,
            capacity_rate: Some(250.0),
            failed_rate: Some(500.0),
            ended_by: "max_steps".into(),
            steps: vec![step(250.0, true, true), step(500.0, false, false)],
        };
        assert_eq!(r.bounded_by_invalid_step().map(|s| s.rate), Some(500.0));
        // A valid failure above the capacity: the service's own limit.
        r.steps[1] = step(500.0, false, true);
        assert!(r.bounded_by_invalid_step().is_none());
        // An invalid step below a later, valid bound does not matter.
        r.steps.push(step(375.0, false, false));
        assert!(r.bounded_by_invalid_step().is_none());
        r.failed_rate = None;
        assert!(r.bounded_by_invalid_step().is_none());
    }
}
