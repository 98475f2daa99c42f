//! Graders graded together (`--grader` repeated): one build, one container, every grader's
//! phases against it, one report. What decides how the submission is built and run (the
//! submission rules, the sandbox, the readiness probe's request) exists once for the run, so
//! the graders must declare it alike; a difference is an error that names both files. What each
//! grader scores stays its own: checks, points, visibility, HTTP settings, prerequisites.

use super::locate::{find_field_span, line_col};
use super::{GraderError, LoadedGrader};

/// Checks that `graders` can be graded in one run; the first one's declarations of what must
/// agree are the run's. One grader is always composable.
pub fn check_composable(graders: &[LoadedGrader]) -> Result<(), GraderError> {
    let Some((first, rest)) = graders.split_first() else {
        return Ok(());
    };
    for (i, other) in rest.iter().enumerate() {
        for earlier in &graders[..=i] {
            if earlier.path == other.path {
                return Err(GraderError::Composed(format!(
                    "{} is given twice with --grader",
                    other.path.display()
                )));
            }
            if earlier.grader.lifecycle.is_some() && other.grader.lifecycle.is_some() {
                return Err(conflict(
                    earlier,
                    other,
                    "lifecycle",
                    "only one grader of a run may declare [lifecycle]: it stops the one service \
                     the graders share",
                ));
            }
            if earlier.grader.grader.name == other.grader.grader.name {
                return Err(conflict(
                    earlier,
                    other,
                    "grader.name",
                    "two graders of one run need different names (the report tells their checks \
                     apart by it)",
                ));
            }
        }
        for (field, a, b) in must_agree(first, other) {
            if a != b {
                return Err(conflict(
                    first,
                    other,
                    field,
                    &format!(
                        "{a} here, {b} there; graders graded together share one build, one \
                         container and one readiness probe, so they must declare the same"
                    ),
                ));
            }
        }
        // The load generator's cores are the run's (the plan places them once).
        if let (Some(a), Some(b)) = (&first.grader.latency, &other.grader.latency) {
            if a.load_cpuset != b.load_cpuset {
                return Err(conflict(
                    first,
                    other,
                    "latency.load_cpuset",
                    &format!(
                        "{:?} here, {:?} there; the load generator's cores are placed once per \
                         run",
                        a.load_cpuset, b.load_cpuset
                    ),
                ));
            }
        }
        let (ab, bb) = (&first.grader.grade.band, &other.grader.grade.band);
        if !ab.is_empty() && !bb.is_empty() && ab != bb {
            return Err(conflict(
                first,
                other,
                "grade.band",
                "the bands differ; the combined score can have one set of bands only (declare \
                 them alike, or in one of the files only)",
            ));
        }
    }
    Ok(())
}

/// The declarations two composed graders must agree on: field, first's value, other's value.
fn must_agree(a: &LoadedGrader, b: &LoadedGrader) -> Vec<(&'static str, String, String)> {
    let (a, b) = (&a.grader, &b.grader);
    macro_rules! fields {
        ($($name:literal => $($path:ident).+),+ $(,)?) => {
            vec![$(($name, format!("{:?}", a.$($path).+), format!("{:?}", b.$($path).+))),+]
        };
    }
    fields![
        "grader.assignment" => grader.assignment,
        "submission.port" => submission.port,
        "submission.allowed_base_images" => submission.allowed_base_images,
        "submission.build_timeout_secs" => submission.build_timeout_secs,
        "submission.ready_timeout_secs" => submission.ready_timeout_secs,
        "submission.build_memory_mb" => submission.build_memory_mb,
        "submission.build_pids_limit" => submission.build_pids_limit,
        "submission.max_build_output_mb" => submission.max_build_output_mb,
        "submission.max_image_mb" => submission.max_image_mb,
        "sandbox.memory_mb" => sandbox.memory_mb,
        "sandbox.cpus" => sandbox.cpus,
        "sandbox.cpuset" => sandbox.cpuset,
        "sandbox.pids_limit" => sandbox.pids_limit,
        "sandbox.tmpfs_mb" => sandbox.tmpfs_mb,
        "sandbox.nofile" => sandbox.nofile,
        "readiness.path" => readiness.path,
        "readiness.status" => readiness.status,
        "readiness.json" => readiness.json,
        "readiness.poll_interval_ms" => readiness.poll_interval_ms,
    ]
}

