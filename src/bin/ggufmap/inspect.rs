//! `ggufmap inspect`: the header, metadata, tensor table and per-type sizes
//! of a file, as tables or as JSON.

mod json;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ggufmap::format::ByteOrder;
use ggufmap::{GgmlType, Gguf};

use crate::output::{display_name, human_bytes, percent, Table};
use crate::values;

/// Arguments of `ggufmap inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The GGUF file.
    pub file: PathBuf,
    /// How to open it.
    #[command(flatten)]
    open: crate::OpenArgs,
    /// Print one JSON object instead of tables: version, alignment,
    /// tensor_count, metadata_count, metadata, tensors, byte_order,
    /// data_offset, file_size, type_histogram.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ggufmap inspect`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let gguf = crate::open(&args.file, &args.open)?;
    let mut out = crate::output::stdout();
    if args.json {
        json::write(&gguf, &mut out)?;
    } else {
        write_human(&gguf, &args.file, &mut out)?;
    }
    out.flush()?;
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

fn write_human(gguf: &Gguf<'_>, path: &Path, out: &mut dyn Write) -> io::Result<()> {
    write_header(gguf, path, out)?;
    write_metadata(gguf, out)?;
    write_tensors(gguf, out)?;
    write_histogram(gguf, out)?;
    write_total(gguf, out)
}

fn write_header(gguf: &Gguf<'_>, path: &Path, out: &mut dyn Write) -> io::Result<()> {
    let file_size = gguf.file_size();
    writeln!(out, "{}", display_name(&path.display().to_string()))?;
    writeln!(out, "  GGUF version  {}", gguf.version())?;
    writeln!(
        out,
        "  byte order    {}-endian",
        byte_order_name(gguf.byte_order())
    )?;
    writeln!(out, "  alignment     {}", gguf.alignment())?;
    writeln!(out, "  tensors       {}", gguf.tensor_count())?;
    writeln!(out, "  metadata      {} entries", gguf.metadata().len())?;
    writeln!(out, "  data offset   {}", gguf.data_start())?;
    if gguf.part_count() > 1 {
        writeln!(out, "  parts         {}", gguf.part_count())?;
        for (no, path) in gguf.part_paths().enumerate() {
            let path = path.map(|p| p.display().to_string()).unwrap_or_default();
            writeln!(out, "    {}  {}", no + 1, display_name(&path))?;
        }
    }
    writeln!(
        out,
        "  file size     {file_size} bytes ({})",
        human_bytes(file_size)
    )
}

/// The key whose integer names the file's quantization mix.
const FILE_TYPE_KEY: &str = "general.file_type";

fn write_metadata(gguf: &Gguf<'_>, out: &mut dyn Write) -> io::Result<()> {
    let metadata = gguf.metadata();
    writeln!(out, "\nmetadata ({} entries)", metadata.len())?;
    let table = Table::new(&[("KEY", false), ("TYPE", false), ("VALUE", false)]);
    table.write(out, || {
        metadata.iter().map(|(key, value)| {
            let mut summary = values::summary(&value);
            let file_type = value.to_u64().and_then(values::file_type_name);
            if let (FILE_TYPE_KEY, Some(name)) = (key, file_type) {
                summary = format!("{summary} ({name})");
            }
            vec![display_name(key), values::type_label(&value), summary]
        })
    })
}

fn write_tensors(gguf: &Gguf<'_>, out: &mut dyn Write) -> io::Result<()> {
    let split = gguf.part_count() > 1;
    writeln!(
        out,
        "\ntensors ({}; shape outermost first, offset from the start of the {})",
        gguf.tensor_count(),
        if split { "part's file" } else { "file" }
    )?;
    let mut columns = vec![
        ("NAME", false),
        ("TYPE", false),
        ("SHAPE", false),
        ("BYTES", true),
        ("OFFSET", true),
    ];
    if split {
        columns.push(("PART", true));
    }
    let table = Table::new(&columns);
    table.write(out, || {
        gguf.tensors().map(move |t| {
            let mut row = vec![
                display_name(t.name()),
                t.dtype().to_string(),
                format!("{:?}", t.shape()),
                t.info().n_bytes().to_string(),
                t.byte_range().start.to_string(),
            ];
            if split {
                row.push((t.part() + 1).to_string());
            }
            row
        })
    })
}

fn write_histogram(gguf: &Gguf<'_>, out: &mut dyn Write) -> io::Result<()> {
    let total = gguf.tensor_bytes();
    writeln!(out, "\ntensor bytes by type")?;
    let table = Table::new(&[
        ("TYPE", false),
        ("COUNT", true),
        ("BYTES", true),
        ("SHARE", true),
    ]);
    let stats = histogram(gguf);
    table.write(out, || {
        stats.iter().map(|s| {
            vec![
                s.dtype.to_string(),
                s.count.to_string(),
                human_bytes(s.bytes),
                format!("{:.1}%", percent(s.bytes, total)),
            ]
        })
    })
}

fn write_total(gguf: &Gguf<'_>, out: &mut dyn Write) -> io::Result<()> {
    let bytes = gguf.tensor_bytes();
    let elements = gguf
        .tensors()
        .fold(0u64, |sum, t| sum.saturating_add(t.n_elements()));
    // Bits per element: the figure people compare quantizations by.
    let bits = percent(bytes.saturating_mul(8), elements) / 100.0;
    writeln!(
        out,
        "\ntotal: {} tensors, {elements} elements, {bytes} bytes of tensor data ({}), {bits:.2} bits per element",
        gguf.tensor_count(),
        human_bytes(bytes),
    )
}
