//! `tessera explain OUT_DIR JOB_ID`: one job's story, in plain words and in time order, from
//! a run's decision log (`<policy>/r<k>/decisions.jsonl`), its row of `jobs.csv`, and the
//! cluster's `nodes.csv` and `devices.csv` for names.
//!
//! The log is read once, line by line: a line is parsed as JSON only when it names the job
//! (`"job":<id>`), so a log of hundreds of MB costs one pass of substring searches. Reasons
//! are read as JSON values rather than the core's types, so that a reason kind this reader
//! does not know yet is still shown, with its fields, instead of failing.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum ExplainError {
    /// A file that should be there is not (or cannot be read).
    Missing { path: PathBuf, source: std::io::Error },
    Io { path: PathBuf, source: std::io::Error },
    /// A line that is not what the writer writes.
    Malformed { path: PathBuf, line: u64, message: String },
    UnknownPolicy { wanted: String, available: Vec<String> },
    UnknownReplication { dir: PathBuf, replication: u32 },
    /// The job is not in the log; `range` is the smallest and largest job id that is.
    UnknownJob { job: u64, path: PathBuf, range: Option<(u64, u64)> },
}

impl fmt::Display for ExplainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExplainError::Missing { path, source } => write!(f, "{}: cannot open: {source}", path.display()),
            ExplainError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ExplainError::Malformed { path, line, message } => write!(f, "{}: line {line}: {message}", path.display()),
            ExplainError::UnknownPolicy { wanted, available } => {
                write!(f, "no policy `{wanted}` in this output directory; it has: {}", available.join(", "))
            }
            ExplainError::UnknownReplication { dir, replication } => {
                write!(f, "{}: no replication r{replication} (no such directory)", dir.display())
            }
            ExplainError::UnknownJob { job, path, range } => match range {
                Some((lo, hi)) => write!(f, "job {job} is not in {}: the job ids in it range from {lo} to {hi}", path.display()),
                None => write!(f, "job {job} is not in {}: the log names no job at all", path.display()),
            },
        }
    }
}

impl std::error::Error for ExplainError {}

fn open(path: &Path) -> Result<BufReader<File>, ExplainError> {
    File::open(path).map(|f| BufReader::with_capacity(1 << 20, f)).map_err(|source| ExplainError::Missing { path: path.to_path_buf(), source })
}

/// Splits one CSV line into fields (RFC 4180 quoting, as the writers quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches(['\n', '\r']).chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// The policy labels of `summary.csv`, in its order, without repeats.
pub fn policies_in_summary(dir: &Path) -> Result<Vec<String>, ExplainError> {
    let path = dir.join("summary.csv");
    let mut policies: Vec<String> = Vec::new();
    for (i, line) in open(&path)?.lines().enumerate() {
        let line = line.map_err(|source| ExplainError::Io { path: path.clone(), source })?;
        if i == 0 || line.is_empty() {
            continue;
        }
        let policy = csv_fields(&line).swap_remove(0);
        if !policies.contains(&policy) {
            policies.push(policy);
        }
    }
    Ok(policies)
}

/// One line of the log about the job, kept for the story.
struct Entry {
    t_s: f64,
    /// `decision` or `notice`.
    tag: &'static str,
    /// Its kind: `launch`, `preempt`, `waiting`, ...
    kind: String,
    body: Value,
}

/// The id after the first `"job":` of a line, if any.
fn job_of(line: &str) -> Option<u64> {
    let at = line.find("\"job\":")? + 6;
    let digits = line[at..].bytes().take_while(u8::is_ascii_digit).count();
    line[at..at + digits].parse().ok()
}

/// The job's row of `jobs.csv`, as header → field.
fn job_row(path: &Path, job: u64) -> Result<Option<BTreeMap<String, String>>, ExplainError> {
    let mut reader = open(path)?;
    let mut header = String::new();
    reader.read_line(&mut header).map_err(|source| ExplainError::Io { path: path.to_path_buf(), source })?;
    let names = csv_fields(&header);
    let prefix = format!("{job},");
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|source| ExplainError::Io { path: path.to_path_buf(), source })?;
        if n == 0 {
            return Ok(None);
        }
        if line.starts_with(&prefix) {
            return Ok(Some(names.iter().cloned().zip(csv_fields(&line)).collect()));
        }
    }
}

/// Reads an id → columns file (`nodes.csv`, `devices.csv`), keeping only the `wanted` ids.
fn id_table(path: &Path, wanted: &BTreeSet<u64>) -> Result<BTreeMap<u64, Vec<String>>, ExplainError> {
    let mut out = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    for (i, line) in open(path)?.lines().enumerate() {
        let line = line.map_err(|source| ExplainError::Io { path: path.to_path_buf(), source })?;
        if i == 0 {
            continue;
        }
        let Some((id, _)) = line.split_once(',') else { continue };
        if let Ok(id) = id.parse::<u64>() {
            if wanted.contains(&id) {
                out.insert(id, csv_fields(&line));
            }
        }
    }
    Ok(out)
}

/// Model id -> name from `devices.csv` (`device,node,model,model_id`); empty when the file has
/// no `model_id` column (written before it had one).
fn model_names(path: &Path) -> Result<BTreeMap<u64, String>, ExplainError> {
    let mut out = BTreeMap::new();
    let mut columns: Option<(usize, usize)> = None;
    for (i, line) in open(path)?.lines().enumerate() {
        let line = line.map_err(|source| ExplainError::Io { path: path.to_path_buf(), source })?;
        let fields = csv_fields(&line);
        if i == 0 {
            let at = |name: &str| fields.iter().position(|f| f == name);
            columns = at("model").zip(at("model_id"));
            if columns.is_none() {
                return Ok(out);
            }
            continue;
        }
        let Some((name, id)) = columns else { break };
        if let (Some(name), Some(Ok(id))) = (fields.get(name), fields.get(id).map(|x| x.parse::<u64>())) {
            out.entry(id).or_insert_with(|| name.clone());
        }
    }
    Ok(out)
}

