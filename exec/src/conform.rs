//! `tessera conform`: the proof that a policy decides live as it decided in the simulator.
//!
//! One scenario run twice on the same jobs (one replication's workload):
//!
//! - in the simulator, as `tessera sim` runs it;
//! - through the executor's own daemon: its policy construction (in the executor's context:
//!   the scenario's tenant table, job classes and speed matrix handed over as `exec.toml`
//!   would declare them), its journal (a real SQLite file), its actor's handling of
//!   submissions, exits, grace timers and timeouts, and its recovery. The fleet is the
//!   scenario's cluster as devices of the `simulated` backend; time is virtual; a job's
//!   process ends when the simulator's world would end it (its remaining work at the speed
//!   of the devices it holds), dies at SIGKILL, and keeps working through its grace, as in
//!   the simulator.
//!
//! The events the daemon waits for (a job's end, its grace running out, the core's timer)
//! are ordered as the simulator orders its own: by time, then by when they were scheduled.
//! Both decision logs (launches with their allocations and reasons, preemptions, rejections)
//! are then compared one by one. With a restart time, the daemon is dropped there without
//! warning, as a SIGKILL would leave it, and a new one recovers from the journal.
//!
//! Scenarios whose world the executor cannot reproduce (contention, failures, checkpoints,
//! start-up, maintenance, a changing fleet, a horizon) are refused, naming the model.

use crate::config::{DaemonConfig, GpuEnabled, JournalSync, SimulatedConfig, SimulatedDevices, SimulatedNode, TenantEntry};
use crate::daemon::{Daemon, Internal};
use crate::devices;
use crate::error::ExecError;
use crate::host::{Host, Spawned};
use crate::process::LaunchSpec;
use crate::spec::{DeviceAsk, JobSubmission};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_core::{Catalogue, ClassId, Decision, JobId, ModelId, Notice, PolicySpec, Time};
use tessera_driver::speed::SpeedEntry;
use tessera_sim::engine::{DecisionSink, World};
use tessera_sim::models::WorldModels;
use tessera_sim::scenario::Scenario;
use tessera_sim::speed::SpeedTable;
use tessera_sim::workload::{build_cluster, build_workload, Workload};

/// What to conform.
#[derive(Clone, Debug, Default)]
pub struct ConformOptions {
    /// The policy's label; default: the scenario's only policy (an error if it has several).
    pub policy: Option<String>,
    /// Which replication's workload (seed + k).
    pub replication: u32,
    /// Kill the executor at this simulated time and restart it from its journal.
    pub restart_at_s: Option<f64>,
    /// Where the executor's state (journal, job directories) goes; default: a temporary
    /// directory removed afterwards.
    pub state_dir: Option<PathBuf>,
}

/// One decision as a driver logged it.
#[derive(Clone, Debug, PartialEq)]
pub struct Logged {
    pub at: Time,
    pub decision: Decision,
}

/// The first place the two logs part.
#[derive(Clone, Debug)]
pub struct Divergence {
    /// Index in the logs (0-based).
    pub index: usize,
    pub simulator: Option<Logged>,
    pub executor: Option<Logged>,
}

/// The outcome of a conformance run.
#[derive(Clone, Debug)]
pub struct ConformReport {
    pub policy: String,
    pub jobs: usize,
    /// Decisions compared (the simulator's count).
    pub decisions: usize,
    pub launches: usize,
    pub preemptions: usize,
    pub rejections: usize,
    /// Executor restarts (0 or 1).
    pub restarts: u32,
    pub divergence: Option<Divergence>,
}

impl ConformReport {
    pub fn identical(&self) -> bool {
        self.divergence.is_none()
    }
}

impl std::fmt::Display for ConformReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.divergence {
            None => write!(
                f,
                "identical: {} decisions ({} launches, {} preemptions, {} rejections) for {} jobs under `{}`{}",
                self.decisions,
                self.launches,
                self.preemptions,
                self.rejections,
                self.jobs,
                self.policy,
                if self.restarts > 0 { ", the executor restarted once from its journal" } else { "" }
            ),
            Some(d) => {
                writeln!(f, "divergence at decision {} under `{}`:", d.index + 1, self.policy)?;
                let show = |l: &Option<Logged>| match l {
                    Some(l) => format!("t={:.6} s job {}: {}", l.at.as_secs_f64(), l.decision.job().0, serde_json::to_string(&l.decision).unwrap_or_default()),
                    None => "nothing (its log ended)".to_string(),
                };
                writeln!(f, "  simulator: {}", show(&d.simulator))?;
                write!(f, "  executor:  {}", show(&d.executor))
            }
        }
    }
}

