//! `tessera_reports::fidelity` on hand-made observed exports and simulated `jobs.csv` files.

use std::fs;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use tessera_reports::fidelity::{fidelity, resolve_simulated, FIDELITY_HEADER, FIDELITY_SUMMARY_HEADER};

const OBSERVED_HEADER: &str = "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class,start_s,end_s,wait_s";
const SIM_HEADER: &str =
    "job_id,tenant,devices,submit_s,start_s,end_s,wait_s,jct_s,preemptions,models,outcome,run_s,lost_work_s,restarts,slowdown";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&p, text).unwrap();
    p
}

/// Four jobs the executor ran: (id, submit, start, end, wait).
const OBSERVED: [(u64, f64, f64, f64, f64); 4] =
    [(7, 0.0, 0.5, 10.5, 0.5), (8, 1.0, 1.5, 31.5, 0.5), (9, 2.0, 10.5, 20.5, 8.5), (10, 3.0, 20.5, 30.0, 17.5)];

fn observed_text() -> String {
    let mut text = format!("{OBSERVED_HEADER}\n");
    for (id, submit, start, end, wait) in OBSERVED {
        text.push_str(&format!("{id},{submit},\"ops, team\",0,1,CPU,{},c,{start},{end},{wait}\n", end - start));
    }
    text
}

/// The simulator's prediction: (id, submit, wait, jct).
const SIMULATED: [(u64, f64, f64, f64); 4] = [(7, 0.0, 0.0, 10.0), (8, 1.0, 0.0, 30.0), (9, 2.0, 8.0, 18.0), (10, 3.0, 20.0, 29.0)];

fn simulated_text(rows: &[(u64, f64, f64, f64)]) -> String {
    let mut text = format!("{SIM_HEADER}\n");
    for &(id, submit, wait, jct) in rows {
        let run = jct - wait;
        text.push_str(&format!(
            "{id},ops,1,{submit:.6},{:.6},{:.6},{wait:.6},{jct:.6},0,Xeon-8380,completed,{run:.6},0.000000,0,1.000000\n",
            submit + wait,
            submit + jct
        ));
    }
    text
}

#[test]
fn errors_per_job_and_their_statistics() {
    let dir = TempDir::new().unwrap();
    let obs = write(dir.path(), "observed.csv", &observed_text());
    let sim = write(dir.path(), "jobs.csv", &simulated_text(&SIMULATED));
    let report = fidelity(&obs, &sim, 1.0).unwrap();
    // Wait errors (sim - obs): -0.5, -0.5, -0.5, 2.5. JCT errors: observed JCTs are 10.5,
    // 30.5, 18.5, 27; simulated 10, 30, 18, 29: -0.5, -0.5, -0.5, 2.
    let ids: Vec<u64> = report.jobs.iter().map(|j| j.job_id).collect();
    assert_eq!(ids, [7, 8, 9, 10]);
    assert_eq!(report.jobs[3].observed_jct_s, 27.0);
    assert_eq!(report.jobs[3].jct_error_s(), 2.0);
    assert_eq!(report.wait.jobs, 4);
    assert_eq!(report.wait.mean_abs_s, 1.0);
    assert_eq!(report.wait.median_abs_s, 0.5);
    assert_eq!(report.wait.p95_abs_s, 2.5);
    assert_eq!(report.wait.max_abs_s, 2.5);
    assert_eq!(report.wait.bias_s, 0.25);
    assert_eq!(report.wait.within_tolerance, 0.75);
    assert_eq!(report.jct.mean_abs_s, 0.875);
    assert_eq!(report.jct.max_abs_s, 2.0);
    assert_eq!(report.jct.bias_s, 0.125);
    assert_eq!(report.within_tolerance_both, 0.75);

    let mut jobs_csv = Vec::new();
    report.write_jobs_csv(&mut jobs_csv).unwrap();
    let jobs_csv = String::from_utf8(jobs_csv).unwrap();
    let lines: Vec<&str> = jobs_csv.lines().collect();
    assert_eq!(lines[0], FIDELITY_HEADER);
    assert_eq!(lines[1], "7,0.500000,0.000000,-0.500000,10.500000,10.000000,-0.500000,true");
    assert_eq!(lines[4], "10,17.500000,20.000000,2.500000,27.000000,29.000000,2.000000,false");
    let mut summary = Vec::new();
    report.write_summary_csv(&mut summary).unwrap();
    assert_eq!(
        String::from_utf8(summary).unwrap(),
        format!(
            "{FIDELITY_SUMMARY_HEADER}\nwait,4,1.000000,0.500000,2.500000,2.500000,0.250000,0.750000,1.000000\n\
             jct,4,0.875000,0.500000,2.000000,2.000000,0.125000,0.750000,1.000000\n"
        )
    );
    assert!(report.render().contains("75.0% of jobs within 1 s"), "{}", report.render());
}

