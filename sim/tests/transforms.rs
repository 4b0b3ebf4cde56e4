//! The workload transforms of a scenario, on a hand-made trace whose results are worked out
//! by hand.

use std::path::Path;
use tessera_sim::scenario::Scenario;
use tessera_sim::workload::{build_cluster, build_workload};

const TRACE: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class
1,0,alice,0,1,,10,x
2,100,bob,0,16,,10,x
3,200,alice,0,2,,10,x
4,300,bob,0,4,,10,x
5,400,alice,0,8,,10,x
";

fn scenario(dir: &Path, transforms: &str) -> Result<Scenario, String> {
    std::fs::write(dir.join("t.csv"), TRACE).unwrap();
    let toml = format!(
        "name = \"t\"\n[[cluster.nodes]]\ncount = 4\ndevices = {{ model = \"T4\", count = 8 }}\ncpu_cores = 8\nmem_gib = 8\n\
         [workload]\ntrace = {{ format = \"native\", path = \"t.csv\" }}\n{transforms}\n[[policies]]\nname = \"fifo\"\n"
    );
    Scenario::from_toml_str(&toml, &dir.join("s.toml")).map_err(|e| e.to_string())
}

/// (job id, submit s, devices) after the transforms.
fn jobs(transforms: &str) -> Result<Vec<(u64, f64, u32)>, String> {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), transforms)?;
    let (catalogue, _) = build_cluster(&s).unwrap();
    let w = build_workload(&s, &catalogue, 1).map_err(|e| e.to_string())?;
    Ok(w.jobs.iter().map(|j| (j.spec.id.0, j.submit.as_secs_f64(), j.spec.devices.count)).collect())
}

#[test]
fn no_transform_keeps_the_trace() {
    assert_eq!(jobs("").unwrap().len(), 5);
}

#[test]
fn tenant_filter_then_window_then_first_then_scale_then_cap() {
    // alice: jobs 1 (0 s), 3 (200 s), 5 (400 s). Window [100, 500) keeps 3 and 5, re-based to
    // 100 s and 300 s. First 2 keeps both. Load x2 halves the gaps from the first: 100, 200.
    // Cap 4 devices: job 5's 8 become 4.
    let got = jobs("only_tenants = [\"alice\"]\nwindow_s = [100, 500]\nfirst_jobs = 2\nload_scale = 2.0\nmax_devices = 4").unwrap();
    assert_eq!(got, vec![(3, 100.0, 2), (5, 200.0, 4)]);
}

#[test]
fn each_transform_alone() {
    assert_eq!(jobs("first_jobs = 2").unwrap(), vec![(1, 0.0, 1), (2, 100.0, 16)]);
    assert_eq!(jobs("window_s = [150, 301]").unwrap(), vec![(3, 50.0, 2), (4, 150.0, 4)]);
    let scaled = jobs("load_scale = 4.0").unwrap();
    assert_eq!(scaled.iter().map(|j| j.1).collect::<Vec<_>>(), vec![0.0, 25.0, 50.0, 75.0, 100.0]);
    assert_eq!(jobs("max_devices = 2").unwrap().iter().map(|j| j.2).collect::<Vec<_>>(), vec![1, 2, 2, 2, 2]);
}

#[test]
fn bad_transforms_are_named() {
    let err = jobs("only_tenants = [\"carol\"]").unwrap_err();
    assert!(err.contains("workload.only_tenants[0]") && err.contains("no tenant `carol`") && err.contains("alice"), "{err}");
    let err = jobs("window_s = [500, 100]").unwrap_err();
    assert!(err.contains("workload.window_s") && err.contains("0 <= start < end"), "{err}");
    let err = jobs("window_s = [1000, 2000]").unwrap_err();
    assert!(err.contains("no job is left"), "{err}");
    let err = jobs("load_scale = 0").unwrap_err();
    assert!(err.contains("workload.load_scale"), "{err}");
    let err = jobs("first_jobs = 0").unwrap_err();
    assert!(err.contains("workload.first_jobs"), "{err}");
}
