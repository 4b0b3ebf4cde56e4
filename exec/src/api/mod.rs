//! The executor's HTTP/JSON API (axum), bound to loopback by default.
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `POST /v1/jobs` | submit | a `JobSubmission`, JSON, or TOML with `Content-Type: application/toml`; 201 + the job (a submitter: as one of its token's tenants, else 403) |
//! | `GET /v1/jobs` | submit | the jobs the caller may see: a submitter, its tenants' (a token without tenants: its own); `operate` and up: every job |
//! | `GET /v1/jobs/{id}` | submit | one job (a submitter: one it may see, else 404 as for no such job) |
//! | `POST /v1/jobs/{id}/cancel` | submit | cancels (a submitter: a job it may see, else 404 as for no such job) |
//! | `GET /v1/devices` | submit | the fleet |
//! | `POST /v1/devices/{name}/drain`, `/undrain` | operate | |
//! | `PUT /v1/policy` | admin | `{"policy": PolicySpec, "record": ValidationRecord?, "allow_unvalidated": bool}` |
//! | `GET /v1/events` | submit | server-sent events, one per journalled change (a submitter: its own jobs' only) |
//! | `GET /metrics` | none, unless `public_metrics = false` | Prometheus text |
//! | `GET /healthz` | none | 200 `ok` while the daemon answers |
//!
//! `/metrics` is open by default: it holds only aggregate counts (queue length, running jobs,
//! device allocation, latencies), no job names, owners or commands, and the API listens on
//! loopback unless told otherwise; a scraper then needs no secret. Set `public_metrics = false`
//! to require a token (any role) there too.
//!
//! Every call, refused ones included, is recorded in the journal's audit log (`audit.rs`).
//! With `[api.tls]` the API serves HTTPS (`tls.rs`); plain HTTP is for loopback only.
//!
//! Every error answer is JSON: `{"error": "...", "field": "..."}` (`field` when one input field
//! is at fault). Statuses: 400 bad input, 401 unknown caller, 403 role (or the policy gate
//! refused), 404 no such job/device/route (or another submitter's job), 409 the job's state forbids it (cancel a
//! finished job), 413 body over `max_body_bytes`, 415 unsupported content type, 500 journal or
//! I/O failure, 503 the daemon is shutting down.

pub mod audit;
pub mod auth;
pub mod metrics;
pub mod tls;

use crate::error::ExecError;
use crate::handle::{DaemonHandle, ExecEvent, Histogram, MetricsSnapshot};
use audit::{AuditLog, AuditNote, AuditReason};
use auth::{AuthError, Principal, Role, TenantChoice, TenantError, TokenEntry, TokenStore};
use axum::extract::Request;
use axum::middleware::Next;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tessera_core::validation::ValidationRecord;
use tessera_core::PolicySpec;
use tokio::sync::{broadcast, watch};

/// The `[api]` table of `exec.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Allow a `listen` address other than loopback. Only with `[api.tls]`: plain HTTP beyond
    /// loopback is refused, as it would carry the tokens in the clear.
    #[serde(default)]
    pub allow_remote: bool,
    /// Largest request body accepted; larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Serve `/metrics` without a token.
    #[serde(default = "default_true")]
    pub public_metrics: bool,
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// Serve HTTPS with this certificate and key (`[api.tls]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<tls::TlsConfig>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7878))
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

fn default_true() -> bool {
    true
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig { listen: default_listen(), allow_remote: false, max_body_bytes: DEFAULT_MAX_BODY_BYTES, public_metrics: true, tokens: Vec::new(), tls: None }
    }
}

/// A bad `[api]` table: the field (dotted, under `api.`) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct ApiConfigError {
    pub field: String,
    pub message: String,
}

impl ApiConfig {
    /// Checks what serde cannot, and builds the token store, for an executor without a tenant
    /// table.
    pub fn validate(&self) -> Result<TokenStore, ApiConfigError> {
        self.validate_with_tenants(&[])
    }

