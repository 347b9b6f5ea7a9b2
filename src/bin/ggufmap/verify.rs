//! `ggufmap verify`: validate a file, dequantize every tensor, count NaN/Inf.
//!
//! Opening the file validates its header, metadata and tensor table. Then
//! every tensor is decoded by the library's engine in work items of whole
//! blocks ([`TensorView::dequantize_each_chunk`]), each small enough that
//! its f32 output stays in a core's cache: a worker counts an item's NaN
//! and infinite values while they are still hot. Tensors and their items
//! share one thread pool, so the many small tensors of a model keep every
//! core busy as well as the large ones, and memory beyond the file stays at
//! one small buffer per thread (two for a streamed file: the bytes read,
//! and their values).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use ggufmap::memory::MemoryUsage;
use ggufmap::pool::BufferPool;
use ggufmap::{DequantOptions, Gguf, Parallelism, TensorView};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::json;

use crate::memory_json;
use crate::output::{display_name, human_bytes};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// How to open it.
    #[command(flatten)]
    open: crate::OpenArgs,
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

/// NaN and infinite values counted in some values.
#[derive(Clone, Copy, Default)]
struct Counts {
    nan: u64,
    inf: u64,
}

impl Counts {
    fn add(self, other: Counts) -> Counts {
        Counts {
            nan: self.nan + other.nan,
            inf: self.inf + other.inf,
        }
    }

    fn any(self) -> bool {
        self.nan + self.inf > 0
    }
}

/// What the decoding found: totals, and the tensors (by index, in file
/// order once sorted) that hold NaN or infinite values. Nothing is kept
/// for a clean tensor, so memory follows the findings, not the file.
#[derive(Default)]
struct Tally {
    total: Counts,
    elements: u64,
    findings: Vec<(usize, Counts)>,
}

impl Tally {
    fn merge(mut self, other: Tally) -> Tally {
        self.total = self.total.add(other.total);
        self.elements += other.elements;
        self.findings.extend(other.findings);
        self
    }

    /// The counts of tensor `index` (zero for a clean one).
    fn of(&self, index: usize) -> Counts {
        self.findings
            .binary_search_by_key(&index, |&(i, _)| i)
            .ok()
            .and_then(|at| self.findings.get(at))
            .map_or_else(Counts::default, |&(_, c)| c)
    }
}

/// The whole run, for the report.
struct Summary {
    tally: Tally,
    wall_seconds: f64,
    threads: usize,
    usage: Option<MemoryUsage>,
}

impl Summary {
    /// GB/s of f32 output.
    fn throughput(&self) -> f64 {
        self.tally.elements as f64 * 4.0 / self.wall_seconds.max(1e-9) / 1e9
    }
}

/// Runs `verify`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let model = crate::open(&args.file, &args.open)?;
    let pool = crate::thread_pool(args.threads, "verify")?;
    let par = DequantOptions::new().parallelism(Parallelism::Pool(Arc::clone(&pool)));
    let bar = progress_bar(&model, args.json);
    // Tensors are handed out as the iterator yields them (no list of every
    // tensor is built), and a large tensor's work items spread over the
    // same threads.
    let tally = pool.install(|| {
        model
            .tensors()
            .enumerate()
            .par_bridge()
            .map(|(index, view)| check_tensor(index, &view, &par, &bar))
            .try_reduce(Tally::default, |a, b| Ok(a.merge(b)))
    });
    bar.finish_and_clear();
    let mut tally = tally?;
    tally.findings.sort_unstable_by_key(|&(i, _)| i);
    let summary = Summary {
        tally,
        wall_seconds: start.elapsed().as_secs_f64(),
        threads: pool.current_num_threads(),
        usage: ggufmap::memory::usage(),
    };
    let mut out = crate::output::stdout();
    if args.json {
        print_json(args, &model, &summary, &mut out)?;
    } else {
        print_text(&model, &summary, &mut out)?;
    }
    out.flush()?;
    let total = summary.tally.total;
    if args.strict && total.any() {
        anyhow::bail!("{} values are NaN or infinite", total.nan + total.inf);
    }
    Ok(())
}

