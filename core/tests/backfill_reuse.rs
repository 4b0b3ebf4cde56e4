//! Conservative backfilling reuses the last pass's plan (profile and reservations) for a job
//! submitted behind the blocked head. The reuse must change nothing: the same workload, played
//! with every pass rebuilt from scratch, must give the same decisions and notices.

use std::collections::BTreeMap;
use tessera_core::*;

/// A small seeded generator (SplitMix64), so a failing case is reproduced from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Case {
    /// Per node: its GPUs and whether they are K80s (else V100s).
    nodes: Vec<(usize, bool)>,
    /// (gap before submission s, devices, true run s, stated s, models allowed, share)
    jobs: Vec<(u64, u32, u64, Option<u64>, Models, u16)>,
    order: &'static str,
    placement: &'static str,
    depth: u32,
}

#[derive(Clone, Copy, Debug)]
enum Models {
    Any,
    V100,
    K80,
}

/// Seeds below 400 play single-model clusters of whole-device jobs; from 400 on, clusters
/// mix two models, jobs may be restricted to one, and a few ask for a share of one GPU.
fn case(seed: u64) -> Case {
    let mut rng = Rng(seed);
    let mixed = seed >= 400;
    let nodes: Vec<(usize, bool)> = (0..1 + rng.below(3)).map(|_| ([2, 4, 8][rng.below(3) as usize], mixed && rng.below(2) == 0)).collect();
    let total: u64 = nodes.iter().map(|&(n, _)| n as u64).sum();
    let k80s: u64 = nodes.iter().filter(|n| n.1).map(|&(n, _)| n as u64).sum();
    let jobs = (0..10 + rng.below(40))
        .map(|_| {
            // Bursts of submissions at the same instant, and quiet spells.
            let gap = [0, 0, 1, 3, 10, 40][rng.below(6) as usize];
            let run = 1 + rng.below(60);
            // Mostly exact stated durations; some over- and under-estimates (overdue jobs move
            // the profile with time) and a few that state none.
            let stated = match rng.below(10) {
                0 => None,
                1 => Some(1 + run / 2),
                2 => Some(run * 2),
                _ => Some(run),
            };
            let models = match (mixed, rng.below(3)) {
                (false, _) | (true, 0) => Models::Any,
                (true, 1) if k80s < total => Models::V100,
                (true, _) if k80s > 0 => Models::K80,
                _ => Models::Any,
            };
            let on = match models {
                Models::Any => total,
                Models::V100 => total - k80s,
                Models::K80 => k80s,
            };
            let devices = 1 + rng.below(on.min(8)) as u32;
            let share = if mixed && devices == 1 && rng.below(4) == 0 { [250, 500][rng.below(2) as usize] } else { 1000 };
            (gap, devices, run, stated, models, share)
        })
        .collect();
    Case { nodes, jobs, order: ["fifo", "sjf"][rng.below(2) as usize], placement: ["first-fit", "best-fit"][rng.below(2) as usize], depth: [2, 5, 100][rng.below(3) as usize] }
}

