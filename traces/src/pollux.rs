//! Pollux (OSDI'21) workloads.
//!
//! The workloads of the Pollux simulator (Qiao et al., "Pollux: Co-adaptive Cluster Scheduling
//! for Goodput-Optimized Deep Learning", OSDI'21; `adaptdl` repository, Apache-2.0):
//! `workloads*/workload-N.csv` with the header `name,time,application,num_replicas,batch_size`.
//! `workloads/` and `workloads-realistic/` hold 160 jobs per file over 8 hours; `workloads-0.5`,
//! `-1.5` and `-2.0` are the same at 0.5×, 1.5× and 2× the job load (80, 240, 320 jobs).
//!
//! # Run time is an input
//!
//! The files hold **no durations**: Pollux's simulator derives each job's progress from
//! per-application throughput and statistical-efficiency measurements that are not part of
//! these files. So the caller states the work: [`load`] takes a map from application name to
//! seconds, and
//!
//! - `duration_s = work_s[application]`: the job's run time, in seconds, when it runs on
//!   `num_replicas` reference devices (the recorded allocation) — the same meaning `duration_s`
//!   has in every trace: the run time of the job at its stated size on its reference device.
//!   The value is used as given for every job of that application, whatever its
//!   `num_replicas` or `batch_size`: the loader does not scale it, because how a job's run time
//!   changes with its replicas and batch size is exactly the per-application model the files
//!   lack. A caller who has such a model builds per-job durations from it instead.
//! - An application that is not in the map is an error naming the file, the line, the
//!   application and the applications the map does know. A value that is not a finite number
//!   of seconds >= 0 is an error naming the first line that uses it.
//! - Entries of the map that no job uses are fine.
//!
//! | column         | maps to      | rule                                                         |
//! |----------------|--------------|--------------------------------------------------------------|
//! | `name`         | —            | `application-index` (`cifar10-0`), not empty, unique within the file (a repeat is an error naming both lines); not kept: `job_id`s are 1, 2, … in submission order |
//! | `time`         | `submit_s`   | seconds >= 0 since the workload's start, as recorded (not shifted) |
//! | `application`  | `job_class`  | not empty (`cifar10`, `bert`, `deepspeech2`, `imagenet`, `ncf`, `yolov3`); also the key into `work_s` |
//! | `num_replicas` | `devices`    | a whole count >= 1: the GPUs the job was submitted with (Pollux adapts it as the job runs; non-adaptive policies keep it) |
//! | `batch_size`   | —            | the job's initial total batch size; ignored, not required     |
//!
//! `tenant = "pollux"` for every job (the workloads name no user), `priority = 0`, no model
//! constraint, no outcome. Extra columns are ignored.
//!
//! Repairs and checks: rows out of submission order are sorted stably (same time: file order;
//! the published files are sorted); blank lines are skipped; any other row that cannot be mapped
//! is an error naming the file, line and column; an empty file or a header without rows is an
//! error.

use crate::csv::{self, Table};
use crate::{TraceError, TraceJob};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The header of a Pollux workload, as errors quote it.
pub const POLLUX_HEADER: &str = "name,time,application,num_replicas,batch_size";

/// Loads a Pollux workload; `work_s` maps each application to the run time of its jobs in
/// seconds. See the [module documentation](self).
pub fn load(path: &Path, work_s: &BTreeMap<String, f64>) -> Result<Vec<TraceJob>, TraceError> {
    parse(&csv::read(path)?, path, work_s)
}

/// [`load`] on bytes held in memory; `origin` is the name errors give for them.
pub fn parse(data: &[u8], origin: &Path, work_s: &BTreeMap<String, f64>) -> Result<Vec<TraceJob>, TraceError> {
    let text = csv::text(data, origin)?;
    let mut t = Table::open(text, origin, POLLUX_HEADER)?;
    let c_name = t.column("name")?;
    let c_time = t.column("time")?;
    let c_app = t.column("application")?;
    let c_replicas = t.column("num_replicas")?;

    let mut jobs = Vec::new();
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    while t.next_row()? {
        let name = t.field(c_name);
        if name.is_empty() {
            return Err(t.bad(c_name, "name", "a job name"));
        }
        if let Some(first) = first_line_of.get(name) {
            let message = format!("job name {name:?} was already used on line {first}");
            return Err(t.invalid("name", message));
        }
        first_line_of.insert(name.to_string(), t.line());
        let submit_s = csv::seconds(t.field(c_time)).ok_or_else(|| t.bad(c_time, "time", csv::EXPECT_SECONDS))?;
        let app = t.field(c_app);
        if app.is_empty() {
            return Err(t.bad(c_app, "application", "an application name"));
        }
        let duration_s = match work_s.get(app) {
            Some(&w) if w.is_finite() && w >= 0.0 => w + 0.0,
            Some(&w) => {
                let message = format!("the work given for application {app:?} is {w}, not a number of seconds >= 0");
                return Err(t.invalid("application", message));
            }
            None => {
                let known = if work_s.is_empty() {
                    "the work map is empty".to_string()
                } else {
                    let names: Vec<&str> = work_s.keys().map(String::as_str).collect();
                    format!("known: {}", names.join(", "))
                };
                let message = format!("application {app:?} has no entry in the work map ({known})");
                return Err(t.invalid("application", message));
            }
        };
        let devices = csv::gpu_count(t.field(c_replicas))
            .ok_or_else(|| t.bad(c_replicas, "num_replicas", "a whole replica count >= 1"))?;
        let mut job = TraceJob::new(0, submit_s, "pollux", devices, duration_s);
        job.job_class = app.to_string();
        job.line = t.line();
        jobs.push(job);
    }
    if jobs.is_empty() {
        return Err(t.no_jobs());
    }
    csv::sort_and_number(&mut jobs);
    Ok(jobs)
}

/// Pollux workload CSVs as a trace format, with the work of each application.
pub struct Pollux;

impl crate::format::TraceFormat for Pollux {
    fn name(&self) -> &'static str {
        "pollux"
    }

    fn description(&self) -> &'static str {
        "Pollux workload CSVs, with the work of each application"
    }

    fn options(&self) -> &'static [crate::format::OptionSpec] {
        use crate::format::{OptionKind, OptionSpec};
        &[OptionSpec {
            name: "work_s",
            kind: OptionKind::NumberTable,
            required: true,
            doc: "seconds of work per application (work_s = { cifar10 = 3600, ... }; --work APP=SECONDS)",
        }]
    }

    fn load(&self, path: &Path, options: &crate::format::Options) -> Result<crate::source::LoadedTrace, TraceError> {
        // check_options made sure a required option is there.
        let work_s = options.number_table("work_s").expect("work_s is a required option");
        Ok(crate::source::LoadedTrace { jobs: load(path, work_s)?, ..Default::default() })
    }
}
