//! A batch's side-by-side view: `summary.csv` (one row per submission, ranked) and
//! `leaderboard.md`. Graded submissions are ranked by their percent; those the submission
//! stopped (a failed build, never ready, ...) are listed after them with their verdict and no
//! rank; infrastructure errors come last, apart: they say nothing about the submission.

use std::fmt::Write as _;

use crate::check::Category;
use crate::report::{Report, Status};

/// One submission's line.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    /// The report's file, relative to the batch's output folder.
    pub report_file: String,
    pub report: Report,
}

/// Ranked first, then listed with a verdict, then the machine's failures.
fn order_key(r: &Row) -> (u8, i64, String) {
    let class = match r.report.status {
        Status::Graded => 0,
        Status::SubmissionError => 1,
        Status::InfrastructureError => 2,
    };
    let percent = r.report.score.as_ref().map_or(0.0, |s| s.percent);
    // Highest percent first; ties by id, so the order is the same on every run.
    (class, -(percent * 100.0).round() as i64, r.id.clone())
}

/// The rows in summary order.
pub fn ranked(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(order_key);
    rows
}

/// The categories any row scored, in category order: the summary's columns.
fn categories(rows: &[Row]) -> Vec<Category> {
    Category::ALL
        .into_iter()
        .filter(|c| {
            rows.iter()
                .any(|r| r.report.categories.iter().any(|k| k.name == *c))
        })
        .collect()
}

/// p99 at the target rate, sustained throughput and AUC: the first grader's that has each.
fn headline(r: &Report) -> (Option<f64>, Option<f64>, Option<f64>) {
    let latency = r.first_section(|g| g.latency.as_ref().filter(|l| l.valid));
    let throughput = r.first_section(|g| {
        g.latency
            .as_ref()
            .and_then(|l| l.search.as_ref())
            .and_then(|s| s.capacity_rate.as_ref())
    });
    let auc = r.first_section(|g| g.quality.as_ref().and_then(|q| q.metrics.get("AUC")));
    (
        latency.map(|l| l.corrected.p99_ms),
        throughput.copied(),
        auc.copied(),
    )
}

/// `summary.csv`: rank, id, status, verdict, points, max points, percent, band, the points of
/// every category, p99 (ms), throughput (req/s), AUC, the submission's digest, the graders'
/// digests, the seed and the report file.
pub fn csv_of(rows: &[Row]) -> Vec<u8> {
    let cats = categories(rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "rank",
        "id",
        "status",
        "verdict",
        "points",
        "max_points",
        "percent",
        "band",
    ]
    .map(String::from)
    .to_vec();
    header.extend(cats.iter().map(|c| c.as_str().to_string()));
    header.extend(
        [
            "p99_ms",
            "throughput_rps",
            "auc",
            "submission_sha256",
            "grader_sha256",
            "seed",
            "report",
        ]
        .map(String::from),
    );
    w.write_record(&header).expect("writing to memory");
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    let mut rank = 0;
    for row in rows {
        let r = &row.report;
        let graded = r.status == Status::Graded;
        if graded {
            rank += 1;
        }
        let mut rec = vec![
            if graded {
                rank.to_string()
            } else {
                String::new()
            },
            row.id.clone(),
            r.status.as_str().to_string(),
            r.verdict.map_or(String::new(), |v| v.as_str().to_string()),
            opt(r.score.as_ref().map(|s| s.points)),
            opt(r.score.as_ref().map(|s| s.max_points)),
            opt(r.score.as_ref().map(|s| s.percent)),
            r.band.clone().unwrap_or_default(),
        ];
        for c in &cats {
            rec.push(opt(r
                .categories
                .iter()
                .find(|k| k.name == *c)
                .map(|k| k.points)));
        }
        let (p99, throughput, auc) = headline(r);
        rec.extend([
            opt(p99),
            opt(throughput),
            opt(auc),
            r.submission.context_sha256.clone().unwrap_or_default(),
            r.graders
                .iter()
                .map(|g| g.grader.sha256.as_str())
                .collect::<Vec<_>>()
                .join("+"),
            r.seed.to_string(),
            row.report_file.clone(),
        ]);
        w.write_record(&rec).expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

/// `leaderboard.md`: the ranked submissions with their points per category, then those not
/// ranked with why.
pub fn leaderboard_of(rows: &[Row]) -> String {
    let cats = categories(rows);
    // Reasons and ids come from submissions: escaped as the Markdown view escapes its cells.
    let cell = crate::report::markdown_cell;
    let mut s = String::from("## proctor batch: leaderboard\n\n");
    let _ = write!(s, "| rank | submission | percent | band |");
    for c in &cats {
        let _ = write!(s, " {c} |");
    }
    s.push_str(" p99 (ms) | throughput (req/s) | AUC |\n|---:|---|---:|---|");
    s.push_str(&"---:|".repeat(cats.len() + 3));
    s.push('\n');
    let graded: Vec<&Row> = rows
        .iter()
        .filter(|r| r.report.status == Status::Graded)
        .collect();
    for (i, row) in graded.iter().enumerate() {
        let r = &row.report;
        let _ = write!(
            s,
            "| {} | {} | {:.1} | {} |",
            i + 1,
            cell(&row.id),
            r.score.as_ref().map_or(0.0, |s| s.percent),
            cell(r.band.as_deref().unwrap_or(""))
        );
        for c in &cats {
            match r.categories.iter().find(|k| k.name == *c) {
                Some(k) => {
                    let _ = write!(s, " {:.1} / {:.1} |", k.points, k.max_points);
                }
                None => s.push_str(" |"),
            }
        }
        let (p99, throughput, auc) = headline(r);
        let f = |v: Option<f64>, d: usize| v.map_or(String::new(), |v| format!("{v:.d$}"));
        let _ = writeln!(s, " {} | {} | {} |", f(p99, 2), f(throughput, 0), f(auc, 3));
    }
    let rest: Vec<&Row> = rows
        .iter()
        .filter(|r| r.report.status != Status::Graded)
        .collect();
    if !rest.is_empty() {
        s.push_str(
            "\n### Not ranked\n\n| submission | status | verdict | reason |\n|---|---|---|---|\n",
        );
        for row in rest {
            let r = &row.report;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                cell(&row.id),
                r.status.as_str(),
                r.verdict.map_or("", |v| v.as_str()),
                cell(&r.reason)
            );
        }
    }
    s
}
