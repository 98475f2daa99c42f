//! Drift handling. In-distribution traffic comes first, and every poll of the service's drift
//! endpoint that says "drift" there is a false alarm. Then each scenario shifts named features
//! for a while: a poll that says drift within `max_delay` instances of the shift's start is a
//! hit, and the features the service flags are compared with the ones shifted (precision,
//! recall and F1 over (scenario, feature) pairs). Before every measurement the service's window
//! is flushed with in-distribution traffic, so one scenario cannot leak into the next.
//!
//! proctor recomputes KS / chi-square, PSI and a distance on the same window and reports them
//! beside what the service claimed.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{Category, DeclaredCheck};
use crate::grader::LoadedGrader;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

use crate::data::transform::{self, FeatureStats};
use crate::data::{stats, Dataset, FeatureKind};
use crate::grader::{Curve, DriftScenario, DriftSpec, PredictionApi, Visibility};
use crate::http;
use crate::phases::predict::Predictor;
use crate::report::{CheckResult, DriftBaseline, DriftReport, DriftScenarioReport, FeatureDrift};
use crate::target::Target;

pub const FALSE_ALARMS_CHECK: &str = "no false drift alarms on in-distribution traffic";
pub const ATTRIBUTION_CHECK: &str = "flags the features that drifted";

pub fn detection_check_name(scenario: &str) -> String {
    format!("detects drift: {scenario}")
}

/// What a service said about one feature: flagged, statistic, p-value.
#[derive(Debug, Default, Clone)]
struct Claim {
    flagged: Option<bool>,
    statistic: Option<f64>,
    p_value: Option<f64>,
}

/// What one poll of the drift endpoint said.
#[derive(Debug, Default, Clone)]
struct Poll {
    overall: bool,
    flagged: BTreeSet<String>,
    claims: BTreeMap<String, Claim>,
}

struct Stream<'a> {
    predictor: Predictor<'a>,
    spec: &'a DriftSpec,
    data: &'a Dataset,
    rng: rand_chacha::ChaCha8Rng,
    /// The last `window` rows sent, for recomputing statistics.
    recent: VecDeque<Vec<Value>>,
    failed_requests: u64,
}

impl Stream<'_> {
    /// Sends `n` instances (shifted by `scenario` when given), polling every `poll_every`
    /// instances when `polls` is set. Returns (instances since the segment's start, poll).
    async fn segment(
        &mut self,
        n: usize,
        scenario: Option<(&DriftScenario, &[(usize, FeatureStats)])>,
        polls: bool,
    ) -> Vec<(usize, Result<Poll, String>)> {
        let mut out = Vec::new();
        let mut sent = 0;
        let mut since_poll = 0;
        while sent < n {
            let take = self
                .spec
                .batch_size
                .min(n - sent)
                .min(self.spec.poll_every - since_poll);
            let mut rows = Vec::with_capacity(take);
            for k in 0..take {
                let mut row = self.data.rows
                    [rand::RngExt::random_range(&mut self.rng, 0..self.data.rows.len())]
                .clone();
                if let Some((sc, feats)) = scenario {
                    let position = sent + k;
                    let intensity = if sc.onset == 0 {
                        1.0
                    } else {
                        ((position + 1) as f64 / sc.onset as f64).min(1.0)
                    };
                    for (idx, fs) in feats {
                        let feature = &self.data.schema.features[*idx];
                        row[*idx] = transform::apply(
                            &sc.shift,
                            feature,
                            fs,
                            &row[*idx],
                            intensity,
                            &mut self.rng,
                        );
                    }
                }
                rows.push(row);
            }
            let instances: Vec<_> = rows.iter().map(|r| self.data.instance(r)).collect();
            if self.predictor.request(&instances).await.is_err() {
                self.failed_requests += 1;
            }
            for r in rows {
                if self.recent.len() == self.spec.window {
                    self.recent.pop_front();
                }
                self.recent.push_back(r);
            }
            sent += take;
            since_poll += take;
            if since_poll == self.spec.poll_every {
                since_poll = 0;
                if polls {
                    out.push((sent, self.poll().await));
                }
            }
        }
        out
    }

    async fn poll(&self) -> Result<Poll, String> {
        let target = self.predictor.target;
        let resp = http::send(
            &target.client,
            reqwest::Method::GET,
            &target.url(&self.spec.path.0),
            None,
            target.request_timeout,
            target.max_body,
        )
        .await
        .map_err(|e| format!("GET {}: {e}", self.spec.path))?;
        if resp.status != 200 {
            return Err(format!("GET {} answered {}", self.spec.path, resp.status));
        }
        let body: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("GET {} is not JSON ({e})", self.spec.path))?;
        let overall = body
            .pointer(&self.spec.overall)
            .and_then(Value::as_bool)
            .ok_or_else(|| format!("no boolean at `{}` in the drift answer", self.spec.overall))?;
        let mut poll = Poll {
            overall,
            ..Default::default()
        };
        for f in &self.data.schema.features {
            let flag_ptr = self.spec.feature_flag.replace("{feature}", &f.name);
            let flag = body.pointer(&flag_ptr).and_then(Value::as_bool);
            // Statistic and p-value, when the service reports them next to the flag.
            let parent = flag_ptr.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            let stat = body
                .pointer(&format!("{parent}/statistic"))
                .and_then(Value::as_f64);
            let p = body
                .pointer(&format!("{parent}/p_value"))
                .and_then(Value::as_f64);
            if flag == Some(true) {
                poll.flagged.insert(f.name.clone());
            }
            poll.claims.insert(
                f.name.clone(),
                Claim {
                    flagged: flag,
                    statistic: stat,
                    p_value: p,
                },
            );
        }
        Ok(poll)
    }
}

