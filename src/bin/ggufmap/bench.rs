//! `ggufmap bench`: open time and per-type dequantization throughput on a
//! file's own tensors, one thread against N.
//!
//! Each type is decoded to f32 two ways, each on one thread and on N:
//!
//! - tensor by tensor, each through the library's parallel driver
//!   ([`TensorView::dequantize_chunks`]): what a caller decoding one tensor
//!   at a time gets. Every tensor is a fork and a join, which costs tens of
//!   microseconds where threads have to be woken: on small tensors that
//!   fixed cost limits the speedup.
//! - across tensors: every tensor of the type decoded in work items of
//!   whole blocks ([`TensorView::dequantize_each_chunk`], as `verify`
//!   does), tensors and items sharing the thread pool: what the kernels
//!   and the memory system allow, with no join between tensors.
//!
//! Throughput is f32 output bytes per second of the fastest pass over all
//! the tensors of the type (medians are in the JSON too), into pooled
//! buffers, after a warm-up pass. Outputs are bounded ([`CHUNK_BYTES`] per
//! chunk) so that the pool reuses them: a 1 GiB buffer would exceed its cap
//! and be faulted in anew each pass, which measures the kernel's page
//! faults rather than the kernels.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ggufmap::{DequantOptions, GgmlType, Gguf, OpenOptions, Parallelism, TensorView};
use rayon::prelude::*;
use serde_json::{json, Value};

/// Least time spent measuring each type (all four runs together), so short
/// tensors are decoded many times.
const MIN_MEASURE: Duration = Duration::from_millis(800);
/// Least passes timed per run.
const MIN_PASSES: usize = 5;
/// Most f32 output bytes decoded at once tensor by tensor: the pool keeps
/// buffers this size.
const CHUNK_BYTES: usize = 32 << 20;
/// Opens timed for the median.
const OPENS: usize = 7;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// How to open it.
    #[command(flatten)]
    open: crate::OpenArgs,
    /// Threads for the parallel runs (0: one per core).
    #[arg(long, default_value_t = 0, value_parser = crate::parse_threads)]
    threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Where the work of one timed pass runs.
struct Threads {
    /// For the library's driver.
    options: DequantOptions,
    /// For the tensors decoded at once; `None` for the calling thread alone.
    pool: Option<Arc<rayon::ThreadPool>>,
}

/// Fastest and median pass of one run.
#[derive(Clone, Copy)]
struct Timing {
    best: Duration,
    median: Duration,
}

impl Timing {
    fn of(times: &mut [Duration]) -> Timing {
        Timing {
            best: times.iter().copied().min().unwrap_or_default(),
            median: median(times),
        }
    }
}

/// Both ways of decoding one type, one thread against N.
struct Scaling {
    one: Timing,
    many: Timing,
}

impl Scaling {
    fn json(&self, elements: u64) -> Value {
        let (one, many) = (
            gbps(elements, self.one.best),
            gbps(elements, self.many.best),
        );
        let (one_median, many_median) = (
            gbps(elements, self.one.median),
            gbps(elements, self.many.median),
        );
        let f = crate::values::f64_json;
        json!({
            "one_thread_gb_per_second": f(one),
            "n_threads_gb_per_second": f(many),
            "speedup": f(many / one),
            "one_thread_median_gb_per_second": f(one_median),
            "n_threads_median_gb_per_second": f(many_median),
            "median_speedup": f(many_median / one_median),
        })
    }
}

/// Throughput of one type.
struct TypeResult {
    dtype: GgmlType,
    tensors: usize,
    elements: u64,
    /// Passes timed for each run.
    passes: usize,
    per_tensor: Scaling,
    across: Scaling,
}

