//! What the tests that drive the `tessera` binary share: the binary with a clean environment,
//! the repository root and the fixtures under it, and tokens made by `tessera exec token`.
#![allow(dead_code)] // each test file uses its own part of this

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `tessera` binary, with the client's environment variables removed so a developer's own
/// `TESSERA_ADDR`, `TESSERA_TOKEN` or `TESSERA_CA` never reaches a test.
pub fn tessera() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.env_remove("TESSERA_ADDR").env_remove("TESSERA_TOKEN").env_remove("TESSERA_CA");
    c
}

/// `tessera ARGS`, run to its end whatever its exit status.
pub fn run(args: &[&str]) -> Output {
    tessera().args(args).output().expect("the tessera binary runs")
}

/// `tessera ARGS`, which must succeed: its stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "tessera {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// `tessera ARGS`: (whether it succeeded, stdout, stderr).
pub fn run_text(args: &[&str]) -> (bool, String, String) {
    let out = run(args);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `scenarios/` (`exec-replay/replay.toml`).
pub fn scenario(rel: &str) -> PathBuf {
    repo_root().join("scenarios").join(rel)
}

/// A fixture of the traces crate (`gavel/vc1.trace` is `traces/tests/fixtures/gavel/vc1.trace`).
pub fn trace_fixture(rel: &str) -> PathBuf {
    repo_root().join("traces/tests/fixtures").join(rel)
}

/// A file of the public traces that live beside the checkout (`../shared/traces`), or None,
/// printing why the calling test skips, where it is absent.
pub fn shared_trace(rel: &str) -> Option<PathBuf> {
    let path = repo_root().join("../shared/traces").join(rel);
    if path.exists() {
        Some(path)
    } else {
        println!("skipped: {} not found", path.display());
        None
    }
}

/// `tessera exec token NAME --role ROLE [--tenant T ...]`: (the token, the `[[api.tokens]]`
/// lines it printed, to paste into an `exec.toml`).
pub fn make_token(name: &str, role: &str, tenants: &[&str]) -> (String, String) {
    let mut c = tessera();
    c.args(["exec", "token", name, "--role", role]);
    for t in tenants {
        c.args(["--tenant", t]);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text.lines().find(|l| l.starts_with("tsr_")).expect("the token is printed").to_string();
    let lines = text[text.find("[[api.tokens]]").expect("config lines are printed")..].to_string();
    (token, lines)
}
