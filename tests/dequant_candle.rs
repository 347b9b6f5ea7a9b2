//! Differential test against candle-core 0.11's dequantizers
//! (`candle_core::quantized::k_quants`, reached through the public
//! `QStorage::from_data` / `QTensor::dequantize`), for every type candle has:
//! Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1 Q2_K Q3_K Q4_K Q5_K Q6_K Q8_K.
//!
//! Two kinds of input per type: blocks made by candle's own quantizer
//! (`QTensor::quantize`, i.e. `from_float`) from random weights, and random
//! bytes whose float scales are overwritten with finite values of realistic
//! size plus a few edge values (0, -0, the largest f16, f16 subnormals,
//! negative scales). Outputs must agree bit for bit.
//!
//! For the ten of these gguf-py also dequantizes, candle is also run on the
//! committed gguf-py fixtures (tests/fixtures/dequant/, NaN / Inf scales
//! included) and compared with gguf-py's output directly.
//!
//! Findings (candle-core 0.11.1, x86-64): bit-identical to ggufmap, and to
//! gguf-py 0.19.0 where gguf-py has the type, for all twelve types: candle
//! evaluates the same operations in the same order as ggml / gguf-py (e.g.
//! Q6_K as `(d * sc) * q`, Q2_K as `dl * q - ml`, Q4_1 as `q * d + m`) and
//! fuses nothing into a multiply-add. Q8_1's second f16 (`s`) is ignored by
//! both, as by ggml.

#![cfg(feature = "candle")]

mod common;

use common::Rng;
use std::borrow::Cow;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{Device, Tensor};
use ggufmap::format::ByteOrder;
use ggufmap::quant::{dequantize_bytes, scale_fields, ScaleKind};
use ggufmap::GgmlType;
use half::f16;

/// The byte offsets of `ty`'s f16 scale fields, from the block's own
/// description ([`ggufmap::quant::scale_fields`]); Q8_K's one scale, an
/// f32, is handled apart.
fn f16_scales(ty: GgmlType) -> Vec<usize> {
    scale_fields(ty)
        .iter()
        .filter(|f| f.kind == ScaleKind::F16)
        .map(|f| f.offset)
        .collect()
}

/// Random blocks of each kind per type.
const BLOCKS: usize = 64;

/// f16 scale bit patterns given a block of their own.
const F16_EDGES: &[u16] = &[
    0x0000, 0x8000, 0x7BFF, 0xFBFF, 0x0001, 0x03FF, 0x8001, 0x0400,
];
/// Q8_K's f32 scale: 0, -0, the extremes of the usual range, a subnormal.
const F32_EDGES: &[f32] = &[0.0, -0.0, 1.0e-8, -2.5, 1.0e-40];

/// A scale of the size real models have: |s| in 1e-4 .. 1e-1, random sign.
fn scale(rng: &mut Rng) -> f32 {
    let mag = 10f64.powf(-4.0 + 3.0 * rng.unit());
    (if rng.next() & 1 == 0 { mag } else { -mag }) as f32
}

fn put_f16(block: &mut [u8], offset: usize, bits: u16) {
    block[offset..offset + 2].copy_from_slice(&bits.to_le_bytes());
}

/// Random blocks with realistic scales, then one block per edge scale.
fn random_blocks(ty: GgmlType, scales: &[usize], rng: &mut Rng) -> Vec<u8> {
    let size = ty.bytes_per_block();
    let mut out = Vec::new();
    let mut block = vec![0u8; size];
    let edges = if ty == GgmlType::Q8_K {
        F32_EDGES.len()
    } else {
        F16_EDGES.len() * scales.len()
    };
    for i in 0..BLOCKS + edges {
        block.iter_mut().for_each(|b| *b = rng.next() as u8);
        if ty == GgmlType::Q8_K {
            let d = match i.checked_sub(BLOCKS) {
                Some(e) => F32_EDGES[e],
                None => scale(rng),
            };
            block[..4].copy_from_slice(&d.to_le_bytes());
        } else {
            for &off in scales {
                put_f16(&mut block, off, f16::from_f32(scale(rng)).to_bits());
            }
            if let Some(e) = i.checked_sub(BLOCKS) {
                let field = scales[e / F16_EDGES.len()];
                put_f16(&mut block, field, F16_EDGES[e % F16_EDGES.len()]);
            }
        }
        out.extend_from_slice(&block);
    }
    out
}

/// Blocks made by candle's quantizer from N(0, 0.02) weights with a few
/// outliers, as a real checkpoint has.
fn candle_quantized(ty: GgmlType, dtype: GgmlDType, rng: &mut Rng) -> Vec<u8> {
    let n = BLOCKS * ty.elements_per_block();
    let data: Vec<f32> = (0..n)
        .map(|i| {
            let x = 0.02 * rng.normal();
            if i % 97 == 0 {
                x * 40.0
            } else {
                x
            }
        })
        .collect();
    let t = Tensor::from_vec(data, (n,), &Device::Cpu).expect("tensor");
    let q = QTensor::quantize(&t, dtype).expect("candle quantize");
    q.data().expect("candle block bytes").into_owned()
}

