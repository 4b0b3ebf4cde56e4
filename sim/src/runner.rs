//! Runs a scenario: every policy x replication, in parallel over the machine's cores, each
//! run writing its own files, so the outputs do not depend on which thread ran what.
//!
//! Replication `k` of every policy runs on the same workload, drawn with seed `seed + k`:
//! common random numbers, so policies are compared on identical jobs.

use crate::engine::{self, JsonlSink, NullSink, RunLimits, RunOutput, World};
use crate::progress::Progress;
use crate::models::WorldModels;
use crate::scenario::{Scenario, ScenarioError, MAX_REPLICATIONS};
use crate::workload::{build_cluster, build_workload, Workload};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tessera_core::policy::gavel::{max_min_allocation, TypeDemand};
use tessera_core::policy::round::{RoundInput, RoundPlan, RoundPlanner, RoundStats};
use tessera_core::policy::SpeedTable;
use tessera_core::{Catalogue, ClusterState, ModelId, NodeSpec, Policy, PolicySpec, Time};
use tessera_reports::{
    compare_metrics, compare_runs, format_comparison_table, format_summary_table, run_metrics, write_comparison_csv, write_jobs_csv,
    write_summary_csv, ComparisonRow, JobFilter, RunSample, SummaryRow,
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no policy labelled `{wanted}` in the scenario; it has: {available}")]
    UnknownPolicy { wanted: String, available: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io { path: path.to_path_buf(), source }
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where to write; `None` writes nothing (tests that only want the rows).
    pub out_dir: Option<PathBuf>,
    /// Only the policy with this label (or name).
    pub policy: Option<String>,
    pub seed: Option<u64>,
    pub replications: Option<u32>,
    pub threads: usize,
    pub quiet: bool,
    /// The build's source revision, recorded in `scenario.json` for the report.
    pub revision: Option<String>,
    /// Counters for a progress display, if the caller draws one.
    pub progress: Option<Arc<Progress>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { out_dir: None, policy: None, seed: None, replications: None, threads: default_threads(), quiet: true, revision: None, progress: None }
    }
}

pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The policies a run selects, in scenario order.
pub(crate) fn selected_policies(scenario: &Scenario, wanted: Option<&str>) -> Result<Vec<PolicySpec>, RunError> {
    let Some(wanted) = wanted else {
        return Ok(scenario.policies.clone());
    };
    let chosen: Vec<PolicySpec> = scenario.policies.iter().filter(|p| p.label() == wanted).cloned().collect();
    let chosen = if chosen.is_empty() { scenario.policies.iter().filter(|p| p.name == wanted).cloned().collect() } else { chosen };
    if chosen.is_empty() {
        let available = scenario.policies.iter().map(|p| p.label().to_string()).collect::<Vec<_>>().join(", ");
        return Err(RunError::UnknownPolicy { wanted: wanted.to_string(), available });
    }
    Ok(chosen)
}

/// Everything one replication's runs share.
struct Replication {
    index: u32,
    seed: u64,
    workload: Workload,
    speed: SpeedTable,
    models: WorldModels,
}

/// One finished run, as the summary needs it.
pub struct RunResult {
    pub row: SummaryRow,
    pub output: RunOutput,
}

/// Runs the scenario and writes `summary.csv`, and per run `jobs.csv` and `decisions.jsonl`,
/// under `options.out_dir`. Returns the summary rows in (policy, replication) order.
pub fn run_scenario(scenario: &Scenario, options: &RunOptions) -> Result<Vec<SummaryRow>, RunError> {
    run_scenario_with(scenario, options, &|_: &RunContext<'_>| ()).map(|(rows, _)| rows)
}

/// What a run hands to the extractor of [`run_scenario_with`], besides its summary row.
pub(crate) struct RunContext<'a> {
    pub(crate) spec: &'a PolicySpec,
    pub(crate) replication: u32,
    pub(crate) output: &'a RunOutput,
    pub(crate) catalogue: &'a Catalogue,
    pub(crate) nodes: &'a [NodeSpec],
}

