//! Alibaba GPU cluster trace 2023 (openb; FGD, ATC'23): pods and nodes.
//!
//! The trace (Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing Workloads with
//! Fragmentation Gradient Descent", USENIX ATC'23) comes as CSV files: a node list and several
//! pod lists. Its licence allows research or study use only, so tessera reads the files where
//! they lie and ships none of their rows.
//!
//! # Pod lists (`openb_pod_list_*.csv`) → [`load_pods`]
//!
//! Header `name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,
//! deletion_time,scheduled_time` (columns found by name, any order, extra columns ignored).
//! Each pod becomes one [`TraceJob`]:
//!
//! | job field     | from                                                                       |
//! |---------------|----------------------------------------------------------------------------|
//! | `job_id`      | 1, 2, … in file order (pod names, `openb-pod-NNNN`, must be unique)         |
//! | `submit_s`    | `creation_time` (seconds, as the upstream README says)                      |
//! | `tenant`      | [`TENANT`] (`openb`): the trace has no user or virtual cluster              |
//! | `priority`    | `qos` through [`qos_priority`]                                              |
//! | `devices`     | `num_gpu` and `gpu_milli`, see below                                        |
//! | `models`      | `gpu_spec` split on `\|`, the trace's own codes as written (see [`model_name`]); empty = any |
//! | `duration_s`  | `deletion_time − scheduled_time` (Pending pods: see below)                  |
//! | `job_class`   | empty: the trace says nothing about what a pod runs                          |
//! | `cpu_milli`, `mem_mib` | `cpu_milli`, `memory_mib`                                          |
//! | `outcome`     | `pod_phase`, see below                                                      |
//!
//! **Devices.** `num_gpu = 0` is a CPU-only pod (`gpu_milli` must be 0) → 0 devices;
//! `num_gpu = 1` with `gpu_milli` from 1 to 999 is a share of one GPU → `gpu_milli / 1000`;
//! `num_gpu ≥ 1` with `gpu_milli = 1000` → `num_gpu` whole GPUs. Every other combination
//! (a share of several GPUs, `gpu_milli = 0` on a GPU pod, `gpu_milli > 1000`, a GPU share on a
//! CPU-only pod) is an error naming the line and column `gpu_milli`: none occurs in any of the
//! published pod lists (checked over all 24), the upstream README says shares only exist for
//! `num_gpu == 1`, and the native schema cannot express "2 × half a GPU".
//!
//! **QoS → priority tier** ([`qos_priority`]): `Guaranteed` = 3, `LS` = 2, `Burstable` = 1,
//! `BE` (also spelled `BestEffort`) = 0; any other value is an error. Kubernetes evicts
//! BestEffort pods first, then Burstable, and Guaranteed (request = limit) last. `LS`
//! (latency-sensitive) and `BE` (best-effort) are Alibaba's colocation classes (as in its
//! open-source Koordinator): LS marks online services that BE batch work must yield to. So
//! Guaranteed, the one class with a hard resource guarantee, is on top; LS, protected by
//! colocation, ranks above a plain Burstable pod; BE is last. In the default list: LS 4,647,
//! BE 3,398, Burstable 100, Guaranteed 7.
//!
//! **Pod phase → outcome and duration.**
//!
//! - `Succeeded` → [`JobOutcome::Completed`]; `Failed` → [`JobOutcome::Failed`]. Duration
//!   `deletion − scheduled`: the pod's time on its node (for a failed pod, an upper bound on how
//!   long it ran before failing).
//! - `Running` with `deletion_time` equal to the **trace's end** (the largest `deletion_time`
//!   in the file; 12,902,960 s in the default list) was still running when the trace was cut:
//!   [`JobOutcome::Unfinished`], and its duration is a **lower bound**. 34 pods in the default
//!   list.
//! - `Running` with an earlier `deletion_time` was deleted while running (by its owner, a
//!   controller scaling down, or an eviction; the trace does not say which; for LS services this
//!   is their normal end): [`JobOutcome::Killed`], and `deletion − scheduled` is its real
//!   lifetime. Most Running pods are of this kind (5,159 of 5,193 in the default list).
//! - `Pending` pods were never scheduled (`scheduled_time` is empty; it must be, and it must not
//!   be for any other phase). They are **kept**, because the FGD paper replays the whole pod
//!   list as a packing workload: every pod is a resource request, whether or not the production
//!   scheduler found room for it, and dropping them would make the workload lighter than the one
//!   the paper evaluates. Their run time is unknown; their duration is `deletion − creation`,
//!   how long the request stood in the cluster before it was withdrawn (median 94 s in the
//!   default list), and their `outcome` is `None`, which is how a caller recognises (and counts,
//!   or drops) them: in a file read by [`load_pods`] every other pod has an outcome. 897 pods in
//!   the default list.
//!
//! Times must be ordered: `creation ≤ scheduled ≤ deletion` (`creation ≤ deletion` for Pending
//! pods); a violation is an error naming the line and column.
//!
//! **Unsorted files are repaired, not refused:** the `gpushare*` lists and all `cpu*` lists but
//! `cpu0` are not in creation order. Jobs are returned sorted by `submit_s`, stably (pods
//! created in the same second keep their file order); `job_id` and [`TraceJob::line`] still
//! give the file order.
//!
//! `gpu_spec` lists are deduplicated keeping first occurrences (`V100M16|V100M32|V100M32`
//! occurs in `gpuspec33`); an empty entry (`T4||P100`) is an error.
//!
//! # The `multigpu*` variants → [`load_pods_untimed`]
//!
//! `openb_pod_list_multigpu{20,30,40,50}.csv` have only `name,cpu_milli,memory_mib,num_gpu,
//! gpu_milli`: no QoS, phase or times at all. [`load_pods`] refuses them with
//! [`TraceError::MissingColumn`] (naming `gpu_spec`, the first absent column), rather than invent
//! times. [`load_pods_untimed`] reads any pod list as an untimed packing workload, the way the
//! FGD simulator replays them: every pod submitted at 0 in file order (the simulator keeps the
//! order of equal times), each with the duration the **caller** gives (e.g. longer than the run,
//! for "pods never leave"), outcome `None`. It reads `gpu_spec` and `qos` where the file has them
//! and ignores times and phases.
//!
//! # Node lists (`openb_node_list_*.csv`) → [`load_nodes`]
//!
//! Header `sn,cpu_milli,memory_mib,gpu,model`. A CPU-only node has `gpu = 0` and an empty
//! `model`. A node with GPUs and no model, a model on a node without GPUs, and a serial number
//! used twice are errors. `openb_node_list_all_node.csv` has 1,523 nodes (310 CPU-only) with
//! 6,212 GPUs: G2 4,392, T4 842, G3 312, P100 265, V100M32 204, V100M16 195, A10 2.
//!
//! # Device models
//!
//! [`model_name`] maps openb's codes to the built-in catalogue's names (`V100M16` →
//! `V100-16GB`, `V100M32` → `V100-32GB`; `T4`, `P100`, `A10` are the same); [`catalogue_models`]
//! gives entries for the codes the catalogue lacks, `G2` and `G3`, which Alibaba does not
//! disclose (its README: "G1, G2, G3 are undisclosed internal GPU codes"): `undisclosed: true`
//! and no figures. (`G1` occurs in no openb file and gets no entry.)
//!
//! Every error names the file, the 1-based line and the column.

