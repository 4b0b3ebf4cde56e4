//! `tessera fidelity`: how closely the simulator predicted what the live executor did.
//!
//! The executor exports what it ran as a trace in the native schema (`job_id`, `submit_s`,
//! ... as `tessera_traces::native` reads them) with three more columns: `start_s` (first
//! start), `end_s` and `wait_s` (all the time the job did not run between submission and end).
//! A scenario that replays that export unchanged (its workload
//! `trace = { format = "native", path = "observed.csv" }`, its cluster the same machine, its
//! policy the one the executor ran) makes `tessera sim` predict each job's `wait_s` and
//! `jct_s` in its `jobs.csv`. This module compares the two, job by job:
//!
//! - the observed JCT is `end_s − submit_s`; the simulated one is `jct_s` of `jobs.csv`;
//! - each error is simulated − observed (positive: the simulator was pessimistic);
//! - per quantity (wait, JCT): mean, median, 95th percentile (nearest rank) and maximum of the
//!   absolute errors, the mean signed error (the bias), and the fraction of jobs whose
//!   absolute error is within the tolerance.
//!
//! Nothing is left out silently: a job in one file only, a job that never ended on either side,
//! a job submitted at different times in the two files (the replay transformed the workload),
//! a missing column, a short row or a field that is not a number is an error naming the file,
//! the line and the column, or listing the jobs.

