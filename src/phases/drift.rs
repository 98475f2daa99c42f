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
use crate::grader::{
    Curve, DriftScenario, DriftSpec, DriftStatisticsSpec, PredictionApi, Visibility,
};
use crate::http;
use crate::phases::predict::Predictor;
use crate::report::{
    CheckResult, DriftBaseline, DriftPoll, DriftReport, DriftScenarioReport, DriftScenarioRun,
    FeatureAgreement, FeatureDrift,
};
use crate::target::Target;

pub const FALSE_ALARMS_CHECK: &str = "no false drift alarms on in-distribution traffic";
pub const ATTRIBUTION_CHECK: &str = "flags the features that drifted";

pub fn detection_check_name(scenario: &str) -> String {
    format!("detects drift: {scenario}")
}

/// What a service said about one feature, next to its flag.
#[derive(Debug, Default, Clone)]
struct Claim {
    flagged: Option<bool>,
    method: Option<String>,
    statistic: Option<f64>,
    p_value: Option<f64>,
    missing_share: Option<f64>,
    missing_p_value: Option<f64>,
    /// PSI of the share of nulls (a contract whose method is `psi`).
    missing_psi: Option<f64>,
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
    /// What the service compares its window with, prepared once.
    reference: &'a Reference,
    /// Agreement of the service's statistics at every poll, with `[drift.statistics]`.
    tally: Option<Tally>,
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
                    let poll = self.poll().await;
                    self.score_statistics(&poll);
                    out.push((sent, poll));
                }
            }
        }
        out
    }

    /// Compares what one poll claimed with proctor's statistics on the window just sent.
    fn score_statistics(&mut self, poll: &Result<Poll, String>) {
        let (Some(tally), Some(spec)) = (self.tally.as_mut(), self.spec.statistics.as_ref()) else {
            return;
        };
        tally.polls += 1;
        for (i, f) in self.data.schema.features.iter().enumerate() {
            let t = &mut tally.features[i];
            t.polls += 1;
            let verdict = match poll {
                Err(e) => Err(format!("the drift endpoint could not be read: {e}")),
                Ok(p) => {
                    let claim = p.claims.get(&f.name).cloned().unwrap_or_default();
                    if let Some(m) = &claim.method {
                        if !t.reported_methods.contains(m) {
                            t.reported_methods.push(m.clone());
                        }
                    }
                    if t.expected_method.is_some() && claim.method != t.expected_method {
                        t.method_wrong = true;
                    }
                    let ours = recompute(self.reference, self.data, &self.recent, i, None);
                    agreement::judge(spec, self.reference, i, f, &ours, &claim)
                }
            };
            match verdict {
                Ok(()) => t.agreed += 1,
                Err(why) => {
                    t.first_disagreement
                        .get_or_insert_with(|| format!("poll {}: {why}", tally.polls));
                }
            }
        }
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
            let number = |key: &str| {
                body.pointer(&format!("{parent}/{key}"))
                    .and_then(Value::as_f64)
            };
            if flag == Some(true) {
                poll.flagged.insert(f.name.clone());
            }
            poll.claims.insert(
                f.name.clone(),
                Claim {
                    flagged: flag,
                    method: body
                        .pointer(&format!("{parent}/method"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    statistic: number("statistic"),
                    p_value: number("p_value"),
                    missing_share: number("missing_share"),
                    missing_p_value: number("missing_p_value"),
                    missing_psi: number("missing_psi"),
                },
            );
        }
        Ok(poll)
    }
}

/// The data the service compares its window with, one column per feature, prepared once.
pub(crate) struct Reference {
    rows: usize,
    columns: Vec<Column>,
}

struct Column {
    nulls: usize,
    /// Non-null values of a numeric feature.
    values: Vec<f64>,
    /// Category counts of a categorical or boolean feature.
    counts: BTreeMap<String, f64>,
    sd: f64,
}

