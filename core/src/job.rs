//! What a job asks for. The core never sees a job's true work, only what it states:
//! the world (simulator or real process) decides when a job actually finishes.

use crate::catalogue::ModelSet;
use crate::ids::{ClassId, JobId, TenantId};
use crate::event::PreemptReason;
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// A whole device is 1000 milli-devices.
pub const WHOLE_DEVICE_MILLI: u16 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    /// Number of devices, all granted at once or none (a gang); 0 for a CPU-only job.
    pub count: u32,
    /// Share of each device in milli-devices; `WHOLE_DEVICE_MILLI` for whole devices.
    /// A fractional share (< 1000) is only valid with `count == 1`.
    pub share_milli: u16,
    /// Models the job may run on; empty means any.
    pub models: ModelSet,
}

impl DeviceRequest {
    pub fn whole(count: u32) -> DeviceRequest {
        DeviceRequest { count, share_milli: WHOLE_DEVICE_MILLI, models: ModelSet::ANY }
    }

    pub fn is_fractional(&self) -> bool {
        self.share_milli < WHOLE_DEVICE_MILLI
    }

    /// Devices this request occupies, counting a fractional share as its fraction.
    pub fn device_equivalents(&self) -> f64 {
        self.count as f64 * self.share_milli as f64 / WHOLE_DEVICE_MILLI as f64
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: JobId,
    pub tenant: TenantId,
    /// Priority tier: larger is more important.
    pub priority: i32,
    pub devices: DeviceRequest,
    /// CPU in milli-cores over the whole job (split over nodes in proportion to devices).
    pub cpu_milli: u32,
    pub mem_mib: u64,
    pub class: ClassId,
    /// The duration the submitter states (a runtime estimate or limit), used by SJF;
    /// `None` when nobody said.
    pub stated_duration: Option<Time>,
    pub checkpoint_interval: Option<Time>,
}

impl JobSpec {
    /// A whole-device job with no CPU or memory demand, for tests and examples.
    pub fn simple(id: u64, devices: u32) -> JobSpec {
        JobSpec {
            id: JobId(id),
            tenant: TenantId(0),
            priority: 0,
            devices: DeviceRequest::whole(devices),
            cpu_milli: 0,
            mem_mib: 0,
            class: ClassId(0),
            stated_duration: None,
            checkpoint_interval: None,
        }
    }
}

/// How one run of a job ended, as the world reports it to the core (`Event::JobFinished`).
/// A subset of [`JobOutcome`] (`From` maps it there): the core only needs to know whether the
/// job's work is done, failed or was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    Failed,
    /// Stopped by the system (time limit, cancellation).
    Killed,
}

/// Where a live job stands: the phases the scheduler, the simulator and the executor share.
/// The job's life has not ended; once it has, it has a [`JobOutcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    /// Waiting for devices (never started, or returned to the queue).
    Queued,
    /// Chosen to run (`Launch` emitted); its process is being started.
    Launching,
    Running,
    /// Being stopped (`Preempt` emitted, grace running) to be requeued or cancelled.
    Preempting,
}

impl JobPhase {
    pub const ALL: [JobPhase; 4] = [JobPhase::Queued, JobPhase::Launching, JobPhase::Running, JobPhase::Preempting];

    pub fn as_str(self) -> &'static str {
        match self {
            JobPhase::Queued => "queued",
            JobPhase::Launching => "launching",
            JobPhase::Running => "running",
            JobPhase::Preempting => "preempting",
        }
    }

    pub fn parse(s: &str) -> Option<JobPhase> {
        JobPhase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How a job's life ended: the one vocabulary of the simulator's `jobs.csv`, the executor's
/// journal, API and CLI, native traces (`outcome` column) and reports. The table of names,
/// meanings and producers is in ARCHITECTURE.md ("Job states and outcomes").
///
/// Older names are still read (never written): `finished` (the executor's journal before this
/// vocabulary) is [`JobOutcome::Completed`], `censored` (native traces before it) is
/// [`JobOutcome::Unfinished`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOutcome {
    /// Its work is done (the process exited 0; the simulator's work reached zero).
    #[serde(alias = "finished")]
    Completed,
    /// A run failed and was not retried (non-zero exit, could not start, too many device
    /// failures).
    Failed,
    /// Stopped by the system: a time limit.
    Killed,
    /// Killed by the kernel's OOM killer at its memory limit, and did not recover.
    Oom,
    /// Cancelled by its owner or an operator, queued or running.
    Cancelled,
    /// Refused by the scheduler: it can never fit the fleet.
    Rejected,
    /// Still queued or running when the record was taken: its times are lower bounds.
    #[serde(alias = "censored")]
    Unfinished,
}

