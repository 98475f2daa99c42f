//! One latency measurement per machine at a time. Two loads on one machine disturb each other's
//! numbers (they share cores, caches and the engine), so every latency phase, in this process or
//! another proctor process, runs alone: it holds an exclusive `flock` on one well-known file for
//! as long as it measures. The kernel drops the lock when the holder exits, killed or not, so a
//! crashed run never blocks the next one.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file every proctor on this machine agrees on. Not under `TMPDIR`: two processes
/// with different temp dirs must still meet. `PROCTOR_LATENCY_LOCK` moves it (tests, or a
/// machine where `/tmp` is private per user).
pub fn lock_path() -> PathBuf {
    std::env::var_os("PROCTOR_LATENCY_LOCK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/proctor-latency.lock"))
}

/// Held while a latency measurement runs; dropping it lets the next one start.
#[derive(Debug)]
pub struct MeasuringAlone {
    // Closing the file releases the flock.
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open the latency lock {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another latency measurement on this machine held {path} for more than {waited:?}; \
         grade when it has finished"
    )]
    Timeout { path: PathBuf, waited: Duration },
}

fn open(path: &Path) -> Result<File, LockError> {
    let err = |source| LockError::Open {
        path: path.to_owned(),
        source,
    };
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        // A lock file: its contents are never read or written.
        .truncate(false)
        .mode(0o666)
        .open(path)
    {
        Ok(f) => {
            // Every user's proctor must be able to open it later, whatever this one's umask.
            let _ = f.set_permissions(std::fs::Permissions::from_mode(0o666));
            Ok(f)
        }
        // Made by another user without write access for us: a read-only descriptor locks too.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => File::open(path).map_err(err),
        Err(e) => Err(err(e)),
    }
}

/// Waits (polling, so that the wait can be cancelled and has a deadline) until no other
/// latency measurement runs on this machine, then holds the machine until the guard drops.
/// `on_wait` is called once if the lock is busy, so the caller can say why nothing happens.
pub async fn measure_alone(
    path: &Path,
    deadline: Duration,
    on_wait: impl FnOnce(),
) -> Result<MeasuringAlone, LockError> {
    let file = open(path)?;
    let started = Instant::now();
    let mut on_wait = Some(on_wait);
    loop {
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(MeasuringAlone { _file: file });
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK)
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(LockError::Open {
                path: path.to_owned(),
                source: e,
            });
        }
        if started.elapsed() >= deadline {
            return Err(LockError::Timeout {
                path: path.to_owned(),
                waited: deadline,
            });
        }
        if let Some(f) = on_wait.take() {
            f();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_measurement_waits_for_the_first_and_times_out_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = measure_alone(&path, Duration::from_secs(1), || {})
            .await
            .unwrap();
        let mut waited = false;
        let second = measure_alone(&path, Duration::from_millis(200), || waited = true).await;
        assert!(waited, "the busy lock was not reported");
        let e = second.unwrap_err().to_string();
        assert!(e.contains("another latency measurement"), "{e}");

        // Released on drop: the next one gets it at once, and a waiter gets it when it drops.
        let path2 = path.clone();
        let waiter = tokio::spawn(async move {
            measure_alone(&path2, Duration::from_secs(5), || {})
                .await
                .map(|_| Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        let released = Instant::now();
        drop(first);
        let got = waiter.await.unwrap().unwrap();
        assert!(got >= released, "the waiter got the lock while it was held");
    }
}
