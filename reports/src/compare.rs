//! Comparing policies across replications: per-run metrics beyond the summary (fairness,
//! finish-time fairness, time to first start, device-hours by model), and the statistics
//! `tessera compare` prints and writes to `comparison.csv`.
//!
//! # The statistics
//!
//! Replication `k` of every policy runs on the same workload (common random numbers), so the
//! runs of two policies form pairs. For each point, metric and policy:
//!
//! - `n`: the replications in which the metric is a number (a NaN value, such as a mean over
//!   no completed job, is left out, never counted as 0);
//! - `mean` and its 95% confidence interval `[ci_low, ci_high]` = mean ± t(0.975, n−1) · s/√n,
//!   with `s` the sample standard deviation and `t` Student's quantile (statrs);
//! - `n_pairs`: the replications in which both this policy's and the baseline's value are
//!   numbers; `diff_vs_baseline` = the mean over those pairs of (this − baseline), with its 95%
//!   confidence interval computed in the same way from the paired differences, and `p_value`,
//!   the two-sided p-value of the paired t-test (H0: the mean difference is 0).
//!
//! The baseline is the first policy of the scenario.
//!
//! NaN rules, explicitly:
//!
//! - with `n < 2` (or `n_pairs < 2`) the interval (and the p-value) is NaN: one replication says
//!   nothing about the spread. With `n = 0` the mean is NaN too;
//! - when all paired differences are equal the t statistic is 0/0 or ±∞: if they are all 0 the
//!   p-value is **1** (no evidence of any difference) and the interval is `[0, 0]`; if they
//!   are all the same non-zero value the p-value is 0 and the interval is that value. So the
//!   baseline's own row has `diff_vs_baseline = 0`, interval `[0, 0]` and `p_value = 1`
//!   (with at least 2 replications), as has a policy that behaves exactly like the baseline;
//! - likewise a metric with zero spread has the interval `[mean, mean]`.

use crate::fmt::{push_fixed, push_text, push_u64};
use crate::metrics::{percentile, run_metrics, BOUNDED_SLOWDOWN_THRESHOLD_S};
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::collections::BTreeMap;
use std::io::{self, Write};
use tessera_core::{JobRecord, ModelId, JobOutcome, Time};

/// Which jobs the comparison counts (a steady-state window). The simulation runs all jobs;
/// only the metrics are restricted. A job is counted when it passes every given test.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JobFilter {
    /// Inclusive range of job ids.
    pub job_ids: Option<(u64, u64)>,
    /// Submission time in `[start, end)`.
    pub submit_window: Option<(Time, Time)>,
}

impl JobFilter {
    pub fn keeps(&self, r: &JobRecord) -> bool {
        self.job_ids.is_none_or(|(first, last)| (first..=last).contains(&r.id.0))
            && self.submit_window.is_none_or(|(start, end)| r.ledger.submit >= start && r.ledger.submit < end)
    }

    pub fn is_all(&self) -> bool {
        self.job_ids.is_none() && self.submit_window.is_none()
    }
}

/// The metric names every run has, in table order; `device_hours_per_job:<MODEL>` per device
/// model of the cluster follow them.
///
/// - the summary's metrics ([`crate::RunMetrics`]: `jobs` … `checkpoint_overhead_s`), computed
///   over the counted jobs only: `makespan_s` is from their first submission to their last
///   end, and `utilization` their device-time over that span;
/// - `jain_fairness`: [`jain_index`] over tenants of [`tenant_service`];
/// - `ftf_mean`, `ftf_max`, `ftf_frac_above_1`: [`finish_time_fairness`];
/// - `first_start_mean_s`, `first_start_p95_s`: time to first start (first start − submit) over
///   counted jobs that started, mean and nearest-rank 95th percentile;
/// - `device_hours_per_job:<MODEL>`: [`device_hours_by_model`] divided by the number of counted
///   jobs (all of them, also those that never ran on that model), so that the models' values
///   add up to the mean device-hours per job.
pub const FIXED_METRICS: &[&str] = &[
    "jobs",
    "completed",
    "avg_jct_s",
    "p50_jct_s",
    "p95_jct_s",
    "p99_jct_s",
    "avg_wait_s",
    "p50_wait_s",
    "p95_wait_s",
    "p99_wait_s",
    "avg_bounded_slowdown",
    "makespan_s",
    "utilization",
    "preemptions",
    "lost_work_s",
    "checkpoint_overhead_s",
    "jain_fairness",
    "ftf_mean",
    "ftf_max",
    "ftf_frac_above_1",
    "first_start_mean_s",
    "first_start_p95_s",
];

