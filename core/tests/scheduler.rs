//! Hand-built cases of the scheduler's defining behaviours, each small enough to reason
//! about by hand.

use tessera_core::*;

mod support;

fn cluster(nodes: usize, gpus_per_node: usize) -> ClusterState {
    support::uniform_cluster("V100-32GB", &vec![gpus_per_node; nodes], support::NodeSize { cpu_milli: 32_000, mem_mib: 256 << 10 })
}

fn sched(policy: PolicySpec, nodes: usize, gpus: usize) -> Scheduler {
    Scheduler::new(Policy::from_spec(&policy).unwrap(), cluster(nodes, gpus))
}

fn job(id: u64, devices: u32, priority: i32, stated_s: u64) -> JobSpec {
    let mut spec = JobSpec::simple(id, devices);
    spec.priority = priority;
    spec.stated_duration = Some(Time::from_secs(stated_s));
    spec
}

fn decisions(s: &mut Scheduler) -> Vec<Decision> {
    std::iter::from_fn(|| s.poll_decision()).collect()
}

fn notices(s: &mut Scheduler) -> Vec<Notice> {
    std::iter::from_fn(|| s.poll_notice()).collect()
}

fn submit(s: &mut Scheduler, t: u64, spec: JobSpec) -> Vec<Decision> {
    s.handle_event(Time::from_secs(t), Event::JobSubmitted { spec });
    let out = decisions(s);
    for d in &out {
        if let Decision::Launch { job, .. } = d {
            s.handle_event(Time::from_secs(t), Event::JobStarted { job: *job });
        }
    }
    out
}

fn launched(ds: &[Decision]) -> Vec<u64> {
    ds.iter().filter_map(|d| matches!(d, Decision::Launch { .. }).then(|| d.job().0)).collect()
}

#[test]
fn fifo_blocks_behind_a_head_that_does_not_fit_and_says_why() {
    let mut s = sched(PolicySpec::named("fifo"), 1, 4);
    assert_eq!(launched(&submit(&mut s, 0, job(1, 3, 0, 100))), vec![1]);
    assert!(launched(&submit(&mut s, 1, job(2, 2, 0, 100))).is_empty());
    // Job 3 would fit on the one free GPU, but strict FIFO keeps it behind job 2.
    assert!(launched(&submit(&mut s, 2, job(3, 1, 0, 100))).is_empty());
    let ns = notices(&mut s);
    assert!(ns.contains(&Notice::Waiting { job: JobId(2), reason: WaitReason::Devices { needed: 2, free: 1 } }), "{ns:?}");
    assert!(ns.contains(&Notice::Waiting { job: JobId(3), reason: WaitReason::BehindHead { head: JobId(2) } }), "{ns:?}");
    s.handle_event(Time::from_secs(10), Event::JobFinished { job: JobId(1), outcome: Outcome::Completed });
    assert_eq!(launched(&decisions(&mut s)), vec![2, 3]);
}

#[test]
fn sjf_starts_the_shortest_stated_job_first() {
    let mut s = sched(PolicySpec::named("sjf"), 1, 1);
    submit(&mut s, 0, job(1, 1, 0, 50));
    submit(&mut s, 1, job(2, 1, 0, 900));
    submit(&mut s, 2, job(3, 1, 0, 10));
    submit(&mut s, 3, job(4, 1, 0, 300));
    let mut order = Vec::new();
    let mut running = 1;
    for t in 10..13 {
        s.handle_event(Time::from_secs(t), Event::JobFinished { job: JobId(running), outcome: Outcome::Completed });
        let ds = decisions(&mut s);
        running = launched(&ds)[0];
        s.handle_event(Time::from_secs(t), Event::JobStarted { job: JobId(running) });
        order.push(running);
    }
    assert_eq!(order, vec![3, 4, 2]);
}

