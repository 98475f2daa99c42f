//! Building the candidate's image: classic builder (it honours resource limits and a disabled
//! network, BuildKit does not), build network off, a wall-clock deadline that cancels the build
//! (dropping the stream makes the engine stop it and remove its build container), and a bounded
//! tail of the output for the report.

use std::collections::VecDeque;
use std::time::Duration;

use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use futures_util::StreamExt;

use super::{labels, Engine, EngineError};
use crate::events::{Event, Events};
use crate::http::sanitize;

/// Resources of the build container.
#[derive(Debug, Clone)]
pub struct BuildLimits {
    pub timeout: Duration,
    /// Bytes; the API takes an i32, so builds are capped just under 2 GiB.
    pub memory: i32,
    /// CPU quota in microseconds per 100 ms period (100_000 = one CPU).
    pub cpu_quota: i32,
    /// Most bytes of build output read; a build that prints more is stopped (`build_failed`).
    pub max_output_bytes: u64,
    /// Largest image accepted (`image_too_large` past it).
    pub max_image_bytes: u64,
    /// A cgroup (see `build_cgroup`) that caps the processes of the build's steps.
    pub cgroup_parent: Option<String>,
}

impl Default for BuildLimits {
    fn default() -> Self {
        BuildLimits {
            timeout: Duration::from_secs(600),
            memory: 2_000_000_000,
            cpu_quota: 100_000,
            max_output_bytes: 16 * 1024 * 1024,
            max_image_bytes: 4 * 1024 * 1024 * 1024,
            cgroup_parent: None,
        }
    }
}

/// A built image.
#[derive(Debug, Clone)]
pub struct Built {
    pub image_id: String,
    pub tag: String,
    pub size_bytes: Option<i64>,
    pub log_tail: String,
}

/// Why the submission's build did not produce an image: the candidate's to fix.
#[derive(Debug, Clone)]
pub struct BuildFailure {
    /// `build_failed` or `build_timeout`.
    pub verdict: crate::verdict::Verdict,
    pub reason: String,
    pub log_tail: String,
}

/// Keeps the last lines of the build output, bounded in lines and bytes.
struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl Tail {
    const MAX_LINES: usize = 200;
    const MAX_BYTES: usize = 32 * 1024;

    fn new() -> Tail {
        Tail {
            lines: VecDeque::new(),
            bytes: 0,
        }
    }

    fn push(&mut self, text: &str) {
        for line in text.lines() {
            let line = sanitize(line, 1000);
            self.bytes += line.len();
            self.lines.push_back(line);
            while self.lines.len() > Self::MAX_LINES || self.bytes > Self::MAX_BYTES {
                match self.lines.pop_front() {
                    Some(old) => self.bytes -= old.len(),
                    None => break,
                }
            }
        }
    }

    fn text(&self) -> String {
        self.lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Builds `context` (a tar) as image `tag`, labelled with the run's labels.
/// `Ok(Err(_))` is the submission's failure; `Err(_)` the engine's.
pub async fn build(
    engine: &Engine,
    context: Vec<u8>,
    tag: &str,
    run_id: &str,
    limits: &BuildLimits,
    events: &Events,
) -> Result<Result<Built, BuildFailure>, EngineError> {
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(tag)
        .version(BuilderVersion::BuilderV1)
        .networkmode("none")
        .rm(true)
        .forcerm(true)
        // No layer cache: a grade must not depend on what earlier builds left behind, and a run
        // that removes its image (pruning its parents) must not pull layers out from under a
        // build running in parallel.
        .nocache(true)
        .memory(limits.memory)
        .memswap(limits.memory)
        .cpuperiod(100_000)
        .cpuquota(limits.cpu_quota)
        .labels(&labels::for_build(run_id))
        .build();
    let docker = match &limits.cgroup_parent {
        Some(parent) => with_cgroup_parent(engine.docker.clone(), parent),
        None => engine.docker.clone(),
    };
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut tail = Tail::new();
    let mut step: Option<String> = None;
    let mut image_id: Option<String> = None;
    let mut finished_ok = false;
    let mut output_bytes: u64 = 0;

    let consume = async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = &info.stream {
                        output_bytes += s.len() as u64;
                        if output_bytes > limits.max_output_bytes {
                            let at = step
                                .as_deref()
                                .map(|s| format!(" at {s}"))
                                .unwrap_or_default();
                            return Ok(Err((
                                crate::verdict::Verdict::BuildFailed,
                                format!(
                                    "the build printed more than {} MB of output{at}; it was \
                                     stopped (a step that logs without end, or a noisy download)",
                                    limits.max_output_bytes / (1024 * 1024)
                                ),
                            )));
                        }
                        tail.push(s);
                        for line in s.lines().filter(|l| l.starts_with("Step ")) {
                            let line = sanitize(line, 200);
                            events.event(&Event::BuildStep(line.clone()));
                            step = Some(line);
                        }
                        if s.starts_with("Successfully built") {
                            finished_ok = true;
                        }
                    }
                    if let Some(id) = info.aux.as_ref().and_then(|a| a.id.clone()) {
                        image_id = Some(id);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    tail.push(&error);
                    if is_host_fault(&error) {
                        return Err(EngineError::api("build the image", error));
                    }
                    let at = step
                        .as_deref()
                        .map(|s| format!("at {s}: "))
                        .unwrap_or_default();
                    let hint = failure_hint(&error, &tail.text(), limits)
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    return Ok(Err((
                        crate::verdict::Verdict::BuildFailed,
                        format!("the build failed {at}{}{hint}", sanitize(&error, 500)),
                    )));
                }
                // A decode error after the final success line is a known bollard quirk.
                Err(_) if finished_ok => break,
                Err(e) => return Err(EngineError::api("build the image", e)),
            }
        }
        Ok(Ok(()))
    };

    let outcome = match tokio::time::timeout(limits.timeout, consume).await {
        Ok(r) => r?,
        Err(_) => Err((
            crate::verdict::Verdict::BuildTimeout,
            format!(
                "the build did not finish within {}s{}",
                limits.timeout.as_secs(),
                step.as_deref()
                    .map(|s| format!(" (last step started: {s})"))
                    .unwrap_or_default()
            ),
        )),
    };
    // Dropping the stream closes the connection; the engine then stops the build.
    drop(stream);
    match outcome {
        Err((verdict, reason)) => Ok(Err(BuildFailure {
            verdict,
            reason,
            log_tail: tail.text(),
        })),
        Ok(()) => {
            let inspect = super::deadline(
                super::CALL_TIMEOUT,
                "inspect the built image",
                engine.docker.inspect_image(tag),
            )
            .await?;
            let id = inspect.id.or(image_id).unwrap_or_else(|| tag.to_string());
            if let Some(size) = inspect.size.filter(|&s| s as u64 > limits.max_image_bytes) {
                return Ok(Err(BuildFailure {
                    verdict: crate::verdict::Verdict::ImageTooLarge,
                    reason: format!(
                        "the image is {} MB, over the limit of {} MB: leave build caches, \
                         datasets and unused dependencies out of it",
                        size as u64 / (1024 * 1024),
                        limits.max_image_bytes / (1024 * 1024)
                    ),
                    log_tail: tail.text(),
                }));
            }
            Ok(Ok(Built {
                image_id: id,
                tag: tag.to_string(),
                size_bytes: inspect.size,
                log_tail: tail.text(),
            }))
        }
    }
}

