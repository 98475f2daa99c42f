//! The grade report: one serde model, from which every output format is rendered. Its JSON form
//! is the contract with CI pipelines and other tools; `proctor schema` prints its JSON Schema.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::check::{Category, CheckResult, Visibility};
pub use crate::prerequisite::{Applied as AppliedPrerequisite, Judgement, Withheld};
pub use crate::score::{CategoryScore, Score};

/// Bumped whenever a field changes meaning or disappears (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    /// Identifies this run; every Docker resource of the run carries it as label `io.proctor.run`.
    pub run_id: String,
    pub status: Status,
    /// Why the status is what it is, in words a candidate understands. Empty when graded.
    pub reason: String,
    /// For `submission_error` and `infrastructure_error`: the precise cause, e.g. `build_failed`,
    /// `never_ready`, `engine_unreachable`.
    pub verdict: Option<crate::verdict::Verdict>,
    /// Absent for `infrastructure_error`: a harness failure is never a grade.
    pub score: Option<Score>,
    /// The grader's band (`[[grade.band]]`) the score's percent falls in, e.g. `strong`.
    /// Absent without a score, when the grader declares no bands, or under the lowest band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<String>,
    pub categories: Vec<CategoryScore>,
    pub checks: Vec<CheckResult>,
    /// What each `[[prerequisite]]` of the grader did, in the order they applied: whether it
    /// held, and the points of every gated check before it lowered them. `checks` holds the
    /// points after.
    #[serde(default)]
    pub prerequisites: Vec<AppliedPrerequisite>,
    /// In a candidate's view: the hidden checks, counted (their details are left out). Absent
    /// in the grader's view, where `checks` holds them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_checks: Option<HiddenChecks>,
    /// Each grader file of the run, in the order given (`--grader` repeated): its own score,
    /// band and categories over its own checks, and the sections of its phases.
    pub graders: Vec<GraderRun>,
    /// Seconds spent in each stage, in the order they ran.
    pub timings: Vec<StageTiming>,
    pub harness: Harness,
    pub submission: SubmissionInfo,
    pub image: Option<ImageInfo>,
    /// Seed of every random choice (request order, sampled rows): the same seed regrades the same.
    pub seed: u64,
    pub container: Option<ContainerInfo>,
    /// Last lines of the image build output, sanitized.
    pub build_log_tail: Option<String>,
    pub warnings: Vec<String>,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: String,
}

/// One grader file's part of a run: what it declared, what its own checks scored, and what its
/// phases measured. The report's `score`, `band`, `categories` and `checks` are those of every
/// grader together.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GraderRun {
    pub grader: GraderInfo,
    /// The points of this grader's checks; absent for `infrastructure_error`.
    pub score: Option<Score>,
    /// This grader's band for its own score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<String>,
    pub categories: Vec<CategoryScore>,
    pub latency: Option<LatencyReport>,
    pub quality: Option<QualityReport>,
    pub consistency: Option<ConsistencyReport>,
    /// The `[invariants]` phase: what it sent, the distinct scores it saw, each invariant's
    /// minimal counterexample.
    #[serde(default)]
    pub invariants: Option<InvariantsReport>,
    pub drift: Option<DriftReport>,
    pub monitoring: Option<MonitoringReport>,
    /// The contract probes: cases per class and, in the grader's view only, every failed case.
    #[serde(default)]
    pub probes: Option<ProbesReport>,
    /// Start-up, graceful shutdown under load, restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<super::LifecycleReport>,
    /// What a prediction costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<super::CostReport>,
    /// The candidate's own tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<super::TestsReport>,
    /// The static review (the candidate's view keeps it only when the grader marks it visible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Box<super::ReviewReport>>,
}

