//! One grading run, start to finish, in one direction:
//!
//! submission → intake → Dockerfile check → build → start → readiness → phases → score → report
//!
//! Every stage either hands its product to the next or ends the run with a verdict that says
//! whose fault it was. Whatever happens (a verdict, an engine failure, Ctrl-C), the run's Docker
//! resources are removed before the report is returned, and the report keeps every check that
//! was graded before the run stopped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::events::{Event, Events, Stage};
use crate::grader::LoadedGrader;
use crate::intake::{self, IntakeError, Limits};
use crate::report::{
    CheckResult, ContainerInfo, GraderInfo, Harness, ImageInfo, LatencyReport, Percentiles,
    ReferenceLatency, ReferenceScale, Report, StageTiming, Status, SubmissionInfo, SCHEMA_VERSION,
};
use crate::sandbox::build::{self, BuildLimits};
use crate::sandbox::container::{self, ExitInfo};
use crate::sandbox::monitor::{self, Monitor, Peaks};
use crate::sandbox::{build_cgroup, cleanup, dockerfile, labels, Engine, EngineError};
use crate::scenario::{self, readiness, readiness::ReadyOutcome};
use crate::target::Target;

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

/// How a run ended, before it becomes a report status.
#[derive(Debug, Clone)]
enum Verdict {
    Graded,
    Submission { verdict: String, reason: String },
    Infrastructure { verdict: String, reason: String },
    Interrupted,
}

impl Verdict {
    fn submission(verdict: &str, reason: impl Into<String>) -> Verdict {
        Verdict::Submission {
            verdict: verdict.to_string(),
            reason: reason.into(),
        }
    }
    fn engine(e: &EngineError) -> Verdict {
        Verdict::Infrastructure {
            verdict: e.verdict().to_string(),
            reason: e.to_string(),
        }
    }
}

/// What the run has produced so far; it survives cancellation of the stages that fill it.
#[derive(Default)]
struct Partial {
    timings: Vec<StageTiming>,
    context: Option<(intake::SourceKind, String, u64, u64)>,
    /// The commit graded, for git sources.
    commit: Option<String>,
    image: Option<ImageInfo>,
    build_log_tail: Option<String>,
    container_id: Option<String>,
    /// None while the container is still running (or there is none).
    exit: Option<ExitInfo>,
    log_tail: Option<String>,
    /// The build's cgroup. Held here, not by the build, so that a cancelled build's cgroup is
    /// still removed once the engine has stopped the step (see `release_build_cgroup`).
    build_cgroup: Option<build_cgroup::BuildCgroup>,
    /// The reference measured before the candidate (`--latency-reference`).
    reference: Option<ReferenceLatency>,
    /// Watches the container's memory, processes and OOM kills while it runs.
    monitor: Option<Monitor>,
    peaks: Peaks,
    outcome: scenario::Outcome,
    warnings: Vec<String>,
}

impl Partial {
    fn time(&mut self, stage: Stage, started: Instant, events: &Events) {
        self.timings
            .push(scenario::finish_stage(events, stage, started));
    }

    /// Records a warning for the report and shows it at once.
    fn warn(&mut self, events: &Events, warning: String) {
        events.event(&Event::Warning(warning.clone()));
        self.warnings.push(warning);
    }

    /// Moves the timings of the phases that ran (also when they were cut short) after the
    /// pipeline's own stages.
    fn collect_phase_timings(&mut self) {
        self.timings.append(&mut self.outcome.timings);
    }
}

