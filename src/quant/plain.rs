//! Conversion of the plain element types (F32, F16, BF16, F64 and the
//! integers) to f32, f16 or bf16, in either byte order and at any alignment.

use std::any::TypeId;

use half::{bf16, f16};

use super::output::as_f32;
use super::{simd, Output};
use crate::dtype::GgmlType;
use crate::error::{Error, Result};
use crate::format::ByteOrder;

/// Elements converted per step when the output or the input needs a stack
/// buffer (2 KiB of f32, 4 KiB of the widest input).
const CHUNK: usize = 512;
/// Elements converted per step from input straight into f32 output (16 KiB
/// of output: few steps, and F16's NaN check re-reads input still in cache).
const DIRECT_CHUNK: usize = 4096;

/// A plain element type and its conversion to f32.
trait Plain: bytemuck::Pod {
    /// Decodes one element from exactly `size_of::<Self>()` bytes.
    fn read(bytes: &[u8], order: ByteOrder) -> Self;
    /// Converts `src` into `dst` (same length).
    fn to_f32_slice(src: &[Self], dst: &mut [f32]);
}

macro_rules! plain_num {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            #[inline(always)]
            fn read(bytes: &[u8], order: ByteOrder) -> Self {
                let mut raw = [0u8; std::mem::size_of::<$t>()];
                raw.copy_from_slice(bytes);
                match order {
                    ByteOrder::Little => <$t>::from_le_bytes(raw),
                    ByteOrder::Big => <$t>::from_be_bytes(raw),
                }
            }

            #[inline]
            fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
                // Matches numpy's astype(np.float32): a C cast, rounding to
                // nearest even (exact for f32, i8 and i16; NaN stays NaN).
                let done = vector_prefix(src, dst);
                for (d, &s) in dst[done..].iter_mut().zip(&src[done..]) {
                    *d = s as f32;
                }
            }
        }
    )*};
}
plain_num!(f32, f64, i8, i16, i32, i64);

/// The leading values of `src` a vector kernel converted into `dst`: I64's
/// (SSE2 and AVX2 have no packed 64-bit integer conversion, so the
/// compiler converts one at a time); none for the other plain numbers,
/// which the compiler vectorizes well.
#[inline(always)]
fn vector_prefix<T: bytemuck::Pod>(src: &[T], dst: &mut [f32]) -> usize {
    if TypeId::of::<T>() == TypeId::of::<i64>() {
        simd::i64_to_f32(bytemuck::cast_slice(src), dst)
    } else {
        0
    }
}

impl Plain for f16 {
    #[inline(always)]
    fn read(bytes: &[u8], order: ByteOrder) -> Self {
        f16::from_bits(read_u16(bytes, order))
    }

    #[inline]
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.dequantize for F16: numpy's exact
        // float16 -> float32 cast, which keeps signalling NaNs as they are
        // (F16C would quiet them). The vector kernel takes what it can, the
        // portable one the rest.
        let done = simd::f16_to_f32(src, dst);
        f16_portable(&src[done..], &mut dst[done..]);
    }
}

/// The portable F16 conversion (what runs where the vector kernel does
/// not): integer operations the compiler turns into vector code for any
/// x86-64, in runs of [`F16_RUN`]; a run of normal numbers and zeros (all
/// of a typical weight tensor) takes the short path.
pub(super) fn f16_portable(src: &[f16], dst: &mut [f32]) {
    for (d, s) in dst.chunks_mut(F16_RUN).zip(src.chunks(F16_RUN)) {
        if all_normal_or_zero(s) {
            for (d, s) in d.iter_mut().zip(s) {
                *d = f16_normal_or_zero_to_f32(s.to_bits());
            }
        } else {
            for (d, s) in d.iter_mut().zip(s) {
                *d = f16_bits_to_f32(s.to_bits());
            }
        }
    }
}

/// F16 elements checked together for the short path: a subnormal, infinity
/// or NaN sends only its own run to the general one.
const F16_RUN: usize = 64;

/// 2^-24, the value of the least f16 subnormal.
const F16_SUBNORMAL_UNIT: f32 = 1.0 / 16_777_216.0;

/// Whether every f16 in `run` is a normal number or a zero. Per
/// magnitude, two unsigned saturating differences are nonzero exactly for
/// an infinity or NaN (above 0x7BFF) and for a subnormal (1..=0x3FF, which
/// less one lies below 0x3FF); OR-ed over the run, they vectorize to eight
/// lanes in four operations.
#[inline(always)]
fn all_normal_or_zero(run: &[f16]) -> bool {
    run.iter().fold(0u16, |bad, h| {
        let magnitude = h.to_bits() & 0x7FFF;
        bad | magnitude.saturating_sub(0x7BFF) | 0x03FFu16.saturating_sub(magnitude.wrapping_sub(1))
    }) == 0
}

