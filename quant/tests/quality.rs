//! Round-trip quality of the reference quantizers on random data.
//!
//! Error model behind the bounds: a quantizer with `b`-bit levels spends its `2^b` levels on the
//! range of a group. A Gaussian group of 16 or 32 values (σ) spans about 3.5σ or 4.1σ on average
//! and rarely more than ±3σ, so the level step is typically below `Δ = 6σ / 2^b`; rounding to the
//! nearest level leaves a uniformly distributed error of RMS `Δ / √12`. Hence the bound for every
//! b-bit type:
//!
//! ```text
//! rms_error ≤ 6σ / (2^b · √12) = √3 · σ / 2^b
//! ```
//!
//! with `b` the bits of the levels (Q2_K 2, Q3_K 3, Q4_x 4, Q5_x 5, Q6_K 6, Q8_0 8; the scale bytes
//! are not levels). The same formula is used for every type, not tuned per type: llama.cpp's own
//! quantizers meet it with 20–35 % to spare (see tests/data/README.md), the slack covering the
//! rounding of the scales themselves. F16 and BF16 round to nearest, so each value's relative error
//! is at most half an ulp: 2⁻¹¹ and 2⁻⁸ respectively.
#![allow(clippy::unwrap_used)]

mod common;

use common::naive;
use lanternfish_quant::{BlockFormat, GgmlType, dequantize_row, quantize_row};

/// SplitMix64 with Box–Muller: reproducible Gaussian samples without a dependency.
struct Gaussian(u64);

impl Gaussian {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn sample(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }

    fn vec(&mut self, n: usize, sigma: f32) -> Vec<f32> {
        (0..n).map(|_| self.sample() * sigma).collect()
    }
}

fn rms(a: &[f32], b: &[f32]) -> f64 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    (sum / a.len() as f64).sqrt()
}

fn round_trip(ty: GgmlType, x: &[f32]) -> Vec<f32> {
    let mut bytes = vec![0u8; x.len() / ty.block_elems() * ty.block_bytes()];
    quantize_row(ty, x, &mut bytes).unwrap();
    let mut y = vec![0f32; x.len()];
    dequantize_row(ty, &bytes, &mut y).unwrap();
    y
}

/// Bits of the levels of each quantized type.
const LEVEL_BITS: [(GgmlType, i32); 10] = [
    (GgmlType::Q4_0, 4),
    (GgmlType::Q4_1, 4),
    (GgmlType::Q5_0, 5),
    (GgmlType::Q5_1, 5),
    (GgmlType::Q8_0, 8),
    (GgmlType::Q2K, 2),
    (GgmlType::Q3K, 3),
    (GgmlType::Q4K, 4),
    (GgmlType::Q5K, 5),
    (GgmlType::Q6K, 6),
];

/// The non-linear 4-bit types: 16 levels like Q4_0, but no level at 0, so they are not in the
/// exact-zero checks of [`degenerate_inputs`] (all-zero blocks still decode to zeros).
const NON_LINEAR_BITS: [(GgmlType, i32); 2] = [(GgmlType::Iq4Nl, 4), (GgmlType::Iq4Xs, 4)];

const N: usize = 64 * 1024;

#[test]
fn round_trip_error_within_bit_budget() {
    // σ = 1, and σ = 0.02 (the scale of real weights, where f16 scale rounding matters more).
    for (seed, sigma) in [(1u64, 1.0f32), (2, 0.02)] {
        let x = Gaussian(seed).vec(N, sigma);
        for (ty, bits) in LEVEL_BITS.into_iter().chain(NON_LINEAR_BITS) {
            let err = rms(&x, &round_trip(ty, &x));
            let bound = 3f64.sqrt() * sigma as f64 / f64::from(1 << bits);
            assert!(
                err <= bound,
                "{ty} σ={sigma}: rms error {err:.6} > bound {bound:.6}"
            );
        }
    }
}

#[test]
fn float_types_round_to_nearest() {
    let x = Gaussian(3).vec(N, 3.0);
    assert_eq!(round_trip(GgmlType::F32, &x), x);
    for (ty, unit_roundoff) in [
        (GgmlType::F16, 2f32.powi(-11)),
        (GgmlType::Bf16, 2f32.powi(-8)),
    ] {
        let y = round_trip(ty, &x);
        for (a, b) in x.iter().zip(&y) {
            // Values below f16's normal range have an absolute, not relative, half-ulp bound.
            let tol = (a.abs() * unit_roundoff).max(2f32.powi(-25));
            assert!((a - b).abs() <= tol, "{ty}: {a} -> {b}");
        }
    }
}

