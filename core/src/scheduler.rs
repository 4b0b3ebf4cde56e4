//! The `Scheduler`: a state machine with no I/O and no clock, in the shape of quinn-proto.
//!
//! Drivers (the simulator, the executor) feed it facts with `handle_event(now, ..)` and
//! `handle_timeout(now)`, then drain `poll_decision()` (commands they must carry out),
//! `poll_notice()` (explanations) and `poll_timeout()` (when to call back). The scheduler
//! updates its view of the cluster as soon as it decides: a launched job's resources are
//! taken when `Launch` is emitted, and a preempted job's are freed only when the driver
//! confirms with `JobEvicted` (or `JobFinished`).
//!
//! Queue discipline is strict: jobs are tried in queue order and the pass stops at the first
//! job that cannot start, so after every input either the queue is empty or its head is
//! blocked. That invariant lets a submission behind a blocked head skip the pass entirely.

use crate::cluster::{Allocation, ClusterState};
use crate::event::{Decision, Event, Notice, PreemptReason, RejectReason, WaitReason};
use crate::policy::backfill;
use crate::cluster::{Limit, ModelKey};
use crate::ids::{DeviceId, JobId, NodeId};
use crate::job::{JobPhase, JobSpec, Outcome, WHOLE_DEVICE_MILLI};
use crate::ids::TenantId;
use crate::policy::queue::{Capacity, TenantUsage};
use crate::policy::{OrderView, Policy, QueueKey};
use crate::time::Time;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

mod pass;
mod preempt;
mod reserve;
mod restore;
mod rounds;

use reserve::BackfillState;

pub use restore::{BackfillSnapshot, JobSnapshot, PlannedLaunch, RestoreError, RestoredJob, RestoredRun, RoundSnapshot, RunState, SavedUsage};

#[derive(Clone, Debug)]
struct JobEntry {
    spec: JobSpec,
    state: JobPhase,
    /// Submission sequence: breaks queue-key ties, so the order is total.
    seq: u64,
    submitted: Time,
    /// When the job last entered the queue (submission or requeue): placements that wait
    /// for locality measure their wait from here.
    queued_since: Time,
    queue_key: QueueKey,
    /// Device-seconds over completed runs (LAS's service).
    attained_device_s: f64,
    /// Promoted to the first LAS queue for having starved.
    promoted: bool,
    /// Counts entries into the queue and launches: timers carry it, so stale ones are ignored.
    timer_epoch: u32,
    allocation: Option<Allocation>,
    run_started: Time,
    attained: Time,
    last_wait: Option<(u8, u64)>,
    /// The last reserved start announced for this job (backfilling), to announce changes only.
    last_reserved: Option<Option<Time>>,
    /// For a queue head: the victims being evicted for it.
    pending_victims: Vec<JobId>,
    /// For a victim: the job it is being evicted for.
    preempted_for: Option<JobId>,
    cancel_requested: bool,
    /// Launched beyond its tenant's quota, on borrowed devices: reclaimable.
    borrowed: bool,
}

/// Multiplicative hashing for integer ids: fast, and deterministic across runs.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// Preemption was deferred by the minimum run time: try again.
    RetryPreemption,
    /// A queued job's key changes (LAS starvation promotion).
    Rekey,
    /// A running job's preemption rank changes (LAS demotion).
    Rerank,
    /// A round boundary of a round-based policy (`rounds.rs`).
    Round,
    /// A queued job's locality wait (`topology`) expires: try it again, now willing to span.
    LocalityExpired,
}

