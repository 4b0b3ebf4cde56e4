//! A small HTTP client for the executor's API, used by the `tessera exec` verbs, the tests and
//! the submission benchmark.
//!
//! Built on hyper-util's client over plain HTTP/1.1: axum already brings hyper and hyper-util,
//! so the client adds no crate to the build (ureq would add its own HTTP stack), it is async
//! like the rest of the executor (one runtime drives many concurrent requests in the
//! benchmark and the tests), and it streams bodies, which the events feed needs. It keeps
//! connections alive between requests.
//!
//! `https://HOST:PORT` speaks TLS (rustls, ring) and trusts only the CA given (`--ca FILE` or
//! `TESSERA_CA`): no system roots, since an executor's certificate comes from its operator's
//! own CA. A `HOST:PORT` without a scheme is `https://` when a CA is given, else `http://`.
//! Plain `http://` is refused for a host other than loopback, as it would send the token in
//! the clear.

use crate::api::ErrorBody;
use crate::handle::{DeviceView, JobView};
use crate::spec::JobSubmission;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::Path;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tessera_core::validation::ValidationRecord;
use tessera_core::PolicySpec;

/// Where the CLI looks when neither `--addr` nor `TESSERA_ADDR` says.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";
pub const ADDR_ENV: &str = "TESSERA_ADDR";
pub const TOKEN_ENV: &str = "TESSERA_TOKEN";
/// The CA certificate (PEM) that verifies an `https://` executor, when `--ca` does not say.
pub const CA_ENV: &str = "TESSERA_CA";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad address `{0}`: expected HOST:PORT, http://HOST:PORT or https://HOST:PORT")]
    Address(String),
    /// The address or the CA file cannot be used as given.
    #[error("{0}")]
    Setup(String),
    /// The TLS handshake failed: most often, the server's certificate is not signed by the CA.
    #[error("TLS with the executor at {addr} failed: {message}")]
    Tls { addr: String, message: String },
    #[error("cannot reach the executor at {addr}: {message} (is `tessera exec serve` running?)")]
    Connect { addr: String, message: String },
    /// The server answered with an error status; `error` and `field` are from its JSON body.
    #[error("{status}: {error}")]
    Status { status: u16, error: String, field: Option<String> },
    #[error("unexpected answer from the executor: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One server-sent event as read off `/v1/events`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// `127.0.0.1:7878`, `http://127.0.0.1:7878/` or `https://h:7878` -> the base URL; a bare