impl Reference {
    fn of(data: &Dataset) -> Reference {
        let columns = data
            .schema
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let nulls = data.rows.iter().filter(|r| r[i].is_null()).count();
                if f.kind.is_numeric() {
                    let mut values = data.numeric_column(i);
                    values.sort_by(f64::total_cmp);
                    Column {
                        nulls,
                        values,
                        counts: BTreeMap::new(),
                        sd: data.mean_sd(i).1,
                    }
                } else {
                    Column {
                        nulls,
                        values: Vec::new(),
                        counts: category_counts(data.rows.iter(), i),
                        sd: 0.0,
                    }
                }
            })
            .collect();
        Reference {
            rows: data.rows.len(),
            columns,
        }
    }
}

/// Counts of a categorical or boolean column's non-null values (booleans as `true`/`false`).
fn category_counts<'a>(
    rows: impl Iterator<Item = &'a Vec<Value>>,
    feature: usize,
) -> BTreeMap<String, f64> {
    let mut m: BTreeMap<String, f64> = BTreeMap::new();
    for r in rows {
        let key = match &r[feature] {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        *m.entry(key).or_default() += 1.0;
    }
    m
}

/// proctor's statistics of one feature on one window, with the sizes they came from.
struct Recomputed {
    drift: FeatureDrift,
    /// Instances in the window.
    window: usize,
    /// Non-null values of the feature in the window.
    values: usize,
    /// Degrees of freedom of the chi-square test (bins left − 1).
    dof: usize,
}

/// The harness's own statistics for one feature: the window just sent against the reference,
/// as the contract defines them.
fn recompute(
    reference: &Reference,
    data: &Dataset,
    window: &VecDeque<Vec<Value>>,
    feature: usize,
    claim: Option<&Claim>,
) -> Recomputed {
    let f = &data.schema.features[feature];
    let col = &reference.columns[feature];
    let nulls = window.iter().filter(|r| r[feature].is_null()).count();
    let missing = nulls as f64 / window.len().max(1) as f64;
    let mut dof = 0;
    let mut out = FeatureDrift {
        feature: f.name.clone(),
        missing_share: (missing * 10_000.0).round() / 10_000.0,
        missing_p_value: f.nullable.then(|| {
            stats::two_proportion_p_value(
                col.nulls as f64,
                reference.rows as f64,
                nulls as f64,
                window.len() as f64,
            )
        }),
        service_flagged: claim.and_then(|c| c.flagged),
        service_statistic: claim.and_then(|c| c.statistic),
        service_p_value: claim.and_then(|c| c.p_value),
        service_method: claim.and_then(|c| c.method.clone()),
        service_missing_share: claim.and_then(|c| c.missing_share),
        service_missing_p_value: claim.and_then(|c| c.missing_p_value),
        ..Default::default()
    };
    if f.kind.is_numeric() {
        let current: Vec<f64> = window.iter().filter_map(|r| r[feature].as_f64()).collect();
        out.method = "ks".into();
        if let Some((d, p)) = stats::ks(&col.values, &current) {
            out.statistic = Some(d);
            out.p_value = Some(p);
        }
        out.psi = stats::psi_numeric(&col.values, &current);
        let sd = col.sd;
        out.distance =
            stats::wasserstein(&col.values, &current).map(|w| if sd > 0.0 { w / sd } else { w });
    } else {
        let current = category_counts(window.iter(), feature);
        out.method = "chi2".into();
        dof = stats::chi_square_table(&col.counts, &current)
            .0
            .len()
            .saturating_sub(1);
        if let Some((s, p)) = stats::chi_square(&col.counts, &current) {
            out.statistic = Some(s);
            out.p_value = Some(p);
        }
        out.psi = stats::psi_categorical(&col.counts, &current);
        out.distance = stats::jensen_shannon(&col.counts, &current);
        debug_assert!(matches!(
            f.kind,
            FeatureKind::Categorical | FeatureKind::Boolean
        ));
    }
    Recomputed {
        drift: out,
        window: window.len(),
        values: window.len() - nulls,
        dof,
    }
}

/// The schema's name of a feature type, as `[drift.statistics] methods` keys it.
fn kind_name(kind: FeatureKind) -> &'static str {
    match kind {
        FeatureKind::Number => "number",
        FeatureKind::Integer => "integer",
        FeatureKind::Categorical => "categorical",
        FeatureKind::Boolean => "boolean",
    }
}

