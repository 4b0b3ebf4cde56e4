//! The job ledger: the per-job accounting both drivers keep, by the same rules, so that
//! `wait_s`, `run_s`, `restarts` and `preemptions` mean the same in the simulator's `jobs.csv`,
//! the executor's journal and API, and `exec export-trace`.
//!
//! A driver holds one [`JobLedger`] per job and calls, as things happen:
//! [`JobLedger::submitted`] once, [`JobLedger::launched`] when the scheduler launches a run,
//! [`JobLedger::run_started`] when its work starts (the
//! simulator: the launch; the executor: its process running), [`JobLedger::stop_ordered`] when
//! the scheduler orders a run stopped (its [`StopCause`], from the core's [`PreemptReason`]),
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
//! No clock, no I/O: times are what the driver says they are (virtual or on the journal's
//! timeline), in the core's [`Time`] (microseconds).

use serde::{Deserialize, Serialize};
use tessera_core::{PreemptReason, Time};

/// Why the scheduler stopped a run, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// Stopped to requeue the job (a higher tier, a drain, a quota reclaim, a round):
    /// counted in `preemptions`.
    Preempted,
    /// A failure under the job (device or node): counted in `restarts`.
    Failure,
    /// A cancellation: counted in neither.
    Cancelled,
}

impl StopCause {
    /// The cause of a stop the core ordered with `reason` (a `Decision::Preempt`).
    pub fn of(reason: &PreemptReason) -> StopCause {
        match reason {
            PreemptReason::DeviceFailed { .. } | PreemptReason::NodeDown { .. } => StopCause::Failure,
            PreemptReason::Cancelled => StopCause::Cancelled,
            _ => StopCause::Preempted,
        }
    }
}

/// One job's accounting. The serialized field names are the executor's journal columns
/// (`submit_us`, `run_us`, ...: times in microseconds), so a journal row embeds it as is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLedger {
    #[serde(rename = "submit_us")]
    pub submit: Time,
    /// When its first run started.
    #[serde(rename = "first_start_us")]
    pub first_start: Option<Time>,
    /// When the current run started; `None` between runs.
    #[serde(rename = "run_start_us")]
    pub run_start: Option<Time>,
    /// When its life ended (completed, failed, killed, cancelled, rejected).
    #[serde(rename = "end_us")]
    pub end: Option<Time>,
    /// Running time over its ended runs.
    #[serde(rename = "run_us")]
    pub run: Time,
    /// Runs started; the current run is number `runs` (from 1).
    pub runs: u32,
    pub preemptions: u32,
    /// Runs ended by a failure under the job (journals written before the ledger: 0).
    #[serde(default)]
    pub restarts: u32,
}

impl JobLedger {
    /// A job submitted at `at`: never run, not ended.
    pub fn submitted(at: Time) -> JobLedger {
        JobLedger { submit: at, first_start: None, run_start: None, end: None, run: Time::ZERO, runs: 0, preemptions: 0, restarts: 0 }
    }

    /// The scheduler launched a new run (`Decision::Launch`): it is number `runs` from now.
    #[inline]
    pub fn launched(&mut self) {
        self.runs = self.runs.saturating_add(1);
    }

    /// The launched run's work starts at `at` (the simulator: at the launch; the executor:
    /// when its process is running).
    #[inline]
    pub fn run_started(&mut self, at: Time) {
        self.first_start.get_or_insert(at);
        self.run_start = Some(at);
    }

    /// A run that started at `run_start` was resumed by a restarted driver (the executor
    /// adopting a process): it keeps its start and is not counted again.
    pub fn run_resumed(&mut self, run_start: Time) {
        self.first_start.get_or_insert(run_start);
        self.run_start.get_or_insert(run_start);
    }

    /// The scheduler ordered the current run stopped, for `cause`. Counted when ordered,
    /// whatever the grace brings (a job that completes within its grace was still preempted).
    #[inline]
    pub fn stop_ordered(&mut self, cause: StopCause) {
        match cause {
            StopCause::Preempted => self.preemptions = self.preemptions.saturating_add(1),
            StopCause::Failure => self.restarts = self.restarts.saturating_add(1),
            StopCause::Cancelled => {}
        }
    }

    /// The current run stops at `at`; returns the time it ran (zero when no run was going).
    /// A clock that went back (a journal restored on another machine) counts as zero time,
    /// not a negative one.
    #[inline]
    pub fn run_stopped(&mut self, at: Time) -> Time {
        let ran = match self.run_start.take() {
            Some(start) => Time(at.0.saturating_sub(start.0)),
            None => Time::ZERO,
        };
        self.run = Time(self.run.0.saturating_add(ran.0));
        ran
    }

    /// The job's life ends at `at`; a run still going is stopped first.
    #[inline]
    pub fn ended(&mut self, at: Time) {
        self.run_stopped(at);
        self.end = Some(at);
    }

    /// Whether a run is going.
    pub fn running(&self) -> bool {
        self.run_start.is_some()
    }

    /// Running time up to `now`, the current run's part included.
    pub fn ran_until(&self, now: Time) -> Time {
        let live = self.run_start.map_or(0, |s| now.0.saturating_sub(s.0));
        Time(self.run.0.saturating_add(live))
    }

    /// Submission to end; `None` before the end.
    pub fn jct(&self) -> Option<Time> {
        self.end.map(|e| Time(e.0.saturating_sub(self.submit.0)))
    }

    /// Time not running between submission and end; `None` before the end.
    pub fn wait(&self) -> Option<Time> {
        self.jct().map(|j| Time(j.0.saturating_sub(self.run.0)))
    }

    /// Runs after the first (preemptions, failures, requeues after a driver restart).
    pub fn requeues(&self) -> u32 {
        self.runs.saturating_sub(1)
    }

    /// Copies the accounting into a record (`jobs.csv`'s row), which keeps the rest (device
    /// time, lost work, models ran on).
    pub fn fill_record(&self, record: &mut tessera_core::JobRecord) {
        record.submit = self.submit;
        record.first_start = self.first_start;
        record.end = self.end;
        record.run = self.run;
        record.preemptions = self.preemptions;
        record.restarts = self.restarts;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{DeviceId, JobId, NodeId};

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
