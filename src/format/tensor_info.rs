//! The tensor index: one validated entry per tensor.

use std::ops::Range;

use super::reader::Reader;
use super::{MAX_DIMS, MAX_TENSOR_NAME_LEN};
use crate::dtype::{GgmlType, REMOVED_TYPE_IDS};
use crate::error::{Error, Result};

/// Smallest encoding of a tensor info: name length, n_dims, type, offset.
pub(crate) const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

/// One tensor of the index: where its name and data are, its type and dims.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub(crate) info_offset: usize,
    pub(crate) name: Range<usize>,
    pub(crate) n_dims: usize,
    pub(crate) dims: [u64; MAX_DIMS],
    pub(crate) dtype: GgmlType,
    pub(crate) n_elements: u64,
    pub(crate) n_bytes: u64,
    pub(crate) data_offset: u64,
    pub(crate) offset_field: usize,
    /// Absolute byte range of the data, set once the layout is validated.
    pub(crate) data: Range<usize>,
}

impl TensorInfo {
    /// Dimensions as stored in the file: ne0 (the contiguous one) first.
    pub fn dims(&self) -> &[u64] {
        self.dims.get(..self.n_dims).unwrap_or_default()
    }

    /// The element type.
    pub fn dtype(&self) -> GgmlType {
        self.dtype
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.n_elements
    }

    /// Size of the data in bytes.
    pub fn n_bytes(&self) -> u64 {
        self.n_bytes
    }

    /// Offset of the data relative to the start of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Absolute byte range of the data in the file.
    pub fn data_range(&self) -> Range<usize> {
        self.data.clone()
    }

    /// Absolute offset of this tensor's info record in the file.
    pub fn info_offset(&self) -> u64 {
        self.info_offset as u64
    }

    pub(crate) fn name<'data>(&self, data: &'data [u8]) -> &'data str {
        // Checked UTF-8 and in bounds when parsed.
        data.get(self.name.clone())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

/// Reads one tensor info, checking everything that does not depend on the
/// other tensors (ggml's `gguf_init_from_file_impl` checks, plus overflow of
/// the byte size).
pub(crate) fn read_tensor_info(r: &mut Reader<'_>) -> Result<TensorInfo> {
    let info_offset = r.pos();
    let name_bytes = r.string("tensor name")?;
    let name_start = info_offset.saturating_add(8);
    if name_bytes.len() >= MAX_TENSOR_NAME_LEN {
        return Err(Error::NameTooLong {
            len: name_bytes.len() as u64,
            max: MAX_TENSOR_NAME_LEN - 1,
            offset: info_offset as u64,
        });
    }
    let name = std::str::from_utf8(name_bytes).map_err(|_| Error::InvalidUtf8 {
        what: "tensor name",
        offset: name_start as u64,
    })?;
    let tensor = || name.to_owned();

    let n_dims_offset = r.pos() as u64;
    let n_dims_raw: u32 = r.num("tensor n_dims")?;
    let n_dims = usize::try_from(n_dims_raw).unwrap_or(usize::MAX);
    if n_dims > MAX_DIMS {
        return Err(Error::TooManyDims {
            tensor: tensor(),
            n_dims: n_dims_raw,
            offset: n_dims_offset,
        });
    }
    let mut dims = [1u64; MAX_DIMS];
    for (axis, dim) in dims.iter_mut().enumerate().take(n_dims) {
        let offset = r.pos() as u64;
        let value: u64 = r.num("tensor dimension")?;
        // ggml stores dims as int64_t and rejects negative ones.
        if i64::try_from(value).is_err() {
            return Err(Error::InvalidDim {
                tensor: tensor(),
                axis,
                value,
                offset,
            });
        }
        *dim = value;
    }

    let type_offset = r.pos() as u64;
    let id: u32 = r.num("tensor type")?;
    let dtype = GgmlType::from_id(id).ok_or_else(|| {
        if REMOVED_TYPE_IDS.contains(&id) {
            Error::RemovedType {
                tensor: tensor(),
                id,
                offset: type_offset,
            }
        } else {
            Error::UnknownType {
                tensor: tensor(),
                id,
                offset: type_offset,
            }
        }
    })?;

    let block = dtype.elements_per_block() as u64;
    let ne0 = dims.first().copied().unwrap_or(1);
    if ne0.checked_rem(block) != Some(0) {
        return Err(Error::RowNotBlockAligned {
            tensor: tensor(),
            dtype,
            ne0,
            block,
            offset: info_offset as u64,
        });
    }
    let overflow = |what| Error::SizeOverflow {
        tensor: tensor(),
        what,
        offset: info_offset as u64,
    };
    let n_elements = GgmlType::element_count(&dims).ok_or_else(|| overflow("element count"))?;
    let n_bytes = dtype
        .tensor_bytes(&dims)
        .ok_or_else(|| overflow("byte size"))?;

    let offset_field = r.pos();
    let data_offset: u64 = r.num("tensor data offset")?;
    Ok(TensorInfo {
        info_offset,
        name: name_start..name_start.saturating_add(name_bytes.len()),
        n_dims,
        dims,
        dtype,
        n_elements,
        n_bytes,
        data_offset,
        offset_field,
        data: 0..0,
    })
}
