//! From a scenario to what a run consumes: the nodes of the cluster and the jobs, in
//! submission order, with their true work.

use crate::dist::Sampler;
use crate::scenario::{ClusterFormat, Scenario, ScenarioError, SyntheticSpec, TraceSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet};
use tessera_core::limits;
use tessera_core::{
    Catalogue, ClassId, DeviceRequest, JobId, JobSpec, ModelSet, NodeSpec, TenantId, Time, WHOLE_DEVICE_MILLI,
};

/// The generator stream for workload draws; stream 0 is reserved for the world models, so a
/// change in the workload does not shift failures or contention and vice versa.
pub const WORKLOAD_STREAM: u64 = 1;

/// One job as the simulator feeds it.
#[derive(Clone, Debug, PartialEq)]
pub struct SimJob {
    pub spec: JobSpec,
    pub submit: Time,
    /// Duration on the reference device (speed 1.0); the true work, which the scheduler only
    /// sees as `spec.stated_duration`.
    pub work: Time,
    /// Whether `spec.stated_duration` is what the trace says the job declared (the native
    /// `stated_duration_s` column) rather than derived from `work`; `[models.estimate_error]`
    /// leaves such a job's stated duration as it is.
    pub stated_by_trace: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Workload {
    /// Sorted by `(submit, original order)`.
    pub jobs: Vec<SimJob>,
    /// Tenant names, indexed by `TenantId`.
    pub tenants: Vec<String>,
    /// Job class names, indexed by `ClassId`.
    pub classes: Vec<String>,
    /// Relative speeds the trace brings: (class, model, speed), e.g. Gavel's throughput table.
    pub speed: Vec<(String, String, f64)>,
    /// What the loader repaired or assumed, for the user to read.
    pub notes: Vec<String>,
}

/// The catalogue (built-in plus the scenario's models) and one `NodeSpec` per node.
pub fn build_cluster(s: &Scenario) -> Result<(Catalogue, Vec<NodeSpec>), ScenarioError> {
    let catalogue = s.catalogue()?;
    let mut nodes = trace_nodes(s, &catalogue)?;
    // Groups that share a prefix keep counting, so node names stay unique.
    let mut next_index: HashMap<String, u32> = HashMap::new();
    for (i, group) in s.cluster.nodes.iter().enumerate() {
        nodes.extend(group_nodes(s, group, &format!("cluster.nodes[{i}]"), &catalogue, &mut next_index)?);
    }
    Ok((catalogue, nodes))
}

/// The nodes of one group, named `<prefix>-<index>`, with `next_index` counting per prefix.
pub fn group_nodes(
    s: &Scenario,
    group: &crate::scenario::NodeGroupSpec,
    prefix_key: &str,
    catalogue: &Catalogue,
    next_index: &mut HashMap<String, u32>,
) -> Result<Vec<NodeSpec>, ScenarioError> {
    let mut devices = Vec::new();
    let mut first_model = None;
    if let Some(node_devices) = &group.devices {
        for (j, g) in node_devices.groups().iter().enumerate() {
            let key = format!("{}.model", node_devices.key(prefix_key, j));
            let model = s.lookup_model(catalogue, &key, &g.model)?;
            first_model.get_or_insert(model);
            devices.extend(std::iter::repeat_n(model, g.count as usize));
        }
    }
    let prefix = match (&group.name, first_model) {
        (Some(name), _) => name.clone(),
        (None, Some(model)) => catalogue.name(model).to_ascii_lowercase(),
        (None, None) => "cpu".to_string(),
    };
    let cpu_milli = (group.cpu_cores * 1000.0).round() as u32;
    let mem_mib = (group.mem_gib * 1024.0).round() as u64;
    let index = next_index.entry(prefix.clone()).or_insert(0);
    let mut nodes = Vec::with_capacity(group.count as usize);
    for _ in 0..group.count {
        nodes.push(NodeSpec { name: format!("{prefix}-{index}"), devices: devices.clone(), cpu_milli, mem_mib });
        *index += 1;
    }
    Ok(nodes)
}

/// For each name prefix (`a100` of `a100-7`), the next free index among `nodes`.
pub fn next_indexes(nodes: &[NodeSpec]) -> HashMap<String, u32> {
    let mut next: HashMap<String, u32> = HashMap::new();
    for n in nodes {
        if let Some((prefix, index)) = n.name.rsplit_once('-') {
            if let Ok(i) = index.parse::<u32>() {
                let e = next.entry(prefix.to_string()).or_insert(0);
                *e = (*e).max(i + 1);
            }
        }
    }
    next
}

/// Nodes from the scenario's node-list trace, if it names one (before any `[[cluster.nodes]]`).
fn trace_nodes(s: &Scenario, catalogue: &Catalogue) -> Result<Vec<NodeSpec>, ScenarioError> {
    let (Some(format), Some(path)) = (s.cluster.format, &s.cluster.path) else {
        return Ok(Vec::new());
    };
    let bad = |e: tessera_traces::TraceError| ScenarioError::invalid(&s.path, "cluster.path", e.to_string());
    match format {
        ClusterFormat::Openb => {
            let mut nodes = Vec::new();
            for node in tessera_traces::openb::load_nodes(path).map_err(bad)? {
                let devices = match &node.model {
                    Some(code) => {
                        let name = tessera_traces::openb::model_name(code);
                        let model = catalogue.lookup(name).ok_or_else(|| {
                            ScenarioError::invalid(&s.path, "cluster.path", format!("{}: line {}: unknown GPU model `{code}`", path.display(), node.line))
                        })?;
                        vec![model; node.gpus as usize]
                    }
                    None => Vec::new(),
                };
                nodes.push(NodeSpec { name: node.name, devices, cpu_milli: node.cpu_milli, mem_mib: node.mem_mib });
            }
            Ok(nodes)
        }
        ClusterFormat::Tiresias => {
            let spec = tessera_traces::tiresias::load_cluster_spec(path).map_err(bad)?;
            let model_name = s.cluster.model.as_deref().unwrap_or_default();
            let model = s.lookup_model(catalogue, "cluster.model", model_name)?;
            let count = spec.nodes();
            Ok((0..count)
                .map(|i| NodeSpec {
                    name: format!("tiresias-{i}"),
                    devices: vec![model; spec.gpus_per_node as usize],
                    cpu_milli: spec.cpus_per_node.saturating_mul(1000),
                    mem_mib: (spec.mem_gb_per_node as u64).saturating_mul(1024),
                })
                .collect())
        }
    }
}

/// The jobs of one replication. Synthetic workloads depend on `seed`; traces do not.
pub fn build_workload(s: &Scenario, catalogue: &Catalogue, seed: u64) -> Result<Workload, ScenarioError> {
    let workload = match (&s.workload.synthetic, &s.workload.trace) {
        (Some(spec), None) => synthetic(s, spec, seed)?,
        (None, Some(trace)) => from_trace(s, trace, catalogue)?,
        _ => return Err(ScenarioError::invalid(&s.path, "workload", "expected exactly one of `synthetic` and `trace`")),
    };
    let mut workload = transform(s, workload)?;
    apply_estimate_error(s, &mut workload, seed)?;
    Ok(workload)
}

/// Stream 2 of the run's seed: the error in what jobs state (stream 0 is the world's, 1 the
/// workload's), so turning the model on does not change the jobs themselves.
const ESTIMATE_STREAM: u64 = 2;

/// Each job's stated duration (what SJF and backfilling see) becomes its true work times a
/// draw from the scenario's error factor, except where the trace gives the duration the job
/// declared: that is already a real estimate, with its real error, and a second error on top
/// of it would model nothing. Every job takes its draw all the same, so whether one job has a
/// stated duration in the trace does not change the factors the others get.
fn apply_estimate_error(s: &Scenario, w: &mut Workload, seed: u64) -> Result<(), ScenarioError> {
    let Some(error) = &s.models.estimate_error else { return Ok(()) };
    let factor = error.factor.build().map_err(|m| ScenarioError::invalid(&s.path, "models.estimate_error.factor", m))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(ESTIMATE_STREAM);
    for job in &mut w.jobs {
        let stated = job.work.as_secs_f64() * factor.sample(&mut rng);
        if !job.stated_by_trace {
            job.spec.stated_duration = Some(Time::from_secs_f64(stated).max(Time(1)));
        }
    }
    Ok(())
}

/// The scenario's workload transforms, in this order: tenant filter, time window (re-based to
/// its start), first N jobs, load scaling (submission gaps divided by the factor, from the
/// first submission), device-count cap.
fn transform(s: &Scenario, mut w: Workload) -> Result<Workload, ScenarioError> {
    let spec = &s.workload;
    if let Some(names) = &spec.only_tenants {
        let mut keep = vec![false; w.tenants.len()];
        for (i, name) in names.iter().enumerate() {
            let t = w.tenants.iter().position(|t| t == name).ok_or_else(|| {
                let known = w.tenants.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
                ScenarioError::invalid(&s.path, format!("workload.only_tenants[{i}]"), format!("no tenant `{name}` in the workload; it has: {known}"))
            })?;
            keep[t] = true;
        }
        w.jobs.retain(|j| keep[j.spec.tenant.index()]);
    }
    if let Some([start, end]) = spec.window_s {
        let (start, end) = (Time::from_secs_f64(start), Time::from_secs_f64(end));
        w.jobs.retain(|j| j.submit >= start && j.submit < end);
        for j in &mut w.jobs {
            j.submit = j.submit - start;
        }
    }
    if let Some(n) = spec.first_jobs {
        w.jobs.truncate(n.min(usize::MAX as u64) as usize);
    }
    if let Some(factor) = spec.load_scale {
        if let Some(t0) = w.jobs.first().map(|j| j.submit) {
            for j in &mut w.jobs {
                j.submit = t0 + Time::from_secs_f64((j.submit - t0).as_secs_f64() / factor);
            }
        }
    }
    if let Some(cap) = spec.max_devices {
        for j in &mut w.jobs {
            j.spec.devices.count = j.spec.devices.count.min(cap);
        }
    }
    if w.jobs.is_empty() {
        return Err(ScenarioError::invalid(&s.path, "workload", "no job is left after the workload's filters"));
    }
    Ok(w)
}

fn synthetic(s: &Scenario, spec: &SyntheticSpec, seed: u64) -> Result<Workload, ScenarioError> {
    let build = |name: &str, dist: &crate::dist::DistSpec| -> Result<Sampler, ScenarioError> {
        dist.build().map_err(|m| ScenarioError::invalid(&s.path, format!("workload.synthetic.{name}"), m))
    };
    let interarrival = build("interarrival", &spec.interarrival)?;
    let duration = build("duration", &spec.duration)?;
    let devices = build("devices", &spec.devices)?;
    let priority = build("priority", &spec.priority)?;
    if spec.classes.is_empty() || spec.tenants == 0 {
        return Err(ScenarioError::invalid(&s.path, "workload.synthetic", "needs at least one class and one tenant"));
    }
    let cpu_milli_per_device = spec.cpu_cores_per_device * 1000.0;
    let mem_mib_per_device = spec.mem_gib_per_device * 1024.0;
    let class_count = spec.classes.len() as u32;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(WORKLOAD_STREAM);
    let n = spec.jobs as usize;
    let mut jobs = Vec::with_capacity(n);
    let mut submit = Time::ZERO;
    let max_time = Time::from_secs_f64(limits::MAX_DURATION_S);
    // Validation bounded the distributions' ranges (or, unbounded, their means); a draw from a
    // tail beyond the bounds is refused here rather than saturated or capped unseen.
    let beyond = |name: &str, i: usize, what: String| {
        ScenarioError::invalid(&s.path, format!("workload.synthetic.{name}"), format!("job {}: {what}", i + 1))
    };
    for i in 0..n {
        // Draws in a fixed order per job, so one seed always gives the same jobs.
        submit += Time::from_secs_f64(interarrival.sample(&mut rng));
        if submit > max_time {
            let at = submit.as_secs_f64();
            return Err(beyond("interarrival", i, format!("arrives at {at:?} s, beyond the bound of {} on arrival times", limits::MAX_DURATION_TEXT)));
        }
        let drawn = duration.sample(&mut rng);
        if drawn > limits::MAX_DURATION_S {
            return Err(beyond("duration", i, format!("drew {drawn:?} s, beyond the bound of {}", limits::MAX_DURATION_TEXT)));
        }
        let work = Time::from_secs_f64(drawn).max(Time(1));
        let drawn = devices.sample(&mut rng).round();
        if !(0.0..=f64::from(limits::MAX_DEVICES_PER_JOB)).contains(&drawn) {
            return Err(beyond("devices", i, format!("drew {drawn:?} devices, outside [0, {}]", limits::MAX_DEVICES_PER_JOB)));
        }
        // A draw of 0 is one device: synthetic jobs are device jobs.
        let device_count = (drawn as u32).max(1);
        let tenant = if spec.tenants > 1 { rng.random_range(0..spec.tenants) } else { 0 };
        let class = if class_count > 1 { rng.random_range(0..class_count) } else { 0 };
        let priority = priority.sample(&mut rng).round() as i32;
        jobs.push(SimJob {
            spec: JobSpec {
                id: JobId(i as u64 + 1),
                tenant: TenantId(tenant),
                priority,
                devices: DeviceRequest::whole(device_count),
                cpu_milli: (cpu_milli_per_device * device_count as f64).round() as u32,
                mem_mib: (mem_mib_per_device * device_count as f64).round() as u64,
                class: ClassId(class),
                stated_duration: Some(work),
                checkpoint_interval: None,
            },
            submit,
            work,
            stated_by_trace: false,
        });
    }
    // Cumulative arrivals are already in order: no sort needed.
    Ok(Workload {
        jobs,
        tenants: (0..spec.tenants).map(|t| format!("tenant-{t}")).collect(),
        classes: spec.classes.clone(),
        speed: Vec::new(),
        notes: Vec::new(),
    })
}

/// Interns strings to dense indices in first-seen order.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }
}

