//! The validated-policy gate at start and at run time, and the export of what ran.

mod runtime_common;
use runtime_common::*;
use std::collections::BTreeMap;
use tessera_core::validation::{FileHash, RequirementResult, ValidationRecord, VALIDATION_RECORD_VERSION};
use tessera_core::PolicySpec;
use tessera_exec::{start, ExecError, JobStatus};

fn record(policy: PolicySpec, passed: bool) -> ValidationRecord {
    ValidationRecord {
        record_version: VALIDATION_RECORD_VERSION,
        fingerprint: tessera_core::validation::PolicyFingerprint { spec: policy.clone(), ..Default::default() },
        policy,
        scenario: FileHash { path: "scenarios/quickstart.toml".into(), sha256: "00".into() },
        inputs: vec![],
        tessera_version: "0.1.0".into(),
        seed: 1,
        replications: 2,
        metrics: BTreeMap::new(),
        requirements: vec![RequirementResult { expr: "p95_wait_s < 60".into(), metric: "p95_wait_s".into(), op: "<".into(), threshold: 60.0, value: 3.0, passed }],
        passed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_refuses_unvalidated_policies_at_start_and_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 1, PolicySpec::named("fifo"));
    c.allow_unvalidated = false;
    match start(c.clone()).await {
        Err(ExecError::Gate(m)) => assert!(m.contains("no validation record"), "{m}"),
        other => panic!("expected a gate refusal, got {:?}", other.map(|_| ())),
    }
    let rec_path = dir.path().join("fifo.validation.json");
    std::fs::write(&rec_path, serde_json::to_string(&record(PolicySpec::named("fifo"), true)).unwrap()).unwrap();
    c.validation_record = Some(rec_path);
    let (h, _join) = start(c).await.unwrap();
    let mut priority = PolicySpec::named("priority");
    priority.grace_s = Some(1.0);
    let e = h.set_policy(priority.clone(), Some(record(PolicySpec::named("priority"), true)), false).await.unwrap_err();
    assert!(matches!(&e, ExecError::Gate(m) if m.contains("grace_s")), "{e}");
    let e = h.set_policy(priority.clone(), Some(record(priority.clone(), false)), false).await.unwrap_err();
    assert!(matches!(&e, ExecError::Gate(m) if m.contains("failed")), "{e}");
    // A queued job survives the swap and runs under the new policy.
    let blocker = h.submit(sh("sleep 0.5"), "u").await.unwrap();
    wait_state(&h, blocker.id, JobStatus::RUNNING).await;
    let queued = h.submit(sh("echo after"), "u").await.unwrap();
    h.set_policy(priority.clone(), Some(record(priority.clone(), true)), false).await.unwrap();
    assert_eq!(h.metrics().policy_label, "priority");
    assert_eq!(h.show(blocker.id).await.unwrap().unwrap().state, JobStatus::RUNNING, "the swap leaves running jobs alone");
    let v = wait_done(&h, queued.id).await;
    assert_eq!(v.state, JobStatus::COMPLETED);
    assert_eq!(v.launch_reason.unwrap()["policy"], "priority");
    assert_eq!(wait_done(&h, blocker.id).await.state, JobStatus::COMPLETED);
    // Unvalidated, but allowed: journalled as such.
    h.set_policy(PolicySpec::named("sjf"), None, true).await.unwrap();
    let j = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
    let policies = j.events(Some("policy")).unwrap();
    assert_eq!(policies.last().unwrap().detail["admission"]["admitted_by"], "unvalidated");
    assert_eq!(policies[policies.len() - 2].detail["admission"]["admitted_by"], "record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_exports_as_a_native_trace_and_a_decision_log() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
    let mut a = sh("sleep 0.3");
    a.tenant = "team, a".into();
    let a = h.submit(a, "u").await.unwrap();
    let b = h.submit(sh("exit 2"), "u").await.unwrap();
    wait_done(&h, a.id).await;
    wait_done(&h, b.id).await;
    let journal = dir.path().join("journal.sqlite");
    let csv = tessera_exec::export::export_trace(&journal).unwrap();
    let path = dir.path().join("trace.csv");
    std::fs::write(&path, &csv).unwrap();
    let jobs = tessera_traces::native::load_native_csv(&path).unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].tenant, "team, a");
    assert_eq!(jobs[0].devices, 1.0);
    assert!(jobs[0].duration_s >= 0.3 && jobs[0].duration_s < 2.0, "{}", jobs[0].duration_s);
    assert_eq!(jobs[0].outcome.map(|o| o.as_str()), Some("completed"));
    assert_eq!(jobs[1].outcome.map(|o| o.as_str()), Some("failed"));
    let second: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| second[header.iter().position(|h| *h == name).unwrap()];
    let wait: f64 = col("wait_s").parse().unwrap();
    assert!(wait >= 0.25, "job 2 waited for job 1: {wait}");
    let decisions = tessera_exec::export::export_decisions(&journal).unwrap();
    let lines: Vec<serde_json::Value> = decisions.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{decisions}");
    assert_eq!(lines[0]["provenance"]["decision"]["decision"], "launch");
    assert_eq!(lines[0]["provenance"]["policy"]["spec"]["name"], "fifo");
    assert_eq!(lines[0]["provenance"]["devices"][0], "cpu0");
    let e = tessera_exec::export::export_trace(&dir.path().join("missing.sqlite")).unwrap_err();
    assert!(e.to_string().contains("missing.sqlite"), "{e}");
}
