//! Writes the seed corpus: `cargo run --manifest-path fuzz/Cargo.toml
//! --example make_seeds -- fuzz/corpus-seed` (replacing what is there). Deterministic:
//! the same files every run.
//!
//! - `open/`: files built with `GgufWriter`: every metadata value type,
//!   nested and string arrays, one tensor of every ggml type, both byte
//!   orders, alignments 1, 32 and 64, version 2, no tensors.
//! - `dequantize/`: for every type, two blocks of varied bytes in the
//!   target's input layout, some big-endian, tiled or misaligned.
//! - `roundtrip/`, `split/`: varied byte strings, which `arbitrary` turns
//!   into writer calls and part sets.
//! - `candle/`: in the target's raw mode (byte 0 odd, then the load mask
//!   and flags), files of every candle type in both byte orders and
//!   alignments 1, 2 and 32, of every type (fallbacks), shaped for candle's
//!   repacked kernels, and of zero-element tensors with huge dims; in its
//!   generated mode (byte 0 even), varied byte strings for `arbitrary`.

use std::path::Path;

use ggufmap::format::ByteOrder;
use ggufmap::{GgmlType, GgufWriter, MetaArray, MetaValue};

/// xorshift64*: deterministic bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Block bytes whose f16 fields are small finite numbers, so that seeds
/// decode to ordinary values (the fuzzer finds NaNs by itself).
fn blocks(rng: &mut Rng, dtype: GgmlType, n_blocks: usize) -> Vec<u8> {
    let mut bytes = rng.bytes(n_blocks * dtype.bytes_per_block());
    if !dtype.is_plain() {
        for b in bytes.iter_mut().skip(1).step_by(2) {
            *b &= 0x3B; // keeps the high byte of any f16 field below 2.0 in magnitude
        }
    }
    bytes
}

fn every_value_type() -> Vec<(&'static str, MetaValue)> {
    let nested = MetaArray::new(
        ggufmap::format::ValueType::Array,
        vec![
            MetaValue::from(vec![1u32, 2, 3]),
            MetaValue::strings(["x", "yz"]),
            MetaValue::from(Vec::<f64>::new()),
        ],
    )
    .expect("arrays");
    vec![
        ("general.architecture", MetaValue::from("llama")),
        ("general.name", MetaValue::from("seed")),
        ("test.u8", MetaValue::U8(200)),
        ("test.i8", MetaValue::I8(-100)),
        ("test.u16", MetaValue::U16(60000)),
        ("test.i16", MetaValue::I16(-30000)),
        ("test.u32", MetaValue::U32(4_000_000_000)),
        ("test.i32", MetaValue::I32(-2_000_000_000)),
        ("test.f32", MetaValue::F32(1.5)),
        ("test.bool", MetaValue::Bool(true)),
        ("test.u64", MetaValue::U64(u64::MAX)),
        ("test.i64", MetaValue::I64(i64::MIN)),
        ("test.f64", MetaValue::F64(-0.25)),
        ("test.not_utf8", MetaValue::String(vec![0xff, 0xfe, b'a'])),
        (
            "tokenizer.ggml.tokens",
            MetaValue::strings(["<s>", "</s>", "hello", "wor", "ld", ""]),
        ),
        (
            "tokenizer.ggml.scores",
            MetaValue::from(vec![0.0f32, -1.0, -2.5, -3.0, -4.0, -5.0]),
        ),
        (
            "tokenizer.ggml.token_type",
            MetaValue::from(vec![3i32, 3, 1, 1, 1, 1]),
        ),
        ("test.bools", MetaValue::from(vec![true, false, true])),
        ("test.nested", MetaValue::Array(nested)),
    ]
}

