//! Backfilling: when the job at the head of the queue cannot start, later jobs may start
//! ahead of it as long as they do not delay it (EASY, Lifka 1995), or as long as they delay
//! no job queued before them (conservative, Mu'alem and Feitelson 2001).
//!
//! Both reason from the jobs' **stated** durations (`JobSpec::stated_duration`), never from
//! their true work, which the core does not know: a running job is expected to end at its
//! (latest) start plus its stated duration; one that is past that point is expected to end
//! now; one that states no duration is expected never to end. Over- and under-estimates
//! therefore matter, as they do on a real cluster.
//!
//! **Granularity: devices, at cluster level.** The profile says, for every device, when it is
//! expected to be whole and free (`busy_until`: now for a free device, the latest expected end
//! of the jobs holding it otherwise, never for a failed device or one on a down node). A
//! reservation is a number of whole devices of the job's allowed models (a fractional share
//! reserves one whole device, a safe over-estimate), not a particular node: the placement
//! chooses the nodes when the job starts. CPU and memory are not reserved.
//!
//! **The guarantee (EASY).** Let T be the head's reserved start: the earliest time at which
//! at least N devices of its models are expected to be whole and free (N its device count).
//! A later job J may start now only if (a) T is finite and J is expected to end by T, or
//! (b) after J takes its devices, at least N devices of the head's models are still expected
//! free by T (J takes only devices the head will not need). Jobs started this way are booked
//! into the profile, so each further one is checked against what remains. Hence, when stated
//! durations are exact, devices do not fail, and the placement hosts any gang for which
//! enough whole devices are free (true of every placement for whole-device jobs whose CPU
//! and memory do not bind; `topology` may add its locality wait), the head starts no later
//! than the reservation computed when it became head: every backfill keeps N devices free by
//! T, and a reservation recomputed later can only move earlier. A job with no stated
//! duration is never expected to end, so it backfills only by (b).
//!
//! **The guarantee (conservative).** Every queued job examined (the first `depth` behind the
//! head, and the head) gets a reservation in queue order: the earliest time t at which N
//! devices of its models are expected free throughout [t, t + stated duration), given the
//! running jobs and the reservations of the jobs before it. A job starts now only if it fits
//! now and its devices are free of every earlier reservation for as long as it is expected
//! to run, so, with exact stated durations, no job delays the reservation of a job ahead of
//! it. A job that cannot fit now whatever the reservations (fewer whole devices of its models
//! free than it asks for) has its reservation put off until a later job that might start
//! needs it; reservations behind the last such job constrain nobody in the pass and are not
//! made (nor announced) then. The decisions are those of reserving for every examined job.
//!
//! Cost: a reservation is a sweep over each device's free intervals, O((devices + reserved
//! intervals) log) (most often a single check at the earliest time enough devices are
//! expected free), at most `depth` per pass; EASY costs O(devices + held shares) per pass.
//!
//! Passes: a pass (each finish, eviction, health change, ...) builds the profile afresh.
//! Under EASY, a job submitted behind the blocked head when the cluster has not changed since
//! the last pass is judged against that pass's profile alone; time having passed only makes
//! that profile more cautious (an overdue job counts as ending at the earlier "now"), so the
//! guarantee is kept. Under conservative, the same submission reuses the last pass's plan
//! only when it is exactly the plan a new pass would build (`Backfiller::advance`: the last
//! pass started nobody, every reservation starts after now, and no device became expected
//! free in between); the jobs queued from the new job on are then examined again on the
//! reservations of those before it, and held jobs before it have their blocker re-checked.
//! Decisions and notices are the same as with every pass rebuilt (tested in
//! `core/tests/backfill_reuse.rs`).
//!
//! Jobs that ask for no device (CPU-only) get no reservation: when such a job heads the
//! queue blocked (by CPU or memory), nothing backfills past it.

use crate::cluster::{Allocation, ClusterState};
use crate::ids::{DeviceId, JobId, ModelId};
use crate::job::JobSpec;
use crate::time::Time;

/// `backfill = "none" | "easy" | "conservative"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackfillMode {
    None,
    Easy,
    Conservative,
}

pub const BACKFILL_MODES: &[&str] = &["none", "easy", "conservative"];