/// 2^112 = 2^(127 - 15): the factor between an f16's exponent and the same
/// bits read as an f32's.
const F16_REBIAS: f32 = f32::from_bits((127 + 112) << 23);

/// [`f16_bits_to_f32`] for a normal number or a zero: the sign moves to
/// bit 31 and the exponent and mantissa to bits 13..28 (an arithmetic
/// shift of the bits placed at 16..32, the shifted-in copies of the sign
/// masked off), giving a normal f32 (or a zero) 2^112 times too small;
/// the multiplication by 2^112 is exact and keeps the sign.
#[inline(always)]
fn f16_normal_or_zero_to_f32(h: u16) -> f32 {
    let high = u32::from(h) << 16;
    f32::from_bits((high as i32 >> 3) as u32 & 0x8FFF_FFFF) * F16_REBIAS
}

/// The exact f32 value of the f16 with bits `h`: a normal number rebiases
/// its exponent, a subnormal (or zero) is its integer mantissa times 2^-24
/// (exact: at most 10 significant bits), an infinity or NaN keeps its
/// mantissa under an all-ones exponent (payload and signalling bit as they
/// are, as numpy does).
#[inline(always)]
fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let magnitude = u32::from(h & 0x7FFF);
    let normal = (magnitude << 13) + 0x3800_0000;
    let special = (magnitude << 13) | 0x7F80_0000;
    let subnormal = (magnitude as i32 as f32 * F16_SUBNORMAL_UNIT).to_bits();
    let bits = if magnitude < 0x0400 {
        subnormal
    } else if magnitude >= 0x7C00 {
        special
    } else {
        normal
    };
    f32::from_bits(sign | bits)
}

impl Plain for bf16 {
    #[inline(always)]
    fn read(bytes: &[u8], order: ByteOrder) -> Self {
        bf16::from_bits(read_u16(bytes, order))
    }

    #[inline]
    fn to_f32_slice(src: &[Self], dst: &mut [f32]) {
        // Matches gguf-py 0.19.0 quants.BF16.dequantize_blocks: the bits
        // shifted into the top half of an f32, NaN payloads kept.
        let done = simd::bf16_to_f32(src, dst);
        for (d, &s) in dst[done..].iter_mut().zip(&src[done..]) {
            *d = f32::from_bits(u32::from(s.to_bits()) << 16);
        }
    }
}

/// The bits of a 16-bit float from exactly two bytes.
#[inline(always)]
fn read_u16(bytes: &[u8], order: ByteOrder) -> u16 {
    let raw = [bytes[0], bytes[1]];
    match order {
        ByteOrder::Little => u16::from_le_bytes(raw),
        ByteOrder::Big => u16::from_be_bytes(raw),
    }
}

/// Converts plain values of type `dtype` stored in byte order `order` into
/// `out`, one output per element.
///
/// # Errors
/// [`Error::LengthMismatch`] when `bytes` is not whole elements or `out`
/// does not hold exactly as many; [`Error::Unsupported`] for a block type.
pub(super) fn dequantize<O: Output>(
    dtype: GgmlType,
    bytes: &[u8],
    order: ByteOrder,
    out: &mut [O],
) -> Result<()> {
    match dtype {
        GgmlType::F32 => convert::<f32, O>(bytes, order, out),
        GgmlType::F16 => convert::<f16, O>(bytes, order, out),
        GgmlType::BF16 => convert::<bf16, O>(bytes, order, out),
        GgmlType::F64 => convert::<f64, O>(bytes, order, out),
        GgmlType::I8 => convert::<i8, O>(bytes, order, out),
        GgmlType::I16 => convert::<i16, O>(bytes, order, out),
        GgmlType::I32 => convert::<i32, O>(bytes, order, out),
        GgmlType::I64 => convert::<i64, O>(bytes, order, out),
        _ => Err(Error::Unsupported {
            tensor: None,
            operation: "plain conversion",
            dtype,
            reason: "not a plain element type",
        }),
    }
}

