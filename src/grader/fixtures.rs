//! Grader text shared by unit tests (this module's and the modules that take a grader).

use std::path::Path;

use super::{parse, Grader, GraderError};

/// The smallest grader file that parses.
pub(crate) const MINIMAL: &str = r#"
[grader]
name = "t"
assignment = "a"

[submission]
allowed_base_images = ["base:1"]

[readiness]
path = "/ready"
status = 200
"#;

pub(crate) fn parse_str(s: &str) -> Result<Grader, GraderError> {
    parse(s, Path::new("g.toml"))
}

/// `text` as a loaded grader without datasets.
pub(crate) fn loaded(text: &str) -> super::LoadedGrader {
    super::LoadedGrader {
        path: "g.toml".into(),
        sha256: String::new(),
        grader: parse_str(text).unwrap(),
        datasets: Default::default(),
    }
}
