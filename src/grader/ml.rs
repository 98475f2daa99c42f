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
///
/// Two encodings, one model: the grader's phases always hold a batch as instances (one JSON
/// object per row) and read one prediction object per instance. `instances` (the default)
/// sends them as a JSON array where the template says `$INSTANCES` and reads an array of
/// prediction objects at `predictions`. `tensors` (`[prediction.tensors]`, the Open Inference
/// Protocol's shape) sends one named tensor per feature, column-major, where the template says
/// `$TENSORS`, and reads the output tensors at `tensors.outputs`, each instance's prediction
/// object holding one value of every output, by the output's name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionApi {
    pub path: UrlPath,
    /// The request body, with `$INSTANCES` standing for the JSON array of instances (or, with
    /// `[prediction.tensors]`, `$TENSORS` for the JSON array of input tensors).
    pub body_template: String,
    /// JSON Pointer to the array of predictions in the response, one per instance in order
    /// (the `instances` encoding).
    pub predictions: Option<String>,
    /// JSON Pointer inside one prediction to the probability of the positive class (with
    /// tensors, `/` and the output's name, e.g. `/probability`).
    pub score: String,
    /// Most instances per request.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Send features as named tensors, one per feature.
    pub tensors: Option<TensorSpec>,
}

/// `[prediction.tensors]`: the column-major encoding of the Open Inference Protocol (V2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// Each feature tensor's `datatype`, by the feature's schema type, e.g.
    /// `{ number = "FP32", integer = "INT64", categorical = "BYTES", boolean = "BOOL" }`.
    pub datatypes: BTreeMap<String, String>,
    /// JSON Pointer to the response's list of output tensors.
    #[serde(default = "default_outputs")]
    pub outputs: String,
    /// Each feature's datatype, resolved from the datasets' schema when the grader is loaded.
    #[serde(skip)]
    pub by_feature: BTreeMap<String, String>,
}

fn default_outputs() -> String {
    "/outputs".into()
}

fn default_max_batch() -> usize {
    64
}

/// Where the batch goes in a template: `$TENSORS` with tensors, else `$INSTANCES`.
pub fn placeholder(tensors: bool) -> &'static str {
    if tensors {
        "$TENSORS"
    } else {
        "$INSTANCES"
    }
}

impl PredictionApi {
    /// The request body holding `instances`.
    pub fn body(&self, instances: &[serde_json::Map<String, serde_json::Value>]) -> String {
        let batch = match &self.tensors {
            None => serde_json::to_string(instances).expect("instances serialize"),
            Some(t) => serde_json::to_string(&t.tensors_of(instances)).expect("tensors serialize"),
        };
        self.body_template
            .replace(placeholder(self.tensors.is_some()), &batch)
    }

    /// One prediction object per instance of a response to a request of `n` instances, or why
    /// there is none (the response does not have the shape the grader declares).
    pub fn predictions_of(
        &self,
        response: &mut serde_json::Value,
        n: usize,
    ) -> Result<Vec<serde_json::Value>, String> {
        match &self.tensors {
            None => {
                let pointer = self.predictions.as_deref().unwrap_or("");
                let predictions = response
                    .pointer_mut(pointer)
                    .and_then(serde_json::Value::as_array_mut)
                    .ok_or_else(|| format!("no array at `{pointer}` in the response"))?;
                if predictions.len() != n {
                    return Err(format!(
                        "{} predictions for {n} instances",
                        predictions.len()
                    ));
                }
                Ok(std::mem::take(predictions))
            }
            Some(t) => t.predictions_of(response, n),
        }
    }

    /// How many instances a request body built from the template holds; None when the body
    /// does not have the template's shape.
    pub fn instances_in(&self, body: &str) -> Option<usize> {
        const MARK: &str = "\"$proctor-batch\"";
        let mark = placeholder(self.tensors.is_some());
        let template: serde_json::Value =
            serde_json::from_str(&self.body_template.replace(mark, MARK)).ok()?;
        let pointer = pointer_to(&template, MARK.trim_matches('"'), String::new())?;
        let body: serde_json::Value = serde_json::from_str(body).ok()?;
        let batch = body.pointer(&pointer)?.as_array()?;
        match &self.tensors {
            None => Some(batch.len()),
            // The length of the first tensor's data.
            Some(_) => batch.first()?.get("data")?.as_array().map(Vec::len),
        }
    }
}

