//! Hand-made malformed files, one per way each header field can be wrong,
//! each asserting its typed error (and offset); every prefix of a valid file;
//! every bit flip of its header. Nothing may panic.
//!
//! The case table lives in `gguf_cases/mod.rs`, shared with
//! `alloc_bound.rs`, which opens every case under a counting allocator.

mod gguf_cases;

use std::io::Read;

use ggufmap::format::{parse, ValueType};
use ggufmap::{DequantOptions, Error, Gguf};

use gguf_cases::{cases, nested_arrays, open_and_use, sample_file, use_everything, walk_value};

#[test]
fn malformed_table() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let parsed = parse(&case.bytes);
        if !(case.check)(&parsed) {
            failures.push(format!(
                "{}: got {:?}",
                case.name,
                parsed.map(|_| "Ok(index)")
            ));
        }
        // The owning type gives the same answer, and a valid file is usable.
        let _ = open_and_use(&case.bytes);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn case_names_are_unique() {
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len());
}

#[test]
fn every_error_message_is_lowercase_without_period() {
    for case in cases() {
        if let Err(e) = parse(&case.bytes) {
            let msg = e.to_string();
            let first = msg.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{}: {msg}", case.name);
            assert!(!msg.ends_with('.'), "{}: {msg}", case.name);
        }
    }
}

#[test]
fn nesting_8_deep_walks_to_the_innermost_value() {
    let (bytes, _) = nested_arrays(8);
    let file = Gguf::from_bytes(&bytes).unwrap();
    let mut value = file.metadata().get("nested").unwrap();
    for _ in 0..8 {
        let array = value.as_array().unwrap();
        assert_eq!(array.len(), 1);
        value = array.get(0).unwrap();
    }
    assert_eq!(value, ggufmap::format::Value::U8(7));
    assert_eq!(walk_value(&file.metadata().get("nested").unwrap()), 9);
}

#[test]
fn non_utf8_string_value_errors_only_on_access() {
    let (bytes, at) = gguf_cases::one_kv(b"a", gguf_cases::T_STRING, |e| {
        e.str(b"\xff\xfe not utf-8");
    });
    let file = Gguf::from_bytes(&bytes).unwrap();
    let s = file.metadata().get_string("a").unwrap();
    assert_eq!(s.as_bytes(), b"\xff\xfe not utf-8");
    assert!(
        matches!(s.as_str(), Err(Error::InvalidUtf8 { what: "metadata string", offset }) if offset == at + 8)
    );
    assert!(
        matches!(file.metadata().get_str("a"), Err(Error::InvalidUtf8 { what: "metadata string", offset }) if offset == at + 8)
    );
}

#[test]
fn zero_sized_and_scalar_tensors_are_usable() {
    let mut e = gguf_cases::Enc::le();
    e.header(3, 3, 0)
        .tensor(b"empty", &[0, 4], gguf_cases::F32, 0)
        .tensor(b"q_empty", &[0], gguf_cases::Q4_0, 0)
        .tensor(b"scalar", &[], gguf_cases::F32, 0)
        .pad(32)
        .raw(&2.5f32.to_le_bytes());
    let bytes = e.finish();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let empty = file.tensor("empty").unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.shape(), vec![4, 0]);
    assert!(empty.read_slice::<f32>().unwrap().is_empty());
    assert!(empty
        .dequantize_to_vec::<f32>(&DequantOptions::default())
        .unwrap()
        .is_empty());
    let q_empty = file.tensor("q_empty").unwrap();
    assert!(q_empty
        .dequantize_to_vec::<f32>(&DequantOptions::default())
        .unwrap()
        .is_empty());
    let scalar = file.tensor("scalar").unwrap();
    assert_eq!(scalar.dims(), &[] as &[u64]);
    assert_eq!(scalar.n_elements(), 1);
    assert_eq!(&*scalar.read_slice::<f32>().unwrap(), &[2.5]);
}

#[test]
fn sample_file_is_valid_and_about_2kb() {
    let bytes = sample_file();
    assert!((1500..4096).contains(&bytes.len()), "{} bytes", bytes.len());
    let file = Gguf::from_bytes(&bytes).unwrap();
    assert_eq!(file.tensor_count(), 3);
    assert_eq!(
        file.metadata()
            .get_array("tokenizer.ggml.tokens")
            .unwrap()
            .element_type(),
        ValueType::String
    );
    use_everything(&file);
}

#[test]
fn every_prefix_of_a_valid_file_is_an_error() {
    let bytes = sample_file();
    for len in 0..bytes.len() {
        let prefix = &bytes[..len];
        let result = std::panic::catch_unwind(|| open_and_use(prefix));
        match result {
            Ok(Err(_)) => {}
            Ok(Ok(())) => panic!("prefix of {len} of {} bytes parsed", bytes.len()),
            Err(_) => panic!("prefix of {len} bytes panicked"),
        }
    }
    assert!(open_and_use(&bytes).is_ok());
}

