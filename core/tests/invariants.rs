//! Property tests of the scheduler's invariants over random clusters and event sequences.
//!
//! The harness below is a tiny world: it keeps its own ledger of who holds what, built only
//! from the decisions the scheduler emits, and checks every decision against it. Nothing here
//! reads the scheduler's internals to decide whether the scheduler is right.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use tessera_core::*;

#[derive(Clone, Debug)]
enum Op {
    Submit { devices: u32, share_milli: u16, model_mask: u8, priority: i32, cpu_milli: u32, mem_mib: u64, stated_s: u32 },
    FinishOne { pick: usize },
    CancelOne { pick: usize },
    EvictPending,
    FailDevice { pick: usize },
    RecoverDevice { pick: usize },
    NodeDown { pick: usize },
    NodeDrain { pick: usize },
    NodeUp { pick: usize },
    Wait { secs: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u32..6, prop_oneof![3 => Just(1000u16), 1 => 1u16..1000], any::<u8>(), 0i32..3, 0u32..8000, 0u64..8000, 1u32..5000)
            .prop_map(|(devices, share_milli, model_mask, priority, cpu_milli, mem_mib, stated_s)| {
                Op::Submit { devices, share_milli, model_mask, priority, cpu_milli, mem_mib, stated_s }
            }),
        4 => any::<usize>().prop_map(|pick| Op::FinishOne { pick }),
        1 => any::<usize>().prop_map(|pick| Op::CancelOne { pick }),
        2 => Just(Op::EvictPending),
        1 => any::<usize>().prop_map(|pick| Op::FailDevice { pick }),
        1 => any::<usize>().prop_map(|pick| Op::RecoverDevice { pick }),
        1 => any::<usize>().prop_map(|pick| Op::NodeDown { pick }),
        1 => any::<usize>().prop_map(|pick| Op::NodeDrain { pick }),
        1 => any::<usize>().prop_map(|pick| Op::NodeUp { pick }),
        2 => (0u32..600).prop_map(|secs| Op::Wait { secs }),
    ]
}

/// Nodes as (device count, model choice 0..3, cpu cores, mem GiB).
fn cluster_shape() -> impl Strategy<Value = Vec<(usize, u8, u32, u64)>> {
    prop::collection::vec((0usize..9, 0u8..3, 1u32..16, 1u64..16), 1..6)
}

fn policy_spec() -> impl Strategy<Value = PolicySpec> {
    (0usize..7, any::<bool>(), 0u32..120, 0u32..300, 0usize..3).prop_map(|(q, best, grace, min_run, backfill)| {
        let mut spec = PolicySpec::named(["fifo", "sjf", "priority", "srtf", "las", "drf", "fair-share"][q]);
        spec.backfill = Some(["none", "easy", "conservative"][backfill].into());
        spec.thresholds_device_s = Some(vec![50.0, 500.0]);
        spec.promote_after_s = Some(300.0);
        spec.placement = Some(if best { "best-fit" } else { "first-fit" }.into());
        spec.grace_s = Some(grace as f64);
        spec.min_runtime_s = Some(min_run as f64);
        spec
    })
}

#[derive(Default)]
struct Ledger {
    device_used_milli: BTreeMap<DeviceId, u32>,
    node_cpu_used: BTreeMap<NodeId, u64>,
    node_mem_used: BTreeMap<NodeId, u64>,
    holding: BTreeMap<JobId, Allocation>,
    queued: BTreeSet<JobId>,
    running: BTreeSet<JobId>,
    preempting: BTreeSet<JobId>,
    ended: BTreeSet<JobId>,
    failed_devices: BTreeSet<DeviceId>,
    down_nodes: BTreeSet<NodeId>,
    cancel_requested: BTreeSet<JobId>,
    specs: BTreeMap<JobId, JobSpec>,
    last_wait: BTreeMap<JobId, WaitReason>,
}

struct Harness {
    sched: Scheduler,
    ledger: Ledger,
    now: Time,
    submitted: u64,
    models: Vec<ModelId>,
}

