//! The Pollux loader: the published workloads with work stated by the caller, and broken input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tessera_traces::pollux;
use tessera_traces::TraceError;

const HEADER: &str = "name,time,application,num_replicas,batch_size";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pollux").join(name)
}

fn shared(rel: &str) -> Option<PathBuf> {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/traces")).join(rel);
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: {} not found", path.display());
        None
    }
}

/// Seconds of work for each of Pollux's six applications (made-up numbers for the tests).
fn work() -> BTreeMap<String, f64> {
    [("bert", 1800.0), ("cifar10", 900.0), ("deepspeech2", 2400.0), ("imagenet", 36000.0), ("ncf", 300.0), ("yolov3", 7200.0)]
        .into_iter()
        .map(|(a, s)| (a.to_string(), s))
        .collect()
}

fn err(content: &str, work_s: &BTreeMap<String, f64>) -> TraceError {
    let e = pollux::parse(content.as_bytes(), Path::new("workload.csv"), work_s).expect_err("should refuse");
    assert!(e.to_string().starts_with("workload.csv: "), "{e}");
    e
}

#[test]
fn every_published_workload_loads_with_its_job_count() {
    let Some(root) = shared("pollux") else { return };
    let work = work();
    for (dir, n) in [
        ("workloads", 160),
        ("workloads-realistic", 160),
        ("workloads-0.5", 80),
        ("workloads-1.5", 240),
        ("workloads-2.0", 320),
    ] {
        for i in 1..=8 {
            let path = root.join(dir).join(format!("workload-{i}.csv"));
            let jobs = pollux::load(&path, &work).unwrap();
            assert_eq!(jobs.len(), n, "{}", path.display());
            assert!(jobs.iter().enumerate().all(|(k, j)| j.job_id == k as u64 + 1));
            assert!(jobs.iter().all(|j| j.tenant == "pollux" && j.duration_s == work[&j.job_class] && j.devices >= 1.0));
        }
    }
    let jobs = pollux::load(&root.join("workloads/workload-6.csv"), &work).unwrap();
    assert!(jobs.windows(2).all(|w| w[0].submit_s <= w[1].submit_s));
}

#[test]
fn the_fixture_maps_application_and_replicas() {
    let jobs = pollux::load(&fixture("workload-1.csv"), &work()).unwrap();
    let got: Vec<_> = jobs
        .iter()
        .map(|j| (j.job_id, j.submit_s, j.job_class.as_str(), j.devices, j.duration_s, j.line))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 107.0, "cifar10", 6.0, 900.0, 2),
            (2, 110.0, "deepspeech2", 6.0, 2400.0, 3),
            (3, 135.0, "ncf", 1.0, 300.0, 4),
            (4, 262.0, "deepspeech2", 12.0, 2400.0, 5),
            (5, 356.0, "cifar10", 16.0, 900.0, 6),
        ]
    );
}

#[test]
fn an_application_without_work_is_named_with_the_known_ones() {
    let mut partial = work();
    partial.remove("ncf");
    let e = pollux::load(&fixture("workload-1.csv"), &partial).unwrap_err();
    match &e {
        TraceError::Invalid { line: 4, column, message, .. } => {
            assert_eq!(column, "column `application`");
            assert!(message.contains("\"ncf\""), "{message}");
            assert!(message.contains("known: bert, cifar10, deepspeech2, imagenet, yolov3"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("workload-1.csv: line 4, column `application`"), "{e}");
    let e = err(&format!("{HEADER}\na-0,1,a,1,8\n"), &BTreeMap::new());
    assert!(e.to_string().contains("the work map is empty"), "{e}");
    let mut bad = work();
    bad.insert("bert".into(), f64::NAN);
    assert!(matches!(err(&format!("{HEADER}\nb-0,1,bert,1,8\n"), &bad), TraceError::Invalid { line: 2, .. }));
}

#[test]
fn unsorted_rows_are_sorted_and_numbered() {
    let jobs = pollux::parse(
        format!("{HEADER}\nncf-0,50,ncf,1,8\nbert-1,20,bert,2,8\nbert-2,20,bert,4,8\n").as_bytes(),
        Path::new("w.csv"),
        &work(),
    )
    .unwrap();
    let got: Vec<_> = jobs.iter().map(|j| (j.job_id, j.line, j.devices)).collect();
    assert_eq!(got, [(1, 3, 2.0), (2, 4, 4.0), (3, 2, 1.0)]);
}

#[test]
fn broken_input_is_named() {
    let w = work();
    assert!(matches!(err("", &w), TraceError::Empty { .. }));
    assert!(matches!(err(&format!("{HEADER}\n"), &w), TraceError::NoJobs { .. }));
    assert!(matches!(
        err("name,time,num_replicas,batch_size\nx-0,1,1,8\n", &w),
        TraceError::MissingColumn { line: 1, column: "application", .. }
    ));
    match err(&format!("{HEADER}\nncf-0,1,ncf,1,8\nncf-1,2,ncf,1,8\nncf-0,3,ncf,1,8\n"), &w) {
        TraceError::Invalid { line: 4, column, message, .. } => {
            assert_eq!(column, "column `name`");
            assert!(message.contains("line 2"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    for (row, want) in [
        ("x-9,noon,ncf,1,8", "time"),
        ("x-9,5,ncf,0,8", "num_replicas"),
        ("x-9,5,ncf,1.5,8", "num_replicas"),
        (",5,ncf,1,8", "name"),
        ("x-9,5,,1,8", "application"),
    ] {
        match err(&format!("{HEADER}\nncf-0,1,ncf,1,8\n{row}\n"), &w) {
            TraceError::BadField { line: 3, column, .. } if column == want => {}
            other => panic!("{row}: {other:?}"),
        }
    }
    assert!(matches!(err(&format!("{HEADER}\nncf-0,1,ncf,1\n"), &w), TraceError::FieldCount { line: 2, .. }));
}
