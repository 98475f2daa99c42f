//! What a run has produced so far, and how it becomes the report. Every stage files its product
//! here as it finishes, so a run cut short (a verdict, an engine failure, Ctrl-C) still reports
//! everything it graded; `finish` lists the declared checks that did not run as zeros with the
//! reason, so that the score of a run cut short is out of the full points.

use crate::check::{CheckResult, DeclaredCheck};
use crate::events::{Event, Events, StageTimer};
use crate::grader::Grader;
use crate::intake::SourceKind;
use crate::phases::Outcome;
use crate::report::{
    ContainerInfo, GraderInfo, GraderRun, Harness, ImageInfo, ReferenceLatency, Report,
    StageTiming, Status, SubmissionInfo, SCHEMA_VERSION,
};
use crate::sandbox::{ContainerFacts, EngineInfo};
use crate::verdict::{Fault, Verdict};

/// How a run ended, before it becomes a report status.
#[derive(Debug, Clone)]
pub enum Ending {
    Graded,
    /// Stopped by what the submission did, or by the machine: the verdict says which.
    Stopped {
        verdict: Verdict,
        reason: String,
    },
}

impl Ending {
    pub fn stopped(verdict: Verdict, reason: impl Into<String>) -> Ending {
        Ending::Stopped {
            verdict,
            reason: reason.into(),
        }
    }

    pub fn engine(e: &crate::sandbox::EngineError) -> Ending {
        Ending::stopped(e.verdict(), e.to_string())
    }

    pub fn interrupted() -> Ending {
        Ending::stopped(
            Verdict::Interrupted,
            "grading was interrupted before it finished; this is not a grade",
        )
    }
}

/// The vetted submission, as the report describes it.
#[derive(Debug, Clone)]
pub struct ContextFacts {
    pub kind: SourceKind,
    pub sha256: String,
    pub files: u64,
    pub bytes: u64,
    pub commit: Option<String>,
}

#[derive(Default)]
pub struct Record {
    /// The run's id (the label of its Docker resources).
    pub run_id: String,
    pub timings: Vec<StageTiming>,
    pub context: Option<ContextFacts>,
    pub image: Option<ImageInfo>,
    pub build_log_tail: Option<String>,
    pub harness: Harness,
    /// The container's end, when one was started.
    pub container: Option<ContainerFacts>,
    /// The reference measured before the candidate (`--latency-reference`), per grader (none
    /// for a grader without latency objectives).
    pub reference: Vec<Option<ReferenceLatency>>,
    /// What each grader's phases produced, in the order of the run's graders.
    pub outcomes: Vec<Outcome>,
    /// The graders' names, to mark their checks and phase timings.
    pub grader_names: Vec<String>,
    pub warnings: Vec<String>,
}

/// What the report says about the run itself, known before it starts.
pub struct RunFacts {
    pub run_id: String,
    pub started_at: String,
    pub source: String,
    /// The submission's kind when intake never said (`url`, `git`, `directory`, `archive`).
    pub kind_hint: &'static str,
    pub graders: Vec<GraderInfo>,
    pub seed: u64,
    pub memory_limit_bytes: u64,
    pub pids_limit: i64,
}

impl Record {
    pub fn new(run_id: &str, graders: &[GraderInfo]) -> Record {
        Record {
            run_id: run_id.to_string(),
            outcomes: graders.iter().map(|_| Outcome::default()).collect(),
            reference: graders.iter().map(|_| None).collect(),
            grader_names: graders.iter().map(|g| g.name.clone()).collect(),
            ..Record::default()
        }
    }

    /// Files the timing of a stage that finished.
    pub fn time(&mut self, timer: StageTimer, events: &Events) {
        self.timings.push(timer.finish(events));
    }

