//! The Tiresias loaders: job files and cluster specs, every file of the published folder, and
//! broken input.

use std::path::{Path, PathBuf};
use tessera_traces::tiresias::{self, TiresiasCluster};
use tessera_traces::TraceError;

const HEADER: &str = "job_id,num_gpu,submit_time,iterations,model_name,duration,interval";
const SPEC: &str = "num_switch,num_node_p_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiresias").join(name)
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
    let e = tiresias::parse(content.as_bytes(), Path::new("jobs.csv")).expect_err("should refuse");
    assert!(e.to_string().starts_with("jobs.csv: "), "{e}");
    e
}

fn spec_err(content: &str) -> TraceError {
    let e = tiresias::parse_cluster_spec(content.as_bytes(), Path::new("spec.csv")).expect_err("should refuse");
    assert!(e.to_string().starts_with("spec.csv: "), "{e}");
    e
}

#[test]
fn the_published_60_job_file_loads() {
    let Some(path) = shared("tiresias/60_job.csv") else { return };
    let jobs = tiresias::load(&path).unwrap();
    assert_eq!(jobs.len(), 60);
    assert!(jobs.iter().enumerate().all(|(i, j)| j.job_id == i as u64), "ids are kept as written");
    let last = &jobs[59];
    assert_eq!((last.submit_s, last.devices, last.duration_s, last.job_class.as_str()), (1779.0, 1.0, 122.0, "inception3"));
    assert_eq!(last.line, 61);
    assert!(jobs.iter().all(|j| j.tenant == "tiresias" && j.priority == 0 && j.outcome.is_none()));
}

#[test]
fn every_other_published_file_is_read_or_refused_as_documented() {
    let Some(dir) = shared("tiresias") else { return };
    // The testbed file repeats job 10.
    match tiresias::load(&dir.join("tf_job.csv")) {
        Err(TraceError::DuplicateJobId { line: 3, first_line: 2, job_id: 10, column: "job_id", .. }) => {}
        other => panic!("{other:?}"),
    }
    // GPU-time samples are not a job trace.
    for f in ["yarn-gput1000.csv", "yarn-gput5000.csv", "yarn-gput10000.csv"] {
        match tiresias::load(&dir.join(f)) {
            Err(e @ TraceError::Invalid { line: 1, .. }) => assert!(e.to_string().contains("not a job trace"), "{e}"),
            other => panic!("{f}: {other:?}"),
        }
    }
    let spec = |s, n, g, c, m| TiresiasCluster {
        switches: s,
        nodes_per_switch: n,
        gpus_per_node: g,
        cpus_per_node: c,
        mem_gb_per_node: m,
    };
    for (f, want) in [
        ("cluster_spec.csv", spec(1, 16, 4, 128, 254)),
        ("n1g4.csv", spec(1, 1, 4, 40, 256)),
        ("n32g4.csv", spec(1, 32, 4, 40, 256)),
        ("n160g8.csv", spec(5, 32, 8, 128, 256)),
        ("n256g8.csv", spec(8, 32, 8, 64, 256)),
    ] {
        assert_eq!(tiresias::load_cluster_spec(&dir.join(f)).unwrap(), want, "{f}");
    }
    assert_eq!(spec(8, 32, 8, 64, 256).gpus(), 2048);
    // A cluster spec is not a job file, and the other way round.
    assert!(matches!(tiresias::load(&dir.join("n32g4.csv")), Err(TraceError::MissingColumn { column: "job_id", .. })));
    assert!(matches!(
        tiresias::load_cluster_spec(&dir.join("60_job.csv")),
        Err(TraceError::MissingColumn { column: "num_switch", .. })
    ));
}

#[test]
fn fixtures_load() {
    let jobs = tiresias::load(&fixture("jobs.csv")).unwrap();
    let got: Vec<_> = jobs.iter().map(|j| (j.job_id, j.submit_s, j.devices, j.duration_s, j.job_class.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (0, 0.0, 1.0, 164.0, "vgg19"),
            (1, 30.0, 8.0, 147.0, "vgg11"),
            (2, 53.0, 2.0, 127.0, "inception4"),
            (3, 79.0, 1.0, 121.0, "vgg16"),
            (4, 99.0, 4.0, 121.0, "vgg16"),
        ]
    );
    let spec = tiresias::load_cluster_spec(&fixture("n32g4.csv")).unwrap();
    assert_eq!((spec.nodes(), spec.gpus()), (32, 128));
}

#[test]
fn unsorted_rows_are_sorted_stably_keeping_ids() {
    let jobs = tiresias::parse(
        format!("{HEADER}\r\n7,1,50,1,a,10,0\r\n3,1,20,1,b,10,0\r\n5,1,20,1,c,10,0\r\n").as_bytes(),
        Path::new("j.csv"),
    )
    .unwrap();
    assert_eq!(jobs.iter().map(|j| j.job_id).collect::<Vec<_>>(), [3, 5, 7]);
    // Only the mapped columns are required.
    let jobs = tiresias::parse(b"model_name,duration,submit_time,num_gpu,job_id\nresnet50,5,1,2,9\n", Path::new("j.csv")).unwrap();
    assert_eq!((jobs[0].job_id, jobs[0].devices), (9, 2.0));
}

#[test]
fn broken_job_files_are_named() {
    assert!(matches!(err(""), TraceError::Empty { .. }));
    assert!(matches!(err(&format!("{HEADER}\n")), TraceError::NoJobs { .. }));
    assert!(matches!(
        err("job_id,num_gpu,submit_time,iterations,duration,interval\n0,1,0,1,5,1\n"),
        TraceError::MissingColumn { line: 1, column: "model_name", .. }
    ));
    match err(&format!("{HEADER}\n0,1,0,1,a,5,1\n1,1,0,1,a,5,1\n0,1,0,1,a,5,1\n")) {
        TraceError::DuplicateJobId { line: 4, first_line: 2, job_id: 0, .. } => {}
        other => panic!("{other:?}"),
    }
    for (row, want) in [
        ("x,1,0,1,a,5,1", "job_id"),
        ("-1,1,0,1,a,5,1", "job_id"),
        ("9,0,0,1,a,5,1", "num_gpu"),
        ("9,1,later,1,a,5,1", "submit_time"),
        ("9,1,0,1,a,five,1", "duration"),
        ("9,1,0,1,,5,1", "model_name"),
    ] {
        match err(&format!("{HEADER}\n0,1,0,1,a,5,1\n{row}\n")) {
            TraceError::BadField { line: 3, column, .. } if column == want => {}
            other => panic!("{row}: {other:?}"),
        }
    }
}

#[test]
fn broken_cluster_specs_are_named() {
    assert!(matches!(spec_err(""), TraceError::Empty { .. }));
    assert!(matches!(spec_err(SPEC), TraceError::NoJobs { .. }));
    assert!(matches!(spec_err(&format!("{SPEC}\n1,2,4,8,16\n1,2,4,8,16\n")), TraceError::Invalid { line: 3, .. }));
    assert!(matches!(
        spec_err(&format!("{SPEC}\n1,0,4,8,16\n")),
        TraceError::BadField { line: 2, column: "num_node_p_switch", .. }
    ));
    assert!(matches!(
        spec_err(&format!("{SPEC}\n1,2,4,8,16GB\n")),
        TraceError::BadField { line: 2, column: "mem_p_node", .. }
    ));
    assert!(matches!(
        spec_err("num_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node\n1,4,8,16\n"),
        TraceError::MissingColumn { column: "num_node_p_switch", .. }
    ));
}
