//! candle integration (feature `candle`): one tensor as a candle [`Tensor`]
//! or [`QTensor`], a whole model loaded inside a memory budget, and a bridge
//! for code written against candle's own [`gguf_file`].
//!
//! - [`TensorView::to_candle`] dequantizes (or converts) a tensor into a
//!   dense [`Tensor`]: on the CPU straight into the `Vec` the tensor takes
//!   over, elsewhere through a pooled staging buffer.
//! - [`TensorView::to_qtensor`] keeps a tensor quantized, for every type
//!   candle has ([`GgmlType::candle_qtype`]): on the CPU, from a mapped
//!   file, a `QTensor` whose blocks stay in the mapping (no copy; candle's
//!   kernels read them in place).
//! - [`Gguf::load_candle`] loads every tensor ([`LoadAs`]), in parallel, and
//!   says what it did ([`LoadReport`]): a quantized model from a mapped file
//!   in milliseconds, with nothing read until it is used.
//! - [`Gguf::to_candle_content`] and [`Gguf::reader`] give existing candle
//!   model code (candle-transformers' quantized models) its
//!   `gguf_file::Content` and a `Read + Seek`, without reading the file
//!   again.
//!
//! ```
//! use candle_core::{DType, Device};
//! use ggufmap::candle::LoadAs;
//! use ggufmap::{GgmlType, Gguf, GgufWriter};
//!
//! let weights: Vec<f32> = (0..64).map(|i| i as f32).collect();
//! let mut writer = GgufWriter::new();
//! writer.add_tensor("w", GgmlType::F32, &[32, 2], bytemuck::cast_slice(&weights))?;
//! let bytes = writer.to_bytes()?;
//! let file = Gguf::from_bytes(&bytes)?;
//!
//! let w = file.tensor("w")?.to_candle(&Device::Cpu, DType::F16)?;
//! assert_eq!(w.dims(), &[2, 32]);
//!
//! let model = file.load_candle(&Device::Cpu, LoadAs::Quantized)?;
//! assert_eq!(model.report.tensors, 1);
//! assert!(model.qtensor("w").is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Cursor;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::quantized::{gguf_file, GgmlDType, QStorage, QTensor, QuantizedType};
use candle_core::{DType, Device, Shape, Tensor, WithDType};
use half::{bf16, f16};

use crate::dequant::Parallelism;
use crate::dtype::GgmlType;
use crate::error::{Error, Result};
use crate::file::Gguf;
use crate::format::{ByteOrder, Value};
use crate::pool::{BufferPool, PooledBuf};
use crate::quant::{self, Output};
use crate::tensor::{Element, TensorView};

mod blocks;

use blocks::{AlignedBytes, BlockBytes};

/// Output bytes per work item when dequantizing from positioned reads: the
/// input of one item is read into a pooled buffer of at most this size.
const READ_CHUNK_OUTPUT_BYTES: usize = 256 * 1024;

/// Bytes per positioned read when a whole tensor is read into a staging
/// buffer; the reads of one tensor run in parallel.
const READ_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Quantized tensors larger than this are loaded one at a time, largest
/// first, so that at most one whole-tensor staging buffer of that size is
/// alive at once; smaller ones load in parallel (their staging buffers in
/// flight total at most this size times the thread count).
const SEQUENTIAL_STAGING_BYTES: u64 = 1024 * 1024;

const ADVICE_DEQUANTIZE: &str =
    "candle has no quantized type for it; dequantize it instead (TensorView::to_candle, or load_candle with LoadAs::F16, BF16 or F32)";

impl GgmlType {
    /// candle's quantized type for this type, or `None` where candle has
    /// none (the IQ, TQ and FP4 families, Q1_0, Q2_0, F64 and the integers).
    pub const fn candle_qtype(self) -> Option<GgmlDType> {
        Some(match self {
            GgmlType::F32 => GgmlDType::F32,
            GgmlType::F16 => GgmlDType::F16,
            GgmlType::BF16 => GgmlDType::BF16,
            GgmlType::Q4_0 => GgmlDType::Q4_0,
            GgmlType::Q4_1 => GgmlDType::Q4_1,
            GgmlType::Q5_0 => GgmlDType::Q5_0,
            GgmlType::Q5_1 => GgmlDType::Q5_1,
            GgmlType::Q8_0 => GgmlDType::Q8_0,
            GgmlType::Q8_1 => GgmlDType::Q8_1,
            GgmlType::Q2_K => GgmlDType::Q2K,
            GgmlType::Q3_K => GgmlDType::Q3K,
            GgmlType::Q4_K => GgmlDType::Q4K,
            GgmlType::Q5_K => GgmlDType::Q5K,
            GgmlType::Q6_K => GgmlDType::Q6K,
            GgmlType::Q8_K => GgmlDType::Q8K,
            _ => return None,
        })
    }

    /// The candle element type that holds a plain tensor of this type
    /// exactly: F32, F16, BF16 and F64 as themselves, I16, I32 and I64 as
    /// themselves, I8 widened to I16 (candle has no `i8`). `None` for block
    /// types, which must be dequantized or kept as a [`QTensor`].
    pub const fn candle_dtype(self) -> Option<DType> {
        Some(match self {
            GgmlType::F32 => DType::F32,
            GgmlType::F16 => DType::F16,
            GgmlType::BF16 => DType::BF16,
            GgmlType::F64 => DType::F64,
            GgmlType::I8 | GgmlType::I16 => DType::I16,
            GgmlType::I32 => DType::I32,
            GgmlType::I64 => DType::I64,
            _ => return None,
        })
    }
}

/// Gives `err` the name of the tensor it happened to, unless it names one
/// already.
fn in_tensor(tensor: &str, err: Error) -> Error {
    match err {
        Error::Candle { .. }
        | Error::CandleUnsupported { .. }
        | Error::ByteOrder { .. }
        | Error::DtypeMismatch { .. }
        | Error::Misaligned { .. }
        | Error::SizeOverflow { .. }
        | Error::InTensor { .. } => err,
        other => Error::InTensor {
            tensor: tensor.to_owned(),
            source: Box::new(other),
        },
    }
}

