//! The JUnit XML view, for CI test tabs (GitLab, Jenkins, GitHub test-report actions): one
//! `testsuite` per category, one `testcase` per check (`classname` `proctor.<category>`).
//!
//! - A check that earned all its points passes; one that lost points is a `failure` whose
//!   message is the check's message and whose text says the points earned of the maximum.
//! - A check the run never reached (the run stopped: its message starts with `not run:`) is an
//!   `error` of type `not_run`: nothing was measured, which is not the same as a wrong answer.
//! - A check that does not apply (no points to earn, e.g. a container check under `--url`) is
//!   `skipped`.
//! - An `infrastructure_error` report (no score: the harness failed) holds one suite
//!   `proctor.infrastructure` with one testcase in `error`, the reason as its message and the
//!   verdict as its type, and no check at all: it must never read as a passing suite.
//! - In a candidate's view hidden checks are not listed: each category with hidden checks has one
//!   testcase `hidden checks` that counts them (a failure when they lost points), with no name.
//!
//! Every suite carries the run's `status`, `score`, `max_score`, `percent` (and `band`,
//! `verdict` when present) and its category's `points` / `max_points` as properties.

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::{Category, CheckResult, HiddenCategory, Render, Report, Status, View};

/// The JUnit XML report.
pub struct Junit;

impl Render for Junit {
    fn render(&self, report: &Report, view: View) -> String {
        let r = report.for_view(view);
        let mut out = quick_junit::Report::new("proctor");
        for suite in suites(&r) {
            out.add_test_suite(suite);
        }
        out.to_string().expect("a JUnit report serializes")
    }
}

fn run_properties(r: &Report) -> Vec<Property> {
    let mut p = vec![Property::new("status", r.status.as_str())];
    if let Some(v) = r.verdict {
        p.push(Property::new("verdict", v.as_str()));
    }
    if let Some(s) = &r.score {
        p.push(Property::new("score", s.points.to_string()));
        p.push(Property::new("max_score", s.max_points.to_string()));
        p.push(Property::new("percent", s.percent.to_string()));
    }
    if let Some(b) = &r.band {
        p.push(Property::new("band", b.as_str()));
    }
    p.push(Property::new("run_id", r.run_id.as_str()));
    p.push(Property::new("grader", r.grader_names()));
    p.push(Property::new("submission", r.submission.source.as_str()));
    p
}

fn suites(r: &Report) -> Vec<TestSuite> {
    if r.status == Status::InfrastructureError {
        let mut suite = TestSuite::new("proctor.infrastructure");
        suite.add_properties(run_properties(r));
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_message(if r.reason.is_empty() {
                "the harness or its machine failed"
            } else {
                r.reason.as_str()
            })
            .set_type(r.verdict.map_or("infrastructure_error", |v| v.as_str()))
            .set_description(
                "infrastructure_error: proctor or its machine failed; this run is not a grade \
                 and says nothing about the submission. Grade it again.",
            );
        let mut case = TestCase::new("infrastructure", status);
        case.set_classname("proctor.infrastructure");
        suite.add_test_case(case);
        return vec![suite];
    }
    let mut categories: Vec<Category> = r.categories.iter().map(|c| c.name).collect();
    for c in &r.checks {
        if !categories.contains(&c.category) {
            categories.push(c.category);
        }
    }
    let hidden = r.hidden_checks.as_ref();
    // With several graders, a check's class names its grader too: two graders may each have a
    // check of the same name.
    let several = r.graders.len() > 1;
    categories
        .into_iter()
        .map(|cat| {
            let mut suite = TestSuite::new(format!("proctor.{cat}"));
            suite.add_properties(run_properties(r));
            if let Some(k) = r.categories.iter().find(|k| k.name == cat) {
                suite.add_property(Property::new("points", k.points.to_string()));
                suite.add_property(Property::new("max_points", k.max_points.to_string()));
            }
            for c in r.checks.iter().filter(|c| c.category == cat) {
                suite.add_test_case(case_of(c, several));
            }
            if let Some(h) = hidden.and_then(|h| h.by_category.iter().find(|h| h.category == cat)) {
                suite.add_test_case(hidden_case(h));
            }
            suite
        })
        .collect()
}

fn points(points: f64, max: f64) -> String {
    format!("{points:.2} of {max:.2} points")
}

