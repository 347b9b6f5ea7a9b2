//! The GGUF wire format over `&[u8]`: no I/O, and no allocation sized by an
//! untrusted count.
//!
//! [`parse`] validates a whole header and returns an [`Index`] of byte
//! offsets into the data; the borrowed views ([`Metadata`], [`Value`],
//! [`ArrayView`]) decode values on access.

// The code that reads untrusted bytes must not be able to panic.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

mod index;
mod kv;
mod metadata;
mod reader;
mod tensor_info;

pub use index::{parse, parse_header, Index};
pub use kv::{Metadata, MetadataEntry};
pub use metadata::{ArrayIter, ArrayView, GgufStr, Strings, Strs, Value, ValueType};
pub use reader::ByteOrder;
pub use tensor_info::TensorInfo;

pub(crate) use index::align_up;

pub use crate::dtype::REMOVED_TYPE_IDS;

/// The magic bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u32 = 32;
/// The metadata key that sets the alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// Deepest nesting of arrays accepted (an array of arrays is depth 2).
pub const MAX_ARRAY_DEPTH: usize = 8;
/// ggml's `GGML_MAX_NAME`: tensor names must be shorter.
pub const MAX_TENSOR_NAME_LEN: usize = 64;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: usize = 4;
