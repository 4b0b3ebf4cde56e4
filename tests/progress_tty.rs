//! The progress bar on a real terminal: `tessera sim` is run under `script(1)`, which gives it a
//! pseudo-terminal as stdout and stderr and copies everything drawn there to a pipe. The bar must
//! appear on a run longer than a second, show sane rates, and be cleared before the summary
//! table is printed; with stderr a pipe, nothing of it may appear.

use std::path::Path;
use std::process::Command;
use tempfile::TempDir;

mod support;

/// Four runs of 40,000 synthetic jobs: several seconds in a debug build, so the bar (which waits
/// a second before it draws) is drawn a few times.
const SCENARIO: &str = r#"
name = "progress-tty"
seed = 7
replications = 2

[[cluster.nodes]]
count = 64
devices = { model = "A100-80GB", count = 8 }
cpu_cores = 128
mem_gib = 1024

[workload]
synthetic = { jobs = 40000, interarrival = { dist = "exponential", mean_s = 2.0 }, duration = { dist = "lognormal", mean_s = 1200.0, sigma = 1.0 }, devices = { dist = "choice", values = [1, 2, 4, 8], weights = [0.6, 0.2, 0.12, 0.08] }, tenants = 4 }

[[policies]]
name = "fifo"

[[policies]]
name = "sjf"
"#;

/// A terminal's bytes as the lines a reader sees: CSI sequences (colour, cursor, erase) removed
/// and, within a line, only what follows the last carriage return or erase-line.
fn screen_lines(raw: &str) -> Vec<String> {
    raw.split('\n')
        // A terminal ends its lines with "\r\n".
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .map(|line| {
            let mut shown = String::new();
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\r' => shown.clear(),
                    '\u{1b}' => {
                        let mut seq = String::new();
                        if chars.peek() == Some(&'[') {
                            chars.next();
                            for c in chars.by_ref() {
                                seq.push(c);
                                if c.is_ascii_alphabetic() {
                                    break;
                                }
                            }
                        }
                        // Erase in line: what was drawn before it on this line is gone.
                        if seq.ends_with('K') {
                            shown.clear();
                        }
                    }
                    c => shown.push(c),
                }
            }
            shown
        })
        .collect()
}

fn scenario(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("progress.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    path
}

#[test]
fn the_bar_draws_on_a_terminal_and_is_gone_before_the_table() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("script(1) is not installed (Debian's bsdutils, an essential package): it gives the test its terminal");
    }
    let tmp = TempDir::new().unwrap();
    let scenario = scenario(tmp.path());
    let command = format!(
        "'{}' sim '{}' --out '{}' --no-report --no-parquet",
        env!("CARGO_BIN_EXE_tessera"),
        scenario.display(),
        tmp.path().join("out").display()
    );
    // -q: no "Script started" lines; -e: its exit status is tessera's; -f: flush as drawn.
    let output = Command::new("script").args(["-qef", "-c", &command, "/dev/null"]).env("TERM", "xterm").output().expect("script runs");
    let raw = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "tessera sim under script failed: {raw}{}", String::from_utf8_lossy(&output.stderr));

    // Drawn: the bar's own words, at least once.
    let rates: Vec<f64> = raw
        .match_indices(" M events/s")
        .filter_map(|(at, _)| raw[..at].rsplit(' ').next().and_then(|n| n.parse().ok()))
        .collect();
    assert!(!rates.is_empty(), "no progress bar was drawn on the terminal:\n{raw}");
    assert!(raw.contains(" runs (") && raw.contains("jobs done") && raw.contains("simulated"), "the bar lacks runs, jobs or simulated time:\n{raw}");
    // Sane rates: never the millions of M events/s of a rate over no time; some above 0 (the
    // first frames may come before the engine has published a count); and the last frame,
    // drawn while the outputs are written, shows the run's mean rate, not 0.
    for rate in &rates {
        assert!(rate.is_finite() && *rate >= 0.0 && *rate < 1000.0, "a rate of {rate} M events/s was drawn:\n{raw}");
    }
    assert!(rates.iter().any(|&r| r > 0.0), "every frame showed 0 M events/s:\n{raw}");
    assert!(rates.last().is_some_and(|&r| r > 0.0), "the last frame showed 0 M events/s:\n{raw}");

    // Consistent: in every frame, runs done and runs left add up to the runs.
    for (at, _) in raw.match_indices(" runs (") {
        let counts = raw[..at].rsplit(' ').next().unwrap_or_default();
        let left = raw[at + " runs (".len()..].split(' ').next().unwrap_or_default();
        let parsed = counts.split_once('/').and_then(|(d, t)| Some((d.parse::<u64>().ok()?, t.parse::<u64>().ok()?, left.parse::<u64>().ok()?)));
        let Some((done, total, left)) = parsed else { panic!("an unreadable count of runs {counts:?} ({left:?} left):\n{raw}") };
        assert_eq!(done + left, total, "a frame showed {done}/{total} runs ({left} left):\n{raw}");
    }

    // Cleared: the table's header is a line of its own on the screen, and no bar comes after it.
    let lines = screen_lines(&raw);
    let header = lines.iter().position(|l| l.contains("completed") && l.contains("avg JCT")).unwrap_or_else(|| panic!("no summary table:\n{raw}"));
    assert!(lines[header].starts_with("policy"), "the table's first line is {:?} on the screen: the bar was not cleared before it", lines[header]);
    assert!(!lines[header..].iter().any(|l| l.contains("events/s")), "the bar was drawn after the table:\n{raw}");
}

#[test]
fn no_bar_when_stderr_is_not_a_terminal() {
    let tmp = TempDir::new().unwrap();
    let scenario = scenario(tmp.path());
    let output = support::tessera()
        .args(["sim"])
        .arg(&scenario)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .args(["--no-report", "--no-parquet"])
        .output()
        .expect("the tessera binary runs");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("events/s") && !stderr.contains('\u{1b}'), "a bar or terminal codes on a pipe: {stderr}");
}
