//! Placements: where a job's devices, CPU and memory come from. A gang is placed whole or
//! not at all: a placement returns a complete allocation or the reason there is none.
//!
//! The registry's placements, and what one placement of a whole-device gang costs (n nodes,
//! d devices per node, b buckets of free counts, T observed task types, M device models; a
//! bucket is a bitset of nodes, so a query ORs b words per 64 nodes scanned, at most n/64):
//!
//! | name        | chooses                                                              | cost                       |
//! |-------------|----------------------------------------------------------------------|----------------------------|
//! | `first-fit` | first node in node order that holds the gang                         | O(b n/64)                  |
//! | `best-fit`  | node left with the fewest free devices                               | O(b n/64)                  |
//! | `pack`      | fewest nodes; tightest node for the (remainder of the) gang          | O(b n/64) per node used    |
//! | `spread`    | node with the most free devices                                      | O(b n/64)                  |
//! | `topology`  | one node (one NVLink island), else wait `locality_wait_s`, then span | O(b n/64), O(c·d) islands  |
//! | `fgd`       | least growth of expected fragmentation                               | O(c·d·T), c hosting nodes  |
//! | `hetero`    | model with the highest relative speed, best-fit within it            | O(M log M + M · b n/64)    |
//!
//! The rules that score (all but `first-fit`) also keep their best `ALTERNATIVES_KEPT`
//! runners-up for the launch's reason, at the cost of scanning a few more candidates.
//! Fractional shares scan the devices (O(n·d)) under every placement, as before; `fgd` adds
//! O(d · T) per candidate device. CPU-only jobs scan the nodes. Every choice is deterministic:
//! ties go to the lower node or device id after the documented tie-breaks.

use crate::catalogue::{ModelSet, MAX_MODELS};
use crate::cluster::{Allocation, ClusterState, DeviceShare, Limit, ModelKey, NodeShare};
use crate::event::{Alternative, PlacedHow, WaitReason};
use crate::ids::{ClassId, DeviceId, ModelId, NodeId};
use crate::job::{JobSpec, WHOLE_DEVICE_MILLI};
use crate::time::Time;
use std::sync::Arc;

/// A complete allocation and what the placement found.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub allocation: Allocation,
    pub how: PlacedHow,
    /// The runners-up, best first (see `PlacementReason::alternatives`).
    pub alternatives: Vec<Alternative>,
}

impl Placed {
    fn new(allocation: Allocation, how: PlacedHow) -> Placed {
        Placed { allocation, how, alternatives: Vec::new() }
    }

    fn with(mut self, alternatives: Vec<Alternative>) -> Placed {
        self.alternatives = alternatives;
        self
    }
}

/// How many runners-up a launch's explanation keeps.
pub const ALTERNATIVES_KEPT: usize = 3;

/// The nodes of `order` after `chosen` that also host the whole gang, up to
/// `ALTERNATIVES_KEPT`, each with its score: the runners-up of a rule that ranks nodes by
/// `order`. Costs what the rule's own scan did, again, plus a few nodes.
fn runners_up(
    cluster: &ClusterState,
    job: &JobSpec,
    key: ModelKey,
    order: impl Iterator<Item = NodeId>,
    chosen: NodeId,
    score: impl Fn(NodeId) -> f64,
) -> Vec<Alternative> {
    let needed = job.devices.count;
    order
        .filter(|&n| n != chosen && cluster.hostable_on(n, job, key).0 >= needed)
        .take(ALTERNATIVES_KEPT)
        .map(|n| Alternative::node(n, score(n)))
        .collect()
}

/// The best few candidates by key (ties: the one offered first): the first is the choice,
/// the rest its runners-up.
struct Ranked<K, T> {
    items: Vec<(K, T)>,
}

impl<K: PartialOrd + Copy, T> Ranked<K, T> {
    fn new() -> Self {
        Ranked { items: Vec::new() }
    }

    fn offer(&mut self, key: K, item: T) {
        let at = self.items.partition_point(|(k, _)| *k <= key);
        if at > ALTERNATIVES_KEPT {
            return;
        }
        self.items.insert(at, (key, item));
        self.items.truncate(ALTERNATIVES_KEPT + 1);
    }

    /// The choice, and the runners-up turned into alternatives.
    fn split(self, alternative: impl Fn(&K, &T) -> Alternative) -> Option<((K, T), Vec<Alternative>)> {
        let mut items = self.items.into_iter();
        let best = items.next()?;
        let rest = items.map(|(k, t)| alternative(&k, &t)).collect();
        Some((best, rest))
    }
}

/// What the scheduler knows about the moment of a placement that the cluster does not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlaceContext {
    /// The scheduler's clock.
    pub now: Time,
    /// How long the job has been waiting in the queue this time (since its submission or its
    /// last requeue). `topology` compares it with its locality wait.
    pub waited: Time,
}

impl PlaceContext {
    /// A job queued (submitted or requeued) at `queued_since`, placed at `now`.
    pub fn new(now: Time, queued_since: Time) -> PlaceContext {
        PlaceContext { now, waited: now.saturating_sub(queued_since) }
    }

    /// No waiting history: the job has waited for nothing yet.
    pub fn immediate(now: Time) -> PlaceContext {
        PlaceContext { now, waited: Time::ZERO }
    }
}

