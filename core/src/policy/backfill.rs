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
//! reserves one whole device, a safe over-estimate), not a particular node or device: the
//! placement chooses them when the job starts. CPU and memory are not reserved.
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
//! running jobs and the reservations of the jobs before it. Devices of one model are
//! interchangeable, so the plan is kept as counts (`profile::FreeProfile`): per model, how many
//! devices are expected free and unreserved over time, a step function. Taking devices for
//! each reservation when it starts, in start order, always finds them as long as no count
//! goes negative, since every running job and every reservation holds its devices for one
//! unbroken interval. A job over several models takes, for the whole of its reservation, a
//! fixed number of each (the fewest free over the window, the models with most to spare
//! first). A job starts now only if it fits now and taking its devices until its expected end
//! leaves no model's count negative, so, with exact stated durations, no job delays the
//! reservation of a job ahead of it (checked from outside in `core/tests/backfill.rs`). When
//! it would, the job named is the first, in queue order, of the reservations active at the
//! first instant the count would go negative that no longer fit there. A job that cannot fit
//! now whatever the reservations (fewer whole devices of its models free than it asks for)
//! has its reservation put off until a later job that might start needs it; reservations
//! behind the last such job constrain nobody in the pass and are not made (nor announced)
//! then. The decisions are those of reserving for every examined job.
//!
//! A job whose models' devices are held by jobs that state no duration never gets a finite
//! reservation: it takes every device of those models it could ever get (the models are
//! closed to later jobs in the pass), so no later job takes them for ever.
//!
//! Cost: a reservation is one scan of its model's profile, O(segments), a segment being a time
//! at which a running job is expected to end or a reservation starts or ends (models summed
//! over, for a job allowed several); at most `depth` per pass. Admitting a job scans its
//! window of the profile. The profile is rebuilt at each pass from the expected ends kept per
//! model as jobs start and stop (`DeviceEnds`), with no sort. EASY costs O(devices + held
//! shares) per pass.
//!
//! Passes: a pass (each finish, eviction, health change, ...) builds the profile afresh.
//! Under EASY, a job submitted behind the blocked head when the cluster has not changed since
//! the last pass is judged against that pass's profile alone; time having passed only makes
//! that profile more cautious (an overdue job counts as ending at the earlier "now"), so the
//! guarantee is kept. Under conservative, the same submission reuses the last pass's plan
//! only when it is exactly the plan a new pass would build (`Backfiller::advance`: the last
//! pass started nobody, every reservation starts after now, and no device became expected
//! free in between); the jobs queued from the new job on are then examined again on the
//! reservations of those before it, and held jobs before it whose blocker may have moved
//! with time (`Backfiller::blocker_may_move`) have it re-checked. Decisions and notices are
//! the same as with every pass rebuilt (tested in `core/tests/backfill_reuse.rs`).
//!
//! Jobs that ask for no device (CPU-only) get no reservation: when such a job heads the
//! queue blocked (by CPU or memory), nothing backfills past it.

use crate::cluster::{Allocation, ClusterState};
use crate::ids::{DeviceId, JobId, ModelId};
use crate::job::JobSpec;
use crate::time::Time;

mod profile;

use profile::FreeProfile;

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
/// that a pass need not visit every running job; and per model, how many held devices end
/// when, so that conservative backfilling's profile needs no sort.
#[derive(Clone, Debug, Default)]
pub struct DeviceEnds {
    end: Vec<Time>,
    holders: Vec<u16>,
    model: Vec<ModelId>,
    /// By model index: (expected end, held devices of the model ending then), sorted by end.
    by_model: Vec<Vec<(Time, u32)>>,
}

impl DeviceEnds {
    fn slot(&mut self, cluster: &ClusterState, device: DeviceId) -> usize {
        let i = device.index();
        if self.end.len() <= i {
            self.end.resize(i + 1, Time::ZERO);
            self.holders.resize(i + 1, 0);
            self.model.resize(i + 1, ModelId(0));
        }
        self.model[i] = cluster.device(device).model;
        i
    }

