//! The k-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K, super-blocks of 256
//! elements with per-sub-block scales (and minimums) under f16 super-scales.
//!
//! Layouts are ggml's `ggml-common.h`. Every kernel evaluates the same
//! floating-point operations, in the same order, as the reference it names,
//! so results are bit-identical; none is fused into a multiply-add. The
//! packed sub-block scales are unpacked once per block by the helpers in
//! `kquants_scales`.

use half::f16;

use super::bits::{biased, f16_to_f32, q3_k_scales, scale_min_k4, TWO_POW_23};
use super::{Block, ScaleField, ScaleKind};
use crate::dtype::GgmlType;

/// Elements of a k-quant super-block (ggml's `QK_K`).
const QK_K: usize = 256;

/// Q2_K: 2-bit values in 16 sub-blocks of 16, each with a 4-bit scale and
/// a 4-bit minimum; `x = (d * sc) * q - (dmin * m)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ2_K {
    /// Sub-block scales (low nibble) and minimums (high nibble).
    pub scales: [u8; QK_K / 16],
    /// Values: 32-byte groups, each holding 4 runs of 32 elements at bit
    /// offsets 0, 2, 4, 6.
    pub qs: [u8; QK_K / 4],
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
}

/// Q3_K: 3-bit values in 16 sub-blocks of 16 with 6-bit signed scales;
/// `x = (d * (sc - 32)) * (q - 4 * !hbit)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ3_K {
    /// Third bits: bit `j` of byte `l` belongs to element `32 * j + l`
    /// (a clear bit subtracts 4).
    pub hmask: [u8; QK_K / 8],
    /// Low two bits, packed as in [`BlockQ2_K`].
    pub qs: [u8; QK_K / 4],
    /// Sixteen 6-bit scales, packed.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}

/// Q4_K: 4-bit values in 8 sub-blocks of 32, each with a 6-bit scale and a
/// 6-bit minimum; `x = (d * sc) * q - (dmin * m)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit minimums, packed.
    pub scales: [u8; 12],
    /// Values: 32-byte groups, low nibbles one sub-block, high nibbles the next.
    pub qs: [u8; QK_K / 2],
}

/// Q5_K: 5-bit values in 8 sub-blocks of 32, scaled as in [`BlockQ4_K`].
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ5_K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the minimums.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit minimums, packed as in [`BlockQ4_K`].
    pub scales: [u8; 12],
    /// Fifth bits: bit `j` of byte `l` belongs to element `32 * j + l`.
    pub qh: [u8; QK_K / 8],
    /// Low four bits, packed as in [`BlockQ4_K`].
    pub qs: [u8; QK_K / 2],
}

/// Q6_K: 6-bit values in 16 sub-blocks of 16 with 8-bit signed scales;
/// `x = (d * sc) * (q - 32)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ6_K {
    /// Low four bits: 64-byte groups, low nibbles 64 elements, high nibbles the next 64.
    pub ql: [u8; QK_K / 2],
    /// High two bits, packed as the values of [`BlockQ2_K`].
    pub qh: [u8; QK_K / 4],
    /// Sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

/// Q8_K: 256 signed bytes and an f32 scale; `x = d * q`. The block sums
/// serve matrix products only.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ8_K {
    /// Scale.
    pub d: f32,
    /// Values.
    pub qs: [i8; QK_K],
    /// Sums of each run of 16 values (ignored by dequantization).
    pub bsums: [i16; QK_K / 16],
}

impl Block for BlockQ2_K {
    const TYPE: GgmlType = GgmlType::Q2_K;
    const SCALES: &'static [ScaleField] = &[
        ScaleField::at(80, ScaleKind::F16),
        ScaleField::at(82, ScaleKind::F16),
    ];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q2_K.dequantize_blocks:
        // (d * f32(sc & 15)) * f32(q) - (dmin * f32(sc >> 4)).
        let (d, dmin) = (f16_to_f32(self.d), f16_to_f32(self.dmin));
        let dl: [f32; 16] = std::array::from_fn(|k| d * f32::from(self.scales[k] & 0xF));
        let ml: [f32; 16] = std::array::from_fn(|k| dmin * f32::from(self.scales[k] >> 4));
        let out = &mut out[..QK_K];
        for (k, out) in out.chunks_exact_mut(16).enumerate() {
            // Sub-block k: group k / 8, shift 2 * (k / 2 % 4), bytes 16 * (k % 2)..
            let (dl, ml, shift) = (dl[k], ml[k], 2 * (k / 2 % 4));
            let start = k / 8 * 32 + k % 2 * 16;
            let qs = &self.qs[start..start + 16];
            for (o, &q) in out.iter_mut().zip(qs) {
                *o = dl * f32::from((q >> shift) & 3) - ml;
            }
        }
    }
}

