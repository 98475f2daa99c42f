//! The grader file's top-level model: the `Grader` struct and the sections every grader has
//! (meta, submission rules, sandbox limits, HTTP settings, readiness), with their defaults, and
//! the placement of service and load generator on the machine's cores.

use serde::Deserialize;

use super::{
    CheckSpec, ConsistencySpec, DatasetSpec, DriftSpec, InvariantsSpec, LatencySpec, MetricsSpec,
    Points, PredictionApi, ProbesSpec, QualitySpec, UrlPath,
};
use crate::check::{Category, Visibility};
use crate::expect::{Expect, JsonAssert, StatusSet};

/// A grader file after validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grader {
    pub grader: GraderMeta,
    pub submission: SubmissionRules,
    #[serde(default)]
    pub sandbox: SandboxLimits,
    #[serde(default)]
    pub http: HttpSettings,
    pub readiness: Readiness,
    #[serde(default)]
    pub correctness: Vec<CheckSpec>,
    #[serde(default)]
    pub robustness: Vec<CheckSpec>,
    /// Scripted checks of missing and out-of-range values (category `missing_data`).
    #[serde(default)]
    pub missing_data: Vec<CheckSpec>,
    pub latency: Option<LatencySpec>,
    #[serde(default)]
    pub dataset: Vec<DatasetSpec>,
    pub prediction: Option<PredictionApi>,
    pub quality: Option<QualitySpec>,
    pub consistency: Option<ConsistencySpec>,
    /// Properties of every prediction answer, checked on seeded batches (`[invariants]`).
    pub invariants: Option<InvariantsSpec>,
    pub drift: Option<DriftSpec>,
    pub metrics: Option<MetricsSpec>,
    /// Contract probes generated from a dataset's schema (category `robustness`).
    pub probes: Option<ProbesSpec>,
    /// Start-up, graceful shutdown under load, restart (category `lifecycle`).
    pub lifecycle: Option<super::LifecycleSpec>,
    /// CPU per prediction, memory and image size (category `cost`).
    pub cost: Option<super::CostSpec>,
    /// The candidate's own test suite (category `tests`).
    pub tests: Option<super::TestsSpec>,
    /// Static review of the submission (category `review`).
    pub review: Option<super::ReviewSpec>,
    /// Points that count only when other points were earned, applied in file order.
    #[serde(default)]
    pub prerequisite: Vec<crate::prerequisite::Prerequisite>,
    /// What the total means: its bands.
    #[serde(default)]
    pub grade: super::GradeSpec,
}

/// The scripted check lists of a grader, in the order they run, with their category, each
/// borrowed as `$borrow` (`&` or `&mut`): the one place that says which lists there are. The
/// category's name is the list's key in the grader file.
macro_rules! check_lists {
    ($grader:expr, $($borrow:tt)+) => {
        [
            (Category::Correctness, $($borrow)+ $grader.correctness),
            (Category::Robustness, $($borrow)+ $grader.robustness),
            (Category::MissingData, $($borrow)+ $grader.missing_data),
        ]
    };
}

impl Grader {
    /// The scripted check lists, in the order they run, with their category.
    pub fn check_lists(&self) -> [(Category, &Vec<CheckSpec>); 3] {
        check_lists!(self, &)
    }

    /// [`Grader::check_lists`], to change the checks in place.
    pub fn check_lists_mut(&mut self) -> [(Category, &mut Vec<CheckSpec>); 3] {
        check_lists!(self, &mut)
    }
}

