//! Backfilling's defining properties: EASY starts a later job only if it does not delay the
//! head's reservation, conservative only if it delays no earlier job's reservation.

use proptest::prelude::*;
use std::collections::BTreeMap;
use tessera_core::*;

mod support;
use support::NodeSize;

fn cluster(gpus_per_node: &[usize]) -> ClusterState {
    support::uniform_cluster("V100-32GB", gpus_per_node, NodeSize { cpu_milli: 32_000, mem_mib: 256 << 10 })
}

fn policy(backfill: &str) -> PolicySpec {
    let mut spec = PolicySpec::named("fifo");
    spec.backfill = Some(backfill.into());
    spec
}

fn job(id: u64, devices: u32, stated_s: Option<u64>) -> JobSpec {
    let mut spec = JobSpec::simple(id, devices);
    spec.stated_duration = stated_s.map(Time::from_secs);
    spec
}

fn step(s: &mut Scheduler) -> (Vec<Decision>, Vec<Notice>) {
    let ds: Vec<Decision> = std::iter::from_fn(|| s.poll_decision()).collect();
    let now = s.now();
    for d in &ds {
        if let Decision::Launch { job, .. } = d {
            s.handle_event(now, Event::JobStarted { job: *job });
        }
    }
    (ds, std::iter::from_fn(|| s.poll_notice()).collect())
}

fn submit(s: &mut Scheduler, t: u64, spec: JobSpec) -> (Vec<Decision>, Vec<Notice>) {
    s.handle_event(Time::from_secs(t), Event::JobSubmitted { spec });
    step(s)
}

fn launches(ds: &[Decision]) -> Vec<(u64, Option<Backfilled>)> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::Launch { job, reason, .. } => Some((job.0, reason.backfill)),
            _ => None,
        })
        .collect()
}

