//! One grading run, start to finish, in one direction:
//!
//! submission → intake → Dockerfile check → build → start → readiness → phases → score → report
//!
//! Every stage either hands its product to the next or ends the run with a verdict that says
//! whose fault it was. Whatever happens (a verdict, an engine failure, Ctrl-C), the run's Docker
//! resources are removed before the report is returned, and the report keeps every check that
//! was graded before the run stopped (`record`). The engine is reached only through the
//! sandbox's `Session`; the phases only through a `Target`.

mod record;
mod reference;
mod sandbox;

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::events::{Event, Events, Stage, StageTimer};
use crate::grader::LoadedGrader;
use crate::intake::{self, IntakeError, Limits};
use crate::phases::{self, readiness, readiness::ReadyOutcome, Context};
use crate::plan::RunPlan;
use crate::report::{GraderInfo, ImageInfo, LatencyReport, Report};
use crate::sandbox::{dockerfile, labels, BaseImageError, Session};
use crate::target::Target;
use crate::verdict::Verdict;
use record::{ContextFacts, Ending, Record, RunFacts};
use sandbox::Sandbox;

/// What to grade and how.
#[derive(Debug, Clone)]
pub struct GradeOptions {
    pub source: Source,
    pub grader: LoadedGrader,
    pub seed: u64,
    /// Keep the candidate's image after the run (for debugging a submission).
    pub keep_image: bool,
    pub build_timeout: Option<Duration>,
    pub ready_timeout: Option<Duration>,
    pub intake_limits: Limits,
    /// The assignment's reference submission: measured under the same load first, so that a
    /// slow machine widens the latency curves instead of costing the candidate points.
    pub latency_reference: Option<PathBuf>,
    /// Send every contract probe, not the grader's sample of them (`--probe all`).
    pub probe_all: bool,
}

#[derive(Debug, Clone)]
pub enum Source {
    /// A directory or archive to build and run in the sandbox.
    Submission(PathBuf),
    /// A git repository (https URL, `git+file://` URL or local repository) at a ref.
    Git { url: String, rev: Option<String> },
    /// A service that is already running (self-testing); nothing is built or started.
    Url(String),
}

/// A problem with how proctor was called, found before anything ran (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Grades one submission. Returns `Err` only for usage errors found before the submission was
/// built (with `--latency-reference`, after the reference was measured); everything else,
/// including infrastructure failures, is a report.
pub async fn grade(
    opts: &GradeOptions,
    events: Events,
    cancel: CancellationToken,
) -> Result<Report, UsageError> {
    let mut plan = RunPlan::new(
        &opts.grader,
        opts.seed,
        opts.build_timeout,
        opts.ready_timeout,
    );
    plan.probe_all = opts.probe_all;
    // Prerequisites name the checks the phases declare: checked here, before anything runs.
    crate::grader::check_prerequisites(&opts.grader, &phases::declared_checks(&opts.grader, &plan))
        .map_err(|e| UsageError(e.to_string()))?;
    let run = start_run(opts, &events);
    let mut record = Record::new(&run.run_id);
    // A container gets its own cores, the load generator the others.
    if !matches!(opts.source, Source::Url(_)) {
        let allowed = crate::load::sys::allowed_cpus();
        if let Some(w) = plan.place_on_cores(&opts.grader, &allowed) {
            record.warn(&events, w);
        }
    }
    // The reference first, under the same load: how much slower it runs here than the grader
    // expects widens the candidate's latency curves.
    if let Some(path) = &opts.latency_reference {
        match reference::scale_to_reference(opts, &mut plan, path, &events, &cancel).await {
            Ok(r) => record.reference = Some(r),
            Err(ending) => return Ok(finish(opts, &plan, run, ending, record)),
        }
    }
    let ending = grade_planned(opts, &plan, &mut record, &events, &cancel).await?;
    Ok(finish(opts, &plan, run, ending, record))
}

