//! Preemption victim rules on hand-built cases: which lower-tier job is evicted for a
//! blocked higher-tier head, and that tiers and the minimum run time are always respected.

use tessera_core::*;

mod support;

fn cluster(gpus: usize) -> ClusterState {
    support::uniform_cluster("V100-32GB", &[gpus], support::NodeSize { cpu_milli: 32_000, mem_mib: 1 << 20 })
}

fn sched(victim: &str, min_runtime_s: f64, gpus: usize) -> Scheduler {
    let mut spec = PolicySpec::named("priority");
    spec.victim = Some(victim.into());
    spec.min_runtime_s = Some(min_runtime_s);
    Scheduler::new(Policy::from_spec(&spec).unwrap(), cluster(gpus))
}

fn job(id: u64, devices: u32, tier: i32, checkpoint_s: Option<u64>) -> JobSpec {
    let mut spec = JobSpec::simple(id, devices);
    spec.priority = tier;
    spec.stated_duration = Some(Time::from_secs(100_000));
    spec.checkpoint_interval = checkpoint_s.map(Time::from_secs);
    spec
}

fn submit(s: &mut Scheduler, t: u64, spec: JobSpec) -> Vec<Decision> {
    s.handle_event(Time::from_secs(t), Event::JobSubmitted { spec });
    let ds: Vec<Decision> = std::iter::from_fn(|| s.poll_decision()).collect();
    for d in &ds {
        if let Decision::Launch { job, .. } = d {
            s.handle_event(Time::from_secs(t), Event::JobStarted { job: *job });
        }
    }
    ds
}

fn victims(ds: &[Decision]) -> Vec<(u64, VictimRuleName)> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::Preempt { job, reason: PreemptReason::HigherTier { victim_rule, .. }, .. } => Some((job.0, *victim_rule)),
            _ => None,
        })
        .collect()
}

type VictimRuleName = tessera_core::policy::VictimRule;

/// Job 1 (2 GPUs, from 0, checkpoints every 60 s) and job 2 (1 GPU, from 50, no checkpoints),
/// both tier 0, fill 3 GPUs; at 300 a tier-5 job needs 1 GPU.
/// - lowest-tier: equal tiers, so the latest started: job 2;
/// - least-progress: job 1 loses 300 mod 60 = 0 s, job 2 loses 250 s: job 1;
/// - most-attained: job 1 has 600 device-s, job 2 250: job 1.
fn scene(victim: &str) -> Vec<(u64, VictimRuleName)> {
    let mut s = sched(victim, 0.0, 3);
    submit(&mut s, 0, job(1, 2, 0, Some(60)));
    submit(&mut s, 50, job(2, 1, 0, None));
    victims(&submit(&mut s, 300, job(3, 1, 5, None)))
}

#[test]
fn lowest_tier_takes_the_latest_started_of_the_lowest_tier() {
    assert_eq!(scene("lowest-tier"), vec![(2, VictimRuleName::LowestTier)]);
}

#[test]
fn least_progress_takes_the_job_that_loses_least_since_its_checkpoint() {
    assert_eq!(scene("least-progress"), vec![(1, VictimRuleName::LeastProgress)]);
}

#[test]
fn least_progress_without_checkpoints_counts_all_time_since_the_start() {
    let mut s = sched("least-progress", 0.0, 2);
    submit(&mut s, 0, job(1, 1, 0, None)); // loses 300 s
    submit(&mut s, 200, job(2, 1, 0, Some(1000))); // loses 100 s: its first checkpoint is at 1,200
    assert_eq!(victims(&submit(&mut s, 300, job(3, 1, 5, None))), vec![(2, VictimRuleName::LeastProgress)]);
}

#[test]
fn most_attained_takes_the_job_with_the_most_service() {
    assert_eq!(scene("most-attained"), vec![(1, VictimRuleName::MostAttained)]);
}

#[test]
fn a_lower_tier_goes_before_a_better_victim_of_the_heads_tier_which_is_never_taken() {
    for rule in ["lowest-tier", "least-progress", "most-attained"] {
        let mut s = sched(rule, 0.0, 2);
        submit(&mut s, 0, job(1, 1, 5, None)); // the head's own tier: never a victim
        submit(&mut s, 10, job(2, 1, 1, Some(10))); // lower tier
        assert_eq!(victims(&submit(&mut s, 300, job(3, 1, 5, None))).iter().map(|v| v.0).collect::<Vec<_>>(), vec![2], "{rule}");
        // With only equal and higher tiers running, nothing is evicted.
        let mut s = sched(rule, 0.0, 1);
        submit(&mut s, 0, job(1, 1, 5, None));
        assert!(victims(&submit(&mut s, 300, job(2, 1, 5, None))).is_empty(), "{rule}");
    }
}

#[test]
fn a_job_that_restarted_less_than_min_runtime_ago_is_never_a_victim() {
    for rule in ["lowest-tier", "least-progress", "most-attained"] {
        // Job 2 starts at 250 (least progress, latest start); job 1 has run since 0.
        let mut s = sched(rule, 100.0, 2);
        submit(&mut s, 0, job(1, 1, 0, None));
        submit(&mut s, 0, job(4, 1, 0, None));
        s.handle_event(Time::from_secs(240), Event::JobFinished { job: JobId(4), outcome: Outcome::Completed });
        let ds = submit(&mut s, 250, job(2, 1, 0, None));
        assert!(matches!(ds.as_slice(), [Decision::Launch { job: JobId(2), .. }]), "{ds:?}");
        // At 300 a tier-5 job: job 2 ran 50 s of its 100 s minimum, so job 1 goes, whatever
        // the rule prefers.
        assert_eq!(victims(&submit(&mut s, 300, job(3, 1, 5, None))).iter().map(|v| v.0).collect::<Vec<_>>(), vec![1], "{rule}");
        // If only protected jobs remain, preemption waits for the first to become eligible.
        let mut s = sched(rule, 100.0, 1);
        submit(&mut s, 250, job(2, 1, 0, None));
        assert!(victims(&submit(&mut s, 300, job(3, 1, 5, None))).is_empty(), "{rule}");
        assert_eq!(s.poll_timeout(), Some(Time::from_secs(350)), "{rule}");
    }
}

#[test]
fn an_unknown_rule_is_named() {
    let mut spec = PolicySpec::named("priority");
    spec.victim = Some("youngest".into());
    let e = Policy::from_spec(&spec).unwrap_err();
    assert_eq!(e.key, "victim");
    assert!(e.message.contains("lowest-tier, least-progress, most-attained"), "{e}");
}
