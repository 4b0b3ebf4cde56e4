//! Round-based scheduling: a periodic tick on top of the event-driven core.
//!
//! Most published schedulers for ML clusters decide in rounds (Gavel every 360 s, Blox every
//! 300 s, Pollux and Sia every 60 s): at each tick they look at every active job at once and
//! say which run in the next round, where. A policy opts in with the `round_s` key of its
//! spec; its `Policy::rounds` is then a [`RoundPlanner`], and the scheduler keeps a timer at
//! the multiples of `round_s` (through `poll_timeout`, like its other timers: time is data).
//!
//! At a tick the scheduler hands the planner every active job (queued, launching, running;
//! not those being preempted) and the devices per model, and carries out the [`RoundPlan`]:
//!
//! - [`RoundPlan::QueuePass`]: the queue order's ordinary pass runs now. A plain order with
//!   `round_s` (e.g. `fifo` with `round_s = 300`) so only batches its decisions into rounds:
//!   jobs that arrive between ticks wait for the next one (unless `round_backfill`).
//! - [`RoundPlan::Assign`]: exactly the listed jobs run in the round, each on its model.
//!   Running jobs not listed (or listed on another model) are preempted at the boundary with
//!   `PreemptReason::RoundEnd`; listed queued jobs launch on their model as soon as it has
//!   room (at once, or when the preempted jobs' grace periods end).
//!
//! Between ticks, devices freed by finished jobs stay idle until the next round, as Gavel
//! does, unless the spec sets `round_backfill = true`: then queued jobs (in queue order, skipping
//! those preempted at this round's boundary, and only once every launch the round planned
//! has happened) start on idle devices, the model where they run fastest first.

use crate::event::OrderReason;
use crate::ids::{ClassId, JobId, ModelId};
use crate::job::DeviceRequest;
use crate::policy::gavel::{Gavel, TypeDemand};
use crate::policy::placement::SpeedTable;
use crate::policy::{PolicyError, PolicySpec};
use crate::time::Time;
use std::sync::Arc;

/// An active job as a planner sees it at a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundJob {
    pub id: JobId,
    /// Submission order (ties broken oldest first).
    pub seq: u64,
    pub class: ClassId,
    pub devices: DeviceRequest,
    pub submitted: Time,
    /// Holds resources now (launched or running).
    pub running: bool,
    /// The model its devices are of, when it runs on devices of one model.
    pub running_on: Option<ModelId>,
    /// When its current run started (meaningful when `running`).
    pub run_started: Time,
}

/// What a planner is told at a tick.
#[derive(Clone, Copy, Debug)]
pub struct RoundInput<'a> {
    /// The round that starts now: `now / round_s`.
    pub round: u64,
    pub now: Time,
    /// Active jobs in submission order.
    pub jobs: &'a [RoundJob],
    /// Usable devices (healthy, on nodes that are up) per model, indexed by `ModelId`.
    pub devices_by_model: &'a [u32],
}

/// A job's standing in a round: its share of the allocation and what it has received.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Standing {
    pub job: JobId,
    /// The model it runs on this round (`None` for a CPU-only job, or one not chosen).
    pub model: Option<ModelId>,
    /// Its allocation share X (fraction of the round's time on `model`; summed over models for
    /// a job not chosen).
    pub share: f64,
    /// The fraction of its active time it ran on `model` so far (over all models for a job
    /// not chosen).
    pub received: f64,
    /// share / received: `None` when it received nothing yet (it ranks first).
    pub priority: Option<f64>,
    /// Chosen only to fill devices the allocation left idle (share 0 on `model`).
    pub filled: bool,
}

impl Standing {
    /// The launch reason's order part for a job launched on `model` at the round `round`.
    pub fn order_reason(&self, round: u64, model: ModelId) -> OrderReason {
        if self.filled {
            OrderReason::RoundFill { round, model }
        } else {
            OrderReason::RoundShare { round, model, share: self.share, received: self.received, priority: self.priority }
        }
    }
}

/// What runs in the next round.
#[derive(Clone, Debug, PartialEq)]
pub enum RoundPlan {
    /// Run the queue order's ordinary pass now.
    QueuePass,
    /// These jobs run, in launch order (highest priority first); `others` are the active jobs
    /// not chosen, with their standing (the reasons of their preemptions say it).
    Assign { chosen: Vec<Standing>, others: Vec<Standing> },
    /// Every running job keeps its devices and nothing starts (what `Assign` would say when
    /// no job waits and moving one could gain nothing), said cheaply.
    KeepRunning,
}

