//! The daemon's public surface: a cloneable handle that talks to the actor owning the
//! `Scheduler`, and the values it returns.

use crate::config::HealthConfig;
use crate::error::ExecError;
use crate::spec::JobSubmission;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tessera_core::validation::ValidationRecord;
use tessera_core::PolicySpec;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Where a job stands: its phase while live, its outcome once ended, in tessera's one
/// vocabulary (`tessera_core::JobStatus`; the table is in ARCHITECTURE.md). Journalled and
/// shown as one word; `finished`, this executor's name for `completed` before, is still read.
pub use tessera_core::JobStatus;

/// A job as the API shows it. Times are unix seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: u64,
    pub name: String,
    pub owner: String,
    pub tenant: String,
    pub priority: i32,
    pub state: JobStatus,
    pub submit_unix_s: f64,
    /// First start.
    pub start_unix_s: Option<f64>,
    pub end_unix_s: Option<f64>,
    pub exit_code: Option<i32>,
    /// Runs stopped by a failure under the job (a device or node failed), as `jobs.csv`
    /// counts them (the driver layer's ledger, `tessera_driver::ledger`).
    pub restarts: u32,
    /// Stops the scheduler ordered to requeue the job (counted when ordered).
    #[serde(default)]
    pub preemptions: u32,
    /// Runs started; `runs - 1` are requeues for any reason (preemption, failure, a restart of
    /// the executor).
    #[serde(default)]
    pub runs: u32,
    /// Devices of the current (or last) run, by tessera name (`cpu0`, `gpu1`).
    pub devices: Vec<String>,
    pub pid: Option<i32>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    pub checkpoint_dir: PathBuf,
    /// Why it failed to start, was killed or rejected.
    pub error: Option<String>,
    /// The core's last `Waiting` reason (JSON), while queued.
    pub wait_reason: Option<serde_json::Value>,
    /// The core's last `Launch` reason (JSON).
    pub launch_reason: Option<serde_json::Value>,
    pub submission: JobSubmission,
}

/// A device as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceView {
    /// tessera's name: `cpu0`, `gpu0`, `gpu0-mig1`.
    pub name: String,
    /// The core's device index.
    pub index: u32,
    /// `cpu` or `nvidia`.
    pub backend: String,
    pub model: String,
    pub uuid: Option<String>,
    /// CPU cores a job on this device is pinned to.
    pub cores: Vec<usize>,
    pub node: String,
    pub drained: bool,
    /// Cordoned by the health check; `health_reason` says why.
    pub unhealthy: bool,
    pub health_reason: Option<String>,
    /// Milli-devices free (1000 = whole device free).
    pub free_milli: u16,
    pub jobs: Vec<u64>,
    pub reading: Option<crate::devices::Reading>,
}

/// One journalled state change, as broadcast to subscribers (the same row the journal holds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecEvent {
    /// The journal's sequence number: strictly increasing, never reused.
    pub seq: u64,
    pub at_unix_s: f64,
    /// `submitted`, `launching`, `launched`, `started`, `preempting`, `evicted`, `finished`,
    /// `cancelled`, `rejected`, `decision`, `spawn_failed`, `adopted`, `requeued`, `device`,
    /// `policy`, ...
    pub kind: String,
    pub job: Option<u64>,
    pub detail: serde_json::Value,
}

/// A latency histogram in the Prometheus shape: cumulative counts per upper bound.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Upper bounds in seconds, increasing; `+Inf` is implied by `count`.
    pub bounds_s: Vec<f64>,
    /// `cumulative[i]`: observations <= `bounds_s[i]`.
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_s: f64,
    /// Raw observations kept for quantiles (the most recent ones, bounded).
    #[serde(skip)]
    pub recent_s: std::collections::VecDeque<f64>,
}

const RECENT_KEPT: usize = 100_000;

