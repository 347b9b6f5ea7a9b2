//! The model the model-scale benchmarks run on: Gemma 3 270M Q4_K_M when
//! present (`$GGUFMAP_GEMMA`, or `~/.cache/ggufmap/gemma-3-270m-q4_k_m.gguf`
//! from scripts/fetch_gemma.sh), otherwise a writer-made model of the same
//! mix of types (about 128 MiB).

use std::path::{Path, PathBuf};

use ggufmap::{GgmlType, GgufWriter, MetaValue};

/// Gemma's path, when it has been fetched.
pub fn gemma() -> Option<PathBuf> {
    let path = match std::env::var_os("GGUFMAP_GEMMA") {
        Some(path) => PathBuf::from(path),
        None => {
            PathBuf::from(std::env::var_os("HOME")?).join(".cache/ggufmap/gemma-3-270m-q4_k_m.gguf")
        }
    };
    path.exists().then_some(path)
}

/// A model with Gemma's mix of tensor types and a 32,768-token vocabulary:
/// 24 blocks of Q4_K, Q6_K, Q5_0 and F32 tensors and a Q8_0 embedding.
pub fn synthetic(dir: &Path) -> PathBuf {
    let mut writer = GgufWriter::new();
    let tokens = (0..32_768).map(|i| format!("token{i}"));
    writer
        .add_metadata("general.architecture", "gemma3")
        .and_then(|w| w.add_metadata("tokenizer.ggml.tokens", MetaValue::strings(tokens)))
        .expect("metadata");
    let mut add = |name: String, dtype: GgmlType, dims: [u64; 2]| {
        let bytes = dtype.tensor_bytes(&dims).expect("size") as usize;
        let data: Vec<u8> = (0..bytes).map(|i| (i * 31 % 251) as u8).collect();
        writer.add_tensor(name, dtype, &dims, data).expect("tensor");
    };
    add("token_embd.weight".into(), GgmlType::Q8_0, [640, 32_768]);
    for i in 0..24 {
        add(
            format!("blk.{i}.attn_q.weight"),
            GgmlType::Q4_K,
            [1_024, 1_024],
        );
        add(
            format!("blk.{i}.attn_v.weight"),
            GgmlType::Q5_0,
            [1_024, 512],
        );
        add(
            format!("blk.{i}.ffn_up.weight"),
            GgmlType::Q4_K,
            [1_024, 2_048],
        );
        add(
            format!("blk.{i}.ffn_down.weight"),
            GgmlType::Q6_K,
            [2_048, 1_024],
        );
        add(
            format!("blk.{i}.attn_norm.weight"),
            GgmlType::F32,
            [1_024, 1],
        );
    }
    let path = dir.join("synthetic.gguf");
    std::fs::write(&path, writer.to_bytes().expect("model")).expect("write");
    path
}
