//! The `[invariants]` section of a grader file: properties every answer of the prediction API
//! must have, checked on seeded batches of dataset rows (order, batch independence,
//! determinism), and declared relations between fields of one prediction.
//!
//! Each invariant is its own check and is graded only when it declares points, so a grader
//! weights what its contract promises and leaves out what it does not.

use serde::Deserialize;

use super::{Points, PredictionApi, Visibility};

/// Invariants of the prediction API, checked property-style on rows of `dataset`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvariantsSpec {
    /// Source of the rows (complete rows only: missing values are graded elsewhere).
    pub dataset: String,
    /// Batches drawn; an invariant passes only when none of them gives a counterexample.
    #[serde(default = "default_trials")]
    pub trials: usize,
    /// Rows per drawn batch (distinct rows), at least 2 and at most `[prediction] max_batch`.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Largest difference between two scores that still counts as the same score.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// A shuffled batch gets the same predictions, shuffled the same way.
    pub order_points: Option<Points>,
    /// An instance gets the same score alone and inside a batch of other rows.
    pub independence_points: Option<Points>,
    /// The same instance gets the same score twice (in two requests, and twice in one batch).
    pub determinism_points: Option<Points>,
    /// Relations between fields of one prediction, e.g. a label that follows the score.
    #[serde(default)]
    pub relation: Vec<RelationSpec>,
    pub visibility: Option<Visibility>,
}

/// `[[invariants.relation]]`: the boolean at `field` (a JSON pointer inside one prediction)
/// equals `score >= equals_score_at_least`, where the score is `[prediction] score`. The one
/// relation most prediction contracts state (a label derived from a probability by a
/// threshold); not an expression language on purpose.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationSpec {
    /// The check's name.
    pub name: String,
    pub field: String,
    pub equals_score_at_least: f64,
    pub points: Points,
}

fn default_trials() -> usize {
    20
}
fn default_batch_size() -> usize {
    8
}
fn default_tolerance() -> f64 {
    1e-6
}

/// The kinds of invariant, each one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvariantKind {
    Order,
    Independence,
    Determinism,
    /// The `[[invariants.relation]]` at this index.
    Relation(usize),
}

