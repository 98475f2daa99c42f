//! Grader files and datasets for the phase tests: written to a temp dir and read back through
//! `proctor::grader::load`, exactly as a real grader file and its CSV files are. Also the fake
//! model the services serve, so that tests can compute the ground truth of what they answer.

use std::fmt::Write as _;

use proctor::grader::LoadedGrader;
use proctor::target::Target;
use serde_json::{json, Value};

use crate::server::{Reply, Req};

/// `[http] request_timeout_ms` of every test grader: small, so that timeouts cost little.
pub const TIMEOUT_MS: u64 = 200;

/// Longer than `TIMEOUT_MS`: a handler that sleeps this long has timed out.
pub const SLOW: std::time::Duration = std::time::Duration::from_millis(3 * TIMEOUT_MS);

/// The feature schema of every dataset: a number, a nullable integer and a category.
pub const SCHEMA: &str = r#"{
  "features": [
    {"name": "x", "type": "number", "nullable": false, "min": 0, "max": 1000},
    {"name": "n", "type": "integer", "nullable": true, "min": 0, "max": 100},
    {"name": "c", "type": "categorical", "nullable": false, "values": ["a", "b", "c"]}
  ],
  "label": {"name": "y"}
}"#;

/// What every test grader starts with (`http_extra` goes into its `[http]` table); the sections
/// a test needs follow it.
pub fn head(http_extra: &str) -> String {
    format!(
        r#"
[grader]
name = "phase-test"
assignment = "test"

[submission]
allowed_base_images = ["python:3.11"]

[http]
request_timeout_ms = {TIMEOUT_MS}
{http_extra}

[readiness]
path = "/ready"
points = 2
poll_interval_ms = 20
"#
    )
}

/// The prediction API of the fake services.
pub fn prediction(max_batch: usize) -> String {
    format!(
        r#"
[prediction]
path = "/predict"
body_template = '{{"instances": $INSTANCES}}'
predictions = "/predictions"
score = "/p"
max_batch = {max_batch}
"#
    )
}

/// One row of a dataset.
#[derive(Debug, Clone)]
pub struct Row {
    pub x: f64,
    pub n: Option<i64>,
    pub c: &'static str,
    pub y: u8,
}

/// A deterministic generator for test data (splitmix64).
pub struct Rand(u64);

impl Rand {
    pub fn new(seed: u64) -> Rand {
        Rand(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `count` rows: x uniform in [0, 100), n null in about one row in ten, c one of a/b/c, and a
/// label that is more often 1 the larger x is (so x/100 is a useful but imperfect score).
pub fn rows(count: usize, seed: u64) -> Vec<Row> {
    let mut r = Rand::new(seed);
    (0..count)
        .map(|_| {
            let x = (r.unit() * 10_000.0).floor() / 100.0;
            let n = (r.unit() >= 0.1).then(|| (r.unit() * 100.0) as i64);
            let c = ["a", "b", "c"][(r.unit() * 3.0) as usize];
            let y = u8::from(r.unit() < 0.1 + 0.8 * x / 100.0);
            Row { x, n, c, y }
        })
        .collect()
}

/// Rows whose label is exactly `x >= 50`: a perfectly separable dataset for the score x/100.
pub fn separable(count: usize, seed: u64) -> Vec<Row> {
    rows(count, seed)
        .into_iter()
        .map(|r| Row {
            y: u8::from(r.x >= 50.0),
            ..r
        })
        .collect()
}

pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from("x,n,c,y\n");
    for r in rows {
        let n = r.n.map(|n| n.to_string()).unwrap_or_default();
        writeln!(s, "{},{},{},{}", r.x, n, r.c, r.y).unwrap();
    }
    s
}

/// Rows without a null, the ones the phases send by default.
pub fn complete(rows: &[Row]) -> Vec<Row> {
    rows.iter().filter(|r| r.n.is_some()).cloned().collect()
}

/// Writes `toml` (after `head("")`), the schema and each dataset (declared as `[[dataset]]`
/// `name`, from `name.csv`) to a temp dir, and loads the grader from there.
pub fn load(toml: &str, datasets: &[(&str, &[Row])]) -> LoadedGrader {
    try_load("", toml, datasets).unwrap_or_else(|e| panic!("the test grader does not load: {e}"))
}

/// As `load`, with `http_extra` in `[http]`, and returning the grader error.
pub fn try_load(
    http_extra: &str,
    toml: &str,
    datasets: &[(&str, &[Row])],
) -> Result<LoadedGrader, proctor::grader::GraderError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schema.json"), SCHEMA).unwrap();
    let mut text = head(http_extra);
    text.push_str(toml);
    for (name, rows) in datasets {
        std::fs::write(dir.path().join(format!("{name}.csv")), csv(rows)).unwrap();
        write!(
            text,
            "\n[[dataset]]\nname = \"{name}\"\ncsv = \"{name}.csv\"\nschema = \"schema.json\"\n"
        )
        .unwrap();
    }
    let path = dir.path().join("grader.toml");
    std::fs::write(&path, text).unwrap();
    // The datasets are in memory once loaded; the temp dir can go.
    proctor::grader::load(&path)
}

pub fn target(url: &str, g: &LoadedGrader) -> Target {
    Target::new(url, &g.grader.http)
}

/// The fake model: the probability of the positive class is x / 100.
pub fn model(instance: &Value) -> f64 {
    (instance["x"].as_f64().expect("x is a number") / 100.0).clamp(0.0, 1.0)
}

/// The instances of a predict request.
pub fn instances(req: &Req) -> Vec<Value> {
    req.json()["instances"]
        .as_array()
        .expect("an array of instances")
        .clone()
}

/// A predict answer with one `{"p": score}` per instance.
pub fn predictions(req: &Req, score: impl Fn(&Value) -> f64) -> Reply {
    let ps: Vec<Value> = instances(req)
        .iter()
        .map(|i| json!({ "p": score(i) }))
        .collect();
    Reply::json(200, &json!({ "predictions": ps }))
}

/// A predict answer written token by token, e.g. `["0.2", "NaN"]`, as Python's json emits it.
pub fn raw_predictions(tokens: &[String]) -> Reply {
    let items: Vec<String> = tokens.iter().map(|t| format!("{{\"p\": {t}}}")).collect();
    Reply::raw(
        200,
        "application/json",
        format!("{{\"predictions\": [{}]}}", items.join(", ")),
    )
}
