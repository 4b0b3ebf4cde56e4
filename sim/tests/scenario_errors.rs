//! Broken scenario files must produce an error that names the file, the key at fault and what
//! was expected, and must never panic. Valid ones must parse into what they say.

use std::path::{Path, PathBuf};
use tessera_core::{JobId, Time, WHOLE_DEVICE_MILLI};
use tessera_sim::dist::DistSpec;
use tessera_sim::scenario::{Scenario, ScenarioError};
use tessera_sim::workload::{build_cluster, build_workload};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn load_err(name: &str) -> (ScenarioError, String) {
    let path = fixture(name);
    match Scenario::load(&path) {
        Ok(s) => panic!("{name} should not load, got {s:?}"),
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with(&path.display().to_string()),
                "{name}: the message must start with the file: {text}"
            );
            (e, text)
        }
    }
}

/// Loads a broken fixture and checks the key and that the message contains every `expected`.
fn assert_broken(name: &str, key: &str, expected: &[&str]) -> ScenarioError {
    let (e, text) = load_err(name);
    assert_eq!(e.key(), Some(key), "{name}: {text}");
    assert!(text.contains(&format!("key `{key}`")), "{name}: {text}");
    for want in expected {
        assert!(text.contains(want), "{name}: expected {want:?} in: {text}");
    }
    e
}

#[test]
fn unknown_key_lists_the_accepted_keys() {
    let e = assert_broken(
        "unknown_key.toml",
        "workload.synthetic.interarrival.meen_s",
        &["unknown field `meen_s`", "`mean_s`"],
    );
    assert_eq!(e.location().map(|l| l.line), Some(11));
}

#[test]
fn wrong_type_says_what_was_expected() {
    let e = assert_broken(
        "wrong_type.toml",
        "workload.synthetic.jobs",
        &["invalid type: string \"many\"", "expected a positive integer"],
    );
    assert_eq!(e.location().map(|l| l.line), Some(11));
}

#[test]
fn missing_key_is_named() {
    assert_broken("missing_key.toml", "workload.synthetic.duration", &["missing required key", "dist"]);
}

#[test]
fn unknown_model_lists_the_catalogue() {
    assert_broken(
        "unknown_model.toml",
        "cluster.nodes[0].devices.model",
        &["unknown device model `V200`", "V100-32GB", "H100"],
    );
}

#[test]
fn unknown_policy_lists_the_queue_orders() {
    assert_broken("unknown_policy.toml", "policies[0].name", &["lottery", "fifo, sjf, srtf, priority, las, drf, fair-share"]);
}

#[test]
fn unknown_placement_lists_the_placements() {
    assert_broken("unknown_placement.toml", "policies[0].placement", &["worst-fit", "first-fit, best-fit"]);
}

#[test]
fn bad_distribution_parameter_names_the_field() {
    let e = assert_broken(
        "bad_dist.toml",
        "workload.synthetic.interarrival.mean_s",
        &["expected a positive number, found -60"],
    );
    assert!(e.location().is_some());
}

#[test]
fn zero_jobs() {
    let e = assert_broken(
        "zero_jobs.toml",
        "workload.synthetic.jobs",
        &["expected a positive integer, found 0", "(line 11, column "],
    );
    assert!(e.location().is_some());
}

#[test]
fn both_synthetic_and_trace() {
    assert_broken("both_workloads.toml", "workload", &["exactly one of `synthetic` and `trace`", "found both"]);
}

#[test]
fn unknown_trace_format() {
    assert_broken("unknown_trace_format.toml", "workload.trace.format", &["unknown trace format `alibaba`", "native, philly, philly-log, itp, openb, gavel, tiresias, pollux"]);
}

#[test]
fn duplicate_policy_labels_ask_for_a_label() {
    assert_broken("duplicate_policy.toml", "policies[1].name", &["policies[0]", "distinct `label`"]);
}

#[test]
fn empty_file() {
    assert_broken("empty.toml", "name", &["empty", "[[cluster.nodes]]", "[workload]", "[[policies]]"]);
}

#[test]
fn invalid_toml_gives_the_position() {
    let (e, text) = load_err("invalid_toml.toml");
    assert!(matches!(e, ScenarioError::Syntax { .. }), "{text}");
    assert!(text.contains("invalid TOML"), "{text}");
    assert_eq!(e.location().map(|l| l.line), Some(4), "{text}");
}

