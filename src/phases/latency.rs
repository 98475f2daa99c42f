//! The latency phase: an open-loop load at the grader's rate, then points from its objectives;
//! optionally a throughput search.
//!
//! A measurement the load generator could not keep on schedule (see `load::Validity`) is the
//! harness's failure, not the candidate's: the load runs once more, and when it is still
//! invalid the checks say so in their message and the report's `valid` tells the pipeline,
//! which reports an infrastructure error instead of a grade.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{Category, DeclaredCheck};
use crate::control::{MachineError, ServiceControl};
use crate::events::{Event, Events};
use crate::grader::{trim, LatencySpec, LoadedGrader, Method, Visibility};
use crate::load::search::{self, SearchResult};
use crate::load::{self, Mode, Outcome, Plan, RequestSpec, Stage, Validity};
use crate::phases::LoadUsage;
use crate::plan::{Purpose, RunPlan};
use crate::report::{CheckResult, LatencyReport, PercentilePoint};
use crate::score::linear_points;
use crate::target::Target;

pub(crate) fn method_of(spec: &LatencySpec) -> reqwest::Method {
    spec.method
        .unwrap_or(if spec.bodies.is_empty() {
            Method::Get
        } else {
            Method::Post
        })
        .as_reqwest()
}

fn request_of(target: &Target, spec: &LatencySpec) -> RequestSpec {
    RequestSpec {
        method: method_of(spec),
        url: target.url(&spec.path.0),
        content_type: spec
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".into()),
        bodies: spec.bodies.clone(),
        ok_status: spec.status,
        timeout: target.request_timeout,
        max_body: target.max_body,
    }
}

/// The plan of the graded load.
pub fn plan_of(spec: &LatencySpec, seed: u64, cpus: Option<Vec<usize>>) -> Plan {
    Plan {
        mode: Mode::Open {
            stages: vec![Stage::constant(
                spec.rate,
                Duration::from_secs_f64(spec.duration_secs),
            )],
            arrivals: spec.arrivals,
        },
        warmup: Duration::from_secs_f64(spec.warmup_secs),
        concurrency: spec.concurrency,
        seed,
        threads: None,
        cpus,
        min_requests: spec.required_requests(),
        realtime: true,
        spin: load::DEFAULT_SPIN,
        curves: Vec::new(),
    }
}

/// The objectives' curves, as this run grades them (widened by the latency reference): the
/// generator's lateness is judged by whether it could move their points.
pub fn curves_of(spec: &LatencySpec, run_plan: &RunPlan) -> Vec<load::lateness::Curve> {
    spec.objective
        .iter()
        .map(|o| {
            let name = spec.objective_name(o);
            let factor = run_plan.latency_factor(&name);
            load::lateness::Curve {
                name,
                percentile: o.percentile,
                full_ms: o.full_points_ms * factor,
                zero_ms: o.zero_points_ms * factor,
            }
        })
        .collect()
}

