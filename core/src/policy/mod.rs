//! Policies as composable parts chosen by registry name, in the manner of the Kubernetes
//! scheduler framework: a queue order (who goes first), a placement (where), a preemption
//! rule (whom to evict for whom, `victim`), backfilling (who may pass a blocked head), and
//! tenant quotas with borrowing and reclaim. Keys that name tenants (`quota_devices`,
//! `tenant_weights`) are resolved by the driver, which knows the tenants' names
//! ([`Policy::from_spec_with_tenants`]).

pub mod gavel;
pub mod backfill;
pub mod placement;
pub mod queue;
pub mod round;

pub use backfill::{BackfillMode, BackfillRule, BACKFILL_MODES};
pub use queue::{DominantResourceFairness, FairShare, TenantOrder};

pub use placement::{BestFit, FirstFit, Fgd, Hetero, Pack, PlaceContext, Placed, Placement, SpeedTable, Spread, Topology};
pub use queue::{Fifo, LeastAttained, OrderView, PriorityTiers, QueueKey, QueueOrder, ShortestJobFirst, ShortestRemaining};

use crate::ids::TenantId;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A policy as a scenario or the executor's configuration names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Queue order: `fifo`, `sjf`, `srtf`, `priority`, `las`, `drf` or `fair-share`.
    pub name: String,
    /// Placement: `first-fit` (default), `best-fit`, `pack`, `spread`, `topology`, `fgd` or
    /// `hetero`.
    #[serde(default)]
    pub placement: Option<String>,
    /// `topology`: how long a gang that could start now only spread over nodes waits for one
    /// node to hold it (seconds, default 0: never waits).
    #[serde(default)]
    pub locality_wait_s: Option<f64>,
    /// `topology` and `pack`: devices per NVLink island (runs of consecutive devices of a
    /// node, as the simulator's `devices_per_nvlink_island`); unset: no islands.
    #[serde(default)]
    pub island_size: Option<u32>,
    /// Distinguishes two entries that share a name; defaults to `name`.
    #[serde(default)]
    pub label: Option<String>,
    /// Evict lower tiers (ranks) for a blocked higher-tier head. Default: on for `priority` and
    /// `las`, off otherwise; refused for the tenant orders (`drf`, `fair-share`), which rank
    /// tenants, not jobs (quotas reclaim borrowed devices instead).
    #[serde(default)]
    pub preempt: Option<bool>,
    /// `las`: queue thresholds in device-seconds (default one threshold at 3,200, Tiresias').
    #[serde(default)]
    pub thresholds_device_s: Option<Vec<f64>>,
    /// `las`: promote a job that waited this long since it last entered the queue.
    #[serde(default)]
    pub promote_after_s: Option<f64>,
    /// `fair-share`: half-life of past usage (default 7 days).
    #[serde(default)]
    pub half_life_s: Option<f64>,
    /// Backfilling: `none` (default), `easy` (later jobs start ahead of the blocked head only
    /// if they do not delay its reservation) or `conservative` (only if they delay no
    /// reservation of a job ahead of them). Reservations come from stated durations; see
    /// `policy::backfill` for the exact guarantee. Composes with any queue order.
    #[serde(default)]
    pub backfill: Option<String>,
    /// Backfilling: most queued jobs examined behind the head per pass (default 100, as
    /// Slurm's `bf_max_job_test`).
    #[serde(default)]
    pub backfill_depth: Option<u32>,
    /// Time a preempted job gets between SIGTERM and SIGKILL.
    #[serde(default)]
    pub grace_s: Option<f64>,
    /// A job that (re)started less than this long ago is not evicted, so jobs do not thrash.
    #[serde(default)]
    pub min_runtime_s: Option<f64>,
    /// Round length in seconds: the policy plans at every multiple of it (see
    /// `policy::round`). `gavel`: default 360 (Gavel's); other orders: unset, no rounds.
    #[serde(default)]
    pub round_s: Option<f64>,
    /// Round-based policies: start queued jobs on idle devices between rounds (default off:
    /// idle devices wait for the next round, as in Gavel). Not `backfill`, which reserves.
    #[serde(default)]
    pub round_backfill: Option<bool>,
    /// Preemption: which running jobs go first, among those of strictly lower tier (rank)
    /// than the head: `lowest-tier` (default; then latest started), `least-progress` (least
    /// work lost since the last checkpoint) or `most-attained` (most attained device-seconds).
    #[serde(default)]
    pub victim: Option<String>,
    /// Device caps per tenant, by tenant name (`{ "alice" = 8 }`); a fractional share counts
    /// as its fraction. A tenant at its cap waits (`WaitReason::Quota`) unless `borrow` is on
    /// and devices are idle; its jobs beyond the cap are then borrowed, and are preempted
    /// (`PreemptReason::QuotaReclaim`, with the policy's grace and minimum run time) when a
    /// tenant under its cap cannot start. Tenants not named have no cap.
    #[serde(default)]
    pub quota_devices: Option<BTreeMap<String, u32>>,
    /// With `quota_devices`: let a tenant at its cap use idle devices, to be given back on
    /// demand (default true).
    #[serde(default)]
    pub borrow: Option<bool>,
    /// `drf` and `fair-share`: tenant weights by name (default 1 each): a tenant of weight 2
    /// is entitled to twice the dominant share (DRF) or twice the share of usage (fair share).
    #[serde(default)]
    pub tenant_weights: Option<BTreeMap<String, f64>>,
}

