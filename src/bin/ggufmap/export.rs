//! `ggufmap export`: every selected tensor, dequantized, as a safetensors
//! file or a NumPy `.npz` archive.
//!
//! Tensors are streamed one chunk of whole blocks at a time (decoded in
//! parallel by the library) straight into the output, so memory holds the
//! header and a few chunks whatever the model's size. The safetensors
//! header is built and checked by the `safetensors` crate; the `.npz` is a
//! zip of stored (uncompressed) `.npy` entries written as a stream.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::ValueEnum;
use ggufmap::format::Value;
use ggufmap::quant::Output;
use ggufmap::{AtomicFile, DequantOptions, Gguf, TensorView};
use half::{bf16, f16};

use crate::dequant::{npy_header, Dtype};
use crate::output::write_le;

/// Output bytes per decoded chunk: memory stays bounded by a few of these.
const CHUNK_BYTES: usize = 4 << 20;

/// Arguments of `ggufmap export`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Names are the GGUF tensor names; shapes are outermost \
    first (GGUF's dims reversed), values in file order. safetensors: tensors in \
    the model's order; the GGUF metadata goes into __metadata__ (a string map: \
    strings as they are, numbers and booleans as text, arrays as JSON arrays, \
    non-finite floats as NaN, Infinity, -Infinity), with format=pt unless the \
    model has a `format` key. npz: one stored NAME.npy per tensor, and \
    __metadata__.npy, a 0-d unicode array holding that map as a JSON object. \
    NumPy has no bfloat16: --dtype bf16 writes the bits as '<u2' in .npz \
    (safetensors has BF16).")]
pub struct Args {
    /// The GGUF file (the first part of a split model exports the model).
    pub file: PathBuf,
    /// How to open it.
    #[command(flatten)]
    open: crate::OpenArgs,
    /// The container written.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Where to write; default: FILE with the format's extension.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// The element type written.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Export only tensors whose name matches GLOB (`*`, `?`, `[...]`); may
    /// be repeated (a tensor matching any is exported).
    #[arg(long, value_name = "GLOB")]
    pub tensor: Vec<String>,
}

/// Output container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A safetensors file.
    Safetensors,
    /// A NumPy .npz archive (zip of .npy files, stored).
    Npz,
}

/// Runs `ggufmap export`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let gguf = crate::open(&args.file, &args.open)?;
    let tensors = selected(&gguf, &args.tensor)?;
    let metadata = metadata_map(&gguf);
    let output = match &args.output {
        Some(path) => path.clone(),
        None => args.file.with_extension(match args.format {
            Format::Safetensors => "safetensors",
            Format::Npz => "npz",
        }),
    };
    let inputs: Vec<&Path> = gguf.part_paths().flatten().collect();
    let out = AtomicFile::create_apart_from(&output, &inputs)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let total = tensors.iter().map(TensorView::n_elements).sum();
    let bar = crate::output::progress(total, "exporting", "values", false);
    let written = match args.format {
        Format::Safetensors => safetensors(out, &tensors, metadata, args.dtype, &bar),
        Format::Npz => npz(out, &tensors, &metadata, args.dtype, &bar),
    };
    bar.finish_and_clear();
    written.with_context(|| format!("cannot write {}", output.display()))
}

/// The tensors to export, in file order: those matching any of `globs`, or
/// all without globs.
fn selected<'g>(gguf: &'g Gguf<'_>, globs: &[String]) -> anyhow::Result<Vec<TensorView<'g>>> {
    let patterns = globs
        .iter()
        .map(|g| glob::Pattern::new(g).with_context(|| format!("bad --tensor pattern {g:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tensors: Vec<TensorView<'g>> = gguf
        .tensors()
        .filter(|t| patterns.is_empty() || patterns.iter().any(|p| p.matches(t.name())))
        .collect();
    if tensors.is_empty() {
        bail!("no tensor matches {}", globs.join(" or "));
    }
    Ok(tensors)
}

/// The model's metadata as strings, in file order (see the help text).
fn metadata_map(gguf: &Gguf<'_>) -> Vec<(String, String)> {
    let mut map: Vec<(String, String)> = gguf
        .metadata()
        .iter()
        .map(|(key, value)| (key.to_owned(), value_text(&value)))
        .collect();
    if !map.iter().any(|(k, _)| k == "format") {
        map.push(("format".to_owned(), "pt".to_owned()));
    }
    map
}

/// A value as text: strings as they are, numbers and booleans as text,
/// arrays as JSON arrays.
fn value_text(value: &Value<'_>) -> String {
    match value {
        Value::String(s) => s.to_string_lossy().into_owned(),
        other => {
            let mut out = String::new();
            json_value(other, &mut out);
            out
        }
    }
}

/// Appends `value` as JSON (a string in quotes, a non-finite float as a
/// string, an array element by element, never building a tree).
fn json_value(value: &Value<'_>, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(&serde_json::Value::from(s.to_string_lossy()).to_string());
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(&item, out);
            }
            out.push(']');
        }
        Value::F32(v) => float(f64::from(*v), out),
        Value::F64(v) => float(*v, out),
        Value::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
        other => match (other.to_i64(), other.to_u64()) {
            (Some(v), _) => out.push_str(&v.to_string()),
            (None, Some(v)) => out.push_str(&v.to_string()),
            (None, None) => out.push_str("null"),
        },
    }
}

