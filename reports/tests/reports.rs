//! Metrics, CSV writers, the terminal table and Erlang C, on hand-computed cases.

use tessera_core::{Catalogue, DeviceRequest, JobId, JobLedger, JobRecord, ModelSet, JobOutcome, TenantId, Time};
use tessera_reports::{erlang_c, erlang_c_wait, format_summary_table, percentile, run_metrics, write_jobs_csv, write_summary_csv, RunMetrics, SummaryRow};

fn secs(s: f64) -> Time {
    Time::from_secs_f64(s)
}

fn record(id: u64, submit_s: f64) -> JobRecord {
    JobRecord {
        id: JobId(id),
        tenant: TenantId(0),
        devices: DeviceRequest::whole(1),
        ledger: JobLedger::submitted(secs(submit_s)),
        ran_on: ModelSet::ANY,
        device_micros: 0,
        outcome: JobOutcome::Unfinished,
        lost_work: Time::ZERO,
        checkpoint_overhead: Time::ZERO,
        ideal_run: Time::ZERO,
    }
}

fn model(c: &Catalogue, name: &str) -> ModelSet {
    ModelSet::only(c.lookup(name).unwrap())
}

/// Five jobs on a 4-device fleet, with every figure worked out by hand:
///
/// | job | submit | first start | end | run | devices | device-s | outcome     | JCT | wait | bounded slowdown      |
/// |-----|--------|-------------|-----|-----|---------|----------|-------------|-----|------|-----------------------|
/// | 1   | 0      | 0           | 100 | 100 | 1       | 100      | completed   | 100 | 0    | max(1, 100/100) = 1   |
/// | 2   | 10     | 30          | 70  | 30  | 2       | 60       | completed   | 60  | 30   | 60/max(30,10) = 2     |
/// | 3   | 20     | 40          | 45  | 5   | 0.5     | 2.5      | completed   | 25  | 20   | 25/max(5,10) = 2.5    |
/// | 4   | 5      | -           | 200 | 0   | 1       | 0        | cancelled   |     |      |                       |
/// | 5   | 50     | 150         | -   | 60  | 1       | 60       | unfinished  |     |      |                       |
///
/// Job 2 was preempted once (ran 30–50, requeued, ran 60–70): its 30 s wait includes the
/// requeue. Job 5 was preempted twice.
fn hand_records(c: &Catalogue) -> Vec<JobRecord> {
    vec![
        {
            let mut r = JobRecord {
                ran_on: model(c, "V100-32GB"),
                device_micros: 100_000_000,
                outcome: JobOutcome::Completed,
                ..record(1, 0.0)
            };
            r.ledger.first_start = Some(secs(0.0));
            r.ledger.end = Some(secs(100.0));
            r.ledger.run = secs(100.0);
            r
        },
        {
            let mut r = JobRecord {
                tenant: TenantId(1),
                devices: DeviceRequest::whole(2),
                ran_on: model(c, "A100-80GB").with(c.lookup("V100-32GB").unwrap()),
                device_micros: 60_000_000,
                outcome: JobOutcome::Completed,
                ..record(2, 10.0)
            };
            r.ledger.first_start = Some(secs(30.0));
            r.ledger.end = Some(secs(70.0));
            r.ledger.run = secs(30.0);
            r.ledger.preemptions = 1;
            r
        },
        {
            let mut r = JobRecord {
                devices: DeviceRequest {
                            count: 1,
                            share_milli: 500,
                            models: ModelSet::ANY,
                        },
                ran_on: model(c, "T4"),
                device_micros: 2_500_000,
                outcome: JobOutcome::Completed,
                ..record(3, 20.0)
            };
            r.ledger.first_start = Some(secs(40.0));
            r.ledger.end = Some(secs(45.0));
            r.ledger.run = secs(5.0);
            r
        },
        {
            let mut r = JobRecord {
                outcome: JobOutcome::Cancelled,
                ..record(4, 5.0)
            };
            r.ledger.end = Some(secs(200.0));
            r
        },
        {
            let mut r = JobRecord {
                tenant: TenantId(9), // not in the tenant list: written as `tenant-9`
                ran_on: model(c, "H100"),
                device_micros: 60_000_000,
                ..record(5, 50.0)
            };
            r.ledger.first_start = Some(secs(150.0));
            r.ledger.run = secs(60.0);
            r.ledger.preemptions = 2;
            r
        },
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn percentile_is_nearest_rank() {
    let ten: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(percentile(&ten, 0.0), 1.0);
    assert_eq!(percentile(&ten, 0.1), 1.0); // ceil(1.0) = rank 1
    assert_eq!(percentile(&ten, 0.11), 2.0); // ceil(1.1) = rank 2
    assert_eq!(percentile(&ten, 0.5), 5.0); // rank 5, no interpolation with 6
    assert_eq!(percentile(&ten, 0.95), 10.0); // ceil(9.5) = 10
    assert_eq!(percentile(&ten, 1.0), 10.0);
    let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
    // 0.95 · 20 = 19 exactly (19.000000000000004 in floating point): rank 19.
    assert_eq!(percentile(&twenty, 0.95), 19.0);
    assert_eq!(percentile(&[7.0], 0.99), 7.0);
    assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), 2.0);
}