/// Per feature, what the polls' statistics agreed on so far.
struct Tally {
    polls: u64,
    features: Vec<FeatureTally>,
}

struct FeatureTally {
    expected_method: Option<String>,
    reported_methods: Vec<String>,
    method_wrong: bool,
    polls: u64,
    agreed: u64,
    first_disagreement: Option<String>,
}

/// Whether a service's statistics for one feature agree with proctor's on the same window.
mod agreement {
    use super::{stats, Claim, Recomputed, Reference};
    use crate::data::Feature;
    use crate::grader::DriftStatisticsSpec;

    /// How far, in decades, `p` lies outside the span of `candidates` (0 inside), both
    /// sides floored at `floor`.
    fn decades_outside(p: f64, candidates: &[f64], floor: f64) -> f64 {
        let lg = |x: f64| x.max(floor).log10();
        let lo = candidates
            .iter()
            .copied()
            .map(lg)
            .fold(f64::INFINITY, f64::min);
        let hi = candidates
            .iter()
            .copied()
            .map(lg)
            .fold(f64::NEG_INFINITY, f64::max);
        let x = lg(p);
        if x < lo {
            lo - x
        } else if x > hi {
            x - hi
        } else {
            0.0
        }
    }

    fn show(x: f64) -> String {
        if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
            format!("{x:.3e}")
        } else {
            format!("{x:.4}")
        }
    }

    /// A contract whose method is the population stability index: the service's PSI (and, for
    /// a nullable feature, the missing share and the PSI of the null / not-null split) against
    /// proctor's on the same window, over the same bins (the reference's deciles, or one bin
    /// per category). PSI has no p-value; a window with fewer non-null values than
    /// `min_values` may have none.
    fn judge_psi(
        spec: &DriftStatisticsSpec,
        reference: &Reference,
        feature: usize,
        f: &Feature,
        recomputed: &Recomputed,
        claim: &Claim,
    ) -> Result<(), String> {
        let ours = recomputed.drift.psi;
        let close = |theirs: f64, ours: f64| {
            (theirs - ours).abs() <= spec.psi_tolerance + spec.psi_relative_tolerance * ours.abs()
        };
        match (claim.statistic, ours) {
            (Some(t), Some(o)) if !close(t, o) => {
                return Err(format!(
                    "{}: PSI {} where proctor computes {}",
                    f.name,
                    show(t),
                    show(o)
                ))
            }
            (Some(_), Some(_)) => {}
            (None, Some(o)) if recomputed.values >= spec.min_values.max(1) => {
                return Err(format!(
                    "{}: no PSI for a window of {} values (proctor: {})",
                    f.name,
                    recomputed.values,
                    show(o)
                ))
            }
            _ => {}
        }
        if f.nullable {
            let col = &reference.columns[feature];
            let rows = reference.rows.max(1) as f64;
            let window = recomputed.window.max(1) as f64;
            let ours_share = (recomputed.window - recomputed.values) as f64 / window;
            let split = |nulls: f64, n: f64| {
                let mut m = std::collections::BTreeMap::new();
                m.insert("null".to_string(), nulls);
                m.insert("value".to_string(), n - nulls);
                m
            };
            let our_psi = stats::psi_categorical(
                &split(col.nulls as f64, rows),
                &split(ours_share * window, window),
            );
            let (Some(share), Some(psi)) = (claim.missing_share, claim.missing_psi) else {
                return Err(format!(
                    "{}: a nullable feature without missing_share and missing_psi",
                    f.name
                ));
            };
            if (share - ours_share).abs() > spec.statistic_tolerance {
                return Err(format!(
                    "{}: missing_share {} where the window holds {}",
                    f.name,
                    show(share),
                    show(ours_share)
                ));
            }
            if let Some(o) = our_psi.filter(|o| !close(psi, *o)) {
                return Err(format!(
                    "{}: missing_psi {} where proctor computes {}",
                    f.name,
                    show(psi),
                    show(o)
                ));
            }
        }
        Ok(())
    }

    /// `Ok` when statistic, p-value and (nullable features) missing share and its p-value all
    /// agree; else what differs, with the service's value and proctor's.
    pub(super) fn judge(
        spec: &DriftStatisticsSpec,
        reference: &Reference,
        feature: usize,
        f: &Feature,
        recomputed: &Recomputed,
        claim: &Claim,
    ) -> Result<(), String> {
        if spec
            .methods
            .get(super::kind_name(f.kind))
            .map(String::as_str)
            == Some("psi")
        {
            return judge_psi(spec, reference, feature, f, recomputed, claim);
        }
        let ours = &recomputed.drift;
        let col = &reference.columns[feature];
        // The smallest reference the contract allows, in non-null values of this feature.
        let nonnull_share = col_nonnull(reference, feature) as f64 / reference.rows.max(1) as f64;
        let sample_rows = spec.min_reference_sample.min(reference.rows);
        let m_full = col_nonnull(reference, feature);
        let m_min = ((sample_rows as f64 * nonnull_share).floor() as usize).clamp(1, m_full.max(1));
        let tol_p = spec.p_value_tolerance;
        match (ours.statistic, ours.p_value) {
            (Some(stat), Some(p)) => {
                let (Some(s_stat), Some(s_p)) = (claim.statistic, claim.p_value) else {
                    return Err(format!(
                        "{}: statistic {} and p_value {} missing (proctor: {} and {})",
                        f.name,
                        claim.statistic.map_or("null".into(), show),
                        claim.p_value.map_or("null".into(), show),
                        show(stat),
                        show(p)
                    ));
                };
                let (stat_ok, from_stat) = if f.kind.is_numeric() {
                    let n = recomputed.values;
                    let mut c = vec![
                        stats::ks_p_value(s_stat, n, m_full),
                        stats::ks_p_value(s_stat, n, m_min),
                    ];
                    if (s_stat - stat).abs() <= 1e-9 {
                        c.push(p);
                    }
                    ((s_stat - stat).abs() <= spec.statistic_tolerance, c)
                } else {
                    let mut c = vec![stats::chi_square_p_value(s_stat, recomputed.dof)];
                    if (s_stat - stat).abs() <= 1e-9 * stat.max(1.0) {
                        c.push(p);
                    }
                    let allowed = spec.chi2_tolerance + spec.chi2_relative_tolerance * stat;
                    ((s_stat - stat).abs() <= allowed, c)
                };
                if !stat_ok {
                    return Err(format!(
                        "{}: statistic {} where proctor computes {}",
                        f.name,
                        show(s_stat),
                        show(stat)
                    ));
                }
                let off = decades_outside(s_p, &from_stat, spec.p_value_floor);
                if off > tol_p {
                    return Err(format!(
                        "{}: p_value {} is {off:.2} decades from what its statistic {} gives ({}; allowed {tol_p})",
                        f.name,
                        show(s_p),
                        show(s_stat),
                        show(from_stat[0])
                    ));
                }
            }
            _ => {
                if claim.statistic.is_some() || claim.p_value.is_some() {
                    return Err(format!(
                        "{}: the window holds no value to test, yet statistic {} and p_value {} were reported",
                        f.name,
                        claim.statistic.map_or("null".into(), show),
                        claim.p_value.map_or("null".into(), show)
                    ));
                }
            }
        }
        if let Some(our_mp) = ours.missing_p_value {
            let (Some(share), Some(mp)) = (claim.missing_share, claim.missing_p_value) else {
                return Err(format!(
                    "{}: a nullable feature without missing_share and missing_p_value",
                    f.name
                ));
            };
            let our_share =
                (recomputed.window - recomputed.values) as f64 / recomputed.window.max(1) as f64;
            if (share - our_share).abs() > spec.statistic_tolerance {
                return Err(format!(
                    "{}: missing_share {} where the window holds {}",
                    f.name,
                    show(share),
                    show(our_share)
                ));
            }
            // The reference's share of nulls, as far as a sample of `sample_rows` may move it
            // (2.6 standard errors, finite population), at either reference size.
            let q = col.nulls as f64 / reference.rows.max(1) as f64;
            let fpc = (1.0 - sample_rows as f64 / reference.rows.max(1) as f64).max(0.0);
            let se = (q * (1.0 - q) / sample_rows.max(1) as f64 * fpc).sqrt();
            let window = recomputed.window as f64;
            let mut c = vec![our_mp];
            for k in 0..=10 {
                let qk = (q - 2.6 * se + 5.2 * se * k as f64 / 10.0).clamp(0.0, 1.0);
                for n1 in [sample_rows as f64, reference.rows as f64] {
                    c.push(stats::two_proportion_p_value(
                        qk * n1,
                        n1,
                        share * window,
                        window,
                    ));
                }
            }
            let off = decades_outside(mp, &c, spec.p_value_floor);
            if off > tol_p {
                return Err(format!(
                    "{}: missing_p_value {} is {off:.2} decades from the z-test's {} (allowed {tol_p})",
                    f.name,
                    show(mp),
                    show(our_mp)
                ));
            }
        }
        Ok(())
    }

    fn col_nonnull(reference: &Reference, feature: usize) -> usize {
        let col = &reference.columns[feature];
        if col.values.is_empty() {
            col.counts.values().sum::<f64>() as usize
        } else {
            col.values.len()
        }
    }
}

