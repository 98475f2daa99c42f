//! The threads that send the load. Each runs its own single-threaded tokio runtime (like wrk's
//! threads with their own event loop) and owns its connections and statistics outright: no
//! lock, no shared pool, no channel on the hot path. Open-loop threads take every T-th request
//! of the precomputed timeline; a request whose time has come goes out on an idle connection,
//! or waits in a queue for the first one that frees up (the wait counts in the corrected
//! latency: the service is saturated). Nothing outlasts the run's deadline (the schedule's end
//! plus one request timeout): requests in flight then are cut, and those still queued are
//! never sent; both count as timeouts at the deadline.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;
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
    /// Complete requests (one per body), built before the load.
    pub requests: Arc<Vec<Bytes>>,
    pub seed: u64,
    pub ok_status: u16,
    pub start: Instant,
    pub measure_start: Instant,
    /// The run's deadline: the end of the schedule plus one request timeout. A request in
    /// flight then is cut (a timeout); one still waiting for a connection is never sent and
    /// times out at it.
    pub deadline: Instant,
    pub work: Arc<Work>,
    pub window: Duration,
    pub windows: usize,
    pub sent: Arc<AtomicU64>,
    pub cancel: CancellationToken,
}

struct Job {
    intended: Instant,
    measured: bool,
    request: Bytes,
}

/// What the connection workers of one thread share. Single-threaded (`Rc`, `RefCell`): a
/// worker only touches it between awaits.
struct Local {
    ctx: ThreadCtx,
    stats: RefCell<Stats>,
    /// Due requests waiting for a free connection.
    backlog: RefCell<VecDeque<Job>>,
    /// Workers waiting for a request, most recently used last.
    idle: RefCell<Vec<usize>>,
    /// One slot per worker: the request handed to it, and the wake-up that goes with it.
    mailbox: Vec<RefCell<Option<Job>>>,
    wake: Vec<Notify>,
    /// No more requests will be handed out.
    closing: Cell<bool>,
}

impl Local {
    fn hand_out(&self, job: Job) {
        let worker = self.idle.borrow_mut().pop();
        match worker {
            Some(w) => {
                *self.mailbox[w].borrow_mut() = Some(job);
                self.wake[w].notify_one();
            }
            None => {
                if job.measured {
                    self.stats.borrow_mut().queued += 1;
                }
                self.backlog.borrow_mut().push_back(job);
            }
        }
    }
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
    let conns = ctx.conns;
    let local = Rc::new(Local {
        ctx,
        stats: RefCell::new(stats),
        backlog: RefCell::new(VecDeque::new()),
        idle: RefCell::new(Vec::with_capacity(conns)),
        mailbox: (0..conns).map(|_| RefCell::new(None)).collect(),
        wake: (0..conns).map(|_| Notify::new()).collect(),
        closing: Cell::new(false),
    });
    let set = tokio::task::LocalSet::new();
    set.block_on(&rt, drive(local.clone()));
    // Connection tasks live in this runtime; dropping it closes their sockets.
    drop(set);
    drop(rt);
    let local = Rc::try_unwrap(local).unwrap_or_else(|_| panic!("workers outlived the thread"));
    let mut stats = local.stats.into_inner();
    stats.cpu = sys::thread_cpu_time().saturating_sub(cpu0);
    stats
}

async fn drive(local: Rc<Local>) {
    let ctx = &local.ctx;
    let workers: Vec<_> = (0..ctx.conns)
        .map(|w| tokio::task::spawn_local(worker(local.clone(), w)))
        .collect();
    let cancelled = ctx.cancel.cancelled();
    tokio::pin!(cancelled);
    let all_done = async {
        // A closed loop's workers stop by themselves at the end of the duration.
        if let Work::Open(timeline) = &*ctx.work {
            pace(&local, timeline).await;
            local.closing.set(true);
            for w in &local.wake {
                w.notify_one();
            }
        }
        for w in workers {
            let _ = w.await;
        }
    };
    tokio::select! {
        biased;
        _ = &mut cancelled => {}
        _ = all_done => {}
    }
}

