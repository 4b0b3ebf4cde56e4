//! The vocabulary at the core's boundary: events in (facts, past tense), decisions out
//! (commands the driver must carry out), notices out (explanations for logs and reports).

use crate::cluster::{Allocation, Limit, NodeSpec};
use crate::ids::{DeviceId, JobId, ModelId, NodeId, TenantId};
use crate::job::{JobSpec, Outcome};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    JobSubmitted { spec: JobSpec },
    JobCancelled { job: JobId },
    /// Acknowledges a `Launch`: the job's processes are running.
    JobStarted { job: JobId },
    JobFinished { job: JobId, outcome: Outcome },
    /// Acknowledges a `Preempt`: the job has stopped and its resources are free.
    JobEvicted { job: JobId },
    NodeAdded { spec: NodeSpec },
    NodeUp { node: NodeId },
    /// The node failed: its jobs are stopped at once.
    NodeDown { node: NodeId },
    /// The node is taken out for planned work: no new jobs, and its jobs are preempted with
    /// the policy's grace period. `NodeUp` brings it back.
    NodeDrain { node: NodeId },
    /// The device failed: its jobs are stopped at once.
    DeviceFailed { device: DeviceId },
    /// The device is taken out for planned work (an operator's drain): no new jobs on it,
    /// and its jobs are preempted with the policy's grace period. `DeviceRecovered` brings
    /// it back.
    DeviceDrain { device: DeviceId },
    DeviceRecovered { device: DeviceId },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Start the job on exactly these resources, all of them at once.
    Launch { job: JobId, allocation: Allocation, reason: LaunchReason },
    /// Stop the job: signal it, wait at most `grace`, then kill it; answer with `JobEvicted`
    /// (or `JobFinished` if it ended on its own meanwhile).
    Preempt { job: JobId, reason: PreemptReason, grace: Time },
    /// The job can never run here; it is dropped from the queue.
    Reject { job: JobId, reason: RejectReason },
}

impl Decision {
    pub fn job(&self) -> JobId {
        match self {
            Decision::Launch { job, .. } | Decision::Preempt { job, .. } | Decision::Reject { job, .. } => *job,
        }
    }
}

/// Why a job was launched where it was: structured, so reports and `explain` can read it,
/// and cheap, since the simulator makes millions of these.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchReason {
    /// The policy's label.
    pub policy: Arc<str>,
    /// What put the job at the head of the queue.
    pub order: OrderReason,
    /// Where the placement put it, and why there.
    pub placement: PlacementReason,
    /// Jobs still queued after this launch.
    pub queued_after: u32,
    /// Set when the job started ahead of a blocked queue head by backfilling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<Backfilled>,
}

/// A launch ahead of the blocked head: which reservation it respected, and how.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backfilled {
    /// `easy` or `conservative`.
    pub mode: BackfillKind,
    /// The blocked queue head it started ahead of.
    pub head: JobId,
    /// The head's reserved start (`None`: no finite time on the stated durations).
    pub reserved_start_s: Option<f64>,
    /// When this job is expected to end, from its stated duration (`None`: states none).
    pub expected_end_s: Option<f64>,
    /// It is expected to end by the head's reserved start; otherwise it uses only devices
    /// the reservations do not need.
    pub ends_before_reservation: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillKind {
    Easy,
    Conservative,
}

