//! `ggufmap load`: load every tensor into candle and report time and memory.

use std::path::PathBuf;

use candle_core::Device;
use ggufmap::candle::{LoadAs, LoadOptions};
use ggufmap::Parallelism;
use serde_json::json;

use crate::memory_json;

/// Arguments of `load`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// How to load: quantized, f16, bf16 or f32.
    #[arg(long = "as", value_name = "AS", default_value = "quantized")]
    load_as: LoadAs,
    /// Threads to load on (0: one per core).
    #[arg(long, default_value_t = 0, value_parser = crate::parse_threads)]
    threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Load through candle's own GGUF path instead (`Content::read` from the
    /// file, then `content.tensor` for every tensor, kept quantized): the
    /// reference the figures are compared with. Run it as its own process.
    #[arg(long)]
    candle_own_path: bool,
}

/// Runs `load`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    if args.candle_own_path {
        return run_candle_own_path(args);
    }
    // The peak is reset after the file is mapped (mapping costs nothing
    // resident) so it measures the load alone where the OS allows it.
    let model = crate::open(&args.file)?;
    let peak_reset = ggufmap::memory::reset_peak();
    let options = LoadOptions::new(args.load_as).parallelism(Parallelism::threads(args.threads)?);
    let loaded = model.load_candle_with(&Device::Cpu, &options)?;
    let usage = ggufmap::memory::usage();
    let report = &loaded.report;
    // What the load held at its peak besides the tensors it returned.
    let peak_beyond_loaded = usage
        .as_ref()
        .and_then(|u| u.peak_resident)
        .map(|peak| peak.saturating_sub(report.loaded_bytes));
    if args.json {
        let fallbacks: Vec<_> = report
            .fallbacks
            .iter()
            .map(|f| json!({"tensor": f.tensor, "dtype": f.dtype.name(), "loaded_as": f.loaded_as.as_str(), "reason": f.reason.description()}))
            .collect();
        let out = json!({
            "file": args.file.display().to_string(),
            "as": report.load_as.name(),
            "tensors": report.tensors,
            "quantized": report.quantized,
            "dense": report.dense,
            "file_bytes": report.file_bytes,
            "loaded_bytes": report.loaded_bytes,
            "threads": report.threads,
            "read_from_file": report.read_from_file,
            "wall_seconds": report.elapsed.as_secs_f64(),
            "peak_reset": peak_reset,
            "memory": memory_json::json(usage.as_ref()),
            "peak_beyond_loaded_bytes": peak_beyond_loaded,
            "fallbacks": fallbacks,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{report}");
        println!("{}", memory_json::line(usage.as_ref()));
        println!(
            "peak resident beyond the loaded tensors: {}",
            memory_json::mib(peak_beyond_loaded)
        );
        if !peak_reset {
            println!("(the peak could not be reset: it includes everything before the load)");
        }
    }
    Ok(())
}

/// Loads every tensor the way candle's own GGUF code does, for comparison.
fn run_candle_own_path(args: &Args) -> anyhow::Result<()> {
    use candle_core::quantized::gguf_file::Content;
    let peak_reset = ggufmap::memory::reset_peak();
    let start = std::time::Instant::now();
    let mut file = std::fs::File::open(&args.file)?;
    let content = Content::read(&mut file)?;
    let mut tensors = Vec::with_capacity(content.tensor_infos.len());
    for name in content.tensor_infos.keys() {
        tensors.push(content.tensor(&mut file, name, &Device::Cpu)?);
    }
    let wall = start.elapsed().as_secs_f64();
    let usage = ggufmap::memory::usage();
    if args.json {
        let out = json!({
            "file": args.file.display().to_string(),
            "path": "candle gguf_file::Content",
            "tensors": tensors.len(),
            "wall_seconds": wall,
            "peak_reset": peak_reset,
            "memory": memory_json::json(usage.as_ref()),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "candle's own path: loaded {} tensors quantized in {:.3} s",
            tensors.len(),
            wall
        );
        println!("{}", memory_json::line(usage.as_ref()));
    }
    Ok(())
}
