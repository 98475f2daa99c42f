//! The cases of a schema: every class for every feature it applies to, each invalid instance
//! also hidden in an otherwise valid batch, the invalid envelopes, and the valid edge cases;
//! and the seeded sample of them that one run sends when they are too many.
//!
//! Instances are built as ordered lists of (key, raw value bytes), so that a case can hold a
//! value no JSON library writes (`NaN`, invalid UTF-8) and still keep every other feature valid:
//! each case has exactly one defect.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use serde_json::Value;

use super::{Case, Class, Expected};
use crate::data::{Feature, FeatureKind, Schema};

/// How a prediction request is framed, from the grader's `[prediction]`, and the request size
/// the service must refuse.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// The body with `mark` where the batch goes.
    pub body_template: &'a str,
    /// `$INSTANCES` (where the array of instances goes), or `$TENSORS` (the input tensors).
    pub mark: &'a str,
    /// Most instances per request.
    pub max_batch: usize,
    /// A body longer than this must be refused.
    pub max_request_bytes: usize,
    /// With the tensor encoding (`[prediction.tensors]`): each feature's tensor datatype. The
    /// same defects are sent in the tensors of a batch, a feature's values in its `data`.
    pub tensors: Option<&'a BTreeMap<String, String>>,
}

/// Key of the unknown feature (and of the unknown top-level key): no schema uses it.
const UNKNOWN_KEY: &str = "proctor_unknown_key";

/// One instance: keys in schema order, each with its raw JSON value.
type Instance = Vec<(String, Vec<u8>)>;

/// Up to `n` distinct rows of `rows` that are valid instances of `schema` (no null in a
/// required feature, numbers within bounds), drawn with `rng`.
pub fn base_rows(
    schema: &Schema,
    rows: &[Vec<Value>],
    n: usize,
    rng: &mut impl rand::Rng,
) -> Vec<Vec<Value>> {
    let mut usable: Vec<&Vec<Value>> = rows
        .iter()
        .filter(|r| {
            schema
                .features
                .iter()
                .zip(r.iter())
                .all(|(f, v)| fits(f, v))
        })
        .collect();
    usable.shuffle(rng);
    usable.into_iter().take(n).cloned().collect()
}

/// Whether a dataset value is a valid value of `f` (the base rows must be valid).
fn fits(f: &Feature, v: &Value) -> bool {
    match (v, f.kind) {
        (Value::Null, _) => f.nullable,
        (Value::Number(n), FeatureKind::Number | FeatureKind::Integer) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            x.is_finite()
                && (f.kind == FeatureKind::Number || x.fract() == 0.0)
                && f.min.is_none_or(|m| x >= m)
                && f.max.is_none_or(|m| x <= m)
        }
        (Value::Bool(_), FeatureKind::Boolean) => true,
        (Value::String(s), FeatureKind::Categorical) => !s.is_empty(),
        _ => false,
    }
}

/// Every case of `schema` on the `base` rows (valid rows, in schema order), in class order.
/// Empty when there is no base row.
pub fn generate(schema: &Schema, base: &[Vec<Value>], env: &Envelope<'_>) -> Vec<Case> {
    if base.is_empty() {
        return Vec::new();
    }
    let g = Gen { schema, base, env };
    let mut out = Vec::new();
    let mut bad_instances: Vec<(Class, Option<String>, Instance)> = Vec::new();
    for (i, f) in schema.features.iter().enumerate() {
        for (class, inst) in g.feature_cases(i, f) {
            if class.is_valid_input() {
                out.push(g.case(class, Some(&f.name), vec![inst]));
            } else {
                bad_instances.push((class, Some(f.name.clone()), inst));
            }
        }
    }
    // Instance-level defects and edge cases.
    let mut unknown = g.instance(0);
    unknown.push((json_str(UNKNOWN_KEY), b"1".to_vec()));
    bad_instances.push((Class::UnknownKey, None, unknown));
    if schema.features.iter().any(|f| f.nullable) {
        let mut all_null = g.instance(1);
        for (f, (_, v)) in schema.features.iter().zip(all_null.iter_mut()) {
            if f.nullable {
                *v = b"null".to_vec();
            }
        }
        out.push(g.case(Class::AllNullableNull, None, vec![all_null]));
    }
    // Each bad instance alone, and once more among valid ones: the whole batch must be refused.
    let batch = env.max_batch.min(3);
    for (n, (class, feature, inst)) in bad_instances.into_iter().enumerate() {
        out.push(g.case(class, feature.as_deref(), vec![inst.clone()]));
        if batch >= 2 {
            let mut instances: Vec<Instance> =
                (0..batch - 1).map(|k| g.instance(n + k + 1)).collect();
            instances.insert(n % batch, inst);
            out.push(g.raw_case(
                class,
                feature.as_deref(),
                g.body(&g.batch(&instances)),
                Expected::Rejected,
            ));
        }
    }
    if env.tensors.is_some() {
        out.extend(g.tensor_cases());
    }
    out.extend(g.envelope_cases());
    out.sort_by_key(|c| c.class);
    out
}