pub trait Placement: Send {
    fn name(&self) -> &'static str;
    fn place(&self, cluster: &ClusterState, job: &JobSpec, ctx: &PlaceContext) -> Result<Placed, WaitReason>;
    /// Called once per submitted job (not on requeues): placements that learn the workload
    /// (`fgd`'s task histogram, `hetero`'s class mix) update here. Default: nothing.
    fn observe(&mut self, _job: &JobSpec) {}
    /// The class x model speed table, for placements that use it (`hetero`). Default: ignored.
    fn set_speeds(&mut self, _speeds: Arc<SpeedTable>) {}
    /// Whether its decisions depend on the speed table (so a validation must record it).
    fn uses_speeds(&self) -> bool {
        false
    }
    /// Whether its answer for a job can change with time alone, the cluster unchanged (a
    /// locality wait running out): then a plan made earlier cannot be reused.
    fn changes_with_time(&self) -> bool {
        false
    }
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
    fn place(&self, cluster: &ClusterState, job: &JobSpec, _ctx: &PlaceContext) -> Result<Placed, WaitReason> {
        place(cluster, job, Fit::First)
    }
}

impl Placement for BestFit {
    fn name(&self) -> &'static str {
        "best-fit"
    }
    fn place(&self, cluster: &ClusterState, job: &JobSpec, _ctx: &PlaceContext) -> Result<Placed, WaitReason> {
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
            let mut allocation = Allocation { devices: Vec::with_capacity(needed as usize), nodes: Vec::with_capacity(1) };
            cluster.take_on_node(node, job, key, needed, &mut allocation);
            let free_after = cluster.whole_free_on(node, key) - needed;
            // First-fit ranks by node order, not by a score: it has no runners-up.
            let alternatives = match fit {
                Fit::First => Vec::new(),
                Fit::Best => runners_up(cluster, job, key, cluster.nodes_by_free(key, needed, false), node, |n| {
                    (cluster.whole_free_on(n, key) - needed) as f64
                }),
            };
            return Ok(Placed::new(allocation, PlacedHow::OneNode { node, free_after }).with(alternatives));
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
    let mut allocation = Allocation { devices: Vec::with_capacity(needed as usize), nodes: Vec::new() };
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
            return Ok(Placed::new(allocation, PlacedHow::Spread { nodes }));
        }
    }
    Err(WaitReason::NoNodeFits { needed, free, limit })
}

fn place_share(cluster: &ClusterState, job: &JobSpec, fit: Fit) -> Result<Placed, WaitReason> {
    if fit == Fit::Best {
        // The fullest device the share fits on (ties: the lowest id).
        return share_by(cluster, job, |_, d| d.free_milli);
    }
    let share = job.devices.share_milli;
    let (cpu_milli, mem_mib) = (job.cpu_milli, job.mem_mib);
    let mut devices_with_share = 0u32;
    for (device, d) in cluster.devices_with_share(job.devices.models, share) {
        devices_with_share += 1;
        if cluster.node_has_cpu_mem(d.node, cpu_milli, mem_mib) {
            let allocation = Allocation {
                devices: vec![DeviceShare { device, milli: share }],
                nodes: vec![NodeShare { node: d.node, cpu_milli, mem_mib }],
            };
            return Ok(Placed::new(allocation, PlacedHow::Share { device, free_milli_before: d.free_milli }));
        }
    }
    Err(share_wait(devices_with_share))
}

fn place_cpu_only(cluster: &ClusterState, job: &JobSpec, fit: Fit) -> Result<Placed, WaitReason> {
    // Best: the node with the least free CPU that holds the job (ties: the lowest id).
    let mut ranked: Ranked<u32, NodeId> = Ranked::new();
    for (i, n) in cluster.nodes().iter().enumerate() {
        let node = NodeId(i as u32);
        if !cluster.node_has_cpu_mem(node, job.cpu_milli, job.mem_mib) {
            continue;
        }
        ranked.offer(if fit == Fit::First { 0 } else { n.cpu_milli_free }, node);
        if fit == Fit::First {
            break;
        }
    }
    let Some(((_, node), alternatives)) = ranked.split(|_, &n| Alternative::node(n, cluster.node(n).cpu_milli_free as f64)) else {
        let limit = if cluster.nodes().iter().any(|n| n.up && n.cpu_milli_free >= job.cpu_milli) { Limit::Memory } else { Limit::Cpu };
        return Err(WaitReason::NoNodeFits { needed: 0, free: 0, limit });
    };
    let allocation = Allocation { devices: Vec::new(), nodes: vec![NodeShare { node, cpu_milli: job.cpu_milli, mem_mib: job.mem_mib }] };
    Ok(Placed::new(allocation, PlacedHow::CpuOnly { node }).with(alternatives))
}

// ---- shared pieces of the policies below ----------------------------------------------------

/// The whole-device checks every gang placement starts with: its index key, and a `Devices`
/// wait when the cluster has too few whole free devices of the allowed models.
fn gang_key(cluster: &ClusterState, job: &JobSpec) -> Result<(ModelKey, u32, u32), WaitReason> {
    let key = ModelKey::for_set(job.devices.models);
    let needed = job.devices.count;
    let free = cluster.whole_free_total(key);
    if free < needed {
        return Err(WaitReason::Devices { needed, free });
    }
    Ok((key, needed, free))
}

/// The first node of `candidates` that hosts `k` devices, noting what stopped the others.
fn first_hosting(
    cluster: &ClusterState,
    job: &JobSpec,
    key: ModelKey,
    k: u32,
    candidates: impl Iterator<Item = NodeId>,
    skip: &[NodeId],
    limit: &mut Limit,
) -> Option<NodeId> {
    for node in candidates {
        if skip.contains(&node) {
            continue;
        }
        let (hostable, node_limit) = cluster.hostable_on(node, job, key);
        if hostable >= k {
            return Some(node);
        }
        if node_limit != Limit::Devices {
            *limit = node_limit;
        }
    }
    None
}

