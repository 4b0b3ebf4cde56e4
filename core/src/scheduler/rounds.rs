//! The scheduler's side of round-based policies (`policy::round`): the periodic tick, carrying
//! out a round's plan, and the pass between ticks. Kept apart from `scheduler.rs`, which calls
//! in at a handful of places (construction, `enqueue`, the timers, the pass).

use super::{IdMap, JobPhase, Scheduler, TimerKind};
use crate::catalogue::ModelSet;
use crate::cluster::ModelKey;
use crate::event::{OrderReason, PreemptReason, WaitReason};
use crate::ids::{JobId, ModelId};
use crate::job::DeviceRequest;
use crate::policy::round::{RoundInput, RoundJob, RoundPlan, RoundStats, Standing};
use crate::policy::{PlaceContext, Policy, QueueKey};
use crate::time::Time;

/// What the scheduler keeps for a round-based policy.
#[derive(Debug)]
pub(super) struct RoundState {
    pub(super) interval: Time,
    pub(super) backfill: bool,
    /// The planner assigns jobs (`gavel`); otherwise a tick runs the queue order's pass.
    pub(super) assigns: bool,
    /// The current round (`now / interval` at its tick); 0 before the first tick.
    pub(super) round: u64,
    /// Launches the current round planned that have not happened yet, highest priority first.
    pub(super) pending: Vec<Planned>,
    /// Jobs preempted at this round's boundary: backfill leaves them for a later round.
    pub(super) preempted: IdMap<JobId, ()>,
    /// A tick asked for the queue order's ordinary pass.
    pub(super) queue_pass_due: bool,
    /// Buffers kept between ticks and passes, so a round allocates nothing once warm: the
    /// tick's active jobs, and the launches a pass leaves pending.
    jobs_buf: Vec<RoundJob>,
    pending_buf: Vec<Planned>,
    standing_buf: IdMap<JobId, (bool, Standing)>,
    order_buf: Vec<(u64, u32)>,
    sorted_buf: Vec<RoundJob>,
}

/// A launch a round planned.
#[derive(Clone, Debug)]
pub(super) struct Planned {
    pub(super) job: JobId,
    /// The model it must run on (`None`: a CPU-only job).
    pub(super) model: Option<ModelId>,
    pub(super) order: Option<OrderReason>,
    /// What it asks for, on `model`.
    devices: DeviceRequest,
    /// It is queued and was told it waits for devices (`WaitReason::Devices`): while too few
    /// are free, a pass has nothing to do or say for it. A queued job leaves the queue only
    /// by a launch (which takes it out of `pending`) or by ending (`forget_planned`).
    waits_for_devices: bool,
}

impl Planned {
    pub(super) fn new(job: JobId, model: Option<ModelId>, order: Option<OrderReason>, mut devices: DeviceRequest) -> Planned {
        if let Some(m) = model {
            devices.models = ModelSet::only(m);
        }
        Planned { job, model, order, devices, waits_for_devices: false }
    }
}

impl RoundState {
    pub(super) fn for_policy(policy: &Policy) -> Option<RoundState> {
        let planner = policy.rounds.as_ref()?;
        Some(RoundState {
            interval: planner.interval(),
            backfill: planner.backfill(),
            assigns: planner.assigns(),
            round: 0,
            pending: Vec::new(),
            preempted: IdMap::default(),
            queue_pass_due: false,
            jobs_buf: Vec::new(),
            pending_buf: Vec::new(),
            standing_buf: IdMap::default(),
            order_buf: Vec::new(),
            sorted_buf: Vec::new(),
        })
    }

    fn next_tick(&self, now: Time) -> (u64, Time) {
        let step = self.interval.as_micros().max(1);
        let next = now.as_micros() / step + 1;
        (next, Time::from_micros(next * step))
    }
}

impl Scheduler {
    /// Sets the timer for the first round boundary after now (at construction: `round_s`).
    pub(super) fn arm_round_timer(&mut self) {
        if let Some(state) = &self.rounds {
            let (_, at) = state.next_tick(self.now);
            self.timers.insert((at, TimerKind::Round, JobId(0), 0));
        }
    }

    /// What the round planner did so far, for measurements; `None` without rounds.
    pub fn round_stats(&self) -> Option<RoundStats> {
        self.policy.rounds.as_ref().map(|r| r.stats())
    }

    /// The current round (0 before the first tick); `None` without rounds.
    pub fn round(&self) -> Option<u64> {
        self.rounds.as_ref().map(|r| r.round)
    }

