//! What a response must look like: accepted statuses and assertions on its JSON body, addressed
//! with JSON Pointers (RFC 6901) extended by a `*` segment meaning "every element", and a
//! `[key=value]` segment meaning "the elements whose `key` is `value`" (an output tensor by its
//! name).
//!
//! Failure messages are written for the candidate: they say what was expected and what came
//! back, with response excerpts kept short. Hidden checks never show these messages to a
//! candidate (see `report::candidate_view`).

use serde::Deserialize;
use serde_json::Value;

use crate::http::Response;

/// Accepted HTTP statuses: `status = 200` or `status = [400, 422]` in a grader file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "StatusRepr")]
pub struct StatusSet(pub Vec<u16>);

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet(vec![200])
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StatusRepr {
    One(i64),
    Many(Vec<i64>),
}

impl TryFrom<StatusRepr> for StatusSet {
    type Error = String;
    fn try_from(r: StatusRepr) -> Result<Self, String> {
        let codes = match r {
            StatusRepr::One(c) => vec![c],
            StatusRepr::Many(cs) => cs,
        };
        if codes.is_empty() {
            return Err("list at least one accepted status".into());
        }
        codes
            .into_iter()
            .map(|c| match u16::try_from(c) {
                Ok(c) if (100..=599).contains(&c) => Ok(c),
                _ => Err(format!("{c} is not an HTTP status code (100-599)")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(StatusSet)
    }
}

impl StatusSet {
    pub fn accepts(&self, code: u16) -> bool {
        self.0.contains(&code)
    }

    fn describe(&self) -> String {
        let codes: Vec<String> = self.0.iter().map(u16::to_string).collect();
        match codes.len() {
            1 => codes[0].clone(),
            _ => format!("one of {}", codes.join(", ")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    fn of(v: &Value) -> JsonType {
        match v {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Bool,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }
    fn name(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Bool => "bool",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }
}

/// One assertion on the value(s) at `pointer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonAssert {
    /// RFC 6901 pointer; a `*` segment applies the assertion to every element of an array or
    /// every value of an object. `""` is the whole body.
    pub pointer: String,
    /// `false` asserts the pointer does NOT resolve. Defaults to true.
    pub exists: Option<bool>,
    pub equals: Option<toml::Value>,
    #[serde(rename = "type")]
    pub kind: Option<JsonType>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Length of an array, object or string.
    pub length: Option<usize>,
}

/// The expectations of one check, assembled from its grader entry.
#[derive(Debug, Clone)]
pub struct Expect {
    pub status: StatusSet,
    pub json_body: bool,
    pub json: Vec<JsonAssert>,
}

impl Expect {
    /// Rules that serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        for (i, a) in self.json.iter().enumerate() {
            if !a.pointer.is_empty() && !a.pointer.starts_with('/') {
                return Err(format!(
                    "json[{i}].pointer must be empty or start with '/', got {:?}",
                    a.pointer
                ));
            }
            if let (Some(lo), Some(hi)) = (a.min, a.max) {
                if lo > hi {
                    return Err(format!("json[{i}]: min {lo} is greater than max {hi}"));
                }
            }
            if a.exists == Some(false)
                && (a.equals.is_some()
                    || a.kind.is_some()
                    || a.min.is_some()
                    || a.max.is_some()
                    || a.length.is_some())
            {
                return Err(format!(
                    "json[{i}]: exists = false cannot be combined with other assertions"
                ));
            }
            if let Some(v) = &a.equals {
                toml_to_json(v).map_err(|m| format!("json[{i}].equals: {m}"))?;
            }
        }
        Ok(())
    }

    /// Ok(()) when the response meets every expectation, else the first failure, phrased for
    /// the candidate.
    pub fn check(&self, resp: &Response) -> Result<(), String> {
        if !self.status.accepts(resp.status) {
            return Err(format!(
                "expected status {}, got {}{}",
                self.status.describe(),
                resp.status,
                excerpt_suffix(resp)
            ));
        }
        // A cut response fails whatever is asserted about it (docs/grader-format.md,
        // `[http] max_body_bytes`): a body past the cap is itself a defect.
        if resp.truncated {
            return Err(format!(
                "response body is larger than the {} byte limit",
                resp.body.len()
            ));
        }
        if !self.json_body {
            return Ok(());
        }
        let body: Value = serde_json::from_slice(&resp.body).map_err(|e| {
            format!(
                "response body is not valid JSON ({e}){}",
                excerpt_suffix(resp)
            )
        })?;
        for a in &self.json {
            check_assert(a, &body)?;
        }
        Ok(())
    }
}

fn excerpt_suffix(resp: &Response) -> String {
    let e = resp.excerpt(200);
    if e.is_empty() {
        String::new()
    } else {
        format!("; body: {e}")
    }
}

fn check_assert(a: &JsonAssert, body: &Value) -> Result<(), String> {
    let found = resolve(body, &a.pointer);
    let want_exists = a.exists.unwrap_or(true);
    if !want_exists {
        return match found.first() {
            Some((p, _)) => Err(format!("{p} should not be present")),
            None => Ok(()),
        };
    }
    if found.is_empty() && !a.pointer.contains("/*") {
        return Err(format!(
            "{} is missing from the response",
            display_pointer(&a.pointer)
        ));
    }
    let expected = a
        .equals
        .as_ref()
        .map(|v| toml_to_json(v).expect("validated at load"));
    for (at, v) in found {
        if let Some(k) = a.kind {
            if JsonType::of(v) != k {
                return Err(format!("{at} should be a {}, got {}", k.name(), short(v)));
            }
        }
        if let Some(e) = &expected {
            if !json_equal(v, e) {
                return Err(format!("{at} should be {e}, got {}", short(v)));
            }
        }
        if a.min.is_some() || a.max.is_some() {
            let Some(x) = v.as_f64() else {
                return Err(format!("{at} should be a number, got {}", short(v)));
            };
            if let Some(lo) = a.min {
                if x < lo {
                    return Err(format!("{at} should be at least {lo}, got {x}"));
                }
            }
            if let Some(hi) = a.max {
                if x > hi {
                    return Err(format!("{at} should be at most {hi}, got {x}"));
                }
            }
        }
        if let Some(n) = a.length {
            let len = match v {
                Value::Array(xs) => xs.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.chars().count(),
                other => return Err(format!("{at} should have a length, got {}", short(other))),
            };
            if len != n {
                return Err(format!("{at} should have {n} elements, got {len}"));
            }
        }
    }
    Ok(())
}

/// Numbers compare by value (1 == 1.0); everything else structurally.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| json_equal(x, y)))
        }
        _ => a == b,
    }
}

fn display_pointer(p: &str) -> String {
    if p.is_empty() {
        "the body".into()
    } else {
        format!("`{p}`")
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// A selector segment `[key=value]`: its key and value.
fn selector(segment: &str) -> Option<(&str, &str)> {
    segment
        .strip_prefix('[')?
        .strip_suffix(']')?
        .split_once('=')
}

/// Whether a JSON scalar reads as `text` (a string by its content, a number or boolean by its
/// JSON text).
fn scalar_is(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Number(_) | Value::Bool(_) => {
            serde_json::from_str::<Value>(text).is_ok_and(|t| t == *v)
        }
        _ => false,
    }
}

/// All values a pointer with optional `*` and `[key=value]` segments reaches, each with its
/// concrete pointer.
pub fn resolve<'v>(root: &'v Value, pointer: &str) -> Vec<(String, &'v Value)> {
    let mut current: Vec<(String, &Value)> = vec![(String::new(), root)];
    if pointer.is_empty() {
        return vec![("the body".into(), root)];
    }
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        let mut next = Vec::new();
        for (at, v) in current {
            match (v, seg.as_str()) {
                (Value::Array(xs), "*") => {
                    next.extend(xs.iter().enumerate().map(|(i, x)| (format!("{at}/{i}"), x)));
                }
                (Value::Object(m), "*") => {
                    next.extend(m.iter().map(|(k, x)| (format!("{at}/{k}"), x)));
                }
                // `[key=value]`: the elements whose `key` is the string (or scalar) `value`,
                // e.g. an output tensor by its name in `/outputs/[name=score]/datatype`.
                (Value::Array(xs), s) if selector(s).is_some() => {
                    let (key, want) = selector(s).expect("checked");
                    next.extend(
                        xs.iter()
                            .enumerate()
                            .filter(|(_, x)| x.get(key).is_some_and(|v| scalar_is(v, want)))
                            .map(|(i, x)| (format!("{at}/{i}"), x)),
                    );
                }
                (Value::Array(xs), s) => {
                    if let Some(x) = s.parse::<usize>().ok().and_then(|i| xs.get(i)) {
                        next.push((format!("{at}/{s}"), x));
                    }
                }
                (Value::Object(m), s) => {
                    if let Some(x) = m.get(s) {
                        next.push((format!("{at}/{raw}"), x));
                    }
                }
                _ => {}
            }
        }
        current = next;
    }
    current
        .into_iter()
        .map(|(at, v)| (format!("`{at}`"), v))
        .collect()
}

