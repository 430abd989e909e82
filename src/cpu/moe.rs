//! DeepSeekMoE (spec §4.8, §4.9): the router (softmax or sigmoid scores, optional selection bias,
//! optional group limiting, top-k, renormalisation and scaling), routed and shared SwiGLU experts.
//! Formulas: HF `modeling_deepseek_v2.py` / `modeling_deepseek_v3.py` (`DeepseekV*Moe`, `*TopkRouter`)
//! and llama.cpp `src/llama-graph.cpp: build_moe_ffn`, which differ only in the group score of
//! softmax-gated models (see [`GroupScore`]).

use super::ops::{matmul, sigmoid, silu, softmax, top_k};
use super::weights::{MoeWeights, SwiGlu};
use crate::model::{DeepSeekConfig, GatingFunc, GroupScore};

/// llama.cpp's floor for the sum of renormalised weights (`build_moe_ffn`: `ggml_clamp(…, 6.103515625e-5, INF)`,
/// the smallest normal f16); HF adds 1e-20 instead, which differs only for sums that small.
const MIN_WEIGHT_SUM: f32 = 6.103_515_6e-5;

/// The experts chosen for one token.
#[derive(Clone, Debug, PartialEq)]
pub struct Routing {
    /// Expert indices, best selection score first.
    pub experts: Vec<usize>,
    /// Their final weights (after renormalisation and `expert_weights_scale`).
    pub weights: Vec<f32>,
}

/// Routes one token from its router logits `[E]` (spec §4.9):
/// 1. scores: softmax over experts (gating 1) or element-wise sigmoid (gating 2);
/// 2. selection scores = scores + `exp_probs_b` when the layer has one (bias never enters the weights);
/// 3. group limiting (`expert_group_count` > 1): rank the groups by their max (softmax) or top-2
///    sum (sigmoid) of selection scores, keep `expert_group_used_count`, exclude the others (−∞);
/// 4. top-k of the selection scores; weights = the chosen experts' unbiased scores;
/// 5. optional renormalisation to sum 1, then × `expert_weights_scale`.
pub fn route(c: &DeepSeekConfig, logits: &[f32], selection_bias: Option<&[f32]>) -> Routing {
    let mut scores = logits.to_vec(); // [E]
    match c.expert_gating_func {
        GatingFunc::Softmax => softmax(&mut scores),
        GatingFunc::Sigmoid => scores.iter_mut().for_each(|s| *s = sigmoid(*s)),
    }
    let mut selection = scores.clone(); // [E]
    if let Some(bias) = selection_bias {
        selection.iter_mut().zip(bias).for_each(|(s, b)| *s += b);
    }
    if c.is_group_limited() {
        let group_size = c.n_expert / c.n_expert_groups;
        let group_scores: Vec<f32> = selection // [n_groups]
            .chunks_exact(group_size)
            .map(|g| match c.group_score {
                GroupScore::Max => g.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                GroupScore::Top2Sum => top_k(g, 2).iter().map(|&i| g[i]).sum(),
            })
            .collect();
        let kept = top_k(&group_scores, c.n_group_used);
        for (g, group) in selection.chunks_exact_mut(group_size).enumerate() {
            if !kept.contains(&g) {
                group.fill(f32::NEG_INFINITY);
            }
        }
    }
    let experts = top_k(&selection, c.n_expert_used);
    let mut weights: Vec<f32> = experts.iter().map(|&e| scores[e]).collect();
    if c.expert_weights_norm {
        let sum = weights.iter().sum::<f32>().max(MIN_WEIGHT_SUM);
        weights.iter_mut().for_each(|w| *w /= sum);
    }
    weights
        .iter_mut()
        .for_each(|w| *w *= c.expert_weights_scale);
    Routing { experts, weights }
}

