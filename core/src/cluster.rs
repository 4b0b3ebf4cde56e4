//! Nodes, devices and what is free on them, with the indexes placement searches.
//!
//! Placement asks two questions thousands of times per simulated second: "the first node with
//! at least k free devices of model m" and "the node with the fewest free devices that still
//! has k". Both are answered from buckets: for every model (and for "any model") a sorted set
//! of nodes per count of whole free devices. A node's entry is recomputed whenever anything on
//! it changes, which touches a handful of devices, so no query ever scans the whole cluster
//! unless the request itself needs it (fractional shares, CPU-only jobs).

use crate::catalogue::{Catalogue, ModelSet, MAX_MODELS};
use crate::ids::{DeviceId, ModelId, NodeId};
use crate::job::{JobSpec, WHOLE_DEVICE_MILLI};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    /// One entry per device on the node.
    pub devices: Vec<ModelId>,
    pub cpu_milli: u32,
    pub mem_mib: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceState {
    pub model: ModelId,
    pub node: NodeId,
    pub free_milli: u16,
    pub healthy: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeState {
    pub name: String,
    pub first_device: u32,
    pub device_count: u32,
    pub cpu_milli_total: u32,
    pub cpu_milli_free: u32,
    pub mem_mib_total: u64,
    pub mem_mib_free: u64,
    pub up: bool,
    /// Whole free devices per model present on the node (healthy, node up).
    whole_free: Vec<(ModelId, u16)>,
    whole_free_any: u16,
}

impl NodeState {
    pub fn devices(&self) -> impl Iterator<Item = DeviceId> {
        (self.first_device..self.first_device + self.device_count).map(DeviceId)
    }
}

/// A share of one device given to a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceShare {
    pub device: DeviceId,
    pub milli: u16,
}

/// CPU and memory taken on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeShare {
    pub node: NodeId,
    pub cpu_milli: u32,
    pub mem_mib: u64,
}

/// Everything one job holds: devices (all at once, a gang) and CPU/memory per node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub devices: Vec<DeviceShare>,
    pub nodes: Vec<NodeShare>,
}

impl Allocation {
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.iter().map(|n| n.node)
    }
}

/// The distinct models of a node's devices, in order of first appearance.
fn models_in_order(devices: &[ModelId]) -> Vec<ModelId> {
    let mut models: Vec<ModelId> = Vec::new();
    for &m in devices {
        if !models.contains(&m) {
            models.push(m);
        }
    }
    models
}

/// Index key: a model, or `ANY_KEY` for "any model".
const ANY_KEY: usize = MAX_MODELS;

/// Which devices a request can use, as an index key plus the exact set to verify.
#[derive(Clone, Copy, Debug)]
pub struct ModelKey {
    key: usize,
    set: ModelSet,
}

