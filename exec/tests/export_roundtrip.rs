//! `export-trace` writes through the native writer of `traces/`, so that what it writes reads
//! back through the native reader as the same jobs; and a journal written before the one
//! vocabulary of job states (a `finished` job) still reads and exports, as `completed`.

use std::path::Path;
use tessera_core::{JobOutcome, JobStatus, Time};
use tessera_driver::{JobLedger, StopCause};
use tessera_exec::export::{export_trace, trace_job, EXPORT_HEADER, OBSERVED_COLUMNS};
use tessera_exec::journal::{JobRow, Journal};
use tessera_exec::JobSubmission;
use tessera_traces::native::parse_native_csv;
use tessera_traces::TraceJob;

const S: u64 = 1_000_000;

fn submission(tenant: &str, share: f64, count: u32, models: &[&str], stated: Option<f64>) -> JobSubmission {
    let mut s = JobSubmission::command("true", &[]);
    s.tenant = tenant.into();
    s.devices.count = count;
    s.devices.share = share;
    s.devices.models = models.iter().map(|m| m.to_string()).collect();
    s.cpu_milli = 1500;
    s.mem_mib = 2048;
    s.priority = 3;
    s.stated_duration_s = stated;
    s
}

/// Jobs in every kind of state, their ledgers kept by the ledger's own calls.
fn rows() -> Vec<JobRow> {
    let mut out = Vec::new();
    // Completed after a preemption and a device failure.
    let mut a = JobRow::queued(1, "u".into(), submission("team, a", 1.0, 2, &["H100", "A100-80GB"], Some(0.1 + 0.2)), 10 * S);
    a.ledger.launched();
    a.ledger.run_started(Time(12 * S));
    a.ledger.stop_ordered(StopCause::Preempted);
    a.ledger.run_stopped(Time(15 * S));
    a.ledger.launched();
    a.ledger.run_started(Time(20 * S));
    a.ledger.stop_ordered(StopCause::Failure);
    a.ledger.run_stopped(Time(21 * S));
    a.ledger.launched();
    a.ledger.run_started(Time(30 * S));
    a.ledger.ended(Time(40 * S + 250_000));
    a.state = JobStatus::COMPLETED;
    out.push(a);
    // OOM, on a share of a device.
    let mut b = JobRow::queued(2, "u".into(), submission("b", 0.25, 1, &[], None), 11 * S);
    b.ledger.launched();
    b.ledger.run_started(Time(11 * S));
    b.ledger.ended(Time(13 * S));
    b.state = JobStatus::OOM;
    out.push(b);
    // Cancelled while queued, rejected, and one still running at the journal's last event.
    for (id, state) in [(3, JobStatus::CANCELLED), (4, JobStatus::REJECTED)] {
        let mut r = JobRow::queued(id, "u".into(), submission("c", 1.0, 1, &[], None), 12 * S);
        r.ledger.ended(Time(14 * S));
        r.state = state;
        out.push(r);
    }
    let mut e = JobRow::queued(5, "u".into(), submission("c", 1.0, 0, &[], Some(60.0)), 13 * S);
    e.ledger.launched();
    e.ledger.run_started(Time(20 * S));
    e.state = JobStatus::RUNNING;
    out.push(e);
    out
}

const LAST_EVENT_US: u64 = 50 * S;

fn journal_with(path: &Path, rows: &[JobRow]) {
    let mut j = Journal::open(path).unwrap();
    for r in rows {
        j.row(r);
    }
    j.event(LAST_EVENT_US, "test", None, serde_json::json!({}));
    j.commit().unwrap();
}

fn column<'a>(csv: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    // No field of these jobs' observed columns is quoted: count from the end.
    let from_end = header.len() - k;
    lines.map(|l| { let f: Vec<&str> = l.split(',').collect(); f[f.len() - from_end] }).collect()
}

