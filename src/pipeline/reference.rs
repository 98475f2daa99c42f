//! The latency reference (`--latency-reference`): the assignment's reference submission,
//! graded first under the same checks and load, so that a machine slower than the grader
//! expects widens the candidate's latency curves instead of costing points. Whatever keeps it
//! from a valid measurement is the grading machine's or the grader's problem, never the
//! candidate's: an infrastructure error.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::record::{Ending, Record};
use super::sandbox::Sandbox;
use super::{GradeOptions, Source};
use crate::events::{Event, Events};
use crate::plan::{Purpose, RunPlan};
use crate::report::{Percentiles, ReferenceLatency, Status};
use crate::verdict::Verdict;

/// The latency reference of a run: a submission to measure first, or a measurement made
/// already (a batch measures the reference once, at its start, for every submission).
#[derive(Debug, Clone)]
pub enum LatencyReference {
    Measure(PathBuf),
    Measured(std::sync::Arc<MeasuredReference>),
}

/// What the reference measured, per grader (none for a grader without `reference_ms`
/// objectives), under the same graders and cores as the runs it scales.
#[derive(Debug, Clone)]
pub struct MeasuredReference {
    pub submission: PathBuf,
    pub run_id: String,
    pub corrected: Vec<Option<Percentiles>>,
}

/// Widens the latency objectives of each grader's plan by how much slower the reference ran
/// here than that grader declares (measuring it first when asked to). Returns, per grader,
/// what was measured for it (none for a grader without latency).
pub async fn scale_to_reference(
    opts: &GradeOptions,
    plans: &mut [RunPlan],
    reference: &LatencyReference,
    events: &Events,
    cancel: &CancellationToken,
) -> Result<Vec<Option<ReferenceLatency>>, Ending> {
    let measured = match reference {
        LatencyReference::Measure(path) => {
            std::sync::Arc::new(measure(opts, plans, path, events, cancel).await?)
        }
        LatencyReference::Measured(m) => m.clone(),
    };
    let (path, run_id) = (&measured.submission, &measured.run_id);
    let mut out = Vec::new();
    for ((g, plan), corrected) in opts
        .graders
        .iter()
        .zip(plans.iter_mut())
        .zip(measured.corrected.iter().cloned())
    {
        let (Some(l), Some(corrected)) = (&g.grader.latency, corrected) else {
            out.push(None);
            continue;
        };
        plan.scale_to_reference(l, |p| percentile_of(&corrected, p))
            .map_err(|reason| Ending::stopped(Verdict::LatencyMeasurementInvalid, reason))?;
        out.push(Some(ReferenceLatency {
            submission: path.display().to_string(),
            run_id: run_id.clone(),
            corrected,
            objectives: plan.latency_scales.clone(),
        }));
    }
    Ok(out)
}

/// Grades the reference with readiness, the scripted checks and the latency load of every
/// grader (the phases the registry selects for `Purpose::LatencyReference`: the scripted checks
/// stay, so the reference is as warm as the candidate when its load starts) and returns its
/// run id and, per grader, its corrected latency (none for a grader without latency).
pub(super) async fn measure(
    opts: &GradeOptions,
    plans: &[RunPlan],
    path: &Path,
    events: &Events,
    cancel: &CancellationToken,
) -> Result<MeasuredReference, Ending> {
    let reference = GradeOptions {
        source: Source::Submission(path.to_path_buf()),
        keep_image: false,
        latency_reference: None,
        probe_all: false,
        ..opts.clone()
    };
    let plans: Vec<RunPlan> = plans
        .iter()
        .map(|plan| RunPlan {
            purpose: Purpose::LatencyReference,
            ..plan.clone()
        })
        .collect();
    events.event(&Event::Info(format!(
        "measuring the reference submission {} under the same load first",
        path.display()
    )));
    let failed = |why: String| {
        Ending::stopped(
            Verdict::ReferenceFailed,
            format!(
                "the latency reference {} could not be measured: {why}",
                path.display()
            ),
        )
    };
    let run = super::start_run(&reference, events);
    let mut record = Record::new(&run.run_id, &run.graders);
    let ending = super::grade_planned(&reference, &plans, &mut record, events, cancel)
        .await
        .map_err(|e| failed(e.0))?;
    let report = super::finish(&reference, &plans, run, ending, record);
    if report.verdict == Some(Verdict::Interrupted) {
        return Err(Ending::interrupted());
    }
    let mut measured = Vec::new();
    for (g, run) in opts.graders.iter().zip(&report.graders) {
        // Only a grader with `reference_ms` objectives is scaled by the reference.
        if !g.grader.latency.as_ref().is_some_and(|l| l.has_reference()) {
            measured.push(None);
            continue;
        }
        measured.push(Some(match (report.status, &run.latency) {
            // Fast failures (refused connections, 500s) are no measure of the machine.
            (Status::Graded, Some(l)) if l.valid && l.ok as f64 >= 0.99 * l.requests as f64 => {
                l.corrected.clone()
            }
            (Status::Graded, Some(l)) if l.valid => {
                return Err(failed(format!(
                    "only {} of its {} requests under load succeeded",
                    l.ok, l.requests
                )))
            }
            (_, l) => {
                return Err(failed(format!(
                    "{} ({})",
                    report.verdict.map_or(
                        if l.is_none() {
                            "no latency measured"
                        } else {
                            "invalid measurement"
                        },
                        |v| v.as_str()
                    ),
                    report.reason
                )))
            }
        }));
    }
    Ok(MeasuredReference {
        submission: path.to_path_buf(),
        run_id: report.run_id,
        corrected: measured,
    })
}

