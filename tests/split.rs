//! Split models: parts written as llama.cpp's gguf-split writes them, opened
//! as one model, and every way a set of parts can fail to belong together.

use std::path::{Path, PathBuf};

use ggufmap::split::{part_file_name, SPLIT_COUNT_KEY, SPLIT_NO_KEY, SPLIT_TENSORS_COUNT_KEY};
use ggufmap::{DequantOptions, Error, GgmlType, Gguf, GgufWriter, MetaValue, OpenOptions};

/// One part: its split keys (any of them can be left out or given another
/// type) and its tensors (name, f32 values).
struct Part {
    no: Option<MetaValue>,
    count: Option<MetaValue>,
    tensors_count: Option<MetaValue>,
    tensors: Vec<(&'static str, Vec<f32>)>,
}

impl Part {
    fn new(no: u16, count: u16, tensors_count: i32, tensors: &[&'static str]) -> Self {
        Part {
            no: Some(MetaValue::U16(no)),
            count: Some(MetaValue::U16(count)),
            tensors_count: Some(MetaValue::I32(tensors_count)),
            tensors: tensors
                .iter()
                .map(|&name| (name, values_of(name)))
                .collect(),
        }
    }

    fn bytes(&self, first: bool) -> Vec<u8> {
        let mut w = GgufWriter::new();
        if first {
            w.add_metadata("general.architecture", "llama").unwrap();
            w.add_metadata("general.name", "split test").unwrap();
        }
        for (key, value) in [
            (SPLIT_NO_KEY, &self.no),
            (SPLIT_COUNT_KEY, &self.count),
            (SPLIT_TENSORS_COUNT_KEY, &self.tensors_count),
        ] {
            if let Some(value) = value {
                w.add_metadata(key, value.clone()).unwrap();
            }
        }
        for (name, values) in &self.tensors {
            let dims = [values.len() as u64];
            w.add_tensor(
                *name,
                GgmlType::F32,
                &dims,
                bytemuck::cast_slice::<f32, u8>(values).to_vec(),
            )
            .unwrap();
        }
        w.to_bytes().unwrap()
    }
}

/// Distinct contents per tensor name, so a view from the wrong part shows.
fn values_of(name: &str) -> Vec<f32> {
    let seed = name.bytes().map(f32::from).sum::<f32>();
    (0..(4 + name.len())).map(|i| seed + i as f32).collect()
}

/// Writes `parts` as `<dir>/model-0000i-of-0000n.gguf` (n = parts.len())
/// and returns their paths.
fn write_parts(dir: &Path, parts: &[Part]) -> Vec<PathBuf> {
    let n = parts.len() as u16;
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let path = dir.join(part_file_name("model", i as u16, n));
            std::fs::write(&path, part.bytes(i == 0)).unwrap();
            path
        })
        .collect()
}

fn three_parts() -> Vec<Part> {
    vec![
        Part::new(0, 3, 5, &["token_embd.weight", "blk.0.attn_q.weight"]),
        Part::new(1, 3, 5, &["blk.0.attn_k.weight", "blk.0.attn_v.weight"]),
        Part::new(2, 3, 5, &["output.weight"]),
    ]
}

const ALL: [&str; 5] = [
    "token_embd.weight",
    "blk.0.attn_q.weight",
    "blk.0.attn_k.weight",
    "blk.0.attn_v.weight",
    "output.weight",
];

