//! Where proctor runs: on the engine's machine, or in a container that was handed the engine's
//! socket (the harness image, docker/harness). From a container proctor still drives the
//! engine, but four things it relies on belong to the host and must be shared with it:
//!
//! - the **network namespace**: proctor talks to the service's own address on its run's
//!   internal network, which only the host's namespace reaches, and the firewall rule must go
//!   into the host's INPUT chain;
//! - the **pid namespace**: a run is swept when the pid in its id is gone, so every proctor on
//!   the engine must see the others' pids, or each sweep removes the others' running grades;
//! - the **cgroup filesystem**: the build's process limit is a cgroup that the engine finds by
//!   its path in the host's hierarchy;
//! - the **latency lock**: one file that every proctor on the machine agrees on.
//!
//! Each check says whether one holds and, when it does not, which `docker run` flag gives it.
//! The decisions are pure functions of what was read, so they are tested without a container.

use std::path::{Path, PathBuf};

use super::Check;

/// The `docker run` flags (and Kubernetes fields) that share each piece, for the fixes.
const NETWORK_FLAG: &str =
    "run the container with `--network host` (Kubernetes: `hostNetwork: true`)";
const PID_FLAG: &str = "run the container with `--pid host` (Kubernetes: `hostPID: true`)";
pub(super) const CGROUP_FLAG: &str = "give the container the host's cgroup filesystem: `-v /sys/fs/cgroup:/sys/fs/cgroup --cgroupns host` (Kubernetes: a hostPath volume of /sys/fs/cgroup), and run it as root";
pub(super) const FIREWALL_FLAG: &str = "run the container as root with `--cap-add NET_ADMIN` and `--network host` (Kubernetes: `hostNetwork: true` and the NET_ADMIN capability)";

/// The host's lock, which proctor processes outside containers use unless
/// `PROCTOR_LATENCY_LOCK` moves it (`load::exclusive::lock_path`).
const HOST_LOCK: &str = "/tmp/proctor-latency.lock";

/// One line of /proc/self/mountinfo: which part (`root`) of which filesystem is mounted where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mount {
    /// The directory of the filesystem that appears at `mount_point` (`/` for a whole
    /// filesystem, `/docker/<id>` for a container's own cgroup, `/tmp` for a bind mount of it).
    pub root: String,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Where this process runs, as far as the files below say.
#[derive(Debug, Clone, Default)]
pub(super) struct Place {
    /// Why proctor takes itself to run in a container; `None` on the host.
    pub container: Option<String>,
    /// A `/.dockerenv` file on a machine that is not a container (a root filesystem made from
    /// an image): said in the check, so the file does not puzzle a reader.
    pub stray_dockerenv: bool,
    /// This process's mounts.
    pub mounts: Vec<Mount>,
}

impl Place {
    pub(super) fn here() -> Place {
        let mounts =
            parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
        let root_fs = mount_of(&mounts, Path::new("/")).map(|m| m.fstype.clone());
        let dockerenv = Path::new("/.dockerenv").exists();
        let container = container_evidence(
            dockerenv,
            Path::new("/run/.containerenv").exists(),
            std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
            &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            root_fs.as_deref(),
        );
        Place {
            stray_dockerenv: dockerenv && container.is_none(),
            container,
            mounts,
        }
    }

    pub(super) fn in_container(&self) -> bool {
        self.container.is_some()
    }
}

/// Parses /proc/self/mountinfo (`id parent major:minor root mount-point options [optional...]
/// - fstype source super-options`), unescaping the octal escapes of paths.
pub(super) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let head: Vec<&str> = head.split(' ').collect();
            let mut tail = tail.split(' ');
            Some(Mount {
                root: unescape(head.get(3)?),
                mount_point: PathBuf::from(unescape(head.get(4)?)),
                fstype: tail.next()?.to_string(),
                source: unescape(tail.next().unwrap_or("")),
            })
        })
        .collect()
}

/// The kernel writes space, tab, newline and backslash in paths as `\040`, `\011`, `\012`, `\134`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount that holds `path`: the deepest mount point above it, and of several on the same
/// point the last (it hides the ones under it).
pub(super) fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts.iter().filter(|m| path.starts_with(&m.mount_point)) {
        let depth = m.mount_point.components().count();
        if best.is_none_or(|b| depth >= b.mount_point.components().count()) {
            best = Some(m);
        }
    }
    best
}

