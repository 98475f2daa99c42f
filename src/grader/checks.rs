//! A scripted check (`[[correctness]]`, `[[robustness]]`, `[[missing_data]]`) and the value
//! types its fields are made of: method, points and request path.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::check::Visibility;
use crate::expect::{Expect, JsonAssert, StatusSet};

/// One scripted request and what its response must look like.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    pub points: Points,
    /// Defaults to POST when a body is given, GET otherwise.
    pub method: Option<Method>,
    pub path: UrlPath,
    /// Sent byte for byte, so that a case can send invalid JSON on purpose.
    pub body: Option<String>,
    /// A file whose content is the body, relative to the grader file (for large bodies).
    pub body_file: Option<PathBuf>,
    /// Defaults to `application/json` when a body is given.
    pub content_type: Option<String>,
    pub visibility: Option<Visibility>,
    /// Accepted response statuses (one code or a list); 200 when not given.
    #[serde(default)]
    pub status: StatusSet,
    /// The response body must be JSON (implied when `json` assertions are given).
    #[serde(default)]
    pub json_body: bool,
    /// Assertions on the JSON response body.
    #[serde(default)]
    pub json: Vec<JsonAssert>,
}

impl CheckSpec {
    pub fn expect(&self) -> Expect {
        Expect {
            status: self.status.clone(),
            json_body: self.json_body || !self.json.is_empty(),
            json: self.json.clone(),
        }
    }

    pub fn method(&self) -> Method {
        self.method.unwrap_or(if self.body.is_some() {
            Method::Post
        } else {
            Method::Get
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
}

impl Method {
    pub fn as_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
            Method::Patch => reqwest::Method::PATCH,
        }
    }
}

/// Points a check is worth: finite and non-negative, checked at parse time.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, Deserialize)]
#[serde(try_from = "f64")]
pub struct Points(pub f64);

impl TryFrom<f64> for Points {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if v.is_finite() && v >= 0.0 {
            Ok(Points(v))
        } else {
            Err(format!("points must be a non-negative number, got {v}"))
        }
    }
}

/// A request path: starts with `/`, no scheme or host (requests only ever go to the target).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UrlPath(pub String);

impl TryFrom<String> for UrlPath {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        if !v.starts_with('/') {
            return Err(format!("path must start with '/', got {v:?}"));
        }
        if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "path must not contain spaces or control characters: {v:?}"
            ));
        }
        Ok(UrlPath(v))
    }
}

impl fmt::Display for UrlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::grader::fixtures::{parse_str, MINIMAL};

    #[test]
    fn path_without_slash_and_bad_status_are_rejected() {
        let err = parse_str(&MINIMAL.replace("path = \"/ready\"", "path = \"ready\"")).unwrap_err();
        assert!(err.to_string().contains("must start with '/'"), "{err}");
        let err = parse_str(&MINIMAL.replace("status = 200", "status = 999")).unwrap_err();
        assert!(err.to_string().contains("999"), "{err}");
    }
}