fn case_of(c: &CheckResult, several: bool) -> TestCase {
    let status = if c.max_points == 0.0 && !c.passed {
        let mut s = TestCaseStatus::skipped();
        s.set_message(c.message.as_str());
        s
    } else if c.passed && c.points >= c.max_points {
        TestCaseStatus::success()
    } else {
        let not_run = c.not_run();
        let mut s = TestCaseStatus::non_success(if not_run {
            NonSuccessKind::Error
        } else {
            NonSuccessKind::Failure
        });
        s.set_message(c.message.as_str())
            .set_type(if not_run { "not_run" } else { "lost_points" })
            .set_description(points(c.points, c.max_points));
        s
    };
    let mut case = TestCase::new(c.name.as_str(), status);
    case.set_classname(if several {
        format!("proctor.{}.{}", c.grader, c.category)
    } else {
        format!("proctor.{}", c.category)
    });
    if c.passed {
        case.set_system_out(format!("{}\n{}", c.message, points(c.points, c.max_points)));
    }
    case
}

fn hidden_case(h: &HiddenCategory) -> TestCase {
    let summary = format!(
        "{} hidden check(s), {} passed: {} (their details are not shown)",
        h.count,
        h.passed,
        points(h.points, h.max_points)
    );
    let status = if h.points >= h.max_points {
        TestCaseStatus::success()
    } else {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(summary.as_str())
            .set_type("lost_points")
            .set_description(points(h.points, h.max_points));
        s
    };
    let mut case = TestCase::new("hidden checks", status);
    case.set_classname(format!("proctor.{}", h.category));
    case.set_system_out(summary);
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::{check, infrastructure_error, report};
    use crate::report::Visibility;

    fn count(xml: &str, needle: &str) -> usize {
        xml.matches(needle).count()
    }

    #[test]
    fn one_suite_per_category_and_a_failure_per_lost_check() {
        let xml = Junit.render(&report(), View::Grader);
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert_eq!(count(&xml, "<testsuite "), 5, "{xml}");
        assert_eq!(count(&xml, "<testcase "), 5, "{xml}");
        assert!(
            xml.contains(
                r#"<testsuites name="proctor" tests="5" skipped="0" failures="2" errors="0""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="predicts all rows" classname="proctor.correctness""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="1 of 2 rows answered" type="lost_points">1.00 of 2.00 points</failure>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="score" value="5"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="status" value="graded"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains("secret probe"),
            "the grader sees hidden checks"
        );
    }

    #[test]
    fn a_candidate_gets_one_unnamed_testcase_per_category_of_hidden_checks() {
        let xml = Junit.render(&report(), View::Candidate);
        assert!(!xml.contains("secret"), "{xml}");
        assert_eq!(count(&xml, r#"<testcase name="hidden checks""#), 2, "{xml}");
        assert!(
            xml.contains(r#"<testcase name="hidden checks" classname="proctor.robustness""#),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<testsuites name="proctor" tests="5" skipped="0" failures="2" errors="0""#
            ),
            "{xml}"
        );
    }

    #[test]
    fn checks_the_run_never_reached_are_errors() {
        let mut r = report();
        r.status = Status::SubmissionError;
        r.checks.push(check(
            "drift detected",
            Category::Drift,
            Visibility::Visible,
            false,
            "not run: the service exited while it was being graded",
        ));
        let xml = Junit.render(&r, View::Grader);
        assert!(
            xml.contains(r#"<error message="not run: the service exited while it was being graded" type="not_run">"#),
            "{xml}"
        );
        assert!(xml.contains(r#"errors="1""#), "{xml}");
    }

    #[test]
    fn an_infrastructure_error_is_one_error_and_never_a_pass() {
        let xml = Junit.render(&infrastructure_error(), View::Grader);
        assert!(
            xml.contains(
                r#"<testsuites name="proctor" tests="1" skipped="0" failures="0" errors="1""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="infrastructure" classname="proctor.infrastructure""#),
            "{xml}"
        );
        assert!(xml.contains(r#"type="engine_unreachable""#), "{xml}");
        assert!(!xml.contains("predicts all rows"), "{xml}");
        assert!(!xml.contains(r#"name="score""#), "{xml}");
    }
}
