//! Prediction quality: the labelled dataset (normally the hidden holdout) goes through the
//! service in batches, and the answers are scored (AUC, accuracy, log loss, calibration error)
//! on the grader's point curves. The gap to a second dataset's AUC is reported beside it.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{Category, DeclaredCheck};
use crate::grader::LoadedGrader;
use std::collections::BTreeMap;

use crate::data::{stats, Dataset};
use crate::grader::{
    Curve, MetricSpec, PredictionApi, QualityMetric, QualitySpec, SegmentSpec, Visibility,
};
use crate::phases::predict::{rows_of, Predictor};
use crate::report::{CalibrationBin, CheckResult, QualityReport, RocPoint, SegmentQuality};
use crate::target::Target;

/// Points of the report's ROC curve, at most, and bins of its reliability diagram (the bins of
/// the calibration error).
const ROC_POINTS: usize = 101;
const CALIBRATION_BINS: usize = 10;

/// Below this share of validly answered instances no quality metric is meaningful.
const MIN_SCORED_SHARE: f64 = 0.9;

pub fn metric_check_name(m: &MetricSpec, dataset: &str) -> String {
    format!("{} on {dataset}", m.label())
}

pub fn segment_gap_check_name(m: QualityMetric, dataset: &str) -> String {
    format!("worst segment's {} gap to the whole on {dataset}", m.name())
}

pub fn gap_check_name(compare: &str, dataset: &str) -> String {
    format!("AUC gap between {compare} and {dataset}")
}

struct Scored {
    scores: Vec<f64>,
    labels: Vec<f64>,
    /// The dataset row of each scored instance, and its prediction object (for decisions).
    rows: Vec<usize>,
    objects: Vec<serde_json::Value>,
    sent: usize,
    failures: BTreeMap<String, u64>,
}

impl Scored {
    /// The scored instances whose row `keep` selects.
    fn subset(&self, keep: impl Fn(usize) -> bool) -> Scored {
        let mut out = Scored {
            scores: Vec::new(),
            labels: Vec::new(),
            rows: Vec::new(),
            objects: Vec::new(),
            sent: 0,
            failures: BTreeMap::new(),
        };
        for i in (0..self.rows.len()).filter(|&i| keep(self.rows[i])) {
            out.scores.push(self.scores[i]);
            out.labels.push(self.labels[i]);
            out.rows.push(self.rows[i]);
            out.objects.push(self.objects[i].clone());
        }
        out.sent = out.rows.len();
        out
    }
}

async fn score_dataset(predictor: &Predictor<'_>, data: &Dataset, complete_only: bool) -> Scored {
    let rows = rows_of(data, complete_only);
    let instances: Vec<_> = rows.iter().map(|&i| data.instance(&data.rows[i])).collect();
    let labels = data
        .labels
        .as_ref()
        .expect("validated: quality datasets have labels");
    let results = predictor
        .all_objects(&instances, predictor.api.max_batch)
        .await;
    let mut out = Scored {
        scores: Vec::new(),
        labels: Vec::new(),
        rows: Vec::new(),
        objects: Vec::new(),
        sent: rows.len(),
        failures: BTreeMap::new(),
    };
    for (&row, r) in rows.iter().zip(results) {
        match r {
            Ok((object, p)) => {
                out.scores.push(p);
                out.labels.push(labels[row]);
                out.rows.push(row);
                out.objects.push(object);
            }
            Err(e) => {
                let key = crate::http::sanitize(&e, 80);
                if out.failures.len() < 5 || out.failures.contains_key(&key) {
                    *out.failures.entry(key).or_default() += 1;
                } else {
                    *out.failures.entry("other".into()).or_default() += 1;
                }
            }
        }
    }
    out
}

/// A metric computed from the scores alone; None when undefined (one class absent) or when it
/// needs more (parameters, decisions).
fn score_metric(m: QualityMetric, s: &Scored) -> Option<f64> {
    if s.scores.is_empty() {
        return None;
    }
    match m {
        QualityMetric::Auc => stats::auc(&s.scores, &s.labels),
        QualityMetric::AveragePrecision => stats::average_precision(&s.scores, &s.labels),
        QualityMetric::Accuracy => Some(stats::accuracy(&s.scores, &s.labels)),
        QualityMetric::LogLoss => Some(stats::log_loss(&s.scores, &s.labels)),
        QualityMetric::Brier => Some(stats::brier(&s.scores, &s.labels)),
        QualityMetric::CalibrationError => Some(stats::calibration_error(&s.scores, &s.labels, 10)),
        QualityMetric::RecallAtFpr | QualityMetric::ExpectedCost => None,
    }
}