/// Prefix of the per-model device-hours metrics.
pub const DEVICE_HOURS_PREFIX: &str = "device_hours_per_job:";

/// Jain's fairness index `(Σx)² / (n · Σx²)`: 1 when all `x` are equal, `1/n` when one is
/// non-zero and the rest zero. NaN for no values or when all are zero (undefined).
pub fn jain_index(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let sum: f64 = xs.iter().sum();
    let sum_sq: f64 = xs.iter().map(|x| x * x).sum();
    if xs.is_empty() || sum_sq == 0.0 {
        return f64::NAN;
    }
    sum * sum / (n * sum_sq)
}

/// Each tenant's *service*: 1 / (its mean bounded slowdown over its completed jobs among
/// `records`), in `(0, 1]`, indexed by tenant in first-appearance order; tenants without a
/// completed job are left out.
///
/// Why this and not device-time received over demand: in a run that drains (every job ends),
/// every tenant eventually receives exactly the device-time it asked for, so that ratio is 1
/// for everyone under any policy and the index could not tell policies apart. The bounded
/// slowdown says how much each tenant was held back relative to the size of its jobs, which is
/// what a tenant experiences. The reciprocal makes it "more is better", as an allocation is in
/// Jain's definition: a starved tenant is the one small value, and pulls the index down.
pub fn tenant_service<'a>(records: impl IntoIterator<Item = &'a JobRecord>) -> Vec<f64> {
    let mut per_tenant: BTreeMap<u32, (usize, f64, f64)> = BTreeMap::new(); // tenant -> (order, sum, count)
    for r in records {
        let Some(jct) = completed_jct_s(r) else { continue };
        let next = per_tenant.len();
        let e = per_tenant.entry(r.tenant.0).or_insert((next, 0.0, 0.0));
        e.1 += bounded_slowdown(jct, r.ledger.run.as_secs_f64());
        e.2 += 1.0;
    }
    let mut v: Vec<(usize, f64)> = per_tenant.values().map(|&(order, sum, count)| (order, count / sum)).collect();
    v.sort_by_key(|&(order, _)| order);
    v.into_iter().map(|(_, x)| x).collect()
}

fn bounded_slowdown(jct_s: f64, run_s: f64) -> f64 {
    (jct_s / run_s.max(BOUNDED_SLOWDOWN_THRESHOLD_S)).max(1.0)
}

fn completed_jct_s(r: &JobRecord) -> Option<f64> {
    (r.outcome == JobOutcome::Completed).then(|| r.jct().map(|t| t.as_secs_f64())).flatten()
}

