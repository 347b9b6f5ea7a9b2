//! [`GgufWriter`]: builds valid GGUF v3 files.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::atomic::AtomicFile;
use crate::dtype::GgmlType;
use crate::error::{Error, Result, WriteRefusal};
use crate::format::{
    align_up, ArrayView, ByteOrder, Value, ValueType, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC,
    MAX_ARRAY_DEPTH, MAX_DIMS, MAX_TENSOR_NAME_LEN,
};

/// An owned metadata value, for writing.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    /// String bytes (UTF-8 is not required of values, only of keys).
    String(Vec<u8>),
    Array(MetaArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// An owned metadata array: an element type and elements of that type.
#[derive(Clone, Debug)]
pub struct MetaArray {
    element_type: ValueType,
    items: Items,
}

/// The elements of a [`MetaArray`].
#[derive(Clone, Debug)]
enum Items {
    /// Made by the caller.
    Values(Vec<MetaValue>),
    /// Copied from a file's array ([`MetaValue::from_value`]) as encoded
    /// there: written back verbatim in the same byte order, so a
    /// 262,144-token vocabulary costs one buffer, not an allocation per
    /// token. Decoded only if asked for ([`MetaArray::items`]).
    Encoded(EncodedItems),
}

#[derive(Clone, Debug)]
struct EncodedItems {
    /// The elements' bytes, validated when the file was parsed.
    bytes: Vec<u8>,
    len: u64,
    order: ByteOrder,
    /// How deeply arrays nest in the array (1 without nested arrays).
    nesting: usize,
    decoded: std::sync::OnceLock<Vec<MetaValue>>,
}

impl EncodedItems {
    /// A view of the elements, as the file had them.
    fn view(&self, element_type: ValueType) -> ArrayView<'_> {
        ArrayView::over_validated(element_type, self.len, &self.bytes, self.order)
    }
}

impl PartialEq for MetaArray {
    /// Arrays are equal when their element types and elements are,
    /// however they are held.
    fn eq(&self, other: &Self) -> bool {
        self.element_type == other.element_type && self.items() == other.items()
    }
}

impl MetaArray {
    /// An array of `element_type` holding `items`.
    ///
    /// # Errors
    /// [`Error::Write`] if an item has another type.
    pub fn new(element_type: ValueType, items: Vec<MetaValue>) -> Result<Self> {
        if let Some(bad) = items.iter().find(|v| v.value_type() != element_type) {
            return Err(Error::Write {
                what: format!("array of {element_type} holding a {}", bad.value_type()),
                reason: WriteRefusal::MixedArray,
            });
        }
        Ok(MetaArray {
            element_type,
            items: Items::Values(items),
        })
    }

    /// An owned copy of an array read from a file, kept as encoded there.
    fn from_view(view: &ArrayView<'_>) -> Self {
        MetaArray {
            element_type: view.element_type(),
            items: Items::Encoded(EncodedItems {
                bytes: view.raw_bytes().to_vec(),
                len: view.len(),
                order: view.byte_order(),
                nesting: view_nesting(view),
                decoded: std::sync::OnceLock::new(),
            }),
        }
    }

    /// How many elements.
    fn len(&self) -> u64 {
        match &self.items {
            Items::Values(items) => items.len() as u64,
            Items::Encoded(encoded) => encoded.len,
        }
    }

    /// The element type.
    pub fn element_type(&self) -> ValueType {
        self.element_type
    }

    /// The elements (decoded on first use for an array copied from a file).
    pub fn items(&self) -> &[MetaValue] {
        match &self.items {
            Items::Values(items) => items,
            Items::Encoded(encoded) => encoded.decoded.get_or_init(|| {
                encoded
                    .view(self.element_type)
                    .iter()
                    .map(|v| MetaValue::from_value(&v))
                    .collect()
            }),
        }
    }
}

