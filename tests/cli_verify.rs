//! `ggufmap verify`, `bench` and `load`, run as a user runs them.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::{Command, Output};

use ggufmap::{GgmlType, Gguf, GgufWriter};

const SAMPLE: &str = "examples/sample.gguf";

fn ggufmap(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ggufmap"))
        .args(args)
        .output()
        .expect("run ggufmap");
    assert_ne!(
        out.status.code(),
        Some(101),
        "ggufmap panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.code().is_some(), "ggufmap died by a signal");
    out
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

#[test]
fn verify_json_matches_the_library() {
    let report = json(&ggufmap(&["verify", SAMPLE, "--json", "--threads", "2"]));
    let file = Gguf::open(SAMPLE).unwrap();
    let elements: u64 = file.tensors().map(|t| t.n_elements()).sum();
    assert_eq!(report["valid"], true);
    assert_eq!(report["tensor_count"], file.tensor_count());
    assert_eq!(report["elements"], elements);
    assert_eq!(report["nan"], 0);
    assert_eq!(report["inf"], 0);
    assert_eq!(
        report["tensors"].as_array().unwrap().len(),
        file.tensor_count()
    );
    assert!(
        report["memory"]["peak_resident_bytes"]
            .as_u64()
            .unwrap_or(1)
            > 0
    );
}

#[test]
fn verify_counts_nan_and_inf_exactly_and_strict_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.gguf");
    let values = [
        1.0f32,
        f32::NAN,
        f32::INFINITY,
        f32::NAN,
        -f32::INFINITY,
        0.0,
        f32::NAN,
        2.0,
    ];
    let mut w = GgufWriter::new();
    w.add_tensor("x", GgmlType::F32, &[8], bytemuck::cast_slice(&values))
        .unwrap();
    w.write_file(&path).unwrap();
    let path = path.to_str().unwrap();
    let report = json(&ggufmap(&["verify", path, "--json"]));
    assert_eq!(report["nan"], 3);
    assert_eq!(report["inf"], 2);
    let strict = ggufmap(&["verify", path, "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).starts_with("error:"));
}

#[test]
fn verify_rejects_a_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    let bytes = std::fs::read(SAMPLE).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let out = ggufmap(&["verify", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error:"));
}

#[test]
fn bench_reports_every_type_present() {
    let report = json(&ggufmap(&["bench", SAMPLE, "--json", "--threads", "2"]));
    let file = Gguf::open(SAMPLE).unwrap();
    let mut present: Vec<&str> = file.tensors().map(|t| t.dtype().name()).collect();
    present.sort_unstable();
    present.dedup();
    let types = report["types"].as_array().unwrap();
    let mut reported: Vec<&str> = types.iter().map(|t| t["dtype"].as_str().unwrap()).collect();
    reported.sort_unstable();
    assert_eq!(reported, present);
    for t in types {
        assert!(t["one_thread_gbps"].as_f64().unwrap() > 0.0);
        assert!(t["n_threads_gbps"].as_f64().unwrap() > 0.0);
    }
    assert!(report["open_ms"].as_f64().unwrap() > 0.0);
}

#[cfg(feature = "candle")]
#[test]
fn load_reports_every_tensor_for_each_mode() {
    let file = Gguf::open(SAMPLE).unwrap();
    for mode in ["quantized", "f16", "bf16", "f32"] {
        let report = json(&ggufmap(&["load", SAMPLE, "--as", mode, "--json"]));
        assert_eq!(report["as"], mode);
        assert_eq!(report["tensors"], file.tensor_count());
        let quantized = report["quantized"].as_u64().unwrap();
        let dense = report["dense"].as_u64().unwrap();
        assert_eq!(quantized + dense, file.tensor_count() as u64);
        if mode != "quantized" {
            assert_eq!(quantized, 0);
        }
    }
    assert!(Path::new(SAMPLE).exists());
}

#[test]
fn load_with_a_bad_mode_is_a_usage_error() {
    let out = ggufmap(&["load", SAMPLE, "--as", "q9"]);
    assert_eq!(out.status.code(), Some(2));
}