/// `HOST:PORT` is `https://` when `tls_by_default` (a CA was given).
fn base_url(addr: &str, tls_by_default: bool) -> Result<String, ClientError> {
    let trimmed = addr.trim().trim_end_matches('/');
    let (scheme, host_port) = match (trimmed.strip_prefix("https://"), trimmed.strip_prefix("http://")) {
        (Some(rest), _) => ("https", rest),
        (None, Some(rest)) => ("http", rest),
        (None, None) => (if tls_by_default { "https" } else { "http" }, trimmed),
    };
    if host_port.is_empty() || host_port.contains('/') || !host_port.contains(':') {
        return Err(ClientError::Address(addr.to_string()));
    }
    let uri = format!("{scheme}://{host_port}");
    let parsed = uri.parse::<hyper::Uri>().map_err(|_| ClientError::Address(addr.to_string()))?;
    if scheme == "http" && !is_loopback_host(parsed.host().unwrap_or("")) {
        return Err(ClientError::Setup(format!(
            "refusing plain HTTP to {host_port}, which is not loopback: the token would cross the network in the clear; use https://{host_port} with --ca FILE (or {CA_ENV})"
        )));
    }
    Ok(uri)
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Trusts exactly the certificates in the PEM file `ca`.
fn tls_client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        let certs = crate::api::tls::read_certificates(ca, "--ca").map_err(|e| ClientError::Setup(format!("the CA certificate {}", e.message)))?;
        for cert in certs {
            roots.add(cert).map_err(|e| ClientError::Setup(format!("the CA certificate {}: {e}", ca.display())))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(crate::api::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Client {
    /// A client for a plain-HTTP executor on loopback (an `https://` address needs a CA:
    /// [`Client::with_ca`]).
    pub fn new(addr: &str, token: Option<String>) -> Result<Client, ClientError> {
        Client::with_ca(addr, token, None)
    }

    /// A client that verifies an `https://` executor with the CA certificate(s) in `ca` (PEM).
    pub fn with_ca(addr: &str, token: Option<String>, ca: Option<&Path>) -> Result<Client, ClientError> {
        let base = base_url(addr, ca.is_some())?;
        if base.starts_with("https://") && ca.is_none() {
            return Err(ClientError::Setup(format!("{base} is HTTPS: give the CA that signed its certificate with --ca FILE (or {CA_ENV})")));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls_client_config(ca)?).https_or_http().enable_http1().wrap_connector(connector);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
        Ok(Client { base, token, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn build(&self, method: Method, path: &str, content_type: Option<&str>, body: Bytes) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            request = request.header(hyper::header::CONTENT_TYPE, ct);
        }
        request.body(Full::new(body)).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        self.http.request(request).await.map_err(|e| {
            let mut message = e.to_string();
            let mut tls: Option<String> = None;
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message = format!("{message}: {s}");
                // hyper-rustls hands rustls's error inside an io::Error.
                if let Some(r) = s.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                    tls = Some(r.to_string());
                } else if s.to_string().starts_with("invalid peer certificate") {
                    // The same, when a layer between hid rustls's error type.
                    tls = Some(s.to_string());
                }
                source = s.source();
            }
            match tls {
                Some(reason) if reason.contains("certificate") => ClientError::Tls {
                    addr: self.base.clone(),
                    message: format!("{reason}: the server's certificate is not one the CA given with --ca (or {CA_ENV}) vouches for, for this host name"),
                },
                Some(reason) => ClientError::Tls { addr: self.base.clone(), message: reason },
                None => ClientError::Connect { addr: self.base.clone(), message },
            }
        })
    }

    /// Any request; answers the status and the whole body, whatever the status.
    pub async fn raw(&self, method: Method, path: &str, content_type: Option<&str>, body: impl Into<Bytes>) -> Result<(StatusCode, Bytes), ClientError> {
        let response = self.send(self.build(method, path, content_type, body.into())?).await?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| ClientError::Decode(format!("reading the body: {e}")))?.to_bytes();
        Ok((status, body))
    }

    /// A request whose success is JSON of type `T`; an error status becomes `ClientError::Status`.
    async fn call<T: DeserializeOwned>(&self, method: Method, path: &str, content_type: Option<&str>, body: impl Into<Bytes>) -> Result<T, ClientError> {
        let (status, body) = self.raw(method, path, content_type, body).await?;
        if !status.is_success() {
            return Err(error_from(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(format!("{e}: {}", String::from_utf8_lossy(&body))))
    }

    pub async fn submit(&self, spec: &JobSubmission) -> Result<JobView, ClientError> {
        let body = serde_json::to_vec(spec).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(Method::POST, "/v1/jobs", Some("application/json"), body).await
    }

    /// Submits a TOML job file's text as is, so the server's errors name its lines.
    pub async fn submit_toml(&self, text: &str) -> Result<JobView, ClientError> {
        self.call(Method::POST, "/v1/jobs", Some("application/toml"), text.to_string()).await
    }

    pub async fn list(&self) -> Result<Vec<JobView>, ClientError> {
        self.call(Method::GET, "/v1/jobs", None, Bytes::new()).await
    }

    pub async fn show(&self, job: u64) -> Result<JobView, ClientError> {
        self.call(Method::GET, &format!("/v1/jobs/{job}"), None, Bytes::new()).await
    }

    pub async fn cancel(&self, job: u64) -> Result<JobView, ClientError> {
        self.call(Method::POST, &format!("/v1/jobs/{job}/cancel"), None, Bytes::new()).await
    }

    pub async fn devices(&self) -> Result<Vec<DeviceView>, ClientError> {
        self.call(Method::GET, "/v1/devices", None, Bytes::new()).await
    }

    pub async fn drain(&self, device: &str, drain: bool) -> Result<serde_json::Value, ClientError> {
        let verb = if drain { "drain" } else { "undrain" };
        self.call(Method::POST, &format!("/v1/devices/{}/{verb}", percent_encode(device)), None, Bytes::new()).await
    }

    pub async fn set_policy(&self, policy: &PolicySpec, record: Option<&ValidationRecord>, allow_unvalidated: bool) -> Result<serde_json::Value, ClientError> {
        let body = serde_json::json!({ "policy": policy, "record": record, "allow_unvalidated": allow_unvalidated });
        self.call(Method::PUT, "/v1/policy", Some("application/json"), body.to_string()).await
    }

    pub async fn metrics_text(&self) -> Result<String, ClientError> {
        let (status, body) = self.raw(Method::GET, "/metrics", None, Bytes::new()).await?;
        if !status.is_success() {
            return Err(error_from(status, &body));
        }
        String::from_utf8(body.to_vec()).map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub async fn healthz(&self) -> Result<(), ClientError> {
        let (status, body) = self.raw(Method::GET, "/healthz", None, Bytes::new()).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(error_from(status, &body))
        }
    }

    /// Follows `/v1/events`, calling `on_event` for each event until it returns false or the
    /// server ends the stream. Keep-alive comments are skipped.
    pub async fn events(&self, mut on_event: impl FnMut(SseEvent) -> bool) -> Result<(), ClientError> {
        let response = self.send(self.build(Method::GET, "/v1/events", None, Bytes::new())?).await?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body.collect().await.map_err(|e| ClientError::Decode(e.to_string()))?.to_bytes();
            return Err(error_from(status, &bytes));
        }
        let mut parser = SseParser::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Decode(format!("reading events: {e}")))?;
            let Ok(data) = frame.into_data() else { continue };
            for event in parser.push(&data) {
                if !on_event(event) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

fn error_from(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ClientError::Status { status: status.as_u16(), error: e.error, field: e.field },
        Err(_) => ClientError::Status { status: status.as_u16(), error: String::from_utf8_lossy(body).trim().to_string(), field: None },
    }
}

fn percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Splits a `text/event-stream` body into events, across arbitrary chunk boundaries.
#[derive(Default)]
pub struct SseParser {
    buffer: String,
    current: SseEvent,
    has_data: bool,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data {
                    out.push(std::mem::take(&mut self.current));
                }
                self.current = SseEvent::default();
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').map(|(f, v)| (f, v.strip_prefix(' ').unwrap_or(v))).unwrap_or((line, ""));
            match field {
                "event" => self.current.event = value.to_string(),
                "id" => self.current.id = Some(value.to_string()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_normalise_or_are_refused() {
        assert_eq!(base_url("127.0.0.1:7878", false).unwrap(), "http://127.0.0.1:7878");
        assert_eq!(base_url("127.0.0.1:7878", true).unwrap(), "https://127.0.0.1:7878");
        assert_eq!(base_url("http://localhost:80/", true).unwrap(), "http://localhost:80");
        assert_eq!(base_url("[::1]:7878", false).unwrap(), "http://[::1]:7878");
        assert_eq!(base_url("https://x:1", false).unwrap(), "https://x:1");
        assert!(matches!(base_url("localhost", false), Err(ClientError::Address(_))));
        assert!(matches!(base_url("http://h:1/v1", false), Err(ClientError::Address(_))));
        assert!(matches!(base_url("", false), Err(ClientError::Address(_))));
        let e = base_url("http://10.0.0.5:7878", false).unwrap_err().to_string();
        assert!(e.contains("not loopback") && e.contains("https://10.0.0.5:7878"), "{e}");
        assert!(base_url("exec.example.org:7878", false).is_err());
        let e = Client::new("https://127.0.0.1:1", None).err().unwrap().to_string();
        assert!(e.contains("--ca"), "{e}");
        let e = Client::with_ca("https://127.0.0.1:1", None, Some(Path::new("/nonexistent/ca.pem"))).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn sse_parser_handles_split_chunks_comments_and_multiline_data() {
        let mut p = SseParser::default();
        assert!(p.push(b"id: 1\nevent: subm").is_empty());
        let got = p.push(b"itted\ndata: {\"a\":1}\n\n:keep-alive\n\nevent: x\ndata: l1\ndata: l2\n\n");
        assert_eq!(
            got,
            vec![
                SseEvent { id: Some("1".into()), event: "submitted".into(), data: "{\"a\":1}".into() },
                SseEvent { id: None, event: "x".into(), data: "l1\nl2".into() },
            ]
        );
    }

    #[test]
    fn error_bodies_keep_the_server_message_and_field() {
        let e = error_from(StatusCode::BAD_REQUEST, br#"{"error":"invalid `devices.share`","field":"devices.share"}"#);
        assert!(matches!(&e, ClientError::Status { status: 400, field: Some(f), .. } if f == "devices.share"), "{e:?}");
        let e = error_from(StatusCode::BAD_GATEWAY, b"upstream down");
        assert_eq!(e.to_string(), "502: upstream down");
    }

    #[test]
    fn device_names_are_path_safe() {
        assert_eq!(percent_encode("GPU-1a2b/3"), "GPU-1a2b%2F3");
    }
}