fn candle_dequantize(dtype: GgmlDType, bytes: &[u8], n: usize) -> Vec<f32> {
    // candle views the bytes as its block structs and asserts their
    // alignment: hand it an 8-byte aligned copy.
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    let aligned = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()];
    aligned.copy_from_slice(bytes);
    let storage =
        QStorage::from_data(Cow::Borrowed(aligned), &Device::Cpu, dtype).expect("candle storage");
    let q = QTensor::new(storage, (n,)).expect("candle qtensor");
    q.dequantize(&Device::Cpu)
        .expect("candle dequantize")
        .to_vec1::<f32>()
        .expect("candle output")
}

fn compare(what: &str, ty: GgmlType, dtype: GgmlDType, bytes: &[u8]) {
    let size = ty.bytes_per_block();
    let elems = ty.elements_per_block();
    assert_eq!(
        dtype.type_size(),
        size,
        "{ty}: block size differs from candle's"
    );
    assert_eq!(
        dtype.block_size(),
        elems,
        "{ty}: block elements differ from candle's"
    );
    let n = bytes.len() / size * elems;
    let theirs = candle_dequantize(dtype, bytes, n);
    let mut ours = vec![0f32; n];
    dequantize_bytes(ty, bytes, ByteOrder::Little, &mut ours)
        .unwrap_or_else(|e| panic!("{ty} {what}: {e}"));
    // Guards against two empty outputs agreeing.
    let nonzero = ours.iter().filter(|x| **x != 0.0).count();
    assert!(
        nonzero > n / 2,
        "{ty} {what}: only {nonzero} of {n} outputs non-zero"
    );
    let bad: Vec<usize> = (0..n)
        .filter(|&i| ours[i].to_bits() != theirs[i].to_bits())
        .collect();
    if let Some(&i) = bad.first() {
        let max_ulps = bad
            .iter()
            .map(|&i| (ours[i].to_bits() as i64 - theirs[i].to_bits() as i64).abs())
            .max()
            .unwrap_or(0);
        let block = &bytes[i / elems * size..(i / elems + 1) * size];
        panic!(
            "{ty} {what}: {} of {n} values differ from candle (max {max_ulps} ulp); first at \
             index {i} (block {}, element {}): ours {:#010x} ({:e}), candle {:#010x} ({:e}); \
             block bytes {block:02x?}",
            bad.len(),
            i / elems,
            i % elems,
            ours[i].to_bits(),
            ours[i],
            theirs[i].to_bits(),
            theirs[i],
        );
    }
}

/// candle on the committed gguf-py fixture blocks against the gguf-py
/// output itself (bit for bit, except that a NaN the reference generated
/// from an infinite scale, Inf * 0 or Inf - Inf, only has to be a NaN: see
/// tests/dequant_fixtures.rs). Fixture integrity (sizes, SHA-256) is checked
/// there; this only reads the files.
fn compare_with_gguf_py(ty: GgmlType, dtype: GgmlDType) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dequant");
    for stem in [ty.name().to_owned(), format!("{}.nan", ty.name())] {
        let Ok(bytes) = std::fs::read(format!("{dir}/{stem}.blocks")) else {
            assert!(stem.ends_with(".nan"), "{stem}.blocks missing");
            continue;
        };
        let reference: Vec<u32> = std::fs::read(format!("{dir}/{stem}.f32"))
            .unwrap_or_else(|e| panic!("{stem}.f32: {e}"))
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let theirs = candle_dequantize(dtype, &bytes, reference.len());
        let bad = (0..reference.len()).find(|&i| {
            let (r, c) = (reference[i], theirs[i].to_bits());
            let generated = r == 0xFFC0_0000 || r == 0x7FC0_0000;
            r != c && !(generated && theirs[i].is_nan())
        });
        if let Some(i) = bad {
            panic!(
                "{stem}: candle differs from gguf-py at index {i}: gguf-py {:#010x}, candle {:#010x}",
                reference[i],
                theirs[i].to_bits()
            );
        }
    }
}

fn check(ty: GgmlType) {
    let scales = f16_scales(ty);
    let dtype = ty.candle_qtype().expect("a type candle has");
    let mut rng = Rng(0x6767_7566_6d61_7000 ^ u64::from(ty.id()));
    compare(
        "candle-quantized blocks",
        ty,
        dtype,
        &candle_quantized(ty, dtype, &mut rng),
    );
    if !matches!(ty, GgmlType::Q8_1 | GgmlType::Q8_K) {
        compare_with_gguf_py(ty, dtype);
    }
    compare(
        "random blocks",
        ty,
        dtype,
        &random_blocks(ty, &scales, &mut rng),
    );
}

/// Every quantized type candle has (from the type table), compared.
#[test]
fn every_quantized_type_candle_has() {
    let mut compared = 0;
    for &ty in GgmlType::ALL {
        if ty.candle_qtype().is_some() && !ty.is_plain() {
            check(ty);
            compared += 1;
        }
    }
    assert_eq!(compared, 12, "candle's 12 quantized types");
}
