//! The CPU reference's primitive operations: RMSNorm, matrix products that dequantize one weight
//! row at a time, RoPE with YaRN frequencies, softmax, SiLU, top-k. Plain f32 loops; the only
//! concession to speed is splitting large products over rows on a few threads.

use std::ops::Range;
use std::sync::OnceLock;

use super::matrix::Matrix;
use crate::model::RopeScaling;

/// `out = w ⊙ x / sqrt(mean(x²) + ε)` (spec §4.1).
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    assert!(out.len() == x.len() && x.len() == w.len());
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (mean_sq + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = g * (v * scale);
    }
}

/// RMSNorm of every row of `x` (`[n, w.len()]`), in place.
pub fn rmsnorm_rows(x: &mut [f32], w: &[f32], eps: f32) {
    let mut tmp = vec![0f32; w.len()];
    for row in x.chunks_exact_mut(w.len()) {
        rmsnorm(&mut tmp, row, w, eps);
        row.copy_from_slice(&tmp);
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `out[t] = W x[t]` for every token t: `x` `[n_tok, n_cols]`, `out` `[n_tok, n_rows]`. Each
/// weight row is dequantized once and dotted with every token; rows are split over threads when
/// the product is large enough to pay for them.
pub fn matmul(out: &mut [f32], w: &Matrix<'_>, x: &[f32]) {
    let (n_rows, n_cols) = (w.n_rows(), w.n_cols());
    assert!(
        n_cols > 0 && x.len().is_multiple_of(n_cols),
        "x of {} for {n_cols} columns",
        x.len()
    );
    let n_tok = x.len() / n_cols;
    assert_eq!(out.len(), n_tok * n_rows, "matmul output");
    let n_threads = thread_count(n_rows * n_cols * n_tok).min(n_rows.max(1));
    let chunk = n_rows.div_ceil(n_threads.max(1)).max(1);
    let ranges: Vec<Range<usize>> = (0..n_rows)
        .step_by(chunk)
        .map(|s| s..(s + chunk).min(n_rows))
        .collect();
    // Each part is `[rows, n_tok]` (row-major by weight row); scattered into `out` below.
    let parts: Vec<(Range<usize>, Vec<f32>)> = if ranges.len() <= 1 {
        ranges
            .into_iter()
            .map(|r| (r.clone(), matmul_rows(w, x, r)))
            .collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .into_iter()
                .map(|r| scope.spawn(move || (r.clone(), matmul_rows(w, x, r))))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    for (rows, values) in parts {
        for (i, r) in rows.enumerate() {
            for t in 0..n_tok {
                out[t * n_rows + r] = values[i * n_tok + t];
            }
        }
    }
}

/// `out = W x` for one vector.
pub fn matvec(out: &mut [f32], w: &Matrix<'_>, x: &[f32]) {
    assert_eq!(x.len(), w.n_cols());
    matmul(out, w, x);
}

/// `out = Wᵀ x`: `out[j] = Σ_i x[i]·W[i][j]` (`x` has n_rows values, `out` n_cols).
pub fn matvec_transposed(out: &mut [f32], w: &Matrix<'_>, x: &[f32]) {
    assert!(x.len() == w.n_rows() && out.len() == w.n_cols());
    out.fill(0.0);
    let mut row = vec![0f32; w.n_cols()];
    for (i, &xi) in x.iter().enumerate() {
        w.row(i, &mut row);
        for (o, &v) in out.iter_mut().zip(&row) {
            *o += xi * v;
        }
    }
}

/// Rows `rows` of `W x[t]` for all tokens, `[rows.len(), n_tok]`.
fn matmul_rows(w: &Matrix<'_>, x: &[f32], rows: Range<usize>) -> Vec<f32> {
    let mut row = vec![0f32; w.n_cols()];
    let mut out = Vec::with_capacity(rows.len() * x.len() / w.n_cols());
    for r in rows {
        w.row(r, &mut row);
        out.extend(x.chunks_exact(w.n_cols()).map(|xt| dot(&row, xt)));
    }
    out
}

/// Threads for `work` multiply-adds: one per 2^18, at most the machine's parallelism.
fn thread_count(work: usize) -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    (work >> 18).clamp(1, cores)
}

/// Rotation frequency ω_i of each pair i = 0..n_rot/2 (spec §4.4; llama.cpp
/// `ggml/src/ggml-cpu/ops.cpp: rope_yarn`, `ggml/src/ggml.c: ggml_rope_yarn_corr_dims`).
/// Plain: `ω_i = base^(−2i/n_rot)`; linear: divided by the factor; YaRN: a blend of the two,
/// original frequency for fast-rotating pairs (i ≤ low), divided for slow ones (i ≥ high),
/// a linear ramp in between.
pub fn rope_freqs(n_rot: usize, base: f32, scaling: &RopeScaling) -> Vec<f64> {
    let dims = n_rot as f64;
    let extrap: Vec<f64> = (0..n_rot / 2)
        .map(|i| f64::from(base).powf(-2.0 * i as f64 / dims))
        .collect();
    match *scaling {
        RopeScaling::None => extrap,
        RopeScaling::Linear { factor } => extrap.iter().map(|w| w / f64::from(factor)).collect(),
        RopeScaling::Yarn(y) => {
            let freq_scale = 1.0 / f64::from(y.factor);
            // Pair index whose wavelength fits `n_rotations` times into the original context.
            let corr_dim = |n_rotations: f32| {
                let turns =
                    y.n_ctx_orig as f64 / (f64::from(n_rotations) * 2.0 * std::f64::consts::PI);
                dims * turns.ln() / (2.0 * f64::from(base).ln())
            };
            let low = corr_dim(y.beta_fast).floor().max(0.0);
            let high = corr_dim(y.beta_slow).ceil().min(dims - 1.0);
            extrap
                .iter()
                .enumerate()
                .map(|(i, &w_extrap)| {
                    let ramp = 1.0 - ((i as f64 - low) / (high - low).max(0.001)).clamp(0.0, 1.0);
                    let mix = ramp * f64::from(y.ext_factor);
                    w_extrap * freq_scale * (1.0 - mix) + w_extrap * mix
                })
                .collect()
        }
    }
}

/// "Normal" (GPT-J) RoPE at position `pos`: adjacent pairs `(x[2i], x[2i+1])` rotated by
/// `pos·ω_i` (spec §4.3; llama.cpp `LLAMA_ROPE_TYPE_NORM`). No cos/sin magnitude scaling (§4.4).
pub fn rope(x: &mut [f32], pos: usize, freqs: &[f64]) {
    assert_eq!(x.len(), 2 * freqs.len(), "rope dims");
    for (pair, &w) in x.chunks_exact_mut(2).zip(freqs) {
        let (sin, cos) = (pos as f64 * w).sin_cos();
        let (x0, x1) = (f64::from(pair[0]), f64::from(pair[1]));
        pair[0] = (x0 * cos - x1 * sin) as f32;
        pair[1] = (x0 * sin + x1 * cos) as f32;
    }
}

/// In-place softmax, max-subtracted.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `silu(z) = z·σ(z)`.
pub fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

/// Indices of the `k` largest values, largest first; ties keep the lower index first.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::YarnConfig;

    #[test]
    fn yarn_freqs_match_spec_spot_values() {
        // spec §4.4: D = 64, base 1e4, n_orig 4096, s = 40 ⇒ low 10, high 23.
        let yarn = YarnConfig {
            factor: 40.0,
            n_ctx_orig: 4096,
            beta_fast: 32.0,
            beta_slow: 1.0,
            ext_factor: 1.0,
            log_multiplier: 0.1,
        };
        let w = rope_freqs(64, 10_000.0, &RopeScaling::Yarn(yarn));
        let plain = rope_freqs(64, 10_000.0, &RopeScaling::None);
        assert_eq!(w[..=10], plain[..=10]);
        for (i, want) in [
            (12, 2.688e-2),
            (16, 5.50e-3),
            (20, 7.906e-4),
            (31, 3.334e-6),
        ] {
            assert!(
                (w[i] / want - 1.0).abs() < 2e-3,
                "ω_{i} = {} (spec {want})",
                w[i]
            );
        }
        assert!((w[23] - plain[23] / 40.0).abs() < 1e-15);
    }

    #[test]
    fn rope_rotates_adjacent_pairs() {
        let mut x = [1.0, 0.0, 0.0, 2.0];
        rope(&mut x, 1, &[std::f64::consts::FRAC_PI_2, 0.0]);
        assert!((x[0]).abs() < 1e-7 && (x[1] - 1.0).abs() < 1e-7);
        assert_eq!(&x[2..], &[0.0, 2.0]);
    }

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        assert_eq!(top_k(&[0.1, 0.5, 0.3, 0.5], 3), vec![1, 3, 2]);
    }

    #[test]
    fn matmul_threaded_equals_rows() {
        let (rows, cols, n_tok) = (300, 512, 4);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 113) as f32 / 113.0 - 0.5)
            .collect();
        let x: Vec<f32> = (0..n_tok * cols)
            .map(|i| ((i * 31) % 17) as f32 / 17.0)
            .collect();
        let m = Matrix::from_f32(w.clone(), rows, cols);
        let mut out = vec![0f32; n_tok * rows];
        matmul(&mut out, &m, &x);
        for t in 0..n_tok {
            for r in 0..rows {
                let want = dot(&w[r * cols..(r + 1) * cols], &x[t * cols..(t + 1) * cols]);
                assert_eq!(out[t * rows + r], want);
            }
        }
        // Wᵀ y against the explicit sum over rows.
        let y: Vec<f32> = (0..rows).map(|i| (i % 5) as f32 - 2.0).collect();
        let mut wt_y = vec![0f32; cols];
        matvec_transposed(&mut wt_y, &m, &y);
        for j in [0, 17, cols - 1] {
            let want: f32 = (0..rows).map(|i| y[i] * w[i * cols + j]).sum();
            assert!(
                (wt_y[j] - want).abs() <= 1e-4 * want.abs().max(1.0),
                "column {j}"
            );
        }
    }
}