fn convert<T: Plain, O: Output>(bytes: &[u8], order: ByteOrder, out: &mut [O]) -> Result<()> {
    let size = std::mem::size_of::<T>();
    if bytes.len() % size != 0 {
        return Err(Error::LengthMismatch {
            tensor: None,
            what: "plain data (whole elements)",
            expected: bytes.len() / size * size,
            found: bytes.len(),
        });
    }
    let n = bytes.len() / size;
    if out.len() != n {
        return Err(Error::LengthMismatch {
            tensor: None,
            what: "dequantization output",
            expected: n,
            found: out.len(),
        });
    }
    let typed = if order.is_native() {
        bytemuck::try_cast_slice::<u8, T>(bytes).ok()
    } else {
        None
    };
    match typed {
        // Native order, aligned: convert straight from the input.
        Some(src) => {
            if TypeId::of::<T>() == TypeId::of::<f32>() {
                if let (Ok(src), Some(dst)) = (bytemuck::try_cast_slice::<T, f32>(src), as_f32(out))
                {
                    // F32 into f32: one copy.
                    dst.copy_from_slice(src);
                    return Ok(());
                }
            }
            emit(out, DIRECT_CHUNK, |start, dst| {
                T::to_f32_slice(&src[start..start + dst.len()], dst)
            })
        }
        // Swapped or misaligned: decode a chunk onto the stack first.
        None => {
            let mut tmp = [<T as bytemuck::Zeroable>::zeroed(); CHUNK];
            emit(out, CHUNK, |start, dst| {
                let tmp = &mut tmp[..dst.len()];
                let raw = &bytes[start * size..(start + dst.len()) * size];
                for (t, raw) in tmp.iter_mut().zip(raw.chunks_exact(size)) {
                    *t = T::read(raw, order);
                }
                T::to_f32_slice(tmp, dst);
            })
        }
    }
    Ok(())
}

