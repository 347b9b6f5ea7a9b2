//! `ggufmap verify`: validate a file, dequantize every tensor, count NaN/Inf.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use ggufmap::{Gguf, Parallelism, TensorView};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::memory_json;

/// Output bytes decoded per streamed chunk: bounds the memory verify needs
/// whatever the tensor sizes.
const CHUNK_BYTES: usize = 8 << 20;

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Threads to decode on (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Exit 1 when any value is NaN or infinite.
    #[arg(long)]
    strict: bool,
}

/// What one tensor held.
struct TensorCheck<'a> {
    view: TensorView<'a>,
    nan: u64,
    inf: u64,
}

/// Runs `verify`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let model = crate::open(&args.file)?;
    let parallelism = Parallelism::threads(args.threads)?;
    let bar = progress_bar(&model, args.json);
    let mut checks = Vec::with_capacity(model.tensor_count());
    for view in model.tensors() {
        bar.set_message(view.name().to_owned());
        checks.push(check_tensor(view, &parallelism)?);
        bar.inc(view.bytes().len() as u64);
    }
    bar.finish_and_clear();
    let wall = start.elapsed().as_secs_f64();
    let usage = ggufmap::memory::usage();
    if args.json {
        print_json(args, &model, &checks, wall, usage.as_ref())?;
    } else {
        print_text(
            &model,
            &checks,
            wall,
            usage.as_ref(),
            parallelism.current_num_threads(),
        );
    }
    let bad: u64 = checks.iter().map(|c| c.nan + c.inf).sum();
    if args.strict && bad > 0 {
        anyhow::bail!("{bad} values are NaN or infinite");
    }
    Ok(())
}

fn progress_bar(model: &Gguf<'_>, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(model.tensor_bytes());
    let style =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Decodes `view` in bounded chunks and counts its NaN and infinite values.
fn check_tensor<'a>(
    view: TensorView<'a>,
    parallelism: &Parallelism,
) -> anyhow::Result<TensorCheck<'a>> {
    let (mut nan, mut inf) = (0u64, 0u64);
    for chunk in view
        .dequantize_chunks::<f32>(CHUNK_BYTES)
        .with_parallelism(parallelism.clone())
    {
        let chunk = chunk.with_context(|| {
            format!(
                "tensor {:?} ({}) failed to decode",
                view.name(),
                view.dtype()
            )
        })?;
        for v in chunk.data.iter() {
            nan += u64::from(v.is_nan());
            inf += u64::from(v.is_infinite());
        }
    }
    Ok(TensorCheck { view, nan, inf })
}

fn print_text(
    model: &Gguf<'_>,
    checks: &[TensorCheck<'_>],
    wall: f64,
    usage: Option<&ggufmap::memory::MemoryUsage>,
    threads: usize,
) {
    for c in checks.iter().filter(|c| c.nan + c.inf > 0) {
        println!(
            "{}: {} NaN, {} infinite of {} values ({})",
            c.view.name(),
            c.nan,
            c.inf,
            c.view.n_elements(),
            c.view.dtype()
        );
    }
    let elements: u64 = checks.iter().map(|c| c.view.n_elements()).sum();
    let nan: u64 = checks.iter().map(|c| c.nan).sum();
    let inf: u64 = checks.iter().map(|c| c.inf).sum();
    println!(
        "ok: {} tensors, {} values, {} bytes of tensor data; {} NaN, {} infinite",
        checks.len(),
        elements,
        model.tensor_bytes(),
        nan,
        inf
    );
    let gbps = elements as f64 * 4.0 / wall / 1e9;
    println!("time: {wall:.3} s on {threads} threads ({gbps:.2} GB/s of f32 output)");
    println!("{}", memory_json::line(usage));
    let pool = ggufmap::pool::BufferPool::global().stats();
    println!(
        "pool: {} hits, {} misses, {} bytes retained",
        pool.hits, pool.misses, pool.retained_bytes
    );
}

fn print_json(
    args: &Args,
    model: &Gguf<'_>,
    checks: &[TensorCheck<'_>],
    wall: f64,
    usage: Option<&ggufmap::memory::MemoryUsage>,
) -> anyhow::Result<()> {
    let tensors: Vec<_> = checks
        .iter()
        .map(|c| {
            json!({"name": c.view.name(), "dtype": c.view.dtype().name(), "elements": c.view.n_elements(), "nan": c.nan, "inf": c.inf})
        })
        .collect();
    let report = json!({
        "file": args.file.display().to_string(),
        "valid": true,
        "tensor_count": checks.len(),
        "elements": checks.iter().map(|c| c.view.n_elements()).sum::<u64>(),
        "tensor_bytes": model.tensor_bytes(),
        "nan": checks.iter().map(|c| c.nan).sum::<u64>(),
        "inf": checks.iter().map(|c| c.inf).sum::<u64>(),
        "wall_seconds": wall,
        "memory": memory_json::json(usage),
        "tensors": tensors,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
