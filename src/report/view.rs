//! Who reads a report, and what they may see: the ONE place that decides what a candidate's
//! view holds. Every renderer draws from `Report::for_view`, never from the raw report, so a new
//! view cannot leak a hidden check by forgetting to hide it.

use super::{GraderRun, HiddenCategory, HiddenChecks, Report};
use crate::check::{CheckResult, Visibility};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Everything the run recorded.
    #[default]
    Grader,
    /// What a candidate may see: hidden checks only as a count and their points, never their
    /// names, inputs, expected values or messages; and no section of a phase whose checks are
    /// all hidden (its numbers would tell what was probed).
    Candidate,
}

/// What a candidate's view holds instead of the service's log once hidden checks have run.
pub const HIDDEN_LOG: &str =
    "(left out of a candidate's view: the service's log may hold what hidden checks sent it)";

/// A candidate's reason for an invalid latency measurement when latency checks are hidden.
pub const INVALID_LATENCY: &str = "the latency measurement was invalid: the grading machine could \
     not keep the load's schedule. This is a failure of the grading machine, not of the \
     submission, and not a grade: it is graded again on a quieter machine";

/// A candidate's reason for a latency reference that failed when latency checks are hidden.
pub const REFERENCE_FAILED: &str = "the latency reference could not be measured on the grading \
     machine. This is a failure of the grading machine, not of the submission, and not a grade";

/// Draws a report in one format for one reader.
pub trait Render {
    fn render(&self, report: &Report, view: View) -> String;
}

impl Report {
    /// The report as `view` may see it.
    pub fn for_view(&self, view: View) -> Report {
        let mut r = self.clone();
        if view == View::Grader {
            return r;
        }
        // The probes' failed cases carry the requests sent: a candidate gets the checks'
        // messages (class and features) only, and nothing of probes that are hidden.
        for g in &mut r.graders {
            if let Some(p) = &mut g.probes {
                p.failures.clear();
            }
            if g.probes.as_ref().is_some_and(|p| p.hidden) {
                g.probes = None;
            }
        }
        let hidden: Vec<_> = r
            .checks
            .iter()
            .filter(|c| c.visibility == Visibility::Hidden)
            .cloned()
            .collect();
        if hidden.is_empty() {
            return r;
        }
        // The service's log may echo what hidden checks sent it. It is shown only when the
        // service stopped before any check ran (it never became ready, or exited first).
        use crate::verdict::Verdict as V;
        if !matches!(r.verdict, Some(V::NeverReady | V::Exited)) {
            if let Some(c) = &mut r.container {
                if !c.log_tail.is_empty() {
                    c.log_tail = HIDDEN_LOG.into();
                }
            }
        }
        let mut all_hidden = Vec::new();
        for g in &mut r.graders {
            if hide_sections(g, &self.checks) {
                all_hidden.push(g.grader.name.clone());
            }
        }
        // A hidden grader's phase timings and budgets tell what it declared.
        r.timings.retain(|t| !all_hidden.contains(&t.grader));
        // The reason of an invalid latency measurement (or reference) quotes the objectives'
        // numbers; when latency checks are hidden, a candidate gets what it means instead.
        if hidden
            .iter()
            .any(|c| c.category == crate::check::Category::Latency)
        {
            match r.verdict {
                Some(V::LatencyMeasurementInvalid) => r.reason = INVALID_LATENCY.into(),
                Some(V::ReferenceFailed) => r.reason = REFERENCE_FAILED.into(),
                _ => {}
            }
        }
        r.checks.retain(|c| c.visibility == Visibility::Visible);
        // A prerequisite that requires or gates a hidden check would name it and its points.
        // (The score's band is left in: it is derived from the total the candidate sees.)
        r.prerequisites
            .retain(|p| p.visibility == Visibility::Visible);
        use crate::check::Category as C;
        let by_category = C::ALL
            .into_iter()
            .filter_map(|cat| {
                let of: Vec<_> = hidden.iter().filter(|c| c.category == cat).collect();
                (!of.is_empty()).then(|| HiddenCategory {
                    category: cat,
                    count: of.len() as u64,
                    passed: of.iter().filter(|c| c.passed).count() as u64,
                    points: crate::score::round2(of.iter().map(|c| c.points).sum()),
                    max_points: crate::score::round2(of.iter().map(|c| c.max_points).sum()),
                })
            })
            .collect();
        r.hidden_checks = Some(HiddenChecks {
            count: hidden.len() as u64,
            passed: hidden.iter().filter(|c| c.passed).count() as u64,
            points: crate::score::round2(hidden.iter().map(|c| c.points).sum()),
            max_points: crate::score::round2(hidden.iter().map(|c| c.max_points).sum()),
            by_category,
        });
        r
    }
}