/// Runs the drift phase: `data` is the traffic's source, `reference` what the service compares
/// its window with (`reference_dataset`, else `data`).
pub async fn run(
    target: &Target,
    api: &PredictionApi,
    spec: &DriftSpec,
    data: &Dataset,
    reference: &Dataset,
    seed: u64,
    default_vis: Visibility,
) -> (Vec<CheckResult>, DriftReport) {
    let vis = spec.visibility.unwrap_or(default_vis);
    let prepared = Reference::of(reference);
    let tally = spec.statistics.as_ref().map(|st| Tally {
        polls: 0,
        features: data
            .schema
            .features
            .iter()
            .map(|f| FeatureTally {
                expected_method: st.methods.get(kind_name(f.kind)).cloned(),
                reported_methods: Vec::new(),
                method_wrong: false,
                polls: 0,
                agreed: 0,
                first_disagreement: None,
            })
            .collect(),
    });
    let mut stream = Stream {
        predictor: Predictor { target, api },
        spec,
        data,
        rng: crate::data::rng(seed, "drift"),
        recent: VecDeque::new(),
        failed_requests: 0,
        reference: &prepared,
        tally,
    };
    let mut report = DriftReport {
        window: spec.window as u64,
        ..Default::default()
    };
    let mut checks = Vec::new();
    let mk = |name: String, points: f64, max: f64, message: String| CheckResult {
        grader: String::new(),
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
    let runs = spec.replicates.max(1);
    for sc in &spec.scenario {
        let feats: Vec<(usize, FeatureStats)> = sc
            .features
            .iter()
            .map(|f| {
                let (i, _) = data.schema.feature(f).expect("validated at load");
                (i, FeatureStats::of(data, i))
            })
            .collect();
        let expected: BTreeSet<String> = sc.features.iter().cloned().collect();
        let mut scenario = DriftScenarioReport {
            name: sc.name.clone(),
            features: sc.features.clone(),
            ..Default::default()
        };
        let mut read_error = None;
        for _ in 0..runs {
            stream.segment(spec.window, None, false).await;
            let polls = stream.segment(sc.instances, Some((sc, &feats)), true).await;
            let first_hit = polls
                .iter()
                .find(|(_, p)| p.as_ref().is_ok_and(|p| p.overall))
                .map(|(at, _)| *at);
            let detected = first_hit.is_some_and(|at| at <= spec.max_delay);
            if read_error.is_none() {
                read_error = polls.iter().find_map(|(_, p)| p.as_ref().err()).cloned();
            }
            let last = polls
                .iter()
                .rev()
                .find_map(|(_, p)| p.as_ref().ok())
                .cloned()
                .unwrap_or_default();
            tp += last.flagged.intersection(&expected).count() as u64;
            fp += last.flagged.difference(&expected).count() as u64;
            fneg += expected.difference(&last.flagged).count() as u64;
            let recomputed = feats
                .iter()
                .map(|(i, _)| {
                    recompute(
                        &prepared,
                        data,
                        &stream.recent,
                        *i,
                        last.claims.get(&data.schema.features[*i].name),
                    )
                    .drift
                })
                .collect();
            let timeline = polls
                .iter()
                .map(|(at, p)| DriftPoll {
                    instances: *at as u64,
                    drift: p.as_ref().ok().map(|p| p.overall),
                    p_values: sc
                        .features
                        .iter()
                        .map(|f| {
                            let claimed = p.as_ref().ok().and_then(|p| p.claims.get(f));
                            (f.clone(), claimed.and_then(|c| c.p_value))
                        })
                        .collect(),
                })
                .collect();
            scenario.detected_runs += detected as u32;
            scenario.runs.push(DriftScenarioRun {
                detected,
                delay_instances: first_hit.map(|a| a as u64),
                flagged_features: last.flagged.iter().cloned().collect(),
                recomputed,
                polls: timeline,
            });
        }
        let points = share * scenario.detected_runs as f64 / runs as f64;
        checks.push(mk(
            detection_check_name(&sc.name),
            points,
            share,
            detection_message(spec, sc.instances, &scenario.runs, read_error.as_deref()),
        ));
        report.scenarios.push(scenario);
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
    if let (Some(st), Some(tally)) = (&spec.statistics, stream.tally.take()) {
        let (agreement, stat_checks) = statistics_checks(st, data, tally);
        report.statistics = agreement;
        checks.extend(
            stat_checks
                .into_iter()
                .map(|(name, points, max, message)| mk(name, points, max, message)),
        );
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

/// What a scenario's runs saw: with one run, when drift was first reported (or that it was
/// not); with several, how many runs detected it and each run's delay.
fn detection_message(
    spec: &DriftSpec,
    instances: usize,
    runs: &[DriftScenarioRun],
    read_error: Option<&str>,
) -> String {
    if let Some(e) = read_error {
        return format!("the drift endpoint could not be read: {e}");
    }
    let allowed = spec.max_delay;
    if let [run] = runs {
        return match run.delay_instances {
            Some(at) if run.detected => {
                format!("drift reported {at} instances after the shift began (allowed: {allowed})")
            }
            Some(at) => format!(
                "drift reported only {at} instances after the shift began (allowed: {allowed})"
            ),
            None => format!("no poll in {instances} shifted instances reported drift"),
        };
    }
    let delays: Vec<String> = runs
        .iter()
        .map(|r| match r.delay_instances {
            Some(at) => at.to_string(),
            None => "never".into(),
        })
        .collect();
    format!(
        "detected in {} of {} runs of {instances} shifted instances (allowed delay: {allowed}); \
         drift first reported after: {}",
        runs.iter().filter(|r| r.detected).count(),
        runs.len(),
        delays.join(", ")
    )
}

/// The check names of `[drift.statistics]`.
pub const METHODS_CHECK: &str = "reports the contract's drift test per feature";
pub const STATISTICS_CHECK: &str = "drift statistics agree with proctor's recomputation";

/// One check before it becomes a `CheckResult`: name, points, max points, message.
type Scored = (String, f64, f64, String);

/// The methods check and the statistics check, (name, points, max, message), and the report's
/// per-feature agreement.
fn statistics_checks(
    st: &DriftStatisticsSpec,
    data: &Dataset,
    tally: Tally,
) -> (Vec<FeatureAgreement>, Vec<Scored>) {
    let features = &data.schema.features;
    let mut agreement = Vec::new();
    let (mut declared, mut right) = (0usize, 0usize);
    let mut wrong_methods = Vec::new();
    let (mut pairs, mut agreed) = (0u64, 0u64);
    let mut disagreements = Vec::new();
    for (f, t) in features.iter().zip(tally.features) {
        if let Some(expected) = &t.expected_method {
            declared += 1;
            if t.method_wrong || t.polls == 0 {
                wrong_methods.push(format!(
                    "{} reported {} (expected {expected:?})",
                    f.name,
                    if t.reported_methods.is_empty() {
                        "no method".to_string()
                    } else {
                        format!("{:?}", t.reported_methods)
                    }
                ));
            } else {
                right += 1;
            }
        }
        pairs += t.polls;
        agreed += t.agreed;
        if t.agreed < t.polls {
            disagreements.push(format!(
                "{} {}/{} ({})",
                f.name,
                t.agreed,
                t.polls,
                t.first_disagreement.as_deref().unwrap_or("")
            ));
        }
        agreement.push(FeatureAgreement {
            feature: f.name.clone(),
            expected_method: t.expected_method,
            reported_methods: t.reported_methods,
            polls: t.polls,
            agreed_polls: t.agreed,
            first_disagreement: t.first_disagreement,
        });
    }
    let method_share = if declared == 0 {
        0.0
    } else {
        right as f64 / declared as f64
    };
    let method_points = crate::score::round2(st.method_points.0 * method_share);
    let method_message = if wrong_methods.is_empty() {
        format!("all {declared} features with a declared type reported the declared method at every poll")
    } else {
        format!(
            "{right} of {declared} features reported the declared method at every poll; {}",
            wrong_methods.join("; ")
        )
    };
    let share = if pairs == 0 {
        0.0
    } else {
        agreed as f64 / pairs as f64
    };
    let curve = Curve {
        full_points_at: st.full_agreement,
        zero_points_at: st.zero_agreement,
        points: st.statistics_points,
    };
    let stat_message = format!(
        "{agreed} of {pairs} (poll, feature) pairs agree ({:.1}%; {}; KS statistic and missing share within {}, chi-square within {} + {:.0}%, p-values within {} decades of what the reported statistic gives, both floored at {:e}){}",
        share * 100.0,
        curve.describe(),
        st.statistic_tolerance,
        st.chi2_tolerance,
        st.chi2_relative_tolerance * 100.0,
        st.p_value_tolerance,
        st.p_value_floor,
        if disagreements.is_empty() {
            String::new()
        } else {
            format!("; disagreeing: {}", disagreements.join("; "))
        }
    );
    (
        agreement,
        vec![
            (
                METHODS_CHECK.to_string(),
                method_points,
                st.method_points.0,
                method_message,
            ),
            (
                STATISTICS_CHECK.to_string(),
                curve.points_for(share),
                st.statistics_points.0,
                stat_message,
            ),
        ],
    )
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
        if let Some(st) = &d.statistics {
            out.push(DeclaredCheck::new(
                METHODS_CHECK,
                Category::Drift,
                st.method_points.0,
                v,
            ));
            out.push(DeclaredCheck::new(
                STATISTICS_CHECK,
                Category::Drift,
                st.statistics_points.0,
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
        // A window's flush before the baseline and before each run of each scenario, then
        // their instances, in batches, with a poll every `poll_every` instances.
        let instances = d.window
            + d.baseline_instances
            + d.replicates.max(1)
                * d.scenario
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
            let reference =
                &cx.grader.datasets[spec.reference_dataset.as_ref().unwrap_or(&spec.dataset)];
            let (checks, report) = run(
                cx.target,
                api,
                spec,
                data,
                reference,
                cx.plan.seed,
                g.grader.visibility,
            )
            .await;
            out.checks = checks;
            out.section = Some(super::Section::Drift(report));
        })
    }
}
