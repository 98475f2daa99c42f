//! What the engine says about itself and its images, in proctor's own types: the facts
//! `proctor doctor` grades the machine on, and whether a base image is there. Only the sandbox
//! speaks bollard; the rest of proctor reads these plain structs, so a bollard upgrade that
//! reshapes its models stops here.

use std::time::Duration;

use bollard::models::SystemInfo;

use super::{deadline, Engine, EngineError};

/// Deadline of each read here: they are quick on an answering engine, and a doctor that waits
/// the sandbox's `CALL_TIMEOUT` per image looks hung. (Connecting has its own 10 s in
/// `Engine::connect`.)
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The engine's `docker info`, reduced to what proctor checks. A string the engine leaves out
/// or leaves empty is `None`; a limit it does not report is `false` (not enforced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemFacts {
    /// `1` or `2`.
    pub cgroup_version: Option<String>,
    /// `cgroupfs`, `systemd`, or `none` (no limits at all: rootless Docker on cgroup v1).
    pub cgroup_driver: Option<String>,
    /// The storage driver (`overlay2`, `fuse-overlayfs`, `vfs`, ...).
    pub storage_driver: Option<String>,
    /// Where the engine keeps images, build contexts and logs (Docker Root Dir).
    pub root_dir: Option<String>,
    /// CPUs the engine sees.
    pub cpus: Option<i64>,
    /// The runtime containers get when none is named (`runc`, or e.g. gVisor's `runsc`).
    pub default_runtime: Option<String>,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub pids_limit: bool,
    /// CPU quotas (`nano_cpus`).
    pub cpu_cfs_quota: bool,
    pub cpuset: bool,
    /// The engine's own warnings, as it words them.
    pub warnings: Vec<String>,
}

impl From<SystemInfo> for SystemFacts {
    fn from(info: SystemInfo) -> SystemFacts {
        let text = |s: Option<String>| s.filter(|s| !s.is_empty());
        let on = |v: Option<bool>| v.unwrap_or(false);
        SystemFacts {
            cgroup_version: text(info.cgroup_version.map(|v| v.to_string())),
            cgroup_driver: text(info.cgroup_driver.map(|d| d.to_string())),
            storage_driver: text(info.driver),
            root_dir: text(info.docker_root_dir),
            cpus: info.ncpu,
            default_runtime: text(info.default_runtime),
            memory_limit: on(info.memory_limit),
            swap_limit: on(info.swap_limit),
            pids_limit: on(info.pids_limit),
            cpu_cfs_quota: on(info.cpu_cfs_quota),
            cpuset: on(info.cpu_set),
            warnings: info.warnings.unwrap_or_default(),
        }
    }
}

/// Reads the engine's system facts (`docker info`).
pub async fn system_info(engine: &Engine) -> Result<SystemFacts, EngineError> {
    deadline(READ_TIMEOUT, "read the engine's info", engine.docker.info())
        .await
        .map(SystemFacts::from)
}

/// An image in the engine, as `docker image inspect` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// `sha256:...`.
    pub id: Option<String>,
    /// Bytes.
    pub size: Option<i64>,
}

/// The image tagged `image` in the engine, or `None` when there is none (the engine's 404):
/// proctor never pulls, so a missing image stays missing.
pub async fn find_image(engine: &Engine, image: &str) -> Result<Option<ImageFacts>, EngineError> {
    deadline(READ_TIMEOUT, &format!("inspect image {image}"), async {
        match engine.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(ImageFacts {
                id: i.id,
                size: i.size,
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await
}

/// Whether the image tagged `image` is in the engine.
pub async fn image_exists(engine: &Engine, image: &str) -> Result<bool, EngineError> {
    find_image(engine, image).await.map(|i| i.is_some())
}

/// The host interfaces of the engine's bridge networks: `docker0` (or whatever the default
/// bridge is called) and `br-<id>` for the others. A service on a run's network is reachable
/// from where these interfaces are: `proctor doctor` looks for them to tell whether it runs in
/// the engine's network namespace.
pub async fn bridge_interfaces(engine: &Engine) -> Result<Vec<String>, EngineError> {
    let networks = deadline(
        READ_TIMEOUT,
        "list the engine's networks",
        engine
            .docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>),
    )
    .await?;
    Ok(networks
        .into_iter()
        .filter(|n| n.driver.as_deref() == Some("bridge"))
        .filter_map(|n| {
            let named = n
                .options
                .as_ref()
                .and_then(|o| o.get("com.docker.network.bridge.name"))
                .filter(|b| !b.is_empty())
                .cloned();
            named.or_else(|| n.id.as_deref().map(super::firewall::bridge_of))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum};

    #[test]
    fn empty_strings_are_not_reported_and_unreported_limits_are_off() {
        let facts = SystemFacts::from(SystemInfo {
            cgroup_version: Some(SystemInfoCgroupVersionEnum::EMPTY),
            cgroup_driver: Some(SystemInfoCgroupDriverEnum::EMPTY),
            driver: Some(String::new()),
            memory_limit: Some(true),
            ..Default::default()
        });
        assert_eq!(
            facts,
            SystemFacts {
                memory_limit: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn the_engines_words_are_kept() {
        let facts = SystemFacts::from(SystemInfo {
            cgroup_version: Some(SystemInfoCgroupVersionEnum::_2),
            cgroup_driver: Some(SystemInfoCgroupDriverEnum::NONE),
            driver: Some("overlay2".into()),
            docker_root_dir: Some("/var/lib/docker".into()),
            ncpu: Some(4),
            default_runtime: Some("runsc".into()),
            cpu_set: Some(true),
            warnings: Some(vec!["WARNING: No swap limit support".into()]),
            ..Default::default()
        });
        assert_eq!(facts.cgroup_version.as_deref(), Some("2"));
        assert_eq!(facts.cgroup_driver.as_deref(), Some("none"));
        assert_eq!(facts.storage_driver.as_deref(), Some("overlay2"));
        assert_eq!(facts.root_dir.as_deref(), Some("/var/lib/docker"));
        assert_eq!(facts.cpus, Some(4));
        assert_eq!(facts.default_runtime.as_deref(), Some("runsc"));
        assert!(facts.cpuset && !facts.swap_limit);
        assert_eq!(facts.warnings, ["WARNING: No swap limit support"]);
    }
}
