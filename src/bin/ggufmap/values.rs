//! Metadata values rendered two ways: short summaries for people and JSON
//! for programs.

use ggufmap::format::{ArrayView, GgufStr, Value};

use crate::output::quote_bytes;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Number, Value as Json};

/// Characters of a top-level string shown before it is cut.
const MAX_STRING_CHARS: usize = 64;
/// Characters of a string inside an array summary shown before it is cut.
const MAX_ELEMENT_CHARS: usize = 24;
/// Rough width an array summary may grow to before `...`.
const ARRAY_SUMMARY_WIDTH: usize = 64;
/// Most elements an array summary shows.
const ARRAY_SUMMARY_ELEMENTS: usize = 8;
/// Elements of an array JSON gives unless asked for all.
pub const JSON_FIRST_ELEMENTS: u64 = 8;
/// Nesting levels of arrays whose first elements JSON gives: deeper ones
/// are summarised by type and length only, so that output stays small even
/// for arrays of arrays of arrays.
const JSON_FIRST_DEPTH: usize = 2;

/// The type column: `u32`, `string`, or `[string; 262144]` for arrays.
pub fn type_label(value: &Value<'_>) -> String {
    match value {
        Value::Array(a) => array_label(a),
        other => other.value_type().to_string(),
    }
}

fn array_label(a: &ArrayView<'_>) -> String {
    format!("[{}; {}]", a.element_type(), a.len())
}

/// The value column: the value, with long strings cut and long arrays
/// summarised by their first elements.
pub fn summary(value: &Value<'_>) -> String {
    match value {
        Value::Array(a) => array_summary(a),
        other => scalar(other, MAX_STRING_CHARS),
    }
}

/// `"a", "b", "c", ...`: as many first elements as fit the width.
fn array_summary(a: &ArrayView<'_>) -> String {
    let mut out = String::new();
    for (i, element) in a.iter().enumerate() {
        let item = scalar(&element, MAX_ELEMENT_CHARS);
        let too_wide = i > 0 && out.len() + item.len() > ARRAY_SUMMARY_WIDTH;
        if i == ARRAY_SUMMARY_ELEMENTS || too_wide {
            out.push_str(", ...");
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
    }
    out
}

/// One value on one line; a nested array shows as its type label.
fn scalar(value: &Value<'_>, max_chars: usize) -> String {
    match *value {
        Value::U8(v) => v.to_string(),
        Value::I8(v) => v.to_string(),
        Value::U16(v) => v.to_string(),
        Value::I16(v) => v.to_string(),
        Value::U32(v) => v.to_string(),
        Value::I32(v) => v.to_string(),
        Value::U64(v) => v.to_string(),
        Value::I64(v) => v.to_string(),
        Value::F32(v) => v.to_string(),
        Value::F64(v) => v.to_string(),
        Value::Bool(v) => v.to_string(),
        Value::String(s) => quoted(s, max_chars),
        Value::Array(a) => array_label(&a),
    }
}

/// A string quoted and escaped (so control characters cannot reach the
/// terminal), cut after `max_chars` with its full length noted.
fn quoted(s: GgufStr<'_>, max_chars: usize) -> String {
    let bytes = s.as_bytes();
    match offset_after_chars(bytes, max_chars) {
        None => quote_bytes(bytes),
        Some(cut) => format!(
            "{}... ({} bytes)",
            quote_bytes(bytes.get(..cut).unwrap_or(bytes)),
            s.len()
        ),
    }
}

/// Byte offset of character `n` (counting each byte that is not UTF-8 as
/// one character), or `None` when `bytes` hold no more than `n`.
fn offset_after_chars(bytes: &[u8], n: usize) -> Option<usize> {
    let mut seen = 0;
    let mut at = 0;
    for chunk in bytes.utf8_chunks() {
        let starts = chunk.valid().char_indices().map(|(i, _)| i);
        let invalid = (0..chunk.invalid().len()).map(|i| chunk.valid().len() + i);
        for start in starts.chain(invalid) {
            if seen == n {
                return Some(at + start);
            }
            seen += 1;
        }
        at += chunk.valid().len() + chunk.invalid().len();
    }
    None
}

/// How much of each array JSON gives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arrays {
    /// The first [`JSON_FIRST_ELEMENTS`] elements, [`JSON_FIRST_DEPTH`]
    /// levels deep: output stays small for a 262,144-token vocabulary.
    #[default]
    First,
    /// Every element at every depth (still written as produced: no tree).
    Full,
}

/// The JSON form of a metadata value, typed and written as it is produced
/// (no value tree): `{"type": "u32", "value": 7}`; arrays add
/// `element_type`, `len` and `truncated` (true when `value` holds fewer
/// than `len` elements), their elements plain JSON values, each nested
/// array again such an object. A string that is not UTF-8 is
/// `{"lossy": .., "hex": ..}` wherever a string would be, so no byte is
/// lost. `schemas/inspect.schema.json` is the contract.
pub struct JsonValue<'a, 'data> {
    /// The value.
    pub value: &'a Value<'data>,
    /// How much of arrays to give.
    pub arrays: Arrays,
}

