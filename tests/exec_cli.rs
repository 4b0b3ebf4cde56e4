//! End-to-end tests of `tessera exec ...` through the real binary: `exec serve` as a child
//! process over real CPU devices on loopback, the client verbs against it, and a SIGKILL of the
//! server mid-run followed by a restart on the same state dir.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

mod support;
use support::{tessera, repo_root, make_token};

/// A running `tessera exec serve`, its address read from its first line of output.
struct Serve {
    child: Child,
    addr: String,
    rest_of_stdout: std::thread::JoinHandle<String>,
}

impl Serve {
    fn start(config: &Path) -> Serve {
        let mut child = tessera()
            .args(["exec", "serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tessera exec serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        if first.is_empty() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("exec serve printed nothing; stderr: {err}");
        }
        let addr = first.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_else(|| panic!("no address in `{first}`")).to_string();
        // Keep reading, so the server never writes into a closed pipe.
        let rest_of_stdout = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
            rest
        });
        // Drain stderr too (warnings, e.g. about the unvalidated policy).
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Serve { child, addr, rest_of_stdout }
    }

    fn client(&self, token: &str) -> Command {
        let mut c = tessera();
        c.env("TESSERA_ADDR", &self.addr).env("TESSERA_TOKEN", token);
        c
    }
}

fn run_ok(mut command: Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{:?} failed: {}{}", command, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn jobs(serve: &Serve, token: &str) -> Vec<serde_json::Value> {
    let mut c = serve.client(token);
    c.args(["exec", "status", "--json"]);
    serde_json::from_str(&run_ok(c)).unwrap()
}

fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_config(dir: &Path, token_lines: &str) -> PathBuf {
    write_config_with(dir, token_lines, "name = 'fifo'", 2)
}

/// `policy`: the lines of `[daemon.policy]`.
fn write_config_with(dir: &Path, token_lines: &str, policy: &str, cpu_devices: u32) -> PathBuf {
    let config = dir.join("exec.toml");
    fs::write(
        &config,
        format!(
            "[daemon]\nstate_dir = 'state'\nallow_unvalidated = true\ngrace_s = 1.0\n[daemon.policy]\n{policy}\n\
             [daemon.cpu]\ndevices = {cpu_devices}\n[daemon.gpu]\nenabled = false\n[daemon.health]\ninterval_s = 3600\n\n\
             [api]\nlisten = '127.0.0.1:0'\n\n{token_lines}"
        ),
    )
    .unwrap();
    config
}

