//! Single-thread dequantization throughput, side by side with candle-core,
//! with a plain fill of the same output bytes, and with the type's traffic
//! ceiling (its input read and its output written, no arithmetic); ggml's
//! rate on the same blocks comes from a committed reference
//! (`benches/ggml_reference.txt`).
//!
//! Every type [`dequantize_bytes`] supports is measured (types without a
//! dequantizer are skipped). Blocks come from quantizing random data with
//! candle where candle has the type, so they are realistic; other types get
//! random bytes with their scale fields set to finite, normal values.
//!
//! Throughput is output bytes (f32) per second. Besides criterion's groups
//! (`dequant/<TYPE>`), a summary table is printed at the end, from the best
//! of several interleaved timed runs; compare the ratios, which are measured
//! in the same run, not the absolute figures. Each type's target is the
//! one the project set: 1.5x candle or 0.8x the fill, whichever is lower;
//! twice ggml for the IQ, TQ and FP4 types candle lacks; a type below its
//! target but at 0.9x its traffic ceiling or more is marked `limit` (the
//! machine's memory, not the kernel, stops it).
//!
//! With `GGUFMAP_DUMP_BLOCKS=DIR` each type's blocks are also written to
//! `DIR/<TYPE>.blocks` (for ggml to decode the same,
//! `scripts/ggml_reference.sh --blocks`) and only the summary is timed.
//!
//! `cargo bench --features candle --bench dequant [-- FILTER]` (FILTER: a substring of the type name).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
#[path = "../tests/common/mod.rs"]
mod common;

use common::Rng;
use ggufmap::format::ByteOrder;
use ggufmap::quant::{dequantize_bytes, scale_fields, ScaleKind};
use ggufmap::{Error, GgmlType};

/// Sixteen f32 on a 64-byte boundary.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct CacheLine([f32; 16]);

/// Output elements per type: 8 MiB of f32.
const ELEMS: usize = 1 << 21;
/// Timed runs per contender for the summary table.
const SUMMARY_RUNS: usize = 15;

/// A dequantizer run over prepared input into a caller's buffer.
type Runner = Box<dyn FnMut(&mut [f32])>;

/// One type's input and contenders.
struct Case {
    dtype: GgmlType,
    bytes: Vec<u8>,
    candle: Option<Runner>,
}

/// Weight-like values: normal, scaled as a real model's weights.
fn weight(rng: &mut Rng) -> f32 {
    0.05 * rng.normal()
}

/// Random blocks (or plain values) of `dtype` for `elems` elements, with
/// finite, normal scales.
fn random_bytes(dtype: GgmlType, elems: usize, rng: &mut Rng) -> Vec<u8> {
    let size = dtype.bytes_per_block();
    let blocks = elems / dtype.elements_per_block();
    let mut bytes = vec![0u8; blocks * size];
    match dtype {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::F64 => {
            for v in bytes.chunks_exact_mut(size) {
                let x = weight(rng);
                match dtype {
                    GgmlType::F32 => v.copy_from_slice(&x.to_ne_bytes()),
                    GgmlType::F16 => v.copy_from_slice(&half::f16::from_f32(x).to_ne_bytes()),
                    GgmlType::BF16 => v.copy_from_slice(&half::bf16::from_f32(x).to_ne_bytes()),
                    _ => v.copy_from_slice(&f64::from(x).to_ne_bytes()),
                }
            }
            return bytes;
        }
        // Indices and counts, as an I64 tensor holds: within ±2^40 (the
        // vector kernel takes values within ±2^51, the scalar cast the rest).
        GgmlType::I64 => {
            for v in bytes.chunks_exact_mut(size) {
                let x = (rng.next() as i64) >> 23;
                v.copy_from_slice(&x.to_ne_bytes());
            }
            return bytes;
        }
        _ => bytes = rng.bytes(blocks * size),
    }
    // The scale fields the block describes ([`scale_fields`]), set to
    // finite, normal values.
    for block in bytes.chunks_exact_mut(size) {
        for field in scale_fields(dtype) {
            let (at, scale) = (field.offset, (0.5 + rng.unit() as f32) * 1e-3);
            match field.kind {
                ScaleKind::F16 => {
                    block[at..at + 2].copy_from_slice(&half::f16::from_f32(scale).to_ne_bytes())
                }
                ScaleKind::F32 => block[at..at + 4].copy_from_slice(&scale.to_ne_bytes()),
                ScaleKind::E8M0 => block[at] = 112 + (rng.next() % 8) as u8,
                ScaleKind::Ue4M3 => block[at] = 0x08 + (rng.next() % 0x60) as u8,
                ScaleKind::Iq1mScaleNibbles => block[at + 7] = (block[at + 7] & 0x0F) | 0x30,
                _ => {}
            }
        }
    }
    bytes
}

