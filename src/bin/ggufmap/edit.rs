//! `ggufmap edit`: set, delete and rename metadata keys and tensors.
//!
//! The new header is built in memory; tensor data is copied from the input
//! file by the kernel where it can (`copy_file_range` on Linux), so memory
//! holds the header and none of the data whatever the model's size. The
//! result is written beside its target and renamed into place once
//! complete: a failure (a bad value, a full disk) leaves the input and any
//! earlier output untouched.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use ggufmap::format::{ValueType, ALIGNMENT_KEY};
use ggufmap::split::{SPLIT_COUNT_KEY, SPLIT_NO_KEY, SPLIT_TENSORS_COUNT_KEY};
use ggufmap::{AtomicFile, Gguf, GgufWriter, MetaValue, OpenOptions};

/// Arguments of `ggufmap edit`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "VALUE types: u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 bool string. \
    An untyped --set keeps the type of the key it replaces (a new key is a string); \
    a typed one (KEY:TYPE=VALUE) sets that type. A replaced key keeps its place, a \
    new one is added last. Each key may be named once. Arrays cannot be set \
    from the command line. general.alignment and the split keys are refused: \
    changing the alignment moves every tensor, and the split keys belong to \
    `split` and `merge`. On one part of a split model only that file is \
    edited."
)]
pub struct Args {
    /// The GGUF file.
    pub file: PathBuf,
    /// Where to write the result; without -o the file is replaced (through
    /// a temporary file beside it and a rename, never rewritten in place).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Set a key: KEY=VALUE or KEY:TYPE=VALUE.
    #[arg(long, value_name = "KEY[:TYPE]=VALUE")]
    pub set: Vec<String>,
    /// Set a string key to a file's contents (UTF-8), e.g. a chat template.
    #[arg(long, value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
    /// Delete a key (it must exist).
    #[arg(long, value_name = "KEY")]
    pub delete: Vec<String>,
    /// Rename a tensor (OLD must exist; NEW must not be taken).
    #[arg(long, value_name = "OLD=NEW")]
    pub rename_tensor: Vec<String>,
    /// Do not sync the result to disk before renaming it into place: as
    /// fast as `cp`, and no reader ever sees a partial file, but a system
    /// crash soon after may leave it incomplete on some file systems.
    #[arg(long)]
    pub no_sync: bool,
}

/// What happens to a key.
enum Change {
    Set(MetaValue),
    Delete,
}

/// Runs `ggufmap edit`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.set.is_empty()
        && args.set_file.is_empty()
        && args.delete.is_empty()
        && args.rename_tensor.is_empty()
    {
        bail!("nothing to do: give --set, --set-file, --delete or --rename-tensor");
    }
    let options = OpenOptions::new().single_file(true);
    let gguf = Gguf::open_with(&args.file, &options)
        .with_context(|| format!("{} is not a valid GGUF file", args.file.display()))?;
    let changes = key_changes(&gguf, args)?;
    let renames = renames(&gguf, &args.file, &args.rename_tensor)?;
    let writer = build(&gguf, &changes, &renames)?;

    let source =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = source
        .metadata()
        .with_context(|| format!("cannot read {}", args.file.display()))?
        .len();
    if size != gguf.file_size() {
        bail!("{} changed while it was read", args.file.display());
    }
    let out = match &args.output {
        Some(path) => AtomicFile::create_apart_from(path, &[&args.file]).with_context(|| {
            format!(
                "cannot write {} (to edit a file in place, leave out -o)",
                path.display()
            )
        })?,
        None => AtomicFile::create(&args.file)
            .with_context(|| format!("cannot replace {}", args.file.display()))?,
    };
    let out = out.durable(!args.no_sync);
    let target = out.target().display().to_string();
    let mut offsets = gguf.tensors().map(|t| t.byte_range().start);
    writer
        .write_copying(out, |name| {
            let offset = offsets
                .next()
                .ok_or_else(|| std::io::Error::other(format!("no source for tensor {name:?}")))?;
            Ok((&source, offset))
        })
        .with_context(|| format!("cannot write {target}"))
}

