//! The load's hot path: one HTTP/1.1 connection per worker, the request bytes built once before
//! the load starts, the response head parsed with httparse and the body counted, not kept.
//!
//! reqwest serves the scripted checks; here it costs ~12-13 µs of client CPU per request, and
//! hyper's client connection (a dispatch channel and a task per connection) ~11% more than wrk
//! (docs/load.md has the measurements). Per request this does one write and, for a small
//! answer, one read. The protections of `crate::http` stay: a total deadline per request
//! (connect, head and body), the body read up to a cap, a cap on the response head, no
//! redirects, no proxy, no decompression, and no retry of a sent request. A connection is only
//! reused when the response's framing says where it ended and nothing arrived after it.

use std::net::SocketAddr;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a response head.
const MAX_HEADERS: usize = 100;
/// Bytes read per call (the buffer is reused for the connection's life).
const READ_CHUNK: usize = 16 * 1024;

/// Everything about the request that does not change between sends.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub method: Method,
    /// Origin form: path and query.
    pub path: Uri,
    /// `host[:port]` as sent in the Host header.
    pub host: String,
    pub content_type: Option<String>,
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
        if let Some(c) = content_type {
            if c.bytes().any(|b| b.is_ascii_control()) {
                return Err(TargetError::ContentType(c.into()));
            }
        }
        Ok(Target {
            addr,
            method,
            path,
            host: authority.as_str().to_string(),
            content_type: content_type.map(str::to_string),
            timeout,
            max_body,
        })
    }

    /// The complete request, built once: head, framing and body.
    pub fn request(&self, body: Option<&str>) -> Bytes {
        let mut r = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.host
        );
        if let Some(b) = body {
            if let Some(ct) = &self.content_type {
                r.push_str(&format!("Content-Type: {ct}\r\n"));
            }
            r.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        r.push_str("\r\n");
        if let Some(b) = body {
            r.push_str(b);
        }
        Bytes::from(r)
    }
}

/// An open connection and its read buffer. Dropping it closes the socket.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
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
    /// The service closed the connection before answering in full.
    Closed,
    /// What came back was not HTTP/1.x (or its head was too large).
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

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    /// Until the service closes the connection.
    Close,
}

struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    keep_alive: bool,
}

async fn connect(addr: SocketAddr) -> Result<Conn, Failure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| Failure::Connect)?;
    let _ = stream.set_nodelay(true);
    Ok(Conn {
        stream,
        buf: Vec::with_capacity(READ_CHUNK),
    })
}

impl Conn {
    /// Still open, and nothing arrived since the last response (no syscall unless the event
    /// loop saw the socket become readable).
    fn reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Reads more into the buffer; EOF is `Closed`.
    async fn fill(&mut self) -> Result<usize, Failure> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err(Failure::Closed),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Err(Failure::Closed),
            Err(_) => Err(Failure::Other),
        }
    }

    async fn read_head(&mut self, head_request: bool) -> Result<Head, Failure> {
        let mut start = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf[start..]) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = resp.code.unwrap_or(0);
                    if (100..200).contains(&status) && status != 101 {
                        // An interim answer (100 Continue): the real one follows.
                        start += len;
                        continue;
                    }
                    if status == 101 {
                        return Err(Failure::InvalidResponse);
                    }
                    let head = head_of(&resp, status, start + len, head_request)?;
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return Err(Failure::InvalidResponse),
            }
            if self.buf.len() - start >= MAX_HEAD {
                return Err(Failure::InvalidResponse);
            }
            self.fill().await?;
        }
    }

    /// Counts the body that follows the head. Returns the bytes and whether the connection
    /// ended exactly where the body did (it may carry another request).
    async fn read_body(
        &mut self,
        head: &Head,
        max_body: u64,
    ) -> Result<(u64, bool, bool), Failure> {
        // Bytes of the buffer after the head; the head itself is no longer needed.
        self.buf.drain(..head.len);
        match head.framing {
            Framing::Length(n) => {
                let mut got = self.buf.len() as u64;
                while got < n {
                    if got > max_body {
                        return Ok((max_body, true, false));
                    }
                    self.buf.clear();
                    got += self.fill().await? as u64;
                }
                if n > max_body {
                    return Ok((max_body, true, false));
                }
                // Anything past the body was never asked for: do not read it as the next answer.
                let clean = got == n;
                self.buf.clear();
                Ok((n, false, clean))
            }
            Framing::Close => {
                let mut got = self.buf.len() as u64;
                loop {
                    if got > max_body {
                        return Ok((max_body, true, false));
                    }
                    self.buf.clear();
                    match self.fill().await {
                        Ok(n) => got += n as u64,
                        Err(Failure::Closed) => return Ok((got, false, false)),
                        Err(f) => return Err(f),
                    }
                }
            }
            Framing::Chunked => self.read_chunked(max_body).await,
        }
    }

    async fn read_chunked(&mut self, max_body: u64) -> Result<(u64, bool, bool), Failure> {
        let mut got = 0u64;
        let mut pos = 0usize;
        loop {
            // Chunk size line.
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[pos..]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        pos += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.buf.len() - pos > 1024 {
                            return Err(Failure::InvalidResponse);
                        }
                        self.compact(&mut pos);
                        self.fill().await?;
                    }
                    Err(_) => return Err(Failure::InvalidResponse),
                }
            };
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(&self.buf[pos..], &mut headers) {
                        Ok(httparse::Status::Complete((used, _))) => {
                            let clean = pos + used == self.buf.len();
                            self.buf.clear();
                            return Ok((got, false, clean));
                        }
                        Ok(httparse::Status::Partial) => {
                            if self.buf.len() - pos >= MAX_HEAD {
                                return Err(Failure::InvalidResponse);
                            }
                            self.compact(&mut pos);
                            self.fill().await?;
                        }
                        Err(_) => return Err(Failure::InvalidResponse),
                    }
                }
            }
            // The chunk's data, then CRLF.
            let mut left = size;
            loop {
                let have = (self.buf.len() - pos) as u64;
                let take = have.min(left);
                pos += take as usize;
                left -= take;
                got += take;
                if got > max_body {
                    return Ok((max_body, true, false));
                }
                if left == 0 {
                    break;
                }
                self.buf.clear();
                pos = 0;
                self.fill().await?;
            }
            while self.buf.len() - pos < 2 {
                self.compact(&mut pos);
                self.fill().await?;
            }
            if &self.buf[pos..pos + 2] != b"\r\n" {
                return Err(Failure::InvalidResponse);
            }
            pos += 2;
        }
    }

    fn compact(&mut self, pos: &mut usize) {
        self.buf.drain(..*pos);
        *pos = 0;
    }
}