impl ModelKey {
    pub fn for_set(set: ModelSet) -> ModelKey {
        match set.single() {
            Some(m) => ModelKey { key: m.index(), set },
            None => ModelKey { key: ANY_KEY, set },
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClusterState {
    catalogue: Catalogue,
    nodes: Vec<NodeState>,
    devices: Vec<DeviceState>,
    /// `buckets[key][f]`: nodes with exactly `f` whole free devices of `key` (f >= 1).
    buckets: Vec<Vec<NodeSet>>,
    /// Whole free devices per key over the cluster.
    free_total: Vec<u32>,
    /// All devices per key, up or down: what the cluster could ever offer.
    capacity_total: Vec<u32>,
    max_cpu_milli: u32,
    max_mem_mib: u64,
    /// Most devices of a key on any one node (up or down): the largest gang one node could
    /// ever host, so a locality wait is never spent on a gang no node can hold.
    max_node_devices: Vec<u32>,
}

impl ClusterState {
    pub fn new(catalogue: Catalogue, nodes: impl IntoIterator<Item = NodeSpec>) -> ClusterState {
        let mut state = ClusterState {
            catalogue,
            nodes: Vec::new(),
            devices: Vec::new(),
            buckets: vec![Vec::new(); MAX_MODELS + 1],
            free_total: vec![0; MAX_MODELS + 1],
            capacity_total: vec![0; MAX_MODELS + 1],
            max_cpu_milli: 0,
            max_mem_mib: 0,
            max_node_devices: vec![0; MAX_MODELS + 1],
        };
        for spec in nodes {
            state.add_node(spec);
        }
        state
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn add_node(&mut self, spec: NodeSpec) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        let first_device = self.devices.len() as u32;
        for &model in &spec.devices {
            self.devices.push(DeviceState { model, node: id, free_milli: WHOLE_DEVICE_MILLI, healthy: true });
            self.capacity_total[model.index()] += 1;
            self.capacity_total[ANY_KEY] += 1;
        }
        for m in models_in_order(&spec.devices) {
            let n = spec.devices.iter().filter(|&&d| d == m).count() as u32;
            self.max_node_devices[m.index()] = self.max_node_devices[m.index()].max(n);
        }
        self.max_node_devices[ANY_KEY] = self.max_node_devices[ANY_KEY].max(spec.devices.len() as u32);
        self.max_cpu_milli = self.max_cpu_milli.max(spec.cpu_milli);
        self.max_mem_mib = self.max_mem_mib.max(spec.mem_mib);
        self.nodes.push(NodeState {
            name: spec.name.clone(),
            first_device,
            device_count: spec.devices.len() as u32,
            cpu_milli_total: spec.cpu_milli,
            cpu_milli_free: spec.cpu_milli,
            mem_mib_total: spec.mem_mib,
            mem_mib_free: spec.mem_mib,
            up: true,
            whole_free: models_in_order(&spec.devices).into_iter().map(|m| (m, 0)).collect(),
            whole_free_any: 0,
        });
        self.reindex_node(id);
        id
    }

    pub fn nodes(&self) -> &[NodeState] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> &NodeState {
        &self.nodes[id.index()]
    }

    pub fn devices(&self) -> &[DeviceState] {
        &self.devices
    }

    pub fn device(&self, id: DeviceId) -> &DeviceState {
        &self.devices[id.index()]
    }

    pub fn set_node_up(&mut self, node: NodeId, up: bool) {
        self.nodes[node.index()].up = up;
        self.reindex_node(node);
    }

    pub fn set_device_healthy(&mut self, device: DeviceId, healthy: bool) {
        self.devices[device.index()].healthy = healthy;
        let node = self.devices[device.index()].node;
        self.reindex_node(node);
    }

    /// Takes what the allocation names. The caller guarantees it fits (placement built it).
    pub fn allocate(&mut self, alloc: &Allocation) {
        for share in &alloc.devices {
            let d = &mut self.devices[share.device.index()];
            debug_assert!(d.free_milli >= share.milli, "{} over-allocated", share.device);
            d.free_milli -= share.milli;
        }
        for share in &alloc.nodes {
            let n = &mut self.nodes[share.node.index()];
            debug_assert!(n.cpu_milli_free >= share.cpu_milli && n.mem_mib_free >= share.mem_mib);
            n.cpu_milli_free -= share.cpu_milli;
            n.mem_mib_free -= share.mem_mib;
        }
        for share in &alloc.nodes {
            self.reindex_node(share.node);
        }
    }

    /// Gives back exactly what `allocate` took.
    pub fn release(&mut self, alloc: &Allocation) {
        for share in &alloc.devices {
            let d = &mut self.devices[share.device.index()];
            d.free_milli += share.milli;
            debug_assert!(d.free_milli <= WHOLE_DEVICE_MILLI);
        }
        for share in &alloc.nodes {
            let n = &mut self.nodes[share.node.index()];
            n.cpu_milli_free += share.cpu_milli;
            n.mem_mib_free += share.mem_mib;
        }
        for share in &alloc.nodes {
            self.reindex_node(share.node);
        }
    }

    fn device_is_whole_free(&self, d: &DeviceState) -> bool {
        d.healthy && d.free_milli == WHOLE_DEVICE_MILLI && self.nodes[d.node.index()].up
    }

    /// Recomputes a node's whole free devices per model and moves it between buckets. The
    /// node's model slots were fixed when it was added, so this allocates nothing.
    fn reindex_node(&mut self, node: NodeId) {
        let n = &self.nodes[node.index()];
        let devices = &self.devices[n.first_device as usize..(n.first_device + n.device_count) as usize];
        let up = n.up;
        let mut any = 0;
        for slot in 0..self.nodes[node.index()].whole_free.len() {
            let model = self.nodes[node.index()].whole_free[slot].0;
            let free = devices
                .iter()
                .filter(|d| d.model == model && up && d.healthy && d.free_milli == WHOLE_DEVICE_MILLI)
                .count() as u16;
            let old = std::mem::replace(&mut self.nodes[node.index()].whole_free[slot].1, free);
            any += free;
            move_bucket(&mut self.buckets[model.index()], &mut self.free_total[model.index()], node, old, free);
        }
        let old_any = std::mem::replace(&mut self.nodes[node.index()].whole_free_any, any);
        move_bucket(&mut self.buckets[ANY_KEY], &mut self.free_total[ANY_KEY], node, old_any, any);
    }

    /// Whole free devices usable by `key` on a node.
    pub fn whole_free_on(&self, node: NodeId, key: ModelKey) -> u32 {
        let n = &self.nodes[node.index()];
        if key.set.is_any() {
            return n.whole_free_any as u32;
        }
        n.whole_free.iter().filter(|(m, _)| key.set.allows(*m)).map(|&(_, c)| c as u32).sum()
    }

    /// Whole free devices usable by `key` over the cluster.
    pub fn whole_free_total(&self, key: ModelKey) -> u32 {
        if key.key != ANY_KEY || key.set.is_any() {
            return self.free_total[key.key];
        }
        key.set.iter().map(|m| self.free_total[m.index()]).sum()
    }

    /// Devices of `key` the cluster has at all, up or down.
    pub fn capacity_total(&self, key: ModelKey) -> u32 {
        if key.key != ANY_KEY || key.set.is_any() {
            return self.capacity_total[key.key];
        }
        key.set.iter().map(|m| self.capacity_total[m.index()]).sum()
    }

    /// Most devices usable by `key` on any one node, up or down (for a set of several models,
    /// an upper bound: the most devices of any model on one node). O(1).
    pub fn max_node_devices(&self, key: ModelKey) -> u32 {
        self.max_node_devices[key.key]
    }

    /// The states of a node's devices, in device order.
    pub fn node_devices(&self, node: NodeId) -> &[DeviceState] {
        let n = &self.nodes[node.index()];
        &self.devices[n.first_device as usize..(n.first_device + n.device_count) as usize]
    }

    /// Whether a device is whole and free (healthy, its node up).
    pub fn is_whole_free(&self, device: DeviceId) -> bool {
        self.device_is_whole_free(&self.devices[device.index()])
    }

    pub fn max_node_cpu_milli(&self) -> u32 {
        self.max_cpu_milli
    }

    pub fn max_node_mem_mib(&self) -> u64 {
        self.max_mem_mib
    }

    /// Nodes with at least `min_free` whole free devices of the index key, in node order.
    /// For a multi-model set these are candidates: check `whole_free_on` for the exact count.
    pub fn nodes_in_order(&self, key: ModelKey, min_free: u32) -> impl Iterator<Item = NodeId> + '_ {
        let buckets = self.buckets[key.key].get(min_free.max(1) as usize..).unwrap_or(&[]);
        let words = buckets.iter().map(|b| b.words.len()).max().unwrap_or(0);
        // A cursor over node ids; each step ORs the buckets' words from the cursor's on.
        let mut cursor = 0usize;
        std::iter::from_fn(move || {
            let mut w = cursor / 64;
            let mut mask = !0u64 << (cursor % 64);
            while w < words {
                let bits = buckets.iter().fold(0u64, |acc, b| acc | b.words.get(w).copied().unwrap_or(0)) & mask;
                if bits != 0 {
                    let next = w * 64 + bits.trailing_zeros() as usize;
                    cursor = next + 1;
                    return Some(NodeId(next as u32));
                }
                w += 1;
                mask = !0;
            }
            None
        })
    }

    /// Nodes with at least `min_free` whole free devices of the key, fewest free first
    /// (ties in node order), or most free first when `most_first`.
    pub fn nodes_by_free(&self, key: ModelKey, min_free: u32, most_first: bool) -> Box<dyn Iterator<Item = NodeId> + '_> {
        let buckets = &self.buckets[key.key];
        let start = (min_free.max(1) as usize).min(buckets.len());
        let range = buckets[start..].iter();
        if most_first {
            Box::new(range.rev().flat_map(|b| b.iter().map(NodeId)))
        } else {
            Box::new(range.flat_map(|b| b.iter().map(NodeId)))
        }
    }

    /// CPU and memory a job needs on a node that hosts `k` of its devices. Per-device amounts
    /// are rounded up, so a split gang may hold a few milli-cores more than it asked for.
    pub fn node_demand(job: &JobSpec, k: u32) -> (u32, u64) {
        let count = job.devices.count;
        if count == 0 {
            return (job.cpu_milli, job.mem_mib);
        }
        (job.cpu_milli.div_ceil(count) * k, job.mem_mib.div_ceil(count as u64) * k as u64)
    }

    /// How many of the job's devices a node could host now, limited by devices, CPU and memory.
    pub fn hostable_on(&self, node: NodeId, job: &JobSpec, key: ModelKey) -> (u32, Limit) {
        let n = &self.nodes[node.index()];
        let by_devices = self.whole_free_on(node, key);
        let (cpu1, mem1) = Self::node_demand(job, 1);
        let by_cpu = if cpu1 == 0 { u32::MAX } else { n.cpu_milli_free / cpu1 };
        let by_mem = if mem1 == 0 { u32::MAX } else { (n.mem_mib_free / mem1).min(u32::MAX as u64) as u32 };
        let k = by_devices.min(by_cpu).min(by_mem);
        let limit = if k == by_devices {
            Limit::Devices
        } else if k == by_cpu {
            Limit::Cpu
        } else {
            Limit::Memory
        };
        (k, limit)
    }

    /// The lowest-numbered `k` whole free devices of the key on a node, with the CPU and memory
    /// for them, appended to `alloc`.
    pub fn take_on_node(&self, node: NodeId, job: &JobSpec, key: ModelKey, k: u32, alloc: &mut Allocation) {
        let n = &self.nodes[node.index()];
        let mut taken = 0;
        for id in n.devices() {
            if taken == k {
                break;
            }
            let d = &self.devices[id.index()];
            if key.set.allows(d.model) && self.device_is_whole_free(d) {
                alloc.devices.push(DeviceShare { device: id, milli: WHOLE_DEVICE_MILLI });
                taken += 1;
            }
        }
        debug_assert_eq!(taken, k);
        let (cpu_milli, mem_mib) = Self::node_demand(job, k);
        alloc.nodes.push(NodeShare { node, cpu_milli, mem_mib });
    }

    /// These whole free devices of one node (the caller chose them: whole, free, allowed), with
    /// the CPU and memory for them, appended to `alloc`.
    pub fn take_devices_on_node(&self, node: NodeId, job: &JobSpec, devices: &[DeviceId], alloc: &mut Allocation) {
        for &device in devices {
            debug_assert!(self.is_whole_free(device) && self.devices[device.index()].node == node);
            alloc.devices.push(DeviceShare { device, milli: WHOLE_DEVICE_MILLI });
        }
        let (cpu_milli, mem_mib) = Self::node_demand(job, devices.len() as u32);
        alloc.nodes.push(NodeShare { node, cpu_milli, mem_mib });
    }

    /// Whether a node (up) has the CPU and memory for a CPU-only job or a fractional share.
    pub fn node_has_cpu_mem(&self, node: NodeId, cpu_milli: u32, mem_mib: u64) -> bool {
        let n = &self.nodes[node.index()];
        n.up && n.cpu_milli_free >= cpu_milli && n.mem_mib_free >= mem_mib
    }

    /// Devices with at least `milli` free (healthy, node up) of an allowed model.
    pub fn devices_with_share(&self, set: ModelSet, milli: u16) -> impl Iterator<Item = (DeviceId, &DeviceState)> + '_ {
        self.devices.iter().enumerate().filter_map(move |(i, d)| {
            (d.healthy && d.free_milli >= milli && set.allows(d.model) && self.nodes[d.node.index()].up)
                .then_some((DeviceId(i as u32), d))
        })
    }
}

