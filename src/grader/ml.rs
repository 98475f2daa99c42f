//! The sections of a grader file that grade the model behind the API: datasets, how to ask
//! for predictions, prediction quality, consistency under load, drift handling and
//! monitoring. All of it is declared, none of it assignment-specific.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Points, UrlPath, Visibility};
use crate::data::transform::Shift;

/// A CSV file of rows typed by a feature schema (paths relative to the grader file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub name: String,
    pub csv: PathBuf,
    pub schema: PathBuf,
}

/// How to ask the service for predictions of a batch of instances.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionApi {
    pub path: UrlPath,
    /// The request body, with `$INSTANCES` standing for the JSON array of instances.
    pub body_template: String,
    /// JSON Pointer to the array of predictions in the response, one per instance in order.
    pub predictions: String,
    /// JSON Pointer inside one prediction to the probability of the positive class.
    pub score: String,
    /// Most instances per request.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

fn default_max_batch() -> usize {
    64
}

impl PredictionApi {
    /// The request body holding `instances`.
    pub fn body(&self, instances: &[serde_json::Map<String, serde_json::Value>]) -> String {
        let array = serde_json::to_string(instances).expect("instances serialize");
        self.body_template.replace("$INSTANCES", &array)
    }

    /// How many instances a request body built from the template holds (the length of the
    /// array where the template says `$INSTANCES`); None when the body does not have the
    /// template's shape.
    pub fn instances_in(&self, body: &str) -> Option<usize> {
        const MARK: &str = "\"$proctor-instances\"";
        let template: serde_json::Value =
            serde_json::from_str(&self.body_template.replace("$INSTANCES", MARK)).ok()?;
        let pointer = pointer_to(&template, MARK.trim_matches('"'), String::new())?;
        let body: serde_json::Value = serde_json::from_str(body).ok()?;
        body.pointer(&pointer)?.as_array().map(Vec::len)
    }
}

/// The JSON Pointer of the string `mark` in `v`.
fn pointer_to(v: &serde_json::Value, mark: &str, at: String) -> Option<String> {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match v {
        serde_json::Value::String(s) if s == mark => Some(at),
        serde_json::Value::Object(m) => m
            .iter()
            .find_map(|(k, v)| pointer_to(v, mark, format!("{at}/{}", escape(k)))),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| pointer_to(v, mark, format!("{at}/{i}"))),
        _ => None,
    }
}

/// A point curve over a measured value: full points at `full_points_at`, none at
/// `zero_points_at`, linear between. Works in either direction (AUC rises, log loss falls).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curve {
    pub full_points_at: f64,
    pub zero_points_at: f64,
    pub points: Points,
}

impl Curve {
    pub fn points_for(&self, value: f64) -> f64 {
        let (full, zero, max) = (self.full_points_at, self.zero_points_at, self.points.0);
        let t = if full > zero {
            (value - zero) / (full - zero)
        } else {
            (zero - value) / (zero - full)
        };
        if !value.is_finite() {
            return 0.0;
        }
        crate::score::round2(max * t.clamp(0.0, 1.0))
    }

