//! `export-trace` carries what each submission stated (`stated_duration_s`), so that a replay
//! ranks the jobs as the live policy did, and leaves the field empty where nothing was stated.

mod runtime_common;
use runtime_common::*;
use tessera_core::PolicySpec;
use tessera_exec::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_carries_the_stated_durations_sjf_ranked_by() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("sjf"))).await.unwrap();
    // One device: the blocker runs, the other three queue and sjf orders them by what they
    // state, not by what they will run (all three run alike).
    let mut blocker = sh("sleep 0.4");
    blocker.stated_duration_s = Some(0.4);
    let blocker = h.submit(blocker, "u").await.unwrap();
    wait_state(&h, blocker.id, tessera_exec::JobStatus::RUNNING).await;
    let mut long = sh("sleep 0.05");
    long.stated_duration_s = Some(0.1 + 0.2); // not exactly 0.3: must come back bit for bit
    let long = h.submit(long, "u").await.unwrap();
    let unstated = h.submit(sh("sleep 0.05"), "u").await.unwrap();
    let mut short = sh("sleep 0.05");
    short.stated_duration_s = Some(0.0);
    let short = h.submit(short, "u").await.unwrap();
    for id in [blocker.id, long.id, unstated.id, short.id] {
        wait_done(&h, id).await;
    }
    let csv = tessera_exec::export::export_trace(&dir.path().join("journal.sqlite")).unwrap();
    assert!(csv.starts_with(tessera_exec::export::EXPORT_HEADER) && tessera_exec::export::EXPORT_HEADER.split(',').any(|c| c == "stated_duration_s"));
    let path = dir.path().join("trace.csv");
    std::fs::write(&path, &csv).unwrap();
    let jobs = tessera_traces::native::load_native_csv(&path).unwrap();
    let stated = |id: u64| jobs.iter().find(|j| j.job_id == id).unwrap().stated_duration_s;
    assert_eq!(stated(blocker.id), Some(0.4));
    assert_eq!(stated(long.id), Some(0.1 + 0.2));
    assert_eq!(stated(unstated.id), None);
    assert_eq!(stated(short.id), Some(0.0));
    // The live order the replay must reproduce: stated 0, then 0.3, then nothing stated.
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let start_col = header.iter().position(|h| *h == "start_s").unwrap();
    let mut started: Vec<(f64, u64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[start_col].parse().unwrap(), f[0].parse().unwrap())
        })
        .collect();
    started.sort_by(|a, b| a.0.total_cmp(&b.0));
    let order: Vec<u64> = started.iter().map(|s| s.1).collect();
    assert_eq!(order, [blocker.id, short.id, long.id, unstated.id]);
}
