//! One command in a fresh container of an image, under the sandbox's limits, with a deadline and
//! a cap on what is kept of its output: the candidate's own test suite (in their image), or the
//! linter (in proctor's review image, over the vetted build context).
//!
//! The container's first process only waits (`sleep`, under the init process); the command runs
//! as an exec, whose output streams to proctor and never reaches the engine's logs or disk. So a
//! suite that prints 100 MB costs the time to read it, not memory or disk; one that sleeps
//! forever is stopped at the deadline by killing the container; and a file the command wrote
//! to the container's `/tmp` (a tmpfs, which the engine's archive API cannot read) is read back
//! with a second exec (`cat`) before the container is removed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::container::SANDBOX_USER;
use super::{deadline, labels, Engine, EngineError, CALL_TIMEOUT};
use crate::control::CommandOutcome;

/// What to run, where, within what.
#[derive(Debug, Clone)]
pub struct Job {
    /// The image, by tag or id.
    pub image: String,
    /// Names the container: `proctor-<run id>-<name>`.
    pub name: String,
    pub command: Vec<String>,
    pub memory_mb: u64,
    pub cpus: f64,
    pub pids_limit: i64,
    pub tmpfs_mb: u64,
    /// How long the command may run.
    pub timeout: Duration,
    /// Bytes of output kept (the end of it); the rest is read and counted.
    pub max_output: usize,
    /// A file to read back after the command (e.g. a JUnit report), up to `max_file` bytes.
    pub read_file: Option<String>,
    pub max_file: usize,
    /// A tar to unpack into the container before it starts, at this directory. The root file
    /// system then stays writable (the archive API cannot write to a read-only one): for
    /// proctor's own images only.
    pub upload: Option<(String, Vec<u8>)>,
}

/// Runs `job` in a container labelled with `run_id` (so that cleanup and `gc` find it), and
/// removes the container. `Err` only for the engine's failures; whatever the command does is
/// in the outcome.
pub async fn run(engine: &Engine, run_id: &str, job: &Job) -> Result<CommandOutcome, EngineError> {
    let id = create(engine, run_id, job).await?;
    let outcome = run_in(engine, &id, job).await;
    // With its anonymous volumes: an image's VOLUME is writable disk outside /tmp.
    let remove = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    // The run's cleanup removes it too, should this fail.
    let _ = tokio::time::timeout(
        CALL_TIMEOUT,
        engine.docker.remove_container(&id, Some(remove)),
    )
    .await;
    outcome
}

async fn create(engine: &Engine, run_id: &str, job: &Job) -> Result<String, EngineError> {
    let memory = (job.memory_mb * 1024 * 1024) as i64;
    // The command's own deadline is proctor's; the waiting process outlives it by a margin.
    let keep_alive = (job.timeout + Duration::from_secs(120))
        .as_secs()
        .to_string();
    let host_config = HostConfig {
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some((job.cpus * 1e9) as i64),
        pids_limit: Some(job.pids_limit),
        readonly_rootfs: Some(job.upload.is_none()),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_string(),
            format!("rw,noexec,nosuid,nodev,size={}m", job.tmpfs_mb),
        )])),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        privileged: Some(false),
        init: Some(true),
        network_mode: Some("none".into()),
        // The command's output goes to proctor through the exec, never to the logs; the waiting
        // process prints nothing.
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".into(), "64k".into()),
                ("max-file".into(), "1".into()),
            ])),
        }),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(job.image.clone()),
        user: Some(SANDBOX_USER.into()),
        labels: Some(labels::for_run(run_id)),
        env: Some(vec!["HOME=/tmp".into()]),
        entrypoint: Some(vec!["sleep".into()]),
        cmd: Some(vec![keep_alive]),
        network_disabled: Some(true),
        host_config: Some(host_config),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new()
        .name(&format!("proctor-{run_id}-{}", job.name))
        .build();
    let created = deadline(
        CALL_TIMEOUT,
        &format!("create the {} container", job.name),
        engine.docker.create_container(Some(options), body),
    )
    .await?;
    if let Some((dir, tar)) = &job.upload {
        let options = UploadToContainerOptionsBuilder::new().path(dir).build();
        deadline(
            CALL_TIMEOUT,
            &format!("copy the build context into the {} container", job.name),
            engine.docker.upload_to_container(
                &created.id,
                Some(options),
                bollard::body_full(tar.clone().into()),
            ),
        )
        .await?;
    }
    deadline(
        CALL_TIMEOUT,
        &format!("start the {} container", job.name),
        engine.docker.start_container(&created.id, None),
    )
    .await?;
    Ok(created.id)
}