/// Grades with a plan made already (the latency reference is graded this way too).
async fn grade_planned(
    opts: &GradeOptions,
    plan: &RunPlan,
    record: &mut Record,
    events: &Events,
    cancel: &CancellationToken,
) -> Result<Ending, UsageError> {
    Ok(match &opts.source {
        Source::Url(url) => {
            let target = Target::new(url, &opts.grader.grader.http);
            let ending = tokio::select! {
                v = grade_target(opts, plan, &target, None, record, events) => v,
                _ = cancel.cancelled() => Ending::interrupted(),
            };
            record.settle_phases();
            ending
        }
        Source::Submission(_) | Source::Git { .. } => {
            match vet_submission(opts, record, events).await? {
                Err(ending) => ending,
                Ok((ctx, bases)) => {
                    grade_in_sandbox(opts, plan, ctx, bases, record, events, cancel).await
                }
            }
        }
    })
}

fn start_run(opts: &GradeOptions, events: &Events) -> RunFacts {
    let run_id = labels::new_run_id();
    let source = match &opts.source {
        Source::Submission(p) => p.display().to_string(),
        Source::Git { url, rev: Some(r) } => format!("{url}@{r}"),
        Source::Git { url, rev: None } => url.clone(),
        Source::Url(u) => u.clone(),
    };
    events.event(&Event::RunStarted {
        run_id: run_id.clone(),
        submission: source.clone(),
        grader: opts.grader.path.display().to_string(),
    });
    let g = &opts.grader.grader;
    RunFacts {
        run_id,
        started_at: record::now_rfc3339(),
        source,
        kind_hint: match &opts.source {
            Source::Url(_) => "url",
            Source::Git { .. } => "git",
            Source::Submission(p) if p.is_dir() => "directory",
            Source::Submission(_) => "archive",
        },
        grader: GraderInfo {
            name: g.grader.name.clone(),
            assignment: g.grader.assignment.clone(),
            path: opts.grader.path.display().to_string(),
            sha256: opts.grader.sha256.clone(),
            note: g.grader.note.clone(),
        },
        seed: opts.seed,
        memory_limit_bytes: g.sandbox.memory_mb * 1024 * 1024,
        pids_limit: g.sandbox.pids_limit,
    }
}

fn finish(
    opts: &GradeOptions,
    plan: &RunPlan,
    run: RunFacts,
    ending: Ending,
    mut record: Record,
) -> Report {
    record.harness.proctor_version = env!("CARGO_PKG_VERSION").into();
    let declared = phases::declared_checks(&opts.grader, plan);
    record.finish(run, ending, &declared, &opts.grader.grader)
}

/// Intake and the Dockerfile check: the submission's build context and its base images, or
/// the ending of the run. `Err` only for a usage error (nothing ran yet).
async fn vet_submission(
    opts: &GradeOptions,
    record: &mut Record,
    events: &Events,
) -> Result<Result<(intake::BuildContext, Vec<String>), Ending>, UsageError> {
    let t = StageTimer::start(events, Stage::Intake);
    let limits = opts.intake_limits.clone();
    let source = opts.source.clone();
    // Intake reads files and may run git: blocking work, off the async threads.
    let intake_result = tokio::task::spawn_blocking(move || match &source {
        Source::Git { url, rev } => intake::intake_git(url, rev.as_deref(), &limits),
        Source::Submission(p) => intake::intake(p, &limits),
        Source::Url(_) => unreachable!("a URL has nothing to take in"),
    })
    .await
    .map_err(|e| UsageError(format!("intake failed: {e}")))?;
    record.time(t, events);
    let ctx = match intake_result {
        Err(e) if e.is_usage_error() => return Err(UsageError(e.to_string())),
        // Could not fetch the repository: neither a grade nor the candidate's fault.
        Err(e @ IntakeError::Fetch { .. }) => {
            return Ok(Err(Ending::stopped(Verdict::FetchFailed, e.to_string())))
        }
        Err(e) => {
            return Ok(Err(Ending::stopped(
                Verdict::ArchiveRejected,
                format!("the submission was rejected: {e}"),
            )))
        }
        Ok(ctx) => ctx,
    };
    record.context = Some(ContextFacts {
        kind: ctx.kind,
        sha256: ctx.sha256.clone(),
        files: ctx.files,
        bytes: ctx.bytes,
        commit: ctx.commit.clone(),
    });
    let allowed = &opts.grader.grader.submission.allowed_base_images;
    Ok(match dockerfile::check(&ctx.dockerfile, allowed) {
        Err(violations) => {
            let reason = violations
                .iter()
                .map(|v| format!("Dockerfile line {}: {}", v.line, v.message))
                .collect::<Vec<_>>()
                .join("; ");
            Err(Ending::stopped(violations[0].verdict, reason))
        }
        Ok(bases) => Ok((ctx, bases)),
    })
}

