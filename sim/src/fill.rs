//! The fill-up experiment of the FGD paper (Weng et al., "Beware of Fragmentation: Scheduling
//! GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC'23, §6): tasks drawn
//! at random from the workload arrive one after another and never leave; each is placed at once
//! by the placement under test or, when nothing fits, fails and is dropped. As the arrived GPU
//! demand grows past the cluster's capacity, a placement that fragments less leaves fewer GPUs
//! unallocated. No queue is involved, so the experiment isolates the placement itself: it calls
//! the same `Placement` the scheduler calls, on the same `ClusterState`.
//!
//! Draws come from the scenario's seed (replication k uses seed + k, stream 3), so one seed
//! reproduces a run exactly, and every placement sees the same task sequence in a replication.

use crate::runner::{build_policy, selected_policies, RunError};
use crate::scenario::Scenario;
use crate::workload::{build_cluster, build_workload};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::io::Write;
use tessera_core::policy::PlaceContext;
use tessera_core::{ClusterState, Time, WHOLE_DEVICE_MILLI};
use tessera_reports::compare::mean_ci;

/// Stream 3 of a replication's seed: the fill-up's task draws.
const FILL_STREAM: u64 = 3;

#[derive(Clone, Debug)]
pub struct FillOptions {
    pub seed: Option<u64>,
    pub replications: Option<u32>,
    /// Stop once the arrived GPU demand reaches this fraction of the cluster's GPUs.
    pub max_arrived: f64,
    /// Record a point every time the arrived demand grows by this fraction of capacity.
    pub step: f64,
    /// Only the policy with this label (or name).
    pub policy: Option<String>,
}

impl Default for FillOptions {
    fn default() -> Self {
        FillOptions { seed: None, replications: None, max_arrived: 1.3, step: 0.01, policy: None }
    }
}

/// The state of one fill-up when the arrived demand crossed `arrived_fraction` of capacity.
#[derive(Clone, Debug, PartialEq)]
pub struct FillPoint {
    pub policy: String,
    pub replication: u32,
    pub seed: u64,
    /// Arrived GPU demand over the cluster's GPUs (the checkpoint, a multiple of the step).
    pub arrived_fraction: f64,
    /// GPUs allocated, counting fractional shares as their fraction, read from the cluster.
    pub allocated_gpus: f64,
    pub unallocated_gpus: f64,
    pub placed_tasks: u64,
    pub failed_tasks: u64,
}

