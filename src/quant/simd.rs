//! Vector kernels chosen at run time: on x86-64 CPUs with AVX2 (the
//! x86-64-v3 level), the types where wider vectors or a byte shuffle pay
//! decode through 256-bit code instead of what the compiler makes of the
//! portable kernels for baseline x86-64 (SSE2).
//!
//! The CPU check and the switch into AVX2 code are `pulp`'s: its `V3`
//! token exists only where the CPU has the features, and its intrinsics
//! are safe methods of that token, so this module needs no `unsafe`.
//!
//! Every kernel evaluates the portable kernel's floating-point operations
//! in the same order (an exact integer-to-float conversion, then one
//! multiplication, then for the k-quants one subtraction; never fused), so
//! the two give the same bits, NaN payloads included; the unit tests below
//! compare them on random blocks, NaN and infinite scales, and on every
//! fixture. `GGUFMAP_SIMD=off` in the environment turns this module off
//! (read once per process), which is how the fixtures are also checked on
//! the portable path.

#[cfg(all(feature = "simd", target_arch = "x86_64"))]
use std::sync::OnceLock;

use crate::dtype::GgmlType;

/// The AVX2 token, where this CPU has AVX2 and `GGUFMAP_SIMD` is not
/// `off` (or `0`, `false`).
#[cfg(all(feature = "simd", target_arch = "x86_64"))]
fn v3() -> Option<pulp::x86::V3> {
    allowed().then(pulp::x86::V3::try_new).flatten()
}

/// Whether vector kernels may be used (read once per process).
#[cfg(all(feature = "simd", target_arch = "x86_64"))]
fn allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| {
        !matches!(
            std::env::var("GGUFMAP_SIMD").as_deref(),
            Ok("off" | "0" | "false")
        )
    })
}

/// Decodes `blocks` (whole blocks of `dtype`, aligned for its block struct)
/// into `out` with the type's vector kernel, if it has one and this CPU
/// runs it; `false` (nothing written) otherwise.
pub(crate) fn dequantize_blocks(dtype: GgmlType, blocks: &[u8], out: &mut [f32]) -> bool {
    #[cfg(all(feature = "simd", target_arch = "x86_64"))]
    if let Some(simd) = v3() {
        return x86::dequantize_blocks(simd, dtype, blocks, out);
    }
    let _ = (dtype, blocks, out);
    false
}

