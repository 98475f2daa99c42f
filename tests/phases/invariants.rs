//! Invariants: seeded batches of dataset rows (each also shuffled, each row alone, one row
//! twice) against services that each break one invariant. Each must fail exactly that check,
//! with the smallest counterexample, named by row indices and scores the test recomputes from
//! the dataset.

use std::sync::atomic::{AtomicU64, Ordering};

use proctor::check::{Category, CheckResult};
use proctor::grader::LoadedGrader;
use proctor::phases::invariants::run;
use proctor::report::InvariantsReport;
use serde_json::{json, Value};

use crate::fixture::{self, load, rows, Row};
use crate::server::{Reply, Req, Server};
use crate::{assert_has, assert_points, find};

const TRIALS: usize = 5;
const BATCH: usize = 6;
const ORDER: &str = "predictions follow the order of the instances in a shuffled batch";
const INDEPENDENCE: &str = "an instance's prediction does not depend on the rest of its batch";
const DETERMINISM: &str = "the same instance gets the same prediction twice";
const RELATION: &str = "churn is the score at least 0.5";

/// Rows with x in [40, 70): a third of the scores x/100 fall in [0.5, 0.6).
fn data() -> Vec<Row> {
    rows(60, 3)
        .into_iter()
        .map(|r| Row {
            x: 40.0 + (r.x * 0.3 * 100.0).round() / 100.0,
            ..r
        })
        .collect()
}

fn grader() -> LoadedGrader {
    let toml = format!(
        r#"{}
[invariants]
dataset = "holdout"
trials = {TRIALS}
batch_size = {BATCH}
tolerance = 1e-6
order_points = 2
independence_points = 2
determinism_points = 1

[[invariants.relation]]
name = "{RELATION}"
field = "/churn"
equals_score_at_least = 0.5
points = 1
"#,
        fixture::prediction(64)
    );
    let d = data();
    load(&toml, &[("holdout", &d)])
}

struct Graded {
    checks: Vec<CheckResult>,
    report: InvariantsReport,
    server: Server,
}

impl Graded {
    fn check(&self, name: &str) -> &CheckResult {
        find(&self.checks, name)
    }
}

/// Grades a service whose answer to a batch is `scores` of its instances, each with
/// `churn = label(score)`.
async fn grade(
    scores: impl Fn(&Req, &[Value]) -> Vec<f64> + Send + Sync + 'static,
    label: impl Fn(f64) -> bool + Send + Sync + 'static,
) -> Graded {
    let server = Server::start(move |r| {
        let instances = fixture::instances(r);
        let ps: Vec<Value> = scores(r, &instances)
            .into_iter()
            .map(|p| json!({"p": p, "churn": label(p)}))
            .collect();
        Reply::json(200, &json!({ "predictions": ps }))
    });
    let g = grader();
    let (checks, report) = run(
        &fixture::target(&server.url, &g),
        g.grader.prediction.as_ref().unwrap(),
        g.grader.invariants.as_ref().unwrap(),
        &g.datasets["holdout"],
        7,
        g.grader.grader.visibility,
    )
    .await;
    assert!(checks.iter().all(|c| c.category == Category::Consistency));
    assert_eq!(checks.len(), 4);
    assert_eq!(report.invariants.len(), 4);
    Graded {
        checks,
        report,
        server,
    }
}

fn each(instances: &[Value]) -> Vec<f64> {
    instances.iter().map(fixture::model).collect()
}

fn at_least_half(p: f64) -> bool {
    p >= 0.5
}

/// The model's score of dataset row `i`.
fn score_of(i: u64) -> f64 {
    data()[i as usize].x / 100.0
}

/// Asserts the checks named pass and the others fail.
#[track_caller]
fn only_failing(g: &Graded, failing: &[&str]) {
    for (name, points) in [
        (ORDER, 2.0),
        (INDEPENDENCE, 2.0),
        (DETERMINISM, 1.0),
        (RELATION, 1.0),
    ] {
        let expected = if failing.contains(&name) { 0.0 } else { points };
        assert_points(g.check(name), expected, points);
    }
}

