//! Every dequantizer, bit for bit, against committed reference output.
//!
//! `tests/fixtures/dequant/` holds, per type, random but valid blocks and what
//! `gguf.quants.dequantize` of the `gguf` PyPI package (gguf-py 0.19.0) makes
//! of them, written by `scripts/make_fixtures.py`. Its `MANIFEST` records each
//! file's type, block count, size and SHA-256, which are checked before a file
//! is trusted. Each type's output is compared as f32 bit patterns
//! (`to_bits`), then as f16 and bf16 (the f32 reference rounded to nearest
//! by `half`), and again from a misaligned copy of the input.
//!
//! NaN: a fixture's NaNs come from NaN scales (`<TYPE>.nan.*`, and the plain
//! F16 / BF16 / F32 patterns) and must be reproduced bit for bit: sign and
//! payload pass through. The one exception is a NaN that the reference
//! *generates* (Inf * 0, Inf - Inf in a block with an infinite scale): IEEE
//! 754 leaves its bits to the processor (x86 gives 0xFFC0_0000, Arm
//! 0x7FC0_0000), so for a block type a reference bit pattern equal to either
//! default NaN is only required to be a NaN. The fixture script never uses
//! an f16 NaN scale with a zero payload, so no propagated NaN has these bits.
//!
//! Types gguf-py cannot dequantize (Q8_1, Q8_K, Q1_0, Q2_0) are checked
//! against hand-computed vectors from ggml's C at the end of this file.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use ggufmap::format::ByteOrder;
use ggufmap::quant::{dequantize_bytes, scale_fields, ScaleKind};
use ggufmap::GgmlType;
use half::{bf16, f16};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dequant");
/// The gguf-py version the fixtures were made with (scripts/requirements.txt).
const GGUF_PY: &str = "0.19.0";

// --- every fixture the manifest lists ----------------------------------------------------

/// The fixtures are whatever `MANIFEST` lists: each `<stem>.blocks` is
/// decoded and compared bit for bit with `<stem>.f32`.
#[test]
fn every_fixture_in_the_manifest_is_bit_exact() {
    let mut checked = 0;
    for (file, e) in &manifest().files {
        if let Some(stem) = file.strip_suffix(".blocks") {
            let ty: GgmlType = e.ty.parse().expect("a type name the crate knows");
            check_fixture(stem, ty);
            checked += 1;
        }
    }
    assert!(checked > 0, "MANIFEST lists no fixtures");
}

/// Types with a gguf-py fixture: those the manifest lists.
fn fixture_types() -> BTreeSet<GgmlType> {
    manifest()
        .files
        .values()
        .map(|e| e.ty.parse().expect("a type name the crate knows"))
        .collect()
}

/// Fixture types with no NaN / infinite-scale fixture: the plain floats
/// (every bit pattern is in their fixture already) and the FP4 formats
/// (their E8M0 / UE4M3 scales encode no NaN that gguf-py decodes as ggml).
const NO_NAN_FIXTURE: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::MXFP4,
    GgmlType::NVFP4,
];

#[test]
fn every_block_type_with_float_scales_has_a_nan_fixture() {
    let files = &manifest().files;
    for ty in fixture_types() {
        let has_nan = files.contains_key(&format!("{}.nan.blocks", ty.name()));
        assert_eq!(
            has_nan,
            !NO_NAN_FIXTURE.contains(&ty),
            "{ty}: NaN fixture in MANIFEST: {has_nan}"
        );
    }
}

/// Types checked by the hand-computed vectors below.
const HAND_TYPES: &[GgmlType] = &[
    GgmlType::Q8_1,
    GgmlType::Q8_K,
    GgmlType::Q1_0,
    GgmlType::Q2_0,
];

/// Types neither gguf-py nor ggml dequantize as a block format: F64 and the
/// integers, converted by `src/quant/plain.rs` and unit-tested there.
const PLAIN_ONLY: &[GgmlType] = &[
    GgmlType::F64,
    GgmlType::I8,
    GgmlType::I16,
    GgmlType::I32,
    GgmlType::I64,
];

