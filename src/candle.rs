//! candle integration (feature `candle`): one tensor as a candle [`Tensor`]
//! or [`QTensor`], a whole model loaded inside a memory budget, and a bridge
//! for code written against candle's own
//! [`gguf_file`](candle_core::quantized::gguf_file).
//!
//! - [`TensorView::to_candle`] dequantizes (or converts) a tensor into a
//!   dense [`Tensor`]: on the CPU straight into the `Vec` the tensor takes
//!   over, elsewhere through a pooled staging buffer.
//! - [`TensorView::to_qtensor`] keeps a tensor quantized, for every type
//!   candle has ([`GgmlType::candle_qtype`]): on the CPU, from a mapped
//!   file or one read into memory, a `QTensor` whose blocks stay where the
//!   file's bytes are (no copy; candle's kernels read them in place).
//! - [`Gguf::load_candle`](crate::Gguf::load_candle) loads every tensor ([`LoadAs`]), in parallel, and
//!   says what it did ([`LoadReport`]): a quantized model from a mapped file
//!   in milliseconds, with nothing read until it is used.
//! - [`Gguf::to_candle_content`](crate::Gguf::to_candle_content) and
//!   [`Gguf::reader`](crate::Gguf::reader) give existing candle
//!   model code (candle-transformers' quantized models) its
//!   `gguf_file::Content` and a `Read + Seek`, without reading the file
//!   again.
//!
//! ```
//! use candle_core::{DType, Device};
//! use ggufmap::candle::LoadAs;
//! use ggufmap::{DequantOptions, GgmlType, Gguf, GgufWriter};
//!
//! let weights: Vec<f32> = (0..64).map(|i| i as f32).collect();
//! let mut writer = GgufWriter::new();
//! writer.add_tensor("w", GgmlType::F32, &[32, 2], bytemuck::cast_slice(&weights))?;
//! let bytes = writer.to_bytes()?;
//! let file = Gguf::from_bytes(&bytes)?;
//!
//! let w = file
//!     .tensor("w")?
//!     .to_candle(&Device::Cpu, DType::F16, &DequantOptions::default())?;
//! assert_eq!(w.dims(), &[2, 32]);
//!
//! let model = file.load_candle(&Device::Cpu, LoadAs::Quantized)?;
//! assert_eq!(model.report.tensors, 1);
//! assert!(model.qtensor("w").is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;

use candle_core::quantized::{GgmlDType, QStorage, QTensor, QuantizedType};
use candle_core::{DType, Device, Tensor, WithDType};
use half::{bf16, f16};

use crate::dtype::{ggml_type_table, GgmlType};
use crate::error::{Error, Result};
use crate::parallel::Parallelism;
use crate::pool::BufferPool;
use crate::quant::Output;
use crate::tensor::{DequantOptions, Element, Staging, TensorSource, TensorView};

mod blocks;
mod bridge;
mod load;

use blocks::{AlignedBytes, BlockBytes};
pub use load::{
    Fallback, FallbackReason, LoadAs, LoadOptions, LoadReport, LoadedModel, LoadedTensor,
};

/// From the rows of the type table: [`GgmlType::candle_qtype`].
macro_rules! candle_qtypes {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $elems:literal, $bytes:literal, $kind:ident($($block:tt)+), [$($qtype:ident, $cblock:ty)?]; )*) => {
        impl GgmlType {
            /// candle's quantized type for this type, or `None` where candle
            /// has none (the IQ, TQ and FP4 families, Q1_0, Q2_0, F64 and the
            /// integers).
            pub const fn candle_qtype(self) -> Option<GgmlDType> {
                match self {
                    $( GgmlType::$variant => candle_qtype_of!($($qtype)?), )*
                }
            }
        }
    };
}

macro_rules! candle_qtype_of {
    () => {
        None
    };
    ($qtype:ident) => {
        Some(GgmlDType::$qtype)
    };
}

ggml_type_table!(candle_qtypes);

const ADVICE_DEQUANTIZE: &str =
    "candle has no quantized type for it; dequantize it instead (TensorView::to_candle, or load_candle with LoadAs::F16, BF16 or F32)";