    /// Sets device `i`'s holder count and latest end, keeping `by_model` in step.
    fn set(&mut self, i: usize, holders: u16, end: Time) {
        let m = self.model[i].index();
        if self.by_model.len() <= m {
            self.by_model.resize(m + 1, Vec::new());
        }
        let counts = &mut self.by_model[m];
        if self.holders[i] > 0 {
            let at = counts.binary_search_by_key(&self.end[i], |e| e.0).expect("a held device is counted at its end");
            counts[at].1 -= 1;
            if counts[at].1 == 0 {
                counts.remove(at);
            }
        }
        if holders > 0 {
            match counts.binary_search_by_key(&end, |e| e.0) {
                Ok(at) => counts[at].1 += 1,
                Err(at) => counts.insert(at, (end, 1)),
            }
        }
        self.holders[i] = holders;
        self.end[i] = if holders > 0 { end } else { Time::ZERO };
    }

    /// A job took these devices and is expected to end at `end`.
    pub fn hold(&mut self, cluster: &ClusterState, allocation: &Allocation, end: Time) {
        for share in &allocation.devices {
            let i = self.slot(cluster, share.device);
            self.set(i, self.holders[i] + 1, self.end[i].max(end));
        }
    }

    /// A holder's expected end moved later (its start was acknowledged after the launch).
    pub fn extend(&mut self, cluster: &ClusterState, allocation: &Allocation, end: Time) {
        for share in &allocation.devices {
            let i = self.slot(cluster, share.device);
            if self.holders[i] > 0 {
                self.set(i, self.holders[i], self.end[i].max(end));
            }
        }
    }

    /// A job let go of these devices; `others_end(device)` is the latest expected end of the
    /// jobs still holding a shared device.
    pub fn release(&mut self, cluster: &ClusterState, allocation: &Allocation, others_end: impl Fn(DeviceId) -> Time) {
        for share in &allocation.devices {
            let i = self.slot(cluster, share.device);
            let holders = self.holders[i].saturating_sub(1);
            let end = if holders == 0 { Time::ZERO } else { others_end(share.device) };
            self.set(i, holders, end);
        }
    }

    fn holders(&self, i: usize) -> u16 {
        self.holders.get(i).copied().unwrap_or(0)
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
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Easy {
    job: JobId,
    models: crate::catalogue::ModelSet,
    start: Option<Time>,
    /// Devices of the head's models expected free by `start` beyond the `needed`.
    spare: i64,
}

/// An EASY backfiller as it stands (its profile and the head's reservation), so that a
/// restored scheduler checks a submission behind the blocked head against exactly what the
/// original would have.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EasySnapshot {
    /// When the profile was made.
    pub made_at: Time,
    pub busy_until: Vec<Time>,
    pub easy: Option<Easy>,
    pub wall: Option<JobId>,
}

/// Conservative: one reservation's devices of one model.
#[derive(Clone, Copy, Debug)]
struct Span {
    /// Index into `Backfiller::reservations`.
    reservation: usize,
    model: ModelId,
    from: Time,
    /// `Time::MAX` when the job states no duration.
    to: Time,
    devices: i32,
}

/// How many devices of each model a reservation takes.
enum Split {
    One(ModelId, i32),
    Several(Vec<(ModelId, i32)>),
}

impl Split {
    fn iter(&self) -> impl Iterator<Item = (ModelId, i32)> + '_ {
        let (one, several) = match self {
            Split::One(m, n) => (Some((*m, *n)), &[][..]),
            Split::Several(v) => (None, &v[..]),
        };
        one.into_iter().chain(several.iter().copied())
    }
}

