//! Invariants of the prediction API, checked property-style: seeded batches of distinct dataset
//! rows are sent, each also shuffled, each row alone, one row twice; then
//! - order: the shuffled batch gets the same predictions, shuffled the same way;
//! - batch independence: the batch's scores are the rows' scores alone (in whatever order, so
//!   that a batch answered out of order costs the order check only);
//! - determinism: one row gets the same score in two requests, and twice in one batch;
//! - declared relations: a boolean field of every prediction equals `score >= threshold`.
//!
//! A failing invariant is reported with its smallest counterexample: a failing batch is shrunk
//! one row at a time, while it still fails, down to two rows at best (the scores alone are the
//! reference). Messages name row indices of the dataset (from 0, in file order) and the scores,
//! never whole bodies.
//!
//! A service answering one constant passes order, independence and determinism trivially; the
//! report counts the distinct scores seen and the messages say so, so that no reader mistakes
//! those points for a model's.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use rand::seq::SliceRandom;
use rand::RngExt;
use serde_json::Value;

use crate::check::{Category, DeclaredCheck};
use crate::data::Dataset;
use crate::grader::{InvariantKind, InvariantsSpec, LoadedGrader, PredictionApi, Visibility};
use crate::phases::predict::{rows_of, Predictor, Scored};
use crate::report::{CheckResult, Counterexample, InvariantOutcome, InvariantsReport};
use crate::target::Target;

/// Most requests spent shrinking one counterexample: a failing batch of `b` rows needs about
/// `b` of them when every removal keeps it failing, up to `b²/2` when few do.
const SHRINK_REQUESTS: usize = 64;

/// Requests of one trial: the batch, the shuffled batch, each row alone, one row again alone,
/// and that row twice in one batch.
fn requests_per_trial(batch: usize) -> usize {
    batch + 4
}

/// Runs every trial, evaluates the declared invariants and shrinks their counterexamples.
pub async fn run(
    target: &Target,
    api: &PredictionApi,
    spec: &InvariantsSpec,
    data: &Dataset,
    seed: u64,
    default_vis: Visibility,
) -> (Vec<CheckResult>, InvariantsReport) {
    let mut prober = Prober {
        predictor: Predictor { target, api },
        data,
        requests: 0,
        scores: Vec::new(),
        answers: Vec::new(),
    };
    let mut rng = crate::data::rng(seed, "invariants");
    let mut pool = rows_of(data, true);
    let k = spec.batch_size.min(pool.len());
    let mut trials = Vec::with_capacity(spec.trials);
    for _ in 0..spec.trials {
        pool.shuffle(&mut rng);
        let rows = pool[..k].to_vec();
        let mut shuffled = rows.clone();
        shuffled.shuffle(&mut rng);
        if shuffled == rows && k >= 2 {
            shuffled.swap(0, 1);
        }
        let repeated = rows[rng.random_range(0..k)];
        trials.push(prober.trial(rows, shuffled, repeated).await);
    }

    let tol = spec.tolerance;
    let determinism = evaluate(&trials, |t| t.determinism(tol));
    let nondeterministic = matches!(determinism, Evaluation::Failed(..));
    let mut outcomes = Vec::new();
    let mut checks = Vec::new();
    for (kind, name, points) in spec.declared() {
        let evaluation = match kind {
            InvariantKind::Order => match evaluate(&trials, |t| t.order(tol)) {
                Evaluation::Failed(t, _) => prober.shrink_order(&trials[t], tol).await,
                other => other,
            },
            InvariantKind::Independence => match evaluate(&trials, |t| t.independence(tol)) {
                Evaluation::Failed(t, _) => prober.shrink_independence(&trials[t], tol).await,
                other => other,
            },
            InvariantKind::Determinism => determinism.clone(),
            InvariantKind::Relation(i) => prober.relation(&spec.relation[i], api),
        };
        let (passed, counterexample, message) = match evaluation {
            Evaluation::Passed => (true, None, String::new()),
            Evaluation::Failed(_, (c, mut m)) => {
                if nondeterministic
                    && matches!(kind, InvariantKind::Order | InvariantKind::Independence)
                {
                    m.push_str(
                        " (the service also answers the same instance differently twice, see \
                         the determinism check)",
                    );
                }
                (false, Some(c), m)
            }
            Evaluation::Unusable(m) => (false, None, m),
        };
        outcomes.push(InvariantOutcome {
            name: name.clone(),
            kind: kind_name(kind).into(),
            passed,
            counterexample,
        });
        checks.push((kind, name, points, passed, message));
    }

    let distinct = distinct(&mut prober.scores);
    let trivial = if distinct <= 1 {
        "; every prediction had the same score, and a constant answer passes this trivially: it \
         says nothing about the model"
    } else {
        ""
    };
    let results = checks
        .into_iter()
        .map(|(kind, name, points, passed, message)| {
            let message = if passed {
                format!(
                    "{}; {distinct} distinct scores seen{trivial}",
                    passed_message(kind, spec, k)
                )
            } else {
                message
            };
            CheckResult {
                grader: String::new(),
                name,
                category: Category::Consistency,
                points: if passed { points.0 } else { 0.0 },
                max_points: points.0,
                passed,
                message,
                visibility: spec.visibility.unwrap_or(default_vis),
            }
        })
        .collect();
    let report = InvariantsReport {
        dataset: spec.dataset.clone(),
        trials: spec.trials as u64,
        batch_size: k as u64,
        requests: prober.requests,
        distinct_scores: distinct,
        invariants: outcomes,
    };
    (results, report)
}

