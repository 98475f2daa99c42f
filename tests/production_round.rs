//! A hiring round of fixture submissions of known quality, graded with `proctor batch` on the
//! real engine: the churn reference, each variant with one production defect (it stops without
//! draining, ignores SIGTERM, starts slowly, leaks memory, keeps state that breaks a restart, has
//! no tests, has a failing test, is written sloppily), a build that fails and a service that
//! never becomes ready.
//!
//! Graded with `tests/fixtures/graders/production.toml`: the hidden churn grader's curves for
//! cost, tests, review and lifecycle, with the few checks they need around them. Every variant
//! loses points in its own category and nowhere else, the reference keeps every point, the
//! summary ranks them as their defects cost, and the broken ones are listed with their verdicts,
//! not ranked.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use serde_json::Value;

/// Each variant and the one category its defect costs.
const VARIANTS: &[(&str, &str)] = &[
    ("drops-on-sigterm", "lifecycle"),
    ("ignores-sigterm", "lifecycle"),
    ("slow-start", "lifecycle"),
    ("state-on-disk", "lifecycle"),
    ("leaks-memory", "cost"),
    ("no-tests", "tests"),
    ("failing-tests", "tests"),
    ("pep8-mess", "review"),
];

fn make_variant(name: &str, dest: &Path) {
    let status = std::process::Command::new("bash")
        .arg(fixture("make-variant.sh"))
        .arg(name)
        .arg(dest)
        .status()
        .expect("make-variant.sh runs");
    assert!(status.success(), "make-variant.sh {name} failed");
}

fn lost_checks(r: &Value) -> String {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["points"].as_f64() < c["max_points"].as_f64())
        .map(|c| {
            format!(
                "\n  [{}] {}: {} / {}: {}",
                c["category"], c["name"], c["points"], c["max_points"], c["message"]
            )
        })
        .collect()
}

#[test]
fn a_round_of_production_defects_ranks_each_by_what_it_costs() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let round = tmp.path().join("round");
    std::fs::create_dir_all(&round).unwrap();
    copy_tree(&fixture("submissions/reference"), &round.join("reference"));
    for (name, _) in VARIANTS {
        make_variant(name, &round.join(name));
    }
    copy_tree(
        &fixture("submissions/broken-build"),
        &round.join("broken-build"),
    );
    // Runs, but never listens (on the base the grader allows).
    std::fs::create_dir_all(round.join("never-ready")).unwrap();
    std::fs::write(
        round.join("never-ready/Dockerfile"),
        "FROM proctor/python-ml:3.11\nCMD [\"sleep\", \"3600\"]\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let run = proctor()
        .arg("batch")
        .arg(&round)
        .arg("--grader")
        .arg(fixture("graders/production.toml"))
        .args(["--seed", "9", "--jobs", "2"])
        .arg("--out-dir")
        .arg(&out)
        .output()
        .expect("proctor runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");

    // The reference keeps every point of every category.
    let reference = batch_report(&out, "reference");
    for (cat, (points, max)) in categories(&reference) {
        assert!(
            points >= 0.95 * max,
            "reference: {cat} {points}/{max}{}",
            lost_checks(&reference)
        );
    }
    // Each variant loses points in its own category, and only there.
    let mut lost = BTreeMap::new();
    for (name, category) in VARIANTS {
        let r = batch_report(&out, name);
        assert_eq!(r["status"], "graded", "{name}: {}", r["reason"]);
        let cats = categories(&r);
        for (cat, (points, max)) in &cats {
            assert_eq!(
                points < max,
                cat == category,
                "{name}: {cat} has {points}/{max}; only {category} should lose points{}",
                lost_checks(&r)
            );
        }
        let (p, m) = cats[*category];
        lost.insert(name.to_string(), m - p);
    }
    // What each defect shows, as the reports say it.
    let graded = |name: &str| batch_report(&out, name)["graders"][0].clone();
    let drops = graded("drops-on-sigterm");
    let shutdown = &drops["lifecycle"]["shutdown"];
    let in_flight = shutdown["in_flight"].as_u64().unwrap();
    assert!(in_flight > 0, "{shutdown}");
    assert!(
        shutdown["in_flight_completed"].as_u64().unwrap() < in_flight,
        "the requests in flight were dropped: {shutdown}"
    );
    assert_eq!(
        graded("ignores-sigterm")["lifecycle"]["shutdown"]["killed"],
        true
    );
    let slow = graded("slow-start")["lifecycle"]["cold_start_seconds"]
        .as_f64()
        .unwrap();
    assert!(slow >= 35.0, "slow-start ready after {slow} s");
    assert_eq!(
        graded("state-on-disk")["lifecycle"]["restart"]["ready"],
        false
    );
    let leak = graded("leaks-memory")["cost"]["memory_growth_mb_per_1000"]
        .as_f64()
        .unwrap();
    let flat = graded("reference")["cost"]["memory_growth_mb_per_1000"]
        .as_f64()
        .unwrap();
    assert!(
        leak > 20.0 && flat < 5.0,
        "growth: leak {leak}, reference {flat}"
    );
    assert_eq!(graded("no-tests")["tests"]["tests"], 0);
    assert_eq!(graded("failing-tests")["tests"]["failed"], 1);
    let lint = graded("pep8-mess")["review"]["lint"]["per_1000_lines"]
        .as_f64()
        .unwrap();
    assert!(lint > 50.0, "pep8-mess: {lint} per 1000 lines");

    // The summary: the reference first, then the variants in the order of the points they
    // lost (ties by id), then the broken ones with their verdicts and no rank.
    let text = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    eprintln!("{text}");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r[col("id")]).collect();
    let mut expected: Vec<(f64, &str)> = lost.iter().map(|(n, l)| (*l, n.as_str())).collect();
    expected.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    let mut want = vec!["reference"];
    want.extend(expected.iter().map(|(_, n)| *n));
    want.extend(["broken-build", "never-ready"]);
    assert_eq!(ids, want, "{text}\nlost: {lost:?}");
    for (i, r) in rows.iter().enumerate().take(VARIANTS.len() + 1) {
        assert_eq!(r[col("rank")], (i + 1).to_string(), "{text}");
    }
    let broken: Vec<(&str, &str, &str)> = rows[VARIANTS.len() + 1..]
        .iter()
        .map(|r| (r[col("rank")], r[col("status")], r[col("verdict")]))
        .collect();
    assert_eq!(
        broken,
        [
            ("", "submission_error", "build_failed"),
            ("", "submission_error", "never_ready")
        ],
        "{text}"
    );
    // One report per submission, and nothing of any run left in Docker.
    for id in want {
        let r = batch_report(&out, id);
        assert_no_leftovers(r["run_id"].as_str().unwrap());
    }
    assert!(out.join("leaderboard.html").exists());
}