#[test]
fn three_parts_open_as_one_model() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let model = Gguf::open(&paths[0]).unwrap();

    assert_eq!(model.part_count(), 3);
    let part_paths: Vec<_> = model.part_paths().collect();
    assert_eq!(
        part_paths,
        paths.iter().map(|p| Some(p.as_path())).collect::<Vec<_>>()
    );
    assert_eq!(model.path(), Some(paths[0].as_path()));
    assert_eq!(model.tensor_count(), 5);
    assert_eq!(
        model.metadata().get_str("general.architecture").unwrap(),
        "llama"
    );
    assert_eq!(model.metadata().get_u16(SPLIT_COUNT_KEY).unwrap(), 3);

    let names: Vec<&str> = model.tensors().map(|t| t.name()).collect();
    assert_eq!(names, ALL);
    for (i, name) in ALL.iter().enumerate() {
        let t = model.tensor(name).unwrap();
        assert_eq!(t.name(), *name);
        assert_eq!(t.as_slice::<f32>().unwrap(), &values_of(name)[..]);
        assert_eq!(
            t.dequantize_to_vec::<f32>(&DequantOptions::default())
                .unwrap(),
            values_of(name)
        );
        assert_eq!(t.part(), [0, 0, 1, 1, 2][i]);
        assert_eq!(t.path(), Some(paths[t.part()].as_path()));
    }
    let expected_bytes: u64 = ALL.iter().map(|n| 4 * values_of(n).len() as u64).sum();
    assert_eq!(model.tensor_bytes(), expected_bytes);
    assert!(
        matches!(model.tensor("missing"), Err(Error::TensorNotFound { name }) if name == "missing")
    );
}

#[test]
fn parts_can_be_read_into_memory() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let model = Gguf::open_with(&paths[0], &OpenOptions::new().in_memory(true)).unwrap();
    assert!(!model.is_mapped());
    assert_eq!(model.part_count(), 3);
    for name in ALL {
        assert_eq!(
            model
                .tensor(name)
                .unwrap()
                .read_slice::<f32>()
                .unwrap()
                .as_ref(),
            &values_of(name)[..]
        );
    }
}

#[test]
fn first_part_without_tensors() {
    // gguf-split --no-tensor-first-split: the first part holds metadata only.
    let dir = tempfile::tempdir().unwrap();
    let parts = vec![Part::new(0, 2, 2, &[]), Part::new(1, 2, 2, &["a", "b"])];
    let paths = write_parts(dir.path(), &parts);
    let model = Gguf::open(&paths[0]).unwrap();
    assert_eq!(model.tensor_count(), 2);
    assert_eq!(
        model
            .tensor("b")
            .unwrap()
            .dequantize_to_vec::<f32>(&DequantOptions::default())
            .unwrap(),
        values_of("b")
    );
    assert_eq!(model.tensor("a").unwrap().part(), 1);
}

#[test]
fn a_file_that_is_not_split_is_one_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.gguf");
    let part = Part {
        no: None,
        count: None,
        tensors_count: None,
        tensors: vec![("w", values_of("w"))],
    };
    std::fs::write(&path, part.bytes(true)).unwrap();
    let model = Gguf::open(&path).unwrap();
    assert_eq!(model.part_count(), 1);
    assert_eq!(model.tensor_count(), 1);
    assert_eq!(
        model.tensor("w").unwrap().as_slice::<f32>().unwrap(),
        &values_of("w")[..]
    );
    assert_eq!(
        model.part_paths().collect::<Vec<_>>(),
        [Some(path.as_path())]
    );
}

#[test]
fn a_single_part_split_needs_no_special_name() {
    // gguf-split with one output file still writes the keys; the name does
    // not matter since there is nothing else to find.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whole.gguf");
    std::fs::write(&path, Part::new(0, 1, 1, &["w"]).bytes(true)).unwrap();
    assert_eq!(Gguf::open(&path).unwrap().tensor_count(), 1);
}

#[test]
fn single_part_with_wrong_tensor_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whole.gguf");
    std::fs::write(&path, Part::new(0, 1, 4, &["w"]).bytes(true)).unwrap();
    let err = Gguf::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::SplitTensorCount { path: p, found: 1, expected: 4 } if *p == path),
        "{err:?}"
    );
}

#[test]
fn missing_part() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    std::fs::remove_file(&paths[2]).unwrap();
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitPartMissing { path, part: 2, count: 3 } if *path == paths[2]),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("model-00003-of-00003.gguf") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn part_with_another_split_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = three_parts();
    parts[1].count = Some(MetaValue::U16(4));
    let paths = write_parts(dir.path(), &parts);
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitMismatch { path, key: "split.count", found: 4, expected: 3 } if *path == paths[1]),
        "{err:?}"
    );
}

