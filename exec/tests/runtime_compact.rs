//! Journal retention on a real SQLite file: what compaction deletes (old events, the oldest
//! ended jobs beyond the limit), what it never deletes (live jobs and their events, `meta`,
//! the latest event), that the file shrinks, and that a daemon restarted on a compacted
//! journal still finds every live job and never reuses an id.

mod runtime_common;
use runtime_common::*;
use serde_json::json;
use std::collections::BTreeSet;
use tessera_core::PolicySpec;
use tessera_exec::config::JournalConfig;
use tessera_exec::journal::{Journal, JobRow};
use tessera_exec::{start, JobStatus, JobSubmission};

const S: u64 = 1_000_000;

fn row(id: u64, state: JobStatus, submit_us: u64) -> JobRow {
    let mut row = JobRow { state, ..JobRow::queued(id, "u".into(), JobSubmission::command("true", &[]), submit_us) };
    row.ledger.end = (!state.is_live()).then_some(tessera_core::Time(submit_us + S / 2));
    row
}

/// `n` jobs, job `i` submitted at `i` s and (unless live) ended at `i + 0.5` s, each with two
/// events carrying `pad` bytes, plus one job-less event per job; `live` are queued.
fn fill(j: &mut Journal, n: u64, live: &[u64], pad: usize) {
    let padding = "x".repeat(pad);
    for id in 1..=n {
        let state = if live.contains(&id) { JobStatus::QUEUED } else { JobStatus::COMPLETED };
        j.row(&row(id, state, id * S));
        j.event(id * S, "submitted", Some(id), json!({"pad": padding}));
        j.event(id * S + 1, "health", None, json!({"pad": padding}));
        if !state.is_live() {
            j.event(id * S + S / 2, "finished", Some(id), json!({"pad": padding}));
        }
        if id % 500 == 0 {
            j.commit().unwrap();
        }
    }
    j.set_meta("next_job_id", &(n + 1).to_string());
    j.commit().unwrap();
}

fn retention(keep_jobs: Option<u64>, keep_events_s: Option<f64>) -> JournalConfig {
    JournalConfig { keep_finished_jobs: keep_jobs, keep_events_days: keep_events_s.map(|s| s / 86_400.0), ..JournalConfig::default() }
}

#[test]
fn compaction_deletes_old_events_and_old_ended_jobs_but_never_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let live = [5, 150, 290];
    let mut j = Journal::open(&path).unwrap();
    fill(&mut j, 300, &live, 10);
    j.event(301 * S, "daemon_stopped", None, json!({}));
    j.commit().unwrap();
    assert_eq!(j.counts().unwrap(), (300, 300 * 3 - 3 + 1));

    // Keep the 50 newest ended jobs and events of the last 100 s (now = 400 s: cutoff 300 s).
    let (report, event) = j.compact(400 * S, &retention(Some(50), Some(100.0)), 1_000_000).unwrap();
    assert!(!report.unfinished);
    let ended: Vec<u64> = (1..=300).filter(|i| !live.contains(i)).collect();
    let kept_ended: BTreeSet<u64> = ended[ended.len() - 50..].iter().copied().collect();
    let deleted: Vec<u64> = ended[..ended.len() - 50].to_vec();
    assert_eq!(report.jobs_deleted, deleted);
    let event = event.expect("a compaction that deleted rows says so");
    assert_eq!(event.kind, "journal_compacted");
    drop(j);

    // Reopened from the file: exactly the rows retention allows.
    let j = Journal::open(&path).unwrap();
    let ids: BTreeSet<u64> = j.jobs().unwrap().iter().map(|r| r.id).collect();
    let want: BTreeSet<u64> = kept_ended.iter().copied().chain(live).collect();
    assert_eq!(ids, want);
    for r in j.jobs().unwrap() {
        assert_eq!(r.state.is_live(), live.contains(&r.id));
    }
    let events = j.events(None).unwrap();
    for e in &events {
        let t_s = (e.at_unix_s - j.epoch_unix_us() as f64 / 1e6).round() as u64;
        if let Some(job) = e.job {
            assert!(ids.contains(&job), "event {} of deleted job {job} kept", e.seq);
        }
        let of_live_job = e.job.is_some_and(|job| live.contains(&job));
        let bookkeeping = matches!(e.kind.as_str(), "daemon_stopped" | "journal_compacted");
        assert!(t_s >= 300 || of_live_job || bookkeeping, "old event kept: {e:?}");
    }
    // Live jobs keep their (old) events; the latest event survives; the id counter too.
    for id in live {
        assert!(events.iter().any(|e| e.job == Some(id) && e.kind == "submitted"), "job {id} lost its submission event");
    }
    assert!(events.iter().any(|e| e.kind == "daemon_stopped"));
    assert_eq!(j.meta("next_job_id").unwrap().as_deref(), Some("301"));
    assert_eq!(j.last_t_us().unwrap(), 400 * S, "the compaction's own event is the latest");
    // Recent events of kept ended jobs are still there (job 300 ended at 300.5 s).
    assert!(events.iter().any(|e| e.job == Some(300) && e.kind == "finished"));
}

