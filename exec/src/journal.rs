//! The durable journal: one SQLite file (WAL) holding every state change, committed before
//! the daemon acts on it.
//!
//! `synchronous = FULL` (the default, `journal.sync = "full"`): in WAL mode, NORMAL survives a crash of the executor but may lose the
//! last transactions on a power loss, which could forget that a job finished and run it again.
//! FULL syncs the WAL at every commit; the daemon commits once per batch of inputs (a group
//! commit of every input waiting when the batch began and of everything they caused), so the
//! cost is one fsync per batch, not per input: measured by the `journal_commit_latency`
//! histogram, the batch sizes by `batch_inputs`.
//!
//! Tables: `meta` (the time epoch, the next job id, the policy), `jobs` (each job's current
//! row, as JSON, with its state for queries), `events` (the append-only log: every state
//! change and every core decision with its provenance), `devices` (drained devices),
//! `job_state` (each live job's scheduler state, restored after a restart: see `daemon.rs`),
//! `api_audit` (every API call: who by token name, what it asked, the answer; written by the
//! API's own connection, `api/audit.rs`, never read at recovery).
//!
//! `journal.sync = "normal"` trades that for throughput: no fsync at commit (only at
//! checkpoints), so a commit survives a crash of the executor but the last ones acknowledged
//! before a kernel crash or power loss may be lost (see `config::JournalSync`).
//!
//! Retention (`Journal::compact`): recovery reads only `jobs`, `job_state` (live jobs'),
//! `meta`, `devices` and the latest event's time; `events` is the audit log. Compaction
//! deletes the rows of the oldest ended jobs beyond `journal.keep_finished_jobs` with all their
//! events and `job_state` rows, and events older than `journal.keep_events_days`, never
//! touching a live job's rows or events, `meta`, `devices`, or the latest event. New journals
//! use `auto_vacuum = INCREMENTAL`, so the pages freed are given back to the file system; the
//! WAL is truncated after a compaction that deleted rows.

use crate::config::{JournalConfig, JournalSync};
use crate::error::ExecError;
use crate::handle::{ExecEvent, JobStatus};
use crate::spec::JobSubmission;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tessera_core::{Allocation, RestoredJob, Time};
use tessera_driver::JobLedger;

/// Why the executor is stopping a running job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Preempted, drained or its device failed: it returns to the queue.
    Requeue,
    Cancel,
    TimeLimit,
}

/// A job's durable state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    pub id: u64,
    pub owner: String,
    pub submission: JobSubmission,
    pub state: JobStatus,
    /// The job's accounting (the driver layer's ledger, kept by the same rules as the
    /// simulator's): times in microseconds on the journal's timeline (since
    /// `epoch_unix_us`), written as the row's own `submit_us`, `first_start_us`,
    /// `run_start_us` (the current run's process start), `end_us`, `run_us` (over ended runs),
    /// `runs` (launched so far; the current run is number `runs`, from 1), `preemptions` and
    /// `restarts` fields.
    #[serde(flatten)]
    pub ledger: JobLedger,
    pub exit_code: Option<i32>,
    pub pid: Option<i32>,
    pub pgid: Option<i32>,
    pub start_ticks: Option<u64>,
    pub allocation: Option<Allocation>,
    pub devices: Vec<String>,
    pub error: Option<String>,
    pub wait_reason: Option<serde_json::Value>,
    pub launch_reason: Option<serde_json::Value>,
    pub stop: Option<Stop>,
    /// Failed attempts to start the current run.
    pub spawn_failures: u32,
    /// When the stop under way (`stop`) turns from SIGTERM to SIGKILL, so a restarted
    /// executor gives the job only what is left of its grace.
    #[serde(default)]
    pub stop_deadline_us: Option<u64>,
}

impl JobRow {
    /// A job just submitted: queued, never run. Other states start from it (`..JobRow::queued(..)`).
    pub fn queued(id: u64, owner: String, submission: JobSubmission, submit_us: u64) -> JobRow {
        JobRow {
            id,
            owner,
            submission,
            state: JobStatus::QUEUED,
            ledger: JobLedger::submitted(Time(submit_us)),
            exit_code: None,
            pid: None,
            pgid: None,
            start_ticks: None,
            allocation: None,
            devices: Vec::new(),
            error: None,
            wait_reason: None,
            launch_reason: None,
            stop: None,
            spawn_failures: 0,
            stop_deadline_us: None,
        }
    }
}

