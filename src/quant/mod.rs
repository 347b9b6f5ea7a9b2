//! Block types of the quantized ggml formats and their dequantizers.
//!
//! Each format is a `#[repr(C)]` block struct that derives bytemuck's `Pod`,
//! so a tensor's bytes can be viewed as `&[Block]` without copying, and one
//! implementation of [`Block`]: the arithmetic that turns one block into
//! `f32` values. Everything else (length checks, unaligned input, f16/bf16
//! output, the dispatch on [`GgmlType`]) is written once, here.

mod fp4;
mod grids;
mod iq1;
mod iq2;
mod iq3;
mod iq4;
mod kquants;
mod kquants_scales;
mod legacy;
mod low_bit;
mod output;
mod plain;
mod ternary;

pub use fp4::{BlockMXFP4, BlockNVFP4};
pub use iq1::{BlockIQ1_M, BlockIQ1_S};
pub use iq2::{BlockIQ2_S, BlockIQ2_XS, BlockIQ2_XXS};
pub use iq3::{BlockIQ3_S, BlockIQ3_XXS};
pub use iq4::{BlockIQ4_NL, BlockIQ4_XS};
pub use kquants::{BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K};
pub use legacy::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1};
pub use low_bit::{BlockQ1_0, BlockQ2_0};
pub use output::Output;
pub use ternary::{BlockTQ1_0, BlockTQ2_0};

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
        return Err(Error::LengthMismatch {
            what: "dequantization output",
            expected,
            found,
        });
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
        Q4_0 => legacy::BlockQ4_0,
        Q4_1 => legacy::BlockQ4_1,
        Q5_0 => legacy::BlockQ5_0,
        Q5_1 => legacy::BlockQ5_1,
        Q8_0 => legacy::BlockQ8_0,
        Q8_1 => legacy::BlockQ8_1,
        Q2_K => kquants::BlockQ2_K,
        Q3_K => kquants::BlockQ3_K,
        Q4_K => kquants::BlockQ4_K,
        Q5_K => kquants::BlockQ5_K,
        Q6_K => kquants::BlockQ6_K,
        Q8_K => kquants::BlockQ8_K,
        IQ2_XXS => iq2::BlockIQ2_XXS,
        IQ2_XS => iq2::BlockIQ2_XS,
        IQ2_S => iq2::BlockIQ2_S,
        IQ3_XXS => iq3::BlockIQ3_XXS,
        IQ3_S => iq3::BlockIQ3_S,
        IQ1_S => iq1::BlockIQ1_S,
        IQ1_M => iq1::BlockIQ1_M,
        IQ4_NL => iq4::BlockIQ4_NL,
        IQ4_XS => iq4::BlockIQ4_XS,
        TQ1_0 => ternary::BlockTQ1_0,
        TQ2_0 => ternary::BlockTQ2_0,
        MXFP4 => fp4::BlockMXFP4,
        NVFP4 => fp4::BlockNVFP4,
        Q1_0 => low_bit::BlockQ1_0,
        Q2_0 => low_bit::BlockQ2_0,
        // ROWS
    }
}
