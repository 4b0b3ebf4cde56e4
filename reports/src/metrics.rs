//! Per-run metrics computed from the job records a driver (simulator or executor) produced.

use tessera_core::{JobRecord, JobOutcome, Time};

/// The run-time floor of the bounded slowdown, in seconds: jobs shorter than this count as
/// if they had run this long, so that a 1 s job that waited 1 min does not dominate the mean
/// with a slowdown of 61 (Feitelson's bounded slowdown; 10 s is the customary bound).
pub const BOUNDED_SLOWDOWN_THRESHOLD_S: f64 = 10.0;

/// The `q`-quantile of `sorted` (ascending) by the **nearest-rank** method: the smallest value
/// such that at least a fraction `q` of the values are `<=` it, i.e. `sorted[ceil(q·n) - 1]`
/// (and the minimum for `q = 0`). Always one of the values, never an interpolation.
///
/// `q` is a fraction in `[0, 1]` (`0.95` for the 95th percentile). Returns NaN for an empty
/// slice and for a `q` outside `[0, 1]` (so that passing `95.0` shows up as NaN rather than
/// as a plausible number). `sorted` must be sorted ascending; sort with `f64::total_cmp`.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let n = sorted.len();
    let exact = q * n as f64;
    // 0.95 · 20 is 19.000000000000004 in floating point; its rank is 19, not 20.
    let nearest = exact.round();
    let rank = if (exact - nearest).abs() < 1e-9 {
        nearest
    } else {
        exact.ceil()
    };
    sorted[(rank as usize).clamp(1, n) - 1]
}

/// Metrics of one run. Times are in seconds.
///
/// Definitions (a job is *completed* when its outcome is [`JobOutcome::Completed`] and it
/// has an end time):
///
/// - `jobs`: all records, whatever their outcome.
/// - `completed`: completed jobs.
/// - `rejected`: jobs the scheduler refused at submission because they can never run on the
///   cluster (more devices than it has, more CPU or memory than any node); with every job
///   rejected, the averages below are NaN, and this count says why.
/// - **JCT** (job completion time) = end − submit, over completed jobs.
/// - **wait** = JCT − run time, over completed jobs: all the time a job was not running,
///   including the waits after a preemption sent it back to the queue.
/// - **bounded slowdown** = max(1, JCT / max(run, [`BOUNDED_SLOWDOWN_THRESHOLD_S`])), averaged
///   over completed jobs.
/// - Averages and percentiles ([`percentile`], nearest rank) are over completed jobs; with no
///   completed job they are NaN.
/// - **makespan** = the latest end over all jobs that ended (whatever their outcome) minus the
///   earliest submission over all jobs; 0 when no job ended.
/// - **utilization** = the device-time all jobs held (sum of `device_micros`, unfinished jobs
///   included) / (`total_devices` × makespan); 0 when the makespan or `total_devices` is not
///   positive. It can exceed 1 when unfinished jobs held devices past the last end.
/// - `preemptions`: the sum over all jobs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunMetrics {
    pub jobs: u64,
    pub completed: u64,
    pub rejected: u64,
    pub avg_jct_s: f64,
    pub p50_jct_s: f64,
    pub p95_jct_s: f64,
    pub p99_jct_s: f64,
    pub avg_wait_s: f64,
    pub p50_wait_s: f64,
    pub p95_wait_s: f64,
    pub p99_wait_s: f64,
    pub avg_bounded_slowdown: f64,
    pub makespan_s: f64,
    /// A fraction (1.0 = every device busy for the whole makespan), not a percentage.
    pub utilization: f64,
    pub preemptions: u64,
    /// Work lost to failures and unsaved preemptions over all jobs, reference-device seconds.
    pub lost_work_s: f64,
    /// Time spent writing, restoring and saving checkpoints over all jobs.
    pub checkpoint_overhead_s: f64,
}

/// Computes a run's [`RunMetrics`] from its job records; `total_devices` is the fleet's device
/// count over which utilization is measured. See [`RunMetrics`] for the definitions.
pub fn run_metrics(records: &[JobRecord], total_devices: f64) -> RunMetrics {
    let mut jct_s = Vec::with_capacity(records.len());
    let mut wait_s = Vec::with_capacity(records.len());
    let mut slowdown_sum = 0.0;
    let mut preemptions = 0u64;
    let mut rejected = 0u64;
    let mut device_micros = 0u128;
    let (mut lost_work, mut checkpoint_overhead) = (Time::ZERO, Time::ZERO);
    let mut earliest_submit = Time::MAX;
    let mut latest_end: Option<Time> = None;

    for r in records {
        preemptions += u64::from(r.ledger.preemptions);
        device_micros = device_micros.saturating_add(r.device_micros);
        lost_work += r.lost_work;
        checkpoint_overhead += r.checkpoint_overhead;
        earliest_submit = earliest_submit.min(r.ledger.submit);
        if let Some(end) = r.ledger.end {
            latest_end = Some(latest_end.map_or(end, |l| l.max(end)));
        }
        if r.outcome == JobOutcome::Rejected {
            rejected += 1;
        }
        if r.outcome != JobOutcome::Completed {
            continue;
        }
        let (Some(jct), Some(wait)) = (r.jct(), r.wait()) else {
            continue;
        };
        let jct = jct.as_secs_f64();
        jct_s.push(jct);
        wait_s.push(wait.as_secs_f64());
        slowdown_sum += (jct / r.ledger.run.as_secs_f64().max(BOUNDED_SLOWDOWN_THRESHOLD_S)).max(1.0);
    }

    let completed = jct_s.len();
    let mean = |sum: f64| {
        if completed == 0 {
            f64::NAN
        } else {
            sum / completed as f64
        }
    };
    let avg_jct_s = mean(jct_s.iter().sum());
    let avg_wait_s = mean(wait_s.iter().sum());
    jct_s.sort_unstable_by(f64::total_cmp);
    wait_s.sort_unstable_by(f64::total_cmp);

    let makespan = latest_end.map_or(Time::ZERO, |end| end - earliest_submit);
    let makespan_s = makespan.as_secs_f64();
    let utilization = if makespan_s > 0.0 && total_devices > 0.0 && total_devices.is_finite() {
        device_micros as f64 / (total_devices * makespan.as_micros() as f64)
    } else {
        0.0
    };

    RunMetrics {
        jobs: records.len() as u64,
        completed: completed as u64,
        rejected,
        avg_jct_s,
        p50_jct_s: percentile(&jct_s, 0.50),
        p95_jct_s: percentile(&jct_s, 0.95),
        p99_jct_s: percentile(&jct_s, 0.99),
        avg_wait_s,
        p50_wait_s: percentile(&wait_s, 0.50),
        p95_wait_s: percentile(&wait_s, 0.95),
        p99_wait_s: percentile(&wait_s, 0.99),
        avg_bounded_slowdown: mean(slowdown_sum),
        makespan_s,
        utilization,
        preemptions,
        lost_work_s: lost_work.as_secs_f64(),
        checkpoint_overhead_s: checkpoint_overhead.as_secs_f64(),
    }
}
