//! Round-based scheduling and `gavel`: the tick, what happens between rounds, preemption at
//! round boundaries, and Gavel's defining property (max-min fairness over normalised
//! throughput) on a heterogeneous cluster, driven by a small world in this file.

use std::collections::BTreeMap;
use tessera_core::policy::gavel::{max_min_allocation, TypeDemand};
use tessera_core::policy::SpeedTable;
use tessera_core::*;

mod support;

/// Nodes of (model name, devices), 8 CPUs and 64 GiB each.
fn cluster(nodes: &[(&str, usize)]) -> ClusterState {
    support::cluster_of(nodes, support::NodeSize { cpu_milli: 8000, mem_mib: 64 << 10 })
}

fn spec(name: &str, round_s: Option<f64>, backfill: Option<bool>) -> PolicySpec {
    let mut p = PolicySpec::named(name);
    p.round_s = round_s;
    p.round_backfill = backfill;
    p.grace_s = Some(0.0);
    p
}

fn job(id: u64, devices: u32, class: u32) -> JobSpec {
    let mut j = JobSpec::simple(id, devices);
    j.class = ClassId(class);
    j
}

fn secs(s: f64) -> Time {
    Time::from_secs_f64(s)
}

/// A world for the scheduler: launches start at once, preemptions end after their grace,
/// jobs never finish on their own (unless `finish` says so), and each job's work is booked
/// as time x its class's speed on the model it ran on.
struct World {
    s: Scheduler,
    speeds: SpeedTable,
    now: Time,
    /// Running job -> (model, started).
    running: BTreeMap<JobId, (ModelId, Time)>,
    /// Evictions due: (when, job).
    evictions: Vec<(Time, JobId)>,
    work: BTreeMap<JobId, f64>,
    class: BTreeMap<JobId, ClassId>,
    log: Vec<(Time, Decision)>,
    notices: Vec<(Time, Notice)>,
    ticks: Vec<Time>,
}

impl World {
    fn new(policy: &PolicySpec, cluster: ClusterState, speeds: SpeedTable) -> World {
        let policy = Policy::from_spec(policy).unwrap().with_speeds(speeds.clone());
        World {
            s: Scheduler::new(policy, cluster),
            speeds,
            now: Time::ZERO,
            running: BTreeMap::new(),
            evictions: Vec::new(),
            work: BTreeMap::new(),
            class: BTreeMap::new(),
            log: Vec::new(),
            notices: Vec::new(),
            ticks: Vec::new(),
        }
    }

    fn book(&mut self, job: JobId, until: Time) {
        if let Some((model, started)) = self.running.remove(&job) {
            let speed = self.speeds.speed(self.class[&job], model);
            *self.work.entry(job).or_default() += (until - started).as_secs_f64() * speed;
        }
    }

    fn drain(&mut self) {
        loop {
            while let Some(n) = self.s.poll_notice() {
                self.notices.push((self.now, n));
            }
            let ds: Vec<Decision> = std::iter::from_fn(|| self.s.poll_decision()).collect();
            if ds.is_empty() {
                break;
            }
            for d in ds {
                match &d {
                    Decision::Launch { job, allocation, .. } => {
                        let model = self.s.cluster().device(allocation.devices[0].device).model;
                        self.running.insert(*job, (model, self.now));
                        self.s.handle_event(self.now, Event::JobStarted { job: *job });
                    }
                    Decision::Preempt { job, grace, .. } => self.evictions.push((self.now + *grace, *job)),
                    Decision::Reject { .. } => {}
                }
                self.log.push((self.now, d));
            }
        }
    }

    fn submit(&mut self, spec: JobSpec) {
        self.class.insert(spec.id, spec.class);
        self.s.handle_event(self.now, Event::JobSubmitted { spec });
        self.drain();
    }

    fn finish(&mut self, job: JobId) {
        self.book(job, self.now);
        self.s.handle_event(self.now, Event::JobFinished { job, outcome: Outcome::Completed });
        self.drain();
    }

