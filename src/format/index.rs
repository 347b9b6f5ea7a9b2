//! Parsing a whole header into an [`Index`] of offsets.

use super::kv::{Metadata, MetadataEntry};
use super::metadata::{read_value, read_value_type, Value, ValueType};
use super::reader::{ByteOrder, Reader};
use super::tensor_info::{read_tensor_info, TensorInfo, MIN_TENSOR_INFO_BYTES};
use super::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
use crate::error::{Error, Result};

/// Smallest encoding of a metadata entry: key length, value type, a 1-byte
/// value.
const MIN_ENTRY_BYTES: u64 = 8 + 4 + 1;

/// A validated GGUF header: byte offsets into the data it was parsed from.
///
/// An `Index` holds no borrowed data, so it can live beside the bytes it
/// describes; its views take those bytes as an argument. Building one
/// allocates in proportion to the number of metadata entries and tensors,
/// never to the number of array elements or string bytes.
#[derive(Clone, Debug)]
pub struct Index {
    pub(crate) version: u32,
    pub(crate) order: ByteOrder,
    pub(crate) alignment: u32,
    pub(crate) entries: Vec<MetadataEntry>,
    pub(crate) entries_by_key: Vec<u32>,
    pub(crate) tensors: Vec<TensorInfo>,
    pub(crate) tensors_by_name: Vec<u32>,
    pub(crate) data_start: usize,
}

impl Index {
    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Byte order of the file.
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// Alignment of tensor data in bytes.
    pub fn alignment(&self) -> u32 {
        self.alignment
    }

    /// Absolute offset of the tensor data section.
    pub fn data_start(&self) -> usize {
        self.data_start
    }

    /// The tensors, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The metadata view over `data` (the bytes this index was parsed from).
    pub fn metadata<'a>(&'a self, data: &'a [u8]) -> Metadata<'a> {
        Metadata {
            data,
            order: self.order,
            entries: &self.entries,
            by_key: &self.entries_by_key,
        }
    }

    /// Position in [`Index::tensors`] of the tensor named `name`.
    pub fn find_tensor(&self, data: &[u8], name: &str) -> Option<usize> {
        let pos = self
            .tensors_by_name
            .binary_search_by(|&i| {
                self.tensors
                    .get(i as usize)
                    .map_or("", |t| t.name(data))
                    .cmp(name)
            })
            .ok()?;
        self.tensors_by_name.get(pos).map(|&i| i as usize)
    }
}

/// Parses and validates a GGUF header in `data` (the whole file).
///
/// Checks everything ggml's reader checks, and more: magic, version (2 or
/// 3, either byte order), every count against the bytes left, UTF-8 keys
/// and tensor names, value types, booleans, array nesting depth, unique
/// keys and tensor names, `general.alignment` (a non-zero power-of-two
/// `u32`), dims, types, row sizes, byte sizes without overflow, and a data
/// layout in which each tensor starts where the previous one's padded data
/// ends and lies inside `data`.
///
/// # Errors
/// The first problem found, as an [`Error`] naming its byte offset.
pub fn parse(data: &[u8]) -> Result<Index> {
    parse_header(data, data.len() as u64)
}

