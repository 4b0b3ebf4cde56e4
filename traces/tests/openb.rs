//! The openb (Alibaba GPU 2023) loaders: synthetic fixtures, broken input, and the real files
//! from the shared trace folder where it is present (its licence keeps its rows out of the
//! repository, so the fixtures here are made up in the same shape).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use tessera_core::Catalogue;
use tessera_traces::openb::{catalogue_models, load_nodes, load_pods, load_pods_untimed, model_name, qos_priority, TENANT};
use tessera_traces::{TraceError, TraceJob};
use tessera_core::JobOutcome;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openb")
        .join(name)
}

/// A file of the shared trace folder, or `None` (with a message) when it is not there.
fn shared(rel: &str) -> Option<PathBuf> {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/traces/alibaba-gpu-v2023-openb"
    ))
    .join(rel);
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: {} is not present", path.display());
        None
    }
}

const HEADER: &str =
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time";

fn pods_err(content: &str) -> (TraceError, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pods.csv");
    std::fs::write(&path, content).unwrap();
    let err = load_pods(&path).expect_err("the loader should refuse this file");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: ", path.display())),
        "error does not name the file: {msg}"
    );
    (err, msg)
}

fn nodes_err(content: &str) -> (TraceError, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nodes.csv");
    std::fs::write(&path, content).unwrap();
    let err = load_nodes(&path).expect_err("the loader should refuse this file");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: ", path.display())),
        "error does not name the file: {msg}"
    );
    (err, msg)
}

fn by_line(jobs: &[TraceJob], line: u64) -> &TraceJob {
    jobs.iter().find(|j| j.line == line).unwrap()
}

#[test]
fn fixture_pods_map_every_field() {
    let jobs = load_pods(&fixture("pods.csv")).unwrap();
    assert_eq!(jobs.len(), 6);
    // Unsorted creation times are repaired by a stable sort; ids keep the file order.
    let order: Vec<u64> = jobs.iter().map(|j| j.job_id).collect();
    assert_eq!(order, vec![2, 1, 3, 4, 5, 6]);
    assert!(jobs.iter().all(|j| j.tenant == TENANT));

    let a = by_line(&jobs, 2);
    assert_eq!(
        (a.submit_s, a.duration_s, a.devices, a.priority),
        (100.0, 795.0, 1.0, 2)
    );
    assert_eq!(
        a.outcome,
        Some(JobOutcome::Killed),
        "deleted before the trace's end"
    );
    assert_eq!((a.cpu_milli, a.mem_mib), (4000, 8192));
    assert!(a.models.is_empty());

    let b = by_line(&jobs, 3);
    assert_eq!((b.devices, b.priority, b.duration_s), (0.25, 0, 340.0));
    assert_eq!(b.models, vec!["T4", "A10"]);
    assert_eq!(b.outcome, Some(JobOutcome::Completed));

    let c = by_line(&jobs, 4);
    assert_eq!((c.devices, c.priority, c.duration_s), (4.0, 3, 50.0));
    assert_eq!(
        c.models,
        vec!["V100M16", "V100M32"],
        "duplicates in gpu_spec are dropped"
    );
    assert_eq!(c.outcome, Some(JobOutcome::Failed));

    let d = by_line(&jobs, 5);
    assert_eq!(
        (d.devices, d.priority, d.duration_s, d.outcome),
        (0.0, 1, 30.0, None),
        "Pending: deletion - creation"
    );

    let e = by_line(&jobs, 6);
    assert_eq!(
        (e.devices, e.duration_s, e.outcome),
        (2.0, 700.0, Some(JobOutcome::Unfinished))
    );
    let f = by_line(&jobs, 7);
    assert_eq!(
        (f.devices, f.duration_s, f.outcome),
        (0.5, 599.0, Some(JobOutcome::Unfinished))
    );
}

