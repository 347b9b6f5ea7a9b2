//! Why `BufferPool` exists and what it costs.
//!
//! - `get_drop/<impl>/<threads>`: one get and one give-back of a buffer of
//!   mixed size (5 classes from 4 KiB to 1 MiB, each with 16 slightly
//!   different sizes) on 1, 2 and 8 threads at once, for `BufferPool` and for
//!   the `Mutex<HashMap<usize, VecDeque<Vec<u8>>>>` of the original plan
//!   (keyed by requested size, given back by capacity). `global` is
//!   `BufferPool::global()`, `owned` a `BufferPool::new` (whose guards also
//!   update a reference count). Time is per round of one operation on every
//!   thread; throughput counts the operations of all threads together.
//! - `first_touch_64MiB/<case>`: writing 64 MiB into a fresh allocation each
//!   time, into a fresh buffer from a pool that keeps nothing (the pool's miss
//!   path), and into a recycled pool buffer whose pages are resident.
//!
//! After criterion's report a summary prints the ratios, from the mean of
//! all of criterion's timed runs of each case.
//!
//! `cargo bench --bench pool [-- FILTER]`

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::sync::{Barrier, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
#[path = "../tests/common/mod.rs"]
mod common;

use common::Rng;
use ggufmap::pool::{BufferPool, PoolConfig};

/// Bytes written by the first-touch benchmark.
const TOUCH_BYTES: usize = 64 << 20;
/// Thread counts of the get/drop benchmark.
const THREADS: [usize; 3] = [1, 2, 8];
/// Base request sizes in bytes; each gets one of 16 offsets of 64 bytes.
const BASE_SIZES: [usize; 5] = [3 << 10, 12 << 10, 48 << 10, 200 << 10, 900 << 10];

/// The original plan's pool: one lock around a map from size to buffers.
/// Buffers are looked up by the requested size and given back under their
/// capacity; nothing is ever freed.
#[derive(Default)]
struct MutexPool {
    map: Mutex<HashMap<usize, VecDeque<Vec<u8>>>>,
}

impl MutexPool {
    fn get(&self, len: usize) -> Vec<u8> {
        let reused = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&len)
            .and_then(VecDeque::pop_front);
        reused.unwrap_or_else(|| vec![0u8; len])
    }

    fn return_buffer(&self, buf: Vec<u8>) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(buf.capacity())
            .or_default()
            .push_back(buf);
    }
}

/// A request size: one of the base sizes plus one of 16 offsets of 64 bytes.
fn request_bytes(rng: &mut Rng) -> usize {
    BASE_SIZES[rng.below(BASE_SIZES.len())] + rng.below(16) * 64
}

/// Mean time per iteration of each benchmark, over all of criterion's runs.
static TIMES: Mutex<Vec<(String, Duration, u64)>> = Mutex::new(Vec::new());

fn record(id: &str, elapsed: Duration, iters: u64) {
    let mut times = TIMES.lock().unwrap_or_else(PoisonError::into_inner);
    match times.iter_mut().find(|(name, ..)| name == id) {
        Some((_, total, n)) => {
            *total += elapsed;
            *n += iters;
        }
        None => times.push((id.to_owned(), elapsed, iters)),
    }
}

fn mean_ns(id: &str) -> Option<f64> {
    let times = TIMES.lock().unwrap_or_else(PoisonError::into_inner);
    let (_, total, n) = times.iter().find(|(name, ..)| name == id)?;
    (*n > 0).then(|| total.as_nanos() as f64 / *n as f64)
}

/// Runs `op` `iters` times on each of `threads` threads, started together;
/// the wall time until the last one finishes.
fn run_threads(threads: usize, iters: u64, op: &(dyn Fn(&mut Rng) + Sync)) -> Duration {
    let start_line = Barrier::new(threads + 1);
    thread::scope(|scope| {
        for id in 0..threads {
            let start_line = &start_line;
            scope.spawn(move || {
                let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (id as u64 + 1));
                start_line.wait();
                for _ in 0..iters {
                    op(&mut rng);
                }
            });
        }
        start_line.wait();
        let start = Instant::now();
        // Leaving the scope joins every thread.
        start
    })
    .elapsed()
}

