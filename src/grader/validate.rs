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
    validate_production(g)?;
    super::grade::validate(&g.grade, &g.prerequisite)?;
    Ok(())
}

/// `[lifecycle]`, `[cost]`, `[tests]` and `[review]`: curves that fall, and what each needs.
fn validate_production(g: &Grader) -> Result<(), (String, String)> {
    use super::LowerIsBetter;
    let curve = |field: &str, c: &Option<LowerIsBetter>| match c.as_ref().and_then(|c| c.invalid())
    {
        Some(m) => Err((field.to_string(), m)),
        None => Ok(()),
    };
    if let Some(l) = &g.lifecycle {
        curve("lifecycle.cold_start", &l.cold_start)?;
        if let Some(s) = &l.shutdown {
            if s.connections == 0 || s.connections > 64 {
                return Err((
                    "lifecycle.shutdown.connections".into(),
                    "must be 1 to 64".into(),
                ));
            }
            for (field, v, max) in [
                ("lifecycle.shutdown.load_secs", s.load_secs, 60.0),
                ("lifecycle.shutdown.grace_secs", s.grace_secs, 300.0),
            ] {
                if !(v > 0.0 && v <= max) {
                    return Err((field.into(), format!("must be above 0 and at most {max}")));
                }
            }
            if g.prediction.is_none() {
                return Err((
                    "lifecycle.shutdown".into(),
                    "needs a [prediction] section: its load is batches of the largest size the \
                     prediction API allows"
                        .into(),
                ));
            }
        }
        if l.cold_start.is_none() && l.shutdown.is_none() && l.restart.is_none() {
            return Err((
                "lifecycle".into(),
                "declares nothing: give cold_start, [lifecycle.shutdown] or [lifecycle.restart]"
                    .into(),
            ));
        }
        if l.restart.is_some() && l.shutdown.is_none() {
            return Err((
                "lifecycle.restart".into(),
                "needs [lifecycle.shutdown]: the service is restarted after it was stopped".into(),
            ));
        }
    }
    if let Some(c) = &g.cost {
        for (field, v) in [
            ("cost.cpu_ms_per_1000", &c.cpu_ms_per_1000),
            ("cost.cpu_vs_reference", &c.cpu_vs_reference),
            (
                "cost.memory_growth_mb_per_1000",
                &c.memory_growth_mb_per_1000,
            ),
            ("cost.peak_memory_mb", &c.peak_memory_mb),
            ("cost.startup_memory_mb", &c.startup_memory_mb),
            ("cost.steady_memory_mb", &c.steady_memory_mb),
            ("cost.image_mb", &c.image_mb),
        ] {
            curve(field, v)?;
        }
        if let (Some(a), Some(r)) = (&c.cpu_ms_per_1000, &c.cpu_vs_reference) {
            if a.points != r.points {
                return Err((
                    "cost.cpu_vs_reference.points".into(),
                    format!(
                        "must equal cost.cpu_ms_per_1000.points ({}): the two curves grade one \
                         check, the second when the reference was measured in the run",
                        a.points.0
                    ),
                ));
            }
        }
        if c.calibrate && c.cpu_ms_per_1000.is_none() {
            return Err((
                "cost.calibrate".into(),
                "grades cpu_ms_per_1000 at the standard speed: declare that curve too".into(),
            ));
        }
        if !(3..=60).contains(&c.pairs) {
            return Err(("cost.pairs".into(), "must be 3 to 60".into()));
        }
        if !(0.2..=10.0).contains(&c.window_secs) {
            return Err((
                "cost.window_secs".into(),
                "must be 0.2 to 10 seconds".into(),
            ));
        }
        let per_load = c.cpu_ms_per_1000.is_some()
            || c.cpu_vs_reference.is_some()
            || c.memory_growth_mb_per_1000.is_some()
            || c.steady_memory_mb.is_some();
        if per_load && g.latency.is_none() {
            return Err((
                "cost".into(),
                "CPU per prediction and memory over the load are measured during the latency \
                 phase's load: declare [latency]"
                    .into(),
            ));
        }
    }
    if let Some(t) = &g.tests {
        if t.command.is_empty() || t.command[0].trim().is_empty() {
            return Err(("tests.command".into(), "needs a program to run".into()));
        }
        if !t.junit.starts_with("/tmp/") {
            return Err((
                "tests.junit".into(),
                "must be a file under /tmp/: the rest of the container is read-only".into(),
            ));
        }
        if t.timeout_secs == 0 || t.timeout_secs > 3600 {
            return Err(("tests.timeout_secs".into(), "must be 1 to 3600".into()));
        }
        let curve_rises = (0.0..1.0).contains(&t.zero_pass_share)
            && t.zero_pass_share < t.full_pass_share
            && t.full_pass_share <= 1.0;
        if !curve_rises {
            return Err((
                "tests.full_pass_share".into(),
                "need 0 <= zero_pass_share < full_pass_share <= 1".into(),
            ));
        }
        if t.full_count == 0 {
            return Err(("tests.full_count".into(), "must be at least 1".into()));
        }
    }
    if let Some(r) = &g.review {
        if let Some(l) = &r.lint {
            curve("review.lint.per_1000_lines", &Some(l.per_1000_lines))?;
            if !(40..=1000).contains(&l.max_line_length) {
                return Err((
                    "review.lint.max_line_length".into(),
                    "must be 40 to 1000".into(),
                ));
            }
        }
        if let Some(h) = &r.history {
            if h.max_commits == 0 || h.max_commits > 10_000 {
                return Err((
                    "review.history.max_commits".into(),
                    "must be 1 to 10000".into(),
                ));
            }
        }
    }
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
    fn calibrating_needs_the_absolute_curve_it_grades() {
        let latency = "[latency]\npath = \"/\"\nrate = 50\nduration_secs = 10.0\n";
        let text = format!(
            "{MINIMAL}\n{latency}[cost]\ncpu_vs_reference = {{ full = 1.5, zero = 4, points = 2 }}\ncalibrate = true\n"
        );
        match parse_str(&text).unwrap_err() {
            GraderError::Invalid { field, line, .. } => {
                assert_eq!(field, "cost.calibrate");
                assert_eq!(text.lines().nth(line - 1).unwrap(), "calibrate = true");
            }
            other => panic!("unexpected {other}"),
        }
        let text = text.replace(
            "calibrate",
            "cpu_ms_per_1000 = { full = 1, zero = 9, points = 2 }\ncalibrate",
        );
        assert!(parse_str(&text).unwrap().cost.unwrap().calibrate);
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
