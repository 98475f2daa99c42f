//! The candidate's own test suite: the grader's command runs in a fresh container of the
//! candidate's built image (sandboxed like the service: no network, its memory, CPU and
//! process limits, read-only root, a small /tmp), with a deadline and a cap on the output kept;
//! then the JUnit XML it wrote is read back and counted. A suite that hangs is stopped at the
//! deadline, one that floods its output is read to the end and kept to its tail: either is
//! reported as what it did, never as the harness's failure.

use std::time::Duration;

use futures_util::future::BoxFuture;
use quick_xml::events::Event as Xml;

use crate::check::{Category, CheckResult, DeclaredCheck, Visibility};
use crate::control::{Command, CommandOutcome};
use crate::grader::{LoadedGrader, TestsSpec};
use crate::phases::Needs;
use crate::report::TestsReport;

pub const PASS: &str = "the candidate's own tests pass";
pub const COUNT: &str = "the candidate's test suite has tests";

/// The JUnit XML read back: at most this much.
const MAX_JUNIT: usize = 4 * 1024 * 1024;
/// Failing tests named in the report.
const MAX_FAILING: usize = 20;

/// What a JUnit XML file counts.
#[derive(Debug, Clone, Default, PartialEq)]
struct Counts {
    tests: u64,
    passed: u64,
    failed: u64,
    errors: u64,
    skipped: u64,
    failing: Vec<String>,
}

/// Counts the test cases of a JUnit XML document (pytest's, unittest-xml's, JUnit's): each
/// `<testcase>` passed unless it holds `<failure>`, `<error>` or `<skipped>`. A document without
/// test cases falls back to its `<testsuite>` totals.
fn count(xml: &[u8]) -> Result<Counts, String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut c = Counts::default();
    // The test case being read: its name and what it holds so far.
    let mut case: Option<(String, Option<&'static str>)> = None;
    let mut suites = Counts::default();
    let mut saw_case = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not valid XML: {e}"))?;
        match event {
            Xml::Start(ref e) | Xml::Empty(ref e) if e.name().as_ref() == b"testcase" => {
                saw_case = true;
                let attr = |key: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == key)
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                        .unwrap_or_default()
                };
                let name = match attr(b"classname") {
                    k if k.is_empty() => attr(b"name"),
                    k => format!("{k}::{}", attr(b"name")),
                };
                let name = crate::http::sanitize(&name, 160);
                // A self-closing test case holds nothing: it passed.
                if matches!(event, Xml::Empty(_)) {
                    finish(&mut c, name, None);
                } else {
                    case = Some((name, None));
                }
            }
            Xml::Start(e) | Xml::Empty(e) => {
                let outcome = match e.name().as_ref() {
                    b"failure" => Some("failed"),
                    b"error" => Some("error"),
                    b"skipped" => Some("skipped"),
                    b"testsuite" => {
                        for a in e.attributes().flatten() {
                            let v: u64 = String::from_utf8_lossy(&a.value).parse().unwrap_or(0);
                            match a.key.as_ref() {
                                b"tests" => suites.tests += v,
                                b"failures" => suites.failed += v,
                                b"errors" => suites.errors += v,
                                b"skipped" => suites.skipped += v,
                                _ => {}
                            }
                        }
                        None
                    }
                    _ => None,
                };
                if let (Some((_, held)), Some(o)) = (&mut case, outcome) {
                    // A failure outranks a skip; the first of them is kept.
                    held.get_or_insert(o);
                }
            }
            Xml::End(e) if e.name().as_ref() == b"testcase" => {
                if let Some((name, held)) = case.take() {
                    finish(&mut c, name, held);
                }
            }
            Xml::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_case {
        suites.passed = suites
            .tests
            .saturating_sub(suites.failed + suites.errors + suites.skipped);
        return Ok(suites);
    }
    Ok(c)
}

fn finish(c: &mut Counts, name: String, held: Option<&'static str>) {
    c.tests += 1;
    match held {
        None => c.passed += 1,
        Some("skipped") => c.skipped += 1,
        Some(kind) => {
            if kind == "failed" {
                c.failed += 1;
            } else {
                c.errors += 1;
            }
            if c.failing.len() < MAX_FAILING {
                c.failing.push(name);
            }
        }
    }
}