/// The entry point of a plain type's vector conversion: the number of
/// leading values of `src` converted into `dst` (a multiple of the
/// kernel's run; the caller converts the rest), none where this CPU or
/// build has no vector kernel.
macro_rules! conversion {
    ($(#[$doc:meta])* $name:ident, $t:ty) => {
        $(#[$doc])*
        pub(crate) fn $name(src: &[$t], dst: &mut [f32]) -> usize {
            #[cfg(all(feature = "simd", target_arch = "x86_64"))]
            if let Some(simd) = v3() {
                return x86::$name(simd, src, dst);
            }
            let _ = (src, dst);
            0
        }
    };
}

conversion!(
    /// F16 to f32, exactly (NaN payloads as they are).
    f16_to_f32,
    half::f16
);
conversion!(
    /// BF16 to f32, exactly.
    bf16_to_f32,
    half::bf16
);
conversion!(
    /// I64 to f32, rounded to nearest even as `as f32`.
    i64_to_f32,
    i64
);

#[cfg(all(feature = "simd", target_arch = "x86_64"))]
mod x86 {
    use std::arch::x86_64::{__m128i, __m256, __m256d, __m256i};

    use pulp::x86::V3;

    use super::super::bits::{f16_to_f32 as scale_f16, q3_k_scales};
    use super::super::fp4::{e8m0_to_f32_half, ue4m3_to_f32_half};
    use super::super::grids::{KVALUES_FP4, KVALUES_IQ4NL};
    use super::super::kquants::sub_block_scales;
    use super::super::ternary::tq1_digits;
    use super::super::{
        BlockIQ4_NL, BlockIQ4_XS, BlockMXFP4, BlockNVFP4, BlockQ1_0, BlockQ2_0, BlockQ2_K,
        BlockQ3_K, BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_0, BlockQ5_1, BlockQ5_K, BlockQ6_K,
        BlockQ8_0, BlockQ8_1, BlockQ8_K, BlockTQ1_0, BlockTQ2_0,
    };
    use crate::dtype::GgmlType;

    /// Views the bytes as blocks of the kernel's type and runs the kernel on
    /// them inside AVX2 code (`false` if they are not whole, aligned
    /// blocks). Only code inlined into `vectorize` is compiled for AVX2;
    /// anything left out of line runs every intrinsic as a call, 5-20x
    /// slower than the portable kernel. So the kernel and its helpers are
    /// `#[inline(always)]`, and the closure moves the output in and hands
    /// it on (`let out = out`), which makes it a closure that can only be
    /// called once: one that merely borrows `out` is called through a
    /// `FnOnce` shim that is not `#[inline(always)]`, and which LLVM left
    /// out of line.
    macro_rules! vector {
        ($simd:ident, $bytes:ident, $out:ident, $kernel:ident) => {
            match bytemuck::try_cast_slice($bytes) {
                Ok(blocks) => {
                    $simd.vectorize(
                        #[inline(always)]
                        move || {
                            let out = $out;
                            $kernel($simd, blocks, out)
                        },
                    );
                    true
                }
                Err(_) => false,
            }
        };
    }

    pub(super) fn dequantize_blocks(
        simd: V3,
        dtype: GgmlType,
        blocks: &[u8],
        out: &mut [f32],
    ) -> bool {
        match dtype {
            GgmlType::Q4_0 => vector!(simd, blocks, out, q4_0),
            GgmlType::Q4_1 => vector!(simd, blocks, out, q4_1),
            GgmlType::Q5_0 => vector!(simd, blocks, out, q5_0),
            GgmlType::Q5_1 => vector!(simd, blocks, out, q5_1),
            GgmlType::Q8_0 => vector!(simd, blocks, out, q8_0),
            GgmlType::Q8_1 => vector!(simd, blocks, out, q8_1),
            GgmlType::Q8_K => vector!(simd, blocks, out, q8_k),
            GgmlType::Q2_K => vector!(simd, blocks, out, q2_k),
            GgmlType::Q3_K => vector!(simd, blocks, out, q3_k),
            GgmlType::Q4_K => vector!(simd, blocks, out, q4_k),
            GgmlType::Q5_K => vector!(simd, blocks, out, q5_k),
            GgmlType::Q6_K => vector!(simd, blocks, out, q6_k),
            GgmlType::IQ4_NL => vector!(simd, blocks, out, iq4_nl),
            GgmlType::IQ4_XS => vector!(simd, blocks, out, iq4_xs),
            GgmlType::MXFP4 => vector!(simd, blocks, out, mxfp4),
            GgmlType::NVFP4 => vector!(simd, blocks, out, nvfp4),
            GgmlType::TQ1_0 => vector!(simd, blocks, out, tq1_0),
            GgmlType::TQ2_0 => vector!(simd, blocks, out, tq2_0),
            GgmlType::Q1_0 => vector!(simd, blocks, out, q1_0),
            GgmlType::Q2_0 => vector!(simd, blocks, out, q2_0),
            _ => false,
        }
    }

    // --- loads and stores --------------------------------------------------------------

    /// Sixteen bytes as a vector.
    #[inline(always)]
    fn load16(bytes: &[u8]) -> __m128i {
        let mut raw = [0u8; 16];
        raw.copy_from_slice(&bytes[..16]);
        bytemuck::cast(raw)
    }

    /// Thirty-two bytes as a vector.
    #[inline(always)]
    fn load32(bytes: &[u8]) -> __m256i {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&bytes[..32]);
        bytemuck::cast(raw)
    }

    /// Eight f32 into `out[..8]`.
    #[inline(always)]
    fn store8(out: &mut [f32], v: __m256) {
        let values: [f32; 8] = bytemuck::cast(v);
        out[..8].copy_from_slice(&values);
    }

    // --- the shared steps ----------------------------------------------------------------

    /// 16 signed bytes as two vectors of eight f32 (exact).
    #[inline(always)]
    fn i8x16_to_f32(simd: V3, q: __m128i) -> [__m256; 2] {
        let high = simd.sse2._mm_srli_si128::<8>(q);
        [q, high].map(|half| {
            simd.avx
                ._mm256_cvtepi32_ps(simd.avx2._mm256_cvtepi8_epi32(half))
        })
    }

    /// 16 unsigned bytes as two vectors of eight f32 (exact).
    #[inline(always)]
    fn u8x16_to_f32(simd: V3, q: __m128i) -> [__m256; 2] {
        let high = simd.sse2._mm_srli_si128::<8>(q);
        [q, high].map(|half| {
            simd.avx
                ._mm256_cvtepi32_ps(simd.avx2._mm256_cvtepu8_epi32(half))
        })
    }

    /// `d * q` for 16 signed bytes `q`, into `out[..16]`.
    #[inline(always)]
    fn scale_i8x16(simd: V3, d: __m256, q: __m128i, out: &mut [f32]) {
        for (v, out) in i8x16_to_f32(simd, q)
            .into_iter()
            .zip(out.chunks_exact_mut(8))
        {
            store8(out, simd.avx._mm256_mul_ps(d, v));
        }
    }

    /// `d * q` for 32 signed bytes, into `out[..32]`.
    #[inline(always)]
    fn scale_i8x32(simd: V3, d: f32, qs: &[i8; 32], out: &mut [f32]) {
        let d = simd.avx._mm256_set1_ps(d);
        let [low, high]: [__m128i; 2] = bytemuck::cast(*qs);
        scale_i8x16(simd, d, low, out);
        scale_i8x16(simd, d, high, &mut out[16..]);
    }

    /// `d * q + m` for 32 unsigned bytes `q`, into `out[..32]` (the `_1`
    /// legacy types' order: product, then minimum added).
    #[inline(always)]
    fn scale_add_u8x32(simd: V3, d: f32, m: f32, q: __m256i, out: &mut [f32]) {
        let (d, m) = (simd.avx._mm256_set1_ps(d), simd.avx._mm256_set1_ps(m));
        let halves: [__m128i; 2] = bytemuck::cast(q);
        for (half, out) in halves.into_iter().zip(out.chunks_exact_mut(16)) {
            for (v, out) in u8x16_to_f32(simd, half)
                .into_iter()
                .zip(out.chunks_exact_mut(8))
            {
                store8(out, simd.avx._mm256_add_ps(simd.avx._mm256_mul_ps(d, v), m));
            }
        }
    }

    /// The 32 four-bit values of a legacy block: the low nibbles of its 16
    /// bytes (elements 0..16), then the high ones (16..32).
    #[inline(always)]
    fn legacy_nibbles(simd: V3, qs: &[u8; 16]) -> __m256i {
        let q: __m128i = bytemuck::cast(*qs);
        let mask = simd.sse2._mm_set1_epi8(0x0F);
        let low = simd.sse2._mm_and_si128(q, mask);
        let high = simd
            .sse2
            ._mm_and_si128(simd.sse2._mm_srli_epi16::<4>(q), mask);
        bytemuck::cast([low, high])
    }

    /// 16 where bit `l` of the little-endian `qh` is set, for byte lane `l`
    /// of 32: the fifth bits of Q5_0 and Q5_1.
    #[inline(always)]
    fn fifth_bits(simd: V3, qh: [u8; 4]) -> __m256i {
        let (avx, avx2) = (simd.avx, simd.avx2);
        let word = avx._mm256_set1_epi32(i32::from_le_bytes(qh));
        // Lane l takes byte l / 8 of the word and tests bit l % 8 of it.
        let spread = avx._mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
            3, 3, 3,
        );
        let bits = avx._mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
        let bytes = avx2._mm256_shuffle_epi8(word, spread);
        let set = avx2._mm256_cmpeq_epi8(avx2._mm256_and_si256(bytes, bits), bits);
        avx2._mm256_and_si256(set, avx._mm256_set1_epi8(16))
    }

    /// `d * q - m` for 16 unsigned bytes `q`, into `out[..16]`.
    #[inline(always)]
    fn scale_min_u8x16(simd: V3, d: f32, m: f32, q: __m128i, out: &mut [f32]) {
        let (d, m) = (simd.avx._mm256_set1_ps(d), simd.avx._mm256_set1_ps(m));
        for (v, out) in u8x16_to_f32(simd, q)
            .into_iter()
            .zip(out.chunks_exact_mut(8))
        {
            store8(out, simd.avx._mm256_sub_ps(simd.avx._mm256_mul_ps(d, v), m));
        }
    }

    /// `d * q - m` for 32 unsigned bytes `q`, into `out[..32]`.
    #[inline(always)]
    fn scale_min_u8x32(simd: V3, d: f32, m: f32, q: __m256i, out: &mut [f32]) {
        let halves: [__m128i; 2] = bytemuck::cast(q);
        for (half, out) in halves.into_iter().zip(out.chunks_exact_mut(16)) {
            scale_min_u8x16(simd, d, m, half, out);
        }
    }

    /// 32 bytes shifted right by 0, 2, 4 and 6 bits (each byte's 2-bit
    /// fields in turn at its bottom, above them what the caller masks off).
    #[inline(always)]
    fn shifted_by_two_bits(simd: V3, q: __m256i) -> [__m256i; 4] {
        let avx2 = simd.avx2;
        [
            q,
            avx2._mm256_srli_epi16::<2>(q),
            avx2._mm256_srli_epi16::<4>(q),
            avx2._mm256_srli_epi16::<6>(q),
        ]
    }

    /// The low and high nibbles of 32 bytes.
    #[inline(always)]
    fn nibbles32(simd: V3, q: __m256i) -> (__m256i, __m256i) {
        let mask = simd.avx._mm256_set1_epi8(0x0F);
        let low = simd.avx2._mm256_and_si256(q, mask);
        let high = simd
            .avx2
            ._mm256_and_si256(simd.avx2._mm256_srli_epi16::<4>(q), mask);
        (low, high)
    }

    /// 32 four-bit codes (the low nibbles of `qs`, then the high ones)
    /// decoded as `scale * levels[code]` into `out[..32]`: a byte shuffle
    /// looks the 16 levels up, sixteen codes at a time.
    #[inline(always)]
    fn lookup_nibbles16(simd: V3, scale: f32, levels: &[i8; 16], qs: &[u8], out: &mut [f32]) {
        let table: __m128i = bytemuck::cast(*levels);
        let q = load16(qs);
        let mask = simd.sse2._mm_set1_epi8(0x0F);
        let low = simd.sse2._mm_and_si128(q, mask);
        let high = simd
            .sse2
            ._mm_and_si128(simd.sse2._mm_srli_epi16::<4>(q), mask);
        let d = simd.avx._mm256_set1_ps(scale);
        scale_i8x16(simd, d, simd.ssse3._mm_shuffle_epi8(table, low), out);
        scale_i8x16(
            simd,
            d,
            simd.ssse3._mm_shuffle_epi8(table, high),
            &mut out[16..],
        );
    }

    // --- the kernels ----------------------------------------------------------------------

    #[inline(always)]
    fn q4_0(simd: V3, blocks: &[BlockQ4_0], out: &mut [f32]) {
        let eight = simd.avx._mm256_set1_epi8(8);
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            let q = simd
                .avx2
                ._mm256_sub_epi8(legacy_nibbles(simd, &b.qs), eight);
            scale_i8x32_vector(simd, simd.avx._mm256_set1_ps(scale_f16(b.d)), q, out);
        }
    }

    #[inline(always)]
    fn q4_1(simd: V3, blocks: &[BlockQ4_1], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            let q = legacy_nibbles(simd, &b.qs);
            scale_add_u8x32(simd, scale_f16(b.d), scale_f16(b.m), q, out);
        }
    }

    #[inline(always)]
    fn q5_0(simd: V3, blocks: &[BlockQ5_0], out: &mut [f32]) {
        let sixteen = simd.avx._mm256_set1_epi8(16);
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            let q = simd
                .avx2
                ._mm256_or_si256(legacy_nibbles(simd, &b.qs), fifth_bits(simd, b.qh));
            let q = simd.avx2._mm256_sub_epi8(q, sixteen);
            scale_i8x32_vector(simd, simd.avx._mm256_set1_ps(scale_f16(b.d)), q, out);
        }
    }

    #[inline(always)]
    fn q5_1(simd: V3, blocks: &[BlockQ5_1], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            let q = simd
                .avx2
                ._mm256_or_si256(legacy_nibbles(simd, &b.qs), fifth_bits(simd, b.qh));
            scale_add_u8x32(simd, scale_f16(b.d), scale_f16(b.m), q, out);
        }
    }

    #[inline(always)]
    fn q8_0(simd: V3, blocks: &[BlockQ8_0], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            scale_i8x32(simd, scale_f16(b.d), &b.qs, out);
        }
    }

    #[inline(always)]
    fn q8_1(simd: V3, blocks: &[BlockQ8_1], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            scale_i8x32(simd, scale_f16(b.d), &b.qs, out);
        }
    }

    #[inline(always)]
    fn q8_k(simd: V3, blocks: &[BlockQ8_K], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(256)) {
            for (qs, out) in b.qs.chunks_exact(32).zip(out.chunks_exact_mut(32)) {
                let qs: &[i8; 32] = qs.try_into().expect("32 values");
                scale_i8x32(simd, b.d, qs, out);
            }
        }
    }

    #[inline(always)]
    fn q4_k(simd: V3, blocks: &[BlockQ4_K], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(256)) {
            let (dl, ml) = sub_block_scales(&b.scales, b.d, b.dmin);
            let groups = b.qs.chunks_exact(32).zip(out.chunks_exact_mut(64));
            for (i, (qs, out)) in groups.enumerate() {
                let (low, high) = nibbles32(simd, load32(qs));
                scale_min_u8x32(simd, dl[2 * i], ml[2 * i], low, out);
                scale_min_u8x32(simd, dl[2 * i + 1], ml[2 * i + 1], high, &mut out[32..]);
            }
        }
    }

    #[inline(always)]
    fn q5_k(simd: V3, blocks: &[BlockQ5_K], out: &mut [f32]) {
        let sixteen = simd.avx._mm256_set1_epi8(16);
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(256)) {
            let (dl, ml) = sub_block_scales(&b.scales, b.d, b.dmin);
            let qh = load32(&b.qh);
            let groups = b.qs.chunks_exact(32).zip(out.chunks_exact_mut(64));
            for (i, (qs, out)) in groups.enumerate() {
                let (low, high) = nibbles32(simd, load32(qs));
                // Fifth bits: bit 2i of qh for the low nibbles, 2i + 1 for the high.
                let fifth = |bit: i32| {
                    let bit = simd.avx._mm256_set1_epi8(1 << bit);
                    let set = simd
                        .avx2
                        ._mm256_cmpeq_epi8(simd.avx2._mm256_and_si256(qh, bit), bit);
                    simd.avx2._mm256_and_si256(set, sixteen)
                };
                let low = simd.avx2._mm256_or_si256(low, fifth(2 * i as i32));
                let high = simd.avx2._mm256_or_si256(high, fifth(2 * i as i32 + 1));
                scale_min_u8x32(simd, dl[2 * i], ml[2 * i], low, out);
                scale_min_u8x32(simd, dl[2 * i + 1], ml[2 * i + 1], high, &mut out[32..]);
            }
        }
    }

    #[inline(always)]
    fn q2_k(simd: V3, blocks: &[BlockQ2_K], out: &mut [f32]) {
        let (avx, avx2) = (simd.avx, simd.avx2);
        let three = avx._mm256_set1_epi8(3);
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(256)) {
            let (d, dmin) = (scale_f16(b.d), scale_f16(b.dmin));
            let dl: [f32; 16] = std::array::from_fn(|k| d * f32::from(b.scales[k] & 0xF));
            let ml: [f32; 16] = std::array::from_fn(|k| dmin * f32::from(b.scales[k] >> 4));
            for (g, (qs, out)) in
                b.qs.chunks_exact(32)
                    .zip(out.chunks_exact_mut(128))
                    .enumerate()
            {
                let q = load32(qs);
                let runs = shifted_by_two_bits(simd, q);
                for (j, (run, out)) in runs.into_iter().zip(out.chunks_exact_mut(32)).enumerate() {
                    let [first, second]: [__m128i; 2] =
                        bytemuck::cast(avx2._mm256_and_si256(run, three));
                    // Sixteen values per sub-block scale and minimum.
                    for (k, (half, out)) in [first, second]
                        .into_iter()
                        .zip(out.chunks_exact_mut(16))
                        .enumerate()
                    {
                        let sub = 8 * g + 2 * j + k;
                        scale_min_u8x16(simd, dl[sub], ml[sub], half, out);
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn q3_k(simd: V3, blocks: &[BlockQ3_K], out: &mut [f32]) {
        let (avx, avx2) = (simd.avx, simd.avx2);
        let (three, four) = (avx._mm256_set1_epi8(3), avx._mm256_set1_epi8(4));
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(256)) {
            let d = scale_f16(b.d);
            let scales = q3_k_scales(&b.scales);
            let dl: [f32; 16] = std::array::from_fn(|k| d * f32::from(scales[k]));
            let hmask = load32(&b.hmask);
            for (g, (qs, out)) in
                b.qs.chunks_exact(32)
                    .zip(out.chunks_exact_mut(128))
                    .enumerate()
            {
                let q = load32(qs);
                let lows = shifted_by_two_bits(simd, q);
                for (j, (low, out)) in lows.into_iter().zip(out.chunks_exact_mut(32)).enumerate() {
                    // Run j of group g: two bits at 2j, less 4 where bit
                    // 4g + j of hmask is clear.
                    let bit = avx._mm256_set1_epi8(1 << (4 * g + j));
                    let set = avx2._mm256_cmpeq_epi8(avx2._mm256_and_si256(hmask, bit), bit);
                    let less = avx2._mm256_andnot_si256(set, four);
                    let value = avx2._mm256_sub_epi8(avx2._mm256_and_si256(low, three), less);
                    let [first, second]: [__m128i; 2] = bytemuck::cast(value);
                    let scale = |k: usize| avx._mm256_set1_ps(dl[8 * g + 2 * j + k]);
                    scale_i8x16(simd, scale(0), first, out);
                    scale_i8x16(simd, scale(1), second, &mut out[16..]);
                }
            }
        }
    }

    #[inline(always)]
    fn q6_k(simd: V3, blocks: &[BlockQ6_K], out: &mut [f32]) {
        let (avx, avx2) = (simd.avx, simd.avx2);
        let (low4, low2, high2) = (
            avx._mm256_set1_epi8(0x0F),
            avx._mm256_set1_epi8(0x03),
            avx._mm256_set1_epi8(0xC0_u8 as i8),
        );
        let thirty_two = avx._mm256_set1_epi8(32);
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(256)) {
            let d = scale_f16(b.d);
            let dl: [f32; 16] = std::array::from_fn(|k| d * f32::from(b.scales[k]));
            for (g, out) in out.chunks_exact_mut(128).enumerate() {
                let (a, c) = (load32(&b.ql[64 * g..]), load32(&b.ql[64 * g + 32..]));
                let h = load32(&b.qh[32 * g..]);
                // Run j of 32: a nibble of `ql` and bits 2j..2j+2 of `qh` as its top two.
                let top =
                    |bits: __m256i| avx2._mm256_slli_epi16::<4>(avx2._mm256_and_si256(bits, low2));
                let runs = [
                    avx2._mm256_or_si256(avx2._mm256_and_si256(a, low4), top(h)),
                    avx2._mm256_or_si256(
                        avx2._mm256_and_si256(c, low4),
                        top(avx2._mm256_srli_epi16::<2>(h)),
                    ),
                    avx2._mm256_or_si256(
                        avx2._mm256_and_si256(avx2._mm256_srli_epi16::<4>(a), low4),
                        top(avx2._mm256_srli_epi16::<4>(h)),
                    ),
                    avx2._mm256_or_si256(
                        avx2._mm256_and_si256(avx2._mm256_srli_epi16::<4>(c), low4),
                        avx2._mm256_srli_epi16::<2>(avx2._mm256_and_si256(h, high2)),
                    ),
                ];
                for (j, (run, out)) in runs.into_iter().zip(out.chunks_exact_mut(32)).enumerate() {
                    let [first, second]: [__m128i; 2] =
                        bytemuck::cast(avx2._mm256_sub_epi8(run, thirty_two));
                    // Sixteen values per sub-block scale.
                    let scale = |k: usize| avx._mm256_set1_ps(dl[8 * g + 2 * j + k]);
                    scale_i8x16(simd, scale(0), first, out);
                    scale_i8x16(simd, scale(1), second, &mut out[16..]);
                }
            }
        }
    }

    #[inline(always)]
    fn iq4_nl(simd: V3, blocks: &[BlockIQ4_NL], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            lookup_nibbles16(simd, scale_f16(b.d), &KVALUES_IQ4NL, &b.qs, out);
        }
    }

    #[inline(always)]
    fn iq4_xs(simd: V3, blocks: &[BlockIQ4_XS], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(256)) {
            let d = scale_f16(b.d);
            let sub_blocks = b.qs.chunks_exact(16).zip(out.chunks_exact_mut(32));
            for (k, (qs, out)) in sub_blocks.enumerate() {
                lookup_nibbles16(
                    simd,
                    d * f32::from(b.sub_block_scale(k)),
                    &KVALUES_IQ4NL,
                    qs,
                    out,
                );
            }
        }
    }

    #[inline(always)]
    fn mxfp4(simd: V3, blocks: &[BlockMXFP4], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(32)) {
            lookup_nibbles16(simd, e8m0_to_f32_half(b.e), &KVALUES_FP4, &b.qs, out);
        }
    }

    /// `d * q` for 32 signed bytes in a vector, into `out[..32]`.
    #[inline(always)]
    fn scale_i8x32_vector(simd: V3, d: __m256, q: __m256i, out: &mut [f32]) {
        let [low, high]: [__m128i; 2] = bytemuck::cast(q);
        scale_i8x16(simd, d, low, out);
        scale_i8x16(simd, d, high, &mut out[16..]);
    }

    /// TQ1_0's base-3 digits of 16 bytes: digit `n` (of `digits`) of byte
    /// `j` goes to `out[n * stride + j]`, as `d * (digit - 1)`. As the
    /// portable kernel: each step multiplies the byte's fraction by 3 (in
    /// 16-bit lanes), the digit is the part above 8 bits.
    #[inline(always)]
    fn tq1_rows16(simd: V3, d: __m256, qs: &[u8], digits: usize, stride: usize, out: &mut [f32]) {
        let (avx, avx2) = (simd.avx, simd.avx2);
        let (three, byte, one) = (
            avx._mm256_set1_epi16(3),
            avx._mm256_set1_epi16(0xFF),
            avx._mm256_set1_epi16(1),
        );
        let mut fraction = avx2._mm256_cvtepu8_epi16(load16(qs));
        for n in 0..digits {
            let tripled = avx2._mm256_mullo_epi16(fraction, three);
            let level = avx2._mm256_sub_epi16(avx2._mm256_srli_epi16::<8>(tripled), one);
            fraction = avx2._mm256_and_si256(tripled, byte);
            let [low, high]: [__m128i; 2] = bytemuck::cast(level);
            let row = &mut out[n * stride..];
            for (half, row) in [low, high].into_iter().zip(row.chunks_exact_mut(8)) {
                let level = avx._mm256_cvtepi32_ps(avx2._mm256_cvtepi16_epi32(half));
                store8(row, avx._mm256_mul_ps(d, level));
            }
        }
    }

    #[inline(always)]
    fn tq1_0(simd: V3, blocks: &[BlockTQ1_0], out: &mut [f32]) {
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(256)) {
            let scale = scale_f16(b.d);
            let d = simd.avx._mm256_set1_ps(scale);
            let (out0, rest) = out.split_at_mut(160);
            let (out1, out2) = rest.split_at_mut(80);
            // Five rows of 32 from the first 32 bytes, five of 16 from the
            // next 16, four of 4 from qh (left to the portable helper).
            tq1_rows16(simd, d, &b.qs[..16], 5, 32, out0);
            tq1_rows16(simd, d, &b.qs[16..32], 5, 32, &mut out0[16..]);
            tq1_rows16(simd, d, &b.qs[32..], 5, 16, out1);
            tq1_digits(out2, &b.qh, scale, 4);
        }
    }

    #[inline(always)]
    fn tq2_0(simd: V3, blocks: &[BlockTQ2_0], out: &mut [f32]) {
        let (avx, avx2) = (simd.avx, simd.avx2);
        let (three, one) = (avx._mm256_set1_epi8(3), avx._mm256_set1_epi8(1));
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(256)) {
            let d = avx._mm256_set1_ps(scale_f16(b.d));
            for (qs, out) in b.qs.chunks_exact(32).zip(out.chunks_exact_mut(128)) {
                // Row l of 32 holds bits 2l..2l+2 of each byte, less one.
                let q = load32(qs);
                let rows = shifted_by_two_bits(simd, q);
                for (row, out) in rows.into_iter().zip(out.chunks_exact_mut(32)) {
                    let level = avx2._mm256_sub_epi8(avx2._mm256_and_si256(row, three), one);
                    scale_i8x32_vector(simd, d, level, out);
                }
            }
        }
    }

    #[inline(always)]
    fn q1_0(simd: V3, blocks: &[BlockQ1_0], out: &mut [f32]) {
        let (avx, avx2) = (simd.avx, simd.avx2);
        // Lane j of group g (of four) tests bit 8g + j of a 32-bit word.
        let lane_bits: [__m256i; 4] = std::array::from_fn(|g| {
            let bit = |j: i32| 1i32.wrapping_shl(8 * g as u32 + j as u32);
            avx._mm256_setr_epi32(
                bit(0),
                bit(1),
                bit(2),
                bit(3),
                bit(4),
                bit(5),
                bit(6),
                bit(7),
            )
        });
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(128)) {
            let d = scale_f16(b.d);
            let (plus, minus) = (avx._mm256_set1_ps(d), avx._mm256_set1_ps(-d));
            for (word, out) in b.qs.chunks_exact(4).zip(out.chunks_exact_mut(32)) {
                let word = i32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                let word = avx._mm256_set1_epi32(word);
                for (bits, out) in lane_bits.iter().zip(out.chunks_exact_mut(8)) {
                    let set = avx2._mm256_cmpeq_epi32(avx2._mm256_and_si256(word, *bits), *bits);
                    store8(out, avx._mm256_blendv_ps(minus, plus, bytemuck::cast(set)));
                }
            }
        }
    }

    #[inline(always)]
    fn q2_0(simd: V3, blocks: &[BlockQ2_0], out: &mut [f32]) {
        let (avx, avx2) = (simd.avx, simd.avx2);
        // Each byte spread over four lanes, shifted by 0, 2, 4, 6 bits.
        let spread = simd
            .sse2
            ._mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        let shifts = avx._mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
        let (three, one) = (avx._mm256_set1_epi32(3), avx._mm256_set1_epi32(1));
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(64)) {
            let d = avx._mm256_set1_ps(scale_f16(b.d));
            for (qs, out) in b.qs.chunks_exact(2).zip(out.chunks_exact_mut(8)) {
                let pair = simd
                    .sse2
                    ._mm_cvtsi32_si128(i32::from(u16::from_le_bytes([qs[0], qs[1]])));
                let bytes = avx2._mm256_cvtepu8_epi32(simd.ssse3._mm_shuffle_epi8(pair, spread));
                let codes = avx2._mm256_and_si256(avx2._mm256_srlv_epi32(bytes, shifts), three);
                let level = avx._mm256_cvtepi32_ps(avx2._mm256_sub_epi32(codes, one));
                store8(out, avx._mm256_mul_ps(level, d));
            }
        }
    }

    #[inline(always)]
    fn nvfp4(simd: V3, blocks: &[BlockNVFP4], out: &mut [f32]) {
        let sse2 = simd.sse2;
        let table: __m128i = bytemuck::cast(KVALUES_FP4);
        let mask = sse2._mm_set1_epi8(0x0F);
        for (b, out) in blocks.iter().zip(out.chunks_exact_mut(64)) {
            let sub_blocks = b.qs.chunks_exact(8).zip(&b.d).zip(out.chunks_exact_mut(16));
            for ((qs, &d), out) in sub_blocks {
                // Eight bytes: low nibbles are elements 0..8, high ones 8..16.
                let mut raw = [0u8; 16];
                raw[..8].copy_from_slice(qs);
                let q: __m128i = bytemuck::cast(raw);
                let low = sse2._mm_and_si128(q, mask);
                let high = sse2._mm_and_si128(sse2._mm_srli_epi16::<4>(q), mask);
                let codes = sse2._mm_unpacklo_epi64(low, high);
                let levels = simd.ssse3._mm_shuffle_epi8(table, codes);
                let scale = simd.avx._mm256_set1_ps(ue4m3_to_f32_half(d));
                scale_i8x16(simd, scale, levels, out);
            }
        }
    }

    // --- plain tensors -------------------------------------------------------------------

    /// A conversion's AVX2 entry: the kernel inlined into `vectorize` (the
    /// closure moves `dst` in, as in `vector!`).
    macro_rules! converter {
        ($name:ident, $t:ty, $kernel:ident) => {
            pub(super) fn $name(simd: V3, src: &[$t], dst: &mut [f32]) -> usize {
                simd.vectorize(
                    #[inline(always)]
                    move || {
                        let dst = dst;
                        $kernel(simd, src, dst)
                    },
                )
            }
        };
    }

    converter!(f16_to_f32, half::f16, f16x8_runs);
    converter!(bf16_to_f32, half::bf16, bf16x16);
    converter!(i64_to_f32, i64, i64x4_runs);

    /// I64 values in runs of 64, each run whose values all lie within
    /// ±2^51 four at a time (others are left to the caller, from the first
    /// run that has one): the value is made an exact f64 by the magic-number
    /// addition (`x + 1.5 * 2^52` in the integer bits, less `1.5 * 2^52` as
    /// a double), which one conversion then rounds to f32, to nearest even
    /// as a direct conversion does.
    #[inline(always)]
    fn i64x4_runs(simd: V3, src: &[i64], dst: &mut [f32]) -> usize {
        let (avx, avx2) = (simd.avx, simd.avx2);
        let magic_bits = avx._mm256_set1_epi64x(0x4338_0000_0000_0000);
        let magic = avx._mm256_set1_pd(f64::from_bits(0x4338_0000_0000_0000));
        let (half_range, range) = (
            avx._mm256_set1_epi64x(1 << 51),
            avx._mm256_set1_epi64x(1 << 52),
        );
        let mut done = 0;
        for (src, dst) in src.chunks_exact(64).zip(dst.chunks_exact_mut(64)) {
            let vectors: [__m256i; 16] =
                std::array::from_fn(|i| load32(bytemuck::cast_slice(&src[4 * i..4 * i + 4])));
            // In range: 0 <= x + 2^51 < 2^52, i.e. 2^52 > x + 2^51 > -1.
            let in_range = vectors.iter().fold(avx._mm256_set1_epi64x(-1), |all, &v| {
                let shifted = avx2._mm256_add_epi64(v, half_range);
                let below = avx2._mm256_cmpgt_epi64(range, shifted);
                let above = avx2._mm256_cmpgt_epi64(shifted, avx._mm256_set1_epi64x(-1));
                avx2._mm256_and_si256(all, avx2._mm256_and_si256(below, above))
            });
            if avx._mm256_movemask_pd(bytemuck::cast(in_range)) != 0b1111 {
                break;
            }
            for (v, dst) in vectors.into_iter().zip(dst.chunks_exact_mut(4)) {
                let exact: __m256d = bytemuck::cast(avx2._mm256_add_epi64(v, magic_bits));
                let value = avx._mm256_cvtpd_ps(avx._mm256_sub_pd(exact, magic));
                let value: [f32; 4] = bytemuck::cast(value);
                dst.copy_from_slice(&value);
            }
            done += 64;
        }
        done
    }

    /// BF16 values sixteen at a time: each one's bits moved to the top
    /// half of an f32 (NaN payloads kept).
    #[inline(always)]
    fn bf16x16(simd: V3, src: &[half::bf16], dst: &mut [f32]) -> usize {
        let mut done = 0;
        for (src, dst) in src.chunks_exact(16).zip(dst.chunks_exact_mut(16)) {
            let halves: [__m128i; 2] = bytemuck::cast(load32(bytemuck::cast_slice(src)));
            for (half, dst) in halves.into_iter().zip(dst.chunks_exact_mut(8)) {
                let bits = simd.avx2._mm256_cvtepu16_epi32(half);
                store8(dst, bytemuck::cast(simd.avx2._mm256_slli_epi32::<16>(bits)));
            }
            done += 16;
        }
        done
    }

    /// F16 values in runs of 64: a run of normal numbers and zeros (a
    /// weight tensor's usual content) takes the short path, any other run
    /// the general one; both as the portable kernel computes them.
    #[inline(always)]
    fn f16x8_runs(simd: V3, src: &[half::f16], dst: &mut [f32]) -> usize {
        let mut done = 0;
        for (src, dst) in src.chunks_exact(64).zip(dst.chunks_exact_mut(64)) {
            let bytes: &[u8] = bytemuck::cast_slice(src);
            let vectors: [__m256i; 4] = std::array::from_fn(|i| load32(&bytes[32 * i..]));
            let halves: [__m128i; 8] = bytemuck::cast(vectors);
            let short = all_normal_or_zero(simd, &vectors);
            for (half, dst) in halves.into_iter().zip(dst.chunks_exact_mut(8)) {
                let bits = simd.avx2._mm256_cvtepu16_epi32(half);
                let value = if short {
                    f16x8_normal_or_zero(simd, bits)
                } else {
                    f16x8_any(simd, bits)
                };
                store8(dst, value);
            }
            done += 64;
        }
        done
    }

    /// Whether 64 F16 values (sixteen to a vector) are all normal numbers
    /// or zeros: the portable `all_normal_or_zero`'s two unsigned
    /// saturating differences, sixteen lanes at a time.
    #[inline(always)]
    fn all_normal_or_zero(simd: V3, vectors: &[__m256i; 4]) -> bool {
        let avx2 = simd.avx2;
        let magnitude_mask = simd.avx._mm256_set1_epi16(0x7FFF);
        let greatest_finite = simd.avx._mm256_set1_epi16(0x7BFF);
        let greatest_subnormal = simd.avx._mm256_set1_epi16(0x03FF);
        let one = simd.avx._mm256_set1_epi16(1);
        let mut bad = simd.avx._mm256_setzero_si256();
        for &v in vectors {
            let magnitude = avx2._mm256_and_si256(v, magnitude_mask);
            let special = avx2._mm256_subs_epu16(magnitude, greatest_finite);
            let less_one = avx2._mm256_sub_epi16(magnitude, one);
            let subnormal = avx2._mm256_subs_epu16(greatest_subnormal, less_one);
            bad = avx2._mm256_or_si256(bad, avx2._mm256_or_si256(special, subnormal));
        }
        simd.avx._mm256_testz_si256(bad, bad) != 0
    }

    /// Eight normal numbers or zeros (as 32-bit lanes): sign and magnitude
    /// moved into place by an arithmetic shift of the bits put at 16..32,
    /// then an exact multiplication by 2^112 rebiases the exponent.
    #[inline(always)]
    fn f16x8_normal_or_zero(simd: V3, bits: __m256i) -> __m256 {
        let avx2 = simd.avx2;
        let high = avx2._mm256_slli_epi32::<16>(bits);
        let placed = avx2._mm256_and_si256(
            avx2._mm256_srai_epi32::<3>(high),
            simd.avx._mm256_set1_epi32(0x8FFF_FFFF_u32 as i32),
        );
        let rebias = simd.avx._mm256_set1_ps(f32::from_bits((127 + 112) << 23));
        simd.avx._mm256_mul_ps(bytemuck::cast(placed), rebias)
    }

    /// Eight F16 values of any kind (as 32-bit lanes), without a branch:
    /// a normal number rebiased, a subnormal as its integer mantissa times
    /// 2^-24, an infinity or NaN with its mantissa under an all-ones
    /// exponent, the sign put back.
    #[inline(always)]
    fn f16x8_any(simd: V3, bits: __m256i) -> __m256 {
        let (avx, avx2) = (simd.avx, simd.avx2);
        let magnitude_mask = avx._mm256_set1_epi32(0x7FFF);
        let magnitude = avx2._mm256_and_si256(bits, magnitude_mask);
        let sign = avx2._mm256_slli_epi32::<16>(avx2._mm256_andnot_si256(magnitude_mask, bits));
        let shifted = avx2._mm256_slli_epi32::<13>(magnitude);
        let normal = avx2._mm256_add_epi32(shifted, avx._mm256_set1_epi32(0x3800_0000));
        let special = avx2._mm256_or_si256(shifted, avx._mm256_set1_epi32(0x7F80_0000));
        let unit = avx._mm256_set1_ps(1.0 / 16_777_216.0);
        let subnormal: __m256i =
            bytemuck::cast(avx._mm256_mul_ps(avx._mm256_cvtepi32_ps(magnitude), unit));
        let is_subnormal = avx2._mm256_cmpgt_epi32(avx._mm256_set1_epi32(0x0400), magnitude);
        let is_special = avx2._mm256_cmpgt_epi32(magnitude, avx._mm256_set1_epi32(0x7BFF));
        let value = avx2._mm256_blendv_epi8(normal, subnormal, is_subnormal);
        let value = avx2._mm256_blendv_epi8(value, special, is_special);
        bytemuck::cast(avx2._mm256_or_si256(value, sign))
    }
}

