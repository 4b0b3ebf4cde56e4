//! Time series of one run (`[outputs] timeseries_s`): the queue, busy devices per model and
//! each tenant's running jobs and devices, sampled at fixed boundaries of simulated time.
//!
//! The engine keeps running totals as jobs start and stop, and copies them out whenever an
//! event passes a boundary, so recording costs a few additions per launch and one comparison
//! per event; rows go into flat vectors that grow by doubling, never an allocation per event.

use std::io::Write;
use tessera_core::{Catalogue, ModelId, Time};

/// The samples of one run, column by column. Sample `i` holds the state after every event at
/// or before `t[i]`; per-model and per-tenant columns are flattened sample-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeSeries {
    /// Device model names, one column each: the models the fleet has at the start or gains later.
    pub models: Vec<String>,
    /// Tenant names, indexed by `TenantId`.
    pub tenants: Vec<String>,
    pub t: Vec<Time>,
    /// Jobs the scheduler holds in its queue (waiting to start, requeued ones included).
    pub queued: Vec<u32>,
    pub running_jobs: Vec<u32>,
    /// Busy devices per model, in thousandths (fractional shares count as their share).
    pub busy_milli: Vec<u64>,
    pub tenant_jobs: Vec<u32>,
    pub tenant_milli: Vec<u64>,
}

impl TimeSeries {
    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// Busy devices of model column `m` at sample `i`.
    pub fn busy(&self, i: usize, m: usize) -> f64 {
        self.busy_milli[i * self.models.len() + m] as f64 / 1000.0
    }

    /// `timeseries.csv`: `t_s,queued,running_jobs,busy_devices`, then `busy_devices.<model>`
    /// per model, `tenant_jobs.<tenant>` and `tenant_devices.<tenant>` per tenant. Wide, one row
    /// per sample: a run has a fixed set of models and tenants, and a row per sample keeps a
    /// year of samples small.
    pub fn write_csv(&self, mut w: impl Write) -> std::io::Result<()> {
        let mut header = String::from("t_s,queued,running_jobs,busy_devices");
        for m in &self.models {
            header.push_str(&format!(",busy_devices.{}", csv_name(m)));
        }
        for t in &self.tenants {
            header.push_str(&format!(",tenant_jobs.{}", csv_name(t)));
        }
        for t in &self.tenants {
            header.push_str(&format!(",tenant_devices.{}", csv_name(t)));
        }
        writeln!(w, "{header}")?;
        let (nm, nt) = (self.models.len(), self.tenants.len());
        let mut line = String::new();
        for i in 0..self.len() {
            use std::fmt::Write as _;
            line.clear();
            let busy = &self.busy_milli[i * nm..(i + 1) * nm];
            let _ = write!(line, "{:.3},{},{},{}", self.t[i].as_secs_f64(), self.queued[i], self.running_jobs[i], milli(busy.iter().sum()));
            for &b in busy {
                let _ = write!(line, ",{}", milli(b));
            }
            for &j in &self.tenant_jobs[i * nt..(i + 1) * nt] {
                let _ = write!(line, ",{j}");
            }
            for &d in &self.tenant_milli[i * nt..(i + 1) * nt] {
                let _ = write!(line, ",{}", milli(d));
            }
            writeln!(w, "{line}")?;
        }
        Ok(())
    }
}

/// Thousandths of a device as a decimal, without trailing zeros (`3`, `2.25`).
fn milli(v: u64) -> String {
    if v % 1000 == 0 {
        (v / 1000).to_string()
    } else {
        format!("{}.{:03}", v / 1000, v % 1000).trim_end_matches('0').to_string()
    }
}

/// A name as a CSV header field: commas and quotes would split or open a field.
fn csv_name(name: &str) -> String {
    name.replace([',', '"', '\n'], "_")
}

/// What the engine updates as jobs start and stop, and samples at boundaries.
pub(crate) struct Recorder {
    step: Time,
    next: Time,
    /// Column of each catalogue model, `u32::MAX` for a model the fleet never has.
    column: Vec<u32>,
    busy: Vec<u64>,
    running: u32,
    tenant_jobs: Vec<u32>,
    tenant_milli: Vec<u64>,
    out: TimeSeries,
}

