//! Progress on a terminal: a spinner for the stage that is running (the build's current step,
//! readiness, each phase) and a bar for each load, drawn by indicatif, with the lines that stay
//! (checks, warnings, stages done) printed above them. A CI log or a pipe gets the plain
//! timestamped lines of `events::LineReporter` instead: see [`reporter`].

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{check_line, Event, Events, LineReporter, Reporter};

/// The reporter for this process: bars on a terminal, plain lines otherwise.
pub fn reporter(quiet: bool) -> Events {
    let env = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
    if bars_wanted(
        std::io::stderr().is_terminal(),
        env("CI").as_deref(),
        env("TERM").as_deref(),
        quiet,
    ) {
        let colour = env("NO_COLOR").is_none_or(|v| v.is_empty());
        Arc::new(BarReporter::new(ProgressDrawTarget::stderr(), colour))
    } else {
        Arc::new(LineReporter::stderr(quiet))
    }
}

/// Bars only where a person watches a terminal: stderr is one, no CI system runs us (`CI` set,
/// as GitHub, GitLab and most others set it), the terminal can redraw (not `dumb`), and
/// progress was asked for (not `--quiet`).
pub fn bars_wanted(stderr_is_tty: bool, ci: Option<&str>, term: Option<&str>, quiet: bool) -> bool {
    stderr_is_tty && ci.is_none_or(|v| v.is_empty()) && term != Some("dumb") && !quiet
}

/// indicatif's bars over stderr; the lines that stay are printed above them.
pub struct BarReporter {
    bars: MultiProgress,
    colour: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The spinner of the running stage.
    stage: Option<ProgressBar>,
    /// The bar of the running load.
    load: Option<ProgressBar>,
    /// Every line printed above the bars, in order (tests read it; it is small).
    printed: Vec<String>,
    shown_warnings: Vec<String>,
}

