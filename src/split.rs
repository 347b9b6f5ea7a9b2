//! Models split over several files, as llama.cpp's `gguf-split` and the
//! `gguf` Python package write them.
//!
//! A split model of `n` parts is stored as `<prefix>-00001-of-0000n.gguf`
//! through `<prefix>-0000n-of-0000n.gguf`. Every part is a complete GGUF
//! file holding some of the tensors and three keys: [`SPLIT_NO_KEY`] (`u16`,
//! the part's 0-based position), [`SPLIT_COUNT_KEY`] (`u16`, the number of
//! parts) and [`SPLIT_TENSORS_COUNT_KEY`] (`i32`, the number of tensors in
//! all parts together). The model's metadata is in the first part.
//!
//! [`Gguf::open`](crate::Gguf::open) on the first part opens every part
//! and presents one model over all of them. It checks what llama.cpp's
//! model loader checks (every part present, each part's `split.no` in its
//! place, the total tensor count, no tensor in two parts) and, strictly,
//! that every part carries the same `split.count` and
//! `split.tensors.count` as the first. A file without split keys opens as
//! a model of one part. This module holds those checks; the model itself
//! is [`Gguf`](crate::Gguf).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::{Metadata, Value, ValueType};
use crate::part::Part;

/// The key holding a part's 0-based position (`u16`).
pub const SPLIT_NO_KEY: &str = "split.no";
/// The key holding the number of parts (`u16`).
pub const SPLIT_COUNT_KEY: &str = "split.count";
/// The key holding the number of tensors in all parts together (`i32`).
pub const SPLIT_TENSORS_COUNT_KEY: &str = "split.tensors.count";

/// How [`Gguf::write_split_with`](crate::Gguf::write_split_with) decides where a part ends, as the two
/// modes of llama.cpp's `gguf-split`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitLimit {
    /// At most this many tensors per part (`--split-max-tensors`).
    Tensors(usize),
    /// At most this many bytes of tensor data per part, each tensor counted
    /// with its padding (`--split-max-size`); a tensor larger than the
    /// limit gets a part of its own. Headers are not counted.
    Bytes(u64),
}

/// The file name of part `part` (0-based) of `count`, given the prefix:
/// `<prefix>-00001-of-00003.gguf` for part 0 of 3, as llama.cpp's
/// `llama_split_path` writes it.
pub fn part_file_name(prefix: &str, part: u16, count: u16) -> String {
    format!("{prefix}{}", part_suffix(part, count))
}

fn part_suffix(part: u16, count: u16) -> String {
    format!("-{:05}-of-{count:05}.gguf", u32::from(part) + 1)
}

/// The split keys of one part, each absent or of the right type.
pub(crate) struct SplitKeys {
    no: Option<u16>,
    count: Option<u16>,
    tensors_count: Option<u64>,
}