#[test]
fn percentile_nan_cases() {
    assert!(percentile(&[], 0.5).is_nan());
    assert!(percentile(&[1.0], 95.0).is_nan(), "q is a fraction, not a percentage");
    assert!(percentile(&[1.0], -0.1).is_nan());
    assert!(percentile(&[1.0], f64::NAN).is_nan());
}

#[test]
fn run_metrics_on_hand_built_records() {
    let c = Catalogue::built_in();
    let m = run_metrics(&hand_records(&c), 4.0);
    assert_eq!((m.jobs, m.completed, m.preemptions), (5, 3, 3));
    // JCTs sorted: 25, 60, 100.
    assert!(close(m.avg_jct_s, 185.0 / 3.0));
    assert_eq!(m.p50_jct_s, 60.0); // ceil(1.5) = rank 2
    assert_eq!(m.p95_jct_s, 100.0); // ceil(2.85) = rank 3
    assert_eq!(m.p99_jct_s, 100.0);
    // Waits sorted: 0, 20, 30.
    assert!(close(m.avg_wait_s, 50.0 / 3.0));
    assert_eq!((m.p50_wait_s, m.p95_wait_s, m.p99_wait_s), (20.0, 30.0, 30.0));
    assert!(close(m.avg_bounded_slowdown, (1.0 + 2.0 + 2.5) / 3.0));
    // Latest end 200 (the cancelled job counts) minus earliest submit 0.
    assert_eq!(m.makespan_s, 200.0);
    // (100 + 60 + 2.5 + 0 + 60) device-s / (4 devices × 200 s) = 222.5 / 800.
    assert!(close(m.utilization, 0.278125));
}

#[test]
fn run_metrics_without_completed_jobs() {
    let m = run_metrics(&[], 8.0);
    assert_eq!((m.jobs, m.completed, m.preemptions), (0, 0, 0));
    assert!(m.avg_jct_s.is_nan() && m.p95_jct_s.is_nan() && m.avg_wait_s.is_nan() && m.avg_bounded_slowdown.is_nan());
    assert_eq!((m.makespan_s, m.utilization), (0.0, 0.0));

    // Ran but never ended: no makespan, so no utilization either (and no division by zero).
    let running = {
        let mut r = JobRecord {
            device_micros: 5_000_000,
            ..record(1, 0.0)
        };
        r.ledger.first_start = Some(secs(1.0));
        r.ledger.run = secs(5.0);
        r
    };
    let m = run_metrics(std::slice::from_ref(&running), 1.0);
    assert_eq!((m.jobs, m.completed, m.makespan_s, m.utilization), (1, 0, 0.0, 0.0));
    assert!(m.p50_wait_s.is_nan());

    // A failed job ends the makespan but is not completed.
    let failed = {
        let mut r = JobRecord {
            outcome: JobOutcome::Failed,
            ..running
        };
        r.ledger.end = Some(secs(10.0));
        r
    };
    let m = run_metrics(&[failed], 1.0);
    assert_eq!((m.completed, m.makespan_s), (0, 10.0));
    assert!(close(m.utilization, 0.5));
    assert_eq!(run_metrics(&[], 0.0).utilization, 0.0);
}

#[test]
fn bounded_slowdown_floors_short_jobs_and_never_goes_below_one() {
    // A 1 s job that waited 9 s: JCT 10, bounded by 10 s -> 1 (unbounded it would be 10).
    let short = {
        let mut r = JobRecord {
            outcome: JobOutcome::Completed,
            ..record(1, 0.0)
        };
        r.ledger.first_start = Some(secs(9.0));
        r.ledger.end = Some(secs(10.0));
        r.ledger.run = secs(1.0);
        r
    };
    assert_eq!(run_metrics(&[short], 1.0).avg_bounded_slowdown, 1.0);
}

