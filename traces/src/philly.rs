//! Microsoft Philly (ATC'19): the derived job list and the raw cluster job log.
//!
//! Philly is Microsoft's 2017 multi-tenant GPU cluster, published by Jeon et al., "Analysis of
//! Large-Scale Multi-Tenant GPU Clusters for DNN Training Workloads", USENIX ATC'19, under
//! CC-BY-4.0 (cite the paper when you use the data). Philly's machines had 12 GB and 24 GB GPUs
//! whose model the trace does not name, so every job here allows any model.
//!
//! # The derived job list ([`load`], [`parse`])
//!
//! `pollux_philly.csv`, the job list Pollux and Sia replay: a CSV with the header
//! `timestamp,duration,num_gpus,gpu_time,cluster`, one row per job, rows **not** sorted.
//!
//! | column      | maps to        | rule                                                          |
//! |-------------|----------------|---------------------------------------------------------------|
//! | `timestamp` | `submit_s`     | `YYYY-MM-DD HH:MM:SS`; seconds after the earliest timestamp of the file, so the first job is submitted at 0 |
//! | `duration`  | `duration_s`   | seconds >= 0 (`66.0`)                                          |
//! | `num_gpus`  | `devices`      | a whole GPU count >= 1                                         |
//! | `gpu_time`  | —              | GPU-seconds, `duration × num_gpus` (it is so on every row of the published file); redundant, so **ignored** and not required |
//! | `cluster`   | `tenant`       | the virtual cluster's hash (`6214e9`), not empty               |
//!
//! Every job gets `job_class = "philly"`, `priority = 0`, no model constraint, no outcome
//! (the list keeps no status). The file has no job ids: `job_id`s are assigned 1, 2, … in
//! submission order (after the sort below). [`TraceJob::line`] says which row a job came from.
//!
//! Repairs and assumptions:
//!
//! - **Unsorted rows are sorted**, stably by submission time: rows with the same timestamp keep
//!   their file order.
//! - **Identical rows are kept as distinct jobs** (the published file has 65 rows that repeat
//!   an earlier row exactly: same second, duration, size and virtual cluster, as a sweep of
//!   jobs submitted together would). Nothing is deduplicated.
//! - **Times are naive wall-clock times.** The timestamps carry no zone; Philly's clocks were
//!   Pacific local time, so an interval that spans the change from daylight saving time on
//!   2017-11-05 is one hour longer than the wall clocks show, and times in the repeated hour
//!   01:00–02:00 of that day are ambiguous. The loader does not guess: it subtracts the civil
//!   times as written (as the Python scripts that use this file do).
//! - Blank lines are skipped (the published file ends with one). Any other row that cannot be
//!   mapped (a bad time, a negative or non-numeric duration, a GPU count that is not a whole
//!   number >= 1, an empty cluster, a row with too few or too many fields) is an error naming
//!   file, line and column. Extra columns are ignored.
//!
//! The published file loads as 82,247 jobs in 15 virtual clusters.
//!
//! # The raw job log ([`load_job_log`], [`parse_job_log`])
//!
//! `cluster_job_log` from `msr-fiddle/philly-traces`: one JSON array of job objects
//!
//! ```json
//! [{"status": "Pass", "vc": "ee9e8c", "jobid": "application_1506638472019_14199",
//!   "submitted_time": "2017-10-07 01:11:39", "user": "ce2f4c",
//!   "attempts": [{"start_time": "2017-10-07 01:12:09", "end_time": "2017-10-07 01:13:23",
//!                 "detail": [{"ip": "m47", "gpus": ["gpu0", "gpu1"]}]}]}]
//! ```
//!
//! | field            | maps to      | rule                                                        |
//! |------------------|--------------|-------------------------------------------------------------|
//! | `submitted_time` | `submit_s`   | seconds after the earliest `submitted_time` in the file (of any job, including jobs that never ran); the epoch is returned as [`PhillyJobLog::epoch`] |
//! | `vc`             | `tenant`     | not empty                                                   |
//! | `status`         | `outcome`    | `Pass` → completed, `Killed` → killed, `Failed` → failed; anything else is an error. A job still running when the log was taken is censored instead (below) |
//! | `attempts`       | `devices`, `duration_s` | see below                                        |
//! | `jobid`          | —            | must be unique (a repeat is an error naming both lines); not kept: `job_id`s are 1, 2, … in submission order |
//! | `user`           | —            | ignored (the native schema has one tenant level; the virtual cluster is the one schedulers share) |
//!
//! - `devices` = the GPUs of the first attempt: the number of entries of `gpus` summed over its
//!   `detail` machines. If the first attempt lists no GPUs, the first attempt that does is
//!   used; if none does, the job is an error (Philly ran GPU jobs only, so a job that ran on no
//!   GPU is a broken record, not a CPU job).
//! - `duration_s` = total run time: the sum over attempts of `end_time − start_time`, so time
//!   spent queued between retries is not counted. An end before its start is an error.
//! - **Censoring.** A last attempt whose `end_time` is `null`, `"None"` or empty was still
//!   running when the log was taken (the upstream README says so). Its run is counted up to the
//!   latest timestamp anywhere in the file (any `submitted_time`, `start_time` or `end_time`),
//!   the job's outcome is `censored` whatever its `status` says, and its `duration_s` is a lower
//!   bound. Counted in [`PhillyJobLog::censored`].
//! - **Attempts without times.** The upstream README warns that an attempt may lack a
//!   `start_time` or `end_time` through a logging error. Such an attempt (other than the
//!   censored last one above) adds no run time; each one is counted in
//!   [`PhillyJobLog::attempts_without_times`] so that the loss is visible.
//! - **Jobs that never ran.** A job with an empty `attempts` list was never scheduled
//!   (cancelled or failed while queued): it never held a GPU, and the log does not say how many
//!   it asked for. It is **not** returned as a job — a capacity planner replays demand that
//!   took devices, and a job of unknown size cannot be placed — but it is counted in
//!   [`PhillyJobLog::never_ran`], and its `submitted_time` still takes part in the epoch.
//! - Unknown fields are ignored. A field of the wrong type, a missing required field, a time
//!   not in `YYYY-MM-DD HH:MM:SS` form, or malformed JSON is an error naming the file, the line
//!   and the field or column. Times are naive wall-clock times, as for the derived list.
//! - Jobs are returned sorted stably by submission time; [`TraceJob::line`] is the line of the
//!   job's opening `{`.

