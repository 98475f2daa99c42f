//! CPU per prediction against a service beside it (the reference, or proctor's yardstick), side
//! by side. A shared machine's speed drifts by tens of percent over minutes (the churn
//! reference, loaded five times 30 s in a row in one container, used 1036, 949, 935, 854 and
//! 856 µs a request), so a number measured in an earlier grade cannot be divided into this one.
//! Here both services run at once, on the same cores, and take turns request by request: one
//! request to each side per round of the latency load's rate, the order flipped every round,
//! each side on its own keep-alive connection, the next request sent only when the previous one
//! is answered. Both therefore see the same machine at every moment, which alternating windows
//! of a second or more did not give (the machine moves within seconds). Both containers' CPU is
//! read at the ends of each window of `window` seconds; the ratio is taken over the windows left
//! once the most extreme sixth at either end is dropped (a burst of another tenant's work, or a
//! pause of one side's garbage collector, lands in a few windows).

use std::time::{Duration, Instant};

use crate::control::{MachineError, ServiceControl};
use crate::http;
use crate::target::Target;

/// Windows before the counted ones: both services warm (their first requests after a pause
/// cost more) and the keep-alive connections open.
pub const WARMUP_PAIRS: usize = 2;

/// The load of one window: the latency phase's requests at its rate, in rounds of one request
/// to each side, one keep-alive connection per side.
#[derive(Debug, Clone)]
pub struct Shape {
    pub method: reqwest::Method,
    pub path: String,
    pub content_type: String,
    pub bodies: Vec<String>,
    pub rate: f64,
    pub window: Duration,
    pub pairs: usize,
}

impl Shape {
    /// How long the windows take at most: every window, warm-up included, each with two
    /// request timeouts to finish its last round.
    pub fn longest(&self, request_timeout: Duration) -> Duration {
        (self.window + 2 * request_timeout) * (self.pairs + WARMUP_PAIRS) as u32
    }
}

/// One side's window: requests sent (answered or failed: a failure costs CPU too) and the CPU
/// its container used meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Window {
    pub requests: u64,
    pub cpu_ns: u64,
}

impl Window {
    fn per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.cpu_ns as f64 / self.requests as f64)
    }
}

/// One window: both sides' requests and CPU over the same seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pair {
    pub candidate: Window,
    pub beside: Window,
}

impl Pair {
    fn ratio(&self) -> Option<f64> {
        let (c, r) = (self.candidate.per_request()?, self.beside.per_request()?);
        (r > 0.0).then(|| c / r)
    }
}

/// What the pairs say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The candidate's CPU per request over the beside service's, over the kept windows.
    pub ratio: f64,
    /// Nanoseconds of CPU per request, each side, over the kept windows.
    pub candidate_ns_per_request: f64,
    pub beside_ns_per_request: f64,
    /// Pairs measured, and those kept after the trim.
    pub pairs: usize,
    pub kept: usize,
    /// The lowest and highest ratio of one kept window.
    pub low: f64,
    pub high: f64,
}

/// The trimmed ratio: pairs sorted by their own ratio, a sixth dropped at either end, then the
/// ratio of the sums over the rest (each side's CPU over its requests). None when no pair has
/// requests and CPU on both sides.
pub fn estimate(pairs: &[Pair]) -> Option<Estimate> {
    let mut usable: Vec<(f64, &Pair)> = pairs
        .iter()
        .filter_map(|p| p.ratio().map(|r| (r, p)))
        .collect();
    if usable.is_empty() {
        return None;
    }
    usable.sort_by(|a, b| a.0.total_cmp(&b.0));
    let cut = usable.len() / 6;
    let kept = &usable[cut..usable.len() - cut];
    let sum = |side: fn(&Pair) -> Window| {
        kept.iter().fold(Window::default(), |acc, (_, p)| Window {
            requests: acc.requests + side(p).requests,
            cpu_ns: acc.cpu_ns + side(p).cpu_ns,
        })
    };
    let c = sum(|p| p.candidate).per_request()?;
    let r = sum(|p| p.beside).per_request()?;
    (r > 0.0).then(|| Estimate {
        ratio: c / r,
        candidate_ns_per_request: c,
        beside_ns_per_request: r,
        pairs: pairs.len(),
        kept: kept.len(),
        low: kept[0].0,
        high: kept[kept.len() - 1].0,
    })
}

