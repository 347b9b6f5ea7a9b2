//! Metadata: value types, borrowed values and lazy array views.
//!
//! Nothing here copies a string or allocates per array element: a value is
//! decoded from the file's bytes when it is asked for. Arrays are validated
//! once when the file is parsed, so walking them again cannot fail.

use std::fmt;

use super::reader::{ByteOrder, Reader};
use super::MAX_ARRAY_DEPTH;
use crate::error::{Error, Result};

macro_rules! value_types {
    ($($variant:ident = $id:literal, $name:literal, $size:expr;)*) => {
        /// The type of a metadata value, as stored in the file.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ValueType {
            $(#[doc = concat!("`", $name, "`")] $variant,)*
        }

        impl ValueType {
            /// The id stored in the file.
            pub const fn id(self) -> u32 {
                match self { $(ValueType::$variant => $id,)* }
            }

            /// The type with this id.
            pub const fn from_id(id: u32) -> Option<ValueType> {
                match id { $($id => Some(ValueType::$variant),)* _ => None }
            }

            /// Lowercase name, as in messages (`"u32"`, `"string"`).
            pub const fn name(self) -> &'static str {
                match self { $(ValueType::$variant => $name,)* }
            }

            /// Encoded size of a fixed-size value; `None` for strings and arrays.
            pub const fn fixed_size(self) -> Option<usize> {
                match self { $(ValueType::$variant => $size,)* }
            }
        }
    };
}

value_types! {
    U8 = 0, "u8", Some(1);
    I8 = 1, "i8", Some(1);
    U16 = 2, "u16", Some(2);
    I16 = 3, "i16", Some(2);
    U32 = 4, "u32", Some(4);
    I32 = 5, "i32", Some(4);
    F32 = 6, "f32", Some(4);
    Bool = 7, "bool", Some(1);
    String = 8, "string", None;
    Array = 9, "array", None;
    U64 = 10, "u64", Some(8);
    I64 = 11, "i64", Some(8);
    F64 = 12, "f64", Some(8);
}

impl ValueType {
    /// The fewest bytes a value of this type can take: the bound used to
    /// reject counts that the remaining bytes cannot hold.
    pub(crate) const fn min_encoded_size(self) -> u64 {
        match self.fixed_size() {
            Some(size) => size as u64,
            // A string is its u64 length; an array its u32 type and u64 count.
            None if matches!(self, ValueType::String) => 8,
            None => 12,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A metadata string: bytes borrowed from the file.
///
/// GGUF strings should be UTF-8, but tokenizer vocabularies in the wild hold
/// stray bytes, so a string is checked only when asked for as `&str`.
#[derive(Clone, Copy)]
pub struct GgufStr<'data> {
    bytes: &'data [u8],
    offset: u64,
}

impl<'data> GgufStr<'data> {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &'data [u8] {
        self.bytes
    }

    /// The string, if it is UTF-8.
    ///
    /// # Errors
    /// [`Error::InvalidUtf8`] with the string's offset otherwise.
    pub fn as_str(&self) -> Result<&'data str> {
        std::str::from_utf8(self.bytes).map_err(|_| Error::InvalidUtf8 {
            what: "metadata string",
            offset: self.offset,
        })
    }

    /// The string with invalid sequences replaced by U+FFFD (copies only then).
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'data, str> {
        String::from_utf8_lossy(self.bytes)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Absolute offset of the string's first byte in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl fmt::Debug for GgufStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

impl PartialEq for GgufStr<'_> {
    /// Strings are equal when their bytes are, wherever they are stored.
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for GgufStr<'_> {}

impl std::hash::Hash for GgufStr<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl PartialEq<str> for GgufStr<'_> {
    fn eq(&self, other: &str) -> bool {
        self.bytes == other.as_bytes()
    }
}

impl PartialEq<&str> for GgufStr<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.bytes == other.as_bytes()
    }
}

