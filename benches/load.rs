//! Loading a whole quantized model into candle, against candle's own GGUF
//! path (`Content::read` from the file, then `content.tensor` for every
//! tensor), in the same run.
//!
//! - Time, in this process, the three ways interleaved, median of
//!   [`RUNS`]: `Gguf::open` + `load_candle(LoadAs::Quantized)` (QTensors
//!   over the mapping), the same with `LoadOptions::copy_quantized`, and
//!   candle's path.
//! - Peak resident memory: each way in a process of its own, since a peak
//!   is per process: ours through `ggufmap load --json` (and `--copy`),
//!   candle's in this bench's own executable run again with
//!   `GGUFMAP_CANDLE_PATH_PEAK` set.
//!
//! The model is Gemma 3 270M Q4_K_M when present (`$GGUFMAP_GEMMA`, or
//! `~/.cache/ggufmap/gemma-3-270m-q4_k_m.gguf` from scripts/fetch_gemma.sh),
//! otherwise a writer-made model of the same mix of types (about 128 MiB)
//! in a temporary directory.
//!
//! `cargo bench --features candle,cli --bench load`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file::Content;
use candle_core::Device;
use ggufmap::candle::{LoadAs, LoadOptions};
use ggufmap::Gguf;

mod model;
use model::{gemma, synthetic};

/// Timed loads of each way.
const RUNS: usize = 7;

fn ours(path: &Path, copy: bool) -> usize {
    ours_as(path, LoadAs::Quantized, copy)
}

fn ours_as(path: &Path, load_as: LoadAs, copy: bool) -> usize {
    let file = Gguf::open(path).expect("open");
    let options = LoadOptions::new(load_as).copy_quantized(copy);
    let model = file.load_candle_with(&Device::Cpu, &options).expect("load");
    model.tensors.len()
}

fn candles(path: &Path) -> usize {
    candles_as(path, LoadAs::Quantized)
}

/// candle's own path: `Content::read`, `content.tensor` for every tensor,
/// then, for a dense load, `QTensor::dequantize` (f32) or
/// `dequantize_f16`, one tensor at a time as candle offers it.
fn candles_as(path: &Path, load_as: LoadAs) -> usize {
    let mut file = std::fs::File::open(path).expect("open");
    let content = Content::read(&mut file).expect("read");
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    let mut dense = Vec::new();
    for name in &names {
        let q = content
            .tensor(&mut file, name, &Device::Cpu)
            .expect("tensor");
        match load_as {
            LoadAs::F32 => dense.push(q.dequantize(&Device::Cpu).expect("dequantize")),
            LoadAs::F16 => dense.push(q.dequantize_f16(&Device::Cpu).expect("dequantize")),
            _ => drop(q),
        }
    }
    names.len() + dense.len()
}

