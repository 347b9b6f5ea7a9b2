//! `ggufmap verify`, `bench` and `load`, run as a user runs them.
#![cfg(feature = "cli")]

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
        assert!(t["one_thread_gb_per_second"].as_f64().unwrap() > 0.0);
        assert!(t["n_threads_gb_per_second"].as_f64().unwrap() > 0.0);
    }
    assert!(report["open_seconds"].as_f64().unwrap() > 0.0);
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
}

#[cfg(feature = "candle")]
#[test]
fn load_maps_or_copies_and_the_matmul_checksum_agrees() {
    let file = Gguf::open(SAMPLE).unwrap();
    let quantized_in_sample = file
        .tensors()
        .filter(|t| t.dtype().candle_qtype().is_some())
        .count() as u64;
    let mapped = json(&ggufmap(&["load", SAMPLE, "--matmul", "--json"]));
    assert_eq!(mapped["mapped"].as_u64().unwrap(), quantized_in_sample);
    let copied = json(&ggufmap(&["load", SAMPLE, "--copy", "--matmul", "--json"]));
    assert_eq!(copied["mapped"], 0);
    // The same weights read two ways: the same products, bit for bit
    // (against candle's own storage: tests/candle.rs).
    let checksum = &mapped["after_matmul"]["checksum"];
    assert!(checksum.as_f64().unwrap().is_finite());
    assert_ne!(checksum.as_f64().unwrap(), 0.0);
    assert_eq!(&copied["after_matmul"]["checksum"], checksum);
    // Without --matmul, nothing is reported for it.
    let plain = json(&ggufmap(&["load", SAMPLE, "--json"]));
    assert!(plain["after_matmul"].is_null());
    let text = ggufmap(&["load", SAMPLE, "--matmul"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("read in place"), "{text}");
    assert!(text.contains("after one matmul per weight"), "{text}");
}

#[cfg(feature = "candle")]
#[test]
fn load_with_a_bad_mode_is_a_usage_error() {
    let out = ggufmap(&["load", SAMPLE, "--as", "q9"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Writes a file of `tensors` (name, type, dims, bytes) to a temporary directory.
fn write_model(
    dir: &tempfile::TempDir,
    name: &str,
    tensors: &[(&str, GgmlType, Vec<u64>, Vec<u8>)],
) -> String {
    let path = dir.path().join(name);
    let mut w = GgufWriter::new();
    for (name, dtype, dims, bytes) in tensors {
        w.add_tensor(*name, *dtype, dims, bytes.as_slice()).unwrap();
    }
    w.write_file(&path).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn verify_counts_per_tensor_across_job_boundaries_and_thread_counts() {
    // 200,000 values: decoded in several jobs; NaN and Inf on both sides of
    // the boundaries (65,536 f32 per job) and at the ends.
    let mut big = vec![0.5f32; 200_000];
    for i in [0, 65_535, 65_536, 131_072, 199_999] {
        big[i] = f32::NAN;
    }
    for i in [1, 65_534, 131_071] {
        big[i] = f32::INFINITY;
    }
    big[131_073] = f32::NEG_INFINITY;
    // A NaN with a payload and a negative NaN are NaN too.
    big[7] = f32::from_bits(0x7fc0_1234);
    big[8] = f32::from_bits(0xffc0_0000);
    let half: Vec<half::f16> = [1.0, f32::NAN, f32::INFINITY, 70_000.0]
        .iter()
        .map(|&v| half::f16::from_f32(v))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let clean = SAMPLE_Q8_0.iter().map(|&b| b as u8).collect::<Vec<_>>();
    let path = write_model(
        &dir,
        "counts.gguf",
        &[
            (
                "big",
                GgmlType::F32,
                vec![1000, 200],
                bytemuck::cast_slice(&big).to_vec(),
            ),
            (
                "half",
                GgmlType::F16,
                vec![4],
                bytemuck::cast_slice(&half).to_vec(),
            ),
            ("q8", GgmlType::Q8_0, vec![32], clean),
        ],
    );
    for threads in ["1", "2", "3"] {
        let report = json(&ggufmap(&["verify", &path, "--json", "--threads", threads]));
        assert_eq!(report["threads"], threads.parse::<u64>().unwrap());
        let tensors = report["tensors"].as_array().unwrap();
        let counts: Vec<(String, String, u64, u64, u64)> = tensors
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_owned(),
                    t["dtype"].as_str().unwrap().to_owned(),
                    t["elements"].as_u64().unwrap(),
                    t["nan"].as_u64().unwrap(),
                    t["inf"].as_u64().unwrap(),
                )
            })
            .collect();
        // f16 70000 overflows to infinity on conversion: the half tensor
        // holds 1 NaN and 2 infinities.
        assert_eq!(
            counts,
            vec![
                ("big".to_owned(), "F32".to_owned(), 200_000, 7, 4),
                ("half".to_owned(), "F16".to_owned(), 4, 1, 2),
                ("q8".to_owned(), "Q8_0".to_owned(), 32, 0, 0),
            ]
        );
        assert_eq!(report["nan"], 8);
        assert_eq!(report["inf"], 6);
        assert_eq!(report["elements"], 200_036);
    }
    // Text output names the tensors that hold NaN or Inf.
    let text = ggufmap(&["verify", &path]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("big: 7 NaN, 4 infinite"), "{text}");
    assert!(text.contains("8 NaN, 6 infinite"), "{text}");
}

/// One Q8_0 block: scale 1.0 (f16 0x3c00) and 32 quants 0..32.
const SAMPLE_Q8_0: [i8; 34] = [
    0x00, 0x3c, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, 26, 27, 28, 29, 30, 31,
];

#[test]
fn verify_json_lists_every_tensor_like_the_library() {
    let report = json(&ggufmap(&["verify", SAMPLE, "--json"]));
    let file = Gguf::open(SAMPLE).unwrap();
    let tensors = report["tensors"].as_array().unwrap();
    for (t, view) in tensors.iter().zip(file.tensors()) {
        assert_eq!(t["name"], view.name());
        assert_eq!(t["dtype"], view.dtype().name());
        assert_eq!(t["elements"], view.n_elements());
        assert_eq!(t["nan"], 0);
        assert_eq!(t["inf"], 0);
    }
    assert_eq!(report["tensor_bytes"], file.tensor_bytes());
    assert!(report["wall_seconds"].as_f64().unwrap() > 0.0);
    for key in [
        "peak_resident_bytes",
        "resident_anon_bytes",
        "resident_file_bytes",
    ] {
        assert!(report["memory"].get(key).is_some(), "memory.{key} missing");
    }
    assert!(report["pool"]["hits"].as_u64().is_some());
}

#[test]
fn verify_rejects_a_bad_magic_and_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("magic.gguf");
    let mut bytes = std::fs::read(SAMPLE).unwrap();
    bytes[0] = b'X';
    std::fs::write(&path, &bytes).unwrap();
    for file in [
        path.to_str().unwrap(),
        dir.path().join("absent.gguf").to_str().unwrap(),
    ] {
        for extra in [&[][..], &["--json"][..]] {
            let mut args = vec!["verify", file];
            args.extend_from_slice(extra);
            let out = ggufmap(&args);
            assert_eq!(out.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&out.stderr).starts_with("error:"));
            assert!(out.stdout.is_empty());
        }
    }
}