use crate::csv::{self, shorten, Table};
use crate::native::{EXPECT_CPU_MILLI, EXPECT_MEM_MIB};
use crate::{TraceError, TraceJob};
use tessera_core::JobOutcome;
use std::collections::HashMap;
use std::path::Path;
use tessera_core::{DeviceKind, DeviceModel};

/// The tenant of every openb job: the trace has no user, team or virtual cluster.
pub const TENANT: &str = "openb";

/// The header of a timed pod list, for error messages.
pub const POD_HEADER: &str =
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time";
/// The header of a node list, for error messages.
pub const NODE_HEADER: &str = "sn,cpu_milli,memory_mib,gpu,model";

/// One node of an openb node list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceNode {
    /// The node's serial number (`sn`), e.g. `openb-node-0227`.
    pub name: String,
    /// CPU in thousandths of a core.
    pub cpu_milli: u32,
    /// Main memory in MiB.
    pub mem_mib: u64,
    /// Number of GPUs (0 for a CPU-only node).
    pub gpus: u32,
    /// The GPU model as the trace writes it (`G2`, `V100M32`, …; see [`model_name`]); `None`
    /// for a CPU-only node.
    pub model: Option<String>,
    /// The 1-based line of the file the node was read from.
    pub line: u64,
}

/// The priority tier of an openb `qos` value (larger is more important), or `None` for a value
/// the trace does not use. See the [module documentation](self) for the reasoning.
pub fn qos_priority(qos: &str) -> Option<i32> {
    match qos {
        "Guaranteed" => Some(3),
        "LS" => Some(2),
        "Burstable" => Some(1),
        "BE" | "BestEffort" => Some(0),
        _ => None,
    }
}

