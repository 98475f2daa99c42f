//! Progress events. The pipeline emits them; a reporter renders them (plain timestamped lines on
//! stderr, so a CI log and a terminal read the same). Nothing else in proctor prints while
//! grading: writers produce files, and the final summary is printed by the CLI.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A step of a run, as progress lines and the report's timings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Intake,
    Build,
    Start,
    Ready,
    /// A phase of the registry (`phases::registry`), by its name.
    Phase(&'static str),
    Cleanup,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Intake => "intake",
            Stage::Build => "build",
            Stage::Start => "start",
            Stage::Ready => "ready",
            Stage::Phase(name) => name,
            Stage::Cleanup => "cleanup",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    RunStarted {
        run_id: String,
        submission: String,
        grader: String,
    },
    StageStarted(Stage),
    StageFinished {
        stage: Stage,
        elapsed: Duration,
    },
    /// A phase ran past its time budget and was stopped; its remaining checks score zero.
    OutOfBudget {
        stage: Stage,
        budget: Duration,
    },
    /// A `Step n/m : ...` line of the image build.
    BuildStep(String),
    CheckFinished {
        name: String,
        points: f64,
        max_points: f64,
        passed: bool,
        message: String,
        hidden: bool,
    },
    LoadProgress {
        done: u64,
        total: u64,
    },
    Warning(String),
    Info(String),
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: &Event);

    /// The warnings shown so far, in order: the summary at the end does not repeat them.
    fn shown_warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Where the pipeline sends its events.
pub type Events = Arc<dyn Reporter>;

/// Discards everything (library use, tests).
pub struct Silent;
impl Reporter for Silent {
    fn event(&self, _: &Event) {}
}

/// Plain lines on stderr, prefixed with the seconds since the run started.
pub struct LineReporter {
    started: Instant,
    quiet: bool,
    out: Mutex<Box<dyn Write + Send>>,
    last_progress: Mutex<u64>,
    /// Every warning shown so far, so that the summary at the end does not repeat them.
    shown: Mutex<Vec<String>>,
}

impl LineReporter {
    pub fn stderr(quiet: bool) -> Self {
        LineReporter {
            started: Instant::now(),
            quiet,
            out: Mutex::new(Box::new(std::io::stderr())),
            last_progress: Mutex::new(0),
            shown: Mutex::new(Vec::new()),
        }
    }

    fn line(&self, text: &str) {
        let t = self.started.elapsed().as_secs_f64();
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "[{t:6.1}s] {text}");
    }
}

impl Reporter for LineReporter {
    fn event(&self, event: &Event) {
        // Warnings and the run id are shown even in quiet mode: the first says something went
        // wrong, the second is what `proctor gc` and a human need to find leftovers.
        match event {
            Event::RunStarted {
                run_id,
                submission,
                grader,
            } => self.line(&format!("run {run_id}: grading {submission} with {grader}")),
            Event::Warning(w) => {
                let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
                // The same warning twice (e.g. from the latency reference's run and the
                // candidate's) says nothing new.
                if !shown.contains(w) {
                    shown.push(w.clone());
                    drop(shown);
                    self.line(&format!("warning: {w}"));
                }
            }
            Event::OutOfBudget { stage, budget } => self.line(&format!(
                "warning: {} ran out of its time budget of {:.0}s and was stopped; its remaining \
                 checks score zero",
                stage.name(),
                budget.as_secs_f64()
            )),
            _ if self.quiet => {}
            Event::StageStarted(s) => self.line(&format!("{}: started", s.name())),
            Event::StageFinished { stage, elapsed } => self.line(&format!(
                "{}: done in {:.1}s",
                stage.name(),
                elapsed.as_secs_f64()
            )),
            Event::BuildStep(s) => self.line(&format!("build: {s}")),
            Event::CheckFinished { passed, .. } => {
                let mark = if *passed { "PASS" } else { "FAIL" };
                if let Some(line) = check_line(mark, event) {
                    self.line(&line);
                }
            }
            Event::LoadProgress { done, total } => {
                // One line per 25% so a CI log stays short.
                let quarter = if *total == 0 { 4 } else { done * 4 / total };
                let mut last = self.last_progress.lock().unwrap_or_else(|e| e.into_inner());
                if quarter != *last || *done == 0 {
                    *last = quarter;
                    self.line(&format!("latency: {done}/{total} requests sent"));
                }
            }
            Event::Info(s) => self.line(s),
        }
    }

    fn shown_warnings(&self) -> Vec<String> {
        self.shown.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The line a finished check prints, after its `mark` (PASS or FAIL, coloured or not): a hidden
/// check by its points only, a failed one with its message. None for any other event.
pub fn check_line(mark: &str, event: &Event) -> Option<String> {
    let Event::CheckFinished {
        name,
        points,
        max_points,
        passed,
        message,
        hidden,
    } = event
    else {
        return None;
    };
    Some(if *hidden {
        format!("{mark} [hidden check] {points:.1}/{max_points:.1}")
    } else if *passed || message.is_empty() {
        format!("{mark} {name} {points:.1}/{max_points:.1}")
    } else {
        format!("{mark} {name} {points:.1}/{max_points:.1}: {message}")
    })
}

/// Times one stage: announces its start, and its end with the timing the report keeps.
pub struct StageTimer {
    stage: Stage,
    started: Instant,
    started_at: time::OffsetDateTime,
}

impl StageTimer {
    pub fn start(events: &Events, stage: Stage) -> StageTimer {
        events.event(&Event::StageStarted(stage));
        StageTimer {
            stage,
            started: Instant::now(),
            started_at: time::OffsetDateTime::now_utc(),
        }
    }

    /// Announces the end of the stage and returns its timing for the report.
    pub fn finish(self, events: &Events) -> crate::report::StageTiming {
        let elapsed = self.started.elapsed();
        events.event(&Event::StageFinished {
            stage: self.stage,
            elapsed,
        });
        crate::report::StageTiming {
            stage: self.stage.name().into(),
            seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            budget_seconds: None,
            out_of_budget: false,
            grader: String::new(),
            lock_wait_seconds: None,
            started_at: self
                .started_at
                .format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .unwrap_or_default(),
        }
    }
}

/// A wait for the machine-wide latency lock as a report records it: in seconds, only when it
/// was long enough to matter (10 ms or more).
pub fn lock_wait(waited: std::time::Duration) -> Option<f64> {
    let secs = waited.as_secs_f64();
    (secs >= 0.01).then(|| (secs * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_warning_prints_once_and_is_remembered() {
        let buf = Buffer::default();
        let r = LineReporter {
            out: Mutex::new(Box::new(buf.clone())),
            ..LineReporter::stderr(true)
        };
        for w in ["runc is old", "memory near its limit", "runc is old"] {
            r.event(&Event::Warning(w.into()));
        }
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("warning: runc is old").count(), 1, "{text}");
        assert_eq!(text.matches("warning: memory near its limit").count(), 1);
        assert_eq!(r.shown_warnings(), ["runc is old", "memory near its limit"]);
    }
}
