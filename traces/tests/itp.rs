//! The ITP loader: both variants, whole directories, the published clusters and broken input.

use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera_traces::itp;
use tessera_traces::TraceError;

const RAW: &str = "job_id,submission_time,duration,num_gpu";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/itp").join(name)
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

fn err(content: &str) -> TraceError {
    let e = itp::parse(content.as_bytes(), Path::new("cluster99.csv"), "cluster99").expect_err("should refuse");
    assert!(e.to_string().starts_with("cluster99.csv: "), "{e}");
    e
}

#[test]
fn the_ten_raw_clusters_hold_69351_jobs() {
    let Some(dir) = shared("microsoft-itp-elasticflow/raw-traces") else { return };
    let started = Instant::now();
    let jobs = itp::load_dir(&dir).unwrap();
    println!("loaded {} jobs from {} in {:?}", jobs.len(), dir.display(), started.elapsed());
    assert_eq!(jobs.len(), 69_351);
    assert!(jobs.iter().enumerate().all(|(i, j)| j.job_id == i as u64 + 1));
    assert!(jobs.windows(2).all(|w| w[0].submit_s <= w[1].submit_s));
    let mut per_tenant = std::collections::BTreeMap::new();
    for j in &jobs {
        *per_tenant.entry(j.tenant.as_str()).or_insert(0) += 1;
        assert!(j.job_class.is_empty() && j.devices >= 1.0 && j.duration_s >= 600.0);
    }
    let tenants: Vec<_> = per_tenant.keys().copied().collect();
    assert_eq!(tenants, (1..=10).map(|i| format!("cluster{i:02}")).collect::<Vec<_>>());
    assert_eq!(per_tenant["cluster04"], 15_802);
    // GPU hours as the upstream README gives them: 1,632,719.7.
    let gpu_hours: f64 = jobs.iter().map(|j| j.devices * j.duration_s).sum::<f64>() / 3600.0;
    assert!((gpu_hours - 1_632_719.7).abs() < 0.1, "{gpu_hours}");

    // One file on its own gives the same jobs of that cluster.
    let one = itp::load(&dir.join("cluster04.csv")).unwrap();
    assert_eq!(one.len(), 15_802);
    let first = &one[0];
    assert_eq!((first.submit_s, first.duration_s, first.devices, first.line), (5810.0, 288_476.0, 16.0, 2));
    assert_eq!(first.tenant, "cluster04");
}

#[test]
fn the_elasticflow_variant_adds_the_model_as_job_class() {
    let Some(dir) = shared("microsoft-itp-elasticflow/elasticflow-traces") else { return };
    let jobs = itp::load_dir(&dir).unwrap();
    assert_eq!(jobs.len(), 69_351, "195job.csv and LICENSE are not cluster*.csv");
    assert!(jobs.iter().all(|j| !j.job_class.is_empty()));
    let c4 = itp::load(&dir.join("cluster04.csv")).unwrap();
    assert_eq!((c4[0].submit_s, c4[0].duration_s, c4[0].devices), (5810.0, 288_476.0, 16.0));
    assert_eq!(c4[0].job_class, "inception3");
    let testbed = itp::load(&dir.join("195job.csv")).unwrap();
    assert_eq!(testbed.len(), 195);
    assert_eq!(testbed[0].tenant, "195job");
}

#[test]
fn fixtures_load_with_the_file_stem_as_tenant() {
    let raw = itp::load(&fixture("raw/cluster10.csv")).unwrap();
    assert_eq!(raw.len(), 3);
    assert_eq!(raw[2].tenant, "cluster10");
    assert_eq!((raw[2].submit_s, raw[2].duration_s, raw[2].devices, raw[2].job_id), (2_709_847.0, 68_253.0, 2.0, 3));
    assert!(raw[2].job_class.is_empty() && raw[2].outcome.is_none());

    let ef = itp::load(&fixture("elasticflow/cluster10.csv")).unwrap();
    assert_eq!(ef.iter().map(|j| j.job_class.as_str()).collect::<Vec<_>>(), ["bert", "bert", "vgg16"]);
    for (a, b) in raw.iter().zip(&ef) {
        assert_eq!((a.submit_s, a.duration_s, a.devices), (b.submit_s, b.duration_s, b.devices));
    }
}

#[test]
fn a_directory_merges_by_submission_with_ids_across_files() {
    let jobs = itp::load_dir(&fixture("raw")).unwrap();
    // cluster01 submits at 1,932,025 and 2,000,581; cluster10 at 2,266,647 and later.
    let got: Vec<_> = jobs.iter().map(|j| (j.job_id, j.tenant.as_str(), j.submit_s)).collect();
    assert_eq!(
        got,
        vec![
            (1, "cluster01", 1_932_025.0),
            (2, "cluster01", 2_000_581.0),
            (3, "cluster10", 2_266_647.0),
            (4, "cluster10", 2_371_685.0),
            (5, "cluster10", 2_709_847.0),
        ]
    );
}