struct Gen<'a> {
    schema: &'a Schema,
    base: &'a [Vec<Value>],
    env: &'a Envelope<'a>,
}

impl Gen<'_> {
    /// Base row `n` (cycling) as an instance.
    fn instance(&self, n: usize) -> Instance {
        let row = &self.base[n % self.base.len()];
        self.schema
            .features
            .iter()
            .zip(row)
            .map(|(f, v)| (json_str(&f.name), serde_json::to_vec(v).expect("a value")))
            .collect()
    }

    /// The request holding `batch` (the array of instances, or of input tensors), framed by
    /// the template.
    fn body(&self, batch: &[u8]) -> Vec<u8> {
        let mark = self.env.mark;
        let (before, after) = self.env.body_template.split_once(mark).unwrap_or(("", ""));
        [before.as_bytes(), batch, after.as_bytes()].concat()
    }

    /// `instances` as the envelope sends them: an array of objects, or of tensors.
    fn batch(&self, instances: &[Instance]) -> Vec<u8> {
        match self.env.tensors {
            None => array(&instances.iter().map(encode).collect::<Vec<_>>()),
            Some(types) => array(&tensors(instances, types, &TensorFlaw::None)),
        }
    }

    fn case(&self, class: Class, feature: Option<&str>, instances: Vec<Instance>) -> Case {
        let n = instances.len();
        let expected = if class.is_valid_input() {
            Expected::Accepted { instances: n }
        } else {
            Expected::Rejected
        };
        self.raw_case(class, feature, self.body(&self.batch(&instances)), expected)
    }

    /// The defects only tensors can have, for each feature: a tensor that declares another
    /// datatype than the feature's, and one whose shape does not match its data.
    fn tensor_cases(&self) -> Vec<Case> {
        let Some(types) = self.env.tensors else {
            return Vec::new();
        };
        let n = self.env.max_batch.min(3);
        let mut out = Vec::new();
        for (i, f) in self.schema.features.iter().enumerate() {
            let instances: Vec<Instance> = (0..n).map(|k| self.instance(i + k)).collect();
            let key = json_str(&f.name);
            for (class, flaw) in [
                (Class::WrongDatatype, TensorFlaw::Datatype(key.clone())),
                (Class::ShapeMismatch, TensorFlaw::Shape(key.clone())),
            ] {
                let body = self.body(&array(&tensors(&instances, types, &flaw)));
                out.push(self.raw_case(class, Some(&f.name), body, Expected::Rejected));
            }
        }
        out
    }

    fn raw_case(
        &self,
        class: Class,
        feature: Option<&str>,
        body: Vec<u8>,
        expected: Expected,
    ) -> Case {
        Case {
            class,
            feature: feature.map(str::to_string),
            body,
            expected,
        }
    }

    /// The one-defect instances (and valid edge instances) of feature `i`.
    fn feature_cases(&self, i: usize, f: &Feature) -> Vec<(Class, Instance)> {
        let row = &self.base[i % self.base.len()];
        let valid = valid_value(f, &row[i]);
        let mut values: Vec<(Class, Vec<u8>)> = Vec::new();
        let mut push = |c: Class, v: &str| values.push((c, v.as_bytes().to_vec()));
        match f.kind {
            FeatureKind::Number | FeatureKind::Integer => {
                let int = f.kind == FeatureKind::Integer;
                let x = valid.as_f64().unwrap_or(0.0);
                push(Class::NumberAsString, &json_str(&number(x, int)));
                push(Class::NumberAsBool, "true");
                push(Class::StringForNumber, "\"many\"");
                push(Class::NanLiteral, "NaN");
                push(Class::InfinityLiteral, "Infinity");
                push(Class::InfinityLiteral, "-Infinity");
                let eps = epsilon(f);
                if let Some(min) = f.min {
                    let below = if int { min.ceil() - 1.0 } else { min - eps };
                    push(Class::BelowMin, &number(below, int));
                    push(Class::BoundExact, &number(min, int));
                }
                if let Some(max) = f.max {
                    let above = if int { max.floor() + 1.0 } else { max + eps };
                    push(Class::AboveMax, &number(above, int));
                    push(Class::BoundExact, &number(max, int));
                }
                if int {
                    let half = if f.max.is_none_or(|m| x + 0.5 <= m) {
                        x + 0.5
                    } else {
                        x - 0.5
                    };
                    push(Class::FractionalInteger, &number(half, false));
                    push(Class::IntegerAsFloat, &format!("{}.0", x as i64));
                }
            }
            FeatureKind::Boolean => {
                push(Class::BoolAsNumber, "1");
                push(Class::BoolAsNumber, "0");
                push(Class::BoolAsString, "\"true\"");
                push(Class::BoolAsString, "\"yes\"");
            }
            FeatureKind::Categorical => {
                push(Class::NonStringCategory, "7");
                push(Class::EmptyCategory, "\"\"");
                if let Some(len) = self.schema.categorical_max_length {
                    push(Class::OverlongCategory, &json_str(&"x".repeat(len + 1)));
                }
                push(Class::UnseenCategory, &json_str(&self.unseen(f)));
            }
        }
        if !f.nullable {
            push(Class::NullInRequired, "null");
        }
        let mut out: Vec<(Class, Instance)> = values
            .into_iter()
            .enumerate()
            .map(|(k, (class, v))| {
                let mut inst = self.instance(i + k);
                inst[i].1 = v;
                (class, inst)
            })
            .collect();
        let mut without = self.instance(i);
        without.remove(i);
        let missing = if f.nullable {
            Class::MissingNullableKey
        } else {
            Class::MissingKey
        };
        out.push((missing, without));
        out
    }

    /// A category no training row has, within the length limit.
    fn unseen(&self, f: &Feature) -> String {
        let mut s = format!("unseen-{}", f.name);
        while f.values.contains(&s) {
            s.push('x');
        }
        let max = self.schema.categorical_max_length.unwrap_or(usize::MAX);
        s.chars().take(max.max(1)).collect()
    }

    /// Requests whose frame is wrong, and the largest valid batch.
    fn envelope_cases(&self) -> Vec<Case> {
        let env = self.env;
        let first = self.instance(0);
        // One element of the batch: the instance, or its first tensor.
        let one = match env.tensors {
            None => encode(&first),
            Some(types) => {
                tensors(std::slice::from_ref(&first), types, &TensorFlaw::None).swap_remove(0)
            }
        };
        let valid_batch = self.batch(std::slice::from_ref(&first));
        let mut out = Vec::new();
        let mut bad = |class: Class, body: Vec<u8>| {
            out.push(self.raw_case(class, None, body, Expected::Rejected));
        };
        let mark = env.mark;
        if let Some((key, frame)) = instances_key(env.body_template, mark) {
            bad(Class::NotAnObject, valid_batch.clone());
            let mut without = frame.clone();
            without.remove(&key);
            bad(
                Class::InstancesMissing,
                serde_json::to_vec(&without).expect("an object"),
            );
            bad(Class::InstancesNotArray, self.body(&one));
            let mut extra = frame;
            extra.insert(UNKNOWN_KEY.into(), Value::from(1));
            let text = serde_json::to_string(&extra).expect("an object");
            let body = text.replacen(&json_str(SENTINEL), mark, 1);
            let (before, after) = body.split_once(mark).expect("the sentinel");
            bad(
                Class::UnknownTopLevelKey,
                [before.as_bytes(), &valid_batch, after.as_bytes()].concat(),
            );
        }
        bad(Class::EmptyBatch, self.body(b"[]"));
        let over: Vec<Instance> = (0..=env.max_batch).map(|n| self.instance(n)).collect();
        bad(Class::BatchOverLimit, self.body(&self.batch(&over)));
        bad(Class::InstanceNotObject, self.body(b"[42]"));
        bad(
            Class::InstanceNotObject,
            self.body(&array(&[one.clone(), b"\"instance\"".to_vec()])),
        );
        if let Some(c) = self
            .schema
            .features
            .iter()
            .position(|f| f.kind == FeatureKind::Categorical)
        {
            let mut inst = self.instance(0);
            let v = &mut inst[c].1;
            // Inside the string, before its closing quote: 0xFF never occurs in UTF-8.
            v.insert(v.len() - 1, 0xFF);
            bad(Class::InvalidUtf8, self.body(&self.batch(&[inst])));
        }
        let mut padded = self.body(&valid_batch);
        if padded.len() <= env.max_request_bytes {
            padded.resize(env.max_request_bytes + 1, b' ');
        }
        bad(Class::BodyOverCap, padded);
        let largest: Vec<Instance> = (0..env.max_batch).map(|n| self.instance(n)).collect();
        out.push(self.raw_case(
            Class::LargestBatch,
            None,
            self.body(&self.batch(&largest)),
            Expected::Accepted {
                instances: env.max_batch,
            },
        ));
        out
    }
}