/// The NVLink island of a node that holds `k` whole free allowed devices and has the fewest of
/// them (ties: the lowest island), with its first `k` such devices. Islands are runs of
/// `size` consecutive devices of the node, as the simulator's `devices_per_nvlink_island`.
/// O(devices on the node).
fn island_fit(cluster: &ClusterState, node: NodeId, set: ModelSet, k: u32, size: u32) -> Option<(u32, Vec<DeviceId>)> {
    let first = cluster.node(node).first_device;
    let devices = cluster.node_devices(node);
    let mut best: Option<(u32, u32)> = None; // (free in island, island)
    for (island, chunk) in devices.chunks(size.max(1) as usize).enumerate() {
        let free = chunk
            .iter()
            .enumerate()
            .filter(|(i, d)| {
                set.allows(d.model) && cluster.is_whole_free(DeviceId(first + (island * size as usize + i) as u32))
            })
            .count() as u32;
        if free >= k && best.is_none_or(|(b, _)| free < b) {
            best = Some((free, island as u32));
        }
    }
    let (_, island) = best?;
    let start = first + island * size;
    let end = (start + size).min(first + devices.len() as u32);
    let chosen: Vec<DeviceId> = (start..end)
        .map(DeviceId)
        .filter(|&id| set.allows(cluster.device(id).model) && cluster.is_whole_free(id))
        .take(k as usize)
        .collect();
    Some((island, chosen))
}

/// Takes `k` devices on a node, inside one NVLink island when islands are configured and one
/// holds them (returning which), else the lowest-numbered free ones.
fn take_local(
    cluster: &ClusterState,
    node: NodeId,
    job: &JobSpec,
    key: ModelKey,
    k: u32,
    island_size: Option<u32>,
    alloc: &mut Allocation,
) -> Option<u32> {
    if let Some(size) = island_size {
        if let Some((island, devices)) = island_fit(cluster, node, job.devices.models, k, size) {
            cluster.take_devices_on_node(node, job, &devices, alloc);
            return Some(island);
        }
    }
    cluster.take_on_node(node, job, key, k, alloc);
    None
}

/// A gang over the fewest nodes: while no single unused node holds the remainder, take the
/// node with the most free devices; then put the remainder on the tightest node that holds
/// it. Taking the largest first minimises the count of nodes; finishing best-fit keeps the
/// larger free nodes whole. Returns the allocation and the node that took the remainder.
fn span_fewest(
    cluster: &ClusterState,
    job: &JobSpec,
    key: ModelKey,
    island_size: Option<u32>,
    limit: &mut Limit,
) -> Option<(Allocation, NodeId, Option<u32>)> {
    let mut allocation = Allocation::default();
    let mut used: Vec<NodeId> = Vec::new();
    let mut remaining = job.devices.count;
    loop {
        let tight = cluster.nodes_by_free(key, remaining, false);
        if let Some(node) = first_hosting(cluster, job, key, remaining, tight, &used, limit) {
            let island = take_local(cluster, node, job, key, remaining, island_size, &mut allocation);
            return Some((allocation, node, island));
        }
        let most = cluster.nodes_by_free(key, 1, true);
        let mut next = None;
        for node in most {
            if used.contains(&node) {
                continue;
            }
            let (hostable, node_limit) = cluster.hostable_on(node, job, key);
            if node_limit != Limit::Devices {
                *limit = node_limit;
            }
            if hostable > 0 {
                next = Some((node, hostable.min(remaining)));
                break;
            }
        }
        let (node, k) = next?;
        cluster.take_on_node(node, job, key, k, &mut allocation);
        used.push(node);
        remaining -= k;
    }
}

/// A gang spanning nodes, most free devices first (as `best-fit` spans).
fn span_most_free(cluster: &ClusterState, job: &JobSpec, key: ModelKey, limit: &mut Limit) -> Option<Allocation> {
    let mut allocation = Allocation::default();
    let mut remaining = job.devices.count;
    for node in cluster.nodes_by_free(key, 1, true) {
        let (hostable, node_limit) = cluster.hostable_on(node, job, key);
        if node_limit != Limit::Devices {
            *limit = node_limit;
        }
        let k = hostable.min(remaining);
        if k == 0 {
            continue;
        }
        cluster.take_on_node(node, job, key, k, &mut allocation);
        remaining -= k;
        if remaining == 0 {
            return Some(allocation);
        }
    }
    None
}

/// A fractional share on the device that minimises `rank` (ties: lowest device id), on a node
/// with the CPU and memory, with the runners-up (scored by their free share). Scans the
/// devices, as every share placement does.
fn share_by<K: PartialOrd + Copy>(
    cluster: &ClusterState,
    job: &JobSpec,
    mut rank: impl FnMut(DeviceId, &crate::cluster::DeviceState) -> K,
) -> Result<Placed, WaitReason> {
    let share = job.devices.share_milli;
    let (cpu_milli, mem_mib) = (job.cpu_milli, job.mem_mib);
    let mut devices_with_share = 0u32;
    let mut ranked: Ranked<K, (DeviceId, NodeId, u16)> = Ranked::new();
    for (id, d) in cluster.devices_with_share(job.devices.models, share) {
        devices_with_share += 1;
        if !cluster.node_has_cpu_mem(d.node, cpu_milli, mem_mib) {
            continue;
        }
        ranked.offer(rank(id, d), (id, d.node, d.free_milli));
    }
    let alternative = |_: &K, &(device, node, free): &(DeviceId, NodeId, u16)| Alternative { node: Some(node), device: Some(device), model: None, score: free as f64 };
    let Some(((_, (device, node, free_milli)), alternatives)) = ranked.split(alternative) else {
        return Err(share_wait(devices_with_share));
    };
    let allocation = Allocation {
        devices: vec![DeviceShare { device, milli: share }],
        nodes: vec![NodeShare { node, cpu_milli, mem_mib }],
    };
    Ok(Placed::new(allocation, PlacedHow::Share { device, free_milli_before: free_milli }).with(alternatives))
}

