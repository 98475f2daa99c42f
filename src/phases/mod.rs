//! The phases: each one drives the target with what the grader file declares and returns check
//! results and a report section. They only see a `Target` (a base URL and a hardened client),
//! never Docker, so the same phases grade a started container or a `--url`.
//!
//! Every phase is one file implementing `Phase`, listed once in `registry()`; the runner
//! (`run_phases`), the list of declared checks and the latency reference's selection all come
//! from that list. Readiness is not in it: it gates the rest and races the container's exit, so
//! the pipeline runs it first (`readiness`).
//!
//! Each phase has a time budget derived from what it declares (requests, durations, the request
//! timeout). The runner stops a phase past its budget and scores the checks it had not finished
//! as zero with that reason, so a service that hangs or drips costs that phase, not hours.

pub mod checks;
pub mod consistency;
pub mod cost;
pub mod drift;
pub mod invariants;
pub mod latency;
pub mod lifecycle;
pub mod monitoring;
pub mod predict;
pub mod probes;
pub mod quality;
pub mod readiness;
pub mod review;
pub mod suite;

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{CheckResult, DeclaredCheck};
use crate::control::{MachineError, ServiceControl};
use crate::events::{Event, Events, Stage, StageTimer};
use crate::grader::LoadedGrader;
use crate::plan::{Purpose, RunPlan};
use crate::report::{
    ConsistencyReport, CostReport, DriftReport, InvariantsReport, LatencyReport, LifecycleReport,
    MonitoringReport, ProbesReport, QualityReport, ReviewReport, StageTiming, TestsReport,
};
use crate::target::Target;

/// Every phase after readiness, in the order they run. Drift runs after the other traffic and
/// flushes the service's window itself; monitoring counts what it sends itself.
pub fn registry() -> &'static [&'static dyn Phase] {
    &[
        &checks::Scripted,
        &probes::Probes,
        &quality::Quality,
        &consistency::Consistency,
        &invariants::Invariants,
        &latency::Latency,
        &cost::Cost,
        &drift::Drift,
        &monitoring::Monitoring,
        &suite::Suite,
        &review::ReviewPhase,
        &lifecycle::Lifecycle,
    ]
}

/// What a phase needs of the target beyond HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Requests only: runs against a container and against `--url` alike.
    Http,
    /// The container itself (to signal it, read its cgroup): with `--url` the phase is not
    /// applicable, and its checks are listed as such, never failed.
    Container,
}

/// What every phase gets to run.
pub struct Context<'a> {
    pub target: &'a Target,
    pub grader: &'a LoadedGrader,
    pub plan: &'a RunPlan,
    pub events: &'a Events,
    /// The container this run started, for the phases that need more than HTTP; none with
    /// `--url`.
    pub container: Option<&'a dyn ServiceControl>,
    /// The vetted submission, for the static review; none with `--url`.
    pub submission: Option<&'a Submitted>,
    /// What earlier phases of this grader left for later ones.
    pub handoff: &'a Handoff,
}

impl Context<'_> {
    /// Whether the target is a container this run started (not a `--url`).
    pub fn has_container(&self) -> bool {
        self.container.is_some()
    }
}

/// The submission as intake vetted it: the build context the engine built, for the review.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The canonical tar of the build context.
    pub tar: Vec<u8>,
    pub dockerfile: String,
    /// A git source's bounded history, when a grader asked for it (`[review.history]`).
    pub history: Option<crate::intake::History>,
}

/// What one phase leaves for a later one of the same grader: data flows forward only (the
/// latency phase measures what its load cost the container; the cost phase scores it).
#[derive(Debug, Default)]
pub struct Handoff {
    pub load_usage: std::sync::Mutex<Option<LoadUsage>>,
}

/// What the container used while the latency phase's fixed-rate load ran.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadUsage {
    /// Requests sent, the warm-up's included.
    pub requests: u64,
    /// How long the load ran, warm-up included.
    pub seconds: f64,
    pub before: crate::control::Usage,
    pub after: crate::control::Usage,
}