fn naive_round_trip<B: BlockFormat>(x: &[f32], quantize: fn(&[f32]) -> B) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    for (xs, ys) in x.chunks(B::ELEMS).zip(y.chunks_mut(B::ELEMS)) {
        quantize(xs).dequantize(ys);
    }
    y
}

/// The K-quant searches (make_qkx2_quants, make_q3_quants, make_qx_quants) must beat, or at least
/// match, plain per-sub-block min/max (or max-abs) scales in the same format.
#[test]
fn k_quants_no_worse_than_naive() {
    let x = Gaussian(4).vec(N, 1.0);
    let cases: [(GgmlType, Vec<f32>); 5] = [
        (GgmlType::Q2K, naive_round_trip(&x, naive::q2_k)),
        (GgmlType::Q3K, naive_round_trip(&x, naive::q3_k)),
        (GgmlType::Q4K, naive_round_trip(&x, naive::q4_k)),
        (GgmlType::Q5K, naive_round_trip(&x, naive::q5_k)),
        (GgmlType::Q6K, naive_round_trip(&x, naive::q6_k)),
    ];
    for (ty, naive_y) in cases {
        let (ours, naive) = (rms(&x, &round_trip(ty, &x)), rms(&x, &naive_y));
        eprintln!("{ty}: reference {ours:.6}, naive {naive:.6}");
        assert!(
            ours <= naive,
            "{ty}: reference {ours:.6} worse than naive {naive:.6}"
        );
    }
}

/// The naive baselines themselves are sound: within the same bit budget as the reference ones.
#[test]
fn naive_baselines_are_reasonable() {
    let x = Gaussian(5).vec(N, 1.0);
    let ys = [
        (naive_round_trip(&x, naive::q2_k), 2),
        (naive_round_trip(&x, naive::q3_k), 3),
        (naive_round_trip(&x, naive::q4_k), 4),
        (naive_round_trip(&x, naive::q5_k), 5),
        (naive_round_trip(&x, naive::q6_k), 6),
    ];
    for (y, bits) in ys {
        let bound = 3f64.sqrt() / f64::from(1 << bits);
        assert!(
            rms(&x, &y) <= bound,
            "{bits}-bit naive: {} > {bound}",
            rms(&x, &y)
        );
    }
}

#[test]
fn non_linear_zeros_stay_zero() {
    for (ty, _) in NON_LINEAR_BITS {
        let y = round_trip(ty, &vec![0.0; ty.block_elems() * 2]);
        assert!(y.iter().all(|&v| v == 0.0), "{ty}: zeros");
    }
}

/// Zeros stay exactly zero; a lone spike keeps its zeros exact and its own value within the f16
/// rounding of the block scale (relative 2⁻¹¹, doubled for the sub-block scale of K formats).
#[test]
fn degenerate_inputs() {
    for (ty, _) in LEVEL_BITS {
        let n = ty.block_elems() * 2;
        assert!(
            round_trip(ty, &vec![0.0; n]).iter().all(|&v| v == 0.0),
            "{ty}: zeros"
        );
        let mut spike = vec![0.0f32; n];
        spike[5] = 1.0;
        let mut y = round_trip(ty, &spike);
        assert!(
            (y[5] - 1.0).abs() <= 2f32.powi(-10),
            "{ty}: spike -> {}",
            y[5]
        );
        y[5] = 0.0;
        assert!(y.iter().all(|&v| v == 0.0), "{ty}: zeros around the spike");
    }
}

/// Quantizing never panics, whatever the floats: NaN, infinities, extremes and subnormals (the
/// casts saturate and the level indices are clamped, as `quantize_row` runs on untrusted tensors).
#[test]
fn extreme_inputs_do_not_panic() {
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        1e-45,
        -0.0,
        7e4,
    ];
    let mut g = Gaussian(6);
    for (ty, _) in LEVEL_BITS.into_iter().chain(NON_LINEAR_BITS) {
        for k in 0..specials.len() {
            let mut x = g.vec(ty.block_elems() * 2, 1.0);
            for (i, v) in x.iter_mut().enumerate().filter(|(i, _)| i % 7 == k) {
                *v = specials[(i + k) % specials.len()];
            }
            round_trip(ty, &x);
            round_trip(ty, &vec![specials[k]; ty.block_elems()]);
        }
    }
}
