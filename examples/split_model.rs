//! Splits a model into parts of at most N tensors, named and keyed as
//! llama.cpp's `gguf-split --split-max-tensors N` names them, then opens
//! the parts as one model and checks that every tensor reads back the same.
//!
//! ```sh
//! cargo run --release --example split_model -- MODEL.gguf OUT_PREFIX [N]
//! ```
//!
//! `OUT_PREFIX` is a path without the suffix: `/tmp/gemma` gives
//! `/tmp/gemma-00001-of-00003.gguf` and on. N defaults to a third of the
//! tensors (three parts).

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use ggufmap::Gguf;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let usage = "usage: split_model MODEL.gguf OUT_PREFIX [MAX_TENSORS]";
    let model_path = PathBuf::from(args.next().context(usage)?);
    let prefix = PathBuf::from(args.next().context(usage)?);
    let model = Gguf::open(&model_path)?;
    let max_tensors = match args.next() {
        Some(n) => n.to_str().context(usage)?.parse().context(usage)?,
        None => model.tensor_count().div_ceil(3).max(1),
    };

    let parts = model.write_split(&prefix, max_tensors)?;
    for path in &parts {
        println!("{}", path.display());
    }

    // The parts open as one model holding the same tensors, byte for byte.
    let split = Gguf::open(&parts[0])?;
    ensure!(split.part_count() == parts.len());
    ensure!(split.tensor_count() == model.tensor_count());
    for (a, b) in model.tensors().zip(split.tensors()) {
        ensure!(a.name() == b.name() && a.dtype() == b.dtype() && a.dims() == b.dims());
        ensure!(a.read_bytes()? == b.read_bytes()?, "{} differs", a.name());
    }
    println!(
        "{} tensors in {} parts, every one identical to the original",
        split.tensor_count(),
        split.part_count()
    );
    Ok(())
}
