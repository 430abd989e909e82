//! DeepSeek-V3.2's lightning indexer (DSA, `../shared/spec/coverage.md` §3; llama.cpp
//! `src/models/deepseek32.cpp`): which cached positions each query's MLA may attend to.
//!
//! Per token at position p, from the attention input `a` (after `attn_norm`) and the normalised
//! q-LoRA latent `qr = RMSNorm(W_q_a a)` that MLA shares:
//!
//! ```text
//! q_h = (W_idx_q_b qr)_h                       [n_idx_head, dk], rope part FIRST (dr values)
//! k_p = LayerNorm(W_idx_k a) (weight, bias)    [dk], cached per position (the index cache)
//! q_h and k_p rotated on their first dr values with MLA's frequencies in NeoX pairing
//! w   = W_idx_proj a                           [n_idx_head]
//! score(t, s) = Σ_h w_h · ReLU(q_h · k_s) / sqrt(dk · n_idx_head)     for s ≤ p
//! ```
//!
//! and MLA attends only to the `min(top_k, p + 1)` positions of highest score: every position
//! while the context is at most `top_k` (then this is dense MLA).
//!
//! llama.cpp multiplies q and k by a Hadamard matrix before the score. A Hadamard matrix is
//! orthogonal up to one positive scale factor c, so every q·k becomes c·q·k; ReLU is positively
//! homogeneous, so every score becomes c·score and the ranking, all the indexer decides, is the
//! same: the rotation is left out here.

use super::dense::rope_neox;
use super::matrix::Matrix;
use super::ops::{dot, matmul};
use crate::model::DeepSeekConfig;

/// LayerNorm ε of the index keys (DeepSeek's `Indexer.k_norm`).
pub const K_NORM_EPS: f32 = 1e-6;

/// The indexer's weights of one layer.
#[derive(Debug)]
pub struct IndexerWeights<'a> {
    /// `[n_idx_head·dk, rq]`
    pub attn_q_b: Matrix<'a>,
    /// `[dk, d]`
    pub attn_k: Matrix<'a>,
    /// `[dk]` LayerNorm weight and bias.
    pub k_norm: Vec<f32>,
    pub k_norm_b: Vec<f32>,
    /// `[n_idx_head, d]`
    pub proj: Matrix<'a>,
}

/// The index keys `[n_tok, dk]` of tokens at positions `pos0..` from their attention inputs `a`.
pub fn keys(
    w: &IndexerWeights<'_>,
    freqs: &[f64],
    n_rot: usize,
    a: &[f32],
    pos0: usize,
) -> Vec<f32> {
    let dk = w.attn_k.n_rows();
    let n_tok = a.len() / w.attn_k.n_cols();
    let mut k = vec![0f32; n_tok * dk];
    matmul(&mut k, &w.attn_k, a);
    for (t, row) in k.chunks_exact_mut(dk).enumerate() {
        layer_norm(row, &w.k_norm, &w.k_norm_b);
        rope_neox(&mut row[..n_rot], pos0 + t, freqs);
    }
    k
}

/// For each of the `n_tok` new tokens (positions `pos0..`), the positions its MLA attends to, in
/// increasing order: all of `0..=p` while that is at most `top_k`, else the `top_k` of highest
/// score (`index_keys`: every cached position's key, the new ones included).
#[allow(clippy::too_many_arguments)]
pub fn select(
    w: &IndexerWeights<'_>,
    c: &DeepSeekConfig,
    freqs: &[f64],
    qr: &[f32],
    a: &[f32],
    index_keys: &[f32],
    pos0: usize,
    top_k: usize,
) -> Vec<Vec<usize>> {
    let dk = w.attn_k.n_rows();
    let n_head = w.proj.n_rows();
    let n_tok = a.len() / c.n_embd;
    let mut q = vec![0f32; n_tok * n_head * dk];
    matmul(&mut q, &w.attn_q_b, qr);
    let mut weights = vec![0f32; n_tok * n_head];
    matmul(&mut weights, &w.proj, a);
    let scale = 1.0 / ((dk * n_head) as f32).sqrt();
    (0..n_tok)
        .map(|t| {
            let pos = pos0 + t;
            if pos < top_k {
                return (0..=pos).collect();
            }
            let q_t = &mut q[t * n_head * dk..][..n_head * dk];
            for head in q_t.chunks_exact_mut(dk) {
                rope_neox(&mut head[..c.n_rot], pos, freqs);
            }
            let w_t = &weights[t * n_head..][..n_head];
            let scores: Vec<f32> = (0..=pos)
                .map(|s| {
                    let k_s = &index_keys[s * dk..][..dk];
                    let sum: f32 = q_t
                        .chunks_exact(dk)
                        .zip(w_t)
                        .map(|(q_h, &w_h)| w_h * dot(q_h, k_s).max(0.0))
                        .sum();
                    sum * scale
                })
                .collect();
            let mut order: Vec<usize> = (0..=pos).collect();
            // Highest score first; ties to the earlier position.
            order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]).then(i.cmp(&j)));
            order.truncate(top_k);
            order.sort_unstable();
            order
        })
        .collect()
}

/// `(x − mean) / sqrt(var + ε) · weight + bias`, in place.
fn layer_norm(x: &mut [f32], weight: &[f32], bias: &[f32]) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let inv = 1.0 / (var + f64::from(K_NORM_EPS)).sqrt();
    for ((v, &g), &b) in x.iter_mut().zip(weight).zip(bias) {
        *v = ((f64::from(*v) - mean) * inv) as f32 * g + b;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        layer_norm(&mut x, &[1.0; 4], &[0.5; 4]);
        let mean: f32 = x.iter().sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6);
        let var: f32 = x.iter().map(|v| (v - 0.5) * (v - 0.5)).sum::<f32>() / 4.0;
        assert!((var - 1.0).abs() < 1e-4, "{var}");
    }
}