    /// Puts a job in the queue of a round-based policy: it waits for the next round (or for
    /// idle devices, with backfill).
    pub(super) fn enqueue_for_round(&mut self, id: JobId, slot: (QueueKey, u64)) {
        self.queue.insert(slot, id);
        if self.policy.tenant_order.is_some() {
            let tenant = self.jobs[&id].spec.tenant;
            self.tenants.queues.entry(tenant).or_default().insert(slot, id);
        }
        let Some(state) = &self.rounds else { return };
        let (round, at) = state.next_tick(self.now);
        self.needs_pass |= state.backfill;
        self.note_waiting(id, WaitReason::NextRound { round, at_s: at.as_secs_f64() });
    }

    /// A round boundary: ask the planner, preempt what it did not choose, queue the launches.
    pub(super) fn on_round_tick(&mut self) {
        let Some(state) = &mut self.rounds else { return };
        let interval = state.interval.as_micros().max(1);
        let round = self.now.as_micros() / interval;
        state.round = round;
        state.pending.clear();
        state.preempted.clear();
        let assigns = state.assigns;
        let mut jobs = std::mem::take(&mut state.jobs_buf);
        let mut order = std::mem::take(&mut state.order_buf);
        let mut sorted = std::mem::take(&mut state.sorted_buf);
        let (_, next) = state.next_tick(self.now);
        self.timers.insert((next, TimerKind::Round, JobId(0), 0));

        jobs.clear();
        jobs.extend(self.jobs.iter().filter(|(_, e)| e.state != JobPhase::Preempting).map(|(&id, e)| {
                let running = matches!(e.state, JobPhase::Launching | JobPhase::Running);
                let running_on = e.allocation.as_ref().and_then(|a| {
                    let mut models = a.devices.iter().map(|d| self.cluster.device(d.device).model);
                    let first = models.next()?;
                    models.all(|m| m == first).then_some(first)
                });
                RoundJob {
                    id,
                    seq: e.seq,
                    class: e.spec.class,
                    devices: e.spec.devices,
                    submitted: e.submitted,
                    running,
                    running_on,
                    run_started: e.run_started,
                }
            }));
        // In submission order: sort small keys, then move each job once.
        order.clear();
        order.extend(jobs.iter().enumerate().map(|(i, j)| (j.seq, i as u32)));
        order.sort_unstable();
        sorted.clear();
        sorted.extend(order.iter().map(|&(_, i)| jobs[i as usize].clone()));
        std::mem::swap(&mut jobs, &mut sorted);
        if let Some(state) = &mut self.rounds {
            state.sorted_buf = sorted;
            state.order_buf = order;
        }
        let mut devices_by_model = vec![0u32; self.cluster.catalogue().len()];
        for d in self.cluster.devices() {
            if d.healthy && self.cluster.node(d.node).up {
                devices_by_model[d.model.index()] += 1;
            }
        }
        let input = RoundInput { round, now: self.now, jobs: &jobs, devices_by_model: &devices_by_model };
        let plan = self.policy.rounds.as_mut().expect("a round state has a planner").plan(&input);
        let (chosen, others, keep_running) = match plan {
            RoundPlan::Assign { chosen, others } => (chosen, others, false),
            RoundPlan::KeepRunning => (Vec::new(), Vec::new(), true),
            RoundPlan::QueuePass => {
                if let Some(state) = &mut self.rounds {
                    state.queue_pass_due = true;
                    state.jobs_buf = jobs;
                }
                self.needs_pass = true;
                return;
            }
        };
        debug_assert!(assigns, "a planner that assigns says so");

        let state = self.rounds.as_mut().expect("checked above");
        // Each active job's standing, and whether it was chosen.
        let mut standing = std::mem::take(&mut state.standing_buf);
        standing.clear();
        standing.extend(chosen.iter().map(|s| (s.job, (true, *s))).chain(others.iter().map(|s| (s.job, (false, *s)))));
        let grace = self.policy.preemption.grace;
        let mut pending = std::mem::take(&mut state.pending);
        pending.clear();
        let mut preempted: Vec<JobId> = Vec::new();
        // Running jobs first, in submission order, so the decisions come out in a fixed order.
        for job in jobs.iter().filter(|j| j.running && j.devices.count > 0 && !keep_running) {
            let reason = match standing.get(&job.id) {
                Some((true, s)) if s.model.is_some() && s.model == job.running_on => continue,
                Some((true, s)) => PreemptReason::RoundEnd { round, share: s.share, received: s.received, priority: s.priority, moved_to: s.model },
                other => {
                    let s = other.map(|(_, s)| s);
                    PreemptReason::RoundEnd {
                        round,
                        share: s.map_or(0.0, |s| s.share),
                        received: s.map_or(0.0, |s| s.received),
                        priority: s.and_then(|s| s.priority),
                        moved_to: None,
                    }
                }
            };
            self.begin_preempt(job.id, reason, grace);
            preempted.push(job.id);
        }
        for s in &chosen {
            let Some(model) = s.model else { continue };
            let Some(entry) = self.jobs.get(&s.job) else { continue };
            if entry.state != JobPhase::Running && entry.state != JobPhase::Launching {
                pending.push(Planned::new(s.job, Some(model), Some(s.order_reason(round, model)), entry.spec.devices));
            }
        }
        // CPU-only jobs take no part in the allocation: they start at every round.
        for job in jobs.iter().filter(|j| !j.running && j.devices.count == 0) {
            pending.push(Planned::new(job.id, None, None, job.devices));
        }
        let state = self.rounds.as_mut().expect("checked above");
        state.standing_buf = standing;
        state.pending = pending;
        state.preempted.extend(preempted.into_iter().map(|j| (j, ())));
        state.jobs_buf = jobs;
        self.needs_pass = true;
    }

