//! `proctor validate`: loads grader files as grading would, and says what each declares or
//! where it is wrong, without an engine (exit 2 with file:line:column and field when invalid);
//! several files are also checked for one run together, as `grade --grader A --grader B` would.

use std::path::{Path, PathBuf};

use crate::exit;
use crate::grader;

/// Checks every grader file, then that they can be graded together; returns the exit code.
pub(super) fn validate_all(graders: &[PathBuf]) -> i32 {
    let mut loaded = Vec::new();
    for g in graders {
        match validate(g) {
            Some(l) => loaded.push(l),
            None => return exit::USAGE,
        }
    }
    if loaded.len() > 1 {
        if let Err(e) = grader::check_composable(&loaded) {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
        println!("these {} graders can be graded in one run", loaded.len());
    }
    exit::GRADED
}

/// Checks the grader file at `grader`, saying what it declares or where it is wrong.
fn validate(grader: &Path) -> Option<grader::LoadedGrader> {
    // Prerequisites name checks the phases declare: checked as the pipeline does before a run.
    let loaded = grader::load(grader).and_then(|g| {
        let plan = crate::plan::RunPlan::new(&g, 0, None, None);
        grader::check_prerequisites(&g, &crate::phases::declared_checks(&g, &plan))?;
        Ok(g)
    });
    match loaded {
        Ok(g) => {
            let n: usize = g.grader.check_lists().iter().map(|(_, l)| l.len()).sum();
            // Every phase of the registry this grader declares, so the list never goes stale.
            let phases: Vec<&str> = crate::phases::registry()
                .iter()
                .filter(|p| p.declared(&g))
                .map(|p| p.name())
                .collect();
            println!(
                "{}: valid ({n} scripted checks; {} dataset(s); {} prerequisite(s); {} grade \
                 band(s); phases: {})",
                grader.display(),
                g.datasets.len(),
                g.grader.prerequisite.len(),
                g.grader.grade.band.len(),
                if phases.is_empty() {
                    "none".to_string()
                } else {
                    phases.join(", ")
                }
            );
            Some(g)
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}
