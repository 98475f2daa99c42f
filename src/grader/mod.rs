//! The grader file: what an assignment's graders declare (TOML), validated once into typed
//! structs. Everything assignment-specific lives in these files; no Rust code knows about any
//! particular assignment.
//!
//! Errors name the file, the line and column, and the field path (e.g. `correctness[2].status`),
//! because a grader editing a 300-line file needs to know exactly where to look.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::check::Category;
use crate::expect::{Expect, JsonAssert, StatusSet};

mod latency;
mod ml;
pub use latency::*;
pub use ml::*;

/// A grader file after validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grader {
    pub grader: GraderMeta,
    pub submission: SubmissionRules,
    #[serde(default)]
    pub sandbox: SandboxLimits,
    #[serde(default)]
    pub http: HttpSettings,
    pub readiness: Readiness,
    #[serde(default)]
    pub correctness: Vec<CheckSpec>,
    #[serde(default)]
    pub robustness: Vec<CheckSpec>,
    /// Scripted checks of missing and out-of-range values (category `missing_data`).
    #[serde(default)]
    pub missing_data: Vec<CheckSpec>,
    pub latency: Option<LatencySpec>,
    #[serde(default)]
    pub dataset: Vec<DatasetSpec>,
    pub prediction: Option<PredictionApi>,
    pub quality: Option<QualitySpec>,
    pub consistency: Option<ConsistencySpec>,
    pub drift: Option<DriftSpec>,
    pub metrics: Option<MetricsSpec>,
}

impl Grader {
    /// The scripted check lists, in the order they run, with their category.
    pub fn check_lists(&self) -> [(Category, &Vec<CheckSpec>); 3] {
        [
            (Category::Correctness, &self.correctness),
            (Category::Robustness, &self.robustness),
            (Category::MissingData, &self.missing_data),
        ]
    }
}

/// `[sandbox] cpuset` value that splits the machine's cores between service and load.
pub const AUTO_CPUSET: &str = "auto";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraderMeta {
    /// Shown in reports, e.g. "churn-public".
    pub name: String,
    /// The assignment this grader belongs to, e.g. "churn".
    pub assignment: String,
    #[serde(default)]
    pub description: String,
    /// Default visibility of every check in this file.
    #[serde(default)]
    pub visibility: Visibility,
}

pub use crate::check::Visibility;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionRules {
    /// The port the service listens on inside its container.
    #[serde(default = "default_port")]
    pub port: u16,
    /// `FROM` images a submission may use. Anything else is rejected before building.
    pub allowed_base_images: Vec<String>,
    #[serde(default = "default_build_timeout")]
    pub build_timeout_secs: u64,
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_secs: u64,
    /// Memory of each build step (swap included), at most 2047 MB (the API's limit).
    #[serde(default = "default_build_memory")]
    pub build_memory_mb: u64,
    /// Processes and threads of the whole build, across its steps.
    #[serde(default = "default_build_pids")]
    pub build_pids_limit: i64,
    /// A build printing more output than this is stopped.
    #[serde(default = "default_build_output")]
    pub max_build_output_mb: u64,
    /// Largest image accepted.
    #[serde(default = "default_image_size")]
    pub max_image_mb: u64,
}

fn default_build_memory() -> u64 {
    2000
}
fn default_build_pids() -> i64 {
    1024
}
fn default_build_output() -> u64 {
    16
}
fn default_image_size() -> u64 {
    4096
}

fn default_port() -> u16 {
    8080
}
fn default_build_timeout() -> u64 {
    600
}
fn default_ready_timeout() -> u64 {
    60
}

/// Resource limits of the candidate's container while it is graded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxLimits {
    /// Memory limit; swap is set to the same value, so no swap is available.
    pub memory_mb: u64,
    /// CPU quota (in CPUs). Ignored when `cpuset` pins the container instead: quotas throttle
    /// in 100 ms periods, which shows up as latency.
    pub cpus: f64,
    /// Cores the container may use, e.g. "1" (Docker's cpuset syntax). Keeps the service and
    /// the load generator on disjoint cores when both run on one machine.
    pub cpuset: Option<String>,
    pub pids_limit: i64,
    /// Size of the writable /tmp (counts against memory).
    pub tmpfs_mb: u64,
    pub nofile: i64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            memory_mb: 1024,
            cpus: 1.0,
            cpuset: None,
            pids_limit: 256,
            tmpfs_mb: 64,
            nofile: 4096,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Total time one scripted request may take, from connect to the last body byte.
    pub request_timeout_ms: u64,
    /// Responses larger than this are cut and fail their check.
    pub max_body_bytes: usize,
}

