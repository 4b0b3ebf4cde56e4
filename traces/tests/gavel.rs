//! The Gavel loaders (throughput table, traces, speed matrix): fixtures, broken input, and the
//! real files from the shared trace folder where it is present.

use std::path::{Path, PathBuf};
use tessera_traces::gavel::{
    catalogue_model_name, class_name, load_speed_csv, load_trace, load_trace_rows,
    load_trace_skipping, parse_job_key, Throughputs, TENANT,
};
use tessera_traces::TraceError;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gavel")
        .join(name)
}

/// A file of the shared trace folder, or `None` (with a message) when it is not there.
fn shared(rel: &str) -> Option<PathBuf> {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/traces/gavel"
    ))
    .join(rel);
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: {} is not present", path.display());
        None
    }
}

fn table() -> Throughputs {
    Throughputs::load(&fixture("throughputs.json")).unwrap()
}

/// Writes `content` to a temporary file named `name` and returns its path (alive with the dir).
fn temp(name: &str, content: &str) -> (PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (path, dir)
}

fn names_file(err: &TraceError, path: &Path) -> String {
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: ", path.display())),
        "error does not name the file: {msg}"
    );
    msg
}

#[test]
fn job_keys_parse() {
    assert_eq!(
        parse_job_key("('ResNet-18 (batch size 64)', 1)"),
        Some(("ResNet-18 (batch size 64)".into(), 1))
    );
    assert_eq!(parse_job_key("('A3C', 8)"), Some(("A3C".into(), 8)));
    assert_eq!(
        parse_job_key("(\"It's (odd), really\", 16)"),
        Some(("It's (odd), really".into(), 16))
    );
    for bad in [
        "null",
        "('A3C')",
        "('A3C', 0)",
        "('A3C', x)",
        "(A3C, 1)",
        "('', 1)",
        "'A3C', 1",
        "('A3C\", 1)",
    ] {
        assert_eq!(parse_job_key(bad), None, "{bad}");
    }
}

#[test]
fn fixture_table_lookups() {
    let t = table();
    assert_eq!(t.models(), vec!["k80", "v100"]);
    assert_eq!(t.all_models(), vec!["k80", "v100", "v100_unconsolidated"]);
    assert_eq!(
        t.job_types(),
        vec![
            "Big (batch size 128)",
            "LM (batch size 5)",
            "ResNet-18 (batch size 64)"
        ]
    );
    assert_eq!(t.isolated("k80", "ResNet-18 (batch size 64)", 1), Some(2.0));
    assert_eq!(
        t.isolated("K80", "ResNet-18 (batch size 64)", 1),
        Some(2.0),
        "catalogue names work too"
    );
    assert_eq!(
        t.isolated("V100-16GB", "ResNet-18 (batch size 64)", 2),
        Some(12.0)
    );
    assert_eq!(
        t.isolated("v100_unconsolidated", "ResNet-18 (batch size 64)", 2),
        Some(11.0)
    );
    assert_eq!(t.isolated("k80", "ResNet-18 (batch size 64)", 4), None);
    assert_eq!(t.isolated("a100", "ResNet-18 (batch size 64)", 1), None);
    assert_eq!(t.isolated("k80", "Big (batch size 128)", 2), Some(0.0));
    assert_eq!(
        t.colocated(
            "k80",
            ("ResNet-18 (batch size 64)", 1),
            ("LM (batch size 5)", 1)
        ),
        Some((1.5, 0.5))
    );
    assert_eq!(
        t.colocated(
            "k80",
            ("LM (batch size 5)", 1),
            ("ResNet-18 (batch size 64)", 1)
        ),
        Some((0.5, 1.5))
    );
    assert_eq!(
        t.colocated(
            "v100",
            ("LM (batch size 5)", 1),
            ("ResNet-18 (batch size 64)", 1)
        ),
        None
    );
    assert_eq!(
        t.scale_factors("v100", "ResNet-18 (batch size 64)"),
        vec![1, 2]
    );
    assert_eq!(catalogue_model_name("v100"), Some("V100-16GB"));
    assert_eq!(catalogue_model_name("k80"), Some("K80"));
    assert_eq!(catalogue_model_name("p100"), Some("P100"));
    assert_eq!(catalogue_model_name("v100_unconsolidated"), None);
}

