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
            let gr = &g.grader;
            let phases: Vec<&str> = [
                ("latency", gr.latency.is_some()),
                ("quality", gr.quality.is_some()),
                ("consistency", gr.consistency.is_some()),
                ("drift", gr.drift.is_some()),
                ("monitoring", gr.metrics.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect();
            println!(
                "{}: valid ({n} scripted checks; {} dataset(s); {} prerequisite(s); {} grade \
                 band(s); phases: {})",
                grader.display(),
                g.datasets.len(),
                gr.prerequisite.len(),
                gr.grade.band.len(),
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
