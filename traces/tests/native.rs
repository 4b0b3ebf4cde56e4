//! The native format's loader and writer, on good and broken files.

use std::io::Write;
use std::path::{Path, PathBuf};
use tessera_traces::native::{parse_native_csv, NATIVE_HEADER};
use tessera_traces::{load_native_csv, write_native_csv, TraceError, TraceJob};
use tessera_core::JobOutcome;

const HEADER: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class";

/// Writes `content` to a fresh file and loads it; the file lives as long as the returned dir.
fn load(content: &str) -> (Result<Vec<TraceJob>, TraceError>, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.csv");
    std::fs::write(&path, content).unwrap();
    (load_native_csv(&path), path, dir)
}

fn load_err(content: &str) -> (TraceError, String) {
    let (result, path, _dir) = load(content);
    let err = result.expect_err("the loader should refuse this file");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: ", path.display())),
        "error does not name the file: {msg}"
    );
    (err, msg)
}

fn job(id: u64, submit_s: f64) -> TraceJob {
    TraceJob {
        job_id: id,
        submit_s,
        tenant: "alice".into(),
        priority: 0,
        devices: 1.0,
        models: vec![],
        duration_s: 10.0,
        job_class: "resnet50".into(),
        cpu_milli: 0,
        mem_mib: 0,
        outcome: None,
        stated_duration_s: None,
        line: 0,
    }
}

#[test]
fn header_constant_is_the_documented_one() {
    assert_eq!(NATIVE_HEADER, HEADER);
}

#[test]
fn loads_a_well_formed_file() {
    let content =
        format!("{HEADER}\n1,0,alice,0,8,A100-80GB|H100,3600,llm\n2,12.5,\"team, bob\",-1,0.5,,120.25,resnet50\n");
    let (jobs, _, _dir) = load(&content);
    let jobs = jobs.unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        jobs[0],
        TraceJob {
            job_id: 1,
            submit_s: 0.0,
            tenant: "alice".into(),
            priority: 0,
            devices: 8.0,
            models: vec!["A100-80GB".into(), "H100".into()],
            duration_s: 3600.0,
            job_class: "llm".into(),
            cpu_milli: 0,
            mem_mib: 0,
            outcome: None,
            stated_duration_s: None,
            line: 2,
        }
    );
    assert_eq!(jobs[1].tenant, "team, bob");
    assert_eq!(jobs[1].priority, -1);
    assert_eq!(jobs[1].devices, 0.5);
    assert!(jobs[1].models.is_empty(), "an empty models field means any model");
    assert_eq!(jobs[1].line, 3);
}

#[test]
fn columns_in_any_order_and_extra_columns_are_ignored() {
    let content = "note,job_class,duration_s,models,devices,priority,tenant,submit_s,job_id\n\
                   whatever,cls,5,T4,2,3,carol,1.5,42\n";
    let (jobs, _, _dir) = load(content);
    let j = &jobs.unwrap()[0];
    assert_eq!(
        (j.job_id, j.submit_s, j.tenant.as_str(), j.priority),
        (42, 1.5, "carol", 3)
    );
    assert_eq!(
        (j.devices, j.models.clone(), j.duration_s, j.job_class.as_str()),
        (2.0, vec!["T4".to_string()], 5.0, "cls")
    );
}

#[test]
fn quoted_fields_with_commas_quotes_and_newlines() {
    let content = format!("{HEADER}\n1,0,\"say \"\"hi\"\"\",0,1,\"V100|A100\",1,\"multi\nline\"\n2,1,bob,0,1,,1,x\n");
    let (jobs, _, _dir) = load(&content);
    let jobs = jobs.unwrap();
    assert_eq!(jobs[0].tenant, "say \"hi\"");
    assert_eq!(jobs[0].models, vec!["V100", "A100"]);
    assert_eq!(jobs[0].job_class, "multi\nline");
    // The quoted newline counts as a line, as an editor would show it.
    assert_eq!(jobs[1].line, 4);
}

#[test]
fn crlf_bom_spaces_and_blank_lines() {
    let content =
        format!("\u{feff}{HEADER}\r\n 1 , 0.5 ,alice, 2 ,1, T4 | A10 ,3,cls\r\n\r\n2,1,bob,0,1,,1,x\r\n\r\n  \n\n");
    let (jobs, _, _dir) = load(&content);
    let jobs = jobs.unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!((jobs[0].job_id, jobs[0].submit_s, jobs[0].priority), (1, 0.5, 2));
    assert_eq!(jobs[0].models, vec!["T4", "A10"]);
    assert_eq!(jobs[0].job_class, "cls");
    assert_eq!(jobs[1].line, 4);
}

