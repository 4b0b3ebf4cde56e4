//! The world models (`[models]` in a scenario) against theory and against hand calculations.
//!
//! Three kinds of check:
//!
//! - **Theory** (every model off, or one model whose effect has a closed form): the simulated
//!   mean lies in a 99.9% Student-t interval around the formula, over independent replications
//!   or independent jobs, as `tests/validation.rs` does; each test also asserts the interval
//!   is narrow enough that the formula could have been missed.
//! - **Hand cases**: tiny native traces whose every event time can be worked out on paper;
//!   these are asserted to the microsecond (allowing `SLACK_US` for the float division of work
//!   by rate that sets a finish time).
//! - **Determinism** with every model on.
//!
//! Hand-case traces are written to a temporary directory next to the scenario text, so the
//! scenario names them by a relative path.

use statrs::distribution::{ContinuousCDF, StudentsT};
use tessera_core::{ClusterState, JobId, JobRecord, Policy, JobOutcome, Time};
use tessera_sim::engine::{run, NullSink, RunLimits, RunOutput, World};
use tessera_sim::models::WorldModels;
use tessera_sim::scenario::Scenario;
use tessera_sim::workload::{build_cluster, build_workload};

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A scenario and the directory holding its trace (kept alive as long as the scenario).
struct Case {
    scenario: Scenario,
    _dir: tempfile::TempDir,
}

/// Parses `toml` as if it were `<tmp>/scenario.toml`, with `trace` (if any) at `<tmp>/trace.csv`.
fn case(toml: &str, trace: Option<&str>) -> Case {
    let dir = tempfile::tempdir().unwrap();
    if let Some(csv) = trace {
        std::fs::write(dir.path().join("trace.csv"), csv).unwrap();
    }
    let scenario = Scenario::from_toml_str(toml, &dir.path().join("scenario.toml")).unwrap_or_else(|e| panic!("{e}"));
    Case { scenario, _dir: dir }
}

/// One run of the scenario's `policy`-th policy with `seed` (the workload's seed and the world
/// models' seed alike, as the runner does; trace workloads do not depend on it).
fn simulate(s: &Scenario, seed: u64, policy: usize) -> RunOutput {
    let (catalogue, nodes) = build_cluster(s).unwrap();
    let workload = build_workload(s, &catalogue, seed).unwrap();
    let speed = tessera_sim::speed::build(s, &workload, &catalogue).unwrap();
    let models = WorldModels::build(s, &catalogue, &nodes, &workload.classes).unwrap_or_else(|e| panic!("{e}"));
    let policy = Policy::from_spec(&s.policies[policy]).unwrap();
    let cluster = ClusterState::new(catalogue.clone(), nodes.iter().cloned());
    let world = World { workload: &workload, speed: &speed, models: &models, seed, limits: RunLimits { horizon: s.horizon(), timeseries: None } };
    run(&world, cluster, policy, &mut NullSink).unwrap()
}

/// A native trace: `(job_id, submit_s, priority, devices, duration_s, class)` per row.
fn trace(rows: &[(u64, f64, i32, f64, f64, &str)]) -> String {
    let mut csv = String::from("job_id,submit_s,tenant,priority,devices,models,duration_s,job_class\n");
    for (id, submit, prio, devices, work, class) in rows {
        csv.push_str(&format!("{id},{submit:.6},t,{prio},{devices},,{work:.6},{class}\n"));
    }
    csv
}

fn rec(out: &RunOutput, id: u64) -> &JobRecord {
    out.records.iter().find(|r| r.id == JobId(id)).unwrap_or_else(|| panic!("no record for job {id}"))
}

/// Finish times come from `ceil(remaining work / rate)` in microseconds, so a rate such as 0.8
/// may put an end a microsecond or two past the exact figure; a few microseconds per rate
/// change is all the slack a hand case gets.
const SLACK_US: u64 = 5;

#[track_caller]
fn assert_at(what: &str, got: Option<Time>, secs: f64) {
    let want = Time::from_secs_f64(secs);
    let got = got.unwrap_or_else(|| panic!("{what}: expected {secs} s, got nothing"));
    let diff = got.as_micros().abs_diff(want.as_micros());
    assert!(diff <= SLACK_US, "{what}: expected {secs} s, got {} s", got.as_secs_f64());
}

#[track_caller]
fn assert_span(what: &str, got: Time, secs: f64) {
    assert_at(what, Some(got), secs)
}

/// A small deterministic generator for the traces the theory tests write (the test must not
/// depend on the simulator's own sampling to check it).
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }
}

/// Mean and the half-width of its 99.9% Student-t interval.
fn mean_and_half_width(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let t = StudentsT::new(0.0, 1.0, n - 1.0).unwrap().inverse_cdf(0.9995);
    (mean, t * sd / n.sqrt())
}

/// Asserts `theory` lies in the 99.9% interval of the sample mean, and that the interval is
/// narrower than `resolution` (so the check could have failed).
#[track_caller]
fn assert_matches(name: &str, xs: &[f64], theory: f64, resolution: f64) {
    let (mean, half) = mean_and_half_width(xs);
    println!("{name}: simulated {mean:.3} ± {half:.3} (99.9%, n = {}), theory {theory:.3}", xs.len());
    assert!((mean - theory).abs() <= half, "{name}: theory {theory:.3} outside {mean:.3} ± {half:.3}");
    assert!(half < resolution, "{name}: interval ±{half:.3} too wide to judge (needs < {resolution:.3})");
}

// ---------------------------------------------------------------------------------------------
// 1. Queueing theory, models off
// ---------------------------------------------------------------------------------------------

/// Mean of `metric` over each replication's jobs, after dropping the first 20% (the queue
/// starts empty).
fn replication_means(cases: &[Case], metric: fn(&JobRecord) -> f64) -> Vec<f64> {
    cases
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let out = simulate(&c.scenario, 1000 + k as u64, 0);
            let skip = out.records.len() / 5;
            let xs: Vec<f64> = out.records[skip..].iter().map(metric).collect();
            assert!(out.records.iter().all(|r| r.outcome == JobOutcome::Completed));
            xs.iter().sum::<f64>() / xs.len() as f64
        })
        .collect()
}

