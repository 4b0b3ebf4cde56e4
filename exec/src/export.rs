//! What the executor ran, for the simulator: the jobs as a trace in the native schema, written
//! by the native writer of `traces/` (`tessera_traces::write_native_csv_with_extras`, the
//! code `tessera trace import` uses), and the core's decisions with their provenance as JSON
//! lines.
//!
//! The trace has the native columns (`job_id, submit_s, tenant, priority, devices, models,
//! duration_s, job_class, cpu_milli, mem_mib, outcome, stated_duration_s`), then, as extra
//! columns the native loader ignores but the fidelity report reads, what was observed of the
//! job's runs ([`OBSERVED_COLUMNS`]): `start_s` (first start), `end_s`, `wait_s` (time not
//! running between submission and end), `restarts` (runs stopped by a device or node failure,
//! as `jobs.csv` counts them), `preemptions`, `runs` and `exec_state` (the job's state in the
//! journal: its phase while live, its outcome once ended). Times are seconds since the first
//! submission. `duration_s` is the time the job ran over all its runs (a run still going counts
//! up to the journal's last event); `stated_duration_s` is what the submission declared
//! (empty if it declared nothing), which is what `sjf`, `srtf` and backfilling ranked it by
//! here and what a replay must rank it by; `outcome` is the job's outcome in tessera's one
//! vocabulary (`completed`, `failed`, `killed`, `oom`, `cancelled`, `rejected`, or
//! `unfinished` for a job still queued or running: its `duration_s` is then a lower bound).
//!
//! The observed columns are extras rather than native columns because they describe one
//! recorded execution, not the job: no loader fills them and a replay never reads them.

use crate::error::ExecError;
use crate::journal::{JobRow, Journal};
use std::path::Path;
use tessera_core::Time;
use tessera_traces::{write_native_csv_with_extras, TraceJob};

/// The columns written after the native ones, in order.
pub const OBSERVED_COLUMNS: [&str; 7] = ["start_s", "end_s", "wait_s", "restarts", "preemptions", "runs", "exec_state"];

/// The header of an exported trace: the native columns, then [`OBSERVED_COLUMNS`].
pub const EXPORT_HEADER: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,cpu_milli,mem_mib,outcome,stated_duration_s,start_s,end_s,wait_s,restarts,preemptions,runs,exec_state";

fn secs(t: Time) -> f64 {
    t.0 as f64 / 1e6
}

/// A journal row as a native trace job, its times relative to `origin_us` (the first
/// submission); `now_us` ends a run still going.
pub fn trace_job(r: &JobRow, origin_us: u64, now_us: u64) -> TraceJob {
    let s = &r.submission;
    let rel = |t: Time| secs(Time(t.0.saturating_sub(origin_us)));
    let devices = if s.devices.share < 1.0 { s.devices.share } else { f64::from(s.devices.count) };
    let ran = if r.state.is_live() { r.ledger.ran_until(Time(now_us)) } else { r.ledger.run };
    TraceJob {
        priority: s.priority,
        models: s.devices.models.clone(),
        cpu_milli: s.cpu_milli,
        mem_mib: s.mem_mib,
        outcome: Some(r.state.outcome()),
        stated_duration_s: s.stated_duration_s,
        ..TraceJob::new(r.id, rel(r.ledger.submit), s.tenant.clone(), devices, secs(ran))
    }
}

/// The observed columns of a journal row, as text, in [`OBSERVED_COLUMNS`] order.
pub fn observed_fields(r: &JobRow, origin_us: u64, out: &mut Vec<String>) {
    let rel = |t: Time| secs(Time(t.0.saturating_sub(origin_us))).to_string();
    out.push(r.ledger.first_start.map(rel).unwrap_or_default());
    out.push(r.ledger.end.map(rel).unwrap_or_default());
    out.push(r.ledger.wait().map(|w| secs(w).to_string()).unwrap_or_default());
    out.push(r.ledger.restarts.to_string());
    out.push(r.ledger.preemptions.to_string());
    out.push(r.ledger.runs.to_string());
    out.push(r.state.as_str().to_string());
}

/// The jobs of the journal at `journal_path` as a native trace (CSV text).
pub fn export_trace(journal_path: &Path) -> Result<String, ExecError> {
    let journal = Journal::open_read_only(journal_path)?;
    let rows = journal.jobs()?;
    let origin = rows.iter().map(|r| r.ledger.submit.0).min().unwrap_or(0);
    let now_us = journal.last_t_us()?;
    let jobs: Vec<TraceJob> = rows.iter().map(|r| trace_job(r, origin, now_us)).collect();
    let mut out = Vec::new();
    write_native_csv_with_extras(&mut out, &jobs, &OBSERVED_COLUMNS, |i, fields| observed_fields(&rows[i], origin, fields))
        .map_err(|e| ExecError::Journal(format!("{}: exporting its jobs: {e}", journal_path.display())))?;
    Ok(String::from_utf8(out).expect("the native writer writes UTF-8"))
}

/// Every core decision the journal holds, one JSON object per line, in order: the journal
/// sequence, the time, the job, and the provenance (decision with its reason, policy label
/// and spec, devices, queue length).
pub fn export_decisions(journal_path: &Path) -> Result<String, ExecError> {
    let journal = Journal::open_read_only(journal_path)?;
    let mut out = String::new();
    for e in journal.events(Some("decision"))? {
        let line = serde_json::json!({"seq": e.seq, "at_unix_s": e.at_unix_s, "job": e.job, "provenance": e.detail});
        out.push_str(&line.to_string());
        out.push('\n');
    }
    Ok(out)
}
