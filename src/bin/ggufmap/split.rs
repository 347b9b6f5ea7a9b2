//! `ggufmap split`: a model written as the parts of a split model, as
//! llama.cpp's `gguf-split --split` writes them (file names, split keys,
//! tensor order); `ggufmap merge` puts them back together.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use ggufmap::split::SplitLimit;

/// Arguments of `ggufmap split`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Parts are named PREFIX-00001-of-0000N.gguf, as llama.cpp's \
    gguf-split names them; the first holds the metadata, every part the keys \
    split.no (u16), split.count (u16) and split.tensors.count (i32). The paths \
    written are printed, one a line. `ggufmap merge PREFIX-00001-of-0000N.gguf` \
    gives back the input byte for byte."
)]
pub struct Args {
    /// The GGUF file (the first part of a split model re-splits the model).
    pub file: PathBuf,
    /// How to open it.
    #[command(flatten)]
    open: crate::OpenArgs,
    /// At most N tensors per part.
    #[arg(
        long,
        value_name = "N",
        required_unless_present = "max_size",
        conflicts_with = "max_size"
    )]
    pub max_tensors: Option<usize>,
    /// At most SIZE bytes of tensor data per part: a number with an optional
    /// unit K, M, G (powers of 1000, as gguf-split) or KiB, MiB, GiB; a
    /// larger tensor gets a part of its own.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Prefix of the parts' paths; default: FILE without `.gguf`.
    #[arg(short, long, value_name = "PREFIX")]
    pub output: Option<PathBuf>,
}

/// Runs `ggufmap split`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let gguf = crate::open(&args.file, &args.open)?;
    let limit = match (args.max_tensors, args.max_size) {
        (Some(n), _) => SplitLimit::Tensors(n),
        (None, Some(bytes)) => SplitLimit::Bytes(bytes),
        (None, None) => bail!("give --max-tensors or --max-size"),
    };
    let prefix = match &args.output {
        Some(prefix) => prefix.clone(),
        None => default_prefix(&args.file)?,
    };
    let parts = gguf
        .write_split_with(&prefix, limit)
        .with_context(|| format!("cannot split {}", args.file.display()))?;
    let mut out = crate::output::stdout();
    for part in parts {
        writeln!(out, "{}", part.display())?;
    }
    out.flush()?;
    Ok(())
}

/// `dir/model.gguf` -> `dir/model`.
fn default_prefix(file: &Path) -> anyhow::Result<PathBuf> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{} names no UTF-8 file; give -o PREFIX", file.display()))?;
    let stem = name.strip_suffix(".gguf").unwrap_or(name);
    Ok(file.with_file_name(stem))
}

/// A size: bytes, or a number with a unit (K, M, G, T: powers of 1000 as
/// gguf-split's `--split-max-size`; KiB, MiB, GiB, TiB: powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "M" | "MB" => 1000_u64.pow(2),
        "G" | "GB" => 1000_u64.pow(3),
        "T" | "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}; use K, M, G, T, KiB, MiB, GiB or TiB"
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a size such as 500M or 2G, found {text:?}"))?;
    match n.checked_mul(multiplier) {
        Some(0) => Err("the size must be more than 0".to_owned()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert_eq!(parse_size("500M"), Ok(500_000_000));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("3X").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            default_prefix(Path::new("d/m.gguf")).unwrap(),
            Path::new("d/m")
        );
        assert_eq!(
            default_prefix(Path::new("m.bin")).unwrap(),
            Path::new("m.bin")
        );
    }
}
