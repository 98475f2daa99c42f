//! The HTTP client used against candidate services, configured for a service that may be
//! hostile: no proxy, no redirects, no retries, no decompression, a connect timeout and a total
//! deadline per request (a 1-byte-per-second drip defeats a read timeout alone), and bodies read
//! chunk by chunk up to a cap (reqwest has no body limit of its own).

use std::time::Duration;

use reqwest::{Client, Method};

/// A response with its body cut at the configured cap.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The service sent more than the cap; `body` holds only the first part.
    pub truncated: bool,
}

impl Response {
    /// A short, printable, one-line excerpt of the body for messages and reports: invalid
    /// UTF-8 replaced, line breaks and tabs turned into spaces, other control characters
    /// dropped, at most `max_chars` characters.
    pub fn excerpt(&self, max_chars: usize) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let one_line: String = text
            .chars()
            .map(|c| {
                if matches!(c, '\n' | '\r' | '\t') {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        sanitize(&one_line, max_chars)
    }
}

/// Why a request produced no response.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Other(String),
}

impl HttpError {
    /// A stable short name, for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::Timeout(_) => "timeout",
            HttpError::Connect(_) => "connect",
            HttpError::Other(_) => "other",
        }
    }
}

/// Builds the hardened client. `pool_size` bounds idle connections kept per host.
pub fn client(connect_timeout: Duration, pool_size: usize) -> Client {
    Client::builder()
        .no_proxy()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .pool_max_idle_per_host(pool_size)
        .tcp_nodelay(true)
        .http1_only()
        .build()
        .expect("a client with these static settings always builds")
}

/// One request with a total deadline covering connect, headers and body.
pub async fn send(
    client: &Client,
    method: Method,
    url: &str,
    body: Option<(&str, &str)>,
    deadline: Duration,
    max_body: usize,
) -> Result<Response, HttpError> {
    let fut = async {
        let mut req = client.request(method, url).timeout(deadline);
        if let Some((content_type, body)) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.to_string());
        }
        let mut resp = req.send().await.map_err(|e| classify(e, deadline))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| sanitize(s, 100));
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(e, deadline))? {
            let room = max_body - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            content_type,
            body,
            truncated,
        })
    };
    // reqwest's own timeout should fire first; this one guards against anything it misses.
    match tokio::time::timeout(deadline + Duration::from_millis(100), fut).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout(deadline)),
    }
}

fn classify(e: reqwest::Error, deadline: Duration) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout(deadline)
    } else if e.is_connect() {
        HttpError::Connect(root_cause(&e))
    } else {
        HttpError::Other(root_cause(&e))
    }
}

/// reqwest's top-level message is generic ("error sending request"); the useful part is at the
/// bottom of the source chain.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    sanitize(&cur.to_string(), 200)
}

/// Printable text only, at most `max_chars` characters (an ellipsis marks the cut). Used for
/// everything a service controls that ends up in a terminal or a report.
pub fn sanitize(s: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in s
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .enumerate()
    {
        if n == max_chars {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_strips_control_characters_and_cuts() {
        assert_eq!(sanitize("a\x1b[31mb\x07c", 100), "a[31mbc");
        assert_eq!(sanitize("abcdef", 3), "abc…");
        assert_eq!(sanitize("line1\nline2", 100), "line1\nline2");
    }

    #[test]
    fn excerpt_replaces_invalid_utf8() {
        let r = Response {
            status: 200,
            content_type: None,
            body: vec![b'o', 0xff, b'k'],
            truncated: false,
        };
        assert_eq!(r.excerpt(10), "o\u{fffd}k");
    }

    #[test]
    fn excerpts_are_one_line() {
        let r = Response {
            status: 500,
            content_type: None,
            body: b"Traceback:\n\tFile \"app.py\"\r\n\x1b[31mKeyError\x1b[0m".to_vec(),
            truncated: false,
        };
        let e = r.excerpt(200);
        assert!(!e.chars().any(char::is_control), "{e:?}");
        assert_eq!(e, "Traceback:  File \"app.py\"  [31mKeyError[0m");
    }
}