#[tokio::test]
async fn a_correct_service_passes_every_invariant() {
    let g = grade(|_, i| each(i), at_least_half).await;
    only_failing(&g, &[]);
    let per_trial = BATCH as u64 + 4;
    assert_eq!(g.report.requests, TRIALS as u64 * per_trial);
    assert_eq!(g.server.requests().len() as u64, g.report.requests);
    assert!(g.report.distinct_scores > BATCH as u64, "{:?}", g.report);
    assert_has(
        &g.check(ORDER).message,
        &["5 batches of 6 rows, each sent again shuffled, got the permuted predictions"],
    );
    assert_has(&g.check(INDEPENDENCE).message, &["within 1e-6"]);
    assert!(!g.check(ORDER).message.contains("trivially"));
    // Distinct complete rows in every batch, the shuffled batch the same rows.
    let sent = g.server.requests();
    for t in 0..TRIALS {
        let first = fixture::instances(&sent[t * per_trial as usize]);
        let second = fixture::instances(&sent[t * per_trial as usize + 1]);
        assert_eq!(first.len(), BATCH);
        assert!(first.iter().all(|i| !i["n"].is_null()));
        let key = |v: &[Value]| {
            let mut k: Vec<String> = v.iter().map(Value::to_string).collect();
            k.sort();
            k
        };
        assert_eq!(key(&first), key(&second));
        assert_ne!(first, second, "the second batch is shuffled");
    }
}

#[tokio::test]
async fn a_service_reversing_the_batch_fails_order_with_two_rows() {
    let g = grade(
        |_, i| {
            let mut s = each(i);
            s.reverse();
            s
        },
        at_least_half,
    )
    .await;
    // The scores are right, only in the wrong places: the other invariants hold.
    only_failing(&g, &[ORDER]);
    let c = g.report.invariants[0].counterexample.as_ref().unwrap();
    assert_eq!(c.batch.len(), 2, "shrunk to two instances: {c:?}");
    let (row, other) = (c.batch[0], c.batch[1]);
    assert_eq!(c.row, row);
    assert_eq!(c.scores, [score_of(row), score_of(other)]);
    assert_eq!(
        g.check(ORDER).message,
        format!(
            "in one batch of rows {row}, {other}, row {row} got {:.6}, the score row {other} \
             gets alone (row {row} alone gets {:.6}): the predictions came back out of order",
            score_of(other),
            score_of(row)
        )
    );
}

#[tokio::test]
async fn a_score_depending_on_the_batch_mean_fails_independence_with_two_rows() {
    let g = grade(
        |_, i| {
            let mean = i.iter().map(fixture::model).sum::<f64>() / i.len() as f64;
            i.iter().map(|x| (fixture::model(x) + mean) / 2.0).collect()
        },
        at_least_half,
    )
    .await;
    // A permutation keeps the mean, and one row twice has its own mean.
    only_failing(&g, &[INDEPENDENCE]);
    let c = g.report.invariants[1].counterexample.as_ref().unwrap();
    assert_eq!(c.batch.len(), 2, "shrunk to two instances: {c:?}");
    let mean = (score_of(c.batch[0]) + score_of(c.batch[1])) / 2.0;
    let in_batch = (score_of(c.row) + mean) / 2.0;
    assert_eq!(c.scores[0], score_of(c.row));
    assert!((c.scores[1] - in_batch).abs() < 1e-12, "{c:?}");
    assert_eq!(
        g.check(INDEPENDENCE).message,
        format!(
            "row {} gets {:.6} alone but {in_batch:.6} in one batch of rows {}, {}",
            c.row,
            score_of(c.row),
            c.batch[0],
            c.batch[1]
        )
    );
}

#[tokio::test]
async fn a_score_that_changes_only_in_large_batches_is_shrunk_to_the_smallest_one() {
    let g = grade(
        |_, i| {
            let shift = if i.len() >= 4 { 0.01 } else { 0.0 };
            i.iter().map(|x| fixture::model(x) + shift).collect()
        },
        at_least_half,
    )
    .await;
    let c = g.report.invariants[1].counterexample.as_ref().unwrap();
    assert_eq!(c.batch.len(), 4, "no batch of 3 shows it: {c:?}");
    assert_points(g.check(INDEPENDENCE), 0.0, 2.0);
}

