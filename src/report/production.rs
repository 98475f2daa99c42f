//! The report's sections for what production asks beyond the API: the lifecycle (start-up,
//! graceful shutdown under load, restart), the cost of a prediction, the candidate's own tests,
//! and the static review.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[lifecycle]`: the service's start, stop under load, and restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LifecycleReport {
    /// Seconds from the container's start to the first ready answer.
    pub cold_start_seconds: Option<f64>,
    pub shutdown: Option<ShutdownReport>,
    pub restart: Option<RestartReport>,
}

/// SIGTERM under load, as `docker stop` and Kubernetes send it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShutdownReport {
    /// The signal went straight to the container's first process (`kill(2)`), not through the
    /// engine's API: it landed at a known moment.
    pub signal_direct: bool,
    /// How long sending it took: the window in which it landed.
    pub signal_delivery_ms: f64,
    pub connections: usize,
    /// Instances in each request of the load (the largest batch the API allows).
    pub batch_size: usize,
    /// Requests answered before the signal.
    pub answered_before: u64,
    /// Requests in flight when the signal landed: sent before it was sent, answered (or
    /// failed) after the engine had delivered it.
    pub in_flight: u64,
    /// Of those, answered 2xx.
    pub in_flight_completed: u64,
    /// How the others failed, by kind (`reset`, `status_503`, `timeout`, ...).
    pub in_flight_failures: std::collections::BTreeMap<String, u64>,
    /// Requests sent after the signal (new connections may be refused), and how many were
    /// answered 2xx anyway.
    pub sent_after: u64,
    pub answered_after: u64,
    pub exit_code: Option<i64>,
    /// From the signal to the exit (or to the kill).
    pub seconds_to_exit: Option<f64>,
    /// Still running at the end of the grace period: killed with SIGKILL.
    pub killed: bool,
    pub grace_seconds: f64,
}

/// The same container started again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestartReport {
    pub ready: bool,
    pub seconds_to_ready: Option<f64>,
    /// The last readiness answer when it never became ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe: Option<String>,
    pub correctness_passed: usize,
    pub correctness_total: usize,
}

/// `[cost]`: what a prediction costs, measured on the container's cgroup during the latency
/// phase's fixed-rate load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CostReport {
    /// Requests the load sent (its warm-up included) and the predictions they held.
    pub requests: u64,
    pub predictions: u64,
    pub instances_per_request: f64,
    pub load_seconds: f64,
    pub cpu_seconds: Option<f64>,
    pub cpu_ms_per_1000: Option<f64>,
    /// The reference's, when measured in the same run (`--latency-reference`), and the ratio.
    pub reference_cpu_ms_per_1000: Option<f64>,
    pub cpu_vs_reference: Option<f64>,
    pub startup_memory_mb: Option<f64>,
    pub memory_before_load_mb: Option<f64>,
    pub steady_memory_mb: Option<f64>,
    pub memory_growth_mb_per_1000: Option<f64>,
    pub peak_memory_mb: Option<f64>,
    pub image_mb: Option<f64>,
}

/// `[tests]`: the candidate's own test suite, run in their image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TestsReport {
    pub command: Vec<String>,
    pub exit_code: Option<i64>,
    /// Stopped at the deadline.
    pub timed_out: bool,
    pub seconds: f64,
    /// The JUnit XML was written and read.
    pub junit_found: bool,
    /// Why the JUnit XML could not be used, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit_problem: Option<String>,
    pub tests: u64,
    pub passed: u64,
    pub failed: u64,
    pub errors: u64,
    pub skipped: u64,
    /// The names of failing tests (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    pub output_bytes: u64,
    /// The end of the output.
    pub output_tail: String,
}

/// `[review]`: static review of the vetted build context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewReport {
    pub review: crate::review::Review,
    pub lint: Option<crate::review::LintSummary>,
    /// Why lint could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint_problem: Option<String>,
    /// Git sources with `[review.history]` only.
    pub history: Option<crate::intake::History>,
}
