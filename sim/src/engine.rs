//! One simulated run: a workload, a cluster, a policy, a seed.
//!
//! The engine owns the world: each job's remaining work, its rate on the devices it holds
//! (the slowest device of a gang sets the pace, as in synchronous data-parallel training),
//! and the clock. The scheduler owns every decision. Work is measured in reference
//! microseconds: a microsecond of running on a device of relative speed 1.0.

use crate::speed::SpeedMatrix;
use crate::workload::Workload;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasherDefault;
use tessera_core::scheduler::IdHasher;
use tessera_core::{
    ClusterState, Decision, Event, JobId, JobRecord, ModelSet, Notice, Outcome, Policy, PreemptReason, RecordOutcome,
    Scheduler, Time,
};

/// Where decisions and notices go as they happen (the decision log). The sink takes them
/// by value once the engine has acted on them.
pub trait DecisionSink {
    fn decision(&mut self, now: Time, decision: Decision) -> std::io::Result<()>;
    fn notice(&mut self, now: Time, notice: Notice) -> std::io::Result<()>;
}

/// Drops everything: for benchmarks of the engine alone and for tests that read records only.
pub struct NullSink;

impl DecisionSink for NullSink {
    fn decision(&mut self, _: Time, _: Decision) -> std::io::Result<()> {
        Ok(())
    }
    fn notice(&mut self, _: Time, _: Notice) -> std::io::Result<()> {
        Ok(())
    }
}

enum LogItem {
    Decision(Time, Decision),
    Notice(Time, Notice),
}

const LOG_BATCH: usize = 2048;

/// Writes one JSON object per line, `{"t_s": .., "decision": "launch", ..}` or
/// `{"t_s": .., "notice": "waiting", ..}`, on a thread of its own: encoding the log costs about
/// as much as the simulation, and the two overlap on a second core. Items travel in batches
/// over a bounded channel, so memory stays bounded and the order is the engine's.
pub struct JsonlSink<W: std::io::Write + Send + 'static> {
    batch: Vec<LogItem>,
    sender: Option<std::sync::mpsc::SyncSender<Vec<LogItem>>>,
    writer: Option<std::thread::JoinHandle<std::io::Result<W>>>,
}

