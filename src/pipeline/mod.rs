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

pub use reference::{LatencyReference, MeasuredReference};

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::events::{Event, Events, Stage, StageTimer};
use crate::grader::LoadedGrader;
use crate::intake::{self, IntakeError, Limits};
use crate::phases::{self, readiness, readiness::ReadyOutcome, Context};
use crate::plan::RunPlan;
use crate::report::{GraderInfo, ImageInfo, LatencyReport, Report};
use crate::sandbox::session::{own_images, OwnImage, OWN_IMAGES};
use crate::sandbox::{dockerfile, labels, BaseImageError, Session};
use crate::target::Target;
use crate::verdict::Verdict;
use record::{ContextFacts, Ending, Record, RunFacts};
use sandbox::Sandbox;

/// What to grade and how.
#[derive(Debug, Clone)]
pub struct GradeOptions {
    pub source: Source,
    /// The grader files, in the order given (`--grader` repeated), composable
    /// (`grader::check_composable`): the submission is built and started once, and every
    /// grader's phases run against it. The first one's submission rules, sandbox and readiness
    /// request are the run's (the others declare the same).
    pub graders: Vec<LoadedGrader>,
    pub seed: u64,
    /// Keep the candidate's image after the run (for debugging a submission).
    pub keep_image: bool,
    pub build_timeout: Option<Duration>,
    pub ready_timeout: Option<Duration>,
    pub intake_limits: Limits,
    /// The assignment's reference submission: measured under the same load first (or
    /// measured already, by a batch), so that a slow machine widens the latency curves instead
    /// of costing the candidate points.
    pub latency_reference: Option<LatencyReference>,
    /// Send every contract probe, not the grader's sample of them (`--probe all`).
    pub probe_all: bool,
}

impl GradeOptions {
    /// The grader whose declarations of the build, the sandbox and readiness the run uses.
    pub fn primary(&self) -> &LoadedGrader {
        &self.graders[0]
    }

    /// The grader the run's plan is made from: the first that measures latency (its
    /// `load_cpuset` places the load generator), else the first.
    fn planning(&self) -> &LoadedGrader {
        self.graders
            .iter()
            .find(|g| g.grader.latency.is_some())
            .unwrap_or(self.primary())
    }
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
    let mut plans = plans_for(opts)?;
    let run = start_run(opts, &events);
    let mut record = Record::new(&run.run_id, &run.graders);
    let container = !matches!(opts.source, Source::Url(_));
    if let Some(w) = place_on_cores(opts, &mut plans, container) {
        record.warn(&events, w);
    }
    // The reference first, under the same load: how much slower it runs here than the grader
    // expects widens the candidate's latency curves. (A grader that only compares CPU with it
    // runs it beside the candidate instead, in the cost phase.)
    let scales = opts
        .graders
        .iter()
        .any(|g| g.grader.latency.as_ref().is_some_and(|l| l.has_reference()));
    if let (Some(reference), true) = (&opts.latency_reference, scales) {
        match reference::scale_to_reference(opts, &mut plans, reference, &events, &cancel).await {
            Ok(r) => record.reference = r,
            Err(ending) => return Ok(finish(opts, &plans, run, ending, record)),
        }
    }
    let ending = grade_planned(opts, &plans, &mut record, &events, &cancel).await?;
    Ok(finish(opts, &plans, run, ending, record))
}

/// Measures the latency reference `path` under `opts`' graders and cores, as `grade` does
/// before a candidate, for runs that share one measurement (a batch measures it at its start
/// and again at its end). `Err` says why it could not be measured.
pub async fn measure_reference(
    opts: &GradeOptions,
    path: &std::path::Path,
    events: Events,
    cancel: CancellationToken,
) -> Result<MeasuredReference, String> {
    let mut plans = plans_for(opts).map_err(|e| e.0)?;
    if let Some(w) = place_on_cores(opts, &mut plans, true) {
        events.event(&Event::Warning(w));
    }
    reference::measure(opts, &plans, path, &events, &cancel)
        .await
        .map_err(|ending| match ending {
            Ending::Stopped { reason, .. } => reason,
            Ending::Graded => "the reference was graded but measured nothing".into(),
        })
}

