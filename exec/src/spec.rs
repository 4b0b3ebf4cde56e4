//! What a user submits: a command, its devices and limits. Parsed from TOML or JSON with
//! unknown keys refused, then checked by [`JobSubmission::validate`], which names the field at
//! fault. Device models are checked against the fleet by the daemon at submission.

use crate::error::ExecError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tessera_core::limits;

/// Environment variables the executor sets itself; a submission may not set them.
pub const RESERVED_ENV: &[&str] = &["CUDA_VISIBLE_DEVICES", "TESSERA_JOB_ID", "TESSERA_CHECKPOINT_DIR", "TESSERA_RESTART_COUNT", "TESSERA_DEVICES", "TESSERA_RUN_TOKEN"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSubmission {
    /// A label for people; need not be unique.
    #[serde(default)]
    pub name: String,
    /// The program to run (looked up in `PATH` when it has no `/`).
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Added to the daemon's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory; default: the job's directory under the state dir.
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    #[serde(default)]
    pub devices: DeviceAsk,
    /// CPU over the whole job, in thousandths of a core.
    #[serde(default)]
    pub cpu_milli: u32,
    #[serde(default)]
    pub mem_mib: u64,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Priority tier: larger is more important.
    #[serde(default)]
    pub priority: i32,
    /// The job resumes from `TESSERA_CHECKPOINT_DIR` when restarted (informational: the
    /// directory is kept for every job).
    #[serde(default)]
    pub checkpointable: bool,
    /// Wall-clock limit per run; the job is stopped (SIGTERM, grace, SIGKILL) when it is reached.
    /// At most [`limits::MAX_DURATION_S`] (100 years), as every duration here.
    #[serde(default)]
    pub time_limit_s: Option<f64>,
    /// What the submitter says the job takes (SJF and backfill read it).
    #[serde(default)]
    pub stated_duration_s: Option<f64>,
    /// Attempts after a failure to start; default: the daemon's `launch_retries`. At most
    /// [`limits::MAX_RETRIES`].
    #[serde(default)]
    pub retries: Option<u32>,
    /// Shell commands run in order before `command`, in the same environment; the job fails if
    /// one fails.
    #[serde(default)]
    pub warmup: Vec<String>,
    /// The job's class in the speed matrix (`[[daemon.speed]]`, `daemon.speed_table`), as a
    /// scenario's `job_class`; empty: a class of its own, 1.0 on every model.
    #[serde(default)]
    pub job_class: Option<String>,
}

fn default_tenant() -> String {
    "default".into()
}

fn default_share() -> f64 {
    1.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceAsk {
    /// Devices, all at once (a gang); 0 for a job that needs none. At most
    /// [`limits::MAX_DEVICES_PER_JOB`].
    #[serde(default)]
    pub count: u32,
    /// Share of each device, in (0, 1]; below 1 only with `count = 1`.
    #[serde(default = "default_share")]
    pub share: f64,
    /// Allowed device models (catalogue names, e.g. `H100`, `cpu-core`); empty: any.
    #[serde(default)]
    pub models: Vec<String>,
}

impl Default for DeviceAsk {
    fn default() -> Self {
        DeviceAsk { count: 0, share: 1.0, models: Vec::new() }
    }
}

impl DeviceAsk {
    /// The share in milli-devices, as the core counts it.
    pub fn share_milli(&self) -> u16 {
        (self.share * 1000.0).round().clamp(0.0, 1000.0) as u16
    }
}

/// A duration within [`limits::MAX_DURATION_S`]: beyond it the daemon's timers could not be
/// armed (`Duration` overflows at about 1.8e19 s).
fn bounded_secs(field: &str, v: Option<f64>, allow_zero: bool) -> Result<(), ExecError> {
    match v {
        Some(v) => limits::check_secs(v, allow_zero).map(drop).map_err(|m| ExecError::invalid(field, m)),
        None => Ok(()),
    }
}

impl JobSubmission {
    /// A job that runs `command` with no devices, for examples and tests.
    pub fn command(command: &str, args: &[&str]) -> JobSubmission {
        JobSubmission {
            name: String::new(),
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::new(),
            workdir: None,
            devices: DeviceAsk::default(),
            cpu_milli: 0,
            mem_mib: 0,
            tenant: default_tenant(),
            priority: 0,
            checkpointable: false,
            time_limit_s: None,
            stated_duration_s: None,
            retries: None,
            warmup: Vec::new(),
            job_class: None,
        }
    }

    /// Checks what serde cannot: ranges, combinations, reserved names.
    pub fn validate(&self) -> Result<(), ExecError> {
        if self.command.trim().is_empty() {
            return Err(ExecError::invalid("command", "the command is empty"));
        }
        if self.command.contains('\0') {
            return Err(ExecError::invalid("command", "contains a NUL byte"));
        }
        if let Some(i) = self.args.iter().position(|a| a.contains('\0')) {
            return Err(ExecError::invalid(format!("args[{i}]"), "contains a NUL byte"));
        }
        if self.tenant.trim().is_empty() {
            return Err(ExecError::invalid("tenant", "the tenant is empty"));
        }
        let d = &self.devices;
        if !d.share.is_finite() || d.share <= 0.0 || d.share > 1.0 {
            return Err(ExecError::invalid("devices.share", format!("expected a share in (0, 1], found {}", d.share)));
        }
        if d.share_milli() == 0 {
            return Err(ExecError::invalid("devices.share", format!("{} is below the smallest share, 0.001", d.share)));
        }
        if d.share < 1.0 && d.count != 1 {
            return Err(ExecError::invalid(
                "devices.share",
                format!("a fractional share ({}) needs `devices.count = 1`, found count {}", d.share, d.count),
            ));
        }
        if d.count == 0 && !d.models.is_empty() {
            return Err(ExecError::invalid("devices.models", "models are given but `devices.count` is 0"));
        }
        if let Some(m) = d.models.iter().find(|m| m.trim().is_empty()) {
            return Err(ExecError::invalid("devices.models", format!("empty model name `{m}`")));
        }
        if d.count > limits::MAX_DEVICES_PER_JOB {
            return Err(ExecError::invalid("devices.count", format!("{} devices is beyond the bound of {}", d.count, limits::MAX_DEVICES_PER_JOB)));
        }
        if self.mem_mib > limits::MAX_MEM_MIB {
            return Err(ExecError::invalid("mem_mib", format!("{} MiB is beyond the bound of {} MiB (1 EiB)", self.mem_mib, limits::MAX_MEM_MIB)));
        }
        if let Some(r) = self.retries.filter(|&r| r > limits::MAX_RETRIES) {
            return Err(ExecError::invalid("retries", format!("{r} retries is beyond the bound of {}", limits::MAX_RETRIES)));
        }
        bounded_secs("time_limit_s", self.time_limit_s, false)?;
        bounded_secs("stated_duration_s", self.stated_duration_s, true)?;
        for (key, value) in &self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(ExecError::invalid(format!("env.{key}"), "a variable name must be non-empty, without `=` or NUL"));
            }
            if value.contains('\0') {
                return Err(ExecError::invalid(format!("env.{key}"), "the value contains a NUL byte"));
            }
            if RESERVED_ENV.contains(&key.as_str()) {
                return Err(ExecError::invalid(format!("env.{key}"), "is set by the executor; a job may not set it"));
            }
        }
        if let Some(w) = &self.workdir {
            if w.as_os_str().is_empty() {
                return Err(ExecError::invalid("workdir", "the working directory is empty"));
            }
        }
        if let Some((i, _)) = self.warmup.iter().enumerate().find(|(_, w)| w.trim().is_empty() || w.contains('\0')) {
            return Err(ExecError::invalid(format!("warmup[{i}]"), "a warm-up command is empty or has a NUL byte"));
        }
        Ok(())
    }
}