/// The harness's own statistics for one feature: the window just sent against the dataset.
fn recompute(
    data: &Dataset,
    window: &VecDeque<Vec<Value>>,
    feature: usize,
    claim: Option<&Claim>,
) -> FeatureDrift {
    let f = &data.schema.features[feature];
    let missing =
        window.iter().filter(|r| r[feature].is_null()).count() as f64 / window.len().max(1) as f64;
    let mut out = FeatureDrift {
        feature: f.name.clone(),
        missing_share: (missing * 10_000.0).round() / 10_000.0,
        service_flagged: claim.and_then(|c| c.flagged),
        service_statistic: claim.and_then(|c| c.statistic),
        service_p_value: claim.and_then(|c| c.p_value),
        ..Default::default()
    };
    if f.kind.is_numeric() {
        let reference = data.numeric_column(feature);
        let current: Vec<f64> = window.iter().filter_map(|r| r[feature].as_f64()).collect();
        out.method = "ks".into();
        if let Some((d, p)) = stats::ks(&reference, &current) {
            out.statistic = Some(d);
            out.p_value = Some(p);
        }
        out.psi = stats::psi_numeric(&reference, &current);
        let (_, sd) = data.mean_sd(feature);
        out.distance =
            stats::wasserstein(&reference, &current).map(|w| if sd > 0.0 { w / sd } else { w });
    } else {
        let count = |rows: &mut dyn Iterator<Item = &Vec<Value>>| {
            let mut m: BTreeMap<String, f64> = BTreeMap::new();
            for r in rows {
                if !r[feature].is_null() {
                    let key = match &r[feature] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    *m.entry(key).or_default() += 1.0;
                }
            }
            m
        };
        let reference = count(&mut data.rows.iter());
        let current = count(&mut window.iter());
        out.method = "chi2".into();
        if let Some((s, p)) = stats::chi_square(&reference, &current) {
            out.statistic = Some(s);
            out.p_value = Some(p);
        }
        out.psi = stats::psi_categorical(&reference, &current);
        out.distance = stats::jensen_shannon(&reference, &current);
        debug_assert!(matches!(
            f.kind,
            FeatureKind::Categorical | FeatureKind::Boolean
        ));
    }
    out
}