impl Block for BlockQ3_K {
    const TYPE: GgmlType = GgmlType::Q3_K;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(108, ScaleKind::F16)];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q3_K.dequantize_blocks:
        // (d * f32(sc - 32)) * f32(i8(ql) - i8((hbit ^ 1) << 2)).
        let d = f16_to_f32(self.d);
        let scales = q3_k_scales(&self.scales);
        let dl: [f32; 16] = std::array::from_fn(|k| d * f32::from(scales[k]));
        let out = &mut out[..QK_K];
        for (k, out) in out.chunks_exact_mut(16).enumerate() {
            // Element 16k + l: low bits as in Q2_K, third bit k / 2 of hmask[16 * (k % 2) + l].
            let (dl, shift, hshift) = (dl[k], 2 * (k / 2 % 4), k / 2);
            let start = k / 8 * 32 + k % 2 * 16;
            let qs = &self.qs[start..start + 16];
            let hm = &self.hmask[k % 2 * 16..k % 2 * 16 + 16];
            for ((o, &q), &h) in out.iter_mut().zip(qs).zip(hm) {
                let low = ((q >> shift) & 3) as i8;
                let sub = ((((h >> hshift) & 1) ^ 1) << 2) as i8;
                *o = dl * f32::from(low - sub);
            }
        }
    }
}

/// Q4_K and Q5_K's eight sub-block scales and mins, each already multiplied
/// by its super-block factor (`d * sc`, `dmin * m`), as the reference
/// computes them before touching the quants.
#[inline]
pub(super) fn sub_block_scales(scales: &[u8; 12], d: f16, dmin: f16) -> ([f32; 8], [f32; 8]) {
    let (sc, mn) = scale_min_k4(scales);
    let (d, dmin) = (f16_to_f32(d), f16_to_f32(dmin));
    (
        std::array::from_fn(|j| d * f32::from(sc[j])),
        std::array::from_fn(|j| dmin * f32::from(mn[j])),
    )
}

/// `out[l] = d * q[l] - m`, the reference's order of operations.
#[inline(always)]
fn scale_min(q: &[u8; 32], d: f32, m: f32, out: &mut [f32]) {
    for (o, &q) in out[..32].iter_mut().zip(q) {
        *o = d * f32::from(q) - m;
    }
}

impl Block for BlockQ4_K {
    const TYPE: GgmlType = GgmlType::Q4_K;
    const SCALES: &'static [ScaleField] = &[
        ScaleField::at(0, ScaleKind::F16),
        ScaleField::at(2, ScaleKind::F16),
    ];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q4_K.dequantize_blocks:
        // (d * f32(sc)) * f32(q) - (dmin * f32(m)).
        let (dl, ml) = sub_block_scales(&self.scales, self.d, self.dmin);
        let out = &mut out[..QK_K];
        for (i, (out, qs)) in out
            .chunks_exact_mut(64)
            .zip(self.qs.chunks_exact(32))
            .enumerate()
        {
            let (lo, hi) = out.split_at_mut(32);
            let (d1, m1, d2, m2) = (dl[2 * i], ml[2 * i], dl[2 * i + 1], ml[2 * i + 1]);
            for ((lo, hi), &q) in lo.iter_mut().zip(hi).zip(qs) {
                *lo = d1 * f32::from(q & 0xF) - m1;
                *hi = d2 * f32::from(q >> 4) - m2;
            }
        }
    }
}