/// Grades one submission. Returns `Err` only for usage errors found before the submission was
/// built (with `--latency-reference`, after the reference was measured); everything else,
/// including infrastructure failures, is a report.
pub async fn grade(
    opts: &GradeOptions,
    events: Events,
    cancel: CancellationToken,
) -> Result<Report, UsageError> {
    let run_id = labels::new_run_id();
    let started_at = now_rfc3339();
    let source_text = match &opts.source {
        Source::Submission(p) => p.display().to_string(),
        Source::Git { url, rev: Some(r) } => format!("{url}@{r}"),
        Source::Git { url, rev: None } => url.clone(),
        Source::Url(u) => u.clone(),
    };
    events.event(&Event::RunStarted {
        run_id: run_id.clone(),
        submission: source_text.clone(),
        grader: opts.grader.path.display().to_string(),
    });
    let mut partial = Partial::default();
    // A container gets its own cores, the load generator the others (see `place_on_cores`).
    let mut placed = opts.clone();
    if !matches!(opts.source, Source::Url(_)) {
        let allowed = crate::load::sys::allowed_cpus();
        if let Some(w) = placed.grader.grader.place_on_cores(&allowed) {
            partial.warn(&events, w);
        }
    }
    let mut harness = Harness {
        proctor_version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    // The reference first, under the same load: how much slower it runs here than the grader
    // expects widens the candidate's latency curves.
    if let Some(path) = &opts.latency_reference {
        match scale_to_reference(opts, &mut placed, path, &events, &cancel).await {
            Ok(r) => partial.reference = Some(r),
            Err(v) => {
                return Ok(assemble(
                    opts,
                    run_id,
                    started_at,
                    source_text,
                    harness,
                    v,
                    partial,
                ))
            }
        }
    }
    // From here on, the options as placed on cores and scaled to the reference.
    let opts = &placed;

    let verdict = match &opts.source {
        Source::Url(url) => {
            let target = Target::new(url, &opts.grader.grader.http);
            let v = tokio::select! {
                v = grade_target(opts, &target, None, &mut partial, &events) => v,
                _ = cancel.cancelled() => Verdict::Interrupted,
            };
            partial.collect_phase_timings();
            v
        }
        Source::Submission(_) | Source::Git { .. } => {
            match vet_submission(opts, &mut partial, &events).await? {
                Err(v) => v,
                Ok((ctx, bases)) => {
                    let run = SandboxRun {
                        opts,
                        run_id: &run_id,
                        events: &events,
                        cancel: &cancel,
                    };
                    run.grade(ctx, bases, &mut partial, &mut harness).await
                }
            }
        }
    };
    Ok(assemble(
        opts,
        run_id,
        started_at,
        source_text,
        harness,
        verdict,
        partial,
    ))
}

/// Intake and the Dockerfile check: the submission's build context and its base images, or
/// the verdict that ends the run. `Err` only for a usage error (nothing ran yet).
async fn vet_submission(
    opts: &GradeOptions,
    partial: &mut Partial,
    events: &Events,
) -> Result<Result<(intake::BuildContext, Vec<String>), Verdict>, UsageError> {
    let t = scenario::start_stage(events, Stage::Intake);
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
    partial.time(Stage::Intake, t, events);
    let ctx = match intake_result {
        Err(e) if e.is_usage_error() => return Err(UsageError(e.to_string())),
        // Could not fetch the repository: neither a grade nor the candidate's fault.
        Err(e @ IntakeError::Fetch { .. }) => {
            return Ok(Err(Verdict::Infrastructure {
                verdict: "fetch_failed".into(),
                reason: e.to_string(),
            }))
        }
        Err(e) => {
            return Ok(Err(Verdict::submission(
                "archive_rejected",
                format!("the submission was rejected: {e}"),
            )))
        }
        Ok(ctx) => ctx,
    };
    partial.context = Some((ctx.kind, ctx.sha256.clone(), ctx.files, ctx.bytes));
    partial.commit = ctx.commit.clone();
    let allowed = &opts.grader.grader.submission.allowed_base_images;
    Ok(match dockerfile::check(&ctx.dockerfile, allowed) {
        Err(violations) => {
            let reason = violations
                .iter()
                .map(|v| format!("Dockerfile line {}: {}", v.line, v.message))
                .collect::<Vec<_>>()
                .join("; ");
            Err(Verdict::submission(violations[0].verdict, reason))
        }
        Ok(bases) => Ok((ctx, bases)),
    })
}

/// What a run in the sandbox needs besides the submission itself.
struct SandboxRun<'a> {
    opts: &'a GradeOptions,
    run_id: &'a str,
    events: &'a Events,
    cancel: &'a CancellationToken,
}

