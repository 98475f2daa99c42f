//! The HTML view: one self-contained page (inline CSS and inline SVG, no script, no external
//! asset, a Content-Security-Policy that forbids any fetch), to open from disk or keep as a CI
//! artifact. Header (status, score, band; a banner for an infrastructure error), points per
//! category, the checks (those that lost points first, grouped by category), hidden checks as
//! counts, latency (percentile distribution, one-second windows, the throughput search), quality,
//! drift, the container's peaks against its limits, the log tails and the warnings: each only
//! when the view has it.
//!
//! Crates:
//! - `plotters` draws the charts, with only its SVG backend and line series (no `ttf`, no bitmap
//!   backend): it needs no system library (fontconfig, freetype), and its text stays SVG `<text>`
//!   that plotters escapes itself. A well-kept crate rather than hand-made SVG paths and axes.
//! - `askama` fills the page's template (`templates/report.html`): compiled with the crate, so a
//!   template error is a build error, and every `{{ value }}` of an `.html` template is
//!   HTML-escaped unless marked `|safe` (only the SVG plotters produced is). Check names,
//!   messages and logs come from untrusted submissions; nothing is concatenated into markup.
//!
//! Size: messages are cut at `MAX_MESSAGE_CHARS`, each log keeps its last `MAX_LOG_CHARS`, and
//! charts take at most `MAX_CHART_POINTS` points, so the page stays bounded.

use std::collections::BTreeMap;
use std::error::Error;

use askama::Template;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    ContainerInfo, DriftReport, DriftScenarioReport, LatencyReport, Percentiles, QualityReport,
    Render, Report, Status, View,
};

/// The HTML report.
pub struct Html;

/// Longest check message, reason or warning kept, in characters.
const MAX_MESSAGE_CHARS: usize = 2_000;
/// The last characters kept of the service's log and of the build log.
const MAX_LOG_CHARS: usize = 32_000;
/// Most points (windows, search steps, drift p-values) one chart draws.
const MAX_CHART_POINTS: usize = 600;

impl Render for Html {
    fn render(&self, report: &Report, view: View) -> String {
        page_of(&report.for_view(view), view)
            .render()
            .expect("the report page renders")
    }
}

/// One grader's sections this view draws: its name (when the run had several), latency,
/// quality and drift.
type GraderSections<'a> = (
    Option<&'a str>,
    Option<&'a LatencyReport>,
    Option<&'a QualityReport>,
    Option<&'a DriftReport>,
);

/// The phase sections this view draws from (one place, should the model move them): each
/// grader's latency, quality and drift, with the grader's name when the run had several.
fn sections(r: &Report) -> Vec<GraderSections<'_>> {
    let several = r.graders.len() > 1;
    r.graders
        .iter()
        .map(|g| {
            (
                several.then_some(g.grader.name.as_str()),
                g.latency.as_ref(),
                g.quality.as_ref(),
                g.drift.as_ref(),
            )
        })
        .collect()
}

#[derive(Template)]
#[template(path = "report.html", config = "src/report/templates/askama.toml")]
struct Page {
    title: String,
    submission: String,
    grader: String,
    grader_path: String,
    assignment: String,
    /// Each grader's points, when the run had several.
    grader_scores: Vec<(String, String)>,
    run_id: String,
    seed: u64,
    started_at: String,
    finished_at: String,
    proctor_version: String,
    view: &'static str,
    status: &'static str,
    verdict: Option<String>,
    reason: String,
    infrastructure: bool,
    score: Option<String>,
    band: Option<String>,
    notes: Vec<String>,
    categories_svg: Option<String>,
    prerequisites: Vec<String>,
    check_parts: Vec<CheckPart>,
    hidden: Option<Hidden>,
    grader_parts: Vec<GraderPart>,
    container: Option<Container>,
    build_log: Option<String>,
    warnings: Vec<String>,
}

/// One grader's phase sections. With several graders, each heading names its grader and each
/// section id ends in the grader's position.
struct GraderPart {
    id: String,
    of: String,
    latency: Option<Latency>,
    quality: Option<Quality>,
    drift: Option<Drift>,
    /// Lifecycle, cost, the candidate's tests and the review, those the grader has.
    production: Vec<Production>,
}

/// One of the production sections: its one-line summary, then its details as rows.
struct Production {
    title: &'static str,
    line: String,
    rows: Vec<(String, String)>,
    /// The end of the candidate's test output.
    output: Option<String>,
}

struct CheckPart {
    id: &'static str,
    title: &'static str,
    count: usize,
    groups: Vec<CheckGroup>,
}

struct CheckGroup {
    category: String,
    rows: Vec<CheckRow>,
}

struct CheckRow {
    class: &'static str,
    name: String,
    points: String,
    message: String,
}

struct Hidden {
    count: u64,
    passed: u64,
    points: String,
    rows: Vec<HiddenRow>,
}

struct HiddenRow {
    category: String,
    count: u64,
    passed: u64,
    points: String,
}

