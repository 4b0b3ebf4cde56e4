//! The daemon's configuration: the `[daemon]` table of `exec.toml`.

use crate::error::ExecError;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};
use tessera_core::limits;
use tessera_core::PolicySpec;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Holds `journal.sqlite`, `jobs/<id>/{stdout,stderr}` and `checkpoints/<id>/`.
    pub state_dir: PathBuf,
    /// The policy at start; it passes the gate like any policy change.
    #[serde(default = "default_policy")]
    pub policy: PolicySpec,
    /// A validation record (JSON, as `tessera validate` writes it) that admits `policy`.
    #[serde(default)]
    pub validation_record: Option<PathBuf>,
    /// Run a policy no record admits (logged loudly and journalled).
    #[serde(default)]
    pub allow_unvalidated: bool,
    #[serde(default)]
    pub cpu: CpuConfig,
    #[serde(default)]
    pub gpu: GpuConfig,
    #[serde(default)]
    pub health: HealthConfig,
    /// Durability and retention of the journal (`journal.sqlite`).
    #[serde(default)]
    pub journal: JournalConfig,
    /// Grace between SIGTERM and SIGKILL for time limits and shutdown (preemption and
    /// cancellation use the policy's grace).
    #[serde(default = "default_grace_s")]
    pub grace_s: f64,
    /// Attempts after a failure to start, for jobs that do not say.
    #[serde(default = "default_launch_retries")]
    pub launch_retries: u32,
    /// First wait before a retry; doubles with each attempt.
    #[serde(default = "default_retry_backoff_s")]
    pub retry_backoff_s: f64,
    /// The node's name; default: the host name.
    #[serde(default)]
    pub node_name: Option<String>,
    /// Memory the scheduler may hand out on this node; default: MemTotal from /proc/meminfo.
    #[serde(default)]
    pub node_mem_mib: Option<u64>,
    /// The tenant table (`[[daemon.tenants]] name = "team-a"`), in tenant-id order. When it is
    /// given, a job may only be submitted as one of these tenants, and a policy's quotas and
    /// weights resolve against it exactly as a scenario's resolve against its workload's
    /// tenants. Without it, tenants are numbered as they first submit and a policy that names
    /// a tenant is refused.
    #[serde(default)]
    pub tenants: Vec<TenantEntry>,
    /// The fleet's speed matrix, as a scenario gives it: a file (Gavel's throughput JSON or a
    /// `job_class,model,relative_speed` CSV) ...
    #[serde(default)]
    pub speed_table: Option<tessera_driver::speed::SpeedTableSpec>,
    /// ... and `[[daemon.speed]]` cells over it (`class`, `model`, `relative`).
    #[serde(default)]
    pub speed: Vec<tessera_driver::speed::SpeedEntry>,
    /// The job classes, in class-id order; default: the classes the speed sources name, in
    /// the order they first appear. A job names its class with `job_class`.
    #[serde(default)]
    pub job_classes: Option<Vec<String>>,
    /// Nodes and devices that exist only here (the `simulated` backend), beside or instead of
    /// this machine's.
    #[serde(default)]
    pub simulated: Option<SimulatedConfig>,
    /// Acknowledges that the jobs of several tenants run as one Unix user (the daemon's, or a
    /// shared `run_as`), so that they can signal each other and read each other's files.
    /// Without it, a tenant table of two or more tenants needs a distinct `run_as` for each.
    /// Logged as a warning at every start.
    #[serde(default)]
    pub single_user: bool,
    /// Each job in its own cgroup with its memory and CPU limits: `"auto"` (default: where the
    /// cgroup hierarchy is writable, else process groups only, said once at start), `"off"`,
    /// or `"required"` (refuse to start without them).
    #[serde(default)]
    pub cgroups: crate::cgroup::CgroupMode,
}

/// Nodes and devices that exist only in the configuration (the `simulated` device backend).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedConfig {
    #[serde(default)]
    pub nodes: Vec<SimulatedNode>,
}