/// [`run_scenario`], also returning `extract` of each run (in the same order as the rows),
/// computed on the run's thread while its records are at hand, so they need not be kept.
pub(crate) fn run_scenario_with<T: Send>(
    scenario: &Scenario,
    options: &RunOptions,
    extract: &(dyn Fn(&RunContext<'_>) -> T + Sync),
) -> Result<(Vec<SummaryRow>, Vec<T>), RunError> {
    let policies = selected_policies(scenario, options.policy.as_deref())?;
    let (catalogue, nodes) = build_cluster(scenario)?;
    let base_seed = options.seed.unwrap_or(scenario.seed);
    let replications = options.replications.unwrap_or(scenario.replications);
    if replications > MAX_REPLICATIONS {
        let message = format!("{replications} replications (--replications) is beyond the bound of {MAX_REPLICATIONS}");
        return Err(ScenarioError::invalid(&scenario.path, "replications", message).into());
    }
    let reps: Vec<Replication> = (0..replications)
        .map(|index| {
            let seed = base_seed.wrapping_add(index as u64);
            let workload = build_workload(scenario, &catalogue, seed)?;
            let speed = crate::speed::build(scenario, &workload, &catalogue)?;
            let models = WorldModels::build(scenario, &catalogue, &nodes, &workload.classes)?;
            Ok(Replication { index, seed, workload, speed, models })
        })
        .collect::<Result<_, RunError>>()?;

    let tasks: Vec<(usize, usize)> = (0..policies.len()).flat_map(|p| (0..reps.len()).map(move |r| (p, r))).collect();
    if let Some(p) = &options.progress {
        p.plan(tasks.len() as u64, policies.len() as u64 * reps.iter().map(|r| r.workload.jobs.len() as u64).sum::<u64>());
    }
    tracing::info!(scenario = %scenario.name, runs = tasks.len(), threads = options.threads, "running");
    type Slot<T> = Option<Result<(SummaryRow, T), RunError>>;
    let results: Mutex<Vec<Slot<T>>> = Mutex::new((0..tasks.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let threads = options.threads.clamp(1, tasks.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(p, r)) = tasks.get(i) else { break };
                let result = run_one(&policies[p], &reps[r], &catalogue, &nodes, scenario, options.out_dir.as_deref(), None, options.progress.as_deref()).map(|rr| {
                    tracing::debug!(policy = %policies[p].label(), replication = reps[r].index, events = rr.row.events, wall_s = rr.row.wall_s, "run done");
                    if let Some(progress) = &options.progress {
                        progress.run_done();
                    }
                    let context = RunContext {
                        spec: &policies[p],
                        replication: reps[r].index,
                        output: &rr.output,
                        catalogue: &catalogue,
                        nodes: &nodes,
                    };
                    let extracted = extract(&context);
                    (rr.row, extracted)
                });
                results.lock().expect("a run panicked")[i] = Some(result);
            });
        }
    });
    let (rows, extracted): (Vec<SummaryRow>, Vec<T>) = results
        .into_inner()
        .expect("a run panicked")
        .into_iter()
        .map(|r| r.expect("every task ran"))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();

    warn_rejected(&rows);
    if let Some(dir) = &options.out_dir {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        write_cluster_files(dir, &catalogue, &nodes)?;
        let meta = scenario_meta(scenario, options, &policies, &catalogue, &nodes, &reps[0].workload, base_seed, replications);
        write_json(&dir.join("scenario.json"), &meta)?;
        let path = dir.join("summary.csv");
        let mut w = BufWriter::new(File::create(&path).map_err(io_err(&path))?);
        write_summary_csv(&mut w, &rows).and_then(|_| w.flush()).map_err(io_err(&path))?;
    }
    if let Some(progress) = &options.progress {
        progress.before_output();
    }
    if !options.quiet {
        print!("{}", format_summary_table(&rows));
        if let Some(dir) = &options.out_dir {
            println!("wrote {}", dir.join("summary.csv").display());
        }
    }
    Ok((rows, extracted))
}