fn candle_err(tensor: &str) -> impl FnOnce(candle_core::Error) -> Error + '_ {
    move |source| Error::Candle {
        tensor: tensor.to_owned(),
        source,
    }
}

/// Reverses the bytes of each `size`-byte element of `bytes` (plain types
/// stored in the other byte order).
fn swap_elements(bytes: &mut [u8], size: usize) {
    if size > 1 {
        bytes.chunks_exact_mut(size).for_each(<[u8]>::reverse);
    }
}

/// A QTensor of type `qtype` over `staging` (whole blocks, native order):
/// on the CPU the storage takes the buffer over; elsewhere it is copied to
/// the device.
fn qtensor_from_staging(
    tensor: &str,
    qtype: GgmlDType,
    staging: AlignedBytes,
    shape: Vec<usize>,
    device: &Device,
) -> Result<QTensor> {
    let len = staging.bytes().len();
    let block_bytes = qtype.type_size();
    let whole_blocks = Error::InTensor {
        tensor: tensor.to_owned(),
        source: Box::new(Error::LengthMismatch {
            what: "candle quantized data (whole blocks)",
            expected: len / block_bytes.max(1) * block_bytes,
            found: len,
        }),
    };
    // Whole blocks cannot be missing from a validated file (the block sizes
    // are checked against candle's in the tests); candle would panic.
    let storage = if device.is_cpu() {
        QStorage::Cpu(blocks::block_storage(qtype, BlockBytes::Owned(staging)).ok_or(whole_blocks)?)
    } else {
        if block_bytes == 0 || len % block_bytes != 0 {
            return Err(whole_blocks);
        }
        QStorage::from_data(Cow::Borrowed(staging.bytes()), device, qtype)
            .map_err(candle_err(tensor))?
    };
    QTensor::new(storage, shape).map_err(candle_err(tensor))
}

/// A dense tensor of `shape` from `fill`, which writes every element of the
/// buffer it is given: on the CPU that buffer is the `Vec` the tensor takes
/// over; elsewhere it is a pooled staging buffer copied to the device.
fn dense_tensor<O: Output + WithDType>(
    tensor: &str,
    n: usize,
    shape: Vec<usize>,
    device: &Device,
    fill: impl FnOnce(&mut [O]) -> Result<()>,
) -> Result<Tensor> {
    if device.is_cpu() {
        let mut out = vec![O::default(); n];
        fill(&mut out).map_err(|e| in_tensor(tensor, e))?;
        Tensor::from_vec(out, shape, device).map_err(candle_err(tensor))
    } else {
        let mut staging = staging::<O>(n);
        fill(&mut staging).map_err(|e| in_tensor(tensor, e))?;
        Tensor::from_slice(&staging, shape, device).map_err(candle_err(tensor))
    }
}

/// A buffer of `len` elements from [`BufferPool::global`]; a plain `Vec`
/// where the pool cannot serve the request (it is an optimisation, never a
/// reason to fail).
fn staging<T: bytemuck::Pod>(len: usize) -> Staging<T> {
    match BufferPool::global().get::<T>(len) {
        Ok(buf) => Staging::Pooled(buf),
        Err(_) => Staging::Owned(vec![T::zeroed(); len]),
    }
}

enum Staging<T: bytemuck::Pod> {
    Pooled(PooledBuf<T>),
    Owned(Vec<T>),
}

impl<T: bytemuck::Pod> std::ops::Deref for Staging<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Staging::Pooled(buf) => buf,
            Staging::Owned(buf) => buf,
        }
    }
}

impl<T: bytemuck::Pod> std::ops::DerefMut for Staging<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Staging::Pooled(buf) => buf,
            Staging::Owned(buf) => buf,
        }
    }
}

