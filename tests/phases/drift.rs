//! Drift: in-distribution traffic first (every poll that says drift is a false alarm), then
//! each scenario shifts named features; a poll that says drift within `max_delay` instances is
//! a hit, and the features flagged at the scenario's last poll are scored by F1.
//!
//! The fake services keep the last `window` instances they predicted and test them the simple
//! way: x drifted when its window mean is more than 1 sd from the dataset's, c when over 5% of
//! its values are unknown categories, n when over half of it is null. With these datasets that
//! verdict is never wrong, so each test knows exactly what every poll says.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use proctor::check::{Category, CheckResult};
use proctor::phases::drift::{
    detection_check_name, run, ATTRIBUTION_CHECK, FALSE_ALARMS_CHECK, METHODS_CHECK,
    STATISTICS_CHECK,
};
use proctor::report::{DriftBaseline, DriftReport};
use serde_json::{json, Value};

use crate::fixture::{self, load, rows, try_load, Row, SLOW, TIMEOUT_MS};
use crate::server::{refused_url, Reply, Req, Server};
use crate::{assert_has, assert_points, find};

const WINDOW: usize = 100;
const BATCH: usize = 25;
const POLL_EVERY: usize = 50;
const BASELINE: usize = 500;
const SHIFTED: usize = 200;
const BASELINE_POLLS: usize = BASELINE / POLL_EVERY;
const SCENARIO_POLLS: usize = SHIFTED / POLL_EVERY;

const X_UP: &str = "x up by 3 sd";
const NEW_CATEGORY: &str = "a new category";

const SCENARIOS: &str = r#"
[[drift.scenario]]
name = "x up by 3 sd"
features = ["x"]
kind = "mean_shift"
k = 3.0
instances = 200

[[drift.scenario]]
name = "a new category"
features = ["c"]
kind = "unseen_category"
value = "zzz"
share = 0.5
instances = 200
"#;

fn stream() -> Vec<Row> {
    rows(400, 5)
}

/// What the statistics-reporting fakes compare their window with (`reference_dataset`).
fn train() -> Vec<Row> {
    rows(300, 8)
}

/// The `[drift]` section; `fields` go into its table (and may override nothing set here).
fn drift_toml(fields: &str, scenarios: &str) -> String {
    format!(
        r#"{}
[drift]
dataset = "stream"
path = "/drift"
window = {WINDOW}
batch_size = {BATCH}
poll_every = {POLL_EVERY}
baseline_instances = {BASELINE}
max_delay = 50
overall = "/drift_detected"
feature_flag = "/features/{{feature}}/drift_detected"
false_alarm_points = 4
detection_points = 6
attribution_points = 4
{fields}
{scenarios}"#,
        fixture::prediction(64)
    )
}

/// How a fake service answers its drift endpoint.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// What its window test says.
    Correct,
    /// Drift, on every feature, always.
    Always,
    /// Never drift.
    Never,
    /// What its window test said at the previous poll.
    OnePollLate,
    /// The overall verdict only, no per-feature answer.
    OverallOnly,
    /// The overall verdict as a string, not a boolean.
    NotBoolean,
    /// Correct, except that these polls (0-based) also say n drifted.
    AlsoFlagsN(&'static [usize]),
    /// Correct flags, with the contract's statistics against `train()`, every p-value
    /// multiplied by this factor (1: as the contract says).
    Statistics(f64),
    /// Correct, but silent through every second episode of drift (an episode begins when its
    /// window test starts saying drift after a clean window): a detector that catches a shift
    /// in half of its runs.
    EveryOtherEpisode,
}

/// What the service's window test says about each feature.
#[derive(Clone, Debug, Default, PartialEq)]
struct Verdict {
    x: bool,
    c: bool,
    n: bool,
    /// |window mean of x - reference mean| in reference sds.
    x_shift: f64,
}

struct Detector {
    mode: Mode,
    ref_mean: f64,
    ref_sd: f64,
    window: VecDeque<Value>,
    previous: Verdict,
    /// Episodes of drift its window test has seen, and whether one is going on.
    episodes: usize,
    in_episode: bool,
    /// The window at each poll, for ground truth.
    polls: Vec<Vec<Value>>,
}

impl Detector {
    fn verdict(&self) -> Verdict {
        let w = &self.window;
        let k = w.len().max(1) as f64;
        let mean = w.iter().map(|i| i["x"].as_f64().unwrap()).sum::<f64>() / k;
        let unknown = w
            .iter()
            .filter(|i| !["a", "b", "c"].contains(&i["c"].as_str().unwrap()))
            .count() as f64;
        let nulls = w.iter().filter(|i| i["n"].is_null()).count() as f64;
        let x_shift = (mean - self.ref_mean).abs() / self.ref_sd;
        Verdict {
            x: x_shift > 1.0,
            c: unknown / k > 0.05,
            n: nulls / k > 0.5,
            x_shift,
        }
    }