/// Whether a larger value is better (AUC) or worse (log loss, cost).
fn higher_is_better(m: QualityMetric) -> bool {
    matches!(
        m,
        QualityMetric::Auc
            | QualityMetric::AveragePrecision
            | QualityMetric::RecallAtFpr
            | QualityMetric::Accuracy
    )
}

/// A declared metric's value on `s`, or why it has none.
fn metric_value(m: &MetricSpec, s: &Scored) -> Result<f64, String> {
    let undefined = || format!("{} is undefined on these answers", m.label());
    match m.metric {
        QualityMetric::RecallAtFpr => {
            stats::recall_at_fpr(&s.scores, &s.labels, m.fpr.unwrap_or(0.0)).ok_or_else(undefined)
        }
        QualityMetric::ExpectedCost => {
            let c = m.costs.expect("validated: expected_cost has costs");
            let costs = stats::Costs {
                true_positive: c.true_positive,
                false_positive: c.false_positive,
                false_negative: c.false_negative,
                true_negative: c.true_negative,
            };
            let decisions: Vec<Option<bool>> = match &m.decision {
                Some(pointer) => s
                    .objects
                    .iter()
                    .map(|o| o.pointer(pointer).and_then(serde_json::Value::as_bool))
                    .collect(),
                None => {
                    let t = m.threshold.unwrap_or(0.5);
                    s.scores.iter().map(|p| Some(*p >= t)).collect()
                }
            };
            let missing = decisions.iter().filter(|d| d.is_none()).count();
            if missing > 0 {
                return Err(format!(
                    "{missing} of {} predictions have no boolean decision at `{}`",
                    decisions.len(),
                    m.decision.as_deref().unwrap_or("")
                ));
            }
            let decisions: Vec<bool> = decisions.into_iter().flatten().collect();
            if decisions.is_empty() {
                return Err(undefined());
            }
            Ok(stats::expected_cost(&decisions, &s.labels, &costs))
        }
        other => score_metric(other, s).ok_or_else(undefined),
    }
}

/// Whether a dataset row is in the segment (a value equal to `equals`, or within the bounds).
fn in_segment(seg: &SegmentSpec, data: &Dataset, row: usize) -> bool {
    let Some((i, _)) = data.schema.feature(&seg.feature) else {
        return false;
    };
    let v = &data.rows[row][i];
    if let Some(want) = &seg.equals {
        return match (want, v) {
            (toml::Value::String(a), serde_json::Value::String(b)) => a == b,
            (toml::Value::Boolean(a), serde_json::Value::Bool(b)) => a == b,
            (toml::Value::Integer(a), serde_json::Value::Number(b)) => {
                b.as_f64() == Some(*a as f64)
            }
            (toml::Value::Float(a), serde_json::Value::Number(b)) => b.as_f64() == Some(*a),
            _ => false,
        };
    }
    let Some(x) = v.as_f64() else {
        return false;
    };
    seg.min.is_none_or(|m| x >= m) && seg.max.is_none_or(|m| x <= m)
}

/// Each segment's share of the answers and its score-based metrics: those the grader scores,
/// reports, and compares segments by.
fn segments_of(spec: &QualitySpec, data: &Dataset, graded: &Scored) -> Vec<SegmentQuality> {
    let mut metrics: Vec<QualityMetric> = spec
        .metric
        .iter()
        .map(|m| m.metric)
        .chain(spec.report.iter().copied())
        .chain(spec.segment_gap.iter().map(|g| g.metric))
        .filter(|m| m.from_scores())
        .collect();
    metrics.dedup();
    spec.segment
        .iter()
        .map(|seg| {
            let part = graded.subset(|row| in_segment(seg, data, row));
            SegmentQuality {
                name: seg.name.clone(),
                instances: part.scores.len() as u64,
                positives: part.labels.iter().filter(|l| **l >= 0.5).count() as u64,
                metrics: metrics
                    .iter()
                    .filter_map(|m| {
                        score_metric(*m, &part)
                            .map(|v| (m.name().to_string(), (v * 10_000.0).round() / 10_000.0))
                    })
                    .collect(),
            }
        })
        .collect()
}