/// The engine's build endpoint takes a `cgroupparent` for the build's step containers, but
/// bollard's build options do not carry it: this client adds it to the build request's query.
fn with_cgroup_parent(docker: bollard::Docker, parent: &str) -> bollard::Docker {
    // Run ids and the prefix are [a-z0-9-]; anything else would need escaping in a query, and
    // is left out rather than sent half-escaped.
    let safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '/';
    if !parent.chars().all(safe) {
        return docker;
    }
    let parent = parent.to_string();
    docker.with_request_modifier(move |mut req| {
        if req.uri().path().ends_with("/build") {
            let uri = req.uri().to_string();
            let sep = if uri.contains('?') { '&' } else { '?' };
            if let Ok(u) = format!("{uri}{sep}cgroupparent={parent}").parse::<hyper::Uri>() {
                *req.uri_mut() = u;
            }
        }
        req
    })
}

/// Why a step most likely failed, when its output says so: the sandbox's limits look like
/// ordinary errors from inside a step.
fn failure_hint(error: &str, output: &str, limits: &BuildLimits) -> Option<String> {
    let text = format!("{error}\n{output}");
    let any = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if error.contains("returned a non-zero code: 137") {
        Some(format!(
            "the step was killed, most likely for using more than the build's {} MB of memory",
            limits.memory / (1024 * 1024)
        ))
    } else if any(&[
        "can't fork",
        "Resource temporarily unavailable",
        "fork: retry",
    ]) {
        Some("the build reached its process limit".into())
    } else if any(&[
        "Network is unreachable",
        "Temporary failure in name resolution",
        "Could not resolve",
        "bad address",
        "Name or service not known",
        "No route to host",
    ]) {
        Some(
            "builds run without network: vendor what the service needs in the submission, or \
             use what the base image provides"
                .into(),
        )
    } else {
        None
    }
}

/// Build errors that come from the host, not from the candidate's Dockerfile.
fn is_host_fault(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    if e.contains("failed to export image") || e.contains("unknown parent image") {
        return true;
    }
    e.contains("no space left on device")
        || (e.contains("cannot allocate memory") && !e.contains("returned a non-zero code"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_within_bounds() {
        let mut t = Tail::new();
        for i in 0..1000 {
            t.push(&format!("line {i}\n"));
        }
        let text = t.text();
        assert!(text.ends_with("line 999"));
        assert_eq!(text.lines().count(), Tail::MAX_LINES);
        t.push(&"x".repeat(100_000));
        assert!(t.text().len() <= Tail::MAX_BYTES + 1000);
    }

    #[test]
    fn sandbox_limits_are_named_in_build_failures() {
        let limits = BuildLimits {
            memory: 64 * 1024 * 1024,
            ..BuildLimits::default()
        };
        let oom = "The command '/bin/sh -c x' returned a non-zero code: 137";
        assert!(failure_hint(oom, "", &limits)
            .unwrap()
            .contains("64 MB of memory"));
        let net = "The command '/bin/sh -c pip install x' returned a non-zero code: 1";
        let out = "WARNING: Retrying ... Temporary failure in name resolution";
        assert!(failure_hint(net, out, &limits)
            .unwrap()
            .contains("without network"));
        let fork = "sh: can't fork: Resource temporarily unavailable";
        assert!(failure_hint(net, fork, &limits)
            .unwrap()
            .contains("process limit"));
        assert_eq!(failure_hint(net, "SyntaxError", &limits), None);
    }

    #[test]
    fn disk_full_is_the_host_s_fault() {
        assert!(is_host_fault(
            "write /var/lib/docker/x: no space left on device"
        ));
        assert!(!is_host_fault(
            "The command '/bin/sh -c false' returned a non-zero code: 1"
        ));
    }
}