    fn answer(&mut self, r: &Req) -> Reply {
        if r.method == "POST" {
            for i in fixture::instances(r) {
                if self.window.len() == WINDOW {
                    self.window.pop_front();
                }
                self.window.push_back(i);
            }
            let v = self.verdict();
            let drifting = v.x || v.c || v.n;
            self.episodes += (drifting && !self.in_episode) as usize;
            self.in_episode = drifting;
            return fixture::predictions(r, fixture::model);
        }
        let poll = self.polls.len();
        self.polls.push(self.window.iter().cloned().collect());
        let now = self.verdict();
        let mut v = match self.mode {
            Mode::Correct
            | Mode::OverallOnly
            | Mode::NotBoolean
            | Mode::AlsoFlagsN(_)
            | Mode::Statistics(_) => now.clone(),
            Mode::Always => Verdict {
                x: true,
                c: true,
                n: true,
                ..now.clone()
            },
            Mode::Never => Verdict {
                x_shift: now.x_shift,
                ..Verdict::default()
            },
            Mode::OnePollLate => self.previous.clone(),
            Mode::EveryOtherEpisode if self.episodes % 2 == 0 => Verdict {
                x_shift: now.x_shift,
                ..Verdict::default()
            },
            Mode::EveryOtherEpisode => now.clone(),
        };
        self.previous = now;
        if let Mode::AlsoFlagsN(polls) = self.mode {
            v.n |= polls.contains(&poll);
        }
        let overall = v.x || v.c || v.n;
        let feature = |flag: bool, statistic: f64| json!({"drift_detected": flag, "statistic": statistic, "p_value": if flag { 0.001 } else { 0.5 }});
        let body = match self.mode {
            Mode::Statistics(scale) => json!({
                "drift_detected": overall,
                "features": contract_statistics(&self.window, scale, [v.x, v.n, v.c]),
            }),
            Mode::OverallOnly => json!({ "drift_detected": overall }),
            Mode::NotBoolean => json!({ "drift_detected": if overall { "yes" } else { "no" } }),
            _ => json!({
                "drift_detected": overall,
                "features": {
                    "x": feature(v.x, v.x_shift),
                    "n": feature(v.n, 0.0),
                    "c": feature(v.c, 0.0),
                }
            }),
        };
        Reply::json(200, &body)
    }
}

/// The contract's per-feature statistics of `window` against `train()`, p-values times `scale`.
fn contract_statistics(window: &VecDeque<Value>, scale: f64, flags: [bool; 3]) -> Value {
    use proctor::data::stats;
    let train = train();
    let tx: Vec<f64> = train.iter().map(|r| r.x).collect();
    let wx: Vec<f64> = window.iter().map(|i| i["x"].as_f64().unwrap()).collect();
    let (dx, px) = stats::ks(&tx, &wx).unwrap();
    let tn: Vec<f64> = train.iter().filter_map(|r| r.n.map(|n| n as f64)).collect();
    let wn: Vec<f64> = window.iter().filter_map(|i| i["n"].as_f64()).collect();
    let (dn, pn) = stats::ks(&tn, &wn).unwrap();
    let nulls = (window.len() - wn.len()) as f64;
    let train_nulls = (train.len() - tn.len()) as f64;
    let mp =
        stats::two_proportion_p_value(train_nulls, train.len() as f64, nulls, window.len() as f64);
    let (sc, pc) = stats::chi_square(
        &counts(train.iter().map(|r| r.c)),
        &counts(window.iter().map(|i| i["c"].as_str().unwrap())),
    )
    .unwrap();
    json!({
        "x": {"drift_detected": flags[0], "method": "ks", "statistic": dx, "p_value": px * scale},
        "n": {"drift_detected": flags[1], "method": "ks", "statistic": dn, "p_value": pn * scale,
              "missing_share": nulls / window.len() as f64, "missing_p_value": mp * scale},
        "c": {"drift_detected": flags[2], "method": "chi2", "statistic": sc, "p_value": pc * scale},
    })
}

const STATISTICS: &str = r#"reference_dataset = "train"
[drift.statistics]
methods = { number = "ks", integer = "ks", categorical = "chi2" }
method_points = 1
statistics_points = 3
"#;