impl Harness {
    fn check_launch(&mut self, job: JobId, alloc: &Allocation) -> Result<(), TestCaseError> {
        let l = &mut self.ledger;
        prop_assert!(l.queued.remove(&job), "{job} launched but was not queued");
        let spec = &l.specs[&job];
        let cluster = self.sched.cluster();
        // Gang: exactly the requested count, distinct devices, allowed models, healthy, node up.
        prop_assert_eq!(alloc.devices.len() as u32, spec.devices.count, "{} got a partial gang", job);
        let distinct: BTreeSet<_> = alloc.devices.iter().map(|d| d.device).collect();
        prop_assert_eq!(distinct.len(), alloc.devices.len(), "{} got a device twice", job);
        for share in &alloc.devices {
            prop_assert_eq!(share.milli, spec.devices.share_milli);
            let d = cluster.device(share.device);
            prop_assert!(spec.devices.models.allows(d.model), "{job} placed on a disallowed model");
            prop_assert!(!l.failed_devices.contains(&share.device), "{job} placed on a failed device");
            prop_assert!(!l.down_nodes.contains(&d.node), "{job} placed on a down node");
            let used = l.device_used_milli.entry(share.device).or_default();
            *used += share.milli as u32;
            prop_assert!(*used <= 1000, "{} over-allocated: {} milli", share.device, used);
        }
        let cpu_total: u64 = alloc.nodes.iter().map(|n| n.cpu_milli as u64).sum();
        let mem_total: u64 = alloc.nodes.iter().map(|n| n.mem_mib).sum();
        prop_assert!(cpu_total >= spec.cpu_milli as u64 && mem_total >= spec.mem_mib, "{job} got less CPU/memory than asked");
        for n in &alloc.nodes {
            let node = cluster.node(n.node);
            let cpu = l.node_cpu_used.entry(n.node).or_default();
            *cpu += n.cpu_milli as u64;
            prop_assert!(*cpu <= node.cpu_milli_total as u64, "{} CPU over capacity", n.node);
            let mem = l.node_mem_used.entry(n.node).or_default();
            *mem += n.mem_mib;
            prop_assert!(*mem <= node.mem_mib_total, "{} memory over capacity", n.node);
        }
        l.holding.insert(job, alloc.clone());
        l.running.insert(job);
        Ok(())
    }

    fn free(&mut self, job: JobId) {
        let l = &mut self.ledger;
        if let Some(alloc) = l.holding.remove(&job) {
            for share in &alloc.devices {
                *l.device_used_milli.get_mut(&share.device).unwrap() -= share.milli as u32;
            }
            for n in &alloc.nodes {
                *l.node_cpu_used.get_mut(&n.node).unwrap() -= n.cpu_milli as u64;
                *l.node_mem_used.get_mut(&n.node).unwrap() -= n.mem_mib;
            }
        }
        l.running.remove(&job);
        l.preempting.remove(&job);
    }

    fn feed(&mut self, event: Event) -> Result<(), TestCaseError> {
        let before = self.sched.now();
        self.sched.handle_event(self.now, event);
        prop_assert!(self.sched.now() >= before, "scheduler time went backwards");
        self.drain()
    }

    fn drain(&mut self) -> Result<(), TestCaseError> {
        while let Some(d) = self.sched.poll_decision() {
            match d {
                Decision::Launch { job, allocation, reason } => {
                    prop_assert_eq!(&*reason.policy, self.sched.policy().label.as_ref());
                    if let PlacedHow::Spread { nodes } = reason.placement.how {
                        prop_assert_eq!(nodes as usize, allocation.nodes.len());
                    }
                    self.check_launch(job, &allocation)?;
                    self.sched.handle_event(self.now, Event::JobStarted { job });
                }
                Decision::Preempt { job, .. } => {
                    prop_assert!(self.ledger.running.remove(&job), "preempting {job}, which is not running");
                    self.ledger.preempting.insert(job);
                }
                Decision::Reject { job, .. } => {
                    prop_assert!(self.ledger.queued.remove(&job), "rejected {job}, which was not submitted");
                    self.ledger.ended.insert(job);
                }
            }
        }
        while let Some(n) = self.sched.poll_notice() {
            match n {
                // Notices and decisions are separate queues, so their relative order is not
                // kept: the harness books cancellations and requeues from what it sent.
                Notice::Cancelled { job } => prop_assert!(self.ledger.ended.contains(&job)),
                Notice::Requeued { job, .. } => prop_assert!(!self.ledger.ended.contains(&job)),
                Notice::Ignored { event, why } => prop_assert!(false, "harness sent a wrong event: {event}: {why}"),
                Notice::Waiting { job, reason } => {
                    self.ledger.last_wait.insert(job, reason);
                }
                _ => {}
            }
        }
        if let Some(t) = self.sched.poll_timeout() {
            prop_assert!(t > Time::ZERO);
        }
        Ok(())
    }
}

fn pick<T: Copy>(set: impl IntoIterator<Item = T>, i: usize) -> Option<T> {
    let v: Vec<T> = set.into_iter().collect();
    (!v.is_empty()).then(|| v[i % v.len()])
}

