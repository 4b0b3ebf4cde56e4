//! One policy, two drivers: `tessera conform` proves the executor decides as the simulator,
//! and `exec serve` admits a policy only when what it builds is what `tessera validate`
//! validated (spec, tenant table, speed matrix, device models).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

mod support;
use support::{tessera, repo_root};

fn conform(args: &[&str]) -> (i32, String, String) {
    let out = tessera().arg("conform").args(args).current_dir(repo_root()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every policy family of `scenarios/conform/policies.toml`, on 300 jobs of three tenants over
/// a mixed fleet with fractional shares: identical straight through, and with the executor
/// killed in the middle of the run and recovered from its journal.
#[test]
fn conform_is_identical_for_every_policy_family_straight_and_after_a_restart() {
    let families = [
        "fifo", "sjf", "srtf", "priority", "las", "drf", "fair-share", "quota-borrow", "fifo-easy", "sjf-conservative", "topology-wait", "fgd", "hetero", "gavel",
    ];
    for restart in [None, Some("5400")] {
        let mut args = vec!["scenarios/conform/policies.toml"];
        if let Some(t) = restart {
            args.extend(["--restart-at", t]);
        }
        let (code, stdout, stderr) = conform(&args);
        assert_eq!(code, 0, "conform {args:?} diverged or failed:\n{stdout}\n{stderr}");
        for family in families {
            let line = stdout.lines().find(|l| l.ends_with(&format!("under `{family}`")) || l.contains(&format!("under `{family}`,"))).unwrap_or_else(|| panic!("no line for `{family}`:\n{stdout}"));
            assert!(line.starts_with("identical: "), "{line}");
            if restart.is_some() {
                assert!(line.contains("restarted once from its journal"), "{line}");
            }
        }
        // The comparison covers preemptions, not launches alone.
        let preemptions: usize = stdout.lines().filter_map(|l| l.split(" launches, ").nth(1)?.split(' ').next()?.parse::<usize>().ok()).sum();
        assert!(preemptions > 400, "too few preemptions compared: {preemptions}\n{stdout}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn conform_refuses_a_world_the_executor_cannot_reproduce_naming_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(
        dir.path(),
        "contention.toml",
        "name = 'c'\n[[cluster.nodes]]\ncount = 2\ndevices = { model = 'V100-32GB', count = 2 }\n\
         [workload]\nsynthetic = { jobs = 20, interarrival = { dist = 'constant', value = 10 }, duration = { dist = 'constant', value = 100 }, devices = { dist = 'constant', value = 1 } }\n\
         [models.contention]\nnode = { dist = 'constant', value = 0.9 }\n[[policies]]\nname = 'fifo'\n",
    );
    let (code, _, stderr) = conform(&[s.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("contention ([models.contention])"), "{stderr}");

    let (code, _, stderr) = conform(&["scenarios/conform/policies.toml", "--policy", "no-such"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no policy labelled `no-such`") && stderr.contains("gavel"), "{stderr}");
}

/// A fleet of two V100 and two K80 nodes, two tenants, three job classes with speeds.
const FLEET_SCENARIO: &str = "name = 'fleet'\nseed = 3\n\
[[cluster.nodes]]\ncount = 2\nname = 'v100'\ndevices = { model = 'V100-32GB', count = 2 }\ncpu_cores = 8\nmem_gib = 32\n\
[[cluster.nodes]]\ncount = 2\nname = 'k80'\ndevices = { model = 'K80', count = 2 }\ncpu_cores = 8\nmem_gib = 32\n\
[workload]\ntrace = { format = 'native', path = 'jobs.csv' }\n\
[[speed]]\nclass = 'resnet50'\nmodel = 'K80'\nrelative = 0.4\n\
[[speed]]\nclass = 'bert'\nmodel = 'K80'\nrelative = 0.25\n\
[[policies]]\nname = 'gavel'\nround_s = 120\n\
[[policies]]\nname = 'fifo'\nlabel = 'hetero-quota'\nplacement = 'hetero'\nquota_devices = { 'team-a' = 4, 'team-b' = 2 }\n";

const FLEET_JOBS: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class\n\
1,0,team-a,0,1,,300,resnet50\n2,10,team-b,0,2,,200,bert\n3,20,team-a,0,1,,400,bert\n4,30,team-b,0,1,,100,resnet50\n\
5,40,team-a,0,2,,250,resnet50\n6,50,team-b,0,1,,350,bert\n7,60,team-a,0,1,,150,resnet50\n8,70,team-b,0,2,,300,bert\n";

/// `exec.toml` for the same fleet (simulated devices), tenants and speeds; `k80_bert` is the
/// speed given for bert on the K80.
/// Both tenants' jobs run as the test's user (`single_user`): this test is about the policy's
/// context, not isolation (`exec/tests/runtime_isolation.rs`).
fn exec_toml(dir: &Path, policy: &str, record: &Path, k80_bert: f64) -> PathBuf {
    let text = format!(
        "[daemon]\nstate_dir = 'state-{policy}'\nvalidation_record = '{}'\nsingle_user = true\n\
         [daemon.policy]\n{}\n\
         [daemon.cpu]\ndevices = 0\n[daemon.gpu]\nenabled = false\n[daemon.health]\ninterval_s = 3600\n\
         [[daemon.tenants]]\nname = 'team-a'\n[[daemon.tenants]]\nname = 'team-b'\n\
         [[daemon.speed]]\nclass = 'resnet50'\nmodel = 'K80'\nrelative = 0.4\n\
         [[daemon.speed]]\nclass = 'bert'\nmodel = 'K80'\nrelative = {k80_bert}\n\
         [[daemon.simulated.nodes]]\nname = 'v100-0'\ncpu_milli = 8000\nmem_mib = 32768\ndevices = [{{ model = 'V100-32GB', count = 2 }}]\n\
         [[daemon.simulated.nodes]]\nname = 'v100-1'\ncpu_milli = 8000\nmem_mib = 32768\ndevices = [{{ model = 'V100-32GB', count = 2 }}]\n\
         [[daemon.simulated.nodes]]\nname = 'k80-0'\ncpu_milli = 8000\nmem_mib = 32768\ndevices = [{{ model = 'K80', count = 2 }}]\n\
         [[daemon.simulated.nodes]]\nname = 'k80-1'\ncpu_milli = 8000\nmem_mib = 32768\ndevices = [{{ model = 'K80', count = 2 }}]\n\
         [api]\nlisten = '127.0.0.1:0'\n{}",
        record.display(),
        match policy {
            "gavel" => "name = 'gavel'\nround_s = 120".to_string(),
            _ => "name = 'fifo'\nlabel = 'hetero-quota'\nplacement = 'hetero'\nquota_devices = { 'team-a' = 4, 'team-b' = 2 }".to_string(),
        },
        token_lines()
    );
    write(dir, &format!("exec-{policy}-{k80_bert}.toml"), &text)
}

/// The `[[api.tokens]]` lines `tessera exec token` prints for an admin.
fn token_lines() -> String {
    let out = tessera().args(["exec", "token", "admin", "--role", "admin"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text[text.find("[[api.tokens]]").expect("config lines are printed")..].to_string()
}

/// Starts `exec serve`; returns its first line of output, or its error if it exits.
fn serve(config: &Path) -> Result<String, String> {
    let mut child = tessera().args(["exec", "serve", "--config"]).arg(config).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    if first.is_empty() {
        let out = child.wait_with_output().unwrap();
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(first)
}

#[test]
fn exec_serve_runs_gavel_and_hetero_with_quotas_as_validated_and_refuses_another_speed_matrix() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "jobs.csv", FLEET_JOBS);
    let scenario = write(dir.path(), "fleet.toml", FLEET_SCENARIO);
    for policy in ["gavel", "hetero-quota"] {
        let record = dir.path().join(format!("{policy}.json"));
        let out = tessera().arg("validate").arg(&scenario).args(["--policy", policy, "--require", "completed >= 8", "--out"]).arg(&record).output().unwrap();
        assert!(out.status.success(), "validate {policy}: {}", String::from_utf8_lossy(&out.stderr));
        let text = fs::read_to_string(&record).unwrap();
        assert!(text.contains("\"fingerprint\""), "{text}");

        // The executor's context is the scenario's: it starts, through the gate.
        let first = serve(&exec_toml(dir.path(), policy, &record, 0.25)).unwrap_or_else(|e| panic!("exec serve refused `{policy}`: {e}"));
        assert!(first.contains("http://127.0.0.1:"), "{first}");

        // Another speed for bert on the K80: refused, naming the cell and both values.
        let err = serve(&exec_toml(dir.path(), policy, &record, 0.5)).expect_err("a different speed matrix must be refused");
        assert!(err.contains("speed matrix: K80/bert is 0.5 here, 0.25 in the record"), "{policy}: {err}");
    }
}