fn share_wait(devices_with_share: u32) -> WaitReason {
    if devices_with_share == 0 {
        WaitReason::Devices { needed: 1, free: 0 }
    } else {
        WaitReason::NoNodeFits { needed: 1, free: devices_with_share, limit: Limit::Cpu }
    }
}

fn island_size(size: Option<u32>) -> Option<u32> {
    size.filter(|&s| s > 0)
}

// ---- pack -----------------------------------------------------------------------------------

/// `pack`: consolidate, so whole nodes (and NVLink islands) stay free for large gangs.
///
/// - A gang that one node holds goes to the node left with the fewest free devices (as
///   `best-fit`); with islands configured, to the tightest island of that node that holds it.
/// - A gang no node holds spans the fewest nodes: the nodes with the most free devices first,
///   until one node holds the remainder, which goes to the tightest such node. With free
///   {8, 4, 6} a 10-device gang takes the 8 and 2 of the 4, leaving the 6 whole.
/// - A fractional share goes to a partly used device before a whole free one (the fullest
///   that fits), and among whole free devices to the node with the fewest whole free devices.
/// - A CPU-only job goes to the node with the least free CPU that holds it.
#[derive(Clone, Debug, Default)]
pub struct Pack {
    /// Devices per NVLink island (consecutive devices of a node); `None`: no islands.
    pub island_size: Option<u32>,
}

impl Placement for Pack {
    fn name(&self) -> &'static str {
        "pack"
    }
    fn place(&self, cluster: &ClusterState, job: &JobSpec, _ctx: &PlaceContext) -> Result<Placed, WaitReason> {
        if job.devices.count == 0 {
            return place_cpu_only(cluster, job, Fit::Best);
        }
        if job.devices.is_fractional() {
            let any = ModelKey::for_set(ModelSet::ANY);
            return share_by(cluster, job, |id, d| (d.free_milli, cluster.whole_free_on(d.node, any), id));
        }
        let (key, needed, free) = gang_key(cluster, job)?;
        let mut limit = Limit::Devices;
        let Some((allocation, last, island)) = span_fewest(cluster, job, key, island_size(self.island_size), &mut limit) else {
            return Err(WaitReason::NoNodeFits { needed, free, limit });
        };
        let on_last = allocation.nodes.last().map_or(0, |_| {
            allocation.devices.iter().filter(|d| cluster.device(d.device).node == last).count() as u32
        });
        let free_after = cluster.whole_free_on(last, key) - on_last;
        let nodes = allocation.nodes.len() as u32;
        // On one node, the other nodes that would hold it, tightest first.
        let alternatives = if nodes == 1 {
            runners_up(cluster, job, key, cluster.nodes_by_free(key, needed, false), last, |n| (cluster.whole_free_on(n, key) - needed) as f64)
        } else {
            Vec::new()
        };
        Ok(Placed::new(allocation, PlacedHow::Pack { nodes, last, free_after, island }).with(alternatives))
    }
}

// ---- spread ---------------------------------------------------------------------------------

/// `spread`: the node with the most free devices that holds the gang (ties: lowest node id),
/// spreading load for thermal headroom and failure isolation. A gang no node holds spans
/// nodes most free first. A fractional share goes to the device with the most free share
/// (a whole free one first, on the node with the most whole free devices); a CPU-only job to
/// the node with the most free CPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spread;

impl Placement for Spread {
    fn name(&self) -> &'static str {
        "spread"
    }
    fn place(&self, cluster: &ClusterState, job: &JobSpec, _ctx: &PlaceContext) -> Result<Placed, WaitReason> {
        if job.devices.count == 0 {
            return place_cpu_only_most_free(cluster, job);
        }
        if job.devices.is_fractional() {
            let any = ModelKey::for_set(ModelSet::ANY);
            return share_by(cluster, job, |id, d| {
                (std::cmp::Reverse(d.free_milli), std::cmp::Reverse(cluster.whole_free_on(d.node, any)), id)
            });
        }
        let (key, needed, free) = gang_key(cluster, job)?;
        let mut limit = Limit::Devices;
        let most = cluster.nodes_by_free(key, needed, true);
        if let Some(node) = first_hosting(cluster, job, key, needed, most, &[], &mut limit) {
            let free_before = cluster.whole_free_on(node, key);
            let mut allocation = Allocation::default();
            cluster.take_on_node(node, job, key, needed, &mut allocation);
            let alternatives = runners_up(cluster, job, key, cluster.nodes_by_free(key, needed, true), node, |n| cluster.whole_free_on(n, key) as f64);
            return Ok(Placed::new(allocation, PlacedHow::MostFree { node, free_before }).with(alternatives));
        }
        match span_most_free(cluster, job, key, &mut limit) {
            Some(allocation) => {
                let nodes = allocation.nodes.len() as u32;
                Ok(Placed::new(allocation, PlacedHow::Spread { nodes }))
            }
            None => Err(WaitReason::NoNodeFits { needed, free, limit }),
        }
    }
}

fn place_cpu_only_most_free(cluster: &ClusterState, job: &JobSpec) -> Result<Placed, WaitReason> {
    let mut ranked: Ranked<std::cmp::Reverse<u32>, NodeId> = Ranked::new();
    for (i, n) in cluster.nodes().iter().enumerate() {
        let node = NodeId(i as u32);
        if cluster.node_has_cpu_mem(node, job.cpu_milli, job.mem_mib) {
            ranked.offer(std::cmp::Reverse(n.cpu_milli_free), node);
        }
    }
    match ranked.split(|_, &n| Alternative::node(n, cluster.node(n).cpu_milli_free as f64)) {
        Some(((_, node), alternatives)) => Ok(Placed::new(
            Allocation { devices: Vec::new(), nodes: vec![NodeShare { node, cpu_milli: job.cpu_milli, mem_mib: job.mem_mib }] },
            PlacedHow::CpuOnly { node },
        )
        .with(alternatives)),
        // The same reason first-fit would give.
        None => place_cpu_only(cluster, job, Fit::First),
    }
}