/// Conservative backfilling's plan: per model, devices expected free and unreserved over
/// time, and what each reservation took from it.
#[derive(Default)]
struct Plan {
    /// By model index, for the models the cluster has.
    profiles: Vec<Option<FreeProfile>>,
    built: bool,
    /// Reservations' devices per model, in the order the reservations were made.
    spans: Vec<Span>,
    /// By model index: the reservation (with no finite start) that took every device of the
    /// model it could ever get, so that no later job may take any for ever.
    closed: Vec<Option<usize>>,
    /// Models with devices, by index.
    present: Vec<ModelId>,
    usable_count: Vec<i32>,
    /// Buffers reused by `reserve` and `blocker`.
    demand: Vec<(ModelId, Time, Time)>,
    edges: Vec<(Time, i32)>,
    open: Vec<ModelId>,
}

/// The device profile of one scheduling pass and the reservations made in it.
pub struct Backfiller {
    mode: BackfillMode,
    now: Time,
    models: Vec<ModelId>,
    /// Per device: when it is expected whole and free.
    busy_until: Vec<Time>,
    easy: Option<Easy>,
    /// Conservative: reservations in queue order, and what they hold.
    reservations: Vec<Reservation>,
    plan: Plan,
    /// A blocked job got no reservation (it asks for no device): nothing may pass it.
    wall: Option<JobId>,
}

impl Backfiller {
    /// The profile of the cluster now, from the expected ends of the jobs holding devices.
    pub fn new(mode: BackfillMode, cluster: &ClusterState, now: Time, ends: &DeviceEnds) -> Backfiller {
        Backfiller::renew(None, mode, cluster, now, ends)
    }

    /// Its state, under EASY; `None` under the other modes.
    pub fn easy_snapshot(&self) -> Option<EasySnapshot> {
        (self.mode == BackfillMode::Easy).then(|| EasySnapshot { made_at: self.now, busy_until: self.busy_until.clone(), easy: self.easy.clone(), wall: self.wall })
    }

    /// An EASY backfiller as `snapshot` saved it, on `cluster` (which must have the devices it
    /// had then).
    pub fn from_easy_snapshot(snapshot: &EasySnapshot, cluster: &ClusterState) -> Option<Backfiller> {
        let devices = cluster.devices();
        if devices.len() != snapshot.busy_until.len() {
            return None;
        }
        Some(Backfiller {
            mode: BackfillMode::Easy,
            now: snapshot.made_at,
            models: devices.iter().map(|d| d.model).collect(),
            busy_until: snapshot.busy_until.clone(),
            easy: snapshot.easy.clone(),
            reservations: Vec::new(),
            plan: Plan::default(),
            wall: snapshot.wall,
        })
    }

    /// `new`, reusing the buffers of an earlier pass's backfiller.
    pub fn renew(old: Option<Backfiller>, mode: BackfillMode, cluster: &ClusterState, now: Time, ends: &DeviceEnds) -> Backfiller {
        let (mut models, mut busy_until, mut reservations, mut plan) = match old {
            Some(b) => (b.models, b.busy_until, b.reservations, b.plan),
            None => Default::default(),
        };
        let devices = cluster.devices();
        // A free device is free now; a held one when its last holder ends (now if overdue);
        // an unusable one never.
        let usable = |i: usize| devices[i].healthy && cluster.node(devices[i].node).up;
        busy_until.clear();
        busy_until.extend((0..devices.len()).map(|i| {
            if !usable(i) {
                Time::MAX
            } else if ends.holders(i) == 0 {
                now
            } else {
                ends.end[i].max(now)
            }
        }));
        models.clear();
        models.extend(devices.iter().map(|d| d.model));
        reservations.clear();
        plan.spans.clear();
        plan.built = false;
        let mut backfiller = Backfiller { mode, now, models, busy_until, easy: None, reservations, plan, wall: None };
        if mode == BackfillMode::Conservative {
            backfiller.build_plan(ends, &usable);
        }
        backfiller
    }