/// Input for `dtype`: quantized by candle where candle has the type (with
/// candle's dequantizer as a contender), random otherwise.
fn make_case(dtype: GgmlType, xs: &[f32], rng: &mut Rng) -> Case {
    #[cfg(feature = "candle")]
    if let Some((bytes, candle)) = with_candle::case(dtype, xs) {
        return Case {
            dtype,
            bytes,
            candle: Some(candle),
        };
    }
    let _ = xs;
    Case {
        dtype,
        bytes: random_bytes(dtype, ELEMS, rng),
        candle: None,
    }
}

#[cfg(feature = "candle")]
mod with_candle {
    // The table's candle block names (`BlockQ4K`, `f16`, ...) resolve here.
    use candle_core::quantized::k_quants::{
        BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1,
        BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlType as CandleBlock,
    };
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    use ggufmap::GgmlType;
    use half::{bf16, f16};

    use super::Runner;

    /// Blocks quantized by candle from `xs`: their bytes (from `QTensor`,
    /// which runs the same `from_float`) and candle's `to_float` over them.
    fn build<B: CandleBlock + 'static>(xs: &[f32], dtype: GgmlDType) -> (Vec<u8>, Runner) {
        let mut blocks = vec![B::zeros(); xs.len() / B::BLCK_SIZE];
        B::from_float(xs, &mut blocks);
        let tensor = Tensor::from_slice(xs, xs.len(), &Device::Cpu).expect("tensor");
        let q = QTensor::quantize(&tensor, dtype).expect("candle quantize");
        let bytes = q.data().expect("candle data").into_owned();
        let run: Runner = Box::new(move |out: &mut [f32]| B::to_float(&blocks, out));
        (bytes, run)
    }

    /// From the rows of ggufmap's type table: every type candle has, built
    /// with candle's block struct for it.
    macro_rules! candle_cases {
        ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $elems:literal, $bytes:literal, $kind:ident($($block:tt)+), [$($qtype:ident, $cblock:ty)?]; )*) => {
            pub(super) fn case(dtype: GgmlType, xs: &[f32]) -> Option<(Vec<u8>, Runner)> {
                match dtype {
                    $($(GgmlType::$variant => Some(build::<$cblock>(xs, GgmlDType::$qtype)),)?)*
                    _ => None,
                }
            }
        };
    }

    ggufmap::__ggml_type_table!(candle_cases);
}

fn ours(dtype: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), Error> {
    dequantize_bytes(dtype, black_box(bytes), ByteOrder::NATIVE, black_box(out))
}

fn fill(out: &mut [f32]) {
    black_box(out).fill(0.0);
}

/// The type's memory traffic with no arithmetic: its input read (an XOR
/// over the bytes) and its output stored, a chunk of each in turn, as a
/// kernel does. A kernel that reaches this rate is at the machine's limit
/// for its input and output sizes, whatever the fill does.
fn stream(input: &[u8], out: &mut [f32]) {
    const OUT_CHUNK: usize = 256;
    let in_chunk = input.len().div_ceil(out.len().div_ceil(OUT_CHUNK)).max(1);
    let mut seen = 0u64;
    for (out, input) in black_box(out)
        .chunks_mut(OUT_CHUNK)
        .zip(input.chunks(in_chunk))
    {
        let words = input.chunks_exact(8);
        let tail = words
            .remainder()
            .iter()
            .fold(0, |acc, &b| acc ^ u64::from(b));
        seen ^= words.fold(tail, |acc, w| {
            acc ^ u64::from_ne_bytes(w.try_into().expect("8 bytes"))
        });
        out.fill(1.0);
    }
    black_box(seen);
}

