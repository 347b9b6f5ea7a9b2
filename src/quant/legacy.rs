//! The legacy block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1, blocks
//! of 32 elements with one f16 scale (and, for the `_1` kinds, an f16
//! minimum or sum).
//!
//! Layouts are ggml's `ggml-common.h`. Every kernel evaluates the same
//! floating-point operations, in the same order, as the reference it names,
//! so results are bit-identical; none is fused into a multiply-add.

use half::f16;

use super::bits::{f16_to_f32, TWO_POW_23};
use super::{Block, ScaleField, ScaleKind};
use crate::dtype::GgmlType;

/// Q4_0: 32 four-bit values `q` and a scale `d`; `x = d * (q - 8)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Values: byte `j` holds element `j` in its low nibble and `j + 16` in its high nibble.
    pub qs: [u8; 16],
}

/// Q4_1: 32 four-bit values `q`, a scale `d` and a minimum `m`; `x = d * q + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Values, packed as in [`BlockQ4_0`].
    pub qs: [u8; 16],
}

/// Q5_0: 32 five-bit values `q` and a scale `d`; `x = d * (q - 16)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits: bit `j` of this native-endian `u32` belongs to element `j`.
    pub qh: [u8; 4],
    /// Low four bits, packed as in [`BlockQ4_0`].
    pub qs: [u8; 16],
}

/// Q5_1: 32 five-bit values `q`, a scale `d` and a minimum `m`; `x = d * q + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Fifth bits, as in [`BlockQ5_0`].
    pub qh: [u8; 4],
    /// Low four bits, packed as in [`BlockQ4_0`].
    pub qs: [u8; 16],
}

/// Q8_0: 32 signed bytes `q` and a scale `d`; `x = d * q`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Values.
    pub qs: [i8; 32],
}

/// Q8_1: as [`BlockQ8_0`] plus `s = d * sum(q)`, which only matrix
/// products use; `x = d * q`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// `d` times the sum of the values (ignored by dequantization).
    pub s: f16,
    /// Values.
    pub qs: [i8; 32],
}

/// Element `j` and `j + 16` of a 4-bit block, from byte `j` of its values.
#[inline(always)]
fn nibbles(q: u8) -> (u8, u8) {
    (q & 0x0F, q >> 4)
}

/// The two values of a 5-bit block at lanes `j` and `j + 16` as `2^23 + q`
/// (see [`biased`](super::bits::biased)): the nibbles of byte `q` and bits `j`, `j + 16` of `qh`.
/// The fifth bit is tested against a per-lane constant mask and merged in
/// 32-bit lanes, which vectorizes well (a per-lane shift does not).
#[inline(always)]
fn biased5(q: u8, qh: u32, j: usize) -> (f32, f32) {
    let ha: u32 = if qh & (1 << j) != 0 { 16 } else { 0 };
    let hb: u32 = if qh & (1 << (j + 16)) != 0 { 16 } else { 0 };
    (
        f32::from_bits(0x4B00_0000 | u32::from(q & 0x0F) | ha),
        f32::from_bits(0x4B00_0000 | u32::from(q >> 4) | hb),
    )
}

impl Block for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q4_0.dequantize_blocks: d * f32(q - 8).
        let d = f16_to_f32(self.d);
        let (lo, hi) = out[..32].split_at_mut(16);
        for ((lo, hi), &q) in lo.iter_mut().zip(hi).zip(&self.qs) {
            let (a, b) = nibbles(q);
            *lo = d * f32::from(a as i8 - 8);
            *hi = d * f32::from(b as i8 - 8);
        }
    }
}

