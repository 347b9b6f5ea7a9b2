//! [`Gguf::write_split`]: a model written as the parts of a split model;
//! [`Gguf::write_merged`]: the way back, any model written as one file.

use std::path::{Path, PathBuf};

use crate::atomic::{same_file, AtomicFile};
use crate::error::{Error, Result, WriteRefusal};
use crate::format::{align_up, ALIGNMENT_KEY};
use crate::model::Gguf;
use crate::split::{
    part_file_name, sibling, SplitLimit, SPLIT_COUNT_KEY, SPLIT_NO_KEY, SPLIT_TENSORS_COUNT_KEY,
};
use crate::tensor::TensorView;
use crate::write::{GgufWriter, MetaValue};

impl Gguf<'_> {
    /// Writes this model as a split model of parts holding at most
    /// `max_tensors` tensors each: [`Gguf::write_split_with`] with
    /// [`SplitLimit::Tensors`].
    ///
    /// # Errors
    /// As [`Gguf::write_split_with`].
    pub fn write_split(
        &self,
        prefix: impl AsRef<Path>,
        max_tensors: usize,
    ) -> Result<Vec<PathBuf>> {
        self.write_split_with(prefix, SplitLimit::Tensors(max_tensors))
    }

    /// Writes this model as a split model, as llama.cpp's `gguf-split`
    /// does: files `<prefix>-00001-of-0000n.gguf` and on, the first holding
    /// the model's metadata in its order (its own split keys, if any,
    /// dropped) followed by the three split keys, every later part the
    /// split keys alone, tensors in the model's order, each part's data
    /// padded to the alignment. The last part ends as the model's last file
    /// ends (padded or not), so [`Gguf::write_merged`] of the parts gives
    /// back, byte for byte, a file this crate, llama.cpp or the `gguf`
    /// Python package wrote. The parts are written to temporary files and
    /// renamed into place together once all are complete, never over one of
    /// the model's own files; returns their paths.
    ///
    /// Tensor data streams from the model to the parts (from memory, or
    /// read in bounded chunks from a stream): memory holds each part's
    /// header, not its data.
    ///
    /// # Errors
    /// [`Error::Write`] for a limit of 0 or more than `u16::MAX` parts;
    /// [`Error::Io`] naming a part that would replace one of the model's
    /// files; [`Error::TensorRead`] if a streamed tensor cannot be read;
    /// the errors of [`GgufWriter::write_file`].
    pub fn write_split_with(
        &self,
        prefix: impl AsRef<Path>,
        limit: SplitLimit,
    ) -> Result<Vec<PathBuf>> {
        let refuse = |reason| Error::Write {
            what: "split model".to_owned(),
            reason,
        };
        let groups = self
            .part_groups(limit)
            .ok_or_else(|| refuse(WriteRefusal::NoTensorsPerPart))?;
        let count = u16::try_from(groups.len()).map_err(|_| refuse(WriteRefusal::TooManyParts))?;
        let tensors_count =
            i32::try_from(self.tensor_count()).map_err(|_| refuse(WriteRefusal::TooManyTensors))?;
        let prefix = prefix.as_ref();
        let stem = prefix
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| refuse(WriteRefusal::PrefixNotUtf8))?;
        let inputs: Vec<&Path> = self.part_paths().flatten().collect();
        let paths: Vec<PathBuf> = (0..count)
            .map(|no| sibling(prefix, &part_file_name(stem, no, count)))
            .collect();
        // Refuse before writing anything, not after the first parts.
        for path in &paths {
            for input in &inputs {
                let io = |source| Error::Io {
                    path: Some(path.clone()),
                    source,
                };
                if same_file(path, input).map_err(io)? {
                    return Err(io(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "output {} is the input file {}",
                            path.display(),
                            input.display()
                        ),
                    )));
                }
            }
        }
        let end_padded = self.ends_padded();
        let mut tensors = self.tensors();
        // Every part is written to its temporary file first and renamed into
        // place only when all are complete: a failure (a full disk) leaves
        // no new part behind and no file that was there replaced.
        let mut written = Vec::with_capacity(paths.len());
        for ((no, &n), path) in (0..count).zip(&groups).zip(&paths) {
            let mut w = GgufWriter::new();
            w.set_alignment(self.alignment())?;
            w.set_byte_order(self.byte_order());
            w.pad_end(no + 1 < count || end_padded);
            if no == 0 {
                self.copy_metadata(&mut w, |_| false)?;
            }
            w.add_metadata(SPLIT_NO_KEY, MetaValue::U16(no))?;
            w.add_metadata(SPLIT_COUNT_KEY, MetaValue::U16(count))?;
            w.add_metadata(SPLIT_TENSORS_COUNT_KEY, MetaValue::I32(tensors_count))?;
            let part: Vec<TensorView<'_>> = tensors.by_ref().take(n).collect();
            for t in &part {
                w.declare_tensor(t.name(), t.dtype(), t.dims())?;
            }
            let io = |source| Error::Io {
                path: Some(path.clone()),
                source,
            };
            let mut out = AtomicFile::create_apart_from(path, &inputs).map_err(io)?;
            let mut next = part.iter();
            w.write_to_with(&mut out, |_, out| match next.next() {
                Some(t) => t.write_bytes_to(out).map_err(std::io::Error::other),
                None => Ok(()),
            })
            .map_err(|e| match e {
                Error::Io { path: None, source } => io(source),
                other => other,
            })?;
            written.push(out);
        }
        for (out, path) in written.into_iter().zip(&paths) {
            out.commit().map_err(|source| Error::Io {
                path: Some(path.clone()),
                source,
            })?;
        }
        Ok(paths)
    }

    /// How many tensors each part takes, in order; `None` for a limit of 0.
    /// A model without tensors is one part.
    fn part_groups(&self, limit: SplitLimit) -> Option<Vec<usize>> {
        let total = self.tensor_count();
        match limit {
            SplitLimit::Tensors(0) | SplitLimit::Bytes(0) => None,
            SplitLimit::Tensors(max) => {
                let mut groups = vec![max; total / max];
                if total % max != 0 || total == 0 {
                    groups.push(total % max);
                }
                Some(groups)
            }
            SplitLimit::Bytes(max) => {
                let mut groups = vec![0usize];
                let mut bytes = 0u64;
                for t in self.tensors() {
                    let n = t.info().n_bytes();
                    let padded = align_up(n, self.alignment()).unwrap_or(n);
                    if let Some(last) = groups.last_mut() {
                        if *last > 0 && bytes.saturating_add(padded) > max {
                            groups.push(1);
                            bytes = padded;
                        } else {
                            *last += 1;
                            bytes = bytes.saturating_add(padded);
                        }
                    }
                }
                Some(groups)
            }
        }
    }

    /// Adds this model's metadata to `w` in file order, `general.alignment`
    /// where the model has it, leaving out the split keys and the keys
    /// `skip` names.
    ///
    /// # Errors
    /// Those of [`GgufWriter::add_metadata`].
    pub(crate) fn copy_metadata(
        &self,
        w: &mut GgufWriter<'_>,
        skip: impl Fn(&str) -> bool,
    ) -> Result<()> {
        for (key, value) in self.metadata().iter() {
            if key == ALIGNMENT_KEY {
                w.add_alignment_key()?;
            } else if ![SPLIT_NO_KEY, SPLIT_COUNT_KEY, SPLIT_TENSORS_COUNT_KEY].contains(&key)
                && !skip(key)
            {
                w.add_metadata(key, MetaValue::from_value(&value))?;
            }
        }
        Ok(())
    }

    /// True when the model's last file ends with the last tensor's data
    /// padded to the alignment (as llama.cpp and the `gguf` Python package
    /// write it), or has no tensor data to pad: what a copy passes to
    /// [`GgufWriter::pad_end`] to end as the model does.
    pub fn ends_padded(&self) -> bool {
        let last_part = self.part_count().saturating_sub(1);
        let Some(size) = self.part_sizes().last() else {
            return true;
        };
        let end = self
            .tensors()
            .filter(|t| t.part() == last_part)
            .map(|t| t.byte_range().end)
            .max();
        match end {
            None => true,
            Some(end) => align_up(end, self.alignment()).is_some_and(|padded| size >= padded),
        }
    }
}

