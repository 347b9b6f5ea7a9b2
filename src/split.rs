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
//! [`SplitGguf::open`] takes the first part, maps every part and presents
//! one tensor index over all of them. It checks what llama.cpp's model
//! loader checks (every part present, each part's `split.no` in its place,
//! the total tensor count, no tensor in two parts) and, strictly, that every
//! part carries the same `split.count` and `split.tensors.count` as the
//! first. A file without split keys opens as a model of one part.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::file::{Gguf, OpenOptions};
use crate::format::{Metadata, Value, ValueType};
use crate::tensor::TensorView;

/// The key holding a part's 0-based position (`u16`).
pub const SPLIT_NO_KEY: &str = "split.no";
/// The key holding the number of parts (`u16`).
pub const SPLIT_COUNT_KEY: &str = "split.count";
/// The key holding the number of tensors in all parts together (`i32`).
pub const SPLIT_TENSORS_COUNT_KEY: &str = "split.tensors.count";

/// The file name of part `part` (0-based) of `count`, given the prefix:
/// `<prefix>-00001-of-00003.gguf` for part 0 of 3, as llama.cpp's
/// `llama_split_path` writes it.
pub fn part_file_name(prefix: &str, part: u16, count: u16) -> String {
    format!("{prefix}{}", part_suffix(part, count))
}

fn part_suffix(part: u16, count: u16) -> String {
    format!("-{:05}-of-{count:05}.gguf", u32::from(part) + 1)
}

/// A model split over several GGUF files, opened as one.
///
/// Each part is a [`Gguf`] of its own (a mapping, or bytes in memory with
/// [`OpenOptions::in_memory`]); the mapping contract on [`Gguf`] holds for
/// every part. The index over all parts stores two integers per tensor and
/// no names: opening allocates O(parts + tensors).
#[derive(Debug)]
pub struct SplitGguf {
    parts: Vec<Gguf<'static>>,
    paths: Vec<PathBuf>,
    /// (part, position in the part) of every tensor, sorted by name.
    by_name: Vec<(u32, u32)>,
}

impl SplitGguf {
    /// Opens the model whose first part (or only file) is at `path`: maps
    /// every part and checks that they belong together.
    ///
    /// # Errors
    /// Any error of [`Gguf::open`] for the first part;
    /// [`Error::SplitKeyMissing`], [`Error::SplitKeyType`],
    /// [`Error::SplitKeyValue`] for split keys that are absent, of the wrong
    /// type or out of range; [`Error::SplitName`] when the first part is
    /// not named `<prefix>-00001-of-<count>.gguf`;
    /// [`Error::SplitPartMissing`] for a part that does not exist;
    /// [`Error::SplitPart`] for any other error opening a later part;
    /// [`Error::SplitMismatch`] for a part whose split keys say it belongs
    /// elsewhere or to another model; [`Error::SplitDuplicateTensor`] for a
    /// tensor in two parts; [`Error::SplitTensorCount`] when the parts hold
    /// another number of tensors than `split.tensors.count` says.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// [`SplitGguf::open`] with options, applied to every part.
    ///
    /// # Errors
    /// As [`SplitGguf::open`].
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Self> {
        let first_path = path.as_ref().to_owned();
        let first = Gguf::open_with(&first_path, options)?;
        let keys = SplitKeys::read(&first.metadata(), &first_path, true)?;
        let count = keys.count.unwrap_or(1);
        if count == 0 {
            return Err(Error::SplitKeyValue {
                path: first_path,
                key: SPLIT_COUNT_KEY,
                value: 0,
                expected: "at least 1",
            });
        }
        if let Some(no) = keys.no {
            if no != 0 {
                return Err(Error::SplitMismatch {
                    path: first_path,
                    key: SPLIT_NO_KEY,
                    found: i64::from(no),
                    expected: 0,
                });
            }
        }
        if count > 1 {
            // As llama.cpp's loader: the first part of a split model says it
            // is the first, and how many tensors the parts hold.
            for (key, present) in [
                (SPLIT_NO_KEY, keys.no.is_some()),
                (SPLIT_TENSORS_COUNT_KEY, keys.tensors_count.is_some()),
            ] {
                if !present {
                    return Err(Error::SplitKeyMissing {
                        path: first_path,
                        key,
                    });
                }
            }
        }

        let mut parts = Vec::with_capacity(usize::from(count));
        let mut paths = Vec::with_capacity(usize::from(count));
        parts.push(first);
        paths.push(first_path.clone());
        if count > 1 {
            let prefix = split_prefix(&first_path, count)?;
            for no in 1..count {
                let path = sibling(&first_path, &part_file_name(&prefix, no, count));
                let part = open_part(&path, no, count, options)?;
                let found = SplitKeys::read(&part.metadata(), &path, false)?;
                check_part(&path, no, &keys, &found)?;
                parts.push(part);
                paths.push(path);
            }
        }

        let by_name = build_index(&parts, &paths)?;
        if let Some(expected) = keys.tensors_count {
            let found = by_name.len() as u64;
            if found != expected {
                return Err(Error::SplitTensorCount {
                    path: first_path,
                    found,
                    expected,
                });
            }
        }
        Ok(SplitGguf {
            parts,
            paths,
            by_name,
        })
    }

