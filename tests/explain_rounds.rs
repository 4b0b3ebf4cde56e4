//! `tessera explain` on a round-based policy, through the binary: the round reasons (waiting
//! for the next round, chosen by the round's allocation, preempted at a round's start,
//! started between rounds) read as sentences with the values that decided.

use std::fs;
use std::path::Path;
use tempfile::TempDir;

mod support;
use support::run_ok;

/// Asserts `needles` occur in `text` in this order.
fn in_order(text: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match text[from..].find(needle) {
            Some(i) => from += i + needle.len(),
            None => panic!("`{needle}` not found (in order) in:\n{text}"),
        }
    }
}

/// One node of two GPUs, three one-GPU jobs of 300 s (jobs 1 and 2 at t=0, job 3 at t=10),
/// Gavel in rounds of 100 s with the default grace of 30 s. Every job's max-min share is 2/3
/// of the round. Round 1 (t=100) starts jobs 1 and 2 (none has run: all rank first, oldest
/// first). Round 2 (t=200): job 3 has had no service and ranks first; jobs 1 and 2 have run
/// half their active time (priority (2/3)/0.5 = 1.333), job 1 keeps its devices as the older,
/// and job 2 is preempted; job 3 starts when job 2 is evicted at t=230. Job 2 waits for
/// round 3 (t=300). With `round_backfill`, jobs 1 and 2 start at once, between rounds.
fn gavel_run(dir: &Path) -> std::path::PathBuf {
    fs::write(
        dir.join("trace.csv"),
        "job_id,submit_s,tenant,priority,devices,models,duration_s,job_class\n1,0,a,0,1,,300,x\n2,0,a,0,1,,300,x\n3,10,a,0,1,,300,x\n",
    )
    .unwrap();
    let scenario = dir.join("rounds.toml");
    fs::write(
        &scenario,
        r#"name = "rounds"

[[cluster.nodes]]
count = 1
devices = { model = "V100-32GB", count = 2 }

[workload]
trace = { format = "native", path = "trace.csv" }

[[policies]]
name = "gavel"
round_s = 100

[[policies]]
name = "gavel"
round_s = 100
round_backfill = true
label = "gavel-backfill"
"#,
    )
    .unwrap();
    let out = dir.join("out");
    run_ok(&["sim", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    out
}

#[test]
fn explain_tells_the_rounds_of_a_gavel_job() {
    let tmp = TempDir::new().unwrap();
    let out = gavel_run(tmp.path());
    let out = out.to_str().unwrap();

    let story = run_ok(&["explain", out, "2", "--policy", "gavel"]);
    in_order(
        &story,
        &[
            "job 2 under policy gavel",
            "waits: for the next round: its policy starts jobs only at round boundaries, and round 1 begins at t=100 s; for 100 s",
            "t=100 s  launched on node",
            "why: round 1 (Gavel's max-min allocation) chose it on V100-32GB: its share of the round's time there is 66.7%, it had run there 0.0% of its active time, and it had not run there yet, so it ranked first",
            "t=200 s  preempted at the start of round 2: the round did not choose it: its max-min share of the round's time was 66.7% and it had run 50.0% of its active time; its priority (share over received) was 1.333, and the jobs ranked ahead of it took the devices; it returns to the queue for a later round, with a grace period of 30 s",
            "t=230 s  evicted and requeued",
            "waits: for the next round: its policy starts jobs only at round boundaries, and round 3 begins at t=300 s",
        ],
    );

    let story = run_ok(&["explain", out, "3", "--policy", "gavel"]);
    in_order(
        &story,
        &[
            "t= 10 s  waits: for the next round",
            "round 1 begins at t=100 s",
            "t=230 s  launched on node",
            "why: round 2 (Gavel's max-min allocation) chose it on V100-32GB",
            "it had not run there yet, so it ranked first",
        ],
    );

    let story = run_ok(&["explain", out, "1", "--policy", "gavel-backfill"]);
    in_order(
        &story,
        &[
            "job 1 under policy gavel-backfill",
            "t=  0 s  launched on node",
            "why: started between rounds (round_backfill) on devices idle during round 0",
        ],
    );
    // The generic fallback shows a reason's fields raw (`round=0`): none is left.
    assert!(!story.contains("round="), "{story}");
}