    /// Runs the scheduler's timers and the evictions up to `t`.
    fn run_until(&mut self, t: Time) {
        loop {
            let timer = self.s.poll_timeout().filter(|&at| at <= t);
            let eviction = self.evictions.iter().map(|e| e.0).min().filter(|&at| at <= t);
            match (timer, eviction) {
                (None, None) => break,
                (Some(a), Some(b)) if b <= a => self.evict_due(b),
                (None, Some(b)) => self.evict_due(b),
                (Some(a), _) => {
                    self.now = a;
                    self.ticks.push(a);
                    self.s.handle_timeout(a);
                    self.drain();
                }
            }
        }
        self.now = t;
    }

    fn evict_due(&mut self, at: Time) {
        self.now = at;
        let due: Vec<JobId> = self.evictions.iter().filter(|e| e.0 <= at).map(|e| e.1).collect();
        self.evictions.retain(|e| e.0 > at);
        for job in due {
            self.book(job, at);
            self.s.handle_event(at, Event::JobEvicted { job });
            self.drain();
        }
    }

    /// Work done by each job up to now, running ones included.
    fn work_now(&self) -> BTreeMap<JobId, f64> {
        let mut w = self.work.clone();
        for (&job, &(model, started)) in &self.running {
            *w.entry(job).or_default() += (self.now - started).as_secs_f64() * self.speeds.speed(self.class[&job], model);
        }
        w
    }

    fn launches_of(&self, job: u64) -> Vec<(Time, &Decision)> {
        self.log.iter().filter(|(_, d)| matches!(d, Decision::Launch { .. }) && d.job() == JobId(job)).map(|(t, d)| (*t, d)).collect()
    }
}

#[test]
fn the_round_timer_fires_at_multiples_of_round_s() {
    let mut w = World::new(&spec("gavel", Some(360.0), None), cluster(&[("V100-32GB", 1)]), SpeedTable::default());
    assert_eq!(w.s.poll_timeout(), Some(secs(360.0)), "the first boundary is one round in");
    w.run_until(secs(1500.0));
    assert_eq!(w.ticks, vec![secs(360.0), secs(720.0), secs(1080.0), secs(1440.0)]);
    // A driver that calls late gets the boundary after the late call, not a burst of ticks.
    w.s.handle_timeout(secs(2000.0));
    assert_eq!(w.s.poll_timeout(), Some(secs(2160.0)));
    assert_eq!(w.s.round(), Some(5));
    // Plain policies keep no round timer; any order may ask for one.
    let plain = Scheduler::new(Policy::from_spec(&PolicySpec::named("fifo")).unwrap(), cluster(&[("V100-32GB", 1)]));
    assert_eq!(plain.poll_timeout(), None);
    let batched = Scheduler::new(Policy::from_spec(&spec("sjf", Some(60.0), None)).unwrap(), cluster(&[("V100-32GB", 1)]));
    assert_eq!(batched.poll_timeout(), Some(secs(60.0)));
}

#[test]
fn a_plain_order_with_round_s_decides_only_at_ticks_unless_it_backfills() {
    let mut w = World::new(&spec("fifo", Some(100.0), None), cluster(&[("V100-32GB", 2)]), SpeedTable::default());
    w.now = secs(5.0);
    w.submit(job(1, 1, 0));
    assert!(w.log.is_empty(), "no decision between ticks");
    let waiting = w.notices.iter().any(|(_, n)| matches!(n, Notice::Waiting { job: JobId(1), reason: WaitReason::NextRound { round: 1, at_s } } if *at_s == 100.0));
    assert!(waiting, "{:?}", w.notices);
    w.run_until(secs(150.0));
    assert_eq!(w.launches_of(1)[0].0, secs(100.0));

    let mut w = World::new(&spec("fifo", Some(100.0), Some(true)), cluster(&[("V100-32GB", 2)]), SpeedTable::default());
    w.now = secs(5.0);
    w.submit(job(1, 1, 0));
    assert_eq!(w.launches_of(1)[0].0, secs(5.0), "backfill starts it on the idle device at once");
}