/// Finish-time fairness (Themis): for each completed job `ρ = JCT / T_isolated`, where
/// `T_isolated` approximates the job's completion time had it had `1/tenants` of the cluster
/// to itself: `run × max(1, devices / (total_devices / tenants))`. Returns (mean ρ, max ρ,
/// fraction of jobs with ρ > 1); NaN for all three when no job counts.
///
/// The approximation: `run` is the job's observed running time in this run (so it includes
/// the speed of the devices it got, contention and checkpoint costs, which an isolated share
/// would also see, roughly); a job that fits in the share runs at once and for `run`; a job
/// larger than the share is stretched in proportion, as if it could run on a fraction of its
/// gang at proportionally lower speed. `tenants` should be the number of tenants with jobs in
/// the run (all of them, not just the counted ones: they all competed for the cluster); Themis
/// uses the number of tenants active at the time, which this simplifies to the whole run.
/// Jobs with no running time (ρ undefined) are left out.
pub fn finish_time_fairness<'a>(
    records: impl IntoIterator<Item = &'a JobRecord>,
    total_devices: f64,
    tenants: usize,
) -> (f64, f64, f64) {
    let share = total_devices / tenants.max(1) as f64;
    let (mut n, mut sum, mut max, mut above) = (0usize, 0.0, f64::NAN, 0usize);
    for r in records {
        let Some(jct) = completed_jct_s(r) else { continue };
        let run = r.ledger.run.as_secs_f64();
        if run <= 0.0 || share <= 0.0 {
            continue;
        }
        let isolated = run * (r.devices.device_equivalents() / share).max(1.0);
        let rho = jct / isolated;
        n += 1;
        sum += rho;
        max = if max.is_nan() { rho } else { max.max(rho) };
        if rho > 1.0 {
            above += 1;
        }
    }
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (sum / n as f64, max, above as f64 / n as f64)
}

/// Device-hours held per device model, summed over `records`, for the models in `models`
/// (others are not reported). A job's device-time (`device_micros`) is attributed to the
/// models of `ran_on`, the devices it *last* ran on, in equal parts when there are several: a
/// record does not say how its time split over models, nor on what it ran before a requeue.
pub fn device_hours_by_model<'a>(records: impl IntoIterator<Item = &'a JobRecord>, models: &[ModelId]) -> Vec<f64> {
    let mut hours = vec![0.0; models.len()];
    for r in records {
        let ran: Vec<ModelId> = r.ran_on.iter().collect();
        if ran.is_empty() || r.device_micros == 0 {
            continue;
        }
        let each = r.device_micros as f64 / 3.6e9 / ran.len() as f64;
        for m in ran {
            if let Some(i) = models.iter().position(|&x| x == m) {
                hours[i] += each;
            }
        }
    }
    hours
}

/// One run's metrics for the comparison: [`FIXED_METRICS`] then
/// `device_hours_per_job:<name>` for each of `models` (the cluster's models with their
/// names), all over the jobs `filter` keeps. `total_devices` is the cluster's device count.
pub fn compare_metrics(
    records: &[JobRecord],
    total_devices: f64,
    filter: &JobFilter,
    models: &[(ModelId, String)],
) -> Vec<(String, f64)> {
    let counted: Vec<JobRecord>;
    let kept: &[JobRecord] = if filter.is_all() {
        records
    } else {
        counted = records.iter().filter(|r| filter.keeps(r)).cloned().collect();
        &counted
    };
    let m = run_metrics(kept, total_devices);
    let tenants = {
        let mut t: Vec<u32> = records.iter().map(|r| r.tenant.0).collect();
        t.sort_unstable();
        t.dedup();
        t.len()
    };
    let (ftf_mean, ftf_max, ftf_above) = finish_time_fairness(kept, total_devices, tenants);
    let mut first_start: Vec<f64> =
        kept.iter().filter_map(|r| r.ledger.first_start.map(|s| (s - r.ledger.submit).as_secs_f64())).collect();
    first_start.sort_unstable_by(f64::total_cmp);
    let first_start_mean =
        if first_start.is_empty() { f64::NAN } else { first_start.iter().sum::<f64>() / first_start.len() as f64 };
    let values = [
        m.jobs as f64,
        m.completed as f64,
        m.avg_jct_s,
        m.p50_jct_s,
        m.p95_jct_s,
        m.p99_jct_s,
        m.avg_wait_s,
        m.p50_wait_s,
        m.p95_wait_s,
        m.p99_wait_s,
        m.avg_bounded_slowdown,
        m.makespan_s,
        m.utilization,
        m.preemptions as f64,
        m.lost_work_s,
        m.checkpoint_overhead_s,
        jain_index(&tenant_service(kept)),
        ftf_mean,
        ftf_max,
        ftf_above,
        first_start_mean,
        percentile(&first_start, 0.95),
    ];
    debug_assert_eq!(values.len(), FIXED_METRICS.len());
    let mut out: Vec<(String, f64)> = FIXED_METRICS.iter().map(|s| s.to_string()).zip(values).collect();
    let ids: Vec<ModelId> = models.iter().map(|(id, _)| *id).collect();
    let hours = device_hours_by_model(kept, &ids);
    let jobs = kept.len() as f64;
    for ((_, name), h) in models.iter().zip(hours) {
        out.push((format!("{DEVICE_HOURS_PREFIX}{name}"), if jobs > 0.0 { h / jobs } else { f64::NAN }));
    }
    out
}

