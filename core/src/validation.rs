//! The validated-policy gate's record: what `tessera validate` writes after running a policy
//! through the simulator, and what the live executor reads before it will load that policy.
//! It lives in the core because both drivers must agree on it; the core only defines and
//! compares it (reading and writing files is the drivers' business).

use crate::policy::PolicySpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The current version of the record's layout; a reader refuses other versions.
/// Version 2 added the fingerprint of the built policy.
pub const VALIDATION_RECORD_VERSION: u32 = 2;

/// One `--require 'METRIC OP VALUE'` and what the simulator measured for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementResult {
    /// The requirement as written, e.g. `p95_wait_s < 3600`.
    pub expr: String,
    pub metric: String,
    /// One of `<`, `<=`, `>`, `>=`, `==`, `!=`.
    pub op: String,
    pub threshold: f64,
    /// The measured value (the mean over replications); NaN when the run had no value
    /// (written `null`, as serde_json writes every non-finite number).
    #[serde(deserialize_with = "nan_from_null")]
    pub value: f64,
    pub passed: bool,
}

/// A file the validation read, with its SHA-256, so the record says exactly what was run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationRecord {
    pub record_version: u32,
    /// The policy exactly as validated: every parameter, defaults left unset as written.
    pub policy: PolicySpec,
    /// What the simulator built from `policy`: the spec with its resolved context (tenant
    /// table, speed matrix, device models). The gate admits a policy only when what the
    /// executor builds has this fingerprint.
    pub fingerprint: PolicyFingerprint,
    pub scenario: FileHash,
    /// Traces and speed tables the scenario read.
    pub inputs: Vec<FileHash>,
    pub tessera_version: String,
    pub seed: u64,
    pub replications: u32,
    /// Metric name -> mean over replications (NaN, written `null`, where a run had no value).
    #[serde(deserialize_with = "nan_map_from_null")]
    pub metrics: BTreeMap<String, f64>,
    pub requirements: Vec<RequirementResult>,
    /// True when every requirement passed (and there was at least one).
    pub passed: bool,
}

/// serde_json writes a non-finite number as `null` and refuses `null` for an `f64`; a record
/// with a metric that had no value (a mean over no completed job) must still read back.
fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nan_map_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
    let map = BTreeMap::<String, Option<f64>>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.unwrap_or(f64::NAN))).collect())
}

/// One cell of the speed matrix, by names: `class` runs `relative` times as fast on `model`
/// as on the reference device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedCell {
    pub class: String,
    pub model: String,
    pub relative: f64,
}

/// A built policy, as far as its decisions can depend on it: the spec, and the context the
/// driver resolved it against. Two drivers that build policies with equal fingerprints make
/// the same decisions for the same inputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFingerprint {
    pub spec: PolicySpec,
    /// The tenant table (id order) that tenant names resolved against; empty when no part
    /// of the policy looks at tenants (`Policy::uses_tenants`).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// The fleet's device models, sorted; empty when no part weighs speeds
    /// (`Policy::uses_speeds`).
    #[serde(default)]
    pub models: Vec<String>,
    /// Every cell of the speed matrix other than 1.0 on those models, sorted by class then
    /// model; empty when no part weighs speeds.
    #[serde(default)]
    pub speeds: Vec<SpeedCell>,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec::named("fifo")
    }
}

impl PolicyFingerprint {
    /// The first thing that differs between what is built `here` and what the record
    /// validated (`self`), in words; `None` when they are the same.
    pub fn difference(&self, here: &PolicyFingerprint) -> Option<String> {
        if let Some((field, validated, requested)) = spec_difference(&self.spec, &here.spec) {
            return Some(format!("policy `{field}` is {requested} here, {validated} in the record"));
        }
        if self.tenants != here.tenants {
            let at = self.tenants.iter().zip(&here.tenants).position(|(a, b)| a != b).unwrap_or(self.tenants.len().min(here.tenants.len()));
            let show = |t: &[String]| t.get(at).map_or("no tenant".to_string(), |n| format!("`{n}`"));
            return Some(format!(
                "tenant table: tenant {at} is {} here, {} in the record ({} tenants here, {} in the record)",
                show(&here.tenants),
                show(&self.tenants),
                here.tenants.len(),
                self.tenants.len()
            ));
        }
        if self.models != here.models {
            return Some(format!("device models: [{}] here, [{}] in the record", here.models.join(", "), self.models.join(", ")));
        }
        if self.speeds != here.speeds {
            use std::collections::BTreeMap;
            let cells = |v: &[SpeedCell]| -> BTreeMap<(String, String), f64> { v.iter().map(|c| ((c.model.clone(), c.class.clone()), c.relative)).collect() };
            let (a, b) = (cells(&self.speeds), cells(&here.speeds));
            for key in a.keys().chain(b.keys()) {
                let (va, vb) = (a.get(key).copied().unwrap_or(1.0), b.get(key).copied().unwrap_or(1.0));
                if va != vb {
                    return Some(format!("speed matrix: {}/{} is {vb:?} here, {va:?} in the record", key.0, key.1));
                }
            }
        }
        None
    }
}

/// The first field (in the spec's serialised order) whose value differs, with both values.
fn spec_difference(validated: &PolicySpec, requested: &PolicySpec) -> Option<(String, String, String)> {
    let a = serde_json::to_value(validated).ok()?;
    let b = serde_json::to_value(requested).ok()?;
    if let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (&a, &b) {
        for (field, va) in a {
            let vb = b.get(field).cloned().unwrap_or(serde_json::Value::Null);
            if *va != vb {
                return Some((field.clone(), va.to_string(), vb.to_string()));
            }
        }
    }
    (validated != requested).then(|| ("policy".into(), format!("{validated:?}"), format!("{requested:?}")))
}