impl Report {
    /// The graders' names, joined: `churn-public + churn-hidden`.
    pub fn grader_names(&self) -> String {
        self.graders
            .iter()
            .map(|g| g.grader.name.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The first grader's section that `f` picks, among the graders that have one: the
    /// headline number of a view that shows one (a leaderboard entry).
    pub fn first_section<'a, T: 'a>(
        &'a self,
        f: impl Fn(&'a GraderRun) -> Option<&'a T>,
    ) -> Option<&'a T> {
        self.graders.iter().find_map(f)
    }

    /// A check's name as a view shows it: with its grader's name in front when the run had
    /// several graders (two graders may each have a check of one name).
    pub fn check_label(&self, c: &CheckResult) -> String {
        if self.graders.len() > 1 && !c.grader.is_empty() {
            format!("{}: {}", c.grader, c.name)
        } else {
            c.name.clone()
        }
    }

    /// The graders' notes (`[grader] note`), those that are not empty.
    pub fn grader_notes(&self) -> impl Iterator<Item = &str> {
        self.graders
            .iter()
            .map(|g| g.grader.note.as_str())
            .filter(|n| !n.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// All stages ran; the score is the grade.
    Graded,
    /// The submission could not be graded (or not to the end) because of what it did.
    SubmissionError,
    /// proctor or its machine failed; says nothing about the submission.
    InfrastructureError,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Graded => "graded",
            Status::SubmissionError => "submission_error",
            Status::InfrastructureError => "infrastructure_error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HiddenChecks {
    pub count: u64,
    pub passed: u64,
    pub points: f64,
    pub max_points: f64,
    /// The same, per category that has hidden checks (in category order): where hidden points
    /// were lost, without naming a check.
    #[serde(default)]
    pub by_category: Vec<HiddenCategory>,
}

/// The hidden checks of one category, counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HiddenCategory {
    pub category: Category,
    pub count: u64,
    pub passed: u64,
    pub points: f64,
    pub max_points: f64,
}

/// One point of a percentile plot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PercentilePoint {
    pub percentile: f64,
    pub ms: f64,
}

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub count: u64,
}

/// How evenly the load's requests were spread in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Evenly spaced, as wrk2's `-R`.
    #[default]
    Constant,
    /// Exponential gaps from a seeded generator.
    Poisson,
}

/// A latency objective as it was graded: full points at or under `full_points_ms` at its
/// percentile, none at or over `zero_points_ms` (both after any widening by the latency
/// reference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectiveMark {
    /// The objective's check.
    pub name: String,
    pub percentile: f64,
    pub full_points_ms: f64,
    pub zero_points_ms: f64,
}

/// Throughput and latency in one measurement window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadWindow {
    /// From the start of measurement.
    pub start_secs: f64,
    /// Responses (and failures) completed in the window, per second.
    pub rate: f64,
    pub ok: u64,
    /// Sends due in the window that went out more than 1 ms late.
    pub late: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The throughput search: the highest rate kept within a latency objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThroughputSearch {
    pub percentile: f64,
    pub slo_ms: f64,
    /// The highest rate that passed; `None` when none did.
    pub capacity_rate: Option<f64>,
    /// The lowest rate that failed above it, if any.
    pub failed_rate: Option<f64>,
    /// What ended the search: `converged`, `max_rate`, `max_steps`, `no_passing_rate`.
    pub ended_by: String,
    /// Valid measurements that decide a step by majority (`[latency.search] repeats`).
    pub repeats: u32,
    /// Measurements taken by all steps.
    pub measurements: u32,
    /// Rates whose measurements disagreed (some passed, some failed): where the service sits
    /// on the edge of the objective, and how noisy the answer is there.
    pub split_rates: Vec<f64>,
    pub steps: Vec<SearchStep>,
}

