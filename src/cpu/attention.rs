//! Multi-head latent attention (MLA, spec §4.2, §4.6, §4.7) in both of its forms, over the same
//! latent cache:
//! * naive: every cached latent is expanded into per-head keys and values (the legacy MHA path,
//!   HF `DeepseekV2Attention`);
//! * absorbed: W_UK is folded into the query and W_UV applied after the weighted sum, so
//!   attention runs on the 576-wide latent rows directly (llama.cpp's MLA path,
//!   `src/llama-graph.cpp: build_attn` with `v_mla`).
//!
//! Both compute `softmax(kq_scale · Q·K) · V` exactly; only the association differs, so they agree
//! to rounding (`tests/cpu_reference.rs`).

use super::kv_cache::LatentCache;
use super::ops::{dot, matmul, matvec, matvec_transposed, rmsnorm, rmsnorm_rows, rope, softmax};
use super::weights::{LayerWeights, QWeights};
use crate::model::DeepSeekConfig;

/// Which form of MLA to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MlaForm {
    /// Expand K/V per head from the latent (spec §4.6).
    Naive,
    /// Latent-space attention with absorbed up-projections (spec §4.7).
    #[default]
    Absorbed,
}

/// Projections of `n_tok` normalised inputs `a` `[n_tok, d]` at positions `pos0..`: returns the
/// queries `[n_tok, H, dn + dr]` (q_pe rotated, all of it scaled by the query temperature if the
/// model has one), the latent cache rows `[n_tok, r + dr]` (c_kv normalised, k_pe rotated) and,
/// with q compression, the normalised q latent `[n_tok, rq]` (which V3.2's indexer reads too).
pub fn project(
    w: &LayerWeights<'_>,
    c: &DeepSeekConfig,
    freqs: &[f64],
    a: &[f32],
    pos0: usize,
) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let n_tok = a.len() / c.n_embd;
    let (dn, dk, r) = (c.n_embd_head_qk_nope, c.n_embd_head_qk(), c.n_lora_kv);
    let mut q = vec![0f32; n_tok * c.n_head * dk]; // [n_tok, H, dn + dr]
    let cq = match &w.q {
        QWeights::Plain(attn_q) => {
            matmul(&mut q, attn_q, a);
            None
        }
        QWeights::Lora {
            attn_q_a,
            attn_q_a_norm,
            attn_q_b,
        } => {
            let mut cq = vec![0f32; n_tok * attn_q_a.n_rows()]; // [n_tok, rq]
            matmul(&mut cq, attn_q_a, a);
            rmsnorm_rows(&mut cq, attn_q_a_norm, c.rms_eps);
            matmul(&mut q, attn_q_b, &cq);
            Some(cq)
        }
    };
    let mut kv = vec![0f32; n_tok * (r + c.n_rot)]; // [n_tok, r + dr]
    matmul(&mut kv, &w.attn_kv_a_mqa, a);
    let mut normed = vec![0f32; r];
    for (t, (q_t, kv_t)) in q
        .chunks_exact_mut(c.n_head * dk)
        .zip(kv.chunks_exact_mut(r + c.n_rot))
        .enumerate()
    {
        let pos = pos0 + t;
        for head in q_t.chunks_exact_mut(dk) {
            rope(&mut head[dn..], pos, freqs); // q_pe [dr]
        }
        if let Some(temperature) = c.attn_temperature {
            // Mistral Large 3: the whole query (nope and rope parts) scaled by position.
            let f = temperature.factor(pos);
            q_t.iter_mut().for_each(|v| *v *= f);
        }
        let (c_kv, k_pe) = kv_t.split_at_mut(r);
        rmsnorm(&mut normed, c_kv, &w.attn_kv_a_norm, c.rms_eps); // c_kv [r]
        c_kv.copy_from_slice(&normed);
        rope(k_pe, pos, freqs); // k_pe [dr], one key shared by all heads
    }
    (q, kv, cq)
}

