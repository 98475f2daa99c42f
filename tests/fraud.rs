//! The second assignment, fraud detection on the Open Inference Protocol (V2), on the real
//! engine: the same proctor grades an assignment of another API style and another kind of label
//! (about 1% positives) from grader files alone.
//!
//! - A round of the fraud reference and its one-defect variants, with the public and hidden
//!   fraud graders: the reference keeps its points; `constant` scores near zero on quality
//!   although it is over 98% accurate; each other variant loses points where its defect is.
//! - MLServer, a V2 server nobody here wrote, passes the protocol's checks of the public grader
//!   (it departs from the protocol's error format, as its fixture's README says).
//! - `proctor init` kits of both assignments: their skeletons build and grade low.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn fraud_grader(name: &str) -> std::path::PathBuf {
    repo().join("graders/fraud").join(name)
}

fn losing(r: &Value) -> Vec<String> {
    categories(r)
        .into_iter()
        .filter(|(_, (p, m))| p < m)
        .map(|(c, _)| c)
        .collect()
}

fn lost_checks(r: &Value) -> String {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["points"].as_f64() < c["max_points"].as_f64())
        .map(|c| format!("\n  [{}] {}: {}", c["category"], c["name"], c["message"]))
        .collect()
}

/// The hidden grader's quality section.
fn quality(r: &Value) -> &Value {
    &r["graders"][1]["quality"]
}

#[test]
fn the_fraud_reference_keeps_its_points_and_each_variant_loses_where_its_defect_is() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let round = tmp.path().join("round");
    copy_tree(
        &fixture("submissions/fraud-reference"),
        &round.join("reference"),
    );
    for v in [
        "constant",
        "accuracy-tuned",
        "bad-tensor-shapes",
        "no-drift",
        "weak-segment",
    ] {
        let status = std::process::Command::new("bash")
            .arg(fixture("make-variant.sh"))
            .arg(format!("fraud/{v}"))
            .arg(round.join(v))
            .status()
            .unwrap();
        assert!(status.success(), "make-variant.sh fraud/{v}");
    }
    let out = tmp.path().join("out");
    // The variants break other categories than CPU (see `uncalibrated`).
    let hidden = uncalibrated(&fraud_grader("hidden.toml"));
    let run = proctor()
        .arg("batch")
        .arg(&round)
        .arg("--grader")
        .arg(fraud_grader("public.toml"))
        .arg("--grader")
        .arg(hidden.path())
        .args(["--seed", "5", "--jobs", "2"])
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    let reference = batch_report(&out, "reference");
    let percent = reference["score"]["percent"].as_f64().unwrap();
    assert!(
        percent >= 95.0,
        "reference {percent}%{}",
        lost_checks(&reference)
    );

    // Near zero on quality although it is over 98% accurate: accuracy is reported, not scored.
    let constant = batch_report(&out, "constant");
    let (q, qmax) = categories(&constant)["quality"];
    assert!(
        q <= 0.1 * qmax,
        "constant keeps {q}/{qmax} of quality{}",
        lost_checks(&constant)
    );
    let accuracy = quality(&constant)["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.98, "constant's accuracy {accuracy}");
    assert!(
        quality(&constant)["unscored"]
            .as_array()
            .unwrap()
            .contains(&Value::from("accuracy")),
        "{}",
        quality(&constant)
    );

    // The threshold tuned for accuracy: the cost of its decisions, and the contract's rule
    // that fraud is exactly fraud_probability >= 0.01.
    let tuned = batch_report(&out, "accuracy-tuned");
    assert_eq!(
        losing(&tuned),
        ["consistency", "quality"],
        "{}",
        lost_checks(&tuned)
    );
    let cost = |r: &Value| {
        quality(r)["metrics"]["expected cost per 1000"]
            .as_f64()
            .unwrap()
    };
    assert!(
        cost(&tuned) > 1.5 * cost(&reference),
        "cost {} against the reference's {}",
        cost(&tuned),
        cost(&reference)
    );
    // Output shapes that break the contract: correctness only (the values are right).
    let shapes = batch_report(&out, "bad-tensor-shapes");
    assert_eq!(losing(&shapes), ["correctness"], "{}", lost_checks(&shapes));
    let drift = batch_report(&out, "no-drift");
    assert_eq!(losing(&drift), ["drift"], "{}", lost_checks(&drift));
    // Poor on ATM withdrawals: the segment's gap, and the overall numbers ATM fraud is part of.
    let weak = batch_report(&out, "weak-segment");
    assert_eq!(losing(&weak), ["quality"], "{}", lost_checks(&weak));
    let gap = weak["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "worst segment's AUC gap to the whole on holdout")
        .unwrap();
    assert_eq!(gap["points"], 0.0, "{gap}");
    assert!(
        gap["message"].as_str().unwrap().contains("ATM withdrawals"),
        "{gap}"
    );
    // The summary ranks the reference first and the constant service last.
    let text = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    eprintln!("{text}");
    let ids: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(ids.first(), Some(&"reference"), "{text}");
    assert_eq!(ids.last(), Some(&"constant"), "{text}");
    for id in &ids {
        assert_no_leftovers(batch_report(&out, id)["run_id"].as_str().unwrap());
    }
}

#[test]
fn mlserver_passes_the_protocols_checks() {
    require_docker();
    let fixture_dir = fixture("submissions/fraud-mlserver");
    let fetched = std::process::Command::new("bash")
        .arg(fixture_dir.join("fetch-wheels.sh"))
        .status()
        .unwrap();
    assert!(
        fetched.success(),
        "fetch-wheels.sh (it downloads MLServer's wheels from PyPI)"
    );
    let run = grade(
        &fixture_dir,
        &fraud_grader("public.toml"),
        &["--seed", "2", "--quiet"],
    );
    assert_eq!(run.code, 0, "{}", run.explain());
    let checks = run.report()["checks"].as_array().unwrap();
    let protocol: Vec<&Value> = checks
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("protocol: "))
        .collect();
    assert_eq!(protocol.len(), 6);
    for c in &protocol {
        // The protocol asks for 400 with {"error": ...}; MLServer answers 422 with FastAPI's
        // {"detail": [...]}, or 500 (see the fixture's README).
        let departs = c["name"] == "protocol: an invalid request is 400 with an error message";
        assert_eq!(c["passed"], !departs, "{c}");
    }
    // Readiness by status alone, as the protocol says (MLServer's health bodies are empty).
    assert_eq!(checks[0]["passed"], true, "{}", checks[0]);
    // The grader reads its outputs by name, whatever their shape ([N, 1] here): its ranking is
    // scored like anyone's.
    let ap = run.report()["graders"][0]["quality"]["metrics"]["average precision"]
        .as_f64()
        .unwrap();
    assert!(ap > 0.4, "average precision {ap}");
    assert_no_leftovers(&run.run_id());
}