#[test]
fn unsorted_rows_are_sorted_stably_by_submit_time() {
    let content = format!("{HEADER}\n1,30,a,0,1,,1,x\n2,10,a,0,1,,1,x\n3,20,a,0,1,,1,x\n4,10,a,0,1,,1,x\n");
    let (jobs, _, _dir) = load(&content);
    let order: Vec<(u64, u64)> = jobs.unwrap().iter().map(|j| (j.job_id, j.line)).collect();
    // 2 and 4 tie at 10 s and keep their file order.
    assert_eq!(order, vec![(2, 3), (4, 5), (3, 4), (1, 2)]);
}

#[test]
fn empty_file_is_an_error() {
    let (err, msg) = load_err("");
    assert!(matches!(err, TraceError::Empty { .. }), "{msg}");
    assert!(msg.contains("empty"), "{msg}");
    let (err, _) = load_err("\n  \n");
    assert!(matches!(err, TraceError::Empty { .. }));
}

#[test]
fn header_only_file_is_an_error() {
    let (err, msg) = load_err(&format!("{HEADER}\n\n"));
    assert!(matches!(err, TraceError::NoJobs { .. }), "{msg}");
    assert!(msg.contains("no jobs"), "{msg}");
}

#[test]
fn missing_column_names_line_and_column() {
    let (err, msg) = load_err("job_id,tenant,priority,devices,models,duration_s,job_class\n1,a,0,1,,1,x\n");
    assert!(
        matches!(
            err,
            TraceError::MissingColumn {
                line: 1,
                column: "submit_s",
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("line 1, column `submit_s`: required column is missing from the header"),
        "{msg}"
    );
}

#[test]
fn duplicate_required_column_is_an_error() {
    let (err, msg) = load_err(&format!("{HEADER},tenant\n1,0,a,0,1,,1,x,b\n"));
    assert!(matches!(err, TraceError::DuplicateColumn { line: 1, .. }), "{msg}");
    assert!(msg.contains("column `tenant`"), "{msg}");
}

/// One data row (line 3, after a good line 2) with `column` replaced by `value`.
fn bad_row(column: &str, value: &str) -> String {
    let good = ["7", "1", "alice", "0", "1", "", "10", "x"];
    let cols: Vec<&str> = HEADER.split(',').collect();
    let row: Vec<&str> = cols
        .iter()
        .zip(good)
        .map(|(c, g)| if *c == column { value } else { g })
        .collect();
    format!("{HEADER}\n1,0,bob,0,1,,1,x\n{}\n", row.join(","))
}

#[test]
fn bad_numbers_name_file_line_and_column() {
    let cases = [
        ("submit_s", "abc", "expected a number of seconds >= 0, found \"abc\""),
        ("submit_s", "-1", "expected a number of seconds >= 0"),
        ("submit_s", "NaN", "expected a number of seconds >= 0"),
        ("submit_s", "inf", "expected a number of seconds >= 0"),
        ("duration_s", "-5", "expected a number of seconds >= 0, found \"-5\""),
        ("duration_s", "nan", "expected a number of seconds >= 0"),
        ("duration_s", "", "expected a number of seconds >= 0, found \"\""),
        ("job_id", "1.5", "expected a non-negative integer job id"),
        ("job_id", "-3", "expected a non-negative integer job id"),
        ("job_id", "x", "expected a non-negative integer job id"),
        ("devices", "0.0004", "expected a whole device count"),
        ("devices", "-1", "expected a whole device count"),
        ("devices", "1.5", "expected a whole device count"),
        ("devices", "inf", "expected a whole device count"),
        ("priority", "high", "expected an integer priority tier"),
        ("tenant", "", "expected a tenant name"),
        ("models", "V100||A100", "expected device model names separated by `|`"),
    ];
    for (column, value, expected) in cases {
        let (err, msg) = load_err(&bad_row(column, value));
        assert!(
            matches!(&err, TraceError::BadField { line: 3, column: c, .. } if *c == column),
            "{column}={value:?}: {msg}"
        );
        assert!(
            msg.contains(&format!(": line 3, column `{column}`: {expected}")),
            "{column}={value:?}: {msg}"
        );
    }
}

#[test]
fn display_matches_the_documented_shape() {
    let (result, path, _dir) = load(&bad_row("submit_s", "abc"));
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "{}: line 3, column `submit_s`: expected a number of seconds >= 0, found \"abc\"",
            path.display()
        )
    );
}

