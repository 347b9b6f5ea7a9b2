//! `ggufmap inspect --json`: the contract of DESIGN.md ("The command line").

use std::io::Write;

use ggufmap::{Gguf, TensorView};
use serde_json::{json, Map, Value as Json};

use crate::values;

/// Writes the whole description of `gguf` as one pretty-printed JSON object.
pub fn write(gguf: &Gguf<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    let doc = json!({
        "version": gguf.version(),
        "byte_order": super::byte_order_name(gguf.byte_order()),
        "alignment": gguf.alignment(),
        "tensor_count": gguf.tensor_count(),
        "metadata_count": gguf.metadata().len(),
        "data_offset": gguf.data_offset(),
        "file_size": gguf.bytes().len(),
        "tensor_bytes": gguf.tensor_bytes(),
        "metadata": metadata(gguf),
        "tensors": gguf.tensors().map(|t| tensor(&t)).collect::<Vec<_>>(),
        "type_histogram": histogram(gguf),
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}

/// Key -> value, keys in file order where serde_json keeps order, sorted
/// otherwise.
fn metadata(gguf: &Gguf<'_>) -> Json {
    let map: Map<String, Json> = gguf
        .metadata()
        .iter()
        .map(|(key, value)| (key.to_owned(), values::to_json(&value)))
        .collect();
    Json::Object(map)
}

/// One tensor: `offset` is absolute in the file (like gguf-dump's),
/// `relative_offset` the value stored in the file (from the data section).
fn tensor(t: &TensorView<'_>) -> Json {
    json!({
        "name": t.name(),
        "dtype": t.dtype().name(),
        "dims": t.dims(),
        "shape": t.shape(),
        "n_elements": t.n_elements(),
        "offset": t.byte_range().start,
        "relative_offset": t.info().data_offset(),
        "bytes": t.info().n_bytes(),
    })
}

/// Type name -> count, bytes and share of all tensor bytes.
fn histogram(gguf: &Gguf<'_>) -> Json {
    let total = gguf.tensor_bytes();
    let map: Map<String, Json> = super::histogram(gguf)
        .into_iter()
        .map(|s| {
            let entry = json!({
                "count": s.count,
                "bytes": s.bytes,
                "percent": values::f64_json(crate::output::percent(s.bytes, total)),
            });
            (s.dtype.name().to_owned(), entry)
        })
        .collect();
    Json::Object(map)
}