/// Mean and sample standard deviation of x over the dataset, as proctor's shifts use them.
fn mean_sd(rows: &[Row]) -> (f64, f64) {
    let n = rows.len() as f64;
    let mean = rows.iter().map(|r| r.x).sum::<f64>() / n;
    let var = rows.iter().map(|r| (r.x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

struct Graded {
    checks: Vec<CheckResult>,
    report: DriftReport,
    /// The fake service's window at each of its polls.
    polls: Vec<Vec<Value>>,
    server: Server,
}

async fn grade_url(url: &str, toml: &str) -> (Vec<CheckResult>, DriftReport) {
    let data = stream();
    let train = train();
    let g = load(toml, &[("stream", &data), ("train", &train)]);
    let (checks, report) = run(
        &fixture::target(url, &g),
        g.grader.prediction.as_ref().unwrap(),
        g.grader.drift.as_ref().unwrap(),
        &g.datasets["stream"],
        &g.datasets[g
            .grader
            .drift
            .as_ref()
            .unwrap()
            .reference_dataset
            .as_deref()
            .unwrap_or("stream")],
        11,
        g.grader.grader.visibility,
    )
    .await;
    assert!(checks.iter().all(|c| c.category == Category::Drift));
    (checks, report)
}

async fn grade_toml(mode: Mode, toml: &str) -> Graded {
    let (ref_mean, ref_sd) = mean_sd(&stream());
    let detector = Arc::new(Mutex::new(Detector {
        mode,
        ref_mean,
        ref_sd,
        window: VecDeque::new(),
        previous: Verdict::default(),
        episodes: 0,
        in_episode: false,
        polls: Vec::new(),
    }));
    let d = detector.clone();
    let server = Server::start(move |r| match r.path.as_str() {
        "/predict" | "/drift" => d.lock().unwrap().answer(r),
        _ => Reply::not_found(),
    });
    let (checks, report) = grade_url(&server.url, toml).await;
    let polls = std::mem::take(&mut detector.lock().unwrap().polls);
    Graded {
        checks,
        report,
        polls,
        server,
    }
}

async fn grade(mode: Mode) -> Graded {
    grade_toml(mode, &drift_toml("max_false_alarm_rate = 0.1", SCENARIOS)).await
}

/// Two-sample KS statistic: the largest gap between the empirical CDFs.
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let cdf = |xs: &[f64], v: f64| xs.iter().filter(|x| **x <= v).count() as f64 / xs.len() as f64;
    a.iter()
        .chain(b)
        .map(|&v| (cdf(a, v) - cdf(b, v)).abs())
        .fold(0.0, f64::max)
}

/// Wasserstein-1 distance: the area between the empirical CDFs.
fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    let cdf = |xs: &[f64], v: f64| xs.iter().filter(|x| **x <= v).count() as f64 / xs.len() as f64;
    let mut points: Vec<f64> = a.iter().chain(b).copied().collect();
    points.sort_by(f64::total_cmp);
    points
        .windows(2)
        .map(|w| (cdf(a, w[0]) - cdf(b, w[0])).abs() * (w[1] - w[0]))
        .sum()
}

/// Chi-square statistic of the 2 x k table of category counts.
fn chi_square(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> f64 {
    let (na, nb): (f64, f64) = (a.values().sum(), b.values().sum());
    let cats: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut stat = 0.0;
    for c in cats {
        let (oa, ob) = (
            a.get(c).copied().unwrap_or(0.0),
            b.get(c).copied().unwrap_or(0.0),
        );
        for (obs, row) in [(oa, na), (ob, nb)] {
            let expected = row * (oa + ob) / (na + nb);
            stat += (obs - expected).powi(2) / expected;
        }
    }
    stat
}

fn counts<'a>(values: impl Iterator<Item = &'a str>) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for v in values {
        *m.entry(v.to_string()).or_default() += 1.0;
    }
    m
}