/// One warning for all the runs when the scheduler rejected jobs at submission: they can never
/// run on this cluster, so they are in no JCT or wait, and a run where every job was rejected
/// has only NaN metrics. Printed whatever `quiet` says: it is about the input, not progress.
fn warn_rejected(rows: &[SummaryRow]) {
    let rejected: u64 = rows.iter().map(|r| r.metrics.rejected).sum();
    if rejected == 0 {
        return;
    }
    let jobs: u64 = rows.iter().map(|r| r.metrics.jobs).sum();
    let runs = rows.iter().filter(|r| r.metrics.rejected > 0).count();
    eprintln!(
        "warning: {rejected} of {jobs} jobs (in {runs} of {} runs) were rejected at submission: they can never fit this cluster \
         (more devices than it has, or more CPU or memory than any node); see `rejected` in summary.csv and the `reject` decisions",
        rows.len()
    );
}

/// The jobs a scenario's `[metrics]` table counts.
pub fn metrics_filter(scenario: &Scenario) -> JobFilter {
    JobFilter {
        job_ids: scenario.metrics.job_ids.map(|[a, b]| (a, b)),
        submit_window: scenario.metrics.submit_window_s.map(|[a, b]| (Time::from_secs_f64(a), Time::from_secs_f64(b))),
    }
}

/// `tessera compare`: for each point of the scenario's `[sweep]` (or once, without one), runs
/// every policy x replication as [`run_scenario`] does (common random numbers; the usual
/// outputs under `out_dir`, or `out_dir/<point label>/` with a sweep) and compares the
/// policies on the metrics of [`tessera_reports::compare`], over the jobs the scenario's
/// `[metrics]` table counts (`tessera sim` ignores that table). Writes all points' rows to
/// `out_dir/comparison.csv` and, unless `quiet`, prints the table. `options.policy` is ignored:
/// a comparison needs every policy, the first being the baseline.
pub fn compare_scenario(scenario: &Scenario, options: &RunOptions) -> Result<Vec<ComparisonRow>, RunError> {
    let filter = metrics_filter(scenario);
    let swept = !scenario.sweep.is_empty();
    let mut rows = Vec::new();
    if let Some(p) = &options.progress {
        let runs = scenario.sweep_points().len() * scenario.policies.len() * options.replications.unwrap_or(scenario.replications) as usize;
        p.expect_runs(runs as u64);
    }
    for point in scenario.sweep_points() {
        let s = if swept { scenario.at_sweep_point(&point)? } else { scenario.clone() };
        let label = point.label();
        let out_dir = options.out_dir.as_ref().map(|d| if swept { d.join(&label) } else { d.clone() });
        let run_options = RunOptions { out_dir, policy: None, quiet: true, ..options.clone() };
        let (_, samples) = run_scenario_with(&s, &run_options, &|c: &RunContext<'_>| {
            let mut models: Vec<ModelId> = Vec::new();
            for node in c.nodes {
                for &m in &node.devices {
                    if !models.contains(&m) {
                        models.push(m);
                    }
                }
            }
            let named: Vec<(ModelId, String)> = models.into_iter().map(|m| (m, c.catalogue.name(m).to_string())).collect();
            RunSample {
                policy: c.spec.label().to_string(),
                replication: c.replication,
                values: compare_metrics(&c.output.records, c.output.total_devices, &filter, &named),
            }
        })?;
        rows.extend(compare_runs(&samples, &label));
    }
    if let Some(dir) = &options.out_dir {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        if swept {
            // Each point's directory has its own; this one tells the report the points.
            let policies = selected_policies(scenario, None)?;
            let (catalogue, nodes) = build_cluster(scenario)?;
            let workload = build_workload(scenario, &catalogue, options.seed.unwrap_or(scenario.seed))?;
            let replications = options.replications.unwrap_or(scenario.replications);
            let mut meta = scenario_meta(scenario, options, &policies, &catalogue, &nodes, &workload, options.seed.unwrap_or(scenario.seed), replications);
            meta["sweep_points"] = scenario.sweep_points().iter().map(|p| serde_json::json!({
                "label": p.label(),
                "values": p.values.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            })).collect();
            write_json(&dir.join("scenario.json"), &meta)?;
        }
        let path = dir.join("comparison.csv");
        let mut w = BufWriter::new(File::create(&path).map_err(io_err(&path))?);
        write_comparison_csv(&mut w, &rows).and_then(|_| w.flush()).map_err(io_err(&path))?;
    }
    if let Some(progress) = &options.progress {
        progress.before_output();
    }
    if !options.quiet {
        if !filter.is_all() {
            println!("metrics count only the jobs of [metrics] ({}); the simulation ran them all", describe_filter(scenario));
        }
        print!("{}", format_comparison_table(&rows));
        if let Some(dir) = &options.out_dir {
            println!("wrote {}", dir.join("comparison.csv").display());
        }
    }
    Ok(rows)
}

