//! The few Linux calls the load generator needs: timerfd for precise pacing, CPU affinity, a
//! thread's CPU time and its timer slack.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

/// A one-shot timer with nanosecond resolution that wakes the event loop through epoll, unlike
/// tokio's timer wheel whose 1 ms ticks make every send up to a millisecond late.
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
    armed: Option<Instant>,
    /// Wake this much before the deadline and poll the event loop until it: waking a halted
    /// (virtual) CPU takes tens of microseconds.
    spin: Duration,
}

impl PreciseTimer {
    pub fn new(spin: Duration) -> io::Result<PreciseTimer> {
        // SAFETY: plain syscall; the returned descriptor is checked and owned below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the same for
        // the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
        Ok(PreciseTimer {
            fd,
            armed: None,
            spin,
        })
    }

    /// Arms the timer for `at` (no syscall when it is already armed for that instant).
    fn arm(&mut self, at: Instant) -> io::Result<()> {
        if self.armed == Some(at) {
            return Ok(());
        }
        // Relative arming: std's Instant is CLOCK_MONOTONIC but does not expose its timespec.
        let left = at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: valid descriptor and a fully initialised itimerspec.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = Some(at);
        Ok(())
    }

    /// Ready once `at` has passed. Polled in a loop together with the responses in flight.
    pub fn poll_until(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<()> {
        loop {
            if Instant::now() >= at {
                return Poll::Ready(());
            }
            if self.arm(at).is_err() {
                // Cannot happen with a valid descriptor; fall back to yielding.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let mut guard = ready!(self.fd.poll_read_ready(cx)).expect("timerfd is registered");
            let mut buf = [0u8; 8];
            // SAFETY: reads 8 bytes into a local buffer.
            let n = unsafe {
                libc::read(
                    guard.get_inner().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n == 8 {
                // Expired: it is no longer armed.
                self.armed = None;
            }
            // One-shot: after the read (or EAGAIN from a stale wake-up) the descriptor stays
            // quiet until it is armed again and expires.
            guard.clear_ready();
        }
    }

    /// Ready once `at` has passed: sleeps on the timerfd until `spin` before it, then yields to
    /// the event loop (which keeps serving responses) until it.
    pub async fn until(&mut self, at: Instant) {
        loop {
            let now = Instant::now();
            if now >= at {
                return;
            }
            if at - now > self.spin {
                let wake = at - self.spin;
                std::future::poll_fn(|cx| self.poll_until(cx, wake)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Lets this thread's sleeps end within microseconds of their deadline (default slack 50 µs).
pub fn reduce_timer_slack() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Moves the calling thread to the lowest real-time priority (SCHED_FIFO 1), so that ordinary
/// processes on its core cannot delay a send by a scheduler time slice. Needs root or
/// CAP_SYS_NICE. The kernel's real-time throttling still leaves others 5% of the core.
pub fn make_realtime() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: plain syscall on the calling thread with an initialised parameter.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// CPU time (user + system) of the calling thread.
pub fn thread_cpu_time() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// CPU time (user + system) of the whole process.
pub fn process_cpu_time() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Pins the calling thread to one core.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("core {cpu} is out of range"),
        ));
    }
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays in bounds (checked above).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The cores this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the set we own; CPU_ISSET reads in bounds.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Parses Docker's cpuset syntax: `0`, `0-3`, `0,2-3`.
pub fn parse_cpuset(text: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let num = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|&c| c < 1024)
                .ok_or_else(|| format!("{s:?} is not a core number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{part:?}: the range runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpusets_parse() {
        assert_eq!(parse_cpuset("0").unwrap(), vec![0]);
        assert_eq!(parse_cpuset("0-2,5, 1").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpuset("").is_err());
        assert!(parse_cpuset("3-1").is_err());
        assert!(parse_cpuset("a").is_err());
    }

    #[test]
    fn this_thread_has_cpu_time_and_cores() {
        let t0 = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time() > t0);
        assert!(!allowed_cpus().is_empty());
    }

    #[tokio::test]
    async fn precise_timer_is_never_early() {
        let mut t = PreciseTimer::new(Duration::from_micros(20)).unwrap();
        for _ in 0..20 {
            let at = Instant::now() + Duration::from_micros(300);
            t.until(at).await;
            assert!(Instant::now() >= at);
        }
        // A deadline in the past is ready at once.
        t.until(Instant::now() - Duration::from_millis(1)).await;
    }
}
