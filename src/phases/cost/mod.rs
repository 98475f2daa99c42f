//! Cost: what a prediction costs, read from the container's cgroup (through the engine's stats)
//! around the latency phase's fixed-rate load, which that phase hands over (`Handoff`): CPU
//! milliseconds per 1000 predictions, memory at start-up, before and after the load, its
//! growth per 1000 predictions (a leak shows here), the kernel's peak, and the image's size.
//! Each on the grader's lower-is-better curve. CPU also as a multiple of the reference's when
//! the run has a reference, or at proctor's standard speed when the grader calibrates: then the
//! reference, or proctor's yardstick, runs beside the service and both are loaded in turns
//! (`paired`), so that the machine's speed cancels out.

pub mod paired;

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::check::{Category, CheckResult, DeclaredCheck};
use crate::control::{Beside, MachineError, ServiceControl, YARDSTICK_READY};
use crate::grader::{CostSpec, LatencySpec, LoadedGrader, LowerIsBetter, PredictionApi};
use crate::phases::{LoadUsage, Needs};
use crate::report::{CostReport, PairedCost};
use crate::verdict::Verdict;

const MB: f64 = 1024.0 * 1024.0;

/// The cost metrics a grader may score, in the order they are reported: (check name, the
/// curve's field, the report's value).
fn metrics(spec: &CostSpec) -> Vec<(&'static str, Option<&LowerIsBetter>)> {
    vec![
        ("CPU per 1000 predictions", cpu_curve(spec, false)),
        (
            "memory growth per 1000 predictions",
            spec.memory_growth_mb_per_1000.as_ref(),
        ),
        ("peak memory", spec.peak_memory_mb.as_ref()),
        ("memory at start-up", spec.startup_memory_mb.as_ref()),
        ("memory after the load", spec.steady_memory_mb.as_ref()),
        ("image size", spec.image_mb.as_ref()),
    ]
}

/// The CPU curve: relative to the reference when one was measured and the grader has that
/// curve, else absolute.
fn cpu_curve(spec: &CostSpec, relative: bool) -> Option<&LowerIsBetter> {
    match (relative, &spec.cpu_vs_reference, &spec.cpu_ms_per_1000) {
        (true, Some(c), _) => Some(c),
        (_, _, Some(c)) => Some(c),
        (_, c, None) => c.as_ref(),
    }
}

/// Instances per request of the latency load: the mean over its bodies of the array where the
/// prediction template holds its instances; 1 when the grader has no template or a body does
/// not follow it.
pub fn instances_per_request(latency: &LatencySpec, api: Option<&PredictionApi>) -> f64 {
    let counts: Vec<f64> = latency
        .bodies
        .iter()
        .map(|b| {
            api.and_then(|a| a.instances_in(b))
                .map_or(1.0, |n| n as f64)
        })
        .collect();
    if counts.is_empty() {
        1.0
    } else {
        counts.iter().sum::<f64>() / counts.len() as f64
    }
}

fn round(x: f64, digits: i32) -> f64 {
    (x * 10f64.powi(digits)).round() / 10f64.powi(digits)
}

/// The report from what the container used during the latency phase's load.
pub fn report_of(
    usage: Option<&LoadUsage>,
    per_request: f64,
    startup_memory: Option<u64>,
    image_bytes: Option<u64>,
) -> CostReport {
    let r = round;
    let mb = |b: u64| r(b as f64 / MB, 1);
    let mut out = CostReport {
        instances_per_request: r(per_request, 2),
        startup_memory_mb: startup_memory.map(mb),
        image_mb: image_bytes.map(mb),
        ..CostReport::default()
    };
    let Some(u) = usage else {
        return out;
    };
    // Every request of the load counts, answered or failed: failures cost their own category
    // (the latency phase's errors), and a service that fails everything carries no signal, so
    // a grader's prerequisite withholds its cost points.
    let predictions = (u.requests as f64 * per_request).round();
    out.requests = u.requests;
    out.predictions = predictions as u64;
    out.load_seconds = r(u.seconds, 2);
    let cpu = u.after.cpu_ns.saturating_sub(u.before.cpu_ns) as f64 / 1e9;
    out.cpu_seconds = Some(r(cpu, 3));
    out.memory_before_load_mb = Some(mb(u.before.memory_bytes));
    out.steady_memory_mb = Some(mb(u.after.memory_bytes));
    out.peak_memory_mb = u
        .after
        .peak_memory_bytes
        .or(u.before.peak_memory_bytes)
        .map(mb);
    if predictions > 0.0 {
        let per_1000 = cpu * 1000.0 / predictions * 1000.0;
        out.cpu_ms_per_1000 = Some(r(per_1000, 1));
        let growth = u.after.memory_bytes as f64 - u.before.memory_bytes as f64;
        out.memory_growth_mb_per_1000 = Some(r(growth / MB * 1000.0 / predictions, 2));
    }
    out
}

