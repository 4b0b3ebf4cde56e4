//! Saving and restoring the scheduler's ordering state, so that a driver that restarts (the
//! executor after a crash, or on a policy swap) gets a `Scheduler` that orders as the one it
//! lost would have: each job's submission time, attained service and LAS promotion, the
//! tenants' decayed usage (fair share), and a round planner's per-job service (gavel).
//!
//! The driver saves [`Scheduler::job_view`] for every live job, [`Scheduler::tenant_usage`]
//! and [`Scheduler::round_snapshot`] when it commits, and restores into a fresh scheduler with
//! the same cluster: jobs first ([`Scheduler::restore_job`], in the order of
//! [`JobSnapshot::seq`]), then [`Scheduler::restore_tenant_usage`] and
//! [`Scheduler::restore_rounds`]. Restoring emits no decision: a running job is accounted for
//! exactly as if it had been launched where it runs (cluster, tenant usage, quotas, backfill
//! profile, preemption candidates, rank timers), and a queued job takes its place in the
//! queue order with its promotion timer. The next input runs an ordinary pass.

use super::{IdMap, JobEntry, JobPhase, Scheduler, TimerKind};
use crate::cluster::Allocation;
use crate::event::{OrderReason, RejectReason};
use crate::ids::{JobId, ModelId, TenantId};
use crate::job::JobSpec;
use crate::policy::round::RoundService;
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// How far a restored job holding resources had got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// `Launch` was emitted; `JobStarted` not yet received.
    Launching,
    Running,
    /// `Preempt` was emitted; waiting for `JobEvicted`.
    Preempting,
}

/// A job's current run, for a job that holds resources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoredRun {
    pub allocation: Allocation,
    /// When the run started (the launch, then the acknowledged start): its attained service
    /// grows from here, and its preemption order and rank timers count from here.
    pub run_started: Time,
    pub state: RunState,
    /// Being preempted because it was cancelled: it is forgotten, not requeued, when evicted.
    #[serde(default)]
    pub cancel_requested: bool,
    /// Being preempted for this queued job (which waits for it).
    #[serde(default)]
    pub preempted_for: Option<JobId>,
}

/// What the scheduler knows of a job beyond its spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoredJob {
    /// First submission (FIFO order, and the key of most orders).
    pub submitted: Time,
    /// When it last entered the queue (LAS promotion and locality waits count from here).
    pub queued_since: Time,
    /// Running time over its completed runs.
    pub attained: Time,
    /// Device-seconds over its completed runs (LAS's service).
    pub attained_device_s: f64,
    /// Promoted to LAS's first queue for having waited.
    pub promoted: bool,
    /// `None`: queued.
    pub running: Option<RestoredRun>,
    /// A round planner's record of its service (gavel), when the policy plans in rounds.
    #[serde(default)]
    pub round_service: Option<RoundService>,
}

/// One live job as the scheduler sees it: what [`Scheduler::restore_job`] takes back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSnapshot {
    pub spec: JobSpec,
    /// Submission order in this scheduler: restore jobs in ascending `seq`, so that jobs
    /// with equal keys keep their order.
    pub seq: u64,
    pub restored: RestoredJob,
}

/// A tenant's usage as fair share remembers it: device-seconds decayed as of `as_of`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedUsage {
    pub decayed_device_s: f64,
    pub as_of: Time,
}

/// EASY's reservation for the blocked head, kept between passes (a submission behind the
/// head is checked against it alone, without a pass). Not a pure cache: its profile is from
/// when it was made, so a scheduler restored without it could admit a job the original
/// would not, or explain it with another reservation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillSnapshot {
    pub head: JobId,
    pub head_start: Option<Time>,
    pub plan: crate::policy::backfill::EasySnapshot,
}

/// A launch a round planned that had not happened yet.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedLaunch {
    pub job: JobId,
    pub model: Option<ModelId>,
    pub order: Option<OrderReason>,
}

/// The state of a round-based policy between ticks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundSnapshot {
    /// The planner's name: a snapshot is restored only into the same planner.
    pub planner: String,
    pub round: u64,
    /// When the planner last ticked (the service since is booked at the next tick).
    pub last_tick: Option<Time>,
    pub pending: Vec<PlannedLaunch>,
    pub preempted: Vec<JobId>,
    pub queue_pass_due: bool,
}

