//! `ggufmap verify`: validate a file, dequantize every tensor, count NaN/Inf.
//!
//! Opening the file validates its header, metadata and tensor table. Then
//! every tensor is cut into jobs of whole blocks, each small enough that
//! its f32 output stays in a core's cache: a worker decodes a job into a
//! pooled buffer and counts its NaN and infinite values while the values are
//! still hot. The jobs of all tensors go to one thread pool at once, so the
//! many small tensors of a model keep every core busy as well as the large
//! ones, and memory beyond the mapped file stays at one small buffer per
//! thread.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use ggufmap::dequant::dequantize_parallel;
use ggufmap::memory::MemoryUsage;
use ggufmap::pool::{BufferPool, PooledBuf};
use ggufmap::{Gguf, Parallelism, TensorView};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

use crate::memory_json;

/// Most f32 output bytes one job decodes: fits a core's L2 cache, and is
/// enough work (tens of microseconds) that handing it out costs little.
const JOB_OUTPUT_BYTES: usize = 256 << 10;

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Threads to decode on (0: one per core).
    #[arg(long, default_value_t = 0, value_parser = crate::parse_threads)]
    threads: usize,
    /// Exit 1 when any value is NaN or infinite.
    #[arg(long)]
    strict: bool,
}

/// A run of whole blocks of one tensor.
pub(crate) struct Job {
    /// Index of the tensor in the slice of views the jobs were cut from.
    tensor: usize,
    /// Its bytes to decode.
    bytes: std::ops::Range<usize>,
}

impl Job {
    /// Bytes of tensor data the job decodes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// What one tensor held.
struct TensorCheck<'a> {
    view: TensorView<'a>,
    nan: u64,
    inf: u64,
}

/// NaN and infinite values counted in some values.
#[derive(Clone, Copy, Default)]
struct Counts {
    nan: u64,
    inf: u64,
}

/// The whole run, for the report.
struct Summary<'a> {
    checks: Vec<TensorCheck<'a>>,
    wall_seconds: f64,
    threads: usize,
    usage: Option<MemoryUsage>,
}

impl Summary<'_> {
    fn elements(&self) -> u64 {
        self.checks.iter().map(|c| c.view.n_elements()).sum()
    }
    fn nan(&self) -> u64 {
        self.checks.iter().map(|c| c.nan).sum()
    }
    fn inf(&self) -> u64 {
        self.checks.iter().map(|c| c.inf).sum()
    }
    /// GB/s of f32 output.
    fn throughput(&self) -> f64 {
        self.elements() as f64 * 4.0 / self.wall_seconds.max(1e-9) / 1e9
    }
}

/// Runs `verify`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let model = crate::open(&args.file)?;
    let views: Vec<TensorView<'_>> = model.tensors().collect();
    let jobs = jobs(&views);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .thread_name(|i| format!("ggufmap-verify-{i}"))
        .build()
        .context("cannot start the decoding threads")?;
    let bar = progress_bar(&model, args.json);
    let counts = pool.install(|| {
        jobs.par_iter()
            .map(|job| {
                let counts = decode_job(&views, job).map(|values| count(&values));
                bar.inc(job.len() as u64);
                counts
            })
            .collect::<anyhow::Result<Vec<Counts>>>()
    });
    bar.finish_and_clear();
    let counts = counts?;
    let mut checks: Vec<TensorCheck<'_>> = views
        .iter()
        .map(|&view| TensorCheck {
            view,
            nan: 0,
            inf: 0,
        })
        .collect();
    for (job, c) in jobs.iter().zip(&counts) {
        if let Some(check) = checks.get_mut(job.tensor) {
            check.nan += c.nan;
            check.inf += c.inf;
        }
    }
    let summary = Summary {
        checks,
        wall_seconds: start.elapsed().as_secs_f64(),
        threads: pool.current_num_threads(),
        usage: ggufmap::memory::usage(),
    };
    if args.json {
        print_json(args, &model, &summary)?;
    } else {
        print_text(&model, &summary);
    }
    let bad = summary.nan() + summary.inf();
    if args.strict && bad > 0 {
        anyhow::bail!("{bad} values are NaN or infinite");
    }
    Ok(())
}

/// Cuts every tensor into jobs of whole blocks of at most
/// [`JOB_OUTPUT_BYTES`] of output (one block where a block is larger).
pub(crate) fn jobs(views: &[TensorView<'_>]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (tensor, view) in views.iter().enumerate() {
        let dtype = view.dtype();
        let blocks_per_job = (JOB_OUTPUT_BYTES / 4 / dtype.elements_per_block()).max(1);
        let step = blocks_per_job.saturating_mul(dtype.bytes_per_block());
        let len = view.bytes().len();
        let mut start = 0;
        while start < len {
            let end = start.saturating_add(step).min(len);
            jobs.push(Job {
                tensor,
                bytes: start..end,
            });
            start = end;
        }
    }
    jobs
}

