//! The contract's rules for a prediction request, read straight from an assignment contract of
//! the usual shape (`{"<key>": [instances]}`, every schema feature and nothing else, values by
//! the schema's type, bounds and nullability): a request is valid or it is not.
//!
//! Written apart from the generator and without its helpers, so that the generator's tests can
//! judge its cases by it (no "valid" case breaks the contract, no "invalid" case keeps it), and a
//! test service can answer strictly by it.

use serde_json::Value;

use crate::data::{FeatureKind, Schema};

/// Limits of one request beside the schema.
#[derive(Debug, Clone)]
pub struct RequestRules<'a> {
    /// The one top-level key, holding the instances.
    pub instances_key: &'a str,
    pub max_batch: usize,
    pub max_request_bytes: usize,
}

/// The number of instances of a valid request, or what makes it invalid.
pub fn check_request(
    schema: &Schema,
    rules: &RequestRules<'_>,
    body: &[u8],
) -> Result<usize, String> {
    if body.len() > rules.max_request_bytes {
        return Err(format!("body of {} bytes is over the cap", body.len()));
    }
    // serde_json refuses NaN, Infinity and invalid UTF-8, as the contract does.
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(top) = v else {
        return Err("not an object".into());
    };
    if top.len() != 1 {
        return Err(format!(
            "the body must hold exactly one key, {}",
            rules.instances_key
        ));
    }
    let Some(Value::Array(instances)) = top.get(rules.instances_key) else {
        return Err(format!(
            "{} is missing or not an array",
            rules.instances_key
        ));
    };
    if instances.is_empty() || instances.len() > rules.max_batch {
        return Err(format!("{} instances", instances.len()));
    }
    for (i, inst) in instances.iter().enumerate() {
        check_instance(schema, inst).map_err(|e| format!("instances[{i}]: {e}"))?;
    }
    Ok(instances.len())
}

/// The number of instances of a valid request in the tensor encoding (the Open Inference
/// Protocol's: `{"<key>": [tensors]}`, one tensor per schema feature and nothing else, each
/// `{"name", "shape": [N], "datatype", "data": [N values]}` with the feature's datatype, the
/// same N everywhere), or what makes it invalid. The values are then judged as instances.
pub fn check_tensor_request(
    schema: &Schema,
    rules: &RequestRules<'_>,
    datatypes: &std::collections::BTreeMap<String, String>,
    body: &[u8],
) -> Result<usize, String> {
    if body.len() > rules.max_request_bytes {
        return Err(format!("body of {} bytes is over the cap", body.len()));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(top) = v else {
        return Err("not an object".into());
    };
    if top.len() != 1 {
        return Err(format!(
            "the body must hold exactly one key, {}",
            rules.instances_key
        ));
    }
    let Some(Value::Array(tensors)) = top.get(rules.instances_key) else {
        return Err(format!(
            "{} is missing or not an array",
            rules.instances_key
        ));
    };
    let mut n = None;
    let mut columns: std::collections::BTreeMap<&str, &Vec<Value>> = Default::default();
    for t in tensors {
        let Value::Object(t) = t else {
            return Err("a tensor that is not an object".into());
        };
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a tensor without a name")?;
        let declared = t.get("datatype").and_then(Value::as_str).unwrap_or("");
        let expected = datatypes
            .get(name)
            .ok_or(format!("unknown tensor {name}"))?;
        if declared != expected {
            return Err(format!("{name}: datatype {declared}, not {expected}"));
        }
        let data = t
            .get("data")
            .and_then(Value::as_array)
            .ok_or(format!("{name}: no data"))?;
        let shape = t.get("shape").and_then(Value::as_array);
        if shape.map(|s| s.as_slice()) != Some(&[Value::from(data.len())][..]) {
            return Err(format!("{name}: shape {shape:?} for {} values", data.len()));
        }
        if *n.get_or_insert(data.len()) != data.len() {
            return Err(format!(
                "{name}: {} values, other tensors {n:?}",
                data.len()
            ));
        }
        if columns.insert(name, data).is_some() {
            return Err(format!("tensor {name} twice"));
        }
    }
    let n = n.unwrap_or(0);
    if n == 0 || n > rules.max_batch {
        return Err(format!("{n} instances"));
    }
    for i in 0..n {
        let inst: serde_json::Map<String, Value> = columns
            .iter()
            .map(|(k, v)| (k.to_string(), v[i].clone()))
            .collect();
        check_instance(schema, &Value::Object(inst)).map_err(|e| format!("instance {i}: {e}"))?;
    }
    Ok(n)
}

/// Whether one instance holds every feature, and nothing else, each with a valid value.
pub fn check_instance(schema: &Schema, inst: &Value) -> Result<(), String> {
    let Value::Object(fields) = inst else {
        return Err("not an object".into());
    };
    if let Some(k) = fields
        .keys()
        .find(|k| !schema.features.iter().any(|f| &f.name == *k))
    {
        return Err(format!("unknown feature {k}"));
    }
    for f in &schema.features {
        let Some(v) = fields.get(&f.name) else {
            return Err(format!("{} is missing", f.name));
        };
        if v.is_null() {
            if f.nullable {
                continue;
            }
            return Err(format!("{} is null", f.name));
        }
        let ok = match f.kind {
            FeatureKind::Boolean => v.is_boolean(),
            FeatureKind::Categorical => v.as_str().is_some_and(|s| {
                let n = s.chars().count();
                n >= 1 && schema.categorical_max_length.is_none_or(|max| n <= max)
            }),
            FeatureKind::Number | FeatureKind::Integer => match v.as_f64() {
                Some(x) if v.is_number() => {
                    x.is_finite()
                        && (f.kind == FeatureKind::Number || x.fract() == 0.0)
                        && f.min.is_none_or(|m| x >= m)
                        && f.max.is_none_or(|m| x <= m)
                }
                _ => false,
            },
        };
        if !ok {
            return Err(format!("{}: invalid value {v}", f.name));
        }
    }
    Ok(())
}
