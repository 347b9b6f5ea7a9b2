//! The scaling curve: for 1, 2, 4, 8 and 16 threads (as many as this
//! machine has cores), the rate at which every tensor of each type in a
//! real model decodes to f32, next to a parallel fill of the same output
//! bytes on the same threads (the ceiling: writing the output with no
//! decoding at all), and the wall time of `ggufmap verify` on the model.
//!
//! Output buffers are allocated and touched once, so page faults are not
//! timed; each figure is the median of [`PASSES`] passes, taken side by
//! side in one run.
//!
//! `cargo bench --features cli --bench scaling` (the model: see
//! `benches/model/mod.rs`; `GGUFMAP_THREADS=1,2,4` to choose the counts).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ggufmap::{DequantOptions, GgmlType, Gguf, Parallelism, TensorView};
use rayon::prelude::*;

mod model;
use model::{gemma, synthetic};

/// Timed passes of each measurement; the median is reported.
const PASSES: usize = 5;
/// Values each fill task writes: the decoders' own chunk size (64 KiB).
const FILL_CHUNK: usize = 16 * 1024;

/// The thread counts to measure: `GGUFMAP_THREADS`, or the powers of two
/// up to 16 that this machine has cores for.
fn thread_counts() -> Vec<usize> {
    if let Ok(list) = std::env::var("GGUFMAP_THREADS") {
        return list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    [1, 2, 4, 8, 16]
        .into_iter()
        .filter(|&n| n <= cores)
        .collect()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Median time of `PASSES` runs of `f`.
fn timed(mut f: impl FnMut()) -> Duration {
    median(
        (0..PASSES)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

/// Sixteen f32 on a 64-byte boundary.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct CacheLine([f32; 16]);

/// One type's tensors: decoding them all, and filling their outputs.
struct TypeRun<'a> {
    dtype: GgmlType,
    tensors: Vec<TensorView<'a>>,
    values: usize,
}

impl TypeRun<'_> {
    fn decode(&self, out: &mut [f32], options: &DequantOptions) {
        for t in &self.tensors {
            let n = t.n_elements() as usize;
            t.dequantize_into(&mut out[..n], options).expect("decode");
        }
    }

    /// The fill, split as the decoders split their work: a tensor of one
    /// chunk or less on the calling thread, a larger one across the pool.
    fn fill(&self, out: &mut [f32], pool: &rayon::ThreadPool) {
        for t in &self.tensors {
            let n = t.n_elements() as usize;
            if n <= FILL_CHUNK || pool.current_num_threads() == 1 {
                out[..n].fill(0.0);
                continue;
            }
            pool.install(|| {
                out[..n]
                    .par_chunks_mut(FILL_CHUNK)
                    .for_each(|chunk| chunk.fill(0.0));
            });
        }
    }
}

/// `verify --threads n` on the model, median wall time of three runs as
/// the command reports it.
fn verify_seconds(path: &Path, threads: usize) -> Option<f64> {
    let runs: Vec<f64> = (0..3)
        .filter_map(|_| {
            let out = Command::new(env!("CARGO_BIN_EXE_ggufmap"))
                .arg("verify")
                .arg(path)
                .args(["--json", "--threads", &threads.to_string()])
                .output()
                .ok()?;
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            report["wall_seconds"].as_f64()
        })
        .collect();
    let mut runs = runs;
    runs.sort_by(f64::total_cmp);
    runs.get(runs.len() / 2).copied()
}

fn main() {
    // `cargo test --benches` runs benches without `--bench`: nothing to time.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = gemma().unwrap_or_else(|| synthetic(dir.path()));
    let model = Gguf::open(&path).expect("open");
    let mut runs: Vec<TypeRun<'_>> = Vec::new();
    for t in model.tensors() {
        match runs.iter_mut().find(|r| r.dtype == t.dtype()) {
            Some(run) => run.tensors.push(t),
            None => runs.push(TypeRun {
                dtype: t.dtype(),
                tensors: vec![t],
                values: 0,
            }),
        }
    }
    for run in &mut runs {
        run.values = run.tensors.iter().map(|t| t.n_elements() as usize).sum();
    }
    let largest = model
        .tensors()
        .map(|t| t.n_elements() as usize)
        .max()
        .unwrap_or(0);
    // 64-byte aligned, as the library's pooled buffers are: AVX2 kernels
    // store 32 bytes at a time, and from a `Vec`'s 16-byte alignment every
    // other store would straddle two cache lines (about 8% of the rate of
    // an output that streams to memory).
    let mut lines = vec![CacheLine([1.0; 16]); largest.div_ceil(16)];
    let out = &mut bytemuck::cast_slice_mut::<CacheLine, f32>(&mut lines)[..largest];

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("model: {} ({cores} cores here)", path.display());
    println!("decode rate of every tensor of a type to f32, GB/s of output, median of {PASSES}; fill: the same bytes written in parallel on the same threads");
    println!(
        "{:>7} {:<7} {:>8} {:>8} {:>9} {:>10}",
        "threads", "type", "decode", "fill", "decode/fill", "vs 1 thread"
    );
    let mut one_thread: Vec<f64> = Vec::new();
    for threads in thread_counts() {
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("threads"),
        );
        // One thread is the calling thread, as `Parallelism::threads(1)`
        // gives it; more, a pool of that many.
        let parallelism = match threads {
            1 => Parallelism::Sequential,
            _ => Parallelism::Pool(Arc::clone(&pool)),
        };
        let options = DequantOptions::new().parallelism(parallelism);
        for (i, run) in runs.iter().enumerate() {
            let bytes = (run.values * 4) as f64;
            let decode = bytes / timed(|| run.decode(out, &options)).as_secs_f64() / 1e9;
            let fill = bytes / timed(|| run.fill(out, &pool)).as_secs_f64() / 1e9;
            if threads == 1 {
                one_thread.push(decode);
            }
            let speedup = one_thread.get(i).map_or(f64::NAN, |one| decode / one);
            println!(
                "{threads:>7} {:<7} {decode:>8.2} {fill:>8.2} {:>9.2}x {speedup:>9.2}x",
                run.dtype.name(),
                decode / fill,
            );
        }
        match verify_seconds(&path, threads) {
            Some(s) => println!("{threads:>7} verify  {s:.3} s"),
            None => println!("{threads:>7} verify  (no figure)"),
        }
    }
}
