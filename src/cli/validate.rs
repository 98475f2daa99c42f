//! `proctor validate`: loads a grader file as grading would, and says what it declares or
//! where it is wrong, without an engine (exit 2 with file:line:column and field when invalid).

use std::path::Path;

use crate::exit;
use crate::grader;

/// Checks the grader file at `grader`; returns the exit code.
pub(super) fn validate(grader: &Path) -> i32 {
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
            exit::GRADED
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}
