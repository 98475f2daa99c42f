//! Review: static aids for the human who reads the code, from the vetted build context only
//! (nothing of the candidate's runs on the host): Python lint with pycodestyle and pyflakes in
//! proctor's own review image (which sees the vetted context unpacked at /src and nothing
//! else), structure, Dockerfile practice, the README, large or binary files, secret-like
//! strings (file and line, never the value), and, for a git source with `[review.history]`,
//! the bounded history intake fetched.
//!
//! Each part with points is a check of the `review` category; with `points = 0` it is
//! information in the report's `review` section only.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{Category, CheckResult, DeclaredCheck, Visibility};
use crate::control::Command;
use crate::grader::{LoadedGrader, ReviewSpec};
use crate::phases::Needs;
use crate::report::ReviewReport;
use crate::review::{LintSummary, Review, Status};

pub const LINT: &str = "Python code follows PEP 8 (pycodestyle, pyflakes)";
pub const DOCKERFILE: &str = "the Dockerfile follows production practice";
pub const README: &str = "a README says how to run the service and why it is built so";
pub const SECRETS: &str = "no secret-like strings in the submission";
pub const SUBJECTS: &str = "commit subjects say what changed";
pub const TESTS_WITH_CODE: &str = "tests change with the code in the history";

/// The review's checks and their points, in report order.
fn declared(spec: &ReviewSpec) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    if let Some(l) = &spec.lint {
        out.push((LINT, l.per_1000_lines.points.0));
    }
    out.push((DOCKERFILE, spec.dockerfile_points.0));
    out.push((README, spec.readme_points.0));
    out.push((SECRETS, spec.secrets_points.0));
    if let Some(h) = &spec.history {
        out.push((SUBJECTS, h.subject_points.0));
        out.push((TESTS_WITH_CODE, h.tests_with_code_points.0));
    }
    // Information only: in the section, not a check.
    out.retain(|(_, p)| *p > 0.0);
    out
}

fn vis(spec: &ReviewSpec, g: &LoadedGrader) -> Visibility {
    spec.visibility.unwrap_or(g.grader.grader.visibility)
}

/// The lint command: both linters over the context, every violation on its own line; the
/// exit codes say only that violations were found, so they are not read.
fn lint_command(max_line_length: u32, timeout: Duration) -> Command {
    Command {
        name: "review".into(),
        argv: vec![
            "sh".into(),
            "-c".into(),
            format!(
                "cd /src && python3 -m pycodestyle --max-line-length={max_line_length} . ; \
                 python3 -m pyflakes . ; exit 0"
            ),
        ],
        timeout,
        max_output: 2 * 1024 * 1024,
        read_file: None,
        max_file: 0,
    }
}

/// Scores what the review found.
pub fn grade(spec: &ReviewSpec, r: &ReviewReport, vis: Visibility) -> Vec<CheckResult> {
    declared(spec)
        .into_iter()
        .map(|(name, max)| {
            let (share, message) = match name {
                LINT => lint_share(spec, r),
                DOCKERFILE => dockerfile_share(&r.review),
                README => readme_share(&r.review),
                SECRETS => secrets_share(&r.review),
                SUBJECTS => subjects_share(r),
                _ => tests_with_code_share(r),
            };
            let points = crate::score::round2(max * share.clamp(0.0, 1.0));
            CheckResult {
                grader: String::new(),
                name: name.to_string(),
                category: Category::Review,
                points,
                max_points: max,
                passed: points >= max,
                message,
                visibility: vis,
            }
        })
        .collect()
}

