//! `ggufmap inspect`: the header, metadata, tensor table and per-type sizes
//! of a file, as tables for people, markdown, or JSON for programs.

mod json;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ggufmap::format::{ByteOrder, Value};
use ggufmap::{GgmlType, Gguf, TensorView};

use crate::output::{display_name, human_bytes, percent, Table};
use crate::values::{self, Arrays};

/// Arguments of `ggufmap inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The GGUF file (or the first part of a split model).
    pub file: PathBuf,
    /// How to open it.
    #[command(flatten)]
    open: crate::OpenArgs,
    /// Print one JSON object instead of tables (schemas/inspect.schema.json
    /// documents every field).
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print markdown tables instead of text ones.
    #[arg(long)]
    pub markdown: bool,
    /// Give every element of every array in JSON, not the first 8.
    #[arg(long)]
    pub full_arrays: bool,
    /// Leave out the tensor table.
    #[arg(long, conflicts_with = "tensor")]
    pub no_tensors: bool,
    /// Only tensors whose name matches this glob (`*`, `?`, `[a-z]`); may
    /// be given more than once.
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    pub tensor: Vec<glob::Pattern>,
    /// Only metadata keys that match this glob; may be given more than once.
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    pub key: Vec<glob::Pattern>,
}

/// Parses a `--tensor` or `--key` glob.
pub fn parse_glob(s: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(s).map_err(|e| format!("not a glob: {e}"))
}

/// What of the model a report shows: the header and the per-type sizes
/// always describe the whole model; metadata and tensors may be filtered.
pub struct Selection {
    keys: Vec<glob::Pattern>,
    tensors: Vec<glob::Pattern>,
    no_tensors: bool,
    arrays: Arrays,
}

impl Selection {
    fn new(args: &Args) -> Self {
        Selection {
            keys: args.key.clone(),
            tensors: args.tensor.clone(),
            no_tensors: args.no_tensors,
            arrays: if args.full_arrays {
                Arrays::Full
            } else {
                Arrays::First
            },
        }
    }

    /// Whether the tensor table is shown at all.
    fn shows_tensors(&self) -> bool {
        !self.no_tensors
    }

    /// Whether metadata `key` is shown.
    fn key(&self, key: &str) -> bool {
        matches_any(&self.keys, key)
    }

    /// The metadata entries shown, in file order.
    fn metadata<'a>(
        &'a self,
        gguf: &'a Gguf<'_>,
    ) -> impl Iterator<Item = (&'a str, Value<'a>)> + 'a {
        gguf.metadata().iter().filter(move |(key, _)| self.key(key))
    }

    /// The tensors shown, in file order.
    fn tensors<'a>(&'a self, gguf: &'a Gguf<'_>) -> impl Iterator<Item = TensorView<'a>> + 'a {
        gguf.tensors()
            .filter(move |t| self.shows_tensors() && matches_any(&self.tensors, t.name()))
    }
}

/// True when there are no patterns or one of them matches `name`.
fn matches_any(patterns: &[glob::Pattern], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(name))
}

/// Runs `ggufmap inspect`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let gguf = crate::open(&args.file, &args.open)?;
    let selection = Selection::new(args);
    let mut out = crate::output::stdout();
    if args.json {
        json::write(&gguf, &args.file, &selection, &mut out)?;
    } else if args.markdown {
        write_markdown(&gguf, &args.file, &selection, &mut out).context("cannot write output")?;
    } else {
        write_human(&gguf, &args.file, &selection, &mut out).context("cannot write output")?;
    }
    out.flush().context("cannot write output")?;
    Ok(())
}

/// Tensors of one type, summed.
struct TypeStats {
    dtype: GgmlType,
    count: u64,
    bytes: u64,
}

