//! The world models: what real clusters do to jobs, each optional, configured under `[models]`
//! in the scenario, each drawing only from the run's seeded generator.
//!
//! ```toml
//! [models.contention]            # jobs that share hardware slow each other
//! node = { dist = "constant", value = 0.95 }     # rate factor per other job on the same node
//! device = { dist = "lognormal", mean = 0.7, sigma = 0.1 }  # per other job on the same device
//! pcie_switch = { dist = "uniform", min_s = 0.85, max_s = 1.0 }  # per other job under the same switch
//! nvlink_island = { dist = "constant", value = 0.98 }
//! devices_per_pcie_switch = 4     # a node's devices in consecutive groups
//! devices_per_nvlink_island = 8
//! device_sharing = "equal"        # or: jobs on one device get 1/n of it each (processor sharing)
//!
//! [models.communication]
//! per_extra_node = 0.85           # a gang over k nodes runs at 0.85^(k-1) of its speed
//!
//! [models.failures]
//! device = { mtbf_h = 20000, lifetime = "exponential", repair = { dist = "constant", value = 3600 } }
//! node = { mtbf_h = 50000, lifetime = "weibull", shape = 0.8, repair = { dist = "exponential", mean_s = 7200 } }
//! max_attempts = 5                # a job interrupted by failures this many times ends `failed`
//! [[models.failures.by_model]]    # per device model MTBF overrides
//! model = "K80"
//! mtbf_h = 8000
//!
//! [[models.maintenance]]          # planned drain windows
//! nodes = ["a100-0", "a100-1"]
//! start_s = 86400
//! duration_s = 14400
//!
//! [models.checkpoint]             # defaults for every class; [[models.checkpoint.by_class]] overrides
//! interval_s = 3600               # work between checkpoints (reference seconds)
//! cost_s = 60                     # time to write one
//! restore_s = 120                 # time to load one when the job restarts from it
//! save_on_preempt_s = 30          # time to save when preempted (if it fits in the grace period)
//!
//! [models.startup]
//! cold = { dist = "constant", value = 120 }   # image pull, data loading, compilation
//! warm = { dist = "constant", value = 15 }    # on a node that ran the same class recently
//! warm_window_s = 3600
//!
//! [models.estimate_error]         # stated duration = true work x factor (used by SJF); not for
//!                                 # trace jobs with a `stated_duration_s`, which keep theirs
//! factor = { dist = "lognormal", mean = 1.0, sigma = 0.5 }
//!
//! [[models.fleet]]                # nodes added or removed at given times
//! at_s = 604800
//! add = { count = 8, devices = { model = "H100", count = 8 }, cpu_cores = 96, mem_gib = 1024, name = "h100" }
//! [[models.fleet]]
//! at_s = 1209600
//! remove = ["p100-0", "p100-1"]
//! ```