#[test]
fn the_registry_checks_round_keys() {
    let e = Policy::from_spec(&spec("gavel", Some(0.0), None)).unwrap_err();
    assert_eq!(e.key, "round_s");
    let e = Policy::from_spec(&spec("fifo", Some(f64::NAN), None)).unwrap_err();
    assert_eq!(e.key, "round_s");
    let e = Policy::from_spec(&spec("fifo", None, Some(true))).unwrap_err();
    assert_eq!(e.key, "round_backfill");
    assert!(e.message.contains("round_s"), "{e}");
    let p = Policy::from_spec(&PolicySpec::named("gavel")).unwrap();
    assert_eq!(p.rounds.as_ref().unwrap().interval(), secs(360.0), "Gavel's 360 s by default");
    assert!(!p.rounds.as_ref().unwrap().backfill());
    assert!(policy::QUEUE_ORDERS.contains(&"gavel"));
}

#[test]
fn jobs_preempted_at_a_round_boundary_resume_in_a_later_round() {
    // One device, two identical jobs: Gavel time-shares it round by round.
    let mut w = World::new(&spec("gavel", Some(360.0), None), cluster(&[("V100-32GB", 1)]), SpeedTable::default());
    w.submit(job(1, 1, 0));
    w.submit(job(2, 1, 0));
    assert!(w.log.is_empty(), "gavel starts nothing between rounds without backfill");
    w.run_until(secs(1500.0));
    // Round 1: job 1 (the oldest of the jobs that have run nowhere yet); round 2: job 2, which
    // has received nothing; round 3: both have run a third of their active time, so the tie
    // goes to the job already running (no needless preemption); round 4: job 1 again.
    let starts_1: Vec<Time> = w.launches_of(1).iter().map(|l| l.0).collect();
    let starts_2: Vec<Time> = w.launches_of(2).iter().map(|l| l.0).collect();
    assert_eq!(starts_1, vec![secs(360.0), secs(1440.0)]);
    assert_eq!(starts_2, vec![secs(720.0)]);
    let preempts: Vec<(Time, u64)> =
        w.log.iter().filter(|(_, d)| matches!(d, Decision::Preempt { .. })).map(|(t, d)| (*t, d.job().0)).collect();
    assert_eq!(preempts, vec![(secs(720.0), 1), (secs(1440.0), 2)]);
    let preempt = w.log.iter().find(|(_, d)| matches!(d, Decision::Preempt { job: JobId(1), .. })).unwrap();
    match &preempt.1 {
        Decision::Preempt { reason: PreemptReason::RoundEnd { round, share, received, moved_to, .. }, .. } => {
            assert_eq!(*round, 2);
            assert!((share - 0.5).abs() < 1e-9, "each job's share of the one device is half: {share}");
            assert!((received - 0.5).abs() < 1e-9, "it ran 360 of its 720 s: {received}");
            assert_eq!(*moved_to, None);
        }
        other => panic!("{other:?}"),
    }
    // Job 2's launch at round 2 says why: its share, and that it had received nothing.
    match w.launches_of(2)[0].1 {
        Decision::Launch { reason, .. } => match reason.order {
            OrderReason::RoundShare { round, share, received, priority, .. } => {
                assert_eq!(round, 2);
                assert!((share - 0.5).abs() < 1e-9);
                assert_eq!(received, 0.0);
                assert_eq!(priority, None);
            }
            other => panic!("{other:?}"),
        },
        _ => unreachable!(),
    }
    // Each job ran half the time since the first round.
    let work = w.work_now();
    assert_eq!((work[&JobId(1)], work[&JobId(2)]), (360.0 + 60.0, 720.0), "{work:?}");
}

