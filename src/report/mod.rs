//! The report: its model, the files written from it, and the summary printed at the end.

mod model;
mod summary;
mod write;

pub use model::*;
pub use summary::summary_text;
pub use write::write_json_atomic;

/// JSON Schema of the report, for consumers that validate what they read.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Report)).expect("a schema always serializes")
}
