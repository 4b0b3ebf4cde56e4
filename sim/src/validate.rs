//! `tessera validate`: the simulator's side of the validated-policy gate.
//!
//! One policy of a scenario runs through all its replications; each requirement
//! (`p95_wait_s < 3600`) is checked against the metric's mean over the replications, and the
//! outcome is a [`ValidationRecord`]: the policy spec exactly as the scenario gives it, the
//! SHA-256 of the scenario file and of every input file it read, the tessera version, the seed,
//! the metrics and each requirement's measured value and verdict. The live executor reads that
//! record and loads only the very policy it validated ([`ValidationRecord::admits`]).
//!
//! The record holds nothing that changes between two runs of the same command (no clock, no
//! host figure), so validating twice gives byte-identical files.
//!
//! Metrics are those of `tessera compare` ([`tessera_reports::compare::FIXED_METRICS`] and
//! `device_hours_per_job:<MODEL>` for each model of the cluster), over the jobs the
//! scenario's `[metrics]` table counts (all of them without one), plus `events` and `failures`
//! from `summary.csv`. `wall_s` is refused: it measures the host, not the policy. A scenario's
//! `[sweep]` is ignored: the policy is validated as written.
//!
//! The mean over replications is NaN as soon as one replication has no value (for example no
//! completed job), and a NaN value fails every requirement, `!=` included: a gate must not pass
//! on a number that does not exist.

use crate::runner::{metrics_filter, run_scenario_with, RunContext, RunError, RunOptions};
use crate::scenario::{Scenario, ScenarioError};
use crate::workload::build_cluster;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use tessera_core::validation::{FileHash, RequirementResult, ValidationRecord, VALIDATION_RECORD_VERSION};
use tessera_core::{ModelId, PolicySpec};
use tessera_reports::compare::{compare_metrics, DEVICE_HOURS_PREFIX, FIXED_METRICS};

/// The metrics `summary.csv` has beyond those of `compare`.
pub const SUMMARY_ONLY_METRICS: &[&str] = &["events", "failures"];

/// A comparison operator of a requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge, CmpOp::Eq, CmpOp::Ne];

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// Whether `value OP threshold` holds; never for a NaN value.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        match self {
            CmpOp::Lt => value < threshold,
            CmpOp::Le => value <= threshold,
            CmpOp::Gt => value > threshold,
            CmpOp::Ge => value >= threshold,
            CmpOp::Eq => value == threshold,
            CmpOp::Ne => value != threshold,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `--require 'METRIC OP NUMBER'`, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    /// As written (trimmed).
    pub expr: String,
    pub metric: String,
    pub op: CmpOp,
    pub threshold: f64,
}

const OPERATORS: &str = "one of <, <=, >, >=, ==, !=";

/// What is wrong with one `--require`.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("--require `{expr}`: {problem}")]
pub struct RequirementError {
    pub expr: String,
    pub problem: String,
}

impl Requirement {
    /// Parses `METRIC OP NUMBER` (spaces optional). Only the shape is checked here; whether the
    /// metric exists depends on the cluster (see [`known_metrics`]).
    pub fn parse(text: &str) -> Result<Requirement, RequirementError> {
        let expr = text.trim().to_string();
        let bad = |problem: String| RequirementError { expr: expr.clone(), problem };
        let is_op_char = |c: char| "<>=!".contains(c);
        let Some(op_start) = expr.find(is_op_char) else {
            return Err(bad(format!("no comparison operator; expected METRIC OP NUMBER with OP {OPERATORS}")));
        };
        let metric = expr[..op_start].trim();
        let rest = &expr[op_start..];
        let op_len = rest.find(|c: char| !is_op_char(c)).unwrap_or(rest.len());
        let op_text = &rest[..op_len];
        let number = rest[op_len..].trim();
        if metric.is_empty() {
            return Err(bad(format!("no metric name before `{op_text}`; expected METRIC OP NUMBER")));
        }
        if let Some(c) = metric.chars().find(|c| !(c.is_ascii_alphanumeric() || "_:-.+".contains(*c))) {
            return Err(bad(format!("`{metric}` is not a metric name (it holds `{c}`)")));
        }
        let op = CmpOp::ALL
            .into_iter()
            .find(|op| op.as_str() == op_text)
            .ok_or_else(|| bad(format!("`{op_text}` is not an operator; expected {OPERATORS}")))?;
        if number.is_empty() {
            return Err(bad(format!("no number after `{op_text}`")));
        }
        let threshold: f64 =
            number.parse().map_err(|_| bad(format!("`{number}` is not a number")))?;
        if threshold.is_nan() {
            return Err(bad("the threshold is NaN, which no value can be compared with".into()));
        }
        if !threshold.is_finite() {
            return Err(bad(format!("expected a finite threshold, found `{number}`")));
        }
        let metric = metric.to_string();
        Ok(Requirement { expr, metric, op, threshold })
    }