#[test]
fn part_out_of_place() {
    // Parts 2 and 3 swapped: each says another split.no than its name.
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let tmp = dir.path().join("swap");
    std::fs::rename(&paths[1], &tmp).unwrap();
    std::fs::rename(&paths[2], &paths[1]).unwrap();
    std::fs::rename(&tmp, &paths[2]).unwrap();
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitMismatch { path, key: "split.no", found: 2, expected: 1 } if *path == paths[1]),
        "{err:?}"
    );
}

#[test]
fn part_of_another_model_by_tensor_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = three_parts();
    parts[2].tensors_count = Some(MetaValue::I32(9));
    let paths = write_parts(dir.path(), &parts);
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitMismatch { path, key: "split.tensors.count", found: 9, expected: 5 } if *path == paths[2]),
        "{err:?}"
    );
}

#[test]
fn parts_hold_fewer_tensors_than_announced() {
    let dir = tempfile::tempdir().unwrap();
    let parts = vec![
        Part::new(0, 3, 6, &["token_embd.weight", "blk.0.attn_q.weight"]),
        Part::new(1, 3, 6, &["blk.0.attn_k.weight", "blk.0.attn_v.weight"]),
        Part::new(2, 3, 6, &["output.weight"]),
    ];
    let paths = write_parts(dir.path(), &parts);
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitTensorCount { path, found: 5, expected: 6 } if *path == paths[0]),
        "{err:?}"
    );
}

#[test]
fn tensor_in_two_parts() {
    let dir = tempfile::tempdir().unwrap();
    let parts = vec![
        Part::new(0, 3, 5, &["token_embd.weight", "blk.0.attn_q.weight"]),
        Part::new(1, 3, 5, &["blk.0.attn_k.weight", "blk.0.attn_v.weight"]),
        Part::new(2, 3, 5, &["blk.0.attn_q.weight"]),
    ];
    let paths = write_parts(dir.path(), &parts);
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitDuplicateTensor { path, tensor, first_path }
            if *path == paths[2] && tensor == "blk.0.attn_q.weight" && *first_path == paths[0]),
        "{err:?}"
    );
}

#[test]
fn opening_a_later_part() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let err = Gguf::open(&paths[1]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitMismatch { path, key: "split.no", found: 1, expected: 0 } if *path == paths[1]),
        "{err:?}"
    );
}

#[test]
fn first_part_with_a_foreign_name() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let renamed = dir.path().join("model.gguf");
    std::fs::rename(&paths[0], &renamed).unwrap();
    let err = Gguf::open(&renamed).unwrap_err();
    assert!(
        matches!(&err, Error::SplitName { path, count: 3 } if *path == renamed),
        "{err:?}"
    );

    // The suffix must match the count too.
    let wrong_count = dir.path().join("model-00001-of-00004.gguf");
    std::fs::rename(&renamed, &wrong_count).unwrap();
    let err = Gguf::open(&wrong_count).unwrap_err();
    assert!(
        matches!(&err, Error::SplitName { path, count: 3 } if *path == wrong_count),
        "{err:?}"
    );

    // And a prefix is required.
    let bare = dir.path().join("-00001-of-00003.gguf");
    std::fs::rename(&wrong_count, &bare).unwrap();
    assert!(matches!(Gguf::open(&bare), Err(Error::SplitName { .. })));
}

#[test]
fn split_key_of_the_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = three_parts();
    parts[0].count = Some(MetaValue::U32(3));
    let paths = write_parts(dir.path(), &parts);
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitKeyType { path, key: "split.count", found: ggufmap::format::ValueType::U32, expected: ggufmap::format::ValueType::U16 } if *path == paths[0]),
        "{err:?}"
    );

    let mut parts = three_parts();
    parts[1].no = Some(MetaValue::string("1"));
    let paths = write_parts(dir.path(), &parts);
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitKeyType { path, key: "split.no", .. } if *path == paths[1]),
        "{err:?}"
    );
}

