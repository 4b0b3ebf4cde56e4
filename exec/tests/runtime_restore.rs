//! A crash under `las`: the restarted daemon restores each job's attained service from the
//! journal (table `job_state`), so the queue order after the restart is the one LAS had
//! before it. Real processes; the crash drops the daemon's runtime with no cleanup (its
//! processes stay alive, nothing more is committed), as in `runtime_recovery.rs`.

mod runtime_common;
use runtime_common::*;
use std::time::Duration;
use tessera_core::PolicySpec;
use tessera_exec::{start, JobStatus};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One device; a job that has attained 1 device-second drops to LAS's second queue.
fn las() -> PolicySpec {
    let mut p = PolicySpec::named("las");
    p.thresholds_device_s = Some(vec![1.0]);
    p.grace_s = Some(0.2);
    p
}

/// Launch decisions in journal order, as job ids.
fn launches(dir: &std::path::Path) -> Vec<u64> {
    let journal = tessera_exec::journal::Journal::open_read_only(&dir.join("journal.sqlite")).unwrap();
    journal.events(Some("decision")).unwrap().into_iter().filter(|e| e.detail["decision"]["decision"] == "launch").filter_map(|e| e.job).collect()
}

#[test]
fn after_a_crash_las_orders_by_the_service_attained_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (a, c) = rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 1, las())).await.unwrap();
        // A runs; B waits. After 1 s A passes the threshold, B preempts it, and A goes back
        // to the queue with ~1 device-second attained (the second LAS queue).
        let a = h.submit(sh("sleep 1.5"), "u").await.unwrap();
        wait_state(&h, a.id, JobStatus::RUNNING).await;
        let b = h.submit(sh("sleep 0.8"), "u").await.unwrap();
        wait_for(&h, b.id, Duration::from_secs(10), |v| v.state == JobStatus::RUNNING).await;
        let a_view = h.show(a.id).await.unwrap().unwrap();
        assert_eq!(a_view.state, JobStatus::QUEUED, "A was preempted for B: {a_view:#?}");
        // C arrives after A: FIFO would run A first, LAS runs C (no service yet) first.
        let c = h.submit(sh("sleep 0.5"), "u").await.unwrap();
        assert_eq!(c.state, JobStatus::QUEUED);
        (a.id, c.id)
    });
    // The crash, while B runs and A and C wait.
    drop(rt);

    let rt = runtime();
    rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 1, las())).await.unwrap();
        let av = wait_done(&h, a).await;
        let cv = wait_done(&h, c).await;
        assert_eq!((av.state, cv.state), (JobStatus::COMPLETED, JobStatus::COMPLETED), "{av:#?}\n{cv:#?}");
        let order = launches(dir.path());
        let c_at = order.iter().position(|&j| j == c).expect("C launched");
        let a_last = order.iter().rposition(|&j| j == a).expect("A launched");
        assert!(c_at < a_last, "C (no service) must start before A (1 device-second) after the restart: launches {order:?}");
        // A's second run was ordered by the service it had before the crash.
        let reason = &av.launch_reason.expect("A's launch reason")["order"];
        assert_eq!(reason["rule"], "least_attained", "{reason}");
        assert_eq!(reason["queue"], 1, "{reason}");
        assert!(reason["attained_device_s"].as_f64().unwrap() >= 1.0, "{reason}");
        h.shutdown().await.unwrap();
    });
}

/// A saved state that does not parse costs the job its finer ordering state, not everyone's
/// start: it is discarded with an event naming the table, the job and the error, and the job
/// is restored from its row.
#[test]
fn a_broken_saved_state_is_discarded_with_its_row_named_and_the_job_restored_from_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let id = rt.block_on(async {
        let (h, join) = start(config(dir.path(), 1, las())).await.unwrap();
        h.drain("cpu0").await.unwrap();
        let v = h.submit(sh("true"), "u").await.unwrap();
        h.shutdown().await.unwrap();
        join.await.unwrap().unwrap();
        v.id
    });
    {
        let conn = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
        let n = conn.execute("UPDATE job_state SET state = '{\"submitted\": \"soon\"}' WHERE id = ?1", [id as i64]).unwrap();
        assert_eq!(n, 1, "the queued job's state was journalled");
    }
    rt.block_on(async {
        let (h, _join) = start(config(dir.path(), 1, las())).await.expect("the daemon starts");
        let journal = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
        let discarded: Vec<_> = journal.events(None).unwrap().into_iter().filter(|e| e.kind == "saved_state_discarded").collect();
        assert_eq!(discarded.len(), 1, "{discarded:?}");
        assert_eq!((discarded[0].job, discarded[0].detail["table"].as_str()), (Some(id), Some("job_state")), "{discarded:?}");
        assert!(discarded[0].detail["error"].as_str().unwrap().contains("soon"), "{discarded:?}");
        assert_eq!(h.show(id).await.unwrap().unwrap().state, JobStatus::QUEUED);
        h.undrain("cpu0").await.unwrap();
        assert_eq!(wait_done(&h, id).await.state, JobStatus::COMPLETED);
        h.shutdown().await.unwrap();
    });
}