impl Block for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const SCALES: &'static [ScaleField] = &[
        ScaleField::at(0, ScaleKind::F16),
        ScaleField::at(2, ScaleKind::F16),
    ];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q4_1.dequantize_blocks: (d * f32(q)) + m.
        let (d, m) = (f16_to_f32(self.d), f16_to_f32(self.m));
        let (lo, hi) = out[..32].split_at_mut(16);
        for ((lo, hi), &q) in lo.iter_mut().zip(hi).zip(&self.qs) {
            let (a, b) = nibbles(q);
            *lo = d * f32::from(a) + m;
            *hi = d * f32::from(b) + m;
        }
    }
}

impl Block for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q5_0.dequantize_blocks: d * f32(q - 16).
        let d = f16_to_f32(self.d);
        let qh = u32::from_ne_bytes(self.qh);
        let (lo, hi) = out[..32].split_at_mut(16);
        for (j, ((lo, hi), &q)) in lo.iter_mut().zip(hi).zip(&self.qs).enumerate() {
            let (a, b) = biased5(q, qh, j);
            *lo = d * (a - (TWO_POW_23 + 16.0));
            *hi = d * (b - (TWO_POW_23 + 16.0));
        }
    }
}

impl Block for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const SCALES: &'static [ScaleField] = &[
        ScaleField::at(0, ScaleKind::F16),
        ScaleField::at(2, ScaleKind::F16),
    ];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q5_1.dequantize_blocks: (d * f32(q)) + m.
        let (d, m) = (f16_to_f32(self.d), f16_to_f32(self.m));
        let qh = u32::from_ne_bytes(self.qh);
        let (lo, hi) = out[..32].split_at_mut(16);
        for (j, ((lo, hi), &q)) in lo.iter_mut().zip(hi).zip(&self.qs).enumerate() {
            let (a, b) = biased5(q, qh, j);
            *lo = d * (a - TWO_POW_23) + m;
            *hi = d * (b - TWO_POW_23) + m;
        }
    }
}

/// `out[j] = d * q[j]`: the whole of Q8_0 and Q8_1.
#[inline(always)]
fn scale_i8(d: f32, qs: &[i8; 32], out: &mut [f32]) {
    for (o, &q) in out[..32].iter_mut().zip(qs) {
        *o = d * f32::from(q);
    }
}

impl Block for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q8_0.dequantize_blocks: f32(q) * d.
        scale_i8(f16_to_f32(self.d), &self.qs, out);
    }
}

