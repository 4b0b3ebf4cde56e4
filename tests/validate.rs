//! End-to-end tests of `tessera validate` through the binary: the record it writes, its exit
//! status, its determinism, and the gate (`ValidationRecord::admits`) reading that record.

use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use tessera_core::validation::{GateRefusal, ValidationRecord};
use tessera_sim::scenario::Scenario;

mod support;
use support::run;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const TRACE_HEADER: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class";

/// 40 jobs on two T4s: one every 30 s, 45 or 90 s long, so some of them queue.
fn trace_text() -> String {
    let mut text = format!("{TRACE_HEADER}\n");
    for i in 0..40u32 {
        let duration = if i % 3 == 0 { 90 } else { 45 };
        text.push_str(&format!("{},{},team-{},{},1,,{duration},c\n", 100 + i, i * 30, i % 2, i % 2));
    }
    text
}

/// A scenario of the trace under two policies, the second with parameters.
fn scenario(dir: &Path) -> PathBuf {
    fs::write(dir.join("jobs.csv"), trace_text()).unwrap();
    let path = dir.join("small.toml");
    fs::write(
        &path,
        r#"name = "small"
seed = 11
replications = 3

[[cluster.nodes]]
count = 2
devices = { model = "T4", count = 1 }
cpu_cores = 8
mem_gib = 32

[workload]
trace = { format = "native", path = "jobs.csv" }

[models.estimate_error]
factor = { dist = "lognormal", mean = 1.0, sigma = 0.5 }

[[policies]]
name = "fifo"

[[policies]]
name = "priority"
label = "prio"
grace_s = 12
min_runtime_s = 5
"#,
    )
    .unwrap();
    path
}

