//! Whether the generator's own lateness could have changed what a measurement is graded on.
//!
//! perf_analyzer's rule (over 1% of sends more than 1 ms late: invalid) knows nothing of what
//! is graded: on a busy 2-core machine it threw away measurements whose lateness (a p50 of
//! 50 µs, 2–5% of sends over 1 ms) could not have moved a p50 of 13 ms across a 25 ms threshold.
//! When the caller says which percentiles it grades and on which curves, lateness is judged by
//! what it could do to them instead.
//!
//! The bound: a send dispatched `L` late inflates its own corrected latency by `L`, and, by
//! bunching sends, can make later requests queue behind it by at most about `L` more (the
//! service works off a burst no faster than it was delayed). So every sample is charged `2L`,
//! except the share `s` of sends later than `L`, which may be inflated by anything. Without the
//! lateness the `p`-th percentile lies between the measured `(p − s)`-th percentile minus `2L`
//! and the measured `p`-th (lateness never makes a request faster). The measurement is harmless
//! for a curve when the points at those two ends differ by at most `MAX_MOVED_SHARE` of the
//! curve's points; `L` is chosen among the lateness percentiles as the one that gives the
//! tightest bound (on a tie, the one fewest sends exceed).

use hdrhistogram::Histogram;
use serde::Serialize;

/// A graded percentile: full points at or under `full_ms`, none at or over `zero_ms`, linear
/// between. A pass/fail objective (a search step's SLO) has `full_ms == zero_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Names the curve in reasons and the report (a check name).
    pub name: String,
    pub percentile: f64,
    pub full_ms: f64,
    pub zero_ms: f64,
}

impl Curve {
    /// The share of the curve's points a latency earns.
    fn share_at(&self, ms: f64) -> f64 {
        if ms <= self.full_ms {
            1.0
        } else if ms >= self.zero_ms {
            0.0
        } else {
            (self.zero_ms - ms) / (self.zero_ms - self.full_ms)
        }
    }
}

/// Lateness that could move a curve's points by more than this share makes a run invalid.
pub const MAX_MOVED_SHARE: f64 = 0.02;

/// The lateness percentiles tried as the bound `L`.
const BOUND_QUANTILES: [f64; 7] = [0.5, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0];

/// What the generator's lateness could have done to one curve.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Effect {
    pub name: String,
    pub percentile: f64,
    /// The percentile as measured (the one graded).
    pub measured_ms: f64,
    /// The least it could be without the generator's lateness.
    pub lowest_ms: f64,
    /// The lateness bound `L` applied: all sends but `late_share` were dispatched within it.
    pub bound_ms: f64,
    /// Share of measured sends dispatched later than `bound_ms`.
    pub late_share: f64,
    /// The share of the curve's points between `lowest_ms` and `measured_ms`.
    pub moved_share: f64,
    /// `moved_share` within `MAX_MOVED_SHARE`.
    pub harmless: bool,
}

/// How far `dispatch` lateness could move `curve`'s points, given the `corrected` latencies
/// (both histograms in microseconds, of the same measured sends).
pub fn effect(corrected: &Histogram<u64>, dispatch: &Histogram<u64>, curve: &Curve) -> Effect {
    let ms = |us: u64| us as f64 / 1000.0;
    let q = curve.percentile / 100.0;
    let measured_ms = ms(corrected.value_at_quantile(q));
    let earned = curve.share_at(measured_ms);
    let total = dispatch.len().max(1) as f64;
    let mut best: Option<Effect> = None;
    for bq in BOUND_QUANTILES {
        let bound = dispatch.value_at_quantile(bq);
        let later = dispatch.len() - dispatch.count_between(0, bound).min(dispatch.len());
        let late_share = later as f64 / total;
        let lowest_ms = if q - late_share <= 0.0 {
            0.0
        } else {
            (ms(corrected.value_at_quantile(q - late_share)) - 2.0 * ms(bound)).max(0.0)
        }
        .min(measured_ms);
        let moved_share = curve.share_at(lowest_ms) - earned;
        let e = Effect {
            name: curve.name.clone(),
            percentile: curve.percentile,
            measured_ms,
            lowest_ms,
            bound_ms: ms(bound),
            late_share,
            moved_share,
            harmless: moved_share <= MAX_MOVED_SHARE,
        };
        // Among equal bounds the one that leaves the fewest sends beyond it says the most.
        let better = best.as_ref().is_none_or(|b| {
            e.moved_share < b.moved_share
                || (e.moved_share == b.moved_share && e.late_share < b.late_share)
        });
        if better {
            best = Some(e);
        }
    }
    best.expect("at least one bound is tried")
}

