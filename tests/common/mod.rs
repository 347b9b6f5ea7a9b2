//! What several test binaries share: deterministic bytes, and a counting
//! allocator for the tests that bound memory. Each binary uses part of it.
#![allow(dead_code)]

pub mod alloc;

/// Deterministic bytes (xorshift), so failures reproduce: arbitrary blocks
/// for every type, NaN scales included.
pub fn pseudo_random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}