/// One rate the search tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchStep {
    pub rate: f64,
    pub passed: bool,
    /// Whether any measurement of the step was valid; a step with none counts as failed.
    pub valid: bool,
    pub latency_ms: f64,
    pub error_rate: f64,
    pub achieved_rate: f64,
    /// Why it failed, empty when it passed.
    pub reason: String,
    /// Measurements the step took.
    pub attempts: u32,
    /// Each measurement, in order; the step's latency, error rate and achieved rate are the
    /// median of those that decided it.
    pub measurements: Vec<SearchMeasurement>,
}

/// One measurement of a search step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SearchMeasurement {
    /// Whether the generator kept its schedule; an invalid measurement casts no vote.
    pub valid: bool,
    pub passed: bool,
    pub latency_ms: f64,
    pub error_rate: f64,
    pub achieved_rate: f64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencyReport {
    pub method: String,
    pub path: String,
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    pub concurrency: usize,
    /// Requests sent during measurement (warm-up excluded).
    pub requests: u64,
    /// Responses with the expected status.
    pub ok: u64,
    /// Failures by kind: `status_500`, `timeout`, `connect`, ...
    pub errors: BTreeMap<String, u64>,
    /// Latency from when each request should have been sent (corrects coordinated omission).
    /// This is the one graded.
    pub corrected: Percentiles,
    /// The corrected distribution for a percentile plot (HdrHistogram style): milliseconds at
    /// 0%, 50%, 75%, 87.5%, ... (each step halving what is left, as far as the requests
    /// resolve it) and at 100% (the maximum).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrected_curve: Vec<PercentilePoint>,
    /// Latency from when each request was actually sent.
    pub uncorrected: Percentiles,
    /// How late sends were against their schedule, waits for a free connection included.
    pub send_lateness: Percentiles,
    /// How evenly requests were spread: `constant` (as wrk2) or `poisson`.
    pub arrivals: Arrivals,
    /// Measured requests sent per second of the schedule; equals the target rate when every
    /// send went out on time.
    pub send_rate: f64,
    /// When the load generator noticed a send was due, minus its intended time: the
    /// generator's own lateness, which decides whether the measurement is valid.
    pub dispatch_lateness: Percentiles,
    /// Requests that waited for a free connection: the service fell behind the rate at the
    /// grader's concurrency (the wait counts in `corrected`).
    pub queued: u64,
    /// Throughput and latency per measurement window.
    pub windows: Vec<LoadWindow>,
    /// Every window within 10% of the median window's rate and median latency; absent when the
    /// windows held too few responses to tell.
    pub stable: Option<bool>,
    /// Whether the load generator kept its schedule. An invalid measurement is the grading
    /// machine's fault: the run is an infrastructure error, not a grade.
    pub valid: bool,
    /// Why the measurement is invalid; empty when valid.
    pub invalid_reasons: Vec<String>,
    /// 1, or 2 when the first measurement was invalid and the load ran again.
    pub attempts: u32,
    /// How the load generator's own lateness was judged, and what it measured.
    pub lateness: LatenessJudgement,
    /// CPU time the load generator spent per request, in microseconds.
    pub client_cpu_us_per_request: f64,
    /// The throughput search (`[latency.search]`), when the grader declares one.
    pub search: Option<ThroughputSearch>,
    /// The objectives the corrected distribution was graded against, in the grader's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objectives: Vec<ObjectiveMark>,
    /// The reference submission measured in the same run (`--latency-reference`), and how far
    /// it widened each objective's curve.
    pub reference: Option<ReferenceLatency>,
}

/// Whether the generator's lateness could have changed the points. docs/load.md, "Validity".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatenessJudgement {
    /// `objectives`: lateness makes the measurement invalid only when it could move an
    /// objective's points by more than `max_moved_share` of them; `absolute` (no objective
    /// declared): when over 1% of sends were dispatched more than 1 ms late.
    pub rule: String,
    /// Share of measured sends dispatched more than 1 ms late.
    pub late_over_1ms_share: f64,
    pub max_moved_share: f64,
    /// One entry per objective, under the `objectives` rule.
    pub objectives: Vec<LatenessEffect>,
}

