//! `ggufmap split` and `ggufmap merge`: llama.cpp gguf-split's names,
//! keys and tensor order; split then merge gives the input back byte for
//! byte; the `gguf` Python package's parts merge, and splitting their merge
//! gives its parts back byte for byte.
#![cfg(feature = "cli")]

mod cli_common;

use cli_common::{run, run_err, run_ok, sample};

use std::path::{Path, PathBuf};

use ggufmap::format::ValueType;
use ggufmap::split::{SPLIT_COUNT_KEY, SPLIT_NO_KEY, SPLIT_TENSORS_COUNT_KEY};
use ggufmap::{Gguf, MetaValue, OpenOptions};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/split")
        .join(name)
}

/// Runs a command that must succeed; returns stdout's lines.
fn lines(args: &[&str]) -> Vec<String> {
    String::from_utf8(run_ok(args))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn single(path: &Path) -> Gguf<'static> {
    Gguf::open_with(path, &OpenOptions::new().single_file(true)).unwrap()
}

/// The three split keys of one part: each one's type and value.
fn split_keys(path: &Path) -> [(ValueType, Option<u64>); 3] {
    let part = single(path);
    let m = part.metadata();
    [SPLIT_NO_KEY, SPLIT_COUNT_KEY, SPLIT_TENSORS_COUNT_KEY].map(|key| {
        let v = m.get(key).unwrap();
        (v.value_type(), v.to_u64())
    })
}

#[test]
fn split_by_tensors_names_keys_order_and_merges_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("sample");
    let parts = lines(&[
        "split",
        sample().to_str().unwrap(),
        "--max-tensors",
        "5",
        "-o",
        prefix.to_str().unwrap(),
    ]);
    let names: Vec<String> = parts
        .iter()
        .map(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "sample-00001-of-00003.gguf",
            "sample-00002-of-00003.gguf",
            "sample-00003-of-00003.gguf"
        ]
    );
    let original = Gguf::open(sample()).unwrap();
    let mut order = Vec::new();
    for (no, part) in parts.iter().enumerate() {
        assert_eq!(
            split_keys(Path::new(part)),
            [
                (ValueType::U16, Some(no as u64)),
                (ValueType::U16, Some(3)),
                (ValueType::I32, Some(original.tensor_count() as u64)),
            ]
        );
        let g = single(Path::new(part));
        assert!(g.tensor_count() <= 5);
        order.extend(g.tensors().map(|t| t.name().to_owned()));
        // Later parts hold the split keys alone.
        if no > 0 {
            assert_eq!(g.metadata().len(), 3);
        }
    }
    let expected: Vec<String> = original.tensors().map(|t| t.name().to_owned()).collect();
    assert_eq!(order, expected);
    // The parts open as one model and verify as the original does.
    let model = Gguf::open(&parts[0]).unwrap();
    assert_eq!(model.part_count(), 3);
    for (a, b) in original.tensors().zip(model.tensors()) {
        assert_eq!(a.read_bytes().unwrap(), b.read_bytes().unwrap());
    }
    let verify = |f: &str| lines(&["verify", "--json", f]).join("\n");
    let theirs: serde_json::Value = serde_json::from_str(&verify(&parts[0])).unwrap();
    let ours: serde_json::Value =
        serde_json::from_str(&verify(sample().to_str().unwrap())).unwrap();
    assert_eq!(theirs["tensors"], ours["tensors"]);

    let merged = dir.path().join("merged.gguf");
    let printed = lines(&["merge", &parts[0], "-o", merged.to_str().unwrap()]);
    assert_eq!(printed, [merged.display().to_string()]);
    assert!(std::fs::read(&merged).unwrap() == std::fs::read(sample()).unwrap());
    // Without -o: PREFIX.gguf beside the parts.
    let printed = lines(&["merge", &parts[0]]);
    assert_eq!(
        printed,
        [dir.path().join("sample.gguf").display().to_string()]
    );
    assert!(
        std::fs::read(dir.path().join("sample.gguf")).unwrap() == std::fs::read(sample()).unwrap()
    );
}

#[test]
fn split_by_size_keeps_each_part_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let original = Gguf::open(sample()).unwrap();
    let limit = 64 * 1024;
    let parts = lines(&[
        "split",
        sample().to_str().unwrap(),
        "--max-size",
        "64KiB",
        "-o",
        dir.path().join("s").to_str().unwrap(),
    ]);
    assert!(parts.len() > 2, "{parts:?}");
    let padded = |n: u64| n.div_ceil(32) * 32;
    let mut sizes = Vec::new();
    for part in &parts {
        let g = single(Path::new(part));
        let data: u64 = g.tensors().map(|t| padded(t.info().n_bytes())).sum();
        assert!(
            data <= limit || g.tensor_count() == 1,
            "{part}: {data} bytes in {} tensors",
            g.tensor_count()
        );
        sizes.push(data);
    }
    // Each part took as many tensors as fit: the next one would not have.
    let tensors: Vec<u64> = original
        .tensors()
        .map(|t| padded(t.info().n_bytes()))
        .collect();
    let mut at = 0;
    for (part, size) in parts.iter().zip(&sizes) {
        at += single(Path::new(part)).tensor_count();
        if let Some(next) = tensors.get(at) {
            assert!(
                size + next > limit,
                "{part} could have held the next tensor"
            );
        }
    }
    let merged = dir.path().join("m.gguf");
    lines(&["merge", &parts[0], "-o", merged.to_str().unwrap()]);
    assert!(std::fs::read(&merged).unwrap() == std::fs::read(sample()).unwrap());
}

