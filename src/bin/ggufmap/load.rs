//! `ggufmap load`: load every tensor into candle and report time and memory.

use crate::output::human_bytes;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Tensor};
use ggufmap::candle::{LoadAs, LoadOptions, LoadedModel, LoadedTensor};
use ggufmap::Parallelism;
use serde_json::{json, Value};

use crate::memory_json;

/// Arguments of `load`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// How to open it.
    #[command(flatten)]
    open: crate::OpenArgs,
    /// How to load: quantized, f16, bf16 or f32.
    #[arg(long = "as", value_name = "AS", default_value = "quantized")]
    load_as: LoadAs,
    /// Threads to load on (0: one per core).
    #[arg(long, default_value_t = 0, value_parser = crate::parse_threads)]
    threads: usize,
    /// Copy tensors kept quantized into memory of their own (as candle's
    /// loading does) instead of reading their blocks in the mapping.
    #[arg(long)]
    copy: bool,
    /// After loading, read every weight once as a forward pass does
    /// (multiply a vector of ones by each matrix with candle's QMatMul, sum
    /// the bytes of other quantized tensors and the values of dense ones)
    /// and report time, memory and a checksum of the results.
    #[arg(long)]
    matmul: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `load`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    // The peak is reset after the file is mapped (mapping costs nothing
    // resident) so it measures the load alone where the OS allows it.
    let model = crate::open(&args.file, &args.open)?;
    let peak_reset = ggufmap::memory::reset_peak();
    let bar = crate::output::progress(model.tensor_bytes(), "loading", "", args.json);
    bar.set_style(crate::output::bytes_style("loading"));
    let ticks = bar.clone();
    let options = LoadOptions::new(args.load_as)
        .parallelism(Parallelism::threads(args.threads)?)
        .copy_quantized(args.copy)
        .on_progress(move |bytes| ticks.inc(bytes));
    let LoadedModel { tensors, report } = model.load_candle_with(&Device::Cpu, &options)?;
    bar.finish_and_clear();
    let usage = ggufmap::memory::usage();
    let used = args.matmul.then(|| use_weights(tensors)).transpose()?;
    let mut out = crate::output::stdout();
    if args.json {
        let fallbacks: Vec<_> = report
            .fallbacks
            .iter()
            .map(|f| json!({"tensor": f.tensor, "dtype": f.dtype.name(), "loaded_as": f.loaded_as.as_str(), "reason": f.reason.description()}))
            .collect();
        let fields = json!({
            "as": report.load_as.name(),
            "tensors": report.tensors,
            "quantized": report.quantized,
            "mapped": report.mapped,
            "dense": report.dense,
            "file_bytes": report.file_bytes,
            "loaded_bytes": report.loaded_bytes,
            "threads": report.threads,
            "read_from_file": report.read_from_file,
            "wall_seconds": report.elapsed.as_secs_f64(),
            "peak_reset": peak_reset,
            "memory": memory_json::json(usage.as_ref()),
            "after_matmul": used.as_ref().map(Used::json),
            "fallbacks": fallbacks,
        });
        crate::report::write_json(&crate::report::object("load", &args.file, fields), &mut out)?;
    } else {
        writeln!(out, "{}", summary_line(&report))?;
        for fallback in &report.fallbacks {
            writeln!(out, "  fallback: {fallback}")?;
        }
        writeln!(out, "{}", memory_json::line(usage.as_ref()))?;
        if let Some(used) = &used {
            writeln!(out, "{}", used.line())?;
        }
        if !peak_reset {
            writeln!(
                out,
                "(the peak could not be reset: it includes everything before the load)"
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The load in one line, sizes for people.
fn summary_line(report: &ggufmap::candle::LoadReport) -> String {
    let in_place = match report.mapped {
        0 => String::new(),
        n => format!(" ({n} read in place)"),
    };
    format!(
        "loaded {} tensors as {} ({} quantized{in_place}, {} dense): {} of tensor data -> {} in {:.1} ms",
        report.tensors,
        report.load_as,
        report.quantized,
        report.dense,
        human_bytes(report.file_bytes),
        human_bytes(report.loaded_bytes),
        report.elapsed.as_secs_f64() * 1e3
    )
}

/// What reading every weight once took.
struct Used {
    seconds: f64,
    checksum: f64,
    usage: Option<ggufmap::memory::MemoryUsage>,
}

impl Used {
    fn line(&self) -> String {
        format!(
            "after one matmul per weight ({:.3} s, checksum {:e}): {}",
            self.seconds,
            self.checksum,
            memory_json::line(self.usage.as_ref())
        )
    }

    fn json(&self) -> Value {
        json!({
            "wall_seconds": self.seconds,
            "checksum": crate::values::f64_json(self.checksum),
            "memory": memory_json::json(self.usage.as_ref()),
        })
    }
}

/// Reads every weight once, in name order (so that checksums of two loads
/// of one file compare): a vector of ones times each matrix, the sum of the
/// bytes of other quantized tensors (dequantizing a 3-D tensor whole could
/// take many times its size), the sum of the values of dense ones.
fn use_weights(weights: impl IntoIterator<Item = (String, LoadedTensor)>) -> anyhow::Result<Used> {
    let start = Instant::now();
    let mut weights: Vec<(String, LoadedTensor)> = weights.into_iter().collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    let mut checksum = 0f64;
    for (_, weight) in weights {
        // An empty tensor adds nothing, and its other dims may be huge
        // ([2^62, 0]): a vector of ones that long cannot be made.
        if weight.shape().elem_count() == 0 {
            continue;
        }
        let result = match weight {
            LoadedTensor::Quantized(q) if q.shape().rank() == 2 => {
                let k = q.shape().dims()[1];
                let ones = Tensor::ones((1, k), DType::F32, &Device::Cpu)?;
                QMatMul::from_arc(Arc::new(q))?.forward(&ones)?
            }
            LoadedTensor::Quantized(q) => {
                let bytes = q.data()?;
                checksum += bytes.iter().map(|&b| f64::from(b)).sum::<f64>();
                continue;
            }
            LoadedTensor::Dense(t) => t,
        };
        checksum += result.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
    }
    Ok(Used {
        seconds: start.elapsed().as_secs_f64(),
        checksum,
        usage: ggufmap::memory::usage(),
    })
}
