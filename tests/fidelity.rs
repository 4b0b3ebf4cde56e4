//! End-to-end: the replay template `scenarios/exec-replay/replay.toml` runs in the simulator on
//! its CPU-device machine, and `tessera fidelity` compares its prediction with the bundled
//! (hand-made) executor export.

use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

mod support;
use support::run;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn replay() -> PathBuf {
    support::scenario("exec-replay/replay.toml")
}

fn observed() -> PathBuf {
    support::scenario("exec-replay/observed.csv")
}

#[test]
fn the_replay_template_predicts_the_export_up_to_the_launch_latency() {
    let dir = TempDir::new().unwrap();
    let sim_out = dir.path().join("replay");
    let o = run(&["sim", s(&replay()), "--out", s(&sim_out), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let jobs = fs::read_to_string(sim_out.join("fifo/r0/jobs.csv")).unwrap();
    // Two CPU slots under fifo, worked out by hand from the export's submissions and run
    // times: job 3 takes job 1's slot at 2.03 s, job 4 job 3's at 3.06 s, job 5 job 2's at 3.53 s.
    let starts: Vec<&str> = jobs.lines().skip(1).map(|l| l.split(',').nth(4).unwrap()).collect();
    assert_eq!(starts, ["0.000000", "0.500000", "2.030000", "3.060000", "3.530000", "6.000000"]);
    assert!(jobs.lines().skip(1).all(|l| l.contains(",Xeon-8380,completed,")), "{jobs}");

    let fid_out = dir.path().join("fidelity");
    let o = run(&["fidelity", s(&observed()), s(&sim_out), "--tolerance-s", "0.05", "--out", s(&fid_out)]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("6 jobs") && stdout.contains("83.3% of jobs within 0.05 s"), "{stdout}");
    // Each launch took 0.02 s in the export and none in the simulator; a job that queued
    // behind k launches on its slot is predicted 0.02 * (k + 1) s early.
    let per_job = fs::read_to_string(fid_out.join("fidelity.csv")).unwrap();
    let wait_errors: Vec<&str> = per_job.lines().skip(1).map(|l| l.split(',').nth(3).unwrap()).collect();
    assert_eq!(wait_errors, ["-0.020000", "-0.020000", "-0.040000", "-0.060000", "-0.040000", "-0.020000"]);
    let summary = fs::read_to_string(fid_out.join("fidelity_summary.csv")).unwrap();
    assert!(summary.contains("\nwait,6,0.033333,0.020000,0.060000,0.060000,-0.033333,0.833333,0.050000\n"), "{summary}");
}

#[test]
fn a_replay_that_left_jobs_out_is_refused() {
    let dir = TempDir::new().unwrap();
    let scenario = dir.path().join("replay.toml");
    fs::copy(observed(), dir.path().join("observed.csv")).unwrap();
    let text = fs::read_to_string(replay()).unwrap().replace("path = \"observed.csv\" }", "path = \"observed.csv\" }\nfirst_jobs = 4");
    fs::write(&scenario, text).unwrap();
    let sim_out = dir.path().join("out");
    let o = run(&["sim", s(&scenario), "--out", s(&sim_out), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["fidelity", s(&observed()), s(&sim_out), "--out", s(&dir.path().join("f"))]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.starts_with("error: the files do not hold the same jobs: 2 job(s) only in "), "{stderr}");
    assert!(stderr.contains("observed.csv: 5, 6"), "{stderr}");
    assert!(!dir.path().join("f/fidelity.csv").exists());
}