impl JobOutcome {
    pub const ALL: [JobOutcome; 7] = [
        JobOutcome::Completed,
        JobOutcome::Failed,
        JobOutcome::Killed,
        JobOutcome::Oom,
        JobOutcome::Cancelled,
        JobOutcome::Rejected,
        JobOutcome::Unfinished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Completed => "completed",
            JobOutcome::Failed => "failed",
            JobOutcome::Killed => "killed",
            JobOutcome::Oom => "oom",
            JobOutcome::Cancelled => "cancelled",
            JobOutcome::Rejected => "rejected",
            JobOutcome::Unfinished => "unfinished",
        }
    }

    /// The name as written, or one of the older names read for compatibility (`finished`,
    /// `censored`).
    pub fn parse(s: &str) -> Option<JobOutcome> {
        match s {
            "finished" => Some(JobOutcome::Completed),
            "censored" => Some(JobOutcome::Unfinished),
            _ => JobOutcome::ALL.into_iter().find(|o| o.as_str() == s),
        }
    }

    /// The names written, comma-separated, for error messages.
    pub fn names() -> String {
        JobOutcome::ALL.map(JobOutcome::as_str).join(", ")
    }
}

impl From<Outcome> for JobOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Completed => JobOutcome::Completed,
            Outcome::Failed => JobOutcome::Failed,
            Outcome::Killed => JobOutcome::Killed,
        }
    }
}

/// A job's state as the executor shows and journals it: its phase while live, its outcome
/// once ended. Written as one word (`"running"`, `"completed"`); read with the older names
/// [`JobOutcome::parse`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Live(JobPhase),
    Ended(JobOutcome),
}

impl JobStatus {
    pub const QUEUED: JobStatus = JobStatus::Live(JobPhase::Queued);
    pub const LAUNCHING: JobStatus = JobStatus::Live(JobPhase::Launching);
    pub const RUNNING: JobStatus = JobStatus::Live(JobPhase::Running);
    pub const PREEMPTING: JobStatus = JobStatus::Live(JobPhase::Preempting);
    pub const COMPLETED: JobStatus = JobStatus::Ended(JobOutcome::Completed);
    pub const FAILED: JobStatus = JobStatus::Ended(JobOutcome::Failed);
    pub const KILLED: JobStatus = JobStatus::Ended(JobOutcome::Killed);
    pub const OOM: JobStatus = JobStatus::Ended(JobOutcome::Oom);
    pub const CANCELLED: JobStatus = JobStatus::Ended(JobOutcome::Cancelled);
    pub const REJECTED: JobStatus = JobStatus::Ended(JobOutcome::Rejected);

    pub fn is_live(self) -> bool {
        matches!(self, JobStatus::Live(_))
    }

    pub fn phase(self) -> Option<JobPhase> {
        match self {
            JobStatus::Live(p) => Some(p),
            JobStatus::Ended(_) => None,
        }
    }

    /// The outcome of an ended job; [`JobOutcome::Unfinished`] for a live one.
    pub fn outcome(self) -> JobOutcome {
        match self {
            JobStatus::Live(_) => JobOutcome::Unfinished,
            JobStatus::Ended(o) => o,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Live(p) => p.as_str(),
            JobStatus::Ended(o) => o.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobPhase::parse(s).map(JobStatus::Live).or_else(|| JobOutcome::parse(s).map(JobStatus::Ended))
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        JobStatus::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown job state `{text}`: expected one of queued, launching, running, preempting, {}",
                JobOutcome::names()
            ))
        })
    }
}

// ---- the job ledger: see `tessera_driver::ledger` for its rules --------------------------

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
}