    /// Records a warning for the report and shows it at once.
    pub fn warn(&mut self, events: &Events, warning: String) {
        events.event(&Event::Warning(warning.clone()));
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    pub fn engine(&mut self, info: &EngineInfo) {
        self.harness.engine_version = info.version.clone();
        self.harness.engine_api_version = info.api_version.clone();
        self.harness.runc_version = info.runc_version.clone();
        self.harness.engine_os = info.os.clone();
    }

    /// Files the running phase of each grader, also a phase cut short.
    pub fn settle_outcomes(&mut self) {
        for o in &mut self.outcomes {
            o.settle();
        }
    }

    /// Files what the phases produced, also a phase cut short, after the pipeline's stages;
    /// with several graders, each phase's timing names its grader.
    pub fn settle_phases(&mut self) {
        self.settle_outcomes();
        let several = self.outcomes.len() > 1;
        for (o, name) in self.outcomes.iter_mut().zip(&self.grader_names) {
            for mut t in o.timings.drain(..) {
                if several {
                    t.grader = name.clone();
                }
                self.timings.push(t);
            }
        }
    }

    /// The report. `graders` holds each grader of the run with every check it declares; those
    /// that did not run are listed as zeros with the reason. Each grader's prerequisites apply
    /// to its own checks that ran, before those zeros are added: a prerequisite whose required
    /// checks never ran is not judged, so a run the service cut short keeps what it earned
    /// before. An infrastructure failure is no grade at all, and nothing is withheld from it.
    pub fn finish(
        mut self,
        run: RunFacts,
        ending: Ending,
        graders: &[(&Grader, Vec<DeclaredCheck>)],
    ) -> Report {
        self.settle_phases();
        let mut warnings = self.warnings;
        if let Some(c) = &self.container {
            warnings.extend(c.warnings.iter().cloned());
        }
        let (status, reason, verdict) = match ending {
            Ending::Graded => (Status::Graded, String::new(), None),
            Ending::Stopped { verdict, reason } => match verdict.fault() {
                Fault::Submission => (Status::SubmissionError, reason, Some(verdict)),
                Fault::Infrastructure if verdict == Verdict::Interrupted => {
                    (Status::InfrastructureError, reason, Some(verdict))
                }
                Fault::Infrastructure => (
                    Status::InfrastructureError,
                    format!(
                        "{reason} (this is a failure of the grading machine, not of the submission)"
                    ),
                    Some(verdict),
                ),
            },
        };
        let infrastructure = status == Status::InfrastructureError;
        let mut checks = Vec::new();
        let mut prerequisites = Vec::new();
        let mut runs = Vec::new();
        let outcomes = self.outcomes.into_iter().zip(self.reference);
        for (((grader, declared), info), (outcome, reference)) in
            graders.iter().zip(run.graders).zip(outcomes)
        {
            let mut own = outcome.checks;
            let mut applied = if infrastructure {
                Vec::new()
            } else {
                crate::prerequisite::apply(&grader.prerequisite, &mut own)
            };
            if status != Status::Graded {
                let why = format!("{}{reason}", crate::check::NOT_RUN);
                let missing: Vec<CheckResult> = declared
                    .iter()
                    .filter(|d| !own.iter().any(|r| d.is(r)))
                    .map(|d| d.failed(why.clone()))
                    .collect();
                own.extend(missing);
                // A rule over hidden checks that never ran names them all the same.
                for (rule, a) in grader.prerequisite.iter().zip(&mut applied) {
                    if crate::prerequisite::names_hidden(rule, &own) {
                        a.visibility = crate::check::Visibility::Hidden;
                    }
                }
            }
            prerequisites.extend(applied);
            for c in &mut own {
                c.grader = info.name.clone();
            }
            let (score, categories) = crate::score::score(&own);
            runs.push(GraderRun {
                // A harness failure is never a grade, not even a partial one.
                score: (!infrastructure).then_some(score),
                band: (!infrastructure)
                    .then(|| crate::score::band_of(score.percent, &grader.grade.band))
                    .flatten(),
                categories: if infrastructure {
                    Vec::new()
                } else {
                    categories
                },
                grader: info,
                latency: outcome.latency.map(|mut l| {
                    l.reference = reference;
                    l
                }),
                quality: outcome.quality,
                consistency: outcome.consistency,
                invariants: outcome.invariants,
                drift: outcome.drift,
                monitoring: outcome.monitoring,
                probes: outcome.probes,
                lifecycle: outcome.lifecycle,
                cost: outcome.cost,
                tests: outcome.tests,
                review: outcome.review,
            });
            checks.extend(own);
        }
        let (score, categories) = crate::score::score(&checks);
        // Composed graders declare the same bands or bands in one file only.
        let bands = graders
            .iter()
            .map(|(g, _)| &g.grade.band)
            .find(|b| !b.is_empty());
        let submission = match self.context {
            Some(c) => SubmissionInfo {
                source: run.source,
                kind: c.kind.as_str().to_string(),
                context_sha256: Some(c.sha256),
                files: Some(c.files),
                bytes: Some(c.bytes),
                commit: c.commit,
            },
            None => SubmissionInfo {
                source: run.source,
                kind: run.kind_hint.to_string(),
                ..Default::default()
            },
        };
        Report {
            schema_version: SCHEMA_VERSION,
            run_id: run.run_id,
            status,
            reason,
            verdict,
            // A harness failure is never a grade, not even a partial one.
            score: (!infrastructure).then_some(score),
            band: (!infrastructure)
                .then(|| bands.and_then(|b| crate::score::band_of(score.percent, b)))
                .flatten(),
            categories: if infrastructure {
                Vec::new()
            } else {
                categories
            },
            checks,
            prerequisites,
            hidden_checks: None,
            graders: runs,
            timings: self.timings,
            harness: self.harness,
            submission,
            image: self.image,
            seed: run.seed,
            container: self.container.map(|c| ContainerInfo {
                exit_code: c.exit.as_ref().and_then(|e| e.exit_code),
                oom_killed: c.exit.as_ref().map(|e| e.oom_killed),
                oom_kills: c.peaks.oom_kills,
                memory_peak_bytes: c.peaks.memory_bytes,
                memory_limit_bytes: run.memory_limit_bytes,
                pids_peak: c.peaks.pids,
                pids_limit: run.pids_limit,
                log_tail: c.log_tail,
            }),
            build_log_tail: self.build_log_tail,
            warnings,
            started_at: run.started_at,
            finished_at: now_rfc3339(),
        }
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}
