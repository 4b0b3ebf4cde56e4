//! Tiresias (NSDI'19) simulator inputs.
//!
//! The job and cluster files of the Tiresias simulator (Gu et al., "Tiresias: A GPU Cluster
//! Manager for Distributed Deep Learning", NSDI'19), Apache-2.0.
//!
//! # Job files ([`load`], [`parse`])
//!
//! `60_job.csv` and the like: `job_id,num_gpu,submit_time,iterations,model_name,duration,interval`.
//!
//! | column        | maps to      | rule                                                          |
//! |---------------|--------------|---------------------------------------------------------------|
//! | `job_id`      | `job_id`     | a non-negative integer, kept as written (these ids are numbers, so they are not renumbered; `0` is allowed); unique, a repeat is an error naming both lines |
//! | `submit_time` | `submit_s`   | seconds >= 0 since the start of the workload, as recorded (not shifted) |
//! | `num_gpu`     | `devices`    | a whole GPU count >= 1                                        |
//! | `duration`    | `duration_s` | seconds >= 0: the job's run time                              |
//! | `model_name`  | `job_class`  | not empty (`vgg19`, `resnet50`)                               |
//! | `iterations`  | —            | training iterations the job runs (Tiresias' simulator models run time from `duration`, not from these); ignored, not required |
//! | `interval`    | —            | the gap in seconds from this job's submission to the next job's (`submit_time[i+1] − submit_time[i]` on every row of `60_job.csv` but the last): redundant with `submit_time`; ignored, not required |
//!
//! Tiresias names no user or team: `tenant = "tiresias"` for every job. `priority = 0`, no model
//! constraint, no outcome. Extra columns are ignored.
//!
//! Repairs and checks: rows out of submission order are sorted stably (same time: file order);
//! blank lines are skipped; any other row that cannot be mapped is an error naming the file,
//! line and column; an empty file or a header without rows is an error.
//!
//! The other files of the published folder:
//!
//! - `tf_job.csv` is the testbed's job format
//!   (`job_id,num_gpu,submit_time,start_time,duration,model_size,aggr_interval,model_name,model_scale`).
//!   It holds every column the mapping reads, so the loader reads it, but its two rows are the
//!   same job `10` twice, and it is refused as a duplicate job id (line 3, first on line 2).
//! - `yarn-gput1000.csv`, `yarn-gput5000.csv`, `yarn-gput10000.csv` hold one column,
//!   `duration`: sorted samples of job GPU time the Tiresias authors drew synthetic workloads
//!   from. They have no submission times, GPU counts or ids, so they are not job traces: the
//!   loader **refuses** them with an error that says so, rather than inventing arrivals.
//! - `cluster_spec.csv`, `n1g4.csv`, `n32g4.csv`, `n160g8.csv`, `n256g8.csv` are cluster specs,
//!   read by [`load_cluster_spec`].
//!
//! # Cluster specs ([`load_cluster_spec`], [`parse_cluster_spec`])
//!
//! `num_switch,num_node_p_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node`, exactly one row
//! (the published files end without a newline, which is accepted). Every value is a whole number:
//! switches, nodes per switch and GPUs per node at least 1, CPUs and memory (GB) per node at
//! least 0. A second row is an error, as is any field that is not such a number.

use crate::csv::{self, IdHasher, Table};
use crate::{TraceError, TraceJob};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::Path;

/// The header of a Tiresias job file, as errors quote it.
pub const TIRESIAS_HEADER: &str = "job_id,num_gpu,submit_time,iterations,model_name,duration,interval";
/// The header of a Tiresias cluster spec.
pub const TIRESIAS_CLUSTER_HEADER: &str = "num_switch,num_node_p_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node";

/// Loads a Tiresias job file. See the [module documentation](self).
pub fn load(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    parse(&csv::read(path)?, path)
}

