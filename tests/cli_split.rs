//! Every subcommand on a split model (the sample split into three parts by
//! `Gguf::write_split`) and on streamed and in-memory files gives what it
//! gives on the mapped single file: the same tensor table, the same values,
//! the same counts and checksums.
#![cfg(feature = "cli")]

mod cli_common;

use std::path::{Path, PathBuf};

use cli_common::{run_ok, sample};
use ggufmap::Gguf;
use serde_json::Value as Json;

fn json(args: &[&str]) -> Json {
    serde_json::from_slice(&run_ok(args)).expect("valid JSON")
}

/// The sample split into parts of at most 5 tensors, in a temporary dir.
fn split_sample() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = Gguf::open(sample()).unwrap();
    let parts = model.write_split(dir.path().join("sample"), 5).unwrap();
    assert_eq!(parts.len(), 3);
    let first = parts[0].clone();
    (dir, first)
}

/// What every way of opening must agree on: tensor names, types, dims,
/// shapes and sizes, in order.
fn tensor_table(inspect: &Json) -> Vec<Json> {
    inspect["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| serde_json::json!([t["name"], t["dtype"], t["dims"], t["shape"], t["bytes"]]))
        .collect()
}

#[test]
fn inspect_of_a_split_model_lists_every_part_and_tensor() {
    let (_dir, first) = split_sample();
    let single = json(&["inspect", "--json", sample().to_str().unwrap()]);
    let split = json(&["inspect", "--json", first.to_str().unwrap()]);
    assert_eq!(tensor_table(&split), tensor_table(&single));
    assert_eq!(split["tensor_count"], single["tensor_count"]);
    assert_eq!(split["tensor_bytes"], single["tensor_bytes"]);
    assert_eq!(split["parts"].as_array().unwrap().len(), 3);
    let parts: Vec<u64> = split["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["part"].as_u64().unwrap())
        .collect();
    assert_eq!(parts, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2]);
    assert_eq!(single["parts"].as_array().unwrap().len(), 1);
    // The metadata is the single file's plus the split keys.
    let metadata = split["metadata"].as_object().unwrap();
    for (key, value) in single["metadata"].as_object().unwrap() {
        assert_eq!(metadata.get(key), Some(value), "{key}");
    }
    assert_eq!(metadata["split.count"]["value"], 3, "{metadata:?}");
    assert_eq!(metadata["split.count"]["type"], "u16", "{metadata:?}");
    let text = String::from_utf8(run_ok(&["inspect", first.to_str().unwrap()])).unwrap();
    assert!(text.contains("parts         3"), "{text}");
    assert!(text.contains("sample-00003-of-00003.gguf"), "{text}");
}

#[test]
fn every_way_of_opening_verifies_alike() {
    let (_dir, first) = split_sample();
    let reference = json(&["verify", "--json", sample().to_str().unwrap()]);
    for file in [sample(), first] {
        for how in [None, Some("--stream"), Some("--in-memory")] {
            let mut args = vec!["verify", "--json", file.to_str().unwrap()];
            args.extend(how);
            let got = json(&args);
            for key in [
                "tensor_count",
                "elements",
                "tensor_bytes",
                "nan",
                "inf",
                "tensors",
            ] {
                assert_eq!(got[key], reference[key], "{key} {args:?}");
            }
        }
    }
}

#[test]
fn every_way_of_opening_dequantizes_every_tensor_alike() {
    let (_dir, first) = split_sample();
    let model = Gguf::open(sample()).unwrap();
    for t in model.tensors() {
        let reference = run_ok(&["dequant", sample().to_str().unwrap(), t.name()]);
        assert_eq!(reference.len() as u64, 4 * t.n_elements());
        for how in [None, Some("--stream"), Some("--in-memory")] {
            let mut args = vec!["dequant", first.to_str().unwrap(), t.name()];
            args.extend(how);
            assert!(run_ok(&args) == reference, "{args:?}");
        }
    }
}

#[cfg(feature = "candle")]
#[test]
fn every_way_of_opening_loads_into_candle_alike() {
    let (_dir, first) = split_sample();
    for load_as in ["quantized", "f16"] {
        let load = |file: &Path, how: Option<&str>| {
            let mut args = vec!["load", "--json", "--matmul", "--as", load_as];
            args.push(file.to_str().unwrap());
            args.extend(how);
            json(&args)
        };
        let reference = load(&sample(), None);
        let checksum = &reference["after_matmul"]["checksum"];
        assert!(checksum.is_number(), "{reference}");
        for how in [None, Some("--stream"), Some("--in-memory")] {
            let got = load(&first, how);
            assert_eq!(
                &got["after_matmul"]["checksum"], checksum,
                "{load_as} {how:?}"
            );
            for key in ["tensors", "quantized", "dense", "file_bytes", "fallbacks"] {
                assert_eq!(got[key], reference[key], "{key} {load_as} {how:?}");
            }
            if load_as == "quantized" {
                // In memory, every QTensor lends its blocks as a mapping does;
                // a stream has none to lend.
                let lent = if how == Some("--stream") {
                    0
                } else {
                    got["quantized"].as_u64().unwrap()
                };
                assert_eq!(got["mapped"], lent, "{how:?}");
            }
        }
    }
}