impl MetaValue {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            MetaValue::U8(_) => ValueType::U8,
            MetaValue::I8(_) => ValueType::I8,
            MetaValue::U16(_) => ValueType::U16,
            MetaValue::I16(_) => ValueType::I16,
            MetaValue::U32(_) => ValueType::U32,
            MetaValue::I32(_) => ValueType::I32,
            MetaValue::F32(_) => ValueType::F32,
            MetaValue::Bool(_) => ValueType::Bool,
            MetaValue::String(_) => ValueType::String,
            MetaValue::Array(_) => ValueType::Array,
            MetaValue::U64(_) => ValueType::U64,
            MetaValue::I64(_) => ValueType::I64,
            MetaValue::F64(_) => ValueType::F64,
        }
    }

    /// A string value from UTF-8 text.
    pub fn string(s: impl Into<String>) -> Self {
        MetaValue::String(s.into().into_bytes())
    }

    /// An array of strings.
    pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        let items = items
            .into_iter()
            .map(|s| MetaValue::string(s.as_ref()))
            .collect();
        MetaValue::Array(MetaArray {
            element_type: ValueType::String,
            items: Items::Values(items),
        })
    }

    /// An owned copy of a value read from a file.
    pub fn from_value(value: &Value<'_>) -> Self {
        match *value {
            Value::U8(v) => MetaValue::U8(v),
            Value::I8(v) => MetaValue::I8(v),
            Value::U16(v) => MetaValue::U16(v),
            Value::I16(v) => MetaValue::I16(v),
            Value::U32(v) => MetaValue::U32(v),
            Value::I32(v) => MetaValue::I32(v),
            Value::F32(v) => MetaValue::F32(v),
            Value::Bool(v) => MetaValue::Bool(v),
            Value::String(s) => MetaValue::String(s.as_bytes().to_vec()),
            Value::Array(a) => MetaValue::Array(MetaArray::from_view(&a)),
            Value::U64(v) => MetaValue::U64(v),
            Value::I64(v) => MetaValue::I64(v),
            Value::F64(v) => MetaValue::F64(v),
        }
    }
}

macro_rules! meta_from {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<$t> for MetaValue {
            fn from(v: $t) -> Self {
                MetaValue::$variant(v)
            }
        }

        impl From<Vec<$t>> for MetaValue {
            fn from(items: Vec<$t>) -> Self {
                MetaValue::Array(MetaArray {
                    element_type: ValueType::$variant,
                    items: Items::Values(items.into_iter().map(MetaValue::$variant).collect()),
                })
            }
        }
    )*};
}
meta_from!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32, bool => Bool, u64 => U64, i64 => I64, f64 => F64);

impl From<&str> for MetaValue {
    fn from(s: &str) -> Self {
        MetaValue::string(s)
    }
}

impl From<String> for MetaValue {
    fn from(s: String) -> Self {
        MetaValue::String(s.into_bytes())
    }
}

impl From<MetaArray> for MetaValue {
    fn from(a: MetaArray) -> Self {
        MetaValue::Array(a)
    }
}

/// How deeply arrays nest in `value` (0 for a scalar).
fn nesting_depth(value: &MetaValue) -> usize {
    match value {
        MetaValue::Array(a) => match &a.items {
            Items::Values(items) => 1 + items.iter().map(nesting_depth).max().unwrap_or(0),
            Items::Encoded(encoded) => encoded.nesting,
        },
        _ => 0,
    }
}

/// How deeply arrays nest in a file's array (1 without nested arrays).
fn view_nesting(view: &ArrayView<'_>) -> usize {
    if view.element_type() != ValueType::Array {
        return 1;
    }
    let inner = view.iter().filter_map(|v| match v {
        Value::Array(a) => Some(view_nesting(&a)),
        _ => None,
    });
    1 + inner.max().unwrap_or(0)
}

struct PendingTensor<'a> {
    name: String,
    dtype: GgmlType,
    dims: Vec<u64>,
    /// Bytes of data: what dims and type make.
    len: u64,
    data: TensorData<'a>,
}

/// Where a tensor's bytes come from when the file is written.
enum TensorData<'a> {
    Bytes(Cow<'a, [u8]>),
    /// From the callback given to [`GgufWriter::write_to_with`].
    Later,
}

