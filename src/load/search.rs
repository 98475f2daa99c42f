//! Throughput search: the highest open-loop rate the service sustains within a latency
//! objective (e.g. p99 <= 100 ms) and an error budget, in a bounded number of steps, as Triton's
//! perf_analyzer or MLPerf's Server scenario do. The rate doubles until a step fails, then
//! bisects between the highest passing and the lowest failing rate until they are within
//! `precision` of each other or the steps run out.
//!
//! Near the service's capacity one short measurement is a coin toss: the p99 of a service at
//! 90% of its capacity swings with every neighbour on the machine, and a bisection never
//! revisits a decision, so one unlucky step moved the answer by a third. A step is therefore
//! decided by a majority of up to `repeats` measurements; only a pass clearly within the
//! objective (`clear_margin` below it) settles a step alone. The machine's noise only ever
//! slows a service down, so a step that fails once is measured again rather than trusted.
//! The steps whose measurements disagreed are reported: they show where the answer is noisy.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::lateness::Curve;
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
    /// Pause between measurements so that one step's backlog does not spill into the next.
    pub cooldown: Duration,
    /// Valid measurements that decide a step by majority (odd; 1 decides on one measurement).
    pub repeats: usize,
    /// A step's first valid measurement that passes with its percentile at or under `slo_ms × (1 −
    /// clear_margin)` and at most half the error budget decides its step alone.
    pub clear_margin: f64,
}

impl SearchSpec {
    /// The most measurements one step may take: `repeats` valid ones, and one more to replace
    /// a measurement the generator could not keep on schedule.
    pub fn max_measurements_per_step(&self) -> usize {
        self.repeats.max(1) + 1
    }
}

/// Default of `SearchSpec::repeats`.
pub const DEFAULT_REPEATS: usize = 3;
/// Default of `SearchSpec::clear_margin`.
pub const DEFAULT_CLEAR_MARGIN: f64 = 0.5;

/// What one measurement at one rate saw.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Measurement {
    /// Whether the generator kept its schedule; an invalid measurement casts no vote.
    pub valid: bool,
    pub passed: bool,
    /// The objective's percentile of the corrected latency; -1 when nothing was measured.
    pub latency_ms: f64,
    pub error_rate: f64,
    pub achieved_rate: f64,
    /// Why it failed, empty when it passed.
    pub reason: String,
}

/// What a step's load produced, before it is judged against the objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub valid: bool,
    /// Why the generator's measurement is invalid; empty when valid.
    pub invalid_reasons: Vec<String>,
    /// `INFINITY` when nothing was measured.
    pub latency_ms: f64,
    pub error_rate: f64,
    pub achieved_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Step {
    pub rate: f64,
    pub passed: bool,
    /// Whether any measurement of the step was valid; a step with none counts as failed.
    pub valid: bool,
    /// The median of the valid measurements (of all, when none was valid).
    pub latency_ms: f64,
    pub error_rate: f64,
    pub achieved_rate: f64,
    /// Why it failed, empty when it passed.
    pub reason: String,
    /// Measurements taken.
    pub attempts: u32,
    /// Every measurement, in order.
    pub measurements: Vec<Measurement>,
}

impl Step {
    /// Valid measurements that passed and failed.
    pub fn votes(&self) -> (u32, u32) {
        let valid = self.measurements.iter().filter(|m| m.valid);
        let passed = valid.clone().filter(|m| m.passed).count() as u32;
        (passed, valid.count() as u32 - passed)
    }

    /// Whether valid measurements of the step disagreed.
    pub fn split(&self) -> bool {
        let (p, f) = self.votes();
        p > 0 && f > 0
    }
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

    /// Rates whose measurements disagreed: where the service sits on the edge of the objective.
    pub fn split_rates(&self) -> Vec<f64> {
        self.steps
            .iter()
            .filter(|s| s.split())
            .map(|s| s.rate)
            .collect()
    }

    /// Measurements taken in all.
    pub fn measurements(&self) -> u32 {
        self.steps.iter().map(|s| s.attempts).sum()
    }
}