#[tokio::test]
async fn a_correct_detector_earns_every_point_and_the_report_matches_the_window() {
    let g = grade(Mode::Correct).await;
    assert_eq!(g.checks.len(), 4);
    let fa = find(&g.checks, FALSE_ALARMS_CHECK);
    assert_points(fa, 4.0, 4.0);
    assert_has(
        &fa.message,
        &["0 of 10 polls over 500 in-distribution instances said drift (0%; full points up to 10%, none from 50%)"],
    );
    for name in [X_UP, NEW_CATEGORY] {
        let c = find(&g.checks, &detection_check_name(name));
        assert_points(c, 3.0, 3.0);
        // The first poll, 50 instances in, is a hit: max_delay is inclusive.
        assert_has(
            &c.message,
            &["drift reported 50 instances after the shift began (allowed: 50)"],
        );
    }
    let at = find(&g.checks, ATTRIBUTION_CHECK);
    assert_points(at, 4.0, 4.0);
    assert_has(&at.message, &["precision 1.00, recall 1.00, F1 1.00 (2 right, 0 flagged but not shifted, 0 shifted but not flagged"]);

    let r = &g.report;
    assert_eq!(r.window, WINDOW as u64);
    assert_eq!(
        r.baseline,
        DriftBaseline {
            instances: BASELINE as u64,
            polls: BASELINE_POLLS as u64,
            ..Default::default()
        }
    );
    assert_eq!((r.precision, r.recall, r.f1), (1.0, 1.0, 1.0));
    assert_eq!(g.polls.len(), BASELINE_POLLS + 2 * SCENARIO_POLLS);

    // Every instance of the drift traffic went through predict, in batches of `batch_size`:
    // a flush of `window` before the baseline and before each scenario.
    let sent: Vec<usize> = g
        .server
        .requests_to("/predict")
        .iter()
        .map(|r| fixture::instances(r).len())
        .collect();
    assert!(sent.iter().all(|&n| n == BATCH));
    assert_eq!(
        sent.iter().sum::<usize>(),
        WINDOW + BASELINE + 2 * (WINDOW + SHIFTED)
    );

    // Recomputed on the window of each scenario's last poll: the same window the service had.
    let data = stream();
    let x_up = &r.scenarios[0].runs[0];
    assert_eq!(
        (
            r.scenarios[0].name.as_str(),
            r.scenarios[0].detected_runs,
            x_up.detected,
            x_up.delay_instances
        ),
        (X_UP, 1, true, Some(50))
    );
    assert_eq!(x_up.flagged_features, vec!["x".to_string()]);
    let window = &g.polls[BASELINE_POLLS + SCENARIO_POLLS - 1];
    let current: Vec<f64> = window.iter().map(|i| i["x"].as_f64().unwrap()).collect();
    let reference: Vec<f64> = data.iter().map(|r| r.x).collect();
    let x = &x_up.recomputed[0];
    assert_eq!((x.feature.as_str(), x.method.as_str()), ("x", "ks"));
    assert!(
        (x.statistic.unwrap() - ks_statistic(&reference, &current)).abs() < 1e-9,
        "{x:?}"
    );
    assert!(x.p_value.unwrap() < 1e-6, "{x:?}");
    // Wasserstein-1 in reference sds; at least the 3 sd the mean moved.
    let w1 = wasserstein(&reference, &current) / mean_sd(&data).1;
    assert!(
        (x.distance.unwrap() - w1).abs() < 1e-9 && w1 >= 2.9,
        "{x:?} vs {w1}"
    );
    assert_eq!(x.missing_share, 0.0);
    // What the service claimed at that poll is reported beside it.
    let (mean, sd) = mean_sd(&data);
    let claimed = (current.iter().sum::<f64>() / current.len() as f64 - mean).abs() / sd;
    assert_eq!(x.service_flagged, Some(true));
    assert!(
        (x.service_statistic.unwrap() - claimed).abs() < 1e-12,
        "{x:?} vs {claimed}"
    );
    assert_eq!(x.service_p_value, Some(0.001));

    let new_cat = &r.scenarios[1].runs[0];
    assert_eq!(
        (new_cat.detected, new_cat.delay_instances),
        (true, Some(50))
    );
    assert_eq!(new_cat.flagged_features, vec!["c".to_string()]);
    let window = &g.polls[BASELINE_POLLS + 2 * SCENARIO_POLLS - 1];
    let c = &new_cat.recomputed[0];
    assert_eq!((c.feature.as_str(), c.method.as_str()), ("c", "chi2"));
    let want = chi_square(
        &counts(data.iter().map(|r| r.c)),
        &counts(window.iter().map(|i| i["c"].as_str().unwrap())),
    );
    assert!(
        (c.statistic.unwrap() - want).abs() < 1e-9 * want,
        "{c:?} vs {want}"
    );
    assert!(c.p_value.unwrap() < 1e-6, "{c:?}");
    assert_eq!(c.service_flagged, Some(true));
}

#[tokio::test]
async fn a_detector_that_always_says_drift_loses_the_false_alarm_points() {
    let g = grade(Mode::Always).await;
    let fa = find(&g.checks, FALSE_ALARMS_CHECK);
    assert_points(fa, 0.0, 4.0);
    assert_has(
        &fa.message,
        &[
            "10 of 10 polls over 500 in-distribution instances said drift (100%",
            "features named: c (10), n (10), x (10)",
        ],
    );
    assert_eq!(g.report.baseline.flagged_polls, BASELINE_POLLS as u64);
    assert_eq!(g.report.baseline.false_alarms_per_1000_instances, 20.0);
    // Detection is trivially on time...
    for name in [X_UP, NEW_CATEGORY] {
        assert_points(find(&g.checks, &detection_check_name(name)), 3.0, 3.0);
    }
    // ...but flagging all three features in both scenarios is 2 right and 4 wrong:
    // precision 1/3, recall 1, F1 0.5, which earns (0.5 - 0.3) / (0.8 - 0.3) of the points.
    assert_eq!(
        (g.report.precision, g.report.recall, g.report.f1),
        (0.333, 1.0, 0.5)
    );
    let at = find(&g.checks, ATTRIBUTION_CHECK);
    assert_points(at, 1.6, 4.0);
    assert_has(
        &at.message,
        &["(2 right, 4 flagged but not shifted, 0 shifted but not flagged"],
    );
}