#[test]
fn every_type_is_covered() {
    let fixtures = fixture_types();
    for &ty in GgmlType::ALL {
        let fixture = fixtures.contains(&ty);
        let hand = HAND_TYPES.contains(&ty);
        let plain = PLAIN_ONLY.contains(&ty);
        assert_eq!(
            usize::from(fixture) + usize::from(hand) + usize::from(plain),
            1,
            "{ty}: needs exactly one of a fixture, hand vectors or a plain-type unit test"
        );
    }
}

/// `tests/fixtures/BLOCK_LAYOUT`: each block type's geometry and scale
/// fields as the blocks describe them (`quant::scale_fields`), for
/// `scripts/make_fixtures.py`, which reads its layouts from there.
fn block_layout() -> String {
    let mut out = String::from(
        "# Block layouts as ggufmap's block types describe them (quant::scale_fields),\n\
         # read by scripts/make_fixtures.py; kept equal by tests/dequant_fixtures.rs.\n\
         # <type> <elements per block> <bytes per block> <kind>@<byte offset>...\n",
    );
    for &ty in GgmlType::ALL.iter().filter(|t| !t.is_plain()) {
        out.push_str(&format!(
            "{} {} {}",
            ty.name(),
            ty.elements_per_block(),
            ty.bytes_per_block()
        ));
        for field in scale_fields(ty) {
            let kind = match field.kind {
                ScaleKind::F16 => "f16",
                ScaleKind::F32 => "f32",
                ScaleKind::E8M0 => "e8m0",
                ScaleKind::Ue4M3 => "ue4m3",
                ScaleKind::Iq1mScaleNibbles => "iq1m",
                other => panic!("no name for {other:?}"),
            };
            out.push_str(&format!(" {kind}@{}", field.offset));
        }
        out.push('\n');
    }
    out
}

/// The committed layout file is what the blocks say (set
/// `GGUFMAP_WRITE_LAYOUT=1` to rewrite it).
#[test]
fn block_layout_file_is_the_blocks_own() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/BLOCK_LAYOUT");
    let expected = block_layout();
    if std::env::var_os("GGUFMAP_WRITE_LAYOUT").is_some() {
        std::fs::write(path, &expected).expect("write BLOCK_LAYOUT");
    }
    let committed = std::fs::read_to_string(path).expect("read BLOCK_LAYOUT");
    assert_eq!(
        committed, expected,
        "rewrite it with GGUFMAP_WRITE_LAYOUT=1"
    );
}

#[test]
fn manifest_matches_the_directory() {
    let m = manifest();
    assert_eq!(m.gguf, GGUF_PY, "fixtures made with another gguf-py");
    for entry in std::fs::read_dir(DIR).expect("fixture directory") {
        let file = entry.expect("fixture directory entry").file_name();
        let file = file.to_str().expect("utf-8 file name");
        assert!(
            file == "MANIFEST" || m.files.contains_key(file),
            "{file} is not in MANIFEST"
        );
    }
    for file in m.files.keys() {
        // Read (and so size- and hash-check) every file, tested or not.
        load(file);
    }
}

// --- the manifest -------------------------------------------------------------------------

struct Entry {
    ty: String,
    blocks: usize,
    elements: usize,
    bytes: usize,
    sha256: String,
}

struct Manifest {
    gguf: String,
    files: BTreeMap<String, Entry>,
}

fn manifest() -> &'static Manifest {
    static MANIFEST: OnceLock<Manifest> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let text = std::fs::read_to_string(format!("{DIR}/MANIFEST")).expect("read MANIFEST");
        let mut m = Manifest {
            gguf: String::new(),
            files: BTreeMap::new(),
        };
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["gguf", v] => m.gguf = (*v).to_owned(),
                ["numpy", _] => {}
                [file, ty, blocks, elements, bytes, sha] => {
                    let num = |s: &str| s.parse::<usize>().expect("MANIFEST number");
                    let entry = Entry {
                        ty: (*ty).to_owned(),
                        blocks: num(blocks),
                        elements: num(elements),
                        bytes: num(bytes),
                        sha256: (*sha).to_owned(),
                    };
                    m.files.insert((*file).to_owned(), entry);
                }
                _ => panic!("bad MANIFEST line: {line:?}"),
            }
        }
        m
    })
}