/// Per-type tensor counts and bytes, largest share first.
fn histogram(gguf: &Gguf<'_>) -> Vec<TypeStats> {
    let mut stats: Vec<TypeStats> = Vec::new();
    for t in gguf.tensors() {
        let bytes = t.info().n_bytes();
        match stats.iter_mut().find(|s| s.dtype == t.dtype()) {
            Some(s) => {
                s.count += 1;
                s.bytes = s.bytes.saturating_add(bytes);
            }
            None => stats.push(TypeStats {
                dtype: t.dtype(),
                count: 1,
                bytes,
            }),
        }
    }
    stats.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.dtype.cmp(&b.dtype)));
    stats
}

/// `"little"` or `"big"`.
fn byte_order_name(order: ByteOrder) -> &'static str {
    match order {
        ByteOrder::Little => "little",
        ByteOrder::Big => "big",
    }
}

/// The header as label and value, for people.
fn header_fields(gguf: &Gguf<'_>) -> Vec<(&'static str, String)> {
    let file_size = gguf.file_size();
    let mut fields = vec![
        ("GGUF version", gguf.version().to_string()),
        (
            "byte order",
            format!("{}-endian", byte_order_name(gguf.byte_order())),
        ),
        ("alignment", gguf.alignment().to_string()),
        ("tensors", gguf.tensor_count().to_string()),
        ("metadata", format!("{} entries", gguf.metadata().len())),
        ("data start", format!("byte {}", gguf.data_start())),
    ];
    if gguf.part_count() > 1 {
        fields.push(("parts", gguf.part_count().to_string()));
    }
    fields.push((
        "file size",
        format!("{file_size} bytes ({})", human_bytes(file_size)),
    ));
    fields
}

/// One part of a split model: number (from 1) and file name.
fn part_names<'a>(gguf: &'a Gguf<'_>) -> impl Iterator<Item = (usize, String)> + 'a {
    gguf.part_paths().enumerate().map(|(no, path)| {
        let path = path.map(|p| p.display().to_string()).unwrap_or_default();
        (no + 1, display_name(&path))
    })
}

/// The key whose integer names the file's quantization mix.
const FILE_TYPE_KEY: &str = "general.file_type";

/// Key, type and a one-line value of a metadata entry, for people.
fn metadata_row(key: &str, value: &Value<'_>) -> Vec<String> {
    let mut summary = values::summary(value);
    let file_type = value.to_u64().and_then(values::file_type_name);
    if let (FILE_TYPE_KEY, Some(name)) = (key, file_type) {
        summary = format!("{summary} ({name})");
    }
    vec![display_name(key), values::type_label(value), summary]
}

/// Whether the tensor table needs a PART column.
fn is_split(gguf: &Gguf<'_>) -> bool {
    gguf.part_count() > 1
}

fn tensor_columns(gguf: &Gguf<'_>) -> Vec<(&'static str, bool)> {
    let mut columns = vec![
        ("NAME", false),
        ("TYPE", false),
        ("SHAPE", false),
        ("SIZE", true),
        ("FILE OFFSET", true),
    ];
    if is_split(gguf) {
        columns.push(("PART", true));
    }
    columns
}

fn tensor_row(t: &TensorView<'_>, split: bool) -> Vec<String> {
    let mut row = vec![
        display_name(t.name()),
        t.dtype().to_string(),
        format!("{:?}", t.shape()),
        human_bytes(t.info().n_bytes()),
        t.byte_range().start.to_string(),
    ];
    if split {
        row.push((t.part() + 1).to_string());
    }
    row
}

const HISTOGRAM_COLUMNS: [(&str, bool); 4] = [
    ("TYPE", false),
    ("COUNT", true),
    ("SIZE", true),
    ("SHARE", true),
];

fn histogram_rows(gguf: &Gguf<'_>) -> impl Iterator<Item = Vec<String>> {
    let total = gguf.tensor_bytes();
    histogram(gguf).into_iter().map(move |s| {
        vec![
            s.dtype.to_string(),
            s.count.to_string(),
            human_bytes(s.bytes),
            format!("{:.1}%", percent(s.bytes, total)),
        ]
    })
}

