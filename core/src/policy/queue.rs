//! Queue orders. An order gives each job a key when it enters the queue; the queue is a
//! sorted map on that key, so the head is found in O(log n) and nothing is re-sorted per event.
//! Orders whose keys change over time say when (`rekey_at`: LAS promotes a starving job), and
//! orders that preempt rank running jobs against the head (`rank`).

use super::{non_negative_secs, PolicyError, PolicySpec};
use crate::event::OrderReason;
use crate::job::JobSpec;
use crate::time::Time;

/// Smaller keys go first. Ties are broken by submission sequence, so order is total.
pub type QueueKey = [i64; 2];

/// What an order may know of a job beyond its spec.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OrderView {
    /// When the job was first submitted.
    pub submitted: Time,
    /// Running time accumulated over its completed runs.
    pub attained: Time,
    /// Device-seconds accumulated over its completed runs (devices x time): LAS's service.
    pub attained_device_s: f64,
    /// A starving job promoted to the first LAS queue.
    pub promoted: bool,
}

pub trait QueueOrder: Send {
    fn name(&self) -> &'static str;
    /// The job's key when it enters (or re-enters) the queue.
    fn key(&self, job: &JobSpec, view: &OrderView) -> QueueKey;
    /// The rule and value this order ranked the job by, for the decision log.
    fn explain(&self, job: &JobSpec, view: &OrderView) -> OrderReason;
    /// How important a job is when preemption weighs it against the queue head: a running
    /// job may be evicted for a head of strictly higher rank. `attained_device_s` includes the
    /// current run. The priority tier by default.
    fn rank(&self, job: &JobSpec, view: &OrderView, attained_device_s: f64) -> i64 {
        let _ = (view, attained_device_s);
        job.priority as i64
    }
    /// Whether policies of this order preempt unless their spec says `preempt = false`.
    fn preempts_by_default(&self) -> bool {
        false
    }
    /// Whether `rank` depends on service attained while running (then running jobs are
    /// re-ranked when preemption is considered, and `rank_changes_at` says when).
    fn dynamic_rank(&self) -> bool {
        false
    }
    /// Whether the victims' tiers, as kept sorted, are their ranks: then preemption takes
    /// its candidates from that order as it stands instead of ranking running jobs.
    fn ranks_are_tiers(&self) -> bool {
        false
    }
    /// For a running job that started at `run_started` with `attained_device_s` before this
    /// run: when its rank next changes.
    fn rank_changes_at(&self, job: &JobSpec, attained_device_s: f64, run_started: Time) -> Option<Time> {
        let _ = (job, attained_device_s, run_started);
        None
    }
    /// For a job queued at `enqueued_at`: when its key should be recomputed.
    fn rekey_at(&self, view: &OrderView, enqueued_at: Time) -> Option<Time> {
        let _ = (view, enqueued_at);
        None
    }
}

fn micros(t: Time) -> i64 {
    t.as_micros().min(i64::MAX as u64) as i64
}

/// First come, first served, strictly: a job that cannot start blocks those behind it.
pub struct Fifo;

impl QueueOrder for Fifo {
    fn name(&self) -> &'static str {
        "fifo"
    }
    fn key(&self, _job: &JobSpec, view: &OrderView) -> QueueKey {
        [micros(view.submitted), 0]
    }
    fn explain(&self, _job: &JobSpec, _view: &OrderView) -> OrderReason {
        OrderReason::Fifo
    }
}

/// Shortest stated duration first; jobs that state none go last, oldest first among equals.
pub struct ShortestJobFirst;

impl QueueOrder for ShortestJobFirst {
    fn name(&self) -> &'static str {
        "sjf"
    }
    fn key(&self, job: &JobSpec, view: &OrderView) -> QueueKey {
        [job.stated_duration.map_or(i64::MAX, micros), micros(view.submitted)]
    }
    fn explain(&self, job: &JobSpec, _view: &OrderView) -> OrderReason {
        OrderReason::ShortestStated { stated_s: job.stated_duration.map(Time::as_secs_f64) }
    }
}

/// Shortest remaining stated time first: the stated duration less the time already run (a
/// preempted job comes back ahead of where it started). Jobs that state none go last.
pub struct ShortestRemaining;

impl QueueOrder for ShortestRemaining {
    fn name(&self) -> &'static str {
        "srtf"
    }
    fn key(&self, job: &JobSpec, view: &OrderView) -> QueueKey {
        [job.stated_duration.map_or(i64::MAX, |d| micros(d - view.attained)), micros(view.submitted)]
    }
    fn explain(&self, job: &JobSpec, view: &OrderView) -> OrderReason {
        OrderReason::ShortestRemaining { remaining_s: job.stated_duration.map(|d| (d - view.attained).as_secs_f64()) }
    }
    /// Shorter remaining time ranks higher: with preemption on, a short job evicts a long one.
    fn rank(&self, job: &JobSpec, view: &OrderView, _attained_device_s: f64) -> i64 {
        job.stated_duration.map_or(i64::MIN, |d| -micros(d - view.attained))
    }
}

