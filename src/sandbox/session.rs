//! One run's sandbox, as the pipeline sees it: the engine connection and the run id, and what a
//! run needs of them in order: check base images, build, start the service, watch it, read its
//! end, remove everything. The pipeline never sees the engine API; every policy that turns the
//! grader's limits into engine settings (build cgroup, byte units, the container's address, the
//! out-of-memory verdict) is decided here, once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::build::{self, BuildFailure, BuildLimits, Built};
use super::container::{self, ExitInfo};
use super::job::{self, Job};
use super::monitor::{self, Monitor, Peaks};
use super::{build_cgroup, cleanup, control, Engine, EngineError, EngineInfo};
use crate::control::{Beside, Command, CommandOutcome, Startup, Usage};
use crate::events::Events;
use crate::grader::{SandboxLimits, SubmissionRules};

/// proctor's own image for static review (a linter over the vetted build context), built from
/// Debian packages by `docker/review/build.sh`.
pub const REVIEW_IMAGE: &str = "proctor/review:1";
/// proctor's yardstick service (`docker/yardstick/build.sh`) and the port it listens on.
pub const YARDSTICK_IMAGE: &str = "proctor/yardstick:1";
pub const YARDSTICK_PORT: u16 = 8080;

/// One of proctor's own images, beyond the base images graders allow: what it is, and the
/// script of this repository that builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnImage {
    pub image: &'static str,
    pub what: &'static str,
    pub script: &'static str,
}

/// Every image of proctor's own that a grader may need.
pub const OWN_IMAGES: [OwnImage; 2] = [
    OwnImage {
        image: REVIEW_IMAGE,
        what: "review image",
        script: "docker/review/build.sh",
    },
    OwnImage {
        image: YARDSTICK_IMAGE,
        what: "yardstick image ([cost] calibrate)",
        script: "docker/yardstick/build.sh",
    },
];

/// proctor's own images grader `g` needs: the review image when it lints (`[review.lint]`), the
/// yardstick when it calibrates (`[cost] calibrate`).
pub fn own_images(g: &crate::grader::Grader) -> Vec<OwnImage> {
    let [review, yardstick] = OWN_IMAGES;
    let lints = g.review.as_ref().is_some_and(|r| r.lint.is_some());
    let calibrates = g.cost.as_ref().is_some_and(|c| c.calibrate);
    [(review, lints), (yardstick, calibrates)]
        .into_iter()
        .filter_map(|(own, needed)| needed.then_some(own))
        .collect()
}

/// The yardstick's memory, whatever the grader allows the candidate: what a Python service
/// needs.
const YARDSTICK_MIN_MEMORY_MB: u64 = 256;

