//! Who may do what through the real API server (loopback, ephemeral port) over the real daemon.

mod api_common;

use api_common::*;
use hyper::Method;
use std::time::Duration;
use tessera_core::validation::{FileHash, RequirementResult, ValidationRecord, VALIDATION_RECORD_VERSION};
use tessera_core::PolicySpec;
use tessera_exec::handle::JobStatus;

fn record(policy: PolicySpec) -> ValidationRecord {
    ValidationRecord {
        record_version: VALIDATION_RECORD_VERSION,
        fingerprint: tessera_core::validation::PolicyFingerprint { spec: policy.clone(), ..Default::default() },
        policy,
        scenario: FileHash { path: "s.toml".into(), sha256: "ab".into() },
        inputs: vec![],
        tessera_version: "0.1.0".into(),
        seed: 7,
        replications: 1,
        metrics: Default::default(),
        requirements: vec![RequirementResult { expr: "p95_wait_s < 10".into(), metric: "p95_wait_s".into(), op: "<".into(), threshold: 10.0, value: 1.0, passed: true }],
        passed: true,
    }
}

/// Every route that needs a token, with a body that would be acceptable.
fn protected_routes() -> Vec<(Method, &'static str, &'static str)> {
    vec![
        (Method::POST, "/v1/jobs", r#"{"command":"true"}"#),
        (Method::GET, "/v1/jobs", ""),
        (Method::GET, "/v1/jobs/1", ""),
        (Method::POST, "/v1/jobs/1/cancel", ""),
        (Method::GET, "/v1/devices", ""),
        (Method::POST, "/v1/devices/cpu0/drain", ""),
        (Method::POST, "/v1/devices/cpu0/undrain", ""),
        (Method::PUT, "/v1/policy", r#"{"policy":{"name":"fifo"},"allow_unvalidated":true}"#),
        (Method::GET, "/v1/events", ""),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_and_unknown_tokens_are_refused_with_401() {
    let server = Server::start(1, api_config(64 * 1024)).await;
    for client in [server.anonymous(), server.with_token("tok-nobody"), server.with_token("tok-alicE")] {
        for (method, path, body) in protected_routes() {
            let (status, text) = client.raw(method.clone(), path, Some("application/json"), body).await.unwrap();
            assert_eq!(status, 401, "{method} {path}: {}", String::from_utf8_lossy(&text));
            let body: serde_json::Value = serde_json::from_slice(&text).unwrap();
            assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        }
    }
    // Nothing was submitted by the refused calls.
    assert!(server.client("olga").list().await.unwrap().is_empty());
    // Open routes: the health check and (by default) the metrics.
    assert_eq!(server.anonymous().raw(Method::GET, "/healthz", None, "").await.unwrap().0, 200);
    assert_eq!(server.anonymous().raw(Method::GET, "/metrics", None, "").await.unwrap().0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_gate_drain_and_policy_with_403() {
    let server = Server::start(2, api_config(64 * 1024)).await;
    let (alice, olga, root) = (server.client("alice"), server.client("olga"), server.client("root"));
    for path in ["/v1/devices/cpu0/drain", "/v1/devices/cpu0/undrain"] {
        let (status, body) = alice.raw(Method::POST, path, None, "").await.unwrap();
        assert_eq!(status, 403, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("needs `operate`"));
    }
    assert!(!server.client("root").devices().await.unwrap()[0].drained, "the refused drain did nothing");
    olga.drain("cpu0", true).await.unwrap();
    assert!(root.devices().await.unwrap().iter().any(|d| d.name == "cpu0" && d.drained));
    olga.drain("cpu0", false).await.unwrap();
    assert!(!root.devices().await.unwrap().iter().any(|d| d.drained));
    assert_eq!(olga.drain("cpu9", true).await.unwrap_err().status(), Some(404));

    let sjf = PolicySpec::named("sjf");
    for client in [&alice, &olga] {
        let e = client.set_policy(&sjf, Some(&record(sjf.clone())), false).await.unwrap_err();
        assert_eq!(e.status(), Some(403), "{e}");
        assert!(e.to_string().contains("needs `admin`"), "{e}");
    }
    // Admin: a record that admits exactly this policy passes the gate; one that does not, or
    // none at all, is refused by the gate (403) and the policy stays.
    root.set_policy(&sjf, Some(&record(sjf.clone())), false).await.unwrap();
    let mut other = sjf.clone();
    other.grace_s = Some(3.0);
    let e = root.set_policy(&other, Some(&record(sjf.clone())), false).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    assert!(e.to_string().contains("grace_s"), "{e}");
    let e = root.set_policy(&other, None, false).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    let metrics = tessera_exec::api::metrics::parse_text(&root.metrics_text().await.unwrap()).unwrap();
    assert_eq!(metrics.value("tessera_exec_policy_info", &[("policy", "sjf")]), Some(1.0));
    // Malformed policy bodies: 400 naming the field.
    let (status, body) = root.raw(Method::PUT, "/v1/policy", Some("application/json"), r#"{"policy":{"name":"lottery"}}"#).await.unwrap();
    assert_eq!(status, 400);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["field"], "policy.name", "{body}");
    let (status, body) = root.raw(Method::PUT, "/v1/policy", Some("application/json"), r#"{"policy":{"name":"fifo","grace":1}}"#).await.unwrap();
    assert_eq!(status, 400);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(body["error"].as_str().unwrap().contains("grace"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitter_sees_and_cancels_only_its_own_jobs() {
    let server = Server::start(2, api_config(64 * 1024)).await;
    let (alice, bob, olga) = (server.client("alice"), server.client("bob"), server.client("olga"));
    let a = alice.submit(&sh("sleep 30")).await.unwrap();
    let b = bob.submit(&sh("sleep 30")).await.unwrap();
    assert_eq!((a.owner.as_str(), b.owner.as_str()), ("alice", "bob"));
    wait_state(&alice, a.id, JobStatus::RUNNING).await;

    // Another's job is answered exactly as one that does not exist: 404, the same body, no
    // owner named, so ids cannot be enumerated.
    let missing = b.id + 1000;
    let (status, absent) = bob.raw(Method::GET, &format!("/v1/jobs/{missing}"), None, "").await.unwrap();
    assert_eq!(status, 404);
    let (status, theirs) = bob.raw(Method::GET, &format!("/v1/jobs/{}", a.id), None, "").await.unwrap();
    assert_eq!(status, 404);
    let text = |body: &[u8], id: u64| String::from_utf8_lossy(body).replace(&id.to_string(), "ID");
    assert_eq!(text(&theirs, a.id), text(&absent, missing), "the answers differ");
    assert!(!text(&theirs, a.id).contains("alice"), "{}", text(&theirs, a.id));
    let e = bob.show(a.id).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    let e = bob.cancel(a.id).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    assert!(!e.to_string().contains("alice"), "{e}");
    let listed: Vec<u64> = bob.list().await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(listed, vec![b.id]);
    let listed: Vec<u64> = olga.list().await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(listed, vec![a.id, b.id]);
    // Bob's refused cancel left alice's job running.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(alice.show(a.id).await.unwrap().state, JobStatus::RUNNING);

    // Alice cancels her own; the operator cancels bob's.
    alice.cancel(a.id).await.unwrap();
    olga.cancel(b.id).await.unwrap();
    assert_eq!(wait_done(&alice, a.id).await.state, JobStatus::CANCELLED);
    assert_eq!(wait_done(&bob, b.id).await.state, JobStatus::CANCELLED);
    // A finished job cannot be cancelled again: 409, not a silent success.
    assert_eq!(alice.cancel(a.id).await.unwrap_err().status(), Some(409));
    assert_eq!(alice.show(999).await.unwrap_err().status(), Some(404));
    let (status, body) = alice.raw(Method::GET, "/v1/jobs/abc", None, "").await.unwrap();
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("\"field\":\"id\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_a_token_when_not_public() {
    let mut api = api_config(64 * 1024);
    api.public_metrics = false;
    let server = Server::start(1, api).await;
    assert_eq!(server.anonymous().raw(Method::GET, "/metrics", None, "").await.unwrap().0, 401);
    assert_eq!(server.with_token("nope").raw(Method::GET, "/metrics", None, "").await.unwrap().0, 401);
    let text = server.client("alice").metrics_text().await.unwrap();
    let exp = tessera_exec::api::metrics::parse_text(&text).unwrap();
    assert_eq!(exp.value("tessera_api_unauthorized_total", &[]), Some(2.0));
    server.stop().await;
}
