//! The `[probes]` section: contract probes generated from a dataset's schema (see `probe`),
//! how they are framed (the grader's `[prediction]`), which statuses count as a refusal, how
//! many cases one run sends and the points of each class.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Points, Visibility};
use crate::expect::StatusSet;
use crate::probe::Class;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesSpec {
    /// The `[[dataset]]` whose schema drives generation and whose rows are the valid base
    /// instances that each case changes in one place.
    pub dataset: String,
    /// A refused request must get one of these, with a JSON object body.
    #[serde(default = "default_reject_status")]
    pub reject_status: StatusSet,
    /// Cases one run sends at most (a seeded sample keeping every class; `--probe all` sends
    /// every case).
    #[serde(default = "default_max_cases")]
    pub max_cases: usize,
    /// Dataset rows drawn (seeded) as base instances.
    #[serde(default = "default_base_rows")]
    pub base_rows: usize,
    /// A request body over this many bytes must be refused (the `body_over_cap` class).
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Mixed into the seed, so that two graders with the same seed draw other rows and
    /// another sample (e.g. the hidden grader probes the same contract with other inputs).
    #[serde(default)]
    pub salt: String,
    /// Spread evenly over the classes not named in `class_points`.
    #[serde(default)]
    pub points: Points,
    /// Points of single classes, by class name; a class given 0 is not run.
    #[serde(default)]
    pub class_points: BTreeMap<String, Points>,
    pub visibility: Option<Visibility>,
}

fn default_reject_status() -> StatusSet {
    StatusSet(vec![400, 413, 422])
}
fn default_max_cases() -> usize {
    150
}
fn default_base_rows() -> usize {
    8
}
fn default_max_request_bytes() -> usize {
    1 << 20
}

impl ProbesSpec {
    /// The points of each class of `classes` (those the schema produces): named ones as
    /// given, the others sharing `points`; classes worth nothing are left out.
    pub fn class_points(&self, classes: &[Class]) -> Vec<(Class, f64)> {
        let named = |c: &Class| self.class_points.get(c.name()).map(|p| p.0);
        let shared = classes.iter().filter(|c| named(c).is_none()).count();
        let each = if shared == 0 {
            0.0
        } else {
            self.points.0 / shared as f64
        };
        classes
            .iter()
            .map(|&c| (c, named(&c).unwrap_or(each)))
            .filter(|(_, p)| *p > 0.0)
            .collect()
    }

    /// Rules of the section alone (its dataset is checked when datasets are loaded).
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        for name in self.class_points.keys() {
            if Class::from_name(name).is_none() {
                let known: Vec<&str> = Class::ALL.iter().map(|c| c.name()).collect();
                return Err((
                    format!("probes.class_points.{name}"),
                    format!("no probe class {name:?} (classes: {})", known.join(", ")),
                ));
            }
        }
        if self.points.0 == 0.0 && self.class_points.values().all(|p| p.0 == 0.0) {
            return Err((
                "probes.points".into(),
                "the probes are worth no points: give points or class_points".into(),
            ));
        }
        if self.max_cases == 0 || self.base_rows == 0 {
            let field = if self.max_cases == 0 {
                "max_cases"
            } else {
                "base_rows"
            };
            return Err((format!("probes.{field}"), "must be at least 1".into()));
        }
        if self.reject_status.0.iter().any(|s| !(400..500).contains(s)) {
            return Err((
                "probes.reject_status".into(),
                "a refusal is a client error: list 4xx statuses only".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::grader::fixtures::{parse_str, MINIMAL};
    use crate::grader::GraderError;
    use crate::probe::Class;

    const PROBES: &str = "\n[probes]\ndataset = \"v\"\npoints = 12\n";

    #[test]
    fn defaults_and_points_spread_over_unnamed_classes() {
        let g = parse_str(&format!(
            "{MINIMAL}{PROBES}[probes.class_points]\nfractional_integer = 2\nempty_batch = 0\n"
        ))
        .unwrap();
        let p = g.probes.unwrap();
        assert_eq!(p.reject_status.0, vec![400, 413, 422]);
        assert_eq!((p.max_cases, p.base_rows), (150, 8));
        let classes = [
            Class::FractionalInteger,
            Class::EmptyBatch,
            Class::NanLiteral,
            Class::LargestBatch,
        ];
        assert_eq!(
            p.class_points(&classes),
            vec![
                (Class::FractionalInteger, 2.0),
                (Class::NanLiteral, 6.0),
                (Class::LargestBatch, 6.0)
            ]
        );
    }

    #[test]
    fn an_unknown_class_is_located_by_file_line_and_field() {
        let text = format!("{MINIMAL}{PROBES}[probes.class_points]\nnumber_as_strin = 2\n");
        match parse_str(&text).unwrap_err() {
            GraderError::Invalid {
                field,
                line,
                message,
                path,
                ..
            } => {
                assert_eq!(field, "probes.class_points.number_as_strin");
                assert_eq!(text.lines().nth(line - 1).unwrap(), "number_as_strin = 2");
                assert!(message.contains("number_as_string"), "{message}");
                assert_eq!(path.to_str(), Some("g.toml"));
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_success_status_is_no_refusal() {
        let text = format!("{MINIMAL}{PROBES}reject_status = [200, 422]\n");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("probes.reject_status"), "{err}");
    }
}
