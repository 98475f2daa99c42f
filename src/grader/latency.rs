//! The `[latency]` section of a grader file: the load to send and the objectives that earn
//! points.

use serde::Deserialize;

use super::{Method, Points, UrlPath, Visibility};
use crate::load::Arrivals;

/// Shortest measured duration: enough for three one-second stability windows.
pub const MIN_DURATION_SECS: f64 = 3.0;
/// Fewest measured requests of any latency load.
pub const MIN_REQUESTS: u64 = 100;
/// A percentile is only graded when at least this many samples lie beyond it.
pub const MIN_SAMPLES_BEYOND: f64 = 5.0;

/// A fixed-rate load against one endpoint, and the latency objectives that earn points.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    pub method: Option<Method>,
    pub path: UrlPath,
    /// Request bodies, used in a seeded random order.
    #[serde(default)]
    pub bodies: Vec<String>,
    pub content_type: Option<String>,
    /// Requests per second (open loop: sends do not wait for earlier responses).
    pub rate: f64,
    /// Evenly spaced (`constant`, the default) or seeded `poisson` arrivals.
    #[serde(default)]
    pub arrivals: Arrivals,
    pub duration_secs: f64,
    #[serde(default = "default_warmup")]
    pub warmup_secs: f64,
    /// Most requests in flight at once; past that, sends queue and the queueing shows up in the
    /// latency measured from the intended send time.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The status every response must have to count as a success.
    #[serde(default = "default_ok_status")]
    pub status: u16,
    /// A run measuring fewer requests is invalid; the default is the larger of 100 and enough
    /// for five samples beyond the highest graded percentile.
    pub min_requests: Option<u64>,
    /// Cores for the load generator's threads, e.g. "0" (Docker's cpuset syntax). With
    /// `[sandbox] cpuset` on other cores, the service and the generator never compete.
    pub load_cpuset: Option<String>,
    #[serde(default)]
    pub objective: Vec<LatencyObjective>,
    pub errors: Option<ErrorObjective>,
    pub search: Option<SearchSpec>,
    pub visibility: Option<Visibility>,
    /// The most a reference measured in the same run may widen a curve. A machine that slows
    /// the reference down more than this is not fit to grade latency at all.
    #[serde(default = "default_reference_factor")]
    pub max_reference_factor: f64,
}

fn default_reference_factor() -> f64 {
    4.0
}

/// `[latency.search]`: the highest rate the service sustains within a latency objective,
/// found in a bounded number of short open-loop steps. Reported, and worth points if declared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// The objective each step must meet: `percentile` of the corrected latency at or under
    /// `slo_ms`, and at most `max_error_rate` failed requests.
    pub percentile: f64,
    pub slo_ms: f64,
    #[serde(default = "default_search_error_rate")]
    pub max_error_rate: f64,
    /// First rate tried (default: `[latency] rate`).
    pub start_rate: Option<f64>,
    /// The search never goes above it.
    pub max_rate: f64,
    #[serde(default = "default_search_steps")]
    pub max_steps: usize,
    #[serde(default = "default_search_step_secs")]
    pub step_secs: f64,
    #[serde(default = "default_search_warmup")]
    pub warmup_secs: f64,
    /// Stop when the highest passing and lowest failing rates are this close (relative).
    #[serde(default = "default_search_precision")]
    pub precision: f64,
    /// Valid measurements that decide a step by majority: near the capacity one short
    /// measurement is a coin toss. A first measurement clearly within the objective decides
    /// alone, so only steps near the capacity cost more time. 1 decides on one measurement.
    #[serde(default = "default_search_repeats")]
    pub repeats: usize,
    /// Points for the capacity found: all at or above `full_points_rate`, none at or below
    /// `zero_points_rate` (default 0), linear between. No points: reported only.
    pub points: Option<Points>,
    pub full_points_rate: Option<f64>,
    #[serde(default)]
    pub zero_points_rate: f64,
    pub name: Option<String>,
}

fn default_search_error_rate() -> f64 {
    0.01
}
fn default_search_steps() -> usize {
    8
}
fn default_search_step_secs() -> f64 {
    3.0
}
fn default_search_warmup() -> f64 {
    1.0
}
fn default_search_precision() -> f64 {
    0.05
}
fn default_search_repeats() -> usize {
    crate::load::search::DEFAULT_REPEATS
}

