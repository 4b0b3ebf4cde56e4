//! The daemon: one actor task owns the `tessera_core::Scheduler`, the journal and the job
//! table, and drives the core exactly as the simulator does, with the wall clock for time and
//! real processes for the world.
//!
//! Inputs (commands from handles, process exits, timers, health readings) are taken in
//! batches: the first one waiting, then every other one already waiting (up to `BATCH_MAX`).
//! Each is recorded in the journal and fed to the core, whose decisions are recorded (with
//! their provenance) beside it; nothing is acted on yet. Then one transaction commits the
//! whole batch (group commit: one fsync for many inputs), and only then are the decisions
//! carried out (spawn, signal) and the callers answered. What acting produces (pids, the
//! core's reaction to a start) is committed the same way before anything acts on it in turn.
//! A crash at any point leaves a journal from which `recover` finds every job: a process whose
//! launch was committed is found again (by pid and start time, or by the run token in its
//! environment) and adopted; one that ended while the executor was down has its exit status in
//! `jobs/<id>/run-<n>.exit`; one that never started is requeued; an input whose batch was not
//! committed was never answered, acted on or broadcast.
//!
//! After a crash, or when the policy is swapped, a fresh `Scheduler` is given every live job
//! back with the core's restore API (`Scheduler::restore_job`): running jobs on the devices
//! they hold, queued jobs with their submission time, attained service and LAS promotion, and
//! the tenants' decayed usage and a round planner's state, so the new scheduler orders jobs as
//! the old one would have. That state is journalled at every commit (table `job_state`, meta
//! keys `tenant_usage` and `rounds`).

use crate::config::{DaemonConfig, HealthConfig, PolicyTables};
use tessera_core::policy::SpeedTable;
use tessera_driver::{BuiltPolicy, PolicyContext, StopCause};
use crate::devices::{self, DeviceBackend, Discovered, ModelChoice, Reading};
use crate::error::ExecError;
use crate::gate;
use crate::handle::{Command, DaemonHandle, DeviceMetrics, DeviceView, ExecEvent, Histogram, JobStatus, JobView, MetricsSnapshot, Reply};
use crate::journal::{JobRow, Journal, Stop, UnreadableRow};
use crate::host::{Host, RealHost};
use crate::isolation::{self, Isolation};
use crate::process::{self, LaunchSpec};
use crate::spec::JobSubmission;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_core::{
    Allocation, Catalogue, ClassId, ClusterState, Decision, DeviceId, DeviceRequest, Event, JobId, JobSpec, JobPhase, ModelId, ModelSet, NodeId, NodeSpec, Notice,
    BackfillSnapshot, Outcome, Policy, PolicySpec, PreemptReason, RejectReason, RestoreError, RestoredJob, RestoredRun, RoundSnapshot, RunState, SavedUsage, Scheduler, TenantId, Time,
};
use tessera_core::limits;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Most inputs taken into one batch (one journal transaction). Bounded so that a flood of
/// submissions still lets the batch's callers hear back promptly.
const BATCH_MAX: usize = 512;

/// What a rebuilt `Scheduler` is given back besides the jobs' rows.
struct Saved {
    /// Each live job's scheduler state, by job id.
    jobs: BTreeMap<u64, RestoredJob>,
    /// Tenants' remembered usage (fair share), by tenant id in this daemon.
    usage: Vec<(TenantId, SavedUsage)>,
    /// A round-based policy's state, when the policy is the one that saved it.
    rounds: Option<RoundSnapshot>,
    /// EASY's kept reservation, likewise.
    backfill: Option<BackfillSnapshot>,
}

/// Policy state as journalled (the round planner's, EASY's reservation), with the policy it
/// belongs to: another policy starts afresh.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedFor<T> {
    policy: PolicySpec,
    snapshot: T,
}

/// One device of the fleet, as discovered and as the daemon tracks it.
struct FleetDevice {
    found: Discovered,
    backend: usize,
    /// Index of its node in `Daemon::nodes`.
    node: usize,
    model: ModelId,
    model_name: String,
    drained: bool,
    /// Why the health check cordoned it.
    unhealthy: Option<String>,
    reading: Option<Reading>,
}

impl FleetDevice {
    fn out_of_service(&self) -> bool {
        self.drained || self.unhealthy.is_some()
    }
}

/// One input to the daemon.
enum Input {
    Command(Command),
    Internal(Internal),
    /// The core's timer is due.
    Timeout,
    /// Every handle is gone.
    Closed,
}

/// Messages the daemon sends itself (process exits, timers, health readings).
pub(crate) enum Internal {
    Exited { job: u64, run: u32 },
    GraceOver { job: u64, run: u32 },
    TimeLimit { job: u64, run: u32 },
    RetryLaunch { job: u64, run: u32 },
    Health { readings: Vec<Reading> },
}

/// What the daemon does to the world once the rows that justify it are committed.
enum Action {
    /// Start the current run of a job in state `Launching`.
    Launch(u64),
    /// SIGTERM the job's group, SIGKILL after the grace.
    Stop { job: u64, grace: Time },
}

/// An answer owed to a caller, sent once everything its batch caused is committed (a read is
/// deferred too, so that it never shows a change that could still be lost).
enum Answer {
    /// The job's view is taken when answering, so it shows what its batch did (launched).
    Job(Reply<JobView>, Result<u64, ExecError>),
    Jobs(Reply<Vec<JobView>>),
    Show(Reply<Option<JobView>>, u64),
    Devices(Reply<Vec<DeviceView>>),
    Done(Reply<()>, Result<(), ExecError>),
}

/// The error a caller gets when its batch could not be committed (or the daemon failed).
fn batch_failed(e: &ExecError) -> ExecError {
    match e {
        ExecError::Journal(m) => ExecError::Journal(m.clone()),
        other => ExecError::Journal(format!("the daemon stopped before committing this request: {other}")),
    }
}

pub(crate) struct Daemon {
    cfg: DaemonConfig,
    health: HealthConfig,
    journal: Journal,
    pub(crate) sched: Scheduler,
    pub(crate) policy_spec: PolicySpec,
    /// The scheduler holds the live jobs (after `recover`): its state may be journalled.
    sched_restored: bool,
    /// The tenant usage and round state last journalled, to write them only when they change.
    saved_usage: String,
    saved_rounds: String,
    saved_backfill: String,
    catalogue: Catalogue,
    /// The fleet's nodes, in `NodeId` order; the devices of each are contiguous in `fleet`.
    nodes: Vec<NodeSpec>,
    nodes_drained: Vec<bool>,
    fleet: Vec<FleetDevice>,
    backends: Arc<Vec<Box<dyn DeviceBackend>>>,
    host: Arc<dyn Host>,
    jobs: BTreeMap<u64, JobRow>,
    tenants: HashMap<String, TenantId>,
    /// The configured tenant table, job classes and speed matrix: the context every policy
    /// is built in (`tessera_driver::build_policy`), as the simulator builds it.
    tables: PolicyTables,
    speeds: SpeedTable,
    pub(crate) next_id: u64,
    last_now: Time,
    internal: mpsc::UnboundedSender<Internal>,
    events: broadcast::Sender<ExecEvent>,
    metrics: Arc<Mutex<MetricsSnapshot>>,
    launch_decided: HashMap<u64, Instant>,
    metrics_refreshed: Instant,
    /// Decided and journalled, not yet committed: carried out by `flush`.
    actions: Vec<Action>,
    /// Owed to callers of this batch: sent by `flush`.
    answers: Vec<Answer>,
    /// Jobs whose row changed since the last commit.
    dirty: BTreeSet<u64>,
    /// A timeout ran since the last commit: every live job's scheduler state is saved.
    states_stale: bool,
    /// Every decision with its time, when asked for (`tessera conform` compares them).
    pub(crate) decision_log: Option<Vec<(Time, Decision)>>,
    /// The tenants' Unix users and how jobs are contained.
    isolation: Isolation,
}

/// Seconds as a `Duration` for a timer. Every duration the daemon arms a timer with was
/// bounded by validation (`limits::MAX_DURATION_S`, in the spec and the configuration, and again
/// at recovery), so the clamp never shortens a valid one; it keeps a value that escaped
/// validation (or NaN) from panicking the actor, which `Duration::from_secs_f64` would.
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.clamp(0.0, limits::MAX_DURATION_S)).unwrap_or(Duration::ZERO)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "localhost".into())
}

/// Starts the daemon on the tokio runtime: opens and recovers the journal, discovers devices,
/// loads the policy through the gate.
pub async fn start(config: DaemonConfig) -> Result<(DaemonHandle, JoinHandle<Result<(), ExecError>>), ExecError> {
    config.validate()?;
    let mut isolation = isolation::resolve(&config, isolation::effective_uid())?;
    isolation::secure_state_dir(&config.state_dir, &config.journal_path(), isolation.other_users())?;
    if isolation.switch_user {
        for (tenant, user) in &isolation.run_as {
            isolation::check_reachable(&config.state_dir, user).map_err(|e| ExecError::invalid("state_dir", format!("tenant `{tenant}`: {e}")))?;
        }
    }
    let cgroups = crate::cgroup::Cgroups::detect(config.cgroups, &config.state_dir)?;
    isolation.cgroups = cgroups.describe();
    let enabled = cgroups.is_enabled();
    // Owned by the host from here, which removes the scope when it is dropped (a start that
    // fails below included).
    let host = Arc::new(RealHost { cgroups });
    if enabled {
        tracing::info!("job isolation: {}", isolation.cgroups);
    } else if config.cgroups != crate::cgroup::CgroupMode::Off {
        isolation.warnings.push(isolation.cgroups.clone());
    } else {
        tracing::info!("job isolation: {}", isolation.cgroups);
    }
    for w in &isolation.warnings {
        tracing::warn!("{w}");
    }
    let backends = devices::from_config(&config)?;
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let mut daemon = Daemon::open(config, backends, host, internal_tx, false, isolation)?;
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let handle = DaemonHandle { commands: cmd_tx, events: daemon.events.clone(), metrics: daemon.metrics.clone(), state_dir: daemon.cfg.state_dir.clone() };
    let health_task = spawn_health(daemon.backends.clone(), daemon.fleet.iter().map(|d| (d.backend, d.found.clone())).collect(), daemon.health.interval_s, daemon.internal.clone());
    // Aborted however the actor ends, a panic included: a dead daemon polls no device.
    let health_task = AbortOnDrop(health_task);
    let join = tokio::spawn(async move {
        let result = daemon.run(cmd_rx, internal_rx).await;
        drop(health_task);
        if let Err(e) = &result {
            tracing::error!("the daemon stopped: {e}");
        }
        result
    });
    Ok((handle, join))
}

