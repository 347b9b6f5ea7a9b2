//! The one error type of the crate.
//!
//! Every error found while parsing a file names what was wrong and the byte
//! offset (from the start of the file) where the offending field starts.

use std::path::PathBuf;

use crate::dtype::GgmlType;
use crate::format::ValueType;

impl Error {
    /// An I/O error on a stream the caller gave.
    pub(crate) fn stream(source: std::io::Error) -> Self {
        Error::Io { path: None, source }
    }

    /// This error, naming `name` as its tensor where it is one that can
    /// name a tensor and does not yet.
    pub(crate) fn in_tensor(mut self, name: &str) -> Self {
        if let Error::Unsupported { tensor, .. }
        | Error::LengthMismatch { tensor, .. }
        | Error::Pool { tensor, .. } = &mut self
        {
            tensor.get_or_insert_with(|| name.to_owned());
        }
        self
    }
}

impl From<crate::pool::PoolError> for Error {
    fn from(source: crate::pool::PoolError) -> Self {
        Error::Pool {
            tensor: None,
            source,
        }
    }
}

/// `tensor "name": ` where there is a tensor, to start a message with.
fn in_tensor(tensor: &Option<String>) -> String {
    tensor
        .as_ref()
        .map_or_else(String::new, |t| format!("tensor {t:?}: "))
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while opening, parsing or using a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, mapping or writing a file or a stream failed.
    #[error("{}", match path { Some(path) => format!("cannot access {}", path.display()), None => "i/o error on stream".to_owned() })]
    Io {
        /// The file; `None` for a stream (a reader or writer the caller
        /// gave).
        path: Option<PathBuf>,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The path names something other than a regular file (a directory, a
    /// FIFO, a socket, a device): refused before it is opened for reading,
    /// which could block forever on a FIFO.
    #[error("{} is {kind}, not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is: `"a directory"`, `"a FIFO"`, `"a socket"`, ...
        kind: &'static str,
    },
    /// A stream read into memory is longer than the limit the caller set.
    #[error("stream is longer than the limit of {limit} bytes")]
    StreamTooLong {
        /// The limit, in bytes.
        limit: u64,
    },

    /// The file does not start with `GGUF`.
    #[error("not a GGUF file: magic at byte 0 is {found:02x?}, expected \"GGUF\"")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A GGUF version other than 2 or 3.
    #[error(
        "unsupported GGUF version at byte 4: bytes {raw:02x?} read {} little-endian, {} big-endian (supported: 2 and 3)",
        u32::from_le_bytes(*raw),
        u32::from_be_bytes(*raw)
    )]
    UnsupportedVersion {
        /// The version read in the byte order the file seems to use (big
        /// endian when the low 16 bits read little-endian are zero).
        version: u32,
        /// The four bytes of the version field.
        raw: [u8; 4],
    },
    /// A field runs past the end of the data.
    #[error("unexpected end of data reading {what} at byte {offset}: need {needed} bytes, {available} left")]
    UnexpectedEof {
        /// The field being read.
        what: &'static str,
        /// Where it starts.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the data.
        available: u64,
    },
    /// A count (of keys, tensors, array elements, string bytes) that the
    /// remaining bytes cannot possibly hold.
    #[error(
        "{what} {count} at byte {offset} exceeds what the remaining bytes can hold (at most {max})"
    )]
    CountTooLarge {
        /// What is counted.
        what: &'static str,
        /// The count read.
        count: u64,
        /// Where the count starts.
        offset: u64,
        /// The largest count the remaining bytes allow.
        max: u64,
    },
    /// A string that is not UTF-8 where UTF-8 is required: a metadata key
    /// or tensor name while parsing, or a metadata string value asked for as
    /// `&str`.
    #[error("{what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// `"metadata key"`, `"tensor name"` or `"metadata string"`.
        what: &'static str,
        /// Where the string's bytes start.
        offset: u64,
    },
    /// A metadata value type id outside 0..=12.
    #[error("unknown metadata value type {found} at byte {offset}")]
    UnknownValueType {
        /// The id read.
        found: u32,
        /// Where it starts.
        offset: u64,
    },
    /// A boolean byte other than 0 or 1.
    #[error("invalid boolean {found} at byte {offset} (expected 0 or 1)")]
    InvalidBool {
        /// The byte read.
        found: u8,
        /// Where it is.
        offset: u64,
    },
    /// Arrays nested deeper than [`crate::format::MAX_ARRAY_DEPTH`].
    #[error("arrays nested deeper than {max} at byte {offset}")]
    NestingTooDeep {
        /// Where the too-deep array starts.
        offset: u64,
        /// The limit.
        max: usize,
    },
    /// The same metadata key twice.
    #[error("duplicate metadata key {key:?} at byte {offset}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where its second occurrence starts.
        offset: u64,
    },
    /// `general.alignment` is not a `u32`.
    #[error("general.alignment at byte {offset} has type {found}, expected u32")]
    AlignmentType {
        /// The type found.
        found: ValueType,
        /// Where the value starts.
        offset: u64,
    },
    /// `general.alignment` is zero or not a power of two.
    #[error("general.alignment {value} at byte {offset} is not a non-zero power of two")]
    InvalidAlignment {
        /// The value.
        value: u32,
        /// Where the value starts.
        offset: u64,
    },

    /// A tensor name of [`crate::format::MAX_TENSOR_NAME_LEN`] bytes or more.
    #[error("tensor name at byte {offset} is {len} bytes long; ggml allows at most {max}")]
    NameTooLong {
        /// Its length.
        len: u64,
        /// The limit.
        max: usize,
        /// Where the name starts.
        offset: u64,
    },
    /// The same tensor name twice.
    #[error("duplicate tensor name {tensor:?} at byte {offset}")]
    DuplicateTensor {
        /// The name.
        tensor: String,
        /// Where its second tensor info starts.
        offset: u64,
    },
    /// More than 4 dimensions.
    #[error("tensor {tensor:?} has {n_dims} dimensions at byte {offset}; ggml allows at most 4")]
    TooManyDims {
        /// The tensor.
        tensor: String,
        /// The count read.
        n_dims: u32,
        /// Where the count starts.
        offset: u64,
    },
    /// A dimension that does not fit ggml's signed 64-bit sizes.
    #[error(
        "tensor {tensor:?} dimension {axis} is {value} at byte {offset}, larger than i64::MAX"
    )]
    InvalidDim {
        /// The tensor.
        tensor: String,
        /// Which dimension (0 = ne0).
        axis: usize,
        /// The value read.
        value: u64,
        /// Where it starts.
        offset: u64,
    },
    /// An element or byte count that overflows 64 bits.
    #[error("tensor {tensor:?} at byte {offset}: {what} overflows 64 bits")]
    SizeOverflow {
        /// The tensor.
        tensor: String,
        /// What overflowed.
        what: &'static str,
        /// Where its tensor info starts.
        offset: u64,
    },
    /// A ggml type id this crate does not know: one ggml has removed
    /// (`removed`), or one it never had. Read from a file, it names the
    /// tensor and the byte offset of its type field; from
    /// [`GgmlType::try_from`], neither.
    #[error("{}", unknown_type_message(*id, *removed, tensor.as_deref(), *offset))]
    UnknownType {
        /// The id.
        id: u32,
        /// True for an id ggml once used and has removed.
        removed: bool,
        /// The tensor whose type it is, for an id read from a file.
        tensor: Option<String>,
        /// Where the id starts in the file, for an id read from a file.
        offset: Option<u64>,
    },
    /// A row length that is not a whole number of blocks.
    #[error("tensor {tensor:?} at byte {offset}: ne0 = {ne0} is not a multiple of the {dtype} block size {block}")]
    RowNotBlockAligned {
        /// The tensor.
        tensor: String,
        /// Its type.
        dtype: GgmlType,
        /// Its row length.
        ne0: u64,
        /// Elements per block.
        block: u64,
        /// Where its tensor info starts.
        offset: u64,
    },
    /// A tensor data offset in the file that is not a multiple of the
    /// file's alignment.
    #[error("tensor {tensor:?} data offset {data_offset} (at byte {offset}) is not a multiple of the alignment {alignment}")]
    DataOffsetNotAligned {
        /// The tensor.
        tensor: String,
        /// The offset read, relative to the data section.
        data_offset: u64,
        /// The file's alignment.
        alignment: u32,
        /// Where the offset field starts.
        offset: u64,
    },
    /// A tensor whose data does not start right after the previous tensor's
    /// padded data (the layout ggml requires; it rules out overlaps).
    #[error("tensor {tensor:?} data offset {data_offset} (at byte {offset}) should be {expected}: tensors must be packed in index order")]
    TensorOffsetMismatch {
        /// The tensor.
        tensor: String,
        /// The offset read, relative to the data section.
        data_offset: u64,
        /// The offset the previous tensors imply.
        expected: u64,
        /// Where the offset field starts.
        offset: u64,
    },
    /// A tensor whose bytes end past the end of the file.
    #[error(
        "tensor {tensor:?} spans bytes {start}..{end}, past the end of the data ({len} bytes)"
    )]
    TensorOutOfBounds {
        /// The tensor.
        tensor: String,
        /// Absolute start.
        start: u64,
        /// Absolute end.
        end: u64,
        /// Length of the data.
        len: u64,
    },

    /// No metadata entry has this key.
    #[error("metadata key {key:?} not found")]
    KeyNotFound {
        /// The key.
        key: String,
    },
    /// A metadata value of another type than asked for.
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    WrongValueType {
        /// The key.
        key: String,
        /// What the caller asked for.
        expected: &'static str,
        /// What the file holds.
        found: ValueType,
    },
    /// No tensor has this name.
    #[error("tensor {name:?} not found")]
    TensorNotFound {
        /// The name.
        name: String,
    },
    /// A borrowed view of a tensor whose bytes are not in memory (a model
    /// streamed from a reader): the copying accessors read them instead.
    #[error("tensor {tensor:?} is streamed, not in memory; use the copying accessors")]
    NotInMemory {
        /// The tensor.
        tensor: String,
    },
    /// Reading a tensor's bytes (from a stream, or by position from a
    /// file) failed or came up short.
    #[error("cannot read tensor {tensor:?} at byte {offset}{}", path.as_ref().map(|p| format!(" of {}", p.display())).unwrap_or_default())]
    TensorRead {
        /// The tensor.
        tensor: String,
        /// The file, where the model was opened from files.
        path: Option<PathBuf>,
        /// Where the read started, in the file of the tensor's part.
        offset: u64,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A typed view asked of a tensor of another type.
    #[error("tensor {tensor:?} is {found}, not {expected}")]
    DtypeMismatch {
        /// The tensor.
        tensor: String,
        /// The type asked for.
        expected: GgmlType,
        /// The tensor's type.
        found: GgmlType,
    },
    /// A zero-copy view of bytes not aligned in memory for the element type
    /// (a file written with a small `general.alignment`, or bytes the caller
    /// gave at an odd address).
    #[error("tensor {tensor:?} data at byte {offset} is not aligned to {required} bytes in memory; use the copying accessors")]
    UnalignedInMemory {
        /// The tensor.
        tensor: String,
        /// Alignment required by the element type.
        required: usize,
        /// Where its data starts.
        offset: u64,
    },
    /// A zero-copy view of a big-endian file on a little-endian machine (or
    /// the reverse).
    #[error("tensor {tensor:?} is stored in the other byte order; use the copying accessors")]
    ByteOrder {
        /// The tensor.
        tensor: String,
    },
    /// An operation this tensor type does not support.
    #[error(
        "{}{operation} is not supported for {dtype}: {reason}",
        in_tensor(tensor)
    )]
    Unsupported {
        /// The tensor, where the operation was asked of one.
        tensor: Option<String>,
        /// What was asked.
        operation: &'static str,
        /// The tensor type.
        dtype: GgmlType,
        /// Why not, and what to do instead.
        reason: &'static str,
    },
    /// A buffer of the wrong length.
    #[error(
        "{}{what}: expected {expected} elements, got {found}",
        in_tensor(tensor)
    )]
    LengthMismatch {
        /// The tensor, where the buffer was one's.
        tensor: Option<String>,
        /// Which buffer.
        what: &'static str,
        /// The length needed.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A type name that is no ggml type.
    #[error("unknown ggml type name {name:?}")]
    UnknownTypeName {
        /// The name.
        name: String,
    },
    /// The buffer pool could not provide a buffer.
    #[error("{}{source}", in_tensor(tensor))]
    Pool {
        /// The tensor the buffer was for, where it was for one.
        tensor: Option<String>,
        /// What the pool said.
        #[source]
        source: crate::pool::PoolError,
    },
    /// A thread pool could not be built.
    #[error("cannot build thread pool: {reason}")]
    ThreadPool {
        /// The pool builder's message.
        reason: String,
    },
    /// Something the writer refuses to write, because a reader would refuse
    /// it or because it cannot be encoded.
    #[error("cannot write {what}: {reason}")]
    Write {
        /// What was being written (`tensor "name"`, `metadata key "k"`,
        /// ...).
        what: String,
        /// Why not.
        reason: WriteRefusal,
    },
    /// A split model asked for with no paths.
    #[error("a split model needs at least one part")]
    SplitNoParts,
    /// The first part of a split model is not named as `gguf-split` names
    /// parts, so the other parts cannot be found.
    #[error("split model part {}: split.count is {count}, so its name should end in -00001-of-{count:05}.gguf", path.display())]
    SplitName {
        /// The first part.
        path: PathBuf,
        /// Its `split.count`.
        count: u16,
    },
    /// A part of a split model does not exist.
    #[error("split model part {} ({} of {count}) is missing", path.display(), u32::from(*part) + 1)]
    SplitPartMissing {
        /// Where the part should be.
        path: PathBuf,
        /// Its 0-based position (`split.no`).
        part: u16,
        /// The number of parts.
        count: u16,
    },
    /// A later part of a split model cannot be opened or parsed.
    #[error("split model part {} ({}): {source}", path.display(), u32::from(*part) + 1)]
    SplitPart {
        /// The part.
        path: PathBuf,
        /// Its 0-based position (`split.no`).
        part: u16,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// A split key (`split.no`, `split.count`, `split.tensors.count`) that a
    /// part must have is absent.
    #[error("split model part {} has no {key} key", path.display())]
    SplitKeyMissing {
        /// The part.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },
    /// A split key of another type than `gguf-split` writes.
    #[error("split model part {}: {key} has type {found}, expected {expected}", path.display())]
    SplitKeyType {
        /// The part.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// The type found.
        found: ValueType,
        /// The type `gguf-split` writes.
        expected: ValueType,
    },
    /// A split key whose value is out of range (`split.count` 0, a negative
    /// `split.tensors.count`).
    #[error("split model part {}: {key} is {value}, expected {expected}", path.display())]
    SplitKeyValue {
        /// The part.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// The value.
        value: i64,
        /// What is allowed.
        expected: &'static str,
    },
    /// A part whose split keys disagree with its place or with the first
    /// part: a part out of place or of another model.
    #[error("split model part {}: {key} is {found}, expected {expected} (a part out of place or of another model)", path.display())]
    SplitMismatch {
        /// The part.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// The value in the part.
        found: i64,
        /// The value its position or the first part implies.
        expected: i64,
    },
    /// The same tensor name in two parts of a split model.
    #[error("split model part {}: tensor {tensor:?} is also in {}", path.display(), first_path.display())]
    SplitDuplicateTensor {
        /// The later part.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The earlier part holding a tensor of that name.
        first_path: PathBuf,
    },
    /// The parts of a split model hold another number of tensors than the
    /// first part's `split.tensors.count`.
    #[error("split model {}: the parts hold {found} tensors, split.tensors.count says {expected}", path.display())]
    SplitTensorCount {
        /// The first part.
        path: PathBuf,
        /// Tensors in all parts.
        found: u64,
        /// `split.tensors.count`.
        expected: u64,
    },
    /// candle rejected a tensor: a shape it cannot take (a 0-dimensional
    /// quantized tensor), a device error.
    #[cfg(feature = "candle")]
    #[error("candle rejected tensor {tensor:?}: {source}")]
    Candle {
        /// The tensor.
        tensor: String,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// A tensor candle cannot hold in the form asked for (a quantized type
    /// candle lacks, kept quantized; an element type that cannot hold the
    /// values exactly).
    #[cfg(feature = "candle")]
    #[error("tensor {tensor:?} ({dtype}) cannot be loaded into candle as {target}: {reason}")]
    CandleUnsupported {
        /// The tensor.
        tensor: String,
        /// Its type in the file.
        dtype: GgmlType,
        /// What was asked for (`"quantized tensor"`, a candle element type).
        target: &'static str,
        /// Why not, and what to do instead.
        reason: &'static str,
    },
    /// Metadata whose candle form ([`Gguf::to_candle_content`]) would take
    /// more memory than the bridge allows: candle keeps every array element
    /// as a value of its own (32 bytes, where the file may store one).
    ///
    /// [`Gguf::to_candle_content`]: crate::Gguf::to_candle_content
    #[cfg(feature = "candle")]
    #[error("metadata key {key:?}: candle's values for the metadata up to it take {needed} bytes, past the limit of {limit} bytes for this file")]
    CandleMetadataTooLarge {
        /// The key whose array crossed the limit.
        key: String,
        /// Bytes of candle values for the metadata up to and including this key.
        needed: u64,
        /// The limit: 8 times the file's size, plus 64 MiB.
        limit: u64,
    },
    /// A name that is no way of loading (`quantized`, `f16`, `bf16`, `f32`).
    #[cfg(feature = "candle")]
    #[error("unknown load type {name:?} (expected quantized, f16, bf16 or f32)")]
    UnknownLoadAs {
        /// The name.
        name: String,
    },
}

/// Why [`Error::Write`] refused something: each a rule the reader applies
/// too, or a limit of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteRefusal {
    /// An array element of another type than the array's.
    MixedArray,
    /// An alignment that is not a non-zero power of two.
    AlignmentNotPowerOfTwo,
    /// `general.alignment` given as metadata.
    AlignmentKey,
    /// Arrays nested deeper than readers accept.
    NestedTooDeep,
    /// A metadata key added twice.
    DuplicateKey,
    /// Tensor bytes of another length than dims and type make.
    DataLength,
    /// A tensor name added twice.
    DuplicateName,
    /// A declared tensor's callback wrote another number of bytes than dims and type make.
    WrongByteCount,
    /// Tensor data whose total size overflows 64 bits.
    SizeOverflow,
    /// A tensor name of 64 bytes or more (ggml's limit).
    NameTooLong,
    /// More than 4 dims, or dims whose running product passes `i64::MAX`.
    BadDims,
    /// A row (ne0) that is not whole blocks of the type.
    RowNotWholeBlocks,
    /// A split into parts of no tensors.
    NoTensorsPerPart,
    /// A split into more than 65,535 parts.
    TooManyParts,
    /// A split model of more than `i32::MAX` tensors.
    TooManyTensors,
    /// A split prefix whose file name is not UTF-8.
    PrefixNotUtf8,
}

impl WriteRefusal {
    /// What is wrong, lowercase.
    pub const fn description(self) -> &'static str {
        match self {
            WriteRefusal::MixedArray => "array elements must all have the array's element type",
            WriteRefusal::AlignmentNotPowerOfTwo => "the alignment must be a non-zero power of two",
            WriteRefusal::AlignmentKey => "set the alignment with set_alignment",
            WriteRefusal::NestedTooDeep => "arrays nested deeper than readers accept",
            WriteRefusal::DuplicateKey => "key already added",
            WriteRefusal::DataLength => "data length does not match dims and type",
            WriteRefusal::DuplicateName => "name already added",
            WriteRefusal::WrongByteCount => "its bytes were not as many as dims and type make",
            WriteRefusal::SizeOverflow => "total size overflows",
            WriteRefusal::NameTooLong => "name must be shorter than 64 bytes",
            WriteRefusal::BadDims => "at most 4 dims, each and their product at most i64::MAX",
            WriteRefusal::RowNotWholeBlocks => "ne0 must be a multiple of the block size",
            WriteRefusal::NoTensorsPerPart => "at least one tensor per part",
            WriteRefusal::TooManyParts => "at most 65535 parts",
            WriteRefusal::TooManyTensors => "at most i32::MAX tensors in all",
            WriteRefusal::PrefixNotUtf8 => "the prefix must end in a UTF-8 file name",
        }
    }
}

impl std::fmt::Display for WriteRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// The message of [`Error::UnknownType`].
fn unknown_type_message(
    id: u32,
    removed: bool,
    tensor: Option<&str>,
    offset: Option<u64>,
) -> String {
    let at = match (tensor, offset) {
        (Some(tensor), Some(offset)) => format!("tensor {tensor:?} at byte {offset}: "),
        (Some(tensor), None) => format!("tensor {tensor:?}: "),
        _ => String::new(),
    };
    if removed {
        format!("{at}ggml type id {id} has been removed from ggml")
    } else {
        format!("{at}unknown ggml type id {id}")
    }
}
