//! The validated-policy gate: a policy runs live only if a passing validation record admits
//! exactly its parameters, or the operator says `allow_unvalidated` (logged loudly and
//! journalled by the daemon).

use crate::error::ExecError;
use std::path::Path;
use tessera_core::validation::ValidationRecord;
use tessera_core::PolicySpec;

/// How a policy got through the gate, for the journal.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "admitted_by")]
pub enum Admission {
    Record { scenario: String, scenario_sha256: String, seed: u64, requirements: Vec<String> },
    Unvalidated { why: String },
}

/// Reads a validation record (JSON).
pub fn read_record(path: &Path) -> Result<ValidationRecord, ExecError> {
    let text = std::fs::read_to_string(path).map_err(|e| ExecError::Gate(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| ExecError::Gate(format!("{}: not a validation record: {e}", path.display())))
}

/// Admits `spec` or says why not. The policy must also build (`Policy::from_spec`).
pub fn admit(spec: &PolicySpec, record: Option<&ValidationRecord>, allow_unvalidated: bool) -> Result<Admission, ExecError> {
    tessera_core::Policy::from_spec(spec).map_err(|e| ExecError::invalid(format!("policy.{}", e.key), e.message))?;
    let refusal = match record {
        Some(r) => match r.admits(spec) {
            Ok(()) => {
                return Ok(Admission::Record {
                    scenario: r.scenario.path.clone(),
                    scenario_sha256: r.scenario.sha256.clone(),
                    seed: r.seed,
                    requirements: r.requirements.iter().map(|q| q.expr.clone()).collect(),
                })
            }
            Err(refusal) => format!("the validation record does not admit policy `{}`: {refusal}", spec.label()),
        },
        None => format!("policy `{}` has no validation record", spec.label()),
    };
    if allow_unvalidated {
        tracing::warn!("RUNNING AN UNVALIDATED POLICY `{}`: {refusal}; allowed by allow_unvalidated", spec.label());
        eprintln!("tessera-exec: WARNING: running an unvalidated policy `{}` ({refusal}); allowed by allow_unvalidated", spec.label());
        return Ok(Admission::Unvalidated { why: refusal });
    }
    Err(ExecError::Gate(format!("{refusal} (run `tessera validate` and pass its record, or set allow_unvalidated)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tessera_core::validation::{FileHash, RequirementResult, VALIDATION_RECORD_VERSION};

    pub fn record(policy: PolicySpec, passed: bool) -> ValidationRecord {
        ValidationRecord {
            record_version: VALIDATION_RECORD_VERSION,
            policy,
            scenario: FileHash { path: "s.toml".into(), sha256: "ab".into() },
            inputs: vec![],
            tessera_version: "0.1.0".into(),
            seed: 7,
            replications: 1,
            metrics: BTreeMap::new(),
            requirements: vec![RequirementResult { expr: "p95_wait_s < 10".into(), metric: "p95_wait_s".into(), op: "<".into(), threshold: 10.0, value: 1.0, passed }],
            passed,
        }
    }

    #[test]
    fn the_gate_admits_only_what_was_validated() {
        let spec = PolicySpec::named("priority");
        assert!(matches!(admit(&spec, Some(&record(spec.clone(), true)), false), Ok(Admission::Record { .. })));
        let e = admit(&spec, Some(&record(spec.clone(), false)), false).unwrap_err().to_string();
        assert!(e.contains("failed"), "{e}");
        let e = admit(&spec, None, false).unwrap_err().to_string();
        assert!(e.contains("no validation record"), "{e}");
        let mut other = spec.clone();
        other.grace_s = Some(1.0);
        let e = admit(&other, Some(&record(spec.clone(), true)), false).unwrap_err().to_string();
        assert!(e.contains("grace_s"), "{e}");
        assert!(matches!(admit(&other, None, true), Ok(Admission::Unvalidated { .. })));
        let bad = PolicySpec::named("nope");
        assert!(matches!(admit(&bad, None, true), Err(ExecError::Invalid { .. })));
    }

    #[test]
    fn a_broken_record_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rec.json");
        std::fs::write(&p, "{\"record_version\": 1}").unwrap();
        let e = read_record(&p).unwrap_err().to_string();
        assert!(e.contains("rec.json") && e.contains("missing field"), "{e}");
    }
}
