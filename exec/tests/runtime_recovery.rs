//! A crash: the daemon is aborted without any cleanup while jobs run (its runtime dropped,
//! so its processes stay alive), and a new daemon on the same state dir must account for every
//! job exactly once: adopting those still running, collecting the status of those that ended
//! while it was down, running the queued ones, and running none twice.

mod runtime_common;
use runtime_common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tessera_core::PolicySpec;
use tessera_exec::{start, JobStatus};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn a_killed_daemon_restarted_on_its_journal_loses_no_job_and_runs_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("ran.log");
    let job = |secs: f64| sh(&format!("echo \"$$ $TESSERA_JOB_ID\" >> {}; sleep {secs}", shared.display()));
    // Two CPU devices: job 1 (short) and job 2 (long) start, jobs 3-5 wait.
    let rt = runtime();
    let (ids, pid_long) = rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 2, PolicySpec::named("fifo"))).await.unwrap();
        let mut ids = Vec::new();
        for secs in [0.4, 2.5, 0.3, 0.3, 0.3] {
            ids.push(h.submit(job(secs), "u").await.unwrap().id);
        }
        let long = wait_state(&h, ids[1], JobStatus::RUNNING).await;
        wait_state(&h, ids[0], JobStatus::RUNNING).await;
        assert_eq!(h.show(ids[2]).await.unwrap().unwrap().state, JobStatus::QUEUED);
        (ids, long.pid.unwrap())
    });
    // The crash: every task of the daemon is dropped mid-flight; nothing is cleaned up.
    drop(rt);
    assert!(std::fs::metadata(format!("/proc/{pid_long}")).is_ok(), "the long job outlives the executor");
    // Job 1 ends while no executor runs.
    std::thread::sleep(Duration::from_millis(700));

    let rt = runtime();
    rt.block_on(async {
        let t0 = Instant::now();
        let (h, _join) = start(config(dir.path(), 2, PolicySpec::named("fifo"))).await.unwrap();
        let long = h.show(ids[1]).await.unwrap().unwrap();
        assert_eq!(long.state, JobStatus::RUNNING, "adopted: {long:#?}");
        assert_eq!(long.pid, Some(pid_long));
        for &id in &ids {
            let v = wait_done(&h, id).await;
            assert_eq!(v.state, JobStatus::COMPLETED, "{v:#?}");
            assert_eq!(v.exit_code, Some(0));
            assert_eq!(v.runs.saturating_sub(1), 0, "no job was started a second time");
        }
        assert!(t0.elapsed() < Duration::from_secs(10));
        let mut kinds: HashMap<String, Vec<u64>> = HashMap::new();
        let journal = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
        for e in journal.events(None).unwrap() {
            kinds.entry(e.kind).or_default().extend(e.job);
        }
        assert_eq!(kinds["adopted"], vec![ids[1]]);
        assert_eq!(kinds["ended_while_down"], vec![ids[0]]);
        h.shutdown().await.unwrap();
    });
    let ran = std::fs::read_to_string(&shared).unwrap();
    let mut count: HashMap<u64, usize> = HashMap::new();
    for line in ran.lines() {
        let id: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        *count.entry(id).or_default() += 1;
    }
    for &id in &ids {
        assert_eq!(count.get(&id), Some(&1), "job {id} ran {:?} times:\n{ran}", count.get(&id));
    }
    assert_eq!(ran.lines().count(), ids.len());
}

#[test]
fn the_timeline_continues_across_restarts_and_ids_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (first, end1) = rt.block_on(async {
        let (h, join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
        let v = h.submit(sh("true"), "u").await.unwrap();
        let v = wait_done(&h, v.id).await;
        h.shutdown().await.unwrap();
        join.await.unwrap().unwrap();
        (v.id, v.end_unix_s.unwrap())
    });
    rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
        let old = h.show(first).await.unwrap().unwrap();
        assert_eq!(old.state, JobStatus::COMPLETED);
        assert_eq!(old.end_unix_s, Some(end1));
        let v = h.submit(sh("true"), "u").await.unwrap();
        assert_eq!(v.id, first + 1);
        assert!(v.submit_unix_s >= end1);
    });
}