use crate::csv::{self, shorten, Table};
use crate::{TraceError, TraceJob};
use tessera_core::JobOutcome;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::path::Path;

/// The header of the derived job list, as errors quote it.
pub const PHILLY_HEADER: &str = "timestamp,duration,num_gpus,gpu_time,cluster";

const EXPECT_TIME: &str = "a time `YYYY-MM-DD HH:MM:SS`";

/// Loads the derived Philly job list (`pollux_philly.csv`). See the [module documentation](self).
pub fn load(path: &Path) -> Result<Vec<TraceJob>, TraceError> {
    parse(&csv::read(path)?, path)
}

/// [`load`], with the epoch: the earliest timestamp (seconds since 1970 in the file's local
/// time) that `submit_s = 0` stands for, so reports can tell the time of day.
pub fn load_with_epoch(path: &Path) -> Result<(Vec<TraceJob>, i64), TraceError> {
    parse_with_epoch(&csv::read(path)?, path)
}

/// [`load`] on bytes held in memory; `origin` is the name errors give for them.
pub fn parse(data: &[u8], origin: &Path) -> Result<Vec<TraceJob>, TraceError> {
    parse_with_epoch(data, origin).map(|(jobs, _)| jobs)
}

/// [`parse`], with the epoch as [`load_with_epoch`] gives it.
pub fn parse_with_epoch(data: &[u8], origin: &Path) -> Result<(Vec<TraceJob>, i64), TraceError> {
    let text = csv::text(data, origin)?;
    let mut t = Table::open(text, origin, PHILLY_HEADER)?;
    let c_time = t.column("timestamp")?;
    let c_duration = t.column("duration")?;
    let c_gpus = t.column("num_gpus")?;
    let c_cluster = t.column("cluster")?;

    let mut jobs = Vec::with_capacity(text.len() / 40);
    let mut times: Vec<i64> = Vec::with_capacity(text.len() / 40);
    while t.next_row()? {
        let at = parse_time(t.field(c_time)).ok_or_else(|| t.bad(c_time, "timestamp", EXPECT_TIME))?;
        let duration_s =
            csv::seconds(t.field(c_duration)).ok_or_else(|| t.bad(c_duration, "duration", csv::EXPECT_SECONDS))?;
        let devices = csv::gpu_count(t.field(c_gpus)).ok_or_else(|| t.bad(c_gpus, "num_gpus", csv::EXPECT_GPUS))?;
        let cluster = t.field(c_cluster);
        if cluster.is_empty() {
            return Err(t.bad(c_cluster, "cluster", "a virtual cluster name"));
        }
        let mut job = TraceJob::new(0, 0.0, cluster, devices, duration_s);
        job.job_class = "philly".into();
        job.line = t.line();
        // The index of the job's time; submit_s is filled in once the epoch is known.
        job.job_id = times.len() as u64;
        times.push(at);
        jobs.push(job);
    }
    if jobs.is_empty() {
        return Err(t.no_jobs());
    }
    let epoch = times.iter().copied().min().unwrap_or(0);
    for job in &mut jobs {
        job.submit_s = (times[job.job_id as usize] - epoch) as f64;
    }
    csv::sort_and_number(&mut jobs);
    Ok((jobs, epoch))
}