/// One job's life in a run, as a driver (simulator or executor) observed it. Its times and
/// counters are its [`JobLedger`] (`submit`, `first_start`, `end`, `run`, `preemptions`,
/// `restarts`), kept by the driver layer's rules (`tessera_driver::ledger`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub tenant: TenantId,
    pub devices: DeviceRequest,
    pub ledger: JobLedger,
    /// Models of the devices it last ran on.
    pub ran_on: crate::catalogue::ModelSet,
    /// Device-time held, in device-microseconds (a 0.5 share for 10 s is 5 s).
    pub device_micros: u128,
    pub outcome: JobOutcome,
    /// Work done and then lost (since the last checkpoint, at a failure or an unsaved
    /// preemption), measured as time on the reference device.
    pub lost_work: Time,
    /// Time spent writing and restoring checkpoints and saving on preemption.
    pub checkpoint_overhead: Time,
    /// What the running time would have been at the job's nominal speed on the devices it
    /// got (speed matrix only: no contention, communication, start-up or checkpoint costs).
    pub ideal_run: Time,
}

impl JobRecord {
    pub fn new(spec: &JobSpec, submit: Time) -> JobRecord {
        JobRecord {
            id: spec.id,
            tenant: spec.tenant,
            devices: spec.devices,
            ledger: JobLedger::submitted(submit),
            ran_on: crate::catalogue::ModelSet::ANY,
            device_micros: 0,
            outcome: JobOutcome::Unfinished,
            lost_work: Time::ZERO,
            checkpoint_overhead: Time::ZERO,
            ideal_run: Time::ZERO,
        }
    }

    /// Job completion time: submission to end.
    pub fn jct(&self) -> Option<Time> {
        self.ledger.jct()
    }

    /// Running time over the ideal running time (1.0: ran at its nominal speed throughout).
    pub fn slowdown(&self) -> f64 {
        if self.ideal_run == Time::ZERO {
            return f64::NAN;
        }
        self.ledger.run.as_secs_f64() / self.ideal_run.as_secs_f64()
    }

    /// Time not running between submission and end (all queueing, requeues included).
    pub fn wait(&self) -> Option<Time> {
        self.ledger.wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_written_as_one_word_and_read_back() {
        let all = JobPhase::ALL.map(JobStatus::Live).into_iter().chain(JobOutcome::ALL.map(JobStatus::Ended));
        for state in all {
            let text = serde_json::to_string(&state).unwrap();
            assert_eq!(text, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<JobStatus>(&text).unwrap(), state);
            assert_eq!(JobStatus::parse(state.as_str()), Some(state));
        }
        assert!(JobStatus::RUNNING.is_live() && !JobStatus::COMPLETED.is_live());
        assert_eq!((JobStatus::RUNNING.outcome(), JobStatus::OOM.outcome()), (JobOutcome::Unfinished, JobOutcome::Oom));
    }

    #[test]
    fn the_old_names_are_read_as_the_new_ones_and_never_written() {
        assert_eq!(serde_json::from_str::<JobStatus>("\"finished\"").unwrap(), JobStatus::COMPLETED);
        assert_eq!(serde_json::from_str::<JobOutcome>("\"finished\"").unwrap(), JobOutcome::Completed);
        assert_eq!(serde_json::from_str::<JobOutcome>("\"censored\"").unwrap(), JobOutcome::Unfinished);
        assert_eq!(JobOutcome::parse("censored"), Some(JobOutcome::Unfinished));
        assert!(JobOutcome::ALL.iter().all(|o| !["finished", "censored"].contains(&o.as_str())));
        let e = serde_json::from_str::<JobStatus>("\"done\"").unwrap_err().to_string();
        assert!(e.contains("unknown job state `done`") && e.contains("completed") && e.contains("unfinished"), "{e}");
    }

    #[test]
    fn a_run_outcome_maps_to_the_same_named_job_outcome() {
        for o in [Outcome::Completed, Outcome::Failed, Outcome::Killed] {
            let name = serde_json::to_value(o).unwrap();
            assert_eq!(JobOutcome::from(o).as_str(), name.as_str().unwrap());
        }
    }
}
