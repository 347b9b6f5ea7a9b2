//! The 3-bit importance quants: IQ3_XXS and IQ3_S.
//!
//! Each super-block of 256 holds 8 sub-blocks of 32; every 4 elements are one
//! entry of a grid of magnitudes, every 8 share a sign byte.

use half::f16;

use super::bits::{f16_to_f32, scale_signed};
use super::grids::{IQ3S_GRID, IQ3XXS_GRID, KSIGN_MASKS, SIGN_MASKS};
use super::{Block, ScaleField, ScaleKind};
use crate::dtype::GgmlType;

/// [`scale_signed`] for 8 elements from two grid entries of 4 levels.
#[inline(always)]
fn scale_signed_4x2(out: &mut [f32], scale: f32, levels: [&[u8; 4]; 2], mask: &[u8; 8]) {
    let (out0, out1) = out.split_at_mut(4);
    let (mask0, mask1) = mask.split_at(4);
    scale_signed(out0, scale, levels[0], mask0);
    scale_signed(out1, scale, levels[1], mask1);
}

/// An IQ3_XXS super-block of 256 elements (3.06 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ3_XXS {
    /// Super-block scale.
    pub d: f16,
    /// 64 grid indices (4 elements each), then per sub-block a little-endian
    /// `u32` of four 7-bit sign indices and the 4-bit scale in the top bits.
    pub qs: [u8; 96],
}

impl Block for BlockIQ3_XXS {
    const TYPE: GgmlType = GgmlType::IQ3_XXS;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.IQ3_XXS.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let (indices, scales_and_signs) = self.qs.split_at(64);
        let sub_blocks = indices
            .chunks_exact(8)
            .zip(scales_and_signs.chunks_exact(4));
        for ((idx, aux), out) in sub_blocks.zip(out.chunks_exact_mut(32)) {
            let aux = u32::from_le_bytes([aux[0], aux[1], aux[2], aux[3]]);
            let db = d * (0.5 + f32::from((aux >> 28) as u8)) * 0.5;
            for (l, (idx, out)) in idx.chunks_exact(2).zip(out.chunks_exact_mut(8)).enumerate() {
                let mask = &KSIGN_MASKS[(aux >> (7 * l)) as usize & 0x7f];
                let levels = [
                    &IQ3XXS_GRID[usize::from(idx[0])],
                    &IQ3XXS_GRID[usize::from(idx[1])],
                ];
                scale_signed_4x2(out, db, levels, mask);
            }
        }
    }
}

/// An IQ3_S super-block of 256 elements (3.44 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ3_S {
    /// Super-block scale.
    pub d: f16,
    /// Low 8 bits of the 9-bit grid indices (4 elements each).
    pub qs: [u8; 64],
    /// The 9th bit of the grid indices, one byte per sub-block.
    pub qh: [u8; 8],
    /// One sign bit per element.
    pub signs: [u8; 32],
    /// Two 4-bit scales per byte, one per sub-block of 32.
    pub scales: [u8; 4],
}

impl Block for BlockIQ3_S {
    const TYPE: GgmlType = GgmlType::IQ3_S;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.IQ3_S.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let sub_blocks = self
            .qs
            .chunks_exact(8)
            .zip(self.signs.chunks_exact(4))
            .zip(&self.qh);
        for (k, (((idx, signs), &qh), out)) in sub_blocks.zip(out.chunks_exact_mut(32)).enumerate()
        {
            let scale = (self.scales[k / 2] >> (4 * (k % 2))) & 0x0f;
            let db = d * f32::from(1 + 2 * scale);
            let index = |j: usize| usize::from(idx[j]) | ((usize::from(qh) >> j & 1) << 8);
            for (l, (&s, out)) in signs.iter().zip(out.chunks_exact_mut(8)).enumerate() {
                let levels = [&IQ3S_GRID[index(2 * l)], &IQ3S_GRID[index(2 * l + 1)]];
                scale_signed_4x2(out, db, levels, &SIGN_MASKS[usize::from(s)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::bits::decode;

    #[test]
    fn iq3_xxs_hand_vector() {
        let mut b = BlockIQ3_XXS {
            d: f16::from_f32(2.0),
            qs: [0; 96],
        };
        b.qs[1] = 5; // grid entry 5 = 0x04040c3e: levels 0x3e, 0x0c, 0x04, 0x04
        let aux: u32 = (1 << 28) | 1; // scale 1, group 0 sign pattern 129
        b.qs[64..68].copy_from_slice(&aux.to_le_bytes());
        let out = decode(&b);
        let db = 2.0 * 1.5 * 0.5; // 1.5
        assert_eq!(
            &out[..8],
            &[
                -4.0 * db,
                4.0 * db,
                4.0 * db,
                4.0 * db,
                62.0 * db,
                12.0 * db,
                4.0 * db,
                -4.0 * db
            ]
        );
        // Sub-block 1: scale 0 -> d * 0.25.
        assert_eq!(out[32], 4.0 * 0.5);
    }

    #[test]
    fn iq3_s_hand_vector() {
        let mut b = BlockIQ3_S {
            d: f16::from_f32(0.5),
            qs: [0; 64],
            qh: [0; 8],
            signs: [0; 32],
            scales: [0; 4],
        };
        b.scales[0] = 0x30; // sub-block 0 scale 0 (db = d), sub-block 1 scale 3 (db = 7d)
        b.qh[0] = 0b10; // element group 1 of sub-block 0 uses index 256
        b.signs[0] = 0b0001_0000; // element 4 negative
        b.qs[8] = 1; // sub-block 1, first entry: grid 1 = 0x01010103
        let out = decode(&b);
        let e256 = IQ3S_GRID[256];
        assert_eq!(&out[..4], &[0.5; 4]);
        assert_eq!(out[4], -0.5 * f32::from(e256[0]));
        assert_eq!(out[7], 0.5 * f32::from(e256[3]));
        assert_eq!(&out[32..36], &[3.0 * 3.5, 3.5, 3.5, 3.5]);
    }

    #[test]
    fn nan_scale_passes_through() {
        let b = BlockIQ3_XXS {
            d: f16::NAN,
            qs: [0; 96],
        };
        assert!(decode(&b).iter().all(|v| v.is_nan()));
    }
}