/// Writes GGUF version 3 files: metadata of every type, tensors of every
/// type from their raw bytes (given, or written by a callback when the file
/// is), a chosen alignment and byte order.
///
/// Writing streams: the header is encoded in memory (its size, not the
/// file's), then each tensor's bytes go straight to the output, so a model
/// larger than memory can be written from tensors supplied by callbacks
/// ([`GgufWriter::declare_tensor`], [`GgufWriter::write_to_with`]).
/// [`GgufWriter::write_file`] replaces its target atomically.
///
/// ```
/// use ggufmap::{GgmlType, Gguf, GgufWriter};
///
/// let weights: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let mut writer = GgufWriter::new();
/// writer.add_metadata("general.architecture", "demo")?;
/// writer.add_tensor("w", GgmlType::F32, &[3, 2], bytemuck::cast_slice(&weights))?;
/// let bytes = writer.to_bytes()?;
///
/// let file = Gguf::from_bytes(&bytes)?;
/// assert_eq!(file.metadata().get_str("general.architecture")?, "demo");
/// assert_eq!(file.tensor("w")?.shape(), vec![2, 3]);
/// # Ok::<(), ggufmap::Error>(())
/// ```
pub struct GgufWriter<'a> {
    order: ByteOrder,
    alignment: u32,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<PendingTensor<'a>>,
    /// Keys and tensor names added so far: duplicates found in O(1) each.
    keys: HashSet<String>,
    names: HashSet<String>,
    /// Where among the metadata entries `general.alignment` goes, when
    /// placed ([`GgufWriter::add_alignment_key`]); else first, and only
    /// when the alignment is not the default.
    alignment_at: Option<usize>,
    /// Whether the last tensor's data is padded to the alignment too.
    pad_end: bool,
}

