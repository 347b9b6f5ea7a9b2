//! Replays the fuzzers' committed inputs through the fuzz targets' own
//! checks (`tests/fuzz_checks/`, compiled into the fuzz crate too), so that plain
//! `cargo test` catches a regression of any crash the fuzzers found:
//! every file under `fuzz/regressions/open/` and `fuzz/corpus-seed/open/`
//! through the `open` target's checks, every file under
//! `fuzz/regressions/dequantize/` and `fuzz/corpus-seed/dequantize/`
//! through the `dequantize` target's. (The `roundtrip` and `split` targets
//! take `arbitrary` input; `fuzz/run.sh` replays their regressions.)

use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "fuzz_checks/mod.rs"]
mod checks;

/// True when the fuzz crate's inputs are here (a checkout; a packaged crate
/// has none).
fn have_fuzz_inputs() -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").is_dir()
}

/// The files of `fuzz/<dir>/<target>/`, sorted; none if it does not exist.
fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn replay(dir: &str, target: &str, check: fn(&[u8])) -> usize {
    let files = inputs(dir, target);
    for path in &files {
        let data = std::fs::read(path).unwrap();
        // Named on failure: the panic message follows this line.
        eprintln!("replaying {}", path.display());
        check(&data);
    }
    files.len()
}

#[test]
fn open_regressions() {
    replay("regressions", "open", checks::open_bytes);
}

#[test]
fn open_seeds() {
    if !have_fuzz_inputs() {
        return;
    }
    assert!(
        replay("corpus-seed", "open", checks::open_bytes) > 0,
        "the seed corpus is committed"
    );
}

#[test]
fn dequantize_regressions() {
    replay("regressions", "dequantize", checks::dequantize);
}

#[test]
fn dequantize_seeds() {
    if !have_fuzz_inputs() {
        return;
    }
    assert!(
        replay("corpus-seed", "dequantize", checks::dequantize) > 0,
        "the seed corpus is committed"
    );
}

// Findings of the roundtrip target in the writer: files the reader (and
// ggml) reject. While a fix is pending, its test is `#[ignore]`d and the
// fuzz target tolerates the case (`KNOWN_WRITER_GAPS` in fuzz/src/lib.rs).

/// Input `fuzz/regressions/roundtrip/writer-accepts-element-count-overflow`:
/// dims whose running product overflows i64 before a zero dim makes the
/// tensor empty. The reader rejects them as ggml's `gguf.cpp` does
/// (`SizeOverflow`, "element count overflows 64 bits"); the writer accepted
/// them, checking only the byte size (which is 0), until 65248e8.
#[test]
fn writer_rejects_dims_whose_element_count_overflows() {
    use ggufmap::{GgmlType, Gguf, GgufWriter};
    let mut w = GgufWriter::new();
    let added = w
        .add_tensor("t", GgmlType::F32, &[1 << 40, 1 << 40, 0], Vec::new())
        .is_ok();
    if added {
        let bytes = w.to_bytes().unwrap();
        let read = Gguf::from_bytes(&bytes);
        assert!(
            read.is_ok(),
            "the writer wrote a file the reader rejects: {:?}",
            read.err()
        );
    }
}

/// Arrays nested deeper than `format::MAX_ARRAY_DEPTH`: the reader rejects
/// them (`NestingTooDeep`), so the writer must not write them (it did
/// until 4035b0a).
#[test]
fn writer_rejects_arrays_nested_too_deep() {
    use ggufmap::format::{ValueType, MAX_ARRAY_DEPTH};
    use ggufmap::{Gguf, GgufWriter, MetaArray, MetaValue};
    let mut value = MetaValue::from(vec![1u8]);
    for _ in 0..MAX_ARRAY_DEPTH {
        value = MetaValue::Array(MetaArray::new(ValueType::Array, vec![value]).unwrap());
    }
    let mut w = GgufWriter::new();
    assert!(w.add_metadata("deep", value.clone()).is_err());
    // One level less is fine, and reads back.
    let MetaValue::Array(outer) = value else {
        unreachable!()
    };
    let mut w = GgufWriter::new();
    w.add_metadata("deep", outer.items()[0].clone()).unwrap();
    let bytes = w.to_bytes().unwrap();
    assert!(Gguf::from_bytes(&bytes).is_ok());
}
