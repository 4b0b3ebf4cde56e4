//! What a panic in the daemon leaves behind. The daemon does not try to survive one: its state
//! after a panic mid-request is not known to match the journal, so the actor ends (the API's
//! `exec serve` then exits with the panic's message), its callers get an error rather than
//! waiting forever, and the journal holds exactly what was committed. The next start on the
//! same state directory succeeds and runs every committed job exactly once.
//!
//! The panic is injected (the `fault-injection` feature) where an unchecked conversion once
//! panicked: right after a job's process was spawned, its submission and launch committed, its
//! pid not yet journalled and its submitter not yet answered.

mod runtime_common;
use runtime_common::*;
use std::collections::HashMap;
use std::time::Duration;
use tessera_core::PolicySpec;
use tessera_exec::{start, ExecError, JobStatus, FAULT_PANIC_AFTER_SPAWN};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn a_panicking_daemon_stops_without_corrupting_its_journal_and_the_next_start_runs_every_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran.log");
    let job = |secs: f64| sh(&format!("echo \"$TESSERA_JOB_ID\" >> {}; sleep {secs}", ran.display()));
    let rt = runtime();
    let first = rt.block_on(async {
        let (h, join) = start(config(dir.path(), 2, PolicySpec::named("fifo"))).await.unwrap();
        let first = h.submit(job(1.0), "u").await.unwrap().id;
        wait_state(&h, first, JobStatus::RUNNING).await;
        let mut fatal = job(0.5);
        fatal.name = FAULT_PANIC_AFTER_SPAWN.into();
        // Its submission and launch are committed, then the daemon panics: no answer comes.
        let refused = tokio::time::timeout(Duration::from_secs(10), h.submit(fatal, "u")).await.expect("the caller is answered, not left waiting");
        assert!(matches!(refused, Err(ExecError::ShuttingDown)), "{refused:?}");
        let ended = tokio::time::timeout(Duration::from_secs(10), join).await.expect("the actor ends");
        assert!(ended.as_ref().is_err_and(|e| e.is_panic()), "{ended:?}");
        // Every later call fails at once too.
        let later = tokio::time::timeout(Duration::from_secs(5), h.submit(job(0.1), "u")).await.unwrap();
        assert!(matches!(later, Err(ExecError::ShuttingDown)), "{later:?}");
        first
    });
    // The processes outlive the executor, as after a crash.
    drop(rt);

    let conn = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    drop(conn);

    let rt = runtime();
    rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 2, PolicySpec::named("fifo"))).await.expect("the next start succeeds");
        let jobs = h.list().await.unwrap();
        let ids: Vec<u64> = jobs.iter().map(|j| j.id).collect();
        assert_eq!(ids, vec![first, first + 1], "the committed job is there, the refused one is not");
        for id in ids {
            let v = wait_done(&h, id).await;
            assert_eq!((v.state, v.exit_code, v.runs.saturating_sub(1)), (JobStatus::COMPLETED, Some(0), 0), "{v:#?}");
        }
        // The fatal job's pid was never journalled: it was found by its run token and adopted.
        let journal = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
        let adopted: Vec<Option<u64>> = journal.events(None).unwrap().into_iter().filter(|e| e.kind == "adopted").map(|e| e.job).collect();
        assert!(adopted.contains(&Some(first + 1)), "{adopted:?}");
        let next = h.submit(job(0.0), "u").await.unwrap().id;
        assert_eq!(next, first + 2, "no id is reused");
        wait_done(&h, next).await;
        h.shutdown().await.unwrap();
    });
    let mut count: HashMap<String, usize> = HashMap::new();
    for line in std::fs::read_to_string(&ran).unwrap().lines() {
        *count.entry(line.to_string()).or_default() += 1;
    }
    let once: HashMap<String, usize> = (first..first + 3).map(|id| (id.to_string(), 1)).collect();
    assert_eq!(count, once, "every job ran exactly once");
}
