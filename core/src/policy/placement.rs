//! Placements: where a job's devices, CPU and memory come from. A gang is placed whole or
//! not at all: a placement returns a complete allocation or the reason there is none.

use crate::cluster::{Allocation, ClusterState, DeviceShare, Limit, ModelKey, NodeShare};
use crate::event::{PlacedHow, WaitReason};
use crate::ids::NodeId;
use crate::job::JobSpec;

/// A complete allocation and what the placement found.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub allocation: Allocation,
    pub how: PlacedHow,
}

pub trait Placement: Send {
    fn name(&self) -> &'static str;
    fn place(&self, cluster: &ClusterState, job: &JobSpec) -> Result<Placed, WaitReason>;
}

/// The first node (in node order) that can host the whole gang; if none can, devices from
/// nodes in node order.
pub struct FirstFit;

/// The node left with the fewest free devices that can host the whole gang; if none can,
/// devices from the nodes with the most free devices first, so the gang spans few nodes.
pub struct BestFit;

impl Placement for FirstFit {
    fn name(&self) -> &'static str {
        "first-fit"
    }
    fn place(&self, cluster: &ClusterState, job: &JobSpec) -> Result<Placed, WaitReason> {
        place(cluster, job, Fit::First)
    }
}

impl Placement for BestFit {
    fn name(&self) -> &'static str {
        "best-fit"
    }
    fn place(&self, cluster: &ClusterState, job: &JobSpec) -> Result<Placed, WaitReason> {
        place(cluster, job, Fit::Best)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    First,
    Best,
}


fn place(cluster: &ClusterState, job: &JobSpec, fit: Fit) -> Result<Placed, WaitReason> {
    if job.devices.count == 0 {
        return place_cpu_only(cluster, job, fit);
    }
    if job.devices.is_fractional() {
        return place_share(cluster, job, fit);
    }
    let key = ModelKey::for_set(job.devices.models);
    let needed = job.devices.count;
    let free = cluster.whole_free_total(key);
    if free < needed {
        return Err(WaitReason::Devices { needed, free });
    }
    // One node for the whole gang, if any has room.
    let candidates: Box<dyn Iterator<Item = NodeId>> = match fit {
        Fit::First => Box::new(cluster.nodes_in_order(key, needed)),
        Fit::Best => cluster.nodes_by_free(key, needed, false),
    };
    let mut limit = Limit::Devices;
    for node in candidates {
        let (hostable, node_limit) = cluster.hostable_on(node, job, key);
        if hostable >= needed {
            let mut allocation = Allocation::default();
            cluster.take_on_node(node, job, key, needed, &mut allocation);
            let free_after = cluster.whole_free_on(node, key) - needed;
            return Ok(Placed { allocation, how: PlacedHow::OneNode { node, free_after } });
        }
        if node_limit != Limit::Devices {
            limit = node_limit;
        }
    }
    // No single node: span nodes.
    let spanning: Box<dyn Iterator<Item = NodeId>> = match fit {
        Fit::First => Box::new(cluster.nodes_in_order(key, 1)),
        Fit::Best => cluster.nodes_by_free(key, 1, true),
    };
    let mut allocation = Allocation::default();
    let mut remaining = needed;
    for node in spanning {
        let (hostable, node_limit) = cluster.hostable_on(node, job, key);
        if node_limit != Limit::Devices {
            limit = node_limit;
        }
        let k = hostable.min(remaining);
        if k == 0 {
            continue;
        }
        cluster.take_on_node(node, job, key, k, &mut allocation);
        remaining -= k;
        if remaining == 0 {
            let nodes = allocation.nodes.len() as u32;
            return Ok(Placed { allocation, how: PlacedHow::Spread { nodes } });
        }
    }
    Err(WaitReason::NoNodeFits { needed, free, limit })
}

fn place_share(cluster: &ClusterState, job: &JobSpec, fit: Fit) -> Result<Placed, WaitReason> {
    let share = job.devices.share_milli;
    let (cpu_milli, mem_mib) = (job.cpu_milli, job.mem_mib);
    let mut devices_with_share = 0u32;
    let mut chosen = None;
    for (id, d) in cluster.devices_with_share(job.devices.models, share) {
        devices_with_share += 1;
        if !cluster.node_has_cpu_mem(d.node, cpu_milli, mem_mib) {
            continue;
        }
        match (fit, chosen) {
            (Fit::First, None) => {
                chosen = Some((id, d.node, d.free_milli));
                break;
            }
            (Fit::Best, Some((_, _, best_free))) if d.free_milli >= best_free => {}
            (Fit::Best, _) => chosen = Some((id, d.node, d.free_milli)),
            (Fit::First, Some(_)) => unreachable!("first fit stops at its first choice"),
        }
    }
    let Some((device, node, free_milli)) = chosen else {
        return Err(if devices_with_share == 0 {
            WaitReason::Devices { needed: 1, free: 0 }
        } else {
            WaitReason::NoNodeFits { needed: 1, free: devices_with_share, limit: Limit::Cpu }
        });
    };
    let allocation = Allocation {
        devices: vec![DeviceShare { device, milli: share }],
        nodes: vec![NodeShare { node, cpu_milli, mem_mib }],
    };
    Ok(Placed { allocation, how: PlacedHow::Share { device, free_milli_before: free_milli } })
}

