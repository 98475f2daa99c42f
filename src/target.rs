//! Where requests go: the base URL of a service under test and the hardened client to reach it.
//! Phases only ever see this; they never see Docker, so the same checks run against a started
//! container or a service a candidate runs themselves (`--url`).

use std::time::Duration;

use crate::grader::HttpSettings;
use crate::http::Connections;

#[derive(Debug, Clone)]
pub struct Target {
    /// e.g. `http://172.18.0.2:8080`, no trailing slash.
    pub base_url: String,
    pub client: reqwest::Client,
    pub request_timeout: Duration,
    pub max_body: usize,
}

impl Target {
    pub fn new(base_url: &str, settings: &HttpSettings) -> Target {
        Target {
            base_url: base_url.trim_end_matches('/').to_string(),
            // Checks and scripted traffic: one connection per request (see `PerRequest`).
            client: crate::http::client(Duration::from_secs(2), Connections::PerRequest),
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
            max_body: settings.max_body_bytes,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}
