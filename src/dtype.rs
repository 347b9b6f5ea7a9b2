//! The ggml tensor types: ids, names and block geometry, from one table.
//!
//! Block sizes are ggml's (`ggml-common.h`), which differ from the `gguf`
//! Python package's table for Q8_1 (ggml: 36 bytes).

// The code that reads untrusted bytes must not be able to panic.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use crate::error::{Error, Result};

macro_rules! ggml_types {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $elems:literal, $bytes:literal, $kind:ident($($block:tt)+), [$($candle:tt)*]; )*) => {
        /// A ggml tensor element type, as stored in a GGUF tensor info.
        ///
        /// Variants keep ggml's spelling so that `Display` and `FromStr`
        /// round-trip the names gguf tools print.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum GgmlType {
            $( $(#[$doc])* $variant, )*
        }

        impl GgmlType {
            /// Every type this crate knows, in id order.
            pub const ALL: &'static [GgmlType] = &[$(GgmlType::$variant),*];

            /// The numeric id stored in GGUF files (`enum ggml_type`).
            pub const fn id(self) -> u32 {
                match self { $(GgmlType::$variant => $id,)* }
            }

            /// The upstream name, e.g. `"Q4_K"`.
            pub const fn name(self) -> &'static str {
                match self { $(GgmlType::$variant => $name,)* }
            }

            /// Elements encoded by one block (1 for plain types).
            pub const fn elements_per_block(self) -> usize {
                match self { $(GgmlType::$variant => $elems,)* }
            }

            /// Bytes taken by one block.
            pub const fn bytes_per_block(self) -> usize {
                match self { $(GgmlType::$variant => $bytes,)* }
            }

            /// The type with this id, if it is a live ggml type.
            pub const fn from_id(id: u32) -> Option<GgmlType> {
                match id { $($id => Some(GgmlType::$variant),)* _ => None }
            }
        }
    };
}

