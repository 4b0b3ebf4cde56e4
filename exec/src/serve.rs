//! `tessera exec serve`: the daemon and the API together, from one `exec.toml`:
//!
//! ```toml
//! [daemon]            # DaemonConfig: state_dir, policy, cpu, gpu, health, ...
//! state_dir = "/var/lib/tessera"
//! [daemon.policy]
//! name = "fifo"
//!
//! [api]               # ApiConfig: listen, allow_remote, max_body_bytes, public_metrics
//! listen = "127.0.0.1:7878"
//! [api.tls]           # optional: serve HTTPS
//! cert = "server.pem"
//! key = "server.key"
//! [[api.tokens]]      # from `tessera exec token NAME --role ROLE [--tenant T ...]`
//! name = "alice"
//! role = "submit"
//! sha256 = "..."
//! tenants = ["team-a"]
//! ```
//!
//! Relative paths in `[daemon]` (`state_dir`, `validation_record`, `speed_table.path`, and `gpu.nvml_library`
//! when it has a directory: a bare file name is the dynamic loader's to find) and in `[api.tls]`
//! are taken from the directory of `exec.toml`, so the file means the same whatever the
//! working directory.

use crate::api::{self, ApiConfig};
use crate::config::DaemonConfig;
use crate::error::ExecError;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub api: ApiConfig,
}

/// A bad `exec.toml`: the file, the line where toml or serde pointed (when it did), the
/// dotted field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ", `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The line of `field` (dotted, e.g. `api.listen` or `daemon.cpu.cores_per_device`) in
/// `text`, found by walking the document with spans; None when the key is not written.
fn line_of_field(text: &str, field: &str) -> Option<usize> {
    // Search the text for the key's last segment after its table header, which is what a
    // person looks for (toml's `Value` keeps no spans once deserialized).
    let segments: Vec<&str> = field.split('.').collect();
    let (key, tables) = segments.split_last()?;
    let key = key.split('[').next().unwrap_or(key);
    // `tokens[2]` is the third `[[api.tokens]]` header.
    let nth = tables.last().and_then(|t| t.split_once('[')).and_then(|(_, i)| i.trim_end_matches(']').parse::<usize>().ok()).unwrap_or(0);
    let tables: Vec<&str> = tables.iter().map(|t| t.split('[').next().unwrap_or(t)).collect();
    let header_line = if tables.is_empty() {
        0
    } else {
        let header = format!("[{}]", tables.join("."));
        let array_header = format!("[[{}]]", tables.join("."));
        text.lines()
            .enumerate()
            .filter(|(_, l)| {
                let l = l.trim();
                l == header || l == array_header
            })
            .nth(nth)?
            .0
    };
    text.lines().enumerate().skip(header_line).find_map(|(i, l)| {
        let l = l.trim_start();
        let rest = l.strip_prefix(key)?;
        rest.trim_start().starts_with('=').then_some(i + 1)
    })
}

