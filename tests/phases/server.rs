//! A small programmable HTTP/1.1 server on 127.0.0.1, standing in for a candidate's service.
//!
//! Each test hands it a closure from request to reply. The closure sees the request's arrival
//! number and how many requests were in flight when it arrived, so it can misbehave on cue
//! (fail the third request, answer differently under concurrency, sleep past the grader's
//! timeout). Every request is logged, so a test can assert what proctor actually sent.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One request as the service saw it.
#[derive(Debug, Clone)]
pub struct Req {
    /// Arrival number, from 0, over every path.
    pub n: u64,
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: String,
    /// The body byte for byte (`body` replaces invalid UTF-8).
    pub raw: Vec<u8>,
    /// Requests being served when this one arrived, itself included.
    pub in_flight: usize,
}

impl Req {
    /// The body as JSON (panics in the fake service, i.e. fails the test, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("proctor sent a JSON body")
    }
}

/// What the service answers, after an optional delay.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply::raw(status, "application/json", v.to_string())
    }

    /// A body sent byte for byte (e.g. JSON with a bare `NaN`).
    pub fn raw(status: u16, content_type: &'static str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply::raw(status, "text/plain", body)
    }

    pub fn not_found() -> Reply {
        Reply::text(404, "not found")
    }

    /// The same reply, sent only after `d`.
    pub fn after(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

struct State {
    handler: Handler,
    count: AtomicU64,
    in_flight: AtomicUsize,
    log: Mutex<Vec<Req>>,
}

/// Decrements the in-flight count however the request ends (answered, or dropped by a client
/// that gave up).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct Server {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    state: Arc<State>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    /// Starts the service on its own thread and runtime, so that it never competes with the
    /// test's runtime and a sleeping handler never blocks the client.
    pub fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
        let state = Arc::new(State {
            handler: Arc::new(handler),
            count: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
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
                            let st = st.clone();
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| handle(st.clone(), req));
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(tcp), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
            // Sleeping handlers are abandoned with the runtime.
            rt.shutdown_background();
        });
        Server {
            url: format!("http://{}", addr_rx.recv().unwrap()),
            state,
            _stop: stop_tx,
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Req> {
        let mut v = self.state.log.lock().unwrap().clone();
        v.sort_by_key(|r| r.n);
        v
    }

    /// Requests so far to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

async fn handle(
    st: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = st.count.fetch_add(1, Ordering::SeqCst);
    let in_flight = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&st.in_flight);
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let raw = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let body = String::from_utf8_lossy(&raw).into_owned();
    let r = Req {
        n,
        method,
        path,
        content_type,
        body,
        raw,
        in_flight,
    };
    st.log.lock().unwrap().push(r.clone());
    let reply = (st.handler)(&r);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    resp.headers_mut()
        .insert("content-type", reply.content_type.parse().unwrap());
    Ok(resp)
}

/// A URL on which nothing listens: connections are refused at once.
pub fn refused_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}