impl TensorView<'_> {
    /// The tensor as a dense candle [`Tensor`] of element type `dtype`,
    /// shape outermost first ([`TensorView::shape`]).
    ///
    /// - `F32`, `F16`, `BF16`: any tensor, dequantized (quantized types) or
    ///   converted (plain types, as a C cast would) on the threads of
    ///   `Parallelism::default()`.
    /// - `F64`, `I16`, `I32`, `I64`: plain tensors whose values that type
    ///   holds exactly: F64 as `F64`; I8 as `I16`, `I32` or `I64`; I16 as
    ///   `I16`, `I32` or `I64`; I32 as `I32` or `I64`; I64 as `I64`. See
    ///   [`GgmlType::candle_dtype`] for the natural choice.
    ///
    /// # Errors
    /// [`Error::CandleUnsupported`] for any other pairing,
    /// [`Error::Candle`] if candle rejects the tensor (a device error), and
    /// the errors of [`TensorView::dequantize_into`] wrapped in
    /// [`Error::InTensor`].
    ///
    /// # Performance
    /// On the CPU the values are written once, into the allocation the
    /// tensor keeps. On another device they are written into a buffer of
    /// [`BufferPool::global`] and copied to the device; the buffer goes back
    /// to the pool.
    pub fn to_candle(&self, device: &Device, dtype: DType) -> Result<Tensor> {
        self.to_candle_with(device, dtype, &Parallelism::default())
    }

    /// [`TensorView::to_candle`] on the threads of `parallelism`.
    ///
    /// # Errors
    /// As [`TensorView::to_candle`].
    pub fn to_candle_with(
        &self,
        device: &Device,
        dtype: DType,
        parallelism: &Parallelism,
    ) -> Result<Tensor> {
        let name = self.name();
        let n = self.len()?;
        match dtype {
            DType::F32 => dense_tensor::<f32>(name, n, self.shape(), device, |out| {
                self.dequantize_into_with(out, parallelism)
            }),
            DType::F16 => dense_tensor::<f16>(name, n, self.shape(), device, |out| {
                self.dequantize_into_with(out, parallelism)
            }),
            DType::BF16 => dense_tensor::<bf16>(name, n, self.shape(), device, |out| {
                self.dequantize_into_with(out, parallelism)
            }),
            _ => self.exact_candle(device, dtype),
        }
    }

    /// Plain tensors converted exactly (copied, widened where needed).
    fn exact_candle(&self, device: &Device, dtype: DType) -> Result<Tensor> {
        match (self.dtype(), dtype) {
            (GgmlType::F64, DType::F64) => self.widened::<f64, f64>(device),
            (GgmlType::I8, DType::I16) => self.widened::<i8, i16>(device),
            (GgmlType::I8, DType::I32) => self.widened::<i8, i32>(device),
            (GgmlType::I8, DType::I64) => self.widened::<i8, i64>(device),
            (GgmlType::I16, DType::I16) => self.widened::<i16, i16>(device),
            (GgmlType::I16, DType::I32) => self.widened::<i16, i32>(device),
            (GgmlType::I16, DType::I64) => self.widened::<i16, i64>(device),
            (GgmlType::I32, DType::I32) => self.widened::<i32, i32>(device),
            (GgmlType::I32, DType::I64) => self.widened::<i32, i64>(device),
            (GgmlType::I64, DType::I64) => self.widened::<i64, i64>(device),
            (found, _) => Err(Error::CandleUnsupported {
                tensor: self.name().to_owned(),
                dtype: found,
                target: dtype.as_str(),
                reason: "that element type cannot hold its values exactly; ask for f32, f16 or bf16 to convert",
            }),
        }
    }

    fn widened<S: Element, D: WithDType + From<S>>(&self, device: &Device) -> Result<Tensor> {
        let name = self.name();
        let src = self.to_cow::<S>()?;
        let values: Vec<D> = src.iter().map(|&v| D::from(v)).collect();
        Tensor::from_vec(values, self.shape(), device).map_err(candle_err(name))
    }

    /// The tensor as a candle [`QTensor`] that stays quantized, for every
    /// type candle has ([`GgmlType::candle_qtype`]: F32, F16, BF16, Q4_0,
    /// Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K to Q6_K, Q8_K).
    ///
    /// On the CPU, from a mapped file in native byte order whose data is
    /// aligned for candle's block type (every file with the default
    /// `general.alignment` of 32), nothing is copied: the `QTensor` reads
    /// its blocks in the mapping, which it keeps alive (the mapping
    /// contract on [`Gguf`] applies to it), and its pages are read in when
    /// first used. Otherwise the bytes are copied once: on the CPU into a
    /// buffer the `QTensor` takes over, elsewhere to `device`.
    ///
    /// # Errors
    /// [`Error::CandleUnsupported`] for the other types (IQ*, TQ*, MXFP4,
    /// NVFP4, Q1_0, Q2_0, F64, integers), with the advice to dequantize;
    /// [`Error::ByteOrder`] for quantized blocks of a big-endian file;
    /// [`Error::Candle`] if candle rejects the tensor (a 0-dimensional
    /// tensor, a device error).
    pub fn to_qtensor(&self, device: &Device) -> Result<QTensor> {
        let qtype = self.require_qtype()?;
        match self.mapped_storage(qtype, device) {
            Some(storage) => {
                QTensor::new(QStorage::Cpu(storage), self.shape()).map_err(candle_err(self.name()))
            }
            None => self.copied_qtensor(qtype, device),
        }
    }

    /// [`TensorView::to_qtensor`] from a copy of the bytes, byte swapped
    /// for a file in the other byte order (plain types only, as
    /// [`TensorView::require_qtype`] checks).
    fn copied_qtensor(&self, qtype: GgmlDType, device: &Device) -> Result<QTensor> {
        let name = self.name();
        let native = self.byte_order().is_native();
        let aligned = (self.bytes().as_ptr() as usize) % blocks::candle_align(qtype) == 0;
        if !device.is_cpu() && native && aligned {
            // Straight from the file's bytes to the device.
            let storage = QStorage::from_data(Cow::Borrowed(self.bytes()), device, qtype)
                .map_err(candle_err(name))?;
            return QTensor::new(storage, self.shape()).map_err(candle_err(name));
        }
        let mut staging = AlignedBytes::zeroed(self.bytes().len());
        staging.bytes_mut().copy_from_slice(self.bytes());
        if !native {
            swap_elements(staging.bytes_mut(), self.dtype().bytes_per_block());
        }
        qtensor_from_staging(name, qtype, staging, self.shape(), device)
    }

    /// CPU storage reading this tensor's blocks in the mapping, where they
    /// can be read in place: a mapped file, native byte order, data aligned
    /// for candle's block type.
    fn mapped_storage(&self, qtype: GgmlDType, device: &Device) -> Option<Box<dyn QuantizedType>> {
        if !device.is_cpu() || !self.byte_order().is_native() {
            return None;
        }
        let map = Arc::clone(self.mapping()?);
        blocks::block_storage(
            qtype,
            BlockBytes::Mapped {
                map,
                range: self.byte_range(),
            },
        )
    }

    /// candle's type for this tensor, or the error saying why it has none.
    fn require_qtype(&self) -> Result<GgmlDType> {
        let dtype = self.dtype();
        let qtype = dtype
            .candle_qtype()
            .ok_or_else(|| Error::CandleUnsupported {
                tensor: self.name().to_owned(),
                dtype,
                target: "quantized tensor",
                reason: ADVICE_DEQUANTIZE,
            })?;
        if !self.byte_order().is_native() && !dtype.is_plain() {
            return Err(Error::ByteOrder {
                tensor: self.name().to_owned(),
            });
        }
        Ok(qtype)
    }
}

