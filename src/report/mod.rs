//! The report: its model, the views of it (`View`: who may see what, decided in one place),
//! the renderers that draw a view (`Render`: JSON, the terminal summary, Markdown, JUnit XML,
//! Gradescope's results.json, a self-contained HTML page), and the file writer.

mod gradescope;
mod html;
mod json;
mod junit;
mod markdown;
mod model;
mod production;
mod stopped;
mod summary;
#[cfg(test)]
pub(crate) mod test_support;
mod view;
mod write;

pub use gradescope::Gradescope;
pub use html::Html;
pub use json::Json;
pub use junit::Junit;
pub use markdown::{cell as markdown_cell, Markdown};
pub use model::*;
pub use production::*;
pub use summary::{summary_text, summary_text_except, Summary};
pub use view::{Render, View};
pub use write::{write_atomic, write_json_atomic};

/// JSON Schema of the report, for consumers that validate what they read.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).expect("a schema always serializes")
}