async fn run_in(engine: &Engine, id: &str, job: &Job) -> Result<CommandOutcome, EngineError> {
    let started = Instant::now();
    let exec = exec(engine, id, &job.command, &job.name).await?;
    let mut out = CommandOutcome::default();
    let mut tail: Vec<u8> = Vec::new();
    let read = async {
        let StartExecResults::Attached { mut output, .. } = deadline(
            CALL_TIMEOUT,
            &format!("start the {} command", job.name),
            engine.docker.start_exec(&exec, Some(attached())),
        )
        .await?
        else {
            return Err(EngineError::api(
                "start the command",
                "the engine detached it",
            ));
        };
        while let Some(chunk) = output.next().await {
            let Ok(chunk) = chunk else { break };
            let bytes = chunk.into_bytes();
            out.output_bytes += bytes.len() as u64;
            tail.extend_from_slice(&bytes);
            // Keep the end, in bounded memory.
            if tail.len() > 2 * job.max_output {
                tail.drain(..tail.len() - job.max_output);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(job.timeout, read).await {
        Ok(r) => r?,
        Err(_) => {
            out.timed_out = true;
            // Stops the command (and everything it started) with the container.
            let _ = super::control::signal(engine, id, "SIGKILL").await;
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    if tail.len() > job.max_output {
        tail.drain(..tail.len() - job.max_output);
    }
    out.output_tail = crate::http::sanitize(&String::from_utf8_lossy(&tail), usize::MAX);
    if out.timed_out {
        return Ok(out);
    }
    out.exit_code = deadline(
        CALL_TIMEOUT,
        "read the command's exit code",
        engine.docker.inspect_exec(&exec),
    )
    .await?
    .exit_code;
    if let Some(path) = &job.read_file {
        let (file, truncated) = read_file(engine, id, path, job.max_file).await?;
        out.file = file;
        out.file_truncated = truncated;
    }
    Ok(out)
}

fn attached() -> StartExecOptions {
    StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: Some(64 * 1024),
    }
}

async fn exec(
    engine: &Engine,
    id: &str,
    command: &[String],
    name: &str,
) -> Result<String, EngineError> {
    let options = CreateExecOptions {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(command.to_vec()),
        user: Some(SANDBOX_USER.to_string()),
        env: Some(vec!["HOME=/tmp".to_string()]),
        ..Default::default()
    };
    Ok(deadline(
        CALL_TIMEOUT,
        &format!("create the {name} command"),
        engine.docker.create_exec(id, options),
    )
    .await?
    .id)
}

/// The file at `path` in the container, up to `max` bytes (and whether it was longer); None
/// when it does not exist or cannot be read.
async fn read_file(
    engine: &Engine,
    id: &str,
    path: &str,
    max: usize,
) -> Result<(Option<Vec<u8>>, bool), EngineError> {
    let cat = ["cat".to_string(), "--".to_string(), path.to_string()];
    let exec = exec(engine, id, &cat, "read-file").await?;
    let mut bytes = Vec::new();
    let mut truncated = false;
    let read = async {
        let StartExecResults::Attached { mut output, .. } = deadline(
            CALL_TIMEOUT,
            "read a file the command wrote",
            engine.docker.start_exec(&exec, Some(attached())),
        )
        .await?
        else {
            return Ok(());
        };
        while let Some(Ok(chunk)) = output.next().await {
            // stderr ("No such file") is not the file.
            if let bollard::container::LogOutput::StdOut { message } = chunk {
                bytes.extend_from_slice(&message);
                if bytes.len() > max {
                    bytes.truncate(max);
                    truncated = true;
                    break;
                }
            }
        }
        Ok::<(), EngineError>(())
    };
    match tokio::time::timeout(Duration::from_secs(30), read).await {
        Ok(r) => r?,
        Err(_) => return Ok((None, false)),
    }
    let code = deadline(
        CALL_TIMEOUT,
        "read the exit code of cat",
        engine.docker.inspect_exec(&exec),
    )
    .await?
    .exit_code;
    Ok(match code {
        Some(0) => (Some(bytes), truncated),
        _ if truncated => (Some(bytes), true),
        _ => (None, false),
    })
}
