//! `tessera exec ...`: run the live executor (`serve`) and talk to it over its HTTP API.
//!
//! The client verbs find the executor at `--addr`, else `TESSERA_ADDR`, else 127.0.0.1:7878,
//! authenticate with `--token`, else `TESSERA_TOKEN`, and verify an HTTPS executor with the CA
//! in `--ca`, else `TESSERA_CA`. They print for people by default and JSON with `--json`.

use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tessera_core::validation::ValidationRecord;
use tessera_core::PolicySpec;
use tessera_exec::api::auth::{self, Role};
use tessera_exec::api::ApiConfig;
use tessera_exec::client::{Client, ClientError, ADDR_ENV, CA_ENV, DEFAULT_ADDR, TOKEN_ENV};
use tessera_exec::handle::{DeviceView, JobView};
use tessera_exec::serve::{self, ServeConfig};

#[derive(Args, Clone)]
pub struct Connection {
    /// The executor's address, HOST:PORT [default: $TESSERA_ADDR, else 127.0.0.1:7878].
    #[arg(long, global = true)]
    addr: Option<String>,
    /// The API token [default: $TESSERA_TOKEN].
    #[arg(long, global = true)]
    token: Option<String>,
    /// The CA certificate (PEM) that signed an HTTPS executor's certificate [default:
    /// $TESSERA_CA]. With it, an address without a scheme is https://.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

impl Connection {
    fn client(&self) -> Result<Client, String> {
        let addr = self.addr.clone().or_else(|| std::env::var(ADDR_ENV).ok().filter(|s| !s.is_empty())).unwrap_or_else(|| DEFAULT_ADDR.to_string());
        let token = self.token.clone().or_else(|| std::env::var(TOKEN_ENV).ok().filter(|s| !s.is_empty()));
        let ca = self.ca.clone().or_else(|| std::env::var_os(CA_ENV).filter(|s| !s.is_empty()).map(PathBuf::from));
        Client::with_ca(&addr, token, ca.as_deref()).map_err(|e| e.to_string())
    }
}

#[derive(Subcommand)]
pub enum ExecCommand {
    /// Run the executor: the daemon and its HTTP API, from an exec.toml ([daemon] and [api]).
    /// Stops cleanly on SIGINT or SIGTERM (running jobs keep running and are adopted by the
    /// next start on the same state dir).
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Load the configured policy even without a passing validation record (logged loudly).
        #[arg(long)]
        allow_unvalidated: bool,
    },
    /// Submit a job file (TOML); prints the job's id.
    Submit {
        job: PathBuf,
        #[command(flatten)]
        conn: Connection,
    },
    /// Show every job you may see, or one job in full.
    Status {
        job: Option<u64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Cancel a queued or running job.
    Cancel {
        job: u64,
        #[command(flatten)]
        conn: Connection,
    },
    /// Drain a device (by name like `cpu0`, a GPU UUID, or a node name): no new jobs, its jobs
    /// requeued with the policy's grace. Needs an `operate` token.
    Drain {
        device: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Return a drained device to service. Needs an `operate` token.
    Undrain {
        device: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// List the devices: model, health, drain, free share, jobs.
    Devices {
        #[command(flatten)]
        conn: Connection,
    },
    /// Make a new API token: prints it once, and the [[api.tokens]] lines for exec.toml.
    Token {
        /// Who holds it; jobs submitted with it are owned by this name.
        name: String,
        /// submit, operate or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A tenant the token acts for (repeat for several): a submit token may submit only as
        /// these, and sees only their jobs. Must be in the executor's [[daemon.tenants]].
        #[arg(long = "tenant", value_name = "TENANT")]
        tenants: Vec<String>,
    },
    /// Show the API's audit log: every call with its token's name, what it asked and the
    /// answer, refused calls included. Reads the journal directly (read-only), so it works
    /// with the executor running or stopped.
    Audit {
        #[command(flatten)]
        journal: JournalSource,
        /// Only calls at or after T: Unix seconds, a UTC date and time (2025-06-01,
        /// 2025-06-01T12:00:00Z), or a time ago (90s, 30m, 2h, 7d).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only calls made with the token of this entry name.
        #[arg(long, value_name = "NAME")]
        token: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Change the running policy (needs an `admin` token).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Follow the executor's events (every journalled state change) until interrupted.
    Events {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Measure submissions per second through the API on loopback: starts its own executor
    /// (temporary state dir, CPU devices drained so nothing runs) and submits JOBS jobs over
    /// CONCURRENCY connections. Build with --release.
    BenchApi {
        #[arg(long, default_value_t = 5000)]
        jobs: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// The rate to compare against.
        #[arg(long, default_value_t = 1000.0)]
        target_per_s: f64,
        /// The journal's durability (`journal.sync`): `full` (fsync at every commit) or
        /// `normal` (no fsync at commit: survives an executor crash, not a power loss).
        #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
        sync: String,
    },
    /// Write what the executor ran as a trace in the native schema (by the native writer), with
    /// the observed `start_s, end_s, wait_s, restarts, preemptions, runs, exec_state` columns
    /// after the native ones (times in seconds since the first submission), for `tessera sim` to replay and `tessera fidelity` to compare. Reads the
    /// journal directly (read-only), so it works with the executor running or stopped.
    ExportTrace {
        #[command(flatten)]
        journal: JournalSource,
        /// Where to write the CSV [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Apply the journal's retention now (`journal.keep_finished_jobs`, `keep_events_days`:
    /// from --config's `[daemon.journal]`, else the defaults, either overridden by the flags),
    /// then give the freed space back (a journal from before incremental auto-vacuum is
    /// rewritten once with `VACUUM`). The daemon does this itself at start-up and every
    /// `compact_interval_s`; this verb is for a stopped executor (it refuses while the
    /// journal's daemon runs).
    Compact {
        #[command(flatten)]
        journal: JournalSource,
        /// Ended jobs to keep (a number, or `forever`).
        #[arg(long)]
        keep_finished_jobs: Option<String>,
        /// Days of events to keep (a number, or `forever`).
        #[arg(long)]
        keep_events_days: Option<String>,
        /// Compact even though the journal's last daemon looks alive (its pid is in use).
        #[arg(long)]
        force: bool,
    },
    /// Write every scheduling decision the executor journalled, with its provenance (decision,
    /// reason, policy, devices), as JSON lines. Reads the journal directly (read-only).
    ExportDecisions {
        #[command(flatten)]
        journal: JournalSource,
        /// Where to write the JSON lines [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Where the executor's journal is: its state dir, or the exec.toml naming it.
#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
pub struct JournalSource {
    /// The executor's state dir (holding journal.sqlite).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The executor's exec.toml: its `daemon.state_dir`.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl JournalSource {
    /// The journal's path; an error when there is none there.
    fn journal_path(&self) -> Result<PathBuf, String> {
        let (state_dir, from) = match (&self.state_dir, &self.config) {
            (Some(dir), _) => (dir.clone(), format!("state dir {}", dir.display())),
            (None, Some(config)) => {
                let loaded = ServeConfig::load(config).map_err(|e| e.to_string())?;
                (loaded.daemon.state_dir.clone(), format!("state dir {} (daemon.state_dir of {})", loaded.daemon.state_dir.display(), config.display()))
            }
            (None, None) => return Err("give --state-dir DIR or --config exec.toml".into()),
        };
        let journal = state_dir.join("journal.sqlite");
        if !journal.is_file() {
            return Err(format!("{}: no journal in the {from}; has `tessera exec serve` run with it?", journal.display()));
        }
        Ok(journal)
    }
}

/// Writes `text` to `out` (through a temporary file renamed into place, so a reader never
/// sees half an export), or to standard output.
fn write_export(text: &str, out: Option<&Path>, what: &str) -> Result<(), String> {
    match out {
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| format!("standard output: {e}"))
        }
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("wrote {what} to {}", path.display());
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Swap the policy for the one in POLICY (TOML: the policy's keys, or a [policy] table),
    /// admitted by a validation record from `tessera validate`.
    Set {
        policy: PathBuf,
        /// The validation record (JSON) that admits exactly this policy.
        #[arg(long)]
        record: Option<PathBuf>,
        /// Swap even without a passing record (logged loudly by the executor).
        #[arg(long)]
        allow_unvalidated: bool,
        #[command(flatten)]
        conn: Connection,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn client_error(e: ClientError) -> String {
    match e {
        ClientError::Status { status, error, field: Some(field) } => format!("{status}: {error} (field `{field}`)"),
        other => other.to_string(),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), String> {
    println!("{}", serde_json::to_string_pretty(value).map_err(|e| e.to_string())?);
    Ok(())
}

fn unix_time(t: Option<f64>) -> String {
    match t {
        None => "-".into(),
        Some(t) => {
            let secs = t as i64;
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
        }
    }
}

/// Days since 1970-01-01 to a (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn job_table(jobs: &[JobView]) -> String {
    let mut out = format!("{:>6}  {:<20} {:<12} {:<10} {:<11} {:<14} {:>4}  {}\n", "ID", "NAME", "OWNER", "TENANT", "STATE", "DEVICES", "EXIT", "SUBMITTED");
    for j in jobs {
        let name: String = j.name.chars().take(20).collect();
        let devices = if j.devices.is_empty() { "-".to_string() } else { j.devices.join(",") };
        let exit = j.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:>6}  {:<20} {:<12} {:<10} {:<11} {:<14} {:>4}  {}\n",
            j.id,
            if name.is_empty() { "-".into() } else { name },
            j.owner,
            j.tenant,
            j.state.as_str(),
            devices,
            exit,
            unix_time(Some(j.submit_unix_s))
        ));
    }
    out
}

fn job_detail(j: &JobView) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<14} {v}\n"));
    line("job", j.id.to_string());
    line("name", if j.name.is_empty() { "-".into() } else { j.name.clone() });
    line("owner", j.owner.clone());
    line("tenant", format!("{} (priority {})", j.tenant, j.priority));
    line("state", j.state.as_str().to_string());
    line("command", std::iter::once(j.submission.command.as_str()).chain(j.submission.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" "));
    line("submitted", unix_time(Some(j.submit_unix_s)));
    line("started", unix_time(j.start_unix_s));
    line("ended", unix_time(j.end_unix_s));
    line("exit code", j.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()));
    line("runs", format!("{} ({} preempted, {} restarted after a failure)", j.runs, j.preemptions, j.restarts));
    line("devices", if j.devices.is_empty() { "-".into() } else { j.devices.join(", ") });
    line("stdout", j.stdout_path.display().to_string());
    line("stderr", j.stderr_path.display().to_string());
    if let Some(e) = &j.error {
        line("error", e.clone());
    }
    if let Some(w) = &j.wait_reason {
        line("waiting", w.to_string());
    }
    if let Some(l) = &j.launch_reason {
        line("launched", l.to_string());
    }
    out
}

fn audit_table(rows: &[tessera_exec::journal::AuditRow]) -> String {
    let mut out = format!("{:<23} {:<12} {:<6} {:<28} {:>6}  {:<40} {}\n", "TIME", "TOKEN", "METHOD", "PATH", "STATUS", "ASKED", "ANSWER");
    for r in rows {
        let at_s = r.at_unix_us as f64 / 1e6;
        let time = format!("{}.{:03}", unix_time(Some(at_s)).trim_end_matches('Z'), (r.at_unix_us / 1000) % 1000);
        let asked = match &r.asked {
            serde_json::Value::Object(map) if !map.is_empty() => map.iter().map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect::<Vec<_>>().join(" "),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:<23} {:<12} {:<6} {:<28} {:>6}  {:<40} {}\n",
            time + "Z",
            r.token.as_deref().unwrap_or("-"),
            r.method,
            r.path,
            r.status,
            asked,
            r.reason
        ));
    }
    out
}

/// `--since`: Unix seconds, `YYYY-MM-DD[THH:MM[:SS]][Z]` (UTC), or a time ago (`90s`, `30m`,
/// `2h`, `7d`), to Unix microseconds.
fn parse_since(text: &str, now_unix_us: u64) -> Result<u64, String> {
    let bad = || format!("--since `{text}`: expected Unix seconds, a UTC date and time (2025-06-01 or 2025-06-01T12:00:00Z), or a time ago (90s, 30m, 2h, 7d)");
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0 && secs < 1e11) {
            return Err(bad());
        }
        return Ok((secs * 1e6) as u64);
    }
    let unit_s = match t.chars().last() {
        Some('s') => Some(1.0),
        Some('m') => Some(60.0),
        Some('h') => Some(3600.0),
        Some('d') => Some(86_400.0),
        _ => None,
    };
    if let Some(unit_s) = unit_s {
        if let Ok(n) = t[..t.len() - 1].parse::<f64>() {
            if !(n.is_finite() && n >= 0.0 && n * unit_s < 1e11) {
                return Err(bad());
            }
            return Ok(now_unix_us.saturating_sub((n * unit_s * 1e6) as u64));
        }
    }
    let t = t.trim_end_matches('Z');
    let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, "00:00:00"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(day)), None) = (d.next(), d.next(), d.next(), d.next()) else { return Err(bad()) };
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (Some(Some(h)), Some(Some(min))) = (hms.next(), hms.next()) else { return Err(bad()) };
    let sec = match hms.next() {
        None => 0,
        Some(Some(s)) => s,
        Some(None) => return Err(bad()),
    };
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&day) || !(0..24).contains(&h) || !(0..60).contains(&min) || !(0..=60).contains(&sec) {
        return Err(bad());
    }
    let days = days_from_civil(y, m as u32, day as u32);
    Ok(((days * 86_400 + h * 3600 + min * 60 + sec) as u64) * 1_000_000)
}