/// The one table of ggml types. A row per type: its id, name and block
/// geometry; the Rust type of one block (`plain(T)` for a type stored one
/// value per element, `quant(module::Block)` for a block format, the path
/// relative to `crate::quant`); and candle's quantized type with its block
/// struct, where candle has one (`[]` where not).
///
/// Every per-type table of the crate is generated from these rows, handed
/// to a macro with `ggml_type_table!(callback)`: [`GgmlType`] here, the
/// dequantizer dispatch, block re-exports and size assertions in
/// `quant`, the typed views' element types, and candle's two tables. A type
/// added here is added everywhere; a block or candle type the row forgets
/// cannot be reached elsewhere.
///
/// Exported (hidden) for the crate's own benchmarks, which generate their
/// candle comparisons from the same rows; not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __ggml_type_table {
    ($callback:ident) => {
        $callback! {
            /// 32-bit IEEE float.
            F32 = 0, "F32", 1, 4, plain(f32), [F32, f32];
            /// 16-bit IEEE float.
            F16 = 1, "F16", 1, 2, plain(half::f16), [F16, f16];
            /// 4-bit, one f16 scale per 32.
            Q4_0 = 2, "Q4_0", 32, 18, quant(legacy::BlockQ4_0), [Q4_0, BlockQ4_0];
            /// 4-bit, f16 scale and minimum per 32.
            Q4_1 = 3, "Q4_1", 32, 20, quant(legacy::BlockQ4_1), [Q4_1, BlockQ4_1];
            /// 5-bit, one f16 scale per 32.
            Q5_0 = 6, "Q5_0", 32, 22, quant(legacy::BlockQ5_0), [Q5_0, BlockQ5_0];
            /// 5-bit, f16 scale and minimum per 32.
            Q5_1 = 7, "Q5_1", 32, 24, quant(legacy::BlockQ5_1), [Q5_1, BlockQ5_1];
            /// 8-bit, one f16 scale per 32.
            Q8_0 = 8, "Q8_0", 32, 34, quant(legacy::BlockQ8_0), [Q8_0, BlockQ8_0];
            /// 8-bit, f16 scale and scaled sum per 32.
            Q8_1 = 9, "Q8_1", 32, 36, quant(legacy::BlockQ8_1), [Q8_1, BlockQ8_1];
            /// 2-bit k-quant, super-blocks of 256.
            Q2_K = 10, "Q2_K", 256, 84, quant(kquants::BlockQ2_K), [Q2K, BlockQ2K];
            /// 3-bit k-quant, super-blocks of 256.
            Q3_K = 11, "Q3_K", 256, 110, quant(kquants::BlockQ3_K), [Q3K, BlockQ3K];
            /// 4-bit k-quant, super-blocks of 256.
            Q4_K = 12, "Q4_K", 256, 144, quant(kquants::BlockQ4_K), [Q4K, BlockQ4K];
            /// 5-bit k-quant, super-blocks of 256.
            Q5_K = 13, "Q5_K", 256, 176, quant(kquants::BlockQ5_K), [Q5K, BlockQ5K];
            /// 6-bit k-quant, super-blocks of 256.
            Q6_K = 14, "Q6_K", 256, 210, quant(kquants::BlockQ6_K), [Q6K, BlockQ6K];
            /// 8-bit k-quant (f32 scale, block sums), super-blocks of 256.
            Q8_K = 15, "Q8_K", 256, 292, quant(kquants::BlockQ8_K), [Q8K, BlockQ8K];
            /// 2.06-bit importance quant.
            IQ2_XXS = 16, "IQ2_XXS", 256, 66, quant(iq2::BlockIQ2_XXS), [];
            /// 2.31-bit importance quant.
            IQ2_XS = 17, "IQ2_XS", 256, 74, quant(iq2::BlockIQ2_XS), [];
            /// 3.06-bit importance quant.
            IQ3_XXS = 18, "IQ3_XXS", 256, 98, quant(iq3::BlockIQ3_XXS), [];
            /// 1.56-bit importance quant.
            IQ1_S = 19, "IQ1_S", 256, 50, quant(iq1::BlockIQ1_S), [];
            /// 4-bit non-linear quant, blocks of 32.
            IQ4_NL = 20, "IQ4_NL", 32, 18, quant(iq4::BlockIQ4_NL), [];
            /// 3.44-bit importance quant.
            IQ3_S = 21, "IQ3_S", 256, 110, quant(iq3::BlockIQ3_S), [];
            /// 2.5-bit importance quant.
            IQ2_S = 22, "IQ2_S", 256, 82, quant(iq2::BlockIQ2_S), [];
            /// 4.25-bit non-linear quant, super-blocks of 256.
            IQ4_XS = 23, "IQ4_XS", 256, 136, quant(iq4::BlockIQ4_XS), [];
            /// 8-bit signed integer.
            I8 = 24, "I8", 1, 1, plain(i8), [];
            /// 16-bit signed integer.
            I16 = 25, "I16", 1, 2, plain(i16), [];
            /// 32-bit signed integer.
            I32 = 26, "I32", 1, 4, plain(i32), [];
            /// 64-bit signed integer.
            I64 = 27, "I64", 1, 8, plain(i64), [];
            /// 64-bit IEEE float.
            F64 = 28, "F64", 1, 8, plain(f64), [];
            /// 1.75-bit importance quant.
            IQ1_M = 29, "IQ1_M", 256, 56, quant(iq1::BlockIQ1_M), [];
            /// bfloat16.
            BF16 = 30, "BF16", 1, 2, plain(half::bf16), [BF16, bf16];
            /// 1.69-bit ternary quant.
            TQ1_0 = 34, "TQ1_0", 256, 54, quant(ternary::BlockTQ1_0), [];
            /// 2.06-bit ternary quant.
            TQ2_0 = 35, "TQ2_0", 256, 66, quant(ternary::BlockTQ2_0), [];
            /// Microscaling FP4 (E2M1 values, E8M0 scale per 32).
            MXFP4 = 39, "MXFP4", 32, 17, quant(fp4::BlockMXFP4), [];
            /// NVIDIA FP4 (E2M1 values, UE4M3 scale per 16, blocks of 64).
            NVFP4 = 40, "NVFP4", 64, 36, quant(fp4::BlockNVFP4), [];
            /// 1-bit, one f16 scale per 128.
            Q1_0 = 41, "Q1_0", 128, 18, quant(low_bit::BlockQ1_0), [];
            /// 2-bit, one f16 scale per 64.
            Q2_0 = 42, "Q2_0", 64, 18, quant(low_bit::BlockQ2_0), [];

        }
    };
}
pub(crate) use crate::__ggml_type_table as ggml_type_table;

ggml_type_table!(ggml_types);

