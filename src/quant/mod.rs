//! Block types of the quantized ggml formats and their dequantizers.
//!
//! Each format is a `#[repr(C)]` block struct that derives bytemuck's `Pod`,
//! so a tensor's bytes can be viewed as `&[Block]` without copying, and one
//! implementation of [`Block`]: the arithmetic that turns one block into
//! `f32` values. Everything else (length checks, unaligned input, f16/bf16
//! output, the dispatch on [`GgmlType`]) is written once, here.

mod output;

pub use output::Output;

use crate::dtype::GgmlType;
use crate::error::{Error, Result};
use crate::format::ByteOrder;

/// One block of a ggml block format.
pub trait Block: bytemuck::Pod + Send + Sync {
    /// The ggml type this block encodes.
    const TYPE: GgmlType;

    /// Elements one block decodes to.
    const ELEMS: usize = Self::TYPE.elements_per_block();

    /// Decodes this block into `out`, which holds exactly [`Block::ELEMS`]
    /// values (the callers in this module guarantee it).
    fn dequantize(&self, out: &mut [f32]);
}

/// Dequantizes whole blocks into `out`.
///
/// # Errors
/// [`Error::LengthMismatch`] unless `out.len() == blocks.len() * B::ELEMS`.
pub fn dequantize_blocks<B: Block, O: Output>(blocks: &[B], out: &mut [O]) -> Result<()> {
    check_len(blocks.len(), B::ELEMS, out.len())?;
    for (block, out) in blocks.iter().zip(out.chunks_exact_mut(B::ELEMS)) {
        O::store_block(block, out);
    }
    Ok(())
}

/// Dequantizes `bytes` (whole blocks of `B`, any alignment) into `out`.
fn dequantize_block_bytes<B: Block, O: Output>(bytes: &[u8], out: &mut [O]) -> Result<()> {
    let size = std::mem::size_of::<B>();
    if bytes.len() % size != 0 {
        return Err(Error::LengthMismatch {
            what: "quantized data (whole blocks)",
            expected: bytes.len() / size * size,
            found: bytes.len(),
        });
    }
    match bytemuck::try_cast_slice::<u8, B>(bytes) {
        Ok(blocks) => dequantize_blocks(blocks, out),
        Err(_) => {
            // Misaligned input (a file with a small `general.alignment`):
            // copy each block to the stack first; blocks are at most 292 bytes.
            check_len(bytes.len() / size, B::ELEMS, out.len())?;
            for (raw, out) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(B::ELEMS)) {
                let block: B = bytemuck::pod_read_unaligned(raw);
                O::store_block(&block, out);
            }
            Ok(())
        }
    }
}

fn check_len(blocks: usize, elems: usize, found: usize) -> Result<()> {
    let expected = blocks.saturating_mul(elems);
    if expected != found {
        return Err(Error::LengthMismatch { what: "dequantization output", expected, found });
    }
    Ok(())
}

/// Dequantizes the bytes of a tensor of type `dtype`, stored in byte order
/// `order`, into `out` (f32, f16 or bf16).
///
/// `bytes` must hold whole blocks and `out` exactly the elements they encode.
///
/// # Errors
/// [`Error::LengthMismatch`] on lengths that do not match,
/// [`Error::Unsupported`] for quantized blocks in a byte order other than
/// this machine's.
pub fn dequantize_bytes<O: Output>(
    dtype: GgmlType,
    bytes: &[u8],
    order: ByteOrder,
    out: &mut [O],
) -> Result<()> {
    if dtype.is_plain() {
        return plain::dequantize(dtype, bytes, order, out);
    }
    if !order.is_native() {
        return Err(Error::Unsupported {
            operation: "dequantization",
            dtype,
            reason: "quantized blocks stored in the other byte order",
        });
    }
    macro_rules! by_block_type {
        ($($variant:ident => $block:ty),* $(,)?) => {
            match dtype {
                $(GgmlType::$variant => dequantize_block_bytes::<$block, O>(bytes, out),)*
                _ => Err(Error::Unsupported {
                    operation: "dequantization",
                    dtype,
                    reason: "no dequantizer for this type",
                }),
            }
        };
    }
    by_block_type! {
        // ROWS
    }
}