    /// Checks what serde cannot, and builds the token store; the tokens' tenants must be in
    /// `tenant_table` (`[[daemon.tenants]]`) when it is not empty. The TLS files are read by
    /// [`ApiConfig::tls_server_config`].
    pub fn validate_with_tenants(&self, tenant_table: &[String]) -> Result<TokenStore, ApiConfigError> {
        if !self.listen.ip().is_loopback() {
            if !self.allow_remote {
                return Err(ApiConfigError {
                    field: "api.listen".into(),
                    message: format!("{} is not a loopback address; listening beyond this machine needs `allow_remote = true` and `[api.tls]`", self.listen),
                });
            }
            if self.tls.is_none() {
                return Err(ApiConfigError {
                    field: "api.listen".into(),
                    message: format!(
                        "{} is not a loopback address and the API would speak plain HTTP, sending tokens in the clear; add `[api.tls] cert = ..., key = ...` (or listen on loopback behind a TLS proxy)",
                        self.listen
                    ),
                });
            }
        }
        if self.max_body_bytes == 0 {
            return Err(ApiConfigError { field: "api.max_body_bytes".into(), message: "expected at least 1 byte, found 0".into() });
        }
        if self.tokens.is_empty() {
            return Err(ApiConfigError {
                field: "api.tokens".into(),
                message: "no token is configured, so every call would be refused; make one with `tessera exec token NAME --role admin`".into(),
            });
        }
        TokenStore::with_tenant_table(&self.tokens, tenant_table)
            .map_err(|e| ApiConfigError { field: format!("api.tokens[{}].{}", e.index, e.field), message: format!("token `{}`: {}", e.name, e.message) })
    }

    /// The TLS server configuration, when `[api.tls]` is given: the files read and checked.
    pub fn tls_server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, ApiConfigError> {
        self.tls.as_ref().map(tls::TlsConfig::server_config).transpose()
    }
}

/// The JSON body of `PUT /v1/policy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    pub policy: PolicySpec,
    #[serde(default)]
    pub record: Option<ValidationRecord>,
    #[serde(default)]
    pub allow_unvalidated: bool,
}

/// The JSON body of every error answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error answer: a status and the JSON body.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiFailure {
    fn new(status: StatusCode, error: impl Into<String>) -> ApiFailure {
        ApiFailure { status, body: ErrorBody { error: error.into(), field: None } }
    }

    fn field(status: StatusCode, field: impl Into<String>, error: impl Into<String>) -> ApiFailure {
        ApiFailure { status, body: ErrorBody { error: error.into(), field: Some(field.into()) } }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(mut self) -> Response {
        // An error may quote the input (a path segment, a field): a token pasted there is not
        // echoed back, nor recorded.
        self.body.error = audit::redact_tokens(&self.body.error);
        let reason = AuditReason(audit::clip(&self.body.error));
        let mut response = (self.status, Json(self.body)).into_response();
        response.extensions_mut().insert(reason);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AuthError> for ApiFailure {
    fn from(e: AuthError) -> ApiFailure {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN);
        ApiFailure::new(status, e.to_string())
    }
}

impl From<ExecError> for ApiFailure {
    fn from(e: ExecError) -> ApiFailure {
        let status = match &e {
            ExecError::NotFound(_) => StatusCode::NOT_FOUND,
            ExecError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ExecError::Refused(_) => StatusCode::CONFLICT,
            ExecError::Gate(_) => StatusCode::FORBIDDEN,
            ExecError::Journal(_) | ExecError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ExecError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        };
        match e {
            ExecError::Invalid { field, message } if !field.is_empty() => ApiFailure::field(status, field.clone(), format!("invalid `{field}`: {message}")),
            ExecError::Invalid { message, .. } => ApiFailure::new(status, message),
            other => ApiFailure::new(status, other.to_string()),
        }
    }
}

impl From<BytesRejection> for ApiFailure {
    fn from(r: BytesRejection) -> ApiFailure {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiFailure::new(status, "request body too large (over the configured `max_body_bytes`)")
        } else {
            ApiFailure::new(status, format!("could not read the request body: {}", r.body_text()))
        }
    }
}