/// Runs the load (again once if the first measurement is invalid), grades it, and runs the
/// throughput search when the grader declares one. Returns the checks and the report's latency
/// section, which says whether the measurement is valid; the pipeline turns an invalid one into
/// an infrastructure error.
pub async fn run(
    target: &Target,
    spec: &LatencySpec,
    run_plan: &RunPlan,
    default_vis: Visibility,
    events: &Events,
    usage: Option<&dyn ServiceControl>,
) -> Result<(Vec<CheckResult>, LatencyReport, Option<LoadUsage>), MachineError> {
    let request = request_of(target, spec);
    let plan = Plan {
        curves: curves_of(spec, run_plan),
        ..plan_of(spec, run_plan.seed, run_plan.load_cpus.clone())
    };
    let mut attempts = 0;
    let mut load_usage = None;
    let result = loop {
        attempts += 1;
        // What the container used while this attempt's load ran (the cost of a prediction),
        // read just before and just after it: the service is idle on either side.
        let before = match usage {
            Some(c) => Some(c.usage().await?),
            None => None,
        };
        let started = std::time::Instant::now();
        let r = load::run(&request, &plan, |done, total| {
            events.event(&Event::LoadProgress { done, total })
        })
        .await;
        if let (Some(c), Some(before), Ok(o)) = (usage, before, &r) {
            load_usage = Some(LoadUsage {
                requests: o.sent,
                seconds: started.elapsed().as_secs_f64(),
                before,
                after: c.usage().await?,
            });
        }
        let validity = match &r {
            Ok(o) => o.validity.clone(),
            Err(e) => Validity {
                valid: false,
                reasons: vec![format!("the load could not run: {e}")],
            },
        };
        if let Ok(o) = &r {
            for w in &o.warnings {
                events.event(&Event::Warning(format!("latency: {w}")));
            }
        }
        if validity.valid || attempts == 2 {
            break r;
        }
        events.event(&Event::Warning(format!(
            "latency: the measurement is invalid ({}); measuring again",
            validity.reasons.join("; ")
        )));
    };
    let vis = spec.visibility.unwrap_or(default_vis);
    let (mut checks, mut report) = match &result {
        Ok(o) => (grade(spec, o, vis, run_plan), report_of(spec, o)),
        Err(e) => {
            let why = format!("the load could not run: {e}");
            let mut report = empty_report(spec);
            report.invalid_reasons = vec![why.clone()];
            (not_measured(spec, vis, &why), report)
        }
    };
    report.attempts = attempts;
    report.objectives = objective_marks(spec, run_plan);
    if !report.valid {
        let why = report.invalid_reasons.join("; ");
        events.event(&Event::Warning(format!(
            "latency: the measurement is still invalid after {attempts} attempts: {why}. This is \
             a fault of the grading machine; regrade on a quieter machine"
        )));
        for c in &mut checks {
            c.message = format!(
                "INVALID MEASUREMENT ({why}; {attempts} attempts), not a grade: {}",
                c.message
            );
        }
    }

    // A machine that could not keep the main load on schedule will not keep the search's
    // faster steps either: the run is not a grade, so the search is not run.
    // The latency reference measures the load only.
    let search = spec
        .search
        .as_ref()
        .filter(|_| report.valid && run_plan.purpose == Purpose::Grade);
    if let Some(s) = search {
        let sspec = search::SearchSpec {
            percentile: s.percentile,
            slo_ms: s.slo_ms,
            max_error_rate: s.max_error_rate,
            start_rate: s.start(spec.rate),
            max_rate: s.max_rate,
            max_steps: s.max_steps,
            precision: s.precision,
            step_duration: Duration::from_secs_f64(s.step_secs),
            step_warmup: Duration::from_secs_f64(s.warmup_secs),
            arrivals: spec.arrivals,
            cooldown: SEARCH_COOLDOWN,
            repeats: s.repeats,
            clear_margin: search::DEFAULT_CLEAR_MARGIN,
        };
        let base = Plan {
            min_requests: 1,
            ..plan.clone()
        };
        let r = search::search(&request, &base, &sspec, |step| {
            events.event(&Event::Info(format!(
                "latency search: {} req/s {}",
                step.rate,
                if step.passed {
                    format!("passed (p{} {:.2} ms)", s.percentile, step.latency_ms)
                } else {
                    format!("failed ({})", step.reason)
                }
            )))
        })
        .await;
        if let Some(points) = s.points {
            let name = search_name(spec);
            let check = match &r {
                Ok(found) => {
                    let capacity = found.capacity_rate.unwrap_or(0.0);
                    let full = s.full_points_rate.unwrap_or(capacity);
                    // Points rise with the rate: the falling line of a negated rate.
                    let p = linear_points(-capacity, -full, -s.zero_points_rate, points.0);
                    let mut message = search_message(found, full);
                    // Points lost to a step the machine spoiled are not a grade.
                    if let Some(bad) = found.bounded_by_invalid_step().filter(|_| p < points.0) {
                        let why = format!(
                            "the throughput search's step at {} req/s was invalid twice ({})",
                            bad.rate, bad.reason
                        );
                        message = format!("INVALID MEASUREMENT ({why}), not a grade: {message}");
                        report.valid = false;
                        report.invalid_reasons.push(why);
                    }
                    CheckResult {
                        grader: String::new(),
                        name,
                        category: Category::Latency,
                        points: p,
                        max_points: points.0,
                        passed: p >= points.0,
                        message,
                        visibility: vis,
                    }
                }
                Err(e) => CheckResult {
                    grader: String::new(),
                    name,
                    category: Category::Latency,
                    points: 0.0,
                    max_points: points.0,
                    passed: false,
                    message: format!("the throughput search could not run: {e}"),
                    visibility: vis,
                },
            };
            checks.push(check);
        }
        report.search = r
            .ok()
            .map(|r| crate::report::ThroughputSearch::of(r, s.repeats));
    }
    Ok((checks, report, load_usage))
}