    /// The parts, in order (the first holds the model's metadata).
    pub fn parts(&self) -> &[Gguf<'static>] {
        &self.parts
    }

    /// The path of every part, in order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Number of parts (1 for a file that is not split).
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// The model's metadata: the first part's.
    pub fn metadata(&self) -> Metadata<'_> {
        // A `SplitGguf` always holds its first part.
        self.parts[0].metadata()
    }

    /// Number of tensors in all parts.
    pub fn tensor_count(&self) -> usize {
        self.by_name.len()
    }

    /// Every tensor of every part: the parts in order, each part's tensors in
    /// file order.
    pub fn tensors(&self) -> impl Iterator<Item = TensorView<'_>> + '_ {
        self.parts.iter().flat_map(Gguf::tensors)
    }

    /// The tensor named `name`, from whichever part holds it.
    ///
    /// # Errors
    /// [`Error::TensorNotFound`].
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.find(name)
            .and_then(|(part, i)| {
                let part = self.parts.get(part)?;
                let info = part.index().tensors().get(i)?;
                Some(TensorView::new(
                    part.bytes(),
                    part.data_offset(),
                    info,
                    part.byte_order(),
                    part.shared(),
                ))
            })
            .ok_or_else(|| Error::TensorNotFound {
                name: name.to_owned(),
            })
    }

    /// The position in [`SplitGguf::parts`] of the part holding `name`.
    pub fn part_of(&self, name: &str) -> Option<usize> {
        self.find(name).map(|(part, _)| part)
    }

    /// Total bytes of tensor data in all parts.
    pub fn tensor_bytes(&self) -> u64 {
        self.parts.iter().map(Gguf::tensor_bytes).sum()
    }

    fn find(&self, name: &str) -> Option<(usize, usize)> {
        let pos = self
            .by_name
            .binary_search_by(|&(part, i)| tensor_name(&self.parts, part, i).cmp(name))
            .ok()?;
        self.by_name
            .get(pos)
            .map(|&(part, i)| (part as usize, i as usize))
    }
}

fn tensor_name<'a>(parts: &'a [Gguf<'static>], part: u32, i: u32) -> &'a str {
    parts
        .get(part as usize)
        .and_then(|p| {
            p.index()
                .tensors()
                .get(i as usize)
                .map(|t| t.name(p.bytes()))
        })
        .unwrap_or_default()
}

/// The split keys of one part, each absent or of the right type.
struct SplitKeys {
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
fn sibling(path: &Path, name: &str) -> PathBuf {
    match path.parent() {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

fn open_part(path: &Path, no: u16, count: u16, options: &OpenOptions) -> Result<Gguf<'static>> {
    Gguf::open_with(path, options).map_err(|e| match e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Error::SplitPartMissing {
                path: path.to_owned(),
                part: no,
                count,
            }
        }
        other => Error::SplitPart {
            path: path.to_owned(),
            part: no,
            source: Box::new(other),
        },
    })
}

/// Checks that part `no` says what the first part says.
fn check_part(path: &Path, no: u16, first: &SplitKeys, part: &SplitKeys) -> Result<()> {
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
        first.count.map(i64::from),
    )?;
    mismatch(
        SPLIT_TENSORS_COUNT_KEY,
        wide(part.tensors_count),
        wide(first.tensors_count),
    )
}

/// (part, position) of every tensor sorted by name, or the error for a name
/// found in two parts (naming the later part).
fn build_index(parts: &[Gguf<'static>], paths: &[PathBuf]) -> Result<Vec<(u32, u32)>> {
    let total: usize = parts.iter().map(Gguf::tensor_count).sum();
    let mut by_name = Vec::with_capacity(total);
    for (part, gguf) in parts.iter().enumerate() {
        // At most u16::MAX parts; a part's tensor count is bounded by its
        // size and was checked to fit u32 when it was parsed.
        let part = u32::try_from(part).unwrap_or(u32::MAX);
        by_name
            .extend((0..gguf.tensor_count()).map(|i| (part, u32::try_from(i).unwrap_or(u32::MAX))));
    }
    // Stable: equal names stay in part order, so the later part comes second.
    by_name.sort_by(|&(pa, a), &(pb, b)| tensor_name(parts, pa, a).cmp(tensor_name(parts, pb, b)));
    for pair in by_name.windows(2) {
        if let [(pa, a), (pb, b)] = *pair {
            let name = tensor_name(parts, pb, b);
            if tensor_name(parts, pa, a) == name {
                // Within one part names are unique, so `pb > pa`.
                let path_of = |p: u32| paths.get(p as usize).cloned().unwrap_or_default();
                return Err(Error::SplitDuplicateTensor {
                    path: path_of(pb),
                    tensor: name.to_owned(),
                    first_path: path_of(pa),
                });
            }
        }
    }
    Ok(by_name)
}
