//! One simulated run: a workload, a cluster, a policy, a seed.
//!
//! The engine owns the world: each job's remaining work, its rate on the devices it holds
//! (the slowest device of a gang sets the pace, as in synchronous data-parallel training),
//! and the clock. The scheduler owns every decision. Work is measured in reference
//! microseconds: a microsecond of running on a device of relative speed 1.0.

use crate::models::{CheckpointCostsUs, WorldModels, DEVICE, NVLINK_ISLAND, PCIE_SWITCH};
use crate::progress::{Progress, PUBLISH_EVERY};
use crate::series::{Recorder, TimeSeries};
use crate::speed::SpeedTable;
use crate::workload::Workload;
use rand::SeedableRng;
use tessera_driver::StopCause;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasherDefault;
use tessera_core::scheduler::IdHasher;
use tessera_core::{
    ClusterState, Decision, DeviceId, Event, JobId, JobRecord, ModelSet, NodeId, Notice, Outcome, Policy, PreemptReason,
    JobOutcome, Scheduler, Time,
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
    /// Devices in the cluster at the start, for utilization.
    pub total_devices: f64,
    /// Simulated time when the run stopped.
    pub end: Time,
    /// Device and node failures that happened.
    pub failures: u64,
    /// The run's time series, when `RunLimits::timeseries` asked for them.
    pub timeseries: Option<TimeSeries>,
}

/// An event in the queue, keyed by its time and then the order it was pushed (`seq` is
/// unique, so the order is total and the payload never needs comparing). The ordering is
/// reversed so that `BinaryHeap`, a max-heap, pops the earliest first; one integer compare per
/// sift step keeps the queue cheap at millions of events.
#[derive(Clone, Copy, Debug)]
struct Queued {
    key: u128,
    event: SimEvent,
}

impl Queued {
    fn new(at: Time, seq: u64, event: SimEvent) -> Queued {
        Queued { key: (u128::from(at.as_micros()) << 64) | u128::from(seq), event }
    }
    fn at(&self) -> Time {
        Time::from_micros((self.key >> 64) as u64)
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key.cmp(&self.key)
    }
}

/// The queue is compacted (stale phase ends and eviction deadlines dropped) once it holds
/// this many events and twice as many as after the last compaction.
const COMPACT_MIN: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SimEvent {
    Arrival { idx: u32 },
    /// The end of the job's current phase; stale if `epoch` moved on.
    PhaseEnd { idx: u32, epoch: u32 },
    /// A preempted job's grace period is over; stale unless run `run` is still going.
    EvictionDue { idx: u32, run: u32 },
    SchedulerTimer,
    DeviceFail { device: u32 },
    DeviceRepair { device: u32 },
    NodeFail { node: u32 },
    NodeRepair { node: u32 },
    MaintenanceStart { index: u32 },
    MaintenanceEnd { index: u32 },
    Fleet { index: u32 },
}

/// What a running job is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Idle,
    /// Start-up: image pull, data loading, compilation.
    Starting,
    /// Loading its last checkpoint.
    Restoring,
    /// Making progress at `rate`, towards `target`.
    Working,
    Checkpointing,
    /// Saving its state after a preemption, within the grace period.
    Saving,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Target {
    #[default]
    Finish,
    Checkpoint,
}

#[derive(Clone, Debug, Default)]
struct WorldJob {
    /// Reference microseconds of work still to do.
    remaining: f64,
    /// Reference microseconds done since the last checkpoint: what a failure loses.
    since_checkpoint: f64,
    has_checkpoint: bool,
    phase: Phase,
    phase_started: Time,
    target: Target,
    /// Effective rate: reference microseconds per microsecond.
    rate: f64,
    /// Rate from the speed matrix alone, for the ideal run time.
    nominal: f64,
    /// Sum of the shares held, in devices.
    devices_held: f64,
    nodes: Vec<NodeId>,
    /// Sorted, so sharing is a linear merge.
    devices: Vec<DeviceId>,
    /// (node, group) of each PCIe switch and NVLink island the job uses, sorted; kept only
    /// when those levels are modelled.
    switches: Vec<(u32, u32)>,
    islands: Vec<(u32, u32)>,
    /// Product of the contention factors with the jobs it shares hardware with now.
    contention: f64,
    /// Rate before contention: speed matrix x communication penalty.
    base_rate: f64,
    /// Guards phase events; bumped at every phase change and rate change.
    epoch: u32,
    /// Counts launches; guards eviction deadlines.
    run: u32,
    /// Whether the time series counts this run as busy, so a stop is subtracted exactly once.
    in_series: bool,
    /// Duration of the current phase, for the overhead books.
    phase_cost: Time,
}

/// Options of one run beyond the workload, cluster and policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunLimits {
    /// Stop at this simulated time; jobs not ended by then are `unfinished`.
    pub horizon: Option<Time>,
    /// Record time series at this interval (`[outputs] timeseries_s`).
    pub timeseries: Option<Time>,
}

