//! Grading a git repository end to end: a committed ref is built and graded, and a repository
//! that cannot be fetched is the harness's failure (exit 4), never the candidate's zero.

mod common;

use std::process::Command;

use common::*;

/// The tiny grader without its long latency phase.
fn quick_grader(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture("graders/tiny.toml")).unwrap();
    let cut = text
        .find("# Long on purpose")
        .expect("tiny.toml has its latency section last");
    let path = dir.join("quick.toml");
    std::fs::write(&path, &text[..cut]).unwrap();
    path
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn committed_ref_of_a_local_repository_is_graded() {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    copy_tree(&fixture("submissions/static-site"), &repo_dir);
    git(&repo_dir, &["init", "-q"]);
    git(&repo_dir, &["add", "."]);
    git(&repo_dir, &["commit", "-qm", "Serve the static site"]);
    std::fs::write(repo_dir.join("www/extra.html"), "more").unwrap();
    git(&repo_dir, &["add", "."]);
    git(&repo_dir, &["commit", "-qm", "wip"]);
    git(&repo_dir, &["tag", "v1"]);
    // Uncommitted changes must not be graded: break the working tree after the tag.
    std::fs::write(repo_dir.join("Dockerfile"), "FROM not-allowed:1\n").unwrap();

    let run = grade(&repo_dir, &quick_grader(tmp.path()), &["--ref", "v1"]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let sub = &run.report()["submission"];
    assert_eq!(sub["kind"], "git");
    let commit = sub["commit"].as_str().unwrap();
    assert_eq!(commit.len(), 40, "{commit}");
    assert_eq!(run.percent(), 100.0, "{}", run.explain());
    // The grader reviews (information only): the bounded history of the ref, and the context.
    let review = &run.report()["graders"][0]["review"];
    let history = &review["history"];
    assert_eq!(history["commits"], 2, "{review}");
    assert_eq!(history["authors"], 1, "{history}");
    assert_eq!(history["subjects"]["generic_share"], 0.5, "{history}");
    assert!(history["error"].is_null(), "{history}");
    assert_eq!(review["lint"]["violations"], 0, "{review}");
    assert!(
        review["review"]["structure"]["files"].as_u64().unwrap() >= 2,
        "{review}"
    );
    // Neither the author's name nor a subject is in the report.
    let text = serde_json::to_string(run.report()).unwrap();
    assert!(!text.contains("Serve the static site") && !text.contains("example.invalid"));
    assert_no_leftovers(&run.run_id());
}

#[test]
fn unreachable_repository_is_an_infrastructure_error() {
    let tmp = tempfile::tempdir().unwrap();
    // Port 9 on loopback: nothing listens, the connection is refused at once.
    let url = "https://127.0.0.1:9/candidate/submission.git";
    let out = tmp.path().join("r.json");
    let output = proctor()
        .args(["grade", url, "--grader"])
        .arg(quick_grader(tmp.path()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let run = finish(output, &out);
    assert_eq!(run.code, 4, "{}", run.explain());
    assert_eq!(run.report()["verdict"], "fetch_failed");
    assert!(run.report()["score"].is_null());
}
