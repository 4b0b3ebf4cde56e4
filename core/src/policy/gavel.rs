//! `gavel`: heterogeneity-aware max-min fairness in rounds, after Narayanan et al., "Gavel:
//! Heterogeneity-Aware Cluster Scheduling Policies for Deep Learning Workloads" (OSDI'20).
//!
//! Each round (default 360 s, Gavel's), the active jobs (queued and running) are grouped into
//! job types: same class, device count, share and allowed models. Jobs of one type are
//! interchangeable, so an allocation that treats them alike loses nothing, and the linear
//! program stays small (types x models variables, not jobs x models). With `X[t][m]` the
//! fraction of the round a job of type `t` spends on model `m`, `w[t][m]` the class's speed on
//! `m` (the speed table; 1.0 for all without one), `n_t` the jobs of the type and `s_t` the
//! devices each holds:
//!
//! ```text
//! stage 1: maximise z
//!          z <= sum_m w[t][m] X[t][m] / e_t       for every type t
//!          sum_m X[t][m] <= 1                     for every type t
//!          sum_t n_t s_t X[t][m] <= D_m           for every model m
//! stage 2: maximise sum_t n_t sum_m w[t][m] X[t][m] / e_t
//!          with every type's normalised throughput >= z* (1 - 1e-6), and the same rows
//! ```
//!
//! `e_t` is the job's throughput under the equal share: every active job gets `1/N` of each
//! model's devices, i.e. the time fraction `D_m / (N s_t)` on each allowed model (scaled down
//! so the fractions sum to at most 1), so a normalised throughput of 1 is what an equal split
//! of the cluster would give. Stage 1 is Gavel's max-min program; stage 2, among the max-min
//! optimal allocations, picks one that uses the devices best (with one model it maximises
//! the device-time used), so a vertex that leaves capacity on the table is not chosen.
//!
//! The allocation is turned into a round as Gavel does: each job's priority on each model is
//! `X[j][m] / f[j][m]`, `f` the fraction of its active time it has run on `m` so far (a job
//! that has not run there yet ranks first, larger shares first among those); pairs are taken
//! greedily in priority order (ties: the job already running there, then the oldest), each
//! job on one model whose devices are not yet all given out this round. Devices left over go
//! to the remaining jobs, oldest first, on their fastest model with room (`RoundFill`), so the
//! round boundary never leaves devices idle that a queued job could use.
//!
//! The program is solved once per round, over types, and not at all when the types, their
//! counts and the devices are those of the previous round. CPU-only jobs take no part: they
//! start whenever a node has room.

use crate::catalogue::ModelSet;
use crate::ids::{ClassId, JobId, ModelId};
use crate::lp::{LinearProgram, LpError, Relation};
use crate::policy::placement::SpeedTable;
use crate::policy::round::{RoundInput, RoundJob, RoundPlan, RoundPlanner, RoundService, RoundStats, Standing};
use crate::scheduler::IdHasher;
use crate::time::Time;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

/// One job type's demand, as the program sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDemand {
    /// Active jobs of the type.
    pub jobs: u32,
    /// Devices each job holds (device equivalents: a half share is 0.5).
    pub scale: f64,
    /// Speed on each model of the program (0: it cannot run there).
    pub speeds: Vec<f64>,
}

/// The max-min allocation over types x models.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxMinAllocation {
    /// `share[t][k]`: the fraction of a round a job of type `t` spends on model `k`.
    pub share: Vec<Vec<f64>>,
    /// Each type's throughput under the equal share (`e_t`).
    pub equal: Vec<f64>,
    /// Each type's throughput under `share` over `equal`.
    pub normalised: Vec<f64>,
    /// The smallest of `normalised` (stage 1's optimum).
    pub min_normalised: f64,
    pub vars: u32,
    pub pivots: u32,
}

/// Stage 2 keeps every type within this factor of stage 1's optimum.
const STAGE_TWO_SLACK: f64 = 1e-6;