pub struct Scheduler {
    policy: Policy,
    cluster: ClusterState,
    jobs: IdMap<JobId, JobEntry>,
    queue: BTreeMap<(QueueKey, u64), JobId>,
    /// Running jobs as preemption candidates: lowest tier first, then latest start first
    /// (the least work lost). Kept only when the policy preempts.
    victims: BTreeSet<(i32, Reverse<Time>, JobId)>,
    decisions: VecDeque<Decision>,
    notices: VecDeque<Notice>,
    now: Time,
    next_seq: u64,
    /// The tenant-rounds order's and the quota stage's state.
    tenants: Tenants,
    /// Pending timers: (when, what, job, the job's timer epoch when set).
    timers: BTreeSet<(Time, TimerKind, JobId, u32)>,
    needs_pass: bool,
    /// Jobs holding resources (launching, running or being preempted).
    holding: BTreeSet<JobId>,
    /// Counts changes to the cluster (allocations, releases, health, nodes).
    cluster_version: u64,
    /// The reserve stage's state (`reserve.rs`).
    backfill: BackfillState,
    /// Round-based policies only (`rounds.rs`).
    rounds: Option<rounds::RoundState>,
}

/// Per-tenant state, by tenant id.
struct Tenants {
    /// Per-tenant FIFO queues, kept beside `queue` when the policy orders tenants.
    queues: BTreeMap<TenantId, BTreeMap<(QueueKey, u64), JobId>>,
    /// What each tenant holds and has used.
    usage: Vec<TenantUsage>,
    capacity: Capacity,
    /// Whether tenants' usage is tracked (the policy ranks tenants), and its half-life; fixed at
    /// construction, since the pass borrows the order itself.
    tracks_usage: bool,
    usage_half_life: Option<Time>,
    /// Devices each tenant holds, when the policy has quotas.
    quota_used: Vec<f64>,
}

impl Scheduler {
    pub fn new(policy: Policy, cluster: ClusterState) -> Scheduler {
        let capacity = Self::capacity_of(&cluster);
        let tracks_usage = policy.tenant_order.is_some();
        let usage_half_life = policy.tenant_order.as_ref().and_then(|o| o.half_life());
        let rounds = rounds::RoundState::for_policy(&policy);
        let mut scheduler = Scheduler {
            tenants: Tenants { queues: BTreeMap::new(), usage: Vec::new(), capacity, tracks_usage, usage_half_life, quota_used: Vec::new() },
            policy,
            cluster,
            jobs: IdMap::default(),
            queue: BTreeMap::new(),
            victims: BTreeSet::new(),
            decisions: VecDeque::new(),
            notices: VecDeque::new(),
            now: Time::ZERO,
            next_seq: 0,
            timers: BTreeSet::new(),
            needs_pass: false,
            holding: BTreeSet::new(),
            cluster_version: 0,
            backfill: BackfillState::default(),
            rounds,
        };
        scheduler.arm_round_timer();
        scheduler
    }

    // ---- inputs ---------------------------------------------------------------------------

    pub fn handle_event(&mut self, now: Time, event: Event) {
        self.advance(now);
        match event {
            Event::JobSubmitted { spec } => self.on_submitted(spec),
            Event::JobCancelled { job } => self.on_cancelled(job),
            Event::JobStarted { job } => self.on_started(job),
            Event::JobFinished { job, outcome } => self.on_finished(job, outcome),
            Event::JobEvicted { job } => self.on_evicted(job),
            Event::NodeAdded { spec } => {
                self.cluster_version += 1;
                self.cluster.add_node(spec);
                self.tenants.capacity = Self::capacity_of(&self.cluster);
                self.needs_pass = true;
            }
            Event::NodeUp { node } => self.on_node_up(node, true),
            Event::NodeDown { node } => self.on_node_up(node, false),
            Event::NodeDrain { node } => self.on_node_drain(node),
            Event::DeviceFailed { device } => self.on_device_health(device, false),
            Event::DeviceDrain { device } => self.on_device_drain(device),
            Event::DeviceRecovered { device } => self.on_device_health(device, true),
        }
        self.run_pass_if_needed();
    }

    pub fn handle_timeout(&mut self, now: Time) {
        self.advance(now);
        while let Some(&(at, kind, job, epoch)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.on_timer(kind, job, epoch);
        }
        self.run_pass_if_needed();
    }

