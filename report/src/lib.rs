//! tessera-report: the HTML report and the Parquet outputs of `tessera sim` and
//! `tessera compare`, read back from their output directory.
//!
//! This crate is where polars and plotters live. The simulator writes plain CSV (and the time
//! series it recorded into plain vectors); everything here runs after the runs, on their files,
//! so neither library is in the simulator's hot loop, nor in `core`.
//!
//! - [`write_parquet`]: `NAME.parquet` beside each `summary.csv`, `comparison.csv`, `jobs.csv`
//!   and `timeseries.csv`.
//! - [`write_report`]: `report.html` (one self-contained file: inline SVG charts and styles, no
//!   scripts, fonts or anything else from the network) and each chart as `plots/<name>.svg` and
//!   `plots/<name>.png`.

pub mod chart;
pub mod data;
pub mod html;
pub mod parquet;

use chart::{Bars, Chart};
use data::{f64s, strs, Outputs, Point};
use html::Page;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera_reports::compare::{compare_runs, RunSample};

pub use parquet::write_parquet;
/// For readers of the Parquet outputs (and the tests) to use the same polars.
pub use polars;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Polars { path: PathBuf, message: String },
    #[error("{0}")]
    Layout(String),
    #[error("{path}: {message}")]
    Chart { path: PathBuf, message: String },
}

impl ReportError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ReportError {
        ReportError::Io { path: path.to_path_buf(), source }
    }
    pub(crate) fn polars(path: &Path, e: polars::prelude::PolarsError) -> ReportError {
        ReportError::Polars { path: path.to_path_buf(), message: e.to_string() }
    }
}

/// What [`write_report`] wrote.
#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    pub charts: usize,
    pub seconds: f64,
}

/// One row of statistics: a metric's mean over a policy's replications, with its interval and
/// the paired difference to the baseline policy.
#[derive(Clone, Debug)]
struct Stat {
    point: String,
    metric: String,
    policy: String,
    n: i64,
    mean: f64,
    low: f64,
    high: f64,
    diff: f64,
    diff_low: f64,
    diff_high: f64,
    p: f64,
}

/// The summary metrics the report charts as bars, with their axis units.
const BAR_METRICS: &[(&str, &str, &str)] = &[
    ("avg_jct_s", "Mean JCT", "seconds"),
    ("p95_jct_s", "95th percentile JCT", "seconds"),
    ("avg_wait_s", "Mean wait", "seconds"),
    ("p95_wait_s", "95th percentile wait", "seconds"),
    ("avg_bounded_slowdown", "Mean bounded slowdown", "ratio (>= 1)"),
    ("utilization", "Utilization", "fraction of device-time"),
];