/// Whether a type meets its target: `yes`, `limit` where it falls short
/// but runs at 0.9x or more of its traffic ceiling (`stream`: the machine's
/// memory, not the kernel, stops it), else `no`.
fn verdict(ours: f64, target: f64, stream: f64) -> &'static str {
    if ours >= target {
        "yes"
    } else if ours >= 0.9 * stream {
        "limit"
    } else {
        "no"
    }
}

/// ggml's own `to_float` rates on these blocks, GB/s by type name, from
/// `benches/ggml_reference.txt` (committed; made on the same machine by
/// `scripts/ggml_reference.sh --blocks`, whose header says how).
fn ggml_reference() -> Vec<(String, f64)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/ggml_reference.txt");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, rate) = l.split_once(' ')?;
            Some((name.to_string(), rate.trim().parse().ok()?))
        })
        .collect()
}

/// The types whose target is twice ggml's rate rather than the fill's.
fn against_ggml(dtype: GgmlType) -> bool {
    let name = dtype.name();
    name.starts_with("IQ") || name.starts_with("TQ") || name.ends_with("FP4")
}

fn gbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

/// Best times of the contenders, from interleaved runs.
struct Times {
    ours: Duration,
    candle: Option<Duration>,
    fill: Duration,
    stream: Duration,
}

/// Best time of `SUMMARY_RUNS` interleaved runs of each contender.
fn summary_times(case: &mut Case, out: &mut [f32]) -> Times {
    let best = |t: &mut Duration, run: &mut dyn FnMut()| {
        let start = Instant::now();
        run();
        *t = (*t).min(start.elapsed());
    };
    let mut t = Times {
        ours: Duration::MAX,
        candle: case.candle.as_ref().map(|_| Duration::MAX),
        fill: Duration::MAX,
        stream: Duration::MAX,
    };
    for _ in 0..SUMMARY_RUNS {
        best(&mut t.ours, &mut || {
            ours(case.dtype, &case.bytes, out).expect("dequantize")
        });
        if let (Some(candle), Some(t_candle)) = (case.candle.as_mut(), t.candle.as_mut()) {
            best(t_candle, &mut || candle(black_box(&mut *out)));
        }
        best(&mut t.fill, &mut || fill(out));
        best(&mut t.stream, &mut || stream(&case.bytes, out));
    }
    t
}

/// Elements where candle's output differs from ours (same blocks), as a
/// check that both read the same data.
fn disagreements(case: &mut Case, out: &mut [f32]) -> Option<usize> {
    let candle = case.candle.as_mut()?;
    ours(case.dtype, &case.bytes, out).ok()?;
    let mine = out.to_vec();
    candle(out);
    Some(
        mine.iter()
            .zip(out.iter())
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count(),
    )
}

