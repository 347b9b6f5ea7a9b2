//! The element types dequantization can write: f32, f16 and bf16.

use std::any::TypeId;

use half::{bf16, f16, slice::HalfFloatSliceExt};

use super::Block;

/// Largest block in elements (the k-quants' 256); sizes the stack buffer
/// used when the output is not f32.
const MAX_BLOCK_ELEMS: usize = 256;

/// An output element type of dequantization: `f32`, `half::f16` or
/// `half::bf16`. Sealed: those are its only implementations.
pub trait Output: super::sealed::Sealed + bytemuck::Pod + Send + Sync + Default {
    /// The name used in messages and on the command line.
    const NAME: &'static str;

    /// Converts `src` into `dst` (same length), rounding to nearest even.
    ///
    /// # Panics
    /// When the lengths differ.
    fn from_f32_slice(src: &[f32], dst: &mut [Self]);

    /// Decodes one block into `out` (exactly `B::ELEMS` long).
    ///
    /// # Panics
    /// When `out` is not `B::ELEMS` long.
    #[inline]
    fn store_block<B: Block>(block: &B, out: &mut [Self]) {
        let mut tmp = [0f32; MAX_BLOCK_ELEMS];
        let tmp = &mut tmp[..B::ELEMS];
        block.dequantize(tmp);
        Self::from_f32_slice(tmp, out);
    }
}

impl super::sealed::Sealed for f32 {}
impl super::sealed::Sealed for f16 {}
impl super::sealed::Sealed for bf16 {}

impl Output for f32 {
    const NAME: &'static str = "f32";

    #[inline]
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        dst.copy_from_slice(src);
    }

    #[inline]
    fn store_block<B: Block>(block: &B, out: &mut [Self]) {
        block.dequantize(out);
    }
}

impl Output for f16 {
    const NAME: &'static str = "f16";

    #[inline]
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        dst.convert_from_f32_slice(src);
    }
}

impl Output for bf16 {
    const NAME: &'static str = "bf16";

    #[inline]
    fn from_f32_slice(src: &[f32], dst: &mut [Self]) {
        dst.convert_from_f32_slice(src);
    }
}

/// `out` as f32 when `O` is f32.
pub(super) fn as_f32<O: Output>(out: &mut [O]) -> Option<&mut [f32]> {
    if TypeId::of::<O>() == TypeId::of::<f32>() {
        bytemuck::try_cast_slice_mut::<O, f32>(out).ok()
    } else {
        None
    }
}