/// Writes `dir/report.html` and `dir/plots/<name>.svg` and `.png` from the outputs in `dir`.
pub fn write_report(dir: &Path) -> Result<Report, ReportError> {
    let started = Instant::now();
    let out = Outputs::read(dir)?;
    let name = out.meta.get("name").and_then(|v| v.as_str()).map(str::to_string).unwrap_or_else(|| dir.display().to_string());
    let mut page = Page::new(&format!("tessera report: {name}"));
    page.h(1, &format!("tessera report: {name}"));
    page.note(&format!("From {}. Every chart is also in plots/ as SVG and PNG.", dir.display()));

    scenario_section(&mut page, &out);

    let first = &out.points[0];
    let stats = statistics(&out)?;
    let mut charts: Vec<Chart> = Vec::new();

    page.h(2, "Comparison");
    page.note(&if out.comparison.is_some() {
        "From comparison.csv: each metric's mean over the replications with its 95% Student-t interval, and the paired difference to the first policy (the baseline) with its interval and paired-t p-value, over the jobs the scenario's [metrics] counts.".to_string()
    } else {
        "From summary.csv (no comparison.csv: this is the output of `tessera sim`): each metric's mean over the replications with its 95% Student-t interval, and the paired difference to the first policy; fairness from the runs' jobs.".to_string()
    });
    comparison_table(&mut page, &stats, &first.policies);

    // Distributions.
    let point_note = if first.label.is_empty() { String::new() } else { format!(" (sweep point {})", first.label) };
    page.h(2, &format!("Distributions{point_note}"));
    let jct = data::cdf(first, "jct_s", 400)?;
    let wait = data::cdf(first, "wait_s", 400)?;
    let c1 = chart::lines("jct_cdf", "CDF of job completion time", "JCT (s, log scale)", "fraction of ended jobs", &jct, true);
    let c2 = chart::lines("wait_cdf", "CDF of waiting time", "wait (s, log scale; 0 s left out)", "fraction of ended jobs", &wait, true);
    let zero_wait: Vec<String> = wait.iter().map(|(p, pts)| format!("{p}: {:.0}%", 100.0 * pts.iter().filter(|(x, _)| *x <= 0.0).map(|(_, f)| *f).fold(0.0, f64::max))).collect();
    let windows = data::jct_by_window(first, 24)?;
    let c3 = chart::lines("jct_by_window", "Mean JCT by submission window", "submitted at (hours from the first job)", "mean JCT (s)", &windows, false);
    let caption_wait = format!("Jobs that never waited sit at 0 s, which a log axis cannot show: {}.", zero_wait.join(", "));
    page.charts(&[&c1, &c2, &c3], &["Every ended job of every replication.", &caption_wait, "Jobs grouped into 24 equal windows of submission time."]);
    charts.extend([c1, c2, c3]);

    // Over time.
    timeseries_section(&mut page, first, &mut charts)?;

    // Summary bars with intervals, one category per sweep point.
    page.h(2, "Summary metrics");
    page.note("Bars are means over the replications; whiskers their 95% confidence intervals (none with a single replication).");
    let mut bar_charts = Vec::new();
    for &(metric, title, unit) in BAR_METRICS {
        if let Some(b) = stat_bars(&out, &stats, metric) {
            bar_charts.push(chart::bars(&format!("bars_{metric}"), title, if out.points.len() > 1 { "sweep point" } else { "" }, unit, &b));
        }
    }
    if let Some(b) = stat_bars(&out, &stats, "jain_fairness") {
        bar_charts.push(chart::bars("fairness", "Fairness: Jain's index over tenants", if out.points.len() > 1 { "sweep point" } else { "" }, "index (1 = equal)", &b));
    }
    page.charts(&bar_charts.iter().collect::<Vec<_>>(), &[]);
    charts.extend(bar_charts);

    // Sweeps: each metric against the swept parameter.
    if out.points.len() > 1 {
        page.h(2, "Sweep");
        let (x_name, xs): (String, Vec<f64>) = match out.sweep.as_slice() {
            [(k, v)] if v.iter().all(|x| x.is_finite()) => (k.clone(), v.clone()),
            _ => ("sweep point (index)".to_string(), (0..out.points.len()).map(|i| i as f64).collect()),
        };
        let mut sweep_charts = Vec::new();
        for &(metric, title, unit) in BAR_METRICS.iter().chain([("jain_fairness", "Jain's index", "index")].iter()) {
            let series: Vec<(String, Vec<(f64, f64)>)> = first
                .policies
                .iter()
                .map(|p| {
                    let pts = out.points.iter().zip(&xs).filter_map(|(pt, &x)| stats.iter().find(|s| s.point == pt.label && s.metric == metric && &s.policy == p).map(|s| (x, s.mean))).collect();
                    (p.clone(), pts)
                })
                .collect();
            if series.iter().any(|(_, pts)| !pts.is_empty()) {
                sweep_charts.push(chart::lines(&format!("sweep_{metric}"), &format!("{title} against {x_name}"), &x_name, unit, &series, false));
            }
        }
        page.charts(&sweep_charts.iter().collect::<Vec<_>>(), &[]);
        charts.extend(sweep_charts);
    }

    // World models.
    if out.meta.get("world_models").and_then(|v| v.as_bool()).unwrap_or(false) {
        page.h(2, "World models");
        page.note("Means over the replications of what the scenario's world models cost each policy (from summary.csv).");
        let mut world = Vec::new();
        let summary_stats = summary_statistics(&out, &["lost_work_s", "preemptions", "failures"]);
        for (metric, title, unit) in [("lost_work_s", "Lost work", "reference-device seconds"), ("preemptions", "Preemptions", "count per run"), ("failures", "Failures", "count per run")] {
            if let Some(b) = stat_bars(&out, &summary_stats, metric) {
                world.push(chart::bars(&format!("world_{metric}"), title, if out.points.len() > 1 { "sweep point" } else { "" }, unit, &b));
            }
        }
        page.charts(&world.iter().collect::<Vec<_>>(), &[]);
        charts.extend(world);
    }

    // Per tenant, at every sweep point.
    let sweep = out.points.len() > 1;
    page.h(2, "Per tenant");
    let mut rows: Vec<Vec<String>> = Vec::new();
    for point in &out.points {
        let tenants = data::per_tenant(point)?;
        rows.extend(tenants.into_iter().map(|t| {
            let row = vec![t.policy, t.tenant, t.jobs.to_string(), fmt(t.mean_jct_s), fmt(t.mean_wait_s)];
            if sweep { std::iter::once(point.label.clone()).chain(row).collect() } else { row }
        }));
    }
    page.note("Over every replication; jobs counts each replication's jobs.");
    if sweep {
        page.table(&["sweep point", "policy", "tenant", "jobs", "mean JCT (s)", "mean wait (s)"], &rows, 3);
    } else {
        page.table(&["policy", "tenant", "jobs", "mean JCT (s)", "mean wait (s)"], &rows, 2);
    }

    let plots = dir.join("plots");
    std::fs::create_dir_all(&plots).map_err(|e| ReportError::io(&plots, e))?;
    for c in &charts {
        let path = plots.join(format!("{}.svg", c.name));
        std::fs::write(&path, &c.svg).map_err(|e| ReportError::io(&path, e))?;
        let path = plots.join(format!("{}.png", c.name));
        let png = c.png().map_err(|message| ReportError::Chart { path: path.clone(), message })?;
        std::fs::write(&path, png).map_err(|e| ReportError::io(&path, e))?;
    }
    let path = dir.join("report.html");
    let tmp = dir.join("report.html.tmp");
    std::fs::write(&tmp, page.finish()).map_err(|e| ReportError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| ReportError::io(&path, e))?;
    Ok(Report { path, charts: charts.len(), seconds: started.elapsed().as_secs_f64() })
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn scenario_section(page: &mut Page, out: &Outputs) {
    page.h(2, "Scenario");
    let m = &out.meta;
    if m.is_null() {
        page.note("No scenario.json in this directory (outputs of an older tessera): the scenario is not described.");
        return;
    }
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let w = &m["workload"];
    let devices: Vec<String> = m["cluster"]["devices"].as_array().into_iter().flatten().map(|d| format!("{} x {}", s(&d["count"]), s(&d["model"]))).collect();
    let mut rows = vec![
        vec!["scenario".to_string(), s(&m["name"])],
        vec!["cluster".into(), format!("{} nodes: {}", s(&m["cluster"]["nodes"]), devices.join(", "))],
        vec!["workload".into(), s(&w["source"])],
        vec![
            "jobs".into(),
            format!(
                "{} jobs from {} tenants over {:.1} h of submissions; {:.2} devices per job on average; {:.0} device-hours of work on the reference device",
                s(&w["jobs"]),
                s(&w["tenants"]),
                w["submit_span_s"].as_f64().unwrap_or(f64::NAN) / 3600.0,
                w["mean_devices"].as_f64().unwrap_or(f64::NAN),
                w["device_hours_of_work"].as_f64().unwrap_or(f64::NAN)
            ),
        ],
        vec!["seed".into(), format!("{} (replication k uses seed + k)", s(&m["seed"]))],
        vec!["replications".into(), s(&m["replications"])],
        vec!["world models".into(), if m["world_models"].as_bool().unwrap_or(false) { "on".into() } else { "off".into() }],
        vec!["time series".into(), format!("every {} s of simulated time", s(&m["timeseries_s"]))],
        vec!["jobs measured".into(), measured(&m["metrics"])],
        vec!["tessera".into(), format!("version {}, revision {}", s(&m["tessera_version"]), s(&m["revision"]))],
    ];
    if let Some(points) = m["sweep_points"].as_array() {
        rows.push(vec!["sweep points".into(), points.iter().map(|p| s(&p["label"])).collect::<Vec<_>>().join("; ")]);
    }
    page.table(&["", ""], &rows, 2);
    page.h(3, "Policies");
    let policies: Vec<Vec<String>> = m["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let label = p.get("label").filter(|l| !l.is_null()).or(p.get("name")).map(s).unwrap_or_default();
            let params: Vec<String> = p.as_object().into_iter().flatten().filter(|(k, v)| !v.is_null() && *k != "label").map(|(k, v)| format!("{k} = {}", s(v))).collect();
            vec![label, params.join(", ")]
        })
        .collect();
    page.table(&["policy", "parameters"], &policies, 2);
    page.h(3, "Inputs");
    let inputs: Vec<Vec<String>> = m["inputs"].as_array().into_iter().flatten().map(|i| vec![s(&i["path"]), s(&i["sha256"])]).collect();
    page.table(&["file", "SHA-256"], &inputs, 2);
}

