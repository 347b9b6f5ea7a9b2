//! Where output goes, and small formatting helpers shared by subcommands.

use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};
use std::path::Path;

use anyhow::{bail, Context};
use ggufmap::AtomicFile;

/// True when `e` (or anything in its chain) is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}

/// Buffered, locked stdout for text output.
pub fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

/// A destination for binary output: stdout or a file.
pub enum Sink {
    /// Standard output.
    Stdout(BufWriter<StdoutLock<'static>>),
    /// A file, written beside its target and renamed into place only when
    /// complete.
    File(AtomicFile),
}

impl Sink {
    /// Opens `path` for writing (`None` or `-` is stdout).
    ///
    /// Refuses binary data on a terminal unless stdout was asked for by name
    /// (`-o -`), and refuses an output that is `input` through any path or
    /// link: replacing a file that is mapped would destroy it.
    pub fn create(path: Option<&Path>, input: &Path) -> anyhow::Result<Sink> {
        match path {
            Some(p) if p != Path::new("-") => {
                let file = AtomicFile::create_apart_from(p, &[input])
                    .with_context(|| format!("cannot create {}", p.display()))?;
                Ok(Sink::File(file))
            }
            explicit => {
                if explicit.is_none() && io::stdout().is_terminal() {
                    bail!("refusing to write binary data to a terminal; use -o FILE, -o -, or redirect stdout");
                }
                Ok(Sink::Stdout(BufWriter::with_capacity(
                    1 << 20,
                    io::stdout().lock(),
                )))
            }
        }
    }

    /// The writer.
    pub fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File(w) => w,
        }
    }

    /// After `result` succeeded, flushes and (for a file) renames the
    /// output into place; after a failure, drops the temporary file, so no
    /// truncated output is left looking valid and whatever was at the
    /// target before is untouched.
    pub fn finish(self, result: anyhow::Result<()>) -> anyhow::Result<()> {
        result?;
        match self {
            Sink::Stdout(mut w) => w.flush().context("cannot write output"),
            Sink::File(file) => {
                let target = file.target().display().to_string();
                file.commit()
                    .with_context(|| format!("cannot write {target}"))
            }
        }
    }
}

/// Writes `values` as little-endian bytes, whatever this machine's order.
pub fn write_le<T: bytemuck::Pod>(w: &mut dyn Write, values: &[T]) -> io::Result<()> {
    if cfg!(target_endian = "little") {
        return w.write_all(bytemuck::cast_slice(values));
    }
    for v in values {
        let mut bytes = bytemuck::bytes_of(v).to_vec();
        bytes.reverse();
        w.write_all(&bytes)?;
    }
    Ok(())
}

/// A name or string from the file for people: shown as is when it is
/// plain printable text; otherwise quoted, with control characters (which a
/// hostile file could use to rewrite the terminal) escaped and bytes that
/// are not UTF-8 shown as `\xNN`.
pub fn display_name(name: &str) -> String {
    if name.chars().any(char::is_control) {
        format!("{name:?}")
    } else {
        name.to_owned()
    }
}

/// Bytes from the file for people, quoted: valid UTF-8 escaped as Rust's
/// `{:?}` does, each byte that is not UTF-8 as `\xNN`. Nothing is dropped
/// or replaced, so two different strings never look the same.
pub fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            // Inside quotes a single quote needs no escape.
            if c == '\'' {
                out.push(c);
            } else {
                out.extend(c.escape_debug());
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Set by `--quiet`: no progress bars.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns progress bars off (`--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// A progress bar on stderr over `total` `unit`s, labelled `what`: shown
/// only on a terminal, never with `--quiet` or when stdout carries JSON
/// (`hidden`).
pub fn progress(total: u64, what: &str, unit: &str, hidden: bool) -> indicatif::ProgressBar {
    let quiet = QUIET.load(std::sync::atomic::Ordering::Relaxed);
    if hidden || quiet || !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    let template =
        format!("{what} {{bar:40}} {{human_pos}}/{{human_len}} {unit} {{per_sec}} eta {{eta}}");
    let style = indicatif::ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// A progress bar style counting bytes (`120 MiB/253 MiB`), labelled `what`.
#[cfg(feature = "candle")]
pub fn bytes_style(what: &str) -> indicatif::ProgressStyle {
    let template =
        format!("{what} {{bar:40}} {{binary_bytes}}/{{binary_total_bytes}} {{binary_bytes_per_sec}} eta {{eta}}");
    indicatif::ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}

/// A byte count for people: `1.50 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    // Precision loss is fine: the figure is for reading.
    #[allow(clippy::cast_precision_loss)]
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
#[allow(clippy::cast_precision_loss)]
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A text table: a header row and rows of cells, columns padded to their
/// widest cell (in characters), numbers right-aligned. The last column is
/// not padded, so long values do not leave trailing blanks.
///
/// Rows are produced twice, once to measure the columns and once to write
/// them, and never stored: a table of a million rows takes the memory of
/// one.
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
}

impl Table {
    /// A table with these columns; `right` marks the right-aligned ones.
    pub fn new(columns: &[(&'static str, bool)]) -> Self {
        Table {
            headers: columns.iter().map(|&(h, _)| h).collect(),
            right: columns.iter().map(|&(_, r)| r).collect(),
        }
    }

    /// Writes the table of the rows `rows()` yields (as many cells as
    /// columns each): lines indented, columns apart, by two spaces.
    pub fn write<I>(&self, out: &mut dyn Write, rows: impl Fn() -> I) -> io::Result<()>
    where
        I: Iterator<Item = Vec<String>>,
    {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in rows() {
            for (w, cell) in widths.iter_mut().zip(&row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        self.write_row(out, &headers, &widths)?;
        for row in rows() {
            self.write_row(out, &row, &widths)?;
        }
        Ok(())
    }

    /// Writes the rows as a markdown (GitHub) table: numbers right-aligned,
    /// `|` in cells escaped. Rows are written as they come.
    pub fn write_markdown(
        &self,
        out: &mut dyn Write,
        rows: impl Iterator<Item = Vec<String>>,
    ) -> io::Result<()> {
        let header: Vec<String> = self.headers.iter().map(|h| markdown_cell(h)).collect();
        writeln!(out, "| {} |", header.join(" | "))?;
        let rules: Vec<&str> = self
            .right
            .iter()
            .map(|&right| if right { "---:" } else { "---" })
            .collect();
        writeln!(out, "| {} |", rules.join(" | "))?;
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| markdown_cell(c)).collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
        Ok(())
    }

    fn write_row(&self, out: &mut dyn Write, row: &[String], widths: &[usize]) -> io::Result<()> {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let last = i + 1 == row.len();
            line.push_str("  ");
            line.push_str(&self.pad(cell, width, i, last));
        }
        writeln!(out, "{}", line.trim_end())
    }

    fn pad(&self, cell: &str, width: usize, column: usize, last: bool) -> String {
        if self.right.get(column).copied().unwrap_or(false) {
            format!("{cell:>width$}")
        } else if last {
            cell.to_owned()
        } else {
            format!("{cell:<width$}")
        }
    }
}

/// Text for one markdown table cell: `|` escaped, and line breaks (which
/// would end the row) shown as `\n`. Callers pass text already made safe
/// for a terminal ([`display_name`], [`quote_bytes`]).
pub fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}