#[test]
fn mg1_uniform_service_matches_pollaczek_khinchine() {
    // One device, Poisson arrivals every 100 s, service uniform on [20, 120] s:
    //   E[S] = 70 s, rho = 0.7, E[S^2] = (120^3 - 20^3) / (3 (120 - 20)) = 5733.33 s^2,
    //   W_q = lambda E[S^2] / (2 (1 - rho)) = 0.01 * 5733.33 / 0.6 = 95.56 s.
    // (An exponential service of the same mean would give 163.3 s: the formula's E[S^2] is
    // what is being checked.)
    let toml = r#"
name = "mg1"
[[cluster.nodes]]
devices = { model = "V100-32GB", count = 1 }
cpu_cores = 8
mem_gib = 32
[workload]
synthetic = { jobs = 40000, interarrival = { dist = "exponential", mean_s = 100 }, duration = { dist = "uniform", min_s = 20, max_s = 120 } }
[[policies]]
name = "fifo"
"#;
    let cases: Vec<Case> = (0..12).map(|_| case(toml, None)).collect();
    let means = replication_means(&cases, |r| r.wait().unwrap().as_secs_f64());
    let lambda = 0.01;
    let es2 = (120f64.powi(3) - 20f64.powi(3)) / (3.0 * 100.0);
    let theory = lambda * es2 / (2.0 * (1.0 - 0.7));
    assert!((theory - 95.555).abs() < 0.01);
    assert_matches("M/G/1 (uniform service) W_q", &means, theory, 0.1 * theory);
}

#[test]
fn mg1_lognormal_service_matches_pollaczek_khinchine() {
    // Service lognormal with mean 70 s and sigma 0.5: E[S^2] = 70^2 e^{0.25} = 6291.8 s^2,
    // W_q = 0.01 * 6291.8 / 0.6 = 104.86 s.
    let toml = r#"
name = "mg1-lognormal"
[[cluster.nodes]]
devices = { model = "V100-32GB", count = 1 }
cpu_cores = 8
mem_gib = 32
[workload]
synthetic = { jobs = 40000, interarrival = { dist = "exponential", mean_s = 100 }, duration = { dist = "lognormal", mean_s = 70, sigma = 0.5 } }
[[policies]]
name = "fifo"
"#;
    let cases: Vec<Case> = (0..12).map(|_| case(toml, None)).collect();
    let means = replication_means(&cases, |r| r.wait().unwrap().as_secs_f64());
    let theory = 0.01 * 70f64.powi(2) * 0.25f64.exp() / (2.0 * 0.3);
    assert_matches("M/G/1 (lognormal service) W_q", &means, theory, 0.1 * theory);
}

#[test]
fn mm1_processor_sharing_matches_theory() {
    // One device shared equally (`device_sharing = "equal"`) by jobs that each ask for 0.001 of
    // it, so up to 1000 run at once (P(N > 1000) = 0.7^1001, nil): an M/M/1-PS queue.
    // lambda = 1/100, mu = 1/70: E[T] = 1 / (mu - lambda) = 233.33 s.
    // (FIFO would give E[T] = W_q + 70 = 233.33 as well, so the test also checks that jobs do
    // run at once: mean wait must be ~0, and a job alone on the device runs at full speed.)
    let toml = r#"
name = "mm1-ps"
[[cluster.nodes]]
devices = { model = "V100-32GB", count = 1 }
cpu_cores = 8
mem_gib = 32
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.contention]
device_sharing = "equal"
"#;
    let cases: Vec<Case> = (0..12u64)
        .map(|k| {
            let mut g = SplitMix(0xC0FFEE + k);
            let mut t = 0.0;
            let rows: Vec<_> = (1..=20_000u64)
                .map(|id| {
                    t += g.exponential(100.0);
                    (id, t, 0, 0.001, g.exponential(70.0).max(1e-3), "ps")
                })
                .collect();
            case(toml, Some(&trace(&rows)))
        })
        .collect();
    let jct = replication_means(&cases, |r| r.jct().unwrap().as_secs_f64());
    let wait = replication_means(&cases, |r| r.wait().unwrap().as_secs_f64());
    let theory = 1.0 / (1.0 / 70.0 - 1.0 / 100.0);
    assert!(wait.iter().all(|w| *w < 1.0), "jobs waited under processor sharing: {wait:?}");
    assert_matches("M/M/1-PS E[T]", &jct, theory, 0.1 * theory);
}

// ---------------------------------------------------------------------------------------------
// 2. Failures and checkpoints against the closed form
// ---------------------------------------------------------------------------------------------