#[tokio::test]
async fn a_detector_that_never_says_drift_loses_the_detections() {
    let g = grade(Mode::Never).await;
    assert_points(find(&g.checks, FALSE_ALARMS_CHECK), 4.0, 4.0);
    for (i, name) in [X_UP, NEW_CATEGORY].into_iter().enumerate() {
        let c = find(&g.checks, &detection_check_name(name));
        assert_points(c, 0.0, 3.0);
        assert_has(
            &c.message,
            &["no poll in 200 shifted instances reported drift"],
        );
        assert_eq!(
            (
                g.report.scenarios[i].detected_runs,
                g.report.scenarios[i].runs[0].detected,
                g.report.scenarios[i].runs[0].delay_instances
            ),
            (0, false, None)
        );
    }
    let at = find(&g.checks, ATTRIBUTION_CHECK);
    assert_points(at, 0.0, 4.0);
    assert_has(
        &at.message,
        &["(0 right, 0 flagged but not shifted, 2 shifted but not flagged"],
    );
    assert_eq!(g.report.f1, 0.0);
}

#[tokio::test]
async fn a_few_false_alarms_cost_part_of_the_points() {
    // Two of the ten baseline polls also say n drifted: a rate of 20%, on a curve from full
    // points at 10% to none at 50%.
    let g = grade(Mode::AlsoFlagsN(&[2, 6])).await;
    let fa = find(&g.checks, FALSE_ALARMS_CHECK);
    assert_points(fa, 3.0, 4.0);
    assert_has(
        &fa.message,
        &[
            "2 of 10 polls over 500 in-distribution instances said drift (20%",
            "features named: n (2)",
        ],
    );
    assert_eq!(g.report.baseline.false_alarms_per_1000_instances, 4.0);
    assert_eq!(
        g.report.baseline.flagged_features,
        BTreeMap::from([("n".to_string(), 2)])
    );
    for name in [X_UP, NEW_CATEGORY] {
        assert_points(find(&g.checks, &detection_check_name(name)), 3.0, 3.0);
    }
    assert_points(find(&g.checks, ATTRIBUTION_CHECK), 4.0, 4.0);
}

#[tokio::test]
async fn replicated_scenarios_earn_detection_in_proportion_to_the_runs_that_detected() {
    let toml = drift_toml("max_false_alarm_rate = 0.1\nreplicates = 2", SCENARIOS);
    let g = grade_toml(Mode::EveryOtherEpisode, &toml).await;
    // Every run flushes the window first, so each one is an episode of its own: the first run
    // of each scenario is reported, the second is not.
    for (i, name) in [X_UP, NEW_CATEGORY].into_iter().enumerate() {
        let c = find(&g.checks, &detection_check_name(name));
        assert_points(c, 1.5, 3.0);
        assert_has(
            &c.message,
            &[
                "detected in 1 of 2 runs of 200 shifted instances (allowed delay: 50)",
                "drift first reported after: 50, never",
            ],
        );
        let sc = &g.report.scenarios[i];
        assert_eq!(sc.detected_runs, 1);
        let runs: Vec<(bool, Option<u64>)> = sc
            .runs
            .iter()
            .map(|r| (r.detected, r.delay_instances))
            .collect();
        assert_eq!(runs, vec![(true, Some(50)), (false, None)]);
        // Each run's timeline: a poll every 50 shifted instances, the verdict it gave, and the
        // p-value the service reported for the shifted feature.
        let feature = if i == 0 { "x" } else { "c" };
        for (run, said) in sc.runs.iter().zip([true, false]) {
            let at: Vec<u64> = run.polls.iter().map(|p| p.instances).collect();
            assert_eq!(at, [50, 100, 150, 200]);
            assert!(run.polls.iter().all(|p| p.drift == Some(said)));
            let p = run.polls[3].p_values[feature];
            assert_eq!(p, Some(if said { 0.001 } else { 0.5 }), "{:?}", run.polls);
        }
    }
    // Attribution counts every run: 2 right, 0 wrong, 2 missed; F1 2/3 earns
    // (2/3 - 0.3) / (0.8 - 0.3) of the 4 points.
    assert_eq!(
        (g.report.precision, g.report.recall, g.report.f1),
        (1.0, 0.5, 0.667)
    );
    assert_points(find(&g.checks, ATTRIBUTION_CHECK), 2.93, 4.0);
    // Each run sent its own flush and shifted segment.
    let sent: usize = g
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| fixture::instances(r).len())
        .sum();
    assert_eq!(sent, WINDOW + BASELINE + 2 * 2 * (WINDOW + SHIFTED));
    // The same detector with one run each: all or nothing, decided by which episode a
    // scenario happened to fall on.
    let g = grade(Mode::EveryOtherEpisode).await;
    assert_points(find(&g.checks, &detection_check_name(X_UP)), 3.0, 3.0);
    assert_points(
        find(&g.checks, &detection_check_name(NEW_CATEGORY)),
        0.0,
        3.0,
    );
}