fn model(
    rng: &mut Rng,
    order: ByteOrder,
    alignment: u32,
    types: &[GgmlType],
    meta: bool,
) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set_byte_order(order);
    w.set_alignment(alignment).expect("power of two");
    if meta {
        for (key, value) in every_value_type() {
            w.add_metadata(key, value).expect("distinct keys");
        }
    }
    for (i, &dtype) in types.iter().enumerate() {
        let rows = 1 + i % 2;
        let ne0 = dtype.elements_per_block() as u64 * if dtype.is_plain() { 8 } else { 1 };
        let data = blocks(
            rng,
            dtype,
            rows * (ne0 as usize / dtype.elements_per_block()),
        );
        w.add_tensor(
            format!("blk.{i}.{}", dtype.name().to_lowercase()),
            dtype,
            &[ne0, rows as u64],
            data,
        )
        .expect("valid tensor");
    }
    w.to_bytes().expect("small file")
}

/// A file of the tensors `(type, dims)` (ne0 first), named `t0`, `t1`, ...
fn tensors_file(
    rng: &mut Rng,
    order: ByteOrder,
    alignment: u32,
    tensors: &[(GgmlType, Vec<u64>)],
) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set_byte_order(order);
    w.set_alignment(alignment).expect("power of two");
    w.add_metadata("general.architecture", "llama")
        .expect("one key");
    for (i, (dtype, dims)) in tensors.iter().enumerate() {
        let n_bytes = dtype.tensor_bytes(dims).expect("small dims") as usize;
        let data = blocks(rng, *dtype, n_bytes / dtype.bytes_per_block());
        w.add_tensor(format!("t{i}"), *dtype, dims, data)
            .expect("valid tensor");
    }
    w.to_bytes().expect("small file")
}

