//! Tenants isolated by Unix users and cgroups, with real processes, real users and real
//! cgroups. The tests that need root, the users `tsr-test-a` and `tsr-test-b` (`.ci/run`
//! creates them) or a writable cgroup hierarchy say why they skipped where that is missing.

mod runtime_common;
use runtime_common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_core::PolicySpec;
use tessera_exec::cgroup::{CgroupMode, Cgroups};
use tessera_exec::config::TenantEntry;
use tessera_exec::isolation::{lookup_user, RunAs};
use tessera_exec::process::{is_alive, proc_stat};
use tessera_exec::{start, DaemonConfig, ExecError, JobStatus};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The two test users, or why the test cannot run.
fn test_users(test: &str) -> Option<(RunAs, RunAs)> {
    if !is_root() {
        eprintln!("SKIPPED {test}: not root (jobs can run as another user only from a root daemon)");
        return None;
    }
    match (lookup_user("tsr-test-a").unwrap(), lookup_user("tsr-test-b").unwrap()) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => {
            eprintln!("SKIPPED {test}: the users tsr-test-a and tsr-test-b do not exist (`.ci/run` creates them when root)");
            None
        }
    }
}

/// Whether job cgroups can be created here; says why not.
fn cgroups_writable(test: &str) -> bool {
    let probe = tempfile::tempdir().unwrap();
    match Cgroups::detect(CgroupMode::Required, probe.path()) {
        Ok(c) => {
            // The probe's (empty) scope goes again.
            if let Cgroups::V1 { scopes } = &c {
                scopes.iter().for_each(|(_, d)| drop(std::fs::remove_dir(d)));
            } else if let Cgroups::V2 { scope } = &c {
                let _ = std::fs::remove_dir(scope);
            }
            true
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            false
        }
    }
}

fn two_tenants(dir: &Path, a: &RunAs, b: &RunAs) -> DaemonConfig {
    let mut c = config(dir, 2, PolicySpec::named("fifo"));
    c.tenants = vec![
        TenantEntry { name: "team-a".into(), run_as: Some(a.user.clone()) },
        TenantEntry { name: "team-b".into(), run_as: Some(b.user.clone()) },
    ];
    c
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

fn owner(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().uid()
}

/// Waits until `path` exists and holds a line; returns it.
async fn wait_file(path: &Path) -> String {
    for _ in 0..500 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text.trim().to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} was never written", path.display());
}

/// The directories of a process's cgroups, from /proc/<pid>/cgroup: (controller list, path).
fn cgroups_of(pid: i32) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

/// The memory cgroup directory of `pid` (v1 `memory` hierarchy, or the v2 one).
fn memory_cgroup_dir(pid: i32) -> PathBuf {
    let all = cgroups_of(pid);
    if let Some((_, p)) = all.iter().find(|(c, _)| c.split(',').any(|c| c == "memory")) {
        return PathBuf::from(format!("/sys/fs/cgroup/memory{p}"));
    }
    let (_, p) = all.iter().find(|(c, _)| c.is_empty()).expect("a v2 cgroup line");
    PathBuf::from(format!("/sys/fs/cgroup{p}"))
}

