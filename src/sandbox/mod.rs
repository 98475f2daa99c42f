//! Everything that talks to the Docker engine: connecting, building the candidate's image,
//! running it in a sandbox, reading its logs and state, and removing what a run created.
//!
//! Errors are split by whose fault they are: `EngineError` is the harness's (engine gone, API
//! failure: an `infrastructure_error`), while what the submission caused (a failing build, a
//! forbidden base image) comes back as data (`BuildFailure`), never as an `EngineError`.

pub mod build;
pub mod build_cgroup;
pub mod cleanup;
pub mod container;
pub mod control;
pub mod dockerfile;
pub mod firewall;
pub mod job;
pub mod labels;
pub mod monitor;
pub mod session;
pub mod system;

pub use session::{BaseImageError, ContainerFacts, Service, Session};

use std::time::Duration;

use bollard::Docker;

/// A failure of the engine or of proctor's use of it: never the candidate's fault.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at {host}: {detail}. Is the daemon running, and is DOCKER_HOST right?")]
    Unreachable { host: String, detail: String },
    #[error("Docker engine error while trying to {action}: {detail}")]
    Api { action: String, detail: String },
    #[error("the Docker engine did not answer within {0:?} while trying to {1}")]
    Timeout(Duration, String),
}

impl EngineError {
    pub fn api(action: impl Into<String>, e: impl std::fmt::Display) -> EngineError {
        EngineError::Api {
            action: action.into(),
            detail: crate::http::sanitize(&e.to_string(), 500),
        }
    }

    /// The report's `verdict` for it.
    pub fn verdict(&self) -> crate::verdict::Verdict {
        use crate::verdict::Verdict;
        match self {
            EngineError::Unreachable { .. } => Verdict::EngineUnreachable,
            EngineError::Api { .. } => Verdict::EngineError,
            EngineError::Timeout(..) => Verdict::EngineTimeout,
        }
    }
}

/// Runs an engine call with a deadline: bollard's own timeout covers only the response headers.
pub async fn deadline<T, E: std::fmt::Display>(
    limit: Duration,
    action: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(EngineError::api(action, e)),
        Err(_) => Err(EngineError::Timeout(limit, action.to_string())),
    }
}

/// Versions recorded in every report: containers are only as strong as the runtime under them.
#[derive(Debug, Clone, Default)]
pub struct EngineInfo {
    pub version: Option<String>,
    pub api_version: Option<String>,
    pub runc_version: Option<String>,
    pub os: Option<String>,
    /// `cgroupfs` or `systemd` (`docker info`); decides whether builds can get a pids limit.
    pub cgroup_driver: Option<String>,
    /// The engine listens on a local socket, so its cgroups are this machine's.
    pub local: bool,
}

impl EngineInfo {
    /// A warning when runc predates the fixes for the 2025 container-escape CVEs, which an
    /// ordinary Dockerfile can exploit (fixed in 1.2.8 and 1.3.3).
    pub fn runc_warning(&self) -> Option<String> {
        let v = self.runc_version.as_deref()?;
        let nums: Vec<u32> = v
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .take(3)
            .filter_map(|p| p.parse().ok())
            .collect();
        let (major, minor, patch) = match nums.as_slice() {
            [a, b, c, ..] => (*a, *b, *c),
            _ => return None,
        };
        let fixed = match (major, minor) {
            (0, _) | (1, 0..=1) => false,
            (1, 2) => patch >= 8,
            (1, 3) => patch >= 3,
            _ => true,
        };
        (!fixed).then(|| {
            format!(
                "runc {v} predates the fixes for the 2025 runc CVEs (1.2.8 / 1.3.3): a container is a weak boundary on this machine; grade untrusted submissions in a throwaway VM or update runc"
            )
        })
    }
}

/// A connected, answering engine.
#[derive(Clone)]
pub struct Engine {
    /// Only the sandbox's modules speak to the engine.
    docker: Docker,
    pub info: EngineInfo,
}

/// Default time for one short engine call (create, inspect, remove).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Engine {
    /// Connects as the docker CLI would (`DOCKER_HOST`, else the local socket) and checks that
    /// the engine answers.
    pub async fn connect() -> Result<Engine, EngineError> {
        let host =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable = |detail: String| EngineError::Unreachable {
            host: host.clone(),
            detail,
        };
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
        let version = match tokio::time::timeout(Duration::from_secs(10), docker.version()).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(unreachable(crate::http::root_cause(&e))),
            Err(_) => return Err(unreachable("no answer within 10s".into())),
        };
        let runc_version = version
            .components
            .as_ref()
            .and_then(|cs| cs.iter().find(|c| c.name.eq_ignore_ascii_case("runc")))
            .map(|c| c.version.clone());
        // Only for the cgroup driver: an engine that will not say is graded without the build's
        // process limit, not refused.
        let system = tokio::time::timeout(Duration::from_secs(10), docker.info())
            .await
            .ok()
            .and_then(Result::ok);
        let info = EngineInfo {
            cgroup_driver: system.and_then(|s| s.cgroup_driver).map(|d| d.to_string()),
            local: host.starts_with("unix://"),
            version: version.version.clone(),
            api_version: version.api_version.clone(),
            runc_version,
            os: version
                .os
                .clone()
                .map(|os| format!("{os}/{}", version.arch.clone().unwrap_or_default())),
        };
        Ok(Engine { docker, info })
    }
}

#[cfg(test)]
mod tests {
    use super::EngineInfo;

    fn info(v: &str) -> EngineInfo {
        EngineInfo {
            runc_version: Some(v.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn old_runc_is_flagged_and_fixed_ones_are_not() {
        assert!(info("1.1.5+ds1").runc_warning().is_some());
        assert!(info("1.2.7").runc_warning().is_some());
        assert!(info("1.2.8").runc_warning().is_none());
        assert!(info("1.3.2").runc_warning().is_some());
        assert!(info("v1.3.3").runc_warning().is_none());
        assert!(info("1.4.0").runc_warning().is_none());
        assert!(EngineInfo::default().runc_warning().is_none());
    }
}
