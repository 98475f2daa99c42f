//! The Gradescope view: an autograder's `results.json` (top-level `score`, `execution_time`,
//! `output`, `visibility`, `stdout_visibility`, `tests[]`, `leaderboard[]`; each test `name`,
//! `score`, `max_score`, `status`, `output`, `tags`, `visibility`).
//!
//! - Visibility: a visible check is `visible`; a hidden check is `hidden` (instructors only,
//!   ever), not `after_published`: proctor's rule is that a candidate never sees a hidden
//!   check's name or message, and `after_published` would show both once grades are published.
//!   Gradescope then also hides the total from students while any test is hidden.
//! - Which view: Gradescope hides tests by their visibility itself, so the file is meant to be
//!   written from the grader's view (hidden checks listed, marked `hidden`). Written from the
//!   candidate's view, no hidden check is listed: one visible test per category of hidden checks
//!   counts them, with their points and no name.
//! - An `infrastructure_error` (the harness failed) has no `score` field and no test carrying
//!   one, so Gradescope cannot score the submission and shows its output (a machine failure,
//!   grade again) instead of a grade.
//! - Leaderboard: p99 latency at the target rate (`asc`), the sustained throughput and the AUC,
//!   when a candidate's view holds them: Gradescope shows the leaderboard to every student, so
//!   a hidden grader's numbers never reach it, whichever view the file is written in. The same
//!   holds for the service's log lines in the top-level `output`.

use serde::Serialize;

use super::{stopped, LatencyReport, QualityReport, Render, Report, Status, View, Visibility};

/// Gradescope's results.json.
pub struct Gradescope;

#[derive(Debug, Serialize)]
struct Results {
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    execution_time: u64,
    output: String,
    output_format: &'static str,
    visibility: &'static str,
    stdout_visibility: &'static str,
    tests: Vec<Test>,
    leaderboard: Vec<Leader>,
    extra_data: Extra,
}

#[derive(Debug, Serialize)]
struct Test {
    name: String,
    score: f64,
    max_score: f64,
    status: &'static str,
    output: String,
    tags: Vec<String>,
    visibility: &'static str,
}

#[derive(Debug, Serialize)]
struct Leader {
    name: &'static str,
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Extra {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'static str>,
    run_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    band: Option<String>,
}

impl Render for Gradescope {
    fn render(&self, report: &Report, view: View) -> String {
        // The top-level output and the leaderboard are shown to every student, whatever the
        // view the file is written in: the service's log and the leaderboard's numbers come
        // from a candidate's view (no hidden quality metric, no log once hidden checks ran).
        let shown = report.for_view(View::Candidate);
        let results = results_of(&report.for_view(view), &shown);
        let mut text = serde_json::to_string_pretty(&results).expect("results serialize");
        text.push('\n');
        text
    }
}

/// The phase sections this view draws from (one place, should the model move them).
fn sections(r: &Report) -> (Option<&LatencyReport>, Option<&QualityReport>) {
    (
        r.first_section(|g| g.latency.as_ref()),
        r.first_section(|g| g.quality.as_ref()),
    )
}

fn visibility(v: Visibility) -> &'static str {
    match v {
        Visibility::Visible => "visible",
        Visibility::Hidden => "hidden",
    }
}

