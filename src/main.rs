//! The `tessera` command: thin glue between the command line and the crates.

#[cfg(feature = "exec")]
mod exec_cli;
mod progress;
mod validate_cli;

use clap::{Args, Parser, Subcommand};
use tessera_traces::source::{GivenOption, TraceFormat};
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_sim::runner::{self, RunOptions};
use tessera_sim::scenario::Scenario;

/// The source revision this binary was built from (see build.rs).
const REVISION: &str = env!("TESSERA_REVISION");

#[derive(Parser)]
#[command(name = "tessera", version, about = "Schedule ML jobs on heterogeneous fleets: simulate policies before you deploy them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log more on stderr: -v what runs, -vv each run as it ends.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: every policy x replication; write summary.csv, jobs.csv and decisions.jsonl.
    Sim {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Output directory [default: out/<scenario name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only the policy with this label (or name).
        #[arg(long)]
        policy: Option<String>,
        /// Base seed, overriding the scenario's; replication k runs with seed + k.
        #[arg(long)]
        seed: Option<u64>,
        /// Number of replications, overriding the scenario's.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        replications: Option<u32>,
        /// Runs in parallel [default: the machine's cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Print nothing but errors.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        after: AfterRun,
    },
    /// Measure the simulator on a scenario: events per second, wall time and peak memory
    /// of each policy's first replication, run one at a time (build with --release).
    Bench {
        scenario: PathBuf,
        #[arg(long)]
        policy: Option<String>,
        /// Also write the decision log and jobs.csv (to a temporary directory) and time it.
        #[arg(long)]
        with_outputs: bool,
        /// Wall-time target in seconds to compare against.
        #[arg(long, default_value_t = 5.0)]
        target_wall_s: f64,
        /// Peak-memory target in MiB to compare against.
        #[arg(long, default_value_t = 1024.0)]
        target_mem_mib: f64,
        /// Record no time series, whatever the scenario's `[outputs] timeseries_s` says (to
        /// measure what recording them costs).
        #[arg(long)]
        no_timeseries: bool,
    },
    /// Compare the scenario's policies over replications (common random numbers): mean and 95%
    /// confidence interval of each metric, and the paired difference to the first policy with
    /// its interval and p-value; runs every [sweep] point. Writes comparison.csv and the usual
    /// per-run outputs.
    Compare {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Output directory [default: out/<scenario name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Number of replications, overriding the scenario's (at least 2 for intervals).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        replications: Option<u32>,
        /// Base seed, overriding the scenario's; replication k runs with seed + k.
        #[arg(long)]
        seed: Option<u64>,
        /// Runs in parallel [default: the machine's cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Print nothing but errors.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        after: AfterRun,
    },
    /// Write OUT_DIR/report.html (charts as inline SVG, also in OUT_DIR/plots/) and the Parquet
    /// copies of the CSV outputs, from the outputs of `tessera sim` or `tessera compare`.
    Report {
        /// The output directory of `tessera sim` or `tessera compare`.
        out_dir: PathBuf,
        /// Do not write the Parquet copies.
        #[arg(long)]
        no_parquet: bool,
    },
    /// Tell one job's story from a run's outputs: when it was submitted, why it waited and for
    /// how long, where and why it launched, who preempted it, and how it ended.
    Explain {
        /// The output directory of `tessera sim` or `tessera compare` (one sweep point's).
        out_dir: PathBuf,
        /// The job's id.
        job: u64,
        /// The policy label [default: the first policy of summary.csv].
        #[arg(long)]
        policy: Option<String>,
        /// The replication.
        #[arg(long, default_value_t = 0)]
        replication: u32,
    },
    /// The FGD paper's fill-up experiment: tasks drawn from the workload arrive and never
    /// leave, each placed at once by the policy's placement or dropped; prints and writes
    /// (DIR/fill.csv) the unallocated GPUs as the arrived GPU demand grows past capacity.
    Fill {
        /// The scenario file (TOML): its cluster, workload and policies (their placements).
        scenario: PathBuf,
        /// Output directory [default: out/<scenario name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Number of replications (task sequences), overriding the scenario's.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        replications: Option<u32>,
        /// Base seed, overriding the scenario's; replication k draws with seed + k.
        #[arg(long)]
        seed: Option<u64>,
        /// Stop when the arrived GPU demand reaches this percentage of the cluster's GPUs.
        #[arg(long, default_value_t = 130.0)]
        max_arrived_pct: f64,
        /// Only the policy with this label (or name).
        #[arg(long)]
        policy: Option<String>,
    },
    /// Check one policy of a scenario against requirements on its metrics and write the record
    /// the live executor's gate reads.
    ///
    /// Requirements are checked on each metric's mean over the replications. Exit status: 0
    /// when every requirement holds, 1 when one fails (the record is written either way), 2 on
    /// a usage error (bad scenario, policy, requirement or file; nothing is written).
    Validate(validate_cli::ValidateArgs),
    /// Measure how closely the simulator predicted a live run: per job, the error of the
    /// simulated wait and JCT against the executor's export (see --help for replaying one).
    Fidelity(validate_cli::FidelityArgs),
    /// Read public cluster traces: convert them to the native schema, or summarise them.
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
    },
    /// Prove that the executor decides as the simulator: run the scenario in both (the
    /// executor's own daemon, journal and recovery on virtual time, the cluster as simulated
    /// devices) and compare every decision. Exit 0 when identical, 1 at the first divergence
    /// (printed), 2 when the scenario cannot be conformed.
    Conform {
        scenario: PathBuf,
        /// The policy's label [default: every policy of the scenario, one after the other].
        #[arg(long)]
        policy: Option<String>,
        /// Which replication's workload (seed + K).
        #[arg(long, default_value_t = 0)]
        replication: u32,
        /// Kill the executor at this simulated time (seconds) and restart it from its journal.
        #[arg(long)]
        restart_at: Option<f64>,
    },
    /// The live executor: serve it, submit and follow jobs, drain devices, change the policy.
    #[cfg(feature = "exec")]
    Exec {
        #[command(subcommand)]
        command: exec_cli::ExecCommand,
    },
    /// The live executor: not in this build (rebuild with `--features exec`).
    #[cfg(not(feature = "exec"))]
    #[command(disable_help_flag = true)]
    Exec {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

/// What `sim` and `compare` do after their runs.
#[derive(Args)]
struct AfterRun {
    /// Do not write report.html and the charts.
    #[arg(long)]
    no_report: bool,
    /// Do not write the Parquet copies of the CSV outputs.
    #[arg(long)]
    no_parquet: bool,
}

impl AfterRun {
    fn run(&self, out_dir: &std::path::Path, quiet: bool) -> Result<(), String> {
        report_outputs(out_dir, !self.no_parquet, !self.no_report, quiet)
    }
}

#[cfg(feature = "report")]
fn report_outputs(out_dir: &std::path::Path, parquet: bool, html: bool, quiet: bool) -> Result<(), String> {
    if parquet {
        let written = tessera_report::write_parquet(out_dir).map_err(|e| e.to_string())?;
        if !quiet {
            println!("wrote {} Parquet files beside the CSVs", written.len());
        }
    }
    if html {
        let report = tessera_report::write_report(out_dir).map_err(|e| e.to_string())?;
        if !quiet {
            println!("wrote {} ({} charts, in {:.2} s)", report.path.display(), report.charts, report.seconds);
        }
    }
    Ok(())
}

#[cfg(not(feature = "report"))]
fn report_outputs(_: &std::path::Path, parquet: bool, html: bool, quiet: bool) -> Result<(), String> {
    if (parquet || html) && !quiet {
        eprintln!("note: this tessera was built without the `report` feature: no report.html or Parquet files");
    }
    Ok(())
}

#[derive(Args)]
struct TraceInput {
    /// The trace's format (`tessera trace formats` lists them, with their options).
    #[arg(long, short, default_value = tessera_traces::source::DEFAULT_FORMAT, value_parser = parse_format)]
    format: &'static dyn TraceFormat,
    /// One of the format's options, as KEY=VALUE (repeatable); a table as
    /// KEY=NAME=NUMBER,NAME=NUMBER.
    #[arg(long = "option", value_name = "KEY=VALUE", value_parser = parse_option)]
    options: Vec<(String, String)>,
    /// Shorthand for --option throughputs=PATH.
    #[arg(long, value_name = "PATH")]
    throughputs: Option<String>,
    /// Shorthand for --option reference_model=MODEL.
    #[arg(long, value_name = "MODEL")]
    reference_model: Option<String>,
    /// Shorthand for --option skip_unmeasured=true.
    #[arg(long)]
    skip_unmeasured: bool,
    /// Shorthand for --option work_s=APP=SECONDS (repeatable: the entries are gathered).
    #[arg(long = "work", value_parser = parse_work)]
    work_s: Vec<(String, f64)>,
}

impl TraceInput {
    /// Every option given, the shorthands as the `--option` they stand for.
    fn given_options(&self) -> Vec<(String, GivenOption)> {
        let mut given: Vec<(String, String)> = self.options.clone();
        given.extend(self.throughputs.iter().map(|p| ("throughputs".to_string(), p.clone())));
        given.extend(self.reference_model.iter().map(|m| ("reference_model".to_string(), m.clone())));
        if self.skip_unmeasured {
            given.push(("skip_unmeasured".to_string(), "true".to_string()));
        }
        given.extend(self.work_s.iter().map(|(app, secs)| ("work_s".to_string(), format!("{app}={secs}"))));
        given.into_iter().map(|(k, v)| (k, GivenOption::Text(v))).collect()
    }

    fn load(&self, path: &std::path::Path) -> Result<tessera_traces::source::LoadedTrace, String> {
        let options = tessera_traces::source::check_options(self.format, self.given_options()).map_err(|e| e.to_string())?;
        let loaded = tessera_traces::source::load(self.format, path, &options).map_err(|e| e.to_string())?;
        for note in &loaded.notes {
            eprintln!("note: {note}");
        }
        Ok(loaded)
    }
}

#[derive(Subcommand)]
enum TraceCommand {
    /// Convert a trace to the native schema: Parquet if OUT ends in .parquet, else CSV.
    Import {
        #[command(flatten)]
        input: TraceInput,
        /// The trace file (ITP: a cluster file or a directory of them).
        path: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print what a capacity planner asks of a trace first: jobs, span, arrivals by hour,
    /// device counts, durations, demand per tenant.
    Stats {
        #[command(flatten)]
        input: TraceInput,
        path: PathBuf,
    },
    /// Summarise an openb node list: nodes, CPU-only nodes, GPUs by model.
    Nodes { path: PathBuf },
    /// List the trace formats, each with its options.
    Formats,
}

fn parse_format(s: &str) -> Result<&'static dyn TraceFormat, String> {
    tessera_traces::source::find(s)
}

fn parse_option(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, found `{s}`"))?;
    Ok((key.to_string(), value.to_string()))
}

fn parse_work(s: &str) -> Result<(String, f64), String> {
    let (app, secs) = s.split_once('=').ok_or_else(|| format!("expected APP=SECONDS, found `{s}`"))?;
    let secs: f64 = secs.parse().map_err(|_| format!("expected a number of seconds after `=`, found `{secs}`"))?;
    Ok((app.to_string(), secs))
}

fn trace_command(command: TraceCommand) -> Result<(), String> {
    match command {
        TraceCommand::Import { input, path, out } => {
            let loaded = input.load(&path)?;
            let parquet = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
            if parquet {
                tessera_traces::write_native_parquet(&out, &loaded.jobs).map_err(|e| e.to_string())?;
            } else {
                let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
                tessera_traces::write_native_csv(file, &loaded.jobs).map_err(|e| format!("{}: {e}", out.display()))?;
            }
            println!("wrote {} jobs to {}", loaded.jobs.len(), out.display());
            Ok(())
        }
        TraceCommand::Stats { input, path } => {
            let loaded = input.load(&path)?;
            let stats = tessera_traces::stats::trace_stats(&loaded.jobs, loaded.day_offset_s);
            print!("{}", stats.render());
            Ok(())
        }
        TraceCommand::Nodes { path } => {
            let nodes = tessera_traces::openb::load_nodes(&path).map_err(|e| e.to_string())?;
            print!("{}", tessera_traces::stats::render_nodes(&nodes));
            Ok(())
        }
        TraceCommand::Formats => {
            print!("{}", tessera_traces::source::render_formats());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_target(false).init();
    let result = match cli.command {
        Command::Sim { scenario, out, policy, seed, replications, threads, quiet, after } => Scenario::load(&scenario)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                let out_dir = out.unwrap_or_else(|| PathBuf::from("out").join(&s.name));
                let (progress, display) = progress::ProgressDisplay::start(quiet);
                let options = RunOptions {
                    out_dir: Some(out_dir.clone()),
                    policy,
                    seed,
                    replications,
                    threads: threads.unwrap_or_else(runner::default_threads),
                    quiet,
                    revision: Some(REVISION.to_string()),
                    progress,
                };
                let ran = runner::run_scenario(&s, &options).map_err(|e| e.to_string());
                drop(display);
                ran?;
                after.run(&out_dir, quiet)
            }),
        Command::Bench { scenario, policy, with_outputs, target_wall_s, target_mem_mib, no_timeseries } => Scenario::load(&scenario)
            .map_err(|e| e.to_string())
            .and_then(|mut s| {
                if no_timeseries {
                    s.outputs.timeseries_s = 0.0;
                }
                runner::bench(&s, policy.as_deref(), with_outputs, target_wall_s, target_mem_mib).map_err(|e| e.to_string())
            }),
        Command::Compare { scenario, out, replications, seed, threads, quiet, after } => Scenario::load(&scenario)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                let out_dir = out.unwrap_or_else(|| PathBuf::from("out").join(&s.name));
                let (progress, display) = progress::ProgressDisplay::start(quiet);
                let options = RunOptions {
                    out_dir: Some(out_dir.clone()),
                    policy: None,
                    seed,
                    replications,
                    threads: threads.unwrap_or_else(runner::default_threads),
                    quiet,
                    revision: Some(REVISION.to_string()),
                    progress,
                };
                let ran = runner::compare_scenario(&s, &options).map_err(|e| e.to_string());
                drop(display);
                ran?;
                after.run(&out_dir, quiet)
            }),
        Command::Report { out_dir, no_parquet } => report_outputs(&out_dir, !no_parquet, true, false),
        Command::Explain { out_dir, job, policy, replication } => {
            tessera_reports::explain(&out_dir, job, policy.as_deref(), replication).map(|story| print!("{story}")).map_err(|e| e.to_string())
        }
        Command::Fill { scenario, out, replications, seed, max_arrived_pct, policy } => Scenario::load(&scenario)
            .map_err(|e| e.to_string())
            .and_then(|s| fill_command(&s, out, replications, seed, max_arrived_pct, policy)),
        Command::Validate(args) => return validate_cli::validate(args),
        Command::Conform { scenario, policy, replication, restart_at } => return conform_command(&scenario, policy, replication, restart_at),
        Command::Fidelity(args) => validate_cli::fidelity(args),
        Command::Trace { command } => trace_command(command),
        #[cfg(feature = "exec")]
        Command::Exec { command } => exec_cli::run(command),
        #[cfg(not(feature = "exec"))]
        Command::Exec { .. } => Err("this tessera was built without the live executor; build it with \
             `cargo build --release --features exec` (or `cargo run --release --features exec -- exec ...`)"
            .to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "exec")]
fn conform_command(scenario: &std::path::Path, policy: Option<String>, replication: u32, restart_at: Option<f64>) -> ExitCode {
    use tessera_exec::conform::{conform, ConformOptions};
    if restart_at.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
        eprintln!("error: --restart-at: expected a number of seconds >= 0");
        return ExitCode::from(2);
    }
    let labels: Vec<String> = match policy {
        Some(p) => vec![p],
        None => match Scenario::load(scenario) {
            Ok(s) => s.policies.iter().map(|p| p.label().to_string()).collect(),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut diverged = false;
    for label in labels {
        let options = ConformOptions { policy: Some(label), replication, restart_at_s: restart_at, state_dir: None };
        match conform(scenario, &options) {
            Ok(report) => {
                println!("{report}");
                diverged |= !report.identical();
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if diverged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(not(feature = "exec"))]
fn conform_command(_: &std::path::Path, _: Option<String>, _: u32, _: Option<f64>) -> ExitCode {
    eprintln!("error: conform runs the live executor's daemon; build tessera with `--features exec` (`cargo run --release --features exec -- conform ...`)");
    ExitCode::from(2)
}

fn fill_command(s: &Scenario, out: Option<PathBuf>, replications: Option<u32>, seed: Option<u64>, max_arrived_pct: f64, policy: Option<String>) -> Result<(), String> {
    use tessera_sim::fill;
    let options = fill::FillOptions { seed, replications, max_arrived: max_arrived_pct / 100.0, step: 0.01, policy };
    let points = fill::fill_scenario(s, &options).map_err(|e| e.to_string())?;
    let at: Vec<f64> = [0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1, 1.2, 1.3].into_iter().filter(|f| *f <= options.max_arrived + 1e-9).collect();
    print!("{}", fill::format_fill_table(&points, &at));
    let dir = out.unwrap_or_else(|| PathBuf::from("out").join(&s.name));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("fill.csv");
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    fill::write_fill_csv(std::io::BufWriter::new(file), &points).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
