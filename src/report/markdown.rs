//! The Markdown view: a short grade for a GitHub job summary (`$GITHUB_STEP_SUMMARY`) or a
//! merge-request comment. Status, score and band, points per category, the checks that lost
//! points, hidden checks as counts, the latency line and the warnings; passing checks only in a
//! collapsed list.

use std::fmt::Write;

use super::{stopped, LatencyReport, Render, Report, Status, View};

/// The Markdown report.
pub struct Markdown;

/// Longest message kept in a table cell, in characters: a service's answer quoted in a message
/// must not push the summary past GitHub's 1 MiB.
const MAX_CELL_CHARS: usize = 400;

impl Render for Markdown {
    fn render(&self, report: &Report, view: View) -> String {
        markdown_of(&report.for_view(view))
    }
}

/// The phase sections this view draws from (one place, should the model move them): each
/// grader's latency, with the grader's name when the run had several.
fn latencies(r: &Report) -> Vec<(Option<&str>, &LatencyReport)> {
    let several = r.graders.len() > 1;
    r.graders
        .iter()
        .filter_map(|g| {
            let name = several.then_some(g.grader.name.as_str());
            g.latency.as_ref().map(|l| (name, l))
        })
        .collect()
}

/// Inline text made safe for a table cell or a list item: no row or column breaks, no HTML
/// (a message may quote what the service answered). Also for other Markdown proctor writes
/// (a batch's leaderboard).
pub fn cell(text: &str) -> String {
    escaped(text, true)
}

/// A log line made safe inside `<pre>`: no HTML.
fn pre(line: &str) -> String {
    escaped(line, false)
}

/// `text` without HTML, at most `MAX_CELL_CHARS` characters; in a table (`cell`), also without
/// column or row breaks and code spans.
fn escaped(text: &str, cell: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (n, ch) in text.chars().enumerate() {
        if n == MAX_CELL_CHARS {
            out.push('…');
            break;
        }
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => {}
            '|' if cell => out.push_str("\\|"),
            '\n' if cell => out.push_str("<br>"),
            '`' if cell => out.push_str("\\`"),
            c => out.push(c),
        }
    }
    out
}

