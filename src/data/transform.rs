//! Drift transforms: how a scenario changes the values of named features in the rows sent.
//! Values always stay valid input (inside the schema's hard bounds, the right type), so a
//! service must answer them and should notice the shift, not reject it.

use rand::RngExt;
use serde::Deserialize;
use serde_json::Value;

use super::schema::{Feature, FeatureKind};
use super::Dataset;

/// One kind of shift, as declared in a grader file (`kind = "mean_shift"`, ...).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shift {
    /// Adds `k` standard deviations (numeric features).
    MeanShift { k: f64 },
    /// Scales the spread around the mean by `factor` (numeric features).
    VarianceScale { factor: f64 },
    /// Replaces a `share` of values with the known category `value`.
    CategoryShift { value: String, share: f64 },
    /// Replaces a `share` of values with a category the training data never had.
    UnseenCategory { value: String, share: f64 },
    /// Makes a `share` of values null (nullable features).
    MissingShare { share: f64 },
    /// Replaces a `share` of values with values past the training range, inside the hard bounds.
    OutOfRange { share: f64 },
}

impl Shift {
    /// Why this shift cannot apply to `f`, if it cannot.
    pub fn check_feature(&self, f: &Feature) -> Result<(), String> {
        let numeric = f.kind.is_numeric();
        let ok = match self {
            Shift::MeanShift { .. } | Shift::VarianceScale { .. } | Shift::OutOfRange { .. } => {
                numeric
            }
            Shift::CategoryShift { value, .. } => {
                f.kind == FeatureKind::Categorical && f.values.contains(value)
            }
            Shift::UnseenCategory { value, .. } => {
                f.kind == FeatureKind::Categorical && !f.values.contains(value)
            }
            Shift::MissingShare { .. } => f.nullable,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "this shift does not apply to feature {:?} ({:?}{})",
                f.name,
                f.kind,
                if f.nullable { ", nullable" } else { "" }
            ))
        }
    }

    /// The share of values a share-based shift replaces (1 for the others).
    fn share(&self) -> f64 {
        match self {
            Shift::CategoryShift { share, .. }
            | Shift::UnseenCategory { share, .. }
            | Shift::MissingShare { share }
            | Shift::OutOfRange { share } => *share,
            Shift::MeanShift { .. } | Shift::VarianceScale { .. } => 1.0,
        }
    }
}

