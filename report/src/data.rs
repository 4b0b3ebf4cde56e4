//! The report's data layer: what an output directory holds, read with polars.
//!
//! Jobs are scanned lazily (Parquet where it was written, else CSV) and reduced before they are
//! collected, so that a sweep of many runs of a million jobs each never holds more than one
//! policy's column of one point in memory.

use crate::ReportError;
use polars::prelude::*;
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

/// A CSV output as a lazy frame with [`csv_schema`]'s types.
pub fn scan_csv(path: &Path) -> Result<LazyFrame, ReportError> {
    let schema = csv_schema(path)?;
    LazyCsvReader::new(PlPath::new(&path.to_string_lossy()))
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .finish()
        .map_err(|e| ReportError::polars(path, e))
}

/// `NAME.parquet` beside `NAME.csv` if it is there and not older, else the CSV.
pub fn scan(csv: &Path) -> Result<LazyFrame, ReportError> {
    let parquet = csv.with_extension("parquet");
    let fresh = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if parquet.is_file() && fresh(&parquet) >= fresh(csv) {
        return scan_parquet(&parquet);
    }
    scan_csv(csv)
}

/// One Parquet file. Hive partitioning is off: a sweep point's directory (`load_scale=1.5`)
/// looks like a partition and would otherwise add a column.
pub fn scan_parquet(path: &Path) -> Result<LazyFrame, ReportError> {
    let args = ScanArgsParquet { hive_options: polars::io::HiveOptions { enabled: Some(false), ..Default::default() }, ..ScanArgsParquet::default() };
    LazyFrame::scan_parquet(PlPath::new(&path.to_string_lossy()), args).map_err(|e| ReportError::polars(path, e))
}

/// Runs a query on polars' streaming engine: it reads the files in batches, so a sweep of many
/// large runs is held in memory only as far as the result needs (a CDF's sorted column), not
/// as every run's whole frame at once.
pub fn collect(lf: LazyFrame, what: &Path) -> Result<DataFrame, ReportError> {
    lf.collect_with_engine(Engine::Streaming).map_err(|e| ReportError::polars(what, e))
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
        let summary = collect(scan(&path)?, &path)?;
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

    /// Every run's jobs as one lazy frame with `policy` and `replication` columns added.
    pub fn jobs(&self) -> Result<LazyFrame, ReportError> {
        let mut frames = Vec::new();
        for run in &self.runs {
            let path = run.dir.join("jobs.csv");
            frames.push(scan(&path)?.with_columns([lit(run.policy.as_str()).alias("policy"), lit(run.replication).alias("replication")]));
        }
        concat(frames, UnionArgs::default()).map_err(|e| ReportError::polars(&self.dir, e))
    }

    /// The time series of a run, if it recorded them.
    pub fn timeseries(&self, run: &Run) -> Result<Option<DataFrame>, ReportError> {
        let path = run.dir.join("timeseries.csv");
        if !path.is_file() {
            return Ok(None);
        }
        collect(scan(&path)?, &path).map(Some)
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
        let comparison = if comparison_path.is_file() { Some(collect(scan(&comparison_path)?, &comparison_path)?) } else { None };
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
        let lf = point.jobs()?.filter(col("policy").eq(lit(policy.as_str()))).select([col(column)]).drop_nulls(None).sort([column], SortMultipleOptions::default());
        let df = collect(lf, &point.dir)?;
        let values = df.column(column).and_then(|c| c.f64().cloned()).map_err(|e| ReportError::polars(&point.dir, e))?;
        let n = values.len();
        let mut pts = Vec::new();
        if n > 0 {
            let step = (n / max_points).max(1);
            let mut i = step - 1;
            while i < n {
                pts.push((values.get(i).unwrap_or(f64::NAN), (i + 1) as f64 / n as f64));
                i += step;
            }
            if pts.last().is_none_or(|&(_, f)| f < 1.0) {
                pts.push((values.get(n - 1).unwrap_or(f64::NAN), 1.0));
            }
        }
        out.push((policy.clone(), pts));
    }
    Ok(out)
}