// ---- topology -------------------------------------------------------------------------------

/// `topology`: a multi-device gang wants all its devices in one node, and in one NVLink
/// island when islands are configured (`island_size`).
///
/// - Among nodes that hold the gang, in best-fit order, the first with an island that holds
///   it wins (the tightest such island); if none has one, the tightest node (node locality
///   is accepted at once: the wait is for node locality only). Scanning for an island visits
///   at most the nodes that hold the gang.
/// - If only a spread placement is possible now, and some node could ever hold the gang, it
///   waits (`WaitReason::Locality`) until it has waited `locality_wait` in the queue, then
///   spans nodes most free first (`SpreadAfterWait`). With the default wait of 0 it never
///   waits. Under strict queue order a waiting head holds the queue behind it: that is the
///   price of locality, and `locality_wait_s` bounds it.
/// - Fractional shares and CPU-only jobs are placed as `best-fit` places them.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    pub locality_wait: Time,
    pub island_size: Option<u32>,
}

impl Placement for Topology {
    fn name(&self) -> &'static str {
        "topology"
    }

    fn changes_with_time(&self) -> bool {
        true
    }

    fn place(&self, cluster: &ClusterState, job: &JobSpec, ctx: &PlaceContext) -> Result<Placed, WaitReason> {
        if job.devices.count == 0 || job.devices.is_fractional() {
            return place(cluster, job, Fit::Best);
        }
        let (key, needed, free) = gang_key(cluster, job)?;
        let mut limit = Limit::Devices;
        let islands = island_size(self.island_size);
        let mut fallback = None;
        for node in cluster.nodes_by_free(key, needed, false) {
            let (hostable, node_limit) = cluster.hostable_on(node, job, key);
            if hostable < needed {
                if node_limit != Limit::Devices {
                    limit = node_limit;
                }
                continue;
            }
            let island = islands.and_then(|size| island_fit(cluster, node, job.devices.models, needed, size));
            if islands.is_none() || island.is_some() {
                fallback = Some(node);
                break;
            }
            fallback.get_or_insert(node);
        }
        if let Some(node) = fallback {
            let mut allocation = Allocation::default();
            let island = take_local(cluster, node, job, key, needed, islands, &mut allocation);
            let free_after = cluster.whole_free_on(node, key) - needed;
            let alternatives = runners_up(cluster, job, key, cluster.nodes_by_free(key, needed, false), node, |n| (cluster.whole_free_on(n, key) - needed) as f64);
            return Ok(Placed::new(allocation, PlacedHow::Local { node, island, free_after }).with(alternatives));
        }
        let Some(allocation) = span_most_free(cluster, job, key, &mut limit) else {
            return Err(WaitReason::NoNodeFits { needed, free, limit });
        };
        let nodes = allocation.nodes.len() as u32;
        let waited_s = ctx.waited.as_secs_f64();
        if ctx.waited < self.locality_wait && needed <= cluster.max_node_devices(key) {
            return Err(WaitReason::Locality { waited_s, limit_s: self.locality_wait.as_secs_f64(), spread_nodes: nodes });
        }
        Ok(Placed::new(allocation, PlacedHow::SpreadAfterWait { nodes, waited_s }))
    }
}

// ---- fgd ------------------------------------------------------------------------------------

/// A task type of the target workload: what it asks of one node (its devices and CPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TaskType {
    count: u32,
    share_milli: u16,
    models: ModelSet,
    /// CPU the task needs on a node that hosts all its devices (the whole job's CPU).
    cpu_milli: u32,
}

impl TaskType {
    fn of(job: &JobSpec) -> TaskType {
        TaskType { count: job.devices.count, share_milli: job.devices.share_milli, models: job.devices.models, cpu_milli: job.cpu_milli }
    }
}

/// The most task types `fgd` tracks; jobs of further types are not counted (documented cap,
/// which bounds the cost of a score).
pub const FGD_MAX_TASK_TYPES: usize = 256;

/// `fgd`: Fragmentation Gradient Descent (Weng et al., USENIX ATC '23, "Beware of
/// Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent").
///
/// The target workload is the histogram of task types (device count, share, allowed models,
/// CPU) of the jobs submitted so far (`observe`), weight p_t = n_t / n; before any is observed,
/// the job itself. The fragmentation of a node for task type t, F_t(node), is the free device
/// capacity of the node (milli-devices, healthy devices of an up node) that t cannot use:
///   - t cannot run on the node at all (no device of its models with its share free, fewer
///     whole free devices than its count, less free CPU than it needs, or it asks for no
///     device): all the free capacity;
///   - otherwise: the free capacity of each device that cannot take t's per-device demand
///     (free < share for a fractional t; not whole free, or not of t's models, for a
///     whole-device t).
///
/// The node's expected fragmentation is F(node) = sum_t p_t F_t(node). For every candidate
/// (each device with the share free, for a fractional job; each node that holds a
/// whole-device gang, taking its lowest free devices; each node with the CPU and memory, for a
/// CPU-only job) the score is F(node after) - F(node before) (other nodes do not change), and
/// the least growth wins; ties: the tighter candidate (least free share; fewest whole free
/// devices; least free CPU), then the lowest id. So a CPU-only task avoids taking the CPU that
/// GPU tasks would need on a GPU node, as in the paper, where CPU is part of a task's demand.
/// Arithmetic is in integers (milli-devices x counts), so scores are exact and deterministic.
///
/// Simplifications, stated: memory enters only as the job's own feasibility, not as a reason a
/// task type cannot use a node; a gang no node holds spans the fewest nodes as `pack` does
/// (reported as `Spread`).
///
/// Cost: O(c · d · T) per placement, c the candidates (nodes that hold the gang; devices with
/// the share free; nodes with the CPU), d devices per node, T task types (at most
/// `FGD_MAX_TASK_TYPES`).
#[derive(Clone, Debug, Default)]
pub struct Fgd {
    types: Vec<(TaskType, u64)>,
}

