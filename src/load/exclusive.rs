//! One latency measurement per machine at a time, and nothing heavy beside it. Two loads on one
//! machine disturb each other's numbers (they share cores, caches and the engine), and so does
//! a build or another run's checks. So every latency phase, in this process or another proctor
//! process, runs alone: it holds an exclusive `flock` on one well-known file for as long as it
//! measures. Builds and the other phases hold a shared lock on the same file (`busy`): they may
//! overlap each other, never a measurement. A turnstile file beside it lets a waiting
//! measurement in before new busy stages. The kernel drops the locks when the holder exits,
//! killed or not, so a crashed run never blocks the next one.

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

/// Takes `op` (`LOCK_EX` or `LOCK_SH`) on `file`, polling (so that the wait can be cancelled
/// and has a deadline); `on_wait` is called once if it has to wait.
async fn flock_polling(
    file: &File,
    op: libc::c_int,
    path: &Path,
    deadline: Instant,
    waited: Duration,
    on_wait: &mut Option<impl FnOnce()>,
) -> Result<(), LockError> {
    loop {
        // SAFETY: flock on a descriptor the caller owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(());
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
        if Instant::now() >= deadline {
            return Err(LockError::Timeout {
                path: path.to_owned(),
                waited,
            });
        }
        if let Some(f) = on_wait.take() {
            f();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The turnstile beside the lock: a measurement waiting for the machine holds it, so that no
/// new busy stage starts before the measurement had its turn (without it, stages that keep
/// overlapping could keep a measurement waiting for ever).
fn turnstile_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".turnstile");
    PathBuf::from(p)
}

/// Waits until no other latency measurement runs on this machine and no other heavy stage
/// (`busy`) is going, then holds the machine until the guard drops. `on_wait` is called once if
/// the lock is busy, so the caller can say why nothing happens.
pub async fn measure_alone(
    path: &Path,
    deadline: Duration,
    on_wait: impl FnOnce(),
) -> Result<MeasuringAlone, LockError> {
    let file = open(path)?;
    let turnstile = open(&turnstile_path(path))?;
    let until = Instant::now() + deadline;
    let mut on_wait = Some(on_wait);
    flock_polling(
        &turnstile,
        libc::LOCK_EX,
        path,
        until,
        deadline,
        &mut on_wait,
    )
    .await?;
    flock_polling(&file, libc::LOCK_EX, path, until, deadline, &mut on_wait).await?;
    // The machine is ours: busy stages may queue on the lock itself again.
    drop(turnstile);
    Ok(MeasuringAlone { _file: file })
}

/// Held by a heavy stage (a build, a phase that does not measure latency) while it runs: many
/// may run at once, but none while a latency measurement runs, and none starts while one waits.
#[derive(Debug)]
pub struct Busy {
    _file: File,
}

/// Waits until no latency measurement runs or waits on this machine, then holds a shared lock
/// until the guard drops, so that no measurement starts meanwhile.
pub async fn busy(
    path: &Path,
    deadline: Duration,
    on_wait: impl FnOnce(),
) -> Result<Busy, LockError> {
    let file = open(path)?;
    let turnstile = open(&turnstile_path(path))?;
    let until = Instant::now() + deadline;
    let mut on_wait = Some(on_wait);
    // Through the turnstile: past any measurement that waits for its turn.
    flock_polling(
        &turnstile,
        libc::LOCK_EX,
        path,
        until,
        deadline,
        &mut on_wait,
    )
    .await?;
    drop(turnstile);
    flock_polling(&file, libc::LOCK_SH, path, until, deadline, &mut on_wait).await?;
    Ok(Busy { _file: file })
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

    #[tokio::test]
    async fn busy_stages_overlap_each_other_never_a_measurement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let wait = Duration::from_secs(5);
        let a = busy(&path, wait, || {}).await.unwrap();
        let _b = busy(&path, Duration::from_millis(200), || {
            panic!("busy stages overlap")
        })
        .await
        .unwrap();
        // A measurement waits for the busy stages...
        let p = path.clone();
        let measurement = tokio::spawn(async move {
            let m = measure_alone(&p, Duration::from_secs(5), || {})
                .await
                .unwrap();
            (Instant::now(), m)
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        // ...and, while it waits, a new busy stage waits behind it (the turnstile).
        let mut late_waited = false;
        let late = busy(&path, Duration::from_millis(200), || late_waited = true).await;
        assert!(
            late_waited && late.is_err(),
            "a busy stage started before the measurement"
        );
        let released = Instant::now();
        drop(a);
        drop(_b);
        let (got, m) = measurement.await.unwrap();
        assert!(got >= released, "measured while busy stages ran");
        // While it measures, no busy stage starts; after it, one does at once.
        assert!(busy(&path, Duration::from_millis(150), || {})
            .await
            .is_err());
        drop(m);
        busy(&path, Duration::from_millis(150), || {})
            .await
            .unwrap();
    }
}
