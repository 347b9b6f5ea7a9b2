//! Block types of the quantized ggml formats and their dequantizers.
//!
//! Each format is a `#[repr(C)]` block struct that derives bytemuck's `Pod`,
//! so a tensor's bytes can be viewed as `&[Block]` without copying, and one
//! implementation of [`Block`]: the arithmetic that turns one block into
//! `f32` values. Everything else (length checks, unaligned input, f16/bf16
//! output, the dispatch on [`GgmlType`]) is written once, here.

mod bits;
mod fp4;
mod grids;
mod iq1;
mod iq2;
mod iq3;
mod iq4;
mod kquants;
mod legacy;
mod low_bit;
mod output;
mod plain;
mod simd;
mod ternary;

pub use output::Output;

use crate::dtype::{ggml_type_table, GgmlType};
use crate::error::{Error, Result};
use crate::format::ByteOrder;

/// Sealing: [`Block`] and [`Output`] are implemented by this crate's types
/// alone (a block struct's layout and kernel are the format's, not a
/// caller's to choose), so neither can gain a method that breaks code.
mod sealed {
    pub trait Sealed {}
}

/// One block of a ggml block format. Sealed: the crate's block structs
/// are its only implementations.
pub trait Block: sealed::Sealed + bytemuck::Pod + Send + Sync {
    /// The ggml type this block encodes.
    const TYPE: GgmlType;

    /// Elements one block decodes to.
    const ELEMS: usize = Self::TYPE.elements_per_block();

    /// The block's scale fields: where its floating-point scales sit and
    /// how they are encoded (ggml-common.h). What a generator of valid
    /// blocks (tests, benchmarks) sets to normal values, or to NaN and
    /// infinities, instead of restating the layout.
    const SCALES: &'static [ScaleField];

    /// Decodes this block into `out`, which holds exactly [`Block::ELEMS`]
    /// values ([`dequantize_blocks`] checks lengths and returns an error
    /// instead).
    ///
    /// # Panics
    /// When `out` is shorter than [`Block::ELEMS`].
    fn dequantize(&self, out: &mut [f32]);
}

/// One scale field of a block ([`Block::SCALES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScaleField {
    /// Byte offset in the block.
    pub offset: usize,
    /// How the scale is encoded there.
    pub kind: ScaleKind,
}

impl ScaleField {
    /// A field of `kind` at `offset`.
    pub const fn at(offset: usize, kind: ScaleKind) -> Self {
        ScaleField { offset, kind }
    }
}

/// How a block's scale is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScaleKind {
    /// IEEE half precision, 2 bytes.
    F16,
    /// IEEE single precision, 4 bytes.
    F32,
    /// An E8M0 power of two, 1 byte (MXFP4).
    E8M0,
    /// An unsigned E4M3 float, 1 byte (NVFP4).
    Ue4M3,
    /// IQ1_M's f16 scale, spread over its 8 `scales` bytes from `offset`:
    /// four little-endian `u16`s whose top nibbles are the scale's four
    /// nibbles, lowest first (the last byte holds its sign and top three
    /// exponent bits).
    Iq1mScaleNibbles,
}

/// The scale fields of a block of `dtype` ([`Block::SCALES`]; none for the
/// plain types).
///
/// `tests/fixtures/BLOCK_LAYOUT` writes them out for the fixture script
/// (a test keeps it equal to these).
pub fn scale_fields(dtype: GgmlType) -> &'static [ScaleField] {
    scales_of(dtype)
}

/// Dequantizes whole blocks into `out`.
///
/// # Errors
/// [`Error::LengthMismatch`] unless `out.len() == blocks.len() * B::ELEMS`.
pub fn dequantize_blocks<B: Block, O: Output>(blocks: &[B], out: &mut [O]) -> Result<()> {
    check_len(blocks.len(), B::ELEMS, out.len())?;
    if let Some(out) = output::as_f32(out) {
        decode_f32(blocks, out);
        return Ok(());
    }
    // f16 / bf16: a few blocks at a time into f32 on the stack (so the
    // vector kernels serve these outputs too), then converted.
    let run = (STAGING_ELEMS / B::ELEMS).max(1);
    let mut staging = [0f32; STAGING_ELEMS];
    for (blocks, out) in blocks.chunks(run).zip(out.chunks_mut(run * B::ELEMS)) {
        let staging = &mut staging[..out.len()];
        decode_f32(blocks, staging);
        O::from_f32_slice(staging, out);
    }
    Ok(())
}

/// f32 values staged per run of blocks for f16 / bf16 output (4 KiB).
const STAGING_ELEMS: usize = 1024;

/// Decodes whole blocks into f32 (`out` exactly their length): the type's
/// vector kernel where this CPU has one, else block by block.
#[inline]
fn decode_f32<B: Block>(blocks: &[B], out: &mut [f32]) {
    if !simd::dequantize_blocks(B::TYPE, bytemuck::cast_slice(blocks), out) {
        for (block, out) in blocks.iter().zip(out.chunks_exact_mut(B::ELEMS)) {
            block.dequantize(out);
        }
    }
}