    /// Conservative: the per-model profiles, from the held devices' ends kept by model (no
    /// sort), less the unusable devices among them.
    fn build_plan(&mut self, ends: &DeviceEnds, usable: &dyn Fn(usize) -> bool) {
        let count = self.models.iter().map(|m| m.index() + 1).max().unwrap_or(0);
        let plan = &mut self.plan;
        // Per model: usable devices, or -1 if the cluster has none of it.
        let mut usable_count = std::mem::take(&mut plan.usable_count);
        usable_count.clear();
        usable_count.resize(count, -1);
        // Unusable devices that are held: (model, end), taken out of the counts by end.
        let mut unusable_held: Vec<(ModelId, Time)> = Vec::new();
        for (i, &m) in self.models.iter().enumerate() {
            let c = &mut usable_count[m.index()];
            *c = (*c).max(0);
            if usable(i) {
                *c += 1;
            } else if ends.holders(i) > 0 {
                unusable_held.push((m, ends.end[i]));
            }
        }
        let now = self.now;
        plan.profiles.resize(count, None);
        for (m, slot) in plan.profiles.iter_mut().enumerate() {
            if usable_count[m] < 0 {
                *slot = None;
                continue;
            }
            let held = ends.by_model.get(m).map_or(&[][..], |v| &v[..]);
            // Devices expected free only after now (or never), usable ones only.
            let later = &held[held.partition_point(|e| e.0 <= now)..];
            let unusable = |t: Time| unusable_held.iter().filter(|&&(um, e)| um.index() == m && e == t).count() as u32;
            let unusable_later = unusable_held.iter().filter(|&&(um, e)| um.index() == m && e > now).count() as u32;
            let held_later = later.iter().map(|e| e.1).sum::<u32>() - unusable_later;
            let free_now = usable_count[m] - held_later as i32;
            let counts = later.iter().map(|&(t, n)| (t, if unusable_held.is_empty() { n } else { n - unusable(t) }));
            let counts = counts.filter(|&(t, n)| t != Time::MAX && n > 0);
            match slot {
                Some(p) => p.reset(now, free_now, counts),
                None => *slot = Some(FreeProfile::from_counts(now, free_now, counts)),
            }
        }
        plan.closed.clear();
        plan.closed.resize(count, None);
        plan.present.clear();
        plan.present.extend((0..count).filter(|&m| usable_count[m] >= 0).map(|m| ModelId(m as u16)));
        plan.usable_count = usable_count;
        plan.built = true;
    }

    /// Conservative: the earliest start of `needed` devices of `models` for `duration`, and how
    /// many of each model it takes, on the profiles of the open models.
    fn earliest_start(&self, open: &[ModelId], needed: i32, duration: Option<Time>) -> Option<(Time, Split)> {
        let profile = |m: ModelId| self.plan.profiles[m.index()].as_ref().expect("open models have profiles");
        if let [m] = open {
            let t = profile(*m).earliest(needed, duration)?;
            return Some((t, Split::One(*m, needed)));
        }
        // Several models: a start is feasible when the fewest free of each model over the
        // window add up to enough; only a segment start of some model can be the first.
        let mut candidates: Vec<Time> = vec![self.now];
        for &m in open {
            candidates.extend(profile(m).starts_within(self.now, Time::MAX));
        }
        candidates.sort_unstable();
        candidates.dedup();
        for t in candidates {
            let end = duration.map_or(Time::MAX, |d| add_or_never(t, d));
            // A zero-length job still needs its devices at t: the window is at least [t, t + 1 µs).
            let window_end = end.max(add_or_never(t, Time(1)));
            let mut mins: Vec<(i32, ModelId)> = open.iter().map(|&m| (profile(m).min_over(t, window_end).max(0), m)).collect();
            if mins.iter().map(|&(n, _)| n as i64).sum::<i64>() < needed as i64 {
                continue;
            }
            // The models with most to spare give first.
            mins.sort_unstable_by_key(|&(n, m)| (std::cmp::Reverse(n), m));
            let mut left = needed;
            let mut split = Vec::new();
            for (n, m) in mins {
                let take = n.min(left);
                if take > 0 {
                    split.push((m, take));
                    left -= take;
                }
            }
            return Some((t, Split::Several(split)));
        }
        None
    }

