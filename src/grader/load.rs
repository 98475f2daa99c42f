//! Reading a grader file: parsing and validating its text, reading the `body_file`s of scripted
//! checks, and loading the datasets it declares (with the rules that refer to them).

use std::path::{Path, PathBuf};

use super::locate::{find_field_span, invalid_at, invalid_field};
use super::validate::validate;
use super::{Grader, GraderError};

/// A loaded grader with where it came from and a hash of its exact bytes, so a report can say
/// which grader produced it.
#[derive(Debug, Clone)]
pub struct LoadedGrader {
    pub path: PathBuf,
    pub sha256: String,
    pub grader: Grader,
    /// The declared datasets, loaded and typed, by name.
    pub datasets: std::collections::BTreeMap<String, std::sync::Arc<crate::data::Dataset>>,
}

pub fn load(path: &Path) -> Result<LoadedGrader, GraderError> {
    let text = std::fs::read_to_string(path).map_err(|source| GraderError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut grader = parse(&text, path)?;
    resolve_body_files(&mut grader, &text, path)?;
    let datasets = load_datasets(&grader, &text, path)?;
    resolve_tensors(&mut grader, &datasets, &text, path)?;
    Ok(LoadedGrader {
        path: path.to_owned(),
        sha256: crate::digest::sha256_hex(text.as_bytes()),
        grader,
        datasets,
    })
}

/// Parses and validates grader text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Grader, GraderError> {
    let invalid = |span: Option<std::ops::Range<usize>>, field: String, message: String| {
        invalid_at(text, path, span, field, message)
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| invalid(e.span(), "(syntax)".into(), e.message().to_string()))?;
    let grader: Grader = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        invalid(inner.span(), field, inner.message().to_string())
    })?;
    validate(&grader).map_err(|(field, message)| {
        let span = find_field_span(text, &field);
        invalid(span, field, message)
    })?;
    Ok(grader)
}

/// With `[prediction.tensors]`, each feature's datatype, from the datasets' schema (the
/// datasets of one assignment share it).
fn resolve_tensors(
    g: &mut Grader,
    datasets: &std::collections::BTreeMap<String, std::sync::Arc<crate::data::Dataset>>,
    text: &str,
    path: &Path,
) -> Result<(), GraderError> {
    let Some(t) = g.prediction.as_mut().and_then(|p| p.tensors.as_mut()) else {
        return Ok(());
    };
    let Some(data) = datasets.values().next() else {
        return Err(invalid_field(
            text,
            path,
            "prediction.tensors".into(),
            "tensors are built from a schema: declare a [[dataset]]".into(),
        ));
    };
    t.resolve(&data.schema)
        .map_err(|m| invalid_field(text, path, "prediction.tensors.datatypes".into(), m))
}

