//! Unpacking of the k-quants' packed 6-bit sub-block scales, written once.

/// Splits the 12 packed bytes of Q4_K/Q5_K into 8 six-bit scales and 8
/// six-bit minimums (ggml's `get_scale_min_k4`, gguf-py 0.19.0's
/// `Q4_K.get_scale_min`):
///
/// ```text
///  0..4  EEAAAAAA  scales 0..4 in the low six bits, high bits of scale 4..8
///  4..8  eeaaaaaa  minimums 0..4, high bits of minimum 4..8
///  8..12 eeeeEEEE  low four bits of scale (low nibble) and minimum 4..8
/// ```
#[inline(always)]
pub(super) fn scale_min_k4(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let sc = std::array::from_fn(|j| {
        if j < 4 {
            s[j] & 0x3F
        } else {
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30)
        }
    });
    let mn = std::array::from_fn(|j| {
        if j < 4 {
            s[j + 4] & 0x3F
        } else {
            (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30)
        }
    });
    (sc, mn)
}

/// Unpacks the 16 six-bit scales of Q3_K and removes their offset of 32
/// (gguf-py 0.19.0 `Q3_K.dequantize_blocks`, ggml's `kmask` shuffle):
///
/// ```text
///  0..8  low nibble: low four bits of scale j; high nibble: of scale j + 8
///  8..12 bits 2i..2i+2 of byte 8 + r: high two bits of scale 4i + r
/// ```
#[inline(always)]
pub(super) fn q3_k_scales(s: &[u8; 12]) -> [i8; 16] {
    std::array::from_fn(|k| {
        let low = if k < 8 { s[k] & 0x0F } else { s[k - 8] >> 4 };
        let high = (s[8 + k % 4] >> (2 * (k / 4))) & 0x03;
        (low | (high << 4)) as i8 - 32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_min_k4_layout() {
        // Scales 0..4 = 1, 2, 3, 4 with high bits 0b11 (-> scales 4..8 high bits 0x30).
        let s = [
            0xC1, 0xC2, 0xC3, 0xC4, 0x05, 0x06, 0x07, 0x48, 0x9A, 0x0B, 0xF0, 0x21,
        ];
        let (sc, mn) = scale_min_k4(&s);
        assert_eq!(sc, [1, 2, 3, 4, 0x3A, 0x3B, 0x30, 0x31]);
        assert_eq!(mn, [5, 6, 7, 8, 0x09, 0x00, 0x0F, 0x12]);
    }

    #[test]
    fn q3_k_scales_layout() {
        let mut s = [0u8; 12];
        s[0] = 0x5A; // scale 0 low = 0xA, scale 8 low = 0x5
        s[8] = 0b11_10_01_00; // scale 0 high 0, scale 4 high 1, scale 8 high 2, scale 12 high 3
        s[11] = 0b00_00_00_11; // scale 3 high = 3
        let sc = q3_k_scales(&s);
        assert_eq!(sc[0], 0x0A - 32);
        assert_eq!(sc[8], 0x25 - 32);
        assert_eq!(sc[4], 0x10 - 32);
        assert_eq!(sc[12], 0x30 - 32);
        assert_eq!(sc[3], 0x30 - 32);
        assert_eq!(sc[1], -32);
    }
}
