//! What several test binaries share: one seeded random stream, and a
//! counting allocator for the tests that bound memory. Each binary uses part
//! of it.
#![allow(dead_code)]

pub mod alloc;

/// splitmix64: the one seeded random stream of the tests, so failures
/// reproduce and no test needs a dependency for it.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 for `n` of 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// `len` random bytes from seed `seed`: arbitrary blocks for every type,
/// NaN scales included.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    Rng(seed).bytes(len)
}

/// Asserts that `a` and `b` hold the same f32 bit patterns (so NaNs
/// compare, payloads included), naming `what` and the first difference.
pub fn assert_same_bits(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    if let Some(i) = (0..a.len()).find(|&i| a[i].to_bits() != b[i].to_bits()) {
        panic!(
            "{what}: element {i} differs: {:#010x} vs {:#010x}",
            a[i].to_bits(),
            b[i].to_bits()
        );
    }
}

/// `bytes` written to a file named `name` in a new temporary directory,
/// removed when the returned guard drops.
pub fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write the temporary file");
    (dir, path)
}

/// `n` valid blocks of `dtype`: random bytes, with every scale field the
/// block describes (`quant::scale_fields`) set to a finite, normal value
/// of the size real models have; plain types get small normal values.
pub fn valid_blocks(dtype: ggufmap::GgmlType, n: usize, rng: &mut Rng) -> Vec<u8> {
    use ggufmap::quant::{scale_fields, ScaleKind};
    let size = dtype.bytes_per_block();
    let mut bytes = rng.bytes(n * size);
    for block in bytes.chunks_exact_mut(size) {
        if dtype.is_plain() {
            let x = 0.02 * rng.normal();
            match size {
                2 if dtype == ggufmap::GgmlType::BF16 => {
                    block.copy_from_slice(&half::bf16::from_f32(x).to_le_bytes())
                }
                2 if dtype == ggufmap::GgmlType::F16 => {
                    block.copy_from_slice(&half::f16::from_f32(x).to_le_bytes())
                }
                4 if dtype == ggufmap::GgmlType::F32 => block.copy_from_slice(&x.to_le_bytes()),
                8 if dtype == ggufmap::GgmlType::F64 => {
                    block.copy_from_slice(&f64::from(x).to_le_bytes())
                }
                _ => {} // integers: any bytes are valid
            }
            continue;
        }
        for field in scale_fields(dtype) {
            let at = field.offset;
            let scale = ((0.5 + rng.unit()) * 1e-3) as f32;
            match field.kind {
                ScaleKind::F16 => {
                    block[at..at + 2].copy_from_slice(&half::f16::from_f32(scale).to_le_bytes())
                }
                ScaleKind::F32 => block[at..at + 4].copy_from_slice(&scale.to_le_bytes()),
                ScaleKind::E8M0 => block[at] = 112 + rng.below(8) as u8,
                ScaleKind::Ue4M3 => block[at] = 0x08 + rng.below(0x60) as u8,
                ScaleKind::Iq1mScaleNibbles => block[at + 7] = (block[at + 7] & 0x0F) | 0x30,
                _ => {}
            }
        }
    }
    bytes
}