impl SandboxRun<'_> {
    /// Connects to the engine, builds and grades the submission (until done or cancelled),
    /// then reads the container's end and removes everything the run created.
    async fn grade(
        &self,
        ctx: intake::BuildContext,
        bases: Vec<String>,
        partial: &mut Partial,
        harness: &mut Harness,
    ) -> Verdict {
        let (opts, run_id, events) = (self.opts, self.run_id, self.events);
        let engine = match Engine::connect().await {
            Err(e) => return Verdict::engine(&e),
            Ok(engine) => engine,
        };
        harness.engine_version = engine.info.version.clone();
        harness.engine_api_version = engine.info.api_version.clone();
        harness.runc_version = engine.info.runc_version.clone();
        harness.engine_os = engine.info.os.clone();
        if let Some(w) = engine.info.runc_warning() {
            partial.warn(events, w);
        }
        let v = tokio::select! {
            v = build_and_grade(opts, &engine, run_id, ctx, bases, partial, events) => v,
            _ = self.cancel.cancelled() => Verdict::Interrupted,
        };
        partial.collect_phase_timings();
        finish_container(&engine, partial).await;
        let t = scenario::start_stage(events, Stage::Cleanup);
        let removed = cleanup::remove_run(&engine, run_id, opts.keep_image).await;
        release_build_cgroup(partial).await;
        if !removed.errors.is_empty() {
            let w = format!(
                "cleanup could not remove everything of run {run_id} (run `proctor gc`): {}",
                removed.errors.join("; ")
            );
            partial.warn(events, w);
        }
        partial.time(Stage::Cleanup, t, events);
        v
    }
}