#[test]
fn untimed_lists_submit_everything_at_zero_in_file_order() {
    // A multigpu-shaped file: no times, so load_pods refuses it and the untimed loader reads it.
    let (err, msg) = match load_pods(&fixture("pods_untimed.csv")) {
        Err(e) => {
            let m = e.to_string();
            (e, m)
        }
        Ok(_) => panic!("load_pods must refuse a pod list without times"),
    };
    assert!(
        matches!(
            err,
            TraceError::MissingColumn {
                line: 1,
                column: "gpu_spec",
                ..
            }
        ),
        "{msg}"
    );

    let jobs = load_pods_untimed(&fixture("pods_untimed.csv"), 86_400.0).unwrap();
    let got: Vec<(u64, f64, f64, f64, i32)> = jobs
        .iter()
        .map(|j| (j.job_id, j.submit_s, j.devices, j.duration_s, j.priority))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 0.0, 8.0, 86_400.0, 0),
            (2, 0.0, 0.3, 86_400.0, 0),
            (3, 0.0, 0.0, 86_400.0, 0)
        ]
    );
    assert!(jobs.iter().all(|j| j.outcome.is_none()));

    // A timed file read untimed keeps qos and gpu_spec and drops the times.
    let jobs = load_pods_untimed(&fixture("pods.csv"), 10.0).unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.job_id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(jobs[1].models, vec!["T4", "A10"]);
    assert_eq!(jobs[2].priority, 3);
    assert!(load_pods_untimed(&fixture("pods.csv"), f64::NAN).is_err());
}

#[test]
fn fixture_nodes() {
    let nodes = load_nodes(&fixture("nodes.csv")).unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes[0].model, None);
    assert_eq!(nodes[0].gpus, 0);
    assert_eq!(nodes[2].name, "synth-node-03");
    assert_eq!(
        (nodes[2].cpu_milli, nodes[2].mem_mib, nodes[2].gpus),
        (96000, 393216, 8)
    );
    assert_eq!(nodes[2].model.as_deref(), Some("G2"));
    assert_eq!(nodes.iter().map(|n| n.gpus).sum::<u32>(), 18);
}

#[test]
fn qos_tiers_are_ordered() {
    let tier = |q| qos_priority(q).unwrap();
    assert!(tier("Guaranteed") > tier("LS"));
    assert!(tier("LS") > tier("Burstable"));
    assert!(tier("Burstable") > tier("BE"));
    assert_eq!(tier("BE"), tier("BestEffort"));
    assert_eq!(qos_priority("ls"), None);
}

#[test]
fn models_resolve_in_the_catalogue() {
    let mut catalogue = Catalogue::built_in();
    for code in ["T4", "P100", "V100M16", "V100M32", "A10"] {
        let id = catalogue
            .lookup(model_name(code))
            .unwrap_or_else(|| panic!("{code} is built in"));
        assert_eq!(catalogue.name(id), model_name(code));
    }
    assert_eq!(model_name("V100M16"), "V100-16GB");
    assert_eq!(model_name("V100M32"), "V100-32GB");
    for code in ["G2", "G3"] {
        assert!(catalogue.lookup(code).is_none(), "{code} is not built in");
    }
    let extra = catalogue_models();
    assert_eq!(
        extra.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        vec!["G2", "G3"]
    );
    for m in extra {
        assert!(m.undisclosed);
        assert_eq!(m.kind, tessera_core::DeviceKind::Gpu);
        assert_eq!(
            (m.mem_gib, m.fp16_tflops, m.fp32_tflops, m.mem_bw_gbps),
            (None, None, None, None)
        );
        catalogue.add(m).unwrap();
    }
    assert!(catalogue.lookup(model_name("G2")).is_some());
}

