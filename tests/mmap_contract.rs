//! The mapping contract (see `Gguf`'s docs and the README): a file replaced
//! by rename keeps reading its old contents; the in-memory modes see exactly
//! what the mapping sees; a file truncated under the mapping kills the
//! process with SIGBUS (checked in a child process, never in this one).

use std::io::Write;
use std::path::Path;

use ggufmap::{DequantOptions, GgmlType, Gguf, GgufWriter, MetaValue, OpenOptions};

/// A small file whose every tensor and metadata value depends on `tag`.
fn model_bytes(tag: u8, tensor_elems: usize) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", format!("arch-{tag}"))
        .unwrap();
    w.add_metadata("test.tag", tag).unwrap();
    w.add_metadata(
        "tokenizer.ggml.tokens",
        MetaValue::strings([format!("a{tag}"), format!("b{tag}")]),
    )
    .unwrap();
    let f32s: Vec<f32> = (0..tensor_elems)
        .map(|i| f32::from(tag) * 1000.0 + i as f32)
        .collect();
    w.add_tensor(
        "w",
        GgmlType::F32,
        &[tensor_elems as u64],
        bytemuck::cast_slice::<f32, u8>(&f32s).to_vec(),
    )
    .unwrap();
    let q8: Vec<u8> = (0..34 * 4).map(|i| (i as u8).wrapping_mul(tag)).collect();
    w.add_tensor("q", GgmlType::Q8_0, &[32, 4], q8).unwrap();
    w.to_bytes().unwrap()
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::rename(&tmp, path).unwrap();
}

/// Everything a reader can see in a file, as owned values.
#[derive(Debug, PartialEq)]
struct Seen {
    version: u32,
    alignment: u32,
    data_offset: usize,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<SeenTensor>,
}

/// One tensor as a reader sees it: name, type, dims, byte range, bytes and
/// the bits of its f32 values.
#[derive(Debug, PartialEq)]
struct SeenTensor {
    name: String,
    dtype: GgmlType,
    dims: Vec<u64>,
    range: std::ops::Range<u64>,
    bytes: Vec<u8>,
    f32_bits: Vec<u32>,
}

fn seen(g: &Gguf<'_>) -> Seen {
    Seen {
        version: g.version(),
        alignment: g.alignment(),
        data_offset: g.data_start(),
        metadata: g
            .metadata()
            .iter()
            .map(|(k, v)| (k.to_owned(), MetaValue::from_value(&v)))
            .collect(),
        tensors: g
            .tensors()
            .map(|t| SeenTensor {
                name: t.name().to_owned(),
                dtype: t.dtype(),
                dims: t.dims().to_vec(),
                range: t.byte_range(),
                bytes: t.read_bytes().unwrap().into_owned(),
                f32_bits: t
                    .dequantize_to_vec::<f32>(&DequantOptions::default())
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect(),
            })
            .collect(),
    }
}

#[test]
fn a_file_replaced_by_rename_keeps_its_old_contents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let a = model_bytes(1, 4096);
    let b = model_bytes(2, 4096);
    assert_eq!(a.len(), b.len());
    std::fs::write(&path, &a).unwrap();

    let mapped = Gguf::open(&path).unwrap();
    assert!(mapped.is_mapped());
    let before = seen(&mapped);

    write_atomically(&path, &b);

    // The open file still reads A, byte for byte and value for value.
    assert_eq!(mapped.as_bytes(), Some(&a[..]));
    assert_eq!(seen(&mapped), before);
    assert_eq!(
        mapped.metadata().get_str("general.architecture").unwrap(),
        "arch-1"
    );
    assert_eq!(mapped.metadata().get_u8("test.tag").unwrap(), 1);
    let w = mapped.tensor("w").unwrap();
    assert_eq!(w.as_slice::<f32>().unwrap()[5], 1005.0);

    // Opening the path again reads B.
    let reopened = Gguf::open(&path).unwrap();
    assert_eq!(reopened.as_bytes(), Some(&b[..]));
    assert_eq!(
        reopened.metadata().get_str("general.architecture").unwrap(),
        "arch-2"
    );
    assert_ne!(seen(&reopened), before);
}