/// Build, start, then grade the running container.
async fn build_and_grade(
    opts: &GradeOptions,
    engine: &Engine,
    run_id: &str,
    ctx: intake::BuildContext,
    bases: Vec<String>,
    partial: &mut Partial,
    events: &Events,
) -> Verdict {
    // Leftovers of runs that were killed before they could clean up.
    if let Ok((swept, removed)) = cleanup::sweep(engine, false).await {
        if !swept.is_empty() {
            events.event(&Event::Info(format!(
                "removed leftovers of {} earlier run(s): {} container(s), {} network(s), {} image(s)",
                swept.len(),
                removed.containers,
                removed.networks,
                removed.images
            )));
        }
    }
    for base in &bases {
        if let Err(e) = engine.docker.inspect_image(base).await {
            let missing = matches!(
                e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                }
            );
            return if missing {
                Verdict::Infrastructure {
                    verdict: "base_image_missing".into(),
                    reason: format!(
                        "the allowed base image {base} is not on this machine; build it with `bash docker/base/build.sh` (see docker/base/README.md)"
                    ),
                }
            } else {
                Verdict::engine(&EngineError::api(format!("inspect base image {base}"), e))
            };
        }
    }

    let t = scenario::start_stage(events, Stage::Build);
    let rules = &opts.grader.grader.submission;
    partial.build_cgroup = if engine.info.local {
        build_cgroup::create(
            run_id,
            rules.build_pids_limit,
            engine.info.cgroup_driver.as_deref(),
        )
        .map_err(|e| {
            partial.warn(
                events,
                format!("the build runs without a process limit ({e}); `proctor doctor` explains"),
            )
        })
        .ok()
    } else {
        partial.warn(
            events,
            "the build runs without a process limit: the engine is not on this machine".into(),
        );
        None
    };
    let limits = BuildLimits {
        timeout: opts
            .build_timeout
            .unwrap_or(Duration::from_secs(rules.build_timeout_secs)),
        memory: (rules.build_memory_mb * 1024 * 1024) as i32,
        max_output_bytes: rules.max_build_output_mb * 1024 * 1024,
        max_image_bytes: rules.max_image_mb * 1024 * 1024,
        cgroup_parent: partial.build_cgroup.as_ref().map(|c| c.parent()),
        ..BuildLimits::default()
    };
    let tag = format!("proctor/submission:{run_id}");
    let built = build::build(engine, ctx.tar, &tag, run_id, &limits, events).await;
    release_build_cgroup(partial).await;
    partial.time(Stage::Build, t, events);
    let built = match built {
        Err(e) => return Verdict::engine(&e),
        Ok(Err(failure)) => {
            partial.build_log_tail = Some(failure.log_tail);
            return Verdict::submission(failure.verdict, failure.reason);
        }
        Ok(Ok(b)) => b,
    };
    partial.build_log_tail = Some(built.log_tail.clone());
    partial.image = Some(ImageInfo {
        id: built.image_id.clone(),
        base_images: bases,
        size_bytes: built.size_bytes,
    });

    let t = scenario::start_stage(events, Stage::Start);
    let running = container::start(engine, &built.tag, run_id, &opts.grader.grader.sandbox).await;
    partial.time(Stage::Start, t, events);
    let running = match running {
        Ok(r) => r,
        Err(e) => return Verdict::engine(&e),
    };
    partial.container_id = Some(running.container_id.clone());
    if let Err(why) = &running.host_isolation {
        partial.warn(
            events,
            format!(
                "the service can reach ports on this machine ({why}); run proctor as root on \
                 the engine's machine, with iptables, to close them"
            ),
        );
    }
    partial.monitor = Some(Monitor::start(engine, &running.container_id));
    let url = format!(
        "http://{}:{}",
        running.ip, opts.grader.grader.submission.port
    );
    let target = Target::new(&url, &opts.grader.grader.http);
    grade_target(
        opts,
        &target,
        Some((engine, running.container_id.as_str())),
        partial,
        events,
    )
    .await
}

/// Readiness, then the phases. With a container, each stage races its exit: a service that
/// dies is reported as such, with the points it earned before.
async fn grade_target(
    opts: &GradeOptions,
    target: &Target,
    container: Option<(&Engine, &str)>,
    partial: &mut Partial,
    events: &Events,
) -> Verdict {
    let g = &opts.grader.grader;
    let exited = || async {
        match container {
            Some((engine, id)) => container::wait_exit(engine, id).await,
            None => std::future::pending().await,
        }
    };

    let t = scenario::start_stage(events, Stage::Ready);
    let deadline = opts
        .ready_timeout
        .unwrap_or(Duration::from_secs(g.submission.ready_timeout_secs));
    let ready = tokio::select! {
        r = readiness::wait_ready(target, &g.readiness, deadline) => Ok(r),
        e = exited() => Err(e),
    };
    partial.time(Stage::Ready, t, events);
    let outcome = match ready {
        Err(Ok(mut exit)) => {
            exit.oom_killed |= partial
                .monitor
                .as_ref()
                .is_some_and(|m| m.snapshot().oom_kills > 0);
            let v = if exit.oom_killed {
                "oom_killed"
            } else {
                "exited"
            };
            let reason = format!("the service {} before it became ready", exit.describe());
            partial.exit = Some(exit);
            return Verdict::submission(v, reason);
        }
        Err(Err(e)) => return Verdict::engine(&e),
        Ok(o) => o,
    };
    let result = readiness::result(&g.readiness, g.grader.visibility, &outcome);
    scenario::emit_check(events, &result);
    partial.outcome.checks.push(result);
    if let ReadyOutcome::TimedOut { last } = outcome {
        return Verdict::submission(
            "never_ready",
            format!(
                "the service did not become ready within {}s (last probe: {last})",
                deadline.as_secs()
            ),
        );
    }

    let phases = scenario::run_phases(
        &opts.grader,
        target,
        opts.seed,
        events,
        &mut partial.outcome,
    );
    let died = tokio::select! {
        _ = phases => None,
        e = exited() => Some(e),
    };
    // The service may also have died during the very last request.
    let died = match (died, container) {
        (Some(d), _) => Some(d),
        (None, Some((engine, id))) => container::exit_info(engine, id).await.transpose(),
        (None, None) => None,
    };
    match died {
        None => invalid_latency(partial.outcome.latency.as_ref()).unwrap_or(Verdict::Graded),
        Some(Err(e)) => Verdict::engine(&e),
        Some(Ok(mut exit)) => {
            // A process killed for memory may leave the main one to exit cleanly (exit 0):
            // the kill is still what ended the service.
            exit.oom_killed |= partial
                .monitor
                .as_ref()
                .is_some_and(|m| m.snapshot().oom_kills > 0);
            let v = if exit.oom_killed {
                "oom_killed"
            } else {
                "crashed_during_grading"
            };
            let reason = format!(
                "the service {} while it was being graded; checks after that were not run",
                exit.describe()
            );
            partial.exit = Some(exit);
            Verdict::submission(v, reason)
        }
    }
}

