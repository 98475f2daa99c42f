//! A process limit for image builds. The Engine API's build endpoint takes memory and CPU limits
//! but no pids limit, so a `RUN` fork bomb could fill the host's process table (32768 entries on
//! many machines) and stall everything else on it, proctor included. The classic builder does
//! take a cgroup parent for its `RUN` containers: proctor creates one per run with `pids.max`
//! set, the engine (runc) creates each step's cgroup under it, and the kernel counts every
//! process of the build against the parent's limit.
//!
//! This needs the engine on this machine with the cgroupfs driver, and write access to the
//! cgroup filesystem (root). Where that is not the case the build runs without a process limit
//! and the run says so in a warning; `proctor doctor` reports it too.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Every build cgroup's name starts with this, followed by the run id.
pub const PREFIX: &str = "proctor-build-";

/// A build cgroup, removed when dropped (also when the build is cancelled). A cgroup still
/// holding a step the engine is stopping stays, and the next run's sweep removes it.
#[derive(Debug)]
pub struct BuildCgroup {
    name: String,
}

impl Drop for BuildCgroup {
    fn drop(&mut self) {
        // A cgroup still in use stays; the next sweep removes it.
        let _ = remove_named(Path::new(CGROUP_ROOT), &self.name);
    }
}

impl BuildCgroup {
    /// The value for the build's `cgroupparent` option.
    pub fn parent(&self) -> String {
        format!("/{}", self.name)
    }

    /// Waits (at most `limit`) until the engine has stopped the build's last step, then
    /// removes the cgroup. After a build timeout the engine needs a moment to kill the step.
    pub async fn release(&self, limit: std::time::Duration) {
        let root = Path::new(CGROUP_ROOT);
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline && has_processes(root, &self.name) {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        // Dropping it removes it: the caller drops it after this wait, so that a wait cut
        // short (Ctrl-C) leaves it for the next sweep rather than failing to remove it now.
    }
}

/// Creates the run's build cgroup with at most `pids_limit` processes. `cgroup_driver` is the
/// engine's (`docker info`). Errors say why the build has no process limit.
pub fn create(
    run_id: &str,
    pids_limit: i64,
    cgroup_driver: Option<&str>,
) -> io::Result<BuildCgroup> {
    if cgroup_driver != Some("cgroupfs") {
        return Err(io::Error::other(format!(
            "the engine's cgroup driver is {}, not cgroupfs",
            cgroup_driver.unwrap_or("unknown")
        )));
    }
    let name = format!("{PREFIX}{run_id}");
    let root = Path::new(CGROUP_ROOT);
    // cgroup v1 has a pids hierarchy of its own; v2 one tree with a pids controller.
    let dir = if root.join("pids").is_dir() {
        root.join("pids").join(&name)
    } else if fs::read_to_string(root.join("cgroup.controllers"))?
        .split_whitespace()
        .any(|c| c == "pids")
    {
        root.join(&name)
    } else {
        return Err(io::Error::other(
            "the kernel's pids controller is not available",
        ));
    };
    fs::create_dir(&dir)?;
    if let Err(e) = fs::write(dir.join("pids.max"), pids_limit.to_string()) {
        let _ = fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(BuildCgroup { name })
}

/// Removes the build cgroups of runs whose owner is gone. Returns how many were removed.
pub fn sweep(alive: impl Fn(&str) -> bool) -> usize {
    let root = Path::new(CGROUP_ROOT);
    let mut names: Vec<String> = hierarchies(root)
        .into_iter()
        .flat_map(|h| fs::read_dir(h).into_iter().flatten().flatten())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(PREFIX))
        .collect();
    names.sort();
    names.dedup();
    let mut removed = 0;
    for name in names {
        if !alive(&name[PREFIX.len()..]) && remove_named(root, &name) {
            removed += 1;
        }
    }
    removed
}

/// The root itself (v2) and each v1 hierarchy under it.
fn hierarchies(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    if let Ok(entries) = fs::read_dir(root) {
        out.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.is_symlink()),
        );
    }
    out
}

/// Whether any process is still in the cgroup or its children (in any hierarchy).
fn has_processes(root: &Path, name: &str) -> bool {
    hierarchies(root).into_iter().any(|h| {
        let dir = h.join(name);
        let busy = |d: &Path| {
            fs::read_to_string(d.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
        };
        dir.is_dir()
            && (busy(&dir)
                || fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|c| c.path().is_dir() && busy(&c.path())))
    })
}

/// Removes the cgroup from every hierarchy; true when it is gone from all of them.
fn remove_named(root: &Path, name: &str) -> bool {
    let mut gone = true;
    for h in hierarchies(root) {
        let dir = h.join(name);
        if dir.is_dir() {
            // Children first: a step's cgroup the engine did not remove (it was killed).
            if let Ok(children) = fs::read_dir(&dir) {
                for c in children.flatten() {
                    if c.path().is_dir() {
                        let _ = fs::remove_dir(c.path());
                    }
                }
            }
            gone &= fs::remove_dir(&dir).is_ok();
        }
    }
    gone
}
