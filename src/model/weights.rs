//! The tensors of a deepseek2 GGUF (spec §3), looked up by name and checked against the config.
//!
//! Fields are named after the GGUF tensor suffixes, so `grep attn_kv_a_mqa` finds the spec table,
//! this file and every user. Shapes below are GGUF `ne` order (contiguous dimension first), as in
//! the spec and llama.cpp's `src/models/deepseek2.cpp: load_arch_tensors`.

use crate::gguf::{GgufModel, TensorInfo};
use crate::model::config::{DeepSeekConfig, MlaLayout, key};
use crate::{Error, Result};

/// Every weight of the model, validated.
#[derive(Debug)]
pub struct ModelTensors<'m> {
    /// `{d, V}`
    pub token_embd: &'m TensorInfo,
    /// `{d}`
    pub output_norm: &'m TensorInfo,
    /// `{d, V}`; `None` when absent: the output head is tied to `token_embd`.
    pub output: Option<&'m TensorInfo>,
    pub layers: Vec<LayerTensors<'m>>,
    /// The multi-token-prediction blocks after the trunk (`nextn_predict_layers`), validated and
    /// kept for a later speculative decoder; the forward pass does not run them.
    pub mtp: Vec<MtpTensors<'m>>,
}

/// One MTP block `blk.L.` (L ≥ the trunk's layer count): a full transformer block plus the
/// projection of `[enorm(embedding) ‖ hnorm(hidden)]` into it (llama.cpp `LLM_TENSOR_NEXTN_*`).
#[derive(Debug)]
pub struct MtpTensors<'m> {
    pub block: LayerTensors<'m>,
    /// `{2d, d}`
    pub eh_proj: &'m TensorInfo,
    /// `{d}`
    pub enorm: &'m TensorInfo,
    /// `{d}`
    pub hnorm: &'m TensorInfo,
    /// `{d}`, optional (else `output_norm`).
    pub shared_head_norm: Option<&'m TensorInfo>,
    /// `{d, V}`, optional (else `token_embd` / `output`).
    pub embed_tokens: Option<&'m TensorInfo>,
    pub shared_head_head: Option<&'m TensorInfo>,
}

/// The tensors of one block `blk.N.`.
#[derive(Debug)]
pub struct LayerTensors<'m> {
    /// `{d}`
    pub attn_norm: &'m TensorInfo,
    pub q: QTensors<'m>,
    /// `{d, r + dr}`: output rows `[c_kv (r) ‖ k_pe (dr)]`.
    pub attn_kv_a_mqa: &'m TensorInfo,
    /// `{r}`
    pub attn_kv_a_norm: &'m TensorInfo,
    pub kv_b: KvBTensors<'m>,
    /// `{H·dv, d}`
    pub attn_output: &'m TensorInfo,
    /// `{d}`
    pub ffn_norm: &'m TensorInfo,
    pub ffn: FfnTensors<'m>,
    /// DeepSeek-V3.2's lightning indexer (`deepseek32`).
    pub indexer: Option<IndexerTensors<'m>>,
}

/// `blk.N.indexer.*` (llama.cpp `LLM_TENSOR_INDEXER_*`; dk = `indexer.key_length`, n =
/// `indexer.head_count`).
#[derive(Debug)]
pub struct IndexerTensors<'m> {
    /// `{rq, n·dk}`
    pub attn_q_b: &'m TensorInfo,
    /// `{d, dk}`
    pub attn_k: &'m TensorInfo,
    /// `{dk}` LayerNorm weight and bias.
    pub k_norm: &'m TensorInfo,
    pub k_norm_b: &'m TensorInfo,
    /// `{d, n}`
    pub proj: &'m TensorInfo,
}

/// The query projection, with or without q compression.
#[derive(Debug)]
pub enum QTensors<'m> {
    /// `attn_q {d, H·(dn+dr)}` (V2-Lite style, `q_lora_rank` absent or 0).
    Plain { attn_q: &'m TensorInfo },
    /// `attn_q_a {d, rq}`, `attn_q_a_norm {rq}`, `attn_q_b {rq, H·(dn+dr)}`.
    Lora {
        attn_q_a: &'m TensorInfo,
        attn_q_a_norm: &'m TensorInfo,
        attn_q_b: &'m TensorInfo,
    },
}

/// MLA's per-head up-projections of the latent (spec §3.4).
#[derive(Debug)]
pub enum KvBTensors<'m> {
    /// `attn_k_b {dn, r, H}` (slice h = W_UK,hᵀ: r rows of dn) and `attn_v_b {r, dv, H}`
    /// (slice h = W_UV,h: dv rows of r).
    Split {
        attn_k_b: &'m TensorInfo,
        attn_v_b: &'m TensorInfo,
    },
    /// `attn_kv_b {r, H·(dn+dv)}`: row `h·(dn+dv)+j` is W_UK,h row j for j < dn, else W_UV,h row
    /// j − dn.
    Legacy { attn_kv_b: &'m TensorInfo },
}