#[tokio::test]
async fn a_detection_after_max_delay_is_not_a_hit() {
    // One scenario, so that a late verdict cannot leak into the next one.
    let one = &SCENARIOS[..SCENARIOS.rfind("[[drift.scenario]]").unwrap()];
    let g = grade_toml(
        Mode::OnePollLate,
        &drift_toml("max_false_alarm_rate = 0.1", one),
    )
    .await;
    assert_eq!(g.checks.len(), 3);
    let c = find(&g.checks, &detection_check_name(X_UP));
    assert_points(c, 0.0, 6.0);
    assert_has(
        &c.message,
        &["drift reported only 100 instances after the shift began (allowed: 50)"],
    );
    assert_eq!(
        (
            g.report.scenarios[0].detected_runs,
            g.report.scenarios[0].runs[0].detected,
            g.report.scenarios[0].runs[0].delay_instances
        ),
        (0, false, Some(100))
    );
    // It did name the right feature in the end.
    assert_points(find(&g.checks, ATTRIBUTION_CHECK), 4.0, 4.0);
}

#[tokio::test]
async fn an_overall_verdict_without_feature_flags_loses_only_the_attribution() {
    let g = grade(Mode::OverallOnly).await;
    assert_points(find(&g.checks, FALSE_ALARMS_CHECK), 4.0, 4.0);
    for name in [X_UP, NEW_CATEGORY] {
        assert_points(find(&g.checks, &detection_check_name(name)), 3.0, 3.0);
    }
    let at = find(&g.checks, ATTRIBUTION_CHECK);
    assert_points(at, 0.0, 4.0);
    assert_has(&at.message, &["2 shifted but not flagged"]);
    let x = &g.report.scenarios[0].runs[0].recomputed[0];
    assert_eq!((x.service_flagged, x.service_statistic), (None, None));
}

#[tokio::test]
async fn an_overall_verdict_that_is_not_a_boolean_counts_for_nothing() {
    let g = grade(Mode::NotBoolean).await;
    for c in &g.checks {
        assert_points(c, 0.0, c.max_points);
    }
    let why =
        "the drift endpoint could not be read: no boolean at `/drift_detected` in the drift answer";
    assert_has(&find(&g.checks, FALSE_ALARMS_CHECK).message, &[why]);
    assert_has(
        &find(&g.checks, &detection_check_name(X_UP)).message,
        &[why],
    );
    assert_eq!(g.report.baseline.polls, 0);
}

#[tokio::test]
async fn a_drift_endpoint_answering_500_gets_no_points() {
    let server = Server::start(|r| match r.path.as_str() {
        "/predict" => fixture::predictions(r, fixture::model),
        _ => Reply::text(500, "drift not implemented"),
    });
    let (checks, _) = grade_url(
        &server.url,
        &drift_toml("max_false_alarm_rate = 0.1", SCENARIOS),
    )
    .await;
    for c in &checks {
        assert_points(c, 0.0, c.max_points);
    }
    let why = "the drift endpoint could not be read: GET /drift answered 500";
    assert_has(&find(&checks, FALSE_ALARMS_CHECK).message, &[why]);
    assert_has(
        &find(&checks, &detection_check_name(NEW_CATEGORY)).message,
        &[why],
    );
}

#[tokio::test]
async fn a_refused_connection_gets_no_points_and_counts_the_failed_traffic() {
    let (checks, _) = grade_url(
        &refused_url(),
        &drift_toml("max_false_alarm_rate = 0.1", SCENARIOS),
    )
    .await;
    for c in &checks {
        assert_points(c, 0.0, c.max_points);
    }
    let requests = (WINDOW + BASELINE + 2 * (WINDOW + SHIFTED)) / BATCH;
    assert_has(
        &find(&checks, FALSE_ALARMS_CHECK).message,
        &[
            "GET /drift: could not connect",
            &format!("; {requests} predict requests of the drift traffic failed"),
        ],
    );
    assert_has(
        &find(&checks, &detection_check_name(X_UP)).message,
        &["could not connect"],
    );
}