/// The queue order's rule, with the value it ranked the job by.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum OrderReason {
    /// Oldest submission first.
    Fifo,
    /// Shortest stated duration first; `None` ranks last.
    ShortestStated { stated_s: Option<f64> },
    /// Highest priority tier first.
    PriorityTier { tier: i32 },
    /// Shortest remaining stated time first; `None` ranks last.
    ShortestRemaining { remaining_s: Option<f64> },
    /// Tiresias' 2D-LAS: the queue the job's attained device-seconds put it in (0 first).
    LeastAttained { queue: u32, attained_device_s: f64, promoted: bool },
    /// The tenant with the smallest dominant share first (DRF).
    DominantShare { tenant_share: f64 },
    /// The tenant with the highest fair-share factor first (Slurm's 2^(-usage/share)).
    FairShare { factor: f64, usage_share: f64, target_share: f64 },
    /// A round-based policy (`gavel`) chose the job for round `round` on `model`: its share
    /// of the round's time there is `share`, it had run there `received` of its active time,
    /// and `priority` = share / received ranked it (`None`: it had not run there yet, so it
    /// ranked first).
    RoundShare { round: u64, model: ModelId, share: f64, received: f64, priority: Option<f64> },
    /// The round's allocation gave the job no share of `model`, but its devices would have
    /// stayed idle for the round otherwise.
    RoundFill { round: u64, model: ModelId },
    /// Started between rounds on devices left idle (`round_backfill = true`).
    BetweenRounds { round: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacementReason {
    /// The placement's registry name.
    pub rule: Cow<'static, str>,
    #[serde(flatten)]
    pub how: PlacedHow,
    /// The runners-up of a placement that scores its candidates, best first (at most
    /// `placement::ALTERNATIVES_KEPT`): what it chose the winner over. Empty for `first-fit`
    /// (node order, not a score), for gangs spread over nodes, and where nothing else fitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
}

/// A candidate a placement scored and did not choose. `score` is what the rule ranks by:
/// `best-fit`, `pack` and `topology` the whole free devices the node would keep after the
/// gang (fewer first); `spread` the node's whole free devices before it (more first); a
/// fractional share the device's free milli-devices before it (`best-fit` and `pack` fewer
/// first, `spread` more first; `fgd` scores shares by fragmentation); a CPU-only job the
/// node's free CPU in milli-cores; `fgd` the growth of the cluster's expected fragmentation
/// in GPUs (less first); `hetero` the model's relative speed (higher first).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelId>,
    pub score: f64,
}

impl Alternative {
    pub fn node(node: NodeId, score: f64) -> Alternative {
        Alternative { node: Some(node), device: None, model: None, score }
    }
}