use crate::fmt::{push_fixed, push_u64};
use crate::metrics::percentile;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The columns an observed export must have (besides the rest of the native schema, which is
/// not read here).
pub const OBSERVED_COLUMNS: [&str; 5] = ["job_id", "submit_s", "start_s", "end_s", "wait_s"];
/// The columns read from the simulator's `jobs.csv`.
pub const SIMULATED_COLUMNS: [&str; 4] = ["job_id", "submit_s", "wait_s", "jct_s"];

/// How far apart the two files may put a job's submission, in seconds: the simulator keeps
/// times in whole microseconds, and both files print at most 6 decimals.
const SUBMIT_SLACK_S: f64 = 1e-5;

/// At most this many job ids are listed in an error.
const MAX_LISTED: usize = 20;

pub const FIDELITY_HEADER: &str =
    "job_id,observed_wait_s,simulated_wait_s,wait_error_s,observed_jct_s,simulated_jct_s,jct_error_s,within_tolerance";
pub const FIDELITY_SUMMARY_HEADER: &str =
    "quantity,jobs,mean_abs_error_s,median_abs_error_s,p95_abs_error_s,max_abs_error_s,bias_s,within_tolerance,tolerance_s";

#[derive(Debug)]
pub enum FidelityError {
    Io { path: PathBuf, source: io::Error },
    /// A field, a row or the header is wrong.
    Parse { path: PathBuf, line: u64, column: Option<String>, message: String },
    MissingColumn { path: PathBuf, line: u64, column: &'static str, header: Vec<String> },
    DuplicateJob { path: PathBuf, job: u64, first_line: u64, line: u64 },
    NoJobs { path: PathBuf },
    /// Jobs that never ended in `path` (no end, wait or JCT).
    Unfinished { path: PathBuf, jobs: Vec<u64> },
    /// Jobs present in one file only.
    Unmatched { observed: PathBuf, only_observed: Vec<u64>, simulated: PathBuf, only_simulated: Vec<u64> },
    SubmitMismatch { job: u64, observed_s: f64, simulated_s: f64 },
    /// A directory given as the simulated side without exactly one `jobs.csv` to use.
    NoJobsCsv { dir: PathBuf, candidates: Vec<PathBuf> },
    BadTolerance(f64),
}

fn list(ids: &[u64]) -> String {
    let shown: Vec<String> = ids.iter().take(MAX_LISTED).map(u64::to_string).collect();
    let more = ids.len().saturating_sub(MAX_LISTED);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl fmt::Display for FidelityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FidelityError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            FidelityError::Parse { path, line, column: Some(c), message } => {
                write!(f, "{}: line {line}, column `{c}`: {message}", path.display())
            }
            FidelityError::Parse { path, line, column: None, message } => write!(f, "{}: line {line}: {message}", path.display()),
            FidelityError::MissingColumn { path, line, column, header } => write!(
                f,
                "{}: line {line}: the header has no column `{column}` (it has: {})",
                path.display(),
                header.join(", ")
            ),
            FidelityError::DuplicateJob { path, job, first_line, line } => {
                write!(f, "{}: line {line}: job {job} appears twice (first on line {first_line})", path.display())
            }
            FidelityError::NoJobs { path } => write!(f, "{}: no job rows after the header", path.display()),
            FidelityError::Unfinished { path, jobs } => write!(
                f,
                "{}: {} job(s) never ended (no end_s, wait_s or jct_s), so their errors cannot be measured: {}",
                path.display(),
                jobs.len(),
                list(jobs)
            ),
            FidelityError::Unmatched { observed, only_observed, simulated, only_simulated } => {
                let mut parts = Vec::new();
                if !only_observed.is_empty() {
                    parts.push(format!("{} job(s) only in {}: {}", only_observed.len(), observed.display(), list(only_observed)));
                }
                if !only_simulated.is_empty() {
                    parts.push(format!("{} job(s) only in {}: {}", only_simulated.len(), simulated.display(), list(only_simulated)));
                }
                write!(
                    f,
                    "the files do not hold the same jobs: {}; replay the observed export unchanged (no window_s, first_jobs or only_tenants)",
                    parts.join("; ")
                )
            }
            FidelityError::SubmitMismatch { job, observed_s, simulated_s } => write!(
                f,
                "job {job} was submitted at {observed_s} s in the observed export but at {simulated_s} s in the simulation; replay the export unchanged (no window_s or load_scale)"
            ),
            FidelityError::NoJobsCsv { dir, candidates } if candidates.is_empty() => write!(
                f,
                "{}: no jobs.csv in this directory nor in <policy>/r<k>/ below it; give the output directory of `tessera sim` or a jobs.csv",
                dir.display()
            ),
            FidelityError::NoJobsCsv { dir, candidates } => write!(
                f,
                "{}: {} runs' jobs.csv below this directory; give one of them: {}",
                dir.display(),
                candidates.len(),
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            FidelityError::BadTolerance(t) => write!(f, "expected a non-negative, finite tolerance in seconds, found {t}"),
        }
    }
}

impl std::error::Error for FidelityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FidelityError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CSV reading

/// One record of a CSV file: its first physical line and its fields.
struct Record {
    line: u64,
    fields: Vec<String>,
}

/// Splits RFC 4180 CSV text into records, counting physical lines (quoted newlines included).
/// Blank lines carry no record. Unquoted fields are trimmed of spaces and tabs.
fn records(text: &str, path: &Path) -> Result<Vec<Record>, FidelityError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line: u64 = 1;
    while chars.peek().is_some() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut blank = true;
        loop {
            let Some(c) = chars.next() else {
                fields.push(finish(&field, quoted));
                break;
            };
            match c {
                '"' if field.trim_matches([' ', '\t']).is_empty() && !quoted => {
                    quoted = true;
                    blank = false;
                    field.clear();
                    loop {
                        match chars.next() {
                            None => {
                                return Err(FidelityError::Parse {
                                    path: path.to_path_buf(),
                                    line: start_line,
                                    column: None,
                                    message: "a quoted field is never closed".into(),
                                })
                            }
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                    // Only spaces may follow the closing quote before the separator.
                    while matches!(chars.peek(), Some(' ' | '\t')) {
                        chars.next();
                    }
                    if !matches!(chars.peek(), None | Some(',' | '\n' | '\r')) {
                        return Err(FidelityError::Parse {
                            path: path.to_path_buf(),
                            line,
                            column: None,
                            message: "text after a closing quote; double a quote inside a quoted field".into(),
                        });
                    }
                }
                ',' => {
                    fields.push(finish(&field, quoted));
                    field.clear();
                    quoted = false;
                    blank = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    fields.push(finish(&field, quoted));
                    break;
                }
                c => {
                    if !c.is_whitespace() {
                        blank = false;
                    }
                    field.push(c);
                }
            }
        }
        if !blank {
            out.push(Record { line: start_line, fields });
        }
    }
    Ok(out)
}

fn finish(field: &str, quoted: bool) -> String {
    if quoted {
        field.to_string()
    } else {
        field.trim_matches([' ', '\t', '\r']).to_string()
    }
}

/// A CSV file read whole: its rows, and where each wanted column is.
struct Table {
    path: PathBuf,
    rows: Vec<Record>,
    columns: Vec<usize>,
}

impl Table {
    fn read(path: &Path, wanted: &[&'static str]) -> Result<Table, FidelityError> {
        let bytes = std::fs::read(path).map_err(|source| FidelityError::Io { path: path.to_path_buf(), source })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            FidelityError::Parse {
                path: path.to_path_buf(),
                line: before.iter().filter(|&&b| b == b'\n').count() as u64 + 1,
                column: None,
                message: "the file is not UTF-8 text".into(),
            }
        })?;
        let mut rows = records(&text, path)?;
        if rows.is_empty() {
            return Err(FidelityError::Parse { path: path.to_path_buf(), line: 1, column: None, message: "the file is empty; expected a header".into() });
        }
        let header = rows.remove(0);
        let mut columns = Vec::with_capacity(wanted.len());
        for &name in wanted {
            let found: Vec<usize> = header.fields.iter().enumerate().filter(|(_, h)| *h == name).map(|(i, _)| i).collect();
            match found.as_slice() {
                [i] => columns.push(*i),
                [] => {
                    return Err(FidelityError::MissingColumn { path: path.to_path_buf(), line: header.line, column: name, header: header.fields })
                }
                _ => {
                    return Err(FidelityError::Parse {
                        path: path.to_path_buf(),
                        line: header.line,
                        column: Some(name.to_string()),
                        message: "the header names this column twice".into(),
                    })
                }
            }
        }
        for row in &rows {
            if row.fields.len() != header.fields.len() {
                return Err(FidelityError::Parse {
                    path: path.to_path_buf(),
                    line: row.line,
                    column: None,
                    message: format!("{} fields, but the header has {}", row.fields.len(), header.fields.len()),
                });
            }
        }
        if rows.is_empty() {
            return Err(FidelityError::NoJobs { path: path.to_path_buf() });
        }
        Ok(Table { path: path.to_path_buf(), rows, columns })
    }

    fn err(&self, line: u64, column: &str, message: String) -> FidelityError {
        FidelityError::Parse { path: self.path.clone(), line, column: Some(column.to_string()), message }
    }

    /// Field `k` (an index into `wanted`) of `row`.
    fn field<'a>(&self, row: &'a Record, k: usize) -> &'a str {
        &row.fields[self.columns[k]]
    }

    fn job_id(&self, row: &Record, name: &str) -> Result<u64, FidelityError> {
        let text = self.field(row, 0);
        text.parse().map_err(|_| self.err(row.line, name, format!("expected a non-negative integer job id, found `{text}`")))
    }

    /// Seconds >= 0; `None` for an empty field.
    fn seconds(&self, row: &Record, k: usize, name: &str) -> Result<Option<f64>, FidelityError> {
        let text = self.field(row, k);
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => Err(self.err(row.line, name, format!("expected a non-negative number of seconds, found `{text}`"))),
        }
    }
}

