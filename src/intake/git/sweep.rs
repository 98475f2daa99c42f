//! Removing the temporary directories of git intakes whose process died before it could.

use std::fs;

/// Temp dirs of git intake are named `proctor-git-<pid>-<random>`, so that a run killed before
/// it could remove its own can be found and removed later.
pub(super) const TEMP_PREFIX: &str = "proctor-git-";

/// Removes git intake temp dirs of processes that are gone (`alive` says which pids are not).
/// Returns how many were removed.
pub fn sweep_temp_dirs(alive: impl Fn(u32) -> bool) -> usize {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        // Only directories this user made: never follow a symlink planted under the name, and
        // leave other users' alone (the temp dir is shared).
        let ours = e.metadata().is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: geteuid has no preconditions.
            m.is_dir() && m.uid() == unsafe { libc::geteuid() }
        });
        if ours && !alive(pid) && fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_of_dead_processes_are_swept_and_live_ones_kept() {
        let me = std::process::id();
        // Beyond any pid_max: a process that cannot be alive.
        let dead = 4_000_000_000u32;
        let mk = |pid: u32| {
            tempfile::Builder::new()
                .prefix(&format!("{TEMP_PREFIX}{pid}-"))
                .tempdir()
                .unwrap()
                .keep()
        };
        let (mine, orphan) = (mk(me), mk(dead));
        fs::write(orphan.join("f"), "x").unwrap();
        let removed = sweep_temp_dirs(|pid| pid != dead);
        assert!(removed >= 1);
        assert!(!orphan.exists());
        assert!(mine.exists());
        fs::remove_dir_all(mine).unwrap();
    }
}
