//! How checks become a grade beyond summing them: `[[prerequisite]]` (points that count only
//! when other points were earned) and `[[grade.band]]` (what a total means to a hiring team).
//!
//! What a rule says alone (shares, thresholds, names) is checked when the file is parsed. Which
//! checks a prerequisite names can only be checked against the checks the phases declare, on a
//! higher layer than the grader: the pipeline (before a run) and `proctor validate` call
//! [`check_prerequisites`] with them, and its errors are located in the file like any other.

use serde::Deserialize;

use super::locate::invalid_field;
use super::{GraderError, LoadedGrader};
use crate::check::DeclaredCheck;
use crate::prerequisite::Prerequisite;
use crate::score::Band;

/// `[grade]`: what the total means.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeSpec {
    /// Highest threshold first; the report's `band` is the first one the total reaches.
    #[serde(default)]
    pub band: Vec<Band>,
}

/// Rules of `[grade]` and `[[prerequisite]]` that need nothing but the file.
pub(super) fn validate(
    grade: &GradeSpec,
    prerequisites: &[Prerequisite],
) -> Result<(), (String, String)> {
    let mut names = std::collections::BTreeSet::new();
    for (i, b) in grade.band.iter().enumerate() {
        let field = |f: &str| format!("grade.band[{i}].{f}");
        if b.name.trim().is_empty() {
            return Err((field("name"), "a band needs a non-empty name".into()));
        }
        if !names.insert(b.name.as_str()) {
            return Err((field("name"), format!("duplicate band name {:?}", b.name)));
        }
        if !(0.0..=100.0).contains(&b.min_percent) {
            return Err((
                field("min_percent"),
                format!("must be a percent in [0, 100], got {}", b.min_percent),
            ));
        }
        if let Some(prev) = i.checked_sub(1).map(|j| &grade.band[j]) {
            if b.min_percent >= prev.min_percent {
                return Err((
                    field("min_percent"),
                    format!(
                        "{} must be under the band before it ({:?} from {}): bands go from the \
                         highest threshold down",
                        b.min_percent, prev.name, prev.min_percent
                    ),
                ));
            }
        }
    }
    crate::prerequisite::validate_fields(prerequisites)
}

/// Checks the grader's prerequisites against `declared`, every check its phases declare: each
/// name is a check or category of this grader, and no rule depends on itself. The error names
/// the file, the line and the field.
pub fn check_prerequisites(
    loaded: &LoadedGrader,
    declared: &[DeclaredCheck],
) -> Result<(), GraderError> {
    crate::prerequisite::validate(&loaded.grader.prerequisite, declared).map_err(
        |(field, message)| {
            // The file as it was loaded (its hash says so); otherwise the error is still
            // named by file and field, at its first line.
            let text = std::fs::read_to_string(&loaded.path)
                .ok()
                .filter(|t| {
                    loaded.sha256.is_empty()
                        || crate::digest::sha256_hex(t.as_bytes()) == loaded.sha256
                })
                .unwrap_or_default();
            invalid_field(&text, &loaded.path, field, message)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Category, Visibility};
    use crate::grader::fixtures::{parse_str, MINIMAL};

    const BANDS: &str = "[[grade.band]]\nname = \"exceptional\"\nmin_percent = 85\n\n\
                         [[grade.band]]\nname = \"strong\"\nmin_percent = 70\n";

    fn error(text: &str) -> (usize, String, String) {
        match parse_str(text).unwrap_err() {
            GraderError::Invalid {
                line,
                field,
                message,
                ..
            } => (line, field, message),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn bands_parse_in_order() {
        let g = parse_str(&format!("{MINIMAL}\n{BANDS}")).unwrap();
        let names: Vec<_> = g.grade.band.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["exceptional", "strong"]);
        assert!(parse_str(MINIMAL).unwrap().grade.band.is_empty());
    }

    #[test]
    fn bands_must_fall_and_be_percents_and_unique() {
        let text = format!("{MINIMAL}\n{}", BANDS.replace("= 70", "= 85"));
        let (line, field, message) = error(&text);
        assert_eq!(field, "grade.band[1].min_percent");
        assert_eq!(text.lines().nth(line - 1).unwrap(), "min_percent = 85");
        assert!(line > 15, "points at the second band, got line {line}");
        assert!(message.contains("\"exceptional\" from 85"), "{message}");

        let (_, field, _) = error(&format!("{MINIMAL}\n{}", BANDS.replace("= 85", "= 185")));
        assert_eq!(field, "grade.band[0].min_percent");
        let (_, field, message) = error(&format!(
            "{MINIMAL}\n{}",
            BANDS.replace("\"strong\"", "\"exceptional\"")
        ));
        assert_eq!(field, "grade.band[1].name");
        assert!(message.contains("duplicate"), "{message}");
    }

    const PREREQUISITE: &str = "[[prerequisite]]\nname = \"signal\"\nrequires = [\"quality\"]\n\
                                min_share = 0.01\ngates = [\"latency\"]\n";

    #[test]
    fn a_prerequisite_parses_with_all_or_nothing_by_default() {
        let g = parse_str(&format!("{MINIMAL}\n{PREREQUISITE}")).unwrap();
        assert_eq!(
            g.prerequisite[0].mode,
            crate::prerequisite::Mode::AllOrNothing
        );
        let text = format!("{MINIMAL}\n{PREREQUISITE}mode = \"proportional\"\n");
        let g = parse_str(&text).unwrap();
        assert_eq!(
            g.prerequisite[0].mode,
            crate::prerequisite::Mode::Proportional
        );
        let (_, field, _) = error(&format!("{MINIMAL}\n{PREREQUISITE}mode = \"some\"\n"));
        assert_eq!(field, "prerequisite[0].mode");
    }

    #[test]
    fn a_bad_share_is_located_when_parsed() {
        let text = format!("{MINIMAL}\n{}", PREREQUISITE.replace("0.01", "0"));
        let (line, field, _) = error(&text);
        assert_eq!(field, "prerequisite[0].min_share");
        assert_eq!(text.lines().nth(line - 1).unwrap(), "min_share = 0");
    }

    #[test]
    fn an_unknown_check_is_located_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hidden.toml");
        let text = format!(
            "{MINIMAL}\n{}",
            PREREQUISITE.replace("\"latency\"", "\"latncy\"")
        );
        std::fs::write(&path, &text).unwrap();
        let loaded = crate::grader::load(&path).unwrap();
        let declared = [
            DeclaredCheck::new(
                "auc on holdout",
                Category::Quality,
                8.0,
                Visibility::Visible,
            ),
            DeclaredCheck::new("p50", Category::Latency, 3.0, Visibility::Visible),
        ];
        let err = check_prerequisites(&loaded, &declared).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("{}:", path.display())),
            "{shown}"
        );
        assert!(shown.contains("prerequisite[0].gates"), "{shown}");
        assert!(shown.contains("\"latncy\" is neither a check"), "{shown}");
        match err {
            GraderError::Invalid { line, .. } => {
                assert_eq!(text.lines().nth(line - 1).unwrap(), "gates = [\"latncy\"]")
            }
            other => panic!("unexpected {other}"),
        }
        let fixed = crate::grader::fixtures::loaded(&format!("{MINIMAL}\n{PREREQUISITE}"));
        assert!(check_prerequisites(&fixed, &declared).is_ok());
    }
}