/// `out = down · (silu(gate · x) ⊙ (up · x))` for `x` `[n_tok, d]`, `out` `[n_tok, d]` (spec §4.8).
pub fn swiglu(out: &mut [f32], w: &SwiGlu<'_>, x: &[f32]) {
    let n_tok = x.len() / w.gate.n_cols();
    let width = w.gate.n_rows();
    let mut gate = vec![0f32; n_tok * width]; // [n_tok, width]
    let mut up = vec![0f32; n_tok * width]; // [n_tok, width]
    matmul(&mut gate, &w.gate, x);
    matmul(&mut up, &w.up, x);
    for (g, &u) in gate.iter_mut().zip(&up) {
        *g = silu(*g) * u;
    }
    matmul(out, &w.down, &gate); // [n_tok, d]
}

/// A MoE FFN for `x` `[n_tok, d]`: `out` `[n_tok, d]` = Σ_{e ∈ chosen} w_e·expert_e(x) +
/// shared(x). Returns each token's routing.
pub fn moe_ffn(w: &MoeWeights<'_>, c: &DeepSeekConfig, x: &[f32], out: &mut [f32]) -> Vec<Routing> {
    let d = c.n_embd;
    let n_tok = x.len() / d;
    let mut logits = vec![0f32; n_tok * c.n_expert]; // [n_tok, E]
    matmul(&mut logits, &w.router, x);
    match &w.shared {
        Some(shared) => swiglu(out, shared, x), // [n_tok, d], weight 1
        None => out.fill(0.0),
    }
    let mut y = vec![0f32; d]; // [d]
    let mut routings = Vec::with_capacity(n_tok);
    for ((x_t, out_t), logits_t) in x
        .chunks_exact(d)
        .zip(out.chunks_exact_mut(d))
        .zip(logits.chunks_exact(c.n_expert))
    {
        let routing = route(c, logits_t, w.selection_bias.as_deref());
        for (&e, &weight) in routing.experts.iter().zip(&routing.weights) {
            swiglu(&mut y, &w.experts[e], x_t);
            out_t.iter_mut().zip(&y).for_each(|(o, v)| *o += weight * v);
        }
        routings.push(routing);
    }
    routings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::tiny_config;

    /// Softmax gating, 4 groups of 4, keep 2, top-4 (tiny-v2-gl). Group 0 has the single best
    /// expert, group 1 the best pair: the max rule keeps groups 0 and 2, the top-2-sum rule 1 and 2.
    #[test]
    fn group_limited_routing_max_vs_top2_sum() {
        let mut c = tiny_config("tiny-v2-gl-F16.gguf");
        let logits = [
            3.0, -2.0, -2.0, -2.0, // group 0: max 3.0, top-2 sum small
            2.5, 2.5, -2.0, -2.0, // group 1: max 2.5, top-2 sum large
            2.8, 2.6, -2.0, -2.0, // group 2
            -1.0, -1.0, -1.0, -1.0,
        ];
        let max_rule = route(&c, &logits, None);
        assert_eq!(max_rule.experts, vec![0, 8, 9, 1]);
        c.group_score = GroupScore::Top2Sum;
        let top2 = route(&c, &logits, None);
        assert_eq!(top2.experts, vec![8, 9, 4, 5]);
        // Weights: the softmax probabilities over all 16, times 16, not renormalised.
        let mut probs = logits.to_vec();
        softmax(&mut probs);
        assert!((top2.weights[0] - 16.0 * probs[8]).abs() < 1e-5);
    }

    /// Sigmoid gating: the bias decides the selection, the unbiased scores give the weights,
    /// which are renormalised and scaled (tiny-v3: ×2.5).
    #[test]
    fn sigmoid_bias_selects_but_does_not_weigh() {
        let mut c = tiny_config("tiny-v3-F16.gguf");
        c.n_expert_groups = 1;
        let logits = [1.0f32; 16];
        let mut bias = [0f32; 16];
        for (e, b) in [(3, 0.5), (7, 0.4), (11, 0.3), (15, 0.2)] {
            bias[e] = b;
        }
        let r = route(&c, &logits, Some(&bias));
        assert_eq!(r.experts, vec![3, 7, 11, 15]);
        for w in r.weights {
            assert!((w - 2.5 / 4.0).abs() < 1e-6, "{w}");
        }
    }
}