#[test]
fn broken_pod_lists_name_file_line_and_column() {
    let row = "p1,1000,1024,1,1000,,LS,Succeeded,0,10,1";

    let (err, msg) = pods_err("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time\np1,1,1,0,0,,LS,Pending,0,1\n");
    assert!(
        matches!(
            err,
            TraceError::MissingColumn {
                line: 1,
                column: "scheduled_time",
                ..
            }
        ),
        "{msg}"
    );

    let (err, msg) = pods_err(&format!(
        "{HEADER}\n{row}\np2,1000,lots,1,1000,,LS,Succeeded,0,10,1\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 3,
                column: "memory_mib",
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("\"lots\""), "{msg}");

    let (err, msg) = pods_err(&format!(
        "{HEADER}\n{row}\np2,1000,1024,1,1000,,LS,Succeeded,-5,10,1\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 3,
                column: "creation_time",
                ..
            }
        ),
        "{msg}"
    );

    let (err, msg) = pods_err("");
    assert!(matches!(err, TraceError::Empty { .. }), "{msg}");
    let (err, msg) = pods_err(&format!("{HEADER}\n\n"));
    assert!(matches!(err, TraceError::NoJobs { .. }), "{msg}");

    let (err, msg) = pods_err(&format!(
        "{HEADER}\n{row}\np2,1,1,0,0,,BE,Pending,0,1,\n{row}\n"
    ));
    assert!(matches!(err, TraceError::Invalid { line: 4, .. }), "{msg}");
    assert!(
        msg.contains("`name`") && msg.contains("`p1`") && msg.contains("line 2"),
        "{msg}"
    );

    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,1,1001,,LS,Succeeded,0,10,1\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "gpu_milli",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,2,500,,LS,Succeeded,0,10,1\n"
    ));
    assert!(
        matches!(err, TraceError::Invalid { line: 2, .. }) && msg.contains("`gpu_milli`"),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,0,300,,LS,Succeeded,0,10,1\n"
    ));
    assert!(
        matches!(err, TraceError::Invalid { line: 2, .. }) && msg.contains("`gpu_milli`"),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,1,0,,LS,Succeeded,0,10,1\n"
    ));
    assert!(
        matches!(err, TraceError::Invalid { line: 2, .. }) && msg.contains("`gpu_milli`"),
        "{msg}"
    );

    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,1,1000,,Gold,Succeeded,0,10,1\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "qos",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,1,1000,,LS,Evicted,0,10,1\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "pod_phase",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,1,1000,T4||P100,LS,Succeeded,0,10,1\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "gpu_spec",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,1,1000,,LS,Succeeded,0,10,\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "scheduled_time",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,1,1000,,LS,Pending,0,10,3\n"
    ));
    assert!(
        matches!(err, TraceError::Invalid { line: 2, .. }) && msg.contains("`scheduled_time`"),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,1,1000,,LS,Succeeded,5,10,4\n"
    ));
    assert!(
        matches!(err, TraceError::Invalid { line: 2, .. }) && msg.contains("`scheduled_time`"),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!(
        "{HEADER}\np1,1000,1024,1,1000,,LS,Succeeded,0,3,4\n"
    ));
    assert!(
        matches!(err, TraceError::Invalid { line: 2, .. }) && msg.contains("`deletion_time`"),
        "{msg}"
    );
    let (err, msg) = pods_err(&format!("{HEADER}\n{row}\np2,1000\n"));
    assert!(
        matches!(
            err,
            TraceError::FieldCount {
                line: 3,
                expected: 11,
                found: 2,
                ..
            }
        ),
        "{msg}"
    );
}

#[test]
fn unsorted_pods_are_sorted_stably() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pods.csv");
    std::fs::write(
        &path,
        format!(
            "{HEADER}\nq1,1,1,0,0,,BE,Succeeded,30,40,30\nq2,1,1,0,0,,BE,Succeeded,10,40,10\n\
             q3,1,1,0,0,,BE,Succeeded,30,40,31\nq4,1,1,0,0,,BE,Succeeded,10,40,12\n"
        ),
    )
    .unwrap();
    let jobs = load_pods(&path).unwrap();
    let got: Vec<(u64, f64, u64)> = jobs
        .iter()
        .map(|j| (j.job_id, j.submit_s, j.line))
        .collect();
    assert_eq!(
        got,
        vec![(2, 10.0, 3), (4, 10.0, 5), (1, 30.0, 2), (3, 30.0, 4)]
    );
}

