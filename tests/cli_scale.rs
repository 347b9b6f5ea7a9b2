//! The CLI on valid files that declare a million tensors or a million
//! metadata keys: memory is bounded by the work, not by counts a file
//! chooses. Output is streamed (no document tree, no table held whole), so
//! each run stays within the file's size plus 64 MiB.
//!
//! Time is not asserted here (these machines are shared and noisy):
//! `cargo bench --bench cli_scale` compares a million-tensor file against a
//! thousand-tensor one, as a ratio.
#![cfg(all(feature = "cli", target_os = "linux"))]

use std::path::Path;
use std::process::{Command, Stdio};

use ggufmap::{GgmlType, GgufWriter, MetaValue};

const BIN: &str = env!("CARGO_BIN_EXE_ggufmap");
const MIB: u64 = 1 << 20;
const MILLION: usize = 1_000_000;

/// A file of `n` one-element F32 tensors (about 70 bytes each).
fn many_tensors(n: usize) -> Vec<u8> {
    let mut writer = GgufWriter::new();
    for i in 0..n {
        let value = (i as f32).to_le_bytes().to_vec();
        writer
            .add_tensor(format!("t.{i}"), GgmlType::F32, &[1], value)
            .unwrap();
    }
    writer.to_bytes().unwrap()
}

/// A file of `n` u8 metadata entries (about 20 bytes each).
fn many_keys(n: usize) -> Vec<u8> {
    let mut writer = GgufWriter::new();
    for i in 0..n {
        writer
            .add_metadata(format!("k.{i}"), MetaValue::U8(i as u8))
            .unwrap();
    }
    writer.to_bytes().unwrap()
}

/// Runs the binary with `args` and `file`, its stdout drained to nowhere;
/// asserts success and returns its peak resident set in bytes.
///
/// The figure is the child's own (`wait4`), and the child starts from this
/// small test process: a child's peak also counts the pages of the process
/// that spawned it, which is why the big files are written by another one.
// The child is reaped by `wait4`, which std's `Child` cannot report.
#[allow(clippy::zombie_processes)]
fn peak_of(args: &[&str], file: &Path) -> u64 {
    let child = Command::new(BIN)
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: `wait4` writes an exit status and a `rusage` into the two
    // places it is given, both valid for writes; a zeroed `rusage` is a
    // valid value. The child is reaped here, and `child` is not waited on.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid);
        usage
    };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?}: status {status:#x}"
    );
    // Linux reports kibibytes.
    u64::try_from(usage.ru_maxrss).unwrap() * 1024
}

/// Writes the big files, in a process of its own (see [`peak_of`]): the
/// test binary runs this ignored test when `GGUFMAP_SCALE_DIR` is set.
#[test]
#[ignore = "run by a_million_keys_or_tensors_stay_within_the_file_plus_64_mib"]
fn write_scale_files() {
    let Some(dir) = std::env::var_os("GGUFMAP_SCALE_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    std::fs::write(dir.join("keys.gguf"), many_keys(MILLION)).unwrap();
    std::fs::write(dir.join("tensors.gguf"), many_tensors(MILLION)).unwrap();
    std::fs::write(dir.join("small.gguf"), many_tensors(10)).unwrap();
}

/// A file whose header, padding included, is 2 GiB (`general.alignment`
/// 2^31), the padding a hole: nothing may read its way through the header.
fn two_gib_header(path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let key = b"general.alignment";
    let mut header = Vec::new();
    header.extend_from_slice(b"GGUF");
    header.extend_from_slice(&3u32.to_le_bytes());
    header.extend_from_slice(&1u64.to_le_bytes()); // tensors
    header.extend_from_slice(&1u64.to_le_bytes()); // metadata entries
    header.extend_from_slice(&(key.len() as u64).to_le_bytes());
    header.extend_from_slice(key);
    header.extend_from_slice(&4u32.to_le_bytes()); // u32
    header.extend_from_slice(&(1u32 << 31).to_le_bytes());
    header.extend_from_slice(&1u64.to_le_bytes());
    header.extend_from_slice(b"w");
    header.extend_from_slice(&1u32.to_le_bytes()); // n_dims
    header.extend_from_slice(&32u64.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes()); // F32
    header.extend_from_slice(&0u64.to_le_bytes()); // offset
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&header).unwrap();
    file.seek(SeekFrom::Start(1 << 31)).unwrap();
    file.write_all(&[0u8; 128]).unwrap();
}

#[test]
fn a_two_gib_header_is_never_read_through() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.gguf");
    std::fs::write(&small, many_tensors(1)).unwrap();
    let path = dir.path().join("big-header.gguf");
    two_gib_header(&path);
    for args in [
        &["load", "--as", "quantized"][..],
        &["load", "--as", "f32"],
        &["inspect", "--json"],
        &["verify"],
    ] {
        let base = peak_of(args, &small);
        let peak = peak_of(args, &path);
        assert!(
            peak <= base + 64 * MIB,
            "{args:?}: peak {} MiB, base {} MiB",
            peak / MIB,
            base / MIB
        );
    }
}

#[test]
fn a_million_keys_or_tensors_stay_within_the_file_plus_64_mib() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "write_scale_files", "--ignored", "--quiet"])
        .env("GGUFMAP_SCALE_DIR", dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    for (name, commands) in [
        (
            "keys.gguf",
            &[
                &["inspect", "--json"][..],
                &["inspect"],
                &["verify", "--json"],
            ][..],
        ),
        (
            "tensors.gguf",
            &[
                &["inspect", "--json"][..],
                &["inspect"],
                &["verify", "--json"],
                &["verify"],
            ],
        ),
    ] {
        let file = dir.path().join(name);
        let size = std::fs::metadata(&file).unwrap().len();
        for args in commands {
            // What the program takes on a small file (its code, stacks,
            // buffers) is not the file's doing.
            let base = peak_of(args, &dir.path().join("small.gguf"));
            let peak = peak_of(args, &file);
            let beyond = peak.saturating_sub(base + size);
            assert!(
                beyond <= 64 * MIB,
                "{args:?} on {name}: peak {} MiB, {} MiB beyond the file and the base {} MiB",
                peak / MIB,
                beyond / MIB,
                base / MIB
            );
        }
    }
}
