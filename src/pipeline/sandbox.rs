//! What the pipeline needs of a sandbox, as a trait: the real one is the sandbox's `Session`
//! (the engine), and the pipeline's tests drive the same code with a fake one, so that the
//! order of stages, the verdicts and the cleanup on every way out are tested in seconds without
//! Docker.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::control::{Beside, Command, CommandOutcome, Signalled, Startup, Usage};
use crate::events::Events;
use crate::grader::{SandboxLimits, SubmissionRules};
use crate::sandbox::build::{BuildFailure, Built};
use crate::sandbox::container::ExitInfo;
use crate::sandbox::{BaseImageError, ContainerFacts, EngineError, EngineInfo, Service, Session};

pub trait Sandbox: Send + Sync {
    fn info(&self) -> &EngineInfo;

    /// Removes what killed runs left; a line saying what went, if anything did.
    fn sweep_leftovers(&self) -> BoxFuture<'_, Option<String>>;

    fn check_base_images<'a>(
        &'a self,
        bases: &'a [String],
    ) -> BoxFuture<'a, Result<(), BaseImageError>>;

    /// `Ok(Err(_))` is the submission's failure, `Err(_)` the engine's.
    fn build<'a>(
        &'a mut self,
        context: Vec<u8>,
        rules: &'a SubmissionRules,
        timeout: Duration,
        events: &'a Events,
        warnings: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Result<Built, BuildFailure>, EngineError>>;

    fn start<'a>(
        &'a mut self,
        built: &'a Built,
        limits: &'a SandboxLimits,
        port: u16,
        warnings: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Service, EngineError>>;

    /// Resolves when the service stops; never when there is none.
    fn wait_exit(&self) -> BoxFuture<'_, Result<ExitInfo, EngineError>>;

    /// The service's exit if it has stopped already.
    fn exited(&self) -> BoxFuture<'_, Result<Option<ExitInfo>, EngineError>>;

    fn saw_exit(&mut self, exit: ExitInfo);

    /// The container's end (exit, peaks, log tail), read before cleanup.
    fn finish(&mut self) -> BoxFuture<'_, Option<ContainerFacts>>;

    /// Removes everything the run created; what could not be removed.
    fn close(self: Box<Self>) -> BoxFuture<'static, Vec<String>>;

    // What the phases may do to the service beyond HTTP (`control::ServiceControl`). A sandbox
    // that cannot (the tests' fake) says so; a phase that asks then stops the run as the
    // machine's failure.

    /// Keeps the vetted build context for `run_review`.
    fn keep_review_context(&mut self, _tar: Vec<u8>) {}

    /// Records the service's start once it answered ready (with its memory, when asked).
    fn note_ready(&self, _memory: bool) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async { Ok(()) })
    }

    fn startup(&self) -> Startup {
        Startup::default()
    }

    fn image_size(&self) -> Option<u64> {
        None
    }

    fn signal<'a>(&'a self, _signal: &'a str) -> BoxFuture<'a, Result<Signalled, EngineError>> {
        Box::pin(async { Err(unsupported("signal the service")) })
    }

    fn wait_stopped(
        &self,
        _limit: Duration,
    ) -> BoxFuture<'_, Result<Option<(ExitInfo, Duration)>, EngineError>> {
        Box::pin(async { Err(unsupported("wait for the service to stop")) })
    }

    fn restart(&self) -> BoxFuture<'_, Result<String, EngineError>> {
        Box::pin(async { Err(unsupported("start the service again")) })
    }

    fn usage(&self) -> BoxFuture<'_, Result<Usage, EngineError>> {
        Box::pin(async { Err(unsupported("read the service's usage")) })
    }

    fn run_in_image<'a>(
        &'a self,
        _command: &'a Command,
    ) -> BoxFuture<'a, Result<CommandOutcome, EngineError>> {
        Box::pin(async { Err(unsupported("run a command in the image")) })
    }

    /// Builds the reference submission beside the candidate (`Ok(Err(_))`: it did not build).
    fn build_reference<'a>(
        &'a mut self,
        _context: Vec<u8>,
        _rules: &'a SubmissionRules,
        _timeout: Duration,
        _events: &'a Events,
        _warnings: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Result<Built, BuildFailure>, EngineError>> {
        Box::pin(async { Err(unsupported("build the reference")) })
    }

    /// Starts a service beside the candidate's (none for the reference when none was built).
    fn start_beside(&self, which: Beside) -> BoxFuture<'_, Result<Option<String>, EngineError>> {
        Box::pin(async move {
            match which {
                Beside::Reference => Ok(None),
                Beside::Yardstick => Err(unsupported("start proctor's yardstick")),
            }
        })
    }

    fn stop_beside(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async { Ok(()) })
    }

    fn cpu_time(&self) -> BoxFuture<'_, Result<u64, EngineError>> {
        Box::pin(async { Ok(self.usage().await?.cpu_ns) })
    }

    fn beside_cpu_time(&self) -> BoxFuture<'_, Result<u64, EngineError>> {
        Box::pin(async { Err(unsupported("read the CPU time of the service beside")) })
    }

    fn run_review<'a>(
        &'a self,
        _command: &'a Command,
    ) -> BoxFuture<'a, Result<CommandOutcome, EngineError>> {
        Box::pin(async { Err(unsupported("run the review")) })
    }
}

