//! What the pipeline needs of a sandbox, as a trait: the real one is the sandbox's `Session`
//! (the engine), and the pipeline's tests drive the same code with a fake one, so that the
//! order of stages, the verdicts and the cleanup on every way out are tested in seconds without
//! Docker.

use std::time::Duration;

use futures_util::future::BoxFuture;

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
}