/// The backfilling part of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackfillRule {
    pub mode: BackfillMode,
    /// Most queued jobs examined behind the head per pass (Slurm's `bf_max_job_test`).
    pub depth: usize,
}

impl BackfillRule {
    pub const DEFAULT_DEPTH: usize = 100;

    pub fn none() -> BackfillRule {
        BackfillRule { mode: BackfillMode::None, depth: Self::DEFAULT_DEPTH }
    }

    pub fn enabled(&self) -> bool {
        self.mode != BackfillMode::None
    }
}

/// `a + b`, saturating at `Time::MAX` (which stands for "never").
pub fn add_or_never(a: Time, b: Time) -> Time {
    Time(a.0.saturating_add(b.0))
}

/// When a job started at `started` with this spec is expected to end, as the stated duration
/// says; `Time::MAX` when it states none, `now` when it is overdue.
pub fn expected_end(spec: &JobSpec, started: Time, now: Time) -> Time {
    match spec.stated_duration {
        Some(d) => add_or_never(started, d).max(now),
        None => Time::MAX,
    }
}

/// Per device, how many jobs hold it and the latest expected end among them (`expected_end`
/// without the "now if overdue", which the profile applies), kept as jobs start and stop so
/// that a pass need not visit every running job.
#[derive(Clone, Debug, Default)]
pub struct DeviceEnds {
    end: Vec<Time>,
    holders: Vec<u16>,
}

impl DeviceEnds {
    fn slot(&mut self, device: DeviceId) -> usize {
        let i = device.index();
        if self.end.len() <= i {
            self.end.resize(i + 1, Time::ZERO);
            self.holders.resize(i + 1, 0);
        }
        i
    }

    /// A job took these devices and is expected to end at `end`.
    pub fn hold(&mut self, allocation: &Allocation, end: Time) {
        for share in &allocation.devices {
            let i = self.slot(share.device);
            self.holders[i] += 1;
            self.end[i] = self.end[i].max(end);
        }
    }

    /// A holder's expected end moved later (its start was acknowledged after the launch).
    pub fn extend(&mut self, allocation: &Allocation, end: Time) {
        for share in &allocation.devices {
            let i = self.slot(share.device);
            self.end[i] = self.end[i].max(end);
        }
    }

    /// A job let go of these devices; `others_end(device)` is the latest expected end of the
    /// jobs still holding a shared device.
    pub fn release(&mut self, allocation: &Allocation, others_end: impl Fn(DeviceId) -> Time) {
        for share in &allocation.devices {
            let i = self.slot(share.device);
            self.holders[i] = self.holders[i].saturating_sub(1);
            self.end[i] = if self.holders[i] == 0 { Time::ZERO } else { others_end(share.device) };
        }
    }
}

/// A reservation: the job, when it is expected to start (`None`: no finite time, because it
/// needs devices held by jobs that state no duration), and for conservative, the devices it
/// holds from then until its expected end.
#[derive(Clone, Debug, PartialEq)]
pub struct Reservation {
    pub job: JobId,
    pub start: Option<Time>,
    /// Whole devices reserved.
    pub devices: u32,
}

/// Why a backfill candidate may not start now.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    /// The job whose reservation it would delay.
    pub by: JobId,
    pub reserved_start: Option<Time>,
}

/// The EASY reservation of the head.
#[derive(Clone, Debug)]
struct Easy {
    job: JobId,
    models: crate::catalogue::ModelSet,
    start: Option<Time>,
    /// Devices of the head's models expected free by `start` beyond the `needed`.
    spare: i64,
}

/// The device profile of one scheduling pass and the reservations made in it.
pub struct Backfiller {
    mode: BackfillMode,
    now: Time,
    models: Vec<ModelId>,
    /// Per device: when it is expected whole and free.
    busy_until: Vec<Time>,
    easy: Option<Easy>,
    /// Conservative: reservations in queue order, and per device the intervals reserved on it
    /// (start, end, index into `reservations`).
    reservations: Vec<Reservation>,
    reserved_on: Vec<Vec<(Time, Time, usize)>>,
    /// Conservative: per model set asked for, its usable devices sorted by (`busy_until`, id);
    /// dropped whenever `busy_until` changes.
    sorted: Vec<(crate::catalogue::ModelSet, Vec<(Time, DeviceId)>)>,
    /// A blocked job got no reservation (it asks for no device): nothing may pass it.
    wall: Option<JobId>,
}

