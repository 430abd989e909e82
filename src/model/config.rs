//! `DeepSeekConfig`: the hyper-parameters of a `deepseek2` GGUF, read from its `deepseek2.*`
//! metadata keys (spec §2) and checked for consistency.
//!
//! Field names follow llama.cpp's `llama_hparams` (`n_embd`, `n_lora_q`, `n_ff_exp`, …). Defaults
//! exist only where llama.cpp has one (`src/llama-model.cpp: load_hparams`,
//! `src/models/deepseek2.cpp`); every other missing key is an error naming it. Two places depart
//! from llama.cpp on purpose, both following the HF reference (shared/golden/README.md):
//! softmax gating with groups ranks groups by their max score, and the YaRN β values come from the
//! file's keys (llama.cpp ignores them for deepseek2 and uses 32 / 1, which is what DeepSeek files
//! store anyway).

use super::metadata::{
    Meta, TypedKeys, meta_error, read_gating, read_head_dims, read_rope_scaling, read_temperature,
};
use crate::gguf::{GgufModel, Value};
use crate::{Error, Result};

/// The architecture name and key prefix.
pub const ARCH: &str = "deepseek2";
/// DeepSeek-V3.2: deepseek2 with the lightning indexer.
pub const ARCH_V32: &str = "deepseek32";

/// Which tensors carry MLA's K/V up-projection (spec §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlaLayout {
    /// `attn_k_b` + `attn_v_b`, flagged by the `attention.key_length_mla`/`value_length_mla` keys.
    Split,
    /// One `attn_kv_b` (files converted before llama.cpp PR #12801).
    Legacy,
}

/// How router logits become expert scores (`expert_gating_func`, spec §4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatingFunc {
    /// 1: softmax over all experts (V2 family).
    Softmax,
    /// 2: element-wise sigmoid, plus `exp_probs_b` for selection only (V3 family).
    Sigmoid,
}

/// How a group of experts is scored for group-limited routing (spec §4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupScore {
    /// The group's largest score: DeepSeek-V2's `group_limited_greedy` (softmax gating).
    Max,
    /// The sum of the group's two largest (biased) scores: DeepSeek-V3's `noaux_tc` (sigmoid).
    Top2Sum,
}

/// RoPE frequency scaling (`rope.scaling.*`, spec §4.4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE.
    None,
    /// Every frequency divided by `factor`.
    Linear { factor: f32 },
    /// YaRN: frequencies blended between original and divided by `factor`, attention scaled by
    /// `mscale²`.
    Yarn(YarnConfig),
}

/// YaRN parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YarnConfig {
    /// s (`rope.scaling.factor`); `freq_scale = 1/s`.
    pub factor: f32,
    /// `rope.scaling.original_context_length`, default `context_length`.
    pub n_ctx_orig: usize,
    /// `rope.scaling.yarn_beta_fast`, default 32.
    pub beta_fast: f32,
    /// `rope.scaling.yarn_beta_slow`, default 1.
    pub beta_slow: f32,
    /// `rope.scaling.yarn_ext_factor`, default 1: weight of the extrapolation ramp.
    pub ext_factor: f32,
    /// `rope.scaling.yarn_log_multiplier` = 0.1 × HF `mscale_all_dim`, default 0.
    pub log_multiplier: f32,
}

/// Query temperature tuning (Mistral Large 3; llama.cpp `llm_graph_input_attn_temp` with offset
/// 0): every query at position p is multiplied by `ln(⌊p / length⌋ + 1) · scale + 1`, so only
/// positions from `length` on are changed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnTemperature {
    /// `attention.temperature_scale`
    pub scale: f32,
    /// `attention.temperature_length`
    pub length: usize,
}

impl AttnTemperature {
    /// The factor on the query at `pos`.
    pub fn factor(&self, pos: usize) -> f32 {
        ((((pos / self.length) as f64) + 1.0).ln() * f64::from(self.scale) + 1.0) as f32
    }
}

/// DeepSeek-V3.2's lightning indexer (`deepseek32.attention.indexer.*`, coverage §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexerConfig {
    /// `head_count`
    pub n_head: usize,
    /// `key_length`: values per indexer query head and per cached index key.
    pub head_dim: usize,
    /// `top_k`: positions each query's MLA attends to once the context is longer.
    pub top_k: usize,
}

