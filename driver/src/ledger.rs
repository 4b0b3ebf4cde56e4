//! The job ledger: the per-job accounting both drivers keep, by the same rules, so that
//! `wait_s`, `run_s`, `restarts` and `preemptions` mean the same in the simulator's `jobs.csv`,
//! the executor's journal and API, and `exec export-trace`.
//!
//! A driver holds one [`JobLedger`] per job and calls, as things happen:
//! [`JobLedger::submitted`] once, [`JobLedger::launched`] when the scheduler launches a run,
//! [`JobLedger::run_started`] when its work starts (the
//! simulator: the launch; the executor: its process running), [`JobLedger::stop_ordered`] when
//! the scheduler orders a run stopped (its [`StopCause`], from the core's [`PreemptReason`](tessera_core::PreemptReason)),
//! [`JobLedger::run_stopped`] when a run ends, and [`JobLedger::ended`] when the job's life ends (with its
//! [`tessera_core::JobOutcome`], which the driver keeps with its own state).
//!
//! The rules, written once here:
//!
//! - `run`: the time the job's runs held their devices, summed over its runs (a run still going
//!   counts up to `now` in [`JobLedger::ran_until`]);
//! - `wait` = (`end` − `submit`) − `run`: all the time it did not run, requeues included;
//! - `preemptions`: stops the scheduler ordered to requeue the job (a higher tier, a drain, a
//!   quota reclaim, a round's rotation), counted when ordered; cancellations are not counted;
//! - `restarts`: runs stopped by a failure under the job (a device or node failed), after which
//!   it returned to the queue or failed for good;
//! - `runs`: runs started.
//!
//! The types live in `tessera_core::job`, so that a simulated job's record (`JobRecord`, a row
//! of `jobs.csv`) holds its ledger itself rather than a copy beside it: a million-job run keeps
//! each job's accounting once.
//!
//! No clock, no I/O: times are what the driver says they are (virtual or on the journal's
//! timeline), in the core's [`Time`](tessera_core::Time) (microseconds).

pub use tessera_core::{JobLedger, StopCause};

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{DeviceId, JobId, NodeId, PreemptReason, Time};

    fn s(x: u64) -> Time {
        Time(x * 1_000_000)
    }

    #[test]
    fn a_job_preempted_then_failed_then_completed() {
        let mut l = JobLedger::submitted(s(10));
        l.launched();
        l.run_started(s(15));
        l.stop_ordered(StopCause::of(&PreemptReason::HigherTier { for_job: JobId(2), victim_tier: 0, for_tier: 1, victim_rule: Default::default() }));
        assert_eq!(l.run_stopped(s(25)), s(10));
        l.launched();
        l.run_started(s(40));
        l.stop_ordered(StopCause::of(&PreemptReason::DeviceFailed { device: DeviceId(0) }));
        assert_eq!(l.run_stopped(s(43)), s(3));
        l.launched();
        l.run_started(s(50));
        assert!(l.running());
        assert_eq!(l.ran_until(s(55)), s(18));
        l.ended(s(60));
        assert!(!l.running());
        assert_eq!((l.first_start, l.end, l.run), (Some(s(15)), Some(s(60)), s(23)));
        assert_eq!((l.runs, l.preemptions, l.restarts, l.requeues()), (3, 1, 1, 2));
        assert_eq!(l.jct(), Some(s(50)));
        assert_eq!(l.wait(), Some(s(27)), "jct 50 - run 23");
    }

    #[test]
    fn stop_causes_count_where_the_simulator_counts_them() {
        assert_eq!(StopCause::of(&PreemptReason::NodeDown { node: NodeId(0) }), StopCause::Failure);
        assert_eq!(StopCause::of(&PreemptReason::Cancelled), StopCause::Cancelled);
        assert_eq!(StopCause::of(&PreemptReason::DeviceDrained { device: DeviceId(1) }), StopCause::Preempted);
        assert_eq!(StopCause::of(&PreemptReason::Maintenance { node: NodeId(1) }), StopCause::Preempted);
        let mut l = JobLedger::submitted(s(0));
        l.run_started(s(1));
        l.stop_ordered(StopCause::Cancelled);
        l.ended(s(2));
        assert_eq!((l.preemptions, l.restarts, l.run), (0, 0, s(1)));
    }

    #[test]
    fn a_clock_that_went_back_counts_no_time_and_a_stop_without_a_run_counts_none() {
        let mut l = JobLedger::submitted(s(100));
        l.run_started(s(120));
        assert_eq!(l.run_stopped(s(110)), Time::ZERO);
        assert_eq!(l.run_stopped(s(130)), Time::ZERO, "no run going");
        l.ended(s(90));
        assert_eq!((l.jct(), l.wait()), (Some(Time::ZERO), Some(Time::ZERO)));
    }

    #[test]
    fn serialized_names_are_the_journal_columns_and_restarts_defaults_to_zero() {
        let mut l = JobLedger::submitted(Time(1000));
        l.launched();
        l.run_started(Time(2000));
        let v = serde_json::to_value(l).unwrap();
        assert_eq!(v, serde_json::json!({"submit_us": 1000, "first_start_us": 2000, "run_start_us": 2000, "end_us": null, "run_us": 0, "runs": 1, "preemptions": 0, "restarts": 0}));
        let old = r#"{"submit_us":1000,"first_start_us":2000,"run_start_us":2000,"end_us":null,"run_us":0,"runs":1,"preemptions":0}"#;
        assert_eq!(serde_json::from_str::<JobLedger>(old).unwrap(), l);
    }
}
