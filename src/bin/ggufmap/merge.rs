//! `ggufmap merge`: a split model (llama.cpp's `gguf-split`, the `gguf`
//! Python package's or `ggufmap split`'s parts) written as one file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use ggufmap::split::part_file_name;

/// Arguments of `ggufmap merge`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The output holds the first part's metadata in its order \
    without the split keys, then every tensor in the model's order: the parts \
    `ggufmap split` wrote merge into its input byte for byte. The path written \
    is printed."
)]
pub struct Args {
    /// The first part, PREFIX-00001-of-0000N.gguf; the others are found beside it.
    pub file: PathBuf,
    /// How to open it.
    #[command(flatten)]
    open: crate::OpenArgs,
    /// Where to write; default: PREFIX.gguf beside the parts.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

/// Runs `ggufmap merge`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let gguf = crate::open(&args.file, &args.open)?;
    if gguf.part_count() < 2 {
        bail!(
            "{} is not the first part of a split model (it has no other parts)",
            args.file.display()
        );
    }
    let output = match &args.output {
        Some(path) => path.clone(),
        None => default_output(&args.file, gguf.part_count())?,
    };
    gguf.write_merged(&output)
        .with_context(|| format!("cannot merge {}", args.file.display()))?;
    let mut out = crate::output::stdout();
    writeln!(out, "{}", output.display())?;
    out.flush()?;
    Ok(())
}

/// `dir/model-00001-of-00003.gguf` -> `dir/model.gguf`.
fn default_output(first: &Path, count: usize) -> anyhow::Result<PathBuf> {
    let count = u16::try_from(count).map_err(|_| anyhow!("too many parts"))?;
    let suffix = part_file_name("", 0, count);
    let prefix = first
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(suffix.as_str()))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "{} is not named PREFIX{suffix}; give -o OUT",
                first.display()
            )
        })?;
    Ok(first.with_file_name(format!("{prefix}.gguf")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs() {
        assert_eq!(
            default_output(Path::new("d/m-00001-of-00003.gguf"), 3).unwrap(),
            Path::new("d/m.gguf")
        );
        assert!(default_output(Path::new("d/m-00001-of-00003.gguf"), 2).is_err());
        assert!(default_output(Path::new("-00001-of-00002.gguf"), 2).is_err());
    }
}