/// Everything the forward pass needs to know about a deepseek2 model.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepSeekConfig {
    /// L: the blocks the forward pass runs (`block_count` less `nextn_predict_layers`).
    pub n_layer: usize,
    /// Multi-token-prediction blocks stored after the trunk (`nextn_predict_layers`, default 0):
    /// `blk.L ..` hold them; they are validated and counted, not run.
    pub n_nextn: usize,
    /// Query temperature tuning, when the file has `attention.temperature_scale` (≠ 0).
    pub attn_temperature: Option<AttnTemperature>,
    /// DeepSeek-V3.2 (`deepseek32`): the sparse-attention indexer.
    pub indexer: Option<IndexerConfig>,
    /// n_ctx_train (`context_length`).
    pub n_ctx_train: usize,
    /// d (`embedding_length`).
    pub n_embd: usize,
    /// F: width of the leading dense FFNs (`feed_forward_length`; 0 when absent).
    pub n_ff: usize,
    /// H (`attention.head_count`).
    pub n_head: usize,
    /// `attention.head_count_kv` as stored: 1 in split-layout files, H in legacy ones.
    pub n_head_kv: usize,
    /// RMSNorm ε for every norm (`attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// rq (`attention.q_lora_rank`); 0 = no q compression, the file has `attn_q`.
    pub n_lora_q: usize,
    /// r (`attention.kv_lora_rank`).
    pub n_lora_kv: usize,
    /// dn: non-rotary part of a query/key head.
    pub n_embd_head_qk_nope: usize,
    /// dr (`rope.dimension_count`): rotary part of a query/key head, and of the shared k_pe.
    pub n_rot: usize,
    /// dv: value head size.
    pub n_embd_head_v: usize,
    pub layout: MlaLayout,
    /// RoPE θ (`rope.freq_base`, default 10000).
    pub rope_freq_base: f32,
    pub rope_scaling: RopeScaling,
    /// E (`expert_count`; 0 when the model has no MoE layer).
    pub n_expert: usize,
    /// k (`expert_used_count`).
    pub n_expert_used: usize,
    /// S (`expert_shared_count`).
    pub n_expert_shared: usize,
    /// f (`expert_feed_forward_length`).
    pub n_ff_exp: usize,
    /// Layers `0..n_layer_dense_lead` have a dense FFN (`leading_dense_block_count`, default 0).
    pub n_layer_dense_lead: usize,
    /// Routed-weight multiplier (`expert_weights_scale`, default 1).
    pub expert_weights_scale: f32,
    /// Renormalise the chosen experts' weights to sum 1 (`expert_weights_norm`, default false).
    pub expert_weights_norm: bool,
    pub expert_gating_func: GatingFunc,
    /// Expert groups (`expert_group_count`); 0 or 1 = no group limiting.
    pub n_expert_groups: usize,
    /// Groups kept (`expert_group_used_count`).
    pub n_group_used: usize,
    /// Group ranking rule, implied by the gating function (the file has no key for it).
    pub group_score: GroupScore,
    /// V (`vocab_size`, else the length of `tokenizer.ggml.tokens`).
    pub n_vocab: usize,
}

/// How groups of experts are ranked. Sigmoid gating (V3, Kimi, GLM): the sum of each group's two
/// best biased scores. Softmax gating: DeepSeek-V2's `group_limited_greedy` ranks by the group's
/// best probability (HF `modeling_deepseek_v2.py`), but Mistral Large 3, also softmax-gated and
/// stored as `deepseek2`, ranks by the top-2 sum (HF `modeling_mistral4.py`; llama.cpp uses the
/// top-2 sum for every file). A Mistral file is told by its Tekken tokenizer or its query
/// temperature keys, which no DeepSeek file has.
fn group_score<'a>(gating: GatingFunc, get: &dyn Fn(&str) -> Option<Value<'a>>) -> GroupScore {
    let mistral = get("tokenizer.ggml.pre").and_then(|v| v.as_str()) == Some("tekken")
        || get(&key("attention.temperature_scale")).is_some();
    match gating {
        GatingFunc::Softmax if !mistral => GroupScore::Max,
        _ => GroupScore::Top2Sum,
    }
}

/// Full metadata key name for an architecture key.
pub fn key(name: &str) -> String {
    format!("{ARCH}.{name}")
}

impl DeepSeekConfig {
    /// Reads and checks the config of an opened GGUF model.
    pub fn from_gguf(model: &GgufModel) -> Result<DeepSeekConfig> {
        Self::from_metadata(&|k| model.get(k))
    }