/// Stands for the instances in the parsed template.
const SENTINEL: &str = "\u{0}proctor-instances";

/// The top-level key holding the batch (at `mark` in the template), and the template's object
/// with the sentinel there (`None` when the template is not an object with the batch at its
/// top level: then the classes about the frame's keys do not apply).
fn instances_key(template: &str, mark: &str) -> Option<(String, serde_json::Map<String, Value>)> {
    let text = template.replacen(mark, &json_str(SENTINEL), 1);
    let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(&text) else {
        return None;
    };
    let key = frame.iter().find(|(_, v)| v.as_str() == Some(SENTINEL))?.0;
    Some((key.clone(), frame))
}

/// The row's value when it is not null, else one within the bounds.
fn valid_value(f: &Feature, v: &Value) -> Value {
    if !v.is_null() {
        return v.clone();
    }
    match f.kind {
        FeatureKind::Integer => Value::from(f.min.map_or(0.0, f64::ceil)),
        FeatureKind::Number => Value::from(f.min.unwrap_or(0.0)),
        FeatureKind::Boolean => Value::Bool(false),
        FeatureKind::Categorical => Value::from(f.values.first().cloned().unwrap_or("a".into())),
    }
}

/// How far outside a bound a number probe goes: a millionth of the range (at least 1e-6), so
/// that only an exact bound check catches it.
fn epsilon(f: &Feature) -> f64 {
    let span = match (f.min, f.max) {
        (Some(a), Some(b)) => (b - a).abs(),
        (Some(x), None) | (None, Some(x)) => x.abs(),
        (None, None) => 0.0,
    };
    (span * 1e-6).max(1e-6)
}