/// `[sandbox] cpuset` value that splits the machine's cores between service and load.
pub const AUTO_CPUSET: &str = "auto";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraderMeta {
    /// Shown in reports, e.g. "churn-public".
    pub name: String,
    /// The assignment this grader belongs to, e.g. "churn".
    pub assignment: String,
    #[serde(default)]
    pub description: String,
    /// Default visibility of every check in this file.
    #[serde(default)]
    pub visibility: Visibility,
    /// One line the summary shows under the score, e.g. that a hidden grader tests what this one
    /// does not.
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionRules {
    /// The port the service listens on inside its container.
    #[serde(default = "default_port")]
    pub port: u16,
    /// `FROM` images a submission may use. Anything else is rejected before building.
    pub allowed_base_images: Vec<String>,
    #[serde(default = "default_build_timeout")]
    pub build_timeout_secs: u64,
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_secs: u64,
    /// Memory of each build step (swap included), at most 2047 MB (the API's limit).
    #[serde(default = "default_build_memory")]
    pub build_memory_mb: u64,
    /// Processes and threads of the whole build, across its steps.
    #[serde(default = "default_build_pids")]
    pub build_pids_limit: i64,
    /// A build printing more output than this is stopped.
    #[serde(default = "default_build_output")]
    pub max_build_output_mb: u64,
    /// Largest image accepted.
    #[serde(default = "default_image_size")]
    pub max_image_mb: u64,
}

fn default_build_memory() -> u64 {
    2000
}
fn default_build_pids() -> i64 {
    1024
}
fn default_build_output() -> u64 {
    16
}
fn default_image_size() -> u64 {
    4096
}

fn default_port() -> u16 {
    8080
}
fn default_build_timeout() -> u64 {
    600
}
fn default_ready_timeout() -> u64 {
    60
}

/// Resource limits of the candidate's container while it is graded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxLimits {
    /// Memory limit; swap is set to the same value, so no swap is available.
    pub memory_mb: u64,
    /// CPU quota (in CPUs). Ignored when `cpuset` pins the container instead: quotas throttle
    /// in 100 ms periods, which shows up as latency.
    pub cpus: f64,
    /// Cores the container may use, e.g. "1" (Docker's cpuset syntax). Keeps the service and
    /// the load generator on disjoint cores when both run on one machine.
    pub cpuset: Option<String>,
    pub pids_limit: i64,
    /// Size of the writable /tmp (counts against memory).
    pub tmpfs_mb: u64,
    pub nofile: i64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            memory_mb: 1024,
            cpus: 1.0,
            cpuset: None,
            pids_limit: 256,
            tmpfs_mb: 64,
            nofile: 4096,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Total time one scripted request may take, from connect to the last body byte.
    pub request_timeout_ms: u64,
    /// Responses larger than this are cut and fail their check.
    pub max_body_bytes: usize,
}

impl HttpSettings {
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            request_timeout_ms: 5_000,
            max_body_bytes: 1 << 20,
        }
    }
}

/// The readiness probe: polled until it passes or the deadline expires. It gates everything
/// else: a service that never becomes ready is a `submission_error`, not a zero.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    #[serde(default = "default_readiness_name")]
    pub name: String,
    pub path: UrlPath,
    #[serde(default)]
    pub points: Points,
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: u64,
    #[serde(default)]
    pub status: StatusSet,
    #[serde(default)]
    pub json: Vec<JsonAssert>,
    pub visibility: Option<Visibility>,
}

impl Readiness {
    pub fn expect(&self) -> Expect {
        Expect {
            status: self.status.clone(),
            json_body: !self.json.is_empty(),
            json: self.json.clone(),
        }
    }
}

fn default_readiness_name() -> String {
    "becomes ready".to_string()
}
fn default_poll_interval() -> u64 {
    250
}

#[cfg(test)]
mod tests {
    use crate::grader::fixtures::{parse_str, MINIMAL};

    #[test]
    fn a_bad_cpuset_is_located() {
        let err = parse_str(&format!("{MINIMAL}\n[sandbox]\ncpuset = \"1-x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sandbox.cpuset"), "{err}");
    }

    #[test]
    fn minimal_grader_gets_defaults() {
        let g = parse_str(MINIMAL).unwrap();
        assert_eq!(g.submission.port, 8080);
        assert_eq!(g.sandbox.memory_mb, 1024);
        assert!(g.correctness.is_empty());
        assert_eq!(g.readiness.status.0, vec![200]);
    }
}