#[test]
fn the_latest_event_survives_any_retention_so_the_clock_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    fill(&mut j, 20, &[], 0);
    let last = j.last_t_us().unwrap();
    // Retention 0 s and no ended job kept: everything but the latest event may go.
    j.compact(last + 10 * S, &retention(Some(0), Some(0.0)), 1_000_000).unwrap();
    assert_eq!(j.counts().unwrap().0, 0);
    assert!(j.last_t_us().unwrap() >= last);
    // Nothing to delete: no event is written.
    let before = j.counts().unwrap();
    let (report, event) = j.compact(last + 20 * S, &retention(None, None), 1_000_000).unwrap();
    assert!(report.jobs_deleted.is_empty() && report.events_deleted == 0 && event.is_none());
    assert_eq!(j.counts().unwrap(), before);
}

#[test]
fn a_large_backlog_is_compacted_in_bounded_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    fill(&mut j, 100, &[], 0);
    let config = retention(Some(10), Some(5.0));
    let mut passes = 0;
    loop {
        let (report, _) = j.compact(120 * S, &config, 25).unwrap();
        assert!(report.jobs_deleted.len() <= 25);
        passes += 1;
        if !report.unfinished {
            break;
        }
        assert!(passes < 20, "compaction does not converge");
    }
    assert!(passes >= 4, "90 jobs at 25 a pass take 4 passes, took {passes}");
    let ids: Vec<u64> = j.jobs().unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, (91..=100).collect::<Vec<_>>());
}

#[test]
fn the_file_shrinks_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let wal = dir.path().join("journal.sqlite-wal");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut j = Journal::open(&path).unwrap();
    fill(&mut j, 3000, &[], 300);
    j.shrink().unwrap();
    let before = size(&path) + size(&wal);
    let (report, _) = j.compact(3000 * S, &retention(Some(100), Some(100.0)), 1_000_000).unwrap();
    assert_eq!(report.jobs_deleted.len(), 2900);
    let after_db = size(&path);
    let after_wal = size(&wal);
    eprintln!("journal of 3000 jobs / ~9000 events: {before} bytes before, {after_db} + WAL {after_wal} after keeping 100 jobs");
    assert!(after_db + after_wal < before / 10, "{before} -> {after_db} + {after_wal}");
    assert_eq!(after_wal, 0, "the WAL is truncated after a compaction");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn a_daemon_restarted_on_a_compacted_journal_finds_every_live_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 1, PolicySpec::named("fifo"));
    cfg.journal.keep_finished_jobs = Some(2);
    let rt = runtime();
    let (done, running, queued, running_pid) = rt.block_on(async {
        let (h, _join) = start(cfg.clone()).await.unwrap();
        let mut done = Vec::new();
        for _ in 0..4 {
            done.push(h.submit(sh("true"), "u").await.unwrap().id);
        }
        for &id in &done {
            assert_eq!(wait_done(&h, id).await.state, JobStatus::COMPLETED);
        }
        let running = h.submit(sh("sleep 2"), "u").await.unwrap().id;
        let queued = h.submit(sh("true"), "u").await.unwrap().id;
        let v = wait_state(&h, running, JobStatus::RUNNING).await;
        (done, running, queued, v.pid.unwrap())
    });
    // A crash, then a restart: the start-up compaction runs before anything else is asked.
    drop(rt);
    let rt = runtime();
    rt.block_on(async {
        let (h, _join) = start(cfg.clone()).await.unwrap();
        let journal = Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
        let ids: Vec<u64> = journal.jobs().unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![done[2], done[3], running, queued], "the two newest ended jobs and every live one");
        assert!(journal.events(Some("journal_compacted")).unwrap().len() == 1);
        assert!(h.show(done[0]).await.unwrap().is_none(), "a compacted job is forgotten by the daemon too");
        let adopted = h.show(running).await.unwrap().unwrap();
        assert_eq!((adopted.state, adopted.pid), (JobStatus::RUNNING, Some(running_pid)));
        assert_eq!(wait_done(&h, running).await.state, JobStatus::COMPLETED);
        assert_eq!(wait_done(&h, queued).await.state, JobStatus::COMPLETED);
        let next = h.submit(sh("true"), "u").await.unwrap().id;
        assert_eq!(next, queued + 1, "ids are not reused after their rows are deleted");
        h.shutdown().await.unwrap();
    });
}