/// Reads a fixture file and checks it against its MANIFEST line and against
/// this crate's block geometry for the type.
fn load(file: &str) -> Vec<u8> {
    let e = manifest()
        .files
        .get(file)
        .unwrap_or_else(|| panic!("{file} is not in MANIFEST (run scripts/make_fixtures.py)"));
    let data = std::fs::read(format!("{DIR}/{file}")).unwrap_or_else(|err| panic!("{file}: {err}"));
    assert_eq!(data.len(), e.bytes, "{file}: size differs from MANIFEST");
    assert_eq!(
        sha256_hex(&data),
        e.sha256,
        "{file}: SHA-256 differs from MANIFEST"
    );
    let ty: GgmlType = e.ty.parse().unwrap_or_else(|err| panic!("{file}: {err}"));
    assert_eq!(
        e.elements,
        e.blocks * ty.elements_per_block(),
        "{file}: element count"
    );
    let expected = if file.ends_with(".f32") {
        4 * e.elements
    } else {
        e.blocks * ty.bytes_per_block()
    };
    assert_eq!(
        data.len(),
        expected,
        "{file}: size disagrees with {ty}'s block geometry"
    );
    data
}

// --- the checks ---------------------------------------------------------------------------

fn check_fixture(stem: &str, ty: GgmlType) {
    let blocks = load(&format!("{stem}.blocks"));
    let reference: Vec<u32> = load(&format!("{stem}.f32"))
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    check_against(stem, ty, &blocks, &reference);
}

/// Checks every output type, aligned and misaligned (and for plain types
/// big-endian) input, against `reference` (f32 bits).
fn check_against(what: &str, ty: GgmlType, blocks: &[u8], reference: &[u32]) {
    let elems = ty.elements_per_block();
    let n = reference.len();
    assert_eq!(
        blocks.len() / ty.bytes_per_block() * elems,
        n,
        "{what}: fixture sizes"
    );
    // Only a block type does arithmetic that can generate a NaN.
    let generated: Vec<bool> = reference
        .iter()
        .map(|&r| !ty.is_plain() && (r == 0xFFC0_0000 || r == 0x7FC0_0000))
        .collect();

    let mut out = vec![0f32; n];
    dequantize_bytes(ty, blocks, ByteOrder::Little, &mut out)
        .unwrap_or_else(|e| panic!("{what}: dequantize to f32: {e}"));
    let got: Vec<u32> = out.iter().map(|x| x.to_bits()).collect();
    report(what, "f32", ty, blocks, reference, &got, |i| {
        generated[i] && f32::from_bits(got[i]).is_nan()
    });

    // The same bytes one byte off their alignment (ggml blocks are 2-byte
    // aligned, Q8_K 4): exactly the aligned output, NaNs included.
    let mut shifted = vec![0u8; blocks.len() + 1];
    shifted[1..].copy_from_slice(blocks);
    let misaligned = &shifted[1..];
    assert_eq!(
        misaligned.as_ptr() as usize % 2,
        1,
        "{what}: input not misaligned"
    );
    let mut out_m = vec![0f32; n];
    dequantize_bytes(ty, misaligned, ByteOrder::Little, &mut out_m)
        .unwrap_or_else(|e| panic!("{what}: dequantize misaligned input: {e}"));
    let got_m: Vec<u32> = out_m.iter().map(|x| x.to_bits()).collect();
    report(
        what,
        "f32 from misaligned input",
        ty,
        blocks,
        &got,
        &got_m,
        |_| false,
    );

    // Plain types are also read big-endian: the same values.
    if ty.is_plain() {
        let size = ty.bytes_per_block();
        let be: Vec<u8> = blocks
            .chunks_exact(size)
            .flat_map(|c| c.iter().rev().copied())
            .collect();
        let mut out_be = vec![0f32; n];
        dequantize_bytes(ty, &be, ByteOrder::Big, &mut out_be)
            .unwrap_or_else(|e| panic!("{what}: dequantize big-endian input: {e}"));
        let got_be: Vec<u32> = out_be.iter().map(|x| x.to_bits()).collect();
        report(
            what,
            "f32 from big-endian input",
            ty,
            blocks,
            &got,
            &got_be,
            |_| false,
        );
    }

    // f16 and bf16 output: the f32 reference rounded to nearest even.
    let mut h = vec![f16::ZERO; n];
    dequantize_bytes(ty, blocks, ByteOrder::Little, &mut h)
        .unwrap_or_else(|e| panic!("{what}: dequantize to f16: {e}"));
    let want: Vec<u32> = reference
        .iter()
        .map(|&r| u32::from(f16::from_f32(f32::from_bits(r)).to_bits()))
        .collect();
    let got_h: Vec<u32> = h.iter().map(|x| u32::from(x.to_bits())).collect();
    report(what, "f16", ty, blocks, &want, &got_h, |i| {
        generated[i] && h[i].is_nan()
    });

    let mut b = vec![bf16::ZERO; n];
    dequantize_bytes(ty, blocks, ByteOrder::Little, &mut b)
        .unwrap_or_else(|e| panic!("{what}: dequantize to bf16: {e}"));
    let want: Vec<u32> = reference
        .iter()
        .map(|&r| u32::from(bf16::from_f32(f32::from_bits(r)).to_bits()))
        .collect();
    let got_b: Vec<u32> = b.iter().map(|x| u32::from(x.to_bits())).collect();
    report(what, "bf16", ty, blocks, &want, &got_b, |i| {
        generated[i] && b[i].is_nan()
    });
}

