//! Hand-computed vectors for the k-quant kernels.

use super::*;

fn h(x: f32) -> f16 {
    f16::from_f32(x)
}

fn run<B: Block>(block: &B) -> Vec<f32> {
    let mut out = vec![0f32; B::ELEMS];
    block.dequantize(&mut out);
    out
}

/// A deterministic value in 0..modulo for element `i`.
fn val(i: usize, modulo: usize) -> u8 {
    ((i * 37 + 11) % modulo) as u8
}

/// Packs 2-bit values as Q2_K/Q3_K `qs` and Q6_K `qh`: element
/// 128g + 32j + l at bits 2j of byte 32g + l.
fn pack2(q: &[u8]) -> [u8; 64] {
    std::array::from_fn(|b| {
        (0..4).fold(0, |acc, j| {
            acc | (q[b / 32 * 128 + 32 * j + b % 32] << (2 * j))
        })
    })
}

/// Packs one bit per element: element 32j + l at bit j of byte l.
fn pack1(bits: &[u8]) -> [u8; 32] {
    std::array::from_fn(|l| (0..8).fold(0, |acc, j| acc | (bits[32 * j + l] << j)))
}

/// Packs 4-bit values as Q4_K `qs`: element 64i + l low nibble of byte
/// 32i + l, element 64i + 32 + l its high nibble.
fn pack4(q: &[u8]) -> [u8; 128] {
    std::array::from_fn(|b| q[b / 32 * 64 + b % 32] | (q[b / 32 * 64 + 32 + b % 32] << 4))
}

#[test]
fn q2_k() {
    let q: Vec<u8> = (0..256).map(|i| val(i, 4)).collect();
    let scales: [u8; 16] = std::array::from_fn(|k| (k as u8) | ((15 - k as u8) << 4));
    let block = BlockQ2_K {
        scales,
        qs: pack2(&q),
        d: h(0.5),
        dmin: h(0.25),
    };
    let out = run(&block);
    for i in 0..256 {
        let k = i / 16;
        let want = 0.5 * k as f32 * f32::from(q[i]) - 0.25 * (15 - k) as f32;
        assert_eq!(out[i], want, "element {i}");
    }
}

#[test]
fn q3_k() {
    let low: Vec<u8> = (0..256).map(|i| val(i, 4)).collect();
    let hbit: Vec<u8> = (0..256).map(|i| val(i, 5) & 1).collect();
    // Stored 6-bit scales k + 24, so sc - 32 = k - 8.
    let wanted: [u8; 16] = std::array::from_fn(|k| (k as u8 + 24) & 63);
    let mut scales = [0u8; 12];
    for (k, &s) in wanted.iter().enumerate() {
        scales[k % 8] |= (s & 0xF) << (4 * (k / 8));
        scales[8 + k % 4] |= (s >> 4) << (2 * (k / 4));
    }
    let block = BlockQ3_K {
        hmask: pack1(&hbit),
        qs: pack2(&low),
        scales,
        d: h(2.0),
    };
    let out = run(&block);
    for i in 0..256 {
        let sc = f32::from(wanted[i / 16] as i8 - 32);
        let q = f32::from(low[i] as i8 - if hbit[i] == 1 { 0 } else { 4 });
        assert_eq!(out[i], 2.0 * sc * q, "element {i}");
    }
}

/// Packs 8 six-bit scales and minimums as Q4_K/Q5_K `scales`.
fn pack_k4(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4);
    }
    s
}

