//! The threads that send the load. Each runs its own single-threaded tokio runtime (like wrk's
//! threads with their own event loop) and owns its connections and statistics outright: no
//! lock, no shared pool, no channel on the hot path. Open-loop threads take every T-th request
//! of the precomputed timeline; a request whose time has come goes out on an idle connection,
//! or waits in a queue for the first one that frees up (the wait counts in the corrected
//! latency: the service is saturated).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

use super::conn::{self, Conn, Target};
use super::schedule::Timeline;
use super::stats::Stats;
use super::sys;

pub(super) enum Work {
    Open(Arc<Timeline>),
    Closed { duration: Duration },
}

pub(super) struct ThreadCtx {
    pub index: usize,
    pub threads: usize,
    pub conns: usize,
    pub pin: Option<usize>,
    pub realtime: bool,
    pub spin: Duration,
    pub target: Arc<Target>,
    pub bodies: Arc<Vec<Bytes>>,
    pub seed: u64,
    pub ok_status: u16,
    pub start: Instant,
    pub measure_start: Instant,
    pub work: Arc<Work>,
    pub window: Duration,
    pub windows: usize,
    pub sent: Arc<AtomicU64>,
    pub cancel: CancellationToken,
}

struct Job {
    intended: Instant,
    measured: bool,
    body: Option<Bytes>,
}

type Done = (Option<Conn>, Job, Instant, conn::Outcome);

async fn send(slot: Option<Conn>, job: Job, sent: Instant, target: &Target) -> Done {
    let (slot, outcome) = conn::exchange(slot, target, job.body.clone()).await;
    (slot, job, sent, outcome)
}

/// Runs one load thread to the end of its work (or cancellation) and returns what it measured.
pub(super) fn thread_main(ctx: ThreadCtx) -> Stats {
    let mut stats = Stats::new(ctx.window, ctx.windows, ctx.ok_status);
    if let Some(cpu) = ctx.pin {
        if let Err(e) = sys::pin_current_thread(cpu) {
            stats
                .warnings
                .push(format!("could not pin a load thread to core {cpu}: {e}"));
        }
    }
    sys::reduce_timer_slack();
    // Pacing is what real-time priority is for; a closed loop never sleeps on a schedule and
    // would only starve the rest of the core.
    if ctx.realtime && matches!(&*ctx.work, Work::Open(_)) {
        match sys::make_realtime() {
            Ok(()) => stats.realtime = true,
            Err(e) => stats.warnings.push(format!(
                "the load threads run at normal priority ({e}); other processes on their cores \
                 can delay sends (run as root, or with CAP_SYS_NICE)"
            )),
        }
    }
    let cpu0 = sys::thread_cpu_time();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    rt.block_on(async {
        match &*ctx.work {
            Work::Open(timeline) => open_loop(&ctx, timeline, &mut stats).await,
            Work::Closed { duration } => closed_loop(&ctx, *duration, &mut stats).await,
        }
    });
    // Connection tasks live in this runtime; dropping it closes their sockets.
    drop(rt);
    stats.cpu = sys::thread_cpu_time().saturating_sub(cpu0);
    stats
}

fn body_picker(ctx: &ThreadCtx) -> impl FnMut() -> Option<Bytes> + '_ {
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    rng.set_stream(2 + ctx.index as u64);
    move || match ctx.bodies.len() {
        0 => None,
        1 => Some(ctx.bodies[0].clone()),
        n => Some(ctx.bodies[rng.random_range(0..n)].clone()),
    }
}

async fn open_loop(ctx: &ThreadCtx, timeline: &Timeline, stats: &mut Stats) {
    let target = &*ctx.target;
    let mut timer = match sys::PreciseTimer::new(ctx.spin) {
        Ok(t) => t,
        Err(e) => {
            stats
                .warnings
                .push(format!("no timerfd ({e}); the load did not run"));
            return;
        }
    };
    let mut pick = body_picker(ctx);
    let offsets = &timeline.offsets_ns;
    let n = offsets.len();
    let mut idle: Vec<Option<Conn>> = (0..ctx.conns).map(|_| None).collect();
    let mut inflight = FuturesUnordered::new();
    let mut backlog: VecDeque<Job> = VecDeque::new();
    let mut next = ctx.index;
    let cancelled = ctx.cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        let now = Instant::now();
        while next < n {
            let intended = ctx.start + Duration::from_nanos(offsets[next]);
            if intended > now {
                break;
            }
            let measured = next >= timeline.first_measured;
            if measured {
                stats.record_dispatch(intended, now - intended, ctx.measure_start);
            }
            ctx.sent.fetch_add(1, Ordering::Relaxed);
            let job = Job {
                intended,
                measured,
                body: pick(),
            };
            match idle.pop() {
                Some(slot) => inflight.push(send(slot, job, now, target)),
                None => {
                    if measured {
                        stats.queued += 1;
                    }
                    backlog.push_back(job);
                }
            }
            next += ctx.threads;
        }
        if next >= n && inflight.is_empty() && backlog.is_empty() {
            break;
        }
        let wake = (next < n).then(|| ctx.start + Duration::from_nanos(offsets[next]));
        tokio::select! {
            biased;
            _ = &mut cancelled => break,
            _ = timer.until(wake.unwrap_or(now)), if wake.is_some() => {}
            Some((slot, job, sent, outcome)) = inflight.next(), if !inflight.is_empty() => {
                let done = Instant::now();
                if job.measured {
                    stats.record(job.intended, sent, done, outcome, ctx.measure_start);
                }
                match backlog.pop_front() {
                    Some(job) => inflight.push(send(slot, job, done, target)),
                    None => idle.push(slot),
                }
            }
        }
    }
}

async fn closed_loop(ctx: &ThreadCtx, duration: Duration, stats: &mut Stats) {
    let target = &*ctx.target;
    let mut pick = body_picker(ctx);
    let end = ctx.measure_start + duration;
    let mut inflight = FuturesUnordered::new();
    // All connections start together at the start time.
    tokio::time::sleep_until(ctx.start.into()).await;
    let now = Instant::now();
    for _ in 0..ctx.conns {
        let job = Job {
            intended: now,
            measured: now >= ctx.measure_start,
            body: pick(),
        };
        inflight.push(send(None, job, now, target));
    }
    let cancelled = ctx.cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            biased;
            _ = &mut cancelled => break,
            next = inflight.next() => {
                let Some((slot, job, sent, outcome)) = next else { break };
                let done = Instant::now();
                if job.measured {
                    stats.record(job.intended, sent, done, outcome, ctx.measure_start);
                }
                ctx.sent.fetch_add(1, Ordering::Relaxed);
                if done < end {
                    let job = Job {
                        intended: done,
                        measured: done >= ctx.measure_start,
                        body: pick(),
                    };
                    inflight.push(send(slot, job, done, target));
                }
            }
        }
    }
}