fn kind_name(kind: InvariantKind) -> &'static str {
    match kind {
        InvariantKind::Order => "order",
        InvariantKind::Independence => "independence",
        InvariantKind::Determinism => "determinism",
        InvariantKind::Relation(_) => "relation",
    }
}

fn passed_message(kind: InvariantKind, spec: &InvariantsSpec, k: usize) -> String {
    let n = spec.trials;
    match kind {
        InvariantKind::Order => {
            format!(
                "{n} batches of {k} rows, each sent again shuffled, got the permuted predictions"
            )
        }
        InvariantKind::Independence => format!(
            "{n} batches of {k} rows got the scores their rows get alone, within {:e}",
            spec.tolerance
        ),
        InvariantKind::Determinism => format!(
            "{n} rows got the same score twice alone and twice in one batch, within {:e}",
            spec.tolerance
        ),
        InvariantKind::Relation(_) => "every prediction received holds it".to_string(),
    }
}

/// Distinct values (exactly) among `scores`.
fn distinct(scores: &mut [f64]) -> u64 {
    scores.sort_by(f64::total_cmp);
    let mut n = 0u64;
    let mut last = None;
    for &s in scores.iter() {
        if last != Some(s) {
            n += 1;
            last = Some(s);
        }
    }
    n
}

/// An invariant over all trials: its first counterexample (by trial), or why it could not be
/// checked, or a pass.
#[derive(Debug, Clone)]
enum Evaluation {
    Passed,
    /// The trial that failed, its counterexample and the message saying it.
    Failed(usize, (Counterexample, String)),
    /// Some trial could not check it (a request failed), and none failed it.
    Unusable(String),
}

/// What one trial says about an invariant.
enum Finding {
    Holds,
    Fails(Counterexample, String),
    Unusable(String),
}

fn evaluate(trials: &[Trial], f: impl Fn(&Trial) -> Finding) -> Evaluation {
    let mut unusable = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        match f(t) {
            Finding::Holds => {}
            Finding::Fails(c, m) => return Evaluation::Failed(i, (c, m)),
            Finding::Unusable(m) => unusable.push(m),
        }
    }
    match unusable.first() {
        None => Evaluation::Passed,
        Some(first) => Evaluation::Unusable(format!(
            "could not be checked in {} of {} trials: {first}",
            unusable.len(),
            trials.len()
        )),
    }
}

