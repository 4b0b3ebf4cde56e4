//! The defining properties of the queue orders, on cases small enough to follow by hand.

use tessera_core::policy::{BackfillRule, FirstFit, LeastAttained, PreemptionRule, ShortestRemaining};
use tessera_core::*;

mod support;

fn one_gpu_cluster(gpus: usize) -> ClusterState {
    support::uniform_cluster("V100-32GB", &[gpus], support::NodeSize { cpu_milli: 8000, mem_mib: 1 << 16 })
}

fn policy(queue: Box<dyn tessera_core::policy::QueueOrder>, preempt: bool) -> Policy {
    Policy {
        label: "test".into(),
        queue,
        tenant_order: None,
        placement: Box::new(FirstFit),
        preemption: PreemptionRule { enabled: preempt, grace: Time::ZERO, min_runtime: Time::ZERO, victim: Default::default() },
        backfill: BackfillRule::none(),
        quotas: Default::default(),
        rounds: None,
    }
}

fn job(id: u64, stated_s: u64) -> JobSpec {
    let mut j = JobSpec::simple(id, 1);
    j.stated_duration = Some(Time::from_secs(stated_s));
    j
}

fn decisions(s: &mut Scheduler) -> Vec<Decision> {
    std::iter::from_fn(|| s.poll_decision()).collect()
}

fn at(s: u64) -> Time {
    Time::from_secs(s)
}

fn submit(s: &mut Scheduler, t: u64, spec: JobSpec) -> Vec<Decision> {
    s.handle_event(at(t), Event::JobSubmitted { spec });
    let ds = decisions(s);
    for d in &ds {
        if let Decision::Launch { job, .. } = d {
            s.handle_event(at(t), Event::JobStarted { job: *job });
        }
    }
    ds
}

#[test]
fn srtf_ranks_a_requeued_job_by_what_it_has_left() {
    // One GPU. Job 1 states 1000 s and runs 900 s before it is evicted (a device failure);
    // job 2, stating 200 s, waits meanwhile. Remaining: job 1 100 s, job 2 200 s: job 1 first,
    // although sjf (stated durations) would start job 2.
    let mut s = Scheduler::new(policy(Box::new(ShortestRemaining), false), one_gpu_cluster(1));
    submit(&mut s, 0, job(1, 1000));
    submit(&mut s, 10, job(2, 200));
    s.handle_event(at(900), Event::DeviceFailed { device: DeviceId(0) });
    assert!(matches!(decisions(&mut s).as_slice(), [Decision::Preempt { job: JobId(1), .. }]));
    s.handle_event(at(900), Event::JobEvicted { job: JobId(1) });
    assert_eq!(s.queued().collect::<Vec<_>>(), vec![JobId(1), JobId(2)]);
    s.handle_event(at(901), Event::DeviceRecovered { device: DeviceId(0) });
    let ds = decisions(&mut s);
    assert!(matches!(ds.as_slice(), [Decision::Launch { job: JobId(1), reason, .. }] if reason.order == OrderReason::ShortestRemaining { remaining_s: Some(100.0) }), "{ds:?}");
}

fn las(thresholds: &[f64], promote_after_s: Option<u64>) -> Box<LeastAttained> {
    Box::new(LeastAttained { thresholds_device_s: thresholds.to_vec(), promote_after: promote_after_s.map(Time::from_secs) })
}

#[test]
fn las_demotes_at_its_threshold_and_the_demoted_job_is_preempted() {
    // One GPU, one threshold at 100 device-seconds. Job 1 (1 GPU) starts at 0: queue 0 until
    // it has run 100 s. Job 2 arrives at 50 and waits in queue 0, behind nobody but blocked by
    // job 1 of the same queue: no preemption. At 100 s job 1 passes the threshold (queue 1),
    // so the head (queue 0) preempts it.
    let mut s = Scheduler::new(policy(las(&[100.0], None), true), one_gpu_cluster(1));
    submit(&mut s, 0, job(1, 0));
    assert!(submit(&mut s, 50, job(2, 0)).is_empty(), "equal queues do not preempt");
    assert_eq!(s.poll_timeout(), Some(at(100)), "the demotion is a timer");
    s.handle_timeout(at(100));
    let ds = decisions(&mut s);
    assert!(matches!(ds.as_slice(), [Decision::Preempt { job: JobId(1), .. }]), "{ds:?}");
    s.handle_event(at(100), Event::JobEvicted { job: JobId(1) });
    let ds = decisions(&mut s);
    assert!(matches!(ds.as_slice(), [Decision::Launch { job: JobId(2), .. }]), "{ds:?}");
    // Job 1 is back in the queue with 100 device-seconds: queue 1.
    assert_eq!(s.attained(JobId(1)), Some(at(100)));
}

