//! Daemon benchmark (harness = false): decision latency with a long queue, and launch overhead.
//!
//!     cargo bench -p tessera-exec --bench daemon            # 10,000 jobs
//!     TESSERA_BENCH_JOBS=2000 cargo bench -p tessera-exec --bench daemon
//!
//! One CPU device, held by a blocker while N jobs (`true`) are submitted, so the queue grows
//! to N. Then the blocker is cancelled and the N jobs run one after another through the
//! device: every exit frees the device and the core's pass launches the next job from a queue
//! of up to N. Reported: the core's decision latency per input (time in `handle_event` plus
//! draining its outputs), the journal commit latency (SQLite WAL, synchronous=FULL), and the
//! launch overhead (from the core's `Launch` to the process running: the commit of the launch and the spawn).

use std::time::{Duration, Instant};
use tessera_core::PolicySpec;
use tessera_exec::config::{CpuDevices, GpuEnabled};
use tessera_exec::handle::Histogram;
use tessera_exec::{start, DaemonConfig, JobStatus, JobSubmission};

fn summary(name: &str, h: &Histogram) {
    let q = |p: f64| h.quantile(p).map(|s| format!("{:.1} us", s * 1e6)).unwrap_or_else(|| "-".into());
    println!(
        "{name:<24} n={:<7} mean={:.1} us  p50={}  p99={}  max={}",
        h.count,
        if h.count > 0 { h.sum_s / h.count as f64 * 1e6 } else { 0.0 },
        q(0.5),
        q(0.99),
        q(1.0)
    );
}

fn main() {
    let n: usize = std::env::var("TESSERA_BENCH_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut c = DaemonConfig::new(dir.path());
        c.cpu.devices = CpuDevices::Count(1);
        c.gpu.enabled = GpuEnabled::Off;
        c.policy = PolicySpec::named("priority");
        c.policy.preempt = Some(false);
        c.allow_unvalidated = true;
        c.health.interval_s = 3600.0;
        let (h, _join) = start(c).await.unwrap();
        let mut blocker = JobSubmission::command("sleep", &["3600"]);
        blocker.devices.count = 1;
        let blocker = h.submit(blocker, "bench").await.unwrap().id;
        let t0 = Instant::now();
        let mut last = 0;
        for i in 0..n {
            let mut s = JobSubmission::command("true", &[]);
            s.devices.count = 1;
            s.priority = (i % 7) as i32;
            last = h.submit(s, "bench").await.unwrap().id;
        }
        let submit_s = t0.elapsed().as_secs_f64();
        let m = h.metrics();
        println!("submitted {n} jobs behind a blocker in {submit_s:.2} s ({:.0} submissions/s)", n as f64 / submit_s);
        summary("decision latency", &m.decision_latency);
        summary("journal commit", &m.journal_commit_latency);
        let before = m.decision_latency.count;
        let t1 = Instant::now();
        h.cancel(blocker).await.unwrap();
        loop {
            let v = h.show(last).await.unwrap().unwrap();
            let done = h.metrics().jobs_by_state.get("finished").copied().unwrap_or(0);
            if !v.state.is_live() && done as usize >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let run_s = t1.elapsed().as_secs_f64();
        let m = h.metrics();
        println!("ran {n} jobs through one device in {run_s:.2} s ({:.1} ms per job, exit to next start included)", run_s * 1e3 / n as f64);
        // Latencies of the run phase only: the most recent observations.
        let mut run_phase = Histogram::latency();
        let skip = m.decision_latency.recent_s.len().saturating_sub((m.decision_latency.count - before) as usize);
        for &s in m.decision_latency.recent_s.iter().skip(skip) {
            run_phase.observe(s);
        }
        summary("decision latency (run)", &run_phase);
        summary("launch overhead", &m.launch_overhead);
        summary("journal commit (all)", &m.journal_commit_latency);
        let failed = m.jobs_by_state.get("failed").copied().unwrap_or(0);
        assert_eq!(failed, 0, "no job failed");
        assert_eq!(h.show(blocker).await.unwrap().unwrap().state, JobStatus::CANCELLED);
        h.shutdown().await.unwrap();
    });
}