#[test]
fn exec_serve_killed_mid_run_and_restarted_runs_every_job_exactly_once() {
    let dir = TempDir::new().unwrap();
    let (token, lines) = make_token("ci", "operate", &[]);
    let config = write_config(dir.path(), &lines);
    let runs = dir.path().join("runs.txt");
    let job = dir.path().join("job.toml");
    fs::write(
        &job,
        format!("name = 'append'\ncommand = 'sh'\nargs = ['-c', 'echo $TESSERA_JOB_ID >> {}; sleep 1']\n[devices]\ncount = 1\n", runs.display()),
    )
    .unwrap();

    let mut serve = Serve::start(&config);
    let events = serve.client(&token).args(["exec", "events", "--count", "3", "--json"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut ids = Vec::new();
    for _ in 0..6 {
        let mut c = serve.client(&token);
        c.args(["exec", "submit", "--json"]).arg(&job);
        let view: serde_json::Value = serde_json::from_str(&run_ok(c)).unwrap();
        assert_eq!(view["owner"], "ci");
        ids.push(view["id"].as_u64().unwrap());
    }
    let human = run_ok({
        let mut c = serve.client(&token);
        c.args(["exec", "status"]);
        c
    });
    assert!(human.lines().next().unwrap().contains("STATE"), "{human}");
    assert_eq!(human.lines().count(), 7, "{human}");

    // Kill the server the hard way once jobs are running (and others still queued).
    wait_until(Duration::from_secs(15), "a running job", || jobs(&serve, &token).iter().any(|j| j["state"] == "running").then_some(()));
    std::thread::sleep(Duration::from_millis(300));
    let at_kill: Vec<String> = jobs(&serve, &token).iter().map(|j| j["state"].as_str().unwrap().to_string()).collect();
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    // The kill really was mid-run: a job was running and others had not finished.
    assert!(at_kill.iter().any(|s| s == "running") && at_kill.iter().filter(|s| *s != "completed").count() >= 3, "{at_kill:?}");

    // The events follower saw the first events as JSON lines.
    let events_out = events.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(events_out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|e| e["seq"].is_u64() && e["kind"].is_string()), "{lines:?}");
    assert!(lines.iter().any(|e| e["kind"] == "submitted"), "{lines:?}");

    // Start again on the same state dir: every job ends, each ran exactly once.
    let mut serve = Serve::start(&config);
    let done = wait_until(Duration::from_secs(40), "every job to end", || {
        let all = jobs(&serve, &token);
        all.iter().all(|j| !["queued", "launching", "running", "preempting"].contains(&j["state"].as_str().unwrap())).then_some(all)
    });
    let listed: Vec<u64> = done.iter().map(|j| j["id"].as_u64().unwrap()).collect();
    assert_eq!(listed, ids, "exactly the submitted jobs, once each");
    for j in &done {
        assert_eq!(j["state"], "completed", "{j:#}");
    }
    let mut ran: Vec<u64> = fs::read_to_string(&runs).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    ran.sort();
    assert_eq!(ran, ids, "each job ran exactly once");

    // SIGTERM stops it cleanly.
    let status = Command::new("kill").args(["-TERM", &serve.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = wait_until(Duration::from_secs(20), "exec serve to exit", || serve.child.try_wait().unwrap());
    assert!(exit.success(), "{exit:?}");
    assert!(serve.rest_of_stdout.join().unwrap().contains("stopped"));
}

fn fails(mut command: Command) -> String {
    let out: Output = command.output().unwrap();
    assert!(!out.status.success(), "{command:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn exec_verbs_refuse_bad_input_naming_file_line_and_field() {
    let dir = TempDir::new().unwrap();
    let (token, lines) = make_token("ci", "submit", &[]);
    let config = write_config(dir.path(), &lines);

    // A bad exec.toml: the file, line and field.
    let bad = dir.path().join("bad.toml");
    fs::write(&bad, fs::read_to_string(&config).unwrap().replace("devices = 2", "devices = 'two'")).unwrap();
    let err = fails({
        let mut c = tessera();
        c.args(["exec", "serve", "--config"]).arg(&bad);
        c
    });
    assert!(err.contains("bad.toml, line 8, `daemon.cpu.devices`"), "{err}");
    fs::write(&bad, fs::read_to_string(&config).unwrap().replace("127.0.0.1:0", "0.0.0.0:0")).unwrap();
    let err = fails({
        let mut c = tessera();
        c.args(["exec", "serve", "--config"]).arg(&bad);
        c
    });
    assert!(err.contains("`api.listen`") && err.contains("allow_remote"), "{err}");

    // A bad job file is refused before any request, naming the file and line.
    let job = dir.path().join("job.toml");
    fs::write(&job, "command = 'true'\n[devices]\ncount = 1\nshare = 2.0\n").unwrap();
    let err = fails({
        let mut c = tessera();
        c.args(["exec", "submit"]).arg(&job).env("TESSERA_ADDR", "127.0.0.1:9").env("TESSERA_TOKEN", &token);
        c
    });
    assert!(err.contains("job.toml") && err.contains("devices.share"), "{err}");
    fs::write(&job, "command = 'true'\nretires = 2\n").unwrap();
    let err = fails({
        let mut c = tessera();
        c.args(["exec", "submit"]).arg(&job);
        c
    });
    assert!(err.contains("job.toml (line 2") && err.contains("retires"), "{err}");

    // No server there: says so.
    fs::write(&job, "command = 'true'\n").unwrap();
    let err = fails({
        let mut c = tessera();
        c.args(["exec", "submit", "--addr", "127.0.0.1:9", "--token", &token]).arg(&job);
        c
    });
    assert!(err.contains("cannot reach the executor at http://127.0.0.1:9"), "{err}");

    // A server, but the wrong token or role.
    let mut serve = Serve::start(&config);
    let err = fails({
        let mut c = serve.client("tsr_wrong");
        c.args(["exec", "status"]);
        c
    });
    assert!(err.contains("401") && err.contains("unknown token"), "{err}");
    let err = fails({
        let mut c = serve.client(&token);
        c.args(["exec", "drain", "cpu0"]);
        c
    });
    assert!(err.contains("403") && err.contains("needs `operate`"), "{err}");
    let err = fails({
        let mut c = serve.client(&token);
        c.args(["exec", "policy", "set"]).arg(repo_root().join("scenarios/exec/policy-sjf.toml")).arg("--allow-unvalidated");
        c
    });
    assert!(err.contains("403") && err.contains("needs `admin`"), "{err}");
    assert!(jobs(&serve, &token).is_empty(), "nothing was submitted");
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
}

#[test]
fn the_example_files_are_valid() {
    let root = repo_root().join("scenarios/exec");
    let config = tessera_exec::serve::ServeConfig::load(&root.join("exec.toml")).unwrap();
    assert!(config.api.listen.ip().is_loopback());
    assert_eq!(config.api.tokens.len(), 1);
    let store = tessera_exec::api::auth::TokenStore::new(&config.api.tokens).unwrap();
    assert!(store.lookup("tsr_example_token_replace_me").is_some(), "the comment names the example token");
    tessera_exec::spec::parse_toml_file(&root.join("job.toml")).unwrap();
    let policy: tessera_core::PolicySpec = toml::from_str(&fs::read_to_string(root.join("policy-sjf.toml")).unwrap()).unwrap();
    tessera_core::Policy::from_spec(&policy).unwrap();
}

#[test]
fn exec_bench_api_submits_and_counts_every_job() {
    let out = run_ok({
        let mut c = tessera();
        c.args(["exec", "bench-api", "--jobs", "200", "--concurrency", "8"]);
        c
    });
    assert!(out.contains("200 submissions over 8 connections") && out.contains("submissions/s") && out.contains("all 200 listed"), "{out}");
}

fn submit_sleep(serve: &Serve, token: &str, dir: &Path, name: &str, sleep_s: f64) -> u64 {
    let job = dir.join(format!("{name}.toml"));
    fs::write(&job, format!("name = '{name}'\ncommand = 'sleep'\nargs = ['{sleep_s}']\n[devices]\ncount = 1\n")).unwrap();
    let mut c = serve.client(token);
    c.args(["exec", "submit", "--json"]).arg(&job);
    let view: serde_json::Value = serde_json::from_str(&run_ok(c)).unwrap();
    view["id"].as_u64().unwrap()
}

fn state_of(serve: &Serve, token: &str, id: u64) -> String {
    jobs(serve, token).iter().find(|j| j["id"] == id).map(|j| j["state"].as_str().unwrap().to_string()).unwrap_or_default()
}

/// The scheduler's ordering state survives a real SIGKILL of `tessera exec serve`: under LAS,
/// a job that attained a device-second before the kill still ranks behind a later job with
/// none after the restart (re-submitting the jobs would put the older one first).
#[test]
fn exec_serve_killed_under_las_keeps_each_jobs_attained_service() {
    let dir = TempDir::new().unwrap();
    let (token, lines) = make_token("ci", "operate", &[]);
    let policy = "name = 'las'\nthresholds_device_s = [1.0]\ngrace_s = 0.2";
    let config = write_config_with(dir.path(), &lines, policy, 1);

    let mut serve = Serve::start(&config);
    let a = submit_sleep(&serve, &token, dir.path(), "a", 1.5);
    wait_until(Duration::from_secs(15), "A running", || (state_of(&serve, &token, a) == "running").then_some(()));
    let b = submit_sleep(&serve, &token, dir.path(), "b", 1.0);
    // After 1 s A passes the threshold and B, with no service, preempts it.
    wait_until(Duration::from_secs(15), "B running, A requeued", || {
        (state_of(&serve, &token, b) == "running" && state_of(&serve, &token, a) == "queued").then_some(())
    });
    let c = submit_sleep(&serve, &token, dir.path(), "c", 0.3);
    assert_eq!(state_of(&serve, &token, c), "queued");
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();

    let mut serve = Serve::start(&config);
    wait_until(Duration::from_secs(40), "every job to end", || {
        jobs(&serve, &token).iter().all(|j| j["state"] == "completed").then_some(())
    });
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();

    let decisions = run_ok({
        let mut c = tessera();
        c.args(["exec", "export-decisions", "--state-dir"]).arg(dir.path().join("state"));
        c
    });
    let launches: Vec<(u64, serde_json::Value)> = decisions
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| d["provenance"]["decision"]["decision"] == "launch")
        .filter_map(|d| Some((d["job"].as_u64()?, d)))
        .collect();
    let order: Vec<u64> = launches.iter().map(|(j, _)| *j).collect();
    let c_at = order.iter().position(|&j| j == c).unwrap_or_else(|| panic!("C launched: {order:?}\n{decisions}"));
    let a_last = order.iter().rposition(|&j| j == a).unwrap();
    assert!(c_at < a_last, "C (no service) starts before A (1 device-second) after the kill: launches {order:?}");
}