#[test]
fn starter_kits_hold_nothing_hidden_and_their_skeletons_grade_low() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    for assignment in ["churn", "fraud"] {
        let kit = tmp.path().join(format!("kit-{assignment}"));
        let out = proctor()
            .args(["init", assignment])
            .arg(&kit)
            .arg("--root")
            .arg(repo())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        // Nothing of graders/ but the public grader and the files it reads.
        let hidden_dir = repo().join("graders").join(assignment);
        let hidden: Vec<Vec<u8>> = walk(&hidden_dir)
            .into_iter()
            .filter(|p| {
                p.file_name().is_some_and(|n| n != "public.toml")
                    && !p.starts_with(hidden_dir.join("bodies"))
            })
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        for file in walk(&kit) {
            let rel = file.strip_prefix(&kit).unwrap();
            if rel.starts_with("graders") {
                let public = rel == Path::new("graders").join(assignment).join("public.toml")
                    || rel.starts_with(Path::new("graders").join(assignment).join("bodies"));
                assert!(public, "{} is in the kit", rel.display());
            }
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !hidden.contains(&bytes),
                "{} is a copy of a hidden file",
                rel.display()
            );
        }
        let run = grade(
            &kit.join("submission"),
            &kit.join(format!("graders/{assignment}/public.toml")),
            &["--quiet"],
        );
        assert_eq!(run.code, 0, "{assignment}: {}", run.explain());
        assert_eq!(run.report()["status"], "graded");
        let percent = run.percent();
        assert!(percent < 30.0, "{assignment}'s skeleton scored {percent}%");
        assert_no_leftovers(&run.run_id());
    }
}

/// Every regular file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
