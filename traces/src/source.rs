//! One entry point for every trace format: a format and its checked options in, the native
//! jobs (and whatever else the trace brings: a speed table, device models) out. The scenario
//! file and `tessera trace` both go through here, and find formats by name in [`FORMATS`].

use crate::native::TraceJob;
use crate::TraceError;
use std::path::Path;
use tessera_core::DeviceModel;

pub use crate::format::{check_options, GivenOption, OptionError, OptionKind, OptionSpec, OptionValue, Options, TraceFormat};

/// Every trace format, in the order listings show them: the one place that names them all.
pub static FORMATS: &[&dyn TraceFormat] = &[
    &crate::native_format::Native,
    &crate::philly::Philly,
    &crate::philly::PhillyLog,
    &crate::itp::Itp,
    &crate::openb::Openb,
    &crate::gavel::Gavel,
    &crate::tiresias::Tiresias,
    &crate::pollux::Pollux,
];

/// The format `tessera trace` reads when it is given none.
pub const DEFAULT_FORMAT: &str = "native";

/// The formats' names, comma-separated, for messages.
pub fn names() -> String {
    FORMATS.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

/// The format of this name.
pub fn find(name: &str) -> Result<&'static dyn TraceFormat, String> {
    FORMATS
        .iter()
        .copied()
        .find(|f| f.name() == name)
        .ok_or_else(|| format!("unknown trace format `{name}`, expected one of: {}", names()))
}

/// The registry as `tessera trace formats` prints it: each format with its line and options.
pub fn render_formats() -> String {
    let width = FORMATS.iter().map(|f| f.name().len()).max().unwrap_or(0);
    let mut out = String::new();
    for format in FORMATS {
        out.push_str(&format!("{:width$}  {}\n", format.name(), format.description()));
        for option in format.options() {
            let usage = format!("{}={}", option.name, option.kind.placeholder());
            let required = if option.required { "required" } else { "optional" };
            out.push_str(&format!("{:width$}    {usage} ({required}): {}\n", "", option.doc));
        }
    }
    out
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

/// Loads a trace of the given format. Every job's times and device count are checked against
/// [`tessera_core::limits`]: one row beyond them is an error naming its line, not a figure that
/// swamps every statistic (a duration of 1e300 s) or saturates the simulator's clock.
pub fn load(format: &dyn TraceFormat, path: &Path, options: &Options) -> Result<LoadedTrace, TraceError> {
    let loaded = format.load(path, options)?;
    check_bounds(format, path, &loaded.jobs)?;
    Ok(loaded)
}

fn check_bounds(format: &dyn TraceFormat, path: &Path, jobs: &[TraceJob]) -> Result<(), TraceError> {
    use tessera_core::limits::{MAX_DEVICES_PER_JOB, MAX_DURATION_S, MAX_DURATION_TEXT};
    // Other formats' columns are named otherwise; the native field says what was read.
    let column = |name: &str| if format.native_columns() { format!("column `{name}`") } else { format!("`{name}` as read into the native schema") };
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
