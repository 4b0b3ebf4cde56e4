//! The vocabulary at the core's boundary: events in (facts, past tense), decisions out
//! (commands the driver must carry out), notices out (explanations for logs and reports).

use crate::cluster::{Allocation, Limit, NodeSpec};
use crate::ids::{DeviceId, JobId, NodeId};
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
    DeviceFailed { device: DeviceId },
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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacementReason {
    /// The placement's registry name.
    pub rule: Cow<'static, str>,
    #[serde(flatten)]
    pub how: PlacedHow,
}

/// What the placement found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PreemptReason {
    /// Evicted so that a job of a higher priority tier can start.
    HigherTier { for_job: JobId, victim_tier: i32, for_tier: i32 },
    /// A device the job ran on failed; its work must restart elsewhere.
    DeviceFailed { device: DeviceId },
    NodeDown { node: NodeId },
    /// The node is being drained for planned maintenance or removal.
    Maintenance { node: NodeId },
    /// The submitter cancelled the job while it ran; it will not return to the queue.
    Cancelled,
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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// The job waits; sent when it starts waiting and whenever the reason changes.
    Waiting { job: JobId, reason: WaitReason },
    /// A preempted job is back in the queue.
    Requeued { job: JobId, attained_s: f64 },
    /// Preemption was considered for the queue head but no victims may be taken yet.
    PreemptionDeferred { job: JobId, until_s: f64, why: String },
    Cancelled { job: JobId },
    /// An event the core could not apply (unknown job, job in the wrong state). The driver
    /// has a bug or a race; the core ignores the event rather than guess.
    Ignored { event: String, why: String },
}
