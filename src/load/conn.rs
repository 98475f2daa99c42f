//! The load's hot path: one HTTP/1.1 connection driven directly with hyper, no pool.
//!
//! reqwest serves the scripted checks; here it would cost ~12-13 µs of client CPU per request,
//! mostly its pool's shared lock (see docs/load.md). Each load connection is owned by exactly one
//! request at a time, so there is nothing to share. The protections of `crate::http` stay: a
//! total deadline per request (connect, headers and body), the body read up to a cap, no
//! redirects, no proxy, no decompression (hyper does none of those three) and no retry of a sent
//! request.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Everything about the request that does not change between sends.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub method: Method,
    /// Origin form: path and query.
    pub path: Uri,
    pub host: HeaderValue,
    pub content_type: Option<HeaderValue>,
    pub timeout: Duration,
    pub max_body: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{0:?} is not an http:// URL with a host: {1}")]
    Url(String, String),
    #[error("could not resolve {0}: {1}")]
    Resolve(String, String),
    #[error("invalid content type {0:?}")]
    ContentType(String),
}

impl Target {
    /// Parses and resolves the URL once, before the load starts.
    pub async fn new(
        url: &str,
        method: Method,
        content_type: Option<&str>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Target, TargetError> {
        let bad = |why: &str| TargetError::Url(url.to_string(), why.to_string());
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only plain http is supported"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?.clone();
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| TargetError::Resolve(authority.to_string(), e.to_string()))?
            .next()
            .ok_or_else(|| TargetError::Resolve(authority.to_string(), "no address".into()))?;
        let path: Uri = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        let content_type = content_type
            .map(|c| HeaderValue::from_str(c).map_err(|_| TargetError::ContentType(c.into())))
            .transpose()?;
        Ok(Target {
            addr,
            method,
            path,
            host: HeaderValue::from_str(authority.as_str()).map_err(|_| bad("bad host"))?,
            content_type,
            timeout,
            max_body,
        })
    }
}

/// An open connection. Dropping it closes the socket.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How one exchange went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete response (or one whose body passed the cap).
    Response {
        status: u16,
        body_bytes: u64,
        truncated: bool,
    },
    Failed(Failure),
}

/// Why a request produced no response. `as_str` names the kind in error counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Connect,
    /// The service closed the connection before answering.
    Closed,
    /// What came back was not HTTP.
    InvalidResponse,
    Other,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connect",
            Failure::Closed => "closed",
            Failure::InvalidResponse => "invalid_response",
            Failure::Other => "other",
        }
    }
}

fn classify(e: &hyper::Error) -> Failure {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        Failure::InvalidResponse
    } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        Failure::Closed
    } else {
        Failure::Other
    }
}

async fn connect(addr: SocketAddr) -> Result<Conn, Failure> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|_| Failure::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
        .await
        .map_err(|_| Failure::Connect)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Conn { sender, driver })
}

/// One request on `conn` (opened, or reopened when the service closed it). Returns the
/// connection when it can carry another request. Nothing is retried once sent.
pub async fn exchange(
    conn: Option<Conn>,
    target: &Target,
    body: Option<Bytes>,
) -> (Option<Conn>, Outcome) {
    match tokio::time::timeout(target.timeout, exchange_inner(conn, target, body)).await {
        Ok(r) => r,
        // The connection is dropped with the future: its state is unknown.
        Err(_) => (None, Outcome::Failed(Failure::Timeout)),
    }
}

async fn exchange_inner(
    conn: Option<Conn>,
    target: &Target,
    body: Option<Bytes>,
) -> (Option<Conn>, Outcome) {
    let fail = |f| (None, Outcome::Failed(f));
    let mut conn = match conn {
        Some(c) if !c.sender.is_closed() => c,
        _ => match connect(target.addr).await {
            Ok(c) => c,
            Err(f) => return fail(f),
        },
    };
    if conn.sender.ready().await.is_err() {
        // Closed while idle (keep-alive timeout): nothing was sent, so a new connection is
        // not a retry.
        conn = match connect(target.addr).await {
            Ok(c) => c,
            Err(f) => return fail(f),
        };
        if conn.sender.ready().await.is_err() {
            return fail(Failure::Closed);
        }
    }
    let mut req = Request::new(Full::new(body.unwrap_or_default()));
    *req.method_mut() = target.method.clone();
    *req.uri_mut() = target.path.clone();
    let headers = req.headers_mut();
    headers.insert(HOST, target.host.clone());
    if let Some(ct) = &target.content_type {
        headers.insert(CONTENT_TYPE, ct.clone());
    }
    let resp = match conn.sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => return fail(classify(&e)),
    };
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut body_bytes = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(d) = f.data_ref() {
                    body_bytes += d.len() as u64;
                    if body_bytes > target.max_body as u64 {
                        // The rest is never read: the connection cannot be reused.
                        return (
                            None,
                            Outcome::Response {
                                status,
                                body_bytes: target.max_body as u64,
                                truncated: true,
                            },
                        );
                    }
                }
            }
            Err(e) => return fail(classify(&e)),
        }
    }
    (
        Some(conn),
        Outcome::Response {
            status,
            body_bytes,
            truncated: false,
        },
    )
}