/// A set of node ids as a bitset: membership changes are O(1), and a query for the first node
/// at or after an id ORs a word of each bucket rather than searching a tree per bucket.
#[derive(Clone, Debug, Default)]
struct NodeSet {
    words: Vec<u64>,
}

impl NodeSet {
    fn insert(&mut self, node: u32) {
        let w = node as usize / 64;
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << (node % 64);
    }

    fn remove(&mut self, node: u32) {
        if let Some(word) = self.words.get_mut(node as usize / 64) {
            *word &= !(1 << (node % 64));
        }
    }

    /// Members in ascending order.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    (w * 64) as u32 + b
                })
            })
        })
    }
}

fn move_bucket(buckets: &mut Vec<NodeSet>, total: &mut u32, node: NodeId, old: u16, new: u16) {
    if old == new {
        return;
    }
    if old > 0 {
        buckets[old as usize].remove(node.0);
    }
    if new > 0 {
        if buckets.len() <= new as usize {
            buckets.resize_with(new as usize + 1, NodeSet::default);
        }
        buckets[new as usize].insert(node.0);
    }
    *total = *total + new as u32 - old as u32;
}

/// What stopped a node from hosting more of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Devices,
    Cpu,
    Memory,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(free_per_node: &[u32]) -> ClusterState {
        let cat = Catalogue::built_in();
        let v100 = cat.lookup("V100-32GB").unwrap();
        let nodes = free_per_node.iter().enumerate().map(|(i, &n)| NodeSpec {
            name: format!("n{i}"),
            devices: vec![v100; n as usize],
            cpu_milli: 64_000,
            mem_mib: 1 << 20,
        });
        ClusterState::new(cat, nodes)
    }

    #[test]
    fn first_fit_order_merges_buckets_by_node() {
        let c = cluster(&[2, 8, 4, 1, 8]);
        let key = ModelKey::for_set(ModelSet::ANY);
        let order: Vec<u32> = c.nodes_in_order(key, 2).map(|n| n.0).collect();
        assert_eq!(order, vec![0, 1, 2, 4]);
        let best: Vec<u32> = c.nodes_by_free(key, 3, false).map(|n| n.0).collect();
        assert_eq!(best, vec![2, 1, 4]);
        let most: Vec<u32> = c.nodes_by_free(key, 1, true).map(|n| n.0).collect();
        assert_eq!(most, vec![1, 4, 2, 0, 3]);
        assert_eq!(c.whole_free_total(key), 23);
    }

    #[test]
    fn node_orders_hold_across_bitset_words() {
        // 200 nodes (four words) of 1 to 8 devices; some taken, so nodes change buckets.
        let free: Vec<u32> = (0..200u32).map(|i| 1 + (i * 7 + i / 13) % 8).collect();
        let mut c = cluster(&free);
        let key = ModelKey::for_set(ModelSet::ANY);
        let mut left = free.clone();
        for node in [3u32, 64, 65, 127, 128, 199] {
            let mut alloc = Allocation::default();
            c.take_on_node(NodeId(node), &JobSpec::simple(1, 1), key, 1, &mut alloc);
            c.allocate(&alloc);
            left[node as usize] -= 1;
        }
        for k in 1..=8 {
            let expected: Vec<u32> = (0..200).filter(|&i| left[i as usize] >= k).collect();
            assert_eq!(c.nodes_in_order(key, k).map(|n| n.0).collect::<Vec<_>>(), expected, "first-fit order, k = {k}");
            let mut fewest: Vec<u32> = expected.clone();
            fewest.sort_by_key(|&i| (left[i as usize], i));
            assert_eq!(c.nodes_by_free(key, k, false).map(|n| n.0).collect::<Vec<_>>(), fewest, "best-fit order, k = {k}");
        }
    }

    #[test]
    fn allocate_and_release_move_nodes_between_buckets() {
        let mut c = cluster(&[4, 4]);
        let key = ModelKey::for_set(ModelSet::ANY);
        let job = JobSpec::simple(1, 3);
        let mut alloc = Allocation::default();
        c.take_on_node(NodeId(0), &job, key, 3, &mut alloc);
        c.allocate(&alloc);
        assert_eq!(c.whole_free_on(NodeId(0), key), 1);
        assert_eq!(c.nodes_in_order(key, 2).collect::<Vec<_>>(), vec![NodeId(1)]);
        c.release(&alloc);
        assert_eq!(c.whole_free_total(key), 8);
        c.set_node_up(NodeId(1), false);
        assert_eq!(c.whole_free_total(key), 4);
        c.set_device_healthy(DeviceId(0), false);
        assert_eq!(c.whole_free_total(key), 3);
        assert_eq!(c.capacity_total(key), 8);
    }
}
