//! Scenario files: what cluster, what workload, which policies, how many replications.
//!
//! A scenario is TOML. Parsing goes through `tessera_driver::toml_input` (`serde_path_to_error`
//! over toml's deserializer), as every TOML file a person writes does, so that every error names
//! the key path (`workload.synthetic.interarrival.mean_s`), what was expected, and the line and
//! column. Checks that need only one value run inside
//! deserialization for that reason: that is where the position is still known. Checks that
//! relate values to each other or to the device catalogue run afterwards, in `validate`, and
//! name the key they blame. Nothing here panics on bad input.

use crate::dist::DistSpec;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use tessera_core::catalogue::CatalogueError;
use tessera_core::limits::{check_secs, MAX_DEVICES_PER_JOB, MAX_DURATION_S, MAX_DURATION_TEXT};
use tessera_core::{Catalogue, DeviceKind, DeviceModel, Policy, PolicySpec, Time};

/// Upper bounds that keep a typo (`jobs = 1e12`) from exhausting memory instead of being reported.
pub const MAX_SYNTHETIC_JOBS: u64 = tessera_core::limits::MAX_JOBS;
pub const MAX_NODES: u64 = 1 << 20;
pub const MAX_DEVICES: u64 = 1 << 24;
pub const MAX_TENANTS: u32 = 1_000_000;
/// Each replication's workload is held in memory for the whole run.
pub const MAX_REPLICATIONS: u32 = 10_000;

/// Where in the scenario file an error was found (1-based).
pub use tessera_driver::toml_input::Location;

struct At(Option<Location>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => write!(f, " (line {}, column {})", l.line, l.column),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read the scenario file: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid TOML: {message}{}", file.display(), At(*location))]
    Syntax { file: PathBuf, message: String, location: Option<Location> },
    #[error("{}: key `{key}`: {message}{}", file.display(), At(*location))]
    Invalid { file: PathBuf, key: String, message: String, location: Option<Location> },
}

impl ScenarioError {
    pub fn invalid(file: &Path, key: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid { file: file.to_path_buf(), key: key.into(), message: message.into(), location: None }
    }

    /// The scenario file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ScenarioError::Read { file, .. }
            | ScenarioError::Syntax { file, .. }
            | ScenarioError::Invalid { file, .. } => file,
        }
    }

    /// The key path at fault, when the error is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }

    pub fn location(&self) -> Option<Location> {
        match self {
            ScenarioError::Syntax { location, .. } | ScenarioError::Invalid { location, .. } => *location,
            ScenarioError::Read { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The file's shape

/// A parsed and validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file it came from (or the origin given to `from_toml_str`), for messages and for
    /// resolving relative paths.
    pub path: PathBuf,
    pub name: String,
    /// Seed of the first replication; replication `k` uses `seed + k`.
    pub seed: u64,
    pub replications: u32,
    pub cluster: ClusterSpec,
    pub workload: WorkloadSpec,
    pub policies: Vec<PolicySpec>,
    pub speed: Vec<SpeedEntry>,
    /// A speed table from a file; `[[speed]]` entries override it.
    pub speed_table: Option<SpeedTableSpec>,
    pub sim: SimSpec,
    /// What each run records beyond its jobs and decisions.
    pub outputs: OutputsSpec,
    /// The world models (all optional).
    pub models: crate::models::ModelsSpec,
    /// Which jobs `tessera compare` counts (a steady-state window); `sim` ignores it.
    pub metrics: MetricsSpec,
    /// Parameter grids `tessera compare` runs the cross product of; `sim` ignores it.
    pub sweep: SweepSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    seed: u64,
    #[serde(default = "one_u32", deserialize_with = "positive_u32")]
    replications: u32,
    cluster: ClusterSpec,
    workload: WorkloadSpec<TraceFile>,
    #[serde(default)]
    policies: Vec<PolicySpec>,
    #[serde(default)]
    speed: Vec<SpeedEntry>,
    #[serde(default)]
    speed_table: Option<SpeedTableSpec>,
    #[serde(default)]
    sim: SimSpec,
    #[serde(default)]
    outputs: OutputsSpec,
    #[serde(default)]
    models: crate::models::ModelsSpec,
    #[serde(default)]
    metrics: MetricsSpec,
    #[serde(default)]
    sweep: SweepSpec,
}

/// `[metrics]`: restricts which jobs `tessera compare` counts, to keep warm-up and drain out
/// of the numbers. The simulation still runs every job; `tessera sim`'s summary is unchanged.
/// With both keys a job must satisfy both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    /// Count jobs with `first <= id <= last` (inclusive).
    #[serde(default)]
    pub job_ids: Option<[u64; 2]>,
    /// Count jobs submitted in `[start, end)` seconds (simulated time, after the workload's
    /// transforms).
    #[serde(default)]
    pub submit_window_s: Option<[f64; 2]>,
}

/// `[sweep]`: parameter grids; `tessera compare` runs the cross product, each point a separate
/// comparison. Every list is optional; an absent list does not vary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Multiplies the workload's `load_scale` (1.0 when absent): 2.0 offers twice the load.
    #[serde(default)]
    pub load_scale: Option<Vec<f64>>,
    /// Multiplies every `[[cluster.nodes]]` group's `count` (rounded, at least 1).
    #[serde(default)]
    pub nodes_scale: Option<Vec<f64>>,
    /// Sets `grace_s` on every policy.
    #[serde(default)]
    pub grace_s: Option<Vec<f64>>,
    /// Sets `min_runtime_s` on every policy.
    #[serde(default)]
    pub min_runtime_s: Option<Vec<f64>>,
    /// `[sweep.policy]`: a numeric policy key with a list sets it on every policy
    /// (`backfill_depth = [10, 100]`); a table named by a policy's label sets keys on that
    /// policy alone (`[sweep.policy.gavel] round_s = [60, 360]`). The keys are
    /// [`POLICY_SWEEP_KEYS`]. Kept as TOML here and read by [`SweepSpec::axes`], which
    /// `Scenario::validate` checks first, so that each mistake is named with its key.
    #[serde(default)]
    pub policy: Option<toml::Table>,
}

/// Policy keys a `[sweep.policy]` may vary: numeric ones (`true` for those that take whole
/// numbers).
pub const POLICY_SWEEP_KEYS: &[(&str, bool)] = &[
    ("grace_s", false),
    ("min_runtime_s", false),
    ("locality_wait_s", false),
    ("island_size", true),
    ("promote_after_s", false),
    ("half_life_s", false),
    ("backfill_depth", true),
    ("round_s", false),
];

/// One swept parameter: its name in point labels (`load_scale`, `policy.round_s`,
/// `policy.gavel.round_s`) and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepAxis {
    pub name: String,
    pub values: Vec<f64>,
}