fn get_drop(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_drop");
    let owned = BufferPool::new(PoolConfig::default());
    for threads in THREADS {
        group.throughput(Throughput::Elements(threads as u64));
        // The process-wide pool and one built with `BufferPool::new`.
        for (name, pool) in [("global", BufferPool::global()), ("owned", &owned)] {
            let id = format!("{name}/{threads}");
            group.bench_function(BenchmarkId::new(name, threads), |b| {
                b.iter_custom(|iters| {
                    let elapsed = run_threads(threads, iters, &|rng| {
                        let buf = pool.get::<u8>(request_bytes(rng));
                        drop(black_box(buf));
                    });
                    record(&id, elapsed, iters);
                    elapsed
                });
            });
        }
        let mutex = MutexPool::default();
        let id = format!("mutex/{threads}");
        group.bench_function(BenchmarkId::new("mutex", threads), |b| {
            b.iter_custom(|iters| {
                let elapsed = run_threads(threads, iters, &|rng| {
                    let buf = mutex.get(request_bytes(rng));
                    mutex.return_buffer(black_box(buf));
                });
                record(&id, elapsed, iters);
                elapsed
            });
        });
    }
    group.finish();
    for (name, pool) in [("global", BufferPool::global()), ("owned", &owned)] {
        let stats = pool.stats();
        println!(
            "BufferPool {name}: {:.3}% hits of {} gets, {} KiB retained",
            stats.hits as f64 * 100.0 / stats.gets().max(1) as f64,
            stats.gets(),
            stats.retained_bytes >> 10
        );
    }
}

fn first_touch(c: &mut Criterion) {
    let mut group = c.benchmark_group("first_touch_64MiB");
    group.throughput(Throughput::Bytes(TOUCH_BYTES as u64));
    group.sample_size(20);
    let len = TOUCH_BYTES / size_of::<f32>();

    group.bench_function("fresh_vec", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut out = vec![0f32; len];
                out.fill(1.5);
                black_box(&out);
            }
            let elapsed = start.elapsed();
            record("touch/fresh_vec", elapsed, iters);
            elapsed
        });
    });

    for (name, config) in [
        (
            "pool_miss",
            PoolConfig::default().with_max_buffers_per_class(0),
        ),
        ("pool_hit", PoolConfig::default()),
    ] {
        let pool = BufferPool::new(config);
        let id = format!("touch/{name}");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    if let Ok(mut out) = pool.get::<f32>(len) {
                        out.fill(1.5);
                        black_box(&*out);
                    }
                }
                let elapsed = start.elapsed();
                record(&id, elapsed, iters);
                elapsed
            });
        });
    }
    group.finish();
}

fn summary() {
    println!("\nsummary (mean time per iteration; ratio > 1: BufferPool is faster)");
    for threads in THREADS {
        let Some(mutex) = mean_ns(&format!("mutex/{threads}")) else {
            continue;
        };
        for name in ["global", "owned"] {
            if let Some(pool) = mean_ns(&format!("{name}/{threads}")) {
                println!(
                    "  get+drop, {threads} thread(s): BufferPool ({name}) {pool:7.1} ns, Mutex<HashMap> {mutex:7.1} ns, ratio {:.2}",
                    mutex / pool
                );
            }
        }
    }
    if let Some(hit) = mean_ns("touch/pool_hit") {
        for other in ["fresh_vec", "pool_miss"] {
            if let Some(ns) = mean_ns(&format!("touch/{other}")) {
                println!(
                    "  write 64 MiB: {other} {:.2} ms vs pool_hit {:.2} ms, ratio {:.2}",
                    ns / 1e6,
                    hit / 1e6,
                    ns / hit
                );
            }
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    get_drop(&mut c);
    first_touch(&mut c);
    c.final_summary();
    summary();
}