#[test]
fn duplicate_job_id_names_both_lines() {
    let (err, msg) = load_err(&format!("{HEADER}\n5,0,a,0,1,,1,x\n6,1,a,0,1,,1,x\n5,2,a,0,1,,1,x\n"));
    assert!(
        matches!(
            err,
            TraceError::DuplicateJobId {
                line: 4,
                first_line: 2,
                job_id: 5,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("line 4, column `job_id`: job id 5 was already used on line 2"),
        "{msg}"
    );
}

#[test]
fn wrong_field_count_is_an_error() {
    let (err, msg) = load_err(&format!("{HEADER}\n1,0,a,0,1,,1,x\n2,0,a,0,1,1,x\n"));
    assert!(
        matches!(
            err,
            TraceError::FieldCount {
                line: 3,
                expected: 8,
                found: 7,
                ..
            }
        ),
        "{msg}"
    );
    let (err, _) = load_err(&format!("{HEADER}\n1,0,a,0,1,,1,x,extra\n"));
    assert!(matches!(
        err,
        TraceError::FieldCount {
            line: 2,
            expected: 8,
            found: 9,
            ..
        }
    ));
}

#[test]
fn malformed_quotes_are_errors_with_lines() {
    let (err, msg) = load_err(&format!("{HEADER}\n1,0,a,0,1,,1,x\n2,0,\"open,0,1,,1,x\n"));
    assert!(matches!(err, TraceError::Syntax { line: 3, .. }), "{msg}");
    let (err, msg) = load_err(&format!("{HEADER}\n1,0,\"a\"b,0,1,,1,x\n"));
    assert!(matches!(err, TraceError::Syntax { line: 2, .. }), "{msg}");
}

#[test]
fn invalid_utf8_is_an_error_with_its_line() {
    let mut data = format!("{HEADER}\n1,0,a,0,1,,1,x\n2,0,").into_bytes();
    data.extend_from_slice(b"\xff\xfe,0,1,,1,x\n");
    let err = parse_native_csv(&data, Path::new("mem.csv")).unwrap_err();
    assert!(matches!(err, TraceError::Syntax { line: 3, .. }), "{err}");
    assert!(err.to_string().starts_with("mem.csv: line 3: "));
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = load_native_csv(Path::new("/nonexistent/trace.csv")).unwrap_err();
    assert!(matches!(err, TraceError::Io { .. }));
    assert!(err
        .to_string()
        .starts_with("/nonexistent/trace.csv: cannot read the file"));
}

#[test]
fn write_then_load_round_trips() {
    let mut jobs = vec![
        TraceJob {
            job_id: 1,
            submit_s: 0.1 + 0.2, // not exactly 0.3: the shortest round-trip form must keep it
            tenant: "team, \"quoted\"".into(),
            priority: -7,
            devices: 0.25,
            models: vec!["V100-32GB".into(), "A100-80GB".into()],
            duration_s: 1e-7,
            job_class: " padded ".into(),
            cpu_milli: 12_500,
            mem_mib: 1 << 20,
            outcome: Some(JobOutcome::Unfinished),
            stated_duration_s: Some(0.1 + 0.7),
            line: 0,
        },
        TraceJob {
            tenant: "line\nbreak".into(),
            stated_duration_s: Some(0.0),
            job_class: String::new(),
            ..job(2, 1234567.891)
        },
        TraceJob {
            devices: 4096.0,
            duration_s: 1e12,
            models: vec!["a,b".into()],
            ..job(u64::MAX, 1e9)
        },
    ];
    let mut buf = Vec::new();
    write_native_csv(&mut buf, &jobs).unwrap();
    let text = String::from_utf8(buf.clone()).unwrap();
    assert!(text.starts_with(&format!("{HEADER},cpu_milli,mem_mib,outcome,stated_duration_s\n")));
    assert!(text.ends_with(",0,0,,\n"), "no outcome and no stated duration are empty fields: {text}");
    let back = parse_native_csv(&buf, Path::new("mem.csv")).unwrap();
    for j in &mut jobs {
        j.line = 0;
    }
    let back: Vec<TraceJob> = back.into_iter().map(|j| TraceJob { line: 0, ..j }).collect();
    assert_eq!(back, jobs);
}

#[test]
fn writer_refuses_what_the_loader_would_refuse() {
    let bad = [
        TraceJob {
            submit_s: f64::NAN,
            ..job(1, 0.0)
        },
        TraceJob {
            duration_s: -1.0,
            ..job(1, 0.0)
        },
        TraceJob {
            devices: 1.5,
            ..job(1, 0.0)
        },
        TraceJob {
            devices: 0.0002,
            ..job(1, 0.0)
        },
        TraceJob {
            tenant: String::new(),
            ..job(1, 0.0)
        },
        TraceJob {
            models: vec!["a|b".into()],
            ..job(1, 0.0)
        },
        TraceJob {
            models: vec![String::new()],
            ..job(1, 0.0)
        },
        TraceJob {
            stated_duration_s: Some(-0.5),
            ..job(1, 0.0)
        },
        TraceJob {
            stated_duration_s: Some(f64::INFINITY),
            ..job(1, 0.0)
        },
    ];
    for j in bad {
        let err = write_native_csv(Vec::new(), std::slice::from_ref(&j)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{j:?}");
    }
}

#[test]
fn writes_to_a_file_and_loads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let jobs: Vec<TraceJob> = (0..100).map(|i| job(i, i as f64 * 0.5)).collect();
    let file = std::fs::File::create(&path).unwrap();
    write_native_csv(file, &jobs).unwrap();
    let back = load_native_csv(&path).unwrap();
    assert_eq!(back.len(), 100);
    assert!(back
        .iter()
        .zip(&jobs)
        .all(|(a, b)| TraceJob { line: 0, ..a.clone() } == *b));
    assert_eq!(back[0].line, 2);
}

/// Run with `cargo test --release -p tessera-traces -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release"]
fn one_million_rows_load_fast() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(f, "{HEADER}").unwrap();
    for i in 0..1_000_000u64 {
        let models = if i % 3 == 0 { "V100|A100-80GB" } else { "" };
        writeln!(
            f,
            "{i},{}.{},tenant-{},{},{},{models},{}.5,class-{}",
            i / 10,
            i % 10,
            i % 50,
            i % 3,
            1 + i % 8,
            60 + i % 7200,
            i % 20
        )
        .unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let t = std::time::Instant::now();
    let jobs = load_native_csv(&path).unwrap();
    let elapsed = t.elapsed();
    eprintln!("loaded {} rows in {:?}", jobs.len(), elapsed);
    assert_eq!(jobs.len(), 1_000_000);
    assert!(elapsed.as_secs_f64() < 1.0, "{elapsed:?}");
}

#[test]
fn ids_in_any_order_are_fine_when_unique() {
    let content = format!("{HEADER}\n30,0,a,0,1,,1,x\n10,0,a,0,1,,1,x\n20,0,a,0,1,,1,x\n");
    let (jobs, _, _dir) = load(&content);
    let ids: Vec<u64> = jobs.unwrap().iter().map(|j| j.job_id).collect();
    assert_eq!(ids, vec![30, 10, 20]);
    let (err, _) = load_err(&format!(
        "{HEADER}\n30,0,a,0,1,,1,x\n10,0,a,0,1,,1,x\n20,0,a,0,1,,1,x\n10,5,a,0,1,,1,x\n"
    ));
    assert!(matches!(
        err,
        TraceError::DuplicateJobId {
            line: 5,
            first_line: 3,
            job_id: 10,
            ..
        }
    ));
}

#[test]
fn zero_devices_is_a_cpu_only_job() {
    let csv = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class\n1,0,a,0,0,,10,etl\n2,1,a,0,0.001,,10,x\n";
    let jobs = tessera_traces::native::parse_native_csv(csv.as_bytes(), std::path::Path::new("cpu.csv")).unwrap();
    assert_eq!(jobs[0].devices, 0.0);
    assert_eq!(jobs[1].devices, 0.001);
}

#[test]
fn optional_columns_are_read_and_checked() {
    let csv = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,outcome,cpu_milli,mem_mib\n\
               1,0,a,0,1,,10,x,censored,6000,12288\n2,1,a,0,1,,10,x,,,\n";
    let jobs = parse_native_csv(csv.as_bytes(), Path::new("opt.csv")).unwrap();
    assert_eq!((jobs[0].cpu_milli, jobs[0].mem_mib, jobs[0].outcome), (6000, 12288, Some(JobOutcome::Unfinished)));
    assert_eq!((jobs[1].cpu_milli, jobs[1].mem_mib, jobs[1].outcome), (0, 0, None));
    let bad = csv.replace("censored", "lost");
    let err = parse_native_csv(bad.as_bytes(), Path::new("opt.csv")).unwrap_err().to_string();
    assert!(err.starts_with("opt.csv: line 2, column `outcome`: expected one of completed"), "{err}");
    let bad = csv.replace("6000", "-6");
    let err = parse_native_csv(bad.as_bytes(), Path::new("opt.csv")).unwrap_err().to_string();
    assert!(err.contains("line 2, column `cpu_milli`"), "{err}");
}

#[test]
fn stated_duration_is_read_apart_from_the_run_time() {
    let csv = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,stated_duration_s\n\
               1,0,a,0,1,,10,x,25.5\n2,1,a,0,1,,10,x,\n3,2,a,0,1,,10,x,0\n";
    let jobs = parse_native_csv(csv.as_bytes(), Path::new("stated.csv")).unwrap();
    let stated: Vec<Option<f64>> = jobs.iter().map(|j| j.stated_duration_s).collect();
    assert_eq!(stated, [Some(25.5), None, Some(0.0)]);
    assert!(jobs.iter().all(|j| j.duration_s == 10.0), "the run time stays the run time");
    // Without the column, nothing is stated.
    let jobs = parse_native_csv(format!("{HEADER}\n1,0,a,0,1,,10,x\n").as_bytes(), Path::new("plain.csv")).unwrap();
    assert_eq!(jobs[0].stated_duration_s, None);
}

#[test]
fn a_broken_stated_duration_names_file_line_and_column() {
    for broken in ["-1", "NaN", "inf", "soon", "1e400", "-0.001"] {
        let csv = format!("job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,stated_duration_s\n\
                           1,0,a,0,1,,10,x,3\n2,1,a,0,1,,10,x,{broken}\n");
        let err = parse_native_csv(csv.as_bytes(), Path::new("stated.csv")).unwrap_err();
        assert!(
            matches!(&err, TraceError::BadField { line: 3, column: "stated_duration_s", .. }),
            "{broken}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.starts_with("stated.csv: line 3, column `stated_duration_s`: expected a number of seconds >= 0"),
            "{broken}: {msg}"
        );
    }
}

#[test]
fn outcomes_are_the_one_vocabulary_and_censored_reads_as_unfinished() {
    let csv = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,outcome\n\
               1,0,a,0,1,,10,x,completed\n2,1,a,0,1,,10,x,oom\n3,2,a,0,1,,10,x,cancelled\n\
               4,3,a,0,1,,10,x,rejected\n5,4,a,0,1,,10,x,unfinished\n6,5,a,0,1,,10,x,censored\n";
    let jobs = parse_native_csv(csv.as_bytes(), Path::new("outcomes.csv")).unwrap();
    use tessera_core::JobOutcome as O;
    let got: Vec<Option<O>> = jobs.iter().map(|j| j.outcome).collect();
    assert_eq!(got, [Some(O::Completed), Some(O::Oom), Some(O::Cancelled), Some(O::Rejected), Some(O::Unfinished), Some(O::Unfinished)]);
    // Written back, the old name becomes the one name.
    let mut out = Vec::new();
    write_native_csv(&mut out, &jobs).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("censored") && text.matches(",unfinished,").count() == 2, "{text}");
}

#[test]
fn extra_columns_are_written_after_the_native_ones_and_ignored_when_read() {
    let jobs = vec![job(1, 0.0), job(2, 1.5)];
    let mut out = Vec::new();
    tessera_traces::write_native_csv_with_extras(&mut out, &jobs, &["start_s", "note"], |i, f| {
        f.push(format!("{}", i as f64 * 2.0));
        f.push(if i == 0 { "a, quoted".into() } else { String::new() });
    })
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), format!("{},start_s,note", tessera_traces::native::NATIVE_HEADER_FULL));
    assert!(lines.next().unwrap().ends_with(",0,\"a, quoted\""), "{text}");
    assert!(lines.next().unwrap().ends_with(",2,"), "{text}");
    let back = parse_native_csv(text.as_bytes(), Path::new("x.csv")).unwrap();
    let back: Vec<TraceJob> = back.into_iter().map(|j| TraceJob { line: 0, ..j }).collect();
    assert_eq!(back, jobs, "the extras change nothing the loader returns");

    let clash = tessera_traces::write_native_csv_with_extras(Vec::new(), &jobs, &["outcome"], |_, f| f.push(String::new())).unwrap_err();
    assert!(clash.to_string().contains("`outcome` is a native column"), "{clash}");
    let short = tessera_traces::write_native_csv_with_extras(Vec::new(), &jobs, &["a", "b"], |_, f| f.push(String::new())).unwrap_err();
    assert!(short.to_string().contains("job 1: 1 extra fields for 2 extra columns"), "{short}");
}