    pub fn describe(&self) -> String {
        format!(
            "full points at {}, none at {}",
            self.full_points_at, self.zero_points_at
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityMetric {
    Auc,
    Accuracy,
    LogLoss,
    CalibrationError,
}

impl QualityMetric {
    pub fn name(self) -> &'static str {
        match self {
            QualityMetric::Auc => "AUC",
            QualityMetric::Accuracy => "accuracy",
            QualityMetric::LogLoss => "log loss",
            QualityMetric::CalibrationError => "calibration error",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub metric: QualityMetric,
    pub full_points_at: f64,
    pub zero_points_at: f64,
    pub points: Points,
}

impl MetricSpec {
    pub fn curve(&self) -> Curve {
        Curve {
            full_points_at: self.full_points_at,
            zero_points_at: self.zero_points_at,
            points: self.points,
        }
    }
}

/// Prediction quality on a labelled dataset (normally hidden holdout data).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySpec {
    pub dataset: String,
    /// Score only rows without missing values: missing-value handling is graded on its own,
    /// so that one defect costs points in one category.
    #[serde(default = "yes")]
    pub complete_rows_only: bool,
    #[serde(default)]
    pub metric: Vec<MetricSpec>,
    /// A second labelled dataset (e.g. the public validation set) whose AUC is compared with
    /// the first: a large gap hints at overfitting or leakage.
    pub compare_dataset: Option<String>,
    pub gap: Option<GapSpec>,
    pub visibility: Option<Visibility>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GapSpec {
    /// Largest AUC gap (compare dataset minus graded dataset) that earns the points.
    pub max_auc_gap: f64,
    pub points: Points,
}

/// The same instances must get the same predictions idle and under concurrent load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencySpec {
    pub dataset: String,
    #[serde(default = "default_consistency_instances")]
    pub instances: usize,
    #[serde(default = "default_consistency_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_rounds")]
    pub rounds: usize,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    pub points: Points,
    pub visibility: Option<Visibility>,
}

fn default_consistency_instances() -> usize {
    48
}
fn default_consistency_concurrency() -> usize {
    16
}
fn default_rounds() -> usize {
    4
}
fn default_tolerance() -> f64 {
    1e-6
}

/// Drift handling: in-distribution traffic first (false alarms), then each scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSpec {
    /// Source of in-distribution rows.
    pub dataset: String,
    /// The service's drift endpoint (GET).
    pub path: UrlPath,
    /// The service's window, in instances: this many in-distribution instances are sent
    /// before each measurement so that earlier traffic has left the window.
    pub window: usize,
    #[serde(default = "default_drift_batch")]
    pub batch_size: usize,
    /// Instances between two polls of the drift endpoint.
    pub poll_every: usize,
    /// In-distribution instances (after the flush) during which false alarms are counted.
    pub baseline_instances: usize,
    /// A detection within this many instances of a shift's start is a hit.
    pub max_delay: usize,
    /// Pointer to the overall verdict (a boolean).
    pub overall: String,
    /// Pointer to one feature's verdict, with `{feature}` standing for its name.
    pub feature_flag: String,
    /// Largest share of in-distribution polls flagged that keeps full false-alarm points.
    pub max_false_alarm_rate: f64,
    /// Share of flagged in-distribution polls at which no false-alarm points remain.
    #[serde(default = "default_false_alarm_zero")]
    pub false_alarm_zero_rate: f64,
    pub false_alarm_points: Points,
    /// Split evenly over the scenarios: a hit within `max_delay` earns a scenario's share.
    pub detection_points: Points,
    /// Runs of every scenario, each on fresh rows after its own window flush. A scenario earns
    /// its detection share in proportion to the runs that detected it, and attribution counts
    /// every run: a detector near its threshold on one scenario detects it in some runs and
    /// not in others, and one run would make its points a coin toss that the seed decides.
    #[serde(default = "default_replicates")]
    pub replicates: usize,
    /// Earned by F1 over (scenario, feature) pairs: which feature was flagged.
    pub attribution_points: Points,
    /// F1 that earns full attribution points. Below 1 by default: a correct detector at the
    /// contract's error rate sometimes flags one more feature in one of several scenarios.
    #[serde(default = "default_full_f1")]
    pub attribution_full_f1: f64,
    /// F1 at which no attribution points remain (linear between).
    #[serde(default = "default_zero_f1")]
    pub attribution_zero_f1: f64,
    #[serde(default)]
    pub scenario: Vec<DriftScenario>,
    /// The data the service compares its window with (the assignment's training data). proctor
    /// recomputes the statistics against it. Default: `dataset`, which is right only when the
    /// traffic is drawn from the training data itself.
    pub reference_dataset: Option<String>,
    /// Scored agreement of the service's statistics with proctor's recomputation.
    pub statistics: Option<DriftStatisticsSpec>,
    pub visibility: Option<Visibility>,
}

/// `[drift.statistics]`: on every poll, the statistics the service reports per feature are
/// compared with proctor's recomputation on the same window, separately from detection.
///
/// The contract lets a service compare with a uniform sample of at least
/// `min_reference_sample` training rows instead of all of them, which moves its statistics by
/// sampling noise alone; the tolerances are sized for that, and a p-value is judged against the
/// statistic the service itself reports (for every reference size the contract allows), so a
/// p-value that does not follow from its own statistic (one divided by 10) fails however the
/// reference was sampled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftStatisticsSpec {
    /// The `method` each schema type must report, e.g. `{ number = "ks", categorical = "chi2" }`.
    pub methods: BTreeMap<String, String>,
    /// Earned by the share of features whose reported method is the declared one at every poll.
    pub method_points: Points,
    /// Earned on a curve by the share of (poll, feature) pairs whose statistics agree.
    pub statistics_points: Points,
    /// Largest absolute difference of a KS statistic and of a missing share. The default,
    /// 0.04 = 1.8 / √2000, covers a 2,000-row reference sample (measured: at most 0.032).
    #[serde(default = "default_statistic_tolerance")]
    pub statistic_tolerance: f64,
    /// A chi-square statistic agrees within `chi2_tolerance + chi2_relative_tolerance × ours`
    /// (measured with a 2,000-row sample on in-distribution windows: at most 4.0 apart).
    #[serde(default = "default_chi2_tolerance")]
    pub chi2_tolerance: f64,
    #[serde(default = "default_chi2_relative_tolerance")]
    pub chi2_relative_tolerance: f64,
    /// Largest distance, in decades (log10), of a p-value from what its statistic gives.
    #[serde(default = "default_p_value_tolerance")]
    pub p_value_tolerance: f64,
    /// p-values below this compare as equal: the decision threshold is far above, and exact
    /// and asymptotic methods part ways down there.
    #[serde(default = "default_p_value_floor")]
    pub p_value_floor: f64,
    /// Smallest reference sample the contract allows a service to compare with.
    #[serde(default = "default_min_reference_sample")]
    pub min_reference_sample: usize,
    /// Share of agreeing (poll, feature) pairs that earns full statistics points...
    #[serde(default = "default_full_agreement")]
    pub full_agreement: f64,
    /// ...and the share at which none remain (linear between).
    #[serde(default = "default_zero_agreement")]
    pub zero_agreement: f64,
}

fn default_statistic_tolerance() -> f64 {
    0.04
}
fn default_chi2_tolerance() -> f64 {
    5.0
}
fn default_chi2_relative_tolerance() -> f64 {
    0.25
}
fn default_p_value_tolerance() -> f64 {
    0.3
}
fn default_p_value_floor() -> f64 {
    1e-10
}
fn default_min_reference_sample() -> usize {
    2000
}
fn default_full_agreement() -> f64 {
    0.95
}
fn default_zero_agreement() -> f64 {
    0.5
}

fn default_full_f1() -> f64 {
    0.8
}
fn default_zero_f1() -> f64 {
    0.3
}
fn default_replicates() -> usize {
    1
}
fn default_drift_batch() -> usize {
    50
}
fn default_false_alarm_zero() -> f64 {
    0.5
}

/// Unknown fields are caught by `Shift`, which receives every field not named here.
#[derive(Debug, Clone, Deserialize)]
pub struct DriftScenario {
    pub name: String,
    pub features: Vec<String>,
    #[serde(flatten)]
    pub shift: Shift,
    /// Length of the shifted segment, in instances.
    pub instances: usize,
    /// Gradual onset: the shift ramps up over this many instances (0: at once).
    #[serde(default)]
    pub onset: usize,
}

/// Monitoring: the Prometheus endpoint must count what proctor sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    pub path: UrlPath,
    pub dataset: String,
    /// Counter that must rise by exactly the number of instances predicted.
    pub predictions_counter: String,
    /// Histogram whose count must rise by exactly the number of predict requests.
    pub latency_histogram: String,
    #[serde(default = "default_metric_requests")]
    pub requests: usize,
    #[serde(default = "default_metric_batch")]
    pub instances_per_request: usize,
    /// Sizes of the accepted batches, used in turn (e.g. `[1, 3, 7]`); replaces
    /// `instances_per_request` when given.
    pub batch_sizes: Option<Vec<usize>>,
    /// Requests the contract says must be rejected, sent between the accepted ones (a missing
    /// feature, a number sent as a string, an empty batch, invalid JSON, in turn). They must
    /// count nowhere. 0 sends valid traffic only.
    #[serde(default = "default_rejected_requests")]
    pub rejected_requests: usize,
    pub counter_points: Points,
    pub histogram_points: Points,
    /// The drift endpoint (GET), read before and after to check that only accepted
    /// instances entered the drift window. Give it with `instances_seen` and `window_points`.
    pub drift_path: Option<UrlPath>,
    /// Pointer to the count of instances the drift window has seen, e.g. `/instances_seen`.
    pub instances_seen: Option<String>,
    pub window_points: Option<Points>,
    pub visibility: Option<Visibility>,
}

impl MetricsSpec {
    /// The accepted batch sizes, in the order they are used.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batch_sizes
            .clone()
            .unwrap_or_else(|| vec![self.instances_per_request])
    }
}

fn default_rejected_requests() -> usize {
    4
}

fn default_metric_requests() -> usize {
    10
}
fn default_metric_batch() -> usize {
    3
}
