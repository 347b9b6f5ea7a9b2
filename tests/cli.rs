//! The `ggufmap` binary, driven as a user would, on `examples/sample.gguf`.
//!
//! Every run goes through [`run`], which fails the test if the binary
//! panicked (exit 101) or died of a signal: no input may do either.
//!
//! Built only with the `cli` feature, which builds the binary.
#![cfg(feature = "cli")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ggufmap::{DequantOptions, GgmlType, Gguf};
use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_ggufmap");

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample.gguf")
}

/// Runs the binary with `args`; asserts it exited normally and not by panic.
fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    let code = out.status.code();
    assert!(
        code.is_some(),
        "killed by a signal: {args:?}",
        args = debug_args(args)
    );
    assert_ne!(
        code,
        Some(101),
        "panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn debug_args<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

/// Runs and asserts success; returns stdout.
fn run_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<u8> {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs and asserts exit 1 with an `error:` message; returns stderr.
fn run_err<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "args {:?}, stderr: {stderr}",
        debug_args(args)
    );
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    stderr
}

fn sample_str() -> String {
    sample().to_string_lossy().into_owned()
}

#[test]
fn inspect_lists_tensors_types_and_metadata() {
    let text = String::from_utf8(run_ok(&["inspect", &sample_str()])).expect("utf-8 output");
    let gguf = Gguf::open(sample()).expect("sample opens");
    for t in gguf.tensors() {
        assert!(text.contains(t.name()), "missing tensor {}", t.name());
    }
    for dtype in ["F32", "F16", "BF16", "Q8_0", "Q4_K", "Q6_K"] {
        assert!(text.contains(dtype), "missing type {dtype}");
    }
    assert!(text.contains("general.architecture"));
    assert!(text.contains("[string; 384]"), "vocabulary summary");
    assert!(
        text.contains("\"<unk>\", \"<s>\", \"</s>\""),
        "first tokens"
    );
    assert!(text.contains("bytes)"), "long string cut with its length");
    assert!(text.contains("15 (Q4_K_M)"), "file type by name");
    assert!(text.contains(&format!("file size     {} bytes", gguf.file_size())));
}

fn inspect_json() -> Json {
    serde_json::from_slice(&run_ok(&["inspect", "--json", &sample_str()])).expect("valid JSON")
}

#[test]
fn inspect_json_header_matches_library() {
    let json = inspect_json();
    let gguf = Gguf::open(sample()).expect("sample opens");
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["command"], "inspect");
    assert_eq!(json["gguf_version"], gguf.version());
    assert_eq!(json["alignment"], gguf.alignment());
    assert_eq!(json["tensor_count"], gguf.tensor_count());
    assert_eq!(json["metadata_count"], gguf.metadata().len());
    assert_eq!(json["data_start"], gguf.data_start());
    assert_eq!(json["file_size"], gguf.file_size());
    assert_eq!(json["byte_order"], "little");
    assert_eq!(
        json["metadata"].as_object().map(|m| m.len()),
        Some(gguf.metadata().len())
    );
}

#[test]
fn inspect_json_metadata_matches_library() {
    let json = inspect_json();
    let gguf = Gguf::open(sample()).expect("sample opens");
    let meta = gguf.metadata();
    let m = &json["metadata"];
    // File order, each value with its type.
    let keys: Vec<&str> = m
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let file_order: Vec<&str> = meta.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, file_order);
    assert_eq!(
        m["general.architecture"],
        serde_json::json!({"type": "string", "value": meta.get_str("general.architecture").expect("arch")})
    );
    assert_eq!(
        m["llama.embedding_length"],
        serde_json::json!({"type": "u32", "value": meta.get_u32("llama.embedding_length").expect("width")})
    );
    assert_eq!(m["tokenizer.ggml.add_bos_token"]["value"], true);
    assert_eq!(m["tokenizer.ggml.add_bos_token"]["type"], "bool");
    assert_eq!(m["llama.attention.layer_norm_rms_epsilon"]["type"], "f32");
    let eps = m["llama.attention.layer_norm_rms_epsilon"]["value"]
        .as_f64()
        .expect("number") as f32;
    assert_eq!(
        eps,
        meta.get_f32("llama.attention.layer_norm_rms_epsilon")
            .expect("eps")
    );

    let tokens = meta.get_array("tokenizer.ggml.tokens").expect("tokens");
    let j = &m["tokenizer.ggml.tokens"];
    assert_eq!(j["type"], "array");
    assert_eq!(j["element_type"], "string");
    assert_eq!(j["len"], tokens.len());
    let first: Vec<String> = tokens
        .strings()
        .expect("strings")
        .take(8)
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    assert_eq!(j["value"], serde_json::json!(first));
    assert_eq!(j["truncated"], true);

    let scores = &m["tokenizer.ggml.scores"];
    assert_eq!(scores["element_type"], "f32");
    assert_eq!(scores["value"].as_array().map(Vec::len), Some(8));
    assert_eq!(m["tokenizer.ggml.token_type"]["element_type"], "i32");
}