/// The world a run happens in: jobs, speeds, models, the seed that drives every draw.
pub struct World<'a> {
    pub workload: &'a Workload,
    pub speed: &'a SpeedTable,
    pub models: &'a WorldModels,
    pub seed: u64,
    pub limits: RunLimits,
}

impl<'a> World<'a> {
    /// A world with no models: jobs run at their speed-matrix rate, nothing fails.
    pub fn plain(workload: &'a Workload, speed: &'a SpeedTable) -> World<'a> {
        static NO_MODELS: std::sync::OnceLock<WorldModels> = std::sync::OnceLock::new();
        World { workload, speed, models: NO_MODELS.get_or_init(WorldModels::default), seed: 0, limits: RunLimits::default() }
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The world's random stream: stream 0 of the run's seed (stream 1 draws the workload).
const WORLD_STREAM: u64 = 0;

struct Engine<'a, S: DecisionSink> {
    world: &'a World<'a>,
    scheduler: Scheduler,
    sink: &'a mut S,
    rng: ChaCha8Rng,
    heap: BinaryHeap<Queued>,
    next_seq: u64,
    /// The queue's length that triggers the next compaction.
    compact_at: usize,
    index_of: IdMap<JobId, u32>,
    jobs: Vec<WorldJob>,
    records: Vec<JobRecord>,
    events: u64,
    failures: u64,
    armed_timer: Option<Time>,
    decisions: Vec<Decision>,
    /// Running jobs per node and (when device contention is modelled) per device.
    node_jobs: Vec<Vec<u32>>,
    device_jobs: Vec<Vec<u32>>,
    /// Contention factor per (job, other job, level), drawn once while both run.
    factors: IdMap<(u32, u32, u8), f64>,
    /// When a node last ran each class, for warm start-up.
    last_ran: IdMap<(u32, u32), Time>,
    removed: Vec<bool>,
    series: Option<Recorder>,
}

/// Runs one simulation to the end (every job ended, or the horizon).
pub fn run<S: DecisionSink>(world: &World<'_>, cluster: ClusterState, policy: Policy, sink: &mut S) -> std::io::Result<RunOutput> {
    run_observed(world, cluster, policy, sink, None)
}

/// [`run`], adding its events, ended jobs and simulated time to `progress` as it goes.
pub fn run_observed<S: DecisionSink>(world: &World<'_>, cluster: ClusterState, policy: Policy, sink: &mut S, progress: Option<&Progress>) -> std::io::Result<RunOutput> {
    let total_devices = cluster.devices().len() as f64;
    let (nodes, devices) = (cluster.nodes().len(), cluster.devices().len());
    let mut rng = ChaCha8Rng::seed_from_u64(world.seed);
    rng.set_stream(WORLD_STREAM);
    let n = world.workload.jobs.len();
    let series = world.limits.timeseries.map(|step| {
        let added = world.models.fleet.iter().flat_map(|f| f.add.iter().flat_map(|spec| spec.devices.iter().copied()));
        let models = cluster.devices().iter().map(|d| d.model).chain(added);
        Recorder::new(step, cluster.catalogue(), models.collect::<Vec<_>>(), &world.workload.tenants)
    });
    let mut engine = Engine {
        world,
        scheduler: Scheduler::new(policy, cluster),
        sink,
        rng,
        heap: BinaryHeap::new(),
        next_seq: 0,
        compact_at: COMPACT_MIN,
        index_of: IdMap::with_capacity_and_hasher(n, Default::default()),
        jobs: Vec::with_capacity(n),
        records: Vec::with_capacity(n),
        events: 0,
        failures: 0,
        armed_timer: None,
        decisions: Vec::new(),
        node_jobs: if world.models.has_contention() { vec![Vec::new(); nodes] } else { Vec::new() },
        device_jobs: if world.models.contention[DEVICE].is_some() || world.models.equal_device_sharing { vec![Vec::new(); devices] } else { Vec::new() },
        factors: IdMap::default(),
        last_ran: IdMap::default(),
        removed: vec![false; nodes],
        series,
    };
    if let Some(first) = world.workload.jobs.first() {
        engine.push(first.submit, SimEvent::Arrival { idx: 0 });
    }
    engine.start_failure_processes(Time::ZERO, 0, 0);
    for (i, m) in world.models.maintenance.iter().enumerate() {
        engine.push(m.start, SimEvent::MaintenanceStart { index: i as u32 });
        engine.push(m.end, SimEvent::MaintenanceEnd { index: i as u32 });
    }
    for (i, f) in world.models.fleet.iter().enumerate() {
        engine.push(f.at, SimEvent::Fleet { index: i as u32 });
    }
    let mut now = Time::ZERO;
    // What this run has added to `progress` so far: (events, jobs ended).
    let mut published = (0u64, 0u64);
    while let Some(queued) = engine.heap.pop() {
        let (t, event) = (queued.at(), queued.event);
        if world.limits.horizon.is_some_and(|h| t > h) {
            now = world.limits.horizon.unwrap_or(t);
            break;
        }
        now = t;
        if let Some(series) = &mut engine.series {
            series.advance(now, engine.scheduler.queue_len());
        }
        engine.dispatch(now, event)?;
        if progress.is_some() && engine.events - published.0 >= PUBLISH_EVERY {
            engine.publish(progress, &mut published, now);
        }
        // Failure processes run forever: once every job has arrived and ended, stop.
        if engine.all_done() {
            break;
        }
    }
    // The last samples see the run as it stopped, before unfinished jobs are booked out.
    if let Some(series) = &mut engine.series {
        series.close(now, engine.scheduler.queue_len());
    }
    engine.finish_records(now);
    let timeseries = engine.series.take().map(|s| s.finish());
    engine.publish(progress, &mut published, now);
    Ok(RunOutput { records: engine.records, events: engine.events, total_devices, end: now, failures: engine.failures, timeseries })
}

