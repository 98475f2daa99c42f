//! The grader file: what an assignment's graders declare (TOML), validated once into typed
//! structs. Everything assignment-specific lives in these files; no Rust code knows about any
//! particular assignment.
//!
//! Errors name the file, the line and column, and the field path (e.g. `correctness[2].status`),
//! because a grader editing a 300-line file needs to know exactly where to look.
//!
//! - `model`: the `Grader` and the sections every grader file has;
//! - `checks`: the scripted checks and the value types of their fields;
//! - `latency`: the `[latency]` section, and the default names of its objectives' checks;
//! - `invariants`: the `[invariants]` section (order, batch independence, determinism, relations);
//! - `ml`: datasets, the prediction API and the phases that grade the model itself;
//! - `probes`: the `[probes]` section (contract probes generated from a schema);
//! - `production`: what production asks beyond the API: `[lifecycle]`, `[cost]`, `[tests]`,
//!   `[review]`;
//! - `load`: reading a file (parsing, body files, datasets);
//! - `validate`: rules that span several fields;
//! - `grade`: `[[prerequisite]]` and `[grade]` bands, and checking prerequisites against the
//!   checks the phases declare;
//! - `compose`: which graders can be graded in one run (what they must declare alike);
//! - `locate`: `GraderError`, and finding a field's line and column in the text.

mod checks;
mod compose;
#[cfg(test)]
pub(crate) mod fixtures;
mod grade;
mod invariants;
mod latency;
mod load;
mod locate;
mod ml;
mod model;
mod probes;
mod production;
mod validate;

pub use checks::{CheckSpec, Method, Points, UrlPath};
pub use compose::check_composable;
pub use grade::{check_prerequisites, GradeSpec};
pub use invariants::{InvariantKind, InvariantsSpec, RelationSpec};
pub use latency::*;
pub use load::{load, parse, LoadedGrader};
pub use locate::GraderError;
pub use ml::*;
pub use model::{
    Grader, GraderMeta, HttpSettings, Readiness, SandboxLimits, SubmissionRules, AUTO_CPUSET,
};
pub use probes::ProbesSpec;
pub use production::*;

pub use crate::check::Visibility;