/// One plan per grader (the latency reference widens each grader's own objectives), after the
/// checks that need nothing to run: the graders compose, and their prerequisites name checks
/// their phases declare.
fn plans_for(opts: &GradeOptions) -> Result<Vec<RunPlan>, UsageError> {
    if opts.graders.is_empty() {
        return Err(UsageError("no grader file given".into()));
    }
    crate::grader::check_composable(&opts.graders).map_err(|e| UsageError(e.to_string()))?;
    let mut plan = RunPlan::new(
        opts.planning(),
        opts.seed,
        opts.build_timeout,
        opts.ready_timeout,
    );
    plan.probe_all = opts.probe_all;
    for g in &opts.graders {
        crate::grader::check_prerequisites(g, &phases::declared_checks(g, &plan))
            .map_err(|e| UsageError(e.to_string()))?;
    }
    Ok(vec![plan; opts.graders.len()])
}

/// A container gets its own cores, the load generator the others; a warning when they cannot
/// be kept apart. Nothing to place without a container (`--url`).
fn place_on_cores(opts: &GradeOptions, plans: &mut [RunPlan], container: bool) -> Option<String> {
    if !container {
        return None;
    }
    let allowed = crate::load::sys::allowed_cpus();
    let mut warning = None;
    for plan in plans {
        warning = plan.place_on_cores(opts.planning(), &allowed);
    }
    warning
}

