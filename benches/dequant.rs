//! Single-thread dequantization throughput, side by side with candle-core and
//! with a plain fill of the same output bytes (the memory-bound ceiling).
//!
//! Every type [`dequantize_bytes`] supports is measured (types without a
//! dequantizer are skipped). Blocks come from quantizing random data with
//! candle where candle has the type, so they are realistic; other types get
//! random bytes with their scale fields set to finite, normal values.
//!
//! Throughput is output bytes (f32) per second. Besides criterion's groups
//! (`dequant/<TYPE>`), a summary table is printed at the end, from the best
//! of several interleaved timed runs; compare the ratios, which are measured
//! in the same run, not the absolute figures.
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

fn gbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

/// Best time of `SUMMARY_RUNS` interleaved runs of each contender.
fn summary_times(case: &mut Case, out: &mut [f32]) -> (Duration, Option<Duration>, Duration) {
    let (mut t_ours, mut t_candle, mut t_fill) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..SUMMARY_RUNS {
        let start = Instant::now();
        ours(case.dtype, &case.bytes, out).expect("dequantize");
        t_ours = t_ours.min(start.elapsed());
        if let Some(candle) = case.candle.as_mut() {
            let start = Instant::now();
            candle(black_box(&mut *out));
            t_candle = t_candle.min(start.elapsed());
        }
        let start = Instant::now();
        fill(out);
        t_fill = t_fill.min(start.elapsed());
    }
    (t_ours, case.candle.as_ref().map(|_| t_candle), t_fill)
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

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(600))
        .configure_from_args();

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let xs: Vec<f32> = (0..ELEMS).map(|_| weight(&mut rng)).collect();
    // Allocated and touched once: no page faults inside the timed loops.
    let mut out = vec![1f32; ELEMS];
    let out_bytes = ELEMS * std::mem::size_of::<f32>();

    let mut rows = Vec::new();
    for &dtype in GgmlType::ALL {
        if filter.as_deref().is_some_and(|f| !dtype.name().contains(f)) {
            continue;
        }
        let mut case = make_case(dtype, &xs, &mut rng);
        match ours(dtype, &case.bytes, &mut out) {
            Ok(()) => {}
            Err(Error::Unsupported { .. }) => continue,
            Err(e) => {
                eprintln!("{dtype}: skipped, {e}");
                continue;
            }
        }

        let mut group = criterion.benchmark_group(format!("dequant/{dtype}"));
        group.throughput(Throughput::Bytes(out_bytes as u64));
        group.bench_function(BenchmarkId::from_parameter("ggufmap"), |b| {
            b.iter(|| ours(dtype, &case.bytes, &mut out))
        });
        if let Some(candle) = case.candle.as_mut() {
            group.bench_function(BenchmarkId::from_parameter("candle"), |b| {
                b.iter(|| candle(black_box(&mut out)))
            });
        }
        group.bench_function(BenchmarkId::from_parameter("fill"), |b| {
            b.iter(|| fill(&mut out))
        });
        group.finish();

        let differ = disagreements(&mut case, &mut out);
        let (t_ours, t_candle, t_fill) = summary_times(&mut case, &mut out);
        rows.push((dtype, t_ours, t_candle, t_fill, differ));
    }

    println!();
    println!(
        "single thread, {} MiB f32 output per type, best of {SUMMARY_RUNS} runs, GB/s of output",
        out_bytes >> 20
    );
    println!(
        "{:<8} {:>8} {:>8} {:>8} {:>12} {:>10} {:>14}",
        "type", "ours", "candle", "fill", "ours/candle", "ours/fill", "!=candle elems"
    );
    for (dtype, t_ours, t_candle, t_fill, differ) in rows {
        let (o, f) = (gbps(out_bytes, t_ours), gbps(out_bytes, t_fill));
        let c = t_candle.map(|t| gbps(out_bytes, t));
        let dash = || "-".to_string();
        println!(
            "{:<8} {:>8.2} {:>8} {:>8.2} {:>12} {:>10.2} {:>14}",
            dtype.name(),
            o,
            c.map_or_else(dash, |c| format!("{c:.2}")),
            f,
            c.map_or_else(dash, |c| format!("{:.2}", o / c)),
            o / f,
            differ.map_or_else(dash, |d| d.to_string()),
        );
    }
    criterion.final_summary();
}