/// Runs the scenario in the simulator and through the executor's daemon and compares their
/// decisions.
pub fn conform(scenario_path: &Path, options: &ConformOptions) -> Result<ConformReport, ExecError> {
    let scenario = Scenario::load(scenario_path).map_err(|e| ExecError::Refused(e.to_string()))?;
    let spec = select_policy(&scenario, options.policy.as_deref())?;
    let (catalogue, nodes) = build_cluster(&scenario).map_err(|e| ExecError::Refused(e.to_string()))?;
    let seed = scenario.seed.wrapping_add(options.replication as u64);
    let workload = build_workload(&scenario, &catalogue, seed).map_err(|e| ExecError::Refused(e.to_string()))?;
    let speed = tessera_sim::speed::build(&scenario, &workload, &catalogue).map_err(|e| ExecError::Refused(e.to_string()))?;
    let models = WorldModels::build(&scenario, &catalogue, &nodes, &workload.classes).map_err(|e| ExecError::Refused(e.to_string()))?;
    refuse_unreproducible(&scenario, &models)?;
    check_ids(&workload)?;

    // The simulator's side, exactly as `tessera sim` runs it.
    let built = tessera_sim::runner::build_policy(&scenario, &spec, &workload, &speed, &catalogue, &nodes).map_err(|e| ExecError::Refused(e.to_string()))?;
    let sim_fingerprint = built.fingerprint.clone();
    let cluster = tessera_core::ClusterState::new(catalogue.clone(), nodes.iter().cloned());
    let world = World { workload: &workload, speed: &speed, models: &models, seed, limits: Default::default() };
    let mut sink = Collect::default();
    tessera_sim::engine::run(&world, cluster, built.policy, &mut sink).map_err(ExecError::from)?;
    let simulated = sink.decisions;

    // The executor's side.
    let temp;
    let state_dir = match &options.state_dir {
        Some(d) => d.clone(),
        None => {
            temp = TempDir::new()?;
            temp.0.clone()
        }
    };
    let mut config = executor_config(&state_dir, &spec, &workload, &speed, &catalogue, &nodes)?;
    // The executor admits the policy as `exec serve` does: through the gate, with the record
    // `tessera validate` writes for this scenario, so what it builds must have the
    // simulator's fingerprint.
    let record = validation_record(scenario_path, &spec, seed)?;
    if record.fingerprint != sim_fingerprint {
        return Err(ExecError::Refused(format!("validate fingerprinted another policy than the simulator built: {:?}", record.fingerprint.difference(&sim_fingerprint))));
    }
    let record_path = state_dir.join("validation.json");
    std::fs::write(&record_path, serde_json::to_string_pretty(&record).unwrap_or_default())?;
    config.validation_record = Some(record_path);
    let world = Arc::new(Mutex::new(JobWorld::new(&workload, &speed, &nodes, models.per_extra_node)));
    let mut harness = Harness::new(config, world, &workload)?;
    let restart_at = options.restart_at_s.map(Time::from_secs_f64);
    harness.run(restart_at)?;
    let executed = harness.take_log();

    let count = |pred: fn(&Decision) -> bool| simulated.iter().filter(|l| pred(&l.decision)).count();
    let mut report = ConformReport {
        policy: spec.label().to_string(),
        jobs: workload.jobs.len(),
        decisions: simulated.len(),
        launches: count(|d| matches!(d, Decision::Launch { .. })),
        preemptions: count(|d| matches!(d, Decision::Preempt { .. })),
        rejections: count(|d| matches!(d, Decision::Reject { .. })),
        restarts: harness.restarts,
        divergence: None,
    };
    let n = simulated.len().max(executed.len());
    for i in 0..n {
        let (a, b) = (simulated.get(i), executed.get(i));
        if a != b {
            report.divergence = Some(Divergence { index: i, simulator: a.cloned(), executor: b.cloned() });
            break;
        }
    }
    Ok(report)
}

