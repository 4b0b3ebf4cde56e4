//! Restoring a scheduler's ordering state (`Scheduler::job_view`, `tenant_usage`,
//! `round_snapshot` and their `restore_*`): a scheduler driven for a while, then snapshotted
//! and restored into a fresh `Scheduler`, must make the same decisions as the original for
//! the same further inputs, under every order that keeps state (fifo, las, fair-share, gavel).
//!
//! The world below is seeded: jobs arrive at random times with random sizes, tenants and true
//! durations, start when launched, finish when their work is done, and leave after their
//! grace when preempted. After the snapshot both schedulers get every input, in lockstep
//! (each one's timers are honoured for both), and their decisions must agree step by step.
//! A failure prints the line that reproduces it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use tessera_core::policy::SpeedTable;
use tessera_core::*;

mod support;

/// Node 0: 4 V100s; node 1: 4 K80s; 16 CPUs and 64 GiB each.
fn cluster() -> ClusterState {
    support::cluster_of(&[("V100-32GB", 4), ("K80", 4)], support::NodeSize { cpu_milli: 16_000, mem_mib: 64 << 10 })
}

/// Class 0 runs 3x faster on a V100, class 1 1.2x (gavel's program tells them apart).
fn speeds(c: &ClusterState) -> SpeedTable {
    let models = c.catalogue().len();
    let v100 = c.catalogue().lookup("V100-32GB").unwrap().index();
    let mut relative = vec![1.0; 2 * models];
    relative[v100] = 3.0;
    relative[models + v100] = 1.2;
    SpeedTable::from_dense(models, relative)
}

fn policy(name: &str) -> PolicySpec {
    let mut p = PolicySpec::named(name);
    p.grace_s = Some(5.0);
    match name {
        "las" => {
            p.thresholds_device_s = Some(vec![60.0, 400.0]);
            p.promote_after_s = Some(300.0);
            p.victim = Some("most-attained".into());
        }
        "fair-share" => p.half_life_s = Some(900.0),
        "gavel" => p.round_s = Some(60.0),
        _ => {}
    }
    p
}

fn build(name: &str) -> Scheduler {
    let c = cluster();
    let policy = Policy::from_spec(&policy(name)).unwrap().with_speeds(speeds(&c));
    Scheduler::new(policy, c)
}

#[derive(Clone, Debug)]
enum Input {
    Submit(JobSpec),
    Started(JobId, u32),
    Finished(JobId, u32),
    Evicted(JobId, u32),
}

/// The world's ledger: what it will tell the scheduler, and each job's remaining work.
#[derive(Default)]
struct World {
    pending: BTreeMap<(Time, u64), Input>,
    seq: u64,
    /// Work left, in microseconds at speed 1.
    left_us: HashMap<JobId, u64>,
    /// Current run: (generation, started, its pending finish time).
    run: HashMap<JobId, (u32, Time)>,
    generation: HashMap<JobId, u32>,
}

impl World {
    fn push(&mut self, at: Time, input: Input) {
        self.seq += 1;
        self.pending.insert((at, self.seq), input);
    }

    /// Carries out decisions made at `now`.
    fn apply(&mut self, now: Time, decisions: &[Decision]) {
        for d in decisions {
            match d {
                Decision::Launch { job, .. } => {
                    let g = self.generation.entry(*job).or_default();
                    *g += 1;
                    let g = *g;
                    self.run.insert(*job, (g, now));
                    // Starts are acknowledged a second after the launch, as a real process's are.
                    self.push(now + Time::from_secs(1), Input::Started(*job, g));
                    self.push(now + Time(self.left_us[job]), Input::Finished(*job, g));
                }
                Decision::Preempt { job, grace, .. } => {
                    if let Some(&(g, _)) = self.run.get(job) {
                        self.push(now + *grace, Input::Evicted(*job, g));
                    }
                }
                Decision::Reject { .. } => {}
            }
        }
    }