/// Seconds for the story: up to 3 decimals, trailing zeros dropped (`130`, `10.5`).
fn secs(s: f64) -> String {
    let t = format!("{s:.3}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" {
        "0".into()
    } else {
        t.to_string()
    }
}

/// A duration: seconds, and a larger unit when it helps (`7200 s (2.00 h)`).
fn span(s: f64) -> String {
    let base = format!("{} s", secs(s));
    let a = s.abs();
    if a >= 86_400.0 {
        format!("{base} ({:.2} d)", s / 86_400.0)
    } else if a >= 3600.0 {
        format!("{base} ({:.2} h)", s / 3600.0)
    } else if a >= 60.0 {
        format!("{base} ({:.2} min)", s / 60.0)
    } else {
        base
    }
}

/// The fields of a reason object other than `skip`, as `key=value` pairs.
fn other_fields(v: &Value, skip: &[&str]) -> String {
    let Some(map) = v.as_object() else { return v.to_string() };
    map.iter().filter(|(k, _)| !skip.contains(&k.as_str())).map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn u(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn f(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn s<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}

/// A number for the story: up to 3 decimals, as `secs` writes them.
fn num_text(v: &Value, key: &str) -> String {
    f(v, key).map_or("?".into(), secs)
}

/// A tenant id as the story names it.
fn tenant(v: &Value, key: &str) -> String {
    u(v, key).map_or("?".into(), |t| format!("tenant {t}"))
}

/// An instant that may be absent (`null`: none on the stated durations).
fn at_or(v: &Value, key: &str, none: &str) -> String {
    f(v, key).map_or(none.to_string(), |t| format!("t={} s", secs(t)))
}

/// The victim rule that chose a preempted job, unless it is the default (`lowest-tier`).
fn victim_rule(rule: &str) -> Option<&'static str> {
    match rule {
        "least-progress" => Some("victim rule least-progress: the job that loses the least work since its last checkpoint"),
        "most-attained" => Some("victim rule most-attained: the job with the most attained service"),
        _ => None,
    }
}

fn job_list(v: Option<&Value>) -> String {
    let ids: Vec<String> = v.and_then(Value::as_array).map(|a| a.iter().map(|x| x.to_string()).collect()).unwrap_or_default();
    match ids.len() {
        0 => "no job".into(),
        1 => format!("job {}", ids[0]),
        _ => format!("jobs {}", ids.join(", ")),
    }
}

struct Names {
    nodes: BTreeMap<u64, Vec<String>>,
    devices: BTreeMap<u64, Vec<String>>,
    /// Model id -> name, from `devices.csv`'s `model_id` column (absent in older outputs).
    models: BTreeMap<u64, String>,
}

impl Names {
    fn model(&self, id: u64) -> String {
        self.models.get(&id).cloned().unwrap_or_else(|| format!("device model #{id}"))
    }
    fn node(&self, id: u64) -> String {
        self.nodes.get(&id).and_then(|r| r.get(1)).map_or(format!("node-{id}"), |n| n.clone())
    }
    fn device(&self, id: u64) -> String {
        match self.devices.get(&id) {
            Some(r) if r.len() >= 3 => format!("{id} ({} on {})", r[2], r[1].parse().map_or(r[1].clone(), |n| self.node(n))),
            _ => format!("{id}"),
        }
    }
}

fn wait_reason(r: &Value, names: &Names) -> String {
    match s(r, "kind") {
        "devices" => format!(
            "not enough free devices of its models: it needs {}, {} free in the whole cluster",
            u(r, "needed").map_or("?".into(), |x| x.to_string()),
            u(r, "free").map_or("?".into(), |x| x.to_string())
        ),
        "no_node_fits" => {
            let limit = match s(r, "limit") {
                "cpu" => "CPU",
                "memory" => "memory",
                "devices" => "devices",
                other => other,
            };
            format!(
                "no node (or set of nodes) fits it: {} devices are free of the {} it needs, but not with enough {limit} beside them",
                u(r, "free").map_or("?".into(), |x| x.to_string()),
                u(r, "needed").map_or("?".into(), |x| x.to_string()),
            )
        }
        "behind_head" => format!(
            "behind job {} at the head of the queue, which cannot start yet (strict queue order)",
            u(r, "head").map_or("?".into(), |x| x.to_string())
        ),
        "awaiting_preemption" => {
            format!("awaiting the eviction of {}, preempted to make room for it", job_list(r.get("victims")))
        }
        "locality" => format!(
            "waiting for one node to hold its whole gang (placement topology): it could start now only spread over {} nodes; it has waited {} of its locality wait of {}",
            u(r, "spread_nodes").map_or("?".into(), |x| x.to_string()),
            f(r, "waited_s").map_or("?".into(), span),
            f(r, "limit_s").map_or("?".into(), span),
        ),
        "reservation" => format!(
            "held by backfilling: it could start now, but running until {} it would delay the reservation of job {}, reserved to start at {}",
            at_or(r, "expected_end_s", "an unknown end (it states no duration)"),
            u(r, "head").map_or("?".into(), |x| x.to_string()),
            at_or(r, "reserved_start_s", "no finite time (it needs devices held by jobs that state no duration)"),
        ),
        "next_round" => format!(
            "for the next round: its policy starts jobs only at round boundaries, and round {} begins at t={} s",
            u(r, "round").map_or("?".into(), |x| x.to_string()),
            f(r, "at_s").map_or("?".into(), secs),
        ),
        "quota" => format!(
            "its {} holds {} devices of its quota of {}: it waits for the tenant's own jobs to end, or for idle devices to borrow if borrowing is on",
            tenant(r, "tenant"),
            num_text(r, "used"),
            num_text(r, "quota"),
        ),
        other => {
            let _ = names;
            format!("{} ({})", other.replace('_', " "), other_fields(r, &["kind"]))
        }
    }
}

/// A fraction of time as a percentage: `share` and `received` of the round reasons.
fn percent(v: &Value, key: &str) -> String {
    f(v, key).map_or("?".into(), |x| format!("{:.1}%", 100.0 * x))
}

/// A device model of the round reasons: its name where the caller knows it (the model of the
/// launch's devices), else its index in the cluster's catalogue.
fn model_name(v: &Value, key: &str, known: Option<&str>) -> String {
    match (known.filter(|k| !k.is_empty()), u(v, key)) {
        (Some(name), _) => name.to_string(),
        (None, Some(id)) => format!("device model #{id}"),
        (None, None) => "its device model".into(),
    }
}

/// The launch reason's order part. `model` names the model of the launch's devices, for the
/// round reasons, which carry only its id.
fn order_reason(o: &Value, model: Option<&str>) -> String {
    match s(o, "rule") {
        "round_share" => {
            let rank = match f(o, "priority") {
                Some(p) => format!("its priority (share over received) of {p:.3} ranked it among the jobs that got devices"),
                None => "it had not run there yet, so it ranked first (priority infinite)".into(),
            };
            format!(
                "round {} (Gavel's max-min allocation) chose it on {}: its share of the round's time there is {}, it had run there {} of its active time, and {rank}",
                u(o, "round").map_or("?".into(), |x| x.to_string()),
                model_name(o, "model", model),
                percent(o, "share"),
                percent(o, "received"),
            )
        }
        "round_fill" => format!(
            "round {}'s allocation gave it no share of {}, but those devices would have stayed idle for the round otherwise, so it fills them (the oldest job left that fits, on its fastest model with room)",
            u(o, "round").map_or("?".into(), |x| x.to_string()),
            model_name(o, "model", model),
        ),
        "between_rounds" => format!(
            "started between rounds (round_backfill) on devices idle during round {}: every launch the round planned had happened, and it was next in queue order among the jobs that fit and were not preempted at the round's start",
            u(o, "round").map_or("?".into(), |x| x.to_string()),
        ),
        "fifo" => "queue order fifo: the oldest submission first".into(),
        "shortest_stated" => match f(o, "stated_s") {
            Some(x) => format!("queue order sjf: the shortest stated duration first; it stated {}", span(x)),
            None => "queue order sjf: the shortest stated duration first; it stated none (such jobs rank last)".into(),
        },
        "priority_tier" => format!("queue order priority: the highest tier first; it is tier {}", o.get("tier").map_or("?".into(), |t| t.to_string())),
        "shortest_remaining" => match f(o, "remaining_s") {
            Some(x) => format!("queue order srtf: the shortest remaining stated time first; it had {} left", span(x)),
            None => "queue order srtf: the shortest remaining stated time first; it stated no duration (such jobs rank last)".into(),
        },
        "least_attained" => format!(
            "queue order las (Tiresias' 2D-LAS): the least attained service first; it was in queue {} with {} device-seconds attained{}",
            u(o, "queue").map_or("?".into(), |x| x.to_string()),
            num_text(o, "attained_device_s"),
            if o.get("promoted").and_then(Value::as_bool) == Some(true) { ", promoted to the first queue for having waited too long" } else { "" },
        ),
        "dominant_share" => format!(
            "queue order drf: the tenant with the smallest weighted dominant share goes first; its tenant's was {}",
            f(o, "tenant_share").map_or("?".into(), |x| format!("{x:.3}"))
        ),
        "fair_share" => format!(
            "queue order fair-share: the tenant with the highest fair-share factor goes first; its tenant's was {} (a usage share of {} against a target share of {})",
            f(o, "factor").map_or("?".into(), |x| format!("{x:.3}")),
            f(o, "usage_share").map_or("?".into(), |x| format!("{x:.3}")),
            f(o, "target_share").map_or("?".into(), |x| format!("{x:.3}")),
        ),
        other => format!("queue order rule {other} ({})", other_fields(o, &["rule"])),
    }
}

fn placement_reason(p: &Value, names: &Names) -> String {
    let chosen = placement_choice(p, names);
    match p.get("alternatives").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        Some(alternatives) => format!("{chosen}; {}", runners_up(s(p, "placed"), alternatives, names)),
        None => chosen,
    }
}

/// The candidates a scoring placement chose the winner over, with the score each had.
fn runners_up(placed: &str, alternatives: &[Value], names: &Names) -> String {
    let listed: Vec<String> = alternatives
        .iter()
        .map(|a| {
            let place = match (u(a, "model"), u(a, "device"), u(a, "node")) {
                (Some(m), _, _) => format!("model {}", names.model(m)),
                (None, Some(d), _) => format!("device {}", names.device(d)),
                (None, None, Some(n)) => format!("node {}", names.node(n)),
                (None, None, None) => "?".into(),
            };
            let score = f(a, "score");
            let said = match (placed, score) {
                (_, None) => "score ?".to_string(),
                ("one_node" | "pack" | "local", Some(x)) => format!("would keep {x}"),
                ("most_free", Some(x)) => format!("{x} free"),
                ("share", Some(x)) => format!("{x} milli-devices free"),
                ("cpu_only", Some(x)) => format!("{} cores free", secs(x / 1000.0)),
                ("fgd", Some(x)) => format!("{x:+.3} GPUs"),
                ("hetero", Some(x)) => format!("{x:.3}x"),
                (_, Some(x)) => format!("score {x}"),
            };
            format!("{place} ({said})")
        })
        .collect();
    let note = if placed == "hetero" { " (a model scored above the one chosen had no room for it then)" } else { "" };
    format!("chosen over {}{note}", listed.join(", "))
}

fn placement_choice(p: &Value, names: &Names) -> String {
    let rule = s(p, "rule");
    match s(p, "placed") {
        "one_node" => format!(
            "placement {rule}: the whole gang on node {}, which keeps {} whole free devices of its models after it",
            u(p, "node").map_or("?".into(), |n| names.node(n)),
            u(p, "free_after").map_or("?".into(), |x| x.to_string())
        ),
        "spread" => format!(
            "placement {rule}: no single node had room for the gang, so it spans {} nodes",
            u(p, "nodes").map_or("?".into(), |x| x.to_string())
        ),
        "share" => format!(
            "placement {rule}: a share of device {}, which had {} of 1000 milli-devices free before",
            u(p, "device").map_or("?".into(), |d| names.device(d)),
            u(p, "free_milli_before").map_or("?".into(), |x| x.to_string())
        ),
        "cpu_only" => format!(
            "placement {rule}: no devices; node {} has the CPU and memory",
            u(p, "node").map_or("?".into(), |n| names.node(n))
        ),
        "pack" => format!(
            "placement {rule}: the gang on {} node(s), the fewest possible, the last being {}, which keeps {} whole free devices{}",
            u(p, "nodes").map_or("?".into(), |x| x.to_string()),
            u(p, "last").map_or("?".into(), |n| names.node(n)),
            u(p, "free_after").map_or("?".into(), |x| x.to_string()),
            island(p),
        ),
        "most_free" => format!(
            "placement {rule}: node {}, the one with the most free devices ({} before it)",
            u(p, "node").map_or("?".into(), |n| names.node(n)),
            u(p, "free_before").map_or("?".into(), |x| x.to_string()),
        ),
        "local" => format!(
            "placement {rule}: all its devices on node {}{}, which keeps {} whole free devices",
            u(p, "node").map_or("?".into(), |n| names.node(n)),
            island(p),
            u(p, "free_after").map_or("?".into(), |x| x.to_string()),
        ),
        "spread_after_wait" => format!(
            "placement {rule}: no single node could hold the gang, so after waiting {} for one it spans {} nodes",
            f(p, "waited_s").map_or("?".into(), span),
            u(p, "nodes").map_or("?".into(), |x| x.to_string()),
        ),
        "fgd" => format!(
            "placement {rule}: node {}{}, which of {} candidates grows the cluster's expected fragmentation least ({} GPUs)",
            u(p, "node").map_or("?".into(), |n| names.node(n)),
            u(p, "device").map_or(String::new(), |d| format!(", device {}", names.device(d))),
            u(p, "candidates").map_or("?".into(), |x| x.to_string()),
            f(p, "fragmentation_increase").map_or("?".into(), |x| format!("{x:+.3}")),
        ),
        "hetero" => format!(
            "placement {rule}: the device model where it runs fastest relative to the workload (speed {}, {}x the workload's mean there) among those free now, on {} node(s)",
            f(p, "speed").map_or("?".into(), |x| format!("{x:.3}")),
            f(p, "relative_speed").map_or("?".into(), |x| format!("{x:.3}")),
            u(p, "nodes").map_or("?".into(), |x| x.to_string()),
        ),
        other => format!("placement {rule}: {other} ({})", other_fields(p, &["rule", "placed"])),
    }
}

fn island(p: &Value) -> String {
    u(p, "island").map_or(String::new(), |i| format!(" (NVLink island {i})"))
}

/// How a backfilled launch respected the reservation ahead of it.
fn backfill_reason(b: &Value) -> String {
    let how = if b.get("ends_before_reservation").and_then(Value::as_bool) == Some(true) {
        format!("it is expected to end at {}, by then", at_or(b, "expected_end_s", "?"))
    } else {
        "it takes only devices the reservations do not need".into()
    };
    format!(
        "started by {} backfilling ahead of blocked job {}, reserved to start at {}: {how}",
        s(b, "mode"),
        u(b, "head").map_or("?".into(), |x| x.to_string()),
        at_or(b, "reserved_start_s", "no finite time"),
    )
}

fn preempt_reason(r: &Value, names: &Names) -> String {
    match s(r, "kind") {
        "higher_tier" => format!(
            "for job {} of a higher tier ({} over this job's tier {}){}",
            u(r, "for_job").map_or("?".into(), |x| x.to_string()),
            r.get("for_tier").map_or("?".into(), |x| x.to_string()),
            r.get("victim_tier").map_or("?".into(), |x| x.to_string()),
            // The default rule (lowest tier, then latest started) goes without saying.
            victim_rule(s(r, "victim_rule")).map_or(String::new(), |rule| format!(", chosen by the {rule}")),
        ),
        "quota_reclaim" => format!(
            "to reclaim devices its {} borrowed beyond its quota ({} held, quota {}) for job {} of {}, which is within its own quota",
            tenant(r, "tenant"),
            num_text(r, "used"),
            num_text(r, "quota"),
            u(r, "for_job").map_or("?".into(), |x| x.to_string()),
            tenant(r, "for_tenant"),
        ),
        "device_failed" => format!("because device {} it ran on failed", u(r, "device").map_or("?".into(), |d| names.device(d))),
        "device_drained" => format!("because device {} it ran on was drained for planned work", u(r, "device").map_or("?".into(), |d| names.device(d))),
        "node_down" => format!("because its node {} went down", u(r, "node").map_or("?".into(), |n| names.node(n))),
        "maintenance" => format!("because its node {} is drained for maintenance", u(r, "node").map_or("?".into(), |n| names.node(n))),
        "cancelled" => "because its submitter cancelled it".into(),
        "round_end" => {
            let round = u(r, "round").map_or("?".into(), |x| x.to_string());
            if r.get("moved_to").is_some_and(|m| !m.is_null()) {
                format!(
                    "at the start of round {round}: the max-min allocation moved it to {}, where its share of the round's time is {} and it had run {} of its active time; it restarts there",
                    model_name(r, "moved_to", None),
                    percent(r, "share"),
                    percent(r, "received"),
                )
            } else {
                let rank = match f(r, "priority") {
                    Some(p) => format!("its priority (share over received) was {p:.3}"),
                    None => "it had received no service yet, so it ranked first too".into(),
                };
                format!(
                    "at the start of round {round}: the round did not choose it: its max-min share of the round's time was {} and it had run {} of its active time; {rank}, and the jobs ranked ahead of it took the devices; it returns to the queue for a later round",
                    percent(r, "share"),
                    percent(r, "received"),
                )
            }
        }
        other => format!("({} {})", other.replace('_', " "), other_fields(r, &["kind"])),
    }
}

fn reject_reason(r: &Value) -> String {
    match s(r, "kind") {
        "too_many_devices" => format!(
            "it asks for {} devices of its models and the whole cluster has {}",
            u(r, "requested").map_or("?".into(), |x| x.to_string()),
            u(r, "cluster_has").map_or("?".into(), |x| x.to_string())
        ),
        "too_large_for_any_node" => format!(
            "it needs {} {} on one node and the largest node has {}",
            u(r, "needed").map_or("?".into(), |x| x.to_string()),
            s(r, "limit"),
            u(r, "largest_node").map_or("?".into(), |x| x.to_string())
        ),
        "invalid_share" => format!("its fractional share is invalid ({})", other_fields(r, &["kind"])),
        "duplicate_id" => "another job already has its id".into(),
        other => format!("{} ({})", other.replace('_', " "), other_fields(r, &["kind"])),
    }
}

fn reserved_notice(b: &Value) -> String {
    match f(b, "start_s") {
        Some(t) => format!("backfilling reserved {} devices for it from t={} s", u(b, "devices").map_or("?".into(), |x| x.to_string()), secs(t)),
        None => "backfilling found no finite start for it: it needs devices held by jobs that state no duration".into(),
    }
}

/// Which policy directory to read: `wanted`, or the first policy of `summary.csv`.
fn choose_policy(dir: &Path, wanted: Option<&str>) -> Result<String, ExplainError> {
    match wanted {
        Some(w) if dir.join(w).is_dir() => Ok(w.to_string()),
        Some(w) => {
            let available = policies_in_summary(dir)?;
            Err(ExplainError::UnknownPolicy { wanted: w.to_string(), available })
        }
        None => {
            let policies = policies_in_summary(dir)?;
            policies.into_iter().next().ok_or_else(|| ExplainError::Malformed {
                path: dir.join("summary.csv"),
                line: 2,
                message: "no runs listed".into(),
            })
        }
    }
}

/// The story of job `job` in run `<dir>/<policy>/r<replication>`, as text; `policy` defaults
/// to the first policy of `summary.csv`. See the module documentation.
pub fn explain(dir: &Path, job: u64, policy: Option<&str>, replication: u32) -> Result<String, ExplainError> {
    let policy = choose_policy(dir, policy)?;
    let run_dir = dir.join(&policy).join(format!("r{replication}"));
    if !run_dir.is_dir() {
        return Err(ExplainError::UnknownReplication { dir: dir.join(&policy), replication });
    }
    let log_path = run_dir.join("decisions.jsonl");
    let jobs_path = run_dir.join("jobs.csv");
    let mut reader = open(&log_path)?;
    // Check the other files exist before the long scan.
    for p in [&jobs_path, &dir.join("nodes.csv"), &dir.join("devices.csv")] {
        File::open(p).map_err(|source| ExplainError::Missing { path: p.clone(), source })?;
    }

    let mut entries: Vec<Entry> = Vec::new();
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    let mut buf = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|source| ExplainError::Io { path: log_path.clone(), source })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let line = std::str::from_utf8(&buf).map_err(|e| ExplainError::Malformed { path: log_path.clone(), line: line_no, message: e.to_string() })?;
        let Some(id) = job_of(line) else { continue };
        lo = lo.min(id);
        hi = hi.max(id);
        if id != job {
            continue;
        }
        let body: Value = serde_json::from_str(line).map_err(|e| ExplainError::Malformed { path: log_path.clone(), line: line_no, message: e.to_string() })?;
        let t_s = f(&body, "t_s").unwrap_or(f64::NAN);
        let (tag, kind) = if let Some(k) = body.get("decision").and_then(Value::as_str) {
            ("decision", k.to_string())
        } else if let Some(k) = body.get("notice").and_then(Value::as_str) {
            ("notice", k.to_string())
        } else {
            continue;
        };
        entries.push(Entry { t_s, tag, kind, body });
    }
    if entries.is_empty() {
        let range = (lo <= hi).then_some((lo, hi));
        return Err(ExplainError::UnknownJob { job, path: log_path, range });
    }
    let row = job_row(&jobs_path, job)?.ok_or_else(|| ExplainError::Malformed {
        path: jobs_path.clone(),
        line: 0,
        message: format!("job {job} is in the decision log but has no row"),
    })?;

    // Names of the nodes and devices the story mentions.
    let (mut want_nodes, mut want_devices) = (BTreeSet::new(), BTreeSet::new());
    for e in &entries {
        collect_ids(&e.body, &mut want_nodes, &mut want_devices);
    }
    let devices = id_table(&dir.join("devices.csv"), &want_devices)?;
    for r in devices.values() {
        if let Some(n) = r.get(1).and_then(|n| n.parse().ok()) {
            want_nodes.insert(n);
        }
    }
    let models = model_names(&dir.join("devices.csv"))?;
    let names = Names { nodes: id_table(&dir.join("nodes.csv"), &want_nodes)?, devices, models };

    Ok(render(job, &policy, replication, &row, &entries, &names))
}