#[test]
fn gguf_py_parts_merge_and_split_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let first = fixture("gguf-py-00001-of-00003.gguf");
    let merged = dir.path().join("merged.gguf");
    lines(&[
        "merge",
        first.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    let theirs = Gguf::open(&first).unwrap();
    let ours = Gguf::open(&merged).unwrap();
    assert_eq!(ours.part_count(), 1);
    let keys = |g: &Gguf<'_>| -> Vec<(String, MetaValue)> {
        g.metadata()
            .iter()
            .filter(|(k, _)| !k.starts_with("split."))
            .map(|(k, v)| (k.to_owned(), MetaValue::from_value(&v)))
            .collect()
    };
    assert_eq!(keys(&ours), keys(&theirs));
    assert!(ours.metadata().get(SPLIT_COUNT_KEY).is_none());
    for (a, b) in theirs.tensors().zip(ours.tensors()) {
        assert_eq!((a.name(), a.dims()), (b.name(), b.dims()));
        assert_eq!(a.read_bytes().unwrap(), b.read_bytes().unwrap());
    }
    assert_eq!(ours.tensor_count(), theirs.tensor_count());
    // Split the merge as gguf-py split it (two tensors a part): its files.
    let parts = lines(&[
        "split",
        merged.to_str().unwrap(),
        "--max-tensors",
        "2",
        "-o",
        dir.path().join("gguf-py").to_str().unwrap(),
    ]);
    assert_eq!(parts.len(), 3);
    for part in &parts {
        let name = Path::new(part).file_name().unwrap().to_str().unwrap();
        assert!(
            std::fs::read(part).unwrap() == std::fs::read(fixture(name)).unwrap(),
            "{name} differs from gguf-py's"
        );
    }
    // Parts with an empty first part (metadata only) merge too.
    let small = fixture("gguf-py-small-first-00001-of-00004.gguf");
    let merged_small = dir.path().join("small.gguf");
    lines(&[
        "merge",
        small.to_str().unwrap(),
        "-o",
        merged_small.to_str().unwrap(),
    ]);
    let theirs = Gguf::open(&small).unwrap();
    let ours = Gguf::open(&merged_small).unwrap();
    let names = |g: &Gguf<'_>| g.tensors().map(|t| t.name().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs));
    for (a, b) in theirs.tensors().zip(ours.tensors()) {
        assert_eq!(a.read_bytes().unwrap(), b.read_bytes().unwrap());
    }
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample();
    let s = s.to_str().unwrap();
    let prefix = dir.path().join("p");
    let p = prefix.to_str().unwrap();
    assert!(run_err(&["split", s, "--max-tensors", "0", "-o", p]).contains("at least one tensor"));
    // Exactly one limit.
    assert_eq!(run(&["split", s, "-o", p]).status.code(), Some(2));
    assert_eq!(
        run(&["split", s, "--max-tensors", "2", "--max-size", "1M"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["split", s, "--max-size", "1X"]).status.code(),
        Some(2)
    );
    // merge wants a split model, and never writes over one of its parts.
    assert!(
        run_err(&["merge", s, "-o", dir.path().join("m").to_str().unwrap()])
            .contains("not the first part")
    );
    let parts = lines(&["split", s, "--max-tensors", "5", "-o", p]);
    let before = std::fs::read(&parts[1]).unwrap();
    let stderr = run_err(&["merge", &parts[0], "-o", &parts[1]]);
    assert!(stderr.contains("is the input file"), "{stderr}");
    assert!(std::fs::read(&parts[1]).unwrap() == before);
    // Splitting a model over its own files is refused too, before anything
    // is written: the model q-*, the first output's name free, the second a
    // hard link to q's second part.
    let q: Vec<PathBuf> = (1..=3)
        .map(|i| dir.path().join(format!("q-0000{i}-of-00003.gguf")))
        .collect();
    for (from, to) in parts.iter().zip(&q) {
        std::fs::rename(from, to).unwrap();
    }
    std::fs::hard_link(&q[1], &parts[1]).unwrap();
    let stderr = run_err(&[
        "split",
        q[0].to_str().unwrap(),
        "--max-tensors",
        "5",
        "-o",
        p,
    ]);
    assert!(stderr.contains("is the input file"), "{stderr}");
    assert!(std::fs::read(&q[1]).unwrap() == before);
    assert!(!Path::new(&parts[0]).exists(), "the first part was written");
    assert!(Gguf::open(&q[0]).is_ok());
}

#[test]
fn a_split_that_fails_part_way_leaves_no_part_and_replaces_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("s");
    // An old first part that must survive, and a directory where the
    // second part would go: the split fails when it reaches it.
    let first = dir.path().join("s-00001-of-00003.gguf");
    std::fs::write(&first, b"old").unwrap();
    std::fs::create_dir(dir.path().join("s-00002-of-00003.gguf")).unwrap();
    let sample = sample();
    let stderr = run_err(&[
        "split",
        sample.to_str().unwrap(),
        "--max-tensors",
        "5",
        "-o",
        prefix.to_str().unwrap(),
    ]);
    assert!(stderr.contains("s-00002-of-00003.gguf"), "{stderr}");
    assert_eq!(std::fs::read(&first).unwrap(), b"old");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["s-00001-of-00003.gguf", "s-00002-of-00003.gguf"]);
}