impl Fgd {
    /// F(node) x n: the node's expected fragmentation in milli-devices times the observations,
    /// with `taken` devices' free capacity reduced by the given amounts and `cpu_taken` less
    /// free CPU.
    fn node_fragmentation(cluster: &ClusterState, node: NodeId, taken: &[(DeviceId, u16)], cpu_taken: u32, types: &[(TaskType, u64)]) -> u64 {
        let n = cluster.node(node);
        let up = n.up;
        let first = n.first_device;
        let cpu_free = n.cpu_milli_free.saturating_sub(cpu_taken);
        let free_of = |i: usize, d: &crate::cluster::DeviceState| -> u16 {
            if !up || !d.healthy {
                return 0;
            }
            let id = DeviceId(first + i as u32);
            let minus = taken.iter().filter(|(t, _)| *t == id).map(|&(_, m)| m).sum::<u16>();
            d.free_milli - minus
        };
        let devices = cluster.node_devices(node);
        let total: u64 = devices.iter().enumerate().map(|(i, d)| free_of(i, d) as u64).sum();
        if total == 0 {
            return 0;
        }
        let mut sum = 0u64;
        for &(t, weight) in types {
            let f = if t.count == 0 || t.cpu_milli > cpu_free {
                total
            } else if t.share_milli < WHOLE_DEVICE_MILLI {
                devices
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let free = free_of(i, d);
                        if t.models.allows(d.model) && free >= t.share_milli { 0 } else { free as u64 }
                    })
                    .sum()
            } else {
                let usable = devices
                    .iter()
                    .enumerate()
                    .filter(|(i, d)| t.models.allows(d.model) && free_of(*i, d) == WHOLE_DEVICE_MILLI)
                    .count() as u32;
                if usable >= t.count {
                    total - usable as u64 * WHOLE_DEVICE_MILLI as u64
                } else {
                    total
                }
            };
            sum += f * weight;
        }
        sum
    }

    /// A score (F x n, in milli-devices) as GPUs of expected fragmentation.
    fn gpus(delta: i64, n: u64) -> f64 {
        delta as f64 / n as f64 / WHOLE_DEVICE_MILLI as f64
    }

    fn placed(allocation: Allocation, node: NodeId, device: Option<DeviceId>, delta: i64, n: u64, candidates: u32) -> Placed {
        let fragmentation_increase = Self::gpus(delta, n);
        Placed::new(allocation, PlacedHow::Fgd { node, device, fragmentation_increase, candidates })
    }

    fn place_cpu_only(cluster: &ClusterState, job: &JobSpec, types: &[(TaskType, u64)], n: u64) -> Result<Placed, WaitReason> {
        // (delta, free CPU), node: least growth, then the tightest node, then the lowest id.
        let mut ranked: Ranked<(i64, u32), NodeId> = Ranked::new();
        let mut candidates = 0u32;
        for (i, state) in cluster.nodes().iter().enumerate() {
            let node = NodeId(i as u32);
            if !cluster.node_has_cpu_mem(node, job.cpu_milli, job.mem_mib) {
                continue;
            }
            candidates += 1;
            let delta = Self::node_fragmentation(cluster, node, &[], job.cpu_milli, types) as i64
                - Self::node_fragmentation(cluster, node, &[], 0, types) as i64;
            ranked.offer((delta, state.cpu_milli_free), node);
        }
        let Some((((delta, _), node), alternatives)) = ranked.split(|&(d, _), &node| Alternative::node(node, Self::gpus(d, n))) else {
            // No node fits: the same wait reason as the other placements give.
            return place_cpu_only(cluster, job, Fit::Best);
        };
        let allocation = Allocation { devices: Vec::new(), nodes: vec![NodeShare { node, cpu_milli: job.cpu_milli, mem_mib: job.mem_mib }] };
        Ok(Self::placed(allocation, node, None, delta, n, candidates).with(alternatives))
    }
}

