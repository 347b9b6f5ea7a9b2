//! The FP4 formats: MXFP4 (E8M0 scale per 32) and NVFP4 (UE4M3 scale per 16).
//!
//! Codes are E2M1 values, stored doubled in `kvalues_fp4`; both scale
//! decoders return half the scale to make up for it, as ggml's do.

use super::bits::{lookup_nibbles, scaled_levels};
use super::grids::KVALUES_FP4;
use super::{Block, ScaleField, ScaleKind};
use crate::dtype::GgmlType;

/// Half the value of an E8M0 scale, `2^(e - 128)` (ggml's
/// `ggml_e8m0_to_fp32_half`; 0xff is not NaN here).
#[inline]
pub(crate) fn e8m0_to_f32_half(e: u8) -> f32 {
    if e < 2 {
        f32::from_bits(0x0020_0000 << e)
    } else {
        f32::from_bits(u32::from(e - 1) << 23)
    }
}

/// Half the value of an unsigned E4M3 scale (bias 7), with 0 and 0x7f (NaN)
/// read as 0 (ggml's `ggml_ue4m3_to_fp32`; the top bit is ignored).
#[inline]
pub(crate) fn ue4m3_to_f32_half(x: u8) -> f32 {
    if x == 0 || x == 0x7f {
        return 0.0;
    }
    let exp = (x >> 3) & 0x0f;
    let man = f32::from(x & 0x07);
    let raw = if exp == 0 {
        man * (1.0 / 512.0)
    } else {
        // 2^(exp - 7), exp in 1..=15: a normal f32 built from its bits.
        (1.0 + man / 8.0) * f32::from_bits(u32::from(exp + 120) << 23)
    };
    raw * 0.5
}

/// An MXFP4 block of 32 elements (4.25 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockMXFP4 {
    /// E8M0 scale: a bare exponent, `2^(e - 127)`.
    pub e: u8,
    /// E2M1 codes: low nibbles are elements 0..16, high nibbles 16..32.
    pub qs: [u8; 16],
}

impl Block for BlockMXFP4 {
    const TYPE: GgmlType = GgmlType::MXFP4;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::E8M0)];

    // Matches gguf-py 0.19.0 quants.MXFP4.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let table = scaled_levels(e8m0_to_f32_half(self.e), &KVALUES_FP4);
        lookup_nibbles(out, &self.qs, &table);
    }
}

/// An NVFP4 block of 64 elements in four sub-blocks of 16 (4.5 bits per
/// weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockNVFP4 {
    /// UE4M3 scales, one per sub-block of 16.
    pub d: [u8; 4],
    /// E2M1 codes, 8 bytes per sub-block: low nibbles are its elements
    /// 0..8, high nibbles 8..16.
    pub qs: [u8; 32],
}

impl Block for BlockNVFP4 {
    const TYPE: GgmlType = GgmlType::NVFP4;
    const SCALES: &'static [ScaleField] = &[
        ScaleField::at(0, ScaleKind::Ue4M3),
        ScaleField::at(1, ScaleKind::Ue4M3),
        ScaleField::at(2, ScaleKind::Ue4M3),
        ScaleField::at(3, ScaleKind::Ue4M3),
    ];

    // Matches gguf-py 0.19.0 quants.NVFP4.dequantize_blocks.
    fn dequantize(&self, out: &mut [f32]) {
        let sub_blocks = self.qs.chunks_exact(8).zip(&self.d);
        for ((qs, &d), out) in sub_blocks.zip(out.chunks_exact_mut(16)) {
            let table = scaled_levels(ue4m3_to_f32_half(d), &KVALUES_FP4);
            lookup_nibbles(out, qs, &table);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::bits::decode;

    #[test]
    fn e8m0_half() {
        assert_eq!(e8m0_to_f32_half(127), 0.5);
        assert_eq!(e8m0_to_f32_half(130), 4.0);
        assert_eq!(e8m0_to_f32_half(1), f32::MIN_POSITIVE / 2.0); // 2^-127, subnormal
        assert_eq!(e8m0_to_f32_half(0), f32::MIN_POSITIVE / 4.0); // 2^-128
        assert_eq!(e8m0_to_f32_half(255), f32::from_bits(0x7f00_0000)); // 2^127, not NaN
    }

    #[test]
    fn ue4m3_half() {
        assert_eq!(ue4m3_to_f32_half(0x38), 0.5); // exp 7, man 0: 1.0
        assert_eq!(ue4m3_to_f32_half(0x3c), 0.75); // 1.5
        assert_eq!(ue4m3_to_f32_half(0x01), 1.0 / 1024.0); // smallest subnormal, 2^-9
        assert_eq!(ue4m3_to_f32_half(0x7e), 224.0); // largest, 448
        assert_eq!(ue4m3_to_f32_half(0x7f), 0.0);
        assert_eq!(ue4m3_to_f32_half(0xff), 240.0); // top bit ignored; not 0x7f
        assert_eq!(ue4m3_to_f32_half(0x80), 0.0);
    }

    #[test]
    fn mxfp4_hand_vector() {
        let mut qs = [0u8; 16];
        qs[0] = 0xf7; // element 0: code 7 (12 -> 6.0), element 16: code 15 (-12 -> -6.0)
        qs[3] = 0x98; // element 3: code 8 (-0 -> 0), element 19: code 9 (-1 -> -0.5)
        let out = decode(&BlockMXFP4 { e: 128, qs }); // scale 2, half 1
        assert_eq!(
            [out[0], out[16], out[3], out[19], out[1]],
            [12.0, -12.0, 0.0, -1.0, 0.0]
        );
        assert!(out[3].is_sign_positive());
    }

    #[test]
    fn nvfp4_hand_vector() {
        let mut b = BlockNVFP4 {
            d: [0x38, 0x40, 0, 0x7f],
            qs: [0x11; 32],
        }; // scales 1, 2, 0, 0
        b.qs[8] = 0x4c; // sub-block 1, element 0: code 12 (-4), element 8: code 4 (4)
        let out = decode(&b);
        assert_eq!(&out[..16], &[0.5; 16]);
        assert_eq!([out[16], out[24], out[17]], [-4.0, 4.0, 1.0]);
        assert_eq!(&out[32..], &[0.0; 32]);
    }
}