/// Why a job (or a saved state) could not be restored.
#[derive(Clone, Debug, PartialEq)]
pub enum RestoreError {
    /// A submission would have been rejected (duplicate id, impossible request).
    Rejected { job: JobId, reason: RejectReason },
    /// The allocation cannot be held here: the message says which device, node or amount.
    Allocation { job: JobId, message: String },
    /// A round snapshot of another planner, or into a policy without rounds.
    Rounds(String),
    /// EASY's reservation cannot be put back (another mode, head or fleet).
    Backfill(String),
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreError::Rejected { job, reason } => write!(f, "cannot restore {job}: it would be rejected: {reason:?}"),
            RestoreError::Allocation { job, message } => write!(f, "cannot restore {job} on its allocation: {message}"),
            RestoreError::Rounds(m) => write!(f, "cannot restore the round state: {m}"),
            RestoreError::Backfill(m) => write!(f, "cannot restore the backfill reservation: {m}"),
        }
    }
}

impl std::error::Error for RestoreError {}

impl Scheduler {
    /// A live job's state, to be saved and given back to [`Scheduler::restore_job`].
    pub fn job_view(&self, job: JobId) -> Option<JobSnapshot> {
        let e = self.jobs.get(&job)?;
        let running = e.allocation.clone().map(|allocation| RestoredRun {
            allocation,
            run_started: e.run_started,
            state: match e.state {
                JobPhase::Preempting => RunState::Preempting,
                JobPhase::Launching => RunState::Launching,
                _ => RunState::Running,
            },
            cancel_requested: e.cancel_requested,
            preempted_for: e.preempted_for,
        });
        let round_service = self.policy.rounds.as_ref().and_then(|r| r.service(job));
        Some(JobSnapshot {
            spec: e.spec.clone(),
            seq: e.seq,
            restored: RestoredJob {
                submitted: e.submitted,
                queued_since: e.queued_since,
                attained: e.attained,
                attained_device_s: e.attained_device_s,
                promoted: e.promoted,
                running,
                round_service,
            },
        })
    }

    /// Every live job's state, in submission order (the order to restore them in).
    pub fn job_views(&self) -> Vec<JobSnapshot> {
        let mut all: Vec<JobSnapshot> = self.jobs.keys().filter_map(|&j| self.job_view(j)).collect();
        all.sort_unstable_by_key(|s| s.seq);
        all
    }

    /// Tells the policy of a job that was submitted before the restore and has ended, so that
    /// parts that learn from the workload (fgd's task distribution, hetero's class mix) know
    /// what the original scheduler knew. Call it in submission order, between the
    /// [`Scheduler::restore_job`] calls of the jobs submitted before and after it.
    pub fn restore_past_job(&mut self, spec: &JobSpec) {
        self.policy.placement.observe(spec);
    }