/// Runs the search against the service. `base` gives concurrency, seed, threads and pinning;
/// its mode and warm-up are replaced at each measurement. `on_step` sees each step as it
/// finishes.
pub async fn search(
    spec: &RequestSpec,
    base: &Plan,
    s: &SearchSpec,
    on_step: impl FnMut(&Step),
) -> Result<SearchResult, LoadError> {
    let measure = |rate: f64, n: u64| {
        let plan = Plan {
            mode: Mode::Open {
                stages: vec![Stage::constant(rate, s.step_duration)],
                arrivals: s.arrivals,
            },
            warmup: s.step_warmup,
            seed: base.seed.wrapping_add(n),
            // The generator's lateness matters only if it could flip the step's verdict.
            curves: vec![Curve {
                name: format!("the step's p{}", s.percentile),
                percentile: s.percentile,
                full_ms: s.slo_ms,
                zero_ms: s.slo_ms,
            }],
            ..base.clone()
        };
        async move {
            let o = run(spec, &plan, |_, _| {}).await?;
            Ok(Observed {
                valid: o.validity.valid,
                invalid_reasons: o.validity.reasons.clone(),
                latency_ms: if o.corrected.is_empty() {
                    f64::INFINITY
                } else {
                    percentile_ms(&o.corrected, s.percentile)
                },
                error_rate: if o.requests == 0 {
                    1.0
                } else {
                    (o.requests - o.ok) as f64 / o.requests as f64
                },
                achieved_rate: o.achieved_rate,
            })
        }
    };
    search_with(s, measure, on_step).await
}

