//! Where output goes, and small formatting helpers shared by subcommands.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

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
    /// A file being created, removed again if writing fails.
    File(BufWriter<File>, PathBuf),
}

impl Sink {
    /// Opens `path` for writing (`None` or `-` is stdout).
    ///
    /// Refuses binary data on a terminal unless stdout was asked for by name
    /// (`-o -`), and refuses to overwrite `input`: truncating a file that is
    /// mapped would crash this very process with SIGBUS.
    pub fn create(path: Option<&Path>, input: &Path) -> anyhow::Result<Sink> {
        match path {
            Some(p) if p != Path::new("-") => Self::create_file(p, input),
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

    fn create_file(path: &Path, input: &Path) -> anyhow::Result<Sink> {
        if same_file(path, input) {
            bail!("output {} is the input file", path.display());
        }
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Sink::File(
            BufWriter::with_capacity(1 << 20, file),
            path.to_owned(),
        ))
    }

    /// The writer.
    pub fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File(w, _) => w,
        }
    }

    /// Flushes after `result` succeeded; removes a partly written file
    /// after a failure, so no truncated output is left looking valid.
    pub fn finish(mut self, result: anyhow::Result<()>) -> anyhow::Result<()> {
        let result = result.and_then(|()| self.writer().flush().context("cannot write output"));
        if let (Err(_), Sink::File(_, path)) = (&result, &self) {
            // Best effort: the write error is the one worth reporting.
            let _ = std::fs::remove_file(path);
        }
        result
    }
}

/// True when both paths name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
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

/// A name from the file, shown as is unless it holds control characters
/// (which a hostile file could use to rewrite the terminal); then quoted
/// and escaped.
pub fn display_name(name: &str) -> String {
    if name.chars().any(char::is_control) {
        format!("{name:?}")
    } else {
        name.to_owned()
    }
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
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; `right` marks the right-aligned ones.
    pub fn new(columns: &[(&'static str, bool)]) -> Self {
        Table {
            headers: columns.iter().map(|&(h, _)| h).collect(),
            right: columns.iter().map(|&(_, r)| r).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the table: lines indented, columns apart, by two spaces.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let widths = self.widths();
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                let last = i + 1 == row.len();
                line.push_str("  ");
                line.push_str(&self.pad(cell, width, i, last));
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
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
