//! Generation against the churn assignment's schema and validation rows, each case judged by
//! `probe::contract` (an independent reading of the contract's rules).

use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use crate::data::Dataset;
use crate::probe::contract::{check_request, check_tensor_request, RequestRules};

const TEMPLATE: &str = r#"{"instances": $INSTANCES}"#;

fn churn() -> Dataset {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assignments/churn");
    let schema = Schema::load(&dir.join("schema.json")).unwrap();
    Dataset::load("validation", &dir.join("data/validation.csv"), schema).unwrap()
}

fn envelope() -> Envelope<'static> {
    Envelope {
        body_template: TEMPLATE,
        mark: "$INSTANCES",
        max_batch: 256,
        max_request_bytes: 1 << 20,
        tensors: None,
    }
}

fn cases(data: &Dataset, seed: u64) -> Vec<Case> {
    let base = base_rows(
        &data.schema,
        &data.rows,
        8,
        &mut crate::data::rng(seed, "probes"),
    );
    generate(&data.schema, &base, &envelope())
}

/// The classes that apply to a feature, from the schema alone.
fn applicable(f: &Feature) -> Vec<Class> {
    use Class::*;
    let mut out = vec![];
    match f.kind {
        FeatureKind::Number | FeatureKind::Integer => {
            out.extend([
                NumberAsString,
                NumberAsBool,
                StringForNumber,
                NanLiteral,
                InfinityLiteral,
            ]);
            if f.min.is_some() {
                out.extend([BelowMin, BoundExact]);
            }
            if f.max.is_some() {
                out.extend([AboveMax, BoundExact]);
            }
            if f.kind == FeatureKind::Integer {
                out.extend([FractionalInteger, IntegerAsFloat]);
            }
        }
        FeatureKind::Boolean => out.extend([BoolAsNumber, BoolAsString]),
        FeatureKind::Categorical => out.extend([
            NonStringCategory,
            EmptyCategory,
            OverlongCategory,
            UnseenCategory,
        ]),
    }
    out.push(if f.nullable {
        MissingNullableKey
    } else {
        NullInRequired
    });
    if !f.nullable {
        out.push(MissingKey);
    }
    out
}

#[test]
fn every_class_appears_for_every_feature_it_applies_to() {
    let data = churn();
    let cs = cases(&data, 1);
    let got: BTreeSet<(Class, Option<String>)> =
        cs.iter().map(|c| (c.class, c.feature.clone())).collect();
    let mut expected = BTreeSet::new();
    for f in &data.schema.features {
        for class in applicable(f) {
            expected.insert((class, Some(f.name.clone())));
        }
    }
    use Class::*;
    for class in [
        UnknownKey,
        AllNullableNull,
        NotAnObject,
        InstancesMissing,
        InstancesNotArray,
        EmptyBatch,
        BatchOverLimit,
        InstanceNotObject,
        UnknownTopLevelKey,
        InvalidUtf8,
        BodyOverCap,
        LargestBatch,
    ] {
        expected.insert((class, None));
    }
    assert_eq!(got, expected);
    // Every class of the enum but the tensors' is produced for this schema (it has every kind
    // of feature).
    let classes: BTreeSet<Class> = cs.iter().map(|c| c.class).collect();
    let rows = Class::ALL.iter().filter(|c| !c.tensors_only()).count();
    assert_eq!(classes.len(), rows);
}

#[test]
fn valid_cases_keep_the_contract_and_invalid_ones_break_it() {
    let data = churn();
    let rules = RequestRules {
        instances_key: "instances",
        max_batch: 256,
        max_request_bytes: 1 << 20,
    };
    for seed in 1..4 {
        for c in cases(&data, seed) {
            let verdict = check_request(&data.schema, &rules, &c.body);
            let excerpt = String::from_utf8_lossy(&c.body[..c.body.len().min(400)]).into_owned();
            match c.expected {
                Expected::Accepted { instances } => assert_eq!(
                    verdict,
                    Ok(instances),
                    "{:?} on {:?} should be valid: {excerpt}",
                    c.class,
                    c.feature
                ),
                Expected::Rejected => assert!(
                    verdict.is_err(),
                    "{:?} on {:?} should be invalid: {excerpt}",
                    c.class,
                    c.feature
                ),
            }
        }
    }
}

