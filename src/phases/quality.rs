//! Prediction quality: the labelled dataset (normally the hidden holdout) goes through the
//! service in batches, and the answers are scored (AUC, accuracy, log loss, calibration error)
//! on the grader's point curves. The gap to a second dataset's AUC is reported beside it.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{Category, DeclaredCheck};
use crate::grader::LoadedGrader;
use std::collections::BTreeMap;

use crate::data::{stats, Dataset};
use crate::grader::{PredictionApi, QualityMetric, QualitySpec, Visibility};
use crate::phases::predict::{rows_of, Predictor};
use crate::report::{CalibrationBin, CheckResult, QualityReport, RocPoint};
use crate::target::Target;

/// Points of the report's ROC curve, at most, and bins of its reliability diagram (the bins of
/// the calibration error).
const ROC_POINTS: usize = 101;
const CALIBRATION_BINS: usize = 10;

/// Below this share of validly answered instances no quality metric is meaningful.
const MIN_SCORED_SHARE: f64 = 0.9;

pub fn metric_check_name(m: QualityMetric, dataset: &str) -> String {
    format!("{} on {dataset}", m.name())
}

pub fn gap_check_name(compare: &str, dataset: &str) -> String {
    format!("AUC gap between {compare} and {dataset}")
}

struct Scored {
    scores: Vec<f64>,
    labels: Vec<f64>,
    sent: usize,
    failures: BTreeMap<String, u64>,
}

async fn score_dataset(predictor: &Predictor<'_>, data: &Dataset, complete_only: bool) -> Scored {
    let rows = rows_of(data, complete_only);
    let instances: Vec<_> = rows.iter().map(|&i| data.instance(&data.rows[i])).collect();
    let labels = data
        .labels
        .as_ref()
        .expect("validated: quality datasets have labels");
    let results = predictor.all(&instances, predictor.api.max_batch).await;
    let mut out = Scored {
        scores: Vec::new(),
        labels: Vec::new(),
        sent: rows.len(),
        failures: BTreeMap::new(),
    };
    for (&row, r) in rows.iter().zip(results) {
        match r {
            Ok(p) => {
                out.scores.push(p);
                out.labels.push(labels[row]);
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

fn metric_value(m: QualityMetric, s: &Scored) -> Option<f64> {
    match m {
        QualityMetric::Auc => stats::auc(&s.scores, &s.labels),
        QualityMetric::Accuracy => Some(stats::accuracy(&s.scores, &s.labels)),
        QualityMetric::LogLoss => Some(stats::log_loss(&s.scores, &s.labels)),
        QualityMetric::CalibrationError => Some(stats::calibration_error(&s.scores, &s.labels, 10)),
    }
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
    for m in &spec.metric {
        let curve = m.curve();
        let value = metric_value(m.metric, &graded);
        if let Some(v) = value {
            report.metrics.insert(
                m.metric.name().to_string(),
                (v * 10_000.0).round() / 10_000.0,
            );
        }
        let (points, message) = match value {
            _ if share < MIN_SCORED_SHARE => (
                0.0,
                format!(
                    "only {} of {} instances got a valid probability, too few to measure {} (first reasons: {})",
                    graded.scores.len(),
                    graded.sent,
                    m.metric.name(),
                    summarize(&graded.failures)
                ),
            ),
            None => (0.0, format!("{} is undefined on these answers", m.metric.name())),
            Some(v) => (curve.points_for(v), format!("{} = {v:.4} ({})", m.metric.name(), curve.describe())),
        };
        checks.push(CheckResult {
            grader: String::new(),
            name: metric_check_name(m.metric, &spec.dataset),
            category: Category::Quality,
            points,
            max_points: m.points.0,
            passed: points >= m.points.0,
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
                    metric_check_name(m.metric, &q.dataset),
                    Category::Quality,
                    m.points.0,
                    v,
                )
            })
            .collect();
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