fn metrics(completed: u64) -> RunMetrics {
    RunMetrics {
        jobs: 10,
        completed,
        rejected: 1,
        avg_jct_s: 61.666_666_6,
        p50_jct_s: 60.0,
        p95_jct_s: 100.0,
        p99_jct_s: 100.0,
        avg_wait_s: 16.666_666_6,
        p50_wait_s: 20.0,
        p95_wait_s: 30.0,
        p99_wait_s: 30.0,
        avg_bounded_slowdown: 1.833_333_3,
        makespan_s: 200.0,
        utilization: 0.278125,
        preemptions: 3,
        lost_work_s: 12.5,
        checkpoint_overhead_s: 0.25,
    }
}

#[test]
fn summary_csv_header_and_fixed_formatting() {
    let nan = f64::NAN;
    let rows = vec![
        SummaryRow {
            policy: "fifo".into(),
            replication: 0,
            seed: 42,
            metrics: metrics(3),
            events: 1234,
            failures: 2,
            wall_s: 0.0125,
        },
        SummaryRow {
            policy: "priority,backfill=\"easy\"".into(),
            replication: 1,
            seed: u64::MAX,
            metrics: RunMetrics {
                completed: 0,
                rejected: 10,
                avg_jct_s: nan,
                p50_jct_s: nan,
                p95_jct_s: nan,
                p99_jct_s: nan,
                avg_wait_s: nan,
                p50_wait_s: nan,
                p95_wait_s: nan,
                p99_wait_s: nan,
                avg_bounded_slowdown: nan,
                makespan_s: 0.0,
                utilization: 0.0,
                preemptions: 0,
                ..metrics(0)
            },
            events: 0,
            failures: 2,
            wall_s: 2.0,
        },
    ];
    let mut out = Vec::new();
    write_summary_csv(&mut out, &rows).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "policy,replication,seed,jobs,completed,rejected,avg_jct_s,p50_jct_s,p95_jct_s,p99_jct_s,avg_wait_s,p50_wait_s,p95_wait_s,\
         p99_wait_s,avg_bounded_slowdown,makespan_s,utilization,preemptions,events,lost_work_s,checkpoint_overhead_s,failures,wall_s"
    );
    assert_eq!(
        lines[1],
        "fifo,0,42,10,3,1,61.667,60.000,100.000,100.000,16.667,20.000,30.000,30.000,1.833,200.000,0.278125,3,1234,12.500,0.250,2,0.013"
    );
    assert_eq!(
        lines[2],
        "\"priority,backfill=\"\"easy\"\"\",1,18446744073709551615,10,0,10,NaN,NaN,NaN,NaN,NaN,NaN,NaN,NaN,NaN,0.000,0.000000,0,0,12.500,0.250,2,2.000"
    );
    assert_eq!(lines.len(), 3);
    assert!(text.ends_with('\n'));

    // Deterministic: the same rows give the same bytes.
    let mut again = Vec::new();
    write_summary_csv(&mut again, &rows).unwrap();
    assert_eq!(again, text.as_bytes());
}

#[test]
fn jobs_csv_rows() {
    let c = Catalogue::built_in();
    let tenants = vec!["alice".to_string(), "team, bob".to_string()];
    let mut out = Vec::new();
    write_jobs_csv(&mut out, &hand_records(&c), &tenants, &c).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "job_id,tenant,devices,submit_s,start_s,end_s,wait_s,jct_s,preemptions,models,outcome,run_s,lost_work_s,restarts,slowdown"
    );
    assert_eq!(
        lines[1],
        "1,alice,1,0.000000,0.000000,100.000000,0.000000,100.000000,0,V100-32GB,completed,100.000000,0.000000,0,"
    );
    // Quoted tenant; two devices; distinct models in catalogue order joined with `+`.
    assert_eq!(
        lines[2],
        "2,\"team, bob\",2,10.000000,30.000000,70.000000,30.000000,60.000000,1,V100-32GB+A100-80GB,completed,30.000000,0.000000,0,"
    );
    // A half share is written as a decimal.
    assert_eq!(
        lines[3],
        "3,alice,0.5,20.000000,40.000000,45.000000,20.000000,25.000000,0,T4,completed,5.000000,0.000000,0,"
    );
    // Never started: empty start and models; ended (cancelled), so end, wait and JCT exist.
    assert_eq!(
        lines[4],
        "4,alice,1,5.000000,,200.000000,195.000000,195.000000,0,,cancelled,0.000000,0.000000,0,"
    );
    // Never ended: empty end, wait and JCT; unknown tenant index falls back to its id.
    assert_eq!(
        lines[5],
        "5,tenant-9,1,50.000000,150.000000,,,,2,H100,unfinished,60.000000,0.000000,0,"
    );
    assert_eq!(lines.len(), 6);
    for line in &lines[1..] {
        // Every row has the header's 15 fields (counting commas outside quotes).
        let mut in_quotes = false;
        let fields = 1 + line
            .chars()
            .filter(|&ch| {
                if ch == '"' {
                    in_quotes = !in_quotes;
                }
                ch == ',' && !in_quotes
            })
            .count();
        assert_eq!(fields, 15, "{line}");
    }
}