pub async fn run(
    target: &Target,
    api: &PredictionApi,
    spec: &QualitySpec,
    datasets: &BTreeMap<String, std::sync::Arc<Dataset>>,
    default_vis: Visibility,
) -> (Vec<CheckResult>, QualityReport) {
    let predictor = Predictor { target, api };
    let vis = spec.visibility.unwrap_or(default_vis);
    let data = &datasets[&spec.dataset];
    let graded = score_dataset(&predictor, data, spec.complete_rows_only).await;
    let share = graded.scores.len() as f64 / graded.sent.max(1) as f64;
    let mut report = QualityReport {
        dataset: spec.dataset.clone(),
        instances: graded.sent as u64,
        scored: graded.scores.len() as u64,
        failures: graded.failures.clone(),
        compare_dataset: spec.compare_dataset.clone(),
        ..Default::default()
    };
    // The curves behind the metrics, for the report's charts (bounded: 101 ROC points, ten bins).
    let r4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
    report.roc = stats::roc_curve(&graded.scores, &graded.labels, ROC_POINTS)
        .into_iter()
        .map(|(fpr, tpr)| RocPoint {
            false_positive_rate: r4(fpr),
            true_positive_rate: r4(tpr),
        })
        .collect();
    report.calibration = stats::reliability(&graded.scores, &graded.labels, CALIBRATION_BINS)
        .into_iter()
        .map(|b| CalibrationBin {
            lo: b.lo,
            hi: b.hi,
            count: b.count as u64,
            mean_predicted: r4(b.mean_predicted),
            observed_rate: r4(b.observed_rate),
        })
        .collect();
    let mut checks = Vec::new();
    let too_few = |what: &str| {
        format!(
            "only {} of {} instances got a valid probability, too few to measure {what} (first \
             reasons: {})",
            graded.scores.len(),
            graded.sent,
            summarize(&graded.failures)
        )
    };
    for m in &spec.report {
        if let Some(v) = score_metric(*m, &graded) {
            report
                .metrics
                .insert(m.name().to_string(), (v * 10_000.0).round() / 10_000.0);
            report.unscored.push(m.name().to_string());
        }
    }
    for m in &spec.metric {
        let curve = m.curve();
        let value = metric_value(m, &graded);
        if let Ok(v) = value {
            report
                .metrics
                .insert(m.label(), (v * 10_000.0).round() / 10_000.0);
        }
        let (points, message) = match value {
            _ if share < MIN_SCORED_SHARE => (0.0, too_few(&m.label())),
            Err(why) => (0.0, why),
            Ok(v) => (
                curve.points_for(v),
                format!("{} = {v:.4} ({})", m.label(), curve.describe()),
            ),
        };
        checks.push(CheckResult {
            grader: String::new(),
            name: metric_check_name(m, &spec.dataset),
            category: Category::Quality,
            points,
            max_points: m.points.0,
            passed: points >= m.points.0,
            message,
            visibility: vis,
        });
    }
    report.segments = segments_of(spec, data, &graded);
    if let Some(g) = &spec.segment_gap {
        let whole = score_metric(g.metric, &graded);
        // The worst segment: the largest shortfall from the whole (a segment where the metric
        // is undefined, with no positive, is left out).
        let worst = report
            .segments
            .iter()
            .filter_map(|seg| seg.metrics.get(g.metric.name()).map(|v| (seg, *v)))
            .map(|(seg, v)| {
                let w = whole.unwrap_or(f64::NAN);
                (
                    seg,
                    v,
                    if higher_is_better(g.metric) {
                        w - v
                    } else {
                        v - w
                    },
                )
            })
            .max_by(|a, b| a.2.total_cmp(&b.2));
        let curve = Curve {
            full_points_at: g.full_points_at,
            zero_points_at: g.zero_points_at,
            points: g.points,
        };
        let (points, message) = match (worst, whole) {
            _ if share < MIN_SCORED_SHARE => (0.0, too_few("the segments")),
            (Some((seg, v, gap)), Some(w)) if gap.is_finite() => (
                curve.points_for(gap),
                format!(
                    "worst segment {}: {} {v:.4} against {w:.4} overall, a gap of {gap:.4} ({})",
                    seg.name,
                    g.metric.name(),
                    curve.describe()
                ),
            ),
            _ => (
                0.0,
                format!(
                    "{} is undefined on the segments or the whole",
                    g.metric.name()
                ),
            ),
        };
        checks.push(CheckResult {
            grader: String::new(),
            name: segment_gap_check_name(g.metric, &spec.dataset),
            category: Category::Quality,
            points,
            max_points: g.points.0,
            passed: points >= g.points.0,
            message,
            visibility: vis,
        });
    }
    if let Some(compare) = &spec.compare_dataset {
        let other = score_dataset(&predictor, &datasets[compare], spec.complete_rows_only).await;
        let graded_auc = stats::auc(&graded.scores, &graded.labels);
        report.compare_auc =
            stats::auc(&other.scores, &other.labels).map(|v| (v * 10_000.0).round() / 10_000.0);
        report.auc_gap = match (report.compare_auc, graded_auc) {
            (Some(a), Some(b)) => Some(((a - b) * 10_000.0).round() / 10_000.0),
            _ => None,
        };
        if let Some(gap) = &spec.gap {
            // A gap measured on a few answers proves nothing: a service answering only the
            // instances it is sure of would look well generalised.
            let too_few = [(&graded, spec.dataset.as_str()), (&other, compare.as_str())]
                .into_iter()
                .find(|(s, _)| (s.scores.len() as f64) < MIN_SCORED_SHARE * s.sent.max(1) as f64);
            let (passed, message) = match (too_few, report.auc_gap) {
                (Some((s, name)), _) => (
                    false,
                    format!(
                        "only {} of {} instances of {name} got a valid probability, too few to \
                         measure the AUC gap (first reasons: {})",
                        s.scores.len(),
                        s.sent,
                        summarize(&s.failures)
                    ),
                ),
                (None, gap_value) => match gap_value {
                Some(g) if g <= gap.max_auc_gap => (true, format!("AUC {compare} - {} = {g:.4} (allowed up to {})", spec.dataset, gap.max_auc_gap)),
                Some(g) => (
                    false,
                    format!("AUC on {compare} is {g:.4} above {}: the model may be overfitted to, or have seen, public data", spec.dataset),
                ),
                None => (false, "the AUC gap could not be measured".to_string()),
                },
            };
            checks.push(CheckResult {
                grader: String::new(),
                name: gap_check_name(compare, &spec.dataset),
                category: Category::Quality,
                points: if passed { gap.points.0 } else { 0.0 },
                max_points: gap.points.0,
                passed,
                message,
                visibility: vis,
            });
        }
    }
    (checks, report)
}

