//! A bridge for code written against candle's own GGUF reading:
//! [`Gguf::to_candle_content`] and [`Gguf::reader`].

use std::collections::HashMap;

use candle_core::quantized::gguf_file;
use candle_core::Shape;

use super::ADVICE_DEQUANTIZE;
use crate::error::{Error, Result};
use crate::format::{ArrayView, ByteOrder, Value, ValueType};
use crate::model::Gguf;

#[cfg_attr(docsrs, doc(cfg(feature = "candle")))]
impl Gguf<'_> {
    /// candle's [`gguf_file::Content`] for this model, built from the index
    /// (no second parse): metadata converted to candle's values (strings
    /// copied as candle reads them: trailing NULs dropped, invalid UTF-8
    /// replaced), tensor infos with candle's conventions (shape outermost
    /// first, offset relative to the data section). The offsets are those
    /// of [`Gguf::reader`]'s stream, which holds every part of a split
    /// model one after another, so with it code written for candle's GGUF
    /// loading runs unchanged on split and streamed models too:
    ///
    /// ```
    /// # use ggufmap::{GgmlType, Gguf, GgufWriter};
    /// # let mut writer = GgufWriter::new();
    /// # writer.add_tensor("w", GgmlType::F32, &[32], vec![0u8; 128])?;
    /// # let bytes = writer.to_bytes()?;
    /// let file = Gguf::from_bytes(&bytes)?;
    /// let content = file.to_candle_content()?;
    /// let w = content.tensor(&mut file.reader(), "w", &candle_core::Device::Cpu)?;
    /// assert_eq!(w.shape().dims(), &[32]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Memory
    /// candle keeps each array element as a value of its own, 32 bytes
    /// where the file may store one: a `u8` array takes 32 times its size.
    /// So that a file cannot make the bridge take more than a small
    /// multiple of its size, the metadata's candle values may take at most
    /// 8 times the file's size plus 64 MiB (a 262,144-token vocabulary, its
    /// scores and token types take about 25 MiB); past that this is an
    /// error naming the key.
    ///
    /// # Errors
    /// [`Error::CandleMetadataTooLarge`] past that limit;
    /// [`Error::CandleUnsupported`] naming the first tensor of a type
    /// candle cannot read; [`Error::ByteOrder`] naming the first
    /// multi-byte tensor of a big-endian file (candle reads little-endian
    /// only).
    pub fn to_candle_content(&self) -> Result<gguf_file::Content> {
        self.check_candle_metadata_size()?;
        let metadata = self
            .metadata()
            .iter()
            .map(|(key, value)| (candle_string(key.as_bytes()), candle_value(&value)))
            .collect();
        let mut tensor_infos = HashMap::with_capacity(self.tensor_count());
        let part_starts: Vec<u64> = self.part_starts().collect();
        let data_start = self.data_start() as u64;
        for view in self.tensors() {
            let ggml_dtype =
                view.dtype()
                    .candle_qtype()
                    .ok_or_else(|| Error::CandleUnsupported {
                        tensor: view.name().to_owned(),
                        dtype: view.dtype(),
                        target: "gguf_file tensor",
                        reason: ADVICE_DEQUANTIZE,
                    })?;
            if view.byte_order() != ByteOrder::Little && view.dtype().bytes_per_block() > 1 {
                return Err(Error::ByteOrder {
                    tensor: view.name().to_owned(),
                });
            }
            let info = gguf_file::TensorInfo {
                ggml_dtype,
                shape: Shape::from(view.candle_shape()?),
                // In the reader's stream: the part's start, then the
                // tensor's place in its file; never before the first
                // part's data section.
                offset: part_starts
                    .get(view.part())
                    .map_or(0, |start| start + view.byte_range().start - data_start),
            };
            tensor_infos.insert(candle_string(view.name().as_bytes()), info);
        }
        let magic = if self.version() == 2 {
            gguf_file::VersionedMagic::GgufV2
        } else {
            gguf_file::VersionedMagic::GgufV3
        };
        Ok(gguf_file::Content {
            magic,
            metadata,
            tensor_infos,
            tensor_data_offset: data_start,
        })
    }

    /// Refuses metadata whose candle values would pass
    /// [`candle_metadata_limit`], before any is made.
    fn check_candle_metadata_size(&self) -> Result<()> {
        let limit = candle_metadata_limit(self.file_size());
        let mut needed = 0u64;
        // A map entry: the key's `String` and its bytes, the value, and
        // the hash table's own word or two.
        let entry =
            (std::mem::size_of::<String>() + std::mem::size_of::<gguf_file::Value>() + 16) as u64;
        for (key, value) in self.metadata().iter() {
            let own = match &value {
                Value::Array(a) => candle_array_bytes(a),
                Value::String(s) => s.len() as u64,
                _ => 0,
            };
            needed = needed
                .saturating_add(entry)
                .saturating_add(key.len() as u64)
                .saturating_add(own);
            if needed > limit {
                return Err(Error::CandleMetadataTooLarge {
                    key: key.to_owned(),
                    needed,
                    limit,
                });
            }
        }
        Ok(())
    }
}

/// Bytes the metadata of a file of `file_len` bytes may take as candle
/// values.
fn candle_metadata_limit(file_len: u64) -> u64 {
    file_len.saturating_mul(8).saturating_add(64 << 20)
}

/// Bytes of candle values (and string contents) an array becomes; nested
/// arrays are walked, without allocating.
fn candle_array_bytes(a: &ArrayView<'_>) -> u64 {
    let value = std::mem::size_of::<gguf_file::Value>() as u64;
    let own = a.len().saturating_mul(value);
    match a.element_type() {
        ValueType::Array => a.iter().fold(own, |sum, element| match element {
            Value::Array(inner) => sum.saturating_add(candle_array_bytes(&inner)),
            _ => sum,
        }),
        ValueType::String => a.iter().fold(own, |sum, element| match element {
            Value::String(s) => sum.saturating_add(s.len() as u64),
            _ => sum,
        }),
        _ => own,
    }
}

/// A string as candle's GGUF reader makes it: trailing NULs dropped,
/// invalid UTF-8 replaced by U+FFFD.
fn candle_string(mut bytes: &[u8]) -> String {
    while let [rest @ .., 0] = bytes {
        bytes = rest;
    }
    String::from_utf8_lossy(bytes).into_owned()
}

fn candle_value(value: &Value<'_>) -> gguf_file::Value {
    use gguf_file::Value as V;
    match *value {
        Value::U8(v) => V::U8(v),
        Value::I8(v) => V::I8(v),
        Value::U16(v) => V::U16(v),
        Value::I16(v) => V::I16(v),
        Value::U32(v) => V::U32(v),
        Value::I32(v) => V::I32(v),
        Value::F32(v) => V::F32(v),
        Value::Bool(v) => V::Bool(v),
        Value::String(s) => V::String(candle_string(s.as_bytes())),
        Value::Array(a) => V::Array(a.iter().map(|v| candle_value(&v)).collect()),
        Value::U64(v) => V::U64(v),
        Value::I64(v) => V::I64(v),
        Value::F64(v) => V::F64(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_strings_drop_trailing_nuls() {
        assert_eq!(candle_string(b"abc\0\0"), "abc");
        assert_eq!(candle_string(b"a\0b"), "a\0b");
        assert_eq!(candle_string(b"\xff"), "\u{fffd}");
    }
}