pub async fn run(
    target: &Target,
    api: &PredictionApi,
    spec: &DriftSpec,
    data: &Dataset,
    seed: u64,
    default_vis: Visibility,
) -> (Vec<CheckResult>, DriftReport) {
    let vis = spec.visibility.unwrap_or(default_vis);
    let mut stream = Stream {
        predictor: Predictor { target, api },
        spec,
        data,
        rng: crate::data::rng(seed, "drift"),
        recent: VecDeque::new(),
        failed_requests: 0,
    };
    let mut report = DriftReport {
        window: spec.window as u64,
        ..Default::default()
    };
    let mut checks = Vec::new();
    let mk = |name: String, points: f64, max: f64, message: String| CheckResult {
        name,
        category: Category::Drift,
        points,
        max_points: max,
        passed: points >= max,
        message,
        visibility: vis,
    };

    // In-distribution: flush the window, then count false alarms.
    stream.segment(spec.window, None, false).await;
    let baseline = stream.segment(spec.baseline_instances, None, true).await;
    let mut poll_errors = Vec::new();
    let mut b = DriftBaseline {
        instances: spec.baseline_instances as u64,
        ..Default::default()
    };
    for (_, p) in &baseline {
        match p {
            Ok(p) => {
                b.polls += 1;
                if p.overall {
                    b.flagged_polls += 1;
                    for f in &p.flagged {
                        *b.flagged_features.entry(f.clone()).or_default() += 1;
                    }
                }
            }
            Err(e) => poll_errors.push(e.clone()),
        }
    }
    b.false_alarms_per_1000_instances =
        (b.flagged_polls as f64 * 1000.0 / spec.baseline_instances.max(1) as f64 * 100.0).round()
            / 100.0;
    let curve = Curve {
        full_points_at: spec.max_false_alarm_rate,
        zero_points_at: spec.false_alarm_zero_rate,
        points: spec.false_alarm_points,
    };
    let fa_check = if let Some(e) = poll_errors.first() {
        mk(
            FALSE_ALARMS_CHECK.into(),
            0.0,
            spec.false_alarm_points.0,
            format!("the drift endpoint could not be read: {e}"),
        )
    } else {
        let rate = b.flagged_polls as f64 / b.polls.max(1) as f64;
        let named: Vec<String> = b
            .flagged_features
            .iter()
            .map(|(f, n)| format!("{f} ({n})"))
            .collect();
        mk(
            FALSE_ALARMS_CHECK.into(),
            curve.points_for(rate),
            spec.false_alarm_points.0,
            format!(
                "{} of {} polls over {} in-distribution instances said drift ({:.0}%; {}){}",
                b.flagged_polls,
                b.polls,
                spec.baseline_instances,
                rate * 100.0,
                format_args!(
                    "full points up to {:.0}%, none from {:.0}%",
                    spec.max_false_alarm_rate * 100.0,
                    spec.false_alarm_zero_rate * 100.0
                ),
                if named.is_empty() {
                    String::new()
                } else {
                    format!("; features named: {}", named.join(", "))
                }
            ),
        )
    };
    report.baseline = b;
    checks.push(fa_check);

    // Scenarios.
    let share = if spec.scenario.is_empty() {
        0.0
    } else {
        spec.detection_points.0 / spec.scenario.len() as f64
    };
    let (mut tp, mut fp, mut fneg) = (0u64, 0u64, 0u64);
    for sc in &spec.scenario {
        let feats: Vec<(usize, FeatureStats)> = sc
            .features
            .iter()
            .map(|f| {
                let (i, _) = data.schema.feature(f).expect("validated at load");
                (i, FeatureStats::of(data, i))
            })
            .collect();
        stream.segment(spec.window, None, false).await;
        let polls = stream.segment(sc.instances, Some((sc, &feats)), true).await;
        let first_hit = polls
            .iter()
            .find(|(_, p)| p.as_ref().is_ok_and(|p| p.overall))
            .map(|(at, _)| *at);
        let detected = first_hit.is_some_and(|at| at <= spec.max_delay);
        let last = polls
            .iter()
            .rev()
            .find_map(|(_, p)| p.as_ref().ok())
            .cloned()
            .unwrap_or_default();
        let expected: BTreeSet<String> = sc.features.iter().cloned().collect();
        tp += last.flagged.intersection(&expected).count() as u64;
        fp += last.flagged.difference(&expected).count() as u64;
        fneg += expected.difference(&last.flagged).count() as u64;
        let recomputed = feats
            .iter()
            .map(|(i, _)| {
                recompute(
                    data,
                    &stream.recent,
                    *i,
                    last.claims.get(&data.schema.features[*i].name),
                )
            })
            .collect();
        let message = match (first_hit, polls.iter().find_map(|(_, p)| p.as_ref().err())) {
            (_, Some(e)) => format!("the drift endpoint could not be read: {e}"),
            (Some(at), _) if detected => format!(
                "drift reported {at} instances after the shift began (allowed: {})",
                spec.max_delay
            ),
            (Some(at), _) => format!(
                "drift reported only {at} instances after the shift began (allowed: {})",
                spec.max_delay
            ),
            (None, _) => format!(
                "no poll in {} shifted instances reported drift",
                sc.instances
            ),
        };
        checks.push(mk(
            detection_check_name(&sc.name),
            if detected { share } else { 0.0 },
            share,
            message,
        ));
        report.scenarios.push(DriftScenarioReport {
            name: sc.name.clone(),
            features: sc.features.clone(),
            detected,
            delay_instances: first_hit.map(|a| a as u64),
            flagged_features: last.flagged.iter().cloned().collect(),
            recomputed,
        });
    }
    let precision = if tp + fp == 0 {
        0.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let recall = if tp + fneg == 0 {
        0.0
    } else {
        tp as f64 / (tp + fneg) as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    report.precision = (precision * 1000.0).round() / 1000.0;
    report.recall = (recall * 1000.0).round() / 1000.0;
    report.f1 = (f1 * 1000.0).round() / 1000.0;
    if !spec.scenario.is_empty() {
        let curve = Curve {
            full_points_at: spec.attribution_full_f1,
            zero_points_at: spec.attribution_zero_f1,
            points: spec.attribution_points,
        };
        let points = curve.points_for(f1);
        checks.push(mk(
            ATTRIBUTION_CHECK.into(),
            points,
            spec.attribution_points.0,
            format!(
                "over the scenarios' shifted features: precision {:.2}, recall {:.2}, F1 {:.2} ({tp} right, {fp} flagged but not shifted, {fneg} shifted but not flagged; {})",
                precision,
                recall,
                f1,
                curve.describe()
            ),
        ));
    }
    if stream.failed_requests > 0 {
        if let Some(c) = checks.first_mut() {
            c.message.push_str(&format!(
                "; {} predict requests of the drift traffic failed",
                stream.failed_requests
            ));
        }
    }
    (checks, report)
}

/// Drift detection: false alarms on in-distribution traffic, then the declared shifts.
pub struct Drift;

impl super::Phase for Drift {
    fn name(&self) -> &'static str {
        "drift"
    }

    fn declared(&self, loaded: &LoadedGrader) -> bool {
        loaded.grader.drift.is_some() && loaded.grader.prediction.is_some()
    }

    fn checks(&self, loaded: &LoadedGrader) -> Vec<DeclaredCheck> {
        let g = &loaded.grader;
        let Some(d) = &g.drift else {
            return Vec::new();
        };
        let v = d.visibility.unwrap_or(g.grader.visibility);
        let mut out = vec![DeclaredCheck::new(
            FALSE_ALARMS_CHECK,
            Category::Drift,
            d.false_alarm_points.0,
            v,
        )];
        let share = if d.scenario.is_empty() {
            0.0
        } else {
            d.detection_points.0 / d.scenario.len() as f64
        };
        for sc in &d.scenario {
            out.push(DeclaredCheck::new(
                detection_check_name(&sc.name),
                Category::Drift,
                share,
                v,
            ));
        }
        if !d.scenario.is_empty() {
            out.push(DeclaredCheck::new(
                ATTRIBUTION_CHECK,
                Category::Drift,
                d.attribution_points.0,
                v,
            ));
        }
        out
    }

    fn budget(&self, loaded: &LoadedGrader) -> Duration {
        let g = &loaded.grader;
        let Some(d) = &g.drift else {
            return Duration::ZERO;
        };
        // A window's flush before the baseline and before each scenario, then their instances,
        // in batches, with a poll every `poll_every` instances.
        let instances = d.window
            + d.baseline_instances
            + d.scenario
                .iter()
                .map(|s| s.instances + d.window)
                .sum::<usize>();
        let requests =
            instances.div_ceil(d.batch_size.max(1)) + instances.div_ceil(d.poll_every.max(1));
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
            let (Some(spec), Some(api)) = (&g.drift, &g.prediction) else {
                return;
            };
            let data = &cx.grader.datasets[&spec.dataset];
            let (checks, report) = run(
                cx.target,
                api,
                spec,
                data,
                cx.plan.seed,
                g.grader.visibility,
            )
            .await;
            out.checks = checks;
            out.section = Some(super::Section::Drift(report));
        })
    }
}