fn default_warmup() -> f64 {
    2.0
}
fn default_concurrency() -> usize {
    32
}
fn default_ok_status() -> u16 {
    200
}

/// Full points at or under `full_points_ms`, none at or over `zero_points_ms`, linear between.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyObjective {
    pub percentile: f64,
    pub full_points_ms: f64,
    pub zero_points_ms: f64,
    pub points: Points,
    pub name: Option<String>,
    /// What the assignment's reference submission measures at this percentile on a machine
    /// fit for grading. With `proctor grade --latency-reference`, the reference is measured in
    /// the same run, and when this machine makes it slower than that, the curve is widened by
    /// the same factor (never narrowed).
    pub reference_ms: Option<f64>,
}

/// Percentiles a reference measurement reports, and so the ones `reference_ms` may be set for.
pub const REFERENCE_PERCENTILES: [f64; 5] = [50.0, 90.0, 95.0, 99.0, 99.9];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorObjective {
    /// Largest share of failed requests (wrong status, transport error, timeout) that passes.
    pub max_error_rate: f64,
    pub points: Points,
}

/// Requests needed for `MIN_SAMPLES_BEYOND` of them to lie beyond percentile `p`.
fn samples_for(p: f64) -> u64 {
    // The tolerance keeps 5 / 0.001 at 5000 despite binary fractions.
    (MIN_SAMPLES_BEYOND / (1.0 - p / 100.0) - 1e-6).ceil() as u64
}

impl LatencySpec {
    /// The fewest measured requests a valid run needs.
    pub fn required_requests(&self) -> u64 {
        self.min_requests.unwrap_or_else(|| {
            self.objective
                .iter()
                .filter(|o| o.percentile < 100.0)
                .map(|o| samples_for(o.percentile))
                .fold(MIN_REQUESTS, u64::max)
        })
    }

    /// Requests the schedule sends during measurement.
    pub fn measured_requests(&self) -> u64 {
        (self.rate * self.duration_secs).round() as u64
    }

    /// The load generator's cores, parsed.
    pub fn load_cpus(&self) -> Option<Vec<usize>> {
        self.load_cpuset
            .as_deref()
            .and_then(|c| crate::load::sys::parse_cpuset(c).ok())
    }