#[test]
fn inspect_json_tensors_match_library() {
    let json = inspect_json();
    let gguf = Gguf::open(sample()).expect("sample opens");
    let tensors = json["tensors"].as_array().expect("tensors array");
    assert_eq!(tensors.len(), gguf.tensor_count());
    for (j, t) in tensors.iter().zip(gguf.tensors()) {
        assert_eq!(j["name"], t.name());
        assert_eq!(j["dtype"], t.dtype().name());
        assert_eq!(j["dims"], serde_json::json!(t.dims()));
        assert_eq!(j["shape"], serde_json::json!(t.shape()));
        assert_eq!(j["file_offset"], t.byte_range().start);
        assert_eq!(j["data_offset"], t.info().data_offset());
        assert_eq!(
            j["file_offset"].as_u64(),
            Some(json["data_start"].as_u64().expect("start") + t.info().data_offset())
        );
        assert_eq!(j["bytes"], t.info().n_bytes());
    }
    let histogram = json["type_histogram"].as_array().expect("histogram");
    let total: u64 = histogram
        .iter()
        .map(|h| h["bytes"].as_u64().expect("bytes"))
        .sum();
    assert_eq!(total, gguf.tensor_bytes());
    let q4k = gguf
        .tensors()
        .filter(|t| t.dtype() == GgmlType::Q4_K)
        .count();
    let entry = histogram
        .iter()
        .find(|h| h["dtype"] == "Q4_K")
        .expect("Q4_K");
    assert_eq!(entry["count"], q4k);
    let bytes: Vec<u64> = histogram
        .iter()
        .map(|h| h["bytes"].as_u64().expect("bytes"))
        .collect();
    assert!(
        bytes.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {bytes:?}"
    );
}

#[test]
fn inspect_filters_select_keys_and_tensors_in_every_format() {
    let file = sample_str();
    let json: Json = serde_json::from_slice(&run_ok(&[
        "inspect",
        "--json",
        &file,
        "--tensor",
        "blk.0.ffn_*",
        "--tensor",
        "output*",
        "--key",
        "general.*",
    ]))
    .expect("valid JSON");
    let names: Vec<&str> = json["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    let gguf = Gguf::open(sample()).expect("sample opens");
    let expected: Vec<&str> = gguf
        .tensors()
        .map(|t| t.name())
        .filter(|n| n.starts_with("blk.0.ffn_") || n.starts_with("output"))
        .collect();
    assert!(expected.len() >= 4, "{expected:?}");
    assert_eq!(names, expected);
    let keys: Vec<&String> = json["metadata"]
        .as_object()
        .expect("metadata")
        .keys()
        .collect();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.starts_with("general.")),
        "{keys:?}"
    );
    // Counts describe the file, whatever is shown.
    assert_eq!(json["tensor_count"], gguf.tensor_count());
    assert_eq!(json["metadata_count"], gguf.metadata().len());

    let json: Json = serde_json::from_slice(&run_ok(&["inspect", "--json", "--no-tensors", &file]))
        .expect("JSON");
    assert!(json.get("tensors").is_none());
    assert!(json.get("type_histogram").is_some());

    let text = String::from_utf8(run_ok(&[
        "inspect",
        &file,
        "--key",
        "llama.*",
        "--no-tensors",
    ]))
    .expect("utf-8");
    assert!(text.contains("llama.block_count"), "{text}");
    assert!(!text.contains("general.name"), "{text}");
    assert!(!text.contains("blk.0.attn_q.weight"), "{text}");
}