/// The feed-forward half of a block.
#[derive(Debug)]
pub enum FfnTensors<'m> {
    /// Leading dense layers: `ffn_gate`/`ffn_up {d, F}`, `ffn_down {F, d}`.
    Dense {
        ffn_gate: &'m TensorInfo,
        ffn_up: &'m TensorInfo,
        ffn_down: &'m TensorInfo,
    },
    Moe(Box<MoeTensors<'m>>),
}

/// Router, routed experts and shared experts of a MoE layer.
#[derive(Debug)]
pub struct MoeTensors<'m> {
    /// `{d, E}` router.
    pub ffn_gate_inp: &'m TensorInfo,
    /// `{E}` selection bias (V3 `e_score_correction_bias`), optional.
    pub exp_probs_b: Option<&'m TensorInfo>,
    /// `{d, f, E}`
    pub ffn_gate_exps: &'m TensorInfo,
    /// `{d, f, E}`
    pub ffn_up_exps: &'m TensorInfo,
    /// `{f, d, E}`
    pub ffn_down_exps: &'m TensorInfo,
    /// `ffn_{gate,up}_shexp {d, f·S}`, `ffn_down_shexp {f·S, d}`; `None` when S = 0.
    pub shared: Option<[&'m TensorInfo; 3]>,
}

/// Looks tensors up and checks their shapes and types.
struct Lookup<'m> {
    model: &'m GgufModel,
}

impl<'m> Lookup<'m> {
    fn optional(&self, name: &str, expected: &[usize]) -> Result<Option<&'m TensorInfo>> {
        let Some(info) = self.model.tensor(name) else {
            return Ok(None);
        };
        if trim(&info.shape) != trim(&expected.iter().map(|&d| d as u64).collect::<Vec<_>>()) {
            return Err(Error::Tensor {
                name: name.into(),
                what: format!(
                    "expected shape {expected:?}, found {:?} (GGUF ne order, contiguous dimension first)",
                    info.shape
                ),
            });
        }
        if !info.ggml_type.is_supported() {
            return Err(Error::Tensor {
                name: name.into(),
                what: format!(
                    "type {} (ggml id {}) is not supported",
                    info.ggml_type,
                    info.ggml_type.id()
                ),
            });
        }
        Ok(Some(info))
    }

    fn required(&self, name: &str, expected: &[usize]) -> Result<&'m TensorInfo> {
        self.optional(name, expected)?.ok_or_else(|| Error::Tensor {
            name: name.into(),
            what: format!("missing (expected shape {expected:?})"),
        })
    }
}

/// A shape without trailing 1s (GGUF readers treat missing dimensions as 1).
fn trim(shape: &[u64]) -> &[u64] {
    let len = shape.iter().rposition(|&d| d != 1).map_or(0, |i| i + 1);
    &shape[..len]
}