/// How long the yardstick may take to answer ready, whatever the grader allows the service: it
/// starts in a few seconds (Python, FastAPI and numpy), more on a busy machine.
const YARDSTICK_START: Duration = Duration::from_secs(30);

/// What the yardstick's request costs at the standard speed: one millisecond of CPU. A
/// calibrated number is the service's CPU as a multiple of the yardstick's, in these units.
const STANDARD_NS_PER_YARDSTICK_REQUEST: f64 = 1_000_000.0;

/// Adds the comparison with the service beside (`against`) to `report`.
pub fn with_paired(
    mut report: CostReport,
    against: Beside,
    e: &paired::Estimate,
    per_request: f64,
    window: Duration,
) -> CostReport {
    // Nanoseconds per request → milliseconds per 1000 predictions.
    let per_1000 = |ns: f64| round(ns / per_request.max(1e-9) / 1000.0, 1);
    match against {
        Beside::Reference => {
            report.cpu_vs_reference = Some(round(e.ratio, 3));
            report.reference_cpu_ms_per_1000 = Some(per_1000(e.beside_ns_per_request));
        }
        Beside::Yardstick => {
            report.calibrated_cpu_ms_per_1000 =
                Some(per_1000(e.ratio * STANDARD_NS_PER_YARDSTICK_REQUEST));
            report.yardstick_ms_per_request = Some(round(e.beside_ns_per_request / 1e6, 3));
        }
    }
    report.paired = Some(PairedCost {
        against: against.name().into(),
        pairs: e.pairs,
        kept: e.kept,
        window_seconds: window.as_secs_f64(),
        cpu_ms_per_1000: per_1000(e.candidate_ns_per_request),
        lowest_ratio: round(e.low, 3),
        highest_ratio: round(e.high, 3),
    });
    report
}

/// The load of the paired windows: the latency phase's request and rate.
fn shape_of(spec: &CostSpec, latency: &LatencySpec) -> paired::Shape {
    paired::Shape {
        method: super::latency::method_of(latency),
        path: latency.path.0.clone(),
        content_type: latency
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".into()),
        bodies: latency.bodies.clone(),
        rate: latency.rate,
        window: Duration::from_secs_f64(spec.window_secs),
        pairs: spec.pairs,
    }
}

