//! Health: real readings of this machine against thresholds it breaks, then relaxed at run
//! time; drains.

mod runtime_common;
use runtime_common::*;
use std::time::Duration;
use tessera_core::PolicySpec;
use tessera_exec::config::HealthConfig;
use tessera_exec::{start, JobStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_past_its_threshold_is_cordoned_and_returns_when_relaxed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 1, PolicySpec::named("fifo"));
    // Any machine uses some memory: this trips on real readings.
    c.health = HealthConfig { interval_s: 0.1, max_mem_used_fraction: Some(0.0), ..HealthConfig::default() };
    let (h, _join) = start(c).await.unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let d = &h.devices().await.unwrap()[0];
        if d.unhealthy {
            let reading = d.reading.as_ref().unwrap();
            assert!(reading.mem_used_fraction.unwrap() > 0.0);
            assert!(d.health_reason.as_deref().unwrap().contains("max_mem_used_fraction 0"), "{d:?}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "never cordoned: {d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let job = h.submit(sh("echo ran"), "u").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = h.show(job.id).await.unwrap().unwrap();
    assert_eq!(v.state, JobStatus::QUEUED, "no job on a cordoned device");
    assert_eq!(v.wait_reason.as_ref().unwrap()["kind"], "devices");
    h.set_health(HealthConfig { interval_s: 0.1, max_mem_used_fraction: Some(1.0), ..HealthConfig::default() }).await.unwrap();
    let v = wait_done(&h, job.id).await;
    assert_eq!(v.state, JobStatus::COMPLETED);
    assert!(!h.devices().await.unwrap()[0].unhealthy);
    let m = h.metrics();
    assert!(m.devices[0].healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_device_requeues_its_job_and_takes_no_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(config(dir.path(), 2, PolicySpec::named("fifo"))).await.unwrap();
    let a = h.submit(sh("sleep 0.6; echo a"), "u").await.unwrap();
    let a = wait_state(&h, a.id, JobStatus::RUNNING).await;
    let held = a.devices[0].clone();
    h.drain(&held).await.unwrap();
    // The job moves to the other device.
    let v = wait_for(&h, a.id, Duration::from_secs(10), |v| v.state == JobStatus::RUNNING && v.devices[0] != held).await;
    assert_eq!(v.runs.saturating_sub(1), 1);
    // A drain requeues the job: a preemption, as the simulator counts it.
    assert_eq!((v.preemptions, v.restarts), (1, 0), "{v:#?}");
    let b = h.submit(sh("sleep 0.2"), "u").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.show(b.id).await.unwrap().unwrap().state, JobStatus::QUEUED, "the drained device takes nothing");
    h.undrain(&held).await.unwrap();
    let b = wait_done(&h, b.id).await;
    assert_eq!(b.devices, vec![held.clone()]);
    assert_eq!(wait_done(&h, a.id).await.state, JobStatus::COMPLETED);
    assert!(matches!(h.drain("nope").await, Err(tessera_exec::ExecError::NotFound(_))));
    // Draining the node stops everything on it until it is back.
    let node = h.devices().await.unwrap()[0].node.clone();
    let c = h.submit(sh("sleep 0.4"), "u").await.unwrap();
    wait_state(&h, c.id, JobStatus::RUNNING).await;
    h.drain(&node).await.unwrap();
    let v = wait_state(&h, c.id, JobStatus::QUEUED).await;
    assert_eq!(v.runs.saturating_sub(1), 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.show(c.id).await.unwrap().unwrap().state, JobStatus::QUEUED);
    h.undrain(&node).await.unwrap();
    let v = wait_done(&h, c.id).await;
    assert_eq!((v.state, v.runs.saturating_sub(1)), (JobStatus::COMPLETED, 1));
}