/// The report of a run of the suite.
fn report_of(spec: &TestsSpec, o: &CommandOutcome) -> TestsReport {
    let mut r = TestsReport {
        command: spec.command.clone(),
        exit_code: o.exit_code,
        timed_out: o.timed_out,
        seconds: (o.seconds * 100.0).round() / 100.0,
        output_bytes: o.output_bytes,
        output_tail: o.output_tail.clone(),
        ..Default::default()
    };
    match (&o.file, o.timed_out) {
        (_, true) => {
            r.junit_problem = Some(format!(
                "the suite was stopped after {} s, before it finished",
                spec.timeout_secs
            ))
        }
        (None, false) => {
            r.junit_problem = Some(format!("the command wrote no JUnit XML at {}", spec.junit))
        }
        (Some(_), false) if o.file_truncated => {
            r.junit_problem = Some(format!(
                "its JUnit XML is larger than {} MB",
                MAX_JUNIT / (1024 * 1024)
            ))
        }
        (Some(xml), false) => match count(xml) {
            Ok(c) => {
                r.junit_found = true;
                (r.tests, r.passed, r.failed, r.errors, r.skipped, r.failing) =
                    (c.tests, c.passed, c.failed, c.errors, c.skipped, c.failing);
            }
            Err(e) => r.junit_problem = Some(format!("its JUnit XML cannot be read: {e}")),
        },
    }
    r
}

/// The two checks: the share of tests that pass, and how many there are.
fn grade(spec: &TestsSpec, r: &TestsReport, vis: Visibility) -> Vec<CheckResult> {
    let check = |name: &str, points: f64, max: f64, message: String| CheckResult {
        grader: String::new(),
        name: name.to_string(),
        category: Category::Tests,
        points: crate::score::round2(points),
        max_points: max,
        passed: points >= max,
        message,
        visibility: vis,
    };
    let (pass_max, count_max) = (spec.pass_points.0, spec.count_points.0);
    if let Some(problem) = &r.junit_problem {
        let why = format!(
            "{problem} (exit code {}, {} bytes of output)",
            r.exit_code.map_or("none".to_string(), |c| c.to_string()),
            r.output_bytes
        );
        return vec![
            check(PASS, 0.0, pass_max, why.clone()),
            check(COUNT, 0.0, count_max, why),
        ];
    }
    let ran = r.tests.saturating_sub(r.skipped);
    if ran == 0 {
        let why = "no tests found: the suite ran and reported none".to_string();
        return vec![
            check(PASS, 0.0, pass_max, why.clone()),
            check(COUNT, 0.0, count_max, why),
        ];
    }
    let share = r.passed as f64 / ran as f64;
    // Rises from zero_pass_share to full_pass_share: the falling curve of a negated share.
    let pass_points = crate::score::linear_points(
        -share,
        -spec.full_pass_share,
        -spec.zero_pass_share,
        pass_max,
    );
    let mut pass_message = format!(
        "{} of {ran} tests passed in {:.1} s ({} failed, {} errors{})",
        r.passed,
        r.seconds,
        r.failed,
        r.errors,
        if r.skipped > 0 {
            format!(", {} skipped", r.skipped)
        } else {
            String::new()
        }
    );
    if !r.failing.is_empty() {
        pass_message.push_str(&format!("; failing: {}", r.failing.join(", ")));
    }
    let count_points = count_max * (ran as f64 / spec.full_count as f64).min(1.0);
    vec![
        check(PASS, pass_points, pass_max, pass_message),
        check(
            COUNT,
            count_points,
            count_max,
            format!("{ran} tests (full points from {})", spec.full_count),
        ),
    ]
}

pub struct Suite;