/// An input of the candle target's raw mode: [1, load mask, flags, file].
fn candle_raw(mask: u8, flags: u8, file: &[u8]) -> Vec<u8> {
    let mut input = vec![1, mask, flags];
    input.extend_from_slice(file);
    input
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("seed dir");
    std::fs::write(dir.join(name), bytes).expect("seed file");
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus-seed".to_owned());
    let out = Path::new(&out);
    for target in ["open", "dequantize", "roundtrip", "split", "candle"] {
        let _ = std::fs::remove_dir_all(out.join(target));
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let all = GgmlType::ALL;
    let plain: Vec<GgmlType> = all.iter().copied().filter(|t| t.is_plain()).collect();

    // open/
    write(
        out,
        "open",
        "all-types-le",
        &model(&mut rng, ByteOrder::Little, 32, all, true),
    );
    write(
        out,
        "open",
        "all-types-be",
        &model(&mut rng, ByteOrder::Big, 32, all, true),
    );
    write(
        out,
        "open",
        "plain-align1",
        &model(&mut rng, ByteOrder::Little, 1, &plain, true),
    );
    write(
        out,
        "open",
        "plain-align64-be",
        &model(&mut rng, ByteOrder::Big, 64, &plain, false),
    );
    write(
        out,
        "open",
        "metadata-only",
        &model(&mut rng, ByteOrder::Little, 32, &[], true),
    );
    write(
        out,
        "open",
        "empty",
        &model(&mut rng, ByteOrder::Little, 32, &[], false),
    );
    let mut v2 = model(
        &mut rng,
        ByteOrder::Little,
        32,
        &[GgmlType::F32, GgmlType::Q4_K],
        false,
    );
    v2[4] = 2;
    write(out, "open", "version2", &v2);
    for (i, chunk) in all.chunks(6).enumerate() {
        write(
            out,
            "open",
            &format!("types-{i}"),
            &model(&mut rng, ByteOrder::Little, 32, chunk, false),
        );
    }

    // dequantize/: [type index, flags, block bytes...]
    for (i, &dtype) in all.iter().enumerate() {
        let flags = match i % 5 {
            0 => 0,
            1 => 1,            // big-endian
            2 => 0x22,         // tiled over several chunks
            3 => 4 | 8,        // misaligned copy
            _ => 0x22 | 4 | 1, // all of it
        };
        let mut input = vec![i as u8, flags];
        input.extend(blocks(&mut rng, dtype, 2));
        write(out, "dequantize", &dtype.name().to_lowercase(), &input);
    }

    // roundtrip/ and split/: bytes for `arbitrary`.
    for target in ["roundtrip", "split"] {
        for (i, len) in [16usize, 64, 256, 1024, 4096].into_iter().enumerate() {
            write(out, target, &format!("random-{i}"), &rng.bytes(len));
        }
        for i in 0..3u8 {
            let mut bytes = vec![0x55 ^ i; 512];
            bytes[0] = i;
            write(out, target, &format!("pattern-{i}"), &bytes);
        }
    }

    // candle/: raw mode, then generated mode.
    let candle_types: Vec<GgmlType> = all
        .iter()
        .copied()
        .filter(|t| t.candle_qtype().is_some())
        .collect();
    // Odd shapes: 1 to 3 blocks per row, 1 to 3 rows, some 3-D.
    let odd = |types: &[GgmlType]| -> Vec<(GgmlType, Vec<u64>)> {
        types
            .iter()
            .enumerate()
            .map(|(i, &dtype)| {
                let epb = dtype.elements_per_block() as u64;
                let ne0 = epb * (1 + i as u64 % 3) * if dtype.is_plain() { 3 } else { 1 };
                let dims = match i % 4 {
                    0 => vec![ne0],
                    1 | 2 => vec![ne0, 1 + i as u64 % 3],
                    _ => vec![ne0, 2, 1 + i as u64 % 2],
                };
                (dtype, dims)
            })
            .collect()
    };
    let candle_odd = odd(&candle_types);
    for (name, order, alignment, mask, flags) in [
        // Quantized, mapped and copied.
        ("raw-candle-le", ByteOrder::Little, 32, 0x03, 0x01),
        ("raw-candle-be", ByteOrder::Big, 32, 0x41, 0x07),
        ("raw-candle-align1", ByteOrder::Little, 1, 0x05, 0x40 | 0x0D),
        ("raw-candle-align2", ByteOrder::Little, 2, 0x82, 0x80 | 0x21),
        ("raw-candle-align1-be", ByteOrder::Big, 1, 0x18, 0x3F),
    ] {
        let file = tensors_file(&mut rng, order, alignment, &candle_odd);
        write(out, "candle", name, &candle_raw(mask, flags, &file));
    }
    let every = odd(all);
    let file = tensors_file(&mut rng, ByteOrder::Little, 32, &every);
    write(
        out,
        "candle",
        "raw-every-type",
        &candle_raw(0x31, 0x01, &file),
    );
    let repacked: Vec<(GgmlType, Vec<u64>)> = vec![
        (GgmlType::Q4_K, vec![256, 16]),
        (GgmlType::Q6_K, vec![256, 16]),
        (GgmlType::Q8_0, vec![256, 16]),
        (GgmlType::Q4_K, vec![512, 16]),
    ];
    let file = tensors_file(&mut rng, ByteOrder::Little, 32, &repacked);
    write(
        out,
        "candle",
        "raw-repacked",
        &candle_raw(0x03, 0xC1, &file),
    );
    let empty: Vec<(GgmlType, Vec<u64>)> = vec![
        (GgmlType::Q4_K, vec![0, 1 << 40]),
        (GgmlType::F32, vec![1, 1 << 33, 0]),
        (GgmlType::Q8_0, vec![64, 0, 1 << 20, 2]),
        (GgmlType::F16, vec![0]),
        (GgmlType::Q2_K, vec![256, 0]),
    ];
    let file = tensors_file(&mut rng, ByteOrder::Little, 32, &empty);
    write(
        out,
        "candle",
        "raw-zero-elements",
        &candle_raw(0xFF, 0x01, &file),
    );
    for (i, len) in [64usize, 256, 1024, 4096].into_iter().enumerate() {
        let mut input = rng.bytes(len);
        input[0] &= !1;
        write(out, "candle", &format!("generated-{i}"), &input);
    }
    for i in 0..3u8 {
        let mut bytes = vec![0x55 ^ i; 512];
        bytes[0] = 2 * i;
        write(out, "candle", &format!("generated-pattern-{i}"), &bytes);
    }
}