/// Counters of the API's own, served on `/metrics` beside the daemon's.
#[derive(Debug, Default)]
pub struct ApiCounters {
    pub submissions_accepted: AtomicU64,
    pub submissions_refused: AtomicU64,
    pub unauthorized: AtomicU64,
    pub forbidden: AtomicU64,
    /// Audit rows that could not be written (the writer logs why).
    pub audit_write_failures: Arc<AtomicU64>,
}

#[derive(Clone)]
pub struct AppState {
    handle: DaemonHandle,
    tokens: Arc<TokenStore>,
    public_metrics: bool,
    counters: Arc<ApiCounters>,
    audit: AuditLog,
    /// Turns true when the server stops, so open event streams end and shutdown can finish.
    stopping: watch::Receiver<bool>,
}

/// The caller, authenticated from `Authorization: Bearer <token>`.
pub struct Caller(pub Principal);

/// Who the audit layer found calling (once per request; handlers read it through [`Caller`]).
#[derive(Clone)]
struct Authenticated(Result<Principal, AuthError>);

fn authenticate(tokens: &TokenStore, headers: &HeaderMap) -> Result<Principal, AuthError> {
    let value = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| AuthError::Malformed)?),
    };
    tokens.authenticate(value)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiFailure> {
        let found = match parts.extensions.get::<Authenticated>() {
            Some(Authenticated(found)) => found.clone(),
            None => authenticate(&state.tokens, &parts.headers),
        };
        found.map(Caller).map_err(|e| {
            state.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            e.into()
        })
    }
}

/// The audit note of this request, for handlers to say what the call asked.
pub struct Note(pub AuditNote);

impl FromRequestParts<AppState> for Note {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Note, Infallible> {
        Ok(Note(parts.extensions.get::<AuditNote>().cloned().unwrap_or_default()))
    }
}

/// Authenticates once, lets the route answer, then records the call in the audit log: the
/// token entry's name (never the token), method, path, the handler's note, status and reason.
async fn audit_layer(axum::extract::State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let at_unix_us = crate::journal::unix_now_us();
    let method = request.method().to_string();
    let path = audit::clip(request.uri().path());
    let found = authenticate(&state.tokens, request.headers());
    let token = found.as_ref().ok().map(|p| p.name.clone());
    let note = AuditNote::default();
    request.extensions_mut().insert(Authenticated(found));
    request.extensions_mut().insert(note.clone());
    let response = next.run(request).await;
    let status = response.status();
    let reason = match response.extensions().get::<AuditReason>() {
        Some(AuditReason(reason)) => reason.clone(),
        None => status.canonical_reason().unwrap_or("").to_string(),
    };
    let row = crate::journal::AuditRow { seq: 0, at_unix_us, token, method, path, asked: note.take(), status: status.as_u16(), reason };
    state.audit.record(row).await;
    response
}

impl AppState {
    fn forbid(&self, e: AuthError) -> ApiFailure {
        if e.http_status() == 403 {
            self.counters.forbidden.fetch_add(1, Ordering::Relaxed);
        }
        e.into()
    }

    fn require(&self, caller: &Principal, role: Role) -> Result<(), ApiFailure> {
        caller.require(role).map_err(|e| self.forbid(e))
    }
}