/// Criterion's groups for one type (`dequant/<TYPE>`): ours, candle's and
/// the fill.
fn criterion_groups(criterion: &mut Criterion, case: &mut Case, out: &mut [f32]) {
    let dtype = case.dtype;
    let mut group = criterion.benchmark_group(format!("dequant/{dtype}"));
    group.throughput(Throughput::Bytes(std::mem::size_of_val(out) as u64));
    group.bench_function(BenchmarkId::from_parameter("ggufmap"), |b| {
        b.iter(|| ours(dtype, &case.bytes, out))
    });
    if let Some(candle) = case.candle.as_mut() {
        group.bench_function(BenchmarkId::from_parameter("candle"), |b| {
            b.iter(|| candle(black_box(&mut *out)))
        });
    }
    group.bench_function(BenchmarkId::from_parameter("fill"), |b| {
        b.iter(|| fill(out))
    });
    group.finish();
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(600))
        .configure_from_args();

    let dump = std::env::var_os("GGUFMAP_DUMP_BLOCKS").map(std::path::PathBuf::from);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let xs: Vec<f32> = (0..ELEMS).map(|_| weight(&mut rng)).collect();
    // Allocated and touched once: no page faults inside the timed loops.
    // On a 64-byte boundary, as the library's pooled buffers are (32-byte
    // stores from a `Vec`'s 16-byte alignment straddle cache lines).
    let mut lines = vec![CacheLine([1.0; 16]); ELEMS / 16];
    let out: &mut [f32] = bytemuck::cast_slice_mut(&mut lines);
    let out_bytes = ELEMS * std::mem::size_of::<f32>();

    let mut rows = Vec::new();
    for &dtype in GgmlType::ALL {
        if filter.as_deref().is_some_and(|f| !dtype.name().contains(f)) {
            continue;
        }
        let mut case = make_case(dtype, &xs, &mut rng);
        match ours(dtype, &case.bytes, out) {
            Ok(()) => {}
            Err(Error::Unsupported { .. }) => continue,
            Err(e) => {
                eprintln!("{dtype}: skipped, {e}");
                continue;
            }
        }

        // For scripts/ggml_reference.sh: the blocks, for ggml to decode the
        // same; the summary alone is timed.
        if let Some(dir) = &dump {
            std::fs::write(dir.join(format!("{}.blocks", dtype.name())), &case.bytes)
                .expect("write blocks");
        } else {
            criterion_groups(&mut criterion, &mut case, out);
        }

        let differ = disagreements(&mut case, out);
        let times = summary_times(&mut case, out);
        rows.push((dtype, times, differ));
    }

    println!();
    println!(
        "single thread, {} MiB f32 output per type, best of {SUMMARY_RUNS} runs, GB/s of output",
        out_bytes >> 20
    );
    println!("target: 1.5x candle or 0.8x fill, whichever is lower; where candle lacks the type,");
    println!("  2x ggml for IQ/TQ/FP4 (ggml: benches/ggml_reference.txt), 0.8x fill for the rest");
    println!(
        "stream: the type's input read and output stored with no arithmetic (its traffic ceiling);"
    );
    println!("  met = limit: below target but at 0.9x stream or more");
    println!(
        "{:<8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>5} {:>6}",
        "type",
        "ours",
        "candle",
        "ggml",
        "fill",
        "stream",
        "/candle",
        "/ggml",
        "/stream",
        "target",
        "met",
        "!=cndl"
    );
    let ggml = ggml_reference();
    for (dtype, t, differ) in rows {
        let rate = |t: Duration| gbps(out_bytes, t);
        let (o, f, st) = (rate(t.ours), rate(t.fill), rate(t.stream));
        let c = t.candle.map(rate);
        let g = ggml
            .iter()
            .find(|(n, _)| n == dtype.name())
            .map(|&(_, g)| g);
        let target = match (c, g) {
            (Some(c), _) => (1.5 * c).min(0.8 * f),
            (None, Some(g)) if against_ggml(dtype) => 2.0 * g,
            _ => 0.8 * f,
        };
        let dash = || "-".to_string();
        let ratio = |x: Option<f64>| x.map_or_else(dash, |x| format!("{:.2}", o / x));
        println!(
            "{:<8} {:>7.2} {:>7} {:>7} {:>7.2} {:>7.2} {:>7} {:>7} {:>7.2} {:>7.2} {:>5} {:>6}",
            dtype.name(),
            o,
            c.map_or_else(dash, |c| format!("{c:.2}")),
            g.map_or_else(dash, |g| format!("{g:.2}")),
            f,
            st,
            ratio(c),
            ratio(g),
            o / st,
            target,
            verdict(o, target, st),
            differ.map_or_else(dash, |d| d.to_string()),
        );
    }
    criterion.final_summary();
}
