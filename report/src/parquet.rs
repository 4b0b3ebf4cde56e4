//! Parquet copies of the CSV outputs, so that users carry on in polars or pandas with typed
//! columns and without parsing text.

use crate::data::{read_csv, Outputs};
use crate::ReportError;
use polars_io::prelude::{ParquetCompression, ParquetWriter};
use std::path::{Path, PathBuf};

/// Writes `NAME.parquet` beside each `summary.csv`, `comparison.csv`, and each run's `jobs.csv`
/// and `timeseries.csv` under `dir`, with the types of [`crate::data::csv_schema`]. Returns the
/// files written.
pub fn write_parquet(dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let outputs = Outputs::read(dir)?;
    let mut csvs = vec![dir.join("comparison.csv")];
    for point in &outputs.points {
        csvs.push(point.dir.join("summary.csv"));
        for run in &point.runs {
            csvs.push(run.dir.join("jobs.csv"));
            csvs.push(run.dir.join("timeseries.csv"));
        }
    }
    let mut written = Vec::new();
    for csv in csvs.into_iter().filter(|p| p.is_file()) {
        written.push(csv_to_parquet(&csv)?);
    }
    Ok(written)
}

/// One CSV to Parquet beside it, written to a temporary name and renamed, so that a reader
/// never sees half a file and an interrupted run leaves the old one.
pub fn csv_to_parquet(csv: &Path) -> Result<PathBuf, ReportError> {
    let out = csv.with_extension("parquet");
    let tmp = csv.with_extension("parquet.tmp");
    let mut df = read_csv(csv, None)?;
    let file = std::fs::File::create(&tmp).map_err(|e| ReportError::io(&tmp, e))?;
    ParquetWriter::new(std::io::BufWriter::new(file))
        .with_compression(ParquetCompression::Snappy)
        .finish(&mut df)
        .map_err(|e| ReportError::polars(&tmp, e))?;
    std::fs::rename(&tmp, &out).map_err(|e| ReportError::io(&out, e))?;
    Ok(out)
}
