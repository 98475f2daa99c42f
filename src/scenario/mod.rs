//! The scripted part of grading: phases that run in order against a target and return check
//! results. Everything they do is declared in the grader file.
//!
//! Readiness comes first and gates the rest; the pipeline runs it on its own because it races
//! the container's exit. The remaining phases run here, in this order: the scripted checks
//! (correctness, robustness, missing data), quality, consistency, latency, drift, monitoring.
//! Drift runs after the other traffic and flushes the service's window itself.

pub mod checks;
pub mod consistency;
pub mod drift;
pub mod latency;
pub mod monitoring;
pub mod predict;
pub mod quality;
pub mod readiness;

use std::time::Instant;

use crate::check::{Category, DeclaredCheck};
use crate::events::{Event, Events, Stage};
use crate::grader::{LoadedGrader, Visibility};
use crate::report::{CheckResult, LatencyReport, StageTiming};
use crate::target::Target;

/// What the phases after readiness produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub checks: Vec<CheckResult>,
    pub latency: Option<LatencyReport>,
    pub quality: Option<crate::report::QualityReport>,
    pub consistency: Option<crate::report::ConsistencyReport>,
    pub drift: Option<crate::report::DriftReport>,
    pub monitoring: Option<crate::report::MonitoringReport>,
    /// Time spent in each phase that finished.
    pub timings: Vec<StageTiming>,
}

impl Outcome {
    /// Files a finished phase: its checks (announced) and its timing.
    fn finish(
        &mut self,
        events: &Events,
        stage: Stage,
        started: Instant,
        results: Vec<CheckResult>,
    ) {
        for r in &results {
            emit_check(events, r);
        }
        self.checks.extend(results);
        self.timings.push(finish_stage(events, stage, started));
    }
}

/// Runs every phase after readiness. Checks are appended to `out` as each phase finishes, so
/// that a run cut short (the service died, Ctrl-C) keeps what was earned.
pub async fn run_phases(
    loaded: &LoadedGrader,
    target: &Target,
    seed: u64,
    events: &Events,
    out: &mut Outcome,
) {
    let grader = &loaded.grader;
    let default_vis = grader.grader.visibility;
    let t = start_stage(events, Stage::Checks);
    for (category, specs) in grader.check_lists() {
        for spec in specs {
            let result = checks::run_check(target, spec, category, default_vis).await;
            emit_check(events, &result);
            out.checks.push(result);
        }
    }
    out.timings.push(finish_stage(events, Stage::Checks, t));

    let api = grader.prediction.as_ref();
    if let (Some(spec), Some(api)) = (&grader.quality, api) {
        let t = start_stage(events, Stage::Quality);
        let (results, report) =
            quality::run(target, api, spec, &loaded.datasets, default_vis).await;
        out.quality = Some(report);
        out.finish(events, Stage::Quality, t, results);
    }
    if let (Some(spec), Some(api)) = (&grader.consistency, api) {
        let t = start_stage(events, Stage::Consistency);
        let (results, report) = consistency::run(
            target,
            api,
            spec,
            &loaded.datasets[&spec.dataset],
            seed,
            default_vis,
        )
        .await;
        out.consistency = Some(report);
        out.finish(events, Stage::Consistency, t, results);
    }
    if let Some(spec) = &grader.latency {
        let t = start_stage(events, Stage::Latency);
        let (results, report) = latency::run(target, spec, seed, default_vis, events).await;
        out.latency = Some(report);
        out.finish(events, Stage::Latency, t, results);
    }
    if let (Some(spec), Some(api)) = (&grader.drift, api) {
        let t = start_stage(events, Stage::Drift);
        let (results, report) = drift::run(
            target,
            api,
            spec,
            &loaded.datasets[&spec.dataset],
            seed,
            default_vis,
        )
        .await;
        out.drift = Some(report);
        out.finish(events, Stage::Drift, t, results);
    }
    if let (Some(spec), Some(api)) = (&grader.metrics, api) {
        let t = start_stage(events, Stage::Monitoring);
        let (results, report) = monitoring::run(
            target,
            api,
            spec,
            &loaded.datasets[&spec.dataset],
            default_vis,
        )
        .await;
        out.monitoring = Some(report);
        out.finish(events, Stage::Monitoring, t, results);
    }
}

/// Every check the grader declares: what a run that stops early lists as not run, so its score
/// is out of the full total.
pub fn declared_checks(loaded: &LoadedGrader) -> Vec<DeclaredCheck> {
    let g = &loaded.grader;
    let vis = g.grader.visibility;
    let mut out = vec![DeclaredCheck::new(
        g.readiness.name.clone(),
        Category::Readiness,
        g.readiness.points.0,
        g.readiness.visibility.unwrap_or(vis),
    )];
    for (cat, specs) in g.check_lists() {
        for s in specs {
            out.push(DeclaredCheck::new(
                s.name.clone(),
                cat,
                s.points.0,
                s.visibility.unwrap_or(vis),
            ));
        }
    }
    if let Some(q) = &g.quality {
        let v = q.visibility.unwrap_or(vis);
        for m in &q.metric {
            out.push(DeclaredCheck::new(
                quality::metric_check_name(m.metric, &q.dataset),
                Category::Quality,
                m.points.0,
                v,
            ));
        }
        if let (Some(c), Some(gap)) = (&q.compare_dataset, &q.gap) {
            out.push(DeclaredCheck::new(
                quality::gap_check_name(c, &q.dataset),
                Category::Quality,
                gap.points.0,
                v,
            ));
        }
    }
    if let Some(c) = &g.consistency {
        out.push(DeclaredCheck::new(
            consistency::check_name(c.concurrency),
            Category::Consistency,
            c.points.0,
            c.visibility.unwrap_or(vis),
        ));
    }
    if let Some(l) = &g.latency {
        let lvis = l.visibility.unwrap_or(vis);
        for (name, max) in latency::declared_checks(l) {
            out.push(DeclaredCheck::new(name, Category::Latency, max, lvis));
        }
    }
    if let Some(d) = &g.drift {
        let v = d.visibility.unwrap_or(vis);
        out.push(DeclaredCheck::new(
            drift::FALSE_ALARMS_CHECK,
            Category::Drift,
            d.false_alarm_points.0,
            v,
        ));
        let share = if d.scenario.is_empty() {
            0.0
        } else {
            d.detection_points.0 / d.scenario.len() as f64
        };
        for sc in &d.scenario {
            out.push(DeclaredCheck::new(
                drift::detection_check_name(&sc.name),
                Category::Drift,
                share,
                v,
            ));
        }
        if !d.scenario.is_empty() {
            out.push(DeclaredCheck::new(
                drift::ATTRIBUTION_CHECK,
                Category::Drift,
                d.attribution_points.0,
                v,
            ));
        }
    }
    if let Some(m) = &g.metrics {
        let v = m.visibility.unwrap_or(vis);
        out.push(DeclaredCheck::new(
            monitoring::counter_check_name(&m.predictions_counter),
            Category::Monitoring,
            m.counter_points.0,
            v,
        ));
        out.push(DeclaredCheck::new(
            monitoring::histogram_check_name(&m.latency_histogram),
            Category::Monitoring,
            m.histogram_points.0,
            v,
        ));
    }
    out
}

/// Announces the start of a stage and returns when it started.
pub fn start_stage(events: &Events, stage: Stage) -> Instant {
    events.event(&Event::StageStarted(stage));
    Instant::now()
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
