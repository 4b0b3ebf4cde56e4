//! The Philly loaders: the derived job list and the raw job log, on the published file, the
//! fixtures and broken input.

use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera_traces::philly::{self, PhillyJobLog};
use tessera_traces::TraceError;

const HEADER: &str = "timestamp,duration,num_gpus,gpu_time,cluster";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/philly").join(name)
}

/// A file of the shared trace folder, or `None` (with a message) when it is not there.
fn shared(rel: &str) -> Option<PathBuf> {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/traces")).join(rel);
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: {} not found", path.display());
        None
    }
}

/// Parses `content` as a derived list named `trace.csv` and returns the error, checking that
/// its message starts with the file's name.
fn csv_err(content: &str) -> TraceError {
    let origin = Path::new("trace.csv");
    let err = philly::parse(content.as_bytes(), origin).expect_err("the loader should refuse this");
    assert!(err.to_string().starts_with("trace.csv: "), "{err}");
    err
}

fn log_err(content: &str) -> TraceError {
    let origin = Path::new("cluster_job_log");
    let err = philly::parse_job_log(content.as_bytes(), origin).expect_err("the loader should refuse this");
    assert!(err.to_string().starts_with("cluster_job_log: "), "{err}");
    err
}

#[test]
fn the_published_job_list_loads_as_82247_jobs() {
    let Some(path) = shared("philly-derived/pollux_philly.csv") else { return };
    let started = Instant::now();
    let jobs = philly::load(&path).unwrap();
    println!("loaded {} jobs from {} in {:?}", jobs.len(), path.display(), started.elapsed());
    assert_eq!(jobs.len(), 82_247);
    assert_eq!(jobs[0].submit_s, 0.0, "the earliest timestamp is the epoch");
    assert!(jobs.windows(2).all(|w| w[0].submit_s <= w[1].submit_s));
    assert!(jobs.iter().enumerate().all(|(i, j)| j.job_id == i as u64 + 1));
    let tenants: std::collections::BTreeSet<&str> = jobs.iter().map(|j| j.tenant.as_str()).collect();
    assert_eq!(tenants.len(), 15);
    // The file's first row: 2017-10-09 07:01:55, 66 s on 1 GPU in 11cb48; the earliest
    // timestamp of the file is 2017-09-04 10:30:41.
    let first_row = jobs.iter().find(|j| j.line == 2).unwrap();
    assert_eq!(first_row.submit_s, 3_011_474.0);
    assert_eq!((first_row.duration_s, first_row.devices), (66.0, 1.0));
    assert_eq!(first_row.tenant, "11cb48");
    assert_eq!(first_row.job_class, "philly");
    assert_eq!(first_row.outcome, None);
    assert_eq!(jobs.iter().map(|j| j.devices).fold(0.0, f64::max), 128.0);
}