/// The API's routes over a running daemon. Token tenants resolve against `tenant_table`
/// (`[[daemon.tenants]]`); every call is recorded in `audit`. `stopping` ends event streams
/// when it turns true.
pub fn router(handle: DaemonHandle, config: &ApiConfig, tenant_table: &[String], audit: AuditLog, counters: Arc<ApiCounters>, stopping: watch::Receiver<bool>) -> Result<Router, ApiConfigError> {
    let tokens = config.validate_with_tenants(tenant_table)?;
    let unbound = tokens.unbound_submitters();
    if !unbound.is_empty() {
        tracing::warn!(
            "submit token(s) {} name no tenants and may submit as ANY tenant (there is no [[daemon.tenants]] table); bind them with `tenants = [...]`",
            unbound.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        );
    }
    let state = AppState { handle, tokens: Arc::new(tokens), public_metrics: config.public_metrics, counters, audit, stopping };
    Ok(Router::new()
        .route("/v1/jobs", post(submit_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(show_job))
        .route("/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/devices", get(list_devices))
        .route("/v1/devices/{name}/drain", post(drain_device))
        .route("/v1/devices/{name}/undrain", post(undrain_device))
        .route("/v1/policy", put(set_policy))
        .route("/v1/events", get(events))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .fallback(|| async { ApiFailure::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit_layer))
        .with_state(state))
}

/// Binds the configured address (already validated by [`ApiConfig::validate`]).
pub async fn bind(config: &ApiConfig) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(config.listen).await
}

/// Where the API serves: plain HTTP (loopback only) or HTTPS.
pub enum ApiListener {
    Plain(tokio::net::TcpListener),
    Tls(tls::TlsListener),
}

impl ApiListener {
    /// `tcp` as is, or behind TLS when `tls` is given.
    pub fn new(tcp: tokio::net::TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> std::io::Result<ApiListener> {
        Ok(match tls {
            None => ApiListener::Plain(tcp),
            Some(config) => ApiListener::Tls(tls::TlsListener::new(tcp, config)?),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        match self {
            ApiListener::Plain(_) => "http",
            ApiListener::Tls(_) => "https",
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves, then finishes open requests.
///
/// Connections get `TCP_NODELAY`: a response is written as soon as it is ready rather than
/// held by Nagle's algorithm until the client acknowledges the previous segment (which,
/// against a client's delayed ACK, can cost up to 40 ms on a keep-alive connection).
pub async fn serve_until(listener: ApiListener, router: Router, stop: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    match listener {
        ApiListener::Plain(tcp) => {
            let listener = tcp.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY refused on an API connection: {e}");
                }
            });
            axum::serve(listener, router).with_graceful_shutdown(stop).await
        }
        // Its acceptor sets TCP_NODELAY before the handshake.
        ApiListener::Tls(tls) => axum::serve(tls, router).with_graceful_shutdown(stop).await,
    }
}

fn parse_job_id(text: &str) -> Result<u64, ApiFailure> {
    text.parse().map_err(|_| ApiFailure::field(StatusCode::BAD_REQUEST, "id", format!("expected a job id (a whole number), found `{text}`")))
}

/// The submission's media type: TOML when it says so, JSON when it says so or says nothing.
enum BodyKind {
    Json,
    Toml,
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiFailure> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(BodyKind::Json) };
    let text = value.to_str().unwrap_or("");
    let media = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "" => Ok(BodyKind::Json),
        "application/toml" | "text/toml" => Ok(BodyKind::Toml),
        other => Err(ApiFailure::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("unsupported Content-Type `{other}`: send application/json or application/toml"))),
    }
}

/// The tenant a submission's text names, `None` when it names none (serde's default then
/// fills in `default`, which must not be mistaken for a choice). The text parsed already.
fn named_tenant(kind: &BodyKind, text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        tenant: Option<String>,
    }
    match kind {
        BodyKind::Json => serde_json::from_str::<Probe>(text).ok()?.tenant,
        BodyKind::Toml => toml::from_str::<Probe>(text).ok()?.tenant,
    }
}