/// The record `tessera validate --policy LABEL --require 'completed >= 1'` writes for one
/// replication of the scenario at `seed`.
fn validation_record(scenario_path: &Path, spec: &PolicySpec, seed: u64) -> Result<tessera_core::validation::ValidationRecord, ExecError> {
    use tessera_sim::validate::{validate, Requirement, ValidateOptions};
    let requirement = Requirement::parse("completed >= 1").map_err(|e| ExecError::Refused(format!("{e:?}")))?;
    let options = ValidateOptions { policy: spec.label().to_string(), requirements: vec![requirement], seed: Some(seed), replications: Some(1), threads: 1 };
    let v = validate(scenario_path, &options).map_err(|e| ExecError::Refused(e.to_string()))?;
    if !v.record.passed {
        return Err(ExecError::Refused(format!("policy `{}` completed no job in the simulator: nothing to conform", spec.label())));
    }
    Ok(v.record)
}

fn select_policy(scenario: &Scenario, label: Option<&str>) -> Result<PolicySpec, ExecError> {
    let labels: Vec<&str> = scenario.policies.iter().map(|p| p.label()).collect();
    match label {
        Some(l) => scenario
            .policies
            .iter()
            .find(|p| p.label() == l)
            .cloned()
            .ok_or_else(|| ExecError::invalid("--policy", format!("no policy labelled `{l}`; the scenario has: {}", labels.join(", ")))),
        None if scenario.policies.len() == 1 => Ok(scenario.policies[0].clone()),
        None => Err(ExecError::invalid("--policy", format!("the scenario has {} policies: name one of {}", labels.len(), labels.join(", ")))),
    }
}

/// The executor reproduces a job's run time from its work and its devices' speeds; world
/// models beyond that are refused, naming them.
fn refuse_unreproducible(scenario: &Scenario, m: &WorldModels) -> Result<(), ExecError> {
    let mut found = Vec::new();
    if m.has_contention() {
        found.push("contention ([models.contention])");
    }
    if m.device_failures.is_some() || m.node_failures.is_some() {
        found.push("failures ([models.failures])");
    }
    if !m.maintenance.is_empty() {
        found.push("maintenance ([[models.maintenance]])");
    }
    if m.checkpoint.is_some() {
        found.push("checkpoints ([models.checkpoint])");
    }
    if m.startup.is_some() {
        found.push("start-up ([models.startup])");
    }
    if !m.fleet.is_empty() {
        found.push("a dynamic fleet ([[models.fleet]])");
    }
    if scenario.horizon().is_some() {
        found.push("a horizon ([sim] horizon_s)");
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(ExecError::Refused(format!(
            "{}: the executor cannot reproduce this scenario's world: {} (conform runs jobs at their speed-matrix rate, with the communication model and estimate errors only)",
            scenario.path.display(),
            found.join(", ")
        )))
    }
}

/// The executor numbers jobs in submission order; the simulator keeps the trace's ids. The
/// executor is given each job's id as its next one, so ids must grow with submission.
fn check_ids(workload: &Workload) -> Result<(), ExecError> {
    for w in workload.jobs.windows(2) {
        if w[1].spec.id <= w[0].spec.id {
            return Err(ExecError::Refused(format!(
                "job {} is submitted after job {}: conform needs job ids that grow in submission order (the executor numbers jobs as they come)",
                w[1].spec.id.0, w[0].spec.id.0
            )));
        }
    }
    Ok(())
}