impl Block for BlockQ8_1 {
    const TYPE: GgmlType = GgmlType::Q8_1;
    const SCALES: &'static [ScaleField] = &[
        ScaleField::at(0, ScaleKind::F16),
        ScaleField::at(2, ScaleKind::F16),
    ];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches ggml's C semantics (gguf-py 0.19.0 has no Q8_1, and the
        // ggml-quants.c vendored by llama-cpp-python 0.3.36, commit 0c1e570,
        // no dequantize_row_q8_1): d * q as Q8_0, `s` unused; candle's
        // to_float for Q8_1 agrees.
        scale_i8(f16_to_f32(self.d), &self.qs, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: f32) -> f16 {
        f16::from_f32(x)
    }

    fn run<B: Block>(block: &B) -> Vec<f32> {
        let mut out = vec![0f32; B::ELEMS];
        block.dequantize(&mut out);
        out
    }

    /// Packs 32 nibbles (element `j` and `j + 16` share byte `j`).
    fn pack4(q: &[u8; 32]) -> [u8; 16] {
        std::array::from_fn(|j| (q[j] & 0xF) | (q[j + 16] << 4))
    }

    fn ramp<const N: usize>(modulo: u8) -> [u8; N] {
        std::array::from_fn(|j| (j as u8 * 7 + 3) % modulo)
    }

    #[test]
    fn q4_0() {
        let q: [u8; 32] = ramp(16);
        let out = run(&BlockQ4_0 {
            d: h(0.5),
            qs: pack4(&q),
        });
        for j in 0..32 {
            assert_eq!(out[j], 0.5 * (f32::from(q[j]) - 8.0), "element {j}");
        }
        // Byte 0x8F: element 0 = 15 - 8 = 7, element 16 = 8 - 8 = 0.
        let mut qs = [0u8; 16];
        qs[0] = 0x8F;
        let out = run(&BlockQ4_0 { d: h(-2.0), qs });
        assert_eq!((out[0], out[16], out[1]), (-14.0, -0.0, 16.0));
    }

    #[test]
    fn q4_1() {
        let q: [u8; 32] = ramp(16);
        let out = run(&BlockQ4_1 {
            d: h(0.25),
            m: h(-1.5),
            qs: pack4(&q),
        });
        for j in 0..32 {
            assert_eq!(out[j], 0.25 * f32::from(q[j]) - 1.5, "element {j}");
        }
    }

    #[test]
    fn q5_0_and_q5_1() {
        let q: [u8; 32] = ramp(32);
        let qh = (0..32).fold(0u32, |acc, j| acc | (u32::from(q[j] >> 4) << j));
        let qs = pack4(&q);
        let out = run(&BlockQ5_0 {
            d: h(0.5),
            qh: qh.to_ne_bytes(),
            qs,
        });
        for j in 0..32 {
            assert_eq!(out[j], 0.5 * (f32::from(q[j]) - 16.0), "element {j}");
        }
        let out = run(&BlockQ5_1 {
            d: h(2.0),
            m: h(0.125),
            qh: qh.to_ne_bytes(),
            qs,
        });
        for j in 0..32 {
            assert_eq!(out[j], 2.0 * f32::from(q[j]) + 0.125, "element {j}");
        }
        // Only the top bit of element 31 set: q = 16, x = 0.5 * 0 for Q5_0.
        let out = run(&BlockQ5_0 {
            d: h(0.5),
            qh: (1u32 << 31).to_ne_bytes(),
            qs: [0; 16],
        });
        assert_eq!((out[31], out[15]), (0.0, -8.0));
    }

    #[test]
    fn q8_0_and_q8_1() {
        let qs: [i8; 32] = std::array::from_fn(|j| (j as i8 - 16) * 8);
        let out = run(&BlockQ8_0 { d: h(0.5), qs });
        for j in 0..32 {
            assert_eq!(out[j], 0.5 * f32::from(qs[j]), "element {j}");
        }
        // Q8_1 ignores `s`: any value, NaN included, gives the Q8_0 result.
        let out1 = run(&BlockQ8_1 {
            d: h(0.5),
            s: f16::NAN,
            qs,
        });
        assert_eq!(out1, out);
        let out1 = run(&BlockQ8_1 {
            d: h(-3.0),
            s: h(7.0),
            qs: [-128; 32],
        });
        assert!(out1.iter().all(|&x| x == 384.0));
    }

    #[test]
    fn non_finite_scales_pass_through() {
        let qs = pack4(&ramp(16));
        let out = run(&BlockQ4_0 { d: f16::NAN, qs });
        assert!(out.iter().all(|x| x.is_nan()));
        let out = run(&BlockQ4_1 {
            d: h(1.0),
            m: f16::NAN,
            qs,
        });
        assert!(out.iter().all(|x| x.is_nan()));
        // inf * 0 is NaN, inf * (q - 8) is +-inf elsewhere, as in numpy.
        let out = run(&BlockQ4_0 {
            d: f16::INFINITY,
            qs: pack4(&[8; 32]),
        });
        assert!(out.iter().all(|x| x.is_nan()));
        let out = run(&BlockQ8_0 {
            d: f16::NEG_INFINITY,
            qs: [1; 32],
        });
        assert!(out.iter().all(|&x| x == f32::NEG_INFINITY));
        let out = run(&BlockQ5_1 {
            d: f16::INFINITY,
            m: h(0.0),
            qh: [0xFF; 4],
            qs: [0xFF; 16],
        });
        assert!(out.iter().all(|&x| x == f32::INFINITY));
    }
}
