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

/// Removes a container, running or not, with its anonymous volumes.
pub async fn remove(engine: &Engine, id: &str) -> Result<(), EngineError> {
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    deadline(
        CALL_TIMEOUT,
        "remove a container",
        engine.docker.remove_container(id, Some(options)),
    )
    .await
}

/// Removes an image by tag (and the layers only it used).
pub async fn remove_image(engine: &Engine, tag: &str) -> Result<(), EngineError> {
    deadline(
        CALL_TIMEOUT,
        "remove an image",
        engine.docker.remove_image(
            tag,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        ),
    )
    .await
    .map(|_| ())
}

/// Where the kernel counts a container's CPU time, when this process can read it: the engine
/// runs on this machine and its cgroups are mounted here as the container's processes see them
/// from the host. A read takes microseconds, where the engine's stats answer on its next
/// one-second collection: short measurement windows need the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuFile {
    /// cgroup v1 `cpuacct.usage`: nanoseconds.
    V1(std::path::PathBuf),
    /// cgroup v2 `cpu.stat`, its `usage_usec` line: microseconds.
    V2(std::path::PathBuf),
}

impl CpuFile {
    /// The file of the cgroup that `/proc/<pid>/cgroup` names (`proc_cgroup`), under `root`
    /// (`/sys/fs/cgroup`), if it exists.
    pub fn find(proc_cgroup: &str, root: &std::path::Path) -> Option<CpuFile> {
        let mut unified = None;
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let rel = path.trim_start_matches('/');
            if controllers.split(',').any(|c| c == "cpuacct") {
                for dir in [controllers, "cpuacct", "cpu,cpuacct"] {
                    let file = root.join(dir).join(rel).join("cpuacct.usage");
                    if file.is_file() {
                        return Some(CpuFile::V1(file));
                    }
                }
            } else if controllers.is_empty() {
                unified = Some(root.join(rel).join("cpu.stat"));
            }
        }
        unified.filter(|f| f.is_file()).map(CpuFile::V2)
    }

    /// The CPU time so far, in nanoseconds.
    pub fn read_ns(&self) -> Option<u64> {
        match self {
            CpuFile::V1(f) => std::fs::read_to_string(f).ok()?.trim().parse().ok(),
            CpuFile::V2(f) => std::fs::read_to_string(f)
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))?
                .trim()
                .parse::<u64>()
                .ok()
                .map(|us| us * 1000),
        }
    }
}

/// The container's CPU file, when the engine is on this machine and the file can be read.
pub async fn cpu_file(engine: &Engine, id: &str) -> Option<CpuFile> {
    if !engine.info.local {
        return None;
    }
    let inspect = deadline(
        CALL_TIMEOUT,
        "inspect the container",
        engine.docker.inspect_container(id, None),
    )
    .await
    .ok()?;
    let pid = inspect.state?.pid.filter(|p| *p > 0)?;
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let file = CpuFile::find(&cgroup, std::path::Path::new("/sys/fs/cgroup"))?;
    file.read_ns().map(|_| file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_file_is_found_for_cgroup_v1_and_v2() {
        let root = tempfile::tempdir().unwrap();
        let v1 = root.path().join("cpu,cpuacct/docker/abc");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("cpuacct.usage"), "123456789\n").unwrap();
        let proc = "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
        let f = CpuFile::find(proc, root.path()).unwrap();
        assert_eq!(f, CpuFile::V1(v1.join("cpuacct.usage")));
        assert_eq!(f.read_ns(), Some(123_456_789));

        let v2 = root.path().join("system.slice/docker-abc.scope");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(
            v2.join("cpu.stat"),
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
        )
        .unwrap();
        let f = CpuFile::find("0::/system.slice/docker-abc.scope\n", root.path()).unwrap();
        assert_eq!(f.read_ns(), Some(2_500_000));

        // Not mounted here (proctor in a container of its own): none, and the engine answers.
        assert_eq!(CpuFile::find("0::/elsewhere\n", root.path()), None);
    }
}