/// The pause between two measurements of the search.
const SEARCH_COOLDOWN: Duration = Duration::from_millis(500);

fn search_message(r: &SearchResult, full: f64) -> String {
    let steps = r.steps.len();
    let found = match r.capacity_rate {
        Some(c) => format!(
            "sustains {c} req/s within p{} <= {} ms ({}; {steps} steps; full points at >= {} req/s)",
            trim(r.percentile),
            trim(r.slo_ms),
            match r.failed_rate {
                Some(f) => format!("fails at {f} req/s"),
                None => format!("search ended by {}", r.ended_by),
            },
            trim(full)
        ),
        None => format!(
            "no rate tried kept p{} <= {} ms ({steps} steps, lowest {} req/s)",
            trim(r.percentile),
            trim(r.slo_ms),
            r.steps.iter().map(|s| s.rate).fold(f64::INFINITY, f64::min)
        ),
    };
    // Where repeated measurements disagreed the service is on the edge: say so, and where.
    let split = r.split_rates();
    if split.is_empty() {
        found
    } else {
        let rates: Vec<String> = split.iter().map(|&x| trim(x)).collect();
        format!(
            "{found}; measurements disagreed at {} req/s ({} measurements in all)",
            rates.join(", "),
            r.measurements()
        )
    }
}

fn grade(
    spec: &LatencySpec,
    outcome: &Outcome,
    vis: Visibility,
    plan: &RunPlan,
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for o in &spec.objective {
        let name = spec.objective_name(o);
        // Widened by how much slower the reference ran here (1 without a reference).
        let factor = plan.latency_factor(&name);
        let (full_ms, zero_ms) = (o.full_points_ms * factor, o.zero_points_ms * factor);
        let (points, message) = if outcome.corrected.is_empty() {
            (0.0, "no response to measure".to_string())
        } else {
            let value = load::percentile_ms(&outcome.corrected, o.percentile);
            let points = linear_points(value, full_ms, zero_ms, o.points.0);
            (
                points,
                format!(
                    "p{} = {:.2} ms (full points at <= {} ms, none at >= {} ms{})",
                    trim(o.percentile),
                    value,
                    trim(full_ms),
                    trim(zero_ms),
                    if factor > 1.0 {
                        format!(
                            "; widened {}x: the reference measured that much slower here",
                            trim(factor)
                        )
                    } else {
                        String::new()
                    }
                ),
            )
        };
        results.push(CheckResult {
            grader: String::new(),
            name,
            category: Category::Latency,
            points,
            max_points: o.points.0,
            passed: points >= o.points.0,
            message,
            visibility: vis,
        });
    }
    if let Some(e) = &spec.errors {
        let failed = outcome.requests - outcome.ok;
        let rate = if outcome.requests == 0 {
            1.0
        } else {
            failed as f64 / outcome.requests as f64
        };
        let passed = outcome.requests > 0 && rate <= e.max_error_rate;
        let detail: Vec<String> = outcome
            .errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        results.push(CheckResult {
            grader: String::new(),
            name: errors_name(spec.rate),
            category: Category::Latency,
            points: if passed { e.points.0 } else { 0.0 },
            max_points: e.points.0,
            passed,
            message: if detail.is_empty() {
                format!("{} of {} requests succeeded", outcome.ok, outcome.requests)
            } else {
                format!(
                    "{} of {} requests failed ({:.2}%, allowed {:.2}%): {}",
                    failed,
                    outcome.requests,
                    rate * 100.0,
                    e.max_error_rate * 100.0,
                    detail.join(", ")
                )
            },
            visibility: vis,
        });
    }
    results
}

