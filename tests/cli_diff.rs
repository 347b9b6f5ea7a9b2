//! `ggufmap diff`: metadata added, removed and changed (arrays counted
//! element by element), tensors added and removed, type changes, and the
//! largest value differences, against a model built to differ in known
//! ways; the exit code with and without `--exit-code`.
#![cfg(feature = "cli")]

mod cli_common;

use cli_common::{run, sample};

use std::path::{Path, PathBuf};

use ggufmap::format::Value;
use ggufmap::{GgmlType, Gguf, GgufWriter, MetaArray, MetaValue};
use serde_json::Value as Json;

/// The sample, changed: general.name and three tokens changed,
/// chat_template removed, a key added; the F32 norm as F16 (values
/// rounded), one element of another F32 tensor moved by 0.5, the first
/// tensor renamed. Returns its path and the norm's largest rounding error.
fn changed_copy(dir: &Path) -> (PathBuf, f64) {
    let model = Gguf::open(sample()).unwrap();
    let mut w = GgufWriter::new();
    for (key, value) in model.metadata().iter() {
        match key {
            "general.name" => {
                w.add_metadata(key, "changed").unwrap();
            }
            "tokenizer.chat_template" => {}
            "tokenizer.ggml.tokens" => {
                let Value::Array(a) = value else { panic!() };
                let mut tokens: Vec<MetaValue> =
                    a.iter().map(|v| MetaValue::from_value(&v)).collect();
                for i in [5, 6, 7] {
                    tokens[i] = MetaValue::string(format!("changed{i}"));
                }
                let array = MetaArray::new(a.element_type(), tokens).unwrap();
                w.add_metadata(key, array).unwrap();
            }
            _ => {
                w.add_metadata(key, MetaValue::from_value(&value)).unwrap();
            }
        }
    }
    w.add_metadata("zz.added", 7u32).unwrap();
    let f32s: Vec<String> = model
        .tensors()
        .filter(|t| t.dtype() == GgmlType::F32)
        .map(|t| t.name().to_owned())
        .collect();
    let (norm, moved) = (&f32s[0], &f32s[1]);
    let first = model.tensors().next().unwrap().name().to_owned();
    let mut rounding = 0f64;
    for t in model.tensors() {
        let name = t.name();
        if name == norm {
            let values: Vec<f32> = t.as_slice::<f32>().unwrap().to_vec();
            let halves: Vec<half::f16> = values.iter().map(|&v| half::f16::from_f32(v)).collect();
            for (v, h) in values.iter().zip(&halves) {
                rounding = rounding.max((f64::from(*v) - f64::from(h.to_f32())).abs());
            }
            let bytes: Vec<u8> = bytemuck::cast_slice(&halves).to_vec();
            w.add_tensor(name, GgmlType::F16, t.dims(), bytes).unwrap();
        } else if name == moved {
            let mut values: Vec<f32> = t.as_slice::<f32>().unwrap().to_vec();
            values[3] += 0.5;
            let bytes: Vec<u8> = bytemuck::cast_slice(&values).to_vec();
            w.add_tensor(name, GgmlType::F32, t.dims(), bytes).unwrap();
        } else if name == first {
            w.add_tensor("renamed", t.dtype(), t.dims(), t.bytes().unwrap())
                .unwrap();
        } else {
            w.add_tensor(name, t.dtype(), t.dims(), t.bytes().unwrap())
                .unwrap();
        }
    }
    let path = dir.join("changed.gguf");
    w.write_file(&path).unwrap();
    (path, rounding)
}

#[test]
fn json_reports_every_difference() {
    let dir = tempfile::tempdir().unwrap();
    let (b, rounding) = changed_copy(dir.path());
    let a = sample();
    let out = run(&["diff", "--json", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Json = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(&keys[..3], ["schema_version", "command", "file"]);
    assert_eq!(d["schema_version"], 1);
    assert_eq!(d["command"], "diff");
    assert_eq!(d["identical"], false);

    let model = Gguf::open(&a).unwrap();
    let m = &d["metadata"];
    assert_eq!(m["same"], model.metadata().len() as u64 - 3);
    assert_eq!(
        m["added"],
        serde_json::json!([{"key": "zz.added", "value": {"type": "u32", "value": 7}}])
    );
    assert_eq!(m["removed"][0]["key"], "tokenizer.chat_template");
    assert_eq!(m["removed"][0]["value"]["type"], "string");
    let changed = m["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[0]["key"], "general.name");
    assert_eq!(
        changed[0]["b"],
        serde_json::json!({"type": "string", "value": "changed"})
    );
    assert_eq!(changed[0]["differing_elements"], Json::Null);
    assert_eq!(changed[1]["key"], "tokenizer.ggml.tokens");
    assert_eq!(changed[1]["differing_elements"], 3);
    assert_eq!(changed[1]["a"]["element_type"], "string");
    assert_eq!(changed[1]["a"]["len"], 384);

    let t = &d["tensors"];
    let first = model.tensors().next().unwrap();
    assert_eq!(
        t["removed"],
        serde_json::json!([{"name": first.name(), "dtype": first.dtype().to_string(), "shape": first.shape()}])
    );
    assert_eq!(t["added"][0]["name"], "renamed");
    assert_eq!(t["identical"], model.tensor_count() as u64 - 3);
    let changed = t["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 2);
    let norm = &changed[0];
    assert_eq!(norm["a"]["dtype"], "F32");
    assert_eq!(norm["b"]["dtype"], "F16");
    assert_eq!(norm["bytes_identical"], false);
    assert!(rounding > 0.0);
    assert_eq!(norm["max_abs_diff"].as_f64().unwrap(), rounding);
    let moved = &changed[1];
    assert_eq!(moved["a"], moved["b"]);
    assert_eq!(moved["max_abs_diff"].as_f64().unwrap(), 0.5);
    let rel = moved["max_rel_diff"].as_f64().unwrap();
    assert!(rel > 0.0 && rel <= 1.0, "{rel}");
}

#[test]
fn text_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = changed_copy(dir.path());
    let a = sample();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let out = run(&["diff", a, b]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("metadata: 2 changed, 1 added, 1 removed"),
        "{text}"
    );
    assert!(text.contains("(3 elements differ)"), "{text}");
    assert!(
        text.contains("tensors: 2 changed, 1 added, 1 removed"),
        "{text}"
    );
    assert!(text.contains("+ renamed"), "{text}");
    assert!(text.contains("max abs diff 5e-1"), "{text}");

    assert_eq!(run(&["diff", "--exit-code", a, b]).status.code(), Some(1));
    let same = run(&["diff", "--exit-code", "--json", a, a]);
    assert_eq!(same.status.code(), Some(0));
    let d: Json = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(d["identical"], true);
    assert_eq!(d["tensors"]["changed"], serde_json::json!([]));
    // A split model is the same model.
    let parts = Gguf::open(a)
        .unwrap()
        .write_split(dir.path().join("p"), 5)
        .unwrap();
    let split = run(&["diff", "--exit-code", a, parts[0].to_str().unwrap()]);
    assert_eq!(split.status.code(), Some(1), "the split keys differ");
    let text = String::from_utf8(split.stdout).unwrap();
    assert!(
        text.contains("metadata: 0 changed, 3 added, 0 removed"),
        "{text}"
    );
    assert!(
        text.contains("tensors: 0 changed, 0 added, 0 removed"),
        "{text}"
    );
    // Errors are errors.
    let missing = run(&["diff", a, "/nonexistent.gguf"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("error:"));
}
