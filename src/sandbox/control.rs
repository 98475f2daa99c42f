//! What a phase may do to the service's running container beyond HTTP: send it a signal, wait
//! for it to stop within a grace period, kill it, start the same container again, and read what
//! it has used (CPU time and memory, from the engine's stats of its cgroup).

use std::time::{Duration, Instant};

use bollard::query_parameters::{KillContainerOptions, StatsOptions};
use futures_util::StreamExt;

use super::container::{self, ExitInfo};
use super::{deadline, Engine, EngineError, CALL_TIMEOUT};
use crate::control::Usage;

/// Sends `signal` (e.g. `SIGTERM`) to the container's first process, as `docker kill -s` and
/// `docker stop` do. A container that has stopped already is not an error: nothing to signal.
pub async fn signal(engine: &Engine, id: &str, signal: &str) -> Result<(), EngineError> {
    let options = KillContainerOptions {
        signal: signal.to_string(),
    };
    match tokio::time::timeout(
        CALL_TIMEOUT,
        engine.docker.kill_container(id, Some(options)),
    )
    .await
    {
        Ok(Ok(())) => Ok(()),
        // 409: not running. The caller reads the exit itself.
        Ok(Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        })) => Ok(()),
        Ok(Err(e)) => Err(EngineError::api(
            format!("send {signal} to the container"),
            e,
        )),
        Err(_) => Err(EngineError::Timeout(
            CALL_TIMEOUT,
            format!("send {signal} to the container"),
        )),
    }
}

/// Sends `signal` straight to the container's first process when this process can (the engine
/// is on this machine, shares its pid namespace, and lets it signal the container's processes):
/// `kill(2)` lands in microseconds, where the engine's API takes tens of milliseconds on a busy
/// machine, and the lifecycle phase must know when the signal landed to tell the requests in
/// flight from the ones sent after it. Otherwise through the engine. Returns when it was sent
/// and delivered, and whether directly.
pub async fn signal_precisely(
    engine: &Engine,
    id: &str,
    name: &str,
) -> Result<crate::control::Signalled, EngineError> {
    let number = match name {
        "SIGTERM" => Some(libc::SIGTERM),
        "SIGKILL" => Some(libc::SIGKILL),
        "SIGINT" => Some(libc::SIGINT),
        _ => None,
    };
    if let (Some(number), true) = (number, engine.info.local) {
        let inspect = deadline(
            CALL_TIMEOUT,
            "inspect the container",
            engine.docker.inspect_container(id, None),
        )
        .await?;
        let pid = inspect.state.and_then(|s| s.pid).unwrap_or(0);
        // The pid is the engine's view: it names the container's process here only when this
        // process shares the engine's pid namespace, which the process's cgroup proves.
        let ours = pid > 0
            && std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|c| c.contains(&id[..id.len().min(64)]));
        if ours {
            let sent = std::time::Instant::now();
            // SAFETY: kill(2) with a pid checked above and a valid signal number.
            let done = unsafe { libc::kill(pid as libc::pid_t, number) } == 0;
            let delivered = std::time::Instant::now();
            if done {
                return Ok(crate::control::Signalled {
                    sent,
                    delivered,
                    direct: true,
                });
            }
        }
    }
    let sent = std::time::Instant::now();
    signal(engine, id, name).await?;
    Ok(crate::control::Signalled {
        sent,
        delivered: std::time::Instant::now(),
        direct: false,
    })
}

/// Waits up to `limit` for the container to stop: its exit and how long it took, or `None`
/// when it still runs at the limit.
pub async fn wait_stopped(
    engine: &Engine,
    id: &str,
    limit: Duration,
) -> Result<Option<(ExitInfo, Duration)>, EngineError> {
    let started = Instant::now();
    loop {
        if let Some(exit) = container::exit_info(engine, id).await? {
            return Ok(Some((exit, started.elapsed())));
        }
        if started.elapsed() >= limit {
            return Ok(None);
        }
        // Fine enough to time an exit to a tenth of a second.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts the stopped container again (same image, same sandbox, same network): its new
/// address on the run's network.
pub async fn restart(engine: &Engine, id: &str, network: &str) -> Result<String, EngineError> {
    deadline(
        CALL_TIMEOUT,
        "start the container again",
        engine.docker.start_container(id, None),
    )
    .await?;
    let inspect = deadline(
        CALL_TIMEOUT,
        "inspect the restarted container",
        engine.docker.inspect_container(id, None),
    )
    .await?;
    Ok(inspect
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut nets| nets.remove(network))
        .and_then(|e| e.ip_address)
        .unwrap_or_default())
}

/// One reading of the container's CPU time and memory (the engine's one-shot stats).
pub async fn usage(engine: &Engine, id: &str) -> Result<Usage, EngineError> {
    let options = StatsOptions {
        stream: false,
        one_shot: true,
    };
    let read = async {
        let mut stream = engine.docker.stats(id, Some(options));
        stream.next().await
    };
    let stats = match tokio::time::timeout(CALL_TIMEOUT, read).await {
        Err(_) => {
            return Err(EngineError::Timeout(
                CALL_TIMEOUT,
                "read the container's stats".into(),
            ))
        }
        Ok(None) => {
            return Err(EngineError::api(
                "read the container's stats",
                "the engine sent none",
            ))
        }
        Ok(Some(Err(e))) => return Err(EngineError::api("read the container's stats", e)),
        Ok(Some(Ok(s))) => s,
    };
    let cpu_ns = stats
        .cpu_stats
        .as_ref()
        .and_then(|c| c.cpu_usage.as_ref())
        .and_then(|u| u.total_usage)
        .unwrap_or(0);
    let memory = stats.memory_stats.as_ref();
    let usage = memory.and_then(|m| m.usage).unwrap_or(0);
    // The page cache (cgroup v1 `cache`, v2 `inactive_file`) is not the service's own memory:
    // the kernel drops it under pressure.
    let cache = memory
        .and_then(|m| m.stats.as_ref())
        .and_then(|s| s.get("inactive_file").or_else(|| s.get("cache")).copied())
        .unwrap_or(0);
    Ok(Usage {
        cpu_ns,
        memory_bytes: usage.saturating_sub(cache),
        peak_memory_bytes: memory.and_then(|m| m.max_usage),
    })
}
