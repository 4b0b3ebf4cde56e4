// The bodies of the fuzz targets (fuzz/fuzz_targets/*.rs), one function per target, each
// feeding its input to the project's real entry point and asserting that it returns (an error
// is fine) without panicking, plus the few properties an accepted input must have.
//
// This file is also `include!`d by the workspace test tests/fuzz_corpus.rs, which replays the
// committed corpus (fuzz/corpus/<target>/) through the very same functions on stable Rust, so
// it uses only crates the root package depends on, and no inner attributes or `//!` docs.

use std::path::{Path, PathBuf};
use tessera_traces::source::GivenOption;

/// Every target: its name (the folder of its corpus, the file of its fuzz target) and body.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("job_spec_json", job_spec_json),
    ("job_spec_toml", job_spec_toml),
    ("exec_toml", exec_toml),
    ("scenario_toml", scenario_toml),
    ("journal_row", journal_row),
    ("trace_native_csv", trace_native_csv),
    ("trace_native_parquet", trace_native_parquet),
    ("trace_philly", trace_philly),
    ("trace_philly_log", trace_philly_log),
    ("trace_itp", trace_itp),
    ("trace_openb", trace_openb),
    ("trace_gavel", trace_gavel),
    ("trace_tiresias", trace_tiresias),
    ("trace_pollux", trace_pollux),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// What `validate()` admits stays within `tessera_core::limits`, whatever serde let through.
fn check_submission_bounds(s: &tessera_exec::JobSubmission) {
    use tessera_core::limits::{MAX_DEVICES_PER_JOB, MAX_DURATION_S, MAX_MEM_MIB, MAX_RETRIES};
    for v in [s.time_limit_s, s.stated_duration_s].into_iter().flatten() {
        assert!(v.is_finite() && v >= 0.0 && v <= MAX_DURATION_S, "validate() admitted a duration of {v} s");
    }
    assert!(s.devices.count <= MAX_DEVICES_PER_JOB, "validate() admitted {} devices", s.devices.count);
    assert!(s.devices.share > 0.0 && s.devices.share <= 1.0, "validate() admitted a share of {}", s.devices.share);
    assert!(s.mem_mib <= MAX_MEM_MIB, "validate() admitted {} MiB", s.mem_mib);
    assert!(s.retries.is_none_or(|r| r <= MAX_RETRIES), "validate() admitted {:?} retries", s.retries);
}

/// `POST /v1/jobs` with a JSON body: `spec::parse_json` (which validates).
pub fn job_spec_json(data: &[u8]) {
    if let Ok(s) = tessera_exec::spec::parse_json(&text(data)) {
        s.validate().expect("parse_json returned a submission that validate() refuses");
        check_submission_bounds(&s);
    }
}

/// `tessera exec submit JOB.toml` and `POST /v1/jobs` with TOML: `spec::parse_toml`.
pub fn job_spec_toml(data: &[u8]) {
    if let Ok(s) = tessera_exec::spec::parse_toml(&text(data), "fuzz.toml") {
        s.validate().expect("parse_toml returned a submission that validate() refuses");
        check_submission_bounds(&s);
    }
}

/// `exec.toml` as `tessera exec serve` reads it: `serve::ServeConfig::parse` (its [daemon]
/// and [api] tables, with their validation). Relative paths resolve against a folder that
/// does not exist: parsing reads no file.
pub fn exec_toml(data: &[u8]) {
    let _ = tessera_exec::serve::ServeConfig::parse(&text(data), "fuzz-exec.toml", Path::new("/nonexistent/tessera-fuzz"));
}

/// A scenario file: `Scenario::from_toml_str` (syntax, schema and validation).
pub fn scenario_toml(data: &[u8]) {
    let _ = tessera_sim::scenario::Scenario::from_toml_str(&text(data), Path::new("/nonexistent/tessera-fuzz/scenario.toml"));
}