/// Reads `body_file`s into `body`, relative to the grader file's directory.
fn resolve_body_files(g: &mut Grader, text: &str, path: &Path) -> Result<(), GraderError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    for (category, checks) in g.check_lists_mut() {
        for (i, c) in checks.iter_mut().enumerate() {
            let Some(file) = &c.body_file else { continue };
            let full = dir.join(file);
            match std::fs::read_to_string(&full) {
                Ok(body) => c.body = Some(body),
                Err(e) => {
                    return Err(invalid_field(
                        text,
                        path,
                        format!("{category}[{i}].body_file"),
                        format!("cannot read {}: {e}", full.display()),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Loads every `[[dataset]]` (paths relative to the grader file) and checks what refers to
/// them: names, labels, and the features drift scenarios shift.
fn load_datasets(
    g: &Grader,
    text: &str,
    path: &Path,
) -> Result<std::collections::BTreeMap<String, std::sync::Arc<crate::data::Dataset>>, GraderError> {
    use crate::data::{Dataset, Schema};
    let dir = path.parent().unwrap_or(Path::new("."));
    let invalid = |field: String, message: String| invalid_field(text, path, field, message);
    let mut out = std::collections::BTreeMap::new();
    for (i, d) in g.dataset.iter().enumerate() {
        let schema = Schema::load(&dir.join(&d.schema))
            .map_err(|m| invalid(format!("dataset[{i}].schema"), m))?;
        let data = Dataset::load(&d.name, &dir.join(&d.csv), schema)
            .map_err(|e| invalid(format!("dataset[{i}].csv"), e.to_string()))?;
        if out
            .insert(d.name.clone(), std::sync::Arc::new(data))
            .is_some()
        {
            return Err(invalid(
                format!("dataset[{i}].name"),
                format!("duplicate dataset name {:?}", d.name),
            ));
        }
    }
    let known = |field: &str, name: &str| -> Result<std::sync::Arc<Dataset>, GraderError> {
        out.get(name).cloned().ok_or_else(|| {
            invalid(
                field.to_string(),
                format!(
                    "no [[dataset]] named {name:?} (declared: {})",
                    out.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    };
    if let Some(p) = &g.probes {
        known("probes.dataset", &p.dataset)?;
    }
    if let Some(s) = g.lifecycle.as_ref().and_then(|l| l.shutdown.as_ref()) {
        let data = known("lifecycle.shutdown.dataset", &s.dataset)?;
        if data.rows.is_empty() {
            return Err(invalid(
                "lifecycle.shutdown.dataset".into(),
                format!("dataset {:?} has no rows", s.dataset),
            ));
        }
    }
    let needs_prediction = g.quality.is_some()
        || g.consistency.is_some()
        || g.drift.is_some()
        || g.metrics.is_some()
        || g.probes.is_some();
    if needs_prediction && g.prediction.is_none() {
        return Err(invalid("prediction".into(), "quality, consistency, drift, metrics and probes need a [prediction] section saying how to ask for predictions".into()));
    }
    if let Some(p) = &g.prediction {
        let mark = super::placeholder(p.tensors.is_some());
        if !p.body_template.contains(mark) {
            return Err(invalid(
                "prediction.body_template".into(),
                format!(
                    "must contain {mark} where the {} go",
                    if p.tensors.is_some() {
                        "input tensors"
                    } else {
                        "array of instances"
                    }
                ),
            ));
        }
        if p.tensors.is_none() && p.predictions.is_none() {
            return Err(invalid(
                "prediction.predictions".into(),
                "needs the JSON Pointer of the array of predictions in the response (or \
                 [prediction.tensors] to read output tensors)"
                    .into(),
            ));
        }
        if p.max_batch == 0 {
            return Err(invalid(
                "prediction.max_batch".into(),
                "must be at least 1".into(),
            ));
        }
    }
    if let Some(q) = &g.quality {
        for (field, name) in std::iter::once(("quality.dataset", &q.dataset)).chain(
            q.compare_dataset
                .as_ref()
                .map(|c| ("quality.compare_dataset", c)),
        ) {
            let data = known(field, name)?;
            if data.labels.is_none() {
                return Err(invalid(
                    field.into(),
                    format!("dataset {name:?} has no label column to score against"),
                ));
            }
            if q.complete_rows_only && !has_complete_row(&data) {
                return Err(invalid(
                    field.into(),
                    format!(
                        "dataset {name:?} has no row without a null, and quality.complete_rows_only scores complete rows only"
                    ),
                ));
            }
        }
        for (i, m) in q.metric.iter().enumerate() {
            if m.full_points_at == m.zero_points_at {
                return Err(invalid(
                    format!("quality.metric[{i}].zero_points_at"),
                    "must differ from full_points_at".into(),
                ));
            }
            if let Some((field, why)) = m.invalid() {
                return Err(invalid(format!("quality.metric[{i}].{field}"), why));
            }
        }
        for (i, m) in q.report.iter().enumerate() {
            if !m.from_scores() {
                return Err(invalid(
                    format!("quality.report[{i}]"),
                    format!(
                        "{} needs parameters: declare it as a [[quality.metric]]",
                        m.name()
                    ),
                ));
            }
        }
        let data = known("quality.dataset", &q.dataset)?;
        for (i, seg) in q.segment.iter().enumerate() {
            let Some((_, f)) = data.schema.feature(&seg.feature) else {
                return Err(invalid(
                    format!("quality.segment[{i}].feature"),
                    format!("the schema has no feature {:?}", seg.feature),
                ));
            };
            if seg.equals.is_none() == (seg.min.is_none() && seg.max.is_none()) {
                return Err(invalid(
                    format!("quality.segment[{i}]"),
                    "give either equals (a value) or min and/or max (a numeric band)".into(),
                ));
            }
            if seg.equals.is_none() && !f.kind.is_numeric() {
                return Err(invalid(
                    format!("quality.segment[{i}].feature"),
                    format!("{} is not numeric: select its rows with equals", f.name),
                ));
            }
            if q.segment[..i].iter().any(|s| s.name == seg.name) {
                return Err(invalid(
                    format!("quality.segment[{i}].name"),
                    format!("duplicate segment name {:?}", seg.name),
                ));
            }
        }
        if let Some(gap) = &q.segment_gap {
            if q.segment.is_empty() {
                return Err(invalid(
                    "quality.segment_gap".into(),
                    "needs at least one [[quality.segment]]".into(),
                ));
            }
            if !gap.metric.from_scores() {
                return Err(invalid(
                    "quality.segment_gap.metric".into(),
                    "must be a metric of the scores alone (auc, average_precision, log_loss, \
                     brier, ...)"
                        .into(),
                ));
            }
            if gap.full_points_at >= gap.zero_points_at {
                return Err(invalid(
                    "quality.segment_gap.zero_points_at".into(),
                    "must be above full_points_at: the curve falls as the gap grows".into(),
                ));
            }
        }
    }
    if let Some(c) = &g.consistency {
        let data = known("consistency.dataset", &c.dataset)?;
        if !has_complete_row(&data) {
            return Err(invalid(
                "consistency.dataset".into(),
                format!(
                    "dataset {:?} has no row without a null, and consistency sends complete rows only",
                    c.dataset
                ),
            ));
        }
    }
    if let Some(inv) = &g.invariants {
        let data = known("invariants.dataset", &inv.dataset)?;
        // Distinct rows in every batch: a repeated row would hide a batch that comes back
        // out of order.
        let complete = data
            .rows
            .iter()
            .filter(|r| r.iter().all(|v| !v.is_null()))
            .count();
        if complete < inv.batch_size {
            return Err(invalid(
                "invariants.dataset".into(),
                format!(
                    "dataset {:?} has {complete} rows without a null, fewer than \
                     invariants.batch_size ({}); invariants send batches of distinct complete rows",
                    inv.dataset, inv.batch_size
                ),
            ));
        }
    }
    if let Some(m) = &g.metrics {
        let data = known("metrics.dataset", &m.dataset)?;
        if !has_complete_row(&data) {
            return Err(invalid(
                "metrics.dataset".into(),
                format!(
                    "dataset {:?} has no row without a null, and monitoring sends complete rows only",
                    m.dataset
                ),
            ));
        }
        // Nothing sent, nothing to count: the checks would prove nothing.
        for (field, n) in [
            ("metrics.requests", m.requests),
            ("metrics.instances_per_request", m.instances_per_request),
        ] {
            if n == 0 {
                return Err(invalid(field.into(), "must be at least 1".into()));
            }
        }
    }
    if let Some(d) = &g.drift {
        let data = known("drift.dataset", &d.dataset)?;
        match &d.reference_dataset {
            Some(r) => {
                let reference = known("drift.reference_dataset", r)?;
                if reference.schema.features.len() != data.schema.features.len()
                    || reference
                        .schema
                        .features
                        .iter()
                        .zip(&data.schema.features)
                        .any(|(a, b)| a.name != b.name)
                {
                    return Err(invalid(
                        "drift.reference_dataset".into(),
                        format!(
                            "dataset {r:?} does not have the features of {:?}, in the same order",
                            d.dataset
                        ),
                    ));
                }
            }
            None if d.statistics.is_some() => {
                return Err(invalid(
                    "drift.reference_dataset".into(),
                    "[drift.statistics] compares with the data the service compares with: \
                     declare it, e.g. reference_dataset = \"train\""
                        .into(),
                ));
            }
            None => {}
        }
        if d.batch_size == 0 || d.poll_every == 0 || d.window == 0 {
            return Err(invalid(
                "drift.window".into(),
                "window, batch_size and poll_every must be at least 1".into(),
            ));
        }
        if !(0.0..1.0).contains(&d.max_false_alarm_rate) {
            return Err(invalid(
                "drift.max_false_alarm_rate".into(),
                format!(
                    "must be a share of polls in [0, 1), got {}",
                    d.max_false_alarm_rate
                ),
            ));
        }
        // The false-alarm curve must fall: full points up to max_false_alarm_rate, none from
        // false_alarm_zero_rate. Inverted, a silent detector would earn nothing.
        if !(d.false_alarm_zero_rate > d.max_false_alarm_rate && d.false_alarm_zero_rate <= 1.0) {
            let field = "drift.false_alarm_zero_rate";
            // A defaulted zero rate is not in the file: point at the rate it conflicts with.
            let declared = find_field_span(text, field);
            let given = if declared.is_some() {
                ""
            } else {
                " (the default)"
            };
            let span = declared.or_else(|| find_field_span(text, "drift.max_false_alarm_rate"));
            return Err(invalid_at(
                text,
                path,
                span,
                field.into(),
                format!(
                    "{}{given} must be above max_false_alarm_rate ({}) and at most 1: \
                     full points up to max_false_alarm_rate, none from false_alarm_zero_rate",
                    d.false_alarm_zero_rate, d.max_false_alarm_rate
                ),
            ));
        }
        if !(1..=10).contains(&d.replicates) {
            return Err(invalid_at(
                text,
                path,
                find_field_span(text, "drift.replicates"),
                "drift.replicates".into(),
                format!(
                    "must be between 1 and 10 (runs of every scenario), got {}",
                    d.replicates
                ),
            ));
        }
        if d.attribution_full_f1 <= d.attribution_zero_f1 || d.attribution_full_f1.is_nan() {
            return Err(invalid(
                "drift.attribution_zero_f1".into(),
                "must be below attribution_full_f1".into(),
            ));
        }
        if !d.feature_flag.contains("{feature}") {
            return Err(invalid(
                "drift.feature_flag".into(),
                "must contain {feature} where the feature name goes".into(),
            ));
        }
        for (i, sc) in d.scenario.iter().enumerate() {
            if sc.features.is_empty() {
                return Err(invalid(
                    format!("drift.scenario[{i}].features"),
                    "name at least one feature".into(),
                ));
            }
            for f in &sc.features {
                let Some((_, feature)) = data.schema.feature(f) else {
                    return Err(invalid(
                        format!("drift.scenario[{i}].features"),
                        format!("{f:?} is not a feature of dataset {:?}", d.dataset),
                    ));
                };
                sc.shift
                    .check_feature(feature)
                    .map_err(|m| invalid(format!("drift.scenario[{i}].kind"), m))?;
            }
        }
    }
    Ok(out)
}

/// Whether some row of `data` has no null: phases that send complete rows only need one.
fn has_complete_row(data: &crate::data::Dataset) -> bool {
    data.rows.iter().any(|r| r.iter().all(|v| !v.is_null()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grader::fixtures::{parse_str, MINIMAL};
    use crate::grader::Method;

    #[test]
    fn type_error_names_file_line_and_field() {
        let text =
            format!("{MINIMAL}\n[[correctness]]\nname = \"x\"\npoints = \"five\"\npath = \"/p\"\n");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.starts_with("g.toml:"), "{err}");
        assert!(err.contains("correctness[0].points"), "{err}");
        let line: usize = err.split(':').nth(1).unwrap().parse().unwrap();
        assert_eq!(
            text.lines().nth(line - 1).unwrap(),
            "points = \"five\"",
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_rejected_with_its_name() {
        let text = MINIMAL.replace("status = 200", "status = 200\ntimeout = 3");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("timeout"), "{err}");
        assert!(err.contains("g.toml:"), "{err}");
    }

    #[test]
    fn body_files_are_read_relative_to_the_grader_and_missing_ones_located() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.json"), "{\"instances\": []}").unwrap();
        let text = format!("{MINIMAL}\n[[robustness]]\nname = \"big\"\npoints = 1\npath = \"/p\"\nbody_file = \"big.json\"\n");
        let path = dir.path().join("g.toml");
        std::fs::write(&path, &text).unwrap();
        let g = load(&path).unwrap().grader;
        assert_eq!(g.robustness[0].body.as_deref(), Some("{\"instances\": []}"));
        assert_eq!(g.robustness[0].method(), Method::Post);

        std::fs::write(&path, text.replace("big.json", "nope.json")).unwrap();
        match load(&path).unwrap_err() {
            GraderError::Invalid {
                line,
                field,
                message,
                ..
            } => {
                assert_eq!(field, "robustness[0].body_file");
                assert_eq!(
                    text.lines().nth(line - 1).unwrap(),
                    "body_file = \"big.json\""
                );
                assert!(message.contains("nope.json"), "{message}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn missing_data_checks_get_their_body_files_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("nulls.json"),
            "{\"instances\": [{\"age\": null}]}",
        )
        .unwrap();
        let text = format!("{MINIMAL}\n[[missing_data]]\nname = \"nulls\"\npoints = 1\npath = \"/p\"\nbody_file = \"nulls.json\"\n");
        let path = dir.path().join("g.toml");
        std::fs::write(&path, &text).unwrap();
        let g = load(&path).unwrap().grader;
        assert_eq!(
            g.missing_data[0].body.as_deref(),
            Some("{\"instances\": [{\"age\": null}]}")
        );
        assert_eq!(g.missing_data[0].method(), Method::Post);

        let text = text.replace("nulls.json", "nope.json");
        std::fs::write(&path, &text).unwrap();
        match load(&path).unwrap_err() {
            GraderError::Invalid { line, field, .. } => {
                assert_eq!(field, "missing_data[0].body_file");
                assert_eq!(
                    text.lines().nth(line - 1).unwrap(),
                    "body_file = \"nope.json\""
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
}