/// `[metrics]` in words.
fn measured(m: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some([a, b]) = m["job_ids"].as_array().map(|v| v.iter().filter_map(|x| x.as_f64()).collect::<Vec<_>>()).as_deref() {
        parts.push(format!("job ids {a} to {b}"));
    }
    if let Some([a, b]) = m["submit_window_s"].as_array().map(|v| v.iter().filter_map(|x| x.as_f64()).collect::<Vec<_>>()).as_deref() {
        parts.push(format!("submitted in [{a}, {b:e}) s"));
    }
    if parts.is_empty() { "all jobs".to_string() } else { format!("{} (by `tessera compare`; `tessera sim` counts all)", parts.join(", ")) }
}

/// The comparison's rows: comparison.csv's when there is one, else computed from the
/// summaries and the jobs (for the output of `tessera sim`).
fn statistics(out: &Outputs) -> Result<Vec<Stat>, ReportError> {
    if let Some(df) = &out.comparison {
        let (point, metric, policy) = (strs(df, "point"), strs(df, "metric"), strs(df, "policy"));
        let cols: Vec<Vec<f64>> = ["n", "mean", "ci_low", "ci_high", "diff_vs_baseline", "diff_ci_low", "diff_ci_high", "p_value"].iter().map(|c| f64s(df, c)).collect();
        return Ok((0..df.height())
            .map(|i| Stat {
                point: point[i].clone(),
                metric: metric[i].clone(),
                policy: policy[i].clone(),
                n: cols[0][i] as i64,
                mean: cols[1][i],
                low: cols[2][i],
                high: cols[3][i],
                diff: cols[4][i],
                diff_low: cols[5][i],
                diff_high: cols[6][i],
                p: cols[7][i],
            })
            .collect());
    }
    let mut stats = summary_statistics(out, &["avg_jct_s", "p50_jct_s", "p95_jct_s", "p99_jct_s", "avg_wait_s", "p95_wait_s", "avg_bounded_slowdown", "makespan_s", "utilization", "preemptions"]);
    for point in &out.points {
        let jain = data::jain_per_run(point)?;
        let samples: Vec<RunSample> = jain
            .into_iter()
            .map(|(policy, r, j)| RunSample { policy, replication: r as u32, values: vec![("jain_fairness".to_string(), j)] })
            .collect();
        let mut ordered = Vec::new();
        for p in &point.policies {
            let mut mine: Vec<RunSample> = samples.iter().filter(|s| &s.policy == p).cloned().collect();
            mine.sort_by_key(|s| s.replication);
            ordered.extend(mine);
        }
        stats.extend(compare_runs(&ordered, &point.label).into_iter().map(stat_of));
    }
    Ok(stats)
}