#[test]
fn inspect_markdown_is_tables_with_every_row() {
    let text = String::from_utf8(run_ok(&["inspect", "--markdown", &sample_str()])).expect("utf-8");
    let gguf = Gguf::open(sample()).expect("sample opens");
    assert!(text.starts_with("# "), "{text}");
    assert!(
        text.contains("| key | type | value |\n| --- | --- | --- |"),
        "{text}"
    );
    assert!(
        text.contains("| general.file_type | u32 | 15 (Q4_K_M) |"),
        "{text}"
    );
    for t in gguf.tensors() {
        assert!(
            text.contains(&format!("| {} | {} |", t.name(), t.dtype())),
            "{}",
            t.name()
        );
    }
    // Every table row has as many cells as its header.
    for line in text.lines().filter(|l| l.starts_with('|')) {
        assert!(line.ends_with(" |"), "{line}");
    }
}

#[test]
fn a_bad_glob_is_a_usage_error() {
    let out = run(&["inspect", "--tensor", "blk.[", &sample_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a glob"));
}

/// The first tensor of `dtype` in the sample.
fn first_of(gguf: &Gguf<'_>, dtype: GgmlType) -> String {
    gguf.tensors()
        .find(|t| t.dtype() == dtype)
        .map(|t| t.name().to_owned())
        .expect("sample has the type")
}

#[test]
fn dequant_raw_equals_library() {
    let gguf = Gguf::open(sample()).expect("sample opens");
    for dtype in [
        GgmlType::Q4_K,
        GgmlType::F32,
        GgmlType::Q6_K,
        GgmlType::Q8_0,
        GgmlType::BF16,
    ] {
        let name = first_of(&gguf, dtype);
        let expected = gguf
            .tensor(&name)
            .and_then(|t| t.dequantize_to_vec::<f32>(&DequantOptions::default()))
            .expect("library dequantizes");
        let raw = run_ok(&["dequant", &sample_str(), &name]);
        assert_eq!(raw, bytemuck::cast_slice::<f32, u8>(&expected), "{name}");
    }
}

#[test]
fn dequant_f16_and_bf16_equal_library() {
    let gguf = Gguf::open(sample()).expect("sample opens");
    let name = first_of(&gguf, GgmlType::Q8_0);
    let t = gguf.tensor(&name).expect("tensor");
    let f16 = t
        .dequantize_to_vec::<half::f16>(&DequantOptions::default())
        .expect("f16");
    let bf16 = t
        .dequantize_to_vec::<half::bf16>(&DequantOptions::default())
        .expect("bf16");
    assert_eq!(
        run_ok(&["dequant", &sample_str(), &name, "--dtype", "f16"]),
        bytemuck::cast_slice::<_, u8>(&f16)
    );
    assert_eq!(
        run_ok(&["dequant", &sample_str(), &name, "--dtype", "bf16"]),
        bytemuck::cast_slice::<_, u8>(&bf16)
    );
}

/// Splits a .npy v1.0 file into its header dict and data, checking the
/// framing.
fn parse_npy(bytes: &[u8]) -> (String, &[u8]) {
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "magic and version 1.0");
    let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let data_start = 10 + header_len;
    assert_eq!(data_start % 64, 0, "data aligned to 64");
    let header = std::str::from_utf8(&bytes[10..data_start]).expect("ascii header");
    assert!(header.ends_with('\n'));
    (header.to_owned(), &bytes[data_start..])
}

#[test]
fn dequant_npy_has_header_shape_and_data() {
    let gguf = Gguf::open(sample()).expect("sample opens");
    let t = gguf.tensor("token_embd.weight").expect("embedding");
    let npy = run_ok(&[
        "dequant",
        &sample_str(),
        "token_embd.weight",
        "--format",
        "npy",
    ]);
    let (header, data) = parse_npy(&npy);
    let [rows, cols] = t.shape()[..] else {
        panic!("2-D")
    };
    assert!(
        header.starts_with("{'descr': '<f4', 'fortran_order': False, "),
        "{header}"
    );
    assert!(
        header.contains(&format!("'shape': ({rows}, {cols}), }}")),
        "{header}"
    );
    assert_eq!(
        data,
        run_ok(&["dequant", &sample_str(), "token_embd.weight"])
    );

    let npy = run_ok(&[
        "dequant",
        &sample_str(),
        "output_norm.weight",
        "--format",
        "npy",
        "--dtype",
        "f16",
    ]);
    let (header, data) = parse_npy(&npy);
    assert!(
        header.contains("'descr': '<f2'") && header.contains("'shape': (256,)"),
        "{header}"
    );
    assert_eq!(data.len(), 256 * 2);

    let npy = run_ok(&[
        "dequant",
        &sample_str(),
        "output_norm.weight",
        "--format",
        "npy",
        "--dtype",
        "bf16",
    ]);
    assert!(
        parse_npy(&npy).0.contains("'descr': '<u2'"),
        "bf16 bits as u2"
    );
}

#[test]
fn dequant_to_file_equals_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("attn_q.f32");
    let out_str = out.to_string_lossy().into_owned();
    let stdout = run_ok(&[
        "dequant",
        &sample_str(),
        "blk.0.attn_q.weight",
        "-o",
        &out_str,
    ]);
    assert!(stdout.is_empty());
    let stdout = run_ok(&["dequant", &sample_str(), "blk.0.attn_q.weight", "-o", "-"]);
    assert_eq!(std::fs::read(&out).expect("output written"), stdout);
}

