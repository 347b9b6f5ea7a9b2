//! `ggufmap export`: safetensors that candle's loader reads with the values
//! `ggufmap dequant` gives, names, shapes and metadata kept; `.npz` entries
//! that are exactly `dequant --format npy`'s files; tensor selection; a
//! split model exports as the single file does.
#![cfg(feature = "cli")]

mod cli_common;

use cli_common::{run, run_ok, sample};

use std::io::Read;
use std::path::{Path, PathBuf};

use ggufmap::Gguf;

fn dequant(name: &str, dtype: &str, format: &str) -> Vec<u8> {
    let s = sample();
    run_ok(&[
        "dequant",
        s.to_str().unwrap(),
        name,
        "--dtype",
        dtype,
        "--format",
        format,
    ])
}

fn export(dir: &Path, format: &str, dtype: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("out-{dtype}.{format}"));
    let s = sample();
    let mut args = vec![
        "export",
        s.to_str().unwrap(),
        "--format",
        format,
        "--dtype",
        dtype,
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    out
}

#[cfg(feature = "candle")]
#[test]
fn candle_reads_the_values_dequant_gives() {
    use candle_core::{DType, Device};
    let dir = tempfile::tempdir().unwrap();
    let model = Gguf::open(sample()).unwrap();
    for (dtype, candle_dtype) in [
        ("f32", DType::F32),
        ("f16", DType::F16),
        ("bf16", DType::BF16),
    ] {
        let path = export(dir.path(), "safetensors", dtype, &[]);
        let loaded = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(loaded.len(), model.tensor_count());
        for t in model.tensors() {
            let tensor = &loaded[t.name()];
            assert_eq!(tensor.dims(), t.shape().as_slice(), "{}", t.name());
            assert_eq!(tensor.dtype(), candle_dtype);
            let flat = tensor.flatten_all().unwrap();
            let bytes: Vec<u8> = match candle_dtype {
                DType::F32 => bytemuck::cast_slice(&flat.to_vec1::<f32>().unwrap()).to_vec(),
                DType::F16 => bytemuck::cast_slice(&flat.to_vec1::<half::f16>().unwrap()).to_vec(),
                _ => bytemuck::cast_slice(&flat.to_vec1::<half::bf16>().unwrap()).to_vec(),
            };
            assert!(
                bytes == dequant(t.name(), dtype, "raw"),
                "{} {dtype}: values differ",
                t.name()
            );
        }
    }
}

#[test]
fn safetensors_keeps_order_shapes_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = export(dir.path(), "safetensors", "f16", &[]);
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let model = Gguf::open(sample()).unwrap();
    let names: Vec<String> = model.tensors().map(|t| t.name().to_owned()).collect();
    assert_eq!(header.offset_keys(), names, "the model's order");
    for t in model.tensors() {
        let view = st.tensor(t.name()).unwrap();
        assert_eq!(view.shape(), t.shape().as_slice());
        assert_eq!(view.dtype(), safetensors::Dtype::F16);
    }
    let meta = header.metadata().as_ref().unwrap();
    assert_eq!(meta["general.architecture"], "llama");
    assert_eq!(meta["llama.context_length"], "2048");
    assert_eq!(meta["format"], "pt");
    let tokens: Vec<String> = serde_json::from_str(&meta["tokenizer.ggml.tokens"]).unwrap();
    assert_eq!(tokens.len(), 384);
    assert_eq!(tokens[1], "<s>");
    assert_eq!(meta.len(), model.metadata().len() + 1);
}

#[test]
fn npz_entries_are_dequants_npy_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = Gguf::open(sample()).unwrap();
    for dtype in ["f32", "bf16"] {
        let path = export(dir.path(), "npz", dtype, &[]);
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut expected: Vec<String> = model
            .tensors()
            .map(|t| format!("{}.npy", t.name()))
            .collect();
        expected.push("__metadata__.npy".to_owned());
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert_eq!(names.len(), expected.len());
        for name in &expected {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
        for t in model.tensors() {
            let mut entry = zip.by_name(&format!("{}.npy", t.name())).unwrap();
            assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            assert!(
                bytes == dequant(t.name(), dtype, "npy"),
                "{} {dtype}",
                t.name()
            );
        }
        let mut entry = zip.by_name("__metadata__.npy").unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let header = String::from_utf8_lossy(&bytes[10..128]);
        assert!(header.contains("'descr': '<U"), "{header}");
        let data_start = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let text: String = bytes[data_start..]
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_le_bytes(c.try_into().unwrap())).unwrap())
            .filter(|&c| c != '\0')
            .collect();
        let meta: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(meta["general.architecture"], "llama");
    }
}

#[test]
fn selection_output_and_split_models() {
    let dir = tempfile::tempdir().unwrap();
    let path = export(
        dir.path(),
        "safetensors",
        "f32",
        &["--tensor", "blk.0.attn_*", "--tensor", "output.weight"],
    );
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
    names.sort();
    let model = Gguf::open(sample()).unwrap();
    let mut expected: Vec<String> = model
        .tensors()
        .map(|t| t.name().to_owned())
        .filter(|n| n.starts_with("blk.0.attn_") || n == "output.weight")
        .collect();
    expected.sort();
    assert!(expected.len() > 2);
    assert_eq!(names, expected);

    let s = sample();
    let s = s.to_str().unwrap();
    let out = run(&[
        "export",
        s,
        "--format",
        "npz",
        "--tensor",
        "nothing.*",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tensor matches"));
    let out = run(&["export", s, "--format", "npz", "-o", s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the input file"));

    // A split model exports as the single file does.
    let whole = export(dir.path(), "safetensors", "f16", &[]);
    let parts = model.write_split(dir.path().join("split"), 5).unwrap();
    let from_parts = dir.path().join("parts.safetensors");
    run_ok(&[
        "export",
        parts[0].to_str().unwrap(),
        "--format",
        "safetensors",
        "--dtype",
        "f16",
        "-o",
        from_parts.to_str().unwrap(),
    ]);
    let a = std::fs::read(&whole).unwrap();
    let b = std::fs::read(&from_parts).unwrap();
    let (_, ha) = safetensors::SafeTensors::read_metadata(&a).unwrap();
    let (_, hb) = safetensors::SafeTensors::read_metadata(&b).unwrap();
    assert_eq!(ha.offset_keys(), hb.offset_keys());
    let sa = safetensors::SafeTensors::deserialize(&a).unwrap();
    let sb = safetensors::SafeTensors::deserialize(&b).unwrap();
    for name in ha.offset_keys() {
        assert_eq!(
            sa.tensor(&name).unwrap().data(),
            sb.tensor(&name).unwrap().data()
        );
    }
}