/// Runs the fill-up for each selected policy's placement and replication.
pub fn fill_scenario(scenario: &Scenario, options: &FillOptions) -> Result<Vec<FillPoint>, RunError> {
    if !(options.step > 0.0 && options.step.is_finite()) || !(options.max_arrived > 0.0 && options.max_arrived.is_finite()) {
        return Err(RunError::Scenario(crate::scenario::ScenarioError::invalid(
            &scenario.path,
            "fill",
            format!("step ({}) and max_arrived ({}) must be positive", options.step, options.max_arrived),
        )));
    }
    let policies = selected_policies(scenario, options.policy.as_deref())?;
    let (catalogue, nodes) = build_cluster(scenario)?;
    let base_seed = options.seed.unwrap_or(scenario.seed);
    let replications = options.replications.unwrap_or(scenario.replications);
    let empty = ClusterState::new(catalogue.clone(), nodes.iter().cloned());
    let capacity_gpus = empty.devices().len() as f64;
    if capacity_gpus == 0.0 {
        return Err(RunError::Scenario(crate::scenario::ScenarioError::invalid(&scenario.path, "cluster", "the fill-up needs a cluster with devices")));
    }
    let mut points = Vec::new();
    for replication in 0..replications {
        let seed = base_seed.wrapping_add(replication as u64);
        let workload = build_workload(scenario, &catalogue, seed)?;
        let speed = crate::speed::build(scenario, &workload, &catalogue)?;
        if workload.jobs.is_empty() {
            return Err(RunError::Scenario(crate::scenario::ScenarioError::invalid(&scenario.path, "workload", "the fill-up needs at least one job")));
        }
        for spec in &policies {
            let mut policy = build_policy(scenario, spec, &workload, &speed, &catalogue, &nodes)?.policy;
            // The placement learns the target workload (fgd's task distribution) from the trace
            // itself, as the paper's scheduler does.
            for job in &workload.jobs {
                policy.placement.observe(&job.spec);
            }
            let mut cluster = empty.clone();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(FILL_STREAM);
            let (mut arrived_gpus, mut placed, mut failed) = (0.0f64, 0u64, 0u64);
            let mut next_checkpoint = 1u64;
            let context = PlaceContext::immediate(Time::ZERO);
            while arrived_gpus < options.max_arrived * capacity_gpus {
                let job = &workload.jobs[rng.random_range(0..workload.jobs.len())].spec;
                arrived_gpus += job.devices.device_equivalents();
                match policy.placement.place(&cluster, job, &context) {
                    Ok(p) => {
                        cluster.allocate(&p.allocation);
                        placed += 1;
                    }
                    Err(_) => failed += 1,
                }
                while (next_checkpoint as f64) * options.step * capacity_gpus <= arrived_gpus
                    && (next_checkpoint as f64) * options.step <= options.max_arrived + 1e-9
                {
                    let allocated_gpus = allocated(&cluster);
                    points.push(FillPoint {
                        policy: spec.label().to_string(),
                        replication,
                        seed,
                        arrived_fraction: round6(next_checkpoint as f64 * options.step),
                        allocated_gpus,
                        unallocated_gpus: capacity_gpus - allocated_gpus,
                        placed_tasks: placed,
                        failed_tasks: failed,
                    });
                    next_checkpoint += 1;
                }
            }
        }
    }
    Ok(points)
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn allocated(cluster: &ClusterState) -> f64 {
    let used_milli: u64 = cluster.devices().iter().map(|d| (WHOLE_DEVICE_MILLI - d.free_milli) as u64).sum();
    used_milli as f64 / WHOLE_DEVICE_MILLI as f64
}

pub fn write_fill_csv(mut w: impl Write, points: &[FillPoint]) -> std::io::Result<()> {
    writeln!(w, "policy,replication,seed,arrived_pct,allocated_gpus,unallocated_gpus,placed_tasks,failed_tasks")?;
    for p in points {
        writeln!(
            w,
            "{},{},{},{},{:.3},{:.3},{},{}",
            p.policy,
            p.replication,
            p.seed,
            round6(p.arrived_fraction * 100.0),
            p.allocated_gpus,
            p.unallocated_gpus,
            p.placed_tasks,
            p.failed_tasks
        )?;
    }
    Ok(())
}

/// Mean unallocated GPUs (with the 95% interval over replications) per policy at the given
/// arrived fractions, and each policy's change against the first.
pub fn format_fill_table(points: &[FillPoint], at: &[f64]) -> String {
    let mut policies: Vec<&str> = Vec::new();
    for p in points {
        if !policies.contains(&p.policy.as_str()) {
            policies.push(&p.policy);
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "unallocated GPUs (mean over replications, 95% CI) as the arrived GPU demand grows");
    let _ = write!(out, "{:>9}", "arrived");
    for p in &policies {
        let _ = write!(out, " {:>28}", p);
    }
    let _ = writeln!(out);
    for &fraction in at {
        let _ = write!(out, "{:>8.0}%", fraction * 100.0);
        let mut baseline = None;
        for (i, policy) in policies.iter().enumerate() {
            let xs: Vec<f64> = points
                .iter()
                .filter(|p| p.policy == *policy && (p.arrived_fraction - fraction).abs() < 1e-6)
                .map(|p| p.unallocated_gpus)
                .collect();
            let ci = mean_ci(&xs);
            let cell = if ci.n == 0 {
                "-".to_string()
            } else if i == 0 {
                baseline = Some(ci.mean);
                format!("{:.1} [{:.1}, {:.1}]", ci.mean, ci.low, ci.high)
            } else {
                let change = baseline.filter(|b| *b > 0.0).map(|b| format!(" {:+.0}%", 100.0 * (ci.mean - b) / b)).unwrap_or_default();
                format!("{:.1} [{:.1}, {:.1}]{}", ci.mean, ci.low, ci.high, change)
            };
            let _ = write!(out, " {:>28}", cell);
        }
        let _ = writeln!(out);
    }
    out
}
