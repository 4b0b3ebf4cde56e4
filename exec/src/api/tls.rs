//! HTTPS for the API (`[api.tls] cert = "server.pem", key = "server.key"`), with rustls and its
//! ring provider, TLS 1.3 only (both ends are tessera's).
//!
//! Handshakes run in tasks of their own, so a slow or silent client does not hold up the
//! others, each within [`HANDSHAKE_TIMEOUT`]. A client that speaks plain HTTP to the TLS port
//! is answered in plain HTTP with a 400 that says to use `https://`, rather than a reset that
//! says nothing.

use super::ApiConfigError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The `[api.tls]` table. Relative paths are taken from the directory of `exec.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Longest a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once; further connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// The crypto provider of both ends: ring (no aws-lc, which needs cmake and a C toolchain's
/// assembler). Given explicitly, so nothing depends on a process-wide default provider.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(field: &str, path: &Path, message: impl std::fmt::Display) -> ApiConfigError {
    ApiConfigError { field: field.to_string(), message: format!("{}: {message}", path.display()) }
}

fn pem_error(what: &str, e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => format!("no {what} found (expected PEM)"),
        other => format!("not a PEM {what}: {other}"),
    }
}

/// Reads the PEM certificates in `path` (all of them, in order); at least one.
pub fn read_certificates(path: &Path, field: &str) -> Result<Vec<CertificateDer<'static>>, ApiConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(field, path, pem_error("certificate", e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(field, path, pem_error("certificate", e)))?;
    if certs.is_empty() {
        return Err(tls_error(field, path, "no certificate found (expected PEM `-----BEGIN CERTIFICATE-----`)"));
    }
    Ok(certs)
}

impl TlsConfig {
    /// Loads the certificate and key and checks that they belong together.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, ApiConfigError> {
        let certs = read_certificates(&self.cert, "api.tls.cert")?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| tls_error("api.tls.key", &self.key, pem_error("private key", e)))?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ApiConfigError { field: "api.tls".into(), message: e.to_string() })?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| tls_error("api.tls.key", &self.key, format!("does not go with the certificate in {}: {e}", self.cert.display())))?;
        Ok(Arc::new(config))
    }
}

/// Accepted TLS connections, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor_task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

/// What a plain-HTTP request to the TLS port gets.
const PLAIN_HTTP_ANSWER: &str = "{\"error\":\"this port serves HTTPS: use https://HOST:PORT (and --ca FILE or TESSERA_CA to verify the server)\"}";

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let acceptor_task = tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!("accepting an API connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!("TCP_NODELAY refused on an API connection: {e}");
                    }
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, stream)).await {
                        Ok(Some(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(None) => {}
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local, acceptor_task })
    }
}

/// The handshake, or the plain-HTTP answer (`None`).
async fn handshake(acceptor: &TlsAcceptor, mut stream: TcpStream) -> Option<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    let peer = stream.peer_addr().ok();
    // A TLS connection opens with a handshake record (content type 22).
    match stream.peek(&mut first).await {
        Ok(1) if first[0] != 22 => {
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_HTTP_ANSWER}",
                PLAIN_HTTP_ANSWER.len()
            );
            // Read the request first, and what follows after answering: closing a socket with
            // unread bytes resets the connection, and the client would see the reset, not this.
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
                    match read_some(&stream, &mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            let _ = write_all(&stream, answer.as_bytes()).await;
            let _ = shutdown_write(&mut stream).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), async { while matches!(read_some(&stream, &mut chunk).await, Ok(n) if n > 0) {} }).await;
            return None;
        }
        Ok(0) | Err(_) => return None,
        _ => {}
    }
    match acceptor.accept(stream).await {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::debug!("TLS handshake with {peer:?} failed: {e}");
            None
        }
    }
}

// Small stand-ins for tokio's `io-util` extension traits, which this build does not enable.
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn shutdown_write(stream: &mut TcpStream) -> std::io::Result<()> {
    std::future::poll_fn(|cx| tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut *stream), cx)).await
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The acceptor ended (its semaphore closed): no more connections, ever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
