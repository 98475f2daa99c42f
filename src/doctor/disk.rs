//! Free disk where grading writes: the engine's root dir (build contexts, image layers,
//! container logs) and proctor's temp dir (git sources while they are fetched).

use std::path::Path;

use super::Check;

/// Free space on the engine's root dir below which grading will likely fail: a build writes the
/// context (up to 256 MiB), the candidate's layers and the container's logs there.
const ROOT_FAIL_BYTES: u64 = 1 << 30;

/// Below this, a few builds of an ML image (the base image alone is ~360 MB) fill the disk.
const ROOT_WARN_BYTES: u64 = 5 << 30;

/// Free bytes for an unprivileged writer on the filesystem holding `path`.
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills the zeroed struct we own from a NUL-terminated path.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(s.f_bavail as u64 * s.f_frsize as u64)
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Grades free space against a warning and a failure threshold.
fn disk_verdict(
    name: &str,
    what: &str,
    free: u64,
    warn_below: u64,
    fail_below: u64,
    fix: &str,
) -> Check {
    let detail = format!("{} free on {what}", gib(free));
    if free < fail_below {
        Check::fail(
            name,
            format!("{detail} (needs at least {})", gib(fail_below)),
            fix,
        )
    } else if free < warn_below {
        Check::warn(
            name,
            format!("{detail} (less than {})", gib(warn_below)),
            fix,
        )
    } else {
        Check::ok(name, detail)
    }
}

/// The engine's root dir holds build contexts, image layers and container logs. A full disk
/// fails builds halfway (reported as the candidate's `build_failed`) or the engine itself. It is
/// measured only when the engine is local (a unix socket and the directory exists here).
pub(super) fn engine_disk_check(root_dir: Option<&str>, host: &str) -> Check {
    let name = "disk (docker root)";
    let fix = "free space there: `proctor gc`, `docker image prune`, `docker builder prune`, or move the engine's data-root to a larger disk";
    let Some(dir) = root_dir.filter(|d| !d.is_empty()) else {
        return Check::warn(
            name,
            "the engine does not report its root dir, so its free space is unknown",
            "check free space where the engine keeps its data (`docker info`: Docker Root Dir)",
        );
    };
    let local = host.starts_with("unix://") && Path::new(dir).is_dir();
    if !local {
        return Check::warn(
            name,
            format!("{dir} is on the engine's machine ({host}), not here, so its free space was not measured"),
            format!("check it there: `df -h {dir}` (proctor needs more than 1 GiB and wants 5 GiB)"),
        );
    }
    match free_bytes(Path::new(dir)) {
        Ok(free) => disk_verdict(name, dir, free, ROOT_WARN_BYTES, ROOT_FAIL_BYTES, fix),
        Err(e) => Check::warn(
            name,
            format!("cannot measure free space on {dir}: {e}"),
            format!("check it yourself: `df -h {dir}`"),
        ),
    }
}

/// proctor's temp dir holds git sources while they are fetched: up to the intake cap of fetched
/// objects plus the same again checked out. Fails when that cannot fit or the dir is not
/// writable (every git source would be a `fetch_failed`).
pub(super) fn temp_disk_check() -> Check {
    let name = "disk (temp)";
    let tmp = std::env::temp_dir();
    let cap = crate::intake::Limits::default().max_total_bytes;
    if let Err(e) = tempfile::Builder::new().prefix("proctor-doctor-").tempdir() {
        return Check::fail(
            name,
            format!("cannot create a directory in {}: {e}", tmp.display()),
            "make it writable, or point TMPDIR at a writable directory",
        );
    }
    match free_bytes(&tmp) {
        Ok(free) => disk_verdict(
            name,
            &tmp.display().to_string(),
            free,
            4 * cap,
            2 * cap,
            "free space there, or point TMPDIR at a larger writable directory (git sources are fetched there)",
        ),
        Err(e) => Check::warn(
            name,
            format!("cannot measure free space on {}: {e}", tmp.display()),
            format!("check it yourself: `df -h {}`", tmp.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn disk_thresholds() {
        let c = |free| disk_verdict("d", "/x", free, 5 << 30, 1 << 30, "f").status;
        assert_eq!(c(512 << 20), Status::Fail);
        assert_eq!(c(2 << 30), Status::Warn);
        assert_eq!(c(6 << 30), Status::Ok);
    }

    #[test]
    fn remote_engines_root_dir_is_not_measured_here() {
        let c = engine_disk_check(Some("/"), "tcp://10.0.0.1:2375");
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("not measured"), "{}", c.detail);
        assert_eq!(
            engine_disk_check(Some("/"), "unix:///var/run/docker.sock").name,
            "disk (docker root)"
        );
    }
}