impl Serialize for JsonValue<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Array(a) => serialize_array(a, 0, self.arrays, s),
            scalar => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("type", scalar.value_type().name())?;
                map.serialize_entry(
                    "value",
                    &Element {
                        value: *scalar,
                        depth: 0,
                        arrays: self.arrays,
                    },
                )?;
                map.end()
            }
        }
    }
}

/// A value inside a typed object or an array: itself, plainly.
struct Element<'data> {
    value: Value<'data>,
    depth: usize,
    arrays: Arrays,
}

impl Serialize for Element<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::U8(v) => s.serialize_u8(v),
            Value::I8(v) => s.serialize_i8(v),
            Value::U16(v) => s.serialize_u16(v),
            Value::I16(v) => s.serialize_i16(v),
            Value::U32(v) => s.serialize_u32(v),
            Value::I32(v) => s.serialize_i32(v),
            Value::U64(v) => s.serialize_u64(v),
            Value::I64(v) => s.serialize_i64(v),
            Value::F32(v) => f32_json(v).serialize(s),
            Value::F64(v) => f64_json(v).serialize(s),
            Value::Bool(v) => s.serialize_bool(v),
            Value::String(text) => JsonStr(text).serialize(s),
            Value::Array(a) => serialize_array(&a, self.depth, self.arrays, s),
        }
    }
}

/// A string from the file as JSON: itself when valid UTF-8, else
/// `{"lossy": .., "hex": ..}`: the text with U+FFFD for each bad sequence,
/// and the exact bytes.
pub struct JsonStr<'data>(pub GgufStr<'data>);

impl Serialize for JsonStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0.as_bytes()) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("lossy", &self.0.to_string_lossy())?;
                map.serialize_entry("hex", &Hex(self.0.as_bytes()))?;
                map.end()
            }
        }
    }
}

/// Bytes as lowercase hex digits, written without an intermediate string.
struct Hex<'a>(&'a [u8]);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Elements of an array at `depth` that JSON gives.
fn shown(a: &ArrayView<'_>, depth: usize, arrays: Arrays) -> u64 {
    match arrays {
        Arrays::Full => a.len(),
        Arrays::First if depth < JSON_FIRST_DEPTH => a.len().min(JSON_FIRST_ELEMENTS),
        Arrays::First => 0,
    }
}

fn serialize_array<S: Serializer>(
    a: &ArrayView<'_>,
    depth: usize,
    arrays: Arrays,
    s: S,
) -> Result<S::Ok, S::Error> {
    let shown = shown(a, depth, arrays);
    let mut map = s.serialize_map(Some(5))?;
    map.serialize_entry("type", "array")?;
    map.serialize_entry("element_type", a.element_type().name())?;
    map.serialize_entry("len", &a.len())?;
    map.serialize_entry("truncated", &(shown < a.len()))?;
    map.serialize_entry(
        "value",
        &Elements {
            array: a,
            shown,
            depth: depth + 1,
            arrays,
        },
    )?;
    map.end()
}

/// The first `shown` elements of an array, streamed.
struct Elements<'a, 'data> {
    array: &'a ArrayView<'data>,
    shown: u64,
    depth: usize,
    arrays: Arrays,
}

impl Serialize for Elements<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shown = usize::try_from(self.shown).unwrap_or(usize::MAX);
        let mut seq = s.serialize_seq(Some(shown))?;
        for value in self.array.iter().take(shown) {
            seq.serialize_element(&Element {
                value,
                depth: self.depth,
                arrays: self.arrays,
            })?;
        }
        seq.end()
    }
}

/// An f32 as the shortest decimal that reads back as the same f32 (so
/// `0.1f32` prints as `0.1`, not `0.10000000149011612`).
pub fn f32_json(v: f32) -> Json {
    if !v.is_finite() {
        return non_finite(v.into());
    }
    v.to_string().parse::<f64>().map_or(Json::Null, f64_json)
}

/// An f64 as a JSON number; NaN and infinities, which JSON cannot hold, as
/// the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
pub fn f64_json(v: f64) -> Json {
    Number::from_f64(v).map_or_else(|| non_finite(v), Json::Number)
}

fn non_finite(v: f64) -> Json {
    let name = if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    };
    name.into()
}

/// The name of a `general.file_type` (llama.cpp's `llama_ftype`, as
/// gguf-py's `LlamaFileType` lists them): `15` is `Q4_K_M`, a file mostly of
/// Q4_K tensors with some Q6_K. `None` for an id neither knows.
pub fn file_type_name(id: u64) -> Option<&'static str> {
    Some(match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        1024 => "GUESSED",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_valid_json() {
        assert_eq!(f32_json(f32::NAN), Json::from("NaN"));
        assert_eq!(f32_json(f32::INFINITY), Json::from("Infinity"));
        assert_eq!(f64_json(f64::NEG_INFINITY), Json::from("-Infinity"));
        assert_eq!(f32_json(0.1).to_string(), "0.1");
        assert_eq!(
            f32_json(f32::MAX).as_f64().map(|v| v as f32),
            Some(f32::MAX)
        );
    }
}