    /// Reads and checks the config from any metadata lookup (full key → value). A `deepseek32`
    /// file (DeepSeek-V3.2) has the same keys under its own prefix, plus the indexer's.
    pub fn from_metadata<'a>(get: &dyn Fn(&str) -> Option<Value<'a>>) -> Result<DeepSeekConfig> {
        let arch_key = "general.architecture";
        match get(arch_key).and_then(|v| v.as_str()) {
            Some(ARCH) => Self::read(get),
            Some(ARCH_V32) => {
                let renamed = |k: &str| match k.strip_prefix("deepseek2.") {
                    Some(rest) => get(&format!("{ARCH_V32}.{rest}")),
                    None => get(k),
                };
                Self::read(&renamed).map_err(|e| match e {
                    Error::Metadata { key, what } => Error::Metadata {
                        key: key.replacen("deepseek2.", "deepseek32.", 1),
                        what,
                    },
                    other => other,
                })
            }
            other => Err(Error::Metadata {
                key: arch_key.into(),
                what: format!("expected \"{ARCH}\" or \"{ARCH_V32}\", found {other:?}"),
            }),
        }
    }

    fn read<'a>(get: &dyn Fn(&str) -> Option<Value<'a>>) -> Result<DeepSeekConfig> {
        let m = Meta { get };
        let v32 = get("general.architecture").and_then(|v| v.as_str()) == Some(ARCH_V32);
        let n_blocks = m.usize("block_count")?;
        let n_nextn = m.opt_usize("nextn_predict_layers")?.unwrap_or(0);
        if n_nextn >= n_blocks {
            return Err(meta_error(
                "nextn_predict_layers",
                format!("{n_nextn} leaves no trunk in block_count {n_blocks}"),
            ));
        }
        let n_layer = n_blocks - n_nextn;
        let n_embd = m.usize("embedding_length")?;
        let n_head = m.usize("attention.head_count")?;
        let n_ctx_train = m.usize("context_length")?;
        let (n_embd_head_qk_nope, n_rot, n_embd_head_v, layout, n_lora_kv) =
            read_head_dims(&m, n_embd, n_head)?;
        let n_expert = m.opt_usize("expert_count")?.unwrap_or(0);
        let n_vocab = match m.opt_usize("vocab_size")? {
            Some(v) => v,
            None => get("tokenizer.ggml.tokens")
                .and_then(|v| v.as_array())
                .map(|a| a.len())
                .ok_or_else(|| meta_error("vocab_size", "missing, and no tokenizer.ggml.tokens"))?,
        };
        // llama.cpp's GLM-4.7 rule looks at the stored block count (47, or 48 with the MTP block).
        let expert_gating_func = read_gating(&m, n_blocks, n_vocab)?;
        let config = DeepSeekConfig {
            n_layer,
            n_nextn,
            attn_temperature: read_temperature(&m)?,
            indexer: if v32 {
                Some(IndexerConfig {
                    n_head: m.usize("attention.indexer.head_count")?,
                    head_dim: m.usize("attention.indexer.key_length")?,
                    top_k: m.usize("attention.indexer.top_k")?,
                })
            } else {
                None
            },
            n_ctx_train,
            n_embd,
            n_ff: m.opt_usize("feed_forward_length")?.unwrap_or(0),
            n_head,
            n_head_kv: m.opt_usize("attention.head_count_kv")?.unwrap_or(n_head),
            rms_eps: m
                .opt_f32("attention.layer_norm_rms_epsilon")?
                .ok_or_else(|| meta_error("attention.layer_norm_rms_epsilon", "missing"))?,
            n_lora_q: m.opt_usize("attention.q_lora_rank")?.unwrap_or(0),
            n_lora_kv,
            n_embd_head_qk_nope,
            n_rot,
            n_embd_head_v,
            layout,
            rope_freq_base: m.opt_f32("rope.freq_base")?.unwrap_or(10_000.0),
            rope_scaling: read_rope_scaling(&m, n_ctx_train)?,
            n_expert,
            n_expert_used: m.opt_usize("expert_used_count")?.unwrap_or(0),
            n_expert_shared: m.usize("expert_shared_count")?,
            n_ff_exp: m.usize("expert_feed_forward_length")?,
            n_layer_dense_lead: m.opt_usize("leading_dense_block_count")?.unwrap_or(0),
            expert_weights_scale: m.opt_f32("expert_weights_scale")?.unwrap_or(1.0),
            expert_weights_norm: m.opt_bool("expert_weights_norm")?.unwrap_or(false),
            expert_gating_func,
            n_expert_groups: m.opt_usize("expert_group_count")?.unwrap_or(0),
            n_group_used: m.opt_usize("expert_group_used_count")?.unwrap_or(0),
            group_score: group_score(expert_gating_func, get),
            n_vocab,
        };
        config.check()?;
        Ok(config)
    }

    /// Whether layer `layer_idx` has routed experts (else a dense FFN).
    pub fn is_moe_layer(&self, layer_idx: usize) -> bool {
        layer_idx >= self.n_layer_dense_lead
    }

    /// dn + dr: query/key head size of the naive form.
    pub fn n_embd_head_qk(&self) -> usize {
        self.n_embd_head_qk_nope + self.n_rot
    }

    /// Whether group-limited routing applies.
    pub fn is_group_limited(&self) -> bool {
        self.n_expert_groups > 1
    }

    /// YaRN magnitude `m = 1 + 0.1·mscale_all_dim·ln(s)` with `mscale_all_dim = log_multiplier/0.1`
    /// (spec §4.5; HF `yarn_get_mscale`, 1 for s ≤ 1); 1 without YaRN.
    pub fn yarn_mscale(&self) -> f32 {
        match self.rope_scaling {
            RopeScaling::Yarn(y) if y.factor > 1.0 => {
                (1.0 + f64::from(y.log_multiplier) * f64::from(y.factor).ln()) as f32
            }
            _ => 1.0,
        }
    }

    /// Softmax scale of attention scores: `m² / sqrt(dn + dr)` (spec §4.5; llama.cpp
    /// `src/models/deepseek2.cpp` `kq_scale`).
    pub fn kq_scale(&self) -> f32 {
        let m = f64::from(self.yarn_mscale());
        (m * m / (self.n_embd_head_qk() as f64).sqrt()) as f32
    }

    /// Cross-key checks; each error names the key at fault.
    fn check(&self) -> Result<()> {
        let fail = |name: &str, what: String| Err(meta_error(name, what));
        for (name, v) in [
            ("block_count", self.n_layer),
            ("embedding_length", self.n_embd),
            ("attention.head_count", self.n_head),
            ("attention.kv_lora_rank", self.n_lora_kv),
            ("vocab_size", self.n_vocab),
        ] {
            if v == 0 {
                return fail(name, "must be positive".into());
            }
        }
        if self.rms_eps <= 0.0 {
            return fail(
                "attention.layer_norm_rms_epsilon",
                format!("{} must be positive", self.rms_eps),
            );
        }
        if self.rope_freq_base <= 0.0 {
            return fail(
                "rope.freq_base",
                format!("{} must be positive", self.rope_freq_base),
            );
        }
        let expected_kv = match self.layout {
            MlaLayout::Split => 1,
            MlaLayout::Legacy => self.n_head,
        };
        if self.n_head_kv != expected_kv {
            let what = format!(
                "{} does not match a {:?}-layout file (expected {expected_kv})",
                self.n_head_kv, self.layout
            );
            return fail("attention.head_count_kv", what);
        }
        if self.n_layer_dense_lead > self.n_layer {
            let what = format!(
                "{} exceeds block_count {}",
                self.n_layer_dense_lead, self.n_layer
            );
            return fail("leading_dense_block_count", what);
        }
        if self.n_layer_dense_lead > 0 && self.n_ff == 0 {
            return fail(
                "feed_forward_length",
                "missing, needed by the leading dense layers".into(),
            );
        }
        if self.n_layer_dense_lead < self.n_layer {
            self.check_moe()?;
        }
        if let Some(ix) = self.indexer {
            if ix.n_head == 0 || ix.top_k == 0 {
                return fail(
                    "attention.indexer.head_count",
                    format!("{ix:?}: heads and top_k must be positive"),
                );
            }
            if ix.head_dim < self.n_rot {
                return fail(
                    "attention.indexer.key_length",
                    format!("{} is below the rotary part {}", ix.head_dim, self.n_rot),
                );
            }
            if self.n_lora_q == 0 || self.layout != MlaLayout::Split {
                return fail(
                    "attention.q_lora_rank",
                    "the indexer needs q-LoRA and the split MLA layout".into(),
                );
            }
        }
        Ok(())
    }

    fn check_moe(&self) -> Result<()> {
        let fail = |name: &str, what: String| Err(meta_error(name, what));
        if self.n_expert == 0 {
            return fail(
                "expert_count",
                "missing or 0, but the model has MoE layers".into(),
            );
        }
        if self.n_expert_used == 0 || self.n_expert_used > self.n_expert {
            let what = format!(
                "{} must be in 1..={} (expert_count)",
                self.n_expert_used, self.n_expert
            );
            return fail("expert_used_count", what);
        }
        if self.n_ff_exp == 0 {
            return fail("expert_feed_forward_length", "must be positive".into());
        }
        if !(self.expert_weights_scale.is_finite() && self.expert_weights_scale != 0.0) {
            let what = format!("{} must be finite and non-zero", self.expert_weights_scale);
            return fail("expert_weights_scale", what);
        }
        if self.is_group_limited() {
            let (groups, used) = (self.n_expert_groups, self.n_group_used);
            if !self.n_expert.is_multiple_of(groups) {
                let what = format!("{groups} does not divide expert_count {}", self.n_expert);
                return fail("expert_group_count", what);
            }
            let group_size = self.n_expert / groups;
            if used == 0 || used > groups || used * group_size < self.n_expert_used {
                let what = format!(
                    "{used} groups of {group_size} cannot hold expert_used_count {} (expert_group_count {groups})",
                    self.n_expert_used
                );
                return fail("expert_group_used_count", what);
            }
            if self.group_score == GroupScore::Top2Sum && group_size < 2 {
                return fail(
                    "expert_group_count",
                    format!("groups of {group_size} expert cannot be ranked by a top-2 sum"),
                );
            }
        }
        Ok(())
    }
}