impl PolicySpec {
    pub fn named(name: &str) -> PolicySpec {
        PolicySpec {
            name: name.into(),
            placement: None,
            locality_wait_s: None,
            island_size: None,
            label: None,
            preempt: None,
            thresholds_device_s: None,
            promote_after_s: None,
            half_life_s: None,
            backfill: None,
            backfill_depth: None,
            grace_s: None,
            min_runtime_s: None,
            round_s: None,
            round_backfill: None,
            victim: None,
            quota_devices: None,
            borrow: None,
            tenant_weights: None,
        }
    }

    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

type BuildQueue = fn(&PolicySpec) -> Result<Box<dyn QueueOrder>, PolicyError>;
type BuildTenantOrder = fn(&PolicySpec, Vec<f64>) -> Result<Box<dyn TenantOrder>, PolicyError>;
type BuildPlacement = fn(&PolicySpec) -> Result<Box<dyn Placement>, PolicyError>;

/// The registry of policy names: the job order each builds, one line each. Adding an order is
/// its type (in `queue.rs` or a file of its own) and its line here. `drf` and `fair-share`
/// (see [`TENANT_ORDER_REGISTRY`]) and `gavel` (rounds, `round.rs`) keep each queue in
/// submission order and decide among queues or over rounds.
const QUEUE_ORDER_REGISTRY: [(&str, BuildQueue); 8] = [
    ("fifo", |_| Ok(Box::new(Fifo))),
    ("sjf", |_| Ok(Box::new(ShortestJobFirst))),
    ("srtf", |_| Ok(Box::new(ShortestRemaining))),
    ("priority", |_| Ok(Box::new(PriorityTiers))),
    ("las", LeastAttained::from_spec),
    ("drf", |_| Ok(Box::new(Fifo))),
    ("fair-share", |_| Ok(Box::new(Fifo))),
    ("gavel", |_| Ok(Box::new(Fifo))),
];

/// The policy names that rank tenants rather than jobs, with their tenant order (given the
/// tenants' weights, 1 where not named).
const TENANT_ORDER_REGISTRY: [(&str, BuildTenantOrder); 2] = [
    ("drf", |_, weights| Ok(Box::new(queue::DominantResourceFairness { weights }))),
    ("fair-share", queue::FairShare::from_spec),
];

/// The registry of placements, one line each (its type in `placement.rs` or a file of its own).
const PLACEMENT_REGISTRY: [(&str, BuildPlacement); 7] = [
    ("first-fit", |_| Ok(Box::new(FirstFit))),
    ("best-fit", |_| Ok(Box::new(BestFit))),
    ("pack", |spec| Ok(Box::new(Pack { island_size: spec.island_size }))),
    ("spread", |_| Ok(Box::new(Spread))),
    ("topology", |spec| {
        Ok(Box::new(Topology { locality_wait: non_negative_secs("locality_wait_s", spec.locality_wait_s, 0.0)?, island_size: spec.island_size }))
    }),
    ("fgd", |_| Ok(Box::new(Fgd::default()))),
    ("hetero", |_| Ok(Box::new(Hetero::default()))),
];

const fn registry_names<T, const N: usize>(registry: &[(&'static str, T); N]) -> [&'static str; N] {
    let mut names = [""; N];
    let mut i = 0;
    while i < N {
        names[i] = registry[i].0;
        i += 1;
    }
    names
}

const QUEUE_ORDER_NAMES: [&str; QUEUE_ORDER_REGISTRY.len()] = registry_names(&QUEUE_ORDER_REGISTRY);
const PLACEMENT_NAMES: [&str; PLACEMENT_REGISTRY.len()] = registry_names(&PLACEMENT_REGISTRY);
const TENANT_ORDER_NAMES: [&str; TENANT_ORDER_REGISTRY.len()] = registry_names(&TENANT_ORDER_REGISTRY);
/// The policy names the registry knows, in its order.
pub const QUEUE_ORDERS: &[&str] = &QUEUE_ORDER_NAMES;
/// The placements the registry knows, in its order.
pub const PLACEMENTS: &[&str] = &PLACEMENT_NAMES;

/// The preemption part of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreemptionRule {
    pub enabled: bool,
    pub grace: Time,
    pub min_runtime: Time,
    pub victim: VictimRule,
}

/// Which running jobs are evicted first for a blocked head. Whatever the rule, only jobs of
/// strictly lower rank than the head are candidates (a strictly lower tier under `priority`),
/// and a job that (re)started less than `min_runtime_s` ago is passed over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VictimRule {
    /// Lowest tier (rank) first, then the latest started: the default.
    #[default]
    LowestTier,
    /// The least work lost first: running time since the last checkpoint (the time since the
    /// job's (re)start modulo its checkpoint interval; all of it if it does not checkpoint).
    LeastProgress,
    /// The most attained service first (device-seconds over all runs, the current included):
    /// the natural rule for `las`.
    MostAttained,
}

pub const VICTIM_RULES: &[&str] = &["lowest-tier", "least-progress", "most-attained"];

/// A policy ready to run: its parts, built from a `PolicySpec` by the registry.
pub struct Policy {
    pub label: std::sync::Arc<str>,
    pub queue: Box<dyn QueueOrder>,
    /// For orders that rank tenants first (`drf`, `fair-share`); `queue` then orders each
    /// tenant's own jobs (FIFO).
    pub tenant_order: Option<Box<dyn queue::TenantOrder>>,
    pub placement: Box<dyn Placement>,
    pub preemption: PreemptionRule,
    pub backfill: BackfillRule,
    pub quotas: QuotaRule,
    /// For round-based policies (`round_s`, `gavel`): what runs in each round.
    pub rounds: Option<Box<dyn round::RoundPlanner>>,
}

/// Device caps per tenant (`quota_devices`, `borrow`), resolved to tenant ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaRule {
    /// Cap in devices per tenant id; `None` (or beyond the end): no cap.
    pub caps: Vec<Option<f64>>,
    pub borrow: bool,
}

