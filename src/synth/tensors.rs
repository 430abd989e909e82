//! The tensor list of a synthetic deepseek2 model (names and GGUF shapes of spec §3) and how each
//! one is initialised.
//!
//! Scales follow the golden tiny models (`shared/golden/tools/make_tiny.py`): every matrix
//! N(0, 1/fan_in) so each sub-layer moves the residual stream by about its own size; embeddings
//! N(0, 1); output head and router N(0, 4/d) (logits with std ≈ 2 and decisive routing); RMSNorm
//! weights 1 + 0.1·N(0, 1); the V3 selection bias N(0, 0.25²).

use super::presets::SynthConfig;

/// How a tensor's values are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// N(0, std²)
    Normal(f32),
    /// 1 + 0.1·N(0, 1)
    NormWeight,
    /// Rows of MLA's `attn_kv_b` (legacy) or slices of it (`attn_k_b`, `attn_v_b`): both layouts
    /// are cut from the same random kv_b so one seed gives the same model in either layout.
    KvB,
    /// Values the writer computes (llama3's `rope_freqs.weight`), not drawn.
    Computed,
}

/// The MLA tensor layout to write (spec §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `attn_k_b` + `attn_v_b` and the `*_mla` keys (llama.cpp converters since April 2025).
    Mla,
    /// `attn_kv_b` (older files).
    Legacy,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    /// GGUF order: `shape[0]` is the contiguous dimension.
    pub shape: Vec<u64>,
    pub init: Init,
}

fn spec(name: String, shape: &[u64], init: Init) -> TensorSpec {
    TensorSpec {
        name,
        shape: shape.to_vec(),
        init,
    }
}

/// A weight of `fan_in` inputs: N(0, 1/fan_in).
fn linear(name: String, shape: &[u64]) -> TensorSpec {
    let fan_in = shape[0] as f32;
    spec(name, shape, Init::Normal(1.0 / fan_in.sqrt()))
}

/// Every tensor of the model, in the order they are written.
pub fn tensor_specs(c: &SynthConfig, n_vocab: u64, layout: Layout) -> Vec<TensorSpec> {
    let d = c.n_embd;
    let head_std = 2.0 / (d as f32).sqrt();
    let mut specs = vec![spec(
        "token_embd.weight".into(),
        &[d, n_vocab],
        Init::Normal(1.0),
    )];
    for il in 0..c.n_layer + c.n_nextn {
        layer_specs(c, il, layout, &mut specs);
        if il >= c.n_layer {
            // The MTP block's own tensors (llama.cpp `LLM_TENSOR_NEXTN_*`).
            let nextn = |t: &str| format!("blk.{il}.nextn.{t}.weight");
            specs.push(linear(nextn("eh_proj"), &[2 * d, d]));
            specs.push(spec(nextn("enorm"), &[d], Init::NormWeight));
            specs.push(spec(nextn("hnorm"), &[d], Init::NormWeight));
            specs.push(spec(nextn("shared_head_norm"), &[d], Init::NormWeight));
        }
    }
    specs.push(spec("output_norm.weight".into(), &[d], Init::NormWeight));
    specs.push(spec(
        "output.weight".into(),
        &[d, n_vocab],
        Init::Normal(head_std),
    ));
    specs
}

