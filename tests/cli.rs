//! End-to-end tests through the `tessera` binary: scenario files in, summary.csv, jobs.csv and
//! decisions.jsonl out. Every scenario but the bundled quickstart is small and synthetic (or a
//! hand-made trace), written to a temporary directory, so each test runs in well under a second
//! of simulation in a debug build.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use tempfile::TempDir;

mod support;
use support::repo_root;

const SUMMARY_HEADER: &str = "policy,replication,seed,jobs,completed,rejected,avg_jct_s,p50_jct_s,p95_jct_s,p99_jct_s,avg_wait_s,p50_wait_s,p95_wait_s,p99_wait_s,avg_bounded_slowdown,makespan_s,utilization,preemptions,events,lost_work_s,checkpoint_overhead_s,failures,wall_s";
const JOBS_HEADER: &str = "job_id,tenant,devices,submit_s,start_s,end_s,wait_s,jct_s,preemptions,models,outcome,run_s,lost_work_s,restarts,slowdown";
const TRACE_HEADER: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class";

// ---------------------------------------------------------------------------------------------
// Running the binary

/// `tessera sim SCENARIO --out OUT --quiet EXTRA...`, whatever its exit status.
fn sim(scenario: &Path, out: &Path, extra: &[&str]) -> Output {
    support::tessera()
        .arg("sim")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .args(extra)
        .output()
        .expect("the tessera binary runs")
}

/// `sim`, asserting it succeeded and printed no errors.
fn sim_ok(scenario: &Path, out: &Path, extra: &[&str]) {
    let output = sim(scenario, out, extra);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tessera sim {} {extra:?} failed: {stderr}", scenario.display());
    assert!(stderr.trim().is_empty(), "unexpected stderr: {stderr}");
}

/// `sim` on a broken input: asserts a non-zero exit, a clean message (no panic) that contains
/// every one of `needles`, and that no summary was written. Returns stderr.
fn assert_fails_cleanly(scenario: &Path, extra: &[&str], needles: &[&str]) -> String {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("out");
    let output = sim(scenario, &out, extra);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "expected a failure for {}, stderr: {stderr}", scenario.display());
    assert!(!stderr.contains("panicked"), "panicked instead of reporting: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks `{needle}`: {stderr}");
    }
    assert!(!out.join("summary.csv").exists(), "a failed run wrote a summary");
    stderr
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run_dir(out: &Path, label: &str, replication: u32) -> PathBuf {
    out.join(label).join(format!("r{replication}"))
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// A small synthetic scenario with a preempting `priority` policy (tiers 0..=2) and `fifo`,
/// two replications from seed 42: an overloaded 16-GPU cluster, so the decision log is rich.
fn synthetic_scenario(jobs: u32) -> String {
    format!(
        r#"name = "synthetic"
seed = 42
replications = 2

[[cluster.nodes]]
count = 4
devices = {{ model = "A100-80GB", count = 4 }}
cpu_cores = 32
mem_gib = 256

[workload]
synthetic = {{ jobs = {jobs}, interarrival = {{ dist = "exponential", mean_s = 30.0 }}, duration = {{ dist = "lognormal", mean_s = 400.0, sigma = 1.0 }}, devices = {{ dist = "choice", values = [1, 2, 4] }}, priority = {{ dist = "choice", values = [0, 1, 2] }}, tenants = 3 }}

[[policies]]
name = "priority"

[[policies]]
name = "fifo"
"#
    )
}

/// The issue's example (scenario.rs keeps it as the documented example), with fewer jobs.
fn mm8_example(jobs: u32) -> String {
    format!(
        r#"
name = "mm8"
seed = 7
replications = 3

[[cluster.nodes]]
count = 8
devices = {{ model = "V100-32GB", count = 1 }}
cpu_cores = 16
mem_gib = 64
name = "v100"

[workload]
synthetic = {{ jobs = {jobs}, interarrival = {{ dist = "exponential", mean_s = 100.0 }}, duration = {{ dist = "exponential", mean_s = 700.0 }}, devices = {{ dist = "constant", value = 1 }} }}

[[policies]]
name = "fifo"
[[policies]]
name = "sjf"
placement = "best-fit"
"#
    )
}

/// One node of two V100s, a native trace of `rows`, and the `priority` policy with its
/// defaults (first-fit, grace 30 s, no minimum runtime).
fn two_gpu_trace_scenario(dir: &Path, rows: &[&str]) -> PathBuf {
    let mut trace = format!("{TRACE_HEADER}\n");
    for row in rows {
        trace.push_str(row);
        trace.push('\n');
    }
    write(dir, "trace.csv", &trace);
    write(
        dir,
        "two-gpus.toml",
        r#"name = "two-gpus"

[[cluster.nodes]]
count = 1
devices = { model = "V100-32GB", count = 2 }

[workload]
trace = { format = "native", path = "trace.csv" }

[[policies]]
name = "priority"
"#,
    )
}

// ---------------------------------------------------------------------------------------------
// Reading the outputs

/// summary.csv's rows as fields, after checking its header is exactly the documented one.
fn summary_rows(out: &Path) -> Vec<Vec<String>> {
    let text = read(&out.join("summary.csv"));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(SUMMARY_HEADER), "summary.csv header");
    let columns = SUMMARY_HEADER.split(',').count();
    lines
        .map(|line| {
            let fields: Vec<String> = line.split(',').map(str::to_string).collect();
            assert_eq!(fields.len(), columns, "summary row `{line}`");
            fields
        })
        .collect()
}