/// The closing line: counts, size and bits per element.
fn total_line(gguf: &Gguf<'_>) -> String {
    let bytes = gguf.tensor_bytes();
    let elements = gguf
        .tensors()
        .fold(0u64, |sum, t| sum.saturating_add(t.n_elements()));
    // Bits per element: the figure people compare quantizations by.
    let bits = percent(bytes.saturating_mul(8), elements) / 100.0;
    format!(
        "total: {} tensors, {elements} elements, {} of tensor data ({bytes} bytes), {bits:.2} bits per element",
        gguf.tensor_count(),
        human_bytes(bytes),
    )
}

fn tensors_title(gguf: &Gguf<'_>) -> String {
    format!(
        "tensors ({}; shape outermost first; file offset from the start of the {})",
        gguf.tensor_count(),
        if is_split(gguf) {
            "part's file"
        } else {
            "file"
        }
    )
}

fn write_human(
    gguf: &Gguf<'_>,
    path: &Path,
    selection: &Selection,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "{}", display_name(&path.display().to_string()))?;
    for (label, value) in header_fields(gguf) {
        writeln!(out, "  {label:<14}{value}")?;
        if label == "parts" {
            for (no, name) in part_names(gguf) {
                writeln!(out, "    {no}  {name}")?;
            }
        }
    }
    writeln!(out, "\nmetadata ({} entries)", gguf.metadata().len())?;
    let table = Table::new(&[("KEY", false), ("TYPE", false), ("VALUE", false)]);
    table.write(out, || {
        selection.metadata(gguf).map(|(k, v)| metadata_row(k, &v))
    })?;
    if selection.shows_tensors() {
        writeln!(out, "\n{}", tensors_title(gguf))?;
        let split = is_split(gguf);
        let table = Table::new(&tensor_columns(gguf));
        table.write(out, || {
            selection.tensors(gguf).map(move |t| tensor_row(&t, split))
        })?;
    }
    writeln!(out, "\ntensor bytes by type")?;
    Table::new(&HISTOGRAM_COLUMNS).write(out, || histogram_rows(gguf))?;
    writeln!(out, "\n{}", total_line(gguf))
}

fn write_markdown(
    gguf: &Gguf<'_>,
    path: &Path,
    selection: &Selection,
    out: &mut dyn Write,
) -> io::Result<()> {
    let name = display_name(&path.display().to_string());
    writeln!(out, "# {}\n", crate::output::markdown_cell(&name))?;
    let header = header_fields(gguf)
        .into_iter()
        .map(|(label, value)| vec![label.to_owned(), value]);
    Table::new(&[("field", false), ("value", false)]).write_markdown(out, header)?;
    if is_split(gguf) {
        writeln!(out, "\n## Parts\n")?;
        let parts = part_names(gguf).map(|(no, name)| vec![no.to_string(), name]);
        Table::new(&[("part", true), ("file", false)]).write_markdown(out, parts)?;
    }
    writeln!(out, "\n## Metadata ({} entries)\n", gguf.metadata().len())?;
    let table = Table::new(&[("key", false), ("type", false), ("value", false)]);
    table.write_markdown(
        out,
        selection.metadata(gguf).map(|(k, v)| metadata_row(k, &v)),
    )?;
    if selection.shows_tensors() {
        writeln!(out, "\n## {}\n", upper_first(&tensors_title(gguf)))?;
        let split = is_split(gguf);
        let table = Table::new(&tensor_columns(gguf));
        table.write_markdown(out, selection.tensors(gguf).map(|t| tensor_row(&t, split)))?;
    }
    writeln!(out, "\n## Tensor bytes by type\n")?;
    Table::new(&HISTOGRAM_COLUMNS).write_markdown(out, histogram_rows(gguf))?;
    writeln!(out, "\n{}", upper_first(&total_line(gguf)))
}

/// `text` with its first letter capitalised, for a heading.
fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