/// The keys `--set`, `--set-file` and `--delete` change, checked against
/// the file: each named once, none reserved, deletions existing, values
/// parsing as their type.
fn key_changes(gguf: &Gguf<'_>, args: &Args) -> anyhow::Result<HashMap<String, Change>> {
    let metadata = gguf.metadata();
    let mut changes = HashMap::new();
    let mut add = |key: &str, change: Change| -> anyhow::Result<()> {
        refuse_reserved(key)?;
        if changes.insert(key.to_owned(), change).is_some() {
            bail!("key {key:?} given twice");
        }
        Ok(())
    };
    for spec in &args.set {
        let (lhs, text) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--set {spec:?}: expected KEY=VALUE or KEY:TYPE=VALUE"))?;
        let (key, named) = match lhs.rsplit_once(':') {
            Some((key, ty)) => (key, Some(parse_type(ty)?)),
            None => (lhs, None),
        };
        let existing = metadata.get(key).map(|v| v.value_type());
        let ty = named.or(existing).unwrap_or(ValueType::String);
        let value =
            parse_value(ty, text).with_context(|| format!("cannot set {key:?} to {text:?}"))?;
        add(key, Change::Set(value))?;
    }
    for spec in &args.set_file {
        let (key, path) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--set-file {spec:?}: expected KEY=PATH"))?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {path} for {key:?}"))?;
        add(key, Change::Set(MetaValue::string(text)))?;
    }
    for key in &args.delete {
        refuse_reserved(key)?;
        if !metadata.contains(key) {
            bail!("cannot delete {key:?}: the file has no such key");
        }
        add(key, Change::Delete)?;
    }
    Ok(changes)
}

/// Refuses keys whose change would break the file or the split model.
fn refuse_reserved(key: &str) -> anyhow::Result<()> {
    if key == ALIGNMENT_KEY {
        bail!("cannot change {key:?}: the alignment places every tensor");
    }
    if [SPLIT_NO_KEY, SPLIT_COUNT_KEY, SPLIT_TENSORS_COUNT_KEY].contains(&key) {
        bail!("cannot change {key:?}: split keys are written by `split` and `merge`");
    }
    if key.is_empty() {
        bail!("a key cannot be empty");
    }
    Ok(())
}

/// The value type named `name` (`u32`, `string`, ...).
fn parse_type(name: &str) -> anyhow::Result<ValueType> {
    const SETTABLE: [ValueType; 12] = [
        ValueType::U8,
        ValueType::I8,
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::U64,
        ValueType::I64,
        ValueType::F32,
        ValueType::F64,
        ValueType::Bool,
        ValueType::String,
    ];
    let name = if name == "str" { "string" } else { name };
    SETTABLE
        .into_iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| {
            anyhow!(
                "unknown type {name:?}; expected u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 bool string"
            )
        })
}

/// `text` as a value of type `ty`.
fn parse_value(ty: ValueType, text: &str) -> anyhow::Result<MetaValue> {
    fn num<T: std::str::FromStr>(text: &str, ty: ValueType) -> anyhow::Result<T> {
        text.trim()
            .parse()
            .map_err(|_| anyhow!("{text:?} is not a {ty}"))
    }
    Ok(match ty {
        ValueType::U8 => MetaValue::U8(num(text, ty)?),
        ValueType::I8 => MetaValue::I8(num(text, ty)?),
        ValueType::U16 => MetaValue::U16(num(text, ty)?),
        ValueType::I16 => MetaValue::I16(num(text, ty)?),
        ValueType::U32 => MetaValue::U32(num(text, ty)?),
        ValueType::I32 => MetaValue::I32(num(text, ty)?),
        ValueType::U64 => MetaValue::U64(num(text, ty)?),
        ValueType::I64 => MetaValue::I64(num(text, ty)?),
        ValueType::F32 => MetaValue::F32(num(text, ty)?),
        ValueType::F64 => MetaValue::F64(num(text, ty)?),
        ValueType::Bool => match text.trim() {
            "true" | "1" => MetaValue::Bool(true),
            "false" | "0" => MetaValue::Bool(false),
            _ => bail!("{text:?} is not a bool (true, false, 1 or 0)"),
        },
        ValueType::String => MetaValue::string(text),
        other => bail!("{other} values cannot be set from the command line"),
    })
}

