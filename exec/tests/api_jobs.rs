//! Submissions, refusals, the events stream and /metrics through the real API server
//! (loopback, ephemeral port) over the real daemon running real processes.

mod api_common;

use api_common::*;
use hyper::Method;
use std::time::Duration;
use tessera_exec::api::metrics::parse_text;
use tessera_exec::client::SseEvent;
use tessera_exec::handle::JobStatus;

async fn refused(client: &tessera_exec::client::Client, content_type: &str, body: String) -> (u16, serde_json::Value) {
    let (status, text) = client.raw(Method::POST, "/v1/jobs", Some(content_type), body).await.unwrap();
    let parsed = serde_json::from_slice(&text).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {}", String::from_utf8_lossy(&text)));
    (status.as_u16(), parsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_are_refused_clearly_and_leave_no_trace() {
    let max_body = 4096;
    let server = Server::start(2, api_config(max_body)).await;
    let alice = server.client("alice");

    let json_job = alice.submit(&sh("exit 0")).await.unwrap();
    let toml_job = alice.submit_toml("name = 'from-toml'\ncommand = 'sh'\nargs = ['-c', 'exit 0']\n[devices]\ncount = 1\n").await.unwrap();
    assert_eq!(toml_job.name, "from-toml");

    // Malformed JSON, an unknown key, a bad value: 400 naming the field.
    let (status, body) = refused(&alice, "application/json", r#"{"command": "true",#"#.into()).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = refused(&alice, "application/json", r#"{"command": "true", "devcies": {"count": 1}}"#.into()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("devcies"), "{body}");
    let (status, body) = refused(&alice, "application/json", r#"{"command": "true", "devices": {"count": 2, "share": 0.5}}"#.into()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "devices.share", "{body}");
    let (status, body) = refused(&alice, "application/json", r#"{"command": "true", "priority": "high"}"#.into()).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("priority")), "{body}");
    let (status, body) = refused(&alice, "application/json", r#"{"command": ""}"#.into()).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("command")), "{body}");
    // A number beyond its bound (this one once panicked the daemon arming its timer, after
    // the job was committed): 400 naming the field and the bound, and nothing is committed.
    let (status, body) = refused(&alice, "application/json", r#"{"command":"sleep","args":["45"],"time_limit_s":1e20}"#.into()).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("time_limit_s")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("3155760000 s (100 years)"), "{body}");
    let (status, body) = refused(&alice, "application/toml", "command = 'sleep'\nargs = ['45']\nstated_duration_s = 1e300\n".into()).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("stated_duration_s")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("100 years"), "{body}");
    // TOML: the error names the line.
    let (status, body) = refused(&alice, "application/toml", "command = 'true'\n\n[devices]\ncount = -1\n".into()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("line 4"), "{body}");
    assert_eq!(body["field"], "devices.count", "{body}");
    // Unsupported media type, oversized body.
    let (status, body) = refused(&alice, "text/plain", r#"{"command": "true"}"#.into()).await;
    assert_eq!(status, 415, "{body}");
    let big = format!(r#"{{"command": "true", "args": ["{}"]}}"#, "x".repeat(max_body));
    let (status, body) = refused(&alice, "application/json", big).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("max_body_bytes"), "{body}");
    // Just under the limit is fine (the limit is on the body, not on the job).
    let fits = format!(r#"{{"command": "true", "args": ["{}"], "devices": {{"count": 1}}}}"#, "x".repeat(max_body - 100));
    let fits_job = serde_json::from_slice::<tessera_exec::handle::JobView>(&alice.raw(Method::POST, "/v1/jobs", Some("application/json"), fits).await.unwrap().1).unwrap();

    // Exactly the accepted jobs exist, and they run.
    let accepted = vec![json_job.id, toml_job.id, fits_job.id];
    let listed: Vec<u64> = server.client("olga").list().await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(listed, accepted);
    for id in &accepted {
        assert_eq!(wait_done(&alice, *id).await.state, JobStatus::COMPLETED);
    }
    let exp = parse_text(&alice.metrics_text().await.unwrap()).unwrap();
    assert_eq!(exp.value("tessera_api_submissions_total", &[("outcome", "accepted")]), Some(3.0));
    assert_eq!(exp.value("tessera_api_submissions_total", &[("outcome", "refused")]), Some(10.0));

    // An accepted job was journalled before its 201: a restart on the same state dir has it,
    // and only it, even one submitted just before the stop.
    let last = alice.submit(&sh("exit 0")).await.unwrap();
    let state = server.stop_keeping_state().await;
    let server = Server::start_in(state, 2, api_config(max_body)).await;
    let listed: Vec<u64> = server.client("olga").list().await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(listed, [accepted, vec![last.id]].concat());
    server.stop().await;
}

/// Collects events from `client` until `until` holds for the collected list, or 15 s pass.
fn follow(client: tessera_exec::client::Client, until: impl Fn(&[SseEvent]) -> bool + Send + Sync + 'static) -> tokio::task::JoinHandle<Vec<SseEvent>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let run = client.events(|e| {
            seen.push(e);
            !until(&seen)
        });
        let _ = tokio::time::timeout(Duration::from_secs(15), run).await;
        seen
    })
}

fn kinds_of(events: &[SseEvent], job: u64) -> Vec<String> {
    events
        .iter()
        .filter(|e| serde_json::from_str::<serde_json::Value>(&e.data).ok().and_then(|v| v["job"].as_u64()) == Some(job))
        .map(|e| e.event.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_submitted_launched_finished_and_submitters_see_only_theirs() {
    let server = Server::start(2, api_config(64 * 1024)).await;
    let (alice, bob, olga) = (server.client("alice"), server.client("bob"), server.client("olga"));
    // Job ids are handed out from 1 in order, so the followers know which to wait for.
    // Both jobs sleep as long: either may finish first, so the admin follows until both have.
    let finished = |jobs: &'static [u64]| move |seen: &[SseEvent]| jobs.iter().all(|&job| kinds_of(seen, job).iter().any(|k| k == "finished"));
    let all = follow(olga.clone(), finished(&[1, 2]));
    let alices = follow(alice.clone(), finished(&[2]));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = bob.submit(&sh("sleep 0.2")).await.unwrap();
    let a = alice.submit(&sh("sleep 0.2")).await.unwrap();
    assert_eq!((b.id, a.id), (1, 2));
    let all = all.await.unwrap();
    let alices = alices.await.unwrap();

    for job in [a.id, b.id] {
        let kinds = kinds_of(&all, job);
        let pos = |k: &str| kinds.iter().position(|x| x == k).unwrap_or_else(|| panic!("no `{k}` for job {job}: {kinds:?}"));
        assert!(pos("submitted") < pos("launched") && pos("launched") < pos("finished"), "{kinds:?}");
    }
    // Ids are the journal's sequence, strictly increasing.
    let ids: Vec<u64> = all.iter().filter_map(|e| e.id.as_deref()?.parse().ok()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(!kinds_of(&alices, a.id).is_empty());
    for e in &alices {
        let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["job"].as_u64(), Some(a.id), "alice saw another job's event: {e:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_with_the_expected_series() {
    let server = Server::start(2, api_config(64 * 1024)).await;
    let (alice, olga) = (server.client("alice"), server.client("olga"));
    olga.drain("cpu1", true).await.unwrap();
    let running = alice.submit(&sh("sleep 30")).await.unwrap();
    wait_state(&alice, running.id, JobStatus::RUNNING).await;
    let queued = alice.submit(&sh("sleep 30")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (status, body) = server.anonymous().raw(Method::GET, "/metrics", None, "").await.unwrap();
    assert_eq!(status, 200);
    let exp = parse_text(std::str::from_utf8(&body).unwrap()).unwrap();
    assert_eq!(exp.value("tessera_exec_queue_length", &[]), Some(1.0));
    assert_eq!(exp.value("tessera_exec_running_jobs", &[]), Some(1.0));
    let cpu0 = exp.samples_of("tessera_exec_device_allocated_ratio").find(|s| s.labels["device"] == "cpu0").expect("cpu0 allocation");
    assert_eq!(cpu0.value, 1.0);
    let drained: Vec<(String, f64)> = exp.samples_of("tessera_exec_device_drained").map(|s| (s.labels["device"].clone(), s.value)).collect();
    assert_eq!(drained, vec![("cpu0".to_string(), 0.0), ("cpu1".to_string(), 1.0)]);
    assert_eq!(exp.types["tessera_exec_decision_latency_seconds"], "histogram");
    let decisions = exp.value("tessera_exec_decision_latency_seconds_count", &[]).unwrap();
    assert!(decisions >= 2.0, "two submissions went through the core: {decisions}");
    assert_eq!(exp.value("tessera_exec_decision_latency_seconds_bucket", &[("le", "+Inf")]), Some(decisions));
    assert_eq!(exp.value("tessera_api_submissions_total", &[("outcome", "accepted")]), Some(2.0));

    olga.cancel(running.id).await.unwrap();
    olga.cancel(queued.id).await.unwrap();
    wait_done(&olga, running.id).await;
    server.stop().await;
}