    /// Reserves for a blocked job: under EASY only the first job reserved (later calls do
    /// nothing); under conservative every job, in the order they are called.
    pub fn reserve(&mut self, job: &JobSpec) -> Option<Reservation> {
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
                let index = self.reservations.len();
                let mut open = std::mem::take(&mut self.plan.open);
                open.clear();
                open.extend(self.plan.present.iter().copied().filter(|&m| job.devices.models.allows(m) && self.plan.closed[m.index()].is_none()));
                let duration = job.stated_duration;
                let start = match self.earliest_start(&open, needed as i32, duration) {
                    Some((t, split)) => {
                        let end = duration.map_or(Time::MAX, |d| add_or_never(t, d));
                        for (model, devices) in split.iter() {
                            self.plan.profiles[model.index()].as_mut().expect("open").add(t, end, -devices);
                            self.plan.spans.push(Span { reservation: index, model, from: t, to: end, devices });
                        }
                        Some(t)
                    }
                    None => {
                        // Never, on the jobs' stated durations: it needs devices held by jobs
                        // that state none. It takes every device of its models it could ever
                        // get, so no later job takes them for ever.
                        for &m in &open {
                            self.plan.closed[m.index()] = Some(index);
                        }
                        None
                    }
                };
                self.plan.open = open;
                let r = Reservation { job: job.id, start, devices: needed };
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
                if let Some(held) = self.blocker(allocation, end, self.reservations.len()) {
                    return Err(held);
                }
                for share in &allocation.devices {
                    let i = share.device.index();
                    let (from, to) = (self.busy_until[i], self.busy_until[i].max(end));
                    if let Some(p) = self.plan.profiles[self.models[i].index()].as_mut() {
                        p.add(from, to, -1);
                    }
                }
            }
        }
        for share in &allocation.devices {
            let b = &mut self.busy_until[share.device.index()];
            *b = (*b).max(end);
        }
        Ok(())
    }

    /// Conservative: which of the first `made` reservations a job on `allocation` until `end`
    /// would delay. Per model, the job holds each of its devices from when the device is
    /// expected free until `end`; at the first instant where that leaves fewer devices than
    /// those reservations hold, the one named is the first (in queue order) of the
    /// reservations then active that no longer fit. A reservation that closed one of the
    /// job's models comes first if it was made earlier.
    pub fn blocker(&mut self, allocation: &Allocation, end: Time, made: usize) -> Option<Held> {
        debug_assert!(self.plan.built, "conservative only");
        let made = made.min(self.reservations.len());
        // Per model the job touches: when each of its devices is taken, [expected free, end).
        let mut demand = std::mem::take(&mut self.plan.demand);
        demand.clear();
        demand.extend(
            allocation
                .devices
                .iter()
                .map(|s| s.device.index())
                .filter(|&i| self.busy_until[i] != Time::MAX && end > self.busy_until[i])
                .map(|i| (self.models[i], self.busy_until[i], end)),
        );
        demand.sort_unstable();
        let mut first: Option<usize> = None;
        for group in demand.chunk_by(|a, b| a.0 == b.0) {
            let model = group[0].0;
            if let Some(c) = self.plan.closed[model.index()].filter(|&c| c < made) {
                first = Some(first.map_or(c, |f| f.min(c)));
            }
            let Some(profile) = self.plan.profiles[model.index()].as_ref() else { continue };
            // What the job takes, less what reservations from the `made`-th on hold (they are
            // not counted): the profile must have that much free wherever it is positive.
            let later = self.plan.spans.iter().filter(|s| s.model == model && s.reservation >= made);
            let Some((t, taken)) = first_shortfall(profile, group, later, &mut self.plan.edges) else { continue };
            // Free at t before the counted reservations, less what the job takes; the
            // reservations active at t, in queue order, until they no longer fit.
            let active = || self.plan.spans.iter().filter(|s| s.model == model && s.reservation < made && s.from <= t && t < s.to);
            let mut slack = profile.at(t) + active().map(|s| s.devices).sum::<i32>() - taken;
            if let Some(s) = active().find(|s| {
                slack -= s.devices;
                slack < 0
            }) {
                first = Some(first.map_or(s.reservation, |f| f.min(s.reservation)));
            }
        }
        self.plan.demand = demand;
        first.map(|r| {
            let r = &self.reservations[r];
            Held { by: r.job, reserved_start: r.start }
        })
    }

    /// Conservative: whether a held job's blocker may change when time passes with the plan
    /// unchanged (`advance`). On one model that no reservation closed, it cannot: the job's
    /// interval only grows at its end, and nothing changes before the first instant it fell
    /// short, which stays the first. Over several models another may fall short first in the
    /// part added, and on a closed model a shortfall may newly appear beside the closing
    /// reservation and name an earlier one.
    pub fn blocker_may_move(&self, allocation: &Allocation) -> bool {
        let mut models = allocation.devices.iter().map(|s| self.models[s.device.index()]);
        let Some(first) = models.next() else { return false };
        models.any(|m| m != first) || self.plan.closed.get(first.index()).is_some_and(Option::is_some)
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
        while let Some(s) = self.plan.spans.last().filter(|s| s.reservation >= keep).copied() {
            self.plan.spans.pop();
            self.plan.profiles[s.model.index()].as_mut().expect("spans are on models with profiles").add(s.from, s.to, s.devices);
        }
        for p in self.plan.profiles.iter_mut().flatten() {
            p.coalesce();
        }
        for c in &mut self.plan.closed {
            if c.is_some_and(|c| c >= keep) {
                *c = None;
            }
        }
    }

    /// Moves the profile to a later `now`, when it is then exactly the profile that would be
    /// built afresh, with the same reservations: every reservation starts after `now`, and no
    /// device is expected free in (old now, `now`] (such a device would change the counts
    /// free now). Devices free (or overdue) at the old now are free at the new.
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
        for p in self.plan.profiles.iter_mut().flatten() {
            p.restart_at(now);
        }
        self.now = now;
        true
    }

    fn model_of(&self, device: DeviceId) -> ModelId {
        self.models[device.index()]
    }
}