/// F2: two tenants' jobs run at once as two users. A's job tries to SIGKILL B's job (its pid
/// and its group), to read B's output and checkpoint directory, the journal and the state
/// directory: every attempt fails, and B ends completed. A's job has its user's ids and no
/// supplementary group, and none of the daemon's environment variables.
#[test]
fn a_tenants_job_cannot_signal_or_read_another_tenants_job() {
    let Some((a, b)) = test_users("a_tenants_job_cannot_signal_or_read_another_tenants_job") else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_path_buf();
    runtime().block_on(async {
        let (h, _join) = start(two_tenants(&state, &a, &b)).await.unwrap();
        let mut job_b = sh("echo b-secret; echo ck-secret > \"$TESSERA_CHECKPOINT_DIR/state\"; echo ready > \"$TESSERA_CHECKPOINT_DIR/ready\"; sleep 3; echo b-done");
        job_b.tenant = "team-b".into();
        let vb = h.submit(job_b, "bob").await.unwrap();
        let vb = wait_state(&h, vb.id, JobStatus::RUNNING).await;
        wait_file(&vb.checkpoint_dir.join("ready")).await;
        let b_pid = vb.pid.unwrap();

        let journal = state.join("journal.sqlite");
        let script = format!(
            "echo uid=$(id -u) gid=$(id -g) groups=$(id -G)\n\
             kill -9 {b_pid}; echo kill_pid=$?\n\
             kill -9 -{b_pid}; echo kill_group=$?\n\
             cat {out}; echo cat_output=$?\n\
             ls {ck}; echo ls_checkpoints=$?\n\
             cat {ck}/state; echo cat_checkpoint=$?\n\
             cat {journal}; echo cat_journal=$?\n\
             ls {state}; echo ls_state=$?\n\
             echo own > \"$TESSERA_CHECKPOINT_DIR/mine\"; echo write_own=$?\n\
             echo ENV; env",
            out = vb.stdout_path.display(),
            ck = vb.checkpoint_dir.display(),
            journal = journal.display(),
            state = state.display(),
        );
        let mut job_a = sh(&script);
        job_a.tenant = "team-a".into();
        job_a.env.insert("JOB_OWN".into(), "kept".into());
        let va = h.submit(job_a, "alice").await.unwrap();
        let va = wait_done(&h, va.id).await;
        assert_eq!(va.state, JobStatus::COMPLETED, "{va:#?}");
        // B was running all along A's attempts.
        assert!(h.show(vb.id).await.unwrap().unwrap().state.is_live());
        let vb = wait_done(&h, vb.id).await;
        assert_eq!((vb.state, vb.exit_code), (JobStatus::COMPLETED, Some(0)), "B survived A: {vb:#?}");
        assert_eq!(std::fs::read_to_string(&vb.stdout_path).unwrap(), "b-secret\nb-done\n");

        let out = std::fs::read_to_string(&va.stdout_path).unwrap();
        let err = std::fs::read_to_string(&va.stderr_path).unwrap();
        let value = |key: &str| -> String {
            out.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key} in:\n{out}")).to_string()
        };
        assert_eq!(value("uid").split_whitespace().next().unwrap(), a.uid.to_string(), "{out}");
        assert_eq!(out.lines().next().unwrap(), format!("uid={} gid={} groups={}", a.uid, a.gid, a.gid), "only its primary group");
        for key in ["kill_pid", "kill_group", "cat_output", "ls_checkpoints", "cat_checkpoint", "cat_journal", "ls_state"] {
            assert_ne!(value(key), "0", "{key} succeeded:\n{out}\n{err}");
        }
        assert_eq!(value("write_own"), "0", "its own checkpoint directory is writable:\n{err}");
        assert!(err.contains("Operation not permitted"), "the kill was refused by the kernel (EPERM):\n{err}");
        assert!(err.contains("Permission denied"), "{err}");
        assert!(!out.contains("b-secret") && !out.contains("ck-secret"), "{out}");

        // A clean environment: its user's, its own, the executor's; nothing of the daemon's.
        let env: Vec<(&str, &str)> = out.split("ENV\n").nth(1).unwrap().lines().filter_map(|l| l.split_once('=')).collect();
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        assert_eq!(get("USER"), Some(a.user.as_str()));
        assert_eq!(get("HOME"), Some(a.home.as_str()));
        assert_eq!(get("JOB_OWN"), Some("kept"));
        assert_eq!(get("TESSERA_JOB_ID"), Some(va.id.to_string().as_str()));
        let allowed = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "PWD", "OLDPWD", "SHLVL", "_", "JOB_OWN", "CUDA_VISIBLE_DEVICES"];
        let daemon_only: Vec<String> = std::env::vars().map(|(k, _)| k).filter(|k| !allowed.contains(&k.as_str()) && !k.starts_with("TESSERA_")).collect();
        assert!(!daemon_only.is_empty(), "the test process has variables of its own to leak");
        for (k, _) in &env {
            assert!(!daemon_only.iter().any(|d| d == k), "the daemon's `{k}` leaked into the job");
        }

        // Files: the journal is the daemon's alone; each job's directories are its user's.
        assert_eq!(mode(&journal), 0o600);
        assert_eq!(owner(&journal), 0);
        assert_eq!(mode(&state), 0o711, "passable to reach a job's own directory, not listable");
        for (view, user) in [(&va, &a), (&vb, &b)] {
            let job_dir = view.stdout_path.parent().unwrap();
            for d in [job_dir, view.checkpoint_dir.as_path()] {
                assert_eq!((owner(d), mode(d)), (user.uid, 0o700), "{}", d.display());
            }
            assert_eq!((owner(&view.stdout_path), mode(&view.stdout_path)), (user.uid, 0o600));
        }
        h.shutdown().await.unwrap();
    });
}

