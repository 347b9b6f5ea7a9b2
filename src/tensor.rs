//! [`TensorView`]: one tensor's bytes in the file, with zero-copy typed
//! access and dequantization.

use std::borrow::Cow;
use std::ops::Range;

use half::{bf16, f16};

use crate::dequant::dequantize_parallel;
use crate::dtype::GgmlType;
use crate::error::{Error, Result};
use crate::file::SharedBytes;
use crate::format::{ByteOrder, TensorInfo};
use crate::parallel::Parallelism;
use crate::quant::{Block, Output};

mod dequantize;

pub use dequantize::{DequantChunk, DequantChunks};

/// A tensor of an opened file: its description and its bytes, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    name: &'a str,
    info: &'a TensorInfo,
    bytes: &'a [u8],
    /// Absolute offset of `bytes` in the file.
    start: usize,
    order: ByteOrder,
    /// The file's bytes, where the `Gguf` owns them (mapped or read into
    /// memory): what lets a tensor's blocks outlive the borrow (candle
    /// storage over them).
    shared: Option<&'a SharedBytes>,
}

/// Element types a plain (unquantized) tensor can be viewed as.
pub trait Element: bytemuck::Pod {
    /// The tensor type stored as this element.
    const DTYPE: GgmlType;
}

macro_rules! elements {
    ($($t:ty => $dtype:ident),*) => {$(
        impl Element for $t {
            const DTYPE: GgmlType = GgmlType::$dtype;
        }
    )*};
}
elements!(f32 => F32, f16 => F16, bf16 => BF16, f64 => F64, i8 => I8, i16 => I16, i32 => I32, i64 => I64);

impl<'a> TensorView<'a> {
    pub(crate) fn new(
        data: &'a [u8],
        data_start: usize,
        info: &'a TensorInfo,
        order: ByteOrder,
        shared: Option<&'a SharedBytes>,
    ) -> Self {
        let range = info.data_range(data_start);
        TensorView {
            start: range.start,
            name: info.name(data),
            info,
            // The range was checked against the data when the file was parsed.
            bytes: data.get(range).unwrap_or_default(),
            order,
            shared,
        }
    }

