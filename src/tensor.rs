//! [`TensorView`]: one tensor of a model, wherever its part's bytes are
//! (a mapping, memory, or a stream), with typed access and dequantization.
//! Every method of a view lives under this module: the accessors here,
//! dequantization in `dequantize`, the byte source the engine reads
//! through in `source`.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use crate::dtype::{ggml_type_table, GgmlType};
use crate::error::{Error, Result};
use crate::format::{ByteOrder, Index, TensorInfo};
use crate::quant::Block;
use crate::storage::Storage;

mod dequantize;
mod source;

pub use dequantize::{DequantChunk, DequantChunks, DequantOptions};
#[cfg_attr(not(feature = "candle"), allow(unused_imports))]
pub(crate) use source::Staging;
pub(crate) use source::TensorSource;

/// A tensor of an opened model: its description, and a handle on the
/// bytes of the part that holds it.
///
/// A view is `Copy` and borrows the [`Gguf`](crate::Gguf) it came from.
/// Where the part's bytes are in memory (mapped, read, or borrowed),
/// [`TensorView::bytes`] and the typed views borrow them; where the model
/// is streamed, they are read when asked for.
///
/// ```
/// use std::io::Cursor;
/// use ggufmap::{DequantOptions, Error, GgmlType, Gguf, GgufWriter};
///
/// let mut writer = GgufWriter::new();
/// writer.add_tensor("w", GgmlType::F32, &[3], bytemuck::cast_slice(&[1f32, 2.0, 3.0]))?;
/// let bytes = writer.to_bytes()?;
///
/// // Streamed: nothing to borrow, everything to read.
/// let model = Gguf::from_reader(Cursor::new(bytes))?;
/// let w = model.tensor("w")?;
/// assert!(matches!(w.as_slice::<f32>(), Err(Error::NotInMemory { .. })));
/// assert_eq!(w.read_slice::<f32>()?.as_ref(), &[1.0, 2.0, 3.0]);
/// assert_eq!(w.dequantize_to_vec::<f32>(&DequantOptions::default())?, vec![1.0, 2.0, 3.0]);
/// # Ok::<(), ggufmap::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    name: &'a str,
    info: &'a TensorInfo,
    storage: &'a Storage<'a>,
    path: Option<&'a Path>,
    part: usize,
    /// Absolute offset of the data in the part's file.
    start: u64,
    order: ByteOrder,
}

impl fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorView")
            .field("name", &self.name)
            .field("dtype", &self.dtype())
            .field("dims", &self.dims())
            .field("part", &self.part)
            .field("byte_range", &self.byte_range())
            .finish()
    }
}

/// Sealing: the plain types of the type table are [`Element`]'s only
/// implementations.
mod sealed {
    pub trait Sealed {}
}

/// Element types a plain (unquantized) tensor can be viewed as: `f32`,
/// `half::f16`, `half::bf16`, `f64`, `i8`, `i16`, `i32`, `i64`. Sealed.
pub trait Element: sealed::Sealed + bytemuck::Pod {
    /// The tensor type stored as this element.
    const DTYPE: GgmlType;
}

/// From the rows of the type table: every plain type's element.
macro_rules! elements {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $elems:literal, $bytes:literal, $kind:ident($($block:tt)+), [$($candle:tt)*]; )*) => {
        $( element_row!($kind, $variant, $($block)+); )*
    };
}

macro_rules! element_row {
    (plain, $variant:ident, $t:ty) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: GgmlType = GgmlType::$variant;
        }
    };
    (quant, $($rest:tt)*) => {};
}

ggml_type_table!(elements);

impl<'a> TensorView<'a> {
    /// The view of tensor `info` of `index`, the index of part `part` of
    /// a model, whose bytes are `storage`.
    pub(crate) fn new(
        storage: &'a Storage<'a>,
        path: Option<&'a Path>,
        part: usize,
        index: &'a Index,
        info: &'a TensorInfo,
    ) -> Self {
        TensorView {
            name: info.name(storage.header()),
            info,
            storage,
            path,
            part,
            // The data start is inside the header held in memory.
            start: index.data_start() as u64 + info.data_offset(),
            order: index.byte_order(),
        }
    }

    /// The bytes of the part holding this tensor.
    pub(crate) fn storage(&self) -> &'a Storage<'a> {
        self.storage
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

    /// Position of the part holding the tensor among the model's parts (0
    /// unless the model is split).
    pub fn part(&self) -> usize {
        self.part
    }

    /// Path of the file holding the tensor, where the model was opened
    /// from files.
    pub fn path(&self) -> Option<&'a Path> {
        self.path
    }

    /// Absolute byte range of the data in the file of its part.
    pub fn byte_range(&self) -> Range<u64> {
        self.start..self.start + self.info.n_bytes()
    }

