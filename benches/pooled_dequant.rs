//! Why the pool exists: repeatedly dequantizing a 64 MiB (f32 output) Q4_K
//! tensor into pooled buffers, against candle-core's `QTensor::dequantize`
//! (a fresh allocation each time) and against our own decode into a fresh
//! `Vec`, measured side by side in one run.
//!
//! `cargo bench --features candle --bench pooled_dequant`

use std::hint::black_box;
use std::time::{Duration, Instant};

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use criterion::Criterion;
use ggufmap::pool::BufferPool;
use ggufmap::{DequantOptions, GgmlType, Gguf, GgufWriter, Parallelism};

const ELEMENTS: usize = 16 * 1024 * 1024; // 64 MiB of f32 output
const ROW: usize = 4096;

/// Realistic weights: candle quantizes a smooth pseudo-random signal.
fn quantized_tensor() -> QTensor {
    let xs: Vec<f32> = (0..ELEMENTS)
        .map(|i| ((i as f32) * 0.618_034).sin() * 0.05)
        .collect();
    let t = Tensor::from_vec(xs, (ELEMENTS / ROW, ROW), &Device::Cpu).expect("tensor");
    QTensor::quantize(&t, GgmlDType::Q4K).expect("quantize")
}

fn time_per_iter(iters: u32, mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / iters
}

fn main() {
    let q = quantized_tensor();
    let raw = q.data().expect("raw blocks").into_owned();
    let mut writer = GgufWriter::new();
    writer
        .add_tensor(
            "w",
            GgmlType::Q4_K,
            &[ROW as u64, (ELEMENTS / ROW) as u64],
            raw.as_slice(),
        )
        .expect("tensor");
    let file_bytes = writer.to_bytes().expect("file");
    let file = Gguf::from_bytes(&file_bytes).expect("open");
    let view = file.tensor("w").expect("tensor");
    let pool = BufferPool::global();
    let seq = DequantOptions::new()
        .pool(pool.clone())
        .parallelism(Parallelism::Sequential);
    let all = DequantOptions::new().pool(pool.clone());

    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("dequantize_64MiB_q4k");
    group.bench_function("ggufmap_pooled_1thread", |b| {
        b.iter(|| black_box(view.dequantize::<f32>(&seq).expect("dequantize")))
    });
    group.bench_function("ggufmap_fresh_vec_1thread", |b| {
        b.iter(|| {
            let mut v = vec![0f32; ELEMENTS];
            view.dequantize_into(&mut v, &seq).expect("dequantize");
            black_box(v)
        })
    });
    group.bench_function("candle_qtensor_dequantize", |b| {
        b.iter(|| black_box(q.dequantize(&Device::Cpu).expect("candle")))
    });
    group.finish();

    let iters = 8;
    let pooled = time_per_iter(iters, || {
        drop(black_box(view.dequantize::<f32>(&seq).expect("d")))
    });
    let pooled_par = time_per_iter(iters, || {
        drop(black_box(view.dequantize::<f32>(&all).expect("d")))
    });
    let fresh = time_per_iter(iters, || {
        let mut v = vec![0f32; ELEMENTS];
        view.dequantize_into(&mut v, &seq).expect("d");
        drop(black_box(v));
    });
    let candle = time_per_iter(iters, || {
        drop(black_box(q.dequantize(&Device::Cpu).expect("c")))
    });
    let gbps = |d: Duration| (ELEMENTS * 4) as f64 / d.as_secs_f64() / 1e9;
    println!("\nrepeated dequantize of a 64 MiB Q4_K tensor (output GB/s, same run)");
    println!("  ggufmap pooled, 1 thread     {:6.2}", gbps(pooled));
    println!("  ggufmap pooled, all threads  {:6.2}", gbps(pooled_par));
    println!("  ggufmap fresh Vec, 1 thread  {:6.2}", gbps(fresh));
    println!("  candle QTensor::dequantize   {:6.2}", gbps(candle));
    println!(
        "  ratio pooled(1t)/candle      {:6.2}x",
        candle.as_secs_f64() / pooled.as_secs_f64()
    );
    println!(
        "  ratio pooled(all)/candle     {:6.2}x",
        candle.as_secs_f64() / pooled_par.as_secs_f64()
    );
    println!(
        "  ratio pooled/fresh (1t)      {:6.2}x",
        fresh.as_secs_f64() / pooled.as_secs_f64()
    );
}
