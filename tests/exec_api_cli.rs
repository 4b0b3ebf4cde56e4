//! The executor's API hardening through the real binary (issue 15): `tessera exec serve` as a
//! child process on loopback, the client verbs against it over HTTP and HTTPS, the audit log
//! read back by `tessera exec audit`, and tokens kept out of everything the daemon writes.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

mod support;
use support::{tessera, make_token};

/// A running `tessera -vv exec serve`: its URL from its first line, everything it writes kept.
struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT` or `https://...`.
    url: String,
    output: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Serve {
    fn start(config: &Path) -> Serve {
        let mut child = tessera().args(["-vv", "exec", "serve", "--config"]).arg(config).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let mut stderr = child.stderr.take().unwrap();
        if first.is_empty() {
            let mut err = String::new();
            stderr.read_to_string(&mut err).unwrap();
            panic!("exec serve printed nothing; stderr: {err}");
        }
        output.lock().unwrap().push_str(&first);
        let url = first.split_whitespace().find(|w| w.contains("://")).unwrap_or_else(|| panic!("no address in `{first}`")).to_string();
        let keep = |mut from: Box<dyn Read + Send>, into: Arc<Mutex<String>>| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        };
        let readers = vec![keep(Box::new(stdout), output.clone()), keep(Box::new(stderr), output.clone())];
        Serve { child, url, output, readers }
    }

    fn host_port(&self) -> &str {
        self.url.split("://").nth(1).unwrap()
    }

    /// Stops it with SIGTERM, as an operator would; returns everything it wrote.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exec serve ended with {status}");
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let text = self.output.lock().unwrap().clone();
        text
    }
}

fn write_config(dir: &Path, extra_api: &str, token_lines: &str) -> PathBuf {
    let config = dir.join("exec.toml");
    fs::write(
        &config,
        format!(
            "[daemon]\nstate_dir = 'state'\nallow_unvalidated = true\ngrace_s = 1.0\nsingle_user = true\n\
             [[daemon.tenants]]\nname = 'team-a'\n[[daemon.tenants]]\nname = 'team-b'\n\
             [daemon.cpu]\ndevices = 1\n[daemon.gpu]\nenabled = false\n[daemon.health]\ninterval_s = 3600\n\n\
             [api]\nlisten = '127.0.0.1:0'\n{extra_api}\n{token_lines}"
        ),
    )
    .unwrap();
    config
}

fn job_file(dir: &Path, name: &str, tenant: Option<&str>) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let tenant = tenant.map(|t| format!("tenant = '{t}'\n")).unwrap_or_default();
    fs::write(&path, format!("name = '{name}'\ncommand = 'true'\n{tenant}")).unwrap();
    path
}