/// Opens the run's sandbox, builds and grades the submission (until done or cancelled), then
/// reads the container's end and removes everything the run created.
#[allow(clippy::too_many_arguments)]
async fn grade_in_sandbox(
    opts: &GradeOptions,
    plan: &RunPlan,
    ctx: intake::BuildContext,
    bases: Vec<String>,
    record: &mut Record,
    events: &Events,
    cancel: &CancellationToken,
) -> Ending {
    let session = match Session::open(&record.run_id, opts.keep_image).await {
        Err(e) => return Ending::engine(&e),
        Ok(s) => s,
    };
    grade_opened(
        opts,
        plan,
        Box::new(session),
        ctx,
        bases,
        record,
        events,
        cancel,
    )
    .await
}

/// Grades in a sandbox that is open: until done or cancelled, then reads the container's end
/// and closes the sandbox, whatever happened.
#[allow(clippy::too_many_arguments)]
async fn grade_opened(
    opts: &GradeOptions,
    plan: &RunPlan,
    mut session: Box<dyn Sandbox>,
    ctx: intake::BuildContext,
    bases: Vec<String>,
    record: &mut Record,
    events: &Events,
    cancel: &CancellationToken,
) -> Ending {
    let run_id = record.run_id.clone();
    record.engine(session.info());
    if let Some(w) = session.info().runc_warning() {
        record.warn(events, w);
    }
    let ending = tokio::select! {
        v = build_and_grade(opts, plan, session.as_mut(), ctx, bases, record, events) => v,
        _ = cancel.cancelled() => Ending::interrupted(),
    };
    record.settle_phases();
    record.container = session.finish().await;
    let t = StageTimer::start(events, Stage::Cleanup);
    let errors = session.close().await;
    if !errors.is_empty() {
        let w = format!(
            "cleanup could not remove everything of run {run_id} (run `proctor gc`): {}",
            errors.join("; ")
        );
        record.warn(events, w);
    }
    record.time(t, events);
    ending
}

/// Build, start, then grade the running container.
async fn build_and_grade(
    opts: &GradeOptions,
    plan: &RunPlan,
    session: &mut dyn Sandbox,
    ctx: intake::BuildContext,
    bases: Vec<String>,
    record: &mut Record,
    events: &Events,
) -> Ending {
    // Leftovers of runs that were killed before they could clean up.
    if let Some(line) = session.sweep_leftovers().await {
        events.event(&Event::Info(line));
    }
    match session.check_base_images(&bases).await {
        Ok(()) => {}
        Err(e @ BaseImageError::Missing(_)) => {
            return Ending::stopped(Verdict::BaseImageMissing, e.to_string())
        }
        Err(BaseImageError::Engine(e)) => return Ending::engine(&e),
    }

    let t = StageTimer::start(events, Stage::Build);
    let rules = &opts.grader.grader.submission;
    let mut warnings = Vec::new();
    let built = session
        .build(ctx.tar, rules, plan.build_timeout, events, &mut warnings)
        .await;
    for w in warnings.drain(..) {
        record.warn(events, w);
    }
    record.time(t, events);
    let built = match built {
        Err(e) => return Ending::engine(&e),
        Ok(Err(failure)) => {
            record.build_log_tail = Some(failure.log_tail);
            return Ending::stopped(failure.verdict, failure.reason);
        }
        Ok(Ok(b)) => b,
    };
    record.build_log_tail = Some(built.log_tail.clone());
    record.image = Some(ImageInfo {
        id: built.image_id.clone(),
        base_images: bases,
        size_bytes: built.size_bytes,
    });

    let t = StageTimer::start(events, Stage::Start);
    let service = session
        .start(&built, &plan.sandbox, rules.port, &mut warnings)
        .await;
    for w in warnings.drain(..) {
        record.warn(events, w);
    }
    record.time(t, events);
    let service = match service {
        Ok(s) => s,
        Err(e) => return Ending::engine(&e),
    };
    let target = Target::new(&service.url, &opts.grader.grader.http);
    grade_target(opts, plan, &target, Some(session), record, events).await
}