#[test]
fn broken_node_lists_name_file_line_and_column() {
    let h = "sn,cpu_milli,memory_mib,gpu,model";
    let (err, msg) = nodes_err(&format!("{h}\nn1,1000,1024,8,\n"));
    assert!(
        matches!(err, TraceError::Invalid { line: 2, .. }) && msg.contains("`model`"),
        "{msg}"
    );
    let (err, msg) = nodes_err(&format!("{h}\nn1,1000,1024,0,T4\n"));
    assert!(
        matches!(err, TraceError::Invalid { line: 2, .. }) && msg.contains("`model`"),
        "{msg}"
    );
    let (err, msg) = nodes_err(&format!("{h}\nn1,1000,1024,8,T4\nn2,1,1,0,\nn1,1,1,0,\n"));
    assert!(
        matches!(err, TraceError::Invalid { line: 4, .. })
            && msg.contains("`sn`")
            && msg.contains("line 2"),
        "{msg}"
    );
    let (err, msg) = nodes_err(&format!("{h}\nn1,many,1024,8,T4\n"));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "cpu_milli",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = nodes_err("sn,cpu_milli,memory_mib,model\nn1,1,1,T4\n");
    assert!(
        matches!(
            err,
            TraceError::MissingColumn {
                line: 1,
                column: "gpu",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = nodes_err("");
    assert!(matches!(err, TraceError::Empty { .. }), "{msg}");
}

/// Rows of a shared CSV, split plainly (the openb files hold no quotes), header dropped.
fn plain_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    (
        header,
        lines
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect(),
    )
}

#[test]
fn real_default_pod_list() {
    let Some(path) = shared("openb_pod_list_default.csv") else {
        return;
    };
    let t = std::time::Instant::now();
    let jobs = load_pods(&path).unwrap();
    println!(
        "openb default pod list: {} pods in {:?}",
        jobs.len(),
        t.elapsed()
    );
    assert_eq!(jobs.len(), 8_152);

    let (header, rows) = plain_rows(&path);
    assert_eq!(rows.len(), 8_152);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let count = |c: usize, v: &str| rows.iter().filter(|r| r[c] == v).count();
    let phase = col("pod_phase");
    let end = rows
        .iter()
        .map(|r| r[col("deletion_time")].parse::<u64>().unwrap())
        .max()
        .unwrap();
    let censored = rows
        .iter()
        .filter(|r| r[phase] == "Running" && r[col("deletion_time")] == end.to_string())
        .count();
    let outcome = |o: Option<JobOutcome>| jobs.iter().filter(|j| j.outcome == o).count();
    assert_eq!(outcome(None), count(phase, "Pending"));
    assert_eq!(outcome(None), 897);
    assert_eq!(
        outcome(Some(JobOutcome::Completed)),
        count(phase, "Succeeded")
    );
    assert_eq!(outcome(Some(JobOutcome::Failed)), count(phase, "Failed"));
    assert_eq!(outcome(Some(JobOutcome::Unfinished)), censored);
    assert_eq!(censored, 34);
    assert_eq!(
        outcome(Some(JobOutcome::Killed)),
        count(phase, "Running") - censored
    );
    let qos = col("qos");
    for (name, tier) in [("LS", 2), ("BE", 0), ("Burstable", 1), ("Guaranteed", 3)] {
        assert_eq!(
            jobs.iter().filter(|j| j.priority == tier).count(),
            count(qos, name),
            "{name}"
        );
    }
    let cpu_only = rows.iter().filter(|r| r[col("num_gpu")] == "0").count();
    assert_eq!(jobs.iter().filter(|j| j.devices == 0.0).count(), cpu_only);
    let shares = rows
        .iter()
        .filter(|r| r[col("num_gpu")] == "1" && r[col("gpu_milli")] != "1000")
        .count();
    assert_eq!(
        jobs.iter()
            .filter(|j| j.devices > 0.0 && j.devices < 1.0)
            .count(),
        shares
    );
    let gpus: f64 = rows
        .iter()
        .filter(|r| r[col("gpu_milli")] == "1000")
        .map(|r| r[col("num_gpu")].parse::<f64>().unwrap())
        .sum();
    assert_eq!(
        jobs.iter()
            .filter(|j| j.devices >= 1.0)
            .map(|j| j.devices)
            .sum::<f64>(),
        gpus
    );
    assert!(jobs.windows(2).all(|w| w[0].submit_s <= w[1].submit_s));
    assert!(jobs.iter().all(|j| j.duration_s >= 0.0));
}

#[test]
fn real_pod_lists_all_load() {
    let Some(dir) = shared("") else { return };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.starts_with("openb_pod_list_") {
            continue;
        }
        let rows = plain_rows(&path).1.len();
        let t = std::time::Instant::now();
        let jobs = if name.contains("multigpu") {
            assert!(
                matches!(load_pods(&path), Err(TraceError::MissingColumn { .. })),
                "{name}"
            );
            let jobs = load_pods_untimed(&path, 1.0).unwrap();
            assert!(jobs.iter().all(|j| j.submit_s == 0.0));
            jobs
        } else {
            load_pods(&path).unwrap()
        };
        println!("{name}: {} pods in {:?}", jobs.len(), t.elapsed());
        assert_eq!(jobs.len(), rows, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 24);
}

#[test]
fn real_gpuspec_models_are_trace_codes() {
    let Some(path) = shared("openb_pod_list_gpuspec33.csv") else {
        return;
    };
    let jobs = load_pods(&path).unwrap();
    let codes: HashSet<&str> = jobs
        .iter()
        .flat_map(|j| j.models.iter().map(String::as_str))
        .collect();
    let expected: HashSet<&str> = ["A10", "G2", "G3", "P100", "T4", "V100M16", "V100M32"]
        .into_iter()
        .collect();
    assert_eq!(codes, expected);
    let constrained = plain_rows(&path)
        .1
        .iter()
        .filter(|r| !r[5].is_empty())
        .count();
    assert_eq!(
        jobs.iter().filter(|j| !j.models.is_empty()).count(),
        constrained
    );
}

#[test]
fn real_node_lists() {
    let Some(path) = shared("openb_node_list_all_node.csv") else {
        return;
    };
    let t = std::time::Instant::now();
    let nodes = load_nodes(&path).unwrap();
    println!(
        "openb all-node list: {} nodes in {:?}",
        nodes.len(),
        t.elapsed()
    );
    assert_eq!(nodes.len(), 1_523);
    assert_eq!(nodes.iter().map(|n| u64::from(n.gpus)).sum::<u64>(), 6_212);

    // The same figures, counted independently with a plain split.
    let (_, rows) = plain_rows(&path);
    assert_eq!(rows.len(), 1_523);
    assert_eq!(
        rows.iter()
            .map(|r| r[3].parse::<u64>().unwrap())
            .sum::<u64>(),
        6_212
    );
    let mut plain: BTreeMap<String, (u32, u64)> = BTreeMap::new();
    for r in &rows {
        let e = plain.entry(r[4].clone()).or_default();
        e.0 += 1;
        e.1 += r[3].parse::<u64>().unwrap();
    }
    let mut loaded: BTreeMap<String, (u32, u64)> = BTreeMap::new();
    for n in &nodes {
        let e = loaded
            .entry(n.model.clone().unwrap_or_default())
            .or_default();
        e.0 += 1;
        e.1 += u64::from(n.gpus);
    }
    assert_eq!(loaded, plain);
    let gpus = |m: &str| loaded[m].1;
    assert_eq!(
        (
            gpus("G2"),
            gpus("T4"),
            gpus("G3"),
            gpus("P100"),
            gpus("V100M32"),
            gpus("V100M16"),
            gpus("A10")
        ),
        (4_392, 842, 312, 265, 204, 195, 2)
    );
    assert_eq!(loaded[""], (310, 0), "CPU-only nodes");

    if let Some(path) = shared("openb_node_list_gpu_node.csv") {
        let gpu_nodes = load_nodes(&path).unwrap();
        assert_eq!(gpu_nodes.len(), 1_213);
        assert!(gpu_nodes.iter().all(|n| n.gpus > 0 && n.model.is_some()));
    }
}
