//! What the executor ran, for the simulator: the jobs as a trace in the native schema
//! (`traces/src/native.rs`), and the core's decisions with their provenance as JSON lines.
//!
//! The trace has the native columns (`job_id, submit_s, tenant, priority, devices, models,
//! duration_s, job_class, cpu_milli, mem_mib, outcome`) and, as extra columns the native loader
//! ignores but the fidelity report compares, what was observed: `start_s` (first start),
//! `end_s`, `wait_s` (time not running between submission and end), `restarts` and
//! `exec_state`; then the native column `stated_duration_s`, last so that the observed
//! columns keep their positions. Times are seconds since the first submission. `duration_s`
//! is the time the job ran over all its runs; `stated_duration_s` is what the submission
//! declared (empty if it declared nothing), which is what `sjf`, `srtf` and backfilling ranked
//! it by here and what a replay must rank it by; `outcome` is `completed`, `failed`, `killed`
//! (time limit, cancelled, rejected) or `censored` (still queued or running: `duration_s` is a
//! lower bound).

use crate::error::ExecError;
use crate::handle::JobStatus;
use crate::journal::Journal;
use std::fmt::Write;
use std::path::Path;

pub const EXPORT_HEADER: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,cpu_milli,mem_mib,outcome,start_s,end_s,wait_s,restarts,exec_state,stated_duration_s";

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) || field != field.trim() {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn secs(us: u64) -> String {
    format!("{:.6}", us as f64 / 1e6)
}

/// The jobs of the journal at `journal_path` as a native trace (CSV text).
pub fn export_trace(journal_path: &Path) -> Result<String, ExecError> {
    let journal = Journal::open_read_only(journal_path)?;
    let rows = journal.jobs()?;
    let origin = rows.iter().map(|r| r.submit_us).min().unwrap_or(0);
    let now_us = journal.last_t_us()?;
    let mut out = String::from(EXPORT_HEADER);
    out.push('\n');
    for r in &rows {
        let s = &r.submission;
        let devices = if s.devices.share < 1.0 { format!("{}", s.devices.share) } else { s.devices.count.to_string() };
        let live_run = if r.state.is_live() { r.run_start_us.map_or(0, |t| now_us.saturating_sub(t)) } else { 0 };
        let ran_us = r.run_us + live_run;
        let outcome = match r.state {
            JobStatus::Finished => "completed",
            // The trace's vocabulary has no OOM: it failed (the `exec_state` column says `oom`).
            JobStatus::Failed | JobStatus::Oom => "failed",
            JobStatus::Killed | JobStatus::Cancelled | JobStatus::Rejected => "killed",
            _ => "censored",
        };
        let end = r.end_us;
        let wait = end.map(|e| e.saturating_sub(r.submit_us).saturating_sub(r.run_us));
        let rel = |t: u64| secs(t.saturating_sub(origin));
        writeln!(
            out,
            "{},{},{},{},{},{},{},,{},{},{},{},{},{},{},{},{}",
            r.id,
            rel(r.submit_us),
            quote(&s.tenant),
            s.priority,
            devices,
            quote(&s.devices.models.join("|")),
            secs(ran_us),
            s.cpu_milli,
            s.mem_mib,
            outcome,
            r.first_start_us.map(rel).unwrap_or_default(),
            end.map(rel).unwrap_or_default(),
            wait.map(secs).unwrap_or_default(),
            r.runs.saturating_sub(1),
            r.state.as_str(),
            // The shortest form that reads back as the same f64, so the replay's stated
            // duration converts to the same microseconds as the daemon's did.
            s.stated_duration_s.map(|d| d.to_string()).unwrap_or_default(),
        )
        .expect("writing to a String");
    }
    Ok(out)
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