impl Default for GgufWriter<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> GgufWriter<'a> {
    /// An empty little-endian file with the default alignment (32).
    pub fn new() -> Self {
        GgufWriter {
            order: ByteOrder::Little,
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
            keys: HashSet::new(),
            names: HashSet::new(),
            alignment_at: None,
            pad_end: false,
        }
    }

    /// Sets the alignment of tensor data; a value other than 32 is recorded
    /// as `general.alignment`.
    ///
    /// # Errors
    /// [`Error::Write`] unless `alignment` is a non-zero power of two.
    pub fn set_alignment(&mut self, alignment: u32) -> Result<&mut Self> {
        if !alignment.is_power_of_two() {
            return Err(Error::Write {
                what: format!("alignment {alignment}"),
                reason: WriteRefusal::AlignmentNotPowerOfTwo,
            });
        }
        self.alignment = alignment;
        Ok(self)
    }

    /// Records `general.alignment` (a `u32`: the alignment the file is
    /// written with) here, after the metadata entries added so far, and
    /// even when the alignment is the default 32. Without it the key is
    /// written first, and only for another alignment; with it a copy of a
    /// file that holds the key where it holds it can be byte for byte the
    /// same.
    ///
    /// # Errors
    /// [`Error::Write`] if the key was already placed.
    pub fn add_alignment_key(&mut self) -> Result<&mut Self> {
        if self.alignment_at.is_some() {
            return Err(Error::Write {
                what: format!("metadata key {ALIGNMENT_KEY:?}"),
                reason: WriteRefusal::DuplicateKey,
            });
        }
        self.alignment_at = Some(self.metadata.len());
        Ok(self)
    }

    /// Pads the last tensor's data to the alignment too, as llama.cpp and
    /// the `gguf` Python package do; by default the file ends with the last
    /// tensor's bytes. Readers accept either.
    pub fn pad_end(&mut self, yes: bool) -> &mut Self {
        self.pad_end = yes;
        self
    }

    /// Sets the byte order of numbers in the file (tensor bytes are written
    /// as given).
    pub fn set_byte_order(&mut self, order: ByteOrder) -> &mut Self {
        self.order = order;
        self
    }

    /// Adds a metadata entry.
    ///
    /// # Errors
    /// [`Error::Write`] for a key already added or `general.alignment` (set
    /// it with [`GgufWriter::set_alignment`], place it with
    /// [`GgufWriter::add_alignment_key`]).
    pub fn add_metadata(
        &mut self,
        key: impl Into<String>,
        value: impl Into<MetaValue>,
    ) -> Result<&mut Self> {
        let key = key.into();
        if key == ALIGNMENT_KEY {
            return Err(Error::Write {
                what: key,
                reason: WriteRefusal::AlignmentKey,
            });
        }
        let value = value.into();
        if nesting_depth(&value) > MAX_ARRAY_DEPTH {
            return Err(Error::Write {
                what: format!("metadata key {key:?}"),
                reason: WriteRefusal::NestedTooDeep,
            });
        }
        if self.keys.contains(&key) {
            return Err(Error::Write {
                what: format!("metadata key {key:?}"),
                reason: WriteRefusal::DuplicateKey,
            });
        }
        self.keys.insert(key.clone());
        self.metadata.push((key, value));
        Ok(self)
    }

    /// Adds a tensor with dims `dims` (ne0 first) whose encoded bytes are
    /// `data` (in the file's byte order).
    ///
    /// # Errors
    /// [`Error::Write`] for a duplicate or too long name, more than 4 dims,
    /// a row that is not whole blocks, or `data` of the wrong length.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dtype: GgmlType,
        dims: &[u64],
        data: impl Into<Cow<'a, [u8]>>,
    ) -> Result<&mut Self> {
        let data = data.into();
        let name = name.into();
        let len = checked_tensor_bytes(&name, dtype, dims)?;
        if len != data.len() as u64 {
            return Err(Error::Write {
                what: format!("tensor {name:?}"),
                reason: WriteRefusal::DataLength,
            });
        }
        self.push_tensor(name, dtype, dims, len, TensorData::Bytes(data))
    }

    /// Adds a tensor with dims `dims` (ne0 first) whose encoded bytes the
    /// caller writes when the file is written: the callback given to
    /// [`GgufWriter::write_to_with`] or [`GgufWriter::write_file_with`]
    /// writes exactly the bytes dims and type make, in the file's byte
    /// order. Memory then holds none of the tensor's data: the callback can
    /// copy it from a file, a stream or another model.
    ///
    /// # Errors
    /// [`Error::Write`] as [`GgufWriter::add_tensor`].
    pub fn declare_tensor(
        &mut self,
        name: impl Into<String>,
        dtype: GgmlType,
        dims: &[u64],
    ) -> Result<&mut Self> {
        let name = name.into();
        let len = checked_tensor_bytes(&name, dtype, dims)?;
        self.push_tensor(name, dtype, dims, len, TensorData::Later)
    }

    fn push_tensor(
        &mut self,
        name: String,
        dtype: GgmlType,
        dims: &[u64],
        len: u64,
        data: TensorData<'a>,
    ) -> Result<&mut Self> {
        if self.names.contains(&name) {
            return Err(Error::Write {
                what: format!("tensor {name:?}"),
                reason: WriteRefusal::DuplicateName,
            });
        }
        self.names.insert(name.clone());
        self.tensors.push(PendingTensor {
            name,
            dtype,
            dims: dims.to_vec(),
            len,
            data,
        });
        Ok(self)
    }

    /// Writes the file to `out`, streaming: memory holds the header, not
    /// the file (wrap an unbuffered `out` in a `BufWriter`).
    ///
    /// # Errors
    /// [`Error::Write`] if sizes overflow or a tensor was declared without
    /// its bytes ([`GgufWriter::declare_tensor`]: write the file with
    /// [`GgufWriter::write_to_with`]); [`Error::Io`] if writing fails.
    pub fn write_to(&self, out: impl Write) -> Result<()> {
        self.write_to_with(out, |name, _| {
            Err(std::io::Error::other(format!(
                "tensor {name:?} was declared without its bytes; write the file with write_to_with"
            )))
        })
    }

    /// [`GgufWriter::write_to`], calling `fill(name, out)` for each tensor
    /// added by [`GgufWriter::declare_tensor`], in order, to write its
    /// bytes. `fill` may write them in as many pieces as it likes.
    ///
    /// # Errors
    /// As [`GgufWriter::write_to`]; an error `fill` returns ends the
    /// writing ([`Error::Io`]); a `fill` that writes another number of
    /// bytes than its tensor's dims and type make is an [`Error::Write`]
    /// naming the tensor.
    pub fn write_to_with(
        &self,
        mut out: impl Write,
        mut fill: impl FnMut(&str, &mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        self.write_body(&mut out, |t, out| {
            let mut counted = Counted {
                out,
                written: 0,
                limit: t.len,
                overflowed: false,
            };
            let result = fill(&t.name, &mut counted);
            if !counted.overflowed {
                result.map_err(Error::stream)?;
            }
            if counted.overflowed || counted.written != t.len {
                return Err(Error::Write {
                    what: format!("tensor {:?}", t.name),
                    reason: WriteRefusal::WrongByteCount,
                });
            }
            Ok(())
        })?;
        out.flush().map_err(Error::stream)
    }

    /// The header, then each tensor's bytes (given, or written by
    /// `declared` for a declared tensor) and the padding after it.
    fn write_body<W: Write>(
        &self,
        out: &mut W,
        mut declared: impl FnMut(&PendingTensor<'a>, &mut W) -> Result<()>,
    ) -> Result<()> {
        out.write_all(&self.header()?).map_err(Error::stream)?;
        for (i, t) in self.tensors.iter().enumerate() {
            match &t.data {
                TensorData::Bytes(bytes) => out.write_all(bytes).map_err(Error::stream)?,
                TensorData::Later => declared(t, out)?,
            }
            if self.pad_end || i + 1 < self.tensors.len() {
                write_zeros(out, self.padding_after(i)).map_err(Error::stream)?;
            }
        }
        Ok(())
    }

    /// Writes the file at `path`, atomically and streaming: to a temporary
    /// file beside it, renamed over `path` once complete ([`AtomicFile`]).
    /// A failed write leaves whatever was at `path` untouched, and a
    /// [`Gguf`] that has the old file mapped keeps reading the old
    /// contents.
    ///
    /// [`Gguf`]: crate::Gguf
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written; [`Error::Write`] as
    /// [`GgufWriter::write_to`].
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<()> {
        self.write_file_with(path, |name, _| {
            Err(std::io::Error::other(format!(
                "tensor {name:?} was declared without its bytes; write the file with write_file_with"
            )))
        })
    }

    /// [`GgufWriter::write_file`], with the bytes of declared tensors
    /// written by `fill` as in [`GgufWriter::write_to_with`].
    ///
    /// # Errors
    /// As [`GgufWriter::write_file`] and [`GgufWriter::write_to_with`].
    pub fn write_file_with(
        &self,
        path: impl AsRef<Path>,
        fill: impl FnMut(&str, &mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: Some(path.to_owned()),
            source,
        };
        let file = AtomicFile::create(path).map_err(io)?;
        self.write_atomic_with(file, fill)
    }

    /// [`GgufWriter::write_file_with`] into an [`AtomicFile`] the caller
    /// made (so it chooses, say, which inputs the output may not be:
    /// [`AtomicFile::create_apart_from`]), committed once complete; a
    /// failure drops it, leaving its target as it was.
    ///
    /// # Errors
    /// As [`GgufWriter::write_file_with`].
    pub fn write_atomic_with(
        &self,
        mut out: AtomicFile,
        fill: impl FnMut(&str, &mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let path = out.target().to_owned();
        let io = |source| Error::Io {
            path: Some(path.clone()),
            source,
        };
        self.write_to_with(&mut out, fill).map_err(|e| match e {
            Error::Io { path: None, source } => io(source),
            other => other,
        })?;
        out.commit().map_err(io)
    }

    /// Writes the file into `out` and commits it, the bytes of each tensor
    /// added by [`GgufWriter::declare_tensor`] copied from a file:
    /// `source(name)` gives the file and the offset in it where they start.
    /// The copy goes through the kernel where the operating system offers
    /// one (`copy_file_range` on Linux, [`AtomicFile::copy_from`]), else
    /// through a bounded buffer: memory holds the header, none of the data.
    ///
    /// The caller makes `out`, so it chooses what the output may not be
    /// ([`AtomicFile::create_apart_from`]); a failure drops `out`, leaving
    /// its target as it was.
    ///
    /// # Errors
    /// As [`GgufWriter::write_file`]; an error `source` returns, or a
    /// source file that ends before a tensor's bytes do, is an
    /// [`Error::Io`] naming the target.
    pub fn write_copying<'f>(
        &self,
        mut out: AtomicFile,
        mut source: impl FnMut(&str) -> std::io::Result<(&'f File, u64)>,
    ) -> Result<()> {
        let path = out.target().to_owned();
        let io = |source| Error::Io {
            path: Some(path.clone()),
            source,
        };
        let sources = self
            .tensors
            .iter()
            .map(|t| match t.data {
                TensorData::Later => source(&t.name).map(Some),
                TensorData::Bytes(_) => Ok(None),
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(io)?;
        self.copy_body(&mut out, &sources).map_err(|e| match e {
            Error::Io { path: None, source } => io(source),
            other => other,
        })?;
        out.commit().map_err(io)
    }

    /// The header, then the tensors: given bytes written, declared ones
    /// copied from `sources`. Tensors that follow each other in the same
    /// source file, separated by exactly the padding the output needs and
    /// that padding all zeros there (a file whose metadata alone changed),
    /// are copied as one range: one system call for a whole data section.
    fn copy_body(&self, out: &mut AtomicFile, sources: &[Option<(&File, u64)>]) -> Result<()> {
        out.write_all(&self.header()?).map_err(Error::stream)?;
        let mut i = 0;
        while let Some(t) = self.tensors.get(i) {
            let last = match (&t.data, sources.get(i).copied().flatten()) {
                (TensorData::Bytes(bytes), _) => {
                    out.write_all(bytes).map_err(Error::stream)?;
                    i
                }
                (TensorData::Later, Some((file, start))) => {
                    let (last, len) = self
                        .contiguous_run(i, file, start, sources)
                        .map_err(Error::stream)?;
                    let copied = out.copy_from(file, start, len).map_err(Error::stream)?;
                    if copied != len {
                        return Err(Error::stream(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!(
                                "the source of tensor {:?} ends after {copied} of {len} bytes",
                                t.name
                            ),
                        )));
                    }
                    last
                }
                (TensorData::Later, None) => {
                    return Err(Error::stream(std::io::Error::other(format!(
                        "no source for tensor {:?}",
                        t.name
                    ))))
                }
            };
            if self.pad_end || last + 1 < self.tensors.len() {
                write_zeros(out, self.padding_after(last)).map_err(Error::stream)?;
            }
            i = last + 1;
        }
        Ok(())
    }

    /// Zero bytes the output has after tensor `i`'s data.
    fn padding_after(&self, i: usize) -> u64 {
        let len = self.tensors.get(i).map_or(0, |t| t.len);
        align_up(len, self.alignment).map_or(0, |end| end - len)
    }

    /// The last tensor of the run that starts at tensor `first` (at `start`
    /// in `file`) and the bytes from `start` to its end: each next tensor
    /// must come from `file` right after the previous one's output padding,
    /// and that padding must be zeros in `file`.
    fn contiguous_run(
        &self,
        first: usize,
        file: &File,
        start: u64,
        sources: &[Option<(&File, u64)>],
    ) -> std::io::Result<(usize, u64)> {
        let mut last = first;
        let mut end = start.saturating_add(self.tensors.get(first).map_or(0, |t| t.len));
        while let (Some(next), Some(Some((next_file, next_start)))) =
            (self.tensors.get(last + 1), sources.get(last + 1))
        {
            let gap = self.padding_after(last);
            let follows = std::ptr::eq(file, *next_file)
                && gap <= MAX_CHECKED_GAP
                && end.checked_add(gap) == Some(*next_start)
                && is_zeros(file, end, gap)?;
            if !follows {
                break;
            }
            end = next_start.saturating_add(next.len);
            last += 1;
        }
        Ok((last, end.saturating_sub(start)))
    }

    /// The whole file as bytes.
    ///
    /// # Errors
    /// As [`GgufWriter::write_to`].
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// The header: everything before the first tensor's data, padding
    /// included.
    fn header(&self) -> Result<Vec<u8>> {
        let mut w = Encoder {
            out: Vec::new(),
            order: self.order,
        };
        w.out.extend_from_slice(&MAGIC);
        w.num(3u32);
        w.num(self.tensors.len() as u64);
        let alignment_entry = (self.alignment_at.is_some() || self.alignment != DEFAULT_ALIGNMENT)
            .then_some(MetaValue::U32(self.alignment));
        w.num((self.metadata.len() + usize::from(alignment_entry.is_some())) as u64);
        let alignment_at = self.alignment_at.unwrap_or(0);
        for (i, (key, value)) in self.metadata.iter().enumerate() {
            if let (Some(entry), true) = (&alignment_entry, i == alignment_at) {
                w.entry(ALIGNMENT_KEY, entry);
            }
            w.entry(key, value);
        }
        if let (Some(entry), true) = (&alignment_entry, alignment_at >= self.metadata.len()) {
            w.entry(ALIGNMENT_KEY, entry);
        }
        let overflow = || Error::Write {
            what: "tensor data".into(),
            reason: WriteRefusal::SizeOverflow,
        };
        let mut offset = 0u64;
        for t in &self.tensors {
            w.bytes(t.name.as_bytes());
            w.num(t.dims.len() as u32);
            for &d in &t.dims {
                w.num(d);
            }
            w.num(t.dtype.id());
            w.num(offset);
            offset = t
                .len
                .checked_add(offset)
                .and_then(|end| align_up(end, self.alignment))
                .ok_or_else(overflow)?;
        }
        if !self.tensors.is_empty() {
            w.pad(self.alignment);
        }
        Ok(w.out)
    }
}

/// The bytes of a tensor of `dims` and `dtype`, or why it cannot be one.
fn checked_tensor_bytes(name: &str, dtype: GgmlType, dims: &[u64]) -> Result<u64> {
    let fail = |reason| {
        Err(Error::Write {
            what: format!("tensor {name:?}"),
            reason,
        })
    };
    if name.len() >= MAX_TENSOR_NAME_LEN {
        return fail(WriteRefusal::NameTooLong);
    }
    let dims_ok = dims.iter().all(|&d| i64::try_from(d).is_ok());
    if dims.len() > MAX_DIMS || !dims_ok || GgmlType::element_count(dims).is_none() {
        return fail(WriteRefusal::BadDims);
    }
    match dtype.tensor_bytes(dims) {
        Some(n) => Ok(n),
        None => fail(WriteRefusal::RowNotWholeBlocks),
    }
}

/// Most padding bytes between two tensors that [`GgufWriter::write_copying`]
/// reads to check they are zeros before copying them with the tensors; a
/// larger gap (a huge alignment) ends the run instead.
const MAX_CHECKED_GAP: u64 = 64 * 1024;

/// True when `file` holds `len` (at most [`MAX_CHECKED_GAP`]) zero bytes at
/// `offset`. Moves `file`'s cursor.
fn is_zeros(mut file: &File, offset: u64, len: u64) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
    file.seek(SeekFrom::Start(offset))?;
    match file.read_exact(&mut bytes) {
        Ok(()) => Ok(bytes.iter().all(|&b| b == 0)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `n` zero bytes.
fn write_zeros(out: &mut impl Write, n: u64) -> std::io::Result<()> {
    std::io::copy(&mut std::io::repeat(0).take(n), out).map(drop)
}

/// A writer that counts what passes through and refuses more than `limit`
/// bytes: a tensor callback cannot write past its tensor.
struct Counted<'w, W: Write> {
    out: &'w mut W,
    written: u64,
    limit: u64,
    /// Set when a write would have passed `limit`.
    overflowed: bool,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.limit - self.written;
        if buf.len() as u64 > room {
            self.overflowed = true;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a tensor callback wrote more bytes than its tensor holds",
            ));
        }
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

struct Encoder {
    out: Vec<u8>,
    order: ByteOrder,
}

trait Encode: Copy {
    fn encode(self, order: ByteOrder, out: &mut Vec<u8>);
}

macro_rules! encode {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(self, order: ByteOrder, out: &mut Vec<u8>) {
                match order {
                    ByteOrder::Little => out.extend_from_slice(&self.to_le_bytes()),
                    ByteOrder::Big => out.extend_from_slice(&self.to_be_bytes()),
                }
            }
        }
    )*};
}
encode!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