#[tokio::test]
async fn a_drift_endpoint_slower_than_the_timeout_gets_no_points() {
    // A short run: two baseline polls and two in the one scenario, each a timeout.
    let toml = drift_toml(
        "max_false_alarm_rate = 0.1",
        &SCENARIOS[..SCENARIOS.rfind("[[drift.scenario]]").unwrap()],
    )
    .replace(
        &format!("baseline_instances = {BASELINE}"),
        "baseline_instances = 100",
    )
    .replace("instances = 200", "instances = 100");
    let server = Server::start(|r| match r.path.as_str() {
        "/predict" => fixture::predictions(r, fixture::model),
        _ => Reply::json(200, &json!({"drift_detected": false})).after(SLOW),
    });
    let (checks, report) = grade_url(&server.url, &toml).await;
    assert_eq!(server.requests_to("/drift").len(), 4);
    for c in &checks {
        assert_points(c, 0.0, c.max_points);
    }
    let why = format!(
        "the drift endpoint could not be read: GET /drift: no response within {TIMEOUT_MS}ms"
    );
    assert_has(&find(&checks, FALSE_ALARMS_CHECK).message, &[&why]);
    assert_has(&find(&checks, &detection_check_name(X_UP)).message, &[&why]);
    assert_eq!(report.scenarios[0].runs[0].delay_instances, None);
}

/// docs/grader-format.md: full false-alarm points "while at most `max_false_alarm_rate` of
/// baseline polls say drift". With `max_false_alarm_rate` above `false_alarm_zero_rate` (0.5 by
/// default) the curve would be inverted: no false alarm would earn nothing and constant alarms
/// all. Such a grader file is refused at load, naming the zero rate.
#[tokio::test]
async fn no_false_alarms_keep_full_points_whatever_the_allowed_rate() {
    let toml = drift_toml("max_false_alarm_rate = 0.6", SCENARIOS);
    if let Err(e) = try_load("", &toml, &[("stream", &stream())]) {
        // Refusing the grader file is a correct answer too, located at the rate it conflicts
        // with, since the default zero rate is not in the file.
        match &e {
            proctor::grader::GraderError::Invalid {
                field,
                message,
                line,
                ..
            } => {
                assert_eq!(field, "drift.false_alarm_zero_rate", "{e}");
                assert_has(
                    message,
                    &["0.5 (the default)", "max_false_alarm_rate (0.6)"],
                );
                let text = fixture::head("") + &toml;
                assert_eq!(
                    text.lines().nth(line - 1),
                    Some("max_false_alarm_rate = 0.6"),
                    "{e}"
                );
            }
            other => panic!("unexpected {other}"),
        }
        return;
    }
    let g = grade_toml(Mode::Never, &toml).await;
    assert_points(find(&g.checks, FALSE_ALARMS_CHECK), 4.0, 4.0);
    let g = grade_toml(Mode::Always, &toml).await;
    assert_points(find(&g.checks, FALSE_ALARMS_CHECK), 0.0, 4.0);
}