    /// Puts a job back as it was, without a decision: queued in its place in the queue order,
    /// or holding `restored.running`'s allocation exactly as if it had been launched there.
    /// The allocation must be possible now (devices and nodes exist, the shares match the
    /// request and are free, the models are allowed, CPU and memory are free); otherwise
    /// nothing changes and the error says what is wrong. Restore jobs in their original
    /// submission order ([`JobSnapshot::seq`]).
    pub fn restore_job(&mut self, now: Time, spec: JobSpec, restored: RestoredJob) -> Result<(), RestoreError> {
        self.advance(now);
        if let Some(reason) = self.rejection(&spec) {
            return Err(RestoreError::Rejected { job: spec.id, reason });
        }
        if let Some(run) = &restored.running {
            self.check_allocation(&spec, &run.allocation).map_err(|message| RestoreError::Allocation { job: spec.id, message })?;
        }
        self.policy.placement.observe(&spec);
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = spec.id;
        let tenant = spec.tenant;
        let mut entry = JobEntry {
            spec,
            state: JobPhase::Queued,
            seq,
            submitted: restored.submitted,
            queued_since: restored.queued_since,
            queue_key: [0, 0],
            attained_device_s: restored.attained_device_s,
            promoted: restored.promoted,
            timer_epoch: 0,
            allocation: None,
            run_started: Time::ZERO,
            attained: restored.attained,
            last_wait: None,
            last_reserved: None,
            pending_victims: Vec::new(),
            preempted_for: None,
            cancel_requested: false,
            borrowed: false,
        };
        entry.queue_key = self.policy.queue.key(&entry.spec, &Self::view(&entry));
        self.jobs.insert(id, entry);
        if let (Some(service), Some(rounds)) = (restored.round_service, self.policy.rounds.as_mut()) {
            rounds.restore_service(id, service);
        }
        self.needs_pass = true;
        match restored.running {
            None => {
                self.enter_queue(id, restored.queued_since);
                let slot = {
                    let e = &self.jobs[&id];
                    (e.queue_key, e.seq)
                };
                self.queue.insert(slot, id);
                if self.policy.tenant_order.is_some() {
                    self.tenants.queues.entry(tenant).or_default().insert(slot, id);
                }
                // Victims already restored that are being evicted for this job.
                let mut victims: Vec<JobId> = self.jobs.iter().filter(|(_, e)| e.preempted_for == Some(id)).map(|(&v, _)| v).collect();
                victims.sort_unstable();
                self.jobs.get_mut(&id).expect("inserted above").pending_victims = victims;
            }
            Some(run) => {
                self.take_resources(id, &run.allocation, run.run_started);
                let entry = self.jobs.get_mut(&id).expect("inserted above");
                match run.state {
                    RunState::Launching => {}
                    RunState::Running => {
                        entry.state = JobPhase::Running;
                        if self.policy.backfill.enabled() {
                            let end = crate::policy::backfill::expected_end(&entry.spec, entry.run_started, Time::ZERO);
                            self.backfill.device_ends.extend(&self.cluster, &run.allocation, end);
                        }
                    }
                    RunState::Preempting => {
                        let key = Self::victim_key(entry, id);
                        entry.state = JobPhase::Preempting;
                        entry.cancel_requested = run.cancel_requested;
                        self.victims.remove(&key);
                        if let Some(head) = run.preempted_for {
                            if let Some(h) = self.jobs.get_mut(&head).filter(|h| h.state == JobPhase::Queued) {
                                if !h.pending_victims.contains(&id) {
                                    h.pending_victims.push(id);
                                    h.pending_victims.sort_unstable();
                                }
                            }
                            self.jobs.get_mut(&id).expect("inserted above").preempted_for = Some(head);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `allocation` is one this job could hold now, on this cluster.
    fn check_allocation(&self, spec: &JobSpec, allocation: &Allocation) -> Result<(), String> {
        let want = spec.devices;
        if allocation.devices.len() != want.count as usize {
            return Err(format!("it holds {} device(s) but requests {}", allocation.devices.len(), want.count));
        }
        let mut taken: IdMap<u32, u32> = IdMap::default();
        for share in &allocation.devices {
            let Some(device) = self.cluster.devices().get(share.device.index()) else {
                return Err(format!("{} does not exist (the cluster has {} devices)", share.device, self.cluster.devices().len()));
            };
            if share.milli != want.share_milli {
                return Err(format!("its share of {} is {} milli, but it requests {}", share.device, share.milli, want.share_milli));
            }
            if !want.models.allows(device.model) {
                return Err(format!("{} is of a model it does not accept", share.device));
            }
            if !allocation.nodes.iter().any(|n| n.node == device.node) {
                return Err(format!("{} is on {}, which the allocation does not list", share.device, device.node));
            }
            let t = taken.entry(share.device.0).or_default();
            *t += share.milli as u32;
            if *t > device.free_milli as u32 {
                return Err(format!("{} has {} milli free, {} needed", share.device, device.free_milli, t));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for node in &allocation.nodes {
            let Some(state) = self.cluster.nodes().get(node.node.index()) else {
                return Err(format!("{} does not exist (the cluster has {} nodes)", node.node, self.cluster.nodes().len()));
            };
            if !seen.insert(node.node) {
                return Err(format!("{} is listed twice", node.node));
            }
            if node.cpu_milli > state.cpu_milli_free || node.mem_mib > state.mem_mib_free {
                return Err(format!(
                    "{} has {} milli-CPU and {} MiB free, {} and {} needed",
                    node.node, state.cpu_milli_free, state.mem_mib_free, node.cpu_milli, node.mem_mib
                ));
            }
        }
        Ok(())
    }

    /// Every tenant's remembered usage (empty unless the policy ranks tenants by usage), as it
    /// stands (decayed as of its `as_of`).
    pub fn tenant_usage(&self) -> Vec<(TenantId, SavedUsage)> {
        if !self.tenants.tracks_usage {
            return Vec::new();
        }
        self.tenants.usage
            .iter()
            .enumerate()
            .map(|(t, u)| (TenantId(t as u32), SavedUsage { decayed_device_s: u.decayed_device_s, as_of: u.as_of }))
            .collect()
    }

    /// Gives tenants back their remembered usage. Call it after restoring the jobs: the time
    /// from `as_of` on is then booked with the devices the restored jobs hold (they ran meanwhile).
    pub fn restore_tenant_usage(&mut self, now: Time, saved: &[(TenantId, SavedUsage)]) {
        self.advance(now);
        if !self.tenants.tracks_usage {
            return;
        }
        let now = self.now;
        for &(tenant, s) in saved {
            let usage = self.usage_mut(tenant);
            usage.decayed_device_s = if s.decayed_device_s.is_finite() { s.decayed_device_s.max(0.0) } else { 0.0 };
            usage.as_of = s.as_of.min(now);
        }
        self.needs_pass = true;
    }

    /// A round-based policy's state between ticks; `None` without rounds.
    pub fn round_snapshot(&self) -> Option<RoundSnapshot> {
        let state = self.rounds.as_ref()?;
        let planner = self.policy.rounds.as_ref()?;
        let mut preempted: Vec<JobId> = state.preempted.keys().copied().collect();
        preempted.sort_unstable();
        Some(RoundSnapshot {
            planner: planner.name().to_string(),
            round: state.round,
            last_tick: planner.last_tick(),
            pending: state.pending.iter().map(|p| PlannedLaunch { job: p.job, model: p.model, order: p.order }).collect(),
            preempted,
            queue_pass_due: state.queue_pass_due,
        })
    }

    /// Declares the restore complete and exact: the state is one the original scheduler was
    /// in after an input (the same jobs on the same fleet, with their saved ordering state),
    /// so no pass is due until an input asks for one, as in the original. Without this call
    /// the next input runs a full pass, as after any change.
    pub fn finish_restore_settled(&mut self) {
        self.needs_pass = false;
    }

    /// EASY's kept reservation, while it is valid (the cluster has not changed since it was
    /// made); `None` otherwise and under the other backfill modes.
    pub fn backfill_snapshot(&self) -> Option<BackfillSnapshot> {
        let cache = self.backfill.cache.as_ref()?;
        if self.policy.backfill.mode != crate::policy::BackfillMode::Easy || cache.cluster_version != self.cluster_version {
            return None;
        }
        Some(BackfillSnapshot { head: cache.head, head_start: cache.head_start, plan: cache.backfiller.easy_snapshot()? })
    }

    /// Puts EASY's kept reservation back (call after restoring the jobs and their resources):
    /// its head must be queued at the head of the queue, on the same devices.
    pub fn restore_backfill(&mut self, snapshot: &BackfillSnapshot) -> Result<(), RestoreError> {
        if self.policy.backfill.mode != crate::policy::BackfillMode::Easy {
            return Err(RestoreError::Backfill("the policy does not backfill with EASY".into()));
        }
        let slot = match self.jobs.get(&snapshot.head) {
            Some(e) if e.state == JobPhase::Queued => (e.queue_key, e.seq),
            _ => return Err(RestoreError::Backfill(format!("job {} is not queued", snapshot.head))),
        };
        if self.queue.first_key_value().map(|(_, &j)| j) != Some(snapshot.head) {
            return Err(RestoreError::Backfill(format!("job {} is not at the head of the queue", snapshot.head)));
        }
        let backfiller = crate::policy::backfill::Backfiller::from_easy_snapshot(&snapshot.plan, &self.cluster)
            .ok_or_else(|| RestoreError::Backfill("the saved profile is of another fleet".into()))?;
        self.backfill.cache = Some(super::reserve::BackfillCache {
            backfiller,
            head: snapshot.head,
            head_slot: slot,
            head_start: snapshot.head_start,
            cluster_version: self.cluster_version,
            scan: Default::default(),
        });
        Ok(())
    }

    /// Restores a round-based policy's state (call after restoring the jobs), and sets the
    /// next tick at the first round boundary after now.
    pub fn restore_rounds(&mut self, now: Time, snapshot: &RoundSnapshot) -> Result<(), RestoreError> {
        self.advance(now);
        let planner = self.policy.rounds.as_mut().ok_or_else(|| RestoreError::Rounds("this policy has no rounds".into()))?;
        if planner.name() != snapshot.planner {
            return Err(RestoreError::Rounds(format!("saved by `{}`, restored into `{}`", snapshot.planner, planner.name())));
        }
        planner.restore_last_tick(snapshot.last_tick, snapshot.round);
        // A launch for a job that is not here any more has nothing to start.
        let pending = snapshot
            .pending
            .iter()
            .filter_map(|p| self.jobs.get(&p.job).map(|e| super::rounds::Planned::new(p.job, p.model, p.order, e.spec.devices)))
            .collect();
        let state = self.rounds.as_mut().expect("a planner has a round state");
        state.round = snapshot.round;
        state.pending = pending;
        state.preempted = snapshot.preempted.iter().map(|&j| (j, ())).collect();
        state.queue_pass_due = snapshot.queue_pass_due;
        // The boundary after the last round that ran: one the driver missed while it was down
        // (or one due right now) runs at the next timeout, not a whole interval later.
        let step = state.interval.as_micros().max(1);
        let at = Time::from_micros(snapshot.round.saturating_add(1).saturating_mul(step));
        self.timers.retain(|t| t.1 != TimerKind::Round);
        self.timers.insert((at, TimerKind::Round, JobId(0), 0));
        self.needs_pass = true;
        Ok(())
    }
}
