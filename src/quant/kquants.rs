//! The k-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K, super-blocks of 256
//! elements with per-sub-block scales (and minimums) under f16 super-scales.
//!
//! Layouts are ggml's `ggml-common.h`. Every kernel evaluates the same
//! floating-point operations, in the same order, as the reference it names,
//! so results are bit-identical; none is fused into a multiply-add. The
//! packed sub-block scales are unpacked once per block by the helpers in
//! `kquants_scales`.

use half::f16;

use super::kquants_scales::{q3_k_scales, scale_min_k4};
use super::Block;
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
const _: () = assert!(std::mem::size_of::<BlockQ2_K>() == GgmlType::Q2_K.bytes_per_block());

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
const _: () = assert!(std::mem::size_of::<BlockQ3_K>() == GgmlType::Q3_K.bytes_per_block());

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
const _: () = assert!(std::mem::size_of::<BlockQ4_K>() == GgmlType::Q4_K.bytes_per_block());

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
const _: () = assert!(std::mem::size_of::<BlockQ5_K>() == GgmlType::Q5_K.bytes_per_block());

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
const _: () = assert!(std::mem::size_of::<BlockQ6_K>() == GgmlType::Q6_K.bytes_per_block());

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
const _: () = assert!(std::mem::size_of::<BlockQ8_K>() == GgmlType::Q8_K.bytes_per_block());

impl Block for BlockQ2_K {
    const TYPE: GgmlType = GgmlType::Q2_K;

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q2_K.dequantize_blocks:
        // (d * f32(sc & 15)) * f32(q) - (dmin * f32(sc >> 4)).
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
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

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q3_K.dequantize_blocks:
        // (d * f32(sc - 32)) * f32(i8(ql) - i8((hbit ^ 1) << 2)).
        let d = self.d.to_f32();
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

impl Block for BlockQ4_K {
    const TYPE: GgmlType = GgmlType::Q4_K;

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q4_K.dequantize_blocks:
        // (d * f32(sc)) * f32(q) - (dmin * f32(m)).
        let (sc, mn) = scale_min_k4(&self.scales);
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        let dl: [f32; 8] = std::array::from_fn(|j| d * f32::from(sc[j]));
        let ml: [f32; 8] = std::array::from_fn(|j| dmin * f32::from(mn[j]));
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

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q5_K.dequantize_blocks:
        // (d * f32(sc)) * f32(ql | hbit << 4) - (dmin * f32(m)).
        let (sc, mn) = scale_min_k4(&self.scales);
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        let dl: [f32; 8] = std::array::from_fn(|j| d * f32::from(sc[j]));
        let ml: [f32; 8] = std::array::from_fn(|j| dmin * f32::from(mn[j]));
        let out = &mut out[..QK_K];
        for (i, (out, qs)) in out
            .chunks_exact_mut(64)
            .zip(self.qs.chunks_exact(32))
            .enumerate()
        {
            let (lo, hi) = out.split_at_mut(32);
            let (d1, m1, d2, m2) = (dl[2 * i], ml[2 * i], dl[2 * i + 1], ml[2 * i + 1]);
            let (b1, b2) = (1u8 << (2 * i), 2u8 << (2 * i));
            for (((lo, hi), &q), &h) in lo.iter_mut().zip(hi).zip(qs).zip(&self.qh) {
                let h1 = if h & b1 != 0 { 16 } else { 0 };
                let h2 = if h & b2 != 0 { 16 } else { 0 };
                *lo = d1 * f32::from((q & 0xF) | h1) - m1;
                *hi = d2 * f32::from((q >> 4) | h2) - m2;
            }
        }
    }
}

impl Block for BlockQ6_K {
    const TYPE: GgmlType = GgmlType::Q6_K;