impl GgmlType {
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
    let whole_blocks = || Error::LengthMismatch {
        tensor: Some(tensor.to_owned()),
        what: "candle quantized data (whole blocks)",
        expected: len / block_bytes.max(1) * block_bytes,
        found: len,
    };
    // Whole blocks cannot be missing from a validated file (the block sizes
    // are checked against candle's in the tests); candle would panic.
    let storage = if device.is_cpu() {
        QStorage::Cpu(
            blocks::block_storage(qtype, BlockBytes::Owned(staging)).ok_or_else(whole_blocks)?,
        )
    } else {
        if block_bytes == 0 || len % block_bytes != 0 {
            return Err(whole_blocks());
        }
        QStorage::from_data(Cow::Borrowed(staging.bytes()), device, qtype)
            .map_err(candle_err(tensor))?
    };
    QTensor::new(storage, shape).map_err(candle_err(tensor))
}

/// A dense tensor of `shape` from `fill`, which writes every element of the
/// buffer it is given: on the CPU that buffer is the `Vec` the tensor takes
/// over; elsewhere it is a buffer from `pool` copied to the device.
fn dense_tensor<O: Output + WithDType>(
    tensor: &str,
    n: usize,
    shape: Vec<usize>,
    device: &Device,
    pool: &BufferPool,
    fill: impl FnOnce(&mut [O]) -> Result<()>,
) -> Result<Tensor> {
    if device.is_cpu() {
        let mut out = vec![O::default(); n];
        fill(&mut out).map_err(|e| e.in_tensor(tensor))?;
        Tensor::from_vec(out, shape, device).map_err(candle_err(tensor))
    } else {
        let mut staging = Staging::<O>::from_pool(pool, n);
        fill(&mut staging).map_err(|e| e.in_tensor(tensor))?;
        Tensor::from_slice(&staging, shape, device).map_err(candle_err(tensor))
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "candle")))]
impl TensorView<'_> {
    /// The tensor as a dense candle [`Tensor`] of element type `dtype`,
    /// shape outermost first ([`TensorView::shape`]).
    ///
    /// - `F32`, `F16`, `BF16`: any tensor, dequantized (quantized types) or
    ///   converted (plain types, as a C cast would) on the options' threads.
    /// - `F64`, `I16`, `I32`, `I64`: plain tensors whose values that type
    ///   holds exactly: F64 as `F64`; I8 as `I16`, `I32` or `I64`; I16 as
    ///   `I16`, `I32` or `I64`; I32 as `I32` or `I64`; I64 as `I64`. See
    ///   [`GgmlType::candle_dtype`] for the natural choice.
    ///
    /// ```
    /// use candle_core::{DType, Device};
    /// use ggufmap::DequantOptions;
    /// # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
    /// let t = model.tensor("blk.0.ffn_down.weight")?; // Q8_0, dims [128, 256]
    /// let dense = t.to_candle(&Device::Cpu, DType::F16, &DequantOptions::default())?;
    /// assert_eq!(dense.dims(), &[256, 128]); // outermost first
    /// assert_eq!(dense.dtype(), DType::F16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::CandleUnsupported`] for any other pairing,
    /// [`Error::Candle`] if candle rejects the tensor (a device error), and
    /// the errors of [`TensorView::dequantize_into`].
    ///
    /// # Performance
    /// On the CPU the values are written once, into the allocation the
    /// tensor keeps. On another device they are written into a buffer of
    /// the options' pool and copied to the device; the buffer goes back to
    /// the pool.
    pub fn to_candle(
        &self,
        device: &Device,
        dtype: DType,
        options: &DequantOptions,
    ) -> Result<Tensor> {
        self.candle_from(&TensorSource::new(*self, false), device, dtype, options)
    }

    /// [`TensorView::to_candle`], reading through `source`.
    fn candle_from(
        &self,
        source: &TensorSource<'_>,
        device: &Device,
        dtype: DType,
        options: &DequantOptions,
    ) -> Result<Tensor> {
        let name = self.name();
        let n = self.elements_in_memory()?;
        let (pool, parallelism) = (options.buffer_pool(), options.threads());
        match dtype {
            DType::F32 => dense_tensor::<f32>(name, n, self.candle_shape()?, device, pool, |out| {
                source.dequantize_into(out, parallelism)
            }),
            DType::F16 => dense_tensor::<f16>(name, n, self.candle_shape()?, device, pool, |out| {
                source.dequantize_into(out, parallelism)
            }),
            DType::BF16 => {
                dense_tensor::<bf16>(name, n, self.candle_shape()?, device, pool, |out| {
                    source.dequantize_into(out, parallelism)
                })
            }
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
        let src = self.read_slice::<S>()?;
        let values: Vec<D> = src.iter().map(|&v| D::from(v)).collect();
        Tensor::from_vec(values, self.candle_shape()?, device).map_err(candle_err(name))
    }

    /// The tensor as a candle [`QTensor`] that stays quantized, for every
    /// type candle has ([`GgmlType::candle_qtype`]: F32, F16, BF16, Q4_0,
    /// Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K to Q6_K, Q8_K).
    ///
    /// On the CPU, from a file mapped or read into memory (not borrowed
    /// bytes), in native byte order, whose data is aligned for candle's
    /// block type (every file with the default `general.alignment` of 32),
    /// nothing is copied: the `QTensor` reads its blocks where the file's
    /// bytes are and keeps them alive (for a mapping, the mapping contract
    /// on [`Gguf`](crate::Gguf) applies to it, and pages are read in when
    /// first used). Otherwise the bytes are copied once: on the CPU into a
    /// buffer the `QTensor` takes over, elsewhere to `device`.
    ///
    /// ```
    /// use candle_core::Device;
    /// # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
    /// let q = model.tensor("blk.0.attn_q.weight")?.to_qtensor(&Device::Cpu)?;
    /// assert_eq!(q.dtype(), candle_core::quantized::GgmlDType::Q4K);
    /// assert_eq!(q.shape().dims(), &[256, 256]);
    /// let dense = q.dequantize(&Device::Cpu)?; // candle's own dequantizer
    /// assert_eq!(dense.dims(), &[256, 256]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
            Some(storage) => QTensor::new(QStorage::Cpu(storage), self.candle_shape()?)
                .map_err(candle_err(self.name())),
            None => self.copied_qtensor(
                &TensorSource::new(*self, false),
                qtype,
                device,
                &Parallelism::default(),
            ),
        }
    }

    /// [`TensorView::to_qtensor`] from a copy of the bytes read through
    /// `source`, byte swapped for a file in the other byte order (plain
    /// types only, as [`TensorView::require_qtype`] checks).
    fn copied_qtensor(
        &self,
        source: &TensorSource<'_>,
        qtype: GgmlDType,
        device: &Device,
        parallelism: &Parallelism,
    ) -> Result<QTensor> {
        let name = self.name();
        let native = self.byte_order().is_native();
        if let (false, true, Some(bytes)) = (device.is_cpu(), native, source.borrowed()) {
            if (bytes.as_ptr() as usize) % blocks::candle_align(qtype) == 0 {
                // Straight from the file's bytes to the device.
                let storage = QStorage::from_data(Cow::Borrowed(bytes), device, qtype)
                    .map_err(candle_err(name))?;
                return QTensor::new(storage, self.candle_shape()?).map_err(candle_err(name));
            }
        }
        let len = self.n_bytes()?;
        let mut staging = AlignedBytes::zeroed(len);
        source
            .copy_into(staging.bytes_mut(), parallelism)
            .map_err(|e| e.in_tensor(name))?;
        if !native {
            swap_elements(staging.bytes_mut(), self.dtype().bytes_per_block());
        }
        qtensor_from_staging(name, qtype, staging, self.candle_shape()?, device)
    }

    /// CPU storage reading this tensor's blocks in place, where they can
    /// be: a file mapped or read into memory, native byte order, data
    /// aligned for candle's block type.
    fn mapped_storage(&self, qtype: GgmlDType, device: &Device) -> Option<Box<dyn QuantizedType>> {
        if !device.is_cpu() || !self.byte_order().is_native() {
            return None;
        }
        let range = self.byte_range();
        blocks::block_storage(
            qtype,
            BlockBytes::Shared {
                bytes: self.storage().shared()?.clone(),
                range: usize::try_from(range.start).ok()?..usize::try_from(range.end).ok()?,
            },
        )
    }

    /// The shape for candle ([`TensorView::shape`]), where candle can count
    /// its elements: candle multiplies the dims outermost first, unchecked,
    /// so dims that ggml accepts (every running product from ne0 within
    /// `i64`, as `[64, 0, 2^20, 2^46]`, which holds no element) can
    /// overflow candle's product the other way round; such a tensor would
    /// panic inside candle or count wrong.
    fn candle_shape(&self) -> Result<Vec<usize>> {
        let shape = self.shape();
        match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
            Some(_) => Ok(shape),
            None => Err(Error::CandleUnsupported {
                tensor: self.name().to_owned(),
                dtype: self.dtype(),
                target: "candle shape",
                reason:
                    "the product of its dims, taken outermost first as candle takes it, overflows",
            }),
        }
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
}
