//! The `[latency]` section of a grader file: the load to send and the objectives that earn
//! points.

use serde::Deserialize;

use super::{Method, Points, UrlPath, Visibility};

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
    #[serde(default)]
    pub objective: Vec<LatencyObjective>,
    pub errors: Option<ErrorObjective>,
    pub visibility: Option<Visibility>,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorObjective {
    /// Largest share of failed requests (wrong status, transport error, timeout) that passes.
    pub max_error_rate: f64,
    pub points: Points,
}

impl LatencySpec {
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
        Ok(())
    }
}
