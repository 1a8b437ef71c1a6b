//! Building function binaries from the tests, once per test process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// Builds a binary or example with the cargo running the tests and returns its path, so a test
/// always runs the current code: `cargo_build(&["--workspace", "--example", "echo_lambda"])`
/// (`--workspace` resolves features as `cargo test --workspace` does, so that build is reused).
/// The path comes from cargo's JSON messages, so `CARGO_TARGET_DIR` and profiles need no
/// guessing. Each distinct `args` is built once per test process. Blocking: call it before
/// starting functions. Panics with cargo's output when the build fails.
pub fn cargo_build(args: &[&str]) -> PathBuf {
    // The last artifact is the one asked for; earlier ones are its dependencies.
    cargo_build_all(args)
        .pop()
        .map(|(_, path)| path)
        .unwrap_or_else(|| panic!("cargo build {} produced no executable", args.join(" ")))
}

/// Like [`cargo_build`], for a build of several executables (`--bins`): every executable
/// artifact as (target name, path), in cargo's order. One cargo run links them all, which is
/// cheaper than one run per binary.
pub fn cargo_build_all(args: &[&str]) -> Vec<(String, PathBuf)> {
    type Executables = Vec<(String, PathBuf)>;
    static BUILT: Mutex<BTreeMap<Vec<String>, Executables>> = Mutex::new(BTreeMap::new());
    static CARGO: OnceLock<String> = OnceLock::new();
    let key: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    // Held through the build: parallel tests asking for the same binaries build them once.
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(paths) = built.get(&key) {
        return paths.clone();
    }
    // Cargo sets CARGO for the tests it runs (nextest does too); fall back to the one that
    // compiled this crate.
    let cargo =
        CARGO.get_or_init(|| std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").into()));
    let output = std::process::Command::new(cargo)
        .arg("build")
        .arg("--message-format=json-render-diagnostics")
        .args(args)
        .current_dir(netmon_testkit::emulator::repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cargo} build: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo build {} failed ({}):\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let paths: Vec<(String, PathBuf)> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter_map(|msg| {
            let path = msg["executable"].as_str()?;
            let name = msg["target"]["name"].as_str().unwrap_or_default();
            Some((name.to_owned(), PathBuf::from(path)))
        })
        .collect();
    built.insert(key, paths.clone());
    paths
}