#[test]
fn the_contract_rules_accept_the_dataset_rows_and_refuse_a_coerced_value() {
    // The judge of the tests above judges right: the assignment's own examples.
    let data = churn();
    let rules = RequestRules {
        instances_key: "instances",
        max_batch: 256,
        max_request_bytes: 1 << 20,
    };
    let ok = br#"{"instances": [{"tenure_months": 3, "monthly_charges": 91.66, "total_charges": null, "contract": "month-to-month", "payment_method": "credit-card", "internet_service": "fiber-optic", "support_calls": 4, "has_partner": false, "age": 50, "days_since_last_login": null}]}"#;
    assert_eq!(check_request(&data.schema, &rules, ok), Ok(1));
    let text = std::str::from_utf8(ok).unwrap();
    for (from, to) in [
        ("\"tenure_months\": 3", "\"tenure_months\": \"3\""),
        ("\"tenure_months\": 3", "\"tenure_months\": 3.5"),
        ("\"has_partner\": false", "\"has_partner\": 0"),
        ("\"age\": 50, ", ""),
        ("\"contract\": \"month-to-month\"", "\"contract\": \"\""),
    ] {
        let bad = text.replace(from, to);
        assert!(
            check_request(&data.schema, &rules, bad.as_bytes()).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        check_request(
            &data.schema,
            &rules,
            text.replace(": 3,", ": 3.0,").as_bytes()
        ),
        Ok(1)
    );
}

#[test]
fn bounds_are_probed_just_outside_and_exactly() {
    let data = churn();
    let cs = cases(&data, 1);
    let values = |class: Class, feature: &str| -> Vec<String> {
        cs.iter()
            .filter(|c| c.class == class && c.feature.as_deref() == Some(feature))
            .filter_map(|c| {
                // The case alone (the same value also goes inside a valid batch).
                let v: Value = serde_json::from_slice(&c.body).unwrap();
                (v["instances"].as_array().unwrap().len() == 1)
                    .then(|| v["instances"][0][feature].to_string())
            })
            .collect()
    };
    assert_eq!(values(Class::BelowMin, "tenure_months"), ["-1"]);
    assert_eq!(values(Class::AboveMax, "tenure_months"), ["121"]);
    assert_eq!(values(Class::AboveMax, "monthly_charges"), ["500.0005"]);
    assert_eq!(values(Class::BoundExact, "age"), ["18", "120"]);
    assert_eq!(values(Class::IntegerAsFloat, "support_calls").len(), 1);
}

#[test]
fn the_same_seed_gives_the_same_cases_and_another_seed_other_rows() {
    let data = churn();
    assert_eq!(cases(&data, 7), cases(&data, 7));
    let (a, b) = (cases(&data, 7), cases(&data, 8));
    assert_eq!(a.len(), b.len(), "the classes do not depend on the seed");
    let differ = a.iter().zip(&b).filter(|(x, y)| x.body != y.body).count();
    assert!(
        differ > a.len() / 2,
        "only {differ} of {} bodies differ",
        a.len()
    );
}

#[test]
fn a_sample_keeps_every_class_and_its_size() {
    let data = churn();
    let all = cases(&data, 1);
    assert!(
        all.len() > 150,
        "{} cases: the sample would be the whole set",
        all.len()
    );
    let pick = |seed| {
        sample(
            all.clone(),
            150,
            &mut crate::data::rng(seed, "probes-sample"),
        )
    };
    let s = pick(1);
    assert_eq!(s.len(), 150);
    let classes: BTreeSet<Class> = s.iter().map(|c| c.class).collect();
    let rows = Class::ALL.iter().filter(|c| !c.tensors_only()).count();
    assert_eq!(classes.len(), rows);
    assert_eq!(s, pick(1));
    assert_ne!(s, pick(2));
    // Within a class the features take turns: a class sampled down still spans features.
    let batch: BTreeSet<_> = s
        .iter()
        .filter(|c| c.class == Class::NumberAsString)
        .map(|c| c.feature.clone())
        .collect();
    assert!(batch.len() >= 3, "{batch:?}");
    // Fewer cases than classes: one of each all the same.
    assert_eq!(
        sample(all.clone(), 5, &mut crate::data::rng(1, "s")).len(),
        rows
    );
    // Everything when it fits.
    assert_eq!(
        sample(all.clone(), 10_000, &mut crate::data::rng(1, "s")),
        all
    );
}

/// The tensor datatype of each feature, as a grader's `[prediction.tensors]` declares it.
fn datatypes(schema: &Schema) -> BTreeMap<String, String> {
    schema
        .features
        .iter()
        .map(|f| {
            let d = match f.kind {
                FeatureKind::Number => "FP32",
                FeatureKind::Integer => "INT64",
                FeatureKind::Categorical => "BYTES",
                FeatureKind::Boolean => "BOOL",
            };
            (f.name.clone(), d.to_string())
        })
        .collect()
}

#[test]
fn tensor_cases_keep_the_contract_when_valid_and_break_it_when_not() {
    // The same schema as the instance cases, sent the Open Inference Protocol's way.
    let data = churn();
    let types = datatypes(&data.schema);
    let env = Envelope {
        body_template: r#"{"inputs": $TENSORS}"#,
        mark: "$TENSORS",
        max_batch: 512,
        max_request_bytes: 1 << 20,
        tensors: Some(&types),
    };
    let rules = RequestRules {
        instances_key: "inputs",
        max_batch: 512,
        max_request_bytes: 1 << 20,
    };
    for seed in 1..4 {
        let base = base_rows(
            &data.schema,
            &data.rows,
            8,
            &mut crate::data::rng(seed, "p"),
        );
        let cases = generate(&data.schema, &base, &env);
        let classes: BTreeSet<Class> = cases.iter().map(|c| c.class).collect();
        for class in [
            Class::WrongDatatype,
            Class::ShapeMismatch,
            Class::LargestBatch,
        ] {
            assert!(classes.contains(&class), "{class:?} missing");
        }
        for c in &cases {
            let verdict = check_tensor_request(&data.schema, &rules, &types, &c.body);
            match c.expected {
                Expected::Accepted { instances } => assert_eq!(
                    verdict,
                    Ok(instances),
                    "{:?} on {:?}: {}",
                    c.class,
                    c.feature,
                    String::from_utf8_lossy(&c.body)
                ),
                Expected::Rejected => assert!(
                    verdict.is_err(),
                    "{:?} on {:?} keeps the contract: {}",
                    c.class,
                    c.feature,
                    String::from_utf8_lossy(&c.body)
                ),
            }
        }
    }
}