/// Dequantizes `bytes` (whole blocks of `B`, any alignment) into `out`.
fn dequantize_block_bytes<B: Block, O: Output>(bytes: &[u8], out: &mut [O]) -> Result<()> {
    let size = std::mem::size_of::<B>();
    if bytes.len() % size != 0 {
        return Err(Error::LengthMismatch {
            tensor: None,
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
            tensor: None,
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
    if !dtype.is_plain() && !order.is_native() {
        return Err(Error::Unsupported {
            tensor: None,
            operation: "dequantization",
            dtype,
            reason: "quantized blocks stored in the other byte order",
        });
    }
    dispatch(dtype, bytes, order, out)
}

/// From the rows of [`ggml_type_table!`]: the block structs re-exported,
/// each checked against its row at compile time (size, and the type its
/// [`Block`] impl names), and [`dispatch`], one arm per type.
macro_rules! blocks {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $elems:literal, $bytes:literal, $kind:ident($($block:tt)+), [$($candle:tt)*]; )*) => {
        $( block_row!($kind, $variant, $bytes, $($block)+); )*

        /// The scale fields of `dtype`'s block.
        fn scales_of(dtype: GgmlType) -> &'static [ScaleField] {
            match dtype {
                $( GgmlType::$variant => block_scales!($kind, $($block)+), )*
            }
        }

        /// Decodes `bytes` of `dtype` with the kernel of its type.
        fn dispatch<O: Output>(
            dtype: GgmlType,
            bytes: &[u8],
            order: ByteOrder,
            out: &mut [O],
        ) -> Result<()> {
            match dtype {
                $( GgmlType::$variant => block_arm!($kind, dtype, bytes, order, out, $($block)+), )*
            }
        }
    };
}

/// What one row adds: for a block format, its re-export and checks.
macro_rules! block_row {
    (plain, $variant:ident, $bytes:literal, $t:ty) => {
        const _: () = assert!(std::mem::size_of::<$t>() == $bytes);
    };
    (quant, $variant:ident, $bytes:literal, $($block:tt)+) => {
        pub use $($block)+;
        impl sealed::Sealed for $($block)+ {}
        const _: () = assert!(std::mem::size_of::<$($block)+>() == $bytes);
        const _: () = assert!(<$($block)+ as Block>::TYPE.id() == GgmlType::$variant.id());
    };
}

/// One arm of `scales_of`.
macro_rules! block_scales {
    (plain, $t:ty) => {
        &[]
    };
    (quant, $($block:tt)+) => {
        <$($block)+ as Block>::SCALES
    };
}

/// One arm of [`dispatch`].
macro_rules! block_arm {
    (plain, $dtype:ident, $bytes:ident, $order:ident, $out:ident, $t:ty) => {
        plain::dequantize($dtype, $bytes, $order, $out)
    };
    (quant, $dtype:ident, $bytes:ident, $order:ident, $out:ident, $($block:tt)+) => {
        dequantize_block_bytes::<$($block)+, O>($bytes, $out)
    };
}

ggml_type_table!(blocks);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block's scale fields lie inside the block, apart, and are the
    /// ones its kernel reads: a NaN there makes a NaN in the output of an
    /// otherwise zero block.
    #[test]
    fn scale_fields_are_where_the_kernels_read_them() {
        for &dtype in GgmlType::ALL {
            let fields = scale_fields(dtype);
            assert_eq!(fields.is_empty(), dtype.is_plain(), "{dtype}");
            let size = dtype.bytes_per_block();
            let mut used = vec![false; size];
            for field in fields {
                let width = match field.kind {
                    ScaleKind::F16 => 2,
                    ScaleKind::F32 => 4,
                    ScaleKind::Iq1mScaleNibbles => 8,
                    _ => 1,
                };
                for taken in &mut used[field.offset..field.offset + width] {
                    assert!(!*taken, "{dtype}: scale fields overlap");
                    *taken = true;
                }
                let nan: &[u8] = match field.kind {
                    ScaleKind::F16 => &[0x00, 0x7e],
                    ScaleKind::F32 => &[0x00, 0x00, 0xc0, 0x7f],
                    _ => continue,
                };
                // Q8_1's `s` (d times the block's sum) serves dot products;
                // decoding never reads it.
                if (dtype, field.offset) == (GgmlType::Q8_1, 2) {
                    continue;
                }
                let mut block = vec![0u8; size];
                block[field.offset..field.offset + width].copy_from_slice(nan);
                let mut out = vec![0f32; dtype.elements_per_block()];
                dequantize_bytes(dtype, &block, ByteOrder::Little, &mut out).unwrap();
                assert!(
                    out.iter().any(|v| v.is_nan()),
                    "{dtype}: a NaN at byte {} changes nothing",
                    field.offset
                );
            }
        }
    }
}