/// A job allocating past its memory limit ends `oom`, in the API, the journal and the exported
/// trace; a job with the same limit that streams the same bytes completes.
#[test]
fn a_job_past_its_memory_limit_ends_oom() {
    if !is_root() {
        eprintln!("SKIPPED a_job_past_its_memory_limit_ends_oom: not root (cgroups cannot be written)");
        return;
    }
    if !cgroups_writable("a_job_past_its_memory_limit_ends_oom") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut c = config(dir.path(), 2, PolicySpec::named("fifo"));
        c.cgroups = CgroupMode::Required;
        let (h, _join) = start(c).await.unwrap();
        // `tail` keeps its last line whole: 400 MiB without a newline is held in memory.
        let mut hog = sh("head -c 400M /dev/zero | tail -n 1 > /dev/null");
        hog.mem_mib = 64;
        let mut stream = sh("head -c 400M /dev/zero | wc -c");
        stream.mem_mib = 64;
        let hog = h.submit(hog, "u").await.unwrap().id;
        let stream = h.submit(stream, "u").await.unwrap().id;
        let v = wait_for(&h, hog, Duration::from_secs(60), |v| !v.state.is_live()).await;
        assert_eq!(v.state, JobStatus::OOM, "{v:#?}");
        assert!(v.error.as_deref().unwrap_or("").contains("out of memory") && v.error.as_deref().unwrap().contains("64 MiB"), "{v:#?}");
        let s = wait_for(&h, stream, Duration::from_secs(60), |v| !v.state.is_live()).await;
        assert_eq!(s.state, JobStatus::COMPLETED, "{s:#?}");
        assert_eq!(std::fs::read_to_string(&s.stdout_path).unwrap().trim(), (400u64 << 20).to_string());
        h.shutdown().await.unwrap();
    });
    let journal = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
    let finished: Vec<String> = journal.events(Some("finished")).unwrap().iter().filter(|e| e.job == Some(1)).map(|e| e.detail["outcome"].to_string()).collect();
    assert_eq!(finished, vec!["\"oom\"".to_string()]);
    let cleanup: Vec<String> = journal.events(Some("cleanup_failed")).unwrap().iter().map(|e| e.detail.to_string()).collect();
    assert!(cleanup.is_empty(), "every cgroup was emptied and removed: {cleanup:?}");
    let trace = tessera_exec::export::export_trace(&dir.path().join("journal.sqlite")).unwrap();
    let row = trace.lines().find(|l| l.starts_with("1,")).unwrap();
    // One vocabulary: the trace's outcome is `oom` as the journal's state is (no mapping to `failed`).
    assert!(row.contains(",oom,") && row.ends_with(",oom"), "the trace's outcome and exec_state are both oom: {row}");
}

