//! `tessera trace` through the binary: counts checked against counts made independently from
//! the raw files, conversion round trips, and errors. Tests that need ../shared/traces print
//! why they skip when it is absent.

use std::path::Path;

mod support;
use support::{run_text as tessera, shared_trace as shared};

/// The number after `label` on the line that starts with it.
fn figure(report: &str, label: &str) -> u64 {
    let line = report.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no `{label}` in:\n{report}"));
    line[label.len()..].split_whitespace().next().unwrap().parse().unwrap()
}

/// Data rows of a CSV file, counted by splitting lines: no parser of ours involved.
fn data_rows(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().skip(1).filter(|l| !l.trim().is_empty()).count() as u64
}

#[test]
fn philly_job_count_matches_the_file() {
    let Some(path) = shared("philly-derived/pollux_philly.csv") else { return };
    let (ok, out, err) = tessera(&["trace", "stats", "-f", "philly", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(figure(&out, "jobs"), data_rows(&path));
    assert_eq!(figure(&out, "jobs"), 82_247);
    assert!(out.contains("arrivals by hour of day"), "Philly's timestamps give the time of day");
}

#[test]
fn itp_job_count_over_the_ten_clusters_matches_the_files() {
    let Some(dir) = shared("microsoft-itp-elasticflow/raw-traces") else { return };
    let independent: u64 = (1..=10).map(|n| data_rows(&dir.join(format!("cluster{n:02}.csv")))).sum();
    let (ok, out, err) = tessera(&["trace", "stats", "-f", "itp", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(figure(&out, "jobs"), independent);
    assert_eq!(independent, 69_351);
}

#[test]
fn openb_pods_and_nodes_match_the_files() {
    let (Some(pods), Some(nodes)) = (
        shared("alibaba-gpu-v2023-openb/openb_pod_list_default.csv"),
        shared("alibaba-gpu-v2023-openb/openb_node_list_all_node.csv"),
    ) else {
        return;
    };
    let (ok, out, err) = tessera(&["trace", "stats", "-f", "openb", pods.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(figure(&out, "jobs"), data_rows(&pods));
    assert_eq!(figure(&out, "jobs"), 8_152);
    assert!(err.contains("pending pods") && err.contains("censored"), "the repairs are reported: {err}");
    // GPUs per node: the fourth column, summed by splitting.
    let text = std::fs::read_to_string(&nodes).unwrap();
    let gpus: u64 = text.lines().skip(1).map(|l| l.split(',').nth(3).unwrap().parse::<u64>().unwrap()).sum();
    let (ok, out, err) = tessera(&["trace", "nodes", nodes.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(figure(&out, "nodes"), data_rows(&nodes));
    assert_eq!(figure(&out, "GPUs"), gpus);
    assert_eq!((figure(&out, "nodes"), gpus), (1_523, 6_212));
}

#[test]
fn import_to_parquet_and_csv_gives_the_same_statistics_and_simulates() {
    let Some(path) = shared("philly-derived/pollux_philly.csv") else { return };
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("philly.parquet");
    let csv = dir.path().join("philly.csv");
    for out in [&parquet, &csv] {
        let (ok, stdout, err) = tessera(&["trace", "import", "-f", "philly", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(ok, "{err}");
        assert!(stdout.contains("wrote 82247 jobs"), "{stdout}");
    }
    let (_, from_parquet, _) = tessera(&["trace", "stats", parquet.to_str().unwrap()]);
    let (_, from_csv, _) = tessera(&["trace", "stats", csv.to_str().unwrap()]);
    let (_, original, _) = tessera(&["trace", "stats", "-f", "philly", path.to_str().unwrap()]);
    assert_eq!(from_parquet, from_csv);
    // The native files lose only the time of day of second 0 (not in the schema).
    let strip = |s: &str| s.lines().filter(|l| !l.contains("arrivals by hour") && !l.contains("h ")).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&from_parquet), strip(&original));
    // A scenario reads the Parquet file as a native trace.
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"pq\"\n[[cluster.nodes]]\ncount = 64\ndevices = { model = \"P100\", count = 8 }\ncpu_cores = 8\nmem_gib = 8\n\
         [workload]\ntrace = { format = \"native\", path = \"philly.parquet\" }\nfirst_jobs = 500\n[[policies]]\nname = \"fifo\"\n",
    )
    .unwrap();
    let (ok, _, err) = tessera(&["sim", scenario.to_str().unwrap(), "--out", dir.path().join("out").to_str().unwrap(), "--quiet"]);
    assert!(ok, "{err}");
    let jobs = std::fs::read_to_string(dir.path().join("out/fifo/r0/jobs.csv")).unwrap();
    assert_eq!(jobs.lines().count(), 501);
}

#[test]
fn bad_formats_and_missing_options_are_explained() {
    let (ok, _, err) = tessera(&["trace", "stats", "-f", "slurm", "x.csv"]);
    assert!(!ok && err.contains("unknown trace format `slurm`") && err.contains("philly, philly-log"), "{err}");
    let fixture = support::trace_fixture("gavel/vc1.trace");
    let (ok, _, err) = tessera(&["trace", "stats", "-f", "gavel", fixture.to_str().unwrap()]);
    assert!(!ok && err.contains("needs `throughputs`"), "{err}");
    let (ok, _, err) = tessera(&["trace", "stats", "-f", "philly", "/nonexistent/philly.csv"]);
    assert!(!ok && err.contains("/nonexistent/philly.csv") && !err.contains("panicked"), "{err}");
    let (ok, _, err) = tessera(&["trace", "stats", "-f", "pollux", "--work", "cifar10", "x.csv"]);
    assert!(!ok && err.contains("APP=SECONDS"), "{err}");
}

/// One row with a duration of 1e300 s once made `trace stats` report 1e296 device-hours; a row
/// beyond a bound is an error naming the file, its line, the column and the bound.
#[test]
fn a_row_beyond_a_bound_is_an_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.csv");
    let header = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class\n";
    for (row, column) in [("2,5,a,0,1,,1e300,x", "duration_s"), ("2,4e9,a,0,1,,10,x", "submit_s"), ("2,5,a,0,2e6,,10,x", "devices")] {
        std::fs::write(&path, format!("{header}1,0,a,0,1,,100,x\n{row}\n")).unwrap();
        for command in ["stats", "import"] {
            let out = dir.path().join("out.csv");
            let args: Vec<&str> = if command == "stats" { vec!["trace", "stats", path.to_str().unwrap()] } else { vec!["trace", "import", "-f", "native", path.to_str().unwrap(), "--out", out.to_str().unwrap()] };
            let (ok, stdout, err) = tessera(&args);
            assert!(!ok && stdout.is_empty(), "{command} {row}: {stdout}");
            assert!(err.contains("jobs.csv: line 3") && err.contains(&format!("column `{column}`")) && err.contains("beyond the bound of"), "{command} {row}: {err}");
        }
    }
}

/// `tessera trace formats` is the registry: every format, its line, and each of its options.
#[test]
fn trace_formats_lists_the_registry_with_options() {
    let (ok, out, err) = tessera(&["trace", "formats"]);
    assert!(ok, "{err}");
    assert_eq!(out, tessera_traces::source::render_formats());
    for format in tessera_traces::source::FORMATS {
        assert!(out.lines().any(|l| l.starts_with(format.name()) && l.contains(format.description())), "{}:\n{out}", format.name());
        for option in format.options() {
            assert!(out.contains(&format!("{}={}", option.name, option.kind.placeholder())), "{}:\n{out}", option.name);
        }
    }
    assert!(out.contains("throughputs=PATH (required)") && out.contains("work_s=NAME=NUMBER,... (required)"), "{out}");
}

/// `--option KEY=VALUE` reaches any format's options, checked by the format: the shorthand
/// flags mean the same, and an unknown option or a value of the wrong kind is refused naming
/// the format and the option.
#[test]
fn generic_options_equal_the_shorthands_and_are_checked() {
    let (trace, table) = (support::trace_fixture("gavel/vc1.trace"), support::trace_fixture("gavel/throughputs.json"));
    let (trace, table) = (trace.to_str().unwrap(), table.to_str().unwrap());
    let (ok, shorthand, err) = tessera(&["trace", "stats", "-f", "gavel", "--throughputs", table, "--skip-unmeasured", trace]);
    assert!(ok, "{err}");
    let option = format!("throughputs={table}");
    let (ok, generic, err) = tessera(&["trace", "stats", "-f", "gavel", "--option", &option, "--option", "skip_unmeasured=true", trace]);
    assert!(ok, "{err}");
    assert_eq!(generic, shorthand);
    assert!(figure(&generic, "jobs") > 0, "{generic}");
    let (ok, _, err) = tessera(&["trace", "stats", "-f", "gavel", "--option", &option, "--option", "throughput=x", trace]);
    assert!(!ok && err.contains("the gavel trace format has no option `throughput`") && err.contains("throughputs, reference_model"), "{err}");
    let (ok, _, err) = tessera(&["trace", "stats", "-f", "gavel", "--option", &option, "--option", "skip_unmeasured=yes", trace]);
    assert!(!ok && err.contains("option `skip_unmeasured` must be true or false"), "{err}");
    let (ok, _, err) = tessera(&["trace", "stats", "-f", "native", "--option", "nokey", trace]);
    assert!(!ok && err.contains("expected KEY=VALUE"), "{err}");
}
