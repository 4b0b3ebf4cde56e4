//! NVIDIA GPUs through NVML. Where NVML is absent (CI, this project's machines), the GPU test
//! prints why and returns; `gpu.enabled = true` must then refuse to start, clearly.
//! `scripts/gpu-check.sh` is the full check on a GPU machine.

mod runtime_common;
use runtime_common::*;
use tessera_core::PolicySpec;
use tessera_exec::config::GpuEnabled;
use tessera_exec::{start, ExecError, JobStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_job_sees_exactly_its_gpu() {
    if let Err(why) = tessera_exec::devices::nvidia::NvidiaBackend::load(true, std::path::Path::new(tessera_exec::config::DEFAULT_NVML_LIBRARY)) {
        println!("skipping: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 1, PolicySpec::named("fifo"));
    c.gpu.enabled = GpuEnabled::On;
    let (h, _join) = start(c).await.unwrap();
    let gpus: Vec<_> = h.devices().await.unwrap().into_iter().filter(|d| d.backend == "nvidia").collect();
    assert!(!gpus.is_empty(), "NVML loaded, so discovery finds the GPUs");
    let mut s = tessera_exec::JobSubmission::command("sh", &["-c", "echo \"$CUDA_VISIBLE_DEVICES\"; nvidia-smi -L"]);
    s.devices.count = 1;
    s.devices.models = vec![gpus[0].model.clone()];
    let v = h.submit(s, "u").await.unwrap();
    let v = wait_done(&h, v.id).await;
    assert_eq!(v.state, JobStatus::COMPLETED, "{v:#?}");
    let out = std::fs::read_to_string(&v.stdout_path).unwrap();
    let bound = out.lines().next().unwrap().to_string();
    assert!(gpus.iter().any(|g| g.uuid.as_deref() == Some(bound.as_str())), "bound by UUID: {out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("GPU ")).count(), 1, "the job sees one GPU: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpus_required_without_a_driver_refuse_to_start() {
    if tessera_exec::devices::nvidia::NvidiaBackend::load(true, std::path::Path::new(tessera_exec::config::DEFAULT_NVML_LIBRARY)).is_ok() {
        println!("skipping: this machine has NVML");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 1, PolicySpec::named("fifo"));
    c.gpu.enabled = GpuEnabled::On;
    match start(c).await {
        Err(ExecError::Refused(m)) => assert!(m.contains("gpu.enabled = true") && m.contains("NVML unavailable"), "{m}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // `auto` runs on CPUs alone.
    let mut c = config(dir.path(), 1, PolicySpec::named("fifo"));
    c.gpu.enabled = GpuEnabled::Auto;
    let (h, _join) = start(c).await.unwrap();
    assert!(h.devices().await.unwrap().iter().all(|d| d.backend == "cpu"));
}
