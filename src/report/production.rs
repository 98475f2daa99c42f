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
    /// Of the correctness checks that passed before the stop (`correctness_total`), those
    /// that passed again after the restart.
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
    /// The reference's and the ratio, when the reference ran beside the service
    /// (`--latency-reference` with `cpu_vs_reference`): both from `paired`, never from the
    /// load above.
    pub reference_cpu_ms_per_1000: Option<f64>,
    pub cpu_vs_reference: Option<f64>,
    /// CPU ms per 1000 predictions at proctor's standard speed, when the service ran beside
    /// proctor's yardstick (`[cost] calibrate`): the candidate's CPU per request over the
    /// yardstick's, times the yardstick's standard millisecond; from `paired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibrated_cpu_ms_per_1000: Option<f64>,
    /// The yardstick's CPU per request on this machine during the comparison, in ms (1.0 at
    /// the standard speed; higher on a slower or busier machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yardstick_ms_per_request: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<PairedCost>,
    pub startup_memory_mb: Option<f64>,
    pub memory_before_load_mb: Option<f64>,
    pub steady_memory_mb: Option<f64>,
    pub memory_growth_mb_per_1000: Option<f64>,
    pub peak_memory_mb: Option<f64>,
    pub image_mb: Option<f64>,
}

/// The service and the reference (or the yardstick) beside it, loaded in turns request by
/// request: what the ratio comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PairedCost {
    /// What ran beside the service: `reference` or `yardstick`.
    #[serde(default)]
    pub against: String,
    /// Windows measured (after the warm-up), each a pair of measurements (the service's CPU
    /// and the reference's over the same seconds), and those kept once the most extreme sixth
    /// at either end was dropped.
    pub pairs: usize,
    pub kept: usize,
    pub window_seconds: f64,
    /// The service's CPU per 1000 predictions in the kept windows.
    pub cpu_ms_per_1000: f64,
    /// The lowest and highest ratio of one kept window: how much the two sides' costs moved
    /// apart meanwhile.
    pub lowest_ratio: f64,
    pub highest_ratio: f64,
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
    /// Who may see this section: the grader marks it (`[review] visibility`); a candidate's
    /// view leaves out a hidden one, checks or not.
    pub visibility: crate::check::Visibility,
    pub review: crate::review::Review,
    pub lint: Option<crate::review::LintSummary>,
    /// Why lint could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint_problem: Option<String>,
    /// Git sources with `[review.history]` only.
    pub history: Option<crate::intake::History>,
}

// One line each, in words: what the summary, the Markdown view and the HTML page say of these
// sections (drawn from the view's report, so a candidate sees only what their view keeps).

impl LifecycleReport {
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.cold_start_seconds {
            parts.push(format!("ready {s:.1} s after start"));
        }
        if let Some(d) = &self.shutdown {
            let exit = match (d.killed, d.exit_code, d.seconds_to_exit) {
                (true, _, _) => format!("killed after the {} s grace period", d.grace_seconds),
                (false, Some(c), Some(s)) => format!("exit {c} after {s:.1} s"),
                _ => "exit not read".to_string(),
            };
            parts.push(format!(
                "SIGTERM under load: {} of {} requests in flight answered, {exit}",
                d.in_flight_completed, d.in_flight
            ));
        }
        if let Some(r) = &self.restart {
            parts.push(match r.seconds_to_ready {
                Some(s) if r.ready => format!(
                    "restart: ready in {s:.1} s, {} of {} correctness checks passed",
                    r.correctness_passed, r.correctness_total
                ),
                _ => "restart: never ready again".to_string(),
            });
        }
        parts.join("; ")
    }
}

impl CostReport {
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = self.cpu_ms_per_1000 {
            parts.push(
                match (self.cpu_vs_reference, self.calibrated_cpu_ms_per_1000) {
                    (Some(x), _) => {
                        format!("{c:.0} CPU ms per 1000 predictions ({x:.2}× the reference)")
                    }
                    (None, Some(k)) => {
                        format!("{c:.0} CPU ms per 1000 predictions ({k:.0} at the standard speed)")
                    }
                    (None, None) => format!("{c:.0} CPU ms per 1000 predictions"),
                },
            );
        }
        let mb = |v: Option<f64>, what: &str| v.map(|v| format!("{v:.0} MB {what}"));
        let memory: Vec<String> = [
            mb(self.startup_memory_mb, "at start-up"),
            self.memory_growth_mb_per_1000
                .map(|g| format!("{g:+.1} MB per 1000 predictions")),
            mb(self.peak_memory_mb, "at the peak"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !memory.is_empty() {
            parts.push(format!("memory {}", memory.join(", ")));
        }
        if let Some(i) = self.image_mb {
            parts.push(format!("image {i:.0} MB"));
        }
        parts.join("; ")
    }
}

impl TestsReport {
    pub fn line(&self) -> String {
        match &self.junit_problem {
            Some(p) => p.clone(),
            None if self.tests == 0 => "no tests found".to_string(),
            None => format!(
                "{} of {} passed in {:.1} s ({} failed, {} errors, {} skipped)",
                self.passed,
                self.tests - self.skipped,
                self.seconds,
                self.failed,
                self.errors,
                self.skipped
            ),
        }
    }
}

impl ReviewReport {
    pub fn line(&self) -> String {
        use crate::review::Status;
        let r = &self.review;
        let mut parts = Vec::new();
        match &self.lint {
            Some(l) => parts.push(format!(
                "lint {:.1} per 1000 lines ({} in {} lines)",
                l.per_1000_lines, l.violations, l.lines
            )),
            None => {
                if let Some(p) = &self.lint_problem {
                    parts.push(format!("lint: {p}"));
                }
            }
        }
        let judged = r
            .dockerfile
            .iter()
            .filter(|f| f.status != Status::NotApplicable);
        let passed = judged.clone().filter(|f| f.status == Status::Pass).count();
        parts.push(format!(
            "Dockerfile {passed} of {} practices",
            judged.count()
        ));
        parts.push(match &r.readme.path {
            None => "no README".to_string(),
            Some(_) => format!(
                "README {} run notes, {} design notes",
                if r.readme.run_notes {
                    "with"
                } else {
                    "without"
                },
                if r.readme.design_notes {
                    "with"
                } else {
                    "without"
                }
            ),
        });
        let secrets = r.secrets.findings.len() as u64 + r.secrets.omitted;
        parts.push(format!("{secrets} secret-like strings"));
        if let Some(ratio) = r.structure.test_to_code_ratio {
            parts.push(format!("test/code lines {ratio:.2}"));
        }
        if let Some(h) = &self.history {
            parts.push(match &h.error {
                Some(e) => format!("history: {e}"),
                None => format!("history: {} commits by {} authors", h.commits, h.authors),
            });
        }
        parts.join("; ")
    }
}