fn read_record(path: &Path) -> ValidationRecord {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

/// The mean over replications of a column of summary.csv for one policy, from `tessera sim`.
fn sim_mean(scenario: &Path, policy: &str, column: &str, out: &Path) -> f64 {
    let o = run(&["sim", s(scenario), "--policy", policy, "--out", s(out), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == column).unwrap();
    let values: Vec<f64> = lines.map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect();
    assert_eq!(values.len(), 3);
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn a_passing_validation_writes_the_record_and_exits_0() {
    let dir = TempDir::new().unwrap();
    let scenario = scenario(dir.path());
    let record_path = dir.path().join("rec/prio.json");
    let o = run(&[
        "validate",
        s(&scenario),
        "--policy",
        "prio",
        "--require",
        "p95_wait_s < 3600",
        "--require",
        "avg_jct_s <= 20000",
        "--require",
        "completed == 40",
        "--out",
        s(&record_path),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("passed"), "{stdout}");
    let rec = read_record(&record_path);
    assert!(rec.passed);
    assert_eq!(rec.seed, 11);
    assert_eq!(rec.replications, 3);
    assert_eq!(rec.tessera_version, env!("CARGO_PKG_VERSION"));
    // The policy exactly as the scenario writes it.
    let spec = Scenario::load(&scenario).unwrap().policies[1].clone();
    assert_eq!(rec.policy, spec);
    assert_eq!(rec.policy.grace_s, Some(12.0));
    // The hashes of the scenario and of the trace it read.
    assert_eq!(rec.scenario.path, s(&scenario));
    assert_eq!(rec.scenario.sha256, tessera_sim::validate::sha256_hex(&fs::read(&scenario).unwrap()));
    assert_eq!(rec.inputs.len(), 1, "{:?}", rec.inputs);
    assert!(rec.inputs[0].path.ends_with("jobs.csv"));
    assert_eq!(rec.inputs[0].sha256, tessera_sim::validate::sha256_hex(trace_text().as_bytes()));
    // Each requirement carries the measured mean, which is the mean of what `tessera sim`
    // reports per replication (summary.csv rounds to 3 decimals).
    let wait = sim_mean(&scenario, "prio", "p95_wait_s", &dir.path().join("sim"));
    let jct = sim_mean(&scenario, "prio", "avg_jct_s", &dir.path().join("sim"));
    let r = &rec.requirements;
    assert_eq!(r.len(), 3);
    assert_eq!((r[0].metric.as_str(), r[0].op.as_str(), r[0].threshold), ("p95_wait_s", "<", 3600.0));
    assert!((r[0].value - wait).abs() < 1e-3, "{} vs {wait}", r[0].value);
    assert!((r[1].value - jct).abs() < 1e-3, "{} vs {jct}", r[1].value);
    assert!(wait > 0.0, "the trace is meant to make jobs wait");
    assert_eq!(r[2].value, 40.0);
    assert!(r.iter().all(|r| r.passed));
    assert_eq!(rec.metrics["p95_wait_s"], r[0].value);
    assert!(rec.metrics.contains_key("device_hours_per_job:T4") && rec.metrics.contains_key("events"));
}

#[test]
fn a_failing_validation_still_writes_the_record_and_exits_1() {
    let dir = TempDir::new().unwrap();
    let scenario = scenario(dir.path());
    let record_path = dir.path().join("fifo.json");
    let o = run(&[
        "validate",
        s(&scenario),
        "--policy",
        "fifo",
        "--require",
        "avg_wait_s<1",
        "--require",
        "utilization > 0",
        "--replications",
        "2",
        "--seed",
        "5",
        "--out",
        s(&record_path),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("FAIL  avg_wait_s<1"), "{stdout}");
    let rec = read_record(&record_path);
    assert!(!rec.passed);
    assert_eq!((rec.seed, rec.replications), (5, 2));
    assert!(!rec.requirements[0].passed && rec.requirements[0].value >= 1.0);
    assert!(rec.requirements[1].passed);
    let spec = Scenario::load(&scenario).unwrap().policies[0].clone();
    assert!(matches!(rec.admits(&spec), Err(GateRefusal::Failed { failed }) if failed == ["avg_wait_s<1"]));
}

#[test]
fn the_same_command_writes_the_same_bytes() {
    let dir = TempDir::new().unwrap();
    let scenario = scenario(dir.path());
    let run = |name: &str, threads: &str| {
        let path = dir.path().join(name);
        let o = run(&["validate", s(&scenario), "--policy", "prio", "--require", "p99_jct_s < 1e9", "--threads", threads, "--out", s(&path)]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        fs::read(path).unwrap()
    };
    let a = run("a.json", "1");
    assert_eq!(a, run("b.json", "1"));
    assert_eq!(a, run("c.json", "3"));
}

#[test]
fn the_record_admits_its_own_policy_and_refuses_a_changed_parameter() {
    let dir = TempDir::new().unwrap();
    let scenario = scenario(dir.path());
    let record_path = dir.path().join("prio.json");
    let o = run(&["validate", s(&scenario), "--policy", "prio", "--require", "jobs == 40", "--out", s(&record_path)]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let rec = read_record(&record_path);
    let spec = Scenario::load(&scenario).unwrap().policies[1].clone();
    assert_eq!(rec.admits(&spec), Ok(()));
    let mut changed = spec.clone();
    changed.min_runtime_s = Some(6.0);
    match rec.admits(&changed) {
        Err(GateRefusal::DifferentPolicy { field, validated, requested }) => {
            assert_eq!((field.as_str(), validated.as_str(), requested.as_str()), ("min_runtime_s", "5.0", "6.0"));
        }
        other => panic!("expected a refusal naming min_runtime_s, got {other:?}"),
    }
    let mut other_placement = spec.clone();
    other_placement.placement = Some("best-fit".into());
    assert!(matches!(rec.admits(&other_placement), Err(GateRefusal::DifferentPolicy { field, .. }) if field == "placement"));
}

#[test]
fn a_changed_trace_changes_its_hash() {
    let dir = TempDir::new().unwrap();
    let scenario = scenario(dir.path());
    let validate = |name: &str| {
        let path = dir.path().join(name);
        let o = run(&["validate", s(&scenario), "--policy", "fifo", "--require", "jobs >= 1", "--replications", "1", "--out", s(&path)]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        read_record(&path)
    };
    let before = validate("before.json");
    fs::write(dir.path().join("jobs.csv"), trace_text().replace(",90,c", ",91,c")).unwrap();
    let after = validate("after.json");
    assert_eq!(before.scenario, after.scenario);
    assert_ne!(before.inputs[0].sha256, after.inputs[0].sha256);
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let dir = TempDir::new().unwrap();
    let scenario = scenario(dir.path());
    let record_path = dir.path().join("never.json");
    let cases: &[(&[&str], &str)] = &[
        (&["--policy", "fifo", "--require", "p95_wait_s = 3"], "--require `p95_wait_s = 3`: `=` is not an operator"),
        (&["--policy", "fifo", "--require", "p95_wait_s < soon"], "`soon` is not a number"),
        (&["--policy", "fifo", "--require", "p95_wait_s < NaN"], "--require `p95_wait_s < NaN`: the threshold is NaN"),
        (&["--policy", "fifo", "--require", "p95_wiat_s < 3"], "unknown metric `p95_wiat_s`; known metrics: jobs, completed, avg_jct_s"),
        (&["--policy", "fifo", "--require", "wall_s < 3"], "measures the host"),
        (&["--policy", "lifo", "--require", "jobs > 0"], "`--policy lifo` matches no policy of the scenario; its labels are: fifo, prio"),
        (&["--policy", "fifo"], "--require"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["validate", s(&scenario), "--out", s(&record_path)];
        all.extend_from_slice(args);
        let o = run(&all);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(!record_path.exists(), "no record is written without a verdict");
    let o = run(&["validate", s(&dir.path().join("missing.toml")), "--policy", "fifo", "--require", "jobs > 0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.toml"));
}
