//! Asking the service for predictions of dataset rows, as the grader's `[prediction]` section
//! says: build the body from the template, send, and read one probability per instance.
//!
//! Parsing is lenient where the JSON is not: a bare `NaN` or `Infinity` (which Python's json
//! module emits) makes that one prediction invalid instead of losing the whole batch, so a
//! service that answers NaN for some instances is graded for exactly those.

use serde_json::{Map, Value};

use crate::grader::PredictionApi;
use crate::http;
use crate::target::Target;

/// One instance's outcome: a probability in [0, 1], or why there is none.
pub type Scored = Result<f64, String>;

pub struct Predictor<'a> {
    pub target: &'a Target,
    pub api: &'a PredictionApi,
}

impl Predictor<'_> {
    /// Predictions for one request's worth of instances. `Err` when the request as a whole
    /// failed (status, transport, unreadable body, wrong number of predictions).
    pub async fn request(&self, instances: &[Map<String, Value>]) -> Result<Vec<Scored>, String> {
        let answers = self.request_objects(instances).await?;
        Ok(answers.into_iter().map(|(_, s)| s).collect())
    }

    /// As `request`, with each prediction object beside its score, for checks that read other
    /// fields of a prediction (`NaN` and `Infinity` in them read as `null`).
    pub async fn request_objects(
        &self,
        instances: &[Map<String, Value>],
    ) -> Result<Vec<(Value, Scored)>, String> {
        let body = self.api.body(instances);
        let resp = http::send(
            &self.target.client,
            reqwest::Method::POST,
            &self.target.url(&self.api.path.0),
            Some(("application/json", &body)),
            self.target.request_timeout,
            self.target.max_body,
        )
        .await
        .map_err(|e| e.to_string())?;
        if !(200..300).contains(&resp.status) {
            return Err(format!("status {}: {}", resp.status, resp.excerpt(120)));
        }
        let text = String::from_utf8_lossy(&resp.body);
        let mut value: Value = serde_json::from_str(&nonfinite_to_null(&text))
            .map_err(|e| format!("response is not JSON ({e})"))?;
        Ok(self
            .api
            .predictions_of(&mut value, instances.len())?
            .into_iter()
            .map(|p| {
                let score = self.score_of(&p);
                (p, score)
            })
            .collect())
    }

    /// The probability in one prediction object, or why there is none.
    fn score_of(&self, p: &Value) -> Scored {
        match p.pointer(&self.api.score) {
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if (0.0..=1.0).contains(&x) => Ok(x),
                _ => Err(format!("probability {n} is outside [0, 1]")),
            },
            Some(Value::Null) => Err("probability is not a number (NaN, Infinity or null)".into()),
            Some(other) => Err(format!("probability is not a number: {other}")),
            None => Err(format!("no `{}` in the prediction", self.api.score)),
        }
    }

    /// Predictions for many instances, in batches of at most `batch`. A failed batch is retried
    /// one instance at a time, so that one bad instance costs only its own prediction.
    /// As `all`, with each prediction object beside its score.
    pub async fn all_objects(
        &self,
        instances: &[Map<String, Value>],
        batch: usize,
    ) -> Vec<Result<(Value, f64), String>> {
        let mut out = Vec::with_capacity(instances.len());
        for chunk in instances.chunks(batch.clamp(1, self.api.max_batch)) {
            match self.request_objects(chunk).await {
                Ok(answers) => out.extend(answers.into_iter().map(|(o, s)| s.map(|s| (o, s)))),
                Err(_) if chunk.len() > 1 => {
                    for one in chunk {
                        out.push(
                            self.request_objects(std::slice::from_ref(one))
                                .await
                                .and_then(|mut v| v.pop().ok_or("no prediction".to_string()))
                                .and_then(|(o, s)| s.map(|s| (o, s))),
                        );
                    }
                }
                Err(e) => out.extend(std::iter::repeat_n(Err(e), chunk.len())),
            }
        }
        out
    }

    pub async fn all(&self, instances: &[Map<String, Value>], batch: usize) -> Vec<Scored> {
        let mut out = Vec::with_capacity(instances.len());
        for chunk in instances.chunks(batch.clamp(1, self.api.max_batch)) {
            match self.request(chunk).await {
                Ok(scores) => out.extend(scores),
                Err(_) if chunk.len() > 1 => {
                    for one in chunk {
                        out.push(
                            self.request(std::slice::from_ref(one))
                                .await
                                .and_then(|mut v| v.pop().unwrap_or(Err("no prediction".into()))),
                        );
                    }
                }
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }
}

/// Replaces bare `NaN`, `Infinity` and `-Infinity` tokens outside strings with `null`.
pub fn nonfinite_to_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        match token {
            Some(t) => {
                out.push_str("null");
                rest = &rest[t.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Complete rows (no nulls) of a dataset, when `complete_only`; else all rows.
pub fn rows_of(data: &crate::data::Dataset, complete_only: bool) -> Vec<usize> {
    (0..data.rows.len())
        .filter(|&i| !complete_only || data.rows[i].iter().all(|v| !v.is_null()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonfinite_tokens_become_null_outside_strings_only() {
        let s = r#"{"a": NaN, "b": -Infinity, "c": "NaN and Infinity", "d": [Infinity, 1]}"#;
        let v: Value = serde_json::from_str(&nonfinite_to_null(s)).unwrap();
        assert_eq!(v["a"], Value::Null);
        assert_eq!(v["b"], Value::Null);
        assert_eq!(v["c"], "NaN and Infinity");
        assert_eq!(v["d"][0], Value::Null);
        let escaped = r#"{"e": "quote \" NaN"}"#;
        assert_eq!(nonfinite_to_null(escaped), escaped);
    }
}