/// How [`Gguf::load_candle`] loads each tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoadAs {
    /// Keep tensors as stored, as [`QTensor`]s (F32, F16 and BF16 tensors
    /// included, as candle's own GGUF loading does). Tensors candle cannot
    /// hold quantized fall back, and the report lists them: block types
    /// candle lacks to dense F16, plain F64 and integer tensors to their
    /// exact dense type ([`GgmlType::candle_dtype`]).
    Quantized,
    /// Every tensor dequantized to a dense F16 [`Tensor`].
    F16,
    /// Every tensor dequantized to a dense BF16 [`Tensor`].
    BF16,
    /// Every tensor dequantized to a dense F32 [`Tensor`].
    F32,
}

impl LoadAs {
    /// Every choice, in the order of the command line's help.
    pub const ALL: [LoadAs; 4] = [LoadAs::Quantized, LoadAs::F16, LoadAs::BF16, LoadAs::F32];

    /// `"quantized"`, `"f16"`, `"bf16"` or `"f32"`.
    pub const fn name(self) -> &'static str {
        match self {
            LoadAs::Quantized => "quantized",
            LoadAs::F16 => "f16",
            LoadAs::BF16 => "bf16",
            LoadAs::F32 => "f32",
        }
    }

    /// The dense element type, `None` for [`LoadAs::Quantized`].
    pub const fn dtype(self) -> Option<DType> {
        match self {
            LoadAs::Quantized => None,
            LoadAs::F16 => Some(DType::F16),
            LoadAs::BF16 => Some(DType::BF16),
            LoadAs::F32 => Some(DType::F32),
        }
    }
}

impl fmt::Display for LoadAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LoadAs {
    type Err = Error;

    /// Parses [`LoadAs::name`], case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        LoadAs::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownLoadAs { name: s.to_owned() })
    }
}

/// Options of [`Gguf::load_candle_with`].
#[derive(Clone, Debug)]
pub struct LoadOptions {
    load_as: LoadAs,
    parallelism: Parallelism,
    through_mapping: bool,
    copy_quantized: bool,
}

impl LoadOptions {
    /// Load as `load_as`, on rayon's global pool, reading a mapped file
    /// with positioned reads (see [`LoadOptions::read_through_mapping`]).
    pub fn new(load_as: LoadAs) -> Self {
        LoadOptions {
            load_as,
            parallelism: Parallelism::default(),
            through_mapping: false,
            copy_quantized: false,
        }
    }

    /// Where the work runs (`Parallelism::Sequential` for the calling
    /// thread alone).
    pub fn parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Copy tensors kept quantized into memory of their own, even where
    /// they could be read in the mapping.
    ///
    /// By default, on the CPU, a tensor kept quantized from a mapped file
    /// is a [`QTensor`] over its blocks in the mapping
    /// ([`TensorView::to_qtensor`]): loading copies nothing and makes
    /// nothing resident; pages are read in when a tensor is first used, as
    /// file-backed memory the kernel can reclaim and read again, shared
    /// with every process mapping the same file. The tensors keep the
    /// mapping alive after the [`Gguf`] is dropped, and the mapping
    /// contract on [`Gguf`] applies to them ([`crate::OpenOptions::populate`]
    /// reads every page at open instead of on first use). Copy when the
    /// file may change
    /// while the model is in use, or to have every weight in anonymous
    /// memory up front (what candle's own loading does). A copy is read
    /// from the file straight into the buffer its tensor keeps.
    pub fn copy_quantized(mut self, yes: bool) -> Self {
        self.copy_quantized = yes;
        self
    }

    /// Read tensor data through the mapping even when the file can be read
    /// directly.
    ///
    /// By default a mapped file is read with positioned reads (`pread`)
    /// from a second handle on the same file, checked to be the file that
    /// was mapped (same length, same header bytes), wherever data is copied
    /// (dequantized tensors, [`LoadOptions::copy_quantized`]): reading it
    /// this way keeps the mapping's pages out of the process's resident
    /// set, so loading needs no more memory than its result. Through the mapping, every page of
    /// tensor data also becomes resident (file-backed) while the [`Gguf`]
    /// lives. Files read into memory and borrowed bytes are always used in
    /// place.
    pub fn read_through_mapping(mut self, yes: bool) -> Self {
        self.through_mapping = yes;
        self
    }
}

/// One tensor loaded by [`Gguf::load_candle`].
#[derive(Debug)]
pub enum LoadedTensor {
    /// Kept quantized (or as stored, for F32, F16 and BF16 tensors).
    Quantized(QTensor),
    /// A dense tensor.
    Dense(Tensor),
}

impl LoadedTensor {
    /// The shape, outermost first.
    pub fn shape(&self) -> &Shape {
        match self {
            LoadedTensor::Quantized(q) => q.shape(),
            LoadedTensor::Dense(t) => t.shape(),
        }
    }

    /// candle's quantized type, for a [`LoadedTensor::Quantized`].
    pub fn qtype(&self) -> Option<GgmlDType> {
        match self {
            LoadedTensor::Quantized(q) => Some(q.dtype()),
            LoadedTensor::Dense(_) => None,
        }
    }

    /// The element type, for a [`LoadedTensor::Dense`].
    pub fn dtype(&self) -> Option<DType> {
        match self {
            LoadedTensor::Quantized(_) => None,
            LoadedTensor::Dense(t) => Some(t.dtype()),
        }
    }

    /// Bytes of memory the tensor's data takes (host or device).
    pub fn size_in_bytes(&self) -> usize {
        match self {
            LoadedTensor::Quantized(q) => q.storage_size_in_bytes(),
            LoadedTensor::Dense(t) => t.elem_count().saturating_mul(t.dtype().size_in_bytes()),
        }
    }

    /// The [`QTensor`], if kept quantized.
    pub fn as_qtensor(&self) -> Option<&QTensor> {
        match self {
            LoadedTensor::Quantized(q) => Some(q),
            LoadedTensor::Dense(_) => None,
        }
    }