    #[inline]
    fn dequantize(&self, out: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.Q6_K.dequantize_blocks:
        // (d * f32(sc)) * f32(i8(ql | qh << 4) - 32).
        let d = self.d.to_f32();
        let dl: [f32; 16] = std::array::from_fn(|k| d * f32::from(self.scales[k]));
        let out = &mut out[..QK_K];
        for (k, out) in out.chunks_exact_mut(16).enumerate() {
            // Element 16k + l of half g = k / 8, run j = k / 2 % 4, offset o = 16 * (k % 2) + l:
            // low nibble (j / 2) of ql[64g + 32 (j % 2) + o], bits 2j of qh[32g + o].
            let (g, j, o) = (k / 8, k / 2 % 4, k % 2 * 16);
            let (lshift, hshift) = (j / 2 * 4, 2 * j);
            let ql = &self.ql[64 * g + 32 * (j % 2) + o..][..16];
            let qh = &self.qh[32 * g + o..][..16];
            let dl = dl[k];
            for ((y, &l), &h) in out.iter_mut().zip(ql).zip(qh) {
                let q = ((l >> lshift) & 0xF) | (((h >> hshift) & 3) << 4);
                *y = dl * f32::from(q as i8 - 32);
            }
        }
    }
}

impl Block for BlockQ8_K {
    const TYPE: GgmlType = GgmlType::Q8_K;

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

    /// A deterministic value in 0..modulo for element `i`.
    fn val(i: usize, modulo: usize) -> u8 {
        ((i * 37 + 11) % modulo) as u8
    }

    /// Packs 2-bit values as Q2_K/Q3_K `qs` and Q6_K `qh`: element
    /// 128g + 32j + l at bits 2j of byte 32g + l.
    fn pack2(q: &[u8]) -> [u8; 64] {
        std::array::from_fn(|b| {
            (0..4).fold(0, |acc, j| {
                acc | (q[b / 32 * 128 + 32 * j + b % 32] << (2 * j))
            })
        })
    }

    /// Packs one bit per element: element 32j + l at bit j of byte l.
    fn pack1(bits: &[u8]) -> [u8; 32] {
        std::array::from_fn(|l| (0..8).fold(0, |acc, j| acc | (bits[32 * j + l] << j)))
    }

    /// Packs 4-bit values as Q4_K `qs`: element 64i + l low nibble of byte
    /// 32i + l, element 64i + 32 + l its high nibble.
    fn pack4(q: &[u8]) -> [u8; 128] {
        std::array::from_fn(|b| q[b / 32 * 64 + b % 32] | (q[b / 32 * 64 + 32 + b % 32] << 4))
    }

    #[test]
    fn q2_k() {
        let q: Vec<u8> = (0..256).map(|i| val(i, 4)).collect();
        let scales: [u8; 16] = std::array::from_fn(|k| (k as u8) | ((15 - k as u8) << 4));
        let block = BlockQ2_K {
            scales,
            qs: pack2(&q),
            d: h(0.5),
            dmin: h(0.25),
        };
        let out = run(&block);
        for i in 0..256 {
            let k = i / 16;
            let want = 0.5 * k as f32 * f32::from(q[i]) - 0.25 * (15 - k) as f32;
            assert_eq!(out[i], want, "element {i}");
        }
    }

    #[test]
    fn q3_k() {
        let low: Vec<u8> = (0..256).map(|i| val(i, 4)).collect();
        let hbit: Vec<u8> = (0..256).map(|i| val(i, 5) & 1).collect();
        // Stored 6-bit scales k + 24, so sc - 32 = k - 8.
        let wanted: [u8; 16] = std::array::from_fn(|k| (k as u8 + 24) & 63);
        let mut scales = [0u8; 12];
        for (k, &s) in wanted.iter().enumerate() {
            scales[k % 8] |= (s & 0xF) << (4 * (k / 8));
            scales[8 + k % 4] |= (s >> 4) << (2 * (k / 4));
        }
        let block = BlockQ3_K {
            hmask: pack1(&hbit),
            qs: pack2(&low),
            scales,
            d: h(2.0),
        };
        let out = run(&block);
        for i in 0..256 {
            let sc = f32::from(wanted[i / 16] as i8 - 32);
            let q = f32::from(low[i] as i8 - if hbit[i] == 1 { 0 } else { 4 });
            assert_eq!(out[i], 2.0 * sc * q, "element {i}");
        }
    }