/// Solves Gavel's max-min program (see the module's documentation) for `types` over models with
/// `devices[k]` devices each. Types that can run nowhere get no share and are left out of the
/// minimum.
pub fn max_min_allocation(types: &[TypeDemand], devices: &[f64]) -> Result<MaxMinAllocation, LpError> {
    let models = devices.len();
    let total_jobs: f64 = types.iter().map(|t| t.jobs as f64).sum();
    let equal: Vec<f64> = types.iter().map(|t| equal_share_throughput(t, devices, total_jobs)).collect();
    let mut var_of: Vec<Vec<Option<usize>>> = vec![vec![None; models]; types.len()];
    let mut vars = 0;
    for (t, ty) in types.iter().enumerate() {
        if equal[t] <= 0.0 || ty.jobs == 0 {
            continue;
        }
        for k in 0..models {
            if ty.speeds[k] > 0.0 && devices[k] > 0.0 {
                var_of[t][k] = Some(vars);
                vars += 1;
            }
        }
    }
    if vars == 0 {
        // Nothing can run anywhere: no program to solve (and z alone would be unbounded).
        let share = vec![vec![0.0; models]; types.len()];
        let normalised = vec![0.0; types.len()];
        return Ok(MaxMinAllocation { share, equal, normalised, min_normalised: 0.0, vars: 0, pivots: 0 });
    }
    let normalised_row = |t: usize, sign: f64| -> Vec<(usize, f64)> {
        (0..models).filter_map(|k| var_of[t][k].map(|v| (v, sign * types[t].speeds[k] / equal[t]))).collect()
    };
    let add_common_rows = |lp: &mut LinearProgram| {
        for t in 0..types.len() {
            let row: Vec<(usize, f64)> = var_of[t].iter().flatten().map(|&v| (v, 1.0)).collect();
            if !row.is_empty() {
                lp.add_constraint(&row, Relation::Le, 1.0);
            }
        }
        for k in 0..models {
            let row: Vec<(usize, f64)> =
                (0..types.len()).filter_map(|t| var_of[t][k].map(|v| (v, types[t].jobs as f64 * types[t].scale))).collect();
            if !row.is_empty() {
                lp.add_constraint(&row, Relation::Le, devices[k]);
            }
        }
    };

    // Stage 1: the largest minimum normalised throughput.
    let z = vars;
    let mut stage1 = LinearProgram::new(vars + 1);
    stage1.set_objective(z, 1.0);
    for t in 0..types.len() {
        if var_of[t].iter().any(Option::is_some) {
            let mut row = normalised_row(t, -1.0);
            row.push((z, 1.0));
            stage1.add_constraint(&row, Relation::Le, 0.0);
        }
    }
    add_common_rows(&mut stage1);
    let first = stage1.solve()?;
    let z_star = first.x[z];

    // Stage 2: among allocations that keep that minimum, the most normalised throughput.
    let mut stage2 = LinearProgram::new(vars);
    for t in 0..types.len() {
        for (v, c) in normalised_row(t, 1.0) {
            stage2.set_objective(v, types[t].jobs as f64 * c);
        }
    }
    for t in 0..types.len() {
        if var_of[t].iter().any(Option::is_some) {
            stage2.add_constraint(&normalised_row(t, 1.0), Relation::Ge, z_star * (1.0 - STAGE_TWO_SLACK));
        }
    }
    add_common_rows(&mut stage2);
    let (x, pivots) = match stage2.solve() {
        Ok(second) => (second.x, first.pivots + second.pivots),
        // Stage 1's vertex is max-min optimal too; stage 2 only refines it.
        Err(_) => (first.x[..vars].to_vec(), first.pivots),
    };
    let share: Vec<Vec<f64>> =
        (0..types.len()).map(|t| (0..models).map(|k| var_of[t][k].map_or(0.0, |v| x[v].clamp(0.0, 1.0))).collect()).collect();
    let normalised: Vec<f64> = (0..types.len())
        .map(|t| if equal[t] > 0.0 { (0..models).map(|k| share[t][k] * types[t].speeds[k]).sum::<f64>() / equal[t] } else { 0.0 })
        .collect();
    Ok(MaxMinAllocation { share, equal, normalised, min_normalised: z_star, vars: vars as u32 + 1, pivots })
}

/// A job's throughput when every one of `total_jobs` active jobs gets an equal share of each
/// model's devices.
fn equal_share_throughput(t: &TypeDemand, devices: &[f64], total_jobs: f64) -> f64 {
    if total_jobs <= 0.0 || t.scale <= 0.0 {
        return 0.0;
    }
    let fractions: Vec<f64> =
        devices.iter().zip(&t.speeds).map(|(&d, &w)| if w > 0.0 { d / (total_jobs * t.scale) } else { 0.0 }).collect();
    let sum: f64 = fractions.iter().sum();
    let scale_down = if sum > 1.0 { 1.0 / sum } else { 1.0 };
    fractions.iter().zip(&t.speeds).map(|(x, w)| x * scale_down * w).sum()
}