async fn submit_job(State(state): State<AppState>, Caller(caller): Caller, Note(note): Note, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiFailure> {
    let refused = |e: ApiFailure| {
        state.counters.submissions_refused.fetch_add(1, Ordering::Relaxed);
        e
    };
    state.require(&caller, Role::Submit)?;
    let body = body.map_err(|e| refused(e.into()))?;
    let kind = body_kind(&headers).map_err(refused)?;
    let text = std::str::from_utf8(&body).map_err(|e| refused(ApiFailure::new(StatusCode::BAD_REQUEST, format!("the body is not UTF-8: {e}"))))?;
    let spec = match kind {
        BodyKind::Json => crate::spec::parse_json(text),
        BodyKind::Toml => crate::spec::parse_toml(text, "<request>"),
    }
    .map_err(|e| refused(e.into()))?;
    let mut spec = spec;
    note.set("command", audit::clip(&spec.command));
    if !spec.name.is_empty() {
        note.set("name", audit::clip(&spec.name));
    }
    let named = named_tenant(&kind, text);
    match caller.submission_tenant(named.as_deref()) {
        Ok(TenantChoice::Use(tenant)) => spec.tenant = tenant,
        Ok(TenantChoice::AsSubmitted) => {}
        Err(TenantError::Forbidden(e)) => {
            note.set("tenant", audit::clip(named.as_deref().unwrap_or("")));
            return Err(refused(state.forbid(e)));
        }
        Err(TenantError::MustName(message)) => return Err(refused(ApiFailure::field(StatusCode::BAD_REQUEST, "tenant", message))),
    }
    note.set("tenant", audit::clip(&spec.tenant));
    let view = state.handle.submit(spec, &caller.name).await.map_err(|e| refused(e.into()))?;
    note.set("job", view.id);
    state.counters.submissions_accepted.fetch_add(1, Ordering::Relaxed);
    let location = format!("/v1/jobs/{}", view.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view)).into_response())
}

async fn list_jobs(State(state): State<AppState>, Caller(caller): Caller) -> Result<Response, ApiFailure> {
    let mut jobs = state.handle.list().await?;
    if !caller.sees_all_jobs() {
        jobs.retain(|j| caller.may_touch(j.id, &j.owner, &j.tenant).is_ok());
    }
    Ok(Json(jobs).into_response())
}

async fn show_job(State(state): State<AppState>, Caller(caller): Caller, Path(id): Path<String>) -> Result<Response, ApiFailure> {
    let id = parse_job_id(&id)?;
    let view = state.handle.show(id).await?.ok_or_else(|| ApiFailure::new(StatusCode::NOT_FOUND, format!("no job {id}")))?;
    caller.may_touch(id, &view.owner, &view.tenant).map_err(|e| state.forbid(e))?;
    Ok(Json(view).into_response())
}

async fn cancel_job(State(state): State<AppState>, Caller(caller): Caller, Path(id): Path<String>) -> Result<Response, ApiFailure> {
    let id = parse_job_id(&id)?;
    if !caller.sees_all_jobs() {
        let view = state.handle.show(id).await?.ok_or_else(|| ApiFailure::new(StatusCode::NOT_FOUND, format!("no job {id}")))?;
        caller.may_touch(id, &view.owner, &view.tenant).map_err(|e| state.forbid(e))?;
    }
    Ok(Json(state.handle.cancel(id).await?).into_response())
}

async fn list_devices(State(state): State<AppState>, Caller(_caller): Caller) -> Result<Response, ApiFailure> {
    Ok(Json(state.handle.devices().await?).into_response())
}

#[derive(Serialize)]
struct DrainAnswer<'a> {
    device: &'a str,
    drained: bool,
}

async fn drain_device(State(state): State<AppState>, Caller(caller): Caller, Path(name): Path<String>) -> Result<Response, ApiFailure> {
    state.require(&caller, Role::Operate)?;
    state.handle.drain(&name).await?;
    Ok(Json(DrainAnswer { device: &name, drained: true }).into_response())
}

