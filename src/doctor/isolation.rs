//! What keeps a submission in its box: the cgroup mechanism and the limits the kernel enforces
//! on its container, the process limit on its build, and the firewall rule that shuts it out of
//! the host's ports. Without one of them a grade is measured without that limit.

use super::container::{cgroup_mount_problem, Place, Reach, CGROUP_FLAG, FIREWALL_FLAG};
use super::Check;
use crate::sandbox::system::SystemFacts;
use crate::sandbox::EngineInfo;

/// The cgroup version and driver say which kernel mechanism enforces the sandbox's limits. The
/// driver `none` (rootless Docker on cgroup v1) means no limits at all.
pub(super) fn cgroup_check(info: &SystemFacts) -> Check {
    let name = "cgroups";
    let version = info.cgroup_version.as_deref().unwrap_or("1");
    let driver = info.cgroup_driver.as_deref();
    let detail = format!(
        "cgroup v{version}, driver {}",
        driver.unwrap_or("not reported")
    );
    if driver == Some("none") {
        Check::fail(
            name,
            format!("{detail}: the engine cannot limit containers at all"),
            "run the engine with cgroups (rootless Docker needs cgroup v2 with systemd delegation: see docs.docker.com/engine/security/rootless)",
        )
    } else {
        Check::ok(name, detail)
    }
}

/// Whether the kernel enforces each limit the sandbox sets: memory (a submission could exhaust
/// the machine, and the OOM verdict needs it), pids (fork bombs), CPU quota (`nano_cpus`; the
/// engine refuses to create the container without it), swap (memory = swap is the "no swap"
/// rule; without it a service may swap past its limit and its latency means nothing) and
/// cpusets (graders that pin the service and the load generator to their own cores).
pub(super) fn limits_check(info: &SystemFacts) -> Check {
    let name = "resource limits";
    let cgroup_v1 = info.cgroup_version.as_deref() != Some("2");
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    if !info.memory_limit {
        fails.push("memory limits are not enforced");
    }
    if !info.pids_limit {
        fails.push("pids limits are not enforced");
    }
    if !info.cpu_cfs_quota {
        fails.push("CPU quotas are not supported (the engine refuses CPU-limited containers)");
    }
    if !info.swap_limit {
        warns.push("swap is not limited (a service may swap beyond its memory limit)");
    }
    if !info.cpuset {
        warns.push("cpusets are not supported (graders with cpuset cannot pin cores)");
    }
    // The engine's own words about limits, next to ours.
    let engine_says: Vec<String> = info
        .warnings
        .iter()
        .filter(|w| {
            let w = w.to_ascii_lowercase();
            ["limit", "swap", "cgroup", "memory", "pids", "cpu"]
                .iter()
                .any(|k| w.contains(k))
        })
        .map(|w| crate::http::sanitize(w, 200))
        .collect();
    let mut detail = fails
        .iter()
        .chain(warns.iter())
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
    if !engine_says.is_empty() {
        detail.push_str(&format!(" (engine: {})", engine_says.join(" / ")));
    }
    let controllers = if cgroup_v1 {
        "enable the controllers on the kernel command line (e.g. `cgroup_enable=memory swapaccount=1` in GRUB_CMDLINE_LINUX, then update-grub and reboot)"
    } else {
        "make sure the memory, pids and cpu controllers are enabled and delegated to the engine (cgroup.subtree_control)"
    };
    if !fails.is_empty() {
        Check::fail(name, detail, controllers)
    } else if !warns.is_empty() {
        let fix = if info.swap_limit {
            controllers.to_string()
        } else {
            format!("{controllers}; or turn swap off (`swapoff -a`)")
        };
        Check::warn(name, detail, fix)
    } else {
        Check::ok(
            name,
            "memory, swap, pids, CPU quota and cpuset limits are enforced",
        )
    }
}

/// The build's process limit (`sandbox::build_cgroup`): without it a `RUN` fork bomb can fill
/// the host's process table. Tried for real: a cgroup is created and removed. From a container
/// it must be the host's hierarchy: the engine finds the build's cgroup by its path there.
pub(super) fn build_limit_check(info: &EngineInfo, place: &Place) -> Check {
    const NAME: &str = "build process limit";
    let fix = if place.in_container() {
        format!("{CGROUP_FLAG}; the engine must use the cgroupfs driver (dockerd --exec-opt native.cgroupdriver=cgroupfs)")
    } else {
        "run proctor as root on the engine's machine, with the engine's cgroupfs driver \
         (dockerd --exec-opt native.cgroupdriver=cgroupfs), or grade in a throwaway VM"
            .to_string()
    };
    if !info.local {
        return Check::warn(NAME, "the engine runs on another machine", fix);
    }
    if let Some(problem) = cgroup_mount_problem(&place.mounts) {
        return Check::warn(NAME, format!("builds run without one: {problem}"), fix);
    }
    let probe = format!("doctor-{}-probe", std::process::id());
    match crate::sandbox::build_cgroup::create(&probe, 64, info.cgroup_driver.as_deref()) {
        Ok(_cgroup) => Check::ok(NAME, "builds run in a cgroup with a pids limit"),
        Err(e) => Check::warn(NAME, format!("builds run without one: {e}"), fix),
    }
}

/// The rule that closes the host's own ports to a candidate's container (`sandbox::firewall`).
/// It must go into the host's network namespace: one added in a container's own namespace
/// would be accepted and protect nothing, so then it is not tried.
pub(super) async fn firewall_check(info: &EngineInfo, place: &Place, reach: Reach) -> Check {
    const NAME: &str = "host firewall";
    let fix = if place.in_container() {
        FIREWALL_FLAG
    } else {
        "run proctor as root on the engine's machine, with iptables installed"
    };
    if !info.local {
        return Check::warn(NAME, "the engine runs on another machine", fix);
    }
    if reach == Reach::Separate {
        return Check::warn(
            NAME,
            "services could reach ports on the host: a rule added here would go into this network namespace, not the host's",
            fix,
        );
    }
    match crate::sandbox::firewall::probe().await {
        Ok(()) => Check::ok(
            NAME,
            "each run's network is shut out of the host's ports (iptables INPUT rule)",
        ),
        Err(e) => Check::warn(
            NAME,
            format!("services could reach ports on this machine: {e}"),
            fix,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn missing_limits_fail_and_missing_swap_limit_warns() {
        let all = SystemFacts {
            memory_limit: true,
            pids_limit: true,
            swap_limit: true,
            cpu_cfs_quota: true,
            cpuset: true,
            ..Default::default()
        };
        assert_eq!(limits_check(&all).status, Status::Ok);
        let no_swap = SystemFacts {
            swap_limit: false,
            warnings: vec!["WARNING: No swap limit support".into()],
            ..all.clone()
        };
        let c = limits_check(&no_swap);
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("No swap limit support"), "{}", c.detail);
        assert!(c.fix.unwrap().contains("swapaccount=1"));
        let no_pids = SystemFacts {
            pids_limit: false,
            ..all.clone()
        };
        assert_eq!(limits_check(&no_pids).status, Status::Fail);
        assert_eq!(limits_check(&SystemFacts::default()).status, Status::Fail);
    }
}