/// Decodes a `jobs` row's text as recovery reads it: the row, or an error naming the field at
/// fault. Public for the fuzz target `journal_row` (fuzz/) and its corpus replay.
pub fn decode_job_row(text: &str) -> Result<JobRow, String> {
    // The path names the field at fault, which serde_json's message alone does not.
    let e = match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text)) {
        Ok(row) => return Ok(row),
        Err(e) => e,
    };
    // The ledger's fields are flattened into the row, where the path is lost (`.`): read them
    // alone to name the one at fault.
    if e.path().to_string() == "." {
        if let Err(le) = serde_path_to_error::deserialize::<_, JobLedger>(&mut serde_json::Deserializer::from_str(text)) {
            return Err(format!("field `{}`: {}", le.path(), le.inner()));
        }
    }
    Err(format!("field `{}`: {}", e.path(), e.inner()))
}

/// Saved scheduler states by job id.
pub type JobStates = std::collections::BTreeMap<u64, RestoredJob>;

/// A `jobs` row whose text does not parse (a corrupt or hand-edited journal).
#[derive(Clone, Debug, PartialEq)]
pub struct UnreadableRow {
    pub id: u64,
    /// The table's `state` column, which is written beside the text.
    pub state: String,
    pub text: String,
    pub error: String,
}

enum Pending {
    Event { t_us: u64, kind: String, job: Option<u64>, detail: serde_json::Value },
    Row(Box<JobRow>),
    Meta(String, String),
    Device(String, bool),
    /// A job's scheduler state (`None`: delete it, the job is no longer live).
    SchedState(u64, Option<String>),
}

pub struct Journal {
    conn: Connection,
    pending: Vec<Pending>,
    epoch_unix_us: u64,
    /// When `compact_if_due` last ran; `None`: not yet.
    last_compaction: Option<std::time::Instant>,
    /// The last compaction stopped at its row limit: run again at the next chance.
    compaction_unfinished: bool,
}

/// The API's audit log: one row per call, times in Unix microseconds (not the journal's
/// timeline: the API writes them with its own connection and clock). `token` is the name of
/// the token's entry, NULL when the caller was not identified; never the token itself.
pub const AUDIT_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS api_audit (seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at_unix_us INTEGER NOT NULL, token TEXT, method TEXT NOT NULL, path TEXT NOT NULL, asked TEXT NOT NULL,
     status INTEGER NOT NULL, reason TEXT NOT NULL);
     CREATE INDEX IF NOT EXISTS api_audit_time ON api_audit(at_unix_us);
     CREATE INDEX IF NOT EXISTS api_audit_token ON api_audit(token, at_unix_us);";

/// One API call as the audit log holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Order of writing; 0 before it is written.
    pub seq: u64,
    pub at_unix_us: u64,
    /// The name of the caller's token entry; `None`: no token, or one that matched none.
    pub token: Option<String>,
    pub method: String,
    pub path: String,
    /// What it asked, summarised (job id, tenant, command name, policy label), as JSON; no
    /// arguments, environment values or bodies.
    pub asked: serde_json::Value,
    pub status: u16,
    /// The answer in short: the error message, or the status's reason phrase.
    pub reason: String,
}

