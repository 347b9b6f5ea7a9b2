//! The 1-bit importance quants: IQ1_S and IQ1_M.
//!
//! Every 8 elements are one entry of a grid of levels in {-1, 0, 1} (an
//! 11-bit index), shifted by a delta of ±0.125 and scaled per sub-block by
//! `d * (2 * s + 1)` for a 3-bit scale `s`.

use half::f16;

use super::bits::f16_to_f32;
use super::grids::IQ1S_GRID;
use super::{Block, ScaleField, ScaleKind};
use crate::dtype::GgmlType;

/// ggml's `IQ1S_DELTA` and `IQ1M_DELTA`.
const DELTA: f32 = 0.125;

/// `DELTA`, negated when `sign_bit` (0 or 1) is 1; built from bits, as a
/// data-dependent branch here mispredicts on every other group.
#[inline(always)]
fn delta(sign_bit: u32) -> f32 {
    f32::from_bits(DELTA.to_bits() | (sign_bit << 31))
}

/// Writes `scale * (level + delta)` for the 8 levels of grid entry `index`
/// into `out` (8 long).
#[inline(always)]
fn iq1_levels(out: &mut [f32], scale: f32, index: usize, delta: f32) {
    for (o, &level) in out.iter_mut().zip(&IQ1S_GRID[index & 0x7ff]) {
        *o = scale * (f32::from(level as i8) + delta);
    }
}

/// `d * (2 * s + 1)` for the 3-bit scale `s`.
#[inline(always)]
fn iq1_scale(d: f32, s: u16) -> f32 {
    d * f32::from(2 * (s & 7) + 1)
}

/// An IQ1_S super-block of 256 elements (1.56 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ1_S {
    /// Super-block scale.
    pub d: f16,
    /// Low 8 bits of the 11-bit grid indices.
    pub qs: [u8; 32],
    /// Per sub-block of 32: four 3-bit index highs, the 3-bit scale in bits
    /// 12..15 and the delta's sign in bit 15.
    pub qh: [u16; 8],
}

impl Block for BlockIQ1_S {
    const TYPE: GgmlType = GgmlType::IQ1_S;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.IQ1_S.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let sub_blocks = self.qs.chunks_exact(4).zip(&self.qh);
        for ((qs, &qh), out) in sub_blocks.zip(out.chunks_exact_mut(32)) {
            let dl = iq1_scale(d, qh >> 12);
            let delta = delta(u32::from(qh >> 15));
            for (l, (&q, out)) in qs.iter().zip(out.chunks_exact_mut(8)).enumerate() {
                let index = usize::from(q) | (usize::from(qh >> (3 * l) & 7) << 8);
                iq1_levels(out, dl, index, delta);
            }
        }
    }
}

/// An IQ1_M super-block of 256 elements (1.75 bits per weight).
///
/// It has no `d` field: the f16 super-block scale is spread over the top
/// nibbles of the four `u16` of `scales`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ1_M {
    /// Low 8 bits of the 11-bit grid indices.
    pub qs: [u8; 32],
    /// Per 16 elements, a nibble each for two groups of 8: the 3 high index
    /// bits and the delta's sign in bit 3.
    pub qh: [u8; 16],
    /// Four little-endian `u16`: four 3-bit scales (one per 16 elements) in
    /// the low 12 bits, a nibble of the f16 super-block scale in the top 4.
    pub scales: [u8; 8],
}

impl BlockIQ1_M {
    /// The four scale words.
    fn scale_words(&self) -> [u16; 4] {
        let s = &self.scales;
        [0, 2, 4, 6].map(|i| u16::from_le_bytes([s[i], s[i + 1]]))
    }

    /// The super-block scale, gathered from the top nibbles of the scale words.
    pub fn d(&self) -> f16 {
        let [s0, s1, s2, s3] = self.scale_words();
        f16::from_bits((s0 >> 12) | ((s1 >> 8) & 0x00f0) | ((s2 >> 4) & 0x0f00) | (s3 & 0xf000))
    }
}

impl Block for BlockIQ1_M {
    const TYPE: GgmlType = GgmlType::IQ1_M;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(48, ScaleKind::Iq1mScaleNibbles)];

    // Matches gguf-py 0.19.0 quants.IQ1_M.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d());
        let words = self.scale_words();
        // Sixteen groups of 16 elements, each two grid entries with one scale.
        let groups = self.qs.chunks_exact(2).zip(&self.qh);
        for (g, ((qs, &qh), out)) in groups.zip(out.chunks_exact_mut(16)).enumerate() {
            let dl = iq1_scale(d, words[g / 4] >> (3 * (g % 4)));
            let (first, second) = out.split_at_mut(8);
            let index = |q: u8, high: u8| usize::from(q) | (usize::from(high & 7) << 8);
            iq1_levels(first, dl, index(qs[0], qh), delta(u32::from(qh >> 3) & 1));
            iq1_levels(second, dl, index(qs[1], qh >> 4), delta(u32::from(qh >> 7)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::bits::decode;

    #[test]
    fn iq1_s_hand_vector() {
        let mut b = BlockIQ1_S {
            d: f16::from_f32(2.0),
            qs: [0; 32],
            qh: [0; 8],
        };
        // Sub-block 0: scale 1 (dl = 6), negative delta, group 1 index 0x7ff.
        b.qs[1] = 0xff;
        b.qh[0] = 0x8000 | (1 << 12) | (7 << 3);
        let out = decode(&b);
        // Grid entry 0 is all -1; entry 0x7ff is all +1.
        assert_eq!(&out[..8], &[6.0 * -1.125; 8]);
        assert_eq!(&out[8..16], &[6.0 * 0.875; 8]);
        // Sub-block 1: scale 0 (dl = 2), positive delta.
        assert_eq!(out[32], 2.0 * -0.875);
    }

    #[test]
    fn iq1_m_hand_vector() {
        let d = f16::from_f32(0.5).to_bits();
        let mut words = [0u16; 4];
        for (k, w) in words.iter_mut().enumerate() {
            *w = ((d >> (4 * k)) & 0xf) << 12;
        }
        words[0] |= 2 << 3; // group 1 (elements 16..32): scale 2, dl = 2.5
        let mut b = BlockIQ1_M {
            qs: [0; 32],
            qh: [0; 16],
            scales: [0; 8],
        };
        for (k, w) in words.iter().enumerate() {
            b.scales[2 * k..2 * k + 2].copy_from_slice(&w.to_le_bytes());
        }
        b.qs[3] = 0xff;
        b.qh[1] = 0x70 | 0x08; // second entry of group 1: index 0x7ff; first: negative delta
        assert_eq!(b.d().to_f32(), 0.5);
        let out = decode(&b);
        assert_eq!(&out[..8], &[0.5 * -0.875; 8]);
        assert_eq!(&out[16..24], &[2.5 * -1.125; 8]);
        assert_eq!(&out[24..32], &[2.5 * 1.125; 8]);
    }

    #[test]
    fn nan_scale_passes_through() {
        let b = BlockIQ1_S {
            d: f16::NAN,
            qs: [0; 32],
            qh: [0; 8],
        };
        assert!(decode(&b).iter().all(|v| v.is_nan()));
    }
}
