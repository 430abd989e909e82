//! Shapes of the synthetic model presets: tiny ones for tests and the real shapes of DeepSeek-V2-Lite
//! and V3 (spec §2 and §8) for benchmarks.

use super::routing::Routing;

/// The hyper-parameters of a synthetic deepseek2 model.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    pub name: &'static str,
    pub n_layer: u64,
    /// d
    pub n_embd: u64,
    /// F: FFN width of the leading dense layers.
    pub n_ff: u64,
    /// H
    pub n_head: u64,
    /// rq; 0 = no q compression (`attn_q`).
    pub q_lora_rank: u64,
    /// r
    pub kv_lora_rank: u64,
    /// dn
    pub qk_nope: u64,
    /// dr
    pub qk_rope: u64,
    /// dv
    pub v_head: u64,
    /// E
    pub n_expert: u64,
    /// k
    pub n_expert_used: u64,
    /// S
    pub n_expert_shared: u64,
    /// f
    pub expert_ff: u64,
    pub n_dense_lead: u64,
    pub n_group: u64,
    pub n_group_used: u64,
    /// 1 = softmax (V2), 2 = sigmoid with selection bias (V3).
    pub gating: u32,
    pub weights_scale: f32,
    pub weights_norm: bool,
    /// `rope.scaling.yarn_log_multiplier` = 0.1 × mscale_all_dim.
    pub yarn_log_multiplier: f32,
    /// `rope.freq_base` (θ).
    pub rope_base: f32,
    /// Multi-token-prediction blocks after the trunk (`nextn_predict_layers`): a full MoE block
    /// plus the `nextn.*` tensors each, as GLM-4.7-Flash and DeepSeek-V3.2 files keep them.
    pub n_nextn: u64,
    /// `attention.temperature_scale` and `_length` (Mistral Large 3), written when present.
    pub temperature: Option<(f32, u64)>,
    /// DeepSeek-V3.2's lightning indexer (heads, key length, top_k): the file is `deepseek32`.
    pub indexer: Option<(u64, u64, u64)>,
    /// Which bundled tokenizer: the full DeepSeek-V3 vocabulary or its 4096-row cut.
    pub full_vocab: bool,
    /// Expert popularity and locality built into the weights; [`Routing::Uniform`] in every
    /// preset. (A field of the config rather than of `SynthOptions` so that code building
    /// `SynthOptions` literally keeps compiling.)
    pub routing: Routing,
}

