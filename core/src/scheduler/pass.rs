//! The scheduling pass, as stages: **order → quota → place → preempt/reserve**.
//!
//! - *order* (this file): which queued job is tried next. Two disciplines, chosen by the
//!   policy: the *strict* queue (`strict_pass`: jobs in queue order, stopping at the first
//!   that cannot start, so that after every pass the queue is empty or its head is blocked)
//!   and *tenant rounds* (`tenant_pass`, for orders that rank tenants: the heads of the
//!   tenants' queues by rank, a blocked head passed over, heads ranked again after every
//!   launch). Round-based policies plan at round boundaries first (`rounds.rs`).
//! - *quota* (this file): [`QuotaVerdict`], whether a job's tenant quota lets it start now,
//!   only by borrowing idle devices, or not at all.
//! - *place*: the policy's placement, asked through `place_job`.
//! - *preempt* (`preempt.rs`): making room for a blocked job, by reclaiming borrowed devices
//!   and by evicting jobs of lower rank.
//! - *reserve* (`reserve.rs`): backfilling, where a blocked job reserves and the jobs behind
//!   it start only if they delay no reservation.
//!
//! A launch's decision is built whole by `launch`, with what the order and backfilling
//! stages say of it, before it is emitted.

use super::Scheduler;
use crate::policy::queue::TenantUsage;
use crate::event::{Backfilled, Decision, LaunchReason, OrderReason, PlacementReason, WaitReason};
use crate::ids::{JobId, TenantId};
use crate::policy::backfill::{self, Backfiller, BackfillMode};
use crate::policy::{PlaceContext, Placed, QueueKey};
use crate::time::Time;
use std::collections::BTreeSet;
use std::ops::Bound;

impl Scheduler {
    pub(super) fn run_pass_if_needed(&mut self) {
        if !self.needs_pass {
            return;
        }
        self.needs_pass = false;
        if self.rounds.is_some() && !self.run_round_pass() {
            return;
        }
        if self.policy.tenant_order.is_some() {
            self.tenant_pass()
        } else {
            self.strict_pass()
        }
    }