impl Recorder {
    pub(crate) fn new(step: Time, catalogue: &Catalogue, fleet_models: impl IntoIterator<Item = ModelId>, tenants: &[String]) -> Recorder {
        let mut present: Vec<ModelId> = fleet_models.into_iter().collect();
        present.sort_unstable();
        present.dedup();
        let mut column = vec![u32::MAX; catalogue.len()];
        for (c, m) in present.iter().enumerate() {
            column[m.index()] = c as u32;
        }
        Recorder {
            step,
            next: Time::ZERO,
            column,
            busy: vec![0; present.len()],
            running: 0,
            tenant_jobs: vec![0; tenants.len()],
            tenant_milli: vec![0; tenants.len()],
            out: TimeSeries {
                models: present.iter().map(|&m| catalogue.name(m).to_string()).collect(),
                tenants: tenants.to_vec(),
                ..TimeSeries::default()
            },
        }
    }

    /// Samples every boundary before `now`: the state they see is the one after the last
    /// event before them, which is the current state while no event at `now` has run.
    #[inline]
    pub(crate) fn advance(&mut self, now: Time, queued: usize) {
        if now > self.next {
            self.sample_through(now, queued, false);
        }
    }

    /// Samples the boundaries up to and including `end`, after the run's last event and
    /// before jobs still running at a horizon are booked out.
    pub(crate) fn close(&mut self, end: Time, queued: usize) {
        self.sample_through(end, queued, true);
    }

    /// The samples, once the engine has stopped every run.
    pub(crate) fn finish(self) -> TimeSeries {
        debug_assert!(
            self.running == 0 && self.busy.iter().all(|&b| b == 0) && self.tenant_milli.iter().all(|&d| d == 0),
            "the engine stopped every run at the end, so every start must have been undone"
        );
        self.out
    }

    #[cold]
    fn sample_through(&mut self, now: Time, queued: usize, inclusive: bool) {
        while self.next < now || (inclusive && self.next == now) {
            let o = &mut self.out;
            o.t.push(self.next);
            o.queued.push(queued as u32);
            o.running_jobs.push(self.running);
            o.busy_milli.extend_from_slice(&self.busy);
            o.tenant_jobs.extend_from_slice(&self.tenant_jobs);
            o.tenant_milli.extend_from_slice(&self.tenant_milli);
            self.next = self.next + self.step;
        }
    }

    /// A job started (`sign` 1) or stopped (`sign` -1) a run on these (model, thousandths) shares.
    pub(crate) fn job(&mut self, tenant: usize, shares: impl Iterator<Item = (ModelId, u16)>, start: bool) {
        let mut total = 0u64;
        for (model, milli) in shares {
            let c = self.column[model.index()];
            debug_assert!(c != u32::MAX, "a model outside the fleet's");
            if let Some(b) = self.busy.get_mut(c as usize) {
                *b = if start { *b + u64::from(milli) } else { *b - u64::from(milli) };
            }
            total += u64::from(milli);
        }
        if start {
            self.running += 1;
            self.tenant_jobs[tenant] += 1;
            self.tenant_milli[tenant] += total;
        } else {
            self.running -= 1;
            self.tenant_jobs[tenant] -= 1;
            self.tenant_milli[tenant] -= total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli_writes_the_shortest_exact_decimal() {
        assert_eq!(milli(0), "0");
        assert_eq!(milli(3000), "3");
        assert_eq!(milli(2250), "2.25");
        assert_eq!(milli(1), "0.001");
    }

    #[test]
    fn boundaries_see_the_state_after_every_event_at_or_before_them() {
        let cat = Catalogue::built_in();
        let v100 = cat.lookup("V100-32GB").unwrap();
        let mut r = Recorder::new(Time::from_secs(10), &cat, [v100], &["a".to_string()]);
        // An event at 0 starts a job: sample 0 must see it.
        r.advance(Time::ZERO, 0);
        r.job(0, [(v100, 1000)].into_iter(), true);
        // The next event at 25 s: samples at 0, 10 and 20 s are taken before it runs.
        r.advance(Time::from_secs(25), 3);
        r.job(0, [(v100, 1000)].into_iter(), false);
        r.close(Time::from_secs(30), 0);
        let ts = r.finish();
        assert_eq!(ts.t, vec![Time::ZERO, Time::from_secs(10), Time::from_secs(20), Time::from_secs(30)]);
        assert_eq!(ts.running_jobs, vec![1, 1, 1, 0]);
        assert_eq!(ts.busy_milli, vec![1000, 1000, 1000, 0]);
        assert_eq!(ts.queued, vec![3, 3, 3, 0]);
        let mut csv = Vec::new();
        ts.write_csv(&mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().next(), Some("t_s,queued,running_jobs,busy_devices,busy_devices.V100-32GB,tenant_jobs.a,tenant_devices.a"));
        assert_eq!(csv.lines().nth(2), Some("10.000,3,1,1,1,1,1"));
    }
}
