//! Turns check results into a score: totals and per-category sums, categories in their own
//! order (`Category`'s), and the grade band the total falls in.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{Category, CheckResult};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Score {
    pub points: f64,
    pub max_points: f64,
    /// points / max_points * 100 (0 when there are no points to earn).
    pub percent: f64,
}

/// A grade band: a total of at least `min_percent` (and under the next band's) earns `name`.
/// Hiring teams read a grade as a decision, and a band says which.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub name: String,
    pub min_percent: f64,
}

/// The band of `percent`: the first of `bands` (highest threshold first) it reaches.
pub fn band_of(percent: f64, bands: &[Band]) -> Option<String> {
    bands
        .iter()
        .find(|b| percent >= b.min_percent)
        .map(|b| b.name.clone())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CategoryScore {
    pub name: Category,
    pub points: f64,
    pub max_points: f64,
}

pub fn score(checks: &[CheckResult]) -> (Score, Vec<CategoryScore>) {
    let mut categories: Vec<CategoryScore> = Vec::new();
    for c in checks {
        match categories.iter_mut().find(|k| k.name == c.category) {
            Some(k) => {
                k.points += c.points;
                k.max_points += c.max_points;
            }
            None => categories.push(CategoryScore {
                name: c.category,
                points: c.points,
                max_points: c.max_points,
            }),
        }
    }
    // In the categories' own order, whichever grader's checks came first.
    categories.sort_by_key(|k| k.name);
    for k in &mut categories {
        k.points = round2(k.points);
        k.max_points = round2(k.max_points);
    }
    let points = round2(checks.iter().map(|c| c.points).sum());
    let max_points = round2(checks.iter().map(|c| c.max_points).sum());
    let percent = if max_points > 0.0 {
        round2(points / max_points * 100.0)
    } else {
        0.0
    };
    (
        Score {
            points,
            max_points,
            percent,
        },
        categories,
    )
}

/// Scores are shown with two decimals; rounding here keeps reports stable across regrades
/// whose float sums differ in the last bits.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Points on a falling line: all at or below `full`, none at or above `zero`.
pub fn linear_points(value: f64, full: f64, zero: f64, max_points: f64) -> f64 {
    if value <= full {
        max_points
    } else if value >= zero {
        0.0
    } else {
        round2(max_points * (zero - value) / (zero - full))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Visibility;

    fn check(cat: Category, points: f64, max: f64) -> CheckResult {
        CheckResult {
            grader: String::new(),
            name: format!("{cat}-{points}"),
            category: cat,
            points,
            max_points: max,
            passed: points == max,
            message: String::new(),
            visibility: Visibility::Visible,
        }
    }

    #[test]
    fn sums_per_category_in_category_order() {
        let (s, cats) = score(&[
            check(Category::Robustness, 1.0, 2.0),
            check(Category::Correctness, 3.0, 3.0),
            check(Category::Robustness, 0.5, 1.0),
        ]);
        assert_eq!(s.points, 4.5);
        assert_eq!(s.max_points, 6.0);
        assert_eq!(s.percent, 75.0);
        assert_eq!(
            cats.iter().map(|c| c.name).collect::<Vec<_>>(),
            [Category::Correctness, Category::Robustness],
            "a composed run's second grader may bring a category that comes earlier"
        );
        assert_eq!(cats[1].points, 1.5);
    }

    #[test]
    fn no_points_means_zero_percent_not_nan() {
        let (s, _) = score(&[]);
        assert_eq!(s.percent, 0.0);
    }

    #[test]
    fn a_band_is_the_highest_threshold_reached() {
        let bands: Vec<Band> = [
            ("exceptional", 85.0),
            ("strong", 70.0),
            ("acceptable", 55.0),
        ]
        .map(|(n, m)| Band {
            name: n.into(),
            min_percent: m,
        })
        .into();
        assert_eq!(band_of(100.0, &bands).as_deref(), Some("exceptional"));
        assert_eq!(band_of(85.0, &bands).as_deref(), Some("exceptional"));
        assert_eq!(band_of(84.99, &bands).as_deref(), Some("strong"));
        assert_eq!(band_of(55.0, &bands).as_deref(), Some("acceptable"));
        assert_eq!(band_of(54.99, &bands), None, "under the lowest band");
        assert_eq!(band_of(90.0, &[]), None);
    }

    #[test]
    fn linear_curve() {
        assert_eq!(linear_points(10.0, 50.0, 150.0, 4.0), 4.0);
        assert_eq!(linear_points(100.0, 50.0, 150.0, 4.0), 2.0);
        assert_eq!(linear_points(150.0, 50.0, 150.0, 4.0), 0.0);
        assert_eq!(linear_points(1e9, 50.0, 150.0, 4.0), 0.0);
    }
}
