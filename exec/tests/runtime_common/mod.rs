//! Shared by the runtime tests: a daemon on real CPU devices in a temporary state dir.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};
use tessera_core::PolicySpec;
use tessera_exec::config::CpuDevices;
use tessera_exec::{DaemonConfig, DaemonHandle, JobStatus, JobSubmission, JobView};

/// A configuration with `cpus` CPU devices of one core, no GPU, the given policy.
pub fn config(state_dir: &Path, cpus: u32, policy: PolicySpec) -> DaemonConfig {
    let mut c = DaemonConfig::new(state_dir);
    c.cpu.devices = CpuDevices::Count(cpus);
    c.gpu.enabled = tessera_exec::config::GpuEnabled::Off;
    c.policy = policy;
    c.allow_unvalidated = true;
    c.grace_s = 1.0;
    c.retry_backoff_s = 0.05;
    c.health.interval_s = 3600.0;
    c
}

pub fn sh(script: &str) -> JobSubmission {
    let mut s = JobSubmission::command("sh", &["-c", script]);
    s.devices.count = 1;
    s
}

/// Polls until the job satisfies `done`, or panics after `timeout` with its last view.
pub async fn wait_for(h: &DaemonHandle, job: u64, timeout: Duration, done: impl Fn(&JobView) -> bool) -> JobView {
    let t0 = Instant::now();
    loop {
        let v = h.show(job).await.unwrap().expect("job exists");
        if done(&v) {
            return v;
        }
        if t0.elapsed() > timeout {
            panic!("job {job} did not get there in {timeout:?}; last view: {v:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn wait_state(h: &DaemonHandle, job: u64, state: JobStatus) -> JobView {
    wait_for(h, job, Duration::from_secs(15), |v| v.state == state).await
}

pub async fn wait_done(h: &DaemonHandle, job: u64) -> JobView {
    wait_for(h, job, Duration::from_secs(15), |v| !v.state.is_live()).await
}