/// Status, framing and persistence from a parsed head (RFC 9112 section 6).
fn head_of(
    resp: &httparse::Response<'_, '_>,
    status: u16,
    len: usize,
    head_request: bool,
) -> Result<Head, Failure> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut other_coding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| Failure::InvalidResponse)?;
        if h.name.eq_ignore_ascii_case("content-length") {
            for v in value.split(',') {
                let n: u64 = v.trim().parse().map_err(|_| Failure::InvalidResponse)?;
                if length.is_some_and(|l| l != n) {
                    return Err(Failure::InvalidResponse);
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked must come last; anything else can only end with the connection.
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if last.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else {
                other_coding = true;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in value.split(',').map(str::trim) {
                close |= t.eq_ignore_ascii_case("close");
                keep_alive_token |= t.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let http10 = resp.version == Some(0);
    let mut keep_alive = if http10 {
        keep_alive_token && !close
    } else {
        !close
    };
    let framing = if head_request || status == 204 || status == 304 {
        Framing::Length(0)
    } else if other_coding {
        Framing::Close
    } else if chunked {
        // Both headers: the coding wins, and the connection is not trusted after it.
        if length.is_some() {
            keep_alive = false;
        }
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    if framing == Framing::Close {
        keep_alive = false;
    }
    Ok(Head {
        status,
        len,
        framing,
        keep_alive,
    })
}

/// One request on `conn` (opened, or reopened when the service closed it while idle). Returns
/// the connection when it can carry another request. Nothing is retried once sent.
///
/// The request times out after the target's timeout, or at `cut_off` if that comes first (the
/// run's deadline: nothing of a run outlasts it).
pub async fn exchange(
    conn: Option<Conn>,
    target: &Target,
    request: &Bytes,
    cut_off: Instant,
) -> (Option<Conn>, Outcome) {
    let deadline = (Instant::now() + target.timeout).min(cut_off);
    match tokio::time::timeout_at(deadline.into(), exchange_inner(conn, target, request)).await {
        Ok(r) => r,
        // The connection is dropped with the future: its state is unknown.
        Err(_) => (None, Outcome::Failed(Failure::Timeout)),
    }
}

async fn exchange_inner(
    conn: Option<Conn>,
    target: &Target,
    request: &Bytes,
) -> (Option<Conn>, Outcome) {
    let fail = |f| (None, Outcome::Failed(f));
    // Closed while idle (keep-alive timeout): nothing was sent yet, so a new connection is not
    // a retry.
    let mut conn = match conn.and_then(|mut c| c.reusable().then_some(c)) {
        Some(c) => c,
        None => match connect(target.addr).await {
            Ok(c) => c,
            Err(f) => return fail(f),
        },
    };
    conn.buf.clear();
    if conn.stream.write_all(request).await.is_err() {
        return fail(Failure::Closed);
    }
    let head = match conn.read_head(target.method == Method::HEAD).await {
        Ok(h) => h,
        Err(f) => return fail(f),
    };
    match conn.read_body(&head, target.max_body as u64).await {
        Ok((body_bytes, truncated, clean)) => {
            let outcome = Outcome::Response {
                status: head.status,
                body_bytes,
                truncated,
            };
            let reuse = head.keep_alive && clean && !truncated;
            (reuse.then_some(conn), outcome)
        }
        Err(f) => fail(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, head_request: bool) -> Result<Head, Failure> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(text.as_bytes()).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial"),
        };
        head_of(&resp, resp.code.unwrap(), len, head_request)
    }

    #[test]
    fn framing_follows_the_rfc() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false).unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), true));
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, true));
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false).unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        let h = head("HTTP/1.1 200 OK\r\n\r\n", false).unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Close, false));
        let h = head("HTTP/1.1 204 No Content\r\n\r\n", false).unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(0), true));
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false).unwrap();
        assert!(!h.keep_alive);
        let h = head(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(h.keep_alive);
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", false).is_err());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", false).is_ok());
    }

    #[tokio::test]
    async fn requests_are_built_once_with_their_framing() {
        let t = Target::new(
            "http://127.0.0.1:9/a?b=1",
            Method::POST,
            Some("application/json"),
            Duration::from_secs(1),
            10,
        )
        .await
        .unwrap();
        assert_eq!(
            &t.request(Some("{}"))[..],
            b"POST /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        assert_eq!(
            &t.request(None)[..],
            b"POST /a?b=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n"
        );
        assert!(
            Target::new("https://x/", Method::GET, None, Duration::ZERO, 1)
                .await
                .is_err()
        );
    }
}