/// A conflict at `field`, located in both files (at the file's start where the field is left
/// to its default).
fn conflict(a: &LoadedGrader, b: &LoadedGrader, field: &str, message: &str) -> GraderError {
    let at = |g: &LoadedGrader| {
        let text = std::fs::read_to_string(&g.path).unwrap_or_default();
        let (line, column) = find_field_span(&text, field)
            .map(|s| line_col(&text, s.start))
            .unwrap_or((1, 1));
        format!("{}:{line}:{column}", g.path.display())
    };
    GraderError::Composed(format!("{} and {}: {field}: {message}", at(a), at(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grader::fixtures::MINIMAL;

    fn write(dir: &std::path::Path, name: &str, text: &str) -> LoadedGrader {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        crate::grader::load(&path).unwrap()
    }

    fn named(name: &str, extra: &str) -> String {
        format!("{MINIMAL}\n{extra}\n").replacen("name = \"t\"", &format!("name = \"{name}\""), 1)
    }

    #[test]
    fn graders_that_declare_the_run_alike_compose() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.toml", &named("a", ""));
        let b = write(
            dir.path(),
            "b.toml",
            &named("b", "[http]\nrequest_timeout_ms = 100"),
        );
        check_composable(&[a, b]).expect("HTTP settings are each grader's own");
    }

    #[test]
    fn a_conflict_names_both_files_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.toml", &named("a", ""));
        let b = write(
            dir.path(),
            "b.toml",
            &named("b", "[sandbox]\nmemory_mb = 512"),
        );
        let err = check_composable(&[a.clone(), b]).unwrap_err().to_string();
        assert!(
            err.contains("a.toml:1:1") && err.contains("b.toml:"),
            "{err}"
        );
        assert!(
            err.contains("sandbox.memory_mb") && err.contains("512"),
            "{err}"
        );
        assert!(
            !err.contains("b.toml:1:1"),
            "the declared field is located: {err}"
        );

        let same = write(dir.path(), "c.toml", &named("a", ""));
        let err = check_composable(&[a.clone(), same])
            .unwrap_err()
            .to_string();
        assert!(err.contains("grader.name"), "{err}");
        let err = check_composable(&[a.clone(), a]).unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");
    }

    #[test]
    fn the_load_generators_cores_are_the_runs() {
        let dir = tempfile::tempdir().unwrap();
        let load =
            |cpus: &str| format!("[latency]\npath = \"/\"\nrate = 50\nduration_secs = 5\n{cpus}\n");
        let a = write(
            dir.path(),
            "a.toml",
            &named("a", &load("load_cpuset = \"0\"")),
        );
        let b = write(dir.path(), "b.toml", &named("b", &load("")));
        let err = check_composable(&[a.clone(), b]).unwrap_err().to_string();
        assert!(err.contains("latency.load_cpuset"), "{err}");
        let none = write(dir.path(), "c.toml", &named("c", ""));
        check_composable(&[a, none]).expect("a grader without load places no cores");
    }

    #[test]
    fn bands_must_agree_when_both_declare_them() {
        let dir = tempfile::tempdir().unwrap();
        let band = |min| format!("[[grade.band]]\nname = \"pass\"\nmin_percent = {min}\n");
        let a = write(dir.path(), "a.toml", &named("a", &band(50)));
        let none = write(dir.path(), "b.toml", &named("b", ""));
        check_composable(&[a.clone(), none]).expect("bands in one file only");
        let other = write(dir.path(), "c.toml", &named("c", &band(60)));
        let err = check_composable(&[a, other]).unwrap_err().to_string();
        assert!(err.contains("grade.band"), "{err}");
    }
}
