//! Quantized candle storage whose blocks stay in the file's mapping: a
//! [`QTensor`](candle_core::quantized::QTensor) on the CPU without a copy.
//!
//! candle builds CPU quantized storage only by copying a slice of its block
//! structs into a `Vec` (their fields are private to candle, so no other
//! crate can fill such a `Vec` in place). Loading a model that way holds
//! each tensor twice while it is copied, and makes every byte of the model
//! anonymous memory. candle's storage is a public trait, though
//! ([`QuantizedType`]): [`MappedBlocks`] implements it over the mapping, so a
//! quantized model loads in the time it takes to build its tensor list, its
//! pages are read in on first use, and the kernel can drop and re-read
//! them under memory pressure as it does for any mapped file.

use std::ops::Range;
use std::sync::Arc;

use candle_core::quantized::k_quants::{
    self, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1,
    BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlType as CandleBlock,
};
use candle_core::quantized::{GgmlDType, QuantizedType};
use candle_core::CpuStorage;
use half::{bf16, f16};
use memmap2::Mmap;

use crate::dtype::GgmlType;

/// candle block types (and plain floats) of which every bit pattern is a
/// valid value: structs of integers, integer arrays, `f16` and `f32`
/// fields, `#[repr(C)]` with no padding (their sizes, asserted below, are
/// the sums of their fields and the ggml block sizes). Only the types
/// listed in `candle_blocks!` implement it.
trait AnyBits: CandleBlock + Send + Sync + 'static {}

macro_rules! candle_blocks {
    ($($qtype:ident => $block:ty = $ours:ident),* $(,)?) => {
        $(
            impl AnyBits for $block {}
            // The block struct is exactly the ggml block: the file's bytes
            // are its fields, in order (candle itself reads file bytes as
            // these structs).
            const _: () = assert!(
                std::mem::size_of::<$block>() == GgmlType::$ours.bytes_per_block()
            );
        )*

        /// Alignment of candle's type for `qtype`: candle reinterprets the
        /// bytes it is given in place and asserts (panics) when they are
        /// misaligned.
        pub(super) fn candle_align(qtype: GgmlDType) -> usize {
            match qtype {
                $(GgmlDType::$qtype => std::mem::align_of::<$block>(),)*
            }
        }

        /// Storage for a tensor of type `qtype` whose blocks are
        /// `map[range]`, read in place; `None` when they cannot be (not
        /// aligned for candle's type, not whole blocks).
        pub(super) fn mapped_storage(
            qtype: GgmlDType,
            map: &Arc<Mmap>,
            range: Range<usize>,
        ) -> Option<Box<dyn QuantizedType>> {
            match qtype {
                $(GgmlDType::$qtype => MappedBlocks::<$block>::new(map, range)
                    .map(|b| Box::new(b) as Box<dyn QuantizedType>),)*
            }
        }
    };
}

candle_blocks!(
    F32 => f32 = F32,
    F16 => f16 = F16,
    BF16 => bf16 = BF16,
    Q4_0 => BlockQ4_0 = Q4_0,
    Q4_1 => BlockQ4_1 = Q4_1,
    Q5_0 => BlockQ5_0 = Q5_0,
    Q5_1 => BlockQ5_1 = Q5_1,
    Q8_0 => BlockQ8_0 = Q8_0,
    Q8_1 => BlockQ8_1 = Q8_1,
    Q2K => BlockQ2K = Q2_K,
    Q3K => BlockQ3K = Q3_K,
    Q4K => BlockQ4K = Q4_K,
    Q5K => BlockQ5K = Q5_K,
    Q6K => BlockQ6K = Q6_K,
    Q8K => BlockQ8K = Q8_K,
);

/// `bytes` as a slice of `T`, if they are aligned for `T` and whole `T`s.
#[allow(unsafe_code)]
fn cast_blocks<T: AnyBits>(bytes: &[u8]) -> Option<&[T]> {
    let size = std::mem::size_of::<T>();
    let aligned = (bytes.as_ptr() as usize) % std::mem::align_of::<T>() == 0;
    if size == 0 || bytes.len() % size != 0 || !aligned {
        return None;
    }
    // SAFETY: the pointer is non-null, aligned for `T` (checked above) and
    // valid for reads of `bytes.len()` bytes, which are `len / size` whole
    // `T`s, for the lifetime of `bytes`, which the result borrows. Every bit
    // pattern is a valid `T` (the `AnyBits` contract: integer and float
    // fields, no padding), and `T` has no interior mutability, so the bytes
    // stay immutable while shared.
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
}