/// Runs `command`; (succeeded, stdout, stderr).
fn run(mut command: Command) -> (bool, String, String) {
    let out = command.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn run_ok(command: Command) -> String {
    let (ok, stdout, stderr) = run(command);
    assert!(ok, "failed: {stdout}{stderr}");
    stdout
}

/// One HTTP/1.1 request over a fresh loopback connection, written by hand so that headers the
/// client library would never send can be sent; the whole answer as text.
fn http(host_port: &str, request_head: &str) -> String {
    let mut s = std::net::TcpStream::connect(host_port).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{request_head}\r\nHost: {host_port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

fn audit(state_dir: &Path, args: &[&str]) -> String {
    let mut c = tessera();
    c.args(["exec", "audit", "--state-dir"]).arg(state_dir).args(args);
    run_ok(c)
}

#[test]
fn every_call_is_audited_with_its_token_name_and_tessera_exec_audit_filters_them() {
    let dir = TempDir::new().unwrap();
    let (ann, ann_lines) = make_token("ann", "submit", &["team-a"]);
    let (ben, ben_lines) = make_token("ben", "submit", &["team-a", "team-b"]);
    let (olga, olga_lines) = make_token("olga", "operate", &[]);
    assert!(ann_lines.contains("tenants = [\"team-a\"]") && ben_lines.contains("tenants = [\"team-a\", \"team-b\"]"), "{ann_lines}{ben_lines}");
    let config = write_config(dir.path(), "", &format!("{ann_lines}\n{ben_lines}\n{olga_lines}"));
    let serve = Serve::start(&config);
    let as_caller = |token: &str| {
        let mut c = tessera();
        c.env("TESSERA_ADDR", serve.host_port()).env("TESSERA_TOKEN", token);
        c
    };
    // 201: ann's job goes to her only tenant.
    let mut c = as_caller(&ann);
    c.args(["exec", "submit"]).arg(job_file(dir.path(), "train", None));
    assert!(run_ok(c).contains("submitted job 1"));
    // 403: another tenant.
    let mut c = as_caller(&ann);
    c.args(["exec", "submit"]).arg(job_file(dir.path(), "sneaky", Some("team-b")));
    let (ok, _, err) = run(c);
    assert!(!ok && err.contains("403") && err.contains("may not submit as tenant `team-b`"), "{err}");
    // 400: two tenants, none named.
    let mut c = as_caller(&ben);
    c.args(["exec", "submit"]).arg(job_file(dir.path(), "vague", None));
    let (ok, _, err) = run(c);
    assert!(!ok && err.contains("400") && err.contains("tenant"), "{err}");
    // 401: a token that is no one's.
    let mut c = as_caller("tsr_0000000000000000000000000000000000000000000000000000000000000000");
    c.args(["exec", "status"]);
    assert!(!run(c).0);
    // 404: no such job.
    let mut c = as_caller(&olga);
    c.args(["exec", "status", "999"]);
    let (ok, _, err) = run(c);
    assert!(!ok && err.contains("404"), "{err}");
    // 200: ann lists her jobs.
    let mut c = as_caller(&ann);
    c.args(["exec", "status"]);
    assert!(run_ok(c).contains("train"));

    let state_dir = dir.path().join("state");
    // A call's row is written just after its answer: wait for the last one.
    let t0 = std::time::Instant::now();
    let table = loop {
        let table = audit(&state_dir, &[]);
        if table.lines().count() > 6 || t0.elapsed() > Duration::from_secs(10) {
            break table;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TIME") && lines[0].contains("TOKEN") && lines[0].contains("ANSWER"), "{table}");
    let row = |needle: &[&str]| lines.iter().any(|l| needle.iter().all(|n| l.contains(n)));
    assert!(row(&["ann", "POST", "/v1/jobs", "201", "command=true", "job=1", "tenant=team-a"]), "{table}");
    assert!(row(&["ann", "POST", "/v1/jobs", "403", "tenant=team-b", "may not submit as tenant `team-b`"]), "{table}");
    assert!(row(&["ben", "POST", "/v1/jobs", "400", "name one"]), "{table}");
    assert!(row(&[" - ", "GET", "/v1/jobs", "401", "unknown token"]), "{table}");
    assert!(row(&["olga", "GET", "/v1/jobs/999", "404", "no job 999"]), "{table}");
    assert!(row(&["ann", "GET", "/v1/jobs ", "200", "OK"]), "{table}");
    let calls = lines.len() - 1;
    assert!(calls >= 6, "{table}");

    // --token: only that entry's calls; --json: one object per line.
    let ann_rows: Vec<serde_json::Value> = audit(&state_dir, &["--token", "ann", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(ann_rows.len(), 3, "{ann_rows:?}");
    assert!(ann_rows.iter().all(|r| r["token"] == "ann"));
    assert_eq!(ann_rows.iter().map(|r| r["status"].as_u64().unwrap()).collect::<Vec<_>>(), vec![201, 403, 200]);
    assert_eq!(ann_rows[0]["asked"]["tenant"], "team-a");
    // --since: a time ago, a date in the future, Unix seconds.
    assert_eq!(audit(&state_dir, &["--since", "1h"]).lines().count() - 1, calls);
    assert_eq!(audit(&state_dir, &["--since", "2999-01-01"]).lines().count(), 1, "only the header");
    let last_s = ann_rows[2]["at_unix_us"].as_u64().unwrap() / 1_000_000;
    let since_last: Vec<serde_json::Value> = audit(&state_dir, &["--since", &last_s.to_string(), "--token", "ann", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(since_last.iter().all(|r| r["at_unix_us"].as_u64().unwrap() >= last_s * 1_000_000), "{since_last:?}");
    assert_eq!(since_last.last().map(|r| r["status"].as_u64()), Some(Some(200)), "{since_last:?}");
    assert_eq!(audit(&state_dir, &["--since", &(last_s + 1).to_string(), "--token", "ann"]).lines().count(), 1, "only the header");
    let mut c = tessera();
    c.args(["exec", "audit", "--state-dir"]).arg(&state_dir).args(["--since", "last tuesday"]);
    let (ok, _, err) = run(c);
    assert!(!ok && err.contains("--since `last tuesday`"), "{err}");

    // It reads the journal file, so it works as well with the executor stopped.
    serve.stop();
    assert_eq!(audit(&state_dir, &[]).lines().count() - 1, calls);
}

/// Every byte of the journal (database, WAL) as text, for searching.
fn journal_bytes(state_dir: &Path) -> String {
    let mut all = Vec::new();
    for name in ["journal.sqlite", "journal.sqlite-wal"] {
        if let Ok(bytes) = fs::read(state_dir.join(name)) {
            all.extend_from_slice(&bytes);
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[test]
fn tokens_stay_out_of_the_journal_the_logs_the_metrics_and_error_messages() {
    let dir = TempDir::new().unwrap();
    let (ann, ann_lines) = make_token("ann", "submit", &["team-a"]);
    let (olga, olga_lines) = make_token("olga", "operate", &[]);
    // A token that is no one's, shaped like a real one, and one sent without `Bearer`.
    let (stranger, _) = make_token("stranger", "admin", &[]);
    let config = write_config(dir.path(), "", &format!("{ann_lines}\n{olga_lines}"));
    let serve = Serve::start(&config);
    let hp = serve.host_port().to_string();
    let mut answers = String::new();
    for (token, head) in [
        (&ann, "POST /v1/jobs".to_string()),
        (&ann, "GET /v1/jobs".to_string()),
        (&ann, "GET /v1/jobs/1".to_string()),
        (&ann, "POST /v1/devices/cpu0/drain".to_string()),
        (&ann, "PUT /v1/policy".to_string()),
        (&olga, "GET /v1/jobs/77".to_string()),
        (&stranger, "GET /v1/jobs".to_string()),
        // A token pasted where an id goes: the 400's message and the audited path mask it.
        (&olga, format!("GET /v1/jobs/{ann}")),
    ] {
        answers.push_str(&http(&hp, &format!("{head} HTTP/1.1\r\nAuthorization: Bearer {token}")));
    }
    answers.push_str(&http(&hp, &format!("GET /v1/jobs HTTP/1.1\r\nAuthorization: {ann}")));
    answers.push_str(&http(&hp, &format!("GET /v1/jobs HTTP/1.1\r\nAuthorization: Basic {olga}")));
    let mut c = tessera();
    c.env("TESSERA_ADDR", &hp).env("TESSERA_TOKEN", &ann).args(["exec", "submit"]).arg(job_file(dir.path(), "ok", None));
    run_ok(c);
    for status in [" 401 ", " 403 ", " 404 ", " 400 "] {
        assert!(answers.contains(&format!("HTTP/1.1{status}")), "no{status}answer among:\n{answers}");
    }
    let metrics = http(&hp, "GET /metrics HTTP/1.1");
    assert!(metrics.contains("tessera_api_unauthorized_total"), "{metrics}");

    let state_dir = dir.path().join("state");
    let journal_running = journal_bytes(&state_dir);
    let logs = serve.stop();
    // Read once the executor stopped: it writes the last rows before it exits.
    let audit_text = audit(&state_dir, &["--json"]);
    let journal_stopped = journal_bytes(&state_dir);
    // The search finds what is there: the token names are in the journal and the audit.
    assert!(journal_stopped.contains("olga") && audit_text.contains("\"token\":\"ann\""), "{audit_text}");
    assert!(audit_text.contains("/v1/jobs/tsr_[redacted]"), "{audit_text}");
    assert!(logs.contains("listening on http://"), "{logs}");
    for (what, token) in [("ann's", &ann), ("olga's", &olga), ("the stranger's", &stranger)] {
        let secret = &token[4..];
        for (place, text) in [
            ("the journal while running", &journal_running),
            ("the journal", &journal_stopped),
            ("`exec audit`", &audit_text),
            ("the daemon's output", &logs),
            ("/metrics", &metrics),
        ] {
            assert!(!text.contains(secret), "{what} token is in {place}");
        }
    }
    // The 400 for a token pasted as a job id does not echo it back either.
    assert!(!answers.contains(&format!("found `{ann}")), "{answers}");
}

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost: (CA PEM, cert PEM,
/// key PEM).
fn make_pki(common_name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn the_cli_submits_over_https_with_the_ca_and_refuses_a_wrong_ca_and_plain_http() {
    let dir = TempDir::new().unwrap();
    let (ca, cert, key) = make_pki("tessera test CA");
    let (other_ca, _, other_key) = make_pki("someone else's CA");
    fs::write(dir.path().join("ca.pem"), &ca).unwrap();
    fs::write(dir.path().join("other-ca.pem"), &other_ca).unwrap();
    fs::write(dir.path().join("server.pem"), &cert).unwrap();
    fs::write(dir.path().join("server.key"), &key).unwrap();
    let (ann, ann_lines) = make_token("ann", "submit", &["team-a"]);
    let config = write_config(dir.path(), "[api.tls]\ncert = 'server.pem'\nkey = 'server.key'\n", &ann_lines);
    let serve = Serve::start(&config);
    assert!(serve.url.starts_with("https://127.0.0.1:"), "{}", serve.url);
    let hp = serve.host_port().to_string();
    let job = job_file(dir.path(), "secure", None);

    // --ca with an https:// address.
    let mut c = tessera();
    c.env("TESSERA_TOKEN", &ann).args(["exec", "submit", "--addr", &serve.url, "--ca"]).arg(dir.path().join("ca.pem")).arg(&job);
    assert!(run_ok(c).contains("submitted job 1"));
    // TESSERA_CA, and an address without a scheme (a CA given: https).
    let mut c = tessera();
    c.env("TESSERA_TOKEN", &ann).env("TESSERA_ADDR", &hp).env("TESSERA_CA", dir.path().join("ca.pem")).args(["exec", "status"]);
    assert!(run_ok(c).contains("secure"));

    // A CA that did not sign the server's certificate: refused, saying why.
    let mut c = tessera();
    c.env("TESSERA_TOKEN", &ann).args(["exec", "status", "--addr", &serve.url, "--ca"]).arg(dir.path().join("other-ca.pem"));
    let (ok, _, err) = run(c);
    assert!(!ok && err.contains("TLS with the executor") && err.contains("not one the CA given with --ca"), "{err}");
    // HTTPS without any CA.
    let mut c = tessera();
    c.env("TESSERA_TOKEN", &ann).args(["exec", "status", "--addr", &serve.url]);
    let (ok, _, err) = run(c);
    assert!(!ok && err.contains("--ca FILE"), "{err}");
    // Plain HTTP to the TLS port: a clear answer, not a reset.
    let mut c = tessera();
    c.env("TESSERA_TOKEN", &ann).args(["exec", "status", "--addr", &format!("http://{hp}")]);
    let (ok, _, err) = run(c);
    assert!(!ok && err.contains("400") && err.contains("this port serves HTTPS"), "{err}");
    // The calls over TLS are audited like any other.
    serve.stop();
    let table = audit(&dir.path().join("state"), &["--token", "ann"]);
    assert!(table.lines().any(|l| l.contains("POST") && l.contains("201")), "{table}");

    // Bad TLS files: clear errors naming the file, before anything starts.
    fs::write(dir.path().join("garbage.pem"), "not a certificate\n").unwrap();
    let bad = write_config(dir.path(), "[api.tls]\ncert = 'garbage.pem'\nkey = 'server.key'\n", &ann_lines);
    let (ok, _, err) = run({
        let mut c = tessera();
        c.args(["exec", "serve", "--config"]).arg(&bad);
        c
    });
    assert!(!ok && err.contains("api.tls.cert") && err.contains("garbage.pem") && err.contains("no certificate found"), "{err}");
    fs::write(dir.path().join("other.key"), &other_key).unwrap();
    let mismatched = write_config(dir.path(), "[api.tls]\ncert = 'server.pem'\nkey = 'other.key'\n", &ann_lines);
    let (ok, _, err) = run({
        let mut c = tessera();
        c.args(["exec", "serve", "--config"]).arg(&mismatched);
        c
    });
    assert!(!ok && err.contains("api.tls.key") && err.contains("other.key") && err.contains("does not go with the certificate"), "{err}");
    let missing = write_config(dir.path(), "[api.tls]\ncert = 'server.pem'\nkey = 'nowhere.key'\n", &ann_lines);
    let (ok, _, err) = run({
        let mut c = tessera();
        c.args(["exec", "serve", "--config"]).arg(&missing);
        c
    });
    assert!(!ok && err.contains("nowhere.key"), "{err}");
}
