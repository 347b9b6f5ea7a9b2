//! `ggufmap`: the command line over the ggufmap library.
//!
//! One module per subcommand; each exposes an `Args` struct (clap derive)
//! and a `run` function. Adding a subcommand means one new file, one
//! variant of [`Command`] and one arm in [`run`].
//!
//! Exit status: 0 on success, 1 with `error: ...` on stderr when the file is
//! bad or the operation fails, 2 for bad usage (clap's own code). A closed
//! stdout (`ggufmap ... | head`) ends the program quietly with 0.

mod bench;
mod dequant;
mod diff;
mod edit;
mod export;
mod inspect;
#[cfg(feature = "candle")]
mod load;
mod memory_json;
mod merge;
mod output;
mod report;
mod split;
mod values;
mod verify;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ggufmap::{Error, Gguf, OpenOptions};

/// Inspect, validate and convert GGUF model files without copying them.
#[derive(Debug, Parser)]
#[command(name = "ggufmap", version, about, propagate_version = true)]
struct Cli {
    /// No progress bars (they go to stderr, and only on a terminal).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the header, metadata, tensor table and per-type sizes.
    Inspect(inspect::Args),
    /// Write one tensor's values, dequantized, as raw little-endian numbers or .npy.
    Dequant(dequant::Args),
    /// Validate, dequantize every tensor in parallel, count NaN and Inf.
    Verify(verify::Args),
    /// Measure open time and per-type dequantization throughput, 1 vs N threads.
    Bench(bench::Args),
    /// Set, delete or rename metadata keys and tensors; the data is copied, the result atomic.
    Edit(edit::Args),
    /// Write a model as the parts of a split model, as llama.cpp's gguf-split does.
    Split(split::Args),
    /// Write a split model's parts as one file.
    Merge(merge::Args),
    /// Write tensors, dequantized, as safetensors or .npz (streamed, bounded memory).
    Export(export::Args),
    /// Compare two models: metadata, tensors, and the values of tensors in both.
    Diff(diff::Args),
    /// Load every tensor into candle; report time and peak memory.
    #[cfg(feature = "candle")]
    Load(load::Args),
    /// Load every tensor into candle (not in this build: it needs the `candle` feature).
    #[cfg(not(feature = "candle"))]
    #[command(disable_help_flag = true)]
    Load {
        /// Whatever was given; `load` refuses it all the same.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::set_quiet(cli.quiet);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): nothing more to say to anyone.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Ignore a failure to write to stderr: there is nowhere left to report it.
            let _ = writeln!(std::io::stderr(), "error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `context: cause: cause`. A cause that its
/// parent's message already ends with is left out: some errors print their
/// source in their own message and also return it from `source()`.
fn error_chain(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.ends_with(&text) {
            message = format!("{message}: {text}");
        }
    }
    message
}

/// Runs one subcommand.
fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Dequant(args) => dequant::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Edit(args) => edit::run(&args),
        Command::Split(args) => split::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Diff(args) => diff::run(&args),
        #[cfg(feature = "candle")]
        Command::Load(args) => load::run(&args),
        #[cfg(not(feature = "candle"))]
        Command::Load { .. } => anyhow::bail!(
            "`load` needs the `candle` feature, which this build lacks; \
             rebuild with `--features candle`"
        ),
    }
}

/// Most threads `--threads` accepts: more is a usage error rather than
/// minutes spent starting threads.
pub(crate) const MAX_THREADS: usize = 1024;

/// Parses `--threads`: 0 (one per core) to [`MAX_THREADS`].
pub(crate) fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= MAX_THREADS => Ok(n),
        _ => Err(format!(
            "expected 0 (one per core) to {MAX_THREADS}, found {s:?}"
        )),
    }
}

/// A pool of `threads` threads (0: one per core) named `ggufmap-{what}-N`,
/// for the work a subcommand spreads over tensors and their chunks.
pub(crate) fn thread_pool(threads: usize, what: &str) -> anyhow::Result<Arc<rayon::ThreadPool>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name({
            let what = what.to_owned();
            move |i| format!("ggufmap-{what}-{i}")
        })
        .build()
        .context("cannot start the decoding threads")?;
    Ok(Arc::new(pool))
}

/// How a subcommand opens its file: mapped by default.
#[derive(Clone, Debug, Default, clap::Args)]
pub(crate) struct OpenArgs {
    /// Read the header into memory and tensor data when used, instead of
    /// mapping the file: for storage that may change underneath (network
    /// file systems, files other programs rewrite).
    #[arg(long, conflicts_with = "in_memory")]
    stream: bool,
    /// Read the whole file into memory instead of mapping it.
    #[arg(long)]
    in_memory: bool,
}

impl OpenArgs {
    /// The library's options for these flags.
    pub(crate) fn options(&self) -> OpenOptions {
        OpenOptions::new()
            .streamed(self.stream)
            .in_memory(self.in_memory)
    }
}

/// Opens a GGUF model (every part of a split one) as `how` says, naming
/// the file in parse errors.
///
/// I/O errors already name the path, so only parse errors get the context.
pub(crate) fn open(path: &Path, how: &OpenArgs) -> anyhow::Result<Gguf<'static>> {
    match Gguf::open_with(path, &how.options()) {
        Ok(gguf) => Ok(gguf),
        Err(e @ (Error::Io { .. } | Error::NotAFile { .. })) => Err(e.into()),
        Err(e) => Err(e).with_context(|| format!("{} is not a valid GGUF file", path.display())),
    }
}
