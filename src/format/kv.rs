//! The metadata key-value table and its typed getters.

use super::metadata::{read_value, validated_array, ArrayView, GgufStr, Value, ValueType};
use super::reader::{ByteOrder, Reader};
use crate::error::{Error, Result};

/// Where one metadata entry lives in the file.
#[derive(Clone, Copy, Debug)]
pub struct MetadataEntry {
    pub(crate) entry_offset: usize,
    pub(crate) key_len: usize,
    pub(crate) value_end: usize,
    pub(crate) value_type: ValueType,
}

// Small, since a file may declare an entry per 13 bytes: the key and the
// value start follow from the entry's offset and the key's length.
const _: () = assert!(std::mem::size_of::<MetadataEntry>() <= 32);

impl MetadataEntry {
    /// Absolute offset of the entry (its key length field).
    pub fn offset(&self) -> u64 {
        self.entry_offset as u64
    }

    /// Absolute offset of the value (after its type id).
    pub fn value_offset(&self) -> u64 {
        self.value_start() as u64
    }

    /// Key length (8), key, value type (4), then the value.
    pub(crate) fn value_start(&self) -> usize {
        self.key_start()
            .saturating_add(self.key_len)
            .saturating_add(4)
    }

    fn key_start(&self) -> usize {
        self.entry_offset.saturating_add(8)
    }

    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        self.value_type
    }

    pub(crate) fn key<'data>(&self, data: &'data [u8]) -> &'data str {
        // Keys were checked to be UTF-8 and in bounds when the file was parsed.
        let end = self.key_start().saturating_add(self.key_len);
        data.get(self.key_start()..end)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

/// The metadata of a file: a borrowed view that decodes values on access.
///
/// ```
/// use ggufmap::format::Value;
/// # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
/// let meta = model.metadata();
/// assert_eq!(meta.get_u32("llama.embedding_length")?, 256);
/// assert!(meta.get_str("llama.embedding_length").is_err()); // the wrong type is an error
/// assert!(meta.get("no.such.key").is_none());
/// // Every entry in file order; numbers widen with `to_u64`.
/// let counts = meta
///     .iter()
///     .filter_map(|(key, value)| Some((key, value.to_u64()?)))
///     .filter(|(key, _)| key.ends_with("_count"));
/// for (key, n) in counts {
///     println!("{key} = {n}");
/// }
/// assert!(matches!(meta.get("tokenizer.ggml.add_bos_token"), Some(Value::Bool(true))));
/// # Ok::<(), ggufmap::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Metadata<'data> {
    pub(crate) data: &'data [u8],
    pub(crate) order: ByteOrder,
    pub(crate) entries: &'data [MetadataEntry],
    /// Entry indices sorted by key, for binary search.
    pub(crate) by_key: &'data [u32],
}

macro_rules! typed_getters {
    ($($(#[$doc:meta])* $fn:ident -> $t:ty, $variant:ident, $name:literal;)*) => {$(
        $(#[$doc])*
        ///
        /// # Errors
        /// [`Error::KeyNotFound`], or [`Error::WrongValueType`] when the value has
        /// another type.
        pub fn $fn(&self, key: &str) -> Result<$t> {
            match self.require(key)? {
                Value::$variant(v) => Ok(v),
                other => Err(Error::WrongValueType { key: key.to_owned(), expected: $name, found: other.value_type() }),
            }
        }
    )*};
}

impl<'data> Metadata<'data> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the file has no metadata.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `key`, if present.
    pub fn entry(&self, key: &str) -> Option<&'data MetadataEntry> {
        let entries = self.entries;
        let data = self.data;
        let pos = self
            .by_key
            .binary_search_by(|&i| {
                let key_of = entries.get(i as usize).map_or("", |e| e.key(data));
                key_of.cmp(key)
            })
            .ok()?;
        entries.get(*self.by_key.get(pos)? as usize)
    }

    /// True when `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.entry(key).is_some()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<Value<'data>> {
        self.entry(key).and_then(|e| self.value_of(e))
    }

    /// Every entry in file order. The iterator borrows the file, not this
    /// view, so it may outlive a `Metadata` made for the occasion.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'data str, Value<'data>)> + 'data {
        let view = *self;
        self.entries.iter().map(move |e| {
            // Validated at parse time; a `u8` zero stands in only if that
            // invariant were broken.
            (e.key(view.data), view.value_of(e).unwrap_or(Value::U8(0)))
        })
    }

    fn value_of(&self, entry: &MetadataEntry) -> Option<Value<'data>> {
        let mut reader = Reader::new(self.data, entry.value_start(), self.order);
        if entry.value_type == ValueType::Array {
            // Validated when parsed: no need to walk the elements again.
            return validated_array(&mut reader, entry.value_end)
                .ok()
                .map(Value::Array);
        }
        read_value(&mut reader, entry.value_type, 0).ok()
    }

    fn require(&self, key: &str) -> Result<Value<'data>> {
        self.get(key).ok_or_else(|| Error::KeyNotFound {
            key: key.to_owned(),
        })
    }

    typed_getters! {
        /// The `u8` value of `key`.
        get_u8 -> u8, U8, "u8";
        /// The `i8` value of `key`.
        get_i8 -> i8, I8, "i8";
        /// The `u16` value of `key`.
        get_u16 -> u16, U16, "u16";
        /// The `i16` value of `key`.
        get_i16 -> i16, I16, "i16";
        /// The `u32` value of `key`.
        get_u32 -> u32, U32, "u32";
        /// The `i32` value of `key`.
        get_i32 -> i32, I32, "i32";
        /// The `u64` value of `key`.
        get_u64 -> u64, U64, "u64";
        /// The `i64` value of `key`.
        get_i64 -> i64, I64, "i64";
        /// The `f32` value of `key`.
        get_f32 -> f32, F32, "f32";
        /// The `f64` value of `key`.
        get_f64 -> f64, F64, "f64";
        /// The `bool` value of `key`.
        get_bool -> bool, Bool, "bool";
        /// The string value of `key`, as bytes that may not be UTF-8.
        get_string -> GgufStr<'data>, String, "string";
        /// The array value of `key`.
        get_array -> ArrayView<'data>, Array, "array";
    }

    /// The string value of `key` as UTF-8.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::WrongValueType`], or
    /// [`Error::InvalidUtf8`].
    pub fn get_str(&self, key: &str) -> Result<&'data str> {
        self.get_string(key)?.as_str()
    }

    /// Any non-negative integer value of `key` as `u64`, whatever its width
    /// (writers disagree on the integer type of keys like `context_length`).
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], or [`Error::WrongValueType`] for other types
    /// and negative values.
    pub fn get_uint(&self, key: &str) -> Result<u64> {
        let value = self.require(key)?;
        value.to_u64().ok_or_else(|| Error::WrongValueType {
            key: key.to_owned(),
            expected: "non-negative integer",
            found: value.value_type(),
        })
    }
}