/// A job's cgroup carries the memory and CPU limits of its request, and is removed when the
/// job ends.
#[test]
fn a_jobs_cgroup_has_its_limits_and_goes_with_it() {
    if !is_root() {
        eprintln!("SKIPPED a_jobs_cgroup_has_its_limits_and_goes_with_it: not root (cgroups cannot be written)");
        return;
    }
    if !cgroups_writable("a_jobs_cgroup_has_its_limits_and_goes_with_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut c = config(dir.path(), 2, PolicySpec::named("fifo"));
        c.cgroups = CgroupMode::Required;
        let (h, _join) = start(c).await.unwrap();
        let mut job = sh("sleep 1");
        job.mem_mib = 48;
        job.cpu_milli = 250;
        let v = h.submit(job, "u").await.unwrap();
        let v = wait_state(&h, v.id, JobStatus::RUNNING).await;
        let pid = v.pid.unwrap();
        let mem_dir = memory_cgroup_dir(pid);
        assert!(mem_dir.to_string_lossy().ends_with(&format!("job-{}-run-1", v.id)), "{}", mem_dir.display());
        let v2 = mem_dir.join("memory.max").exists();
        if v2 {
            assert_eq!(std::fs::read_to_string(mem_dir.join("memory.max")).unwrap().trim(), (48u64 << 20).to_string());
            assert_eq!(std::fs::read_to_string(mem_dir.join("cpu.max")).unwrap().trim(), "25000 100000");
        } else {
            assert_eq!(std::fs::read_to_string(mem_dir.join("memory.limit_in_bytes")).unwrap().trim(), (48u64 << 20).to_string());
            let (_, cpu_path) = cgroups_of(pid).into_iter().find(|(c, _)| c.split(',').any(|c| c == "cpu")).expect("a v1 cpu cgroup");
            let cpu_dir = PathBuf::from(format!("/sys/fs/cgroup/cpu{cpu_path}"));
            assert_eq!(std::fs::read_to_string(cpu_dir.join("cpu.cfs_quota_us")).unwrap().trim(), "25000", "a quarter core");
        }
        let procs = std::fs::read_to_string(mem_dir.join("cgroup.procs")).unwrap();
        assert!(procs.lines().any(|p| p.trim() == pid.to_string()), "the wrapper itself is in it: {procs}");
        let v = wait_done(&h, v.id).await;
        assert_eq!(v.state, JobStatus::COMPLETED);
        assert!(!mem_dir.exists(), "the cgroup is removed when the job ends");
        h.shutdown().await.unwrap();
    });
}

/// Starts a job whose shell starts a grandchild in a session of its own (it leaves the job's
/// process group) and returns (job id, grandchild pid, its start ticks).
async fn job_with_escapee(h: &tessera_exec::DaemonHandle, tenant: Option<&str>) -> (u64, i32, u64) {
    let mut job = sh("setsid sh -c 'echo $$ > \"$TESSERA_CHECKPOINT_DIR/escaped.tmp\"; mv \"$TESSERA_CHECKPOINT_DIR/escaped.tmp\" \"$TESSERA_CHECKPOINT_DIR/escaped\"; exec sleep 300' & wait");
    if let Some(t) = tenant {
        job.tenant = t.into();
    }
    let v = h.submit(job, "u").await.unwrap();
    let v = wait_state(h, v.id, JobStatus::RUNNING).await;
    let pid: i32 = wait_file(&v.checkpoint_dir.join("escaped")).await.parse().unwrap();
    let stat = proc_stat(pid).expect("the grandchild runs");
    assert_ne!(stat.pgid, v.pid.unwrap(), "the grandchild left the job's process group");
    (v.id, pid, stat.start_ticks)
}

async fn wait_dead(pid: i32, ticks: u64) -> bool {
    for _ in 0..100 {
        if !is_alive(pid, ticks) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Cancelling a job kills its whole cgroup: a grandchild that escaped the job's process group
/// with `setsid` dies with it. With `cgroups = "off"` the same grandchild survives the
/// cancellation (the reason for cgroups; the test kills it itself), and jobs still run.
#[test]
fn cancelling_a_job_kills_a_setsid_escaped_grandchild_only_with_cgroups() {
    if !is_root() {
        eprintln!("SKIPPED cancelling_a_job_kills_a_setsid_escaped_grandchild_only_with_cgroups: not root (cgroups cannot be written)");
        return;
    }
    if !cgroups_writable("cancelling_a_job_kills_a_setsid_escaped_grandchild_only_with_cgroups") {
        return;
    }
    for mode in [CgroupMode::Required, CgroupMode::Off] {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let mut c = config(dir.path(), 2, PolicySpec::named("fifo"));
            c.cgroups = mode;
            let (h, _join) = start(c).await.unwrap();
            let (id, pid, ticks) = job_with_escapee(&h, None).await;
            h.cancel(id).await.unwrap();
            let v = wait_done(&h, id).await;
            assert_eq!(v.state, JobStatus::CANCELLED, "{v:#?}");
            if mode == CgroupMode::Required {
                assert!(wait_dead(pid, ticks).await, "the escaped grandchild {pid} outlived its cancelled job");
            } else {
                assert!(is_alive(pid, ticks), "without cgroups the escaped grandchild survives its job");
                // SAFETY: kill(2) on the pid this test's job started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                assert!(wait_dead(pid, ticks).await);
            }
            h.shutdown().await.unwrap();
        });
    }
}

