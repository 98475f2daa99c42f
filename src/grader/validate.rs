//! Rules of a grader file that span several fields, checked once the types are right.

use std::collections::BTreeSet;

use super::{DriftStatisticsSpec, Grader, MetricsSpec, AUTO_CPUSET};

/// Rules that span several fields, checked after the types are right.
pub(super) fn validate(g: &Grader) -> Result<(), (String, String)> {
    if g.submission.allowed_base_images.is_empty() {
        return Err((
            "submission.allowed_base_images".into(),
            "list at least one base image a submission may build FROM".into(),
        ));
    }
    if g.sandbox.cpus <= 0.0 || !g.sandbox.cpus.is_finite() {
        return Err((
            "sandbox.cpus".into(),
            "must be a positive number of CPUs".into(),
        ));
    }
    if let Some(c) = g.sandbox.cpuset.as_deref().filter(|c| *c != AUTO_CPUSET) {
        if let Err(e) = crate::load::sys::parse_cpuset(c) {
            return Err((
                "sandbox.cpuset".into(),
                format!("{e} (or \"{AUTO_CPUSET}\" to split the cores with the load generator)"),
            ));
        }
    }
    let sub = &g.submission;
    if !(16..=2047).contains(&sub.build_memory_mb) {
        return Err((
            "submission.build_memory_mb".into(),
            "must be between 16 and 2047 MB (the engine's build API takes a 32-bit byte count)"
                .into(),
        ));
    }
    if sub.build_pids_limit < 16 {
        return Err((
            "submission.build_pids_limit".into(),
            "must be at least 16".into(),
        ));
    }
    if sub.max_build_output_mb == 0 || sub.max_image_mb == 0 {
        let field = if sub.max_image_mb == 0 {
            "max_image_mb"
        } else {
            "max_build_output_mb"
        };
        return Err((format!("submission.{field}"), "must be at least 1".into()));
    }
    if g.sandbox.memory_mb < 16 {
        return Err(("sandbox.memory_mb".into(), "must be at least 16 MB".into()));
    }
    if g.sandbox.pids_limit < 8 {
        return Err(("sandbox.pids_limit".into(), "must be at least 8".into()));
    }
    let mut names = BTreeSet::new();
    for (category, checks) in g.check_lists() {
        for (i, c) in checks.iter().enumerate() {
            let field = format!("{category}[{i}].name");
            if c.name.trim().is_empty() {
                return Err((field, "a check needs a non-empty name".into()));
            }
            if !names.insert(c.name.clone()) {
                return Err((field, format!("duplicate check name {:?}", c.name)));
            }
            c.expect()
                .validate()
                .map_err(|m| (format!("{category}[{i}]"), m))?;
        }
    }
    g.readiness
        .expect()
        .validate()
        .map_err(|m| ("readiness".to_string(), m))?;
    if let Some(l) = &g.latency {
        l.validate()?;
    }
    if let Some(p) = &g.probes {
        p.validate()?;
    }
    if let Some(i) = &g.invariants {
        i.validate(g.prediction.as_ref())?;
    }
    if let Some(m) = &g.metrics {
        validate_metrics(m)?;
    }
    if let Some(s) = g.drift.as_ref().and_then(|d| d.statistics.as_ref()) {
        validate_drift_statistics(s)?;
    }
    super::grade::validate(&g.grade, &g.prerequisite)?;
    Ok(())
}

fn validate_metrics(m: &MetricsSpec) -> Result<(), (String, String)> {
    if let Some(sizes) = &m.batch_sizes {
        if sizes.is_empty() || sizes.contains(&0) {
            return Err((
                "metrics.batch_sizes".into(),
                "list at least one batch size, each at least 1".into(),
            ));
        }
    }
    let window = [
        ("metrics.drift_path", m.drift_path.is_some()),
        ("metrics.instances_seen", m.instances_seen.is_some()),
        ("metrics.window_points", m.window_points.is_some()),
    ];
    if window.iter().any(|(_, given)| *given) {
        if let Some((field, _)) = window.iter().find(|(_, given)| !*given) {
            return Err((
                (*field).into(),
                "the drift window check needs drift_path, instances_seen and window_points \
                 together"
                    .into(),
            ));
        }
    }
    if let Some(p) = &m.instances_seen {
        if !p.starts_with('/') {
            return Err((
                "metrics.instances_seen".into(),
                format!("{p:?} is not a JSON Pointer: it must start with '/'"),
            ));
        }
    }
    Ok(())
}

/// The schema types a `[drift.statistics] methods` table may name.
pub const FEATURE_TYPES: [&str; 4] = ["number", "integer", "categorical", "boolean"];