fn run_case(shape: Vec<(usize, u8, u32, u64)>, spec: PolicySpec, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let catalogue = Catalogue::built_in();
    let models: Vec<ModelId> = ["V100-32GB", "A100-80GB", "T4"].iter().map(|n| catalogue.lookup(n).unwrap()).collect();
    let nodes: Vec<NodeSpec> = shape
        .iter()
        .enumerate()
        .map(|(i, &(n, m, cpu, mem))| NodeSpec {
            name: format!("n{i}"),
            devices: vec![models[m as usize]; n],
            cpu_milli: cpu * 1000,
            mem_mib: mem * 1024,
        })
        .collect();
    let policy = Policy::from_spec(&spec).unwrap();
    let mut h = Harness {
        sched: Scheduler::new(policy, ClusterState::new(catalogue, nodes)),
        ledger: Ledger::default(),
        now: Time::ZERO,
        submitted: 0,
        models: models.clone(),
    };
    let device_count = h.sched.cluster().devices().len();
    let node_count = h.sched.cluster().nodes().len();
    for op in ops {
        h.now += Time::from_secs(1);
        match op {
            Op::Submit { devices, share_milli, model_mask, priority, cpu_milli, mem_mib, stated_s } => {
                h.submitted += 1;
                let mut models = ModelSet::ANY;
                for (i, &m) in h.models.iter().enumerate() {
                    if model_mask & (1 << i) != 0 {
                        models = models.with(m);
                    }
                }
                let (count, share_milli) = if share_milli < 1000 { (1, share_milli) } else { (devices, 1000) };
                let spec = JobSpec {
                    id: JobId(h.submitted),
                    tenant: TenantId((h.submitted % 3) as u32),
                    priority,
                    devices: DeviceRequest { count, share_milli, models },
                    cpu_milli,
                    mem_mib,
                    class: ClassId(0),
                    stated_duration: Some(Time::from_secs(stated_s as u64)),
                    checkpoint_interval: None,
                };
                h.ledger.specs.insert(spec.id, spec.clone());
                h.ledger.queued.insert(spec.id);
                h.feed(Event::JobSubmitted { spec })?;
            }
            Op::FinishOne { pick: i } => {
                if let Some(job) = pick(h.ledger.running.iter().chain(h.ledger.preempting.iter()).copied(), i) {
                    h.free(job);
                    h.ledger.cancel_requested.remove(&job);
                    h.ledger.ended.insert(job);
                    h.feed(Event::JobFinished { job, outcome: Outcome::Completed })?;
                }
            }
            Op::CancelOne { pick: i } => {
                if let Some(job) = pick(h.ledger.queued.iter().chain(h.ledger.running.iter()).copied(), i) {
                    if h.ledger.queued.remove(&job) {
                        h.ledger.ended.insert(job);
                    } else {
                        h.ledger.cancel_requested.insert(job);
                    }
                    h.feed(Event::JobCancelled { job })?;
                }
            }
            Op::EvictPending => {
                for job in h.ledger.preempting.clone() {
                    h.free(job);
                    if h.ledger.cancel_requested.remove(&job) {
                        h.ledger.ended.insert(job);
                    } else {
                        h.ledger.queued.insert(job);
                    }
                    h.feed(Event::JobEvicted { job })?;
                }
            }
            Op::FailDevice { pick: i } if device_count > 0 => {
                let device = DeviceId((i % device_count) as u32);
                h.ledger.failed_devices.insert(device);
                h.feed(Event::DeviceFailed { device })?;
            }
            Op::RecoverDevice { pick: i } => {
                if let Some(device) = pick(h.ledger.failed_devices.iter().copied(), i) {
                    h.ledger.failed_devices.remove(&device);
                    h.feed(Event::DeviceRecovered { device })?;
                }
            }
            Op::NodeDown { pick: i } => {
                let node = NodeId((i % node_count) as u32);
                h.ledger.down_nodes.insert(node);
                h.feed(Event::NodeDown { node })?;
            }
            Op::NodeDrain { pick: i } => {
                let node = NodeId((i % node_count) as u32);
                h.ledger.down_nodes.insert(node);
                h.feed(Event::NodeDrain { node })?;
            }
            Op::NodeUp { pick: i } => {
                if let Some(node) = pick(h.ledger.down_nodes.iter().copied(), i) {
                    h.ledger.down_nodes.remove(&node);
                    h.feed(Event::NodeUp { node })?;
                }
            }
            Op::Wait { secs } => {
                h.now += Time::from_secs(secs as u64);
                if h.sched.poll_timeout().is_some_and(|t| t <= h.now) {
                    h.sched.handle_timeout(h.now);
                    h.drain()?;
                }
            }
            Op::FailDevice { .. } => {}
        }
        // Every job is in exactly one place, and the scheduler agrees on which are live.
        let l = &h.ledger;
        let live = l.queued.len() + l.running.len() + l.preempting.len();
        prop_assert_eq!(live + l.ended.len(), h.submitted as usize, "a job was lost or duplicated");
        prop_assert_eq!(h.sched.live_jobs(), live, "scheduler and harness disagree on live jobs");
        prop_assert_eq!(h.sched.queue_len(), l.queued.len());
        for &job in &l.queued {
            prop_assert_eq!(h.sched.job_state(job), Some(JobPhase::Queued));
        }
        // Strict order: if anything is queued, the head cannot start now (or awaits victims).
        if let Some(head) = h.sched.queued().next() {
            let spec = &l.specs[&head];
            let fits = h.sched.policy().placement.place(h.sched.cluster(), spec, &tessera_core::policy::PlaceContext::default()).is_ok();
            // Under an order that ranks tenants, the oldest job may be held by the
            // reservation of a higher-ranked tenant's blocked head (backfilling).
            let held = matches!(l.last_wait.get(&head), Some(WaitReason::Reservation { .. }));
            prop_assert!(!fits || !l.preempting.is_empty() || held, "{head} heads the queue but would fit now");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn scheduler_invariants_hold(shape in cluster_shape(), spec in policy_spec(), ops in prop::collection::vec(op(), 1..120)) {
        run_case(shape, spec, ops)?;
    }
}