/// Absorbed MLA for one query `q` `[H, dn + dr]` over latent rows `[n_ctx, r + dr]`; writes
/// `out` `[H·dv]`. Per head: `q_abs = W_UK,hᵀ q_nope` `[r]`; score_s = kq_scale·(q_abs·c_s +
/// q_pe·k_pe_s); `o = W_UV,h Σ_s a_s c_s` `[dv]`.
pub fn attend_absorbed(
    w: &LayerWeights<'_>,
    c: &DeepSeekConfig,
    q: &[f32],
    rows: &[f32],
    out: &mut [f32],
) {
    let (dn, dk, dv, r) = (
        c.n_embd_head_qk_nope,
        c.n_embd_head_qk(),
        c.n_embd_head_v,
        c.n_lora_kv,
    );
    let row_len = r + c.n_rot;
    let n_ctx = rows.len() / row_len;
    let kq_scale = c.kq_scale();
    let mut q_abs = vec![0f32; r];
    let mut scores = vec![0f32; n_ctx];
    let mut o_lat = vec![0f32; r];
    for (h, (q_h, out_h)) in q.chunks_exact(dk).zip(out.chunks_exact_mut(dv)).enumerate() {
        let (q_nope, q_pe) = q_h.split_at(dn);
        matvec(&mut q_abs, &w.attn_k_b[h], q_nope); // [r] = [r, dn] · [dn]
        attend_latent(&q_abs, q_pe, rows, kq_scale, &mut scores, &mut o_lat);
        matvec(out_h, &w.attn_v_b[h], &o_lat); // [dv] = [dv, r] · [r]
    }
}

/// The latent-space core of [`attend_absorbed`] for one head, between the two up-projections
/// (the GPU `attention` kernel computes exactly this): over latent rows `[n_ctx, r + dr]`,
/// `score_s = kq_scale·(q_abs·c_s + q_pe·k_pe_s)`, `o_lat = Σ_s softmax(score)_s c_s` `[r]`,
/// with `r = q_abs.len()`, `dr = q_pe.len()`. `scores` is scratch of `n_ctx` values.
pub fn attend_latent(
    q_abs: &[f32],
    q_pe: &[f32],
    rows: &[f32],
    kq_scale: f32,
    scores: &mut [f32],
    o_lat: &mut [f32],
) {
    let r = q_abs.len();
    let row_len = r + q_pe.len();
    for (score, row) in scores.iter_mut().zip(rows.chunks_exact(row_len)) {
        let (c_kv, k_pe) = row.split_at(r);
        *score = kq_scale * (dot(q_abs, c_kv) + dot(q_pe, k_pe));
    }
    softmax(scores);
    o_lat.fill(0.0);
    for (&a, row) in scores.iter().zip(rows.chunks_exact(row_len)) {
        for (o, &v) in o_lat.iter_mut().zip(&row[..r]) {
            *o += a * v;
        }
    }
}

/// Per-head keys and values expanded from latent rows (the naive form's MHA cache).
#[derive(Clone, Debug)]
pub struct ExpandedKv {
    /// `[n_ctx, H, dn + dr]`: `[W_UK,h c_s ‖ k_pe_s]`.
    pub k: Vec<f32>,
    /// `[n_ctx, H, dv]`: `W_UV,h c_s`.
    pub v: Vec<f32>,
}

/// Expands every row of `rows` `[n_ctx, r + dr]` into K and V for all heads (spec §4.6).
pub fn expand_kv(w: &LayerWeights<'_>, c: &DeepSeekConfig, rows: &[f32]) -> ExpandedKv {
    let (dn, dk, dv, r, h) = (
        c.n_embd_head_qk_nope,
        c.n_embd_head_qk(),
        c.n_embd_head_v,
        c.n_lora_kv,
        c.n_head,
    );
    let n_ctx = rows.len() / (r + c.n_rot);
    let mut k = vec![0f32; n_ctx * h * dk];
    let mut v = vec![0f32; n_ctx * h * dv];
    for (s, row) in rows.chunks_exact(r + c.n_rot).enumerate() {
        let (c_kv, k_pe) = row.split_at(r);
        for head in 0..h {
            let k_sh = &mut k[(s * h + head) * dk..][..dk];
            matvec_transposed(&mut k_sh[..dn], &w.attn_k_b[head], c_kv); // [dn] = ([r, dn])ᵀ · [r]
            k_sh[dn..].copy_from_slice(k_pe);
            matvec(&mut v[(s * h + head) * dv..][..dv], &w.attn_v_b[head], c_kv); // [dv]
        }
    }
    ExpandedKv { k, v }
}