/// `exec.toml` as an operator would write it for this scenario's fleet and workload.
fn executor_config(state_dir: &Path, spec: &PolicySpec, workload: &Workload, speed: &SpeedTable, catalogue: &Catalogue, nodes: &[tessera_core::NodeSpec]) -> Result<DaemonConfig, ExecError> {
    let mut config = DaemonConfig::new(state_dir);
    config.policy = spec.clone();
    config.cpu.devices = crate::config::CpuDevices::Count(0);
    config.gpu.enabled = GpuEnabled::Off;
    config.journal.sync = JournalSync::Normal;
    config.tenants = workload.tenants.iter().map(|t| TenantEntry::named(t.clone())).collect();
    config.job_classes = Some(workload.classes.clone());
    for (c, class) in workload.classes.iter().enumerate() {
        for (m, model) in catalogue.iter() {
            let relative = speed.speed(ClassId(c as u32), m);
            if relative != 1.0 {
                config.speed.push(SpeedEntry { class: class.clone(), model: model.name.clone(), relative });
            }
        }
    }
    let mut simulated = Vec::new();
    for n in nodes {
        let mut groups: Vec<SimulatedDevices> = Vec::new();
        for &m in &n.devices {
            let model = catalogue.name(m).to_string();
            match groups.last_mut() {
                Some(g) if g.model == model => g.count += 1,
                _ => groups.push(SimulatedDevices { model, count: 1 }),
            }
        }
        simulated.push(SimulatedNode { name: n.name.clone(), cpu_milli: n.cpu_milli, mem_mib: n.mem_mib, devices: groups });
    }
    config.simulated = Some(SimulatedConfig { nodes: simulated });
    if catalogue.len() != Catalogue::built_in().len() {
        return Err(ExecError::Refused("the scenario adds device models ([[cluster.models]]); the simulated backend knows the built-in catalogue only".into()));
    }
    Ok(config)
}

/// Collects the simulator's decisions.
#[derive(Default)]
struct Collect {
    decisions: Vec<Logged>,
}

