//! What the tests that drive the `tessera` binary share: the binary with a clean environment,
//! the repository root, and tokens made by `tessera exec token`.
#![allow(dead_code)] // each test file uses its own part of this

use std::path::PathBuf;
use std::process::Command;

/// The `tessera` binary, with the client's environment variables removed so a developer's own
/// `TESSERA_ADDR`, `TESSERA_TOKEN` or `TESSERA_CA` never reaches a test.
pub fn tessera() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.env_remove("TESSERA_ADDR").env_remove("TESSERA_TOKEN").env_remove("TESSERA_CA");
    c
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
