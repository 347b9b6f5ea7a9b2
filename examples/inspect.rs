//! Prints a model's header, a few metadata entries and its tensor table:
//! what `ggufmap inspect` shows, through the library.
//!
//! ```sh
//! cargo run --example inspect -- [MODEL.gguf]
//! ```
//!
//! Without an argument it reads the sample model the repository ships.

use anyhow::Result;
use ggufmap::Gguf;

fn main() -> Result<()> {
    let path = std::env::args_os()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf").into());
    // Maps the file and parses the header; no tensor data is read.
    let model = Gguf::open(&path)?;
    println!(
        "GGUF v{}, {} tensors in {} part(s), {} bytes of tensor data",
        model.version(),
        model.tensor_count(),
        model.part_count(),
        model.tensor_bytes()
    );

    let meta = model.metadata();
    if let Ok(arch) = meta.get_str("general.architecture") {
        println!("architecture: {arch}");
    }
    for (key, value) in meta.iter().take(8) {
        println!("  {key}: {}", value.value_type());
    }
    if let Ok(tokens) = meta.get_array("tokenizer.ggml.tokens") {
        println!("vocabulary: {} tokens", tokens.len());
    }

    for t in model.tensors() {
        println!(
            "{:<32} {:<6} {:>14} {:>10} bytes",
            t.name(),
            t.dtype().name(),
            format!("{:?}", t.shape()),
            t.info().n_bytes()
        );
    }
    Ok(())
}
