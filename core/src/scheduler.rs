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
use crate::event::{Backfilled, BackfillKind, Decision, Event, LaunchReason, Notice, PlacementReason, PreemptReason, RejectReason, WaitReason};
use crate::policy::backfill::{self, Backfiller, BackfillMode, DeviceEnds};
use crate::cluster::{Limit, ModelKey};
use crate::ids::{DeviceId, JobId, NodeId};
use crate::job::{JobSpec, Outcome, WHOLE_DEVICE_MILLI};
use crate::ids::TenantId;
use crate::policy::queue::{Capacity, TenantUsage};
use crate::policy::{OrderView, PlaceContext, Placed, Policy, QueueKey, VictimRule};
use crate::time::Time;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::hash::{BuildHasherDefault, Hasher};

mod restore;
mod rounds;

pub use restore::{BackfillSnapshot, JobSnapshot, PlannedLaunch, RestoreError, RestoredJob, RestoredRun, RoundSnapshot, RunState, SavedUsage};

/// Where a job stands in the scheduler's eyes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Queued,
    /// `Launch` was emitted; waiting for `JobStarted`.
    Launching,
    Running,
    /// `Preempt` was emitted; waiting for `JobEvicted`.
    Preempting,
}

#[derive(Clone, Debug)]
struct JobEntry {
    spec: JobSpec,
    state: JobState,
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
    /// Per-tenant FIFO queues, kept beside `queue` when the policy orders tenants.
    tenant_queues: BTreeMap<TenantId, BTreeMap<(QueueKey, u64), JobId>>,
    /// What each tenant holds and has used, by tenant id.
    tenant_usage: Vec<TenantUsage>,
    capacity: Capacity,
    /// Whether tenants' usage is tracked (the policy ranks tenants), and its half-life; fixed at
    /// construction, since the pass borrows the order itself.
    tracks_usage: bool,
    usage_half_life: Option<Time>,
    /// Pending timers: (when, what, job, the job's timer epoch when set).
    timers: BTreeSet<(Time, TimerKind, JobId, u32)>,
    needs_pass: bool,
    /// Jobs holding resources (launching, running or being preempted).
    holding: BTreeSet<JobId>,
    /// Per device, the expected end of its holders: backfilling's profile, kept up to date
    /// only when the policy backfills.
    device_ends: DeviceEnds,
    /// Devices each tenant holds, by tenant id, when the policy has quotas.
    quota_used: Vec<f64>,
    /// Counts changes to the cluster (allocations, releases, health, nodes).
    cluster_version: u64,
    /// Backfilling's state after the last pass, reused for submissions behind the blocked head.
    backfill_cache: Option<BackfillCache>,
    /// A backfiller no longer needed, whose buffers the next pass reuses.
    spare_backfiller: Option<Backfiller>,
    /// Round-based policies only (`rounds.rs`).
    rounds: Option<rounds::RoundState>,
    /// Whether backfilling may reuse the last pass's plan (off only to check that reuse
    /// changes no decision).
    reuse_backfill_plans: bool,
}

struct BackfillCache {
    backfiller: Backfiller,
    head: JobId,
    head_slot: (QueueKey, u64),
    head_start: Option<Time>,
    cluster_version: u64,
    scan: ConservativeScan,
}

/// Conservative: what a pass learnt about the jobs it examined, to reuse its plan.
#[derive(Default)]
struct ConservativeScan {
    /// Jobs whose reservations were put off (none of them could start and no job after them
    /// could either), in queue order.
    deferred: Vec<JobId>,
    /// Jobs the placement would start, held by a reservation, with where they would go and
    /// how many reservations were made before them.
    held: Vec<(JobId, Allocation, usize)>,
}