#[test]
fn q4_k_and_q5_k() {
    let sc: [u8; 8] = [1, 2, 63, 4, 35, 6, 7, 48];
    let mn: [u8; 8] = [8, 63, 6, 5, 17, 3, 33, 1];
    let q: Vec<u8> = (0..256).map(|i| val(i, 32)).collect();
    let low: Vec<u8> = q.iter().map(|&x| x & 0xF).collect();
    let high: Vec<u8> = q.iter().map(|&x| x >> 4).collect();
    let scales = pack_k4(&sc, &mn);
    let (d, dmin) = (h(0.5), h(0.125));
    let out4 = run(&BlockQ4_K {
        d,
        dmin,
        scales,
        qs: pack4(&low),
    });
    let out5 = run(&BlockQ5_K {
        d,
        dmin,
        scales,
        qh: pack1(&high),
        qs: pack4(&low),
    });
    for i in 0..256 {
        let (s, m) = (0.5 * f32::from(sc[i / 32]), 0.125 * f32::from(mn[i / 32]));
        assert_eq!(out4[i], s * f32::from(low[i]) - m, "Q4_K element {i}");
        assert_eq!(out5[i], s * f32::from(q[i]) - m, "Q5_K element {i}");
    }
}

#[test]
fn q6_k() {
    let q: Vec<u8> = (0..256).map(|i| val(i, 64)).collect();
    let ql: [u8; 128] = std::array::from_fn(|b| {
        let (g, l) = (b / 64, b % 64);
        (q[128 * g + l] & 0xF) | ((q[128 * g + 64 + l] & 0xF) << 4)
    });
    let high: Vec<u8> = q.iter().map(|&x| x >> 4).collect();
    let scales: [i8; 16] = std::array::from_fn(|k| (k as i16 * 17 - 128) as i8);
    let out = run(&BlockQ6_K {
        ql,
        qh: pack2(&high),
        scales,
        d: h(0.25),
    });
    for i in 0..256 {
        let want = 0.25 * f32::from(scales[i / 16]) * f32::from(q[i] as i8 - 32);
        assert_eq!(out[i], want, "element {i}");
    }
}

#[test]
fn q8_k() {
    let qs: [i8; 256] = std::array::from_fn(|i| i as u8 as i8);
    // The block sums play no part, whatever they hold.
    let out = run(&BlockQ8_K {
        d: 0.375,
        qs,
        bsums: [i16::MIN; 16],
    });
    for i in 0..256 {
        assert_eq!(out[i], 0.375 * f32::from(qs[i]), "element {i}");
    }
    assert_eq!((out[1], out[128], out[255]), (0.375, -48.0, -0.375));
    // An f32 scale below f16 range is kept exactly.
    let out = run(&BlockQ8_K {
        d: 1e-30,
        qs: [3; 256],
        bsums: [0; 16],
    });
    assert!(out.iter().all(|&x| x == 1e-30f32 * 3.0));
}

#[test]
fn non_finite_scales_pass_through() {
    let q2 = BlockQ2_K {
        scales: [0x11; 16],
        qs: [0x1B; 64],
        d: f16::NAN,
        dmin: h(1.0),
    };
    assert!(run(&q2).iter().all(|x| x.is_nan()));
    let q3 = BlockQ3_K {
        hmask: [0; 32],
        qs: [0; 64],
        scales: [0; 12],
        d: f16::INFINITY,
    };
    // q = -4 and scale -32 everywhere: inf * -32 * -4 = +inf.
    assert!(run(&q3).iter().all(|&x| x == f32::INFINITY));
    let q4 = BlockQ4_K {
        d: h(1.0),
        dmin: f16::NAN,
        scales: [1; 12],
        qs: [0; 128],
    };
    assert!(run(&q4).iter().all(|x| x.is_nan()));
    let q5 = BlockQ5_K {
        d: f16::NAN,
        dmin: h(0.0),
        scales: [0; 12],
        qh: [0; 32],
        qs: [0; 128],
    };
    assert!(run(&q5).iter().all(|x| x.is_nan()));
    let q6 = BlockQ6_K {
        ql: [0; 128],
        qh: [0; 64],
        scales: [1; 16],
        d: f16::NEG_INFINITY,
    };
    assert!(run(&q6).iter().all(|&x| x == f32::INFINITY));
    let q8 = BlockQ8_K {
        d: f32::NAN,
        qs: [1; 256],
        bsums: [0; 16],
    };
    assert!(run(&q8).iter().all(|x| x.is_nan()));
}