/// `x` as a JSON number: without a fraction for integers.
fn number(x: f64, integer: bool) -> String {
    if integer && x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        serde_json::Number::from_f64(x)
            .map(|n| n.to_string())
            .unwrap_or_else(|| "0".into())
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string")
}

fn encode(inst: &Instance) -> Vec<u8> {
    let mut out = vec![b'{'];
    for (n, (k, v)) in inst.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b':');
        out.extend_from_slice(v);
    }
    out.push(b'}');
    out
}

/// What is wrong with one feature's tensor (named by its JSON key), on purpose.
enum TensorFlaw {
    None,
    /// It declares another datatype than the feature's.
    Datatype(String),
    /// Its shape says one value more than its data holds.
    Shape(String),
}

/// The instances as input tensors, one per key in first-seen order, each value's raw bytes in
/// `data` (an instance without the key leaves the tensor one value short), as raw JSON.
fn tensors(
    instances: &[Instance],
    types: &BTreeMap<String, String>,
    flaw: &TensorFlaw,
) -> Vec<Vec<u8>> {
    let mut keys: Vec<&String> = Vec::new();
    for inst in instances {
        for (k, _) in inst {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys.into_iter()
        .map(|key| {
            let data: Vec<Vec<u8>> = instances
                .iter()
                .filter_map(|i| i.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
                .collect();
            let name: String = serde_json::from_str(key).unwrap_or_default();
            let declared = types.get(&name).cloned().unwrap_or_else(|| {
                match data.first().map(|v| v.first().copied()) {
                    Some(Some(b'"')) => "BYTES",
                    Some(Some(b't' | b'f')) => "BOOL",
                    _ => "FP32",
                }
                .to_string()
            });
            let mut n = instances.len();
            let datatype = match flaw {
                TensorFlaw::Datatype(k) if k == key => {
                    if declared == "BYTES" { "FP32" } else { "BYTES" }.to_string()
                }
                TensorFlaw::Shape(k) if k == key => {
                    n += 1;
                    declared
                }
                _ => declared,
            };
            let mut out = format!(
                "{{\"name\":{key},\"shape\":[{n}],\"datatype\":{},\"data\":",
                json_str(&datatype)
            )
            .into_bytes();
            out.extend(array(&data));
            out.push(b'}');
            out
        })
        .collect()
}

fn array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![b'['];
    out.extend(items.join(&b','));
    out.push(b']');
    out
}

/// At most `max` of `cases` (all when they fit), drawn with `rng` so that every class keeps at
/// least one case (even past `max`) and the classes share the rest evenly; within a class, the
/// features take turns. Class order is kept.
pub fn sample(cases: Vec<Case>, max: usize, rng: &mut impl rand::Rng) -> Vec<Case> {
    if cases.len() <= max {
        return cases;
    }
    let mut by_class: BTreeMap<Class, Vec<Case>> = BTreeMap::new();
    for c in cases {
        by_class.entry(c.class).or_default().push(c);
    }
    // Each class's cases in the order they would be taken: features in turn, shuffled.
    let mut queues: Vec<std::collections::VecDeque<Case>> = by_class
        .into_values()
        .map(|cs| {
            let mut groups: Vec<Vec<Case>> = Vec::new();
            for c in cs {
                match groups.iter_mut().find(|g| g[0].feature == c.feature) {
                    Some(g) => g.push(c),
                    None => groups.push(vec![c]),
                }
            }
            groups.shuffle(rng);
            for g in &mut groups {
                g.shuffle(rng);
            }
            let mut queue = std::collections::VecDeque::new();
            while groups.iter().any(|g| !g.is_empty()) {
                for g in &mut groups {
                    if let Some(c) = g.pop() {
                        queue.push_back(c);
                    }
                }
            }
            queue
        })
        .collect();
    let mut taken: Vec<Vec<Case>> = vec![Vec::new(); queues.len()];
    let mut total = 0;
    let mut first_round = true;
    while first_round || total < max {
        let mut any = false;
        for (q, t) in queues.iter_mut().zip(taken.iter_mut()) {
            if !first_round && total >= max {
                break;
            }
            if let Some(c) = q.pop_front() {
                t.push(c);
                total += 1;
                any = true;
            }
        }
        first_round = false;
        if !any {
            break;
        }
    }
    taken.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests;