fn from_trace(s: &Scenario, trace: &TraceSpec, catalogue: &Catalogue) -> Result<Workload, ScenarioError> {
    let key = "workload.trace.path";
    let loaded = tessera_traces::source::load(trace.format, &trace.path, &trace.options)
        .map_err(|e| ScenarioError::invalid(&s.path, key, e.to_string()))?;
    let rows = loaded.jobs;
    let (trace_speed, notes) = (loaded.speed, loaded.notes);
    let file = trace.path.display();
    let bad =
        |line: u64, message: String| ScenarioError::invalid(&s.path, key, format!("{file}: line {line}: {message}"));
    let mut tenants = Interner::default();
    let mut classes = Interner::default();
    let mut seen_ids = HashSet::with_capacity(rows.len());
    let mut jobs = Vec::with_capacity(rows.len());
    for row in &rows {
        if !seen_ids.insert(row.job_id) {
            return Err(bad(row.line, format!("job id {} appears twice", row.job_id)));
        }
        if !(row.submit_s.is_finite() && row.submit_s >= 0.0) {
            return Err(bad(row.line, format!("expected a non-negative submit time, found {}", row.submit_s)));
        }
        if !(row.duration_s.is_finite() && row.duration_s >= 0.0) {
            return Err(bad(row.line, format!("expected a non-negative duration, found {}", row.duration_s)));
        }
        let mut request = device_request(row.devices).map_err(|m| bad(row.line, m))?;
        for name in &row.models {
            let model = catalogue.lookup(name).ok_or_else(|| {
                bad(
                    row.line,
                    format!("unknown device model `{name}`, expected one of: {}", catalogue.names().join(", ")),
                )
            })?;
            request.models = request.models.with(model);
        }
        let work = Time::from_secs_f64(row.duration_s).max(Time(1));
        jobs.push(SimJob {
            spec: JobSpec {
                id: JobId(row.job_id),
                tenant: TenantId(tenants.intern(&row.tenant)),
                priority: row.priority,
                devices: request,
                cpu_milli: row.cpu_milli,
                mem_mib: row.mem_mib,
                class: ClassId(classes.intern(&row.job_class)),
                // As the executor converts a submission's `stated_duration_s` (a stated 0 stays 0).
                stated_duration: Some(row.stated_duration_s.map_or(work, Time::from_secs_f64)),
                checkpoint_interval: None,
            },
            submit: Time::from_secs_f64(row.submit_s),
            work,
            stated_by_trace: row.stated_duration_s.is_some(),
        });
    }
    // Stable: jobs submitted at the same instant keep the trace's order.
    jobs.sort_by_key(|j| j.submit);
    Ok(Workload { jobs, tenants: tenants.names, classes: classes.names, speed: trace_speed, notes })
}

