//! The report's data layer: what an output directory holds, read with polars.
//!
//! Each run's jobs are read (Parquet where it was written, else CSV), only the columns a query
//! needs, and reduced one run at a time as a lazy query: a breakdown over several runs adds up
//! per-run sums and counts. So a sweep of many runs of a million jobs each holds one run's few
//! columns at a time, plus, for a CDF, one policy's column of one point.
//!
//! polars runs the queries on its in-memory engine over frames read by polars-io's readers.
//! Its file scans (`LazyFrame::scan_*`) run only on the streaming engine (`new_streaming`),
//! which brings polars' cloud I/O with it (object_store, reqwest, hyper, rustls, tokio): most
//! of a cold build, for nothing a run-by-run reduction needs.

use crate::ReportError;
use polars::prelude::*;
use polars_io::prelude::{CsvReadOptions, ParquetReader, SerReader};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The columns that hold text; every other column of tessera's CSV outputs is a number.
const TEXT_COLUMNS: &[&str] = &["policy", "tenant", "models", "outcome", "point", "metric"];
/// Columns that hold whole numbers (the rest are floating point, NaN allowed).
const INT_COLUMNS: &[&str] = &[
    "replication", "seed", "jobs", "completed", "preemptions", "events", "failures", "restarts", "n", "n_pairs", "queued", "running_jobs",
    "job_id", "node", "device", "model_id", "cpu_milli", "mem_mib",
];

/// The schema of one of tessera's CSV files, from its header: text, whole numbers or floats by
/// column name, so that every file of a kind reads with the same types whatever its content
/// (an all-empty column would otherwise be inferred as text).
pub fn csv_schema(path: &Path) -> Result<Schema, ReportError> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| ReportError::io(path, e))?;
    let mut header = String::new();
    std::io::BufReader::new(file).read_line(&mut header).map_err(|e| ReportError::io(path, e))?;
    let mut schema = Schema::default();
    for name in header.trim_end_matches(['\n', '\r']).split(',') {
        let dtype = if TEXT_COLUMNS.contains(&name) || name == "name" || name == "model" {
            DataType::String
        } else if INT_COLUMNS.contains(&name) || name.starts_with("tenant_jobs.") {
            DataType::Int64
        } else {
            DataType::Float64
        };
        schema.with_column(name.into(), dtype);
    }
    Ok(schema)
}

/// A CSV output with [`csv_schema`]'s types, only `columns` (all without).
pub fn read_csv(path: &Path, columns: Option<&[&str]>) -> Result<DataFrame, ReportError> {
    let schema = csv_schema(path)?;
    CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .with_columns(columns.map(|c| c.iter().map(|&name| PlSmallStr::from(name)).collect()))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(|e| ReportError::polars(path, e))
}

/// `NAME.parquet` beside `NAME.csv` if it is there and not older, else the CSV; only
/// `columns` (all without).
pub fn read(csv: &Path, columns: Option<&[&str]>) -> Result<DataFrame, ReportError> {
    let parquet = csv.with_extension("parquet");
    let fresh = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if parquet.is_file() && fresh(&parquet) >= fresh(csv) {
        return read_parquet(&parquet, columns);
    }
    read_csv(csv, columns)
}

/// One Parquet file, only `columns` (all without).
pub fn read_parquet(path: &Path, columns: Option<&[&str]>) -> Result<DataFrame, ReportError> {
    let file = std::fs::File::open(path).map_err(|e| ReportError::io(path, e))?;
    ParquetReader::new(file)
        .with_columns(columns.map(|c| c.iter().map(|&name| name.to_string()).collect()))
        .finish()
        .map_err(|e| ReportError::polars(path, e))
}

/// Runs a query; `what` names the file or directory in its error.
pub fn collect(lf: LazyFrame, what: &Path) -> Result<DataFrame, ReportError> {
    lf.collect().map_err(|e| ReportError::polars(what, e))
}

/// One run: a policy's replication at one point.
#[derive(Clone, Debug)]
pub struct Run {
    pub policy: String,
    pub replication: i64,
    pub dir: PathBuf,
}

