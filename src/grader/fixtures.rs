//! Grader text shared by this module's unit tests.

use std::path::Path;

use super::{parse, Grader, GraderError};

/// The smallest grader file that parses.
pub(super) const MINIMAL: &str = r#"
[grader]
name = "t"
assignment = "a"

[submission]
allowed_base_images = ["base:1"]

[readiness]
path = "/ready"
status = 200
"#;

pub(super) fn parse_str(s: &str) -> Result<Grader, GraderError> {
    parse(s, Path::new("g.toml"))
}
