//! What the daemon asks of the machine it runs on: the time, processes, signals, timers.
//! [`RealHost`] is this machine (the wall clock, real process groups, tokio timers); a
//! virtual host (`crate::conform`) runs the same daemon on simulated time, with each job
//! ending when the simulator's world says it ends, so that the executor's own decisions can
//! be compared with the simulator's.

use crate::cgroup::Cgroups;
use crate::daemon::Internal;
use crate::process::{self, LaunchSpec};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How often an adopted process (not our child) is checked for having ended.
const ADOPTED_POLL: Duration = Duration::from_millis(100);

/// How a run ended, beyond its exit status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunEnd {
    /// Processes of the run the kernel's OOM killer killed (in its cgroup).
    pub oom_kills: u64,
    /// What could not be cleaned up (a process that would not die, a cgroup left behind).
    pub cleanup_error: Option<String>,
}

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
    /// SIGKILLs everything of run `run` of job `job`: its process group, and on a host with
    /// cgroups every process in the run's cgroup (those that left the group too).
    fn kill_run(&self, _job: u64, _run: u32, pgid: Option<i32>) {
        if let Some(pgid) = pgid {
            self.signal_group(pgid, libc::SIGKILL);
        }
    }
    /// Kills and removes the cgroups of runs that are not live (`keep` says which are): the
    /// leftovers of runs that ended or were requeued while no executor ran. Returns them.
    fn sweep_runs(&self, _keep: &dyn Fn(u64, u32) -> bool) -> Vec<(u64, u32)> {
        Vec::new()
    }
    /// After the run's main process ended: kills what it left behind (`kill_run`), tells
    /// whether the OOM killer struck in the run's cgroup, and removes the cgroup.
    fn run_ended(&self, job: u64, run: u32, pgid: Option<i32>) -> RunEnd {
        self.kill_run(job, run, pgid);
        RunEnd::default()
    }
}

/// This machine.
pub(crate) struct RealHost {
    pub cgroups: Cgroups,
}

impl Drop for RealHost {
    /// Removes this executor's cgroup scope when no job cgroup is left in it (jobs left
    /// running for a restart to adopt keep theirs, and the scope with them).
    fn drop(&mut self) {
        match &self.cgroups {
            Cgroups::V2 { scope } => {
                let _ = std::fs::remove_dir(scope);
            }
            Cgroups::V1 { scopes } => {
                for (_, scope) in scopes {
                    let _ = std::fs::remove_dir(scope);
                }
            }
            Cgroups::None { .. } => {}
        }
    }
}

impl Host for RealHost {
    fn now_us(&self, epoch_unix_us: u64) -> u64 {
        let unix_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
        unix_us.saturating_sub(epoch_unix_us)
    }

    fn spawn(&self, job: u64, run: u32, spec: &LaunchSpec) -> Result<Spawned, String> {
        let Some(cgroup) = self.cgroups.job(job, run) else {
            let l = process::spawn(spec)?;
            return Ok(Spawned { pid: l.pid, pgid: l.pgid, start_ticks: l.start_ticks, child: Some(l.child) });
        };
        // A leftover of an earlier attempt at this run (a failed start, a crash before the
        // launch was journalled) is emptied first: what is in it is not this start's.
        if cgroup.exists() {
            cgroup.kill_all()?;
        }
        cgroup.create(spec.limits).map_err(|e| format!("creating the job's cgroup: {e}"))?;
        let mut spec = spec.clone();
        spec.cgroup_procs = cgroup.procs_files();
        match process::spawn(&spec) {
            Ok(l) => Ok(Spawned { pid: l.pid, pgid: l.pgid, start_ticks: l.start_ticks, child: Some(l.child) }),
            Err(e) => {
                let _ = cgroup.kill_all();
                let _ = cgroup.remove();
                Err(e)
            }
        }
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

    fn kill_run(&self, job: u64, run: u32, pgid: Option<i32>) {
        if let Some(pgid) = pgid {
            process::signal_group(pgid, libc::SIGKILL);
        }
        // Found by name: after a restart too.
        if let Some(cgroup) = self.cgroups.job(job, run).filter(|c| c.exists()) {
            if let Err(e) = cgroup.kill_all() {
                tracing::warn!("job {job} run {run}: {e}");
            }
        }
    }

    fn sweep_runs(&self, keep: &dyn Fn(u64, u32) -> bool) -> Vec<(u64, u32)> {
        let mut swept = Vec::new();
        for (job, run) in self.cgroups.existing_runs() {
            if keep(job, run) {
                continue;
            }
            if let Some(cgroup) = self.cgroups.job(job, run) {
                match cgroup.kill_all().and_then(|_| cgroup.remove()) {
                    Ok(()) => swept.push((job, run)),
                    Err(e) => tracing::warn!("job {job} run {run}: a leftover cgroup: {e}"),
                }
            }
        }
        swept
    }

    fn run_ended(&self, job: u64, run: u32, pgid: Option<i32>) -> RunEnd {
        if let Some(pgid) = pgid {
            process::signal_group(pgid, libc::SIGKILL);
        }
        let Some(cgroup) = self.cgroups.job(job, run).filter(|c| c.exists()) else { return RunEnd::default() };
        let killed = cgroup.kill_all();
        let oom_kills = cgroup.oom_kills();
        let removed = killed.and_then(|_| cgroup.remove());
        RunEnd { oom_kills, cleanup_error: removed.err() }
    }
}
