//! Real jobs on real CPU devices: output, exit codes, binding, priorities, preemption with
//! resume from a checkpoint, cancellation, time limits, failures to start.

mod runtime_common;
use runtime_common::*;
use std::time::Duration;
use tessera_core::PolicySpec;
use tessera_exec::{start, JobStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mix_of_short_jobs_runs_bound_to_their_cores() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = PolicySpec::named("priority");
    policy.preempt = Some(false);
    let (h, _join) = start(config(dir.path(), 2, policy)).await.unwrap();
    let devices = h.devices().await.unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0].model, "cpu-core");
    // Two blockers hold both devices while the rest queue up.
    let blockers = [h.submit(sh("sleep 0.5"), "alice").await.unwrap().id, h.submit(sh("sleep 0.5"), "alice").await.unwrap().id];
    let mut ids = Vec::new();
    let scripts = [
        ("sleeper", "sleep 0.3; echo slept", 0),
        ("loop", "i=0; while [ $i -lt 5 ]; do echo step $i; i=$((i+1)); done", 1),
        ("burner", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; echo burned $i", 2),
        ("env", "echo \"$TESSERA_JOB_ID|$TESSERA_DEVICES|$TESSERA_RESTART_COUNT|$CUDA_VISIBLE_DEVICES|\"; grep Cpus_allowed_list /proc/self/status", 3),
        ("fails", "echo bad >&2; exit 3", 5),
    ];
    for (name, script, priority) in scripts {
        let mut s = sh(script);
        s.name = name.into();
        s.priority = priority;
        ids.push(h.submit(s, "alice").await.unwrap().id);
    }
    for id in blockers {
        assert_eq!(wait_done(&h, id).await.state, JobStatus::COMPLETED);
    }
    let mut views = Vec::new();
    for &id in &ids {
        views.push(wait_done(&h, id).await);
    }
    for v in &views[..4] {
        assert_eq!(v.state, JobStatus::COMPLETED, "{v:#?}");
        assert_eq!(v.exit_code, Some(0));
        assert_eq!(v.owner, "alice");
        assert!(v.start_unix_s.unwrap() >= v.submit_unix_s && v.end_unix_s.unwrap() >= v.start_unix_s.unwrap());
    }
    let out = |i: usize| std::fs::read_to_string(&views[i].stdout_path).unwrap();
    assert_eq!(out(0), "slept\n");
    assert_eq!(out(1).lines().count(), 5);
    assert_eq!(out(2), "burned 30000\n");
    let env_line = out(3);
    let dev = &views[3].devices[0];
    let core = devices.iter().find(|d| &d.name == dev).unwrap().cores[0];
    assert_eq!(env_line, format!("{}|{dev}|0||\nCpus_allowed_list:\t{core}\n", views[3].id), "bound to its device's core");
    assert_eq!(views[4].state, JobStatus::FAILED);
    assert_eq!(views[4].exit_code, Some(3));
    assert_eq!(std::fs::read_to_string(&views[4].stderr_path).unwrap(), "bad\n");
    // Queued together, they started highest tier first.
    let first_start = |name: &str| views.iter().find(|v| v.name == name).unwrap().start_unix_s.unwrap();
    assert!(first_start("fails") <= first_start("env") && first_start("env") <= first_start("burner"), "{views:#?}");
    assert_eq!(views[4].launch_reason.as_ref().unwrap()["order"]["tier"], 5);
    let m = h.metrics();
    assert!(m.decision_latency.count >= 7 && m.launch_overhead.count == 7, "{m:?}");
}

const RESUMABLE: &str = r#"
f="$TESSERA_CHECKPOINT_DIR/progress"
i=$(tail -n 1 "$f" 2>/dev/null || echo 0)
trap 'echo "stopped at $i restart=$TESSERA_RESTART_COUNT"; exit 143' TERM
while [ "$i" -lt 10 ]; do
  i=$((i+1))
  echo "$i" >> "$f"
  sleep 0.1
