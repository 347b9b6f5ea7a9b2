//! `ggufmap inspect --json`: the contract `schemas/inspect.schema.json`
//! documents field by field.
//!
//! The document is serialized as it is produced, straight from the index to
//! the output: memory stays the same for a file of a million tensors or
//! metadata keys as for one of ten.

use std::io::Write;
use std::path::Path;

use ggufmap::{Gguf, TensorView};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::Selection;
use crate::report;
use crate::values::{self, JsonValue};

/// Writes the description of `gguf` as one pretty-printed JSON object.
pub fn write(
    gguf: &Gguf<'_>,
    path: &Path,
    selection: &Selection,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    report::write_json(
        &Document {
            gguf,
            path,
            selection,
        },
        out,
    )
}

struct Document<'a, 'data> {
    gguf: &'a Gguf<'data>,
    path: &'a Path,
    selection: &'a Selection,
}

impl Serialize for Document<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let gguf = self.gguf;
        let mut map = report::start(s, "inspect", self.path)?;
        map.serialize_entry("gguf_version", &gguf.version())?;
        map.serialize_entry("byte_order", super::byte_order_name(gguf.byte_order()))?;
        map.serialize_entry("alignment", &gguf.alignment())?;
        map.serialize_entry("tensor_count", &gguf.tensor_count())?;
        map.serialize_entry("metadata_count", &gguf.metadata().len())?;
        map.serialize_entry("data_start", &gguf.data_start())?;
        map.serialize_entry("file_size", &gguf.file_size())?;
        map.serialize_entry("tensor_bytes", &gguf.tensor_bytes())?;
        map.serialize_entry("parts", &Parts(gguf))?;
        map.serialize_entry("metadata", &Metadata(self))?;
        if self.selection.shows_tensors() {
            map.serialize_entry("tensors", &Tensors(self))?;
        }
        map.serialize_entry("type_histogram", &Histogram(gguf))?;
        map.end()
    }
}

/// The model's files, in order (one for a file that is not split).
struct Parts<'a, 'data>(&'a Gguf<'data>);

impl Serialize for Parts<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let gguf = self.0;
        let mut tensors = vec![0u64; gguf.part_count()];
        for t in gguf.tensors() {
            if let Some(count) = tensors.get_mut(t.part()) {
                *count += 1;
            }
        }
        let mut seq = s.serialize_seq(Some(gguf.part_count()))?;
        let parts = gguf.part_paths().zip(gguf.part_sizes()).zip(tensors);
        for (part, ((path, size), tensor_count)) in parts.enumerate() {
            let path = path.map(|p| p.display().to_string());
            seq.serialize_element(&serde_json::json!({
                "part": part,
                "path": path,
                "file_size": size,
                "tensor_count": tensor_count,
            }))?;
        }
        seq.end()
    }
}

/// Key -> typed value, in file order.
struct Metadata<'a, 'b, 'data>(&'a Document<'b, 'data>);

impl Serialize for Metadata<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Document {
            gguf, selection, ..
        } = self.0;
        let mut map = s.serialize_map(None)?;
        for (key, value) in selection.metadata(gguf) {
            let value = JsonValue {
                value: &value,
                arrays: selection.arrays,
            };
            map.serialize_entry(key, &value)?;
        }
        map.end()
    }
}

/// Every tensor selected, in file order.
struct Tensors<'a, 'b, 'data>(&'a Document<'b, 'data>);

impl Serialize for Tensors<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Document {
            gguf, selection, ..
        } = self.0;
        let mut seq = s.serialize_seq(None)?;
        for t in selection.tensors(gguf) {
            seq.serialize_element(&Tensor(t))?;
        }
        seq.end()
    }
}

/// One tensor: `data_offset` as stored (from the start of the data
/// section), `file_offset` from the start of its part's file, `part` the
/// 0-based part holding it.
struct Tensor<'a>(TensorView<'a>);

impl Serialize for Tensor<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = &self.0;
        let mut map = s.serialize_map(Some(9))?;
        map.serialize_entry("name", t.name())?;
        map.serialize_entry("dtype", t.dtype().name())?;
        map.serialize_entry("dims", t.dims())?;
        map.serialize_entry("shape", &t.shape())?;
        map.serialize_entry("n_elements", &t.n_elements())?;
        map.serialize_entry("bytes", &t.info().n_bytes())?;
        map.serialize_entry("part", &t.part())?;
        map.serialize_entry("data_offset", &t.info().data_offset())?;
        map.serialize_entry("file_offset", &t.byte_range().start)?;
        map.end()
    }
}

/// One entry per tensor type, largest share first.
struct Histogram<'a, 'data>(&'a Gguf<'data>);

impl Serialize for Histogram<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let total = self.0.tensor_bytes();
        let stats = super::histogram(self.0);
        let mut seq = s.serialize_seq(Some(stats.len()))?;
        for stat in stats {
            let share = values::f64_json(crate::output::percent(stat.bytes, total));
            seq.serialize_element(&serde_json::json!({
                "dtype": stat.dtype.name(),
                "count": stat.count,
                "bytes": stat.bytes,
                "percent": share,
            }))?;
        }
        seq.end()
    }
}