/// The new name of each renamed tensor, checked: OLD exists, is renamed
/// once, and no two tensors end up with one name (in any part of a split
/// model, where the whole model opens from `path`).
fn renames(
    gguf: &Gguf<'_>,
    path: &Path,
    specs: &[String],
) -> anyhow::Result<HashMap<String, String>> {
    let mut renames = HashMap::new();
    for spec in specs {
        let (old, new) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--rename-tensor {spec:?}: expected OLD=NEW"))?;
        if gguf.tensor(old).is_err() {
            bail!("cannot rename tensor {old:?}: the file has no such tensor");
        }
        if new.is_empty() {
            bail!("cannot rename tensor {old:?} to an empty name");
        }
        if renames.insert(old.to_owned(), new.to_owned()).is_some() {
            bail!("tensor {old:?} renamed twice");
        }
    }
    if renames.is_empty() {
        return Ok(renames);
    }
    // Other parts of a split model hold names too.
    let whole = (gguf.metadata().get_uint(SPLIT_COUNT_KEY).unwrap_or(1) > 1)
        .then(|| Gguf::open(path).ok())
        .flatten();
    let model = whole.as_ref().unwrap_or(gguf);
    let mut names = HashSet::new();
    for t in model.tensors() {
        let name = renames.get(t.name()).map_or(t.name(), String::as_str);
        if !names.insert(name) {
            let taken_by = model
                .tensors()
                .find(|u| u.name() == name && !renames.contains_key(u.name()))
                .map_or_else(
                    || "another renamed tensor".to_owned(),
                    |u| format!("tensor {:?}", u.name()),
                );
            bail!("cannot rename a tensor to {name:?}: the name is taken by {taken_by}");
        }
    }
    Ok(renames)
}

/// A writer holding the edited header: the file's metadata in order with
/// the changes applied (new keys last), its tensors renamed and declared.
fn build<'a>(
    gguf: &Gguf<'_>,
    changes: &HashMap<String, Change>,
    renames: &HashMap<String, String>,
) -> anyhow::Result<GgufWriter<'a>> {
    let mut w = GgufWriter::new();
    w.set_alignment(gguf.alignment())?;
    w.set_byte_order(gguf.byte_order());
    w.pad_end(gguf.ends_padded());
    let mut seen = HashSet::new();
    for (key, value) in gguf.metadata().iter() {
        seen.insert(key);
        if key == ALIGNMENT_KEY {
            w.add_alignment_key()?;
            continue;
        }
        match changes.get(key) {
            Some(Change::Delete) => {}
            Some(Change::Set(new)) => {
                w.add_metadata(key, new.clone())?;
            }
            None => {
                w.add_metadata(key, MetaValue::from_value(&value))?;
            }
        }
    }
    // New keys last, in the order given (sorted, for a stable result).
    let mut added: Vec<(&String, &MetaValue)> = changes
        .iter()
        .filter(|(key, _)| !seen.contains(key.as_str()))
        .filter_map(|(key, change)| match change {
            Change::Set(value) => Some((key, value)),
            Change::Delete => None,
        })
        .collect();
    added.sort_by(|a, b| a.0.cmp(b.0));
    for (key, value) in added {
        w.add_metadata(key.clone(), value.clone())?;
    }
    for t in gguf.tensors() {
        let name = renames.get(t.name()).map_or(t.name(), String::as_str);
        w.declare_tensor(name, t.dtype(), t.dims())
            .with_context(|| format!("cannot name tensor {name:?}"))?;
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_their_type() {
        assert_eq!(parse_value(ValueType::U32, "7").unwrap(), MetaValue::U32(7));
        assert_eq!(parse_value(ValueType::I8, "-3").unwrap(), MetaValue::I8(-3));
        assert_eq!(
            parse_value(ValueType::F32, "0.5").unwrap(),
            MetaValue::F32(0.5)
        );
        assert_eq!(
            parse_value(ValueType::Bool, "true").unwrap(),
            MetaValue::Bool(true)
        );
        assert_eq!(
            parse_value(ValueType::Bool, "0").unwrap(),
            MetaValue::Bool(false)
        );
        assert_eq!(
            parse_value(ValueType::String, " a=b ").unwrap(),
            MetaValue::string(" a=b ")
        );
        for (ty, bad) in [
            (ValueType::U8, "256"),
            (ValueType::U32, "-1"),
            (ValueType::I32, "1.5"),
            (ValueType::F64, "x"),
            (ValueType::Bool, "yes"),
        ] {
            assert!(parse_value(ty, bad).is_err(), "{ty} {bad}");
        }
        assert!(parse_value(ValueType::Array, "[1]").is_err());
        assert_eq!(parse_type("str").unwrap(), ValueType::String);
        assert!(parse_type("array").is_err());
        assert!(parse_type("u23").is_err());
    }
}
