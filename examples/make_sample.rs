//! Writes `examples/sample.gguf`: a tiny llama-style model with a realistic
//! mix of metadata and tensor types, for the README, the CLI and the tests.
//!
//! ```sh
//! cargo run --example make_sample --features candle [-- OUT.gguf]
//! ```
//!
//! The weights are deterministic pseudo-random numbers (fixed seed),
//! quantized with candle-core's quantizers, so the file is the same on
//! every run with the same candle version. The model is one transformer
//! block: embedding width 256 (so K-quant rows are whole 256-element
//! super-blocks), 4 query heads sharing 1 key/value head, a 384-token
//! vocabulary, and an output projection tied to the embedding.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use ggufmap::{GgmlType, Gguf, GgufWriter, MetaValue};
use half::{bf16, f16};

const EMBEDDING: u64 = 256;
const HEADS: u64 = 4;
const KV_HEADS: u64 = 1;
const HEAD_DIM: u64 = EMBEDDING / HEADS;
const FEED_FORWARD: u64 = 128;
const CONTEXT: u32 = 2048;
const SEED: u64 = 0x5eed_6775_666d_6170;

/// Special tokens, ids 0, 1, 2.
const SPECIAL: [&str; 3] = ["<unk>", "<s>", "</s>"];
/// Word pieces after the special and byte tokens; each also gets a
/// `▁`-prefixed (word-initial) twin, as SentencePiece vocabularies do.
const WORDS: [&str; 60] = [
    "the", "and", "of", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on", "be",
    "at", "by", "this", "had", "not", "are", "but", "from", "or", "have", "an", "they", "which",
    "one", "you", "were", "her", "all", "she", "there", "would", "their", "we", "him", "been",
    "has", "when", "who", "will", "more", "no", "if", "out", "so", "said", "what", "up", "its",
    "about", "into", "than", "them", "can", "only", "other", "new",
];
/// Non-ASCII pieces, so that tools show (and tests check) UTF-8 handling.
const NON_ASCII: [&str; 5] = ["▁café", "▁日本", "▁Привет", "ß", "🙂"];
/// llama.cpp's token types.
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const BYTE: i32 = 6;

/// A chat template long enough to show how tools cut long strings.
const CHAT_TEMPLATE: &str = "{% for message in messages %}{% if message['role'] == 'user' %}\
{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}\
{% endif %}{% endfor %}";

fn main() -> Result<()> {
    let path = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sample.gguf"),
        PathBuf::from,
    );
    let vocab = Vocab::new();
    let mut writer = GgufWriter::new();
    add_metadata(&mut writer, &vocab)?;
    let mut rng = Rng(SEED);
    let tensors = make_tensors(&mut rng, vocab.tokens.len() as u64)?;
    for t in &tensors {
        writer.add_tensor(t.name, t.dtype, &t.dims, t.bytes.as_slice())?;
    }
    writer.write_file(&path)?;
    report(&path)
}

/// The tokenizer: tokens, scores and types in id order.
struct Vocab {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i32>,
}

impl Vocab {
    /// Special tokens, the 256 byte tokens `<0x00>`..`<0xFF>`, then word pieces.
    fn new() -> Self {
        let mut vocab = Vocab {
            tokens: Vec::new(),
            scores: Vec::new(),
            types: Vec::new(),
        };
        vocab.push(SPECIAL[0], 0.0, UNKNOWN);
        vocab.push(SPECIAL[1], 0.0, CONTROL);
        vocab.push(SPECIAL[2], 0.0, CONTROL);
        for byte in 0..=255u8 {
            vocab.push(&format!("<0x{byte:02X}>"), 0.0, BYTE);
        }
        let pieces = WORDS
            .iter()
            .flat_map(|w| [format!("▁{w}"), (*w).to_owned()]);
        for piece in pieces.chain(NON_ASCII.iter().map(|s| (*s).to_owned())) {
            // SentencePiece scores: more frequent pieces (lower ids) score higher.
            let score = -(vocab.tokens.len() as f32);
            vocab.push(&piece, score, NORMAL);
        }
        vocab
    }