/// A metadata value, borrowed from the file.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Value<'data> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(GgufStr<'data>),
    Array(ArrayView<'data>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'data> Value<'data> {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer value that is non-negative, widened to `u64`.
    pub fn to_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer value, widened to `i64` when it fits.
    pub fn to_i64(&self) -> Option<i64> {
        match *self {
            Value::U64(v) => i64::try_from(v).ok(),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.to_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// Any float or integer value as `f64` (large integers round).
    pub fn to_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            #[allow(clippy::cast_precision_loss)]
            _ => self
                .to_i64()
                .map(|v| v as f64)
                .or_else(|| self.to_u64().map(|v| v as f64)),
        }
    }

    /// True when `other` has this type and this exact value: floats by
    /// their bits (a NaN equals the same NaN; `0.0` differs from `-0.0`),
    /// strings by their bytes, arrays element by element. What "unchanged"
    /// means when comparing two files; `==` compares floats as numbers.
    ///
    /// ```
    /// use ggufmap::format::Value;
    /// assert!(Value::F32(f32::NAN).identical(&Value::F32(f32::NAN)));
    /// assert!(Value::F32(f32::NAN) != Value::F32(f32::NAN));
    /// assert!(!Value::F32(0.0).identical(&Value::F32(-0.0)));
    /// assert!(!Value::U32(1).identical(&Value::U64(1)));
    /// ```
    pub fn identical(&self, other: &Value<'_>) -> bool {
        match (self, other) {
            (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
            (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
            (Value::String(x), Value::String(y)) => x.as_bytes() == y.as_bytes(),
            (Value::Array(x), Value::Array(y)) => {
                x.element_type() == y.element_type()
                    && x.len() == y.len()
                    && x.iter().zip(y.iter()).all(|(p, q)| p.identical(&q))
            }
            (x, y) => x.value_type() == y.value_type() && x == y,
        }
    }

    /// The string, if this is one.
    pub fn as_string(&self) -> Option<GgufStr<'data>> {
        match *self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The array, if this is one.
    pub fn as_array(&self) -> Option<ArrayView<'data>> {
        match *self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Reads one value of type `vt` at the cursor. Arrays are walked (strings
/// skipped, booleans checked, nested arrays descended, to at most
/// [`MAX_ARRAY_DEPTH`]) so that a returned view is known to be well formed;
/// nothing is allocated.
pub(crate) fn read_value<'data>(
    r: &mut Reader<'data>,
    vt: ValueType,
    depth: usize,
) -> Result<Value<'data>> {
    Ok(match vt {
        ValueType::U8 => Value::U8(r.num("u8 value")?),
        ValueType::I8 => Value::I8(r.num("i8 value")?),
        ValueType::U16 => Value::U16(r.num("u16 value")?),
        ValueType::I16 => Value::I16(r.num("i16 value")?),
        ValueType::U32 => Value::U32(r.num("u32 value")?),
        ValueType::I32 => Value::I32(r.num("i32 value")?),
        ValueType::F32 => Value::F32(r.num("f32 value")?),
        ValueType::U64 => Value::U64(r.num("u64 value")?),
        ValueType::I64 => Value::I64(r.num("i64 value")?),
        ValueType::F64 => Value::F64(r.num("f64 value")?),
        ValueType::Bool => {
            let offset = r.pos() as u64;
            match r.num::<u8>("bool value")? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                found => return Err(Error::InvalidBool { found, offset }),
            }
        }
        ValueType::String => {
            let offset = (r.pos() as u64).saturating_add(8);
            Value::String(GgufStr {
                bytes: r.string("string length")?,
                offset,
            })
        }
        ValueType::Array => Value::Array(read_array(r, depth.saturating_add(1))?),
    })
}

/// Reads a value type id.
pub(crate) fn read_value_type(r: &mut Reader<'_>) -> Result<ValueType> {
    let offset = r.pos() as u64;
    let found: u32 = r.num("value type")?;
    ValueType::from_id(found).ok_or(Error::UnknownValueType { found, offset })
}

fn read_array<'data>(r: &mut Reader<'data>, depth: usize) -> Result<ArrayView<'data>> {
    let offset = r.pos() as u64;
    if depth > MAX_ARRAY_DEPTH {
        return Err(Error::NestingTooDeep {
            offset,
            max: MAX_ARRAY_DEPTH,
        });
    }
    let elem_type = read_value_type(r)?;
    let len = r.count("array length", elem_type.min_encoded_size())?;
    let start = r.pos();
    match elem_type.fixed_size() {
        Some(size) if elem_type != ValueType::Bool => {
            // Cannot overflow: the count was checked against the bytes left.
            r.bytes(len.saturating_mul(size as u64), "array elements")?;
        }
        _ if elem_type == ValueType::String => r.skip_strings(len)?,
        _ => {
            for _ in 0..len {
                read_value(r, elem_type, depth)?;
            }
        }
    }
    Ok(ArrayView {
        elem_type,
        len,
        data: r.data(),
        start,
        end: r.pos(),
        order: r.order(),
        depth,
    })
}