impl HttpSettings {
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            request_timeout_ms: 5_000,
            max_body_bytes: 1 << 20,
        }
    }
}

/// The readiness probe: polled until it passes or the deadline expires. It gates everything
/// else: a service that never becomes ready is a `submission_error`, not a zero.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    #[serde(default = "default_readiness_name")]
    pub name: String,
    pub path: UrlPath,
    #[serde(default)]
    pub points: Points,
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: u64,
    #[serde(default)]
    pub status: StatusSet,
    #[serde(default)]
    pub json: Vec<JsonAssert>,
    pub visibility: Option<Visibility>,
}

impl Readiness {
    pub fn expect(&self) -> Expect {
        Expect {
            status: self.status.clone(),
            json_body: !self.json.is_empty(),
            json: self.json.clone(),
        }
    }
}

fn default_readiness_name() -> String {
    "becomes ready".to_string()
}
fn default_poll_interval() -> u64 {
    250
}

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

/// A grader file that could not be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum GraderError {
    #[error("cannot read grader file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
}

/// A loaded grader with where it came from and a hash of its exact bytes, so a report can say
/// which grader produced it.
#[derive(Debug, Clone)]
pub struct LoadedGrader {
    pub path: PathBuf,
    pub sha256: String,
    pub grader: Grader,
    /// The declared datasets, loaded and typed, by name.
    pub datasets: std::collections::BTreeMap<String, std::sync::Arc<crate::data::Dataset>>,
}

pub fn load(path: &Path) -> Result<LoadedGrader, GraderError> {
    let text = std::fs::read_to_string(path).map_err(|source| GraderError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut grader = parse(&text, path)?;
    resolve_body_files(&mut grader, &text, path)?;
    let datasets = load_datasets(&grader, &text, path)?;
    Ok(LoadedGrader {
        path: path.to_owned(),
        sha256: crate::digest::sha256_hex(text.as_bytes()),
        grader,
        datasets,
    })
}

/// Parses and validates grader text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Grader, GraderError> {
    let invalid = |span: Option<std::ops::Range<usize>>, field: String, message: String| {
        invalid_at(text, path, span, field, message)
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| invalid(e.span(), "(syntax)".into(), e.message().to_string()))?;
    let grader: Grader = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        invalid(inner.span(), field, inner.message().to_string())
    })?;
    validate(&grader).map_err(|(field, message)| {
        let span = find_field_span(text, &field);
        invalid(span, field, message)
    })?;
    Ok(grader)
}

