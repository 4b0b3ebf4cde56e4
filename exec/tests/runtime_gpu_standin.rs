//! The NVIDIA backend against a stand-in NVML: `tests/nvml_standin/nvml_standin.c`, a small C
//! library each test compiles at its own path, exporting the NVML calls nvml-wrapper and the
//! backend make, backed by a state file the test rewrites. It is not the driver: it exercises
//! our code, nvml-wrapper and the daemon's handling of GPU devices (discovery, UUID binding,
//! MIG, health readings and cordoning, Xid events, a GPU that vanishes, preemption of a GPU
//! job) on machines without a GPU. What only a GPU can show (that a CUDA program sees exactly
//! the bound GPU, NVML's real answers) is `scripts/gpu-check.sh`'s.
//!
//! Without a C compiler (`$CC`, else `cc`) each test prints "skipped: no C compiler" and returns.

mod runtime_common;
use runtime_common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tessera_core::PolicySpec;
use tessera_exec::config::{GpuEnabled, HealthConfig};
use tessera_exec::journal::Journal;
use tessera_exec::{start, DaemonConfig, DaemonHandle, DeviceView, ExecError, ExecEvent, JobStatus, JobSubmission, JobView};

const H100: &str = "GPU-5f1c0a2e-7d41-4c36-9a0b-1e2d3c4b5a60";
const A100: &str = "GPU-0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b";
const MIG0: &str = "MIG-3c1b2a09-8f7e-5d6c-b4a3-92817f6e5d4c";
const MIG1: &str = "MIG-7a6b5c4d-3e2f-5a1b-8c9d-0e1f2a3b4c5d";
const MIG_MODEL: &str = "A100-40GB-MIG-20gb";
/// Long enough for a slow, shared CI machine; every wait ends as soon as its condition holds.
const LIMIT: Duration = Duration::from_secs(20);

/// One H100 (80 GB, 1 GiB used, 41 C, 7 % busy, no ECC errors), MIG off.
fn h100_line(temp_c: u32, ecc: u64) -> String {
    format!("gpu|{H100}|NVIDIA H100 80GB HBM3|81559|1024|{temp_c}|7|{ecc}|0\n")
}

/// An A100 40 GB with MIG on and two 20 GB instances.
fn a100_mig_lines() -> String {
    format!("gpu|{A100}|NVIDIA A100-SXM4-40GB|40960|0|38|0|0|1\nmig|{A100}|{MIG0}|20096\nmig|{A100}|{MIG1}|20096\n")
}

/// A compiled stand-in library and its state file, in a directory of their own.
struct Standin {
    _dir: tempfile::TempDir,
    lib: PathBuf,
    state: PathBuf,
}