/// One trial's answers. Scores are `Err` with the reason when the request or the prediction
/// failed.
struct Trial {
    /// The batch, as first sent.
    rows: Vec<usize>,
    /// The same rows, shuffled.
    shuffled: Vec<usize>,
    first: Result<Vec<f64>, String>,
    second: Result<Vec<f64>, String>,
    /// Each row's score alone.
    alone: HashMap<usize, Result<f64, String>>,
    /// The row predicted a second time alone, and twice in one batch.
    repeated: usize,
    again: Result<f64, String>,
    twice: Result<Vec<f64>, String>,
}

impl Trial {
    /// Every row's score alone, or the first reason one is missing.
    fn alone_all(&self) -> Result<HashMap<usize, f64>, String> {
        self.rows
            .iter()
            .map(|&r| self.alone[&r].clone().map(|s| (r, s)))
            .collect()
    }

    fn order(&self, tol: f64) -> Finding {
        let (first, second) = match (&self.first, &self.second) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Finding::Unusable(e.clone()),
        };
        for (j, &r) in self.shuffled.iter().enumerate() {
            let i = self.rows.iter().position(|&x| x == r).expect("same rows");
            if (first[i] - second[j]).abs() > tol {
                return Finding::Fails(
                    Counterexample {
                        batch: as_u64(&self.shuffled),
                        row: r as u64,
                        scores: vec![first[i], second[j]],
                    },
                    format!(
                        "rows {} sent in one batch and again shuffled as {}: row {r} got {:.6} \
                         the first time and {:.6} the second",
                        list(&self.rows),
                        list(&self.shuffled),
                        first[i],
                        second[j]
                    ),
                );
            }
        }
        Finding::Holds
    }

    fn independence(&self, tol: f64) -> Finding {
        let alone = match self.alone_all() {
            Ok(a) => a,
            Err(e) => return Finding::Unusable(e),
        };
        for (rows, scores) in [(&self.rows, &self.first), (&self.shuffled, &self.second)] {
            let scores = match scores {
                Ok(s) => s,
                Err(e) => return Finding::Unusable(e.clone()),
            };
            if batch_dependent(rows, scores, &alone, tol) {
                let (c, m) = independence_counterexample(rows, scores, &alone, tol);
                return Finding::Fails(c, m);
            }
        }
        Finding::Holds
    }

    fn determinism(&self, tol: f64) -> Finding {
        let r = self.repeated;
        let (a, b) = match (&self.alone[&r], &self.again) {
            (Ok(a), Ok(b)) => (*a, *b),
            (Err(e), _) | (_, Err(e)) => return Finding::Unusable(e.clone()),
        };
        if (a - b).abs() > tol {
            return Finding::Fails(
                Counterexample {
                    batch: vec![r as u64],
                    row: r as u64,
                    scores: vec![a, b],
                },
                format!("row {r} got {a:.6} and then {b:.6}, alone in two requests"),
            );
        }
        match &self.twice {
            Ok(t) if (t[0] - t[1]).abs() > tol => Finding::Fails(
                Counterexample {
                    batch: vec![r as u64, r as u64],
                    row: r as u64,
                    scores: t.clone(),
                },
                format!(
                    "row {r} sent twice in one batch got {:.6} and {:.6}",
                    t[0], t[1]
                ),
            ),
            Ok(_) => Finding::Holds,
            Err(e) => Finding::Unusable(e.clone()),
        }
    }
}

/// The batch's scores are not the rows' scores alone, in any order.
fn batch_dependent(rows: &[usize], scores: &[f64], alone: &HashMap<usize, f64>, tol: f64) -> bool {
    let mut expected: Vec<f64> = rows.iter().map(|r| alone[r]).collect();
    let mut got = scores.to_vec();
    expected.sort_by(f64::total_cmp);
    got.sort_by(f64::total_cmp);
    expected.iter().zip(&got).any(|(e, g)| (e - g).abs() > tol)
}