/// Panics with the first mismatches (index, block, element, bits, values and
/// the block's bytes) unless every `got` equals `expected` bit for bit or is
/// `excused(index)`.
fn report(
    what: &str,
    output: &str,
    ty: GgmlType,
    blocks: &[u8],
    expected: &[u32],
    got: &[u32],
    excused: impl Fn(usize) -> bool,
) {
    assert_eq!(
        expected.len(),
        got.len(),
        "{what} ({output}): output length"
    );
    let bad: Vec<usize> = (0..expected.len())
        .filter(|&i| expected[i] != got[i] && !excused(i))
        .collect();
    if bad.is_empty() {
        return;
    }
    let elems = ty.elements_per_block();
    let size = ty.bytes_per_block();
    let show = |bits: u32| -> String {
        match output {
            "f16" => format!("{:#06x} ({})", bits, f16::from_bits(bits as u16)),
            "bf16" => format!("{:#06x} ({})", bits, bf16::from_bits(bits as u16)),
            _ => format!("{:#010x} ({:e})", bits, f32::from_bits(bits)),
        }
    };
    let mut msg = format!(
        "{what} ({output}): {} of {} values differ from the reference\n",
        bad.len(),
        expected.len()
    );
    for &i in bad.iter().take(8) {
        msg += &format!(
            "  index {i} (block {}, element {}): expected {}, got {}\n",
            i / elems,
            i % elems,
            show(expected[i]),
            show(got[i])
        );
    }
    let first = bad[0] / elems;
    let bytes = &blocks[first * size..(first + 1) * size];
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    msg += &format!("  block {first} bytes: {}", hex.join(" "));
    panic!("{msg}");
}

// --- SHA-256 (FIPS 180-4), to check the MANIFEST without a dependency ----------------------

fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_known_answers() {
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
}

// --- hand-computed vectors for the types gguf-py cannot dequantize ------------------------

/// f32 bit patterns of `values`.
fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|x| x.to_bits()).collect()
}

/// Expands a string of `+` / `-` (spaces ignored) into `plus` / `minus`.
fn signs(pattern: &str, plus: f32, minus: f32) -> Vec<f32> {
    pattern
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if c == '+' { plus } else { minus })
        .collect()
}

/// Expands a string of 2-bit codes `0`-`3` (spaces ignored) through `table`.
fn codes(pattern: &str, table: [f32; 4]) -> Vec<f32> {
    pattern
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| table[c.to_digit(4).expect("code 0-3") as usize])
        .collect()
}

