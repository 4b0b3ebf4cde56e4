//! What a job asks for. The core never sees a job's true work, only what it states:
//! the world (simulator or real process) decides when a job actually finishes.

use crate::catalogue::ModelSet;
use crate::ids::{ClassId, JobId, TenantId};
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

/// How a job's run ended, as the world reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    Failed,
    /// Stopped by the system (time limit, cancellation).
    Killed,
}

/// How a job's life in a run ended, for records and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordOutcome {
    Completed,
    Failed,
    Killed,
    Rejected,
    Cancelled,
    /// Still queued or running when the run stopped.
    Unfinished,
}

impl RecordOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOutcome::Completed => "completed",
            RecordOutcome::Failed => "failed",
            RecordOutcome::Killed => "killed",
            RecordOutcome::Rejected => "rejected",
            RecordOutcome::Cancelled => "cancelled",
            RecordOutcome::Unfinished => "unfinished",
        }
    }
}

impl From<Outcome> for RecordOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Completed => RecordOutcome::Completed,
            Outcome::Failed => RecordOutcome::Failed,
            Outcome::Killed => RecordOutcome::Killed,
        }
    }
}

/// One job's life in a run, as a driver (simulator or executor) observed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub tenant: TenantId,
    pub devices: DeviceRequest,
    pub submit: Time,
    /// First time the job started running.
    pub first_start: Option<Time>,
    /// When it completed, failed, was killed or cancelled.
    pub end: Option<Time>,
    /// Total time spent running, over all its runs.
    pub run: Time,
    pub preemptions: u32,
    /// Models of the devices it last ran on.
    pub ran_on: crate::catalogue::ModelSet,
    /// Device-time held, in device-microseconds (a 0.5 share for 10 s is 5 s).
    pub device_micros: u128,
    pub outcome: RecordOutcome,
    /// Work done and then lost (since the last checkpoint, at a failure or an unsaved
    /// preemption), measured as time on the reference device.
    pub lost_work: Time,
    /// Runs ended by a failure (of a device or node the job ran on).
    pub restarts: u32,
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
            submit,
            first_start: None,
            end: None,
            run: Time::ZERO,
            preemptions: 0,
            ran_on: crate::catalogue::ModelSet::ANY,
            device_micros: 0,
            outcome: RecordOutcome::Unfinished,
            lost_work: Time::ZERO,
            restarts: 0,
            checkpoint_overhead: Time::ZERO,
            ideal_run: Time::ZERO,
        }
    }

    /// Job completion time: submission to end.
    pub fn jct(&self) -> Option<Time> {
        self.end.map(|e| e - self.submit)
    }

    /// Running time over the ideal running time (1.0: ran at its nominal speed throughout).
    pub fn slowdown(&self) -> f64 {
        if self.ideal_run == Time::ZERO {
            return f64::NAN;
        }
        self.run.as_secs_f64() / self.ideal_run.as_secs_f64()
    }

    /// Time not running between submission and end (all queueing, requeues included).
    pub fn wait(&self) -> Option<Time> {
        self.jct().map(|j| j - self.run)
    }
}
