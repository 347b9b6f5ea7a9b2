//! `ggufmap inspect --json`: the contract of DESIGN.md ("The command line").
//!
//! The document is serialized as it is produced, straight from the index to
//! the output: memory stays the same for a file of a million tensors or
//! metadata keys as for one of ten.

use std::io::Write;

use ggufmap::{Gguf, TensorView};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::values::{self, JsonValue};

/// Writes the whole description of `gguf` as one pretty-printed JSON object.
pub fn write(gguf: &Gguf<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &Document(gguf))?;
    writeln!(out)?;
    Ok(())
}

struct Document<'a, 'data>(&'a Gguf<'data>);

impl Serialize for Document<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let gguf = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("version", &gguf.version())?;
        map.serialize_entry("byte_order", super::byte_order_name(gguf.byte_order()))?;
        map.serialize_entry("alignment", &gguf.alignment())?;
        map.serialize_entry("tensor_count", &gguf.tensor_count())?;
        map.serialize_entry("metadata_count", &gguf.metadata().len())?;
        map.serialize_entry("data_offset", &gguf.data_start())?;
        map.serialize_entry("file_size", &gguf.file_size())?;
        if gguf.part_count() > 1 {
            map.serialize_entry("parts", &Parts(gguf))?;
        }
        map.serialize_entry("tensor_bytes", &gguf.tensor_bytes())?;
        map.serialize_entry("metadata", &Metadata(gguf))?;
        map.serialize_entry("tensors", &Tensors(gguf))?;
        map.serialize_entry("type_histogram", &Histogram(gguf))?;
        map.end()
    }
}

/// The files of a split model, in order: path and size.
struct Parts<'a, 'data>(&'a Gguf<'data>);

impl Serialize for Parts<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let gguf = self.0;
        let mut seq = s.serialize_seq(Some(gguf.part_count()))?;
        for (path, size) in gguf.part_paths().zip(gguf.part_sizes()) {
            let path = path.map(|p| p.display().to_string());
            seq.serialize_element(&serde_json::json!({ "path": path, "file_size": size }))?;
        }
        seq.end()
    }
}

/// Key -> value, in file order.
struct Metadata<'a, 'data>(&'a Gguf<'data>);

impl Serialize for Metadata<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let metadata = self.0.metadata();
        let mut map = s.serialize_map(Some(metadata.len()))?;
        for (key, value) in metadata.iter() {
            map.serialize_entry(key, &JsonValue(&value))?;
        }
        map.end()
    }
}

/// Every tensor, in file order.
struct Tensors<'a, 'data>(&'a Gguf<'data>);

impl Serialize for Tensors<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.tensor_count()))?;
        for t in self.0.tensors() {
            seq.serialize_element(&Tensor(t))?;
        }
        seq.end()
    }
}

/// One tensor: `offset` is absolute in the file of its part (like
/// gguf-dump's), `relative_offset` the value stored in the file (from the
/// data section), `part` the 0-based part holding it (`split.no`).
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
        map.serialize_entry("offset", &t.byte_range().start)?;
        map.serialize_entry("relative_offset", &t.info().data_offset())?;
        map.serialize_entry("bytes", &t.info().n_bytes())?;
        map.serialize_entry("part", &t.part())?;
        map.end()
    }
}

/// Type name -> count, bytes and share of all tensor bytes.
struct Histogram<'a, 'data>(&'a Gguf<'data>);

impl Serialize for Histogram<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let total = self.0.tensor_bytes();
        let stats = super::histogram(self.0);
        let mut map = s.serialize_map(Some(stats.len()))?;
        for stat in stats {
            let share = values::f64_json(crate::output::percent(stat.bytes, total));
            let entry = serde_json::json!({
                "count": stat.count,
                "bytes": stat.bytes,
                "percent": share,
            });
            map.serialize_entry(stat.dtype.name(), &entry)?;
        }
        map.end()
    }
}