#[test]
fn without_backfill_devices_freed_mid_round_wait_for_the_next_round() {
    let mut w = World::new(&spec("gavel", Some(360.0), None), cluster(&[("V100-32GB", 1)]), SpeedTable::default());
    w.submit(job(1, 1, 0));
    w.run_until(secs(400.0));
    w.finish(JobId(1));
    w.submit(job(2, 1, 0));
    assert!(w.launches_of(2).is_empty());
    w.run_until(secs(800.0));
    assert_eq!(w.launches_of(2)[0].0, secs(720.0));

    let mut w = World::new(&spec("gavel", Some(360.0), Some(true)), cluster(&[("V100-32GB", 1)]), SpeedTable::default());
    w.submit(job(1, 1, 0));
    assert_eq!(w.launches_of(1)[0].0, Time::ZERO, "backfill: the idle device takes it at once");
    w.run_until(secs(400.0));
    w.now = secs(400.0);
    w.finish(JobId(1));
    w.submit(job(2, 1, 0));
    match w.launches_of(2)[0] {
        (t, Decision::Launch { reason, .. }) => {
            assert_eq!(t, secs(400.0));
            assert_eq!(reason.order, OrderReason::BetweenRounds { round: 1 });
        }
        _ => unreachable!(),
    }
}

/// Two V100s and two K80s; class 0 gains 4x on a V100, class 1 only 1.25x.
fn hetero() -> (ClusterState, SpeedTable, ModelId, ModelId) {
    let c = cluster(&[("V100-32GB", 2), ("K80", 2)]);
    let v100 = c.catalogue().lookup("V100-32GB").unwrap();
    let k80 = c.catalogue().lookup("K80").unwrap();
    let mut speeds = SpeedTable::uniform(2, c.catalogue().len());
    speeds.set(ClassId(0), v100, 4.0);
    speeds.set(ClassId(1), v100, 1.25);
    (c, speeds, v100, k80)
}

/// Each job's throughput under the equal share, as Gavel normalises: every one of `n` jobs
/// gets 1/n of each model's devices (here 1-device jobs, fractions summing to <= 1).
fn equal_share(speeds: &SpeedTable, class: ClassId, models: &[(ModelId, f64)], n: f64) -> f64 {
    let fractions: Vec<f64> = models.iter().map(|&(_, d)| d / n).collect();
    let sum: f64 = fractions.iter().sum();
    let k = if sum > 1.0 { 1.0 / sum } else { 1.0 };
    models.iter().zip(&fractions).map(|(&(m, _), f)| f * k * speeds.speed(class, m)).sum()
}

#[test]
fn gavel_is_max_min_fair_over_normalised_throughput_where_fifo_starves_the_worst_job() {
    let rounds = 60.0;
    let mut minimum = BTreeMap::new();
    for name in ["gavel", "fifo"] {
        let (c, speeds, v100, k80) = hetero();
        let mut w = World::new(&spec(name, None, None), c, speeds.clone());
        // Six one-device jobs on four devices, three of each class, alternating.
        for id in 0..6 {
            w.submit(job(id, 1, (id % 2) as u32));
        }
        w.run_until(secs(360.0 * rounds));
        let work = w.work_now();
        let horizon_s = 360.0 * rounds;
        let normalised: Vec<f64> = (0..6)
            .map(|id| {
                let class = ClassId((id % 2) as u32);
                let e = equal_share(&speeds, class, &[(v100, 2.0), (k80, 2.0)], 6.0);
                work.get(&JobId(id)).copied().unwrap_or(0.0) / (horizon_s * e)
            })
            .collect();
        let min = normalised.iter().copied().fold(f64::INFINITY, f64::min);
        minimum.insert(name, min);
        if name == "gavel" {
            // The first round is lost to waiting (no backfill), hence the tolerance.
            assert!(min >= 1.0 - 2.0 / rounds, "gavel's worst job gets at least its equal share: {normalised:?}");
            // And close to the program's optimum (by hand: class 0 gets 0.49 of a round on a
            // V100, class 1 the rest of the V100s and all of the K80s, both at 1.18), less the
            // first round spent waiting and the rounding of time into rounds.
            let types: Vec<TypeDemand> = [0, 1]
                .iter()
                .map(|&c| TypeDemand { jobs: 3, scale: 1.0, speeds: vec![speeds.speed(ClassId(c), v100), speeds.speed(ClassId(c), k80)] })
                .collect();
            let optimum = max_min_allocation(&types, &[2.0, 2.0]).unwrap().min_normalised;
            assert!((optimum - 1.18).abs() < 0.005, "{optimum}");
            assert!(min >= 0.93 * optimum, "{normalised:?} against {optimum}");
            // And the heterogeneity is used: class 0 (4x on a V100) ran mostly on V100s.
            let on_v100 = |id: u64| {
                w.log.iter().filter(|(_, d)| matches!(d, Decision::Launch { job, allocation, .. } if *job == JobId(id) && w.s.cluster().device(allocation.devices[0].device).model == v100)).count()
            };
            let launches = |id: u64| w.launches_of(id).len();
            assert!(on_v100(0) * 2 > launches(0), "class 0 mostly on V100: {} of {}", on_v100(0), launches(0));
        }
    }
    assert!(minimum["gavel"] > minimum["fifo"] + 0.5, "{minimum:?}");
    assert_eq!(minimum["fifo"], 0.0, "fifo never starts the last two jobs: {minimum:?}");
}