impl Scheduler {
    pub fn new(policy: Policy, cluster: ClusterState) -> Scheduler {
        let capacity = Self::capacity_of(&cluster);
        let tracks_usage = policy.tenant_order.is_some();
        let usage_half_life = policy.tenant_order.as_ref().and_then(|o| o.half_life());
        let rounds = rounds::RoundState::for_policy(&policy);
        let mut scheduler = Scheduler {
            tracks_usage,
            usage_half_life,
            tenant_queues: BTreeMap::new(),
            tenant_usage: Vec::new(),
            capacity,
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
            device_ends: DeviceEnds::default(),
            quota_used: Vec::new(),
            cluster_version: 0,
            backfill_cache: None,
            spare_backfiller: None,
            rounds,
            reuse_backfill_plans: true,
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
                self.capacity = Self::capacity_of(&self.cluster);
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

    pub fn job_state(&self, job: JobId) -> Option<JobState> {
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
                state: JobState::Queued,
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
            let tenant_queue = self.tenant_queues.entry(entry.spec.tenant).or_default();
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
            JobState::Queued => {
                let slot = (entry.queue_key, entry.seq);
                self.queue.remove(&slot);
                if let Some(q) = self.tenant_queues.get_mut(&entry.spec.tenant) {
                    q.remove(&slot);
                }
                self.forget(job);
                self.notices.push_back(Notice::Cancelled { job });
                self.needs_pass = true;
            }
            JobState::Launching | JobState::Running => {
                entry.cancel_requested = true;
                self.begin_preempt(job, PreemptReason::Cancelled, self.policy.preemption.grace);
            }
            JobState::Preempting => entry.cancel_requested = true,
        }
    }

    fn on_started(&mut self, job: JobId) {
        match self.jobs.get_mut(&job) {
            Some(entry) if entry.state == JobState::Launching => {
                // The victim key holds the start time: re-key it, or the stale key outlives the
                // run (a queued or finished job offered as a victim).
                let launched_key = Self::victim_key(entry, job);
                entry.state = JobState::Running;
                entry.run_started = self.now;
                if self.victims.remove(&launched_key) {
                    self.victims.insert(Self::victim_key(entry, job));
                }
                if self.policy.backfill.enabled() {
                    if let Some(alloc) = &entry.allocation {
                        self.device_ends.extend(&self.cluster, alloc, backfill::expected_end(&entry.spec, entry.run_started, Time::ZERO));
                    }
                }
            }
            // A preemption can overtake the acknowledgement of a launch.
            Some(entry) if entry.state == JobState::Preempting => entry.run_started = self.now,
            _ => self.ignored("job_started", job, "job was not launching"),
        }
    }

    fn on_finished(&mut self, job: JobId, _outcome: Outcome) {
        match self.jobs.get(&job).map(|e| e.state) {
            Some(JobState::Launching | JobState::Running | JobState::Preempting) => {
                self.release(job);
                self.forget(job);
                self.needs_pass = true;
            }
            Some(JobState::Queued) => self.ignored("job_finished", job, "job was queued, not running"),
            None => self.ignored("job_finished", job, "unknown or finished job"),
        }
    }

    fn on_evicted(&mut self, job: JobId) {
        if self.jobs.get(&job).map(|e| e.state) != Some(JobState::Preempting) {
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
        entry.state = JobState::Queued;
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
            .filter(|(_, e)| matches!(e.state, JobState::Launching | JobState::Running))
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
        entry.state = JobState::Preempting;
        // A preemption plans where a head goes: no backfill may be judged on an older plan.
        self.backfill_cache = None;
        self.victims.remove(&key);
        self.decisions.push_back(Decision::Preempt { job, reason, grace });
    }

    /// Frees what a job holds; the job stays known (for a requeue) until `forget`.
    fn release(&mut self, job: JobId) {
        let entry = self.jobs.get_mut(&job).expect("caller checked the job exists");
        let key = Self::victim_key(entry, job);
        if matches!(entry.state, JobState::Running | JobState::Preempting) {
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
                self.device_ends.release(&self.cluster, &alloc, |device| {
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
            if let Some(used) = self.quota_used.get_mut(entry.spec.tenant.index()) {
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
        if self.tenant_usage.len() <= tenant.index() {
            self.tenant_usage.resize(tenant.index() + 1, TenantUsage { as_of: self.now, ..TenantUsage::default() });
        }
        &mut self.tenant_usage[tenant.index()]
    }

    fn add_usage(&mut self, tenant: TenantId, devices: f64, cpu_milli: f64, mem_mib: f64) {
        if !self.tracks_usage {
            return;
        }
        let half_life = self.usage_half_life;
        let now = self.now;
        let usage = self.usage_mut(tenant);
        usage.advance(now, half_life);
        usage.devices = (usage.devices + devices).max(0.0);
        usage.cpu_milli = (usage.cpu_milli + cpu_milli).max(0.0);
        usage.mem_mib = (usage.mem_mib + mem_mib).max(0.0);
    }

    /// The pass for orders that rank tenants: each round tries the heads of the tenants'
    /// queues in rank order and starts the first that fits; a tenant whose head does not fit
    /// is passed over. Rounds repeat until no head can start.
    fn run_tenant_pass(&mut self) {
        let Some(order) = self.policy.tenant_order.take() else { return };
        let half_life = order.half_life();
        loop {
            let now = self.now;
            for usage in &mut self.tenant_usage {
                usage.advance(now, half_life);
            }
            let mut heads: Vec<(f64, u64, TenantId, JobId)> = Vec::new();
            for (&tenant, q) in &self.tenant_queues {
                if let Some((&(_, seq), &job)) = q.first_key_value() {
                    if self.tenant_usage.len() <= tenant.index() {
                        self.tenant_usage.resize(tenant.index() + 1, TenantUsage { as_of: now, ..TenantUsage::default() });
                    }
                    let rank = order.tenant_rank(tenant.index(), &self.tenant_usage[tenant.index()], &self.tenant_usage, &self.capacity);
                    heads.push((rank, seq, tenant, job));
                }
            }
            // Heads within their quota first; heads that would borrow only when no head
            // within its quota is blocked (borrowing takes idle devices only).
            let borrowing: BTreeSet<JobId> = heads.iter().filter(|h| matches!(self.quota_verdict(h.3), QuotaVerdict::Borrow(_))).map(|h| h.3).collect();
            heads.sort_by(|a, b| borrowing.contains(&a.3).cmp(&borrowing.contains(&b.3)).then(a.0.total_cmp(&b.0)).then(a.1.cmp(&b.1)));
            let mut blocked_within = false;
            let mut launched = false;
            // The first head that cannot start reserves (backfilling); the heads after it
            // start only if they delay no reservation.
            let mut backfiller: Option<(Backfiller, JobId, Option<Time>)> = None;
            let conservative = self.policy.backfill.mode == BackfillMode::Conservative;
            for (_, _, tenant, head) in heads {
                let entry = &self.jobs[&head];
                if !entry.pending_victims.is_empty() {
                    let victims = entry.pending_victims.clone();
                    self.note_waiting(head, WaitReason::AwaitingPreemption { victims });
                    continue;
                }
                let quota = self.quota_verdict(head);
                match &quota {
                    QuotaVerdict::Held(reason) => {
                        self.note_waiting(head, reason.clone());
                        continue;
                    }
                    QuotaVerdict::Borrow(reason) if blocked_within => {
                        self.note_waiting(head, reason.clone());
                        continue;
                    }
                    _ => {}
                }
                let entry = &self.jobs[&head];
                let end = backfill::expected_end(&entry.spec, self.now, self.now);
                let end_s = (end != Time::MAX).then(|| end.as_secs_f64());
                match self.policy.placement.place(&self.cluster, &entry.spec, &PlaceContext::new(self.now, entry.queued_since)) {
                    Ok(placed) => {
                        let mut info = None;
                        if let Some((bf, first, first_start)) = &mut backfiller {
                            if let Err(held) = bf.admit(&placed.allocation, end) {
                                let reason = WaitReason::Reservation { head: held.by, reserved_start_s: held.reserved_start.map(Time::as_secs_f64), expected_end_s: end_s };
                                self.wait_for(head, reason);
                                if conservative {
                                    let mut bf = backfiller.take().expect("present");
                                    self.reserve(&mut bf.0, head);
                                    backfiller = Some(bf);
                                }
                                continue;
                            }
                            info = Some(Backfilled {
                                mode: if conservative { BackfillKind::Conservative } else { BackfillKind::Easy },
                                head: *first,
                                reserved_start_s: first_start.map(Time::as_secs_f64),
                                expected_end_s: end_s,
                                ends_before_reservation: first_start.is_some_and(|t| end <= t),
                            });
                        }
                        let reason = order.explain(tenant.index(), &self.tenant_usage[tenant.index()], &self.tenant_usage, &self.capacity);
                        self.launch(head, placed);
                        if let Some(Decision::Launch { reason: r, .. }) = self.decisions.back_mut() {
                            r.order = reason;
                            r.backfill = info;
                        }
                        launched = true;
                        break;
                    }
                    Err(reason) => {
                        if let QuotaVerdict::Borrow(reason) = quota {
                            self.note_waiting(head, reason);
                            continue;
                        }
                        blocked_within = true;
                        if self.try_reclaim(head) {
                            let victims = self.jobs[&head].pending_victims.clone();
                            self.note_waiting(head, WaitReason::AwaitingPreemption { victims });
                            continue;
                        }
                        self.wait_for(head, reason);
                        if self.policy.backfill.enabled() {
                            match backfiller.take() {
                                None => {
                                    let mut bf = self.backfiller();
                                    let start = self.reserve(&mut bf, head).flatten();
                                    backfiller = Some((bf, head, start));
                                }
                                Some(mut bf) => {
                                    if conservative {
                                        self.reserve(&mut bf.0, head);
                                    }
                                    backfiller = Some(bf);
                                }
                            }
                        }
                    }
                }
            }
            if !launched {
                break;
            }
        }
        self.policy.tenant_order = Some(order);
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
        let running = matches!(entry.state, JobState::Running | JobState::Preempting | JobState::Launching);
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
            TimerKind::Rekey if entry.state == JobState::Queued => {
                self.queue.remove(&(entry.queue_key, entry.seq));
                entry.promoted = true;
                entry.queue_key = self.policy.queue.key(&entry.spec, &Self::view(entry));
                self.queue.insert((entry.queue_key, entry.seq), job);
                self.needs_pass = true;
            }
            TimerKind::LocalityExpired if entry.state == JobState::Queued => self.needs_pass = true,
            TimerKind::Rerank if matches!(entry.state, JobState::Running | JobState::Launching) => {
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

    // ---- the scheduling pass --------------------------------------------------------------

    fn run_pass_if_needed(&mut self) {
        if !self.needs_pass {
            return;
        }
        self.needs_pass = false;
        if self.rounds.is_some() && !self.run_round_pass() {
            return;
        }
        if self.policy.tenant_order.is_some() {
            return self.run_tenant_pass();
        }
        // Jobs held by their tenant's quota are passed over: a cap limits its tenant only.
        // Jobs that could start only by borrowing wait until no job within its quota is
        // blocked: borrowing takes idle devices, not devices someone is entitled to.
        let mut after: Option<(QueueKey, u64)> = None;
        let mut borrowers: Vec<(JobId, WaitReason)> = Vec::new();
        loop {
            let next = match after {
                None => self.queue.iter().next(),
                Some(slot) => self.queue.range((Bound::Excluded(slot), Bound::Unbounded)).next(),
            };
            let Some((&slot, &head)) = next else { break };
            let entry = &self.jobs[&head];
            if !entry.pending_victims.is_empty() {
                let victims = entry.pending_victims.clone();
                self.note_waiting(head, WaitReason::AwaitingPreemption { victims });
                return self.borrowers_wait(borrowers);
            }
            match self.quota_verdict(head) {
                QuotaVerdict::Within => {}
                QuotaVerdict::Held(reason) => {
                    self.note_waiting(head, reason);
                    after = Some(slot);
                    continue;
                }
                QuotaVerdict::Borrow(reason) => {
                    borrowers.push((head, reason));
                    after = Some(slot);
                    continue;
                }
            }
            let entry = &self.jobs[&head];
            match self.policy.placement.place(&self.cluster, &entry.spec, &PlaceContext::new(self.now, entry.queued_since)) {
                Ok(placed) => self.launch(head, placed),
                Err(reason) => {
                    if self.try_reclaim(head) || (self.policy.preemption.enabled && self.try_preempt(head)) {
                        let victims = self.jobs[&head].pending_victims.clone();
                        self.note_waiting(head, WaitReason::AwaitingPreemption { victims });
                    } else {
                        self.wait_for(head, reason);
                        if self.policy.backfill.enabled() {
                            self.backfill_behind(head, slot);
                        }
                    }
                    return self.borrowers_wait(borrowers);
                }
            }
        }
        // Nobody within a quota is blocked: jobs over theirs borrow what is idle, in order.
        for (job, reason) in borrowers {
            let entry = &self.jobs[&job];
            match self.policy.placement.place(&self.cluster, &entry.spec, &PlaceContext::new(self.now, entry.queued_since)) {
                Ok(placed) => self.launch(job, placed),
                Err(_) => self.note_waiting(job, reason),
            }
        }
    }

    fn borrowers_wait(&mut self, borrowers: Vec<(JobId, WaitReason)>) {
        for (job, reason) in borrowers {
            self.note_waiting(job, reason);
        }
    }

    /// Whether a job's tenant quota lets it start: within the quota, only by borrowing idle
    /// devices (the reason it waits if there are none), or not at all.
    fn quota_verdict(&self, job: JobId) -> QuotaVerdict {
        let spec = &self.jobs[&job].spec;
        let Some(quota) = self.policy.quotas.cap(spec.tenant) else { return QuotaVerdict::Within };
        let used = self.quota_used.get(spec.tenant.index()).copied().unwrap_or(0.0);
        if used + spec.devices.device_equivalents() <= quota + 1e-9 {
            return QuotaVerdict::Within;
        }
        let reason = WaitReason::Quota { tenant: spec.tenant, used, quota };
        if self.policy.quotas.borrow {
            QuotaVerdict::Borrow(reason)
        } else {
            QuotaVerdict::Held(reason)
        }
    }

    fn over_quota(&self, tenant: TenantId) -> Option<(f64, f64)> {
        let quota = self.policy.quotas.cap(tenant)?;
        let used = self.quota_used.get(tenant.index()).copied().unwrap_or(0.0);
        (used > quota + 1e-9).then_some((used, quota))
    }

    /// For a blocked job whose tenant is within its quota: evicts borrowed jobs of tenants
    /// over their quotas (latest started first, the least work lost) until it fits, with the
    /// policy's grace; jobs that (re)started less than the minimum run time ago are spared.
    fn try_reclaim(&mut self, head: JobId) -> bool {
        if !self.policy.quotas.any() {
            return false;
        }
        let head_tenant = self.jobs[&head].spec.tenant;
        if !matches!(self.quota_verdict(head), QuotaVerdict::Within) || self.policy.quotas.cap(head_tenant).is_none() {
            return false;
        }
        let mut candidates: Vec<(Reverse<Time>, JobId)> = self
            .holding
            .iter()
            .map(|j| (j, &self.jobs[j]))
            .filter(|(_, e)| e.borrowed && matches!(e.state, JobState::Running | JobState::Launching) && e.spec.tenant != head_tenant)
            .filter(|(_, e)| self.over_quota(e.spec.tenant).is_some())
            .map(|(&j, e)| (Reverse(e.run_started), j))
            .collect();
        candidates.sort_unstable();
        let candidates: Vec<(Time, JobId)> = candidates.into_iter().map(|(Reverse(t), j)| (t, j)).collect();
        self.evict_for(head, candidates, "borrowed jobs ran less than the minimum run time", &|s: &Scheduler, victim: JobId| {
            let tenant = s.jobs[&victim].spec.tenant;
            let (used, quota) = s.over_quota(tenant).unwrap_or((0.0, 0.0));
            PreemptReason::QuotaReclaim { for_job: head, tenant, used, quota, for_tenant: head_tenant }
        })
    }

    /// Turns off the reuse of conservative backfilling's plan between passes: every pass then
    /// builds its profile and reservations afresh. No decision or notice may change; tests use
    /// this to check it. (EASY's reuse is not exact and is not affected.)
    pub fn set_backfill_plan_reuse(&mut self, reuse: bool) {
        self.reuse_backfill_plans = reuse;
        self.backfill_cache = None;
    }

    /// The profile backfilling reasons on: every job holding resources, expected to end at its
    /// start plus its stated duration (now if overdue, never if it states none).
    fn backfiller(&mut self) -> Backfiller {
        let old = self.backfill_cache.take().map(|c| c.backfiller).or_else(|| self.spare_backfiller.take());
        Backfiller::renew(old, self.policy.backfill.mode, &self.cluster, self.now, &self.device_ends)
    }

    /// Reserves for a blocked job and announces the reservation when its start changed.
    fn reserve(&mut self, bf: &mut Backfiller, job: JobId) -> Option<Option<Time>> {
        let r = bf.reserve(&self.jobs[&job].spec)?;
        let entry = self.jobs.get_mut(&job).expect("reserved job is known");
        if entry.last_reserved != Some(r.start) {
            entry.last_reserved = Some(r.start);
            self.notices.push_back(Notice::Reserved { job, start_s: r.start.map(Time::as_secs_f64), devices: r.devices });
        }
        Some(r.start)
    }

    /// Backfilling behind the blocked `head`: reserve for it, then try the next
    /// `backfill_depth` queued jobs in queue order; each that fits now starts if it delays no
    /// reservation (EASY: the head's; conservative: of every job before it, each of which
    /// reserves in turn). See `policy::backfill`.
    fn backfill_behind(&mut self, head: JobId, head_slot: (QueueKey, u64)) {
        let version_before = self.cluster_version;
        let mut bf = self.backfiller();
        let head_start = self.reserve(&mut bf, head).flatten();
        let candidates: Vec<JobId> =
            self.queue.range((Bound::Excluded(head_slot), Bound::Unbounded)).map(|(_, &j)| j).take(self.policy.backfill.depth).collect();
        let mut scan = ConservativeScan::default();
        for job in candidates {
            self.backfill_candidate(&mut bf, job, head, head_start, &mut scan);
        }
        // EASY's profile and reservation stay valid while the cluster does not change (time
        // passing only makes them more cautious): a job submitted behind the head meanwhile
        // is checked against them alone, without a pass. Conservative's plan is reused only
        // when it is exactly what a pass would rebuild: the pass started nobody (a start
        // changes the profile the earlier reservations were made on).
        let reusable = match self.policy.backfill.mode {
            BackfillMode::Easy => true,
            BackfillMode::Conservative => version_before == self.cluster_version && !bf.walled(),
            BackfillMode::None => false,
        };
        let reuse = self.reuse_backfill_plans || self.policy.backfill.mode == BackfillMode::Easy;
        if reusable && reuse && !self.policy.quotas.any() {
            self.backfill_cache = Some(BackfillCache { backfiller: bf, head, head_slot, head_start, cluster_version: self.cluster_version, scan });
        } else {
            self.spare_backfiller = Some(bf);
        }
    }

    /// A job submitted behind the blocked head, when nothing else changed since the last pass:
    /// the one candidate that is new, if it is within the scan depth (conservative: with the
    /// jobs queued after it, re-examined on the plan of the jobs before it).
    fn backfill_new_job(&mut self, job: JobId, slot: (QueueKey, u64)) -> bool {
        let Some(cache) = self.backfill_cache.take() else { return false };
        let head_now = self.queue.first_key_value().map(|(_, &j)| j);
        if cache.cluster_version != self.cluster_version || head_now != Some(cache.head) {
            return false;
        }
        if self.policy.backfill.mode == BackfillMode::Conservative {
            return self.conservative_new_job(cache, slot);
        }
        let depth = self.policy.backfill.depth;
        let within_depth = self.queue.len() - 1 <= depth
            || self.queue.range((Bound::Excluded(cache.head_slot), Bound::Excluded(slot))).take(depth).count() < depth;
        let BackfillCache { mut backfiller, head, head_slot, head_start, scan, .. } = cache;
        if within_depth {
            self.backfill_candidate(&mut backfiller, job, head, head_start, &mut ConservativeScan::default());
        }
        self.backfill_cache = Some(BackfillCache { backfiller, head, head_slot, head_start, cluster_version: self.cluster_version, scan });
        true
    }

    /// Conservative, a job submitted at `slot` behind the blocked head with the cluster as the
    /// last pass left it: that pass's reservations for the jobs before `slot` are the ones a
    /// new pass would make (`Backfiller::advance` checks that time passing changed nothing),
    /// so only the jobs from `slot` on are examined again. False when a full pass is needed.
    fn conservative_new_job(&mut self, cache: BackfillCache, slot: (QueueKey, u64)) -> bool {
        let BackfillCache { mut backfiller, head, head_slot, head_start, mut scan, .. } = cache;
        // Time may change placements (locality waits) as well as the profile.
        let time_moved = backfiller.now() != self.now;
        if (time_moved && self.policy.placement.changes_with_time()) || !backfiller.advance(self.now) {
            return false;
        }
        let window: Vec<((QueueKey, u64), JobId)> =
            self.queue.range((Bound::Excluded(head_slot), Bound::Unbounded)).take(self.policy.backfill.depth).map(|(&s, &j)| (s, j)).collect();
        let from = window.iter().position(|&(s, _)| s == slot);
        if from.is_some() {
            // Forget what was decided for the jobs from `slot` on (the head's reservation is first).
            let slot_of = |job: &JobId| self.jobs.get(job).map(|e| (e.queue_key, e.seq));
            let keep = backfiller.reservations().iter().skip(1).take_while(|r| slot_of(&r.job).is_some_and(|s| s < slot)).count() + 1;
            backfiller.truncate(keep);
            scan.deferred.retain(|j| slot_of(j).is_some_and(|s| s < slot));
            scan.held.retain(|(j, _, _)| slot_of(j).is_some_and(|s| s < slot));
        }
        if time_moved {
            // A held job would now run later: it is still held (every reservation starts
            // after now), but perhaps first by another job's reservation.
            for (job, allocation, reservations_before) in &scan.held {
                if !backfiller.blocker_may_move(allocation) {
                    continue;
                }
                let end = backfill::expected_end(&self.jobs[job].spec, self.now, self.now);
                if let Some(held) = backfiller.blocker(allocation, end, *reservations_before) {
                    let end_s = (end != Time::MAX).then(|| end.as_secs_f64());
                    let reason = WaitReason::Reservation { head: held.by, reserved_start_s: held.reserved_start.map(Time::as_secs_f64), expected_end_s: end_s };
                    self.note_waiting(*job, reason);
                }
            }
        }
        if let Some(from) = from {
            let version_before = self.cluster_version;
            for &(_, job) in &window[from..] {
                self.backfill_candidate(&mut backfiller, job, head, head_start, &mut scan);
            }
            if version_before != self.cluster_version || backfiller.walled() {
                return true;
            }
        }
        self.backfill_cache = Some(BackfillCache { backfiller, head, head_slot, head_start, cluster_version: self.cluster_version, scan });
        true
    }

    /// One job behind the blocked `head`: it starts if it fits now and `bf` admits it (it
    /// delays no reservation); otherwise it is told why it waits (and, under conservative,
    /// reserves in turn).
    ///
    /// Conservative: a job that cannot fit now whatever the reservations has its reservation
    /// put off (`scan.deferred`) until a later job that might start needs it: jobs after the last
    /// one that might start constrain nobody in this pass.
    fn backfill_candidate(&mut self, bf: &mut Backfiller, job: JobId, head: JobId, head_start: Option<Time>, scan: &mut ConservativeScan) {
        let conservative = self.policy.backfill.mode == BackfillMode::Conservative;
        let entry = &self.jobs[&job];
        let end = backfill::expected_end(&entry.spec, self.now, self.now);
        let end_s = (end != Time::MAX).then(|| end.as_secs_f64());
        if let QuotaVerdict::Held(reason) = self.quota_verdict(job) {
            self.note_waiting(job, reason);
            return;
        }
        let entry = &self.jobs[&job];
        let d = entry.spec.devices;
        if d.count > 0 && !d.is_fractional() && self.cluster.whole_free_total(ModelKey::for_set(d.models)) < d.count {
            // Cannot fit now whatever the reservations: it keeps the reason it had.
            if conservative {
                scan.deferred.push(job);
            }
            return;
        }
        for earlier in std::mem::take(&mut scan.deferred) {
            self.reserve(bf, earlier);
        }
        let entry = &self.jobs[&job];
        if let Some(held) = bf.surely_held(&entry.spec, end) {
            let reason = WaitReason::Reservation { head: held.by, reserved_start_s: held.reserved_start.map(Time::as_secs_f64), expected_end_s: end_s };
            self.wait_for(job, reason);
            return;
        }
        let placed = self.policy.placement.place(&self.cluster, &entry.spec, &PlaceContext::new(self.now, entry.queued_since));
        match placed {
            Ok(placed) => match bf.admit(&placed.allocation, end).inspect_err(|_| {
                if conservative {
                    scan.held.push((job, placed.allocation.clone(), bf.reservations().len()));
                }
            }) {
                Ok(()) => {
                    self.launch(job, placed);
                    let info = Backfilled {
                        mode: if conservative { BackfillKind::Conservative } else { BackfillKind::Easy },
                        head,
                        reserved_start_s: head_start.map(Time::as_secs_f64),
                        expected_end_s: end_s,
                        ends_before_reservation: head_start.is_some_and(|t| end <= t),
                    };
                    if let Some(Decision::Launch { reason, .. }) = self.decisions.back_mut() {
                        reason.backfill = Some(info);
                    }
                }
                Err(held) => {
                    let reason = WaitReason::Reservation { head: held.by, reserved_start_s: held.reserved_start.map(Time::as_secs_f64), expected_end_s: end_s };
                    self.wait_for(job, reason);
                    if conservative {
                        self.reserve(bf, job);
                    }
                }
            },
            Err(reason) => {
                self.wait_for(job, reason);
                if conservative {
                    self.reserve(bf, job);
                }
            }
        }
    }

    fn launch(&mut self, job: JobId, placed: Placed) {
        let entry = self.jobs.get_mut(&job).expect("queued job is known");
        self.queue.remove(&(entry.queue_key, entry.seq));
        if let Some(q) = self.tenant_queues.get_mut(&entry.spec.tenant) {
            q.remove(&(entry.queue_key, entry.seq));
        }
        self.take_resources(job, &placed.allocation, self.now);
        let entry = &self.jobs[&job];
        let reason = LaunchReason {
            policy: self.policy.label.clone(),
            order: self.policy.queue.explain(&entry.spec, &Self::view(entry)),
            placement: PlacementReason { rule: self.policy.placement.name().into(), how: placed.how, alternatives: placed.alternatives },
            queued_after: self.queue.len() as u32,
            backfill: None,
        };
        self.decisions.push_back(Decision::Launch { job, allocation: placed.allocation, reason });
    }

    /// Running jobs of lower rank than the head (strictly: an equal or higher tier or rank is
    /// never a candidate), in the order the policy's victim rule takes them:
    /// - `lowest-tier`: least important first, then latest started (the least work lost);
    /// - `least-progress`: the least work lost since the last checkpoint first (time since the
    ///   (re)start modulo the checkpoint interval; all of it without checkpoints), then rank;
    /// - `most-attained`: the most attained device-seconds first (LAS's service), then rank.
    ///
    /// Tiers never change while a job runs, so for `priority` the sorted victim set is the
    /// candidate set; other orders rank running jobs now.
    fn preemption_candidates(&self, head_rank: i64) -> Vec<(i64, Reverse<Time>, JobId)> {
        let mut candidates: Vec<(i64, Reverse<Time>, JobId)> = if self.policy.queue.ranks_are_tiers() {
            self.victims
                .iter()
                .take_while(|&&(tier, _, _)| (tier as i64) < head_rank)
                .map(|&(tier, started, job)| (tier as i64, started, job))
                .collect()
        } else {
            let mut c: Vec<(i64, Reverse<Time>, JobId)> = self
                .victims
                .iter()
                .map(|&(_, started, job)| {
                    let e = &self.jobs[&job];
                    (self.policy.queue.rank(&e.spec, &Self::view(e), self.attained_now(e)), started, job)
                })
                .filter(|&(rank, _, _)| rank < head_rank)
                .collect();
            c.sort_unstable();
            c
        };
        match self.policy.preemption.victim {
            VictimRule::LowestTier => {}
            VictimRule::LeastProgress => {
                candidates.sort_by_cached_key(|&(rank, started, job)| (self.work_at_risk(job), rank, started, job));
            }
            VictimRule::MostAttained => {
                candidates.sort_by(|a, b| {
                    let (ea, eb) = (&self.jobs[&a.2], &self.jobs[&b.2]);
                    self.attained_now(eb).total_cmp(&self.attained_now(ea)).then(a.cmp(b))
                });
            }
        }
        candidates
    }

    /// Running time a job would lose if stopped now: since its last checkpoint (its
    /// checkpoint interval, counted from its (re)start), or since its (re)start without one.
    fn work_at_risk(&self, job: JobId) -> Time {
        let e = &self.jobs[&job];
        let ran = self.now.saturating_sub(e.run_started);
        match e.spec.checkpoint_interval {
            Some(every) if every > Time::ZERO => Time(ran.0 % every.0),
            _ => ran,
        }
    }

    /// Looks for lower-tier running jobs whose eviction lets the blocked head start. Victims
    /// are tried lowest tier first, then latest start first, releasing their resources
    /// tentatively until the head fits; only those on the nodes the head would use are evicted.
    fn try_preempt(&mut self, head: JobId) -> bool {
        let head_entry = &self.jobs[&head];
        let head_tier = head_entry.spec.priority;
        let head_rank = self.policy.queue.rank(&head_entry.spec, &Self::view(head_entry), self.attained_now(head_entry));
        let candidates: Vec<(Time, JobId)> = self.preemption_candidates(head_rank).into_iter().map(|(_, Reverse(t), j)| (t, j)).collect();
        let rule = self.policy.preemption.victim;
        self.evict_for(head, candidates, "lower-tier jobs ran less than the minimum run time", &|s: &Scheduler, victim: JobId| {
            PreemptReason::HigherTier { for_job: head, victim_tier: s.jobs[&victim].spec.priority, for_tier: head_tier, victim_rule: rule }
        })
    }

    /// Releases `candidates` (each with its (re)start time) tentatively, in order, until the
    /// head fits; then evicts those on the nodes the head would use. A candidate that
    /// (re)started less than the minimum run time ago is passed over; if the head fits only
    /// with such, a timer retries when the first becomes eligible.
    fn evict_for(&mut self, head: JobId, candidates: Vec<(Time, JobId)>, deferred_why: &str, reason: &dyn Fn(&Scheduler, JobId) -> PreemptReason) -> bool {
        let min_runtime = self.policy.preemption.min_runtime;
        let mut released: Vec<(JobId, Allocation)> = Vec::new();
        let mut earliest_eligible: Option<Time> = None;
        let mut placed = None;
        for (started, victim) in candidates {
            let eligible_at = started + min_runtime;
            if eligible_at > self.now {
                earliest_eligible = Some(earliest_eligible.map_or(eligible_at, |t: Time| t.min(eligible_at)));
                continue;
            }
            let alloc = self.jobs[&victim].allocation.clone().expect("a victim holds resources");
            self.cluster.release(&alloc);
            released.push((victim, alloc));
            let head_entry = &self.jobs[&head];
            if let Ok(p) = self.policy.placement.place(&self.cluster, &head_entry.spec, &PlaceContext::new(self.now, head_entry.queued_since)) {
                placed = Some(p);
                break;
            }
        }
        for (_, alloc) in &released {
            self.cluster.allocate(alloc);
        }
        let Some(placed) = placed else {
            if let Some(t) = earliest_eligible {
                self.timers.insert((t, TimerKind::RetryPreemption, head, 0));
                let why = format!("{deferred_why} of {:.0} s", min_runtime.as_secs_f64());
                self.notices.push_back(Notice::PreemptionDeferred { job: head, until_s: t.as_secs_f64(), why });
            }
            return false;
        };
        let target_nodes: BTreeSet<NodeId> = placed.allocation.node_ids().collect();
        let grace = self.policy.preemption.grace;
        let mut victims = Vec::new();
        for (victim, alloc) in released {
            if alloc.node_ids().any(|n| target_nodes.contains(&n)) {
                let why = reason(self, victim);
                self.jobs.get_mut(&victim).expect("victim is known").preempted_for = Some(head);
                self.begin_preempt(victim, why, grace);
                victims.push(victim);
            }
        }
        self.jobs.get_mut(&head).expect("head is known").pending_victims = victims;
        true
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
        entry.state = JobState::Launching;
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
            if self.quota_used.len() <= t {
                self.quota_used.resize(t + 1, 0.0);
            }
            let demand = entry.spec.devices.device_equivalents();
            entry.borrowed = self.quota_used[t] + demand > cap + 1e-9;
            self.quota_used[t] += demand;
        }
        self.holding.insert(job);
        if self.policy.backfill.enabled() {
            self.device_ends.hold(&self.cluster, allocation, backfill::expected_end(&entry.spec, entry.run_started, Time::ZERO));
        }
        if self.policy.preemption.enabled {
            self.victims.insert(Self::victim_key(entry, job));
        }
    }
}

/// What a tenant's quota says of a job.
enum QuotaVerdict {
    Within,
    /// Over the quota, but borrowing is on: it may take idle devices (else it waits so).
    Borrow(WaitReason),
    Held(WaitReason),
}