/// One run's metrics, labelled with its policy and replication.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSample {
    pub policy: String,
    pub replication: u32,
    pub values: Vec<(String, f64)>,
}

/// A mean with its 95% confidence interval, over `n` values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub n: u32,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// The mean of the finite values of `xs` with its 95% Student-t confidence interval (see the
/// module's NaN rules).
pub fn mean_ci(xs: &[f64]) -> Interval {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return Interval { n: 0, mean: f64::NAN, low: f64::NAN, high: f64::NAN };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Interval { n: 1, mean, low: f64::NAN, high: f64::NAN };
    }
    let sd = sample_sd(&v, mean);
    let half = if sd == 0.0 { 0.0 } else { t_quantile(n, 0.975) * sd / (n as f64).sqrt() };
    Interval { n: n as u32, mean, low: mean - half, high: mean + half }
}

/// The paired comparison of `(x, baseline)` pairs: the interval of the mean of `x − baseline`
/// over pairs where both are finite, and the two-sided p-value of the paired t-test.
pub fn paired_diff(pairs: &[(f64, f64)]) -> (Interval, f64) {
    let d: Vec<f64> = pairs.iter().filter(|(a, b)| a.is_finite() && b.is_finite()).map(|(a, b)| a - b).collect();
    let interval = mean_ci(&d);
    if d.len() < 2 {
        return (interval, f64::NAN);
    }
    let sd = sample_sd(&d, interval.mean);
    let p = if sd == 0.0 {
        if interval.mean == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        let n = d.len();
        let t = interval.mean / (sd / (n as f64).sqrt());
        (2.0 * student(n).sf(t.abs())).min(1.0)
    };
    (interval, p)
}

fn sample_sd(v: &[f64], mean: f64) -> f64 {
    let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    let sd = (ss / (v.len() as f64 - 1.0)).sqrt();
    // Equal values can leave a rounding residue; treat a spread far below the values' own
    // precision as none, so identical pairs give exactly p = 1.
    if sd <= 1e-12 * mean.abs().max(f64::MIN_POSITIVE) {
        0.0
    } else {
        sd
    }
}

fn student(n: usize) -> StudentsT {
    StudentsT::new(0.0, 1.0, n as f64 - 1.0).expect("n >= 2 gives positive degrees of freedom")
}

fn t_quantile(n: usize, p: f64) -> f64 {
    student(n).inverse_cdf(p)
}

/// One line of `comparison.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct ComparisonRow {
    /// The sweep point's label (`load_scale=1.5,nodes_scale=0.5`); empty without a sweep.
    pub point: String,
    pub metric: String,
    pub policy: String,
    pub value: Interval,
    /// The paired difference to the baseline (the first policy).
    pub diff: Interval,
    pub p_value: f64,
}