#[test]
fn a_missing_file_is_named() {
    let (e, text) = load_err("no_such_scenario.toml");
    assert!(matches!(e, ScenarioError::Read { .. }), "{text}");
}

#[test]
fn a_missing_trace_file_is_named() {
    let text = std::fs::read_to_string(fixture("trace_native.toml")).unwrap().replace("trace_small.csv", "nope.csv");
    let e = Scenario::from_toml_str(&text, &fixture("x.toml")).unwrap_err();
    assert_eq!(e.key(), Some("workload.trace.path"), "{e}");
    assert!(e.to_string().contains("nope.csv"), "{e}");
}

#[test]
fn inline_errors_for_the_other_keys() {
    let valid = std::fs::read_to_string(fixture("valid_mm8.toml")).unwrap();
    // Tables go after the last key of the file, so that no top-level key falls under them.
    const END: &str = "placement = \"best-fit\"";
    let cases: &[(&str, &str, &str, &str)] = &[
        ("replications = 3", "replications = 0", "replications", "expected a positive integer, found 0"),
        ("count = 8 ", "count = 0 ", "cluster.nodes[0].count", "expected a positive integer, found 0"),
        ("cpu_cores = 16", "cpu_cores = -16", "cluster.nodes[0].cpu_cores", "expected a non-negative number"),
        ("seed = 7", "seed = -7", "seed", "expected u64"),
        ("name = \"mm8\"", "", "name", "missing required key"),
        (
            "[[policies]]\nname = \"fifo\"\n[[policies]]\nname = \"sjf\"\nplacement = \"best-fit\"\n",
            "",
            "policies",
            "at least one [[policies]]",
        ),
        (
            "[[policies]]\nname = \"fifo\"",
            "[[policies]]\nname = \"fifo\"\nlabl = \"x\"",
            "policies[0].labl",
            "unknown field `labl`",
        ),
        (
            "[[policies]]\nname = \"fifo\"",
            "[[policies]]\nname = \"fifo\"\nbackfill = \"aggressive\"",
            "policies[0].backfill",
            "none, easy, conservative",
        ),
        (
            "[[policies]]\nname = \"fifo\"",
            "[[policies]]\nname = \"priority\"\nvictim = \"youngest\"",
            "policies[0].victim",
            "lowest-tier, least-progress, most-attained",
        ),
        (
            "[[policies]]\nname = \"fifo\"",
            "[[policies]]\nname = \"drf\"\ntenant_weights = { \"tenant-0\" = -1.0 }",
            "policies[0].tenant_weights",
            "positive weight",
        ),
        (
            "[[policies]]\nname = \"fifo\"",
            "[[policies]]\nname = \"fifo\"\nborrow = false",
            "policies[0].borrow",
            "quota_devices",
        ),
        ("value = 1", "value = 1, mean_s = 2", "workload.synthetic.devices", "does not apply"),
        ("dist = \"constant\"", "dist = \"gaussian\"", "workload.synthetic.devices.dist", "unknown variant `gaussian`"),
        ("jobs = 100000", "jobs = 100000, tenants = 0", "workload.synthetic.tenants", "positive integer"),
        ("jobs = 100000", "jobs = 100000, classes = []", "workload.synthetic.classes", "at least one class"),
        ("jobs = 100000", "jobs = 1000000000000", "workload.synthetic.jobs", "at most"),
        (END, "placement = \"best-fit\"\n[sim]\nhorizon_s = 0", "sim.horizon_s", "positive"),
        (END, "placement = \"best-fit\"\n[sim]\nhorizon_s = 1e300", "sim.horizon_s", "100 years"),
        (END, "placement = \"best-fit\"\n[sim]\nhorizon = 10", "sim.horizon", "unknown field"),
        (
            "dist = \"exponential\", mean_s = 700.0",
            "dist = \"uniform\", min_s = -1, max_s = 5",
            "workload.synthetic.duration",
            "non-negative seconds",
        ),
        ("[workload]", "[workload]\nsynth = 1", "workload.synth", "unknown field"),
        (
            "model = \"V100-32GB\", count = 1",
            "model = \"V100-32GB\", cnt = 1",
            "cluster.nodes[0].devices.cnt",
            "unknown field",
        ),
        ("devices = { model = \"V100-32GB\", count = 1 }", "devices = 4", "cluster.nodes[0].devices", "invalid type"),
        (
            "devices = { model = \"V100-32GB\", count = 1 }",
            "devices = [{ model = \"V100-32GB\" }, { model = \"T5\" }]",
            "cluster.nodes[0].devices[1].model",
            "unknown device model `T5`",
        ),
        (
            END,
            "placement = \"best-fit\"\n[[speed]]\nclass = \"a\"\nmodel = \"T4\"\nrelative = -2",
            "speed[0].relative",
            "positive",
        ),
        (
            END,
            "placement = \"best-fit\"\n[[cluster.models]]\nname = \"T4\"\nkind = \"gpu\"",
            "cluster.models[0].name",
            "already",
        ),
        (
            END,
            "placement = \"best-fit\"\n[[cluster.models]]\nname = \"X1\"\nkind = \"fpga\"",
            "cluster.models[0].kind",
            "gpu",
        ),
    ];
    check_cases(&valid, cases);
}