impl SweepSpec {
    /// The swept keys with their values, in a fixed order (the order of point labels): the
    /// top-level keys, then `[sweep.policy]` in key order (labelled tables in label order).
    /// Errors name the key and what was expected.
    pub fn axes(&self) -> Result<Vec<SweepAxis>, (String, String)> {
        let mut axes: Vec<SweepAxis> = [
            ("load_scale", &self.load_scale),
            ("nodes_scale", &self.nodes_scale),
            ("grace_s", &self.grace_s),
            ("min_runtime_s", &self.min_runtime_s),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| SweepAxis { name: k.to_string(), values: v.clone() }))
        .collect();
        let Some(table) = &self.policy else { return Ok(axes) };
        let numbers = |key: &str, value: &toml::Value| -> Result<Vec<f64>, (String, String)> {
            let key = format!("sweep.{key}");
            let list = value.as_array().ok_or_else(|| (key.clone(), format!("expected a list of numbers, found {}", value.type_str())))?;
            list.iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::Integer(n) => Ok(*n as f64),
                    toml::Value::Float(f) => Ok(*f),
                    other => Err((format!("{key}[{i}]"), format!("expected a number, found {}", other.type_str()))),
                })
                .collect()
        };
        let known = |key: &str, at: &str| -> Result<(), (String, String)> {
            if POLICY_SWEEP_KEYS.iter().any(|(k, _)| *k == key) {
                return Ok(());
            }
            let names: Vec<&str> = POLICY_SWEEP_KEYS.iter().map(|(k, _)| *k).collect();
            Err((format!("sweep.{at}"), format!("not a policy key that can be swept; expected one of {}, or a table named by a policy's label", names.join(", "))))
        };
        for (key, value) in table {
            match value {
                toml::Value::Table(per_policy) => {
                    for (k, v) in per_policy {
                        let name = format!("policy.{key}.{k}");
                        known(k, &name)?;
                        axes.push(SweepAxis { values: numbers(&name, v)?, name });
                    }
                }
                _ => {
                    let name = format!("policy.{key}");
                    known(key, &name)?;
                    axes.push(SweepAxis { values: numbers(&name, value)?, name });
                }
            }
        }
        Ok(axes)
    }

    pub fn is_empty(&self) -> bool {
        self.axes().is_ok_and(|a| a.is_empty())
    }
}

/// Sets a swept policy key (one of [`POLICY_SWEEP_KEYS`]) on a policy spec.
fn set_policy_key(spec: &mut PolicySpec, key: &str, v: f64) {
    let whole = v.max(0.0).round().min(u32::MAX as f64) as u32;
    match key {
        "grace_s" => spec.grace_s = Some(v),
        "min_runtime_s" => spec.min_runtime_s = Some(v),
        "locality_wait_s" => spec.locality_wait_s = Some(v),
        "island_size" => spec.island_size = Some(whole),
        "promote_after_s" => spec.promote_after_s = Some(v),
        "half_life_s" => spec.half_life_s = Some(v),
        "backfill_depth" => spec.backfill_depth = Some(whole),
        "round_s" => spec.round_s = Some(v),
        other => unreachable!("`{other}` was checked against POLICY_SWEEP_KEYS"),
    }
}

/// A swept name's policy label (if it names one) and key: `policy.round_s` -> (None,
/// round_s), `policy.gavel.round_s` -> (Some(gavel), round_s); None for a top-level key.
fn policy_axis(name: &str) -> Option<(Option<&str>, &str)> {
    let rest = name.strip_prefix("policy.")?;
    Some(match rest.rsplit_once('.') {
        Some((label, key)) => (Some(label), key),
        None => (None, rest),
    })
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Node groups; may be empty when the nodes come from a trace (`format` and `path`).
    #[serde(default)]
    pub nodes: Vec<NodeGroupSpec>,
    /// Nodes from a trace's node list: `openb` (a node list CSV) or `tiresias` (a cluster spec).
    #[serde(default)]
    pub format: Option<ClusterFormat>,
    /// The node list, relative to the scenario file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `tiresias`: the GPU model of the spec's nodes (the spec names none).
    #[serde(default)]
    pub model: Option<String>,
    /// Device models beyond the built-in catalogue.
    #[serde(default)]
    pub models: Vec<ModelSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterFormat {
    Openb,
    Tiresias,
}

pub use tessera_driver::speed::{SpeedEntry, SpeedTableFormat, SpeedTableSpec};

/// `count` identical nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroupSpec {
    #[serde(default = "one_u32", deserialize_with = "positive_u32")]
    pub count: u32,
    /// Absent for CPU-only nodes.
    #[serde(default)]
    pub devices: Option<NodeDevices>,
    #[serde(default, deserialize_with = "non_negative_f64")]
    pub cpu_cores: f64,
    #[serde(default, deserialize_with = "non_negative_f64")]
    pub mem_gib: f64,
    /// Node names are `<name>-<index>`; default the first device model lower-cased, or `cpu`.
    #[serde(default)]
    pub name: Option<String>,
}

/// One device group (`devices = { model = "T4", count = 4 }`) or several for a mixed node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NodeDevices {
    One(DeviceGroupSpec),
    Many(Vec<DeviceGroupSpec>),
}

impl NodeDevices {
    pub fn groups(&self) -> &[DeviceGroupSpec] {
        match self {
            NodeDevices::One(g) => std::slice::from_ref(g),
            NodeDevices::Many(gs) => gs,
        }
    }

    /// The key path of group `j` under `prefix`, as the file spells it.
    pub(crate) fn key(&self, prefix: &str, j: usize) -> String {
        match self {
            NodeDevices::One(_) => format!("{prefix}.devices"),
            NodeDevices::Many(_) => format!("{prefix}.devices[{j}]"),
        }
    }
}