/// A trace's device figure as a request: a whole count, or a share of one device below 1.
fn device_request(devices: f64) -> Result<DeviceRequest, String> {
    if !(devices.is_finite() && devices >= 0.0) {
        return Err(format!("expected a non-negative device count, found {devices}"));
    }
    if devices == 0.0 {
        // A CPU-only job.
        return Ok(DeviceRequest { count: 0, share_milli: WHOLE_DEVICE_MILLI, models: ModelSet::ANY });
    }
    if devices < 1.0 {
        // A share that rounds to nothing still needs some of a device; one that rounds to
        // the whole device is a whole device.
        let share = (devices * WHOLE_DEVICE_MILLI as f64).round().clamp(1.0, WHOLE_DEVICE_MILLI as f64) as u16;
        return Ok(DeviceRequest { count: 1, share_milli: share, models: ModelSet::ANY });
    }
    if devices.fract() != 0.0 || devices > u32::MAX as f64 {
        return Err(format!("expected a whole number of devices, or a share below 1, found {devices}"));
    }
    Ok(DeviceRequest::whole(devices as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(synthetic: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\nseed = 3\n[[cluster.nodes]]\ncount = 2\ndevices = {{ model = \"T4\", count = 4 }}\ncpu_cores = 8\nmem_gib = 32\n\
             [[cluster.nodes]]\ncpu_cores = 64\n[[cluster.nodes]]\ndevices = [{{ model = \"T4\" }}, {{ model = \"A10\", count = 2 }}]\n\
             [workload]\nsynthetic = {{ {synthetic} }}\n[[policies]]\nname = \"fifo\"\n"
        );
        Scenario::from_toml_str(&text, Path::new("mem.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    const BASIC: &str = "jobs = 1000, interarrival = { dist = \"exponential\", mean_s = 10 }, duration = { dist = \"lognormal\", mean_s = 100, sigma = 1 }";

    #[test]
    fn cluster_nodes_are_named_and_counted() {
        let s = scenario(BASIC);
        let (catalogue, nodes) = build_cluster(&s).unwrap();
        let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["t4-0", "t4-1", "cpu-0", "t4-2"]);
        assert_eq!(nodes[0].devices.len(), 4);
        assert_eq!(nodes[0].cpu_milli, 8000);
        assert_eq!(nodes[0].mem_mib, 32 * 1024);
        assert!(nodes[2].devices.is_empty());
        let a10 = catalogue.lookup("A10").unwrap();
        assert_eq!(nodes[3].devices.iter().filter(|&&m| m == a10).count(), 2);
    }

    #[test]
    fn synthetic_jobs_follow_the_spec() {
        let s = scenario(&format!(
            "{BASIC}, devices = {{ dist = \"choice\", values = [1, 2, 4] }}, tenants = 3, classes = [\"a\", \"b\"], \
             cpu_cores_per_device = 2.5, mem_gib_per_device = 1.5, priority = {{ dist = \"uniform\", min_s = -2, max_s = 2 }}"
        ));
        let (catalogue, _) = build_cluster(&s).unwrap();
        let w = build_workload(&s, &catalogue, 11).unwrap();
        assert_eq!(w.jobs.len(), 1000);
        assert_eq!(w.tenants, ["tenant-0", "tenant-1", "tenant-2"]);
        assert_eq!(w.classes, ["a", "b"]);
        assert!(w.jobs.windows(2).all(|p| p[0].submit <= p[1].submit));
        assert!(w.jobs[0].submit > Time::ZERO, "the first job arrives after one interarrival draw");
        for (i, j) in w.jobs.iter().enumerate() {
            assert_eq!(j.spec.id, JobId(i as u64 + 1));
            assert!([1, 2, 4].contains(&j.spec.devices.count));
            assert_eq!(j.spec.cpu_milli, 2500 * j.spec.devices.count);
            assert_eq!(j.spec.mem_mib, 1536 * j.spec.devices.count as u64);
            assert!(j.spec.tenant.0 < 3 && j.spec.class.0 < 2 && (-2..=2).contains(&j.spec.priority));
            assert_eq!(j.spec.stated_duration, Some(j.work));
            assert!(j.work >= Time(1));
        }
        // Every tenant and class actually occurs.
        assert!((0..3).all(|t| w.jobs.iter().any(|j| j.spec.tenant.0 == t)));
        assert!((0..2).all(|c| w.jobs.iter().any(|j| j.spec.class.0 == c)));
        let mean_gap_s = w.jobs.last().unwrap().submit.as_secs_f64() / 1000.0;
        assert!((mean_gap_s - 10.0).abs() < 5.0 * 10.0 / (1000f64).sqrt(), "{mean_gap_s}");
    }

    #[test]
    fn same_seed_same_jobs_other_seed_other_jobs() {
        let s = scenario(BASIC);
        let (catalogue, _) = build_cluster(&s).unwrap();
        let a = build_workload(&s, &catalogue, 5).unwrap();
        let b = build_workload(&s, &catalogue, 5).unwrap();
        let c = build_workload(&s, &catalogue, 6).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.jobs, c.jobs);
    }

    /// Run with `cargo test -p tessera-sim --release -- --ignored million`: a debug build is
    /// an order of magnitude slower and says nothing about the target.
    #[test]
    #[ignore = "timing; meaningful in release mode only"]
    fn a_million_jobs_in_well_under_a_second() {
        let s = scenario(&BASIC.replace("jobs = 1000", "jobs = 1000000"));
        let (catalogue, _) = build_cluster(&s).unwrap();
        let started = std::time::Instant::now();
        let w = build_workload(&s, &catalogue, 1).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(w.jobs.len(), 1_000_000);
        eprintln!("1,000,000 synthetic jobs in {elapsed:?}");
        assert!(elapsed.as_secs_f64() < 0.5, "{elapsed:?}");
    }

    #[test]
    fn trace_device_figures() {
        assert_eq!(device_request(2.0).unwrap(), DeviceRequest::whole(2));
        let half = device_request(0.5).unwrap();
        assert_eq!((half.count, half.share_milli), (1, 500));
        assert_eq!(device_request(0.0001).unwrap().share_milli, 1);
        assert_eq!(device_request(0.9999).unwrap().share_milli, WHOLE_DEVICE_MILLI);
        assert_eq!(device_request(0.0).unwrap().count, 0);
        assert!(device_request(1.5).unwrap_err().contains("whole number"));
        assert!(device_request(-1.0).is_err());
        assert!(device_request(f64::NAN).is_err());
    }
}