/// One job as one side saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Seen {
    line: u64,
    submit_s: f64,
    /// `None` when the job never ended.
    wait_s: Option<f64>,
    jct_s: Option<f64>,
}

fn by_job(table: &Table, rows: impl Iterator<Item = Result<(u64, Seen), FidelityError>>) -> Result<BTreeMap<u64, Seen>, FidelityError> {
    let mut jobs: BTreeMap<u64, Seen> = BTreeMap::new();
    for row in rows {
        let (id, seen) = row?;
        if let Some(first) = jobs.get(&id) {
            return Err(FidelityError::DuplicateJob { path: table.path.clone(), job: id, first_line: first.line, line: seen.line });
        }
        jobs.insert(id, seen);
    }
    Ok(jobs)
}

fn read_observed(path: &Path) -> Result<BTreeMap<u64, Seen>, FidelityError> {
    let t = Table::read(path, &OBSERVED_COLUMNS)?;
    by_job(
        &t,
        t.rows.iter().map(|row| {
            let id = t.job_id(row, "job_id")?;
            let submit_s = t.seconds(row, 1, "submit_s")?.ok_or_else(|| t.err(row.line, "submit_s", "expected a submit time, found nothing".into()))?;
            let start_s = t.seconds(row, 2, "start_s")?;
            let end_s = t.seconds(row, 3, "end_s")?;
            let wait_s = t.seconds(row, 4, "wait_s")?;
            if let Some(start) = start_s.filter(|&s| s < submit_s) {
                return Err(t.err(row.line, "start_s", format!("the job started at {start} s, before its submission at {submit_s} s")));
            }
            if let Some(end) = end_s.filter(|&e| e < start_s.unwrap_or(submit_s)) {
                return Err(t.err(row.line, "end_s", format!("the job ended at {end} s, before it was submitted or started")));
            }
            let jct_s = end_s.map(|e| e - submit_s);
            if let (Some(w), Some(j)) = (wait_s, jct_s) {
                if w > j + SUBMIT_SLACK_S {
                    return Err(t.err(row.line, "wait_s", format!("the job waited {w} s, longer than its whole time in the system ({j} s)")));
                }
            }
            let ended = end_s.is_some() && wait_s.is_some();
            Ok((id, Seen { line: row.line, submit_s, wait_s: wait_s.filter(|_| ended), jct_s: jct_s.filter(|_| ended) }))
        }),
    )
}