/// `[[daemon.simulated.nodes]] name = "n1", cpu_milli = 16000, mem_mib = 65536, devices = [{ model = "V100-32GB", count = 4 }]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedNode {
    pub name: String,
    #[serde(default)]
    pub cpu_milli: u32,
    #[serde(default)]
    pub mem_mib: u64,
    #[serde(default)]
    pub devices: Vec<SimulatedDevices>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedDevices {
    /// A catalogue model name.
    pub model: String,
    #[serde(default = "one")]
    pub count: u32,
}

/// One tenant of the executor's tenant table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantEntry {
    pub name: String,
    /// The Unix user this tenant's jobs run as (uid, primary gid, no supplementary groups, a
    /// clean environment). Needs a daemon running as root, unless it is the daemon's own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

impl TenantEntry {
    pub fn named(name: impl Into<String>) -> TenantEntry {
        TenantEntry { name: name.into(), run_as: None }
    }
}

/// The context policies are built in on this executor: tenants, job classes and the speed
/// matrix, resolved from the configuration (the device models come from discovery).
#[derive(Clone, Debug)]
pub struct PolicyTables {
    pub tenants: Vec<String>,
    pub classes: Vec<String>,
    /// Speed cells by name, in the order they apply (later ones override).
    pub speed_cells: Vec<(String, String, String, f64)>,
}

impl PolicyTables {
    /// The dense speed table over this executor's classes and `catalogue`.
    pub fn speeds(&self, catalogue: &tessera_core::Catalogue) -> Result<tessera_core::policy::SpeedTable, ExecError> {
        tessera_driver::speed::layer(&self.classes, catalogue, self.speed_cells.iter().map(|(key, c, m, r)| (key.clone(), c.as_str(), m.as_str(), *r)))
            .map_err(|e| ExecError::invalid(e.key, e.message))
    }
}