#[test]
fn priority_preempts_the_lowest_tier_newest_job_and_waits_for_its_eviction() {
    let mut s = sched(PolicySpec::named("priority"), 1, 2);
    submit(&mut s, 0, job(1, 1, 0, 100)); // tier 0, older
    submit(&mut s, 5, job(2, 1, 1, 100)); // tier 1
    let ds = submit(&mut s, 10, job(3, 1, 2, 100)); // tier 2 needs one GPU
    assert_eq!(ds.len(), 1, "{ds:?}");
    match &ds[0] {
        Decision::Preempt { job, reason: PreemptReason::HigherTier { for_job, victim_tier, for_tier, .. }, grace } => {
            assert_eq!((*job, *for_job, *victim_tier, *for_tier), (JobId(1), JobId(3), 0, 2));
            assert_eq!(*grace, Time::from_secs(30), "the default grace");
        }
        other => panic!("expected a preemption, got {other:?}"),
    }
    // Until the victim is gone the head waits, and nothing else is preempted.
    assert!(submit(&mut s, 11, job(4, 1, 2, 100)).is_empty());
    s.handle_event(Time::from_secs(40), Event::JobEvicted { job: JobId(1) });
    let ds = decisions(&mut s);
    assert_eq!(launched(&ds), vec![3]);
    // The victim is queued again with the attained service of its 40 s run.
    let ns = notices(&mut s);
    assert!(ns.iter().any(|n| matches!(n, Notice::Requeued { job: JobId(1), attained_s } if (*attained_s - 40.0).abs() < 1e-9)), "{ns:?}");
    assert_eq!(s.job_state(JobId(1)), Some(JobPhase::Queued));
}

#[test]
fn equal_tiers_are_never_preempted() {
    let mut s = sched(PolicySpec::named("priority"), 1, 1);
    submit(&mut s, 0, job(1, 1, 1, 100));
    assert!(submit(&mut s, 1, job(2, 1, 1, 100)).is_empty());
}

#[test]
fn minimum_run_time_defers_preemption_with_a_timer() {
    let mut spec = PolicySpec::named("priority");
    spec.min_runtime_s = Some(600.0);
    let mut s = sched(spec, 1, 1);
    submit(&mut s, 0, job(1, 1, 0, 10_000));
    assert!(submit(&mut s, 100, job(2, 1, 5, 100)).is_empty(), "job 1 ran only 100 s of its 600 s minimum");
    assert_eq!(s.poll_timeout(), Some(Time::from_secs(600)));
    let ns = notices(&mut s);
    assert!(ns.iter().any(|n| matches!(n, Notice::PreemptionDeferred { job: JobId(2), .. })), "{ns:?}");
    s.handle_timeout(Time::from_secs(600));
    let ds = decisions(&mut s);
    assert!(matches!(ds.as_slice(), [Decision::Preempt { job: JobId(1), .. }]), "{ds:?}");
}

#[test]
fn impossible_jobs_are_rejected_with_the_reason() {
    let mut s = sched(PolicySpec::named("fifo"), 2, 4);
    let ds = submit(&mut s, 0, job(1, 9, 0, 1));
    assert_eq!(ds, vec![Decision::Reject { job: JobId(1), reason: RejectReason::TooManyDevices { requested: 9, cluster_has: 8 } }]);
    let mut big = job(2, 1, 0, 1);
    big.cpu_milli = 64_000;
    assert!(matches!(submit(&mut s, 0, big).as_slice(), [Decision::Reject { reason: RejectReason::TooLargeForAnyNode { limit: Limit::Cpu, .. }, .. }]));
    let mut bad = job(3, 2, 0, 1);
    bad.devices.share_milli = 500;
    assert!(matches!(submit(&mut s, 0, bad).as_slice(), [Decision::Reject { reason: RejectReason::InvalidShare { .. }, .. }]));
    submit(&mut s, 0, job(4, 1, 0, 1));
    assert!(matches!(submit(&mut s, 0, job(4, 1, 0, 1)).as_slice(), [Decision::Reject { reason: RejectReason::DuplicateId, .. }]));
}

#[test]
fn a_failed_device_evicts_its_job_and_is_not_used_until_it_recovers() {
    let mut s = sched(PolicySpec::named("fifo"), 1, 2);
    submit(&mut s, 0, job(1, 2, 0, 100));
    s.handle_event(Time::from_secs(5), Event::DeviceFailed { device: DeviceId(1) });
    let ds = decisions(&mut s);
    assert!(matches!(ds.as_slice(), [Decision::Preempt { job: JobId(1), reason: PreemptReason::DeviceFailed { device: DeviceId(1) }, grace }] if *grace == Time::ZERO), "{ds:?}");
    s.handle_event(Time::from_secs(5), Event::JobEvicted { job: JobId(1) });
    assert!(decisions(&mut s).is_empty(), "only one healthy GPU is left for a 2-GPU gang");
    s.handle_event(Time::from_secs(50), Event::DeviceRecovered { device: DeviceId(1) });
    assert_eq!(launched(&decisions(&mut s)), vec![1]);
}