/// Zero for every objective and the error check, with the reason.
fn not_measured(spec: &LatencySpec, vis: Visibility, why: &str) -> Vec<CheckResult> {
    declared_checks(spec)
        .into_iter()
        .filter(|(name, _)| *name != search_name(spec))
        .map(|(name, max)| CheckResult {
            grader: String::new(),
            name,
            category: Category::Latency,
            points: 0.0,
            max_points: max,
            passed: false,
            message: why.to_string(),
            visibility: vis,
        })
        .collect()
}

fn report_of(spec: &LatencySpec, o: &Outcome) -> LatencyReport {
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    LatencyReport {
        achieved_rate: r1(o.achieved_rate),
        requests: o.requests,
        ok: o.ok,
        errors: o.errors.clone(),
        corrected: load::percentiles(&o.corrected).into(),
        corrected_curve: load::percentile_curve(&o.corrected)
            .into_iter()
            .map(|(percentile, ms)| PercentilePoint { percentile, ms })
            .collect(),
        uncorrected: load::percentiles(&o.uncorrected).into(),
        send_lateness: load::percentiles(&o.lateness).into(),
        send_rate: r1(o.send_rate),
        dispatch_lateness: load::percentiles(&o.dispatch_lateness).into(),
        queued: o.queued,
        windows: o.windows.iter().cloned().map(Into::into).collect(),
        stable: o.stable,
        valid: o.validity.valid,
        invalid_reasons: o.validity.reasons.clone(),
        client_cpu_us_per_request: (o.cpu_us_per_request() * 100.0).round() / 100.0,
        lateness: judgement_of(o),
        ..empty_report(spec)
    }
}

/// How the generator's lateness was judged: against the objectives when there are any.
fn judgement_of(o: &Outcome) -> crate::report::LatenessJudgement {
    let r4 = |x: f64| (x * 1e4).round() / 1e4;
    let r3 = |x: f64| (x * 1e3).round() / 1e3;
    crate::report::LatenessJudgement {
        rule: if o.lateness_effects.is_empty() {
            "absolute"
        } else {
            "objectives"
        }
        .into(),
        late_over_1ms_share: r4(o.late_share),
        max_moved_share: load::lateness::MAX_MOVED_SHARE,
        objectives: o
            .lateness_effects
            .iter()
            .map(|e| crate::report::LatenessEffect {
                name: e.name.clone(),
                percentile: e.percentile,
                measured_ms: r3(e.measured_ms),
                lowest_ms: r3(e.lowest_ms),
                bound_ms: r3(e.bound_ms),
                late_share: r4(e.late_share),
                moved_share: r4(e.moved_share),
                harmless: e.harmless,
            })
            .collect(),
    }
}

/// Each objective's curve as graded (widened by the latency reference, if any), for charts.
fn objective_marks(spec: &LatencySpec, plan: &RunPlan) -> Vec<crate::report::ObjectiveMark> {
    curves_of(spec, plan)
        .into_iter()
        .map(|c| crate::report::ObjectiveMark {
            name: c.name,
            percentile: c.percentile,
            full_points_ms: c.full_ms,
            zero_points_ms: c.zero_ms,
        })
        .collect()
}

/// The section of a load that did not run: what was asked for, nothing measured, not valid.
pub(crate) fn empty_report(spec: &LatencySpec) -> LatencyReport {
    LatencyReport {
        method: method_of(spec).to_string(),
        path: spec.path.0.clone(),
        target_rate: spec.rate,
        achieved_rate: 0.0,
        duration_secs: spec.duration_secs,
        warmup_secs: spec.warmup_secs,
        concurrency: spec.concurrency,
        requests: 0,
        ok: 0,
        errors: Default::default(),
        corrected: Default::default(),
        corrected_curve: Vec::new(),
        uncorrected: Default::default(),
        send_lateness: Default::default(),
        arrivals: spec.arrivals.into(),
        send_rate: 0.0,
        dispatch_lateness: Default::default(),
        queued: 0,
        windows: Vec::new(),
        stable: None,
        valid: false,
        invalid_reasons: Vec::new(),
        attempts: 1,
        lateness: Default::default(),
        client_cpu_us_per_request: 0.0,
        search: None,
        objectives: Vec::new(),
        reference: None,
    }
}

