//! A forward pass of Gemma 3 270M (Q4_K_M) through candle-transformers'
//! quantized Gemma 3, loaded twice: through ggufmap's bridge
//! (`Gguf::to_candle_content` + `Gguf::reader`) and through candle's own
//! `gguf_file::Content::read` from a `File`. The logits must be equal, bit
//! for bit.
//!
//! ```sh
//! scripts/fetch_gemma.sh            # once: ~/.cache/ggufmap/gemma-3-270m-q4_k_m.gguf
//! cargo run --release --example gemma_forward --features gemma-example [-- MODEL.gguf]
//! ```
//!
//! Each path runs in a child process of its own (this program, re-run with
//! `--child`), so that its load time and peak resident memory (`VmHWM` from
//! `/proc/self/status`, Linux) are its alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_gemma3::ModelWeights;
use ggufmap::Gguf;

/// A fixed token sequence, starting with `<bos>` (2): any serves to compare
/// the two loading paths.
const TOKENS: [u32; 4] = [2, 651, 6037, 576];

fn default_model() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GGUFMAP_GEMMA") {
        return Some(PathBuf::from(path));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(cache.join("ggufmap/gemma-3-270m-q4_k_m.gguf"))
}

/// Resident-memory figures of this process, in KiB, from `/proc/self/status`.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Loads the model by `path_kind`, runs the forward pass, writes the logits
/// to `out` (raw f32, little-endian) and prints its figures on one line.
fn child(path_kind: &str, model: &Path, out: &Path) -> Result<()> {
    let device = Device::Cpu;
    let rss_before = status_kib("VmRSS:").unwrap_or(0);
    let start = Instant::now();
    let mut weights = match path_kind {
        "ggufmap" => {
            let file = Gguf::open(model)?;
            let content = file.to_candle_content()?;
            let weights = ModelWeights::from_gguf(content, &mut file.reader(), &device)?;
            // The mapping goes with `file`; the weights own their data.
            drop(file);
            weights
        }
        "candle" => {
            let mut file = std::fs::File::open(model)?;
            let content = gguf_file::Content::read(&mut file)?;
            ModelWeights::from_gguf(content, &mut file, &device)?
        }
        other => bail!("unknown path {other}"),
    };
    let load = start.elapsed();
    let start = Instant::now();
    let input = Tensor::new(&TOKENS[..], &device)?.unsqueeze(0)?;
    let logits = weights.forward(&input, 0)?.squeeze(0)?.to_vec1::<f32>()?;
    let forward = start.elapsed();
    std::fs::write(out, bytemuck::cast_slice::<f32, u8>(&logits))?;
    println!(
        "load_ms={:.1} forward_ms={:.1} rss_before_kib={} peak_kib={} rss_file_kib={} rss_anon_kib={}",
        load.as_secs_f64() * 1e3,
        forward.as_secs_f64() * 1e3,
        rss_before,
        status_kib("VmHWM:").unwrap_or(0),
        status_kib("RssFile:").unwrap_or(0),
        status_kib("RssAnon:").unwrap_or(0),
    );
    Ok(())
}

fn run_child(path_kind: &str, model: &Path, dir: &Path) -> Result<(String, Vec<f32>)> {
    let out = dir.join(format!("{path_kind}.logits"));
    let output = Command::new(std::env::current_exe()?)
        .args(["--child", path_kind])
        .arg(model)
        .arg(&out)
        .output()?;
    std::io::stderr().write_all(&output.stderr)?;
    ensure!(
        output.status.success(),
        "{path_kind} path failed: {}",
        output.status
    );
    let figures = String::from_utf8(output.stdout)?.trim().to_owned();
    let bytes = std::fs::read(&out)?;
    let logits = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((figures, logits))
}

fn top5(logits: &[f32]) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(5);
    ranked
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let [_, kind, model, out] = args.as_slice() else {
            bail!("usage: --child KIND MODEL OUT")
        };
        return child(kind, Path::new(model), Path::new(out));
    }
    let model = match args.first() {
        Some(path) => PathBuf::from(path),
        None => default_model().context("no model path: pass one or set GGUFMAP_GEMMA")?,
    };
    ensure!(
        model.exists(),
        "{} not found: run scripts/fetch_gemma.sh or pass a path",
        model.display()
    );
    let dir = std::env::temp_dir().join(format!("gemma_forward-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "model: {} ({} bytes)",
        model.display(),
        std::fs::metadata(&model)?.len()
    );
    println!("tokens: {TOKENS:?}");
    let (ours_figures, ours) = run_child("ggufmap", &model, &dir)?;
    let (theirs_figures, theirs) = run_child("candle", &model, &dir)?;
    std::fs::remove_dir_all(&dir).ok();
    println!("ggufmap bridge : {ours_figures}");
    println!("candle's reader: {theirs_figures}");
    ensure!(
        ours.len() == theirs.len() && !ours.is_empty(),
        "logit counts differ: {} vs {}",
        ours.len(),
        theirs.len()
    );
    let differing = ours
        .iter()
        .zip(&theirs)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    println!("logits: {} values, {} differ", ours.len(), differing);
    println!("top-5 (id, logit): {:?}", top5(&ours));
    ensure!(
        differing == 0,
        "the two loading paths give different logits"
    );
    println!("logits equal");
    Ok(())
}