#[test]
fn failures_with_checkpoints_match_the_closed_form() {
    // 1000 single-device jobs at t = 0 on 1100 one-device nodes, device failures exponential
    // with MTBF 5 h (lambda = 1/18000 s), instant repair, so a failed job restarts at once.
    // Work W = n I with n = 10, I = 3600 s, checkpoint cost C = 60 s, restore 0.
    // Each of the first n-1 segments must see a failure-free stretch of I + C (a failure during
    // the write loses the interval), the last one of I; the time to get a failure-free stretch
    // of L is (e^{lambda L} - 1) / lambda, so
    //   E[T] = 9 (e^{3660/18000} - 1) 18000 + (e^{0.2} - 1) 18000
    //        = 9 * 4058.7 + 3985.3 = 40513 s   (failure-free: 36540 s).
    // Failures per job: 9 (e^{lambda (I+C)} - 1) + (e^{lambda I} - 1) = 2.251.
    // Per-job sd of T is about 3300 s, so the 99.9% interval over 1000 jobs is about ±350 s,
    // a tenth of the 4000 s that failures add.
    let jobs = 1000u64;
    let rows: Vec<_> = (1..=jobs).map(|id| (id, 0.0, 0, 1.0, 36000.0, "train")).collect();
    let toml = r#"
name = "failures"
[[cluster.nodes]]
count = 1100
devices = { model = "A100-80GB", count = 1 }
cpu_cores = 8
mem_gib = 64
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.failures]
device = { mtbf_h = 5 }
[models.checkpoint]
interval_s = 3600
cost_s = 60
restore_s = 0
"#;
    let c = case(toml, Some(&trace(&rows)));
    let out = simulate(&c.scenario, 42, 0);
    let lambda = 1.0 / 18000.0;
    let (i, cost, n) = (3600.0, 60.0, 10.0);
    let seg = |l: f64| ((lambda * l).exp() - 1.0) / lambda;
    let theory = (n - 1.0) * seg(i + cost) + seg(i);
    let failure_free = n * i + (n - 1.0) * cost;
    assert!((theory - 40513.0).abs() < 5.0, "{theory}");
    assert!(out.records.iter().all(|r| r.outcome == JobOutcome::Completed), "no max_attempts: every job completes");
    let jct: Vec<f64> = out.records.iter().map(|r| r.jct().unwrap().as_secs_f64()).collect();
    assert_matches("failures + checkpoints E[JCT]", &jct, theory, 0.25 * (theory - failure_free));

    let restarts: Vec<f64> = out.records.iter().map(|r| r.ledger.restarts as f64).collect();
    let expected_restarts = (n - 1.0) * ((lambda * (i + cost)).exp() - 1.0) + ((lambda * i).exp() - 1.0);
    assert_matches("failures + checkpoints E[restarts]", &restarts, expected_restarts, 0.5 * expected_restarts);

    let lost: f64 = out.records.iter().map(|r| r.lost_work.as_secs_f64()).sum();
    assert!(lost > 0.0 && restarts.iter().sum::<f64>() > 0.0);
    for r in &out.records {
        // A restart loses at most one interval (never more than what was done since the last
        // checkpoint), and a job that never failed lost nothing.
        assert!(r.lost_work.as_secs_f64() <= r.ledger.restarts as f64 * i + 1e-3, "{r:?}");
        assert_eq!(r.ledger.restarts == 0, r.lost_work == Time::ZERO, "{r:?}");
        // Instant repair and spare nodes: a failed job never waits.
        assert!(r.wait().unwrap() < Time::from_secs(1), "{r:?}");
        // Nine checkpoints at least (written again after a failure that lost one).
        assert!(r.checkpoint_overhead >= Time::from_secs(540), "{r:?}");
        // Time running = work kept + work lost + checkpoint writes (restore and start-up 0).
        // A write cut short by a failure is still time spent writing a checkpoint.
        let accounted = 36000.0 + r.lost_work.as_secs_f64() + r.checkpoint_overhead.as_secs_f64();
        assert!(
            (r.ledger.run.as_secs_f64() - accounted).abs() < 1e-3 * (1 + r.ledger.restarts) as f64,
            "run {} s but work 36000 + lost {} + checkpoint_overhead {} = {accounted} s: {r:?}",
            r.ledger.run.as_secs_f64(),
            r.lost_work.as_secs_f64(),
            r.checkpoint_overhead.as_secs_f64()
        );
    }
}

#[test]
fn max_attempts_fails_jobs_at_the_documented_rate() {
    // Work W = 3600 ln 2 s, device MTBF 1 h, no checkpoints: an attempt fails with
    // probability q = 1 - e^{-W/3600} = 1/2 and loses all its progress. With max_attempts = 1 a
    // job survives one failure; the second ends it `failed`: P(failed) = q^2 = 0.25.
    // (Off by one either way would give 0.5 or 0.125; the 99.9% interval over 1000 jobs is
    // about ±0.045.)
    let work = 3600.0 * std::f64::consts::LN_2;
    let rows: Vec<_> = (1..=1000u64).map(|id| (id, 0.0, 0, 1.0, work, "x")).collect();
    let toml = r#"
name = "max-attempts"
[[cluster.nodes]]
count = 1100
devices = { model = "A100-80GB", count = 1 }
cpu_cores = 8
mem_gib = 64
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.failures]
device = { mtbf_h = 1 }
max_attempts = 1
"#;
    let c = case(toml, Some(&trace(&rows)));
    let out = simulate(&c.scenario, 7, 0);
    let failed: Vec<f64> = out.records.iter().map(|r| (r.outcome == JobOutcome::Failed) as u8 as f64).collect();
    assert_matches("P(failed) with max_attempts = 1", &failed, 0.25, 0.1);
    for r in &out.records {
        match r.outcome {
            JobOutcome::Completed => {
                assert!(r.ledger.restarts <= 1, "{r:?}");
                // No checkpoint model: each failure lost everything done in that attempt.
                let kept = r.ledger.run.as_secs_f64() - r.lost_work.as_secs_f64();
                assert!((kept - work).abs() < 1e-3, "completed: run - lost = {kept}, expected {work}: {r:?}");
            }
            JobOutcome::Failed => {
                assert!(r.ledger.restarts >= 1, "{r:?}");
                assert!(r.ledger.end.is_some(), "{r:?}");
                assert!((r.ledger.run.as_secs_f64() - r.lost_work.as_secs_f64()).abs() < 1e-3, "a failed job lost all it did: {r:?}");
            }
            other => panic!("unexpected outcome {other:?}: {r:?}"),
        }
    }
}

#[test]
fn node_repair_time_is_waited_out() {
    // One job alone on one node; node failures (MTBF 1 h, exponential) each take the node down
    // for exactly 1000 s. The job has nowhere else to go, so every restart waits the repair out
    // and nothing else: wait = restarts x 1000 s, over many seeds. Checkpoints every 600 s at no
    // cost keep the job making progress.
    let toml = r#"
name = "node-repair"
[[cluster.nodes]]
devices = { model = "A100-80GB", count = 2 }
cpu_cores = 8
mem_gib = 64
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.failures]
node = { mtbf_h = 1, repair = { dist = "constant", value = 1000 } }
[models.checkpoint]
interval_s = 600
"#;
    let c = case(toml, Some(&trace(&[(1, 0.0, 0, 2.0, 7200.0, "x")])));
    let mut total_restarts = 0;
    for seed in 0..40 {
        let out = simulate(&c.scenario, seed, 0);
        let r = rec(&out, 1);
        assert_eq!(r.outcome, JobOutcome::Completed, "{r:?}");
        assert_span(&format!("seed {seed}: wait with {} restarts", r.ledger.restarts), r.wait().unwrap(), 1000.0 * r.ledger.restarts as f64);
        assert!(r.lost_work.as_secs_f64() <= 600.0 * r.ledger.restarts as f64 + 1e-3, "{r:?}");
        total_restarts += r.ledger.restarts;
    }
    assert!(total_restarts > 40, "node failures at MTBF 1 h over 2 h jobs should hit often: {total_restarts}");
}