#[test]
fn las_keeps_a_two_gpu_job_in_queue_zero_half_as_long() {
    // Service is devices x time: on 2 GPUs, 100 device-seconds take 50 s.
    let mut s = Scheduler::new(policy(las(&[100.0], None), true), one_gpu_cluster(2));
    let mut big = job(1, 0);
    big.devices.count = 2;
    submit(&mut s, 0, big);
    assert_eq!(s.poll_timeout(), Some(at(50)));
}

#[test]
fn las_promotes_a_starving_job_to_the_first_queue() {
    // One GPU, threshold 100 device-s, promotion after 300 s of waiting. Job 1 is demoted and
    // preempted at 100 (as above) and requeued in queue 1 at 100. Job 3 arrives at 120 in
    // queue 0 and so ranks ahead of job 1. At 400 (= 100 + 300) job 1 is promoted to queue 0,
    // where its earlier submission puts it ahead of job 3.
    let mut s = Scheduler::new(policy(las(&[100.0], Some(300)), true), one_gpu_cluster(1));
    submit(&mut s, 0, job(1, 0));
    submit(&mut s, 50, job(2, 0));
    s.handle_timeout(at(100));
    decisions(&mut s);
    s.handle_event(at(100), Event::JobEvicted { job: JobId(1) });
    decisions(&mut s);
    submit(&mut s, 120, job(3, 0));
    assert_eq!(s.queued().collect::<Vec<_>>(), vec![JobId(3), JobId(1)]);
    let mut t = s.poll_timeout();
    // Job 2 (running since 100) has its own demotion timer at 200; handle timers up to 400.
    while let Some(when) = t.filter(|&w| w <= at(400)) {
        s.handle_timeout(when);
        for d in decisions(&mut s) {
            if let Decision::Preempt { job, .. } = d {
                s.handle_event(when, Event::JobEvicted { job });
            }
        }
        t = s.poll_timeout();
    }
    let order: Vec<JobId> = s.queued().collect();
    let pos = |j: u64| order.iter().position(|&x| x == JobId(j));
    assert!(pos(1) < pos(3), "promoted job 1 goes before job 3: {order:?}");
}

#[test]
fn drf_starts_the_tenant_with_the_smaller_dominant_share_first() {
    // Two GPUs. Tenant 0 holds one GPU (a dominant share of 1/2); tenant 1 holds nothing.
    // When the GPU frees, tenant 1's job goes first although tenant 0's waited longer.
    let mut s = Scheduler::new(Policy::from_spec(&PolicySpec::named("drf")).unwrap(), one_gpu_cluster(2));
    submit(&mut s, 0, job(1, 100)); // tenant 0, runs
    submit(&mut s, 1, job(2, 100)); // tenant 0, runs
    submit(&mut s, 2, job(3, 100)); // tenant 0, waits
    let mut other = job(4, 100);
    other.tenant = TenantId(1);
    submit(&mut s, 3, other); // tenant 1, waits
    s.handle_event(at(10), Event::JobFinished { job: JobId(1), outcome: Outcome::Completed });
    let ds = decisions(&mut s);
    assert!(
        matches!(ds.as_slice(), [Decision::Launch { job: JobId(4), reason, .. }] if matches!(reason.order, OrderReason::DominantShare { tenant_share } if tenant_share == 0.0)),
        "{ds:?}"
    );
}

#[test]
fn fair_share_prefers_the_tenant_that_used_less_recently() {
    // One GPU. Tenant 0 uses it for 1000 s; then both tenants queue a job. Tenant 1 has used
    // nothing: its factor 2^0 = 1 beats tenant 0's 2^(-1/0.5) = 0.25, so it goes first.
    let mut s = Scheduler::new(Policy::from_spec(&PolicySpec::named("fair-share")).unwrap(), one_gpu_cluster(1));
    submit(&mut s, 0, job(1, 100));
    submit(&mut s, 500, job(2, 100));
    let mut other = job(3, 100);
    other.tenant = TenantId(1);
    submit(&mut s, 600, other);
    s.handle_event(at(1000), Event::JobFinished { job: JobId(1), outcome: Outcome::Completed });
    let ds = decisions(&mut s);
    assert!(matches!(ds.as_slice(), [Decision::Launch { job: JobId(3), .. }]), "{ds:?}");
}