/// Readiness, then the phases. With a container, each stage races its exit: a service that
/// dies is reported as such, with the points it earned before.
async fn grade_target(
    opts: &GradeOptions,
    plan: &RunPlan,
    target: &Target,
    session: Option<&mut dyn Sandbox>,
    record: &mut Record,
    events: &Events,
) -> Ending {
    let g = &opts.grader.grader;

    let t = StageTimer::start(events, Stage::Ready);
    let ready = tokio::select! {
        r = readiness::wait_ready(target, &g.readiness, plan.ready_timeout) => Ok(r),
        e = exited(session.as_deref()) => Err(e),
    };
    record.time(t, events);
    let outcome = match ready {
        Err(Ok(exit)) => return service_ended(session, exit, Ended::BeforeReady),
        Err(Err(e)) => return Ending::engine(&e),
        Ok(o) => o,
    };
    let result = readiness::result(&g.readiness, g.grader.visibility, &outcome);
    phases::emit_check(events, &result);
    record.outcome.checks.push(result);
    if let ReadyOutcome::TimedOut { last } = outcome {
        return Ending::stopped(
            Verdict::NeverReady,
            format!(
                "the service did not become ready within {}s (last probe: {last})",
                plan.ready_timeout.as_secs()
            ),
        );
    }

    let cx = Context {
        target,
        grader: &opts.grader,
        plan,
        events,
        has_container: session.is_some(),
    };
    let ran = tokio::select! {
        r = phases::run_phases(&cx, &mut record.outcome) => r,
        e = exited(session.as_deref()) => { record.outcome.settle(); match e {
            Ok(exit) => return service_ended(session, exit, Ended::WhileGraded),
            Err(e) => return Ending::engine(&e),
        }}
    };
    if let Err(stopped) = ran {
        return Ending::stopped(Verdict::LatencyMeasurementInvalid, stopped.reason);
    }
    // The service may also have died during the very last request.
    if let Some(s) = session.as_deref() {
        match s.exited().await {
            Ok(Some(exit)) => return service_ended(session, exit, Ended::WhileGraded),
            Ok(None) => {}
            Err(e) => return Ending::engine(&e),
        }
    }
    invalid_latency(record.outcome.latency.as_ref()).unwrap_or(Ending::Graded)
}

/// Resolves when the container stops; never for a `--url` service.
async fn exited(
    session: Option<&dyn Sandbox>,
) -> Result<crate::sandbox::container::ExitInfo, crate::sandbox::EngineError> {
    match session {
        Some(s) => s.wait_exit().await,
        None => std::future::pending().await,
    }
}

/// When the service stopped.
enum Ended {
    BeforeReady,
    WhileGraded,
}

/// The service stopped on its own: the verdict and the reason, and the exit noted for the
/// report.
fn service_ended(
    session: Option<&mut dyn Sandbox>,
    exit: crate::sandbox::container::ExitInfo,
    when: Ended,
) -> Ending {
    let (v, reason) = if let Ended::BeforeReady = when {
        (
            Verdict::Exited,
            format!("the service {} before it became ready", exit.describe()),
        )
    } else {
        (
            Verdict::CrashedDuringGrading,
            format!(
                "the service {} while it was being graded; checks after that were not run",
                exit.describe()
            ),
        )
    };
    // A process killed for memory may leave the main one to exit cleanly (exit 0): the kill is
    // still what ended the service (the session folds it into the exit).
    let v = if exit.oom_killed {
        Verdict::OomKilled
    } else {
        v
    };
    if let Some(s) = session {
        s.saw_exit(exit);
    }
    Ending::stopped(v, reason)
}

/// A latency measurement the load generator could not keep on schedule, even on a second
/// attempt, is the machine's failure: grading on it would blame the candidate for the machine.
/// The latency section stays in the report for diagnosis.
fn invalid_latency(latency: Option<&LatencyReport>) -> Option<Ending> {
    let l = latency.filter(|l| !l.valid)?;
    Some(Ending::stopped(
        Verdict::LatencyMeasurementInvalid,
        format!(
            "the latency measurement is invalid after {} attempt{}: {}; regrade on a quieter \
             machine, or give the load generator cores of its own ([sandbox] cpuset = \"auto\")",
            l.attempts,
            if l.attempts == 1 { "" } else { "s" },
            l.invalid_reasons.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests;