impl Histogram {
    /// Bounds from 10 µs to 10 s, roughly 1-2.5-5 per decade.
    pub fn latency() -> Histogram {
        let bounds_s = vec![1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let n = bounds_s.len();
        Histogram { bounds_s, cumulative: vec![0; n], count: 0, sum_s: 0.0, recent_s: Default::default() }
    }

    /// For counts rather than seconds (the fields keep their `_s` names): 1 to 1024 by powers of two.
    pub fn sizes() -> Histogram {
        let bounds_s: Vec<f64> = (0..=10).map(|p| f64::from(1u32 << p)).collect();
        let n = bounds_s.len();
        Histogram { bounds_s, cumulative: vec![0; n], count: 0, sum_s: 0.0, recent_s: Default::default() }
    }

    pub fn observe(&mut self, s: f64) {
        for (b, c) in self.bounds_s.iter().zip(self.cumulative.iter_mut()) {
            if s <= *b {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum_s += s;
        if self.recent_s.len() == RECENT_KEPT {
            self.recent_s.pop_front();
        }
        self.recent_s.push_back(s);
    }

    /// The q-quantile (0..=1) of the kept observations, exact over them.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.recent_s.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.recent_s.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let idx = ((q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        Some(v[idx])
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceMetrics {
    pub name: String,
    pub model: String,
    /// Share held by jobs, 0..=1.
    pub allocated_fraction: f64,
    /// The device's own utilization reading (NVML), 0..=1, when it has one.
    pub utilization: Option<f64>,
    pub healthy: bool,
    pub drained: bool,
}

/// What `/metrics` needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub queue_len: u64,
    pub running: u64,
    pub jobs_by_state: std::collections::BTreeMap<String, u64>,
    pub devices: Vec<DeviceMetrics>,
    /// Per input (submission, exit, timer...): time in the core, decisions drained.
    pub decision_latency: Histogram,
    /// Per journal commit (fsync included).
    pub journal_commit_latency: Histogram,
    /// Inputs (commands, exits, timers) taken into each batch, whose journal rows share one
    /// commit (group commit). A count, not seconds.
    pub batch_inputs: Histogram,
    /// Per launch: from the core's `Launch` to the process running (the launch's journal commit
    /// and the spawn included).
    pub launch_overhead: Histogram,
    pub policy_label: String,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, ExecError>>;

pub(crate) enum Command {
    Submit { spec: Box<JobSubmission>, owner: String, reply: Reply<JobView> },
    List { reply: Reply<Vec<JobView>> },
    Show { job: u64, reply: Reply<Option<JobView>> },
    Cancel { job: u64, reply: Reply<JobView> },
    Drain { target: String, drain: bool, reply: Reply<()> },
    Devices { reply: Reply<Vec<DeviceView>> },
    SetPolicy { spec: Box<PolicySpec>, record: Option<Box<ValidationRecord>>, allow_unvalidated: bool, reply: Reply<()> },
    SetHealth { health: HealthConfig, reply: Reply<()> },
    Shutdown { reply: Reply<()> },
}

#[derive(Clone)]
pub struct DaemonHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<ExecEvent>,
    pub(crate) metrics: Arc<Mutex<MetricsSnapshot>>,
    pub(crate) state_dir: PathBuf,
}

impl DaemonHandle {
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ExecError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| ExecError::ShuttingDown)?;
        rx.await.map_err(|_| ExecError::ShuttingDown)?
    }

    pub async fn submit(&self, spec: JobSubmission, owner: &str) -> Result<JobView, ExecError> {
        spec.validate()?;
        let owner = owner.to_string();
        self.call(|reply| Command::Submit { spec: Box::new(spec), owner, reply }).await
    }

    pub async fn list(&self) -> Result<Vec<JobView>, ExecError> {
        self.call(|reply| Command::List { reply }).await
    }

    pub async fn show(&self, job: u64) -> Result<Option<JobView>, ExecError> {
        self.call(|reply| Command::Show { job, reply }).await
    }

    /// Cancels queued or running (SIGTERM, grace, SIGKILL). Authorization is the API's job.
    pub async fn cancel(&self, job: u64) -> Result<JobView, ExecError> {
        self.call(|reply| Command::Cancel { job, reply }).await
    }

    /// Drains a device (by tessera device name like `cpu0`, or a GPU UUID) or a node by name:
    /// it gets no new jobs, and its jobs are preempted (requeued) with the policy's grace.
    pub async fn drain(&self, target: &str) -> Result<(), ExecError> {
        let target = target.to_string();
        self.call(|reply| Command::Drain { target, drain: true, reply }).await
    }

    pub async fn undrain(&self, target: &str) -> Result<(), ExecError> {
        let target = target.to_string();
        self.call(|reply| Command::Drain { target, drain: false, reply }).await
    }

    pub async fn devices(&self) -> Result<Vec<DeviceView>, ExecError> {
        self.call(|reply| Command::Devices { reply }).await
    }

    /// Swaps the policy; refuses unless a passing validation record admits exactly this spec
    /// (`ValidationRecord::admits`) or `allow_unvalidated` (logged loudly and journalled).
    pub async fn set_policy(&self, spec: PolicySpec, record: Option<ValidationRecord>, allow_unvalidated: bool) -> Result<(), ExecError> {
        self.call(|reply| Command::SetPolicy { spec: Box::new(spec), record: record.map(Box::new), allow_unvalidated, reply }).await
    }

    /// Replaces the health thresholds at run time; the next poll applies them.
    pub async fn set_health(&self, health: HealthConfig) -> Result<(), ExecError> {
        health.validate()?;
        self.call(|reply| Command::SetHealth { health, reply }).await
    }

    /// Every state change as it is journalled.
    pub fn subscribe(&self) -> broadcast::Receiver<ExecEvent> {
        self.events.subscribe()
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    /// Stops the daemon: no new input is taken, the journal is closed. Running jobs are left
    /// running; a daemon started on the same state dir adopts them.
    pub async fn shutdown(&self) -> Result<(), ExecError> {
        self.call(|reply| Command::Shutdown { reply }).await
    }
}