/// The batch's scores are the rows' scores alone, but not each at its own row's place.
fn out_of_order(rows: &[usize], scores: &[f64], alone: &HashMap<usize, f64>, tol: f64) -> bool {
    !batch_dependent(rows, scores, alone, tol)
        && rows
            .iter()
            .zip(scores)
            .any(|(r, s)| (alone[r] - s).abs() > tol)
}

/// The row of a batch-dependent batch whose score changed most plainly: one whose score in the
/// batch is no row's score alone, else the first that differs from its own.
fn independence_counterexample(
    rows: &[usize],
    scores: &[f64],
    alone: &HashMap<usize, f64>,
    tol: f64,
) -> (Counterexample, String) {
    let nobodys = |s: f64| rows.iter().all(|r| (alone[r] - s).abs() > tol);
    let differs = |j: usize| (alone[&rows[j]] - scores[j]).abs() > tol;
    let j = (0..rows.len())
        .find(|&j| differs(j) && nobodys(scores[j]))
        .or_else(|| (0..rows.len()).find(|&j| differs(j)))
        .unwrap_or(0);
    let (r, a, s) = (rows[j], alone[&rows[j]], scores[j]);
    (
        Counterexample {
            batch: as_u64(rows),
            row: r as u64,
            scores: vec![a, s],
        },
        format!(
            "row {r} gets {a:.6} alone but {s:.6} in one batch of rows {}",
            list(rows)
        ),
    )
}

fn order_counterexample(
    rows: &[usize],
    scores: &[f64],
    alone: &HashMap<usize, f64>,
    tol: f64,
) -> (Counterexample, String) {
    let j = (0..rows.len())
        .find(|&j| (alone[&rows[j]] - scores[j]).abs() > tol)
        .unwrap_or(0);
    let (r, a, s) = (rows[j], alone[&rows[j]], scores[j]);
    let whose = rows
        .iter()
        .find(|&&m| m != r && (alone[&m] - s).abs() <= tol)
        .map(|m| format!(", the score row {m} gets alone"))
        .unwrap_or_default();
    (
        Counterexample {
            batch: as_u64(rows),
            row: r as u64,
            scores: vec![a, s],
        },
        format!(
            "in one batch of rows {}, row {r} got {s:.6}{whose} (row {r} alone gets {a:.6}): \
             the predictions came back out of order",
            list(rows)
        ),
    )
}

fn as_u64(rows: &[usize]) -> Vec<u64> {
    rows.iter().map(|&r| r as u64).collect()
}

fn list(rows: &[usize]) -> String {
    rows.iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One prediction received, for the relations.
struct Answer {
    batch: Vec<usize>,
    row: usize,
    object: Value,
    score: Scored,
}

/// Sends batches of dataset rows and keeps every answer.
struct Prober<'a> {
    predictor: Predictor<'a>,
    data: &'a Dataset,
    requests: u64,
    /// Every valid score received.
    scores: Vec<f64>,
    answers: Vec<Answer>,
}

