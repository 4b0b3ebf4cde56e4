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
//! it. Cost: O(devices x distinct expected end times) per reserved job, at most `depth` per
//! pass; EASY costs O(devices + held shares) per pass.
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

/// A reservation: the job, when it is expected to start (`None`: no finite time, because it
/// needs devices held by jobs that state no duration), and for conservative, the devices it
/// holds from then until its expected end.
#[derive(Clone, Debug, PartialEq)]
pub struct Reservation {
    pub job: JobId,
    pub start: Option<Time>,
    pub devices: Vec<DeviceId>,
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
    /// A blocked job got no reservation (it asks for no device): nothing may pass it.
    wall: Option<JobId>,
}

impl Backfiller {
    /// The profile of the cluster now. `holders` are the jobs holding resources, with their
    /// expected ends (`expected_end`).
    pub fn new<'a>(mode: BackfillMode, cluster: &ClusterState, now: Time, holders: impl Iterator<Item = (&'a Allocation, Time)>) -> Backfiller {
        let devices = cluster.devices();
        // A free device is free now; a held one when its last holder ends; an unusable one never.
        let mut busy_until: Vec<Time> = vec![now; devices.len()];
        for (alloc, end) in holders {
            for share in &alloc.devices {
                let b = &mut busy_until[share.device.index()];
                *b = (*b).max(end);
            }
        }
        for (b, d) in busy_until.iter_mut().zip(devices) {
            if !(d.healthy && cluster.node(d.node).up) {
                *b = Time::MAX;
            }
        }
        Backfiller {
            mode,
            now,
            models: devices.iter().map(|d| d.model).collect(),
            busy_until,
            easy: None,
            reservations: Vec::new(),
            reserved_on: if mode == BackfillMode::Conservative { vec![Vec::new(); devices.len()] } else { Vec::new() },
            wall: None,
        }
    }

    /// Devices of `job`'s models, usable, sorted by when they are expected free (then id).
    fn candidates(&self, cluster: &ClusterState, job: &JobSpec) -> Vec<(Time, DeviceId)> {
        let mut c: Vec<(Time, DeviceId)> = cluster
            .devices()
            .iter()
            .enumerate()
            .filter(|(i, d)| job.devices.models.allows(d.model) && self.busy_until[*i] != Time::MAX)
            .map(|(i, _)| (self.busy_until[i], DeviceId(i as u32)))
            .collect();
        c.sort_unstable();
        c
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
                let c = self.candidates(cluster, job);
                let start = c.get(needed as usize - 1).map(|&(t, _)| t);
                let free_by_start = start.map_or(c.len(), |t| c.iter().take_while(|&&(b, _)| b <= t).count());
                self.easy = Some(Easy { job: job.id, models: job.devices.models, start, spare: free_by_start as i64 - needed as i64 });
                Some(Reservation { job: job.id, start, devices: c.iter().take(needed as usize).map(|&(_, d)| d).collect() })
            }
            BackfillMode::Conservative => {
                let duration = job.stated_duration;
                let c = self.candidates(cluster, job);
                let mut times: Vec<Time> = c.iter().map(|&(t, _)| t).collect();
                for r in self.reserved_on.iter().flatten() {
                    if r.1 > self.now && r.1 != Time::MAX {
                        times.push(r.1);
                    }
                }
                times.push(self.now);
                times.sort_unstable();
                times.dedup();
                let index = self.reservations.len();
                for t in times {
                    let end = duration.map_or(Time::MAX, |d| add_or_never(t, d));
                    // The devices freed latest (but by t) first, so that devices free now stay
                    // free for jobs that can start now.
                    let eligible: Vec<DeviceId> = c
                        .iter()
                        .take_while(|&&(b, _)| b <= t)
                        .filter(|&&(_, d)| self.reserved_on[d.index()].iter().all(|&(s, e, _)| e <= t || s >= end))
                        .map(|&(_, d)| d)
                        .collect();
                    let free: Vec<DeviceId> = eligible.iter().rev().take(needed as usize).copied().collect();
                    if free.len() == needed as usize {
                        for &d in &free {
                            self.reserved_on[d.index()].push((t, end, index));
                        }
                        let r = Reservation { job: job.id, start: Some(t), devices: free };
                        self.reservations.push(r.clone());
                        return Some(r);
                    }
                }
                // Never, on the jobs' stated durations: it needs devices held by jobs that state
                // none. It reserves every device of its models it could ever get, from when each
                // is expected free, so no later job takes them for ever.
                let r = Reservation { job: job.id, start: None, devices: c.iter().map(|&(_, d)| d).collect() };
                for &(b, d) in &c {
                    self.reserved_on[d.index()].push((b, Time::MAX, index));
                }
                self.reservations.push(r.clone());
                Some(r)
            }
        }
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
                for share in &allocation.devices {
                    for &(s, e, r) in &self.reserved_on[share.device.index()] {
                        if s < end && e > self.now {
                            let r = &self.reservations[r];
                            return Err(Held { by: r.job, reserved_start: r.start });
                        }
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

    fn model_of(&self, device: DeviceId) -> ModelId {
        self.models[device.index()]
    }
}