impl Encoder {
    fn num<T: Encode>(&mut self, v: T) {
        v.encode(self.order, &mut self.out);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.num(b.len() as u64);
        self.out.extend_from_slice(b);
    }

    fn pad(&mut self, alignment: u32) {
        let len = self.out.len() as u64;
        let target = align_up(len, alignment).unwrap_or(len);
        self.out.resize(target as usize, 0);
    }

    fn entry(&mut self, key: &str, value: &MetaValue) {
        self.bytes(key.as_bytes());
        self.num(value.value_type().id());
        self.value(value);
    }

    fn value(&mut self, value: &MetaValue) {
        match value {
            MetaValue::U8(v) => self.num(*v),
            MetaValue::I8(v) => self.num(*v),
            MetaValue::U16(v) => self.num(*v),
            MetaValue::I16(v) => self.num(*v),
            MetaValue::U32(v) => self.num(*v),
            MetaValue::I32(v) => self.num(*v),
            MetaValue::F32(v) => self.num(*v),
            MetaValue::Bool(v) => self.num(u8::from(*v)),
            MetaValue::String(s) => self.bytes(s),
            MetaValue::Array(a) => {
                self.num(a.element_type.id());
                self.num(a.len());
                match &a.items {
                    Items::Encoded(encoded) if encoded.order == self.order => {
                        self.out.extend_from_slice(&encoded.bytes);
                    }
                    _ => a.items().iter().for_each(|item| self.value(item)),
                }
            }
            MetaValue::U64(v) => self.num(*v),
            MetaValue::I64(v) => self.num(*v),
            MetaValue::F64(v) => self.num(*v),
        }
    }
}