/// A phase's own part of the report.
#[derive(Debug, Clone)]
pub enum Section {
    Quality(QualityReport),
    Consistency(ConsistencyReport),
    Invariants(InvariantsReport),
    Latency(Box<LatencyReport>),
    Drift(DriftReport),
    Monitoring(MonitoringReport),
    Probes(ProbesReport),
    Lifecycle(LifecycleReport),
    Cost(CostReport),
    Tests(TestsReport),
    Review(Box<ReviewReport>),
}

/// What a phase has produced so far. Phases write into it as they go, so that a phase stopped
/// at its budget (or by the service's death) keeps the checks it finished.
#[derive(Debug, Default)]
pub struct PhaseOutput {
    pub checks: Vec<CheckResult>,
    pub section: Option<Section>,
    /// The engine failed while the phase used the container: the run stops as the machine's
    /// failure, never as the candidate's zero.
    pub machine_failure: Option<MachineError>,
}

pub trait Phase: Sync {
    /// Its name in progress lines and the report's timings.
    fn name(&self) -> &'static str;

    /// Whether the grader declares this phase at all.
    fn declared(&self, grader: &LoadedGrader) -> bool;

    /// Every check it can produce, with its points: a run cut short lists those it did not
    /// reach, so that its score is out of the full total.
    fn checks(&self, grader: &LoadedGrader) -> Vec<DeclaredCheck>;

    /// How long it may take, from what it declares; see `budget_for`.
    fn budget(&self, grader: &LoadedGrader) -> Duration;

    fn needs(&self) -> Needs {
        Needs::Http
    }

    /// It measures latency, or times the service as closely, for this grader: it runs alone on
    /// this machine (`load::exclusive`), and the wait for that does not count against its
    /// budget.
    fn measures_latency(&self, _grader: &LoadedGrader) -> bool {
        false
    }

    /// It runs when the latency reference is measured.
    fn in_latency_reference(&self) -> bool {
        false
    }

    /// It stops the service (on purpose): it runs after every other phase of every grader of
    /// the run, so that none of them meets a service it stopped.
    fn disrupts(&self) -> bool {
        false
    }

    /// Runs the phase, writing checks (and its section) into `out` as they are graded.
    fn run<'a>(&'a self, cx: &'a Context<'a>, out: &'a mut PhaseOutput) -> BoxFuture<'a, ()>;
}

/// What a phase that sends `requests` requests holding `instances` instances in all may spend,
/// on top of the time it spends by design (`declared`: load durations): 25 ms per request and
/// 1 ms per instance (ten times what the assignment's reference needs on a busy two-core
/// machine), and three request timeouts, so a service that hangs on a few requests loses only
/// those. A service that keeps timing out does not fit: the phase is stopped. Never below ten
/// seconds, so a short phase is not cut by a slow start.
pub fn budget_for(
    declared: Duration,
    requests: usize,
    instances: usize,
    timeout: Duration,
) -> Duration {
    let work = PER_REQUEST * requests.min(u32::MAX as usize) as u32
        + PER_INSTANCE * instances.min(u32::MAX as usize) as u32;
    (declared + 3 * timeout + work).max(Duration::from_secs(10))
}

/// See `budget_for`.
const PER_REQUEST: Duration = Duration::from_millis(25);
const PER_INSTANCE: Duration = Duration::from_millis(1);

/// What the phases after readiness produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Checks of the phases that finished (or were stopped at their budget).
    pub checks: Vec<CheckResult>,
    /// The phase running now: kept here, not in the runner, so a run cut short (the service
    /// died, Ctrl-C) keeps what it had graded.
    pub running: PhaseOutput,
    pub latency: Option<LatencyReport>,
    pub quality: Option<QualityReport>,
    pub consistency: Option<ConsistencyReport>,
    pub invariants: Option<InvariantsReport>,
    pub drift: Option<DriftReport>,
    pub monitoring: Option<MonitoringReport>,
    pub probes: Option<ProbesReport>,
    pub lifecycle: Option<LifecycleReport>,
    pub cost: Option<CostReport>,
    pub tests: Option<TestsReport>,
    pub review: Option<Box<ReviewReport>>,
    /// Time spent in each phase that ran.
    pub timings: Vec<StageTiming>,
}