/// The comparison of one point's runs: for each metric (in the order of the first run's
/// values) and each policy (in first-appearance order, the first being the baseline), the
/// statistics of the module's documentation. Runs pair by replication index.
pub fn compare_runs(samples: &[RunSample], point: &str) -> Vec<ComparisonRow> {
    let mut policies: Vec<&str> = Vec::new();
    for s in samples {
        if !policies.contains(&s.policy.as_str()) {
            policies.push(&s.policy);
        }
    }
    let Some(&baseline) = policies.first() else { return Vec::new() };
    let metrics: Vec<&str> = samples[0].values.iter().map(|(k, _)| k.as_str()).collect();
    // policy -> replication -> metric -> value
    let mut table: BTreeMap<&str, BTreeMap<u32, BTreeMap<&str, f64>>> = BTreeMap::new();
    for s in samples {
        let by_metric = table.entry(&s.policy).or_default().entry(s.replication).or_default();
        for (k, v) in &s.values {
            by_metric.insert(k, *v);
        }
    }
    let value = |policy: &str, rep: u32, metric: &str| -> f64 {
        table.get(policy).and_then(|r| r.get(&rep)).and_then(|m| m.get(metric)).copied().unwrap_or(f64::NAN)
    };
    let mut rows = Vec::with_capacity(metrics.len() * policies.len());
    for &metric in &metrics {
        for &policy in &policies {
            let reps: Vec<u32> = table[policy].keys().copied().collect();
            let xs: Vec<f64> = reps.iter().map(|&r| value(policy, r, metric)).collect();
            let pairs: Vec<(f64, f64)> = reps.iter().map(|&r| (value(policy, r, metric), value(baseline, r, metric))).collect();
            let (diff, p_value) = paired_diff(&pairs);
            rows.push(ComparisonRow {
                point: point.to_string(),
                metric: metric.to_string(),
                policy: policy.to_string(),
                value: mean_ci(&xs),
                diff,
                p_value,
            });
        }
    }
    rows
}

/// `comparison.csv`'s header, exactly.
pub const COMPARISON_HEADER: &str =
    "point,metric,policy,n,mean,ci_low,ci_high,n_pairs,diff_vs_baseline,diff_ci_low,diff_ci_high,p_value";

/// Writes `comparison.csv`: [`COMPARISON_HEADER`], then one line per row.
///
/// - `point`: the sweep point's label, empty when the scenario sweeps nothing; `metric`: see
///   [`FIXED_METRICS`]; `policy`: the policy's label (the first policy is the baseline);
/// - `n`: replications with a value; `mean`, `ci_low`, `ci_high`: the mean and its 95%
///   confidence interval;
/// - `n_pairs`: replications where both this policy and the baseline have a value;
///   `diff_vs_baseline`, `diff_ci_low`, `diff_ci_high`: the mean paired difference (this −
///   baseline) and its 95% confidence interval; `p_value`: the paired t-test's two-sided
///   p-value;
/// - numbers with 6 decimals, the p-value in scientific notation with 6 decimals
///   (`3.141593e-5`), so that small p-values keep their digits; a value that does not exist
///   (see the module's NaN rules) is `NaN`. Text is quoted when it holds a comma (sweep
///   labels do), a quote or a line break.
pub fn write_comparison_csv(mut w: impl Write, rows: &[ComparisonRow]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(160 * (rows.len() + 1));
    buf.extend_from_slice(COMPARISON_HEADER.as_bytes());
    buf.push(b'\n');
    for r in rows {
        push_text(&mut buf, &r.point);
        buf.push(b',');
        push_text(&mut buf, &r.metric);
        buf.push(b',');
        push_text(&mut buf, &r.policy);
        buf.push(b',');
        push_u64(&mut buf, u64::from(r.value.n));
        for x in [r.value.mean, r.value.low, r.value.high] {
            buf.push(b',');
            push_fixed(&mut buf, x, 6);
        }
        buf.push(b',');
        push_u64(&mut buf, u64::from(r.diff.n));
        for x in [r.diff.mean, r.diff.low, r.diff.high] {
            buf.push(b',');
            push_fixed(&mut buf, x, 6);
        }
        buf.push(b',');
        if r.p_value.is_nan() {
            buf.extend_from_slice(b"NaN");
        } else {
            let _ = write!(buf, "{:.6e}", r.p_value);
        }
        buf.push(b'\n');
    }
    w.write_all(&buf)?;
    w.flush()
}