#[test]
fn dequant_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("copy.gguf");
    std::fs::copy(sample(), &copy).expect("copy");
    let copy_str = copy.to_string_lossy().into_owned();
    run_err(&["dequant", &copy_str, "output_norm.weight", "-o", &copy_str]);
    assert_eq!(
        std::fs::read(&copy).expect("still there"),
        std::fs::read(sample()).expect("sample")
    );
}

#[test]
fn unknown_tensor_suggests_close_names() {
    let stderr = run_err(&["dequant", &sample_str(), "blk.0.attn_qq.weight"]);
    let first_line = stderr.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with(
            "error: tensor \"blk.0.attn_qq.weight\" not found; did you mean: blk.0.attn_q.weight, "
        ),
        "{first_line}"
    );
    let suggestions = first_line
        .split("did you mean: ")
        .nth(1)
        .unwrap_or_default();
    assert_eq!(suggestions.split(", ").count(), 5);
}

#[test]
fn malformed_files_exit_1_with_error() {
    let bytes = std::fs::read(sample()).expect("sample");
    let dir = tempfile::tempdir().expect("tempdir");
    let gguf = Gguf::from_bytes(&bytes).expect("sample parses");
    let cuts = [
        0,
        3,
        4,
        10,
        24,
        100,
        1000,
        gguf.data_start() - 1,
        gguf.data_start() + 10,
        bytes.len() - 1,
    ];
    for cut in cuts {
        let path = dir.path().join(format!("cut{cut}.gguf"));
        std::fs::write(&path, &bytes[..cut]).expect("write");
        let path = path.to_string_lossy().into_owned();
        run_err(&["inspect", &path]);
        run_err(&["inspect", "--json", &path]);
        run_err(&["dequant", &path, "token_embd.weight"]);
    }
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(
        &garbage,
        b"GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff",
    )
    .expect("write");
    let stderr = run_err(&["inspect", &garbage.to_string_lossy()]);
    assert!(stderr.contains("garbage.gguf"), "names the file: {stderr}");
}

#[test]
fn flipped_bytes_never_panic() {
    let bytes = std::fs::read(sample()).expect("sample");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flipped.gguf");
    let path_str = path.to_string_lossy().into_owned();
    // Header bytes, where a flip changes counts, types, lengths and offsets.
    for at in (0..600).step_by(7) {
        let mut bad = bytes.clone();
        bad[at] ^= 0xff;
        std::fs::write(&path, &bad).expect("write");
        let code = run(&["inspect", "--json", &path_str]).status.code();
        assert!(matches!(code, Some(0 | 1)), "byte {at}: exit {code:?}");
    }
}

#[test]
fn missing_file_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir
        .path()
        .join("missing.gguf")
        .to_string_lossy()
        .into_owned();
    let stderr = run_err(&["inspect", &missing]);
    assert!(stderr.contains("missing.gguf"), "{stderr}");
    run_err(&["dequant", &missing, "x"]);
    run_err(&["inspect", &dir.path().to_string_lossy()]);
}