/// What makes two jobs interchangeable for the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct TypeKey {
    class: ClassId,
    count: u32,
    share_milli: u16,
    models: u64,
}

impl TypeKey {
    fn of(job: &RoundJob) -> TypeKey {
        TypeKey { class: job.class, count: job.devices.count, share_milli: job.devices.share_milli, models: job.devices.models.0 }
    }
}

/// Service a job has had while active, for its priorities.
#[derive(Clone, Debug, Default)]
struct History {
    active_s: f64,
    received_s: Vec<(ModelId, f64)>,
    /// The last round it was active in (entries of finished jobs are dropped).
    seen: u64,
}

impl History {
    fn received_on(&self, model: ModelId) -> f64 {
        self.received_s.iter().find(|(m, _)| *m == model).map_or(0.0, |&(_, s)| s)
    }
}

/// The previous round's program and solution.
#[derive(Clone, Debug, PartialEq)]
struct Solved {
    types: Vec<(TypeKey, u32)>,
    devices: Vec<u32>,
    share: Vec<Vec<f64>>,
}

/// The `gavel` round planner. See the module's documentation.
#[derive(Debug)]
pub struct Gavel {
    interval: Time,
    backfill: bool,
    speeds: Arc<SpeedTable>,
    history: HashMap<JobId, History, BuildHasherDefault<IdHasher>>,
    last_tick: Option<Time>,
    previous: Option<Solved>,
    /// The program this round solved, for `last_program`.
    solved_now: Option<(Vec<TypeDemand>, Vec<f64>)>,
    stats: RoundStats,
    /// Buffers kept between rounds, so a warm round allocates little: per job, the fraction of
    /// its active time on each model of the round (job-major) and on any; (type, job) pairs
    /// sorted into types; the (job, model) pairs in priority order.
    received_frac: Vec<f64>,
    received_any: Vec<f64>,
    typed: Vec<u32>,
    type_ids: HashMap<TypeKey, usize, BuildHasherDefault<IdHasher>>,
    pairs: Vec<([u64; 3], u32)>,
}

impl Gavel {
    pub fn new(interval: Time, backfill: bool) -> Gavel {
        Gavel {
            interval,
            backfill,
            speeds: Arc::new(SpeedTable::default()),
            history: HashMap::default(),
            last_tick: None,
            previous: None,
            solved_now: None,
            stats: RoundStats::default(),
            received_frac: Vec::new(),
            received_any: Vec::new(),
            typed: Vec::new(),
            type_ids: HashMap::default(),
            pairs: Vec::new(),
        }
    }

    /// Books the service of the interval since the last tick, and notes for each job the
    /// fraction of its active time it ran on each of `models` (`self.received_frac`, job-major)
    /// and on any model (`self.received_any`).
    fn book_service(&mut self, input: &RoundInput<'_>, models: &[ModelId]) {
        let since = self.last_tick.unwrap_or(Time::ZERO);
        self.received_frac.clear();
        self.received_any.clear();
        for job in input.jobs {
            let h = self.history.entry(job.id).or_default();
            h.seen = input.round;
            h.active_s += input.now.saturating_sub(job.submitted.max(since)).as_secs_f64();
            if let (true, Some(model)) = (job.running, job.running_on) {
                let ran = input.now.saturating_sub(job.run_started.max(since)).as_secs_f64();
                match h.received_s.iter_mut().find(|(m, _)| *m == model) {
                    Some((_, s)) => *s += ran,
                    None => h.received_s.push((model, ran)),
                }
            }
            let active = h.active_s;
            let h = &*h;
            self.received_frac.extend(models.iter().map(|&m| if active > 0.0 { h.received_on(m) / active } else { 0.0 }));
            self.received_any.push(if active > 0.0 { h.received_s.iter().map(|(_, s)| s).sum::<f64>() / active } else { 0.0 });
        }
        let round = input.round;
        self.history.retain(|_, h| h.seen == round);
        self.last_tick = Some(input.now);
    }