#[test]
fn fixture_speed_matrix() {
    let t = table();
    let classes = vec![
        (
            class_name("ResNet-18 (batch size 64)", 1),
            "ResNet-18 (batch size 64)".to_string(),
            1,
        ),
        (
            class_name("Big (batch size 128)", 2),
            "Big (batch size 128)".to_string(),
            2,
        ),
        ("missing".to_string(), "Nope".to_string(), 1),
    ];
    let m = t.speed_matrix(&classes, "v100");
    assert_eq!(
        m,
        vec![
            (
                "ResNet-18 (batch size 64) x1".to_string(),
                "K80".to_string(),
                0.2
            ),
            (
                "ResNet-18 (batch size 64) x1".to_string(),
                "V100-16GB".to_string(),
                1.0
            ),
            // K80 measures 0 for Big x2: left out.
            (
                "Big (batch size 128) x2".to_string(),
                "V100-16GB".to_string(),
                1.0
            ),
        ]
    );
}

#[test]
fn fixture_msr_trace() {
    let t = table();
    let path = fixture("vc1.trace");
    let jobs = load_trace(&path, &t, "v100").unwrap();
    type Row<'a> = (u64, f64, f64, f64, &'a str, &'a str, i32, u64);
    let got: Vec<Row> = jobs
        .iter()
        .map(|j| {
            (
                j.job_id,
                j.submit_s,
                j.devices,
                j.duration_s,
                j.job_class.as_str(),
                j.tenant.as_str(),
                j.priority,
                j.line,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                1,
                0.0,
                1.0,
                100.0,
                "ResNet-18 (batch size 64) x1",
                "vc1",
                1,
                1
            ),
            (
                3,
                20.0,
                2.0,
                100.0,
                "ResNet-18 (batch size 64) x2",
                "vc1",
                1,
                3
            ),
            (2, 30.0, 1.0, 100.0, "LM (batch size 5) x1", "vc1", 1, 2),
            (4, 40.0, 2.0, 10.0, "Big (batch size 128) x2", "vc1", 1, 4),
        ],
        "sorted stably by arrival; ids in file order"
    );
    assert!(jobs
        .iter()
        .all(|j| j.models.is_empty() && j.outcome.is_none()));

    // On K80, Big x2 measures 0: the strict loader names its line, the skipping one lists it.
    let err = load_trace(&path, &t, "k80").unwrap_err();
    let msg = names_file(&err, &path);
    assert!(matches!(err, TraceError::Invalid { line: 4, .. }), "{msg}");
    assert!(
        msg.contains("Big (batch size 128)") && msg.contains("measures 0"),
        "{msg}"
    );
    let (jobs, skipped) = load_trace_skipping(&path, &t, "k80").unwrap();
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[0].duration_s, 500.0);
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (
            skipped[0].line,
            skipped[0].job_type.as_str(),
            skipped[0].scale_factor
        ),
        (4, "Big (batch size 128)", 2)
    );

    let rows = load_trace_rows(&path).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        (rows[3].needs_data_dir, rows[3].total_steps, rows[3].fields),
        (false, 50, 7)
    );
}

#[test]
fn fixture_generated_trace() {
    let t = table();
    let jobs = load_trace(&fixture("generated.trace"), &t, "v100").unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        (
            jobs[0].tenant.as_str(),
            jobs[0].devices,
            jobs[0].duration_s,
            jobs[0].priority
        ),
        (TENANT, 2.0, 200.0, 1)
    );
    assert_eq!(
        (jobs[1].submit_s, jobs[1].duration_s, jobs[1].priority),
        (15.5, 20.0, 3),
        "weight 2.6 rounds to tier 3"
    );
    let rows = load_trace_rows(&fixture("generated.trace")).unwrap();
    assert_eq!((rows[0].slo_s, rows[1].slo_s), (None, Some(3600.0)));
    assert_eq!(rows[1].priority_weight, 2.6);
}