impl InvariantsSpec {
    /// The declared invariants with their check names and points, in the order they are
    /// reported.
    pub fn declared(&self) -> Vec<(InvariantKind, String, Points)> {
        let builtin = [
            (InvariantKind::Order, ORDER, self.order_points),
            (
                InvariantKind::Independence,
                INDEPENDENCE,
                self.independence_points,
            ),
            (
                InvariantKind::Determinism,
                DETERMINISM,
                self.determinism_points,
            ),
        ];
        builtin
            .into_iter()
            .filter_map(|(k, name, p)| p.map(|p| (k, name.to_string(), p)))
            .chain(
                self.relation
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (InvariantKind::Relation(i), r.name.clone(), r.points)),
            )
            .collect()
    }

    /// Rules within the section, and against `[prediction]`; `(field, message)` as the other
    /// sections' rules, so that the loader locates the field in the file.
    pub fn validate(&self, prediction: Option<&PredictionApi>) -> Result<(), (String, String)> {
        let err = |field: &str, m: String| Err((format!("invariants.{field}"), m));
        let Some(api) = prediction else {
            return err(
                "dataset",
                "invariants need a [prediction] section saying how to ask for predictions".into(),
            );
        };
        if self.trials == 0 {
            return err("trials", "must be at least 1".into());
        }
        if self.batch_size < 2 || self.batch_size > api.max_batch {
            return err(
                "batch_size",
                format!(
                    "must be between 2 (order and batch independence need a batch) and \
                     [prediction] max_batch ({}), got {}",
                    api.max_batch, self.batch_size
                ),
            );
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return err(
                "tolerance",
                format!("must be a non-negative number, got {}", self.tolerance),
            );
        }
        if self.declared().is_empty() {
            return err(
                "dataset",
                "declares no invariant: give order_points, independence_points, \
                 determinism_points or an [[invariants.relation]]"
                    .into(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.relation.iter().enumerate() {
            let field = |f: &str| format!("relation[{i}].{f}");
            if r.name.trim().is_empty() {
                return err(&field("name"), "a check needs a non-empty name".into());
            }
            if [ORDER, INDEPENDENCE, DETERMINISM].contains(&r.name.as_str())
                || !names.insert(r.name.as_str())
            {
                return err(&field("name"), format!("duplicate check name {:?}", r.name));
            }
            if !r.field.starts_with('/') {
                return err(
                    &field("field"),
                    format!(
                        "must be a JSON pointer inside one prediction, starting with '/', got {:?}",
                        r.field
                    ),
                );
            }
            if r.field == api.score {
                return err(
                    &field("field"),
                    format!(
                        "{:?} is the score itself ([prediction] score); name the boolean field",
                        r.field
                    ),
                );
            }
            if !(0.0..=1.0).contains(&r.equals_score_at_least) {
                return err(
                    &field("equals_score_at_least"),
                    format!(
                        "must be a probability in [0, 1], got {}",
                        r.equals_score_at_least
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Check names of the built-in invariants. They say what was checked, not that the model is
/// good: a service answering one constant passes all three.
pub const ORDER: &str = "predictions follow the order of the instances in a shuffled batch";
pub const INDEPENDENCE: &str = "an instance's prediction does not depend on the rest of its batch";
pub const DETERMINISM: &str = "the same instance gets the same prediction twice";

#[cfg(test)]
mod tests {
    use crate::grader::fixtures::{parse_str, MINIMAL};
    use crate::grader::GraderError;

    const PREDICTION: &str = "\n[prediction]\npath = \"/p\"\nbody_template = '{\"instances\": $INSTANCES}'\npredictions = \"/predictions\"\nscore = \"/s\"\nmax_batch = 16\n";

    fn with(invariants: &str) -> String {
        format!("{MINIMAL}{PREDICTION}\n[invariants]\ndataset = \"d\"\n{invariants}")
    }

    /// The field and the text of the line an error points at.
    fn located(text: &str) -> (String, String, String) {
        match parse_str(text).unwrap_err() {
            GraderError::Invalid {
                line,
                field,
                message,
                ..
            } => (
                field,
                text.lines().nth(line - 1).unwrap().to_string(),
                message,
            ),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_full_section_parses_with_defaults() {
        let g = parse_str(&with(
            "order_points = 2\n[[invariants.relation]]\nname = \"label follows score\"\nfield = \"/churn\"\nequals_score_at_least = 0.5\npoints = 1\n",
        ))
        .unwrap();
        let inv = g.invariants.unwrap();
        assert_eq!((inv.trials, inv.batch_size, inv.tolerance), (20, 8, 1e-6));
        let names: Vec<String> = inv.declared().into_iter().map(|(_, n, _)| n).collect();
        assert_eq!(names, [super::ORDER, "label follows score"]);
    }

    #[test]
    fn a_batch_larger_than_the_api_allows_is_located() {
        let text = with("order_points = 2\nbatch_size = 17\n");
        let (field, line, message) = located(&text);
        assert_eq!(field, "invariants.batch_size");
        assert_eq!(line, "batch_size = 17");
        assert!(message.contains("max_batch (16)"), "{message}");
    }

    #[test]
    fn a_section_that_checks_nothing_is_refused() {
        let (field, _, message) = located(&with("trials = 3\n"));
        assert_eq!(field, "invariants.dataset");
        assert!(message.contains("declares no invariant"), "{message}");
    }

    #[test]
    fn a_relation_field_that_is_not_a_pointer_is_located() {
        let text = with(
            "[[invariants.relation]]\nname = \"r\"\nfield = \"churn\"\nequals_score_at_least = 0.5\npoints = 1\n",
        );
        let (field, line, message) = located(&text);
        assert_eq!(field, "invariants.relation[0].field");
        assert_eq!(line, "field = \"churn\"");
        assert!(message.contains("starting with '/'"), "{message}");
    }

    #[test]
    fn a_relation_threshold_outside_zero_one_is_located() {
        let text = with(
            "[[invariants.relation]]\nname = \"r\"\nfield = \"/c\"\nequals_score_at_least = 50\npoints = 1\n",
        );
        let (field, line, _) = located(&text);
        assert_eq!(field, "invariants.relation[0].equals_score_at_least");
        assert_eq!(line, "equals_score_at_least = 50");
    }

    #[test]
    fn a_typo_in_a_relation_is_an_error() {
        let text = with(
            "[[invariants.relation]]\nname = \"r\"\nfield = \"/c\"\nequals_score_above = 0.5\npoints = 1\n",
        );
        let (field, _, message) = located(&text);
        assert!(field.starts_with("invariants.relation[0]"), "{field}");
        assert!(message.contains("equals_score_above"), "{message}");
    }

    #[test]
    fn invariants_without_a_prediction_api_are_refused() {
        let text = format!("{MINIMAL}\n[invariants]\ndataset = \"d\"\norder_points = 1\n");
        let (field, _, message) = located(&text);
        assert_eq!(field, "invariants.dataset");
        assert!(message.contains("[prediction]"), "{message}");
    }
}