/// The raw job log mapped into jobs, with the counts of what did not become a job.
#[derive(Clone, Debug, PartialEq)]
pub struct PhillyJobLog {
    /// The jobs that ran, sorted by submission time, ids 1, 2, … in that order.
    pub jobs: Vec<TraceJob>,
    /// The civil time (`YYYY-MM-DD HH:MM:SS`, as written in the log) that `submit_s = 0` stands
    /// for: the earliest `submitted_time` of any job in the file.
    pub epoch: String,
    /// Jobs with no attempts: never scheduled, not in `jobs`.
    pub never_ran: usize,
    /// Attempts that lacked a start or an end time (a logging error) and so added no run time.
    pub attempts_without_times: usize,
    /// Jobs in `jobs` still running when the log was taken (outcome `censored`).
    pub censored: usize,
}

/// Loads a raw Philly `cluster_job_log`. See the [module documentation](self).
pub fn load_job_log(path: &Path) -> Result<PhillyJobLog, TraceError> {
    parse_job_log(&csv::read(path)?, path)
}

#[derive(Deserialize)]
struct RawJob {
    status: String,
    vc: String,
    jobid: String,
    submitted_time: Option<String>,
    attempts: Vec<RawAttempt>,
}

#[derive(Deserialize)]
struct RawAttempt {
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
    #[serde(default)]
    detail: Vec<RawMachine>,
}

#[derive(Deserialize)]
struct RawMachine {
    #[serde(default)]
    gpus: Vec<IgnoredAny>,
}

/// One job as read, before the file's epoch and last instant are known.
struct ReadJob {
    line: u64,
    submitted: i64,
    vc: String,
    status: JobOutcome,
    devices: f64,
    /// Run time of the attempts that have both times.
    run_s: i64,
    /// The start of a last attempt still running when the log was taken.
    running_since: Option<i64>,
    /// A last attempt with no end time (still running), started or not.
    still_running: bool,
}