impl Gguf<'_> {
    /// Writes this model (every part of a split one) as one file at
    /// `path`: the first part's metadata in its order without the split
    /// keys, then every tensor in the model's order, with the model's
    /// alignment and byte order, the end padded as the model's last file is.
    /// Merging the parts [`Gguf::write_split`] wrote gives back the file it
    /// split, byte for byte, and llama.cpp's and the `gguf` Python package's
    /// parts merge the same way.
    ///
    /// The file is written atomically and never over one of the model's own
    /// files. Tensor data streams from the parts (from memory, or read in
    /// bounded chunks from a stream): memory holds the header, not the data.
    ///
    /// # Errors
    /// [`Error::Io`] if `path` is one of the model's files or cannot be
    /// written; [`Error::TensorRead`] if a streamed tensor cannot be read;
    /// the errors of [`GgufWriter::write_file`].
    pub fn write_merged(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut w = GgufWriter::new();
        w.set_alignment(self.alignment())?;
        w.set_byte_order(self.byte_order());
        w.pad_end(self.ends_padded());
        self.copy_metadata(&mut w, |_| false)?;
        for t in self.tensors() {
            w.declare_tensor(t.name(), t.dtype(), t.dims())?;
        }
        let inputs: Vec<&Path> = self.part_paths().flatten().collect();
        let io = |source| Error::Io {
            path: Some(PathBuf::from(path)),
            source,
        };
        let out = AtomicFile::create_apart_from(path, &inputs).map_err(io)?;
        let mut tensors = self.tensors();
        w.write_atomic_with(out, |_, out| match tensors.next() {
            Some(t) => t.write_bytes_to(out).map_err(std::io::Error::other),
            None => Ok(()),
        })
    }
}
