//! The one error type of the crate.
//!
//! Every error found while parsing a file names what was wrong and the byte
//! offset (from the start of the file) where the offending field starts.

use std::path::PathBuf;

use crate::dtype::GgmlType;
use crate::format::ValueType;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while opening, parsing or using a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, mapping or writing a file failed.
    #[error("cannot access {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Reading from or writing to a stream failed.
    #[error("i/o error on stream")]
    Stream(#[source] std::io::Error),
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
    /// A metadata key or tensor name that is not UTF-8.
    #[error("{what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// `"metadata key"` or `"tensor name"`.
        what: &'static str,
        /// Where the string starts.
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
    /// A tensor type id that ggml does not define.
    #[error("tensor {tensor:?} has unknown type id {id} at byte {offset}")]
    UnknownType {
        /// The tensor.
        tensor: String,
        /// The id.
        id: u32,
        /// Where it starts.
        offset: u64,
    },
    /// A tensor type id that ggml has removed.
    #[error("tensor {tensor:?} has type id {id} at byte {offset}, which ggml has removed")]
    RemovedType {
        /// The tensor.
        tensor: String,
        /// The id.
        id: u32,
        /// Where it starts.
        offset: u64,
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
    /// A tensor data offset that is not a multiple of the alignment.
    #[error("tensor {tensor:?} data offset {data_offset} (at byte {offset}) is not a multiple of the alignment {alignment}")]
    TensorMisaligned {
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
    /// A metadata string that is not UTF-8, asked for as `&str`.
    #[error("metadata string at byte {offset} is not valid UTF-8")]
    StringNotUtf8 {
        /// Where the string's bytes start.
        offset: u64,
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
    /// A zero-copy view of bytes not aligned for the element type (a file
    /// written with a small `general.alignment`, or bytes the caller gave).
    #[error("tensor {tensor:?} data at byte {offset} is not aligned to {required} bytes; use the copying accessors")]
    Misaligned {
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
    #[error("{operation} is not supported for {dtype}: {reason}")]
    Unsupported {
        /// What was asked.
        operation: &'static str,
        /// The tensor type.
        dtype: GgmlType,
        /// Why not, and what to do instead.
        reason: &'static str,
    },
    /// A buffer of the wrong length.
    #[error("{what}: expected {expected} elements, got {found}")]
    LengthMismatch {
        /// Which buffer.
        what: &'static str,
        /// The length needed.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A ggml type id out of range (from [`GgmlType::try_from`]).
    #[error("{}", if *removed { format!("ggml type id {id} has been removed") } else { format!("unknown ggml type id {id}") })]
    InvalidTypeId {
        /// The id.
        id: u32,
        /// True for an id ggml once used.
        removed: bool,
    },
    /// A type name that is no ggml type.
    #[error("unknown ggml type name {name:?}")]
    UnknownTypeName {
        /// The name.
        name: String,
    },
    /// The buffer pool could not provide a buffer.
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
    /// A thread pool could not be built.
    #[error("cannot build thread pool: {reason}")]
    ThreadPool {
        /// The pool builder's message.
        reason: String,
    },
    /// A value the writer cannot encode.
    #[error("cannot write {what}: {reason}")]
    Write {
        /// What was being written.
        what: String,
        /// Why not.
        reason: &'static str,
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
    /// An error while converting or loading a tensor that does not name the
    /// tensor itself (a read, a dequantization): the tensor and the error.
    #[error("tensor {tensor:?}: {source}")]
    InTensor {
        /// The tensor.
        tensor: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// A name that is no way of loading (`quantized`, `f16`, `bf16`, `f32`).
    #[error("unknown load type {name:?} (expected quantized, f16, bf16 or f32)")]
    UnknownLoadAs {
        /// The name.
        name: String,
    },
}
