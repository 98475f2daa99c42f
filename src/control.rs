//! The service's container as the phases may use it beyond HTTP: signal it, wait for it to
//! stop, start it again, read its CPU and memory, run a command in a fresh container of its
//! image (the candidate's tests) or in proctor's review image (the linter). A capability, not
//! an engine: phases never see Docker. The pipeline hands one to the phases when it started a
//! container; with `--url` there is none, and the phases that need it are not applicable.
//!
//! Every method's `Err` is the machine's failure (the engine), never the candidate's: a phase
//! that meets one stops the run as an infrastructure error.

use std::time::Duration;

use futures_util::future::BoxFuture;

/// What a container has used so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// CPU time of every process in the container since it started, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, without the page cache the kernel can drop (as `docker stats` shows it).
    pub memory_bytes: u64,
    /// The highest memory use the kernel recorded, page cache included (cgroup v1 only).
    pub peak_memory_bytes: Option<u64>,
}

/// The service's start, as the run saw it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Startup {
    /// From the container's start to the first ready answer.
    pub cold_start: Option<Duration>,
    /// Memory in use at that moment.
    pub memory_bytes: Option<u64>,
}

/// When a signal reached the service: between `sent` and `delivered`. Sent straight to the
/// container's first process (`direct`), the two are microseconds apart; through the engine's
/// API, tens of milliseconds on a busy machine, and the signal landed somewhere in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signalled {
    pub sent: std::time::Instant,
    pub delivered: std::time::Instant,
    pub direct: bool,
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    pub exit_code: Option<i64>,
    pub after: Duration,
}

/// A command to run in a fresh, sandboxed container (no network, the service's memory, CPU and
/// process limits, read-only root, a tmpfs at /tmp, the sandbox user).
#[derive(Debug, Clone)]
pub struct Command {
    /// Names the container, e.g. `tests`.
    pub name: String,
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// Bytes of output kept (the end).
    pub max_output: usize,
    /// A file the command writes, read back afterwards (e.g. `/tmp/junit.xml`).
    pub read_file: Option<String>,
    pub max_file: usize,
}

/// How a command ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandOutcome {
    /// None when it was stopped at its deadline.
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub seconds: f64,
    /// The end of its output, sanitized.
    pub output_tail: String,
    pub output_bytes: u64,
    pub file: Option<Vec<u8>>,
    pub file_truncated: bool,
}

/// The engine failed while a phase used the container.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct MachineError {
    pub verdict: crate::verdict::Verdict,
    pub reason: String,
}

/// A service the cost phase runs beside the candidate's, to measure both under the same machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beside {
    /// The assignment's reference submission, built in this run (`--latency-reference`).
    Reference,
    /// proctor's yardstick (`docker/yardstick`): a fixed amount of work per request, whatever
    /// the request, so that its CPU per request measures the machine's speed.
    Yardstick,
}

impl Beside {
    /// Its name in the report (`cost.paired.against`), in messages and in its container's name.
    pub fn name(self) -> &'static str {
        match self {
            Beside::Reference => "reference",
            Beside::Yardstick => "yardstick",
        }
    }
}

/// The yardstick's route that answers once it is ready; every other route does the work.
pub const YARDSTICK_READY: &str = "/__yardstick/ready";

pub trait ServiceControl: Send + Sync {
    /// Sends `signal` (e.g. `SIGTERM`) to the container's first process. From then on the
    /// service's end is the phase's to judge: the run no longer treats its exit as a crash.
    fn signal<'a>(&'a self, signal: &'a str) -> BoxFuture<'a, Result<Signalled, MachineError>>;

    /// Waits up to `limit` for the container to stop; `None` if it still runs.
    fn wait_stopped(&self, limit: Duration)
        -> BoxFuture<'_, Result<Option<Stopped>, MachineError>>;

    /// Starts the stopped container again; the base URL of the service, e.g.
    /// `http://172.18.0.2:8080`.
    fn restart(&self) -> BoxFuture<'_, Result<String, MachineError>>;

    /// CPU time and memory used so far.
    fn usage(&self) -> BoxFuture<'_, Result<Usage, MachineError>>;

    fn startup(&self) -> Startup;

    /// The size of the candidate's image, in bytes.
    fn image_size(&self) -> Option<u64>;

    /// Starts a service beside the candidate's, to load both in turns (`which` says which): a
    /// container with the service's limits, cores and network. Its base URL; none when the run
    /// has no such service (no reference was built). One at a time: starting another removes
    /// the one before.
    fn start_beside(&self, _which: Beside) -> BoxFuture<'_, Result<Option<String>, MachineError>> {
        Box::pin(async { Ok(None) })
    }

    /// The service's CPU time so far, in nanoseconds, read as fast as this machine allows
    /// (short measurement windows need it).
    fn cpu_time(&self) -> BoxFuture<'_, Result<u64, MachineError>> {
        Box::pin(async { Ok(self.usage().await?.cpu_ns) })
    }

    /// The same, of the service beside it.
    fn beside_cpu_time(&self) -> BoxFuture<'_, Result<u64, MachineError>> {
        Box::pin(async {
            Err(MachineError {
                verdict: crate::verdict::Verdict::EngineError,
                reason: "nothing runs beside the service".into(),
            })
        })
    }

    /// Removes the container beside the service, if one runs.
    fn stop_beside(&self) -> BoxFuture<'_, Result<(), MachineError>> {
        Box::pin(async { Ok(()) })
    }

    /// Runs `command` in a fresh container of the candidate's image.
    fn run_in_image<'a>(
        &'a self,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<CommandOutcome, MachineError>>;

    /// Runs `command` in a fresh container of proctor's review image, with the vetted build
    /// context unpacked at `/src` (the only candidate files it sees).
    fn run_review<'a>(
        &'a self,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<CommandOutcome, MachineError>>;
}
