//! Cluster builders the core's tests share: nodes `n0`, `n1`, ... of the built-in catalogue's
//! models, every node of one cluster with the same CPU and memory.
#![allow(dead_code)] // each test file uses some of these

use tessera_core::{Catalogue, ClusterState, NodeSpec};

/// The CPU and memory of each node of a cluster built here.
#[derive(Clone, Copy, Debug)]
pub struct NodeSize {
    pub cpu_milli: u32,
    pub mem_mib: u64,
}

/// One node per entry, `(catalogue model name, device count)`, named `n0`, `n1`, ... in order.
pub fn cluster_of(nodes: &[(&str, usize)], size: NodeSize) -> ClusterState {
    let cat = Catalogue::built_in();
    let specs: Vec<NodeSpec> = nodes
        .iter()
        .enumerate()
        .map(|(i, &(model, devices))| {
            let m = cat.lookup(model).unwrap_or_else(|| panic!("`{model}` is not in the built-in catalogue"));
            NodeSpec { name: format!("n{i}"), devices: vec![m; devices], cpu_milli: size.cpu_milli, mem_mib: size.mem_mib }
        })
        .collect();
    ClusterState::new(cat, specs)
}

/// Every node of `model`, one per entry of `devices_per_node`, named `n0`, `n1`, ... in order.
pub fn uniform_cluster(model: &str, devices_per_node: &[usize], size: NodeSize) -> ClusterState {
    let nodes: Vec<(&str, usize)> = devices_per_node.iter().map(|&n| (model, n)).collect();
    cluster_of(&nodes, size)
}
