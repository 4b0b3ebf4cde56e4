//! The fill-up experiment (`tessera fill`): deterministic per seed, consistent with the
//! cluster, and it tells fgd from best-fit where the FGD paper says it should.

use std::path::Path;
use tessera_sim::fill::{fill_scenario, write_fill_csv, FillOptions};
use tessera_sim::scenario::Scenario;

/// Two GPU nodes (2 GPUs, 2 cores each) and one CPU node (64 cores); half the tasks are 1-GPU,
/// 1-core tasks, half CPU-only tasks of 1.5 cores. Best-fit puts a CPU task on the tightest
/// node (a GPU node), stranding its GPUs; fgd keeps CPU tasks on the CPU node.
fn scenario(dir: &Path) -> Scenario {
    let trace = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,cpu_milli\n\
                 1,0,a,0,1,,100,x,1000\n\
                 2,0,a,0,0,,100,x,1500\n";
    std::fs::write(dir.join("jobs.csv"), trace).unwrap();
    let text = r#"
name = "fill-test"
seed = 3
replications = 4

[[cluster.nodes]]
count = 2
devices = { model = "A100-80GB", count = 2 }
cpu_cores = 2
mem_gib = 16

[[cluster.nodes]]
count = 1
cpu_cores = 64
mem_gib = 16

[workload]
trace = { format = "native", path = "jobs.csv" }

[[policies]]
name = "fifo"
placement = "best-fit"
label = "best-fit"

[[policies]]
name = "fifo"
placement = "fgd"
label = "fgd"
"#;
    let path = dir.join("fill.toml");
    std::fs::write(&path, text).unwrap();
    Scenario::load(&path).unwrap()
}

#[test]
fn fill_is_deterministic_and_fgd_strands_fewer_gpus_than_best_fit() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    let options = FillOptions { max_arrived: 1.5, step: 0.25, ..FillOptions::default() };
    let a = fill_scenario(&s, &options).unwrap();
    let b = fill_scenario(&s, &options).unwrap();
    assert_eq!(a, b, "one seed must reproduce the fill-up");
    let (mut csv_a, mut csv_b) = (Vec::new(), Vec::new());
    write_fill_csv(&mut csv_a, &a).unwrap();
    write_fill_csv(&mut csv_b, &b).unwrap();
    assert_eq!(csv_a, csv_b);

    // Checkpoints at 25% .. 150% of the 4 GPUs, for each policy and replication.
    assert_eq!(a.len(), 2 * 4 * 6);
    for p in &a {
        assert!((p.allocated_gpus + p.unallocated_gpus - 4.0).abs() < 1e-9, "{p:?}");
        assert!(p.allocated_gpus <= 4.0 && p.allocated_gpus >= 0.0);
    }
    let at = |policy: &str, f: f64| -> f64 {
        a.iter().filter(|p| p.policy == policy && (p.arrived_fraction - f).abs() < 1e-9).map(|p| p.unallocated_gpus).sum::<f64>() / 4.0
    };
    // fgd keeps the GPU nodes' CPU for GPU tasks: all 4 GPUs end up used.
    assert_eq!(at("fgd", 1.5), 0.0);
    assert!(at("best-fit", 1.5) > 0.0, "best-fit should strand GPUs here: {}", at("best-fit", 1.5));
}

#[test]
fn fill_refuses_bad_options_and_unknown_policies() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    let err = fill_scenario(&s, &FillOptions { step: 0.0, ..FillOptions::default() }).unwrap_err().to_string();
    assert!(err.contains("step"), "{err}");
    let err = fill_scenario(&s, &FillOptions { policy: Some("nope".into()), ..FillOptions::default() }).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("best-fit"), "{err}");
}

#[test]
fn fill_builds_policies_as_the_simulator_does_with_tenant_names_resolved() {
    let dir = tempfile::tempdir().unwrap();
    scenario(dir.path()); // writes fill.toml and jobs.csv
    let text = std::fs::read_to_string(dir.path().join("fill.toml")).unwrap()
        + "\n[[policies]]\nname = \"drf\"\nplacement = \"fgd\"\ntenant_weights = { \"a\" = 2.0 }\nlabel = \"drf-fgd\"\n";
    std::fs::write(dir.path().join("fill.toml"), text).unwrap();
    let s2 = Scenario::load(&dir.path().join("fill.toml")).unwrap();
    let options = FillOptions { max_arrived: 1.0, step: 0.5, policy: Some("drf-fgd".into()), ..FillOptions::default() };
    let points = fill_scenario(&s2, &options).unwrap();
    assert_eq!(points.len(), 4 * 2);
    // A tenant the workload does not have is refused, naming it.
    let text = std::fs::read_to_string(dir.path().join("fill.toml")).unwrap().replace("\"a\" = 2.0", "\"nobody\" = 2.0");
    std::fs::write(dir.path().join("fill.toml"), text).unwrap();
    let s3 = Scenario::load(&dir.path().join("fill.toml")).unwrap();
    let err = fill_scenario(&s3, &options).unwrap_err().to_string();
    assert!(err.contains("nobody"), "{err}");
}
