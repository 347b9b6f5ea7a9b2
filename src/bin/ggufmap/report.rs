//! What every `--json` document shares: one pretty-printed object whose
//! first keys are `schema_version`, `command` and `file`, then the
//! command's own fields in a fixed order. Sizes are integers in bytes,
//! times floats in seconds (`*_seconds`), names snake_case; NaN and
//! infinities are the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
//! `schemas/<command>.schema.json` documents each command's document.

use std::io::Write;
use std::path::Path;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// The version of every JSON document this build writes: raised when a
/// field changes meaning or goes away (new fields do not raise it).
pub const SCHEMA_VERSION: u32 = 1;

/// Starts a document: `schema_version`, `command` and `file`. The caller
/// adds its fields and ends the map.
pub fn start<S: Serializer>(s: S, command: &str, file: &Path) -> Result<S::SerializeMap, S::Error> {
    let mut map = s.serialize_map(None)?;
    map.serialize_entry("schema_version", &SCHEMA_VERSION)?;
    map.serialize_entry("command", command)?;
    map.serialize_entry("file", &file.display().to_string())?;
    Ok(map)
}

/// Writes `document` pretty-printed, with a final newline.
pub fn write_json(document: &impl Serialize, out: &mut dyn Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, document)?;
    writeln!(out)?;
    Ok(())
}

/// The start of a document built as a `serde_json` value (reports small
/// enough to build whole): `schema_version`, `command` and `file`, then
/// `fields` in their order.
pub fn object(command: &str, file: &Path, fields: serde_json::Value) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    object.insert("schema_version".into(), SCHEMA_VERSION.into());
    object.insert("command".into(), command.into());
    object.insert("file".into(), file.display().to_string().into());
    if let serde_json::Value::Object(fields) = fields {
        object.extend(fields);
    }
    serde_json::Value::Object(object)
}