async fn undrain_device(State(state): State<AppState>, Caller(caller): Caller, Path(name): Path<String>) -> Result<Response, ApiFailure> {
    state.require(&caller, Role::Operate)?;
    state.handle.undrain(&name).await?;
    Ok(Json(DrainAnswer { device: &name, drained: false }).into_response())
}

#[derive(Serialize)]
struct PolicyAnswer {
    policy: String,
    validated: bool,
}

async fn set_policy(State(state): State<AppState>, Caller(caller): Caller, Note(note): Note, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiFailure> {
    state.require(&caller, Role::Admin)?;
    let body = body?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    let change: PolicyChange = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ApiFailure::field(StatusCode::BAD_REQUEST, path.clone(), format!("`{path}`: {}", e.into_inner()))
    })?;
    de.end().map_err(|e| ApiFailure::new(StatusCode::BAD_REQUEST, format!("JSON: {e}")))?;
    // Keys are checked here; the daemon builds the policy in its context (tenants, speeds).
    tessera_core::Policy::check_spec(&change.policy)
        .map_err(|e| ApiFailure::field(StatusCode::BAD_REQUEST, format!("policy.{}", e.key), format!("policy: {e}")))?;
    let label = change.policy.label().to_string();
    let validated = change.record.is_some();
    note.set("policy", audit::clip(&label));
    note.set("validated", validated);
    state.handle.set_policy(change.policy, change.record, change.allow_unvalidated).await?;
    Ok(Json(PolicyAnswer { policy: label, validated }).into_response())
}

