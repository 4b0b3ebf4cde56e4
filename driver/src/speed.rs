//! The speed matrix's sources, as a scenario and `exec.toml` both declare them: a
//! `speed_table = { format, path, reference_model }` file and `[[speed]]` entries, layered
//! from the least to the most specific.

use serde::{de, Deserialize, Deserializer, Serialize};
use std::path::PathBuf;
use tessera_core::policy::SpeedTable;
use tessera_core::{Catalogue, ClassId};
use tessera_traces::TraceError;

/// A speed table read from a file: Gavel's throughput JSON or a `job_class,model,relative_speed` CSV.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedTableSpec {
    pub format: SpeedTableFormat,
    pub path: PathBuf,
    /// `gavel`: the model speeds are relative to (default `v100`).
    #[serde(default)]
    pub reference_model: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpeedTableFormat {
    Csv,
    Gavel,
}

/// One cell of the speed matrix: jobs of `class` run `relative` times as fast on `model` as on
/// the reference device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedEntry {
    pub class: String,
    pub model: String,
    #[serde(deserialize_with = "positive_f64")]
    pub relative: f64,
}

fn positive_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(de::Error::custom(format!("expected a positive number, found {v}")))
    }
}

/// The cells a speed-table file gives: `(class, model, relative)`.
pub fn load_speed_table(table: &SpeedTableSpec) -> Result<Vec<(String, String, f64)>, TraceError> {
    match table.format {
        SpeedTableFormat::Csv => tessera_traces::gavel::load_speed_csv(&table.path),
        SpeedTableFormat::Gavel => {
            let t = tessera_traces::gavel::Throughputs::load(&table.path)?;
            let reference = table.reference_model.as_deref().unwrap_or("v100");
            let mut classes = Vec::new();
            for job_type in t.job_types() {
                for sf in t.scale_factors(reference, &job_type) {
                    classes.push((tessera_traces::gavel::class_name(&job_type, sf), job_type.clone(), sf));
                }
            }
            Ok(t.speed_matrix(&classes, reference))
        }
    }
}

/// A bad source cell: the key it came from and what is wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeedError {
    pub key: String,
    pub message: String,
}

/// Builds the dense speed table over `classes` × the catalogue from cells given by name,
/// later cells overriding earlier ones. Cells of classes not in `classes` are ignored (one
/// table may serve several workloads); an unknown model or a speed that is not a positive
/// number is an error naming the cell's key.
pub fn layer<'a>(classes: &[String], catalogue: &Catalogue, cells: impl IntoIterator<Item = (String, &'a str, &'a str, f64)>) -> Result<SpeedTable, SpeedError> {
    let mut table = SpeedTable::uniform(classes.len(), catalogue.len());
    for (key, class, model, relative) in cells {
        let Some(model_id) = catalogue.lookup(model) else {
            return Err(SpeedError { key: format!("{key}.model"), message: format!("unknown device model `{model}`, expected one of: {}", catalogue.names().join(", ")) });
        };
        if !(relative.is_finite() && relative > 0.0) {
            return Err(SpeedError { key: format!("{key}.relative"), message: format!("expected a positive number, found {relative}") });
        }
        if let Some(c) = classes.iter().position(|c| c == class) {
            table.set(ClassId(c as u32), model_id, relative);
        }
    }
    Ok(table)
}
