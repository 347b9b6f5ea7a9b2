//! The library under hostile file systems and streams: special files are
//! refused before they are read, writes replace files atomically (never
//! rewriting a mapped file), streams read into memory stay within a limit,
//! and the candle bridge stays within a small multiple of the file.

use std::io::Read;

use ggufmap::{DequantOptions, Error, GgmlType, Gguf, GgufWriter};

fn small_model(value: f32) -> Vec<u8> {
    let mut writer = GgufWriter::new();
    writer.add_metadata("general.name", "m").unwrap();
    writer
        .add_tensor(
            "w",
            GgmlType::F32,
            &[4],
            bytemuck::cast_slice(&[value; 4]).to_vec(),
        )
        .unwrap();
    writer.to_bytes().unwrap()
}

#[cfg(unix)]
#[test]
fn special_files_are_refused_before_any_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Opening a FIFO for reading would block until a writer came: this
    // returns at once.
    for (path, kind) in [
        (fifo.as_path(), "a FIFO"),
        (std::path::Path::new("/dev/null"), "a character device"),
        (dir.path(), "a directory"),
    ] {
        match Gguf::open(path) {
            Err(Error::NotAFile { path: p, kind: k }) => {
                assert_eq!(p, path);
                assert_eq!(k, kind);
            }
            other => panic!("{path:?}: {other:?}"),
        }
    }
}

#[test]
fn write_file_replaces_atomically_and_a_mapping_keeps_the_old_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, small_model(1.0)).unwrap();
    let old = Gguf::open(&path).unwrap();
    assert!(old.is_mapped());

    let mut writer = GgufWriter::new();
    writer
        .add_tensor(
            "w",
            GgmlType::F32,
            &[4],
            bytemuck::cast_slice(&[2.0f32; 4]).to_vec(),
        )
        .unwrap();
    writer.write_file(&path).unwrap();

    // The mapping still reads the file it was made from.
    assert_eq!(
        old.tensor("w").unwrap().as_slice::<f32>().unwrap(),
        &[1.0; 4]
    );
    let new = Gguf::open(&path).unwrap();
    assert_eq!(
        new.tensor("w").unwrap().as_slice::<f32>().unwrap(),
        &[2.0; 4]
    );
    // Nothing left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_failed_write_file_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("m.gguf");
    assert!(matches!(
        GgufWriter::new().write_file(&missing),
        Err(Error::Io { .. })
    ));
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, b"before").unwrap();
    let as_dir = dir.path().join("d");
    std::fs::create_dir(&as_dir).unwrap();
    assert!(GgufWriter::new().write_file(&as_dir).is_err());
    assert!(as_dir.is_dir());
    assert_eq!(std::fs::read(&path).unwrap(), b"before");
}

/// A stream that never ends.
struct Endless;

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        buf.fill(b'G');
        Ok(buf.len())
    }
}

#[test]
fn read_limited_refuses_an_endless_stream() {
    match Gguf::read_limited(Endless, 1 << 20) {
        Err(Error::StreamTooLong { limit }) => assert_eq!(limit, 1 << 20),
        other => panic!("{other:?}"),
    }
    let bytes = small_model(3.0);
    let len = bytes.len() as u64;
    let file = Gguf::read_limited(bytes.as_slice(), len).unwrap();
    assert_eq!(
        file.tensor("w")
            .unwrap()
            .dequantize_to_vec::<f32>(&DequantOptions::default())
            .unwrap(),
        [3.0; 4]
    );
    assert!(matches!(
        Gguf::read_limited(bytes.as_slice(), len - 1),
        Err(Error::StreamTooLong { .. })
    ));
}

#[test]
fn dims_follow_ggmls_running_product_rule_in_reader_and_writer() {
    // 2^32 * 2^31 passes i64::MAX before the zero: refused both ways.
    let dims = [1u64 << 32, 1 << 31, 0];
    assert_eq!(GgmlType::element_count(&dims), None);
    let mut writer = GgufWriter::new();
    assert!(writer
        .add_tensor("z", GgmlType::F32, &dims, Vec::new())
        .is_err());
    // Huge dims after the zero are fine: the running product stays 0.
    let dims = [0u64, 1 << 62, 1 << 62];
    assert_eq!(GgmlType::element_count(&dims), Some(0));
    writer
        .add_tensor("e", GgmlType::F32, &dims, Vec::new())
        .unwrap();
    let bytes = writer.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    assert_eq!(file.tensor("e").unwrap().n_elements(), 0);
}

#[test]
fn unsupported_versions_are_reported_in_both_byte_orders() {
    let mut bytes = small_model(0.0);
    bytes[4..8].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    let message = Gguf::from_bytes(&bytes).unwrap_err().to_string();
    assert!(message.contains("65536 little-endian"), "{message}");
    assert!(message.contains("256 big-endian"), "{message}");
}

#[cfg(feature = "candle")]
#[test]
fn the_candle_bridge_refuses_arrays_past_a_multiple_of_the_file() {
    // 8 MiB of u8 would be 256 MiB of candle values: past 8 x 8 MiB + 64 MiB.
    let mut writer = GgufWriter::new();
    writer.add_metadata("small", vec![1u32, 2, 3]).unwrap();
    writer
        .add_metadata("huge", ggufmap::MetaValue::from(vec![7u8; 8 << 20]))
        .unwrap();
    let bytes = writer.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    match file.to_candle_content() {
        Err(Error::CandleMetadataTooLarge { key, needed, limit }) => {
            assert_eq!(key, "huge");
            assert!(needed > limit);
            assert_eq!(limit, bytes.len() as u64 * 8 + (64 << 20));
        }
        other => panic!("{other:?}"),
    }
    // A vocabulary-sized array of strings is well within.
    let mut writer = GgufWriter::new();
    let tokens: Vec<String> = (0..262_144).map(|i| format!("tok{i}")).collect();
    writer
        .add_metadata(
            "tokenizer.ggml.tokens",
            ggufmap::MetaValue::strings(&tokens),
        )
        .unwrap();
    writer
        .add_metadata("tokenizer.ggml.token_type", vec![1i32; 262_144])
        .unwrap();
    let bytes = writer.to_bytes().unwrap();
    let content = Gguf::from_bytes(&bytes)
        .unwrap()
        .to_candle_content()
        .unwrap();
    assert_eq!(content.metadata.len(), 2);
}