/// A job of a `run_as` tenant outlives a crash of the executor; the restarted executor adopts
/// it (same pid, as its user) and finds its cgroup again by name: cancelling it then kills its
/// escaped grandchild too.
#[test]
fn an_adopted_run_as_job_is_recognised_and_its_cgroup_found_again() {
    let Some((a, b)) = test_users("an_adopted_run_as_job_is_recognised_and_its_cgroup_found_again") else { return };
    if !cgroups_writable("an_adopted_run_as_job_is_recognised_and_its_cgroup_found_again") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (id, job_pid, pid, ticks) = rt.block_on(async {
        let mut c = two_tenants(dir.path(), &a, &b);
        c.cgroups = CgroupMode::Required;
        let (h, _join) = start(c).await.unwrap();
        let (id, pid, ticks) = job_with_escapee(&h, Some("team-a")).await;
        let v = h.show(id).await.unwrap().unwrap();
        assert_eq!(std::fs::metadata(format!("/proc/{}", v.pid.unwrap())).unwrap().uid(), a.uid, "the job runs as tenant a's user");
        (id, v.pid.unwrap(), pid, ticks)
    });
    // The crash: every task of the daemon dropped, nothing cleaned up.
    drop(rt);
    assert!(is_alive(pid, ticks));
    runtime().block_on(async {
        let mut c = two_tenants(dir.path(), &a, &b);
        c.cgroups = CgroupMode::Required;
        let (h, _join) = start(c).await.unwrap();
        let v = h.show(id).await.unwrap().unwrap();
        assert_eq!((v.state, v.pid), (JobStatus::RUNNING, Some(job_pid)), "adopted: {v:#?}");
        let mem_dir = memory_cgroup_dir(pid);
        h.cancel(id).await.unwrap();
        let v = wait_done(&h, id).await;
        assert_eq!(v.state, JobStatus::CANCELLED, "{v:#?}");
        assert!(wait_dead(pid, ticks).await, "the adopted job's escaped grandchild outlived it");
        assert!(!mem_dir.exists(), "the adopted job's cgroup is removed");
        h.shutdown().await.unwrap();
    });
}

/// Several tenants without `run_as` are refused at start unless `single_user = true`, which
/// starts, warns and journals the warning. A `run_as` user that does not exist is refused
/// naming the tenant and the user. Needs no root.
#[test]
fn several_tenants_need_their_own_users_or_single_user() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut c = config(dir.path(), 1, PolicySpec::named("fifo"));
        c.tenants = vec![TenantEntry::named("team-a"), TenantEntry::named("team-b")];
        match start(c.clone()).await {
            Err(ExecError::Invalid { field, message }) => {
                assert_eq!(field, "tenants");
                assert!(message.contains("`team-a`, `team-b`") && message.contains("single_user = true"), "{message}");
            }
            Err(other) => panic!("expected an Invalid error naming the tenants, got {other:?}"),
            Ok(_) => panic!("two tenants sharing a user were accepted"),
        }
        c.single_user = true;
        let (h, _join) = start(c.clone()).await.unwrap();
        let mut job = sh("true");
        job.tenant = "team-b".into();
        let v = h.submit(job, "u").await.unwrap();
        assert_eq!(wait_done(&h, v.id).await.state, JobStatus::COMPLETED);
        h.shutdown().await.unwrap();

        c.single_user = false;
        c.tenants = vec![TenantEntry { name: "team-a".into(), run_as: Some("tsr-no-such-user-9".into()) }];
        match start(c).await {
            Err(ExecError::Invalid { field, message }) => {
                assert_eq!(field, "tenants[0].run_as");
                assert!(message.contains("`team-a`") && message.contains("`tsr-no-such-user-9`") && message.contains("does not exist"), "{message}");
            }
            Err(other) => panic!("expected an Invalid error, got {other:?}"),
            Ok(_) => panic!("a missing run_as user was accepted"),
        }
    });
    let journal = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
    let iso = journal.events(Some("isolation")).unwrap();
    assert_eq!(iso.len(), 1, "one start got through");
    assert!(iso[0].detail["warnings"][0].as_str().unwrap().contains("single_user = true"), "{}", iso[0].detail);
}

