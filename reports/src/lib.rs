//! tessera-reports: metrics, statistics and tables over what the simulator and the executor
//! write.
//!
//! Deliberately lean (tessera-core, std, statrs for Student's t and serde_json for reading
//! decision logs) so that the simulator's runners and tests can use it without pulling in
//! plotting or data-frame crates.
//!
//! - [`metrics`]: per-run metrics from job records ([`run_metrics`]) and [`percentile`].
//! - [`summary`]: one row per run, as CSV ([`write_summary_csv`]) and as a terminal table
//!   ([`format_summary_table`]).
//! - [`jobs`]: one row per job ([`write_jobs_csv`]).
//! - [`compare`]: metrics and statistics of `tessera compare` (confidence intervals, paired
//!   differences, fairness), `comparison.csv` ([`write_comparison_csv`]) and its table.
//! - [`explain`]: `tessera explain`: one job's story from a run's decision log.
//! - [`fidelity`]: `tessera fidelity`: per-job errors of the simulator's predicted wait and
//!   JCT against what the live executor observed.
//! - [`queueing`]: closed-form queueing results the simulator is validated against
//!   ([`erlang_c_wait`]).
//!
//! # Number formatting in CSV files
//!
//! Fixed and deterministic, so that the same run gives byte-identical files: times in
//! seconds with 3 decimals in summaries and 6 (exact microseconds) in per-job files,
//! utilization with 6 decimals, counts as integers. A metric that does not exist (for example
//! a mean over zero completed jobs) is NaN and is written literally as `NaN`; a time that does
//! not exist for one job (never started, never ended) is an empty field.

pub mod compare;
pub mod explain;
pub mod fidelity;
mod fmt;
pub mod jobs;
pub mod metrics;
pub mod queueing;
pub mod summary;

pub use compare::{
    compare_metrics, compare_runs, format_comparison_table, write_comparison_csv, ComparisonRow, JobFilter, RunSample,
    COMPARISON_HEADER,
};
pub use explain::{explain, ExplainError};
pub use jobs::{write_jobs_csv, JOBS_HEADER};
pub use metrics::{percentile, run_metrics, RunMetrics, BOUNDED_SLOWDOWN_THRESHOLD_S};
pub use queueing::{erlang_c, erlang_c_wait};
pub use summary::{format_summary_table, write_summary_csv, SummaryRow, SUMMARY_HEADER};