#[test]
fn broken_traces_name_file_and_line() {
    let t = table();
    let good = "LM (batch size 5)\tcmd\t--steps\t1\t400\t30.0\t1";
    let check = |content: &str| {
        let (path, _dir) = temp("vc9.trace", content);
        let err = load_trace(&path, &t, "v100").unwrap_err();
        let msg = names_file(&err, &path);
        (err, msg)
    };

    let (err, msg) = check("");
    assert!(matches!(err, TraceError::Empty { .. }), "{msg}");
    let (err, msg) = check("\n\n");
    assert!(matches!(err, TraceError::Empty { .. }), "{msg}");
    let (err, msg) = check("LM (batch size 5)\tcmd\t--steps\t1\t400\t30.0\t1\textra\n");
    assert!(
        matches!(err, TraceError::Invalid { line: 1, .. }) && msg.contains("found 8"),
        "{msg}"
    );
    let (err, msg) = check(&format!(
        "{good}\n{good}\nLM\tcmd\t-s\t1\t400\t1\t1\t1\t-1\t0\n"
    ));
    assert!(
        matches!(err, TraceError::Invalid { line: 3, .. }) && msg.contains("as on line 1"),
        "{msg}"
    );
    let (err, msg) = check(&format!(
        "{good}\nLM (batch size 5)\tcmd\t--steps\t1\tmany\t30.0\t1\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "total steps",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = check(&format!(
        "{good}\nLM (batch size 5)\tcmd\t--steps\t1\t400\t-3\t1\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "arrival",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = check(&format!(
        "{good}\nLM (batch size 5)\tcmd\t--steps\t1\t400\t30\t0\n"
    ));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "scale factor",
                ..
            }
        ),
        "{msg}"
    );
    // The README's column order (scale factor 4th) shows up as a bad needs-data-dir flag.
    let (err, msg) = check("LM (batch size 5)\tcmd\t--steps\t8\t400\t30\t1\n");
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 1,
                column: "needs data dir",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = check(&format!(
        "{good}\nTransformer (batch size 7)\tcmd\t-step\t1\t10\t31\t1\n"
    ));
    assert!(matches!(err, TraceError::Invalid { line: 2, .. }), "{msg}");
    assert!(
        msg.contains("Transformer (batch size 7)") && msg.contains("no entry"),
        "{msg}"
    );
    let (err, msg) = check(&format!(
        "{good}\nResNet-18 (batch size 64)\tcmd\t-step\t1\t10\t31\t16\n"
    ));
    assert!(
        matches!(err, TraceError::Invalid { line: 2, .. }) && msg.contains("[1, 2]"),
        "{msg}"
    );
    let (err, msg) = check("LM\tcmd\tdir\t-s\t1\t400\t1\tnone\t-1\t0\n");
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 1,
                column: "priority weight",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = check("LM\tcmd\tdir\t-s\t1\t400\t1\t1\t-7\t0\n");
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 1,
                column: "SLO",
                ..
            }
        ),
        "{msg}"
    );

    let (path, _dir) = temp("vc9.trace", &format!("{good}\n"));
    let err = load_trace(&path, &t, "a100").unwrap_err();
    assert!(err.to_string().contains("a100"), "{err}");
}

#[test]
fn broken_tables_name_file_and_key() {
    let check = |content: &str| {
        let (path, _dir) = temp("t.json", content);
        let err = Throughputs::load(&path).unwrap_err();
        let msg = names_file(&err, &path);
        (err, msg)
    };
    let (err, msg) = check("{\n  \"k80\": {\n    \"('A', 1)\": {\"null\": 1.0,}\n  }\n}\n");
    assert!(matches!(err, TraceError::Json { line: 3, .. }), "{msg}");
    let (err, msg) = check("");
    assert!(matches!(err, TraceError::Json { .. }), "{msg}");
    let (err, msg) = check("{\n  \"k80\": {\n    \"('A', 1)\": {\"null\": 1.0},\n    \"(A, 1)\": {\"null\": 1.0}\n  }\n}\n");
    assert!(matches!(err, TraceError::Invalid { line: 4, .. }), "{msg}");
    assert!(msg.contains("`(A, 1)`") && msg.contains("`k80`"), "{msg}");
    let (err, msg) = check("{\"k80\": {\"('A', 1)\": {\"null\": 1.0, \"('B', x)\": [1, 2]}}}");
    assert!(
        matches!(err, TraceError::Invalid { line: 1, .. }) && msg.contains("('B', x)"),
        "{msg}"
    );
    let (err, msg) = check("{\"k80\": {\"('A', 1)\": {\"null\": 1.0, \"('B', 1)\": [1]}}}");
    assert!(
        matches!(err, TraceError::Invalid { .. }) && msg.contains("('B', 1)"),
        "{msg}"
    );
    let (err, msg) = check("{\"k80\": {\"('A', 1)\": {\"null\": -1.0}}}");
    assert!(
        matches!(err, TraceError::Invalid { .. }) && msg.contains("null"),
        "{msg}"
    );
    let (err, msg) = check("{\"k80\": {\"('A', 1)\": {}}}");
    assert!(
        matches!(err, TraceError::Invalid { .. }) && msg.contains("\"null\""),
        "{msg}"
    );
    let (err, msg) = check("{\"k80\": {\"('A', 1)\": {\"null\": 1}, \"('A',1)\": {\"null\": 2}}}");
    assert!(
        matches!(err, TraceError::Invalid { .. }) && msg.contains("twice"),
        "{msg}"
    );
    let (err, msg) = check("[1, 2]");
    assert!(matches!(err, TraceError::Invalid { .. }), "{msg}");
}