struct Latency {
    summary: String,
    invalid: String,
    percentiles_svg: Option<String>,
    percentiles: Vec<(&'static str, String, String)>,
    errors: Vec<(String, u64)>,
    windows_svg: Option<String>,
    search: Option<Search>,
}

struct Search {
    summary: String,
    svg: Option<String>,
    steps: Vec<Step>,
}

struct Step {
    class: &'static str,
    rate: String,
    result: &'static str,
    latency: String,
    achieved: String,
    errors: String,
    attempts: u32,
    reason: String,
}

struct Quality {
    dataset: String,
    instances: u64,
    scored: u64,
    compare: String,
    metrics: Vec<(String, String)>,
    failures: Vec<(String, u64)>,
    /// Metrics reported, not scored.
    unscored: String,
    /// Each segment: name, instances, positives, its metrics.
    segments: Vec<(String, u64, u64, String)>,
    roc_svg: Option<String>,
    calibration_svg: Option<String>,
}

struct Drift {
    summary: String,
    pvalues_svg: Option<String>,
    scenarios: Vec<Scenario>,
    agreement: Vec<(String, String, String, String, String)>,
}

struct Scenario {
    name: String,
    detected: String,
    rows: Vec<DriftRow>,
    timeline_svg: Option<String>,
}

struct DriftRow {
    class: &'static str,
    run: String,
    detected: String,
    delay: String,
    flagged: String,
    feature: String,
    method: String,
    statistic: String,
    p_value: String,
    psi: String,
    distance: String,
    missing: String,
    service: String,
}

struct Container {
    summary: String,
    svg: Option<String>,
    log: String,
}

/// At most `MAX_MESSAGE_CHARS` characters of `text`.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The last `MAX_LOG_CHARS` characters of a log.
fn tail(log: &str) -> String {
    let chars = log.chars().count();
    if chars <= MAX_LOG_CHARS {
        return log.to_string();
    }
    let (at, _) = log
        .char_indices()
        .nth(chars - MAX_LOG_CHARS)
        .expect("within the log");
    format!(
        "(… {} earlier characters left out)\n{}",
        chars - MAX_LOG_CHARS,
        &log[at..]
    )
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// A p-value: small ones in scientific notation.
fn p_text(v: Option<f64>) -> String {
    match v {
        Some(p) if p != 0.0 && p.abs() < 1e-3 => format!("{p:.2e}"),
        other => opt(other, 4),
    }
}

fn bytes_text(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

fn page_of(r: &Report, view: View) -> Page {
    let infrastructure = r.status == Status::InfrastructureError;
    let several = r.graders.len() > 1;
    let score = r.score.as_ref().filter(|_| !infrastructure).map(|s| {
        format!(
            "{:.1} / {:.1} points ({:.1}%)",
            s.points, s.max_points, s.percent
        )
    });
    Page {
        title: format!("proctor: {} ({})", r.submission.source, r.grader_names()),
        submission: r.submission.source.clone(),
        grader: r.grader_names(),
        grader_path: r
            .graders
            .iter()
            .map(|g| g.grader.path.as_str())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        assignment: r
            .graders
            .first()
            .map_or(String::new(), |g| g.grader.assignment.clone()),
        grader_scores: if several {
            r.graders
                .iter()
                .filter_map(|g| {
                    let s = g.score.as_ref()?;
                    Some((
                        cut(&g.grader.name),
                        format!("{:.1} / {:.1} ({:.1}%)", s.points, s.max_points, s.percent),
                    ))
                })
                .collect()
        } else {
            Vec::new()
        },
        run_id: r.run_id.clone(),
        seed: r.seed,
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        proctor_version: r.harness.proctor_version.clone(),
        view: match view {
            View::Grader => "the grader's view",
            View::Candidate => "the candidate's view",
        },
        status: r.status.as_str(),
        verdict: r.verdict.map(|v| v.to_string()),
        reason: cut(&r.reason),
        infrastructure,
        band: r.band.clone().filter(|_| score.is_some()),
        score,
        // A note speaks of its grader alone: shown when that grader ran alone.
        notes: if several {
            Vec::new()
        } else {
            r.grader_notes().map(cut).collect()
        },
        categories_svg: (!infrastructure && !r.categories.is_empty())
            .then(|| categories_chart(r))
            .flatten(),
        prerequisites: r
            .prerequisites
            .iter()
            .filter(|p| !p.withheld.is_empty())
            .map(|p| {
                format!(
                    "{}: {:.1} points withheld from {} check(s)",
                    cut(&p.name),
                    p.withheld_points(),
                    p.withheld.len()
                )
            })
            .collect(),
        check_parts: check_parts(r),
        hidden: r
            .hidden_checks
            .as_ref()
            .filter(|h| h.count > 0)
            .map(|h| Hidden {
                count: h.count,
                passed: h.passed,
                points: format!("{:.1} / {:.1}", h.points, h.max_points),
                rows: h
                    .by_category
                    .iter()
                    .map(|k| HiddenRow {
                        category: k.category.to_string(),
                        count: k.count,
                        passed: k.passed,
                        points: format!("{:.1} / {:.1}", k.points, k.max_points),
                    })
                    .collect(),
            }),
        grader_parts: sections(r)
            .into_iter()
            .zip(&r.graders)
            .enumerate()
            .map(|(i, ((name, latency, quality, drift), g))| GraderPart {
                id: if i == 0 {
                    String::new()
                } else {
                    format!("-{}", i + 1)
                },
                of: name.map_or(String::new(), |n| format!(" ({})", cut(n))),
                latency: latency.map(latency_of),
                quality: quality.map(quality_of),
                drift: drift.map(drift_of),
                production: production_of(g),
            })
            .collect(),
        container: r.container.as_ref().map(container_of),
        build_log: r
            .build_log_tail
            .as_deref()
            .filter(|l| !l.is_empty())
            .map(tail),
        warnings: r.warnings.iter().map(|w| cut(w)).collect(),
    }
}

/// A value's name in the report's JSON (`non_root_user`), for a label.
fn json_name(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s.replace('_', " "),
        _ => String::new(),
    }
}

/// The production sections of one grader, in the order the phases run.
fn production_of(g: &crate::report::GraderRun) -> Vec<Production> {
    let mut out = Vec::new();
    let opt = |v: Option<f64>, unit: &str| {
        v.map_or("not measured".to_string(), |v| format!("{v} {unit}"))
    };
    if let Some(c) = &g.cost {
        // What ran beside the service, and what the windows in turns said.
        let turns = c.paired.as_ref().map(|p| {
            format!(
                "in turns, request by request: {} of {} windows of {:.1} s kept, their ratios \
                 {:.3} to {:.3}; the service's CPU there {:.1} ms per 1000",
                p.kept,
                p.pairs,
                p.window_seconds,
                p.lowest_ratio,
                p.highest_ratio,
                p.cpu_ms_per_1000
            )
        });
        let beside: Vec<(String, String)> = match (turns, c.calibrated_cpu_ms_per_1000) {
            (Some(turns), Some(k)) => vec![(
                "at the standard speed".into(),
                format!(
                    "{k} ms (beside proctor's yardstick, which took {} ms a request; {turns})",
                    c.yardstick_ms_per_request.unwrap_or_default()
                ),
            )],
            (turns, None) => vec![
                (
                    "the reference's, beside it".into(),
                    opt(c.reference_cpu_ms_per_1000, "ms"),
                ),
                (
                    "× the reference's".into(),
                    match (c.cpu_vs_reference, turns) {
                        (Some(x), Some(turns)) => format!("{x:.3} ({turns})"),
                        _ => "not measured".into(),
                    },
                ),
            ],
            (None, Some(k)) => vec![("at the standard speed".into(), format!("{k} ms"))],
        };
        out.push(Production {
            title: "Cost",
            line: c.line(),
            rows: [
                vec![
                    (
                        "requests".into(),
                        format!(
                            "{} ({} predictions) in {:.1} s",
                            c.requests, c.predictions, c.load_seconds
                        ),
                    ),
                    ("CPU".into(), opt(c.cpu_seconds, "s")),
                    (
                        "CPU per 1000 predictions".into(),
                        opt(c.cpu_ms_per_1000, "ms"),
                    ),
                ],
                beside,
                vec![
                    ("memory at start-up".into(), opt(c.startup_memory_mb, "MB")),
                    (
                        "memory before the load".into(),
                        opt(c.memory_before_load_mb, "MB"),
                    ),
                    (
                        "memory after the load".into(),
                        opt(c.steady_memory_mb, "MB"),
                    ),
                    (
                        "growth per 1000 predictions".into(),
                        opt(c.memory_growth_mb_per_1000, "MB"),
                    ),
                    (
                        "peak (page cache included)".into(),
                        opt(c.peak_memory_mb, "MB"),
                    ),
                    ("image".into(), opt(c.image_mb, "MB")),
                ],
            ]
            .concat(),
            output: None,
        });
    }
    if let Some(t) = &g.tests {
        let mut rows = vec![
            ("command".into(), cut(&t.command.join(" "))),
            (
                "exit code".into(),
                t.exit_code
                    .map_or("none (stopped)".into(), |c| c.to_string()),
            ),
            ("output".into(), format!("{} bytes", t.output_bytes)),
        ];
        if !t.failing.is_empty() {
            rows.push(("failing".into(), cut(&t.failing.join(", "))));
        }
        out.push(Production {
            title: "The candidate's tests",
            line: t.line(),
            rows,
            output: (!t.output_tail.is_empty()).then(|| tail(&t.output_tail)),
        });
    }
    if let Some(r) = &g.review {
        let mut rows: Vec<(String, String)> = r
            .review
            .dockerfile
            .iter()
            .map(|f| {
                (
                    format!("Dockerfile: {}", json_name(&f.rule)),
                    format!("{}: {}", json_name(&f.status), cut(&f.message)),
                )
            })
            .collect();
        if let Some(l) = &r.lint {
            let codes: Vec<String> = l.by_code.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
            rows.push(("lint codes".into(), cut(&codes.join(", "))));
        }
        let s = &r.review.structure;
        rows.push((
            "structure".into(),
            format!(
                "{} files, {} Python modules, {} lines of Python code and {} of tests{}",
                s.files,
                s.python_modules,
                s.code_lines,
                s.test_lines,
                s.largest_function
                    .as_ref()
                    .map_or(String::new(), |f| format!(
                        "; largest function {} ({} lines, {}:{})",
                        f.name, f.lines, f.file, f.line
                    ))
            ),
        ));
        let large = &r.review.large_files;
        if large.large_count + large.binary_count > 0 {
            rows.push((
                "large or binary files".into(),
                format!(
                    "{} large, {} binary ({} bytes)",
                    large.large_count, large.binary_count, large.binary_bytes
                ),
            ));
        }
        for f in &r.review.secrets.findings {
            rows.push((
                "secret-like string".into(),
                format!("{:?} at {}:{}", f.kind, f.file, f.line),
            ));
        }
        for n in &r.review.notes {
            rows.push(("note".into(), cut(n)));
        }
        out.push(Production {
            title: "Review",
            line: r.line(),
            rows,
            output: None,
        });
    }
    if let Some(l) = &g.lifecycle {
        let mut rows = Vec::new();
        if let Some(d) = &l.shutdown {
            rows.push((
                "signal".into(),
                format!(
                    "SIGTERM {} in {:.2} ms",
                    if d.signal_direct {
                        "to the container's first process"
                    } else {
                        "through the engine"
                    },
                    d.signal_delivery_ms
                ),
            ));
            rows.push((
                "load".into(),
                format!("{} connections, batches of {}", d.connections, d.batch_size),
            ));
            let failures: Vec<String> = d
                .in_flight_failures
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            rows.push((
                "in flight".into(),
                format!(
                    "{} of {} answered{}",
                    d.in_flight_completed,
                    d.in_flight,
                    if failures.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", failures.join(", "))
                    }
                ),
            ));
            rows.push((
                "after the signal".into(),
                format!("{} sent, {} answered", d.sent_after, d.answered_after),
            ));
        }
        out.push(Production {
            title: "Lifecycle",
            line: l.line(),
            rows,
            output: None,
        });
    }
    out
}

/// The checks that lost points, then the passing ones, each grouped by category in category
/// order.
fn check_parts(r: &Report) -> Vec<CheckPart> {
    let part = |id, title, passed: bool| {
        let of: Vec<_> = r.checks.iter().filter(|c| c.passed == passed).collect();
        let mut by: BTreeMap<_, Vec<CheckRow>> = BTreeMap::new();
        for c in &of {
            by.entry(c.category).or_default().push(CheckRow {
                class: if passed { "pass" } else { "fail" },
                name: cut(&r.check_label(c)),
                points: format!("{:.1} / {:.1}", c.points, c.max_points),
                message: cut(&c.message),
            });
        }
        CheckPart {
            id,
            title,
            count: of.len(),
            groups: by
                .into_iter()
                .map(|(cat, rows)| CheckGroup {
                    category: cat.to_string(),
                    rows,
                })
                .collect(),
        }
    };
    [
        part("lost", "Checks that lost points", false),
        part("passed", "Passing checks", true),
    ]
    .into_iter()
    .filter(|p| p.count > 0)
    .collect()
}

fn latency_of(l: &LatencyReport) -> Latency {
    let mut summary = format!(
        "{} {} at {:.0} req/s for {:.0} s (achieved {:.1} req/s, {} arrivals, concurrency {}): \
         {} requests, {} ok; p50 {:.2} ms, p99 {:.2} ms.",
        l.method,
        l.path,
        l.target_rate,
        l.duration_secs,
        l.achieved_rate,
        match l.arrivals {
            super::Arrivals::Constant => "constant",
            super::Arrivals::Poisson => "Poisson",
        },
        l.concurrency,
        l.requests,
        l.ok,
        l.corrected.p50_ms,
        l.corrected.p99_ms
    );
    if l.queued > 0 {
        summary.push_str(&format!(
            " {} requests waited for a free connection.",
            l.queued
        ));
    }
    if let Some(stable) = l.stable {
        summary.push_str(if stable {
            " The windows were stable."
        } else {
            " The windows were not stable (rate or latency moved by over 10%)."
        });
    }
    let (c, u) = (&l.corrected, &l.uncorrected);
    let row = |label, a: f64, b: f64| (label, format!("{a:.2}"), format!("{b:.2}"));
    Latency {
        summary,
        invalid: cut(&l.invalid_reasons.join("; ")),
        percentiles_svg: percentile_chart(l),
        percentiles: vec![
            row("50%", c.p50_ms, u.p50_ms),
            row("90%", c.p90_ms, u.p90_ms),
            row("95%", c.p95_ms, u.p95_ms),
            row("99%", c.p99_ms, u.p99_ms),
            row("99.9%", c.p999_ms, u.p999_ms),
            row("max", c.max_ms, u.max_ms),
            row("mean", c.mean_ms, u.mean_ms),
        ],
        errors: l.errors.iter().map(|(k, v)| (cut(k), *v)).collect(),
        windows_svg: windows_chart(l),
        search: l.search.as_ref().map(|s| Search {
            summary: {
                let mut t = match s.capacity_rate {
                    Some(c) => format!(
                        "Sustains {c} req/s within p{} ≤ {} ms",
                        s.percentile, s.slo_ms
                    ),
                    None => format!("No rate tried kept p{} ≤ {} ms", s.percentile, s.slo_ms),
                };
                if let Some(f) = s.failed_rate {
                    t.push_str(&format!("; {f} req/s failed"));
                }
                t.push_str(&format!(
                    " (ended by {}, {} measurements",
                    cut(&s.ended_by),
                    s.measurements
                ));
                if !s.split_rates.is_empty() {
                    let split: Vec<_> = s.split_rates.iter().map(|r| r.to_string()).collect();
                    t.push_str(&format!("; split votes at {} req/s", split.join(", ")));
                }
                t.push_str(").");
                t
            },
            svg: search_chart(l),
            steps: s
                .steps
                .iter()
                .map(|st| Step {
                    class: if st.passed { "pass" } else { "fail" },
                    rate: format!("{:.0}", st.rate),
                    result: match (st.passed, st.valid) {
                        (true, _) => "passed",
                        (false, true) => "failed",
                        (false, false) => "failed (no valid measurement)",
                    },
                    latency: format!("{:.2}", st.latency_ms),
                    achieved: format!("{:.1}", st.achieved_rate),
                    errors: format!("{:.2}%", st.error_rate * 100.0),
                    attempts: st.attempts,
                    reason: cut(&st.reason),
                })
                .collect(),
        }),
    }
}

fn quality_of(q: &QualityReport) -> Quality {
    let mut compare = String::new();
    if let (Some(d), Some(auc)) = (&q.compare_dataset, q.compare_auc) {
        compare = format!("AUC on {d}: {auc:.4}");
        if let Some(gap) = q.auc_gap {
            compare.push_str(&format!(
                " (gap {gap:+.4}; large and positive hints at overfitting)"
            ));
        }
        compare.push('.');
    }
    Quality {
        dataset: q.dataset.clone(),
        instances: q.instances,
        scored: q.scored,
        compare,
        metrics: q
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v:.4}")))
            .collect(),
        failures: q.failures.iter().map(|(k, v)| (cut(k), *v)).collect(),
        unscored: q.unscored.join(", "),
        segments: q
            .segments
            .iter()
            .map(|s| {
                let metrics: Vec<String> = s
                    .metrics
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect();
                (s.name.clone(), s.instances, s.positives, metrics.join(", "))
            })
            .collect(),
        roc_svg: roc_chart(q),
        calibration_svg: calibration_chart(q),
    }
}