#[test]
fn by_model_mtbf_overrides_the_default() {
    // Device MTBF 10^6 h by default, 2 h on K80. 300 single-device jobs of 2 h (no checkpoints)
    // are pinned half to K80, half to A100 nodes. On K80 an attempt survives with probability
    // e^{-1}, so failures per job are geometric with mean e - 1 = 1.718 (sd 2.1; the 99.9%
    // interval over 150 jobs is about ±0.6). On A100 P(any failure) ~ 150 x 2 x 3 / 10^6: none.
    let toml = r#"
name = "by-model"
[[cluster.nodes]]
count = 160
devices = { model = "K80", count = 1 }
cpu_cores = 8
mem_gib = 64
[[cluster.nodes]]
count = 160
devices = { model = "A100-80GB", count = 1 }
cpu_cores = 8
mem_gib = 64
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.failures]
device = { mtbf_h = 1000000 }
[[models.failures.by_model]]
model = "K80"
mtbf_h = 2
"#;
    let mut csv = String::from("job_id,submit_s,tenant,priority,devices,models,duration_s,job_class\n");
    for id in 1..=300u64 {
        let model = if id % 2 == 0 { "K80" } else { "A100-80GB" };
        csv.push_str(&format!("{id},0,t,0,1,{model},7200,x\n"));
    }
    let c = case(toml, Some(&csv));
    let out = simulate(&c.scenario, 11, 0);
    let k80: Vec<f64> = out.records.iter().filter(|r| r.id.0 % 2 == 0).map(|r| r.ledger.restarts as f64).collect();
    assert!(out.records.iter().filter(|r| r.id.0 % 2 == 1).all(|r| r.ledger.restarts == 0), "A100 jobs failed");
    assert_matches("K80 failures per 2 h job at MTBF 2 h", &k80, std::f64::consts::E - 1.0, 0.75);
}

// ---------------------------------------------------------------------------------------------
// 3. Contention, exactly
// ---------------------------------------------------------------------------------------------

const ONE_NODE_4: &str = r#"
[[cluster.nodes]]
name = "n"
devices = { model = "A100-80GB", count = 4 }
cpu_cores = 32
mem_gib = 256
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
"#;

#[test]
fn node_contention_two_jobs_exactly() {
    // A (work 100 s) and B (work 300 s) on one node from t = 0, node factor 0.5 per other job:
    // both run at 0.5 until A is done at 200 s; B has done 100 s and runs alone at 1.0 for the
    // remaining 200 s: B ends at 400 s. Slowdowns: A 200/100 = 2, B 400/300 = 4/3.
    let toml = format!("name = \"contention\"\n{ONE_NODE_4}\n[models.contention]\nnode = {{ dist = \"constant\", value = 0.5 }}\n");
    let c = case(&toml, Some(&trace(&[(1, 0.0, 0, 1.0, 100.0, "a"), (2, 0.0, 0, 1.0, 300.0, "b")])));
    let out = simulate(&c.scenario, 1, 0);
    let (a, b) = (rec(&out, 1), rec(&out, 2));
    assert_at("A end", a.ledger.end, 200.0);
    assert_at("B end", b.ledger.end, 400.0);
    assert_span("A run", a.ledger.run, 200.0);
    assert_span("B run", b.ledger.run, 400.0);
    assert_span("A ideal_run", a.ideal_run, 100.0);
    assert_span("B ideal_run", b.ideal_run, 300.0);
    assert!((a.slowdown() - 2.0).abs() < 1e-6, "{}", a.slowdown());
    assert!((b.slowdown() - 4.0 / 3.0).abs() < 1e-6, "{}", b.slowdown());
}

#[test]
fn node_contention_compounds_per_other_job() {
    // Three jobs on one node, factor 0.5 per other job: each runs at 0.25 while all three run.
    // A (25 s) ends at 100 s; B and C have done 25 s each. Then B and C run at 0.5: B's last
    // 25 s take 50 s, B ends at 150 s; C has done 50 s and runs its last 50 s alone: 200 s.
    let toml = format!("name = \"contention3\"\n{ONE_NODE_4}\n[models.contention]\nnode = {{ dist = \"constant\", value = 0.5 }}\n");
    let c = case(&toml, Some(&trace(&[(1, 0.0, 0, 1.0, 25.0, "a"), (2, 0.0, 0, 1.0, 50.0, "b"), (3, 0.0, 0, 1.0, 100.0, "c")])));
    let out = simulate(&c.scenario, 1, 0);
    assert_at("A end", rec(&out, 1).ledger.end, 100.0);
    assert_at("B end", rec(&out, 2).ledger.end, 150.0);
    assert_at("C end", rec(&out, 3).ledger.end, 200.0);
}

#[test]
fn node_contention_stops_at_the_node() {
    // Same jobs as the two-job case, but on two nodes (4 devices each, a 4-device job fills one):
    // nobody shares a node, so both run at full speed: 100 s and 300 s.
    let toml = r#"
name = "contention-apart"
[[cluster.nodes]]
count = 2
devices = { model = "A100-80GB", count = 4 }
cpu_cores = 32
mem_gib = 256
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.contention]
node = { dist = "constant", value = 0.5 }
"#;
    let c = case(toml, Some(&trace(&[(1, 0.0, 0, 4.0, 100.0, "a"), (2, 0.0, 0, 4.0, 300.0, "b")])));
    let out = simulate(&c.scenario, 1, 0);
    assert_at("A end", rec(&out, 1).ledger.end, 100.0);
    assert_at("B end", rec(&out, 2).ledger.end, 300.0);
}