/// Starts the reference (when this run built it) or proctor's yardstick beside the service,
/// waits for it to answer ready, loads both in turns, request by request, and removes it again.
/// None when the run has no reference. Any failure of the service beside is the machine's: the
/// reference is the assignment's own, the yardstick proctor's.
async fn compare(
    cx: &super::Context<'_>,
    container: &dyn ServiceControl,
    shape: &paired::Shape,
    which: Beside,
) -> Result<Option<paired::Estimate>, MachineError> {
    let named = |e: MachineError| MachineError {
        verdict: match which {
            Beside::Reference => Verdict::ReferenceFailed,
            Beside::Yardstick => e.verdict,
        },
        reason: format!("the {} beside the service: {}", which.name(), e.reason),
    };
    let Some(url) = container.start_beside(which).await.map_err(named)? else {
        return Ok(None);
    };
    let g = &cx.grader.grader;
    let beside = crate::target::Target::new(&url, &g.http);
    let measured = async {
        // The reference answers the grader's readiness request, as the service does; the
        // yardstick its own route, within at least `YARDSTICK_START`.
        let (readiness, deadline) = match which {
            Beside::Reference => (g.readiness.clone(), cx.plan.ready_timeout),
            Beside::Yardstick => (
                crate::grader::Readiness {
                    path: crate::grader::UrlPath(YARDSTICK_READY.into()),
                    status: Default::default(),
                    json: Vec::new(),
                    ..g.readiness.clone()
                },
                cx.plan.ready_timeout.max(YARDSTICK_START),
            ),
        };
        let ready = super::readiness::wait_ready(&beside, &readiness, deadline);
        if let super::readiness::ReadyOutcome::TimedOut { last } = ready.await {
            return Err(MachineError {
                verdict: Verdict::EngineError,
                reason: format!(
                    "never became ready within {:.0} s; last probe: {last}",
                    deadline.as_secs_f64()
                ),
            });
        }
        cx.events.event(&crate::events::Event::Info(format!(
            "cost: the service and the {} take turns request by request, {} windows of {:.1} s",
            which.name(),
            shape.pairs,
            shape.window.as_secs_f64()
        )));
        let pairs = paired::measure(cx.target, &beside, container, shape).await?;
        paired::estimate(&pairs).ok_or_else(|| MachineError {
            verdict: Verdict::EngineError,
            reason: "used no measurable CPU".into(),
        })
    }
    .await;
    // The run's cleanup removes it too, should this not be reached.
    container.stop_beside().await.map_err(named)?;
    measured.map(Some).map_err(named)
}

/// The checks of `spec` on `report`: each metric with a curve and points, on its curve; a metric
/// that could not be measured scores zero and says why.
pub fn grade(
    spec: &CostSpec,
    report: &CostReport,
    vis: crate::check::Visibility,
) -> Vec<CheckResult> {
    let relative = report.cpu_vs_reference.is_some();
    let values: [(Option<f64>, &str); 6] = [
        if relative && spec.cpu_vs_reference.is_some() {
            (
                report.cpu_vs_reference,
                "× the reference's CPU per prediction",
            )
        } else if let Some(c) = report.calibrated_cpu_ms_per_1000 {
            (
                Some(c),
                "CPU ms per 1000 predictions at the standard speed (beside proctor's yardstick)",
            )
        } else {
            (report.cpu_ms_per_1000, "CPU ms per 1000 predictions")
        },
        (
            report.memory_growth_mb_per_1000,
            "MB of growth per 1000 predictions",
        ),
        (report.peak_memory_mb, "MB at the peak"),
        (report.startup_memory_mb, "MB at start-up"),
        (report.steady_memory_mb, "MB after the load"),
        (report.image_mb, "MB"),
    ];
    let mut curves = metrics(spec);
    curves[0].1 = cpu_curve(spec, relative);
    // Only the ratio is declared and no reference ran beside the service: the check is not
    // applicable in this run (neither earned nor lost), never a ratio read off milliseconds.
    let ratio_unavailable = !relative && spec.cpu_ms_per_1000.is_none();
    curves
        .into_iter()
        .zip(values)
        .enumerate()
        .filter_map(|(i, ((name, curve), (value, unit)))| {
            let curve = curve?;
            if i == 0 && ratio_unavailable {
                return Some(CheckResult {
                    grader: String::new(),
                    name: name.to_string(),
                    category: Category::Cost,
                    points: 0.0,
                    max_points: 0.0,
                    passed: false,
                    message: "not applicable: this check compares with the reference, which \
                              runs beside the service only with --latency-reference"
                        .into(),
                    visibility: vis,
                });
            }
            let max = curve.points.0;
            let (points, message) = match value {
                Some(v) => (
                    curve.points_for(v),
                    format!(
                        "{} {unit} (full points at <= {}, none at >= {})",
                        trim(v),
                        trim(curve.full),
                        trim(curve.zero)
                    ),
                ),
                None => (0.0, format!("not measured: {}", why_unmeasured(name))),
            };
            Some(CheckResult {
                grader: String::new(),
                name: name.to_string(),
                category: Category::Cost,
                points,
                max_points: max,
                passed: points >= max,
                message,
                visibility: vis,
            })
        })
        .collect()
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn why_unmeasured(name: &str) -> &'static str {
    if name == "image size" {
        "the engine did not report the image's size"
    } else {
        "the latency phase's load did not run"
    }
}

