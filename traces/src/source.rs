//! One entry point for every trace format: a format name and its options in, the native jobs
//! (and whatever else the trace brings: a speed table, device models) out. The scenario file
//! and `tessera trace` both go through here.

use crate::native::TraceJob;
use crate::TraceError;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tessera_core::DeviceModel;

/// A workload trace format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// tessera's own schema: CSV, or Parquet when the file ends in `.parquet`.
    Native,
    /// Microsoft Philly's derived job list (`pollux_philly.csv`).
    Philly,
    /// Microsoft Philly's raw `cluster_job_log` JSON.
    PhillyLog,
    /// Microsoft ITP `clusterNN.csv` (raw or ElasticFlow variant), or a directory of them.
    Itp,
    /// Alibaba GPU 2023 (openb) pod list.
    Openb,
    /// Gavel `.trace` files, with Gavel's throughput table.
    Gavel,
    /// Tiresias job CSVs.
    Tiresias,
    /// Pollux workload CSVs, with the work of each application.
    Pollux,
}

impl Format {
    pub const ALL: [Format; 8] =
        [Format::Native, Format::Philly, Format::PhillyLog, Format::Itp, Format::Openb, Format::Gavel, Format::Tiresias, Format::Pollux];

    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Philly => "philly",
            Format::PhillyLog => "philly-log",
            Format::Itp => "itp",
            Format::Openb => "openb",
            Format::Gavel => "gavel",
            Format::Tiresias => "tiresias",
            Format::Pollux => "pollux",
        }
    }

    pub fn names() -> String {
        Format::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown trace format `{s}`, expected one of: {}", Format::names()))
    }
}

/// What some formats need beside the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    /// Gavel: the throughput table (`simulation_throughputs.json`).
    pub throughputs: Option<PathBuf>,
    /// Gavel: the device model whose throughput defines a job's work (default `v100`: the
    /// table measures every job type there, while some have a throughput of 0 on a K80).
    pub reference_model: Option<String>,
    /// Pollux: seconds of work per application.
    pub work_s: Option<BTreeMap<String, f64>>,
    /// Gavel: leave out (and count) jobs the throughput table cannot time, instead of failing.
    pub skip_unmeasured: bool,
}

/// A loaded trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadedTrace {
    pub jobs: Vec<TraceJob>,
    /// Relative speeds the trace brings: (job class, catalogue model name, speed relative to
    /// the reference device the jobs' durations are given on).
    pub speed: Vec<(String, String, f64)>,
    /// Device models the trace's jobs name that the built-in catalogue lacks.
    pub models: Vec<DeviceModel>,
    /// The time of day (seconds after midnight) of the trace's second 0, where known.
    pub day_offset_s: Option<f64>,
    /// Repairs and assumptions applied while loading, for the user to read.
    pub notes: Vec<String>,
}

fn needs(path: &Path, option: &str, format: Format) -> TraceError {
    TraceError::Invalid {
        path: path.to_path_buf(),
        line: 0,
        column: format!("option `{option}`"),
        message: format!("the {format} format needs `{option}`"),
    }
}

/// Loads a trace of the given format. Every job's times and device count are checked against
/// [`tessera_core::limits`]: one row beyond them is an error naming its line, not a figure that
/// swamps every statistic (a duration of 1e300 s) or saturates the simulator's clock.
pub fn load(format: Format, path: &Path, options: &Options) -> Result<LoadedTrace, TraceError> {
    let loaded = load_unchecked(format, path, options)?;
    check_bounds(format, path, &loaded.jobs)?;
    Ok(loaded)
}

fn check_bounds(format: Format, path: &Path, jobs: &[TraceJob]) -> Result<(), TraceError> {
    use tessera_core::limits::{MAX_DEVICES_PER_JOB, MAX_DURATION_S, MAX_DURATION_TEXT};
    // Other formats' columns are named otherwise; the native field says what was read.
    let column = |name: &str| if format == Format::Native { format!("column `{name}`") } else { format!("`{name}` as read into the native schema") };
    for job in jobs {
        let times = [("submit_s", "submission time", Some(job.submit_s)), ("duration_s", "duration", Some(job.duration_s)), ("stated_duration_s", "stated duration", job.stated_duration_s)];
        for (name, what, value) in times {
            if let Some(v) = value.filter(|v| *v > MAX_DURATION_S) {
                return Err(TraceError::Invalid {
                    path: path.to_path_buf(),
                    line: job.line,
                    column: column(name),
                    message: format!("job {}'s {what}, {v:?} s, is beyond the bound of {MAX_DURATION_TEXT}", job.job_id),
                });
            }
        }
        if job.devices > f64::from(MAX_DEVICES_PER_JOB) {
            return Err(TraceError::Invalid {
                path: path.to_path_buf(),
                line: job.line,
                column: column("devices"),
                message: format!("job {} asks for {:?} devices, beyond the bound of {MAX_DEVICES_PER_JOB}", job.job_id, job.devices),
            });
        }
    }
    Ok(())
}