/// Writes `rows` in one transaction on `conn` (the API's audit writer's connection).
pub fn insert_audit_rows(conn: &mut Connection, rows: &[AuditRow]) -> Result<(), ExecError> {
    let tx = conn.transaction()?;
    {
        let mut ins = tx.prepare_cached("INSERT INTO api_audit(at_unix_us, token, method, path, asked, status, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
        for r in rows {
            ins.execute(params![r.at_unix_us.min(i64::MAX as u64) as i64, r.token, r.method, r.path, r.asked.to_string(), r.status, r.reason])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Job states whose rows and events compaction never deletes (`JobStatus::is_live`).
const LIVE_STATES_SQL: &str = "('queued', 'launching', 'running', 'preempting')";

/// Most rows one compaction pass deletes, so a first compaction of a large journal does not
/// stall the daemon; the rest goes in the next passes.
pub const COMPACT_MAX_ROWS_PER_PASS: u64 = 50_000;

/// What one compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactReport {
    /// Ended jobs whose rows were deleted (with their events), in id order.
    pub jobs_deleted: Vec<u64>,
    /// Events deleted: those of the deleted jobs and those older than the retention.
    pub events_deleted: u64,
    /// Stopped at the per-pass limit: more remains to delete.
    pub unfinished: bool,
    /// Audit rows deleted for their age (`keep_events_days`).
    #[serde(default)]
    pub audit_deleted: u64,
}

/// Microseconds since the Unix epoch, by the system clock.
pub fn unix_now_us() -> u64 {
    now_unix_us()
}

fn now_unix_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn jerr(context: &str, e: impl std::fmt::Display) -> ExecError {
    ExecError::Journal(format!("{context}: {e}"))
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, ExecError> {
        Self::open_with(path, JournalSync::Full)
    }

    /// Opens (creating if needed) the journal at `path` with the given durability.
    pub fn open_with(path: &Path, sync: JournalSync) -> Result<Journal, ExecError> {
        let conn = Connection::open(path).map_err(|e| jerr(&path.display().to_string(), e))?;
        // Takes effect only on a new, empty file (an existing one keeps its mode): freed pages
        // can then be returned to the file system after a compaction.
        conn.execute_batch("PRAGMA auto_vacuum=INCREMENTAL").map_err(|e| jerr(&path.display().to_string(), e))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(ExecError::Journal(format!("{}: WAL mode refused (got {mode})", path.display())));
        }
        conn.execute_batch(match sync {
            JournalSync::Full => "PRAGMA synchronous=FULL",
            JournalSync::Normal => "PRAGMA synchronous=NORMAL",
        })?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, row TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, t_us INTEGER NOT NULL,
                 kind TEXT NOT NULL, job INTEGER, detail TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS events_job ON events(job);
             CREATE TABLE IF NOT EXISTS devices (name TEXT PRIMARY KEY, drained INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS job_state (id INTEGER PRIMARY KEY, state TEXT NOT NULL);",
        )?;
        conn.execute_batch(AUDIT_TABLE_SQL)?;
        let epoch: Option<String> = conn.query_row("SELECT value FROM meta WHERE key='epoch_unix_us'", [], |r| r.get(0)).optional()?;
        let epoch_unix_us = match epoch {
            Some(v) => v.parse().map_err(|e| jerr("meta epoch_unix_us", e))?,
            None => {
                let e = now_unix_us();
                conn.execute("INSERT INTO meta(key, value) VALUES ('epoch_unix_us', ?1)", params![e.to_string()])?;
                e
            }
        };
        Ok(Journal { conn, pending: Vec::new(), epoch_unix_us, last_compaction: None, compaction_unfinished: false })
    }

    /// Opens an existing journal to read (export), without taking part in writes.
    pub fn open_read_only(path: &Path) -> Result<Journal, ExecError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| jerr(&path.display().to_string(), e))?;
        let epoch: String = conn
            .query_row("SELECT value FROM meta WHERE key='epoch_unix_us'", [], |r| r.get(0))
            .map_err(|e| jerr(&format!("{}: not a tessera journal", path.display()), e))?;
        let epoch_unix_us = epoch.parse().map_err(|e| jerr("meta epoch_unix_us", e))?;
        Ok(Journal { conn, pending: Vec::new(), epoch_unix_us, last_compaction: None, compaction_unfinished: false })
    }

    /// Unix time (µs) of the timeline's zero.
    pub fn epoch_unix_us(&self) -> u64 {
        self.epoch_unix_us
    }

    /// The latest time recorded: a restarted daemon's clock never goes below it.
    pub fn last_t_us(&self) -> Result<u64, ExecError> {
        Ok(self.conn.query_row("SELECT COALESCE(MAX(t_us), 0) FROM events", [], |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn event(&mut self, t_us: u64, kind: &str, job: Option<u64>, detail: serde_json::Value) {
        self.pending.push(Pending::Event { t_us, kind: kind.into(), job, detail });
    }

    pub fn row(&mut self, row: &JobRow) {
        self.pending.push(Pending::Row(Box::new(row.clone())));
    }

    pub fn set_meta(&mut self, key: &str, value: &str) {
        self.pending.push(Pending::Meta(key.into(), value.into()));
    }

    pub fn set_drained(&mut self, device: &str, drained: bool) {
        self.pending.push(Pending::Device(device.into(), drained));
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Commits everything pending in one transaction; returns the events written, with
    /// their sequence numbers, for broadcasting.
    pub fn commit(&mut self) -> Result<Vec<ExecEvent>, ExecError> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.pending);
        let tx = self.conn.transaction()?;
        let mut events = Vec::new();
        {
            let mut ins_event = tx.prepare_cached("INSERT INTO events(t_us, kind, job, detail) VALUES (?1, ?2, ?3, ?4)")?;
            let mut upsert_row = tx.prepare_cached("INSERT INTO jobs(id, state, row) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET state=excluded.state, row=excluded.row")?;
            for p in pending {
                match p {
                    Pending::Event { t_us, kind, job, detail } => {
                        ins_event.execute(params![t_us as i64, kind, job.map(|j| j as i64), detail.to_string()])?;
                        let seq = tx.last_insert_rowid() as u64;
                        let at_unix_s = self.epoch_unix_us.saturating_add(t_us) as f64 / 1e6;
                        events.push(ExecEvent { seq, at_unix_s, kind, job, detail });
                    }
                    Pending::Row(row) => {
                        let text = serde_json::to_string(&row).map_err(|e| jerr("job row", e))?;
                        upsert_row.execute(params![row.id as i64, row.state.as_str(), text])?;
                    }
                    Pending::Meta(k, v) => {
                        tx.execute("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value=excluded.value", params![k, v])?;
                    }
                    Pending::Device(name, drained) => {
                        tx.execute("INSERT INTO devices(name, drained) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET drained=excluded.drained", params![name, drained as i64])?;
                    }
                    Pending::SchedState(id, Some(state)) => {
                        tx.execute("INSERT INTO job_state(id, state) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET state=excluded.state", params![id as i64, state])?;
                    }
                    Pending::SchedState(id, None) => {
                        tx.execute("DELETE FROM job_state WHERE id=?1", params![id as i64])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(events)
    }

    /// Drops what was not committed (after a failed commit).
    pub fn discard_pending(&mut self) {
        self.pending.clear();
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, ExecError> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key=?1", params![key], |r| r.get(0)).optional()?)
    }

    /// Every job, in id order.
    pub fn jobs(&self) -> Result<Vec<JobRow>, ExecError> {
        let (rows, unreadable) = self.jobs_and_unreadable()?;
        match unreadable.into_iter().next() {
            Some(u) => Err(jerr(&format!("job {}'s row", u.id), u.error)),
            None => Ok(rows),
        }
    }

    /// Every job row that parses, in id order, and apart those that do not: recovery
    /// quarantines those rather than refusing to start.
    pub fn jobs_and_unreadable(&self) -> Result<(Vec<JobRow>, Vec<UnreadableRow>), ExecError> {
        let mut stmt = self.conn.prepare("SELECT id, state, row FROM jobs ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        let (mut out, mut unreadable) = (Vec::new(), Vec::new());
        for row in rows {
            let (id, state, text) = row?;
            match decode_job_row(&text) {
                Ok(parsed) => out.push(parsed),
                Err(error) => unreadable.push(UnreadableRow { id: id as u64, state, text, error }),
            }
        }
        Ok((out, unreadable))
    }

    /// Records a live job's scheduler state (its submission time, attained service, LAS
    /// promotion, current run), so that a restarted daemon restores it rather than
    /// re-submitting the job; `None` forgets it (the job ended).
    pub fn set_job_state(&mut self, id: u64, state: Option<&RestoredJob>) -> Result<(), ExecError> {
        let text = state.map(serde_json::to_string).transpose().map_err(|e| jerr(&format!("job {id}'s scheduler state"), e))?;
        self.pending.push(Pending::SchedState(id, text));
        Ok(())
    }

    /// Every saved scheduler state, by job id. A row that does not parse is an error naming it.
    pub fn job_states(&self) -> Result<JobStates, ExecError> {
        let (out, unreadable) = self.job_states_and_unreadable()?;
        match unreadable.into_iter().next() {
            Some((id, e)) => Err(jerr(&format!("table job_state, job {id}, column state"), e)),
            None => Ok(out),
        }
    }

    /// Every saved scheduler state that parses, by job id, and apart the ids and errors of those
    /// that do not (recovery restores those jobs from their rows instead).
    pub fn job_states_and_unreadable(&self) -> Result<(JobStates, Vec<(u64, String)>), ExecError> {
        let mut stmt = self.conn.prepare("SELECT id, state FROM job_state ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let (mut out, mut unreadable) = (std::collections::BTreeMap::new(), Vec::new());
        for row in rows {
            let (id, text) = row?;
            match serde_json::from_str(&text) {
                Ok(state) => {
                    out.insert(id as u64, state);
                }
                Err(e) => unreadable.push((id as u64, e.to_string())),
            }
        }
        Ok((out, unreadable))
    }

    pub fn drained_devices(&self) -> Result<Vec<String>, ExecError> {
        let mut stmt = self.conn.prepare("SELECT name FROM devices WHERE drained=1 ORDER BY name")?;
        let names = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    }

    /// The audit log's rows at or after `since_unix_us`, of token entry `token` when given, in
    /// the order written. A journal from before the audit log has none.
    pub fn audit(&self, since_unix_us: Option<u64>, token: Option<&str>) -> Result<Vec<AuditRow>, ExecError> {
        let exists: bool = self.conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='api_audit'", [], |r| r.get::<_, i64>(0))? > 0;
        if !exists {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT seq, at_unix_us, token, method, path, asked, status, reason FROM api_audit
             WHERE at_unix_us >= ?1 AND (?2 IS NULL OR token = ?2) ORDER BY seq",
        )?;
        let since = since_unix_us.unwrap_or(0).min(i64::MAX as u64) as i64;
        let rows = stmt.query_map(params![since, token], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at, token, method, path, asked, status, reason) = row?;
            let asked = serde_json::from_str(&asked).map_err(|e| jerr(&format!("table api_audit, row {seq}, column asked"), e))?;
            let status = u16::try_from(status).map_err(|e| jerr(&format!("table api_audit, row {seq}, column status"), e))?;
            out.push(AuditRow { seq: seq as u64, at_unix_us: at.max(0) as u64, token, method, path, asked, status, reason });
        }
        Ok(out)
    }

    /// Events in sequence order, optionally of one kind.
    pub fn events(&self, kind: Option<&str>) -> Result<Vec<ExecEvent>, ExecError> {
        let mut stmt = self.conn.prepare("SELECT seq, t_us, kind, job, detail FROM events WHERE ?1 IS NULL OR kind=?1 ORDER BY seq")?;
        let rows = stmt.query_map(params![kind], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, Option<i64>>(3)?, r.get::<_, String>(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, t_us, kind, job, detail) = row?;
            let detail = serde_json::from_str(&detail).map_err(|e| jerr(&format!("event {seq}"), e))?;
            out.push(ExecEvent { seq: seq as u64, at_unix_s: self.epoch_unix_us.saturating_add(t_us as u64) as f64 / 1e6, kind, job: job.map(|j| j as u64), detail });
        }
        Ok(out)
    }
}

// ---- retention -----------------------------------------------------------------------------

impl Journal {
    /// Deletes what retention allows (see the module's documentation), at most
    /// `max_rows` job rows and `max_rows` events in this pass, in one transaction. `now_us`
    /// is on the journal's timeline. When anything was deleted, a `journal_compacted` event
    /// is written (and returned, for broadcasting), the WAL is checkpointed and truncated and
    /// free pages are returned to the file system (journals created with incremental
    /// auto-vacuum). Nothing pending is committed or dropped.
    pub fn compact(&mut self, now_us: u64, config: &JournalConfig, max_rows: u64) -> Result<(CompactReport, Option<ExecEvent>), ExecError> {
        let max_rows = max_rows.max(1) as i64;
        let mut report = CompactReport::default();
        let tx = self.conn.transaction()?;
        // 1. Ended jobs beyond the newest `keep_finished_jobs` (by id), and all their events.
        if let Some(keep) = config.keep_finished_jobs {
            let ended_sql = format!("SELECT id FROM jobs WHERE state NOT IN {LIVE_STATES_SQL} ORDER BY id DESC LIMIT -1 OFFSET ?1");
            let mut ids: Vec<u64> = {
                let mut stmt = tx.prepare(&ended_sql)?;
                let rows = stmt.query_map(params![keep.min(i64::MAX as u64) as i64], |r| r.get::<_, i64>(0))?;
                rows.map(|r| r.map(|id| id as u64)).collect::<Result<_, _>>()?
            };
            ids.reverse();
            if ids.len() as i64 > max_rows {
                ids.truncate(max_rows as usize);
                report.unfinished = true;
            }
            let mut del_job = tx.prepare_cached("DELETE FROM jobs WHERE id=?1")?;
            let mut del_events = tx.prepare_cached("DELETE FROM events WHERE job=?1")?;
            // An ended job's state row is deleted when it ends; this catches one left by a
            // crash between the end and that write.
            let mut del_state = tx.prepare_cached("DELETE FROM job_state WHERE id=?1")?;
            for &id in &ids {
                del_job.execute(params![id as i64])?;
                del_state.execute(params![id as i64])?;
                report.events_deleted += del_events.execute(params![id as i64])? as u64;
            }
            report.jobs_deleted = ids;
        }
        // 2. Events older than `keep_events_days`, except live jobs' and the latest event
        // (its time keeps a restarted daemon's clock from going back). Times grow with `seq`,
        // so the events to delete are a prefix: found by scanning only that prefix.
        if let Some(keep_us) = config.keep_events_us() {
            let cutoff_us = now_us.saturating_sub(keep_us);
            let (first_seq, last_seq): (Option<i64>, Option<i64>) = tx.query_row("SELECT MIN(seq), MAX(seq) FROM events", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if let (Some(first_seq), Some(last_seq)) = (first_seq, last_seq) {
                let first_kept: i64 = tx
                    .query_row("SELECT seq FROM events WHERE t_us >= ?1 ORDER BY seq LIMIT 1", params![cutoff_us.min(i64::MAX as u64) as i64], |r| r.get(0))
                    .optional()?
                    .unwrap_or(last_seq)
                    .min(last_seq);
                let end = first_kept.min(first_seq.saturating_add(max_rows));
                report.unfinished |= end < first_kept;
                let sql = format!("DELETE FROM events WHERE seq >= ?1 AND seq < ?2 AND (job IS NULL OR job NOT IN (SELECT id FROM jobs WHERE state IN {LIVE_STATES_SQL}))");
                report.events_deleted += tx.execute(&sql, params![first_seq, end])? as u64;
            }
        }
        // 3. Audit rows older than `keep_events_days`, by their own (Unix) clock.
        if let Some(keep_us) = config.keep_events_us() {
            let cutoff_unix_us = self.epoch_unix_us.saturating_add(now_us).saturating_sub(keep_us).min(i64::MAX as u64) as i64;
            let deleted = tx.execute("DELETE FROM api_audit WHERE seq IN (SELECT seq FROM api_audit WHERE at_unix_us < ?1 ORDER BY seq LIMIT ?2)", params![cutoff_unix_us, max_rows])? as u64;
            report.unfinished |= deleted == max_rows as u64;
            report.audit_deleted = deleted;
        }
        let mut event = None;
        if !report.jobs_deleted.is_empty() || report.events_deleted > 0 || report.audit_deleted > 0 {
            let last_t: i64 = tx.query_row("SELECT COALESCE(MAX(t_us), 0) FROM events", [], |r| r.get(0))?;
            let t_us = now_us.max(last_t as u64);
            let detail = serde_json::json!({
                "jobs_deleted": report.jobs_deleted.len(),
                "first_job_deleted": report.jobs_deleted.first(),
                "last_job_deleted": report.jobs_deleted.last(),
                "events_deleted": report.events_deleted,
                "audit_deleted": report.audit_deleted,
                "unfinished": report.unfinished,
                "keep_finished_jobs": config.keep_finished_jobs,
                "keep_events_days": config.keep_events_days,
            });
            tx.execute("INSERT INTO events(t_us, kind, job, detail) VALUES (?1, 'journal_compacted', NULL, ?2)", params![t_us as i64, detail.to_string()])?;
            let seq = tx.last_insert_rowid() as u64;
            event = Some(ExecEvent { seq, at_unix_s: self.epoch_unix_us.saturating_add(t_us) as f64 / 1e6, kind: "journal_compacted".into(), job: None, detail });
        }
        tx.commit()?;
        if event.is_some() {
            self.shrink()?;
        }
        Ok((report, event))
    }

    /// Checkpoints the WAL into the database and truncates it, then returns free pages to the
    /// file system (a no-op for a journal created before incremental auto-vacuum). A reader
    /// holding the WAL (an export running) makes the checkpoint partial, which is harmless.
    pub fn shrink(&mut self) -> Result<(), ExecError> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        // Each step of this pragma frees some pages: step it to the end.
        let mut vacuum = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = vacuum.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        drop(vacuum);
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Rewrites the whole file (`VACUUM`) with incremental auto-vacuum when it does not have
    /// it yet (a journal created before this version), so later compactions give freed pages
    /// back. Takes as long as copying the file and needs as much free space: for a stopped
    /// executor (`tessera exec compact`). Returns whether it rewrote the file.
    pub fn enable_incremental_vacuum(&mut self) -> Result<bool, ExecError> {
        let mode: i64 = self.conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        if mode == 2 {
            return Ok(false);
        }
        self.conn.execute_batch("PRAGMA auto_vacuum=INCREMENTAL; VACUUM;")?;
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(true)
    }

    /// Runs `compact` when `config.compact_interval_s` has passed since the last one (or at
    /// once the first time, or when the last one stopped at its row limit).
    pub fn compact_if_due(&mut self, now_us: u64, config: &JournalConfig) -> Result<Option<(CompactReport, Option<ExecEvent>)>, ExecError> {
        let due = match self.last_compaction {
            None => true,
            Some(at) => self.compaction_unfinished || at.elapsed().as_secs_f64() >= config.compact_interval_s,
        };
        if !due {
            return Ok(None);
        }
        self.last_compaction = Some(std::time::Instant::now());
        let (report, event) = self.compact(now_us, config, COMPACT_MAX_ROWS_PER_PASS)?;
        self.compaction_unfinished = report.unfinished;
        Ok(Some((report, event)))
    }

    /// (rows in `jobs`, rows in `events`), for reports and tests.
    pub fn counts(&self) -> Result<(u64, u64), ExecError> {
        let jobs: i64 = self.conn.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))?;
        let events: i64 = self.conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
        Ok((jobs as u64, events as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopening_and_uncommitted_writes_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let epoch;
        {
            let mut j = Journal::open(&path).unwrap();
            epoch = j.epoch_unix_us();
            j.event(5, "submitted", Some(1), serde_json::json!({"a": 1}));
            j.set_meta("next_job_id", "2");
            let ev = j.commit().unwrap();
            assert_eq!(ev.len(), 1);
            assert_eq!(ev[0].seq, 1);
            j.event(9, "lost", None, serde_json::json!(null));
            // dropped without commit
        }
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.epoch_unix_us(), epoch);
        assert_eq!(j.meta("next_job_id").unwrap().as_deref(), Some("2"));
        let ev = j.events(None).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, "submitted");
        assert_eq!(j.last_t_us().unwrap(), 5);
        let mode: String = j.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_bad_ledger_field_is_named_though_the_ledger_is_flattened_into_the_row() {
        let row = JobRow::queued(3, "u".into(), JobSubmission::command("true", &[]), 5);
        let mut v = serde_json::to_value(&row).unwrap();
        assert_eq!(decode_job_row(&v.to_string()).unwrap(), row);
        v["runs"] = serde_json::json!("many");
        let e = decode_job_row(&v.to_string()).unwrap_err();
        assert!(e.starts_with("field `runs`: invalid type: string \"many\""), "{e}");
        v["runs"] = serde_json::json!(1);
        v["owner"] = serde_json::json!(7);
        let e = decode_job_row(&v.to_string()).unwrap_err();
        assert!(e.starts_with("field `owner`"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.sqlite");
        std::fs::write(&path, b"this is not sqlite at all, just some bytes that go on for a while....").unwrap();
        let e = Journal::open(&path).err().expect("junk refused").to_string();
        assert!(e.contains("junk.sqlite") || e.contains("not a database"), "{e}");
    }
}