/// Why this process runs in a container, or `None`. A cgroup path of a container runtime says
/// so for Docker (both drivers), Kubernetes, LXC and Podman; Podman also leaves
/// `/run/.containerenv`. Docker's `/.dockerenv` alone is not enough: a machine whose root
/// filesystem was made from an image keeps it. With a copy-on-write root filesystem it is.
pub(super) fn container_evidence(
    dockerenv: bool,
    containerenv: bool,
    kubernetes: bool,
    self_cgroup: &str,
    root_fstype: Option<&str>,
) -> Option<String> {
    const RUNTIMES: &[&str] = &[
        "/docker/",
        "/docker-",
        "kubepods",
        "/lxc/",
        "/libpod",
        "/containerd/",
    ];
    if containerenv {
        return Some("/run/.containerenv is there".into());
    }
    // Kubernetes gives every container of a pod the API's address; with cgroup v2 its
    // containers see their own cgroup as "/", and containerd leaves no marker file.
    if kubernetes {
        return Some("it runs in a Kubernetes pod: KUBERNETES_SERVICE_HOST is set".into());
    }
    let cgroup = self_cgroup
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find(|path| RUNTIMES.iter().any(|r| path.contains(r)));
    if let Some(path) = cgroup {
        return Some(format!("its cgroup is {path}"));
    }
    let cow = root_fstype
        .filter(|t| ["overlay", "fuse.fuse-overlayfs", "aufs"].contains(t))
        .map(str::to_string);
    match (dockerenv, cow) {
        (true, Some(fs)) => Some(format!(
            "/.dockerenv is there and the root filesystem is {fs}"
        )),
        _ => None,
    }
}

/// Whether proctor runs in a container, and why it thinks so: the checks after it read with
/// that in mind.
pub(super) fn container_check(place: &Place) -> Check {
    let name = "container";
    match &place.container {
        Some(why) => Check::ok(
            name,
            format!("proctor runs in a container ({why}); the next checks say whether it shares the host's network and pid namespaces, cgroup filesystem and latency lock"),
        ),
        None if place.stray_dockerenv => Check::ok(
            name,
            "proctor runs on the host (/.dockerenv is there, but the cgroups and the root filesystem are the machine's own)",
        ),
        None => Check::ok(name, "proctor runs on the host, not in a container"),
    }
}

/// Whether a service on a run's network can be reached from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reach {
    /// The engine's bridges are in this network namespace.
    Shared,
    /// None of them is: this is another namespace (a container's own, rootless Docker's).
    Separate,
    /// The engine could not say which bridges it has.
    Unknown,
}

