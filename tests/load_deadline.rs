//! A load step ends at its deadline, whatever the service does: the end of its schedule plus one
//! request timeout. Against an in-process server on 127.0.0.1 that never answers, the requests
//! queued behind the hung connections are never sent; they count as timeouts at the deadline,
//! charged from their intended send time. Bounds are ratios of the step's own durations.
//! The tests run one at a time (they would otherwise load each other).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use proctor::load::schedule::timeline;
use proctor::load::search::{search, SearchSpec};
use proctor::load::{self, Arrivals, Plan, RequestSpec, Stage};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Room for starting threads and a busy machine: a quarter of the time the step may take.
const SLACK: f64 = 0.25;

struct Server {
    addr: SocketAddr,
    /// Requests whose head reached the server.
    arrivals: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves every request after `delay` (`None`: never), on its own thread and runtime.
fn serve(delay: Option<Duration>) -> Server {
    let arrivals = Arc::new(AtomicU64::new(0));
    let seen = arrivals.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let _ = tcp.set_nodelay(true);
                        let seen = seen.clone();
                        tokio::spawn(async move {
                            let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                                seen.fetch_add(1, Ordering::Relaxed);
                                async move {
                                    tokio::time::sleep(delay.unwrap_or(Duration::from_secs(3600)))
                                        .await;
                                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                        b"{\"predictions\":[]}",
                                    ))))
                                }
                            });
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                        });
                    }
                }
            }
        });
        // Hanging handlers are abandoned with the runtime.
        rt.shutdown_background();
    });
    Server {
        addr: addr_rx.recv().unwrap(),
        arrivals,
        _stop: stop_tx,
    }
}

