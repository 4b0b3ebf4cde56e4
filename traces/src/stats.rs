//! `tessera trace stats`: what a capacity planner asks of a trace first: how many jobs over
//! what span, when they arrive, how large and how long they are, and who asks for what.

use crate::native::TraceJob;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Duration buckets, in seconds: a job falls in the first whose bound exceeds its duration.
const DURATION_BUCKETS: [(f64, &str); 6] =
    [(60.0, "< 1 min"), (600.0, "1-10 min"), (3600.0, "10 min-1 h"), (36_000.0, "1-10 h"), (360_000.0, "10-100 h"), (f64::INFINITY, ">= 100 h")];

#[derive(Clone, Debug, PartialEq)]
pub struct TraceStats {
    pub jobs: u64,
    pub first_submit_s: f64,
    pub last_submit_s: f64,
    /// Jobs submitted in each hour of the day, counted from `day_offset_s` (the time of day of
    /// the trace's second 0, when the trace says; else hours since its start, modulo 24).
    pub arrivals_by_hour: [u64; 24],
    pub hour_of_day_known: bool,
    /// Jobs per requested device count (fractional shares grouped as "share").
    pub by_devices: BTreeMap<String, u64>,
    pub cpu_only_jobs: u64,
    pub duration_buckets: Vec<(&'static str, u64)>,
    pub duration_mean_s: f64,
    /// Duration percentiles (nearest rank): p10, p50, p90, p99.
    pub duration_percentiles_s: [f64; 4],
    /// Device-hours per tenant (devices × duration), largest first.
    pub tenant_device_hours: Vec<(String, f64)>,
    pub total_device_hours: f64,
    /// Jobs per recorded outcome ("unknown" where the trace does not say).
    pub by_outcome: BTreeMap<&'static str, u64>,
}

fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Computes the statistics; `day_offset_s` is the time of day (seconds after midnight) of the
/// trace's second 0, where the loader knows it.
pub fn trace_stats(jobs: &[TraceJob], day_offset_s: Option<f64>) -> TraceStats {
    let mut arrivals_by_hour = [0u64; 24];
    let mut by_devices: BTreeMap<String, u64> = BTreeMap::new();
    let mut tenant_hours: BTreeMap<&str, f64> = BTreeMap::new();
    let mut by_outcome: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut durations: Vec<f64> = Vec::with_capacity(jobs.len());
    let mut buckets = vec![0u64; DURATION_BUCKETS.len()];
    let mut cpu_only_jobs = 0;
    let (mut first, mut last) = (f64::INFINITY, f64::NEG_INFINITY);
    for job in jobs {
        first = first.min(job.submit_s);
        last = last.max(job.submit_s);
        let hour = ((job.submit_s + day_offset_s.unwrap_or(0.0)) / 3600.0).floor() as u64 % 24;
        arrivals_by_hour[hour as usize] += 1;
        let devices_key = if job.devices == 0.0 {
            cpu_only_jobs += 1;
            "0 (CPU only)".to_string()
        } else if job.devices < 1.0 {
            "share < 1".to_string()
        } else {
            format!("{}", job.devices as u64)
        };
        *by_devices.entry(devices_key).or_default() += 1;
        *tenant_hours.entry(&job.tenant).or_default() += job.devices * job.duration_s / 3600.0;
        *by_outcome.entry(job.outcome.map_or("unknown", |o| o.as_str())).or_default() += 1;
        durations.push(job.duration_s);
        let bucket = DURATION_BUCKETS.iter().position(|&(bound, _)| job.duration_s < bound).unwrap_or(DURATION_BUCKETS.len() - 1);
        buckets[bucket] += 1;
    }
    durations.sort_by(f64::total_cmp);
    let mut tenant_device_hours: Vec<(String, f64)> = tenant_hours.into_iter().map(|(t, h)| (t.to_string(), h)).collect();
    tenant_device_hours.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total_device_hours = tenant_device_hours.iter().map(|(_, h)| h).sum();
    // Device counts in numeric order, not string order.
    let mut ordered: Vec<(String, u64)> = by_devices.into_iter().collect();
    ordered.sort_by_key(|(k, _)| k.split(' ').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(u64::MAX));
    TraceStats {
        jobs: jobs.len() as u64,
        first_submit_s: if jobs.is_empty() { 0.0 } else { first },
        last_submit_s: if jobs.is_empty() { 0.0 } else { last },
        arrivals_by_hour,
        hour_of_day_known: day_offset_s.is_some(),
        by_devices: ordered.into_iter().collect(),
        cpu_only_jobs,
        duration_buckets: DURATION_BUCKETS.iter().map(|&(_, label)| label).zip(buckets).collect(),
        duration_mean_s: if durations.is_empty() { f64::NAN } else { durations.iter().sum::<f64>() / durations.len() as f64 },
        duration_percentiles_s: [0.1, 0.5, 0.9, 0.99].map(|q| nearest_rank(&durations, q)),
        tenant_device_hours,
        total_device_hours,
        by_outcome,
    }
}

fn human_s(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

impl TraceStats {
    /// The report `tessera trace stats` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let span = self.last_submit_s - self.first_submit_s;
        let _ = writeln!(out, "jobs                {}", self.jobs);
        let _ = writeln!(out, "submissions span    {} ({:.0} s)", human_s(span), span);
        let per_hour = if span > 0.0 { self.jobs as f64 / (span / 3600.0) } else { f64::NAN };
        let _ = writeln!(out, "arrival rate        {per_hour:.2} jobs/hour on average");
        let _ = writeln!(out, "device demand       {:.1} device-hours in all", self.total_device_hours);
        let _ = writeln!(out);
        let label = if self.hour_of_day_known { "arrivals by hour of day" } else { "arrivals by hour since the trace's start, modulo 24 (time of day unknown)" };
        let _ = writeln!(out, "{label}:");
        let max = *self.arrivals_by_hour.iter().max().unwrap_or(&1).max(&1);
        for (hour, &n) in self.arrivals_by_hour.iter().enumerate() {
            let bar = "#".repeat(((n as f64 / max as f64) * 40.0).round() as usize);
            let _ = writeln!(out, "  {hour:02}h {n:>8}  {bar}");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "devices per job:");
        for (devices, n) in &self.by_devices {
            let _ = writeln!(out, "  {devices:>12} {n:>8}  {:5.1}%", 100.0 * *n as f64 / self.jobs.max(1) as f64);
        }
        let _ = writeln!(out);
        let [p10, p50, p90, p99] = self.duration_percentiles_s;
        let _ = writeln!(
            out,
            "duration: mean {}, p10 {}, p50 {}, p90 {}, p99 {}",
            human_s(self.duration_mean_s),
            human_s(p10),
            human_s(p50),
            human_s(p90),
            human_s(p99)
        );
        for (label, n) in &self.duration_buckets {
            let _ = writeln!(out, "  {label:>12} {n:>8}  {:5.1}%", 100.0 * *n as f64 / self.jobs.max(1) as f64);
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "demand per tenant (device-hours, largest first):");
        for (tenant, hours) in &self.tenant_device_hours {
            let share = 100.0 * hours / self.total_device_hours.max(f64::MIN_POSITIVE);
            let _ = writeln!(out, "  {tenant:>20} {hours:>14.1}  {share:5.1}%");
        }
        if self.by_outcome.keys().any(|&k| k != "unknown") {
            let _ = writeln!(out);
            let _ = writeln!(out, "recorded outcomes:");
            for (outcome, n) in &self.by_outcome {
                let _ = writeln!(out, "  {outcome:>12} {n:>8}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_hour_device_count_duration_and_tenant() {
        let mut jobs = vec![
            TraceJob::new(1, 0.0, "a", 1.0, 30.0),       // hour 0 (or 6 with a 6 h offset)
            TraceJob::new(2, 3_600.0, "a", 8.0, 7_200.0), // hour 1
            TraceJob::new(3, 3_700.0, "b", 0.5, 600.0),  // hour 1, a share
            TraceJob::new(4, 90_000.0, "b", 0.0, 100.0), // hour 25 = 1 of the next day, CPU only
        ];
        jobs[1].outcome = Some(tessera_core::JobOutcome::Killed);
        let s = trace_stats(&jobs, None);
        assert_eq!(s.jobs, 4);
        assert_eq!((s.first_submit_s, s.last_submit_s), (0.0, 90_000.0));
        assert_eq!(s.arrivals_by_hour[0], 1);
        assert_eq!(s.arrivals_by_hour[1], 3);
        assert_eq!(s.cpu_only_jobs, 1);
        let devices: Vec<(&str, u64)> = s.by_devices.iter().map(|(k, &v)| (k.as_str(), v)).collect();
        assert_eq!(devices, vec![("0 (CPU only)", 1), ("1", 1), ("8", 1), ("share < 1", 1)]);
        // a: 1 × 30 s + 8 × 7200 s = 57,630 device-s = 16.0083 h; b: 0.5 × 600 s = 300 device-s.
        assert_eq!(s.tenant_device_hours[0].0, "a");
        assert!((s.tenant_device_hours[0].1 - 57_630.0 / 3600.0).abs() < 1e-9);
        assert!((s.tenant_device_hours[1].1 - 300.0 / 3600.0).abs() < 1e-9);
        // Durations 30, 100, 600, 7200: buckets < 1 min: 1; 1-10 min: 1; 10 min-1 h: 1; 1-10 h: 1.
        assert_eq!(s.duration_buckets.iter().map(|&(_, n)| n).collect::<Vec<_>>(), vec![1, 1, 1, 1, 0, 0]);
        assert_eq!(s.duration_percentiles_s[1], 100.0, "p50 by nearest rank is the 2nd of 4");
        assert_eq!(s.by_outcome.get("killed"), Some(&1));
        let shifted = trace_stats(&jobs, Some(6.0 * 3600.0));
        assert_eq!(shifted.arrivals_by_hour[6], 1);
        assert!(s.render().contains("demand per tenant"));
    }
}

/// `tessera trace nodes`: what a node list holds: nodes, CPU-only nodes, GPUs by model.
pub fn render_nodes(nodes: &[crate::openb::TraceNode]) -> String {
    let mut by_model: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let (mut gpus, mut cpu_only, mut cpu_milli, mut mem_mib) = (0u64, 0u64, 0u64, 0u64);
    for node in nodes {
        gpus += node.gpus as u64;
        cpu_milli += node.cpu_milli as u64;
        mem_mib += node.mem_mib;
        match &node.model {
            Some(model) if node.gpus > 0 => {
                let entry = by_model.entry(model).or_default();
                entry.0 += 1;
                entry.1 += node.gpus as u64;
            }
            _ => cpu_only += 1,
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "nodes               {}", nodes.len());
    let _ = writeln!(out, "CPU-only nodes      {cpu_only}");
    let _ = writeln!(out, "GPUs                {gpus}");
    let _ = writeln!(out, "CPU cores           {:.0}", cpu_milli as f64 / 1000.0);
    let _ = writeln!(out, "memory              {:.0} GiB", mem_mib as f64 / 1024.0);
    let _ = writeln!(out, "\nGPU nodes by model:   nodes     GPUs");
    for (model, (n, g)) in &by_model {
        let _ = writeln!(out, "  {model:>16} {n:>8} {g:>8}");
    }
    out
}
