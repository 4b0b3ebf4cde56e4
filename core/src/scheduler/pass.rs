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
use crate::event::{Backfilled, BackfillKind, Decision, LaunchReason, PlacementReason, WaitReason};
use crate::ids::{JobId, TenantId};
use crate::policy::backfill::{self, Backfiller, BackfillMode};
use crate::policy::{PlaceContext, Placed, QueueKey};
use crate::time::Time;
use std::collections::BTreeSet;
use std::ops::Bound;

impl Scheduler {
    /// The pass for orders that rank tenants: each round tries the heads of the tenants'
    /// queues in rank order and starts the first that fits; a tenant whose head does not fit
    /// is passed over. Rounds repeat until no head can start.
    pub(super) fn run_tenant_pass(&mut self) {
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

    pub(super) fn run_pass_if_needed(&mut self) {
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

    pub(super) fn borrowers_wait(&mut self, borrowers: Vec<(JobId, WaitReason)>) {
        for (job, reason) in borrowers {
            self.note_waiting(job, reason);
        }
    }

    /// Whether a job's tenant quota lets it start: within the quota, only by borrowing idle
    /// devices (the reason it waits if there are none), or not at all.
    pub(super) fn quota_verdict(&self, job: JobId) -> QuotaVerdict {
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

    pub(super) fn over_quota(&self, tenant: TenantId) -> Option<(f64, f64)> {
        let quota = self.policy.quotas.cap(tenant)?;
        let used = self.quota_used.get(tenant.index()).copied().unwrap_or(0.0);
        (used > quota + 1e-9).then_some((used, quota))
    }

    pub(super) fn launch(&mut self, job: JobId, placed: Placed) {
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
}

/// What a tenant's quota says of a job.
pub(super) enum QuotaVerdict {
    Within,
    /// Over the quota, but borrowing is on: it may take idle devices (else it waits so).
    Borrow(WaitReason),
    Held(WaitReason),
}