impl Backfiller {
    /// The profile of the cluster now, from the expected ends of the jobs holding devices.
    pub fn new(mode: BackfillMode, cluster: &ClusterState, now: Time, ends: &DeviceEnds) -> Backfiller {
        let devices = cluster.devices();
        // A free device is free now; a held one when its last holder ends (now if overdue);
        // an unusable one never.
        let busy_until: Vec<Time> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if !(d.healthy && cluster.node(d.node).up) {
                    Time::MAX
                } else if ends.holders.get(i).copied().unwrap_or(0) == 0 {
                    now
                } else {
                    ends.end[i].max(now)
                }
            })
            .collect();
        Backfiller {
            mode,
            now,
            models: devices.iter().map(|d| d.model).collect(),
            busy_until,
            easy: None,
            reservations: Vec::new(),
            reserved_on: if mode == BackfillMode::Conservative { vec![Vec::new(); devices.len()] } else { Vec::new() },
            sorted: Vec::new(),
            wall: None,
        }
    }

    /// Devices of `job`'s models, usable, sorted by when they are expected free (then id);
    /// kept per model set until the profile changes.
    fn candidates(&mut self, cluster: &ClusterState, job: &JobSpec) -> Vec<(Time, DeviceId)> {
        let models = job.devices.models;
        if let Some(i) = self.sorted.iter().position(|(m, _)| *m == models) {
            return std::mem::take(&mut self.sorted[i].1);
        }
        let mut c: Vec<(Time, DeviceId)> = cluster
            .devices()
            .iter()
            .enumerate()
            .filter(|(i, d)| models.allows(d.model) && self.busy_until[*i] != Time::MAX)
            .map(|(i, _)| (self.busy_until[i], DeviceId(i as u32)))
            .collect();
        c.sort_unstable();
        self.sorted.push((models, Vec::new()));
        c
    }

    /// Gives back what `candidates` lent.
    fn return_candidates(&mut self, job: &JobSpec, c: Vec<(Time, DeviceId)>) {
        if let Some(slot) = self.sorted.iter_mut().find(|(m, _)| *m == job.devices.models) {
            slot.1 = c;
        }
    }

    /// The devices of `c` (sorted by `busy_until`) free from `t` for `duration`: expected free
    /// by t and reserved by no one in [t, t + duration).
    fn eligible_at<'a>(&'a self, c: &'a [(Time, DeviceId)], t: Time, duration: Option<Time>) -> impl DoubleEndedIterator<Item = DeviceId> + 'a {
        let end = duration.map_or(Time::MAX, |d| add_or_never(t, d));
        c.iter()
            .filter(move |&&(b, d)| b <= t && self.reserved_on[d.index()].iter().all(|&(s, e, _)| e <= t || s >= end))
            .map(|&(_, d)| d)
    }

    /// The earliest time t (at or after each device's `busy_until`) at which `needed` of the
    /// devices `c` are free of every reservation throughout [t, t + duration): a sweep over
    /// each device's free intervals, in O((devices + reserved intervals) log) rather than one
    /// check of every device at every candidate time.
    fn earliest_start(&self, c: &[(Time, DeviceId)], needed: usize, duration: Option<Time>) -> Option<Time> {
        // No start before the `needed`-th device is expected free; most often that one works.
        let first = c.get(needed.checked_sub(1)?)?.0;
        if self.eligible_at(c, first, duration).nth(needed - 1).is_some() {
            return Some(first);
        }
        // Devices with no reservation are free from `busy_until` on; `c` is sorted by it.
        let mut plain: Vec<Time> = Vec::with_capacity(c.len());
        // (time, +1 | -1) for the free intervals of devices that hold reservations.
        let mut edges: Vec<(Time, i32)> = Vec::new();
        let mut blocked: Vec<(Time, Time)> = Vec::new();
        for &(b, d) in c {
            let reserved = &self.reserved_on[d.index()];
            if reserved.is_empty() {
                plain.push(b);
                continue;
            }
            // A start t is blocked by a reservation [s, e) when t < e and t + duration > s.
            blocked.clear();
            blocked.extend(reserved.iter().filter(|r| r.1 > b).filter_map(|&(s, e, _)| {
                let from = match duration {
                    Some(d) if s.0 >= d.0 => Time(s.0 - d.0 + 1),
                    _ => Time::ZERO,
                };
                (from < e).then_some((from, e))
            }));
            blocked.sort_unstable();
            let mut free_from = b;
            for &(from, e) in &blocked {
                if from > free_from {
                    edges.push((free_from, 1));
                    edges.push((from, -1));
                }
                free_from = free_from.max(e);
            }
            if free_from != Time::MAX {
                edges.push((free_from, 1));
            }
        }
        edges.sort_unstable();
        let (mut free, mut p, mut e) = (0i64, 0, 0);
        loop {
            let t = match (plain.get(p), edges.get(e)) {
                (None, None) => return None,
                (Some(&a), None) => a,
                (None, Some(&(b, _))) => b,
                (Some(&a), Some(&(b, _))) => a.min(b),
            };
            while p < plain.len() && plain[p] == t {
                free += 1;
                p += 1;
            }
            while e < edges.len() && edges[e].0 == t {
                free += edges[e].1 as i64;
                e += 1;
            }
            if free >= needed as i64 {
                return Some(t);
            }
        }
    }

    /// Reserves for a blocked job: under EASY only the first job reserved (later calls do
    /// nothing); under conservative every job, in the order they are called.
    pub fn reserve(&mut self, cluster: &ClusterState, job: &JobSpec) -> Option<Reservation> {
        if self.wall.is_some() {
            return None;
        }
        let needed = job.devices.count;
        if needed == 0 {
            self.wall = Some(job.id);
            return None;
        }
        match self.mode {
            BackfillMode::None => None,
            BackfillMode::Easy => {
                if self.easy.is_some() {
                    return None;
                }
                let mut c: Vec<Time> = self
                    .busy_until
                    .iter()
                    .zip(&self.models)
                    .filter(|&(&b, &m)| b != Time::MAX && job.devices.models.allows(m))
                    .map(|(&b, _)| b)
                    .collect();
                let start = (c.len() >= needed as usize).then(|| *c.select_nth_unstable(needed as usize - 1).1);
                let free_by_start = start.map_or(c.len(), |t| c.iter().filter(|&&b| b <= t).count());
                self.easy = Some(Easy { job: job.id, models: job.devices.models, start, spare: free_by_start as i64 - needed as i64 });
                Some(Reservation { job: job.id, start, devices: needed })
            }
            BackfillMode::Conservative => {
                let duration = job.stated_duration;
                let c = self.candidates(cluster, job);
                let index = self.reservations.len();
                let r = match self.earliest_start(&c, needed as usize, duration) {
                    Some(t) => {
                        let end = duration.map_or(Time::MAX, |d| add_or_never(t, d));
                        // The devices freed latest (but by t) first, so that devices free now
                        // stay free for jobs that can start now.
                        let by_t = c.partition_point(|&(b, _)| b <= t);
                        let free: Vec<DeviceId> = self.eligible_at(&c[..by_t], t, duration).rev().take(needed as usize).collect();
                        debug_assert_eq!(free.len(), needed as usize, "the sweep found {needed} free devices at {t:?}");
                        for &d in &free {
                            self.reserved_on[d.index()].push((t, end, index));
                        }
                        Reservation { job: job.id, start: Some(t), devices: needed }
                    }
                    None => {
                        // Never, on the jobs' stated durations: it needs devices held by jobs
                        // that state none. It reserves every device of its models it could ever
                        // get, from when each is expected free, so no later job takes them for ever.
                        for &(b, d) in &c {
                            self.reserved_on[d.index()].push((b, Time::MAX, index));
                        }
                        Reservation { job: job.id, start: None, devices: needed }
                    }
                };
                self.return_candidates(job, c);
                self.reservations.push(r.clone());
                Some(r)
            }
        }
    }

    /// A cheap verdict before placing: under EASY, a whole-device job that would run past the
    /// head's reserved start, and whose every device would be one the head can use, is held
    /// if it needs more devices than are spare (as `admit` would find after placing it).
    /// `None`: placing and `admit` decide.
    pub fn surely_held(&self, job: &JobSpec, end: Time) -> Option<Held> {
        if let Some(by) = self.wall {
            return Some(Held { by, reserved_start: None });
        }
        let easy = self.easy.as_ref()?;
        if job.devices.count == 0 || job.devices.is_fractional() || easy.start.is_some_and(|t| end <= t) {
            return None;
        }
        let within_heads_models = easy.models.is_any() || (!job.devices.models.is_any() && job.devices.models.0 & !easy.models.0 == 0);
        (within_heads_models && job.devices.count as i64 > easy.spare).then_some(Held { by: easy.job, reserved_start: easy.start })
    }

    /// Whether a job that the placement would start now on `allocation`, expected to end at
    /// `end`, delays no reservation made so far. If it may start, it is booked into the profile.
    pub fn admit(&mut self, allocation: &Allocation, end: Time) -> Result<(), Held> {
        if let Some(by) = self.wall {
            return Err(Held { by, reserved_start: None });
        }
        match self.mode {
            BackfillMode::None => {}
            BackfillMode::Easy => {
                if let Some(easy) = &self.easy {
                    let ends_in_time = easy.start.is_some_and(|t| end <= t);
                    if !ends_in_time {
                        let t = easy.start.unwrap_or(Time::MAX);
                        // Devices of the head's models, now counted free by T, that this job
                        // would hold past T.
                        let taken = allocation
                            .devices
                            .iter()
                            .filter(|s| self.busy_until[s.device.index()] <= t && self.busy_until[s.device.index()] != Time::MAX)
                            .filter(|s| easy.models.allows(self.model_of(s.device)))
                            .count() as i64;
                        if taken > 0 && taken > easy.spare {
                            return Err(Held { by: easy.job, reserved_start: easy.start });
                        }
                        self.easy.as_mut().expect("checked").spare -= taken;
                    }
                }
            }
            BackfillMode::Conservative => {
                if let Some(held) = self.blocker(allocation, end, usize::MAX) {
                    return Err(held);
                }
            }
        }
        for share in &allocation.devices {
            let b = &mut self.busy_until[share.device.index()];
            *b = (*b).max(end);
        }
        self.sorted.clear();
        Ok(())
    }

    /// Conservative: the first of the first `made` reservations that a job on `allocation`
    /// until `end` would delay.
    pub fn blocker(&self, allocation: &Allocation, end: Time, made: usize) -> Option<Held> {
        for share in &allocation.devices {
            for &(s, e, r) in &self.reserved_on[share.device.index()] {
                if s < end && e > self.now && r < made {
                    let r = &self.reservations[r];
                    return Some(Held { by: r.job, reserved_start: r.start });
                }
            }
        }
        None
    }

    /// The time the profile is for.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The reservations made so far, in the order they were made (queue order).
    pub fn reservations(&self) -> &[Reservation] {
        &self.reservations
    }

    /// Whether a blocked job that asks for no device stops all backfilling.
    pub fn walled(&self) -> bool {
        self.wall.is_some()
    }

    /// Conservative: forgets every reservation after the first `keep`, as if the jobs that
    /// made them had not been examined yet (the pass admitted nobody: launches change the
    /// profile itself).
    pub fn truncate(&mut self, keep: usize) {
        if keep >= self.reservations.len() {
            return;
        }
        self.reservations.truncate(keep);
        for list in &mut self.reserved_on {
            list.retain(|r| r.2 < keep);
        }
    }

    /// Moves the profile to a later `now`, when it is then exactly the profile that would be
    /// built afresh, with the same reservations: every reservation starts after `now`, and no
    /// device is expected free in (old now, `now`] (such a device would change its place
    /// among those free now). Devices free (or overdue) at the old now are free at the new.
    /// Returns false, changing nothing, when that does not hold.
    pub fn advance(&mut self, now: Time) -> bool {
        let old = self.now;
        if now == old {
            return true;
        }
        if now < old || self.wall.is_some() || self.reservations.iter().any(|r| r.start.is_some_and(|s| s <= now)) {
            return false;
        }
        if self.busy_until.iter().any(|&b| b > old && b <= now && b != Time::MAX) {
            return false;
        }
        for b in &mut self.busy_until {
            if *b == old {
                *b = now;
            }
        }
        // Only "never" reservations start at a device's `busy_until`, which may be the old now.
        for list in &mut self.reserved_on {
            for r in list.iter_mut() {
                if r.0 == old {
                    r.0 = now;
                }
            }
        }
        self.sorted.clear();
        self.now = now;
        true
    }

    fn model_of(&self, device: DeviceId) -> ModelId {
        self.models[device.index()]
    }
}