/// Runs `bench`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let model = crate::open(&args.file, &args.open)?;
    let open = median_open(&args.file, &args.open.options())?;
    let open_populate = median_open(&args.file, &args.open.options().populate(true))?;
    let one = Threads {
        options: DequantOptions::new().parallelism(Parallelism::Sequential),
        pool: None,
    };
    let pool = crate::thread_pool(args.threads, "bench")?;
    let threads = pool.current_num_threads();
    let many = Threads {
        options: DequantOptions::new().parallelism(Parallelism::Pool(Arc::clone(&pool))),
        pool: Some(pool),
    };
    let types = by_type(&model);
    let bar = crate::output::progress(types.len() as u64, "benchmarking", "types", args.json);
    let results = types
        .into_iter()
        .map(|(dtype, views)| {
            let result = measure_type(dtype, &views, &one, &many);
            bar.inc(1);
            result
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    bar.finish_and_clear();
    let mut out = crate::output::stdout();
    if args.json {
        print_json(args, open, open_populate, threads, &results, &mut out)?;
    } else {
        print_text(open, open_populate, threads, &results, &mut out)?;
    }
    out.flush()?;
    Ok(())
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
    one: &Threads,
    many: &Threads,
) -> anyhow::Result<TypeResult> {
    let runs: [(&Threads, bool); 4] = [(one, false), (many, false), (one, true), (many, true)];
    let run = |(threads, across): (&Threads, bool)| {
        if across {
            pass_across(views, threads)
        } else {
            pass_per_tensor(views, threads)
        }
    };
    // Warm-up: brings the file's pages in and fills the pool.
    for r in runs {
        run(r)?;
    }
    // The runs take turns, so that whatever else the machine does at the
    // time slows them alike.
    let mut times: [Vec<Duration>; 4] = Default::default();
    let start = Instant::now();
    while times[0].len() < MIN_PASSES || start.elapsed() < MIN_MEASURE {
        for (r, t) in runs.into_iter().zip(times.iter_mut()) {
            t.push(run(r)?);
        }
    }
    let [one_tensor, many_tensor, one_across, many_across] = &mut times;
    Ok(TypeResult {
        dtype,
        tensors: views.len(),
        elements: views.iter().map(TensorView::n_elements).sum(),
        passes: one_tensor.len(),
        per_tensor: Scaling {
            one: Timing::of(one_tensor),
            many: Timing::of(many_tensor),
        },
        across: Scaling {
            one: Timing::of(one_across),
            many: Timing::of(many_across),
        },
    })
}

/// Time to decode every tensor of `views` once, tensor after tensor, each
/// through the library's parallel driver in chunks of at most
/// [`CHUNK_BYTES`] from the process-wide pool.
fn pass_per_tensor(views: &[TensorView<'_>], threads: &Threads) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for view in views {
        for chunk in view.dequantize_chunks::<f32>(CHUNK_BYTES, &threads.options) {
            drop(chunk?);
        }
    }
    Ok(start.elapsed())
}

/// Time to decode every job once: on the calling thread, or all at once on
/// the thread pool.
fn pass_across(views: &[TensorView<'_>], threads: &Threads) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let decode =
        |view: &TensorView<'_>| view.dequantize_each_chunk::<f32>(&threads.options, |_, _| Ok(()));
    match &threads.pool {
        Some(pool) => pool.install(|| views.par_iter().try_for_each(decode))?,
        None => views.iter().try_for_each(decode)?,
    }
    Ok(start.elapsed())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// GB/s of f32 output.
fn gbps(elements: u64, time: Duration) -> f64 {
    elements as f64 * 4.0 / time.as_secs_f64().max(1e-9) / 1e9
}

fn print_text(
    open: Duration,
    open_populate: Duration,
    threads: usize,
    results: &[TypeResult],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "open (median of {OPENS}): {:.3} ms lazy, {:.3} ms with populate",
        open.as_secs_f64() * 1e3,
        open_populate.as_secs_f64() * 1e3
    )?;
    writeln!(
        out,
        "dequantization to f32, output GB/s of the fastest pass (median speedup in brackets):"
    )?;
    writeln!(
        out,
        "{:<8} {:>7} {:>11} | {:^37} | {:^37}",
        "", "", "", "tensor by tensor", "across tensors"
    )?;
    let n = format!("{threads} THR");
    writeln!(
        out,
        "{:<8} {:>7} {:>11} | {:>8} {:>8} {:>8} {:>9} | {:>8} {:>8} {:>8} {:>9}",
        "TYPE",
        "TENSORS",
        "ELEMENTS",
        "1 THR",
        n,
        "SPEEDUP",
        "(MEDIAN)",
        "1 THR",
        n,
        "SPEEDUP",
        "(MEDIAN)"
    )?;
    let columns = |s: &Scaling, elements: u64| {
        let (one, many) = (gbps(elements, s.one.best), gbps(elements, s.many.best));
        let median = gbps(elements, s.many.median) / gbps(elements, s.one.median);
        format!(
            "{one:>8.2} {many:>8.2} {:>7.2}x {:>9}",
            many / one,
            format!("({median:.2}x)")
        )
    };
    for r in results {
        writeln!(
            out,
            "{:<8} {:>7} {:>11} | {} | {}",
            r.dtype.name(),
            r.tensors,
            r.elements,
            columns(&r.per_tensor, r.elements),
            columns(&r.across, r.elements)
        )?;
    }
    Ok(())
}

fn print_json(
    args: &Args,
    open: Duration,
    open_populate: Duration,
    threads: usize,
    results: &[TypeResult],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let types: Vec<_> = results
        .iter()
        .map(|r| {
            // The tensor-by-tensor figures at the top level, the way across
            // tensors under `across_tensors`.
            let mut entry = json!({
                "dtype": r.dtype.name(),
                "tensors": r.tensors,
                "elements": r.elements,
                "passes": r.passes,
            });
            if let (Some(map), Value::Object(per_tensor)) =
                (entry.as_object_mut(), r.per_tensor.json(r.elements))
            {
                map.extend(per_tensor);
                map.insert("across_tensors".to_owned(), r.across.json(r.elements));
            }
            entry
        })
        .collect();
    let fields = json!({
        "threads": threads,
        "open_seconds": open.as_secs_f64(),
        "open_populate_seconds": open_populate.as_secs_f64(),
        "types": types,
    });
    crate::report::write_json(&crate::report::object("bench", &args.file, fields), out)
}
