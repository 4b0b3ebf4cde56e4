//! Criterion benches of the simulator: whole runs on a synthetic workload, one group per policy
//! family (queue orders, placements, backfilling, round-based), with the decision log discarded
//! so the scheduler and engine are what is measured.
//! `cargo bench -p tessera-sim`; the end-to-end target lives in `tessera bench`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::Path;
use tessera_core::{ClusterState, Policy, PolicySpec};
use tessera_sim::engine::{run, NullSink, World};
use tessera_sim::scenario::Scenario;
use tessera_sim::workload::{build_cluster, build_workload};

const SCENARIO: &str = r#"
name = "bench"
seed = 3
[[cluster.nodes]]
count = 128
devices = { model = "A100-80GB", count = 8 }
cpu_cores = 128
mem_gib = 1024
[workload]
synthetic = { jobs = 50000, interarrival = { dist = "exponential", mean_s = 2.8 }, duration = { dist = "lognormal", mean_s = 1200.0, sigma = 1.0 }, devices = { dist = "choice", values = [1, 2, 4, 8], weights = [0.6, 0.2, 0.12, 0.08] }, priority = { dist = "choice", values = [0, 1, 2] }, tenants = 4, classes = ["a", "b"] }
[[policies]]
name = "fifo"
"#;

/// Each family's policies, as scenario TOML would write them.
const FAMILIES: &[(&str, &[&str])] = &[
    (
        "queue_order",
        &[
            "name = 'fifo'",
            "name = 'sjf'",
            "name = 'srtf'",
            "name = 'priority'",
            "name = 'las'",
            "name = 'drf'",
            "name = 'fair-share'",
        ],
    ),
    (
        "placement",
        &[
            "name = 'fifo'\nplacement = 'first-fit'",
            "name = 'fifo'\nplacement = 'best-fit'",
            "name = 'fifo'\nplacement = 'pack'",
            "name = 'fifo'\nplacement = 'spread'",
            "name = 'fifo'\nplacement = 'topology'\nlocality_wait_s = 300",
            "name = 'fifo'\nplacement = 'fgd'",
            "name = 'fifo'\nplacement = 'hetero'",
        ],
    ),
    ("backfill", &["name = 'fifo'\nbackfill = 'easy'", "name = 'fifo'\nbackfill = 'conservative'", "name = 'sjf'\nbackfill = 'easy'"]),
    ("rounds", &["name = 'gavel'", "name = 'fifo'\nround_s = 300"]),
];

fn policies(c: &mut Criterion) {
    let scenario = Scenario::from_toml_str(SCENARIO, Path::new("bench.toml")).expect("bench scenario is valid");
    let (catalogue, nodes) = build_cluster(&scenario).unwrap();
    let workload = build_workload(&scenario, &catalogue, scenario.seed).unwrap();
    let speed = tessera_sim::speed::build(&scenario, &workload, &catalogue).unwrap();
    for (family, specs) in FAMILIES {
        let mut group = c.benchmark_group(format!("simulate_50k_jobs_1024_gpus/{family}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(workload.jobs.len() as u64));
        for text in specs.iter() {
            let spec: PolicySpec = toml::from_str(text).unwrap_or_else(|e| panic!("bench policy `{text}`: {e}"));
            let id = text.replace("name = ", "").replace('\n', " ").replace('\'', "");
            group.bench_with_input(BenchmarkId::from_parameter(id), &spec, |b, spec| {
                b.iter(|| {
                    let cluster = ClusterState::new(catalogue.clone(), nodes.iter().cloned());
                    let policy = Policy::from_spec(spec).unwrap().with_speeds(speed.clone());
                    run(&World::plain(&workload, &speed), cluster, policy, &mut NullSink).unwrap().events
                })
            });
        }
        group.finish();
    }
}

fn workload_generation(c: &mut Criterion) {
    let scenario = Scenario::from_toml_str(SCENARIO, Path::new("bench.toml")).unwrap();
    let (catalogue, _) = build_cluster(&scenario).unwrap();
    let mut group = c.benchmark_group("workload");
    group.sample_size(10);
    group.throughput(Throughput::Elements(50_000));
    group.bench_function("synthetic_50k_jobs", |b| b.iter(|| build_workload(&scenario, &catalogue, 9).unwrap().jobs.len()));
    group.finish();
}

criterion_group!(benches, policies, workload_generation);
criterion_main!(benches);
