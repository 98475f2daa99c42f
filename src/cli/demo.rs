//! `proctor demo`: the bundled reference submission graded with the public churn grader, after
//! building the base image it needs when that is missing, so that a fresh machine sees a whole
//! grade with one command.

use std::path::{Path, PathBuf};

use super::grade::run_grade;
use crate::exit;
use crate::grader::{self, LoadedGrader};
use crate::intake::Limits;
use crate::pipeline::{GradeOptions, Source};
use crate::sandbox::{system, Engine};

/// Grades the bundled reference submission with the public grader; returns the exit code.
pub(super) async fn demo(out: PathBuf, quiet: bool) -> i32 {
    let root = super::repo_root();
    let grader_path = root.join("graders/churn/public.toml");
    let submission = root.join("tests/fixtures/submissions/reference");
    let loaded = match grader::load(&grader_path) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    if let Err(code) =
        ensure_base_images(&root, &loaded.grader.submission.allowed_base_images).await
    {
        return code;
    }
    let opts = options(submission, loaded);
    run_grade(&opts, &out, quiet, false, None).await
}

/// The pipeline's options for the demo: fixed, so that it grades the same every time.
fn options(submission: PathBuf, grader: LoadedGrader) -> GradeOptions {
    GradeOptions {
        source: Source::Submission(submission),
        grader,
        seed: 1,
        keep_image: false,
        build_timeout: None,
        ready_timeout: None,
        intake_limits: Limits::default(),
        latency_reference: None,
        probe_all: false,
    }
}

/// Builds missing base images with the recipe in `docker/base/` (only that recipe's image).
async fn ensure_base_images(root: &Path, images: &[String]) -> Result<(), i32> {
    let engine = match Engine::connect().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::INFRASTRUCTURE_ERROR);
        }
    };
    for image in images {
        if let Ok(true) = system::image_exists(&engine, image).await {
            continue;
        }
        let script = root.join("docker/base/build.sh");
        eprintln!(
            "base image {image} is missing; building it with {} (a few minutes, once)",
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
