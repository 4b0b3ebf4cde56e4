//! The native trace format: one CSV file of jobs, the schema every other loader maps into.
//!
//! # Format
//!
//! A UTF-8 CSV file (RFC 4180 quoting) whose first non-blank line is a header naming the
//! columns. These columns are required, in any order:
//!
//! | column       | type                  | meaning                                                        |
//! |--------------|-----------------------|----------------------------------------------------------------|
//! | `job_id`     | integer >= 0          | unique within the file                                         |
//! | `submit_s`   | seconds >= 0          | submission time since the trace's epoch (decimal, e.g. `12.5`) |
//! | `tenant`     | text, not empty       | user, team or virtual cluster                                  |
//! | `priority`   | integer (i32)         | priority tier: larger is more important                        |
//! | `devices`    | number >= 0           | a whole count (`1`, `8`; `0` for a CPU-only job), or a share of one device from 0.001 to below 1 (`0.25`) |
//! | `models`     | text                  | allowed device models separated by `\|` (`V100\|A100`); empty = any |
//! | `duration_s` | seconds >= 0          | the job's run time on its reference device                     |
//! | `job_class`  | text, may be empty    | the row key of the speed matrix (e.g. `resnet50`)               |
//!
//! These columns are optional; a missing column means the default for every row, an empty
//! field the default for that row:
//!
//! | column      | type           | default | meaning                                                |
//! |-------------|----------------|---------|--------------------------------------------------------|
//! | `cpu_milli` | integer >= 0   | 0       | CPU over the whole job, in thousandths of a core       |
//! | `mem_mib`   | integer >= 0   | 0       | memory over the whole job, in MiB                      |
//! | `outcome`   | text           | unknown | how the job ended in the recorded system, in tessera's one vocabulary of outcomes ([`tessera_core::JobOutcome`]): `completed`, `failed`, `killed`, `oom`, `cancelled`, `rejected`, or `unfinished` (still queued or running when the trace ended, so `duration_s` is a lower bound); `censored`, this column's older name for `unfinished`, is still read |
//! | `stated_duration_s` | seconds >= 0 | none | the run time the job declared when it was submitted (what `sjf`, `srtf` and backfilling rank by), as opposed to `duration_s`, the time it actually ran; none stated: the simulator uses `duration_s` (times `[models] estimate_error` where set) |
//!
//! ```text
//! job_id,submit_s,tenant,priority,devices,models,duration_s,job_class
//! 1,0,alice,0,8,A100-80GB|H100,3600,llm-pretrain
//! 2,12.5,"team, bob",1,0.5,,120.25,resnet50
//! ```
//!
//! Rules, so that nothing is dropped or guessed silently:
//!
//! - **Extra columns** (not in the table above) are allowed and ignored, so that a trace can
//!   carry annotations: [`write_native_csv_with_extras`] writes them after the native columns
//!   (the executor's `export-trace` writes what it observed of each run that way). A required column that is missing, or named twice, is an error.
//! - Every row must have as many fields as the header; a short or long row is an error.
//! - Numbers must be finite: `NaN`, `inf` and negative times are errors, as are a job id that is
//!   not a non-negative integer and a device count that is `<= 0` or a non-whole number above 1.
//! - A job id used twice is an error that names both lines.
//! - An empty file (no header) and a header without any job are errors.
//! - **Unsorted rows are repaired, not refused:** the loader returns jobs sorted by `submit_s`,
//!   stably, so jobs submitted at the same instant keep their file order. [`TraceJob::line`]
//!   still says where each came from.
//! - Blank lines (empty or only whitespace) carry no job and are skipped wherever they are,
//!   trailing ones included.
//! - Fields in double quotes may contain commas, newlines and doubled quotes (`""`); quoted
//!   text is taken verbatim. Unquoted fields have surrounding spaces and tabs trimmed.
//!   A leading UTF-8 byte-order mark and `\r\n` line ends are accepted.
//!
//! Every error names the file, the 1-based line and, for a field, the column (see
//! [`TraceError`]).
//!
//! Loading reads the file once into memory and borrows fields from it: the only allocations
//! per row are the strings a [`TraceJob`] owns.

use crate::csv::{self, parse_f64, IdHasher, Table};
use crate::TraceError;
use tessera_core::JobOutcome;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::{self, Write};
use std::path::Path;