/// The first instant at which a job taking devices of one model over the intervals of `taken`
/// (model, from, to) would need more than `profile` has free, where the reservations `uncounted`
/// (included in the profile) are given back; and how many it would then need.
fn first_shortfall<'a>(profile: &FreeProfile, taken: &[(ModelId, Time, Time)], uncounted: impl Iterator<Item = &'a Span>, edges: &mut Vec<(Time, i32)>) -> Option<(Time, i32)> {
    edges.clear();
    edges.extend(uncounted.flat_map(|s| [(s.from, -s.devices), (s.to, s.devices)]));
    let uniform = taken.first().filter(|&&(_, f, t)| taken.iter().all(|&(_, a, b)| (a, b) == (f, t)));
    if let (Some(&(_, from, to)), true) = (uniform, edges.is_empty()) {
        let need = taken.len() as i32;
        return profile.first_below(from, to, need).map(|t| (t, need));
    }
    edges.extend(taken.iter().flat_map(|&(_, from, to)| [(from, 1), (to, -1)]));
    edges.retain(|e| e.0 != Time::MAX);
    edges.sort_unstable();
    let mut need = 0;
    for (i, &(t, delta)) in edges.iter().enumerate() {
        need += delta;
        let until = edges.get(i + 1).map_or(Time::MAX, |e| e.0);
        if need > 0 && until > t {
            if let Some(at) = profile.first_below(t, until, need) {
                return Some((at, need));
            }
        }
    }
    None
}
