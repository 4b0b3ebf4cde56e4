//! Replays the committed fuzz corpus (fuzz/corpus/<target>/) on stable Rust through the very
//! bodies the cargo-fuzz targets run (fuzz/src/lib.rs, included here, not copied): every
//! seed and every input a fuzzing run found worth keeping, including those that once crashed,
//! must be handled without a panic. This is the fuzzing CI can afford: bounded, deterministic.

#[allow(dead_code)]
mod fuzz_bodies {
    include!("../fuzz/src/lib.rs");
}

use std::path::Path;

fn corpus_files(target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (every fuzz target keeps a seed corpus there)", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Feeds every corpus file of `target` to its body, each under `catch_unwind`, and fails
/// naming every file that panicked (with the panic's message), not just the first.
fn replay(target: &str) {
    let body = fuzz_bodies::TARGETS.iter().find(|(name, _)| *name == target).unwrap_or_else(|| panic!("no fuzz body `{target}`")).1;
    let files = corpus_files(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target}/ is empty");
    let mut panics = Vec::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        if let Err(payload) = std::panic::catch_unwind(|| body(&data)) {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panics.push(format!("{}: {message}", file.display()));
        }
    }
    assert!(panics.is_empty(), "{} of {} corpus inputs of `{target}` panicked:\n{}", panics.len(), files.len(), panics.join("\n"));
    println!("{target}: {} corpus inputs, no panic", files.len());
}

/// Every fuzz target has a corpus folder and a test below, and every corpus folder a target.
#[test]
fn every_target_has_a_corpus_and_a_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut folders: Vec<String> =
        std::fs::read_dir(root.join("corpus")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    folders.sort();
    let mut targets: Vec<String> = fuzz_bodies::TARGETS.iter().map(|(name, _)| name.to_string()).collect();
    targets.sort();
    assert_eq!(folders, targets, "fuzz/corpus/ folders and fuzz/src/lib.rs TARGETS differ");
    let mut binaries: Vec<String> = std::fs::read_dir(root.join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    binaries.sort();
    assert_eq!(binaries, targets, "fuzz/fuzz_targets/ files and TARGETS differ");
    let this = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus.rs")).unwrap();
    for target in &targets {
        assert!(this.contains(&format!("replay(\"{target}\")")), "no replay test for `{target}` in tests/fuzz_corpus.rs");
    }
}

#[test]
fn job_spec_json() {
    replay("job_spec_json");
}

#[test]
fn job_spec_toml() {
    replay("job_spec_toml");
}

#[test]
fn exec_toml() {
    replay("exec_toml");
}

#[test]
fn scenario_toml() {
    replay("scenario_toml");
}

#[test]
fn journal_row() {
    replay("journal_row");
}

#[test]
fn trace_native_csv() {
    replay("trace_native_csv");
}

#[test]
fn trace_native_parquet() {
    replay("trace_native_parquet");
}

#[test]
fn trace_philly() {
    replay("trace_philly");
}

#[test]
fn trace_philly_log() {
    replay("trace_philly_log");
}

#[test]
fn trace_itp() {
    replay("trace_itp");
}

#[test]
fn trace_openb() {
    replay("trace_openb");
}

#[test]
fn trace_gavel() {
    replay("trace_gavel");
}

#[test]
fn trace_tiresias() {
    replay("trace_tiresias");
}

#[test]
fn trace_pollux() {
    replay("trace_pollux");
}
