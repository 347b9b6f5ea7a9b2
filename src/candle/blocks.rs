//! candle CPU quantized storage over bytes we hold: a tensor's blocks in
//! the file's mapping (a [`QTensor`](candle_core::quantized::QTensor)
//! without a copy), or a copy read straight into its final buffer.
//!
//! candle builds CPU quantized storage only by copying a slice of its block
//! structs into a `Vec` (their fields are private to candle, so no other
//! crate can fill such a `Vec` in place). Loading a model that way holds
//! each tensor twice while it is copied, and makes every byte of the model
//! anonymous memory. candle's storage is a public trait, though
//! ([`QuantizedType`]): [`BlockStorage`] implements it over [`BlockBytes`].
//! Over the mapping, a quantized model loads in the time it takes to build
//! its tensor list, its pages are read in on first use, and the kernel can
//! drop and re-read them under memory pressure as it does for any mapped
//! file; over a copy, the bytes read from the file are the storage.

use std::ops::Range;

use crate::storage::SharedBytes;
use candle_core::quantized::k_quants::{
    self, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1,
    BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlType as CandleBlock,
};
use candle_core::quantized::{GgmlDType, QuantizedType};
use candle_core::CpuStorage;
use half::{bf16, f16};

use crate::dtype::ggml_type_table;

/// candle block types (and plain floats) of which every bit pattern is a
/// valid value: structs of integers, integer arrays, `f16` and `f32`
/// fields, `#[repr(C)]` with no padding (their sizes, asserted below, are
/// the sums of their fields and the ggml block sizes), no interior
/// mutability. Only the types listed in `candle_blocks!` implement it. Were
/// a later candle to reorder a struct's fields, tests/candle.rs would
/// catch it: it compares every type's results over our bytes with
/// candle's own storage of the same bytes.
trait AnyBits: CandleBlock + Send + Sync + 'static {}

/// From the rows of the type table, for every type candle has: its block
/// struct's checks, and the two tables over them.
macro_rules! candle_blocks {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $elems:literal, $bytes:literal, $kind:ident($($block:tt)+), [$($qtype:ident, $cblock:ty)?]; )*) => {
        $($(
            impl AnyBits for $cblock {}
            // The block struct is exactly the ggml block: the file's bytes
            // are its fields, in order (candle itself reads file bytes as
            // these structs).
            const _: () = assert!(std::mem::size_of::<$cblock>() == $bytes);
        )?)*

        /// Alignment of candle's type for `qtype`: candle reinterprets the
        /// bytes it is given in place and asserts (panics) when they are
        /// misaligned.
        pub(super) fn candle_align(qtype: GgmlDType) -> usize {
            match qtype {
                $($(GgmlDType::$qtype => std::mem::align_of::<$cblock>(),)?)*
            }
        }

        /// Storage for a tensor of type `qtype` whose blocks are `bytes`,
        /// read in place; `None` when they cannot be (not aligned for
        /// candle's type, not whole blocks).
        pub(super) fn block_storage(
            qtype: GgmlDType,
            bytes: BlockBytes,
        ) -> Option<Box<dyn QuantizedType>> {
            match qtype {
                $($(GgmlDType::$qtype => BlockStorage::<$cblock>::new(bytes)
                    .map(|b| Box::new(b) as Box<dyn QuantizedType>),)?)*
            }
        }
    };
}

ggml_type_table!(candle_blocks);

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

/// Bytes in an 8-byte-aligned buffer (enough for every candle block type).
pub(super) struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    /// A zeroed buffer of `len` bytes. Fresh from the allocator, its pages
    /// are not resident until written.
    pub(super) fn zeroed(len: usize) -> Self {
        AlignedBytes {
            words: vec![0u64; len.div_ceil(8)],
            len,
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        let all: &[u8] = bytemuck::cast_slice(&self.words);
        all.get(..self.len).unwrap_or_default()
    }

    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        let all: &mut [u8] = bytemuck::cast_slice_mut(&mut self.words);
        all.get_mut(..len).unwrap_or_default()
    }
}

/// The bytes a tensor's storage reads its blocks from.
pub(super) enum BlockBytes {
    /// `bytes[range]`: the file's bytes (its mapping, or the file read into
    /// memory), kept alive while the storage lives.
    Shared {
        bytes: SharedBytes,
        range: Range<usize>,
    },
    /// A copy of the tensor's bytes.
    Owned(AlignedBytes),
}

impl BlockBytes {
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            BlockBytes::Shared { bytes, range } => bytes.bytes().get(range.clone()),
            BlockBytes::Owned(bytes) => Some(bytes.bytes()),
        }
    }
}

/// candle quantized storage over [`BlockBytes`].
struct BlockStorage<T> {
    /// Checked at construction to cast to `&[T]`.
    bytes: BlockBytes,
    /// Set when candle writes the blocks (`from_float`): a mapping is
    /// read-only, so the first write moves the tensor into memory of its
    /// own.
    written: Option<Vec<T>>,
}

impl<T: AnyBits> BlockStorage<T> {
    fn new(bytes: BlockBytes) -> Option<Self> {
        cast_blocks::<T>(bytes.bytes()?)?;
        Some(BlockStorage {
            bytes,
            written: None,
        })
    }

    fn blocks(&self) -> &[T] {
        match &self.written {
            Some(blocks) => blocks,
            // Checked in `new`; the bytes never change.
            None => self.bytes.bytes().and_then(cast_blocks).unwrap_or_default(),
        }
    }

    /// Blocks of our own, as many as there are now, for candle to overwrite.
    fn blocks_to_overwrite(&mut self) -> &mut [T] {
        let n = self.blocks().len();
        self.written.get_or_insert_with(|| vec![T::zeros(); n])
    }
}

/// The same behaviour as candle's own storage (`Vec<T>`), method by method,
/// on the same kernels.
impl<T: AnyBits> QuantizedType for BlockStorage<T> {
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
