//! The tensor index: one validated entry per tensor.

use super::reader::Reader;
use super::{MAX_DIMS, MAX_TENSOR_NAME_LEN};
use crate::dtype::{GgmlType, REMOVED_TYPE_IDS};
use crate::error::{Error, Result};

/// Smallest encoding of a tensor info: name length, n_dims, type, offset.
pub(crate) const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

/// One tensor of the index: where its name and data are, its type and dims.
///
/// Kept small (56 bytes), since a file may declare a tensor per 40-odd
/// bytes of header: what can be derived from the dims and type (element
/// count, byte size, the position of fields in the file) is computed when
/// asked, from values validated when the file was parsed.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub(crate) info_offset: u64,
    pub(crate) dims: [u64; MAX_DIMS],
    pub(crate) data_offset: u64,
    pub(crate) name_len: u8,
    pub(crate) n_dims: u8,
    pub(crate) dtype: GgmlType,
}

const _: () = assert!(std::mem::size_of::<TensorInfo>() <= 56);

impl TensorInfo {
    /// Dimensions as stored in the file: ne0 (the contiguous one) first.
    pub fn dims(&self) -> &[u64] {
        self.dims
            .get(..usize::from(self.n_dims))
            .unwrap_or_default()
    }

    /// The element type.
    pub fn dtype(&self) -> GgmlType {
        self.dtype
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        // Checked to exist when the file was parsed.
        GgmlType::element_count(self.dims()).unwrap_or(0)
    }

    /// Size of the data in bytes.
    pub fn n_bytes(&self) -> u64 {
        // Checked to exist when the file was parsed.
        self.dtype.tensor_bytes(self.dims()).unwrap_or(0)
    }

    /// Offset of the data relative to the start of the data section (the
    /// value stored in the file).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Absolute offset of this tensor's info record in the file.
    pub fn info_offset(&self) -> u64 {
        self.info_offset
    }

    /// Absolute offset of the data-offset field: name length (8), name,
    /// n_dims (4), dims (8 each), type (4).
    pub(crate) fn offset_field(&self) -> u64 {
        self.info_offset
            .saturating_add(8 + 4 + 4)
            .saturating_add(u64::from(self.name_len))
            .saturating_add(8 * u64::from(self.n_dims))
    }

    pub(crate) fn name<'data>(&self, data: &'data [u8]) -> &'data str {
        // Checked UTF-8 and in bounds when parsed.
        let start = to_usize(self.info_offset.saturating_add(8));
        data.get(start..start.saturating_add(usize::from(self.name_len)))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Reads one tensor info, checking everything that does not depend on the
/// other tensors (ggml's `gguf_init_from_file_impl` checks, plus overflow of
/// the byte size).
pub(crate) fn read_tensor_info(r: &mut Reader<'_>) -> Result<TensorInfo> {
    let info_offset = r.pos();
    let name_bytes = r.string("tensor name")?;
    let name_start = info_offset.saturating_add(8);
    const _: () = assert!(MAX_TENSOR_NAME_LEN <= u8::MAX as usize && MAX_DIMS <= 8);
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
    let dtype = GgmlType::from_id(id).ok_or_else(|| Error::UnknownType {
        id,
        removed: REMOVED_TYPE_IDS.contains(&id),
        tensor: Some(tensor()),
        offset: Some(type_offset),
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
    // Checked here, not kept: both are derived from the dims when asked.
    GgmlType::element_count(&dims).ok_or_else(|| overflow("element count"))?;
    dtype
        .tensor_bytes(&dims)
        .ok_or_else(|| overflow("byte size"))?;

    let data_offset: u64 = r.num("tensor data offset")?;
    Ok(TensorInfo {
        info_offset: info_offset as u64,
        dims,
        data_offset,
        // Below MAX_TENSOR_NAME_LEN and MAX_DIMS, checked above.
        name_len: u8::try_from(name_bytes.len()).unwrap_or(u8::MAX),
        n_dims: u8::try_from(n_dims).unwrap_or(u8::MAX),
        dtype,
    })
}