/// [`parse`] over the first bytes of a file of `file_len` bytes: `header`
/// must hold at least the magic, the metadata and the tensor infos; the
/// tensors' data is checked to lie inside `file_len`, not inside `header`.
/// What a streamed file is parsed with, before any tensor data is read.
///
/// # Errors
/// As [`parse`]; a `header` cut short is [`Error::UnexpectedEof`] or
/// [`Error::CountTooLarge`], as a file cut there would be.
pub fn parse_header(data: &[u8], file_len: u64) -> Result<Index> {
    let (version, order) = read_preamble(data)?;
    let mut r = Reader::new(data, 8, order);
    let n_tensors = r.count("tensor count", MIN_TENSOR_INFO_BYTES)?;
    let n_entries = r.count("metadata count", MIN_ENTRY_BYTES)?;

    // Both counts are bounded by the bytes left, so these allocations are
    // bounded by the input size.
    let mut entries = Vec::with_capacity(usize::try_from(n_entries).unwrap_or(0));
    for _ in 0..n_entries {
        entries.push(read_entry(&mut r)?);
    }
    let entries_by_key = sorted_unique(
        &entries,
        |e| e.key(data).as_bytes(),
        |e| Error::DuplicateKey {
            key: e.key(data).to_owned(),
            offset: e.entry_offset as u64,
        },
    )?;
    let metadata = Metadata {
        data,
        order,
        entries: &entries,
        by_key: &entries_by_key,
    };
    let alignment = read_alignment(&metadata)?;

    // The tensor count was checked at byte 8 against everything after it;
    // check it again against what the metadata left, before reserving.
    let max_tensors = (r.remaining() as u64) / MIN_TENSOR_INFO_BYTES;
    if n_tensors > max_tensors {
        return Err(Error::CountTooLarge {
            what: "tensor count",
            count: n_tensors,
            offset: 8,
            max: max_tensors,
        });
    }
    let mut tensors = Vec::with_capacity(usize::try_from(n_tensors).unwrap_or(0));
    for _ in 0..n_tensors {
        tensors.push(read_tensor_info(&mut r)?);
    }
    let tensors_by_name = sorted_unique(
        &tensors,
        |t| t.name(data).as_bytes(),
        |t| Error::DuplicateTensor {
            tensor: t.name(data).to_owned(),
            offset: t.info_offset,
        },
    )?;

    let data_start = if tensors.is_empty() {
        r.pos()
    } else {
        data_section_start(&r, alignment, file_len)?
    };
    lay_out_tensors(&tensors, data, file_len, data_start, alignment)?;
    Ok(Index {
        version,
        order,
        alignment,
        entries,
        entries_by_key,
        tensors,
        tensors_by_name,
        data_start,
    })
}

/// Checks the magic and reads the version, detecting the byte order the way
/// the `gguf` Python package does: a version whose low 16 bits are zero when
/// read little-endian is a big-endian file.
fn read_preamble(data: &[u8]) -> Result<(u32, ByteOrder)> {
    let mut r = Reader::new(data, 0, ByteOrder::Little);
    let magic = r.bytes(4, "magic")?;
    if magic != MAGIC {
        let mut found = [0u8; 4];
        found.copy_from_slice(magic);
        return Err(Error::BadMagic { found });
    }
    let raw: u32 = r.num("version")?;
    let (version, order) = if raw & 0xFFFF == 0 {
        (raw.swap_bytes(), ByteOrder::Big)
    } else {
        (raw, ByteOrder::Little)
    };
    if !(2..=3).contains(&version) {
        return Err(Error::UnsupportedVersion {
            version,
            raw: raw.to_le_bytes(),
        });
    }
    Ok((version, order))
}

fn read_entry(r: &mut Reader<'_>) -> Result<MetadataEntry> {
    let entry_offset = r.pos();
    let key = r.string("metadata key")?;
    let key_start = entry_offset.saturating_add(8);
    std::str::from_utf8(key).map_err(|_| Error::InvalidUtf8 {
        what: "metadata key",
        offset: key_start as u64,
    })?;
    let value_type = read_value_type(r)?;
    read_value(r, value_type, 0)?;
    Ok(MetadataEntry {
        entry_offset,
        key_len: key.len(),
        value_end: r.pos(),
        value_type,
    })
}

fn read_alignment(metadata: &Metadata<'_>) -> Result<u32> {
    let Some(entry) = metadata.entry(ALIGNMENT_KEY) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let offset = entry.value_offset();
    match metadata.get(ALIGNMENT_KEY) {
        Some(Value::U32(value)) if value.is_power_of_two() => Ok(value),
        Some(Value::U32(value)) => Err(Error::InvalidAlignment { value, offset }),
        other => Err(Error::AlignmentType {
            found: other.map_or(ValueType::U32, |v| v.value_type()),
            offset,
        }),
    }
}