    /// The allocation for this round's types: the previous one when nothing changed.
    fn allocation(&mut self, keys: &[(TypeKey, u32)], demands: &[TypeDemand], devices: &[u32], device_f: &[f64]) -> Vec<Vec<f64>> {
        self.solved_now = None;
        if let Some(prev) = &self.previous {
            if prev.types == keys && prev.devices == devices {
                self.stats.lp_reused += 1;
                return prev.share.clone();
            }
        }
        let share = match max_min_allocation(demands, device_f) {
            Ok(a) => {
                self.stats.lp_solves += 1;
                self.stats.lp_pivots += a.pivots as u64;
                self.stats.lp_pivots_max = self.stats.lp_pivots_max.max(a.pivots);
                self.stats.lp_types_max = self.stats.lp_types_max.max(demands.len() as u32);
                self.stats.lp_vars_max = self.stats.lp_vars_max.max(a.vars);
                a.share
            }
            Err(_) => {
                // Never seen in practice; the round still runs, on the equal share.
                self.stats.lp_failures += 1;
                let total: f64 = demands.iter().map(|d| d.jobs as f64).sum();
                demands
                    .iter()
                    .map(|d| {
                        let x: Vec<f64> =
                            device_f.iter().zip(&d.speeds).map(|(&dm, &w)| if w > 0.0 { dm / (total * d.scale) } else { 0.0 }).collect();
                        let sum: f64 = x.iter().sum();
                        x.iter().map(|v| if sum > 1.0 { v / sum } else { *v }).collect()
                    })
                    .collect()
            }
        };
        self.previous = Some(Solved { types: keys.to_vec(), devices: devices.to_vec(), share: share.clone() });
        self.solved_now = Some((demands.to_vec(), device_f.to_vec()));
        share
    }
}

const TINY: f64 = 1e-9;

/// A key that sorts `x` descending as an integer (the IEEE-754 total order, reversed).
fn descending(x: f64) -> u64 {
    let bits = x.to_bits();
    let ascending = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
    !ascending
}