/// Decodes one tensor in work items of whole blocks (in parallel when it
/// has several) and counts its NaN and infinite values.
fn check_tensor(
    index: usize,
    view: &TensorView<'_>,
    par: &DequantOptions,
    bar: &ProgressBar,
) -> anyhow::Result<Tally> {
    let (nan, inf) = (AtomicU64::new(0), AtomicU64::new(0));
    view.dequantize_each_chunk::<f32>(par, |_, values| {
        let counts = count(values);
        nan.fetch_add(counts.nan, Ordering::Relaxed);
        inf.fetch_add(counts.inf, Ordering::Relaxed);
        bar.inc(values.len() as u64);
        Ok(())
    })
    .with_context(|| {
        format!(
            "tensor {:?} ({}) failed to decode",
            view.name(),
            view.dtype()
        )
    })?;
    let counts = Counts {
        nan: nan.into_inner(),
        inf: inf.into_inner(),
    };
    Ok(Tally {
        total: counts,
        elements: view.n_elements(),
        findings: if counts.any() {
            vec![(index, counts)]
        } else {
            Vec::new()
        },
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
    let elements = model.tensors().map(|t| t.n_elements()).sum();
    crate::output::progress(elements, "verifying", "values", json)
}

fn print_text(model: &Gguf<'_>, summary: &Summary, out: &mut dyn Write) -> std::io::Result<()> {
    let tally = &summary.tally;
    if !tally.findings.is_empty() {
        for (index, view) in model.tensors().enumerate() {
            let c = tally.of(index);
            if c.any() {
                writeln!(
                    out,
                    "{}: {} NaN, {} infinite of {} values ({})",
                    display_name(view.name()),
                    c.nan,
                    c.inf,
                    view.n_elements(),
                    view.dtype()
                )?;
            }
        }
    }
    let verdict = if tally.total.any() {
        format!(
            "found non-finite values in {} tensors",
            tally.findings.len()
        )
    } else {
        "ok".to_owned()
    };
    writeln!(
        out,
        "{verdict}: {} tensors, {} values, {} of tensor data; {} NaN, {} infinite",
        model.tensor_count(),
        tally.elements,
        human_bytes(model.tensor_bytes()),
        tally.total.nan,
        tally.total.inf
    )?;
    writeln!(
        out,
        "time: {:.3} s on {} threads ({:.2} GB/s of f32 output)",
        summary.wall_seconds,
        summary.threads,
        summary.throughput()
    )?;
    writeln!(out, "{}", memory_json::line(summary.usage.as_ref()))?;
    let pool = BufferPool::global().stats();
    writeln!(
        out,
        "pool: {} hits, {} misses, {} bytes retained (peak {})",
        pool.hits, pool.misses, pool.retained_bytes, pool.peak_retained_bytes
    )
}

fn print_json(
    args: &Args,
    model: &Gguf<'_>,
    summary: &Summary,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(
        &mut *out,
        &Report {
            args,
            model,
            summary,
        },
    )?;
    writeln!(out)?;
    Ok(())
}

/// The JSON report, serialized as it is written.
struct Report<'a, 'data> {
    args: &'a Args,
    model: &'a Gguf<'data>,
    summary: &'a Summary,
}

impl Serialize for Report<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Report {
            args,
            model,
            summary,
        } = *self;
        let tally = &summary.tally;
        let pool = BufferPool::global().stats();
        let mut map = crate::report::start(s, "verify", &args.file)?;
        map.serialize_entry("valid", &true)?;
        map.serialize_entry("tensor_count", &model.tensor_count())?;
        map.serialize_entry("elements", &tally.elements)?;
        map.serialize_entry("tensor_bytes", &model.tensor_bytes())?;
        map.serialize_entry("nan", &tally.total.nan)?;
        map.serialize_entry("inf", &tally.total.inf)?;
        map.serialize_entry("threads", &summary.threads)?;
        map.serialize_entry("wall_seconds", &summary.wall_seconds)?;
        map.serialize_entry("output_gb_per_second", &summary.throughput())?;
        map.serialize_entry("memory", &memory_json::json(summary.usage.as_ref()))?;
        let pool = json!({
            "hits": pool.hits,
            "misses": pool.misses,
            "retained_bytes": pool.retained_bytes,
            "peak_retained_bytes": pool.peak_retained_bytes,
        });
        map.serialize_entry("pool", &pool)?;
        map.serialize_entry("tensors", &TensorCounts { model, tally })?;
        map.end()
    }
}

/// Every tensor with its counts, in file order.
struct TensorCounts<'a, 'data> {
    model: &'a Gguf<'data>,
    tally: &'a Tally,
}

impl Serialize for TensorCounts<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.model.tensor_count()))?;
        for (index, view) in self.model.tensors().enumerate() {
            let counts = self.tally.of(index);
            seq.serialize_element(&json!({
                "name": view.name(),
                "dtype": view.dtype().name(),
                "elements": view.n_elements(),
                "nan": counts.nan,
                "inf": counts.inf,
            }))?;
        }
        seq.end()
    }
}
