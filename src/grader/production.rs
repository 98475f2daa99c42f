//! What production asks beyond the API: the `[lifecycle]` (start-up, graceful shutdown under
//! load, restart), `[cost]` (CPU per prediction, memory, image size), `[tests]` (the candidate's
//! own test suite) and `[review]` (lint, structure, Dockerfile practice, README, secrets,
//! version control) sections. Every part scores on a declared curve, and every part with
//! `points = 0` is information only: measured and shown to the grader, worth nothing.

use serde::Deserialize;

use super::{Points, Visibility};

/// A lower-is-better curve: full points at or below `full`, none at or above `zero`, linear
/// between.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowerIsBetter {
    pub full: f64,
    pub zero: f64,
    pub points: Points,
}

// ---------------------------------------------------------------------------------------------

/// `[lifecycle]`: container targets only (with `--url` it is not applicable).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSpec {
    /// Seconds from the container's start to the first ready answer.
    pub cold_start: Option<LowerIsBetter>,
    pub shutdown: Option<ShutdownSpec>,
    pub restart: Option<RestartSpec>,
    pub visibility: Option<Visibility>,
}

/// Graceful shutdown under load: requests in flight when SIGTERM lands must complete; the
/// process must exit 0 within the grace period.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSpec {
    /// Rows of this dataset make the load: batches of the prediction API's `max_batch`
    /// instances, the slowest requests the contract allows, so that some are always in flight.
    pub dataset: String,
    /// Connections, each sending one batch after another.
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// Load before the signal, in seconds.
    #[serde(default = "default_load_secs")]
    pub load_secs: f64,
    /// How long the service may take to exit after SIGTERM (Docker's default is 10 s,
    /// Kubernetes' 30 s); then it is killed, and that is recorded.
    #[serde(default = "default_grace_secs")]
    pub grace_secs: f64,
    /// Earned by the share of in-flight requests answered 2xx.
    pub in_flight_points: Points,
    /// Earned by exiting with code 0 within the grace period.
    pub exit_points: Points,
}

fn default_connections() -> usize {
    4
}
fn default_load_secs() -> f64 {
    1.0
}
fn default_grace_secs() -> f64 {
    10.0
}

/// The same container started again must become ready (within the readiness deadline) and
/// answer the grader's correctness checks as before.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSpec {
    pub ready_points: Points,
    /// Earned by the share of the correctness checks that pass after the restart.
    pub correctness_points: Points,
}

// ---------------------------------------------------------------------------------------------

/// `[cost]`: what the latency phase's fixed-rate load cost the container (so it needs
/// `[latency]`), its memory, and the image's size. Lower is better everywhere.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSpec {
    /// CPU milliseconds per 1000 predictions (instances), absolute.
    pub cpu_ms_per_1000: Option<LowerIsBetter>,
    /// The same, as a multiple of the reference's, when the run has a reference
    /// (`--latency-reference`): the reference runs beside the service and both take turns
    /// request by request under the same load, their CPU read every `window_secs` (`pairs`
    /// such windows, each a pair of measurements taken over the same seconds), so that the
    /// machine's speed cancels out. Used instead of the absolute curve whenever it was measured.
    pub cpu_vs_reference: Option<LowerIsBetter>,
    /// Grade `cpu_ms_per_1000` at proctor's standard speed: the service runs beside proctor's
    /// yardstick (a fixed amount of work per request) in turns, request by request, and its CPU
    /// per request is taken as a multiple of the yardstick's, one standard millisecond each.
    /// The machine's speed cancels out, as with the reference; needs proctor's yardstick image.
    #[serde(default)]
    pub calibrate: bool,
    #[serde(default = "default_cost_pairs")]
    pub pairs: usize,
    #[serde(default = "default_cost_window")]
    pub window_secs: f64,
    /// Memory growth over the load, MB per 1000 predictions (a leak shows here).
    pub memory_growth_mb_per_1000: Option<LowerIsBetter>,
    /// The highest memory the kernel recorded for the container, MB (page cache included).
    pub peak_memory_mb: Option<LowerIsBetter>,
    /// Memory in use right after the service became ready, MB.
    pub startup_memory_mb: Option<LowerIsBetter>,
    /// Memory in use after the load, MB.
    pub steady_memory_mb: Option<LowerIsBetter>,
    /// The candidate's image, MB.
    pub image_mb: Option<LowerIsBetter>,
    pub visibility: Option<Visibility>,
}