/// The results of `r`; `shown` is the candidate's view, for what every student sees.
fn results_of(r: &Report, shown: &Report) -> Results {
    let execution_time = r.timings.iter().map(|t| t.seconds).sum::<f64>().round() as u64;
    let extra_data = Extra {
        status: r.status.as_str(),
        verdict: r.verdict.map(|v| v.as_str()),
        run_id: r.run_id.clone(),
        band: r.band.clone(),
    };
    if r.status == Status::InfrastructureError {
        let verdict = r.verdict.map_or(String::new(), |v| format!(" ({v})"));
        return Results {
            score: None,
            execution_time,
            output: format!(
                "Not graded: the grading machine failed{verdict}, not the submission. {} \
                 This is not a score; the submission must be graded again (run {}).",
                r.reason, r.run_id
            ),
            output_format: "text",
            visibility: "visible",
            stdout_visibility: "hidden",
            tests: Vec::new(),
            leaderboard: Vec::new(),
            extra_data,
        };
    }
    let mut tests: Vec<Test> = r
        .checks
        .iter()
        .map(|c| Test {
            name: r.check_label(c),
            score: c.points,
            max_score: c.max_points,
            status: if c.passed { "passed" } else { "failed" },
            output: format!(
                "{}\n{:.2} of {:.2} points",
                c.message, c.points, c.max_points
            ),
            tags: vec![c.category.to_string()],
            visibility: visibility(c.visibility),
        })
        .collect();
    if let Some(h) = &r.hidden_checks {
        tests.extend(h.by_category.iter().map(|k| Test {
            name: format!("hidden checks ({})", k.category),
            score: k.points,
            max_score: k.max_points,
            status: if k.passed == k.count {
                "passed"
            } else {
                "failed"
            },
            output: format!(
                "{} hidden check(s), {} passed: {:.2} of {:.2} points (their details are not \
                 shown)",
                k.count, k.passed, k.points, k.max_points
            ),
            tags: vec![k.category.to_string()],
            visibility: "visible",
        }));
    }
    let score = r.score.as_ref().map(|s| s.points);
    let mut output = format!("status: {}", r.status.as_str());
    if let Some(s) = &r.score {
        output.push_str(&format!(
            "\nscore: {:.1} / {:.1} ({:.1}%{})",
            s.points,
            s.max_points,
            s.percent,
            r.band.as_ref().map_or(String::new(), |b| format!(", {b}"))
        ));
    }
    if !r.reason.is_empty() {
        output.push_str(&format!("\nreason: {}", r.reason));
    }
    if let Some(tail) = stopped::service_log(shown) {
        output.push_str("\nthe service's last log lines:");
        for line in tail {
            output.push_str(&format!("\n  | {line}"));
        }
    }
    for w in &r.warnings {
        output.push_str(&format!("\nwarning: {w}"));
    }
    Results {
        score,
        execution_time,
        output,
        output_format: "text",
        visibility: "visible",
        stdout_visibility: "hidden",
        tests,
        leaderboard: leaderboard(shown),
        extra_data,
    }
}

fn leaderboard(r: &Report) -> Vec<Leader> {
    let (latency, quality) = sections(r);
    let mut board = Vec::new();
    if let Some(l) = latency.filter(|l| l.valid) {
        board.push(Leader {
            name: "p99 latency (ms)",
            value: l.corrected.p99_ms,
            order: Some("asc"),
        });
        if let Some(rate) = l.search.as_ref().and_then(|s| s.capacity_rate) {
            board.push(Leader {
                name: "throughput (req/s)",
                value: rate,
                order: None,
            });
        }
    }
    if let Some(auc) = quality.and_then(|q| q.metrics.get("AUC")) {
        board.push(Leader {
            name: "AUC",
            value: *auc,
            order: None,
        });
    }
    board
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::{infrastructure_error, report};
    use serde_json::Value;

    fn render(r: &Report, view: View) -> Value {
        serde_json::from_str(&Gradescope.render(r, view)).unwrap()
    }

    #[test]
    fn grader_view_lists_every_check_with_its_visibility() {
        let v = render(&report(), View::Grader);
        assert_eq!(v["score"], 5.0);
        let tests = v["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 5);
        let probe = tests.iter().find(|t| t["name"] == "secret probe").unwrap();
        assert_eq!(probe["visibility"], "hidden");
        assert_eq!(probe["status"], "failed");
        assert_eq!(
            (probe["score"].as_f64(), probe["max_score"].as_f64()),
            (Some(0.0), Some(2.0))
        );
        let ready = tests.iter().find(|t| t["name"] == "ready").unwrap();
        assert_eq!(ready["visibility"], "visible");
        assert_eq!(ready["status"], "passed");
        let board: Vec<_> = v["leaderboard"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap(), e["value"].as_f64().unwrap()))
            .collect();
        // The AUC is a hidden check's dataset metric: not on a leaderboard every student sees,
        // even in the grader's view.
        assert_eq!(
            board,
            [("p99 latency (ms)", 9.9), ("throughput (req/s)", 400.0)]
        );
        assert_eq!(v["leaderboard"][0]["order"], "asc");
    }

    #[test]
    fn candidate_view_counts_hidden_checks_without_names() {
        let text = Gradescope.render(&report(), View::Candidate);
        assert!(!text.contains("secret"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let names: Vec<_> = v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ready",
                "predicts all rows",
                "p99 latency",
                "hidden checks (robustness)",
                "hidden checks (quality)"
            ]
        );
        assert!(v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["visibility"] == "visible"));
        // The quality section is all hidden: no AUC on the candidate's leaderboard.
        assert!(!text.contains("\"AUC\""), "{text}");
    }

    #[test]
    fn an_infrastructure_error_has_no_score() {
        let v = render(&infrastructure_error(), View::Grader);
        assert!(v.get("score").is_none(), "{v}");
        assert!(v["tests"].as_array().unwrap().is_empty(), "{v}");
        let out = v["output"].as_str().unwrap();
        assert!(
            out.contains("grading machine failed (engine_unreachable)"),
            "{out}"
        );
        assert_eq!(v["extra_data"]["status"], "infrastructure_error");
    }
}
