//! Where a grader file is wrong: the error type, and locating a field in the text by line and
//! column.

use std::path::{Path, PathBuf};

/// A grader file that could not be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum GraderError {
    #[error("cannot read grader file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    /// Graders that cannot be graded in one run (`--grader` repeated): the message names both
    /// files.
    #[error("{0}")]
    Composed(String),
}

/// 1-based line and column of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// An error about `field`, located in `text` by walking its spans.
pub(super) fn invalid_field(
    text: &str,
    path: &Path,
    field: String,
    message: String,
) -> GraderError {
    let span = find_field_span(text, &field);
    invalid_at(text, path, span, field, message)
}

/// An error about `field` at `span` of `text` (the file's start when the span is unknown).
pub(super) fn invalid_at(
    text: &str,
    path: &Path,
    span: Option<std::ops::Range<usize>>,
    field: String,
    message: String,
) -> GraderError {
    let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 1));
    GraderError::Invalid {
        path: path.to_owned(),
        line,
        column,
        field,
        message,
    }
}

/// Best-effort location of a field named by a validation rule (`latency.rate`,
/// `correctness[2].name`), found by walking the TOML document's spans.
pub(super) fn find_field_span(text: &str, field: &str) -> Option<std::ops::Range<usize>> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut span = doc.span();
    let mut value: Option<DeValue<'_>> = Some(DeValue::Table(doc.into_inner()));
    for segment in field.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let table = match value.take()? {
            DeValue::Table(t) => t,
            _ => return Some(span),
        };
        let (_, v) = table.into_iter().find(|(k, _)| k.get_ref() == key)?;
        span = v.span();
        let mut inner = v.into_inner();
        if let Some(i) = index {
            if let DeValue::Array(items) = inner {
                let item = items.into_iter().nth(i)?;
                span = item.span();
                inner = item.into_inner();
            }
        }
        value = Some(inner);
    }
    Some(span)
}