#[test]
fn split_key_missing_from_a_later_part() {
    let dir = tempfile::tempdir().unwrap();
    for key in [SPLIT_NO_KEY, SPLIT_COUNT_KEY, SPLIT_TENSORS_COUNT_KEY] {
        let mut parts = three_parts();
        match key {
            SPLIT_NO_KEY => parts[2].no = None,
            SPLIT_COUNT_KEY => parts[2].count = None,
            _ => parts[2].tensors_count = None,
        }
        let paths = write_parts(dir.path(), &parts);
        let err = Gguf::open(&paths[0]).unwrap_err();
        assert!(
            matches!(&err, Error::SplitKeyMissing { path, key: k } if *path == paths[2] && *k == key),
            "{err:?}"
        );
    }
}

#[test]
fn first_part_without_split_no_or_tensor_count() {
    let dir = tempfile::tempdir().unwrap();
    for key in [SPLIT_NO_KEY, SPLIT_TENSORS_COUNT_KEY] {
        let mut parts = three_parts();
        if key == SPLIT_NO_KEY {
            parts[0].no = None;
        } else {
            parts[0].tensors_count = None;
        }
        let paths = write_parts(dir.path(), &parts);
        let err = Gguf::open(&paths[0]).unwrap_err();
        assert!(
            matches!(&err, Error::SplitKeyMissing { path, key: k } if *path == paths[0] && *k == key),
            "{err:?}"
        );
    }
}

#[test]
fn split_key_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model-00001-of-00000.gguf");
    std::fs::write(&path, Part::new(0, 0, 1, &["w"]).bytes(true)).unwrap();
    let err = Gguf::open(&path).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::SplitKeyValue {
                key: "split.count",
                value: 0,
                ..
            }
        ),
        "{err:?}"
    );

    let mut parts = three_parts();
    for part in &mut parts {
        part.tensors_count = Some(MetaValue::I32(-5));
    }
    let paths = write_parts(dir.path(), &parts);
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitKeyValue { path, key: "split.tensors.count", value: -5, .. } if *path == paths[0]),
        "{err:?}"
    );
}

#[test]
fn a_corrupt_later_part_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let mut bytes = std::fs::read(&paths[1]).unwrap();
    bytes[0] = b'X';
    std::fs::write(&paths[1], &bytes).unwrap();
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitPart { path, part: 1, source } if *path == paths[1] && matches!(**source, Error::BadMagic { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("model-00002-of-00003.gguf"),
        "{err}"
    );

    // A truncated part: its parse error, wrapped with the path.
    let bytes = std::fs::read(&paths[2]).unwrap();
    std::fs::write(
        &paths[1],
        Part::new(1, 3, 5, &["blk.0.attn_k.weight", "blk.0.attn_v.weight"]).bytes(false),
    )
    .unwrap();
    std::fs::write(&paths[2], &bytes[..bytes.len() - 1]).unwrap();
    let err = Gguf::open(&paths[0]).unwrap_err();
    assert!(
        matches!(&err, Error::SplitPart { path, part: 2, source } if *path == paths[2] && matches!(**source, Error::TensorOutOfBounds { .. })),
        "{err:?}"
    );
}

