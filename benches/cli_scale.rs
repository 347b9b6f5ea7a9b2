//! Whether the CLI's time grows linearly with the counts a file declares:
//! `inspect --json` and `verify --json` on a file of 1,000,000 one-element
//! tensors (and one of 1,000,000 metadata keys) against the same commands
//! on a file of 1,000, times 1,000, in the same run. A ratio at or below 1
//! is linear (the small file's time is mostly the process's start).
//!
//! `cargo bench --features cli --bench cli_scale` (builds the binary in release).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ggufmap::{GgmlType, GgufWriter, MetaValue};

const BIN: &str = env!("CARGO_BIN_EXE_ggufmap");
const RUNS: usize = 3;

fn tensors(n: usize) -> Vec<u8> {
    let mut writer = GgufWriter::new();
    for i in 0..n {
        writer
            .add_tensor(format!("t.{i}"), GgmlType::F32, &[1], vec![0u8; 4])
            .expect("tensor");
    }
    writer.to_bytes().expect("bytes")
}

fn keys(n: usize) -> Vec<u8> {
    let mut writer = GgufWriter::new();
    for i in 0..n {
        writer
            .add_metadata(format!("k.{i}"), MetaValue::U8(i as u8))
            .expect("key");
    }
    writer.to_bytes().expect("bytes")
}

/// Median wall time of `RUNS` runs of the binary on `file`.
fn median(args: &[&str], file: &Path) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let status = Command::new(BIN)
                .args(args)
                .arg(file)
                .stdout(Stdio::null())
                .status()
                .expect("run");
            assert!(status.success(), "{args:?}");
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn main() {
    // `cargo bench -- --list` and filters: nothing to list.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [
        ("tensors", tensors(1_000), tensors(1_000_000)),
        ("keys", keys(1_000), keys(1_000_000)),
    ];
    println!("what                      1,000 (ms)  1,000,000 (s)  ratio to 1,000 x 1,000");
    for (kind, small, large) in &files {
        let small_path = dir.path().join(format!("{kind}-1k.gguf"));
        let large_path = dir.path().join(format!("{kind}-1m.gguf"));
        std::fs::write(&small_path, small).expect("write");
        std::fs::write(&large_path, large).expect("write");
        for args in [&["inspect", "--json"][..], &["verify", "--json"]] {
            let small = median(args, &small_path);
            let large = median(args, &large_path);
            let ratio = large.as_secs_f64() / (small.as_secs_f64() * 1000.0);
            println!(
                "{:<25} {:>10.2}  {:>13.2}  {ratio:.2}",
                format!("{} {kind}", args.join(" ")),
                small.as_secs_f64() * 1e3,
                large.as_secs_f64(),
            );
        }
    }
}