#[test]
fn pcie_switch_contention_only_under_one_switch() {
    // One node of 8 devices; A (4 devices, 100 s) and B (4 devices, 300 s) fill it. With
    // `pcie_switch` factor 0.5 and 8 devices per switch they share a switch: A ends 200, B 400
    // (as in the node case). With 4 devices per switch, first-fit gives them a switch each:
    // no slowdown, 100 and 300.
    let base = |per_switch: u32| {
        format!(
            r#"
name = "pcie"
[[cluster.nodes]]
devices = {{ model = "A100-80GB", count = 8 }}
cpu_cores = 64
mem_gib = 512
[workload]
trace = {{ format = "native", path = "trace.csv" }}
[[policies]]
name = "fifo"
[models.contention]
pcie_switch = {{ dist = "constant", value = 0.5 }}
devices_per_pcie_switch = {per_switch}
"#
        )
    };
    let rows = trace(&[(1, 0.0, 0, 4.0, 100.0, "a"), (2, 0.0, 0, 4.0, 300.0, "b")]);
    let c = case(&base(8), Some(&rows));
    let out = simulate(&c.scenario, 1, 0);
    assert_at("A end (one switch)", rec(&out, 1).ledger.end, 200.0);
    assert_at("B end (one switch)", rec(&out, 2).ledger.end, 400.0);
    let c = case(&base(4), Some(&rows));
    let out = simulate(&c.scenario, 1, 0);
    assert_at("A end (own switch)", rec(&out, 1).ledger.end, 100.0);
    assert_at("B end (own switch)", rec(&out, 2).ledger.end, 300.0);
}

#[test]
fn device_contention_and_equal_sharing() {
    // Two half-device jobs on one device, A work 80 s, B work 200 s.
    // `device` factor 0.8 alone: both at 0.8 until A ends at 100 s (B has done 80 s), then B
    // alone at 1.0 for 120 s: ends at 220 s.
    // With `device_sharing = "equal"` as well: both at 0.8 x 1/2 = 0.4, A ends at 200 s (B has
    // done 80 s), B alone at 1.0: ends at 320 s.
    let base = r#"
name = "device-contention"
[[cluster.nodes]]
devices = { model = "A100-80GB", count = 1 }
cpu_cores = 32
mem_gib = 256
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.contention]
device = { dist = "constant", value = 0.8 }
"#;
    let rows = trace(&[(1, 0.0, 0, 0.5, 80.0, "a"), (2, 0.0, 0, 0.5, 200.0, "b")]);
    let c = case(base, Some(&rows));
    let out = simulate(&c.scenario, 1, 0);
    assert_at("A end (device factor)", rec(&out, 1).ledger.end, 100.0);
    assert_at("B end (device factor)", rec(&out, 2).ledger.end, 220.0);

    let c = case(&format!("{base}device_sharing = \"equal\"\n"), Some(&rows));
    let out = simulate(&c.scenario, 1, 0);
    assert_at("A end (device factor, equal sharing)", rec(&out, 1).ledger.end, 200.0);
    assert_at("B end (device factor, equal sharing)", rec(&out, 2).ledger.end, 320.0);
}

// ---------------------------------------------------------------------------------------------
// 4. Each model, on a hand case
// ---------------------------------------------------------------------------------------------

#[test]
fn communication_penalty_per_extra_node() {
    // Three nodes of 8 devices. Job 1 (16 devices, work 800 s) spans two nodes: 0.8^(2-1) = 0.8,
    // so it runs 800 / 0.8 = 1000 s. Job 2 (8 devices, work 800 s) fits on the third node and
    // runs 800 s. Slowdown of job 1: 1000 / 800 = 1.25.
    let toml = r#"
name = "communication"
[[cluster.nodes]]
count = 3
devices = { model = "A100-80GB", count = 8 }
cpu_cores = 64
mem_gib = 512
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.communication]
per_extra_node = 0.8
"#;
    let c = case(toml, Some(&trace(&[(1, 0.0, 0, 16.0, 800.0, "big"), (2, 0.0, 0, 8.0, 800.0, "small")])));
    let out = simulate(&c.scenario, 1, 0);
    let (big, small) = (rec(&out, 1), rec(&out, 2));
    assert_at("16-device gang end", big.ledger.end, 1000.0);
    assert_at("8-device job end", small.ledger.end, 800.0);
    assert_span("16-device gang ideal_run", big.ideal_run, 800.0);
    assert!((big.slowdown() - 1.25).abs() < 1e-6, "{}", big.slowdown());
    assert!((small.slowdown() - 1.0).abs() < 1e-6, "{}", small.slowdown());
}

#[test]
fn startup_cold_then_warm_on_the_same_node() {
    // One device; cold start 120 s, warm 15 s within 3600 s of the node running the class.
    //   job 1 (x, 100 s, t=0):    0 + 120 cold + 100          -> ends 220
    //   job 2 (x, 100 s, t=0):  220 + 15 warm + 100            -> ends 335
    //   job 3 (y, 100 s, t=0):  335 + 120 cold (new class)     -> ends 555
    //   job 4 (x, 100 s, t=5000): last x run ended at 335, 4665 s ago > 3600: cold -> 5220
    // Start-up counts as running time: run = 220, 115, 220, 220.
    let toml = r#"
name = "startup"
[[cluster.nodes]]
devices = { model = "A100-80GB", count = 1 }
cpu_cores = 8
mem_gib = 64
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.startup]
cold = { dist = "constant", value = 120 }
warm = { dist = "constant", value = 15 }
warm_window_s = 3600
"#;
    let rows = trace(&[(1, 0.0, 0, 1.0, 100.0, "x"), (2, 0.0, 0, 1.0, 100.0, "x"), (3, 0.0, 0, 1.0, 100.0, "y"), (4, 5000.0, 0, 1.0, 100.0, "x")]);
    let c = case(toml, Some(&rows));
    let out = simulate(&c.scenario, 1, 0);
    for (id, start, end, run) in [(1, 0.0, 220.0, 220.0), (2, 220.0, 335.0, 115.0), (3, 335.0, 555.0, 220.0), (4, 5000.0, 5220.0, 220.0)] {
        let r = rec(&out, id);
        assert_at(&format!("job {id} first_start"), r.ledger.first_start, start);
        assert_at(&format!("job {id} end"), r.ledger.end, end);
        assert_span(&format!("job {id} run"), r.ledger.run, run);
        assert_span(&format!("job {id} ideal_run"), r.ideal_run, 100.0);
    }
}