/// Why a record does not let a policy through the gate.
#[derive(Clone, Debug, PartialEq)]
pub enum GateRefusal {
    WrongVersion { found: u32 },
    Failed { failed: Vec<String> },
    NoRequirements,
    /// The record validated other parameters: names the first field that differs.
    DifferentPolicy { field: String, validated: String, requested: String },
    /// The same spec, built against another context (tenants, speeds, models).
    DifferentContext { what: String },
}

impl std::fmt::Display for GateRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateRefusal::WrongVersion { found } => {
                write!(f, "record version {found}, expected {VALIDATION_RECORD_VERSION}")
            }
            GateRefusal::Failed { failed } => write!(f, "the validation failed: {}", failed.join("; ")),
            GateRefusal::NoRequirements => write!(f, "the record checked no requirement"),
            GateRefusal::DifferentPolicy { field, validated, requested } => write!(
                f,
                "the record validated `{field}` = {validated}, but the requested policy has {requested}"
            ),
            GateRefusal::DifferentContext { what } => write!(f, "the policy built here differs from the one validated: {what}"),
        }
    }
}

impl ValidationRecord {
    /// Whether this record lets exactly `requested` run: it passed, and validated the same
    /// parameters (field by field, so the refusal can say which one differs). This compares
    /// specs only; the executor's gate compares what it built with [`Self::admits_built`].
    pub fn admits(&self, requested: &PolicySpec) -> Result<(), GateRefusal> {
        self.passed_checks()?;
        match spec_difference(&self.policy, requested) {
            Some((field, validated, requested)) => Err(GateRefusal::DifferentPolicy { field, validated, requested }),
            None => Ok(()),
        }
    }

    /// Whether this record lets run the policy whose built form is `built`: it passed, and
    /// the fingerprint of what it validated equals `built` (the refusal names what differs).
    pub fn admits_built(&self, built: &PolicyFingerprint) -> Result<(), GateRefusal> {
        self.admits(&built.spec)?;
        match self.fingerprint.difference(built) {
            Some(what) => Err(GateRefusal::DifferentContext { what }),
            None => Ok(()),
        }
    }

    fn passed_checks(&self) -> Result<(), GateRefusal> {
        if self.record_version != VALIDATION_RECORD_VERSION {
            return Err(GateRefusal::WrongVersion { found: self.record_version });
        }
        if self.requirements.is_empty() {
            return Err(GateRefusal::NoRequirements);
        }
        let failed: Vec<String> = self.requirements.iter().filter(|r| !r.passed).map(|r| r.expr.clone()).collect();
        if !self.passed || !failed.is_empty() {
            return Err(GateRefusal::Failed { failed });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(policy: PolicySpec, passed: bool) -> ValidationRecord {
        ValidationRecord {
            record_version: VALIDATION_RECORD_VERSION,
            fingerprint: PolicyFingerprint { spec: policy.clone(), ..Default::default() },
            policy,
            scenario: FileHash { path: "s.toml".into(), sha256: "00".into() },
            inputs: vec![],
            tessera_version: "0.1.0".into(),
            seed: 1,
            replications: 1,
            metrics: BTreeMap::new(),
            requirements: vec![RequirementResult {
                expr: "p95_wait_s < 3600".into(),
                metric: "p95_wait_s".into(),
                op: "<".into(),
                threshold: 3600.0,
                value: if passed { 10.0 } else { 7200.0 },
                passed,
            }],
            passed,
        }
    }

    #[test]
    fn admits_exactly_the_validated_parameters() {
        let mut spec = PolicySpec::named("priority");
        spec.grace_s = Some(30.0);
        let rec = record(spec.clone(), true);
        assert_eq!(rec.admits(&spec), Ok(()));
        let mut other = spec.clone();
        other.grace_s = Some(5.0);
        match rec.admits(&other) {
            Err(GateRefusal::DifferentPolicy { field, .. }) => assert_eq!(field, "grace_s"),
            r => panic!("expected a refusal naming grace_s, got {r:?}"),
        }
    }

    #[test]
    fn a_record_with_nan_reads_back() {
        let mut rec = record(PolicySpec::named("fifo"), false);
        rec.requirements[0].value = f64::NAN;
        rec.metrics.insert("avg_wait_s".into(), f64::NAN);
        rec.metrics.insert("jobs".into(), 3.0);
        let text = serde_json::to_string(&rec).unwrap();
        assert!(text.contains("\"value\":null"), "{text}");
        let back: ValidationRecord = serde_json::from_str(&text).unwrap();
        assert!(back.requirements[0].value.is_nan());
        assert!(back.metrics["avg_wait_s"].is_nan());
        assert_eq!(back.metrics["jobs"], 3.0);
    }

    #[test]
    fn refuses_a_failed_or_empty_record() {
        let spec = PolicySpec::named("fifo");
        assert!(matches!(record(spec.clone(), false).admits(&spec), Err(GateRefusal::Failed { .. })));
        let mut empty = record(spec.clone(), true);
        empty.requirements.clear();
        assert_eq!(empty.admits(&spec), Err(GateRefusal::NoRequirements));
        let mut old = record(spec.clone(), true);
        old.record_version = 0;
        assert_eq!(old.admits(&spec), Err(GateRefusal::WrongVersion { found: 0 }));
    }
}
