//! The human summary printed when a run ends: status, score and its band, score per category,
//! prerequisites not met, failed checks.

use std::fmt::Write;

use super::{stopped, Render, Report, Status, View};

/// The terminal summary: status, score per category, the visible checks that lost points, and
/// the latency numbers.
pub struct Summary;

impl Render for Summary {
    fn render(&self, report: &Report, view: View) -> String {
        summary_of(&report.for_view(view), &[])
    }
}

/// The summary the CLI prints. Hidden checks are counted, never detailed, whoever runs it: the
/// same binary serves candidates self-testing.
pub fn summary_text(r: &Report) -> String {
    Summary.render(r, View::Candidate)
}

/// [`summary_text`] without the warnings in `shown`: those were printed as they happened, and
/// each warning prints once.
pub fn summary_text_except(r: &Report, shown: &[String]) -> String {
    summary_of(&r.for_view(View::Candidate), shown)
}

fn summary_of(r: &Report, shown: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "status: {}", r.status.as_str());
    if !r.reason.is_empty() {
        let _ = writeln!(s, "reason: {}", r.reason);
    }
    match &r.score {
        Some(score) => {
            let band = r.band.as_ref().map_or(String::new(), |b| format!(", {b}"));
            let _ = writeln!(
                s,
                "score:  {:.1} / {:.1} ({:.1}%{band})",
                score.points, score.max_points, score.percent
            );
        }
        None if r.status == Status::InfrastructureError => {
            let _ = writeln!(s, "score:  none (the harness failed; this is not a grade)");
        }
        None => {}
    }
    for c in &r.categories {
        let _ = writeln!(
            s,
            "  {:<14} {:>6.1} / {:<6.1}",
            c.name.as_str(),
            c.points,
            c.max_points
        );
    }
    // A candidate self-testing with a public grader must not read its score as the whole grade.
    let untested: Vec<&str> = crate::check::Category::ALL
        .iter()
        .filter(|cat| !r.categories.iter().any(|c| c.name == **cat))
        .map(|cat| cat.as_str())
        .collect();
    if r.status == Status::Graded
        && !untested.is_empty()
        && r.hidden_checks.as_ref().is_none_or(|h| h.count == 0)
    {
        let _ = writeln!(s, "not tested by this grader: {}", untested.join(", "));
    }
    // With several graders, each one's own points; a note speaks of its grader alone, so it
    // is shown when that grader ran alone.
    if r.graders.len() > 1 {
        for g in &r.graders {
            if let Some(score) = &g.score {
                let _ = writeln!(
                    s,
                    "  grader {}: {:.1} / {:.1} ({:.1}%)",
                    g.grader.name, score.points, score.max_points, score.percent
                );
            }
        }
    } else {
        for note in r.grader_notes() {
            let _ = writeln!(s, "note: {note}");
        }
    }
    for p in r.prerequisites.iter().filter(|p| !p.withheld.is_empty()) {
        let _ = writeln!(
            s,
            "prerequisite {:?} not met: {:.1} points withheld from {} check(s)",
            p.name,
            p.withheld_points(),
            p.withheld.len()
        );
    }
    if let Some(tail) = stopped::service_log(r) {
        let _ = writeln!(s, "the service's last log lines:");
        for line in tail {
            let _ = writeln!(s, "  | {line}");
        }
    }
    let hidden = r.hidden_checks.as_ref().map_or(0, |h| h.count);
    // A run that stopped lists what it could not run once per category, not once per check.
    let (skipped, failed) = stopped::lost_checks(r);
    if !failed.is_empty() {
        let _ = writeln!(s, "checks that lost points:");
        for c in failed {
            let _ = writeln!(
                s,
                "  - [{}] {} ({:.1}/{:.1}): {}",
                c.category,
                r.check_label(c),
                c.points,
                c.max_points,
                c.message
            );
        }
    }
    if !skipped.is_empty() {
        let _ = writeln!(s, "not run, because the run stopped:");
        for (category, n, points) in stopped::not_run_by_category(&skipped) {
            let checks = if n == 1 { "check" } else { "checks" };
            let _ = writeln!(s, "  - [{category}] {n} {checks} ({points:.1} points)");
        }
    }
    if hidden > 0 {
        let _ = writeln!(s, "hidden checks: {hidden} (their details are not shown)");
    }
    let several = r.graders.len() > 1;
    for (g, l) in r
        .graders
        .iter()
        .filter_map(|g| g.latency.as_ref().map(|l| (g, l)))
    {
        let of = if several {
            format!(" ({})", g.grader.name)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "latency{of} at {:.0} req/s (achieved {:.1}): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} of {} ok",
            l.target_rate, l.achieved_rate, l.corrected.p50_ms, l.corrected.p90_ms, l.corrected.p99_ms, l.corrected.max_ms, l.ok, l.requests
        );
        if !l.valid {
            let _ = writeln!(
                s,
                "latency measurement INVALID ({}): not a grade",
                l.invalid_reasons.join("; ")
            );
        }
        if let Some(r) = &l.reference {
            let widest = r.objectives.iter().map(|o| o.factor).fold(1.0, f64::max);
            let _ = writeln!(
                s,
                "latency reference {}: p50 {:.2} ms, p99 {:.2} ms under the same load; {}",
                r.submission,
                r.corrected.p50_ms,
                r.corrected.p99_ms,
                if widest > 1.0 {
                    format!("curves widened up to {widest:.2}x")
                } else {
                    "curves as written".to_string()
                }
            );
        }
        if let Some(found) = &l.search {
            let _ = match found.capacity_rate {
                Some(c) => writeln!(
                    s,
                    "throughput: sustains {c} req/s within p{} <= {} ms ({} steps)",
                    found.percentile,
                    found.slo_ms,
                    found.steps.len()
                ),
                None => writeln!(
                    s,
                    "throughput: no rate tried kept p{} <= {} ms",
                    found.percentile, found.slo_ms
                ),
            };
        }
    }
    for g in &r.graders {
        let of = if several {
            format!(" ({})", g.grader.name)
        } else {
            String::new()
        };
        for (what, line) in [
            ("lifecycle", g.lifecycle.as_ref().map(|x| x.line())),
            ("cost", g.cost.as_ref().map(|x| x.line())),
            ("tests", g.tests.as_ref().map(|x| x.line())),
            ("review", g.review.as_ref().map(|x| x.line())),
        ] {
            if let Some(line) = line {
                let _ = writeln!(s, "{what}{of}: {line}");
            }
        }
    }
    for w in r.warnings.iter().filter(|w| !shown.contains(w)) {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Category, CheckResult, Visibility};
    use crate::verdict::Verdict;

    fn check(name: &str, category: Category, points: f64, message: &str) -> CheckResult {
        CheckResult {
            grader: "churn-public".into(),
            name: name.into(),
            category,
            points,
            max_points: 2.0,
            passed: points >= 2.0,
            message: message.into(),
            visibility: Visibility::Visible,
        }
    }

    fn report(checks: Vec<CheckResult>) -> Report {
        let mut r = crate::report::test_support::report();
        r.graders[0].latency = None;
        r.graders[0].probes = None;
        r.container = None;
        r.prerequisites.clear();
        r.warnings.clear();
        r.graders[0].grader.note.clear();
        let (score, categories) = crate::score::score(&checks);
        r.score = Some(score);
        r.categories = categories;
        r.checks = checks;
        r
    }

    /// A service that exited before it was ready: the checks it never reached.
    fn exited() -> Report {
        let reason = "the service exited with code 127 before it became ready";
        let not_run = format!("not run: {reason}");
        let mut r = report(vec![
            check("ready", Category::Readiness, 0.0, reason),
            check("predicts one", Category::Correctness, 0.0, &not_run),
            check("predicts a batch", Category::Correctness, 0.0, &not_run),
            check("p99", Category::Latency, 0.0, &not_run),
        ]);
        r.status = Status::SubmissionError;
        r.verdict = Some(Verdict::Exited);
        r.reason = reason.into();
        r.container = Some(crate::report::ContainerInfo {
            exit_code: Some(127),
            log_tail: (1..=20)
                .map(|i| format!("line {i}"))
                .chain(["exec uvicorn failed: No such file or directory".to_string()])
                .collect::<Vec<_>>()
                .join("\n"),
            ..Default::default()
        });
        r
    }

    #[test]
    fn a_service_that_died_shows_its_last_log_lines_and_what_did_not_run_per_category() {
        let s = summary_text(&exited());
        assert!(
            s.contains("  | exec uvicorn failed: No such file or directory"),
            "{s}"
        );
        // The last 15 lines, not the whole log.
        assert!(
            s.contains("  | line 7\n") && !s.contains("  | line 6\n"),
            "{s}"
        );
        assert!(s.contains("  - [correctness] 2 checks (4.0 points)"), "{s}");
        assert!(s.contains("  - [latency] 1 check (2.0 points)"), "{s}");
        assert!(!s.contains("predicts one"), "{s}");
        // The check that failed for its own reason is still listed by name.
        assert!(s.contains("[readiness] ready (0.0/2.0)"), "{s}");
    }

    #[test]
    fn a_graded_run_shows_no_log_and_lists_each_failed_check() {
        let mut r = exited();
        r.status = Status::Graded;
        r.verdict = None;
        r.reason.clear();
        let s = summary_text(&r);
        assert!(!s.contains("exec uvicorn"), "{s}");
        assert!(!s.contains("not run, because"), "{s}");
        assert!(s.contains("[correctness] predicts one (0.0/2.0)"), "{s}");
    }

    #[test]
    fn the_summary_names_the_categories_a_grader_did_not_test_and_its_note() {
        let mut r = report(vec![check("ready", Category::Readiness, 2.0, "ok")]);
        r.graders[0].grader.note = "the final grade also holds hidden checks".into();
        let s = summary_text(&r);
        assert!(
            s.contains(
                "not tested by this grader: correctness, robustness, missing_data, quality, \
                 consistency, latency, drift, monitoring, cost, tests, review, lifecycle\n"
            ),
            "{s}"
        );
        assert!(
            s.contains("note: the final grade also holds hidden checks"),
            "{s}"
        );
        // Categories line up in a column.
        assert!(s.contains("\n  readiness         2.0 / 2.0"), "{s}");
        // Every category tested: nothing to say.
        let all: Vec<CheckResult> = Category::ALL
            .iter()
            .map(|c| check("c", *c, 2.0, "ok"))
            .collect();
        assert!(!summary_text(&report(all)).contains("not tested"));
    }

    #[test]
    fn warnings_already_shown_are_not_repeated() {
        let mut r = report(vec![check("ready", Category::Readiness, 2.0, "ok")]);
        r.warnings = vec!["runc is old".into(), "memory near its limit".into()];
        let s = summary_text_except(&r, &["runc is old".to_string()]);
        assert!(!s.contains("runc is old"), "{s}");
        assert!(s.contains("warning: memory near its limit"), "{s}");
        assert!(summary_text(&r).contains("warning: runc is old"));
    }
}