fn place_cpu_only(cluster: &ClusterState, job: &JobSpec, fit: Fit) -> Result<Placed, WaitReason> {
    let mut chosen: Option<NodeId> = None;
    for (i, n) in cluster.nodes().iter().enumerate() {
        let node = NodeId(i as u32);
        if !cluster.node_has_cpu_mem(node, job.cpu_milli, job.mem_mib) {
            continue;
        }
        match fit {
            Fit::First => {
                chosen = Some(node);
                break;
            }
            Fit::Best => {
                if chosen.is_none_or(|c| n.cpu_milli_free < cluster.node(c).cpu_milli_free) {
                    chosen = Some(node);
                }
            }
        }
    }
    let Some(node) = chosen else {
        let limit = if cluster.nodes().iter().any(|n| n.up && n.cpu_milli_free >= job.cpu_milli) { Limit::Memory } else { Limit::Cpu };
        return Err(WaitReason::NoNodeFits { needed: 0, free: 0, limit });
    };
    let allocation = Allocation { devices: Vec::new(), nodes: vec![NodeShare { node, cpu_milli: job.cpu_milli, mem_mib: job.mem_mib }] };
    Ok(Placed { allocation, how: PlacedHow::CpuOnly { node } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Catalogue, ModelSet};
    use crate::cluster::NodeSpec;

    fn cluster(gpus_per_node: &[usize], cpu_milli: u32) -> ClusterState {
        let cat = Catalogue::built_in();
        let a100 = cat.lookup("A100-80GB").unwrap();
        let nodes = gpus_per_node
            .iter()
            .enumerate()
            .map(|(i, &n)| NodeSpec { name: format!("n{i}"), devices: vec![a100; n], cpu_milli, mem_mib: 100_000 });
        ClusterState::new(cat, nodes)
    }

    fn nodes_of(p: &Placed) -> Vec<u32> {
        p.allocation.nodes.iter().map(|n| n.node.0).collect()
    }

    #[test]
    fn first_fit_takes_the_first_node_best_fit_the_tightest() {
        let c = cluster(&[8, 2, 4], 64_000);
        let job = JobSpec::simple(1, 2);
        assert_eq!(nodes_of(&FirstFit.place(&c, &job).unwrap()), vec![0]);
        assert_eq!(nodes_of(&BestFit.place(&c, &job).unwrap()), vec![1]);
        let job = JobSpec::simple(2, 3);
        assert_eq!(nodes_of(&BestFit.place(&c, &job).unwrap()), vec![2]);
    }

    #[test]
    fn a_gang_larger_than_any_node_spans_nodes() {
        let c = cluster(&[4, 4, 4], 64_000);
        let job = JobSpec::simple(1, 10);
        let placed = FirstFit.place(&c, &job).unwrap();
        assert_eq!(placed.allocation.devices.len(), 10);
        assert_eq!(nodes_of(&placed), vec![0, 1, 2]);
        let job = JobSpec::simple(2, 13);
        assert_eq!(FirstFit.place(&c, &job).unwrap_err(), WaitReason::Devices { needed: 13, free: 12 });
    }

    #[test]
    fn cpu_limits_placement_and_is_named_as_the_reason() {
        let c = cluster(&[4, 4], 8_000);
        let mut job = JobSpec::simple(1, 4);
        job.cpu_milli = 40_000; // 10 cores per device: a node's 8 cores host none
        assert_eq!(
            BestFit.place(&c, &job).unwrap_err(),
            WaitReason::NoNodeFits { needed: 4, free: 8, limit: Limit::Cpu }
        );
    }

    #[test]
    fn model_constraints_are_honoured() {
        let cat = Catalogue::built_in();
        let (t4, h100) = (cat.lookup("T4").unwrap(), cat.lookup("H100").unwrap());
        let nodes = vec![
            NodeSpec { name: "t4".into(), devices: vec![t4; 4], cpu_milli: 1000, mem_mib: 1000 },
            NodeSpec { name: "h100".into(), devices: vec![h100; 4], cpu_milli: 1000, mem_mib: 1000 },
        ];
        let c = ClusterState::new(cat, nodes);
        let mut job = JobSpec::simple(1, 2);
        job.devices.models = ModelSet::only(h100);
        assert_eq!(nodes_of(&FirstFit.place(&c, &job).unwrap()), vec![1]);
        job.devices.models = ModelSet::only(h100).with(t4);
        assert_eq!(nodes_of(&FirstFit.place(&c, &job).unwrap()), vec![0]);
    }

    #[test]
    fn fractional_shares_pack_onto_the_fullest_device_under_best_fit() {
        let mut c = cluster(&[2], 64_000);
        let mut small = JobSpec::simple(1, 1);
        small.devices.share_milli = 300;
        let first = FirstFit.place(&c, &small).unwrap();
        c.allocate(&first.allocation);
        let mut other = JobSpec::simple(2, 1);
        other.devices.share_milli = 500;
        let placed = BestFit.place(&c, &other).unwrap();
        assert_eq!(placed.allocation.devices[0].device, first.allocation.devices[0].device);
        other.devices.share_milli = 800;
        let placed = BestFit.place(&c, &other).unwrap();
        assert_ne!(placed.allocation.devices[0].device, first.allocation.devices[0].device);
    }
}