/// A policy's round planner.
pub trait RoundPlanner: Send {
    fn name(&self) -> &'static str;
    /// The round length.
    fn interval(&self) -> Time;
    /// Whether queued jobs may start on idle devices between rounds.
    fn backfill(&self) -> bool;
    /// Whether `plan` assigns jobs (`RoundPlan::Assign`) rather than asking for the queue
    /// order's pass; between ticks, the scheduler's pass then only starts what the round
    /// planned (and backfills).
    fn assigns(&self) -> bool {
        true
    }
    /// Plans the round that starts at `input.now`.
    fn plan(&mut self, input: &RoundInput<'_>) -> RoundPlan;
    /// The class x model speed table, for planners that use it. Default: ignored.
    fn set_speeds(&mut self, _speeds: Arc<SpeedTable>) {}
    /// Whether its plans depend on the speed table (so a validation must record it).
    fn uses_speeds(&self) -> bool {
        false
    }
    /// Counters for measurements; planners without any return the default.
    fn stats(&self) -> RoundStats {
        RoundStats::default()
    }
    /// The linear program the last `plan` solved (job types and devices per model), if it
    /// solved one, so a driver can time the solver apart (`tessera bench`).
    fn last_program(&self) -> Option<(&[TypeDemand], &[f64])> {
        None
    }
    /// What the planner remembers of a job's service, to be saved and restored (a restarted
    /// driver's planner then ranks the job as before). Default: nothing.
    fn service(&self, _job: JobId) -> Option<RoundService> {
        None
    }
    fn restore_service(&mut self, _job: JobId, _service: RoundService) {}
    /// When the planner last ticked, to be saved and restored with `round` (the round then).
    fn last_tick(&self) -> Option<Time> {
        None
    }
    fn restore_last_tick(&mut self, _last_tick: Option<Time>, _round: u64) {}
}

/// A job's service as a round planner records it (gavel): time active, and time run on each
/// model, in seconds.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundService {
    pub active_s: f64,
    pub received_s: Vec<(ModelId, f64)>,
}

/// What a planner did over a run, for measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoundStats {
    pub rounds: u64,
    /// Active jobs summed over the rounds (for the mean), and the most in one round.
    pub jobs_total: u64,
    pub jobs_max: u32,
    /// Rounds where every job ran already and the plan was to keep them (`KeepRunning`).
    pub rounds_kept: u64,
    /// Linear programs solved, and rounds that reused the previous solution because the job
    /// types, their counts and the devices had not changed.
    pub lp_solves: u64,
    pub lp_reused: u64,
    /// Simplex pivots over all solves, and the most in one round.
    pub lp_pivots: u64,
    pub lp_pivots_max: u32,
    /// The largest program solved: job types and variables.
    pub lp_types_max: u32,
    pub lp_vars_max: u32,
    /// LPs that failed (numerically); the round then fell back to the equal share.
    pub lp_failures: u64,
}

/// Rounds for a plain queue order: the ordinary pass, only at ticks.
#[derive(Clone, Debug)]
pub struct Batched {
    pub interval: Time,
    pub backfill: bool,
    rounds: u64,
}

impl Batched {
    pub fn new(interval: Time, backfill: bool) -> Batched {
        Batched { interval, backfill, rounds: 0 }
    }
}

impl RoundPlanner for Batched {
    fn name(&self) -> &'static str {
        "batched"
    }
    fn interval(&self) -> Time {
        self.interval
    }
    fn backfill(&self) -> bool {
        self.backfill
    }
    fn assigns(&self) -> bool {
        false
    }
    fn plan(&mut self, _input: &RoundInput<'_>) -> RoundPlan {
        self.rounds += 1;
        RoundPlan::QueuePass
    }
    fn stats(&self) -> RoundStats {
        RoundStats { rounds: self.rounds, ..RoundStats::default() }
    }
}

/// Gavel's round length.
pub const GAVEL_ROUND_S: f64 = 360.0;

/// The registry's part for rounds: `gavel` always plans in rounds (`round_s`, default 360);
/// another order does when its spec sets `round_s`. `round_backfill` without rounds is an error.
pub fn planner_from_spec(spec: &PolicySpec) -> Result<Option<Box<dyn RoundPlanner>>, PolicyError> {
    let gavel = spec.name == "gavel";
    let round_s = match (spec.round_s, gavel) {
        (Some(s), _) => Some(s),
        (None, true) => Some(GAVEL_ROUND_S),
        (None, false) => None,
    };
    let Some(round_s) = round_s else {
        if spec.round_backfill.is_some() {
            return Err(PolicyError { key: "round_backfill", message: "applies only to round-based policies: set `round_s` or use `gavel`".into() });
        }
        return Ok(None);
    };
    // A round shorter than a millisecond would be a busy loop, not a schedule.
    if !(round_s.is_finite() && round_s >= 0.001) {
        return Err(PolicyError { key: "round_s", message: format!("expected a round length of at least 0.001 seconds, found {round_s}") });
    }
    crate::limits::check_secs(round_s, false).map_err(|message| PolicyError { key: "round_s", message })?;
    let interval = Time::from_secs_f64(round_s);
    let backfill = spec.round_backfill.unwrap_or(false);
    Ok(Some(if gavel { Box::new(Gavel::new(interval, backfill)) } else { Box::new(Batched::new(interval, backfill)) }))
}