/// Hands every request of this thread's share of the timeline out at its time.
async fn pace(local: &Local, timeline: &Timeline) {
    let ctx = &local.ctx;
    let mut timer = match sys::PreciseTimer::new(ctx.spin) {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("no timerfd ({e}); the load did not run");
            local.stats.borrow_mut().warnings.push(msg);
            return;
        }
    };
    let mut pick = body_picker(ctx, 0);
    let offsets = &timeline.offsets_ns;
    let mut next = ctx.index;
    while next < offsets.len() {
        let intended = ctx.start + Duration::from_nanos(offsets[next]);
        timer.until(intended).await;
        let now = Instant::now();
        // Everything due by now goes out, oldest first.
        while next < offsets.len() {
            let intended = ctx.start + Duration::from_nanos(offsets[next]);
            if intended > now {
                break;
            }
            let measured = next >= timeline.first_measured;
            if measured {
                local.stats.borrow_mut().record_dispatch(
                    intended,
                    now - intended,
                    ctx.measure_start,
                );
            }
            ctx.sent.fetch_add(1, Ordering::Relaxed);
            local.hand_out(Job {
                intended,
                measured,
                request: pick(),
            });
            next += ctx.threads;
        }
    }
}

/// One connection: takes requests (handed out, queued, or its own in closed loop) until there
/// are no more.
async fn worker(local: Rc<Local>, w: usize) {
    let ctx = &local.ctx;
    let target = &*ctx.target;
    let closed_end = match &*ctx.work {
        Work::Closed { duration } => Some(ctx.measure_start + *duration),
        Work::Open(_) => None,
    };
    let mut pick = body_picker(ctx, 1 + w);
    let mut conn: Option<Conn> = None;
    if closed_end.is_some() {
        tokio::time::sleep_until(ctx.start.into()).await;
    }
    loop {
        let job = match closed_end {
            Some(end) => {
                let now = Instant::now();
                if now >= end || local.closing.get() {
                    break;
                }
                Job {
                    intended: now,
                    measured: now >= ctx.measure_start,
                    request: pick(),
                }
            }
            None => {
                let queued = local.backlog.borrow_mut().pop_front();
                match queued.or_else(|| local.mailbox[w].borrow_mut().take()) {
                    Some(job) => job,
                    None => {
                        if local.closing.get() {
                            break;
                        }
                        local.idle.borrow_mut().push(w);
                        local.wake[w].notified().await;
                        continue;
                    }
                }
            }
        };
        let sent = Instant::now();
        if sent >= ctx.deadline {
            // Waited for a connection until the deadline: the service is charged for the whole
            // wait, and nothing is sent after the deadline.
            if job.measured {
                local.stats.borrow_mut().record_unsent(
                    job.intended,
                    ctx.deadline,
                    ctx.measure_start,
                );
            }
            continue;
        }
        let (back, outcome) = conn::exchange(conn.take(), target, &job.request, ctx.deadline).await;
        conn = back;
        let done = Instant::now();
        if closed_end.is_some() {
            ctx.sent.fetch_add(1, Ordering::Relaxed);
        }
        if job.measured {
            local
                .stats
                .borrow_mut()
                .record(job.intended, sent, done, outcome, ctx.measure_start);
        }
    }
}

/// Seeded body choice: its own stream per thread and, in closed loop, per connection.
fn body_picker(ctx: &ThreadCtx, sub: usize) -> impl FnMut() -> Bytes + '_ {
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    rng.set_stream(2 + ((ctx.index as u64) << 32) + sub as u64);
    move || match ctx.requests.len() {
        1 => ctx.requests[0].clone(),
        n => ctx.requests[rng.random_range(0..n)].clone(),
    }
}