fn load_unchecked(format: Format, path: &Path, options: &Options) -> Result<LoadedTrace, TraceError> {
    let jobs_only = |jobs: Vec<TraceJob>| LoadedTrace { jobs, ..LoadedTrace::default() };
    match format {
        Format::Native => {
            let parquet = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
            let jobs = if parquet { crate::load_native_parquet(path)? } else { crate::load_native_csv(path)? };
            Ok(jobs_only(jobs))
        }
        Format::Philly => {
            let (jobs, epoch) = crate::philly::load_with_epoch(path)?;
            Ok(LoadedTrace { jobs, day_offset_s: Some(epoch.rem_euclid(86_400) as f64), ..LoadedTrace::default() })
        }
        Format::PhillyLog => {
            let log = crate::philly::load_job_log(path)?;
            let day_offset_s = crate::philly::parse_time(&log.epoch).map(|t| t.rem_euclid(86_400) as f64);
            let notes = vec![
                format!("{} jobs never ran (no attempts) and are not in the workload", log.never_ran),
                format!("{} attempts had no start or end time and added no run time", log.attempts_without_times),
                format!("{} jobs were still running when the log was taken (censored)", log.censored),
            ];
            Ok(LoadedTrace { jobs: log.jobs, day_offset_s, notes, ..LoadedTrace::default() })
        }
        Format::Itp if path.is_dir() => Ok(jobs_only(crate::itp::load_dir(path)?)),
        Format::Itp => Ok(jobs_only(crate::itp::load(path)?)),
        Format::Tiresias => Ok(jobs_only(crate::tiresias::load(path)?)),
        Format::Pollux => {
            let work_s = options.work_s.as_ref().ok_or_else(|| needs(path, "work_s", format))?;
            Ok(jobs_only(crate::pollux::load(path, work_s)?))
        }
        Format::Openb => {
            let mut jobs = crate::openb::load_pods(path)?;
            for job in &mut jobs {
                for model in &mut job.models {
                    *model = crate::openb::model_name(model).to_string();
                }
            }
            let pending = jobs.iter().filter(|j| j.outcome.is_none()).count();
            let censored = jobs.iter().filter(|j| j.outcome == Some(crate::TraceOutcome::Censored)).count();
            let notes = vec![
                format!("{pending} pending pods (never scheduled) kept, each asking for its resources from creation to deletion"),
                format!("{censored} pods still running at the trace's end kept with their run so far (censored)"),
            ];
            Ok(LoadedTrace { jobs, models: crate::openb::catalogue_models(), notes, ..LoadedTrace::default() })
        }
        Format::Gavel => load_gavel(path, options),
    }
}

fn load_gavel(path: &Path, options: &Options) -> Result<LoadedTrace, TraceError> {
    use crate::gavel::{catalogue_model_name, Throughputs};
    let table_path = options.throughputs.as_ref().ok_or_else(|| needs(path, "throughputs", Format::Gavel))?;
    let table = Throughputs::load(table_path)?;
    let reference = options.reference_model.as_deref().unwrap_or("v100");
    let mut notes = Vec::new();
    let mut jobs = if options.skip_unmeasured {
        let (jobs, skipped) = crate::gavel::load_trace_skipping(path, &table, reference)?;
        if !skipped.is_empty() {
            let lines: Vec<String> = skipped.iter().take(10).map(|u| u.line.to_string()).collect();
            notes.push(format!(
                "{} jobs left out because the throughput table cannot time them on {reference} (lines {}{})",
                skipped.len(),
                lines.join(", "),
                if skipped.len() > 10 { ", ..." } else { "" }
            ));
        }
        jobs
    } else {
        crate::gavel::load_trace(path, &table, reference)?
    };
    // Each class once, with the job type and scale factor its name encodes.
    let mut classes: Vec<(String, String, u32)> = Vec::new();
    for job in &jobs {
        if classes.iter().any(|(c, _, _)| *c == job.job_class) {
            continue;
        }
        let (job_type, sf) = job.job_class.rsplit_once(" x").expect("gavel class names are `<type> x<sf>`");
        classes.push((job.job_class.clone(), job_type.to_string(), sf.parse().expect("a scale factor")));
    }
    let speed = table.speed_matrix(&classes, reference);
    // A job runs only where Gavel measured its class: elsewhere its speed is unknown.
    for job in &mut jobs {
        job.models = speed.iter().filter(|(c, _, _)| *c == job.job_class).map(|(_, m, _)| m.clone()).collect();
    }
    let reference_name = catalogue_model_name(reference).unwrap_or(reference);
    notes.push(format!("work measured on {reference_name}; each job may run only on the models Gavel measured for its class"));
    Ok(LoadedTrace { jobs, speed, notes, ..LoadedTrace::default() })
}
