//! `ggufmap dequant`: one tensor's values, dequantized, as raw
//! little-endian numbers or a NumPy `.npy` file.
//!
//! The tensor is streamed in chunks of whole blocks (the library decodes
//! each in parallel), so memory stays bounded whatever the tensor's size.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::ValueEnum;
use ggufmap::quant::Output;
use ggufmap::{DequantOptions, Gguf, TensorView};
use half::{bf16, f16};

use crate::output::{display_name, write_le, Sink};

/// Output bytes per chunk: memory stays bounded by a few of these.
const CHUNK_BYTES: usize = 4 << 20;
/// Names suggested when the tensor asked for does not exist.
const SUGGESTIONS: usize = 5;

/// Arguments of `ggufmap dequant`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Values are written in file order (ne0 fastest), little-endian, \
    the order of the reference dequantizers. With --format npy the shape is \
    outermost first. NumPy has no bfloat16: --dtype bf16 --format npy writes \
    the raw bf16 bits with descr '<u2' (view them with ml_dtypes.bfloat16, or \
    shift left by 16 into float32)."
)]
pub struct Args {
    /// The GGUF file.
    pub file: PathBuf,
    /// How to open it.
    #[command(flatten)]
    open: crate::OpenArgs,
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub tensor: String,
    /// Where to write; `-` or no -o is stdout (refused when it is a terminal
    /// unless given as `-o -`).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Raw values, or a NumPy .npy v1.0 file.
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    pub format: Format,
    /// The element type written.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
}

/// Output container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Little-endian values, nothing else.
    Raw,
    /// NumPy .npy version 1.0 (header, then the raw values).
    Npy,
}

/// Output element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    /// 32-bit float.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16 (as '<u2' bits in .npy).
    Bf16,
}

impl Dtype {
    /// The NumPy `descr` of this type.
    fn npy_descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F16 => "<f2",
            Dtype::Bf16 => "<u2",
        }
    }
}

/// Runs `ggufmap dequant`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let gguf = crate::open(&args.file, &args.open)?;
    let tensor = find(&gguf, &args.tensor)?;
    let mut sink = Sink::create(args.output.as_deref(), &args.file)?;
    let result = write_tensor(&tensor, args, sink.writer());
    sink.finish(result)
}

/// The tensor named `name`, or an error suggesting the closest names.
fn find<'a>(gguf: &'a Gguf<'_>, name: &str) -> anyhow::Result<TensorView<'a>> {
    if let Ok(t) = gguf.tensor(name) {
        return Ok(t);
    }
    let mut scored: Vec<(usize, &str)> = gguf
        .tensors()
        .map(|t| (edit_distance(name, t.name()), t.name()))
        .collect();
    scored.sort_unstable();
    let names: Vec<String> = scored
        .iter()
        .take(SUGGESTIONS)
        .map(|&(_, n)| display_name(n))
        .collect();
    if names.is_empty() {
        return Err(anyhow!(
            "tensor {name:?} not found; the file has no tensors"
        ));
    }
    Err(anyhow!(
        "tensor {name:?} not found; did you mean: {}",
        names.join(", ")
    ))
}

/// Levenshtein distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

fn write_tensor(t: &TensorView<'_>, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let header = match args.format {
        Format::Npy => npy_header(args.dtype.npy_descr(), &t.shape())?,
        Format::Raw => Vec::new(),
    };
    let written = match args.dtype {
        Dtype::F32 => stream::<f32>(t, &header, out),
        Dtype::F16 => stream::<f16>(t, &header, out),
        Dtype::Bf16 => stream::<bf16>(t, &header, out),
    };
    written.with_context(|| format!("cannot dequantize tensor {:?} ({})", t.name(), t.dtype()))?;
    if args.format == Format::Npy && args.dtype == Dtype::Bf16 {
        // Ignore a closed stderr: the data is written, the note is a courtesy.
        let _ = writeln!(
            std::io::stderr(),
            "note: numpy has no bfloat16; wrote the raw bf16 bits as '<u2'"
        );
    }
    Ok(())
}

/// Streams the tensor in chunks (decoded in parallel by the library) and
/// writes each after `header`. The header goes out only once the first
/// chunk decoded, so a type without a dequantizer leaves stdout empty.
fn stream<O: Output>(t: &TensorView<'_>, header: &[u8], out: &mut dyn Write) -> anyhow::Result<()> {
    let mut header = Some(header);
    let mut written = 0u64;
    let bar = crate::output::progress(t.n_elements(), "dequantizing", "values", false);
    for chunk in t.dequantize_chunks::<O>(CHUNK_BYTES, &DequantOptions::default()) {
        let values = chunk?.data;
        if let Some(header) = header.take() {
            out.write_all(header)?;
        }
        write_le(out, &values)?;
        written += values.len() as u64;
        bar.inc(values.len() as u64);
    }
    bar.finish_and_clear();
    if let Some(header) = header {
        out.write_all(header)?;
    }
    // The .npy header promised this many values; never leave a short file.
    if written != t.n_elements() {
        bail!("wrote {written} of {} values", t.n_elements());
    }
    Ok(())
}

/// The header of a NumPy .npy v1.0 file: magic, version, header length,
/// then the header dict padded with spaces and a newline so that the data
/// starts at a multiple of 64 bytes.
pub(crate) fn npy_header(descr: &str, shape: &[usize]) -> anyhow::Result<Vec<u8>> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // magic (6) + version (2) + header length (2) + dict + '\n'.
    let total = (10 + dict.len() + 1).next_multiple_of(64);
    let header_len = u16::try_from(total - 10).context("npy header too long")?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            edit_distance("blk.0.attn_q.weight", "blk.0.attn_k.weight"),
            1
        );
    }

    #[test]
    fn npy_header_is_aligned() {
        let header = npy_header("<f4", &[2, 3]).unwrap();
        assert_eq!(header.len() % 64, 0);
        assert_eq!(header.last(), Some(&b'\n'));
        let text = String::from_utf8_lossy(&header[10..]);
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(String::from_utf8_lossy(&npy_header("<f2", &[7]).unwrap()).contains("(7,)"));
        assert!(String::from_utf8_lossy(&npy_header("<f2", &[]).unwrap()).contains("'shape': ()"));
    }
}