impl Placement for Fgd {
    fn name(&self) -> &'static str {
        "fgd"
    }

    fn observe(&mut self, job: &JobSpec) {
        let t = TaskType::of(job);
        if let Some(entry) = self.types.iter_mut().find(|(u, _)| *u == t) {
            entry.1 += 1;
        } else if self.types.len() < FGD_MAX_TASK_TYPES {
            self.types.push((t, 1));
        }
    }

    fn place(&self, cluster: &ClusterState, job: &JobSpec, _ctx: &PlaceContext) -> Result<Placed, WaitReason> {
        let own = [(TaskType::of(job), 1u64)];
        let types: &[(TaskType, u64)] = if self.types.is_empty() { &own } else { &self.types };
        let n: u64 = types.iter().map(|&(_, w)| w).sum();
        if job.devices.count == 0 {
            return Self::place_cpu_only(cluster, job, types, n);
        }
        if job.devices.is_fractional() {
            let share = job.devices.share_milli;
            let mut with_share = 0u32;
            let mut candidates = 0u32;
            // (delta, free before), (device, node); devices of a node are contiguous, so the
            // node's fragmentation before is computed once per node.
            let mut ranked: Ranked<(i64, u16), (DeviceId, NodeId)> = Ranked::new();
            let mut before: Option<(NodeId, u64)> = None;
            for (id, d) in cluster.devices_with_share(job.devices.models, share) {
                with_share += 1;
                if !cluster.node_has_cpu_mem(d.node, job.cpu_milli, job.mem_mib) {
                    continue;
                }
                candidates += 1;
                let f0 = match before {
                    Some((node, f)) if node == d.node => f,
                    _ => {
                        let f = Self::node_fragmentation(cluster, d.node, &[], 0, types);
                        before = Some((d.node, f));
                        f
                    }
                };
                let f1 = Self::node_fragmentation(cluster, d.node, &[(id, share)], job.cpu_milli, types);
                let delta = f1 as i64 - f0 as i64;
                ranked.offer((delta, d.free_milli), (id, d.node));
            }
            let alternative = |&(d, _): &(i64, u16), &(device, node): &(DeviceId, NodeId)| Alternative {
                node: Some(node),
                device: Some(device),
                model: None,
                score: Self::gpus(d, n),
            };
            let Some((((delta, _), (device, node)), alternatives)) = ranked.split(alternative) else {
                return Err(share_wait(with_share));
            };
            let allocation = Allocation {
                devices: vec![DeviceShare { device, milli: share }],
                nodes: vec![NodeShare { node, cpu_milli: job.cpu_milli, mem_mib: job.mem_mib }],
            };
            return Ok(Self::placed(allocation, node, Some(device), delta, n, candidates).with(alternatives));
        }
        let (key, needed, free) = gang_key(cluster, job)?;
        let mut limit = Limit::Devices;
        let mut ranked: Ranked<i64, NodeId> = Ranked::new();
        let mut candidates = 0u32;
        // Best-fit order, so the first of equal scores is the tighter node.
        for node in cluster.nodes_by_free(key, needed, false) {
            let (hostable, node_limit) = cluster.hostable_on(node, job, key);
            if hostable < needed {
                if node_limit != Limit::Devices {
                    limit = node_limit;
                }
                continue;
            }
            candidates += 1;
            let mut trial = Allocation::default();
            cluster.take_on_node(node, job, key, needed, &mut trial);
            let taken: Vec<(DeviceId, u16)> = trial.devices.iter().map(|s| (s.device, s.milli)).collect();
            let cpu_taken = trial.nodes.iter().map(|s| s.cpu_milli).sum();
            let delta = Self::node_fragmentation(cluster, node, &taken, cpu_taken, types) as i64
                - Self::node_fragmentation(cluster, node, &[], 0, types) as i64;
            ranked.offer(delta, node);
        }
        if let Some(((delta, node), alternatives)) = ranked.split(|&d, &node| Alternative::node(node, Self::gpus(d, n))) {
            let mut allocation = Allocation::default();
            cluster.take_on_node(node, job, key, needed, &mut allocation);
            return Ok(Self::placed(allocation, node, None, delta, n, candidates).with(alternatives));
        }
        match span_fewest(cluster, job, key, None, &mut limit) {
            Some((allocation, ..)) => {
                let nodes = allocation.nodes.len() as u32;
                Ok(Placed::new(allocation, PlacedHow::Spread { nodes }))
            }
            None => Err(WaitReason::NoNodeFits { needed, free, limit }),
        }
    }
}

// ---- hetero ---------------------------------------------------------------------------------

/// Job class x device model -> relative speed (throughput against a reference), dense and
/// row-major like the simulator's speed matrix. Pairs nobody gave are 1.0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpeedTable {
    models: usize,
    relative: Vec<f64>,
}

impl SpeedTable {
    /// Every class runs at 1.0 on every model.
    pub fn uniform(classes: usize, models: usize) -> SpeedTable {
        SpeedTable { models, relative: vec![1.0; classes * models] }
    }

    /// From a row-major table: `relative[class * models + model]`.
    pub fn from_dense(models: usize, relative: Vec<f64>) -> SpeedTable {
        SpeedTable { models, relative }
    }

    pub fn set(&mut self, class: ClassId, model: ModelId, relative: f64) {
        if model.index() < self.models {
            if let Some(cell) = self.relative.get_mut(class.index() * self.models + model.index()) {
                *cell = relative;
            }
        }
    }

    /// Relative speed of `class` on `model`; 1.0 outside the table.
    pub fn speed(&self, class: ClassId, model: ModelId) -> f64 {
        if model.index() >= self.models {
            return 1.0;
        }
        self.relative.get(class.index() * self.models + model.index()).copied().unwrap_or(1.0)
    }
}

/// `hetero`: heterogeneity-aware placement after Gavel's effective-throughput idea. A job goes
/// to the device model where its speed is highest relative to the workload's: its score on
/// model m is speed(class, m) / mean speed on m of the jobs submitted so far (`observe`,
/// weighted by jobs; before any, the job's own class, so every score is 1). Models are tried
/// in order of that score (ties: the job's raw speed, then the lower model id); the first
/// model that can host the job now takes it, best-fit among its nodes (a gang may span nodes
/// of that model). So a class that gains 4x on V100 over K80 takes the V100 from one that
/// gains 1.2x, even if the latter comes first. Work-conserving: a job takes a worse model now
/// rather than wait for its best one. If no single model can host a multi-model gang, it is
/// placed as `best-fit` places it (models mixed). Speeds come from `set_speeds`
/// (`Policy::with_speeds`); without a table every speed is 1.0 and this is `best-fit` in
/// model-id order.
///
/// Cost: O(M) to score the models, then per model tried one best-fit query (a fractional
/// share scans the devices per model tried). `observe` is O(M).
#[derive(Clone, Debug, Default)]
pub struct Hetero {
    speeds: Arc<SpeedTable>,
    /// Jobs observed per class.
    seen: Vec<u64>,
    seen_total: u64,
    /// Sum over observed jobs of their speed per model.
    speed_sum: Vec<f64>,
}

