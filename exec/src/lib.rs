//! tessera-exec: the live executor (tokio driver, device backends, process launcher, durable
//! journal, HTTP API). Not written yet: it is its own piece of work. It will drive the very
//! same `tessera_core::Scheduler` the simulator drives.

// The API half (HTTP API, client, `exec serve`).
pub mod api;