/// A valid `jobs` row as the executor journals it, to which `journal_row` gives arbitrary
/// field values.
const TEMPLATE_ROW: &str = r#"{"id":7,"owner":"alice","submission":{"name":"train","command":"sh","args":["-c","sleep 1"],"env":{"A":"1"},"workdir":null,"devices":{"count":1,"share":1.0,"models":[]},"cpu_milli":0,"mem_mib":0,"tenant":"team-a","priority":0,"checkpointable":false,"time_limit_s":60.0,"stated_duration_s":30.0,"retries":null,"warmup":[],"job_class":null},"state":"running","submit_us":1000,"first_start_us":2000,"run_start_us":2000,"end_us":null,"run_us":0,"exit_code":null,"runs":1,"preemptions":0,"pid":4242,"pgid":4242,"start_ticks":123456,"allocation":null,"devices":["cpu0"],"error":null,"wait_reason":null,"launch_reason":null,"stop":null,"spawn_failures":0,"stop_deadline_us":null}"#;

/// The row's fields, with `submission.` for the submission's own.
const ROW_FIELDS: &[&str] = &[
    "id", "owner", "submission", "state", "submit_us", "first_start_us", "run_start_us", "end_us", "run_us", "exit_code", "runs",
    "preemptions", "pid", "pgid", "start_ticks", "allocation", "devices", "error", "wait_reason", "launch_reason", "stop",
    "spawn_failures", "stop_deadline_us", "submission.name", "submission.command", "submission.args", "submission.env",
    "submission.workdir", "submission.devices", "submission.cpu_milli", "submission.mem_mib", "submission.tenant",
    "submission.priority", "submission.checkpointable", "submission.time_limit_s", "submission.stated_duration_s",
    "submission.retries", "submission.warmup", "submission.job_class",
    // The ledger's field added after the others (absent from older journals: 0).
    "restarts",
];

/// Journal rows as recovery reads them (`journal::decode_job_row`, then, for a live job, the
/// submission's validation, which decides quarantine), and saved scheduler states
/// (`job_state`, decoded as `RestoredJob`). The first byte picks the mode: even, the rest is
/// the whole row's text; odd, the second byte picks one field of a valid row and the rest is
/// its value (JSON if it parses as JSON, else a string), so that arbitrary values reach every
/// field past the parts that must be well-formed.
pub fn journal_row(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let row_text = if mode % 2 == 0 {
        text(rest).into_owned()
    } else {
        let Some((&pick, value)) = rest.split_first() else { return };
        let value_text = text(value);
        let value: serde_json::Value = serde_json::from_str(&value_text).unwrap_or(serde_json::Value::String(value_text.into_owned()));
        let mut row: serde_json::Value = serde_json::from_str(TEMPLATE_ROW).expect("the template row is JSON");
        let field = ROW_FIELDS[usize::from(pick) % ROW_FIELDS.len()];
        match field.split_once('.') {
            Some((outer, inner)) => row[outer][inner] = value,
            None => row[field] = value,
        }
        row.to_string()
    };
    if let Ok(row) = tessera_exec::journal::decode_job_row(&row_text) {
        if row.state.is_live() {
            if row.submission.validate().is_ok() {
                check_submission_bounds(&row.submission);
            }
        }
    }
    let _ = serde_json::from_str::<tessera_core::RestoredJob>(&row_text);
}

/// Writes the input to a file of this process and thread (a loader reads a path), named with
/// `file_name`'s extension, which some loaders go by.
fn input_file(data: &[u8], file_name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let thread = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let path = dir.join(format!("{thread}-{file_name}"));
    std::fs::write(&path, data).expect("the input written to a temporary file");
    path
}

/// A trace through `source::load`, the one entry point of scenarios and `tessera trace`
/// (the format's loader, then the bounds every job is checked against), and, when it loads,
/// `tessera trace stats` over its jobs.
fn trace(format: &str, data: &[u8], file_name: &str, options: Vec<(String, GivenOption)>) {
    let format = tessera_traces::source::find(format).expect("a registered format");
    let options = tessera_traces::source::check_options(format, options).expect("the target's options suit its format");
    let path = input_file(data, file_name);
    if let Ok(loaded) = tessera_traces::source::load(format, &path, &options) {
        let stats = tessera_traces::stats::trace_stats(&loaded.jobs, loaded.day_offset_s);
        let _ = stats.render();
    }
}

fn no_options() -> Vec<(String, GivenOption)> {
    Vec::new()
}