fn request(server: &Server, timeout: Duration) -> RequestSpec {
    RequestSpec {
        method: reqwest::Method::GET,
        url: format!("http://{}/", server.addr),
        content_type: "application/json".into(),
        bodies: Vec::new(),
        ok_status: 200,
        timeout,
        max_body: 1 << 20,
    }
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_against_a_hung_service_ends_at_its_deadline() {
    let _g = SERIAL.lock().await;
    let server = serve(None);
    let (d, t, c, rate) = (
        Duration::from_millis(500),
        Duration::from_millis(300),
        4,
        200.0,
    );
    let plan = Plan {
        // One thread: its queue is first in, first out, so the requests never sent are the
        // schedule's last ones.
        threads: Some(1),
        ..Plan::constant(rate, Duration::ZERO, d, c, 7)
    };
    let offsets: Vec<f64> = timeline(
        &[Stage::constant(rate, d)],
        Duration::ZERO,
        Arrivals::Constant,
        7,
    )
    .unwrap()
    .offsets_ns
    .iter()
    .map(|ns| *ns as f64 / 1e9)
    .collect();
    let scheduled = offsets.len() as u64;

    let began = Instant::now();
    let o = load::run(&request(&server, t), &plan, |_, _| {})
        .await
        .unwrap();
    let elapsed = began.elapsed().as_secs_f64();
    let (d, t) = (d.as_secs_f64(), t.as_secs_f64());
    let deadline = d + t;
    let sent = server.arrivals.load(Ordering::Relaxed);
    let explain = format!(
        "elapsed {elapsed:.3} s, scheduled {scheduled}, sent {sent}, requests {}, queued {}, \
         unsent {}, errors {:?}, corrected {:?}",
        o.requests,
        o.queued,
        o.unsent,
        o.errors,
        load::percentiles(&o.corrected)
    );
    eprintln!("{explain}");

    // At most the schedule plus one timeout (before, the queue drained one timeout at a time:
    // 100 requests over 4 connections, 7.5 s).
    assert!(elapsed <= deadline * (1.0 + SLACK), "{explain}");
    // Every scheduled request is accounted for: sent, or never sent.
    assert_eq!(o.requests, scheduled, "{explain}");
    assert_eq!(sent + o.unsent, scheduled, "{explain}");
    // Each connection sends again when its request times out: at 0, T, 2T, ... before the
    // deadline.
    let rounds = (deadline / t).ceil() as u64;
    assert!(o.unsent > 0 && sent <= c as u64 * rounds, "{explain}");
    assert!(o.queued >= o.unsent, "{explain}");
    // All of them are timeouts, the ones never sent included.
    assert_eq!(o.ok, 0, "{explain}");
    assert_eq!(o.errors.get("timeout"), Some(&scheduled), "{explain}");
    assert_eq!(o.errors.len(), 1, "{explain}");
    // Every request is in the corrected latency, charged at least the timeout and never past
    // the deadline.
    assert_eq!(o.corrected.len(), scheduled, "{explain}");
    assert!(secs(o.corrected.min()) >= t * 0.99, "{explain}");
    assert!(
        secs(o.corrected.max()) <= deadline * (1.0 + SLACK / 2.0),
        "{explain}"
    );
    // The requests never sent are charged up to the deadline: their latencies are exactly
    // deadline - intended. A sent request's latency lies between the timeout and the same
    // bound, so the mean is pinned down to within the sent share.
    let unsent_sum: f64 = offsets[sent as usize..].iter().map(|o| deadline - o).sum();
    let sent_low = t * sent as f64;
    let sent_high: f64 = offsets[..sent as usize].iter().map(|o| deadline - o).sum();
    let mean = o.corrected.mean() / 1e6;
    let (low, high) = (
        (unsent_sum + sent_low) / scheduled as f64,
        (unsent_sum + sent_high) / scheduled as f64,
    );
    assert!(
        mean >= low * 0.99 && mean <= high * 1.02,
        "mean {mean:.4} s not in [{low:.4}, {high:.4}]: {explain}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_that_drains_before_the_deadline_is_answered() {
    let _g = SERIAL.lock().await;
    // 100 ms per request on 2 connections is 20 req/s; 40 req/s for 0.5 s leaves about ten
    // requests queued when the schedule ends. They are still sent and answered well before
    // the deadline (0.5 s + 1 s): nothing changes for a service that ends up answering.
    let server = serve(Some(Duration::from_millis(100)));
    let plan = Plan::constant(40.0, Duration::ZERO, Duration::from_millis(500), 2, 3);
    let o = load::run(&request(&server, Duration::from_secs(1)), &plan, |_, _| {})
        .await
        .unwrap();
    let explain = format!(
        "requests {}, ok {}, queued {}, unsent {}, errors {:?}, corrected {:?}",
        o.requests,
        o.ok,
        o.queued,
        o.unsent,
        o.errors,
        load::percentiles(&o.corrected)
    );
    assert_eq!((o.requests, o.ok, o.unsent), (20, 20, 0), "{explain}");
    assert!(o.errors.is_empty() && o.queued > 0, "{explain}");
    // The last ones waited about half a second in the queue, and are charged for it.
    assert!(secs(o.corrected.max()) >= 0.4, "{explain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_against_a_hung_service_is_bounded_by_its_steps() {
    let _g = SERIAL.lock().await;
    let server = serve(None);
    let t = Duration::from_millis(300);
    let s = SearchSpec {
        percentile: 99.0,
        slo_ms: 50.0,
        max_error_rate: 0.01,
        start_rate: 200.0,
        max_rate: 1000.0,
        max_steps: 3,
        precision: 0.05,
        step_duration: Duration::from_millis(500),
        step_warmup: Duration::from_millis(100),
        arrivals: Arrivals::Constant,
        cooldown: Duration::from_millis(100),
        repeats: 3,
        clear_margin: 0.5,
    };
    let base = Plan::constant(1.0, Duration::ZERO, Duration::from_secs(1), 4, 5);
    let began = Instant::now();
    let r = search(&request(&server, t), &base, &s, |step| {
        eprintln!("{step:?}")
    })
    .await
    .unwrap();
    let elapsed = began.elapsed().as_secs_f64();
    // A step measured twice (its first measurement invalid) takes two steps' time.
    let runs: u32 = r.steps.iter().map(|st| st.attempts).sum();
    let per_step = (s.step_duration + s.step_warmup + t + s.cooldown).as_secs_f64();
    let bound = runs.max(s.max_steps as u32) as f64 * per_step * (1.0 + SLACK);
    assert!(
        elapsed <= bound,
        "{elapsed:.3} s (bound {bound:.3} s): {r:#?}"
    );
    assert_eq!(r.steps.len(), s.max_steps, "{r:#?}");
    assert_eq!(r.capacity_rate, None, "{r:#?}");
    assert!(
        r.steps.iter().all(|st| !st.passed && st.error_rate == 1.0),
        "{r:#?}"
    );
}