fn check_cases(valid: &str, cases: &[(&str, &str, &str, &str)]) {
    let origin = Path::new("scenarios/x.toml");
    for (from, to, key, expected) in cases {
        assert!(valid.contains(from), "the fixture no longer contains {from:?}");
        let text = valid.replacen(from, to, 1);
        let e = match Scenario::from_toml_str(&text, origin) {
            Ok(_) => panic!("replacing {from:?} by {to:?} should fail"),
            Err(e) => e,
        };
        let message = e.to_string();
        assert!(message.starts_with("scenarios/x.toml: "), "{message}");
        assert_eq!(e.key(), Some(*key), "{from:?} -> {to:?}: {message}");
        assert!(message.contains(expected), "{from:?} -> {to:?}: expected {expected:?} in {message}");
    }
}

/// Garbage the simulator once ran silently (a negative device count ran as one device, a
/// duration of 1e300 s saturated the clock and reported a JCT of 213 million days): each is
/// refused naming the key and the bound.
#[test]
fn numbers_beyond_their_bound_are_refused_naming_the_key_and_the_bound() {
    let valid = std::fs::read_to_string(fixture("valid_mm8.toml")).unwrap();
    const DEVICES: &str = "devices = { dist = \"constant\", value = 1 }";
    const DURATION: &str = "duration = { dist = \"exponential\", mean_s = 700.0 }";
    const END: &str = "placement = \"best-fit\"";
    check_cases(
        &valid,
        &[
            (DEVICES, "devices = { dist = \"constant\", value = -1 }", "workload.synthetic.devices", "device counts >= 0, but it can yield -1"),
            (DEVICES, "devices = { dist = \"choice\", values = [1, -2] }", "workload.synthetic.devices", "can yield -2"),
            (DEVICES, "devices = { dist = \"constant\", value = 2e6 }", "workload.synthetic.devices", "beyond the bound of 1000000"),
            (DURATION, "duration = { dist = \"constant\", value = 1e300 }", "workload.synthetic.duration", "beyond the bound of 3155760000 s (100 years)"),
            (DURATION, "duration = { dist = \"exponential\", mean_s = 1e10 }", "workload.synthetic.duration", "100 years"),
            ("mean_s = 100.0", "mean_s = 1e12", "workload.synthetic.interarrival", "100 years"),
            ("replications = 3", "replications = 4000000000", "replications", "beyond the bound of 10000"),
            (END, "placement = \"best-fit\"\ngrace_s = 1e20", "policies[1].grace_s", "100 years"),
            (END, "placement = \"best-fit\"\n[[models.maintenance]]\nnodes = [\"v100-0\"]\nstart_s = 1e300\nduration_s = 10", "models.maintenance[0].start_s", "100 years"),
        ],
    );
}

