//! When each request should be sent, computed before the first send.
//!
//! A rate profile is piecewise linear: an optional warm-up at the first stage's starting rate,
//! then stages that hold or ramp the rate. Arrivals are either evenly spaced or a seeded Poisson
//! process. Both are laid out in "count space": the cumulative number of requests N(t) of the
//! profile is inverted at k = 0, 1, 2, ... (constant) or at the partial sums of unit
//! exponentials (Poisson), so a ramp needs no special case and the same seed gives the same
//! schedule.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Most requests one schedule may hold (8 bytes each).
pub const MAX_REQUESTS: usize = 50_000_000;

/// How requests are spread in time at a given rate.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Evenly spaced, as wrk2's `-R`.
    #[default]
    Constant,
    /// Exponential gaps from a seeded generator (MLPerf's Server scenario).
    Poisson,
}

/// A stretch of the profile: the rate goes linearly from `from_rate` to `to_rate` over
/// `duration` (equal rates hold it constant).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub from_rate: f64,
    pub to_rate: f64,
}

impl Stage {
    pub fn constant(rate: f64, duration: Duration) -> Stage {
        Stage {
            duration,
            from_rate: rate,
            to_rate: rate,
        }
    }
    fn expected_requests(&self) -> f64 {
        (self.from_rate + self.to_rate) / 2.0 * self.duration.as_secs_f64()
    }
}

/// The intended send times, as offsets from the start of the run, and where measurement
/// starts.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Nanoseconds from the start, non-decreasing.
    pub offsets_ns: Vec<u64>,
    /// Requests before this index are warm-up.
    pub first_measured: usize,
    /// Start of measurement, from the start of the run.
    pub measure_start: Duration,
    /// End of the profile, from the start of the run.
    pub end: Duration,
}

impl Timeline {
    pub fn measured(&self) -> usize {
        self.offsets_ns.len() - self.first_measured
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("rates must be finite and zero or more, durations positive")]
    Invalid,
    #[error("the schedule has {0} requests; at most {MAX_REQUESTS} fit in memory")]
    TooMany(u64),
    #[error("the schedule sends no request in the measured period")]
    Empty,
}