fn summarize(failures: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = failures.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .take(3)
        .map(|(k, n)| format!("{n}x {k}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Prediction quality on the declared (hidden) datasets.
pub struct Quality;

impl super::Phase for Quality {
    fn name(&self) -> &'static str {
        "quality"
    }

    fn declared(&self, loaded: &LoadedGrader) -> bool {
        loaded.grader.quality.is_some() && loaded.grader.prediction.is_some()
    }

    fn checks(&self, loaded: &LoadedGrader) -> Vec<DeclaredCheck> {
        let g = &loaded.grader;
        let Some(q) = &g.quality else {
            return Vec::new();
        };
        let v = q.visibility.unwrap_or(g.grader.visibility);
        let mut out: Vec<DeclaredCheck> = q
            .metric
            .iter()
            .map(|m| {
                DeclaredCheck::new(
                    metric_check_name(m, &q.dataset),
                    Category::Quality,
                    m.points.0,
                    v,
                )
            })
            .collect();
        if let Some(g) = &q.segment_gap {
            out.push(DeclaredCheck::new(
                segment_gap_check_name(g.metric, &q.dataset),
                Category::Quality,
                g.points.0,
                v,
            ));
        }
        if let (Some(c), Some(gap)) = (&q.compare_dataset, &q.gap) {
            out.push(DeclaredCheck::new(
                gap_check_name(c, &q.dataset),
                Category::Quality,
                gap.points.0,
                v,
            ));
        }
        out
    }

    fn budget(&self, loaded: &LoadedGrader) -> Duration {
        let g = &loaded.grader;
        let (Some(q), Some(api)) = (&g.quality, &g.prediction) else {
            return Duration::ZERO;
        };
        let rows = |name: &String| loaded.datasets.get(name).map_or(0, |d| d.rows.len());
        let instances = rows(&q.dataset) + q.compare_dataset.as_ref().map_or(0, rows);
        let batches = |name: &String| rows(name).div_ceil(api.max_batch.max(1));
        let requests = batches(&q.dataset) + q.compare_dataset.as_ref().map_or(0, batches);
        super::budget_for(
            Duration::ZERO,
            requests,
            instances,
            g.http.request_timeout(),
        )
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let g = &cx.grader.grader;
            let (Some(spec), Some(api)) = (&g.quality, &g.prediction) else {
                return;
            };
            let (checks, report) = run(
                cx.target,
                api,
                spec,
                &cx.grader.datasets,
                g.grader.visibility,
            )
            .await;
            out.checks = checks;
            out.section = Some(super::Section::Quality(report));
        })
    }
}