/// Group commit: submissions that arrive together are journalled in one transaction, each
/// answered only once it is committed. A hard stop right after the answers, and a restart on
/// the same state dir, must find every one of them, each once, and run each once.
#[test]
fn a_batch_of_concurrent_submissions_is_all_journalled_and_none_twice() {
    const N: usize = 48;
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran.log");
    // One thread: every submission below is in the daemon's channel before the daemon runs
    // again, so they form one batch whatever the machine's speed.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (ids, commits) = rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 2, PolicySpec::named("fifo"))).await.unwrap();
        // Nothing runs before the crash: every job must come back from the journal alone.
        h.drain("cpu0").await.unwrap();
        h.drain("cpu1").await.unwrap();
        let commits_before = h.metrics().journal_commit_latency.count;
        let submits = (0..N).map(|i| {
            let mut s = sh(&format!("echo \"$TESSERA_JOB_ID\" >> {}", ran.display()));
            s.name = format!("batch-{i}");
            h.submit(s, "u")
        });
        let views = futures_util::future::join_all(submits).await;
        let ids: Vec<u64> = views.into_iter().map(|v| v.unwrap().id).collect();
        let m = h.metrics();
        (ids, m.journal_commit_latency.count - commits_before)
    });
    assert_eq!(commits, 1, "{N} submissions waiting together share one commit");
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), N, "distinct ids: {ids:?}");
    // The crash: no shutdown, no last commit.
    drop(rt);

    let rt = runtime();
    rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 2, PolicySpec::named("fifo"))).await.unwrap();
        let jobs = h.list().await.unwrap();
        assert_eq!(jobs.len(), N, "{jobs:#?}");
        for (i, &id) in ids.iter().enumerate() {
            let v = jobs.iter().find(|v| v.id == id).unwrap_or_else(|| panic!("job {id} lost"));
            assert_eq!(v.name, format!("batch-{i}"));
            assert_eq!(v.state, JobStatus::QUEUED);
        }
        let journal = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
        let mut submitted: Vec<u64> = journal.events(Some("submitted")).unwrap().into_iter().filter_map(|e| e.job).collect();
        submitted.sort_unstable();
        assert_eq!(submitted, sorted, "one `submitted` event per job");
        h.undrain("cpu0").await.unwrap();
        h.undrain("cpu1").await.unwrap();
        for &id in &ids {
            let v = wait_done(&h, id).await;
            assert_eq!((v.state, v.runs.saturating_sub(1)), (JobStatus::COMPLETED, 0), "{v:#?}");
        }
        let next = h.submit(sh("true"), "u").await.unwrap().id;
        assert!(next > *sorted.last().unwrap(), "ids are not reused: {next}");
        h.shutdown().await.unwrap();
    });
    let mut ran: Vec<u64> = std::fs::read_to_string(&ran).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    ran.sort_unstable();
    assert_eq!(ran, sorted, "each job ran exactly once");
}