#[test]
fn jobs_csv_fractional_shares_and_sub_second_times() {
    let c = Catalogue::built_in();
    let r = {
        let mut r = JobRecord {
            devices: DeviceRequest {
                    count: 1,
                    share_milli: 125,
                    models: ModelSet::ANY,
                },
            ..record(7, 0.0)
        };
        r.ledger.submit = Time::from_micros(1);
        r.ledger.first_start = Some(Time::from_micros(1_500_001));
        r
    };
    let mut out = Vec::new();
    write_jobs_csv(&mut out, &[r], &["t".into()], &c).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "7,t,0.125,0.000001,1.500001,,,,0,,unfinished,0.000000,0.000000,0,"
    );
}

#[test]
fn jobs_csv_header_only_for_no_records() {
    let mut out = Vec::new();
    write_jobs_csv(&mut out, &[], &[], &Catalogue::built_in()).unwrap();
    assert_eq!(
        out,
        b"job_id,tenant,devices,submit_s,start_s,end_s,wait_s,jct_s,preemptions,models,outcome,run_s,lost_work_s,restarts,slowdown\n"
    );
}

/// Run with `cargo test --release -p tessera-reports -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release"]
fn one_million_job_rows_write_fast() {
    let c = Catalogue::built_in();
    let tenants: Vec<String> = (0..50).map(|i| format!("tenant-{i}")).collect();
    let base = hand_records(&c);
    let records: Vec<JobRecord> = (0..1_000_000u64)
        .map(|i| {
            let mut r = base[(i % 5) as usize].clone();
            r.id = JobId(i);
            r.tenant = TenantId((i % 50) as u32);
            r
        })
        .collect();
    let file = tempfile::tempfile().unwrap();
    let t = std::time::Instant::now();
    write_jobs_csv(std::io::BufWriter::new(file), &records, &tenants, &c).unwrap();
    let elapsed = t.elapsed();
    eprintln!("wrote 1M job rows in {elapsed:?}");
    assert!(elapsed.as_secs_f64() < 1.0, "{elapsed:?}");
}

#[test]
fn table_is_aligned_and_narrow() {
    let rows = vec![
        SummaryRow {
            policy: "fifo".into(),
            replication: 0,
            seed: 1,
            metrics: metrics(3),
            events: 1234,
            failures: 2,
            wall_s: 0.0125,
        },
        SummaryRow {
            policy: "a-very-long-policy-label-with-parameters=1,2,3".into(),
            replication: 12,
            seed: 2,
            metrics: RunMetrics {
                completed: 1_000_000,
                avg_jct_s: 3.5 * 86_400.0,
                p95_jct_s: 7200.0,
                avg_wait_s: f64::NAN,
                preemptions: 123_456,
                ..metrics(0)
            },
            events: 9_876_543_210,
            failures: 0,
            wall_s: 95.0,
        },
    ];
    let table = format_summary_table(&rows);
    print!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("policy"));
    assert!(lines.iter().all(|l| l.chars().count() <= 120), "{table}");
    assert!(lines[1].chars().all(|ch| ch == '-' || ch == ' '));
    // Right-aligned numeric columns end at the same place on every line.
    let ends = |needle: &str, line: &str| line.find(needle).map(|i| i + needle.len());
    assert_eq!(ends("wall", lines[0]), Some(lines[0].len()));
    assert_eq!(lines[2].len(), lines[0].len());
    assert!(lines[2].starts_with("fifo "));
    assert!(lines[2].contains("1.03m") && lines[2].contains("27.8%") && lines[2].ends_with("0.01s"));
    assert!(lines[3].contains('…') && !lines[3].contains("parameters=1,2,3"));
    assert!(lines[3].contains("3.50d") && lines[3].contains("2.00h") && lines[3].contains(" - "));
    assert_eq!(format_summary_table(&[]).lines().count(), 2);
}