fn lint_share(spec: &ReviewSpec, r: &ReviewReport) -> (f64, String) {
    let Some(curve) = spec.lint.as_ref().map(|l| l.per_1000_lines) else {
        return (0.0, String::new());
    };
    match &r.lint {
        Some(l) => {
            let top: Vec<String> = {
                let mut codes: Vec<(&String, &u64)> = l.by_code.iter().collect();
                codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                codes
                    .iter()
                    .take(5)
                    .map(|(c, n)| format!("{c} ×{n}"))
                    .collect()
            };
            (
                curve.points_for(l.per_1000_lines) / curve.points.0,
                format!(
                    "{} violations in {} lines of Python: {:.1} per 1000 lines (full points at \
                     <= {}, none at >= {}){}",
                    l.violations,
                    l.lines,
                    l.per_1000_lines,
                    curve.full,
                    curve.zero,
                    if top.is_empty() {
                        String::new()
                    } else {
                        format!("; most: {}", top.join(", "))
                    }
                ),
            )
        }
        None => (
            0.0,
            format!(
                "not linted: {}",
                r.lint_problem
                    .as_deref()
                    .unwrap_or("the linter gave no result")
            ),
        ),
    }
}

fn dockerfile_share(review: &Review) -> (f64, String) {
    let judged: Vec<_> = review
        .dockerfile
        .iter()
        .filter(|f| f.status != Status::NotApplicable)
        .collect();
    let passed = judged.iter().filter(|f| f.status == Status::Pass).count();
    let failed: Vec<String> = judged
        .iter()
        .filter(|f| f.status == Status::Fail)
        .map(|f| match f.line {
            Some(l) => format!("{} (line {l})", f.message),
            None => f.message.clone(),
        })
        .collect();
    let share = if judged.is_empty() {
        1.0
    } else {
        passed as f64 / judged.len() as f64
    };
    (
        share,
        if failed.is_empty() {
            format!("{passed} of {} practices followed", judged.len())
        } else {
            format!(
                "{passed} of {} practices followed; {}",
                judged.len(),
                failed.join("; ")
            )
        },
    )
}

fn readme_share(review: &Review) -> (f64, String) {
    let r = &review.readme;
    let Some(path) = &r.path else {
        return (0.0, "no README in the build context".into());
    };
    let share = 0.5 * f64::from(u8::from(r.run_notes)) + 0.5 * f64::from(u8::from(r.design_notes));
    let said = |yes: bool, what: &str| {
        if yes {
            format!("has {what}")
        } else {
            format!("no {what}")
        }
    };
    (
        share,
        format!(
            "{path}: {}, {}",
            said(r.run_notes, "run notes (how to build and run)"),
            said(r.design_notes, "design notes (choices, trade-offs)")
        ),
    )
}

fn secrets_share(review: &Review) -> (f64, String) {
    let s = &review.secrets;
    if s.findings.is_empty() {
        return (1.0, format!("{} text files scanned", s.files_scanned));
    }
    let places: Vec<String> = s
        .findings
        .iter()
        .take(10)
        .map(|f| format!("{}:{}", f.file, f.line))
        .collect();
    (
        0.0,
        format!(
            "{} secret-like strings (values not shown): {}{}",
            s.findings.len() as u64 + s.omitted,
            places.join(", "),
            if s.findings.len() > 10 { ", ..." } else { "" }
        ),
    )
}

fn subjects_share(r: &ReviewReport) -> (f64, String) {
    match history_summary(r) {
        Some((subjects, _)) => subjects,
        None => (0.0, history_missing(r)),
    }
}

fn tests_with_code_share(r: &ReviewReport) -> (f64, String) {
    match history_summary(r) {
        Some((_, tests)) => tests,
        None => (0.0, history_missing(r)),
    }
}

fn history_missing(r: &ReviewReport) -> String {
    if r.history.is_none() {
        "no history: the submission is not a git repository, or its history could not be read"
            .into()
    } else {
        "the history could not be read".into()
    }
}