fn unsupported(action: &str) -> EngineError {
    EngineError::api(action, "this sandbox cannot")
}

impl Sandbox for Session {
    fn info(&self) -> &EngineInfo {
        Session::info(self)
    }

    fn sweep_leftovers(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(crate::gc::sweep_leftovers(self.engine()))
    }

    fn check_base_images<'a>(
        &'a self,
        bases: &'a [String],
    ) -> BoxFuture<'a, Result<(), BaseImageError>> {
        Box::pin(Session::check_base_images(self, bases))
    }

    fn build<'a>(
        &'a mut self,
        context: Vec<u8>,
        rules: &'a SubmissionRules,
        timeout: Duration,
        events: &'a Events,
        warnings: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Result<Built, BuildFailure>, EngineError>> {
        Box::pin(Session::build(
            self, context, rules, timeout, events, warnings,
        ))
    }

    fn start<'a>(
        &'a mut self,
        built: &'a Built,
        limits: &'a SandboxLimits,
        port: u16,
        warnings: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Service, EngineError>> {
        Box::pin(Session::start(self, built, limits, port, warnings))
    }

    fn wait_exit(&self) -> BoxFuture<'_, Result<ExitInfo, EngineError>> {
        Box::pin(Session::wait_exit(self))
    }

    fn exited(&self) -> BoxFuture<'_, Result<Option<ExitInfo>, EngineError>> {
        Box::pin(Session::exited(self))
    }

    fn saw_exit(&mut self, exit: ExitInfo) {
        Session::saw_exit(self, exit)
    }

    fn finish(&mut self) -> BoxFuture<'_, Option<ContainerFacts>> {
        Box::pin(Session::finish(self))
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, Vec<String>> {
        Box::pin(Session::close(*self))
    }

    fn keep_review_context(&mut self, tar: Vec<u8>) {
        Session::keep_review_context(self, tar)
    }

    fn note_ready(&self, memory: bool) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(Session::note_ready(self, memory))
    }

    fn startup(&self) -> Startup {
        Session::startup(self)
    }

    fn image_size(&self) -> Option<u64> {
        Session::image_size(self)
    }

    fn signal<'a>(&'a self, signal: &'a str) -> BoxFuture<'a, Result<Signalled, EngineError>> {
        Box::pin(Session::signal(self, signal))
    }

    fn wait_stopped(
        &self,
        limit: Duration,
    ) -> BoxFuture<'_, Result<Option<(ExitInfo, Duration)>, EngineError>> {
        Box::pin(Session::wait_stopped(self, limit))
    }

    fn restart(&self) -> BoxFuture<'_, Result<String, EngineError>> {
        Box::pin(Session::restart(self))
    }

    fn usage(&self) -> BoxFuture<'_, Result<Usage, EngineError>> {
        Box::pin(Session::usage(self))
    }

    fn run_in_image<'a>(
        &'a self,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<CommandOutcome, EngineError>> {
        Box::pin(Session::run_in_image(self, command))
    }

    fn build_reference<'a>(
        &'a mut self,
        context: Vec<u8>,
        rules: &'a SubmissionRules,
        timeout: Duration,
        events: &'a Events,
        warnings: &'a mut Vec<String>,
    ) -> BoxFuture<'a, Result<Result<Built, BuildFailure>, EngineError>> {
        Box::pin(Session::build_reference(
            self, context, rules, timeout, events, warnings,
        ))
    }

    fn start_beside(&self, which: Beside) -> BoxFuture<'_, Result<Option<String>, EngineError>> {
        Box::pin(Session::start_beside(self, which))
    }

    fn stop_beside(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(Session::stop_beside(self))
    }

    fn cpu_time(&self) -> BoxFuture<'_, Result<u64, EngineError>> {
        Box::pin(Session::cpu_time(self))
    }

    fn beside_cpu_time(&self) -> BoxFuture<'_, Result<u64, EngineError>> {
        Box::pin(Session::beside_cpu_time(self))
    }

    fn run_review<'a>(
        &'a self,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<CommandOutcome, EngineError>> {
        Box::pin(Session::run_review(self, command))
    }
}