/// The ROC curve of the graded dataset, with the diagonal of a model without signal.
fn roc_chart(q: &QualityReport) -> Option<String> {
    if q.roc.len() < 2 {
        return None;
    }
    let points: Vec<(f64, f64)> = q
        .roc
        .iter()
        .take(MAX_CHART_POINTS)
        .map(|p| (p.false_positive_rate, p.true_positive_rate))
        .collect();
    let auc = q
        .metrics
        .get("AUC")
        .map(|a| format!(" (AUC {a:.4})"))
        .unwrap_or_default();
    unit_square(
        format!("ROC on {}{auc}", q.dataset),
        ("false positive rate", "true positive rate"),
        |chart| {
            chart.draw_series(LineSeries::new(points, BLUE.stroke_width(2)))?;
            Ok(())
        },
    )
}

/// Every chart's legend: a light box with a grey border at `position`.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), Box<dyn Error>>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .label_font((FONT, 12))
        .draw()?;
    Ok(())
}

/// A chart over [0, 1] x [0, 1] with its diagonal drawn (a model without signal, or a perfectly
/// calibrated one), for the ROC curve and the reliability diagram.
fn unit_square(
    caption: String,
    (x_desc, y_desc): (&str, &str),
    draw: impl FnOnce(&mut UnitChart<'_, '_>) -> Result<(), Box<dyn Error>>,
) -> Option<String> {
    svg((440, 420), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(24)
            .caption(caption, (FONT, 14))
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT, 12))
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            GREY.stroke_width(1),
        ))?;
        draw(&mut chart)
    })
}

type UnitChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The reliability diagram: the observed rate of positives against the mean prediction of
/// each bin (a calibrated model lies on the diagonal), the bins' sizes as dot areas.
fn calibration_chart(q: &QualityReport) -> Option<String> {
    if q.calibration.is_empty() {
        return None;
    }
    let largest = q
        .calibration
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bins: Vec<(f64, f64, i32)> = q
        .calibration
        .iter()
        .map(|b| {
            let r = 3.0 + 7.0 * (b.count as f64 / largest).sqrt();
            (b.mean_predicted, b.observed_rate, r as i32)
        })
        .collect();
    unit_square(
        format!("reliability on {}", q.dataset),
        ("mean predicted probability", "observed share of positives"),
        |chart| {
            chart.draw_series(LineSeries::new(
                bins.iter().map(|b| (b.0, b.1)),
                BLUE.stroke_width(1),
            ))?;
            chart.draw_series(
                bins.iter()
                    .map(|b| Circle::new((b.0, b.1), b.2, BLUE.mix(0.6).filled())),
            )?;
            Ok(())
        },
    )
}

fn drift_of(d: &DriftReport) -> Drift {
    let b = &d.baseline;
    let summary = format!(
        "Window {} instances. In-distribution baseline: {} instances, {} polls, {} flagged \
         ({:.2} false alarms per 1000 instances). Feature attribution: precision {:.2}, \
         recall {:.2}, F1 {:.2}.",
        d.window,
        b.instances,
        b.polls,
        b.flagged_polls,
        b.false_alarms_per_1000_instances,
        d.precision,
        d.recall,
        d.f1
    );
    let yes_no = |v: bool| if v { "yes" } else { "no" }.to_string();
    let scenarios = d
        .scenarios
        .iter()
        .map(|s| {
            let mut rows = Vec::new();
            for (n, run) in s.runs.iter().enumerate() {
                let head = |first: bool, v: String| if first { v } else { String::new() };
                let base = |first: bool| DriftRow {
                    class: if run.detected { "pass" } else { "fail" },
                    run: head(first, (n + 1).to_string()),
                    detected: head(first, yes_no(run.detected)),
                    delay: head(
                        first,
                        run.delay_instances.map_or("–".into(), |d| d.to_string()),
                    ),
                    flagged: head(first, run.flagged_features.join(", ")),
                    feature: String::new(),
                    method: String::new(),
                    statistic: String::new(),
                    p_value: String::new(),
                    psi: String::new(),
                    distance: String::new(),
                    missing: String::new(),
                    service: String::new(),
                };
                if run.recomputed.is_empty() {
                    rows.push(base(true));
                }
                for (i, f) in run.recomputed.iter().enumerate() {
                    let mut said = Vec::new();
                    if let Some(flag) = f.service_flagged {
                        said.push(if flag { "flagged" } else { "not flagged" }.to_string());
                    }
                    if let Some(m) = &f.service_method {
                        said.push(m.clone());
                    }
                    if f.service_statistic.is_some() {
                        said.push(format!("statistic {}", opt(f.service_statistic, 4)));
                    }
                    if f.service_p_value.is_some() {
                        said.push(format!("p {}", p_text(f.service_p_value)));
                    }
                    rows.push(DriftRow {
                        feature: f.feature.clone(),
                        method: f.method.clone(),
                        statistic: opt(f.statistic, 4),
                        p_value: p_text(f.p_value),
                        psi: opt(f.psi, 3),
                        distance: opt(f.distance, 3),
                        missing: format!("{:.1}%", f.missing_share * 100.0),
                        service: cut(&said.join(", ")),
                        ..base(i == 0)
                    });
                }
            }
            Scenario {
                name: s.name.clone(),
                detected: format!(
                    "{} of {} run(s) detected the shift of {}",
                    s.detected_runs,
                    s.runs.len(),
                    s.features.join(", ")
                ),
                rows,
                timeline_svg: timeline_chart(s),
            }
        })
        .collect();
    Drift {
        summary,
        pvalues_svg: pvalue_chart(d),
        scenarios,
        agreement: d
            .statistics
            .iter()
            .map(|a| {
                (
                    a.feature.clone(),
                    a.expected_method.clone().unwrap_or_else(|| "–".into()),
                    a.reported_methods.join(", "),
                    format!("{} / {}", a.agreed_polls, a.polls),
                    cut(a.first_disagreement.as_deref().unwrap_or("")),
                )
            })
            .collect(),
    }
}