/// The simulator's world as the drain loop sees it: a launch starts the job's run and is
/// acknowledged at once; a stop ends it after the grace (or at once, for a failure).
impl<S: DecisionSink> tessera_driver::World for Engine<'_, S> {
    type Error = std::io::Error;

    fn scheduler(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }

    fn launch(&mut self, now: Time, job: JobId, allocation: &tessera_core::Allocation) -> std::io::Result<()> {
        self.start_run(now, job, allocation)
    }

    fn stop(&mut self, now: Time, job: JobId, grace: Time, reason: &PreemptReason) -> std::io::Result<()> {
        let idx = self.index_of[&job];
        let failure = matches!(reason, PreemptReason::DeviceFailed { .. } | PreemptReason::NodeDown { .. });
        if failure {
            return self.fail(now, idx);
        }
        self.records[idx as usize].ledger.stop_ordered(StopCause::of(reason));
        let save = self.checkpoint_costs(idx).and_then(|c| c.save_on_preempt).map(Time::from_micros);
        match save {
            Some(save) if save <= grace && self.jobs[idx as usize].phase != Phase::Idle => {
                self.bank(now, idx);
                self.set_phase(now, idx, Phase::Saving, save);
            }
            _ => {
                let run = self.jobs[idx as usize].run;
                self.push(now + grace, SimEvent::EvictionDue { idx, run });
            }
        }
        Ok(())
    }

    fn reject(&mut self, _now: Time, job: JobId, _reason: &tessera_core::RejectReason) -> std::io::Result<()> {
        let idx = self.index_of[&job];
        self.records[idx as usize].outcome = JobOutcome::Rejected;
        Ok(())
    }

    fn log_decision(&mut self, now: Time, decision: Decision) -> std::io::Result<()> {
        self.sink.decision(now, decision)
    }

    fn notice(&mut self, now: Time, notice: tessera_core::Notice) -> std::io::Result<()> {
        self.sink.notice(now, notice)
    }

    fn arm(&mut self, now: Time, at: Option<Time>) {
        if let Some(t) = at {
            if self.armed_timer != Some(t) {
                self.armed_timer = Some(t);
                self.push(t.max(now), SimEvent::SchedulerTimer);
            }
        }
    }

    fn take_buffer(&mut self) -> Vec<Decision> {
        std::mem::take(&mut self.decisions)
    }

    fn put_buffer(&mut self, buffer: Vec<Decision>) {
        self.decisions = buffer;
    }
}

