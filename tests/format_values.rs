//! The format layer's value views, beyond parsing: conversions, equality,
//! hashing and offsets, each checked against what they must return (these
//! were the survivors of a mutation run over `src/format/`).

use std::collections::HashSet;

use ggufmap::format::{parse, Value, ValueType};
use ggufmap::{Gguf, GgufWriter, MetaValue};

#[test]
fn integer_conversions_widen_exactly() {
    assert_eq!(Value::I16(5).to_u64(), Some(5));
    assert_eq!(Value::I16(-5).to_u64(), None);
    assert_eq!(Value::I8(7).to_u64(), Some(7));
    assert_eq!(Value::U16(9).to_u64(), Some(9));
    assert_eq!(Value::U64(u64::MAX).to_i64(), None);
    assert_eq!(Value::U64(3).to_i64(), Some(3));
    assert_eq!(Value::I16(-3).to_i64(), Some(-3));
    assert_eq!(Value::F32(1.0).to_u64(), None);
}

/// A file with two equal string arrays, one that differs in an element,
/// one that differs in type, and three strings.
fn arrays() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_metadata("a", MetaValue::strings(["x", "yz"]))
        .unwrap();
    w.add_metadata("b", MetaValue::strings(["x", "yz"]))
        .unwrap();
    w.add_metadata("c", MetaValue::strings(["x", "yy"]))
        .unwrap();
    w.add_metadata("d", vec![1u8, 2]).unwrap();
    w.add_metadata("e", vec![1u8, 2, 3]).unwrap();
    w.add_metadata("s1", "same").unwrap();
    w.add_metadata("s2", "same").unwrap();
    w.add_metadata("s3", "else").unwrap();
    w.to_bytes().unwrap()
}

#[test]
fn arrays_compare_by_type_length_and_elements_and_know_their_offset() {
    let bytes = arrays();
    let index = parse(&bytes).unwrap();
    let metadata = index.metadata(&bytes);
    let array = |key| match metadata.get(key) {
        Some(Value::Array(a)) => a,
        other => panic!("{other:?}"),
    };
    let (a, b, c, d, e) = (array("a"), array("b"), array("c"), array("d"), array("e"));
    assert_eq!(a, b);
    assert_ne!(a, c, "one element differs");
    assert_ne!(a, d, "types differ");
    assert_ne!(d, e, "lengths differ, prefix equal");
    // The first element follows the value's type (4) and length (8).
    let value_offset = metadata.entry("a").unwrap().value_offset();
    assert_eq!(a.offset(), value_offset + 12);
    assert_eq!(a.element_type(), ValueType::String);
    let debug = format!("{a:?}");
    assert!(
        debug.contains("ArrayView") && debug.contains("len: 2"),
        "{debug}"
    );
    assert!(
        debug.contains(&format!("offset: {}", a.offset())),
        "{debug}"
    );
}

#[test]
fn strings_hash_and_compare_with_str() {
    let bytes = arrays();
    let index = parse(&bytes).unwrap();
    let metadata = index.metadata(&bytes);
    let string = |key| match metadata.get(key) {
        Some(Value::String(s)) => s,
        other => panic!("{other:?}"),
    };
    let (s1, s2, s3) = (string("s1"), string("s2"), string("s3"));
    let set: HashSet<_> = [s1, s2, s3].into_iter().collect();
    assert_eq!(set.len(), 2, "equal strings hash alike");
    assert!(set.contains(&s2));
    let state = std::hash::RandomState::new();
    let hash = |s| std::hash::BuildHasher::hash_one(&state, s);
    assert_eq!(hash(&s1), hash(&s2));
    assert_ne!(hash(&s1), hash(&s3), "the bytes are hashed");
    assert!(s1 == *"same");
    assert!(s1 != *"else");
    assert!(s1 == "same");
    assert!(s1 != "other");
}

