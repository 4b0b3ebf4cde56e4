//! One row per run: the summary CSV a sweep writes, and the table a person reads.

use crate::fmt::{push_fixed, push_text, push_u64};
use crate::metrics::RunMetrics;
use std::io::{self, Write};

/// The summary CSV's header, exactly.
pub const SUMMARY_HEADER: &str = "policy,replication,seed,jobs,completed,rejected,avg_jct_s,p50_jct_s,p95_jct_s,p99_jct_s,\
avg_wait_s,p50_wait_s,p95_wait_s,p99_wait_s,avg_bounded_slowdown,makespan_s,utilization,preemptions,events,\
lost_work_s,checkpoint_overhead_s,failures,wall_s";

/// One run of a sweep: which policy, which replication with which seed, and what came out.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// The policy's label (registry name and parameters), as the scenario names it.
    pub policy: String,
    pub replication: u32,
    pub seed: u64,
    pub metrics: RunMetrics,
    /// Events the driver processed (simulator events, or executor inputs).
    pub events: u64,
    /// Device and node failures during the run.
    pub failures: u64,
    /// Wall-clock seconds the run took.
    pub wall_s: f64,
}

/// Writes the summary CSV: [`SUMMARY_HEADER`], then one line per row.
///
/// Formatting is fixed so that the same runs give the same bytes: times and the slowdown with
/// 3 decimals, utilization (a fraction) with 6, counts as integers, `wall_s` with 3. A NaN
/// metric (no completed job) is written as `NaN`. The policy label is quoted when it holds a
/// comma, a quote or a line break.
pub fn write_summary_csv(mut w: impl Write, rows: &[SummaryRow]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(256 * (rows.len() + 1));
    buf.extend_from_slice(SUMMARY_HEADER.as_bytes());
    buf.push(b'\n');
    for row in rows {
        let m = &row.metrics;
        push_text(&mut buf, &row.policy);
        for n in [u64::from(row.replication), row.seed, m.jobs, m.completed, m.rejected] {
            buf.push(b',');
            push_u64(&mut buf, n);
        }
        for x in [
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
        ] {
            buf.push(b',');
            push_fixed(&mut buf, x, 3);
        }
        buf.push(b',');
        push_fixed(&mut buf, m.utilization, 6);
        for n in [m.preemptions, row.events] {
            buf.push(b',');
            push_u64(&mut buf, n);
        }
        for x in [m.lost_work_s, m.checkpoint_overhead_s] {
            buf.push(b',');
            push_fixed(&mut buf, x, 3);
        }
        buf.push(b',');
        push_u64(&mut buf, row.failures);
        buf.push(b',');
        push_fixed(&mut buf, row.wall_s, 3);
        buf.push(b'\n');
    }
    w.write_all(&buf)?;
    w.flush()
}

/// Policy labels longer than this are cut (with `…`) in the terminal table.
const MAX_POLICY_WIDTH: usize = 28;

/// An aligned text table of the runs for the terminal, one line per row, at most about 120
/// characters wide: policy, replication, completed jobs, mean and p95 JCT, mean and p95 wait,
/// utilization (percent), preemptions, events and wall time. Durations are shown with a unit
/// that keeps them short (`42.50s`, `12.75m`, `3.20h`, `1.50d`); a NaN metric shows as `-`.
/// Use the CSV for exact figures.
pub fn format_summary_table(rows: &[SummaryRow]) -> String {
    const HEADERS: [&str; 11] = [
        "policy",
        "rep",
        "completed",
        "avg JCT",
        "p95 JCT",
        "avg wait",
        "p95 wait",
        "util",
        "preempt",
        "events",
        "wall",
    ];
    let cells: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            let m = &r.metrics;
            [
                shorten(&r.policy, MAX_POLICY_WIDTH),
                r.replication.to_string(),
                m.completed.to_string(),
                duration(m.avg_jct_s),
                duration(m.p95_jct_s),
                duration(m.avg_wait_s),
                duration(m.p95_wait_s),
                if m.utilization.is_nan() {
                    "-".into()
                } else {
                    format!("{:.1}%", m.utilization * 100.0)
                },
                m.preemptions.to_string(),
                r.events.to_string(),
                duration(r.wall_s),
            ]
        })
        .collect();

    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    let mut push_line = |cells: &[&str]| {
        let mut line = String::new();
        for (i, (cell, &width)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = width - cell.chars().count();
            // The policy is text, left-aligned; everything else is a number, right-aligned.
            if i == 0 {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            } else {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_line(&HEADERS);
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    push_line(&rule.iter().map(String::as_str).collect::<Vec<_>>());
    for row in &cells {
        push_line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// Seconds in the largest unit that keeps at least one whole unit, with 2 decimals.
fn duration(s: f64) -> String {
    if s.is_nan() {
        return "-".into();
    }
    let abs = s.abs();
    if abs < 60.0 {
        format!("{s:.2}s")
    } else if abs < 3600.0 {
        format!("{:.2}m", s / 60.0)
    } else if abs < 86_400.0 {
        format!("{:.2}h", s / 3600.0)
    } else {
        format!("{:.2}d", s / 86_400.0)
    }
}

fn shorten(s: &str, max_chars: usize) -> String {
    // One line per row: a line break in a label would break the table.
    let s = s.replace(['\n', '\r'], " ");
    if s.chars().count() <= max_chars {
        return s;
    }
    let mut cut: String = s.chars().take(max_chars - 1).collect();
    cut.push('…');
    cut
}
