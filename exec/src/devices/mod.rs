//! Device backends: each discovers its devices, says how a process is bound to a set of
//! them, and reads their health. The daemon turns every discovered device into a core device
//! with a catalogue model, so the simulator and the executor speak of the same fleet. A new
//! kind of accelerator is a new backend; the core does not change.

pub mod cpu;
pub mod nvidia;
pub mod simulated;

use crate::config::DaemonConfig;
use crate::error::ExecError;

use serde::{Deserialize, Serialize};
use tessera_core::DeviceModel;

/// One device a backend found.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovered {
    /// tessera's name: `cpu0`, `gpu0`, `gpu0-mig1`; unique over the node.
    pub name: String,
    /// The backend's stable identifier: a GPU or MIG UUID; `None` for CPU core groups.
    pub uuid: Option<String>,
    /// The catalogue model: a built-in entry's name, or a new entry to add.
    pub model: ModelChoice,
    /// CPU cores (for CPU devices: the cores a job is pinned to).
    pub cores: Vec<usize>,
    /// The node it is on, when not this host's (a backend that describes other nodes names
    /// them in `DeviceBackend::nodes`).
    pub node: Option<String>,
}

/// A node other than this host, as a backend describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub cpu_milli: u32,
    pub mem_mib: u64,
}

/// Builds a backend from the configuration, or `None` where the configuration turns it off.
pub type Constructor = fn(&DaemonConfig) -> Result<Option<Box<dyn DeviceBackend>>, ExecError>;

/// Every device backend, by name. A new kind of device is its module and one line here.
pub const REGISTRY: &[(&str, Constructor)] = &[("cpu", cpu::from_config), ("nvidia", nvidia::from_config), ("simulated", simulated::from_config)];

/// The backends the configuration turns on, in registry order.
pub fn from_config(config: &DaemonConfig) -> Result<Vec<Box<dyn DeviceBackend>>, ExecError> {
    let mut out = Vec::new();
    for (_, construct) in REGISTRY {
        out.extend(construct(config)?);
    }
    Ok(out)
}

#[derive(Clone, Debug, PartialEq)]
pub enum ModelChoice {
    /// A catalogue name or alias.
    Known(String),
    /// Not in the built-in catalogue: added (undisclosed when its figures are unknown).
    New(DeviceModel),
}

impl ModelChoice {
    pub fn name(&self) -> &str {
        match self {
            ModelChoice::Known(n) => n,
            ModelChoice::New(m) => &m.name,
        }
    }
}

/// How a process is bound to its devices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    pub env: Vec<(String, String)>,
    /// CPU affinity; `None`: not restricted by this backend.
    pub cpus: Option<Vec<usize>>,
}

/// One health reading of a device. Fields a backend cannot read are `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub mem_used_fraction: Option<f64>,
    pub mem_used_mib: Option<u64>,
    pub mem_total_mib: Option<u64>,
    pub temp_c: Option<f64>,
    /// 0..=1.
    pub utilization: Option<f64>,
    pub ecc_uncorrected: Option<u64>,
    /// One-minute load average per online core (CPU devices).
    pub load_per_core: Option<f64>,
    /// NVIDIA Xid codes reported since the previous reading, in order (each is journalled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xids_new: Vec<u64>,
    /// Every distinct Xid code seen since the executor started: a fatal one keeps the device
    /// cordoned (a reset is needed, and NVML does not say when one happened).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xids_seen: Vec<u64>,
    /// Why nothing could be read (the device vanished, the driver failed).
    pub error: Option<String>,
}

pub trait DeviceBackend: Send + Sync {
    /// `cpu`, `nvidia`, ...
    fn name(&self) -> &'static str;
    /// The devices now present.
    fn discover(&self) -> Result<Vec<Discovered>, String>;
    /// Environment and affinity for a process given these devices (all of this backend's).
    fn bind(&self, devices: &[&Discovered]) -> Binding;
    /// One reading per device, in the order given.
    fn health(&self, devices: &[&Discovered]) -> Vec<Reading>;
    /// The nodes other than this host its devices are on. Default: none.
    fn nodes(&self) -> Vec<NodeInfo> {
        Vec::new()
    }
}

/// Why a reading breaks the thresholds, or `None` when it is within them.
pub fn breach(reading: &Reading, t: &crate::config::HealthConfig) -> Option<String> {
    if let Some(fatal) = reading.xids_seen.iter().map(|&x| nvidia::xid_verdict(x, &t.fatal_xids)).find(|v| v.cordon) {
        return Some(fatal.message);
    }
    if let Some(e) = &reading.error {
        return Some(format!("no reading: {e}"));
    }
    if let (Some(max), Some(v)) = (t.max_mem_used_fraction, reading.mem_used_fraction) {
        if v > max {
            return Some(format!("memory used {v:.3} > max_mem_used_fraction {max}"));
        }
    }
    if let (Some(max), Some(v)) = (t.max_temp_c, reading.temp_c) {
        if v > max {
            return Some(format!("temperature {v} C > max_temp_c {max}"));
        }
    }
    if let (Some(max), Some(v)) = (t.max_ecc_uncorrected, reading.ecc_uncorrected) {
        if v > max {
            return Some(format!("uncorrected ECC errors {v} > max_ecc_uncorrected {max}"));
        }
    }
    if let (Some(max), Some(v)) = (t.max_load_per_core, reading.load_per_core) {
        if v > max {
            return Some(format!("load per core {v:.2} > max_load_per_core {max}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HealthConfig;

    #[test]
    fn a_fatal_xid_seen_cordons_until_restart_and_others_do_not() {
        let t = HealthConfig::default();
        let app_fault = Reading { xids_new: vec![13], xids_seen: vec![13], ..Reading::default() };
        assert_eq!(breach(&app_fault, &t), None);
        let fell_off = Reading { xids_new: vec![79], xids_seen: vec![13, 79], ..Reading::default() };
        let why = breach(&fell_off, &t).expect("Xid 79 cordons");
        assert!(why.contains("Xid 79") && why.contains("fallen off the bus"), "{why}");
        // Later readings bring no new Xid but still carry the one seen: still cordoned.
        let later = Reading { xids_new: vec![], xids_seen: vec![13, 79], temp_c: Some(40.0), ..Reading::default() };
        assert_eq!(breach(&later, &t), Some(why));
        let lenient = HealthConfig { fatal_xids: vec![], ..HealthConfig::default() };
        assert_eq!(breach(&later, &lenient), None);
    }
}