    /// Byte order of the file.
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// The raw bytes, as stored, borrowed from the mapping or memory.
    ///
    /// # Errors
    /// [`Error::NotInMemory`] for a streamed model; [`TensorView::read_bytes`]
    /// reads them instead.
    pub fn bytes(&self) -> Result<&'a [u8]> {
        self.storage
            .get(self.byte_range())
            .ok_or_else(|| Error::NotInMemory {
                tensor: self.name.to_owned(),
            })
    }

    /// The raw bytes, as stored: borrowed where they are in memory, read
    /// into a new buffer from a stream.
    ///
    /// # Errors
    /// [`Error::TensorRead`] if reading the stream fails.
    pub fn read_bytes(&self) -> Result<Cow<'a, [u8]>> {
        if let Ok(bytes) = self.bytes() {
            return Ok(Cow::Borrowed(bytes));
        }
        let len = self.n_bytes()?;
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| Error::SizeOverflow {
                tensor: self.name.to_owned(),
                what: "tensor bytes in memory",
                offset: self.info.info_offset(),
            })?;
        out.resize(len, 0);
        self.read_at(0, &mut out)?;
        Ok(Cow::Owned(out))
    }

    /// Writes the raw bytes, as stored, to `out`: straight from memory where
    /// they are there, in bounded chunks through a pooled buffer from a
    /// stream (memory stays a few MiB whatever the tensor's size).
    ///
    /// # Errors
    /// [`Error::TensorRead`] if reading a stream fails; [`Error::Io`]
    /// if writing fails.
    pub fn write_bytes_to(&self, out: &mut dyn std::io::Write) -> Result<()> {
        TensorSource::new(*self, false).write_to(out)
    }

    /// Reads the tensor's bytes from `offset` (relative to its data) into
    /// `out`, from wherever they are; a mapped file is read by position,
    /// not through the mapping.
    pub(crate) fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        let at = self.start + offset;
        self.storage
            .read_at(at, out)
            .map_err(|source| Error::TensorRead {
                tensor: self.name.to_owned(),
                path: self.path.map(Path::to_owned),
                offset: at,
                source,
            })
    }

    /// Bytes of data as `usize`, for buffers in memory.
    ///
    /// # Errors
    /// [`Error::SizeOverflow`] if it does not fit this platform's `usize`.
    pub(crate) fn n_bytes(&self) -> Result<usize> {
        usize::try_from(self.info.n_bytes()).map_err(|_| Error::SizeOverflow {
            tensor: self.name.to_owned(),
            what: "byte count on this platform",
            offset: self.info.info_offset(),
        })
    }

    /// The data as `&[T]`, without copying.
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] unless the tensor's type is `T`'s,
    /// [`Error::ByteOrder`] for a file in the other byte order,
    /// [`Error::UnalignedInMemory`] when the bytes are not aligned for `T`
    /// (a file with a small `general.alignment`), [`Error::NotInMemory`] for
    /// a streamed model; [`TensorView::read_slice`] copies in those cases.
    pub fn as_slice<T: Element>(&self) -> Result<&'a [T]> {
        self.check_dtype(T::DTYPE)?;
        self.check_native_order()?;
        bytemuck::try_cast_slice(self.bytes()?)
            .map_err(|_| self.misaligned(std::mem::align_of::<T>()))
    }

    /// The data as `T`s, as stored (no conversion): borrowed when
    /// [`TensorView::as_slice`] can be, copied (and byte-swapped if needed)
    /// otherwise; the typed twin of [`TensorView::read_bytes`].
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] unless the tensor's type is `T`'s;
    /// [`Error::TensorRead`] if reading a stream fails.
    pub fn read_slice<T: Element>(&self) -> Result<Cow<'a, [T]>> {
        self.check_dtype(T::DTYPE)?;
        if let Ok(slice) = self.as_slice::<T>() {
            return Ok(Cow::Borrowed(slice));
        }
        let bytes = self.read_bytes()?;
        let size = std::mem::size_of::<T>();
        let values = bytes
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

    /// The raw blocks of a quantized tensor, without copying.
    ///
    /// # Errors
    /// [`Error::DtypeMismatch`] unless the tensor's type is `B`'s,
    /// [`Error::ByteOrder`] for a file in the other byte order,
    /// [`Error::UnalignedInMemory`] when the bytes are not aligned for `B`,
    /// [`Error::NotInMemory`] for a streamed model.
    pub fn blocks<B: Block>(&self) -> Result<&'a [B]> {
        self.check_dtype(B::TYPE)?;
        self.check_native_order()?;
        bytemuck::try_cast_slice(self.bytes()?)
            .map_err(|_| self.misaligned(std::mem::align_of::<B>()))
    }

    /// Number of elements as `usize`, for buffers in memory
    /// ([`TensorView::n_elements`] is the count).
    ///
    /// # Errors
    /// [`Error::SizeOverflow`] if it does not fit this platform's `usize`.
    pub(crate) fn elements_in_memory(&self) -> Result<usize> {
        usize::try_from(self.n_elements()).map_err(|_| Error::SizeOverflow {
            tensor: self.name.to_owned(),
            what: "element count on this platform",
            offset: self.info.info_offset(),
        })
    }

    /// True when the tensor has no elements ([`TensorView::n_elements`] is
    /// 0).
    pub fn is_empty(&self) -> bool {
        self.n_elements() == 0
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
        Error::UnalignedInMemory {
            tensor: self.name.to_owned(),
            required,
            offset: self.start,
        }
    }
}
