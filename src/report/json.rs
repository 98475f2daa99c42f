//! The JSON view: the report as `View` may see it, pretty-printed (what `proctor grade` writes
//! with `--out`).

use super::{Render, Report, View};

/// The JSON report.
pub struct Json;

impl Render for Json {
    fn render(&self, report: &Report, view: View) -> String {
        let mut text =
            serde_json::to_string_pretty(&report.for_view(view)).expect("a report serializes");
        text.push('\n');
        text
    }
}
