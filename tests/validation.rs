//! The simulator against queueing theory.
//!
//! With single-device jobs, Poisson arrivals and exponential work on c identical devices,
//! FIFO first-fit is an M/M/c queue, whose mean wait is given by the Erlang C formula. The
//! tolerance is not a fixed percentage: it is a 99.9% Student-t interval over independent
//! replications, so it shrinks with run length exactly as the statistics say it should.
//! The first 20% of each run's jobs are dropped, since the queue starts empty.

use statrs::distribution::{ContinuousCDF, StudentsT};
use std::path::Path;
use tessera_core::{ClusterState, Policy};
use tessera_reports::erlang_c_wait;
use tessera_sim::engine::{run, NullSink, World};
use tessera_sim::scenario::Scenario;
use tessera_sim::workload::{build_cluster, build_workload};

/// Mean wait of each replication, after dropping the warm-up jobs.
fn replication_mean_waits(toml: &str, replications: u64, warmup_fraction: f64) -> Vec<f64> {
    let scenario = Scenario::from_toml_str(toml, Path::new("validation.toml")).expect("valid scenario");
    let (catalogue, nodes) = build_cluster(&scenario).unwrap();
    (0..replications)
        .map(|k| {
            let workload = build_workload(&scenario, &catalogue, 1000 + k).unwrap();
            let speed = tessera_sim::speed::build(&scenario, &workload, &catalogue).unwrap();
            let policy = Policy::from_spec(&scenario.policies[0]).unwrap();
            let cluster = ClusterState::new(catalogue.clone(), nodes.iter().cloned());
            let out = run(&World::plain(&workload, &speed), cluster, policy, &mut NullSink).unwrap();
            let skip = (out.records.len() as f64 * warmup_fraction) as usize;
            let waits: Vec<f64> = out.records[skip..].iter().map(|r| r.wait().expect("every job ends").as_secs_f64()).collect();
            waits.iter().sum::<f64>() / waits.len() as f64
        })
        .collect()
}

/// Asserts the theory lies in the replications' 99.9% confidence interval, and prints the
/// figures so a failure says by how much.
fn assert_matches(name: &str, means: &[f64], theory: f64) {
    let n = means.len() as f64;
    let mean = means.iter().sum::<f64>() / n;
    let sd = (means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let t = StudentsT::new(0.0, 1.0, n - 1.0).unwrap().inverse_cdf(0.9995);
    let half_width = t * sd / n.sqrt();
    println!("{name}: simulated mean wait {mean:.2} s ± {half_width:.2} (99.9%), theory {theory:.2} s, replications {means:?}");
    assert!((mean - theory).abs() <= half_width, "{name}: theory {theory:.2} s outside {mean:.2} ± {half_width:.2} s");
    // The interval must be informative, or the test could not fail.
    assert!(half_width < 0.1 * theory, "{name}: interval ±{half_width:.2} s too wide to judge");
}

fn mmc_scenario(servers: u32, interarrival_s: f64, service_s: f64, jobs: u64) -> String {
    format!(
        r#"
name = "mmc"
[[cluster.nodes]]
count = {servers}
devices = {{ model = "V100-32GB", count = 1 }}
cpu_cores = 8
mem_gib = 32
[workload]
synthetic = {{ jobs = {jobs}, interarrival = {{ dist = "exponential", mean_s = {interarrival_s} }}, duration = {{ dist = "exponential", mean_s = {service_s} }} }}
[[policies]]
name = "fifo"
"#
    )
}

#[test]
fn mm1_mean_wait_matches_theory() {
    // rho = 0.7: W_q = rho / (mu - lambda) = 0.7 / (1/70 - 1/100) = 163.33 s.
    let means = replication_mean_waits(&mmc_scenario(1, 100.0, 70.0, 40_000), 12, 0.2);
    let theory = erlang_c_wait(1, 1.0 / 100.0, 1.0 / 70.0);
    assert!((theory - 163.333).abs() < 0.01);
    assert_matches("M/M/1", &means, theory);
}

#[test]
fn mm8_mean_wait_matches_erlang_c() {
    // The issue's example: 8 devices, one arrival per 100 s, 700 s of work: rho = 0.875.
    let means = replication_mean_waits(&mmc_scenario(8, 100.0, 700.0, 200_000), 12, 0.2);
    let theory = erlang_c_wait(8, 1.0 / 100.0, 1.0 / 700.0);
    assert_matches("M/M/8", &means, theory);
}

#[test]
fn faster_devices_shorten_service_as_the_speed_matrix_says() {
    // The same M/M/1 queue on a device twice as fast for this class is an M/M/1 with mean
    // service 35 s: W_q = 0.35 / (1/35 - 1/100) = 18.85 s.
    let toml = mmc_scenario(1, 100.0, 70.0, 40_000)
        + "[[speed]]\nclass = \"default\"\nmodel = \"V100-32GB\"\nrelative = 2.0\n";
    let means = replication_mean_waits(&toml, 12, 0.2);
    assert_matches("M/M/1 at speed 2", &means, erlang_c_wait(1, 1.0 / 100.0, 1.0 / 35.0));
}