/// Q8_1 (ggml has no `to_float` for it; candle and the obvious reading of
/// `block_q8_1` decode it as Q8_0): 36 bytes = f16 `d`, f16 `s` (= d * sum,
/// used by matrix products only, never by dequantization), 32 `i8` `qs`;
/// `y[j] = qs[j] * d`.
#[test]
fn q8_1_hand_vectors() {
    let qs: [i8; 32] = [
        0, 1, -1, 2, -2, 3, -3, 127, -128, 64, -64, 5, 10, 20, 40, 80, 100, -100, 7, -7, 9, 11, 13,
        15, 17, 19, 21, 23, 25, 27, 29, 31,
    ];
    let mut blocks = Vec::new();
    // Block 0: d = 0.5 (0x3800), s = NaN (0x7E00), which must not leak into
    // the output. Every q * 0.5 is exact.
    blocks.extend_from_slice(&[0x00, 0x38, 0x00, 0x7E]);
    blocks.extend(qs.iter().map(|&q| q as u8));
    let mut expected = vec![
        0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 63.5, -64.0, 32.0, -32.0, 2.5, 5.0, 10.0, 20.0, 40.0,
        50.0, -50.0, 3.5, -3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5, 12.5, 13.5, 14.5, 15.5,
    ];
    // Block 1: d = -0.0 (0x8000), s = 1.0: q > 0 gives -0.0, q < 0 gives
    // +0.0 and q = 0 gives 0 * -0 = -0.0.
    blocks.extend_from_slice(&[0x00, 0x80, 0x00, 0x3C]);
    blocks.extend([1i8, -1, 0, 127].repeat(8).iter().map(|&q| q as u8));
    expected.extend([-0.0, 0.0, -0.0, -0.0].repeat(8));
    // Block 2: d = -4.0 (0xC400), s = 0: q * -4 exact, e.g. -128 -> 512.
    blocks.extend_from_slice(&[0x00, 0xC4, 0x00, 0x00]);
    blocks.extend(qs.iter().map(|&q| q as u8));
    expected.extend([
        -0.0, -4.0, 4.0, -8.0, 8.0, -12.0, 12.0, -508.0, 512.0, -256.0, 256.0, -20.0, -40.0, -80.0,
        -160.0, -320.0, -400.0, 400.0, -28.0, 28.0, -36.0, -44.0, -52.0, -60.0, -68.0, -76.0,
        -84.0, -92.0, -100.0, -108.0, -116.0, -124.0,
    ]);
    check_against(
        "Q8_1 hand vectors",
        GgmlType::Q8_1,
        &blocks,
        &bits(&expected),
    );
}

/// Q8_K (ggml `dequantize_row_q8_K`): 292 bytes = f32 `d`, 256 `i8` `qs`,
/// 16 `i16` `bsums` (ignored by dequantization); `y[j] = d * qs[j]`.
#[test]
fn q8_k_hand_vectors() {
    // qs[j] = j as i8: 0..=127 then -128..=-1.
    let qs: Vec<u8> = (0..=255u8).collect();
    let block = |d: f32| {
        let mut b = d.to_le_bytes().to_vec();
        b.extend_from_slice(&qs);
        b.extend_from_slice(&[0xFF, 0x7F].repeat(16)); // bsums: 32767, unused
        b
    };
    let q = |j: usize| if j < 128 { j as i32 } else { j as i32 - 256 };
    let mut blocks = Vec::new();
    let mut expected = Vec::new();
    // Block 0: d = 0.25, so y = q / 4 exactly (0, 0.25, .., 31.75, -32, .., -0.25).
    blocks.extend(block(0.25));
    expected.extend(bits(
        &(0..256).map(|j| q(j) as f32 / 4.0).collect::<Vec<_>>(),
    ));
    // Block 1: d = 2^-149, the smallest subnormal: q * 2^-149 is the
    // subnormal whose bits are |q|, with the sign bit for q < 0; q = 0 is +0.
    blocks.extend(block(f32::from_bits(1)));
    expected.extend((0..256).map(|j| {
        let v = q(j);
        if v < 0 {
            0x8000_0000 | v.unsigned_abs()
        } else {
            v as u32
        }
    }));
    // Block 2: d = -3.0: y = -3q, exact (-381 .. 384), except that q = 0
    // gives -3.0 * 0 = -0.0 (the integer -3 * 0 would be +0).
    blocks.extend(block(-3.0));
    expected.extend(bits(
        &(0..256)
            .map(|j| if j == 0 { -0.0 } else { (-3 * q(j)) as f32 })
            .collect::<Vec<_>>(),
    ));
    // Block 3: d = a quiet NaN with payload 0x1234: every output is that NaN
    // (q = 0 included: NaN * 0 is the NaN).
    blocks.extend(block(f32::from_bits(0x7FC0_1234)));
    expected.extend(std::iter::repeat_n(0x7FC0_1234, 256));
    check_against("Q8_K hand vectors", GgmlType::Q8_K, &blocks, &expected);
}

