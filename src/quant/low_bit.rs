//! The plain low-bit quants: Q1_0 (signs times a scale) and Q2_0 (2-bit
//! levels -1..=2 times a scale).
//!
//! gguf-py 0.19.0 has no dequantizer for these; the reference is ggml's C
//! (`ggml-quants.c`, llama.cpp as vendored by llama-cpp-python 0.3.36).

use half::f16;

use super::bits::f16_to_f32;
use super::{Block, ScaleField, ScaleKind};
use crate::dtype::GgmlType;

/// A Q1_0 block of 128 elements (1.125 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ1_0 {
    /// Block scale.
    pub d: f16,
    /// One bit per element, element `j` in bit `j % 8` of byte `j / 8`:
    /// set means `+d`, clear means `-d`.
    pub qs: [u8; 16],
}

impl Block for BlockQ1_0 {
    const TYPE: GgmlType = GgmlType::Q1_0;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches ggml-quants.c dequantize_row_q1_0 (llama.cpp in llama-cpp-python 0.3.36).
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let neg_d = -d;
        for (&bits, out) in self.qs.iter().zip(out.chunks_exact_mut(8)) {
            for (j, o) in out.iter_mut().enumerate() {
                *o = if bits >> j & 1 != 0 { d } else { neg_d };
            }
        }
    }
}

/// A Q2_0 block of 64 elements (2.25 bits per weight).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ2_0 {
    /// Block scale.
    pub d: f16,
    /// 2-bit codes (level + 1), element `j` in bits `2 * (j % 4)..` of byte
    /// `j / 4`.
    pub qs: [u8; 16],
}

impl Block for BlockQ2_0 {
    const TYPE: GgmlType = GgmlType::Q2_0;
    const SCALES: &'static [ScaleField] = &[ScaleField::at(0, ScaleKind::F16)];

    // Matches ggml-quants.c dequantize_row_q2_0 (llama.cpp in llama-cpp-python 0.3.36).
    fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for (&q, out) in self.qs.iter().zip(out.chunks_exact_mut(4)) {
            for (j, o) in out.iter_mut().enumerate() {
                // `((int)q - 1) * d`: the level converted to float, then scaled.
                *o = f32::from(((q >> (2 * j)) & 3) as i8 - 1) * d;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::bits::decode;

    #[test]
    fn q1_0_hand_vector() {
        let mut qs = [0u8; 16];
        qs[0] = 0b1000_0101; // elements 0, 2, 7 positive
        qs[15] = 0x80; // element 127 positive
        let out = decode(&BlockQ1_0 {
            d: f16::from_f32(0.75),
            qs,
        });
        assert_eq!(
            &out[..8],
            &[0.75, -0.75, 0.75, -0.75, -0.75, -0.75, -0.75, 0.75]
        );
        assert_eq!(&out[8..127], &[-0.75; 119]);
        assert_eq!(out[127], 0.75);
    }

    #[test]
    fn q1_0_zero_scale_keeps_signs() {
        let out = decode(&BlockQ1_0 {
            d: f16::ZERO,
            qs: [0x0f; 16],
        });
        assert!(out[0] == 0.0 && out[0].is_sign_positive());
        assert!(out[4] == 0.0 && out[4].is_sign_negative());
    }

    #[test]
    fn q2_0_hand_vector() {
        let mut qs = [0x55u8; 16]; // all code 1: level 0
        qs[0] = 0b11_10_01_00; // elements 0..4: levels -1, 0, 1, 2
        qs[15] = 0b00_01_01_11; // element 60: 2, element 63: -1
        let out = decode(&BlockQ2_0 {
            d: f16::from_f32(1.5),
            qs,
        });
        assert_eq!(&out[..4], &[-1.5, 0.0, 1.5, 3.0]);
        assert_eq!(&out[4..60], &[0.0; 56]);
        assert_eq!(&out[60..], &[3.0, 0.0, 0.0, -1.5]);
    }

    #[test]
    fn q2_0_negative_scale() {
        let out = decode(&BlockQ2_0 {
            d: f16::from_f32(-2.0),
            qs: [0b11_10_01_00; 16],
        });
        assert_eq!(&out[..4], &[2.0, -0.0, -2.0, -4.0]);
        assert!(out[1].is_sign_negative()); // 0.0 * -2.0
    }

    #[test]
    fn nan_scale_passes_through() {
        let q1 = decode(&BlockQ1_0 {
            d: f16::NAN,
            qs: [0x33; 16],
        });
        assert!(q1.iter().all(|v| v.is_nan()));
        // `-d` flips the NaN's sign bit, as C's unary minus does.
        assert_ne!(q1[0].to_bits(), q1[2].to_bits());
        let q2 = decode(&BlockQ2_0 {
            d: f16::NAN,
            qs: [0xe4; 16],
        });
        assert!(q2.iter().all(|v| v.is_nan()));
    }
}
