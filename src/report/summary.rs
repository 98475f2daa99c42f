//! The human summary printed when a run ends: status, score and its band, score per category,
//! prerequisites not met, failed checks.

use std::fmt::Write;

use super::{Render, Report, Status, View};

/// The terminal summary: status, score per category, the visible checks that lost points, and
/// the latency numbers.
pub struct Summary;

impl Render for Summary {
    fn render(&self, report: &Report, view: View) -> String {
        summary_of(&report.for_view(view))
    }
}

/// The summary the CLI prints. Hidden checks are counted, never detailed, whoever runs it: the
/// same binary serves candidates self-testing.
pub fn summary_text(r: &Report) -> String {
    Summary.render(r, View::Candidate)
}

fn summary_of(r: &Report) -> String {
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
            c.name, c.points, c.max_points
        );
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
    let hidden = r.hidden_checks.as_ref().map_or(0, |h| h.count);
    let failed: Vec<_> = r.checks.iter().filter(|c| !c.passed).collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "checks that lost points:");
        for c in failed {
            let _ = writeln!(
                s,
                "  - [{}] {} ({:.1}/{:.1}): {}",
                c.category, c.name, c.points, c.max_points, c.message
            );
        }
    }
    if hidden > 0 {
        let _ = writeln!(s, "hidden checks: {hidden} (their details are not shown)");
    }
    if let Some(l) = &r.latency {
        let _ = writeln!(
            s,
            "latency at {:.0} req/s (achieved {:.1}): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} of {} ok",
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
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}