done
echo "done restart=$TESSERA_RESTART_COUNT"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_higher_tier_preempts_and_the_victim_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = PolicySpec::named("priority");
    policy.grace_s = Some(2.0);
    let (h, _join) = start(config(dir.path(), 1, policy)).await.unwrap();
    let mut events = h.subscribe();
    let mut low = sh(RESUMABLE);
    low.checkpointable = true;
    let low = h.submit(low, "bob").await.unwrap();
    let checkpoint = low.checkpoint_dir.join("progress");
    wait_for(&h, low.id, Duration::from_secs(10), |_| std::fs::read_to_string(&checkpoint).map(|s| s.lines().count() >= 3).unwrap_or(false)).await;
    let mut high = sh("sleep 0.3; echo high");
    high.priority = 10;
    let high = h.submit(high, "carol").await.unwrap();
    let high_done = wait_done(&h, high.id).await;
    assert_eq!(high_done.state, JobStatus::COMPLETED);
    let low_done = wait_done(&h, low.id).await;
    assert_eq!(low_done.state, JobStatus::COMPLETED, "{low_done:#?}");
    assert_eq!(low_done.runs.saturating_sub(1), 1);
    // The ledger counts a preemption, not a restart (restarts are runs a failure stopped), as jobs.csv does.
    assert_eq!((low_done.preemptions, low_done.restarts), (1, 0), "{low_done:#?}");
    // Every step exactly once: the second run resumed where the first stopped.
    let steps: Vec<u32> = std::fs::read_to_string(&checkpoint).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(steps, (1..=10).collect::<Vec<_>>());
    let out = std::fs::read_to_string(&low_done.stdout_path).unwrap();
    assert!(out.contains("stopped at") && out.contains("restart=0"), "{out}");
    assert!(out.trim_end().ends_with("done restart=1"), "{out}");
    // The high job started only after the victim was evicted.
    assert!(high_done.start_unix_s.unwrap() >= low_done.start_unix_s.unwrap());
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        if e.job == Some(low.id) {
            kinds.push(e.kind.clone());
            if e.kind == "decision" && e.detail["decision"]["decision"] == "preempt" {
                assert_eq!(e.detail["decision"]["reason"]["kind"], "higher_tier", "{}", e.detail);
                assert_eq!(e.detail["policy"]["label"], "priority");
            }
        }
    }
    for k in ["submitted", "launched", "signalled", "evicted", "requeued", "finished"] {
        assert!(kinds.iter().any(|x| x == k), "no `{k}` event for the victim: {kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_running_and_queued_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
    let running = h.submit(sh("echo $$ > pid; sleep 30"), "u").await.unwrap();
    let queued = h.submit(sh("echo never"), "u").await.unwrap();
    let v = wait_state(&h, running.id, JobStatus::RUNNING).await;
    let pid = v.pid.unwrap();
    assert_eq!(h.show(queued.id).await.unwrap().unwrap().state, JobStatus::QUEUED);
    let q = h.cancel(queued.id).await.unwrap();
    assert_eq!(q.state, JobStatus::CANCELLED);
    h.cancel(running.id).await.unwrap();
    let v = wait_done(&h, running.id).await;
    assert_eq!(v.state, JobStatus::CANCELLED);
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_err() || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap().contains(") Z"), "the job's process is gone");
    assert!(matches!(h.cancel(running.id).await, Err(tessera_exec::ExecError::Refused(_))));
    assert!(matches!(h.cancel(999).await, Err(tessera_exec::ExecError::NotFound(_))));
    assert_eq!(std::fs::read_to_string(h.show(queued.id).await.unwrap().unwrap().stdout_path).unwrap_or_default(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_limit_stops_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
    let mut s = sh("trap 'echo term; exit 1' TERM; while :; do sleep 0.05; done");
    s.time_limit_s = Some(0.5);
    let v = h.submit(s, "u").await.unwrap();
    let v = wait_done(&h, v.id).await;
    assert_eq!(v.state, JobStatus::KILLED);
    assert!(v.error.as_deref().unwrap().contains("time limit of 0.5 s"), "{v:?}");
    let ran = v.end_unix_s.unwrap() - v.start_unix_s.unwrap();
    assert!((0.5..3.0).contains(&ran), "ran {ran} s");
    assert_eq!(std::fs::read_to_string(&v.stdout_path).unwrap(), "term\n");
    // A job that ignores SIGTERM is killed after the grace.
    let mut s = sh("trap '' TERM; while :; do sleep 0.05; done");
    s.time_limit_s = Some(0.3);
    let v = h.submit(s, "u").await.unwrap();
    let v = wait_done(&h, v.id).await;
    assert_eq!(v.state, JobStatus::KILLED);
    let ran = v.end_unix_s.unwrap() - v.start_unix_s.unwrap();
    assert!(ran >= 1.2, "SIGKILL came only after the 1 s grace: ran {ran} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_cannot_start_is_retried_then_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
    let mut events = h.subscribe();
    let mut s = tessera_exec::JobSubmission::command("no-such-command-tessera-test", &[]);
    s.retries = Some(2);
    let v = h.submit(s, "u").await.unwrap();
    let after = h.submit(sh("echo next"), "u").await.unwrap();
    let v = wait_done(&h, v.id).await;
    assert_eq!(v.state, JobStatus::FAILED);
    let err = v.error.unwrap();
    assert!(err.contains("failed to start after 3 attempts") && err.contains("not found in PATH"), "{err}");
    // The device it held is free again.
    assert_eq!(wait_done(&h, after.id).await.state, JobStatus::COMPLETED);
    let mut attempts = Vec::new();
    while let Ok(e) = events.try_recv() {
        if e.kind == "spawn_failed" {
            attempts.push(e.at_unix_s);
        }
    }
    assert_eq!(attempts.len(), 3);
    // Exponential backoff: 0.05 s then 0.1 s.
    assert!(attempts[2] - attempts[1] >= attempts[1] - attempts[0], "{attempts:?}");
    assert!(attempts[2] - attempts[1] >= 0.09, "{attempts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_are_refused_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (h, _join) = start(config(dir.path(), 1, PolicySpec::named("fifo"))).await.unwrap();
    let mut s = sh("true");
    s.devices.models = vec!["H100".into()];
    match h.submit(s, "u").await {
        Err(tessera_exec::ExecError::Invalid { field, message }) => {
            assert_eq!(field, "devices.models");
            assert!(message.contains("cpu-core"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let mut s = sh("true");
    s.devices.count = 5;
    let v = h.submit(s, "u").await.unwrap();
    assert_eq!(v.state, JobStatus::REJECTED, "more devices than the fleet has");
    assert!(v.error.unwrap().contains("too_many_devices"));
}
