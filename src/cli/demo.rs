//! `proctor demo`: the bundled reference submission graded with both churn graders (public and
//! hidden) in one run, after building the images it needs when they are missing, so that a
//! fresh machine sees a whole grade with one command: the summary, the JSON report and the HTML
//! page of the grader's view.

use std::path::{Path, PathBuf};

use super::grade::{load_graders, run_grade_to, Outputs};
use super::report::Format;
use crate::exit;
use crate::grader::LoadedGrader;
use crate::intake::Limits;
use crate::pipeline::{GradeOptions, Source};
use crate::sandbox::{system, Engine};

/// Grades the bundled reference submission with the public and the hidden grader; returns the
/// exit code.
pub(super) async fn demo(out: PathBuf, html: PathBuf, quiet: bool) -> i32 {
    let root = super::repo_root();
    let graders = ["public", "hidden"].map(|g| root.join(format!("graders/churn/{g}.toml")));
    let submission = root.join("tests/fixtures/submissions/reference");
    let loaded = match load_graders(&graders) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    // The base image, and proctor's own images the graders need (the linter's, the yardstick).
    let mut images = Vec::new();
    for g in &graders {
        for image in crate::doctor::grader_images(g).unwrap_or_default() {
            if !images.contains(&image) {
                images.push(image);
            }
        }
    }
    if let Err(code) = ensure_images(&root, &images).await {
        return code;
    }
    let opts = options(submission, loaded);
    let outputs = Outputs {
        views: vec![(Format::Html, html)],
        ..Outputs::default()
    };
    run_grade_to(&opts, &out, quiet, false, None, &outputs).await
}

/// The pipeline's options for the demo: fixed, so that it grades the same every time.
fn options(submission: PathBuf, graders: Vec<LoadedGrader>) -> GradeOptions {
    GradeOptions {
        source: Source::Submission(submission),
        graders,
        seed: 1,
        keep_image: false,
        build_timeout: None,
        ready_timeout: None,
        intake_limits: Limits::default(),
        latency_reference: None,
        probe_all: false,
    }
}

/// Builds the missing images among `images` that this repository has a recipe for (`docker/`),
/// in order; the grade itself reports any other that is missing.
async fn ensure_images(root: &Path, images: &[String]) -> Result<(), i32> {
    let engine = match Engine::connect().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::INFRASTRUCTURE_ERROR);
        }
    };
    for image in images {
        let Some(recipe) = crate::doctor::recipe(image) else {
            continue;
        };
        if let Ok(true) = system::image_exists(&engine, image).await {
            continue;
        }
        let script = root.join(recipe);
        eprintln!(
            "image {image} is missing; building it with {} (up to a few minutes, once)",
            script.display()
        );
        let status = tokio::process::Command::new("bash")
            .arg(&script)
            .status()
            .await;
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!(
                    "error: {} failed ({s}); see its output above",
                    script.display()
                );
                return Err(exit::INFRASTRUCTURE_ERROR);
            }
            Err(e) => {
                eprintln!("error: cannot run {}: {e}", script.display());
                return Err(exit::INFRASTRUCTURE_ERROR);
            }
        }
    }
    Ok(())
}