/// Parses and validates a TOML submission; `origin` names it in errors (a file path, or
/// `<request>`).
pub fn parse_toml(text: &str, origin: &str) -> Result<JobSubmission, ExecError> {
    let parsed: JobSubmission = tessera_driver::toml_input::from_toml(text).map_err(|e| {
        let at = e.location.map(|l| format!(" (line {}, column {})", l.line, l.column)).unwrap_or_default();
        ExecError::invalid(e.path, format!("{origin}{at}: {}", e.message))
    })?;
    parsed.validate().map_err(|e| prefix(e, origin))?;
    Ok(parsed)
}

/// Reads, parses and validates a TOML submission file.
pub fn parse_toml_file(path: &Path) -> Result<JobSubmission, ExecError> {
    let text = std::fs::read_to_string(path).map_err(|e| ExecError::invalid(String::new(), format!("{}: {e}", path.display())))?;
    parse_toml(&text, &path.display().to_string())
}

/// Parses and validates a JSON submission.
pub fn parse_json(text: &str) -> Result<JobSubmission, ExecError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: JobSubmission = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ExecError::invalid(if path == "." { String::new() } else { path }, format!("JSON: {inner}"))
    })?;
    de.end().map_err(|e| ExecError::invalid(String::new(), format!("JSON: {e}")))?;
    parsed.validate().map_err(|e| prefix(e, "JSON"))?;
    Ok(parsed)
}