/// One job of a native trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceJob {
    pub job_id: u64,
    /// Submission time in seconds since the trace's epoch.
    pub submit_s: f64,
    pub tenant: String,
    /// Priority tier: larger is more important.
    pub priority: i32,
    /// A whole device count (1.0, 8.0), or a share of one device (< 1.0, e.g. 0.25).
    pub devices: f64,
    /// Allowed device model names as written in the trace; empty means any model.
    pub models: Vec<String>,
    /// Run time in seconds on the job's reference device.
    pub duration_s: f64,
    pub job_class: String,
    /// CPU over the whole job in thousandths of a core (0: none stated).
    pub cpu_milli: u32,
    /// Memory over the whole job in MiB (0: none stated).
    pub mem_mib: u64,
    /// How the job ended in the recorded system, where the trace says.
    pub outcome: Option<JobOutcome>,
    /// The run time in seconds the job declared at submission, where the trace says; what
    /// duration-ranking policies saw in the recorded system, not the time it ran.
    pub stated_duration_s: Option<f64>,
    /// The 1-based line of the file the job was read from (0 for a job built in code).
    pub line: u64,
}

impl TraceJob {
    /// A job with the given essentials and every optional field at its default, for loaders
    /// to fill in further.
    pub fn new(job_id: u64, submit_s: f64, tenant: impl Into<String>, devices: f64, duration_s: f64) -> TraceJob {
        TraceJob {
            job_id,
            submit_s,
            tenant: tenant.into(),
            priority: 0,
            devices,
            models: Vec::new(),
            duration_s,
            job_class: String::new(),
            cpu_milli: 0,
            mem_mib: 0,
            outcome: None,
            stated_duration_s: None,
            line: 0,
        }
    }
}

/// The header [`write_native_csv`] writes, and the columns the loader requires.
pub const NATIVE_HEADER: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class";

/// The required columns, then the optional ones.
const COLUMNS: [&str; 12] = [
    "job_id",
    "submit_s",
    "tenant",
    "priority",
    "devices",
    "models",
    "duration_s",
    "job_class",
    "cpu_milli",
    "mem_mib",
    "outcome",
    "stated_duration_s",
];
const REQUIRED: [bool; 12] = [true, true, true, true, true, true, true, true, false, false, false, false];
const JOB_ID: usize = 0;
const SUBMIT_S: usize = 1;
const TENANT: usize = 2;
const PRIORITY: usize = 3;
const DEVICES: usize = 4;
const MODELS: usize = 5;
const DURATION_S: usize = 6;
const JOB_CLASS: usize = 7;

const CPU_MILLI: usize = 8;
const MEM_MIB: usize = 9;
const OUTCOME: usize = 10;
const STATED_DURATION_S: usize = 11;

/// The header [`write_native_csv`] writes: the required columns, then the optional ones.
pub const NATIVE_HEADER_FULL: &str =
    "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,cpu_milli,mem_mib,outcome,stated_duration_s";

pub(crate) const EXPECT_JOB_ID: &str = "a non-negative integer job id";
pub(crate) use crate::csv::EXPECT_SECONDS;
pub(crate) const EXPECT_TENANT: &str = "a tenant name";
pub(crate) const EXPECT_PRIORITY: &str = "an integer priority tier";
pub(crate) const EXPECT_DEVICES: &str = "a whole device count (0 for a CPU-only job), or a share of one device from 0.001 to below 1";
pub(crate) const EXPECT_CPU_MILLI: &str = "an integer number of milli-cores >= 0";
pub(crate) const EXPECT_MEM_MIB: &str = "an integer number of MiB >= 0";
pub(crate) const EXPECT_OUTCOME: &str = "one of completed, failed, killed, oom, cancelled, rejected, unfinished (or its older name censored), or nothing";
pub(crate) const EXPECT_MODELS: &str = "device model names separated by `|`, or nothing for any model";

/// Reads a native trace file. See the [module documentation](self) for the format and rules.
pub fn load_native_csv(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    parse_native_csv(&csv::read(path)?, path)
}