/// Indices of `items` sorted by `key`, or the error `dup` makes for the later
/// (in file order) of the first two equal keys found.
fn sorted_unique<'data, T>(
    items: &[T],
    key: impl Fn(&T) -> &'data [u8],
    dup: impl Fn(&T) -> Error,
) -> Result<Vec<u32>> {
    let key_at = |i: u32| items.get(i as usize).map_or(&[][..], &key);
    let count = u32::try_from(items.len()).map_err(|_| Error::CountTooLarge {
        what: "entries",
        count: items.len() as u64,
        offset: 0,
        max: u64::from(u32::MAX),
    })?;
    let mut order: Vec<u32> = (0..count).collect();
    // Stable, so equal keys stay in file order and the second is the later.
    order.sort_by(|&a, &b| key_at(a).cmp(key_at(b)));
    for pair in order.windows(2) {
        if let [a, b] = *pair {
            if key_at(a) == key_at(b) {
                if let Some(item) = items.get(b.max(a) as usize) {
                    return Err(dup(item));
                }
            }
        }
    }
    Ok(order)
}

/// The data section starts at the first multiple of the alignment after the
/// tensor infos.
fn data_section_start(r: &Reader<'_>, alignment: u32, file_len: u64) -> Result<usize> {
    let pos = r.pos();
    let aligned = align_up(pos as u64, alignment);
    match aligned.and_then(|s| usize::try_from(s).ok()) {
        Some(start) if start as u64 <= file_len => Ok(start),
        _ => Err(Error::UnexpectedEof {
            what: "padding before tensor data",
            offset: pos as u64,
            needed: aligned.map_or(u64::from(alignment), |s| s.saturating_sub(pos as u64)),
            available: file_len.saturating_sub(pos as u64),
        }),
    }
}

/// Checks the layout ggml requires (each tensor at the running padded size,
/// which rules out overlaps) and that every tensor's bytes are inside
/// the file's `file_len` bytes.
fn lay_out_tensors(
    tensors: &[TensorInfo],
    data: &[u8],
    file_len: u64,
    data_start: usize,
    alignment: u32,
) -> Result<()> {
    let mut expected = 0u64;
    for t in tensors {
        let name = t.name(data);
        let tensor = || name.to_owned();
        let offset = t.offset_field();
        if t.data_offset.checked_rem(u64::from(alignment)) != Some(0) {
            return Err(Error::DataOffsetNotAligned {
                tensor: tensor(),
                data_offset: t.data_offset,
                alignment,
                offset,
            });
        }
        if t.data_offset != expected {
            return Err(Error::TensorOffsetMismatch {
                tensor: tensor(),
                data_offset: t.data_offset,
                expected,
                offset,
            });
        }
        let n_bytes = t.n_bytes();
        let start = (data_start as u64).checked_add(t.data_offset);
        let end = start.and_then(|s| s.checked_add(n_bytes));
        if !matches!(end, Some(end) if end <= file_len) {
            return Err(Error::TensorOutOfBounds {
                tensor: tensor(),
                start: start.unwrap_or(u64::MAX),
                end: end.unwrap_or(u64::MAX),
                len: file_len,
            });
        }
        expected = expected
            .checked_add(n_bytes)
            .and_then(|e| align_up(e, alignment))
            .ok_or_else(|| Error::SizeOverflow {
                tensor: tensor(),
                what: "padded data size",
                offset: t.info_offset,
            })?;
    }
    Ok(())
}

/// `value` rounded up to a multiple of `alignment` (a power of two), or
/// `None` on overflow.
pub(crate) fn align_up(value: u64, alignment: u32) -> Option<u64> {
    let mask = u64::from(alignment).checked_sub(1)?;
    value.checked_add(mask).map(|v| v & !mask)
}