/// Whether the grader compares the service's CPU with a service beside it: the reference (when
/// the run has one) or proctor's yardstick.
fn compares(c: &CostSpec) -> bool {
    c.cpu_vs_reference.is_some() || c.calibrate
}

pub struct Cost;

impl super::Phase for Cost {
    fn name(&self) -> &'static str {
        "cost"
    }

    fn declared(&self, g: &LoadedGrader) -> bool {
        g.grader.cost.is_some()
    }

    fn checks(&self, g: &LoadedGrader) -> Vec<DeclaredCheck> {
        let Some(spec) = &g.grader.cost else {
            return Vec::new();
        };
        let vis = spec.visibility.unwrap_or(g.grader.grader.visibility);
        metrics(spec)
            .into_iter()
            // The CPU check is one check whichever curve grades it.
            .zip(std::iter::once(cpu_curve(spec, true)).chain(std::iter::repeat(None)))
            .filter_map(|((name, curve), relative)| {
                let points = curve.or(relative)?.points.0;
                Some(DeclaredCheck::new(name, Category::Cost, points, vis))
            })
            .collect()
    }

    fn budget(&self, g: &LoadedGrader) -> Duration {
        let g = &g.grader;
        // Reading what the latency phase measured waits for nothing; the comparison waits for
        // the service beside to start (as long as the service may, the yardstick at least
        // `YARDSTICK_START`), then for its windows and, per window, two reads of both
        // containers' CPU from the engine.
        let compare = match (&g.cost, &g.latency) {
            (Some(c), Some(l)) if compares(c) => {
                let windows = 2 * (c.pairs + paired::WARMUP_PAIRS) as u32;
                Duration::from_secs(g.submission.ready_timeout_secs).max(YARDSTICK_START)
                    + shape_of(c, l).longest(g.http.request_timeout())
                    + Duration::from_secs(1) * windows
            }
            _ => Duration::ZERO,
        };
        Duration::from_secs(10) + compare
    }

    fn needs(&self) -> Needs {
        Needs::Container
    }

    fn measures_latency(&self, g: &LoadedGrader) -> bool {
        // The comparison with the reference or the yardstick is a measurement: another one on
        // this machine would weigh on the two sides unevenly. Reading what the latency phase
        // measured is not.
        let g = &g.grader;
        g.latency.is_some() && g.cost.as_ref().is_some_and(compares)
    }

    fn run<'a>(
        &'a self,
        cx: &'a super::Context<'a>,
        out: &'a mut super::PhaseOutput,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let g = &cx.grader.grader;
            let (Some(spec), Some(container)) = (&g.cost, cx.container) else {
                return;
            };
            let per_request = g
                .latency
                .as_ref()
                .map_or(1.0, |l| instances_per_request(l, g.prediction.as_ref()));
            let usage = *cx
                .handoff
                .load_usage
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut report = report_of(
                usage.as_ref(),
                per_request,
                container.startup().memory_bytes,
                container.image_size(),
            );
            // With the reference when the run has one (its ratio grades the check); else, when
            // the grader calibrates, with the yardstick.
            let besides = [
                (Beside::Reference, spec.cpu_vs_reference.is_some()),
                (Beside::Yardstick, spec.calibrate),
            ];
            for (which, wanted) in besides {
                let Some(latency) = g.latency.as_ref().filter(|_| wanted) else {
                    continue;
                };
                let shape = shape_of(spec, latency);
                match compare(cx, container, &shape, which).await {
                    Ok(Some(e)) => {
                        report = with_paired(report, which, &e, per_request, shape.window);
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        out.section = Some(super::Section::Cost(report));
                        out.machine_failure = Some(e);
                        return;
                    }
                }
            }
            let vis = spec.visibility.unwrap_or(g.grader.visibility);
            out.checks = grade(spec, &report, vis);
            out.section = Some(super::Section::Cost(report));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Usage;

    fn usage(cpu_s: f64, mem_before_mb: f64, mem_after_mb: f64) -> LoadUsage {
        LoadUsage {
            requests: 1000,
            seconds: 12.0,
            before: Usage {
                cpu_ns: 5_000_000_000,
                memory_bytes: (mem_before_mb * MB) as u64,
                peak_memory_bytes: Some((mem_before_mb * MB) as u64),
            },
            after: Usage {
                cpu_ns: 5_000_000_000 + (cpu_s * 1e9) as u64,
                memory_bytes: (mem_after_mb * MB) as u64,
                peak_memory_bytes: Some((mem_after_mb * 1.5 * MB) as u64),
            },
        }
    }

    fn spec(extra: &str) -> CostSpec {
        toml::from_str(&format!(
            "cpu_ms_per_1000 = {{ full = 2000, zero = 10000, points = 2 }}\n\
             memory_growth_mb_per_1000 = {{ full = 1, zero = 20, points = 2 }}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn cpu_and_growth_are_per_1000_predictions_sent() {
        let r = report_of(
            Some(&usage(1.5, 100.0, 110.0)),
            1.0,
            Some(90 * 1024 * 1024),
            None,
        );
        assert_eq!(r.predictions, 1000);
        assert_eq!(r.cpu_ms_per_1000, Some(1500.0));
        assert_eq!(r.memory_growth_mb_per_1000, Some(10.0));
        assert_eq!(r.startup_memory_mb, Some(90.0));
        assert_eq!(r.peak_memory_mb, Some(165.0));
        // Batches of 4: four predictions a request.
        let r = report_of(Some(&usage(1.5, 100.0, 100.0)), 4.0, None, None);
        assert_eq!(r.cpu_ms_per_1000, Some(375.0));
    }

    #[test]
    fn a_leak_loses_the_growth_points_and_keeps_the_cpu_points() {
        let s = spec("");
        let vis = crate::check::Visibility::Visible;
        let lean = grade(
            &s,
            &report_of(Some(&usage(1.5, 100.0, 100.5)), 1.0, None, None),
            vis,
        );
        assert!(lean.iter().all(|c| c.passed), "{lean:?}");
        let leak = grade(
            &s,
            &report_of(Some(&usage(1.5, 100.0, 180.0)), 1.0, None, None),
            vis,
        );
        assert_eq!(leak[0].points, 2.0, "{}", leak[0].message);
        assert_eq!(leak[1].points, 0.0, "{}", leak[1].message);
        assert!(
            leak[1].message.starts_with("80 MB of growth per 1000"),
            "{}",
            leak[1].message
        );
    }

    fn estimate(ratio: f64) -> paired::Estimate {
        paired::Estimate {
            ratio,
            candidate_ns_per_request: 2_000_000.0 * ratio,
            beside_ns_per_request: 2_000_000.0,
            pairs: 12,
            kept: 8,
            low: ratio * 0.99,
            high: ratio * 1.01,
        }
    }

    #[test]
    fn the_reference_curve_replaces_the_absolute_one_when_measured() {
        let s = spec("cpu_vs_reference = { full = 1.5, zero = 4.0, points = 2 }\n");
        let vis = crate::check::Visibility::Visible;
        // 3000 ms is slow in absolute terms, but beside it the reference took 2000 ms a 1000
        // predictions (two instances a request: 4 ms a request).
        let base = report_of(Some(&usage(3.0, 100.0, 100.0)), 2.0, None, None);
        let r = with_paired(
            base.clone(),
            Beside::Reference,
            &paired::Estimate {
                candidate_ns_per_request: 6_000_000.0,
                beside_ns_per_request: 4_000_000.0,
                ..estimate(1.5)
            },
            2.0,
            Duration::from_secs(1),
        );
        assert_eq!(r.cpu_vs_reference, Some(1.5));
        assert_eq!(r.reference_cpu_ms_per_1000, Some(2000.0));
        let p = r.paired.as_ref().unwrap();
        assert_eq!((p.pairs, p.kept, p.cpu_ms_per_1000), (12, 8, 3000.0));
        let c = &grade(&s, &r, vis)[0];
        assert_eq!(c.points, 2.0, "{}", c.message);
        assert!(c.message.contains("× the reference"), "{}", c.message);
        // Three times the reference's: 2 × (4 - 3) / (4 - 1.5) points.
        let c = &grade(
            &s,
            &with_paired(
                base.clone(),
                Beside::Reference,
                &estimate(3.0),
                1.0,
                Duration::from_secs(1),
            ),
            vis,
        )[0];
        assert_eq!(c.points, 0.8, "{}", c.message);
        // Without a reference, the absolute curve grades.
        let c = &grade(&s, &base, vis)[0];
        assert_eq!(c.points, 2.0, "{}", c.message);
        let r = report_of(Some(&usage(6.0, 100.0, 100.0)), 1.0, None, None);
        let c = &grade(&s, &r, vis)[0];
        assert_eq!(c.points, 2.0 * 4000.0 / 8000.0, "{}", c.message);
    }

    #[test]
    fn a_ratio_without_a_reference_is_not_applicable_rather_than_lost() {
        let s: CostSpec =
            toml::from_str("cpu_vs_reference = { full = 1.5, zero = 4.0, points = 2 }").unwrap();
        let r = report_of(Some(&usage(3.0, 100.0, 100.0)), 1.0, None, None);
        let c = &grade(&s, &r, crate::check::Visibility::Visible)[0];
        assert_eq!((c.points, c.max_points), (0.0, 0.0), "{}", c.message);
        assert!(c.message.contains("--latency-reference"), "{}", c.message);
        assert!(!c.message.contains("  "), "{}", c.message);
        let r = with_paired(
            r,
            Beside::Reference,
            &estimate(1.0),
            1.0,
            Duration::from_secs(1),
        );
        let c = &grade(&s, &r, crate::check::Visibility::Visible)[0];
        assert_eq!((c.points, c.max_points), (2.0, 2.0), "{}", c.message);
    }

    #[test]
    fn beside_the_yardstick_the_absolute_curve_grades_the_calibrated_number() {
        let s = spec("calibrate = true\n");
        let vis = crate::check::Visibility::Visible;
        // On this machine the service used 12000 ms a 1000 predictions (zero points), but the
        // machine was slow: the yardstick took 2 ms a request, twice the standard. Beside it,
        // the service took 1.5 times the yardstick's CPU a request, two predictions a request:
        // 1.5 standard ms a request, 750 a 1000 predictions.
        let base = report_of(Some(&usage(24.0, 100.0, 100.0)), 2.0, None, None);
        assert_eq!(grade(&s, &base, vis)[0].points, 0.0);
        let r = with_paired(
            base,
            Beside::Yardstick,
            &paired::Estimate {
                candidate_ns_per_request: 3_000_000.0,
                beside_ns_per_request: 2_000_000.0,
                ..estimate(1.5)
            },
            2.0,
            Duration::from_secs(1),
        );
        assert_eq!(r.calibrated_cpu_ms_per_1000, Some(750.0));
        assert_eq!(r.yardstick_ms_per_request, Some(2.0));
        assert_eq!(
            (r.cpu_vs_reference, r.reference_cpu_ms_per_1000),
            (None, None)
        );
        assert_eq!(r.paired.as_ref().unwrap().against, "yardstick");
        let c = &grade(&s, &r, vis)[0];
        assert_eq!(c.points, 2.0, "{}", c.message);
        assert!(c
            .message
            .starts_with("750 CPU ms per 1000 predictions at the standard speed"));
        // The reference's ratio, when measured, grades instead.
        let s =
            spec("calibrate = true\ncpu_vs_reference = { full = 1.5, zero = 4.0, points = 2 }\n");
        let r = with_paired(
            r,
            Beside::Reference,
            &estimate(4.0),
            1.0,
            Duration::from_secs(1),
        );
        assert_eq!(grade(&s, &r, vis)[0].points, 0.0);
    }

    #[test]
    fn nothing_measured_is_zero_with_the_reason() {
        let s = spec("");
        let c = grade(
            &s,
            &report_of(None, 1.0, None, None),
            crate::check::Visibility::Visible,
        );
        assert!(c
            .iter()
            .all(|c| c.points == 0.0 && c.message.starts_with("not measured")));
    }
}
