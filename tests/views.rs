//! The report's views (output formats), without Docker: the fixture reports of
//! `tests/fixtures/reports/` drawn in every format, through the library and through
//! `proctor report`.
//!
//! - No byte of a hidden check (its name, its message, the probes' failed requests, the section
//!   of a phase whose checks are all hidden, a prerequisite that names it) reaches a candidate's
//!   view in any format, and the grader's view holds it (so the test can fail).
//! - The JUnit XML parses with Python's junitparser (`pip install junitparser`; the test fails
//!   without it) and its counts match the report.
//! - The Gradescope results.json has the documented fields and types; an infrastructure error
//!   has no score.
//! - The HTML page is in the sentinel test too (tests/html_view.rs opens it in Chromium).

use std::path::{Path, PathBuf};
use std::process::Command;

use proctor::report::{
    self, AppliedPrerequisite, Category, CheckResult, Gradescope, Html, Json, Judgement, Junit,
    Markdown, ProbeFailure, Render, Report, Status, Summary, View, Visibility, Withheld,
};
use serde_json::Value;

const SENTINEL: &str = "SENTINEL-7f3a";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name)
}

fn load(name: &str) -> Report {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn renderers() -> Vec<(&'static str, Box<dyn Render>)> {
    vec![
        ("json", Box::new(Json)),
        ("summary", Box::new(Summary)),
        ("markdown", Box::new(Markdown)),
        ("junit", Box::new(Junit)),
        ("gradescope", Box::new(Gradescope)),
        ("html", Box::new(Html)),
    ]
}

/// A review whose findings name the sentinel: a secret-like string in a file named after it.
fn review_with_sentinel(visibility: Visibility) -> report::ReviewReport {
    let mut tar = tar::Builder::new(Vec::new());
    let body = b"password = \"hunter2-hunter2-hunter2\"\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, format!("app_{SENTINEL}.py"), &body[..])
        .unwrap();
    let review = proctor::review::review(&tar.into_inner().unwrap(), "FROM base:latest\n");
    assert!(
        serde_json::to_string(&review).unwrap().contains(SENTINEL),
        "the review should name the file"
    );
    report::ReviewReport {
        visibility,
        review,
        lint: None,
        lint_problem: Some(format!("lint of {SENTINEL}")),
        history: None,
    }
}

/// The graded fixture with the sentinel in every place a hidden detail can hide.
fn sentinel_report() -> Report {
    let mut r = load("graded.json");
    for c in r
        .checks
        .iter_mut()
        .filter(|c| c.visibility == Visibility::Hidden)
    {
        c.name = format!("{} {SENTINEL}", c.name);
        c.message = format!("expected 0.73 for row 12 ({SENTINEL})");
    }
    // A second grader of the run, all hidden, with sections and a note of its own.
    let mut second = r.graders[0].clone();
    second.grader.name = "churn-hidden".into();
    second.grader.note = format!("tests {SENTINEL} too");
    second.quality.as_mut().unwrap().dataset = format!("stream-{SENTINEL}");
    second.latency.as_mut().unwrap().path = format!("/{SENTINEL}");
    // Its production sections: the suite's output and failing tests, the review's findings,
    // how the shutdown's requests failed.
    second.tests = Some(report::TestsReport {
        tests: 2,
        passed: 1,
        failed: 1,
        failing: vec![format!("test_{SENTINEL}")],
        output_tail: format!("FAILED test_{SENTINEL}"),
        junit_found: true,
        ..Default::default()
    });
    let mut shutdown = report::ShutdownReport {
        in_flight: 2,
        ..Default::default()
    };
    shutdown
        .in_flight_failures
        .insert(format!("reset-{SENTINEL}"), 2);
    second.lifecycle = Some(report::LifecycleReport {
        shutdown: Some(shutdown),
        ..Default::default()
    });
    second.cost = Some(report::CostReport {
        cpu_ms_per_1000: Some(1234.5),
        ..Default::default()
    });
    second.review = Some(Box::new(review_with_sentinel(Visibility::Visible)));
    r.graders.push(second);
    // The first grader's review is information only (no check at all) and marked hidden.
    r.graders[0].review = Some(Box::new(review_with_sentinel(Visibility::Hidden)));
    r.checks.push(CheckResult {
        grader: "churn-hidden".into(),
        name: format!("hidden drift {SENTINEL}"),
        category: Category::Drift,
        points: 0.5,
        max_points: 1.0,
        passed: false,
        message: format!("flagged tenure late; {SENTINEL}"),
        visibility: Visibility::Hidden,
    });
    let q = r.graders[0].quality.as_mut().unwrap();
    q.dataset = format!("holdout-{SENTINEL}");
    let p = r.graders[0].probes.as_mut().unwrap();
    p.failures.push(ProbeFailure {
        class: "number_as_string".into(),
        feature: Some(format!("feature-{SENTINEL}")),
        request_excerpt: format!(r#"{{"instances":[{{"tenure":"{SENTINEL}"}}]}}"#),
        expected: "refused".into(),
        received: "status 200".into(),
    });
    r.prerequisites.push(AppliedPrerequisite {
        name: format!("needs {SENTINEL}"),
        mode: Default::default(),
        judgement: Judgement::Unmet,
        required_points: 0.0,
        required_max_points: 2.0,
        min_share: 0.5,
        factor: 0.0,
        reason: format!("{SENTINEL} not earned"),
        withheld: vec![Withheld {
            check: format!("secret auc {SENTINEL}"),
            points_before: 2.0,
            points: 0.0,
        }],
        visibility: Visibility::Hidden,
    });
    r
}

#[test]
fn no_byte_of_a_hidden_check_reaches_a_candidate_in_any_format() {
    let r = sentinel_report();
    for (name, renderer) in renderers() {
        let grader = renderer.render(&r, View::Grader);
        assert!(
            grader.contains(SENTINEL),
            "{name}: the grader's view must show the hidden check (else this test proves nothing)"
        );
        let candidate = renderer.render(&r, View::Candidate);
        assert!(!candidate.contains(SENTINEL), "{name} leaks:\n{candidate}");
        assert!(!candidate.contains("7f3a"), "{name} leaks part of it");
    }
    // Through the command line too: `--view candidate` reaches every renderer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentinel.json");
    report::write_json_atomic(&r, &path).unwrap();
    for format in ["json", "summary", "markdown", "junit", "gradescope", "html"] {
        let out = proctor(&[path.to_str().unwrap(), "--format", format]);
        assert!(out.status.success(), "{format}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(SENTINEL));
        let out = proctor(&[
            path.to_str().unwrap(),
            "--format",
            format,
            "--view",
            "candidate",
        ]);
        assert!(out.status.success(), "{format}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.is_empty(), "{format}");
        assert!(
            !text.contains(SENTINEL),
            "proctor report {format} leaks:\n{text}"
        );
    }
}

#[test]
fn a_candidate_sees_where_hidden_points_were_lost() {
    let c = sentinel_report().for_view(View::Candidate);
    let h = c.hidden_checks.expect("counted");
    assert_eq!((h.count, h.passed), (3, 1));
    let per: Vec<_> = h
        .by_category
        .iter()
        .map(|k| (k.category, k.count, k.passed, k.points, k.max_points))
        .collect();
    assert_eq!(
        per,
        [
            (Category::Robustness, 1, 0, 0.0, 2.0),
            (Category::Quality, 1, 1, 2.0, 2.0),
            (Category::Drift, 1, 0, 0.5, 1.0),
        ]
    );
    let schema = report::json_schema().to_string();
    assert!(
        schema.contains("by_category"),
        "the JSON Schema describes it"
    );
}

// ---------------------------------------------------------------------------------------------
/// The graded fixture as one run of two graders: the fixture's (`churn-public`) and a second,
/// all hidden, with a latency section and a readiness check of the same name as the first's.
fn composed_report() -> Report {
    let mut r = load("graded.json");
    let mut second = r.graders[0].clone();
    second.grader.name = "churn-hidden".into();
    second.grader.note = "the hidden grader".into();
    second.latency.as_mut().unwrap().target_rate = 77.0;
    let mut ready = r.checks[0].clone();
    ready.grader = "churn-hidden".into();
    ready.visibility = Visibility::Hidden;
    r.checks.push(ready);
    r.graders[0].grader.note = "the public grader".into();
    r.graders.push(second);
    r
}

#[test]
fn a_composed_report_shows_each_graders_part() {
    let r = composed_report();
    // Each grader's own points and latency, named; a grader's note is not the run's.
    let summary = Summary.render(&r, View::Candidate);
    assert!(
        summary.contains("  grader churn-public: 5.0 / 8.0"),
        "{summary}"
    );
    assert!(
        summary.contains("latency (churn-public) at 100 req/s"),
        "{summary}"
    );
    assert!(!summary.contains("the public grader"), "{summary}");
    // The hidden grader's latency is its own and hidden: in the grader's view only.
    assert!(!summary.contains("at 77 req/s"), "{summary}");
    let markdown = Markdown.render(&r, View::Grader);
    assert!(
        markdown.contains("churn-public + churn-hidden"),
        "{markdown}"
    );
    assert!(
        markdown.contains("**Latency** (churn-hidden) at 77 req/s"),
        "{markdown}"
    );
    assert!(!Markdown.render(&r, View::Candidate).contains("at 77 req/s"));
    let html = Html.render(&r, View::Grader);
    assert!(html.contains("id=\"latency\"") && html.contains("id=\"latency-2\""));
    assert!(html.contains("Latency (churn-hidden)"), "{html}");
    let html = Html.render(&r, View::Candidate);
    assert!(html.contains("id=\"latency\"") && !html.contains("id=\"latency-2\""));
    // Two checks of one name, told apart by their grader in JUnit.
    let v = junitparser(&Junit.render(&r, View::Grader));
    let classes: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == r.checks[0].name.as_str())
        .map(|c| c["classname"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        [
            "proctor.churn-public.readiness",
            "proctor.churn-hidden.readiness"
        ]
    );
    // The candidate's JSON keeps the hidden grader's name and score, nothing of its parts.
    let c: Value = serde_json::from_str(&Json.render(&r, View::Candidate)).unwrap();
    let second = &c["graders"][1];
    assert_eq!(second["grader"]["name"], "churn-hidden");
    assert!(
        second["latency"].is_null() && second["quality"].is_null(),
        "{second}"
    );
    assert!(second["grader"].get("note").is_none(), "{second}");
    assert!(
        second["grader"].get("path").is_none_or(|p| p == ""),
        "{second}"
    );
    // Check names carry their grader where two graders share a name.
    let md = Markdown.render(&r, View::Grader);
    assert!(md.contains("churn-hidden: ready"), "{md}");
}

// JUnit XML, read by junitparser.

/// What junitparser reads: (suites, [(suite, classname, name, result kind)]), and the counts the
/// root element declares.
fn junitparser(xml: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, xml).unwrap();
    let script = r#"
import json, sys
try:
    import junitparser
except ImportError:
    print("junitparser is missing: pip install junitparser", file=sys.stderr)
    sys.exit(3)
xml = junitparser.JUnitXml.fromfile(sys.argv[1])
cases = []
suites = []
for suite in xml:
    suites.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                   "errors": suite.errors, "skipped": suite.skipped})
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        messages = [r.message for r in case.result]
        cases.append({"suite": suite.name, "classname": case.classname, "name": case.name,
                      "kinds": kinds, "messages": messages})
print(json.dumps({"tests": xml.tests, "failures": xml.failures, "errors": xml.errors,
                  "suites": suites, "cases": cases}))
"#;
    let out = Command::new("python3")
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .expect("python3 runs (the JUnit test needs Python 3 with junitparser)");
    assert!(
        out.status.success(),
        "junitparser could not read the JUnit XML (pip install junitparser if it is missing): \
         {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kinds(v: &Value, kind: &str) -> usize {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kinds"].as_array().unwrap().iter().any(|k| k == kind))
        .count()
}

