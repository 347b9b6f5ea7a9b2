//! `GgufWriter` streams: the header is encoded in memory, tensor bytes go
//! straight to the output (given, or written by a callback for declared
//! tensors), so writing a model larger than the memory a test allows itself
//! works; a callback that writes too few or too many bytes, or fails, is a
//! typed error.

mod common;

use std::io::Write;

use ggufmap::format::parse_header;
use ggufmap::{Error, GgmlType, Gguf, GgufWriter, MetaValue};

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

/// A writer that keeps the first `keep` bytes and counts the rest.
struct Sink {
    head: Vec<u8>,
    keep: usize,
    len: u64,
}

impl Sink {
    fn new(keep: usize) -> Self {
        Sink {
            head: Vec::with_capacity(keep),
            keep,
            len: 0,
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.keep - self.head.len();
        self.head.extend_from_slice(&buf[..buf.len().min(room)]);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The byte at `i` of each MiB of tensor `t`'s data in the big file.
fn pattern(t: usize, i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (t * 131)) as u8
}

#[test]
fn two_gib_of_tensor_data_are_written_in_bounded_memory() {
    const TENSORS: usize = 4;
    const ELEMS: u64 = 512 << 20; // 512 MiB of I8 each: 2 GiB in all
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "big").unwrap();
    for t in 0..TENSORS {
        w.declare_tensor(format!("t{t}"), GgmlType::I8, &[ELEMS])
            .unwrap();
    }
    let mut sink = Sink::new(64 << 10);
    let (result, peak) = common::alloc::peak_during(|| {
        w.write_to_with(&mut sink, |name, out| {
            let t: usize = name[1..].parse().unwrap();
            let chunk: Vec<u8> = (0..1 << 20).map(|k| pattern(t, k)).collect();
            for _ in 0..ELEMS / chunk.len() as u64 {
                out.write_all(&chunk)?;
            }
            Ok(())
        })
    });
    result.unwrap();
    assert!(
        peak < 64 << 20,
        "peak heap {peak} bytes while writing 2 GiB"
    );

    // The header describes what was written, the data packed after it.
    let index = parse_header(&sink.head, sink.len).unwrap();
    assert_eq!(index.tensors().len(), TENSORS);
    let data_start = index.data_start() as u64;
    assert_eq!(sink.len, data_start + TENSORS as u64 * ELEMS);
    for (t, info) in index.tensors().iter().enumerate() {
        assert_eq!(info.data_offset(), t as u64 * ELEMS);
        assert_eq!(info.n_bytes(), ELEMS);
    }
    // The first tensor's first bytes are the pattern.
    let first = &sink.head[data_start as usize..];
    assert!(first.iter().enumerate().all(|(i, &b)| b == pattern(0, i)));
}

#[test]
fn declared_tensors_give_the_same_file_as_tensors_given_whole() {
    let a: Vec<u8> = (0..96).collect();
    let b: Vec<u8> = (0..34).map(|i| i * 3).collect();
    let mut given = GgufWriter::new();
    given.add_metadata("k", MetaValue::U32(7)).unwrap();
    given.add_tensor("a", GgmlType::I8, &[96], &a[..]).unwrap();
    given
        .add_tensor("b", GgmlType::Q8_0, &[32], &b[..])
        .unwrap();
    let mut declared = GgufWriter::new();
    declared.add_metadata("k", MetaValue::U32(7)).unwrap();
    declared.declare_tensor("a", GgmlType::I8, &[96]).unwrap();
    declared
        .add_tensor("b", GgmlType::Q8_0, &[32], &b[..])
        .unwrap();
    let mut out = Vec::new();
    declared
        .write_to_with(&mut out, |name, w| {
            assert_eq!(name, "a");
            // In pieces.
            w.write_all(&a[..10])?;
            w.write_all(&a[10..])
        })
        .unwrap();
    assert_eq!(out, given.to_bytes().unwrap());
    let file = Gguf::from_bytes(&out).unwrap();
    assert_eq!(file.tensor("a").unwrap().bytes().unwrap(), &a[..]);

    // A file written with a declared tensor but no callback is refused.
    assert!(matches!(
        declared.to_bytes(),
        Err(Error::Io { path: None, .. })
    ));
}

#[test]
fn a_callback_that_writes_the_wrong_bytes_or_fails_is_an_error() {
    let mut w = GgufWriter::new();
    w.declare_tensor("short", GgmlType::F32, &[8]).unwrap();
    for (bytes, what) in [(31usize, "too few"), (33, "too many")] {
        let err = w
            .write_to_with(Vec::new(), |_, out| out.write_all(&vec![0u8; bytes]))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Write { what, reason: ggufmap::WriteRefusal::WrongByteCount } if what.contains("\"short\"")),
            "{what}: {err:?}"
        );
    }
    let err = w
        .write_to_with(Vec::new(), |_, _| Err(std::io::Error::other("source gone")))
        .unwrap_err();
    assert!(matches!(err, Error::Io { path: None, source: e } if e.to_string() == "source gone"));

    // Writing to a file: the error names the file, and nothing is left.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.gguf");
    std::fs::write(&path, b"what was there").unwrap();
    let err = w
        .write_file_with(&path, |_, _| Err(std::io::Error::other("source gone")))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { path: Some(p), .. } if *p == path),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"what was there");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn tensors_copy_between_models_in_bounded_chunks() {
    // A streamed model's tensors written into a new file through
    // `write_bytes_to`: the new file holds the same bytes.
    let mut w = GgufWriter::new();
    let big: Vec<u8> = (0..(9 << 20)).map(|i: u32| (i % 251) as u8).collect();
    w.add_tensor("big", GgmlType::I8, &[big.len() as u64], &big[..])
        .unwrap();
    let source = w.to_bytes().unwrap();
    let model = Gguf::from_reader(std::io::Cursor::new(source.clone())).unwrap();
    let mut copy = GgufWriter::new();
    copy.declare_tensor("big", GgmlType::I8, &[big.len() as u64])
        .unwrap();
    let mut out = Vec::with_capacity(source.len());
    let t = model.tensor("big").unwrap();
    copy.write_to_with(&mut out, |_, w| {
        t.write_bytes_to(w).map_err(std::io::Error::other)
    })
    .unwrap();
    assert_eq!(out, source);
}
