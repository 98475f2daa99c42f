//! The engine itself: whether it answers (and where proctor looked for it), whether its API
//! version knows every sandbox setting proctor sends, the runtime containers run under, and the
//! storage driver builds write through.

use super::Check;
use crate::sandbox::system::SystemFacts;
use crate::sandbox::{EngineError, EngineInfo};

/// Below this API version the engine does not know fields the sandbox relies on: `Init` and
/// `NanoCpus` (1.25), `PidsLimit` (1.23), tmpfs mounts (1.22). bollard 0.21.1 (pinned in
/// Cargo.toml) sends requests without a version prefix (bollard issue #736), so the engine reads
/// them at its own API version, and an older engine drops fields it does not know without an
/// error: the container would run without them.
pub const MIN_API: (u32, u32) = (1, 25);

/// The oldest API version proctor is tested against (Docker 20.10). Between `MIN_API` and this,
/// grading should work but is untested; the build's builder selection (`version=1`, API 1.38) is
/// one of the fields an older engine ignores (harmlessly: it only has the classic builder).
pub const TESTED_API: (u32, u32) = (1, 41);

/// Where proctor looks for the engine: `DOCKER_HOST`, as the docker CLI does, else the local
/// socket.
pub(super) fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// The engine answers. Everything proctor does goes through it: intake aside, no stage can run
/// without it, and a grade run without one ends as `engine_unreachable`.
pub(super) fn engine_check(info: &EngineInfo, host: &str) -> Check {
    Check::ok(
        "engine",
        format!(
            "Docker {} at {host}{}",
            info.version.as_deref().unwrap_or("(version not reported)"),
            info.os
                .as_deref()
                .map(|os| format!(" ({os})"))
                .unwrap_or_default()
        ),
    )
}

/// The engine did not answer: say why in the terms of the likely cause.
pub(super) fn unreachable_check(e: &EngineError, host: &str) -> Check {
    let detail = match e {
        EngineError::Unreachable { detail, .. } => {
            format!("cannot reach the Docker engine at {host}: {detail}; the other engine checks were skipped")
        }
        other => format!("{other}; the other engine checks were skipped"),
    };
    let lower = detail.to_ascii_lowercase();
    let start = "start the engine: `sudo systemctl start docker`, or where there is no systemd `sudo dockerd >/var/log/dockerd.log 2>&1 &`";
    let fix = if lower.contains("permission denied") {
        format!("the socket at {host} is not accessible to this user: run proctor as root or add the user to the docker group (`sudo usermod -aG docker $USER`, then log in again)")
    } else if std::env::var_os("DOCKER_HOST").is_some() {
        format!("DOCKER_HOST is set to {host}: point it at a running engine (or unset it to use /var/run/docker.sock); if that engine is down, {start}")
    } else {
        format!("{start}; or set DOCKER_HOST to the engine's address (e.g. unix:///run/user/1000/docker.sock for rootless Docker)")
    };
    Check::fail("engine", detail, fix)
}