impl QuotaRule {
    pub fn cap(&self, tenant: TenantId) -> Option<f64> {
        self.caps.get(tenant.index()).copied().flatten()
    }

    pub fn any(&self) -> bool {
        self.caps.iter().any(Option::is_some)
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("label", &self.label)
            .field("queue", &self.queue.name())
            .field("placement", &self.placement.name())
            .field("preemption", &self.preemption)
            .field("backfill", &self.backfill)
            .field("quotas", &self.quotas)
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
    let v = crate::limits::check_secs(value.unwrap_or(default), true).map_err(|message| PolicyError { key, message })?;
    Ok(Time::from_secs_f64(v))
}

impl Policy {
    /// The registry: builds a policy from its spec, or says which key is wrong and what it
    /// accepts. A spec that names tenants (`quota_devices`, `tenant_weights`) needs their ids:
    /// use [`Policy::from_spec_with_tenants`].
    pub fn from_spec(spec: &PolicySpec) -> Result<Policy, PolicyError> {
        Self::from_spec_with_tenants(spec, &[])
    }

    /// Checks every key of a spec but the tenant names, which only the workload knows (a
    /// scenario is checked before its workload is built).
    pub fn check_spec(spec: &PolicySpec) -> Result<(), PolicyError> {
        Self::build(spec, 0, &|_, _| Ok(TenantId(0))).map(|_| ())
    }