/// Calls `fill(start, dst)` for consecutive chunks of at most `chunk`
/// outputs (at most [`CHUNK`] unless `O` is f32), `dst` being f32 for
/// elements `start..start + dst.len()`, and stores them into `out`: in place
/// when `O` is f32, else through a stack buffer and
/// [`Output::from_f32_slice`].
fn emit<O: Output>(out: &mut [O], chunk: usize, mut fill: impl FnMut(usize, &mut [f32])) {
    if let Some(out) = as_f32(out) {
        for (i, dst) in out.chunks_mut(chunk).enumerate() {
            fill(i * chunk, dst);
        }
        return;
    }
    let chunk = chunk.min(CHUNK);
    let mut tmp = [0f32; CHUNK];
    for (i, dst) in out.chunks_mut(chunk).enumerate() {
        let tmp = &mut tmp[..dst.len()];
        fill(i * chunk, tmp);
        O::from_f32_slice(tmp, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_f32(dtype: GgmlType, bytes: &[u8], order: ByteOrder) -> Vec<f32> {
        let mut out = vec![0f32; bytes.len() / dtype.bytes_per_block()];
        dequantize(dtype, bytes, order, &mut out).unwrap();
        out
    }

    /// The same values read from aligned, misaligned and byte-swapped input.
    fn all_layouts(dtype: GgmlType, le: &[u8]) -> Vec<f32> {
        let size = dtype.bytes_per_block();
        let reference = to_f32(dtype, le, ByteOrder::Little);
        let mut shifted = vec![0u8; le.len() + 1];
        shifted[1..].copy_from_slice(le);
        let misaligned = to_f32(dtype, &shifted[1..], ByteOrder::Little);
        let be: Vec<u8> = le
            .chunks(size)
            .flat_map(|c| c.iter().rev().copied())
            .collect();
        let swapped = to_f32(dtype, &be, ByteOrder::Big);
        for (a, b) in reference
            .iter()
            .zip(&misaligned)
            .chain(reference.iter().zip(&swapped))
        {
            assert_eq!(a.to_bits(), b.to_bits(), "{dtype}");
        }
        reference
    }

    /// Every f16 bit pattern, in runs that mix the short path's numbers
    /// with subnormals, infinities and NaNs and runs that do not: numpy's
    /// cast, value for value and NaN payload for NaN payload.
    #[test]
    fn every_f16_bit_pattern_converts_as_numpy_does() {
        let all: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        // Also shifted by a few elements, so runs start at other patterns.
        for skip in [0, 1, 37] {
            let src = &all[skip..];
            let mut out = vec![0f32; src.len()];
            f16::to_f32_slice(src, &mut out);
            for (h, o) in src.iter().zip(&out) {
                let bits = h.to_bits();
                let expected = if h.is_nan() {
                    (u32::from(bits & 0x8000) << 16)
                        | 0x7F80_0000
                        | (u32::from(bits & 0x03FF) << 13)
                } else {
                    h.to_f32().to_bits()
                };
                assert_eq!(o.to_bits(), expected, "f16 bits {bits:#06x}");
            }
        }
    }

    #[test]
    fn floats() {
        let v = [1.5f32, -0.0, f32::INFINITY, 3.4e38, 1e-45];
        let le: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(all_layouts(GgmlType::F32, &le), v);

        let v = [1.0f64, -2.5, 1e300, 1e-300, 0.1, 16777217.0];
        let le: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let out = all_layouts(GgmlType::F64, &le);
        assert_eq!(out, [1.0, -2.5, f32::INFINITY, 0.0, 0.1f32, 16777216.0]);

        let bits = [0x3C00u16, 0xC000, 0x7C00, 0x0001, 0x7BFF];
        let le: Vec<u8> = bits.iter().flat_map(|x| x.to_le_bytes()).collect();
        let out = all_layouts(GgmlType::F16, &le);
        assert_eq!(out, [1.0, -2.0, f32::INFINITY, 2f32.powi(-24), 65504.0]);

        let bits = [0x3F80u16, 0xC040, 0xFF80, 0x0001];
        let le: Vec<u8> = bits.iter().flat_map(|x| x.to_le_bytes()).collect();
        let out = all_layouts(GgmlType::BF16, &le);
        assert_eq!(
            out,
            [1.0, -3.0, f32::NEG_INFINITY, f32::from_bits(0x0001_0000)]
        );
    }

    #[test]
    fn nan_passes_through() {
        // F16 NaNs keep sign and payload, signalling ones too, as in numpy.
        let bits = [0x7E00u16, 0x7C01, 0xFD55, 0x3C00];
        let le: Vec<u8> = bits.iter().flat_map(|x| x.to_le_bytes()).collect();
        let out: Vec<u32> = all_layouts(GgmlType::F16, &le)
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(out, [0x7FC0_0000, 0x7F80_2000, 0xFFAA_A000, 0x3F80_0000]);
        // BF16 keeps the payload bits, as gguf-py's shift does.
        let out = all_layouts(GgmlType::BF16, &0xFFC1u16.to_le_bytes());
        assert_eq!(out[0].to_bits(), 0xFFC1_0000);
        let out = all_layouts(GgmlType::F64, &f64::NAN.to_le_bytes());
        assert!(out[0].is_nan());
    }

    #[test]
    fn integers() {
        let le: Vec<u8> = [-128i8, -1, 0, 127].iter().map(|&x| x as u8).collect();
        assert_eq!(all_layouts(GgmlType::I8, &le), [-128.0, -1.0, 0.0, 127.0]);
        let le: Vec<u8> = [i16::MIN, -2, 300, i16::MAX]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            all_layouts(GgmlType::I16, &le),
            [-32768.0, -2.0, 300.0, 32767.0]
        );
        // 2^24 + 1 rounds to even (2^24), 2^24 + 3 to 2^24 + 4.
        let le: Vec<u8> = [16777217i32, 16777219, i32::MIN, -7]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            all_layouts(GgmlType::I32, &le),
            [16777216.0, 16777220.0, -2147483648.0, -7.0]
        );
        let le: Vec<u8> = [i64::MAX, (1 << 40) + 1, -5]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            all_layouts(GgmlType::I64, &le),
            [9.223372e18, 1099511627776.0, -5.0]
        );
    }

    #[test]
    fn long_input_and_half_outputs() {
        // More than one chunk, and every output type.
        let v: Vec<f32> = (0..(2 * DIRECT_CHUNK + 7))
            .map(|i| i as f32 * 0.25 - 100.0)
            .collect();
        let le: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(all_layouts(GgmlType::F32, &le), v);
        let mut h = vec![f16::ZERO; v.len()];
        dequantize(GgmlType::F32, &le, ByteOrder::Little, &mut h).unwrap();
        assert!(h.iter().zip(&v).all(|(h, v)| *h == f16::from_f32(*v)));
        let mut b = vec![bf16::ZERO; v.len()];
        dequantize(GgmlType::F32, &le, ByteOrder::Big, &mut b[..0]).unwrap_err();
        dequantize(GgmlType::F32, &le, ByteOrder::Little, &mut b).unwrap();
        assert!(b.iter().zip(&v).all(|(b, v)| *b == bf16::from_f32(*v)));
    }

    #[test]
    fn length_errors() {
        let mut out = [0f32; 2];
        let err = dequantize(GgmlType::F16, &[0; 3], ByteOrder::Little, &mut out[..1]).unwrap_err();
        assert!(matches!(
            err,
            Error::LengthMismatch {
                tensor: None,
                expected: 2,
                found: 3,
                ..
            }
        ));
        let err = dequantize(GgmlType::I32, &[0; 4], ByteOrder::Little, &mut out).unwrap_err();
        assert!(matches!(
            err,
            Error::LengthMismatch {
                tensor: None,
                expected: 1,
                found: 2,
                ..
            }
        ));
        let err = dequantize(GgmlType::Q4_0, &[0; 18], ByteOrder::Little, &mut out).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }));
    }
}