/// An aligned table of the comparison for the terminal: per point (a heading when there is a
/// sweep), per metric, one line per policy with its mean and 95% CI, the difference to the
/// baseline with its CI, and the p-value. A value that does not exist shows as `-`; with one
/// replication a note says why the intervals are missing.
pub fn format_comparison_table(rows: &[ComparisonRow]) -> String {
    const HEADERS: [&str; 7] = ["metric", "policy", "n", "mean", "95% CI", "diff vs baseline [95% CI]", "p"];
    let mut out = String::new();
    let mut start = 0;
    while start < rows.len() {
        let point = &rows[start].point;
        let end = start + rows[start..].iter().take_while(|r| &r.point == point).count();
        let block = &rows[start..end];
        if !point.is_empty() {
            out.push_str(&format!("== {point} ==\n"));
        }
        let baseline = block.first().map(|r| r.policy.clone()).unwrap_or_default();
        let mut cells: Vec<[String; 7]> = Vec::new();
        let mut last_metric = "";
        for r in block {
            let metric = if r.metric == last_metric { String::new() } else { r.metric.clone() };
            last_metric = &r.metric;
            let diff = if r.policy == baseline {
                "(baseline)".to_string()
            } else {
                format!("{} {}", num(r.diff.mean), ci(r.diff.low, r.diff.high))
            };
            let p = if r.policy == baseline { String::new() } else { p_value(r.p_value) };
            cells.push([metric, r.policy.clone(), r.value.n.to_string(), num(r.value.mean), ci(r.value.low, r.value.high), diff, p]);
        }
        let mut widths = HEADERS.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String], out: &mut String| {
            let mut l = String::new();
            for (i, (c, &w)) in cells.iter().zip(&widths).enumerate() {
                if i > 0 {
                    l.push_str("  ");
                }
                let pad = w - c.chars().count();
                if i < 2 {
                    l.push_str(c);
                    l.extend(std::iter::repeat_n(' ', pad));
                } else {
                    l.extend(std::iter::repeat_n(' ', pad));
                    l.push_str(c);
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&HEADERS.map(String::from), &mut out);
        line(&widths.map(|w| "-".repeat(w)), &mut out);
        for row in &cells {
            line(row, &mut out);
        }
        if block.iter().all(|r| r.value.n < 2) {
            out.push_str(
                "note: one replication per policy: confidence intervals and p-values need at least 2 (shown as -); \
                 run more with --replications K\n",
            );
        }
        out.push_str(&format!(
            "baseline: {baseline}; diff = policy - baseline, paired by replication (common random numbers); p = two-sided paired t-test\n"
        ));
        start = end;
        if start < rows.len() {
            out.push('\n');
        }
    }
    out
}

/// A number for the table: 4 significant digits or so, `-` for NaN.
fn num(x: f64) -> String {
    if x.is_nan() {
        return "-".into();
    }
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{x:.3e}")
    } else if a >= 1000.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

fn ci(low: f64, high: f64) -> String {
    if low.is_nan() || high.is_nan() {
        "-".into()
    } else {
        format!("[{}, {}]", num(low), num(high))
    }
}

fn p_value(p: f64) -> String {
    if p.is_nan() {
        "-".into()
    } else if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::{JobId, JobSpec, ModelSet, TenantId};

    fn record(id: u64, tenant: u32, devices: u32, submit_s: f64, start_s: f64, end_s: f64) -> JobRecord {
        let mut spec = JobSpec::simple(id, devices);
        spec.tenant = TenantId(tenant);
        let mut r = JobRecord::new(&spec, Time::from_secs_f64(submit_s));
        r.ledger.first_start = Some(Time::from_secs_f64(start_s));
        r.ledger.end = Some(Time::from_secs_f64(end_s));
        r.ledger.run = Time::from_secs_f64(end_s - start_s);
        r.outcome = JobOutcome::Completed;
        r.device_micros = (devices as u128) * r.ledger.run.as_micros() as u128;
        r.ran_on = ModelSet::only(ModelId(1));
        assert_eq!(r.id, JobId(id));
        r
    }

    #[test]
    fn jain_is_one_for_equal_and_one_over_n_for_a_single_non_zero() {
        assert_eq!(jain_index(&[3.0, 3.0, 3.0, 3.0]), 1.0);
        assert!((jain_index(&[5.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-15);
        assert!((jain_index(&[1.0, 0.0]) - 0.5).abs() < 1e-15);
        assert!(jain_index(&[]).is_nan());
        assert!(jain_index(&[0.0, 0.0]).is_nan());
        // In between for unequal values: (1+3)^2 / (2 * 10) = 0.8.
        assert!((jain_index(&[1.0, 3.0]) - 0.8).abs() < 1e-15);
    }

    #[test]
    fn tenant_service_is_the_reciprocal_mean_bounded_slowdown() {
        // Tenant 0: two jobs of 100 s run, slowdowns 1 and 3: mean 2, service 0.5.
        // Tenant 1: one job that never waited: service 1.
        let rs = [record(1, 0, 1, 0.0, 0.0, 100.0), record(2, 0, 1, 0.0, 200.0, 300.0), record(3, 1, 1, 0.0, 0.0, 50.0)];
        assert_eq!(tenant_service(&rs), vec![0.5, 1.0]);
        // (1.5)^2 / (2 * 1.25) = 0.9
        assert!((jain_index(&tenant_service(&rs)) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn finish_time_fairness_by_hand() {
        // 4 devices, 2 tenants: a share is 2 devices.
        // Job 1: 1 device, ran 100 s at once: T_iso = 100, rho = 1.
        // Job 2: 4 devices, ran 100 s after waiting 200 s: T_iso = 100 * 4/2 = 200, JCT 300, rho 1.5.
        // Job 3: 2 devices, waited 100 s, ran 100 s: T_iso = 100, rho = 2.
        let rs = [record(1, 0, 1, 0.0, 0.0, 100.0), record(2, 1, 4, 0.0, 200.0, 300.0), record(3, 1, 2, 0.0, 100.0, 200.0)];
        let (mean, max, above) = finish_time_fairness(&rs, 4.0, 2);
        assert!((mean - 1.5).abs() < 1e-12, "{mean}");
        assert_eq!(max, 2.0);
        assert!((above - 2.0 / 3.0).abs() < 1e-12);
        let none: [JobRecord; 0] = [];
        assert!(finish_time_fairness(&none, 4.0, 2).0.is_nan());
    }

    #[test]
    fn device_hours_split_evenly_over_mixed_models() {
        let mut r = record(1, 0, 2, 0.0, 0.0, 3600.0);
        r.ran_on = ModelSet::only(ModelId(1)).with(ModelId(2));
        let h = device_hours_by_model([&r], &[ModelId(1), ModelId(2), ModelId(3)]);
        assert_eq!(h, vec![1.0, 1.0, 0.0]);
    }

    #[test]
    fn window_restricts_the_counted_jobs() {
        let rs: Vec<JobRecord> = (1..=10).map(|i| record(i, 0, 1, i as f64 * 10.0, i as f64 * 10.0, i as f64 * 10.0 + 5.0)).collect();
        let models = [(ModelId(1), "V100".to_string())];
        let get = |f: &JobFilter| compare_metrics(&rs, 4.0, f, &models).iter().find(|(k, _)| k == "jobs").unwrap().1;
        assert_eq!(get(&JobFilter::default()), 10.0);
        assert_eq!(get(&JobFilter { job_ids: Some((3, 6)), submit_window: None }), 4.0);
        let w = Some((Time::from_secs_f64(20.0), Time::from_secs_f64(50.0)));
        assert_eq!(get(&JobFilter { job_ids: None, submit_window: w }), 3.0);
        assert_eq!(get(&JobFilter { job_ids: Some((4, 10)), submit_window: w }), 1.0);
        let all = compare_metrics(&rs, 4.0, &JobFilter::default(), &models);
        let names: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(&names[..FIXED_METRICS.len()], FIXED_METRICS);
        assert_eq!(names[FIXED_METRICS.len()], "device_hours_per_job:V100");
        // Each job held 1 device for 5 s.
        assert!((all.last().unwrap().1 - 5.0 / 3600.0).abs() < 1e-12);
    }

    #[test]
    fn intervals_and_the_paired_test() {
        let i = mean_ci(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((i.n, i.mean), (4, 2.5));
        // s = 1.2910, t(0.975, 3) = 3.1824: half-width 2.0543.
        assert!((i.high - i.mean - 2.0543).abs() < 1e-3, "{i:?}");
        assert!(i.low < i.mean && i.mean < i.high);
        let one = mean_ci(&[7.0]);
        assert_eq!((one.n, one.mean), (1, 7.0));
        assert!(one.low.is_nan() && one.high.is_nan());
        let with_nan = mean_ci(&[1.0, f64::NAN, 3.0]);
        assert_eq!((with_nan.n, with_nan.mean), (2, 2.0));
        // Identical pairs: exactly 0, p = 1.
        let (d, p) = paired_diff(&[(1.5, 1.5), (2.0, 2.0), (9.0, 9.0)]);
        assert_eq!((d.mean, d.low, d.high, p), (0.0, 0.0, 0.0, 1.0));
        // A constant non-zero difference: p = 0.
        let (d, p) = paired_diff(&[(2.0, 1.0), (3.0, 2.0)]);
        assert_eq!((d.mean, p), (1.0, 0.0));
        // A textbook case: differences 1, 2, 3, 4, 5: mean 3, s = 1.5811, t = 4.2426, df 4,
        // two-sided p = 0.01324.
        let (d, p) = paired_diff(&[(1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (4.0, 0.0), (5.0, 0.0)]);
        assert_eq!(d.mean, 3.0);
        assert!((p - 0.01324).abs() < 1e-4, "{p}");
        let (_, p) = paired_diff(&[(1.0, 0.0)]);
        assert!(p.is_nan());
    }

    #[test]
    fn csv_and_table() {
        let s = |policy: &str, rep: u32, x: f64| RunSample { policy: policy.into(), replication: rep, values: vec![("avg_jct_s".into(), x)] };
        let samples = [s("fifo", 0, 10.0), s("fifo", 1, 12.0), s("sjf", 0, 5.0), s("sjf", 1, 8.0)];
        let rows = compare_runs(&samples, "load_scale=2,nodes_scale=1");
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].diff.mean, rows[0].p_value), (0.0, 1.0));
        assert_eq!(rows[1].diff.mean, -4.5);
        let mut buf = Vec::new();
        write_comparison_csv(&mut buf, &rows).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], COMPARISON_HEADER);
        assert!(lines[1].starts_with("\"load_scale=2,nodes_scale=1\",avg_jct_s,fifo,2,11.000000,"), "{}", lines[1]);
        assert!(lines[1].ends_with(",2,0.000000,0.000000,0.000000,1.000000e0"), "{}", lines[1]);
        let table = format_comparison_table(&rows);
        assert!(table.contains("== load_scale=2,nodes_scale=1 =="), "{table}");
        assert!(table.contains("(baseline)"), "{table}");
        let single = compare_runs(&[s("fifo", 0, 1.0), s("sjf", 0, 2.0)], "");
        assert!(format_comparison_table(&single).contains("note: one replication"));
    }
}