    /// Rules that span several fields; the error names the field.
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Err((
                "latency.rate".into(),
                "must be a positive number of requests per second".into(),
            ));
        }
        if !(self.duration_secs > 0.0 && self.duration_secs.is_finite()) {
            return Err(("latency.duration_secs".into(), "must be positive".into()));
        }
        if !(self.warmup_secs >= 0.0 && self.warmup_secs.is_finite()) {
            return Err((
                "latency.warmup_secs".into(),
                "must be zero or positive".into(),
            ));
        }
        if self.concurrency == 0 {
            return Err(("latency.concurrency".into(), "must be at least 1".into()));
        }
        if self.method.unwrap_or(Method::Get) != Method::Get && self.bodies.is_empty() {
            return Err((
                "latency.bodies".into(),
                "give at least one request body for a non-GET load".into(),
            ));
        }
        for (i, o) in self.objective.iter().enumerate() {
            if !(o.percentile > 0.0 && o.percentile <= 100.0) {
                return Err((
                    format!("latency.objective[{i}].percentile"),
                    "must be in (0, 100]".into(),
                ));
            }
            if let Some(r) = o.reference_ms {
                if !(r > 0.0 && r.is_finite()) {
                    return Err((
                        format!("latency.objective[{i}].reference_ms"),
                        "must be a positive number of milliseconds".into(),
                    ));
                }
                if !REFERENCE_PERCENTILES.contains(&o.percentile) {
                    return Err((
                        format!("latency.objective[{i}].reference_ms"),
                        format!(
                            "needs a percentile the reference measurement reports: one of \
                             {REFERENCE_PERCENTILES:?}"
                        ),
                    ));
                }
            }
            if !(o.full_points_ms >= 0.0 && o.zero_points_ms > o.full_points_ms) {
                return Err((
                    format!("latency.objective[{i}].zero_points_ms"),
                    "must be greater than full_points_ms (points fall linearly between the two)"
                        .into(),
                ));
            }
        }
        if let Some(e) = &self.errors {
            if !(0.0..=1.0).contains(&e.max_error_rate) {
                return Err((
                    "latency.errors.max_error_rate".into(),
                    "must be a share between 0 and 1".into(),
                ));
            }
        }
        if self.duration_secs < MIN_DURATION_SECS {
            return Err((
                "latency.duration_secs".into(),
                format!(
                    "must be at least {MIN_DURATION_SECS} s (three stability windows of a second)"
                ),
            ));
        }
        let (have, need) = (self.measured_requests(), self.required_requests());
        if have < need {
            let why = if self.min_requests.is_some() {
                format!("min_requests = {need}")
            } else {
                format!(
                    "at least {MIN_REQUESTS}, and {MIN_SAMPLES_BEYOND} samples beyond the highest \
                     graded percentile"
                )
            };
            return Err((
                "latency.duration_secs".into(),
                format!(
                    "rate x duration_secs gives {have} measured requests; {need} are needed ({why})"
                ),
            ));
        }
        if let Some(c) = &self.load_cpuset {
            if let Err(e) = crate::load::sys::parse_cpuset(c) {
                return Err(("latency.load_cpuset".into(), e));
            }
        }
        if let Some(s) = &self.search {
            s.validate(self.rate)?;
        }
        if !(self.max_reference_factor >= 1.0 && self.max_reference_factor.is_finite()) {
            return Err((
                "latency.max_reference_factor".into(),
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Whether any objective can be scaled to a reference measured in the same run.
    pub fn has_reference(&self) -> bool {
        self.objective.iter().any(|o| o.reference_ms.is_some())
    }

    /// The check name of objective `o`: its own, or one made from its percentile and the rate.
    pub fn objective_name(&self, o: &LatencyObjective) -> String {
        o.name
            .clone()
            .unwrap_or_else(|| objective_name(o.percentile, self.rate))
    }
}

impl SearchSpec {
    pub fn start(&self, latency_rate: f64) -> f64 {
        self.start_rate.unwrap_or(latency_rate)
    }

    fn validate(&self, latency_rate: f64) -> Result<(), (String, String)> {
        let err = |f: &str, m: &str| Err((format!("latency.search.{f}"), m.to_string()));
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !(self.percentile > 0.0 && self.percentile < 100.0) {
            return err("percentile", "must be in (0, 100)");
        }
        if !positive(self.slo_ms) {
            return err("slo_ms", "must be positive");
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return err("max_error_rate", "must be a share between 0 and 1");
        }
        let start = self.start(latency_rate);
        if !positive(start) {
            return err("start_rate", "must be positive");
        }
        if !(self.max_rate.is_finite() && self.max_rate >= start) {
            return err("max_rate", "must be at least the start rate");
        }
        if !(1..=30).contains(&self.max_steps) {
            return err("max_steps", "must be between 1 and 30");
        }
        if !(self.step_secs >= 1.0 && self.step_secs.is_finite()) {
            return err("step_secs", "must be at least 1");
        }
        if !(self.warmup_secs >= 0.0 && self.warmup_secs.is_finite()) {
            return err("warmup_secs", "must be zero or positive");
        }
        if !(self.precision > 0.0 && self.precision < 1.0) {
            return err("precision", "must be in (0, 1)");
        }
        if !(1..=5).contains(&self.repeats) {
            return err("repeats", "must be between 1 and 5");
        }
        // The lowest step must still measure enough requests to read its percentile.
        let need = samples_for(self.percentile) as f64;
        if start * self.step_secs < need {
            return err(
                "step_secs",
                &format!(
                    "start_rate x step_secs must give at least {need} requests to read p{}",
                    self.percentile
                ),
            );
        }
        match (self.points, self.full_points_rate) {
            (Some(_), None) => {
                return err("full_points_rate", "give the rate that earns full points")
            }
            (None, Some(_)) => return err("points", "give the points the capacity is worth"),
            (Some(_), Some(full)) => {
                if !(full.is_finite()
                    && full > self.zero_points_rate
                    && self.zero_points_rate >= 0.0)
                {
                    return err(
                        "full_points_rate",
                        "must be greater than zero_points_rate (points rise linearly between)",
                    );
                }
            }
            (None, None) => {}
        }
        Ok(())
    }
}

/// The name of a latency objective's check when the grader gives none.
pub fn objective_name(percentile: f64, rate: f64) -> String {
    format!("p{} latency at {} req/s", trim(percentile), trim(rate))
}

/// `99` rather than `99.0` in names and messages.
pub(crate) fn trim(x: f64) -> String {
    let x = crate::score::round2(x);
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objective_names_drop_needless_decimals() {
        assert_eq!(objective_name(99.0, 50.0), "p99 latency at 50 req/s");
        assert_eq!(objective_name(99.9, 12.5), "p99.9 latency at 12.5 req/s");
    }

    fn spec(extra: &str) -> Result<LatencySpec, String> {
        let text = format!("path = \"/\"\nrate = 50\nduration_secs = 10\n{extra}");
        let l: LatencySpec = toml::from_str(&text).map_err(|e| e.to_string())?;
        l.validate().map_err(|(f, m)| format!("{f}: {m}"))?;
        Ok(l)
    }

    const P99: &str =
        "[[objective]]\npercentile = 99\nfull_points_ms = 10\nzero_points_ms = 100\npoints = 1\n";

    #[test]
    fn enough_requests_for_the_graded_percentile() {
        let l = spec(P99).unwrap();
        assert_eq!(l.required_requests(), 500);
        let p999 = P99.replace("percentile = 99", "percentile = 99.9");
        let e = spec(&p999).unwrap_err();
        assert!(e.starts_with("latency.duration_secs"), "{e}");
        assert!(e.contains("5000"), "{e}");
        assert!(spec("duration_secs_typo = 1").is_err());
        let e = spec(&format!("min_requests = 600\n{P99}")).unwrap_err();
        assert!(e.contains("min_requests = 600"), "{e}");
    }

    #[test]
    fn short_runs_are_refused() {
        let text = "path = \"/\"\nrate = 1000\nduration_secs = 2\n";
        let l: LatencySpec = toml::from_str(text).unwrap();
        assert_eq!(l.validate().unwrap_err().0, "latency.duration_secs");
    }

    #[test]
    fn arrivals_and_cpuset() {
        let l = spec("arrivals = \"poisson\"\nload_cpuset = \"0-1\"").unwrap();
        assert_eq!(l.arrivals, Arrivals::Poisson);
        assert_eq!(l.load_cpus(), Some(vec![0, 1]));
        assert!(spec("arrivals = \"bursty\"").is_err());
        let e = spec("load_cpuset = \"x\"").unwrap_err();
        assert!(e.starts_with("latency.load_cpuset"), "{e}");
    }

    #[test]
    fn search_section() {
        let ok = "[search]\npercentile = 99\nslo_ms = 50\nmax_rate = 1000\nstart_rate = 200\npoints = 2\nfull_points_rate = 400\n";
        let l = spec(ok).unwrap();
        let s = l.search.unwrap();
        assert_eq!((s.max_steps, s.step_secs, s.precision), (8, 3.0, 0.05));
        assert_eq!(s.repeats, 3);
        let e = spec(&format!("{ok}repeats = 0\n")).unwrap_err();
        assert!(e.starts_with("latency.search.repeats"), "{e}");
        let e = spec(&ok.replace("full_points_rate = 400\n", "")).unwrap_err();
        assert!(e.starts_with("latency.search.full_points_rate"), "{e}");
        let e = spec(&ok.replace("max_rate = 1000", "max_rate = 100")).unwrap_err();
        assert!(e.starts_with("latency.search.max_rate"), "{e}");
        let e = spec(&ok.replace("start_rate = 200", "start_rate = 10")).unwrap_err();
        assert!(e.starts_with("latency.search.step_secs"), "{e}");
        assert!(spec(&format!("{ok}bogus = 1\n")).is_err());
    }
}