#[test]
fn the_max_min_program_never_does_worse_than_the_equal_share() {
    // The equal share is feasible in the program, so its optimum is at least 1; on a grid of
    // small heterogeneous instances, and with a tight cluster, check it is.
    let mut cases = 0;
    for n0 in 1..4u32 {
        for n1 in 0..4u32 {
            for (s0, s1) in [(1.0, 1.0), (1.0, 4.0), (2.0, 2.0)] {
                for speed in [0.5, 1.0, 3.0] {
                    let types = vec![
                        TypeDemand { jobs: n0, scale: s0, speeds: vec![1.0, speed] },
                        TypeDemand { jobs: n1, scale: s1, speeds: vec![speed, 1.0] },
                    ];
                    let a = max_min_allocation(&types, &[4.0, 2.0]).unwrap();
                    assert!(a.min_normalised >= 1.0 - 1e-6, "{types:?}: {a:?}");
                    // Feasible: time fractions at most 1, devices within capacity.
                    for (t, ty) in types.iter().enumerate() {
                        assert!(a.share[t].iter().sum::<f64>() <= 1.0 + 1e-6);
                        if ty.jobs > 0 {
                            // Stage 2 keeps every type within 1e-6 of stage 1's optimum, relatively.
                            assert!(a.normalised[t] >= a.min_normalised * (1.0 - 2e-6), "{types:?}: {a:?}");
                        }
                    }
                    for (k, cap) in [4.0, 2.0].iter().enumerate() {
                        let used: f64 = types.iter().enumerate().map(|(t, ty)| ty.jobs as f64 * ty.scale * a.share[t][k]).sum();
                        assert!(used <= cap + 1e-6, "{used} > {cap}");
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 108);
}

#[test]
fn gavel_moves_the_job_that_gains_most_to_the_fast_model() {
    // One V100 and one K80, one job of each class: class 0 (4x on the V100) gets the V100.
    let c = cluster(&[("V100-32GB", 1), ("K80", 1)]);
    let v100 = c.catalogue().lookup("V100-32GB").unwrap();
    let mut speeds = SpeedTable::uniform(2, c.catalogue().len());
    speeds.set(ClassId(0), v100, 4.0);
    speeds.set(ClassId(1), v100, 1.25);
    let mut w = World::new(&spec("gavel", None, None), c, speeds);
    // Class 1 arrives first: first-fit would give it the V100.
    w.submit(job(1, 1, 1));
    w.submit(job(2, 1, 0));
    w.run_until(secs(400.0));
    let model_of = |job: u64| match w.launches_of(job)[0].1 {
        Decision::Launch { allocation, .. } => w.s.cluster().device(allocation.devices[0].device).model,
        _ => unreachable!(),
    };
    assert_eq!(model_of(2), v100);
    assert_ne!(model_of(1), v100);
}