// Hand-written rather than `#[serde(untagged)]`: untagged tries each variant on a buffered copy
// and reports only "did not match any variant", losing which key was wrong and where.
impl<'de> Deserialize<'de> for NodeDevices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NodeDevices, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeDevices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table { model = \"...\", count = N } or an array of such tables")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<NodeDevices, A::Error> {
                DeviceGroupSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(NodeDevices::One)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<NodeDevices, A::Error> {
                Vec::<DeviceGroupSpec>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(NodeDevices::Many)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceGroupSpec {
    /// A catalogue name or alias (`V100-32GB`, `V100M32`), any case.
    pub model: String,
    #[serde(default = "one_u32", deserialize_with = "positive_u32")]
    pub count: u32,
}

/// A device model the built-in catalogue lacks; the fields of `tessera_core::DeviceModel`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub kind: DeviceKind,
    #[serde(default, deserialize_with = "opt_non_negative_f64")]
    pub mem_gib: Option<f64>,
    #[serde(default, deserialize_with = "opt_non_negative_f64")]
    pub fp16_tflops: Option<f64>,
    #[serde(default, deserialize_with = "opt_non_negative_f64")]
    pub fp32_tflops: Option<f64>,
    #[serde(default, deserialize_with = "opt_non_negative_f64")]
    pub mem_bw_gbps: Option<f64>,
    #[serde(default)]
    pub undisclosed: bool,
}

impl ModelSpec {
    pub fn to_model(&self) -> DeviceModel {
        DeviceModel {
            name: self.name.clone(),
            kind: self.kind,
            mem_gib: self.mem_gib,
            fp16_tflops: self.fp16_tflops,
            fp32_tflops: self.fp32_tflops,
            mem_bw_gbps: self.mem_bw_gbps,
            undisclosed: self.undisclosed,
        }
    }
}

/// Exactly one of `synthetic` and `trace` (checked after parsing, so both can be named).
/// `Trace` is [`TraceFile`] as the file is read, [`TraceSpec`] once its options are checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec<Trace = TraceSpec> {
    #[serde(default)]
    pub synthetic: Option<SyntheticSpec>,
    #[serde(default = "no_trace")]
    pub trace: Option<Trace>,
    /// Keep only these tenants' jobs (applied first).
    #[serde(default)]
    pub only_tenants: Option<Vec<String>>,
    /// Keep jobs submitted in `[start, end)` seconds, re-based so `start` becomes 0.
    #[serde(default)]
    pub window_s: Option<[f64; 2]>,
    /// Keep the first N jobs (by submission) of what is left.
    #[serde(default)]
    pub first_jobs: Option<u64>,
    /// Divide the time between submissions by this factor: 2.0 offers twice the load.
    #[serde(default, deserialize_with = "opt_positive_f64")]
    pub load_scale: Option<f64>,
    /// Cap every job's device count at this many (jobs are capped, not dropped).
    #[serde(default)]
    pub max_devices: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSpec {
    #[serde(deserialize_with = "positive_u64")]
    pub jobs: u64,
    /// Seconds between consecutive submissions; the first job arrives after one draw.
    pub interarrival: DistSpec,
    /// Seconds of work on the reference device (speed 1.0).
    pub duration: DistSpec,
    /// Devices per job, rounded, at least 1.
    #[serde(default = "one_device")]
    pub devices: DistSpec,
    /// Number of tenants, `tenant-0` .. `tenant-{n-1}`, each job's drawn uniformly.
    #[serde(default = "one_u32", deserialize_with = "positive_u32")]
    pub tenants: u32,
    /// Priority tier, rounded to an integer.
    #[serde(default = "zero_priority")]
    pub priority: DistSpec,
    #[serde(default, deserialize_with = "non_negative_f64")]
    pub cpu_cores_per_device: f64,
    #[serde(default, deserialize_with = "non_negative_f64")]
    pub mem_gib_per_device: f64,
    /// Job class names, each job's drawn uniformly; the row keys of `[[speed]]`.
    #[serde(default = "default_classes")]
    pub classes: Vec<String>,
}

fn no_trace<T>() -> Option<T> {
    None
}

use tessera_traces::source::{GivenOption, Options, TraceFormat};

/// `[workload.trace]`: a format of `tessera_traces::source::FORMATS`, the file, and the
/// format's own options (every other key), checked against what the format declares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceSpec {
    #[serde(serialize_with = "trace_format_name")]
    pub format: &'static dyn TraceFormat,
    /// Resolved against the scenario file's directory.
    pub path: PathBuf,
    /// Path options resolved against the scenario file's directory.
    #[serde(flatten)]
    pub options: Options,
}

fn trace_format_name<S: serde::Serializer>(format: &&'static dyn TraceFormat, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(format.name())
}

/// `[workload.trace]` as written: its options not yet checked, each with where it is written,
/// so that a refusal names its line.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceFile {
    format: FormatName,
    path: PathBuf,
    options: Vec<(String, toml::Spanned<toml::Value>)>,
}

/// A registered format, found by its name while the file is read (so that an unknown name is
/// refused at its key and line).
#[derive(Clone, Copy, Debug, PartialEq)]
struct FormatName(&'static dyn TraceFormat);

impl<'de> Deserialize<'de> for FormatName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FormatName, D::Error> {
        let name = String::deserialize(d)?;
        tessera_traces::source::find(&name).map(FormatName).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for TraceFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TraceFile, D::Error> {
        struct TraceTable;
        impl<'de> Visitor<'de> for TraceTable {
            type Value = TraceFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table { format, path, ... }")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<TraceFile, A::Error> {
                let (mut format, mut path, mut options) = (None, None, Vec::new());
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "format" => format = Some(map.next_value()?),
                        "path" => path = Some(map.next_value()?),
                        _ => {
                            let value = map.next_value()?;
                            options.push((key, value));
                        }
                    }
                }
                Ok(TraceFile {
                    format: format.ok_or_else(|| de::Error::missing_field("format"))?,
                    path: path.ok_or_else(|| de::Error::missing_field("path"))?,
                    options,
                })
            }
        }
        d.deserialize_map(TraceTable)
    }
}

/// Where `[workload.trace]` is written (read again, only for a message).
fn trace_table_span(text: &str) -> Option<std::ops::Range<usize>> {
    #[derive(Deserialize)]
    struct Doc {
        workload: Workload,
    }
    #[derive(Deserialize)]
    struct Workload {
        trace: toml::Spanned<toml::Value>,
    }
    toml::from_str::<Doc>(text).ok().map(|d| d.workload.trace.span())
}

impl TraceFile {
    /// Checks the options against the format's declaration (`tessera_traces::source::check_options`,
    /// the one place that does) and resolves the file and path options against `base`.
    fn check(self, file: &Path, text: &str, base: &Path) -> Result<TraceSpec, ScenarioError> {
        let format = self.format.0;
        let given = self.options.iter().map(|(key, value)| {
            let value = serde_json::to_value(value.get_ref()).unwrap_or(serde_json::Value::Null);
            (key.clone(), GivenOption::Value(value))
        });
        let mut options = tessera_traces::source::check_options(format, given).map_err(|e| {
            // A missing option is blamed on the trace table; a table's entry on the table.
            let written = e.option.split('.').next().unwrap_or(&e.option);
            let span = match self.options.iter().find(|(k, _)| k == written) {
                Some((_, value)) => Some(value.span()),
                None => trace_table_span(text),
            };
            ScenarioError::Invalid {
                file: file.to_path_buf(),
                key: format!("workload.trace.{}", e.option),
                message: e.message,
                location: span.map(|s| Location::of_offset(text, s.start)),
            }
        })?;
        options.resolve_paths(base);
        Ok(TraceSpec { format, path: base.join(&self.path), options })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSpec {
    /// Stop at this simulated time; jobs not done by then are reported unfinished.
    #[serde(default, deserialize_with = "opt_positive_f64")]
    pub horizon_s: Option<f64>,
}

/// `[outputs]`: what each run records beyond `jobs.csv` and `decisions.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsSpec {
    /// Sample the queue, busy devices per model and each tenant's running jobs and devices
    /// every this many simulated seconds (`timeseries.csv`); 0 records none.
    #[serde(default = "default_timeseries_s")]
    pub timeseries_s: f64,
}

/// Five minutes: a day is 288 rows, a year of Philly about 100,000.
pub const DEFAULT_TIMESERIES_S: f64 = 300.0;

fn default_timeseries_s() -> f64 {
    DEFAULT_TIMESERIES_S
}

impl Default for OutputsSpec {
    fn default() -> Self {
        OutputsSpec { timeseries_s: DEFAULT_TIMESERIES_S }
    }
}

impl OutputsSpec {
    /// The sampling interval, or `None` when time series are off.
    pub fn timeseries(&self) -> Option<Time> {
        (self.timeseries_s > 0.0).then(|| Time::from_secs_f64(self.timeseries_s))
    }
}

fn one_u32() -> u32 {
    1
}

fn one_device() -> DistSpec {
    DistSpec::constant(1.0)
}

fn zero_priority() -> DistSpec {
    DistSpec::constant(0.0)
}

fn default_classes() -> Vec<String> {
    vec!["default".to_string()]
}

// ---------------------------------------------------------------------------------------------
// Single-value checks, run inside deserialization so errors keep their path and position.

struct PositiveInt(u64);

impl<'de> Visitor<'de> for PositiveInt {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a positive integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        if v <= 0 {
            return Err(E::custom(format!("expected a positive integer, found {v}")));
        }
        self.visit_u64(v as u64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        if v == 0 {
            return Err(E::custom("expected a positive integer, found 0"));
        }
        if v > self.0 {
            return Err(E::custom(format!("expected a positive integer of at most {}, found {v}", self.0)));
        }
        Ok(v)
    }
}

fn positive_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    d.deserialize_any(PositiveInt(u32::MAX as u64)).map(|v| v as u32)
}