    /// The dense [`Tensor`], if dense.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            LoadedTensor::Quantized(_) => None,
            LoadedTensor::Dense(t) => Some(t),
        }
    }
}

/// Why [`LoadAs`] was not followed for a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FallbackReason {
    /// [`LoadAs::Quantized`]: candle has no quantized type for the tensor's
    /// type; it was dequantized to F16.
    NoCandleQuantizedType,
    /// [`LoadAs::Quantized`]: an F64 or integer tensor, which a [`QTensor`]
    /// cannot hold; it was loaded dense in the type that holds it exactly.
    PlainType,
    /// [`LoadAs::Quantized`]: a 0-dimensional (scalar) tensor, which a
    /// [`QTensor`] cannot be; it was loaded dense in its own type.
    Scalar,
    /// A float [`LoadAs`]: an integer tensor, kept in the integer type that
    /// holds it exactly rather than rounded to floats.
    IntegerKept,
}

impl FallbackReason {
    /// A short explanation, lowercase.
    pub const fn description(self) -> &'static str {
        match self {
            FallbackReason::NoCandleQuantizedType => "candle has no quantized type for it",
            FallbackReason::PlainType => "a plain type a quantized tensor cannot hold",
            FallbackReason::Scalar => "a scalar, which a quantized tensor cannot be",
            FallbackReason::IntegerKept => "integers are kept exact",
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A tensor [`Gguf::load_candle`] loaded otherwise than asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// The tensor.
    pub tensor: String,
    /// Its type in the file.
    pub dtype: GgmlType,
    /// The dense element type it was loaded as.
    pub loaded_as: DType,
    /// Why.
    pub reason: FallbackReason,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) loaded as {}: {}",
            self.tensor,
            self.dtype,
            self.loaded_as.as_str(),
            self.reason
        )
    }
}

/// What [`Gguf::load_candle`] did.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// What was asked.
    pub load_as: LoadAs,
    /// Tensors loaded (all of the file's).
    pub tensors: usize,
    /// Of these, kept as [`QTensor`]s.
    pub quantized: usize,
    /// Of these, dense [`Tensor`]s.
    pub dense: usize,
    /// Of the quantized, those reading their blocks in the mapping, not
    /// copied (see [`LoadOptions::copy_quantized`]).
    pub mapped: usize,
    /// Bytes of tensor data in the file.
    pub file_bytes: u64,
    /// Bytes the loaded tensors take (host or device memory, or the
    /// mapping for [`LoadReport::mapped`] tensors).
    pub loaded_bytes: u64,
    /// Tensors not loaded as asked, and why, in file order.
    pub fallbacks: Vec<Fallback>,
    /// True when tensor data was read with positioned reads from the file
    /// rather than through the mapping or bytes in memory (see
    /// [`LoadOptions::read_through_mapping`]).
    pub read_from_file: bool,
    /// Threads the work was spread over.
    pub threads: usize,
    /// Wall time of the whole load.
    pub elapsed: Duration,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {} tensors as {} ({} quantized{}, {} dense): {} file bytes -> {} bytes in {:.3?}",
            self.tensors,
            self.load_as,
            self.quantized,
            match self.mapped {
                0 => String::new(),
                n => format!(" ({n} read in the mapping)"),
            },
            self.dense,
            self.file_bytes,
            self.loaded_bytes,
            self.elapsed
        )?;
        for fallback in &self.fallbacks {
            write!(f, "\n  fallback: {fallback}")?;
        }
        Ok(())
    }
}

/// Every tensor of a file, loaded by [`Gguf::load_candle`].
#[derive(Debug)]
pub struct LoadedModel {
    /// The tensors, by name.
    pub tensors: HashMap<String, LoadedTensor>,
    /// What was done.
    pub report: LoadReport,
}

impl LoadedModel {
    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&LoadedTensor> {
        self.tensors.get(name)
    }

    /// The tensor named `name`, if it was kept quantized.
    pub fn qtensor(&self, name: &str) -> Option<&QTensor> {
        self.get(name).and_then(LoadedTensor::as_qtensor)
    }

    /// The tensor named `name`, if it is dense.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.get(name).and_then(LoadedTensor::as_tensor)
    }

    /// Takes the tensor named `name` out of the model.
    pub fn remove(&mut self, name: &str) -> Option<LoadedTensor> {
        self.tensors.remove(name)
    }
}

/// Where tensor data is read from while loading.
enum Source<'g> {
    /// The file's bytes in memory (a mapping, a read file, borrowed bytes).
    Bytes(&'g [u8]),
    /// Positioned reads from a second handle on a mapped file.
    #[cfg(unix)]
    File {
        file: std::fs::File,
        path: &'g std::path::Path,
    },
}

impl<'g> Source<'g> {
    fn new(gguf: &'g Gguf<'_>, through_mapping: bool) -> Self {
        #[cfg(unix)]
        if gguf.is_mapped() && !through_mapping {
            if let Some(path) = gguf.path() {
                if let Some(file) = same_file(gguf, path) {
                    return Source::File { file, path };
                }
            }
        }
        #[cfg(not(unix))]
        let _ = through_mapping;
        Source::Bytes(gguf.bytes())
    }

    fn is_file(&self) -> bool {
        !matches!(self, Source::Bytes(_))
    }

    /// Reads the file bytes `range` into `out` (the same length).
    fn read(&self, range: Range<usize>, out: &mut [u8]) -> Result<()> {
        match self {
            Source::Bytes(bytes) => {
                let len = range.len();
                let src = bytes.get(range).ok_or(Error::LengthMismatch {
                    what: "tensor data",
                    expected: len,
                    found: 0,
                })?;
                out.copy_from_slice(src);
                Ok(())
            }
            #[cfg(unix)]
            Source::File { file, path } => {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(out, range.start as u64)
                    .map_err(|source| Error::Io {
                        path: path.to_path_buf(),
                        source,
                    })
            }
        }
    }
}

