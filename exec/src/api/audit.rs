//! The API's audit log: every call, refused ones included, with who made it (the token entry's
//! name, never the token), what it asked (a summary), and the answer (status and reason),
//! written to the journal's `api_audit` table (`journal.rs`).
//!
//! The API writes it through its own SQLite connection on a thread of its own, not through the
//! daemon's actor: a flood of refused calls then costs the scheduler nothing, and the calls of
//! one moment are written in one transaction (one fsync under `journal.sync = "full"`), after
//! their answers are sent. The queue to the writer is bounded: when the writer falls behind,
//! requests wait for room rather than calls going unrecorded. Rows are written at most a batch
//! behind the answers; a crash can lose that batch, never a row of the daemon's own journal.

use crate::config::JournalSync;
use crate::error::ExecError;
use crate::journal::{insert_audit_rows, AuditRow, AUDIT_TABLE_SQL};
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Calls waiting for the writer before requests are held back.
const QUEUE_ROWS: usize = 4096;
/// Most rows written in one transaction.
const BATCH_ROWS: usize = 1024;
/// Longest `path` and `reason` kept, in characters: a call cannot grow the log without bound.
pub const MAX_TEXT_CHARS: usize = 256;

/// The sending side, shared by the API's requests.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<AuditRow>,
}

/// The writer thread; [`AuditWriter::finish`] waits until every row sent was written.
pub struct AuditWriter {
    thread: std::thread::JoinHandle<()>,
}

/// What a handler tells the audit log about the call, filled in as it goes (so a refused call
/// still says what it asked).
#[derive(Clone, Default)]
pub struct AuditNote(Arc<Mutex<serde_json::Map<String, serde_json::Value>>>);

impl AuditNote {
    pub fn set(&self, key: &str, value: impl Into<serde_json::Value>) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key.to_string(), value.into());
        }
    }

    pub fn take(&self) -> serde_json::Value {
        match self.0.lock() {
            Ok(mut map) => serde_json::Value::Object(std::mem::take(&mut *map)),
            Err(_) => serde_json::Value::Null,
        }
    }
}

/// The short reason of an error answer, left on the response for the audit layer.
#[derive(Clone)]
pub struct AuditReason(pub String);

/// `text` with anything shaped like a generated token masked, and cut to [`MAX_TEXT_CHARS`]
/// characters: what the audit log keeps of a path, a reason or a note.
pub fn clip(text: &str) -> String {
    let text = redact_tokens(text);
    if text.chars().count() <= MAX_TEXT_CHARS {
        text
    } else {
        let mut out: String = text.chars().take(MAX_TEXT_CHARS - 1).collect();
        out.push('…');
        out
    }
}

/// Masks every generated token (`tsr_` and 64 hex digits) in `text`. Callers never send a
/// token anywhere but the `Authorization` header on purpose, but one pasted into a path or a
/// job's name must not end up in the journal for everyone who reads it.
pub fn redact_tokens(text: &str) -> String {
    use crate::api::auth::TOKEN_PREFIX;
    const HEX_DIGITS: usize = 64;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(TOKEN_PREFIX) {
        let after = &rest[at + TOKEN_PREFIX.len()..];
        let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(&rest[..at]);
        if hex >= HEX_DIGITS {
            out.push_str(TOKEN_PREFIX);
            out.push_str("[redacted]");
            rest = &after[hex..];
        } else {
            out.push_str(TOKEN_PREFIX);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_masked_and_long_text_is_cut() {
        let token = format!("tsr_{}", "ab12".repeat(16));
        assert_eq!(clip(&format!("/v1/jobs/{token}/cancel")), "/v1/jobs/tsr_[redacted]/cancel");
        assert_eq!(clip("tsr_ and tsr_abc stay"), "tsr_ and tsr_abc stay");
        assert_eq!(clip(&format!("{token}{token}")), "tsr_[redacted]tsr_[redacted]");
        let long = "é".repeat(1000);
        let cut = clip(&long);
        assert_eq!(cut.chars().count(), MAX_TEXT_CHARS);
        assert!(cut.ends_with('…'));
    }
}

impl AuditLog {
    /// Opens the audit log in the journal at `journal_path` (creating its table if needed) and
    /// starts the writer. `failures` counts rows that could not be written (on `/metrics`).
    pub fn open(journal_path: &Path, sync: JournalSync, failures: Arc<AtomicU64>) -> Result<(AuditLog, AuditWriter), ExecError> {
        let at = |e: rusqlite::Error| ExecError::Journal(format!("{} (audit log): {e}", journal_path.display()));
        let mut conn = Connection::open(journal_path).map_err(at)?;
        conn.execute_batch(match sync {
            JournalSync::Full => "PRAGMA synchronous=FULL",
            JournalSync::Normal => "PRAGMA synchronous=NORMAL",
        })
        .map_err(at)?;
        conn.execute_batch(AUDIT_TABLE_SQL).map_err(at)?;
        let (tx, mut rx) = mpsc::channel::<AuditRow>(QUEUE_ROWS);
        let path = journal_path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("tessera-audit".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH_ROWS {
                        match rx.try_recv() {
                            Ok(row) => batch.push(row),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = insert_audit_rows(&mut conn, &batch) {
                        failures.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        tracing::error!("{path}: {} audit row(s) could not be written: {e}", batch.len());
                    }
                }
            })
            .map_err(ExecError::Io)?;
        Ok((AuditLog { tx }, AuditWriter { thread }))
    }

    /// Queues `row`; waits while the writer's queue is full.
    pub async fn record(&self, row: AuditRow) {
        // Fails only once the writer has stopped (the server is going down).
        if self.tx.send(row).await.is_err() {
            tracing::error!("an API call went unaudited: the audit writer has stopped");
        }
    }
}

impl AuditWriter {
    /// Waits (without blocking the runtime) until every sender is gone and every row written.
    pub async fn finish(self) {
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}