impl super::Phase for Suite {
    fn name(&self) -> &'static str {
        "tests"
    }

    fn declared(&self, g: &LoadedGrader) -> bool {
        g.grader.tests.is_some()
    }

    fn checks(&self, g: &LoadedGrader) -> Vec<DeclaredCheck> {
        let Some(spec) = &g.grader.tests else {
            return Vec::new();
        };
        let vis = spec.visibility.unwrap_or(g.grader.grader.visibility);
        vec![
            DeclaredCheck::new(PASS, Category::Tests, spec.pass_points.0, vis),
            DeclaredCheck::new(COUNT, Category::Tests, spec.count_points.0, vis),
        ]
    }

    fn budget(&self, g: &LoadedGrader) -> Duration {
        let secs = g.grader.tests.as_ref().map_or(0, |t| t.timeout_secs);
        // The suite's deadline, and the engine's calls around it (create, read back, remove).
        Duration::from_secs(secs) + Duration::from_secs(90)
    }

    fn needs(&self) -> Needs {
        Needs::Container
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let g = &cx.grader.grader;
            let (Some(spec), Some(container)) = (&g.tests, cx.container) else {
                return;
            };
            let command = Command {
                name: "tests".into(),
                argv: spec.command.clone(),
                timeout: Duration::from_secs(spec.timeout_secs),
                max_output: spec.max_output_kb * 1024,
                read_file: Some(spec.junit.clone()),
                max_file: MAX_JUNIT,
            };
            match container.run_in_image(&command).await {
                Ok(o) => {
                    let report = report_of(spec, &o);
                    let vis = spec.visibility.unwrap_or(g.grader.visibility);
                    out.checks = grade(spec, &report, vis);
                    out.section = Some(super::Section::Tests(report));
                }
                Err(e) => out.machine_failure = Some(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="2.3"><testcase classname="test_app.T" name="test_ok" time="0.1" /><testcase classname="test_app.T" name="test_fail" time="0.1"><failure message="assert 0.88 == 0.86">trace</failure></testcase><testcase classname="test_app.T" name="test_err"><error message="boom"/></testcase><testcase classname="test_app.T" name="test_skip"><skipped message="later"/></testcase><testcase classname="test_app.T" name="test_two"></testcase></testsuite></testsuites>"#;

    #[test]
    fn every_test_case_is_counted_by_what_it_holds() {
        let c = count(PYTEST.as_bytes()).unwrap();
        assert_eq!(
            (c.tests, c.passed, c.failed, c.errors, c.skipped),
            (5, 2, 1, 1, 1)
        );
        assert_eq!(c.failing, ["test_app.T::test_fail", "test_app.T::test_err"]);
    }

    #[test]
    fn totals_are_used_when_no_case_is_listed() {
        let xml = r#"<testsuite tests="4" failures="1" errors="0" skipped="0"></testsuite>"#;
        let c = count(xml.as_bytes()).unwrap();
        assert_eq!((c.tests, c.passed, c.failed), (4, 3, 1));
        assert!(count(b"<a></b>").is_err(), "mismatched tags are not JUnit");
    }

    fn spec() -> TestsSpec {
        toml::from_str(
            "command = [\"pytest\"]\njunit = \"/tmp/junit.xml\"\npass_points = 4\ncount_points = 2\n",
        )
        .unwrap()
    }

    fn outcome(file: Option<&str>) -> CommandOutcome {
        CommandOutcome {
            exit_code: Some(1),
            seconds: 2.3,
            output_bytes: 300,
            output_tail: "1 failed".into(),
            file: file.map(|f| f.as_bytes().to_vec()),
            ..Default::default()
        }
    }

    #[test]
    fn a_failing_test_costs_pass_points_on_the_curve() {
        let r = report_of(&spec(), &outcome(Some(PYTEST)));
        assert!(r.junit_found);
        let c = grade(&spec(), &r, Visibility::Visible);
        // 2 of 4 run tests pass: the zero end of the default curve (0.5).
        assert_eq!(c[0].points, 0.0, "{}", c[0].message);
        assert!(
            c[0].message.contains("failing: test_app.T::test_fail"),
            "{}",
            c[0].message
        );
        // 4 tests of the 10 that earn full points.
        assert_eq!(c[1].points, 0.8);
    }

    #[test]
    fn no_tests_a_hang_and_a_missing_report_are_said_as_such() {
        let none = r#"<testsuite name="pytest" errors="0" failures="0" skipped="0" tests="0"></testsuite>"#;
        let c = grade(
            &spec(),
            &report_of(&spec(), &outcome(Some(none))),
            Visibility::Visible,
        );
        assert!(c
            .iter()
            .all(|c| c.points == 0.0 && c.message.starts_with("no tests found")));
        let hang = CommandOutcome {
            timed_out: true,
            exit_code: None,
            ..outcome(None)
        };
        let c = grade(&spec(), &report_of(&spec(), &hang), Visibility::Visible);
        assert!(
            c[0].message
                .starts_with("the suite was stopped after 180 s"),
            "{}",
            c[0].message
        );
        let c = grade(
            &spec(),
            &report_of(&spec(), &outcome(None)),
            Visibility::Visible,
        );
        assert!(
            c[0].message
                .contains("wrote no JUnit XML at /tmp/junit.xml"),
            "{}",
            c[0].message
        );
    }
}