fn stat_of(r: tessera_reports::ComparisonRow) -> Stat {
    Stat {
        point: r.point,
        metric: r.metric,
        policy: r.policy,
        n: i64::from(r.value.n),
        mean: r.value.mean,
        low: r.value.low,
        high: r.value.high,
        diff: r.diff.mean,
        diff_low: r.diff.low,
        diff_high: r.diff.high,
        p: r.p_value,
    }
}

/// Statistics of summary.csv's columns over each point's replications.
fn summary_statistics(out: &Outputs, metrics: &[&str]) -> Vec<Stat> {
    let mut stats = Vec::new();
    for point in &out.points {
        let df = &point.summary;
        let (policy, rep) = (strs(df, "policy"), f64s(df, "replication"));
        let cols: Vec<Vec<f64>> = metrics.iter().map(|m| f64s(df, m)).collect();
        let samples: Vec<RunSample> = (0..df.height())
            .map(|i| RunSample {
                policy: policy[i].clone(),
                replication: rep[i] as u32,
                values: metrics.iter().zip(&cols).filter(|(_, c)| !c.is_empty()).map(|(m, c)| (m.to_string(), c[i])).collect(),
            })
            .collect();
        stats.extend(compare_runs(&samples, &point.label).into_iter().map(stat_of));
    }
    stats
}

