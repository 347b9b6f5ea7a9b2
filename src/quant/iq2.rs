//! The 2-bit importance quants: IQ2_XXS, IQ2_XS and IQ2_S.
//!
//! Each super-block of 256 holds 8 sub-blocks of 32; every 8 elements are one
//! entry of a grid of magnitudes with 8 sign bits, scaled by
//! `d * (0.5 + s) * 0.25` for a 4-bit sub-block scale `s`.

use half::f16;

use super::bits::{f16_to_f32, scale_signed};
use super::grids::{IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, KSIGN_MASKS, SIGN_MASKS};
use super::{Block, ScaleField, ScaleKind};
use crate::dtype::GgmlType;

/// `d * (0.5 + s) * 0.25` in f32, in the reference's order.
#[inline(always)]
fn iq2_scale(d: f32, s: u8) -> f32 {
    d * (0.5 + f32::from(s)) * 0.25
}

/// An IQ2_XXS super-block of 256 elements (2.06 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ2_XXS {
    /// Super-block scale.
    pub d: f16,
    /// Per sub-block, two `u32`: four 8-bit grid indices, then four 7-bit
    /// sign indices and the 4-bit scale in the top bits.
    pub qs: [u16; 32],
}

impl Block for BlockIQ2_XXS {
    const TYPE: GgmlType = GgmlType::IQ2_XXS;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.IQ2_XXS.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for (q, out) in self.qs.chunks_exact(4).zip(out.chunks_exact_mut(32)) {
            let grid = u32::from(q[0]) | (u32::from(q[1]) << 16);
            let signs = u32::from(q[2]) | (u32::from(q[3]) << 16);
            let db = iq2_scale(d, (signs >> 28) as u8);
            for (l, out) in out.chunks_exact_mut(8).enumerate() {
                let levels = &IQ2XXS_GRID[(grid >> (8 * l)) as usize & 0xff];
                let mask = &KSIGN_MASKS[(signs >> (7 * l)) as usize & 0x7f];
                scale_signed(out, db, levels, mask);
            }
        }
    }
}

/// An IQ2_XS super-block of 256 elements (2.31 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ2_XS {
    /// Super-block scale.
    pub d: f16,
    /// Per 8 elements: a 9-bit grid index and a 7-bit sign index above it.
    pub qs: [u16; 32],
    /// Two 4-bit scales per sub-block of 32 (low nibble: first 16 elements).
    pub scales: [u8; 8],
}

impl Block for BlockIQ2_XS {
    const TYPE: GgmlType = GgmlType::IQ2_XS;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.IQ2_XS.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let sub_blocks = self.qs.chunks_exact(4).zip(&self.scales);
        for ((qs, &sc), out) in sub_blocks.zip(out.chunks_exact_mut(32)) {
            let db = [iq2_scale(d, sc & 0x0f), iq2_scale(d, sc >> 4)];
            for (l, (&q, out)) in qs.iter().zip(out.chunks_exact_mut(8)).enumerate() {
                let levels = &IQ2XS_GRID[usize::from(q & 0x1ff)];
                let mask = &KSIGN_MASKS[usize::from(q >> 9)];
                scale_signed(out, db[l / 2], levels, mask);
            }
        }
    }
}

/// An IQ2_S super-block of 256 elements (2.56 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ2_S {
    /// Super-block scale.
    pub d: f16,
    /// 32 low bytes of the 10-bit grid indices, then 32 sign bytes.
    pub qs: [u8; 64],
    /// The high 2 bits of the grid indices, four per sub-block.
    pub qh: [u8; 8],
    /// Two 4-bit scales per sub-block of 32 (low nibble: first 16 elements).
    pub scales: [u8; 8],
}