/// What a transform needs to know about a feature of the in-distribution data.
#[derive(Debug, Clone)]
pub struct FeatureStats {
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

impl FeatureStats {
    pub fn of(data: &Dataset, feature: usize) -> FeatureStats {
        let (mean, sd) = data.mean_sd(feature);
        let xs = data.numeric_column(feature);
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        FeatureStats { mean, sd, min, max }
    }
}

/// Applies `shift` to one value. `intensity` in [0, 1] ramps a gradual onset.
pub fn apply(
    shift: &Shift,
    f: &Feature,
    stats: &FeatureStats,
    value: &Value,
    intensity: f64,
    rng: &mut impl rand::Rng,
) -> Value {
    // Share-based shifts ramp their share; the others ramp their size (below).
    let share = match shift {
        Shift::MeanShift { .. } | Shift::VarianceScale { .. } => 1.0,
        _ => shift.share() * intensity,
    };
    if share < 1.0 && rng.random::<f64>() >= share {
        return value.clone();
    }
    let number = |x: f64| -> Value {
        let lo = f.min.unwrap_or(f64::NEG_INFINITY);
        let hi = f.max.unwrap_or(f64::INFINITY);
        let x = x.clamp(lo, hi);
        match f.kind {
            FeatureKind::Integer => Value::from(x.round() as i64),
            _ => serde_json::Number::from_f64((x * 100.0).round() / 100.0)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        }
    };
    match shift {
        Shift::MeanShift { k } => match value.as_f64() {
            Some(x) => number(x + k * intensity * stats.sd),
            None => value.clone(),
        },
        Shift::VarianceScale { factor } => match value.as_f64() {
            Some(x) => number(stats.mean + (x - stats.mean) * (1.0 + (factor - 1.0) * intensity)),
            None => value.clone(),
        },
        Shift::CategoryShift { value: v, .. } | Shift::UnseenCategory { value: v, .. } => {
            Value::String(v.clone())
        }
        Shift::MissingShare { .. } => Value::Null,
        Shift::OutOfRange { .. } => {
            let hi = f.max.unwrap_or(stats.max + 6.0 * stats.sd.max(1.0));
            // Past the largest training value, but inside the hard bound.
            let lo = stats.max + (hi - stats.max) * 0.1;
            number(lo + (hi - lo) * rng.random::<f64>() * 0.5 + f64::EPSILON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(kind: FeatureKind, nullable: bool, min: Option<f64>, max: Option<f64>) -> Feature {
        Feature {
            name: "f".into(),
            kind,
            nullable,
            min,
            max,
            values: vec!["a".into(), "b".into()],
        }
    }

    fn stats() -> FeatureStats {
        FeatureStats {
            mean: 50.0,
            sd: 10.0,
            min: 0.0,
            max: 100.0,
        }
    }

    #[test]
    fn mean_shift_moves_by_k_sd_and_respects_bounds() {
        let f = feature(FeatureKind::Number, false, Some(0.0), Some(120.0));
        let mut rng = crate::data::rng(1, "t");
        assert_eq!(
            apply(
                &Shift::MeanShift { k: 0.5 },
                &f,
                &stats(),
                &Value::from(40.0),
                1.0,
                &mut rng
            ),
            Value::from(45.0)
        );
        assert_eq!(
            apply(
                &Shift::MeanShift { k: 5.0 },
                &f,
                &stats(),
                &Value::from(100.0),
                1.0,
                &mut rng
            ),
            Value::from(120.0)
        );
        assert_eq!(
            apply(
                &Shift::MeanShift { k: 0.5 },
                &f,
                &stats(),
                &Value::Null,
                1.0,
                &mut rng
            ),
            Value::Null
        );
        // Half-way through a gradual onset, half the shift.
        assert_eq!(
            apply(
                &Shift::MeanShift { k: 1.0 },
                &f,
                &stats(),
                &Value::from(40.0),
                0.5,
                &mut rng
            ),
            Value::from(45.0)
        );
    }

    #[test]
    fn shares_are_respected_on_average() {
        let f = feature(FeatureKind::Integer, true, Some(0.0), Some(200.0));
        let mut rng = crate::data::rng(2, "t");
        let n = 10_000;
        let nulls = (0..n)
            .filter(|_| {
                apply(
                    &Shift::MissingShare { share: 0.3 },
                    &f,
                    &stats(),
                    &Value::from(1),
                    1.0,
                    &mut rng,
                )
                .is_null()
            })
            .count();
        assert!((nulls as f64 / n as f64 - 0.3).abs() < 0.02, "{nulls}");
        for _ in 0..100 {
            let v = apply(
                &Shift::OutOfRange { share: 1.0 },
                &f,
                &stats(),
                &Value::from(1),
                1.0,
                &mut rng,
            )
            .as_f64()
            .unwrap();
            assert!(v > 100.0 && v <= 200.0, "{v}");
        }
    }

    #[test]
    fn shifts_check_the_feature_they_apply_to() {
        let cat = feature(FeatureKind::Categorical, false, None, None);
        assert!(Shift::UnseenCategory {
            value: "zzz".into(),
            share: 0.5
        }
        .check_feature(&cat)
        .is_ok());
        assert!(Shift::UnseenCategory {
            value: "a".into(),
            share: 0.5
        }
        .check_feature(&cat)
        .is_err());
        assert!(Shift::MeanShift { k: 1.0 }.check_feature(&cat).is_err());
        assert!(Shift::MissingShare { share: 0.5 }
            .check_feature(&cat)
            .is_err());
    }
}