/// [`load_job_log`] on bytes held in memory; `origin` is the name errors give for them.
pub fn parse_job_log(data: &[u8], origin: &Path) -> Result<PhillyJobLog, TraceError> {
    let text = csv::text(data, origin)?;
    let bytes = text.as_bytes();
    let mut cursor = Cursor { bytes, pos: 0, line: 1, line_start: 0 };
    let json_err = |line: u64, column: u64, message: String| TraceError::Json {
        path: origin.to_path_buf(),
        line,
        column,
        message,
    };

    cursor.skip_ws();
    if cursor.pos >= bytes.len() {
        return Err(TraceError::Empty {
            path: origin.to_path_buf(),
            expected_header: "a JSON array of jobs `[{\"status\": …, \"vc\": …, \"jobid\": …, \"attempts\": […]}, …]`",
        });
    }
    if bytes[cursor.pos] != b'[' {
        return Err(json_err(cursor.line, cursor.column(), "expected `[`: the job log is a JSON array of jobs".into()));
    }
    cursor.advance_to(cursor.pos + 1);

    let mut read: Vec<ReadJob> = Vec::new();
    let mut first_line_of: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut earliest: Option<(i64, String)> = None;
    let mut latest = i64::MIN;
    let mut never_ran = 0;
    let mut attempts_without_times = 0;
    loop {
        cursor.skip_ws();
        match bytes.get(cursor.pos) {
            None => return Err(json_err(cursor.line, cursor.column(), "the array of jobs is never closed (missing `]`)".into())),
            Some(b']') if read.is_empty() && never_ran == 0 => {
                cursor.advance_to(cursor.pos + 1);
                break;
            }
            _ => {}
        }
        // One job: parsed by serde_json from here; the stream's offset says where it ended.
        let (line, column) = (cursor.line, cursor.column());
        let mut stream = serde_json::Deserializer::from_str(&text[cursor.pos..]).into_iter::<RawJob>();
        let raw = match stream.next() {
            Some(Ok(raw)) => raw,
            Some(Err(e)) => {
                let (l, c) = (e.line() as u64, e.column() as u64);
                let at_line = line + l.saturating_sub(1);
                let at_column = if l <= 1 { column - 1 + c } else { c };
                return Err(json_err(at_line, at_column, format!("a job record: {e}")));
            }
            None => return Err(json_err(line, column, "expected a job record".into())),
        };
        let end = cursor.pos + stream.byte_offset();
        cursor.advance_to(end);

        let invalid = |field: &str, message: String| TraceError::Invalid {
            path: origin.to_path_buf(),
            line,
            column: format!("field `{field}`"),
            message,
        };
        let time = |field: &str, value: &str| {
            parse_time(value).ok_or_else(|| invalid(field, format!("expected {EXPECT_TIME}, found {:?}", shorten(value))))
        };
        if let Some(&first) = first_line_of.get(&raw.jobid) {
            return Err(invalid("jobid", format!("job id {:?} was already used by the job on line {first}", shorten(&raw.jobid))));
        }
        first_line_of.insert(raw.jobid.clone(), line);
        let submitted = match raw.submitted_time.as_deref() {
            Some(s) if !is_none(s) => time("submitted_time", s)?,
            _ => return Err(invalid("submitted_time", "a job needs a submission time".into())),
        };
        latest = latest.max(submitted);
        if earliest.as_ref().is_none_or(|(t, _)| submitted < *t) {
            earliest = Some((submitted, raw.submitted_time.clone().unwrap_or_default()));
        }
        if raw.vc.is_empty() {
            return Err(invalid("vc", "the virtual cluster is empty".into()));
        }
        let status = match raw.status.as_str() {
            "Pass" => JobOutcome::Completed,
            "Killed" => JobOutcome::Killed,
            "Failed" => JobOutcome::Failed,
            other => return Err(invalid("status", format!("expected one of Pass, Killed, Failed, found {:?}", shorten(other)))),
        };
        if raw.attempts.is_empty() {
            never_ran += 1;
        } else {
            let n = raw.attempts.len();
            let mut run_s = 0i64;
            let mut running_since = None;
            let mut still_running = false;
            for (i, attempt) in raw.attempts.iter().enumerate() {
                let field = |name: &str| format!("attempts[{i}].{name}");
                let start = match attempt.start_time.as_deref() {
                    Some(s) if !is_none(s) => Some(time(&field("start_time"), s)?),
                    _ => None,
                };
                let end = match attempt.end_time.as_deref() {
                    Some(s) if !is_none(s) => Some(time(&field("end_time"), s)?),
                    _ => None,
                };
                for t in start.iter().chain(end.iter()) {
                    latest = latest.max(*t);
                }
                match (start, end) {
                    (Some(s), Some(e)) if e < s => {
                        return Err(invalid(
                            &field("end_time"),
                            format!(
                                "the attempt ends before it starts ({:?} < {:?})",
                                attempt.end_time.as_deref().unwrap_or(""),
                                attempt.start_time.as_deref().unwrap_or("")
                            ),
                        ))
                    }
                    (Some(s), Some(e)) => run_s += e - s,
                    (start, None) if i + 1 == n => {
                        still_running = true;
                        running_since = start;
                        if start.is_none() {
                            attempts_without_times += 1;
                        }
                    }
                    _ => attempts_without_times += 1,
                }
            }
            let gpus = raw
                .attempts
                .iter()
                .map(|a| a.detail.iter().map(|m| m.gpus.len()).sum::<usize>())
                .find(|&g| g > 0)
                .ok_or_else(|| invalid("attempts", "the job ran but no attempt lists a GPU in its `detail`".into()))?;
            read.push(ReadJob {
                line,
                submitted,
                vc: raw.vc,
                status,
                devices: gpus as f64,
                run_s,
                running_since,
                still_running,
            });
        }

        cursor.skip_ws();
        match bytes.get(cursor.pos) {
            Some(b',') => cursor.advance_to(cursor.pos + 1),
            Some(b']') => {
                cursor.advance_to(cursor.pos + 1);
                break;
            }
            None => return Err(json_err(cursor.line, cursor.column(), "the array of jobs is never closed (missing `]`)".into())),
            Some(_) => return Err(json_err(cursor.line, cursor.column(), "expected `,` or `]` after a job record".into())),
        }
    }
    cursor.skip_ws();
    if cursor.pos < bytes.len() {
        return Err(json_err(cursor.line, cursor.column(), "text after the closing `]` of the array of jobs".into()));
    }
    let Some((epoch, epoch_text)) = earliest else {
        return Err(TraceError::NoJobs { path: origin.to_path_buf() });
    };
    if read.is_empty() {
        // Jobs, but none that ran: nothing to replay, almost surely not what was meant.
        return Err(TraceError::Invalid {
            path: origin.to_path_buf(),
            line: 1,
            column: "field `attempts`".into(),
            message: format!("none of the {never_ran} jobs has an attempt: no job ever ran"),
        });
    }

    let mut censored = 0;
    let mut jobs: Vec<TraceJob> = read
        .into_iter()
        .map(|r| {
            let mut run_s = r.run_s;
            if let Some(since) = r.running_since {
                run_s += latest - since;
            }
            let mut job = TraceJob::new(0, (r.submitted - epoch) as f64, r.vc, r.devices, run_s as f64);
            job.job_class = "philly".into();
            job.outcome = Some(if r.still_running {
                censored += 1;
                JobOutcome::Unfinished
            } else {
                r.status
            });
            job.line = r.line;
            job
        })
        .collect();
    csv::sort_and_number(&mut jobs);
    Ok(PhillyJobLog {
        jobs,
        epoch: epoch_text,
        never_ran,
        attempts_without_times,
        censored,
    })
}