    /// The input for the scheduler, or `None` when it is stale (a finished or evicted run).
    fn event(&mut self, now: Time, input: Input) -> Option<Event> {
        let current = |w: &World, job: &JobId, g: u32| w.run.get(job).is_some_and(|&(rg, _)| rg == g);
        match input {
            Input::Submit(spec) => Some(Event::JobSubmitted { spec }),
            Input::Started(job, g) => current(self, &job, g).then_some(Event::JobStarted { job }),
            Input::Finished(job, g) => {
                if !current(self, &job, g) {
                    return None;
                }
                self.run.remove(&job);
                Some(Event::JobFinished { job, outcome: Outcome::Completed })
            }
            Input::Evicted(job, g) => {
                if !current(self, &job, g) {
                    return None;
                }
                let (_, started) = self.run.remove(&job).expect("checked");
                let left = self.left_us.get_mut(&job).expect("known job");
                *left = left.saturating_sub((now - started).0);
                Some(Event::JobEvicted { job })
            }
        }
    }
}

fn workload(seed: u64, world: &mut World, jobs: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = 0.0;
    for id in 1..=jobs {
        t += rng.random_range(0.0..40.0);
        let mut spec = JobSpec::simple(id, *[1, 1, 1, 2, 4].get(rng.random_range(0..5)).unwrap());
        spec.tenant = TenantId(rng.random_range(0..3));
        spec.class = ClassId(rng.random_range(0..2));
        spec.priority = rng.random_range(0..2);
        spec.cpu_milli = 1000 * spec.devices.count;
        spec.mem_mib = 1024;
        let work_s: f64 = rng.random_range(20.0..600.0);
        world.left_us.insert(JobId(id), Time::from_secs_f64(work_s).0);
        world.push(Time::from_secs_f64(t), Input::Submit(spec));
    }
}