/// Node and device ids anywhere in a log line (by key name).
fn collect_ids(v: &Value, nodes: &mut BTreeSet<u64>, devices: &mut BTreeSet<u64>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                match (k.as_str(), x.as_u64()) {
                    ("node", Some(n)) => {
                        nodes.insert(n);
                    }
                    ("device", Some(d)) => {
                        devices.insert(d);
                    }
                    _ => collect_ids(x, nodes, devices),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_ids(x, nodes, devices)),
        _ => {}
    }
}

fn field<'r>(row: &'r BTreeMap<String, String>, key: &str) -> &'r str {
    row.get(key).map_or("", String::as_str)
}

fn num(row: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    field(row, key).parse().ok()
}

fn render(job: u64, policy: &str, replication: u32, row: &BTreeMap<String, String>, entries: &[Entry], names: &Names) -> String {
    let mut lines: Vec<(f64, String)> = Vec::new();
    let submit = num(row, "submit_s").unwrap_or(f64::NAN);
    let end = num(row, "end_s");
    let devices = field(row, "devices");
    lines.push((
        submit,
        format!("submitted by {} asking for {} device{}", field(row, "tenant"), devices, if devices == "1" { "" } else { "s" }),
    ));
    for (i, e) in entries.iter().enumerate() {
        let b = &e.body;
        let text = match (e.tag, e.kind.as_str()) {
            ("notice", "waiting") => {
                let reason = b.get("reason").map_or("(no reason given)".into(), |r| wait_reason(r, names));
                // It waits for this reason until the job's next launch, reason change, rejection
                // or cancellation, or its end.
                let until = entries[i + 1..]
                    .iter()
                    .find(|n| matches!(n.kind.as_str(), "waiting" | "launch" | "reject" | "cancelled"))
                    .map(|n| n.t_s)
                    .or(end);
                match until {
                    Some(u) => format!("waits: {reason}; for {} (until t={} s)", span(u - e.t_s), secs(u)),
                    None => format!("waits: {reason}; still waiting when the run stopped"),
                }
            }
            ("decision", "launch") => {
                let alloc = b.get("allocation");
                let nodes: Vec<String> = alloc
                    .and_then(|a| a.get("nodes"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|n| u(n, "node")).map(|n| names.node(n)).collect())
                    .unwrap_or_default();
                let devs: Vec<String> = alloc
                    .and_then(|a| a.get("devices"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|d| {
                                let id = u(d, "device")?;
                                let milli = u(d, "milli").unwrap_or(1000);
                                let model = names.devices.get(&id).and_then(|r| r.get(2)).cloned().unwrap_or_default();
                                Some(if milli < 1000 { format!("{id} {model} ({milli}/1000)") } else { format!("{id} {model}") })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let reason = b.get("reason");
                let mut t = format!(
                    "launched on node{} {}",
                    if nodes.len() == 1 { "" } else { "s" },
                    if nodes.is_empty() { "(none)".into() } else { nodes.join(", ") }
                );
                if !devs.is_empty() {
                    let _ = write!(t, ", device{} {}", if devs.len() == 1 { "" } else { "s" }, devs.join(", "));
                }
                if let Some(r) = reason {
                    if let Some(o) = r.get("order") {
                        // The round reasons name the model by id: the launch's devices say its name.
                        let model = alloc
                            .and_then(|a| a.get("devices"))
                            .and_then(Value::as_array)
                            .and_then(|a| a.first())
                            .and_then(|d| u(d, "device"))
                            .and_then(|id| names.devices.get(&id))
                            .and_then(|r| r.get(2))
                            .map(String::as_str);
                        let _ = write!(t, "; why: {}", order_reason(o, model));
                    }
                    if let Some(p) = r.get("placement") {
                        let _ = write!(t, "; {}", placement_reason(p, names));
                    }
                    if let Some(bf) = r.get("backfill").filter(|b| !b.is_null()) {
                        let _ = write!(t, "; {}", backfill_reason(bf));
                    }
                    if let Some(q) = u(r, "queued_after") {
                        let _ = write!(t, "; {q} job{} still queued after it", if q == 1 { "" } else { "s" });
                    }
                }
                t
            }
            ("decision", "preempt") => {
                let reason = b.get("reason").map_or(String::new(), |r| preempt_reason(r, names));
                // `grace` is a Time: integer microseconds.
                let grace = b.get("grace").and_then(Value::as_f64).map(|g| g / 1e6);
                match grace {
                    Some(g) if g > 0.0 => format!("preempted {reason}, with a grace period of {} to stop", span(g)),
                    Some(_) => format!("preempted {reason}, with no grace period"),
                    None => format!("preempted {reason}"),
                }
            }
            ("decision", "reject") => {
                format!("rejected: it can never run here: {}", b.get("reason").map_or(String::new(), reject_reason))
            }
            ("notice", "requeued") => format!(
                "evicted and requeued, having run {} in all so far",
                f(b, "attained_s").map_or("?".into(), span)
            ),
            ("notice", "preemption_deferred") => format!(
                "preemption for it deferred until t={} s: {}",
                f(b, "until_s").map_or("?".into(), secs),
                s(b, "why")
            ),
            ("notice", "cancelled") => "cancelled by its submitter".into(),
            ("notice", "reserved") => reserved_notice(b),
            (tag, kind) => format!("{tag} {kind}: {}", other_fields(b, &["t_s", tag, "job"])),
        };
        lines.push((e.t_s, text));
    }
    let outcome = field(row, "outcome");
    match end {
        Some(end_s) => {
            let mut t = format!("ended: {outcome}");
            for (label, key) in [("JCT", "jct_s"), ("waited", "wait_s"), ("ran", "run_s"), ("lost work", "lost_work_s")] {
                if let Some(x) = num(row, key) {
                    let _ = write!(t, "; {label} {}", span(x));
                }
            }
            let pre = field(row, "preemptions");
            if !pre.is_empty() && pre != "0" {
                let _ = write!(t, "; preempted {pre} time{}", if pre == "1" { "" } else { "s" });
            }
            let restarts = field(row, "restarts");
            if !restarts.is_empty() && restarts != "0" {
                let _ = write!(t, "; restarted {restarts} time{} after failures", if restarts == "1" { "" } else { "s" });
            }
            let models = field(row, "models");
            if !models.is_empty() {
                let _ = write!(t, "; last ran on {models}");
            }
            lines.push((end_s, t));
        }
        None => lines.push((f64::INFINITY, format!("had not ended when the run stopped (outcome: {outcome})"))),
    }
    // The log is in time order already; a stable sort keeps equal times in log order, with the
    // submission first and the end last.
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    let width = lines.iter().filter(|l| l.0.is_finite()).map(|l| secs(l.0).len()).max().unwrap_or(1);
    let mut out = format!("job {job} under policy {policy}, replication {replication}\n");
    for (t, text) in lines {
        let when = if t.is_finite() { secs(t) } else { "end".into() };
        let _ = writeln!(out, "  t={when:>width$} s  {text}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_found_cheaply() {
        assert_eq!(job_of(r#"{"t_s":1.0,"decision":"launch","job":42,"allocation":{}}"#), Some(42));
        assert_eq!(job_of(r#"{"t_s":1.0,"decision":"preempt","job":7,"reason":{"kind":"higher_tier","for_job":3}}"#), Some(7));
        assert_eq!(job_of(r#"{"t_s":1.0,"notice":"ignored","event":"x","why":"y"}"#), None);
    }

    #[test]
    fn csv_and_numbers() {
        assert_eq!(csv_fields("1,\"a,b\",\"say \"\"hi\"\"\",\n"), vec!["1", "a,b", "say \"hi\"", ""]);
        assert_eq!(secs(130.0), "130");
        assert_eq!(secs(10.5), "10.5");
        assert_eq!(span(7200.0), "7200 s (2.00 h)");
    }

    #[test]
    fn unknown_reason_kinds_are_shown_with_their_fields() {
        let names = Names { nodes: BTreeMap::new(), devices: BTreeMap::new(), models: BTreeMap::new() };
        let r: Value = serde_json::from_str(r#"{"kind":"tenant_cap","cap":8}"#).unwrap();
        assert_eq!(wait_reason(&r, &names), "tenant cap (cap=8)");
        let o: Value = serde_json::from_str(r#"{"rule":"lottery","tickets":1}"#).unwrap();
        assert_eq!(order_reason(&o, None), "queue order rule lottery (tickets=1)");
    }

    /// Every reason the core writes, serialized as the decision log has it, reads as a
    /// sentence: no raw `key=value` fields, and the values that decided are in it.
    #[test]
    fn every_reason_of_the_core_reads_as_a_sentence() {
        use tessera_core::policy::VictimRule;
        use tessera_core::{BackfillKind, Backfilled, DeviceId, JobId, ModelId, NodeId, OrderReason, PlacedHow, PreemptReason, TenantId, WaitReason};
        let names = Names { nodes: BTreeMap::new(), devices: BTreeMap::new(), models: BTreeMap::new() };
        let v = |x: serde_json::Result<Value>| x.unwrap();
        let raw = |text: &str| text.contains('=') && !text.contains("t=");
        let waits = [
            (WaitReason::Locality { waited_s: 30.0, limit_s: 120.0, spread_nodes: 2 }, vec!["spread over 2 nodes", "30 s", "120 s"]),
            (WaitReason::Reservation { head: JobId(7), reserved_start_s: Some(500.0), expected_end_s: Some(900.0) }, vec!["job 7", "t=500 s", "t=900 s"]),
            (WaitReason::Reservation { head: JobId(7), reserved_start_s: None, expected_end_s: None }, vec!["no finite time", "states no duration"]),
            (WaitReason::Quota { tenant: TenantId(3), used: 8.0, quota: 8.0 }, vec!["tenant 3", "8 devices of its quota of 8"]),
            (WaitReason::NextRound { round: 4, at_s: 1440.0 }, vec!["only at round boundaries", "round 4 begins at t=1440 s"]),
        ];
        for (w, words) in waits {
            let text = wait_reason(&v(serde_json::to_value(&w)), &names);
            assert!(!raw(&text), "{text}");
            for word in words {
                assert!(text.contains(word), "{text} lacks {word}");
            }
        }
        let orders = [
            (OrderReason::ShortestRemaining { remaining_s: Some(90.0) }, "srtf"),
            (OrderReason::LeastAttained { queue: 1, attained_device_s: 4000.0, promoted: true }, "promoted"),
            (OrderReason::DominantShare { tenant_share: 0.25 }, "0.250"),
            (OrderReason::FairShare { factor: 0.5, usage_share: 0.5, target_share: 0.5 }, "fair-share factor"),
        ];
        for (o, word) in orders {
            let text = order_reason(&v(serde_json::to_value(o)), None);
            assert!(!raw(&text) && !text.contains("rule ") && text.contains(word), "{text}");
        }
        let rounds = [
            (
                OrderReason::RoundShare { round: 3, model: ModelId(1), share: 0.25, received: 0.125, priority: Some(2.0) },
                Some("P100"),
                vec!["round 3", "chose it on P100", "share of the round's time there is 25.0%", "run there 12.5% of its active time", "priority (share over received) of 2.000"],
            ),
            (
                OrderReason::RoundShare { round: 3, model: ModelId(1), share: 0.5, received: 0.0, priority: None },
                None,
                vec!["chose it on device model #1", "50.0%", "had not run there yet, so it ranked first"],
            ),
            (OrderReason::RoundFill { round: 7, model: ModelId(0) }, Some("K80"), vec!["round 7's allocation gave it no share of K80", "would have stayed idle"]),
            (OrderReason::BetweenRounds { round: 9 }, None, vec!["between rounds", "idle during round 9", "not preempted at the round's start"]),
        ];
        for (o, model, words) in rounds {
            let text = order_reason(&v(serde_json::to_value(o)), model);
            assert!(!raw(&text) && !text.contains("rule "), "{text}");
            for word in words {
                assert!(text.contains(word), "{text} lacks {word}");
            }
        }
        let placements = [
            (PlacedHow::Pack { nodes: 2, last: NodeId(1), free_after: 3, island: Some(0) }, "pack", "NVLink island 0"),
            (PlacedHow::MostFree { node: NodeId(1), free_before: 8 }, "spread", "most free devices (8"),
            (PlacedHow::Local { node: NodeId(1), island: None, free_after: 4 }, "topology", "keeps 4"),
            (PlacedHow::SpreadAfterWait { nodes: 3, waited_s: 60.0 }, "topology", "spans 3 nodes"),
            (PlacedHow::Fgd { node: NodeId(0), device: Some(DeviceId(2)), fragmentation_increase: -0.5, candidates: 4 }, "fgd", "-0.500"),
            (PlacedHow::Hetero { model: ModelId(3), speed: 2.0, relative_speed: 1.5, nodes: 1 }, "hetero", "1.500x"),
        ];
        for (how, rule, word) in placements {
            let p = tessera_core::PlacementReason { rule: rule.into(), how, alternatives: Vec::new() };
            let text = placement_reason(&v(serde_json::to_value(&p)), &names);
            assert!(!raw(&text) && text.contains(word), "{text}");
            assert!(!text.contains("chosen over"), "no runners-up, none told: {text}");
        }
        // Runners-up, in each rule's terms; model names come from devices.csv's model_id.
        let named = Names { nodes: BTreeMap::new(), devices: BTreeMap::new(), models: BTreeMap::from([(3, "V100-32GB".to_string())]) };
        let node = |n: u32, score: f64| tessera_core::Alternative::node(NodeId(n), score);
        let model = |m: u16, score: f64| tessera_core::Alternative { node: None, device: None, model: Some(ModelId(m)), score };
        let runners = [
            (PlacedHow::OneNode { node: NodeId(1), free_after: 0 }, "best-fit", vec![node(4, 1.0), node(2, 2.0)], "chosen over node node-4 (would keep 1), node node-2 (would keep 2)"),
            (PlacedHow::MostFree { node: NodeId(0), free_before: 8 }, "spread", vec![node(3, 6.0)], "chosen over node node-3 (6 free)"),
            (PlacedHow::CpuOnly { node: NodeId(0) }, "best-fit", vec![node(1, 64_000.0)], "node node-1 (64 cores free)"),
            (PlacedHow::Fgd { node: NodeId(0), device: None, fragmentation_increase: 0.0, candidates: 2 }, "fgd", vec![node(1, 0.75)], "node node-1 (+0.750 GPUs)"),
            (PlacedHow::Hetero { model: ModelId(5), speed: 1.0, relative_speed: 1.0, nodes: 1 }, "hetero", vec![model(3, 1.5), model(7, 0.5)], "model V100-32GB (1.500x), model device model #7 (0.500x) (a model scored above"),
        ];
        for (how, rule, alternatives, words) in runners {
            let p = tessera_core::PlacementReason { rule: rule.into(), how, alternatives };
            let text = placement_reason(&v(serde_json::to_value(&p)), &named);
            assert!(!raw(&text) && text.contains(words), "{text} lacks {words}");
        }
        let preempts = [
            (PreemptReason::HigherTier { for_job: JobId(2), victim_tier: 0, for_tier: 5, victim_rule: VictimRule::LeastProgress }, "least work"),
            (PreemptReason::HigherTier { for_job: JobId(2), victim_tier: 0, for_tier: 5, victim_rule: VictimRule::MostAttained }, "most attained"),
            (PreemptReason::HigherTier { for_job: JobId(2), victim_tier: 0, for_tier: 5, victim_rule: VictimRule::LowestTier }, "for job 2 of a higher tier (5 over this job's tier 0)"),
            (PreemptReason::QuotaReclaim { for_job: JobId(4), tenant: TenantId(0), used: 6.0, quota: 4.0, for_tenant: TenantId(1) }, "borrowed beyond its quota (6 held, quota 4) for job 4 of tenant 1"),
        ];
        for (p, word) in preempts {
            let text = preempt_reason(&v(serde_json::to_value(&p)), &names);
            assert!(!raw(&text) && text.contains(word), "{text}");
        }
        let round_ends = [
            (
                PreemptReason::RoundEnd { round: 5, share: 0.4, received: 0.5, priority: Some(0.8), moved_to: None },
                vec!["start of round 5", "did not choose it", "share of the round's time was 40.0%", "run 50.0% of its active time", "priority (share over received) was 0.800", "returns to the queue"],
            ),
            (
                PreemptReason::RoundEnd { round: 5, share: 0.4, received: 0.0, priority: None, moved_to: None },
                vec!["no service yet, so it ranked first too", "ranked ahead of it took the devices"],
            ),
            (
                PreemptReason::RoundEnd { round: 6, share: 1.0, received: 0.25, priority: Some(4.0), moved_to: Some(ModelId(2)) },
                vec!["start of round 6", "moved it to device model #2", "100.0%", "restarts there"],
            ),
        ];
        for (p, words) in round_ends {
            let text = preempt_reason(&v(serde_json::to_value(&p)), &names);
            assert!(!raw(&text), "{text}");
            for word in words {
                assert!(text.contains(word), "{text} lacks {word}");
            }
        }
        for (b, word) in [
            (Backfilled { mode: BackfillKind::Easy, head: JobId(9), reserved_start_s: Some(100.0), expected_end_s: Some(80.0), ends_before_reservation: true }, "easy backfilling ahead of blocked job 9, reserved to start at t=100 s: it is expected to end at t=80 s"),
            (Backfilled { mode: BackfillKind::Conservative, head: JobId(9), reserved_start_s: None, expected_end_s: None, ends_before_reservation: false }, "only devices the reservations do not need"),
        ] {
            let text = backfill_reason(&v(serde_json::to_value(b)));
            assert!(text.contains(word), "{text}");
        }
        let reserved = tessera_core::Notice::Reserved { job: JobId(1), start_s: Some(42.0), devices: 4 };
        assert_eq!(reserved_notice(&v(serde_json::to_value(&reserved))), "backfilling reserved 4 devices for it from t=42 s");
    }
}
