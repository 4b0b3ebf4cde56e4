//! The `tessera` command: thin glue between the command line and the crates.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_sim::runner::{self, RunOptions};
use tessera_sim::scenario::Scenario;

#[derive(Parser)]
#[command(name = "tessera", version, about = "Schedule ML jobs on heterogeneous fleets: simulate policies before you deploy them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim { scenario, out, policy, seed, replications, threads, quiet } => Scenario::load(&scenario)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                let out_dir = out.unwrap_or_else(|| PathBuf::from("out").join(&s.name));
                let options = RunOptions {
                    out_dir: Some(out_dir),
                    policy,
                    seed,
                    replications,
                    threads: threads.unwrap_or_else(runner::default_threads),
                    quiet,
                };
                runner::run_scenario(&s, &options).map(|_| ()).map_err(|e| e.to_string())
            }),
        Command::Bench { scenario, policy, with_outputs, target_wall_s, target_mem_mib } => Scenario::load(&scenario)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                runner::bench(&s, policy.as_deref(), with_outputs, target_wall_s, target_mem_mib).map_err(|e| e.to_string())
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
