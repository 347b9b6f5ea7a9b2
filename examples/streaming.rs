//! Reads a model without mapping it: the header into memory, each tensor's
//! bytes when used, in bounded chunks. Prints the peak resident memory
//! next to the model's size, so the bound shows.
//!
//! ```sh
//! cargo run --release --example streaming -- [MODEL.gguf]
//! ```
//!
//! For files a mapping cannot be trusted with: network file systems, files
//! other programs rewrite. `Gguf::from_reader` does the same over any
//! `Read + Seek` (a socket wrapper, a decompressor with seeking, ...).

use anyhow::Result;
use ggufmap::{DequantOptions, Gguf, OpenOptions};

/// Values decoded at a time: 1 Mi f32 is 4 MiB of output in flight.
const CHUNK: usize = 1 << 20;

fn main() -> Result<()> {
    let path = std::env::args_os()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf").into());
    let model = Gguf::open_with(&path, &OpenOptions::new().streamed(true))?;
    let options = DequantOptions::default();
    let (mut values, mut non_finite) = (0u64, 0u64);
    for t in model.tensors() {
        for chunk in t.dequantize_chunks::<f32>(CHUNK, &options) {
            let chunk = chunk?;
            values += chunk.data.len() as u64;
            non_finite += chunk.data.iter().filter(|v| !v.is_finite()).count() as u64;
        }
    }
    println!(
        "{} tensors, {values} values ({non_finite} NaN or infinite) from {} bytes of tensor data",
        model.tensor_count(),
        model.tensor_bytes()
    );
    match ggufmap::memory::usage().and_then(|u| u.peak_resident) {
        Some(peak) => println!(
            "peak resident: {:.1} MiB",
            peak as f64 / (1u64 << 20) as f64
        ),
        None => println!("peak resident: not known on this platform"),
    }
    Ok(())
}