/// candle quantized storage over a tensor's bytes in the mapping, which it
/// keeps alive.
struct MappedBlocks<T> {
    map: Arc<Mmap>,
    /// `map[range]`, checked at construction to cast to `&[T]`.
    range: Range<usize>,
    /// Set when candle writes the blocks (`from_float`): the mapping is
    /// read-only, so the first write moves the tensor into memory of its
    /// own.
    owned: Option<Vec<T>>,
}

impl<T: AnyBits> MappedBlocks<T> {
    fn new(map: &Arc<Mmap>, range: Range<usize>) -> Option<Self> {
        cast_blocks::<T>(map.get(range.clone())?)?;
        Some(MappedBlocks {
            map: Arc::clone(map),
            range,
            owned: None,
        })
    }

    fn blocks(&self) -> &[T] {
        match &self.owned {
            Some(blocks) => blocks,
            // Checked in `new`; the mapping and the range never change.
            None => self
                .map
                .get(self.range.clone())
                .and_then(cast_blocks)
                .unwrap_or_default(),
        }
    }

    /// Owned blocks, as many as there are now, for candle to overwrite.
    fn blocks_to_overwrite(&mut self) -> &mut [T] {
        let n = self.blocks().len();
        self.owned.get_or_insert_with(|| vec![T::zeros(); n])
    }
}

/// The same behaviour as candle's own storage (`Vec<T>`), method by method,
/// on the same kernels.
impl<T: AnyBits> QuantizedType for MappedBlocks<T> {
    fn dtype(&self) -> GgmlDType {
        T::DTYPE
    }

    fn matmul_t(
        &self,
        mkn: (usize, usize, usize),
        lhs: &[f32],
        dst: &mut [f32],
    ) -> candle_core::Result<()> {
        k_quants::matmul(mkn, lhs, self.blocks(), dst)
    }

    fn matmul_t_f16(
        &self,
        mkn: (usize, usize, usize),
        lhs: &[f16],
        dst: &mut [f16],
    ) -> candle_core::Result<()> {
        k_quants::matmul_f16(mkn, lhs, self.blocks(), dst)
    }

    fn embedding(
        &self,
        ids: &[u32],
        rows: usize,
        hidden: usize,
    ) -> candle_core::Result<CpuStorage> {
        let blocks = self.blocks();
        if hidden % T::BLCK_SIZE != 0 {
            candle_core::bail!(
                "quantized embedding hidden size {hidden} is not divisible by block size {}",
                T::BLCK_SIZE
            )
        }
        let row_blocks = hidden / T::BLCK_SIZE;
        if Some(blocks.len()) != rows.checked_mul(row_blocks) {
            candle_core::bail!(
                "quantized tensor has {} blocks, expected {rows} rows of {row_blocks}",
                blocks.len()
            )
        }
        let mut out = vec![0f32; ids.len() * hidden];
        for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(hidden.max(1))) {
            let row = id as usize;
            if row >= rows {
                candle_core::bail!("embedding id {row} is out of range for {rows} rows")
            }
            // In bounds: row < rows and rows * row_blocks == blocks.len().
            let src = blocks.get(row * row_blocks..(row + 1) * row_blocks);
            T::to_float(src.unwrap_or_default(), dst);
        }
        Ok(CpuStorage::F32(out))
    }

    fn dequantize(&self, elem_count: usize) -> candle_core::Result<CpuStorage> {
        let blocks = self.blocks();
        if Some(elem_count) != blocks.len().checked_mul(T::BLCK_SIZE) {
            candle_core::bail!(
                "dequantizing {} blocks of {} into {elem_count} elements",
                blocks.len(),
                T::BLCK_SIZE
            )
        }
        let mut ys = vec![0f32; elem_count];
        T::to_float(blocks, &mut ys);
        Ok(CpuStorage::F32(ys))
    }

    fn storage_size_in_bytes(&self) -> usize {
        std::mem::size_of_val(self.blocks())
    }

    fn as_ptr(&self) -> *const u8 {
        self.blocks().as_ptr().cast()
    }

    fn block_size(&self) -> usize {
        T::BLCK_SIZE
    }

    fn from_float(&mut self, xs: &[f32]) {
        T::from_float(xs, self.blocks_to_overwrite());
    }

    fn from_float_imatrix(&mut self, xs: &[f32], imatrix_weights: &[f32], n_per_row: usize) {
        T::from_float_imatrix(xs, self.blocks_to_overwrite(), imatrix_weights, n_per_row);
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self.blocks())
    }
}