/// One directory of `tessera sim` output (or one sweep point's of `tessera compare`).
#[derive(Clone, Debug)]
pub struct Point {
    /// The sweep point's label, empty without a sweep.
    pub label: String,
    pub dir: PathBuf,
    /// Policies in the order of `summary.csv` (the scenario's).
    pub policies: Vec<String>,
    pub runs: Vec<Run>,
    pub summary: DataFrame,
    /// Its scenario.json (null for outputs of a tessera that wrote none).
    pub meta: serde_json::Value,
}

impl Point {
    pub fn read(dir: &Path, label: &str) -> Result<Point, ReportError> {
        let path = dir.join("summary.csv");
        if !path.is_file() {
            return Err(ReportError::Layout(format!("{}: no summary.csv; is this the output directory of `tessera sim` or `tessera compare`?", dir.display())));
        }
        let summary = read(&path, None)?;
        let policy = summary.column("policy").and_then(|c| c.str().cloned()).map_err(|e| ReportError::polars(&path, e))?;
        let reps = summary.column("replication").and_then(|c| c.i64().cloned()).map_err(|e| ReportError::polars(&path, e))?;
        let mut policies: Vec<String> = Vec::new();
        let mut runs = Vec::new();
        for (p, r) in policy.into_iter().zip(reps.into_iter()) {
            let (Some(p), Some(r)) = (p, r) else { continue };
            if !policies.iter().any(|x| x == p) {
                policies.push(p.to_string());
            }
            runs.push(Run { policy: p.to_string(), replication: r, dir: dir.join(p).join(format!("r{r}")) });
        }
        let meta = std::fs::read_to_string(dir.join("scenario.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        Ok(Point { label: label.to_string(), dir: dir.to_path_buf(), policies, runs, summary, meta })
    }

    /// One run's jobs, only `columns`, as a lazy frame to query.
    pub fn jobs(run: &Run, columns: &[&str]) -> Result<LazyFrame, ReportError> {
        read(&run.dir.join("jobs.csv"), Some(columns)).map(IntoLazy::lazy)
    }

    /// The time series of a run, if it recorded them.
    pub fn timeseries(&self, run: &Run) -> Result<Option<DataFrame>, ReportError> {
        let path = run.dir.join("timeseries.csv");
        if !path.is_file() {
            return Ok(None);
        }
        read(&path, None).map(Some)
    }
}

/// An output directory: one point, or a sweep's points, with the comparison if there is one.
pub struct Outputs {
    pub dir: PathBuf,
    pub meta: serde_json::Value,
    pub points: Vec<Point>,
    pub comparison: Option<DataFrame>,
    /// Swept parameters and each point's values, in point order.
    pub sweep: Vec<(String, Vec<f64>)>,
}

impl Outputs {
    pub fn read(dir: &Path) -> Result<Outputs, ReportError> {
        let meta_path = dir.join("scenario.json");
        let meta: serde_json::Value = match std::fs::read_to_string(&meta_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ReportError::Layout(format!("{}: {e}", meta_path.display())))?,
            Err(_) => serde_json::Value::Null,
        };
        let comparison_path = dir.join("comparison.csv");
        let comparison = if comparison_path.is_file() { Some(read(&comparison_path, None)?) } else { None };
        let mut points = Vec::new();
        let mut sweep: Vec<(String, Vec<f64>)> = Vec::new();
        match meta.get("sweep_points").and_then(|p| p.as_array()) {
            Some(list) if !dir.join("summary.csv").is_file() => {
                for p in list {
                    let label = p["label"].as_str().unwrap_or_default();
                    points.push(Point::read(&dir.join(label), label)?);
                    if let Some(values) = p["values"].as_object() {
                        for (k, v) in values {
                            match sweep.iter_mut().find(|(name, _)| name == k) {
                                Some((_, vs)) => vs.push(v.as_f64().unwrap_or(f64::NAN)),
                                None => sweep.push((k.clone(), vec![v.as_f64().unwrap_or(f64::NAN)])),
                            }
                        }
                    }
                }
            }
            _ => points.push(Point::read(dir, "")?),
        }
        Ok(Outputs { dir: dir.to_path_buf(), meta, points, comparison, sweep })
    }
}

/// Each policy's empirical CDF of `column` over every run of the point, as at most `max_points`
/// (value, fraction) pairs; only jobs with a value (ended ones for JCT and wait) count.
pub fn cdf(point: &Point, column: &str, max_points: usize) -> Result<Vec<(String, Vec<(f64, f64)>)>, ReportError> {
    let mut out = Vec::new();
    for policy in &point.policies {
        let mut values: Vec<f64> = Vec::new();
        for run in point.runs.iter().filter(|r| &r.policy == policy) {
            let df = collect(Point::jobs(run, &[column])?.select([col(column)]).drop_nulls(None), &run.dir)?;
            values.extend(f64s(&df, column).into_iter().filter(|v| !v.is_nan()));
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let mut pts = Vec::new();
        if n > 0 {
            let step = (n / max_points).max(1);
            let mut i = step - 1;
            while i < n {
                pts.push((values[i], (i + 1) as f64 / n as f64));
                i += step;
            }
            if pts.last().is_none_or(|&(_, f)| f < 1.0) {
                pts.push((values[n - 1], 1.0));
            }
        }
        out.push((policy.clone(), pts));
    }
    Ok(out)
}

/// Sums and counts that add up over runs into a mean.
#[derive(Clone, Copy, Debug, Default)]
struct MeanParts {
    sum: f64,
    n: f64,
}

impl MeanParts {
    fn add(&mut self, sum: f64, n: f64) {
        if n > 0.0 {
            self.sum += sum;
            self.n += n;
        }
    }
    fn mean(self) -> f64 {
        if self.n > 0.0 { self.sum / self.n } else { f64::NAN }
    }
}

/// One policy's jobs of one tenant, over every run of a point.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantRow {
    pub policy: String,
    pub tenant: String,
    /// Jobs submitted, summed over the runs.
    pub jobs: u64,
    /// Means over the jobs that have a value (ended ones); NaN where none has.
    pub mean_jct_s: f64,
    pub mean_wait_s: f64,
}

/// Per policy and tenant: jobs, mean JCT and mean wait, over every run of the point, in the
/// order of the point's policies, then tenants by name.
pub fn per_tenant(point: &Point) -> Result<Vec<TenantRow>, ReportError> {
    let mut acc: BTreeMap<(usize, String), (u64, MeanParts, MeanParts)> = BTreeMap::new();
    for run in &point.runs {
        let lf = Point::jobs(run, &["tenant", "jct_s", "wait_s"])?.group_by([col("tenant")]).agg([
            len().cast(DataType::Float64).alias("jobs"),
            col("jct_s").sum().alias("jct_sum"),
            col("jct_s").count().cast(DataType::Float64).alias("jct_n"),
            col("wait_s").sum().alias("wait_sum"),
            col("wait_s").count().cast(DataType::Float64).alias("wait_n"),
        ]);
        let Some(policy) = point.policies.iter().position(|p| p == &run.policy) else { continue };
        let df = collect(lf, &run.dir)?;
        let columns = ["jobs", "jct_sum", "jct_n", "wait_sum", "wait_n"].map(|c| f64s(&df, c));
        for (i, tenant) in strs(&df, "tenant").into_iter().enumerate() {
            let entry = acc.entry((policy, tenant)).or_default();
            entry.0 += columns[0][i] as u64;
            entry.1.add(columns[1][i], columns[2][i]);
            entry.2.add(columns[3][i], columns[4][i]);
        }
    }
    Ok(acc
        .into_iter()
        .map(|((policy, tenant), (jobs, jct, wait))| TenantRow {
            policy: point.policies[policy].clone(),
            tenant,
            jobs,
            mean_jct_s: jct.mean(),
            mean_wait_s: wait.mean(),
        })
        .collect())
}

/// Jain's index over tenants of 1 / (the tenant's mean bounded slowdown), per run, as
/// `tessera compare` defines its `jain_fairness` (bounded at 10 s of run time): (policy,
/// replication, index) in the order of the point's runs, for runs where a job ended.
pub fn jain_per_run(point: &Point) -> Result<Vec<(String, i64, f64)>, ReportError> {
    // max() by when/then: polars' clip needs its `round_series` feature, a build cost for two calls.
    let at_least = |e: Expr, floor: f64| when(e.clone().gt(lit(floor))).then(e).otherwise(lit(floor));
    let mut out = Vec::new();
    for run in &point.runs {
        let bsd = at_least(col("jct_s") / at_least(col("run_s"), 10.0), 1.0);
        let lf = Point::jobs(run, &["tenant", "jct_s", "run_s"])?
            .filter(col("jct_s").is_not_null())
            .group_by([col("tenant")])
            .agg([bsd.mean().alias("bsd")])
            .select([(lit(1.0) / col("bsd")).alias("x")])
            .select([(col("x").sum() * col("x").sum() / (col("x").count().cast(DataType::Float64) * (col("x") * col("x")).sum())).alias("jain")]);
        let df = collect(lf, &run.dir)?;
        // A run where no job ended has no index (0/0), and no sample.
        if let Some(&jain) = f64s(&df, "jain").first().filter(|j| !j.is_nan()) {
            out.push((run.policy.clone(), run.replication, jain));
        }
    }
    Ok(out)
}

/// Mean JCT per policy in each of `windows` equal windows of submission time: how the service
/// changes as the load does over the run.
pub fn jct_by_window(point: &Point, windows: usize) -> Result<Vec<(String, Vec<(f64, f64)>)>, ReportError> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for run in &point.runs {
        let span = collect(Point::jobs(run, &["submit_s"])?.select([col("submit_s").min().alias("lo"), col("submit_s").max().alias("hi")]), &run.dir)?;
        let first = |name: &str| f64s(&span, name).first().copied().filter(|v| !v.is_nan());
        lo = first("lo").map_or(lo, |v| lo.min(v));
        hi = first("hi").map_or(hi, |v| hi.max(v));
    }
    if lo > hi {
        (lo, hi) = (0.0, 0.0);
    }
    let width = ((hi - lo) / windows as f64).max(1.0);
    let mut acc: Vec<BTreeMap<i64, MeanParts>> = vec![BTreeMap::new(); point.policies.len()];
    for run in &point.runs {
        let Some(policy) = point.policies.iter().position(|p| p == &run.policy) else { continue };
        let lf = Point::jobs(run, &["submit_s", "jct_s"])?
            .filter(col("jct_s").is_not_null())
            // Non-negative, so truncation is the floor (`floor` needs polars' `round_series`).
            .with_column(((col("submit_s") - lit(lo)) / lit(width)).cast(DataType::Int64).alias("window"))
            .group_by([col("window")])
            .agg([col("jct_s").sum().alias("jct_sum"), col("jct_s").count().cast(DataType::Float64).alias("jct_n")]);
        let df = collect(lf, &run.dir)?;
        let (sums, counts) = (f64s(&df, "jct_sum"), f64s(&df, "jct_n"));
        for (i, w) in f64s(&df, "window").into_iter().enumerate() {
            acc[policy].entry(w as i64).or_default().add(sums[i], counts[i]);
        }
    }
    Ok(point
        .policies
        .iter()
        .zip(acc)
        .map(|(p, windows_of_p)| {
            let pts = windows_of_p
                .into_iter()
                // The window's middle, in hours from the first submission.
                .map(|(w, parts)| (((w as f64).min(windows as f64 - 1.0) + 0.5) * width / 3600.0, parts.mean()))
                .collect();
            (p.clone(), pts)
        })
        .collect())
}

/// A numeric column of a frame, nulls as NaN.
pub fn f64s(df: &DataFrame, name: &str) -> Vec<f64> {
    match df.column(name) {
        Ok(c) => match c.cast(&DataType::Float64) {
            Ok(c) => c.f64().map(|v| v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect()).unwrap_or_default(),
            Err(_) => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}

/// A text column of a frame, nulls as empty strings.
pub fn strs(df: &DataFrame, name: &str) -> Vec<String> {
    match df.column(name).and_then(|c| c.str().cloned()) {
        Ok(v) => v.into_iter().map(|x| x.unwrap_or_default().to_string()).collect(),
        Err(_) => Vec::new(),
    }
}