impl RoundPlanner for Gavel {
    fn name(&self) -> &'static str {
        "gavel"
    }

    fn interval(&self) -> Time {
        self.interval
    }

    fn backfill(&self) -> bool {
        self.backfill
    }

    fn set_speeds(&mut self, speeds: Arc<SpeedTable>) {
        self.speeds = speeds;
        self.previous = None;
    }

    fn uses_speeds(&self) -> bool {
        true
    }

    fn stats(&self) -> RoundStats {
        self.stats
    }

    fn last_program(&self) -> Option<(&[TypeDemand], &[f64])> {
        self.solved_now.as_ref().map(|(d, m)| (d.as_slice(), m.as_slice()))
    }

    fn service(&self, job: JobId) -> Option<RoundService> {
        self.history.get(&job).map(|h| RoundService { active_s: h.active_s, received_s: h.received_s.clone() })
    }

    fn restore_service(&mut self, job: JobId, service: RoundService) {
        // `seen` is set to the current round by `restore_last_tick`, which comes after the jobs.
        self.history.insert(job, History { active_s: service.active_s, received_s: service.received_s, seen: u64::MAX });
    }

    fn last_tick(&self) -> Option<Time> {
        self.last_tick
    }

    fn restore_last_tick(&mut self, last_tick: Option<Time>, round: u64) {
        self.last_tick = last_tick;
        for h in self.history.values_mut() {
            h.seen = round;
        }
    }

    fn plan(&mut self, input: &RoundInput<'_>) -> RoundPlan {
        self.stats.rounds += 1;
        self.stats.jobs_total += input.jobs.len() as u64;
        self.stats.jobs_max = self.stats.jobs_max.max(input.jobs.len() as u32);
        // The program's models: those with devices now.
        let models: Vec<ModelId> =
            input.devices_by_model.iter().enumerate().filter(|(_, &d)| d > 0).map(|(m, _)| ModelId(m as u16)).collect();
        self.book_service(input, &models);
        let devices: Vec<u32> = models.iter().map(|m| input.devices_by_model[m.index()]).collect();
        let device_f: Vec<f64> = devices.iter().map(|&d| d as f64).collect();
        // With one model and every job running, the round can only keep them all: each fits
        // (they do now), so every one with a share is chosen and the fill takes the rest.
        if models.len() == 1 && input.jobs.iter().all(|j| j.running || j.devices.count == 0) {
            self.stats.rounds_kept += 1;
            return RoundPlan::KeepRunning;
        }

        // Job types, in key order, each with its jobs in input order: the distinct keys by
        // hash, then sorted (there are few), then the jobs placed by a counting sort.
        let jobs = input.jobs;
        let mut type_ids = std::mem::take(&mut self.type_ids);
        type_ids.clear();
        let mut distinct: Vec<TypeKey> = Vec::new();
        let mut type_of = vec![usize::MAX; jobs.len()];
        for (j, job) in jobs.iter().enumerate() {
            if job.devices.count > 0 {
                let key = TypeKey::of(job);
                let next = distinct.len();
                type_of[j] = *type_ids.entry(key).or_insert_with(|| {
                    distinct.push(key);
                    next
                });
            }
        }
        self.type_ids = type_ids;
        let mut by_key: Vec<usize> = (0..distinct.len()).collect();
        by_key.sort_unstable_by_key(|&i| distinct[i]);
        let mut rank = vec![0usize; distinct.len()];
        for (r, &i) in by_key.iter().enumerate() {
            rank[i] = r;
        }
        let mut keys: Vec<(TypeKey, u32)> = by_key.iter().map(|&i| (distinct[i], 0)).collect();
        for t in type_of.iter_mut().filter(|t| **t != usize::MAX) {
            *t = rank[*t];
            keys[*t].1 += 1;
        }
        let mut typed = std::mem::take(&mut self.typed);
        typed.clear();
        typed.resize(type_of.iter().filter(|&&t| t != usize::MAX).count(), 0);
        let mut next_slot: Vec<usize> = keys.iter().scan(0, |acc, k| {
            let at = *acc;
            *acc += k.1 as usize;
            Some(at)
        }).collect();
        for (j, &t) in type_of.iter().enumerate() {
            if t != usize::MAX {
                typed[next_slot[t]] = j as u32;
                next_slot[t] += 1;
            }
        }
        let demands: Vec<TypeDemand> = keys
            .iter()
            .map(|&(key, count)| {
                let scale = key.count as f64 * key.share_milli as f64 / crate::job::WHOLE_DEVICE_MILLI as f64;
                let set = ModelSet(key.models);
                let speeds = models
                    .iter()
                    .zip(&devices)
                    .map(|(&m, &d)| if set.allows(m) && key.count <= d { self.speeds.speed(key.class, m).max(0.0) } else { 0.0 })
                    .collect();
                TypeDemand { jobs: count, scale, speeds }
            })
            .collect();
        let share = self.allocation(&keys, &demands, &devices, &device_f);

        // Every (job, model) pair with a share, in priority order: priority and share
        // descending, the job running there first, then the oldest job, then the model.
        let nm = models.len();
        let received_on = |j: usize, k: usize| self.received_frac[j * nm + k];
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.clear();
        for &j in &typed {
            let j = j as usize;
            let t = type_of[j];
            for (k, &m) in models.iter().enumerate() {
                let x = share[t][k];
                if x <= TINY {
                    continue;
                }
                let received = received_on(j, k);
                let priority = if received > TINY { x / received } else { f64::INFINITY };
                // The last part packs (elsewhere, seq, k): seq < 2^56 and k < 128 always hold
                // (MAX_MODELS is 64; 2^56 submissions would take millennia).
                debug_assert!(jobs[j].seq < 1 << 56 && k < 128);
                let last = (((jobs[j].running_on != Some(m)) as u64) << 63) | (jobs[j].seq << 7) | k as u64;
                pairs.push(([descending(priority), descending(x), last], j as u32));
            }
        }
        pairs.sort_unstable_by_key(|p| p.0);

        let mut free: Vec<f64> = device_f.clone();
        let mut chosen_at: Vec<bool> = vec![false; jobs.len()];
        let mut chosen: Vec<Standing> = Vec::new();
        for &([_, _, last], j) in &pairs {
            let (j, k) = (j as usize, (last & 127) as usize);
            if chosen_at[j] {
                continue;
            }
            let scale = demands[type_of[j]].scale;
            if free[k] + TINY >= scale {
                free[k] -= scale;
                chosen_at[j] = true;
                let x = share[type_of[j]][k];
                let received = received_on(j, k);
                let priority = (received > TINY).then(|| x / received);
                chosen.push(Standing { job: jobs[j].id, model: Some(models[k]), share: x, received, priority, filled: false });
            }
        }
        // Devices the allocation left over: the remaining jobs, oldest first, fastest model first.
        for (j, job) in jobs.iter().enumerate() {
            if job.devices.count == 0 || chosen_at[j] {
                continue;
            }
            let d = &demands[type_of[j]];
            let best = (0..nm)
                .filter(|&k| d.speeds[k] > 0.0 && free[k] + TINY >= d.scale)
                .max_by(|&a, &b| d.speeds[a].total_cmp(&d.speeds[b]).then(b.cmp(&a)));
            if let Some(k) = best {
                free[k] -= d.scale;
                chosen_at[j] = true;
                chosen.push(Standing { job: job.id, model: Some(models[k]), share: 0.0, received: received_on(j, k), priority: None, filled: true });
            }
        }
        let others: Vec<Standing> = jobs
            .iter()
            .enumerate()
            .filter(|(j, job)| job.devices.count > 0 && !chosen_at[*j])
            .map(|(j, job)| {
                let total_share: f64 = share[type_of[j]].iter().sum();
                let received = self.received_any[j];
                let priority = (received > TINY).then(|| total_share / received);
                Standing { job: job.id, model: None, share: total_share, received, priority, filled: false }
            })
            .collect();
        self.typed = typed;
        self.pairs = pairs;
        RoundPlan::Assign { chosen, others }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn the_type_that_gains_from_the_fast_model_gets_it() {
        // Speeds [[1, 2], [1, 1]], one job of each type, one device of each model. Equal
        // share: each job gets half of each model (N = 2): e_A = 0.5 + 1 = 1.5, e_B = 1.
        // By hand: A on model 1 alone gives A 2/1.5 = 4/3, B on model 0 alone gives B 1/1 = 1;
        // B can never exceed its time fraction (<= 1), so 1 is the best minimum, and stage 2
        // then gives A all of the fast model.
        let types = vec![
            TypeDemand { jobs: 1, scale: 1.0, speeds: vec![1.0, 2.0] },
            TypeDemand { jobs: 1, scale: 1.0, speeds: vec![1.0, 1.0] },
        ];
        let a = max_min_allocation(&types, &[1.0, 1.0]).unwrap();
        assert!(close(a.equal[0], 1.5) && close(a.equal[1], 1.0), "{a:?}");
        assert!(close(a.min_normalised, 1.0), "{a:?}");
        assert!(close(a.share[0][1], 1.0) && close(a.share[0][0], 0.0), "A takes the fast model: {a:?}");
        assert!(close(a.share[1][0], 1.0) && close(a.share[1][1], 0.0), "B the slow one: {a:?}");
        assert!(close(a.normalised[0], 4.0 / 3.0), "{a:?}");
    }

    #[test]
    fn an_oversubscribed_model_is_time_shared_by_device_time() {
        // One model with 4 devices; 2 jobs of 1 device and 1 job of 4 devices (N = 3).
        // Equal shares: e_small = min(1, 4/3) = 1, e_big = 4/(3*4) = 1/3.
        // Max-min: small jobs at normalised x_s, big at 3 x_b; capacity 2 x_s + 4 x_b <= 4.
        // Maximising min(x_s, 3 x_b): x_s = 3 x_b, 10 x_b = 4 -> x_b = 0.4, x_s = 1.2 > 1, so
        // x_s is capped at 1: then 4 x_b <= 2 -> x_b = 0.5, normalised 1.5; the minimum is 1.
        let types = vec![TypeDemand { jobs: 2, scale: 1.0, speeds: vec![1.0] }, TypeDemand { jobs: 1, scale: 4.0, speeds: vec![1.0] }];
        let a = max_min_allocation(&types, &[4.0]).unwrap();
        assert!(close(a.min_normalised, 1.0), "{a:?}");
        assert!(close(a.share[0][0], 1.0) && close(a.share[1][0], 0.5), "{a:?}");
    }

    #[test]
    fn a_type_that_fits_nowhere_gets_nothing_and_does_not_drag_the_minimum() {
        let types = vec![TypeDemand { jobs: 1, scale: 1.0, speeds: vec![1.0] }, TypeDemand { jobs: 1, scale: 8.0, speeds: vec![0.0] }];
        let a = max_min_allocation(&types, &[4.0]).unwrap();
        assert_eq!(a.share[1], vec![0.0]);
        assert!(close(a.share[0][0], 1.0), "{a:?}");
        let none = max_min_allocation(&[], &[4.0]).unwrap();
        assert!(none.share.is_empty());
    }
}