/// Lays out the intended send times. `warmup` runs at the first stage's starting rate.
pub fn timeline(
    stages: &[Stage],
    warmup: Duration,
    arrivals: Arrivals,
    seed: u64,
) -> Result<Timeline, ScheduleError> {
    let ok_rate = |r: f64| r.is_finite() && r >= 0.0;
    if stages.is_empty()
        || stages
            .iter()
            .any(|s| s.duration.is_zero() || !ok_rate(s.from_rate) || !ok_rate(s.to_rate))
    {
        return Err(ScheduleError::Invalid);
    }
    let mut segments = Vec::with_capacity(stages.len() + 1);
    if !warmup.is_zero() {
        segments.push(Stage::constant(stages[0].from_rate, warmup));
    }
    segments.extend_from_slice(stages);
    let expected: f64 = segments.iter().map(Stage::expected_requests).sum();
    // Poisson counts scatter around the mean; leave room for that before refusing.
    if expected > MAX_REQUESTS as f64 * 0.9 {
        return Err(ScheduleError::TooMany(expected as u64));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A stream of its own, so the arrival gaps do not depend on how bodies are drawn.
    rng.set_stream(1);
    let mut next_count = || -> f64 {
        match arrivals {
            Arrivals::Constant => 1.0,
            Arrivals::Poisson => {
                let u: f64 = rng.random();
                -(1.0 - u).ln()
            }
        }
    };

    let mut offsets = Vec::with_capacity(expected.ceil() as usize + 16);
    // Constant arrivals start at t = 0; Poisson ones one gap in.
    let mut target = match arrivals {
        Arrivals::Constant => 0.0,
        Arrivals::Poisson => next_count(),
    };
    let mut seg_start = 0.0f64; // seconds
    let mut seg_count = 0.0f64; // N(seg_start)
    for seg in &segments {
        let d = seg.duration.as_secs_f64();
        let a = seg.from_rate;
        let slope = (seg.to_rate - seg.from_rate) / d;
        let seg_total = seg.expected_requests();
        while target < seg_count + seg_total {
            let c = target - seg_count;
            // N(t) = a t + slope t^2 / 2 = c, in the form that stays exact when slope -> 0.
            let disc = (a * a + 2.0 * slope * c).max(0.0);
            let t = if a + disc.sqrt() > 0.0 {
                2.0 * c / (a + disc.sqrt())
            } else {
                0.0
            };
            let at = seg_start + t.min(d);
            offsets.push((at * 1e9) as u64);
            if offsets.len() >= MAX_REQUESTS {
                return Err(ScheduleError::TooMany(offsets.len() as u64));
            }
            target += next_count();
        }
        seg_start += d;
        seg_count += seg_total;
    }
    let warm_ns = warmup.as_nanos() as u64;
    let first_measured = offsets.partition_point(|&o| o < warm_ns);
    let timeline = Timeline {
        first_measured,
        measure_start: warmup,
        end: Duration::from_secs_f64(seg_start),
        offsets_ns: offsets,
    };
    if timeline.measured() == 0 {
        return Err(ScheduleError::Empty);
    }
    Ok(timeline)
}

/// Parses stages written as `SECS:RATE` (hold) or `SECS:FROM..TO` (ramp), comma-separated,
/// e.g. `5:100,10:100..1000,5:1000`.
pub fn parse_stages(text: &str) -> Result<Vec<Stage>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (secs, rates) = part
            .split_once(':')
            .ok_or_else(|| format!("{part:?}: expected SECS:RATE or SECS:FROM..TO"))?;
        let secs: f64 = secs
            .trim()
            .parse()
            .map_err(|_| format!("{part:?}: {secs:?} is not a number of seconds"))?;
        let num = |s: &str| -> Result<f64, String> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r >= 0.0)
                .ok_or_else(|| format!("{part:?}: {s:?} is not a rate"))
        };
        let (from, to) = match rates.split_once("..") {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let r = num(rates)?;
                (r, r)
            }
        };
        if !(secs > 0.0 && secs.is_finite()) {
            return Err(format!("{part:?}: the duration must be positive"));
        }
        out.push(Stage {
            duration: Duration::from_secs_f64(secs),
            from_rate: from,
            to_rate: to,
        });
    }
    if out.is_empty() {
        return Err("no stage given".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let t = timeline(
            &[Stage::constant(100.0, secs(2.0))],
            secs(1.0),
            Arrivals::Constant,
            1,
        )
        .unwrap();
        assert_eq!(t.offsets_ns.len(), 300);
        assert_eq!(t.first_measured, 100);
        assert_eq!(t.measured(), 200);
        for (i, o) in t.offsets_ns.iter().enumerate() {
            let want = i as f64 * 10_000_000.0;
            assert!((*o as f64 - want).abs() < 2.0, "request {i} at {o} ns");
        }
    }

    #[test]
    fn poisson_has_the_rate_and_exponential_gaps_and_is_seeded() {
        let stages = [Stage::constant(1000.0, secs(20.0))];
        let t = timeline(&stages, Duration::ZERO, Arrivals::Poisson, 7).unwrap();
        let n = t.offsets_ns.len() as f64;
        // 20000 expected, sd ~141.
        assert!((n - 20_000.0).abs() < 700.0, "{n}");
        let gaps: Vec<f64> = t
            .offsets_ns
            .windows(2)
            .map(|w| (w[1] - w[0]) as f64 / 1e6)
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((mean - 1.0).abs() < 0.05, "mean gap {mean} ms");
        // Exponential: the standard deviation equals the mean.
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.05,
            "cv {}",
            var.sqrt() / mean
        );
        let again = timeline(&stages, Duration::ZERO, Arrivals::Poisson, 7).unwrap();
        assert_eq!(t.offsets_ns, again.offsets_ns);
        let other = timeline(&stages, Duration::ZERO, Arrivals::Poisson, 8).unwrap();
        assert_ne!(t.offsets_ns, other.offsets_ns);
    }

    #[test]
    fn ramp_sends_the_area_under_the_rate() {
        let stages = [
            Stage {
                duration: secs(10.0),
                from_rate: 0.0,
                to_rate: 200.0,
            },
            Stage::constant(200.0, secs(1.0)),
        ];
        let t = timeline(&stages, Duration::ZERO, Arrivals::Constant, 1).unwrap();
        // 1000 in the ramp, 200 after.
        assert_eq!(t.offsets_ns.len(), 1200);
        // Half the ramp's requests come in its last 2.93 s (N(t) = 10 t^2).
        let half = t.offsets_ns[500] as f64 / 1e9;
        assert!((half - 50f64.sqrt()).abs() < 0.01, "{half}");
        assert!(t.offsets_ns.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(t.end, secs(11.0));
    }

    #[test]
    fn stages_parse() {
        let s = parse_stages("5:100, 10:100..1000").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].from_rate, 100.0);
        assert_eq!(s[1].to_rate, 1000.0);
        assert!(parse_stages("5").is_err());
        assert!(parse_stages("0:5").is_err());
        assert!(parse_stages("5:-1").is_err());
    }

    #[test]
    fn bad_profiles_are_refused() {
        assert_eq!(
            timeline(&[], Duration::ZERO, Arrivals::Constant, 1).unwrap_err(),
            ScheduleError::Invalid
        );
        assert!(matches!(
            timeline(
                &[Stage::constant(1e9, secs(100.0))],
                Duration::ZERO,
                Arrivals::Constant,
                1
            ),
            Err(ScheduleError::TooMany(_))
        ));
    }
}