#[test]
fn a_perfect_prediction_has_no_error() {
    let dir = TempDir::new().unwrap();
    let obs = write(dir.path(), "observed.csv", &observed_text());
    let exact: Vec<(u64, f64, f64, f64)> = OBSERVED.iter().map(|&(id, submit, _, end, wait)| (id, submit, wait, end - submit)).collect();
    let sim = write(dir.path(), "jobs.csv", &simulated_text(&exact));
    let report = fidelity(&obs, &sim, 0.0).unwrap();
    assert_eq!((report.wait.max_abs_s, report.jct.max_abs_s, report.within_tolerance_both), (0.0, 0.0, 1.0));
}

#[test]
fn jobs_in_one_file_only_are_listed() {
    let dir = TempDir::new().unwrap();
    let obs = write(dir.path(), "observed.csv", &observed_text());
    let mut rows = SIMULATED.to_vec();
    rows.remove(1);
    rows.push((11, 4.0, 0.0, 1.0));
    let sim = write(dir.path(), "jobs.csv", &simulated_text(&rows));
    let e = fidelity(&obs, &sim, 1.0).unwrap_err().to_string();
    assert!(e.contains("1 job(s) only in ") && e.contains("observed.csv: 8"), "{e}");
    assert!(e.contains("jobs.csv: 11"), "{e}");
}

#[test]
fn broken_input_names_file_line_and_column() {
    let dir = TempDir::new().unwrap();
    let sim = write(dir.path(), "jobs.csv", &simulated_text(&SIMULATED));
    let obs_ok = write(dir.path(), "observed.csv", &observed_text());
    let check = |name: &str, observed: &str, expected: &str| {
        let p = write(dir.path(), name, observed);
        let e = fidelity(&p, &sim, 1.0).unwrap_err().to_string();
        assert!(e.contains(expected), "{name}: {e}");
        assert!(e.contains(name), "{name}: {e}");
    };
    let text = observed_text();
    check("no_wait.csv", &text.replace(",wait_s", ",waited"), "line 1: the header has no column `wait_s`");
    check("not_number.csv", &text.replace(",30,17.5", ",30,soon"), "line 5, column `wait_s`: expected a non-negative number of seconds, found `soon`");
    check("nan.csv", &text.replace(",31.5,0.5", ",NaN,0.5"), "line 3, column `end_s`: expected a non-negative number of seconds, found `NaN`");
    check("bad_id.csv", &text.replace("\n9,", "\nnine,"), "line 4, column `job_id`: expected a non-negative integer job id, found `nine`");
    check("short.csv", &text.replace(",c,0.5,10.5,0.5", ",c,0.5,10.5"), "line 2: 10 fields, but the header has 11");
    check("twice.csv", &text.replace("\n9,", "\n7,"), "line 4: job 7 appears twice (first on line 2)");
    check("early.csv", &text.replace(",20.5,30,17.5", ",2.5,30,17.5"), "line 5, column `start_s`");
    check("empty.csv", "", "the file is empty");
    check("header_only.csv", &format!("{OBSERVED_HEADER}\n"), "no job rows");
    // A job still running in the export.
    check("running.csv", &text.replace(",30,17.5", ",,"), "1 job(s) never ended");
    // The simulated side is checked the same way.
    let bad_sim = write(dir.path(), "sim_bad.csv", &simulated_text(&SIMULATED).replace(",29.000000,", ",2x,"));
    let e = fidelity(&obs_ok, &bad_sim, 1.0).unwrap_err().to_string();
    assert!(e.contains("sim_bad.csv: line 5, column `jct_s`: expected a non-negative number of seconds, found `2x`"), "{e}");
    let e = fidelity(&obs_ok, &write(dir.path(), "sim_nojct.csv", &simulated_text(&SIMULATED).replace("jct_s", "jct")), 1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sim_nojct.csv: line 1: the header has no column `jct_s`"), "{e}");
    // A replay that moved submissions is refused.
    let moved = write(dir.path(), "moved.csv", &simulated_text(&SIMULATED).replace("\n9,ops,1,2.000000", "\n9,ops,1,2.500000"));
    let e = fidelity(&obs_ok, &moved, 1.0).unwrap_err().to_string();
    assert!(e.contains("job 9 was submitted at 2 s in the observed export but at 2.5 s"), "{e}");
    let e = fidelity(&obs_ok, &sim, -1.0).unwrap_err().to_string();
    assert!(e.contains("tolerance"), "{e}");
    let e = fidelity(&dir.path().join("absent.csv"), &sim, 1.0).unwrap_err().to_string();
    assert!(e.contains("absent.csv"), "{e}");
}

#[test]
fn a_sim_output_directory_resolves_to_its_only_run() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("out");
    let one = write(&out, "fifo/r0/jobs.csv", &simulated_text(&SIMULATED));
    assert_eq!(resolve_simulated(&out).unwrap(), one);
    assert_eq!(resolve_simulated(&out.join("fifo/r0")).unwrap(), one);
    write(&out, "fifo/r1/jobs.csv", &simulated_text(&SIMULATED));
    let e = resolve_simulated(&out).unwrap_err().to_string();
    assert!(e.contains("2 runs' jobs.csv") && e.contains("fifo/r1/jobs.csv"), "{e}");
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    assert!(resolve_simulated(&empty).unwrap_err().to_string().contains("no jobs.csv"));
}
