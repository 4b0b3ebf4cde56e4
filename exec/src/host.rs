//! What the daemon asks of the machine it runs on: the time, processes, signals, timers.
//! [`RealHost`] is this machine (the wall clock, real process groups, tokio timers); a
//! virtual host (`crate::conform`) runs the same daemon on simulated time, with each job
//! ending when the simulator's world says it ends, so that the executor's own decisions can
//! be compared with the simulator's.

use crate::daemon::Internal;
use crate::process::{self, LaunchSpec};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How often an adopted process (not our child) is checked for having ended.
const ADOPTED_POLL: Duration = Duration::from_millis(100);

/// A started run, as the daemon journals it.
pub(crate) struct Spawned {
    pub pid: i32,
    pub pgid: i32,
    pub start_ticks: u64,
    /// Our child, to wait for; `None` where the host tells of the exit itself.
    pub child: Option<tokio::process::Child>,
}

pub(crate) trait Host: Send + Sync {
    /// Microseconds on the journal's timeline: since `epoch_unix_us`, the Unix time the
    /// journal was created.
    fn now_us(&self, epoch_unix_us: u64) -> u64;
    /// Starts run `run` of job `job`.
    fn spawn(&self, job: u64, run: u32, spec: &LaunchSpec) -> Result<Spawned, String>;
    /// Sends `Internal::Exited { job, run }` once the run's process has ended.
    fn watch(&self, job: u64, run: u32, child: Option<tokio::process::Child>, pid: i32, start_ticks: u64, tx: &UnboundedSender<Internal>);
    /// Sends `msg` after `delay`.
    fn after(&self, delay: Duration, msg: Internal, tx: &UnboundedSender<Internal>);
    fn is_alive(&self, pid: i32, start_ticks: u64) -> bool;
    fn signal_group(&self, pgid: i32, signal: i32);
    /// The exit status run `run` of job `job` recorded (in `exit_file`), if it ended.
    fn exit_status(&self, job: u64, run: u32, exit_file: &Path) -> Option<i32>;
    /// The group leader carrying this run token, for a run whose pid was never journalled.
    fn find_by_token(&self, token: &str) -> Option<(i32, u64)>;
}

/// This machine.
pub(crate) struct RealHost;

impl Host for RealHost {
    fn now_us(&self, epoch_unix_us: u64) -> u64 {
        let unix_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        unix_us.saturating_sub(epoch_unix_us)
    }

    fn spawn(&self, _job: u64, _run: u32, spec: &LaunchSpec) -> Result<Spawned, String> {
        let l = process::spawn(spec)?;
        Ok(Spawned { pid: l.pid, pgid: l.pgid, start_ticks: l.start_ticks, child: Some(l.child) })
    }

    fn watch(&self, job: u64, run: u32, child: Option<tokio::process::Child>, pid: i32, start_ticks: u64, tx: &UnboundedSender<Internal>) {
        let tx = tx.clone();
        tokio::spawn(async move {
            match child {
                Some(mut child) => {
                    let _ = child.wait().await;
                }
                None => process::wait_adopted(pid, start_ticks, ADOPTED_POLL).await,
            }
            let _ = tx.send(Internal::Exited { job, run });
        });
    }

    fn after(&self, delay: Duration, msg: Internal, tx: &UnboundedSender<Internal>) {
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(msg);
        });
    }

    fn is_alive(&self, pid: i32, start_ticks: u64) -> bool {
        process::is_alive(pid, start_ticks)
    }

    fn signal_group(&self, pgid: i32, signal: i32) {
        process::signal_group(pgid, signal)
    }

    fn exit_status(&self, _job: u64, _run: u32, exit_file: &Path) -> Option<i32> {
        process::read_exit_status(exit_file)
    }

    fn find_by_token(&self, token: &str) -> Option<(i32, u64)> {
        process::find_by_token(token)
    }
}