    /// The pass of a round-based policy. Returns whether the queue order's ordinary pass
    /// should run as well (a tick of a planner that does not assign, or its backfill).
    pub(super) fn run_round_pass(&mut self) -> bool {
        let Some(state) = &mut self.rounds else { return true };
        if !state.assigns {
            let due = std::mem::take(&mut state.queue_pass_due);
            return due || state.backfill;
        }
        let round = state.round;
        let backfill = state.backfill;
        let mut pending = std::mem::take(&mut state.pending);
        let mut still = std::mem::take(&mut state.pending_buf);
        still.clear();
        for mut planned in pending.drain(..) {
            let d = planned.devices;
            let whole = d.count > 0 && !d.is_fractional();
            // Most retries happen while the devices are still held by jobs in their grace
            // period: answer those from the free count, without a placement, and for a job
            // already told so, without looking it up.
            let free = whole.then(|| self.cluster.whole_free_total(ModelKey::for_set(d.models)));
            if planned.waits_for_devices && free.is_some_and(|f| f < d.count) {
                still.push(planned);
                continue;
            }
            let job = planned.job;
            let Some(entry) = self.jobs.get(&job) else { continue };
            match entry.state {
                JobPhase::Queued => {}
                // Being evicted (it moves to another model): it starts once it is back.
                JobPhase::Preempting => {
                    still.push(planned);
                    continue;
                }
                JobPhase::Launching | JobPhase::Running => continue,
            }
            if let Some(free) = free.filter(|&f| f < d.count) {
                self.note_waiting(job, WaitReason::Devices { needed: d.count, free });
                planned.waits_for_devices = true;
                still.push(planned);
                continue;
            }
            let mut spec = entry.spec.clone();
            spec.devices = d;
            match self.policy.placement.place(&self.cluster, &spec, &PlaceContext::new(self.now, entry.submitted)) {
                Ok(placed) => self.launch(job, placed, planned.order, None),
                Err(why) => {
                    self.note_waiting(job, why);
                    planned.waits_for_devices = false;
                    still.push(planned);
                }
            }
        }
        let planned_all = still.is_empty();
        if let Some(state) = &mut self.rounds {
            state.pending = still;
            state.pending_buf = pending;
        }
        if backfill && planned_all {
            self.backfill_between_rounds(round);
        }
        false
    }

    /// A job that ended (or was cancelled) no longer launches this round.
    pub(super) fn forget_planned(&mut self, job: JobId) {
        if let Some(state) = &mut self.rounds {
            state.pending.retain(|p| p.job != job);
        }
    }

    /// Starts queued jobs on idle devices, in queue order, skipping those preempted at this
    /// round's boundary and those that cannot fit in what is free.
    fn backfill_between_rounds(&mut self, round: u64) {
        let queued: Vec<JobId> = self.queue.values().copied().collect();
        for job in queued {
            let whole_free = self.cluster.whole_free_total(ModelKey::for_set(ModelSet::ANY));
            let Some(entry) = self.jobs.get(&job) else { continue };
            let d = entry.spec.devices;
            if d.count > 0 && !d.is_fractional() && d.count > whole_free {
                if whole_free == 0 {
                    break;
                }
                continue;
            }
            if self.rounds.as_ref().is_some_and(|s| s.preempted.contains_key(&job)) {
                continue;
            }
            if let Ok(placed) = self.policy.placement.place(&self.cluster, &entry.spec, &PlaceContext::new(self.now, entry.submitted)) {
                self.launch(job, placed, Some(OrderReason::BetweenRounds { round }), None);
            }
        }
    }
}