fn comparison_table(page: &mut Page, stats: &[Stat], policies: &[String]) {
    let ci = |lo: f64, hi: f64| if lo.is_finite() && hi.is_finite() { format!("[{}, {}]", fmt(lo), fmt(hi)) } else { String::new() };
    let rows: Vec<Vec<String>> = stats
        .iter()
        .filter(|s| !s.metric.starts_with("device_hours_per_job:") || s.mean.is_finite())
        .map(|s| {
            let baseline = policies.first() == Some(&s.policy);
            vec![
                s.point.clone(),
                s.metric.clone(),
                s.policy.clone(),
                s.n.to_string(),
                fmt(s.mean),
                ci(s.low, s.high),
                if baseline { "baseline".into() } else { format!("{} {}", fmt(s.diff), ci(s.diff_low, s.diff_high)) },
                if s.p.is_finite() { format!("{:.3}", s.p) } else { String::new() },
            ]
        })
        .collect();
    page.table(&["point", "metric", "policy", "n", "mean", "95% CI", "diff vs baseline [95% CI]", "p"], &rows, 3);
}

/// Bars of one metric: a category per sweep point, a bar per policy with its interval.
fn stat_bars(out: &Outputs, stats: &[Stat], metric: &str) -> Option<Bars> {
    let policies = &out.points[0].policies;
    let categories: Vec<String> = out.points.iter().map(|p| if p.label.is_empty() { "all jobs".to_string() } else { p.label.clone() }).collect();
    let series: Vec<(String, Vec<(f64, Option<(f64, f64)>)>)> = policies
        .iter()
        .map(|p| {
            let values = out
                .points
                .iter()
                .map(|pt| match stats.iter().find(|s| s.point == pt.label && s.metric == metric && &s.policy == p) {
                    Some(s) => (s.mean, Some((s.low, s.high)).filter(|(l, h)| l.is_finite() && h.is_finite())),
                    None => (f64::NAN, None),
                })
                .collect();
            (p.clone(), values)
        })
        .collect();
    series.iter().any(|(_, v)| v.iter().any(|(m, _)| m.is_finite())).then_some(Bars { categories, series })
}

