//! `tessera validate` and `tessera fidelity`: the command-line side of the validated-policy
//! gate. The logic lives in `tessera_sim::validate` and `tessera_reports::fidelity`.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_sim::runner;
use tessera_sim::validate::{self, Requirement, ValidateOptions};

/// Exit status of a validation that ran and failed a requirement.
const EXIT_FAILED: u8 = 1;
/// Exit status of an error that kept a verdict from being reached (as clap's usage errors).
const EXIT_USAGE: u8 = 2;

#[derive(Args)]
pub struct ValidateArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// The policy to validate: its label in the scenario (or its name, if only one has it).
    #[arg(long)]
    policy: String,
    /// A requirement `METRIC OP NUMBER`, OP one of < <= > >= == != (repeatable; all must hold),
    /// on the metric's mean over replications, e.g. 'p95_wait_s < 3600'. Metrics: those of
    /// `tessera compare` and summary.csv (avg_jct_s, p95_wait_s, utilization, jain_fairness,
    /// events, failures, device_hours_per_job:<MODEL>, ...; a bad name lists them all).
    #[arg(long = "require", required = true, value_name = "EXPR")]
    requirements: Vec<String>,
    /// Where to write the record [default: out/<scenario name>/validate-<label>.json].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Base seed, overriding the scenario's; replication k runs with seed + k.
    #[arg(long)]
    seed: Option<u64>,
    /// Number of replications, overriding the scenario's.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    replications: Option<u32>,
    /// Runs in parallel [default: the machine's cores]; the record does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Runs `tessera validate`: exit 0 when every requirement holds, 1 when one fails (the record
/// is written either way), 2 when no verdict could be reached.
pub fn validate(args: ValidateArgs) -> ExitCode {
    let requirements = match args.requirements.iter().map(|r| Requirement::parse(r)).collect::<Result<Vec<_>, _>>() {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let options = ValidateOptions {
        policy: args.policy.clone(),
        requirements,
        seed: args.seed,
        replications: args.replications,
        threads: args.threads.unwrap_or_else(runner::default_threads),
    };
    let (record, scenario_name) = match validate::validate(&args.scenario, &options) {
        Ok(v) => (v.record, v.scenario_name),
        Err(e) => return usage_error(e),
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("out").join(scenario_name).join(format!("validate-{}.json", record.policy.label())));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return usage_error(format!("{}: {e}", dir.display()));
        }
    }
    if let Err(e) = std::fs::write(&out, validate::record_json(&record)) {
        return usage_error(format!("{}: {e}", out.display()));
    }
    println!(
        "validating `{}` over {} replication(s) from seed {}:",
        record.policy.label(),
        record.replications,
        record.seed
    );
    for r in &record.requirements {
        println!("  {}  {}  (measured {})", if r.passed { "pass" } else { "FAIL" }, r.expr, r.value);
    }
    println!("{}; wrote {}", if record.passed { "passed" } else { "FAILED" }, out.display());
    if record.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

#[derive(Args)]
#[command(after_long_help = REPLAY_HELP)]
pub struct FidelityArgs {
    /// What the executor ran: its export in the native trace schema with the extra columns
    /// `start_s`, `end_s` and `wait_s`.
    observed: PathBuf,
    /// What the simulator predicted: the `jobs.csv` of `tessera sim` on a scenario replaying
    /// the export, or that run's output directory (with exactly one policy x replication).
    simulated: PathBuf,
    /// A job's prediction is within tolerance when its wait and JCT errors are at most this.
    #[arg(long, default_value_t = 10.0)]
    tolerance_s: f64,
    /// Where to write fidelity.csv (per job) and fidelity_summary.csv [default: out/fidelity].
    #[arg(long)]
    out: Option<PathBuf>,
}

const REPLAY_HELP: &str = "\
Replaying an executor export: write a scenario whose workload is the export itself and whose
cluster is the machine it ran on, with the policy the executor ran (scenarios/exec-replay/
replay.toml is a template), run it once, and compare:

  [workload]
  trace = { format = \"native\", path = \"observed.csv\" }   # unchanged: no window_s, first_jobs, load_scale
  [[cluster.nodes]]
  devices = { model = \"CPU\", count = 2 }                 # the executor's 2 CPU device slots
  cpu_cores = 2
  [[policies]]
  name = \"fifo\"                                          # exactly the executor's policy

  tessera sim replay.toml --out out/replay --replications 1
  tessera fidelity observed.csv out/replay --tolerance-s 5

Errors are simulated - observed. A job in one file only, a job that never ended, or a job
submitted at different times in the two files is an error, never skipped.";

/// Runs `tessera fidelity`: prints the summary and writes the two CSV files.
pub fn fidelity(args: FidelityArgs) -> Result<(), String> {
    use std::fs::File;
    use std::io::BufWriter;
    let report = tessera_reports::fidelity::fidelity(&args.observed, &args.simulated, args.tolerance_s).map_err(|e| e.to_string())?;
    let out = args.out.unwrap_or_else(|| PathBuf::from("out").join("fidelity"));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let jobs_path = out.join("fidelity.csv");
    let file = File::create(&jobs_path).map_err(|e| format!("{}: {e}", jobs_path.display()))?;
    report.write_jobs_csv(BufWriter::new(file)).map_err(|e| format!("{}: {e}", jobs_path.display()))?;
    let summary_path = out.join("fidelity_summary.csv");
    let file = File::create(&summary_path).map_err(|e| format!("{}: {e}", summary_path.display()))?;
    report.write_summary_csv(BufWriter::new(file)).map_err(|e| format!("{}: {e}", summary_path.display()))?;
    print!("{}", report.render());
    println!("wrote {} and {}", jobs_path.display(), summary_path.display());
    Ok(())
}