// ---------------------------------------------------------------------------------------------

/// `[tests]`: the candidate's own test suite, run in their built image, sandboxed, no network,
/// with a deadline and an output cap; its JUnit XML is read back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestsSpec {
    /// The command, as an argument list (no shell), e.g.
    /// `["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=/tmp/junit.xml"]`.
    pub command: Vec<String>,
    /// Where the command writes its JUnit XML (under /tmp: the rest is read-only).
    pub junit: String,
    #[serde(default = "default_tests_timeout")]
    pub timeout_secs: u64,
    /// Output kept in the report (its end), in KiB.
    #[serde(default = "default_tests_output")]
    pub max_output_kb: usize,
    /// Earned on a curve by the share of tests that pass.
    pub pass_points: Points,
    #[serde(default = "default_full_pass_share")]
    pub full_pass_share: f64,
    #[serde(default = "default_zero_pass_share")]
    pub zero_pass_share: f64,
    /// Earned on a curve by the number of tests: full from `full_count`, none at zero.
    pub count_points: Points,
    #[serde(default = "default_full_count")]
    pub full_count: u64,
    pub visibility: Option<Visibility>,
}

fn default_cost_pairs() -> usize {
    12
}
fn default_cost_window() -> f64 {
    2.0
}
fn default_tests_timeout() -> u64 {
    180
}
fn default_tests_output() -> usize {
    64
}
fn default_full_pass_share() -> f64 {
    1.0
}
fn default_zero_pass_share() -> f64 {
    0.5
}
fn default_full_count() -> u64 {
    10
}

// ---------------------------------------------------------------------------------------------

/// `[review]`: static review of the vetted build context, never executing candidate code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewSpec {
    pub lint: Option<LintSpec>,
    /// Earned by the share of the Dockerfile practices followed (non-root USER, pinned base,
    /// .dockerignore, dependencies before the code, no secrets in ENV/ARG, a health check or a
    /// documented probe).
    #[serde(default)]
    pub dockerfile_points: Points,
    /// Earned half by run notes and half by design notes in a README.
    #[serde(default)]
    pub readme_points: Points,
    /// Earned when no secret-like string is found (each finding names file and line only).
    #[serde(default)]
    pub secrets_points: Points,
    /// Git sources only: read this many commits of history (an opt-in, bounded fetch) and
    /// report on it.
    pub history: Option<HistorySpec>,
    /// Who may see the review section and its checks (the grader's default otherwise).
    pub visibility: Option<Visibility>,
}

/// Python lint (pycodestyle and pyflakes in proctor's review image): violations per 1000
/// lines, on a curve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintSpec {
    #[serde(default = "default_max_line_length")]
    pub max_line_length: u32,
    pub per_1000_lines: LowerIsBetter,
    #[serde(default = "default_lint_timeout")]
    pub timeout_secs: u64,
}

fn default_max_line_length() -> u32 {
    100
}
fn default_lint_timeout() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySpec {
    #[serde(default = "default_history_commits")]
    pub max_commits: u32,
    /// Earned by the share of subjects that are neither generic nor too short or long
    /// (0 = information only).
    #[serde(default)]
    pub subject_points: Points,
    /// Earned when code-touching commits also touch tests (0 = information only).
    #[serde(default)]
    pub tests_with_code_points: Points,
}

fn default_history_commits() -> u32 {
    200
}

impl LowerIsBetter {
    /// The points `value` earns on this curve.
    pub fn points_for(&self, value: f64) -> f64 {
        crate::score::linear_points(value, self.full, self.zero, self.points.0)
    }

    /// Why this curve cannot be scored, if it cannot: it must fall from `full` to `zero`.
    pub fn invalid(&self) -> Option<String> {
        (!(self.full.is_finite() && self.zero.is_finite() && self.full < self.zero)).then(|| {
            format!(
                "full ({}) must be below zero ({}): lower is better",
                self.full, self.zero
            )
        })
    }
}