    /// The file's bytes, where the `Gguf` owns them.
    #[cfg_attr(not(feature = "candle"), allow(dead_code))]
    pub(crate) fn shared(&self) -> Option<&'a SharedBytes> {
        self.shared
    }

    /// The tensor's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The element type.
    pub fn dtype(&self) -> GgmlType {
        self.info.dtype()
    }

    /// Dimensions as stored in the file: ne0, the contiguous one, first.
    pub fn dims(&self) -> &'a [u64] {
        self.info.dims()
    }

    /// Shape outermost first (the reverse of [`TensorView::dims`]), as
    /// candle, numpy and PyTorch order it.
    pub fn shape(&self) -> Vec<usize> {
        // Each dim is at most the element count, which fits the address space
        // of any file that could be mapped.
        self.dims()
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect()
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.info.n_elements()
    }

    /// The index entry (offsets and sizes).
    pub fn info(&self) -> &'a TensorInfo {
        self.info
    }

    /// Absolute byte range of the data in the file.
    pub fn byte_range(&self) -> Range<usize> {
        self.start..self.start + self.bytes.len()
    }

    /// The raw bytes, as stored.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Byte order of the file.
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// The data as `&[T]`, without copying.
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] unless the tensor's type is `T`'s,
    /// [`Error::ByteOrder`] for a file in the other byte order,
    /// [`Error::Misaligned`] when the bytes are not aligned for `T` (a file
    /// with a small `general.alignment`); [`TensorView::to_cow`] copies in
    /// those two cases.
    pub fn as_slice<T: Element>(&self) -> Result<&'a [T]> {
        self.check_dtype(T::DTYPE)?;
        self.check_native_order()?;
        bytemuck::try_cast_slice(self.bytes).map_err(|_| self.misaligned(std::mem::align_of::<T>()))
    }

    /// The data as `T`s: borrowed when [`TensorView::as_slice`] can be,
    /// copied (and byte-swapped if needed) otherwise.
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] unless the tensor's type is `T`'s.
    pub fn to_cow<T: Element>(&self) -> Result<Cow<'a, [T]>> {
        self.check_dtype(T::DTYPE)?;
        if let Ok(slice) = self.as_slice::<T>() {
            return Ok(Cow::Borrowed(slice));
        }
        let size = std::mem::size_of::<T>();
        let values = self
            .bytes
            .chunks_exact(size)
            .map(|raw| {
                let mut value: T = bytemuck::pod_read_unaligned(raw);
                if !self.order.is_native() {
                    bytemuck::bytes_of_mut(&mut value).reverse();
                }
                value
            })
            .collect();
        Ok(Cow::Owned(values))
    }

    /// The data as f32: borrowed for an aligned native-order F32 tensor,
    /// dequantized into a new `Vec` for every other type.
    ///
    /// # Errors
    /// As [`TensorView::dequantize_into`].
    pub fn to_f32_cow(&self) -> Result<Cow<'a, [f32]>> {
        if let Ok(slice) = self.as_slice::<f32>() {
            return Ok(Cow::Borrowed(slice));
        }
        self.to_vec::<f32>().map(Cow::Owned)
    }

    /// The raw blocks of a quantized tensor, without copying.
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] unless the tensor's type is `B`'s,
    /// [`Error::ByteOrder`] for a file in the other byte order,
    /// [`Error::Misaligned`] when the bytes are not aligned for `B`.
    pub fn blocks<B: Block>(&self) -> Result<&'a [B]> {
        self.check_dtype(B::TYPE)?;
        self.check_native_order()?;
        bytemuck::try_cast_slice(self.bytes).map_err(|_| self.misaligned(std::mem::align_of::<B>()))
    }

    /// Number of elements as `usize`.
    ///
    /// # Errors
    /// [`Error::SizeOverflow`] if it does not fit this platform's `usize`.
    pub fn len(&self) -> Result<usize> {
        usize::try_from(self.n_elements()).map_err(|_| Error::SizeOverflow {
            tensor: self.name.to_owned(),
            what: "element count on this platform",
            offset: self.info.info_offset(),
        })
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.n_elements() == 0
    }

    /// Dequantizes (or converts) the whole tensor into `out`, in parallel on
    /// rayon's global pool (with the `parallel` feature). `out` must hold
    /// exactly [`TensorView::n_elements`] values.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a wrong `out` length;
    /// [`Error::Unsupported`] for quantized data in the other byte order.
    pub fn dequantize_into<O: Output>(&self, out: &mut [O]) -> Result<()> {
        self.dequantize_into_with(out, &Parallelism::default())
    }

    /// [`TensorView::dequantize_into`] on the threads of `parallelism`
    /// (`Parallelism::Sequential` for the calling thread alone).
    ///
    /// # Errors
    /// As [`TensorView::dequantize_into`].
    pub fn dequantize_into_with<O: Output>(
        &self,
        out: &mut [O],
        parallelism: &Parallelism,
    ) -> Result<()> {
        dequantize_parallel(self.dtype(), self.bytes, self.order, out, parallelism)
    }

    /// Dequantizes (or converts) the whole tensor into a new `Vec`.
    ///
    /// # Performance
    /// A fresh allocation's pages are faulted in as they are written, which
    /// can cost more than the dequantization itself; to decode many tensors,
    /// prefer pooled buffers or [`TensorView::dequantize_into`].
    ///
    /// # Errors
    /// As [`TensorView::dequantize_into`].
    pub fn to_vec<O: Output>(&self) -> Result<Vec<O>> {
        let mut out = vec![O::default(); self.len()?];
        self.dequantize_into(&mut out)?;
        Ok(out)
    }

    fn check_dtype(&self, expected: GgmlType) -> Result<()> {
        if self.dtype() != expected {
            return Err(Error::DtypeMismatch {
                tensor: self.name.to_owned(),
                expected,
                found: self.dtype(),
            });
        }
        Ok(())
    }

    fn check_native_order(&self) -> Result<()> {
        if !self.order.is_native() && self.dtype().bytes_per_block() > 1 {
            return Err(Error::ByteOrder {
                tensor: self.name.to_owned(),
            });
        }
        Ok(())
    }

    fn misaligned(&self, required: usize) -> Error {
        Error::Misaligned {
            tensor: self.name.to_owned(),
            required,
            offset: self.start as u64,
        }
    }
}