#[cfg(all(test, feature = "simd", target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::quant::{
        Block, BlockIQ4_NL, BlockIQ4_XS, BlockMXFP4, BlockNVFP4, BlockQ1_0, BlockQ2_0, BlockQ2_K,
        BlockQ3_K, BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_0, BlockQ5_1, BlockQ5_K, BlockQ6_K,
        BlockQ8_0, BlockQ8_1, BlockQ8_K, BlockTQ1_0, BlockTQ2_0,
    };

    /// Whether this CPU runs the vector kernels; when it does not, the
    /// tests say so and check nothing (the portable path is what runs).
    fn available() -> bool {
        let yes = pulp::x86::V3::try_new().is_some();
        if !yes {
            eprintln!("no AVX2 here: the vector kernels are not tested on this machine");
        }
        yes
    }

    /// Random bytes from a fixed seed (xorshift).
    fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 32) as u8
            })
            .collect()
    }

    /// `bytes` (whole blocks) decoded by the vector kernel and, block by
    /// block, by the portable one: the same bits.
    fn same_bits<B: Block>(bytes: &[u8], what: &str) {
        let mut blocks = vec![B::zeroed(); bytes.len() / std::mem::size_of::<B>()];
        bytemuck::cast_slice_mut::<B, u8>(&mut blocks).copy_from_slice(bytes);
        let mut portable = vec![0f32; blocks.len() * B::ELEMS];
        for (b, out) in blocks.iter().zip(portable.chunks_exact_mut(B::ELEMS)) {
            b.dequantize(out);
        }
        let mut vector = vec![1f32; portable.len()];
        let handled = dequantize_blocks(B::TYPE, bytemuck::cast_slice(&blocks), &mut vector);
        assert!(handled, "{}: no vector kernel ran", B::TYPE);
        for (i, (p, v)) in portable.iter().zip(&vector).enumerate() {
            assert_eq!(
                p.to_bits(),
                v.to_bits(),
                "{} ({what}): element {i}: portable {p:e}, vector {v:e}",
                B::TYPE
            );
        }
    }

    /// Random blocks (every scale bit pattern turns up: NaN, infinities,
    /// subnormals, zeros) and the type's committed fixtures (`stems`:
    /// `""` for `<TYPE>.blocks`, `".nan"` for `<TYPE>.nan.blocks`), decoded
    /// both ways.
    fn check<B: Block>(stems: &[&str]) {
        if !available() {
            return;
        }
        let size = std::mem::size_of::<B>();
        same_bits::<B>(&random_bytes(2048 * size, 0x9E37_79B9_7F4A_7C15), "random");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dequant");
        for stem in stems {
            let path = format!("{dir}/{}{stem}.blocks", B::TYPE.name());
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            same_bits::<B>(&bytes, &path);
        }
    }

    /// A gguf-py fixture and a NaN one.
    const BOTH: &[&str] = &["", ".nan"];

    #[test]
    fn every_vector_kernel_matches_the_portable_one() {
        check::<BlockQ4_0>(BOTH);
        check::<BlockQ4_1>(BOTH);
        check::<BlockQ5_0>(BOTH);
        check::<BlockQ5_1>(BOTH);
        check::<BlockQ8_0>(BOTH);
        // gguf-py has no Q8_1 or Q8_K: random blocks only.
        check::<BlockQ8_1>(&[]);
        check::<BlockQ8_K>(&[]);
        check::<BlockQ2_K>(BOTH);
        check::<BlockQ3_K>(BOTH);
        check::<BlockQ4_K>(BOTH);
        check::<BlockQ5_K>(BOTH);
        check::<BlockQ6_K>(BOTH);
        check::<BlockIQ4_NL>(BOTH);
        check::<BlockIQ4_XS>(BOTH);
        // MXFP4's E8M0 scale encodes no NaN: no NaN fixture.
        check::<BlockMXFP4>(&[""]);
        check::<BlockNVFP4>(&[""]);
        check::<BlockTQ1_0>(BOTH);
        check::<BlockTQ2_0>(BOTH);
        // Nor Q1_0 or Q2_0 (checked against ggml's C by hand vectors).
        check::<BlockQ1_0>(&[]);
        check::<BlockQ2_0>(&[]);
    }

    /// I64 values that round (odd integers above 2^24, ties included), the
    /// ends of the vector kernel's range and random ones in it: the bits of
    /// `as f32`. A run with a value outside ±2^51 stops the vector kernel.
    #[test]
    fn i64_converts_as_a_cast_does() {
        if !available() {
            return;
        }
        let mut values: Vec<i64> =
            vec![0, 1, -1, (1 << 51) - 1, -(1 << 51), 1 << 24, (1 << 24) + 1];
        values.extend((0..64).flat_map(|k| [(1i64 << 25) + 2 * k + 1, -(1i64 << 40) - 3 * k]));
        // Halfway between two floats: to the even one.
        values.extend((0..64).map(|k| (1i64 << 25) + 2 + 4 * k));
        values.extend((0..64).map(|k| (1i64 << 49) + k * 0x1_0000_0001));
        let random = random_bytes(8 * 4096, 17);
        values.extend(
            random
                .chunks_exact(8)
                .map(|b| i64::from_ne_bytes(b.try_into().unwrap()) >> 13),
        );
        values.truncate(values.len() / 64 * 64);
        let mut vector = vec![0f32; values.len()];
        assert_eq!(i64_to_f32(&values, &mut vector), values.len());
        for (v, &x) in vector.iter().zip(&values) {
            assert_eq!(v.to_bits(), (x as f32).to_bits(), "{x}");
        }
        // Out of range in the second run: the first run only.
        values[100] = 1 << 51;
        assert_eq!(i64_to_f32(&values, &mut vector), 64);
    }

    /// Every F16 and BF16 bit pattern, shifted so that runs start at every
    /// kind of value: the vector converters give the portable ones' bits.
    #[test]
    fn f16_and_bf16_every_bit_pattern() {
        if !available() {
            return;
        }
        let all: Vec<u16> = (0..=u16::MAX).collect();
        for skip in [0, 1, 37] {
            let f16s: Vec<half::f16> = all[skip..]
                .iter()
                .map(|&b| half::f16::from_bits(b))
                .collect();
            let mut vector = vec![0f32; f16s.len()];
            let done = f16_to_f32(&f16s, &mut vector);
            assert!(
                done >= f16s.len() - 64,
                "F16: {done} of {} converted",
                f16s.len()
            );
            let mut portable = vec![0f32; f16s.len()];
            crate::quant::plain::f16_portable(&f16s, &mut portable);
            for (i, (v, p)) in vector[..done].iter().zip(&portable).enumerate() {
                assert_eq!(
                    v.to_bits(),
                    p.to_bits(),
                    "F16 bits {:#06x}",
                    f16s[i].to_bits()
                );
            }

            let bf16s: Vec<half::bf16> = all[skip..]
                .iter()
                .map(|&b| half::bf16::from_bits(b))
                .collect();
            let done = bf16_to_f32(&bf16s, &mut vector);
            assert!(
                done >= bf16s.len() - 16,
                "BF16: {done} of {} converted",
                bf16s.len()
            );
            for (v, b) in vector[..done].iter().zip(&bf16s) {
                assert_eq!(
                    v.to_bits(),
                    u32::from(b.to_bits()) << 16,
                    "BF16 bits {:#06x}",
                    b.to_bits()
                );
            }
        }
    }
}