fn container_of(c: &ContainerInfo) -> Container {
    let mut parts = Vec::new();
    match c.exit_code {
        Some(code) => parts.push(format!("Exit code {code}.")),
        None => parts.push("Still running when read.".into()),
    }
    if c.oom_killed == Some(true) {
        parts.push("Killed for memory (OOM).".into());
    }
    if c.oom_kills > 0 {
        parts.push(format!(
            "{} process(es) killed for memory inside the container.",
            c.oom_kills
        ));
    }
    if let Some(m) = c.memory_peak_bytes {
        parts.push(format!(
            "Memory peak {} of {}.",
            bytes_text(m),
            bytes_text(c.memory_limit_bytes)
        ));
    }
    if let Some(p) = c.pids_peak {
        parts.push(format!(
            "Processes and threads peak {p} of {}.",
            c.pids_limit
        ));
    }
    Container {
        summary: parts.join(" "),
        svg: container_chart(c),
        log: tail(&c.log_tail),
    }
}

// ---------------------------------------------------------------------------------------------
// Charts.

const FONT: &str = "sans-serif";
const GREEN: RGBColor = RGBColor(26, 127, 55);
const RED: RGBColor = RGBColor(207, 34, 46);
const AMBER: RGBColor = RGBColor(191, 135, 0);
const BLUE: RGBColor = RGBColor(9, 105, 218);
const GREY: RGBColor = RGBColor(140, 149, 159);
const LIGHT: RGBColor = RGBColor(234, 238, 242);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// An SVG chart of `size`, drawn by `draw`; `None` when drawing failed (the page goes without).
fn svg(size: (u32, u32), draw: impl FnOnce(&Area) -> Result<(), Box<dyn Error>>) -> Option<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).ok()?;
        draw(&root).ok()?;
        root.present().ok()?;
    }
    Some(out)
}

/// One horizontal bar per row: `value` of `max`, on an axis from 0 to `axis_max`, the row's
/// label above its bar.
fn bars(rows: &[(String, f64, f64, RGBColor)], axis_max: f64, x_desc: &str) -> Option<String> {
    let n = rows.len();
    let height = 50 + 44 * n as u32;
    svg((900, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .margin_right(30)
            .x_label_area_size(36)
            .build_cartesian_2d(0f64..axis_max, 0f64..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc(x_desc)
            .light_line_style(WHITE)
            .label_style((FONT, 12))
            .draw()?;
        for (i, (label, value, max, color)) in rows.iter().enumerate() {
            let top = (n - i) as f64;
            chart.draw_series([
                Rectangle::new([(0.0, top - 0.45), (*max, top - 0.9)], LIGHT.filled()),
                Rectangle::new(
                    [(0.0, top - 0.45), (value.min(*max), top - 0.9)],
                    color.filled(),
                ),
            ])?;
            chart.draw_series([Text::new(
                label.clone(),
                (0.0, top - 0.08),
                (FONT, 13).into_font().color(&BLACK),
            )])?;
        }
        Ok(())
    })
}

fn categories_chart(r: &Report) -> Option<String> {
    let axis = r
        .categories
        .iter()
        .map(|c| c.max_points)
        .fold(0.0, f64::max);
    if axis <= 0.0 {
        return None;
    }
    let rows: Vec<_> = r
        .categories
        .iter()
        .map(|c| {
            let share = if c.max_points > 0.0 {
                c.points / c.max_points
            } else {
                1.0
            };
            let color = if share >= 0.999 {
                GREEN
            } else if share >= 0.5 {
                AMBER
            } else {
                RED
            };
            (
                format!("{}: {:.1} / {:.1}", c.name, c.points, c.max_points),
                c.points,
                c.max_points,
                color,
            )
        })
        .collect();
    bars(&rows, axis, "points")
}

fn container_chart(c: &ContainerInfo) -> Option<String> {
    let mut rows = Vec::new();
    let color = |share: f64| if share >= 0.8 { RED } else { BLUE };
    if let (Some(peak), limit) = (c.memory_peak_bytes, c.memory_limit_bytes) {
        if limit > 0 {
            let share = peak as f64 / limit as f64;
            rows.push((
                format!(
                    "memory: peak {} of {} ({:.0}%)",
                    bytes_text(peak),
                    bytes_text(limit),
                    share * 100.0
                ),
                share * 100.0,
                100.0,
                color(share),
            ));
        }
    }
    if let (Some(peak), limit) = (c.pids_peak, c.pids_limit) {
        if limit > 0 {
            let share = peak as f64 / limit as f64;
            rows.push((
                format!(
                    "processes and threads: peak {peak} of {limit} ({:.0}%)",
                    share * 100.0
                ),
                share * 100.0,
                100.0,
                color(share),
            ));
        }
    }
    if rows.is_empty() {
        return None;
    }
    bars(&rows, 100.0, "% of the limit")
}

/// x of percentile `p` (in percent) on an HdrHistogram-style axis: 1 / (1 - p).
fn percentile_x(p: f64) -> f64 {
    1.0 / (1.0 - (p / 100.0).min(0.999_999))
}

/// The label of `x = 1 / (1 - p)`: 10 → 90%, 100 → 99%, 1000 → 99.9%.
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let digits = (x.log10().round() - 2.0).max(0.0) as usize;
    format!("{p:.digits$}%")
}