fn describe_filter(scenario: &Scenario) -> String {
    let mut parts = Vec::new();
    if let Some([a, b]) = scenario.metrics.job_ids {
        parts.push(format!("job ids {a} to {b}"));
    }
    if let Some([a, b]) = scenario.metrics.submit_window_s {
        parts.push(format!("submitted in [{a}, {b}) s"));
    }
    parts.join(", ")
}

/// A scenario's policy as one run needs it, built by the driver layer as the executor builds
/// it: tenant names in the policy (quotas, weights) resolve against the workload's tenants,
/// and policies that weigh speeds (`hetero`, `gavel`) get the run's speed matrix.
pub fn build_policy(
    scenario: &Scenario,
    spec: &PolicySpec,
    workload: &Workload,
    speed: &SpeedTable,
    catalogue: &Catalogue,
    nodes: &[NodeSpec],
) -> Result<tessera_driver::BuiltPolicy, ScenarioError> {
    let fleet_models: Vec<tessera_core::ModelId> = nodes.iter().flat_map(|n| n.devices.iter().copied()).collect();
    let ctx = tessera_driver::PolicyContext { catalogue, fleet_models: &fleet_models, tenants: &workload.tenants, classes: &workload.classes, speeds: speed };
    tessera_driver::build_policy(spec, &ctx).map_err(|e| ScenarioError::invalid(&scenario.path, format!("policies.{}", e.key), format!("policy `{}`: {}", spec.label(), e.message)))
}

fn run_one(
    policy_spec: &PolicySpec,
    rep: &Replication,
    catalogue: &Catalogue,
    nodes: &[NodeSpec],
    scenario: &Scenario,
    out_dir: Option<&Path>,
    round_timing: Option<&Arc<Mutex<RoundTiming>>>,
    progress: Option<&Progress>,
) -> Result<RunResult, RunError> {
    let started = Instant::now();
    let policy = build_policy(scenario, policy_spec, &rep.workload, &rep.speed, catalogue, nodes)?.policy;
    let policy = match round_timing {
        Some(record) => RoundTiming::wrap(policy, record),
        None => policy,
    };
    let cluster = ClusterState::new(catalogue.clone(), nodes.iter().cloned());
    let limits = RunLimits { horizon: scenario.horizon(), timeseries: scenario.outputs.timeseries() };
    let world = World { workload: &rep.workload, speed: &rep.speed, models: &rep.models, seed: rep.seed, limits };
    let output = match out_dir {
        Some(dir) => {
            let run_dir = dir.join(policy_spec.label()).join(format!("r{}", rep.index));
            fs::create_dir_all(&run_dir).map_err(io_err(&run_dir))?;
            let log_path = run_dir.join("decisions.jsonl");
            let mut sink = JsonlSink::new(BufWriter::new(File::create(&log_path).map_err(io_err(&log_path))?));
            let simulated = engine::run_observed(&world, cluster, policy, &mut sink, progress);
            // Finish the log even when the run failed, so the writer thread's own error is seen.
            let finished = sink.finish().and_then(|mut w| w.flush());
            let output = simulated.and_then(|o| finished.map(|_| o)).map_err(io_err(&log_path))?;
            let jobs_path = run_dir.join("jobs.csv");
            let mut w = BufWriter::new(File::create(&jobs_path).map_err(io_err(&jobs_path))?);
            write_jobs_csv(&mut w, &output.records, &rep.workload.tenants, catalogue)
                .and_then(|_| w.flush())
                .map_err(io_err(&jobs_path))?;
            if let Some(series) = &output.timeseries {
                let path = run_dir.join("timeseries.csv");
                let mut w = BufWriter::new(File::create(&path).map_err(io_err(&path))?);
                series.write_csv(&mut w).and_then(|_| w.flush()).map_err(io_err(&path))?;
            }
            output
        }
        None => engine::run_observed(&world, cluster, policy, &mut NullSink, progress).map_err(io_err(Path::new("-")))?,
    };
    let row = SummaryRow {
        policy: policy_spec.label().to_string(),
        replication: rep.index,
        seed: rep.seed,
        metrics: run_metrics(&output.records, output.total_devices),
        events: output.events,
        failures: output.failures,
        wall_s: started.elapsed().as_secs_f64(),
    };
    Ok(RunResult { row, output })
}