/// `cgroups = "off"`: jobs run as process groups, the journal says so, and no cgroup is made.
/// Needs no root.
#[test]
fn with_cgroups_off_jobs_still_run_and_no_cgroup_is_made() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let mut c = config(dir.path(), 1, PolicySpec::named("fifo"));
        c.cgroups = CgroupMode::Off;
        let (h, _join) = start(c).await.unwrap();
        let mut job = sh("cat /proc/self/cgroup; exit 0");
        job.mem_mib = 16;
        let v = h.submit(job, "u").await.unwrap();
        let v = wait_done(&h, v.id).await;
        assert_eq!((v.state, v.exit_code), (JobStatus::COMPLETED, Some(0)), "{v:#?}");
        let out = std::fs::read_to_string(&v.stdout_path).unwrap();
        assert!(!out.contains("/tessera/"), "the job is in no tessera cgroup:\n{out}");
        h.shutdown().await.unwrap();
    });
    let journal = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
    let iso = journal.events(Some("isolation")).unwrap();
    assert!(iso[0].detail["cgroups"].as_str().unwrap().contains("process groups only"), "{}", iso[0].detail);
}

/// A run whose main process was killed while no executor ran (no exit status: it is
/// requeued) left a grandchild that escaped its process group: the restarted executor sweeps
/// the run's cgroup, killing the grandchild, before the job runs again.
#[test]
fn a_run_lost_while_the_executor_was_down_leaves_no_process_behind() {
    if !is_root() {
        eprintln!("SKIPPED a_run_lost_while_the_executor_was_down_leaves_no_process_behind: not root (cgroups cannot be written)");
        return;
    }
    if !cgroups_writable("a_run_lost_while_the_executor_was_down_leaves_no_process_behind") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 1, PolicySpec::named("fifo"));
    c.cgroups = CgroupMode::Required;
    let rt = runtime();
    let (id, job_pid, pid, ticks, mem_dir) = rt.block_on(async {
        let (h, _join) = start(c.clone()).await.unwrap();
        let (id, pid, ticks) = job_with_escapee(&h, None).await;
        let v = h.show(id).await.unwrap().unwrap();
        (id, v.pid.unwrap(), pid, ticks, memory_cgroup_dir(pid))
    });
    drop(rt);
    // The run's own processes die with no executor to see it, and so no exit status.
    // SAFETY: kill(2) on the process group of this test's job.
    unsafe { libc::kill(-job_pid, libc::SIGKILL) };
    for _ in 0..100 {
        if proc_stat(job_pid).is_none_or(|s| s.state == 'Z') {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(is_alive(pid, ticks), "the escaped grandchild outlived its job's group");
    runtime().block_on(async {
        let (h, _join) = start(c).await.unwrap();
        assert!(wait_dead(pid, ticks).await, "the lost run's escaped grandchild was not killed at recovery");
        assert!(!mem_dir.exists(), "the lost run's cgroup was not removed");
        let v = wait_for(&h, id, Duration::from_secs(15), |v| v.runs.saturating_sub(1) == 1 && v.state == JobStatus::RUNNING).await;
        assert!(v.checkpoint_dir.exists());
        h.cancel(id).await.unwrap();
        assert_eq!(wait_done(&h, id).await.state, JobStatus::CANCELLED);
        h.shutdown().await.unwrap();
    });
    let journal = tessera_exec::journal::Journal::open_read_only(&dir.path().join("journal.sqlite")).unwrap();
    let swept = journal.events(Some("cgroups_swept")).unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].detail["runs"], serde_json::json!([[id, 1]]));
}
