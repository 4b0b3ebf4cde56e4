//! Counters that a long run or sweep publishes for a progress display on another thread.
//!
//! The engine adds to them every few thousand events with relaxed atomics, so it never waits
//! on the display and costs nothing measurable; drawing them (and whether to) is the caller's
//! business.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

/// Events between two publications of a run's counters.
pub(crate) const PUBLISH_EVERY: u64 = 1 << 14;

#[derive(Debug, Default)]
pub struct Progress {
    runs_total: AtomicU64,
    runs_done: AtomicU64,
    jobs_total: AtomicU64,
    jobs_done: AtomicU64,
    events: AtomicU64,
    /// The furthest simulated time any run has reached, in microseconds.
    sim_time_us: AtomicU64,
    /// Called before the runner prints its table, so a display on the same terminal clears
    /// itself first instead of leaving its last line in front of the table.
    before_output: OnceLock<OutputHook>,
}

struct OutputHook(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for OutputHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputHook")
    }
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProgressSnapshot {
    pub runs_total: u64,
    pub runs_done: u64,
    pub jobs_total: u64,
    pub jobs_done: u64,
    pub events: u64,
    pub sim_time_s: f64,
}

impl Progress {
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            runs_total: self.runs_total.load(Relaxed),
            runs_done: self.runs_done.load(Relaxed),
            jobs_total: self.jobs_total.load(Relaxed),
            jobs_done: self.jobs_done.load(Relaxed),
            events: self.events.load(Relaxed),
            sim_time_s: self.sim_time_us.load(Relaxed) as f64 / 1e6,
        }
    }

    /// `runs` more runs of `jobs` jobs in all are about to start. A sweep announces all its
    /// runs first ([`Progress::expect_runs`]), so its points' announcements add no runs.
    pub(crate) fn plan(&self, runs: u64, jobs: u64) {
        self.runs_total.fetch_max(self.runs_done.load(Relaxed) + runs, Relaxed);
        self.jobs_total.fetch_add(jobs, Relaxed);
    }

    /// The whole of a sweep's runs, before its first point starts.
    pub(crate) fn expect_runs(&self, runs: u64) {
        self.runs_total.fetch_max(runs, Relaxed);
    }

    /// Sets what [`Progress::before_output`] calls (once; a second hook is ignored).
    pub fn on_output(&self, hook: impl Fn() + Send + Sync + 'static) {
        let _ = self.before_output.set(OutputHook(Box::new(hook)));
    }

    /// The runs are over and the runner is about to print: the display must be gone when this returns.
    pub(crate) fn before_output(&self) {
        if let Some(hook) = self.before_output.get() {
            (hook.0)();
        }
    }

    pub(crate) fn run_done(&self) {
        self.runs_done.fetch_add(1, Relaxed);
    }

    pub(crate) fn add(&self, events: u64, jobs_done: u64, sim_time_us: u64) {
        self.events.fetch_add(events, Relaxed);
        self.jobs_done.fetch_add(jobs_done, Relaxed);
        self.sim_time_us.fetch_max(sim_time_us, Relaxed);
    }
}