#[test]
fn checkpoint_overhead_is_interval_writes_but_not_after_the_last_piece() {
    // Work 10 h, a checkpoint every hour of work costing 60 s, none after the last hour:
    // run = 36000 + 9 * 60 = 36540 s, checkpoint_overhead = 540 s, ideal_run = 36000 s.
    // Class "free" overrides cost_s = 0: run = 36000 s, no overhead.
    let toml = r#"
name = "checkpoint"
[[cluster.nodes]]
count = 2
devices = { model = "A100-80GB", count = 1 }
cpu_cores = 8
mem_gib = 64
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[models.checkpoint]
interval_s = 3600
cost_s = 60
[[models.checkpoint.by_class]]
class = "free"
cost_s = 0
"#;
    let c = case(toml, Some(&trace(&[(1, 0.0, 0, 1.0, 36000.0, "paid"), (2, 0.0, 0, 1.0, 36000.0, "free")])));
    let out = simulate(&c.scenario, 1, 0);
    let (paid, free) = (rec(&out, 1), rec(&out, 2));
    assert_at("paid end", paid.ledger.end, 36540.0);
    assert_span("paid run", paid.ledger.run, 36540.0);
    assert_span("paid checkpoint_overhead", paid.checkpoint_overhead, 540.0);
    assert_span("paid ideal_run", paid.ideal_run, 36000.0);
    assert_eq!(paid.lost_work, Time::ZERO);
    assert_at("free end", free.ledger.end, 36000.0);
    assert_span("free checkpoint_overhead", free.checkpoint_overhead, 0.0);
}

/// A blocker, then 50 jobs of distinct true work arriving together behind it on one device.
fn sjf_case(models: &str) -> Case {
    let mut rows = vec![(1000u64, 0.0, 0, 1.0, 5000.0, "w")];
    // Works 10, 20, ..., 500 s in a scrambled submission order (37 is coprime with 50).
    rows.extend((0..50u64).map(|k| (k + 1, 1.0, 0, 1.0, 10.0 * ((k * 37) % 50 + 1) as f64, "w")));
    let toml = format!(
        r#"
name = "estimate-error"
[[cluster.nodes]]
devices = {{ model = "A100-80GB", count = 1 }}
cpu_cores = 8
mem_gib = 64
[workload]
trace = {{ format = "native", path = "trace.csv" }}
[[policies]]
name = "sjf"
[[policies]]
name = "fifo"
{models}
"#
    );
    case(&toml, Some(&trace(&rows)))
}

/// True work of the 50 queued jobs in the order they started.
fn start_order(out: &RunOutput) -> Vec<u64> {
    let mut rs: Vec<&JobRecord> = out.records.iter().filter(|r| r.id != JobId(1000)).collect();
    rs.sort_by_key(|r| r.ledger.first_start.unwrap());
    rs.iter().map(|r| (r.ledger.run.as_secs_f64().round()) as u64).collect()
}

fn mean_jct(out: &RunOutput) -> f64 {
    out.records.iter().map(|r| r.jct().unwrap().as_secs_f64()).sum::<f64>() / out.records.len() as f64
}

#[test]
fn estimate_error_reorders_sjf_but_not_fifo() {
    // Exact estimates: SJF runs the 50 queued jobs shortest first (10, 20, ..., 500 s), which
    // minimises their mean completion time (Smith's rule). With stated = work x uniform[0.1, 3]
    // the order is scrambled (all 50 in order by chance: far below 1e-20), so the mean JCT is
    // strictly larger. A constant factor rescales every estimate alike: order unchanged.
    // FIFO never reads estimates: its records are identical with or without the error.
    let exact = sjf_case("");
    let noisy = sjf_case("[models.estimate_error]\nfactor = { dist = \"uniform\", min_s = 0.1, max_s = 3.0 }\n");
    let scaled = sjf_case("[models.estimate_error]\nfactor = { dist = \"constant\", value = 3.0 }\n");
    let sorted: Vec<u64> = (1..=50).map(|k| 10 * k).collect();

    let sjf_exact = simulate(&exact.scenario, 5, 0);
    assert_eq!(start_order(&sjf_exact), sorted, "SJF with exact estimates runs shortest first");
    let sjf_scaled = simulate(&scaled.scenario, 5, 0);
    assert_eq!(start_order(&sjf_scaled), sorted, "a constant factor keeps SJF's order");
    let sjf_noisy = simulate(&noisy.scenario, 5, 0);
    assert_ne!(start_order(&sjf_noisy), sorted, "noisy estimates should reorder SJF");
    assert!(mean_jct(&sjf_noisy) > mean_jct(&sjf_exact) + 1.0, "{} vs {}", mean_jct(&sjf_noisy), mean_jct(&sjf_exact));

    let fifo_exact = simulate(&exact.scenario, 5, 1);
    let fifo_noisy = simulate(&noisy.scenario, 5, 1);
    assert_eq!(fifo_exact.records, fifo_noisy.records, "FIFO does not read estimates");
}

#[test]
fn maintenance_window_drains_and_delays() {
    // Node n-0 (one device) is down for maintenance from 500 s to 2500 s; grace 30 s (default).
    // A (work 1000, t=0) is preempted at 500 and evicted at 530 with 530 s done; with no
    // checkpoint model it loses nothing (issue-2 behaviour). B (work 100, t=600) arrives during
    // the window. Nothing can start before 2500; then A's remaining 470 s and B's 100 s run one
    // after the other: the last ends at 2500 + 470 + 100 = 3070 s.
    // Without maintenance: A ends at 1000, B at 1100.
    let toml = r#"
name = "maintenance"
[[cluster.nodes]]
name = "n"
devices = { model = "A100-80GB", count = 1 }
cpu_cores = 8
mem_gib = 64
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[[models.maintenance]]
nodes = ["n-0"]
start_s = 500
duration_s = 2000
"#;
    let c = case(toml, Some(&trace(&[(1, 0.0, 0, 1.0, 1000.0, "a"), (2, 600.0, 0, 1.0, 100.0, "b")])));
    let out = simulate(&c.scenario, 1, 0);
    let (a, b) = (rec(&out, 1), rec(&out, 2));
    assert_eq!(a.ledger.preemptions, 1, "{a:?}");
    assert_eq!(a.lost_work, Time::ZERO, "{a:?}");
    assert_span("A run (530 + 470)", a.ledger.run, 1000.0);
    assert_span("B run", b.ledger.run, 100.0);
    assert!(b.ledger.first_start.unwrap() >= Time::from_secs(2500), "B started during maintenance: {b:?}");
    assert!(a.ledger.end.unwrap() >= Time::from_secs(2970), "A finished during maintenance: {a:?}");
    assert_at("last end", a.ledger.end.max(b.ledger.end), 3070.0);
    assert!(a.outcome == JobOutcome::Completed && b.outcome == JobOutcome::Completed);
}