fn waits(ns: &[Notice], job: u64) -> Vec<WaitReason> {
    ns.iter()
        .filter_map(|n| match n {
            Notice::Waiting { job: j, reason } if j.0 == job => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn easy_backfills_a_short_job_that_ends_before_the_heads_reservation() {
    let mut s = Scheduler::new(Policy::from_spec(&policy("easy")).unwrap(), cluster(&[4]));
    submit(&mut s, 0, job(1, 3, Some(100)));
    // The head needs all 4 GPUs: reserved for t = 100, when job 1 is expected to end.
    let (ds, ns) = submit(&mut s, 10, job(2, 4, Some(100)));
    assert!(ds.is_empty());
    assert!(ns.contains(&Notice::Reserved { job: JobId(2), start_s: Some(100.0), devices: 4 }), "{ns:?}");
    // A 1-GPU job of 50 s ends at 70, before the reservation: it starts now.
    let (ds, _) = submit(&mut s, 20, job(3, 1, Some(50)));
    let expected = Backfilled { mode: BackfillKind::Easy, head: JobId(2), reserved_start_s: Some(100.0), expected_end_s: Some(70.0), ends_before_reservation: true };
    assert_eq!(launches(&ds), vec![(3, Some(expected))]);
    // Once job 3 is done, a 1-GPU job of 200 s would hold a GPU the head needs at 100: held.
    s.handle_event(Time::from_secs(70), Event::JobFinished { job: JobId(3), outcome: Outcome::Completed });
    step(&mut s);
    let (ds, ns) = submit(&mut s, 80, job(4, 1, Some(200)));
    assert!(ds.is_empty(), "{ds:?}");
    assert_eq!(waits(&ns, 4).last(), Some(&WaitReason::Reservation { head: JobId(2), reserved_start_s: Some(100.0), expected_end_s: Some(280.0) }));
    // At 100 the head starts on time, then job 4.
    s.handle_event(Time::from_secs(100), Event::JobFinished { job: JobId(1), outcome: Outcome::Completed });
    let (ds, _) = step(&mut s);
    assert_eq!(launches(&ds), vec![(2, None)]);
}

#[test]
fn without_backfill_the_same_short_job_waits_behind_the_head() {
    let mut s = Scheduler::new(Policy::from_spec(&policy("none")).unwrap(), cluster(&[4]));
    submit(&mut s, 0, job(1, 3, Some(100)));
    submit(&mut s, 10, job(2, 4, Some(100)));
    let (ds, ns) = submit(&mut s, 20, job(3, 1, Some(50)));
    assert!(ds.is_empty());
    assert_eq!(waits(&ns, 3), vec![WaitReason::BehindHead { head: JobId(2) }]);
}

#[test]
fn easy_lets_a_long_job_take_a_gpu_the_head_does_not_need() {
    let mut s = Scheduler::new(Policy::from_spec(&policy("easy")).unwrap(), cluster(&[4]));
    submit(&mut s, 0, job(1, 2, Some(100)));
    // The head needs 3 of the 4 at t = 100: one GPU is spare.
    submit(&mut s, 0, job(2, 3, Some(100)));
    // A job with no stated duration is never expected to end, but it may take the spare GPU.
    let (ds, _) = submit(&mut s, 1, job(3, 1, None));
    let expected = Backfilled { mode: BackfillKind::Easy, head: JobId(2), reserved_start_s: Some(100.0), expected_end_s: None, ends_before_reservation: false };
    assert_eq!(launches(&ds), vec![(3, Some(expected))]);
    // No GPU is spare any more: a second one is held, though a GPU is free now.
    let (ds, ns) = submit(&mut s, 2, job(4, 1, None));
    assert!(ds.is_empty(), "{ds:?}");
    assert!(matches!(waits(&ns, 4).last(), Some(WaitReason::Reservation { head: JobId(2), .. })), "{ns:?}");
}

#[test]
fn overdue_jobs_count_as_ending_now() {
    let mut s = Scheduler::new(Policy::from_spec(&policy("easy")).unwrap(), cluster(&[2]));
    submit(&mut s, 0, job(1, 1, Some(10))); // stated 10 s; it overruns
    let (_, ns) = submit(&mut s, 50, job(2, 2, Some(10)));
    assert!(ns.contains(&Notice::Reserved { job: JobId(2), start_s: Some(50.0), devices: 2 }), "{ns:?}");
    // Nothing ends by "now", so only a job that takes no GPU the head needs could pass: none.
    let (ds, _) = submit(&mut s, 51, job(3, 1, Some(1)));
    assert!(ds.is_empty(), "{ds:?}");
}

/// Job 1 holds 3 GPUs until 100. The head (job 2) needs 3 from 100 to 200; job 3 needs all
/// 4 for 50 s, so conservative reserves it [200, 250). Job 4 (1 GPU for 1,000 s) fits on the
/// free GPU, which the head does not need: EASY starts it (delaying job 3 to 1,004),
/// conservative holds it for job 3's reservation.
fn two_reservations(mode: &str) -> (Scheduler, Vec<Decision>, Vec<Notice>) {
    let mut s = Scheduler::new(Policy::from_spec(&policy(mode)).unwrap(), cluster(&[4]));
    submit(&mut s, 0, job(1, 3, Some(100)));
    submit(&mut s, 1, job(2, 3, Some(100)));
    submit(&mut s, 2, job(3, 4, Some(50)));
    let (ds, mut ns) = submit(&mut s, 4, job(4, 1, Some(1000)));
    ns.splice(0..0, std::iter::empty());
    (s, ds, ns)
}

#[test]
fn conservative_never_delays_an_earlier_jobs_reservation_where_easy_does() {
    let (_, ds, _) = two_reservations("easy");
    assert_eq!(launches(&ds).iter().map(|l| l.0).collect::<Vec<_>>(), vec![4], "EASY protects only the head");
    let (mut s, ds, ns) = two_reservations("conservative");
    assert!(ds.is_empty(), "{ds:?}");
    assert_eq!(waits(&ns, 4).last(), Some(&WaitReason::Reservation { head: JobId(3), reserved_start_s: Some(200.0), expected_end_s: Some(1004.0) }));
    // Job 3 was reserved [200, 250): check that it does start at 200.
    s.handle_event(Time::from_secs(100), Event::JobFinished { job: JobId(1), outcome: Outcome::Completed });
    let (ds, _) = step(&mut s);
    assert_eq!(launches(&ds).iter().map(|l| l.0).collect::<Vec<_>>(), vec![2]);
    s.handle_event(Time::from_secs(200), Event::JobFinished { job: JobId(2), outcome: Outcome::Completed });
    let (ds, _) = step(&mut s);
    assert_eq!(launches(&ds).iter().map(|l| l.0).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn conservative_backfills_into_a_hole_that_delays_nobody() {
    let mut s = Scheduler::new(Policy::from_spec(&policy("conservative")).unwrap(), cluster(&[4]));
    submit(&mut s, 0, job(1, 3, Some(100)));
    submit(&mut s, 1, job(2, 3, Some(100)));
    submit(&mut s, 2, job(3, 4, Some(50)));
    // 1 GPU for 90 s ends at 93, before anyone's reservation.
    let (ds, _) = submit(&mut s, 3, job(4, 1, Some(90)));
    assert_eq!(launches(&ds).iter().map(|l| l.0).collect::<Vec<_>>(), vec![4]);
    assert!(matches!(launches(&ds)[0].1, Some(Backfilled { mode: BackfillKind::Conservative, head: JobId(2), .. })));
}

#[test]
fn backfill_composes_with_other_orders_and_bad_values_are_named() {
    for name in ["sjf", "priority", "las", "drf", "fair-share"] {
        let mut spec = PolicySpec::named(name);
        spec.backfill = Some("easy".into());
        let p = Policy::from_spec(&spec).unwrap();
        assert_eq!(p.backfill.mode, tessera_core::policy::BackfillMode::Easy);
    }
    let mut spec = PolicySpec::named("fifo");
    spec.backfill = Some("aggressive".into());
    let e = Policy::from_spec(&spec).unwrap_err();
    assert_eq!(e.key, "backfill");
    assert!(e.message.contains("none, easy, conservative"), "{e}");
    spec.backfill = Some("easy".into());
    spec.backfill_depth = Some(0);
    assert_eq!(Policy::from_spec(&spec).unwrap_err().key, "backfill_depth");
}

#[test]
fn drf_with_easy_backfill_holds_a_later_tenant_for_the_blocked_one() {
    let mut spec = PolicySpec::named("drf");
    spec.backfill = Some("easy".into());
    let mut s = Scheduler::new(Policy::from_spec(&spec).unwrap(), cluster(&[4]));
    let mut a = job(1, 3, Some(100));
    a.tenant = TenantId(0);
    submit(&mut s, 0, a);
    // Tenant 1 (share 0) ranks first; its 4-GPU job is blocked and reserves t = 100.
    let mut b = job(2, 4, Some(100));
    b.tenant = TenantId(1);
    submit(&mut s, 1, b);
    // Tenant 2's long 1-GPU job would delay it: held. Without backfill, DRF would start it.
    let mut c = job(3, 1, Some(500));
    c.tenant = TenantId(2);
    let (ds, ns) = submit(&mut s, 2, c);
    assert!(ds.is_empty(), "{ds:?}");
    assert!(matches!(waits(&ns, 3).last(), Some(WaitReason::Reservation { head: JobId(2), .. })), "{ns:?}");
}

// ---- the EASY guarantee, checked from outside on random workloads ---------------------------

#[derive(Clone, Debug)]
struct Sub {
    at_s: u64,
    devices: u32,
    run_s: u64,
    states_duration: bool,
}

fn workload() -> impl Strategy<Value = (Vec<usize>, Vec<Sub>)> {
    let nodes = prop::collection::vec(1usize..5, 1..4);
    let subs = prop::collection::vec((0u64..50, 1u32..9, 1u64..100, prop::bool::weighted(0.85)), 1..25).prop_map(|v| {
        v.into_iter().map(|(at_s, devices, run_s, states_duration)| Sub { at_s, devices, run_s, states_duration }).collect::<Vec<_>>()
    });
    (nodes, subs)
}

/// What the play saw of one job.
#[derive(Clone, Debug, Default)]
struct Seen {
    start: Option<u64>,
    /// Its reservation when it was first seen at the head of the queue.
    at_head: Option<Option<f64>>,
    /// The first reservation announced for it.
    first: Option<Option<f64>>,
}

/// Plays the workload with exact stated durations (jobs that state none run their true
/// time) and returns what it saw of each job.
fn play(mode: &str, placement: &str, nodes: &[usize], subs: &[Sub]) -> Result<BTreeMap<u64, Seen>, TestCaseError> {
    let mut spec = policy(mode);
    spec.placement = Some(placement.into());
    let mut s = Scheduler::new(Policy::from_spec(&spec).unwrap(), cluster(nodes));
    let total: u32 = nodes.iter().map(|&n| n as u32).sum();
    let mut arrivals: Vec<(u64, u64, JobSpec)> = Vec::new();
    let mut t = 0;
    for (i, sub) in subs.iter().enumerate() {
        t += sub.at_s;
        let id = i as u64 + 1;
        arrivals.push((t, id, job(id, sub.devices.min(total), sub.states_duration.then_some(sub.run_s))));
    }
    let run_s: BTreeMap<u64, u64> = subs.iter().enumerate().map(|(i, sub)| (i as u64 + 1, sub.run_s)).collect();
    let mut seen: BTreeMap<u64, Seen> = BTreeMap::new();
    let mut ends: BTreeMap<(u64, u64), ()> = BTreeMap::new();
    let mut next_arrival = 0;
    let mut latest: BTreeMap<u64, Option<f64>> = BTreeMap::new();
    loop {
        let next_end = ends.keys().next().map(|&(t, _)| t);
        let next_sub = arrivals.get(next_arrival).map(|a| a.0);
        let now = match (next_end, next_sub) {
            (None, None) => break,
            (Some(e), Some(a)) => e.min(a),
            (e, a) => e.or(a).unwrap(),
        };
        // Ends first at equal times, as a job ending at T frees its devices for T.
        if next_end == Some(now) {
            let (&(_, job), _) = ends.iter().next().unwrap();
            ends.remove(&(now, job));
            s.handle_event(Time::from_secs(now), Event::JobFinished { job: JobId(job), outcome: Outcome::Completed });
        } else {
            let (_, _, spec) = arrivals[next_arrival].clone();
            next_arrival += 1;
            s.handle_event(Time::from_secs(now), Event::JobSubmitted { spec });
        }
        while let Some(d) = s.poll_decision() {
            match d {
                Decision::Launch { job, .. } => {
                    s.handle_event(Time::from_secs(now), Event::JobStarted { job });
                    seen.entry(job.0).or_default().start = Some(now);
                    ends.insert((now + run_s[&job.0], job.0), ());
                }
                other => prop_assert!(false, "unexpected {other:?}"),
            }
        }
        while let Some(n) = s.poll_notice() {
            if let Notice::Reserved { job, start_s, .. } = n {
                latest.insert(job.0, start_s);
                seen.entry(job.0).or_default().first.get_or_insert(start_s);
            }
        }
        // Reservations are announced when they change, so the latest one announced is the
        // job's reservation now; take it when the job is first seen at the head.
        if let Some(head) = s.queued().next() {
            let e = seen.entry(head.0).or_default();
            if e.at_head.is_none() {
                e.at_head = latest.get(&head.0).copied();
            }
        }
    }
    Ok(seen)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// With exact stated durations, a head starts no later than the reservation it got when
    /// it became the blocked head, under EASY and conservative (whose first reservation is
    /// the head's), whatever the placement.
    #[test]
    fn the_head_starts_no_later_than_its_reservation((nodes, subs) in workload(), conservative in any::<bool>(), best in any::<bool>()) {
        let mode = if conservative { "conservative" } else { "easy" };
        let placement = if best { "best-fit" } else { "first-fit" };
        let seen = play(mode, placement, &nodes, &subs)?;
        for (job, seen) in &seen {
            if let (Some(Some(reserved_s)), Some(start)) = (seen.at_head, seen.start) {
                prop_assert!(start as f64 <= reserved_s + 1e-9, "job {job} reserved for {reserved_s} s but started at {start} s");
            }
            prop_assert!(seen.start.is_some(), "job {job} never started");
        }
    }

    /// Conservative's own guarantee: when every job states its duration exactly and the queue
    /// is FIFO, no job starts later than the first reservation it was given, wherever it was
    /// in the queue: a job starts ahead of others only if it delays none of their reservations.
    #[test]
    fn conservative_starts_every_job_no_later_than_its_first_reservation((nodes, subs) in workload(), best in any::<bool>()) {
        let subs: Vec<Sub> = subs.into_iter().map(|s| Sub { states_duration: true, ..s }).collect();
        let placement = if best { "best-fit" } else { "first-fit" };
        let seen = play("conservative", placement, &nodes, &subs)?;
        for (job, seen) in &seen {
            let start = seen.start;
            prop_assert!(start.is_some(), "job {job} never started");
            if let (Some(Some(reserved_s)), Some(start)) = (seen.first, start) {
                prop_assert!(start as f64 <= reserved_s + 1e-9, "job {job} was first reserved for {reserved_s} s but started at {start} s");
            }
        }
    }
}