/// Queue length and busy devices over time per policy, utilization by model and each tenant's
/// share of devices, from the first replication's time series of each policy.
fn timeseries_section(page: &mut Page, point: &Point, charts: &mut Vec<Chart>) -> Result<(), ReportError> {
    let point_note = if point.label.is_empty() { String::new() } else { format!(", sweep point {}", point.label) };
    page.h(2, &format!("Over time (replication 0{point_note})"));
    let mut queue = Vec::new();
    let mut busy = Vec::new();
    let mut per_policy = Vec::new();
    for policy in &point.policies {
        let Some(run) = point.runs.iter().find(|r| &r.policy == policy) else { continue };
        let Some(ts) = point.timeseries(run)? else { continue };
        let hours: Vec<f64> = f64s(&ts, "t_s").iter().map(|t| t / 3600.0).collect();
        queue.push((policy.clone(), hours.iter().copied().zip(f64s(&ts, "queued")).collect::<Vec<_>>()));
        busy.push((policy.clone(), hours.iter().copied().zip(f64s(&ts, "busy_devices")).collect::<Vec<_>>()));
        per_policy.push((policy.clone(), hours, ts));
    }
    if per_policy.is_empty() {
        page.note("These runs recorded no time series ([outputs] timeseries_s = 0).");
        return Ok(());
    }
    let c1 = chart::lines("queue_length", "Queue length over time", "simulated time (hours)", "jobs waiting", &queue, false);
    let c2 = chart::lines("busy_devices", "Busy devices over time", "simulated time (hours)", "devices", &busy, false);

    // Utilization by model: mean busy devices of the model over the samples, over its count.
    let capacity = model_capacity(point);
    let models: Vec<String> = capacity.iter().map(|(m, _)| m.clone()).collect();
    let util = Bars {
        categories: models.clone(),
        series: per_policy
            .iter()
            .map(|(p, _, ts)| {
                let values = capacity
                    .iter()
                    .map(|(m, cap)| {
                        let b = f64s(ts, &format!("busy_devices.{m}"));
                        let mean = if b.is_empty() { f64::NAN } else { b.iter().sum::<f64>() / b.len() as f64 };
                        (mean / cap, None)
                    })
                    .collect();
                (p.clone(), values)
            })
            .collect(),
    };
    let c3 = chart::bars("utilization_by_model", "Utilization by device model", "device model", "mean busy / devices", &util);
    page.charts(&[&c1, &c2, &c3], &["", "", "Time-average over the samples of the first replication, to the last event."]);
    charts.extend([c1, c2, c3]);

    page.h(3, "Each tenant's share of the devices");
    let mut tenant_charts = Vec::new();
    for (p, hours, ts) in &per_policy {
        let total: f64 = capacity.iter().map(|(_, c)| c).sum();
        let columns: Vec<String> = ts.get_column_names().iter().filter_map(|c| c.strip_prefix("tenant_devices.").map(str::to_string)).collect();
        let mut by_tenant: Vec<(String, Vec<f64>)> = columns.iter().map(|t| (t.clone(), f64s(ts, &format!("tenant_devices.{t}")).iter().map(|d| d / total).collect())).collect();
        // The seven tenants that held the most device-time, the rest together.
        by_tenant.sort_by(|a, b| b.1.iter().sum::<f64>().total_cmp(&a.1.iter().sum::<f64>()).then(a.0.cmp(&b.0)));
        if by_tenant.len() > 8 {
            let rest = by_tenant.split_off(7);
            let mut other = vec![0.0; hours.len()];
            for (_, v) in &rest {
                for (o, x) in other.iter_mut().zip(v) {
                    *o += x;
                }
            }
            by_tenant.push((format!("{} others", rest.len()), other));
        }
        tenant_charts.push(chart::stacked(&format!("tenant_share_{}", file_safe(p)), &format!("Share of devices by tenant: {p}"), "simulated time (hours)", "fraction of all devices", hours, &by_tenant));
    }
    page.charts(&tenant_charts.iter().collect::<Vec<_>>(), &[]);
    charts.extend(tenant_charts);
    Ok(())
}

/// Devices per model: from the point's scenario.json (a sweep may scale the cluster), else
/// from its devices.csv.
fn model_capacity(point: &Point) -> Vec<(String, f64)> {
    let from_meta: Vec<(String, f64)> = point.meta["cluster"]["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| Some((d["model"].as_str()?.to_string(), d["count"].as_f64()?)))
        .collect();
    if !from_meta.is_empty() {
        return from_meta;
    }
    let path = point.dir.join("devices.csv");
    let Ok(df) = data::read_csv(&path, None) else { return Vec::new() };
    let mut counts: Vec<(String, f64)> = Vec::new();
    for m in strs(&df, "model") {
        match counts.iter_mut().find(|(k, _)| *k == m) {
            Some((_, n)) => *n += 1.0,
            None => counts.push((m, 1.0)),
        }
    }
    counts
}

fn file_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