/// A draw from an unbounded distribution's tail beyond the bound is refused when the jobs are
/// made, naming the key and the job.
#[test]
fn a_draw_beyond_the_bound_is_refused_naming_the_job() {
    let valid = std::fs::read_to_string(fixture("valid_mm8.toml")).unwrap();
    let text = valid.replace("jobs = 100000", "jobs = 1000").replace(
        "duration = { dist = \"exponential\", mean_s = 700.0 }",
        "duration = { dist = \"lognormal\", mean_s = 1e9, sigma = 3 }",
    );
    let s = Scenario::from_toml_str(&text, Path::new("scenarios/x.toml")).unwrap();
    let (catalogue, _) = build_cluster(&s).unwrap();
    let Err(e) = build_workload(&s, &catalogue, 7) else { panic!("about 3% of these draws exceed 100 years, yet none was refused") };
    assert_eq!(e.key(), Some("workload.synthetic.duration"), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("scenarios/x.toml") && text.contains("job ") && text.contains("beyond the bound of 3155760000 s (100 years)"), "{text}");
}

/// A trace row beyond a bound is an error naming the trace file, its line, the column and the
/// bound, for the simulator as for `tessera trace stats`.
#[test]
fn a_trace_row_beyond_a_bound_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(fixture("trace_small.csv")).unwrap();
    let scenario = std::fs::read_to_string(fixture("trace_native.toml")).unwrap().replace("trace_small.csv", "bad.csv");
    std::fs::write(dir.path().join("x.toml"), &scenario).unwrap();
    for (from, to, column) in [(",3600,", ",1e300,", "duration_s"), ("12,5.0,", "12,4e9,", "submit_s"), ("13,0,carol,-1,2,", "13,0,carol,-1,2000000,", "devices")] {
        std::fs::write(dir.path().join("bad.csv"), csv.replacen(from, to, 1)).unwrap();
        let s = Scenario::load(&dir.path().join("x.toml")).unwrap();
        let (catalogue, _) = build_cluster(&s).unwrap();
        let e = build_workload(&s, &catalogue, 1).unwrap_err();
        let text = e.to_string();
        let line = if column == "devices" { "line 5" } else { "line 4" };
        assert!(text.contains("bad.csv") && text.contains(line) && text.contains(&format!("column `{column}`")) && text.contains("beyond the bound of"), "{column}: {text}");
    }
}

#[test]
fn no_prefix_of_a_valid_file_panics() {
    // Truncating a valid file at every character exercises every half-written construct.
    let valid = std::fs::read_to_string(fixture("valid_mm8.toml")).unwrap();
    for (cut, _) in valid.char_indices() {
        let _ = Scenario::from_toml_str(&valid[..cut], Path::new("cut.toml"));
    }
    // So does dropping any one line.
    let lines: Vec<&str> = valid.lines().collect();
    for skip in 0..lines.len() {
        let text: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, l)| *l).collect();
        let _ = Scenario::from_toml_str(&text.join("\n"), Path::new("drop.toml"));
    }
}

#[test]
fn the_documented_example_parses() {
    let s = Scenario::load(&fixture("valid_mm8.toml")).unwrap();
    assert_eq!(s.name, "mm8");
    assert_eq!(s.seed, 7);
    assert_eq!(s.replications, 3);
    assert_eq!(s.replication_seeds().collect::<Vec<_>>(), vec![7, 8, 9]);
    assert_eq!(s.policies.iter().map(|p| p.label()).collect::<Vec<_>>(), ["fifo", "sjf"]);
    let syn = s.workload.synthetic.as_ref().unwrap();
    assert_eq!(syn.jobs, 100_000);
    assert_eq!(syn.duration, DistSpec::Exponential { mean_s: 700.0 });
    assert_eq!(syn.devices, DistSpec::Constant { value: 1.0 });
    let (catalogue, nodes) = build_cluster(&s).unwrap();
    assert_eq!(nodes.len(), 8);
    assert_eq!(nodes[7].name, "v100-7");
    assert_eq!(nodes[0].devices, vec![catalogue.lookup("V100-32GB").unwrap()]);
    assert_eq!(nodes[0].cpu_milli, 16_000);
    assert_eq!(nodes[0].mem_mib, 64 * 1024);
}