impl Outcome {
    /// Files the running phase's checks and section (also of a phase cut short).
    pub fn settle(&mut self) {
        let out = std::mem::take(&mut self.running);
        self.checks.extend(out.checks);
        match out.section {
            Some(Section::Quality(r)) => self.quality = Some(r),
            Some(Section::Consistency(r)) => self.consistency = Some(r),
            Some(Section::Invariants(r)) => self.invariants = Some(r),
            Some(Section::Latency(r)) => self.latency = Some(*r),
            Some(Section::Drift(r)) => self.drift = Some(r),
            Some(Section::Monitoring(r)) => self.monitoring = Some(r),
            Some(Section::Probes(r)) => self.probes = Some(r),
            Some(Section::Lifecycle(r)) => self.lifecycle = Some(r),
            Some(Section::Cost(r)) => self.cost = Some(r),
            Some(Section::Tests(r)) => self.tests = Some(r),
            Some(Section::Review(r)) => self.review = Some(r),
            None => {}
        }
    }
}

/// The run could not go on, for a reason that is not the candidate's.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub verdict: crate::verdict::Verdict,
    pub reason: String,
}

/// How long a latency phase waits for another one on this machine to finish.
const LATENCY_LOCK_WAIT: Duration = Duration::from_secs(30 * 60);

/// The phases this run makes: all that the grader declares, or the latency reference's.
pub fn selected<'g>(
    grader: &'g LoadedGrader,
    plan: &'g RunPlan,
) -> impl Iterator<Item = &'static dyn Phase> + 'g {
    registry().iter().copied().filter(move |p| {
        p.declared(grader) && (plan.purpose == Purpose::Grade || p.in_latency_reference())
    })
}

/// Every check the grader declares, readiness first: what a run that stops early lists as not
/// run, so its score is out of the full total.
pub fn declared_checks(grader: &LoadedGrader, plan: &RunPlan) -> Vec<DeclaredCheck> {
    let mut out = vec![readiness::declared(grader)];
    for p in selected(grader, plan) {
        out.extend(p.checks(grader));
    }
    out
}

/// Runs the selected phases after readiness that stop the service (`disruptive`) or the others,
/// each within its budget. Checks land in `out` as each phase goes. `Err` when the machine
/// could not be had for a latency measurement, or the engine failed a phase.
pub async fn run_phases(
    cx: &Context<'_>,
    out: &mut Outcome,
    disruptive: bool,
) -> Result<(), Stopped> {
    let phases: Vec<&dyn Phase> = selected(cx.grader, cx.plan)
        .filter(|p| p.disrupts() == disruptive)
        .collect();
    run_each(cx, &phases, out).await
}