impl TensorSpec {
    /// One tensor per feature (in the order the instances hold them), its values in instance
    /// order: `{"name", "shape": [n], "datatype", "data"}`. An instance without a feature
    /// leaves that tensor one value short, as a client that lost a value would send it.
    pub fn tensors_of(
        &self,
        instances: &[serde_json::Map<String, serde_json::Value>],
    ) -> Vec<serde_json::Value> {
        let mut names: Vec<&String> = Vec::new();
        for inst in instances {
            for k in inst.keys() {
                if !names.contains(&k) {
                    names.push(k);
                }
            }
        }
        names
            .into_iter()
            .map(|name| {
                let data: Vec<serde_json::Value> = instances
                    .iter()
                    .filter_map(|i| i.get(name).cloned())
                    .collect();
                let datatype = self
                    .by_feature
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| datatype_of(&data));
                serde_json::json!({
                    "name": name,
                    "shape": [instances.len()],
                    "datatype": datatype,
                    "data": data,
                })
            })
            .collect()
    }

    /// Each instance's prediction object: `{output name: its value for that instance}` for
    /// every output tensor whose data holds one value per instance (`[n]`, or `[n, 1]` nested).
    fn predictions_of(
        &self,
        response: &serde_json::Value,
        n: usize,
    ) -> Result<Vec<serde_json::Value>, String> {
        let outputs = response
            .pointer(&self.outputs)
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| format!("no array of output tensors at `{}`", self.outputs))?;
        let mut objects = vec![serde_json::Map::new(); n];
        for o in outputs {
            let Some(name) = o.get("name").and_then(serde_json::Value::as_str) else {
                return Err("an output tensor without a name".into());
            };
            let data = o
                .get("data")
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| format!("output `{name}` has no data array"))?;
            // Row-major `[n, 1]` may come nested: one value per row either way.
            let values: Vec<&serde_json::Value> = data
                .iter()
                .map(|v| match v.as_array() {
                    Some(inner) if inner.len() == 1 => &inner[0],
                    _ => v,
                })
                .collect();
            if values.len() != n {
                return Err(format!(
                    "output `{name}` holds {} values for {n} instances",
                    values.len()
                ));
            }
            for (obj, v) in objects.iter_mut().zip(values) {
                obj.insert(name.to_string(), v.clone());
            }
        }
        Ok(objects.into_iter().map(serde_json::Value::Object).collect())
    }

    /// Fills `by_feature` from the schema; an error names a schema type without a datatype.
    pub fn resolve(&mut self, schema: &crate::data::Schema) -> Result<(), String> {
        for f in &schema.features {
            let kind = match f.kind {
                crate::data::FeatureKind::Number => "number",
                crate::data::FeatureKind::Integer => "integer",
                crate::data::FeatureKind::Categorical => "categorical",
                crate::data::FeatureKind::Boolean => "boolean",
            };
            let d = self.datatypes.get(kind).ok_or_else(|| {
                format!(
                    "no datatype for the schema type `{kind}` (feature {})",
                    f.name
                )
            })?;
            self.by_feature.insert(f.name.clone(), d.clone());
        }
        Ok(())
    }
}

/// A datatype for values of a key the schema does not have (an unknown feature).
fn datatype_of(data: &[serde_json::Value]) -> String {
    match data.first() {
        Some(serde_json::Value::Bool(_)) => "BOOL",
        Some(serde_json::Value::String(_)) => "BYTES",
        Some(serde_json::Value::Number(n)) if n.is_i64() => "INT64",
        _ => "FP32",
    }
    .to_string()
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
    /// The area under the precision-recall curve: on imbalanced data, what AUC hides.
    AveragePrecision,
    /// The share of positives caught at a false positive rate of at most `fpr`.
    RecallAtFpr,
    /// The cost per 1000 instances of the service's own decisions under `costs`.
    ExpectedCost,
    Accuracy,
    LogLoss,
    /// Mean squared error of the probabilities.
    Brier,
    CalibrationError,
}

