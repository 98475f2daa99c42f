//! Running the candidate's image: one internal network per run (no egress, no published ports;
//! proctor talks to the container's own address), and a container with every restriction of
//! the sandbox checklist: memory = swap, CPU and pids limits, nofile and core ulimits, read-only
//! root with a small noexec /tmp, all capabilities dropped, no-new-privileges, an unprivileged
//! user, an init process, and bounded logs.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigLogConfig, NetworkCreateRequest,
    NetworkingConfig, ResourcesUlimits,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;

use super::{deadline, labels, Engine, EngineError, CALL_TIMEOUT};
use crate::grader::SandboxLimits;
use crate::http::sanitize;

/// The uid:gid every submission runs as, whatever its image's USER says ("nobody").
pub const SANDBOX_USER: &str = "65534:65534";

#[derive(Debug, Clone)]
pub struct Running {
    pub container_id: String,
    pub network_id: String,
    /// The container's address on the run's network.
    pub ip: String,
    /// Whether the host's own ports are closed to the container (`firewall`), and if not, why.
    pub host_isolation: Result<(), String>,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
}

impl ExitInfo {
    /// In words a candidate understands.
    pub fn describe(&self) -> String {
        match (self.oom_killed, self.exit_code) {
            (true, _) => "was killed for using more memory than its limit (OOM)".to_string(),
            (false, Some(code)) if code > 128 => {
                format!("exited with code {code} (killed by signal {})", code - 128)
            }
            (false, Some(code)) => format!("exited with code {code}"),
            (false, None) => "stopped".to_string(),
        }
    }
}

/// Creates the run's network and container and starts it. Each resource is labelled with the
/// run id at creation, so cleanup finds it even if this function is interrupted half-way.
pub async fn start(
    engine: &Engine,
    image: &str,
    run_id: &str,
    limits: &SandboxLimits,
) -> Result<Running, EngineError> {
    let labels = labels::for_run(run_id);
    let net_name = format!("proctor-{run_id}");
    let network = deadline(
        CALL_TIMEOUT,
        "create the run's network",
        engine.docker.create_network(NetworkCreateRequest {
            name: net_name.clone(),
            driver: Some("bridge".into()),
            internal: Some(true),
            labels: Some(labels.clone()),
            ..Default::default()
        }),
    )
    .await?;
    // proctor talks to the container's own address: the run's bridge must be in proctor's
    // network namespace. It is not when proctor runs in a container without the host's
    // network; every grade would then end "never ready", blamed on the candidate.
    let bridge = super::firewall::bridge_of(&network.id);
    if engine.info.local
        && !std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists()
    {
        return Err(EngineError::Api {
            action: "reach the run's network".into(),
            detail: format!(
                "its bridge {bridge} is not in proctor's network namespace, so the service \
                 could not be reached; when proctor runs in a container, give it the host's \
                 network (docker run --network host, Kubernetes hostNetwork: true; see \
                 docker/harness/README.md)"
            ),
        });
    }
    // Before the container starts: it must never see the host's ports open.
    let host_isolation = if engine.info.local {
        super::firewall::isolate(&network.id, run_id).await
    } else {
        Err("the engine runs on another machine".to_string())
    };

    let (container_id, ip) = create_on(
        engine,
        image,
        run_id,
        limits,
        &net_name,
        &format!("proctor-{run_id}"),
    )
    .await?;
    Ok(Running {
        container_id,
        network_id: network.id,
        ip,
        host_isolation,
    })
}

/// Creates and starts a container of `image` named `name` on the run's network `net_name`,
/// with every restriction of the sandbox; its id and its address there.
pub async fn create_on(
    engine: &Engine,
    image: &str,
    run_id: &str,
    limits: &SandboxLimits,
    net_name: &str,
    name: &str,
) -> Result<(String, String), EngineError> {
    let labels = labels::for_run(run_id);
    let memory = (limits.memory_mb * 1024 * 1024) as i64;
    let host_config = HostConfig {
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: limits
            .cpuset
            .is_none()
            .then_some((limits.cpus * 1e9) as i64),
        cpuset_cpus: limits.cpuset.clone(),
        pids_limit: Some(limits.pids_limit),
        ulimits: Some(vec![
            ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(limits.nofile),
                hard: Some(limits.nofile),
            },
            ResourcesUlimits {
                name: Some("core".into()),
                soft: Some(0),
                hard: Some(0),
            },
        ]),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_string(),
            format!("rw,noexec,nosuid,nodev,size={}m", limits.tmpfs_mb),
        )])),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        privileged: Some(false),
        init: Some(true),
        network_mode: Some(net_name.to_string()),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".into(), "1m".into()),
                ("max-file".into(), "2".into()),
            ])),
        }),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        user: Some(SANDBOX_USER.into()),
        labels: Some(labels),
        // Only what the service needs; nothing from proctor's own environment.
        env: Some(vec!["HOME=/tmp".into()]),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                net_name.to_string(),
                EndpointSettings::default(),
            )])),
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    let created = deadline(
        CALL_TIMEOUT,
        "create the container",
        engine.docker.create_container(Some(options), body),
    )
    .await?;
    let id = created.id;
    deadline(
        CALL_TIMEOUT,
        "start the container",
        engine.docker.start_container(&id, None),
    )
    .await?;

    let inspect = deadline(
        CALL_TIMEOUT,
        "inspect the container",
        engine.docker.inspect_container(&id, None),
    )
    .await?;
    let ip = inspect
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut nets| nets.remove(net_name))
        .and_then(|e| e.ip_address)
        .filter(|ip| !ip.is_empty())
        // A container that exits at once has no address; that is the candidate's fault, and
        // the caller will see the exit.
        .unwrap_or_default();
    Ok((id, ip))
}

/// The container's exit, if it has stopped.
pub async fn exit_info(engine: &Engine, id: &str) -> Result<Option<ExitInfo>, EngineError> {
    let inspect = deadline(
        CALL_TIMEOUT,
        "inspect the container",
        engine.docker.inspect_container(id, None),
    )
    .await?;
    let state = inspect.state.unwrap_or_default();
    if state.running.unwrap_or(false) {
        return Ok(None);
    }
    Ok(Some(ExitInfo {
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
    }))
}

/// Resolves when the container stops (polled, so that a lost event stream cannot hang it).
pub async fn wait_exit(engine: &Engine, id: &str) -> Result<ExitInfo, EngineError> {
    loop {
        if let Some(info) = exit_info(engine, id).await? {
            return Ok(info);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The last `max_lines` of stdout and stderr, sanitized and cut at `max_bytes`.
pub async fn log_tail(engine: &Engine, id: &str, max_lines: usize, max_bytes: usize) -> String {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&max_lines.to_string())
        .build();
    let mut stream = engine.docker.logs(id, Some(options));
    let mut raw = Vec::new();
    let collect = async {
        while let Some(Ok(chunk)) = stream.next().await {
            raw.extend_from_slice(&chunk.into_bytes());
            if raw.len() > max_bytes * 4 {
                break;
            }
        }
    };
    // Logs are evidence, not a reason to hang: take what arrives within the deadline.
    let _ = tokio::time::timeout(Duration::from_secs(10), collect).await;
    let text = String::from_utf8_lossy(&raw);
    let text = sanitize(&text, usize::MAX);
    // Keep the end: that is where the crash is.
    let start = text.len().saturating_sub(max_bytes);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}
