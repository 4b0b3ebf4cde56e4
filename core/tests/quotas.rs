//! Quotas per tenant (by name), borrowing of idle devices, and reclaim of borrowed devices;
//! tenant weights by name for DRF and fair share.

use std::collections::BTreeMap;
use tessera_core::*;

mod support;

fn cluster(gpus: usize) -> ClusterState {
    support::uniform_cluster("V100-32GB", &[gpus], support::NodeSize { cpu_milli: 64_000, mem_mib: 1 << 20 })
}

fn tenants() -> Vec<String> {
    vec!["alice".into(), "bob".into()]
}

fn quota_policy(name: &str, alice: u32, bob: u32, borrow: Option<bool>) -> Policy {
    let mut spec = PolicySpec::named(name);
    spec.quota_devices = Some(BTreeMap::from([("alice".to_string(), alice), ("bob".to_string(), bob)]));
    spec.borrow = borrow;
    spec.grace_s = Some(10.0);
    Policy::from_spec_with_tenants(&spec, &tenants()).unwrap()
}

fn job(id: u64, tenant: u32, devices: u32) -> JobSpec {
    let mut spec = JobSpec::simple(id, devices);
    spec.tenant = TenantId(tenant);
    spec.stated_duration = Some(Time::from_secs(1000));
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

fn launched(ds: &[Decision]) -> Vec<u64> {
    ds.iter().filter_map(|d| matches!(d, Decision::Launch { .. }).then(|| d.job().0)).collect()
}

#[test]
fn without_borrowing_a_tenant_at_its_quota_waits_and_does_not_block_others() {
    for order in ["fifo", "drf"] {
        let mut s = Scheduler::new(quota_policy(order, 2, 2, Some(false)), cluster(4));
        assert_eq!(launched(&submit(&mut s, 0, job(1, 0, 2)).0), vec![1]);
        let (ds, ns) = submit(&mut s, 1, job(2, 0, 1));
        assert!(ds.is_empty(), "{order}: alice holds her 2 of 2");
        assert!(ns.contains(&Notice::Waiting { job: JobId(2), reason: WaitReason::Quota { tenant: TenantId(0), used: 2.0, quota: 2.0 } }), "{order}: {ns:?}");
        // Bob, behind alice's held job in FIFO order, is not blocked by her cap.
        assert_eq!(launched(&submit(&mut s, 2, job(3, 1, 2)).0), vec![3], "{order}");
        // All 4 GPUs are in use now; alice's job starts when her first one ends.
        s.handle_event(Time::from_secs(50), Event::JobFinished { job: JobId(1), outcome: Outcome::Completed });
        assert_eq!(launched(&step(&mut s).0), vec![2], "{order}");
    }
}

#[test]
fn without_borrowing_idle_devices_stay_idle() {
    let mut s = Scheduler::new(quota_policy("fifo", 2, 2, Some(false)), cluster(4));
    submit(&mut s, 0, job(1, 0, 2));
    assert!(submit(&mut s, 1, job(2, 0, 2)).0.is_empty(), "2 GPUs idle, but alice is at her cap");
}

#[test]
fn borrowing_uses_idle_devices_and_reclaim_evicts_the_borrower_for_the_owner() {
    let mut s = Scheduler::new(quota_policy("fifo", 2, 2, None), cluster(4));
    submit(&mut s, 0, job(1, 0, 2));
    // Beyond her quota, alice borrows the 2 idle GPUs.
    assert_eq!(launched(&submit(&mut s, 10, job(2, 0, 2)).0), vec![2]);
    // Bob, within his quota, cannot start: alice's borrowed job is reclaimed for him.
    let (ds, ns) = submit(&mut s, 100, job(3, 1, 2));
    assert_eq!(
        ds,
        vec![Decision::Preempt {
            job: JobId(2),
            reason: PreemptReason::QuotaReclaim { for_job: JobId(3), tenant: TenantId(0), used: 4.0, quota: 2.0, for_tenant: TenantId(1) },
            grace: Time::from_secs(10),
        }]
    );
    assert!(ns.iter().any(|n| matches!(n, Notice::Waiting { job: JobId(3), reason: WaitReason::AwaitingPreemption { .. } })), "{ns:?}");
    s.handle_event(Time::from_secs(110), Event::JobEvicted { job: JobId(2) });
    let (ds, ns) = step(&mut s);
    assert_eq!(launched(&ds), vec![3]);
    // Alice's job is back in the queue, at her quota, with nothing idle to borrow.
    assert!(ns.iter().any(|n| matches!(n, Notice::Waiting { job: JobId(2), reason: WaitReason::Quota { .. } })), "{ns:?}");
}

#[test]
fn a_job_within_quota_is_never_reclaimed_and_minimum_run_time_is_kept() {
    let mut spec = PolicySpec::named("fifo");
    spec.quota_devices = Some(BTreeMap::from([("alice".to_string(), 2), ("bob".to_string(), 2)]));
    spec.min_runtime_s = Some(300.0);
    let mut s = Scheduler::new(Policy::from_spec_with_tenants(&spec, &tenants()).unwrap(), cluster(4));
    submit(&mut s, 0, job(1, 0, 2)); // within
    submit(&mut s, 100, job(2, 0, 2)); // borrowed at 100
    let (ds, ns) = submit(&mut s, 200, job(3, 1, 2));
    assert!(ds.is_empty(), "the borrowed job ran 100 s of its 300 s minimum: {ds:?}");
    assert!(ns.iter().any(|n| matches!(n, Notice::PreemptionDeferred { job: JobId(3), until_s, .. } if *until_s == 400.0)), "{ns:?}");
    s.handle_timeout(Time::from_secs(400));
    let (ds, _) = step(&mut s);
    assert!(matches!(ds.as_slice(), [Decision::Preempt { job: JobId(2), reason: PreemptReason::QuotaReclaim { .. }, .. }]), "{ds:?}");
}

#[test]
fn unknown_tenant_names_are_errors_that_list_the_known_ones() {
    let mut spec = PolicySpec::named("drf");
    spec.quota_devices = Some(BTreeMap::from([("carol".to_string(), 2)]));
    let e = Policy::from_spec_with_tenants(&spec, &tenants()).unwrap_err();
    assert_eq!(e.key, "quota_devices");
    assert!(e.message.contains("carol") && e.message.contains("alice, bob"), "{e}");
    let mut spec = PolicySpec::named("drf");
    spec.tenant_weights = Some(BTreeMap::from([("dave".to_string(), 2.0)]));
    let e = Policy::from_spec_with_tenants(&spec, &tenants()).unwrap_err();
    assert_eq!(e.key, "tenant_weights");
    assert!(e.message.contains("dave") && e.message.contains("alice, bob"), "{e}");
    // Checking a spec before the workload is known passes the names, not the values.
    assert!(Policy::check_spec(&spec).is_ok());
    spec.tenant_weights = Some(BTreeMap::from([("alice".to_string(), 0.0)]));
    assert_eq!(Policy::check_spec(&spec).unwrap_err().key, "tenant_weights");
    let mut spec = PolicySpec::named("fifo");
    spec.tenant_weights = Some(BTreeMap::from([("alice".to_string(), 2.0)]));
    assert_eq!(Policy::check_spec(&spec).unwrap_err().key, "tenant_weights", "fifo does not weigh tenants");
}

// ---- tenant weights --------------------------------------------------------------------------

fn weighted(name: &str, alice_weight: f64) -> Policy {
    let mut spec = PolicySpec::named(name);
    spec.tenant_weights = Some(BTreeMap::from([("alice".to_string(), alice_weight)]));
    Policy::from_spec_with_tenants(&spec, &tenants()).unwrap()
}

#[test]
fn drf_with_weight_two_gives_that_tenant_twice_the_dominant_share() {
    // A third tenant's 12-GPU job holds the cluster while alice and bob queue many 1-GPU jobs
    // that never end; when it ends, DRF fills the cluster one job at a time, and the split
    // at equilibrium is what the weights say.
    for (w, alice_expected) in [(2.0, 8), (1.0, 6)] {
        let mut spec = PolicySpec::named("drf");
        spec.tenant_weights = Some(BTreeMap::from([("alice".to_string(), w)]));
        let names = vec!["alice".to_string(), "bob".to_string(), "carol".to_string()];
        let mut s = Scheduler::new(Policy::from_spec_with_tenants(&spec, &names).unwrap(), cluster(12));
        submit(&mut s, 0, job(100, 2, 12));
        let mut id = 0;
        for _ in 0..20 {
            for tenant in [1, 0] {
                id += 1;
                submit(&mut s, 1, job(id, tenant, 1));
            }
        }
        s.handle_event(Time::from_secs(10), Event::JobFinished { job: JobId(100), outcome: Outcome::Completed });
        step(&mut s);
        let running = |parity: u64| (1..=id).filter(|&j| s.job_state(JobId(j)) == Some(JobPhase::Running) && j % 2 == parity).count();
        assert_eq!((running(0), running(1)), (alice_expected, 12 - alice_expected), "weight {w}");
    }
}

#[test]
fn fair_share_factor_uses_the_weight() {
    let mut s = Scheduler::new(weighted("fair-share", 3.0), cluster(1));
    // No usage yet: the factor is 1 for both; alice's target share is 3/4.
    let (ds, _) = submit(&mut s, 0, job(1, 0, 1));
    match ds.as_slice() {
        [Decision::Launch { reason, .. }] => match reason.order {
            OrderReason::FairShare { factor, target_share, .. } => {
                assert_eq!(factor, 1.0);
                assert!((target_share - 0.75).abs() < 1e-12, "{target_share}");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}