#[tokio::test]
async fn a_nondeterministic_service_fails_determinism_naming_the_row() {
    let calls = AtomicU64::new(0);
    let g = grade(
        move |_, i| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            i.iter()
                .map(|x| fixture::model(x) + (n % 5) as f64 * 0.001)
                .collect()
        },
        at_least_half,
    )
    .await;
    let det = g.check(DETERMINISM);
    assert_points(det, 0.0, 1.0);
    let c = g.report.invariants[2].counterexample.as_ref().unwrap();
    assert_eq!(c.batch, [c.row], "the one instance, alone: {c:?}");
    assert_ne!(c.scores[0], c.scores[1]);
    assert_eq!(
        det.message,
        format!(
            "row {} got {:.6} and then {:.6}, alone in two requests",
            c.row, c.scores[0], c.scores[1]
        )
    );
    // Order fails too, and says that nondeterminism may be why.
    assert_has(
        &g.check(ORDER).message,
        &["also answers the same instance differently twice"],
    );
}

#[tokio::test]
async fn a_label_with_another_threshold_fails_the_relation_on_one_prediction() {
    let g = grade(|_, i| each(i), |p| p > 0.6).await;
    only_failing(&g, &[RELATION]);
    let c = g.report.invariants[3].counterexample.as_ref().unwrap();
    let p = score_of(c.row);
    assert!((0.5..=0.6).contains(&p), "{c:?}");
    assert_eq!(c.scores, [p]);
    assert_eq!(c.batch, [c.row], "a row alone breaks it too: {c:?}");
    assert_eq!(
        g.check(RELATION).message,
        format!(
            "row {} (in a batch of 1) got /p {p:.6} and /churn false, but /churn must be \
             (/p >= 0.5), here true",
            c.row
        )
    );
}

#[tokio::test]
async fn a_constant_service_passes_and_the_report_says_it_proves_nothing() {
    let g = grade(|_, i| vec![0.5; i.len()], at_least_half).await;
    only_failing(&g, &[]);
    assert_eq!(g.report.distinct_scores, 1);
    for c in &g.checks {
        assert_has(
            &c.message,
            &["1 distinct scores seen", "passes this trivially"],
        );
    }
}

#[tokio::test]
async fn a_service_that_fails_its_requests_passes_nothing() {
    let server = Server::start(|_| Reply::text(500, "oops"));
    let g = grader();
    let (checks, report) = run(
        &fixture::target(&server.url, &g),
        g.grader.prediction.as_ref().unwrap(),
        g.grader.invariants.as_ref().unwrap(),
        &g.datasets["holdout"],
        7,
        g.grader.grader.visibility,
    )
    .await;
    assert_eq!(report.distinct_scores, 0);
    for c in &checks {
        assert!(!c.passed && c.points == 0.0, "{c:?}");
    }
    assert_has(
        &find(&checks, ORDER).message,
        &[
            "could not be checked in 5 of 5 trials: a batch of rows",
            "failed: status 500",
        ],
    );
    assert_has(
        &find(&checks, RELATION).message,
        &["no prediction with a valid score to check"],
    );
}

/// A batch needs distinct complete rows: a dataset with fewer is refused at load.
#[test]
fn a_dataset_smaller_than_a_batch_is_refused() {
    let toml = format!(
        "{}\n[invariants]\ndataset = \"holdout\"\nbatch_size = 8\norder_points = 1\n",
        fixture::prediction(64)
    );
    let few = fixture::complete(&data())[..7].to_vec();
    let e = fixture::try_load("", &toml, &[("holdout", &few)]).unwrap_err();
    assert_has(
        &e.to_string(),
        &["invariants.dataset: dataset \"holdout\" has 7 rows without a null, fewer than invariants.batch_size (8)"],
    );
}
