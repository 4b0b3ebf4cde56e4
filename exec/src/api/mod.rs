//! The executor's HTTP/JSON API (axum), bound to loopback by default.

pub mod auth;
pub mod metrics;
