//! Opening n bytes of anything allocates at most `A * n + B` bytes at peak.
//!
//! A counting global allocator (`tests/common/alloc.rs`) tracks current and
//! peak heap bytes with atomics. Only allocations made by the thread that is
//! measuring are counted, so the test harness's own threads cannot disturb a
//! measurement; a static mutex still runs the tests one at a time.
//!
//! Inputs: every hand-made malformed case, every truncation of a valid file,
//! random byte strings and random mutations of a valid file (fixed-seed
//! PRNG), and adversarial files built to make the index as large as the
//! bytes allow.

mod common;
mod gguf_cases;

use std::sync::{Mutex, MutexGuard};

use ggufmap::format::parse;
use ggufmap::{GgmlType, Gguf, GgufWriter, MetaValue};

use common::alloc::peak_during;
use common::Rng;
use gguf_cases::{cases, sample_file, Enc, F32, T_U8};

const I8: u32 = 24;

#[global_allocator]
static GLOBAL: common::alloc::Counting = common::alloc::Counting;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Peak bytes allocated while opening `bytes` (both `parse` and
/// `Gguf::from_bytes`, the larger), the result dropped inside the
/// measurement.
fn open_peak(bytes: &[u8]) -> usize {
    let (_, a) = peak_during(|| parse(bytes).is_ok());
    let (_, b) = peak_during(|| Gguf::from_bytes(bytes).is_ok());
    a.max(b)
}

/// The bound this suite establishes: peak <= A * n + B.
const A: usize = 5;
const B: usize = 64 * 1024;

fn bound(n: usize) -> usize {
    A * n + B
}

/// Measures every input, asserts the bound, and returns the worst
/// (peak / n) among inputs of at least 1 KiB and the largest peak overall.
fn check_all(label: &str, inputs: impl IntoIterator<Item = Vec<u8>>) -> (f64, usize) {
    let mut worst_ratio = 0f64;
    let mut worst_peak = 0usize;
    let mut count = 0usize;
    for bytes in inputs {
        let n = bytes.len();
        let peak = open_peak(&bytes);
        assert!(
            peak <= bound(n),
            "{label}: {n} bytes allocated {peak} at peak (> {A}n + {B})"
        );
        if n >= 1024 {
            worst_ratio = worst_ratio.max(peak as f64 / n as f64);
        }
        worst_peak = worst_peak.max(peak);
        count += 1;
    }
    println!("{label}: {count} inputs, worst peak/n (n >= 1 KiB) {worst_ratio:.2}, largest peak {worst_peak} B");
    (worst_ratio, worst_peak)
}

#[test]
fn malformed_cases_stay_within_the_bound() {
    let _serial = serial();
    check_all("malformed cases", cases().into_iter().map(|c| c.bytes));
}

#[test]
fn truncations_of_a_valid_file_stay_within_the_bound() {
    let _serial = serial();
    let bytes = sample_file();
    check_all(
        "truncations",
        (0..=bytes.len()).map(|n| bytes[..n].to_vec()),
    );
}

#[test]
fn random_bytes_stay_within_the_bound() {
    let _serial = serial();
    let mut rng = Rng(0x5EED_0001);
    let inputs = (0..3000).map(|i| {
        let len = rng.below(4096);
        let mut bytes = rng.bytes(len);
        // Most random strings fail at the magic; give two thirds of them a
        // valid preamble so the counts and fields behind it are exercised.
        if i % 3 != 0 && bytes.len() >= 8 {
            bytes[..8].copy_from_slice(b"GGUF\x03\x00\x00\x00");
            if i % 3 == 2 && bytes.len() >= 24 {
                // Small counts, so the parser gets into the entries.
                let n_tensors = rng.below(8) as u64;
                let n_kv = rng.below(8) as u64;
                bytes[8..16].copy_from_slice(&n_tensors.to_le_bytes());
                bytes[16..24].copy_from_slice(&n_kv.to_le_bytes());
            }
        }
        bytes
    });
    check_all("random bytes", inputs.collect::<Vec<_>>());
}

#[test]
fn random_mutations_of_a_valid_file_stay_within_the_bound() {
    let _serial = serial();
    let original = sample_file();
    let header_len = parse(&original).unwrap().data_start();
    let mut rng = Rng(0x5EED_0002);
    let interesting = [
        0u64,
        1,
        2,
        3,
        8,
        31,
        32,
        63,
        64,
        255,
        1 << 16,
        1 << 32,
        1 << 62,
        u64::MAX,
        original.len() as u64,
    ];
    let mut inputs = Vec::new();
    for _ in 0..3000 {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(header_len);
            match rng.below(4) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next() as u8,
                2 if at + 8 <= bytes.len() => {
                    let v = interesting[rng.below(interesting.len())];
                    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
                _ if at + 4 <= bytes.len() => {
                    let v = interesting[rng.below(interesting.len())] as u32;
                    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => {}
            }
        }
        if rng.below(4) == 0 {
            bytes.truncate(rng.below(bytes.len() + 1));
        }
        inputs.push(bytes);
    }
    check_all("mutations", inputs);
}

/// Two-byte unique ASCII names/keys (i < 95 * 95): the shortest that can be
/// unique in bulk.
fn short_name(i: usize) -> [u8; 2] {
    assert!(i < 95 * 95);
    [0x20 + (i / 95) as u8, 0x20 + (i % 95) as u8]
}

/// Valid files whose index is as large as their bytes allow: many tiny
/// tensor infos, or many tiny metadata entries.
#[test]
fn densest_valid_files_stay_within_the_bound() {
    let _serial = serial();
    let mut inputs = Vec::new();
    for count in [100usize, 1000, 5000] {
        // Tensor infos of 27 bytes each: a 2-byte name, no dims, F32 of one
        // element... which needs 32 bytes of data each; zero-element tensors
        // take no data: dims [0].
        let mut e = Enc::le();
        e.header(3, count as u64, 0);
        for i in 0..count {
            e.tensor(&short_name(i), &[0], F32, 0);
        }
        e.pad(32);
        inputs.push(e.finish());

        // The densest tensor table of all: alignment 1 and I8 scalars, 26
        // bytes of info and 1 byte of data per tensor.
        let mut e = Enc::le();
        e.header(3, count as u64, 1).kv_u32("general.alignment", 1);
        for i in 0..count {
            e.tensor(&short_name(i), &[], I8, i as u64);
        }
        e.zeros(count);
        inputs.push(e.finish());

        // Metadata entries of 15 bytes: a 2-byte key and a u8.
        let mut e = Enc::le();
        e.header(3, 0, count as u64);
        for i in 0..count {
            e.key(&short_name(i), T_U8).u8(0);
        }
        inputs.push(e.finish());
    }
    for bytes in &inputs {
        parse(bytes).expect("dense files are valid");
    }
    let (ratio, _) = check_all("densest valid files", inputs);
    assert!(
        ratio > 1.0,
        "the index of a dense file should cost more than its bytes"
    );
}

/// A file whose metadata fills it with small valid entries and whose tensor
/// count claims as many tensors as the bytes *before* the metadata could
/// hold: the count passes its check when read, and the tensor table is sized
/// from it after the metadata has used those bytes up.
#[test]
fn tensor_count_is_checked_against_the_bytes_left_after_metadata() {
    let _serial = serial();
    let mut worst = 0f64;
    for count in [1000usize, 5000] {
        let mut e = Enc::le();
        e.header(3, 0, count as u64);
        for i in 0..count {
            e.key(&short_name(i), T_U8).u8(0);
        }
        let mut bytes = e.finish();
        let claim = ((bytes.len() - 16) / 24) as u64;
        bytes[8..16].copy_from_slice(&claim.to_le_bytes());
        let result = parse(&bytes);
        assert!(result.is_err());
        let n = bytes.len();
        let peak = open_peak(&bytes);
        worst = worst.max(peak as f64 / n as f64);
        println!(
            "over-claimed tensor count {claim} in {n} bytes: peak {peak} B ({:.2} n), error: {}",
            peak as f64 / n as f64,
            result.unwrap_err()
        );
    }
    // The tensor table must not be reserved from a count the remaining bytes
    // cannot hold: the bound for valid files must hold here too.
    assert!(worst <= A as f64, "peak {worst:.2} n exceeds {A} n");
}

fn vocab_file(n_tokens: usize) -> Vec<u8> {
    let tokens: Vec<String> = (0..n_tokens).map(|i| format!("▁token{i}")).collect();
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    w.add_metadata("tokenizer.ggml.tokens", MetaValue::strings(&tokens))
        .unwrap();
    w.add_metadata("tokenizer.ggml.scores", vec![0.5f32; n_tokens])
        .unwrap();
    w.add_metadata("tokenizer.ggml.token_type", vec![1i32; n_tokens])
        .unwrap();
    w.add_tensor("token_embd.weight", GgmlType::F32, &[4, 2], vec![0u8; 32])
        .unwrap();
    w.to_bytes().unwrap()
}

#[test]
fn vocabulary_size_does_not_change_peak_allocation() {
    let _serial = serial();
    let small = vocab_file(1024);
    let large = vocab_file(262_144);
    let small_peak = open_peak(&small);
    let large_peak = open_peak(&large);
    println!(
        "vocabulary 1k: {} bytes, peak {small_peak} B; 262k: {} bytes, peak {large_peak} B",
        small.len(),
        large.len()
    );
    assert!(
        large_peak <= small_peak,
        "peak grew with the vocabulary: {small_peak} -> {large_peak}"
    );
    assert!(large_peak < 4096, "peak {large_peak} B for a 4-entry index");

    // Walking the vocabulary allocates nothing either.
    let file = Gguf::from_bytes(&large).unwrap();
    let (count, walk_peak) = peak_during(|| {
        let tokens = file.metadata().get_array("tokenizer.ggml.tokens").unwrap();
        tokens
            .strings()
            .unwrap()
            .filter(|s| s.as_str().is_ok())
            .count()
    });
    assert_eq!(count, 262_144);
    assert_eq!(walk_peak, 0, "walking the vocabulary allocated");
}