fn default_policy() -> PolicySpec {
    PolicySpec::named("fifo")
}
fn default_grace_s() -> f64 {
    10.0
}
fn default_launch_retries() -> u32 {
    3
}
fn default_retry_backoff_s() -> f64 {
    1.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuConfig {
    /// How many CPU devices to offer: a count, or `"all"` (every online core group).
    #[serde(default)]
    pub devices: CpuDevices,
    /// Cores per CPU device (a job on one device is pinned to these cores).
    #[serde(default = "one")]
    pub cores_per_device: u32,
    /// Catalogue model for CPU devices; default `cpu-core`, added to the catalogue when absent.
    #[serde(default)]
    pub model: Option<String>,
}

fn one() -> u32 {
    1
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig { devices: CpuDevices::All, cores_per_device: 1, model: None }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CpuDevices {
    Count(u32),
    #[default]
    #[serde(serialize_with = "ser_all")]
    All,
}

fn ser_all<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("all")
}

impl<'de> Deserialize<'de> for CpuDevices {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CpuDevices;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of CPU devices or \"all\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CpuDevices, E> {
                u32::try_from(v).map(CpuDevices::Count).map_err(|_| E::custom(format!("{v} CPU devices is too many")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CpuDevices, E> {
                if v < 0 {
                    return Err(E::custom(format!("expected a number of CPU devices or \"all\", found {v}")));
                }
                self.visit_u64(v as u64)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CpuDevices, E> {
                if v == "all" {
                    Ok(CpuDevices::All)
                } else {
                    Err(E::custom(format!("expected a number of CPU devices or \"all\", found \"{v}\"")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuConfig {
    /// `"auto"`: use NVML when the driver is there; `true`: fail to start without it; `false`.
    #[serde(default)]
    pub enabled: GpuEnabled,
    /// Offer MIG instances as devices where a GPU has MIG enabled.
    #[serde(default = "yes")]
    pub mig: bool,
    /// The NVML library to load: a path (a driver installed outside the dynamic loader's
    /// search path, e.g. mounted into a container), or a bare file name the loader searches
    /// for. Default: [`DEFAULT_NVML_LIBRARY`], found by the dynamic loader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_library: Option<PathBuf>,
}

/// The NVML library loaded when `gpu.nvml_library` is not set (searched by the dynamic loader).
pub const DEFAULT_NVML_LIBRARY: &str = "libnvidia-ml.so.1";

impl GpuConfig {
    /// The library to load: `nvml_library`, or [`DEFAULT_NVML_LIBRARY`].
    pub fn nvml_library(&self) -> &Path {
        self.nvml_library.as_deref().unwrap_or(Path::new(DEFAULT_NVML_LIBRARY))
    }
}

fn yes() -> bool {
    true
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig { enabled: GpuEnabled::Auto, mig: true, nvml_library: None }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuEnabled {
    #[default]
    Auto,
    On,
    Off,
}

/// Written as it is read: `"auto"`, `true` or `false`.
impl Serialize for GpuEnabled {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GpuEnabled::Auto => s.serialize_str("auto"),
            GpuEnabled::On => s.serialize_bool(true),
            GpuEnabled::Off => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for GpuEnabled {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = GpuEnabled;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or \"auto\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<GpuEnabled, E> {
                Ok(if v { GpuEnabled::On } else { GpuEnabled::Off })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GpuEnabled, E> {
                match v {
                    "auto" => Ok(GpuEnabled::Auto),
                    other => Err(E::custom(format!("expected true, false or \"auto\", found \"{other}\""))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Health thresholds: a device past any of them is cordoned (`DeviceFailed`) until its
/// readings are back within them. Unset thresholds are not checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Seconds between polls.
    #[serde(default = "default_health_interval_s")]
    pub interval_s: f64,
    #[serde(default)]
    pub max_temp_c: Option<f64>,
    /// GPU memory used / total; for CPU devices, the node's memory used / total.
    #[serde(default)]
    pub max_mem_used_fraction: Option<f64>,
    /// Uncorrected ECC errors since the driver loaded.
    #[serde(default)]
    pub max_ecc_uncorrected: Option<u64>,
    /// One-minute load average per online core (CPU devices).
    #[serde(default)]
    pub max_load_per_core: Option<f64>,
    /// NVIDIA Xid codes after which the GPU needs a reset: the device is cordoned
    /// (`DeviceFailed`) until the executor restarts. Every Xid is journalled; only these
    /// cordon. Default: [`DEFAULT_FATAL_XIDS`].
    #[serde(default = "default_fatal_xids")]
    pub fatal_xids: Vec<u64>,
}

/// Xids that mean the GPU is not to be trusted until it is reset (NVIDIA's Xid catalogue,
/// "Xid errors" and its Xid catalogue): 48 double-bit ECC error; 64 ECC page retirement or
/// row-remapping recording failure; 74 NVLink error; 79 GPU has fallen off the bus; 94
/// contained ECC error (the process using the memory is killed; the row is remapped at the
/// next reset); 95 uncontained ECC error; 119 GSP RPC timeout; 120 GSP error. Not in the list
/// (journalled only): application faults such as 13 (graphics engine exception), 31 (memory
/// page fault), 43 (GPU stopped processing) and 45 (preemptive cleanup), which end one
/// process and leave the GPU usable, and 63/92 (a page retired, a high single-bit ECC rate),
/// which are warnings.
pub const DEFAULT_FATAL_XIDS: &[u64] = &[48, 64, 74, 79, 94, 95, 119, 120];

fn default_fatal_xids() -> Vec<u64> {
    DEFAULT_FATAL_XIDS.to_vec()
}

fn default_health_interval_s() -> f64 {
    5.0
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { interval_s: default_health_interval_s(), max_temp_c: None, max_mem_used_fraction: None, max_ecc_uncorrected: None, max_load_per_core: None, fatal_xids: default_fatal_xids() }
    }
}

impl HealthConfig {
    pub fn validate(&self) -> Result<(), ExecError> {
        // Below a millisecond the poll timer's period would round to zero, which tokio refuses.
        if !(self.interval_s.is_finite() && self.interval_s >= 0.001) {
            return Err(ExecError::invalid("health.interval_s", format!("expected at least 0.001 seconds, found {}", self.interval_s)));
        }
        limits::check_secs(self.interval_s, false).map_err(|m| ExecError::invalid("health.interval_s", m))?;
        if let Some(f) = self.max_mem_used_fraction {
            if !(0.0..=1.0).contains(&f) {
                return Err(ExecError::invalid("health.max_mem_used_fraction", format!("expected a fraction in [0, 1], found {f}")));
            }
        }
        for (key, v) in [("health.max_temp_c", self.max_temp_c), ("health.max_load_per_core", self.max_load_per_core)] {
            if let Some(v) = v {
                if !v.is_finite() || v < 0.0 {
                    return Err(ExecError::invalid(key, format!("expected a finite number >= 0, found {v}")));
                }
            }
        }
        Ok(())
    }
}

/// When a commit is on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalSync {
    /// `PRAGMA synchronous=FULL`: the WAL is fsynced at every commit, so a committed
    /// submission, start or end is on disk before anyone hears of it; it survives a crash of
    /// the executor, of the kernel, and a power loss. One fsync per batch of inputs.
    #[default]
    Full,
    /// `PRAGMA synchronous=NORMAL` (WAL): no fsync at commit, only at checkpoints. Survives a
    /// crash of the executor (the WAL is in the kernel's page cache), but a kernel crash or a
    /// power loss may lose the last transactions acknowledged before it: a submission the
    /// caller was told was accepted may be gone, and a job whose end was lost is run again.
    /// The journal itself stays consistent (never corrupt).
    Normal,
}

/// The journal's durability and retention. Recovery reads only the `jobs` rows, `meta` and
/// `devices` (and the latest event's time, so the clock never goes back); `events` are the
/// audit log and the source of `export-trace`'s decision provenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// `"full"` (default) or `"normal"`: see [`JournalSync`].
    #[serde(default)]
    pub sync: JournalSync,
    /// Events older than this many days are deleted, except those of live jobs (queued,
    /// launching, running, preempting) and the latest event. Unset: events are kept forever.
    /// Default 30; `"forever"`: never deleted for their age.
    #[serde(default = "default_keep_events_days", deserialize_with = "number_or_forever", serialize_with = "ser_forever")]
    pub keep_events_days: Option<f64>,
    /// Ended jobs (finished, failed, killed, cancelled, rejected) kept: the rows of older
    /// ended jobs and all their events are deleted; live jobs are never deleted. Unset: kept
    /// forever. Default 100000; `"forever"`: ended jobs are never deleted.
    #[serde(default = "default_keep_finished_jobs", deserialize_with = "number_or_forever", serialize_with = "ser_forever")]
    pub keep_finished_jobs: Option<u64>,
    /// Seconds between compactions while the daemon runs (one also runs at start-up).
    /// Default 600.
    #[serde(default = "default_compact_interval_s")]
    pub compact_interval_s: f64,
}

/// A number, or `"forever"` for no limit.
fn number_or_forever<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Limit<T> {
        Number(T),
        Word(String),
    }
    match Limit::<T>::deserialize(d) {
        Ok(Limit::Number(n)) => Ok(Some(n)),
        Ok(Limit::Word(w)) if w == "forever" => Ok(None),
        Ok(Limit::Word(w)) => Err(serde::de::Error::custom(format!("expected a number or \"forever\", found \"{w}\""))),
        Err(_) => Err(serde::de::Error::custom("expected a number >= 0 or \"forever\"")),
    }
}

fn ser_forever<S: serde::Serializer, T: Serialize>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => n.serialize(s),
        None => s.serialize_str("forever"),
    }
}

fn default_keep_events_days() -> Option<f64> {
    Some(30.0)
}
fn default_keep_finished_jobs() -> Option<u64> {
    Some(100_000)
}
fn default_compact_interval_s() -> f64 {
    600.0
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            sync: JournalSync::Full,
            keep_events_days: default_keep_events_days(),
            keep_finished_jobs: default_keep_finished_jobs(),
            compact_interval_s: default_compact_interval_s(),
        }
    }
}

impl JournalConfig {
    pub fn validate(&self) -> Result<(), ExecError> {
        if let Some(d) = self.keep_events_days {
            let max_days = limits::MAX_DURATION_S / 86_400.0;
            if !(d.is_finite() && d >= 0.0 && d <= max_days) {
                return Err(ExecError::invalid(
                    "journal.keep_events_days",
                    format!("expected a number of days in [0, {max_days}], found {d}; the bound is 100 years (or \"forever\")"),
                ));
            }
        }
        limits::check_secs(self.compact_interval_s, false).map_err(|m| ExecError::invalid("journal.compact_interval_s", m))?;
        Ok(())
    }

    /// Events older than this (µs) are compacted away; `None`: kept forever.
    pub fn keep_events_us(&self) -> Option<u64> {
        self.keep_events_days.map(|d| (d * 86_400e6) as u64)
    }
}

impl DaemonConfig {
    /// A configuration with every default, for tests and examples.
    pub fn new(state_dir: impl Into<PathBuf>) -> DaemonConfig {
        DaemonConfig {
            state_dir: state_dir.into(),
            policy: default_policy(),
            validation_record: None,
            allow_unvalidated: false,
            cpu: CpuConfig::default(),
            gpu: GpuConfig::default(),
            health: HealthConfig::default(),
            journal: JournalConfig::default(),
            grace_s: default_grace_s(),
            launch_retries: default_launch_retries(),
            retry_backoff_s: default_retry_backoff_s(),
            node_name: None,
            node_mem_mib: None,
            tenants: Vec::new(),
            speed_table: None,
            speed: Vec::new(),
            job_classes: None,
            simulated: None,
            single_user: false,
            cgroups: crate::cgroup::CgroupMode::Auto,
        }
    }

    pub fn validate(&self) -> Result<(), ExecError> {
        if self.state_dir.as_os_str().is_empty() {
            return Err(ExecError::invalid("state_dir", "the state directory is empty"));
        }
        if self.cpu.cores_per_device == 0 {
            return Err(ExecError::invalid("cpu.cores_per_device", "expected at least 1 core per device, found 0"));
        }
        for (key, v) in [("grace_s", self.grace_s), ("retry_backoff_s", self.retry_backoff_s)] {
            limits::check_secs(v, true).map_err(|m| ExecError::invalid(key, m))?;
        }
        if self.launch_retries > limits::MAX_RETRIES {
            return Err(ExecError::invalid("launch_retries", format!("{} retries is beyond the bound of {}", self.launch_retries, limits::MAX_RETRIES)));
        }
        if let Some(m) = self.node_mem_mib.filter(|&m| m > limits::MAX_MEM_MIB) {
            return Err(ExecError::invalid("node_mem_mib", format!("{m} MiB is beyond the bound of {} MiB (1 EiB)", limits::MAX_MEM_MIB)));
        }
        if self.gpu.nvml_library.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(ExecError::invalid("gpu.nvml_library", "the path is empty; leave the key out for the default (libnvidia-ml.so.1)"));
        }
        self.health.validate()?;
        self.journal.validate()?;
        let tables = self.policy_tables()?;
        tessera_core::Policy::from_spec_with_tenants(&self.policy, &tables.tenants).map_err(|e| ExecError::invalid(format!("policy.{}", e.key), e.message))?;
        Ok(())
    }

    /// The tenant table, the job classes and the speed cells this configuration declares (the
    /// speed-table file is read here). Duplicate tenants or classes are errors.
    pub fn policy_tables(&self) -> Result<PolicyTables, ExecError> {
        let mut tenants: Vec<String> = Vec::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(ExecError::invalid(format!("tenants[{i}].name"), "the tenant name is empty"));
            }
            if tenants.contains(&t.name) {
                return Err(ExecError::invalid(format!("tenants[{i}].name"), format!("tenant `{}` is listed twice", t.name)));
            }
            if let Some(user) = &t.run_as {
                if user.is_empty() || user.contains(['\0', ':', '/']) || user.trim() != user {
                    return Err(ExecError::invalid(format!("tenants[{i}].run_as"), format!("`{user}` is not a Unix user name")));
                }
            }
            tenants.push(t.name.clone());
        }
        let mut speed_cells = Vec::new();
        if let Some(table) = &self.speed_table {
            let cells = tessera_driver::speed::load_speed_table(table).map_err(|e| ExecError::invalid("speed_table.path", e.to_string()))?;
            speed_cells.extend(cells.into_iter().map(|(c, m, r)| ("speed_table".to_string(), c, m, r)));
        }
        for (i, e) in self.speed.iter().enumerate() {
            speed_cells.push((format!("speed[{i}]"), e.class.clone(), e.model.clone(), e.relative));
        }
        let classes = match &self.job_classes {
            Some(classes) => {
                for (i, c) in classes.iter().enumerate() {
                    if classes[..i].contains(c) {
                        return Err(ExecError::invalid(format!("job_classes[{i}]"), format!("class `{c}` is listed twice")));
                    }
                }
                classes.clone()
            }
            None => {
                let mut classes: Vec<String> = Vec::new();
                for (_, c, _, _) in &speed_cells {
                    if !classes.contains(c) {
                        classes.push(c.clone());
                    }
                }
                classes
            }
        };
        // The cells' models are checked at start, against the catalogue with the discovered models.
        Ok(PolicyTables { tenants, classes, speed_cells })
    }

    /// Parses a `[daemon]`-shaped TOML document (the table's contents); `origin` names it in errors.
    pub fn parse_toml(text: &str, origin: &str) -> Result<DaemonConfig, ExecError> {
        let config: DaemonConfig = tessera_driver::toml_input::from_toml(text).map_err(|e| {
            let at = e.location.map(|l| format!(" (line {})", l.line)).unwrap_or_default();
            ExecError::invalid(e.path, format!("{origin}{at}: {}", e.message))
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<DaemonConfig, ExecError> {
        let text = std::fs::read_to_string(path).map_err(|e| ExecError::invalid(String::new(), format!("{}: {e}", path.display())))?;
        Self::parse_toml(&text, &path.display().to_string())
    }

    pub fn journal_path(&self) -> PathBuf {
        self.state_dir.join("journal.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = DaemonConfig::parse_toml(
            "state_dir = '/tmp/x'\nallow_unvalidated = true\n[policy]\nname = 'priority'\ngrace_s = 2\n[cpu]\ndevices = 2\ncores_per_device = 1\n\
             [gpu]\nenabled = 'auto'\n[health]\ninterval_s = 1\nmax_mem_used_fraction = 0.9\n",
            "exec.toml",
        )
        .unwrap();
        assert_eq!(c.cpu.devices, CpuDevices::Count(2));
        assert_eq!(c.gpu.enabled, GpuEnabled::Auto);
        assert_eq!(c.policy.name, "priority");
        let c = DaemonConfig::parse_toml("state_dir = 's'\n[cpu]\ndevices = 'all'\n[gpu]\nenabled = false\n", "e").unwrap();
        assert_eq!((c.cpu.devices, c.gpu.enabled), (CpuDevices::All, GpuEnabled::Off));
    }

    #[test]
    fn the_nvml_library_defaults_to_the_loaders_and_can_be_a_path() {
        let c = DaemonConfig::parse_toml("state_dir = 's'\n", "e").unwrap();
        assert_eq!(c.gpu.nvml_library, None);
        assert_eq!(c.gpu.nvml_library(), Path::new("libnvidia-ml.so.1"));
        let c = DaemonConfig::parse_toml("state_dir = 's'\n[gpu]\nnvml_library = '/opt/nvidia/lib64/libnvidia-ml.so.1'\n", "e").unwrap();
        assert_eq!(c.gpu.nvml_library(), Path::new("/opt/nvidia/lib64/libnvidia-ml.so.1"));
        let again: DaemonConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn journal_keys_parse_and_default_to_durable() {
        let c = DaemonConfig::parse_toml("state_dir = 's'\n", "e").unwrap();
        assert_eq!(c.journal, JournalConfig::default());
        assert_eq!(c.journal.sync, JournalSync::Full);
        assert_eq!(c.health.fatal_xids, DEFAULT_FATAL_XIDS);
        let c = DaemonConfig::parse_toml(
            "state_dir = 's'\n[journal]\nsync = 'normal'\nkeep_events_days = 7\nkeep_finished_jobs = 500\ncompact_interval_s = 60\n[health]\nfatal_xids = [79]\n",
            "e",
        )
        .unwrap();
        assert_eq!(c.journal.sync, JournalSync::Normal);
        assert_eq!(c.journal.keep_events_us(), Some(7 * 86_400_000_000));
        assert_eq!((c.journal.keep_finished_jobs, c.journal.compact_interval_s), (Some(500), 60.0));
        assert_eq!(c.health.fatal_xids, vec![79]);
        let c = DaemonConfig::parse_toml("state_dir = 's'\n[journal]\nkeep_events_days = 'forever'\nkeep_finished_jobs = 'forever'\n", "e").unwrap();
        assert_eq!((c.journal.keep_events_days, c.journal.keep_finished_jobs), (None, None));
        let again: DaemonConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn broken_configs_name_the_key() {
        let cases = [
            ("state_dir = 's'\nbogus = 1\n", "bogus", "unknown field `bogus`"),
            ("state_dir = 's'\n[cpu]\ndevices = 'some'\n", "cpu.devices", "\"all\""),
            ("state_dir = 's'\n[cpu]\ndevices = -2\n", "cpu.devices", "-2"),
            ("state_dir = 's'\n[cpu]\ncores_per_device = 0\n", "cpu.cores_per_device", "0"),
            ("state_dir = 's'\n[gpu]\nenabled = 'yes'\n", "gpu.enabled", "\"yes\""),
            ("state_dir = 's'\n[gpu]\nnvml_library = ''\n", "gpu.nvml_library", "empty"),
            ("state_dir = 's'\n[gpu]\nnvml_library = 3\n", "gpu.nvml_library", "invalid type"),
            ("state_dir = 's'\n[health]\nmax_mem_used_fraction = 1.5\n", "health.max_mem_used_fraction", "1.5"),
            ("state_dir = 's'\n[policy]\nname = 'nope'\n", "policy.name", "unknown queue order"),
            ("state_dir = 's'\ngrace_s = -1\n", "grace_s", "-1"),
            ("state_dir = 's'\ngrace_s = 1e20\n", "grace_s", "100 years"),
            ("state_dir = 's'\nretry_backoff_s = 1e300\n", "retry_backoff_s", "100 years"),
            ("state_dir = 's'\nlaunch_retries = 4000000000\n", "launch_retries", "bound of 100"),
            ("state_dir = 's'\n[health]\ninterval_s = 1e-12\n", "health.interval_s", "0.001"),
            ("state_dir = 's'\n[health]\ninterval_s = 1e20\n", "health.interval_s", "100 years"),
            ("state_dir = 's'\n[journal]\nkeep_events_days = 1e300\n", "journal.keep_events_days", "100 years"),
            ("state_dir = 's'\n[journal]\ncompact_interval_s = 1e20\n", "journal.compact_interval_s", "100 years"),
            ("state_dir = 's'\n[policy]\nname = 'fifo'\ngrace_s = 1e20\n", "policy.grace_s", "100 years"),
            ("allow_unvalidated = true\n", "", "missing field `state_dir`"),
            ("state_dir = 's'\n[journal]\nsync = 'sometimes'\n", "journal.sync", "sometimes"),
            ("state_dir = 's'\n[journal]\nkeep_events_days = -3\n", "journal.keep_events_days", "-3"),
            ("state_dir = 's'\n[journal]\nkeep_finished_jobs = 'never'\n", "journal.keep_finished_jobs", "\"never\""),
            ("state_dir = 's'\n[journal]\nkeep_finished_jobs = -1\n", "journal.keep_finished_jobs", "\"forever\""),
            ("state_dir = 's'\n[journal]\ncompact_interval_s = 0\n", "journal.compact_interval_s", "0"),
            ("state_dir = 's'\n[journal]\nkeep_jobs = 5\n", "journal", "unknown field `keep_jobs`"),
            ("state_dir = 's'\n[health]\nfatal_xids = [79, -1]\n", "health.fatal_xids", "-1"),
        ];
        for (text, key, needle) in cases {
            match DaemonConfig::parse_toml(text, "exec.toml") {
                Err(ExecError::Invalid { field, message }) => {
                    assert!(field == key || field.starts_with(key) && !key.is_empty(), "{text}: field {field}, wanted {key}");
                    assert!(message.contains(needle), "{text}: {message}");
                }
                other => panic!("{text}: expected Invalid, got {other:?}"),
            }
        }
    }
}