#[test]
fn build_workload_is_deterministic_per_seed() {
    let s = Scenario::load(&fixture("valid_mm8.toml")).unwrap();
    let (catalogue, _) = build_cluster(&s).unwrap();
    let a = build_workload(&s, &catalogue, 7).unwrap();
    let b = build_workload(&s, &catalogue, 7).unwrap();
    let c = build_workload(&s, &catalogue, 8).unwrap();
    assert_eq!(a.jobs.len(), 100_000);
    assert_eq!(a, b, "same seed, same jobs");
    assert_ne!(a.jobs, c.jobs, "another seed, other jobs");
    let mean_work_s = a.jobs.iter().map(|j| j.work.as_secs_f64()).sum::<f64>() / a.jobs.len() as f64;
    // Exponential with mean 700: standard error 700 / sqrt(1e5) ~ 2.2 s; allow 5 of them.
    assert!((mean_work_s - 700.0).abs() < 5.0 * 700.0 / (1e5f64).sqrt(), "{mean_work_s}");
}

#[test]
fn native_trace_converts() {
    let s = Scenario::load(&fixture("trace_native.toml")).unwrap();
    let (catalogue, _) = build_cluster(&s).unwrap();
    let w = build_workload(&s, &catalogue, 1).unwrap();
    let ids: Vec<u64> = w.jobs.iter().map(|j| j.spec.id.0).collect();
    // Sorted by submit; 10 and 12 share an instant and keep the trace's order.
    assert_eq!(ids, [13, 11, 10, 12]);
    // Interned in first-seen order of the jobs as the loader returns them (by submit time).
    assert_eq!(w.tenants, ["carol", "bob", "alice"]);
    assert_eq!(w.classes, ["bert", "resnet50"]);
    let tenant_of =
        |id: u64| w.jobs.iter().find(|j| j.spec.id == JobId(id)).map(|j| w.tenants[j.spec.tenant.index()].as_str());
    assert_eq!(
        [tenant_of(10), tenant_of(11), tenant_of(12), tenant_of(13)],
        [Some("alice"), Some("bob"), Some("alice"), Some("carol")]
    );
    let by_id = |id: u64| w.jobs.iter().find(|j| j.spec.id == JobId(id)).unwrap();
    let shared = by_id(11);
    assert_eq!((shared.spec.devices.count, shared.spec.devices.share_milli), (1, 500));
    assert_eq!(shared.spec.devices.models.single(), catalogue.lookup("T4"));
    assert_eq!(shared.submit, Time::from_micros(2_500_000));
    assert_eq!(shared.work, Time::from_micros(50_500_000));
    assert_eq!(shared.spec.stated_duration, Some(shared.work));
    assert_eq!(shared.spec.priority, 1);
    let gang = by_id(12);
    assert_eq!((gang.spec.devices.count, gang.spec.devices.share_milli), (4, WHOLE_DEVICE_MILLI));
    assert!(gang.spec.devices.models.allows(catalogue.lookup("A100-40GB").unwrap()));
    assert!(!gang.spec.devices.models.allows(catalogue.lookup("T4").unwrap()));
    assert!(by_id(10).spec.devices.models.is_any());
    assert_eq!(by_id(13).spec.priority, -1);
    // Trace workloads do not depend on the seed.
    assert_eq!(build_workload(&s, &catalogue, 99).unwrap(), w);
    let speed = tessera_sim::speed::build(&s, &w, &catalogue).unwrap();
    assert_eq!(speed.speed(gang.spec.class, catalogue.lookup("T4").unwrap()), 1.0);
}

#[test]
fn unknown_model_in_a_trace_names_the_trace_line_and_model() {
    let s = Scenario::load(&fixture("trace_unknown_model.toml")).unwrap();
    let (catalogue, _) = build_cluster(&s).unwrap();
    let e = build_workload(&s, &catalogue, 1).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("trace_unknown_model.csv") && text.contains("line 3") && text.contains("Z9000"), "{text}");
    assert_eq!(e.key(), Some("workload.trace.path"));
}

#[test]
#[ignore = "prints every fixture's message, for reading"]
fn print_messages() {
    let mut names: Vec<_> =
        std::fs::read_dir(fixture("")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    for name in names.iter().filter(|n| n.ends_with(".toml")) {
        match Scenario::load(&fixture(name)) {
            Ok(_) => println!("{name}: ok"),
            Err(e) => println!("{e}"),
        }
    }
}