#[test]
fn any_part_opens_alone_as_a_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let alone = OpenOptions::new().single_file(true);
    let first = Gguf::open_with(&paths[0], &alone).unwrap();
    assert_eq!((first.part_count(), first.tensor_count()), (1, 2));
    let second = Gguf::open_with(&paths[1], &alone).unwrap();
    assert_eq!(second.tensor_count(), 2);
    assert_eq!(second.metadata().get_u16(SPLIT_NO_KEY).unwrap(), 1);
    // Without the option, a later part is not a model's first.
    let err = Gguf::open(&paths[1]).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::SplitMismatch {
                key: "split.no",
                found: 1,
                expected: 0,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn explicit_paths_open_parts_named_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let renamed: Vec<PathBuf> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let to = dir.path().join(format!("piece{i}.bin"));
            std::fs::rename(p, &to).unwrap();
            to
        })
        .collect();
    let model = Gguf::open_split(&renamed, &OpenOptions::new()).unwrap();
    assert_eq!(model.tensor_count(), 5);
    for name in ALL {
        assert_eq!(
            model
                .tensor(name)
                .unwrap()
                .dequantize_to_vec::<f32>(&DequantOptions::default())
                .unwrap(),
            values_of(name)
        );
    }
    // Too few or too many paths, or none.
    let err = Gguf::open_split(&renamed[..2], &OpenOptions::new()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::SplitMismatch {
                key: "split.count",
                found: 3,
                expected: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let mut extra = renamed.clone();
    extra.push(renamed[2].clone());
    let err = Gguf::open_split(&extra, &OpenOptions::new()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::SplitMismatch {
                key: "split.count",
                ..
            }
        ),
        "{err:?}"
    );
    let none: [&Path; 0] = [];
    assert!(matches!(
        Gguf::open_split(none, &OpenOptions::new()),
        Err(Error::SplitNoParts)
    ));
    // Parts in the wrong order: the second given says it is the third.
    let swapped = [&renamed[0], &renamed[2], &renamed[1]];
    let err = Gguf::open_split(swapped, &OpenOptions::new()).unwrap_err();
    assert!(
        matches!(&err, Error::SplitMismatch { path, key: "split.no", found: 2, expected: 1 } if *path == renamed[2]),
        "{err:?}"
    );
}

#[test]
fn streamed_parts_read_tensors_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let model = Gguf::open_with(&paths[0], &OpenOptions::new().streamed(true)).unwrap();
    assert!(model.is_streamed() && !model.is_mapped());
    assert_eq!(model.part_count(), 3);
    for name in ALL {
        let t = model.tensor(name).unwrap();
        assert!(matches!(
            t.as_slice::<f32>(),
            Err(Error::NotInMemory { .. })
        ));
        assert_eq!(
            t.read_slice::<f32>().unwrap().as_ref(),
            &values_of(name)[..]
        );
        assert_eq!(
            t.dequantize_to_vec::<f32>(&DequantOptions::default())
                .unwrap(),
            values_of(name)
        );
        assert_eq!(
            t.read_bytes().unwrap().as_ref(),
            bytemuck::cast_slice::<f32, u8>(&values_of(name))
        );
    }
}

#[test]
fn the_reader_concatenates_the_parts() {
    use std::io::{Read, Seek, SeekFrom};
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let model = Gguf::open(&paths[0]).unwrap();
    let mut all = Vec::new();
    for p in &paths {
        all.extend(std::fs::read(p).unwrap());
    }
    let mut reader = model.reader();
    let mut read = Vec::new();
    reader.read_to_end(&mut read).unwrap();
    assert_eq!(read, all);
    let starts: Vec<u64> = model.part_starts().collect();
    assert_eq!(starts[0], 0);
    for (i, start) in starts.iter().enumerate().skip(1) {
        let before: u64 = paths[..i]
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(*start, before);
    }
    // Every tensor is where its part's start and its byte range say.
    for t in model.tensors() {
        let at = starts[t.part()] + t.byte_range().start;
        reader.seek(SeekFrom::Start(at)).unwrap();
        let mut bytes = vec![0; t.info().n_bytes() as usize];
        reader.read_exact(&mut bytes).unwrap();
        assert_eq!(bytes, t.read_bytes().unwrap().as_ref());
    }
    assert!(reader
        .seek(SeekFrom::Current(-(all.len() as i64) - 1))
        .is_err());
    assert_eq!(reader.seek(SeekFrom::End(0)).unwrap(), all.len() as u64);
    assert_eq!(reader.read(&mut [0; 8]).unwrap(), 0);
}

/// Values of tensor `t{i}` in the gguf-py fixtures.
fn fixture_values(i: usize, n: usize) -> Vec<f32> {
    (0..n).map(|k| (i * 1000 + k) as f32).collect()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/split")
        .join(name)
}