    fn push(&mut self, token: &str, score: f32, kind: i32) {
        self.tokens.push(token.to_owned());
        self.scores.push(score);
        self.types.push(kind);
    }
}

/// The metadata llama.cpp reads for a llama model, in its usual order.
fn add_metadata(w: &mut GgufWriter<'_>, vocab: &Vocab) -> Result<()> {
    let n_vocab = u32::try_from(vocab.tokens.len())?;
    let entries: Vec<(&str, MetaValue)> = vec![
        ("general.architecture", "llama".into()),
        ("general.name", "ggufmap sample (tiny llama)".into()),
        // 15 = LLAMA_FTYPE_MOSTLY_Q4_K_M: mostly Q4_K, some Q6_K.
        ("general.file_type", 15u32.into()),
        ("general.quantization_version", 2u32.into()),
        ("llama.context_length", CONTEXT.into()),
        ("llama.embedding_length", u32::try_from(EMBEDDING)?.into()),
        ("llama.block_count", 1u32.into()),
        (
            "llama.feed_forward_length",
            u32::try_from(FEED_FORWARD)?.into(),
        ),
        ("llama.attention.head_count", u32::try_from(HEADS)?.into()),
        (
            "llama.attention.head_count_kv",
            u32::try_from(KV_HEADS)?.into(),
        ),
        ("llama.attention.layer_norm_rms_epsilon", 1e-5f32.into()),
        ("llama.rope.freq_base", 10000f32.into()),
        (
            "llama.rope.dimension_count",
            u32::try_from(HEAD_DIM)?.into(),
        ),
        ("llama.vocab_size", n_vocab.into()),
        ("tokenizer.ggml.model", "llama".into()),
        ("tokenizer.ggml.tokens", MetaValue::strings(&vocab.tokens)),
        ("tokenizer.ggml.scores", vocab.scores.clone().into()),
        ("tokenizer.ggml.token_type", vocab.types.clone().into()),
        ("tokenizer.ggml.bos_token_id", 1u32.into()),
        ("tokenizer.ggml.eos_token_id", 2u32.into()),
        ("tokenizer.ggml.unknown_token_id", 0u32.into()),
        ("tokenizer.ggml.add_bos_token", true.into()),
        ("tokenizer.ggml.add_eos_token", false.into()),
        ("tokenizer.chat_template", CHAT_TEMPLATE.into()),
    ];
    for (key, value) in entries {
        w.add_metadata(key, value)?;
    }
    Ok(())
}

/// One tensor ready to write.
struct SampleTensor {
    name: &'static str,
    dtype: GgmlType,
    /// ne0 first.
    dims: Vec<u64>,
    bytes: Vec<u8>,
}

/// The tensors, in the order llama.cpp's converter writes them. Types
/// follow a Q4_K_M file: Q4_K for most projections, Q6_K for the value
/// projection, Q8_0 embeddings, F32 norms; plus an F16 and a BF16 tensor so
/// that every plain float type is present.
fn make_tensors(rng: &mut Rng, n_vocab: u64) -> Result<Vec<SampleTensor>> {
    let kv = KV_HEADS * HEAD_DIM;
    Ok(vec![
        quantized(
            rng,
            "token_embd.weight",
            GgmlDType::Q8_0,
            [EMBEDDING, n_vocab],
        )?,
        norm(rng, "blk.0.attn_norm.weight", GgmlType::F32),
        quantized(
            rng,
            "blk.0.attn_q.weight",
            GgmlDType::Q4K,
            [EMBEDDING, EMBEDDING],
        )?,
        quantized(rng, "blk.0.attn_k.weight", GgmlDType::Q4K, [EMBEDDING, kv])?,
        quantized(rng, "blk.0.attn_v.weight", GgmlDType::Q6K, [EMBEDDING, kv])?,
        quantized(
            rng,
            "blk.0.attn_output.weight",
            GgmlDType::Q4K,
            [EMBEDDING, EMBEDDING],
        )?,
        norm(rng, "blk.0.ffn_norm.weight", GgmlType::BF16),
        quantized(
            rng,
            "blk.0.ffn_gate.weight",
            GgmlDType::Q4K,
            [EMBEDDING, FEED_FORWARD],
        )?,
        quantized(
            rng,
            "blk.0.ffn_up.weight",
            GgmlDType::Q4K,
            [EMBEDDING, FEED_FORWARD],
        )?,
        // ne0 = 128 is not whole K-quant super-blocks: Q8_0, as llama.cpp
        // falls back to for such rows.
        quantized(
            rng,
            "blk.0.ffn_down.weight",
            GgmlDType::Q8_0,
            [FEED_FORWARD, EMBEDDING],
        )?,
        norm(rng, "output_norm.weight", GgmlType::F32),
        rope_freqs(),
    ])
}