/// The built-in catalogue's name for an openb GPU code where the catalogue has the model
/// (`V100M16` → `V100-16GB`, `V100M32` → `V100-32GB`, `T4`, `P100`, `A10` unchanged), else the
/// code itself (`G2`, `G3`: add [`catalogue_models`] to the catalogue to look them up).
pub fn model_name(code: &str) -> &str {
    match code {
        "V100M16" => "V100-16GB",
        "V100M32" => "V100-32GB",
        "T4" => "T4",
        "P100" => "P100",
        "A10" => "A10",
        other => other,
    }
}

/// Catalogue entries for the openb codes the built-in catalogue lacks: `G2` and `G3`,
/// undisclosed GPUs, with no figures (Alibaba publishes none, and tessera does not guess).
pub fn catalogue_models() -> Vec<DeviceModel> {
    ["G2", "G3"]
        .into_iter()
        .map(|name| DeviceModel {
            name: name.to_string(),
            kind: DeviceKind::Gpu,
            mem_gib: None,
            fp16_tflops: None,
            fp32_tflops: None,
            mem_bw_gbps: None,
            undisclosed: true,
        })
        .collect()
}

/// Reads a timed openb pod list. See the [module documentation](self) for the mapping and rules.
pub fn load_pods(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    let data = csv::read(path)?;
    parse_pods(&data, path, None)
}

/// Reads any openb pod list (the `multigpu*` variants included) as an untimed packing workload:
/// every pod submitted at 0 in file order, each running `duration_s`, outcome `None`; times and
/// phases are ignored, `gpu_spec` and `qos` read where present. `duration_s` must be finite and
/// `>= 0`. See the [module documentation](self).
pub fn load_pods_untimed(path: &Path, duration_s: f64) -> Result<Vec<TraceJob>, TraceError> {
    if !(duration_s.is_finite() && duration_s >= 0.0) {
        return Err(TraceError::Invalid {
            path: path.to_path_buf(),
            line: 0,
            column: "argument `duration_s`".into(),
            message: format!("expected a number of seconds >= 0, found {duration_s}"),
        });
    }
    let data = csv::read(path)?;
    parse_pods(&data, path, Some(duration_s))
}