/// The sandbox as the phases see it (`control::ServiceControl`): engine failures become the
/// machine's failures, with the verdict that names them.
pub struct Control<'a>(pub &'a dyn Sandbox);

fn machine(e: EngineError) -> crate::control::MachineError {
    crate::control::MachineError {
        verdict: e.verdict(),
        reason: e.to_string(),
    }
}

impl crate::control::ServiceControl for Control<'_> {
    fn signal<'a>(
        &'a self,
        signal: &'a str,
    ) -> BoxFuture<'a, Result<Signalled, crate::control::MachineError>> {
        Box::pin(async move { self.0.signal(signal).await.map_err(machine) })
    }

    fn wait_stopped(
        &self,
        limit: Duration,
    ) -> BoxFuture<'_, Result<Option<crate::control::Stopped>, crate::control::MachineError>> {
        Box::pin(async move {
            Ok(self
                .0
                .wait_stopped(limit)
                .await
                .map_err(machine)?
                .map(|(exit, after)| crate::control::Stopped {
                    exit_code: exit.exit_code,
                    after,
                }))
        })
    }

    fn restart(&self) -> BoxFuture<'_, Result<String, crate::control::MachineError>> {
        Box::pin(async move { self.0.restart().await.map_err(machine) })
    }

    fn usage(&self) -> BoxFuture<'_, Result<Usage, crate::control::MachineError>> {
        Box::pin(async move { self.0.usage().await.map_err(machine) })
    }

    fn startup(&self) -> Startup {
        self.0.startup()
    }

    fn image_size(&self) -> Option<u64> {
        self.0.image_size()
    }

    fn start_beside(
        &self,
        which: Beside,
    ) -> BoxFuture<'_, Result<Option<String>, crate::control::MachineError>> {
        Box::pin(async move { self.0.start_beside(which).await.map_err(machine) })
    }

    fn stop_beside(&self) -> BoxFuture<'_, Result<(), crate::control::MachineError>> {
        Box::pin(async move { self.0.stop_beside().await.map_err(machine) })
    }

    fn cpu_time(&self) -> BoxFuture<'_, Result<u64, crate::control::MachineError>> {
        Box::pin(async move { self.0.cpu_time().await.map_err(machine) })
    }

    fn beside_cpu_time(&self) -> BoxFuture<'_, Result<u64, crate::control::MachineError>> {
        Box::pin(async move { self.0.beside_cpu_time().await.map_err(machine) })
    }

    fn run_in_image<'a>(
        &'a self,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<CommandOutcome, crate::control::MachineError>> {
        Box::pin(async move { self.0.run_in_image(command).await.map_err(machine) })
    }

    fn run_review<'a>(
        &'a self,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<CommandOutcome, crate::control::MachineError>> {
        Box::pin(async move { self.0.run_review(command).await.map_err(machine) })
    }
}
