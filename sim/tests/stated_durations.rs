//! A native trace's `stated_duration_s` column becomes the simulated job's stated duration
//! (what `sjf`, `srtf` and backfilling rank by), kept apart from its true work; rows without
//! one state their work, and `[models.estimate_error]` applies only to those.

use std::path::Path;
use tessera_core::{ClusterState, JobId, Policy, Time};
use tessera_sim::engine::{run, NullSink, RunLimits, World};
use tessera_sim::models::WorldModels;
use tessera_sim::scenario::Scenario;
use tessera_sim::workload::{build_cluster, build_workload, Workload};

const TRACE: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,stated_duration_s\n\
                     1,0,a,0,1,,10,x,\n\
                     2,1,a,0,1,,10,x,2.5\n\
                     3,2,a,0,1,,10,x,0\n\
                     4,3,a,0,1,,4,x,\n";

fn workload(dir: &Path, models: &str, seed: u64) -> Workload {
    workload_of(dir, TRACE, models, seed)
}

fn workload_of(dir: &Path, trace: &str, models: &str, seed: u64) -> Workload {
    std::fs::write(dir.join("trace.csv"), trace).unwrap();
    let scenario = format!(
        "name = \"stated\"\nseed = 1\n[[cluster.nodes]]\ndevices = {{ model = \"CPU\", count = 1 }}\ncpu_cores = 1\n\
         [workload]\ntrace = {{ format = \"native\", path = \"trace.csv\" }}\n[[policies]]\nname = \"sjf\"\n{models}"
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, scenario).unwrap();
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let (catalogue, _) = build_cluster(&s).unwrap();
    build_workload(&s, &catalogue, seed).unwrap_or_else(|e| panic!("{e}"))
}

fn stated_and_work(w: &Workload, id: u64) -> (Option<Time>, Time, bool) {
    let j = w.jobs.iter().find(|j| j.spec.id == JobId(id)).unwrap();
    (j.spec.stated_duration, j.work, j.stated_by_trace)
}

#[test]
fn the_trace_states_what_it_says_and_the_rest_state_their_work() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), "", 1);
    let secs = Time::from_secs_f64;
    assert_eq!(stated_and_work(&w, 1), (Some(secs(10.0)), secs(10.0), false));
    assert_eq!(stated_and_work(&w, 2), (Some(secs(2.5)), secs(10.0), true));
    // A stated 0 stays 0, as the executor converts it; the work is never below 1 µs.
    assert_eq!(stated_and_work(&w, 3), (Some(Time::ZERO), secs(10.0), true));
    assert_eq!(stated_and_work(&w, 4), (Some(secs(4.0)), secs(4.0), false));
}

#[test]
fn estimate_error_applies_only_to_jobs_the_trace_states_nothing_for() {
    let dir = tempfile::tempdir().unwrap();
    let w = workload(dir.path(), "[models.estimate_error]\nfactor = { dist = \"constant\", value = 3.0 }\n", 1);
    let secs = Time::from_secs_f64;
    assert_eq!(stated_and_work(&w, 1).0, Some(secs(30.0)));
    assert_eq!(stated_and_work(&w, 2).0, Some(secs(2.5)));
    assert_eq!(stated_and_work(&w, 3).0, Some(Time::ZERO));
    assert_eq!(stated_and_work(&w, 4).0, Some(secs(12.0)));

    // A random factor: jobs 1 and 4 draw as they would if no job stated anything (every job
    // takes its draw), and the stated ones are untouched, for every seed.
    let noisy = "[models.estimate_error]\nfactor = { dist = \"uniform\", min_s = 0.1, max_s = 3.0 }\n";
    let mut factors = Vec::new();
    for seed in [1, 2, 3] {
        let w = workload(dir.path(), noisy, seed);
        assert_eq!(stated_and_work(&w, 2).0, Some(secs(2.5)));
        assert_eq!(stated_and_work(&w, 3).0, Some(Time::ZERO));
        let factor = |id| stated_and_work(&w, id).0.unwrap().as_secs_f64() / stated_and_work(&w, id).1.as_secs_f64();
        assert!((0.1..=3.0).contains(&factor(1)) && (0.1..=3.0).contains(&factor(4)));
        factors.push((factor(1), factor(4)));
        // The same seed gives the same workload.
        assert_eq!(workload(dir.path(), noisy, seed), w);
        // Jobs 1 and 4 get the factors they get when no job states anything.
        let unstated = workload_of(dir.path(), &TRACE.replace(",2.5\n", ",\n").replace(",0\n", ",\n"), noisy, seed);
        assert!(unstated.jobs.iter().all(|j| !j.stated_by_trace));
        for id in [1, 4] {
            assert_eq!(stated_and_work(&unstated, id).0, stated_and_work(&w, id).0, "seed {seed}, job {id}");
        }
    }
    assert!(factors[0] != factors[1] && factors[1] != factors[2], "{factors:?}");
}

/// The ids in the order they first started, under `policy` on one device.
fn start_order(trace: &str, policy: &str) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("trace.csv"), trace).unwrap();
    let toml = format!(
        "name = \"order\"\n[[cluster.nodes]]\ndevices = {{ model = \"CPU\", count = 1 }}\ncpu_cores = 1\n\
         [workload]\ntrace = {{ format = \"native\", path = \"trace.csv\" }}\n[[policies]]\nname = \"{policy}\"\n"
    );
    let s = Scenario::from_toml_str(&toml, &dir.path().join("scenario.toml")).unwrap_or_else(|e| panic!("{e}"));
    let (catalogue, nodes) = build_cluster(&s).unwrap();
    let workload = build_workload(&s, &catalogue, 0).unwrap();
    let speed = tessera_sim::speed::build(&s, &workload, &catalogue).unwrap();
    let models = WorldModels::build(&s, &catalogue, &nodes, &workload.classes).unwrap();
    let cluster = ClusterState::new(catalogue.clone(), nodes.iter().cloned());
    let world = World { workload: &workload, speed: &speed, models: &models, seed: 0, limits: RunLimits { horizon: s.horizon(), timeseries: None } };
    let out = run(&world, cluster, Policy::from_spec(&s.policies[0]).unwrap(), &mut NullSink).unwrap();
    let mut records: Vec<_> = out.records.iter().collect();
    records.sort_by_key(|r| r.ledger.first_start.unwrap());
    records.iter().map(|r| r.id.0).collect()
}

#[test]
fn sjf_ranks_by_the_stated_duration_not_the_run_time() {
    // Job 1 holds the device; 2, 3 and 4 queue. Their run times say 2, 3, 4; what they stated
    // says 4 (40 s), 3 (none: its run time, 30 s), 2 (20 s), as an executor's SJF ranked them.
    let trace = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,stated_duration_s\n\
                 1,0,a,0,1,,100,x,\n2,1,a,0,1,,10,x,40\n3,2,a,0,1,,30,x,\n4,3,a,0,1,,40,x,20\n";
    assert_eq!(start_order(trace, "sjf"), [1, 4, 3, 2]);
    // Without the column the run times rank them; fifo never reads either.
    let unstated = trace.replace(",40\n", ",\n").replace(",20\n", ",\n");
    assert_eq!(start_order(&unstated, "sjf"), [1, 2, 3, 4]);
    assert_eq!(start_order(trace, "fifo"), [1, 2, 3, 4]);
}
