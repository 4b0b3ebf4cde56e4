//! The native schema in Parquet: round trip, and broken files written with other schemas.

use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::path::Path;
use std::sync::Arc;
use tessera_traces::{load_native_parquet, write_native_parquet, TraceJob};
use tessera_core::JobOutcome;

fn job(id: u64, submit_s: f64) -> TraceJob {
    let mut j = TraceJob::new(id, submit_s, "alice", 2.0, 600.0);
    j.job_class = "resnet50".into();
    j
}

#[test]
fn write_then_load_round_trips_and_sorts_by_submission() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.parquet");
    let mut late = job(1, 50.0);
    late.models = vec!["V100-32GB".into(), "A100-80GB".into()];
    late.outcome = Some(JobOutcome::Unfinished);
    late.cpu_milli = 6000;
    late.mem_mib = 12288;
    late.stated_duration_s = Some(7200.5);
    let mut share = job(2, 10.0);
    share.devices = 0.25;
    share.priority = -3;
    let jobs = vec![late, share, job(3, 10.0)];
    write_native_parquet(&path, &jobs).unwrap();
    let back = load_native_parquet(&path).unwrap();
    let ids: Vec<u64> = back.iter().map(|j| j.job_id).collect();
    assert_eq!(ids, vec![2, 3, 1], "sorted by submit_s, ties in file order");
    for got in &back {
        let want = jobs.iter().find(|j| j.job_id == got.job_id).unwrap();
        assert_eq!(TraceJob { line: 0, ..got.clone() }, *want);
    }
    assert_eq!(back[2].line, 1, "line is the row number in the file");
}

/// Writes a file with a two-column schema of the caller's choice.
fn write_two_columns(path: &Path, schema: &str, ids: &[i64], second: Second) {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut col = group.next_column().unwrap().unwrap();
    col.typed::<Int64Type>().write_batch(ids, None, None).unwrap();
    col.close().unwrap();
    let mut col = group.next_column().unwrap().unwrap();
    let Second::Float(values) = second;
    col.typed::<DoubleType>().write_batch(&values, None, None).unwrap();
    col.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

enum Second {
    Float(Vec<f64>),
}

#[test]
fn a_missing_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.parquet");
    write_two_columns(&path, "message m { REQUIRED INT64 job_id; REQUIRED DOUBLE submit_s; }", &[1], Second::Float(vec![0.0]));
    let err = load_native_parquet(&path).unwrap_err().to_string();
    assert!(err.contains("short.parquet") && err.contains("column `tenant`: required column is missing"), "{err}");
}

/// A complete file but for one column, whose type or value the test chooses.
fn full_file(path: &Path, broken: &str) {
    let mut jobs = vec![job(1, 0.0), job(2, 5.0)];
    match broken {
        "duplicate" => jobs[1].job_id = 1,
        "negative duration" => jobs[1].duration_s = -1.0,
        "bad devices" => jobs[1].devices = 1.5,
        "negative stated" => jobs[1].stated_duration_s = Some(-2.0),
        "NaN stated" => jobs[1].stated_duration_s = Some(f64::NAN),
        _ => {}
    }
    // The writer refuses nothing, so the loader must.
    write_native_parquet(path, &jobs).unwrap();
}

#[test]
fn bad_values_are_named_by_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    for (broken, needle) in [
        ("duplicate", "line 2, column `job_id`: job id 1 was already used on line 1"),
        ("negative duration", "line 2, column `duration_s`: expected a number of seconds >= 0"),
        ("bad devices", "line 2, column `devices`: expected a whole device count"),
        ("negative stated", "line 2, column `stated_duration_s`: expected a number of seconds >= 0"),
        ("NaN stated", "line 2, column `stated_duration_s`: expected a number of seconds >= 0"),
    ] {
        let path = dir.path().join("broken.parquet");
        full_file(&path, broken);
        let err = load_native_parquet(&path).unwrap_err().to_string();
        assert!(err.contains("broken.parquet") && err.contains(needle), "{broken}: {err}");
    }
}

/// A one-row file with every required column, where `submit_s` is text instead of a number.
fn file_with_text_submit(path: &Path) {
    let schema = "message m { REQUIRED INT64 job_id; REQUIRED BYTE_ARRAY submit_s (UTF8); REQUIRED BYTE_ARRAY tenant (UTF8); \
                  REQUIRED INT64 priority; REQUIRED DOUBLE devices; REQUIRED BYTE_ARRAY models (UTF8); \
                  REQUIRED DOUBLE duration_s; REQUIRED BYTE_ARRAY job_class (UTF8); }";
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let mut writer =
        SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, Arc::new(WriterProperties::builder().build())).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut i = 0;
    while let Some(mut col) = group.next_column().unwrap() {
        match i {
            0 | 3 => col.typed::<Int64Type>().write_batch(&[1], None, None).unwrap(),
            4 | 6 => col.typed::<DoubleType>().write_batch(&[1.0], None, None).unwrap(),
            1 => col.typed::<ByteArrayType>().write_batch(&[ByteArray::from("soon")], None, None).unwrap(),
            _ => col.typed::<ByteArrayType>().write_batch(&[ByteArray::from("x")], None, None).unwrap(),
        };
        col.close().unwrap();
        i += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn a_column_of_the_wrong_type_is_an_error_not_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typed.parquet");
    file_with_text_submit(&path);
    let err = load_native_parquet(&path).unwrap_err().to_string();
    assert!(err.contains("typed.parquet: line 1, column `submit_s`: expected a number of seconds >= 0, found \"\\\"soon\\\"\""), "{err}");
    // An INT64 priority (other tools write 64-bit integers) is read, and an empty tenant refused.
    let mut jobs = vec![job(1, 0.0)];
    jobs[0].tenant = String::new();
    write_native_parquet(&path, &jobs).unwrap();
    let err = load_native_parquet(&path).unwrap_err().to_string();
    assert!(err.contains("line 1, column `tenant`: expected a tenant name"), "{err}");
}

#[test]
fn not_a_parquet_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.parquet");
    std::fs::write(&path, "job_id,submit_s\n1,0\n").unwrap();
    let err = load_native_parquet(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}", path.display())), "{err}");
}

/// A file on which the `parquet` crate itself panics (a page using a dictionary its column
/// chunk never set; found by fuzz/trace_native_parquet) is an error naming the file.
#[test]
fn a_file_the_parquet_reader_panics_on_is_an_error_naming_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/trace_native_parquet/crash-dict-decoder-not-set.parquet");
    let err = load_native_parquet(&path).expect_err("a malformed file");
    let text = err.to_string();
    assert!(text.contains("crash-dict-decoder-not-set.parquet"), "{text}");
    assert!(text.contains("malformed Parquet file") && text.contains("Decoder for dict"), "{text}");
}