/// summary.csv without its last column (`wall_s`, the only host-dependent figure).
fn summary_without_wall_time(out: &Path) -> String {
    let text = read(&out.join("summary.csv"));
    assert!(text.lines().next().unwrap().ends_with(",wall_s"), "wall_s is not the last column");
    text.lines().map(|l| &l[..l.rfind(',').unwrap()]).collect::<Vec<_>>().join("\n")
}

/// `(policy, replication, seed)` of each summary row, in file order.
fn summary_keys(out: &Path) -> Vec<(String, u32, u64)> {
    summary_rows(out).into_iter().map(|f| (f[0].clone(), f[1].parse().unwrap(), f[2].parse().unwrap())).collect()
}

fn summary_column(row: &[String], name: &str) -> String {
    let i = SUMMARY_HEADER.split(',').position(|c| c == name).unwrap();
    row[i].clone()
}

/// One row of jobs.csv.
#[derive(Debug)]
struct JobRow {
    job_id: u64,
    submit_s: f64,
    start_s: f64,
    end_s: f64,
    wait_s: f64,
    jct_s: f64,
    preemptions: u32,
    outcome: String,
    run_s: f64,
}

/// jobs.csv's rows, after checking its header is exactly the documented one. Every job must
/// have started and ended (the tests here run every job to completion).
fn job_rows(path: &Path) -> Vec<JobRow> {
    let text = read(path);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(JOBS_HEADER), "{} header", path.display());
    let num = |s: &str, line: &str| -> f64 { s.parse().unwrap_or_else(|_| panic!("`{s}` in `{line}`")) };
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 15, "jobs.csv row `{line}`");
            JobRow {
                job_id: f[0].parse().unwrap(),
                submit_s: num(f[3], line),
                start_s: num(f[4], line),
                end_s: num(f[5], line),
                wait_s: num(f[6], line),
                jct_s: num(f[7], line),
                preemptions: f[8].parse().unwrap(),
                outcome: f[10].to_string(),
                run_s: num(f[11], line),
            }
        })
        .collect()
}

/// wait + run = JCT, and submit <= start <= end, for every row; every job completed.
fn assert_job_rows_consistent(rows: &[JobRow]) {
    for r in rows {
        assert_eq!(r.outcome, "completed", "{r:?}");
        assert!((r.wait_s + r.run_s - r.jct_s).abs() < 1e-6, "wait + run != jct: {r:?}");
        assert!((r.end_s - r.submit_s - r.jct_s).abs() < 1e-6, "end - submit != jct: {r:?}");
        assert!(r.start_s >= r.submit_s, "started before submission: {r:?}");
        assert!(r.end_s >= r.start_s, "ended before it started: {r:?}");
        assert!(r.wait_s >= 0.0 && r.run_s > 0.0, "{r:?}");
    }
}

