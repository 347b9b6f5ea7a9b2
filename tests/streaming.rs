//! Models streamed from a `Read + Seek` source ([`Gguf::from_reader`],
//! `OpenOptions::streamed`): the same tensors as the file in memory,
//! memory bounded by the chunks in flight, and a reader that fails or ends
//! early is a typed error naming the tensor and the byte offset.

mod common;

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};

use ggufmap::{
    DequantOptions, Error, GgmlType, Gguf, GgufWriter, MetaValue, OpenOptions, Parallelism,
};

/// One tensor of every type, two blocks' worth of rows, after 2 MiB of
/// F32 (so that most tensor data lies past what opening reads).
fn every_type_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", MetaValue::string("test"))
        .unwrap();
    w.add_tensor(
        "lead",
        GgmlType::F32,
        &[512 * 1024],
        common::pseudo_random_bytes(2 << 20, 99),
    )
    .unwrap();
    for (i, &dtype) in GgmlType::ALL.iter().enumerate() {
        let dims = [dtype.elements_per_block() as u64 * 2, 3];
        let len = dtype.tensor_bytes(&dims).unwrap() as usize;
        w.add_tensor(
            format!("t{i}.{dtype}"),
            dtype,
            &dims,
            common::pseudo_random_bytes(len, i as u64),
        )
        .unwrap();
    }
    w.to_bytes().unwrap()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_streamed_model_gives_the_same_tensors_as_in_memory() {
    let bytes = every_type_file();
    let memory = Gguf::from_bytes(&bytes).unwrap();
    let stream = Gguf::from_reader(Cursor::new(bytes.clone())).unwrap();
    assert!(stream.is_streamed() && !stream.is_mapped());
    assert_eq!(stream.as_bytes(), None);
    // Debug output describes the storage and the index; it never prints
    // the file's bytes (more than 2 MiB here).
    for debug in [format!("{memory:?}"), format!("{stream:?}")] {
        assert!(debug.len() < 20_000, "{} bytes of Debug", debug.len());
    }
    assert_eq!(stream.tensors().len(), memory.tensor_count());
    assert_eq!(stream.file_size(), bytes.len() as u64);
    assert_eq!(stream.tensor_count(), memory.tensor_count());
    assert_eq!(
        stream.metadata().get_str("general.architecture").unwrap(),
        "test"
    );
    for (a, b) in memory.tensors().zip(stream.tensors()) {
        let name = a.name();
        assert_eq!(b.name(), name);
        assert_eq!(b.byte_range(), a.byte_range());
        assert!(matches!(b.bytes(), Err(Error::NotInMemory { tensor }) if tensor == name));
        assert_eq!(b.read_bytes().unwrap(), a.read_bytes().unwrap());
        let opts = DequantOptions::default();
        let values = a.dequantize_to_vec::<f32>(&opts).unwrap();
        let streamed_values = b.dequantize_to_vec::<f32>(&opts).unwrap();
        common::assert_same_bits(name, &streamed_values, &values);
        let expected = bits(&values);
        for par in [Parallelism::Sequential, Parallelism::default()] {
            let mut out = vec![0f32; expected.len()];
            b.dequantize_into(&mut out, &DequantOptions::new().parallelism(par.clone()))
                .unwrap();
            common::assert_same_bits(name, &out, &values);
        }
        // Chunks of one block each, and chunks handed to a callback.
        let mut streamed = vec![0u32; expected.len()];
        for chunk in b.dequantize_chunks::<f32>(1, &DequantOptions::default()) {
            let chunk = chunk.unwrap();
            let at = chunk.first_element;
            streamed[at..at + chunk.data.len()].copy_from_slice(&bits(&chunk.data));
        }
        assert_eq!(streamed, expected, "{name}");
        let seen = std::sync::Mutex::new(vec![0u32; expected.len()]);
        b.dequantize_each_chunk::<f32>(&DequantOptions::default(), |at, values| {
            seen.lock().unwrap()[at..at + values.len()].copy_from_slice(&bits(values));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.into_inner().unwrap(), expected, "{name}");
    }
}

#[test]
fn a_file_can_be_streamed_by_path() {
    let bytes = every_type_file();
    let (_dir, path) = common::temp_file("every-type.gguf", &bytes);
    let stream = Gguf::open_with(&path, &OpenOptions::new().streamed(true)).unwrap();
    assert!(stream.is_streamed());
    assert_eq!(stream.path(), Some(path.as_path()));
    let memory = Gguf::from_bytes(&bytes).unwrap();
    for (a, b) in memory.tensors().zip(stream.tensors()) {
        assert_eq!(b.path(), Some(path.as_path()));
        assert_eq!(b.read_bytes().unwrap(), a.read_bytes().unwrap());
    }
}

#[test]
fn a_header_longer_than_the_first_read_is_read_whole() {
    // 3 MiB of metadata before the tensor infos: past the first 1 MiB read.
    let mut w = GgufWriter::new();
    let tokens: Vec<String> = (0..200_000).map(|i| format!("token-{i:08}")).collect();
    w.add_metadata("tokenizer.ggml.tokens", MetaValue::strings(&tokens))
        .unwrap();
    let values: Vec<f32> = (0..1024).map(|i| i as f32).collect();
    w.add_tensor("w", GgmlType::F32, &[1024], bytemuck::cast_slice(&values))
        .unwrap();
    let bytes = w.to_bytes().unwrap();
    assert!(bytes.len() > 3 << 20);
    let stream = Gguf::from_reader(Cursor::new(bytes)).unwrap();
    let vocab = stream
        .metadata()
        .get_array("tokenizer.ggml.tokens")
        .unwrap();
    assert_eq!(vocab.len(), 200_000);
    assert_eq!(
        stream
            .tensor("w")
            .unwrap()
            .dequantize_to_vec::<f32>(&DequantOptions::default())
            .unwrap(),
        values
    );
}

/// A reader over `data` that fails every read past `fail_from`, with an
/// error or (with `short`) by ending there.
struct FailingReader {
    data: Cursor<Vec<u8>>,
    fail_from: u64,
    short: bool,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let pos = self.data.position();
        if pos >= self.fail_from {
            return if self.short {
                Ok(0)
            } else {
                Err(std::io::Error::other("the disk went away"))
            };
        }
        let room = usize::try_from(self.fail_from - pos).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        self.data.read(&mut buf[..n])
    }
}

