//! What the command-line tests share: the binary, the sample model, and
//! running the binary with stdin closed. Each test binary uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `ggufmap` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ggufmap");

/// The sample model the repository ships.
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample.gguf")
}

/// Runs the binary with `args`, stdin closed.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("binary runs")
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(args: &[&str]) -> Vec<u8> {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs a command that must fail with exit 1 and `error: ...`; returns
/// stderr.
pub fn run_err(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}