fn positive_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(PositiveInt(i64::MAX as u64))
}

fn checked_f64<'de, D: Deserializer<'de>>(d: D, ok: fn(f64) -> bool, what: &str) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if ok(v) {
        Ok(v)
    } else {
        Err(de::Error::custom(format!("expected {what}, found {v}")))
    }
}

fn non_negative_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    checked_f64(d, |v| v.is_finite() && v >= 0.0, "a non-negative number")
}

fn positive_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    checked_f64(d, |v| v.is_finite() && v > 0.0, "a positive number")
}

fn opt_non_negative_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    non_negative_f64(d).map(Some)
}

fn opt_positive_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    positive_f64(d).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Loading

/// What a missing required key should hold, for the message.
fn expected_for(key: &str) -> Option<String> {
    if key == "format" {
        return Some(format!("a trace format: {}", tessera_traces::source::names()));
    }
    Some(match key {
        "name" => "a string naming the scenario",
        "cluster" => "a table with [[cluster.nodes]] entries",
        "nodes" => "an array of tables: [[cluster.nodes]]",
        "workload" => "a table with `synthetic` or `trace`",
        "jobs" => "a positive integer",
        "interarrival" | "duration" => "a distribution such as { dist = \"exponential\", mean_s = 100.0 }",
        "model" => "a device model name",
        "path" => "a file path, relative to the scenario file",
        "class" => "a job class name",
        "relative" => "a positive number",
        "kind" => "one of gpu, tpu, cpu",
        _ => return None,
    }.to_string())
}

fn join_key(path: &str, key: &str) -> String {
    if path == "." || path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The name between the first pair of backticks of `message`, if it starts with `prefix`.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<(&'m str, &'m str)> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    let end = rest.find('`')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// One point of a `[sweep]`: a value for each swept key, in [`SweepSpec::axes`] order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SweepPoint {
    pub values: Vec<(String, f64)>,
}