#[test]
fn junit_parses_and_its_counts_match_the_report() {
    let r = load("graded.json");
    let v = junitparser(&Junit.render(&r, View::Grader));
    let lost = r.checks.iter().filter(|c| !c.passed).count();
    assert_eq!(v["tests"], r.checks.len(), "{v}");
    assert_eq!(v["failures"], lost, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(kinds(&v, "Failure"), lost, "{v}");
    let suites: Vec<_> = v["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    let categories: Vec<_> = r
        .categories
        .iter()
        .map(|c| format!("proctor.{}", c.name))
        .collect();
    assert_eq!(suites, categories);
    for c in v["cases"].as_array().unwrap() {
        assert_eq!(
            c["classname"], c["suite"],
            "classname is proctor.<category>: {c}"
        );
    }
    let lost_case = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "predicts all rows")
        .unwrap();
    assert_eq!(lost_case["messages"][0], "1 of 2 rows answered");

    // A submission error: the checks the run never reached are errors.
    let mut stopped = r.clone();
    stopped.status = Status::SubmissionError;
    for c in stopped
        .checks
        .iter_mut()
        .filter(|c| c.category == Category::Latency)
    {
        c.points = 0.0;
        c.passed = false;
        c.message = "not run: the service exited while it was being graded".into();
    }
    let v = junitparser(&Junit.render(&stopped, View::Grader));
    assert_eq!(v["errors"], 1, "{v}");
    assert_eq!(v["failures"], lost, "{v}");
    assert_eq!(kinds(&v, "Error"), 1, "{v}");

    // A candidate's view: visible checks, plus one unnamed case per category of hidden checks.
    let c = r.for_view(View::Candidate);
    let v = junitparser(&Junit.render(&r, View::Candidate));
    let per = c.hidden_checks.unwrap().by_category;
    assert_eq!(v["tests"], c.checks.len() + per.len(), "{v}");
    let hidden_lost = per.iter().filter(|k| k.points < k.max_points).count();
    let visible_lost = c.checks.iter().filter(|c| !c.passed).count();
    assert_eq!(v["failures"], visible_lost + hidden_lost, "{v}");
}

#[test]
fn junit_of_an_infrastructure_error_is_an_error_never_a_pass() {
    let v = junitparser(&Junit.render(&load("infrastructure-error.json"), View::Grader));
    assert_eq!(v["tests"], 1, "{v}");
    assert_eq!(v["errors"], 1, "{v}");
    assert_eq!(kinds(&v, "Error"), 1, "{v}");
    assert_eq!(v["cases"][0]["classname"], "proctor.infrastructure");
}

// ---------------------------------------------------------------------------------------------
// Gradescope.

const TOP_LEVEL: &[&str] = &[
    "score",
    "execution_time",
    "output",
    "output_format",
    "test_output_format",
    "test_name_format",
    "visibility",
    "stdout_visibility",
    "extra_data",
    "tests",
    "leaderboard",
];
const TEST_KEYS: &[&str] = &[
    "score",
    "max_score",
    "status",
    "name",
    "name_format",
    "number",
    "output",
    "output_format",
    "tags",
    "visibility",
    "extra_data",
];
const VISIBILITIES: &[&str] = &["hidden", "after_due_date", "after_published", "visible"];
const FORMATS: &[&str] = &["text", "html", "simple_format", "md", "ansi"];

/// Fails on anything the Gradescope results.json specification does not allow.
fn assert_gradescope_shape(v: &Value) {
    let top = v.as_object().expect("an object");
    for k in top.keys() {
        assert!(
            TOP_LEVEL.contains(&k.as_str()),
            "unknown top-level field {k}"
        );
    }
    if let Some(s) = top.get("score") {
        assert!(s.is_number(), "score is a number: {s}");
    }
    assert!(v["execution_time"].is_number());
    assert!(v["output"].is_string());
    assert!(FORMATS.contains(&v["output_format"].as_str().unwrap()));
    assert!(VISIBILITIES.contains(&v["visibility"].as_str().unwrap()));
    assert!(VISIBILITIES.contains(&v["stdout_visibility"].as_str().unwrap()));
    for t in v["tests"].as_array().expect("tests is an array") {
        let t = t.as_object().expect("a test is an object");
        for k in t.keys() {
            assert!(TEST_KEYS.contains(&k.as_str()), "unknown test field {k}");
        }
        assert!(t["name"].is_string());
        assert!(
            t["score"].is_number() && t["max_score"].is_number(),
            "{t:?}"
        );
        assert!(["passed", "failed"].contains(&t["status"].as_str().unwrap()));
        assert!(t["output"].is_string());
        assert!(VISIBILITIES.contains(&t["visibility"].as_str().unwrap()));
        assert!(t["tags"].as_array().unwrap().iter().all(Value::is_string));
    }
    for e in v["leaderboard"]
        .as_array()
        .expect("leaderboard is an array")
    {
        let e = e.as_object().unwrap();
        assert!(e["name"].is_string());
        assert!(e["value"].is_number() || e["value"].is_string());
        if let Some(o) = e.get("order") {
            assert!(["asc", "desc"].contains(&o.as_str().unwrap()), "{o}");
        }
        for k in e.keys() {
            assert!(["name", "value", "order"].contains(&k.as_str()), "{k}");
        }
    }
}

#[test]
fn gradescope_fields_are_the_documented_ones() {
    let r = load("graded.json");
    for view in [View::Grader, View::Candidate] {
        let v: Value = serde_json::from_str(&Gradescope.render(&r, view)).unwrap();
        assert_gradescope_shape(&v);
        assert_eq!(v["score"].as_f64(), Some(r.score.as_ref().unwrap().points));
    }
    let v: Value = serde_json::from_str(&Gradescope.render(&r, View::Grader)).unwrap();
    let hidden: Vec<_> = v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["visibility"] == "hidden")
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(hidden, ["secret probe", "secret auc"]);
    let p99 = &v["leaderboard"][0];
    assert_eq!(
        (p99["value"].as_f64(), &p99["order"]),
        (Some(9.9), &"asc".into())
    );
}