/// Every check the latency phase can produce, with its points: for listing the checks a run
/// cut short did not reach.
pub fn declared_checks(spec: &LatencySpec) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = spec
        .objective
        .iter()
        .map(|o| (spec.objective_name(o), o.points.0))
        .collect();
    if let Some(e) = &spec.errors {
        out.push((errors_name(spec.rate), e.points.0));
    }
    if let Some(p) = spec.search.as_ref().and_then(|s| s.points) {
        out.push((search_name(spec), p.0));
    }
    out
}

/// The name of the error-rate check.
pub fn errors_name(rate: f64) -> String {
    format!("errors under load at {} req/s", trim(rate))
}

/// The name of the throughput-search check.
pub fn search_name(spec: &LatencySpec) -> String {
    match &spec.search {
        Some(s) => s.name.clone().unwrap_or_else(|| {
            format!(
                "sustained rate within p{} <= {} ms",
                trim(s.percentile),
                trim(s.slo_ms)
            )
        }),
        None => String::new(),
    }
}

/// The latency load at the grader's rate, its objectives, and the throughput search.
pub struct Latency;

impl super::Phase for Latency {
    fn name(&self) -> &'static str {
        "latency"
    }

    fn declared(&self, loaded: &LoadedGrader) -> bool {
        loaded.grader.latency.is_some()
    }

    fn checks(&self, loaded: &LoadedGrader) -> Vec<DeclaredCheck> {
        let g = &loaded.grader;
        let Some(l) = &g.latency else {
            return Vec::new();
        };
        let vis = l.visibility.unwrap_or(g.grader.visibility);
        declared_checks(l)
            .into_iter()
            .map(|(name, max)| DeclaredCheck::new(name, Category::Latency, max, vis))
            .collect()
    }

    fn budget(&self, loaded: &LoadedGrader) -> Duration {
        let g = &loaded.grader;
        let Some(l) = &g.latency else {
            return Duration::ZERO;
        };
        let timeout = g.http.request_timeout();
        // Two attempts of the load (the second when the first is invalid), each ending at most
        // one request timeout after its schedule; then every measurement a search step may
        // take (its repeats, and one to replace an invalid one) the same way, with its cooldown.
        let load = Duration::from_secs_f64(l.warmup_secs + l.duration_secs) + timeout;
        let search = l.search.as_ref().map_or(Duration::ZERO, |s| {
            let one =
                Duration::from_secs_f64(s.step_secs + s.warmup_secs) + SEARCH_COOLDOWN + timeout;
            one * (s.max_steps * (s.repeats + 1)) as u32
        });
        super::budget_for(2 * load + search, 0, 0, timeout)
    }

    fn measures_latency(&self, _: &LoadedGrader) -> bool {
        true
    }

    fn in_latency_reference(&self) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let g = &cx.grader.grader;
            let Some(spec) = &g.latency else {
                return;
            };
            // The container's usage is read only when a grader scores what it costs.
            let usage = cx.container.filter(|_| g.cost.is_some());
            match run(
                cx.target,
                spec,
                cx.plan,
                g.grader.visibility,
                cx.events,
                usage,
            )
            .await
            {
                Ok((checks, report, load_usage)) => {
                    out.checks = checks;
                    out.section = Some(super::Section::Latency(Box::new(report)));
                    *cx.handoff
                        .load_usage
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = load_usage;
                }
                Err(e) => out.machine_failure = Some(e),
            }
        })
    }
}

// The load generator keeps its own types; the report keeps its own, so that the report's JSON
// shape changes only when the report says so. These map one to the other.

impl From<load::Percentiles> for crate::report::Percentiles {
    fn from(p: load::Percentiles) -> Self {
        crate::report::Percentiles {
            p50_ms: p.p50_ms,
            p90_ms: p.p90_ms,
            p95_ms: p.p95_ms,
            p99_ms: p.p99_ms,
            p999_ms: p.p999_ms,
            max_ms: p.max_ms,
            mean_ms: p.mean_ms,
            count: p.count,
        }
    }
}