pub fn trace_native_csv(data: &[u8]) {
    trace("native", data, "trace.csv", no_options());
}

/// The native schema in Parquet: the `parquet` crate reads the footer and pages.
pub fn trace_native_parquet(data: &[u8]) {
    trace("native", data, "trace.parquet", no_options());
}

pub fn trace_philly(data: &[u8]) {
    trace("philly", data, "pollux_philly.csv", no_options());
}

pub fn trace_philly_log(data: &[u8]) {
    trace("philly-log", data, "cluster_job_log", no_options());
}

pub fn trace_itp(data: &[u8]) {
    trace("itp", data, "cluster01.csv", no_options());
}

/// openb pod lists through `source::load`, and the same bytes as a node list
/// (`openb::parse_nodes`, which `[cluster] path` scenarios read) with its rendering.
pub fn trace_openb(data: &[u8]) {
    trace("openb", data, "openb_pod_list.csv", no_options());
    if let Ok(nodes) = tessera_traces::openb::parse_nodes(data, Path::new("openb_node_list.csv")) {
        let _ = tessera_traces::stats::render_nodes(&nodes);
    }
}

/// A Gavel throughput table (traces/tests/fixtures/gavel/throughputs.json), for the trace's
/// rows to be timed by.
const GAVEL_THROUGHPUTS: &str = r#"{"k80": {"('ResNet-18 (batch size 64)', 1)": {"null": 2.0, "('LM (batch size 5)', 1)": [1.5, 0.5]}, "('ResNet-18 (batch size 64)', 2)": {"null": 3.0}, "('LM (batch size 5)', 1)": {"null": 1.0, "('ResNet-18 (batch size 64)', 1)": [0.5, 1.5]}, "('Big (batch size 128)', 2)": {"null": 0.0}}, "v100": {"('ResNet-18 (batch size 64)', 1)": {"null": 10.0}, "('ResNet-18 (batch size 64)', 2)": {"null": 12.0}, "('LM (batch size 5)', 1)": {"null": 4.0}, "('Big (batch size 128)', 2)": {"null": 5.0}}, "v100_unconsolidated": {"('ResNet-18 (batch size 64)', 2)": {"null": 11.0}}}"#;

/// Gavel `.trace` rows, timed by a fixed throughput table (`source::load`); the same bytes as
/// a throughput table (`Throughputs::parse`) and as a speed CSV (`gavel::parse_speed_csv`).
pub fn trace_gavel(data: &[u8]) {
    let table = input_file(GAVEL_THROUGHPUTS.as_bytes(), "simulation_throughputs.json");
    let skip_unmeasured = serde_json::Value::Bool(data.first().is_some_and(|b| b % 2 == 1));
    let options = vec![
        ("throughputs".to_string(), GivenOption::Text(table.to_string_lossy().into_owned())),
        ("skip_unmeasured".to_string(), GivenOption::Value(skip_unmeasured)),
    ];
    trace("gavel", data, "gavel.trace", options);
    if let Ok(t) = tessera_traces::gavel::Throughputs::parse(&text(data), Path::new("throughputs.json")) {
        let _ = t.models();
        let _ = t.job_types();
    }
    let _ = tessera_traces::gavel::parse_speed_csv(data, Path::new("speed.csv"));
}

/// Tiresias job files through `source::load`, and the same bytes as a cluster spec.
pub fn trace_tiresias(data: &[u8]) {
    trace("tiresias", data, "60_job.csv", no_options());
    if let Ok(c) = tessera_traces::tiresias::parse_cluster_spec(data, Path::new("cluster_spec.csv")) {
        let _ = (c.nodes(), c.gpus());
    }
}

/// Pollux workloads, with `scenarios/pollux-workload.toml`'s work per application.
pub fn trace_pollux(data: &[u8]) {
    let work_s = serde_json::json!({ "cifar10": 3600.0, "ncf": 1800.0, "bert": 7200.0, "deepspeech2": 14400.0, "imagenet": 43200.0, "yolov3": 28800.0 });
    trace("pollux", data, "workload-1.csv", vec![("work_s".to_string(), GivenOption::Value(work_s))]);
}
