//! A scenario's `[workload.trace]` hands every key beside `format` and `path` to the format:
//! what the format refuses is an error naming the scenario file, the key and its line; what it
//! accepts reaches the loader, path options resolved against the scenario's directory.

use std::path::{Path, PathBuf};
use tessera_sim::scenario::{Scenario, ScenarioError};

const HEAD: &str = "name = \"t\"\n\n[[cluster.nodes]]\ncount = 1\ndevices = { model = \"V100-32GB\", count = 4 }\n\n[workload]\n";
const TAIL: &str = "\n[[policies]]\nname = \"fifo\"\n";

/// The traces crate's fixtures, which the scenarios below name relative to their own directory.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces/tests/fixtures")
}

fn scenario(trace: &str) -> Result<Scenario, ScenarioError> {
    Scenario::from_toml_str(&format!("{HEAD}{trace}{TAIL}"), &fixtures().join("scenario.toml"))
}

/// The error's key, its line, and its text; the text must name the scenario file.
fn refused(trace: &str) -> (String, Option<usize>, String) {
    let e = scenario(trace).expect_err("the scenario should be refused");
    let text = e.to_string();
    assert!(text.starts_with(&fixtures().join("scenario.toml").display().to_string()), "{text}");
    (e.key().unwrap_or_default().to_string(), e.location().map(|l| l.line), text)
}

/// Line 8 is the first line after HEAD.
const TRACE_LINE: usize = 8;

#[test]
fn an_unknown_option_is_refused_at_its_key_and_line() {
    let (key, line, text) =
        refused("trace = { format = \"gavel\", path = \"gavel/vc1.trace\", throughputs = \"gavel/throughputs.json\", throughput = \"x\" }\n");
    assert_eq!((key.as_str(), line), ("workload.trace.throughput", Some(TRACE_LINE)), "{text}");
    assert!(text.contains("the gavel trace format has no option `throughput`"), "{text}");
    // In a [workload.trace] table, the line is the key's own.
    let (key, line, text) = refused("[workload.trace]\nformat = \"native\"\npath = \"x.csv\"\n\nwork_s = { a = 1 }\n");
    assert_eq!((key.as_str(), line), ("workload.trace.work_s", Some(TRACE_LINE + 4)), "{text}");
    assert!(text.contains("the native trace format has no option `work_s`; it takes no options"), "{text}");
}

#[test]
fn a_missing_required_option_is_refused_naming_it() {
    let (key, line, text) = refused("trace = { format = \"gavel\", path = \"gavel/vc1.trace\" }\n");
    assert_eq!((key.as_str(), line), ("workload.trace.throughputs", Some(TRACE_LINE)), "{text}");
    assert!(text.contains("the gavel trace format needs `throughputs`"), "{text}");
}

#[test]
fn a_value_of_the_wrong_kind_is_refused_at_its_key_and_line() {
    let (key, line, text) = refused(
        "[workload.trace]\nformat = \"gavel\"\npath = \"gavel/vc1.trace\"\nthroughputs = \"gavel/throughputs.json\"\nskip_unmeasured = \"yes\"\n",
    );
    assert_eq!((key.as_str(), line), ("workload.trace.skip_unmeasured", Some(TRACE_LINE + 4)), "{text}");
    assert!(text.contains("must be true or false, found \"yes\""), "{text}");
    // One entry of a table: named within the table, as the scenario's other keys are.
    let (key, _, text) = refused("trace = { format = \"pollux\", path = \"pollux/workload-1.csv\", work_s = { cifar10 = 3600, ncf = 0 } }\n");
    assert_eq!(key, "workload.trace.work_s.ncf", "{text}");
    assert!(text.contains("positive numbers, { NAME = NUMBER, ... }, found 0"), "{text}");
}

#[test]
fn a_missing_path_option_file_is_named_by_its_key() {
    let (key, _, text) = refused("trace = { format = \"gavel\", path = \"gavel/vc1.trace\", throughputs = \"gavel/none.json\" }\n");
    assert_eq!(key, "workload.trace.throughputs", "{text}");
    assert!(text.contains("no such file") && text.contains("none.json"), "{text}");
}

#[test]
fn accepted_options_reach_the_format_resolved_against_the_scenario() {
    let s = scenario(
        "trace = { format = \"gavel\", path = \"gavel/vc1.trace\", throughputs = \"gavel/throughputs.json\", reference_model = \"k80\" }\n",
    )
    .unwrap();
    let trace = s.workload.trace.as_ref().unwrap();
    assert_eq!(trace.format.name(), "gavel");
    assert_eq!(trace.path, fixtures().join("gavel/vc1.trace"));
    assert_eq!(trace.options.path("throughputs"), Some(fixtures().join("gavel/throughputs.json").as_path()));
    assert_eq!(trace.options.text("reference_model"), Some("k80"));
    assert!(!trace.options.flag("skip_unmeasured"));
}