impl SynthConfig {
    /// Every preset name.
    pub const PRESETS: &'static [&'static str] = &[
        "tiny-v2",
        "tiny-v3",
        "v2-lite",
        "v3",
        "kimi-k2",
        "glm-4.7-flash",
        "mistral-large-3",
        "v3.2",
    ];

    pub fn preset(name: &str) -> Option<SynthConfig> {
        let tiny = SynthConfig {
            name: "tiny-v2",
            n_layer: 4,
            n_embd: 256,
            n_ff: 512,
            n_head: 4,
            q_lora_rank: 0,
            kv_lora_rank: 64,
            qk_nope: 32,
            qk_rope: 16,
            v_head: 32,
            n_expert: 16,
            n_expert_used: 4,
            n_expert_shared: 2,
            expert_ff: 64,
            n_dense_lead: 1,
            n_group: 1,
            n_group_used: 1,
            gating: 1,
            weights_scale: 1.0,
            weights_norm: false,
            yarn_log_multiplier: 0.0707,
            rope_base: 10_000.0,
            n_nextn: 0,
            temperature: None,
            indexer: None,
            full_vocab: false,
            routing: Routing::Uniform,
        };
        Some(match name {
            "tiny-v2" => tiny,
            // V3-style: q-LoRA, dv ≠ dn, sigmoid + bias, group top-k, renormalised and scaled weights.
            "tiny-v3" => SynthConfig {
                name: "tiny-v3",
                q_lora_rank: 96,
                v_head: 48,
                n_expert_shared: 1,
                n_group: 4,
                n_group_used: 2,
                gating: 2,
                weights_scale: 2.5,
                weights_norm: true,
                yarn_log_multiplier: 0.1,
                ..tiny
            },
            "v2-lite" => SynthConfig {
                name: "v2-lite",
                n_layer: 27,
                n_embd: 2048,
                n_ff: 10944,
                n_head: 16,
                q_lora_rank: 0,
                kv_lora_rank: 512,
                qk_nope: 128,
                qk_rope: 64,
                v_head: 128,
                n_expert: 64,
                n_expert_used: 6,
                n_expert_shared: 2,
                expert_ff: 1408,
                full_vocab: true,
                ..tiny
            },
            "v3" => SynthConfig {
                name: "v3",
                n_layer: 61,
                n_embd: 7168,
                n_ff: 18432,
                n_head: 128,
                q_lora_rank: 1536,
                kv_lora_rank: 512,
                qk_nope: 128,
                qk_rope: 64,
                v_head: 128,
                n_expert: 256,
                n_expert_used: 8,
                n_expert_shared: 1,
                expert_ff: 2048,
                n_dense_lead: 3,
                n_group: 8,
                n_group_used: 4,
                gating: 2,
                weights_scale: 2.5,
                weights_norm: true,
                yarn_log_multiplier: 0.1,
                rope_base: 10_000.0,
                n_nextn: 0,
                temperature: None,
                indexer: None,
                full_vocab: true,
                routing: Routing::Uniform,
            },
            // Kimi-K2's routing at tiny width: 384 experts (more than V3's 256), top-8, one
            // group, sigmoid + bias, scale 2.827, one dense lead, θ 50000.
            "kimi-k2" => SynthConfig {
                name: "kimi-k2",
                n_layer: 2,
                q_lora_rank: 96,
                v_head: 32,
                n_expert: 384,
                n_expert_used: 8,
                n_expert_shared: 1,
                expert_ff: 16,
                n_group: 1,
                n_group_used: 1,
                gating: 2,
                weights_scale: 2.827,
                weights_norm: true,
                yarn_log_multiplier: 0.1,
                rope_base: 50_000.0,
                ..tiny
            },
            // GLM-4.7-Flash's attention shape at tiny width: key and value heads of the same size
            // (dn + dr = dv, 192 + 64 = 256 there), q-LoRA, sigmoid gating, θ 1e6, and its MTP
            // block kept after the trunk.
            "glm-4.7-flash" => SynthConfig {
                name: "glm-4.7-flash",
                n_layer: 3,
                q_lora_rank: 96,
                qk_nope: 48,
                qk_rope: 16,
                v_head: 64,
                n_expert_shared: 1,
                gating: 2,
                weights_scale: 1.8,
                weights_norm: true,
                yarn_log_multiplier: 0.1,
                rope_base: 1_000_000.0,
                n_nextn: 1,
                ..tiny
            },
            // Mistral Large 3's query temperature (here from position 16 on, so short prompts
            // reach it) and softmax gating with expert groups.
            "mistral-large-3" => SynthConfig {
                name: "mistral-large-3",
                n_layer: 3,
                q_lora_rank: 96,
                n_group: 4,
                n_group_used: 2,
                weights_norm: true,
                yarn_log_multiplier: 0.1,
                temperature: Some((0.1, 16)),
                ..tiny
            },
            // DeepSeek-V3.2 at tiny width: V3's routing, the lightning indexer (4 heads of 128,
            // top 64 positions, so a longer prompt is sparse), V3.2's 64 rotary dims and the MTP
            // block kept.
            "v3.2" => SynthConfig {
                name: "v3.2",
                n_layer: 3,
                q_lora_rank: 96,
                v_head: 48,
                n_expert_shared: 1,
                n_group: 4,
                n_group_used: 2,
                gating: 2,
                weights_scale: 2.5,
                weights_norm: true,
                yarn_log_multiplier: 0.1,
                n_nextn: 1,
                indexer: Some((4, 128, 64)),
                // llama.cpp's deepseek32 graph needs the real 64 rotary dims (with 16 it aborts
                // reserving its graph).
                qk_rope: 64,
                ..tiny
            },
            _ => return None,
        })
    }
}
