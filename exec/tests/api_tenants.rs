//! Tokens carry their tenants (issue 15, F3), through the real API server (loopback,
//! ephemeral port) over the real daemon with a tenant table.

mod api_common;

use api_common::*;
use hyper::Method;
use std::path::Path;
use tessera_exec::api::auth::{sha256_hex, Role, TokenEntry};
use tessera_exec::api::ApiConfig;
use tessera_exec::config::TenantEntry;
use tessera_exec::serve::{ServeConfig, ServeError};

const TABLE: &[&str] = &["team-a", "team-b"];

/// (name, role, tenants, token).
const TOKENS: &[(&str, Role, &[&str], &str)] = &[
    ("ann", Role::Submit, &["team-a"], "tok-ann"),
    ("ben", Role::Submit, &["team-a", "team-b"], "tok-ben"),
    ("cat", Role::Submit, &["team-b"], "tok-cat"),
    ("olga", Role::Operate, &[], "tok-olga"),
    ("root", Role::Admin, &[], "tok-root"),
];

fn tenant_table() -> Vec<TenantEntry> {
    // Built through serde, as exec.toml is read, so fields with defaults stay defaulted.
    TABLE.iter().map(|t| serde_json::from_value(serde_json::json!({ "name": t })).unwrap()).collect()
}

fn tokens() -> Vec<TokenEntry> {
    TOKENS.iter().map(|(name, role, tenants, token)| TokenEntry::new(name, *role, sha256_hex(token)).with_tenants(tenants)).collect()
}

async fn start() -> Server {
    let state = tempfile::tempdir().unwrap();
    let mut daemon = daemon_config(&state.path().join("state"), 2);
    daemon.tenants = tenant_table();
    // Both tenants' jobs run as the test's user: this test is about tokens, not Unix users.
    daemon.single_user = true;
    let api = ApiConfig { listen: "127.0.0.1:0".parse().unwrap(), tokens: tokens(), ..ApiConfig::default() };
    Server::start_with(state, daemon, api).await
}

fn client(server: &Server, name: &str) -> tessera_exec::client::Client {
    let token = TOKENS.iter().find(|t| t.0 == name).unwrap().3;
    server.with_token(token)
}

/// A job that stays queued long enough to be looked at (no devices free: both are drained).
fn job(tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => format!(r#"{{"command":"true","devices":{{"count":1}},"tenant":"{t}"}}"#),
        None => r#"{"command":"true","devices":{"count":1}}"#.to_string(),
    }
}

