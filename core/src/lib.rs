//! tessera-core: the sans-IO scheduling core.
//!
//! **Architecture invariant:** nothing in this crate does I/O, reads a clock, spawns a thread
//! or task, or draws a random number. Time comes in as an argument; decisions go out as
//! values. The same `Scheduler` with the same policy makes the same decisions in the
//! simulator and in the live executor.

pub mod catalogue;
pub mod cluster;
pub mod event;
pub mod ids;
pub mod job;
pub mod limits;
pub mod lp;
pub mod policy;
pub mod scheduler;
pub mod time;
pub mod validation;

pub use catalogue::{Catalogue, DeviceKind, DeviceModel, ModelSet};
pub use cluster::{Allocation, ClusterState, DeviceShare, Limit, NodeShare, NodeSpec};
pub use event::{Alternative, BackfillKind, Backfilled, Decision, Event, LaunchReason, Notice, OrderReason, PlacedHow, PlacementReason, PreemptReason, RejectReason, WaitReason};
pub use ids::{ClassId, DeviceId, JobId, ModelId, NodeId, TenantId};
pub use job::{DeviceRequest, JobLedger, JobOutcome, JobPhase, JobRecord, StopCause, JobSpec, JobStatus, Outcome, WHOLE_DEVICE_MILLI};
pub use policy::{Policy, PolicyError, PolicySpec};
pub use scheduler::{BackfillSnapshot, JobSnapshot, RestoreError, RestoredJob, RestoredRun, RoundSnapshot, RunState, SavedUsage, Scheduler};
pub use time::Time;