/// (year, month, day), proleptic Gregorian, to days since 1970-01-01 (the inverse of
/// `civil_from_days`, H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn device_table(devices: &[DeviceView]) -> String {
    let mut out = format!("{:<10} {:<8} {:<12} {:<8} {:<8} {:>5}  {}\n", "DEVICE", "BACKEND", "MODEL", "HEALTH", "DRAINED", "FREE", "JOBS");
    for d in devices {
        let health = if d.unhealthy { d.health_reason.clone().unwrap_or_else(|| "unhealthy".into()) } else { "ok".into() };
        let jobs = if d.jobs.is_empty() { "-".into() } else { d.jobs.iter().map(u64::to_string).collect::<Vec<_>>().join(",") };
        out.push_str(&format!(
            "{:<10} {:<8} {:<12} {:<8} {:<8} {:>5.2}  {}\n",
            d.name,
            d.backend,
            d.model,
            health,
            if d.drained { "yes" } else { "no" },
            f64::from(d.free_milli) / 1000.0,
            jobs
        ));
    }
    out
}

/// A policy file: the policy's keys at the top level, or under a `[policy]` table.
fn read_policy(path: &Path) -> Result<PolicySpec, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped {
        policy: PolicySpec,
    }
    use tessera_driver::toml_input::from_toml;
    let has_table = toml::from_str::<toml::Table>(&text).map(|t| t.contains_key("policy")).unwrap_or(false);
    let parsed = if has_table { from_toml::<Wrapped>(&text).map(|w| w.policy) } else { from_toml::<PolicySpec>(&text) };
    parsed.map_err(|e| {
        let line = e.location.map(|l| format!(", line {}", l.line)).unwrap_or_default();
        let key = if e.path.is_empty() { String::new() } else { format!(", `{}`", e.path) };
        format!("{}{line}{key}: {}", path.display(), e.message)
    })
}

