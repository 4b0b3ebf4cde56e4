//! The validated-policy gate: a policy runs live only if a passing validation record admits
//! exactly its parameters, or the operator says `allow_unvalidated` (logged loudly and
//! journalled by the daemon).

use crate::error::ExecError;
use std::path::Path;
use tessera_core::validation::{PolicyFingerprint, ValidationRecord};

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

/// Admits the policy whose built form is `built` (`tessera_driver::build_policy`, in this
/// executor's context) or says why not: the record must have passed and validated a policy
/// with exactly this fingerprint (spec, tenant table, speed matrix, device models).
pub fn admit(built: &PolicyFingerprint, record: Option<&ValidationRecord>, allow_unvalidated: bool) -> Result<Admission, ExecError> {
    let spec = &built.spec;
    let refusal = match record {
        Some(r) => match r.admits_built(built) {
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
    use tessera_core::PolicySpec;
    use std::collections::BTreeMap;
    use tessera_core::validation::{FileHash, RequirementResult, SpeedCell, VALIDATION_RECORD_VERSION};

    pub fn record(policy: PolicySpec, passed: bool) -> ValidationRecord {
        ValidationRecord {
            record_version: VALIDATION_RECORD_VERSION,
            fingerprint: PolicyFingerprint { spec: policy.clone(), ..Default::default() },
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

    fn built(spec: &PolicySpec) -> PolicyFingerprint {
        PolicyFingerprint { spec: spec.clone(), ..Default::default() }
    }

    #[test]
    fn the_gate_admits_only_what_was_validated() {
        let spec = PolicySpec::named("priority");
        assert!(matches!(admit(&built(&spec), Some(&record(spec.clone(), true)), false), Ok(Admission::Record { .. })));
        let e = admit(&built(&spec), Some(&record(spec.clone(), false)), false).unwrap_err().to_string();
        assert!(e.contains("failed"), "{e}");
        let e = admit(&built(&spec), None, false).unwrap_err().to_string();
        assert!(e.contains("no validation record"), "{e}");
        let mut other = spec.clone();
        other.grace_s = Some(1.0);
        let e = admit(&built(&other), Some(&record(spec.clone(), true)), false).unwrap_err().to_string();
        assert!(e.contains("grace_s"), "{e}");
        assert!(matches!(admit(&built(&other), None, true), Ok(Admission::Unvalidated { .. })));
    }

    #[test]
    fn the_gate_compares_what_was_built() {
        let spec = PolicySpec::named("gavel");
        let mut rec = record(spec.clone(), true);
        rec.fingerprint.models = vec!["K80".into(), "V100-16GB".into()];
        rec.fingerprint.speeds = vec![SpeedCell { class: "resnet50".into(), model: "V100-16GB".into(), relative: 2.1 }];
        let mut here = rec.fingerprint.clone();
        assert!(matches!(admit(&here, Some(&rec), false), Ok(Admission::Record { .. })));
        here.speeds[0].relative = 1.5;
        let e = admit(&here, Some(&rec), false).unwrap_err().to_string();
        assert!(e.contains("speed matrix: V100-16GB/resnet50 is 1.5 here, 2.1 in the record"), "{e}");
        here.speeds.clear();
        let e = admit(&here, Some(&rec), false).unwrap_err().to_string();
        assert!(e.contains("speed matrix: V100-16GB/resnet50 is 1.0 here, 2.1 in the record"), "{e}");
        let mut here = rec.fingerprint.clone();
        here.tenants = vec!["team-a".into()];
        let e = admit(&here, Some(&rec), false).unwrap_err().to_string();
        assert!(e.contains("tenant table"), "{e}");
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