impl Seek for FailingReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.data.seek(to)
    }
}

#[test]
fn a_reader_that_fails_halfway_names_the_tensor_and_the_offset() {
    let bytes = every_type_file();
    let memory = Gguf::from_bytes(&bytes).unwrap();
    let victim = memory
        .tensors()
        .find(|t| t.dtype() == GgmlType::Q4_K)
        .unwrap();
    let fail_from = victim.byte_range().start + 7;
    // Past what opening reads of the header (its first MiB).
    assert!(fail_from > 1 << 20);
    for short in [false, true] {
        let reader = FailingReader {
            data: Cursor::new(bytes.clone()),
            fail_from,
            short,
        };
        let stream = Gguf::from_reader(reader).unwrap();
        // Tensors before the failure read; the one across it does not.
        for t in stream.tensors() {
            let result = t.dequantize_to_vec::<f32>(&DequantOptions::default());
            if t.byte_range().end <= fail_from {
                assert!(result.is_ok(), "{}: {result:?}", t.name());
                continue;
            }
            match result {
                Err(Error::TensorRead {
                    tensor,
                    path: None,
                    offset,
                    source,
                }) => {
                    assert_eq!(tensor, t.name());
                    assert!(t.byte_range().contains(&offset) || offset == t.byte_range().start);
                    let kind = if short {
                        std::io::ErrorKind::UnexpectedEof
                    } else {
                        std::io::ErrorKind::Other
                    };
                    assert_eq!(source.kind(), kind);
                }
                other => panic!("{}: {other:?}", t.name()),
            }
            let err = t.read_bytes().unwrap_err();
            assert!(err.to_string().contains(t.name()), "{err}");
            assert!(
                err.to_string()
                    .contains(&format!("at byte {}", t.byte_range().start)),
                "{err}"
            );
        }
    }
}

#[test]
fn a_reader_that_fails_in_the_header_is_a_stream_error() {
    let bytes = every_type_file();
    let reader = FailingReader {
        data: Cursor::new(bytes),
        fail_from: 100,
        short: false,
    };
    assert!(matches!(
        Gguf::from_reader(reader),
        Err(Error::Io { path: None, .. })
    ));
}

#[test]
fn a_stream_cut_short_fails_as_the_file_would() {
    let bytes = every_type_file();
    for cut in [3, 24, 100, bytes.len() / 2, bytes.len() - 1] {
        let from_bytes = Gguf::from_bytes(&bytes[..cut]).unwrap_err();
        let streamed = Gguf::from_reader(Cursor::new(bytes[..cut].to_vec())).unwrap_err();
        assert_eq!(streamed.to_string(), from_bytes.to_string(), "cut at {cut}");
    }
}

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

#[test]
fn streaming_a_large_tensor_keeps_memory_to_its_chunks() {
    // 64 Mi Q8_0 elements: 68 MiB in the file, 256 MiB as f32.
    let dims = [4096u64, 16384];
    let len = GgmlType::Q8_0.tensor_bytes(&dims).unwrap() as usize;
    let mut w = GgufWriter::new();
    w.add_tensor(
        "big",
        GgmlType::Q8_0,
        &dims,
        common::pseudo_random_bytes(len, 7),
    )
    .unwrap();
    let bytes = w.to_bytes().unwrap();
    drop(w);
    let stream = Gguf::from_reader(Cursor::new(bytes)).unwrap();
    let t = stream.tensor("big").unwrap();

    let counted = AtomicU64::new(0);
    let (values, peak) = common::alloc::peak_during(|| {
        t.dequantize_each_chunk::<f32>(
            &DequantOptions::new().parallelism(Parallelism::Sequential),
            |_, v| {
                counted.fetch_add(v.len() as u64, Ordering::Relaxed);
                Ok(())
            },
        )
        .unwrap();
        t.dequantize_chunks::<f32>(1 << 20, &DequantOptions::default())
            .map(|chunk| chunk.unwrap().data.len() as u64)
            .sum::<u64>()
    });

    assert_eq!(counted.into_inner(), t.n_elements());
    assert_eq!(values, t.n_elements());
    // Pooled buffers of one work item or one chunk (and its bytes), kept by
    // the pool for reuse: a few MiB, against 256 MiB of values.
    assert!(peak < 8 << 20, "peak heap {peak} bytes");
}