impl BarReporter {
    pub fn new(target: ProgressDrawTarget, colour: bool) -> BarReporter {
        BarReporter {
            bars: MultiProgress::with_draw_target(target),
            colour,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A line that stays, above the bars.
    fn println(&self, state: &mut State, line: String) {
        let _ = self.bars.println(&line);
        state.printed.push(line);
    }

    fn paint(&self, text: &str, ansi: &str) -> String {
        if self.colour {
            format!("\x1b[{ansi}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn style(&self, template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template)
            .expect("the progress templates are valid")
            .progress_chars("=> ")
    }

    /// The lines printed above the bars so far.
    pub fn printed(&self) -> Vec<String> {
        self.state().printed.clone()
    }
}

impl Reporter for BarReporter {
    fn event(&self, event: &Event) {
        let mut st = self.state();
        match event {
            Event::RunStarted {
                run_id,
                submission,
                grader,
            } => self.println(
                &mut st,
                format!("run {run_id}: grading {submission} with {grader}"),
            ),
            Event::StageStarted(s) => {
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(self.style("{spinner} {prefix:<12} {elapsed:>4} {wide_msg}"));
                bar.set_prefix(s.name());
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Some(old) = st.stage.replace(bar) {
                    old.finish_and_clear();
                }
            }
            Event::StageFinished { stage, elapsed } => {
                if let Some(bar) = st.stage.take() {
                    bar.finish_and_clear();
                }
                if let Some(bar) = st.load.take() {
                    bar.finish_and_clear();
                }
                let done = self.paint("done", "32");
                self.println(
                    &mut st,
                    format!("{}: {done} in {:.1}s", stage.name(), elapsed.as_secs_f64()),
                );
            }
            Event::OutOfBudget { stage, budget } => {
                let warning = self.paint("warning", "33");
                self.println(
                    &mut st,
                    format!(
                        "{warning}: {} ran out of its time budget of {:.0}s and was stopped; its \
                         remaining checks score zero",
                        stage.name(),
                        budget.as_secs_f64()
                    ),
                );
            }
            Event::BuildStep(step) => {
                if let Some(bar) = &st.stage {
                    bar.set_message(step.clone());
                }
            }
            Event::CheckFinished { passed, .. } => {
                let mark = if *passed {
                    self.paint("PASS", "32")
                } else {
                    self.paint("FAIL", "31")
                };
                if let Some(line) = check_line(&mark, event) {
                    self.println(&mut st, line);
                }
            }
            Event::LoadProgress { done, total } => {
                if st.load.is_none() {
                    let bar = self.bars.add(ProgressBar::new(*total));
                    bar.set_style(self.style(
                        "  load       [{bar:30}] {pos}/{len} requests sent {per_sec:>10} {eta}",
                    ));
                    st.load = Some(bar);
                }
                if let Some(bar) = &st.load {
                    bar.set_length(*total);
                    bar.set_position(*done);
                    if done >= total {
                        bar.finish_and_clear();
                        st.load = None;
                    }
                }
            }
            Event::Warning(w) => {
                if !st.shown_warnings.contains(w) {
                    st.shown_warnings.push(w.clone());
                    let warning = self.paint("warning", "33");
                    self.println(&mut st, format!("{warning}: {w}"));
                }
            }
            Event::Info(s) => {
                // Passing news (a wait for the machine, a retry): the spinner shows it while its
                // stage runs, a line keeps it otherwise.
                match &st.stage {
                    Some(bar) => bar.set_message(s.clone()),
                    None => self.println(&mut st, s.clone()),
                }
            }
        }
    }

    fn shown_warnings(&self) -> Vec<String> {
        self.state().shown_warnings.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Stage;

    #[test]
    fn bars_only_for_a_person_at_a_terminal() {
        assert!(bars_wanted(true, None, Some("xterm-256color"), false));
        assert!(bars_wanted(true, Some(""), None, false));
        assert!(!bars_wanted(false, None, Some("xterm"), false), "a pipe");
        assert!(!bars_wanted(true, Some("true"), Some("xterm"), false), "CI");
        assert!(
            !bars_wanted(true, None, Some("dumb"), false),
            "dumb terminal"
        );
        assert!(!bars_wanted(true, None, Some("xterm"), true), "--quiet");
    }

    fn run(colour: bool) -> BarReporter {
        let r = BarReporter::new(ProgressDrawTarget::hidden(), colour);
        r.event(&Event::StageStarted(Stage::Build));
        r.event(&Event::BuildStep(
            "Step 1/4 : FROM proctor/python-ml:3.11".into(),
        ));
        r.event(&Event::StageFinished {
            stage: Stage::Build,
            elapsed: Duration::from_millis(1500),
        });
        r.event(&Event::StageStarted(Stage::Phase("latency")));
        for done in [0, 250, 500] {
            r.event(&Event::LoadProgress { done, total: 500 });
        }
        r.event(&Event::CheckFinished {
            name: "p99 latency".into(),
            points: 5.0,
            max_points: 5.0,
            passed: true,
            message: String::new(),
            hidden: false,
        });
        r.event(&Event::CheckFinished {
            name: "secret".into(),
            points: 0.0,
            max_points: 2.0,
            passed: false,
            message: "secret detail".into(),
            hidden: true,
        });
        for _ in 0..2 {
            r.event(&Event::Warning("runc is old".into()));
        }
        r
    }

    #[test]
    fn lines_that_stay_are_printed_above_the_bars_each_warning_once() {
        let r = run(false);
        assert_eq!(
            r.printed(),
            [
                "build: done in 1.5s",
                "PASS p99 latency 5.0/5.0",
                "FAIL [hidden check] 0.0/2.0",
                "warning: runc is old",
            ]
        );
        assert_eq!(r.shown_warnings(), ["runc is old"]);
        assert!(r.state().load.is_none(), "a finished load's bar is gone");
    }

    #[test]
    fn colour_only_when_not_asked_away() {
        let r = run(true);
        assert!(r
            .printed()
            .iter()
            .any(|l| l.contains("\x1b[32mPASS\x1b[0m")));
        assert!(run(false).printed().iter().all(|l| !l.contains('\x1b')));
    }
}
