//! Every `--json` document against its JSON Schema in `schemas/`: the
//! sample, a split model, files with every awkward value (NaN, infinities,
//! strings that are not UTF-8, arrays nested three deep, escapes) and a
//! Gemma-sized vocabulary, summarised and whole. The schemas are strict
//! (`additionalProperties: false` everywhere), so a field the program adds
//! or renames without the schema fails here, and every field carries a
//! description.
#![cfg(all(feature = "cli", unix))]

mod cli_common;
mod gguf_cases;

use std::path::{Path, PathBuf};

use cli_common::{run_ok, sample};
use gguf_cases::{Enc, T_STRING};
use ggufmap::format::ValueType;
use ggufmap::{GgmlType, Gguf, GgufWriter, MetaArray, MetaValue};
use serde_json::Value as Json;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The schema of `command`, parsed.
fn schema(command: &str) -> Json {
    let path = root().join(format!("schemas/{command}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs the binary, asserts success, parses stdout as JSON.
fn run_json(args: &[&str]) -> Json {
    serde_json::from_slice(&run_ok(args)).unwrap()
}

/// Asserts `document` is valid against the schema of its `command`,
/// listing every violation.
fn assert_valid(document: &Json) {
    let command = document["command"].as_str().expect("a command field");
    let validator = jsonschema::validator_for(&schema(command)).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{command}: {errors:#?}");
}

/// Runs `args` and checks the document against its schema.
fn check(args: &[&str]) -> Json {
    let document = run_json(args);
    assert_valid(&document);
    document
}

#[test]
fn inspect_of_the_sample_matches_its_schema_with_every_option() {
    let file = sample().to_string_lossy().into_owned();
    for extra in [
        &[][..],
        &["--full-arrays"],
        &["--no-tensors"],
        &["--tensor", "blk.0.*", "--key", "tokenizer.*"],
        &["--stream"],
    ] {
        let mut args = vec!["inspect", "--json", &file];
        args.extend_from_slice(extra);
        check(&args);
    }
}

#[test]
fn verify_load_and_bench_match_their_schemas() {
    let file = sample().to_string_lossy().into_owned();
    check(&["verify", "--json", &file]);
    check(&["load", "--json", "--as", "f16", "--matmul", &file]);
    check(&["load", "--json", "--as", "quantized", &file]);
    check(&["bench", "--json", &file]);
}

/// A file with every value JSON finds awkward.
fn awkward_file(dir: &Path) -> PathBuf {
    let mut e = Enc::le();
    e.header(3, 1, 5)
        .key(b"bad.utf8", T_STRING)
        .str(b"a\xffb\xc3")
        .kv_str("\x1b[2Jescape", "\x1b]0;title\x07|pipe")
        .kv_u64("big", u64::MAX);
    // A f32 NaN and an array of three levels with a bad string inside.
    e.key(b"nan", 6).raw(&f32::NAN.to_le_bytes());
    e.key(b"nested", gguf_cases::T_ARRAY)
        .u32(gguf_cases::T_ARRAY)
        .u64(1)
        .u32(gguf_cases::T_ARRAY)
        .u64(1)
        .u32(T_STRING)
        .u64(2)
        .str(b"ok")
        .str(b"\xfe");
    e.tensor(b"\x1b[31mred\x1b[0m", &[2], gguf_cases::F32, 0)
        .pad(32)
        .raw(&[f32::NAN, f32::INFINITY].map(f32::to_le_bytes).concat());
    let path = dir.join("awkward.gguf");
    std::fs::write(&path, e.finish()).unwrap();
    path
}

#[test]
fn awkward_values_match_the_schema_and_keep_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = awkward_file(dir.path());
    let file = path.to_string_lossy();
    Gguf::open(&path).expect("the awkward file is valid GGUF");
    for arrays in [&[][..], &["--full-arrays"]] {
        let mut args = vec!["inspect", "--json", &file];
        args.extend_from_slice(arrays);
        let document = check(&args);
        let m = &document["metadata"];
        assert_eq!(
            m["bad.utf8"],
            serde_json::json!({"type": "string", "value": {"lossy": "a\u{fffd}b\u{fffd}", "hex": "61ff62c3"}})
        );
        assert_eq!(m["big"]["value"], u64::MAX);
        assert_eq!(m["nan"], serde_json::json!({"type": "f32", "value": "NaN"}));
        let innermost = &m["nested"]["value"][0]["value"][0];
        assert_eq!(innermost["element_type"], "string");
        assert_eq!(innermost["len"], 2);
    }
    // Summarised, the third level gives its type and length only; whole,
    // every element.
    let summary = check(&["inspect", "--json", &file]);
    let innermost = &summary["metadata"]["nested"]["value"][0]["value"][0];
    assert_eq!(innermost["truncated"], true);
    assert_eq!(innermost["value"], serde_json::json!([]));
    let full = check(&["inspect", "--json", "--full-arrays", &file]);
    let innermost = &full["metadata"]["nested"]["value"][0]["value"][0];
    assert_eq!(innermost["truncated"], false);
    assert_eq!(
        innermost["value"],
        serde_json::json!(["ok", {"lossy": "\u{fffd}", "hex": "fe"}])
    );
    let verify = check(&["verify", "--json", &file]);
    assert_eq!(
        (verify["nan"].as_u64(), verify["inf"].as_u64()),
        (Some(1), Some(1))
    );
}

/// A file with a Gemma-sized vocabulary: 262,144 tokens, their scores and
/// types, and one tensor.
fn vocabulary_file(dir: &Path) -> PathBuf {
    const TOKENS: usize = 262_144;
    let mut w = GgufWriter::new();
    w.add_metadata(
        "tokenizer.ggml.tokens",
        MetaValue::strings((0..TOKENS).map(|i| format!("tok{i}"))),
    )
    .unwrap();
    let scores = (0..TOKENS).map(|i| MetaValue::F32(-(i as f32))).collect();
    let scores = MetaArray::new(ValueType::F32, scores).unwrap();
    w.add_metadata("tokenizer.ggml.scores", MetaValue::Array(scores))
        .unwrap();
    w.add_tensor("w", GgmlType::F32, &[4], vec![0; 16]).unwrap();
    let path = dir.join("vocabulary.gguf");
    w.write_file(&path).unwrap();
    path
}

#[test]
fn a_gemma_sized_vocabulary_matches_the_schema_summarised_and_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = vocabulary_file(dir.path());
    let file = path.to_string_lossy();
    let summary = check(&["inspect", "--json", &file]);
    let tokens = &summary["metadata"]["tokenizer.ggml.tokens"];
    assert_eq!(tokens["len"], 262_144);
    assert_eq!(tokens["truncated"], true);
    assert_eq!(tokens["value"].as_array().map(Vec::len), Some(8));
    let full = check(&["inspect", "--json", "--full-arrays", &file]);
    let tokens = &full["metadata"]["tokenizer.ggml.tokens"];
    assert_eq!(tokens["truncated"], false);
    let values = tokens["value"].as_array().unwrap();
    assert_eq!(values.len(), 262_144);
    assert_eq!(values[262_143], "tok262143");
    let scores = &full["metadata"]["tokenizer.ggml.scores"]["value"];
    assert_eq!(scores[262_143], -262_143.0);
}

#[test]
fn a_split_model_matches_the_schema_with_every_part() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = Gguf::open(sample()).unwrap();
    let prefix = dir.path().join("sample");
    let paths = gguf.write_split(&prefix, 5).unwrap();
    let first = paths[0].to_string_lossy();
    let document = check(&["inspect", "--json", &first]);
    let parts = document["parts"].as_array().unwrap();
    assert_eq!(parts.len(), paths.len());
    let counted: u64 = parts
        .iter()
        .map(|p| p["tensor_count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, document["tensor_count"].as_u64().unwrap());
    check(&["verify", "--json", &first]);
}

/// The real model, when `scripts/fetch_gemma.sh` has fetched it.
#[test]
#[ignore = "needs the Gemma model: bash scripts/fetch_gemma.sh"]
fn gemma_matches_the_schema() {
    let home = std::env::var("HOME").unwrap();
    let path = Path::new(&home).join(".cache/ggufmap/gemma-3-270m-q4_k_m.gguf");
    let file = path.to_string_lossy();
    check(&["inspect", "--json", &file]);
    check(&["inspect", "--json", "--full-arrays", &file]);
    check(&["verify", "--json", &file]);
}

/// Every property of every object in `schema`, with its path.
fn properties<'a>(schema: &'a Json, path: String, out: &mut Vec<(String, &'a Json)>) {
    match schema {
        Json::Object(map) => {
            if let Some(Json::Object(props)) = map.get("properties") {
                for (name, prop) in props {
                    out.push((format!("{path}.{name}"), prop));
                }
            }
            for (key, value) in map {
                properties(value, format!("{path}/{key}"), out);
            }
        }
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                properties(item, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_field_of_every_schema_is_described_and_closed() {
    for command in ["inspect", "verify", "load", "bench"] {
        let schema = schema(command);
        let mut props = Vec::new();
        properties(&schema, command.to_owned(), &mut props);
        assert!(props.len() > 5, "{command}");
        for (path, prop) in props {
            let described = prop.get("description").is_some()
                || prop.get("$ref").is_some()
                || prop.get("const").is_some();
            assert!(described, "{path} has no description");
        }
    }
}

#[test]
fn the_schemas_reject_what_the_program_does_not_write() {
    let mut document = run_json(&["inspect", "--json", &sample().to_string_lossy()]);
    assert_valid(&document);
    let validator = jsonschema::validator_for(&schema("inspect")).unwrap();
    // A field the schema does not know.
    document["surprise"] = Json::from(1);
    assert!(!validator.is_valid(&document));
    document.as_object_mut().unwrap().remove("surprise");
    // A value without its type.
    document["metadata"]["general.architecture"] = Json::from("llama");
    assert!(!validator.is_valid(&document));
}

#[test]
fn diff_matches_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample().to_string_lossy().into_owned();
    let edited = dir.path().join("edited.gguf");
    let edited = edited.to_string_lossy().into_owned();
    run_ok(&[
        "edit",
        &file,
        "-o",
        &edited,
        "--set",
        "general.name=x",
        "--set",
        "n:f32=nan",
        "--delete",
        "tokenizer.chat_template",
        "--rename-tensor",
        "blk.0.attn_k.weight=k",
    ]);
    let document = check(&["diff", "--json", &file, &edited]);
    assert_eq!(document["metadata"]["added"][0]["value"]["value"], "NaN");
    check(&["diff", "--json", &file, &file]);
    let mut props = Vec::new();
    let diff_schema = schema("diff");
    properties(&diff_schema, "diff".to_owned(), &mut props);
    for (path, prop) in props {
        let described = ["description", "$ref", "const"]
            .iter()
            .any(|k| prop.get(k).is_some());
        assert!(described, "{path} has no description");
    }
}