/// The fleet the backends found, grouped into nodes: devices with no node of their own are on
/// this host's node (first, when there is any such device or no other node); the others on
/// the nodes their backend describes, in the backend's order. Devices are ordered node
/// by node, so a device's index in the fleet is its `DeviceId` in the cluster.
fn discover_fleet(config: &DaemonConfig, backends: &[Box<dyn DeviceBackend>], catalogue: &mut Catalogue) -> Result<(Vec<FleetDevice>, Vec<NodeSpec>), ExecError> {
    let mut found_all = Vec::new();
    for (b, backend) in backends.iter().enumerate() {
        let found = backend.discover().map_err(|e| ExecError::Refused(format!("{} devices: {e}", backend.name())))?;
        found_all.extend(found.into_iter().map(|d| (b, d)));
    }
    let described: Vec<devices::NodeInfo> = backends.iter().flat_map(|b| b.nodes()).collect();
    let host = config.node_name.clone().unwrap_or_else(host_name);
    let mut names: Vec<String> = Vec::new();
    if found_all.iter().any(|(_, d)| d.node.is_none()) || described.is_empty() {
        names.push(host.clone());
    }
    // Described nodes in their backend's order (a node may have no device), then any other.
    for n in &described {
        if !names.contains(&n.name) {
            names.push(n.name.clone());
        }
    }
    for (_, d) in &found_all {
        if let Some(n) = &d.node {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    let node_of = |d: &Discovered| names.iter().position(|n| Some(n) == d.node.as_ref().or(Some(&host))).unwrap_or(0);
    found_all.sort_by_key(|(_, d)| node_of(d));
    let mut nodes: Vec<NodeSpec> = Vec::new();
    for name in &names {
        let (cpu_milli, mem_mib) = match described.iter().find(|n| &n.name == name) {
            Some(info) => (info.cpu_milli, info.mem_mib),
            None => {
                let cores = crate::devices::cpu::allowed_cores().len() as u32;
                let mem_mib = config.node_mem_mib.or_else(|| crate::devices::cpu::meminfo_mib().map(|(t, _)| t)).unwrap_or(0);
                (cores * 1000, mem_mib)
            }
        };
        nodes.push(NodeSpec { name: name.clone(), devices: Vec::new(), cpu_milli, mem_mib });
    }
    let mut fleet = Vec::new();
    for (b, d) in found_all {
        let model = match &d.model {
            ModelChoice::Known(name) => catalogue.lookup(name).ok_or_else(|| {
                ExecError::invalid("cpu.model", format!("`{name}` is not in the catalogue; expected one of: {}", catalogue.names().join(", ")))
            })?,
            ModelChoice::New(m) => match catalogue.lookup(&m.name) {
                Some(id) => id,
                None => catalogue.add(m.clone()).map_err(|e| ExecError::Refused(e.to_string()))?,
            },
        };
        let node = node_of(&d);
        nodes[node].devices.push(model);
        let model_name = catalogue.name(model).to_string();
        fleet.push(FleetDevice { found: d, backend: b, node, model, model_name, drained: false, unhealthy: None, reading: None });
    }
    Ok((fleet, nodes))
}

impl Daemon {
    /// Opens the journal, finds the fleet, builds the policy in this executor's context and
    /// admits it through the gate, then recovers every job the journal holds.
    /// `log_decisions`: keep every decision with its time in `decision_log`, from recovery on.
    /// `isolation`: the tenants' users and how jobs are contained (`isolation::resolve`).
    pub(crate) fn open(
        config: DaemonConfig,
        backends: Vec<Box<dyn DeviceBackend>>,
        host: Arc<dyn Host>,
        internal: mpsc::UnboundedSender<Internal>,
        log_decisions: bool,
        isolation: Isolation,
    ) -> Result<Daemon, ExecError> {
        std::fs::create_dir_all(config.state_dir.join("jobs"))?;
        std::fs::create_dir_all(config.state_dir.join("checkpoints"))?;
        let journal = Journal::open_with(&config.journal_path(), config.journal.sync)?;
        let mut catalogue = Catalogue::built_in();
        let (mut fleet, nodes) = discover_fleet(&config, &backends, &mut catalogue)?;
        let drained = journal.drained_devices()?;
        for d in &mut fleet {
            d.drained = drained.contains(&d.found.name);
        }
        // The host's node was once the only one, its drain kept under its own key.
        let legacy_drained = journal.meta("node_drained")?.as_deref() == Some("true");
        let nodes_drained: Vec<bool> = nodes.iter().enumerate().map(|(i, n)| drained.contains(&n.name) || (i == 0 && legacy_drained)).collect();

        // The policy, built in this executor's context, through the gate.
        let tables = config.policy_tables()?;
        let speeds = tables.speeds(&catalogue)?;
        let fleet_models: Vec<ModelId> = fleet.iter().map(|d| d.model).collect();
        let built = build_in_context(&config.policy, &catalogue, &fleet_models, &tables, &speeds)?;
        let record = config.validation_record.as_deref().map(gate::read_record).transpose()?;
        let admission = gate::admit(&built.fingerprint, record.as_ref(), config.allow_unvalidated)?;
        let sched = Scheduler::new(built.policy, ClusterState::new(catalogue.clone(), nodes.iter().cloned()));
        let (events, _) = broadcast::channel(4096);
        let metrics = Arc::new(Mutex::new(MetricsSnapshot {
            decision_latency: Histogram::latency(),
            journal_commit_latency: Histogram::latency(),
            batch_inputs: Histogram::sizes(),
            launch_overhead: Histogram::latency(),
            policy_label: config.policy.label().to_string(),
            ..MetricsSnapshot::default()
        }));
        let last_now = Time(journal.last_t_us()?);
        // The fleet as this start found it, to tell at recovery whether the journal's state
        // was settled on the same devices.
        let fleet_key: Vec<(&str, &str, &str)> = fleet.iter().map(|d| (d.found.name.as_str(), d.model_name.as_str(), nodes[d.node].name.as_str())).collect();
        let fleet_key = serde_json::to_string(&fleet_key).unwrap_or_default();
        let same_fleet = journal.meta("fleet")?.as_deref() == Some(fleet_key.as_str());
        let mut daemon = Daemon {
            health: config.health.clone(),
            policy_spec: config.policy.clone(),
            nodes_drained,
            cfg: config,
            journal,
            sched,
            sched_restored: false,
            saved_usage: String::new(),
            saved_rounds: String::new(),
            saved_backfill: String::new(),
            catalogue,
            nodes,
            fleet,
            backends: Arc::new(backends),
            host,
            jobs: BTreeMap::new(),
            tenants: tables.tenants.iter().enumerate().map(|(i, t)| (t.clone(), TenantId(i as u32))).collect(),
            tables,
            speeds,
            next_id: 1,
            last_now,
            internal,
            events,
            metrics,
            launch_decided: HashMap::new(),
            metrics_refreshed: Instant::now(),
            actions: Vec::new(),
            answers: Vec::new(),
            dirty: BTreeSet::new(),
            states_stale: false,
            decision_log: log_decisions.then(Vec::new),
            isolation,
        };
        let now = daemon.now();
        let devices: Vec<_> = daemon.fleet.iter().map(|d| json!({"name": d.found.name, "model": d.model_name, "uuid": d.found.uuid, "cores": d.found.cores})).collect();
        let node_names: Vec<&str> = daemon.nodes.iter().map(|n| n.name.as_str()).collect();
        daemon.journal.event(now.0, "daemon_started", None, json!({"node": node_names.first(), "nodes": node_names, "devices": devices, "pid": std::process::id()}));
        daemon.journal.event(now.0, "policy", None, json!({"spec": daemon.policy_spec, "admission": admission}));
        let run_as: BTreeMap<&str, &str> = daemon.isolation.run_as.iter().map(|(t, u)| (t.as_str(), u.user.as_str())).collect();
        daemon.journal.event(
            now.0,
            "isolation",
            None,
            json!({"run_as": run_as, "single_user": daemon.cfg.single_user, "cgroups": daemon.isolation.cgroups, "warnings": daemon.isolation.warnings}),
        );
        daemon.journal.set_meta("policy", &serde_json::to_string(&daemon.policy_spec).unwrap_or_default());
        daemon.journal.set_meta("fleet", &fleet_key);
        daemon.commit()?;
        daemon.recover(same_fleet)?;
        daemon.flush()?;
        daemon.compact_journal();
        daemon.refresh_metrics();
        Ok(daemon)
    }
}

/// Builds `spec` as the simulator would in the same context (`tessera_driver::build_policy`).
fn build_in_context(spec: &PolicySpec, catalogue: &Catalogue, fleet_models: &[ModelId], tables: &PolicyTables, speeds: &SpeedTable) -> Result<BuiltPolicy, ExecError> {
    let ctx = PolicyContext { catalogue, fleet_models, tenants: &tables.tenants, classes: &tables.classes, speeds };
    tessera_driver::build_policy(spec, &ctx).map_err(|e| ExecError::invalid(format!("policy.{}", e.key), e.message))
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls every device's health and sends the readings to the daemon.
fn spawn_health(backends: Arc<Vec<Box<dyn DeviceBackend>>>, devices: Vec<(usize, Discovered)>, interval_s: f64, tx: mpsc::UnboundedSender<Internal>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(secs(interval_s));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let backends = backends.clone();
            let devices = devices.clone();
            let readings = tokio::task::spawn_blocking(move || {
                let mut out = vec![Reading::default(); devices.len()];
                for (b, backend) in backends.iter().enumerate() {
                    let mine: Vec<(usize, &Discovered)> = devices.iter().enumerate().filter(|(_, (db, _))| *db == b).map(|(i, (_, d))| (i, d)).collect();
                    let refs: Vec<&Discovered> = mine.iter().map(|(_, d)| *d).collect();
                    for ((i, _), r) in mine.iter().zip(backend.health(&refs)) {
                        out[*i] = r;
                    }
                }
                out
            })
            .await;
            match readings {
                Ok(readings) => {
                    if tx.send(Internal::Health { readings }).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!("health poll failed: {e}"),
            }
        }
    })
}

impl Daemon {
    // ---- time, journal, metrics ------------------------------------------------------------

    /// Wall-clock time on the journal's timeline, never going backwards.
    pub(crate) fn now(&mut self) -> Time {
        let wall = Time(self.host.now_us(self.journal.epoch_unix_us()));
        self.last_now = self.last_now.max(wall);
        self.last_now
    }

    fn unix_s(&self, t_us: u64) -> f64 {
        self.journal.epoch_unix_us().saturating_add(t_us) as f64 / 1e6
    }

    /// Commits what is pending, then tells subscribers.
    fn commit(&mut self) -> Result<(), ExecError> {
        if std::mem::take(&mut self.states_stale) && self.sched_restored {
            // A timeout changes jobs' ordering state without touching their rows (a round's
            // service, a LAS promotion): save every live job's.
            for view in self.sched.job_views() {
                self.journal.set_job_state(view.spec.id.0, Some(&view.restored))?;
            }
        }
        for id in std::mem::take(&mut self.dirty) {
            if let Some(row) = self.jobs.get(&id) {
                self.journal.row(row);
                if !row.state.is_live() {
                    self.journal.set_job_state(id, None)?;
                } else if let Some(view) = self.sched_restored.then(|| self.sched.job_view(JobId(id))).flatten() {
                    self.journal.set_job_state(id, Some(&view.restored))?;
                }
            }
        }
        if self.sched_restored && self.journal.has_pending() {
            self.save_scheduler_state();
        }
        if !self.journal.has_pending() {
            return Ok(());
        }
        let t0 = Instant::now();
        let events = self.journal.commit().inspect_err(|_| self.journal.discard_pending())?;
        if let Ok(mut m) = self.metrics.lock() {
            m.journal_commit_latency.observe(t0.elapsed().as_secs_f64());
        }
        for e in events {
            let _ = self.events.send(e);
        }
        Ok(())
    }

    /// Ends a batch: commits what it journalled, then carries out what it decided (which may
    /// journal and decide more: committed in turn before that is acted on), then answers its
    /// callers. On a failed commit nothing uncommitted is acted on, every caller of the batch
    /// gets the error (a caller whose own rows were committed in an earlier round of this
    /// batch may find its job after a restart: an error means "unknown", not "not done"), and
    /// the error is returned: the daemon stops, its memory being ahead of its journal.
    pub(crate) fn flush(&mut self) -> Result<(), ExecError> {
        let result = self.commit_and_act();
        let failed = result.as_ref().err();
        if failed.is_some() {
            self.actions.clear();
        }
        for answer in std::mem::take(&mut self.answers) {
            self.answer(answer, failed);
        }
        result
    }

    fn commit_and_act(&mut self) -> Result<(), ExecError> {
        loop {
            self.commit()?;
            if self.actions.is_empty() {
                return Ok(());
            }
            for action in std::mem::take(&mut self.actions) {
                match action {
                    Action::Launch(job) => self.launch(job)?,
                    Action::Stop { job, grace } => self.signal_stop(job, grace),
                }
            }
        }
    }

    fn answer(&self, answer: Answer, failed: Option<&ExecError>) {
        let fail = || failed.map(batch_failed);
        match answer {
            Answer::Job(reply, result) => {
                let _ = reply.send(match fail() {
                    Some(e) => Err(e),
                    None => result.and_then(|id| self.jobs.get(&id).map(|r| self.view(r)).ok_or_else(|| ExecError::NotFound(format!("job {id}")))),
                });
            }
            Answer::Jobs(reply) => {
                let _ = reply.send(fail().map_or_else(|| Ok(self.jobs.values().map(|r| self.view(r)).collect()), Err));
            }
            Answer::Show(reply, job) => {
                let _ = reply.send(fail().map_or_else(|| Ok(self.jobs.get(&job).map(|r| self.view(r))), Err));
            }
            Answer::Devices(reply) => {
                let _ = reply.send(fail().map_or_else(|| Ok(self.device_views()), Err));
            }
            Answer::Done(reply, result) => {
                let _ = reply.send(fail().map_or(result, Err));
            }
        }
    }

    /// Journals the tenants' usage (by name) and the round state when they changed.
    fn save_scheduler_state(&mut self) {
        let names: HashMap<TenantId, &str> = self.tenants.iter().map(|(n, &t)| (t, n.as_str())).collect();
        let usage: BTreeMap<&str, SavedUsage> = self.sched.tenant_usage().into_iter().filter_map(|(t, u)| Some((*names.get(&t)?, u))).collect();
        let usage = serde_json::to_string(&usage).unwrap_or_default();
        if usage != self.saved_usage {
            self.journal.set_meta("tenant_usage", &usage);
            self.saved_usage = usage;
        }
        let rounds = self.sched.round_snapshot().map(|snapshot| SavedFor { policy: self.policy_spec.clone(), snapshot });
        let rounds = rounds.map(|r| serde_json::to_string(&r).unwrap_or_default()).unwrap_or_default();
        if rounds != self.saved_rounds {
            self.journal.set_meta("rounds", &rounds);
            self.saved_rounds = rounds;
        }
        let backfill = self.sched.backfill_snapshot().map(|snapshot| SavedFor { policy: self.policy_spec.clone(), snapshot });
        let backfill = backfill.map(|b| serde_json::to_string(&b).unwrap_or_default()).unwrap_or_default();
        if backfill != self.saved_backfill {
            self.journal.set_meta("backfill", &backfill);
            self.saved_backfill = backfill;
        }
    }

    /// Marks a job's row for writing at the next commit (once, however often it changed).
    fn save(&mut self, id: u64) {
        self.dirty.insert(id);
    }

    fn refresh_metrics(&mut self) {
        self.metrics_refreshed = Instant::now();
        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        for row in self.jobs.values() {
            *by_state.entry(row.state.as_str().to_string()).or_default() += 1;
        }
        let cluster = self.sched.cluster();
        let devices = self
            .fleet
            .iter()
            .enumerate()
            .map(|(i, d)| DeviceMetrics {
                name: d.found.name.clone(),
                model: d.model_name.clone(),
                allocated_fraction: 1.0 - cluster.device(DeviceId(i as u32)).free_milli as f64 / 1000.0,
                utilization: d.reading.as_ref().and_then(|r| r.utilization),
                healthy: d.unhealthy.is_none(),
                drained: d.drained,
            })
            .collect();
        let queue_len = self.sched.queue_len() as u64;
        if let Ok(mut m) = self.metrics.lock() {
            m.queue_len = queue_len;
            m.running = by_state.get("running").copied().unwrap_or(0);
            m.jobs_by_state = by_state;
            m.devices = devices;
            m.policy_label = self.policy_spec.label().to_string();
        }
    }

    // ---- views -----------------------------------------------------------------------------

    fn view(&self, row: &JobRow) -> JobView {
        let dir = self.cfg.state_dir.join("jobs").join(row.id.to_string());
        JobView {
            id: row.id,
            name: row.submission.name.clone(),
            owner: row.owner.clone(),
            tenant: row.submission.tenant.clone(),
            priority: row.submission.priority,
            state: row.state,
            submit_unix_s: self.unix_s(row.ledger.submit.0),
            start_unix_s: row.ledger.first_start.map(|t| self.unix_s(t.0)),
            end_unix_s: row.ledger.end.map(|t| self.unix_s(t.0)),
            exit_code: row.exit_code,
            restarts: row.ledger.restarts,
            preemptions: row.ledger.preemptions,
            runs: row.ledger.runs,
            devices: row.devices.clone(),
            pid: row.pid,
            stdout_path: dir.join("stdout"),
            stderr_path: dir.join("stderr"),
            checkpoint_dir: self.cfg.state_dir.join("checkpoints").join(row.id.to_string()),
            error: row.error.clone(),
            wait_reason: row.wait_reason.clone(),
            launch_reason: row.launch_reason.clone(),
            submission: row.submission.clone(),
        }
    }

    fn device_views(&self) -> Vec<DeviceView> {
        let cluster = self.sched.cluster();
        let mut holders: HashMap<u32, Vec<u64>> = HashMap::new();
        for row in self.jobs.values().filter(|r| r.state.is_live()) {
            if let Some(a) = &row.allocation {
                for s in &a.devices {
                    holders.entry(s.device.0).or_default().push(row.id);
                }
            }
        }
        self.fleet
            .iter()
            .enumerate()
            .map(|(i, d)| DeviceView {
                name: d.found.name.clone(),
                index: i as u32,
                backend: self.backends[d.backend].name().to_string(),
                model: d.model_name.clone(),
                uuid: d.found.uuid.clone(),
                cores: d.found.cores.clone(),
                node: self.nodes[d.node].name.clone(),
                drained: d.drained,
                unhealthy: d.unhealthy.is_some(),
                health_reason: d.unhealthy.clone(),
                free_milli: cluster.device(DeviceId(i as u32)).free_milli,
                jobs: holders.remove(&(i as u32)).unwrap_or_default(),
                reading: d.reading.clone(),
            })
            .collect()
    }

    pub(crate) fn catalogue_name(&self, model: ModelId) -> String {
        self.catalogue.name(model).to_string()
    }

    fn device_names(&self, alloc: &Allocation) -> Vec<String> {
        alloc.devices.iter().map(|s| self.fleet.get(s.device.index()).map(|d| d.found.name.clone()).unwrap_or_else(|| s.device.to_string())).collect()
    }

    // ---- the core --------------------------------------------------------------------------

    /// The tenant's id: from the tenant table when there is one (an unknown tenant is an
    /// error), else numbered as tenants first appear.
    fn tenant(&mut self, name: &str) -> Result<TenantId, ExecError> {
        if let Some(&t) = self.tenants.get(name) {
            return Ok(t);
        }
        if !self.tables.tenants.is_empty() {
            return Err(ExecError::invalid("tenant", format!("no tenant `{name}` in this executor's tenant table; its tenants are: {}", self.tables.tenants.join(", "))));
        }
        let next = TenantId(self.tenants.len() as u32);
        Ok(*self.tenants.entry(name.to_string()).or_insert(next))
    }

    /// The job class's id in the speed matrix; a job without one gets a class past the
    /// table's (1.0 on every model).
    fn class(&self, name: Option<&str>) -> Result<ClassId, ExecError> {
        let past = ClassId(self.tables.classes.len() as u32);
        match name {
            None => Ok(past),
            Some(name) => match self.tables.classes.iter().position(|c| c == name) {
                Some(i) => Ok(ClassId(i as u32)),
                None if self.tables.classes.is_empty() => Ok(past),
                None => Err(ExecError::invalid("job_class", format!("no job class `{name}` in this executor's speed matrix; its classes are: {}", self.tables.classes.join(", ")))),
            },
        }
    }

    /// Builds `spec` in this executor's context.
    pub(crate) fn build_policy(&self, spec: &PolicySpec) -> Result<BuiltPolicy, ExecError> {
        let fleet_models: Vec<ModelId> = self.fleet.iter().map(|d| d.model).collect();
        build_in_context(spec, &self.catalogue, &fleet_models, &self.tables, &self.speeds)
    }

    fn model_set(&self, models: &[String]) -> Result<ModelSet, ExecError> {
        let mut set = ModelSet::ANY;
        for m in models {
            let id = self.catalogue.lookup(m).filter(|id| self.fleet.iter().any(|d| d.model == *id)).ok_or_else(|| {
                let mut here: Vec<&str> = self.fleet.iter().map(|d| d.model_name.as_str()).collect();
                here.dedup();
                ExecError::invalid("devices.models", format!("no device of model `{m}` here; this fleet has: {}", here.join(", ")))
            })?;
            set = set.with(id);
        }
        Ok(set)
    }

    fn core_spec(&mut self, id: u64, s: &JobSubmission) -> Result<JobSpec, ExecError> {
        Ok(JobSpec {
            id: JobId(id),
            tenant: self.tenant(&s.tenant)?,
            priority: s.priority,
            devices: DeviceRequest { count: s.devices.count, share_milli: s.devices.share_milli(), models: self.model_set(&s.devices.models)? },
            cpu_milli: s.cpu_milli,
            mem_mib: s.mem_mib,
            class: self.class(s.job_class.as_deref())?,
            stated_duration: s.stated_duration_s.map(Time::from_secs_f64),
            checkpoint_interval: None,
        })
    }

    /// Feeds one event to the core and records what it decides (carried out once committed).
    fn feed(&mut self, event: Event) -> Result<(), ExecError> {
        let now = self.now();
        let t0 = Instant::now();
        self.sched.handle_event(now, event);
        let drained = tessera_driver::drain(self, now);
        self.observe_decision_latency(t0);
        drained
    }

    pub(crate) fn on_timeout(&mut self) -> Result<(), ExecError> {
        self.states_stale = true;
        let now = self.now();
        let t0 = Instant::now();
        self.sched.handle_timeout(now);
        let drained = tessera_driver::drain(self, now);
        self.observe_decision_latency(t0);
        drained
    }

    fn observe_decision_latency(&self, t0: Instant) {
        if let Ok(mut m) = self.metrics.lock() {
            m.decision_latency.observe(t0.elapsed().as_secs_f64());
        }
    }

    fn record_notice(&mut self, now: Time, notice: Notice) {
        match notice {
            Notice::Waiting { job, reason } => {
                if let Some(row) = self.jobs.get_mut(&job.0) {
                    row.wait_reason = serde_json::to_value(&reason).ok();
                    self.save(job.0);
                }
            }
            Notice::Requeued { job, attained_s } => {
                if let Some(row) = self.jobs.get_mut(&job.0) {
                    row.state = JobStatus::QUEUED;
                    row.allocation = None;
                    row.stop = None;
                    self.journal.event(now.0, "requeued", Some(job.0), json!({"attained_s": attained_s}));
                    self.save(job.0);
                }
            }
            Notice::Cancelled { job } => {
                if let Some(row) = self.jobs.get_mut(&job.0) {
                    row.state = JobStatus::CANCELLED;
                    row.allocation = None;
                    row.ledger.ended(now);
                    self.journal.event(now.0, "cancelled", Some(job.0), json!({}));
                    self.save(job.0);
                }
            }
            Notice::PreemptionDeferred { job, until_s, why } => {
                self.journal.event(now.0, "preemption_deferred", Some(job.0), json!({"until_s": until_s, "why": why}));
            }
            Notice::Reserved { job, start_s, devices } => {
                self.journal.event(now.0, "reserved", Some(job.0), json!({"start_s": start_s, "devices": devices}));
            }
            Notice::Ignored { event, why } => {
                tracing::warn!("the core ignored {event}: {why}");
                self.journal.event(now.0, "core_ignored", None, json!({"event": event, "why": why}));
            }
        }
    }

    // ---- processes -------------------------------------------------------------------------

    fn job_dir(&self, id: u64) -> PathBuf {
        self.cfg.state_dir.join("jobs").join(id.to_string())
    }

    fn exit_file(&self, id: u64, run: u32) -> PathBuf {
        self.job_dir(id).join(format!("run-{run}.exit"))
    }

    fn run_token(&self, id: u64, run: u32) -> String {
        format!("{}-{id}-{run}", self.journal.epoch_unix_us())
    }

    fn launch_spec(&self, row: &JobRow) -> Result<LaunchSpec, ExecError> {
        let id = row.id;
        let dir = self.job_dir(id);
        let checkpoints = self.cfg.state_dir.join("checkpoints").join(id.to_string());
        let run_as = self.isolation.user_of(&row.submission.tenant);
        // Created for the job's user where it has one (the daemon keeps root otherwise).
        let owner = run_as.filter(|_| self.isolation.switch_user);
        isolation::prepare_job_dir(&dir, owner)?;
        isolation::prepare_job_dir(&checkpoints, owner)?;
        let alloc = row.allocation.clone().unwrap_or_default();
        // A `run_as` job starts from its user's environment, not the daemon's.
        let mut env: Vec<(String, String)> = run_as.map(isolation::job_base_env).unwrap_or_default();
        env.extend(row.submission.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut cpus: Option<Vec<usize>> = None;
        let mut gpus_bound = false;
        for (b, backend) in self.backends.iter().enumerate() {
            let mine: Vec<&Discovered> = alloc.devices.iter().filter_map(|s| self.fleet.get(s.device.index())).filter(|d| d.backend == b).map(|d| &d.found).collect();
            if mine.is_empty() {
                continue;
            }
            let binding = backend.bind(&mine);
            gpus_bound |= binding.env.iter().any(|(k, _)| k == "CUDA_VISIBLE_DEVICES");
            env.extend(binding.env);
            if let Some(c) = binding.cpus {
                cpus.get_or_insert_with(Vec::new).extend(c);
            }
        }
        if !gpus_bound {
            // A job no backend bound to a GPU sees none.
            env.push(("CUDA_VISIBLE_DEVICES".into(), String::new()));
        }
        env.push(("TESSERA_JOB_ID".into(), id.to_string()));
        env.push(("TESSERA_CHECKPOINT_DIR".into(), process::os(&checkpoints)));
        env.push(("TESSERA_RESTART_COUNT".into(), row.ledger.requeues().to_string()));
        env.push(("TESSERA_DEVICES".into(), row.devices.join(",")));
        env.push(("TESSERA_RUN_TOKEN".into(), self.run_token(id, row.ledger.runs)));
        Ok(LaunchSpec {
            program: row.submission.command.clone(),
            args: row.submission.args.clone(),
            env,
            env_clear: run_as.is_some(),
            user: owner.cloned(),
            limits: crate::cgroup::Limits { mem_mib: row.submission.mem_mib, cpu_milli: row.submission.cpu_milli },
            cgroup_procs: Vec::new(),
            workdir: row.submission.workdir.clone().unwrap_or(dir.clone()),
            stdout: dir.join("stdout"),
            stderr: dir.join("stderr"),
            exit_file: self.exit_file(id, row.ledger.runs),
            cpus,
            warmup: row.submission.warmup.clone(),
        })
    }

    /// Starts the current run of a job in state `Launching` (its launch is journalled).
    fn launch(&mut self, id: u64) -> Result<(), ExecError> {
        let Some(row) = self.jobs.get(&id) else { return Ok(()) };
        if row.state != JobStatus::LAUNCHING {
            return Ok(());
        }
        let run = row.ledger.runs;
        let retries = row.submission.retries.unwrap_or(self.cfg.launch_retries);
        let spawned = self.launch_spec(row).map_err(|e| e.to_string()).and_then(|spec| self.host.spawn(id, run, &spec));
        let now = self.now();
        match spawned {
            Ok(launched) => {
                // Decision to process start: the launch's commit and the spawn, not the commit after.
                if let Some(t0) = self.launch_decided.remove(&id) {
                    if let Ok(mut m) = self.metrics.lock() {
                        m.launch_overhead.observe(t0.elapsed().as_secs_f64());
                    }
                }
                let row = self.jobs.get_mut(&id).expect("checked above");
                row.state = JobStatus::RUNNING;
                row.pid = Some(launched.pid);
                row.pgid = Some(launched.pgid);
                row.start_ticks = Some(launched.start_ticks);
                row.ledger.run_started(now);
                let limit = row.submission.time_limit_s;
                self.journal.event(now.0, "launched", Some(id), json!({"run": run, "pid": launched.pid, "pgid": launched.pgid, "start_ticks": launched.start_ticks, "devices": row.devices}));
                self.save(id);
                self.host.watch(id, run, launched.child, launched.pid, launched.start_ticks, &self.internal);
                #[cfg(feature = "fault-injection")]
                if self.jobs.get(&id).is_some_and(|r| r.submission.name == crate::FAULT_PANIC_AFTER_SPAWN) {
                    panic!("injected fault: a panic right after spawning job {id}");
                }
                if let Some(limit) = limit {
                    self.after(secs(limit), Internal::TimeLimit { job: id, run });
                }
                self.feed(Event::JobStarted { job: JobId(id) })
            }
            Err(error) => {
                let row = self.jobs.get_mut(&id).expect("checked above");
                // Saturating: the count comes back from the journal, which could hold anything.
                row.spawn_failures = row.spawn_failures.saturating_add(1);
                let attempt = row.spawn_failures;
                self.journal.event(now.0, "spawn_failed", Some(id), json!({"run": run, "attempt": attempt, "error": error}));
                if attempt > retries {
                    row.state = JobStatus::FAILED;
                    row.ledger.ended(now);
                    row.error = Some(format!("failed to start after {attempt} attempts: {error}"));
                    row.allocation = None;
                    self.save(id);
                    self.launch_decided.remove(&id);
                    return self.feed(Event::JobFinished { job: JobId(id), outcome: Outcome::Failed });
                }
                row.error = Some(format!("start attempt {attempt} failed: {error}"));
                self.save(id);
                // `retries` is at most `limits::MAX_RETRIES`; the cap keeps the exponent an i32.
                let backoff = self.cfg.retry_backoff_s * 2f64.powi(attempt.clamp(1, 1 + limits::MAX_RETRIES) as i32 - 1);
                self.after(secs(backoff), Internal::RetryLaunch { job: id, run });
                Ok(())
            }
        }
    }

    /// Sends `msg` to the daemon after `delay`.
    fn after(&self, delay: Duration, msg: Internal) {
        self.host.after(delay, msg, &self.internal);
    }

    /// SIGTERM to the job's group, SIGKILL after `grace`; a job with no process is stopped at once.
    fn signal_stop(&mut self, id: u64, grace: Time) {
        let now = self.now();
        let Some(row) = self.jobs.get(&id) else { return };
        let run = row.ledger.runs;
        match (row.pgid, row.pid, row.start_ticks) {
            (Some(pgid), Some(pid), Some(ticks)) if self.host.is_alive(pid, ticks) => {
                if let Some(row) = self.jobs.get_mut(&id) {
                    row.stop_deadline_us = Some(now.0.saturating_add(grace.0));
                    self.dirty.insert(id);
                }
                let row = &self.jobs[&id];
                self.host.signal_group(pgid, libc::SIGTERM);
                self.journal.event(now.0, "signalled", Some(id), json!({"signal": "TERM", "grace_s": grace.as_secs_f64(), "stop": row.stop}));
                self.after(Duration::from_micros(grace.0), Internal::GraceOver { job: id, run });
            }
            _ => self.after(Duration::ZERO, Internal::Exited { job: id, run }),
        }
    }

    /// A run's process ended: learn how, journal it, tell the core.
    fn on_exited(&mut self, id: u64, run: u32) -> Result<(), ExecError> {
        let Some(row) = self.jobs.get(&id) else { return Ok(()) };
        if row.ledger.runs != run || !matches!(row.state, JobStatus::LAUNCHING | JobStatus::RUNNING | JobStatus::PREEMPTING) {
            return Ok(());
        }
        // Whatever the job left behind, in its group or its cgroup, goes with it, before its
        // end is told to anyone.
        let end = self.host.run_ended(id, run, row.pgid);
        let status = self.host.exit_status(id, run, &self.exit_file(id, run));
        let now = self.now();
        if let Some(e) = &end.cleanup_error {
            tracing::warn!("job {id} run {run}: {e}");
            self.journal.event(now.0, "cleanup_failed", Some(id), json!({"run": run, "error": e}));
        }
        let core_state = self.sched.job_state(JobId(id));
        let row = self.jobs.get_mut(&id).expect("checked above");
        row.ledger.run_stopped(now);
        row.pid = None;
        row.exit_code = status;
        let stop = row.stop;
        self.journal.event(now.0, "exited", Some(id), json!({"run": run, "exit_status": status, "stop": stop}));
        let preempting = core_state == Some(JobPhase::Preempting);
        // A preempted job that exits 0 within its grace finished its work (as the simulator
        // and Slurm count it): it is completed, not requeued. A job that stops early on
        // SIGTERM to resume later exits non-zero (143, the shell's status for SIGTERM).
        let stop = match stop {
            Some(Stop::Requeue) if status == Some(0) => {
                row.stop = None;
                None
            }
            other => other,
        };
        match stop {
            Some(Stop::Requeue) | Some(Stop::Cancel) if preempting => {
                self.journal.event(now.0, "evicted", Some(id), json!({"run": run}));
                self.save(id);
                self.feed(Event::JobEvicted { job: JobId(id) })
            }
            Some(Stop::Requeue) => {
                // The core no longer knows it is stopping (its state was rebuilt): end the run
                // and submit the job again. Its preemption was counted when it was ordered.
                row.state = JobStatus::QUEUED;
                row.allocation = None;
                row.stop = None;
                self.journal.event(now.0, "requeued", Some(id), json!({"run": run, "why": "stopped while the scheduler was rebuilt"}));
                self.save(id);
                self.feed(Event::JobFinished { job: JobId(id), outcome: Outcome::Killed })?;
                let submission = self.jobs[&id].submission.clone();
                let spec = self.core_spec(id, &submission)?;
                self.feed(Event::JobSubmitted { spec })
            }
            Some(Stop::Cancel) => {
                row.state = JobStatus::CANCELLED;
                row.ledger.ended(now);
                row.allocation = None;
                self.journal.event(now.0, "cancelled", Some(id), json!({"run": run}));
                self.save(id);
                self.feed(Event::JobFinished { job: JobId(id), outcome: Outcome::Killed })
            }
            Some(Stop::TimeLimit) => {
                row.state = JobStatus::KILLED;
                row.ledger.ended(now);
                row.allocation = None;
                row.error = Some(format!("time limit of {} s reached", row.submission.time_limit_s.unwrap_or(0.0)));
                self.journal.event(now.0, "finished", Some(id), json!({"run": run, "outcome": "killed", "exit_status": status}));
                self.save(id);
                self.feed(Event::JobFinished { job: JobId(id), outcome: Outcome::Killed })
            }
            None => {
                let outcome = match status {
                    Some(0) => Outcome::Completed,
                    _ => Outcome::Failed,
                };
                // The OOM killer struck in its cgroup and it did not recover (a job that lost a
                // helper to it and still exited 0 completed).
                let oom = outcome == Outcome::Failed && end.oom_kills > 0;
                row.state = match outcome {
                    Outcome::Completed => JobStatus::COMPLETED,
                    _ if oom => JobStatus::OOM,
                    _ => JobStatus::FAILED,
                };
                if oom {
                    row.error = Some(format!(
                        "out of memory: the kernel's OOM killer killed {} process(es) of the job at its memory limit ({} MiB{})",
                        end.oom_kills,
                        row.submission.mem_mib,
                        if row.submission.mem_mib == 0 { ", none requested: the machine's" } else { "" }
                    ));
                } else if status.is_none() {
                    row.error = Some("the job ended without an exit status (killed outside tessera?)".into());
                }
                row.ledger.ended(now);
                row.allocation = None;
                let recorded = if oom { "oom" } else if outcome == Outcome::Completed { "completed" } else { "failed" };
                self.journal.event(now.0, "finished", Some(id), json!({"run": run, "outcome": recorded, "exit_status": status, "oom_kills": end.oom_kills}));
                self.save(id);
                self.feed(Event::JobFinished { job: JobId(id), outcome })
            }
        }
    }

    pub(crate) fn on_internal(&mut self, msg: Internal) -> Result<(), ExecError> {
        match msg {
            Internal::Exited { job, run } => self.on_exited(job, run),
            Internal::GraceOver { job, run } => {
                if let Some(row) = self.jobs.get(&job) {
                    if row.ledger.runs == run && row.pid.is_some() {
                        if let (Some(pgid), Some(pid), Some(ticks)) = (row.pgid, row.pid, row.start_ticks) {
                            if self.host.is_alive(pid, ticks) {
                                // The whole run: its group and its cgroup.
                                self.host.kill_run(job, run, Some(pgid));
                                let now = self.now();
                                self.journal.event(now.0, "signalled", Some(job), json!({"signal": "KILL"}));
                            }
                        }
                    }
                }
                Ok(())
            }
            Internal::TimeLimit { job, run } => {
                let now = self.now();
                let Some(row) = self.jobs.get_mut(&job) else { return Ok(()) };
                if row.ledger.runs != run || row.state != JobStatus::RUNNING || row.stop.is_some() {
                    return Ok(());
                }
                row.stop = Some(Stop::TimeLimit);
                self.journal.event(now.0, "time_limit", Some(job), json!({"run": run, "limit_s": row.submission.time_limit_s}));
                self.save(job);
                self.actions.push(Action::Stop { job, grace: Time::from_secs_f64(self.cfg.grace_s) });
                Ok(())
            }
            Internal::RetryLaunch { job, run } => {
                if self.jobs.get(&job).is_some_and(|row| row.ledger.runs == run && row.state == JobStatus::LAUNCHING) {
                    self.actions.push(Action::Launch(job));
                }
                Ok(())
            }
            Internal::Health { readings } => self.on_health(readings),
        }
    }

    // ---- devices and health ----------------------------------------------------------------

    fn set_out_of_service(&mut self, i: usize, was_out: bool) -> Result<(), ExecError> {
        let is_out = self.fleet[i].out_of_service();
        match (was_out, is_out) {
            // A failure stops its jobs at once; an operator's drain gives them the grace.
            (false, true) if self.fleet[i].unhealthy.is_some() => self.feed(Event::DeviceFailed { device: DeviceId(i as u32) }),
            (false, true) => self.feed(Event::DeviceDrain { device: DeviceId(i as u32) }),
            (true, false) => self.feed(Event::DeviceRecovered { device: DeviceId(i as u32) }),
            _ => Ok(()),
        }
    }

    fn on_health(&mut self, readings: Vec<Reading>) -> Result<(), ExecError> {
        for (i, r) in readings.into_iter().enumerate().take(self.fleet.len()) {
            self.journal_xids(i, &r);
            self.fleet[i].reading = Some(r);
        }
        self.evaluate_health()
    }

    /// Cordons devices past the thresholds and returns those back within them.
    fn evaluate_health(&mut self) -> Result<(), ExecError> {
        for i in 0..self.fleet.len() {
            let now = self.now();
            let Some(reading) = &self.fleet[i].reading else { continue };
            let breach = devices::breach(reading, &self.health);
            let was_out = self.fleet[i].out_of_service();
            if breach == self.fleet[i].unhealthy || (breach.is_some() && self.fleet[i].unhealthy.is_some()) {
                continue;
            }
            let kind = if breach.is_some() { "device_unhealthy" } else { "device_recovered" };
            self.journal.event(now.0, kind, None, json!({"device": self.fleet[i].found.name, "why": breach, "reading": reading}));
            if let Some(why) = &breach {
                tracing::warn!("device {} cordoned: {why}", self.fleet[i].found.name);
            }
            self.fleet[i].unhealthy = breach;
            self.set_out_of_service(i, was_out)?;
        }
        Ok(())
    }

    fn drain(&mut self, target: &str, drain: bool) -> Result<(), ExecError> {
        let now = self.now();
        if let Some(n) = self.nodes.iter().position(|n| n.name == target) {
            if self.nodes_drained[n] == drain {
                return Ok(());
            }
            self.nodes_drained[n] = drain;
            self.journal.set_drained(target, drain);
            if n == 0 {
                // Read by daemons whose host node was the only node.
                self.journal.set_meta("node_drained", if drain { "true" } else { "false" });
            }
            self.journal.event(now.0, if drain { "node_drained" } else { "node_undrained" }, None, json!({"node": target}));
            let node = NodeId(n as u32);
            return self.feed(if drain { Event::NodeDrain { node } } else { Event::NodeUp { node } });
        }
        let i = self
            .fleet
            .iter()
            .position(|d| d.found.name == target || d.found.uuid.as_deref() == Some(target))
            .ok_or_else(|| ExecError::NotFound(format!("no device or node named `{target}`")))?;
        if self.fleet[i].drained == drain {
            return Ok(());
        }
        let was_out = self.fleet[i].out_of_service();
        self.fleet[i].drained = drain;
        let name = self.fleet[i].found.name.clone();
        self.journal.set_drained(&name, drain);
        self.journal.event(now.0, if drain { "device_drained" } else { "device_undrained" }, None, json!({"device": name}));
        self.set_out_of_service(i, was_out)
    }

    // ---- commands --------------------------------------------------------------------------

    pub(crate) fn submit(&mut self, submission: JobSubmission, owner: String) -> Result<u64, ExecError> {
        submission.validate()?;
        let id = self.next_id;
        // Ids come back from the journal; one that cannot grow is refused, never reused.
        let next = id.checked_add(1).ok_or_else(|| ExecError::Refused("no job id is left in this journal".into()))?;
        let spec = self.core_spec(id, &submission)?;
        self.next_id = next;
        let now = self.now();
        let row = JobRow::queued(id, owner, submission, now.0);
        self.journal.event(now.0, "submitted", Some(id), json!({"owner": row.owner, "submission": row.submission}));
        self.journal.set_meta("next_job_id", &self.next_id.to_string());
        self.jobs.insert(id, row);
        self.save(id);
        self.feed(Event::JobSubmitted { spec })?;
        Ok(id)
    }

    fn cancel(&mut self, id: u64) -> Result<u64, ExecError> {
        let now = self.now();
        let row = self.jobs.get_mut(&id).ok_or_else(|| ExecError::NotFound(format!("job {id}")))?;
        if !row.state.is_live() {
            return Err(ExecError::Refused(format!("job {id} is already {}", row.state.as_str())));
        }
        if row.state != JobStatus::QUEUED && row.stop != Some(Stop::TimeLimit) {
            row.stop = Some(Stop::Cancel);
        }
        self.journal.event(now.0, "cancel_requested", Some(id), json!({}));
        self.save(id);
        self.feed(Event::JobCancelled { job: JobId(id) })?;
        Ok(id)
    }

    fn set_policy(&mut self, spec: PolicySpec, record: Option<&tessera_core::validation::ValidationRecord>, allow_unvalidated: bool) -> Result<(), ExecError> {
        // Built before anything is journalled, so a spec the registry refuses changes nothing.
        let built = self.build_policy(&spec)?;
        let admission = gate::admit(&built.fingerprint, record, allow_unvalidated)?;
        let policy = built.policy;
        let now = self.now();
        self.journal.event(now.0, "policy", None, json!({"spec": spec, "previous": self.policy_spec, "admission": admission}));
        self.journal.set_meta("policy", &serde_json::to_string(&spec).unwrap_or_default());
        self.policy_spec = spec;
        // The jobs keep their ordering state; the new policy's rounds start afresh.
        let jobs = self.sched.job_views().into_iter().map(|v| (v.spec.id.0, v.restored)).collect();
        let saved = Saved { jobs, usage: self.sched.tenant_usage(), rounds: None, backfill: None };
        self.rebuild(policy, saved, true)?;
        self.refresh_metrics();
        Ok(())
    }

    /// Takes one command into the batch; its answer waits for the batch's commit. Returns
    /// whether the daemon stops after this batch.
    fn command(&mut self, cmd: Command) -> Result<bool, ExecError> {
        match cmd {
            Command::Submit { spec, owner, reply } => {
                let r = self.submit(*spec, owner);
                self.answers.push(Answer::Job(reply, r));
            }
            Command::List { reply } => self.answers.push(Answer::Jobs(reply)),
            Command::Show { job, reply } => self.answers.push(Answer::Show(reply, job)),
            Command::Cancel { job, reply } => {
                let r = self.cancel(job);
                self.answers.push(Answer::Job(reply, r));
            }
            Command::Drain { target, drain, reply } => {
                let r = self.drain(&target, drain);
                self.answers.push(Answer::Done(reply, r));
            }
            Command::Devices { reply } => self.answers.push(Answer::Devices(reply)),
            Command::SetPolicy { spec, record, allow_unvalidated, reply } => {
                let r = self.set_policy(*spec, record.as_deref(), allow_unvalidated);
                self.answers.push(Answer::Done(reply, r));
            }
            Command::SetHealth { health, reply } => {
                let now = self.now();
                self.journal.event(now.0, "health_thresholds", None, json!({"health": health}));
                self.health = health;
                let r = self.evaluate_health();
                self.answers.push(Answer::Done(reply, r));
            }
            Command::Shutdown { reply } => {
                let now = self.now();
                self.journal.event(now.0, "daemon_stopped", None, json!({"running_jobs_left": self.jobs.values().filter(|r| r.pid.is_some()).count()}));
                self.answers.push(Answer::Done(reply, Ok(())));
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn take(&mut self, input: Input) -> Result<bool, ExecError> {
        match input {
            Input::Command(cmd) => self.command(cmd),
            Input::Internal(msg) => self.on_internal(msg).map(|_| false),
            Input::Timeout => self.on_timeout().map(|_| false),
            Input::Closed => Ok(true),
        }
    }

    /// Takes `first` and every input already waiting behind it (up to `BATCH_MAX`) into one
    /// batch. A policy swap or a shutdown ends the batch it is in.
    fn take_batch(&mut self, first: Input, commands: &mut mpsc::Receiver<Command>, internal: &mut mpsc::UnboundedReceiver<Internal>) -> Result<bool, ExecError> {
        let mut taken = 1;
        let mut ends_batch = matches!(first, Input::Command(Command::SetPolicy { .. }));
        if self.take(first)? {
            return Ok(true);
        }
        while taken < BATCH_MAX && !ends_batch {
            let next = match commands.try_recv() {
                Ok(cmd) => Input::Command(cmd),
                Err(_) => match internal.try_recv() {
                    Ok(msg) => Input::Internal(msg),
                    Err(_) => break,
                },
            };
            taken += 1;
            ends_batch = matches!(next, Input::Command(Command::SetPolicy { .. }));
            if self.take(next)? {
                return Ok(true);
            }
        }
        if let Ok(mut m) = self.metrics.lock() {
            m.batch_inputs.observe(taken as f64);
        }
        Ok(false)
    }

    async fn run(&mut self, mut commands: mpsc::Receiver<Command>, mut internal: mpsc::UnboundedReceiver<Internal>) -> Result<(), ExecError> {
        loop {
            // A timeout beyond what an `Instant` can hold is as good as none.
            let deadline = self.sched.poll_timeout().and_then(|t| {
                let wait_us = t.0.saturating_sub(self.now().0);
                tokio::time::Instant::now().checked_add(Duration::from_micros(wait_us))
            });
            let first = tokio::select! {
                cmd = commands.recv() => cmd.map_or(Input::Closed, Input::Command),
                Some(msg) = internal.recv() => Input::Internal(msg),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => Input::Timeout,
            };
            let stop = match self.take_batch(first, &mut commands, &mut internal) {
                Ok(stop) => stop,
                Err(e) => {
                    // Nothing of this batch is committed, acted on, or answered with success.
                    self.journal.discard_pending();
                    self.dirty.clear();
                    self.actions.clear();
                    for answer in std::mem::take(&mut self.answers) {
                        self.answer(answer, Some(&e));
                    }
                    return Err(e);
                }
            };
            self.flush()?;
            self.compact_journal();
            // Cheap while the job table is small; rate-limited when it is not.
            if self.jobs.len() < 1000 || self.metrics_refreshed.elapsed() > Duration::from_millis(50) || stop {
                self.refresh_metrics();
            }
            if stop {
                return Ok(());
            }
        }
    }

    // ---- recovery and rebuilding -----------------------------------------------------------

    /// Reads the journal back after a restart and reconciles it with the processes alive.
    /// `same_fleet`: the journal was written on the devices found now.
    fn recover(&mut self, same_fleet: bool) -> Result<(), ExecError> {
        // Whether a job's state here differs from what the scheduler's journalled state says.
        let mut changed = !same_fleet;
        let (rows, unreadable) = self.journal.jobs_and_unreadable()?;
        let last_id = rows.iter().map(|r| r.id).chain(unreadable.iter().map(|u| u.id)).max();
        self.next_id = self.journal.meta("next_job_id")?.and_then(|v| v.parse().ok()).unwrap_or(1).max(last_id.map_or(1, |id| id.saturating_add(1)));
        let mut ended = Vec::new();
        let now = self.now();
        for u in unreadable {
            changed = true;
            let row = self.quarantine_unreadable(u, now)?;
            self.jobs.insert(row.id, row);
        }
        for mut row in rows {
            let id = row.id;
            if row.state.is_live() {
                if let Err(e) = row.submission.validate() {
                    changed = true;
                    self.quarantine(&mut row, now, e)?;
                    self.jobs.insert(id, row);
                    continue;
                }
            }
            if matches!(row.state, JobStatus::LAUNCHING | JobStatus::RUNNING | JobStatus::PREEMPTING) {
                let run = row.ledger.runs;
                let alive = match (row.pid, row.start_ticks) {
                    (Some(pid), Some(ticks)) if self.host.is_alive(pid, ticks) => Some((pid, ticks)),
                    (Some(_), _) => None,
                    (None, _) => self.host.find_by_token(&self.run_token(id, run)),
                };
                // Map the devices it held to this fleet by name.
                let alloc = row.allocation.clone().and_then(|mut a| {
                    for (share, name) in a.devices.iter_mut().zip(&row.devices) {
                        share.device = DeviceId(self.fleet.iter().position(|d| &d.found.name == name)? as u32);
                    }
                    Some(a)
                });
                let exit = self.host.exit_status(id, run, &self.exit_file(id, run));
                match (alive, alloc) {
                    (Some((pid, ticks)), Some(alloc)) => {
                        row.pid = Some(pid);
                        row.pgid = Some(pid);
                        row.start_ticks = Some(ticks);
                        row.allocation = Some(alloc);
                        if row.state == JobStatus::LAUNCHING {
                            row.state = JobStatus::RUNNING;
                            row.ledger.run_resumed(now);
                        }
                        self.journal.event(now.0, "adopted", Some(id), json!({"run": run, "pid": pid, "start_ticks": ticks}));
                        self.host.watch(id, run, None, pid, ticks, &self.internal);
                        if row.stop.is_some() {
                            // Its stop was under way when the executor died: start it again.
                            self.host.signal_group(pid, libc::SIGTERM);
                            let grace = if row.stop == Some(Stop::TimeLimit) { Time::from_secs_f64(self.cfg.grace_s) } else { self.sched.policy().preemption.grace };
                            // What is left of its grace; all of it if the deadline was never journalled.
                            let left = row.stop_deadline_us.map_or(grace.0, |d| d.saturating_sub(now.0));
                            self.after(Duration::from_micros(left), Internal::GraceOver { job: id, run });
                        } else if let (Some(limit), Some(start)) = (row.submission.time_limit_s, row.ledger.run_start.map(|t| t.0)) {
                            let left = (limit - now.0.saturating_sub(start) as f64 / 1e6).max(0.0);
                            self.after(secs(left), Internal::TimeLimit { job: id, run });
                        }
                    }
                    (None, Some(alloc)) if exit.is_some() => {
                        // It ended while the executor was down; its status is on disk.
                        row.allocation = Some(alloc);
                        row.state = JobStatus::RUNNING;
                        self.journal.event(now.0, "ended_while_down", Some(id), json!({"run": run, "exit_status": exit}));
                        ended.push((id, run));
                    }
                    (alive, _) => {
                        if let Some((pid, _)) = alive {
                            // Alive, but on devices this fleet no longer has: stop it.
                            self.host.kill_run(id, run, Some(pid));
                        }
                        changed = true;
                        let why = if row.pid.is_none() && alive.is_none() { "its process never started" } else { "its process is gone without an exit status" };
                        row.state = JobStatus::QUEUED;
                        row.allocation = None;
                        row.pid = None;
                        row.stop = None;
                        row.ledger.run_stopped(now);
                        self.journal.event(now.0, "requeued", Some(id), json!({"run": run, "why": why}));
                    }
                }
                self.journal.row(&row);
            }
            self.jobs.insert(id, row);
        }
        // Cgroups of runs that are over (ended or requeued while no executor ran; a job's
        // escaped process may still be in one): nothing accounts for them any more.
        let live_runs: BTreeSet<(u64, u32)> =
            self.jobs.values().filter(|r| matches!(r.state, JobStatus::LAUNCHING | JobStatus::RUNNING | JobStatus::PREEMPTING)).map(|r| (r.id, r.ledger.runs)).collect();
        let swept = self.host.sweep_runs(&|job, run| live_runs.contains(&(job, run)));
        if !swept.is_empty() {
            self.journal.event(now.0, "cgroups_swept", None, json!({"runs": swept}));
        }
        self.commit()?;
        let policy = self.build_policy(&self.policy_spec)?.policy;
        let saved = self.saved_state()?;
        self.rebuild(policy, saved, changed)?;
        self.sched_restored = true;
        for (id, run) in ended {
            self.after(Duration::ZERO, Internal::Exited { job: id, run });
        }
        Ok(())
    }

    /// Ends a live job whose journalled submission no longer passes validation (written by an
    /// older version that accepted it, or edited): acting on it could not be done safely (a time
    /// limit beyond any timer, say), and refusing to start would keep every other job down
    /// with it. Its process, if one still runs, is killed: nothing would account for its devices.
    fn quarantine(&mut self, row: &mut JobRow, now: Time, why: ExecError) -> Result<(), ExecError> {
        let (field, message) = match &why {
            ExecError::Invalid { field, message } => (field.clone(), message.clone()),
            other => (String::new(), other.to_string()),
        };
        let alive = match (row.pid, row.start_ticks) {
            (Some(pid), Some(ticks)) if self.host.is_alive(pid, ticks) => Some(pid),
            (Some(_), _) => None,
            (None, _) if row.state != JobStatus::QUEUED => self.host.find_by_token(&self.run_token(row.id, row.ledger.runs)).map(|(pid, _)| pid),
            (None, _) => None,
        };
        if let Some(pid) = alive {
            self.host.kill_run(row.id, row.ledger.runs, Some(row.pgid.unwrap_or(pid)));
        }
        let was = row.state;
        row.state = JobStatus::FAILED;
        row.ledger.ended(now);
        row.allocation = None;
        row.pid = None;
        row.pgid = None;
        row.stop = None;
        row.error = Some(format!("quarantined at recovery: its journalled submission is invalid: `{field}`: {message}"));
        self.journal.event(now.0, "quarantined", Some(row.id), json!({"was": was.as_str(), "field": field, "error": message, "killed_pid": alive}));
        self.journal.row(row);
        self.journal.set_job_state(row.id, None)
    }

    /// A job row whose text does not parse cannot be recovered: it is replaced by one that says
    /// why, with what can still be read of it (owner, submission time, the submission if that
    /// part parses), ended `failed` if it was live; the original text goes into the
    /// `quarantined` event. A process the text names that still runs is killed.
    fn quarantine_unreadable(&mut self, u: UnreadableRow, now: Time) -> Result<JobRow, ExecError> {
        let loose: serde_json::Value = serde_json::from_str(&u.text).unwrap_or_default();
        let number = |key: &str| loose.get(key).and_then(|v| v.as_u64());
        let pid = number("pid").and_then(|p| i32::try_from(p).ok());
        let alive = match (pid, number("start_ticks")) {
            (Some(pid), Some(ticks)) if self.host.is_alive(pid, ticks) => Some(pid),
            _ => None,
        };
        if let Some(pid) = alive {
            self.host.signal_group(pid, libc::SIGKILL);
        }
        let was: Option<JobStatus> = serde_json::from_value(serde_json::Value::String(u.state.clone())).ok();
        let state = was.filter(|s| !s.is_live()).unwrap_or(JobStatus::FAILED);
        let owner = loose.get("owner").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let submission = loose.get("submission").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_else(|| JobSubmission::command("<unreadable>", &[]));
        let row = JobRow {
            state,
            exit_code: loose.get("exit_code").and_then(|v| v.as_i64()).and_then(|c| i32::try_from(c).ok()),
            error: Some(format!("quarantined at recovery: its journal row does not parse: {}", u.error)),
            ..JobRow::queued(u.id, owner, submission, number("submit_us").unwrap_or(now.0))
        };
        let mut row = row;
        row.ledger.end = Some(Time(number("end_us").unwrap_or(now.0)));
        row.ledger.run = Time(number("run_us").unwrap_or(0));
        self.journal.event(now.0, "quarantined", Some(u.id), json!({"was": u.state, "error": u.error, "row": u.text, "killed_pid": alive}));
        self.journal.row(&row);
        self.journal.set_job_state(u.id, None)?;
        Ok(row)
    }

    /// The scheduler state the journal holds. A part that does not parse is discarded with a
    /// `saved_state_discarded` event naming it: the jobs then restore from their rows (as from
    /// a journal written before states were saved), usage and rounds start afresh. Losing the
    /// finer ordering state is better than refusing to start every job over it.
    fn saved_state(&mut self) -> Result<Saved, ExecError> {
        let now = self.now();
        let (jobs, unreadable) = self.journal.job_states_and_unreadable()?;
        for (id, error) in unreadable {
            self.journal.event(now.0, "saved_state_discarded", Some(id), json!({"table": "job_state", "error": error}));
        }
        let mut usage = Vec::new();
        if let Some(text) = self.journal.meta("tenant_usage")?.filter(|t| !t.is_empty()) {
            match serde_json::from_str::<BTreeMap<String, SavedUsage>>(&text) {
                Ok(by_name) => {
                    for (name, u) in by_name {
                        // A tenant that left the table keeps no usage.
                        if let Ok(t) = self.tenant(&name) {
                            usage.push((t, u));
                        }
                    }
                }
                Err(e) => self.journal.event(now.0, "saved_state_discarded", None, json!({"table": "meta", "key": "tenant_usage", "error": e.to_string()})),
            }
        }
        let mut rounds = None;
        if let Some(text) = self.journal.meta("rounds")?.filter(|t| !t.is_empty()) {
            match serde_json::from_str::<SavedFor<RoundSnapshot>>(&text) {
                // Rounds of another policy (the configuration changed) start afresh.
                Ok(saved) => rounds = (saved.policy == self.policy_spec).then_some(saved.snapshot),
                Err(e) => self.journal.event(now.0, "saved_state_discarded", None, json!({"table": "meta", "key": "rounds", "error": e.to_string()})),
            }
        }
        let mut backfill = None;
        if let Some(text) = self.journal.meta("backfill")?.filter(|t| !t.is_empty()) {
            match serde_json::from_str::<SavedFor<BackfillSnapshot>>(&text) {
                Ok(saved) => backfill = (saved.policy == self.policy_spec).then_some(saved.snapshot),
                Err(e) => self.journal.event(now.0, "saved_state_discarded", None, json!({"table": "meta", "key": "backfill", "error": e.to_string()})),
            }
        }
        Ok(Saved { jobs, usage, rounds, backfill })
    }

    /// A fresh `Scheduler` with `policy` holding every live job as it is, with the ordering
    /// state in `saved`: running jobs on the devices they hold, queued jobs in their place.
    /// Restoring decides nothing; then one pass runs, whose decisions are applied.
    ///
    /// `pass`: run that pass even when the restore was exact. A scheduler restored exactly as
    /// it was journalled, on the same fleet, is settled (nothing could start that did not),
    /// so recovery skips the pass: an extra pass would be an input the original never had
    /// (it advances fair-share usage, for one), and a restart must change no decision.
    fn rebuild(&mut self, policy: Policy, saved: Saved, pass: bool) -> Result<(), ExecError> {
        let mut pass = pass;
        let mut sched = Scheduler::new(policy, ClusterState::new(self.catalogue.clone(), self.nodes.iter().cloned()));
        let now = self.now();
        for (i, d) in self.fleet.iter().enumerate() {
            if d.out_of_service() {
                let device = DeviceId(i as u32);
                sched.handle_event(now, if d.unhealthy.is_some() { Event::DeviceFailed { device } } else { Event::DeviceDrain { device } });
            }
        }
        for (n, _) in self.nodes_drained.iter().enumerate().filter(|(_, d)| **d) {
            sched.handle_event(now, Event::NodeDrain { node: NodeId(n as u32) });
        }
        let mut decisions: Vec<Decision> = std::iter::from_fn(|| sched.poll_decision()).collect();
        // Job ids follow submission order, which is the order the scheduler numbered them in.
        let ids: Vec<(u64, bool)> = self.jobs.values().map(|r| (r.id, r.state.is_live())).collect();
        for (id, live) in ids {
            let submission = self.jobs[&id].submission.clone();
            if !live {
                // What the policy learned from it (fgd, hetero) is learned again; a job whose
                // tenant or class left the configuration teaches nothing.
                if let Ok(spec) = self.core_spec(id, &submission) {
                    sched.restore_past_job(&spec);
                }
                continue;
            }
            let spec = self.core_spec(id, &submission)?;
            // A state derived from the row (none was saved) may not be what the scheduler had.
            pass |= !saved.jobs.contains_key(&id);
            let restored = self.restored_job(id, &spec, saved.jobs.get(&id), now);
            let holding = restored.running.is_some();
            match sched.restore_job(now, spec.clone(), restored.clone()) {
                Ok(()) => {}
                Err(RestoreError::Rejected { job, reason }) => decisions.push(Decision::Reject { job, reason }),
                Err(e) if holding => {
                    pass = true;
                    // It cannot hold what it holds here: stop it and queue it again.
                    let row = self.jobs.get_mut(&id).expect("live job");
                    let run = row.ledger.runs;
                    self.host.kill_run(id, run, row.pgid.or(row.pid));
                    row.state = JobStatus::QUEUED;
                    row.allocation = None;
                    row.pid = None;
                    row.pgid = None;
                    row.stop = None;
                    row.ledger.run_stopped(now);
                    self.journal.event(now.0, "requeued", Some(id), json!({"run": run, "why": format!("restoring it failed: {e}")}));
                    let queued = RestoredJob { running: None, queued_since: now, ..restored };
                    match sched.restore_job(now, spec, queued) {
                        Ok(()) => {}
                        Err(RestoreError::Rejected { job, reason }) => decisions.push(Decision::Reject { job, reason }),
                        Err(e) => return Err(ExecError::Refused(format!("job {id}: {e}"))),
                    }
                }
                Err(e) => return Err(ExecError::Refused(format!("job {id}: {e}"))),
            }
            self.save(id);
        }
        sched.restore_tenant_usage(now, &saved.usage);
        if let Some(rounds) = &saved.rounds {
            if let Err(e) = sched.restore_rounds(now, rounds) {
                pass = true;
                self.journal.event(now.0, "rounds_not_restored", None, json!({"why": e.to_string()}));
            }
        }
        if let Some(backfill) = &saved.backfill {
            // Without it the next submission behind the head gets a fresh profile: no harm,
            // but not what the original would have decided against.
            if let Err(e) = sched.restore_backfill(backfill) {
                self.journal.event(now.0, "backfill_not_restored", None, json!({"why": e.to_string()}));
            }
        }
        while sched.poll_notice().is_some() {}
        self.sched = sched;
        pass |= !decisions.is_empty();
        for decision in decisions {
            tessera_driver::carry_out(self, now, decision)?;
        }
        if !pass {
            self.sched.finish_restore_settled();
            return Ok(());
        }
        // What a pass over the restored state decides (jobs that fit now, preemptions).
        self.sched.handle_timeout(now);
        tessera_driver::drain(self, now)
    }

    /// A live job's state for the core: as saved (exact), or derived from its row (a journal
    /// written before states were saved), with its current run as the row says.
    fn restored_job(&self, id: u64, spec: &JobSpec, saved: Option<&RestoredJob>, now: Time) -> RestoredJob {
        let row = &self.jobs[&id];
        let devices = spec.devices.device_equivalents();
        let mut r = saved.cloned().unwrap_or_else(|| {
            let attained = row.ledger.run;
            RestoredJob {
                submitted: row.ledger.submit,
                queued_since: now,
                attained,
                attained_device_s: devices * attained.as_secs_f64(),
                promoted: false,
                running: None,
                round_service: None,
            }
        });
        let holding = matches!(row.state, JobStatus::LAUNCHING | JobStatus::RUNNING | JobStatus::PREEMPTING);
        match (holding, row.allocation.clone(), r.running.take()) {
            (true, Some(allocation), saved_run) => {
                let run_started = saved_run.as_ref().map(|s| s.run_started).or(row.ledger.run_start).unwrap_or(now);
                let state = match row.state {
                    JobStatus::PREEMPTING if matches!(row.stop, Some(Stop::Requeue | Stop::Cancel)) => RunState::Preempting,
                    JobStatus::LAUNCHING if row.pid.is_none() => RunState::Launching,
                    _ => match saved_run.as_ref().map(|s| s.state) {
                        Some(RunState::Preempting) if row.stop.is_some() => RunState::Preempting,
                        _ => RunState::Running,
                    },
                };
                let preempted_for = saved_run.and_then(|s| s.preempted_for);
                r.running = Some(RestoredRun { allocation, run_started, state, cancel_requested: row.stop == Some(Stop::Cancel), preempted_for });
            }
            (_, _, Some(lost)) => {
                // Its run ended while the executor was down and it was queued again: the run
                // was service all the same.
                let ran = now - lost.run_started;
                r.attained += ran;
                r.attained_device_s += devices * ran.as_secs_f64();
                r.queued_since = now;
                r.promoted = false;
            }
            _ => {}
        }
        r
    }
}

/// The executor's world as the drain loop sees it: each decision is journalled with its
/// provenance and applied to the job's row; what it asks of the world (a spawn, a signal) is
/// queued and carried out once the batch is committed (`flush`). Launches are acknowledged
/// (`JobStarted`) after the spawn. The run loop reads the next timeout from the scheduler
/// before each wait, so arming is a no-op here.
impl tessera_driver::World for Daemon {
    type Error = ExecError;

    fn scheduler(&mut self) -> &mut Scheduler {
        &mut self.sched
    }

    fn launch(&mut self, _now: Time, job: JobId, allocation: &Allocation) -> Result<(), ExecError> {
        let devices = self.device_names(allocation);
        let Some(row) = self.jobs.get_mut(&job.0) else { return Ok(()) };
        row.state = JobStatus::LAUNCHING;
        row.ledger.launched();
        row.stop_deadline_us = None;
        row.allocation = Some(allocation.clone());
        row.devices = devices;
        row.wait_reason = None;
        row.stop = None;
        row.spawn_failures = 0;
        row.pid = None;
        row.pgid = None;
        row.start_ticks = None;
        self.launch_decided.insert(job.0, Instant::now());
        self.actions.push(Action::Launch(job.0));
        self.save(job.0);
        Ok(())
    }

    fn stop(&mut self, _now: Time, job: JobId, grace: Time, reason: &PreemptReason) -> Result<(), ExecError> {
        let Some(row) = self.jobs.get_mut(&job.0) else { return Ok(()) };
        row.state = JobStatus::PREEMPTING;
        row.ledger.stop_ordered(StopCause::of(reason));
        if row.stop.is_none() {
            row.stop = Some(if matches!(reason, PreemptReason::Cancelled) { Stop::Cancel } else { Stop::Requeue });
        }
        self.actions.push(Action::Stop { job: job.0, grace });
        self.save(job.0);
        Ok(())
    }

    fn reject(&mut self, now: Time, job: JobId, reason: &RejectReason) -> Result<(), ExecError> {
        let Some(row) = self.jobs.get_mut(&job.0) else { return Ok(()) };
        row.state = JobStatus::REJECTED;
        row.ledger.ended(now);
        row.error = Some(format!("rejected: {}", serde_json::to_string(reason).unwrap_or_default()));
        self.save(job.0);
        Ok(())
    }

    fn log_decision(&mut self, now: Time, decision: Decision) -> Result<(), ExecError> {
        let job = decision.job().0;
        let devices = self.jobs.get(&job).map(|r| r.devices.clone()).unwrap_or_default();
        if let (Decision::Launch { reason, .. }, Some(row)) = (&decision, self.jobs.get_mut(&job)) {
            row.launch_reason = serde_json::to_value(reason).ok();
        }
        let rejected = match &decision {
            Decision::Reject { reason, .. } => Some(json!({"reason": reason})),
            _ => None,
        };
        let provenance = json!({
            "decision": decision,
            "policy": {"label": self.policy_spec.label(), "spec": self.policy_spec},
            "devices": devices,
            "queue_len": self.sched.queue_len(),
        });
        self.journal.event(now.0, "decision", Some(job), provenance);
        if let Some(rejected) = rejected {
            self.journal.event(now.0, "rejected", Some(job), rejected);
        }
        if let Some(log) = &mut self.decision_log {
            log.push((now, decision));
        }
        Ok(())
    }

    fn notice(&mut self, now: Time, notice: Notice) -> Result<(), ExecError> {
        self.record_notice(now, notice);
        Ok(())
    }

    fn arm(&mut self, _now: Time, _at: Option<Time>) {}
}

// ---- journal retention (H5) ---------------------------------------------------------------------

impl Daemon {
    /// Compacts the journal when due (at start-up, then every `journal.compact_interval_s`),
    /// right after a flush so nothing is pending, and forgets the ended jobs it deleted. A
    /// failed compaction is logged and changes nothing: retention is not worth stopping for.
    fn compact_journal(&mut self) {
        let now = self.now();
        match self.journal.compact_if_due(now.0, &self.cfg.journal) {
            Ok(Some((report, event))) => {
                for id in &report.jobs_deleted {
                    if self.jobs.get(id).is_some_and(|row| !row.state.is_live()) {
                        self.jobs.remove(id);
                    }
                }
                if let Some(event) = event {
                    let _ = self.events.send(event);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("journal compaction failed (nothing deleted): {e}"),
        }
    }

    /// Journals each Xid a device's reading brings (whether it cordons is `evaluate_health`'s
    /// business, through `devices::breach`).
    fn journal_xids(&mut self, i: usize, reading: &Reading) {
        if reading.xids_new.is_empty() {
            return;
        }
        let now = self.now();
        for &xid in &reading.xids_new {
            let verdict = crate::devices::nvidia::xid_verdict(xid, &self.health.fatal_xids);
            tracing::warn!("device {}: {}", self.fleet[i].found.name, verdict.message);
            self.journal.event(now.0, "device_xid", None, json!({"device": self.fleet[i].found.name, "xid": xid, "fatal": verdict.cordon, "message": verdict.message}));
        }
    }
}
