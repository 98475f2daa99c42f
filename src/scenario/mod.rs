//! The scripted part of grading: phases that run in order against a target and return check
//! results. Everything they do is declared in the grader file.
//!
//! Readiness comes first and gates the rest; the pipeline runs it on its own because it races
//! the container's exit. The remaining phases run here: correctness, robustness, latency.

pub mod checks;
pub mod latency;
pub mod readiness;

use crate::events::{Event, Events, Stage};
use crate::grader::{Grader, Visibility};
use crate::report::{CheckResult, LatencyReport, StageTiming};
use crate::target::Target;

/// What the phases after readiness produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub checks: Vec<CheckResult>,
    pub latency: Option<LatencyReport>,
    /// Time spent in each phase that finished.
    pub timings: Vec<StageTiming>,
}

/// Runs every phase after readiness, in the grader's order. Checks are appended to `out` as
/// they finish, so that a run cut short (the service died, Ctrl-C) keeps what was earned.
pub async fn run_phases(
    grader: &Grader,
    target: &Target,
    seed: u64,
    events: &Events,
    out: &mut Outcome,
) {
    let default_vis = grader.grader.visibility;
    events.event(&Event::StageStarted(Stage::Checks));
    let t = std::time::Instant::now();
    for (category, specs) in [
        ("correctness", &grader.correctness),
        ("robustness", &grader.robustness),
    ] {
        for spec in specs {
            let result = checks::run_check(target, spec, category, default_vis).await;
            emit_check(events, &result);
            out.checks.push(result);
        }
    }
    out.timings.push(finish_stage(events, Stage::Checks, t));

    if let Some(spec) = &grader.latency {
        events.event(&Event::StageStarted(Stage::Latency));
        let t = std::time::Instant::now();
        let (results, report) = latency::run(target, spec, seed, default_vis, events).await;
        for r in &results {
            emit_check(events, r);
        }
        out.checks.extend(results);
        out.latency = Some(report);
        out.timings.push(finish_stage(events, Stage::Latency, t));
    }
}

/// Announces the end of a stage and returns its timing for the report.
pub fn finish_stage(events: &Events, stage: Stage, started: std::time::Instant) -> StageTiming {
    let elapsed = started.elapsed();
    events.event(&Event::StageFinished { stage, elapsed });
    StageTiming {
        stage: stage.name().into(),
        seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
    }
}

pub fn emit_check(events: &Events, r: &CheckResult) {
    events.event(&Event::CheckFinished {
        name: r.name.clone(),
        points: r.points,
        max_points: r.max_points,
        passed: r.passed,
        message: r.message.clone(),
        hidden: r.visibility == Visibility::Hidden,
    });
}