/// Q1_0 (ggml `dequantize_row_q1_0`): 18 bytes = f16 `d`, 16 bytes of bits;
/// element `j` is bit `j % 8` of byte `j / 8`, and `y[j] = bit ? d : -d`.
#[test]
fn q1_0_hand_vectors() {
    let qs = [
        0x00, 0xFF, 0x01, 0x80, 0xAA, 0x55, 0x0F, 0xF0, 0x3C, 0x81, 0x12, 0xC3, 0x00, 0xFF, 0x7E,
        0x01,
    ];
    // The bits of each byte above, lowest first (+ for 1, - for 0).
    let pattern = "-------- ++++++++ +------- -------+ -+-+-+-+ +-+-+-+- ++++---- ----++++ \
                   --++++-- +------+ -+--+--- ++----++ -------- ++++++++ -++++++- +-------";
    let mut blocks = Vec::new();
    let mut expected = Vec::new();
    // d = 1.5 (0x3E00): + -> 1.5, - -> -1.5.
    blocks.extend_from_slice(&[0x00, 0x3E]);
    blocks.extend_from_slice(&qs);
    expected.extend(signs(pattern, 1.5, -1.5));
    // d = +0 (0x0000): + -> +0.0, - -> -0.0 (ggml negates d, a sign flip).
    blocks.extend_from_slice(&[0x00, 0x00]);
    blocks.extend_from_slice(&qs);
    expected.extend(signs(pattern, 0.0, -0.0));
    // d = -2.0 (0xC000): + -> -2.0, - -> 2.0.
    blocks.extend_from_slice(&[0x00, 0xC0]);
    blocks.extend_from_slice(&qs);
    expected.extend(signs(pattern, -2.0, 2.0));
    // d = 65504 (0x7BFF, largest f16): + -> 65504, - -> -65504.
    blocks.extend_from_slice(&[0xFF, 0x7B]);
    blocks.extend_from_slice(&qs);
    expected.extend(signs(pattern, 65504.0, -65504.0));
    check_against(
        "Q1_0 hand vectors",
        GgmlType::Q1_0,
        &blocks,
        &bits(&expected),
    );
}

/// Q2_0 (ggml `dequantize_row_q2_0`): 18 bytes = f16 `d`, 16 bytes of 2-bit
/// codes; element `j` is bits `2 * (j % 4)..` of byte `j / 4`, and
/// `y[j] = (float)(q - 1) * d` (codes 0, 1, 2, 3 -> -d, 0 * d, d, 2d).
#[test]
fn q2_0_hand_vectors() {
    let qs = [
        0xE4, 0x1B, 0x00, 0xFF, 0x55, 0xAA, 0x39, 0xC6, 0x27, 0xD8, 0x93, 0x6C, 0x4E, 0xB1, 0x8D,
        0x72,
    ];
    // The codes of each byte above, lowest bits first (0xE4 = 0b11_10_01_00).
    let pattern = "0123 3210 0000 3333 1111 2222 1230 2103 3120 0213 3012 0321 2301 1032 1302 2031";
    let mut blocks = Vec::new();
    let mut expected = Vec::new();
    // d = 0.75 (0x3A00).
    blocks.extend_from_slice(&[0x00, 0x3A]);
    blocks.extend_from_slice(&qs);
    expected.extend(codes(pattern, [-0.75, 0.0, 0.75, 1.5]));
    // d = -0.75 (0xBA00): code 1 gives 0 * -0.75 = -0.0.
    blocks.extend_from_slice(&[0x00, 0xBA]);
    blocks.extend_from_slice(&qs);
    expected.extend(codes(pattern, [0.75, -0.0, -0.75, -1.5]));
    // d = 65504 (0x7BFF): 2d = 131008 is finite in f32.
    blocks.extend_from_slice(&[0xFF, 0x7B]);
    blocks.extend_from_slice(&qs);
    expected.extend(codes(pattern, [-65504.0, 0.0, 65504.0, 131008.0]));
    // d = 2^-24 (0x0001, the smallest f16 subnormal): exact multiples.
    blocks.extend_from_slice(&[0x01, 0x00]);
    blocks.extend_from_slice(&qs);
    let t = 2f32.powi(-24);
    expected.extend(codes(pattern, [-t, 0.0, t, 2.0 * t]));
    check_against(
        "Q2_0 hand vectors",
        GgmlType::Q2_0,
        &blocks,
        &bits(&expected),
    );
}