#[test]
fn a_file_removed_after_opening_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let a = model_bytes(3, 1000);
    std::fs::write(&path, &a).unwrap();
    let mapped = Gguf::open(&path).unwrap();
    let before = seen(&mapped);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(seen(&mapped), before);
    assert_eq!(mapped.as_bytes(), Some(&a[..]));
}

#[test]
fn in_memory_modes_see_what_the_mapping_sees() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let bytes = model_bytes(7, 3000);
    std::fs::write(&path, &bytes).unwrap();

    let mapped = Gguf::open(&path).unwrap();
    let populated = Gguf::open_with(&path, &OpenOptions::new().populate(true)).unwrap();
    let in_memory = Gguf::open_with(&path, &OpenOptions::new().in_memory(true)).unwrap();
    let read = Gguf::read(std::fs::File::open(&path).unwrap()).unwrap();
    let read_slice = Gguf::read(&bytes[..]).unwrap();
    let borrowed = Gguf::from_bytes(&bytes).unwrap();

    assert!(mapped.is_mapped() && populated.is_mapped());
    assert!(!in_memory.is_mapped() && !read.is_mapped() && !borrowed.is_mapped());
    assert_eq!(mapped.path(), Some(path.as_path()));
    assert_eq!(in_memory.path(), Some(path.as_path()));
    assert_eq!(read.path(), None);

    let reference = seen(&mapped);
    for g in [&populated, &in_memory, &read, &read_slice, &borrowed] {
        assert_eq!(g.as_bytes(), Some(&bytes[..]));
        assert_eq!(seen(g), reference);
    }
    // The copies are aligned like the mapping, so zero-copy views work there too.
    for g in [&mapped, &in_memory, &read] {
        assert_eq!(
            g.tensor("w").unwrap().as_slice::<f32>().unwrap().len(),
            3000
        );
    }
}

#[test]
fn in_memory_copy_ignores_later_changes_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let a = model_bytes(4, 100);
    std::fs::write(&path, &a).unwrap();
    let copy = Gguf::open_with(&path, &OpenOptions::new().in_memory(true)).unwrap();
    let before = seen(&copy);
    // Rewritten in place and truncated: harmless to a copy.
    std::fs::write(&path, model_bytes(5, 100)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(10)
        .unwrap();
    assert_eq!(seen(&copy), before);
    assert_eq!(copy.as_bytes(), Some(&a[..]));
}

/// Set in the child process of `truncation_under_the_mapping_raises_sigbus`.
const SIGBUS_CHILD: &str = "GGUFMAP_TEST_SIGBUS_CHILD";

#[cfg(target_os = "linux")]
#[test]
fn truncation_under_the_mapping_raises_sigbus() {
    use std::os::unix::process::ExitStatusExt;

    if let Some(dir) = std::env::var_os(SIGBUS_CHILD) {
        // In the child: map, truncate, touch. This must not return.
        let path = Path::new(&dir).join("model.gguf");
        let mapped = Gguf::open(&path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let sum: f32 = mapped
            .tensor("w")
            .unwrap()
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .sum();
        println!("child survived truncation (sum {sum})");
        std::process::exit(0);
    }

    let dir = tempfile::tempdir().unwrap();
    // Tensor data well past the first page, so it is on pages the truncation removes.
    std::fs::write(dir.path().join("model.gguf"), model_bytes(6, 8192)).unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "truncation_under_the_mapping_raises_sigbus",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SIGBUS_CHILD, dir.path())
        .output()
        .unwrap();
    assert_eq!(
        output.status.signal(),
        Some(7), // SIGBUS on Linux
        "child should die by SIGBUS; status {:?}, stdout {}, stderr {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

#[test]
fn every_advice_is_given_and_the_model_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("advised.gguf");
    let bytes = model_bytes(7, 64);
    std::fs::write(&path, &bytes).unwrap();
    for advice in [
        ggufmap::Advice::Sequential,
        ggufmap::Advice::Random,
        ggufmap::Advice::WillNeed,
    ] {
        let g = Gguf::open_with(&path, &OpenOptions::new().advise(advice)).unwrap();
        assert!(g.is_mapped());
        assert_eq!(g.as_bytes(), Some(&bytes[..]), "{advice:?}");
    }
}