/// Parses a native trace held in memory; `origin` is the name errors give for it.
pub fn parse_native_csv(data: &[u8], origin: &Path) -> Result<Vec<TraceJob>, TraceError> {
    let text = csv::text(data, origin)?;
    let mut t = Table::open(text, origin, NATIVE_HEADER)?;
    let col = t.columns(&COLUMNS, &REQUIRED)?;

    // A rough guess of the row count, so that the vector and the id map rarely grow.
    let estimate = (text.len() / 48).min(1 << 24);
    let mut jobs: Vec<TraceJob> = Vec::with_capacity(estimate);
    // Job ids are usually increasing, and then none can repeat: the map from id to line is
    // only built (from the jobs so far) once an id is not larger than the one before.
    let mut first_line_of: Option<HashMap<u64, u64, BuildHasherDefault<IdHasher>>> = None;

    while t.next_row()? {
        let line = t.line();
        let field = |c: usize| t.get(col[c]);
        let bad = |c: usize, expected: &'static str| t.bad(col[c], COLUMNS[c], expected);

        let job_id: u64 = field(JOB_ID).parse().map_err(|_| bad(JOB_ID, EXPECT_JOB_ID))?;
        let submit_s = csv::seconds(field(SUBMIT_S)).ok_or_else(|| bad(SUBMIT_S, EXPECT_SECONDS))?;
        let tenant = field(TENANT);
        if tenant.is_empty() {
            return Err(bad(TENANT, EXPECT_TENANT));
        }
        let priority: i32 = field(PRIORITY).parse().map_err(|_| bad(PRIORITY, EXPECT_PRIORITY))?;
        let devices = parse_devices(field(DEVICES)).ok_or_else(|| bad(DEVICES, EXPECT_DEVICES))?;
        let models = parse_models(field(MODELS)).ok_or_else(|| bad(MODELS, EXPECT_MODELS))?;
        let duration_s = csv::seconds(field(DURATION_S)).ok_or_else(|| bad(DURATION_S, EXPECT_SECONDS))?;
        let cpu_milli: u32 = match field(CPU_MILLI) {
            "" => 0,
            text => text.parse().map_err(|_| bad(CPU_MILLI, EXPECT_CPU_MILLI))?,
        };
        let mem_mib: u64 = match field(MEM_MIB) {
            "" => 0,
            text => text.parse().map_err(|_| bad(MEM_MIB, EXPECT_MEM_MIB))?,
        };
        let outcome = match field(OUTCOME) {
            "" => None,
            text => Some(JobOutcome::parse(text).ok_or_else(|| bad(OUTCOME, EXPECT_OUTCOME))?),
        };
        let stated_duration_s = match field(STATED_DURATION_S) {
            "" => None,
            text => Some(csv::seconds(text).ok_or_else(|| bad(STATED_DURATION_S, EXPECT_SECONDS))?),
        };

        let increasing = jobs.last().is_none_or(|last| job_id > last.job_id);
        if !increasing && first_line_of.is_none() {
            let mut map = HashMap::with_capacity_and_hasher(estimate.max(jobs.len() * 2), Default::default());
            map.extend(jobs.iter().map(|j| (j.job_id, j.line)));
            first_line_of = Some(map);
        }
        if let Some(map) = &mut first_line_of {
            if let Some(&first_line) = map.get(&job_id) {
                return Err(TraceError::DuplicateJobId {
                    path: origin.to_path_buf(),
                    line,
                    column: COLUMNS[JOB_ID],
                    job_id,
                    first_line,
                });
            }
            map.insert(job_id, line);
        }

        jobs.push(TraceJob {
            job_id,
            submit_s,
            tenant: tenant.to_string(),
            priority,
            devices,
            models,
            duration_s,
            job_class: field(JOB_CLASS).to_string(),
            cpu_milli,
            mem_mib,
            outcome,
            stated_duration_s,
            line,
        });
    }

    if jobs.is_empty() {
        return Err(t.no_jobs());
    }
    // The documented repair for unsorted traces, stable: equal submit times keep their file
    // order, which the simulator's tie-breaking relies on.
    csv::sort_by_submit(&mut jobs);
    Ok(jobs)
}

/// Writes jobs in the native format, header first, columns in [`NATIVE_HEADER_FULL`] order.
///
/// Numbers are written in their shortest form that parses back to the same `f64`, so
/// `load_native_csv` returns the same jobs (but for [`TraceJob::line`], which becomes the line
/// written). Text is quoted where it needs to be. Jobs the loader would refuse (a non-finite
/// or negative time, a bad device count, an empty tenant, a model name that is empty or holds
/// `|`) are refused here with [`io::ErrorKind::InvalidInput`], before anything of that job is
/// written. Duplicate job ids are not checked. An empty `jobs` writes only the header, which
/// the loader refuses as a trace without jobs.
pub fn write_native_csv(w: impl Write, jobs: &[TraceJob]) -> io::Result<()> {
    write_native_csv_with_extras(w, jobs, &[], |_, _| {})
}

