//! The bit and number helpers the kernels share, written once: exact f16
//! scales, biased bytes, sign masks, 4-bit lookups and the k-quants' packed
//! 6-bit scales. `grids.rs` holds the lookup tables they read.

use half::f16;

/// Exact f16 to f32 conversion, inline for normal numbers (the common case,
/// a few integer operations) and through `half` for zeros, subnormals,
/// infinities and NaN. Per-block scales go through this: `half::f16::to_f32`
/// costs a call and a CPU-feature check per block.
#[inline(always)]
pub(crate) fn f16_to_f32(h: f16) -> f32 {
    let bits = u32::from(h.to_bits());
    let magnitude = bits & 0x7FFF;
    // Biased exponent 1..=30: rebias by 127 - 15 (0x3800_0000 after the shift).
    if magnitude.wrapping_sub(0x0400) < 0x7800 {
        f32::from_bits(((bits & 0x8000) << 16) | ((magnitude << 13) + 0x3800_0000))
    } else {
        f16_to_f32_rare(h)
    }
}

/// [`f16_to_f32`]'s path for zeros, subnormals, infinities and NaN, kept
/// out of line: inlined, `half`'s conversion (with its CPU-feature check)
/// makes every block kernel too large to inline into its loop, and the
/// call per block cost Q8_0 about a fifth of its rate.
#[cold]
#[inline(never)]
fn f16_to_f32_rare(h: f16) -> f32 {
    h.to_f32()
}

/// 2^23: `biased(q) - TWO_POW_23` is exactly `q` for any byte `q`.
pub(crate) const TWO_POW_23: f32 = 8_388_608.0;

/// `2^23 + q` as an f32, made by bit pattern: cheaper than an int-to-float
/// conversion after sign extension without SSE4.1, and exact. Subtracting
/// `TWO_POW_23 + offset` then gives `q - offset` exactly.
#[inline(always)]
pub(crate) fn biased(q: u8) -> f32 {
    f32::from_bits(0x4B00_0000 | u32::from(q))
}

/// Writes `scale * level`, the level negated where its `mask` byte is 0xff,
/// for each of the `levels` (unsigned, below 128) into `out` (same length).
///
/// `scale * -g` equals the reference's `(scale * g) * -1.0` bit for bit,
/// NaN included: rounding is symmetric and the only possible NaN is `scale`.
/// `(g ^ m) + (m & 1)` negates a byte without a branch.
#[inline(always)]
pub(crate) fn scale_signed(out: &mut [f32], scale: f32, levels: &[u8], mask: &[u8]) {
    for ((o, &g), &m) in out.iter_mut().zip(levels).zip(mask) {
        let level = (g ^ m).wrapping_add(m & 1) as i8;
        *o = scale * f32::from(level);
    }
}

/// `scale * k` for each of 16 levels `k`: the decoded values of a 4-bit code.
#[inline(always)]
pub(crate) fn scaled_levels(scale: f32, levels: &[i8; 16]) -> [f32; 16] {
    levels.map(|k| scale * f32::from(k))
}

/// Decodes a run of 4-bit codes through `table`: the low nibbles of `qs`
/// fill the first half of `out`, the high nibbles the second half
/// (`out.len() == 2 * qs.len()`), ggml's layout for IQ4_NL, IQ4_XS and FP4.
#[inline(always)]
pub(crate) fn lookup_nibbles(out: &mut [f32], qs: &[u8], table: &[f32; 16]) {
    let (lo, hi) = out.split_at_mut(qs.len());
    for ((&q, lo), hi) in qs.iter().zip(lo).zip(hi) {
        *lo = table[usize::from(q & 0x0f)];
        *hi = table[usize::from(q >> 4)];
    }
}

/// Decodes one block into a new vector (unit tests).
#[cfg(test)]
pub(crate) fn decode<B: super::Block>(block: &B) -> Vec<f32> {
    let mut out = vec![0f32; B::ELEMS];
    block.dequantize(&mut out);
    out
}