/// The decision log's lines, after a light structural check (serde_json is not a dependency
/// here): each is one JSON object starting with its time, and times never go back.
fn decision_lines(path: &Path) -> Vec<String> {
    let text = read(path);
    assert!(text.ends_with('\n'), "{}: the last line is not terminated", path.display());
    let mut last_t = f64::NEG_INFINITY;
    text.lines()
        .map(|line| {
            assert!(line.starts_with("{\"t_s\":") && line.ends_with('}'), "not a log line: {line}");
            let t: f64 = line["{\"t_s\":".len()..line.find(',').unwrap()].parse().unwrap();
            assert!(t >= last_t, "time goes back to {t} after {last_t}: {line}");
            last_t = t;
            line.to_string()
        })
        .collect()
}

/// The job id of a log line that reads `"decision":"<kind>","job":<id>`, if it is one.
fn decision_job(line: &str, kind: &str) -> Option<u64> {
    let marker = format!("\"decision\":\"{kind}\",\"job\":");
    let rest = &line[line.find(&marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(digits.parse().unwrap())
}

fn launched_jobs(lines: &[String]) -> BTreeSet<u64> {
    lines.iter().filter_map(|l| decision_job(l, "launch")).collect()
}

/// The data rows' job ids of a native trace (blank lines carry no job).
fn trace_job_ids(path: &Path) -> BTreeSet<u64> {
    let text = read(path);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    assert_eq!(lines.next(), Some(TRACE_HEADER));
    lines.map(|l| l.split(',').next().unwrap().parse().unwrap()).collect()
}

/// Every run's jobs.csv and decisions.jsonl, as (relative path, bytes), in a fixed order.
fn run_files(out: &Path, labels: &[&str], replications: u32) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for label in labels {
        for r in 0..replications {
            for name in ["jobs.csv", "decisions.jsonl"] {
                let path = run_dir(out, label, r).join(name);
                let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                files.push((format!("{label}/r{r}/{name}"), bytes));
            }
        }
    }
    files
}

/// Same run files byte for byte, and the same summary but for `wall_s`.
fn assert_same_outputs(a: &Path, b: &Path, labels: &[&str], replications: u32) {
    let (fa, fb) = (run_files(a, labels, replications), run_files(b, labels, replications));
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{name} differs between {} and {}", a.display(), b.display());
    }
    assert_eq!(summary_without_wall_time(a), summary_without_wall_time(b));
}

// ---------------------------------------------------------------------------------------------
// 1. The bundled quickstart