/// Grades with a plan per grader made already (the latency reference is graded this way too).
async fn grade_planned(
    opts: &GradeOptions,
    plans: &[RunPlan],
    record: &mut Record,
    events: &Events,
    cancel: &CancellationToken,
) -> Result<Ending, UsageError> {
    Ok(match &opts.source {
        Source::Url(url) => {
            let ending = tokio::select! {
                v = grade_target(opts, plans, url, None, None, record, events) => v,
                _ = cancel.cancelled() => Ending::interrupted(),
            };
            record.settle_phases();
            ending
        }
        Source::Submission(_) | Source::Git { .. } => {
            match vet_submission(opts, record, events).await? {
                Err(ending) => ending,
                Ok((ctx, bases)) => {
                    grade_in_sandbox(opts, plans, ctx, bases, record, events, cancel).await
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
        grader: opts
            .graders
            .iter()
            .map(|g| g.path.display().to_string())
            .collect::<Vec<_>>()
            .join(" + "),
    });
    let g = &opts.primary().grader;
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
        graders: opts
            .graders
            .iter()
            .map(|l| GraderInfo {
                name: l.grader.grader.name.clone(),
                assignment: l.grader.grader.assignment.clone(),
                path: l.path.display().to_string(),
                sha256: l.sha256.clone(),
                note: l.grader.grader.note.clone(),
            })
            .collect(),
        seed: opts.seed,
        memory_limit_bytes: g.sandbox.memory_mb * 1024 * 1024,
        pids_limit: g.sandbox.pids_limit,
    }
}

fn finish(
    opts: &GradeOptions,
    plans: &[RunPlan],
    run: RunFacts,
    ending: Ending,
    mut record: Record,
) -> Report {
    record.harness.proctor_version = env!("CARGO_PKG_VERSION").into();
    let graders: Vec<_> = opts
        .graders
        .iter()
        .zip(plans)
        .map(|(g, plan)| (&g.grader, phases::declared_checks(g, plan)))
        .collect();
    record.finish(run, ending, &graders)
}

/// Intake and the Dockerfile check: the submission's build context and its base images, or
/// the ending of the run. `Err` only for a usage error (nothing ran yet).
async fn vet_submission(
    opts: &GradeOptions,
    record: &mut Record,
    events: &Events,
) -> Result<Result<(intake::BuildContext, Vec<String>), Ending>, UsageError> {
    let t = StageTimer::start(events, Stage::Intake);
    let mut limits = opts.intake_limits.clone();
    // A git source's history is fetched only when a grader reports on it, and only as far back
    // as the one asking most.
    limits.history_commits = opts
        .graders
        .iter()
        .filter_map(|g| g.grader.review.as_ref()?.history.as_ref())
        .map(|h| h.max_commits)
        .max()
        .or(limits.history_commits);
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
    let allowed = &opts.primary().grader.submission.allowed_base_images;
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
    plans: &[RunPlan],
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
        plans,
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
    plans: &[RunPlan],
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
        v = build_and_grade(opts, plans, session.as_mut(), ctx, bases, record, events) => v,
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
    plans: &[RunPlan],
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
    // proctor's own images a grader needs (the linter's, the yardstick): missing, it is the
    // machine's to fix, before a build.
    let needed = OWN_IMAGES.into_iter().filter(|o| {
        opts.graders
            .iter()
            .any(|g| own_images(&g.grader).contains(o))
    });
    for OwnImage {
        image,
        what,
        script,
    } in needed
    {
        match session
            .check_base_images(std::slice::from_ref(&image.to_string()))
            .await
        {
            Ok(()) => {}
            Err(BaseImageError::Missing(_)) => {
                return Ending::stopped(
                    Verdict::BaseImageMissing,
                    format!(
                        "proctor's {what} {image} is not on this machine; build it with \
                         `bash {script}`"
                    ),
                )
            }
            Err(BaseImageError::Engine(e)) => return Ending::engine(&e),
        }
    }

    let plan = &plans[0];
    // The static review reads the vetted context in proctor (and, for lint, in proctor's
    // review image): kept only when a grader asks for it.
    let submitted = opts
        .graders
        .iter()
        .any(|g| g.grader.review.is_some())
        .then(|| phases::Submitted {
            tar: ctx.tar.clone(),
            dockerfile: ctx.dockerfile.clone(),
            history: ctx.history.clone(),
        });
    if opts
        .graders
        .iter()
        .any(|g| g.grader.review.as_ref().is_some_and(|r| r.lint.is_some()))
    {
        session.keep_review_context(ctx.tar.clone());
    }
    // A build is heavy: it waits while a latency measurement runs on this machine.
    let waiting = std::time::Instant::now();
    let busy = phases::busy(&crate::load::exclusive::lock_path(), events, "build").await;
    let lock_wait = crate::events::lock_wait(waiting.elapsed());
    let t = StageTimer::start(events, Stage::Build);
    let rules = &opts.primary().grader.submission;
    let mut warnings = Vec::new();
    let built = session
        .build(ctx.tar, rules, plan.build_timeout, events, &mut warnings)
        .await;
    drop(busy);
    for w in warnings.drain(..) {
        record.warn(events, w);
    }
    record.time(t, events);
    if let Some(timing) = record.timings.last_mut() {
        timing.lock_wait_seconds = lock_wait;
    }
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
    if let Some(path) = reference::beside(opts) {
        if let Err(ending) =
            reference::build_beside(opts, path, plan.build_timeout, session, events, record).await
        {
            return ending;
        }
    }

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
    grade_target(
        opts,
        plans,
        &service.url,
        Some(session),
        submitted.as_ref(),
        record,
        events,
    )
    .await
}

/// Readiness, then every grader's phases, grader after grader. With a container, each stage
/// races its exit: a service that dies is reported as such, with the points it earned before.
async fn grade_target(
    opts: &GradeOptions,
    plans: &[RunPlan],
    url: &str,
    session: Option<&mut dyn Sandbox>,
    submitted: Option<&phases::Submitted>,
    record: &mut Record,
    events: &Events,
) -> Ending {
    // Each grader's requests go out with its own HTTP settings.
    let targets: Vec<Target> = opts
        .graders
        .iter()
        .map(|g| Target::new(url, &g.grader.http))
        .collect();
    let g = &opts.primary().grader;
    let plan = &plans[0];

    let t = StageTimer::start(events, Stage::Ready);
    let ready = tokio::select! {
        r = readiness::wait_ready(&targets[0], &g.readiness, plan.ready_timeout) => Ok(r),
        e = exited(session.as_deref()) => Err(e),
    };
    record.time(t, events);
    let outcome = match ready {
        Err(Ok(exit)) => return service_ended(session, exit, Ended::BeforeReady),
        Err(Err(e)) => return Ending::engine(&e),
        Ok(o) => o,
    };
    // One probe, a check (with its own points and visibility) in every grader.
    for (g, out) in opts.graders.iter().zip(&mut record.outcomes) {
        let g = &g.grader;
        let result = readiness::result(&g.readiness, g.grader.visibility, &outcome);
        phases::emit_check(events, &result);
        out.checks.push(result);
    }
    if let ReadyOutcome::TimedOut { last } = outcome {
        return Ending::stopped(
            Verdict::NeverReady,
            format!(
                "the service did not become ready within {}s (last probe: {last})",
                plan.ready_timeout.as_secs()
            ),
        );
    }

    // The start as the service's container saw it: cold start, and the memory at ready when
    // a grader scores it.
    if let Some(s) = session.as_deref() {
        let memory = opts.graders.iter().any(|g| g.grader.cost.is_some());
        if let Err(e) = s.note_ready(memory).await {
            return Ending::engine(&e);
        }
    }
    let control = session.as_deref().map(sandbox::Control);
    let container = control
        .as_ref()
        .map(|c| c as &dyn crate::control::ServiceControl);
    let ran = tokio::select! {
        r = run_graders(opts, plans, &targets, container, submitted, events, &mut record.outcomes) => r,
        e = exited(session.as_deref()) => { record.settle_outcomes(); match e {
            Ok(exit) => return service_ended(session, exit, Ended::WhileGraded),
            Err(e) => return Ending::engine(&e),
        }}
    };
    if let Err(stopped) = ran {
        return Ending::stopped(stopped.verdict, stopped.reason);
    }
    // The service may also have died during the very last request.
    if let Some(s) = session.as_deref() {
        match s.exited().await {
            Ok(Some(exit)) => return service_ended(session, exit, Ended::WhileGraded),
            Ok(None) => {}
            Err(e) => return Ending::engine(&e),
        }
    }
    record
        .outcomes
        .iter()
        .find_map(|o| invalid_latency(o.latency.as_ref()))
        .unwrap_or(Ending::Graded)
}

/// Every grader's phases against the one service, in the order the graders were given; then
/// the phases that stop the service (lifecycle), so that no grader meets a service another
/// one stopped.
async fn run_graders(
    opts: &GradeOptions,
    plans: &[RunPlan],
    targets: &[Target],
    container: Option<&dyn crate::control::ServiceControl>,
    submitted: Option<&phases::Submitted>,
    events: &Events,
    outcomes: &mut [phases::Outcome],
) -> Result<(), phases::Stopped> {
    let several = opts.graders.len() > 1;
    let handoffs: Vec<phases::Handoff> = opts.graders.iter().map(|_| Default::default()).collect();
    for disruptive in [false, true] {
        for (i, grader) in opts.graders.iter().enumerate() {
            if several && !disruptive {
                events.event(&Event::Info(format!(
                    "grading with {} ({})",
                    grader.grader.grader.name,
                    grader.path.display()
                )));
            }
            let cx = Context {
                target: &targets[i],
                grader,
                plan: &plans[i],
                events,
                container,
                submission: submitted,
                handoff: &handoffs[i],
            };
            phases::run_phases(&cx, &mut outcomes[i], disruptive).await?;
        }
    }
    Ok(())
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