/// The reference to build beside the candidate in the candidate's own sandbox: when a grader
/// compares CPU per prediction with it (`[cost] cpu_vs_reference`). The cost phase then loads
/// both services in turns, request by request, so that the machine's speed, which drifts by
/// tens of percent over minutes on a shared machine, is the same for both sides of the ratio.
pub(super) fn beside(opts: &GradeOptions) -> Option<&Path> {
    let compares = opts.graders.iter().any(|g| {
        g.grader
            .cost
            .as_ref()
            .is_some_and(|c| c.cpu_vs_reference.is_some())
    });
    match (&opts.latency_reference, compares) {
        (Some(LatencyReference::Measure(path)), true) => Some(path),
        (Some(LatencyReference::Measured(m)), true) => Some(&m.submission),
        _ => None,
    }
}

/// Takes in and builds the reference at `path` in the candidate's sandbox, under the same
/// rules. It is the assignment's own: whatever keeps it from building is the machine's or the
/// grader's problem, an infrastructure error.
pub(super) async fn build_beside(
    opts: &GradeOptions,
    path: &Path,
    timeout: std::time::Duration,
    session: &mut dyn Sandbox,
    events: &Events,
    record: &mut Record,
) -> Result<(), Ending> {
    let failed = |why: String| {
        Ending::stopped(
            Verdict::ReferenceFailed,
            format!(
                "the reference {} could not be built beside the submission: {why}",
                path.display()
            ),
        )
    };
    events.event(&Event::Info(format!(
        "building the reference {} beside the submission, to compare CPU per prediction",
        path.display()
    )));
    let limits = opts.intake_limits.clone();
    let owned = path.to_path_buf();
    let ctx = tokio::task::spawn_blocking(move || crate::intake::intake(&owned, &limits))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    let rules = &opts.primary().grader.submission;
    let bases = crate::sandbox::dockerfile::check(&ctx.dockerfile, &rules.allowed_base_images)
        .map_err(|v| failed(format!("Dockerfile line {}: {}", v[0].line, v[0].message)))?;
    session
        .check_base_images(&bases)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let busy = crate::phases::busy(&crate::load::exclusive::lock_path(), events, "build").await;
    let mut warnings = Vec::new();
    let built = session
        .build_reference(ctx.tar, rules, timeout, events, &mut warnings)
        .await;
    drop(busy);
    for w in warnings {
        record.warn(events, w);
    }
    match built {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(f)) => Err(failed(f.reason)),
        Err(e) => Err(failed(e.to_string())),
    }
}

/// One of the percentiles a report keeps, by number (see `REFERENCE_PERCENTILES`).
fn percentile_of(p: &Percentiles, percentile: f64) -> f64 {
    [
        (50.0, p.p50_ms),
        (90.0, p.p90_ms),
        (95.0, p.p95_ms),
        (99.0, p.p99_ms),
    ]
    .iter()
    .find(|(q, _)| *q == percentile)
    .map_or(p.p999_ms, |(_, v)| *v)
}