impl Standin {
    /// Compiles the stand-in with its state file's path built in and writes `state`; `None`
    /// (after saying so) when there is no C compiler.
    fn new(state: &str) -> Option<Standin> {
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        if Command::new(&cc).arg("--version").output().is_err() {
            println!("skipped: no C compiler (`{cc}` not found; set CC or install gcc)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (lib, state_path) = (dir.path().join("libnvidia-ml.so.1"), dir.path().join("state"));
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nvml_standin/nvml_standin.c");
        let out = Command::new(&cc)
            .args(["-shared", "-fPIC", "-O1", "-pthread", "-o"])
            .arg(&lib)
            .arg(format!("-DSTANDIN_STATE=\"{}\"", state_path.display()))
            .arg(&source)
            .output()
            .unwrap();
        assert!(out.status.success(), "expected {} to compile the stand-in NVML; it said:\n{}", cc, String::from_utf8_lossy(&out.stderr));
        let s = Standin { _dir: dir, lib, state: state_path };
        s.write(state);
        Some(s)
    }

    /// Replaces the state file at once (by rename: the library re-reads it at every call and
    /// must never see half of it).
    fn write(&self, state: &str) {
        let tmp = self.state.with_extension("tmp");
        std::fs::write(&tmp, state).unwrap();
        std::fs::rename(&tmp, &self.state).unwrap();
    }

    fn append(&self, line: &str) {
        let mut text = std::fs::read_to_string(&self.state).unwrap();
        text.push_str(line);
        self.write(&text);
    }

    /// A daemon configuration with one CPU device and the GPUs of this stand-in (required),
    /// health polled every 50 ms.
    fn config(&self, state_dir: &Path, policy: PolicySpec) -> DaemonConfig {
        let mut c = config(state_dir, 1, policy);
        c.gpu.enabled = GpuEnabled::On;
        c.gpu.nvml_library = Some(self.lib.clone());
        c.health = HealthConfig { interval_s: 0.05, ..HealthConfig::default() };
        c
    }
}

fn gpu_job(script: &str, model: &str) -> JobSubmission {
    let mut s = sh(script);
    s.devices.models = vec![model.to_string()];
    s
}

/// Polls the devices until one satisfies `done`; panics after `LIMIT` saying what was expected
/// and showing the device as last seen.
async fn wait_device(h: &DaemonHandle, name: &str, what: &str, done: impl Fn(&DeviceView) -> bool) -> DeviceView {
    let t0 = Instant::now();
    loop {
        let devices = h.devices().await.unwrap();
        let d = devices.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("expected a device {name}, found {:?}", devices.iter().map(|d| &d.name).collect::<Vec<_>>()));
        if done(d) {
            return d.clone();
        }
        assert!(t0.elapsed() < LIMIT, "expected device {name} to be {what} within {LIMIT:?}; last seen: {d:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn events(state_dir: &Path, kind: &str) -> Vec<ExecEvent> {
    Journal::open_read_only(&state_dir.join("journal.sqlite")).unwrap().events(Some(kind)).unwrap()
}

/// Polls the journal until an event of `kind` satisfies `done`.
async fn wait_event(state_dir: &Path, kind: &str, what: &str, done: impl Fn(&ExecEvent) -> bool) -> ExecEvent {
    let t0 = Instant::now();
    loop {
        let all = events(state_dir, kind);
        if let Some(e) = all.iter().find(|e| done(e)) {
            return e.clone();
        }
        assert!(t0.elapsed() < LIMIT, "expected a `{kind}` event {what} within {LIMIT:?}; the journal has: {all:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_job(h: &DaemonHandle, id: u64, what: &str, done: impl Fn(&JobView) -> bool) -> JobView {
    let t0 = Instant::now();
    loop {
        let v = h.show(id).await.unwrap().expect("the job exists");
        if done(&v) {
            return v;
        }
        assert!(t0.elapsed() < LIMIT, "expected job {id} to be {what} within {LIMIT:?}; last seen: {v:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stdout(v: &JobView) -> String {
    std::fs::read_to_string(&v.stdout_path).unwrap_or_default()
}

/// A job that prints its binding, then waits for `gate` to exist (so a test decides when it
/// ends, and what runs beside it, without sleeping).
fn gated(gate: &Path) -> String {
    format!("echo \"$CUDA_VISIBLE_DEVICES\"; while [ ! -e '{}' ]; do sleep 0.02; done", gate.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_maps_names_to_models_offers_mig_instances_and_binds_by_uuid() {
    let Some(nvml) = Standin::new(&(h100_line(41, 0) + &a100_mig_lines())) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(nvml.config(dir.path(), PolicySpec::named("fifo"))).await.unwrap();

    let gpus: Vec<DeviceView> = h.devices().await.unwrap().into_iter().filter(|d| d.backend == "nvidia").collect();
    let seen: Vec<(&str, &str, Option<&str>)> = gpus.iter().map(|d| (d.name.as_str(), d.model.as_str(), d.uuid.as_deref())).collect();
    assert_eq!(
        seen,
        vec![("gpu0", "H100", Some(H100)), ("gpu1-mig0", MIG_MODEL, Some(MIG0)), ("gpu1-mig1", MIG_MODEL, Some(MIG1))],
        "expected the H100 as catalogue model H100 and the A100 as its two MIG instances (not the parent), by UUID"
    );

    // Readings are what the file says.
    let d = wait_device(&h, "gpu0", "read", |d| d.reading.is_some()).await;
    let r = d.reading.unwrap();
    assert_eq!((r.temp_c, r.mem_used_mib, r.mem_total_mib, r.utilization, r.ecc_uncorrected), (Some(41.0), Some(1024), Some(81559), Some(0.07), Some(0)), "H100 reading: {r:?}");
    assert_eq!(r.error, None, "H100 reading: {r:?}");
    let d = wait_device(&h, "gpu1-mig0", "read", |d| d.reading.is_some()).await;
    let r = d.reading.clone().unwrap();
    assert_eq!((r.mem_total_mib, r.mem_used_mib, r.error.as_deref()), (Some(20096), Some(0), None), "MIG instance reading: {r:?}");
    assert!(!d.unhealthy, "expected the MIG instance in service: {d:?}");

    // Binding: the H100 job sees exactly the H100's UUID.
    let v = h.submit(gpu_job("echo \"$CUDA_VISIBLE_DEVICES\"", "H100"), "u").await.unwrap();
    let v = wait_done(&h, v.id).await;
    assert_eq!((v.state, v.devices.clone()), (JobStatus::COMPLETED, vec!["gpu0".to_string()]), "{v:#?}");
    assert_eq!(stdout(&v), format!("{H100}\n"), "expected CUDA_VISIBLE_DEVICES to be exactly the H100's UUID");

    // Two MIG jobs at once: each sees one instance's UUID, not the parent's, and not the same one.
    let gate = dir.path().join("go");
    let a = h.submit(gpu_job(&gated(&gate), MIG_MODEL), "u").await.unwrap();
    let b = h.submit(gpu_job(&gated(&gate), MIG_MODEL), "u").await.unwrap();
    let a = wait_job(&h, a.id, "running and bound", |v| v.state == JobStatus::RUNNING && stdout(v).ends_with('\n')).await;
    let b = wait_job(&h, b.id, "running and bound", |v| v.state == JobStatus::RUNNING && stdout(v).ends_with('\n')).await;
    std::fs::write(&gate, "").unwrap();
    let mut bound = vec![(a.devices[0].clone(), stdout(&a)), (b.devices[0].clone(), stdout(&b))];
    bound.sort();
    assert_eq!(
        bound,
        vec![("gpu1-mig0".to_string(), format!("{MIG0}\n")), ("gpu1-mig1".to_string(), format!("{MIG1}\n"))],
        "expected one job per MIG instance, each bound to its instance's MIG UUID"
    );
    for id in [a.id, b.id] {
        let v = wait_done(&h, id).await;
        assert_eq!(v.state, JobStatus::COMPLETED, "{v:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temperature_and_ecc_past_the_thresholds_cordon_the_gpu_until_they_are_back() {
    let Some(nvml) = Standin::new(&h100_line(41, 0)) else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut c = nvml.config(dir.path(), PolicySpec::named("fifo"));
    c.health.max_temp_c = Some(85.0);
    c.health.max_ecc_uncorrected = Some(0);
    let (h, _join) = start(c).await.unwrap();
    wait_device(&h, "gpu0", "read at 41 C and in service", |d| d.reading.as_ref().is_some_and(|r| r.temp_c == Some(41.0)) && !d.unhealthy).await;

    nvml.write(&h100_line(92, 0));
    let d = wait_device(&h, "gpu0", "cordoned for its temperature", |d| d.unhealthy).await;
    assert_eq!(d.health_reason.as_deref(), Some("temperature 92 C > max_temp_c 85"), "{d:#?}");
    let e = wait_event(dir.path(), "device_unhealthy", "for gpu0", |e| e.detail["device"] == "gpu0").await;
    assert_eq!(e.detail["why"], "temperature 92 C > max_temp_c 85", "{e:?}");

    // A job for the H100 waits while it is cordoned, saying it waits for devices.
    let job = h.submit(gpu_job("echo \"$CUDA_VISIBLE_DEVICES\"", "H100"), "u").await.unwrap();
    let v = wait_job(&h, job.id, "queued with a reason", |v| v.wait_reason.is_some()).await;
    assert_eq!(v.state, JobStatus::QUEUED, "expected the job to wait for the cordoned GPU: {v:#?}");
    assert_eq!(v.wait_reason.as_ref().unwrap()["kind"], "devices", "{v:#?}");

    // Cooler again: the GPU is back and the job runs on it.
    nvml.write(&h100_line(60, 0));
    let v = wait_done(&h, job.id).await;
    assert_eq!((v.state, stdout(&v)), (JobStatus::COMPLETED, format!("{H100}\n")), "expected the job to run on the H100 once it cooled: {v:#?}");
    let d = wait_device(&h, "gpu0", "in service", |d| !d.unhealthy).await;
    assert_eq!(d.health_reason, None, "{d:#?}");
    wait_event(dir.path(), "device_recovered", "for gpu0", |e| e.detail["device"] == "gpu0").await;

    // An uncorrected ECC error past max_ecc_uncorrected cordons it too.
    nvml.write(&h100_line(60, 2));
    let d = wait_device(&h, "gpu0", "cordoned for ECC errors", |d| d.unhealthy).await;
    assert_eq!(d.health_reason.as_deref(), Some("uncorrected ECC errors 2 > max_ecc_uncorrected 0"), "{d:#?}");
    nvml.write(&h100_line(60, 0));
    wait_device(&h, "gpu0", "back in service", |d| !d.unhealthy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_gpu_is_cordoned_and_its_job_requeued_without_grace() {
    let Some(nvml) = Standin::new(&h100_line(41, 0)) else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut policy = PolicySpec::named("fifo");
    // A failed device gives no grace, whatever the policy's.
    policy.grace_s = Some(30.0);
    let (h, _join) = start(nvml.config(dir.path(), policy)).await.unwrap();
    wait_device(&h, "gpu0", "read", |d| d.reading.is_some()).await;
    let gate = dir.path().join("go");
    let job = h.submit(gpu_job(&format!("{}; echo finished", gated(&gate)), "H100"), "u").await.unwrap();
    wait_job(&h, job.id, "running on the H100", |v| v.state == JobStatus::RUNNING && stdout(v) == format!("{H100}\n")).await;

    // Off the bus: NVML no longer finds it by its UUID.
    let t0 = Instant::now();
    nvml.write("");
    let d = wait_device(&h, "gpu0", "cordoned", |d| d.unhealthy).await;
    let why = d.health_reason.clone().unwrap();
    assert!(why.starts_with(&format!("no reading: {H100} not found")), "expected the reason to say the GPU is not found, got {why:?}");
    assert!(d.reading.as_ref().and_then(|r| r.error.as_ref()).is_some(), "expected a reading with the error: {d:#?}");
    let v = wait_job(&h, job.id, "requeued", |v| v.state == JobStatus::QUEUED).await;
    assert!(t0.elapsed() < Duration::from_secs(10), "expected the job stopped without the policy's 30 s grace; took {:?}", t0.elapsed());
    assert!(!stdout(&v).contains("finished"), "expected the job stopped, not finished: {:?}", stdout(&v));
    let decisions = events(dir.path(), "decision");
    assert!(
        decisions.iter().any(|e| e.job == Some(job.id) && e.detail["decision"].to_string().contains("device_failed")),
        "expected a preemption of job {} for the failed device in the journal: {decisions:#?}",
        job.id
    );
    assert!(events(dir.path(), "evicted").iter().any(|e| e.job == Some(job.id)), "expected job {} evicted", job.id);
    let v = wait_job(&h, job.id, "waiting for devices", |v| v.wait_reason.is_some()).await;
    assert_eq!(v.wait_reason.as_ref().unwrap()["kind"], "devices", "{v:#?}");

    // Back on the bus (after a reset, say): the job runs again and finishes.
    nvml.write(&h100_line(41, 0));
    std::fs::write(&gate, "").unwrap();
    let v = wait_done(&h, job.id).await;
    assert_eq!((v.state, v.runs.saturating_sub(1)), (JobStatus::COMPLETED, 1), "expected the job rerun once after the GPU returned: {v:#?}");
    // The GPU fell off the bus under it: a restart (a run stopped by a device failure), not a preemption.
    assert_eq!((v.restarts, v.preemptions), (1, 0), "{v:#?}");
    assert_eq!(stdout(&v), format!("{H100}\n{H100}\nfinished\n"), "expected two runs on the H100, the second finishing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_xid_cordons_for_good_and_an_application_xid_is_only_journalled() {
    let Some(nvml) = Standin::new(&h100_line(41, 0)) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(nvml.config(dir.path(), PolicySpec::named("fifo"))).await.unwrap();
    wait_device(&h, "gpu0", "read", |d| d.reading.is_some()).await;
    let gate = dir.path().join("go");
    let job = h.submit(gpu_job(&gated(&gate), "H100"), "u").await.unwrap();
    wait_job(&h, job.id, "running", |v| v.state == JobStatus::RUNNING).await;

    // Xid 13 (graphics engine exception): the application's fault; journalled, nothing more.
    nvml.append(&format!("xid|{H100}|13\n"));
    let e = wait_event(dir.path(), "device_xid", "for Xid 13", |e| e.detail["xid"] == 13).await;
    assert_eq!((&e.detail["device"], &e.detail["fatal"]), (&"gpu0".into(), &false.into()), "{e:?}");
    assert!(e.detail["message"].as_str().unwrap().contains("stays in service"), "{e:?}");
    let d = wait_device(&h, "gpu0", "read with Xid 13 seen", |d| d.reading.as_ref().is_some_and(|r| r.xids_seen == [13])).await;
    assert!(!d.unhealthy, "expected Xid 13 not to cordon the GPU: {d:#?}");
    assert_eq!(h.show(job.id).await.unwrap().unwrap().state, JobStatus::RUNNING, "expected the job to keep running after Xid 13");

    // Xid 79 (fallen off the bus): cordoned, the job requeued.
    nvml.append(&format!("xid|{H100}|79\n"));
    let e = wait_event(dir.path(), "device_xid", "for Xid 79", |e| e.detail["xid"] == 79).await;
    assert_eq!((&e.detail["device"], &e.detail["fatal"]), (&"gpu0".into(), &true.into()), "{e:?}");
    let d = wait_device(&h, "gpu0", "cordoned", |d| d.unhealthy).await;
    let why = d.health_reason.clone().unwrap();
    assert!(why.starts_with("Xid 79 (GPU has fallen off the bus)"), "expected the reason to name Xid 79, got {why:?}");
    let v = wait_job(&h, job.id, "requeued", |v| v.state == JobStatus::QUEUED).await;
    assert_eq!(v.runs.saturating_sub(1), 0, "{v:#?}");
    assert_eq!(events(dir.path(), "device_xid").len(), 2, "expected each Xid journalled once");

    // It stays cordoned: later readings bring no new Xid but still carry 79, and the GPU's
    // readings are otherwise fine.
    let d = wait_device(&h, "gpu0", "read again after the Xid", |d| d.reading.as_ref().is_some_and(|r| r.xids_new.is_empty() && r.xids_seen == [13, 79])).await;
    assert!(d.unhealthy, "expected the GPU to stay cordoned after Xid 79: {d:#?}");
    assert_eq!(h.show(job.id).await.unwrap().unwrap().state, JobStatus::QUEUED, "expected the job to wait while the GPU needs a reset");
    assert_eq!(events(dir.path(), "device_xid").len(), 2, "expected no Xid journalled twice");
    std::fs::write(&gate, "").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointing_gpu_job_is_preempted_by_a_higher_tier_and_resumes() {
    let Some(nvml) = Standin::new(&h100_line(41, 0)) else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut policy = PolicySpec::named("priority");
    policy.grace_s = Some(2.0);
    let (h, _join) = start(nvml.config(dir.path(), policy)).await.unwrap();
    // As exec/examples/gpu_check.rs does on a real GPU: progress kept in the checkpoint dir.
    let script = r#"f="$TESSERA_CHECKPOINT_DIR/progress"; i=$(tail -n 1 "$f" 2>/dev/null || echo 0)
trap 'echo "stopped at $i on $CUDA_VISIBLE_DEVICES"; exit 143' TERM
while [ "$i" -lt 20 ]; do i=$((i+1)); echo "$i" >> "$f"; sleep 0.05; done; echo "done on $CUDA_VISIBLE_DEVICES restart=$TESSERA_RESTART_COUNT""#;
    let mut low = gpu_job(script, "H100");
    low.checkpointable = true;
    let low = h.submit(low, "u").await.unwrap();
    let progress = low.checkpoint_dir.join("progress");
    let lines = |p: &Path| std::fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0);
    let t0 = Instant::now();
    while lines(&progress) < 3 {
        assert!(t0.elapsed() < LIMIT, "expected the low job to make progress; {} lines in {}", lines(&progress), progress.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut high = gpu_job("echo \"high on $CUDA_VISIBLE_DEVICES\"", "H100");
    high.priority = 10;
    let high = h.submit(high, "u").await.unwrap();

    let high = wait_done(&h, high.id).await;
    assert_eq!((high.state, stdout(&high)), (JobStatus::COMPLETED, format!("high on {H100}\n")), "{high:#?}");
    let low = wait_done(&h, low.id).await;
    assert_eq!((low.state, low.runs.saturating_sub(1)), (JobStatus::COMPLETED, 1), "expected the low job preempted once and finished: {low:#?}");
    let out = stdout(&low);
    assert!(out.starts_with("stopped at ") && out.contains(&format!(" on {H100}\n")), "expected the low job to get SIGTERM on the H100; its output: {out:?}");
    assert!(out.ends_with(&format!("done on {H100} restart=1\n")), "expected the low job to finish on the H100 at restart 1; its output: {out:?}");
    // It resumed: 1..=20 once each, not started over.
    let steps: Vec<u32> = std::fs::read_to_string(&progress).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(steps, (1..=20).collect::<Vec<u32>>(), "expected the progress to resume from the checkpoint");
    let signalled = events(dir.path(), "signalled");
    assert!(signalled.iter().any(|e| e.job == Some(low.id) && e.detail["signal"] == "TERM" && e.detail["grace_s"] == 2.0), "expected a SIGTERM with the policy's 2 s grace: {signalled:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_that_does_not_parse_is_an_nvml_error_not_a_crash() {
    let Some(nvml) = Standin::new(&h100_line(41, 0)) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(nvml.config(dir.path(), PolicySpec::named("fifo"))).await.unwrap();
    wait_device(&h, "gpu0", "read", |d| d.reading.is_some()).await;
    nvml.write(&format!("gpu|{H100}|NVIDIA H100 80GB HBM3|lots\n"));
    let d = wait_device(&h, "gpu0", "cordoned", |d| d.unhealthy).await;
    let why = d.health_reason.unwrap();
    assert!(why.starts_with("no reading:") && why.contains("internal driver error"), "expected NVML's unknown error (NVML_ERROR_UNKNOWN) as the reason, got {why:?}");
    nvml.write(&h100_line(41, 0));
    wait_device(&h, "gpu0", "back in service", |d| !d.unhealthy).await;

    // At start, the same file refuses GPUs that are required.
    nvml.write("gpu|broken\n");
    let dir2 = tempfile::tempdir().unwrap();
    match start(nvml.config(dir2.path(), PolicySpec::named("fifo"))).await {
        Err(ExecError::Refused(m)) => assert!(m.contains("gpu.enabled = true") && m.contains(&nvml.lib.display().to_string()), "expected the refusal to name the library, got {m}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_library_that_is_missing_refuses_required_gpus_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("drivers/libnvidia-ml.so.1");
    let mut c = config(dir.path(), 1, PolicySpec::named("fifo"));
    c.gpu.enabled = GpuEnabled::On;
    c.gpu.nvml_library = Some(missing.clone());
    match start(c.clone()).await {
        Err(ExecError::Refused(m)) => assert!(m.contains(&format!("NVML unavailable from {}", missing.display())), "expected the refusal to name {}, got {m}", missing.display()),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    // `auto` runs on the CPUs alone.
    c.gpu.enabled = GpuEnabled::Auto;
    let (h, _join) = start(c).await.unwrap();
    let backends: Vec<String> = h.devices().await.unwrap().into_iter().map(|d| d.backend).collect();
    assert_eq!(backends, vec!["cpu"], "expected only the CPU device without NVML");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mig_instances_carry_their_gpus_temperature_and_ecc_and_are_cordoned_with_it() {
    let Some(nvml) = Standin::new(&a100_mig_lines()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut c = nvml.config(dir.path(), PolicySpec::named("fifo"));
    c.health.max_temp_c = Some(85.0);
    let (h, _join) = start(c).await.unwrap();
    for name in ["gpu0-mig0", "gpu0-mig1"] {
        let d = wait_device(&h, name, "read", |d| d.reading.is_some()).await;
        let r = d.reading.unwrap();
        assert_eq!((r.temp_c, r.ecc_uncorrected), (Some(38.0), Some(0)), "expected {name} to read its GPU's temperature and ECC count: {r:?}");
    }
    // The instances share one die: an overheating A100 takes both out of service.
    nvml.write(&a100_mig_lines().replacen("|38|", "|95|", 1));
    for name in ["gpu0-mig0", "gpu0-mig1"] {
        let d = wait_device(&h, name, "cordoned for its GPU's temperature", |d| d.unhealthy).await;
        assert_eq!(d.health_reason.as_deref(), Some("temperature 95 C > max_temp_c 85"), "{d:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_in_mig_mode_without_instances_is_not_offered_whole() {
    // MIG on, no instance created: CUDA can run nothing on it.
    let Some(nvml) = Standin::new(&(h100_line(41, 0) + &format!("gpu|{A100}|NVIDIA A100-SXM4-40GB|40960|0|38|0|0|1\n"))) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(nvml.config(dir.path(), PolicySpec::named("fifo"))).await.unwrap();
    let gpus: Vec<(String, Option<String>)> = h.devices().await.unwrap().into_iter().filter(|d| d.backend == "nvidia").map(|d| (d.name, d.uuid)).collect();
    assert_eq!(gpus, vec![("gpu0".to_string(), Some(H100.to_string()))], "expected only the H100: the A100 is in MIG mode with no instance to run on");
}