#[test]
fn erlang_c_single_server_is_mm1() {
    // M/M/1: Wq = ρ / (μ − λ).
    for (lambda, mu) in [(0.5, 1.0), (3.0, 4.0), (0.01, 2.0)] {
        let rho = lambda / mu;
        assert!(
            close(erlang_c_wait(1, lambda, mu), rho / (mu - lambda)),
            "{lambda} {mu}"
        );
        assert!(close(erlang_c(1, rho), rho), "M/M/1: P(wait) = ρ");
    }
}

#[test]
fn erlang_c_textbook_values() {
    // c = 2, λ = μ = 1 (a = 1, ρ = 1/2). M/M/2 closed form: Lq = 2ρ³/(1 − ρ²) = (1/4)/(3/4) = 1/3,
    // Wq = Lq/λ = 1/3; and C = (a²/2! · 2/(2−1)) / (1 + 1 + 1) = 1/3.
    assert!(close(erlang_c(2, 1.0), 1.0 / 3.0));
    assert!(close(erlang_c_wait(2, 1.0, 1.0), 1.0 / 3.0));
    // c = 8, λ = 6, μ = 1 (a = 6, ρ = 3/4):
    //   Σ_{k<8} 6^k/k! = 300.142857…;  6^8/8! · 8/(8−6) = 41.657142… · 4 = 166.628571…
    //   C = 166.628571 / (300.142857 + 166.628571) = 0.356981…;  Wq = C/(8·1 − 6) = 0.178491…
    assert!((erlang_c(8, 6.0) - 0.356_981_085_878_680).abs() < 1e-12);
    assert!((erlang_c_wait(8, 6.0, 1.0) - 0.178_490_542_939_340).abs() < 1e-12);
    // Rates scale time: twice as fast service and arrivals halve the wait.
    assert!(close(erlang_c_wait(8, 12.0, 2.0), 0.178_490_542_939_340 / 2.0));
}

#[test]
fn erlang_c_edges() {
    assert_eq!(erlang_c_wait(4, 0.0, 1.0), 0.0);
    assert_eq!(erlang_c_wait(4, 4.0, 1.0), f64::INFINITY);
    assert_eq!(erlang_c_wait(4, 5.0, 1.0), f64::INFINITY);
    assert!(erlang_c_wait(0, 1.0, 1.0).is_nan());
    assert!(erlang_c_wait(2, 1.0, 0.0).is_nan());
    assert!(erlang_c_wait(2, -1.0, 1.0).is_nan());
    assert!(erlang_c_wait(2, f64::NAN, 1.0).is_nan());
    assert_eq!(erlang_c(3, 3.0), 1.0);
    // Thousands of servers: no overflow (1000! and 950^1000 are far beyond f64).
    let c = erlang_c(1000, 950.0);
    assert!(c > 0.0 && c < 1.0, "{c}");
    assert!(erlang_c_wait(1000, 950.0, 1.0).is_finite());
    assert_eq!(erlang_c(100_000, 1.0), 0.0);
}

#[test]
fn erlang_c_agrees_with_statrs_poisson() {
    use statrs::distribution::{Discrete, DiscreteCDF, Poisson};
    // Erlang B is a truncated Poisson: B(c, a) = P(N = c) / P(N <= c) with N ~ Poisson(a);
    // then C = c·B / (c − a(1 − B)).
    for (servers, load) in [(1u32, 0.3), (2, 1.5), (5, 4.2), (16, 12.0), (64, 60.0), (200, 180.0)] {
        let poisson = Poisson::new(load).unwrap();
        let b = poisson.pmf(u64::from(servers)) / poisson.cdf(u64::from(servers));
        let c = f64::from(servers);
        let want = c * b / (c - load * (1.0 - b));
        let got = erlang_c(servers, load);
        assert!((got - want).abs() < 1e-9, "c={servers} a={load}: {got} vs {want}");
    }
}

#[test]
fn jobs_csv_world_model_columns() {
    // 120 s running for 90 s of ideal run (slowdown 1.333333), 45 s of work lost, 2 restarts.
    let r = {
        let mut r = JobRecord {
            ideal_run: secs(90.0),
            lost_work: secs(45.0),
            ..record(8, 0.0)
        };
        r.ledger.run = secs(120.0);
        r.ledger.restarts = 2;
        r
    };
    let mut out = Vec::new();
    write_jobs_csv(&mut out, &[r], &["t".into()], &Catalogue::built_in()).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().nth(1).unwrap().ends_with(",unfinished,120.000000,45.000000,2,1.333333"), "{text}");
}