/// Runs `phases` in order, each within its budget.
async fn run_each(
    cx: &Context<'_>,
    phases: &[&dyn Phase],
    out: &mut Outcome,
) -> Result<(), Stopped> {
    for &phase in phases {
        let stage = Stage::Phase(phase.name());
        if phase.needs() == Needs::Container && !cx.has_container() {
            let why = "not applicable: this phase needs the container, and a --url service has \
                       none"
                .to_string();
            for d in phase.checks(cx.grader) {
                let mut r = d.failed(why.clone());
                // Not applicable is neither earned nor lost.
                r.max_points = 0.0;
                emit_check(cx.events, &r);
                out.checks.push(r);
            }
            continue;
        }
        // A measurement runs alone on the machine; other phases only keep out of its way.
        let waiting = std::time::Instant::now();
        let path = crate::load::exclusive::lock_path();
        let (_alone, _busy) = if phase.measures_latency(cx.grader) {
            let lock = crate::load::exclusive::measure_alone(&path, LATENCY_LOCK_WAIT, || {
                cx.events.event(&Event::Info(format!(
                    "{}: waiting for another latency measurement or build on this machine to \
                     finish",
                    phase.name()
                )))
            });
            let lock = lock.await.map_err(|e| Stopped {
                verdict: crate::verdict::Verdict::LatencyMeasurementInvalid,
                reason: e.to_string(),
            })?;
            (Some(lock), None)
        } else {
            (None, busy(&path, cx.events, phase.name()).await)
        };
        let lock_wait = waiting.elapsed();
        let budget = phase.budget(cx.grader);
        let timer = StageTimer::start(cx.events, stage);
        let finished = tokio::time::timeout(budget, phase.run(cx, &mut out.running))
            .await
            .is_ok();
        if !finished {
            cx.events.event(&Event::OutOfBudget { stage, budget });
            let why = format!(
                "not finished: the {} phase ran out of its time budget of {:.0}s (derived from \
                 its requests, durations and the request timeout) and was stopped",
                phase.name(),
                budget.as_secs_f64()
            );
            let missing: Vec<CheckResult> = phase
                .checks(cx.grader)
                .iter()
                .filter(|d| !out.running.checks.iter().any(|r| d.is(r)))
                .map(|d| d.failed(why.clone()))
                .collect();
            out.running.checks.extend(missing);
        }
        for r in &out.running.checks {
            emit_check(cx.events, r);
        }
        let failure = out.running.machine_failure.take();
        out.settle();
        let mut timing = timer.finish(cx.events);
        timing.budget_seconds = Some(budget.as_secs_f64().round());
        timing.out_of_budget = !finished;
        timing.lock_wait_seconds = crate::events::lock_wait(lock_wait);
        out.timings.push(timing);
        if let Some(e) = failure {
            return Err(Stopped {
                verdict: e.verdict,
                reason: format!("the {} phase could not go on: {}", phase.name(), e.reason),
            });
        }
    }
    Ok(())
}

/// The shared side of the latency lock for a stage that does not measure: it waits while a
/// measurement runs (or waits), so it does not disturb it. Best effort: when the lock cannot be
/// had in time, the stage runs anyway and says so.
pub async fn busy(
    path: &std::path::Path,
    events: &Events,
    stage: &str,
) -> Option<crate::load::exclusive::Busy> {
    let lock = crate::load::exclusive::busy(path, LATENCY_LOCK_WAIT, || {
        events.event(&Event::Info(format!(
            "{stage}: waiting for a latency measurement on this machine to finish"
        )))
    });
    match lock.await {
        Ok(b) => Some(b),
        Err(e) => {
            events.event(&Event::Warning(format!("{stage}: {e}; going on beside it")));
            None
        }
    }
}

