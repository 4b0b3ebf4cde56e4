//! Policies as composable parts chosen by registry name, in the manner of the Kubernetes
//! scheduler framework: a queue order (who goes first), a placement (where), and a
//! preemption rule (whom to evict for whom).

pub mod placement;
pub mod queue;

pub use placement::{BestFit, FirstFit, Placed, Placement};
pub use queue::{Fifo, PriorityTiers, QueueKey, QueueOrder, ShortestJobFirst};

use crate::time::Time;
use serde::{Deserialize, Serialize};

/// A policy as a scenario or the executor's configuration names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Queue order: `fifo`, `sjf` or `priority`.
    pub name: String,
    /// Placement: `first-fit` (default) or `best-fit`.
    #[serde(default)]
    pub placement: Option<String>,
    /// Distinguishes two entries that share a name; defaults to `name`.
    #[serde(default)]
    pub label: Option<String>,
    /// Evict lower tiers for a blocked higher-tier head. Default: on for `priority`, off otherwise.
    #[serde(default)]
    pub preempt: Option<bool>,
    /// Time a preempted job gets between SIGTERM and SIGKILL.
    #[serde(default)]
    pub grace_s: Option<f64>,
    /// A job that (re)started less than this long ago is not evicted, so jobs do not thrash.
    #[serde(default)]
    pub min_runtime_s: Option<f64>,
}

impl PolicySpec {
    pub fn named(name: &str) -> PolicySpec {
        PolicySpec { name: name.into(), placement: None, label: None, preempt: None, grace_s: None, min_runtime_s: None }
    }

    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

pub const QUEUE_ORDERS: &[&str] = &["fifo", "sjf", "priority"];
pub const PLACEMENTS: &[&str] = &["first-fit", "best-fit"];

/// The preemption part of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreemptionRule {
    pub enabled: bool,
    pub grace: Time,
    pub min_runtime: Time,
}

/// A policy ready to run: its parts, built from a `PolicySpec` by the registry.
pub struct Policy {
    pub label: std::sync::Arc<str>,
    pub queue: Box<dyn QueueOrder>,
    pub placement: Box<dyn Placement>,
    pub preemption: PreemptionRule,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("label", &self.label)
            .field("queue", &self.queue.name())
            .field("placement", &self.placement.name())
            .field("preemption", &self.preemption)
            .finish()
    }
}

/// A policy spec that names something the registry does not have, or a bad parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The spec's key at fault: `name`, `placement`, `grace_s`, ...
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for PolicyError {}

fn non_negative_secs(key: &'static str, value: Option<f64>, default: f64) -> Result<Time, PolicyError> {
    let v = value.unwrap_or(default);
    if !v.is_finite() || v < 0.0 {
        return Err(PolicyError { key, message: format!("expected a non-negative number of seconds, found {v}") });
    }
    Ok(Time::from_secs_f64(v))
}

impl Policy {
    /// The registry: builds a policy from its spec, or says which key is wrong and what it accepts.
    pub fn from_spec(spec: &PolicySpec) -> Result<Policy, PolicyError> {
        let queue: Box<dyn QueueOrder> = match spec.name.as_str() {
            "fifo" => Box::new(Fifo),
            "sjf" => Box::new(ShortestJobFirst),
            "priority" => Box::new(PriorityTiers),
            other => {
                return Err(PolicyError {
                    key: "name",
                    message: format!("unknown queue order `{other}`, expected one of: {}", QUEUE_ORDERS.join(", ")),
                })
            }
        };
        let placement: Box<dyn Placement> = match spec.placement.as_deref().unwrap_or("first-fit") {
            "first-fit" => Box::new(FirstFit),
            "best-fit" => Box::new(BestFit),
            other => {
                return Err(PolicyError {
                    key: "placement",
                    message: format!("unknown placement `{other}`, expected one of: {}", PLACEMENTS.join(", ")),
                })
            }
        };
        let preemption = PreemptionRule {
            enabled: spec.preempt.unwrap_or(spec.name == "priority"),
            grace: non_negative_secs("grace_s", spec.grace_s, 30.0)?,
            min_runtime: non_negative_secs("min_runtime_s", spec.min_runtime_s, 0.0)?,
        };
        Ok(Policy { label: spec.label().into(), queue, placement, preemption })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_builds_by_name_and_explains_unknown_names() {
        let p = Policy::from_spec(&PolicySpec::named("priority")).unwrap();
        assert!(p.preemption.enabled);
        assert_eq!(p.placement.name(), "first-fit");
        let mut spec = PolicySpec::named("sjf");
        spec.placement = Some("worst-fit".into());
        let err = Policy::from_spec(&spec).unwrap_err();
        assert_eq!(err.key, "placement");
        assert!(err.message.contains("first-fit, best-fit"), "{err}");
        let err = Policy::from_spec(&PolicySpec::named("lottery")).unwrap_err();
        assert_eq!(err.key, "name");
        let mut spec = PolicySpec::named("fifo");
        spec.grace_s = Some(-1.0);
        assert_eq!(Policy::from_spec(&spec).unwrap_err().key, "grace_s");
    }
}