/// `scenario.json`: what the report shows of how the runs were made (the scenario's cluster,
/// workload and policies, seeds, the build, and the inputs' hashes). It records no time of
/// day, so the same command writes the same bytes.
#[allow(clippy::too_many_arguments)]
fn scenario_meta(
    scenario: &Scenario,
    options: &RunOptions,
    policies: &[PolicySpec],
    catalogue: &Catalogue,
    nodes: &[NodeSpec],
    workload: &Workload,
    seed: u64,
    replications: u32,
) -> serde_json::Value {
    use serde_json::json;
    let mut by_model: Vec<(ModelId, u64)> = Vec::new();
    for node in nodes {
        for &m in &node.devices {
            match by_model.iter_mut().find(|(k, _)| *k == m) {
                Some((_, n)) => *n += 1,
                None => by_model.push((m, 1)),
            }
        }
    }
    let hash = |path: &Path| -> serde_json::Value {
        let sha256 = fs::read(path).map(|b| crate::validate::sha256_hex(&b)).unwrap_or_else(|e| format!("unreadable: {e}"));
        json!({ "path": path.display().to_string(), "sha256": sha256 })
    };
    let inputs: Vec<serde_json::Value> = std::iter::once(scenario.path.clone())
        .chain(crate::validate::input_files(scenario).unwrap_or_default())
        .filter(|p| p.is_file())
        .map(|p| hash(&p))
        .collect();
    let jobs = &workload.jobs;
    let first = jobs.first().map_or(0.0, |j| j.submit.as_secs_f64());
    let last = jobs.last().map_or(0.0, |j| j.submit.as_secs_f64());
    let demand: f64 = jobs.iter().map(|j| j.spec.devices.device_equivalents()).sum();
    let work_h: f64 = jobs.iter().map(|j| j.work.as_secs_f64() * j.spec.devices.device_equivalents()).sum::<f64>() / 3600.0;
    json!({
        "name": scenario.name,
        "tessera_version": env!("CARGO_PKG_VERSION"),
        "revision": options.revision.clone().unwrap_or_else(|| "unknown".to_string()),
        "seed": seed,
        "replications": replications,
        "policies": policies,
        "cluster": {
            "nodes": nodes.len(),
            "devices": by_model.iter().map(|&(m, n)| json!({ "model": catalogue.name(m), "count": n })).collect::<Vec<_>>(),
        },
        "workload": {
            "source": match &scenario.workload.trace { Some(t) => format!("trace {} {}", t.format.name(), t.path.display()), None => "synthetic".to_string() },
            "jobs": jobs.len(),
            "tenants": workload.tenants.len(),
            "classes": workload.classes.len(),
            "submit_span_s": last - first,
            "mean_devices": if jobs.is_empty() { 0.0 } else { demand / jobs.len() as f64 },
            "device_hours_of_work": work_h,
        },
        "world_models": scenario.models != crate::models::ModelsSpec::default(),
        "timeseries_s": scenario.outputs.timeseries_s,
        "metrics": scenario.metrics,
        "inputs": inputs,
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(value).expect("a JSON value serialises");
    fs::write(path, text + "\n").map_err(io_err(path))
}

/// `nodes.csv` and `devices.csv`: what the node and device ids in the decision logs name.
fn write_cluster_files(dir: &Path, catalogue: &Catalogue, nodes: &[NodeSpec]) -> Result<(), RunError> {
    let nodes_path = dir.join("nodes.csv");
    let devices_path = dir.join("devices.csv");
    let mut node_rows = String::from("node,name,devices,cpu_milli,mem_mib\n");
    // model_id: the id the decision log's reasons name a model by (hetero's alternatives, gavel's rounds).
    let mut device_rows = String::from("device,node,model,model_id\n");
    let mut device = 0;
    for (node, spec) in nodes.iter().enumerate() {
        node_rows.push_str(&format!("{node},{},{},{},{}\n", spec.name, spec.devices.len(), spec.cpu_milli, spec.mem_mib));
        for &model in &spec.devices {
            device_rows.push_str(&format!("{device},{node},{},{}\n", catalogue.name(model), model.0));
            device += 1;
        }
    }
    fs::write(&nodes_path, node_rows).map_err(io_err(&nodes_path))?;
    fs::write(&devices_path, device_rows).map_err(io_err(&devices_path))
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), if the OS says.
pub fn peak_rss_mib() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak-memory mark so each measured run reports its own peak (Linux >= 4.0).
fn reset_peak_rss() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

/// The benchmark: each selected policy's first replication, one at a time, timing workload
/// generation and simulation apart, with the peak memory of each.
pub fn bench(scenario: &Scenario, policy: Option<&str>, with_outputs: bool, target_wall_s: f64, target_mem_mib: f64) -> Result<(), RunError> {
    let policies = selected_policies(scenario, policy)?;
    if cfg!(debug_assertions) {
        println!("warning: this is a debug build; measure with `cargo run --release -- bench ...`");
    }
    let tmp = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    let mut all_met = true;
    for spec in &policies {
        reset_peak_rss();
        let started = Instant::now();
        let (catalogue, nodes) = build_cluster(scenario)?;
        let workload = build_workload(scenario, &catalogue, scenario.seed)?;
        let speed = crate::speed::build(scenario, &workload, &catalogue)?;
        let models = WorldModels::build(scenario, &catalogue, &nodes, &workload.classes)?;
        let generated_s = started.elapsed().as_secs_f64();
        let rep = Replication { index: 0, seed: scenario.seed, workload, speed, models };
        let sim_started = Instant::now();
        let timing = Arc::new(Mutex::new(RoundTiming::default()));
        let result = run_one(spec, &rep, &catalogue, &nodes, scenario, with_outputs.then_some(tmp.as_path()), Some(&timing), None)?;
        let sim_s = sim_started.elapsed().as_secs_f64();
        let wall_s = started.elapsed().as_secs_f64();
        let peak = peak_rss_mib();
        let events = result.output.events;
        let devices = result.output.total_devices;
        let met = wall_s < target_wall_s && peak.is_none_or(|p| p < target_mem_mib);
        all_met &= met;
        println!(
            "{label}: {jobs} jobs on {devices} devices, {events} events; workload {generated_s:.3} s + simulation{outputs} {sim_s:.3} s = wall {wall_s:.3} s; {eps:.0} events/s; peak memory {peak}; target < {target_wall_s} s and < {target_mem_mib} MiB: {verdict}",
            label = spec.label(),
            jobs = rep.workload.jobs.len(),
            outputs = if with_outputs { " and outputs" } else { "" },
            eps = events as f64 / sim_s,
            peak = peak.map_or("unknown".to_string(), |p| format!("{p:.0} MiB")),
            verdict = if met { "met" } else { "MISSED" },
        );
        let timing = timing.lock().expect("the run is over");
        if timing.used {
            println!("{}: {}", spec.label(), timing.describe());
        }
    }
    let _ = fs::remove_dir_all(&tmp);
    if !all_met {
        println!("at least one target was missed");
    }
    Ok(())
}

/// `tessera bench` of a round-based policy: the time of each round's plan, measured around the
/// planner (the core reads no clock), and the linear programs it solved, timed again apart
/// after the run so the figure is the solver's alone.
#[derive(Default)]
pub struct RoundTiming {
    used: bool,
    plan_s: Vec<f64>,
    programs: Vec<(Vec<TypeDemand>, Vec<f64>)>,
    stats: RoundStats,
}

struct TimedPlanner {
    inner: Box<dyn RoundPlanner>,
    record: Arc<Mutex<RoundTiming>>,
}

impl RoundPlanner for TimedPlanner {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn interval(&self) -> Time {
        self.inner.interval()
    }
    fn backfill(&self) -> bool {
        self.inner.backfill()
    }
    fn assigns(&self) -> bool {
        self.inner.assigns()
    }
    fn plan(&mut self, input: &RoundInput<'_>) -> RoundPlan {
        let started = Instant::now();
        let plan = self.inner.plan(input);
        let took = started.elapsed().as_secs_f64();
        let mut record = self.record.lock().expect("one run per record");
        record.plan_s.push(took);
        if let Some((types, devices)) = self.inner.last_program() {
            record.programs.push((types.to_vec(), devices.to_vec()));
        }
        record.stats = self.inner.stats();
        plan
    }
    fn set_speeds(&mut self, speeds: Arc<SpeedTable>) {
        self.inner.set_speeds(speeds)
    }
    fn uses_speeds(&self) -> bool {
        self.inner.uses_speeds()
    }
    fn stats(&self) -> RoundStats {
        self.inner.stats()
    }
    fn last_program(&self) -> Option<(&[TypeDemand], &[f64])> {
        self.inner.last_program()
    }
}

impl RoundTiming {
    fn wrap(mut policy: Policy, record: &Arc<Mutex<RoundTiming>>) -> Policy {
        if let Some(inner) = policy.rounds.take() {
            record.lock().expect("one run per record").used = true;
            policy.rounds = Some(Box::new(TimedPlanner { inner, record: record.clone() }));
        }
        policy
    }

    fn describe(&self) -> String {
        let rounds = self.plan_s.len();
        let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let lp_s: Vec<f64> = self
            .programs
            .iter()
            .map(|(types, devices)| {
                let started = Instant::now();
                let _ = std::hint::black_box(max_min_allocation(types, devices));
                started.elapsed().as_secs_f64()
            })
            .collect();
        let st = &self.stats;
        format!(
            "{rounds} rounds of {:.0} active jobs on average (at most {}), {} kept every job running at no cost; plan per round mean {:.1} us, max {:.1} us, total {:.3} s; {} LPs solved ({} rounds reused the previous), \
             LP solve mean {:.1} us, max {:.1} us (re-timed apart), largest {} types / {} variables, at most {} pivots",
            self.stats.jobs_total as f64 / rounds.max(1) as f64,
            self.stats.jobs_max,
            self.stats.rounds_kept,
            mean(&self.plan_s) * 1e6,
            max(&self.plan_s) * 1e6,
            self.plan_s.iter().sum::<f64>(),
            st.lp_solves,
            st.lp_reused,
            mean(&lp_s) * 1e6,
            max(&lp_s) * 1e6,
            st.lp_types_max,
            st.lp_vars_max,
            st.lp_pivots_max,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One V100 node and one T4 node; every job is of a class that runs 4x faster on the T4.
    fn two_model_scenario(placement: &str, t4_speed: Option<f64>) -> Scenario {
        let speed = t4_speed.map_or(String::new(), |v| format!("[[speed]]\nclass = \"a\"\nmodel = \"T4\"\nrelative = {v}\n"));
        let text = format!(
            "name = \"t\"\n\
             [[cluster.nodes]]\ndevices = {{ model = \"V100-32GB\", count = 4 }}\n\
             [[cluster.nodes]]\ndevices = {{ model = \"T4\", count = 4 }}\n\
             [workload]\nsynthetic = {{ jobs = 6, interarrival = {{ dist = \"constant\", value = 100 }}, \
             duration = {{ dist = \"constant\", value = 10 }}, classes = [\"a\"] }}\n\
             [[policies]]\nname = \"fifo\"\nplacement = \"{placement}\"\n{speed}"
        );
        Scenario::from_toml_str(&text, Path::new("hetero.toml")).unwrap()
    }

    fn models_ran_on(scenario: &Scenario) -> Vec<Vec<String>> {
        let (_, ran_on) = run_scenario_with(scenario, &RunOptions { threads: 1, ..RunOptions::default() }, &|c: &RunContext<'_>| {
            c.output
                .records
                .iter()
                .map(|r| r.ran_on.iter().map(|m| c.catalogue.name(m).to_string()).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .unwrap();
        ran_on.into_iter().next().unwrap()
    }

    #[test]
    fn tenant_names_in_a_policy_are_resolved_against_the_workload() {
        let text = |tenant: &str| {
            format!(
                "name = \"t\"\n\
                 [[cluster.nodes]]\ndevices = {{ model = \"V100-32GB\", count = 4 }}\n\
                 [workload]\nsynthetic = {{ jobs = 20, tenants = 2, interarrival = {{ dist = \"constant\", value = 1 }}, \
                 duration = {{ dist = \"constant\", value = 100 }} }}\n\
                 [[policies]]\nname = \"drf\"\ntenant_weights = {{ \"{tenant}\" = 2.0 }}\nquota_devices = {{ \"{tenant}\" = 1 }}\nborrow = false\n"
            )
        };
        let good = Scenario::from_toml_str(&text("tenant-1"), Path::new("t.toml")).unwrap();
        let (_, ran) = run_scenario_with(&good, &RunOptions { threads: 1, ..RunOptions::default() }, &|c: &RunContext<'_>| {
            // tenant-1 is capped at one GPU without borrowing: never two of its jobs at once.
            let mut spans: Vec<(Time, i32)> = Vec::new();
            for r in c.output.records.iter().filter(|r| r.tenant == tessera_core::TenantId(1)) {
                if let (Some(s), Some(e)) = (r.ledger.first_start, r.ledger.end) {
                    spans.push((s, 1));
                    spans.push((e, -1));
                }
            }
            spans.sort();
            let mut at_once = 0;
            spans.iter().map(|&(_, d)| { at_once += d; at_once }).max().unwrap_or(0)
        })
        .unwrap();
        assert_eq!(ran, vec![1]);
        // An unknown name passes the scenario's own checks (the workload is not built yet) but
        // fails the run, naming the key and the workload's tenants.
        let bad = Scenario::from_toml_str(&text("tenant-9"), Path::new("t.toml")).unwrap();
        let err = run_scenario(&bad, &RunOptions { threads: 1, ..RunOptions::default() }).unwrap_err().to_string();
        assert!(err.contains("tenant-9") && err.contains("tenant-0, tenant-1") && err.contains("policies."), "{err}");
    }

    #[test]
    fn hetero_in_the_simulator_uses_the_scenarios_speed_matrix() {
        // With the scenario's speeds every job goes to the T4 (4x); without them every model
        // scores 1.0 and the tie goes to the lower model id, the V100: so the speeds reached
        // the placement.
        let with = models_ran_on(&two_model_scenario("hetero", Some(4.0)));
        assert_eq!(with.len(), 6);
        assert!(with.iter().all(|m| m == &["T4".to_string()]), "{with:?}");
        let without = models_ran_on(&two_model_scenario("hetero", None));
        assert!(without.iter().all(|m| m == &["V100-32GB".to_string()]), "{without:?}");
    }
}