/// Loads both sides in turns, `WARMUP_PAIRS` uncounted windows first, and returns the counted
/// windows. An engine failure reading either container's CPU is the machine's.
pub async fn measure(
    candidate: &Target,
    beside: &Target,
    container: &dyn ServiceControl,
    shape: &Shape,
) -> Result<Vec<Pair>, MachineError> {
    let mut pairs = Vec::with_capacity(shape.pairs);
    let interval = Duration::from_secs_f64(1.0 / shape.rate.max(0.001));
    let (c_url, b_url) = (candidate.url(&shape.path), beside.url(&shape.path));
    // A keep-alive connection to each side (the pool is per host and port): the CPU counted is
    // the service's per request, not its connection set-up, as under the latency load.
    let client = http::client(Duration::from_secs(2), http::Connections::KeepAlive(1));
    // Rounds sent so far: both sides send the same bodies in the same order.
    let mut round = 0usize;
    for done in 0..WARMUP_PAIRS + shape.pairs {
        let before = cpu_times(container).await?;
        let start = Instant::now();
        let mut sent = 0u64;
        loop {
            // A round every 1/rate seconds, each sent when it is due or, behind schedule, as
            // soon as the previous one ended; none due or started after the window (a slow
            // service gets fewer rounds, not a longer window).
            let due = start + interval.mul_f64(sent as f64);
            let end = start + shape.window;
            if due >= end || Instant::now() >= end {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
            let body = (!shape.bodies.is_empty()).then(|| {
                (
                    shape.content_type.as_str(),
                    shape.bodies[round % shape.bodies.len()].as_str(),
                )
            });
            let order = if round % 2 == 0 {
                [(candidate, &c_url), (beside, &b_url)]
            } else {
                [(beside, &b_url), (candidate, &c_url)]
            };
            for (target, url) in order {
                // What the answer says is the latency phase's to grade; here only its cost
                // counts (a failure costs CPU too).
                let _ = http::send(
                    &client,
                    shape.method.clone(),
                    url,
                    body,
                    target.request_timeout,
                    target.max_body,
                )
                .await;
            }
            sent += 1;
            round += 1;
        }
        let after = cpu_times(container).await?;
        let window = |before: u64, after: u64| Window {
            requests: sent,
            cpu_ns: after.saturating_sub(before),
        };
        if done >= WARMUP_PAIRS {
            pairs.push(Pair {
                candidate: window(before.0, after.0),
                beside: window(before.1, after.1),
            });
        }
    }
    Ok(pairs)
}

/// Both containers' CPU so far, read together: nothing is in flight between two rounds.
async fn cpu_times(container: &dyn ServiceControl) -> Result<(u64, u64), MachineError> {
    tokio::try_join!(container.cpu_time(), container.beside_cpu_time())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::BoxFuture;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A keep-alive HTTP/1.1 service on 127.0.0.1 that counts the requests it answered and
    /// writes its `tag` in `log` for each.
    async fn counting_service(
        tag: char,
        log: Arc<std::sync::Mutex<String>>,
        delay: Duration,
    ) -> (String, Arc<AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicU64::new(0));
        let counted = count.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let counted = counted.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match conn.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => got.extend_from_slice(&buf[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while got.len() < end + 4 + length {
                            match conn.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => got.extend_from_slice(&buf[..n]),
                            }
                        }
                        got.drain(..end + 4 + length);
                        counted.fetch_add(1, Ordering::SeqCst);
                        log.lock().unwrap().push(tag);
                        tokio::time::sleep(delay).await;
                        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
                        if conn.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, count)
    }

    /// CPU that grows with the requests each service answered: the candidate's cost 3 µs a
    /// request, the reference's 1 µs, whatever the timing.
    struct Counted {
        candidate: Arc<AtomicU64>,
        reference: Arc<AtomicU64>,
    }

    impl ServiceControl for Counted {
        fn signal<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<crate::control::Signalled, MachineError>> {
            unimplemented!()
        }
        fn wait_stopped(
            &self,
            _: Duration,
        ) -> BoxFuture<'_, Result<Option<crate::control::Stopped>, MachineError>> {
            unimplemented!()
        }
        fn restart(&self) -> BoxFuture<'_, Result<String, MachineError>> {
            unimplemented!()
        }
        fn usage(&self) -> BoxFuture<'_, Result<crate::control::Usage, MachineError>> {
            unimplemented!()
        }
        fn startup(&self) -> crate::control::Startup {
            Default::default()
        }
        fn image_size(&self) -> Option<u64> {
            None
        }
        fn run_in_image<'a>(
            &'a self,
            _: &'a crate::control::Command,
        ) -> BoxFuture<'a, Result<crate::control::CommandOutcome, MachineError>> {
            unimplemented!()
        }
        fn run_review<'a>(
            &'a self,
            _: &'a crate::control::Command,
        ) -> BoxFuture<'a, Result<crate::control::CommandOutcome, MachineError>> {
            unimplemented!()
        }
        fn cpu_time(&self) -> BoxFuture<'_, Result<u64, MachineError>> {
            Box::pin(async { Ok(self.candidate.load(Ordering::SeqCst) * 3000) })
        }
        fn beside_cpu_time(&self) -> BoxFuture<'_, Result<u64, MachineError>> {
            Box::pin(async { Ok(self.reference.load(Ordering::SeqCst) * 1000) })
        }
    }

    #[tokio::test]
    async fn both_sides_take_turns_at_the_rate_and_each_window_counts_its_own_cpu() {
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let (c_url, c_count) = counting_service('c', log.clone(), Duration::ZERO).await;
        let (r_url, r_count) = counting_service('r', log.clone(), Duration::ZERO).await;
        let settings = crate::grader::HttpSettings {
            request_timeout_ms: 1000,
            max_body_bytes: 1024,
        };
        let (candidate, reference) = (
            Target::new(&c_url, &settings),
            Target::new(&r_url, &settings),
        );
        let shape = Shape {
            method: reqwest::Method::POST,
            path: "/predict".into(),
            content_type: "application/json".into(),
            bodies: vec!["{\"a\": 1}".into(), "{\"a\": 2}".into()],
            rate: 100.0,
            window: Duration::from_millis(200),
            pairs: 4,
        };
        let control = Counted {
            candidate: c_count.clone(),
            reference: r_count.clone(),
        };
        let started = Instant::now();
        let pairs = measure(&candidate, &reference, &control, &shape)
            .await
            .unwrap();
        // Two warm-up windows, then four counted; every window 20 rounds (100/s for 0.2 s).
        assert_eq!(pairs.len(), 4);
        for p in &pairs {
            assert_eq!(p.candidate.requests, 20, "{p:?}");
            assert_eq!(p.beside.requests, 20, "{p:?}");
            assert_eq!(p.candidate.cpu_ns, 20 * 3000, "{p:?}");
            assert_eq!(p.beside.cpu_ns, 20 * 1000, "{p:?}");
        }
        assert_eq!(c_count.load(Ordering::SeqCst), 6 * 20);
        assert_eq!(r_count.load(Ordering::SeqCst), 6 * 20);
        // Request by request, the order flipped every round: c r, r c, c r, ...
        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 2 * 6 * 20);
        assert_eq!(log, "crrc".repeat(6 * 20 / 2), "{log}");
        let e = estimate(&pairs).unwrap();
        assert!((e.ratio - 3.0).abs() < 1e-9, "{e:?}");
        // Six windows one after the other, each until its last round (due at 190 ms).
        assert!(started.elapsed() >= Duration::from_millis(6 * 190));
        assert!(shape.longest(Duration::from_secs(1)) >= started.elapsed());
    }

    #[tokio::test]
    async fn a_slow_service_gets_fewer_rounds_not_longer_windows() {
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let (c_url, c_count) = counting_service('c', log.clone(), Duration::from_millis(60)).await;
        let (r_url, r_count) = counting_service('r', log.clone(), Duration::ZERO).await;
        let settings = crate::grader::HttpSettings {
            request_timeout_ms: 1000,
            max_body_bytes: 1024,
        };
        let shape = Shape {
            method: reqwest::Method::GET,
            path: "/".into(),
            content_type: "application/json".into(),
            bodies: Vec::new(),
            rate: 100.0,
            window: Duration::from_millis(200),
            pairs: 3,
        };
        let control = Counted {
            candidate: c_count,
            reference: r_count,
        };
        let started = Instant::now();
        let pairs = measure(
            &Target::new(&c_url, &settings),
            &Target::new(&r_url, &settings),
            &control,
            &shape,
        )
        .await
        .unwrap();
        // 60 ms a round: four rounds in a 200 ms window, where the rate alone would ask 20.
        for p in &pairs {
            assert!((3..=5).contains(&p.candidate.requests), "{p:?}");
            assert_eq!(p.candidate.requests, p.beside.requests);
        }
        assert!(started.elapsed() < Duration::from_millis(5 * 300));
    }

    fn pair(c: (u64, u64), r: (u64, u64)) -> Pair {
        Pair {
            candidate: Window {
                requests: c.0,
                cpu_ns: c.1,
            },
            beside: Window {
                requests: r.0,
                cpu_ns: r.1,
            },
        }
    }

    #[test]
    fn the_ratio_is_per_request_over_the_kept_pairs() {
        // Twice the reference's CPU per request, the machine twice as slow in the later pairs:
        // the ratio stays 2.
        let pairs: Vec<Pair> = (0..12)
            .map(|i| {
                let speed = if i < 6 { 1 } else { 2 };
                pair((50, 50 * 2000 * speed), (40, 40 * 1000 * speed))
            })
            .collect();
        let e = estimate(&pairs).unwrap();
        assert!((e.ratio - 2.0).abs() < 1e-9, "{e:?}");
        assert_eq!((e.pairs, e.kept), (12, 8));
        // 12 pairs: the cut drops two at each end, which here changes nothing.
        assert!((e.candidate_ns_per_request - 3000.0).abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn a_burst_in_one_window_is_trimmed_away() {
        let mut pairs: Vec<Pair> = (0..12)
            .map(|_| pair((50, 50_000_000), (50, 50_000_000)))
            .collect();
        // Another tenant's work lands in one of the candidate's windows, and in one of the
        // reference's.
        pairs[3].candidate.cpu_ns *= 5;
        pairs[8].beside.cpu_ns *= 5;
        let e = estimate(&pairs).unwrap();
        assert!((e.ratio - 1.0).abs() < 1e-9, "{e:?}");
        assert_eq!((e.low, e.high), (1.0, 1.0));
        // Untrimmed, the two bursts would not cancel in a sum weighted by CPU.
    }

    #[test]
    fn windows_without_requests_or_cpu_carry_no_ratio() {
        assert_eq!(estimate(&[]), None);
        assert_eq!(estimate(&[pair((0, 10), (5, 10))]), None);
        assert_eq!(estimate(&[pair((5, 10), (5, 0))]), None);
        let e = estimate(&[pair((5, 10), (0, 0)), pair((10, 30), (10, 10))]).unwrap();
        assert_eq!((e.pairs, e.kept), (2, 1));
        assert!((e.ratio - 3.0).abs() < 1e-9);
    }
}