#[test]
fn the_sample_is_sorted_numbered_and_keeps_identical_rows() {
    let jobs = philly::load(&fixture("pollux_philly_sample.csv")).unwrap();
    assert_eq!(jobs.len(), 8);
    // (line, submit_s) in submission order: the epoch is the earliest row (line 4).
    let got: Vec<(u64, f64)> = jobs.iter().map(|j| (j.line, j.submit_s)).collect();
    assert_eq!(
        got,
        vec![
            (4, 0.0),
            (8, 647_886.0),
            (9, 647_886.0),
            (3, 857_671.0),
            (5, 857_704.0),
            (7, 857_781.0),
            (6, 857_851.0),
            (2, 860_603.0),
        ]
    );
    assert_eq!(jobs.iter().map(|j| j.job_id).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
    let j = &jobs[0];
    assert_eq!((j.tenant.as_str(), j.devices, j.duration_s, j.priority), ("6c71a0", 1.0, 860_662.0, 0));
    assert!(j.models.is_empty());
    // The two identical rows are two jobs, in file order.
    assert_eq!(jobs[1].duration_s, jobs[2].duration_s);
    assert_eq!(jobs[1].tenant, jobs[2].tenant);
}

#[test]
fn gpu_time_is_not_required_and_columns_may_come_in_any_order() {
    let jobs = philly::parse(
        b"cluster,num_gpus,duration,timestamp\nvc1,8,10.5,2017-10-01 00:00:10\nvc2,2,3,2017-10-01 00:00:00\n",
        Path::new("t.csv"),
    )
    .unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!((jobs[0].tenant.as_str(), jobs[0].devices, jobs[0].submit_s), ("vc2", 2.0, 0.0));
    assert_eq!((jobs[1].tenant.as_str(), jobs[1].duration_s, jobs[1].submit_s), ("vc1", 10.5, 10.0));
}

#[test]
fn times_cross_months_and_leap_days() {
    let jobs = philly::parse(
        format!("{HEADER}\n2016-03-01 00:00:00,1,1,1,a\n2016-02-28 23:59:59,1,1,1,a\n").as_bytes(),
        Path::new("t.csv"),
    )
    .unwrap();
    assert_eq!(jobs[1].submit_s, 86_401.0, "2016 has a 29 February");
}

#[test]
fn a_missing_column_is_named() {
    match csv_err("timestamp,duration,num_gpus,gpu_time\n2017-10-09 07:01:55,66.0,1,66.0\n") {
        TraceError::MissingColumn { line: 1, column: "cluster", .. } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_fields_are_named_with_line_and_column() {
    let cases = [
        ("2017-10-09 07:01:55,sixty,1,66.0,vc", "duration"),
        ("2017-10-09 07:01:55,-1,1,66.0,vc", "duration"),
        ("2017-10-09 07:01:55,NaN,1,66.0,vc", "duration"),
        ("2017-10-09T07:01:55,66,1,66.0,vc", "timestamp"),
        ("2017-02-30 07:01:55,66,1,66.0,vc", "timestamp"),
        ("2017-10-09 07:01:55,66,0,0,vc", "num_gpus"),
        ("2017-10-09 07:01:55,66,1.5,99,vc", "num_gpus"),
        ("2017-10-09 07:01:55,66,1,66.0,", "cluster"),
    ];
    for (row, want) in cases {
        let err = csv_err(&format!("{HEADER}\n2017-10-09 07:01:55,66.0,1,66.0,vc\n{row}\n"));
        match &err {
            TraceError::BadField { line: 3, column, .. } if *column == want => {}
            other => panic!("{row}: {other:?}"),
        }
        assert!(err.to_string().contains(&format!("line 3, column `{want}`")), "{err}");
    }
}

#[test]
fn empty_files_short_rows_and_headers_alone_are_refused() {
    assert!(matches!(csv_err(""), TraceError::Empty { .. }));
    assert!(matches!(csv_err("\n  \n"), TraceError::Empty { .. }));
    assert!(matches!(csv_err(&format!("{HEADER}\n\n")), TraceError::NoJobs { .. }));
    assert!(matches!(
        csv_err(&format!("{HEADER}\n2017-10-09 07:01:55,66.0,1,vc\n")),
        TraceError::FieldCount { line: 2, expected: 5, found: 4, .. }
    ));
}

#[test]
fn a_missing_file_is_an_io_error() {
    let err = philly::load(Path::new("/nonexistent/pollux_philly.csv")).unwrap_err();
    assert!(matches!(err, TraceError::Io { .. }), "{err:?}");
}

#[test]
fn the_job_log_maps_attempts_outcomes_and_censoring() {
    let PhillyJobLog {
        jobs,
        epoch,
        never_ran,
        attempts_without_times,
        censored,
    } = philly::load_job_log(&fixture("cluster_job_log.json")).unwrap();
    assert_eq!(epoch, "2017-10-07 00:00:00");
    assert_eq!((never_ran, attempts_without_times, censored), (1, 1, 2));
    let got: Vec<_> = jobs
        .iter()
        .map(|j| (j.job_id, j.line, j.submit_s, j.tenant.as_str(), j.devices, j.duration_s, j.outcome))
        .collect();
    use tessera_core::JobOutcome::*;
    assert_eq!(
        got,
        vec![
            // Killed after one hour on 2 machines × 2 GPUs.
            (1, 21, 0.0, "6214e9", 4.0, 3600.0, Some(Killed)),
            // The README's example: two attempts of 8 GPUs, 74 s + 193,182 s.
            (2, 2, 4299.0, "ee9e8c", 8.0, 193_256.0, Some(Completed)),
            // A first attempt with no start time and no GPUs: no run time; GPUs from the second.
            (3, 22, 7140.0, "6214e9", 1.0, 100.0, Some(Failed)),
            // Still running (`null` end): censored at the file's last instant, 06:53:12.
            (4, 24, 172_800.0, "11cb48", 2.0, 3192.0, Some(Unfinished)),
            // Still running (`"None"` end), though its status says Killed.
            (5, 25, 196_800.0, "ee9e8c", 1.0, 192.0, Some(Unfinished)),
        ]
    );
    assert!(jobs.iter().all(|j| j.job_class == "philly" && j.priority == 0));
}

const JOB: &str = r#"{"status": "Pass", "vc": "a", "jobid": "j1", "submitted_time": "2017-10-07 00:00:00",
 "attempts": [{"start_time": "2017-10-07 00:00:01", "end_time": "2017-10-07 00:00:02", "detail": [{"ip": "m1", "gpus": ["gpu0"]}]}]}"#;

#[test]
fn the_job_log_refuses_a_repeated_jobid_naming_both_lines() {
    let text = format!("[\n{JOB},\n{}\n]", JOB.replace("00:00:00", "00:00:05"));
    let err = log_err(&text);
    match &err {
        TraceError::Invalid { line: 4, column, message, .. } => {
            assert_eq!(column, "field `jobid`");
            assert!(message.contains("line 2"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_job_log_names_bad_fields() {
    let cases = [
        (JOB.replace("\"Pass\"", "\"Running\""), "field `status`"),
        (JOB.replace("\"2017-10-07 00:00:00\"", "\"07/10/2017\""), "field `submitted_time`"),
        (JOB.replace("\"2017-10-07 00:00:00\"", "null"), "field `submitted_time`"),
        (JOB.replace("00:00:02", "00:00:00"), "field `attempts[0].end_time`"),
        (JOB.replace("\"2017-10-07 00:00:01\"", "\"yesterday\""), "field `attempts[0].start_time`"),
        (JOB.replace("[\"gpu0\"]", "[]"), "field `attempts`"),
        (JOB.replace("\"vc\": \"a\"", "\"vc\": \"\""), "field `vc`"),
    ];
    for (job, want) in cases {
        let err = log_err(&format!("[\n{JOB},\n{}\n]", job.replace("j1", "j2")));
        match &err {
            TraceError::Invalid { line: 4, column, .. } if column == want => {}
            other => panic!("{want}: {other:?}"),
        }
    }
}

#[test]
fn the_job_log_reports_malformed_json_where_it_is() {
    // A number where the field wants text, on the record's first line (line 4 of the file).
    let err = log_err(&format!("[\n{JOB},\n{}\n]", JOB.replace("\"j1\"", "\"j2\"").replace("\"vc\": \"a\"", "\"vc\": 7")));
    match err {
        TraceError::Json { line: 4, column, .. } => assert!(column > 1, "{column}"),
        other => panic!("{other:?}"),
    }
    // A missing required field.
    let err = log_err(&format!("[{}]", JOB.replace("\"vc\": \"a\", ", "")));
    assert!(matches!(err, TraceError::Json { line: 1 | 2, .. }), "{err:?}");
    // Not an array; never closed; trailing text; a trailing comma.
    assert!(matches!(log_err("{}"), TraceError::Json { line: 1, column: 1, .. }));
    assert!(matches!(log_err(&format!("[\n{JOB}\n")), TraceError::Json { line: 4, .. }));
    assert!(matches!(log_err(&format!("[{JOB}] x")), TraceError::Json { line: 2, .. }));
    assert!(matches!(log_err(&format!("[{JOB},\n]")), TraceError::Json { line: 3, .. }));
    assert!(matches!(log_err(&format!("[{JOB} {JOB}]")), TraceError::Json { line: 2, .. }));
}

#[test]
fn an_empty_job_log_or_one_where_nothing_ran_is_refused() {
    assert!(matches!(log_err(""), TraceError::Empty { .. }));
    assert!(matches!(log_err(" [ ] "), TraceError::NoJobs { .. }));
    let never = JOB.replace(&JOB[JOB.find("[{").unwrap()..JOB.rfind('}').unwrap()], "[]");
    assert!(matches!(log_err(&format!("[{never}]")), TraceError::Invalid { .. }));
}