#[test]
fn cancelling_a_running_job_stops_it_without_requeue() {
    let mut s = sched(PolicySpec::named("fifo"), 1, 1);
    submit(&mut s, 0, job(1, 1, 0, 100));
    submit(&mut s, 1, job(2, 1, 0, 100));
    s.handle_event(Time::from_secs(2), Event::JobCancelled { job: JobId(1) });
    assert!(matches!(decisions(&mut s).as_slice(), [Decision::Preempt { reason: PreemptReason::Cancelled, .. }]));
    s.handle_event(Time::from_secs(3), Event::JobEvicted { job: JobId(1) });
    assert_eq!(launched(&decisions(&mut s)), vec![2]);
    assert_eq!(s.job_state(JobId(1)), None);
    assert!(notices(&mut s).contains(&Notice::Cancelled { job: JobId(1) }));
}

#[test]
fn events_for_unknown_jobs_are_reported_not_applied() {
    let mut s = sched(PolicySpec::named("fifo"), 1, 1);
    s.handle_event(Time::from_secs(1), Event::JobFinished { job: JobId(77), outcome: Outcome::Completed });
    assert!(matches!(notices(&mut s).as_slice(), [Notice::Ignored { .. }]));
    assert_eq!(s.live_jobs(), 0);
}

#[test]
fn topology_waits_for_locality_then_spreads_when_the_wait_runs_out() {
    let mut spec = PolicySpec::named("fifo");
    spec.placement = Some("topology".into());
    spec.locality_wait_s = Some(100.0);
    let mut s = sched(spec, 2, 4);
    // Two 3-GPU jobs leave one free GPU on each node.
    assert_eq!(launched(&submit(&mut s, 0, job(1, 3, 0, 1000))), vec![1]);
    assert_eq!(launched(&submit(&mut s, 0, job(2, 3, 0, 1000))), vec![2]);
    // A 2-GPU gang could start now only across both nodes: it waits for locality.
    assert!(launched(&submit(&mut s, 10, job(3, 2, 0, 1000))).is_empty());
    let ns = notices(&mut s);
    assert!(
        ns.iter().any(|n| matches!(n, Notice::Waiting { job: JobId(3), reason: WaitReason::Locality { waited_s, limit_s, spread_nodes: 2 } } if *waited_s == 0.0 && *limit_s == 100.0)),
        "{ns:?}"
    );
    // The scheduler asks to be woken when the wait runs out: 100 s after the job queued.
    assert_eq!(s.poll_timeout(), Some(Time::from_secs(110)));
    // Nothing happens before the deadline.
    s.handle_timeout(Time::from_secs(60));
    assert!(decisions(&mut s).is_empty());
    s.handle_timeout(Time::from_secs(110));
    let ds = decisions(&mut s);
    match ds.as_slice() {
        [Decision::Launch { job: JobId(3), allocation, reason }] => {
            assert_eq!(allocation.nodes.len(), 2);
            assert_eq!(reason.placement.how, PlacedHow::SpreadAfterWait { nodes: 2, waited_s: 100.0 });
        }
        other => panic!("expected job 3 to spread at its deadline, got {other:?}"),
    }
}

#[test]
fn topology_takes_a_node_that_frees_up_before_the_wait_runs_out() {
    let mut spec = PolicySpec::named("fifo");
    spec.placement = Some("topology".into());
    spec.locality_wait_s = Some(100.0);
    let mut s = sched(spec, 2, 4);
    submit(&mut s, 0, job(1, 3, 0, 1000));
    submit(&mut s, 0, job(2, 3, 0, 1000));
    assert!(launched(&submit(&mut s, 10, job(3, 2, 0, 1000))).is_empty());
    s.handle_event(Time::from_secs(50), Event::JobFinished { job: JobId(2), outcome: Outcome::Completed });
    let ds = decisions(&mut s);
    match ds.as_slice() {
        [Decision::Launch { job: JobId(3), allocation, reason }] => {
            assert_eq!(allocation.nodes.len(), 1);
            assert!(matches!(reason.placement.how, PlacedHow::Local { .. }), "{:?}", reason.placement.how);
        }
        other => panic!("expected job 3 to start on one node, got {other:?}"),
    }
    // The stale locality timer wakes the scheduler once and changes nothing.
    s.handle_timeout(Time::from_secs(110));
    assert!(decisions(&mut s).is_empty());
}