fn read_simulated(path: &Path) -> Result<BTreeMap<u64, Seen>, FidelityError> {
    let t = Table::read(path, &SIMULATED_COLUMNS)?;
    by_job(
        &t,
        t.rows.iter().map(|row| {
            let id = t.job_id(row, "job_id")?;
            let submit_s = t.seconds(row, 1, "submit_s")?.ok_or_else(|| t.err(row.line, "submit_s", "expected a submit time, found nothing".into()))?;
            let wait_s = t.seconds(row, 2, "wait_s")?;
            let jct_s = t.seconds(row, 3, "jct_s")?;
            let ended = wait_s.is_some() && jct_s.is_some();
            Ok((id, Seen { line: row.line, submit_s, wait_s: wait_s.filter(|_| ended), jct_s: jct_s.filter(|_| ended) }))
        }),
    )
}

/// The simulated side's `jobs.csv`: `path` itself if it is a file; for a directory, its
/// `jobs.csv`, or the only `<policy>/r<k>/jobs.csv` below it (an error lists them when there
/// are several).
pub fn resolve_simulated(path: &Path) -> Result<PathBuf, FidelityError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let direct = path.join("jobs.csv");
    if direct.is_file() {
        return Ok(direct);
    }
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| FidelityError::Io { path: p, source }
    };
    let mut candidates = Vec::new();
    for policy in std::fs::read_dir(path).map_err(io(path))? {
        let policy = policy.map_err(io(path))?.path();
        if !policy.is_dir() {
            continue;
        }
        for run in std::fs::read_dir(&policy).map_err(io(&policy))? {
            let run = run.map_err(io(&policy))?.path();
            let jobs = run.join("jobs.csv");
            let is_run = run.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('r'));
            if is_run && jobs.is_file() {
                candidates.push(jobs);
            }
        }
    }
    candidates.sort();
    match candidates.len() {
        1 => Ok(candidates.remove(0)),
        _ => Err(FidelityError::NoJobsCsv { dir: path.to_path_buf(), candidates }),
    }
}

/// One job's observed and simulated figures; errors are simulated − observed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobFidelity {
    pub job_id: u64,
    pub observed_wait_s: f64,
    pub simulated_wait_s: f64,
    pub observed_jct_s: f64,
    pub simulated_jct_s: f64,
}

impl JobFidelity {
    pub fn wait_error_s(&self) -> f64 {
        self.simulated_wait_s - self.observed_wait_s
    }

    pub fn jct_error_s(&self) -> f64 {
        self.simulated_jct_s - self.observed_jct_s
    }
}

/// The error statistics of one quantity over all jobs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErrorStats {
    pub jobs: u64,
    pub mean_abs_s: f64,
    pub median_abs_s: f64,
    pub p95_abs_s: f64,
    pub max_abs_s: f64,
    /// The mean signed error (simulated − observed).
    pub bias_s: f64,
    /// The fraction of jobs with an absolute error at most the tolerance.
    pub within_tolerance: f64,
}