/// A journal holding rows no validation admits today (as an older version, which accepted any
/// finite number, could write them): a running job whose time limit no timer can hold (1e20 s
/// once panicked every restart while re-arming it) and a queued one stating 1e300 s; and a
/// queued job whose row does not parse at all. The daemon starts, quarantines all three (ended
/// `failed` with the reason, a `quarantined` event, the running one's process killed), runs
/// the valid job behind them, and starts again after that.
#[test]
fn a_journal_row_beyond_the_bounds_is_quarantined_at_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (limit_job, stated_job, good_job, unreadable_job, pid) = rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
        let mut long = sh("sleep 45");
        long.time_limit_s = Some(30.0);
        let a = h.submit(long, "u").await.unwrap().id;
        let b = h.submit(sh("exit 0"), "u").await.unwrap().id;
        let c = h.submit(sh("exit 0"), "u").await.unwrap().id;
        let d = h.submit(sh("exit 0"), "u").await.unwrap().id;
        let running = wait_state(&h, a, JobStatus::RUNNING).await;
        assert_eq!(h.show(b).await.unwrap().unwrap().state, JobStatus::QUEUED);
        (a, b, c, d, running.pid.unwrap())
    });
    drop(rt);

    // What an older version could have journalled.
    let conn = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
    for (id, key, value) in [(limit_job, "time_limit_s", 1e20), (stated_job, "stated_duration_s", 1e300)] {
        let text: String = conn.query_row("SELECT row FROM jobs WHERE id = ?1", [id], |r| r.get(0)).unwrap();
        let mut row: serde_json::Value = serde_json::from_str(&text).unwrap();
        row["submission"][key] = serde_json::json!(value);
        conn.execute("UPDATE jobs SET row = ?1 WHERE id = ?2", rusqlite::params![row.to_string(), id]).unwrap();
    }
    let text: String = conn.query_row("SELECT row FROM jobs WHERE id = ?1", [unreadable_job], |r| r.get(0)).unwrap();
    let mut row: serde_json::Value = serde_json::from_str(&text).unwrap();
    row["runs"] = serde_json::json!("many");
    conn.execute("UPDATE jobs SET row = ?1 WHERE id = ?2", rusqlite::params![row.to_string(), unreadable_job]).unwrap();
    drop(conn);

    let rt = runtime();
    rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.expect("the daemon starts on the journal");
        for (id, field) in [(limit_job, "time_limit_s"), (stated_job, "stated_duration_s")] {
            let v = h.show(id).await.unwrap().unwrap();
            assert_eq!(v.state, JobStatus::FAILED, "{v:#?}");
            let error = v.error.unwrap_or_default();
            assert!(error.contains("quarantined") && error.contains(field) && error.contains("100 years"), "{error}");
        }
        let v = h.show(unreadable_job).await.unwrap().unwrap();
        assert_eq!((v.state, v.owner.as_str()), (JobStatus::FAILED, "u"), "{v:#?}");
        let error = v.error.unwrap_or_default();
        assert!(error.contains("quarantined") && error.contains("does not parse") && error.contains("runs"), "{error}");
        assert_eq!(wait_done(&h, good_job).await.state, JobStatus::COMPLETED, "the valid job behind them runs");
        let journal = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
        let quarantined: Vec<(Option<u64>, String)> =
            journal.events(None).unwrap().into_iter().filter(|e| e.kind == "quarantined").map(|e| (e.job, e.detail["field"].as_str().unwrap_or("").to_string())).collect();
        assert_eq!(
            quarantined,
            vec![(Some(unreadable_job), String::new()), (Some(limit_job), "time_limit_s".to_string()), (Some(stated_job), "stated_duration_s".to_string())]
        );
        let next = h.submit(sh("exit 0"), "u").await.unwrap().id;
        assert_eq!(next, unreadable_job + 1, "no id is reused");
        h.shutdown().await.unwrap();
    });
    drop(rt);
    // Its process was killed (a zombie of this test process at most: it was our child).
    let t0 = Instant::now();
    let gone = || std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')));
    while !gone() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(), "the quarantined job's process {pid} still runs");

    // Quarantined rows are ended: the next start has nothing left to refuse.
    let rt = runtime();
    rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
        assert_eq!(h.show(limit_job).await.unwrap().unwrap().state, JobStatus::FAILED);
        h.shutdown().await.unwrap();
    });
}

/// Counters read back from the journal at their type's limit neither overflow (a panic in a
/// debug build, a wrap in a release one) nor lead to an id being used twice: the job runs, and
/// when no id is left a submission is refused.
#[test]
fn journalled_counters_at_their_limit_neither_overflow_nor_reuse_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let id = rt.block_on(async {
        let (h, join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
        h.drain("cpu0").await.unwrap();
        let id = h.submit(sh("exit 0"), "u").await.unwrap().id;
        h.shutdown().await.unwrap();
        join.await.unwrap().unwrap();
        id
    });
    let conn = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
    let text: String = conn.query_row("SELECT row FROM jobs WHERE id = ?1", [id], |r| r.get(0)).unwrap();
    let mut row: serde_json::Value = serde_json::from_str(&text).unwrap();
    row["runs"] = serde_json::json!(u32::MAX);
    row["preemptions"] = serde_json::json!(u32::MAX);
    conn.execute("UPDATE jobs SET row = ?1 WHERE id = ?2", rusqlite::params![row.to_string(), id]).unwrap();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'next_job_id'", [u64::MAX.to_string()]).unwrap();
    drop(conn);
    rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
        h.undrain("cpu0").await.unwrap();
        assert_eq!(wait_done(&h, id).await.state, JobStatus::COMPLETED);
        let refused = h.submit(sh("exit 0"), "u").await.unwrap_err();
        assert!(refused.to_string().contains("no job id is left"), "{refused}");
        assert_eq!(h.list().await.unwrap().len(), 1, "nothing was overwritten");
        h.shutdown().await.unwrap();
    });
}