fn decade_below(v: f64) -> f64 {
    10f64.powf(v.log10().floor())
}

fn decade_above(v: f64) -> f64 {
    10f64.powf(v.log10().ceil().max(v.log10().floor() + 1.0))
}

/// The corrected (and uncorrected) latency by percentile, log-log, HdrHistogram-style; each
/// latency objective marked at its percentile (full points at or under its lower end, none at
/// or over its upper end) and the throughput search's objective as a line.
fn percentile_chart(l: &LatencyReport) -> Option<String> {
    let c = &l.corrected;
    if c.count == 0 {
        return None;
    }
    let max_x = (c.count as f64).max(2_000.0);
    let points = |p: &Percentiles| -> Vec<(f64, f64, &'static str)> {
        [
            (2.0, p.p50_ms, "p50"),
            (10.0, p.p90_ms, "p90"),
            (20.0, p.p95_ms, "p95"),
            (100.0, p.p99_ms, "p99"),
            (1_000.0, p.p999_ms, "p99.9"),
            (max_x, p.max_ms, "max"),
        ]
        .into_iter()
        .filter(|(_, v, _)| v.is_finite() && *v > 0.0)
        .collect()
    };
    let corrected = points(c);
    if corrected.len() < 2 {
        return None;
    }
    let uncorrected = if l.uncorrected.count > 0 {
        points(&l.uncorrected)
    } else {
        Vec::new()
    };
    let objective = l
        .search
        .as_ref()
        .filter(|s| s.slo_ms > 0.0 && s.percentile > 0.0 && s.percentile < 100.0)
        .map(|s| (percentile_x(s.percentile), s.slo_ms, s.percentile));
    // (x, full points at, no points at, name) of each objective the chart can place.
    let marks: Vec<(f64, f64, f64, String)> = l
        .objectives
        .iter()
        .filter(|o| o.percentile > 0.0 && o.percentile < 100.0)
        .filter(|o| o.full_points_ms > 0.0 && o.zero_points_ms >= o.full_points_ms)
        .map(|o| {
            (
                percentile_x(o.percentile),
                o.full_points_ms,
                o.zero_points_ms,
                o.name.clone(),
            )
        })
        .collect();
    let values = corrected
        .iter()
        .chain(&uncorrected)
        .map(|p| p.1)
        .chain(l.corrected_curve.iter().map(|p| p.ms).filter(|v| *v > 0.0))
        .chain(objective.map(|o| o.1))
        .chain(marks.iter().flat_map(|m| [m.1, m.2]));
    let (lo, hi) = values.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let y = decade_below(lo)..decade_above(hi);
    let x = 1.0..decade_above(max_x);
    svg((900, 420), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(36)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.clone().log_scale(), y.clone().log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&|v| percentile_label(*v))
            .y_label_formatter(&|v| format!("{v}"))
            .label_style((FONT, 12))
            .draw()?;
        if !uncorrected.is_empty() {
            chart
                .draw_series(LineSeries::new(
                    uncorrected.iter().map(|p| (p.0, p.1)),
                    GREY.stroke_width(1),
                ))?
                .label("uncorrected (from actual send)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], GREY));
        }
        // The whole distribution when the report has it, else the labelled percentiles.
        let line: Vec<(f64, f64)> = if l.corrected_curve.len() >= 2 {
            l.corrected_curve
                .iter()
                .filter(|p| p.ms > 0.0)
                .map(|p| {
                    let x = if p.percentile >= 100.0 {
                        max_x
                    } else {
                        percentile_x(p.percentile)
                    };
                    (x, p.ms)
                })
                .collect()
        } else {
            corrected.iter().map(|p| (p.0, p.1)).collect()
        };
        chart
            .draw_series(LineSeries::new(line, BLUE.stroke_width(2)))?
            .label("corrected (from intended send; graded)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        chart.draw_series(
            corrected
                .iter()
                .map(|p| Circle::new((p.0, p.1), 3, BLUE.filled())),
        )?;
        chart.draw_series(corrected.iter().map(|p| {
            Text::new(
                format!("{} {:.2} ms", p.2, p.1),
                (p.0, p.1),
                (FONT, 11).into_font().color(&BLACK),
            )
        }))?;
        if !marks.is_empty() {
            let orange = RGBColor(230, 120, 0);
            chart
                .draw_series(
                    marks.iter().map(|m| {
                        PathElement::new([(m.0, m.1), (m.0, m.2)], orange.stroke_width(3))
                    }),
                )?
                .label("objective: full points at or under ●, none at or over ✕")
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], orange.stroke_width(3))
                });
            chart.draw_series(
                marks
                    .iter()
                    .map(|m| Circle::new((m.0, m.1), 4, GREEN.filled())),
            )?;
            chart.draw_series(
                marks
                    .iter()
                    .map(|m| Cross::new((m.0, m.2), 5, RED.stroke_width(2))),
            )?;
            chart.draw_series(marks.iter().map(|m| {
                Text::new(
                    format!("{} ≤ {} ms", m.3, m.1),
                    (m.0, m.1),
                    (FONT, 10).into_font().color(&orange),
                )
            }))?;
        }
        if let Some((ox, ms, pct)) = objective {
            chart
                .draw_series([PathElement::new(
                    [(x.start, ms), (x.end, ms)],
                    RED.stroke_width(1),
                )])?
                .label(format!("objective p{pct} ≤ {ms} ms (throughput search)"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED));
            chart.draw_series([Cross::new((ox, ms), 6, RED.stroke_width(2))])?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// Latency (p50, p99) and throughput per one-second window.
fn windows_chart(l: &LatencyReport) -> Option<String> {
    let w: Vec<_> = l.windows.iter().take(MAX_CHART_POINTS).collect();
    if w.len() < 2 {
        return None;
    }
    let end = w.iter().map(|w| w.start_secs).fold(0.0, f64::max) + 1.0;
    let top_ms = w.iter().map(|w| w.p99_ms.max(w.p50_ms)).fold(0.0, f64::max) * 1.15;
    let top_rate = w.iter().map(|w| w.rate).fold(0.0, f64::max) * 1.15;
    if !(top_ms > 0.0 && top_rate > 0.0) {
        return None;
    }
    svg((900, 340), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .right_y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0.0..top_ms)?
            .set_secondary_coord(0.0..end, 0.0..top_rate);
        chart
            .configure_mesh()
            .x_desc("seconds from the start of measurement")
            .y_desc("latency (ms)")
            .label_style((FONT, 12))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("responses per second")
            .label_style((FONT, 12))
            .draw()?;
        chart
            .draw_secondary_series(LineSeries::new(
                w.iter().map(|w| (w.start_secs, w.rate)),
                GREY.stroke_width(1),
            ))?
            .label("rate (req/s, right axis)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], GREY));
        chart
            .draw_series(LineSeries::new(
                w.iter().map(|w| (w.start_secs, w.p50_ms)),
                BLUE.stroke_width(2),
            ))?
            .label("p50")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(
                w.iter().map(|w| (w.start_secs, w.p99_ms)),
                RED.stroke_width(2),
            ))?
            .label("p99")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// The throughput search: each rate tried against the latency it measured, passed (green
/// circle) or failed (red cross), with the objective as a line.
fn search_chart(l: &LatencyReport) -> Option<String> {
    let s = l.search.as_ref()?;
    let steps: Vec<_> = s.steps.iter().take(MAX_CHART_POINTS).collect();
    if steps.is_empty() {
        return None;
    }
    let right = steps.iter().map(|st| st.rate).fold(0.0, f64::max) * 1.1;
    let top = steps
        .iter()
        .map(|st| st.latency_ms)
        .chain([s.slo_ms])
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        * 1.2;
    if !(right > 0.0 && top > 0.0) {
        return None;
    }
    svg((900, 340), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..right, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("rate tried (req/s)")
            .y_desc(format!("p{} latency (ms)", s.percentile))
            .label_style((FONT, 12))
            .draw()?;
        chart
            .draw_series([PathElement::new(
                [(0.0, s.slo_ms), (right, s.slo_ms)],
                RED.stroke_width(1),
            )])?
            .label(format!("objective {} ms", s.slo_ms))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED));
        chart
            .draw_series(
                steps
                    .iter()
                    .filter(|st| st.passed)
                    .map(|st| Circle::new((st.rate, st.latency_ms), 6, GREEN.filled())),
            )?
            .label("passed")
            .legend(|(x, y)| Circle::new((x + 9, y), 5, GREEN.filled()));
        chart
            .draw_series(
                steps.iter().filter(|st| !st.passed).map(|st| {
                    Cross::new((st.rate, st.latency_ms.min(top)), 6, RED.stroke_width(3))
                }),
            )?
            .label("failed")
            .legend(|(x, y)| Cross::new((x + 9, y), 5, RED.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// One scenario's runs over time: the p-value the service reported for each shifted feature at
/// every poll (log scale), and a red cross where a poll first said drift.
fn timeline_chart(s: &DriftScenarioReport) -> Option<String> {
    let floor = |p: f64| p.clamp(1e-16, 1.0);
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut hits = Vec::new();
    let mut last = 0.0f64;
    for (n, run) in s.runs.iter().enumerate() {
        for f in &s.features {
            let points: Vec<(f64, f64)> = run
                .polls
                .iter()
                .take(MAX_CHART_POINTS)
                .filter_map(|p| Some((p.instances as f64, floor((*p.p_values.get(f)?)?))))
                .collect();
            if !points.is_empty() {
                lines.push((format!("run {} {f}", n + 1), points));
            }
        }
        if let Some(p) = run.polls.iter().find(|p| p.drift == Some(true)) {
            let p_min = s
                .features
                .iter()
                .filter_map(|f| *p.p_values.get(f)?)
                .fold(1.0, f64::min);
            hits.push((p.instances as f64, floor(p_min)));
        }
        last = last.max(
            run.polls
                .iter()
                .map(|p| p.instances as f64)
                .fold(0.0, f64::max),
        );
    }
    if lines.is_empty() || last <= 0.0 {
        return None;
    }
    let lo = lines
        .iter()
        .flat_map(|(_, l)| l.iter().map(|p| p.1))
        .fold(1.0, f64::min);
    let y = decade_below(lo).min(1e-3)..1.0;
    svg((640, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(36)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..last, y.clone().log_scale())?;
        chart
            .configure_mesh()
            .x_desc("shifted instances sent")
            .y_desc("p-value the service reported")
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style((FONT, 12))
            .draw()?;
        for (i, (label, points)) in lines.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour));
        }
        chart.draw_series(hits.iter().map(|h| Cross::new(*h, 6, RED.stroke_width(2))))?;
        legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
        Ok(())
    })
}

