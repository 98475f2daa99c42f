//! A dataset: CSV rows typed by the schema. Empty cells are nulls. Every parse error names the
//! file, the line and the column.

use std::path::{Path, PathBuf};

use rand::RngExt;
use serde_json::{Map, Value};

use super::schema::{FeatureKind, Schema};

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("{path}:{line}: column {column}: {detail}")]
    Cell {
        path: PathBuf,
        line: u64,
        column: String,
        detail: String,
    },
    #[error("{path}: {detail}")]
    Shape { path: PathBuf, detail: String },
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub schema: Schema,
    /// One value per schema feature, in schema order; `Value::Null` for a missing value.
    pub rows: Vec<Vec<Value>>,
    /// The label of each row (0 or 1), when the schema names one and the file has it.
    pub labels: Option<Vec<f64>>,
}

impl Dataset {
    pub fn load(name: &str, path: &Path, schema: Schema) -> Result<Dataset, DatasetError> {
        let mut reader =
            csv::ReaderBuilder::new()
                .from_path(path)
                .map_err(|e| DatasetError::Read {
                    path: path.to_owned(),
                    detail: e.to_string(),
                })?;
        let headers = reader
            .headers()
            .map_err(|e| DatasetError::Read {
                path: path.to_owned(),
                detail: e.to_string(),
            })?
            .clone();
        let mut columns = Vec::new();
        for f in &schema.features {
            let i =
                headers
                    .iter()
                    .position(|h| h == f.name)
                    .ok_or_else(|| DatasetError::Shape {
                        path: path.to_owned(),
                        detail: format!("no column {:?} (the schema's feature)", f.name),
                    })?;
            columns.push(i);
        }
        let label_col = schema
            .label
            .as_ref()
            .and_then(|l| headers.iter().position(|h| h == l.name));
        let mut rows = Vec::new();
        let mut labels = label_col.map(|_| Vec::new());
        for record in reader.records() {
            let record = record.map_err(|e| DatasetError::Read {
                path: path.to_owned(),
                detail: e.to_string(),
            })?;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let cell_err = |column: &str, detail: String| DatasetError::Cell {
                path: path.to_owned(),
                line,
                column: column.to_string(),
                detail,
            };
            let mut row = Vec::with_capacity(columns.len());
            for (f, &i) in schema.features.iter().zip(&columns) {
                let raw = record.get(i).unwrap_or("").trim();
                row.push(parse_cell(raw, f.kind).map_err(|d| cell_err(&f.name, d))?);
            }
            if let (Some(i), Some(ls)) = (label_col, labels.as_mut()) {
                let raw = record.get(i).unwrap_or("").trim();
                let v: f64 = raw
                    .parse()
                    .map_err(|_| cell_err("label", format!("{raw:?} is not 0 or 1")))?;
                ls.push(v);
            }
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(DatasetError::Shape {
                path: path.to_owned(),
                detail: "no rows".into(),
            });
        }
        Ok(Dataset {
            name: name.to_string(),
            schema,
            rows,
            labels,
        })
    }

    /// The row as a JSON object keyed by feature name (the shape of one instance).
    pub fn instance(&self, row: &[Value]) -> Map<String, Value> {
        self.schema
            .features
            .iter()
            .zip(row)
            .map(|(f, v)| (f.name.clone(), v.clone()))
            .collect()
    }

    /// Indices of `n` rows drawn with replacement.
    pub fn sample(&self, n: usize, rng: &mut impl rand::Rng) -> Vec<usize> {
        (0..n)
            .map(|_| rng.random_range(0..self.rows.len()))
            .collect()
    }

    /// Non-null numeric values of a feature, for statistics.
    pub fn numeric_column(&self, feature: usize) -> Vec<f64> {
        self.rows
            .iter()
            .filter_map(|r| r[feature].as_f64())
            .collect()
    }

    /// Mean and standard deviation of a numeric feature (nulls left out).
    pub fn mean_sd(&self, feature: usize) -> (f64, f64) {
        let xs = self.numeric_column(feature);
        let n = xs.len().max(1) as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (mean, var.sqrt())
    }
}

fn parse_cell(raw: &str, kind: FeatureKind) -> Result<Value, String> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    match kind {
        FeatureKind::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{raw:?} is not an integer")),
        FeatureKind::Number => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("{raw:?} is not a finite number")),
        FeatureKind::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("{raw:?} is not a boolean")),
        },
        FeatureKind::Categorical => Ok(Value::String(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        serde_json::from_str(
            r#"{"features":[{"name":"a","type":"integer","nullable":true},{"name":"b","type":"categorical","values":["x","y"]},{"name":"c","type":"boolean"}],"label":{"name":"y"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn typed_rows_with_nulls_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "c,b,a,y\ntrue,x,3,1\nfalse,y,,0\n").unwrap();
        let d = Dataset::load("d", &p, schema()).unwrap();
        assert_eq!(
            d.rows[0],
            vec![Value::from(3), Value::from("x"), Value::Bool(true)]
        );
        assert_eq!(d.rows[1][0], Value::Null);
        assert_eq!(d.labels.unwrap(), vec![1.0, 0.0]);
        let inst = Dataset::load("d", &p, schema()).unwrap().instance(&[
            Value::from(1),
            Value::from("y"),
            Value::Bool(false),
        ]);
        assert_eq!(
            serde_json::to_string(&inst).unwrap(),
            r#"{"a":1,"b":"y","c":false}"#
        );
    }

    #[test]
    fn bad_cell_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "a,b,c,y\n1,x,true,0\n2.5,x,true,1\n").unwrap();
        let err = Dataset::load("d", &p, schema()).unwrap_err().to_string();
        assert!(
            err.contains("d.csv:3") && err.contains("column a") && err.contains("2.5"),
            "{err}"
        );
    }

    #[test]
    fn missing_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "a,c\n1,true\n").unwrap();
        let err = Dataset::load("d", &p, schema()).unwrap_err().to_string();
        assert!(err.contains("\"b\""), "{err}");
    }

    #[test]
    fn sampling_is_reproducible_per_seed() {
        let d = Dataset {
            name: "d".into(),
            schema: schema(),
            rows: vec![vec![Value::Null; 3]; 100],
            labels: None,
        };
        let a = d.sample(20, &mut crate::data::rng(7, "x"));
        let b = d.sample(20, &mut crate::data::rng(7, "x"));
        let c = d.sample(20, &mut crate::data::rng(8, "x"));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