impl<S: DecisionSink> Engine<'_, S> {
    /// Adds what happened since the last call to `progress`; `published` keeps the totals added.
    fn publish(&self, progress: Option<&Progress>, published: &mut (u64, u64), now: Time) {
        if let Some(p) = progress {
            let done = (self.records.len() - self.scheduler.live_jobs()) as u64;
            p.add(self.events - published.0, done.saturating_sub(published.1), now.as_micros());
            *published = (self.events, done.max(published.1));
        }
    }

    fn push(&mut self, at: Time, event: SimEvent) {
        self.heap.push(Queued::new(at, self.next_seq, event));
        self.next_seq += 1;
        if self.heap.len() >= self.compact_at {
            self.compact();
        }
    }

    /// Drops the events that can only be ignored when they come up: a phase end whose job has
    /// moved to another phase since (every preemption leaves its run's planned end behind,
    /// often days ahead) and an eviction deadline of a run that is over. Both guards only
    /// grow, so such events stay stale; the rest keep their keys, so the order is unchanged.
    fn compact(&mut self) {
        let jobs = &self.jobs;
        self.heap.retain(|q| match q.event {
            SimEvent::PhaseEnd { idx, epoch } => jobs[idx as usize].epoch == epoch,
            SimEvent::EvictionDue { idx, run } => jobs[idx as usize].run == run,
            _ => true,
        });
        self.compact_at = (2 * self.heap.len()).max(COMPACT_MIN);
    }

    fn all_done(&self) -> bool {
        self.records.len() == self.world.workload.jobs.len() && self.scheduler.live_jobs() == 0
    }

    /// First failures of the devices and nodes from these indexes on, counted from `from`.
    fn start_failure_processes(&mut self, from: Time, first_node: usize, first_device: usize) {
        let models = self.world.models;
        if let Some(f) = &models.device_failures {
            for d in first_device..self.scheduler.cluster().devices().len() {
                let model = self.scheduler.cluster().device(DeviceId(d as u32)).model;
                let life = Time::from_secs_f64(f.lifetime_by_model[model.index()].sample(&mut self.rng));
                self.push(from + life, SimEvent::DeviceFail { device: d as u32 });
            }
        }
        if let Some(f) = &models.node_failures {
            for n in first_node..self.scheduler.cluster().nodes().len() {
                let life = Time::from_secs_f64(f.lifetime_by_model[0].sample(&mut self.rng));
                self.push(from + life, SimEvent::NodeFail { node: n as u32 });
            }
        }
    }

    fn dispatch(&mut self, now: Time, event: SimEvent) -> std::io::Result<()> {
        match event {
            SimEvent::Arrival { idx } => {
                let job = &self.world.workload.jobs[idx as usize];
                self.index_of.insert(job.spec.id, idx);
                self.records.push(JobRecord::new(&job.spec, job.submit));
                self.jobs.push(WorldJob { remaining: job.work.as_micros() as f64, ..WorldJob::default() });
                if let Some(next) = self.world.workload.jobs.get(idx as usize + 1) {
                    self.push(next.submit, SimEvent::Arrival { idx: idx + 1 });
                }
                self.feed(now, Event::JobSubmitted { spec: job.spec.clone() })
            }
            SimEvent::PhaseEnd { idx, epoch } => {
                if self.jobs[idx as usize].epoch != epoch {
                    return Ok(());
                }
                self.end_phase(now, idx)
            }
            SimEvent::EvictionDue { idx, run } => {
                let w = &self.jobs[idx as usize];
                if w.run != run || w.phase == Phase::Idle || w.phase == Phase::Saving {
                    return Ok(());
                }
                self.bank(now, idx);
                self.book_partial_phase(now, idx);
                self.lose_unsaved(idx, false);
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
            SimEvent::DeviceFail { device } => {
                let node = self.scheduler.cluster().device(DeviceId(device)).node;
                if self.removed[node.index()] {
                    return Ok(());
                }
                self.failures += 1;
                let f = self.world.models.device_failures.as_ref().expect("device failures are modelled");
                let repair = Time::from_secs_f64(f.repair.as_ref().map_or(0.0, |r| r.sample(&mut self.rng)));
                self.push(now + repair, SimEvent::DeviceRepair { device });
                self.feed(now, Event::DeviceFailed { device: DeviceId(device) })
            }
            SimEvent::DeviceRepair { device } => {
                let f = self.world.models.device_failures.as_ref().expect("device failures are modelled");
                let model = self.scheduler.cluster().device(DeviceId(device)).model;
                let life = Time::from_secs_f64(f.lifetime_by_model[model.index()].sample(&mut self.rng));
                self.push(now + life, SimEvent::DeviceFail { device });
                self.feed(now, Event::DeviceRecovered { device: DeviceId(device) })
            }
            SimEvent::NodeFail { node } => {
                if self.removed[node as usize] {
                    return Ok(());
                }
                self.failures += 1;
                let f = self.world.models.node_failures.as_ref().expect("node failures are modelled");
                let repair = Time::from_secs_f64(f.repair.as_ref().map_or(0.0, |r| r.sample(&mut self.rng)));
                self.push(now + repair, SimEvent::NodeRepair { node });
                self.feed(now, Event::NodeDown { node: NodeId(node) })
            }
            SimEvent::NodeRepair { node } => {
                if self.removed[node as usize] {
                    return Ok(());
                }
                let f = self.world.models.node_failures.as_ref().expect("node failures are modelled");
                let life = Time::from_secs_f64(f.lifetime_by_model[0].sample(&mut self.rng));
                self.push(now + life, SimEvent::NodeFail { node });
                self.feed(now, Event::NodeUp { node: NodeId(node) })
            }
            SimEvent::MaintenanceStart { index } => {
                for &node in &self.world.models.maintenance[index as usize].nodes {
                    if !self.removed[node.index()] {
                        self.feed(now, Event::NodeDrain { node })?;
                    }
                }
                Ok(())
            }
            SimEvent::MaintenanceEnd { index } => {
                for &node in &self.world.models.maintenance[index as usize].nodes {
                    if !self.removed[node.index()] {
                        self.feed(now, Event::NodeUp { node })?;
                    }
                }
                Ok(())
            }
            SimEvent::Fleet { index } => {
                let change = &self.world.models.fleet[index as usize];
                let (first_node, first_device) = (self.scheduler.cluster().nodes().len(), self.scheduler.cluster().devices().len());
                for spec in &change.add {
                    if self.world.models.has_contention() {
                        self.node_jobs.push(Vec::new());
                    }
                    self.removed.push(false);
                    if !self.device_jobs.is_empty() {
                        self.device_jobs.extend(spec.devices.iter().map(|_| Vec::new()));
                    }
                    self.feed(now, Event::NodeAdded { spec: spec.clone() })?;
                }
                self.start_failure_processes(now, first_node, first_device);
                for &node in &change.remove {
                    if !self.removed[node.index()] {
                        self.removed[node.index()] = true;
                        self.feed(now, Event::NodeDrain { node })?;
                    }
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

    /// Carries out every decision the scheduler has, acknowledging launches at once, until
    /// it has nothing more to say, in the driver layer's order (`tessera_driver::drive`).
    fn drain(&mut self, now: Time) -> std::io::Result<()> {
        tessera_driver::drain(self, now)
    }

    fn checkpoint_costs(&self, idx: u32) -> Option<CheckpointCostsUs> {
        let class = self.world.workload.jobs[idx as usize].spec.class;
        self.world.models.checkpoint.as_ref().map(|c| c.get(class.index()).copied().unwrap_or_default())
    }

    fn start_run(&mut self, now: Time, job: JobId, allocation: &tessera_core::Allocation) -> std::io::Result<()> {
        let idx = self.index_of[&job];
        let spec = &self.world.workload.jobs[idx as usize].spec;
        let class = spec.class;
        let cluster = self.scheduler.cluster();
        let mut nominal = f64::INFINITY;
        let mut ran_on = ModelSet::ANY;
        let mut devices_held = 0.0;
        for share in &allocation.devices {
            let model = cluster.device(share.device).model;
            nominal = nominal.min(self.world.speed.speed(class, model));
            ran_on = ran_on.with(model);
            devices_held += share.milli as f64 / 1000.0;
        }
        if allocation.devices.is_empty() {
            nominal = 1.0; // a CPU-only job runs at its stated pace
        }
        let spans = allocation.nodes.len();
        let models = self.world.models;
        // Who runs where is kept only for the models that ask: it costs two allocations a launch.
        let track = models.has_contention() || models.has_warm_start();
        let nodes: Vec<NodeId> = if track { allocation.node_ids().collect() } else { Vec::new() };
        let mut devices: Vec<DeviceId> = if models.has_contention() { allocation.devices.iter().map(|d| d.device).collect() } else { Vec::new() };
        devices.sort_unstable();
        let groups = |per: u32, modelled: bool| -> Vec<(u32, u32)> {
            if !modelled {
                return Vec::new();
            }
            let mut g: Vec<(u32, u32)> = devices
                .iter()
                .map(|&d| {
                    let dev = cluster.device(d);
                    (dev.node.0, (d.0 - cluster.node(dev.node).first_device) / per.max(1))
                })
                .collect();
            g.sort_unstable();
            g.dedup();
            g
        };
        let switches = groups(models.devices_per_pcie_switch, models.contention[PCIE_SWITCH].is_some());
        let islands = groups(models.devices_per_nvlink_island, models.contention[NVLINK_ISLAND].is_some());
        let warm = models.startup.as_ref().is_some_and(|st| {
            st.warm.as_ref().is_some_and(|(_, window)| {
                nodes.iter().all(|n| self.last_ran.get(&(n.0, class.0)).is_some_and(|&t| now - t <= *window))
            })
        });
        if models.has_contention() {
            for n in &nodes {
                self.node_jobs[n.index()].push(idx);
            }
            if !self.device_jobs.is_empty() {
                for d in &devices {
                    self.device_jobs[d.index()].push(idx);
                }
            }
        }
        if models.has_warm_start() {
            for n in &nodes {
                self.last_ran.insert((n.0, class.0), now);
            }
        }
        {
            let w = &mut self.jobs[idx as usize];
            w.nominal = nominal;
            w.base_rate = nominal * models.per_extra_node.map_or(1.0, |f| f.powi(spans.saturating_sub(1) as i32));
            w.rate = w.base_rate;
            w.contention = 1.0;
            w.devices_held = devices_held;
            w.run += 1;
            w.nodes = nodes;
            w.devices = devices;
            w.switches = switches;
            w.islands = islands;
        }
        if let Some(series) = &mut self.series {
            let cluster = self.scheduler.cluster();
            series.job(spec.tenant.index(), allocation.devices.iter().map(|d| (cluster.device(d.device).model, d.milli)), true);
            self.jobs[idx as usize].in_series = true;
        }
        let record = &mut self.records[idx as usize];
        record.ledger.launched();
        record.ledger.run_started(now);
        record.ran_on = ran_on;
        self.events += 1;
        self.scheduler.handle_event(now, Event::JobStarted { job });
        // Start-up, then restore if there is a checkpoint to resume from, then work.
        let startup = self.world.models.startup.as_ref().map(|st| match (&st.warm, warm) {
            (Some((sampler, _)), true) => sampler.sample(&mut self.rng),
            _ => st.cold.sample(&mut self.rng),
        });
        match startup {
            Some(delay) if delay > 0.0 => self.set_phase(now, idx, Phase::Starting, Time::from_secs_f64(delay)),
            _ => self.after_startup(now, idx),
        }
        if self.world.models.has_contention() {
            self.join(now, idx);
        }
        Ok(())
    }

    fn after_startup(&mut self, now: Time, idx: u32) {
        let restore = self.checkpoint_costs(idx).map_or(0, |c| c.restore);
        if self.jobs[idx as usize].has_checkpoint && restore > 0 {
            self.set_phase(now, idx, Phase::Restoring, Time::from_micros(restore));
        } else {
            self.work(now, idx);
        }
    }

    /// Enters a phase that lasts `duration` and makes no progress.
    fn set_phase(&mut self, now: Time, idx: u32, phase: Phase, duration: Time) {
        let w = &mut self.jobs[idx as usize];
        w.phase = phase;
        w.phase_started = now;
        w.phase_cost = duration;
        w.epoch += 1;
        let epoch = w.epoch;
        self.push(now + duration, SimEvent::PhaseEnd { idx, epoch });
    }

    /// Works towards the next checkpoint or the end, whichever comes first, at the current rate.
    fn work(&mut self, now: Time, idx: u32) {
        let interval = self.checkpoint_costs(idx).and_then(|c| c.interval);
        let w = &mut self.jobs[idx as usize];
        w.phase = Phase::Working;
        w.phase_started = now;
        let to_checkpoint = interval.map(|i| i - w.since_checkpoint);
        let (target, amount) = match to_checkpoint {
            Some(gap) if gap < w.remaining => (Target::Checkpoint, gap),
            _ => (Target::Finish, w.remaining),
        };
        w.target = target;
        w.epoch += 1;
        let epoch = w.epoch;
        let dt = Time::from_micros((amount / w.rate).ceil().max(0.0) as u64);
        self.push(now + dt, SimEvent::PhaseEnd { idx, epoch });
    }

    /// Books the progress of a working job up to `now`.
    fn bank(&mut self, now: Time, idx: u32) {
        let interval = self.checkpoint_costs(idx).and_then(|c| c.interval);
        let w = &mut self.jobs[idx as usize];
        if w.phase != Phase::Working {
            return;
        }
        let limit = match w.target {
            Target::Finish => w.remaining,
            Target::Checkpoint => interval.map_or(w.remaining, |i| i - w.since_checkpoint).min(w.remaining),
        };
        let progress = ((now - w.phase_started).as_micros() as f64 * w.rate).min(limit).max(0.0);
        w.remaining -= progress;
        w.since_checkpoint += progress;
        w.phase_started = now;
        let ideal = progress / w.nominal;
        let record = &mut self.records[idx as usize];
        record.ideal_run += Time::from_micros(ideal.round() as u64);
    }

    fn end_phase(&mut self, now: Time, idx: u32) -> std::io::Result<()> {
        let phase = self.jobs[idx as usize].phase;
        let cost = self.jobs[idx as usize].phase_cost;
        match phase {
            Phase::Idle => Ok(()),
            Phase::Starting => {
                self.after_startup(now, idx);
                Ok(())
            }
            Phase::Restoring => {
                self.records[idx as usize].checkpoint_overhead += cost;
                self.work(now, idx);
                Ok(())
            }
            Phase::Working => {
                // Exactly the planned amount: the event was timed for it (rounded up).
                let target = self.jobs[idx as usize].target;
                self.jobs[idx as usize].phase_started = Time::ZERO;
                self.bank_all(idx, target);
                match target {
                    Target::Finish => {
                        self.stop_run(now, idx);
                        self.records[idx as usize].ledger.ended(now);
                        let record = &mut self.records[idx as usize];
                        record.outcome = JobOutcome::Completed;
                        let job = record.id;
                        self.feed(now, Event::JobFinished { job, outcome: Outcome::Completed })
                    }
                    Target::Checkpoint => {
                        let cost = Time::from_micros(self.checkpoint_costs(idx).map_or(0, |c| c.cost));
                        if cost > Time::ZERO {
                            self.set_phase(now, idx, Phase::Checkpointing, cost);
                        } else {
                            self.checkpointed(idx);
                            self.work(now, idx);
                        }
                        Ok(())
                    }
                }
            }
            Phase::Checkpointing => {
                self.records[idx as usize].checkpoint_overhead += cost;
                self.checkpointed(idx);
                self.work(now, idx);
                Ok(())
            }
            Phase::Saving => {
                self.records[idx as usize].checkpoint_overhead += cost;
                self.checkpointed(idx);
                self.stop_run(now, idx);
                let job = self.records[idx as usize].id;
                self.feed(now, Event::JobEvicted { job })
            }
        }
    }

    /// Books the whole planned amount of a working phase that ran to its end.
    fn bank_all(&mut self, idx: u32, target: Target) {
        let interval = self.checkpoint_costs(idx).and_then(|c| c.interval);
        let w = &mut self.jobs[idx as usize];
        let amount = match target {
            Target::Finish => w.remaining,
            Target::Checkpoint => interval.map_or(w.remaining, |i| i - w.since_checkpoint).min(w.remaining),
        };
        w.remaining -= amount;
        w.since_checkpoint += amount;
        if target == Target::Finish {
            w.remaining = 0.0;
        }
        let ideal = amount / w.nominal;
        self.records[idx as usize].ideal_run += Time::from_micros(ideal.round() as u64);
    }

    fn checkpointed(&mut self, idx: u32) {
        let w = &mut self.jobs[idx as usize];
        w.since_checkpoint = 0.0;
        w.has_checkpoint = true;
    }

    /// A job stopped in the middle of a restore, a checkpoint write or a save: the time it
    /// spent there so far is overhead too.
    fn book_partial_phase(&mut self, now: Time, idx: u32) {
        let w = &self.jobs[idx as usize];
        if matches!(w.phase, Phase::Restoring | Phase::Checkpointing | Phase::Saving) {
            let spent = now - w.phase_started;
            self.records[idx as usize].checkpoint_overhead += spent;
        }
    }

    /// The work since the last checkpoint is lost, where the world keeps checkpoints at all;
    /// without a checkpoint model a preemption keeps all progress and a failure loses all.
    fn lose_unsaved(&mut self, idx: u32, failure: bool) {
        let modelled = self.world.models.checkpoint.is_some();
        let work = self.world.workload.jobs[idx as usize].work.as_micros() as f64;
        let w = &mut self.jobs[idx as usize];
        let lost = match (modelled, failure) {
            (true, _) => w.since_checkpoint,
            (false, false) => 0.0,
            (false, true) => work - w.remaining,
        };
        w.remaining += lost;
        w.since_checkpoint = 0.0;
        if !modelled && failure {
            w.has_checkpoint = false;
        }
        // The ideal run counts each piece of work once: what is redone is the failure's cost.
        let lost_ideal = Time::from_micros((lost / w.nominal).round() as u64);
        let record = &mut self.records[idx as usize];
        record.lost_work += Time::from_micros(lost.round() as u64);
        record.ideal_run = record.ideal_run - lost_ideal;
    }

    /// A device or node under the job failed: it stops now and loses its unsaved work.
    fn fail(&mut self, now: Time, idx: u32) -> std::io::Result<()> {
        if self.jobs[idx as usize].phase == Phase::Idle {
            return Ok(());
        }
        self.bank(now, idx);
        self.book_partial_phase(now, idx);
        self.lose_unsaved(idx, true);
        self.stop_run(now, idx);
        let ledger = &mut self.records[idx as usize].ledger;
        ledger.stop_ordered(StopCause::Failure);
        let restarts = ledger.restarts;
        let record = &mut self.records[idx as usize];
        let job = record.id;
        if self.world.models.max_attempts.is_some_and(|max| restarts > max) {
            self.records[idx as usize].ledger.ended(now);
            let record = &mut self.records[idx as usize];
            record.outcome = JobOutcome::Failed;
            return self.feed(now, Event::JobFinished { job, outcome: Outcome::Failed });
        }
        self.feed(now, Event::JobEvicted { job })
    }

    /// Ends the current run of a job: its time and device time are booked, it leaves its
    /// nodes, and the jobs it shared them with are re-rated.
    fn stop_run(&mut self, now: Time, idx: u32) {
        let class = self.world.workload.jobs[idx as usize].spec.class;
        let models = self.world.models;
        if models.has_contention() {
            self.leave(now, idx);
        }
        if let Some(series) = &mut self.series {
            if std::mem::take(&mut self.jobs[idx as usize].in_series) {
                // The scheduler still holds the allocation: it is released when the engine
                // reports the end that follows this call.
                let job = self.records[idx as usize].id;
                let cluster = self.scheduler.cluster();
                let shares = self.scheduler.allocation(job).map(|a| a.devices.as_slice()).unwrap_or_default();
                debug_assert!(!shares.is_empty() || self.world.workload.jobs[idx as usize].spec.devices.device_equivalents() == 0.0);
                series.job(self.world.workload.jobs[idx as usize].spec.tenant.index(), shares.iter().map(|d| (cluster.device(d.device).model, d.milli)), false);
            }
        }
        let ran = self.records[idx as usize].ledger.run_stopped(now);
        let w = &mut self.jobs[idx as usize];
        w.phase = Phase::Idle;
        w.epoch += 1;
        let nodes = std::mem::take(&mut w.nodes);
        w.devices.clear();
        w.switches.clear();
        w.islands.clear();
        let held = w.devices_held;
        let record = &mut self.records[idx as usize];
        record.device_micros += (ran.as_micros() as f64 * held).round() as u128;
        if models.has_warm_start() {
            for n in &nodes {
                self.last_ran.insert((n.0, class.0), now);
            }
        }
    }

    /// The jobs sharing a node with `k`, each once, in id order (so draws happen in a fixed order).
    fn neighbours(&self, k: u32) -> Vec<u32> {
        let mut others: Vec<u32> = Vec::new();
        for n in &self.jobs[k as usize].nodes {
            others.extend(self.node_jobs[n.index()].iter().copied().filter(|&i| i != k));
        }
        others.sort_unstable();
        others.dedup();
        others
    }

    /// The contention levels two running jobs share and that the world models.
    fn shared_levels(&self, a: u32, b: u32) -> Vec<usize> {
        let models = self.world.models;
        let (x, y) = (&self.jobs[a as usize], &self.jobs[b as usize]);
        let shares = [
            true, // NODE: neighbours share a node by definition
            models.contention[DEVICE].is_some() && intersects(&x.devices, &y.devices),
            models.contention[PCIE_SWITCH].is_some() && intersects(&x.switches, &y.switches),
            models.contention[NVLINK_ISLAND].is_some() && intersects(&x.islands, &y.islands),
        ];
        (0..4).filter(|&level| shares[level] && models.contention[level].is_some()).collect()
    }

    /// `k` has just started on its nodes: each neighbour and `k` draw their factors for each
    /// level they share, and every rate that changed is applied.
    fn join(&mut self, now: Time, k: u32) {
        let others = self.neighbours(k);
        let mut product = 1.0;
        for &i in &others {
            let levels = self.shared_levels(k, i);
            for level in levels {
                product *= self.factor(k, i, level);
                let f = self.factor(i, k, level);
                self.jobs[i as usize].contention *= f;
            }
        }
        self.jobs[k as usize].contention = product;
        self.apply_rate(now, k);
        for i in others {
            self.apply_rate(now, i);
        }
    }

    /// `k` is stopping: its neighbours lose the factors they had with it.
    fn leave(&mut self, now: Time, k: u32) {
        let others = self.neighbours(k);
        for &i in &others {
            let levels = self.shared_levels(k, i);
            for level in levels {
                if let Some(f) = self.factors.remove(&(i, k, level as u8)) {
                    self.jobs[i as usize].contention /= f;
                }
                self.factors.remove(&(k, i, level as u8));
            }
        }
        for n in self.jobs[k as usize].nodes.clone() {
            self.node_jobs[n.index()].retain(|&j| j != k);
        }
        if !self.device_jobs.is_empty() {
            for d in self.jobs[k as usize].devices.clone() {
                self.device_jobs[d.index()].retain(|&j| j != k);
            }
        }
        for i in others {
            self.apply_rate(now, i);
        }
    }

    /// Sets a job's rate from its parts (base x contention x its share of a shared device); a
    /// working job banks its progress first and is rescheduled, so finish times move.
    fn apply_rate(&mut self, now: Time, j: u32) {
        let w = &self.jobs[j as usize];
        let mut rate = w.base_rate * w.contention;
        if self.world.models.equal_device_sharing {
            let most = w.devices.iter().map(|d| self.device_jobs[d.index()].len()).max().unwrap_or(1);
            rate /= most.max(1) as f64;
        }
        if rate == self.jobs[j as usize].rate {
            return;
        }
        if self.jobs[j as usize].phase == Phase::Working {
            self.bank(now, j);
            self.jobs[j as usize].rate = rate;
            self.work(now, j);
        } else {
            self.jobs[j as usize].rate = rate;
        }
    }

    /// The factor by which job `i` slows job `j` at a level: drawn when first needed and kept
    /// while both run. Factors are capped at 1: sharing never speeds a job up.
    fn factor(&mut self, j: u32, i: u32, level: usize) -> f64 {
        if let Some(&f) = self.factors.get(&(j, i, level as u8)) {
            return f;
        }
        let sampler = self.world.models.contention[level].as_ref().expect("level is modelled");
        let f = sampler.sample(&mut self.rng).clamp(1e-6, 1.0);
        self.factors.insert((j, i, level as u8), f);
        f
    }

    /// At the end, jobs still running are booked up to `now` and stay `unfinished`.
    fn finish_records(&mut self, now: Time) {
        for idx in 0..self.jobs.len() as u32 {
            if self.jobs[idx as usize].phase != Phase::Idle {
                self.bank(now, idx);
                self.book_partial_phase(now, idx);
                self.stop_run(now, idx);
            }
        }
    }
}

/// Whether two sorted slices share an element.
fn intersects<T: Ord>(a: &[T], b: &[T]) -> bool {
    let (mut i, mut k) = (0, 0);
    while i < a.len() && k < b.len() {
        match a[i].cmp(&b[k]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => k += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}