fn read_record(path: &Path) -> Result<ValidationRecord, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}, line {}: not a validation record: {e}", path.display(), e.line()))
}

pub fn run(command: ExecCommand) -> Result<(), String> {
    match command {
        ExecCommand::Serve { config, allow_unvalidated } => {
            let mut config = ServeConfig::load(&config).map_err(|e| e.to_string())?;
            if allow_unvalidated {
                config.daemon.allow_unvalidated = true;
            }
            let state_dir = config.daemon.state_dir.clone();
            let scheme = if config.api.tls.is_some() { "https" } else { "http" };
            let policy = config.daemon.policy.label().to_string();
            runtime()?.block_on(serve::serve(config, serve::shutdown_signal(), |addr| {
                // Scripts and tests read this line to learn the port (`listen = "127.0.0.1:0"`).
                println!("tessera exec: listening on {scheme}://{addr} (state dir {}, policy `{policy}`)", state_dir.display());
                let _ = std::io::Write::flush(&mut std::io::stdout());
            }))
            .map_err(|e| e.to_string())?;
            println!("tessera exec: stopped");
            Ok(())
        }
        ExecCommand::Submit { job, conn } => {
            let text = std::fs::read_to_string(&job).map_err(|e| format!("{}: {e}", job.display()))?;
            // Parsed here first so errors name the file, not `<request>`.
            tessera_exec::spec::parse_toml(&text, &job.display().to_string()).map_err(|e| e.to_string())?;
            let client = conn.client()?;
            let view = runtime()?.block_on(client.submit_toml(&text)).map_err(client_error)?;
            if conn.json {
                print_json(&view)
            } else {
                println!("submitted job {} ({}) as `{}`: {}", view.id, if view.name.is_empty() { "-" } else { &view.name }, view.owner, view.state.as_str());
                Ok(())
            }
        }
        ExecCommand::Status { job, conn } => {
            let client = conn.client()?;
            let rt = runtime()?;
            match job {
                Some(id) => {
                    let view = rt.block_on(client.show(id)).map_err(client_error)?;
                    if conn.json {
                        print_json(&view)
                    } else {
                        print!("{}", job_detail(&view));
                        Ok(())
                    }
                }
                None => {
                    let jobs = rt.block_on(client.list()).map_err(client_error)?;
                    if conn.json {
                        print_json(&jobs)
                    } else {
                        print!("{}", job_table(&jobs));
                        Ok(())
                    }
                }
            }
        }
        ExecCommand::Cancel { job, conn } => {
            let client = conn.client()?;
            let view = runtime()?.block_on(client.cancel(job)).map_err(client_error)?;
            if conn.json {
                print_json(&view)
            } else {
                println!("job {}: {}", view.id, view.state.as_str());
                Ok(())
            }
        }
        ExecCommand::Drain { device, conn } => drain(&device, true, &conn),
        ExecCommand::Undrain { device, conn } => drain(&device, false, &conn),
        ExecCommand::Devices { conn } => {
            let client = conn.client()?;
            let devices = runtime()?.block_on(client.devices()).map_err(client_error)?;
            if conn.json {
                print_json(&devices)
            } else {
                print!("{}", device_table(&devices));
                Ok(())
            }
        }
        ExecCommand::Token { name, role, tenants } => {
            if name.trim().is_empty() {
                return Err("the token's NAME is empty".into());
            }
            if let Some(t) = tenants.iter().find(|t| t.trim().is_empty()) {
                return Err(format!("--tenant `{t}` is empty"));
            }
            let token = auth::generate_token().map_err(|e| format!("the OS random number generator failed: {e}"))?;
            print!("{}", auth::token_instructions(&name, role, &tenants, &token));
            Ok(())
        }
        ExecCommand::Audit { journal, since, token, json } => {
            let path = journal.journal_path()?;
            let since_unix_us = since.as_deref().map(|t| parse_since(t, tessera_exec::journal::unix_now_us())).transpose()?;
            let reader = tessera_exec::journal::Journal::open_read_only(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let rows = reader.audit(since_unix_us, token.as_deref()).map_err(|e| format!("{}: {e}", path.display()))?;
            if json {
                for row in &rows {
                    println!("{}", serde_json::to_string(row).map_err(|e| e.to_string())?);
                }
            } else {
                print!("{}", audit_table(&rows));
            }
            Ok(())
        }
        ExecCommand::Policy { command: PolicyCommand::Set { policy, record, allow_unvalidated, conn } } => {
            let spec = read_policy(&policy)?;
            let record = record.as_deref().map(read_record).transpose()?;
            if record.is_none() && !allow_unvalidated {
                return Err("give the validation record (--record RECORD.json from `tessera validate`), or --allow-unvalidated".into());
            }
            let client = conn.client()?;
            let answer = runtime()?.block_on(client.set_policy(&spec, record.as_ref(), allow_unvalidated)).map_err(client_error)?;
            if conn.json {
                print_json(&answer)
            } else {
                println!("policy `{}` is in force{}", spec.label(), if record.is_some() { " (validated)" } else { " (UNVALIDATED)" });
                Ok(())
            }
        }
        ExecCommand::Events { count, conn } => {
            let client = conn.client()?;
            let mut seen = 0u64;
            runtime()?
                .block_on(client.events(|event| {
                    if conn.json {
                        println!("{}", event.data);
                    } else {
                        let parsed: serde_json::Value = serde_json::from_str(&event.data).unwrap_or(serde_json::Value::Null);
                        let job = parsed.get("job").and_then(|j| j.as_u64()).map(|j| format!("job {j}")).unwrap_or_else(|| "-".into());
                        let at = parsed.get("at_unix_s").and_then(|t| t.as_f64());
                        let detail = parsed.get("detail").map(|d| d.to_string()).unwrap_or_default();
                        println!("{}  #{:<6} {:<12} {:<10} {}", unix_time(at), event.id.as_deref().unwrap_or("-"), event.event, job, detail);
                    }
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    seen += 1;
                    count.is_none_or(|c| seen < c)
                }))
                .map_err(client_error)
        }
        ExecCommand::BenchApi { jobs, concurrency, target_per_s, sync } => {
            let sync = if sync == "normal" { tessera_exec::config::JournalSync::Normal } else { tessera_exec::config::JournalSync::Full };
            bench_api(jobs, concurrency.max(1), target_per_s, sync)
        }
        ExecCommand::ExportTrace { journal, out } => {
            let path = journal.journal_path()?;
            let csv = tessera_exec::export::export_trace(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let jobs = csv.lines().count().saturating_sub(1);
            write_export(&csv, out.as_deref(), &format!("{jobs} job(s)"))
        }
        ExecCommand::Compact { journal, keep_finished_jobs, keep_events_days, force } => compact(&journal, keep_finished_jobs.as_deref(), keep_events_days.as_deref(), force),
        ExecCommand::ExportDecisions { journal, out } => {
            let path = journal.journal_path()?;
            let lines = tessera_exec::export::export_decisions(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let decisions = lines.lines().count();
            write_export(&lines, out.as_deref(), &format!("{decisions} decision(s)"))
        }
    }
}

fn drain(device: &str, drain: bool, conn: &Connection) -> Result<(), String> {
    let client = conn.client()?;
    let answer = runtime()?.block_on(client.drain(device, drain)).map_err(client_error)?;
    if conn.json {
        print_json(&answer)
    } else {
        println!("{device}: {}", if drain { "drained" } else { "back in service" });
        Ok(())
    }
}

fn bench_api(jobs: u64, concurrency: usize, target_per_s: f64, sync: tessera_exec::config::JournalSync) -> Result<(), String> {
    let state = tempfile_dir()?;
    let token = auth::generate_token().map_err(|e| e.to_string())?;
    let mut daemon = tessera_exec::config::DaemonConfig::new(state.join("state"));
    daemon.allow_unvalidated = true;
    daemon.cpu.devices = tessera_exec::config::CpuDevices::Count(2);
    daemon.gpu.enabled = tessera_exec::config::GpuEnabled::Off;
    daemon.journal.sync = sync;
    let api = ApiConfig {
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        tokens: vec![auth::TokenEntry::new("bench", Role::Operate, auth::sha256_hex(&token))],
        ..ApiConfig::default()
    };
    let rt = runtime()?;
    let result = rt.block_on(async move {
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve::serve(ServeConfig { daemon, api }, async move { let _ = stop_rx.await; }, move |addr| {
            let _ = addr_tx.send(addr);
        }));
        let addr = addr_rx.await.map_err(|_| "the executor did not start".to_string())?;
        let client = Client::new(&addr.to_string(), Some(token)).map_err(|e| e.to_string())?;
        // Nothing runs: the measure is the submission path (auth, parse, core, journal commit).
        for d in client.devices().await.map_err(client_error)? {
            client.drain(&d.name, true).await.map_err(client_error)?;
        }
        let mut spec = tessera_exec::spec::JobSubmission::command("true", &[]);
        spec.devices.count = 1;
        let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (client, next, mut spec) = (client.clone(), next.clone(), spec.clone());
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= jobs {
                        return Ok::<_, String>(latencies);
                    }
                    spec.name = format!("bench-{i}");
                    let t = Instant::now();
                    client.submit(&spec).await.map_err(client_error)?;
                    latencies.push(t.elapsed());
                }
            }));
        }
        let mut latencies: Vec<Duration> = Vec::new();
        for w in workers {
            latencies.extend(w.await.map_err(|e| e.to_string())??);
        }
        let wall = started.elapsed();
        let listed = client.list().await.map_err(client_error)?.len() as u64;
        // Where the time went, from the server's own histograms.
        let exposition = tessera_exec::api::metrics::parse_text(&client.metrics_text().await.map_err(client_error)?)?;
        let mean_ms = |name: &str| {
            let sum = exposition.value(&format!("{name}_sum"), &[]).unwrap_or(f64::NAN);
            let count = exposition.value(&format!("{name}_count"), &[]).unwrap_or(f64::NAN);
            (sum / count * 1e3, count)
        };
        let server_side = [mean_ms("tessera_exec_journal_commit_latency_seconds"), mean_ms("tessera_exec_decision_latency_seconds"), mean_ms("tessera_exec_batch_inputs")];
        // The same number of requests that go through the API and the daemon actor but write
        // nothing (GET /healthz asks the daemon for its devices): the API's own ceiling here.
        let probe_started = Instant::now();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut probes = Vec::new();
        for _ in 0..concurrency {
            let (client, next) = (client.clone(), next.clone());
            probes.push(tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < jobs {
                    client.healthz().await.map_err(client_error)?;
                }
                Ok::<_, String>(())
            }));
        }
        for p in probes {
            p.await.map_err(|e| e.to_string())??;
        }
        let probe_per_s = jobs as f64 / probe_started.elapsed().as_secs_f64();
        let _ = stop_tx.send(());
        server.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        Ok::<_, String>((wall, latencies, listed, server_side, probe_per_s))
    });
    let _ = std::fs::remove_dir_all(&state);
    let (wall, mut latencies, listed, [(commit_ms, commits), (decision_ms, decisions), (batch_milli, batches)], probe_per_s) = result?;
    if listed != jobs {
        return Err(format!("submitted {jobs} jobs but the executor lists {listed}"));
    }
    latencies.sort();
    let q = |p: f64| latencies.get(((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1).map(|d| d.as_secs_f64() * 1e3).unwrap_or(f64::NAN);
    let rate = jobs as f64 / wall.as_secs_f64();
    println!(
        "{jobs} submissions over {concurrency} connections in {:.3} s: {rate:.0} submissions/s (target {target_per_s:.0}: {}); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; all {listed} listed",
        wall.as_secs_f64(),
        if rate >= target_per_s { "met" } else { "MISSED" },
        q(0.5),
        q(0.99),
        q(1.0)
    );
    println!(
        "server side: {commits:.0} journal commits, mean {commit_ms:.2} ms (journal.sync = {sync:?}, one per batch); {batches:.0} batches of {:.1} inputs on average; \
         {decisions:.0} core inputs, mean {decision_ms:.3} ms; {probe_per_s:.0} requests/s through the API and the daemon without a journal write (GET /healthz)",
        batch_milli / 1e3
    );
    Ok(())
}

/// `forever` or a number, for a retention flag.
fn parse_limit<T: std::str::FromStr>(flag: &str, text: &str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    if text == "forever" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| format!("--{flag}: expected a number or `forever`, found `{text}` ({e})"))
}