/// Highest priority tier first, oldest first within a tier.
pub struct PriorityTiers;

impl QueueOrder for PriorityTiers {
    fn name(&self) -> &'static str {
        "priority"
    }

    fn ranks_are_tiers(&self) -> bool {
        true
    }
    fn preempts_by_default(&self) -> bool {
        true
    }

    fn key(&self, job: &JobSpec, view: &OrderView) -> QueueKey {
        [-(job.priority as i64), micros(view.submitted)]
    }
    fn explain(&self, job: &JobSpec, _view: &OrderView) -> OrderReason {
        OrderReason::PriorityTier { tier: job.priority }
    }
}

/// Tiresias' discretized two-dimensional least-attained-service (NSDI'19): a job's service is
/// devices x time; queue `k` holds the jobs whose service has passed `k` of the thresholds;
/// lower queues go first, FIFO within a queue. A running job that passes a threshold is
/// demoted, and may then be preempted by a queued job of a lower queue. A job that has waited
/// `promote_after` since it last entered the queue is promoted to the first queue, so long jobs
/// do not starve.
pub struct LeastAttained {
    /// Device-second thresholds, ascending.
    pub thresholds_device_s: Vec<f64>,
    pub promote_after: Option<Time>,
}

impl LeastAttained {
    /// The registry's constructor: `thresholds_device_s` (default one threshold at 3,200,
    /// Tiresias'), `promote_after_s`.
    pub(super) fn from_spec(spec: &PolicySpec) -> Result<Box<dyn QueueOrder>, PolicyError> {
        let thresholds = spec.thresholds_device_s.clone().unwrap_or_else(|| vec![3200.0]);
        if thresholds.iter().any(|t| !(t.is_finite() && *t > 0.0)) || thresholds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(PolicyError { key: "thresholds_device_s", message: format!("expected increasing positive device-seconds, found {thresholds:?}") });
        }
        let promote_after = spec.promote_after_s.map(|s| non_negative_secs("promote_after_s", Some(s), 0.0)).transpose()?;
        Ok(Box::new(LeastAttained { thresholds_device_s: thresholds, promote_after }))
    }

    pub fn level(&self, attained_device_s: f64) -> usize {
        self.thresholds_device_s.iter().take_while(|&&t| attained_device_s >= t).count()
    }
}

impl QueueOrder for LeastAttained {
    fn name(&self) -> &'static str {
        "las"
    }
    fn key(&self, _job: &JobSpec, view: &OrderView) -> QueueKey {
        let level = if view.promoted { 0 } else { self.level(view.attained_device_s) };
        [level as i64, micros(view.submitted)]
    }
    fn explain(&self, _job: &JobSpec, view: &OrderView) -> OrderReason {
        let level = if view.promoted { 0 } else { self.level(view.attained_device_s) } as u32;
        OrderReason::LeastAttained { queue: level, attained_device_s: view.attained_device_s, promoted: view.promoted }
    }
    fn rank(&self, _job: &JobSpec, view: &OrderView, attained_device_s: f64) -> i64 {
        if view.promoted {
            return 0;
        }
        -(self.level(attained_device_s) as i64)
    }
    fn dynamic_rank(&self) -> bool {
        true
    }
    fn preempts_by_default(&self) -> bool {
        true
    }
    fn rank_changes_at(&self, job: &JobSpec, attained_device_s: f64, run_started: Time) -> Option<Time> {
        let devices = job.devices.device_equivalents().max(0.001);
        let next = self.thresholds_device_s.iter().find(|&&t| t > attained_device_s)?;
        Some(run_started + Time::from_secs_f64((next - attained_device_s) / devices))
    }
    fn rekey_at(&self, view: &OrderView, enqueued_at: Time) -> Option<Time> {
        let after = self.promote_after?;
        (!view.promoted && self.level(view.attained_device_s) > 0).then(|| enqueued_at + after)
    }
}

/// What a tenant holds and has used, for the orders that rank tenants.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TenantUsage {
    /// Devices held now (fractional shares count as their fraction).
    pub devices: f64,
    pub cpu_milli: f64,
    pub mem_mib: f64,
    /// Device-seconds used, decayed with the order's half-life, as of `as_of`.
    pub decayed_device_s: f64,
    pub as_of: Time,
}

impl TenantUsage {
    /// Brings the decayed usage forward to `now`: past usage halves every `half_life`, and the
    /// devices held since `as_of` add their (decayed) integral.
    pub fn advance(&mut self, now: Time, half_life: Option<Time>) {
        let dt = (now - self.as_of).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        match half_life {
            Some(h) if h > Time::ZERO => {
                let h = h.as_secs_f64();
                let decay = (-dt / h * std::f64::consts::LN_2).exp();
                self.decayed_device_s = self.decayed_device_s * decay + self.devices * h / std::f64::consts::LN_2 * (1.0 - decay);
            }
            _ => self.decayed_device_s += self.devices * dt,
        }
        self.as_of = now;
    }
}

