//! Writes one tensor, dequantized to f32, as a NumPy `.npy` file
//! (`numpy.load` reads it; shape outermost first).
//!
//! ```sh
//! cargo run --example export_npy -- MODEL.gguf TENSOR OUT.npy
//! cargo run --example export_npy   # the sample's token_embd.weight to token_embd.npy
//! ```
//!
//! The values are written a chunk at a time, so memory stays small whatever
//! the tensor's size; the file is renamed into place only when complete.

use std::io::Write;

use anyhow::{ensure, Context, Result};
use ggufmap::{AtomicFile, DequantOptions, Gguf};

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let model_path = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf").into());
    let name = args.next().unwrap_or_else(|| "token_embd.weight".into());
    let name = name
        .to_str()
        .context("the tensor name is not UTF-8")?
        .to_owned();
    let out_path = args.next().unwrap_or_else(|| "token_embd.npy".into());

    let model = Gguf::open(&model_path)?;
    let tensor = model.tensor(&name)?;
    let mut out = AtomicFile::create(&out_path)?;
    out.write_all(&npy_header(&tensor.shape()))?;
    let mut written = 0u64;
    for chunk in tensor.dequantize_chunks::<f32>(1 << 20, &DequantOptions::default()) {
        let chunk = chunk?;
        for value in chunk.data.iter() {
            out.write_all(&value.to_le_bytes())?;
        }
        written += chunk.data.len() as u64;
    }
    ensure!(written == tensor.n_elements(), "short tensor");
    out.commit()?;
    println!(
        "{name}: {} values, shape {:?} -> {}",
        written,
        tensor.shape(),
        std::path::Path::new(&out_path).display()
    );
    Ok(())
}

/// A `.npy` version 1.0 header for little-endian f32 of `shape`: magic,
/// version, header length, then a Python dict padded to 64 bytes.
fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + dict + '\n', to a multiple of 64.
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    header
}