/// Rebuilds the view of an array value already validated by [`read_array`]
/// from its header and its known end, without walking its elements again.
pub(crate) fn validated_array<'data>(
    r: &mut Reader<'data>,
    end: usize,
) -> Result<ArrayView<'data>> {
    let elem_type = read_value_type(r)?;
    let len: u64 = r.num("array length")?;
    Ok(ArrayView {
        elem_type,
        len,
        data: r.data(),
        start: r.pos(),
        end,
        order: r.order(),
        depth: 1,
    })
}

/// A metadata array: a view of its elements in the file, decoded on access.
///
/// # Performance
/// [`ArrayView::get`] is O(1) for fixed-size element types and O(index) for
/// strings and nested arrays, whose elements have no fixed size; iterate
/// with [`ArrayView::iter`] instead.
///
/// ```
/// use ggufmap::format::{Value, ValueType};
/// # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
/// let meta = model.metadata();
/// let tokens = meta.get_array("tokenizer.ggml.tokens")?;
/// assert_eq!((tokens.element_type(), tokens.len()), (ValueType::String, 384));
/// // Strings borrowed from the file, walked without allocating.
/// let longest = tokens.strings()?.map(|t| t.len()).max();
/// assert!(longest.is_some());
/// // Numbers by index, in O(1).
/// let scores = meta.get_array("tokenizer.ggml.scores")?;
/// assert!(matches!(scores.get(10), Some(Value::F32(_))));
/// # Ok::<(), ggufmap::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct ArrayView<'data> {
    elem_type: ValueType,
    len: u64,
    data: &'data [u8],
    start: usize,
    end: usize,
    order: ByteOrder,
    depth: usize,
}

impl<'data> ArrayView<'data> {
    /// A view of elements validated earlier (by the parser, when they were
    /// part of a file) and since copied to `bytes`.
    pub(crate) fn over_validated(
        elem_type: ValueType,
        len: u64,
        bytes: &'data [u8],
        order: ByteOrder,
    ) -> Self {
        ArrayView {
            elem_type,
            len,
            data: bytes,
            start: 0,
            end: bytes.len(),
            order,
            depth: 1,
        }
    }

    /// The byte order of the elements.
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// The type of every element.
    pub fn element_type(&self) -> ValueType {
        self.elem_type
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded elements, as stored (in the file's byte order).
    pub fn raw_bytes(&self) -> &'data [u8] {
        self.data.get(self.start..self.end).unwrap_or_default()
    }

    /// Absolute offset of the first element in the file.
    pub fn offset(&self) -> u64 {
        self.start as u64
    }

    /// The elements, in order.
    pub fn iter(&self) -> ArrayIter<'data> {
        ArrayIter {
            reader: Reader::new(self.data, self.start, self.order),
            elem_type: self.elem_type,
            remaining: self.len,
            depth: self.depth,
        }
    }

    /// The element at `index`, or `None` past the end.
    pub fn get(&self, index: u64) -> Option<Value<'data>> {
        if index >= self.len {
            return None;
        }
        match self.elem_type.fixed_size() {
            Some(size) => {
                let pos = self
                    .start
                    .checked_add(usize::try_from(index).ok()?.checked_mul(size)?)?;
                let mut reader = Reader::new(self.data, pos, self.order);
                read_value(&mut reader, self.elem_type, self.depth).ok()
            }
            None => self.iter().nth(usize::try_from(index).ok()?),
        }
    }

    /// The elements as strings.
    ///
    /// # Errors
    /// [`Error::WrongValueType`] unless the elements are strings.
    pub fn strings(&self) -> Result<Strings<'data>> {
        if self.elem_type != ValueType::String {
            return Err(Error::WrongValueType {
                key: format!("array at byte {}", self.start),
                expected: "array of string",
                found: self.elem_type,
            });
        }
        Ok(Strings(self.iter()))
    }

    /// The elements of a string array as `&str`, each `Err`
    /// ([`Error::InvalidUtf8`], with its offset) where it is not UTF-8.
    ///
    /// The array's bytes are validated once, with SIMD where the processor
    /// has it; each element is then a slice of that text, checked only at
    /// its two ends (an element the whole-array check cannot vouch for, such
    /// as one cut by a multi-byte sequence spanning a length prefix, is
    /// validated on its own). Walking a 262,144-token vocabulary this way
    /// costs little more than reading its bytes once.
    ///
    /// ```
    /// # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
    /// let tokens = model.metadata().get_array("tokenizer.ggml.tokens")?;
    /// let vocabulary: Vec<&str> = tokens.strs()?.collect::<Result<_, _>>()?;
    /// assert_eq!(&vocabulary[..3], ["<unk>", "<s>", "</s>"]);
    /// # Ok::<(), ggufmap::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::WrongValueType`] unless the elements are strings.
    pub fn strs(&self) -> Result<Strs<'data>> {
        let strings = self.strings()?;
        Ok(Strs {
            strings,
            text: simdutf8::basic::from_utf8(self.raw_bytes()).ok(),
            text_start: self.start as u64,
        })
    }
}