/// The search's logic over any way of measuring a rate: `measure(rate, n)` is the `n`-th
/// measurement of the search (from 0), which seeds its schedule.
pub async fn search_with<F, Fut>(
    s: &SearchSpec,
    mut measure: F,
    mut on_step: impl FnMut(&Step),
) -> Result<SearchResult, LoadError>
where
    F: FnMut(f64, u64) -> Fut,
    Fut: Future<Output = Result<Observed, LoadError>>,
{
    let mut steps: Vec<Step> = Vec::new();
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = s.start_rate.min(s.max_rate);
    let mut ended_by = "max_steps";
    let mut taken: u64 = 0;
    for i in 0..s.max_steps {
        let step = measure_step(s, rate, &mut measure, &mut taken).await?;
        on_step(&step);
        let passed = step.passed;
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

/// Measures one rate until its step is decided: a clear pass alone, otherwise a majority of
/// `repeats` valid measurements (a tie, possible only when measurements ran out, passes: the
/// machine's noise slows a service down, it never speeds one up). Invalid measurements cast no
/// vote; a step without a valid one fails.
async fn measure_step<F, Fut>(
    s: &SearchSpec,
    rate: f64,
    measure: &mut F,
    taken: &mut u64,
) -> Result<Step, LoadError>
where
    F: FnMut(f64, u64) -> Fut,
    Fut: Future<Output = Result<Observed, LoadError>>,
{
    let repeats = s.repeats.max(1) as u32;
    let need = repeats / 2 + 1;
    let mut measurements: Vec<Measurement> = Vec::new();
    let (mut passes, mut fails) = (0u32, 0u32);
    while measurements.len() < s.max_measurements_per_step() {
        if !measurements.is_empty() {
            tokio::time::sleep(s.cooldown).await;
        }
        let o = measure(rate, *taken).await?;
        *taken += 1;
        let m = judge(s, &o);
        if m.valid {
            let clear = passes + fails == 0
                && m.passed
                && m.latency_ms <= s.slo_ms * (1.0 - s.clear_margin)
                && m.error_rate <= s.max_error_rate / 2.0;
            if m.passed {
                passes += 1;
            } else {
                fails += 1;
            }
            measurements.push(m);
            if clear || passes >= need || fails >= need {
                break;
            }
        } else {
            measurements.push(m);
        }
    }
    let passed = passes + fails > 0 && passes >= fails;
    // The step's figures: the median of the measurements that decided it (of all of them
    // when none was valid).
    let pool: Vec<&Measurement> = if passes + fails == 0 {
        measurements.iter().collect()
    } else {
        measurements
            .iter()
            .filter(|m| m.valid && m.passed == passed)
            .collect()
    };
    let mut lat: Vec<f64> = pool.iter().map(|m| m.latency_ms).collect();
    let mut err: Vec<f64> = pool.iter().map(|m| m.error_rate).collect();
    let mut ach: Vec<f64> = pool.iter().map(|m| m.achieved_rate).collect();
    let reason = if passed {
        String::new()
    } else {
        let failed: Vec<&str> = pool.iter().map(|m| m.reason.as_str()).collect();
        if measurements.len() > 1 {
            format!(
                "{} of {} measurements failed: {}",
                measurements.iter().filter(|m| !m.passed).count(),
                measurements.len(),
                failed.join(" | ")
            )
        } else {
            failed.join("")
        }
    };
    Ok(Step {
        rate: round2(rate),
        passed,
        valid: passes + fails > 0,
        latency_ms: median(&mut lat),
        error_rate: median(&mut err),
        achieved_rate: median(&mut ach),
        reason,
        attempts: measurements.len() as u32,
        measurements,
    })
}

/// One measurement against the objective.
fn judge(s: &SearchSpec, o: &Observed) -> Measurement {
    let mut why = Vec::new();
    if !o.valid {
        why.push(format!(
            "invalid measurement: {}",
            o.invalid_reasons.join("; ")
        ));
    }
    if o.latency_ms > s.slo_ms {
        why.push(format!(
            "p{} {:.2} ms over {} ms",
            s.percentile, o.latency_ms, s.slo_ms
        ));
    }
    if o.error_rate > s.max_error_rate {
        why.push(format!("{:.2}% errors", o.error_rate * 100.0));
    }
    Measurement {
        valid: o.valid,
        passed: why.is_empty(),
        latency_ms: if o.latency_ms.is_finite() {
            o.latency_ms
        } else {
            -1.0
        },
        error_rate: o.error_rate,
        achieved_rate: round2(o.achieved_rate),
        reason: why.join("; "),
    }
}

/// The median (the upper one of an even count); -1 for none.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return -1.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

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
            measurements: Vec::new(),
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

    /// The public churn grader's search, with `repeats` measurements deciding a step.
    fn spec(repeats: usize) -> SearchSpec {
        SearchSpec {
            percentile: 99.0,
            slo_ms: 100.0,
            max_error_rate: 0.01,
            start_rate: 250.0,
            max_rate: 1000.0,
            max_steps: 6,
            precision: 0.05,
            step_duration: Duration::from_secs(2),
            step_warmup: Duration::from_millis(500),
            arrivals: Arrivals::Constant,
            cooldown: Duration::ZERO,
            repeats,
            clear_margin: DEFAULT_CLEAR_MARGIN,
        }
    }

    const CAPACITY: f64 = 100.0;

    /// A service of capacity `CAPACITY` on a busy machine, deterministic for a seed: each
    /// measurement sees a capacity varying by 6% (one sigma), and one in five is slowed to 60%
    /// by a neighbour. Its p99 reaches the SLO exactly at the capacity it saw.
    fn noisy_service(
        seed: u64,
    ) -> impl FnMut(f64, u64) -> std::future::Ready<Result<Observed, LoadError>> {
        move |rate, n| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 1000 + n);
            let (u1, u2): (f64, f64) = (rng.random(), rng.random());
            let normal = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let neighbour = if rng.random::<f64>() < 0.2 { 0.6 } else { 1.0 };
            let seen = CAPACITY * (1.0 + 0.06 * normal) * neighbour;
            std::future::ready(Ok(Observed {
                valid: true,
                invalid_reasons: Vec::new(),
                latency_ms: 100.0 * (rate / seen).powi(6),
                error_rate: 0.0,
                achieved_rate: rate,
            }))
        }
    }

    /// The capacities found over 60 seeds, sorted, and the measurements they took.
    async fn found(repeats: usize) -> (Vec<f64>, u32) {
        let s = spec(repeats);
        let (mut found, mut taken) = (Vec::new(), 0);
        for seed in 0..60 {
            let r = search_with(&s, noisy_service(seed), |_| {}).await.unwrap();
            assert!(r
                .steps
                .iter()
                .all(|st| st.attempts as usize <= s.max_measurements_per_step()));
            taken += r.measurements();
            found.push(r.capacity_rate.unwrap_or(0.0));
        }
        found.sort_by(f64::total_cmp);
        (found, taken)
    }

    /// The 10th and 90th percentiles' distance, and the median.
    fn spread(v: &[f64]) -> (f64, f64) {
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        (q(0.9) - q(0.1), q(0.5))
    }

    #[tokio::test]
    async fn repeated_steps_make_the_answer_stable_near_the_capacity() {
        let (one, one_taken) = found(1).await;
        let (three, three_taken) = found(DEFAULT_REPEATS).await;
        let ((one_spread, one_median), (spread3, median3)) = (spread(&one), spread(&three));
        let explain = format!(
            "one measurement a step: spread {one_spread:.1}, median {one_median:.1}, \
             {one_taken} measurements; majority of three: spread {spread3:.1}, median \
             {median3:.1}, {three_taken} measurements\n{one:?}\n{three:?}"
        );
        eprintln!("{explain}");
        // Centred on the capacity, and spread over at most two of the rates six steps can
        // tell apart (250 / 2^5 req/s apart).
        let resolution = 250.0 / 32.0;
        assert!((median3 - CAPACITY).abs() <= resolution, "{explain}");
        assert!(spread3 <= 2.0 * resolution + 1e-6, "{explain}");
        // The old logic, one measurement deciding each step, on the same service.
        assert!(spread3 * 2.0 <= one_spread, "{explain}");
    }

    fn observed(valid: bool, latency_ms: f64) -> Observed {
        Observed {
            valid,
            invalid_reasons: if valid { vec![] } else { vec!["late".into()] },
            latency_ms,
            error_rate: 0.0,
            achieved_rate: 100.0,
        }
    }

    /// Runs one step against measurements given in order.
    async fn decide(repeats: usize, seen: Vec<Observed>) -> Step {
        let s = spec(repeats);
        let mut seen = seen.into_iter();
        let mut taken = 0;
        measure_step(
            &s,
            100.0,
            &mut |_, _| std::future::ready(Ok(seen.next().unwrap())),
            &mut taken,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_step_is_decided_by_a_clear_pass_or_a_majority() {
        // A clear pass (p99 at most half the SLO) settles the step alone.
        let st = decide(3, vec![observed(true, 20.0)]).await;
        assert!(st.passed && st.attempts == 1 && !st.split(), "{st:?}");
        // A pass close to the SLO is confirmed.
        let st = decide(3, vec![observed(true, 90.0), observed(true, 80.0)]).await;
        assert!(st.passed && st.attempts == 2, "{st:?}");
        // A failure is measured again, and the majority decides.
        let st = decide(
            3,
            vec![
                observed(true, 300.0),
                observed(true, 40.0),
                observed(true, 60.0),
            ],
        )
        .await;
        assert!(st.passed && st.attempts == 3 && st.split(), "{st:?}");
        assert_eq!((st.votes(), st.latency_ms), ((2, 1), 60.0), "{st:?}");
        let st = decide(3, vec![observed(true, 300.0), observed(true, 200.0)]).await;
        assert!(!st.passed && st.attempts == 2, "{st:?}");
        assert!(
            st.reason.starts_with("2 of 2 measurements failed"),
            "{st:?}"
        );
        // Invalid measurements cast no vote; with none valid the step fails, as invalid.
        let st = decide(3, vec![observed(false, 20.0), observed(true, 20.0)]).await;
        assert!(st.passed && st.valid && st.attempts == 2, "{st:?}");
        let st = decide(1, vec![observed(false, 20.0), observed(false, 20.0)]).await;
        assert!(!st.passed && !st.valid && st.attempts == 2, "{st:?}");
        // With one measurement a step, the first valid one decides (the former logic).
        let st = decide(1, vec![observed(true, 101.0)]).await;
        assert!(!st.passed && st.attempts == 1, "{st:?}");
    }
}