#[test]
fn speed_csv() {
    let rows = load_speed_csv(&fixture("speed.csv")).unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "ResNet-18 (batch size 64) x1".to_string(),
                "V100-16GB".to_string(),
                1.0
            ),
            (
                "ResNet-18 (batch size 64) x1".to_string(),
                "K80".to_string(),
                0.2
            ),
            ("LM (batch size 5) x1".to_string(), "K80".to_string(), 0.25),
        ]
    );
    let check = |content: &str| {
        let (path, _dir) = temp("speed.csv", content);
        let err = load_speed_csv(&path).unwrap_err();
        let msg = names_file(&err, &path);
        (err, msg)
    };
    let h = "model,relative_speed,job_class,note";
    let (err, msg) = check(&format!("{h}\nK80,0.5,a,\nV100,1,a,\nK80,0.7,a,x\n"));
    assert!(
        matches!(err, TraceError::Invalid { line: 4, .. }) && msg.contains("line 2"),
        "{msg}"
    );
    let (err, msg) = check(&format!("{h}\nK80,0,a,\n"));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "relative_speed",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = check(&format!("{h}\nK80,NaN,a,\n"));
    assert!(
        matches!(
            err,
            TraceError::BadField {
                line: 2,
                column: "relative_speed",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = check("job_class,model\na,K80\n");
    assert!(
        matches!(
            err,
            TraceError::MissingColumn {
                line: 1,
                column: "relative_speed",
                ..
            }
        ),
        "{msg}"
    );
    let (err, msg) = check("");
    assert!(matches!(err, TraceError::Empty { .. }), "{msg}");
    let (err, msg) = check("job_class,model,relative_speed\n");
    assert!(matches!(err, TraceError::NoJobs { .. }), "{msg}");
    let (err, msg) = check(&format!("{h}\nK80,0.5\n"));
    assert!(
        matches!(err, TraceError::FieldCount { line: 2, .. }),
        "{msg}"
    );
}

/// The `null` throughput of `key` under `model`, found with plain string searches.
fn plain_isolated(text: &str, model: &str, key: &str) -> f64 {
    let at = text.find(&format!("\"{model}\": {{")).unwrap();
    let at = at + text[at..].find(&format!("\"{key}\": {{")).unwrap();
    let at = at + text[at..].find("\"null\": ").unwrap() + "\"null\": ".len();
    let end = at + text[at..].find([',', '\n', '}']).unwrap();
    text[at..end].trim().parse().unwrap()
}

#[test]
fn real_throughput_table() {
    let Some(path) = shared("simulation_throughputs.json") else {
        return;
    };
    let t0 = std::time::Instant::now();
    let t = Throughputs::load(&path).unwrap();
    println!("gavel throughputs loaded in {:?}", t0.elapsed());
    assert_eq!(t.models(), vec!["k80", "p100", "v100"]);
    assert_eq!(t.all_models().len(), 6);
    assert_eq!(t.job_types().len(), 26);

    let text = std::fs::read_to_string(&path).unwrap();
    for (model, job_type, sf) in [
        ("v100", "ResNet-18 (batch size 64)", 1),
        ("k80", "ResNet-18 (batch size 64)", 1),
        ("p100", "Transformer (batch size 128)", 4),
        ("v100_unconsolidated", "ResNet-50 (batch size 64)", 8),
    ] {
        let want = plain_isolated(&text, model, &format!("('{job_type}', {sf})"));
        let got = t.isolated(model, job_type, sf).unwrap();
        assert!(
            (got - want).abs() <= want * 1e-15,
            "{model} {job_type} {sf}: {got} vs {want}"
        );
    }
    assert!(
        (t.isolated("k80", "ResNet-18 (batch size 16)", 1).unwrap() - 4.795294551566172).abs()
            < 1e-12
    );

    // V100 is faster than K80 on ResNet-18 at every batch size and scale factor it measures.
    let classes: Vec<(String, String, u32)> = t
        .job_types()
        .into_iter()
        .filter(|ty| ty.starts_with("ResNet-18"))
        .flat_map(|ty| {
            t.scale_factors("v100", &ty)
                .into_iter()
                .map(move |sf| (class_name(&ty, sf), ty.clone(), sf))
        })
        .collect();
    assert_eq!(classes.len(), 20);
    let m = t.speed_matrix(&classes, "k80");
    for (class, _, _) in &classes {
        let v100 = m
            .iter()
            .find(|(c, model, _)| c == class && model == "V100-16GB")
            .unwrap()
            .2;
        assert!(v100 > 1.0, "{class}: V100 / K80 = {v100}");
        let k80 = m
            .iter()
            .find(|(c, model, _)| c == class && model == "K80")
            .unwrap()
            .2;
        assert_eq!(k80, 1.0);
    }
}

/// Non-blank lines of a file, counted plainly.
fn plain_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn real_msr_traces() {
    let (Some(dir), Some(table)) = (shared("msr_seed0"), shared("simulation_throughputs.json"))
    else {
        return;
    };
    let t = Throughputs::load(&table).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 15);
    let (mut rows, mut plain, mut timed, mut skipped, mut strict_ok) = (0, 0, 0, 0, 0);
    let t0 = std::time::Instant::now();
    for path in &files {
        let r = load_trace_rows(path).unwrap();
        assert!(r.iter().all(|r| r.fields == 7));
        rows += r.len();
        plain += plain_lines(path);
        let (jobs, left) = load_trace_skipping(path, &t, "v100").unwrap();
        assert_eq!(jobs.len() + left.len(), r.len());
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert!(jobs
            .iter()
            .all(|j| j.tenant == stem && j.duration_s > 0.0 && j.priority == 1));
        timed += jobs.len();
        skipped += left.len();
        match load_trace(path, &t, "v100") {
            Ok(strict) => {
                assert!(left.is_empty());
                assert_eq!(strict, jobs);
                strict_ok += 1;
            }
            Err(err) => {
                assert!(
                    matches!(err, TraceError::Invalid { line, .. } if line == left[0].line),
                    "{err}"
                );
            }
        }
    }
    println!(
        "gavel msr_seed0: {rows} jobs, {timed} timed on v100, {skipped} unmeasured, in {:?}",
        t0.elapsed()
    );
    assert_eq!(rows, 15_264);
    assert_eq!(plain, 15_264);
    assert_eq!(skipped, 1_548);
    assert_eq!(strict_ok, 2);
}

#[test]
fn real_replay_traces() {
    let Some(table) = shared("simulation_throughputs.json") else {
        return;
    };
    let t = Throughputs::load(&table).unwrap();
    for (name, count) in [
        ("philly_static100_seed0.dedup.trace", 100),
        ("philly_cont_seed0_lam3600.dedup.trace", 357),
    ] {
        let Some(path) = shared(&format!("replay/{name}")) else {
            return;
        };
        let t0 = std::time::Instant::now();
        let jobs = load_trace(&path, &t, "v100").unwrap();
        println!("gavel {name}: {} jobs in {:?}", jobs.len(), t0.elapsed());
        assert_eq!(jobs.len(), count);
        assert_eq!(plain_lines(&path), count);
        assert!(jobs
            .iter()
            .all(|j| j.tenant == TENANT && j.duration_s > 0.0 && j.priority == 1));
        assert!(jobs
            .iter()
            .all(|j| j.job_class.ends_with(&format!(" x{}", j.devices))));
        if name.contains("static") {
            assert!(jobs.iter().all(|j| j.submit_s == 0.0));
        }
        // The first job: ResNet-18 (batch size 64) on 8 GPUs, 17,484,476 steps.
        let first = jobs.iter().find(|j| j.line == 1).unwrap();
        assert_eq!(first.job_class, "ResNet-18 (batch size 64) x8");
        let rate = t.isolated("v100", "ResNet-18 (batch size 64)", 8).unwrap();
        assert_eq!(first.duration_s, 17_484_476.0 / rate);
        // On K80, some ResNet-50 (batch size 128) jobs measure 0.
        assert!(load_trace(&path, &t, "k80").is_err());
    }
}