impl QualityMetric {
    pub fn name(self) -> &'static str {
        match self {
            QualityMetric::Auc => "AUC",
            QualityMetric::AveragePrecision => "average precision",
            QualityMetric::RecallAtFpr => "recall at a false positive rate",
            QualityMetric::ExpectedCost => "expected cost per 1000",
            QualityMetric::Accuracy => "accuracy",
            QualityMetric::LogLoss => "log loss",
            QualityMetric::Brier => "Brier score",
            QualityMetric::CalibrationError => "calibration error",
        }
    }

    /// Whether it is computed from the scores alone (no parameter, no decision).
    pub fn from_scores(self) -> bool {
        !matches!(
            self,
            QualityMetric::RecallAtFpr | QualityMetric::ExpectedCost
        )
    }
}

/// The cost of each kind of decision, per instance (`expected_cost`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostMatrix {
    #[serde(default)]
    pub true_positive: f64,
    pub false_positive: f64,
    pub false_negative: f64,
    #[serde(default)]
    pub true_negative: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub metric: QualityMetric,
    pub full_points_at: f64,
    pub zero_points_at: f64,
    pub points: Points,
    /// `recall_at_fpr`: the largest false positive rate, e.g. 0.01.
    pub fpr: Option<f64>,
    /// `expected_cost`: what each decision costs.
    pub costs: Option<CostMatrix>,
    /// `expected_cost`: JSON Pointer inside one prediction to the service's own decision (a
    /// boolean), e.g. `/flagged`; without it, `threshold` decides from the score.
    pub decision: Option<String>,
    pub threshold: Option<f64>,
}

impl MetricSpec {
    pub fn curve(&self) -> Curve {
        Curve {
            full_points_at: self.full_points_at,
            zero_points_at: self.zero_points_at,
            points: self.points,
        }
    }

    /// The metric's name with its parameter: `recall at 1% FPR`.
    pub fn label(&self) -> String {
        match (self.metric, self.fpr) {
            (QualityMetric::RecallAtFpr, Some(f)) => format!("recall at {}% FPR", f * 100.0),
            (m, _) => m.name().to_string(),
        }
    }

    /// What its parameters lack, if anything.
    pub fn invalid(&self) -> Option<(&'static str, String)> {
        match self.metric {
            QualityMetric::RecallAtFpr if !self.fpr.is_some_and(|f| f > 0.0 && f < 1.0) => Some((
                "fpr",
                "recall_at_fpr needs fpr, a false positive rate between 0 and 1".into(),
            )),
            QualityMetric::ExpectedCost if self.costs.is_none() => Some((
                "costs",
                "expected_cost needs costs = { false_positive = ..., false_negative = ... }".into(),
            )),
            QualityMetric::ExpectedCost if self.decision.is_none() && self.threshold.is_none() => {
                Some((
                    "decision",
                    "expected_cost needs the service's decision (a JSON Pointer in a \
                     prediction) or a threshold on the score"
                        .into(),
                ))
            }
            _ => None,
        }
    }
}

/// A part of the dataset scored on its own: the rows whose `feature` equals `equals`, or lies
/// within `[min, max]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    pub name: String,
    pub feature: String,
    pub equals: Option<toml::Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The worst segment's gap to the whole dataset on one metric, on a curve (a model that is good
/// overall and poor on a critical segment loses these points).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentGapSpec {
    /// A metric computed from scores alone (`auc`, `average_precision`, ...).
    pub metric: QualityMetric,
    pub full_points_at: f64,
    pub zero_points_at: f64,
    pub points: Points,
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
    /// Metrics computed and reported, not scored (e.g. accuracy, which misleads on imbalanced
    /// data: the report says so beside them).
    #[serde(default)]
    pub report: Vec<QualityMetric>,
    /// Parts of the dataset scored on their own (`[[quality.segment]]`).
    #[serde(default)]
    pub segment: Vec<SegmentSpec>,
    pub segment_gap: Option<SegmentGapSpec>,
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
    /// A method `psi` (the population stability index, over the reference's deciles or one
    /// bin per category, as proctor computes it) agrees within `psi_tolerance +
    /// psi_relative_tolerance × proctor's`.
    #[serde(default = "default_psi_tolerance")]
    pub psi_tolerance: f64,
    #[serde(default = "default_psi_relative_tolerance")]
    pub psi_relative_tolerance: f64,
    /// Below this many non-null values of a feature in the window, a service may report no
    /// statistic (`null`) for it.
    #[serde(default)]
    pub min_values: usize,
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
fn default_psi_tolerance() -> f64 {
    0.005
}
fn default_psi_relative_tolerance() -> f64 {
    0.02
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