#[test]
fn split_models_written_by_gguf_py_open_as_one() {
    for (first, parts) in [
        ("gguf-py-00001-of-00003.gguf", 3),
        ("gguf-py-small-first-00001-of-00004.gguf", 4),
    ] {
        for options in [
            OpenOptions::new(),
            OpenOptions::new().in_memory(true),
            OpenOptions::new().streamed(true),
        ] {
            let model = Gguf::open_with(fixture(first), &options).unwrap();
            assert_eq!(model.part_count(), parts, "{first}");
            assert_eq!(model.tensor_count(), 5);
            assert_eq!(model.metadata().get_u32("fixture.answer").unwrap(), 42);
            assert_eq!(
                model.metadata().get_str("general.architecture").unwrap(),
                "llama"
            );
            for (i, t) in model.tensors().enumerate() {
                assert_eq!(t.name(), format!("t{i}"));
                let n = t.n_elements() as usize;
                assert_eq!(
                    t.dequantize_to_vec::<f32>(&DequantOptions::default())
                        .unwrap(),
                    fixture_values(i, n),
                    "{first}"
                );
                // At most two tensors a part, the first part empty with
                // small_first_shard.
                assert_eq!(t.part(), i / 2 + parts - 3, "{first}");
            }
        }
    }
}

#[test]
fn write_split_lays_parts_out_as_gguf_py_does() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = Gguf::open(fixture("gguf-py-00001-of-00003.gguf")).unwrap();
    let written = theirs.write_split(dir.path().join("ours"), 2).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "ours-00001-of-00003.gguf",
            "ours-00002-of-00003.gguf",
            "ours-00003-of-00003.gguf"
        ]
    );
    for (options, streamed) in [
        (OpenOptions::new(), false),
        (OpenOptions::new().streamed(true), true),
    ] {
        let ours = Gguf::open_with(&written[0], &options).unwrap();
        assert_eq!(ours.is_streamed(), streamed);
        assert_eq!(ours.part_count(), 3);
        let keys = |g: &Gguf<'_>| -> Vec<(String, MetaValue)> {
            g.metadata()
                .iter()
                .map(|(k, v)| (k.to_owned(), MetaValue::from_value(&v)))
                .collect()
        };
        assert_eq!(keys(&ours), keys(&theirs));
        for (a, b) in theirs.tensors().zip(ours.tensors()) {
            assert_eq!(
                (a.name(), a.dtype(), a.dims()),
                (b.name(), b.dtype(), b.dims())
            );
            assert_eq!(a.part(), b.part());
            assert_eq!(a.read_bytes().unwrap(), b.read_bytes().unwrap());
        }
    }
    // Later parts carry the split keys alone.
    let second = Gguf::open_with(&written[1], &OpenOptions::new().single_file(true)).unwrap();
    let keys: Vec<&str> = second.metadata().iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [SPLIT_NO_KEY, SPLIT_COUNT_KEY, SPLIT_TENSORS_COUNT_KEY]
    );
}

#[test]
fn write_split_of_a_split_model_and_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let paths = write_parts(dir.path(), &three_parts());
    let model = Gguf::open(&paths[0]).unwrap();
    // Re-split into one part: a whole model again, with split.count 1.
    let whole = model.write_split(dir.path().join("whole"), 100).unwrap();
    assert_eq!(whole.len(), 1);
    let reopened = Gguf::open(&whole[0]).unwrap();
    assert_eq!(reopened.part_count(), 1);
    assert_eq!(reopened.metadata().get_u16(SPLIT_COUNT_KEY).unwrap(), 1);
    for name in ALL {
        assert_eq!(
            reopened
                .tensor(name)
                .unwrap()
                .dequantize_to_vec::<f32>(&DequantOptions::default())
                .unwrap(),
            values_of(name)
        );
    }
    let err = model.write_split(dir.path().join("none"), 0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Write {
                reason: ggufmap::WriteRefusal::NoTensorsPerPart,
                ..
            }
        ),
        "{err:?}"
    );
}
