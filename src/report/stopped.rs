//! What a run the service cut short tells its reader to fix, for every view that shows it: the
//! service's last log lines (where the cause usually is), and the checks the run never reached,
//! counted per category instead of listed one by one.

use super::{Category, CheckResult, Report};

/// How many of the service's last log lines a stopped run shows.
pub const LOG_LINES: usize = 15;

/// The service's last log lines, when the run stopped because of the service itself (it never
/// became ready, exited, was killed for memory or crashed), from the report as its view has it
/// (a candidate's view keeps the log only when no hidden check ran before).
pub fn service_log(r: &Report) -> Option<Vec<&str>> {
    use crate::verdict::Verdict as V;
    let stopped_by_service = matches!(
        r.verdict,
        Some(V::NeverReady | V::Exited | V::OomKilled | V::CrashedDuringGrading)
    );
    let tail = r.container.as_ref().map(|c| c.log_tail.trim_end())?;
    if !stopped_by_service || tail.is_empty() {
        return None;
    }
    let lines: Vec<&str> = tail.lines().collect();
    Some(lines[lines.len().saturating_sub(LOG_LINES)..].to_vec())
}

/// The checks that lost points, split: those the run never reached (only when it stopped),
/// and the others.
pub fn lost_checks(r: &Report) -> (Vec<&CheckResult>, Vec<&CheckResult>) {
    r.checks
        .iter()
        .filter(|c| !c.passed)
        .partition(|c| !r.reason.is_empty() && c.not_run())
}

/// Checks not run, per category in the order first met: (category, checks, their points).
pub fn not_run_by_category(skipped: &[&CheckResult]) -> Vec<(Category, usize, f64)> {
    let mut by_category: Vec<(Category, usize, f64)> = Vec::new();
    for c in skipped {
        match by_category.iter_mut().find(|(cat, ..)| *cat == c.category) {
            Some((_, n, points)) => {
                *n += 1;
                *points += c.max_points;
            }
            None => by_category.push((c.category, 1, c.max_points)),
        }
    }
    by_category
}
