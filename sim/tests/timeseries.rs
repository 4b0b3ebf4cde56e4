//! `timeseries.csv`: sampled as worked out by hand on a small trace, consistent with the
//! jobs under the world models, and without any effect on the run itself.

use std::path::Path;
use tessera_sim::runner::{run_scenario, RunOptions};
use tessera_sim::scenario::Scenario;

/// Two V100s; jobs 1-3 take one device for 25 s, job 4 a gang of two for 10 s.
/// By hand (FIFO): 1 runs 0-25, 2 runs 10-35, 3 waits 20-25 and runs 25-50, 4 waits from 30
/// until two devices are free at 50 and runs 50-60.
const TRACE: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class\n\
                     1,0,a,0,1,,25,x\n\
                     2,10,b,0,1,,25,x\n\
                     3,20,a,0,1,,25,x\n\
                     4,30,b,0,2,,10,x\n";

fn run(dir: &Path, outputs: &str, models: &str, trace: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("trace.csv"), trace).unwrap();
    let text = format!(
        "name = \"ts\"\nseed = 3\n[[cluster.nodes]]\ndevices = {{ model = \"V100-32GB\", count = 2 }}\n\
         [workload]\ntrace = {{ format = \"native\", path = \"trace.csv\" }}\n[[policies]]\nname = \"fifo\"\n{outputs}\n{models}"
    );
    let path = dir.join("s.toml");
    std::fs::write(&path, text).unwrap();
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("out");
    run_scenario(&s, &RunOptions { out_dir: Some(out.clone()), threads: 1, ..RunOptions::default() }).unwrap();
    out.join("fifo").join("r0")
}

#[test]
fn samples_are_the_state_after_every_event_up_to_each_boundary() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = run(tmp.path(), "[outputs]\ntimeseries_s = 10", "", TRACE);
    let csv = std::fs::read_to_string(run_dir.join("timeseries.csv")).unwrap();
    let expected = "t_s,queued,running_jobs,busy_devices,busy_devices.V100-32GB,tenant_jobs.a,tenant_jobs.b,tenant_devices.a,tenant_devices.b\n\
                    0.000,0,1,1,1,1,0,1,0\n\
                    10.000,0,2,2,2,1,1,1,1\n\
                    20.000,1,2,2,2,1,1,1,1\n\
                    30.000,1,2,2,2,1,1,1,1\n\
                    40.000,1,1,1,1,1,0,1,0\n\
                    50.000,0,1,2,2,0,1,0,2\n\
                    60.000,0,0,0,0,0,0,0,0\n";
    assert_eq!(csv, expected);
}

#[test]
fn recording_changes_neither_the_jobs_nor_the_decisions() {
    let models = "[models.contention]\nnode = { dist = \"uniform\", min_s = 0.8, max_s = 1.0 }\n\
                  [models.failures]\ndevice = { mtbf_h = 0.01, repair = { dist = \"constant\", value = 20 } }\n\
                  [models.checkpoint]\ninterval_s = 5\ncost_s = 1\nrestore_s = 2\n";
    let tmp = tempfile::tempdir().unwrap();
    let on = run(&tmp.path().join("on"), "[outputs]\ntimeseries_s = 1", models, TRACE);
    let off = run(&tmp.path().join("off"), "[outputs]\ntimeseries_s = 0", models, TRACE);
    for file in ["jobs.csv", "decisions.jsonl"] {
        let (a, b) = (std::fs::read(on.join(file)).unwrap(), std::fs::read(off.join(file)).unwrap());
        assert!(!a.is_empty());
        assert_eq!(a, b, "{file} differs with time series on");
    }
    assert!(on.join("timeseries.csv").is_file());
    assert!(!off.join("timeseries.csv").exists());
}

/// Under failures, checkpoints and contention, busy devices never exceed the fleet, the
/// per-tenant columns add up, and the time-average of busy devices is the device-time the jobs
/// report (within one sample's worth of each run's start and end). (That every start is undone
/// by a stop is checked inside the recorder, in debug builds, at the end of every run.)
#[test]
fn busy_devices_add_up_to_the_jobs_device_time_under_the_world_models() {
    let mut trace = String::from("job_id,submit_s,tenant,priority,devices,models,duration_s,job_class\n");
    for i in 0..60 {
        trace.push_str(&format!("{},{},{},0,{},,{},x\n", i + 1, i * 7, ["a", "b", "c"][i % 3], 1 + i % 2, 30 + (i * 13) % 50));
    }
    let models = "[models.failures]\ndevice = { mtbf_h = 0.05, repair = { dist = \"constant\", value = 30 } }\n\
                  [models.checkpoint]\ninterval_s = 10\ncost_s = 1\nrestore_s = 2\n\
                  [models.contention]\nnode = { dist = \"uniform\", min_s = 0.7, max_s = 1.0 }\n";
    let tmp = tempfile::tempdir().unwrap();
    let step = 0.5;
    let run_dir = run(tmp.path(), &format!("[outputs]\ntimeseries_s = {step}"), models, &trace);
    let csv = std::fs::read_to_string(run_dir.join("timeseries.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv.lines().skip(1).map(|l| l.split(',').map(|x| x.parse().unwrap()).collect()).collect();
    assert!(rows.len() > 100);
    for r in &rows {
        assert!(r[3] <= 2.0 && r[3] >= 0.0, "{r:?}");
        assert_eq!(r[3], r[4], "one model: its column is the total");
        assert_eq!(r[2], r[5] + r[6] + r[7], "running jobs are the tenants' jobs");
    }
    let sampled: f64 = rows.iter().map(|r| r[3]).sum::<f64>() * step;
    let jobs = std::fs::read_to_string(run_dir.join("jobs.csv")).unwrap();
    let header: Vec<&str> = jobs.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (devices, run_s) = (col("devices"), col("run_s"));
    let (mut held, mut runs) = (0.0, 0.0);
    for line in jobs.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        held += f[devices].parse::<f64>().unwrap() * f[run_s].parse::<f64>().unwrap();
        runs += 1.0 + f[col("restarts")].parse::<f64>().unwrap() + f[col("preemptions")].parse::<f64>().unwrap();
    }
    // Each run's start and end each round to a sample boundary: at most one step of each.
    let bound = runs * 2.0 * step * 2.0;
    assert!((sampled - held).abs() <= bound, "sampled {sampled} device-s, jobs held {held} device-s, bound {bound}");
}