/// Ids ggml once used and has since removed (Q4_2, Q4_3, the Q4_0/IQ4_NL
/// repacked layouts): a file carrying one is rejected with
/// [`Error::UnknownType`] with `removed` set.
pub const REMOVED_TYPE_IDS: &[u32] = &[4, 5, 31, 32, 33, 36, 37, 38];

impl GgmlType {
    /// True for types stored as one plain value per element (F32, F16, BF16,
    /// F64 and the integers), which can be viewed as typed slices.
    pub const fn is_plain(self) -> bool {
        self.elements_per_block() == 1
    }

    /// Bytes of a row of `ne0` elements, or `None` when `ne0` is not a
    /// multiple of the block size or the size overflows a `u64`.
    pub const fn row_bytes(self, ne0: u64) -> Option<u64> {
        let elems = self.elements_per_block() as u64;
        match ne0.checked_rem(elems) {
            Some(0) => {}
            _ => return None,
        }
        match ne0.checked_div(elems) {
            Some(blocks) => blocks.checked_mul(self.bytes_per_block() as u64),
            None => None,
        }
    }

    /// Number of elements of a tensor with dims `dims`, or `None` when it
    /// exceeds `i64::MAX`. Like ggml (`gguf.cpp` checks `ne0`, `ne0*ne1`,
    /// `ne0*ne1*ne2` and the whole product against `INT64_MAX`), every
    /// running product counts: dims whose product exceeds `i64::MAX` before
    /// a zero dim (`[2^32, 2^31, 0]`) are rejected, though the total is 0.
    /// Reader and writer apply this one rule.
    pub fn element_count(dims: &[u64]) -> Option<u64> {
        const MAX: u64 = i64::MAX as u64;
        dims.iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d).filter(|&n| n <= MAX))
    }

    /// Bytes of a tensor with dims `dims` (ne0 first; no dims is a scalar,
    /// as in ggml), or `None` when the row is not whole blocks or the size
    /// overflows a `u64`.
    pub fn tensor_bytes(self, dims: &[u64]) -> Option<u64> {
        let (ne0, rest) = dims.split_first().map_or((1, &[][..]), |(&d, r)| (d, r));
        let row = self.row_bytes(ne0)?;
        // An empty tensor is 0 bytes, whatever its other dims (as in ggml).
        if row == 0 || rest.contains(&0) {
            return Some(0);
        }
        let rows = rest.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
        row.checked_mul(rows)
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GgmlType {
    type Err = Error;

    /// Parses an upstream name, case-insensitively (`"q4_k"`, `"Q4_K"`).
    fn from_str(s: &str) -> Result<Self> {
        GgmlType::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownTypeName { name: s.to_owned() })
    }
}

impl TryFrom<u32> for GgmlType {
    type Error = Error;

    fn try_from(id: u32) -> Result<Self> {
        match GgmlType::from_id(id) {
            Some(t) => Ok(t),
            None => Err(Error::UnknownType {
                id,
                removed: REMOVED_TYPE_IDS.contains(&id),
                tensor: None,
                offset: None,
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn display_and_from_str_round_trip_upstream_names() {
        for &t in GgmlType::ALL {
            let shown = t.to_string();
            assert_eq!(shown, t.name());
            assert_eq!(shown.parse::<GgmlType>().unwrap(), t);
            assert_eq!(shown.to_lowercase().parse::<GgmlType>().unwrap(), t);
        }
        assert_eq!(GgmlType::Q4_K.to_string(), "Q4_K");
        assert!("Q4_K_M".parse::<GgmlType>().is_err());
    }

    #[test]
    fn element_counts_follow_the_running_product() {
        assert_eq!(GgmlType::element_count(&[]), Some(1));
        assert_eq!(GgmlType::element_count(&[3, 5]), Some(15));
        assert_eq!(GgmlType::element_count(&[1 << 32, 1 << 31, 0]), None);
        assert_eq!(GgmlType::element_count(&[0, 1 << 62, 1 << 62]), Some(0));
        assert_eq!(GgmlType::element_count(&[1 << 62, 2]), None);
        assert_eq!(
            GgmlType::element_count(&[i64::MAX as u64]),
            Some(i64::MAX as u64)
        );
        assert_eq!(GgmlType::element_count(&[i64::MAX as u64 + 1]), None);
    }
}
