//! The ternary quants: TQ1_0 and TQ2_0, levels {-1, 0, 1} times one scale.

use half::f16;

use super::bits::f16_to_f32;
use super::{Block, ScaleField, ScaleKind};
use crate::dtype::GgmlType;

/// `code - 1` as f32, for a code below 2^22: the bits `0x4b40_0000 | code`
/// are the float `1.5 * 2^23 + code`, so one exact subtraction converts it.
#[inline(always)]
fn level_f32(code: u32) -> f32 {
    f32::from_bits(0x4b40_0000 | code) - 12_582_913.0
}

/// Splits `out` into its first `N` rows of `len` values.
///
/// # Panics
/// If `out` is shorter than `N * len` (the kernels pass whole blocks).
#[inline(always)]
fn rows<const N: usize>(out: &mut [f32], len: usize) -> [&mut [f32]; N] {
    let mut rest = out;
    std::array::from_fn(|_| {
        let (row, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        row
    })
}

/// Writes `d * (trit - 1)` for the first `digits` base-3 digits of each
/// byte of `qs` (at most 32 bytes): digit `n` of byte `m` goes to
/// `out[n * qs.len() + m]`.
///
/// A byte is a fixed-point fraction `q / 256`; digit `n` is the integer
/// part of `3 * frac(q * 3^n / 256)`, i.e. `((q * 3^n mod 256) * 3) >> 8`
/// as ggml and gguf-py compute it with wrapping `u8` products. Stepping
/// each fraction by `* 3 mod 256` gives the same values with one multiply
/// per digit, and keeps the fractions in registers between digits.
#[inline(always)]
pub(super) fn tq1_digits(out: &mut [f32], qs: &[u8], d: f32, digits: usize) {
    let mut frac = [0u32; 32];
    let frac = &mut frac[..qs.len()];
    for (f, &q) in frac.iter_mut().zip(qs) {
        *f = u32::from(q);
    }
    for row in out.chunks_exact_mut(qs.len()).take(digits) {
        for (o, f) in row.iter_mut().zip(frac.iter_mut()) {
            let frac3 = *f * 3;
            *o = d * level_f32(frac3 >> 8);
            *f = frac3 & 0xff;
        }
    }
}

/// A TQ1_0 super-block of 256 elements (1.69 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockTQ1_0 {
    /// Five base-3 digits per byte: 32 bytes for elements 0..160, 16 for
    /// 160..240.
    pub qs: [u8; 48],
    /// Four base-3 digits per byte, for elements 240..256.
    pub qh: [u8; 4],
    /// Super-block scale.
    pub d: f16,
}

impl Block for BlockTQ1_0 {
    const TYPE: GgmlType = GgmlType::TQ1_0;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(52, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.TQ1_0.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let (qs0, qs1) = self.qs.split_at(32);
        let (out0, rest) = out.split_at_mut(160);
        let (out1, out2) = rest.split_at_mut(80);
        tq1_digits(out0, qs0, d, 5);
        tq1_digits(out1, qs1, d, 5);
        tq1_digits(out2, &self.qh, d, 4);
    }
}

/// A TQ2_0 super-block of 256 elements (2.06 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockTQ2_0 {
    /// 2-bit codes (level + 1); in each run of 32 bytes, bits `2l..2l+2` of
    /// byte `m` are element `32l + m` of that run's 128.
    pub qs: [u8; 64],
    /// Super-block scale.
    pub d: f16,
}

impl Block for BlockTQ2_0 {
    const TYPE: GgmlType = GgmlType::TQ2_0;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(64, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.TQ2_0.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for (qs, out) in self.qs.chunks_exact(32).zip(out.chunks_exact_mut(128)) {
            // Widen each byte once for its four codes (rows of 32); measured
            // faster here than a pass per code, unlike TQ1_0.
            let mut rows = rows::<4>(out, 32);
            for (m, &q) in qs.iter().enumerate() {
                for (l, row) in rows.iter_mut().enumerate() {
                    let level = ((i32::from(q) >> (2 * l)) & 3) - 1;
                    row[m] = d * level as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::bits::decode;

    /// Packs trits (0, 1, 2) into a byte as ggml's quantizer does.
    fn pack(trits: &[u8]) -> u8 {
        let x = trits.iter().fold(0u16, |acc, &t| acc * 3 + u16::from(t));
        let x = x * 3u16.pow(5 - trits.len() as u32);
        (x * 256).div_ceil(243) as u8
    }

    #[test]
    fn tq1_0_hand_vector() {
        let mut b = BlockTQ1_0 {
            qs: [pack(&[1; 5]); 48],
            qh: [pack(&[1; 4]); 4],
            d: f16::from_f32(3.0),
        };
        b.qs[0] = pack(&[2, 0, 1, 2, 0]); // elements 0, 32, 64, 96, 128
        b.qs[32] = pack(&[0, 2, 1, 1, 2]); // elements 160, 176, 192, 208, 224
        b.qh[3] = pack(&[2, 0, 2, 0]); // elements 243, 247, 251, 255
        let out = decode(&b);
        assert_eq!(
            [out[0], out[32], out[64], out[96], out[128]],
            [3.0, -3.0, 0.0, 3.0, -3.0]
        );
        assert_eq!(
            [out[160], out[176], out[192], out[208], out[224]],
            [-3.0, 3.0, 0.0, 0.0, 3.0]
        );
        assert_eq!(
            [out[243], out[247], out[251], out[255]],
            [3.0, -3.0, 3.0, -3.0]
        );
        assert_eq!(out[1], 0.0);
        assert_eq!(out[240], 0.0);
    }

    #[test]
    fn tq2_0_hand_vector() {
        let mut b = BlockTQ2_0 {
            qs: [0x55; 64],
            d: f16::from_f32(-0.5),
        };
        b.qs[1] = 0b11_10_00_01; // elements 1, 33, 65, 97: 0, -1, +1, +2
        b.qs[32] = 0b00_01_01_11; // elements 128, 160, 192, 224: +2, 0, 0, -1
        let out = decode(&b);
        assert_eq!([out[1], out[33], out[65], out[97]], [-0.0, 0.5, -0.5, -1.0]);
        assert_eq!(
            [out[128], out[160], out[192], out[224]],
            [-1.0, -0.0, -0.0, 0.5]
        );
        assert!(out[0].is_sign_negative() && out[0] == 0.0);
    }

    #[test]
    fn nan_scale_passes_through() {
        let b = BlockTQ2_0 {
            qs: [0xe4; 64],
            d: f16::NAN,
        };
        assert!(decode(&b).iter().all(|v| v.is_nan()));
        let b = BlockTQ1_0 {
            qs: [7; 48],
            qh: [9; 4],
            d: f16::NAN,
        };
        assert!(decode(&b).iter().all(|v| v.is_nan()));
    }
}
