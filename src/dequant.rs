//! The parallel dequantization driver: output split into chunks of whole
//! blocks, each chunk decoded by the single-threaded kernels on rayon.

use crate::dtype::GgmlType;
use crate::error::{Error, Result};
use crate::format::ByteOrder;
use crate::parallel::{blocks_per_chunk, Parallelism};
use crate::quant::{self, Output};

pub use crate::parallel::CHUNK_OUTPUT_BYTES;

/// Dequantizes `bytes` (whole blocks of `dtype`) into `out`, spreading
/// chunks of whole blocks over the threads of `parallelism`. The result is
/// bit-identical to the single-threaded kernels.
///
/// # Errors
/// [`Error::LengthMismatch`] when the lengths do not match;
/// [`Error::Unsupported`] as [`quant::dequantize_bytes`].
pub fn dequantize_parallel<O: Output>(
    dtype: GgmlType,
    bytes: &[u8],
    order: ByteOrder,
    out: &mut [O],
    parallelism: &Parallelism,
) -> Result<()> {
    let block_bytes = dtype.bytes_per_block();
    let block_elems = dtype.elements_per_block();
    let blocks = bytes.len() / block_bytes;
    let expected = blocks.saturating_mul(block_elems);
    if bytes.len() % block_bytes != 0 || out.len() != expected {
        return Err(Error::LengthMismatch {
            tensor: None,
            what: "dequantization output",
            expected,
            found: out.len(),
        });
    }
    let blocks_per_chunk = blocks_per_chunk(dtype, std::mem::size_of::<O>(), false);
    let out_chunk = blocks_per_chunk * block_elems;
    // One chunk or less: handing it to another thread costs more than it saves.
    if out.len() <= out_chunk {
        return quant::dequantize_bytes(dtype, bytes, order, out);
    }
    let in_chunk = blocks_per_chunk * dtype.bytes_per_block();
    parallelism.try_for_each_chunk(out, out_chunk, |i, out| {
        let start = i * in_chunk;
        let bytes = bytes.get(start..start + out.len() / block_elems * block_bytes);
        quant::dequantize_bytes(dtype, bytes.unwrap_or_default(), order, out)
    })
}