#[test]
fn quiet_is_taken_before_or_after_the_subcommand() {
    let sample = sample_str();
    let plain = run_ok(&["verify", &sample]);
    for args in [
        ["--quiet", "verify", &sample],
        ["verify", "--quiet", &sample],
    ] {
        let quiet = run_ok(&args);
        // The report is the same but for its timing line.
        let first = |b: &[u8]| String::from_utf8_lossy(b).lines().next().map(str::to_owned);
        assert_eq!(first(&quiet), first(&plain), "{args:?}");
    }
    run_ok(&["-q", "dequant", &sample, "output_norm.weight", "-o", "-"]);
}

#[test]
fn bad_usage_exits_2() {
    let no_args: [&str; 0] = [];
    for args in [
        &no_args[..],
        &["inspect"],
        &["frobnicate"],
        &["inspect", "--bogus", "x"],
        &["dequant", "x"],
        &["dequant", "x", "y", "--format", "csv"],
        &["dequant", "x", "y", "--dtype", "f64"],
    ] {
        assert_eq!(run(args).status.code(), Some(2), "{args:?}");
    }
    assert_eq!(run(&["--help"]).status.code(), Some(0));
}

#[test]
fn closed_stdout_is_quiet() {
    let mut child = Command::new(BIN)
        .args(["dequant", &sample_str(), "token_embd.weight"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    // Read a little, then hang up: the output (384 KiB) is larger than a pipe buffer.
    let mut stdout = child.stdout.take().expect("piped");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let out = child.wait_with_output().expect("waits");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A file with values JSON cannot hold as they are and strings a terminal
/// should not see raw.
fn awkward_file(dir: &Path) -> PathBuf {
    use ggufmap::{format::ValueType, GgufWriter, MetaArray, MetaValue};
    let inner = |v: Vec<u32>| MetaValue::from(v);
    let nested =
        MetaArray::new(ValueType::Array, vec![inner(vec![1, 2]), inner(vec![3])]).expect("array");
    let mut w = GgufWriter::new();
    w.add_metadata("nan", f32::NAN).expect("add");
    w.add_metadata("inf", f64::INFINITY).expect("add");
    w.add_metadata("neg_inf", f32::NEG_INFINITY).expect("add");
    w.add_metadata("bytes", MetaValue::String(vec![0xff, b'a']))
        .expect("add");
    w.add_metadata("escape", "\x1b[31mred").expect("add");
    w.add_metadata("nested", nested).expect("add");
    w.add_tensor(
        "t",
        GgmlType::F32,
        &[2],
        bytemuck::cast_slice(&[f32::NAN, 1.0]),
    )
    .expect("tensor");
    let path = dir.join("awkward.gguf");
    w.write_file(&path).expect("write");
    path
}

#[test]
fn awkward_values_give_valid_json_and_safe_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = awkward_file(dir.path()).to_string_lossy().into_owned();
    let json: Json =
        serde_json::from_slice(&run_ok(&["inspect", "--json", &path])).expect("valid JSON");
    let m = &json["metadata"];
    assert_eq!(m["nan"]["value"], "NaN");
    assert_eq!(m["inf"]["value"], "Infinity");
    assert_eq!(m["inf"]["type"], "f64");
    assert_eq!(m["neg_inf"]["value"], "-Infinity");
    // Not UTF-8: the exact bytes are kept beside the lossy text.
    assert_eq!(m["bytes"]["value"]["lossy"], "\u{fffd}a");
    assert_eq!(m["bytes"]["value"]["hex"], "ff61");
    assert_eq!(m["nested"]["element_type"], "array");
    assert_eq!(m["nested"]["value"][0]["value"], serde_json::json!([1, 2]));

    let text = String::from_utf8(run_ok(&["inspect", &path])).expect("utf-8");
    assert!(
        !text.contains('\x1b'),
        "escape character reached the terminal"
    );
    assert!(text.contains(r#""\u{1b}[31mred""#), "escaped: {text}");
    assert!(
        text.contains("[array; 2]  [u32; 2], [u32; 1]"),
        "nested: {text}"
    );
    assert!(text.contains("NaN"), "{text}");
    let raw = run_ok(&["dequant", &path, "t"]);
    assert_eq!(raw.len(), 8);
}