/// Decisions as JSON with floats to 12 significant digits: the restored scheduler runs one
/// pass the original may have skipped (the first input after restoring), and fair share's
/// usage decayed in two steps instead of one can differ in the last bit of an explanation.
/// Everything else (which job, where, whom to evict, grace) must be exactly equal.
fn comparable(decisions: &[Decision]) -> serde_json::Value {
    fn round(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let x = n.as_f64().unwrap();
                *v = serde_json::json!(format!("{x:.11e}"));
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(round),
            serde_json::Value::Object(o) => o.values_mut().for_each(round),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(decisions).unwrap();
    round(&mut v);
    v
}

fn drain(s: &mut Scheduler) -> Vec<Decision> {
    while s.poll_notice().is_some() {}
    std::iter::from_fn(|| s.poll_decision()).collect()
}

/// A fresh scheduler holding `original`'s state as its public snapshot gives it.
fn restored(name: &str, original: &Scheduler, now: Time) -> Scheduler {
    let mut fresh = build(name);
    for snap in original.job_views() {
        fresh.restore_job(now, snap.spec, snap.restored).expect("a snapshot restores");
    }
    fresh.restore_tenant_usage(now, &original.tenant_usage());
    if let Some(rounds) = original.round_snapshot() {
        fresh.restore_rounds(now, &rounds).expect("same planner");
    }
    fresh
}

/// Drives `name` on the seed's workload; after `snapshot_after` inputs, a restored copy runs
/// beside the original. Returns the decisions made after the snapshot (for the checks below).
fn run(name: &str, seed: u64, snapshot_after: usize) -> usize {
    let repro = format!("reproduce: cargo test -p tessera-core --test restore -- --exact {name}_case seed={seed} snapshot_after={snapshot_after}");
    let mut world = World::default();
    workload(seed, &mut world, 60);
    let mut a = build(name);
    let mut b: Option<Scheduler> = None;
    let mut steps = 0usize;
    let mut compared = 0usize;
    loop {
        let next_input = world.pending.keys().next().map(|k| k.0);
        let timers = [a.poll_timeout(), b.as_ref().and_then(|b| b.poll_timeout())];
        let next_timer = timers.into_iter().flatten().min();
        let idle = world.pending.is_empty() && a.live_jobs() == 0 && b.as_ref().is_none_or(|b| b.live_jobs() == 0);
        let now = match (next_input, next_timer) {
            _ if idle => break,
            (None, None) => break,
            (Some(i), Some(t)) => i.min(t),
            (i, t) => i.or(t).unwrap(),
        };
        let event = if next_input == Some(now) {
            let (_, input) = world.pending.pop_first().unwrap();
            world.event(now, input)
        } else {
            None
        };
        match &event {
            Some(e) => a.handle_event(now, e.clone()),
            None => a.handle_timeout(now),
        }
        let da = drain(&mut a);
        if let Some(b) = &mut b {
            match &event {
                Some(e) => b.handle_event(now, e.clone()),
                None => b.handle_timeout(now),
            }
            let db = drain(b);
            assert_eq!(comparable(&da), comparable(&db), "decisions differ at {now} after restoring ({repro})");
            compared += da.len();
        }
        world.apply(now, &da);
        steps += 1;
        if steps == snapshot_after {
            b = Some(restored(name, &a, now));
            // What it holds must read back the same.
            let views_a: Vec<_> = a.job_views().into_iter().map(|v| (v.spec, v.restored)).collect();
            let views_b: Vec<_> = b.as_ref().unwrap().job_views().into_iter().map(|v| (v.spec, v.restored)).collect();
            assert_eq!(views_a, views_b, "{repro}");
            assert_eq!(a.tenant_usage(), b.as_ref().unwrap().tenant_usage(), "{repro}");
        }
        assert!(steps < 200_000, "runaway ({repro})");
    }
    assert!(b.is_some(), "the run was shorter than the snapshot point ({repro})");
    assert_eq!(a.live_jobs(), 0, "every job ends ({repro})");
    compared
}

fn cases(name: &str) {
    let mut total = 0;
    for seed in 0..6u64 {
        for snapshot_after in [25, 80, 140] {
            total += run(name, seed, snapshot_after);
        }
    }
    assert!(total > 100, "{name}: only {total} decisions compared after restoring");
}

#[test]
fn fifo_case() {
    cases("fifo");
}

#[test]
fn las_case() {
    cases("las");
}

#[test]
fn fair_share_case() {
    cases("fair-share");
}

#[test]
fn gavel_case() {
    cases("gavel");
}

/// Without the saved state the orders differ: the test above can fail.
#[test]
fn las_without_attained_service_orders_differently() {
    let mut differs = 0;
    for seed in 0..6u64 {
        let mut world = World::default();
        workload(seed, &mut world, 60);
        let mut a = build("las");
        let mut now = Time::ZERO;
        for _ in 0..150 {
            let Some(((t, _), input)) = world.pending.pop_first() else { break };
            now = t;
            if let Some(e) = world.event(now, input) {
                a.handle_event(now, e);
            }
            let d = drain(&mut a);
            world.apply(now, &d);
        }
        let mut b = build("las");
        for mut snap in a.job_views() {
            snap.restored.attained_device_s = 0.0;
            snap.restored.promoted = false;
            b.restore_job(now, snap.spec, snap.restored).unwrap();
        }
        let full = restored("las", &a, now);
        if b.queued().collect::<Vec<_>>() != full.queued().collect::<Vec<_>>() {
            differs += 1;
        }
    }
    assert!(differs > 0, "forgetting attained service never changed the queue order");
}

#[test]
fn an_impossible_allocation_is_refused_with_the_reason() {
    let mut s = build("fifo");
    let mut a = Allocation::default();
    a.devices.push(DeviceShare { device: DeviceId(99), milli: 1000 });
    a.nodes.push(NodeShare { node: NodeId(0), cpu_milli: 0, mem_mib: 0 });
    let run = |allocation: Allocation| RestoredJob {
        submitted: Time::ZERO,
        queued_since: Time::ZERO,
        attained: Time::ZERO,
        attained_device_s: 0.0,
        promoted: false,
        running: Some(RestoredRun { allocation, run_started: Time::ZERO, state: RunState::Running, cancel_requested: false, preempted_for: None }),
        round_service: None,
    };
    let e = s.restore_job(Time(5), JobSpec::simple(1, 1), run(a)).unwrap_err();
    assert!(e.to_string().contains("dev-99 does not exist"), "{e}");
    let mut ok = Allocation::default();
    ok.devices.push(DeviceShare { device: DeviceId(0), milli: 1000 });
    ok.nodes.push(NodeShare { node: NodeId(0), cpu_milli: 0, mem_mib: 0 });
    s.restore_job(Time(5), JobSpec::simple(1, 1), run(ok.clone())).unwrap();
    assert_eq!(s.job_state(JobId(1)), Some(JobPhase::Running));
    assert_eq!(s.cluster().device(DeviceId(0)).free_milli, 0);
    let e = s.restore_job(Time(5), JobSpec::simple(2, 1), run(ok)).unwrap_err();
    assert!(e.to_string().contains("dev-0 has 0 milli free"), "{e}");
    let e = s.restore_job(Time(5), JobSpec::simple(1, 1), run(Allocation::default())).unwrap_err();
    assert!(matches!(e, RestoreError::Rejected { reason: RejectReason::DuplicateId, .. }), "{e}");
    // Nothing was emitted by restoring.
    assert!(s.poll_decision().is_none());
}

/// A start acknowledged after the launch (as the executor's are) moves the job's preemption
/// key: the key it was launched with must not outlive the run, or a job requeued since is
/// offered as a victim again (found by the executor's crash test under `las`).
#[test]
fn a_late_start_does_not_leave_a_stale_victim() {
    let cat = Catalogue::built_in();
    let m = cat.lookup("K80").unwrap();
    let c = ClusterState::new(cat, [NodeSpec { name: "n".into(), devices: vec![m], cpu_milli: 4000, mem_mib: 4096 }]);
    let mut spec = PolicySpec::named("las");
    spec.thresholds_device_s = Some(vec![1.0]);
    spec.grace_s = Some(0.0);
    let mut s = Scheduler::new(Policy::from_spec(&spec).unwrap(), c);
    let mut log = Vec::new();
    let mut step = |s: &mut Scheduler, at: f64, e: Option<Event>| {
        let now = Time::from_secs_f64(at);
        while let Some(t) = s.poll_timeout().filter(|&t| t < now) {
            s.handle_timeout(t);
            log.extend(drain(s));
        }
        match e {
            Some(e) => s.handle_event(now, e),
            None => s.handle_timeout(now),
        }
        let d = drain(s);
        log.extend(d.clone());
        d
    };
    step(&mut s, 0.0, Some(Event::JobSubmitted { spec: JobSpec::simple(1, 1) }));
    step(&mut s, 0.5, Some(Event::JobStarted { job: JobId(1) }));
    step(&mut s, 0.6, Some(Event::JobSubmitted { spec: JobSpec::simple(2, 1) }));
    // At 1.5 s job 1 has 1 device-second: job 2 preempts it.
    step(&mut s, 1.6, None);
    step(&mut s, 1.6, Some(Event::JobEvicted { job: JobId(1) }));
    step(&mut s, 1.7, Some(Event::JobStarted { job: JobId(2) }));
    let d = step(&mut s, 1.8, Some(Event::JobSubmitted { spec: JobSpec::simple(3, 1) }));
    assert!(d.is_empty(), "job 3 waits for job 2 (equal rank); job 1 is queued, no victim: {d:?}");
    let preempts: Vec<JobId> = log.iter().filter(|&d| matches!(d, Decision::Preempt { .. })).map(|d| d.job()).collect();
    assert_eq!(preempts, vec![JobId(1)], "{log:?}");
    assert_eq!(s.job_state(JobId(1)), Some(JobPhase::Queued));
}