/// A second handle on the file `gguf` mapped from `path`, if `path` still
/// names that file: the same length and the same header bytes (every byte
/// before the tensor data), compared in chunks against the mapping.
#[cfg(unix)]
fn same_file(gguf: &Gguf<'_>, path: &std::path::Path) -> Option<std::fs::File> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).ok()?;
    let mapped = gguf.bytes();
    if file.metadata().ok()?.len() != mapped.len() as u64 {
        return None;
    }
    let header = mapped.get(..gguf.data_offset())?;
    let mut buf = vec![0u8; header.len().min(1 << 20)];
    for (i, expected) in header.chunks(1 << 20).enumerate() {
        let buf = buf.get_mut(..expected.len())?;
        file.read_exact_at(buf, (i << 20) as u64).ok()?;
        if buf != expected {
            return None;
        }
    }
    Some(file)
}

/// How one tensor is loaded.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// A QTensor over the blocks in the mapping.
    Mapped,
    /// A QTensor with a copy of the blocks.
    Quantized(GgmlDType),
    Dense(DType, Option<FallbackReason>),
}

fn plan(view: &TensorView<'_>, options: &LoadOptions, device: &Device) -> Plan {
    match plan_type(view, options.load_as) {
        Plan::Quantized(qtype)
            if !options.copy_quantized && view.mapped_storage(qtype, device).is_some() =>
        {
            Plan::Mapped
        }
        plan => plan,
    }
}

/// The type `view` loads as.
fn plan_type(view: &TensorView<'_>, load_as: LoadAs) -> Plan {
    let dtype = view.dtype();
    let exact = dtype.candle_dtype();
    match load_as.dtype() {
        Some(target) => match exact {
            Some(int) if int.is_int() => Plan::Dense(int, Some(FallbackReason::IntegerKept)),
            _ => Plan::Dense(target, None),
        },
        None => match (dtype.candle_qtype(), exact) {
            (Some(_), Some(own)) if view.dims().is_empty() => {
                Plan::Dense(own, Some(FallbackReason::Scalar))
            }
            (Some(qtype), _) => Plan::Quantized(qtype),
            (None, Some(own)) => Plan::Dense(own, Some(FallbackReason::PlainType)),
            (None, None) => Plan::Dense(DType::F16, Some(FallbackReason::NoCandleQuantizedType)),
        },
    }
}