/// [`load`] on bytes held in memory; `origin` is the name errors give for them.
pub fn parse(data: &[u8], origin: &Path) -> Result<Vec<TraceJob>, TraceError> {
    let text = csv::text(data, origin)?;
    let mut t = Table::open(text, origin, TIRESIAS_HEADER)?;
    if !t.has("job_id") && t.header() == ["duration"] {
        return Err(TraceError::Invalid {
            path: origin.to_path_buf(),
            line: t.line(),
            column: "column `duration`".into(),
            message: "this is a Tiresias `yarn-gput*` file: samples of GPU time with no submission times, GPU \
                      counts or job ids, not a job trace"
                .into(),
        });
    }
    let c_id = t.column("job_id")?;
    let c_gpus = t.column("num_gpu")?;
    let c_submit = t.column("submit_time")?;
    let c_model = t.column("model_name")?;
    let c_duration = t.column("duration")?;

    let mut jobs: Vec<TraceJob> = Vec::new();
    let mut first_line_of: HashMap<u64, u64, BuildHasherDefault<IdHasher>> = HashMap::default();
    while t.next_row()? {
        let job_id: u64 = t.field(c_id).parse().map_err(|_| t.bad(c_id, "job_id", "a non-negative integer job id"))?;
        if let Some(&first_line) = first_line_of.get(&job_id) {
            return Err(TraceError::DuplicateJobId {
                path: origin.to_path_buf(),
                line: t.line(),
                column: "job_id",
                job_id,
                first_line,
            });
        }
        first_line_of.insert(job_id, t.line());
        let devices = csv::gpu_count(t.field(c_gpus)).ok_or_else(|| t.bad(c_gpus, "num_gpu", csv::EXPECT_GPUS))?;
        let submit_s =
            csv::seconds(t.field(c_submit)).ok_or_else(|| t.bad(c_submit, "submit_time", csv::EXPECT_SECONDS))?;
        let duration_s =
            csv::seconds(t.field(c_duration)).ok_or_else(|| t.bad(c_duration, "duration", csv::EXPECT_SECONDS))?;
        let model = t.field(c_model);
        if model.is_empty() {
            return Err(t.bad(c_model, "model_name", "a model name"));
        }
        let mut job = TraceJob::new(job_id, submit_s, "tiresias", devices, duration_s);
        job.job_class = model.to_string();
        job.line = t.line();
        jobs.push(job);
    }
    if jobs.is_empty() {
        return Err(t.no_jobs());
    }
    csv::sort_by_submit(&mut jobs);
    Ok(jobs)
}

/// A Tiresias cluster: `num_switch` switches of `num_node_p_switch` identical nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TiresiasCluster {
    pub switches: u32,
    pub nodes_per_switch: u32,
    pub gpus_per_node: u32,
    pub cpus_per_node: u32,
    /// Memory per node in GB.
    pub mem_gb_per_node: u32,
}

impl TiresiasCluster {
    pub fn nodes(&self) -> u64 {
        u64::from(self.switches) * u64::from(self.nodes_per_switch)
    }

    pub fn gpus(&self) -> u64 {
        self.nodes() * u64::from(self.gpus_per_node)
    }
}

/// Loads a Tiresias cluster spec (`n32g4.csv`). See the [module documentation](self).
pub fn load_cluster_spec(path: &Path) -> Result<TiresiasCluster, TraceError> {
    parse_cluster_spec(&csv::read(path)?, path)
}

/// [`load_cluster_spec`] on bytes held in memory; `origin` is the name errors give for them.
pub fn parse_cluster_spec(data: &[u8], origin: &Path) -> Result<TiresiasCluster, TraceError> {
    const COLUMNS: [&str; 5] = ["num_switch", "num_node_p_switch", "num_gpu_p_node", "num_cpu_p_node", "mem_p_node"];
    const EXPECT: [&str; 5] = [
        "a whole number of switches >= 1",
        "a whole number of nodes >= 1",
        "a whole number of GPUs >= 1",
        "a whole number of CPUs >= 0",
        "a whole number of GB >= 0",
    ];
    let text = csv::text(data, origin)?;
    let mut t = Table::open(text, origin, TIRESIAS_CLUSTER_HEADER)?;
    let mut cols = [0usize; 5];
    for (c, name) in cols.iter_mut().zip(COLUMNS) {
        *c = t.column(name)?;
    }
    if !t.next_row()? {
        return Err(t.no_jobs());
    }
    let mut v = [0u32; 5];
    for k in 0..5 {
        let min = if k < 3 { 1 } else { 0 };
        v[k] = t
            .field(cols[k])
            .parse::<u32>()
            .ok()
            .filter(|&x| x >= min)
            .ok_or_else(|| t.bad(cols[k], COLUMNS[k], EXPECT[k]))?;
    }
    let first = t.line();
    if t.next_row()? {
        return Err(t.invalid(
            COLUMNS[0],
            format!("a cluster spec has exactly one row, the one on line {first}; this is a second"),
        ));
    }
    Ok(TiresiasCluster {
        switches: v[0],
        nodes_per_switch: v[1],
        gpus_per_node: v[2],
        cpus_per_node: v[3],
        mem_gb_per_node: v[4],
    })
}

/// Tiresias job CSVs as a trace format.
pub struct Tiresias;

impl crate::format::TraceFormat for Tiresias {
    fn name(&self) -> &'static str {
        "tiresias"
    }

    fn description(&self) -> &'static str {
        "Tiresias job CSVs"
    }

    fn load(&self, path: &Path, _: &crate::format::Options) -> Result<crate::source::LoadedTrace, TraceError> {
        Ok(crate::source::LoadedTrace { jobs: load(path)?, ..Default::default() })
    }
}