/// Per policy and tenant: jobs, mean JCT and mean wait, over every run of the point.
pub fn per_tenant(point: &Point) -> Result<DataFrame, ReportError> {
    let lf = point
        .jobs()?
        .group_by([col("policy"), col("tenant")])
        .agg([
            len().alias("jobs"),
            col("jct_s").mean().alias("mean_jct_s"),
            col("wait_s").mean().alias("mean_wait_s"),
            col("devices").sum().alias("devices_asked"),
        ])
        .sort(["policy", "tenant"], SortMultipleOptions::default());
    collect(lf, &point.dir)
}

/// Jain's index over tenants of 1 / (the tenant's mean bounded slowdown), per run, as
/// `tessera compare` defines its `jain_fairness` (bounded at 10 s of run time).
pub fn jain_per_run(point: &Point) -> Result<DataFrame, ReportError> {
    // max() by when/then: polars' clip needs its `round_series` feature, a build cost for two calls.
    let at_least = |e: Expr, floor: f64| when(e.clone().gt(lit(floor))).then(e).otherwise(lit(floor));
    let bsd = at_least(col("jct_s") / at_least(col("run_s"), 10.0), 1.0);
    let per_tenant = point
        .jobs()?
        .filter(col("jct_s").is_not_null())
        .group_by([col("policy"), col("replication"), col("tenant")])
        .agg([bsd.mean().alias("bsd")])
        .with_column((lit(1.0) / col("bsd")).alias("x"));
    let lf = per_tenant
        .group_by([col("policy"), col("replication")])
        .agg([(col("x").sum() * col("x").sum() / (col("x").count().cast(DataType::Float64) * (col("x") * col("x")).sum())).alias("jain")]);
    collect(lf, &point.dir)
}

/// Mean JCT per policy in each of `windows` equal windows of submission time: how the service
/// changes as the load does over the run.
pub fn jct_by_window(point: &Point, windows: usize) -> Result<Vec<(String, Vec<(f64, f64)>)>, ReportError> {
    let span = collect(point.jobs()?.select([col("submit_s").min().alias("lo"), col("submit_s").max().alias("hi")]), &point.dir)?;
    let get = |name: &str| span.column(name).ok().and_then(|c| c.f64().ok().and_then(|v| v.get(0))).unwrap_or(0.0);
    let (lo, hi) = (get("lo"), get("hi"));
    let width = ((hi - lo) / windows as f64).max(1.0);
    let lf = point
        .jobs()?
        .filter(col("jct_s").is_not_null())
        // Non-negative, so truncation is the floor (`floor` needs polars' `round_series`).
        .with_column(((col("submit_s") - lit(lo)) / lit(width)).cast(DataType::Int64).cast(DataType::Float64).alias("window"))
        .group_by([col("policy"), col("window")])
        .agg([col("jct_s").mean().alias("mean_jct_s")])
        .sort(["policy", "window"], SortMultipleOptions::default());
    let df = collect(lf, &point.dir)?;
    let policies = df.column("policy").and_then(|c| c.str().cloned()).map_err(|e| ReportError::polars(&point.dir, e))?;
    let window = df.column("window").and_then(|c| c.f64().cloned()).map_err(|e| ReportError::polars(&point.dir, e))?;
    let jct = df.column("mean_jct_s").and_then(|c| c.f64().cloned()).map_err(|e| ReportError::polars(&point.dir, e))?;
    let mut out: Vec<(String, Vec<(f64, f64)>)> = point.policies.iter().map(|p| (p.clone(), Vec::new())).collect();
    for ((p, w), j) in policies.into_iter().zip(window.into_iter()).zip(jct.into_iter()) {
        if let (Some(p), Some(w), Some(j)) = (p, w, j) {
            if let Some((_, pts)) = out.iter_mut().find(|(name, _)| name == p) {
                // The window's middle, in hours from the first submission.
                pts.push(((w.min(windows as f64 - 1.0) + 0.5) * width / 3600.0, j));
            }
        }
    }
    Ok(out)
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