impl<W: std::io::Write + Send + 'static> JsonlSink<W> {
    pub fn new(out: W) -> Self {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<LogItem>>(16);
        let writer = std::thread::spawn(move || {
            let mut out = out;
            let mut scratch = Vec::with_capacity(512);
            for batch in receiver {
                for item in batch {
                    match item {
                        LogItem::Decision(now, d) => write_line(&mut out, &mut scratch, now, &d)?,
                        LogItem::Notice(now, n) => write_line(&mut out, &mut scratch, now, &n)?,
                    }
                }
            }
            Ok(out)
        });
        JsonlSink { batch: Vec::with_capacity(LOG_BATCH), sender: Some(sender), writer: Some(writer) }
    }

    fn push(&mut self, item: LogItem) -> std::io::Result<()> {
        self.batch.push(item);
        if self.batch.len() >= LOG_BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> std::io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(LOG_BATCH));
        let sent = self.sender.as_ref().is_some_and(|s| s.send(batch).is_ok());
        if sent {
            Ok(())
        } else {
            // The writer stopped: its own error says why.
            Err(self.join().err().unwrap_or_else(|| std::io::Error::other("decision log writer stopped")))
        }
    }

    fn join(&mut self) -> std::io::Result<W> {
        self.sender = None;
        match self.writer.take() {
            Some(handle) => handle.join().unwrap_or_else(|_| Err(std::io::Error::other("decision log writer panicked"))),
            None => Err(std::io::Error::other("decision log already finished")),
        }
    }

    /// Writes what is left and returns the writer (unflushed).
    pub fn finish(mut self) -> std::io::Result<W> {
        if !self.batch.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

/// Writes `{"t_s":<now>,` followed by the body's own fields. Splicing the body's JSON object,
/// rather than `#[serde(flatten)]`, avoids serde's buffering of flattened maps.
fn write_line<T: Serialize>(out: &mut impl std::io::Write, scratch: &mut Vec<u8>, now: Time, body: &T) -> std::io::Result<()> {
    scratch.clear();
    serde_json::to_writer(&mut *scratch, body)?;
    debug_assert_eq!(scratch.first(), Some(&b'{'));
    out.write_all(b"{\"t_s\":")?;
    serde_json::to_writer(&mut *out, &now.as_secs_f64())?;
    out.write_all(b",")?;
    out.write_all(&scratch[1..])?;
    out.write_all(b"\n")
}

impl<W: std::io::Write + Send + 'static> DecisionSink for JsonlSink<W> {
    fn decision(&mut self, now: Time, decision: Decision) -> std::io::Result<()> {
        self.push(LogItem::Decision(now, decision))
    }
    fn notice(&mut self, now: Time, notice: Notice) -> std::io::Result<()> {
        self.push(LogItem::Notice(now, notice))
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// One record per job submitted before the run stopped, in submission order.
    pub records: Vec<JobRecord>,
    /// Inputs the scheduler handled (events and timeouts).
    pub events: u64,
    /// Devices in the cluster, for utilization.
    pub total_devices: f64,
    /// Simulated time when the run stopped.
    pub end: Time,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SimEvent {
    Arrival { idx: u32 },
    /// The job's current run reaches the end of its work; stale if `epoch` moved on.
    Finish { idx: u32, epoch: u32 },
    /// A preempted job's grace period is over; stale if `epoch` moved on.
    EvictionDue { idx: u32, epoch: u32 },
    SchedulerTimer,
}

#[derive(Clone, Copy, Debug, Default)]
struct WorldJob {
    /// Reference microseconds of work still to do.
    remaining_work: f64,
    /// Reference microseconds per microsecond on the current allocation.
    rate: f64,
    run_started: Time,
    /// Sum of the shares held, in devices.
    devices_held: f64,
    /// Bumped at every launch and every stop, so stale heap entries are recognised.
    epoch: u32,
    running: bool,
}

/// Options of one run beyond the workload, cluster and policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunLimits {
    /// Stop at this simulated time; jobs not ended by then are `unfinished`.
    pub horizon: Option<Time>,
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

struct Engine<'a, S: DecisionSink> {
    workload: &'a Workload,
    speed: &'a SpeedMatrix,
    scheduler: Scheduler,
    sink: &'a mut S,
    heap: BinaryHeap<Reverse<(Time, u64, SimEvent)>>,
    next_seq: u64,
    index_of: IdMap<JobId, u32>,
    world: Vec<WorldJob>,
    records: Vec<JobRecord>,
    events: u64,
    armed_timer: Option<Time>,
    decisions: Vec<Decision>,
}

/// Runs one simulation to the end (every job ended, or the horizon).
pub fn run<S: DecisionSink>(
    workload: &Workload,
    cluster: ClusterState,
    policy: Policy,
    speed: &SpeedMatrix,
    limits: RunLimits,
    sink: &mut S,
) -> std::io::Result<RunOutput> {
    let total_devices = cluster.devices().len() as f64;
    let mut engine = Engine {
        workload,
        speed,
        scheduler: Scheduler::new(policy, cluster),
        sink,
        heap: BinaryHeap::new(),
        next_seq: 0,
        index_of: IdMap::with_capacity_and_hasher(workload.jobs.len(), Default::default()),
        world: Vec::with_capacity(workload.jobs.len()),
        records: Vec::with_capacity(workload.jobs.len()),
        events: 0,
        armed_timer: None,
        decisions: Vec::new(),
    };
    if !workload.jobs.is_empty() {
        engine.push(workload.jobs[0].submit, SimEvent::Arrival { idx: 0 });
    }
    let mut now = Time::ZERO;
    while let Some(Reverse((t, _, event))) = engine.heap.pop() {
        if limits.horizon.is_some_and(|h| t > h) {
            now = limits.horizon.unwrap_or(t);
            break;
        }
        now = t;
        engine.dispatch(now, event)?;
    }
    engine.finish_records(now);
    Ok(RunOutput { records: engine.records, events: engine.events, total_devices, end: now })
}

impl<S: DecisionSink> Engine<'_, S> {
    fn push(&mut self, at: Time, event: SimEvent) {
        self.heap.push(Reverse((at, self.next_seq, event)));
        self.next_seq += 1;
    }

    fn dispatch(&mut self, now: Time, event: SimEvent) -> std::io::Result<()> {
        match event {
            SimEvent::Arrival { idx } => {
                let job = &self.workload.jobs[idx as usize];
                self.index_of.insert(job.spec.id, idx);
                self.records.push(JobRecord::new(&job.spec, job.submit));
                self.world.push(WorldJob { remaining_work: job.work.as_micros() as f64, ..WorldJob::default() });
                if let Some(next) = self.workload.jobs.get(idx as usize + 1) {
                    self.push(next.submit, SimEvent::Arrival { idx: idx + 1 });
                }
                self.feed(now, Event::JobSubmitted { spec: job.spec.clone() })
            }
            SimEvent::Finish { idx, epoch } => {
                let w = &self.world[idx as usize];
                if w.epoch != epoch || !w.running {
                    return Ok(());
                }
                self.stop_run(now, idx);
                let record = &mut self.records[idx as usize];
                record.end = Some(now);
                record.outcome = RecordOutcome::Completed;
                let job = record.id;
                self.feed(now, Event::JobFinished { job, outcome: Outcome::Completed })
            }
            SimEvent::EvictionDue { idx, epoch } => {
                let w = &self.world[idx as usize];
                if w.epoch != epoch || !w.running {
                    return Ok(());
                }
                self.stop_run(now, idx);
                let job = self.records[idx as usize].id;
                self.feed(now, Event::JobEvicted { job })
            }
            SimEvent::SchedulerTimer => {
                if self.armed_timer.is_some_and(|t| t <= now) {
                    self.armed_timer = None;
                    self.events += 1;
                    self.scheduler.handle_timeout(now);
                    self.drain(now)?;
                }
                Ok(())
            }
        }
    }

    fn feed(&mut self, now: Time, event: Event) -> std::io::Result<()> {
        self.events += 1;
        self.scheduler.handle_event(now, event);
        self.drain(now)
    }

    /// Carries out every decision the scheduler has, acknowledging launches at once
    /// (start-up is instantaneous in this world), until it has nothing more to say.
    fn drain(&mut self, now: Time) -> std::io::Result<()> {
        loop {
            while let Some(notice) = self.scheduler.poll_notice() {
                self.sink.notice(now, notice)?;
            }
            let mut decisions = std::mem::take(&mut self.decisions);
            decisions.extend(std::iter::from_fn(|| self.scheduler.poll_decision()));
            if decisions.is_empty() {
                self.decisions = decisions;
                break;
            }
            for decision in decisions.drain(..) {
                self.act(now, &decision);
                self.sink.decision(now, decision)?;
            }
            self.decisions = decisions;
        }
        if let Some(t) = self.scheduler.poll_timeout() {
            if self.armed_timer != Some(t) {
                self.armed_timer = Some(t);
                self.push(t.max(now), SimEvent::SchedulerTimer);
            }
        }
        Ok(())
    }

    fn act(&mut self, now: Time, decision: &Decision) {
        match *decision {
            Decision::Launch { job, ref allocation, .. } => {
                let idx = self.index_of[&job];
                let spec = &self.workload.jobs[idx as usize].spec;
                let cluster = self.scheduler.cluster();
                let mut rate = f64::INFINITY;
                let mut ran_on = ModelSet::ANY;
                let mut devices_held = 0.0;
                for share in &allocation.devices {
                    let model = cluster.device(share.device).model;
                    rate = rate.min(self.speed.speed(spec.class, model));
                    ran_on = ran_on.with(model);
                    devices_held += share.milli as f64 / 1000.0;
                }
                if allocation.devices.is_empty() {
                    rate = 1.0; // a CPU-only job runs at its stated pace
                }
                let w = &mut self.world[idx as usize];
                w.rate = rate;
                w.run_started = now;
                w.devices_held = devices_held;
                w.epoch += 1;
                w.running = true;
                let run_for = Time::from_micros((w.remaining_work / rate).ceil() as u64);
                let epoch = w.epoch;
                let record = &mut self.records[idx as usize];
                record.first_start.get_or_insert(now);
                record.ran_on = ran_on;
                self.push(now + run_for, SimEvent::Finish { idx, epoch });
                self.events += 1;
                self.scheduler.handle_event(now, Event::JobStarted { job });
            }
            Decision::Preempt { job, ref reason, grace } => {
                let idx = self.index_of[&job];
                if !matches!(reason, PreemptReason::Cancelled) {
                    self.records[idx as usize].preemptions += 1;
                }
                let epoch = self.world[idx as usize].epoch;
                self.push(now + grace, SimEvent::EvictionDue { idx, epoch });
            }
            Decision::Reject { job, .. } => {
                let idx = self.index_of[&job];
                self.records[idx as usize].outcome = RecordOutcome::Rejected;
            }
        }
    }

    /// Ends the current run of a job: its progress and device time are booked.
    fn stop_run(&mut self, now: Time, idx: u32) {
        let w = &mut self.world[idx as usize];
        let ran = now - w.run_started;
        w.remaining_work = (w.remaining_work - ran.as_micros() as f64 * w.rate).max(0.0);
        w.running = false;
        w.epoch += 1;
        let record = &mut self.records[idx as usize];
        record.run += ran;
        record.device_micros += (ran.as_micros() as f64 * w.devices_held).round() as u128;
    }

    /// At the end, jobs still running are booked up to `now` and stay `unfinished`.
    fn finish_records(&mut self, now: Time) {
        for idx in 0..self.world.len() as u32 {
            if self.world[idx as usize].running {
                self.stop_run(now, idx);
            }
        }
    }
}