impl Effect {
    /// Why the run is invalid, for a curve the lateness could move.
    pub fn reason(&self) -> String {
        format!(
            "the load generator's lateness ({:.1}% of sends later than {:.2} ms) could have moved \
             {} from {:.2} ms to as low as {:.2} ms: {:.0}% of its points, more than the {:.0}% \
             allowed",
            self.late_share * 100.0,
            self.bound_ms,
            self.name,
            self.measured_ms,
            self.lowest_ms,
            self.moved_share * 100.0,
            MAX_MOVED_SHARE * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::new_histogram;

    /// 1000 sends: `corrected_ms(i)` is the i-th latency, `late_us(i)` its dispatch lateness.
    fn measured(
        corrected_ms: impl Fn(u64) -> f64,
        late_us: impl Fn(u64) -> u64,
    ) -> (Histogram<u64>, Histogram<u64>) {
        let (mut c, mut d) = (new_histogram(), new_histogram());
        for i in 0..1000 {
            c.record((corrected_ms(i) * 1000.0) as u64).unwrap();
            d.record(late_us(i).max(1)).unwrap();
        }
        (c, d)
    }

    fn curve(percentile: f64, full_ms: f64, zero_ms: f64) -> Curve {
        Curve {
            name: format!("p{percentile}"),
            percentile,
            full_ms,
            zero_ms,
        }
    }

    /// The lateness of the slow service's invalid regrades: a p50 of 50 µs, 5% of sends
    /// 1.5 ms late (the absolute rule's limit is 1% over 1 ms).
    fn busy(i: u64) -> u64 {
        if i % 20 == 0 {
            1500
        } else {
            50
        }
    }

    #[test]
    fn lateness_far_from_every_threshold_is_harmless() {
        // p50 of 13 ms (latencies 8..18 ms) against full points at 25 ms.
        let (c, d) = measured(|i| 8.0 + i as f64 / 100.0, busy);
        let e = effect(&c, &d, &curve(50.0, 25.0, 250.0));
        assert!(e.harmless && e.moved_share == 0.0, "{e:?}");
        assert!((e.measured_ms - 13.0).abs() < 0.05, "{e:?}");
        // The report shows the largest lateness that is still harmless: every send within it.
        assert!(e.late_share == 0.0 && e.bound_ms >= 1.5, "{e:?}");
        // A p99 far beyond its zero-points threshold cannot earn points either way.
        let (c, d) = measured(|i| 2000.0 + i as f64, busy);
        assert!(effect(&c, &d, &curve(99.0, 100.0, 1000.0)).harmless);
        // On a curve, lateness that moves the percentile by a sliver of its width is harmless
        // too: p50 at 100 ms on a 25..250 ms curve, each sample at most 0.1 ms late.
        let (c, d) = measured(|i| 95.0 + i as f64 / 100.0, |_| 100);
        let e = effect(&c, &d, &curve(50.0, 25.0, 250.0));
        assert!(e.harmless && e.moved_share > 0.0, "{e:?}");
        assert!(e.bound_ms <= 0.1 && e.lowest_ms < e.measured_ms, "{e:?}");
    }

    #[test]
    fn lateness_that_could_cross_a_threshold_is_not() {
        // A search step's SLO of 100 ms, p99 measured at 100.5 ms: 1.5 ms late sends could
        // have made a pass look like a failure.
        let (c, d) = measured(|i| 90.0 + i as f64 / 94.0, |_| 1500);
        let e = effect(&c, &d, &curve(99.0, 100.0, 100.0));
        assert!(e.measured_ms > 100.0, "{e:?}");
        assert!(!e.harmless && e.moved_share == 1.0, "{e:?}");
        assert!(e.reason().contains("p99"), "{}", e.reason());
        // The same lateness with the p99 clearly over the SLO is harmless.
        let (c, d) = measured(|i| 150.0 + i as f64 / 100.0, |_| 1500);
        assert!(effect(&c, &d, &curve(99.0, 100.0, 100.0)).harmless);
        // On a narrow curve (10..20 ms), the busy machine's lateness around a p50 of 15 ms
        // could be worth 6% of the points.
        let (c, d) = measured(|i| 10.0 + i as f64 / 100.0, busy);
        let e = effect(&c, &d, &curve(50.0, 10.0, 20.0));
        assert!(!e.harmless && e.moved_share > 0.05, "{e:?}");
    }
}