/// Measures the reference (`measure_reference`) and widens the latency objectives of
/// `placed` by how much slower it ran here than the grader declares.
async fn scale_to_reference(
    opts: &GradeOptions,
    placed: &mut GradeOptions,
    path: &std::path::Path,
    events: &Events,
    cancel: &CancellationToken,
) -> Result<ReferenceLatency, Verdict> {
    let (ref_run, corrected) = measure_reference(opts, path, events, cancel).await?;
    let scales = match placed.grader.grader.latency.as_mut() {
        Some(l) => l.scale_to_reference(|p| percentile_of(&corrected, p)),
        None => Ok(Vec::new()),
    }
    .map_err(|reason| Verdict::Infrastructure {
        verdict: "latency_measurement_invalid".into(),
        reason,
    })?;
    Ok(ReferenceLatency {
        submission: path.display().to_string(),
        run_id: ref_run,
        corrected,
        objectives: scales
            .into_iter()
            .map(|(name, declared_ms, measured_ms, factor)| ReferenceScale {
                name,
                declared_ms,
                measured_ms,
                factor: (factor * 1000.0).round() / 1000.0,
            })
            .collect(),
    })
}

/// Grades the reference submission with readiness, the scripted checks and the latency load
/// (no model phases, no search) and returns its run id and corrected latency. Whatever keeps it from a valid measurement is the
/// grading machine's or the grader's problem, never the candidate's: an infrastructure error.
async fn measure_reference(
    opts: &GradeOptions,
    path: &std::path::Path,
    events: &Events,
    cancel: &CancellationToken,
) -> Result<(String, Percentiles), Verdict> {
    // The scripted checks stay, so that the reference is as warm as the candidate when its
    // load starts; the model phases and the search are left out (they come after, or do not
    // bear on the latency load).
    let mut grader = opts.grader.clone();
    let g = &mut grader.grader;
    (g.quality, g.consistency, g.drift, g.metrics) = (None, None, None, None);
    if let Some(l) = g.latency.as_mut() {
        l.search = None;
    }
    let reference = GradeOptions {
        source: Source::Submission(path.to_path_buf()),
        grader,
        keep_image: false,
        latency_reference: None,
        ..opts.clone()
    };
    events.event(&Event::Info(format!(
        "measuring the reference submission {} under the same load first",
        path.display()
    )));
    let failed = |why: String| Verdict::Infrastructure {
        verdict: "reference_failed".into(),
        reason: format!(
            "the latency reference {} could not be measured: {why}",
            path.display()
        ),
    };
    // Boxed: the pipeline runs itself once for the reference.
    let report = Box::pin(grade(&reference, events.clone(), cancel.clone()))
        .await
        .map_err(|e| failed(e.0))?;
    if report.verdict.as_deref() == Some("interrupted") {
        return Err(Verdict::Interrupted);
    }
    match (report.status, report.latency) {
        // Fast failures (refused connections, 500s) are no measure of the machine.
        (Status::Graded, Some(l)) if l.valid && l.ok as f64 >= 0.99 * l.requests as f64 => {
            Ok((report.run_id, l.corrected))
        }
        (Status::Graded, Some(l)) if l.valid => Err(failed(format!(
            "only {} of its {} requests under load succeeded",
            l.ok, l.requests
        ))),
        (_, l) => Err(failed(format!(
            "{} ({})",
            report.verdict.as_deref().unwrap_or(if l.is_none() {
                "no latency measured"
            } else {
                "invalid measurement"
            }),
            report.reason
        ))),
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

/// A latency measurement the load generator could not keep on schedule, even on a second
/// attempt, is the machine's failure: grading on it would blame the candidate for the machine.
/// The latency section stays in the report for diagnosis.
fn invalid_latency(latency: Option<&LatencyReport>) -> Option<Verdict> {
    let l = latency.filter(|l| !l.valid)?;
    Some(Verdict::Infrastructure {
        verdict: "latency_measurement_invalid".into(),
        reason: format!(
            "the latency measurement is invalid after {} attempt{}: {}; regrade on a quieter \
             machine, or give the load generator cores of its own ([sandbox] cpuset = \"auto\")",
            l.attempts,
            if l.attempts == 1 { "" } else { "s" },
            l.invalid_reasons.join("; ")
        ),
    })
}

/// Removes the build's cgroup once the engine has stopped the build's last step: right away
/// after a finished build, a moment later after a timeout or Ctrl-C.
async fn release_build_cgroup(partial: &mut Partial) {
    if let Some(c) = &partial.build_cgroup {
        c.release(Duration::from_secs(15)).await;
    }
    partial.build_cgroup = None;
}

/// Reads the container's final state and log tail before cleanup removes it.
async fn finish_container(engine: &Engine, partial: &mut Partial) {
    let Some(id) = partial.container_id.as_deref() else {
        return;
    };
    if partial.exit.is_none() {
        partial.exit = container::exit_info(engine, id).await.ok().flatten();
    }
    if let Some(m) = partial.monitor.take() {
        partial.peaks = m.stop();
    }
    partial.log_tail = Some(container::log_tail(engine, id, 200, 16 * 1024).await);
}

/// Every declared check that did not get to run, as a zero with the reason: the score of a run
/// cut short is out of the full points, not just of the checks that ran.
fn not_run_checks(opts: &GradeOptions, ran: &[CheckResult], why: &str) -> Vec<CheckResult> {
    scenario::declared_checks(&opts.grader)
        .into_iter()
        .filter(|d| !ran.iter().any(|r| d.is(r)))
        .map(|d| d.failed(format!("not run: {why}")))
        .collect()
}

fn assemble(
    opts: &GradeOptions,
    run_id: String,
    started_at: String,
    source_text: String,
    harness: Harness,
    verdict: Verdict,
    partial: Partial,
) -> Report {
    let mut checks = partial.outcome.checks;
    let sandbox = &opts.grader.grader.sandbox;
    let mut warnings = partial.warnings;
    if partial.container_id.is_some() {
        warnings.extend(monitor::limit_warnings(
            &partial.peaks,
            sandbox.pids_limit,
            sandbox.memory_mb * 1024 * 1024,
        ));
    }
    let (status, reason, verdict_name) = match verdict {
        Verdict::Graded => (Status::Graded, String::new(), None),
        Verdict::Submission { verdict, reason } => (Status::SubmissionError, reason, Some(verdict)),
        Verdict::Infrastructure { verdict, reason } => (
            Status::InfrastructureError,
            format!("{reason} (this is a failure of the grading machine, not of the submission)"),
            Some(verdict),
        ),
        Verdict::Interrupted => (
            Status::InfrastructureError,
            "grading was interrupted before it finished; this is not a grade".to_string(),
            Some("interrupted".to_string()),
        ),
    };
    let why = match status {
        Status::Graded => String::new(),
        _ => reason.clone(),
    };
    if status != Status::Graded {
        let missing = not_run_checks(opts, &checks, &why);
        checks.extend(missing);
    }
    let (score, categories) = crate::score::score(&checks);
    let (kind, context_sha256, files, bytes) = match (&opts.source, partial.context) {
        (Source::Url(_), _) => ("url".to_string(), None, None, None),
        (_, Some((k, sha, f, b))) => (k.as_str().to_string(), Some(sha), Some(f), Some(b)),
        (Source::Git { .. }, None) => ("git".to_string(), None, None, None),
        (Source::Submission(p), None) => (
            if p.is_dir() { "directory" } else { "archive" }.to_string(),
            None,
            None,
            None,
        ),
    };
    Report {
        schema_version: SCHEMA_VERSION,
        run_id,
        status,
        reason,
        verdict: verdict_name,
        // A harness failure is never a grade, not even a partial one.
        score: (status != Status::InfrastructureError).then_some(score),
        categories: if status == Status::InfrastructureError {
            Vec::new()
        } else {
            categories
        },
        checks,
        latency: partial.outcome.latency.map(|mut l| {
            l.reference = partial.reference;
            l
        }),
        quality: partial.outcome.quality,
        consistency: partial.outcome.consistency,
        drift: partial.outcome.drift,
        monitoring: partial.outcome.monitoring,
        timings: partial.timings,
        harness,
        submission: SubmissionInfo {
            commit: partial.commit,
            source: source_text,
            kind,
            context_sha256,
            files,
            bytes,
        },
        image: partial.image,
        grader: GraderInfo {
            name: opts.grader.grader.grader.name.clone(),
            assignment: opts.grader.grader.grader.assignment.clone(),
            path: opts.grader.path.display().to_string(),
            sha256: opts.grader.sha256.clone(),
        },
        seed: opts.seed,
        container: partial.container_id.map(|_| ContainerInfo {
            exit_code: partial.exit.as_ref().and_then(|e| e.exit_code),
            oom_killed: partial.exit.as_ref().map(|e| e.oom_killed),
            oom_kills: partial.peaks.oom_kills,
            memory_peak_bytes: partial.peaks.memory_bytes,
            memory_limit_bytes: sandbox.memory_mb * 1024 * 1024,
            pids_peak: partial.peaks.pids,
            pids_limit: sandbox.pids_limit,
            log_tail: partial.log_tail.unwrap_or_default(),
        }),
        build_log_tail: partial.build_log_tail,
        warnings,
        started_at,
        finished_at: now_rfc3339(),
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_latency_measurement_is_the_machines_failure() {
        let spec: crate::grader::LatencySpec =
            toml::from_str("path = \"/\"\nrate = 50\nduration_secs = 10\n").unwrap();
        let mut l = scenario::latency::empty_report(&spec);
        l.attempts = 2;
        l.invalid_reasons =
            vec!["the load generator sent 3.0% of requests more than 1 ms late".into()];
        match invalid_latency(Some(&l)) {
            Some(Verdict::Infrastructure { verdict, reason }) => {
                assert_eq!(verdict, "latency_measurement_invalid");
                assert!(
                    reason.contains("after 2 attempts: the load generator sent 3.0%"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        l.valid = true;
        l.invalid_reasons.clear();
        assert!(invalid_latency(Some(&l)).is_none());
        assert!(invalid_latency(None).is_none());
    }
}