#[test]
fn a_uuid_repeated_across_files_names_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster01.csv"), format!("{RAW}\nabc,10,60,1\nxyz,11,60,1\n")).unwrap();
    std::fs::write(dir.path().join("cluster02.csv"), format!("{RAW}\n\ndef,5,60,2\nxyz,12,60,1\n")).unwrap();
    std::fs::write(dir.path().join("notes.csv"), "not a cluster\n").unwrap();
    let e = itp::load_dir(dir.path()).unwrap_err();
    match &e {
        TraceError::Invalid { path, line: 4, column, message } => {
            assert!(path.ends_with("cluster02.csv"));
            assert_eq!(column, "column `job_id`");
            assert!(message.contains("line 3 of") && message.contains("cluster01.csv"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("cluster02.csv: line 4, column `job_id`"), "{e}");

    // Ties across files keep the file-name order.
    std::fs::write(dir.path().join("cluster02.csv"), format!("{RAW}\ndef,10,60,2\n")).unwrap();
    let jobs = itp::load_dir(dir.path()).unwrap();
    let got: Vec<_> = jobs.iter().map(|j| (j.tenant.as_str(), j.line)).collect();
    assert_eq!(got, [("cluster01", 2), ("cluster02", 2), ("cluster01", 3)]);
}

#[test]
fn a_directory_without_cluster_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(itp::load_dir(dir.path()), Err(TraceError::Io { .. })));
}

#[test]
fn a_uuid_repeated_within_a_file_names_both_lines() {
    match err(&format!("{RAW}\na,0,60,1\nb,1,60,1\na,2,60,1\n")) {
        TraceError::Invalid { line: 4, column, message, .. } => {
            assert_eq!(column, "column `job_id`");
            assert!(message.contains("\"a\" was already used on line 2"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn uuids_compare_as_uuids() {
    let upper = "C9C620EA-4336-C1A9-8ABE-E26BD13076B8";
    let lower = upper.to_lowercase();
    match err(&format!("{RAW}\n{lower},0,60,1\n{upper},1,60,1\n")) {
        TraceError::Invalid { line: 3, message, .. } => assert!(message.contains("line 2"), "{message}"),
        other => panic!("{other:?}"),
    }
    // Near-UUIDs are text: these two differ.
    let jobs = itp::parse(
        format!("{RAW}\n{lower}x,0,60,1\n{lower}y,1,60,1\n").as_bytes(),
        Path::new("x.csv"),
        "x",
    )
    .unwrap();
    assert_eq!(jobs.len(), 2);
}

#[test]
fn unsorted_rows_are_sorted_stably() {
    let jobs = itp::parse(format!("{RAW}\nc,30,1,1\na,10,2,1\nb,10,3,1\n").as_bytes(), Path::new("x.csv"), "x").unwrap();
    let got: Vec<_> = jobs.iter().map(|j| (j.job_id, j.line, j.submit_s)).collect();
    assert_eq!(got, [(1, 3, 10.0), (2, 4, 10.0), (3, 2, 30.0)]);
}

#[test]
fn broken_input_is_named() {
    assert!(matches!(err(""), TraceError::Empty { .. }));
    assert!(matches!(err(&format!("{RAW}\n")), TraceError::NoJobs { .. }));
    assert!(matches!(
        err("job_id,submission_time,num_gpu\na,1,1\n"),
        TraceError::MissingColumn { line: 1, column: "duration", .. }
    ));
    assert!(matches!(
        err("job_id,submission_time,duration,num_gpu,duration\na,1,1,1,1\n"),
        TraceError::DuplicateColumn { line: 1, .. }
    ));
    assert!(matches!(err(&format!("{RAW}\na,1,1\n")), TraceError::FieldCount { line: 2, .. }));
    let cases = [
        ("a,soon,60,1", "submission_time"),
        ("a,-5,60,1", "submission_time"),
        ("a,5,1h,1", "duration"),
        ("a,5,60,0", "num_gpu"),
        ("a,5,60,two", "num_gpu"),
        (",5,60,1", "job_id"),
    ];
    for (row, want) in cases {
        match err(&format!("{RAW}\nz,0,60,1\n{row}\n")) {
            TraceError::BadField { line: 3, column, .. } if column == want => {}
            other => panic!("{row}: {other:?}"),
        }
    }
    let ef = "job_id,submission_time,num_iteration,model_name,deadline,batch_size,num_gpu,duration";
    assert!(matches!(
        err(&format!("{ef}\na,1,100,,200,64,1,60\n")),
        TraceError::BadField { line: 2, column: "model_name", .. }
    ));
}