fn compact(source: &JournalSource, keep_finished_jobs: Option<&str>, keep_events_days: Option<&str>, force: bool) -> Result<(), String> {
    let path = source.journal_path()?;
    let mut retention = match &source.config {
        Some(config) => ServeConfig::load(config).map_err(|e| e.to_string())?.daemon.journal,
        None => tessera_exec::config::JournalConfig::default(),
    };
    if let Some(text) = keep_finished_jobs {
        retention.keep_finished_jobs = parse_limit("keep-finished-jobs", text)?;
    }
    if let Some(text) = keep_events_days {
        retention.keep_events_days = parse_limit::<f64>("keep-events-days", text)?;
    }
    retention.validate().map_err(|e| e.to_string())?;
    let at = |e: tessera_exec::ExecError| format!("{}: {e}", path.display());
    let mut journal = tessera_exec::journal::Journal::open(&path).map_err(at)?;
    // The daemon that last started on this journal, unless it said it stopped.
    let started = journal.events(Some("daemon_started")).map_err(at)?.pop();
    let stopped = journal.events(Some("daemon_stopped")).map_err(at)?.pop();
    if let Some(started) = started.filter(|s| stopped.as_ref().is_none_or(|t| t.seq < s.seq)) {
        let pid = started.detail.get("pid").and_then(|p| p.as_u64());
        if let Some(pid) = pid.filter(|&p| p != std::process::id() as u64 && Path::new(&format!("/proc/{p}")).exists()) {
            if !force {
                return Err(format!(
                    "{}: the executor that started on this journal (pid {pid}) looks alive; it compacts its journal itself every `journal.compact_interval_s`. Stop it first, or give --force if pid {pid} is another process",
                    path.display()
                ));
            }
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = path.with_file_name("journal.sqlite-wal");
    let before = size(&path) + size(&wal);
    let (jobs_before, events_before) = journal.counts().map_err(at)?;
    let now_us = tessera_exec::journal::unix_now_us().saturating_sub(journal.epoch_unix_us()).max(journal.last_t_us().map_err(at)?);
    let (mut jobs_deleted, mut events_deleted) = (0usize, 0u64);
    loop {
        let (report, _) = journal.compact(now_us, &retention, tessera_exec::journal::COMPACT_MAX_ROWS_PER_PASS).map_err(at)?;
        jobs_deleted += report.jobs_deleted.len();
        events_deleted += report.events_deleted;
        if !report.unfinished {
            break;
        }
    }
    journal.shrink().map_err(at)?;
    if journal.enable_incremental_vacuum().map_err(at)? {
        println!("{}: rewritten with incremental auto-vacuum (VACUUM), so the daemon's compactions give freed space back from now on", path.display());
    }
    let (jobs_after, events_after) = journal.counts().map_err(at)?;
    drop(journal);
    println!(
        "{}: deleted {jobs_deleted} ended job(s) and {events_deleted} event(s); {jobs_before} -> {jobs_after} jobs, {events_before} -> {events_after} events, {before} -> {} bytes (database and WAL)",
        path.display(),
        size(&path) + size(&wal)
    );
    Ok(())
}

/// A fresh directory under the system's temporary directory, for the benchmark's state.
fn tempfile_dir() -> Result<PathBuf, String> {
    let token = auth::generate_token().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("tessera-bench-api-{}", &token[auth::TOKEN_PREFIX.len()..][..12]));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_render_in_utc() {
        assert_eq!(unix_time(Some(0.0)), "1970-01-01 00:00:00Z");
        assert_eq!(unix_time(Some(1_700_000_000.5)), "2023-11-14 22:13:20Z");
        assert_eq!(unix_time(Some(951_782_400.0)), "2000-02-29 00:00:00Z");
        assert_eq!(unix_time(None), "-");
    }

    #[test]
    fn since_reads_unix_seconds_dates_and_ages() {
        let now = 1_700_000_000_000_000;
        assert_eq!(parse_since("1700000000", now), Ok(now));
        assert_eq!(parse_since("2023-11-14T22:13:20Z", now), Ok(now));
        assert_eq!(parse_since("2000-02-29", now), Ok(951_782_400_000_000));
        assert_eq!(parse_since("2h", now), Ok(now - 7_200_000_000));
        assert_eq!(parse_since("90s", now), Ok(now - 90_000_000));
        for bad in ["yesterday", "2023-13-01", "-5", "1e300", "5w", "2023-11-14T25:00"] {
            let e = parse_since(bad, now).unwrap_err();
            assert!(e.contains(bad) && e.contains("Unix seconds"), "{e}");
        }
        for days in [-1000, 0, 59, 60, 11_016, 20_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