fn validate_drift_statistics(s: &DriftStatisticsSpec) -> Result<(), (String, String)> {
    if s.methods.is_empty() {
        return Err((
            "drift.statistics.methods".into(),
            "name the method of at least one feature type, e.g. { number = \"ks\" }".into(),
        ));
    }
    if let Some(k) = s
        .methods
        .keys()
        .find(|k| !FEATURE_TYPES.contains(&k.as_str()))
    {
        return Err((
            "drift.statistics.methods".into(),
            format!(
                "{k:?} is not a feature type (one of {})",
                FEATURE_TYPES.join(", ")
            ),
        ));
    }
    for (field, v) in [
        ("statistic_tolerance", s.statistic_tolerance),
        ("chi2_tolerance", s.chi2_tolerance),
        ("chi2_relative_tolerance", s.chi2_relative_tolerance),
        ("p_value_tolerance", s.p_value_tolerance),
    ] {
        if !(v >= 0.0 && v.is_finite()) {
            return Err((
                format!("drift.statistics.{field}"),
                format!("must be a finite number at least 0, got {v}"),
            ));
        }
    }
    if !(s.p_value_floor > 0.0 && s.p_value_floor < 1.0) {
        return Err((
            "drift.statistics.p_value_floor".into(),
            format!("must be in (0, 1), got {}", s.p_value_floor),
        ));
    }
    if s.min_reference_sample == 0 {
        return Err((
            "drift.statistics.min_reference_sample".into(),
            "must be at least 1".into(),
        ));
    }
    if !(s.full_agreement > s.zero_agreement
        && (0.0..=1.0).contains(&s.full_agreement)
        && (0.0..=1.0).contains(&s.zero_agreement))
    {
        return Err((
            "drift.statistics.zero_agreement".into(),
            format!(
                "must be below full_agreement ({}), both shares in [0, 1]",
                s.full_agreement
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::grader::fixtures::{parse_str, MINIMAL};
    use crate::grader::GraderError;

    #[test]
    fn duplicate_check_names_point_at_the_second() {
        let text = format!(
            "{MINIMAL}\n[[correctness]]\nname = \"same\"\npoints = 1\npath = \"/p\"\n\n[[correctness]]\nname = \"same\"\npoints = 1\npath = \"/p\"\n"
        );
        let err = parse_str(&text).unwrap_err();
        match err {
            GraderError::Invalid { line, field, .. } => {
                assert_eq!(field, "correctness[1].name");
                assert_eq!(text.lines().nth(line - 1).unwrap(), "name = \"same\"");
                assert!(line > 15, "should point at the second one, got line {line}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn latency_curve_must_fall() {
        let text = format!(
            "{MINIMAL}\n[latency]\npath = \"/\"\nrate = 10\nduration_secs = 1\n[[latency.objective]]\npercentile = 99\nfull_points_ms = 50\nzero_points_ms = 10\npoints = 1\n"
        );
        let err = parse_str(&text).unwrap_err();
        match err {
            GraderError::Invalid { field, line, .. } => {
                assert_eq!(field, "latency.objective[0].zero_points_ms");
                assert_eq!(text.lines().nth(line - 1).unwrap(), "zero_points_ms = 10");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn empty_allowlist_is_rejected() {
        let err = parse_str(&MINIMAL.replace("[\"base:1\"]", "[]")).unwrap_err();
        assert!(err.to_string().contains("allowed_base_images"), "{err}");
    }

    #[test]
    fn missing_data_checks_are_validated_like_the_others() {
        // A name already taken in another list.
        let text = format!(
            "{MINIMAL}\n[[correctness]]\nname = \"same\"\npoints = 1\npath = \"/p\"\n\n[[missing_data]]\nname = \"other\"\npoints = 1\npath = \"/p\"\n\n[[missing_data]]\nname = \"same\"\npoints = 1\npath = \"/p\"\n"
        );
        match parse_str(&text).unwrap_err() {
            GraderError::Invalid {
                line,
                field,
                message,
                ..
            } => {
                assert_eq!(field, "missing_data[1].name");
                assert!(message.contains("duplicate check name"), "{message}");
                assert_eq!(text.lines().nth(line - 1).unwrap(), "name = \"same\"");
                assert!(line > 20, "should point at the second one, got line {line}");
            }
            other => panic!("unexpected {other}"),
        }

        // An empty name, and an expectation that cannot be checked.
        let check = "[[missing_data]]\nname = \" \"\npoints = 1\npath = \"/p\"\n";
        let err = parse_str(&format!("{MINIMAL}\n{check}")).unwrap_err();
        assert!(err.to_string().contains("missing_data[0].name"), "{err}");
        let check = check.replace("\" \"", "\"nulls\"");
        let text = format!("{MINIMAL}\n{check}[[missing_data.json]]\npointer = \"score\"\n");
        match parse_str(&text).unwrap_err() {
            GraderError::Invalid { field, message, .. } => {
                assert_eq!(field, "missing_data[0]");
                assert!(
                    message.contains("must be empty or start with '/'"),
                    "{message}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
}