impl Gguf<'_> {
    /// Loads every tensor into candle on `device`, as `load_as` says, in
    /// parallel on rayon's global pool.
    ///
    /// Tensors load largest first; [`LoadAs::Quantized`] keeps what candle
    /// can hold quantized and loads the rest dense, listing each in
    /// [`LoadReport::fallbacks`]. Nothing is loaded half: the first error
    /// stops the load and is returned, naming its tensor.
    ///
    /// # Errors
    /// The first tensor's error: [`Error::Candle`] (a shape candle cannot
    /// take, a device error), [`Error::ByteOrder`] (quantized blocks of a
    /// big-endian file kept quantized), or [`Error::InTensor`] wrapping a
    /// read or dequantization error.
    ///
    /// # Performance
    /// Quantized on the CPU from a mapped file, nothing is read (see
    /// [`LoadOptions::copy_quantized`]). Otherwise, see
    /// [`LoadOptions::read_through_mapping`]: from a mapped file, peak
    /// memory is the result plus small staging buffers.
    pub fn load_candle(&self, device: &Device, load_as: LoadAs) -> Result<LoadedModel> {
        self.load_candle_with(device, &LoadOptions::new(load_as))
    }

    /// [`Gguf::load_candle`] with options.
    ///
    /// # Errors
    /// As [`Gguf::load_candle`].
    pub fn load_candle_with(&self, device: &Device, options: &LoadOptions) -> Result<LoadedModel> {
        let start = Instant::now();
        let source = Source::new(self, options.through_mapping);
        let par = &options.parallelism;
        let mut work: Vec<(TensorView<'_>, Plan)> = self
            .tensors()
            .map(|t| (t, plan(&t, options, device)))
            .collect();
        work.sort_by_key(|(t, _)| std::cmp::Reverse(t.info().n_bytes()));
        // Whole-tensor staging buffers (quantized tensors read from the
        // file) are bounded: large ones one at a time, then the rest.
        let one_at_a_time = |(t, p): &(TensorView<'_>, Plan)| {
            source.is_file()
                && matches!(p, Plan::Quantized(_))
                && t.info().n_bytes() > SEQUENTIAL_STAGING_BYTES
        };
        let split = work
            .iter()
            .position(|w| !one_at_a_time(w))
            .unwrap_or(work.len());
        let (large, rest) = work.split_at(split);
        let mut loaded = Vec::with_capacity(work.len());
        for (view, plan) in large {
            loaded.push(load_one(view, *plan, &source, device, par)?);
        }
        loaded.extend(try_map(par, rest, |(view, plan)| {
            load_one(view, *plan, &source, device, par)
        })?);

        let mut tensors = HashMap::with_capacity(loaded.len());
        let mut report = LoadReport {
            load_as: options.load_as,
            tensors: loaded.len(),
            quantized: 0,
            dense: 0,
            mapped: 0,
            file_bytes: self.tensor_bytes(),
            loaded_bytes: 0,
            fallbacks: Vec::new(),
            read_from_file: source.is_file(),
            threads: par.current_num_threads(),
            elapsed: Duration::ZERO,
        };
        for ((view, plan), tensor) in work.iter().zip(loaded) {
            match tensor {
                LoadedTensor::Quantized(_) => report.quantized += 1,
                LoadedTensor::Dense(_) => report.dense += 1,
            }
            report.loaded_bytes += tensor.size_in_bytes() as u64;
            if let Plan::Mapped = plan {
                report.mapped += 1;
            }
            if let Plan::Dense(loaded_as, Some(reason)) = plan {
                report.fallbacks.push(Fallback {
                    tensor: view.name().to_owned(),
                    dtype: view.dtype(),
                    loaded_as: *loaded_as,
                    reason: *reason,
                });
            }
            tensors.insert(view.name().to_owned(), tensor);
        }
        let order: HashMap<&str, usize> = self
            .tensors()
            .enumerate()
            .map(|(i, t)| (t.name(), i))
            .collect();
        report
            .fallbacks
            .sort_by_key(|f| order.get(f.tensor.as_str()).copied());
        report.elapsed = start.elapsed();
        Ok(LoadedModel { tensors, report })
    }

    /// candle's [`gguf_file::Content`] for this file, built from the index
    /// (no second parse): metadata converted to candle's values (strings
    /// copied as candle reads them: trailing NULs dropped, invalid UTF-8
    /// replaced), tensor infos with candle's conventions (shape outermost
    /// first, offset relative to the data section). With
    /// [`Gguf::reader`], code written for candle's GGUF loading runs
    /// unchanged:
    ///
    /// ```
    /// # use ggufmap::{GgmlType, Gguf, GgufWriter};
    /// # let mut writer = GgufWriter::new();
    /// # writer.add_tensor("w", GgmlType::F32, &[32], vec![0u8; 128])?;
    /// # let bytes = writer.to_bytes()?;
    /// let file = Gguf::from_bytes(&bytes)?;
    /// let content = file.to_candle_content()?;
    /// let w = content.tensor(&mut file.reader(), "w", &candle_core::Device::Cpu)?;
    /// assert_eq!(w.shape().dims(), &[32]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::CandleUnsupported`] naming the first tensor of a type
    /// candle cannot read; [`Error::ByteOrder`] naming the first
    /// multi-byte tensor of a big-endian file (candle reads little-endian
    /// only).
    pub fn to_candle_content(&self) -> Result<gguf_file::Content> {
        let metadata = self
            .metadata()
            .iter()
            .map(|(key, value)| (candle_string(key.as_bytes()), candle_value(&value)))
            .collect();
        let mut tensor_infos = HashMap::with_capacity(self.tensor_count());
        for view in self.tensors() {
            let ggml_dtype =
                view.dtype()
                    .candle_qtype()
                    .ok_or_else(|| Error::CandleUnsupported {
                        tensor: view.name().to_owned(),
                        dtype: view.dtype(),
                        target: "gguf_file tensor",
                        reason: ADVICE_DEQUANTIZE,
                    })?;
            if self.byte_order() != ByteOrder::Little && view.dtype().bytes_per_block() > 1 {
                return Err(Error::ByteOrder {
                    tensor: view.name().to_owned(),
                });
            }
            let info = gguf_file::TensorInfo {
                ggml_dtype,
                shape: Shape::from(view.shape()),
                offset: view.info().data_offset(),
            };
            tensor_infos.insert(candle_string(view.name().as_bytes()), info);
        }
        let magic = if self.version() == 2 {
            gguf_file::VersionedMagic::GgufV2
        } else {
            gguf_file::VersionedMagic::GgufV3
        };
        Ok(gguf_file::Content {
            magic,
            metadata,
            tensor_infos,
            tensor_data_offset: self.data_offset() as u64,
        })
    }

    /// A `Read + Seek` over the whole file's bytes (the mapping): what
    /// [`gguf_file::Content::tensor`] reads tensors from.
    ///
    /// # Performance
    /// candle copies every tensor it reads out of the reader, so the
    /// mapping's pages it touches become resident (file-backed) until this
    /// `Gguf` is dropped: loading Gemma 3 270M through it peaks about one
    /// file size higher than through a `File`. Where that matters, pass
    /// `std::fs::File::open(path)?` to `content.tensor` instead: the
    /// content's offsets are the same.
    pub fn reader(&self) -> Cursor<&[u8]> {
        Cursor::new(self.bytes())
    }
}

/// A string as candle's GGUF reader makes it: trailing NULs dropped,
/// invalid UTF-8 replaced by U+FFFD.
fn candle_string(mut bytes: &[u8]) -> String {
    while let [rest @ .., 0] = bytes {
        bytes = rest;
    }
    String::from_utf8_lossy(bytes).into_owned()
}

fn candle_value(value: &Value<'_>) -> gguf_file::Value {
    use gguf_file::Value as V;
    match *value {
        Value::U8(v) => V::U8(v),
        Value::I8(v) => V::I8(v),
        Value::U16(v) => V::U16(v),
        Value::I16(v) => V::I16(v),
        Value::U32(v) => V::U32(v),
        Value::I32(v) => V::I32(v),
        Value::F32(v) => V::F32(v),
        Value::Bool(v) => V::Bool(v),
        Value::String(s) => V::String(candle_string(s.as_bytes())),
        Value::Array(a) => V::Array(a.iter().map(|v| candle_value(&v)).collect()),
        Value::U64(v) => V::U64(v),
        Value::I64(v) => V::I64(v),
        Value::F64(v) => V::F64(v),
    }
}