/// `None` (Python's), `null` (read as `None` by serde) and an empty string all mean "no time".
fn is_none(s: &str) -> bool {
    s.is_empty() || s == "None"
}

/// A position in the JSON text with its 1-based line, kept up to date as the parser moves on.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
    line_start: usize,
}

impl Cursor<'_> {
    fn advance_to(&mut self, to: usize) {
        for (i, &b) in self.bytes[self.pos..to].iter().enumerate() {
            if b == b'\n' {
                self.line += 1;
                self.line_start = self.pos + i + 1;
            }
        }
        self.pos = to;
    }

    fn skip_ws(&mut self) {
        let mut to = self.pos;
        while to < self.bytes.len() && matches!(self.bytes[to], b' ' | b'\t' | b'\r' | b'\n') {
            to += 1;
        }
        self.advance_to(to);
    }

    /// The 1-based column of `pos`, in characters.
    fn column(&self) -> u64 {
        1 + self.bytes[self.line_start..self.pos].iter().filter(|&&b| (b & 0xC0) != 0x80).count() as u64
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS` (a naive civil time) into seconds since 1970-01-01 00:00:00.
/// Returns `None` for any other form or an impossible date or time.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm: count
/// from a March-based year so that the leap day falls at the end).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The CSV plumbing the Philly, ITP, Tiresias and Pollux loaders share: a header read into a
/// column map, rows checked for their field count, blank lines skipped, errors that name the
/// file, line and column. (Kept here rather than in `csv.rs`, which this loader's author did
/// not own; it is a pure move away from there.)
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_arithmetic() {
        assert_eq!(parse_time("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_time("2000-03-01 00:00:00"), Some(951_868_800));
        assert_eq!(parse_time("2017-10-09 07:01:55"), Some(1_507_532_515));
        assert_eq!(parse_time("2016-02-29 23:59:59"), Some(1_456_790_399));
        assert_eq!(parse_time("1969-12-31 23:59:59"), Some(-1));
        for bad in [
            "2017-02-29 00:00:00",
            "2017-13-01 00:00:00",
            "2017-04-31 00:00:00",
            "2017-10-09 24:00:00",
            "2017-10-09 07:60:00",
            "2017-10-09T07:01:55",
            "2017-10-09 07:01",
            "2017-1a-09 07:01:55",
            "None",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        // Consecutive days agree with a day-by-day walk over four centuries.
        let mut day = days_from_civil(1900, 1, 1);
        for y in 1900..2300 {
            for m in 1..=12 {
                for d in 1..=days_in_month(y, m) {
                    assert_eq!(days_from_civil(y, m, d), day, "{y}-{m}-{d}");
                    day += 1;
                }
            }
        }
    }
}

/// Philly's derived job list as a trace format.
pub struct Philly;

impl crate::format::TraceFormat for Philly {
    fn name(&self) -> &'static str {
        "philly"
    }

    fn description(&self) -> &'static str {
        "Microsoft Philly's derived job list (pollux_philly.csv)"
    }

    fn load(&self, path: &Path, _: &crate::format::Options) -> Result<crate::source::LoadedTrace, TraceError> {
        let (jobs, epoch) = load_with_epoch(path)?;
        Ok(crate::source::LoadedTrace { jobs, day_offset_s: Some(epoch.rem_euclid(86_400) as f64), ..Default::default() })
    }
}

/// Philly's raw `cluster_job_log` as a trace format.
pub struct PhillyLog;

impl crate::format::TraceFormat for PhillyLog {
    fn name(&self) -> &'static str {
        "philly-log"
    }

    fn description(&self) -> &'static str {
        "Microsoft Philly's raw cluster_job_log JSON"
    }

    fn load(&self, path: &Path, _: &crate::format::Options) -> Result<crate::source::LoadedTrace, TraceError> {
        let log = load_job_log(path)?;
        let day_offset_s = parse_time(&log.epoch).map(|t| t.rem_euclid(86_400) as f64);
        let notes = vec![
            format!("{} jobs never ran (no attempts) and are not in the workload", log.never_ran),
            format!("{} attempts had no start or end time and added no run time", log.attempts_without_times),
            format!("{} jobs were still running when the log was taken (censored)", log.censored),
        ];
        Ok(crate::source::LoadedTrace { jobs: log.jobs, day_offset_s, notes, ..Default::default() })
    }
}
