//! Shared by the API tests: the real daemon (real processes on CPU devices, a temporary state
//! dir) behind the real API server on an ephemeral loopback port, with one token per role.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tessera_exec::api::auth::{sha256_hex, Role, TokenEntry};
use tessera_exec::api::ApiConfig;
use tessera_exec::client::Client;
use tessera_exec::config::{CpuDevices, GpuEnabled};
use tessera_exec::handle::{JobView, JobStatus};
use tessera_exec::serve::{serve, ServeConfig};
use tessera_exec::spec::JobSubmission;
use tessera_exec::DaemonConfig;

/// (name, role, token) of every test caller.
pub const CALLERS: &[(&str, Role, &str)] = &[
    ("alice", Role::Submit, "tok-alice"),
    ("bob", Role::Submit, "tok-bob"),
    ("olga", Role::Operate, "tok-olga"),
    ("root", Role::Admin, "tok-root"),
];

pub struct Server {
    pub addr: SocketAddr,
    pub state: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), tessera_exec::serve::ServeError>>>,
}

pub fn daemon_config(state_dir: &std::path::Path, cpus: u32) -> DaemonConfig {
    let mut c = DaemonConfig::new(state_dir);
    c.cpu.devices = CpuDevices::Count(cpus);
    c.gpu.enabled = GpuEnabled::Off;
    c.allow_unvalidated = true;
    c.grace_s = 1.0;
    c.retry_backoff_s = 0.05;
    c.health.interval_s = 3600.0;
    c
}

pub fn api_config(max_body_bytes: usize) -> ApiConfig {
    ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_body_bytes,
        tokens: CALLERS.iter().map(|(name, role, token)| TokenEntry::new(name, *role, sha256_hex(token))).collect(),
        ..ApiConfig::default()
    }
}

impl Server {
    pub async fn start(cpus: u32, api: ApiConfig) -> Server {
        Server::start_in(tempfile::tempdir().unwrap(), cpus, api).await
    }

    /// Starts on an existing state dir (a restart: the journal is recovered).
    pub async fn start_in(state: tempfile::TempDir, cpus: u32, api: ApiConfig) -> Server {
        let daemon = daemon_config(&state.path().join("state"), cpus);
        Server::start_with(state, daemon, api).await
    }

    /// Starts with this daemon configuration (its state dir should be under `state`).
    pub async fn start_with(state: tempfile::TempDir, daemon: DaemonConfig, api: ApiConfig) -> Server {
        let config = ServeConfig { daemon, api };
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            config,
            async move {
                let _ = stop_rx.await;
            },
            move |addr| {
                let _ = addr_tx.send(addr);
            },
        ));
        let addr = addr_rx.await.expect("the server started");
        Server { addr, state, stop: Some(stop_tx), task: Some(task) }
    }

    /// A client holding `name`'s token.
    pub fn client(&self, name: &str) -> Client {
        let token = CALLERS.iter().find(|c| c.0 == name).map(|c| c.2.to_string());
        Client::new(&self.addr.to_string(), token).unwrap()
    }

    pub fn anonymous(&self) -> Client {
        Client::new(&self.addr.to_string(), None).unwrap()
    }

    pub fn with_token(&self, token: &str) -> Client {
        Client::new(&self.addr.to_string(), Some(token.to_string())).unwrap()
    }

    /// Stops the API and the daemon and checks both ended cleanly.
    pub async fn stop(self) {
        drop(self.stop_keeping_state().await);
    }

    /// Stops cleanly and hands back the state dir, for a restart on it.
    pub async fn stop_keeping_state(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.task.take().unwrap())
            .await
            .expect("the server stops within 20 s")
            .unwrap()
            .expect("the server ended cleanly");
        self.state
    }
}

pub fn sh(script: &str) -> JobSubmission {
    let mut s = JobSubmission::command("sh", &["-c", script]);
    s.devices.count = 1;
    s
}

/// Polls `GET /v1/jobs/{id}` until `done`, or panics after `timeout` with the last view.
pub async fn wait_for(client: &Client, job: u64, timeout: Duration, done: impl Fn(&JobView) -> bool) -> JobView {
    let t0 = Instant::now();
    loop {
        let v = client.show(job).await.unwrap();
        if done(&v) {
            return v;
        }
        if t0.elapsed() > timeout {
            panic!("job {job} did not get there in {timeout:?}; last view: {v:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn wait_state(client: &Client, job: u64, state: JobStatus) -> JobView {
    wait_for(client, job, Duration::from_secs(15), |v| v.state == state).await
}

pub async fn wait_done(client: &Client, job: u64) -> JobView {
    wait_for(client, job, Duration::from_secs(15), |v| !v.state.is_live()).await
}
