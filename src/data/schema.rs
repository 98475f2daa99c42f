//! The feature schema of an assignment (the `schema.json` candidates receive): names, types,
//! nullability and hard bounds.

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    Number,
    Integer,
    Categorical,
    Boolean,
}

impl FeatureKind {
    pub fn is_numeric(self) -> bool {
        matches!(self, FeatureKind::Number | FeatureKind::Integer)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Feature {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FeatureKind,
    #[serde(default)]
    pub nullable: bool,
    /// Hard bounds of numeric features: a value outside them is invalid input.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Known values of a categorical feature.
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Schema {
    pub features: Vec<Feature>,
    pub label: Option<Label>,
    /// Longest valid categorical string, in characters, when the contract bounds it: a longer
    /// one is invalid input (the probes send one character more).
    #[serde(default)]
    pub categorical_max_length: Option<usize>,
}

impl Schema {
    pub fn load(path: &Path) -> Result<Schema, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read schema {}: {e}", path.display()))?;
        let schema: Schema = serde_json::from_str(&text)
            .map_err(|e| format!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
        if schema.features.is_empty() {
            return Err(format!("{}: the schema lists no features", path.display()));
        }
        Ok(schema)
    }

    pub fn feature(&self, name: &str) -> Option<(usize, &Feature)> {
        self.features
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == name)
    }
}
