//! Replays the fuzzers' committed inputs through the fuzz targets' own
//! checks (`fuzz/src/checks.rs`, compiled in here), so that plain
//! `cargo test` catches a regression of any crash the fuzzers found:
//! every file under `fuzz/regressions/open/` and `fuzz/corpus-seed/open/`
//! through the `open` target's checks, every file under
//! `fuzz/regressions/dequantize/` and `fuzz/corpus-seed/dequantize/`
//! through the `dequantize` target's. (The `roundtrip` and `split` targets
//! take `arbitrary` input; `fuzz/run.sh` replays their regressions.)

use std::path::{Path, PathBuf};

#[path = "../fuzz/src/checks.rs"]
#[allow(dead_code)]
mod checks;

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
    assert!(
        replay("corpus-seed", "dequantize", checks::dequantize) > 0,
        "the seed corpus is committed"
    );
}