/// Parses a pod list held in memory; `origin` is the name errors give for it. `untimed` is
/// `Some(duration)` for [`load_pods_untimed`].
pub fn parse_pods(
    data: &[u8],
    origin: &Path,
    untimed: Option<f64>,
) -> Result<Vec<TraceJob>, TraceError> {
    const NAME: usize = 0;
    const CPU: usize = 1;
    const MEM: usize = 2;
    const NUM_GPU: usize = 3;
    const GPU_MILLI: usize = 4;
    const GPU_SPEC: usize = 5;
    const QOS: usize = 6;
    const PHASE: usize = 7;
    const CREATION: usize = 8;
    const DELETION: usize = 9;
    const SCHEDULED: usize = 10;
    const COLUMNS: [&str; 11] = [
        "name",
        "cpu_milli",
        "memory_mib",
        "num_gpu",
        "gpu_milli",
        "gpu_spec",
        "qos",
        "pod_phase",
        "creation_time",
        "deletion_time",
        "scheduled_time",
    ];
    let required = if untimed.is_some() {
        [
            true, true, true, true, true, false, false, false, false, false, false,
        ]
    } else {
        [true; 11]
    };

    let text = csv::text(data, origin)?;
    let mut t = Table::open(text, origin, POD_HEADER)?;
    let col = t.columns(&COLUMNS, &required)?;

    let mut jobs: Vec<TraceJob> = Vec::with_capacity(text.len() / 64);
    let mut first_line_of: HashMap<String, u64> = HashMap::with_capacity(text.len() / 64);
    // Running pods, as (index into jobs, deletion time), to tell censored from killed once the
    // trace's end is known.
    let mut running: Vec<(usize, f64)> = Vec::new();
    let mut trace_end = f64::NEG_INFINITY;

    while t.next_row()? {
        let line = t.line();
        let field = |c: usize| t.get(col[c]);
        let bad = |c: usize, expected: &'static str| t.bad(col[c], COLUMNS[c], expected);
        let invalid = |c: usize, message: String| t.invalid(COLUMNS[c], message);

        let name = field(NAME);
        if name.is_empty() {
            return Err(bad(NAME, "a pod name"));
        }
        if let Some(&first) = first_line_of.get(name) {
            return Err(invalid(
                NAME,
                format!(
                    "pod name `{}` was already used on line {first}",
                    shorten(name)
                ),
            ));
        }
        first_line_of.insert(name.to_string(), line);

        let cpu_milli: u32 = field(CPU)
            .parse()
            .map_err(|_| bad(CPU, EXPECT_CPU_MILLI))?;
        let mem_mib: u64 = field(MEM)
            .parse()
            .map_err(|_| bad(MEM, EXPECT_MEM_MIB))?;
        let num_gpu: u32 = field(NUM_GPU)
            .parse()
            .map_err(|_| bad(NUM_GPU, "an integer number of GPUs >= 0"))?;
        let gpu_milli: u32 = field(GPU_MILLI)
            .parse()
            .ok()
            .filter(|&m| m <= 1000)
            .ok_or_else(|| {
                bad(
                    GPU_MILLI,
                    "an integer from 0 to 1000 (thousandths of a GPU)",
                )
            })?;
        let devices = match (num_gpu, gpu_milli) {
            (0, 0) => 0.0,
            (1, 1..=999) => f64::from(gpu_milli) / 1000.0,
            (n, 1000) if n >= 1 => f64::from(n),
            (0, _) => return Err(invalid(GPU_MILLI, format!("a CPU-only pod (num_gpu 0) asks for {gpu_milli} thousandths of a GPU"))),
            (n, 0) => return Err(invalid(GPU_MILLI, format!("a pod with {n} GPU(s) asks for 0 thousandths of each"))),
            (n, m) => {
                return Err(invalid(
                    GPU_MILLI,
                    format!("a share of a GPU ({m} thousandths) is only allowed for num_gpu 1, found num_gpu {n}"),
                ))
            }
        };

        let models = parse_spec(field(GPU_SPEC))
            .ok_or_else(|| bad(GPU_SPEC, "GPU model codes separated by `|`, or nothing"))?;
        let priority = match field(QOS) {
            "" if untimed.is_some() => 0,
            qos => {
                qos_priority(qos).ok_or_else(|| bad(QOS, "one of Guaranteed, LS, Burstable, BE"))?
            }
        };

        let mut job = TraceJob::new(jobs.len() as u64 + 1, 0.0, TENANT, devices, 0.0);
        job.priority = priority;
        job.models = models;
        job.cpu_milli = cpu_milli;
        job.mem_mib = mem_mib;
        job.line = line;

        if let Some(duration_s) = untimed {
            job.duration_s = duration_s;
        } else {
            let seconds = |c: usize| csv::seconds(field(c));
            let creation = seconds(CREATION).ok_or_else(|| bad(CREATION, csv::EXPECT_SECONDS))?;
            let deletion = seconds(DELETION).ok_or_else(|| bad(DELETION, csv::EXPECT_SECONDS))?;
            let phase = field(PHASE);
            let (outcome, pending) = match phase {
                "Succeeded" => (Some(JobOutcome::Completed), false),
                "Failed" => (Some(JobOutcome::Failed), false),
                "Running" => (Some(JobOutcome::Killed), false),
                "Pending" => (None, true),
                _ => return Err(bad(PHASE, "one of Succeeded, Failed, Running, Pending")),
            };
            let start = if pending {
                if !field(SCHEDULED).is_empty() {
                    return Err(invalid(
                        SCHEDULED,
                        "a Pending pod was never scheduled, so its scheduled_time must be empty"
                            .into(),
                    ));
                }
                creation
            } else {
                let scheduled = seconds(SCHEDULED).ok_or_else(|| {
                    bad(
                        SCHEDULED,
                        "a number of seconds >= 0 (empty only for a Pending pod)",
                    )
                })?;
                if scheduled < creation {
                    return Err(invalid(
                        SCHEDULED,
                        format!("scheduled at {scheduled} s, before its creation at {creation} s"),
                    ));
                }
                scheduled
            };
            if deletion < start {
                let what = if pending { "creation" } else { "scheduling" };
                return Err(invalid(
                    DELETION,
                    format!("deleted at {deletion} s, before its {what} at {start} s"),
                ));
            }
            trace_end = trace_end.max(deletion);
            if phase == "Running" {
                running.push((jobs.len(), deletion));
            }
            job.submit_s = creation;
            job.duration_s = deletion - start;
            job.outcome = outcome;
        }
        jobs.push(job);
    }

    if jobs.is_empty() {
        return Err(t.no_jobs());
    }
    for (i, deletion) in running {
        if deletion == trace_end {
            jobs[i].outcome = Some(JobOutcome::Unfinished);
        }
    }
    csv::sort_by_submit(&mut jobs);
    Ok(jobs)
}