#[test]
fn verify_fails_on_a_tensor_that_cannot_be_decoded() {
    // Quantized blocks in big-endian byte order: valid to open, but there
    // is no dequantizer for them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("be.gguf");
    let block: Vec<u8> = SAMPLE_Q8_0.iter().map(|&b| b as u8).collect();
    let mut w = GgufWriter::new();
    w.set_byte_order(ggufmap::format::ByteOrder::Big);
    w.add_tensor("q8", GgmlType::Q8_0, &[32], block.as_slice())
        .unwrap();
    w.write_file(&path).unwrap();
    let out = ggufmap(&["verify", path.to_str().unwrap(), "--threads", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert!(stderr.contains("\"q8\""), "{stderr}");
}

#[test]
fn verify_with_a_progress_bar_on_a_terminal() {
    // `script` gives the command a pseudo-terminal, where the bar is drawn.
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    }
    let cmd = format!(
        "{} verify {SAMPLE} --threads 2",
        env!("CARGO_BIN_EXE_ggufmap")
    );
    let out = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .output()
        .expect("run script");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: "));
}

#[test]
fn bench_json_speedups_are_consistent() {
    let report = json(&ggufmap(&["bench", SAMPLE, "--json", "--threads", "2"]));
    assert_eq!(report["threads"], 2);
    assert!(report["open_populate_seconds"].as_f64().unwrap() > 0.0);
    for t in report["types"].as_array().unwrap() {
        let one = t["one_thread_gb_per_second"].as_f64().unwrap();
        let many = t["n_threads_gb_per_second"].as_f64().unwrap();
        let speedup = t["speedup"].as_f64().unwrap();
        assert!((speedup - many / one).abs() < 1e-9 * speedup.max(1.0));
        assert!(t["one_thread_median_gb_per_second"].as_f64().unwrap() > 0.0);
        assert!(t["n_threads_median_gb_per_second"].as_f64().unwrap() > 0.0);
        assert!(t["passes"].as_u64().unwrap() >= 5);
        let across = &t["across_tensors"];
        for key in [
            "one_thread_gb_per_second",
            "n_threads_gb_per_second",
            "speedup",
            "one_thread_median_gb_per_second",
            "n_threads_median_gb_per_second",
            "median_speedup",
        ] {
            assert!(across[key].as_f64().unwrap() > 0.0, "across_tensors.{key}");
        }
    }
}

#[test]
fn bench_rejects_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    let bytes = std::fs::read(SAMPLE).unwrap();
    std::fs::write(&path, &bytes[..100]).unwrap();
    let out = ggufmap(&["bench", path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error:"));
}

#[cfg(feature = "candle")]
#[test]
fn load_reports_fallbacks_with_their_reasons() {
    // An I32 tensor cannot be a QTensor, and integers are kept exact when
    // floats are asked for.
    let dir = tempfile::tempdir().unwrap();
    let ints: Vec<i32> = (0..8).collect();
    let path = write_model(
        &dir,
        "mixed.gguf",
        &[
            (
                "q8",
                GgmlType::Q8_0,
                vec![32],
                SAMPLE_Q8_0.iter().map(|&b| b as u8).collect(),
            ),
            (
                "ids",
                GgmlType::I32,
                vec![8],
                bytemuck::cast_slice(&ints).to_vec(),
            ),
        ],
    );
    for mode in ["quantized", "f16", "bf16", "f32"] {
        let report = json(&ggufmap(&["load", &path, "--as", mode, "--json"]));
        assert_eq!(report["tensors"], 2);
        let fallbacks = report["fallbacks"].as_array().unwrap();
        assert_eq!(fallbacks.len(), 1, "{mode}: {report}");
        assert_eq!(fallbacks[0]["tensor"], "ids");
        assert_eq!(fallbacks[0]["dtype"], "I32");
        assert!(!fallbacks[0]["reason"].as_str().unwrap().is_empty());
        if mode == "quantized" {
            assert_eq!(report["quantized"], 1);
            assert_eq!(report["dense"], 1);
        } else {
            assert_eq!(report["quantized"], 0);
            assert_eq!(report["dense"], 2);
        }
        assert!(report["loaded_bytes"].as_u64().unwrap() > 0);
        assert!(report["wall_seconds"].as_f64().unwrap() >= 0.0);
    }
    let text = ggufmap(&["load", &path, "--as", "quantized"]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("fallback: \"ids\" (I32)"), "{text}");
    assert!(text.contains("memory: peak resident"), "{text}");
}

#[cfg(feature = "candle")]
#[test]
fn load_rejects_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    let bytes = std::fs::read(SAMPLE).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    for mode in ["quantized", "f32"] {
        let out = ggufmap(&["load", path.to_str().unwrap(), "--as", mode]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error:"));
    }
}

#[cfg(not(feature = "candle"))]
#[test]
fn load_without_candle_says_it_needs_the_feature() {
    let out = ggufmap(&["load", SAMPLE, "--as", "f16", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert!(stderr.contains("candle"), "{stderr}");
}

#[test]
fn too_many_threads_is_a_usage_error() {
    let commands: &[&str] = if cfg!(feature = "candle") {
        &["verify", "bench", "load"]
    } else {
        &["verify", "bench"]
    };
    for command in commands {
        for threads in ["5000", "-3", "many"] {
            let out = ggufmap(&[command, SAMPLE, "--threads", threads]);
            assert_eq!(out.status.code(), Some(2), "{command} --threads {threads}");
        }
    }
}