/// Server-sent events: `id` = the journal sequence, `event` = the kind, `data` = the event as
/// JSON. A stream that falls behind the daemon gets an `event: lagged` with how many it missed
/// (`GET /v1/jobs` then tells the current state).
async fn events(State(state): State<AppState>, Caller(caller): Caller) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    struct Feed {
        rx: broadcast::Receiver<ExecEvent>,
        stopping: watch::Receiver<bool>,
        handle: DaemonHandle,
        caller: Principal,
        /// Job -> whether the caller owns it, for a submitter's filter.
        owned: HashMap<u64, bool>,
    }
    impl Feed {
        async fn visible(&mut self, event: &ExecEvent) -> bool {
            if self.caller.sees_all_jobs() {
                return true;
            }
            let Some(job) = event.job else { return false };
            if let Some(owned) = self.owned.get(&job) {
                return *owned;
            }
            let owned = matches!(self.handle.show(job).await, Ok(Some(view)) if self.caller.may_touch(job, &view.owner, &view.tenant).is_ok());
            self.owned.insert(job, owned);
            owned
        }
    }
    let feed = Feed { rx: state.handle.subscribe(), stopping: state.stopping.clone(), handle: state.handle.clone(), caller, owned: HashMap::new() };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if *feed.stopping.borrow() {
                return None;
            }
            let received = tokio::select! {
                r = feed.rx.recv() => r,
                _ = feed.stopping.changed() => return None,
            };
            match received {
                Ok(event) => {
                    if !feed.visible(&event).await {
                        continue;
                    }
                    let data = serde_json::to_string(&event).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
                    let sse = Event::default().id(event.seq.to_string()).event(event.kind.clone()).data(data);
                    return Some((Ok(sse), feed));
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let sse = Event::default().event("lagged").data(format!("{{\"missed\":{missed}}}"));
                    return Some((Ok(sse), feed));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn metrics_text(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiFailure> {
    if !state.public_metrics {
        let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        state.tokens.authenticate(value).map_err(|e| {
            state.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            ApiFailure::from(e)
        })?;
    }
    let text = render_metrics(&state.handle.metrics(), &state.counters);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

fn histogram(w: &mut metrics::PromWriter, name: &str, help: &str, h: &Histogram) {
    // The daemon keeps cumulative counts; the writer takes per-bucket ones.
    let mut previous = 0u64;
    let per_bucket: Vec<u64> = h
        .cumulative
        .iter()
        .map(|c| {
            let n = c.saturating_sub(previous);
            previous = *c;
            n
        })
        .collect();
    w.histogram(name, help, &h.bounds_s, &per_bucket, h.sum_s, h.count);
}

/// The `/metrics` text: the daemon's snapshot and the API's own counters.
pub fn render_metrics(m: &MetricsSnapshot, counters: &ApiCounters) -> String {
    let mut w = metrics::PromWriter::new();
    w.gauge("tessera_exec_queue_length", "Jobs waiting in the queue.", &[(&[], m.queue_len as f64)]);
    w.gauge("tessera_exec_running_jobs", "Jobs running (launching and preempting included).", &[(&[], m.running as f64)]);
    let by_state: Vec<(Vec<(&str, &str)>, f64)> = m.jobs_by_state.iter().map(|(s, n)| (vec![("state", s.as_str())], *n as f64)).collect();
    let by_state: Vec<(&[(&str, &str)], f64)> = by_state.iter().map(|(l, v)| (l.as_slice(), *v)).collect();
    w.gauge("tessera_exec_jobs", "Jobs known to the journal, by state.", &by_state);
    let labels: Vec<[(&str, &str); 2]> = m.devices.iter().map(|d| [("device", d.name.as_str()), ("model", d.model.as_str())]).collect();
    let per_device = |f: &dyn Fn(&crate::handle::DeviceMetrics) -> Option<f64>| -> Vec<(&[(&str, &str)], f64)> {
        m.devices.iter().zip(&labels).filter_map(|(d, l)| f(d).map(|v| (l.as_slice(), v))).collect()
    };
    w.gauge("tessera_exec_device_allocated_ratio", "Share of each device held by jobs (0 to 1).", &per_device(&|d| Some(d.allocated_fraction)));
    w.gauge("tessera_exec_device_utilization_ratio", "Each device's own utilization reading (0 to 1), where it has one.", &per_device(&|d| d.utilization));
    w.gauge("tessera_exec_device_healthy", "1 when the device passes its health checks.", &per_device(&|d| Some(if d.healthy { 1.0 } else { 0.0 })));
    w.gauge("tessera_exec_device_drained", "1 when an operator drained the device.", &per_device(&|d| Some(if d.drained { 1.0 } else { 0.0 })));
    histogram(&mut w, "tessera_exec_decision_latency_seconds", "Time the scheduling core took per input, decisions drained.", &m.decision_latency);
    histogram(&mut w, "tessera_exec_journal_commit_latency_seconds", "Time per journal commit, fsync included.", &m.journal_commit_latency);
    histogram(&mut w, "tessera_exec_batch_inputs", "Inputs (commands, exits, timers) taken into one batch, committed to the journal together.", &m.batch_inputs);
    histogram(&mut w, "tessera_exec_launch_overhead_seconds", "From the core's launch decision to the process running.", &m.launch_overhead);
    w.gauge("tessera_exec_policy_info", "The policy in force (label).", &[(&[("policy", m.policy_label.as_str())], 1.0)]);
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
    w.counter(
        "tessera_api_submissions_total",
        "Submissions through the API, by outcome.",
        &[(&[("outcome", "accepted")], load(&counters.submissions_accepted)), (&[("outcome", "refused")], load(&counters.submissions_refused))],
    );
    w.counter("tessera_api_unauthorized_total", "Requests refused with 401.", &[(&[], load(&counters.unauthorized))]);
    w.counter("tessera_api_forbidden_total", "Requests refused with 403.", &[(&[], load(&counters.forbidden))]);
    w.counter("tessera_api_audit_write_failures_total", "API calls whose audit row could not be written.", &[(&[], load(&counters.audit_write_failures))]);
    w.finish()
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.handle.devices().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => ApiFailure::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_token() -> ApiConfig {
        ApiConfig { tokens: vec![TokenEntry::new("a", Role::Admin, auth::sha256_hex("t"))], ..ApiConfig::default() }
    }

    #[test]
    fn refuses_remote_listen_unless_allowed() {
        let mut c = config_with_token();
        assert!(c.validate().is_ok());
        c.listen = "0.0.0.0:7878".parse().unwrap();
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "api.listen");
        assert!(e.message.contains("allow_remote"), "{e}");
        c.allow_remote = true;
        let e = c.validate().unwrap_err();
        assert!(e.message.contains("plain HTTP") && e.message.contains("[api.tls]"), "{e}");
        c.tls = Some(tls::TlsConfig { cert: "s.pem".into(), key: "s.key".into() });
        assert!(c.validate().is_ok());
        c.listen = "[::1]:7878".parse().unwrap();
        c.allow_remote = false;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn refuses_no_tokens_and_zero_body_limit() {
        let e = ApiConfig::default().validate().unwrap_err();
        assert_eq!(e.field, "api.tokens");
        let mut c = config_with_token();
        c.max_body_bytes = 0;
        assert_eq!(c.validate().unwrap_err().field, "api.max_body_bytes");
        let mut c = config_with_token();
        c.tokens[0].sha256 = "nope".into();
        assert_eq!(c.validate().unwrap_err().field, "api.tokens[0].sha256");
    }

    #[test]
    fn exec_errors_map_to_statuses() {
        let f = ApiFailure::from(ExecError::invalid("devices.share", "expected (0, 1]"));
        assert_eq!(f.status, StatusCode::BAD_REQUEST);
        assert_eq!(f.body.field.as_deref(), Some("devices.share"));
        assert_eq!(ApiFailure::from(ExecError::NotFound("x".into())).status, StatusCode::NOT_FOUND);
        assert_eq!(ApiFailure::from(ExecError::Refused("x".into())).status, StatusCode::CONFLICT);
        assert_eq!(ApiFailure::from(ExecError::Gate("x".into())).status, StatusCode::FORBIDDEN);
        assert_eq!(ApiFailure::from(ExecError::ShuttingDown).status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn metrics_render_every_series_and_parse() {
        let mut snapshot = MetricsSnapshot { queue_len: 4, running: 2, policy_label: "fifo".into(), ..MetricsSnapshot::default() };
        snapshot.jobs_by_state.insert("queued".into(), 4);
        snapshot.devices.push(crate::handle::DeviceMetrics { name: "cpu0".into(), model: "cpu-core".into(), allocated_fraction: 0.5, utilization: None, healthy: true, drained: false });
        snapshot.decision_latency = Histogram::latency();
        snapshot.decision_latency.observe(0.0002);
        snapshot.decision_latency.observe(0.003);
        let counters = ApiCounters::default();
        counters.submissions_accepted.store(7, Ordering::Relaxed);
        let exp = metrics::parse_text(&render_metrics(&snapshot, &counters)).unwrap();
        assert_eq!(exp.value("tessera_exec_queue_length", &[]), Some(4.0));
        assert_eq!(exp.value("tessera_exec_running_jobs", &[]), Some(2.0));
        assert_eq!(exp.value("tessera_exec_jobs", &[("state", "queued")]), Some(4.0));
        assert_eq!(exp.value("tessera_exec_device_allocated_ratio", &[("device", "cpu0"), ("model", "cpu-core")]), Some(0.5));
        assert_eq!(exp.samples_of("tessera_exec_device_utilization_ratio").count(), 0);
        assert_eq!(exp.value("tessera_exec_decision_latency_seconds_bucket", &[("le", "0.00025")]), Some(1.0));
        assert_eq!(exp.value("tessera_exec_decision_latency_seconds_bucket", &[("le", "0.005")]), Some(2.0));
        assert_eq!(exp.value("tessera_exec_decision_latency_seconds_count", &[]), Some(2.0));
        assert_eq!(exp.value("tessera_api_submissions_total", &[("outcome", "accepted")]), Some(7.0));
        assert_eq!(exp.types["tessera_exec_decision_latency_seconds"], "histogram");
    }
}