/// Iterator over the elements of a string array as `&str`
/// ([`ArrayView::strs`]).
#[derive(Clone, Debug)]
pub struct Strs<'data> {
    strings: Strings<'data>,
    /// The array's encoded bytes (lengths and text) as one `str`, when they
    /// are all UTF-8.
    text: Option<&'data str>,
    /// Offset of `text` in the file.
    text_start: u64,
}

impl<'data> Strs<'data> {
    /// `s` as a slice of the validated array text, if both its ends fall on
    /// character boundaries there (then it is UTF-8 on its own).
    fn slice_of_text(&self, s: &GgufStr<'data>) -> Option<&'data str> {
        let text = self.text?;
        let start = usize::try_from(s.offset.checked_sub(self.text_start)?).ok()?;
        text.get(start..start.checked_add(s.len())?)
    }
}

impl<'data> Iterator for Strs<'data> {
    type Item = Result<&'data str>;

    fn next(&mut self) -> Option<Result<&'data str>> {
        let s = self.strings.next()?;
        Some(self.slice_of_text(&s).map_or_else(|| s.as_str(), Ok))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.strings.size_hint()
    }
}

impl ExactSizeIterator for Strs<'_> {}

/// Iterator over the strings of a string array ([`ArrayView::strings`]).
#[derive(Clone, Debug)]
pub struct Strings<'data>(ArrayIter<'data>);

impl<'data> Iterator for Strings<'data> {
    type Item = GgufStr<'data>;

    fn next(&mut self) -> Option<GgufStr<'data>> {
        // The hot loop of walking a vocabulary: the array was validated when
        // the file was parsed, so read each string's length and bytes
        // directly, without the general value decoder and its `Result`.
        let it = &mut self.0;
        it.remaining = it.remaining.checked_sub(1)?;
        match it.reader.next_string() {
            Some((bytes, offset)) => Some(GgufStr { bytes, offset }),
            None => {
                it.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Strings<'_> {}

impl fmt::Debug for ArrayView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayView")
            .field("element_type", &self.elem_type)
            .field("len", &self.len)
            .field("offset", &self.start)
            .finish()
    }
}

impl PartialEq for ArrayView<'_> {
    /// Arrays are equal when their element types and elements are.
    fn eq(&self, other: &Self) -> bool {
        self.elem_type == other.elem_type && self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<'data> IntoIterator for ArrayView<'data> {
    type Item = Value<'data>;
    type IntoIter = ArrayIter<'data>;

    fn into_iter(self) -> ArrayIter<'data> {
        self.iter()
    }
}

/// Iterator over an [`ArrayView`]'s elements.
#[derive(Clone, Debug)]
pub struct ArrayIter<'data> {
    reader: Reader<'data>,
    elem_type: ValueType,
    remaining: u64,
    depth: usize,
}

impl<'data> Iterator for ArrayIter<'data> {
    type Item = Value<'data>;

    fn next(&mut self) -> Option<Value<'data>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining = self.remaining.saturating_sub(1);
        // The array was validated when the file was parsed, so this decode
        // cannot fail; if it somehow did, the iteration ends.
        match read_value(&mut self.reader, self.elem_type, self.depth) {
            Ok(v) => Some(v),
            Err(_) => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl ExactSizeIterator for ArrayIter<'_> {}