/// Loads one tensor as `plan` says.
fn load_one(
    view: &TensorView<'_>,
    plan: Plan,
    source: &Source<'_>,
    device: &Device,
    par: &Parallelism,
) -> Result<LoadedTensor> {
    let name = view.name();
    match plan {
        Plan::Mapped => view.to_qtensor(device).map(LoadedTensor::Quantized),
        Plan::Quantized(qtype) if !source.is_file() => view
            .require_qtype()
            .and_then(|_| view.copied_qtensor(qtype, device))
            .map(LoadedTensor::Quantized),
        Plan::Quantized(qtype) => {
            view.require_qtype()?;
            let mut staging = AlignedBytes::zeroed(view.bytes().len());
            read_parallel(source, view.byte_range(), staging.bytes_mut(), par)
                .map_err(|e| in_tensor(name, e))?;
            if !view.byte_order().is_native() {
                swap_elements(staging.bytes_mut(), view.dtype().bytes_per_block());
            }
            qtensor_from_staging(name, qtype, staging, view.shape(), device)
                .map(LoadedTensor::Quantized)
        }
        Plan::Dense(dtype, _)
            if !source.is_file() || !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) =>
        {
            view.to_candle_with(device, dtype, par)
                .map(LoadedTensor::Dense)
        }
        Plan::Dense(DType::F16, _) => dense_from_file::<f16>(view, source, device, par),
        Plan::Dense(DType::BF16, _) => dense_from_file::<bf16>(view, source, device, par),
        Plan::Dense(_, _) => dense_from_file::<f32>(view, source, device, par),
    }
}

/// Dequantizes `view` into a dense tensor, reading its data from the file
/// in chunks of whole blocks, each into a pooled buffer.
fn dense_from_file<O: Output + WithDType>(
    view: &TensorView<'_>,
    source: &Source<'_>,
    device: &Device,
    par: &Parallelism,
) -> Result<LoadedTensor> {
    let dtype = view.dtype();
    let order = view.byte_order();
    let block_elems = dtype.elements_per_block();
    let block_bytes = dtype.bytes_per_block();
    let blocks_per_chunk =
        (READ_CHUNK_OUTPUT_BYTES / std::mem::size_of::<O>() / block_elems).max(1);
    let in_chunk = blocks_per_chunk * block_bytes;
    let start = view.byte_range().start;
    let n = view.len()?;
    if view.bytes().len() / block_bytes * block_elems != n {
        return Err(in_tensor(
            view.name(),
            Error::LengthMismatch {
                what: "dequantization output",
                expected: view.bytes().len() / block_bytes * block_elems,
                found: n,
            },
        ));
    }
    let fill = |out: &mut [O]| {
        try_chunks(par, out, blocks_per_chunk * block_elems, |i, out| {
            let len = out.len() / block_elems * block_bytes;
            let mut staging = staging::<u8>(len);
            let offset = start + i * in_chunk;
            source.read(offset..offset + len, &mut staging)?;
            quant::dequantize_bytes(dtype, &staging, order, out)
        })
    };
    dense_tensor::<O>(view.name(), n, view.shape(), device, fill).map(LoadedTensor::Dense)
}

/// Reads the file bytes `range` into `out`, in parallel chunks.
fn read_parallel(
    source: &Source<'_>,
    range: Range<usize>,
    out: &mut [u8],
    par: &Parallelism,
) -> Result<()> {
    let start = range.start;
    try_chunks(par, out, READ_CHUNK_BYTES, |i, out| {
        let offset = start + i * READ_CHUNK_BYTES;
        source.read(offset..offset + out.len(), out)
    })
}

/// Runs `f(index, chunk)` over `data` in chunks of `chunk` elements, on the
/// threads of `par`; stops at the first error.
fn try_chunks<T: Send>(
    par: &Parallelism,
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) -> Result<()> + Sync + Send,
) -> Result<()> {
    let chunk = chunk.max(1);
    match par {
        Parallelism::Sequential => data
            .chunks_mut(chunk)
            .enumerate()
            .try_for_each(|(i, c)| f(i, c)),
        #[cfg(feature = "parallel")]
        Parallelism::Global => par_chunks(data, chunk, f),
        #[cfg(feature = "parallel")]
        Parallelism::Pool(pool) => pool.install(|| par_chunks(data, chunk, f)),
    }
}

#[cfg(feature = "parallel")]
fn par_chunks<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) -> Result<()> + Sync + Send,
) -> Result<()> {
    use rayon::prelude::*;
    if data.len() <= chunk {
        return f(0, data);
    }
    data.par_chunks_mut(chunk)
        .enumerate()
        .try_for_each(|(i, c)| f(i, c))
}

/// Maps `f` over `items` on the threads of `par`, in order; stops at the
/// first error.
fn try_map<I: Sync, R: Send>(
    par: &Parallelism,
    items: &[I],
    f: impl Fn(&I) -> Result<R> + Sync + Send,
) -> Result<Vec<R>> {
    match par {
        Parallelism::Sequential => items.iter().map(f).collect(),
        #[cfg(feature = "parallel")]
        Parallelism::Global => par_map(items, f),
        #[cfg(feature = "parallel")]
        Parallelism::Pool(pool) => pool.install(|| par_map(items, f)),
    }
}

#[cfg(feature = "parallel")]
fn par_map<I: Sync, R: Send>(
    items: &[I],
    f: impl Fn(&I) -> Result<R> + Sync + Send,
) -> Result<Vec<R>> {
    use rayon::prelude::*;
    items.par_iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_geometry_matches_candle() {
        for &dtype in GgmlType::ALL {
            if let Some(qtype) = dtype.candle_qtype() {
                assert_eq!(qtype.block_size(), dtype.elements_per_block(), "{dtype}");
                assert_eq!(qtype.type_size(), dtype.bytes_per_block(), "{dtype}");
            }
        }
    }

    #[test]
    fn load_as_names_round_trip() {
        for load_as in LoadAs::ALL {
            assert_eq!(load_as.name().parse::<LoadAs>().unwrap(), load_as);
            assert_eq!(
                load_as
                    .to_string()
                    .to_uppercase()
                    .parse::<LoadAs>()
                    .unwrap(),
                load_as
            );
        }
        assert!(matches!(
            "q4".parse::<LoadAs>(),
            Err(Error::UnknownLoadAs { .. })
        ));
    }

    #[test]
    fn candle_strings_drop_trailing_nuls() {
        assert_eq!(candle_string(b"abc\0\0"), "abc");
        assert_eq!(candle_string(b"a\0b"), "a\0b");
        assert_eq!(candle_string(b"\xff"), "\u{fffd}");
    }
}