/// A zero rate declared at or below the full-points rate is refused where it is declared, and
/// so is one past 1 (a share of polls).
#[test]
fn a_false_alarm_zero_rate_not_above_the_allowed_rate_is_refused_where_declared() {
    for (fields, shown) in [
        (
            "max_false_alarm_rate = 0.2\nfalse_alarm_zero_rate = 0.2",
            "0.2 must be above",
        ),
        (
            "max_false_alarm_rate = 0.2\nfalse_alarm_zero_rate = 1.5",
            "1.5 must be above",
        ),
    ] {
        let toml = drift_toml(fields, SCENARIOS);
        let e = try_load("", &toml, &[("stream", &stream())]).unwrap_err();
        match &e {
            proctor::grader::GraderError::Invalid {
                field,
                message,
                line,
                ..
            } => {
                assert_eq!(field, "drift.false_alarm_zero_rate", "{e}");
                assert_has(message, &[shown, "max_false_alarm_rate (0.2)"]);
                let text = fixture::head("") + &toml;
                let declared = fields.lines().nth(1).unwrap();
                assert_eq!(text.lines().nth(line - 1), Some(declared), "{e}");
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn replicates_out_of_range_are_refused_where_declared() {
    for n in [0, 11] {
        let toml = drift_toml(
            &format!("max_false_alarm_rate = 0.1\nreplicates = {n}"),
            SCENARIOS,
        );
        match try_load("", &toml, &[("stream", &stream())]).unwrap_err() {
            proctor::grader::GraderError::Invalid {
                field,
                message,
                line,
                ..
            } => {
                assert_eq!(field, "drift.replicates");
                assert_has(&message, &["between 1 and 10", &format!("got {n}")]);
                let text = fixture::head("") + &toml;
                assert_eq!(
                    text.lines().nth(line - 1),
                    Some(format!("replicates = {n}").as_str())
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[tokio::test]
async fn statistics_as_the_contract_defines_them_agree_on_every_poll() {
    let toml = drift_toml(
        "max_false_alarm_rate = 0.1",
        &format!("{STATISTICS}{SCENARIOS}"),
    );
    let g = grade_toml(Mode::Statistics(1.0), &toml).await;
    assert_eq!(g.checks.len(), 6);
    let m = find(&g.checks, METHODS_CHECK);
    assert_points(m, 1.0, 1.0);
    let s = find(&g.checks, STATISTICS_CHECK);
    assert_points(s, 3.0, 3.0);
    let pairs = 3 * (BASELINE_POLLS + 2 * SCENARIO_POLLS);
    assert_has(
        &s.message,
        &[&format!("{pairs} of {pairs} (poll, feature) pairs agree")],
    );
    let per_feature = &g.report.statistics;
    assert_eq!(per_feature.len(), 3);
    for f in per_feature {
        assert_eq!(
            f.polls,
            (BASELINE_POLLS + 2 * SCENARIO_POLLS) as u64,
            "{f:?}"
        );
        assert_eq!(f.agreed_polls, f.polls, "{f:?}");
        assert_eq!(f.first_disagreement, None);
    }
    assert_eq!(per_feature[2].reported_methods, vec!["chi2".to_string()]);
    // The recomputation is against the declared reference, `train`, not the traffic's source.
    let x = &g.report.scenarios[0].runs[0].recomputed[0];
    let window = &g.polls[BASELINE_POLLS + SCENARIO_POLLS - 1];
    let current: Vec<f64> = window.iter().map(|i| i["x"].as_f64().unwrap()).collect();
    let reference: Vec<f64> = train().iter().map(|r| r.x).collect();
    assert!((x.statistic.unwrap() - ks_statistic(&reference, &current)).abs() < 1e-9);
}

#[tokio::test]
async fn p_values_off_by_a_factor_of_ten_lose_the_statistics_points_and_keep_detection() {
    let toml = drift_toml(
        "max_false_alarm_rate = 0.1",
        &format!("{STATISTICS}{SCENARIOS}"),
    );
    let g = grade_toml(Mode::Statistics(0.1), &toml).await;
    let s = find(&g.checks, STATISTICS_CHECK);
    assert_points(s, 0.0, 3.0);
    assert_has(
        &s.message,
        &["decades from what its statistic", "disagreeing: x "],
    );
    // Names and detection are untouched.
    assert_points(find(&g.checks, METHODS_CHECK), 1.0, 1.0);
    assert_points(find(&g.checks, FALSE_ALARMS_CHECK), 4.0, 4.0);
    for name in [X_UP, NEW_CATEGORY] {
        assert_points(find(&g.checks, &detection_check_name(name)), 3.0, 3.0);
    }
    assert_points(find(&g.checks, ATTRIBUTION_CHECK), 4.0, 4.0);
}

#[tokio::test]
async fn methods_other_than_the_contract_lose_the_method_points() {
    // The plain fake reports no method at all (and statistics that are not the contract's).
    let toml = drift_toml(
        "max_false_alarm_rate = 0.1",
        &format!("{STATISTICS}{SCENARIOS}"),
    );
    let g = grade_toml(Mode::Correct, &toml).await;
    let m = find(&g.checks, METHODS_CHECK);
    assert_points(m, 0.0, 1.0);
    assert_has(
        &m.message,
        &["0 of 3 features", "x reported no method (expected \"ks\")"],
    );
    assert_points(find(&g.checks, STATISTICS_CHECK), 0.0, 3.0);
}

#[test]
fn statistics_need_the_reference_dataset_and_known_feature_types() {
    let without = drift_toml(
        "max_false_alarm_rate = 0.1",
        &STATISTICS.replace("reference_dataset = \"train\"\n", ""),
    );
    let err = try_load("", &without, &[("stream", &stream())])
        .unwrap_err()
        .to_string();
    assert_has(
        &err,
        &["drift.reference_dataset", "reference_dataset = \"train\""],
    );
    let typo = drift_toml(
        "max_false_alarm_rate = 0.1",
        &STATISTICS.replace("integer =", "int ="),
    );
    let err = try_load("", &typo, &[("stream", &stream()), ("train", &train())])
        .unwrap_err()
        .to_string();
    assert_has(
        &err,
        &["drift.statistics.methods", "\"int\" is not a feature type"],
    );
}