async fn submit(server: &Server, who: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, bytes) = client(server, who).raw(Method::POST, "/v1/jobs", Some("application/json"), body.to_string()).await.unwrap();
    (status.as_u16(), serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitters_submit_only_as_their_tenants_and_see_only_their_tenants_jobs() {
    let server = start().await;
    let olga = client(&server, "olga");
    // Nothing runs, so every job stays queued and visible.
    for d in olga.devices().await.unwrap() {
        olga.drain(&d.name, true).await.unwrap();
    }

    // One tenant: it is the default.
    let (status, a1) = submit(&server, "ann", &job(None)).await;
    assert_eq!((status, a1["tenant"].as_str()), (201, Some("team-a")), "{a1}");
    let (status, a2) = submit(&server, "ann", &job(Some("team-a"))).await;
    assert_eq!((status, a2["tenant"].as_str()), (201, Some("team-a")), "{a2}");
    // The same in TOML.
    let (status, bytes) = client(&server, "ann").raw(Method::POST, "/v1/jobs", Some("application/toml"), "command = 'true'\n[devices]\ncount = 1\n").await.unwrap();
    let a3: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!((status.as_u16(), a3["tenant"].as_str()), (201, Some("team-a")), "{a3}");

    // Another tenant: 403, naming only the caller's own tenants.
    let (status, e) = submit(&server, "ann", &job(Some("team-b"))).await;
    assert_eq!(status, 403, "{e}");
    assert_eq!(e["error"], "`ann` may not submit as tenant `team-b`: its token's tenants are `team-a`");
    // `default` (what a submission without `tenant` would carry) is not a back door either.
    let (status, e) = submit(&server, "ann", &job(Some("default"))).await;
    assert_eq!(status, 403, "{e}");

    // Two tenants: the submission must name one.
    let (status, e) = submit(&server, "ben", &job(None)).await;
    assert_eq!((status, e["field"].as_str()), (400, Some("tenant")), "{e}");
    assert!(e["error"].as_str().unwrap().contains("name one"), "{e}");
    let (status, b1) = submit(&server, "ben", &job(Some("team-b"))).await;
    assert_eq!((status, b1["tenant"].as_str()), (201, Some("team-b")), "{b1}");
    let (status, c1) = submit(&server, "cat", &job(None)).await;
    assert_eq!((status, c1["tenant"].as_str()), (201, Some("team-b")), "{c1}");

    // Operators and admins act for any tenant; a tenant outside the table is still refused.
    let (status, o1) = submit(&server, "olga", &job(Some("team-b"))).await;
    assert_eq!((status, o1["tenant"].as_str()), (201, Some("team-b")), "{o1}");
    let (status, r1) = submit(&server, "root", &job(Some("team-a"))).await;
    assert_eq!((status, r1["tenant"].as_str()), (201, Some("team-a")), "{r1}");
    let (status, e) = submit(&server, "root", &job(Some("team-z"))).await;
    assert_eq!((status, e["field"].as_str()), (400, Some("tenant")), "{e}");

    let id = |v: &serde_json::Value| v["id"].as_u64().unwrap();
    let ids = |jobs: Vec<tessera_exec::handle::JobView>| {
        let mut v: Vec<u64> = jobs.into_iter().map(|j| j.id).collect();
        v.sort();
        v
    };
    // ann sees team-a's jobs (root's included), not team-b's.
    let ann = client(&server, "ann");
    assert_eq!(ids(ann.list().await.unwrap()), vec![id(&a1), id(&a2), id(&a3), id(&r1)]);
    for other in [&b1, &c1, &o1] {
        assert_eq!(ann.show(id(other)).await.unwrap_err().status(), Some(404), "show {other}");
        let e = ann.cancel(id(other)).await.unwrap_err();
        assert_eq!(e.status(), Some(404), "cancel {other}");
        // Answered exactly as for a job that does not exist: no owner, no tenant.
        assert_eq!(e.to_string(), format!("404: no job {}", id(other)));
    }
    assert_eq!(ann.show(9999).await.unwrap_err().to_string(), "404: no job 9999");
    // cat sees team-b's, whoever submitted them; ben sees both tenants'.
    let cat = client(&server, "cat");
    assert_eq!(ids(cat.list().await.unwrap()), vec![id(&b1), id(&c1), id(&o1)]);
    assert_eq!(ids(client(&server, "ben").list().await.unwrap()).len(), 7);
    assert_eq!(ids(olga.list().await.unwrap()).len(), 7);
    // A submitter may cancel a job of its tenant; the refused cancels above changed nothing.
    assert_eq!(cat.cancel(id(&o1)).await.unwrap().state.as_str(), "cancelled");
    assert_eq!(olga.show(id(&b1)).await.unwrap().state.as_str(), "queued");
    assert_eq!(olga.show(id(&c1)).await.unwrap().state.as_str(), "queued");
    server.stop().await;
}

fn config_text(token_lines: &str) -> String {
    format!(
        "[daemon]\nstate_dir = 'state'\n[[daemon.tenants]]\nname = 'team-a'\n[[daemon.tenants]]\nname = 'team-b'\n\n\
         [api]\nlisten = '127.0.0.1:0'\n\
         [[api.tokens]]\nname = 'root'\nrole = 'admin'\nsha256 = '{}'\n{token_lines}",
        sha256_hex("r")
    )
}

#[test]
fn a_token_naming_an_unknown_tenant_is_a_start_up_error_naming_it() {
    let unknown = format!("[[api.tokens]]\nname = 'carol'\nrole = 'submit'\nsha256 = '{}'\ntenants = ['team-a', 'team-z']\n", sha256_hex("c"));
    let e = ServeConfig::parse(&config_text(&unknown), "exec.toml", Path::new("/tmp")).unwrap_err();
    assert_eq!((e.field.as_str(), e.line), ("api.tokens[1].tenants", Some(18)), "{e}");
    let text = e.to_string();
    assert!(text.contains("token `carol`") && text.contains("no tenant `team-z`") && text.contains("`team-a`, `team-b`"), "{text}");

    // A submit token without tenants cannot be used where there is a tenant table.
    let unbound = format!("[[api.tokens]]\nname = 'dave'\nrole = 'submit'\nsha256 = '{}'\n", sha256_hex("d"));
    let e = ServeConfig::parse(&config_text(&unbound), "exec.toml", Path::new("/tmp")).unwrap_err();
    assert_eq!(e.field, "api.tokens[1].tenants", "{e}");
    assert!(e.to_string().contains("token `dave`") && e.to_string().contains("must name the tenants"), "{e}");

    // Bound properly, it starts.
    let bound = format!("[[api.tokens]]\nname = 'dave'\nrole = 'submit'\nsha256 = '{}'\ntenants = ['team-b']\n", sha256_hex("d"));
    ServeConfig::parse(&config_text(&bound), "exec.toml", Path::new("/tmp")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_an_unknown_token_tenant_before_touching_the_journal() {
    let state = tempfile::tempdir().unwrap();
    let mut daemon = daemon_config(&state.path().join("state"), 1);
    daemon.tenants = tenant_table();
    let mut tokens = tokens();
    tokens[2].tenants = vec!["team-q".into()];
    let api = ApiConfig { listen: "127.0.0.1:0".parse().unwrap(), tokens, ..ApiConfig::default() };
    let result = tessera_exec::serve::serve(ServeConfig { daemon, api }, async {}, |_| panic!("it must not start")).await;
    let Err(ServeError::Config(e)) = result else { panic!("started with an unknown tenant: {result:?}") };
    assert_eq!(e.field, "api.tokens[2].tenants");
    assert!(e.message.contains("token `cat`") && e.message.contains("`team-q`"), "{e}");
    assert!(!state.path().join("state").join("journal.sqlite").exists(), "the journal was not created");
}
