//! Queue orders. An order gives each job a key when it enters the queue; the queue is a
//! sorted map on that key, so the head is found in O(log n) and nothing is re-sorted per event.

use crate::event::OrderReason;
use crate::job::JobSpec;
use crate::time::Time;

/// Smaller keys go first. Ties are broken by submission sequence, so order is total.
pub type QueueKey = [i64; 2];

pub trait QueueOrder: Send {
    fn name(&self) -> &'static str;
    /// The job's key; `submitted` is when the job first entered the queue.
    fn key(&self, job: &JobSpec, submitted: Time) -> QueueKey;
    /// The rule and value this order ranked the job by, for the decision log.
    fn explain(&self, job: &JobSpec) -> OrderReason;
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
    fn key(&self, _job: &JobSpec, submitted: Time) -> QueueKey {
        [micros(submitted), 0]
    }
    fn explain(&self, _job: &JobSpec) -> OrderReason {
        OrderReason::Fifo
    }
}

/// Shortest stated duration first; jobs that state none go last, oldest first among equals.
pub struct ShortestJobFirst;

impl QueueOrder for ShortestJobFirst {
    fn name(&self) -> &'static str {
        "sjf"
    }
    fn key(&self, job: &JobSpec, submitted: Time) -> QueueKey {
        [job.stated_duration.map_or(i64::MAX, micros), micros(submitted)]
    }
    fn explain(&self, job: &JobSpec) -> OrderReason {
        OrderReason::ShortestStated { stated_s: job.stated_duration.map(Time::as_secs_f64) }
    }
}

/// Highest priority tier first, oldest first within a tier.
pub struct PriorityTiers;

impl QueueOrder for PriorityTiers {
    fn name(&self) -> &'static str {
        "priority"
    }
    fn key(&self, job: &JobSpec, submitted: Time) -> QueueKey {
        [-(job.priority as i64), micros(submitted)]
    }
    fn explain(&self, job: &JobSpec) -> OrderReason {
        OrderReason::PriorityTier { tier: job.priority }
    }
}