/// Plays the case (ends before submissions at equal times) and returns every decision and
/// notice, stamped with its time.
fn play(c: &Case, reuse: bool) -> Vec<String> {
    let cat = Catalogue::built_in();
    let v100 = cat.lookup("V100-32GB").unwrap();
    let k80 = cat.lookup("K80").unwrap();
    let specs = c.nodes.iter().enumerate().map(|(i, &(n, is_k80))| NodeSpec { name: format!("n{i}"), devices: vec![if is_k80 { k80 } else { v100 }; n], cpu_milli: 32_000, mem_mib: 256 << 10 });
    let mut policy = PolicySpec::named(c.order);
    policy.backfill = Some("conservative".into());
    policy.backfill_depth = Some(c.depth);
    policy.placement = Some(c.placement.into());
    let mut s = Scheduler::new(Policy::from_spec(&policy).unwrap(), ClusterState::new(cat, specs));
    s.set_backfill_plan_reuse(reuse);
    let mut arrivals = Vec::new();
    let mut t = 0;
    for (i, &(gap, devices, run, stated, models, share)) in c.jobs.iter().enumerate() {
        t += gap;
        let mut spec = JobSpec::simple(i as u64 + 1, devices);
        spec.stated_duration = stated.map(Time::from_secs);
        spec.devices.models = match models {
            Models::Any => ModelSet::ANY,
            Models::V100 => ModelSet::only(v100),
            Models::K80 => ModelSet::only(k80),
        };
        spec.devices.share_milli = share;
        arrivals.push((t, spec, run));
    }
    let run_s: BTreeMap<u64, u64> = arrivals.iter().map(|(_, spec, run)| (spec.id.0, *run)).collect();
    let mut ends: BTreeMap<(u64, u64), ()> = BTreeMap::new();
    let mut log = Vec::new();
    let mut next = 0;
    loop {
        let next_end = ends.keys().next().map(|&(t, _)| t);
        let next_sub = arrivals.get(next).map(|a| a.0);
        let now = match (next_end, next_sub) {
            (None, None) => break,
            (Some(e), Some(a)) => e.min(a),
            (e, a) => e.or(a).unwrap(),
        };
        if next_end == Some(now) {
            let (&(_, job), _) = ends.iter().next().unwrap();
            ends.remove(&(now, job));
            s.handle_event(Time::from_secs(now), Event::JobFinished { job: JobId(job), outcome: Outcome::Completed });
        } else {
            s.handle_event(Time::from_secs(now), Event::JobSubmitted { spec: arrivals[next].1.clone() });
            next += 1;
        }
        while let Some(d) = s.poll_decision() {
            log.push(format!("{now} {d:?}"));
            if let Decision::Launch { job, .. } = d {
                s.handle_event(Time::from_secs(now), Event::JobStarted { job });
                ends.insert((now + run_s[&job.0], job.0), ());
            }
        }
        while let Some(n) = s.poll_notice() {
            log.push(format!("{now} {n:?}"));
        }
    }
    log
}

#[test]
fn reusing_the_conservative_plan_changes_no_decision_or_notice() {
    let mut backfilled = [false, false];
    // 4639 (found by a wider search): a held gang over both models, whose blocker changes as
    // time passes with the plan unchanged.
    for seed in (0..800u64).chain([4639]) {
        let c = case(seed);
        let fresh = play(&c, false);
        let reused = play(&c, true);
        if let Some(i) = fresh.iter().zip(&reused).position(|(a, b)| a != b) {
            panic!(
                "reproduce: SEED={seed} cargo test -p tessera-core --test backfill_reuse print_one_case -- --ignored --nocapture ({} {} depth {})\nfirst difference at entry {i}:\n  from scratch: {}\n  reused:       {}",
                c.order, c.placement, c.depth, fresh[i], reused[i]
            );
        }
        assert_eq!(fresh.len(), reused.len(), "reproduce: seed = {seed}: one log is a prefix of the other");
        backfilled[(seed >= 400) as usize] |= fresh.iter().any(|l| l.contains("Backfilled"));
    }
    assert_eq!(backfilled, [true, true], "no case (of one model, or of two) backfilled anything: the cases test nothing");
}

/// Prints one case and both logs side by side, for the seed a failure names.
#[test]
#[ignore]
fn print_one_case() {
    let seed: u64 = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).expect("set SEED to the seed a failure printed");
    let c = case(seed);
    println!("nodes {:?}", c.nodes);
    let mut t = 0;
    for (i, j) in c.jobs.iter().enumerate() { t += j.0; println!("job {} at {} {:?}", i + 1, t, j); }
    let fresh = play(&c, false);
    let reused = play(&c, true);
    for i in 0..fresh.len().max(reused.len()) {
        println!("F {}\nR {}", fresh.get(i).map_or("", |s| s), reused.get(i).map_or("", |s| s));
    }
}