/// What the generator's lateness could have done to one objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatenessEffect {
    /// The objective's check.
    pub name: String,
    pub percentile: f64,
    /// The percentile as measured and graded.
    pub measured_ms: f64,
    /// The least it could have been without the generator's lateness.
    pub lowest_ms: f64,
    /// The lateness bound applied: all sends but `late_share` were dispatched within it; each
    /// sample was charged twice this (its own delay, and queueing behind delayed sends).
    pub bound_ms: f64,
    pub late_share: f64,
    /// The share of the objective's points between `lowest_ms` and `measured_ms`.
    pub moved_share: f64,
    pub harmless: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferenceLatency {
    pub submission: String,
    /// The reference's own run (its report is not written; its resources are removed).
    pub run_id: String,
    /// Its corrected latency under the same load.
    pub corrected: Percentiles,
    pub objectives: Vec<ReferenceScale>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferenceScale {
    /// The objective's check.
    pub name: String,
    /// What the grader expects the reference to measure (`reference_ms`).
    pub declared_ms: f64,
    pub measured_ms: f64,
    /// measured / declared, at least 1: the curve's thresholds were multiplied by it.
    pub factor: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageTiming {
    pub stage: String,
    pub seconds: f64,
    /// For a phase: the time it was allowed, derived from what it declares (requests, durations,
    /// the request timeout). A service cannot make a phase last longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_seconds: Option<f64>,
    /// The phase was stopped at its budget; its checks that had not finished score zero.
    #[serde(default)]
    pub out_of_budget: bool,
    /// In a run of several graders: the grader whose phase this was.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub grader: String,
    /// Seconds the stage waited for the machine-wide latency lock before it started: a
    /// latency phase for other measurements and heavy stages, a build or another phase for a
    /// measurement (`load::exclusive`). Not counted in `seconds` or against a budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_wait_seconds: Option<f64>,
    /// When the stage started (RFC 3339, UTC, milliseconds): with `seconds`, when it ran, so
    /// that the stages of two runs on one machine can be laid side by side.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub started_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Harness {
    pub proctor_version: String,
    pub engine_version: Option<String>,
    pub engine_api_version: Option<String>,
    pub runc_version: Option<String>,
    pub engine_os: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SubmissionInfo {
    /// What was handed in, as given on the command line.
    pub source: String,
    /// `directory`, `tar`, `tar.gz` or `url`.
    pub kind: String,
    /// SHA-256 of the vetted build context (a canonical tar), when one was made.
    pub context_sha256: Option<String>,
    pub files: Option<u64>,
    pub bytes: Option<u64>,
    /// The commit graded, for a git source.
    pub commit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImageInfo {
    pub id: String,
    pub base_images: Vec<String>,
    pub size_bytes: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GraderInfo {
    pub name: String,
    pub assignment: String,
    pub path: String,
    pub sha256: String,
    /// The grader's `[grader] note`, shown under the score (e.g. that a hidden grader tests more).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContainerInfo {
    /// Present once the container has stopped.
    pub exit_code: Option<i64>,
    pub oom_killed: Option<bool>,
    /// Processes the kernel killed for memory inside the container while it was graded (the
    /// service may have survived them).
    pub oom_kills: u64,
    /// Highest memory use seen, in bytes (/tmp included: it is memory).
    pub memory_peak_bytes: Option<u64>,
    pub memory_limit_bytes: u64,
    /// Highest number of processes and threads seen (sampled once a second).
    pub pids_peak: Option<u64>,
    pub pids_limit: i64,
    /// Last lines of the service's stdout/stderr, sanitized and bounded.
    pub log_tail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QualityReport {
    pub dataset: String,
    /// Instances sent.
    pub instances: u64,
    /// Instances that got a valid probability.
    pub scored: u64,
    /// Why the others did not, by reason (first few reasons only).
    pub failures: BTreeMap<String, u64>,
    /// Metric name to value, on the graded dataset.
    pub metrics: BTreeMap<String, f64>,
    pub compare_dataset: Option<String>,
    pub compare_auc: Option<f64>,
    /// compare AUC minus graded AUC: large and positive hints at overfitting or leakage.
    pub auc_gap: Option<f64>,
    /// The ROC curve on the graded dataset, at most 101 points from (0, 0) to (1, 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roc: Vec<RocPoint>,
    /// The reliability diagram on the graded dataset: ten equal-width bins of predicted
    /// probability, empty bins left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<CalibrationBin>,
    /// Metrics in `metrics` that are reported, not scored (`[quality] report`): on imbalanced
    /// data accuracy misleads (a model that flags nothing is 99% accurate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unscored: Vec<String>,
    /// The declared segments (`[[quality.segment]]`), each with its own metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentQuality>,
}

/// One segment of the graded dataset, scored on its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SegmentQuality {
    pub name: String,
    /// Scored instances in it, and the positives among them.
    pub instances: u64,
    pub positives: u64,
    /// Metric name to value, as in the whole dataset's `metrics` (where defined).
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RocPoint {
    pub false_positive_rate: f64,
    pub true_positive_rate: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CalibrationBin {
    /// The bin's predicted probabilities, [lo, hi).
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
    pub mean_predicted: f64,
    /// Share of positives among the bin's instances.
    pub observed_rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConsistencyReport {
    pub instances: u64,
    pub requests_under_load: u64,
    pub concurrency: u64,
    /// Answers under load that differed from the idle answer for the same instance.
    pub mismatches: u64,
    /// Requests under load that got no valid answer.
    pub failures: u64,
    /// Median latency of the first (fresh) and of a repeated idle request per instance.
    pub fresh_median_ms: f64,
    pub repeat_median_ms: f64,
    /// Repeated inputs answered much faster than fresh ones: the service may cache.
    pub caching_suspected: bool,
}

/// Invariants of the prediction API checked on seeded batches of dataset rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InvariantsReport {
    pub dataset: String,
    pub trials: u64,
    pub batch_size: u64,
    /// Predict requests sent, shrinking included.
    pub requests: u64,
    /// Distinct valid scores among every prediction received. A service that answers one
    /// constant passes order, batch independence and determinism trivially; this says so.
    pub distinct_scores: u64,
    pub invariants: Vec<InvariantOutcome>,
}

/// One invariant's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InvariantOutcome {
    /// The check's name.
    pub name: String,
    /// `order`, `independence`, `determinism` or `relation`.
    pub kind: String,
    pub passed: bool,
    /// The smallest failing case found, when one was.
    pub counterexample: Option<Counterexample>,
}

/// A failing case, shrunk: row indices of the dataset (from 0, in file order) and the scores
/// compared, never whole bodies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Counterexample {
    /// The rows of the one request that shows it, in the order sent.
    pub batch: Vec<u64>,
    /// The row whose prediction is wrong.
    pub row: u64,
    /// The scores compared: expected (e.g. alone, or the first answer) then received; for a
    /// relation, the one score.
    pub scores: Vec<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftReport {
    pub window: u64,
    pub baseline: DriftBaseline,
    pub scenarios: Vec<DriftScenarioReport>,
    /// Over (scenario, feature) pairs: was the shifted feature the one flagged?
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Per feature, how often the service's statistics agreed with proctor's recomputation
    /// (with `[drift.statistics]` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statistics: Vec<FeatureAgreement>,
}

/// How one feature's reported statistics compared with proctor's, over every poll read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeatureAgreement {
    pub feature: String,
    /// The method the grader expects for this feature's type (None: not declared).
    pub expected_method: Option<String>,
    /// The methods the service reported, each once.
    pub reported_methods: Vec<String>,
    pub polls: u64,
    /// Polls whose statistic, p-value, missing share and missing p-value all agreed.
    pub agreed_polls: u64,
    /// The first disagreement: poll, what the service said, what proctor computed.
    pub first_disagreement: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftBaseline {
    pub instances: u64,
    pub polls: u64,
    /// Polls on in-distribution traffic that said drift.
    pub flagged_polls: u64,
    pub false_alarms_per_1000_instances: f64,
    /// Features the false alarms named, with how often.
    pub flagged_features: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftScenarioReport {
    pub name: String,
    pub features: Vec<String>,
    /// Runs that detected the shift within `max_delay`, of `runs.len()` (`[drift] replicates`).
    pub detected_runs: u32,
    /// Each run of the scenario, in order.
    pub runs: Vec<DriftScenarioRun>,
}

/// One run of a scenario: a window flush, then the shifted segment on fresh rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftScenarioRun {
    pub detected: bool,
    /// Instances from the start of the shift to the first poll that said drift.
    pub delay_instances: Option<u64>,
    /// Features the service flagged at the end of the shifted segment.
    pub flagged_features: Vec<String>,
    /// The harness's own statistics on the same window, beside the service's claim.
    pub recomputed: Vec<FeatureDrift>,
    /// Every poll of the shifted segment: what the service said, for a timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub polls: Vec<DriftPoll>,
}

/// One poll of a scenario's run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftPoll {
    /// Shifted instances sent before this poll.
    pub instances: u64,
    /// The overall verdict; None when the endpoint could not be read.
    pub drift: Option<bool>,
    /// The p-value the service reported for each shifted feature (None: none reported).
    pub p_values: BTreeMap<String, Option<f64>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeatureDrift {
    pub feature: String,
    /// `ks` (numeric) or `chi2` (categorical, boolean).
    pub method: String,
    pub statistic: Option<f64>,
    pub p_value: Option<f64>,
    pub psi: Option<f64>,
    /// Wasserstein-1 in units of the reference's standard deviation (numeric), or
    /// Jensen-Shannon divergence (categorical).
    pub distance: Option<f64>,
    pub missing_share: f64,
    pub service_flagged: Option<bool>,
    pub service_statistic: Option<f64>,
    pub service_p_value: Option<f64>,
    /// Nullable features: the two-proportion z-test of the missing share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_p_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_missing_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_missing_p_value: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MonitoringReport {
    pub requests_sent: u64,
    pub instances_sent: u64,
    /// How much the prediction counter rose (None: not found).
    pub counter_delta: Option<f64>,
    /// How much the latency histogram's count rose (None: not found).
    pub histogram_count_delta: Option<f64>,
    /// Requests the contract says must be rejected, sent between the accepted ones.
    #[serde(default)]
    pub rejected_sent: u64,
    /// Of those, how many the service answered 2xx anyway.
    #[serde(default)]
    pub rejected_answered_2xx: u64,
    /// How much the drift window's `instances_seen` rose (None: not declared or not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_seen_delta: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbesReport {
    pub dataset: String,
    /// Cases the schema produced, and how many of them this run sent (a seeded sample unless
    /// `--probe all`).
    pub generated: u64,
    pub sent: u64,
    /// The probes' checks are hidden: a candidate's view drops this section.
    pub hidden: bool,
    pub classes: Vec<ProbeClassReport>,
    /// Every failed case with the request sent. Never in a candidate's view (it would show
    /// which inputs are probed); the checks' messages name the class and features only.
    pub failures: Vec<ProbeFailure>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeClassReport {
    /// Its stable name, e.g. `number_as_string`.
    pub class: String,
    pub cases: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeFailure {
    pub class: String,
    pub feature: Option<String>,
    /// The first bytes of the request body (invalid UTF-8 replaced), bounded.
    pub request_excerpt: String,
    /// `refused` or `answered` (what the service should have done).
    pub expected: String,
    /// The status and a body excerpt received, or why nothing was.
    pub received: String,
}