/// Decodes one job, on the calling thread, into a buffer from the
/// process-wide pool.
///
/// # Errors
/// The decoding error, with the tensor's name and type.
pub(crate) fn decode_job(views: &[TensorView<'_>], job: &Job) -> anyhow::Result<PooledBuf<f32>> {
    let view = views
        .get(job.tensor)
        .context("internal error: a job names no tensor")?;
    let decode = || -> ggufmap::Result<PooledBuf<f32>> {
        let dtype = view.dtype();
        let bytes = view.bytes().get(job.bytes.clone()).unwrap_or_default();
        let elements = bytes.len() / dtype.bytes_per_block() * dtype.elements_per_block();
        let mut out = BufferPool::global().get::<f32>(elements)?;
        dequantize_parallel(
            dtype,
            bytes,
            view.byte_order(),
            &mut out,
            &Parallelism::Sequential,
        )?;
        Ok(out)
    };
    decode().with_context(|| {
        format!(
            "tensor {:?} ({}) failed to decode",
            view.name(),
            view.dtype()
        )
    })
}

/// Counts NaN and infinite values through their bits, in a loop the
/// compiler vectorizes: 32-bit lanes (four to eight values at a time), a
/// signed compare (the magnitude has no sign bit), and chunks short enough
/// that the lanes cannot overflow.
fn count(values: &[f32]) -> Counts {
    /// Magnitude bits of infinity; above it, NaN.
    const INFINITY: i32 = 0x7f80_0000;
    let mut counts = Counts::default();
    for chunk in values.chunks(1 << 24) {
        let (mut non_finite, mut inf) = (0u32, 0u32);
        for v in chunk {
            let magnitude = (v.to_bits() & 0x7fff_ffff) as i32;
            non_finite += u32::from(magnitude >= INFINITY);
            inf += u32::from(magnitude == INFINITY);
        }
        counts.nan += u64::from(non_finite - inf);
        counts.inf += u64::from(inf);
    }
    counts
}

fn progress_bar(model: &Gguf<'_>, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(model.tensor_bytes());
    let style = ProgressStyle::with_template(
        "verifying {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn print_text(model: &Gguf<'_>, summary: &Summary<'_>) {
    for c in summary.checks.iter().filter(|c| c.nan + c.inf > 0) {
        println!(
            "{}: {} NaN, {} infinite of {} values ({})",
            c.view.name(),
            c.nan,
            c.inf,
            c.view.n_elements(),
            c.view.dtype()
        );
    }
    println!(
        "ok: {} tensors, {} values, {} bytes of tensor data; {} NaN, {} infinite",
        summary.checks.len(),
        summary.elements(),
        model.tensor_bytes(),
        summary.nan(),
        summary.inf()
    );
    println!(
        "time: {:.3} s on {} threads ({:.2} GB/s of f32 output)",
        summary.wall_seconds,
        summary.threads,
        summary.throughput()
    );
    println!("{}", memory_json::line(summary.usage.as_ref()));
    let pool = BufferPool::global().stats();
    println!(
        "pool: {} hits, {} misses, {} bytes retained (peak {})",
        pool.hits, pool.misses, pool.retained_bytes, pool.peak_retained_bytes
    );
}

fn print_json(args: &Args, model: &Gguf<'_>, summary: &Summary<'_>) -> anyhow::Result<()> {
    let tensors: Vec<_> = summary
        .checks
        .iter()
        .map(|c| {
            json!({
                "name": c.view.name(),
                "dtype": c.view.dtype().name(),
                "elements": c.view.n_elements(),
                "nan": c.nan,
                "inf": c.inf,
            })
        })
        .collect();
    let pool = BufferPool::global().stats();
    let report = json!({
        "file": args.file.display().to_string(),
        "valid": true,
        "tensor_count": summary.checks.len(),
        "elements": summary.elements(),
        "tensor_bytes": model.tensor_bytes(),
        "nan": summary.nan(),
        "inf": summary.inf(),
        "threads": summary.threads,
        "wall_seconds": summary.wall_seconds,
        "output_gb_per_second": summary.throughput(),
        "memory": memory_json::json(summary.usage.as_ref()),
        "pool": {
            "hits": pool.hits,
            "misses": pool.misses,
            "retained_bytes": pool.retained_bytes,
            "peak_retained_bytes": pool.peak_retained_bytes,
        },
        "tensors": tensors,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