impl Block for BlockIQ2_S {
    const TYPE: GgmlType = GgmlType::IQ2_S;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.IQ2_S.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let (indices, signs) = self.qs.split_at(32);
        let sub_blocks = indices.chunks_exact(4).zip(signs.chunks_exact(4));
        let sub_blocks = sub_blocks.zip(self.qh.iter().zip(&self.scales));
        for (((idx, signs), (&qh, &sc)), out) in sub_blocks.zip(out.chunks_exact_mut(32)) {
            let db = [iq2_scale(d, sc & 0x0f), iq2_scale(d, sc >> 4)];
            let groups = idx.iter().zip(signs).zip(out.chunks_exact_mut(8));
            for (l, ((&q, &s), out)) in groups.enumerate() {
                let high = (usize::from(qh) >> (2 * l)) & 3;
                let levels = &IQ2S_GRID[usize::from(q) | (high << 8)];
                scale_signed(out, db[l / 2], levels, &SIGN_MASKS[usize::from(s)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::bits::decode;

    #[test]
    fn iq2_xxs_hand_vector() {
        let mut b = BlockIQ2_XXS {
            d: f16::from_f32(2.0),
            qs: [0; 32],
        };
        // Sub-block 0: grid entries 0 (all 0x08) and 1 (level 0 is 0x2b), scale 3,
        // sign index 1 on group 0 (ksigns 129: elements 0 and 7 negative).
        b.qs[0] = 0x0100;
        b.qs[2] = 1;
        b.qs[3] = 3 << 12;
        let out = decode(&b);
        let db = 2.0 * 3.5 * 0.25; // 1.75
        assert_eq!(out[0], -db * 8.0);
        assert_eq!(&out[1..7], &[db * 8.0; 6]);
        assert_eq!(out[7], -db * 8.0);
        assert_eq!(out[8], db * 43.0);
        assert_eq!(&out[9..16], &[db * 8.0; 7]);
        // Other sub-blocks: scale 0 -> d * 0.125, grid 0, no signs.
        assert!(out[32..].iter().all(|&v| v == 2.0 * 0.125 * 8.0));
    }

    #[test]
    fn iq2_xs_hand_vector() {
        let mut b = BlockIQ2_XS {
            d: f16::from_f32(1.0),
            qs: [0; 32],
            scales: [0; 8],
        };
        b.scales[0] = 0x21; // first half scale 1, second half 2
        b.qs[0] = 2 | (1 << 9); // grid 2 (0x19 at elements 0, 1), sign pattern 129
        let out = decode(&b);
        assert_eq!(&out[0..3], &[-25.0 * 0.375, 25.0 * 0.375, 8.0 * 0.375]);
        assert_eq!(out[7], -8.0 * 0.375);
        assert_eq!(out[16], 8.0 * 0.625);
    }

    #[test]
    fn iq2_s_hand_vector() {
        let mut b = BlockIQ2_S {
            d: f16::from_f32(4.0),
            qs: [0; 64],
            qh: [0; 8],
            scales: [0; 8],
        };
        b.qs[1] = 0xff; // group 1: index 0x3ff with the high bits below
        b.qh[0] = 0b1100;
        b.qs[32 + 1] = 0x80; // last element of group 1 negative
        let out = decode(&b);
        let db = 4.0 * 0.5 * 0.25;
        let last = IQ2S_GRID[0x3ff];
        for j in 0..8 {
            let sign = if j == 7 { -1.0 } else { 1.0 };
            assert_eq!(out[8 + j], db * f32::from(last[j]) * sign);
        }
        assert_eq!(out[0], db * 8.0);
    }

    #[test]
    fn nan_scale_passes_through() {
        let mut b = BlockIQ2_XXS {
            d: f16::NAN,
            qs: [0; 32],
        };
        b.qs[2] = 1; // a negative sign keeps the NaN's own sign, as `x * -1.0` does
        let out = decode(&b);
        assert!(out.iter().all(|v| v.is_nan()));
        assert_eq!(out[0].to_bits(), out[1].to_bits());
    }
}