impl DecisionSink for Collect {
    fn decision(&mut self, now: Time, decision: Decision) -> std::io::Result<()> {
        self.decisions.push(Logged { at: now, decision });
        Ok(())
    }
    fn notice(&mut self, _: Time, _: Notice) -> std::io::Result<()> {
        Ok(())
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, ExecError> {
        let base = std::env::temp_dir();
        for attempt in 0..1000u32 {
            let p = base.join(format!("tessera-conform-{}-{attempt}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return Ok(TempDir(p));
            }
        }
        Err(ExecError::Refused(format!("could not create a directory under {}", base.display())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- the jobs' world ------------------------------------------------------------------------

/// One run of a job's simulated process.
struct Process {
    job: u64,
    run: u32,
    alive: bool,
    /// The exit status: 0 when it finished its work, `None` when killed.
    status: Option<i32>,
    started: Time,
    /// Reference work per microsecond.
    rate: f64,
}

/// What a job's processes do: the simulator's world without models, kept here so that the
/// executor's processes end when the simulator's jobs do.
struct JobWorld {
    now: Time,
    /// Remaining reference work (µs) by job id, as the simulator keeps it.
    remaining: HashMap<u64, f64>,
    class: HashMap<u64, ClassId>,
    /// Device name -> (model, node index).
    devices: HashMap<String, (ModelId, usize)>,
    speed: SpeedTable,
    per_extra_node: Option<f64>,
    processes: BTreeMap<i32, Process>,
    next_pid: i32,
    /// Events to schedule, in the order they were asked for: (time, what).
    scheduled: Vec<(Time, Pending)>,
    /// Exits that happen at once (a SIGKILL).
    immediate: Vec<Internal>,
}

enum Pending {
    /// The process would finish its work then.
    End { pid: i32 },
    Daemon(Internal),
}

impl JobWorld {
    fn new(workload: &Workload, speed: &SpeedTable, nodes: &[tessera_core::NodeSpec], per_extra_node: Option<f64>) -> JobWorld {
        let mut devices = HashMap::new();
        for (n, node) in nodes.iter().enumerate() {
            for (i, &m) in node.devices.iter().enumerate() {
                devices.insert(format!("{}/dev{i}", node.name), (m, n));
            }
        }
        JobWorld {
            now: Time::ZERO,
            remaining: workload.jobs.iter().map(|j| (j.spec.id.0, j.work.as_micros() as f64)).collect(),
            class: workload.jobs.iter().map(|j| (j.spec.id.0, j.spec.class)).collect(),
            devices,
            speed: speed.clone(),
            per_extra_node,
            processes: BTreeMap::new(),
            next_pid: 1000,
            scheduled: Vec::new(),
            immediate: Vec::new(),
        }
    }

    /// The simulator's rate: the slowest device of the gang sets the pace, times the
    /// communication factor per extra node.
    fn rate(&self, job: u64, device_names: &[&str]) -> f64 {
        let class = self.class.get(&job).copied().unwrap_or(ClassId(0));
        let mut nominal = f64::INFINITY;
        let mut nodes: Vec<usize> = Vec::new();
        for name in device_names {
            if let Some(&(m, n)) = self.devices.get(*name) {
                nominal = nominal.min(self.speed.speed(class, m));
                if !nodes.contains(&n) {
                    nodes.push(n);
                }
            }
        }
        if device_names.is_empty() {
            nominal = 1.0;
        }
        nominal * self.per_extra_node.map_or(1.0, |f| f.powi(nodes.len().saturating_sub(1) as i32))
    }

    /// Books a killed run's progress as the simulator's eviction does.
    fn bank(&mut self, pid: i32) {
        let now = self.now;
        let Some(p) = self.processes.get(&pid) else { return };
        let remaining = self.remaining.entry(p.job).or_insert(0.0);
        let progress = ((now - p.started).as_micros() as f64 * p.rate).min(*remaining).max(0.0);
        *remaining -= progress;
    }
}

/// The virtual host: the jobs' world on simulated time.
struct VirtualHost {
    world: Arc<Mutex<JobWorld>>,
}

impl VirtualHost {
    fn world(&self) -> std::sync::MutexGuard<'_, JobWorld> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Host for VirtualHost {
    fn now_us(&self, _epoch_unix_us: u64) -> u64 {
        self.world().now.0
    }

    fn spawn(&self, job: u64, run: u32, spec: &LaunchSpec) -> Result<Spawned, String> {
        let devices = spec.env.iter().rev().find(|(k, _)| k == "TESSERA_DEVICES").map(|(_, v)| v.clone()).unwrap_or_default();
        let names: Vec<&str> = devices.split(',').filter(|s| !s.is_empty()).collect();
        let mut w = self.world();
        let rate = w.rate(job, &names);
        let pid = w.next_pid;
        w.next_pid += 1;
        let now = w.now;
        let remaining = w.remaining.get(&job).copied().unwrap_or(0.0);
        // As the simulator times a working phase: rounded up to the microsecond.
        let dt = Time::from_micros((remaining / rate).ceil().max(0.0) as u64);
        w.processes.insert(pid, Process { job, run, alive: true, status: None, started: now, rate });
        w.scheduled.push((now + dt, Pending::End { pid }));
        Ok(Spawned { pid, pgid: pid, start_ticks: 1, child: None })
    }

    fn watch(&self, _job: u64, _run: u32, _child: Option<tokio::process::Child>, _pid: i32, _start_ticks: u64, _tx: &tokio::sync::mpsc::UnboundedSender<Internal>) {
        // The harness tells the daemon of each exit when the world says it happens.
    }

    fn after(&self, delay: Duration, msg: Internal, _tx: &tokio::sync::mpsc::UnboundedSender<Internal>) {
        let mut w = self.world();
        let at = w.now + Time::from_micros(delay.as_micros().min(u64::MAX as u128) as u64);
        w.scheduled.push((at, Pending::Daemon(msg)));
    }

    fn is_alive(&self, pid: i32, _start_ticks: u64) -> bool {
        self.world().processes.get(&pid).is_some_and(|p| p.alive)
    }

    fn signal_group(&self, pgid: i32, signal: i32) {
        // SIGTERM: the job works on through its grace, as in the simulator.
        if signal != libc::SIGKILL {
            return;
        }
        let mut w = self.world();
        if !w.processes.get(&pgid).is_some_and(|p| p.alive) {
            return;
        }
        w.bank(pgid);
        let p = w.processes.get_mut(&pgid).expect("checked above");
        p.alive = false;
        p.status = None;
        let (job, run) = (p.job, p.run);
        w.immediate.push(Internal::Exited { job, run });
    }

    fn exit_status(&self, job: u64, run: u32, _exit_file: &Path) -> Option<i32> {
        self.world().processes.values().find(|p| p.job == job && p.run == run && !p.alive).and_then(|p| p.status)
    }

    fn find_by_token(&self, _token: &str) -> Option<(i32, u64)> {
        None
    }
}

// ---- the harness --------------------------------------------------------------------------

enum Due {
    Arrival(usize),
    End { pid: i32 },
    Daemon(Internal),
    Timer,
}

struct Harness<'w> {
    config: DaemonConfig,
    world: Arc<Mutex<JobWorld>>,
    workload: &'w Workload,
    daemon: Option<Daemon>,
    log: Vec<Logged>,
    /// `(time, sequence)` -> what is due: the simulator's total order.
    heap: BinaryHeap<Reverse<(Time, u64)>>,
    due: HashMap<u64, Due>,
    next_seq: u64,
    armed: Option<Time>,
    restarts: u32,
    submitted: usize,
    /// Kept alive so the daemon's sends to itself succeed (nothing reads them).
    _internal_rx: tokio::sync::mpsc::UnboundedReceiver<Internal>,
    internal_tx: tokio::sync::mpsc::UnboundedSender<Internal>,
}

impl<'w> Harness<'w> {
    fn new(config: DaemonConfig, world: Arc<Mutex<JobWorld>>, workload: &'w Workload) -> Result<Harness<'w>, ExecError> {
        let (internal_tx, internal_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut h = Harness {
            config,
            world,
            workload,
            daemon: None,
            log: Vec::new(),
            heap: BinaryHeap::new(),
            due: HashMap::new(),
            next_seq: 0,
            armed: None,
            restarts: 0,
            submitted: 0,
            _internal_rx: internal_rx,
            internal_tx,
        };
        h.open()?;
        Ok(h)
    }

    fn open(&mut self) -> Result<(), ExecError> {
        let backends = devices::from_config(&self.config)?;
        let host = Arc::new(VirtualHost { world: self.world.clone() });
        self.daemon = Some(Daemon::open(self.config.clone(), backends, host, self.internal_tx.clone(), true, crate::isolation::Isolation::default())?);
        Ok(())
    }

    fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("the daemon is open")
    }

    fn push(&mut self, at: Time, due: Due) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse((at, seq)));
        self.due.insert(seq, due);
    }

    /// Moves what the world scheduled into the queue, in the order it was asked for, and
    /// arms the core's timer as the simulator does (a new entry only when it changed).
    fn after_input(&mut self, now: Time) -> Result<(), ExecError> {
        loop {
            let immediate: Vec<Internal> = std::mem::take(&mut self.world.lock().unwrap_or_else(|p| p.into_inner()).immediate);
            if immediate.is_empty() {
                break;
            }
            for msg in immediate {
                self.daemon().on_internal(msg)?;
                self.daemon().flush()?;
            }
        }
        let scheduled = std::mem::take(&mut self.world.lock().unwrap_or_else(|p| p.into_inner()).scheduled);
        for (at, p) in scheduled {
            match p {
                Pending::End { pid } => self.push(at, Due::End { pid }),
                Pending::Daemon(msg) => self.push(at, Due::Daemon(msg)),
            }
        }
        if let Some(t) = self.daemon().sched.poll_timeout() {
            if self.armed != Some(t) {
                self.armed = Some(t);
                self.push(t.max(now), Due::Timer);
            }
        }
        Ok(())
    }

    fn set_now(&self, now: Time) {
        self.world.lock().unwrap_or_else(|p| p.into_inner()).now = now;
    }

    /// Drops the daemon as a SIGKILL would (every input so far was committed) and opens a
    /// new one on the same journal, which recovers every job.
    fn restart(&mut self, at: Time) -> Result<(), ExecError> {
        self.set_now(at);
        let mut old = self.daemon.take().expect("the daemon is open");
        self.log.extend(old.decision_log.take().unwrap_or_default().into_iter().map(|(at, decision)| Logged { at, decision }));
        drop(old);
        // Its timers (grace periods, retries) died with it; the new one re-arms what is left.
        self.due.retain(|_, d| !matches!(d, Due::Daemon(_)));
        self.open()?;
        self.restarts += 1;
        self.after_input(at)
    }

    fn run(&mut self, restart_at: Option<Time>) -> Result<(), ExecError> {
        let mut restart_at = restart_at;
        if let Some(first) = self.workload.jobs.first() {
            self.push(first.submit, Due::Arrival(0));
        }
        while let Some(Reverse((now, seq))) = self.heap.pop() {
            if let Some(at) = restart_at.filter(|&at| at <= now) {
                restart_at = None;
                self.restart(at)?;
                // What recovery scheduled may come before this event.
                self.heap.push(Reverse((now, seq)));
                continue;
            }
            // Timers of a daemon that was killed died with it.
            let Some(due) = self.due.remove(&seq) else { continue };
            self.set_now(now);
            match due {
                Due::Arrival(i) => {
                    if i + 1 < self.workload.jobs.len() {
                        self.push(self.workload.jobs[i + 1].submit, Due::Arrival(i + 1));
                    }
                    self.submit(i)?;
                }
                Due::End { pid } => {
                    let ended = {
                        let mut w = self.world.lock().unwrap_or_else(|p| p.into_inner());
                        match w.processes.get_mut(&pid) {
                            Some(p) if p.alive => {
                                p.alive = false;
                                p.status = Some(0);
                                let (job, run) = (p.job, p.run);
                                w.remaining.insert(job, 0.0);
                                Some((job, run))
                            }
                            _ => None,
                        }
                    };
                    match ended {
                        Some((job, run)) => {
                            self.daemon().on_internal(Internal::Exited { job, run })?;
                            self.daemon().flush()?;
                        }
                        None => continue,
                    }
                }
                Due::Daemon(msg) => {
                    self.daemon().on_internal(msg)?;
                    self.daemon().flush()?;
                }
                Due::Timer => {
                    if self.armed.is_none_or(|t| t > now) {
                        continue;
                    }
                    self.armed = None;
                    self.daemon().on_timeout()?;
                    self.daemon().flush()?;
                }
            }
            self.after_input(now)?;
            // As the simulator: once every job has arrived and ended, the run is over (a
            // round-based policy's ticks would go on for ever).
            if self.submitted == self.workload.jobs.len() && self.daemon().sched.live_jobs() == 0 {
                break;
            }
        }
        if let Some(at) = restart_at {
            // The run ended before the restart time: restart at its end all the same.
            self.restart(at)?;
        }
        Ok(())
    }

    /// Submits the i-th job of the workload through the daemon, as `POST /v1/jobs` would.
    fn submit(&mut self, i: usize) -> Result<(), ExecError> {
        let job = &self.workload.jobs[i];
        let s = &job.spec;
        let catalogue_names: Vec<String> = {
            let d = self.daemon();
            s.devices.models.iter().map(|m| d.catalogue_name(m)).collect()
        };
        let mut submission = JobSubmission::command("simulated", &[]);
        submission.name = format!("job-{}", s.id.0);
        submission.tenant = self.workload.tenants.get(s.tenant.index()).cloned().unwrap_or_default();
        submission.priority = s.priority;
        submission.devices = DeviceAsk { count: s.devices.count, share: s.devices.share_milli as f64 / 1000.0, models: catalogue_names };
        submission.cpu_milli = s.cpu_milli;
        submission.mem_mib = s.mem_mib;
        submission.stated_duration_s = s.stated_duration.map(|t| t.as_secs_f64());
        submission.job_class = self.workload.classes.get(s.class.index()).cloned();
        self.submitted += 1;
        let d = self.daemon();
        d.next_id = s.id.0;
        let id = d.submit(submission, "conform".into());
        d.flush()?;
        let id = id?;
        // The executor must have built exactly the simulator's job.
        let built = self.daemon().sched.job_view(JobId(id)).map(|v| v.spec);
        if let Some(built) = built {
            if built != *s {
                return Err(ExecError::Refused(format!("job {id}: the executor built {built:?}, the simulator {s:?}")));
            }
        }
        Ok(())
    }

    fn take_log(&mut self) -> Vec<Logged> {
        let mut log = std::mem::take(&mut self.log);
        if let Some(d) = self.daemon.as_mut() {
            log.extend(d.decision_log.take().unwrap_or_default().into_iter().map(|(at, decision)| Logged { at, decision }));
        }
        log
    }
}