impl<'m> ModelTensors<'m> {
    /// Finds every tensor `config` implies and checks its shape and type.
    pub fn load(model: &'m GgufModel, config: &DeepSeekConfig) -> Result<ModelTensors<'m>> {
        let c = config;
        let t = Lookup { model };
        let layers = (0..c.n_layer)
            .map(|il| load_layer(&t, c, il))
            .collect::<Result<Vec<_>>>()?;
        let (d, v) = (c.n_embd, c.n_vocab);
        let mtp = (c.n_layer..c.n_layer + c.n_nextn)
            .map(|il| {
                let nextn = |s: &str| format!("blk.{il}.nextn.{s}.weight");
                Ok(MtpTensors {
                    block: load_layer(&t, c, il)?,
                    eh_proj: t.required(&nextn("eh_proj"), &[2 * d, d])?,
                    enorm: t.required(&nextn("enorm"), &[d])?,
                    hnorm: t.required(&nextn("hnorm"), &[d])?,
                    shared_head_norm: t.optional(&nextn("shared_head_norm"), &[d])?,
                    embed_tokens: t.optional(&nextn("embed_tokens"), &[d, v])?,
                    shared_head_head: t.optional(&nextn("shared_head_head"), &[d, v])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ModelTensors {
            mtp,
            token_embd: t.required("token_embd.weight", &[c.n_embd, c.n_vocab])?,
            output_norm: t.required("output_norm.weight", &[c.n_embd])?,
            output: t.optional("output.weight", &[c.n_embd, c.n_vocab])?,
            layers,
        })
    }
}

fn load_layer<'m>(t: &Lookup<'m>, c: &DeepSeekConfig, il: usize) -> Result<LayerTensors<'m>> {
    let name = |suffix: &str| format!("blk.{il}.{suffix}.weight");
    let (d, h) = (c.n_embd, c.n_head);
    let q_width = h * c.n_embd_head_qk();
    let q = if c.n_lora_q > 0 {
        QTensors::Lora {
            attn_q_a: t.required(&name("attn_q_a"), &[d, c.n_lora_q])?,
            attn_q_a_norm: t.required(&name("attn_q_a_norm"), &[c.n_lora_q])?,
            attn_q_b: t.required(&name("attn_q_b"), &[c.n_lora_q, q_width])?,
        }
    } else {
        match t.optional(&name("attn_q"), &[d, q_width])? {
            Some(attn_q) => QTensors::Plain { attn_q },
            None if t.model.tensor(&name("attn_q_a")).is_some() => {
                return Err(Error::Metadata {
                    key: key("attention.q_lora_rank"),
                    what: format!(
                        "absent or 0, but the file has {} and no {}",
                        name("attn_q_a"),
                        name("attn_q")
                    ),
                });
            }
            None => t
                .required(&name("attn_q"), &[d, q_width])
                .map(|attn_q| QTensors::Plain { attn_q })?,
        }
    };
    let (r, dn, dv) = (c.n_lora_kv, c.n_embd_head_qk_nope, c.n_embd_head_v);
    let kv_b = match c.layout {
        MlaLayout::Split => KvBTensors::Split {
            attn_k_b: t.required(&name("attn_k_b"), &[dn, r, h])?,
            attn_v_b: t.required(&name("attn_v_b"), &[r, dv, h])?,
        },
        // Files of llama.cpp's unmerged PR #11446 also carry attn_k_b/attn_v_b: ignored (spec §3.3).
        MlaLayout::Legacy => KvBTensors::Legacy {
            attn_kv_b: t.required(&name("attn_kv_b"), &[r, h * (dn + dv)])?,
        },
    };
    let ffn = if c.is_moe_layer(il) {
        let (e, f) = (c.n_expert, c.n_ff_exp);
        let fs = f * c.n_expert_shared;
        let mut moe = MoeTensors {
            ffn_gate_inp: t.required(&name("ffn_gate_inp"), &[d, e])?,
            exp_probs_b: t.optional(&format!("blk.{il}.exp_probs_b.bias"), &[e])?,
            ffn_gate_exps: t.required(&name("ffn_gate_exps"), &[d, f, e])?,
            ffn_up_exps: t.required(&name("ffn_up_exps"), &[d, f, e])?,
            ffn_down_exps: t.required(&name("ffn_down_exps"), &[f, d, e])?,
            shared: None,
        };
        if c.n_expert_shared > 0 {
            moe.shared = Some([
                t.required(&name("ffn_gate_shexp"), &[d, fs])?,
                t.required(&name("ffn_up_shexp"), &[d, fs])?,
                t.required(&name("ffn_down_shexp"), &[fs, d])?,
            ]);
        }
        FfnTensors::Moe(Box::new(moe))
    } else {
        FfnTensors::Dense {
            ffn_gate: t.required(&name("ffn_gate"), &[d, c.n_ff])?,
            ffn_up: t.required(&name("ffn_up"), &[d, c.n_ff])?,
            ffn_down: t.required(&name("ffn_down"), &[c.n_ff, d])?,
        }
    };
    let indexer = match c.indexer {
        Some(ix) => {
            let n = |s: &str| format!("blk.{il}.indexer.{s}");
            Some(IndexerTensors {
                attn_q_b: t.required(
                    &n("attn_q_b.weight"),
                    &[c.n_lora_q, ix.n_head * ix.head_dim],
                )?,
                attn_k: t.required(&n("attn_k.weight"), &[d, ix.head_dim])?,
                k_norm: t.required(&n("k_norm.weight"), &[ix.head_dim])?,
                k_norm_b: t.required(&n("k_norm.bias"), &[ix.head_dim])?,
                proj: t.required(&n("proj.weight"), &[d, ix.n_head])?,
            })
        }
        None => None,
    };
    Ok(LayerTensors {
        indexer,
        attn_norm: t.required(&name("attn_norm"), &[d])?,
        q,
        attn_kv_a_mqa: t.required(&name("attn_kv_a_mqa"), &[d, r + c.n_rot])?,
        attn_kv_a_norm: t.required(&name("attn_kv_a_norm"), &[r])?,
        kv_b,
        attn_output: t.required(&name("attn_output"), &[h * dv, d])?,
        ffn_norm: t.required(&name("ffn_norm"), &[d])?,
        ffn,
    })
}