    /// [`Policy::from_spec`], with tenant names resolved against `tenants` (index = tenant
    /// id, as the workload's list). An unknown name is an error naming the key and the
    /// known tenants.
    pub fn from_spec_with_tenants(spec: &PolicySpec, tenants: &[String]) -> Result<Policy, PolicyError> {
        Self::build(spec, tenants.len(), &|key: &'static str, name: &str| {
            tenants.iter().position(|t| t == name).map(|i| TenantId(i as u32)).ok_or_else(|| {
                let known = if tenants.is_empty() {
                    "none (no tenant names were given)".to_string()
                } else {
                    let mut shown: Vec<&str> = tenants.iter().take(20).map(String::as_str).collect();
                    if tenants.len() > 20 {
                        shown.push("...");
                    }
                    shown.join(", ")
                };
                PolicyError { key, message: format!("no tenant `{name}` in the workload; its tenants are: {known}") }
            })
        })
    }

    /// `tenant_count`: tenants the workload has (weights cover them all, 1 where not named,
    /// so shares are of the whole workload's weight).
    fn build(spec: &PolicySpec, tenant_count: usize, resolve: &dyn Fn(&'static str, &str) -> Result<TenantId, PolicyError>) -> Result<Policy, PolicyError> {
        let queue = match QUEUE_ORDER_REGISTRY.iter().find(|(name, _)| *name == spec.name) {
            Some((_, build)) => build(spec)?,
            None => return Err(PolicyError { key: "name", message: format!("unknown queue order `{}`, expected one of: {}", spec.name, QUEUE_ORDERS.join(", ")) }),
        };
        let placement_name = spec.placement.as_deref().unwrap_or("first-fit");
        let placement = match PLACEMENT_REGISTRY.iter().find(|(name, _)| *name == placement_name) {
            Some((_, build)) => build(spec)?,
            None => return Err(PolicyError { key: "placement", message: format!("unknown placement `{placement_name}`, expected one of: {}", PLACEMENTS.join(", ")) }),
        };
        let preemption = PreemptionRule {
            enabled: spec.preempt.unwrap_or(queue.preempts_by_default()),
            grace: non_negative_secs("grace_s", spec.grace_s, 30.0)?,
            min_runtime: non_negative_secs("min_runtime_s", spec.min_runtime_s, 0.0)?,
            victim: match spec.victim.as_deref().unwrap_or("lowest-tier") {
                "lowest-tier" => VictimRule::LowestTier,
                "least-progress" => VictimRule::LeastProgress,
                "most-attained" => VictimRule::MostAttained,
                other => {
                    return Err(PolicyError {
                        key: "victim",
                        message: format!("unknown victim rule `{other}`, expected one of: {}", VICTIM_RULES.join(", ")),
                    })
                }
            },
        };
        if spec.island_size == Some(0) {
            return Err(PolicyError { key: "island_size", message: "expected at least 1 device per island, found 0".into() });
        }
        let build_tenant_order = TENANT_ORDER_REGISTRY.iter().find(|(name, _)| *name == spec.name).map(|(_, build)| build);
        let mut weights: Vec<f64> = Vec::new();
        if let Some(named) = &spec.tenant_weights {
            if build_tenant_order.is_none() {
                let names: Vec<String> = TENANT_ORDER_NAMES.iter().map(|n| format!("`{n}`")).collect();
                return Err(PolicyError { key: "tenant_weights", message: format!("only {} weigh tenants, not `{}`", names.join(" and "), spec.name) });
            }
            weights.resize(tenant_count, 1.0);
            for (name, &w) in named {
                if !(w.is_finite() && w > 0.0) {
                    return Err(PolicyError { key: "tenant_weights", message: format!("tenant `{name}`: expected a positive weight, found {w}") });
                }
                let t = resolve("tenant_weights", name)?.index();
                if weights.len() <= t {
                    weights.resize(t + 1, 1.0);
                }
                weights[t] = w;
            }
        }
        let tenant_order = build_tenant_order.map(|build| build(spec, weights)).transpose()?;
        if tenant_order.is_some() && spec.preempt == Some(true) {
            // The tenant pass makes room only by reclaiming borrowed devices: a job of one
            // tenant never outranks a running job of another, so this would do nothing.
            return Err(PolicyError {
                key: "preempt",
                message: format!(
                    "`{}` ranks tenants, not jobs, so no running job ranks below a waiting one and `preempt = true` would preempt nothing; \
                     to take devices back from a tenant, give it a quota (`quota_devices`): borrowed devices are reclaimed with the grace",
                    spec.name
                ),
            });
        }
        let mut quotas = QuotaRule { caps: Vec::new(), borrow: spec.borrow.unwrap_or(true) };
        for (name, &cap) in spec.quota_devices.iter().flatten() {
            let t = resolve("quota_devices", name)?.index();
            if quotas.caps.len() <= t {
                quotas.caps.resize(t + 1, None);
            }
            quotas.caps[t] = Some(cap as f64);
        }
        if spec.borrow.is_some() && spec.quota_devices.is_none() {
            return Err(PolicyError { key: "borrow", message: "borrowing applies to quotas: set `quota_devices` too".into() });
        }
        let mode = match spec.backfill.as_deref().unwrap_or("none") {
            "none" => BackfillMode::None,
            "easy" => BackfillMode::Easy,
            "conservative" => BackfillMode::Conservative,
            other => {
                return Err(PolicyError {
                    key: "backfill",
                    message: format!("unknown backfill `{other}`, expected one of: {}", BACKFILL_MODES.join(", ")),
                })
            }
        };
        let depth = match spec.backfill_depth {
            Some(0) => return Err(PolicyError { key: "backfill_depth", message: "expected at least 1 job, found 0".into() }),
            Some(d) => d as usize,
            None => BackfillRule::DEFAULT_DEPTH,
        };
        let backfill = BackfillRule { mode, depth };
        let rounds = round::planner_from_spec(spec)?;
        Ok(Policy { label: spec.label().into(), queue, tenant_order, placement, preemption, backfill, quotas, rounds })
    }

    /// Whether a decision can depend on the class x model speed table (`hetero`, `gavel`):
    /// then the table is part of what was validated.
    pub fn uses_speeds(&self) -> bool {
        self.placement.uses_speeds() || self.rounds.as_ref().is_some_and(|r| r.uses_speeds())
    }

    /// Whether a decision can depend on which tenant is which (tenant orders, quotas): then
    /// the tenant table is part of what was validated.
    pub fn uses_tenants(&self) -> bool {
        self.tenant_order.is_some() || !self.quotas.caps.is_empty()
    }

    /// Gives the placement the class x model speed table (`hetero` uses it; the others ignore
    /// it). The simulator calls this with its speed matrix after `from_spec`.
    pub fn with_speeds(mut self, speeds: SpeedTable) -> Policy {
        let speeds = std::sync::Arc::new(speeds);
        if let Some(rounds) = &mut self.rounds {
            rounds.set_speeds(speeds.clone());
        }
        self.placement.set_speeds(speeds);
        self
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

    #[test]
    fn every_registered_name_builds_once_and_preempts_as_documented() {
        for names in [QUEUE_ORDERS, PLACEMENTS] {
            let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
            assert_eq!(unique.len(), names.len(), "a name registered twice: {names:?}");
        }
        for &name in QUEUE_ORDERS {
            let p = Policy::from_spec(&PolicySpec::named(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.preemption.enabled, name == "priority" || name == "las", "{name}");
            assert_eq!(p.tenant_order.is_some(), TENANT_ORDER_NAMES.contains(&name), "{name}");
        }
        for &placement in PLACEMENTS {
            let mut spec = PolicySpec::named("fifo");
            spec.placement = Some(placement.into());
            assert_eq!(Policy::from_spec(&spec).unwrap().placement.name(), placement);
        }
        let mut spec = PolicySpec::named("sjf");
        spec.tenant_weights = Some([("a".to_string(), 2.0)].into_iter().collect());
        let err = Policy::from_spec_with_tenants(&spec, &["a".into()]).unwrap_err();
        assert_eq!(err.key, "tenant_weights");
        assert!(err.message.contains("`drf` and `fair-share`"), "{err}");
    }

    #[test]
    fn tenant_orders_refuse_preemption_by_rank_they_cannot_do() {
        for name in ["drf", "fair-share"] {
            let mut spec = PolicySpec::named(name);
            spec.preempt = Some(true);
            let err = Policy::from_spec(&spec).unwrap_err();
            assert_eq!(err.key, "preempt", "{name}");
            assert!(err.message.contains("quota_devices"), "{err}");
            spec.preempt = Some(false);
            assert!(Policy::from_spec(&spec).is_ok(), "{name}");
        }
        let mut spec = PolicySpec::named("fifo");
        spec.preempt = Some(true);
        assert!(Policy::from_spec(&spec).unwrap().preemption.enabled);
    }
}