fn markdown_of(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## proctor: {} ({})\n",
        cell(&r.submission.source),
        cell(&r.grader_names())
    );
    let verdict = r.verdict.map_or(String::new(), |v| format!(" ({v})"));
    let _ = writeln!(s, "**Status:** `{}`{verdict}", r.status.as_str());
    if !r.reason.is_empty() {
        let _ = writeln!(s, "<br>**Reason:** {}", cell(&r.reason));
    }
    match &r.score {
        Some(score) => {
            let band = r
                .band
                .as_ref()
                .map_or(String::new(), |b| format!(", {}", cell(b)));
            let _ = writeln!(
                s,
                "<br>**Score:** {:.1} / {:.1} ({:.1}%{band})",
                score.points, score.max_points, score.percent
            );
        }
        None if r.status == Status::InfrastructureError => {
            let _ = writeln!(
                s,
                "<br>**Score:** none: the harness or its machine failed; this is not a grade"
            );
        }
        None => {}
    }
    s.push('\n');

    if !r.categories.is_empty() {
        s.push_str("| category | points | max |\n| --- | ---: | ---: |\n");
        for c in &r.categories {
            let _ = writeln!(s, "| {} | {:.1} | {:.1} |", c.name, c.points, c.max_points);
        }
        s.push('\n');
    }

    for p in r.prerequisites.iter().filter(|p| !p.withheld.is_empty()) {
        let _ = writeln!(
            s,
            "- prerequisite **{}** not met: {:.1} points withheld from {} check(s)",
            cell(&p.name),
            p.withheld_points(),
            p.withheld.len()
        );
    }

    if let Some(tail) = stopped::service_log(r) {
        s.push_str("### The service's last log lines\n\n<pre>\n");
        for line in tail {
            let _ = writeln!(s, "{}", pre(line));
        }
        s.push_str("</pre>\n\n");
    }

    let (skipped, lost) = stopped::lost_checks(r);
    if !lost.is_empty() {
        s.push_str("### Checks that lost points\n\n");
        s.push_str("| category | check | points | message |\n| --- | --- | ---: | --- |\n");
        for c in lost {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} / {:.1} | {} |",
                c.category,
                cell(&r.check_label(c)),
                c.points,
                c.max_points,
                cell(&c.message)
            );
        }
        s.push('\n');
    }

    if !skipped.is_empty() {
        s.push_str("### Not run, because the run stopped\n\n");
        s.push_str("| category | checks | points |\n| --- | ---: | ---: |\n");
        for (category, n, points) in stopped::not_run_by_category(&skipped) {
            let _ = writeln!(s, "| {category} | {n} | {points:.1} |");
        }
        s.push('\n');
    }

    if let Some(h) = r.hidden_checks.as_ref().filter(|h| h.count > 0) {
        let _ = writeln!(
            s,
            "### Hidden checks\n\n{} hidden check(s), {} passed: {:.1} / {:.1} points (their \
             details are not shown).\n",
            h.count, h.passed, h.points, h.max_points
        );
        if !h.by_category.is_empty() {
            s.push_str("| category | hidden checks | passed | points | max |\n");
            s.push_str("| --- | ---: | ---: | ---: | ---: |\n");
            for k in &h.by_category {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.1} | {:.1} |",
                    k.category, k.count, k.passed, k.points, k.max_points
                );
            }
            s.push('\n');
        }
    }

    for (grader, l) in latencies(r) {
        let of = grader.map_or(String::new(), |g| format!(" ({})", cell(g)));
        let _ = write!(
            s,
            "**Latency**{of} at {:.0} req/s (achieved {:.1}): p50 {:.2} ms, p99 {:.2} ms",
            l.target_rate, l.achieved_rate, l.corrected.p50_ms, l.corrected.p99_ms
        );
        if let Some(found) = &l.search {
            let _ = match found.capacity_rate {
                Some(c) => write!(
                    s,
                    "; sustains {c} req/s within p{} <= {} ms",
                    found.percentile, found.slo_ms
                ),
                None => write!(
                    s,
                    "; no rate tried kept p{} <= {} ms",
                    found.percentile, found.slo_ms
                ),
            };
        }
        s.push('\n');
        if !l.valid {
            let _ = writeln!(
                s,
                "<br>The latency measurement is **invalid** ({}): not a grade.",
                cell(&l.invalid_reasons.join("; "))
            );
        }
        s.push('\n');
    }

    let several = r.graders.len() > 1;
    for g in &r.graders {
        let of = if several {
            format!(" ({})", cell(&g.grader.name))
        } else {
            String::new()
        };
        let lines = [
            ("Lifecycle", g.lifecycle.as_ref().map(|x| x.line())),
            ("Cost", g.cost.as_ref().map(|x| x.line())),
            ("Tests", g.tests.as_ref().map(|x| x.line())),
            ("Review", g.review.as_ref().map(|x| x.line())),
        ];
        for (what, line) in lines {
            if let Some(line) = line {
                let _ = writeln!(s, "**{what}**{of}: {}<br>", cell(&line));
            }
        }
    }
    s.push('\n');

    if !r.warnings.is_empty() {
        s.push_str("### Warnings\n\n");
        for w in &r.warnings {
            let _ = writeln!(s, "- {}", cell(w));
        }
        s.push('\n');
    }

    let passed: Vec<_> = r.checks.iter().filter(|c| c.passed).collect();
    if !passed.is_empty() {
        let _ = writeln!(
            s,
            "<details><summary>Passing checks ({})</summary>\n",
            passed.len()
        );
        for c in passed {
            let _ = writeln!(
                s,
                "- {}: {} ({:.1} / {:.1})",
                c.category,
                cell(&r.check_label(c)),
                c.points,
                c.max_points
            );
        }
        s.push_str("\n</details>\n\n");
    }
    let _ = writeln!(
        s,
        "<sub>run {}, proctor {}, seed {}</sub>",
        cell(&r.run_id),
        cell(&r.harness.proctor_version),
        r.seed
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::{check, report};
    use crate::report::{Category, Visibility};

    #[test]
    fn lists_lost_checks_with_escaped_cells_and_folds_the_passing_ones() {
        let mut r = report();
        r.checks.push(check(
            "pipe | name",
            Category::Correctness,
            Visibility::Visible,
            false,
            "line one\nline two | <b>bold</b>",
        ));
        let md = Markdown.render(&r, View::Grader);
        assert!(
            md.starts_with("## proctor: subs/alice (churn-public)"),
            "{md}"
        );
        assert!(md.contains("**Status:** `graded`"), "{md}");
        assert!(md.contains("**Score:** 5.0 / 8.0 (62.5%, fair)"), "{md}");
        assert!(md.contains("| correctness | 1.0 | 2.0 |"), "{md}");
        let row = md
            .lines()
            .find(|l| l.contains("pipe \\| name"))
            .expect("the lost check has a row");
        assert_eq!(
            row,
            "| correctness | pipe \\| name | 0.0 / 2.0 | line one<br>line two \\| &lt;b&gt;bold&lt;/b&gt; |"
        );
        // Every table row has the same number of unescaped column separators as its header.
        let cols = |l: &str| l.replace("\\|", "").matches('|').count();
        let table: Vec<_> = md
            .lines()
            .skip_while(|l| !l.starts_with("| category | check"))
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert!(table.len() >= 3, "{md}");
        assert!(table.iter().all(|l| cols(l) == 5), "{table:?}");
        let (before, details) = md.split_once("<details>").expect("passing checks fold");
        assert!(details.contains("- readiness: ready (1.0 / 1.0)"), "{md}");
        assert!(
            !before.contains("ready (1.0"),
            "no passing check outside the fold"
        );
        assert!(md.contains("p50 3.10 ms, p99 9.90 ms"), "{md}");
        assert!(
            md.contains("sustains 400 req/s within p99 <= 50 ms"),
            "{md}"
        );
        assert!(md.contains("- slow build: 12.5 s"), "{md}");
    }

    #[test]
    fn a_service_that_stopped_shows_its_log_and_what_did_not_run_per_category() {
        let mut r = report();
        r.status = Status::SubmissionError;
        r.verdict = Some(crate::verdict::Verdict::Exited);
        r.reason = "the service exited with code 127 before it became ready".into();
        r.container.as_mut().unwrap().log_tail =
            "starting\nexec uvicorn failed: No such file or directory <x>\n".into();
        let not_run = |name: &str| {
            let mut c = check(name, Category::Latency, Visibility::Visible, false, "");
            c.message = format!("{}{}", crate::check::NOT_RUN, r.reason);
            c
        };
        r.checks.push(not_run("p50"));
        r.checks.push(not_run("p99"));
        let md = Markdown.render(&r, View::Candidate);
        assert!(
            md.contains(
                "<pre>\nstarting\nexec uvicorn failed: No such file or directory &lt;x&gt;\n</pre>"
            ),
            "{md}"
        );
        assert!(md.contains("| latency | 2 | 4.0 |"), "{md}");
        assert!(
            !md.contains("| latency | p50"),
            "not listed check by check: {md}"
        );
        // Graded to the end: the log is the container's section's business, not a headline.
        r.verdict = None;
        assert!(!Markdown.render(&r, View::Grader).contains("last log lines"));
    }

    #[test]
    fn a_candidate_sees_hidden_checks_as_counts_per_category() {
        let r = report();
        let md = Markdown.render(&r, View::Candidate);
        assert!(!md.contains("secret"), "{md}");
        assert!(
            md.contains("2 hidden check(s), 1 passed: 2.0 / 4.0 points"),
            "{md}"
        );
        assert!(md.contains("| robustness | 1 | 0 | 0.0 | 2.0 |"), "{md}");
        let grader = Markdown.render(&r, View::Grader);
        assert!(grader.contains("secret probe"), "{grader}");
        assert!(!grader.contains("### Hidden checks"), "{grader}");
    }

    #[test]
    fn an_infrastructure_error_says_it_is_not_a_grade() {
        let mut r = report();
        r.status = Status::InfrastructureError;
        r.verdict = Some(crate::verdict::Verdict::EngineUnreachable);
        r.reason = "the Docker engine did not answer".into();
        r.score = None;
        r.band = None;
        let md = Markdown.render(&r, View::Candidate);
        assert!(
            md.contains("**Status:** `infrastructure_error` (engine_unreachable)"),
            "{md}"
        );
        assert!(md.contains("this is not a grade"), "{md}");
        assert!(!md.contains("**Score:** 5.0"), "{md}");
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(10_000);
        assert_eq!(cell(&long).chars().count(), MAX_CELL_CHARS + 1);
    }
}