impl From<load::Arrivals> for crate::report::Arrivals {
    fn from(a: load::Arrivals) -> Self {
        match a {
            load::Arrivals::Constant => crate::report::Arrivals::Constant,
            load::Arrivals::Poisson => crate::report::Arrivals::Poisson,
        }
    }
}

impl From<load::Window> for crate::report::LoadWindow {
    fn from(w: load::Window) -> Self {
        crate::report::LoadWindow {
            start_secs: w.start_secs,
            rate: w.rate,
            ok: w.ok,
            late: w.late,
            p50_ms: w.p50_ms,
            p99_ms: w.p99_ms,
        }
    }
}

impl crate::report::ThroughputSearch {
    fn of(r: SearchResult, repeats: usize) -> Self {
        crate::report::ThroughputSearch {
            percentile: r.percentile,
            slo_ms: r.slo_ms,
            capacity_rate: r.capacity_rate,
            failed_rate: r.failed_rate,
            repeats: repeats as u32,
            measurements: r.measurements(),
            split_rates: r.split_rates(),
            ended_by: r.ended_by,
            steps: r
                .steps
                .into_iter()
                .map(|st| crate::report::SearchStep {
                    rate: st.rate,
                    passed: st.passed,
                    valid: st.valid,
                    latency_ms: st.latency_ms,
                    error_rate: st.error_rate,
                    achieved_rate: st.achieved_rate,
                    reason: st.reason,
                    attempts: st.attempts,
                    measurements: st
                        .measurements
                        .into_iter()
                        .map(|m| crate::report::SearchMeasurement {
                            valid: m.valid,
                            passed: m.passed,
                            latency_ms: m.latency_ms,
                            error_rate: m.error_rate,
                            achieved_rate: m.achieved_rate,
                            reason: m.reason,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> LatencySpec {
        let text = format!(
            "path = \"/\"\nrate = 50\nduration_secs = 10\n\
             [[objective]]\npercentile = 99\nfull_points_ms = 10\nzero_points_ms = 100\npoints = 3\n\
             [errors]\nmax_error_rate = 0.01\npoints = 2\n{extra}"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn every_latency_check_is_declared_with_its_points() {
        let s = spec("[search]\npercentile = 99\nslo_ms = 50\nmax_rate = 800\npoints = 4\nfull_points_rate = 400\n");
        assert_eq!(
            declared_checks(&s),
            vec![
                ("p99 latency at 50 req/s".to_string(), 3.0),
                ("errors under load at 50 req/s".to_string(), 2.0),
                ("sustained rate within p99 <= 50 ms".to_string(), 4.0),
            ]
        );
        // A search without points is reported, not graded.
        let s = spec("[search]\npercentile = 99\nslo_ms = 50\nmax_rate = 800\n");
        assert_eq!(declared_checks(&s).len(), 2);
    }

    #[test]
    fn search_messages_say_what_was_found() {
        let step = |rate: f64, passed: bool| search::Step {
            rate,
            passed,
            valid: true,
            latency_ms: 1.0,
            error_rate: 0.0,
            achieved_rate: rate,
            reason: String::new(),
            attempts: 1,
            measurements: Vec::new(),
        };
        let found = SearchResult {
            percentile: 99.0,
            slo_ms: 50.0,
            capacity_rate: Some(400.0),
            failed_rate: Some(425.0),
            ended_by: "max_steps".into(),
            steps: vec![step(400.0, true), step(425.0, false)],
        };
        assert_eq!(
            search_message(&found, 300.0),
            "sustains 400 req/s within p99 <= 50 ms (fails at 425 req/s; 2 steps; full points at >= 300 req/s)"
        );
        let none = SearchResult {
            capacity_rate: None,
            failed_rate: Some(25.0),
            ended_by: "no_passing_rate".into(),
            steps: vec![step(50.0, false), step(25.0, false)],
            ..found
        };
        assert_eq!(
            search_message(&none, 300.0),
            "no rate tried kept p99 <= 50 ms (2 steps, lowest 25 req/s)"
        );
    }
}
