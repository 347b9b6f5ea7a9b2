//! The 4-bit non-linear quants: IQ4_NL and IQ4_XS.
//!
//! Each 4-bit code picks one of the 16 levels of `kvalues_iq4nl`, times a
//! scale; the kernels scale the 16 levels once per (sub-)block and then only
//! look codes up, which gives the reference's `scale * level` bit for bit.

use half::f16;

use super::bits::{f16_to_f32, lookup_nibbles, scaled_levels};
use super::grids::KVALUES_IQ4NL;
use super::{Block, ScaleField, ScaleKind};
use crate::dtype::GgmlType;

/// An IQ4_NL block of 32 elements (4.5 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ4_NL {
    /// Block scale.
    pub d: f16,
    /// 4-bit codes: low nibbles are elements 0..16, high nibbles 16..32.
    pub qs: [u8; 16],
}

impl Block for BlockIQ4_NL {
    const TYPE: GgmlType = GgmlType::IQ4_NL;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.IQ4_NL.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let table = scaled_levels(f16_to_f32(self.d), &KVALUES_IQ4NL);
        lookup_nibbles(out, &self.qs, &table);
    }
}

/// An IQ4_XS super-block of 256 elements (4.25 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockIQ4_XS {
    /// Super-block scale.
    pub d: f16,
    /// The high 2 bits of the eight 6-bit sub-block scales.
    pub scales_h: u16,
    /// The low 4 bits of the eight 6-bit sub-block scales.
    pub scales_l: [u8; 4],
    /// 4-bit codes; per sub-block of 32, 16 bytes laid out as in IQ4_NL.
    pub qs: [u8; 128],
}

impl BlockIQ4_XS {
    /// Sub-block `k`'s scale (0..8): six bits, low four from `scales_l`
    /// and high two from `scales_h`, less 32.
    #[inline(always)]
    pub(crate) fn sub_block_scale(&self, k: usize) -> i8 {
        let low = (self.scales_l[k / 2] >> (4 * (k % 2))) & 0x0f;
        let high = ((self.scales_h >> (2 * k)) & 3) as u8;
        (low | (high << 4)) as i8 - 32
    }
}

impl Block for BlockIQ4_XS {
    const TYPE: GgmlType = GgmlType::IQ4_XS;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches gguf-py 0.19.0 quants.IQ4_XS.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for (k, (qs, out)) in self
            .qs
            .chunks_exact(16)
            .zip(out.chunks_exact_mut(32))
            .enumerate()
        {
            let table = scaled_levels(d * f32::from(self.sub_block_scale(k)), &KVALUES_IQ4NL);
            lookup_nibbles(out, qs, &table);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::bits::decode;

    #[test]
    fn iq4_nl_hand_vector() {
        let mut qs = [0u8; 16];
        qs[0] = 0xf8; // element 0: code 8 (1), element 16: code 15 (113)
        qs[15] = 0x07; // element 15: code 7 (-10), element 31: code 0 (-127)
        let out = decode(&BlockIQ4_NL {
            d: f16::from_f32(0.25),
            qs,
        });
        assert_eq!(out[0], 0.25);
        assert_eq!(out[16], 113.0 * 0.25);
        assert_eq!(out[15], -2.5);
        assert_eq!(out[31], -127.0 * 0.25);
        assert_eq!(out[1], -127.0 * 0.25);
    }

    #[test]
    fn iq4_xs_hand_vector() {
        let mut b = BlockIQ4_XS {
            d: f16::from_f32(2.0),
            scales_h: 0,
            scales_l: [0; 4],
            qs: [0x88; 128],
        };
        b.scales_l[0] = 0x1f; // sub-block 0: low 15, sub-block 1: low 1
        b.scales_h = 0b10_01; // sub-block 0: high 1 (scale 31 - 32 = -1), sub-block 1: high 2 (33 - 32 = 1)
        let out = decode(&b);
        assert_eq!(&out[..32], &[-2.0; 32]);
        assert_eq!(&out[32..64], &[2.0; 32]);
        assert_eq!(out[64], 2.0 * -32.0);
    }

    #[test]
    fn nan_scale_passes_through() {
        let out = decode(&BlockIQ4_NL {
            d: f16::NAN,
            qs: [0x5a; 16],
        });
        assert!(out.iter().all(|v| v.is_nan()));
    }
}