pub fn emit_check(events: &Events, r: &CheckResult) {
    events.event(&Event::CheckFinished {
        name: r.name.clone(),
        points: r.points,
        max_points: r.max_points,
        passed: r.passed,
        message: r.message.clone(),
        hidden: r.visibility == crate::check::Visibility::Hidden,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Category, Visibility};

    /// A phase that grades one check, then hangs (or, with `needs` Container, is never run).
    struct Hangs(Needs);

    impl Phase for Hangs {
        fn name(&self) -> &'static str {
            "hangs"
        }
        fn declared(&self, _: &LoadedGrader) -> bool {
            true
        }
        fn checks(&self, _: &LoadedGrader) -> Vec<DeclaredCheck> {
            ["first", "second"]
                .map(|n| DeclaredCheck::new(n, Category::Drift, 2.0, Visibility::Visible))
                .to_vec()
        }
        fn budget(&self, _: &LoadedGrader) -> Duration {
            Duration::from_millis(100)
        }
        fn needs(&self) -> Needs {
            self.0
        }
        fn run<'a>(&'a self, _: &'a Context<'a>, out: &'a mut PhaseOutput) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                let mut first = self.checks(&fake_grader())[0].failed(String::new());
                (first.points, first.passed) = (2.0, true);
                out.checks.push(first);
                std::future::pending::<()>().await;
            })
        }
    }

    /// A container that can do nothing: these tests never ask it.
    struct NoControl;
    impl ServiceControl for NoControl {
        fn signal<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<crate::control::Signalled, MachineError>> {
            unimplemented!()
        }
        fn wait_stopped(
            &self,
            _: Duration,
        ) -> BoxFuture<'_, Result<Option<crate::control::Stopped>, MachineError>> {
            unimplemented!()
        }
        fn restart(&self) -> BoxFuture<'_, Result<String, MachineError>> {
            unimplemented!()
        }
        fn usage(&self) -> BoxFuture<'_, Result<crate::control::Usage, MachineError>> {
            unimplemented!()
        }
        fn startup(&self) -> crate::control::Startup {
            Default::default()
        }
        fn image_size(&self) -> Option<u64> {
            None
        }
        fn run_in_image<'a>(
            &'a self,
            _: &'a crate::control::Command,
        ) -> BoxFuture<'a, Result<crate::control::CommandOutcome, MachineError>> {
            unimplemented!()
        }
        fn run_review<'a>(
            &'a self,
            _: &'a crate::control::Command,
        ) -> BoxFuture<'a, Result<crate::control::CommandOutcome, MachineError>> {
            unimplemented!()
        }
    }

    fn fake_grader() -> LoadedGrader {
        crate::grader::fixtures::loaded(crate::grader::fixtures::MINIMAL)
    }

    async fn run_one(phase: &dyn Phase, has_container: bool) -> Outcome {
        let grader = fake_grader();
        let plan = RunPlan::new(&grader, 1, None, None);
        let target = Target::new("http://127.0.0.1:9", &grader.grader.http);
        let events: Events = std::sync::Arc::new(crate::events::Silent);
        let handoff = Handoff::default();
        let control = NoControl;
        let cx = Context {
            target: &target,
            grader: &grader,
            plan: &plan,
            events: &events,
            container: has_container.then_some(&control as &dyn ServiceControl),
            submission: None,
            handoff: &handoff,
        };
        let mut out = Outcome::default();
        run_each(&cx, &[phase], &mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_phase_past_its_budget_keeps_what_it_graded_and_zeroes_the_rest() {
        let started = std::time::Instant::now();
        let out = run_one(&Hangs(Needs::Http), true).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not stopped at its budget"
        );
        assert_eq!(out.checks.len(), 2);
        assert_eq!(
            (out.checks[0].name.as_str(), out.checks[0].points),
            ("first", 2.0)
        );
        assert_eq!(
            (out.checks[1].name.as_str(), out.checks[1].points),
            ("second", 0.0)
        );
        assert!(
            out.checks[1].message.contains("ran out of its time budget"),
            "{}",
            out.checks[1].message
        );
        assert_eq!(out.timings.len(), 1);
        assert!(out.timings[0].out_of_budget);
        assert_eq!(out.timings[0].stage, "hangs");
    }

    #[tokio::test]
    async fn a_phase_that_needs_the_container_is_not_applicable_to_a_url() {
        let out = run_one(&Hangs(Needs::Container), false).await;
        assert_eq!(out.checks.len(), 2);
        for c in &out.checks {
            assert_eq!(
                (c.points, c.max_points),
                (0.0, 0.0),
                "neither earned nor lost"
            );
            assert!(c.message.starts_with("not applicable"), "{}", c.message);
        }
        assert!(out.timings.is_empty(), "it did not run");
    }

    #[test]
    fn budgets_grow_with_the_work_declared_and_allow_three_timeouts() {
        let t = Duration::from_secs(5);
        // Three timeouts and the floor.
        assert_eq!(budget_for(Duration::ZERO, 0, 0, t), Duration::from_secs(15));
        assert_eq!(
            budget_for(Duration::ZERO, 0, 0, Duration::from_millis(100)),
            Duration::from_secs(10)
        );
        // 400 requests of 50 instances: 10 s + 20 s on top.
        assert_eq!(
            budget_for(Duration::from_secs(12), 400, 20_000, t),
            Duration::from_secs(12 + 15 + 10 + 20)
        );
    }
}
