//! `ggufmap bench`: open time and per-type dequantization throughput on a
//! file's own tensors, one thread against N.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ggufmap::pool::BufferPool;
use ggufmap::{GgmlType, Gguf, OpenOptions, Parallelism, TensorView};
use serde_json::json;

/// Least time spent measuring each (type, threads) pair, so short tensors
/// are decoded several times.
const MIN_MEASURE: Duration = Duration::from_millis(300);
/// Opens timed for the median.
const OPENS: usize = 7;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// Threads for the parallel runs (0: one per core).
    #[arg(long, default_value_t = 0)]
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
    one_thread_gbps: f64,
    n_threads_gbps: f64,
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
    times.sort();
    Ok(times[OPENS / 2])
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
    let one = throughput(views, elements, &Parallelism::Sequential)?;
    let many = throughput(views, elements, parallel)?;
    Ok(TypeResult {
        dtype,
        tensors: views.len(),
        elements,
        one_thread_gbps: one,
        n_threads_gbps: many,
    })
}

/// Output GB/s decoding every tensor of `views` into pooled buffers, after
/// one warm-up pass that also brings the file's pages in.
fn throughput(
    views: &[TensorView<'_>],
    elements: u64,
    parallelism: &Parallelism,
) -> anyhow::Result<f64> {
    let pool = BufferPool::global();
    let pass = || -> anyhow::Result<()> {
        for view in views {
            drop(view.dequantize_with::<f32>(pool, parallelism)?);
        }
        Ok(())
    };
    pass()?;
    let start = Instant::now();
    let mut passes = 0u32;
    while start.elapsed() < MIN_MEASURE {
        pass()?;
        passes += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(elements as f64 * 4.0 * f64::from(passes) / seconds / 1e9)
}

fn print_text(open: Duration, open_populate: Duration, threads: usize, results: &[TypeResult]) {
    println!(
        "open (median of {OPENS}): {:.3} ms lazy, {:.3} ms with populate",
        ms(open),
        ms(open_populate)
    );
    println!("dequantization to f32, output GB/s:");
    println!(
        "{:<8} {:>7} {:>12} {:>9} {:>9} {:>8}",
        "TYPE",
        "TENSORS",
        "ELEMENTS",
        "1 THREAD",
        format!("{threads} THR"),
        "SPEEDUP"
    );
    for r in results {
        println!(
            "{:<8} {:>7} {:>12} {:>9.2} {:>9.2} {:>7.2}x",
            r.dtype.name(),
            r.tensors,
            r.elements,
            r.one_thread_gbps,
            r.n_threads_gbps,
            r.n_threads_gbps / r.one_thread_gbps
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
                "one_thread_gbps": r.one_thread_gbps,
                "n_threads_gbps": r.n_threads_gbps,
                "speedup": r.n_threads_gbps / r.one_thread_gbps,
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
