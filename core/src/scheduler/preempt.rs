//! The preempt stage: making room for a job that cannot start. Borrowed devices are
//! reclaimed for a job within its tenant's quota (`try_reclaim`); with preemption on, jobs of
//! lower rank are evicted in the order of the policy's victim rule (`try_preempt`). Both
//! release victims tentatively until the job fits, and spare jobs that ran less than the
//! minimum run time.

use super::pass::QuotaVerdict;
use crate::job::JobPhase;
use super::{Scheduler, TimerKind};
use crate::cluster::Allocation;
use crate::event::{Notice, PreemptReason, WaitReason};
use crate::ids::{JobId, NodeId};
use crate::policy::VictimRule;
use crate::time::Time;
use std::cmp::Reverse;
use std::collections::BTreeSet;

impl Scheduler {
    /// Makes room for the blocked `head`: reclaims borrowed devices when its tenant is within
    /// its quota, then, when `evict_by_rank` and the policy preempts, evicts jobs of lower
    /// rank. True when victims are being stopped for it (it is told it awaits them).
    pub(super) fn make_room(&mut self, head: JobId, evict_by_rank: bool) -> bool {
        let making_room = self.try_reclaim(head) || (evict_by_rank && self.policy.preemption.enabled && self.try_preempt(head));
        if making_room {
            let victims = self.jobs[&head].pending_victims.clone();
            self.note_waiting(head, WaitReason::AwaitingPreemption { victims });
        }
        making_room
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
            .filter(|(_, e)| e.borrowed && matches!(e.state, JobPhase::Running | JobPhase::Launching) && e.spec.tenant != head_tenant)
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
            if let Ok(p) = self.place_job(head) {
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
}