/// (share of good subjects, share of code commits that touched tests), each with its message;
/// none when there is no history, or it could not be read.
fn history_summary(r: &ReviewReport) -> Option<((f64, String), (f64, String))> {
    let h = r
        .history
        .as_ref()
        .filter(|h| h.error.is_none() && h.commits > 0)?;
    let s = &h.subjects;
    // A subject is good when it is neither generic ("fix", "wip") nor too short, nor too long
    // for a one-line summary; short and generic often coincide, so the larger of the two counts.
    let bad = s
        .generic_share
        .unwrap_or(0.0)
        .max(s.short_share.unwrap_or(0.0))
        + s.long_share.unwrap_or(0.0);
    let good = (1.0 - bad).clamp(0.0, 1.0);
    let subjects = (
        good,
        format!(
            "{} commits{}: {:.0}% generic, {:.0}% under 10 characters, {:.0}% over 72",
            h.commits,
            if h.cut {
                " read (the history goes further back)"
            } else {
                ""
            },
            100.0 * s.generic_share.unwrap_or(0.0),
            100.0 * s.short_share.unwrap_or(0.0),
            100.0 * s.long_share.unwrap_or(0.0)
        ),
    );
    let t = &h.tests;
    let tests = match t.code_with_tests_share {
        Some(share) => (
            share,
            format!(
                "{} of {} commits that changed code also changed tests (within that commit or \
                 the next)",
                (share * f64::from(t.code_commits)).round(),
                t.code_commits
            ),
        ),
        None => (0.0, "no commit changed code".to_string()),
    };
    Some((subjects, tests))
}

pub struct ReviewPhase;

impl super::Phase for ReviewPhase {
    fn name(&self) -> &'static str {
        "review"
    }

    fn declared(&self, g: &LoadedGrader) -> bool {
        g.grader.review.is_some()
    }

    fn checks(&self, g: &LoadedGrader) -> Vec<DeclaredCheck> {
        let Some(spec) = &g.grader.review else {
            return Vec::new();
        };
        let v = vis(spec, g);
        declared(spec)
            .into_iter()
            .map(|(name, points)| DeclaredCheck::new(name, Category::Review, points, v))
            .collect()
    }

    fn budget(&self, g: &LoadedGrader) -> Duration {
        let lint = g
            .grader
            .review
            .as_ref()
            .and_then(|r| r.lint.as_ref())
            .map_or(0, |l| l.timeout_secs);
        Duration::from_secs(lint + 90)
    }

    fn needs(&self) -> Needs {
        // The vetted context and the review image: a `--url` service has neither.
        Needs::Container
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let g = &cx.grader.grader;
            let (Some(spec), Some(container), Some(sub)) = (&g.review, cx.container, cx.submission)
            else {
                return;
            };
            let (tar, dockerfile) = (sub.tar.clone(), sub.dockerfile.clone());
            let review =
                match tokio::task::spawn_blocking(move || crate::review::review(&tar, &dockerfile))
                    .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        out.machine_failure = Some(crate::control::MachineError {
                            verdict: crate::verdict::Verdict::EngineError,
                            reason: format!("the review stopped: {e}"),
                        });
                        return;
                    }
                };
            let mut report = ReviewReport {
                visibility: vis(spec, cx.grader),
                review,
                lint: None,
                lint_problem: None,
                history: sub.history.clone(),
            };
            if let Some(l) = &spec.lint {
                let command = lint_command(l.max_line_length, Duration::from_secs(l.timeout_secs));
                match container.run_review(&command).await {
                    Err(e) => {
                        out.machine_failure = Some(e);
                        return;
                    }
                    Ok(o) if o.timed_out => {
                        report.lint_problem =
                            Some(format!("the linter took longer than {} s", l.timeout_secs))
                    }
                    Ok(o) => {
                        let s = &report.review.structure;
                        report.lint = Some(LintSummary::from_output(
                            "pycodestyle+pyflakes",
                            &o.output_tail,
                            s.python_modules,
                            s.code_lines + s.test_lines,
                        ))
                    }
                }
            }
            out.checks = grade(spec, &report, vis(spec, cx.grader));
            out.section = Some(super::Section::Review(Box::new(report)));
        })
    }
}
