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
}

impl Default for BuildLimits {
    fn default() -> Self {
        BuildLimits {
            timeout: Duration::from_secs(600),
            memory: 2_000_000_000,
            cpu_quota: 100_000,
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
    pub verdict: &'static str,
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
    let mut stream =
        engine
            .docker
            .build_image(options, None, Some(bollard::body_full(context.into())));
    let mut tail = Tail::new();
    let mut step: Option<String> = None;
    let mut image_id: Option<String> = None;
    let mut finished_ok = false;

    let consume = async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = &info.stream {
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
                    return Ok(Err((
                        "build_failed",
                        format!("the build failed {at}{}", sanitize(&error, 500)),
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
            "build_timeout",
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
            Ok(Ok(Built {
                image_id: id,
                tag: tag.to_string(),
                size_bytes: inspect.size,
                log_tail: tail.text(),
            }))
        }
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
    fn disk_full_is_the_host_s_fault() {
        assert!(is_host_fault(
            "write /var/lib/docker/x: no space left on device"
        ));
        assert!(!is_host_fault(
            "The command '/bin/sh -c false' returned a non-zero code: 1"
        ));
    }
}
