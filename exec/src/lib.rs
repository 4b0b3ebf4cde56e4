//! tessera-exec: the live executor. A tokio daemon that drives the very same
//! `tessera_core::Scheduler` and policy registry the simulator drives, against wall-clock time,
//! real processes and the machine's real devices (CPU core groups; NVIDIA GPUs through NVML
//! where present), with a durable SQLite journal so a restarted executor loses no job and runs
//! none twice.
//!
//! - [`daemon::start`] starts it; [`handle::DaemonHandle`] is the API the HTTP layer calls.
//! - [`spec`]: job submissions (TOML/JSON). [`config`]: the daemon's configuration.
//! - [`devices`]: the backends (`cpu`, `nvidia`). [`process`]: the supervisor's primitives.
//! - [`isolation`]: tenants' Unix users and file modes. [`cgroup`]: each run's cgroup and limits.
//! - [`journal`]: the SQLite journal. [`gate`]: the validated-policy gate.
//! - [`export`]: the run as a native trace and decision log.

pub mod cgroup;
pub mod config;
pub mod conform;
pub mod daemon;
pub mod devices;
pub mod error;
pub mod export;
pub mod gate;
pub mod handle;
mod host;
pub mod isolation;
pub mod journal;
pub mod process;
pub mod spec;

pub use config::DaemonConfig;
pub use daemon::start;
pub use error::ExecError;
pub use handle::{DaemonHandle, DeviceView, ExecEvent, JobStatus, JobView, MetricsSnapshot};
pub use spec::JobSubmission;

/// With the `fault-injection` feature (tests only): a job of this name makes the daemon panic
/// right after spawning it, before its pid is journalled or its submitter answered, as an
/// unchecked conversion once did. `exec/tests/runtime_panic.rs` checks what a panic leaves.
#[cfg(feature = "fault-injection")]
pub const FAULT_PANIC_AFTER_SPAWN: &str = "tessera-fault-panic-after-spawn";

// The API half (HTTP API, client, `exec serve`).
pub mod api;
pub mod client;
pub mod serve;
