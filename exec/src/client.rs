//! A small HTTP client for the executor's API, used by the `tessera exec` verbs, the tests and
//! the submission benchmark.
//!
//! Built on hyper-util's client over plain HTTP/1.1: axum already brings hyper and hyper-util,
//! so the client adds no crate to the build (ureq would add its own HTTP stack), it is async
//! like the rest of the executor (one runtime drives many concurrent requests in the
//! benchmark and the tests), and it streams bodies, which the events feed needs. It keeps
//! connections alive between requests. No TLS: the API listens on loopback.

use crate::api::ErrorBody;
use crate::handle::{DeviceView, JobView};
use crate::spec::JobSubmission;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tessera_core::validation::ValidationRecord;
use tessera_core::PolicySpec;

/// Where the CLI looks when neither `--addr` nor `TESSERA_ADDR` says.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";
pub const ADDR_ENV: &str = "TESSERA_ADDR";
pub const TOKEN_ENV: &str = "TESSERA_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad address `{0}`: expected HOST:PORT or http://HOST:PORT")]
    Address(String),
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
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

/// `127.0.0.1:7878` or `http://127.0.0.1:7878/` -> `http://127.0.0.1:7878`.
fn base_url(addr: &str) -> Result<String, ClientError> {
    let trimmed = addr.trim().trim_end_matches('/');
    if trimmed.starts_with("https://") {
        return Err(ClientError::Address(format!("{addr} (TLS is not supported: the API listens on loopback)")));
    }
    let host_port = trimmed.strip_prefix("http://").unwrap_or(trimmed);
    if host_port.is_empty() || host_port.contains('/') || !host_port.contains(':') {
        return Err(ClientError::Address(addr.to_string()));
    }
    let uri = format!("http://{host_port}");
    uri.parse::<hyper::Uri>().map_err(|_| ClientError::Address(addr.to_string()))?;
    Ok(uri)
}

impl Client {
    pub fn new(addr: &str, token: Option<String>) -> Result<Client, ClientError> {
        let base = base_url(addr)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
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
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message = format!("{message}: {s}");
                source = s.source();
            }
            ClientError::Connect { addr: self.base.clone(), message }
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
        assert_eq!(base_url("127.0.0.1:7878").unwrap(), "http://127.0.0.1:7878");
        assert_eq!(base_url("http://localhost:80/").unwrap(), "http://localhost:80");
        assert_eq!(base_url("[::1]:7878").unwrap(), "http://[::1]:7878");
        assert!(matches!(base_url("https://x:1"), Err(ClientError::Address(_))));
        assert!(matches!(base_url("localhost"), Err(ClientError::Address(_))));
        assert!(matches!(base_url("http://h:1/v1"), Err(ClientError::Address(_))));
        assert!(matches!(base_url(""), Err(ClientError::Address(_))));
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