#[test]
fn fleet_add_lets_a_waiting_job_start() {
    // One device busy with A (work 1000, t=0); B (work 100, t=10) waits. At 300 s a node is
    // added: B starts there at 300 and ends at 400 (without it: starts 1000, ends 1100).
    let toml = r#"
name = "fleet-add"
[[cluster.nodes]]
name = "n"
devices = { model = "A100-80GB", count = 1 }
cpu_cores = 8
mem_gib = 64
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[[models.fleet]]
at_s = 300
add = { count = 1, devices = { model = "A100-80GB", count = 1 }, cpu_cores = 8, mem_gib = 64, name = "extra" }
"#;
    let c = case(toml, Some(&trace(&[(1, 0.0, 0, 1.0, 1000.0, "a"), (2, 10.0, 0, 1.0, 100.0, "b")])));
    let out = simulate(&c.scenario, 1, 0);
    assert_at("A end", rec(&out, 1).ledger.end, 1000.0);
    assert_at("B first_start", rec(&out, 2).ledger.first_start, 300.0);
    assert_at("B end", rec(&out, 2).ledger.end, 400.0);
}

#[test]
fn fleet_remove_takes_capacity_away() {
    // Two one-device nodes; n-1 (idle) is removed at 100 s. A and B (100 s each) arrive at 200:
    // only n-0 is left, so they run one after the other: ends 300 and 400 (both 300 without
    // the removal).
    let toml = r#"
name = "fleet-remove"
[[cluster.nodes]]
name = "n"
count = 2
devices = { model = "A100-80GB", count = 1 }
cpu_cores = 8
mem_gib = 64
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "fifo"
[[models.fleet]]
at_s = 100
remove = ["n-1"]
"#;
    let c = case(toml, Some(&trace(&[(1, 200.0, 0, 1.0, 100.0, "a"), (2, 200.0, 0, 1.0, 100.0, "b")])));
    let out = simulate(&c.scenario, 1, 0);
    assert_at("A end", rec(&out, 1).ledger.end, 300.0);
    assert_at("B end", rec(&out, 2).ledger.end, 400.0);
}

/// A low-priority job L (work 1000, t=0) preempted at 500 by H (priority 1, work 100) on one
/// device, grace 30 s.
fn preempt_case(models: &str) -> Case {
    let toml = format!(
        r#"
name = "preempt"
[[cluster.nodes]]
devices = {{ model = "A100-80GB", count = 1 }}
cpu_cores = 8
mem_gib = 64
[workload]
trace = {{ format = "native", path = "trace.csv" }}
[[policies]]
name = "priority"
grace_s = 30
{models}
"#
    );
    case(&toml, Some(&trace(&[(1, 0.0, 0, 1.0, 1000.0, "low"), (2, 500.0, 1, 1.0, 100.0, "high")])))
}

#[test]
fn preemption_without_checkpoint_model_loses_nothing() {
    // Issue-2 behaviour: L works through its grace to 530 s (530 s done), H runs 530..630,
    // L resumes with 470 s left: ends 1100. Nothing lost, no overhead.
    let c = preempt_case("");
    let out = simulate(&c.scenario, 1, 0);
    let (l, h) = (rec(&out, 1), rec(&out, 2));
    assert_eq!(l.ledger.preemptions, 1);
    assert_at("H end", h.ledger.end, 630.0);
    assert_at("L end", l.ledger.end, 1100.0);
    assert_eq!(l.lost_work, Time::ZERO);
    assert_span("L run", l.ledger.run, 1000.0);
}

#[test]
fn save_on_preempt_that_fits_loses_nothing() {
    // Checkpoints every 200 s of work at no cost, restore 50 s, save on preemption 10 s
    // (fits in the 30 s grace). At 500 s L has done 500 s; it saves for 10 s and loses nothing.
    // Whenever L then leaves the device (510 s, or the end of the grace), H runs 100 s, and L
    // comes back with 500 s left after a 50 s restore: L.end = H.end + 550.
    // checkpoint_overhead = save 10 + restore 50 = 60 s.
    let c = preempt_case("[models.checkpoint]\ninterval_s = 200\ncost_s = 0\nrestore_s = 50\nsave_on_preempt_s = 10\n");
    let out = simulate(&c.scenario, 1, 0);
    let (l, h) = (rec(&out, 1), rec(&out, 2));
    assert_eq!(l.ledger.preemptions, 1);
    assert_eq!(l.lost_work, Time::ZERO, "{l:?}");
    let h_start = h.ledger.first_start.unwrap().as_secs_f64();
    assert!((510.0..=530.0 + 1e-6).contains(&h_start), "H started at {h_start}");
    assert_at("H end", h.ledger.end, h_start + 100.0);
    assert_at("L end", l.ledger.end, h_start + 100.0 + 550.0);
    assert_span("L checkpoint_overhead", l.checkpoint_overhead, 60.0);
}

#[test]
fn save_on_preempt_too_long_loses_work_since_last_checkpoint() {
    // Same, but the save takes 60 s > 30 s grace: L works on until 530 s (530 s done) and
    // loses the 130 s since its checkpoint at 400 s of work. H runs 530..630; L restores (50 s)
    // and does its remaining 600 s: ends 630 + 50 + 600 = 1280.
    // L.run = 530 + 50 + 600 = 1180; checkpoint_overhead = restore 50 (checkpoints are free).
    let c = preempt_case("[models.checkpoint]\ninterval_s = 200\ncost_s = 0\nrestore_s = 50\nsave_on_preempt_s = 60\n");
    let out = simulate(&c.scenario, 1, 0);
    let (l, h) = (rec(&out, 1), rec(&out, 2));
    assert_eq!(l.ledger.preemptions, 1);
    assert_at("H end", h.ledger.end, 630.0);
    assert_span("L lost_work", l.lost_work, 130.0);
    assert_at("L end", l.ledger.end, 1280.0);
    assert_span("L run", l.ledger.run, 1180.0);
    assert_span("L checkpoint_overhead", l.checkpoint_overhead, 50.0);
}

