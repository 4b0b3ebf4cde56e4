//! One row per job: the per-job CSV a run writes next to its summary.

use crate::fmt::{push_micros_as_secs, push_milli, push_text, push_u64};
use std::fmt::Write as _;
use std::io::{self, Write};
use tessera_core::{Catalogue, JobRecord};

/// The per-job CSV's header, exactly.
pub const JOBS_HEADER: &str =
    "job_id,tenant,devices,submit_s,start_s,end_s,wait_s,jct_s,preemptions,models,outcome,run_s,lost_work_s,restarts,slowdown";

/// Flush the row buffer to the writer once it holds this many bytes.
const FLUSH_BYTES: usize = 1 << 16;

/// Writes one line per record after [`JOBS_HEADER`]:
///
/// - `tenant`: `tenants[record.tenant.index()]` (or `tenant-N` when the list has no such
///   entry), quoted when it holds a comma, quote or line break;
/// - `devices`: the device count, or for a fractional request the share as a decimal (`0.5`);
/// - `submit_s`, `start_s` (first start), `end_s`, `wait_s`, `jct_s`, `run_s`: seconds with 6
///   decimals (exact microseconds); `start_s` is empty for a job that never started, and
///   `end_s`, `wait_s` and `jct_s` are empty for one that never ended. `wait_s` = `jct_s` −
///   `run_s` (see [`crate::RunMetrics`]);
/// - `models`: the distinct device models the job last ran on, joined with `+`
///   (`V100-32GB+A100-80GB`), empty for a job that never ran (a model missing from the
///   catalogue shows as `model-N`);
/// - `outcome`: [`tessera_core::JobOutcome::as_str`];
/// - `lost_work_s`: work lost to failures and unsaved preemptions, as reference-device seconds;
///   `restarts`: runs ended by a failure; `slowdown`: running time over the ideal running time
///   at the job's nominal speed (6 decimals; empty for a job that never made progress).
///
/// Rows are formatted by hand into one reused buffer (no allocation per row), so a million
/// rows take a fraction of a second.
pub fn write_jobs_csv(
    mut w: impl Write,
    records: &[JobRecord],
    tenants: &[String],
    catalogue: &Catalogue,
) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_BYTES + 1024);
    let mut scratch = String::new();
    buf.extend_from_slice(JOBS_HEADER.as_bytes());
    buf.push(b'\n');
    for r in records {
        push_u64(&mut buf, r.id.0);
        buf.push(b',');
        match tenants.get(r.tenant.index()) {
            Some(name) => push_text(&mut buf, name),
            None => {
                scratch.clear();
                let _ = write!(scratch, "{}", r.tenant);
                push_text(&mut buf, &scratch);
            }
        }
        buf.push(b',');
        if r.devices.is_fractional() {
            push_milli(&mut buf, u64::from(r.devices.count) * u64::from(r.devices.share_milli));
        } else {
            push_u64(&mut buf, u64::from(r.devices.count));
        }
        buf.push(b',');
        push_micros_as_secs(&mut buf, r.ledger.submit.as_micros());
        buf.push(b',');
        if let Some(start) = r.ledger.first_start {
            push_micros_as_secs(&mut buf, start.as_micros());
        }
        buf.push(b',');
        if let (Some(end), Some(wait), Some(jct)) = (r.ledger.end, r.wait(), r.jct()) {
            push_micros_as_secs(&mut buf, end.as_micros());
            buf.push(b',');
            push_micros_as_secs(&mut buf, wait.as_micros());
            buf.push(b',');
            push_micros_as_secs(&mut buf, jct.as_micros());
        } else {
            buf.extend_from_slice(b",,");
        }
        buf.push(b',');
        push_u64(&mut buf, u64::from(r.ledger.preemptions));
        buf.push(b',');
        if r.ledger.first_start.is_some() {
            scratch.clear();
            for (i, model) in r.ran_on.iter().enumerate() {
                if i > 0 {
                    scratch.push('+');
                }
                if model.index() < catalogue.len() {
                    scratch.push_str(catalogue.name(model));
                } else {
                    let _ = write!(scratch, "{model}");
                }
            }
            push_text(&mut buf, &scratch);
        }
        buf.push(b',');
        buf.extend_from_slice(r.outcome.as_str().as_bytes());
        buf.push(b',');
        push_micros_as_secs(&mut buf, r.ledger.run.as_micros());
        buf.push(b',');
        push_micros_as_secs(&mut buf, r.lost_work.as_micros());
        buf.push(b',');
        push_u64(&mut buf, u64::from(r.ledger.restarts));
        buf.push(b',');
        let slowdown = r.slowdown();
        if slowdown.is_finite() {
            crate::fmt::push_fixed(&mut buf, slowdown, 6);
        }
        buf.push(b'\n');
        if buf.len() >= FLUSH_BYTES {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.flush()
}
