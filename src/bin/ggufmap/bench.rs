//! `ggufmap bench`: open time and per-type dequantization throughput on a
//! file's own tensors, one thread against N.
//!
//! Throughput is f32 output bytes per second of the fastest pass over all
//! the tensors of a type (the median is in the JSON too), decoded in
//! bounded chunks into pooled buffers after a warm-up pass: it measures the
//! kernels and the parallel driver, not the kernel's cost of faulting in
//! fresh pages (a 1 GiB output buffer would exceed the pool's cap and be
//! allocated anew each pass).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ggufmap::{GgmlType, Gguf, OpenOptions, Parallelism, TensorView};
use serde_json::json;

/// Least time spent measuring each type (both thread counts together), so
/// short tensors are decoded many times.
const MIN_MEASURE: Duration = Duration::from_millis(600);
/// Least passes timed per (type, threads) pair.
const MIN_PASSES: usize = 5;
/// Most f32 output bytes decoded at once: the pool keeps buffers this size.
const CHUNK_BYTES: usize = 32 << 20;
/// Opens timed for the median.
const OPENS: usize = 7;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// Threads for the parallel runs (0: one per core).
    #[arg(long, default_value_t = 0, value_parser = crate::parse_threads)]
    threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Throughput of one type.
struct TypeResult {
    dtype: GgmlType,
    tensors: usize,
    elements: u64,
    /// Passes timed for each thread count.
    passes: usize,
    one_thread_gbps: f64,
    n_threads_gbps: f64,
    one_thread_median_gbps: f64,
    n_threads_median_gbps: f64,
}

/// Runs `bench`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let model = crate::open(&args.file)?;
    let open = median_open(&args.file, &OpenOptions::new())?;
    let open_populate = median_open(&args.file, &OpenOptions::new().populate(true))?;
    let parallel = Parallelism::threads(args.threads)?;
    let threads = parallel.current_num_threads();
    let results = by_type(&model)
        .into_iter()
        .map(|(dtype, views)| measure_type(dtype, &views, &parallel))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.json {
        print_json(args, open, open_populate, threads, &results)
    } else {
        print_text(open, open_populate, threads, &results);
        Ok(())
    }
}

fn median_open(path: &std::path::Path, options: &OpenOptions) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(OPENS);
    for _ in 0..OPENS {
        let start = Instant::now();
        let model = Gguf::open_with(path, options)?;
        times.push(start.elapsed());
        drop(model);
    }
    Ok(median(&mut times))
}

fn by_type<'a>(model: &'a Gguf<'_>) -> BTreeMap<GgmlType, Vec<TensorView<'a>>> {
    let mut groups: BTreeMap<GgmlType, Vec<TensorView<'a>>> = BTreeMap::new();
    for view in model.tensors().filter(|v| !v.is_empty()) {
        groups.entry(view.dtype()).or_default().push(view);
    }
    groups
}

fn measure_type(
    dtype: GgmlType,
    views: &[TensorView<'_>],
    parallel: &Parallelism,
) -> anyhow::Result<TypeResult> {
    let elements: u64 = views.iter().map(TensorView::n_elements).sum();
    let one_thread = Parallelism::Sequential;
    // Warm-up: brings the file's pages in and fills the pool.
    pass(views, &one_thread)?;
    pass(views, parallel)?;
    // One thread and N threads take turns, so that whatever else the
    // machine does at the time slows both alike.
    let (mut one, mut many) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while one.len() < MIN_PASSES || start.elapsed() < MIN_MEASURE {
        one.push(pass(views, &one_thread)?);
        many.push(pass(views, parallel)?);
    }
    let gbps = |d: Duration| elements as f64 * 4.0 / d.as_secs_f64().max(1e-9) / 1e9;
    Ok(TypeResult {
        dtype,
        tensors: views.len(),
        elements,
        passes: one.len(),
        one_thread_gbps: gbps(fastest(&one)),
        n_threads_gbps: gbps(fastest(&many)),
        one_thread_median_gbps: gbps(median(&mut one)),
        n_threads_median_gbps: gbps(median(&mut many)),
    })
}

/// Time to decode every tensor of `views` to f32 once, in chunks of at
/// most [`CHUNK_BYTES`] taken from the process-wide pool (so buffers are
/// reused, already resident, from pass to pass).
fn pass(views: &[TensorView<'_>], parallelism: &Parallelism) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for view in views {
        for chunk in view
            .dequantize_chunks::<f32>(CHUNK_BYTES)
            .with_parallelism(parallelism.clone())
        {
            drop(chunk?);
        }
    }
    Ok(start.elapsed())
}

fn fastest(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn print_text(open: Duration, open_populate: Duration, threads: usize, results: &[TypeResult]) {
    println!(
        "open (median of {OPENS}): {:.3} ms lazy, {:.3} ms with populate",
        ms(open),
        ms(open_populate)
    );
    println!("dequantization to f32, output GB/s (fastest pass; median speedup in brackets):");
    println!(
        "{:<8} {:>7} {:>12} {:>9} {:>9} {:>8} {:>9}",
        "TYPE",
        "TENSORS",
        "ELEMENTS",
        "1 THREAD",
        format!("{threads} THR"),
        "SPEEDUP",
        "(MEDIAN)"
    );
    for r in results {
        println!(
            "{:<8} {:>7} {:>12} {:>9.2} {:>9.2} {:>7.2}x {:>8}",
            r.dtype.name(),
            r.tensors,
            r.elements,
            r.one_thread_gbps,
            r.n_threads_gbps,
            r.n_threads_gbps / r.one_thread_gbps,
            format!(
                "({:.2}x)",
                r.n_threads_median_gbps / r.one_thread_median_gbps
            )
        );
    }
}

fn print_json(
    args: &Args,
    open: Duration,
    open_populate: Duration,
    threads: usize,
    results: &[TypeResult],
) -> anyhow::Result<()> {
    let types: Vec<_> = results
        .iter()
        .map(|r| {
            json!({
                "dtype": r.dtype.name(),
                "tensors": r.tensors,
                "elements": r.elements,
                "passes": r.passes,
                "one_thread_gbps": r.one_thread_gbps,
                "n_threads_gbps": r.n_threads_gbps,
                "speedup": r.n_threads_gbps / r.one_thread_gbps,
                "one_thread_median_gbps": r.one_thread_median_gbps,
                "n_threads_median_gbps": r.n_threads_median_gbps,
                "median_speedup": r.n_threads_median_gbps / r.one_thread_median_gbps,
            })
        })
        .collect();
    let report = json!({
        "file": args.file.display().to_string(),
        "threads": threads,
        "open_ms": ms(open),
        "open_populate_ms": ms(open_populate),
        "types": types,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