impl Block for BlockQ5_K {
    const TYPE: GgmlType = GgmlType::Q5_K;
    const SCALES: &'static [ScaleField] = &[
        ScaleField::at(0, ScaleKind::F16),
        ScaleField::at(2, ScaleKind::F16),
    ];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q5_K.dequantize_blocks:
        // (d * f32(sc)) * f32(ql | hbit << 4) - (dmin * f32(m)).
        let (dl, ml) = sub_block_scales(&self.scales, self.d, self.dmin);
        let out = &mut out[..QK_K];
        for (i, (out, qs)) in out
            .chunks_exact_mut(64)
            .zip(self.qs.chunks_exact(32))
            .enumerate()
        {
            let (lo, hi) = out.split_at_mut(32);
            let (d1, m1, d2, m2) = (dl[2 * i], ml[2 * i], dl[2 * i + 1], ml[2 * i + 1]);
            let (b1, b2) = (1u8 << (2 * i), 2u8 << (2 * i));
            // The values first, sixteen bytes to a vector, then their scaling.
            let mut low = [0u8; 32];
            let mut high = [0u8; 32];
            for (((low, high), &q), &h) in low.iter_mut().zip(&mut high).zip(qs).zip(&self.qh) {
                *low = (q & 0xF) | if h & b1 != 0 { 16 } else { 0 };
                *high = (q >> 4) | if h & b2 != 0 { 16 } else { 0 };
            }
            scale_min(&low, d1, m1, lo);
            scale_min(&high, d2, m2, hi);
        }
    }
}

impl Block for BlockQ6_K {
    const TYPE: GgmlType = GgmlType::Q6_K;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(208, ScaleKind::F16)];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q6_K.dequantize_blocks:
        // (d * f32(sc)) * f32(i8(ql | qh << 4) - 32).
        let d = f16_to_f32(self.d);
        let dl: [f32; 16] = std::array::from_fn(|k| d * f32::from(self.scales[k]));
        const OFFSET: f32 = TWO_POW_23 + 32.0;
        let out = &mut out[..QK_K];
        // Half g, lane l < 32: ql[64g + l] gives runs 0 and 2, ql[64g + 32 + l]
        // runs 1 and 3 (low, high nibble); qh[32g + l] bits 2j the run j.
        for (g, out) in out.chunks_exact_mut(128).enumerate() {
            let (o01, o23) = out.split_at_mut(64);
            let (o0, o1) = o01.split_at_mut(32);
            let (o2, o3) = o23.split_at_mut(32);
            for h in 0..2 {
                let r = 16 * h..16 * h + 16;
                let (a, b) = (
                    &self.ql[64 * g..][r.clone()],
                    &self.ql[64 * g + 32..][r.clone()],
                );
                let c = &self.qh[32 * g..][r.clone()];
                let s = &dl[8 * g + h..];
                let (s0, s1, s2, s3) = (s[0], s[2], s[4], s[6]);
                let (o0, o1) = (&mut o0[r.clone()], &mut o1[r.clone()]);
                let (o2, o3) = (&mut o2[r.clone()], &mut o3[r]);
                for l in 0..16 {
                    let (x, y, z) = (a[l], b[l], c[l]);
                    o0[l] = s0 * (biased((x & 0xF) | ((z & 3) << 4)) - OFFSET);
                    o1[l] = s1 * (biased((y & 0xF) | (((z >> 2) & 3) << 4)) - OFFSET);
                    o2[l] = s2 * (biased((x >> 4) | (((z >> 4) & 3) << 4)) - OFFSET);
                    o3[l] = s3 * (biased((y >> 4) | ((z >> 6) << 4)) - OFFSET);
                }
            }
        }
    }
}

impl Block for BlockQ8_K {
    const TYPE: GgmlType = GgmlType::Q8_K;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F32)];

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches ggml's C dequantize_row_q8_K (ggml-quants.c vendored by
        // llama-cpp-python 0.3.36; gguf-py 0.19.0 has no Q8_K): d * q.
        let d = self.d;
        for (o, &q) in out[..QK_K].iter_mut().zip(&self.qs) {
            *o = d * f32::from(q);
        }
    }
}

#[cfg(test)]
mod tests;