/// `LoadAs` from its name, for the child process measuring a peak.
fn load_as_named(name: &str) -> LoadAs {
    match name {
        "f16" => LoadAs::F16,
        "f32" => LoadAs::F32,
        _ => LoadAs::Quantized,
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Set in a run of this executable that loads the model at its value
/// through candle's own path and prints its peak resident bytes.
const CANDLE_PATH_PEAK: &str = "GGUFMAP_CANDLE_PATH_PEAK";

/// With [`CANDLE_PATH_PEAK`]: what candle's path loads (`quantized`,
/// `f16`, `f32`).
const CANDLE_PATH_AS: &str = "GGUFMAP_CANDLE_PATH_AS";

/// Peak resident bytes of candle's own path, in a process of its own.
fn candles_peak(path: &Path) -> Option<u64> {
    candles_peak_as(path, "quantized")
}

fn candles_peak_as(path: &Path, load_as: &str) -> Option<u64> {
    let out = Command::new(std::env::current_exe().ok()?)
        .env(CANDLE_PATH_PEAK, path)
        .env(CANDLE_PATH_AS, load_as)
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// Peak resident bytes of `ggufmap load FILE --json ARGS` in its own process.
fn peak(path: &Path, args: &[&str]) -> Option<u64> {
    let out = Command::new(env!("CARGO_BIN_EXE_ggufmap"))
        .arg("load")
        .arg(path)
        .arg("--json")
        .args(args)
        .output()
        .ok()?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    report["memory"]["peak_resident_bytes"].as_u64()
}

fn main() {
    if let Some(path) = std::env::var_os(CANDLE_PATH_PEAK) {
        // A fresh process: without a reset the peak is still the load's.
        let _ = ggufmap::memory::reset_peak();
        let load_as = std::env::var(CANDLE_PATH_AS).unwrap_or_default();
        std::hint::black_box(candles_as(Path::new(&path), load_as_named(&load_as)));
        let peak = ggufmap::memory::usage().and_then(|u| u.peak_resident);
        println!("{}", peak.map_or_else(String::new, |p| p.to_string()));
        return;
    }
    // `cargo test --benches` runs benches with `--bench` absent: nothing to time.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = gemma().unwrap_or_else(|| synthetic(dir.path()));
    let size = std::fs::metadata(&path).expect("model").len();
    println!("model: {} ({size} bytes)", path.display());
    let ways: [(&str, &dyn Fn() -> usize); 3] = [
        ("ggufmap, mapped", &|| ours(&path, false)),
        ("ggufmap, copied", &|| ours(&path, true)),
        ("candle's own path", &|| candles(&path)),
    ];
    let mut times = vec![Vec::new(); ways.len()];
    for _ in 0..RUNS {
        for ((_, load), times) in ways.iter().zip(&mut times) {
            let start = Instant::now();
            std::hint::black_box(load());
            times.push(start.elapsed());
        }
    }
    let medians: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
    let peaks = [
        peak(&path, &[]),
        peak(&path, &["--copy"]),
        candles_peak(&path),
    ];
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("\nwhole-model quantized load, same run (median of {RUNS}; peak: own process)");
    println!(
        "{:<20} {:>10} {:>9} {:>11} {:>9}",
        "way", "time", "speedup", "peak MiB", "peak/candle"
    );
    for (i, (name, _)) in ways.iter().enumerate() {
        let speedup = medians[2].as_secs_f64() / medians[i].as_secs_f64();
        let (peak, ratio) = match (peaks[i], peaks[2]) {
            (Some(p), Some(c)) => (
                format!("{:.1}", mib(p)),
                format!("{:.2}x", p as f64 / c as f64),
            ),
            _ => ("n/a".to_owned(), "n/a".to_owned()),
        };
        println!(
            "{name:<20} {:>10.3?} {:>8.1}x {peak:>11} {ratio:>9}",
            medians[i], speedup
        );
    }
    println!(
        "file: {:.1} MiB; target for the quantized load: peak <= 1.1 x file + 32 MiB = {:.1} MiB",
        mib(size),
        1.1 * mib(size) + 32.0
    );
    dense_loads(&path);
}

/// `load --as f16` and `--as f32` against candle's own path followed by
/// dequantization, interleaved, median of [`RUNS`]; peaks each in its own
/// process, against the output plus 64 MiB.
fn dense_loads(path: &Path) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("\nwhole-model dense load, same run (median of {RUNS}; peak: own process)");
    println!(
        "{:<5} {:>12} {:>12} {:>9} {:>12} {:>12} {:>14}",
        "as", "ggufmap", "candle", "speedup", "peak ours", "peak candle", "output+64MiB"
    );
    for (name, load_as) in [("f16", LoadAs::F16), ("f32", LoadAs::F32)] {
        let (mut ours_t, mut candle_t) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let start = Instant::now();
            std::hint::black_box(ours_as(path, load_as, false));
            ours_t.push(start.elapsed());
            let start = Instant::now();
            std::hint::black_box(candles_as(path, load_as));
            candle_t.push(start.elapsed());
        }
        let (ours_m, candle_m) = (median(&mut ours_t), median(&mut candle_t));
        let output = Gguf::open(path)
            .expect("open")
            .tensors()
            .map(|t| t.n_elements() * if name == "f16" { 2 } else { 4 })
            .sum::<u64>();
        let show =
            |p: Option<u64>| p.map_or_else(|| "n/a".to_owned(), |p| format!("{:.1}", mib(p)));
        println!(
            "{name:<5} {:>12.3?} {:>12.3?} {:>8.2}x {:>12} {:>12} {:>14.1}",
            ours_m,
            candle_m,
            candle_m.as_secs_f64() / ours_m.as_secs_f64(),
            show(peak(path, &["--as", name])),
            show(candles_peak_as(path, name)),
            mib(output) + 64.0
        );
    }
}