#[test]
fn quickstart_writes_documented_summary_jobs_and_decision_log() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("out");
    sim_ok(&support::scenario("quickstart.toml"), &out, &[]);

    // The scenario's three policies, one replication each, seed 1.
    let labels = ["fifo", "fifo-best-fit", "sjf"];
    let expected: Vec<(String, u32, u64)> = labels.iter().map(|l| (l.to_string(), 0, 1)).collect();
    assert_eq!(summary_keys(&out), expected);

    let trace_ids = trace_job_ids(&repo_root().join("traces/data/philly-sample.csv"));
    assert_eq!(trace_ids.len(), 2442, "the bundled sample's documented size");
    for row in summary_rows(&out) {
        assert_eq!(summary_column(&row, "jobs"), trace_ids.len().to_string(), "{row:?}");
        assert_eq!(summary_column(&row, "completed"), trace_ids.len().to_string(), "{row:?}");
    }

    for label in labels {
        let dir = run_dir(&out, label, 0);
        let rows = job_rows(&dir.join("jobs.csv"));
        assert_eq!(rows.len(), trace_ids.len(), "{label}: one row per trace job");
        let ids: BTreeSet<u64> = rows.iter().map(|r| r.job_id).collect();
        assert_eq!(ids, trace_ids, "{label}: jobs.csv has exactly the trace's jobs");
        assert_job_rows_consistent(&rows);
        assert!(rows.iter().all(|r| r.preemptions == 0), "{label} does not preempt");

        let log = decision_lines(&dir.join("decisions.jsonl"));
        let launched = launched_jobs(&log);
        let never_launched: Vec<_> = ids.difference(&launched).collect();
        assert!(never_launched.is_empty(), "{label}: no launch logged for {never_launched:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Determinism

#[test]
fn same_scenario_twice_gives_identical_outputs() {
    let tmp = TempDir::new().unwrap();
    let scenario = write(tmp.path(), "synthetic.toml", &synthetic_scenario(2000));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    sim_ok(&scenario, &a, &[]);
    sim_ok(&scenario, &b, &[]);
    assert_same_outputs(&a, &b, &["priority", "fifo"], 2);

    // The comparison is only worth something if the log is rich: priority really preempted.
    for row in summary_rows(&a).iter().filter(|r| r[0] == "priority") {
        let preemptions: u64 = summary_column(row, "preemptions").parse().unwrap();
        assert!(preemptions > 0, "no preemption in {row:?}");
        // The summary's count is the sum over jobs.csv, and each has its preempt line.
        let dir = run_dir(&a, "priority", row[1].parse().unwrap());
        let per_job: u64 = job_rows(&dir.join("jobs.csv")).iter().map(|r| r.preemptions as u64).sum();
        assert_eq!(per_job, preemptions, "{row:?}");
        let log = decision_lines(&dir.join("decisions.jsonl"));
        assert_eq!(log.iter().filter(|l| decision_job(l, "preempt").is_some()).count() as u64, preemptions);
    }
}

#[test]
fn thread_count_does_not_change_outputs() {
    let tmp = TempDir::new().unwrap();
    let scenario = write(tmp.path(), "synthetic.toml", &synthetic_scenario(2000));
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    sim_ok(&scenario, &one, &["--threads", "1"]);
    sim_ok(&scenario, &two, &["--threads", "2"]);
    assert_same_outputs(&one, &two, &["priority", "fifo"], 2);
}

#[test]
fn seed_flag_changes_jobs_and_replication_k_uses_seed_plus_k() {
    let tmp = TempDir::new().unwrap();
    let scenario = write(tmp.path(), "synthetic.toml", &synthetic_scenario(2000));
    let (base, other, shifted) = (tmp.path().join("base"), tmp.path().join("other"), tmp.path().join("shifted"));
    sim_ok(&scenario, &base, &[]); // seeds 42, 43
    sim_ok(&scenario, &other, &["--seed", "1000"]);
    sim_ok(&scenario, &shifted, &["--seed", "43", "--replications", "1"]);

    let jobs = |out: &Path, r| fs::read(run_dir(out, "fifo", r).join("jobs.csv")).unwrap();
    assert!(jobs(&base, 0) != jobs(&other, 0), "--seed 1000 gave the same jobs as seed 42");
    assert_eq!(summary_keys(&other)[0], ("priority".to_string(), 0, 1000));
    // Replication 1 of seed 42 is replication 0 of seed 43, byte for byte.
    for label in ["priority", "fifo"] {
        for name in ["jobs.csv", "decisions.jsonl"] {
            let a = fs::read(run_dir(&base, label, 1).join(name)).unwrap();
            let b = fs::read(run_dir(&shifted, label, 0).join(name)).unwrap();
            assert!(a == b, "{label}/{name}: seed 42 + 1 differs from seed 43");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Replications and policy selection

#[test]
fn replications_flag_runs_consecutive_seeds_into_numbered_dirs() {
    let tmp = TempDir::new().unwrap();
    let scenario = write(tmp.path(), "synthetic.toml", &synthetic_scenario(200));
    let out = tmp.path().join("out");
    sim_ok(&scenario, &out, &["--replications", "3", "--seed", "5"]);

    let mut expected = Vec::new();
    for label in ["priority", "fifo"] {
        for r in 0..3u32 {
            expected.push((label.to_string(), r, 5 + r as u64));
            let rows = job_rows(&run_dir(&out, label, r).join("jobs.csv"));
            assert_eq!(rows.len(), 200);
            assert_job_rows_consistent(&rows);
        }
        assert!(!run_dir(&out, label, 3).exists(), "{label}: a fourth replication was written");
    }
    assert_eq!(summary_keys(&out), expected);
}

#[test]
fn policy_flag_runs_only_that_policy() {
    let tmp = TempDir::new().unwrap();
    let scenario = write(tmp.path(), "synthetic.toml", &synthetic_scenario(200));
    let out = tmp.path().join("out");
    sim_ok(&scenario, &out, &["--policy", "fifo"]);
    assert_eq!(summary_keys(&out), vec![("fifo".to_string(), 0, 42), ("fifo".to_string(), 1, 43)]);
    assert!(run_dir(&out, "fifo", 1).join("jobs.csv").is_file());
    assert!(!out.join("priority").exists(), "an unselected policy was run");

    // A label picks that entry alone, even where another entry has the same queue order.
    let quick = tmp.path().join("quick");
    sim_ok(&support::scenario("quickstart.toml"), &quick, &["--policy", "fifo-best-fit"]);
    assert_eq!(summary_keys(&quick), vec![("fifo-best-fit".to_string(), 0, 1)]);
    assert!(!quick.join("fifo").exists() && !quick.join("sjf").exists());
}

#[test]
fn unknown_policy_flag_fails_listing_the_labels() {
    let tmp = TempDir::new().unwrap();
    let scenario = write(tmp.path(), "synthetic.toml", &synthetic_scenario(200));
    assert_fails_cleanly(&scenario, &["--policy", "nosuch"], &["nosuch", "priority, fifo"]);
}

// ---------------------------------------------------------------------------------------------
// 4. Bad input: a clean error naming the file and the key (or trace line and column)

/// The synthetic scenario with one text replacement, which must apply.
fn broken_synthetic(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = synthetic_scenario(200);
    assert!(text.contains(from), "`{from}` is not in the scenario");
    write(dir, name, &text.replacen(from, to, 1))
}

#[test]
fn unknown_key_is_named_with_its_path() {
    let tmp = TempDir::new().unwrap();
    let s = broken_synthetic(tmp.path(), "typo.toml", "mean_s = 30.0", "meen_s = 30.0");
    assert_fails_cleanly(&s, &[], &["typo.toml", "workload.synthetic.interarrival.meen_s", "line 12"]);
}

#[test]
fn wrong_type_is_named_with_its_path() {
    let tmp = TempDir::new().unwrap();
    let s = broken_synthetic(tmp.path(), "type.toml", "count = 4 }", "count = \"four\" }");
    assert_fails_cleanly(&s, &[], &["type.toml", "cluster.nodes[0].devices.count", "positive integer", "line 7"]);
}

#[test]
fn unknown_device_model_is_named_with_the_choices() {
    let tmp = TempDir::new().unwrap();
    let s = broken_synthetic(tmp.path(), "model.toml", "A100-80GB", "A100-81GB");
    assert_fails_cleanly(&s, &[], &["model.toml", "cluster.nodes[0].devices.model", "A100-81GB", "A100-80GB"]);
}

#[test]
fn unknown_policy_name_is_named_with_the_choices() {
    let tmp = TempDir::new().unwrap();
    let s = broken_synthetic(tmp.path(), "policy.toml", "name = \"fifo\"", "name = \"lottery\"");
    assert_fails_cleanly(&s, &[], &["policy.toml", "policies[1].name", "lottery", "fifo, sjf, srtf, priority, las, drf, fair-share"]);
}

#[test]
fn missing_trace_file_is_named() {
    let tmp = TempDir::new().unwrap();
    let s = two_gpu_trace_scenario(tmp.path(), &["1,0,a,0,1,,10,x"]);
    let text = read(&s).replace("trace.csv", "no-such-trace.csv");
    let s = write(tmp.path(), "notrace.toml", &text);
    assert_fails_cleanly(&s, &[], &["notrace.toml", "workload.trace.path", "no-such-trace.csv"]);
}

#[test]
fn bad_number_in_trace_is_named_by_line_and_column() {
    let tmp = TempDir::new().unwrap();
    // Line 1 is the header; the bad submit time is on line 4.
    let s = two_gpu_trace_scenario(tmp.path(), &["1,0,a,0,1,,10,x", "2,5,a,0,1,,10,x", "3,1x0,a,0,1,,10,x"]);
    assert_fails_cleanly(&s, &[], &["two-gpus.toml", "trace.csv", "line 4", "submit_s", "1x0"]);
}

/// Jobs that can never fit the cluster are rejected at submission, counted in summary.csv's
/// `rejected`, and warned about once with the count, not left as unexplained NaN metrics.
#[test]
fn jobs_larger_than_the_cluster_are_rejected_counted_and_warned_about_once() {
    let tmp = TempDir::new().unwrap();
    // Two V100s: jobs 2 and 4 ask for three and eight.
    let s = two_gpu_trace_scenario(tmp.path(), &["1,0,a,0,1,,10,x", "2,1,a,0,3,,10,x", "3,2,a,0,2,,10,x", "4,3,a,0,8,,10,x"]);
    let out = tmp.path().join("out");
    let output = sim(&s, &out, &["--replications", "2"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("4 of 8 jobs (in 2 of 2 runs) were rejected") && warnings[0].contains("`rejected`"), "{stderr}");
    for row in summary_rows(&out) {
        assert_eq!((summary_column(&row, "jobs"), summary_column(&row, "completed"), summary_column(&row, "rejected")), ("4".into(), "2".into(), "2".into()));
    }

    // Every job rejected: the metrics are NaN, and the warning and the column say why.
    let s = two_gpu_trace_scenario(tmp.path(), &["1,0,a,0,3,,10,x"]);
    let output = sim(&s, &out, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.contains("1 of 1 jobs (in 1 of 1 runs) were rejected"), "{stderr}");
    let row = &summary_rows(&out)[0];
    assert_eq!((summary_column(row, "rejected"), summary_column(row, "avg_jct_s")), ("1".into(), "NaN".into()));

    // None rejected: no warning.
    let s = two_gpu_trace_scenario(tmp.path(), &["1,0,a,0,2,,10,x"]);
    sim_ok(&s, &out, &[]);
}

/// Garbage the simulator once ran silently is refused, naming the file, the key or line, and
/// the bound: a negative device count, a duration of 1e300 s, a trace row of 1e300 s.
#[test]
fn out_of_bound_numbers_are_refused_with_the_bound() {
    let tmp = TempDir::new().unwrap();
    let s = broken_synthetic(tmp.path(), "neg.toml", "values = [1, 2, 4]", "values = [1, -1, 4]");
    assert_fails_cleanly(&s, &[], &["neg.toml", "workload.synthetic.devices", "-1"]);
    let s = broken_synthetic(tmp.path(), "long.toml", "mean_s = 400.0", "mean_s = 1e300");
    assert_fails_cleanly(&s, &[], &["long.toml", "workload.synthetic.duration", "1e300", "3155760000 s (100 years)"]);
    let s = two_gpu_trace_scenario(tmp.path(), &["1,0,a,0,1,,10,x", "2,5,a,0,1,,1e300,x"]);
    assert_fails_cleanly(&s, &[], &["two-gpus.toml", "trace.csv", "line 3", "column `duration_s`", "1e300", "100 years"]);
    let s = two_gpu_trace_scenario(tmp.path(), &["1,0,a,0,1,,10,x"]);
    assert_fails_cleanly(&s, &["--replications", "4000000000"], &["two-gpus.toml", "`replications`", "--replications", "bound of 10000"]);
}

#[test]
fn missing_scenario_file_is_named() {
    let tmp = TempDir::new().unwrap();
    let s = tmp.path().join("absent.toml");
    assert_fails_cleanly(&s, &[], &["absent.toml", "cannot read"]);
}

// ---------------------------------------------------------------------------------------------
// 5. Preemption, worked out by hand

#[test]
fn priority_preempts_the_latest_started_low_tier_job() {
    // One node, two GPUs, speed 1.0, first-fit, grace 30 s.
    //   t=0    job 1 (tier 0, 1000 s) launches on GPU 0.
    //   t=10   job 2 (tier 0, 1000 s) launches on GPU 1.
    //   t=100  job 3 (tier 1, 200 s) arrives; nothing is free. Both running jobs are tier 0;
    //          the latest started, job 2, is preempted (decision at t=100).
    //   t=130  grace over: job 2 is evicted having run 120 s (880 s left) and is requeued;
    //          job 3 launches on GPU 1.
    //   t=330  job 3 ends; job 2 relaunches on GPU 1 and needs 880 s more.
    //   t=1000 job 1 ends.
    //   t=1210 job 2 ends: JCT 1200 = run 1000 + wait 200 (the high job's run from 130 to 330).
    let tmp = TempDir::new().unwrap();
    let s =
        two_gpu_trace_scenario(tmp.path(), &["1,0,low,0,1,,1000,x", "2,10,low,0,1,,1000,x", "3,100,high,1,1,,200,x"]);
    let out = tmp.path().join("out");
    sim_ok(&s, &out, &[]);
    let dir = run_dir(&out, "priority", 0);
    assert_eq!(
        read(&dir.join("jobs.csv")),
        format!(
            "{JOBS_HEADER}\n\
             1,low,1,0.000000,0.000000,1000.000000,0.000000,1000.000000,0,V100-32GB,completed,1000.000000,0.000000,0,1.000000\n\
             2,low,1,10.000000,10.000000,1210.000000,200.000000,1200.000000,1,V100-32GB,completed,1000.000000,0.000000,0,1.000000\n\
             3,high,1,100.000000,130.000000,330.000000,30.000000,230.000000,0,V100-32GB,completed,200.000000,0.000000,0,1.000000\n"
        )
    );
    let log = decision_lines(&dir.join("decisions.jsonl"));
    let preempts: Vec<&String> = log.iter().filter(|l| decision_job(l, "preempt").is_some()).collect();
    assert_eq!(preempts.len(), 1, "{log:#?}");
    let p = preempts[0];
    assert!(p.starts_with("{\"t_s\":100.0,"), "{p}");
    assert_eq!(decision_job(p, "preempt"), Some(2), "{p}");
    assert!(p.contains("\"kind\":\"higher_tier\",\"for_job\":3,\"victim_tier\":0,\"for_tier\":1"), "{p}");
    let launches: Vec<(u64, &str)> =
        log.iter().filter_map(|l| decision_job(l, "launch").map(|j| (j, &l[..l.find(',').unwrap()]))).collect();
    assert_eq!(launches, [(1, "{\"t_s\":0.0"), (2, "{\"t_s\":10.0"), (3, "{\"t_s\":130.0"), (2, "{\"t_s\":330.0")]);
    let row = &summary_rows(&out)[0];
    assert_eq!(summary_column(row, "preemptions"), "1");
}

#[test]
fn priority_preempts_the_lowest_tier_before_a_later_start() {
    // As above, but job 1 is tier 0 and job 2 tier 1, and job 3 is tier 2: the victim is the
    // lowest tier, job 1, although job 2 started later.
    //   t=100  preempt job 1; t=130 it is evicted having run 130 s (870 s left); job 3
    //          launches on GPU 0 (first-fit: the free one), ends at t=330.
    //   t=330  job 1 relaunches on GPU 0, ends at t=1200: JCT 1200, wait 200.
    //   job 2 runs undisturbed from 10 to 1010.
    let tmp = TempDir::new().unwrap();
    let s =
        two_gpu_trace_scenario(tmp.path(), &["1,0,low,0,1,,1000,x", "2,10,mid,1,1,,1000,x", "3,100,high,2,1,,200,x"]);
    let out = tmp.path().join("out");
    sim_ok(&s, &out, &[]);
    let dir = run_dir(&out, "priority", 0);
    assert_eq!(
        read(&dir.join("jobs.csv")),
        format!(
            "{JOBS_HEADER}\n\
             1,low,1,0.000000,0.000000,1200.000000,200.000000,1200.000000,1,V100-32GB,completed,1000.000000,0.000000,0,1.000000\n\
             2,mid,1,10.000000,10.000000,1010.000000,0.000000,1000.000000,0,V100-32GB,completed,1000.000000,0.000000,0,1.000000\n\
             3,high,1,100.000000,130.000000,330.000000,30.000000,230.000000,0,V100-32GB,completed,200.000000,0.000000,0,1.000000\n"
        )
    );
    let log = decision_lines(&dir.join("decisions.jsonl"));
    let preempted: Vec<u64> = log.iter().filter_map(|l| decision_job(l, "preempt")).collect();
    assert_eq!(preempted, [1]);
    assert!(log.iter().any(|l| l.contains("\"kind\":\"higher_tier\",\"for_job\":3,\"victim_tier\":0,\"for_tier\":2")));
}

// ---------------------------------------------------------------------------------------------
// 6. The issue's example

#[test]
fn mm8_example_runs_with_fewer_jobs() {
    let tmp = TempDir::new().unwrap();
    let s = write(tmp.path(), "mm8.toml", &mm8_example(2000));
    let out = tmp.path().join("out");
    sim_ok(&s, &out, &["--replications", "1"]);
    let rows = summary_rows(&out);
    assert_eq!(summary_keys(&out), vec![("fifo".to_string(), 0, 7), ("sjf".to_string(), 0, 7)]);
    for row in &rows {
        assert_eq!(summary_column(row, "jobs"), "2000");
        assert_eq!(summary_column(row, "completed"), "2000");
        assert_eq!(summary_column(row, "preemptions"), "0");
    }
    for label in ["fifo", "sjf"] {
        let dir = run_dir(&out, label, 0);
        let jobs = job_rows(&dir.join("jobs.csv"));
        assert_eq!(jobs.len(), 2000);
        assert_job_rows_consistent(&jobs);
        let log = decision_lines(&dir.join("decisions.jsonl"));
        assert_eq!(launched_jobs(&log).len(), 2000);
        assert!(log[0].contains(r#""node":0"#), "{}", log[0]);
    }
    // Node ids in the logs are named in nodes.csv, after the group's `name`.
    let nodes = read(&out.join("nodes.csv"));
    assert!(nodes.starts_with("node,name,devices,cpu_milli,mem_mib\n0,v100-0,1,16000,65536\n"), "{nodes}");
    let devices = read(&out.join("devices.csv"));
    let v100 = tessera_core::Catalogue::built_in().lookup("V100-32GB").unwrap().0;
    assert_eq!(devices.lines().next(), Some("device,node,model,model_id"));
    assert_eq!(devices.lines().nth(8), Some(format!("7,7,V100-32GB,{v100}").as_str()));
    // The two policies ran on the same jobs (common random numbers): same submissions.
    let submits =
        |label| job_rows(&run_dir(&out, label, 0).join("jobs.csv")).iter().map(|r| r.submit_s).collect::<Vec<_>>();
    assert_eq!(submits("fifo"), submits("sjf"));
    assert!(!run_dir(&out, "fifo", 1).exists(), "--replications 1 ignored");
}

// ---------------------------------------------------------------------------------------------
// Labels name output directories.

#[test]
fn labels_that_are_not_plain_directory_names_are_refused() {
    // A label names the run's directory: `a/b` would collide with `a-b` or nest, `..` would
    // write outside --out, and an empty label would write into --out itself.
    let tmp = TempDir::new().unwrap();
    let base = two_gpu_trace_scenario(tmp.path(), &["1,0,low,0,1,,10,x"]);
    for label in ["a/b", "..", "", "x y"] {
        let text = read(&base).replace("name = \"priority\"\n", &format!("name = \"priority\"\nlabel = \"{label}\"\n"));
        let s = write(tmp.path(), "labels.toml", &text);
        assert_fails_cleanly(&s, &[], &["labels.toml", "policies[0].label", "output directory"]);
        assert!(!tmp.path().join("r0").exists());
    }
}

#[test]
fn zero_replications_are_refused_on_the_command_line_too() {
    let tmp = TempDir::new().unwrap();
    let s = two_gpu_trace_scenario(tmp.path(), &["1,0,low,0,1,,10,x"]);
    let output = sim(&s, &tmp.path().join("out"), &["--replications", "0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("--replications"), "{stderr}");
}