impl ErrorStats {
    /// Over `errors` (signed); NaN figures for no error.
    pub fn of(errors: &[f64], tolerance_s: f64) -> ErrorStats {
        let n = errors.len() as f64;
        let mut abs: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
        abs.sort_unstable_by(f64::total_cmp);
        let mean = |xs: &[f64]| if xs.is_empty() { f64::NAN } else { xs.iter().sum::<f64>() / n };
        ErrorStats {
            jobs: errors.len() as u64,
            mean_abs_s: mean(&abs),
            median_abs_s: percentile(&abs, 0.5),
            p95_abs_s: percentile(&abs, 0.95),
            max_abs_s: abs.last().copied().unwrap_or(f64::NAN),
            bias_s: mean(errors),
            within_tolerance: if abs.is_empty() { f64::NAN } else { abs.iter().filter(|&&a| a <= tolerance_s).count() as f64 / n },
        }
    }
}

/// The comparison of one observed export with one simulated run.
#[derive(Clone, Debug, PartialEq)]
pub struct FidelityReport {
    pub tolerance_s: f64,
    /// By job id.
    pub jobs: Vec<JobFidelity>,
    pub wait: ErrorStats,
    pub jct: ErrorStats,
    /// The fraction of jobs within the tolerance on both wait and JCT.
    pub within_tolerance_both: f64,
}

/// Reads the observed export and the simulated `jobs.csv` (see [`resolve_simulated`]) and
/// compares them job by job.
pub fn fidelity(observed: &Path, simulated: &Path, tolerance_s: f64) -> Result<FidelityReport, FidelityError> {
    if !(tolerance_s.is_finite() && tolerance_s >= 0.0) {
        return Err(FidelityError::BadTolerance(tolerance_s));
    }
    let simulated = resolve_simulated(simulated)?;
    let obs = read_observed(observed)?;
    let sim = read_simulated(&simulated)?;
    let only_observed: Vec<u64> = obs.keys().filter(|id| !sim.contains_key(id)).copied().collect();
    let only_simulated: Vec<u64> = sim.keys().filter(|id| !obs.contains_key(id)).copied().collect();
    if !only_observed.is_empty() || !only_simulated.is_empty() {
        return Err(FidelityError::Unmatched { observed: observed.to_path_buf(), only_observed, simulated, only_simulated });
    }
    for (side, path) in [(&obs, observed), (&sim, simulated.as_path())] {
        let unfinished: Vec<u64> = side.iter().filter(|(_, s)| s.jct_s.is_none()).map(|(&id, _)| id).collect();
        if !unfinished.is_empty() {
            return Err(FidelityError::Unfinished { path: path.to_path_buf(), jobs: unfinished });
        }
    }
    let mut jobs = Vec::with_capacity(obs.len());
    for (&id, o) in &obs {
        let s = &sim[&id];
        if (o.submit_s - s.submit_s).abs() > SUBMIT_SLACK_S {
            return Err(FidelityError::SubmitMismatch { job: id, observed_s: o.submit_s, simulated_s: s.submit_s });
        }
        // Both are present: unfinished jobs were refused above.
        let (Some(ow), Some(oj), Some(sw), Some(sj)) = (o.wait_s, o.jct_s, s.wait_s, s.jct_s) else { unreachable!() };
        jobs.push(JobFidelity { job_id: id, observed_wait_s: ow, simulated_wait_s: sw, observed_jct_s: oj, simulated_jct_s: sj });
    }
    let wait_errors: Vec<f64> = jobs.iter().map(JobFidelity::wait_error_s).collect();
    let jct_errors: Vec<f64> = jobs.iter().map(JobFidelity::jct_error_s).collect();
    let both = jobs.iter().filter(|j| j.wait_error_s().abs() <= tolerance_s && j.jct_error_s().abs() <= tolerance_s).count();
    Ok(FidelityReport {
        tolerance_s,
        wait: ErrorStats::of(&wait_errors, tolerance_s),
        jct: ErrorStats::of(&jct_errors, tolerance_s),
        within_tolerance_both: both as f64 / jobs.len() as f64,
        jobs,
    })
}