/// Reads `body_file`s into `body`, relative to the grader file's directory.
fn resolve_body_files(g: &mut Grader, text: &str, path: &Path) -> Result<(), GraderError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    for (phase, checks) in [
        ("correctness", &mut g.correctness),
        ("robustness", &mut g.robustness),
    ] {
        for (i, c) in checks.iter_mut().enumerate() {
            let Some(file) = &c.body_file else { continue };
            let full = dir.join(file);
            match std::fs::read_to_string(&full) {
                Ok(body) => c.body = Some(body),
                Err(e) => {
                    return Err(invalid_field(
                        text,
                        path,
                        format!("{phase}[{i}].body_file"),
                        format!("cannot read {}: {e}", full.display()),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Loads every `[[dataset]]` (paths relative to the grader file) and checks what refers to
/// them: names, labels, and the features drift scenarios shift.
fn load_datasets(
    g: &Grader,
    text: &str,
    path: &Path,
) -> Result<std::collections::BTreeMap<String, std::sync::Arc<crate::data::Dataset>>, GraderError> {
    use crate::data::{Dataset, Schema};
    let dir = path.parent().unwrap_or(Path::new("."));
    let invalid = |field: String, message: String| invalid_field(text, path, field, message);
    let mut out = std::collections::BTreeMap::new();
    for (i, d) in g.dataset.iter().enumerate() {
        let schema = Schema::load(&dir.join(&d.schema))
            .map_err(|m| invalid(format!("dataset[{i}].schema"), m))?;
        let data = Dataset::load(&d.name, &dir.join(&d.csv), schema)
            .map_err(|e| invalid(format!("dataset[{i}].csv"), e.to_string()))?;
        if out
            .insert(d.name.clone(), std::sync::Arc::new(data))
            .is_some()
        {
            return Err(invalid(
                format!("dataset[{i}].name"),
                format!("duplicate dataset name {:?}", d.name),
            ));
        }
    }
    let known = |field: &str, name: &str| -> Result<std::sync::Arc<Dataset>, GraderError> {
        out.get(name).cloned().ok_or_else(|| {
            invalid(
                field.to_string(),
                format!(
                    "no [[dataset]] named {name:?} (declared: {})",
                    out.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    };
    let needs_prediction =
        g.quality.is_some() || g.consistency.is_some() || g.drift.is_some() || g.metrics.is_some();
    if needs_prediction && g.prediction.is_none() {
        return Err(invalid("prediction".into(), "quality, consistency, drift and metrics need a [prediction] section saying how to ask for predictions".into()));
    }
    if let Some(p) = &g.prediction {
        if !p.body_template.contains("$INSTANCES") {
            return Err(invalid(
                "prediction.body_template".into(),
                "must contain $INSTANCES where the array of instances goes".into(),
            ));
        }
        if p.max_batch == 0 {
            return Err(invalid(
                "prediction.max_batch".into(),
                "must be at least 1".into(),
            ));
        }
    }
    if let Some(q) = &g.quality {
        for (field, name) in std::iter::once(("quality.dataset", &q.dataset)).chain(
            q.compare_dataset
                .as_ref()
                .map(|c| ("quality.compare_dataset", c)),
        ) {
            if known(field, name)?.labels.is_none() {
                return Err(invalid(
                    field.into(),
                    format!("dataset {name:?} has no label column to score against"),
                ));
            }
        }
        for (i, m) in q.metric.iter().enumerate() {
            if m.full_points_at == m.zero_points_at {
                return Err(invalid(
                    format!("quality.metric[{i}].zero_points_at"),
                    "must differ from full_points_at".into(),
                ));
            }
        }
    }
    if let Some(c) = &g.consistency {
        known("consistency.dataset", &c.dataset)?;
    }
    if let Some(m) = &g.metrics {
        known("metrics.dataset", &m.dataset)?;
    }
    if let Some(d) = &g.drift {
        let data = known("drift.dataset", &d.dataset)?;
        if d.batch_size == 0 || d.poll_every == 0 || d.window == 0 {
            return Err(invalid(
                "drift.window".into(),
                "window, batch_size and poll_every must be at least 1".into(),
            ));
        }
        if d.attribution_full_f1 <= d.attribution_zero_f1 || d.attribution_full_f1.is_nan() {
            return Err(invalid(
                "drift.attribution_zero_f1".into(),
                "must be below attribution_full_f1".into(),
            ));
        }
        if !d.feature_flag.contains("{feature}") {
            return Err(invalid(
                "drift.feature_flag".into(),
                "must contain {feature} where the feature name goes".into(),
            ));
        }
        for (i, sc) in d.scenario.iter().enumerate() {
            if sc.features.is_empty() {
                return Err(invalid(
                    format!("drift.scenario[{i}].features"),
                    "name at least one feature".into(),
                ));
            }
            for f in &sc.features {
                let Some((_, feature)) = data.schema.feature(f) else {
                    return Err(invalid(
                        format!("drift.scenario[{i}].features"),
                        format!("{f:?} is not a feature of dataset {:?}", d.dataset),
                    ));
                };
                sc.shift
                    .check_feature(feature)
                    .map_err(|m| invalid(format!("drift.scenario[{i}].kind"), m))?;
            }
        }
    }
    Ok(out)
}

/// Rules that span several fields, checked after the types are right.
fn validate(g: &Grader) -> Result<(), (String, String)> {
    if g.submission.allowed_base_images.is_empty() {
        return Err((
            "submission.allowed_base_images".into(),
            "list at least one base image a submission may build FROM".into(),
        ));
    }
    if g.sandbox.cpus <= 0.0 || !g.sandbox.cpus.is_finite() {
        return Err((
            "sandbox.cpus".into(),
            "must be a positive number of CPUs".into(),
        ));
    }
    if let Some(c) = g.sandbox.cpuset.as_deref().filter(|c| *c != AUTO_CPUSET) {
        if let Err(e) = crate::load::sys::parse_cpuset(c) {
            return Err((
                "sandbox.cpuset".into(),
                format!("{e} (or \"{AUTO_CPUSET}\" to split the cores with the load generator)"),
            ));
        }
    }
    let sub = &g.submission;
    if !(16..=2047).contains(&sub.build_memory_mb) {
        return Err((
            "submission.build_memory_mb".into(),
            "must be between 16 and 2047 MB (the engine's build API takes a 32-bit byte count)"
                .into(),
        ));
    }
    if sub.build_pids_limit < 16 {
        return Err((
            "submission.build_pids_limit".into(),
            "must be at least 16".into(),
        ));
    }
    if sub.max_build_output_mb == 0 || sub.max_image_mb == 0 {
        let field = if sub.max_image_mb == 0 {
            "max_image_mb"
        } else {
            "max_build_output_mb"
        };
        return Err((format!("submission.{field}"), "must be at least 1".into()));
    }
    if g.sandbox.memory_mb < 16 {
        return Err(("sandbox.memory_mb".into(), "must be at least 16 MB".into()));
    }
    if g.sandbox.pids_limit < 8 {
        return Err(("sandbox.pids_limit".into(), "must be at least 8".into()));
    }
    let mut names = BTreeSet::new();
    for (phase, checks) in [
        ("correctness", &g.correctness),
        ("robustness", &g.robustness),
    ] {
        for (i, c) in checks.iter().enumerate() {
            let field = format!("{phase}[{i}].name");
            if c.name.trim().is_empty() {
                return Err((field, "a check needs a non-empty name".into()));
            }
            if !names.insert(c.name.clone()) {
                return Err((field, format!("duplicate check name {:?}", c.name)));
            }
            c.expect()
                .validate()
                .map_err(|m| (format!("{phase}[{i}]"), m))?;
        }
    }
    g.readiness
        .expect()
        .validate()
        .map_err(|m| ("readiness".to_string(), m))?;
    if let Some(l) = &g.latency {
        l.validate()?;
    }
    Ok(())
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// An error about `field`, located in `text` by walking its spans.
fn invalid_field(text: &str, path: &Path, field: String, message: String) -> GraderError {
    let span = find_field_span(text, &field);
    invalid_at(text, path, span, field, message)
}

/// An error about `field` at `span` of `text` (the file's start when the span is unknown).
fn invalid_at(
    text: &str,
    path: &Path,
    span: Option<std::ops::Range<usize>>,
    field: String,
    message: String,
) -> GraderError {
    let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 1));
    GraderError::Invalid {
        path: path.to_owned(),
        line,
        column,
        field,
        message,
    }
}

/// Best-effort location of a field named by a validation rule (`latency.rate`,
/// `correctness[2].name`), found by walking the TOML document's spans.
fn find_field_span(text: &str, field: &str) -> Option<std::ops::Range<usize>> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut span = doc.span();
    let mut value: Option<DeValue<'_>> = Some(DeValue::Table(doc.into_inner()));
    for segment in field.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let table = match value.take()? {
            DeValue::Table(t) => t,
            _ => return Some(span),
        };
        let (_, v) = table.into_iter().find(|(k, _)| k.get_ref() == key)?;
        span = v.span();
        let mut inner = v.into_inner();
        if let Some(i) = index {
            if let DeValue::Array(items) = inner {
                let item = items.into_iter().nth(i)?;
                span = item.span();
                inner = item.into_inner();
            }
        }
        value = Some(inner);
    }
    Some(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[grader]
name = "t"
assignment = "a"

[submission]
allowed_base_images = ["base:1"]

[readiness]
path = "/ready"
status = 200
"#;

    fn parse_str(s: &str) -> Result<Grader, GraderError> {
        parse(s, Path::new("g.toml"))
    }

    #[test]
    fn a_bad_cpuset_is_located() {
        let err = parse_str(&format!("{MINIMAL}\n[sandbox]\ncpuset = \"1-x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sandbox.cpuset"), "{err}");
    }

    #[test]
    fn minimal_grader_gets_defaults() {
        let g = parse_str(MINIMAL).unwrap();
        assert_eq!(g.submission.port, 8080);
        assert_eq!(g.sandbox.memory_mb, 1024);
        assert!(g.correctness.is_empty());
        assert_eq!(g.readiness.status.0, vec![200]);
    }

    #[test]
    fn type_error_names_file_line_and_field() {
        let text =
            format!("{MINIMAL}\n[[correctness]]\nname = \"x\"\npoints = \"five\"\npath = \"/p\"\n");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.starts_with("g.toml:"), "{err}");
        assert!(err.contains("correctness[0].points"), "{err}");
        let line: usize = err.split(':').nth(1).unwrap().parse().unwrap();
        assert_eq!(
            text.lines().nth(line - 1).unwrap(),
            "points = \"five\"",
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_rejected_with_its_name() {
        let text = MINIMAL.replace("status = 200", "status = 200\ntimeout = 3");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("timeout"), "{err}");
        assert!(err.contains("g.toml:"), "{err}");
    }

    #[test]
    fn duplicate_check_names_point_at_the_second() {
        let text = format!(
            "{MINIMAL}\n[[correctness]]\nname = \"same\"\npoints = 1\npath = \"/p\"\n\n[[correctness]]\nname = \"same\"\npoints = 1\npath = \"/p\"\n"
        );
        let err = parse_str(&text).unwrap_err();
        match err {
            GraderError::Invalid { line, field, .. } => {
                assert_eq!(field, "correctness[1].name");
                assert_eq!(text.lines().nth(line - 1).unwrap(), "name = \"same\"");
                assert!(line > 15, "should point at the second one, got line {line}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn path_without_slash_and_bad_status_are_rejected() {
        let err = parse_str(&MINIMAL.replace("path = \"/ready\"", "path = \"ready\"")).unwrap_err();
        assert!(err.to_string().contains("must start with '/'"), "{err}");
        let err = parse_str(&MINIMAL.replace("status = 200", "status = 999")).unwrap_err();
        assert!(err.to_string().contains("999"), "{err}");
    }

    #[test]
    fn latency_curve_must_fall() {
        let text = format!(
            "{MINIMAL}\n[latency]\npath = \"/\"\nrate = 10\nduration_secs = 1\n[[latency.objective]]\npercentile = 99\nfull_points_ms = 50\nzero_points_ms = 10\npoints = 1\n"
        );
        let err = parse_str(&text).unwrap_err();
        match err {
            GraderError::Invalid { field, line, .. } => {
                assert_eq!(field, "latency.objective[0].zero_points_ms");
                assert_eq!(text.lines().nth(line - 1).unwrap(), "zero_points_ms = 10");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn body_files_are_read_relative_to_the_grader_and_missing_ones_located() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.json"), "{\"instances\": []}").unwrap();
        let text = format!("{MINIMAL}\n[[robustness]]\nname = \"big\"\npoints = 1\npath = \"/p\"\nbody_file = \"big.json\"\n");
        let path = dir.path().join("g.toml");
        std::fs::write(&path, &text).unwrap();
        let g = load(&path).unwrap().grader;
        assert_eq!(g.robustness[0].body.as_deref(), Some("{\"instances\": []}"));
        assert_eq!(g.robustness[0].method(), Method::Post);

        std::fs::write(&path, text.replace("big.json", "nope.json")).unwrap();
        match load(&path).unwrap_err() {
            GraderError::Invalid {
                line,
                field,
                message,
                ..
            } => {
                assert_eq!(field, "robustness[0].body_file");
                assert_eq!(
                    text.lines().nth(line - 1).unwrap(),
                    "body_file = \"big.json\""
                );
                assert!(message.contains("nope.json"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn empty_allowlist_is_rejected() {
        let err = parse_str(&MINIMAL.replace("[\"base:1\"]", "[]")).unwrap_err();
        assert!(err.to_string().contains("allowed_base_images"), "{err}");
    }
}