    pub fn check(&self, value: f64) -> RequirementResult {
        RequirementResult {
            expr: self.expr.clone(),
            metric: self.metric.clone(),
            op: self.op.as_str().to_string(),
            threshold: self.threshold,
            value,
            passed: self.op.holds(value, self.threshold),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    Requirement(#[from] RequirementError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no requirement given; add at least one --require 'METRIC OP NUMBER'")]
    NoRequirement,
    #[error("`--policy {wanted}` matches no policy of the scenario; its labels are: {available}")]
    UnknownPolicy { wanted: String, available: String },
    #[error("`--policy {wanted}` names {count} policies of the scenario; give one of their labels: {labels}")]
    AmbiguousPolicy { wanted: String, count: usize, labels: String },
}

/// What to validate, beyond the scenario.
#[derive(Clone, Debug)]
pub struct ValidateOptions {
    /// The policy's label (or its name, when exactly one policy has it).
    pub policy: String,
    pub requirements: Vec<Requirement>,
    pub seed: Option<u64>,
    pub replications: Option<u32>,
    pub threads: usize,
}

/// The metric names a requirement may use on this cluster: [`FIXED_METRICS`],
/// [`SUMMARY_ONLY_METRICS`], then `device_hours_per_job:<MODEL>` for each device model of the
/// cluster in node order.
pub fn known_metrics(model_names: &[String]) -> Vec<String> {
    FIXED_METRICS
        .iter()
        .chain(SUMMARY_ONLY_METRICS)
        .map(|s| s.to_string())
        .chain(model_names.iter().map(|m| format!("{DEVICE_HOURS_PREFIX}{m}")))
        .collect()
}

/// Checks that every requirement names a known metric.
pub fn check_metric_names(requirements: &[Requirement], known: &[String]) -> Result<(), RequirementError> {
    for r in requirements {
        if known.iter().any(|k| *k == r.metric) {
            continue;
        }
        let problem = if r.metric == "wall_s" {
            "`wall_s` measures the host, not the policy (and would make the record differ between two identical runs); it cannot be required".to_string()
        } else {
            format!("unknown metric `{}`; known metrics: {}", r.metric, known.join(", "))
        };
        return Err(RequirementError { expr: r.expr.clone(), problem });
    }
    Ok(())
}

/// The one policy `wanted` names: by label, else by name when exactly one policy has it.
pub fn select_policy(scenario: &Scenario, wanted: &str) -> Result<PolicySpec, ValidateError> {
    if let Some(p) = scenario.policies.iter().find(|p| p.label() == wanted) {
        return Ok(p.clone());
    }
    let by_name: Vec<&PolicySpec> = scenario.policies.iter().filter(|p| p.name == wanted).collect();
    match by_name.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ValidateError::UnknownPolicy {
            wanted: wanted.to_string(),
            available: scenario.policies.iter().map(|p| p.label().to_string()).collect::<Vec<_>>().join(", "),
        }),
        many => Err(ValidateError::AmbiguousPolicy {
            wanted: wanted.to_string(),
            count: many.len(),
            labels: many.iter().map(|p| p.label().to_string()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The SHA-256 of a file's bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

fn hash_file(path: &Path) -> Result<FileHash, ValidateError> {
    let bytes = std::fs::read(path).map_err(|source| ValidateError::Io { path: path.to_path_buf(), source })?;
    Ok(FileHash { path: path.display().to_string(), sha256: sha256_hex(&bytes) })
}

/// The files a scenario reads besides itself, in a fixed order: the workload's trace (for a
/// directory, each file its format reads from it, in the order it reads them), the trace
/// format's path options (by option name), the speed table, and the cluster's node list.
pub fn input_files(scenario: &Scenario) -> Result<Vec<PathBuf>, ValidateError> {
    let mut files = Vec::new();
    if let Some(trace) = &scenario.workload.trace {
        let listed = trace.format.input_files(&trace.path).map_err(|e| match e {
            tessera_traces::TraceError::Io { path, source } => ValidateError::Io { path, source },
            other => ValidateError::Io { path: trace.path.clone(), source: std::io::Error::other(other.to_string()) },
        })?;
        files.extend(listed);
        files.extend(trace.options.paths().map(|(_, p)| p.to_path_buf()));
    }
    files.extend(scenario.speed_table.as_ref().map(|t| t.path.clone()));
    files.extend(scenario.cluster.path.clone());
    Ok(files)
}

/// Validates one policy of the scenario in `scenario_path`: reads and hashes the file, runs the
/// policy's replications, and returns the record (whether it passed or not). Errors are what
/// keeps a verdict from being reached: a bad scenario, policy or requirement, or a file that
/// cannot be read.
pub fn validate(scenario_path: &Path, options: &ValidateOptions) -> Result<Validation, ValidateError> {
    if options.requirements.is_empty() {
        return Err(ValidateError::NoRequirement);
    }
    let bytes = std::fs::read(scenario_path).map_err(|source| ValidateError::Io { path: scenario_path.to_path_buf(), source })?;
    let scenario_hash = FileHash { path: scenario_path.display().to_string(), sha256: sha256_hex(&bytes) };
    let text = String::from_utf8(bytes).map_err(|e| ScenarioError::Read {
        file: scenario_path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let scenario = Scenario::from_toml_str(&text, scenario_path)?;
    let policy = select_policy(&scenario, &options.policy)?;

    let (catalogue, nodes) = build_cluster(&scenario)?;
    let models = cluster_models(&nodes);
    let model_names: Vec<String> = models.iter().map(|&m| catalogue.name(m).to_string()).collect();
    check_metric_names(&options.requirements, &known_metrics(&model_names))?;
    let inputs = input_files(&scenario)?.iter().map(|p| hash_file(p)).collect::<Result<Vec<_>, _>>()?;

    let filter = metrics_filter(&scenario);
    let run_options = RunOptions {
        out_dir: None,
        policy: Some(policy.label().to_string()),
        seed: options.seed,
        replications: options.replications,
        threads: options.threads,
        quiet: true,
        revision: None,
        progress: None,
    };
    let (rows, samples) = run_scenario_with(&scenario, &run_options, &|c: &RunContext<'_>| {
        let named: Vec<(ModelId, String)> = cluster_models(c.nodes).into_iter().map(|m| (m, c.catalogue.name(m).to_string())).collect();
        compare_metrics(&c.output.records, c.output.total_devices, &filter, &named)
    })?;
    let replications = rows.len();
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for (row, values) in rows.iter().zip(&samples) {
        let all = values.iter().cloned().chain([("events".to_string(), row.events as f64), ("failures".to_string(), row.failures as f64)]);
        for (name, v) in all {
            *sums.entry(name).or_insert(0.0) += v;
        }
    }
    let metrics: BTreeMap<String, f64> = sums.into_iter().map(|(k, sum)| (k, sum / replications as f64)).collect();
    let requirements: Vec<RequirementResult> =
        options.requirements.iter().map(|r| r.check(metrics.get(&r.metric).copied().unwrap_or(f64::NAN))).collect();
    let passed = requirements.iter().all(|r| r.passed);
    // What was validated, as the executor will build it: the policy in the context of the
    // scenario's first replication (tenants, classes and speeds do not depend on the seed).
    let seed = options.seed.unwrap_or(scenario.seed);
    let workload = crate::workload::build_workload(&scenario, &catalogue, seed)?;
    let speed = crate::speed::build(&scenario, &workload, &catalogue)?;
    let fingerprint = crate::runner::build_policy(&scenario, &policy, &workload, &speed, &catalogue, &nodes)?.fingerprint;
    let record = ValidationRecord {
        record_version: VALIDATION_RECORD_VERSION,
        fingerprint,
        policy,
        scenario: scenario_hash,
        inputs,
        tessera_version: env!("CARGO_PKG_VERSION").to_string(),
        seed,
        replications: replications as u32,
        metrics,
        requirements,
        passed,
    };
    Ok(Validation { record, scenario_name: scenario.name })
}

/// A validation's outcome: the record, and the scenario's name (for default output paths).
#[derive(Clone, Debug)]
pub struct Validation {
    pub record: ValidationRecord,
    pub scenario_name: String,
}

/// The record as written to a file: pretty JSON and a final newline.
pub fn record_json(record: &ValidationRecord) -> String {
    let mut text = serde_json::to_string_pretty(record).expect("a record always serialises");
    text.push('\n');
    text
}

/// The distinct device models of the cluster, in node order (the order `compare` uses).
fn cluster_models(nodes: &[tessera_core::NodeSpec]) -> Vec<ModelId> {
    let mut models: Vec<ModelId> = Vec::new();
    for node in nodes {
        for &m in &node.devices {
            if !models.contains(&m) {
                models.push(m);
            }
        }
    }
    models
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        Requirement::parse(text).unwrap_err().problem
    }

    #[test]
    fn parses_every_operator_with_or_without_spaces() {
        for op in CmpOp::ALL {
            let r = Requirement::parse(&format!(" p95_wait_s {op} 3600 ")).unwrap();
            assert_eq!((r.metric.as_str(), r.op, r.threshold), ("p95_wait_s", op, 3600.0));
            assert_eq!(r.expr, format!("p95_wait_s {op} 3600"));
            let r = Requirement::parse(&format!("avg_jct_s{op}-2.5e3")).unwrap();
            assert_eq!((r.metric.as_str(), r.op, r.threshold), ("avg_jct_s", op, -2500.0));
        }
        let r = Requirement::parse("device_hours_per_job:V100-32GB <= 0.5").unwrap();
        assert_eq!(r.metric, "device_hours_per_job:V100-32GB");
    }

    #[test]
    fn broken_requirements_say_what_is_wrong() {
        assert!(problem("p95_wait_s 3600").contains("no comparison operator"), "{}", problem("p95_wait_s 3600"));
        assert!(problem("< 3600").contains("no metric name"));
        assert!(problem("p95_wait_s = 3600").contains("`=` is not an operator"));
        assert!(problem("p95_wait_s =< 3600").contains("`=<` is not an operator"));
        assert!(problem("p95_wait_s << 3600").contains("`<<` is not an operator"));
        assert!(problem("p95_wait_s ! 3600").contains("`!` is not an operator"));
        assert!(problem("p95_wait_s < one hour").contains("`one hour` is not a number"));
        assert!(problem("p95_wait_s < 36OO").contains("`36OO` is not a number"));
        assert!(problem("p95_wait_s <").contains("no number after `<`"));
        assert!(problem("p95_wait_s < NaN").contains("NaN"));
        assert!(problem("p95_wait_s < inf").contains("finite"));
        assert!(problem("p95 wait < 3").contains("not a metric name"));
        let e = Requirement::parse("x = 1").unwrap_err();
        assert_eq!(e.to_string(), "--require `x = 1`: `=` is not an operator; expected one of <, <=, >, >=, ==, !=");
    }

    #[test]
    fn unknown_metrics_are_refused_with_the_list() {
        let known = known_metrics(&["T4".to_string()]);
        assert!(known.contains(&"p95_wait_s".to_string()) && known.contains(&"events".to_string()));
        assert!(known.contains(&"jain_fairness".to_string()) && known.contains(&"device_hours_per_job:T4".to_string()));
        let ok = vec![Requirement::parse("p95_wait_s < 1").unwrap(), Requirement::parse("failures == 0").unwrap()];
        assert_eq!(check_metric_names(&ok, &known), Ok(()));
        let bad = vec![Requirement::parse("p95_wiat_s < 1").unwrap()];
        let e = check_metric_names(&bad, &known).unwrap_err();
        assert!(e.problem.contains("unknown metric `p95_wiat_s`") && e.problem.contains("avg_jct_s, "), "{e}");
        let e = check_metric_names(&[Requirement::parse("wall_s < 1").unwrap()], &known).unwrap_err();
        assert!(e.problem.contains("measures the host"), "{e}");
    }

    #[test]
    fn nan_fails_every_operator() {
        for op in CmpOp::ALL {
            assert!(!op.holds(f64::NAN, 1.0), "{op}");
        }
        assert!(CmpOp::Ne.holds(2.0, 1.0) && CmpOp::Le.holds(1.0, 1.0) && !CmpOp::Lt.holds(1.0, 1.0));
    }

    #[test]
    fn sha256_of_known_text() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