impl ServeConfig {
    /// Parses and checks an `exec.toml`'s text; `file` names it in errors and relative paths
    /// are resolved against `base_dir`.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<ServeConfig, ConfigError> {
        let mut config: ServeConfig = tessera_driver::toml_input::from_toml(text)
            .map_err(|e| ConfigError { file: file.to_string(), line: e.location.map(|l| l.line), field: e.path, message: e.message })?;
        let speed_table = config.daemon.speed_table.as_mut().map(|t| &mut t.path);
        let (tls_cert, tls_key) = match config.api.tls.as_mut() {
            Some(tls) => (Some(&mut tls.cert), Some(&mut tls.key)),
            None => (None, None),
        };
        for path in [Some(&mut config.daemon.state_dir), config.daemon.validation_record.as_mut(), speed_table, tls_cert, tls_key].into_iter().flatten() {
            if path.is_relative() && !path.as_os_str().is_empty() {
                *path = base_dir.join(&*path);
            }
        }
        // A bare file name (`libnvidia-ml.so.1`) is the dynamic loader's to find; a relative
        // path with a directory is the file's, like the others.
        if let Some(path) = config.daemon.gpu.nvml_library.as_mut().filter(|p| p.is_relative() && p.components().count() > 1) {
            *path = base_dir.join(&*path);
        }
        let at = |field: String, message: String| ConfigError { file: file.to_string(), line: line_of_field(text, &field), field, message };
        config.daemon.validate().map_err(|e| match e {
            ExecError::Invalid { field, message } => at(format!("daemon.{field}"), message),
            other => at("daemon".into(), other.to_string()),
        })?;
        config.api.validate_with_tenants(&config.tenant_table()).map_err(|e| at(e.field, e.message))?;
        config.api.tls_server_config().map_err(|e| at(e.field, e.message))?;
        Ok(config)
    }

    /// The names of `[[daemon.tenants]]`, in order (empty: no tenant table).
    pub fn tenant_table(&self) -> Vec<String> {
        self.daemon.tenants.iter().map(|t| t.name.clone()).collect()
    }

    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError { file: path.display().to_string(), line: None, field: String::new(), message: e.to_string() })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        ServeConfig::parse(&text, &path.display().to_string(), &base)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(#[from] api::ApiConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the daemon: {0}")]
    Daemon(#[from] ExecError),
    #[error("the API server: {0}")]
    Server(std::io::Error),
}

/// Resolves on the first SIGINT or SIGTERM (Ctrl-C only where there are no Unix signals).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Starts the daemon and the API; calls `on_ready` with the bound address once both are up;
/// runs until `stop` resolves (or the daemon stops on its own), then stops the API (open event
/// streams end), shuts the daemon down and waits for it. Running jobs are left running: a
/// daemon started again on the same state dir adopts them.
pub async fn serve(config: ServeConfig, stop: impl Future<Output = ()> + Send + 'static, on_ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    // The tokens and TLS files are checked, and the port bound, before the daemon touches the
    // journal: a bad configuration or a port already taken changes nothing.
    let tenant_table = config.tenant_table();
    config.api.validate_with_tenants(&tenant_table)?;
    let tls = config.api.tls_server_config()?;
    let listener = api::bind(&config.api).await.map_err(|source| ServeError::Bind { addr: config.api.listen, source })?;
    let addr = listener.local_addr().map_err(ServeError::Server)?;
    let listener = api::ApiListener::new(listener, tls).map_err(ServeError::Server)?;
    let (handle, mut daemon_task) = crate::daemon::start(config.daemon.clone()).await?;
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let counters = std::sync::Arc::new(api::ApiCounters::default());
    let built = api::audit::AuditLog::open(&config.daemon.journal_path(), config.daemon.journal.sync, counters.audit_write_failures.clone())
        .map_err(ServeError::Daemon)
        .and_then(|(audit, writer)| Ok((api::router(handle.clone(), &config.api, &tenant_table, audit, counters, stopping_rx)?, writer)));
    let (router, audit_writer) = match built {
        Ok(r) => r,
        Err(e) => {
            let _ = handle.shutdown().await;
            let _ = daemon_task.await;
            return Err(e);
        }
    };
    let (stop_api_tx, stop_api_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve_until(listener, router, async move {
        let _ = stop_api_rx.await;
    }));
    on_ready(addr);
    let daemon_result = tokio::select! {
        _ = stop => None,
        r = &mut daemon_task => Some(r),
    };
    let _ = stopping_tx.send(true);
    let _ = stop_api_tx.send(());
    let server_result = server.await;
    // The router (and with it every sender of audit rows) is gone: the last rows are written.
    audit_writer.finish().await;
    let daemon_result = match daemon_result {
        Some(r) => r,
        None => {
            // The daemon may already be gone (ShuttingDown); its task's result says how it ended.
            let _ = handle.shutdown().await;
            daemon_task.await
        }
    };
    match daemon_result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(join) => return Err(ServeError::Daemon(ExecError::Refused(format!("the daemon task panicked: {join}")))),
    }
    match server_result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServeError::Server(e)),
        Err(join) => Err(ServeError::Server(std::io::Error::other(join.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::sha256_hex;

    fn good() -> String {
        format!(
            "[daemon]\nstate_dir = 'state'\n[daemon.policy]\nname = 'fifo'\n[daemon.cpu]\ndevices = 2\n\n[api]\nlisten = '127.0.0.1:0'\n\
             [[api.tokens]]\nname = 'root'\nrole = 'admin'\nsha256 = '{}'\n",
            sha256_hex("t")
        )
    }

    #[test]
    fn parses_and_resolves_paths_against_the_file() {
        let c = ServeConfig::parse(&good(), "exec.toml", Path::new("/etc/tessera")).unwrap();
        assert_eq!(c.daemon.state_dir, PathBuf::from("/etc/tessera/state"));
        assert_eq!(c.api.tokens.len(), 1);
        assert_eq!(c.api.max_body_bytes, api::DEFAULT_MAX_BODY_BYTES);
        let text = good().replace("[daemon.cpu]", "[daemon.gpu]\nnvml_library = 'drivers/libnvidia-ml.so.1'\n[daemon.cpu]");
        let c = ServeConfig::parse(&text, "exec.toml", Path::new("/etc/tessera")).unwrap();
        assert_eq!(c.daemon.gpu.nvml_library(), Path::new("/etc/tessera/drivers/libnvidia-ml.so.1"));
        let text = good().replace("[daemon.cpu]", "[daemon.gpu]\nnvml_library = 'libnvidia-ml.so.1'\n[daemon.cpu]");
        let c = ServeConfig::parse(&text, "exec.toml", Path::new("/etc/tessera")).unwrap();
        assert_eq!(c.daemon.gpu.nvml_library(), Path::new("libnvidia-ml.so.1"), "a bare name is left to the loader");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = good().replace("listen = '127.0.0.1:0'", "listen = '127.0.0.1:0'\nlisen = 1");
        let e = ServeConfig::parse(&text, "exec.toml", Path::new(".")).unwrap_err();
        assert_eq!(e.file, "exec.toml");
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.to_string().contains("lisen"), "{e}");

        let text = good().replace("devices = 2", "devices = 'many'");
        let e = ServeConfig::parse(&text, "exec.toml", Path::new(".")).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.field.starts_with("daemon.cpu.devices"), "{e}");

        let text = good().replace("listen = '127.0.0.1:0'", "listen = '0.0.0.0:7878'");
        let e = ServeConfig::parse(&text, "exec.toml", Path::new(".")).unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("api.listen", Some(9)), "{e}");
        assert!(e.to_string().starts_with("exec.toml, line 9, `api.listen`: "), "{e}");

        let text = good().replace("name = 'fifo'", "name = 'lottery'");
        let e = ServeConfig::parse(&text, "exec.toml", Path::new(".")).unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("daemon.policy.name", Some(4)), "{e}");

        let e = ServeConfig::parse("[api]\n", "exec.toml", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("daemon"), "{e}");

        let text = good().replace("sha256 = '", "sha256 = 'x");
        let e = ServeConfig::parse(&text, "exec.toml", Path::new(".")).unwrap_err();
        assert_eq!((e.field.as_str(), e.line), ("api.tokens[0].sha256", Some(13)), "{e}");
    }
}