#[test]
fn an_export_reads_back_through_the_native_reader_as_the_same_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let rows = rows();
    journal_with(&path, &rows);
    let csv = export_trace(&path).unwrap();
    assert_eq!(csv.lines().next().unwrap(), EXPORT_HEADER);
    let back = parse_native_csv(csv.as_bytes(), Path::new("export.csv")).unwrap();
    let back: Vec<TraceJob> = back.into_iter().map(|j| TraceJob { line: 0, ..j }).collect();
    let origin = 10 * S;
    let want: Vec<TraceJob> = rows.iter().map(|r| trace_job(r, origin, LAST_EVENT_US)).collect();
    assert_eq!(back, want);

    // What the jobs are, independently of `trace_job`.
    assert_eq!((back[0].tenant.as_str(), back[0].devices, back[0].models.clone()), ("team, a", 2.0, vec!["H100".to_string(), "A100-80GB".into()]));
    assert_eq!((back[0].submit_s, back[0].duration_s, back[0].stated_duration_s), (0.0, 3.0 + 1.0 + 10.25, Some(0.1 + 0.2)));
    assert_eq!((back[0].priority, back[0].cpu_milli, back[0].mem_mib), (3, 1500, 2048));
    assert_eq!((back[1].devices, back[1].duration_s), (0.25, 2.0));
    assert_eq!(back[4].duration_s, 30.0, "a run still going counts up to the journal's last event");
    let outcomes: Vec<JobOutcome> = back.iter().map(|j| j.outcome.unwrap()).collect();
    use JobOutcome::*;
    assert_eq!(outcomes, [Completed, Oom, Cancelled, Rejected, Unfinished]);

    // The observed columns: the ledger's figures, as jobs.csv defines them.
    assert_eq!(column(&csv, "start_s"), ["2", "1", "", "", "10"]);
    assert_eq!(column(&csv, "end_s"), ["30.25", "3", "4", "4", ""]);
    // wait = (end - submit) - run: 30.25 - 14.25 for job 1.
    assert_eq!(column(&csv, "wait_s"), ["16", "0", "2", "2", ""]);
    assert_eq!(column(&csv, "restarts"), ["1", "0", "0", "0", "0"]);
    assert_eq!(column(&csv, "preemptions"), ["1", "0", "0", "0", "0"]);
    assert_eq!(column(&csv, "runs"), ["3", "1", "0", "0", "1"]);
    assert_eq!(column(&csv, "exec_state"), ["completed", "oom", "cancelled", "rejected", "running"]);
    assert_eq!(OBSERVED_COLUMNS.len(), 7);
}

#[test]
fn a_journal_row_written_the_old_way_reads_finished_as_completed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    journal_with(&path, &[]);
    // A row as the executor wrote it before the one vocabulary: state `finished`, no
    // `restarts` field.
    let mut row = serde_json::to_value(JobRow::queued(7, "alice".into(), submission("a", 1.0, 1, &[], None), 0)).unwrap();
    let obj = row.as_object_mut().unwrap();
    obj.remove("restarts");
    obj.insert("state".into(), "finished".into());
    obj.insert("first_start_us".into(), (S).into());
    obj.insert("end_us".into(), (4 * S).into());
    obj.insert("run_us".into(), (3 * S).into());
    obj.insert("runs".into(), 1.into());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO jobs(id, state, row) VALUES (7, 'finished', ?1)", [row.to_string()]).unwrap();
    drop(conn);

    let jobs = Journal::open_read_only(&path).unwrap().jobs().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobStatus::COMPLETED);
    let want = JobLedger { first_start: Some(Time(S)), end: Some(Time(4 * S)), run: Time(3 * S), runs: 1, ..JobLedger::submitted(Time::ZERO) };
    assert_eq!(jobs[0].ledger, want);
    let csv = export_trace(&path).unwrap();
    assert_eq!(column(&csv, "outcome"), ["completed"]);
    assert_eq!(column(&csv, "exec_state"), ["completed"]);
    assert!(!csv.contains("finished"), "{csv}");
    // Written again, the row says `completed`.
    let text = serde_json::to_string(&jobs[0]).unwrap();
    assert!(text.contains("\"state\":\"completed\"") && !text.contains("finished"), "{text}");
}