#[test]
fn every_bit_flip_of_the_header_is_ok_or_error() {
    let bytes = sample_file();
    let header_len = parse(&bytes).unwrap().data_start();
    let (mut ok, mut err) = (0u32, 0u32);
    let mut flipped = bytes.clone();
    for byte in 0..header_len {
        for bit in 0..8 {
            flipped[byte] ^= 1 << bit;
            // `open_and_use` checks every tensor lies inside the file and
            // walks every value when the flip still parses.
            match std::panic::catch_unwind(|| open_and_use(&flipped)) {
                Ok(Ok(())) => ok += 1,
                Ok(Err(_)) => err += 1,
                Err(_) => panic!("flipping bit {bit} of byte {byte} panicked"),
            }
            flipped[byte] ^= 1 << bit;
        }
    }
    assert_eq!(flipped, bytes);
    // Flips in string contents and numeric values keep the file valid; flips
    // in lengths, counts and type ids do not.
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.gguf");
    assert!(matches!(Gguf::open(&path), Err(Error::Io { path: Some(p), .. }) if p == path));
}

#[test]
fn empty_file_on_disk_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.gguf");
    std::fs::write(&path, b"").unwrap();
    let result = Gguf::open(&path);
    assert!(
        matches!(
            result,
            Err(Error::UnexpectedEof {
                what: "magic",
                offset: 0,
                ..
            }) | Err(Error::Io { .. })
        ),
        "{result:?}"
    );
}

#[test]
fn failing_reader_is_a_stream_error() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(b'G');
            self.0 -= n;
            Ok(n)
        }
    }
    assert!(matches!(
        Gguf::read(Failing(10)),
        Err(Error::Io { path: None, .. })
    ));
}

#[test]
fn truncated_file_read_from_a_stream_is_an_error() {
    let bytes = sample_file();
    let cut = &bytes[..bytes.len() - 1];
    assert!(matches!(
        Gguf::read(cut),
        Err(Error::TensorOutOfBounds { .. })
    ));
}

/// The padding before the data section is a field like any other: a file cut
/// inside it says how many padding bytes it lacks, not the alignment.
#[test]
fn padding_error_counts_the_missing_padding_bytes() {
    let mut e = gguf_cases::Enc::le();
    e.header(3, 1, 0).tensor(b"w", &[1], gguf_cases::F32, 0);
    let end = e.pos();
    e.zeros(4);
    let bytes = e.finish();
    // The infos end at byte 57; the data section would start at 64: 7 bytes
    // of padding are needed and 4 are there.
    assert_eq!(end, 57);
    let result = parse(&bytes);
    assert!(
        matches!(
            result,
            Err(Error::UnexpectedEof {
                what: "padding before tensor data",
                offset: 57,
                needed: 7,
                available: 4
            })
        ),
        "{result:?}"
    );
}

#[test]
fn metadata_entries_know_where_they_are() {
    let mut e = gguf_cases::Enc::le();
    e.header(3, 0, 2)
        .kv_u32("first", 7)
        .kv_str("second", "text");
    let bytes = e.finish();
    let index = ggufmap::format::parse(&bytes).unwrap();
    let metadata = index.metadata(&bytes);
    // Header 24 bytes; "first": 8 + 5 key, 4 type, 4 value.
    let first = metadata.entry("first").unwrap();
    assert_eq!(first.offset(), 24);
    assert_eq!(first.value_offset(), 24 + 8 + 5 + 4);
    assert_eq!(first.value_type(), ggufmap::format::ValueType::U32);
    let second = metadata.entry("second").unwrap();
    assert_eq!(second.offset(), 24 + 21);
    assert_eq!(second.value_offset(), 24 + 21 + 8 + 6 + 4);
}

#[test]
fn strings_compare_by_bytes_and_debug_print_quoted() {
    use ggufmap::format::Value;
    let mut e = gguf_cases::Enc::le();
    e.header(3, 0, 3)
        .kv_str("a", "same")
        .kv_str("b", "same")
        .kv_str("c", "other\n");
    let bytes = e.finish();
    let index = ggufmap::format::parse(&bytes).unwrap();
    let metadata = index.metadata(&bytes);
    let string = |key| match metadata.get(key) {
        Some(Value::String(s)) => s,
        other => panic!("{other:?}"),
    };
    let (a, b, c) = (string("a"), string("b"), string("c"));
    assert_ne!(a.offset(), b.offset());
    assert_eq!(a, b, "equal bytes at different offsets");
    assert_ne!(a, c);
    assert_ne!(c, b);
    assert_eq!(format!("{c:?}"), r#""other\n""#);
}