impl Prober<'_> {
    /// The scores of `rows` in one request; `Err` when the request or any prediction failed.
    async fn predict(&mut self, rows: &[usize]) -> Result<Vec<f64>, String> {
        let instances: Vec<_> = rows
            .iter()
            .map(|&r| self.data.instance(&self.data.rows[r]))
            .collect();
        self.requests += 1;
        let answers = self
            .predictor
            .request_objects(&instances)
            .await
            .map_err(|e| format!("a batch of rows {} failed: {e}", list(rows)))?;
        let mut scores = Vec::with_capacity(rows.len());
        let mut failed = None;
        for (&row, (object, score)) in rows.iter().zip(answers) {
            match &score {
                Ok(s) => {
                    self.scores.push(*s);
                    scores.push(*s);
                }
                Err(e) => {
                    failed.get_or_insert_with(|| format!("row {row} got no valid score: {e}"));
                }
            }
            self.answers.push(Answer {
                batch: rows.to_vec(),
                row,
                object,
                score,
            });
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(scores),
        }
    }

    async fn trial(&mut self, rows: Vec<usize>, shuffled: Vec<usize>, repeated: usize) -> Trial {
        let first = self.predict(&rows).await;
        let second = self.predict(&shuffled).await;
        let mut alone = HashMap::new();
        for &r in &rows {
            alone.insert(r, self.predict(&[r]).await.map(|s| s[0]));
        }
        let again = self.predict(&[repeated]).await.map(|s| s[0]);
        let twice = self.predict(&[repeated, repeated]).await;
        Trial {
            rows,
            shuffled,
            first,
            second,
            alone,
            repeated,
            again,
            twice,
        }
    }

    /// The smallest batch found (removing one row at a time while it still `fails`), from a
    /// batch that fails, with its scores.
    async fn shrink(
        &mut self,
        mut rows: Vec<usize>,
        mut scores: Vec<f64>,
        fails: impl Fn(&[usize], &[f64]) -> bool,
    ) -> (Vec<usize>, Vec<f64>) {
        let mut spent = 0;
        'smaller: while rows.len() > 2 {
            for i in 0..rows.len() {
                if spent == SHRINK_REQUESTS {
                    break 'smaller;
                }
                let mut fewer = rows.clone();
                fewer.remove(i);
                spent += 1;
                if let Ok(s) = self.predict(&fewer).await {
                    if fails(&fewer, &s) {
                        (rows, scores) = (fewer, s);
                        continue 'smaller;
                    }
                }
            }
            break;
        }
        (rows, scores)
    }

    /// Order's counterexample, shrunk when the scores alone show the batch out of order; else
    /// the trial's own (a shuffled batch answered differently).
    async fn shrink_order(&mut self, t: &Trial, tol: f64) -> Evaluation {
        let unshrunk = match t.order(tol) {
            Finding::Fails(c, m) => (c, m),
            _ => unreachable!("only a failing trial is shrunk"),
        };
        let Ok(alone) = t.alone_all() else {
            return Evaluation::Failed(0, unshrunk);
        };
        let start = [(&t.rows, &t.first), (&t.shuffled, &t.second)]
            .into_iter()
            .find_map(|(rows, s)| match s {
                Ok(s) if out_of_order(rows, s, &alone, tol) => Some((rows.clone(), s.clone())),
                _ => None,
            });
        let Some((rows, scores)) = start else {
            return Evaluation::Failed(0, unshrunk);
        };
        let (rows, scores) = self
            .shrink(rows, scores, |r, s| out_of_order(r, s, &alone, tol))
            .await;
        Evaluation::Failed(0, order_counterexample(&rows, &scores, &alone, tol))
    }

    async fn shrink_independence(&mut self, t: &Trial, tol: f64) -> Evaluation {
        let alone = t
            .alone_all()
            .expect("a failing trial has every score alone");
        let start = [(&t.rows, &t.first), (&t.shuffled, &t.second)]
            .into_iter()
            .find_map(|(rows, s)| match s {
                Ok(s) if batch_dependent(rows, s, &alone, tol) => Some((rows.clone(), s.clone())),
                _ => None,
            })
            .expect("a failing trial has a batch-dependent batch");
        let (rows, scores) = self
            .shrink(start.0, start.1, |r, s| batch_dependent(r, s, &alone, tol))
            .await;
        Evaluation::Failed(0, independence_counterexample(&rows, &scores, &alone, tol))
    }

    /// A relation over every prediction received: the first that breaks it, from the smallest
    /// request (a row alone when one breaks it), is the counterexample.
    fn relation(&self, rel: &crate::grader::RelationSpec, api: &PredictionApi) -> Evaluation {
        let (field, threshold) = (&rel.field, rel.equals_score_at_least);
        let mut answers: Vec<&Answer> = self.answers.iter().collect();
        answers.sort_by_key(|a| a.batch.len());
        let mut checked = 0;
        for a in answers {
            let Ok(score) = a.score else { continue };
            checked += 1;
            let expected = score >= threshold;
            let got = match a.object.pointer(field) {
                Some(Value::Bool(b)) if *b == expected => continue,
                Some(Value::Bool(b)) => b.to_string(),
                Some(other) => format!("{other}, not a boolean"),
                None => "missing".to_string(),
            };
            let c = Counterexample {
                batch: as_u64(&a.batch),
                row: a.row as u64,
                scores: vec![score],
            };
            let m = format!(
                "row {} (in a batch of {}) got {} {score:.6} and {field} {got}, but {field} must \
                 be ({} >= {threshold}), here {expected}",
                a.row,
                a.batch.len(),
                api.score,
                api.score,
            );
            return Evaluation::Failed(0, (c, m));
        }
        if checked == 0 {
            return Evaluation::Unusable("no prediction with a valid score to check".into());
        }
        Evaluation::Passed
    }
}