impl FidelityReport {
    /// `fidelity.csv`: [`FIDELITY_HEADER`], then one row per job by id; seconds with 6
    /// decimals, `within_tolerance` `true` when both errors are within it.
    pub fn write_jobs_csv(&self, mut w: impl Write) -> io::Result<()> {
        let mut buf = Vec::with_capacity(96 * (self.jobs.len() + 1));
        buf.extend_from_slice(FIDELITY_HEADER.as_bytes());
        buf.push(b'\n');
        for j in &self.jobs {
            push_u64(&mut buf, j.job_id);
            for x in [j.observed_wait_s, j.simulated_wait_s, j.wait_error_s(), j.observed_jct_s, j.simulated_jct_s, j.jct_error_s()] {
                buf.push(b',');
                push_fixed(&mut buf, x, 6);
            }
            let within = j.wait_error_s().abs() <= self.tolerance_s && j.jct_error_s().abs() <= self.tolerance_s;
            buf.extend_from_slice(if within { b",true\n" } else { b",false\n" });
        }
        w.write_all(&buf)?;
        w.flush()
    }

    /// `fidelity_summary.csv`: [`FIDELITY_SUMMARY_HEADER`], then the rows `wait` and `jct`;
    /// seconds with 6 decimals, fractions with 6.
    pub fn write_summary_csv(&self, mut w: impl Write) -> io::Result<()> {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(FIDELITY_SUMMARY_HEADER.as_bytes());
        buf.push(b'\n');
        for (name, s) in [("wait", &self.wait), ("jct", &self.jct)] {
            buf.extend_from_slice(name.as_bytes());
            buf.push(b',');
            push_u64(&mut buf, s.jobs);
            for x in [s.mean_abs_s, s.median_abs_s, s.p95_abs_s, s.max_abs_s, s.bias_s, s.within_tolerance, self.tolerance_s] {
                buf.push(b',');
                push_fixed(&mut buf, x, 6);
            }
            buf.push(b'\n');
        }
        w.write_all(&buf)?;
        w.flush()
    }

    /// The summary for the terminal.
    pub fn render(&self) -> String {
        let mut out = format!("{} jobs; errors are simulated - observed, in seconds\n", self.jobs.len());
        out.push_str(&format!(
            "{:<5} {:>12} {:>12} {:>12} {:>12} {:>12} {:>10}\n",
            "", "mean |err|", "median", "p95", "max", "bias", "within"
        ));
        for (name, s) in [("wait", &self.wait), ("jct", &self.jct)] {
            out.push_str(&format!(
                "{name:<5} {:>12.3} {:>12.3} {:>12.3} {:>12.3} {:>12.3} {:>9.1}%\n",
                s.mean_abs_s,
                s.median_abs_s,
                s.p95_abs_s,
                s.max_abs_s,
                s.bias_s,
                s.within_tolerance * 100.0
            ));
        }
        out.push_str(&format!(
            "{:.1}% of jobs within {} s on both wait and JCT\n",
            self.within_tolerance_both * 100.0,
            self.tolerance_s
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_keep_physical_lines_and_quotes() {
        let text = "\u{feff}a,b\r\n\r\n\"x, \"\"y\"\"\",2\n\" multi\nline\" , 3\n  \n4,5";
        let r = records(text, Path::new("t.csv")).unwrap();
        let got: Vec<(u64, Vec<&str>)> = r.iter().map(|r| (r.line, r.fields.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            got,
            vec![(1, vec!["a", "b"]), (3, vec!["x, \"y\"", "2"]), (4, vec![" multi\nline", "3"]), (7, vec!["4", "5"])]
        );
        let e = records("a\n\"open,1\n", Path::new("t.csv")).map(|_| ()).unwrap_err();
        assert_eq!(e.to_string(), "t.csv: line 2: a quoted field is never closed");
        let e = records("\"a\"b,1\n", Path::new("t.csv")).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("text after a closing quote"), "{e}");
    }

    #[test]
    fn error_statistics() {
        let s = ErrorStats::of(&[-4.0, 1.0, 2.0, 3.0], 2.0);
        assert_eq!(s.jobs, 4);
        assert_eq!(s.mean_abs_s, 2.5);
        assert_eq!(s.median_abs_s, 2.0);
        assert_eq!(s.p95_abs_s, 4.0);
        assert_eq!(s.max_abs_s, 4.0);
        assert_eq!(s.bias_s, 0.5);
        assert_eq!(s.within_tolerance, 0.5);
        assert!(ErrorStats::of(&[], 1.0).mean_abs_s.is_nan());
    }

    #[test]
    fn long_lists_are_cut() {
        let ids: Vec<u64> = (1..=25).collect();
        assert!(list(&ids).ends_with("20 and 5 more"));
        assert_eq!(list(&[3, 4]), "3, 4");
    }
}
