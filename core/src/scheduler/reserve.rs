//! The reserve stage: backfilling. The first blocked job reserves where and when it will
//! start (`policy::backfill` builds the profile); the jobs behind it start only if they delay
//! no reservation (EASY: the first's; conservative: every earlier job's, each reserving in
//! turn). The last pass's plan is kept for a submission behind the blocked head while it is
//! exactly what a new pass would build.

use super::pass::QuotaVerdict;
use super::Scheduler;
use crate::cluster::{Allocation, ModelKey};
use crate::event::{Backfilled, BackfillKind, Notice, WaitReason};
use crate::ids::JobId;
use crate::policy::backfill::{self, Backfiller, BackfillMode, DeviceEnds};
use crate::policy::QueueKey;
use crate::time::Time;
use std::ops::Bound;

/// The reserve stage's state between passes.
pub(super) struct BackfillState {
    /// Per device, the expected end of its holders: backfilling's profile, kept up to date
    /// only when the policy backfills.
    pub(super) device_ends: DeviceEnds,
    /// Backfilling's state after the last pass, reused for submissions behind the blocked head.
    pub(super) cache: Option<BackfillCache>,
    /// A backfiller no longer needed, whose buffers the next pass reuses.
    pub(super) spare: Option<Backfiller>,
    /// Whether backfilling may reuse the last pass's plan (off only to check that reuse
    /// changes no decision).
    pub(super) reuse_plans: bool,
}

impl Default for BackfillState {
    fn default() -> BackfillState {
        BackfillState { device_ends: DeviceEnds::default(), cache: None, spare: None, reuse_plans: true }
    }
}

pub(super) struct BackfillCache {
    pub(super) backfiller: Backfiller,
    pub(super) head: JobId,
    pub(super) head_slot: (QueueKey, u64),
    pub(super) head_start: Option<Time>,
    pub(super) cluster_version: u64,
    pub(super) scan: ConservativeScan,
}

/// Conservative: what a pass learnt about the jobs it examined, to reuse its plan.
#[derive(Default)]
pub(super) struct ConservativeScan {
    /// Jobs whose reservations were put off (none of them could start and no job after them
    /// could either), in queue order.
    pub(super) deferred: Vec<JobId>,
    /// Jobs the placement would start, held by a reservation, with where they would go and
    /// how many reservations were made before them.
    pub(super) held: Vec<(JobId, Allocation, usize)>,
}

impl Scheduler {
    /// Turns off the reuse of conservative backfilling's plan between passes: every pass then
    /// builds its profile and reservations afresh. No decision or notice may change; tests use
    /// this to check it. (EASY's reuse is not exact and is not affected.)
    pub fn set_backfill_plan_reuse(&mut self, reuse: bool) {
        self.backfill.reuse_plans = reuse;
        self.backfill.cache = None;
    }

    /// The profile backfilling reasons on: every job holding resources, expected to end at its
    /// start plus its stated duration (now if overdue, never if it states none).
    pub(super) fn backfiller(&mut self) -> Backfiller {
        let old = self.backfill.cache.take().map(|c| c.backfiller).or_else(|| self.backfill.spare.take());
        Backfiller::renew(old, self.policy.backfill.mode, &self.cluster, self.now, &self.backfill.device_ends)
    }

    /// Reserves for a blocked job and announces the reservation when its start changed.
    pub(super) fn reserve(&mut self, bf: &mut Backfiller, job: JobId) -> Option<Option<Time>> {
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
    pub(super) fn backfill_behind(&mut self, head: JobId, head_slot: (QueueKey, u64)) {
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
        let reuse = self.backfill.reuse_plans || self.policy.backfill.mode == BackfillMode::Easy;
        if reusable && reuse && !self.policy.quotas.any() {
            self.backfill.cache = Some(BackfillCache { backfiller: bf, head, head_slot, head_start, cluster_version: self.cluster_version, scan });
        } else {
            self.backfill.spare = Some(bf);
        }
    }

    /// A job submitted behind the blocked head, when nothing else changed since the last pass:
    /// the one candidate that is new, if it is within the scan depth (conservative: with the
    /// jobs queued after it, re-examined on the plan of the jobs before it).
    pub(super) fn backfill_new_job(&mut self, job: JobId, slot: (QueueKey, u64)) -> bool {
        let Some(cache) = self.backfill.cache.take() else { return false };
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
        self.backfill.cache = Some(BackfillCache { backfiller, head, head_slot, head_start, cluster_version: self.cluster_version, scan });
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
        self.backfill.cache = Some(BackfillCache { backfiller, head, head_slot, head_start, cluster_version: self.cluster_version, scan });
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
        if let Some(held) = bf.surely_held(&self.jobs[&job].spec, end) {
            let reason = WaitReason::Reservation { head: held.by, reserved_start_s: held.reserved_start.map(Time::as_secs_f64), expected_end_s: end_s };
            self.wait_for(job, reason);
            return;
        }
        match self.place_job(job) {
            Ok(placed) => match self.admit_behind(bf, job, &placed.allocation, end, head, head_start) {
                Ok(info) => self.launch(job, placed, None, Some(info)),
                Err(reservations_before) => {
                    if conservative {
                        scan.held.push((job, placed.allocation, reservations_before));
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

    /// A job behind the blocked `first` (which reserved to start at `first_start`), that the
    /// placement would start now on `allocation` and that is expected to end at `end`: it
    /// starts only if `bf` admits it, delaying no reservation. `Ok`: what its launch reason
    /// says of backfilling. `Err`: it waits for the reservation that holds it, and under
    /// conservative reserves in turn; the error counts the reservations made before it.
    pub(super) fn admit_behind(&mut self, bf: &mut Backfiller, job: JobId, allocation: &Allocation, end: Time, first: JobId, first_start: Option<Time>) -> Result<Backfilled, usize> {
        let conservative = self.policy.backfill.mode == BackfillMode::Conservative;
        let end_s = (end != Time::MAX).then(|| end.as_secs_f64());
        match bf.admit(allocation, end) {
            Ok(()) => Ok(Backfilled {
                mode: if conservative { BackfillKind::Conservative } else { BackfillKind::Easy },
                head: first,
                reserved_start_s: first_start.map(Time::as_secs_f64),
                expected_end_s: end_s,
                ends_before_reservation: first_start.is_some_and(|t| end <= t),
            }),
            Err(held) => {
                let reservations_before = bf.reservations().len();
                let reason = WaitReason::Reservation { head: held.by, reserved_start_s: held.reserved_start.map(Time::as_secs_f64), expected_end_s: end_s };
                self.wait_for(job, reason);
                if conservative {
                    self.reserve(bf, job);
                }
                Err(reservations_before)
            }
        }
    }
}