/// Splits the 12 packed bytes of Q4_K/Q5_K into 8 six-bit scales and 8
/// six-bit minimums (ggml's `get_scale_min_k4`, gguf-py 0.19.0's
/// `Q4_K.get_scale_min`):
///
/// ```text
///  0..4  EEAAAAAA  scales 0..4 in the low six bits, high bits of scale 4..8
///  4..8  eeaaaaaa  minimums 0..4, high bits of minimum 4..8
///  8..12 eeeeEEEE  low four bits of scale (low nibble) and minimum 4..8
/// ```
#[inline(always)]
pub(crate) fn scale_min_k4(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let sc = std::array::from_fn(|j| {
        if j < 4 {
            s[j] & 0x3F
        } else {
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30)
        }
    });
    let mn = std::array::from_fn(|j| {
        if j < 4 {
            s[j + 4] & 0x3F
        } else {
            (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30)
        }
    });
    (sc, mn)
}

/// Unpacks the 16 six-bit scales of Q3_K and removes their offset of 32
/// (gguf-py 0.19.0 `Q3_K.dequantize_blocks`, ggml's `kmask` shuffle):
///
/// ```text
///  0..8  low nibble: low four bits of scale j; high nibble: of scale j + 8
///  8..12 bits 2i..2i+2 of byte 8 + r: high two bits of scale 4i + r
/// ```
#[inline(always)]
pub(crate) fn q3_k_scales(s: &[u8; 12]) -> [i8; 16] {
    std::array::from_fn(|k| {
        let low = if k < 8 { s[k] & 0x0F } else { s[k - 8] >> 4 };
        let high = (s[8 + k % 4] >> (2 * (k / 4))) & 0x03;
        (low | (high << 4)) as i8 - 32
    })
}

#[cfg(test)]
mod tests {
    use crate::quant::grids::KVALUES_FP4;

    #[test]
    fn helpers_are_exact() {
        for bits in 0..=u16::MAX {
            let h = f16::from_bits(bits);
            let (ours, reference) = (f16_to_f32(h), h.to_f32());
            assert!(ours.to_bits() == reference.to_bits() || ours.is_nan() && reference.is_nan());
        }
        for q in 0..=u8::MAX {
            assert_eq!(biased(q) - TWO_POW_23, f32::from(q));
            assert_eq!(biased(q) - (TWO_POW_23 + 16.0), f32::from(q) - 16.0);
        }
    }

    #[test]
    fn scale_signed_negates_masked_levels() {
        let mut out = [0f32; 4];
        scale_signed(&mut out, 0.5, &[0x3e, 0x3e, 1, 127], &[0xff, 0, 0xff, 0xff]);
        assert_eq!(out, [-31.0, 31.0, -0.5, -63.5]);
    }

    #[test]
    fn lookup_nibbles_layout() {
        let table = scaled_levels(2.0, &KVALUES_FP4);
        let mut out = [0f32; 4];
        lookup_nibbles(&mut out, &[0x71, 0xf2], &table);
        assert_eq!(out, [2.0, 4.0, 24.0, -24.0]);
    }

    use super::*;

    #[test]
    fn scale_min_k4_layout() {
        // Scales 0..4 = 1, 2, 3, 4 with high bits 0b11 (-> scales 4..8 high bits 0x30).
        let s = [
            0xC1, 0xC2, 0xC3, 0xC4, 0x05, 0x06, 0x07, 0x48, 0x9A, 0x0B, 0xF0, 0x21,
        ];
        let (sc, mn) = scale_min_k4(&s);
        assert_eq!(sc, [1, 2, 3, 4, 0x3A, 0x3B, 0x30, 0x31]);
        assert_eq!(mn, [5, 6, 7, 8, 0x09, 0x00, 0x0F, 0x12]);
    }

    #[test]
    fn q3_k_scales_layout() {
        let mut s = [0u8; 12];
        s[0] = 0x5A; // scale 0 low = 0xA, scale 8 low = 0x5
        s[8] = 0b11_10_01_00; // scale 0 high 0, scale 4 high 1, scale 8 high 2, scale 12 high 3
        s[11] = 0b00_00_00_11; // scale 3 high = 3
        let sc = q3_k_scales(&s);
        assert_eq!(sc[0], 0x0A - 32);
        assert_eq!(sc[8], 0x25 - 32);
        assert_eq!(sc[4], 0x10 - 32);
        assert_eq!(sc[12], 0x30 - 32);
        assert_eq!(sc[3], 0x30 - 32);
        assert_eq!(sc[1], -32);
    }
}