/// The interface names of /proc/net/dev (this process's network namespace).
pub(super) fn interfaces(proc_net_dev: &str) -> Vec<String> {
    proc_net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// proctor sends every request to the service's own address on its run's internal network,
/// which the engine's bridge connects to the host's network namespace only. `bridges` are the
/// engine's bridge interfaces, `visible` the interfaces of this namespace.
pub(super) fn network_check(
    container: bool,
    bridges: Result<Vec<String>, String>,
    visible: &[String],
) -> (Check, Reach) {
    let name = "network namespace";
    let fix = if container {
        NETWORK_FLAG.to_string()
    } else {
        "run proctor in the engine's network namespace, on the engine's machine (rootless Docker keeps its networks in a namespace of its own: grade with a rootful engine)".to_string()
    };
    let bridges = match bridges {
        Ok(b) if !b.is_empty() => b,
        Ok(_) => {
            return (
                Check::warn(
                    name,
                    "the engine has no bridge network, so whether proctor can reach its containers from here is unknown",
                    fix,
                ),
                Reach::Unknown,
            )
        }
        Err(e) => {
            return (
                Check::warn(
                    name,
                    format!("cannot list the engine's networks ({e}), so whether proctor can reach its containers from here is unknown"),
                    fix,
                ),
                Reach::Unknown,
            )
        }
    };
    let shown = |list: &[String]| {
        let mut s = list.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if list.len() > 3 {
            s.push_str(", ...");
        }
        s
    };
    let seen: Vec<String> = bridges
        .iter()
        .filter(|b| visible.contains(b))
        .cloned()
        .collect();
    let here = if container {
        "this container shares the host's network namespace"
    } else {
        "proctor runs in the engine's network namespace"
    };
    if seen.is_empty() {
        (
            Check::fail(
                name,
                format!(
                    "none of the engine's bridges ({}) is in this network namespace: proctor cannot reach a service on its run's network (every grade would end as never_ready), and its firewall rule would protect nothing",
                    shown(&bridges)
                ),
                fix,
            ),
            Reach::Separate,
        )
    } else {
        (
            Check::ok(
                name,
                format!("{here}: the engine's bridges ({}) are here, so services on run networks are reachable", shown(&seen)),
            ),
            Reach::Shared,
        )
    }
}

/// Which process serves a unix socket, as the kernel says to this process: its pid in this
/// process's pid namespace, or 0 when it is in a namespace this one cannot see.
pub(super) fn socket_peer_pid(path: &Path) -> Result<u32, String> {
    use std::os::fd::AsRawFd;
    let stream = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the ucred we own.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot read the peer of {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(cred.pid.max(0) as u32)
}

/// A run belongs to the pid in its id, and every proctor's startup sweep (and `proctor gc`)
/// removes the runs whose pid is gone. Processes in separate pid namespaces cannot see each
/// other's pids, so each would remove the other's running grades. The engine's socket tells:
/// the kernel reports its server's pid as 0 to a process that cannot see it. `peer` is that
/// pid, `comm` the server's process name when it is visible.
pub(super) fn pid_check(container: bool, peer: Result<u32, String>, comm: Option<&str>) -> Check {
    let name = "pid namespace";
    let fix = if container {
        PID_FLAG
    } else {
        "run proctor in the pid namespace of the host that runs the engine"
    };
    match peer {
        Err(e) => Check::warn(
            name,
            format!("cannot tell whether proctor sees the engine's processes: {e}"),
            fix,
        ),
        Ok(0) => Check::fail(
            name,
            "the engine's process is not in this pid namespace: proctor here and proctor processes elsewhere on this engine cannot see each other's pids, so each one's sweep would remove the other's running grades",
            fix,
        ),
        Ok(pid) => {
            let what = comm.map(|c| format!(" ({})", c.trim())).unwrap_or_default();
            let here = if container { "this container shares the host's pid namespace" } else { "proctor sees the engine's processes" };
            Check::ok(
                name,
                format!("{here}: the engine's socket is served by pid {pid}{what}, so every proctor on this engine tells live runs from dead ones"),
            )
        }
    }
}

/// Why the cgroup filesystem here is not the host's whole hierarchy, if it is not: a build
/// cgroup made in a container's own subtree is not where the engine looks for it (the engine
/// resolves the build's cgroup parent from the hierarchy's root).
pub(super) fn cgroup_mount_problem(mounts: &[Mount]) -> Option<String> {
    // cgroup v1 has a pids hierarchy of its own; v2 one hierarchy at /sys/fs/cgroup.
    let m = mount_of(mounts, Path::new("/sys/fs/cgroup/pids"))?;
    if !m.fstype.starts_with("cgroup") {
        return None;
    }
    // Seen from a cgroup namespace of its own (cgroup v2's default for containers), the host's
    // hierarchy mounted in shows as the way up to it: `/..`, `/../..`.
    let hosts = m.root.split('/').all(|c| c.is_empty() || c == "..");
    (!hosts).then(|| {
        format!(
            "{} shows the cgroup subtree {}, not the host's hierarchy",
            m.mount_point.display(),
            m.root
        )
    })
}

/// The machine-wide latency lock (`load::exclusive`): two proctor processes keep their latency
/// measurements apart only when they lock the same file. From a container that takes a host
/// directory mounted in: a lock on the container's own filesystem is seen by no one outside.
/// Whether the mounted directory is the one the host's proctor processes use cannot be read
/// from here; the check says where the lock is.
pub(super) fn lock_check(container: bool, lock: &Path, mounts: &[Mount]) -> Check {
    let name = "latency lock";
    if !container {
        return Check::ok(
            name,
            format!("{}: shared by every proctor on this machine that uses the same file (PROCTOR_LATENCY_LOCK, default {HOST_LOCK})", lock.display()),
        );
    }
    let fix = format!(
        "mount the directory of the host's lock and point PROCTOR_LATENCY_LOCK at it: `-v /tmp:/host-tmp -e PROCTOR_LATENCY_LOCK=/host-tmp/proctor-latency.lock` shares the host's default {HOST_LOCK} (the harness image sets that variable already)"
    );
    let dir = lock.parent().unwrap_or(Path::new("/"));
    match mount_of(mounts, lock) {
        Some(m) if m.mount_point == lock => Check::warn(
            name,
            format!("{} is a file mounted on its own: its turnstile {}.turnstile beside it is the container's own, so a measurement waiting on the host does not hold back new builds here", lock.display(), lock.display()),
            fix,
        ),
        Some(m) if m.mount_point != Path::new("/") => Check::ok(
            name,
            format!(
                "{} is on a mount ({} of {} {}, at {}): shared with the proctor processes that lock the same file; on the host they use {HOST_LOCK} unless PROCTOR_LATENCY_LOCK moves it",
                lock.display(),
                m.root,
                m.fstype,
                m.source,
                m.mount_point.display()
            ),
        ),
        _ => Check::warn(
            name,
            format!(
                "{} is on this container's own filesystem ({} is not mounted from the host): proctor processes outside it do not see the lock, so their builds and measurements can overlap this one's latency measurement",
                lock.display(),
                dir.display()
            ),
            fix,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    /// A container's mounts, as Docker (cgroup v1, cgroupfs driver) lays them out.
    const CONTAINER: &str = "\
812 700 0:90 / / rw,relatime - fuse.fuse-overlayfs fuse-overlayfs rw
813 812 0:93 / /proc rw,nosuid - proc proc rw
820 812 0:97 / /sys ro,nosuid - sysfs sysfs ro
821 820 0:98 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
828 821 0:36 /docker/1a2b3c /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids
840 812 254:0 /var/lib/docker/containers/1a2b3c/hostname /etc/hostname rw - ext4 /dev/vda rw
";

    /// The same container with `-v /sys/fs/cgroup:/sys/fs/cgroup -v /tmp:/host-tmp`, and a
    /// directory path with a space in it.
    const SHARED: &str = "\
812 700 0:90 / / rw,relatime - fuse.fuse-overlayfs fuse-overlayfs rw
821 812 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
828 821 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
850 812 254:0 /tmp /host-tmp rw,relatime - ext4 /dev/vda rw
851 812 254:0 /srv/my\\040locks /locks rw,relatime - ext4 /dev/vda rw
";

    #[test]
    fn mountinfo_parses_and_finds_the_deepest_mount() {
        let mounts = parse_mountinfo(SHARED);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[4].root, "/srv/my locks");
        assert_eq!(mounts[4].fstype, "ext4");
        assert_eq!(mounts[4].source, "/dev/vda");
        let at = |p: &str| mount_of(&mounts, Path::new(p)).unwrap().mount_point.clone();
        assert_eq!(at("/host-tmp/proctor-latency.lock"), Path::new("/host-tmp"));
        assert_eq!(
            at("/sys/fs/cgroup/pids/x"),
            Path::new("/sys/fs/cgroup/pids")
        );
        assert_eq!(at("/tmp/x"), Path::new("/"));
        // Component-wise: /host-tmpx is not under /host-tmp.
        assert_eq!(at("/host-tmpx/l"), Path::new("/"));
        // Of two mounts on one point, the later hides the earlier.
        let stacked = parse_mountinfo(&format!(
            "{SHARED}900 812 0:50 / /host-tmp rw - tmpfs tmpfs rw\n"
        ));
        assert_eq!(
            mount_of(&stacked, Path::new("/host-tmp/l")).unwrap().fstype,
            "tmpfs"
        );
    }

    #[test]
    fn containers_are_told_from_hosts() {
        let docker_v1 = "4:memory:/docker/1a2b3c\n0::/\n";
        let docker_systemd = "0::/system.slice/docker-1a2b3c.scope\n";
        let kube = "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-9f.scope\n";
        let host = "4:memory:/user.slice\n0::/init.scope\n";
        let private = "0::/\n";
        let (overlay, ext4) = (Some("overlay"), Some("ext4"));
        // (/.dockerenv, /run/.containerenv, KUBERNETES_SERVICE_HOST, cgroup, root fs)
        let is = |d, c, k, cg, fs| container_evidence(d, c, k, cg, fs);
        assert!(is(false, false, false, docker_v1, ext4)
            .unwrap()
            .contains("/docker/1a2b3c"));
        assert!(is(false, false, false, docker_systemd, None).is_some());
        assert!(is(false, false, false, kube, None).is_some());
        assert!(is(false, true, false, host, None).is_some());
        // Private cgroup namespace (cgroup v2): the cgroup says "/", the layered root or
        // Kubernetes' variable tells.
        assert!(is(true, false, false, private, overlay).is_some());
        assert!(is(true, false, false, private, Some("fuse.fuse-overlayfs")).is_some());
        assert!(is(false, false, true, private, overlay)
            .unwrap()
            .contains("Kubernetes"));
        // A machine made from an image keeps /.dockerenv on a plain root filesystem.
        assert_eq!(is(true, false, false, host, ext4), None);
        assert_eq!(is(false, false, false, host, overlay), None);
        // The engine's own service on the host is not a container.
        let service = "0::/system.slice/docker.service\n";
        assert_eq!(is(false, false, false, service, ext4), None);
    }

    #[test]
    fn reachability_follows_the_engines_bridges() {
        let dev = "Inter-|   Receive\n face |bytes\n    lo: 1 2\n  eth0: 3 4\n";
        let container_ifs = interfaces(dev);
        assert_eq!(container_ifs, ["lo", "eth0"]);
        let host_ifs: Vec<String> = ["lo", "eth0", "docker0", "br-0123456789ab"]
            .map(String::from)
            .into();
        let bridges = || Ok(vec!["docker0".to_string(), "br-0123456789ab".to_string()]);

        let (c, reach) = network_check(true, bridges(), &host_ifs);
        assert_eq!((c.status, reach), (Status::Ok, Reach::Shared));
        assert!(
            c.detail.contains("shares the host's network namespace"),
            "{}",
            c.detail
        );

        let (c, reach) = network_check(true, bridges(), &container_ifs);
        assert_eq!((c.status, reach), (Status::Fail, Reach::Separate));
        assert!(c.fix.unwrap().contains("--network host"));
        // On the host (rootless Docker's namespace), the fix is not a docker run flag.
        let (c, _) = network_check(false, bridges(), &container_ifs);
        assert!(!c.fix.unwrap().contains("--network"));

        // One bridge is enough (a run's network may be removed while doctor looks).
        let (c, _) = network_check(true, bridges(), &["docker0".to_string()]);
        assert_eq!(c.status, Status::Ok);
        assert_eq!(network_check(true, Ok(vec![]), &host_ifs).1, Reach::Unknown);
        assert_eq!(
            network_check(true, Err("x".into()), &host_ifs).0.status,
            Status::Warn
        );
    }

    #[test]
    fn an_invisible_engine_process_means_separate_pid_namespaces() {
        let c = pid_check(true, Ok(0), None);
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("--pid host"));
        let c = pid_check(true, Ok(812), Some("dockerd\n"));
        assert_eq!(c.status, Status::Ok);
        assert!(c.detail.contains("pid 812 (dockerd)"), "{}", c.detail);
        assert_eq!(
            pid_check(false, Err("refused".into()), None).status,
            Status::Warn
        );
    }

    #[test]
    fn the_peer_of_a_socket_in_this_process_is_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(socket_peer_pid(&path).unwrap(), std::process::id());
        assert!(socket_peer_pid(&dir.path().join("none")).is_err());
    }

    #[test]
    fn a_containers_own_cgroup_subtree_is_not_the_hosts() {
        let problem = cgroup_mount_problem(&parse_mountinfo(CONTAINER)).unwrap();
        assert!(problem.contains("/docker/1a2b3c"), "{problem}");
        assert_eq!(cgroup_mount_problem(&parse_mountinfo(SHARED)), None);
        // cgroup v2: one hierarchy at /sys/fs/cgroup.
        let v2 =
            "1 0 0:1 / / rw - ext4 /dev/vda rw\n2 1 0:2 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup_mount_problem(&parse_mountinfo(v2)), None);
        let v2_own = v2.replace("0:2 / /sys", "0:2 /docker/1a2b /sys");
        assert!(cgroup_mount_problem(&parse_mountinfo(&v2_own)).is_some());
        // The host's hierarchy, seen from a cgroup namespace two levels down.
        let v2_namespaced = v2.replace("0:2 / /sys", "0:2 /../.. /sys");
        assert_eq!(cgroup_mount_problem(&parse_mountinfo(&v2_namespaced)), None);
    }

    #[test]
    fn the_lock_is_shared_only_from_a_mounted_directory() {
        let shared = parse_mountinfo(SHARED);
        let own = parse_mountinfo(CONTAINER);
        let lock = Path::new("/host-tmp/proctor-latency.lock");
        let c = lock_check(true, lock, &shared);
        assert_eq!(c.status, Status::Ok);
        assert!(c.detail.contains("/tmp of ext4"), "{}", c.detail);
        let c = lock_check(true, lock, &own);
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().contains("-v /tmp:/host-tmp"));
        // A file mounted alone leaves its turnstile behind.
        let file = parse_mountinfo(&format!("{CONTAINER}860 812 254:0 /tmp/proctor-latency.lock /tmp/proctor-latency.lock rw - ext4 /dev/vda rw\n"));
        let c = lock_check(true, Path::new("/tmp/proctor-latency.lock"), &file);
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("turnstile"), "{}", c.detail);
        // On the host, the lock is simply where it is.
        assert_eq!(
            lock_check(false, Path::new("/tmp/proctor-latency.lock"), &own).status,
            Status::Ok
        );
    }
}
