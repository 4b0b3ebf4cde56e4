//! Runs the executor against this machine's real NVIDIA GPUs and prints what it saw:
//! NVML discovery (names, catalogue models, UUIDs), health readings, a job bound to one GPU by
//! UUID (its output shows what the job sees), and the preemption of a GPU job by a higher tier
//! with the victim resuming. `scripts/gpu-check.sh` builds and runs it.
//!
//!     cargo run --release -p tessera-exec --example gpu_check -- [JOB_COMMAND...]
//!
//! JOB_COMMAND (default `nvidia-smi -L`) is what the bound job runs.

use std::time::{Duration, Instant};
use tessera_core::PolicySpec;
use tessera_exec::config::{CpuDevices, GpuEnabled};
use tessera_exec::{start, DaemonConfig, JobStatus, JobSubmission};

async fn wait_done(h: &tessera_exec::DaemonHandle, id: u64, limit: Duration) -> tessera_exec::JobView {
    let t0 = Instant::now();
    loop {
        let v = h.show(id).await.unwrap().unwrap();
        if !v.state.is_live() || t0.elapsed() > limit {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (program, rest) = match args.split_first() {
        Some((p, r)) => (p.clone(), r.to_vec()),
        None => ("nvidia-smi".to_string(), vec!["-L".to_string()]),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut c = DaemonConfig::new(dir.path());
    c.cpu.devices = CpuDevices::Count(1);
    c.gpu.enabled = GpuEnabled::On;
    c.policy = PolicySpec::named("priority");
    c.policy.grace_s = Some(3.0);
    c.allow_unvalidated = true;
    c.health.interval_s = 1.0;
    let (h, _join) = match start(c).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("gpu-check: the executor could not start with GPUs: {e}");
            std::process::exit(2);
        }
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let devices = h.devices().await.unwrap();
    let gpus: Vec<_> = devices.iter().filter(|d| d.backend == "nvidia").collect();
    println!("== discovery: {} GPU device(s)", gpus.len());
    for d in &gpus {
        println!("  {} model={} uuid={} reading={}", d.name, d.model, d.uuid.as_deref().unwrap_or("-"), serde_json::to_string(&d.reading).unwrap());
    }
    let Some(gpu) = gpus.first() else {
        eprintln!("gpu-check: NVML loaded but found no GPU");
        std::process::exit(2);
    };
    let model = gpu.model.clone();

    println!("== a job bound to one GPU: {program} {}", rest.join(" "));
    let mut s = JobSubmission::command(&program, &rest.iter().map(String::as_str).collect::<Vec<_>>());
    s.devices.count = 1;
    s.devices.models = vec![model.clone()];
    let v = h.submit(s, "gpu-check").await.unwrap();
    let v = wait_done(&h, v.id, Duration::from_secs(120)).await;
    println!("  state={:?} exit={:?} devices={:?}", v.state, v.exit_code, v.devices);
    println!("  stdout:\n{}", std::fs::read_to_string(&v.stdout_path).unwrap_or_default());
    println!("  stderr:\n{}", std::fs::read_to_string(&v.stderr_path).unwrap_or_default());

    println!("== preemption of a GPU job");
    let script = r#"f="$TESSERA_CHECKPOINT_DIR/progress"; i=$(tail -n 1 "$f" 2>/dev/null || echo 0)
trap 'echo "stopped at $i on $CUDA_VISIBLE_DEVICES"; exit 143' TERM
while [ "$i" -lt 30 ]; do i=$((i+1)); echo "$i" >> "$f"; sleep 0.1; done; echo "done on $CUDA_VISIBLE_DEVICES restart=$TESSERA_RESTART_COUNT""#;
    let gpu_count = gpus.iter().filter(|d| d.model == model).count() as u32;
    let mut low = JobSubmission::command("sh", &["-c", script]);
    low.devices.count = gpu_count;
    low.devices.models = vec![model.clone()];
    let low = h.submit(low, "gpu-check").await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut high = JobSubmission::command("sh", &["-c", "echo high on $CUDA_VISIBLE_DEVICES; sleep 0.5"]);
    high.devices.count = 1;
    high.devices.models = vec![model.clone()];
    high.priority = 10;
    let high = h.submit(high, "gpu-check").await.unwrap();
    let high = wait_done(&h, high.id, Duration::from_secs(60)).await;
    let low = wait_done(&h, low.id, Duration::from_secs(60)).await;
    println!("  high: state={:?} stdout={:?}", high.state, std::fs::read_to_string(&high.stdout_path).unwrap_or_default());
    println!("  low: state={:?} restarts={} stdout={:?}", low.state, low.restarts, std::fs::read_to_string(&low.stdout_path).unwrap_or_default());
    let ok = v.state == JobStatus::COMPLETED && high.state == JobStatus::COMPLETED && low.state == JobStatus::COMPLETED && low.restarts == 1;
    let m = h.metrics();
    println!("== metrics: decision latency p99 {:?} s, launch overhead p99 {:?} s", m.decision_latency.quantile(0.99), m.launch_overhead.quantile(0.99));
    println!("gpu-check: {}", if ok { "PASS" } else { "FAIL" });
    std::process::exit(if ok { 0 } else { 1 });
}
