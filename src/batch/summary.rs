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

/// The leaderboard both views draw: ranked rows with their points per category, then the rows
/// not ranked with why. Built once, so that the Markdown and the HTML page cannot disagree.
#[derive(Debug)]
struct Leaderboard {
    categories: Vec<String>,
    ranked: Vec<Ranked>,
    unranked: Vec<Unranked>,
    /// Notes on the whole batch (e.g. the machine's speed moved while it ran).
    notes: Vec<String>,
}

#[derive(Debug)]
struct Ranked {
    rank: usize,
    id: String,
    percent: f64,
    band: String,
    /// Per category (in `categories` order): points, max points; none when not scored.
    cells: Vec<Option<(f64, f64)>>,
    p99: String,
    throughput: String,
    auc: String,
    report: String,
}

#[derive(Debug)]
struct Unranked {
    id: String,
    status: &'static str,
    verdict: &'static str,
    reason: String,
    report: String,
}

impl Leaderboard {
    fn of(rows: &[Row], notes: &[String]) -> Leaderboard {
        let cats = categories(rows);
        let f = |v: Option<f64>, d: usize| v.map_or(String::new(), |v| format!("{v:.d$}"));
        let ranked = rows
            .iter()
            .filter(|r| r.report.status == Status::Graded)
            .enumerate()
            .map(|(i, row)| {
                let r = &row.report;
                let (p99, throughput, auc) = headline(r);
                Ranked {
                    rank: i + 1,
                    id: row.id.clone(),
                    percent: r.score.as_ref().map_or(0.0, |s| s.percent),
                    band: r.band.clone().unwrap_or_default(),
                    cells: cats
                        .iter()
                        .map(|c| {
                            r.categories
                                .iter()
                                .find(|k| k.name == *c)
                                .map(|k| (k.points, k.max_points))
                        })
                        .collect(),
                    p99: f(p99, 2),
                    throughput: f(throughput, 0),
                    auc: f(auc, 3),
                    report: row.report_file.clone(),
                }
            })
            .collect();
        let unranked = rows
            .iter()
            .filter(|r| r.report.status != Status::Graded)
            .map(|row| Unranked {
                id: row.id.clone(),
                status: row.report.status.as_str(),
                verdict: row.report.verdict.map_or("", |v| v.as_str()),
                reason: row.report.reason.clone(),
                report: row.report_file.clone(),
            })
            .collect();
        Leaderboard {
            categories: cats.iter().map(|c| c.as_str().to_string()).collect(),
            ranked,
            unranked,
            notes: notes.to_vec(),
        }
    }
}

/// `leaderboard.md`: the ranked submissions with their points per category, then those not
/// ranked with why; `notes` on the whole batch first.
pub fn leaderboard_of(rows: &[Row], notes: &[String]) -> String {
    let board = Leaderboard::of(rows, notes);
    // Reasons and ids come from submissions: escaped as the Markdown view escapes its cells.
    let cell = crate::report::markdown_cell;
    let mut s = String::from("## proctor batch: leaderboard\n\n");
    for n in &board.notes {
        let _ = writeln!(s, "> **{}**\n", cell(n));
    }
    let _ = write!(s, "| rank | submission | percent | band |");
    for c in &board.categories {
        let _ = write!(s, " {c} |");
    }
    s.push_str(" p99 (ms) | throughput (req/s) | AUC |\n|---:|---|---:|---|");
    s.push_str(&"---:|".repeat(board.categories.len() + 3));
    s.push('\n');
    for r in &board.ranked {
        let _ = write!(
            s,
            "| {} | {} | {:.1} | {} |",
            r.rank,
            cell(&r.id),
            r.percent,
            cell(&r.band)
        );
        for c in &r.cells {
            match c {
                Some((p, m)) => {
                    let _ = write!(s, " {p:.1} / {m:.1} |");
                }
                None => s.push_str(" |"),
            }
        }
        let _ = writeln!(s, " {} | {} | {} |", r.p99, r.throughput, r.auc);
    }
    if !board.unranked.is_empty() {
        s.push_str(
            "\n### Not ranked\n\n| submission | status | verdict | reason |\n|---|---|---|---|\n",
        );
        for r in &board.unranked {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                cell(&r.id),
                r.status,
                r.verdict,
                cell(&r.reason)
            );
        }
    }
    s
}

/// `leaderboard.html`: the same table as one self-contained page (no script, no network), each
/// category cell shaded by the share of its points, each id linked to its report.
pub fn leaderboard_html(rows: &[Row], notes: &[String]) -> String {
    use askama::Template;
    let board = Leaderboard::of(rows, notes);
    let page = LeaderboardPage {
        proctor_version: env!("CARGO_PKG_VERSION"),
        board: &board,
    };
    page.render().expect("the leaderboard template renders")
}

#[derive(askama::Template)]
#[template(path = "leaderboard.html", config = "src/batch/templates/askama.toml")]
struct LeaderboardPage<'a> {
    proctor_version: &'static str,
    board: &'a Leaderboard,
}

impl LeaderboardPage<'_> {
    /// A category cell's text and the share (0-100) its shading shows.
    fn cell(&self, c: &Option<(f64, f64)>) -> (String, u32) {
        match c {
            Some((p, m)) => {
                let share = if *m > 0.0 { p / m * 100.0 } else { 100.0 };
                (
                    format!("{p:.1} / {m:.1}"),
                    share.round().clamp(0.0, 100.0) as u32,
                )
            }
            None => (String::new(), 0),
        }
    }
}