/// Naive MLA for one query `q` `[H, dn + dr]` over the first `n_ctx` expanded positions; writes
/// `out` `[H·dv]`: `o_h = Σ_s softmax_s(kq_scale · Q_h·K_s,h) V_s,h`.
pub fn attend_naive(c: &DeepSeekConfig, q: &[f32], kv: &ExpandedKv, n_ctx: usize, out: &mut [f32]) {
    let (dk, dv, h) = (c.n_embd_head_qk(), c.n_embd_head_v, c.n_head);
    let kq_scale = c.kq_scale();
    let mut scores = vec![0f32; n_ctx];
    for (head, (q_h, out_h)) in q.chunks_exact(dk).zip(out.chunks_exact_mut(dv)).enumerate() {
        for (s, score) in scores.iter_mut().enumerate() {
            *score = kq_scale * dot(q_h, &kv.k[(s * h + head) * dk..][..dk]);
        }
        softmax(&mut scores);
        out_h.fill(0.0);
        for (s, &a) in scores.iter().enumerate() {
            for (o, &v) in out_h.iter_mut().zip(&kv.v[(s * h + head) * dv..][..dv]) {
                *o += a * v;
            }
        }
    }
}

/// Attention for `n_tok` new tokens whose latent rows are the last `n_tok` rows of `cache`
/// (layer `layer`), causal: token t sees positions `..= n_past + t`, or only `selected[t]` of
/// them (DeepSeek-V3.2's indexer). `q` `[n_tok, H, dn + dr]`; returns `[n_tok, H·dv]`, before
/// `attn_output`.
pub fn attention(
    w: &LayerWeights<'_>,
    c: &DeepSeekConfig,
    form: MlaForm,
    q: &[f32],
    cache: &LatentCache,
    layer: usize,
    selected: Option<&[Vec<usize>]>,
) -> Vec<f32> {
    let (dk, dv) = (c.n_embd_head_qk(), c.n_embd_head_v);
    let n_tok = q.len() / (c.n_head * dk);
    let rows = cache.rows(layer);
    let row_len = cache.row_len();
    let n_past = rows.len() / row_len - n_tok;
    let mut out = vec![0f32; n_tok * c.n_head * dv];
    let expanded = (form == MlaForm::Naive).then(|| expand_kv(w, c, rows));
    for (t, (q_t, out_t)) in q
        .chunks_exact(c.n_head * dk)
        .zip(out.chunks_exact_mut(c.n_head * dv))
        .enumerate()
    {
        let n_ctx = n_past + t + 1;
        if let Some(positions) = selected.map(|s| &s[t]).filter(|p| p.len() < n_ctx) {
            // Sparse: the selected latent rows, gathered in position order.
            let rows: Vec<f32> = positions
                .iter()
                .flat_map(|&p| rows[p * row_len..][..row_len].iter().copied())
                .collect();
            match form {
                MlaForm::Naive => {
                    attend_naive(c, q_t, &expand_kv(w, c, &rows), positions.len(), out_t)
                }
                MlaForm::Absorbed => attend_absorbed(w, c, q_t, &rows, out_t),
            }
            continue;
        }
        match &expanded {
            Some(kv) => attend_naive(c, q_t, kv, n_ctx, out_t),
            None => attend_absorbed(w, c, q_t, &rows[..n_ctx * row_len], out_t),
        }
    }
    out
}