/// Why a base image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaseImageError {
    #[error(
        "the allowed base image {0} is not on this machine; build it with `bash \
         docker/base/build.sh` (see docker/base/README.md)"
    )]
    Missing(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A service the session started: where to reach it.
#[derive(Debug, Clone)]
pub struct Service {
    /// e.g. `http://172.18.0.2:8080`.
    pub url: String,
    pub container_id: String,
}

/// What is known of the container once it has stopped (or been stopped for cleanup).
#[derive(Debug, Clone, Default)]
pub struct ContainerFacts {
    pub exit: Option<ExitInfo>,
    pub peaks: Peaks,
    pub log_tail: String,
    /// Warnings about peaks near the limits (processes, memory).
    pub warnings: Vec<String>,
}

pub struct Session {
    engine: Engine,
    run_id: String,
    keep_image: bool,
    /// Held here, not by the build, so that a cancelled build's cgroup is still removed once
    /// the engine has stopped the step (see `close`).
    build_cgroup: Option<build_cgroup::BuildCgroup>,
    container: Option<String>,
    /// The run's network (by name) and the service's port, to find it again after a restart.
    network: Option<(String, u16)>,
    /// The candidate's image (tag) and its size, once built.
    image: Option<(String, Option<u64>)>,
    /// The vetted build context, kept for the review image when a grader asks for it.
    review_context: Option<Vec<u8>>,
    /// The reference submission's image, built beside the candidate's when a grader compares
    /// CPU with it, and the container beside the service while one runs (`start_beside`).
    reference_image: Option<String>,
    beside: Mutex<Option<String>>,
    /// Per container: its cgroup's CPU file, once looked for (none: the engine's stats).
    cpu_files: Mutex<std::collections::HashMap<String, Option<control::CpuFile>>>,
    limits: Option<SandboxLimits>,
    /// Behind a lock: a restart starts watching the container's stats again.
    monitor: Mutex<Option<Monitor>>,
    /// When the container was started, and what its start measured once it was ready.
    started: Option<Instant>,
    startup: Mutex<Startup>,
    /// A phase signalled the service (to stop it on purpose): from then on its exit is that
    /// phase's to judge, not a crash of the run.
    handed_over: AtomicBool,
    /// The exit, once seen.
    exit: Option<ExitInfo>,
}

impl Session {
    /// Connects to the engine (as the docker CLI would) for run `run_id`.
    pub async fn open(run_id: &str, keep_image: bool) -> Result<Session, EngineError> {
        Ok(Session {
            engine: Engine::connect().await?,
            run_id: run_id.to_string(),
            keep_image,
            build_cgroup: None,
            container: None,
            network: None,
            image: None,
            review_context: None,
            reference_image: None,
            beside: Mutex::new(None),
            cpu_files: Mutex::new(Default::default()),
            limits: None,
            monitor: Mutex::new(None),
            started: None,
            startup: Mutex::new(Startup::default()),
            handed_over: AtomicBool::new(false),
            exit: None,
        })
    }

    pub fn info(&self) -> &EngineInfo {
        &self.engine.info
    }

    /// The engine, for sweeps (`crate::gc`) that serve the sandbox and intake alike.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Every base image must be on this machine: nothing can be pulled.
    pub async fn check_base_images(&self, bases: &[String]) -> Result<(), BaseImageError> {
        for base in bases {
            if !super::system::image_exists(&self.engine, base).await? {
                return Err(BaseImageError::Missing(base.clone()));
            }
        }
        Ok(())
    }

    /// Builds the build context (a tar) under the grader's rules. `Ok(Err(_))` is the
    /// submission's failure, `Err(_)` the engine's. Warnings (a build without its process
    /// limit) go to `warnings`.
    pub async fn build(
        &mut self,
        context: Vec<u8>,
        rules: &SubmissionRules,
        timeout: Duration,
        events: &Events,
        warnings: &mut Vec<String>,
    ) -> Result<Result<Built, BuildFailure>, EngineError> {
        let tag = format!("proctor/submission:{}", self.run_id);
        let built = self
            .build_as(&tag, context, rules, timeout, events, warnings)
            .await;
        if let Ok(Ok(b)) = &built {
            self.image = Some((b.tag.clone(), b.size_bytes.map(|s| s.max(0) as u64)));
        }
        built
    }

    /// Builds the reference submission's context as the candidate's, under the same rules, so
    /// that `start_beside` can run it beside the candidate's service.
    pub async fn build_reference(
        &mut self,
        context: Vec<u8>,
        rules: &SubmissionRules,
        timeout: Duration,
        events: &Events,
        warnings: &mut Vec<String>,
    ) -> Result<Result<Built, BuildFailure>, EngineError> {
        let tag = format!("proctor/reference:{}", self.run_id);
        let built = self
            .build_as(&tag, context, rules, timeout, events, warnings)
            .await;
        if let Ok(Ok(b)) = &built {
            self.reference_image = Some(b.tag.clone());
        }
        built
    }

    async fn build_as(
        &mut self,
        tag: &str,
        context: Vec<u8>,
        rules: &SubmissionRules,
        timeout: Duration,
        events: &Events,
        warnings: &mut Vec<String>,
    ) -> Result<Result<Built, BuildFailure>, EngineError> {
        self.build_cgroup = if self.engine.info.local {
            build_cgroup::create(
                &self.run_id,
                rules.build_pids_limit,
                self.engine.info.cgroup_driver.as_deref(),
            )
            .map_err(|e| {
                warnings.push(format!(
                    "the build runs without a process limit ({e}); `proctor doctor` explains"
                ))
            })
            .ok()
        } else {
            warnings.push(
                "the build runs without a process limit: the engine is not on this machine".into(),
            );
            None
        };
        let limits = BuildLimits {
            timeout,
            memory: (rules.build_memory_mb * 1024 * 1024) as i32,
            max_output_bytes: rules.max_build_output_mb * 1024 * 1024,
            max_image_bytes: rules.max_image_mb * 1024 * 1024,
            cgroup_parent: self.build_cgroup.as_ref().map(|c| c.parent()),
            ..BuildLimits::default()
        };
        let built = build::build(&self.engine, context, tag, &self.run_id, &limits, events).await;
        self.release_build_cgroup().await;
        built
    }

    /// Keeps the vetted build context for the review image (`run_review`).
    pub fn keep_review_context(&mut self, tar: Vec<u8>) {
        self.review_context = Some(tar);
    }

    /// Starts the built image in the sandbox and starts watching it. Warns when the host's own
    /// ports could not be closed to it.
    pub async fn start(
        &mut self,
        built: &Built,
        limits: &SandboxLimits,
        port: u16,
        warnings: &mut Vec<String>,
    ) -> Result<Service, EngineError> {
        let running = container::start(&self.engine, &built.tag, &self.run_id, limits).await?;
        self.started = Some(Instant::now());
        self.container = Some(running.container_id.clone());
        self.network = Some((format!("proctor-{}", self.run_id), port));
        self.limits = Some(limits.clone());
        if let Err(why) = &running.host_isolation {
            warnings.push(format!(
                "the service can reach ports on this machine ({why}); run proctor as root on \
                 the engine's machine, with iptables, to close them"
            ));
        }
        *self.monitor.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Monitor::start(&self.engine, &running.container_id));
        Ok(Service {
            url: format!("http://{}:{port}", running.ip),
            container_id: running.container_id,
        })
    }

    /// Resolves when the container stops (never, when there is none). A process the kernel
    /// killed for memory counts as an OOM kill even when the main process then exited cleanly.
    /// Once a phase has signalled the service on purpose (`signal`), its exit is that phase's
    /// to judge: this no longer resolves.
    pub async fn wait_exit(&self) -> Result<ExitInfo, EngineError> {
        match &self.container {
            Some(id) => {
                let exit = container::wait_exit(&self.engine, id).await?;
                if self.handed_over.load(Ordering::SeqCst) {
                    return std::future::pending().await;
                }
                Ok(self.with_oom(exit))
            }
            None => std::future::pending().await,
        }
    }

    /// The container's exit if it has stopped already (it may have died on the last request);
    /// none once a phase stopped it on purpose.
    pub async fn exited(&self) -> Result<Option<ExitInfo>, EngineError> {
        match &self.container {
            Some(_) if self.handed_over.load(Ordering::SeqCst) => Ok(None),
            Some(id) => Ok(container::exit_info(&self.engine, id)
                .await?
                .map(|e| self.with_oom(e))),
            None => Ok(None),
        }
    }

    fn with_oom(&self, mut exit: ExitInfo) -> ExitInfo {
        exit.oom_killed |= self
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|m| m.snapshot().oom_kills > 0);
        exit
    }

    /// Records the service's start once it answered ready: the time since the container
    /// started, and (with `memory`) its memory at that moment.
    pub async fn note_ready(&self, memory: bool) -> Result<(), EngineError> {
        let cold_start = self.started.map(|s| s.elapsed());
        let memory_bytes = match (&self.container, memory) {
            (Some(id), true) => Some(control::usage(&self.engine, id).await?.memory_bytes),
            _ => None,
        };
        *self.startup.lock().unwrap_or_else(|e| e.into_inner()) = Startup {
            cold_start,
            memory_bytes,
        };
        Ok(())
    }

    pub fn startup(&self) -> Startup {
        *self.startup.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn image_size(&self) -> Option<u64> {
        self.image.as_ref().and_then(|(_, size)| *size)
    }

    fn container_id(&self, action: &str) -> Result<&str, EngineError> {
        self.container
            .as_deref()
            .ok_or_else(|| EngineError::api(action, "no container was started"))
    }

    /// Sends `signal` to the service; from then on its exit is the caller's to judge.
    pub async fn signal(&self, signal: &str) -> Result<crate::control::Signalled, EngineError> {
        let id = self.container_id("signal the container")?;
        self.handed_over.store(true, Ordering::SeqCst);
        control::signal_precisely(&self.engine, id, signal).await
    }

    pub async fn wait_stopped(
        &self,
        limit: Duration,
    ) -> Result<Option<(ExitInfo, Duration)>, EngineError> {
        let id = self.container_id("wait for the container to stop")?;
        control::wait_stopped(&self.engine, id, limit).await
    }

    /// Starts the stopped service again (same container); its new URL.
    pub async fn restart(&self) -> Result<String, EngineError> {
        let id = self.container_id("start the container again")?;
        let (network, port) = self
            .network
            .clone()
            .ok_or_else(|| EngineError::api("start the container again", "no network"))?;
        let ip = control::restart(&self.engine, id, &network).await?;
        if let Some(m) = self
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            m.watch_again(&self.engine, id);
        }
        Ok(format!("http://{ip}:{port}"))
    }

    pub async fn usage(&self) -> Result<Usage, EngineError> {
        let id = self.container_id("read the container's stats")?;
        control::usage(&self.engine, id).await
    }

    /// Starts a service beside the candidate's: the reference's image (built by
    /// `build_reference`) or proctor's yardstick, with the same limits (its cores too) and
    /// network. Its base URL; none for the reference when this run built none. Removes the
    /// one started before.
    pub async fn start_beside(&self, which: Beside) -> Result<Option<String>, EngineError> {
        let action = "start a service beside the candidate's";
        let (network, port) = self
            .network
            .clone()
            .ok_or_else(|| EngineError::api(action, "the service was not started"))?;
        let (image, port) = match which {
            Beside::Reference => match &self.reference_image {
                Some(image) => (image.as_str(), port),
                None => return Ok(None),
            },
            Beside::Yardstick => (YARDSTICK_IMAGE, YARDSTICK_PORT),
        };
        let mut limits = self.limits.clone().unwrap_or_default();
        if which == Beside::Yardstick {
            // The service's cores and quota (its speed is what is compared), but the memory and
            // processes a Python service needs, whatever the grader allows the candidate.
            limits.memory_mb = limits.memory_mb.max(YARDSTICK_MIN_MEMORY_MB);
            limits.pids_limit = limits.pids_limit.max(64);
        }
        self.stop_beside().await?;
        let name = format!("proctor-{}-{}", self.run_id, which.name());
        let (id, ip) =
            container::create_on(&self.engine, image, &self.run_id, &limits, &network, &name)
                .await?;
        *self.beside.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
        Ok(Some(format!("http://{ip}:{port}")))
    }

    /// The service's CPU time so far, in nanoseconds: from its cgroup's file when this process
    /// can read it (microseconds), else from the engine's stats (up to a second).
    pub async fn cpu_time(&self) -> Result<u64, EngineError> {
        let id = self
            .container_id("read the container's CPU time")?
            .to_string();
        self.cpu_of(&id).await
    }

    /// The same, of the service beside it.
    pub async fn beside_cpu_time(&self) -> Result<u64, EngineError> {
        let id = self
            .beside
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                EngineError::api("read the CPU time of the service beside", "none runs")
            })?;
        self.cpu_of(&id).await
    }

    async fn cpu_of(&self, id: &str) -> Result<u64, EngineError> {
        let known = self
            .cpu_files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        let file = match known {
            Some(f) => f,
            None => {
                let f = control::cpu_file(&self.engine, id).await;
                self.cpu_files
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.to_string(), f.clone());
                f
            }
        };
        // Both read the same counter: a window may start on one and end on the other.
        match file.and_then(|f| f.read_ns()) {
            Some(ns) => Ok(ns),
            None => Ok(control::usage(&self.engine, id).await?.cpu_ns),
        }
    }

    /// Removes the container beside the service (the run's cleanup would too; this frees its
    /// memory for the phases after the comparison).
    pub async fn stop_beside(&self) -> Result<(), EngineError> {
        let id = self.beside.lock().unwrap_or_else(|e| e.into_inner()).take();
        match id {
            Some(id) => control::remove(&self.engine, &id).await,
            None => Ok(()),
        }
    }

    /// Runs `command` in a fresh container of the candidate's image, under the service's limits.
    pub async fn run_in_image(&self, command: &Command) -> Result<CommandOutcome, EngineError> {
        let (image, _) = self
            .image
            .clone()
            .ok_or_else(|| EngineError::api("run a command in the image", "no image was built"))?;
        job::run(&self.engine, &self.run_id, &self.job(image, command, None)).await
    }

    /// Runs `command` in proctor's review image with the vetted build context at `/src`.
    pub async fn run_review(&self, command: &Command) -> Result<CommandOutcome, EngineError> {
        let context = self
            .review_context
            .clone()
            .ok_or_else(|| EngineError::api("run the review", "the build context was not kept"))?;
        let job = self.job(
            REVIEW_IMAGE.to_string(),
            command,
            Some(("/src".to_string(), context)),
        );
        job::run(&self.engine, &self.run_id, &job).await
    }

    fn job(&self, image: String, command: &Command, upload: Option<(String, Vec<u8>)>) -> Job {
        let limits = self.limits.clone().unwrap_or_default();
        Job {
            image,
            name: command.name.clone(),
            command: command.argv.clone(),
            memory_mb: limits.memory_mb,
            cpus: limits.cpus,
            pids_limit: limits.pids_limit,
            tmpfs_mb: limits.tmpfs_mb,
            timeout: command.timeout,
            max_output: command.max_output,
            read_file: command.read_file.clone(),
            max_file: command.max_file,
            upload,
        }
    }

    /// Records the exit the pipeline saw, so `finish` reports it as seen.
    pub fn saw_exit(&mut self, exit: ExitInfo) {
        self.exit = Some(exit);
    }

    /// Reads the container's final state, peaks and log tail before cleanup removes it.
    pub async fn finish(&mut self) -> Option<ContainerFacts> {
        let id = self.container.clone()?;
        let exit = match self.exit.take() {
            Some(e) => Some(e),
            None => container::exit_info(&self.engine, &id).await.ok().flatten(),
        };
        let peaks = self
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(Monitor::stop)
            .unwrap_or_default();
        let warnings = self
            .limits
            .as_ref()
            .map(|l| monitor::limit_warnings(&peaks, l.pids_limit, l.memory_mb * 1024 * 1024))
            .unwrap_or_default();
        Some(ContainerFacts {
            exit,
            peaks,
            log_tail: container::log_tail(&self.engine, &id, 200, 16 * 1024).await,
            warnings,
        })
    }

    /// Removes everything the run created (its image too, unless kept). Returns what could not
    /// be removed.
    pub async fn close(mut self) -> Vec<String> {
        // A kept image is the candidate's; the reference's never is.
        if let (true, Some(reference)) = (self.keep_image, &self.reference_image) {
            let _ = self.stop_beside().await;
            let _ = control::remove_image(&self.engine, reference).await;
        }
        let removed = cleanup::remove_run(&self.engine, &self.run_id, self.keep_image).await;
        self.release_build_cgroup().await;
        removed.errors
    }

    /// Removes the build's cgroup once the engine has stopped the build's last step: right
    /// away after a finished build, a moment later after a timeout or Ctrl-C.
    async fn release_build_cgroup(&mut self) {
        if let Some(c) = self.build_cgroup.take() {
            c.release(Duration::from_secs(15)).await;
        }
    }
}