#[test]
fn a_requeued_job_measures_its_locality_wait_from_the_requeue() {
    let mut spec = PolicySpec::named("priority");
    spec.placement = Some("topology".into());
    spec.locality_wait_s = Some(100.0);
    spec.grace_s = Some(0.0);
    let mut s = sched(spec, 2, 4);
    submit(&mut s, 0, job(1, 2, 0, 1000)); // tier 0 on node 0
    submit(&mut s, 0, job(2, 3, 1, 1000)); // node 1
    submit(&mut s, 0, job(3, 1, 1, 1000)); // node 1, now full
    // A tier-2 gang of 3 evicts job 1 and takes node 0, which keeps 1 free.
    let ds = submit(&mut s, 500, job(4, 3, 2, 1000));
    assert!(matches!(ds.as_slice(), [Decision::Preempt { job: JobId(1), .. }]), "{ds:?}");
    s.handle_event(Time::from_secs(500), Event::JobEvicted { job: JobId(1) });
    assert_eq!(launched(&decisions(&mut s)), vec![4]);
    // One GPU frees on node 1: job 1 could now span both nodes. It was submitted at 0 but
    // requeued at 500, so it has waited 50 s of its 100, not 550.
    s.handle_event(Time::from_secs(550), Event::JobFinished { job: JobId(3), outcome: Outcome::Completed });
    assert!(decisions(&mut s).is_empty());
    let ns = notices(&mut s);
    assert!(
        ns.iter().any(|n| matches!(n, Notice::Waiting { job: JobId(1), reason: WaitReason::Locality { waited_s, .. } } if *waited_s == 50.0)),
        "{ns:?}"
    );
    assert_eq!(s.poll_timeout(), Some(Time::from_secs(600)));
    s.handle_timeout(Time::from_secs(600));
    assert_eq!(launched(&decisions(&mut s)), vec![1]);
}

/// A drained device stops its jobs with the policy's grace (a failed one at once), takes no
/// new job, and comes back with `DeviceRecovered`.
#[test]
fn a_drained_device_preempts_with_the_grace_and_takes_nothing_until_it_recovers() {
    let mut policy = PolicySpec::named("fifo");
    policy.grace_s = Some(45.0);
    let mut s = sched(policy, 1, 1);
    assert!(matches!(submit(&mut s, 0, job(1, 1, 0, 100)).as_slice(), [Decision::Launch { .. }]));
    s.handle_event(Time::from_secs(10), Event::DeviceDrain { device: DeviceId(0) });
    match decisions(&mut s).as_slice() {
        [Decision::Preempt { job, reason: PreemptReason::DeviceDrained { device }, grace }] => {
            assert_eq!((*job, *device, *grace), (JobId(1), DeviceId(0), Time::from_secs(45)));
        }
        other => panic!("expected a drain preemption with the grace, got {other:?}"),
    }
    s.handle_event(Time::from_secs(20), Event::JobEvicted { job: JobId(1) });
    assert!(decisions(&mut s).is_empty(), "the drained device takes its job back only once it returns");
    s.handle_event(Time::from_secs(30), Event::DeviceRecovered { device: DeviceId(0) });
    assert!(matches!(decisions(&mut s).as_slice(), [Decision::Launch { job: JobId(1), .. }]));

    // A failure, by contrast, stops the job at once.
    s.handle_event(Time::from_secs(30), Event::JobStarted { job: JobId(1) });
    s.handle_event(Time::from_secs(40), Event::DeviceFailed { device: DeviceId(0) });
    assert!(matches!(decisions(&mut s).as_slice(), [Decision::Preempt { reason: PreemptReason::DeviceFailed { .. }, grace: Time::ZERO, .. }]));
}