use crate::dist::DistSpec;
use crate::scenario::NodeGroupSpec;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSpec {
    #[serde(default)]
    pub contention: Option<ContentionSpec>,
    #[serde(default)]
    pub communication: Option<CommunicationSpec>,
    #[serde(default)]
    pub failures: Option<FailuresSpec>,
    #[serde(default)]
    pub maintenance: Vec<MaintenanceSpec>,
    #[serde(default)]
    pub checkpoint: Option<CheckpointSpec>,
    #[serde(default)]
    pub startup: Option<StartupSpec>,
    #[serde(default)]
    pub estimate_error: Option<EstimateErrorSpec>,
    #[serde(default)]
    pub fleet: Vec<FleetChangeSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentionSpec {
    /// Rate factor drawn per pair of jobs on the same node.
    #[serde(default)]
    pub node: Option<DistSpec>,
    /// Rate factor drawn per pair of jobs on the same device (fractional shares).
    #[serde(default)]
    pub device: Option<DistSpec>,
    #[serde(default)]
    pub pcie_switch: Option<DistSpec>,
    #[serde(default)]
    pub nvlink_island: Option<DistSpec>,
    #[serde(default)]
    pub devices_per_pcie_switch: Option<u32>,
    #[serde(default)]
    pub devices_per_nvlink_island: Option<u32>,
    /// `equal`: n jobs on one device each get 1/n of it (processor sharing), on top of `device`.
    #[serde(default)]
    pub device_sharing: Option<DeviceSharing>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceSharing {
    Equal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunicationSpec {
    /// Speed factor per node a gang spans beyond the first.
    pub per_extra_node: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifetime {
    Exponential,
    Weibull,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureProcessSpec {
    /// Mean time between failures, hours.
    pub mtbf_h: f64,
    #[serde(default = "exponential")]
    pub lifetime: Lifetime,
    /// Weibull shape (below 1: infant mortality; above 1: wear-out).
    #[serde(default)]
    pub shape: Option<f64>,
    /// Time to repair, seconds; instant when absent.
    #[serde(default)]
    pub repair: Option<DistSpec>,
}

fn exponential() -> Lifetime {
    Lifetime::Exponential
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMtbfSpec {
    pub model: String,
    pub mtbf_h: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailuresSpec {
    #[serde(default)]
    pub device: Option<FailureProcessSpec>,
    #[serde(default)]
    pub node: Option<FailureProcessSpec>,
    #[serde(default)]
    pub by_model: Vec<ModelMtbfSpec>,
    /// Failures a job survives; the next one ends it `failed`. Unlimited when absent.
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    pub nodes: Vec<String>,
    pub start_s: f64,
    pub duration_s: f64,
}

/// The four checkpoint costs, as either table gives them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointCosts {
    pub interval_s: Option<f64>,
    pub cost_s: Option<f64>,
    pub restore_s: Option<f64>,
    pub save_on_preempt_s: Option<f64>,
}

// The cost fields are spelled out in both tables rather than shared by `#[serde(flatten)]`,
// which would disable `deny_unknown_fields` and let a misspelt key pass silently.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    #[serde(default)]
    pub interval_s: Option<f64>,
    #[serde(default)]
    pub cost_s: Option<f64>,
    #[serde(default)]
    pub restore_s: Option<f64>,
    #[serde(default)]
    pub save_on_preempt_s: Option<f64>,
    #[serde(default)]
    pub by_class: Vec<ClassCheckpointSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassCheckpointSpec {
    pub class: String,
    #[serde(default)]
    pub interval_s: Option<f64>,
    #[serde(default)]
    pub cost_s: Option<f64>,
    #[serde(default)]
    pub restore_s: Option<f64>,
    #[serde(default)]
    pub save_on_preempt_s: Option<f64>,
}

impl CheckpointSpec {
    fn defaults(&self) -> CheckpointCosts {
        CheckpointCosts { interval_s: self.interval_s, cost_s: self.cost_s, restore_s: self.restore_s, save_on_preempt_s: self.save_on_preempt_s }
    }
}

impl ClassCheckpointSpec {
    fn costs(&self) -> CheckpointCosts {
        CheckpointCosts { interval_s: self.interval_s, cost_s: self.cost_s, restore_s: self.restore_s, save_on_preempt_s: self.save_on_preempt_s }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartupSpec {
    pub cold: DistSpec,
    #[serde(default)]
    pub warm: Option<DistSpec>,
    #[serde(default)]
    pub warm_window_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimateErrorSpec {
    pub factor: DistSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetChangeSpec {
    pub at_s: f64,
    #[serde(default)]
    pub add: Option<NodeGroupSpec>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Checkpoint behaviour of one job class, in microseconds; `interval` None: never checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CheckpointCostsUs {
    pub interval: Option<f64>,
    pub cost: u64,
    pub restore: u64,
    pub save_on_preempt: Option<u64>,
}

impl CheckpointSpec {
    /// The costs for a class: its `by_class` entry over the defaults.
    pub fn for_class(&self, class: &str) -> CheckpointCostsUs {
        let over = self.by_class.iter().find(|c| c.class == class).map(|c| c.costs());
        let defaults = self.defaults();
        let pick = |f: fn(&CheckpointCosts) -> Option<f64>| over.as_ref().and_then(f).or_else(|| f(&defaults));
        let us = |s: f64| (s * 1e6).round() as u64;
        CheckpointCostsUs {
            interval: pick(|c| c.interval_s).map(|s| s * 1e6),
            cost: pick(|c| c.cost_s).map_or(0, us),
            restore: pick(|c| c.restore_s).map_or(0, us),
            save_on_preempt: pick(|c| c.save_on_preempt_s).map(us),
        }
    }
}

impl ModelsSpec {
    /// Semantic checks, each naming its key under `models`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |key: &str, msg: String| Err((format!("models.{key}"), msg));
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        if let Some(c) = &self.contention {
            for (name, d) in [("node", &c.node), ("device", &c.device), ("pcie_switch", &c.pcie_switch), ("nvlink_island", &c.nvlink_island)] {
                if let Some(d) = d {
                    if let Err(m) = d.validate() {
                        return err(&format!("contention.{name}"), m);
                    }
                    if !d.always_positive() {
                        return err(&format!("contention.{name}"), "expected rate factors above 0 (1.0 = no slowdown)".into());
                    }
                }
            }
            for (name, v) in [("devices_per_pcie_switch", c.devices_per_pcie_switch), ("devices_per_nvlink_island", c.devices_per_nvlink_island)] {
                if v == Some(0) {
                    return err(&format!("contention.{name}"), "expected a positive integer, found 0".into());
                }
            }
            if c.pcie_switch.is_some() && c.devices_per_pcie_switch.is_none() {
                return err("contention.devices_per_pcie_switch", "`pcie_switch` contention needs how many devices share a switch".into());
            }
            if c.nvlink_island.is_some() && c.devices_per_nvlink_island.is_none() {
                return err("contention.devices_per_nvlink_island", "`nvlink_island` contention needs how many devices form an island".into());
            }
        }
        if let Some(c) = &self.communication {
            if !(c.per_extra_node > 0.0 && c.per_extra_node <= 1.0) {
                return err("communication.per_extra_node", format!("expected a factor in (0, 1], found {}", c.per_extra_node));
            }
        }
        if let Some(f) = &self.failures {
            for (name, p) in [("device", &f.device), ("node", &f.node)] {
                if let Some(p) = p {
                    if !positive(p.mtbf_h) {
                        return err(&format!("failures.{name}.mtbf_h"), format!("expected a positive number of hours, found {}", p.mtbf_h));
                    }
                    match (p.lifetime, p.shape) {
                        (Lifetime::Weibull, None) => return err(&format!("failures.{name}.shape"), "a weibull lifetime needs its `shape`".into()),
                        (_, Some(k)) if !positive(k) => return err(&format!("failures.{name}.shape"), format!("expected a positive shape, found {k}")),
                        _ => {}
                    }
                    if let Some(r) = &p.repair {
                        if let Err(m) = r.validate() {
                            return err(&format!("failures.{name}.repair"), m);
                        }
                    }
                }
            }
            for (i, m) in f.by_model.iter().enumerate() {
                if !positive(m.mtbf_h) {
                    return err(&format!("failures.by_model[{i}].mtbf_h"), format!("expected a positive number of hours, found {}", m.mtbf_h));
                }
            }
            if f.max_attempts == Some(0) {
                return err("failures.max_attempts", "expected a positive integer, found 0".into());
            }
        }
        for (i, m) in self.maintenance.iter().enumerate() {
            if !(non_negative(m.start_s) && positive(m.duration_s)) {
                return err(&format!("maintenance[{i}]"), format!("expected start_s >= 0 and duration_s > 0, found {} and {}", m.start_s, m.duration_s));
            }
            if m.nodes.is_empty() {
                return err(&format!("maintenance[{i}].nodes"), "expected at least one node name".into());
            }
            for (name, v) in [("start_s", m.start_s), ("duration_s", m.duration_s)] {
                if let Err(m) = limits::check_secs(v, true) {
                    return err(&format!("maintenance[{i}].{name}"), m);
                }
            }
        }
        if let Some(c) = &self.checkpoint {
            let check = |key: String, costs: &CheckpointCosts| -> Result<(), (String, String)> {
                for (name, v) in [("interval_s", costs.interval_s), ("cost_s", costs.cost_s), ("restore_s", costs.restore_s), ("save_on_preempt_s", costs.save_on_preempt_s)] {
                    if let Some(v) = v {
                        let ok = if name == "interval_s" { positive(v) } else { non_negative(v) };
                        if !ok {
                            return Err((format!("{key}.{name}"), format!("expected a {} number of seconds, found {v}", if name == "interval_s" { "positive" } else { "non-negative" })));
                        }
                        limits::check_secs(v, true).map_err(|m| (format!("{key}.{name}"), m))?;
                    }
                }
                Ok(())
            };
            check("models.checkpoint".into(), &c.defaults())?;
            for (i, class) in c.by_class.iter().enumerate() {
                check(format!("models.checkpoint.by_class[{i}]"), &class.costs())?;
            }
        }
        if let Some(s) = &self.startup {
            for (name, d) in [("cold", Some(&s.cold)), ("warm", s.warm.as_ref())] {
                if let Some(d) = d {
                    if let Err(m) = d.validate() {
                        return err(&format!("startup.{name}"), m);
                    }
                    if d.min_value() < 0.0 {
                        return err(&format!("startup.{name}"), "expected non-negative delays".into());
                    }
                }
            }
            if s.warm.is_some() != s.warm_window_s.is_some() {
                return err("startup.warm_window_s", "`warm` and `warm_window_s` go together".into());
            }
        }
        if let Some(e) = &self.estimate_error {
            if let Err(m) = e.factor.validate() {
                return err("estimate_error.factor", m);
            }
            if !e.factor.always_positive() {
                return err("estimate_error.factor", "expected positive factors".into());
            }
        }
        for (i, f) in self.fleet.iter().enumerate() {
            if !non_negative(f.at_s) {
                return err(&format!("fleet[{i}].at_s"), format!("expected a non-negative number of seconds, found {}", f.at_s));
            }
            if let Err(m) = limits::check_secs(f.at_s, true) {
                return err(&format!("fleet[{i}].at_s"), m);
            }
            if f.add.is_none() && f.remove.is_empty() {
                return err(&format!("fleet[{i}]"), "expected `add` (a node group) or `remove` (node names)".into());
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The models ready to run: samplers built, names resolved to ids.

use crate::dist::Sampler;
use crate::scenario::{Scenario, ScenarioError};
use tessera_core::{limits, Catalogue, NodeId, NodeSpec, Time};

/// Contention levels, as indexes into `WorldModels::contention`.
pub const NODE: usize = 0;
pub const DEVICE: usize = 1;
pub const PCIE_SWITCH: usize = 2;
pub const NVLINK_ISLAND: usize = 3;

pub struct FailureProcess {
    /// Lifetime samplers per device model (device failures) or one (node failures).
    pub lifetime_by_model: Vec<Sampler>,
    pub repair: Option<Sampler>,
}

pub struct Startup {
    pub cold: Sampler,
    pub warm: Option<(Sampler, Time)>,
}

pub struct FleetChange {
    pub at: Time,
    pub add: Vec<NodeSpec>,
    pub remove: Vec<NodeId>,
}

pub struct Maintenance {
    pub nodes: Vec<NodeId>,
    pub start: Time,
    pub end: Time,
}

/// Everything the engine needs of the world models for one run.
#[derive(Default)]
pub struct WorldModels {
    /// Rate-factor samplers per contention level (`NODE`, `DEVICE`, `PCIE_SWITCH`, `NVLINK_ISLAND`).
    pub contention: [Option<Sampler>; 4],
    pub devices_per_pcie_switch: u32,
    pub devices_per_nvlink_island: u32,
    pub equal_device_sharing: bool,
    pub per_extra_node: Option<f64>,
    pub device_failures: Option<FailureProcess>,
    pub node_failures: Option<FailureProcess>,
    pub max_attempts: Option<u32>,
    pub maintenance: Vec<Maintenance>,
    /// Checkpoint costs per job class (indexed by `ClassId`); `None`: no checkpoint model.
    pub checkpoint: Option<Vec<CheckpointCostsUs>>,
    pub startup: Option<Startup>,
    pub fleet: Vec<FleetChange>,
}

impl WorldModels {
    /// True when start-up depends on what ran on a node before.
    pub fn has_warm_start(&self) -> bool {
        self.startup.as_ref().is_some_and(|s| s.warm.is_some())
    }

    /// True when any co-location changes a job's rate, so rates must be recomputed.
    pub fn has_contention(&self) -> bool {
        self.contention.iter().any(Option::is_some) || self.equal_device_sharing
    }

    /// Builds the models of a scenario for a workload's classes and a cluster's nodes.
    pub fn build(s: &Scenario, catalogue: &Catalogue, nodes: &[NodeSpec], classes: &[String]) -> Result<WorldModels, ScenarioError> {
        let spec = &s.models;
        let sampler = |key: &str, d: &DistSpec| d.build().map_err(|m| ScenarioError::invalid(&s.path, format!("models.{key}"), m));
        let mut w = WorldModels::default();
        if let Some(c) = &spec.contention {
            for (level, (key, d)) in [("contention.node", &c.node), ("contention.device", &c.device), ("contention.pcie_switch", &c.pcie_switch), ("contention.nvlink_island", &c.nvlink_island)]
                .into_iter()
                .enumerate()
            {
                if let Some(d) = d {
                    w.contention[level] = Some(sampler(key, d)?);
                }
            }
            w.devices_per_pcie_switch = c.devices_per_pcie_switch.unwrap_or(u32::MAX);
            w.devices_per_nvlink_island = c.devices_per_nvlink_island.unwrap_or(u32::MAX);
            w.equal_device_sharing = c.device_sharing == Some(DeviceSharing::Equal);
        }
        w.per_extra_node = spec.communication.as_ref().map(|c| c.per_extra_node);
        if let Some(f) = &spec.failures {
            let lifetime = |key: &str, p: &FailureProcessSpec, mtbf_h: f64| {
                let mean_s = mtbf_h * 3600.0;
                let d = match p.lifetime {
                    Lifetime::Exponential => DistSpec::Exponential { mean_s },
                    Lifetime::Weibull => DistSpec::Weibull { mean_s, shape: p.shape.unwrap_or(1.0) },
                };
                sampler(key, &d)
            };
            if let Some(p) = &f.device {
                let mut by_model = Vec::with_capacity(catalogue.len());
                for (id, model) in catalogue.iter() {
                    let mtbf_h = f.by_model.iter().find(|m| catalogue.lookup(&m.model) == Some(id)).map_or(p.mtbf_h, |m| m.mtbf_h);
                    by_model.push(lifetime(&format!("failures.device ({})", model.name), p, mtbf_h)?);
                }
                let repair = p.repair.as_ref().map(|r| sampler("failures.device.repair", r)).transpose()?;
                w.device_failures = Some(FailureProcess { lifetime_by_model: by_model, repair });
            }
            if let Some(p) = &f.node {
                let repair = p.repair.as_ref().map(|r| sampler("failures.node.repair", r)).transpose()?;
                w.node_failures = Some(FailureProcess { lifetime_by_model: vec![lifetime("failures.node", p, p.mtbf_h)?], repair });
            }
            w.max_attempts = f.max_attempts;
        }
        let node_id = |key: String, name: &str| {
            nodes.iter().position(|n| n.name == name).map(|i| NodeId(i as u32)).ok_or_else(|| {
                let known: Vec<&str> = nodes.iter().take(8).map(|n| n.name.as_str()).collect();
                ScenarioError::invalid(&s.path, key, format!("no node named `{name}`; nodes are named like {}", known.join(", ")))
            })
        };
        for (i, m) in spec.maintenance.iter().enumerate() {
            let ids = m.nodes.iter().enumerate().map(|(j, n)| node_id(format!("models.maintenance[{i}].nodes[{j}]"), n)).collect::<Result<_, _>>()?;
            w.maintenance.push(Maintenance { nodes: ids, start: Time::from_secs_f64(m.start_s), end: Time::from_secs_f64(m.start_s + m.duration_s) });
        }
        if let Some(c) = &spec.checkpoint {
            w.checkpoint = Some(classes.iter().map(|class| c.for_class(class)).collect());
        }
        if let Some(st) = &spec.startup {
            let warm = match (&st.warm, st.warm_window_s) {
                (Some(d), Some(window)) => Some((sampler("startup.warm", d)?, Time::from_secs_f64(window))),
                _ => None,
            };
            w.startup = Some(Startup { cold: sampler("startup.cold", &st.cold)?, warm });
        }
        let mut next_index = crate::workload::next_indexes(nodes);
        for (i, f) in spec.fleet.iter().enumerate() {
            let add = match &f.add {
                Some(group) => crate::workload::group_nodes(s, group, &format!("models.fleet[{i}].add"), catalogue, &mut next_index)?,
                None => Vec::new(),
            };
            let remove = f.remove.iter().enumerate().map(|(j, n)| node_id(format!("models.fleet[{i}].remove[{j}]"), n)).collect::<Result<_, _>>()?;
            w.fleet.push(FleetChange { at: Time::from_secs_f64(f.at_s), add, remove });
        }
        Ok(w)
    }
}
