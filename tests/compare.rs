//! End-to-end tests of `tessera compare` and `tessera explain` through the binary, on small
//! synthetic scenarios and a hand-made trace written to temporary directories.

use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

mod support;
use support::run;

const COMPARISON_HEADER: &str =
    "point,metric,policy,n,mean,ci_low,ci_high,n_pairs,diff_vs_baseline,diff_ci_low,diff_ci_high,p_value";
const TRACE_HEADER: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class";

fn ok(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tessera {args:?} failed: {stderr}");
    assert!(stderr.trim().is_empty(), "unexpected stderr: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected tessera {args:?} to fail; stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An overloaded two-GPU cluster: jobs arrive every 40 s on average, 90% of them need 10 s
/// and 10% 1000 s (mean 109 s), so 2.7 devices of work arrive per second of 2: the queue grows
/// all the time. Under fifo every job waits behind all the work submitted before it, long jobs
/// included (the convoy effect), so the typical job's JCT is the growing backlog. sjf runs
/// the 10 s jobs first: they add only 0.225 devices of load, so they wait at most for a device
/// to free up, while the few long jobs absorb the whole backlog. Shortest-processing-time-first
/// minimises the mean wait among non-preemptive orders (Smith's rule), and with durations this
/// skewed the mean JCT falls by a large factor in every replication, so the paired t-test is
/// significant even with 5 replications.
fn overloaded(dir: &Path, extra: &str) -> PathBuf {
    write(
        dir,
        "overloaded.toml",
        &format!(
            r#"name = "overloaded"
seed = 7
replications = 5

[[cluster.nodes]]
count = 1
devices = {{ model = "V100-32GB", count = 2 }}

[workload.synthetic]
jobs = 200
interarrival = {{ dist = "exponential", mean_s = 40.0 }}
duration = {{ dist = "choice", values = [10, 1000], weights = [9, 1] }}
tenants = 3

[[policies]]
name = "fifo"

[[policies]]
name = "sjf"

[[policies]]
name = "fifo"
label = "fifo-copy"
{extra}"#
        ),
    )
}

struct Row {
    point: String,
    metric: String,
    policy: String,
    n: u32,
    mean: f64,
    ci: (f64, f64),
    n_pairs: u32,
    diff: f64,
    diff_ci: (f64, f64),
    p: f64,
    raw: String,
}

/// comparison.csv's rows, after checking the header is exactly the documented one.
fn comparison(out: &Path) -> Vec<Row> {
    let text = fs::read_to_string(out.join("comparison.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(COMPARISON_HEADER));
    lines
        .map(|l| {
            // The point label may be quoted (it holds commas); nothing else is.
            let (point, rest) = if let Some(q) = l.strip_prefix('"') {
                let end = q.find('"').unwrap();
                (q[..end].to_string(), &q[end + 2..])
            } else {
                let (p, r) = l.split_once(',').unwrap();
                (p.to_string(), r)
            };
            let f: Vec<&str> = rest.split(',').collect();
            assert_eq!(f.len(), 11, "{l}");
            let x = |i: usize| f[i].parse::<f64>().unwrap_or_else(|_| panic!("field {i} of {l}"));
            Row {
                point,
                metric: f[0].into(),
                policy: f[1].into(),
                n: f[2].parse().unwrap(),
                mean: x(3),
                ci: (x(4), x(5)),
                n_pairs: f[6].parse().unwrap(),
                diff: x(7),
                diff_ci: (x(8), x(9)),
                p: x(10),
                raw: l.to_string(),
            }
        })
        .collect()
}

fn find<'r>(rows: &'r [Row], metric: &str, policy: &str) -> &'r Row {
    rows.iter().find(|r| r.metric == metric && r.policy == policy).unwrap_or_else(|| panic!("no row {metric} {policy}"))
}

#[test]
fn compare_writes_the_statistics_and_sjf_beats_fifo_significantly() {
    let tmp = TempDir::new().unwrap();
    let scenario = overloaded(tmp.path(), "");
    let out = tmp.path().join("out");
    let stdout = ok(&["compare", s(&scenario), "--out", s(&out), "--threads", "2"]);
    assert!(stdout.contains("avg_jct_s") && stdout.contains("(baseline)"), "{stdout}");
    assert!(stdout.contains(&format!("wrote {}", out.join("comparison.csv").display())), "{stdout}");
    // The usual per-run outputs too.
    assert!(out.join("summary.csv").is_file() && out.join("nodes.csv").is_file());
    for policy in ["fifo", "sjf", "fifo-copy"] {
        for r in 0..5 {
            assert!(out.join(policy).join(format!("r{r}")).join("decisions.jsonl").is_file());
        }
    }

    let rows = comparison(&out);
    let metrics: Vec<&str> = rows.iter().filter(|r| r.policy == "fifo").map(|r| r.metric.as_str()).collect();
    assert_eq!(rows.len(), 3 * metrics.len());
    for m in ["avg_jct_s", "p99_wait_s", "utilization", "lost_work_s", "jain_fairness", "ftf_mean", "ftf_max", "ftf_frac_above_1", "first_start_mean_s", "first_start_p95_s", "device_hours_per_job:V100-32GB"] {
        assert!(metrics.contains(&m), "{m} missing from {metrics:?}");
    }
    for r in &rows {
        assert_eq!(r.point, "");
        assert_eq!(r.n, 5, "{}", r.raw);
        // The interval contains the mean.
        assert!(r.ci.0 <= r.mean && r.mean <= r.ci.1, "{}", r.raw);
        assert!(r.diff_ci.0 <= r.diff && r.diff <= r.diff_ci.1, "{}", r.raw);
        // The baseline, and an identical copy of it under another label, differ from the
        // baseline by exactly 0, with the interval [0, 0] and p = 1 (the documented choice).
        if r.policy == "fifo" || r.policy == "fifo-copy" {
            assert_eq!(r.n_pairs, 5, "{}", r.raw);
            assert!(r.raw.ends_with(",5,0.000000,0.000000,0.000000,1.000000e0"), "{}", r.raw);
        }
    }
    // Every job completes: the count is exact with no spread.
    let jobs = find(&rows, "jobs", "sjf");
    assert_eq!((jobs.mean, jobs.ci, jobs.diff), (200.0, (200.0, 200.0), 0.0));
    // sjf cuts the mean JCT a lot, in every replication.
    let (fifo, sjf) = (find(&rows, "avg_jct_s", "fifo"), find(&rows, "avg_jct_s", "sjf"));
    assert!(sjf.mean < 0.5 * fifo.mean, "sjf {} fifo {}", sjf.mean, fifo.mean);
    assert!(sjf.diff < 0.0 && sjf.diff_ci.1 < 0.0, "{}", sjf.raw);
    assert!(sjf.p < 0.05, "{}", sjf.raw);
    // The per-model device-hours add up to the device-time of the work: 1 device per job.
    let hours = find(&rows, "device_hours_per_job:V100-32GB", "fifo");
    assert!(hours.mean > 0.0 && hours.mean < 1.0, "{}", hours.raw);
}

#[test]
fn one_replication_gives_nan_intervals_and_the_table_says_why() {
    let tmp = TempDir::new().unwrap();
    let scenario = overloaded(tmp.path(), "");
    let out = tmp.path().join("out");
    let stdout = ok(&["compare", s(&scenario), "--out", s(&out), "--replications", "1"]);
    assert!(stdout.contains("note: one replication"), "{stdout}");
    for r in comparison(&out) {
        assert_eq!(r.n, 1);
        assert!(r.ci.0.is_nan() && r.ci.1.is_nan() && r.diff_ci.0.is_nan() && r.p.is_nan(), "{}", r.raw);
        assert!(!r.mean.is_nan() || r.metric.starts_with("ftf"), "{}", r.raw);
    }
}

#[test]
fn the_metrics_window_changes_the_count_of_jobs_but_not_sim() {
    let tmp = TempDir::new().unwrap();
    let scenario = overloaded(tmp.path(), "\n[metrics]\njob_ids = [21, 120]\n");
    let out = tmp.path().join("out");
    ok(&["compare", s(&scenario), "--out", s(&out), "--quiet", "--replications", "2"]);
    let rows = comparison(&out);
    assert_eq!(find(&rows, "jobs", "fifo").mean, 100.0);
    assert_eq!(find(&rows, "completed", "sjf").mean, 100.0);
    // `sim` ignores [metrics]: its summary counts every job.
    let sim_out = tmp.path().join("sim");
    ok(&["sim", s(&scenario), "--out", s(&sim_out), "--quiet", "--replications", "1"]);
    let summary = fs::read_to_string(sim_out.join("summary.csv")).unwrap();
    assert!(summary.lines().nth(1).unwrap().starts_with("fifo,0,7,200,200,"), "{summary}");

    // A submission window: the jobs submitted in the first 2000 s (about 50 of them).
    let scenario = overloaded(tmp.path(), "\n[metrics]\nsubmit_window_s = [0, 2000]\n");
    let out = tmp.path().join("out2");
    ok(&["compare", s(&scenario), "--out", s(&out), "--quiet", "--replications", "2"]);
    let jobs = find(&comparison(&out), "jobs", "fifo").mean;
    assert!(jobs > 20.0 && jobs < 100.0, "{jobs}");
}

#[test]
fn a_sweep_runs_the_cross_product_into_one_csv() {
    let tmp = TempDir::new().unwrap();
    let scenario = overloaded(tmp.path(), "\n[sweep]\nload_scale = [0.5, 1.0]\nnodes_scale = [1, 2]\n");
    let out = tmp.path().join("out");
    let stdout = ok(&["compare", s(&scenario), "--out", s(&out), "--replications", "2"]);
    let labels = ["load_scale=0.5,nodes_scale=1", "load_scale=0.5,nodes_scale=2", "load_scale=1,nodes_scale=1", "load_scale=1,nodes_scale=2"];
    for label in labels {
        assert!(stdout.contains(&format!("== {label} ==")), "{stdout}");
        assert!(out.join(label).join("summary.csv").is_file(), "{label}");
        assert!(out.join(label).join("sjf").join("r1").join("jobs.csv").is_file(), "{label}");
    }
    let rows = comparison(&out);
    let points: Vec<&str> = rows.iter().map(|r| r.point.as_str()).fold(Vec::new(), |mut v, p| {
        if !v.contains(&p) {
            v.push(p);
        }
        v
    });
    assert_eq!(points, labels);
    // Doubling the nodes halves the wait under the same load, near enough: less, anyway.
    let wait = |p: &str| rows.iter().find(|r| r.point == p && r.metric == "avg_wait_s" && r.policy == "fifo").unwrap().mean;
    assert!(wait("load_scale=1,nodes_scale=2") < wait("load_scale=1,nodes_scale=1"));
    assert!(wait("load_scale=0.5,nodes_scale=1") < wait("load_scale=1,nodes_scale=1"));
}

#[test]
fn a_sweep_over_one_policys_parameter_changes_that_policy_only() {
    let tmp = TempDir::new().unwrap();
    // sjf planned only at round ticks: every job waits for the next tick, so longer rounds
    // mean longer waits; fifo, not named, runs as it is at both points.
    let scenario = overloaded(tmp.path(), "\n[sweep.policy.sjf]\nround_s = [50, 2000]\n");
    let out = tmp.path().join("out");
    ok(&["compare", s(&scenario), "--out", s(&out), "--replications", "2", "--quiet"]);
    let rows = comparison(&out);
    let wait = |point: &str, policy: &str| rows.iter().find(|r| r.point == point && r.metric == "avg_wait_s" && r.policy == policy).unwrap().mean;
    let (short, long) = ("policy.sjf.round_s=50", "policy.sjf.round_s=2000");
    assert!(wait(long, "sjf") > wait(short, "sjf"), "sjf waits longer with longer rounds: {} vs {}", wait(long, "sjf"), wait(short, "sjf"));
    assert_eq!(wait(long, "fifo"), wait(short, "fifo"), "fifo is not swept");
    let decisions = fs::read_to_string(out.join(long).join("sjf").join("r0").join("decisions.jsonl")).unwrap();
    assert!(decisions.contains("next_round"), "round-based sjf waits for rounds");
}

#[test]
fn bad_sweep_and_metrics_values_name_their_key() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("out");
    for (extra, needles) in [
        ("\n[sweep]\nload_scale = [1.0, -2.0]\n", &["sweep.load_scale[1]", "expected a positive number, found -2"][..]),
        ("\n[sweep]\nnodes_scale = []\n", &["sweep.nodes_scale", "non-empty"][..]),
        ("\n[sweep]\ngrace_s = [nan]\n", &["sweep.grace_s[0]", "non-negative"][..]),
        ("\n[sweep]\nload_scle = [1.0]\n", &["sweep.load_scle", "unknown field"][..]),
        ("\n[metrics]\njob_ids = [10, 5]\n", &["metrics.job_ids", "first <= last"][..]),
        ("\n[metrics]\nsubmit_window_s = [100, 100]\n", &["metrics.submit_window_s"][..]),
    ] {
        let scenario = overloaded(tmp.path(), extra);
        let stderr = fails(&["compare", s(&scenario), "--out", s(&out), "--quiet"]);
        for needle in needles {
            assert!(stderr.contains(needle), "stderr lacks `{needle}`: {stderr}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// explain

/// The run of tests/cli.rs's `priority_preempts_the_latest_started_low_tier_job`: one node,
/// two GPUs, grace 30 s; job 3 (tier 1) preempts job 2 at t=100, evicted at t=130; job 2
/// relaunches at t=330 and ends at t=1210.
fn preemption_run(dir: &Path) -> PathBuf {
    write(dir, "trace.csv", &format!("{TRACE_HEADER}\n1,0,low,0,1,,1000,x\n2,10,low,0,1,,1000,x\n3,100,high,1,1,,200,x\n"));
    let scenario = write(
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
    );
    let out = dir.join("out");
    ok(&["sim", s(&scenario), "--out", s(&out), "--quiet"]);
    out
}

/// Asserts `needles` occur in `text` in this order; returns their positions.
fn in_order(text: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match text[from..].find(needle) {
            Some(i) => from += i + needle.len(),
            None => panic!("`{needle}` not found (in order) in:\n{text}"),
        }
    }
}

#[test]
fn explain_tells_a_preempted_jobs_story_in_order() {
    let tmp = TempDir::new().unwrap();
    let out = preemption_run(tmp.path());
    let story = ok(&["explain", s(&out), "2"]);
    in_order(
        &story,
        &[
            "job 2 under policy priority, replication 0",
            "t=  10 s  submitted by low asking for 1 device",
            "t=  10 s  launched on node v100-32gb-0, device 1 V100-32GB",
            "queue order priority",
            "t= 100 s  preempted for job 3 of a higher tier (1 over this job's tier 0), with a grace period of 30 s",
            "t= 130 s  evicted and requeued, having run 120 s (2.00 min)",
            "t= 130 s  waits: not enough free devices of its models: it needs 1, 0 free in the whole cluster; for 200 s",
            "t= 330 s  launched on node v100-32gb-0",
            "t=1210 s  ended: completed; JCT 1200 s (20.00 min); waited 200 s (3.33 min); ran 1000 s (16.67 min); lost work 0 s; preempted 1 time",
        ],
    );
    // The high job waited for the eviction of its victim.
    let story = ok(&["explain", s(&out), "3", "--policy", "priority", "--replication", "0"]);
    in_order(&story, &["t=100 s  submitted by high", "waits: awaiting the eviction of job 2", "for 30 s", "t=130 s  launched", "t=330 s  ended: completed"]);
}

#[test]
fn explain_reports_unknown_jobs_and_missing_files_clearly() {
    let tmp = TempDir::new().unwrap();
    let out = preemption_run(tmp.path());
    let stderr = fails(&["explain", s(&out), "99"]);
    assert!(stderr.contains("job 99 is not in") && stderr.contains("from 1 to 3"), "{stderr}");
    let stderr = fails(&["explain", s(&out), "1", "--policy", "fifo"]);
    assert!(stderr.contains("no policy `fifo`") && stderr.contains("priority"), "{stderr}");
    let stderr = fails(&["explain", s(&out), "1", "--replication", "3"]);
    assert!(stderr.contains("no replication r3"), "{stderr}");
    fs::remove_file(out.join("devices.csv")).unwrap();
    let stderr = fails(&["explain", s(&out), "1"]);
    assert!(stderr.contains("devices.csv"), "{stderr}");
    let stderr = fails(&["explain", s(&tmp.path().join("nowhere")), "1"]);
    assert!(stderr.contains("summary.csv"), "{stderr}");
}