    /// Order stage, strict discipline: jobs in queue order; the pass stops at the first job
    /// within its quota that cannot start, after making room for it or backfilling behind it.
    ///
    /// Jobs held by their tenant's quota are passed over: a cap limits its tenant only. Jobs
    /// that could start only by borrowing wait until no job within its quota is blocked:
    /// borrowing takes idle devices, not devices someone is entitled to.
    fn strict_pass(&mut self) {
        let mut after: Option<(QueueKey, u64)> = None;
        let mut borrowers: Vec<(JobId, WaitReason)> = Vec::new();
        loop {
            let next = match after {
                None => self.queue.iter().next(),
                Some(slot) => self.queue.range((Bound::Excluded(slot), Bound::Unbounded)).next(),
            };
            let Some((&slot, &head)) = next else { break };
            if self.awaits_victims(head) {
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
            match self.place_job(head) {
                Ok(placed) => self.launch(head, placed, None, None),
                Err(reason) => {
                    if !self.make_room(head, true) {
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
            match self.place_job(job) {
                Ok(placed) => self.launch(job, placed, None, None),
                Err(_) => self.note_waiting(job, reason),
            }
        }
    }

    fn borrowers_wait(&mut self, borrowers: Vec<(JobId, WaitReason)>) {
        for (job, reason) in borrowers {
            self.note_waiting(job, reason);
        }
    }

    /// Order stage, tenant rounds (orders that rank tenants): each round tries the heads of
    /// the tenants' queues in rank order and starts the first that can; a tenant whose head
    /// cannot start is passed over. Rounds repeat until no head starts.
    ///
    /// Heads within their quota come first; heads that would borrow only while no head
    /// within its quota is blocked. Making room is by reclaiming borrowed devices only (the
    /// tenant orders do not rank jobs against each other). With backfilling, the first head
    /// that cannot start reserves, and the heads after it start only if they delay no
    /// reservation.
    fn tenant_pass(&mut self) {
        let Some(order) = self.policy.tenant_order.take() else { return };
        let half_life = order.half_life();
        loop {
            let now = self.now;
            for usage in &mut self.tenants.usage {
                usage.advance(now, half_life);
            }
            let mut heads: Vec<(f64, u64, TenantId, JobId)> = Vec::new();
            for (&tenant, q) in &self.tenants.queues {
                if let Some((&(_, seq), &job)) = q.first_key_value() {
                    if self.tenants.usage.len() <= tenant.index() {
                        self.tenants.usage.resize(tenant.index() + 1, TenantUsage { as_of: now, ..TenantUsage::default() });
                    }
                    let rank = order.tenant_rank(tenant.index(), &self.tenants.usage[tenant.index()], &self.tenants.usage, &self.tenants.capacity);
                    heads.push((rank, seq, tenant, job));
                }
            }
            let borrowing: BTreeSet<JobId> = heads.iter().filter(|h| matches!(self.quota_verdict(h.3), QuotaVerdict::Borrow(_))).map(|h| h.3).collect();
            heads.sort_by(|a, b| borrowing.contains(&a.3).cmp(&borrowing.contains(&b.3)).then(a.0.total_cmp(&b.0)).then(a.1.cmp(&b.1)));
            let mut blocked_within = false;
            let mut launched = false;
            let mut behind: Option<BehindBlocked> = None;
            for (_, _, tenant, head) in heads {
                if self.awaits_victims(head) {
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
                match self.place_job(head) {
                    Ok(placed) => {
                        let mut backfilled = None;
                        if let Some(b) = &mut behind {
                            let end = backfill::expected_end(&self.jobs[&head].spec, self.now, self.now);
                            match self.admit_behind(&mut b.backfiller, head, &placed.allocation, end, b.first, b.first_start) {
                                Ok(info) => backfilled = Some(info),
                                Err(_) => continue,
                            }
                        }
                        let why = order.explain(tenant.index(), &self.tenants.usage[tenant.index()], &self.tenants.usage, &self.tenants.capacity);
                        self.launch(head, placed, Some(why), backfilled);
                        launched = true;
                        break;
                    }
                    Err(reason) => {
                        if let QuotaVerdict::Borrow(reason) = quota {
                            self.note_waiting(head, reason);
                            continue;
                        }
                        blocked_within = true;
                        if self.make_room(head, false) {
                            continue;
                        }
                        self.wait_for(head, reason);
                        if self.policy.backfill.enabled() {
                            match &mut behind {
                                None => {
                                    let mut backfiller = self.backfiller();
                                    let first_start = self.reserve(&mut backfiller, head).flatten();
                                    behind = Some(BehindBlocked { backfiller, first: head, first_start });
                                }
                                Some(b) => {
                                    if self.policy.backfill.mode == BackfillMode::Conservative {
                                        self.reserve(&mut b.backfiller, head);
                                    }
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

    /// A job that made room by preemption waits until its victims are gone: it is told so.
    fn awaits_victims(&mut self, job: JobId) -> bool {
        let entry = &self.jobs[&job];
        if entry.pending_victims.is_empty() {
            return false;
        }
        let victims = entry.pending_victims.clone();
        self.note_waiting(job, WaitReason::AwaitingPreemption { victims });
        true
    }

    /// Quota stage: whether a job's tenant quota lets it start: within the quota, only by
    /// borrowing idle devices (the reason it waits if there are none), or not at all.
    pub(super) fn quota_verdict(&self, job: JobId) -> QuotaVerdict {
        let spec = &self.jobs[&job].spec;
        let Some(quota) = self.policy.quotas.cap(spec.tenant) else { return QuotaVerdict::Within };
        let used = self.tenants.quota_used.get(spec.tenant.index()).copied().unwrap_or(0.0);
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

    pub(super) fn over_quota(&self, tenant: TenantId) -> Option<(f64, f64)> {
        let quota = self.policy.quotas.cap(tenant)?;
        let used = self.tenants.quota_used.get(tenant.index()).copied().unwrap_or(0.0);
        (used > quota + 1e-9).then_some((used, quota))
    }

    /// Place stage: where the policy's placement puts a queued job on the cluster as it is
    /// now, or why it cannot start.
    pub(super) fn place_job(&self, job: JobId) -> Result<Placed, WaitReason> {
        let entry = &self.jobs[&job];
        self.policy.placement.place(&self.cluster, &entry.spec, &PlaceContext::new(self.now, entry.queued_since))
    }

    /// Starts a queued job where it was placed, and emits its decision, whole: `order` is
    /// what put it first when the order stage says more than the queue order would
    /// (a tenant's rank, a round's plan); `backfill`, the reservation it respected when it
    /// started behind a blocked job.
    pub(super) fn launch(&mut self, job: JobId, placed: Placed, order: Option<OrderReason>, backfill: Option<Backfilled>) {
        let entry = self.jobs.get_mut(&job).expect("queued job is known");
        self.queue.remove(&(entry.queue_key, entry.seq));
        if let Some(q) = self.tenants.queues.get_mut(&entry.spec.tenant) {
            q.remove(&(entry.queue_key, entry.seq));
        }
        self.take_resources(job, &placed.allocation, self.now);
        let entry = &self.jobs[&job];
        let reason = LaunchReason {
            policy: self.policy.label.clone(),
            order: order.unwrap_or_else(|| self.policy.queue.explain(&entry.spec, &Self::view(entry))),
            placement: PlacementReason { rule: self.policy.placement.name().into(), how: placed.how, alternatives: placed.alternatives },
            queued_after: self.queue.len() as u32,
            backfill,
        };
        self.decisions.push_back(Decision::Launch { job, allocation: placed.allocation, reason });
    }
}

/// Backfilling behind the first head a tenant pass found blocked.
struct BehindBlocked {
    backfiller: Backfiller,
    first: JobId,
    first_start: Option<Time>,
}

/// What a tenant's quota says of a job.
pub(super) enum QuotaVerdict {
    Within,
    /// Over the quota, but borrowing is on: it may take idle devices (else it waits so).
    Borrow(WaitReason),
    Held(WaitReason),
}