    // ---- outputs --------------------------------------------------------------------------

    #[must_use]
    pub fn poll_decision(&mut self) -> Option<Decision> {
        self.decisions.pop_front()
    }

    #[must_use]
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// When the scheduler wants `handle_timeout` called, if at all.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.first().map(|&(at, ..)| at)
    }

    // ---- read-only view -------------------------------------------------------------------

    pub fn cluster(&self) -> &ClusterState {
        &self.cluster
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn now(&self) -> Time {
        self.now
    }

    pub fn job_state(&self, job: JobId) -> Option<JobPhase> {
        self.jobs.get(&job).map(|e| e.state)
    }

    pub fn allocation(&self, job: JobId) -> Option<&Allocation> {
        self.jobs.get(&job).and_then(|e| e.allocation.as_ref())
    }

    /// Running time accumulated over completed runs (the current run not included).
    pub fn attained(&self, job: JobId) -> Option<Time> {
        self.jobs.get(&job).map(|e| e.attained)
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Jobs the scheduler tracks: queued, launching, running or being preempted.
    pub fn live_jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Queued jobs in queue order.
    pub fn queued(&self) -> impl Iterator<Item = JobId> + '_ {
        self.queue.values().copied()
    }

    // ---- event handlers -------------------------------------------------------------------

    fn advance(&mut self, now: Time) {
        debug_assert!(now >= self.now, "time went backwards: {now} after {}", self.now);
        self.now = self.now.max(now);
    }

    fn ignored(&mut self, event: &str, job: JobId, why: &str) {
        self.notices.push_back(Notice::Ignored { event: format!("{event} {job}"), why: why.to_string() });
    }

    fn rejection(&self, spec: &JobSpec) -> Option<RejectReason> {
        if self.jobs.contains_key(&spec.id) {
            return Some(RejectReason::DuplicateId);
        }
        let d = spec.devices;
        if d.share_milli == 0 || d.share_milli > WHOLE_DEVICE_MILLI || (d.is_fractional() && d.count != 1) {
            return Some(RejectReason::InvalidShare { count: d.count, share_milli: d.share_milli });
        }
        if d.count > 0 {
            let cluster_has = self.cluster.capacity_total(ModelKey::for_set(d.models));
            if d.count > cluster_has {
                return Some(RejectReason::TooManyDevices { requested: d.count, cluster_has });
            }
        }
        let (cpu, mem) = if d.is_fractional() { (spec.cpu_milli, spec.mem_mib) } else { ClusterState::node_demand(spec, d.count.min(1)) };
        if cpu > self.cluster.max_node_cpu_milli() {
            return Some(RejectReason::TooLargeForAnyNode { limit: Limit::Cpu, needed: cpu as u64, largest_node: self.cluster.max_node_cpu_milli() as u64 });
        }
        if mem > self.cluster.max_node_mem_mib() {
            return Some(RejectReason::TooLargeForAnyNode { limit: Limit::Memory, needed: mem, largest_node: self.cluster.max_node_mem_mib() });
        }
        None
    }

    fn on_submitted(&mut self, spec: JobSpec) {
        if let Some(reason) = self.rejection(&spec) {
            self.decisions.push_back(Decision::Reject { job: spec.id, reason });
            return;
        }
        self.policy.placement.observe(&spec);
        let seq = self.next_seq;
        self.next_seq += 1;
        let view = OrderView { submitted: self.now, ..OrderView::default() };
        let queue_key = self.policy.queue.key(&spec, &view);
        let id = spec.id;
        self.jobs.insert(
            id,
            JobEntry {
                spec,
                state: JobPhase::Queued,
                seq,
                submitted: self.now,
                queued_since: self.now,
                queue_key,
                attained_device_s: 0.0,
                promoted: false,
                timer_epoch: 0,
                allocation: None,
                run_started: Time::ZERO,
                attained: Time::ZERO,
                last_wait: None,
                last_reserved: None,
                pending_victims: Vec::new(),
                preempted_for: None,
                cancel_requested: false,
                borrowed: false,
            },
        );
        self.enqueue(id);
    }

    /// Puts a job in the queue. Behind a blocked head nothing can change, so the pass is
    /// skipped and the job is told why it waits.
    fn enqueue(&mut self, id: JobId) {
        self.enter_queue(id, self.now);
        let entry = &self.jobs[&id];
        let slot = (entry.queue_key, entry.seq);
        if self.rounds.is_some() {
            return self.enqueue_for_round(id, slot);
        }
        if self.policy.tenant_order.is_some() {
            self.queue.insert(slot, id);
            let tenant_queue = self.tenants.queues.entry(entry.spec.tenant).or_default();
            let head = tenant_queue.first_key_value().map(|(_, &j)| j);
            tenant_queue.insert(slot, id);
            if let Some(head) = head {
                self.note_waiting(id, WaitReason::BehindHead { head });
            }
            self.needs_pass = true;
            return;
        }
        let head = self.queue.first_key_value().map(|(&k, &j)| (k, j));
        self.queue.insert(slot, id);
        match head {
            Some((head_slot, head_job)) if head_slot < slot && !self.needs_pass => {
                self.note_waiting(id, WaitReason::BehindHead { head: head_job });
                // Behind a blocked head a job may still start by backfilling, and with quotas
                // the job at the front may be one held by its quota, which does not block.
                if self.policy.backfill.enabled() || self.policy.quotas.any() {
                    self.needs_pass = !self.backfill_new_job(id, slot);
                }
            }
            _ => self.needs_pass = true,
        }
    }

    fn on_cancelled(&mut self, job: JobId) {
        let Some(entry) = self.jobs.get_mut(&job) else {
            return self.ignored("job_cancelled", job, "unknown or finished job");
        };
        match entry.state {
            JobPhase::Queued => {
                let slot = (entry.queue_key, entry.seq);
                self.queue.remove(&slot);
                if let Some(q) = self.tenants.queues.get_mut(&entry.spec.tenant) {
                    q.remove(&slot);
                }
                self.forget(job);
                self.notices.push_back(Notice::Cancelled { job });
                self.needs_pass = true;
            }
            JobPhase::Launching | JobPhase::Running => {
                entry.cancel_requested = true;
                self.begin_preempt(job, PreemptReason::Cancelled, self.policy.preemption.grace);
            }
            JobPhase::Preempting => entry.cancel_requested = true,
        }
    }

    fn on_started(&mut self, job: JobId) {
        match self.jobs.get_mut(&job) {
            Some(entry) if entry.state == JobPhase::Launching => {
                // The victim key holds the start time: re-key it, or the stale key outlives the
                // run (a queued or finished job offered as a victim).
                let launched_key = Self::victim_key(entry, job);
                entry.state = JobPhase::Running;
                entry.run_started = self.now;
                if self.victims.remove(&launched_key) {
                    self.victims.insert(Self::victim_key(entry, job));
                }
                if self.policy.backfill.enabled() {
                    if let Some(alloc) = &entry.allocation {
                        self.backfill.device_ends.extend(&self.cluster, alloc, backfill::expected_end(&entry.spec, entry.run_started, Time::ZERO));
                    }
                }
            }
            // A preemption can overtake the acknowledgement of a launch.
            Some(entry) if entry.state == JobPhase::Preempting => entry.run_started = self.now,
            _ => self.ignored("job_started", job, "job was not launching"),
        }
    }

    fn on_finished(&mut self, job: JobId, _outcome: Outcome) {
        match self.jobs.get(&job).map(|e| e.state) {
            Some(JobPhase::Launching | JobPhase::Running | JobPhase::Preempting) => {
                self.release(job);
                self.forget(job);
                self.needs_pass = true;
            }
            Some(JobPhase::Queued) => self.ignored("job_finished", job, "job was queued, not running"),
            None => self.ignored("job_finished", job, "unknown or finished job"),
        }
    }

    fn on_evicted(&mut self, job: JobId) {
        if self.jobs.get(&job).map(|e| e.state) != Some(JobPhase::Preempting) {
            return self.ignored("job_evicted", job, "job was not being preempted");
        }
        self.release(job);
        self.needs_pass = true;
        let entry = self.jobs.get_mut(&job).expect("checked above");
        if entry.cancel_requested {
            self.forget(job);
            self.notices.push_back(Notice::Cancelled { job });
            return;
        }
        entry.state = JobPhase::Queued;
        entry.last_wait = None;
        entry.promoted = false;
        entry.queue_key = self.policy.queue.key(&entry.spec, &Self::view(entry));
        let attained_s = entry.attained.as_secs_f64();
        self.notices.push_back(Notice::Requeued { job, attained_s });
        self.enqueue(job);
    }

    fn on_node_up(&mut self, node: NodeId, up: bool) {
        if node.index() >= self.cluster.nodes().len() {
            self.notices.push_back(Notice::Ignored { event: format!("node event {node}"), why: "unknown node".into() });
            return;
        }
        self.cluster_version += 1;
        self.cluster.set_node_up(node, up);
        if up {
            self.needs_pass = true;
        } else {
            let affected = self.jobs_where(|a| a.nodes.iter().any(|n| n.node == node));
            for job in affected {
                self.begin_preempt(job, PreemptReason::NodeDown { node }, Time::ZERO);
            }
        }
    }

    fn on_node_drain(&mut self, node: NodeId) {
        if node.index() >= self.cluster.nodes().len() {
            self.notices.push_back(Notice::Ignored { event: format!("node event {node}"), why: "unknown node".into() });
            return;
        }
        self.cluster_version += 1;
        self.cluster.set_node_up(node, false);
        let affected = self.jobs_where(|a| a.nodes.iter().any(|n| n.node == node));
        let grace = self.policy.preemption.grace;
        for job in affected {
            self.begin_preempt(job, PreemptReason::Maintenance { node }, grace);
        }
    }

    fn on_device_drain(&mut self, device: DeviceId) {
        if device.index() >= self.cluster.devices().len() {
            self.notices.push_back(Notice::Ignored { event: format!("device event {device}"), why: "unknown device".into() });
            return;
        }
        self.cluster_version += 1;
        self.cluster.set_device_healthy(device, false);
        let affected = self.jobs_where(|a| a.devices.iter().any(|d| d.device == device));
        let grace = self.policy.preemption.grace;
        for job in affected {
            self.begin_preempt(job, PreemptReason::DeviceDrained { device }, grace);
        }
    }

    fn on_device_health(&mut self, device: DeviceId, healthy: bool) {
        if device.index() >= self.cluster.devices().len() {
            self.notices.push_back(Notice::Ignored { event: format!("device event {device}"), why: "unknown device".into() });
            return;
        }
        self.cluster_version += 1;
        self.cluster.set_device_healthy(device, healthy);
        if healthy {
            self.needs_pass = true;
        } else {
            let affected = self.jobs_where(|a| a.devices.iter().any(|d| d.device == device));
            for job in affected {
                self.begin_preempt(job, PreemptReason::DeviceFailed { device }, Time::ZERO);
            }
        }
    }

    /// Jobs holding resources that match, not already being preempted, in id order.
    fn jobs_where(&self, holds: impl Fn(&Allocation) -> bool) -> Vec<JobId> {
        let mut found: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, e)| matches!(e.state, JobPhase::Launching | JobPhase::Running))
            .filter(|(_, e)| e.allocation.as_ref().is_some_and(&holds))
            .map(|(&id, _)| id)
            .collect();
        found.sort_unstable();
        found
    }

    // ---- bookkeeping ----------------------------------------------------------------------

    fn victim_key(entry: &JobEntry, id: JobId) -> (i32, Reverse<Time>, JobId) {
        (entry.spec.priority, Reverse(entry.run_started), id)
    }

    fn begin_preempt(&mut self, job: JobId, reason: PreemptReason, grace: Time) {
        let entry = self.jobs.get_mut(&job).expect("caller checked the job exists");
        let key = Self::victim_key(entry, job);
        // The job runs on through its grace period; its attained service is booked at eviction.
        entry.state = JobPhase::Preempting;
        // A preemption plans where a head goes: no backfill may be judged on an older plan.
        self.backfill.cache = None;
        self.victims.remove(&key);
        self.decisions.push_back(Decision::Preempt { job, reason, grace });
    }

    /// Frees what a job holds; the job stays known (for a requeue) until `forget`.
    fn release(&mut self, job: JobId) {
        let entry = self.jobs.get_mut(&job).expect("caller checked the job exists");
        let key = Self::victim_key(entry, job);
        if matches!(entry.state, JobPhase::Running | JobPhase::Preempting) {
            let ran = self.now - entry.run_started;
            entry.attained += ran;
            entry.attained_device_s += entry.spec.devices.device_equivalents() * ran.as_secs_f64();
        }
        let held = entry.allocation.is_some();
        let alloc = entry.allocation.take();
        self.holding.remove(&job);
        if let Some(alloc) = alloc {
            self.cluster_version += 1;
            self.cluster.release(&alloc);
            if self.policy.backfill.enabled() {
                let (jobs, holding) = (&self.jobs, &self.holding);
                self.backfill.device_ends.release(&self.cluster, &alloc, |device| {
                    holding
                        .iter()
                        .filter_map(|j| {
                            let e = &jobs[j];
                            let holds = e.allocation.as_ref()?.devices.iter().any(|s| s.device == device);
                            holds.then(|| backfill::expected_end(&e.spec, e.run_started, Time::ZERO))
                        })
                        .max()
                        .unwrap_or(Time::ZERO)
                });
            }
        }
        let entry = self.jobs.get_mut(&job).expect("caller checked the job exists");
        if held && self.policy.quotas.cap(entry.spec.tenant).is_some() {
            if let Some(used) = self.tenants.quota_used.get_mut(entry.spec.tenant.index()) {
                *used = (*used - entry.spec.devices.device_equivalents()).max(0.0);
            }
            entry.borrowed = false;
        }
        if held {
            let (tenant, devices, cpu, mem) = (entry.spec.tenant, entry.spec.devices.device_equivalents(), entry.spec.cpu_milli as f64, entry.spec.mem_mib as f64);
            self.add_usage(tenant, -devices, -cpu, -mem);
        }
        let entry = self.jobs.get_mut(&job).expect("caller checked the job exists");
        self.victims.remove(&key);
        if let Some(for_job) = entry.preempted_for.take() {
            if let Some(head) = self.jobs.get_mut(&for_job) {
                head.pending_victims.retain(|&v| v != job);
            }
        }
    }

    fn forget(&mut self, job: JobId) {
        self.forget_planned(job);
        if let Some(entry) = self.jobs.remove(&job) {
            for victim in entry.pending_victims {
                if let Some(v) = self.jobs.get_mut(&victim) {
                    v.preempted_for = None;
                }
            }
        }
    }

    fn capacity_of(cluster: &ClusterState) -> Capacity {
        Capacity {
            devices: cluster.devices().len() as f64,
            cpu_milli: cluster.nodes().iter().map(|n| n.cpu_milli_total as f64).sum(),
            mem_mib: cluster.nodes().iter().map(|n| n.mem_mib_total as f64).sum(),
        }
    }

    fn usage_mut(&mut self, tenant: TenantId) -> &mut TenantUsage {
        if self.tenants.usage.len() <= tenant.index() {
            self.tenants.usage.resize(tenant.index() + 1, TenantUsage { as_of: self.now, ..TenantUsage::default() });
        }
        &mut self.tenants.usage[tenant.index()]
    }

    fn add_usage(&mut self, tenant: TenantId, devices: f64, cpu_milli: f64, mem_mib: f64) {
        if !self.tenants.tracks_usage {
            return;
        }
        let half_life = self.tenants.usage_half_life;
        let now = self.now;
        let usage = self.usage_mut(tenant);
        usage.advance(now, half_life);
        usage.devices = (usage.devices + devices).max(0.0);
        usage.cpu_milli = (usage.cpu_milli + cpu_milli).max(0.0);
        usage.mem_mib = (usage.mem_mib + mem_mib).max(0.0);
    }

    fn view(entry: &JobEntry) -> OrderView {
        OrderView {
            submitted: entry.submitted,
            attained: entry.attained,
            attained_device_s: entry.attained_device_s,
            promoted: entry.promoted,
        }
    }

    /// Device-seconds a job has attained up to now, its current run included.
    fn attained_now(&self, entry: &JobEntry) -> f64 {
        let running = matches!(entry.state, JobPhase::Running | JobPhase::Preempting | JobPhase::Launching);
        let current = if running { entry.spec.devices.device_equivalents() * (self.now - entry.run_started).as_secs_f64() } else { 0.0 };
        entry.attained_device_s + current
    }

    fn on_timer(&mut self, kind: TimerKind, job: JobId, epoch: u32) {
        if kind == TimerKind::Round {
            return self.on_round_tick();
        }
        let Some(entry) = self.jobs.get_mut(&job) else {
            self.needs_pass |= kind == TimerKind::RetryPreemption;
            return;
        };
        if kind == TimerKind::RetryPreemption {
            self.needs_pass = true;
            return;
        }
        if entry.timer_epoch != epoch {
            return;
        }
        match kind {
            TimerKind::Rekey if entry.state == JobPhase::Queued => {
                self.queue.remove(&(entry.queue_key, entry.seq));
                entry.promoted = true;
                entry.queue_key = self.policy.queue.key(&entry.spec, &Self::view(entry));
                self.queue.insert((entry.queue_key, entry.seq), job);
                self.needs_pass = true;
            }
            TimerKind::LocalityExpired if entry.state == JobPhase::Queued => self.needs_pass = true,
            TimerKind::Rerank if matches!(entry.state, JobPhase::Running | JobPhase::Launching) => {
                // Its rank dropped: a waiting head may now preempt it.
                self.needs_pass = true;
                let (spec, attained, started) = (entry.spec.clone(), entry.attained_device_s, entry.run_started);
                if let Some(at) = self.policy.queue.rank_changes_at(&spec, attained + spec.devices.device_equivalents() * (self.now - started).as_secs_f64() + 1e-9, self.now) {
                    // Microsecond rounding can leave the job a hair below the threshold it was
                    // timed to cross; a timer at `now` would then fire forever without time
                    // advancing, so the next check is at least a microsecond later.
                    let at = at.max(self.now + Time(1));
                    self.timers.insert((at, TimerKind::Rerank, job, epoch));
                }
            }
            _ => {}
        }
    }

    /// A job that cannot start now waits for `reason`; a locality wait also sets the timer
    /// that retries the job when its wait runs out (then the placement accepts a spread).
    fn wait_for(&mut self, job: JobId, reason: WaitReason) {
        if let WaitReason::Locality { limit_s, .. } = reason {
            let entry = &self.jobs[&job];
            let at = (entry.queued_since + Time::from_secs_f64(limit_s)).max(self.now + Time::from_micros(1));
            self.timers.insert((at, TimerKind::LocalityExpired, job, entry.timer_epoch));
        }
        self.note_waiting(job, reason);
    }

    /// Emits a `Waiting` notice unless the job already waits for the same kind of reason.
    fn note_waiting(&mut self, job: JobId, reason: WaitReason) {
        let kind = match &reason {
            WaitReason::Devices { .. } => (1, 0),
            WaitReason::NoNodeFits { limit, .. } => (2, *limit as u64),
            WaitReason::BehindHead { head } => (3, head.0),
            WaitReason::AwaitingPreemption { .. } => (4, 0),
            WaitReason::Locality { .. } => (5, 0),
            WaitReason::Reservation { head, .. } => (6, head.0),
            WaitReason::Quota { .. } => (7, 0),
            WaitReason::NextRound { .. } => (8, 0),
        };
        let entry = self.jobs.get_mut(&job).expect("waiting job is known");
        if entry.last_wait != Some(kind) {
            entry.last_wait = Some(kind);
            self.notices.push_back(Notice::Waiting { job, reason });
        }
    }

    // ---- shared by submission/launch and restoring (`restore.rs`) ---------------------------

    /// A job (re)enters the queue at `since`: a new timer epoch, and the order's rekey timer.
    fn enter_queue(&mut self, id: JobId, since: Time) {
        let entry = self.jobs.get_mut(&id).expect("queued job is known");
        entry.timer_epoch += 1;
        entry.queued_since = since;
        if let Some(at) = self.policy.queue.rekey_at(&Self::view(entry), since) {
            self.timers.insert((at, TimerKind::Rekey, id, entry.timer_epoch));
        }
    }

    /// A job takes `allocation`, its run started at `run_started` (state `Launching`): the
    /// cluster, tenant usage, quotas, the backfill profile, the victims and the rank timer
    /// account for it. The caller has taken it out of the queue.
    fn take_resources(&mut self, job: JobId, allocation: &Allocation, run_started: Time) {
        let entry = &self.jobs[&job];
        let (tenant, devices, cpu, mem) = (entry.spec.tenant, entry.spec.devices.device_equivalents(), entry.spec.cpu_milli as f64, entry.spec.mem_mib as f64);
        self.add_usage(tenant, devices, cpu, mem);
        let entry = self.jobs.get_mut(&job).expect("launched job is known");
        self.cluster.allocate(allocation);
        self.cluster_version += 1;
        entry.state = JobPhase::Launching;
        entry.run_started = run_started;
        entry.last_wait = None;
        entry.timer_epoch += 1;
        if self.policy.preemption.enabled && self.policy.queue.dynamic_rank() {
            if let Some(mut at) = self.policy.queue.rank_changes_at(&entry.spec, entry.attained_device_s, run_started) {
                // A run restored after it started: the changes already past were handled by the
                // scheduler that launched it; re-arm as its `Rerank` timers did (`on_timer`).
                while at < self.now {
                    let ran = entry.spec.devices.device_equivalents() * (at - run_started).as_secs_f64();
                    match self.policy.queue.rank_changes_at(&entry.spec, entry.attained_device_s + ran + 1e-9, at) {
                        Some(next) => at = next.max(at + Time(1)),
                        None => break,
                    }
                }
                if at >= self.now {
                    self.timers.insert((at, TimerKind::Rerank, job, entry.timer_epoch));
                }
            }
        }
        entry.allocation = Some(allocation.clone());
        entry.last_reserved = None;
        if let Some(cap) = self.policy.quotas.cap(entry.spec.tenant) {
            let t = entry.spec.tenant.index();
            if self.tenants.quota_used.len() <= t {
                self.tenants.quota_used.resize(t + 1, 0.0);
            }
            let demand = entry.spec.devices.device_equivalents();
            entry.borrowed = self.tenants.quota_used[t] + demand > cap + 1e-9;
            self.tenants.quota_used[t] += demand;
        }
        self.holding.insert(job);
        if self.policy.backfill.enabled() {
            self.backfill.device_ends.hold(&self.cluster, allocation, backfill::expected_end(&entry.spec, entry.run_started, Time::ZERO));
        }
        if self.policy.preemption.enabled {
            self.victims.insert(Self::victim_key(entry, job));
        }
    }
}