/// Order, batch independence, determinism and declared relations of the prediction API.
pub struct Invariants;

impl super::Phase for Invariants {
    fn name(&self) -> &'static str {
        "invariants"
    }

    fn declared(&self, loaded: &LoadedGrader) -> bool {
        loaded.grader.invariants.is_some() && loaded.grader.prediction.is_some()
    }

    fn checks(&self, loaded: &LoadedGrader) -> Vec<DeclaredCheck> {
        let g = &loaded.grader;
        let Some(spec) = &g.invariants else {
            return Vec::new();
        };
        spec.declared()
            .into_iter()
            .map(|(_, name, points)| {
                DeclaredCheck::new(
                    name,
                    Category::Consistency,
                    points.0,
                    spec.visibility.unwrap_or(g.grader.visibility),
                )
            })
            .collect()
    }

    fn budget(&self, loaded: &LoadedGrader) -> Duration {
        let g = &loaded.grader;
        let Some(spec) = &g.invariants else {
            return Duration::ZERO;
        };
        let k = spec.batch_size;
        // Two shrinks at most (order, independence), of batches under `k` rows.
        let shrinking = 2 * SHRINK_REQUESTS;
        let requests = spec.trials * requests_per_trial(k) + shrinking;
        let instances = spec.trials * (3 * k + 3) + shrinking * k;
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
            let (Some(spec), Some(api)) = (&g.invariants, &g.prediction) else {
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
            out.section = Some(super::Section::Invariants(report));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alone() -> HashMap<usize, f64> {
        [(1, 0.1), (2, 0.2), (3, 0.3)].into_iter().collect()
    }

    #[test]
    fn swapped_scores_are_out_of_order_not_batch_dependent() {
        let a = alone();
        assert!(out_of_order(&[1, 2], &[0.2, 0.1], &a, 1e-6));
        assert!(!batch_dependent(&[1, 2], &[0.2, 0.1], &a, 1e-6));
        assert!(!out_of_order(&[1, 2], &[0.1, 0.2], &a, 1e-6));
    }

    #[test]
    fn changed_scores_are_batch_dependent_not_out_of_order() {
        let a = alone();
        assert!(batch_dependent(&[1, 3], &[0.15, 0.3], &a, 1e-6));
        assert!(!out_of_order(&[1, 3], &[0.15, 0.3], &a, 1e-6));
        // Within the tolerance, the same.
        assert!(!batch_dependent(&[1, 3], &[0.1 + 1e-7, 0.3], &a, 1e-6));
    }

    #[test]
    fn the_independence_counterexample_names_the_row_whose_score_is_nobodys() {
        // Row 1 got row 3's score (order), row 3 got a score no row has alone.
        let (c, m) = independence_counterexample(&[1, 3], &[0.3, 0.35], &alone(), 1e-6);
        assert_eq!((c.row, c.scores.as_slice()), (3, &[0.3, 0.35][..]));
        assert_eq!(
            m,
            "row 3 gets 0.300000 alone but 0.350000 in one batch of rows 1, 3"
        );
    }

    #[test]
    fn distinct_scores_are_counted_exactly() {
        assert_eq!(distinct(&mut [0.5, 0.5, 0.5]), 1);
        assert_eq!(distinct(&mut [0.2, 0.5, 0.2, 0.1]), 3);
        assert_eq!(distinct(&mut []), 0);
    }
}