/// The cluster's capacity, for shares.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Capacity {
    pub devices: f64,
    pub cpu_milli: f64,
    pub mem_mib: f64,
}

/// Orders that pick a tenant first, then that tenant's oldest job (FIFO within a tenant). A
/// tenant whose oldest job cannot start is passed over for the next tenant, so one tenant's
/// large job does not idle the cluster for everyone else.
pub trait TenantOrder: Send {
    fn name(&self) -> &'static str;
    /// Smaller goes first. `all` is every tenant's usage (for normalising).
    fn tenant_rank(&self, tenant: usize, usage: &TenantUsage, all: &[TenantUsage], capacity: &Capacity) -> f64;
    fn explain(&self, tenant: usize, usage: &TenantUsage, all: &[TenantUsage], capacity: &Capacity) -> OrderReason;
    /// Half-life of past usage, for orders that remember it.
    fn half_life(&self) -> Option<Time> {
        None
    }
}

/// Dominant resource fairness (Ghodsi et al., NSDI'11) across tenants: the tenant whose
/// largest share of any resource (devices, CPU, memory), divided by its weight, is smallest
/// goes first.
pub struct DominantResourceFairness {
    /// Weight per tenant id (1.0 where absent).
    pub weights: Vec<f64>,
}

impl DominantResourceFairness {
    fn share(&self, tenant: usize, u: &TenantUsage, c: &Capacity) -> f64 {
        let ratio = |used: f64, cap: f64| if cap > 0.0 { used / cap } else { 0.0 };
        let dominant = ratio(u.devices, c.devices).max(ratio(u.cpu_milli, c.cpu_milli)).max(ratio(u.mem_mib, c.mem_mib));
        dominant / self.weights.get(tenant).copied().unwrap_or(1.0)
    }
}

impl TenantOrder for DominantResourceFairness {
    fn name(&self) -> &'static str {
        "drf"
    }
    fn tenant_rank(&self, tenant: usize, usage: &TenantUsage, _all: &[TenantUsage], capacity: &Capacity) -> f64 {
        self.share(tenant, usage, capacity)
    }
    fn explain(&self, tenant: usize, usage: &TenantUsage, _all: &[TenantUsage], capacity: &Capacity) -> OrderReason {
        OrderReason::DominantShare { tenant_share: self.share(tenant, usage, capacity) }
    }
}

/// Slurm's classic multifactor fair share: each tenant has a share (its weight over all
/// weights) and a usage (its decayed device-seconds over everyone's); its factor is
/// 2^(-usage/share), and the tenant with the highest factor goes first. Usage decays with a
/// half-life, so the past weighs less than the present.
pub struct FairShare {
    pub weights: Vec<f64>,
    pub half_life: Time,
}

impl FairShare {
    fn parts(&self, tenant: usize, usage: &TenantUsage, all: &[TenantUsage]) -> (f64, f64, f64) {
        let weight = |t: usize| self.weights.get(t).copied().unwrap_or(1.0);
        let total_weight: f64 = (0..all.len().max(self.weights.len())).map(weight).sum::<f64>().max(f64::MIN_POSITIVE);
        let total_usage: f64 = all.iter().map(|u| u.decayed_device_s).sum();
        let target = weight(tenant) / total_weight;
        let used = if total_usage > 0.0 { usage.decayed_device_s / total_usage } else { 0.0 };
        ((-used / target.max(f64::MIN_POSITIVE)).exp2(), used, target)
    }
}

impl FairShare {
    /// The registry's constructor: `half_life_s` (default 7 days).
    pub(super) fn from_spec(spec: &PolicySpec, weights: Vec<f64>) -> Result<Box<dyn TenantOrder>, PolicyError> {
        let half_life = non_negative_secs("half_life_s", spec.half_life_s, 7.0 * 86_400.0)?;
        Ok(Box::new(FairShare { weights, half_life }))
    }
}

impl TenantOrder for FairShare {
    fn name(&self) -> &'static str {
        "fair-share"
    }
    fn tenant_rank(&self, tenant: usize, usage: &TenantUsage, all: &[TenantUsage], _capacity: &Capacity) -> f64 {
        -self.parts(tenant, usage, all).0
    }
    fn explain(&self, tenant: usize, usage: &TenantUsage, all: &[TenantUsage], _capacity: &Capacity) -> OrderReason {
        let (factor, usage_share, target_share) = self.parts(tenant, usage, all);
        OrderReason::FairShare { factor, usage_share, target_share }
    }
    fn half_life(&self) -> Option<Time> {
        Some(self.half_life)
    }
}