/// Reads an openb node list. See the [module documentation](self).
pub fn load_nodes(path: &Path) -> Result<Vec<TraceNode>, TraceError> {
    let data = csv::read(path)?;
    parse_nodes(&data, path)
}

/// Parses a node list held in memory; `origin` is the name errors give for it.
pub fn parse_nodes(data: &[u8], origin: &Path) -> Result<Vec<TraceNode>, TraceError> {
    const SN: usize = 0;
    const CPU: usize = 1;
    const MEM: usize = 2;
    const GPU: usize = 3;
    const MODEL: usize = 4;
    const COLUMNS: [&str; 5] = ["sn", "cpu_milli", "memory_mib", "gpu", "model"];

    let text = csv::text(data, origin)?;
    let mut t = Table::open(text, origin, NODE_HEADER)?;
    let col = t.columns(&COLUMNS, &[true; 5])?;
    let mut nodes: Vec<TraceNode> = Vec::new();
    let mut first_line_of: HashMap<String, u64> = HashMap::new();

    while t.next_row()? {
        let line = t.line();
        let field = |c: usize| t.get(col[c]);
        let bad = |c: usize, expected: &'static str| t.bad(col[c], COLUMNS[c], expected);
        let invalid = |c: usize, message: String| t.invalid(COLUMNS[c], message);
        let sn = field(SN);
        if sn.is_empty() {
            return Err(bad(SN, "a node serial number"));
        }
        if let Some(&first) = first_line_of.get(sn) {
            return Err(invalid(
                SN,
                format!("node `{}` was already listed on line {first}", shorten(sn)),
            ));
        }
        first_line_of.insert(sn.to_string(), line);
        let cpu_milli: u32 = field(CPU)
            .parse()
            .map_err(|_| bad(CPU, EXPECT_CPU_MILLI))?;
        let mem_mib: u64 = field(MEM)
            .parse()
            .map_err(|_| bad(MEM, EXPECT_MEM_MIB))?;
        let gpus: u32 = field(GPU)
            .parse()
            .map_err(|_| bad(GPU, "an integer number of GPUs >= 0"))?;
        let model = match (gpus, field(MODEL)) {
            (0, "") => None,
            (0, m) => {
                return Err(invalid(
                    MODEL,
                    format!("a node without GPUs names a GPU model `{}`", shorten(m)),
                ))
            }
            (n, "") => {
                return Err(invalid(
                    MODEL,
                    format!("a node with {n} GPU(s) must name their model"),
                ))
            }
            (_, m) => Some(m.to_string()),
        };
        nodes.push(TraceNode {
            name: sn.to_string(),
            cpu_milli,
            mem_mib,
            gpus,
            model,
            line,
        });
    }
    if nodes.is_empty() {
        return Err(t.no_jobs());
    }
    Ok(nodes)
}

/// `gpu_spec`: codes separated by `|`, deduplicated in first-seen order; empty = any.
fn parse_spec(s: &str) -> Option<Vec<String>> {
    let mut models: Vec<String> = Vec::new();
    if s.is_empty() {
        return Some(models);
    }
    for code in s.split('|') {
        let code = code.trim();
        if code.is_empty() {
            return None;
        }
        if !models.iter().any(|m| m == code) {
            models.push(code.to_string());
        }
    }
    Some(models)
}

/// openb pod lists as a trace format.
pub struct Openb;

impl crate::format::TraceFormat for Openb {
    fn name(&self) -> &'static str {
        "openb"
    }

    fn description(&self) -> &'static str {
        "Alibaba GPU 2023 (openb) pod list"
    }

    fn load(&self, path: &Path, _: &crate::format::Options) -> Result<crate::source::LoadedTrace, TraceError> {
        let mut jobs = load_pods(path)?;
        for job in &mut jobs {
            for model in &mut job.models {
                *model = model_name(model).to_string();
            }
        }
        let pending = jobs.iter().filter(|j| j.outcome.is_none()).count();
        let censored = jobs.iter().filter(|j| j.outcome == Some(JobOutcome::Unfinished)).count();
        let notes = vec![
            format!("{pending} pending pods (never scheduled) kept, each asking for its resources from creation to deletion"),
            format!("{censored} pods still running at the trace's end kept with their run so far (censored)"),
        ];
        Ok(crate::source::LoadedTrace { jobs, models: catalogue_models(), notes, ..Default::default() })
    }

    fn catalogue_models(&self) -> Vec<DeviceModel> {
        catalogue_models()
    }
}
