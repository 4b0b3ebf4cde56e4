//! Regression: a LAS demotion timer that microsecond rounding lands a hair before the threshold
//! must not re-arm at the same instant (it did, and the simulator spun forever on the full
//! Philly trace: `handle_timeout` never returned, so without the fix this test hangs).

use tessera_core::*;

mod support;

#[test]
fn a_demotion_timer_never_re_arms_at_the_same_instant() {
    let cluster = support::uniform_cluster("V100-32GB", &[3], support::NodeSize { cpu_milli: 8000, mem_mib: 1 << 16 });
    let mut spec = PolicySpec::named("las");
    // 3 devices cross 10 device-seconds after 10/3 s: not a whole number of microseconds.
    spec.thresholds_device_s = Some(vec![10.0, 20.0]);
    spec.preempt = Some(true);
    let mut s = Scheduler::new(Policy::from_spec(&spec).unwrap(), cluster);
    s.handle_event(Time::ZERO, Event::JobSubmitted { spec: JobSpec::simple(1, 3) });
    assert!(matches!(s.poll_decision(), Some(Decision::Launch { .. })));
    s.handle_event(Time::ZERO, Event::JobStarted { job: JobId(1) });
    let mut last = Time::ZERO;
    let mut fired = 0;
    while let Some(t) = s.poll_timeout() {
        assert!(t > last || fired == 0, "timer at {t:?} after one at {last:?}: time must advance");
        s.handle_timeout(t);
        while s.poll_decision().is_some() {}
        last = t;
        fired += 1;
        assert!(fired < 10, "the timer keeps firing: last at {t:?}");
    }
    // Both thresholds were crossed, at about 3.33 s and 6.67 s.
    assert!(last > Time::from_secs(6) && last < Time::from_secs(7), "{last:?}");
}
