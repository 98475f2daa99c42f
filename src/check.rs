//! What a check is, the unit that flows from the phases through the score into the report: its
//! result, the category it counts in and who may see it. Every other module speaks of checks in
//! these types; no category or visibility is ever compared as a string.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who may see a check's details: everyone, or only the grader (a candidate's view counts hidden
/// checks without detailing them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Visible,
    Hidden,
}

/// The category a check's points count in, one per phase (the scripted checks have three).
/// The JSON names are the report's contract; the order is the order the phases run in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Readiness,
    Correctness,
    Robustness,
    MissingData,
    Quality,
    Consistency,
    Latency,
    Drift,
    Monitoring,
    /// What a prediction costs: CPU per prediction, memory, image size.
    Cost,
    /// The candidate's own test suite, run in their image.
    Tests,
    /// Static review of the submission: lint, structure, Dockerfile practice, README, history.
    Review,
    /// Start-up, graceful shutdown under load, restart.
    Lifecycle,
}

impl Category {
    /// Every category, in the order the phases run.
    pub const ALL: [Category; 13] = [
        Category::Readiness,
        Category::Correctness,
        Category::Robustness,
        Category::MissingData,
        Category::Quality,
        Category::Consistency,
        Category::Latency,
        Category::Drift,
        Category::Monitoring,
        Category::Cost,
        Category::Tests,
        Category::Review,
        Category::Lifecycle,
    ];

    /// The name used in reports and grader files (`missing_data`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Readiness => "readiness",
            Category::Correctness => "correctness",
            Category::Robustness => "robustness",
            Category::MissingData => "missing_data",
            Category::Quality => "quality",
            Category::Consistency => "consistency",
            Category::Latency => "latency",
            Category::Drift => "drift",
            Category::Monitoring => "monitoring",
            Category::Cost => "cost",
            Category::Tests => "tests",
            Category::Review => "review",
            Category::Lifecycle => "lifecycle",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One graded check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckResult {
    pub name: String,
    /// The phase that ran it: readiness, correctness, robustness, latency, ...
    pub category: Category,
    pub points: f64,
    pub max_points: f64,
    pub passed: bool,
    /// What went wrong (or what was measured), written for the candidate.
    pub message: String,
    pub visibility: Visibility,
    /// The grader file (its `[grader] name`) that declared the check: in a run of several graders,
    /// which one it belongs to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub grader: String,
}

/// How the message of a check begins when the run stopped before the check ran.
pub const NOT_RUN: &str = "not run: ";

impl CheckResult {
    /// Whether the run stopped before this check ran (it is listed as a zero with the reason).
    pub fn not_run(&self) -> bool {
        self.message.starts_with(NOT_RUN)
    }
}

/// A check a grader declares, before it runs: what a run that stops early lists as not run, so
/// that its score is out of the full total.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredCheck {
    pub name: String,
    pub category: Category,
    pub max_points: f64,
    pub visibility: Visibility,
}

impl DeclaredCheck {
    pub fn new(
        name: impl Into<String>,
        category: Category,
        max_points: f64,
        visibility: Visibility,
    ) -> DeclaredCheck {
        DeclaredCheck {
            name: name.into(),
            category,
            max_points,
            visibility,
        }
    }

    /// This check as a zero, with the reason it did not run (or did not finish).
    pub fn failed(&self, message: String) -> CheckResult {
        CheckResult {
            grader: String::new(),
            name: self.name.clone(),
            category: self.category,
            points: 0.0,
            max_points: self.max_points,
            passed: false,
            message,
            visibility: self.visibility,
        }
    }

    /// Whether `r` is this check's result.
    pub fn is(&self, r: &CheckResult) -> bool {
        r.name == self.name && r.category == self.category
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_json_names_are_the_report_contract() {
        for c in Category::ALL {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
        assert_eq!(Category::MissingData.as_str(), "missing_data");
    }
}
