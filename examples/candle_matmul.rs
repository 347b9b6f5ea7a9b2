//! Loads every tensor into candle, kept quantized over the mapping (no
//! copy), and multiplies a vector by the first attention weight with
//! candle's quantized matmul; then by the same weight dequantized to f32.
//! The two products agree to about 1e-3: candle's quantized matmul rounds
//! the input vector to 8 bits first.
//!
//! ```sh
//! cargo run --example candle_matmul --features candle -- [MODEL.gguf] [TENSOR]
//! ```

use anyhow::{bail, Context, Result};
use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Tensor};
use ggufmap::candle::{LoadAs, LoadedTensor};
use ggufmap::{DequantOptions, Gguf};

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf").into());
    let name = args.next().unwrap_or_else(|| "blk.0.attn_q.weight".into());
    let name = name
        .to_str()
        .context("the tensor name is not UTF-8")?
        .to_owned();
    let device = Device::Cpu;

    let model = Gguf::open(&path)?;
    let mut loaded = model.load_candle(&device, LoadAs::Quantized)?;
    println!(
        "{} tensors: {} quantized ({} over the mapping), {} dense, in {:.1} ms",
        loaded.report.tensors,
        loaded.report.quantized,
        loaded.report.mapped,
        loaded.report.dense,
        loaded.report.elapsed.as_secs_f64() * 1e3
    );
    let Some(LoadedTensor::Quantized(weight)) = loaded.remove(&name) else {
        bail!("{name} is not a quantized matrix in this model");
    };
    let (_, columns) = weight.shape().dims2()?;
    let x = Tensor::arange(0f32, columns as f32, &device)?
        .affine(1.0 / columns as f64, 0.0)?
        .reshape((1, columns))?;
    let y = x.apply(&QMatMul::from_qtensor(weight)?)?;

    // The same product with the weight dequantized by ggufmap.
    let dense = model
        .tensor(&name)?
        .to_candle(&device, DType::F32, &DequantOptions::default())?;
    let y_dense = x.matmul(&dense.t()?)?;
    let diff = (&y - &y_dense)?.abs()?.max_all()?.to_scalar::<f32>()?;
    println!(
        "{name}: output {:?}, max difference quantized vs dense {diff:e}",
        y.dims()
    );
    Ok(())
}