/// Parses `1.41` into (1, 41).
fn parse_api(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The engine's API version is new enough for the sandbox settings proctor sends (see `MIN_API`
/// for why an older one would run a submission without some of its limits).
pub(super) fn api_check(api: Option<&str>) -> Check {
    let name = "api version";
    let fmt = |(a, b): (u32, u32)| format!("{a}.{b}");
    let upgrade =
        "upgrade the Docker engine (Debian: `apt-get install docker.io`; or Docker's own packages)";
    match api.and_then(parse_api) {
        None => Check::warn(
            name,
            format!("the engine reports no readable API version ({api:?})"),
            "check `docker version`: proctor needs API 1.25 or newer and is tested on 1.41",
        ),
        Some(v) if v < MIN_API => Check::fail(
            name,
            format!(
                "API {}: older than {}, so the engine would silently drop sandbox settings (init, CPU and pids limits)",
                fmt(v),
                fmt(MIN_API)
            ),
            upgrade,
        ),
        Some(v) if v < TESTED_API => Check::warn(
            name,
            format!(
                "API {}: proctor needs {} and is tested on {} and newer",
                fmt(v),
                fmt(MIN_API),
                fmt(TESTED_API)
            ),
            upgrade,
        ),
        Some(v) => Check::ok(
            name,
            format!(
                "API {} (needs {}; bollard 0.21.1 sends unversioned requests, read at the engine's version)",
                fmt(v),
                fmt(MIN_API)
            ),
        ),
    }
}

/// runc is the boundary between a candidate's code and the machine. Releases before 1.2.8 /
/// 1.3.3 have container escapes (2025 CVEs) reachable from an ordinary Dockerfile; the warning
/// is the one every report carries (`EngineInfo::runc_warning`). A default runtime other than
/// runc (e.g. gVisor's runsc) is what the sandbox runs under instead.
pub(super) fn runc_check(info: &EngineInfo, default_runtime: Option<&str>) -> Check {
    let name = "runc";
    if let Some(rt) = default_runtime.filter(|rt| !rt.is_empty() && *rt != "runc") {
        return Check::ok(
            name,
            format!(
                "containers run under the default runtime {rt:?}, not runc (runc {})",
                info.runc_version.as_deref().unwrap_or("not reported")
            ),
        );
    }
    match (&info.runc_version, info.runc_warning()) {
        (None, _) => Check::warn(
            name,
            "the engine does not report a runc version, so proctor cannot tell whether it has the 2025 escape fixes",
            "check `docker version` (Server > runc) and make sure runc is 1.2.8, 1.3.3 or newer",
        ),
        (Some(_), Some(warning)) => Check::warn(
            name,
            warning,
            "install runc 1.2.8, 1.3.3 or newer for the engine (the distribution's runc/containerd update, or the static binary from github.com/opencontainers/runc releases), then restart the engine",
        ),
        (Some(v), None) => Check::ok(name, format!("runc {v} (has the 2025 escape fixes)")),
    }
}

/// The storage driver decides how fast builds are and how much disk each layer costs. `vfs`
/// copies every layer in full; `aufs`, `devicemapper` and `overlay` are deprecated.
pub(super) fn storage_check(info: &SystemFacts) -> Check {
    let name = "storage driver";
    let driver = info.storage_driver.clone().unwrap_or_default();
    let fix = "use overlay2 (`\"storage-driver\": \"overlay2\"` in /etc/docker/daemon.json, on an ext4 or xfs (ftype=1) root dir), then restart the engine; existing images must be rebuilt";
    match driver.as_str() {
        "overlay2" | "btrfs" | "zfs" => Check::ok(name, driver),
        "fuse-overlayfs" => Check::ok(
            name,
            "fuse-overlayfs (overlay in userspace: works, builds are slower than with overlay2)",
        ),
        "vfs" => Check::warn(
            name,
            "vfs: every layer is a full copy, so builds are slow and use a lot of disk",
            fix,
        ),
        "" => Check::warn(name, "the engine reports no storage driver", fix),
        other => Check::warn(
            name,
            format!(
                "{other}: deprecated or unusual; proctor is tested on overlay2 and fuse-overlayfs"
            ),
            fix,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn api_versions_are_graded_against_what_the_sandbox_needs() {
        assert_eq!(api_check(Some("1.24")).status, Status::Fail);
        assert_eq!(api_check(Some("1.25")).status, Status::Warn);
        assert_eq!(api_check(Some("1.40")).status, Status::Warn);
        assert_eq!(api_check(Some("1.41")).status, Status::Ok);
        assert_eq!(api_check(Some("1.53")).status, Status::Ok);
        assert_eq!(api_check(Some("2.0")).status, Status::Ok);
        assert_eq!(api_check(None).status, Status::Warn);
        assert_eq!(api_check(Some("x")).status, Status::Warn);
    }

    #[test]
    fn old_runc_warns_with_the_shared_warning() {
        let info = EngineInfo {
            runc_version: Some("1.1.5+ds1".into()),
            ..Default::default()
        };
        let c = runc_check(&info, Some("runc"));
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.detail, info.runc_warning().unwrap());
        let fixed = EngineInfo {
            runc_version: Some("1.3.3".into()),
            ..Default::default()
        };
        assert_eq!(runc_check(&fixed, None).status, Status::Ok);
        assert_eq!(runc_check(&info, Some("runsc")).status, Status::Ok);
    }
}