#[test]
fn gradescope_of_an_infrastructure_error_has_no_score() {
    let r = load("infrastructure-error.json");
    for view in [View::Grader, View::Candidate] {
        let v: Value = serde_json::from_str(&Gradescope.render(&r, view)).unwrap();
        assert_gradescope_shape(&v);
        assert!(v.get("score").is_none(), "{v}");
        assert!(
            v["tests"].as_array().unwrap().is_empty(),
            "no test carries a score: {v}"
        );
        assert!(v["output"].as_str().unwrap().contains("not a score"), "{v}");
    }
}

// ---------------------------------------------------------------------------------------------
// `proctor report`.

fn proctor(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_proctor"))
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn proctor_report_draws_every_format() {
    let path = fixture("graded.json");
    let r = load("graded.json");
    let dir = tempfile::tempdir().unwrap();
    for (format, renderer) in renderers() {
        let out = proctor(&[path.to_str().unwrap(), "--format", format]);
        assert_eq!(out.status.code(), Some(0), "{format}: {out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout, renderer.render(&r, View::Grader), "{format}");
        let file = dir.path().join(format);
        let out = proctor(&[
            path.to_str().unwrap(),
            "--format",
            format,
            "--view",
            "candidate",
            "--out",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{format}: {out:?}");
        assert!(
            out.stdout.is_empty(),
            "{format}: --out writes nothing on stdout"
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            renderer.render(&r, View::Candidate),
            "{format}"
        );
    }
    // json is the view's report, readable again.
    let out = proctor(&[
        path.to_str().unwrap(),
        "--format",
        "json",
        "--view",
        "candidate",
    ]);
    let back: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert!(back.hidden_checks.is_some());
    assert!(back
        .checks
        .iter()
        .all(|c| c.visibility == Visibility::Visible));
}

#[test]
fn proctor_report_names_a_missing_or_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere/report.json");
    let out = proctor(&[missing.to_str().unwrap(), "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(missing.to_str().unwrap()), "{err}");

    let foreign = dir.path().join("package.json");
    std::fs::write(&foreign, r#"{"name": "left-pad"}"#).unwrap();
    let out = proctor(&[foreign.to_str().unwrap(), "--format", "junit"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("package.json is not a proctor report"),
        "{err}"
    );

    let newer = dir.path().join("newer.json");
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("graded.json")).unwrap()).unwrap();
    v["schema_version"] = 3.into();
    std::fs::write(&newer, v.to_string()).unwrap();
    let out = proctor(&[newer.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schema_version 3"), "{err}");
}