/// A float as a JSON number, or a string for NaN and the infinities.
fn float(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        out.push_str(&v.to_string());
    }
}

/// A safetensors file: the header from the `safetensors` crate (which
/// checks every offset and size), then each tensor streamed.
fn safetensors(
    mut out: AtomicFile,
    tensors: &[TensorView<'_>],
    metadata: Vec<(String, String)>,
    dtype: Dtype,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    use safetensors::tensor::{Metadata, TensorInfo};
    let (st_dtype, size) = match dtype {
        Dtype::F32 => (safetensors::Dtype::F32, 4),
        Dtype::F16 => (safetensors::Dtype::F16, 2),
        Dtype::Bf16 => (safetensors::Dtype::BF16, 2),
    };
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0usize;
    for t in tensors {
        let bytes = usize::try_from(t.n_elements())
            .ok()
            .and_then(|n| n.checked_mul(size))
            .with_context(|| format!("tensor {:?} is too large for this platform", t.name()))?;
        let end = offset
            .checked_add(bytes)
            .context("the output is too large")?;
        let info = TensorInfo {
            dtype: st_dtype,
            shape: t.shape(),
            data_offsets: (offset, end),
        };
        infos.push((t.name().to_owned(), info));
        offset = end;
    }
    let map: HashMap<String, String> = metadata.into_iter().collect();
    let header = Metadata::new(Some(map), infos).context("invalid safetensors header")?;
    let mut header = serde_json::to_vec(&header)?;
    // The data starts 8-byte aligned, the header padded with spaces.
    header.resize(header.len().next_multiple_of(8), b' ');
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    for t in tensors {
        stream(t, dtype, &mut out, bar)?;
    }
    out.commit()?;
    Ok(())
}

/// A `.npz` archive: each tensor a stored `NAME.npy`, then the metadata.
fn npz(
    out: AtomicFile,
    tensors: &[TensorView<'_>],
    metadata: &[(String, String)],
    dtype: Dtype,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut zip = zip::ZipWriter::new_stream(out);
    let descr = match dtype {
        Dtype::F32 => "<f4",
        Dtype::F16 => "<f2",
        Dtype::Bf16 => "<u2",
    };
    for t in tensors {
        zip.start_file(format!("{}.npy", t.name()), options)?;
        zip.write_all(&npy_header(descr, &t.shape())?)?;
        stream(t, dtype, &mut zip, bar)?;
    }
    // The metadata as a JSON object in a 0-d unicode array (UTF-32).
    let mut json = String::from("{");
    for (i, (key, value)) in metadata.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&serde_json::Value::from(key.as_str()).to_string());
        json.push(':');
        json.push_str(&serde_json::Value::from(value.as_str()).to_string());
    }
    json.push('}');
    let chars = json.chars().count().max(1);
    zip.start_file("__metadata__.npy", options)?;
    zip.write_all(&npy_header(&format!("<U{chars}"), &[])?)?;
    let mut utf32: Vec<u8> = json
        .chars()
        .flat_map(|c| u32::from(c).to_le_bytes())
        .collect();
    utf32.resize(chars * 4, 0);
    zip.write_all(&utf32)?;
    let out = zip.finish()?.into_inner();
    out.commit()?;
    if dtype == Dtype::Bf16 {
        // Ignore a closed stderr: the data is written, the note is a courtesy.
        let _ = writeln!(
            std::io::stderr(),
            "note: numpy has no bfloat16; wrote the raw bf16 bits as '<u2'"
        );
    }
    Ok(())
}

/// Writes `t`'s values as `dtype`, little-endian, chunk by chunk.
fn stream(
    t: &TensorView<'_>,
    dtype: Dtype,
    out: &mut dyn Write,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let written = match dtype {
        Dtype::F32 => stream_as::<f32>(t, out, bar),
        Dtype::F16 => stream_as::<f16>(t, out, bar),
        Dtype::Bf16 => stream_as::<bf16>(t, out, bar),
    };
    written.with_context(|| format!("cannot export tensor {:?} ({})", t.name(), t.dtype()))
}

fn stream_as<O: Output>(
    t: &TensorView<'_>,
    out: &mut dyn Write,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let mut written = 0u64;
    for chunk in t.dequantize_chunks::<O>(CHUNK_BYTES, &DequantOptions::default()) {
        let values = chunk?.data;
        write_le(out, &values)?;
        written += values.len() as u64;
        bar.inc(values.len() as u64);
    }
    // The header promised this many values; never leave a short tensor.
    if written != t.n_elements() {
        bail!("wrote {written} of {} values", t.n_elements());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_arrays_as_json() {
        let mut s = String::new();
        float(f64::NAN, &mut s);
        float(f64::INFINITY, &mut s);
        float(f64::NEG_INFINITY, &mut s);
        float(0.5, &mut s);
        assert_eq!(s, "\"NaN\"\"Infinity\"\"-Infinity\"0.5");
    }
}