/// [`write_native_csv`], then `extra_columns` after the native ones: annotations the loader
/// ignores (see the module's rules), such as what a system observed of each job's runs.
/// `extras(i, fields)` pushes the text of job `jobs[i]`'s extra fields, one per extra column
/// (quoted here where needed). An extra column named like a native one, or a job given
/// another number of extra fields than there are extra columns, is refused with
/// [`io::ErrorKind::InvalidInput`].
pub fn write_native_csv_with_extras(
    w: impl Write,
    jobs: &[TraceJob],
    extra_columns: &[&str],
    mut extras: impl FnMut(usize, &mut Vec<String>),
) -> io::Result<()> {
    if let Some(c) = extra_columns.iter().find(|c| COLUMNS.contains(c)) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("extra column `{c}` is a native column")));
    }
    let mut out = io::BufWriter::with_capacity(1 << 16, w);
    out.write_all(NATIVE_HEADER_FULL.as_bytes())?;
    for c in extra_columns {
        out.write_all(b",")?;
        write_text(&mut out, c)?;
    }
    out.write_all(b"\n")?;
    let mut models = String::new();
    let mut fields: Vec<String> = Vec::with_capacity(extra_columns.len());
    for (i, job) in jobs.iter().enumerate() {
        check_writable(job)?;
        fields.clear();
        extras(i, &mut fields);
        if fields.len() != extra_columns.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("job {}: {} extra fields for {} extra columns", job.job_id, fields.len(), extra_columns.len()),
            ));
        }
        models.clear();
        for (i, m) in job.models.iter().enumerate() {
            if i > 0 {
                models.push('|');
            }
            models.push_str(m);
        }
        write!(out, "{},{},", job.job_id, job.submit_s + 0.0)?;
        write_text(&mut out, &job.tenant)?;
        write!(out, ",{},{},", job.priority, job.devices)?;
        write_text(&mut out, &models)?;
        write!(out, ",{},", job.duration_s + 0.0)?;
        write_text(&mut out, &job.job_class)?;
        write!(out, ",{},{},{},", job.cpu_milli, job.mem_mib, job.outcome.map_or("", JobOutcome::as_str))?;
        if let Some(stated) = job.stated_duration_s {
            write!(out, "{}", stated + 0.0)?;
        }
        for f in &fields {
            out.write_all(b",")?;
            write_text(&mut out, f)?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn check_writable(job: &TraceJob) -> io::Result<()> {
    let refuse = |what: String| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("job {}: {what}", job.job_id),
        ))
    };
    if !(job.submit_s.is_finite() && job.submit_s >= 0.0) {
        return refuse(format!("submit_s {} is not a number of seconds >= 0", job.submit_s));
    }
    if !(job.duration_s.is_finite() && job.duration_s >= 0.0) {
        return refuse(format!("duration_s {} is not a number of seconds >= 0", job.duration_s));
    }
    if let Some(stated) = job.stated_duration_s.filter(|s| !(s.is_finite() && *s >= 0.0)) {
        return refuse(format!("stated_duration_s {stated} is not a number of seconds >= 0"));
    }
    if !valid_devices(job.devices) {
        return refuse(format!("devices {} is not {EXPECT_DEVICES}", job.devices));
    }
    if job.tenant.trim().is_empty() {
        return refuse("the tenant is empty".into());
    }
    if let Some(m) = job
        .models
        .iter()
        .find(|m| m.trim().is_empty() || m.contains('|') || m.trim() != m.as_str())
    {
        return refuse(format!(
            "model name {m:?} is empty, holds `|` or has surrounding spaces"
        ));
    }
    Ok(())
}

/// Writes a text field, quoted when it must be to read back the same.
fn write_text(out: &mut impl Write, s: &str) -> io::Result<()> {
    let needs_quotes = s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        || s.starts_with([' ', '\t'])
        || s.ends_with([' ', '\t']);
    if !needs_quotes {
        return out.write_all(s.as_bytes());
    }
    out.write_all(b"\"")?;
    for (i, part) in s.split('"').enumerate() {
        if i > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(part.as_bytes())?;
    }
    out.write_all(b"\"")
}

/// 0 is a CPU-only job; a share must be at least 1/1000 of a device, the core's granularity,
/// and is rounded to the nearest thousandth when loaded into the simulator.
pub(crate) fn valid_devices(x: f64) -> bool {
    x.is_finite() && (x == 0.0 || (0.001..1.0).contains(&x) || (x >= 1.0 && x.fract() == 0.0 && x <= u32::MAX as f64))
}

fn parse_devices(s: &str) -> Option<f64> {
    let x = parse_f64(s)?;
    valid_devices(x).then_some(x)
}

fn parse_models(s: &str) -> Option<Vec<String>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split('|')
        .map(|m| {
            let m = m.trim();
            (!m.is_empty()).then(|| m.to_string())
        })
        .collect()
}