impl SplitKeys {
    /// Reads the keys; outside the first part all three are required.
    fn read(metadata: &Metadata<'_>, path: &Path, first: bool) -> Result<Self> {
        let get = |key: &'static str, expected: ValueType| -> Result<Option<Value<'_>>> {
            match metadata.get(key) {
                None if first => Ok(None),
                None => Err(Error::SplitKeyMissing {
                    path: path.to_owned(),
                    key,
                }),
                Some(v) if v.value_type() == expected => Ok(Some(v)),
                Some(v) => Err(Error::SplitKeyType {
                    path: path.to_owned(),
                    key,
                    found: v.value_type(),
                    expected,
                }),
            }
        };
        let as_u16 = |v: Option<Value<'_>>| match v {
            Some(Value::U16(v)) => Some(v),
            _ => None,
        };
        let no = as_u16(get(SPLIT_NO_KEY, ValueType::U16)?);
        let count = as_u16(get(SPLIT_COUNT_KEY, ValueType::U16)?);
        let tensors_count = match get(SPLIT_TENSORS_COUNT_KEY, ValueType::I32)? {
            Some(Value::I32(v)) => Some(u64::try_from(v).map_err(|_| Error::SplitKeyValue {
                path: path.to_owned(),
                key: SPLIT_TENSORS_COUNT_KEY,
                value: i64::from(v),
                expected: "not negative",
            })?),
            _ => None,
        };
        Ok(SplitKeys {
            no,
            count,
            tensors_count,
        })
    }

    /// The keys of a model's first part (or only file), checked: a
    /// `split.count` of at least 1, a `split.no` of 0, and for a model of
    /// several parts both `split.no` and `split.tensors.count` present (as
    /// llama.cpp's loader requires).
    pub(crate) fn of_first(metadata: &Metadata<'_>, path: &Path) -> Result<Self> {
        let keys = SplitKeys::read(metadata, path, true)?;
        if keys.count == Some(0) {
            return Err(Error::SplitKeyValue {
                path: path.to_owned(),
                key: SPLIT_COUNT_KEY,
                value: 0,
                expected: "at least 1",
            });
        }
        if let Some(no) = keys.no.filter(|&no| no != 0) {
            return Err(Error::SplitMismatch {
                path: path.to_owned(),
                key: SPLIT_NO_KEY,
                found: i64::from(no),
                expected: 0,
            });
        }
        if keys.part_count() > 1 {
            for (key, present) in [
                (SPLIT_NO_KEY, keys.no.is_some()),
                (SPLIT_TENSORS_COUNT_KEY, keys.tensors_count.is_some()),
            ] {
                if !present {
                    return Err(Error::SplitKeyMissing {
                        path: path.to_owned(),
                        key,
                    });
                }
            }
        }
        Ok(keys)
    }

    /// Number of parts (1 without split keys).
    pub(crate) fn part_count(&self) -> u16 {
        self.count.unwrap_or(1)
    }

    /// The paths of the parts after the first at `first_path`, named as
    /// `gguf-split` names them, beside it.
    ///
    /// # Errors
    /// [`Error::SplitName`] when the first part is not named
    /// `<prefix>-00001-of-<count>.gguf`.
    pub(crate) fn later_paths(&self, first_path: &Path) -> Result<Vec<PathBuf>> {
        let count = self.part_count();
        if count <= 1 {
            return Ok(Vec::new());
        }
        let prefix = split_prefix(first_path, count)?;
        Ok((1..count)
            .map(|no| sibling(first_path, &part_file_name(&prefix, no, count)))
            .collect())
    }

    /// Checks that a model given as `paths` paths has as many parts as
    /// the first says.
    ///
    /// # Errors
    /// [`Error::SplitMismatch`] on `split.count`.
    pub(crate) fn check_path_count(&self, first_path: &Path, paths: usize) -> Result<()> {
        let count = i64::from(self.part_count());
        let paths = i64::try_from(paths).unwrap_or(i64::MAX);
        if paths != count {
            return Err(Error::SplitMismatch {
                path: first_path.to_owned(),
                key: SPLIT_COUNT_KEY,
                found: count,
                expected: paths,
            });
        }
        Ok(())
    }

    /// Checks the parts' tensors against `split.tensors.count`.
    ///
    /// # Errors
    /// [`Error::SplitTensorCount`].
    pub(crate) fn check_tensor_count(&self, first_path: &Path, found: usize) -> Result<()> {
        match self.tensors_count {
            Some(expected) if expected != found as u64 => Err(Error::SplitTensorCount {
                path: first_path.to_owned(),
                found: found as u64,
                expected,
            }),
            _ => Ok(()),
        }
    }

    /// Checks that part `no`, at `path`, says what the first part says.
    ///
    /// # Errors
    /// The split key errors, naming `path`.
    pub(crate) fn check_part(&self, path: &Path, no: u16, metadata: &Metadata<'_>) -> Result<()> {
        let part = SplitKeys::read(metadata, path, false)?;
        let mismatch = |key, found: Option<i64>, expected: Option<i64>| match (found, expected) {
            (Some(found), Some(expected)) if found != expected => Err(Error::SplitMismatch {
                path: path.to_owned(),
                key,
                found,
                expected,
            }),
            _ => Ok(()),
        };
        let wide = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
        mismatch(SPLIT_NO_KEY, part.no.map(i64::from), Some(i64::from(no)))?;
        mismatch(
            SPLIT_COUNT_KEY,
            part.count.map(i64::from),
            Some(i64::from(self.part_count())),
        )?;
        mismatch(
            SPLIT_TENSORS_COUNT_KEY,
            wide(part.tensors_count),
            wide(self.tensors_count),
        )
    }

    /// An error opening part `no` at `path`, as the model's error:
    /// [`Error::SplitPartMissing`] for a file that does not exist,
    /// [`Error::SplitPart`] naming the part for any other.
    pub(crate) fn part_error(&self, path: &Path, no: u16, e: Error) -> Error {
        match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::SplitPartMissing {
                    path: path.to_owned(),
                    part: no,
                    count: self.part_count(),
                }
            }
            other => Error::SplitPart {
                path: path.to_owned(),
                part: no,
                source: Box::new(other),
            },
        }
    }
}

/// The prefix of the first part's file name, which must end in
/// `-00001-of-<count>.gguf`.
fn split_prefix(first_path: &Path, count: u16) -> Result<String> {
    let suffix = part_suffix(0, count);
    first_path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_suffix(suffix.as_str()))
        .filter(|prefix| !prefix.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Error::SplitName {
            path: first_path.to_owned(),
            count,
        })
}

/// `name` in the directory of `path`.
pub(crate) fn sibling(path: &Path, name: &str) -> PathBuf {
    match path.parent() {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

/// (part, position) of every tensor of `parts` sorted by name, or the
/// error for a name found in two parts (naming the later part).
pub(crate) fn index_by_name(parts: &[Part<'_>]) -> Result<Vec<(u32, u32)>> {
    let name = |p: u32, i: u32| {
        parts
            .get(p as usize)
            .map_or("", |part| part.tensor_name(i as usize))
    };
    let total: usize = parts.iter().map(|p| p.index.tensors().len()).sum();
    let mut by_name = Vec::with_capacity(total);
    for (no, part) in parts.iter().enumerate() {
        // At most u16::MAX parts; a part's tensor count is bounded by its
        // size and was checked to fit u32 when it was parsed.
        let no = u32::try_from(no).unwrap_or(u32::MAX);
        let count = part.index.tensors().len();
        by_name.extend((0..count).map(|i| (no, u32::try_from(i).unwrap_or(u32::MAX))));
    }
    // Stable: equal names stay in part order, so the later part comes second.
    by_name.sort_by(|&(pa, a), &(pb, b)| name(pa, a).cmp(name(pb, b)));
    for pair in by_name.windows(2) {
        if let [(pa, a), (pb, b)] = *pair {
            if name(pa, a) == name(pb, b) {
                // Within one part names are unique, so `pb > pa`.
                let path_of = |p: u32| {
                    parts
                        .get(p as usize)
                        .and_then(|part| part.path.clone())
                        .unwrap_or_default()
                };
                return Err(Error::SplitDuplicateTensor {
                    path: path_of(pb),
                    tensor: name(pb, b).to_owned(),
                    first_path: path_of(pa),
                });
            }
        }
    }
    Ok(by_name)
}