/// The p-value of each feature in each scenario's runs (proctor's recomputation, and the
/// service's own when it said one), on a log axis.
fn pvalue_chart(d: &DriftReport) -> Option<String> {
    let mut names = Vec::new();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for s in &d.scenarios {
        for (n, run) in s.runs.iter().enumerate() {
            for f in &run.recomputed {
                if f.p_value.is_none() && f.service_p_value.is_none() {
                    continue;
                }
                let i = names.len() as i32;
                let label = if s.runs.len() > 1 {
                    format!("{} #{} {}", s.name, n + 1, f.feature)
                } else {
                    format!("{} {}", s.name, f.feature)
                };
                names.push(label);
                let floor = |p: f64| p.clamp(1e-16, 1.0);
                if let Some(p) = f.p_value {
                    ours.push((i, floor(p)));
                }
                if let Some(p) = f.service_p_value {
                    theirs.push((i, floor(p)));
                }
            }
        }
    }
    if names.is_empty() || names.len() > MAX_CHART_POINTS {
        return None;
    }
    let lo = ours.iter().chain(&theirs).map(|p| p.1).fold(1.0, f64::min);
    let x = decade_below(lo).min(1e-3)..1.5;
    let n = names.len() as i32;
    // One row per (scenario, run, feature), top to bottom: row i at y = n - 1 - i.
    let row = |i: i32| n - 1 - i;
    let ours: Vec<_> = ours.into_iter().map(|(i, p)| (p, row(i))).collect();
    let theirs: Vec<_> = theirs.into_iter().map(|(i, p)| (p, row(i))).collect();
    svg((900, 90 + 24 * n as u32), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(40)
            .y_label_area_size(230)
            .build_cartesian_2d(x.clone().log_scale(), -1..n)?;
        chart
            .configure_mesh()
            .y_labels(names.len() + 2)
            .y_label_formatter(&|y| {
                usize::try_from(n - 1 - *y)
                    .ok()
                    .and_then(|i| names.get(i))
                    .cloned()
                    .unwrap_or_default()
            })
            .x_desc("p-value (log)")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .light_line_style(WHITE)
            .label_style((FONT, 12))
            .draw()?;
        chart
            .draw_series(ours.iter().map(|p| Circle::new(*p, 5, BLUE.filled())))?
            .label("recomputed by proctor")
            .legend(|(x, y)| Circle::new((x + 9, y), 5, BLUE.filled()));
        if !theirs.is_empty() {
            chart
                .draw_series(
                    theirs
                        .iter()
                        .map(|p| Cross::new(*p, 5, AMBER.stroke_width(2))),
                )?
                .label("reported by the service")
                .legend(|(x, y)| Cross::new((x + 9, y), 5, AMBER.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::MiddleMiddle)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::{check, infrastructure_error, report};
    use crate::report::{Category, LoadWindow, SearchStep, Visibility};

    fn svgs(html: &str) -> usize {
        html.matches("<svg").count()
    }

    #[test]
    fn script_in_a_message_or_a_log_is_text_never_a_tag() {
        let mut r = report();
        r.checks.push(check(
            "<script>alert('name')</script>",
            Category::Correctness,
            Visibility::Visible,
            false,
            "answered <script>alert(1)</script> & <img src=x onerror=alert(2)>",
        ));
        r.container.as_mut().unwrap().log_tail =
            "GET / <script>fetch('http://evil')</script>\n".into();
        r.build_log_tail = Some("</pre><script>alert(3)</script>".into());
        r.warnings.push("<b onmouseover=x>warn</b>".into());
        let html = Html.render(&r, View::Grader);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b onmouseover"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{html}"
        );
        assert!(html.contains("&#60;script&#62;fetch("), "{html}");
        assert!(
            html.contains("&#60;/pre&#62;&#60;script&#62;alert(3)"),
            "{html}"
        );
        assert_eq!(
            html.matches("<pre>").count(),
            html.matches("</pre>").count()
        );
    }

    #[test]
    fn a_candidate_sees_no_hidden_name_only_counts() {
        let r = report();
        let html = Html.render(&r, View::Candidate);
        assert!(!html.contains("secret"), "{html}");
        assert!(
            html.contains("2 hidden check(s), 1 passed: 2.0 / 4.0 points"),
            "{html}"
        );
        assert!(
            html.contains("<td>robustness</td><td class=\"n\">1</td>"),
            "{html}"
        );
        assert!(html.contains("the candidate&#39;s view"), "{html}");
        let grader = Html.render(&r, View::Grader);
        assert!(grader.contains("secret probe"), "{grader}");
        assert!(!grader.contains("id=\"hidden\""), "{grader}");
    }

    #[test]
    fn an_infrastructure_error_has_the_banner_and_no_score() {
        let html = Html.render(&infrastructure_error(), View::Candidate);
        assert!(html.contains("class=\"banner\""), "{html}");
        assert!(html.contains("this is not a grade"), "{html}");
        assert!(!html.contains("class=\"score\""), "{html}");
        assert!(!html.contains("id=\"categories\""), "{html}");
        // Even with a score in the report, an infrastructure error shows none.
        let mut r = report();
        r.status = Status::InfrastructureError;
        let html = Html.render(&r, View::Grader);
        assert!(!html.contains("5.0 / 8.0 points"), "{html}");
        assert!(!html.contains("band <b>"), "{html}");
        let graded = Html.render(&report(), View::Grader);
        assert!(!graded.contains("class=\"banner\""));
        assert!(
            graded.contains("5.0 / 8.0 points (62.5%) <small>band <b>fair</b>"),
            "{graded}"
        );
    }

    #[test]
    fn failed_checks_come_first_grouped_by_category() {
        let html = Html.render(&report(), View::Grader);
        let lost = html.find("Checks that lost points (2)").expect("lost part");
        let passed = html.find("Passing checks (3)").expect("passing part");
        assert!(lost < passed);
        let predicts = html.find("predicts all rows").unwrap();
        let probe = html.find("secret probe").unwrap();
        assert!(
            lost < predicts && predicts < probe && probe < passed,
            "category order"
        );
    }

    #[test]
    fn charts_are_inline_svg_when_the_data_is_there() {
        let mut r = report();
        // The fixture: categories, latency percentiles, container peaks; no windows, no steps.
        let html = Html.render(&r, View::Grader);
        assert_eq!(svgs(&html), 3, "{html}");
        assert!(html.contains("99.9%"), "the percentile axis is labelled");
        assert!(
            html.contains("p99 latency ≤ 100 ms"),
            "the objective is marked"
        );
        // A hidden objective's thresholds stay out of a candidate's chart, also while the
        // section stays for a visible latency check beside it.
        let mut hidden = r.clone();
        hidden
            .checks
            .iter_mut()
            .filter(|c| c.name == "p99 latency")
            .for_each(|c| c.visibility = crate::check::Visibility::Hidden);
        let mut beside = hidden.checks[0].clone();
        beside.name = "sustained throughput".into();
        beside.category = crate::check::Category::Latency;
        beside.visibility = crate::check::Visibility::Visible;
        hidden.checks.push(beside);
        assert!(hidden.for_view(View::Candidate).graders[0]
            .latency
            .is_some());
        let candidate = Html.render(&hidden, View::Candidate);
        assert!(!candidate.contains("p99 latency ≤"), "{candidate}");
        let l = r.graders[0].latency.as_mut().unwrap();
        l.windows = (0..30)
            .map(|s| LoadWindow {
                start_secs: s as f64,
                rate: 100.0,
                ok: 100,
                late: 0,
                p50_ms: 3.0,
                p99_ms: 9.0 + (s % 3) as f64,
            })
            .collect();
        let step = |rate, passed, latency_ms| SearchStep {
            rate,
            passed,
            valid: true,
            latency_ms,
            error_rate: 0.0,
            achieved_rate: rate,
            reason: if passed { "" } else { "p99 over 50 ms" }.into(),
            attempts: 1,
            measurements: vec![],
        };
        l.search.as_mut().unwrap().steps = vec![
            step(100.0, true, 9.9),
            step(800.0, false, 120.0),
            step(400.0, true, 30.0),
        ];
        let html = Html.render(&r, View::Grader);
        assert_eq!(svgs(&html), 5, "windows and search charts too");
        assert!(html.contains("One-second windows"));
        assert!(html.contains("failed"));
        // Every chart is inline: no reference to anything outside the page.
        assert!(!html.contains("src="), "{html}");
        assert!(!html.contains("href="), "{html}");
        assert!(!html.contains("<script"), "{html}");
        // No latency section, no latency charts.
        r.graders[0].latency = None;
        r.container = None;
        assert_eq!(svgs(&Html.render(&r, View::Grader)), 1);
    }

    #[test]
    fn long_logs_and_messages_are_cut() {
        let mut r = report();
        r.container.as_mut().unwrap().log_tail = "l".repeat(1_000_000) + "THE END";
        r.checks[0].message = "m".repeat(1_000_000);
        let html = Html.render(&r, View::Grader);
        assert!(html.len() < 200_000, "{}", html.len());
        assert!(html.contains("THE END"), "a log keeps its end");
        assert!(html.contains("earlier characters left out"));
    }

    #[test]
    fn percentile_axis_labels() {
        let labels: Vec<_> = [2.0, 10.0, 100.0, 1_000.0, 10_000.0]
            .into_iter()
            .map(percentile_label)
            .collect();
        assert_eq!(labels, ["50%", "90%", "99%", "99.9%", "99.99%"]);
        assert!((percentile_x(99.0) - 100.0).abs() < 1e-9);
    }
}
