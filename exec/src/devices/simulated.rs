//! The `simulated` backend: nodes and devices that exist only in the configuration
//! (`[[daemon.simulated.nodes]]`). The scheduler places jobs on them as on real devices; a job
//! is told its devices in `TESSERA_DEVICES` and is bound to nothing. It lets an operator try a
//! policy on a fleet this machine does not have, and it is how `tessera conform` runs the
//! executor on a scenario's cluster.

use super::{Binding, DeviceBackend, Discovered, ModelChoice, NodeInfo, Reading};
use crate::config::{DaemonConfig, SimulatedNode};
use crate::error::ExecError;

pub struct SimulatedBackend {
    nodes: Vec<SimulatedNode>,
}

/// The registry's constructor: on when the configuration lists simulated nodes.
pub fn from_config(config: &DaemonConfig) -> Result<Option<Box<dyn DeviceBackend>>, ExecError> {
    Ok(config.simulated.as_ref().filter(|s| !s.nodes.is_empty()).map(|s| Box::new(SimulatedBackend { nodes: s.nodes.clone() }) as Box<dyn DeviceBackend>))
}

impl DeviceBackend for SimulatedBackend {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn discover(&self) -> Result<Vec<Discovered>, String> {
        let mut out = Vec::new();
        for node in &self.nodes {
            let mut i = 0;
            for group in &node.devices {
                for _ in 0..group.count {
                    out.push(Discovered {
                        name: format!("{}/dev{i}", node.name),
                        uuid: None,
                        model: ModelChoice::Known(group.model.clone()),
                        cores: Vec::new(),
                        node: Some(node.name.clone()),
                    });
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    fn bind(&self, _devices: &[&Discovered]) -> Binding {
        Binding::default()
    }

    fn health(&self, devices: &[&Discovered]) -> Vec<Reading> {
        vec![Reading::default(); devices.len()]
    }

    fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.iter().map(|n| NodeInfo { name: n.name.clone(), cpu_milli: n.cpu_milli, mem_mib: n.mem_mib }).collect()
    }
}
