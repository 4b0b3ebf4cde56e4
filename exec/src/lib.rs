//! tessera-exec: the live executor. A tokio daemon that drives the very same
//! `tessera_core::Scheduler` and policy registry the simulator drives, against wall-clock time,
//! real processes and the machine's real devices (CPU core groups; NVIDIA GPUs through NVML
//! where present), with a durable SQLite journal so a restarted executor loses no job and runs
//! none twice.
//!
//! - [`daemon::start`] starts it; [`handle::DaemonHandle`] is the API the HTTP layer calls.
//! - [`spec`]: job submissions (TOML/JSON). [`config`]: the daemon's configuration.
//! - [`devices`]: the backends (`cpu`, `nvidia`). [`process`]: the supervisor's primitives.
//! - [`journal`]: the SQLite journal. [`gate`]: the validated-policy gate.
//! - [`export`]: the run as a native trace and decision log.

pub mod config;
pub mod conform;
pub mod daemon;
pub mod devices;
pub mod error;
pub mod export;
pub mod gate;
pub mod handle;
mod host;
pub mod journal;
pub mod process;
pub mod spec;

pub use config::DaemonConfig;
pub use daemon::start;
pub use error::ExecError;
pub use handle::{DaemonHandle, DeviceView, ExecEvent, JobStatus, JobView, MetricsSnapshot};
pub use spec::JobSubmission;

// The API half (HTTP API, client, `exec serve`).
pub mod api;
pub mod client;
pub mod serve;