impl SweepPoint {
    /// `load_scale=1.5,nodes_scale=0.5`: the keys in [`SweepSpec::axes`] order, each value as
    /// Rust's shortest round-trip decimal (`1`, `0.5`); empty for the point of no sweep.
    pub fn label(&self) -> String {
        self.values.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    }
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { file: path.to_path_buf(), source })?;
        Scenario::from_toml_str(&text, path)
    }

    /// Parses and validates scenario text; `origin` is the file it came from (messages name it,
    /// and relative trace paths are resolved against its directory).
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Scenario, ScenarioError> {
        let file = origin.to_path_buf();
        // A syntax check first, so a TOML error is told apart from a scenario error.
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let e: toml::de::Error = e;
                return Err(ScenarioError::Syntax {
                    file,
                    message: e.message().trim().replace('\n', "; "),
                    location: e.span().map(|s| Location::of_offset(text, s.start)),
                });
            }
        };
        if table.is_empty() {
            return Err(ScenarioError::invalid(
                origin,
                "name",
                "the scenario file is empty; expected at least `name`, [[cluster.nodes]], [workload] and [[policies]]",
            ));
        }
        let parsed: ScenarioFile = tessera_driver::toml_input::from_toml(text).map_err(|e| Self::parse_error(origin, e))?;
        let base = origin.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let w = parsed.workload;
        let trace = match w.trace {
            Some(trace) => Some(trace.check(origin, text, base)?),
            None => None,
        };
        let workload = WorkloadSpec {
            synthetic: w.synthetic,
            trace,
            only_tenants: w.only_tenants,
            window_s: w.window_s,
            first_jobs: w.first_jobs,
            load_scale: w.load_scale,
            max_devices: w.max_devices,
        };
        let scenario = Scenario {
            path: file,
            name: parsed.name,
            seed: parsed.seed,
            replications: parsed.replications,
            cluster: ClusterSpec { path: parsed.cluster.path.as_ref().map(|p| base.join(p)), ..parsed.cluster },
            workload,
            policies: parsed.policies,
            speed: parsed.speed,
            speed_table: parsed.speed_table.map(|t| SpeedTableSpec { path: base.join(&t.path), ..t }),
            models: parsed.models,
            sim: parsed.sim,
            outputs: parsed.outputs,
            metrics: parsed.metrics,
            sweep: parsed.sweep,
        };
        scenario.validate()?;
        Ok(scenario)
    }

    fn parse_error(origin: &Path, e: tessera_driver::toml_input::TomlError) -> ScenarioError {
        let tessera_driver::toml_input::TomlError { path, location, message } = e;
        // serde reports a missing or unknown field at the table that holds it; name the field.
        let (key, message) = if let Some((field, rest)) = quoted_after(&message, "missing field ") {
            let expected = match rest.trim_start_matches(',').trim() {
                "" => expected_for(field).map(|e| format!(", expected {e}")).unwrap_or_default(),
                more => format!(", {more}"),
            };
            (join_key(&path, field), format!("missing required key{expected}"))
        } else if let Some((field, _)) = quoted_after(&message, "unknown field ") {
            // For a key under a [table] header the path already ends at the field; for one in
            // an inline table it stops at the table.
            let already = path == field || path.ends_with(&format!(".{field}"));
            (if already { path } else { join_key(&path, field) }, message.clone())
        } else {
            (path, message)
        };
        ScenarioError::Invalid { file: origin.to_path_buf(), key, message, location }
    }

    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::invalid(&self.path, key, message)
    }

    /// The points of the scenario's `[sweep]`: the cross product of its lists, the last key
    /// varying fastest; one empty point when nothing is swept.
    pub fn sweep_points(&self) -> Vec<SweepPoint> {
        let mut points = vec![SweepPoint::default()];
        // `validate` read the axes already: they cannot fail here.
        for axis in self.sweep.axes().unwrap_or_default() {
            points = points
                .into_iter()
                .flat_map(|p| {
                    axis.values.iter().map(|&v| {
                        let mut p = p.clone();
                        p.values.push((axis.name.clone(), v));
                        p
                    }).collect::<Vec<_>>()
                })
                .collect();
        }
        points
    }

    /// This scenario with a sweep point's values applied: `load_scale` multiplies the
    /// workload's own (1.0 when absent), `nodes_scale` multiplies every `[[cluster.nodes]]`
    /// count (rounded, at least 1), `grace_s` and `min_runtime_s` are set on every policy,
    /// `policy.KEY` on every policy and `policy.LABEL.KEY` on that policy.
    /// The result is validated again (a scaled cluster may exceed the node limit).
    pub fn at_sweep_point(&self, point: &SweepPoint) -> Result<Scenario, ScenarioError> {
        let mut s = self.clone();
        for (key, v) in &point.values {
            let v = *v;
            match key.as_str() {
                "load_scale" => s.workload.load_scale = Some(s.workload.load_scale.unwrap_or(1.0) * v),
                "nodes_scale" => {
                    for g in &mut s.cluster.nodes {
                        g.count = (g.count as f64 * v).round().clamp(1.0, u32::MAX as f64) as u32;
                    }
                }
                "grace_s" => s.policies.iter_mut().for_each(|p| p.grace_s = Some(v)),
                "min_runtime_s" => s.policies.iter_mut().for_each(|p| p.min_runtime_s = Some(v)),
                other => match policy_axis(other) {
                    Some((label, policy_key)) => {
                        for p in s.policies.iter_mut().filter(|p| label.is_none_or(|l| p.label() == l)) {
                            set_policy_key(p, policy_key, v);
                        }
                    }
                    None => return Err(self.err(format!("sweep.{other}"), "not a sweepable key")),
                },
            }
        }
        s.sweep = SweepSpec::default();
        s.validate().map_err(|e| match e {
            ScenarioError::Invalid { file, key, message, location } => ScenarioError::Invalid {
                file,
                key,
                message: format!("{message} (at sweep point {})", point.label()),
                location,
            },
            other => other,
        })?;
        Ok(s)
    }

    /// The seeds of the replications, in order.
    pub fn replication_seeds(&self) -> impl Iterator<Item = u64> {
        let seed = self.seed;
        (0..self.replications as u64).map(move |k| seed.wrapping_add(k))
    }

    /// When to stop each run, if the scenario says.
    pub fn horizon(&self) -> Option<Time> {
        self.sim.horizon_s.map(Time::from_secs_f64)
    }

    /// The built-in catalogue plus the scenario's own models.
    pub fn catalogue(&self) -> Result<Catalogue, ScenarioError> {
        let mut catalogue = Catalogue::built_in();
        let mut models = Vec::new();
        if self.cluster.format == Some(ClusterFormat::Openb) {
            models = tessera_traces::openb::catalogue_models();
        }
        for model in self.workload.trace.iter().flat_map(|t| t.format.catalogue_models()) {
            if !models.iter().any(|m| m.name == model.name) {
                models.push(model);
            }
        }
        for model in models {
            catalogue.add(model).map_err(|e| self.err("cluster", e.to_string()))?;
        }
        for (i, model) in self.cluster.models.iter().enumerate() {
            if let Err(e) = catalogue.add(model.to_model()) {
                let key = match e {
                    CatalogueError::Duplicate(_) => format!("cluster.models[{i}].name"),
                    CatalogueError::Full => format!("cluster.models[{i}]"),
                };
                return Err(self.err(key, e.to_string()));
            }
        }
        Ok(catalogue)
    }

    /// Checks that relate values to each other or to the catalogue.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let catalogue = self.catalogue()?;
        self.validate_cluster(&catalogue)?;
        self.validate_workload()?;
        self.validate_policies()?;
        self.validate_speed(&catalogue)?;
        self.models.validate().map_err(|(key, message)| self.err(key, message))?;
        for (i, m) in self.models.failures.iter().flat_map(|f| f.by_model.iter()).enumerate() {
            self.lookup_model(&catalogue, &format!("models.failures.by_model[{i}].model"), &m.model)?;
        }
        let ts = self.outputs.timeseries_s;
        // Below a millisecond a long run would record millions of rows for no reader.
        if !(ts == 0.0 || (ts.is_finite() && ts >= 0.001)) {
            return Err(self.err("outputs.timeseries_s", format!("expected 0 (off) or at least 0.001 seconds, found {ts}")));
        }
        if let Some(h) = self.sim.horizon_s {
            check_secs(h, false).map_err(|m| self.err("sim.horizon_s", m))?;
        }
        if self.replications == 0 {
            return Err(self.err("replications", "expected a positive integer, found 0"));
        }
        if self.replications > MAX_REPLICATIONS {
            return Err(self.err("replications", format!("{} replications is beyond the bound of {MAX_REPLICATIONS}", self.replications)));
        }
        self.validate_metrics()?;
        self.validate_sweep()?;
        Ok(())
    }

    fn validate_metrics(&self) -> Result<(), ScenarioError> {
        if let Some([first, last]) = self.metrics.job_ids {
            if first > last {
                return Err(self.err("metrics.job_ids", format!("expected [first, last] with first <= last, found [{first}, {last}]")));
            }
        }
        if let Some([start, end]) = self.metrics.submit_window_s {
            if !(start.is_finite() && end.is_finite() && start >= 0.0 && start < end) {
                return Err(self.err(
                    "metrics.submit_window_s",
                    format!("expected [start, end] seconds with 0 <= start < end, both finite, found [{start}, {end}]"),
                ));
            }
        }
        Ok(())
    }

    fn validate_sweep(&self) -> Result<(), ScenarioError> {
        /// Most points a sweep may have, so a typo cannot start a week of runs.
        const MAX_POINTS: usize = 10_000;
        let axes = self.sweep.axes().map_err(|(key, message)| self.err(key, message))?;
        let mut points = 1usize;
        for axis in &axes {
            let key = format!("sweep.{}", axis.name);
            let values = &axis.values;
            if values.is_empty() {
                return Err(self.err(key, "expected a non-empty list of numbers; leave the key out to not sweep it"));
            }
            let policy = policy_axis(&axis.name);
            let policy_key = policy.map(|(_, k)| k);
            // Scales must be positive; a grace period, minimum run time or wait may be 0.
            let zero_ok = policy.is_some() || key.ends_with("grace_s") || key.ends_with("min_runtime_s");
            let whole = POLICY_SWEEP_KEYS.iter().any(|&(k, w)| w && Some(k) == policy_key);
            for (i, &v) in values.iter().enumerate() {
                let ok = v.is_finite() && (v > 0.0 || (zero_ok && v == 0.0)) && (!whole || v.fract() == 0.0);
                if !ok {
                    let what = match (whole, zero_ok) {
                        (true, _) => "a whole number, 0 or more",
                        (false, true) => "a non-negative number",
                        (false, false) => "a positive number",
                    };
                    return Err(self.err(format!("{key}[{i}]"), format!("expected {what}, found {v}")));
                }
                if values[..i].contains(&v) {
                    return Err(self.err(format!("{key}[{i}]"), format!("{v} is listed twice")));
                }
            }
            if key == "sweep.nodes_scale" && self.cluster.nodes.is_empty() {
                return Err(self.err(key, "scales [[cluster.nodes]] groups, and this scenario has none (its nodes come from a node list)"));
            }
            if let Some((label, policy_key)) = policy {
                if let Some(label) = label.filter(|l| !self.policies.iter().any(|p| p.label() == *l)) {
                    let labels: Vec<&str> = self.policies.iter().map(|p| p.label()).collect();
                    return Err(self.err(
                        format!("sweep.policy.{label}"),
                        format!("no policy is labelled `{label}`; the labels are {}", labels.join(", ")),
                    ));
                }
                // Each value must make a policy the registry accepts.
                for (i, &v) in values.iter().enumerate() {
                    for (j, spec) in self.policies.iter().enumerate().filter(|(_, p)| label.is_none_or(|l| p.label() == l)) {
                        let mut spec = spec.clone();
                        set_policy_key(&mut spec, policy_key, v);
                        if let Err(e) = Policy::check_spec(&spec) {
                            return Err(self.err(format!("{key}[{i}]"), format!("policies[{j}] (`{}`) with {policy_key} = {v}: {}", spec.label(), e.message)));
                        }
                    }
                }
            }
            points = points.saturating_mul(values.len());
        }
        if points > MAX_POINTS {
            return Err(self.err("sweep", format!("the cross product has {points} points; at most {MAX_POINTS} are allowed")));
        }
        Ok(())
    }

    /// Looks a model name up, or says which names exist.
    pub(crate) fn lookup_model(
        &self,
        catalogue: &Catalogue,
        key: &str,
        name: &str,
    ) -> Result<tessera_core::ModelId, ScenarioError> {
        catalogue.lookup(name).ok_or_else(|| {
            self.err(key, format!("unknown device model `{name}`, expected one of: {}", catalogue.names().join(", ")))
        })
    }

    fn validate_cluster(&self, catalogue: &Catalogue) -> Result<(), ScenarioError> {
        match (&self.cluster.format, &self.cluster.path) {
            (Some(_), None) => return Err(self.err("cluster.path", "a cluster `format` needs the `path` of its node list")),
            (None, Some(_)) => return Err(self.err("cluster.format", "a cluster `path` needs its `format`: openb or tiresias")),
            (Some(_), Some(p)) if !p.is_file() => {
                return Err(self.err("cluster.path", format!("no such file: {}", p.display())))
            }
            (None, None) if self.cluster.nodes.is_empty() => {
                return Err(self.err(
                    "cluster.nodes",
                    "expected at least one [[cluster.nodes]] entry, or a node list: format = \"openb\", path = \"...\"",
                ))
            }
            _ => {}
        }
        if self.cluster.format == Some(ClusterFormat::Tiresias) {
            match &self.cluster.model {
                None => return Err(self.err("cluster.model", "a tiresias cluster spec names no GPU model: give `model`")),
                Some(m) => {
                    self.lookup_model(catalogue, "cluster.model", m)?;
                }
            }
        }
        if let Some(t) = &self.speed_table {
            if !t.path.is_file() {
                return Err(self.err("speed_table.path", format!("no such file: {}", t.path.display())));
            }
        }
        let (mut nodes, mut devices) = (0u64, 0u64);
        for (i, group) in self.cluster.nodes.iter().enumerate() {
            let prefix = format!("cluster.nodes[{i}]");
            if group.count == 0 {
                return Err(self.err(format!("{prefix}.count"), "expected a positive integer, found 0"));
            }
            let mut per_node = 0u64;
            if let Some(groups) = &group.devices {
                if groups.groups().is_empty() {
                    return Err(self.err(
                        format!("{prefix}.devices"),
                        "expected at least one { model, count } table; omit `devices` for a CPU-only node",
                    ));
                }
                for (j, g) in groups.groups().iter().enumerate() {
                    let key = groups.key(&prefix, j);
                    self.lookup_model(catalogue, &format!("{key}.model"), &g.model)?;
                    if g.count == 0 {
                        return Err(self.err(format!("{key}.count"), "expected a positive integer, found 0"));
                    }
                    per_node += g.count as u64;
                }
            }
            if per_node == 0 && group.cpu_cores <= 0.0 {
                return Err(self.err(
                    format!("{prefix}.cpu_cores"),
                    "a node without devices needs a positive number of CPU cores",
                ));
            }
            for (field, v) in [("cpu_cores", group.cpu_cores), ("mem_gib", group.mem_gib)] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(
                        self.err(format!("{prefix}.{field}"), format!("expected a non-negative number, found {v}"))
                    );
                }
            }
            if group.cpu_cores * 1000.0 > u32::MAX as f64 {
                return Err(self.err(
                    format!("{prefix}.cpu_cores"),
                    format!("expected at most {} cores per node, found {}", u32::MAX / 1000, group.cpu_cores),
                ));
            }
            nodes += group.count as u64;
            devices += per_node * group.count as u64;
            if nodes > MAX_NODES {
                return Err(
                    self.err(format!("{prefix}.count"), format!("the cluster may have at most {MAX_NODES} nodes"))
                );
            }
            if devices > MAX_DEVICES {
                return Err(
                    self.err(format!("{prefix}.count"), format!("the cluster may have at most {MAX_DEVICES} devices"))
                );
            }
        }
        Ok(())
    }

    fn validate_workload(&self) -> Result<(), ScenarioError> {
        match (&self.workload.synthetic, &self.workload.trace) {
            (Some(_), Some(_)) => {
                Err(self.err("workload", "expected exactly one of `synthetic` and `trace`, found both"))
            }
            (None, None) => Err(self.err(
                "workload",
                "expected exactly one of `synthetic = { jobs, interarrival, duration, ... }` and `trace = { format, path }`, found neither",
            )),
            (Some(s), None) => self.validate_synthetic(s).and_then(|_| self.validate_transforms()),
            (None, Some(t)) => {
                // The options were checked against the format when the file was read.
                let exists = t.path.is_file() || (t.format.reads_directories() && t.path.is_dir());
                if !exists {
                    return Err(self.err("workload.trace.path", format!("no such file: {}", t.path.display())));
                }
                if let Some((option, p)) = t.options.paths().find(|(_, p)| !p.is_file()) {
                    return Err(self.err(format!("workload.trace.{option}"), format!("no such file: {}", p.display())));
                }
                self.validate_transforms()
            }
        }
    }

    fn validate_transforms(&self) -> Result<(), ScenarioError> {
        let w = &self.workload;
        if let Some([start, end]) = w.window_s {
            if !(start.is_finite() && end.is_finite() && start >= 0.0 && start < end) {
                return Err(self.err("workload.window_s", format!("expected [start, end] seconds with 0 <= start < end, found [{start}, {end}]")));
            }
        }
        if w.first_jobs == Some(0) {
            return Err(self.err("workload.first_jobs", "expected a positive integer, found 0"));
        }
        if w.max_devices == Some(0) {
            return Err(self.err("workload.max_devices", "expected a positive integer, found 0"));
        }
        if w.only_tenants.as_ref().is_some_and(|t| t.is_empty()) {
            return Err(self.err("workload.only_tenants", "expected at least one tenant name"));
        }
        Ok(())
    }

    fn validate_synthetic(&self, s: &SyntheticSpec) -> Result<(), ScenarioError> {
        let key = |k: &str| format!("workload.synthetic.{k}");
        if s.jobs == 0 {
            return Err(self.err(key("jobs"), "expected a positive integer, found 0"));
        }
        if s.jobs > MAX_SYNTHETIC_JOBS {
            return Err(self.err(key("jobs"), format!("expected at most {MAX_SYNTHETIC_JOBS} jobs, found {}", s.jobs)));
        }
        if s.tenants == 0 || s.tenants > MAX_TENANTS {
            return Err(self.err(key("tenants"), format!("expected 1 to {MAX_TENANTS} tenants, found {}", s.tenants)));
        }
        for (name, dist) in [
            ("interarrival", &s.interarrival),
            ("duration", &s.duration),
            ("devices", &s.devices),
            ("priority", &s.priority),
        ] {
            dist.validate().map_err(|m| self.err(key(name), m))?;
        }
        for (name, dist) in [("interarrival", &s.interarrival), ("duration", &s.duration)] {
            if dist.min_value() < 0.0 {
                return Err(self.err(
                    key(name),
                    format!("expected a distribution of non-negative seconds, but it can yield {}", dist.min_value()),
                ));
            }
            // An unbounded distribution is checked by its mean here, and each draw when the
            // jobs are made.
            let largest = if dist.max_value().is_finite() { dist.max_value() } else { dist.mean() };
            if largest > MAX_DURATION_S {
                return Err(self.err(key(name), format!("it can yield {largest:?} s, beyond the bound of {MAX_DURATION_TEXT}")));
            }
        }
        if s.devices.min_value() < 0.0 {
            return Err(self.err(key("devices"), format!("expected a distribution of device counts >= 0, but it can yield {}", s.devices.min_value())));
        }
        let largest = if s.devices.max_value().is_finite() { s.devices.max_value() } else { s.devices.mean() };
        if largest > f64::from(MAX_DEVICES_PER_JOB) {
            return Err(self.err(key("devices"), format!("it can yield {largest:?} devices per job, beyond the bound of {MAX_DEVICES_PER_JOB}")));
        }
        for (name, v) in
            [("cpu_cores_per_device", s.cpu_cores_per_device), ("mem_gib_per_device", s.mem_gib_per_device)]
        {
            if !(v.is_finite() && v >= 0.0) {
                return Err(self.err(key(name), format!("expected a non-negative number, found {v}")));
            }
        }
        if s.classes.is_empty() {
            return Err(self.err(key("classes"), "expected at least one class name"));
        }
        for (i, class) in s.classes.iter().enumerate() {
            if s.classes[..i].contains(class) {
                return Err(self.err(format!("{}[{i}]", key("classes")), format!("class `{class}` is listed twice")));
            }
        }
        Ok(())
    }

    fn validate_policies(&self) -> Result<(), ScenarioError> {
        if self.policies.is_empty() {
            return Err(self.err("policies", "expected at least one [[policies]] entry, e.g. name = \"fifo\""));
        }
        for (i, spec) in self.policies.iter().enumerate() {
            // Tenant names are resolved when the workload is built (the runner).
            Policy::check_spec(spec).map_err(|e| self.err(format!("policies[{i}].{}", e.key), e.message))?;
            // A label names the run's output directory, so it must be a safe, plain name.
            let label = spec.label();
            let safe = !label.is_empty()
                && label != "."
                && label != ".."
                && label.chars().all(|c| c.is_ascii_alphanumeric() || "+-_.".contains(c));
            if !safe {
                let key = if spec.label.is_some() { "label" } else { "name" };
                return Err(self.err(
                    format!("policies[{i}].{key}"),
                    format!("expected a label of letters, digits, `+`, `-`, `_` and `.` (it names the output directory), found `{label}`"),
                ));
            }
            if let Some(j) = self.policies[..i].iter().position(|p| p.label() == spec.label()) {
                let key = if spec.label.is_some() { "label" } else { "name" };
                return Err(self.err(
                    format!("policies[{i}].{key}"),
                    format!(
                        "policies[{j}] is already labelled `{}`; give one of them a distinct `label`",
                        spec.label()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_speed(&self, catalogue: &Catalogue) -> Result<(), ScenarioError> {
        let mut seen = Vec::with_capacity(self.speed.len());
        for (i, entry) in self.speed.iter().enumerate() {
            let model = self.lookup_model(catalogue, &format!("speed[{i}].model"), &entry.model)?;
            if !(entry.relative.is_finite() && entry.relative > 0.0) {
                return Err(self.err(
                    format!("speed[{i}].relative"),
                    format!("expected a positive number, found {}", entry.relative),
                ));
            }
            if let Some(j) = seen.iter().position(|(c, m)| *c == entry.class.as_str() && *m == model) {
                return Err(self.err(
                    format!("speed[{i}]"),
                    format!("speed[{j}] already gives class `{}` on `{}`", entry.class, catalogue.name(model)),
                ));
            }
            seen.push((entry.class.as_str(), model));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name = "mm8"
seed = 7
replications = 3

[[cluster.nodes]]
count = 8
devices = { model = "V100-32GB", count = 1 }
cpu_cores = 16
mem_gib = 64
name = "v100"

[workload]
synthetic = { jobs = 100000, interarrival = { dist = "exponential", mean_s = 100.0 }, duration = { dist = "exponential", mean_s = 700.0 }, devices = { dist = "constant", value = 1 } }

[[policies]]
name = "fifo"
[[policies]]
name = "sjf"
placement = "best-fit"
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml_str(text, Path::new("scenarios/x.toml"))
    }

    #[test]
    fn sweep_points_are_the_cross_product_and_apply() {
        let s = parse(&format!("{EXAMPLE}\n[sweep]\nload_scale = [0.5, 2]\nnodes_scale = [0.1, 1.5]\ngrace_s = [0]\n")).unwrap();
        let points = s.sweep_points();
        let labels: Vec<String> = points.iter().map(SweepPoint::label).collect();
        assert_eq!(
            labels,
            [
                "load_scale=0.5,nodes_scale=0.1,grace_s=0",
                "load_scale=0.5,nodes_scale=1.5,grace_s=0",
                "load_scale=2,nodes_scale=0.1,grace_s=0",
                "load_scale=2,nodes_scale=1.5,grace_s=0"
            ]
        );
        let p = s.at_sweep_point(&points[1]).unwrap();
        assert_eq!(p.workload.load_scale, Some(0.5));
        assert_eq!(p.cluster.nodes[0].count, 12);
        assert!(p.policies.iter().all(|x| x.grace_s == Some(0.0)));
        // Scaled down, a group keeps at least one node.
        assert_eq!(s.at_sweep_point(&points[0]).unwrap().cluster.nodes[0].count, 1);
        // No sweep: one empty point.
        assert_eq!(parse(EXAMPLE).unwrap().sweep_points(), vec![SweepPoint::default()]);
        let e = parse(&format!("{EXAMPLE}\n[sweep]\nnodes_scale = [1, inf]\n")).unwrap_err();
        assert_eq!(e.key(), Some("sweep.nodes_scale[1]"), "{e}");
        let e = parse(&format!("{EXAMPLE}\n[sweep]\nmin_runtime_s = [5, 5]\n")).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e = parse(&format!("{EXAMPLE}\n[metrics]\nsubmit_window_s = [5, 1]\n")).unwrap_err();
        assert_eq!(e.key(), Some("metrics.submit_window_s"), "{e}");
    }

    #[test]
    fn policy_keys_sweep_on_every_policy_or_on_one_by_label() {
        let text = format!("{EXAMPLE}\n[sweep.policy]\nbackfill_depth = [10, 100]\n[sweep.policy.sjf]\ngrace_s = [0, 5.5]\n");
        let s = parse(&text).unwrap();
        let points = s.sweep_points();
        let labels: Vec<String> = points.iter().map(SweepPoint::label).collect();
        assert_eq!(
            labels,
            [
                "policy.backfill_depth=10,policy.sjf.grace_s=0",
                "policy.backfill_depth=10,policy.sjf.grace_s=5.5",
                "policy.backfill_depth=100,policy.sjf.grace_s=0",
                "policy.backfill_depth=100,policy.sjf.grace_s=5.5"
            ]
        );
        let p = s.at_sweep_point(&points[3]).unwrap();
        assert!(p.policies.iter().all(|x| x.backfill_depth == Some(100)), "{:?}", p.policies);
        assert_eq!((p.policies[0].grace_s, p.policies[1].grace_s), (None, Some(5.5)), "the labelled table sets sjf's alone");
        assert!(!s.sweep.is_empty());

        let error = |sweep: &str| parse(&format!("{EXAMPLE}\n{sweep}\n")).unwrap_err();
        let e = error("[sweep.policy]\nbackfil_depth = [1]");
        assert_eq!(e.key(), Some("sweep.policy.backfil_depth"), "{e}");
        assert!(e.to_string().contains("backfill_depth, round_s"), "the keys are listed: {e}");
        let e = error("[sweep.policy.las]\nround_s = [60]");
        assert_eq!(e.key(), Some("sweep.policy.las"), "{e}");
        assert!(e.to_string().contains("the labels are fifo, sjf"), "{e}");
        let e = error("[sweep.policy]\nbackfill_depth = [1.5]");
        assert_eq!(e.key(), Some("sweep.policy.backfill_depth[0]"), "{e}");
        assert!(e.to_string().contains("whole number"), "{e}");
        let e = error("[sweep.policy]\nround_s = [\"60\"]");
        assert_eq!(e.key(), Some("sweep.policy.round_s[0]"), "{e}");
        assert!(e.to_string().contains("found string"), "{e}");
        let e = error("[sweep.policy]\nround_s = 60");
        assert!(e.to_string().contains("expected a list of numbers, found integer"), "{e}");
        // A value the policy registry refuses is named with the policy it would break.
        let e = error("[sweep.policy]\nbackfill_depth = [100, 0]");
        assert_eq!(e.key(), Some("sweep.policy.backfill_depth[1]"), "{e}");
        assert!(e.to_string().contains("policies[0] (`fifo`) with backfill_depth = 0"), "{e}");
    }

    #[test]
    fn the_documented_example_parses() {
        let s = parse(EXAMPLE).unwrap();
        assert_eq!(s.name, "mm8");
        assert_eq!(s.seed, 7);
        assert_eq!(s.replications_seeds_for_test(), vec![7, 8, 9]);
        assert_eq!(s.policies.len(), 2);
        assert_eq!(s.policies[1].placement.as_deref(), Some("best-fit"));
        let syn = s.workload.synthetic.as_ref().unwrap();
        assert_eq!(syn.jobs, 100_000);
        assert_eq!(syn.interarrival, DistSpec::Exponential { mean_s: 100.0 });
        assert_eq!(syn.classes, vec!["default".to_string()]);
        assert_eq!(s.horizon(), None);
    }

    impl Scenario {
        fn replications_seeds_for_test(&self) -> Vec<u64> {
            self.replication_seeds().collect()
        }
    }

    #[test]
    fn the_error_message_shape() {
        let e = parse(&EXAMPLE.replace("jobs = 100000", "jobs = 0")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("scenarios/x.toml: key `workload.synthetic.jobs`: expected a positive integer, found 0 (line 14, column 22)"),
            "{text}"
        );
    }

    #[test]
    fn mixed_nodes_and_custom_models() {
        let text = EXAMPLE.replace(
            "devices = { model = \"V100-32GB\", count = 1 }",
            "devices = [{ model = \"V100-32GB\", count = 2 }, { model = \"G2\" }]",
        ) + "\n[[cluster.models]]\nname = \"G2\"\nkind = \"gpu\"\nundisclosed = true\n";
        let s = parse(&text).unwrap();
        let groups = s.cluster.nodes[0].devices.as_ref().unwrap().groups();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1].count, 1);
        assert!(s.catalogue().unwrap().lookup("g2").is_some());
        let e = parse(&text.replace("{ model = \"G2\" }", "{ model = \"G3\" }")).unwrap_err();
        assert_eq!(e.key(), Some("cluster.nodes[0].devices[1].model"), "{e}");
        assert!(e.to_string().contains("G2") && e.to_string().contains("K80"), "{e}");
    }

    #[test]
    fn locations_are_one_based() {
        assert_eq!(Location::of_offset("ab\ncd", 4), Location { line: 2, column: 2 });
        assert_eq!(Location::of_offset("", 10), Location { line: 1, column: 1 });
        assert_eq!(Location::of_offset("é\nx", 1), Location { line: 1, column: 1 });
    }
}