    /// Packs 8 six-bit scales and minimums as Q4_K/Q5_K `scales`.
    fn pack_k4(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; 12] {
        let mut s = [0u8; 12];
        for j in 0..4 {
            s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            s[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
            s[j + 8] = (sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4);
        }
        s
    }

    #[test]
    fn q4_k_and_q5_k() {
        let sc: [u8; 8] = [1, 2, 63, 4, 35, 6, 7, 48];
        let mn: [u8; 8] = [8, 63, 6, 5, 17, 3, 33, 1];
        let q: Vec<u8> = (0..256).map(|i| val(i, 32)).collect();
        let low: Vec<u8> = q.iter().map(|&x| x & 0xF).collect();
        let high: Vec<u8> = q.iter().map(|&x| x >> 4).collect();
        let scales = pack_k4(&sc, &mn);
        let (d, dmin) = (h(0.5), h(0.125));
        let out4 = run(&BlockQ4_K {
            d,
            dmin,
            scales,
            qs: pack4(&low),
        });
        let out5 = run(&BlockQ5_K {
            d,
            dmin,
            scales,
            qh: pack1(&high),
            qs: pack4(&low),
        });
        for i in 0..256 {
            let (s, m) = (0.5 * f32::from(sc[i / 32]), 0.125 * f32::from(mn[i / 32]));
            assert_eq!(out4[i], s * f32::from(low[i]) - m, "Q4_K element {i}");
            assert_eq!(out5[i], s * f32::from(q[i]) - m, "Q5_K element {i}");
        }
    }

    #[test]
    fn q6_k() {
        let q: Vec<u8> = (0..256).map(|i| val(i, 64)).collect();
        let ql: [u8; 128] = std::array::from_fn(|b| {
            let (g, l) = (b / 64, b % 64);
            (q[128 * g + l] & 0xF) | ((q[128 * g + 64 + l] & 0xF) << 4)
        });
        let high: Vec<u8> = q.iter().map(|&x| x >> 4).collect();
        let scales: [i8; 16] = std::array::from_fn(|k| (k as i16 * 17 - 128) as i8);
        let out = run(&BlockQ6_K {
            ql,
            qh: pack2(&high),
            scales,
            d: h(0.25),
        });
        for i in 0..256 {
            let want = 0.25 * f32::from(scales[i / 16]) * f32::from(q[i] as i8 - 32);
            assert_eq!(out[i], want, "element {i}");
        }
    }

    #[test]
    fn q8_k() {
        let qs: [i8; 256] = std::array::from_fn(|i| i as u8 as i8);
        // The block sums play no part, whatever they hold.
        let out = run(&BlockQ8_K {
            d: 0.375,
            qs,
            bsums: [i16::MIN; 16],
        });
        for i in 0..256 {
            assert_eq!(out[i], 0.375 * f32::from(qs[i]), "element {i}");
        }
        assert_eq!((out[1], out[128], out[255]), (0.375, -48.0, -0.375));
        // An f32 scale below f16 range is kept exactly.
        let out = run(&BlockQ8_K {
            d: 1e-30,
            qs: [3; 256],
            bsums: [0; 16],
        });
        assert!(out.iter().all(|&x| x == 1e-30f32 * 3.0));
    }

    #[test]
    fn non_finite_scales_pass_through() {
        let q2 = BlockQ2_K {
            scales: [0x11; 16],
            qs: [0x1B; 64],
            d: f16::NAN,
            dmin: h(1.0),
        };
        assert!(run(&q2).iter().all(|x| x.is_nan()));
        let q3 = BlockQ3_K {
            hmask: [0; 32],
            qs: [0; 64],
            scales: [0; 12],
            d: f16::INFINITY,
        };
        // q = -4 and scale -32 everywhere: inf * -32 * -4 = +inf.
        assert!(run(&q3).iter().all(|&x| x == f32::INFINITY));
        let q4 = BlockQ4_K {
            d: h(1.0),
            dmin: f16::NAN,
            scales: [1; 12],
            qs: [0; 128],
        };
        assert!(run(&q4).iter().all(|x| x.is_nan()));
        let q5 = BlockQ5_K {
            d: f16::NAN,
            dmin: h(0.0),
            scales: [0; 12],
            qh: [0; 32],
            qs: [0; 128],
        };
        assert!(run(&q5).iter().all(|x| x.is_nan()));
        let q6 = BlockQ6_K {
            ql: [0; 128],
            qh: [0; 64],
            scales: [1; 16],
            d: f16::NEG_INFINITY,
        };
        assert!(run(&q6).iter().all(|&x| x == f32::INFINITY));
        let q8 = BlockQ8_K {
            d: f32::NAN,
            qs: [1; 256],
            bsums: [0; 16],
        };
        assert!(run(&q8).iter().all(|x| x.is_nan()));
    }
}