/// TOML values for `equals`; dates have no JSON counterpart and are refused.
fn toml_to_json(v: &toml::Value) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or("NaN/inf cannot be compared")?,
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Array(xs) => {
            Value::Array(xs.iter().map(toml_to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), toml_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        toml::Value::Datetime(_) => return Err("dates cannot be compared with JSON".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status,
            body: body.as_bytes().to_vec(),
            truncated: false,
            content_type: None,
        }
    }

    fn assert_from(toml_text: &str) -> JsonAssert {
        toml::from_str(toml_text).unwrap()
    }

    fn expect(asserts: Vec<JsonAssert>) -> Expect {
        Expect {
            status: StatusSet::default(),
            json_body: true,
            json: asserts,
        }
    }

    #[test]
    fn wildcard_applies_to_every_element() {
        let body = r#"{"predictions":[{"p":0.2},{"p":1.5}]}"#;
        let e = expect(vec![assert_from(
            "pointer = \"/predictions/*/p\"\nmin = 0.0\nmax = 1.0",
        )]);
        let err = e.check(&resp(200, body)).unwrap_err();
        assert!(
            err.contains("/predictions/1/p") && err.contains("1.5"),
            "{err}"
        );
        let ok = r#"{"predictions":[{"p":0.2},{"p":0.9}]}"#;
        e.check(&resp(200, ok)).unwrap();
    }

    #[test]
    fn status_mismatch_reports_both_and_an_excerpt() {
        let e = Expect {
            status: StatusSet(vec![400, 422]),
            json_body: false,
            json: vec![],
        };
        let err = e.check(&resp(500, "Internal Server Error")).unwrap_err();
        assert!(
            err.contains("one of 400, 422") && err.contains("got 500") && err.contains("Internal"),
            "{err}"
        );
        e.check(&resp(422, "")).unwrap();
    }

    #[test]
    fn a_cut_body_fails_a_status_only_check_too() {
        let e = Expect {
            status: StatusSet::default(),
            json_body: false,
            json: vec![],
        };
        let mut r = resp(200, "0123456789");
        e.check(&r).unwrap();
        r.truncated = true;
        let err = e.check(&r).unwrap_err();
        assert!(err.contains("larger than the 10 byte limit"), "{err}");
        // A wrong status is still reported as such.
        r.status = 500;
        assert!(e.check(&r).unwrap_err().contains("got 500"));
    }

    #[test]
    fn nan_is_not_json() {
        let e = expect(vec![]);
        let err = e.check(&resp(200, r#"{"p": NaN}"#)).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn equals_compares_numbers_by_value_and_types_strictly() {
        let e = expect(vec![
            assert_from("pointer = \"/ready\"\nequals = true"),
            assert_from("pointer = \"/n\"\nequals = 1"),
        ]);
        e.check(&resp(200, r#"{"ready":true,"n":1.0}"#)).unwrap();
        let err = e
            .check(&resp(200, r#"{"ready":"true","n":1}"#))
            .unwrap_err();
        assert!(err.contains("/ready"), "{err}");
    }

    #[test]
    fn missing_and_forbidden_fields() {
        let e = expect(vec![assert_from("pointer = \"/a\"")]);
        assert!(e.check(&resp(200, "{}")).unwrap_err().contains("missing"));
        let e = expect(vec![assert_from("pointer = \"/secret\"\nexists = false")]);
        assert!(e.check(&resp(200, r#"{"secret":1}"#)).is_err());
        e.check(&resp(200, "{}")).unwrap();
    }

    #[test]
    fn length_and_type() {
        let e = expect(vec![assert_from(
            "pointer = \"/xs\"\nlength = 2\ntype = \"array\"",
        )]);
        e.check(&resp(200, r#"{"xs":[1,2]}"#)).unwrap();
        assert!(e
            .check(&resp(200, r#"{"xs":[1]}"#))
            .unwrap_err()
            .contains("2 elements"));
        assert!(e
            .check(&resp(200, r#"{"xs":"ab"}"#))
            .unwrap_err()
            .contains("array"));
    }

    #[test]
    fn selectors_pick_array_elements_by_a_field() {
        let v: Value = serde_json::json!({"outputs": [
            {"name": "flagged", "datatype": "BOOL", "shape": [2]},
            {"name": "probability", "datatype": "FP32", "shape": [2]}
        ]});
        let found = resolve(&v, "/outputs/[name=probability]/datatype");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "`/outputs/1/datatype`");
        assert_eq!(found[0].1, "FP32");
        assert!(resolve(&v, "/outputs/[name=nope]/datatype").is_empty());
        let a = assert_from("pointer = \"/outputs/[name=flagged]/shape/0\"\nequals = 2");
        assert!(check_assert(&a, &v).is_ok());
        let missing = assert_from("pointer = \"/outputs/[name=score]/shape\"\nlength = 1");
        let err = check_assert(&missing, &v).unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn resolve_handles_escapes_and_objects() {
        let v = json!({"a/b": {"x": 1, "y": 2}});
        assert_eq!(resolve(&v, "/a~1b/*").len(), 2);
        assert_eq!(resolve(&v, "/nope/*").len(), 0);
    }

    #[test]
    fn status_set_rejects_non_http_codes() {
        #[derive(Deserialize)]
        struct W {
            #[allow(dead_code)]
            s: StatusSet,
        }
        assert!(toml::from_str::<W>("s = 99").is_err());
        assert!(toml::from_str::<W>("s = []").is_err());
        assert!(toml::from_str::<W>("s = [200, 201]").is_ok());
    }
}