/// The tensors of block `il` (a trunk layer, or an MTP block's transformer part).
fn layer_specs(c: &SynthConfig, il: u64, layout: Layout, specs: &mut Vec<TensorSpec>) {
    let d = c.n_embd;
    let head_std = 2.0 / (d as f32).sqrt();
    let q_width = c.n_head * (c.qk_nope + c.qk_rope);
    let blk = |t: &str| format!("blk.{il}.{t}.weight");
    specs.push(spec(blk("attn_norm"), &[d], Init::NormWeight));
    if c.q_lora_rank > 0 {
        specs.push(linear(blk("attn_q_a"), &[d, c.q_lora_rank]));
        specs.push(spec(
            blk("attn_q_a_norm"),
            &[c.q_lora_rank],
            Init::NormWeight,
        ));
        specs.push(linear(blk("attn_q_b"), &[c.q_lora_rank, q_width]));
        if let Some((heads, dk, _)) = c.indexer {
            let ix = |t: &str| format!("blk.{il}.indexer.{t}");
            specs.push(linear(ix("attn_q_b.weight"), &[c.q_lora_rank, heads * dk]));
            specs.push(linear(ix("attn_k.weight"), &[d, dk]));
            specs.push(spec(ix("k_norm.weight"), &[dk], Init::NormWeight));
            specs.push(spec(ix("k_norm.bias"), &[dk], Init::Normal(0.1)));
            specs.push(linear(ix("proj.weight"), &[d, heads]));
        }
    } else {
        specs.push(linear(blk("attn_q"), &[d, q_width]));
    }
    specs.push(linear(
        blk("attn_kv_a_mqa"),
        &[d, c.kv_lora_rank + c.qk_rope],
    ));
    specs.push(spec(
        blk("attn_kv_a_norm"),
        &[c.kv_lora_rank],
        Init::NormWeight,
    ));
    match layout {
        Layout::Mla => {
            let k_b = [c.qk_nope, c.kv_lora_rank, c.n_head];
            specs.push(spec(blk("attn_k_b"), &k_b, Init::KvB));
            let v_b = [c.kv_lora_rank, c.v_head, c.n_head];
            specs.push(spec(blk("attn_v_b"), &v_b, Init::KvB));
        }
        Layout::Legacy => {
            let kv_b = [c.kv_lora_rank, c.n_head * (c.qk_nope + c.v_head)];
            specs.push(spec(blk("attn_kv_b"), &kv_b, Init::KvB));
        }
    }
    specs.push(linear(blk("attn_output"), &[c.n_head * c.v_head, d]));
    specs.push(spec(blk("ffn_norm"), &[d], Init::NormWeight));
    if il < c.n_dense_lead {
        specs.push(linear(blk("ffn_gate"), &[d, c.n_ff]));
        specs.push(linear(blk("ffn_up"), &[d, c.n_ff]));
        specs.push(linear(blk("ffn_down"), &[c.n_ff, d]));
        return;
    }
    let (e, f) = (c.n_expert, c.expert_ff);
    specs.push(spec(blk("ffn_gate_inp"), &[d, e], Init::Normal(head_std)));
    if c.gating == 2 {
        specs.push(spec(
            format!("blk.{il}.exp_probs_b.bias"),
            &[e],
            Init::Normal(0.25),
        ));
    }
    specs.push(linear(blk("ffn_gate_exps"), &[d, f, e]));
    specs.push(linear(blk("ffn_up_exps"), &[d, f, e]));
    specs.push(linear(blk("ffn_down_exps"), &[f, d, e]));
    let shared = f * c.n_expert_shared;
    specs.push(linear(blk("ffn_gate_shexp"), &[d, shared]));
    specs.push(linear(blk("ffn_up_shexp"), &[d, shared]));
    specs.push(linear(blk("ffn_down_shexp"), &[shared, d]));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_and_params(preset: &str, layout: Layout) -> (usize, u64) {
        let config = SynthConfig::preset(preset).expect("preset exists");
        let n_vocab = if preset == "v3" { 129_280 } else { 102_400 };
        let specs = tensor_specs(&config, n_vocab, layout);
        let params = specs.iter().map(|s| s.shape.iter().product::<u64>()).sum();
        (specs.len(), params)
    }

    /// Tensor counts of real files (spec §3.2: V2-Lite legacy 377, MLA 404; V3 legacy 1025, MLA
    /// 1086) and llama.cpp's parameter counts (spec §8: 15.71 B and 671.03 B).
    #[test]
    fn real_presets_have_the_real_models_tensors() {
        let (n, params) = count_and_params("v2-lite", Layout::Legacy);
        assert_eq!(n, 377);
        assert_eq!((params as f64 / 1e7).round() / 100.0, 15.71);
        assert_eq!(count_and_params("v2-lite", Layout::Mla).0, 404);
        let (n, params) = count_and_params("v3", Layout::Legacy);
        assert_eq!(n, 1025);
        assert_eq!((params as f64 / 1e7).round() / 100.0, 671.03);
        assert_eq!(count_and_params("v3", Layout::Mla).0, 1086);
    }
}