/// Drops the sections of a grader's phases whose checks (among `checks`, the grader's by
/// name) are all hidden: their numbers would tell what was probed. A grader with no visible
/// check at all keeps its name, assignment and score only; returns whether it is one.
fn hide_sections(g: &mut GraderRun, checks: &[CheckResult]) -> bool {
    use crate::check::Category as C;
    let own: Vec<&CheckResult> = checks
        .iter()
        .filter(|c| c.grader == g.grader.name)
        .collect();
    let all_hidden = |cat: C| {
        let mut of = own.iter().filter(|c| c.category == cat).peekable();
        of.peek().is_some() && of.all(|c| c.visibility == Visibility::Hidden)
    };
    if all_hidden(C::Quality) {
        g.quality = None;
    }
    if all_hidden(C::Consistency) {
        g.consistency = None;
    }
    // Invariants share the consistency category with the consistency phase: their section
    // goes unless every check it names is a visible one.
    let visible = |name: &str| {
        own.iter().any(|c| {
            c.name == name && c.category == C::Consistency && c.visibility == Visibility::Visible
        })
    };
    if let Some(inv) = &g.invariants {
        if !inv.invariants.iter().all(|o| visible(&o.name)) {
            g.invariants = None;
        }
    }
    if all_hidden(C::Latency) {
        g.latency = None;
    }
    // An objective's thresholds are a hidden check's when its check is.
    if let Some(l) = &mut g.latency {
        l.objectives.retain(|o| {
            own.iter().any(|c| {
                c.name == o.name && c.category == C::Latency && c.visibility == Visibility::Visible
            })
        });
    }
    if all_hidden(C::Drift) {
        g.drift = None;
    }
    if all_hidden(C::Monitoring) {
        g.monitoring = None;
    }
    if all_hidden(C::Lifecycle) {
        g.lifecycle = None;
    }
    if all_hidden(C::Cost) {
        g.cost = None;
    }
    if all_hidden(C::Tests) {
        g.tests = None;
    }
    // The review may be information only (no check at all): it says itself who may see it.
    if g.review
        .as_ref()
        .is_some_and(|r| r.visibility == Visibility::Hidden || all_hidden(C::Review))
    {
        g.review = None;
    }
    let all_hidden = own.iter().all(|c| c.visibility == Visibility::Hidden);
    if all_hidden {
        // Its note may speak of what it tests; its categories sum hidden checks only (the
        // report's hidden counts say as much without naming the grader's parts); where the
        // file lives and its digest are the grader's business.
        g.grader.note.clear();
        g.grader.path.clear();
        g.grader.sha256.clear();
        g.categories.clear();
        g.band = None;
        g.quality = None;
        g.consistency = None;
        g.invariants = None;
        g.latency = None;
        g.drift = None;
        g.monitoring = None;
        g.probes = None;
        g.lifecycle = None;
        g.cost = None;
        g.tests = None;
        g.review = None;
    }
    all_hidden
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Category, CheckResult};

    fn report() -> Report {
        let check = |name: &str, cat, vis, passed| CheckResult {
            grader: "g".into(),
            name: name.into(),
            category: cat,
            points: if passed { 2.0 } else { 0.0 },
            max_points: 2.0,
            passed,
            message: format!("secret detail of {name}"),
            visibility: vis,
        };
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "schema_version": 1, "run_id": "r", "status": "graded", "reason": "", "verdict": null,
            "score": null, "categories": [], "checks": [],
            "graders": [{
                "grader": {"name": "g", "assignment": "a", "path": "p", "sha256": ""},
                "score": null, "categories": [], "latency": null, "quality": null,
                "consistency": null, "drift": null, "monitoring": null
            }],
            "timings": [], "harness": {"proctor_version": "0"},
            "submission": {"source": "s", "kind": "directory"},
            "image": null,
            "seed": 1, "container": null, "build_log_tail": null, "warnings": [],
            "started_at": "", "finished_at": ""
        }))
        .unwrap();
        r.checks = vec![
            check(
                "visible one",
                Category::Correctness,
                Visibility::Visible,
                false,
            ),
            check("hidden auc", Category::Quality, Visibility::Hidden, true),
            check(
                "hidden probe",
                Category::Robustness,
                Visibility::Hidden,
                false,
            ),
        ];
        r.graders[0].quality = Some(Default::default());
        r
    }

    #[test]
    fn a_candidate_sees_the_services_log_only_when_no_check_ran_yet() {
        use crate::verdict::Verdict;
        let mut r = report();
        r.container = Some(crate::report::ContainerInfo {
            log_tail: "got SENTINEL-log from a hidden probe".into(),
            ..Default::default()
        });
        for (verdict, shown) in [
            (None, false),
            (Some(Verdict::CrashedDuringGrading), false),
            (Some(Verdict::OomKilled), false),
            (Some(Verdict::Exited), true),
            (Some(Verdict::NeverReady), true),
        ] {
            r.verdict = verdict;
            let log = r.for_view(View::Candidate).container.unwrap().log_tail;
            assert_eq!(log.contains("SENTINEL-log"), shown, "{verdict:?}: {log}");
            assert!(shown || log == HIDDEN_LOG, "{log}");
            let grader = r.for_view(View::Grader).container.unwrap().log_tail;
            assert!(grader.contains("SENTINEL-log"));
        }
        // Without hidden checks, the candidate's own log is theirs to see.
        r.checks.retain(|c| c.visibility == Visibility::Visible);
        r.verdict = Some(Verdict::CrashedDuringGrading);
        let log = r.for_view(View::Candidate).container.unwrap().log_tail;
        assert!(log.contains("SENTINEL-log"), "{log}");
    }

    #[test]
    fn a_candidate_sees_hidden_checks_only_as_a_count() {
        let r = report();
        assert_eq!(r.for_view(View::Grader).checks.len(), 3);
        let c = r.for_view(View::Candidate);
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("hidden auc"), "{text}");
        assert!(!text.contains("secret detail of hidden"), "{text}");
        assert!(
            c.graders[0].quality.is_none(),
            "a section of hidden checks only is dropped"
        );
        let h = c.hidden_checks.unwrap();
        assert_eq!(
            (h.count, h.passed, h.points, h.max_points),
            (2, 1, 2.0, 4.0)
        );
        let per: Vec<_> = h
            .by_category
            .iter()
            .map(|k| (k.category, k.count, k.passed, k.points, k.max_points))
            .collect();
        assert_eq!(
            per,
            [
                (Category::Robustness, 1, 0, 0.0, 2.0),
                (Category::Quality, 1, 1, 2.0, 2.0)
            ],
            "per category, in category order, where the hidden points were lost"
        );
        assert_eq!(c.checks.len(), 1);
    }

    #[test]
    fn no_probe_request_reaches_a_candidate() {
        let probes = |hidden| crate::report::ProbesReport {
            dataset: "v".into(),
            generated: 3,
            sent: 3,
            hidden,
            classes: vec![crate::report::ProbeClassReport {
                class: "number_as_string".into(),
                cases: 3,
                failed: 1,
            }],
            failures: vec![crate::report::ProbeFailure {
                class: "number_as_string".into(),
                feature: Some("age".into()),
                request_excerpt: r#"{"instances":[{"age":"SECRET-PROBE-INPUT"}]}"#.into(),
                expected: "refused".into(),
                received: "status 200: {}".into(),
            }],
        };
        // Visible probes, and no hidden check at all in the report.
        let mut r = report();
        r.checks.retain(|c| c.visibility == Visibility::Visible);
        r.graders[0].probes = Some(probes(false));
        assert!(serde_json::to_string(&r.for_view(View::Grader))
            .unwrap()
            .contains("SECRET-PROBE-INPUT"));
        let c = r.for_view(View::Candidate);
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("SECRET-PROBE-INPUT"), "{text}");
        let p = c.graders[0]
            .probes
            .clone()
            .expect("visible probes keep their counts");
        assert!(p.failures.is_empty());
        assert_eq!(p.classes[0].failed, 1);
        // Hidden probes: no section at all.
        r.graders[0].probes = Some(probes(true));
        assert!(r.for_view(View::Candidate).graders[0].probes.is_none());
    }

    /// Invariants count in the consistency category, beside the consistency phase's visible
    /// check: their section (row indices, scores) goes when their checks are hidden.
    #[test]
    fn the_invariants_section_of_hidden_checks_is_dropped() {
        let with_invariants = |vis| {
            let mut r = report();
            let check = |name: &str, vis| CheckResult {
                grader: "g".into(),
                name: name.into(),
                category: Category::Consistency,
                points: 1.0,
                max_points: 1.0,
                passed: true,
                message: String::new(),
                visibility: vis,
            };
            r.checks
                .push(check("same idle and under load", Visibility::Visible));
            r.checks.push(check("order", vis));
            r.graders[0].invariants = Some(crate::report::InvariantsReport {
                invariants: vec![crate::report::InvariantOutcome {
                    name: "order".into(),
                    ..Default::default()
                }],
                ..Default::default()
            });
            r
        };
        let hidden = with_invariants(Visibility::Hidden);
        assert!(hidden.for_view(View::Grader).graders[0]
            .invariants
            .is_some());
        assert!(hidden.for_view(View::Candidate).graders[0]
            .invariants
            .is_none());
        // Visible invariants keep their section, also beside other hidden checks.
        let visible = with_invariants(Visibility::Visible);
        assert!(visible.for_view(View::Candidate).graders[0]
            .invariants
            .is_some());
    }

    /// A second grader whose checks are all hidden: its timings, file and the numbers an
    /// invalid latency measurement quotes stay out of a candidate's view.
    #[test]
    fn a_hidden_grader_leaves_its_name_and_score_only() {
        let mut r = report();
        let mut h = r.graders[0].clone();
        h.grader.name = "h".into();
        h.grader.path = "graders/SECRET-path.toml".into();
        h.grader.sha256 = "SECRET-digest".into();
        r.graders.push(h);
        r.checks.push(CheckResult {
            grader: "h".into(),
            name: "p99".into(),
            category: Category::Latency,
            points: 0.0,
            max_points: 1.0,
            passed: false,
            message: "SECRET objective".into(),
            visibility: Visibility::Hidden,
        });
        let timing = |grader: &str| crate::report::StageTiming {
            stage: "phase latency".into(),
            seconds: 1.0,
            budget_seconds: Some(99.0),
            out_of_budget: false,
            grader: grader.into(),
            lock_wait_seconds: None,
            started_at: String::new(),
        };
        r.timings = vec![timing("g"), timing("h")];
        r.verdict = Some(crate::verdict::Verdict::LatencyMeasurementInvalid);
        r.reason = "p99 moved SECRET 12.3 ms".into();
        let c = r.for_view(View::Candidate);
        let text = serde_json::to_string(&c).unwrap();
        assert!(!text.contains("SECRET"), "{text}");
        assert_eq!(c.reason, INVALID_LATENCY);
        assert_eq!(c.timings.len(), 1);
        assert_eq!(c.graders[1].grader.name, "h", "the name stays");
        let g = r.for_view(View::Grader);
        assert!(serde_json::to_string(&g).unwrap().contains("SECRET-path"));
    }

    #[test]
    fn a_candidate_sees_no_prerequisite_that_names_a_hidden_check() {
        let mut r = report();
        let applied = |name: &str, visibility| crate::prerequisite::Applied {
            name: name.into(),
            mode: Default::default(),
            judgement: crate::prerequisite::Judgement::Unmet,
            required_points: 0.0,
            required_max_points: 2.0,
            min_share: 0.5,
            factor: 0.0,
            reason: String::new(),
            withheld: vec![crate::prerequisite::Withheld {
                check: "hidden probe".into(),
                points_before: 2.0,
                points: 0.0,
            }],
            visibility,
        };
        r.prerequisites = vec![
            applied("on hidden auc", Visibility::Hidden),
            applied("on visible one", Visibility::Visible),
        ];
        r.band = Some("strong".into());
        assert_eq!(r.for_view(View::Grader).prerequisites.len(), 2);
        let c = r.for_view(View::Candidate);
        let names: Vec<_> = c.prerequisites.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["on visible one"]);
        assert_eq!(c.band.as_deref(), Some("strong"), "derived from the total");
    }
}