impl Hetero {
    fn recompute_sums(&mut self) {
        self.speed_sum = vec![0.0; MAX_MODELS];
        for (class, &n) in self.seen.iter().enumerate() {
            for (m, sum) in self.speed_sum.iter_mut().enumerate() {
                *sum += n as f64 * self.speeds.speed(ClassId(class as u32), ModelId(m as u16));
            }
        }
    }

    /// The job's speed on a model and that speed over the observed mean on it.
    pub fn score(&self, class: ClassId, model: ModelId) -> (f64, f64) {
        let speed = self.speeds.speed(class, model);
        if self.seen_total == 0 {
            return (speed, 1.0);
        }
        let mean = self.speed_sum[model.index()] / self.seen_total as f64;
        (speed, if mean > 0.0 { speed / mean } else { 1.0 })
    }
}

impl Placement for Hetero {
    fn name(&self) -> &'static str {
        "hetero"
    }

    fn observe(&mut self, job: &JobSpec) {
        let class = job.class.index();
        if self.seen.len() <= class {
            self.seen.resize(class + 1, 0);
        }
        self.seen[class] += 1;
        self.seen_total += 1;
        if self.speed_sum.len() < MAX_MODELS {
            self.speed_sum = vec![0.0; MAX_MODELS];
        }
        for (m, sum) in self.speed_sum.iter_mut().enumerate() {
            *sum += self.speeds.speed(job.class, ModelId(m as u16));
        }
    }

    fn set_speeds(&mut self, speeds: Arc<SpeedTable>) {
        self.speeds = speeds;
        self.recompute_sums();
    }

    fn uses_speeds(&self) -> bool {
        true
    }

    fn place(&self, cluster: &ClusterState, job: &JobSpec, _ctx: &PlaceContext) -> Result<Placed, WaitReason> {
        if job.devices.count == 0 {
            return place_cpu_only(cluster, job, Fit::Best);
        }
        let mut models: Vec<(f64, f64, ModelId)> = (0..cluster.catalogue().len().min(MAX_MODELS))
            .map(|m| ModelId(m as u16))
            .filter(|&m| {
                job.devices.models.allows(m) && cluster.capacity_total(ModelKey::for_set(ModelSet::only(m))) > 0
            })
            .map(|m| {
                let (speed, relative) = self.score(job.class, m);
                (relative, speed, m)
            })
            .collect();
        models.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut one = job.clone();
        for (i, &(relative_speed, speed, model)) in models.iter().enumerate() {
            one.devices.models = ModelSet::only(model);
            if let Ok(p) = place(cluster, &one, Fit::Best) {
                let nodes = p.allocation.nodes.len() as u32;
                // The other models in score order: those before it could not host the job now.
                let alternatives = models
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .take(ALTERNATIVES_KEPT)
                    .map(|(_, &(relative, _, m))| Alternative { node: None, device: None, model: Some(m), score: relative })
                    .collect();
                return Ok(Placed::new(p.allocation, PlacedHow::Hetero { model, speed, relative_speed, nodes }).with(alternatives));
            }
        }
        place(cluster, job, Fit::Best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Catalogue, ModelSet};
    use crate::cluster::NodeSpec;

    const CTX: PlaceContext = PlaceContext { now: Time::ZERO, waited: Time::ZERO };

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
        assert_eq!(nodes_of(&FirstFit.place(&c, &job, &CTX).unwrap()), vec![0]);
        assert_eq!(nodes_of(&BestFit.place(&c, &job, &CTX).unwrap()), vec![1]);
        let job = JobSpec::simple(2, 3);
        assert_eq!(nodes_of(&BestFit.place(&c, &job, &CTX).unwrap()), vec![2]);
    }

    #[test]
    fn a_gang_larger_than_any_node_spans_nodes() {
        let c = cluster(&[4, 4, 4], 64_000);
        let job = JobSpec::simple(1, 10);
        let placed = FirstFit.place(&c, &job, &CTX).unwrap();
        assert_eq!(placed.allocation.devices.len(), 10);
        assert_eq!(nodes_of(&placed), vec![0, 1, 2]);
        let job = JobSpec::simple(2, 13);
        assert_eq!(FirstFit.place(&c, &job, &CTX).unwrap_err(), WaitReason::Devices { needed: 13, free: 12 });
    }

    #[test]
    fn cpu_limits_placement_and_is_named_as_the_reason() {
        let c = cluster(&[4, 4], 8_000);
        let mut job = JobSpec::simple(1, 4);
        job.cpu_milli = 40_000; // 10 cores per device: a node's 8 cores host none
        assert_eq!(
            BestFit.place(&c, &job, &CTX).unwrap_err(),
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
        assert_eq!(nodes_of(&FirstFit.place(&c, &job, &CTX).unwrap()), vec![1]);
        job.devices.models = ModelSet::only(h100).with(t4);
        assert_eq!(nodes_of(&FirstFit.place(&c, &job, &CTX).unwrap()), vec![0]);
    }

    #[test]
    fn fractional_shares_pack_onto_the_fullest_device_under_best_fit() {
        let mut c = cluster(&[2], 64_000);
        let mut small = JobSpec::simple(1, 1);
        small.devices.share_milli = 300;
        let first = FirstFit.place(&c, &small, &CTX).unwrap();
        c.allocate(&first.allocation);
        let mut other = JobSpec::simple(2, 1);
        other.devices.share_milli = 500;
        let placed = BestFit.place(&c, &other, &CTX).unwrap();
        assert_eq!(placed.allocation.devices[0].device, first.allocation.devices[0].device);
        other.devices.share_milli = 800;
        let placed = BestFit.place(&c, &other, &CTX).unwrap();
        assert_ne!(placed.allocation.devices[0].device, first.allocation.devices[0].device);
    }
}
