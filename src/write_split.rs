//! [`Gguf::write_split`]: a model written as the parts of a split model.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, WriteRefusal};
use crate::format::ALIGNMENT_KEY;
use crate::model::Gguf;
use crate::split::{
    part_file_name, sibling, SPLIT_COUNT_KEY, SPLIT_NO_KEY, SPLIT_TENSORS_COUNT_KEY,
};
use crate::write::{GgufWriter, MetaValue};

impl Gguf<'_> {
    /// Writes this model as a split model of parts holding at most
    /// `max_tensors` tensors each, as llama.cpp's `gguf-split --split-max-tensors` does:
    /// files `<prefix>-00001-of-0000n.gguf` and on, the first holding the
    /// model's metadata (its own split keys, if any, replaced), every part the
    /// three split keys, tensors in the model's order. Each part is written
    /// atomically ([`GgufWriter::write_file`]); returns their paths.
    ///
    /// Tensor data streams from the model to the parts (from memory, or
    /// read in bounded chunks from a stream): memory holds each part's
    /// header, not its data.
    ///
    /// # Errors
    /// [`Error::Write`] for `max_tensors` of 0 or more than `u16::MAX` parts;
    /// [`Error::TensorRead`] if a streamed tensor cannot be read; the errors
    /// of [`GgufWriter::write_file`].
    pub fn write_split(
        &self,
        prefix: impl AsRef<Path>,
        max_tensors: usize,
    ) -> Result<Vec<PathBuf>> {
        let refuse = |reason| Error::Write {
            what: "split model".to_owned(),
            reason,
        };
        if max_tensors == 0 {
            return Err(refuse(WriteRefusal::NoTensorsPerPart));
        }
        let total = self.tensor_count();
        let count = u16::try_from(total.div_ceil(max_tensors).max(1))
            .map_err(|_| refuse(WriteRefusal::TooManyParts))?;
        let tensors_count =
            i32::try_from(total).map_err(|_| refuse(WriteRefusal::TooManyTensors))?;
        let prefix = prefix.as_ref();
        let stem = prefix
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| refuse(WriteRefusal::PrefixNotUtf8))?;
        let mut tensors = self.tensors();
        let mut paths = Vec::with_capacity(usize::from(count));
        for no in 0..count {
            let mut w = GgufWriter::new();
            w.set_alignment(self.alignment())?;
            w.set_byte_order(self.byte_order());
            if no == 0 {
                for (key, value) in self.metadata().iter() {
                    let split_key =
                        [SPLIT_NO_KEY, SPLIT_COUNT_KEY, SPLIT_TENSORS_COUNT_KEY].contains(&key);
                    if !split_key && key != ALIGNMENT_KEY {
                        w.add_metadata(key, MetaValue::from_value(&value))?;
                    }
                }
            }
            w.add_metadata(SPLIT_NO_KEY, MetaValue::U16(no))?;
            w.add_metadata(SPLIT_COUNT_KEY, MetaValue::U16(count))?;
            w.add_metadata(SPLIT_TENSORS_COUNT_KEY, MetaValue::I32(tensors_count))?;
            for t in tensors.by_ref().take(max_tensors) {
                w.add_tensor(t.name(), t.dtype(), t.dims(), t.read_bytes()?)?;
            }
            let path = sibling(prefix, &part_file_name(stem, no, count));
            w.write_file(&path)?;
            paths.push(path);
        }
        Ok(paths)
    }
}