// ---------------------------------------------------------------------------------------------
// 5. Determinism with every model on
// ---------------------------------------------------------------------------------------------

const EVERYTHING: &str = r#"
name = "everything"
[[cluster.nodes]]
name = "a100"
count = 4
devices = { model = "A100-80GB", count = 8 }
cpu_cores = 64
mem_gib = 512
[[cluster.nodes]]
name = "v100"
count = 2
devices = { model = "V100-32GB", count = 4 }
cpu_cores = 32
mem_gib = 256
[workload]
trace = { format = "native", path = "trace.csv" }
[[policies]]
name = "priority"
grace_s = 60
[[policies]]
name = "sjf"

[models.contention]
node = { dist = "uniform", min_s = 0.9, max_s = 1.0 }
device = { dist = "uniform", min_s = 0.6, max_s = 0.8 }
pcie_switch = { dist = "uniform", min_s = 0.85, max_s = 1.0 }
nvlink_island = { dist = "constant", value = 0.98 }
devices_per_pcie_switch = 4
devices_per_nvlink_island = 8
device_sharing = "equal"

[models.communication]
per_extra_node = 0.85

[models.failures]
device = { mtbf_h = 300, lifetime = "exponential", repair = { dist = "constant", value = 3600 } }
node = { mtbf_h = 500, lifetime = "weibull", shape = 0.8, repair = { dist = "exponential", mean_s = 7200 } }
max_attempts = 4
[[models.failures.by_model]]
model = "V100-32GB"
mtbf_h = 100

[[models.maintenance]]
nodes = ["a100-0", "v100-1"]
start_s = 20000
duration_s = 7200

[models.checkpoint]
interval_s = 1800
cost_s = 30
restore_s = 60
save_on_preempt_s = 20
[[models.checkpoint.by_class]]
class = "llm"
interval_s = 3600
cost_s = 120

[models.startup]
cold = { dist = "exponential", mean_s = 120 }
warm = { dist = "constant", value = 15 }
warm_window_s = 3600

[models.estimate_error]
factor = { dist = "uniform", min_s = 0.5, max_s = 2.0 }

[[models.fleet]]
at_s = 30000
add = { count = 2, devices = { model = "H100", count = 8 }, cpu_cores = 96, mem_gib = 1024, name = "h100" }
[[models.fleet]]
at_s = 60000
remove = ["v100-0"]
"#;

fn everything_trace() -> String {
    let mut g = SplitMix(2024);
    let mut t = 0.0;
    let rows: Vec<_> = (1..=400u64)
        .map(|id| {
            t += g.exponential(300.0);
            let u = g.uniform();
            let devices = if u < 0.2 { 0.5 } else if u < 0.6 { 1.0 } else if u < 0.8 { 2.0 } else if u < 0.95 { 8.0 } else { 16.0 };
            let class = ["llm", "cnn", "rl"][(g.next_u64() % 3) as usize];
            let prio = (g.next_u64() % 3) as i32;
            (id, t, prio, devices, g.exponential(3600.0).max(1.0), class)
        })
        .collect();
    trace(&rows)
}

#[test]
fn every_model_on_is_deterministic_per_seed() {
    // The trace does not depend on the seed, so any difference between seeds comes from the
    // world models (stream 0 of the run's generator).
    let c = case(EVERYTHING, Some(&everything_trace()));
    for policy in 0..2 {
        let a = simulate(&c.scenario, 7, policy);
        let b = simulate(&c.scenario, 7, policy);
        let other = simulate(&c.scenario, 8, policy);
        assert_eq!(a.records, b.records, "policy {policy}: same seed, different records");
        assert_eq!((a.end, a.events), (b.end, b.events), "policy {policy}");
        assert_ne!(a.records, other.records, "policy {policy}: another seed changed nothing");
        // The models actually did something.
        assert!(a.records.iter().any(|r| r.ledger.restarts > 0), "policy {policy}: no failure hit a job");
        assert!(a.records.iter().any(|r| r.checkpoint_overhead > Time::ZERO), "policy {policy}: no checkpoint");
        let h100 = c.scenario.catalogue().unwrap().lookup("H100").unwrap();
        assert!(a.records.iter().any(|r| !r.ran_on.is_any() && r.ran_on.allows(h100)), "policy {policy}: fleet add unused");
        assert!(a.records.iter().filter(|r| r.outcome == JobOutcome::Completed).all(|r| r.slowdown() > 1.0), "policy {policy}: start-up alone makes every run slower than ideal");
    }
}

#[test]
fn the_documented_models_example_is_accepted() {
    // The `[models]` block of sim/src/models.rs's module documentation, verbatim (its node
    // names exist in this cluster). Its lognormal contention and estimate factors are strictly
    // positive, so validation must accept them.
    let src = include_str!("../sim/src/models.rs");
    let example: String = src
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").strip_prefix(' ').unwrap_or(l.trim_start_matches("//!")))
        .skip_while(|l| !l.starts_with("```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(example.contains("[models.contention]"), "{example}");
    let toml = format!(
        r#"
name = "documented"
[[cluster.nodes]]
name = "a100"
count = 2
devices = {{ model = "A100-80GB", count = 8 }}
cpu_cores = 64
mem_gib = 512
[[cluster.nodes]]
name = "p100"
count = 2
devices = {{ model = "P100", count = 4 }}
cpu_cores = 32
mem_gib = 256
[workload]
synthetic = {{ jobs = 200, interarrival = {{ dist = "exponential", mean_s = 600 }}, duration = {{ dist = "exponential", mean_s = 3600 }} }}
[[policies]]
name = "sjf"
{example}
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::from_toml_str(&toml, &dir.path().join("scenario.toml")).unwrap_or_else(|e| panic!("{e}"));
    let out = simulate(&scenario, 3, 0);
    assert_eq!(out.records.len(), 200);
}