fn prefix(e: ExecError, origin: &str) -> ExecError {
    match e {
        ExecError::Invalid { field, message } => ExecError::Invalid { field, message: format!("{origin}: {message}") },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(r: Result<JobSubmission, ExecError>) -> (String, String) {
        match r {
            Err(ExecError::Invalid { field, message }) => (field, message),
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    #[test]
    fn a_full_toml_submission_parses() {
        let s = parse_toml(
            "name = 'train'\ncommand = 'python'\nargs = ['train.py']\ntenant = 'alice'\npriority = 2\ntime_limit_s = 60\n\
             warmup = ['true']\n[devices]\ncount = 1\nshare = 0.5\nmodels = ['H100']\n[env]\nA = 'b'\n",
            "job.toml",
        )
        .unwrap();
        assert_eq!(s.devices.share_milli(), 500);
        assert_eq!(s.env["A"], "b");
        assert_eq!(s.tenant, "alice");
        assert_eq!(s.time_limit_s, Some(60.0));
    }

    #[test]
    fn unknown_field_is_named_with_its_line() {
        let (field, msg) = err_of(parse_toml("command = 'x'\n\ncomand = 'y'\n", "job.toml"));
        assert!(msg.contains("job.toml (line 3"), "{msg}");
        assert!(msg.contains("unknown field `comand`"), "{msg}");
        let _ = field;
        let (field, msg) = err_of(parse_toml("command = 'x'\n[devices]\ncount = 1\nmodel = 'H100'\n", "j.toml"));
        assert!(field.starts_with("devices"), "{field}");
        assert!(msg.contains("unknown field `model`"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let (field, msg) = err_of(parse_toml("command = 'x'\npriority = 'high'\n", "j.toml"));
        assert_eq!(field, "priority");
        assert!(msg.contains("line 2"), "{msg}");
        let (field, _) = err_of(parse_json(r#"{"command": "x", "devices": {"count": "two"}}"#));
        assert_eq!(field, "devices.count");
        let (field, _) = err_of(parse_json(r#"{"command": "x", "devices": {"count": -1}}"#));
        assert_eq!(field, "devices.count");
    }

    #[test]
    fn missing_or_empty_command() {
        let (_, msg) = err_of(parse_toml("name = 'n'\n", "j.toml"));
        assert!(msg.contains("missing field `command`"), "{msg}");
        let (field, _) = err_of(parse_json(r#"{"command": "  "}"#));
        assert_eq!(field, "command");
    }

    #[test]
    fn bad_values_are_refused_by_validate() {
        let (field, msg) = err_of(parse_json(r#"{"command": "x", "time_limit_s": -5}"#));
        assert_eq!(field, "time_limit_s");
        assert!(msg.contains("-5"), "{msg}");
        let (field, _) = err_of(parse_json(r#"{"command": "x", "time_limit_s": 0}"#));
        assert_eq!(field, "time_limit_s");
        let (field, msg) = err_of(parse_json(r#"{"command": "x", "devices": {"count": 2, "share": 0.5}}"#));
        assert_eq!(field, "devices.share");
        assert!(msg.contains("count = 1"), "{msg}");
        let (field, _) = err_of(parse_json(r#"{"command": "x", "devices": {"count": 2, "share": 1.5}}"#));
        assert_eq!(field, "devices.share");
        let (field, _) = err_of(parse_json(r#"{"command": "x", "devices": {"count": 1, "share": 0}}"#));
        assert_eq!(field, "devices.share");
        let (field, _) = err_of(parse_json(r#"{"command": "x", "env": {"CUDA_VISIBLE_DEVICES": "0"}}"#));
        assert_eq!(field, "env.CUDA_VISIBLE_DEVICES");
        let (field, _) = err_of(parse_json(r#"{"command": "x", "tenant": ""}"#));
        assert_eq!(field, "tenant");
        let (field, _) = err_of(parse_json(r#"{"command": "x", "devices": {"models": ["H100"]}}"#));
        assert_eq!(field, "devices.models");
        let (field, _) = err_of(parse_json(r#"{"command": "x", "warmup": [""]}"#));
        assert_eq!(field, "warmup[0]");
    }

    #[test]
    fn numbers_beyond_their_bound_are_refused_naming_the_field_and_the_bound() {
        for (json, field) in [
            (r#"{"command": "sleep", "args": ["45"], "time_limit_s": 1e20}"#, "time_limit_s"),
            (r#"{"command": "x", "time_limit_s": 3155760001}"#, "time_limit_s"),
            (r#"{"command": "x", "stated_duration_s": 1e300}"#, "stated_duration_s"),
        ] {
            let (f, msg) = err_of(parse_json(json));
            assert_eq!(f, field, "{json}");
            assert!(msg.contains("3155760000 s (100 years)"), "{json}: {msg}");
        }
        assert!(parse_json(r#"{"command": "x", "time_limit_s": 3155760000}"#).is_ok(), "the bound itself is allowed");
        let (f, msg) = err_of(parse_json(r#"{"command": "x", "devices": {"count": 1000001}}"#));
        assert_eq!(f, "devices.count");
        assert!(msg.contains("1000000"), "{msg}");
        let (f, msg) = err_of(parse_json(r#"{"command": "x", "retries": 4000000000}"#));
        assert_eq!(f, "retries");
        assert!(msg.contains("bound of 100"), "{msg}");
        let (f, msg) = err_of(parse_json(r#"{"command": "x", "mem_mib": 18446744073709551615}"#));
        assert_eq!(f, "mem_mib");
        assert!(msg.contains("1 EiB"), "{msg}");
    }

    #[test]
    fn a_nul_is_reported_where_it_is() {
        let (f, msg) = err_of(parse_json(r#"{"command": "echo", "args": ["ok", "a\u0000b"]}"#));
        assert_eq!((f.as_str(), msg.contains("NUL")), ("args[1]", true), "{msg}");
        let (f, msg) = err_of(parse_json(r#"{"command": "e\u0000cho"}"#));
        assert_eq!((f.as_str(), msg.contains("NUL")), ("command", true), "{msg}");
        let (f, msg) = err_of(parse_json(r#"{"command": "x", "env": {"A": "b\u0000"}}"#));
        assert_eq!(f, "env.A");
        assert!(msg.contains("value contains a NUL") && !msg.contains("name"), "{msg}");
    }

    #[test]
    fn broken_syntax_and_trailing_garbage() {
        let (_, msg) = err_of(parse_toml("command = \n", "j.toml"));
        assert!(msg.contains("j.toml (line 1"), "{msg}");
        let (_, msg) = err_of(parse_json(r#"{"command": "x"} extra"#));
        assert!(msg.contains("trailing"), "{msg}");
        let (_, msg) = err_of(parse_json(r#"{"command": "x""#));
        assert!(msg.contains("JSON"), "{msg}");
    }
}