/// What the placement found. `first-fit` and `best-fit` use the first four; the other
/// placements say which candidate won and, where they score, by how much. Fractional and
/// CPU-only jobs under `pack`, `spread`, `topology` and `hetero` report `Share` / `CpuOnly`
/// (the registry name in `PlacementReason::rule` says which rule chose).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "placed", rename_all = "snake_case")]
pub enum PlacedHow {
    /// The whole gang on one node, which keeps `free_after` whole free devices of the models
    /// the job may use.
    OneNode { node: NodeId, free_after: u32 },
    /// No single node had room for the gang: spread over `nodes` nodes.
    Spread { nodes: u32 },
    /// A fractional share of one device, which had `free_milli_before` free.
    Share { device: DeviceId, free_milli_before: u16 },
    /// A job with no devices, on a node with the CPU and memory.
    CpuOnly { node: NodeId },
    /// `pack`: the gang on `nodes` nodes (the fewest possible: most free first, the rest on
    /// the tightest node that holds it); `last` is the node that took the remainder (the only
    /// node when `nodes == 1`), left with `free_after` whole free devices; `island` is the
    /// NVLink island the devices came from when islands are configured and one holds them.
    Pack { nodes: u32, last: NodeId, free_after: u32, island: Option<u32> },
    /// `spread`: the node with the most free devices that hosts the gang, which had
    /// `free_before` whole free devices of the allowed models.
    MostFree { node: NodeId, free_before: u32 },
    /// `topology`: all devices on one node (and one NVLink island, when islands are
    /// configured and one holds them), left with `free_after` whole free devices.
    Local { node: NodeId, island: Option<u32>, free_after: u32 },
    /// `topology`: no single node could host the gang, so it spans `nodes` nodes, after
    /// waiting `waited_s` of its `locality_wait_s`.
    SpreadAfterWait { nodes: u32, waited_s: f64 },
    /// `fgd`: the candidate with the least growth of the cluster's expected fragmentation
    /// (in GPUs, weighted by the observed workload; negative when the job fills fragments).
    /// `device` is the device of a fractional share; `candidates` how many were scored.
    Fgd { node: NodeId, device: Option<DeviceId>, fragmentation_increase: f64, candidates: u32 },
    /// `hetero`: the model on which the job's speed relative to the observed workload's mean
    /// speed is highest among models that could host it now; `nodes` nodes of it.
    Hetero { model: ModelId, speed: f64, relative_speed: f64, nodes: u32 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PreemptReason {
    /// Evicted so that a job of a higher priority tier (or, under orders that rank running
    /// jobs, a higher rank) can start; `victim_rule` is the policy's rule that chose it among
    /// the lower-ranked jobs.
    HigherTier {
        for_job: JobId,
        victim_tier: i32,
        for_tier: i32,
        #[serde(default)]
        victim_rule: crate::policy::VictimRule,
    },
    /// A device the job ran on failed; its work must restart elsewhere.
    DeviceFailed { device: DeviceId },
    /// A device the job ran on is being drained for planned work; it returns to the queue.
    DeviceDrained { device: DeviceId },
    NodeDown { node: NodeId },
    /// The node is being drained for planned maintenance or removal.
    Maintenance { node: NodeId },
    /// The submitter cancelled the job while it ran; it will not return to the queue.
    Cancelled,
    /// A round-based policy did not choose the job for round `round` (or chose it on another
    /// model, `moved_to`): its allocation share was `share`, it had run `received` of its
    /// active time, and jobs of higher priority (share / received; `None`: it had not run
    /// yet) took the devices. It returns to the queue for a later round.
    RoundEnd { round: u64, share: f64, received: f64, priority: Option<f64>, moved_to: Option<ModelId> },
    /// The job ran on devices its tenant borrowed beyond its quota (`tenant` holds `used`
    /// devices over a quota of `quota`); they are reclaimed for `for_job` of `for_tenant`,
    /// which is under its own quota.
    QuotaReclaim { for_job: JobId, tenant: TenantId, used: f64, quota: f64, for_tenant: TenantId },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectReason {
    /// More devices of the allowed models than the whole cluster has.
    TooManyDevices { requested: u32, cluster_has: u32 },
    /// A fractional share over several devices, or a share of zero.
    InvalidShare { count: u32, share_milli: u16 },
    /// More CPU or memory per node than the largest node has.
    TooLargeForAnyNode { limit: Limit, needed: u64, largest_node: u64 },
    DuplicateId,
}

/// Why a queued job is not running yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitReason {
    /// Fewer free devices of the allowed models than the job needs, in the whole cluster.
    Devices { needed: u32, free: u32 },
    /// Enough devices are free, but no set of nodes also has the CPU and memory for them
    /// (`limit` says what ran out first), or no device has the fractional share free.
    NoNodeFits { needed: u32, free: u32, limit: Limit },
    /// The queue order puts another job first, and that job cannot start yet.
    BehindHead { head: JobId },
    /// Lower-tier jobs are being preempted for this job; it starts when they are gone.
    AwaitingPreemption { victims: Vec<JobId> },
    /// `topology`: the gang could start now only spread over `spread_nodes` nodes; it waits
    /// for one node to hold it until it has waited `limit_s` (it has waited `waited_s`).
    /// The scheduler should wake at `limit_s - waited_s` from now to accept the spread.
    Locality { waited_s: f64, limit_s: f64, spread_nodes: u32 },
    /// A round-based policy starts jobs only at its rounds: the next, `round`, is at `at_s`.
    NextRound { round: u64, at_s: f64 },
    /// Backfilling: the job could start now, but it would delay the reservation of `head`
    /// (the blocked queue head under EASY; under conservative, any job queued before it),
    /// which is reserved to start at `reserved_start_s` (`None`: no finite time on the stated
    /// durations); this job is expected to run until `expected_end_s` (`None`: states no
    /// duration).
    Reservation { head: JobId, reserved_start_s: Option<f64>, expected_end_s: Option<f64> },
    /// The job's tenant holds `used` devices of its `quota`, and the job would take it over;
    /// it waits for the tenant's own jobs to end (or, with borrowing on, for idle devices).
    Quota { tenant: TenantId, used: f64, quota: f64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// The job waits; sent when it starts waiting and whenever the reason changes.
    Waiting { job: JobId, reason: WaitReason },
    /// Backfilling reserved devices for a blocked job: `devices` whole devices of its models
    /// from `start_s` (`None`: no finite time, as it needs devices held by jobs that state no
    /// duration). Sent when the reserved start changes.
    Reserved { job: JobId, start_s: Option<f64>, devices: u32 },
    /// A preempted job is back in the queue.
    Requeued { job: JobId, attained_s: f64 },
    /// Preemption was considered for the queue head but no victims may be taken yet.
    PreemptionDeferred { job: JobId, until_s: f64, why: String },
    Cancelled { job: JobId },
    /// An event the core could not apply (unknown job, job in the wrong state). The driver
    /// has a bug or a race; the core ignores the event rather than guess.
    Ignored { event: String, why: String },
}
