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
    /// The body with `$INSTANCES` where the array of instances goes.
    pub body_template: &'a str,
    /// Most instances per request.
    pub max_batch: usize,
    /// A body longer than this must be refused.
    pub max_request_bytes: usize,
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
            let mut instances: Vec<Vec<u8>> = (0..batch - 1)
                .map(|k| encode(&g.instance(n + k + 1)))
                .collect();
            instances.insert(n % batch, encode(&inst));
            out.push(g.raw_case(
                class,
                feature.as_deref(),
                g.body(&array(&instances)),
                Expected::Rejected,
            ));
        }
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

    /// The request holding `instances`, framed by the template.
    fn body(&self, instances: &[u8]) -> Vec<u8> {
        let (before, after) = self
            .env
            .body_template
            .split_once("$INSTANCES")
            .unwrap_or(("", ""));
        [before.as_bytes(), instances, after.as_bytes()].concat()
    }

    fn case(&self, class: Class, feature: Option<&str>, instances: Vec<Instance>) -> Case {
        let n = instances.len();
        let encoded: Vec<Vec<u8>> = instances.iter().map(encode).collect();
        let expected = if class.is_valid_input() {
            Expected::Accepted { instances: n }
        } else {
            Expected::Rejected
        };
        self.raw_case(class, feature, self.body(&array(&encoded)), expected)
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
        let one = encode(&self.instance(0));
        let valid_batch = array(std::slice::from_ref(&one));
        let mut out = Vec::new();
        let mut bad = |class: Class, body: Vec<u8>| {
            out.push(self.raw_case(class, None, body, Expected::Rejected));
        };
        if let Some((key, frame)) = instances_key(env.body_template) {
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
            let body = text.replacen(&json_str(SENTINEL), "$INSTANCES", 1);
            let (before, after) = body.split_once("$INSTANCES").expect("the sentinel");
            bad(
                Class::UnknownTopLevelKey,
                [before.as_bytes(), &valid_batch, after.as_bytes()].concat(),
            );
        }
        bad(Class::EmptyBatch, self.body(b"[]"));
        let over: Vec<Vec<u8>> = (0..=env.max_batch)
            .map(|n| encode(&self.instance(n)))
            .collect();
        bad(Class::BatchOverLimit, self.body(&array(&over)));
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
            bad(Class::InvalidUtf8, self.body(&array(&[encode(&inst)])));
        }
        let mut padded = self.body(&valid_batch);
        if padded.len() <= env.max_request_bytes {
            padded.resize(env.max_request_bytes + 1, b' ');
        }
        bad(Class::BodyOverCap, padded);
        let largest: Vec<Vec<u8>> = (0..env.max_batch)
            .map(|n| encode(&self.instance(n)))
            .collect();
        out.push(self.raw_case(
            Class::LargestBatch,
            None,
            self.body(&array(&largest)),
            Expected::Accepted {
                instances: env.max_batch,
            },
        ));
        out
    }
}

/// Stands for the instances in the parsed template.
const SENTINEL: &str = "\u{0}proctor-instances";

/// The top-level key holding the instances, and the template's object with the sentinel there
/// (`None` when the template is not an object with the instances at its top level: then the
/// classes about the frame's keys do not apply).
fn instances_key(template: &str) -> Option<(String, serde_json::Map<String, Value>)> {
    let text = template.replacen("$INSTANCES", &json_str(SENTINEL), 1);
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