/// Weights drawn from N(0, 0.02²), quantized; `dims` ne0 first.
fn quantized(
    rng: &mut Rng,
    name: &'static str,
    dtype: GgmlDType,
    dims: [u64; 2],
) -> Result<SampleTensor> {
    let [ne0, ne1] = dims.map(|d| d as usize);
    let values: Vec<f32> = (0..ne0 * ne1).map(|_| 0.02 * rng.normal()).collect();
    let tensor = Tensor::from_vec(values, (ne1, ne0), &Device::Cpu)?;
    let q = QTensor::quantize(&tensor, dtype).with_context(|| format!("quantizing {name}"))?;
    let bytes = q.data()?.into_owned();
    Ok(SampleTensor {
        name,
        dtype: ggml_type(dtype)?,
        dims: dims.to_vec(),
        bytes,
    })
}

/// The ggufmap type of a candle quantized type.
fn ggml_type(dtype: GgmlDType) -> Result<GgmlType> {
    GgmlType::ALL
        .iter()
        .copied()
        .find(|t| t.candle_qtype() == Some(dtype))
        .with_context(|| format!("no ggml type for candle type {dtype:?}"))
}

/// An RMS-norm weight: values near 1, in `dtype` (F32 or BF16).
fn norm(rng: &mut Rng, name: &'static str, dtype: GgmlType) -> SampleTensor {
    let values: Vec<f32> = (0..EMBEDDING).map(|_| 1.0 + 0.1 * rng.normal()).collect();
    let bytes = match dtype {
        GgmlType::BF16 => bytemuck::cast_slice(
            &values
                .iter()
                .map(|&v| bf16::from_f32(v))
                .collect::<Vec<_>>(),
        )
        .to_vec(),
        _ => bytemuck::cast_slice(&values).to_vec(),
    };
    SampleTensor {
        name,
        dtype,
        dims: vec![EMBEDDING],
        bytes,
    }
}

/// llama 3's RoPE frequency factors (one per rotated pair), here in F16:
/// 1 for high frequencies rising to 8 for low ones.
fn rope_freqs() -> SampleTensor {
    let n = HEAD_DIM / 2;
    let values: Vec<f16> = (0..n)
        .map(|i| f16::from_f32(1.0 + 7.0 * i as f32 / (n - 1) as f32))
        .collect();
    SampleTensor {
        name: "rope_freqs.weight",
        dtype: GgmlType::F16,
        dims: vec![n],
        bytes: bytemuck::cast_slice(&values).to_vec(),
    }
}

/// Reads the file back and prints what it holds.
fn report(path: &std::path::Path) -> Result<()> {
    let gguf = Gguf::open(path)?;
    ensure!(gguf.tensor("output_norm.weight")?.as_slice::<f32>()?.len() == EMBEDDING as usize);
    println!("wrote {} ({} bytes)", path.display(), gguf.file_size());
    for t in gguf.tensors() {
        println!("  {:<28} {:<5} {:?}", t.name(), t.dtype(), t.shape());
    }
    Ok(())
}

/// splitmix64: a tiny deterministic generator, so the sample needs no
/// random-number dependency and is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) + 1) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal, by Box-Muller.
    fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}
