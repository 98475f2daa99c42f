//! The report: its model, the views of it (`View`: who may see what, decided in one place),
//! the renderers that draw a view (`Render`; the terminal summary is one), and the file writer.

mod model;
mod summary;
mod view;
mod write;

pub use model::*;
pub use summary::{summary_text, summary_text_except, Summary};
pub use view::{Render, View};
pub use write::write_json_atomic;

/// JSON Schema of the report, for consumers that validate what they read.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).expect("a schema always serializes")
}
