//! Polls the readiness probe until it passes or the deadline expires.

use std::time::{Duration, Instant};

use crate::grader::{Readiness, Visibility};
use crate::http;
use crate::report::CheckResult;
use crate::target::Target;

/// How readiness ended.
#[derive(Debug)]
pub enum ReadyOutcome {
    Ready {
        after: Duration,
    },
    /// The deadline passed; `last` says what the last probe saw.
    TimedOut {
        last: String,
    },
}

/// Polls until the probe's expectations hold, or `deadline` passes. Each probe has its own
/// short timeout so that a hanging service cannot stretch the deadline.
pub async fn wait_ready(target: &Target, spec: &Readiness, deadline: Duration) -> ReadyOutcome {
    let started = Instant::now();
    let expect = spec.expect();
    let interval = Duration::from_millis(spec.poll_interval_ms);
    let mut last = "no probe completed".to_string();
    loop {
        let left = deadline.saturating_sub(started.elapsed());
        if left.is_zero() {
            return ReadyOutcome::TimedOut { last };
        }
        let probe_timeout = left.min(target.request_timeout).min(Duration::from_secs(2));
        match http::send(
            &target.client,
            reqwest::Method::GET,
            &target.url(&spec.path.0),
            None,
            probe_timeout,
            target.max_body,
        )
        .await
        {
            Ok(resp) => match expect.check(&resp) {
                Ok(()) => {
                    return ReadyOutcome::Ready {
                        after: started.elapsed(),
                    }
                }
                Err(m) => last = m,
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(interval.min(deadline.saturating_sub(started.elapsed()))).await;
    }
}

/// The readiness check result: full points when ready in time.
pub fn result(spec: &Readiness, default_vis: Visibility, outcome: &ReadyOutcome) -> CheckResult {
    let max = spec.points.0;
    let (passed, message) = match outcome {
        ReadyOutcome::Ready { after } => (true, format!("ready after {:.1}s", after.as_secs_f64())),
        ReadyOutcome::TimedOut { last } => {
            (false, format!("never became ready; last probe: {last}"))
        }
    };
    CheckResult {
        grader: String::new(),
        name: spec.name.clone(),
        category: crate::check::Category::Readiness,
        points: if passed { max } else { 0.0 },
        max_points: max,
        passed,
        message,
        visibility: spec.visibility.unwrap_or(default_vis),
    }
}

/// The readiness check as declared, for the list of checks a run cut short did not reach.
pub fn declared(loaded: &crate::grader::LoadedGrader) -> crate::check::DeclaredCheck {
    let g = &loaded.grader;
    crate::check::DeclaredCheck::new(
        g.readiness.name.clone(),
        crate::check::Category::Readiness,
        g.readiness.points.0,
        g.readiness.visibility.unwrap_or(g.grader.visibility),
    )
}