#[test]
fn tensor_infos_know_where_they_are() {
    let mut w = GgufWriter::new();
    w.add_tensor("ab", ggufmap::GgmlType::F32, &[2, 3], vec![0u8; 24])
        .unwrap();
    w.add_tensor("c", ggufmap::GgmlType::F32, &[4], vec![0u8; 16])
        .unwrap();
    let bytes = w.to_bytes().unwrap();
    let index = parse(&bytes).unwrap();
    let [first, second] = index.tensors() else {
        panic!("two tensors");
    };
    // No metadata: the first info follows the 24-byte header; it takes
    // 8 + 2 (name) + 4 (n_dims) + 2 x 8 (dims) + 4 (type) + 8 (offset).
    assert_eq!(first.info_offset(), 24);
    assert_eq!(second.info_offset(), 24 + 42);
    assert_eq!(first.n_elements(), 6);
    assert_eq!(first.n_bytes(), 24);
    assert_eq!(second.data_offset(), 32, "24 bytes padded to 32");
}

#[test]
fn the_strings_fast_path_gives_what_the_general_decoder_gives() {
    let mut w = GgufWriter::new();
    let tokens = ["", "a", "héllo", "\u{1F600}", "tab\there"];
    w.add_metadata("t", MetaValue::strings(tokens)).unwrap();
    let bytes = w.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let array = file.metadata().get_array("t").unwrap();
    let fast: Vec<_> = array.strings().unwrap().collect();
    let general: Vec<_> = array.iter().map(|v| v.as_string().unwrap()).collect();
    assert_eq!(fast.len(), tokens.len());
    for ((f, g), want) in fast.iter().zip(&general).zip(tokens) {
        assert_eq!(f.as_str().unwrap(), want);
        assert_eq!((f.as_bytes(), f.offset()), (g.as_bytes(), g.offset()));
    }
    // Offsets point at the string bytes in the file.
    for s in &fast {
        let at = s.offset() as usize;
        assert_eq!(&bytes[at..at + s.as_bytes().len()], s.as_bytes());
    }
}

/// `ArrayView::strs` of an array holding `tokens`, against each token
/// validated on its own.
fn strs_agree_with_per_string_checks(tokens: &[Vec<u8>]) -> Vec<Result<String, u64>> {
    let mut w = GgufWriter::new();
    let items = tokens.iter().cloned().map(MetaValue::String).collect();
    let array = ggufmap::MetaArray::new(ValueType::String, items).unwrap();
    w.add_metadata("t", MetaValue::Array(array)).unwrap();
    let bytes = w.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let array = file.metadata().get_array("t").unwrap();
    let fast: Vec<Result<String, u64>> = array
        .strs()
        .unwrap()
        .map(|r| {
            r.map(str::to_owned).map_err(|e| match e {
                ggufmap::Error::InvalidUtf8 { offset, .. } => offset,
                other => panic!("{other}"),
            })
        })
        .collect();
    let slow: Vec<Result<String, u64>> = array
        .strings()
        .unwrap()
        .map(|s| s.as_str().map(str::to_owned).map_err(|_| s.offset()))
        .collect();
    assert_eq!(fast, slow);
    fast
}

#[test]
fn strs_check_the_whole_array_once_and_each_string_where_it_must() {
    // All valid, ASCII and not.
    let valid: Vec<Vec<u8>> = ["", "a", "héllo", "\u{1F600}", "日本語"]
        .map(|s| s.as_bytes().to_vec())
        .into();
    let all = strs_agree_with_per_string_checks(&valid);
    assert!(all.iter().all(Result::is_ok));
    // One invalid element: only it is an error, at its own offset.
    let mut mixed = valid.clone();
    mixed[2] = b"h\xffllo".to_vec();
    let results = strs_agree_with_per_string_checks(&mixed);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    assert!(results[2].is_err());
    // A string ending in a lead byte, followed by a length prefix whose
    // first byte is a continuation byte (136 = 0x88): the whole array is
    // UTF-8, the first string is not.
    let straddle = vec![b"x\xc3".to_vec(), vec![b'y'; 136], b"z".to_vec()];
    let results = strs_agree_with_per_string_checks(&straddle);
    assert!(results[0].is_err());
    assert_eq!(results[1].as_deref(), Ok(&*"y".repeat(136)));
    // A string starting with a continuation byte after a length whose
    // first byte is a lead byte (195 = 0xc3).
    let lead = vec![vec![b'a'; 195 - 8], b"\xa9".to_vec()];
    let _ = strs_agree_with_per_string_checks(&lead);
    let lead = vec![vec![0x80; 1], vec![b'q'; 0xc3], b"\x80\x80".to_vec()];
    let results = strs_agree_with_per_string_checks(&lead);
    assert!(results[0].is_err() && results[2].is_err());
}
