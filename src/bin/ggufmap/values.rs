//! Metadata values rendered two ways: short summaries for people and JSON
//! for programs.

use ggufmap::format::{ArrayView, GgufStr, Value};
use serde_json::{Map, Number, Value as Json};

/// Characters of a top-level string shown before it is cut.
const MAX_STRING_CHARS: usize = 64;
/// Characters of a string inside an array summary shown before it is cut.
const MAX_ELEMENT_CHARS: usize = 24;
/// Rough width an array summary may grow to before `...`.
const ARRAY_SUMMARY_WIDTH: usize = 64;
/// Most elements an array summary shows.
const ARRAY_SUMMARY_ELEMENTS: usize = 8;
/// Elements of an array given in JSON under `first`.
pub const JSON_FIRST_ELEMENTS: usize = 8;
/// Nesting levels of arrays whose `first` elements JSON shows: deeper ones
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
    let text = s.to_string_lossy();
    match text.char_indices().nth(max_chars) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes)", &text[..cut], s.len()),
    }
}

/// The JSON form of a value: numbers, booleans and (lossily decoded)
/// strings as themselves, arrays as
/// `{"type":"array","element_type":..,"len":..,"first":[..]}`.
pub fn to_json(value: &Value<'_>) -> Json {
    json_at_depth(value, 0)
}

fn json_at_depth(value: &Value<'_>, depth: usize) -> Json {
    match *value {
        Value::U8(v) => v.into(),
        Value::I8(v) => v.into(),
        Value::U16(v) => v.into(),
        Value::I16(v) => v.into(),
        Value::U32(v) => v.into(),
        Value::I32(v) => v.into(),
        Value::U64(v) => v.into(),
        Value::I64(v) => v.into(),
        Value::F32(v) => f32_json(v),
        Value::F64(v) => f64_json(v),
        Value::Bool(v) => v.into(),
        Value::String(s) => s.to_string_lossy().into_owned().into(),
        Value::Array(a) => array_json(&a, depth),
    }
}

fn array_json(a: &ArrayView<'_>, depth: usize) -> Json {
    let mut map = Map::new();
    map.insert("type".into(), "array".into());
    map.insert("element_type".into(), a.element_type().name().into());
    map.insert("len".into(), a.len().into());
    if depth < JSON_FIRST_DEPTH {
        let first = a
            .iter()
            .take(JSON_FIRST_ELEMENTS)
            .map(|e| json_at_depth(&e, depth + 1));
        map.insert("first".into(), Json::Array(first.collect()));
    }
    Json::Object(map)
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
