//! Dense decoder-only architectures: `llama`, `qwen2` and `qwen3` (the R1-Distill models,
//! DeepSeek-R1-0528-Qwen3, SmolLM2, …).
//!
//! `DenseConfig` reads `{arch}.*` metadata (llama.cpp `src/llama-model.cpp: load_hparams`, with
//! its defaults) and `DenseTensors` finds and checks every tensor (`load_arch_tensors` for
//! `LLM_ARCH_LLAMA` / `LLM_ARCH_QWEN2` / `LLM_ARCH_QWEN3`). Shapes in comments are GGUF `ne` order (contiguous
//! dimension first), as in `weights.rs`.

use super::dense_rope::DenseRope;
use super::metadata::{TypedKeys, rope_scaling};
use crate::gguf::{GgufModel, TensorInfo, Value};
use crate::{Error, Result};

/// The architectures this crate can run, from `general.architecture`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    DeepSeek2,
    /// DeepSeek-V3.2: deepseek2 with the lightning indexer (same engines, `DeepSeekConfig`).
    DeepSeek32,
    Llama,
    Qwen2,
    Qwen3,
}

impl Arch {
    /// The GGUF name (and metadata key prefix).
    pub fn name(self) -> &'static str {
        match self {
            Arch::DeepSeek2 => "deepseek2",
            Arch::DeepSeek32 => "deepseek32",
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }
}

/// Reads `general.architecture`; any other value is an error naming it.
pub fn architecture(model: &GgufModel) -> Result<Arch> {
    architecture_from(&|k| model.get(k))
}

fn architecture_from<'a>(get: &dyn Fn(&str) -> Option<Value<'a>>) -> Result<Arch> {
    let key = "general.architecture";
    let fail = |what: String| Error::Metadata {
        key: key.into(),
        what,
    };
    let value = get(key).ok_or_else(|| fail("missing".into()))?;
    match value.as_str() {
        Some("deepseek2") => Ok(Arch::DeepSeek2),
        Some("deepseek32") => Ok(Arch::DeepSeek32),
        Some("llama") => Ok(Arch::Llama),
        Some("qwen2") => Ok(Arch::Qwen2),
        Some("qwen3") => Ok(Arch::Qwen3),
        Some(other) => Err(fail(format!(
            "architecture \"{other}\" is not supported (supported: deepseek2, deepseek32, llama, qwen2, qwen3)"
        ))),
        None => Err(fail(format!("expected a string, found {value}"))),
    }
}

/// Which RoPE pairing the architecture uses (llama.cpp `llama_model_rope_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)`: llama (the converter already permuted Q/K rows for it).
    Normal,
    /// Pairs `(i, i + n_rot/2)`: qwen2, qwen3 (GPT-NeoX style, HF `rotate_half`).
    Neox,
}

/// Hyper-parameters of a dense llama/qwen2/qwen3 model.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseConfig {
    pub arch: Arch,
    /// `block_count`
    pub n_layer: usize,
    /// `embedding_length`
    pub n_embd: usize,
    /// `feed_forward_length`
    pub n_ff: usize,
    /// `attention.head_count`
    pub n_head: usize,
    /// `attention.head_count_kv`, default `n_head`.
    pub n_head_kv: usize,
    /// `attention.key_length`, default `n_embd / n_head` (also the value head size).
    pub head_dim: usize,
    /// `attention.layer_norm_rms_epsilon`
    pub rms_eps: f32,
    /// `rope.freq_base` (default 10000), `rope.scaling.*`.
    pub rope: DenseRope,
    /// `rope.dimension_count`, default `head_dim`: the rotated leading part of every head.
    pub n_rot: usize,
    pub rope_style: RopeStyle,
    /// Per-head RMSNorm of q and k before RoPE (`attn_q_norm`, `attn_k_norm`: qwen3).
    pub qk_norm: bool,
    /// `context_length`
    pub n_ctx_train: usize,
    /// Rows of `token_embd`.
    pub n_vocab: usize,
}

impl DenseConfig {
    /// Reads and checks the config of a `llama`, `qwen2` or `qwen3` GGUF.
    pub fn from_gguf(model: &GgufModel) -> Result<DenseConfig> {
        let arch = architecture(model)?;
        let rope_style = match arch {
            Arch::Llama => RopeStyle::Normal,
            Arch::Qwen2 | Arch::Qwen3 => RopeStyle::Neox,
            Arch::DeepSeek2 | Arch::DeepSeek32 => {
                return Err(Error::Metadata {
                    key: "general.architecture".into(),
                    what: "deepseek2 is not a dense architecture (use DeepSeekConfig)".into(),
                });
            }
        };
        let m = Meta {
            model,
            prefix: arch.name(),
        };
        let n_embd = m.usize("embedding_length")?;
        let n_head = m.usize("attention.head_count")?;
        if n_head == 0 {
            return Err(m.error("attention.head_count", "must be positive".into()));
        }
        let head_dim = m
            .opt_usize("attention.key_length")?
            .unwrap_or(n_embd / n_head);
        if let Some(v) = m.opt_usize("attention.value_length")?
            && v != head_dim
        {
            return Err(m.error(
                "attention.value_length",
                format!("{v} differs from the key length {head_dim}, which is not supported"),
            ));
        }
        let n_vocab = match model.tensor("token_embd.weight") {
            Some(info) if info.shape.len() >= 2 => {
                usize::try_from(info.shape[1]).map_err(|e| Error::Tensor {
                    name: info.name.clone(),
                    what: e.to_string(),
                })?
            }
            Some(info) => {
                return Err(Error::Tensor {
                    name: info.name.clone(),
                    what: format!("expected 2 dimensions, found shape {:?}", info.shape),
                });
            }
            None => {
                return Err(Error::Tensor {
                    name: "token_embd.weight".into(),
                    what: "missing".into(),
                });
            }
        };
        let config = DenseConfig {
            arch,
            n_layer: m.usize("block_count")?,
            n_embd,
            n_ff: m.usize("feed_forward_length")?,
            n_head,
            n_head_kv: m.opt_usize("attention.head_count_kv")?.unwrap_or(n_head),
            head_dim,
            rms_eps: m
                .opt_f32("attention.layer_norm_rms_epsilon")?
                .ok_or_else(|| m.error("attention.layer_norm_rms_epsilon", "missing".into()))?,
            rope: read_rope(&m, m.usize("context_length")?)?,
            n_rot: m.opt_usize("rope.dimension_count")?.unwrap_or(head_dim),
            rope_style,
            qk_norm: arch == Arch::Qwen3,
            n_ctx_train: m.usize("context_length")?,
            n_vocab,
        };
        config.check(&m)?;
        Ok(config)
    }

    /// `n_head / n_head_kv`: query heads per K/V head.
    pub fn n_gqa(&self) -> usize {
        self.n_head / self.n_head_kv
    }

    /// Width of one token's K (or V) cache row: `n_head_kv · head_dim`.
    pub fn kv_width(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    fn check(&self, m: &Meta<'_>) -> Result<()> {
        for (name, v) in [
            ("block_count", self.n_layer),
            ("embedding_length", self.n_embd),
            ("feed_forward_length", self.n_ff),
            ("attention.key_length", self.head_dim),
            ("attention.head_count_kv", self.n_head_kv),
        ] {
            if v == 0 {
                return Err(m.error(name, "must be positive".into()));
            }
        }
        if !self.n_head.is_multiple_of(self.n_head_kv) {
            return Err(m.error(
                "attention.head_count_kv",
                format!(
                    "{} does not divide attention.head_count {}",
                    self.n_head_kv, self.n_head
                ),
            ));
        }
        if self.n_rot == 0 || self.n_rot > self.head_dim || !self.n_rot.is_multiple_of(2) {
            return Err(m.error(
                "rope.dimension_count",
                format!(
                    "{} must be even and in 2..={} (the head size)",
                    self.n_rot, self.head_dim
                ),
            ));
        }
        if self.rms_eps <= 0.0 {
            return Err(m.error(
                "attention.layer_norm_rms_epsilon",
                format!("{} must be positive", self.rms_eps),
            ));
        }
        if self.rope.freq_base <= 0.0 {
            return Err(m.error(
                "rope.freq_base",
                format!("{} must be positive", self.rope.freq_base),
            ));
        }
        if self.n_vocab == 0 {
            return Err(Error::Tensor {
                name: "token_embd.weight".into(),
                what: "has no rows".into(),
            });
        }
        Ok(())
    }
}

/// Typed access to `{arch}.*` keys.
struct Meta<'m> {
    model: &'m GgufModel,
    prefix: &'static str,
}

impl Meta<'_> {
    fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }
}

impl<'m> TypedKeys<'m> for Meta<'m> {
    fn value(&self, name: &str) -> Option<Value<'m>> {
        self.model.get(&self.key(name))
    }

    fn error(&self, name: &str, what: String) -> Error {
        Error::Metadata {
            key: self.key(name),
            what,
        }
    }
}

/// `rope.freq_base`, `rope.scaling.*` ([`rope_scaling`], shared with deepseek2) and
/// `rope.scaling.attn_factor` (a factor on the rotated values here, positive).
fn read_rope(m: &Meta<'_>, n_ctx_train: usize) -> Result<DenseRope> {
    let attn_factor = m.opt_f32("rope.scaling.attn_factor")?.unwrap_or(1.0);
    if attn_factor <= 0.0 {
        return Err(m.error(
            "rope.scaling.attn_factor",
            format!("{attn_factor} must be positive"),
        ));
    }
    Ok(DenseRope {
        freq_base: m.opt_f32("rope.freq_base")?.unwrap_or(10_000.0),
        scaling: rope_scaling(m, n_ctx_train)?,
        attn_factor,
    })
}

/// Every tensor of a dense model, validated.
#[derive(Debug)]
pub struct DenseTensors<'m> {
    /// `{d, V}`
    pub token_embd: &'m TensorInfo,
    /// `{d}`
    pub output_norm: &'m TensorInfo,
    /// `{d, V}`; `None`: tied to `token_embd`.
    pub output: Option<&'m TensorInfo>,
    /// `{n_rot/2}` llama3 frequency divisors (`llama` only; llama.cpp ignores it elsewhere).
    pub rope_freqs: Option<&'m TensorInfo>,
    pub layers: Vec<DenseLayerTensors<'m>>,
}

/// The tensors of block `blk.N.`.
#[derive(Debug)]
pub struct DenseLayerTensors<'m> {
    /// `{d}`
    pub attn_norm: &'m TensorInfo,
    /// `{d, H·hd}`
    pub attn_q: &'m TensorInfo,
    /// `{d, Hkv·hd}`
    pub attn_k: &'m TensorInfo,
    /// `{d, Hkv·hd}`
    pub attn_v: &'m TensorInfo,
    /// `{H·hd}` (qwen2)
    pub attn_q_bias: Option<&'m TensorInfo>,
    /// `{Hkv·hd}` (qwen2)
    pub attn_k_bias: Option<&'m TensorInfo>,
    /// `{Hkv·hd}` (qwen2)
    pub attn_v_bias: Option<&'m TensorInfo>,
    /// `{hd}` (qwen3): per-head RMSNorm weight of q.
    pub attn_q_norm: Option<&'m TensorInfo>,
    /// `{hd}` (qwen3): per-head RMSNorm weight of k.
    pub attn_k_norm: Option<&'m TensorInfo>,
    /// `{H·hd, d}`
    pub attn_output: &'m TensorInfo,
    /// `{d}`
    pub ffn_norm: &'m TensorInfo,
    /// `{d, F}`
    pub ffn_gate: &'m TensorInfo,
    /// `{d, F}`
    pub ffn_up: &'m TensorInfo,
    /// `{F, d}`
    pub ffn_down: &'m TensorInfo,
}

impl<'m> DenseTensors<'m> {
    /// Finds every tensor `config` implies and checks its shape and type.
    pub fn load(model: &'m GgufModel, config: &DenseConfig) -> Result<DenseTensors<'m>> {
        let c = config;
        let (d, v) = (c.n_embd, c.n_vocab);
        let (q_w, kv_w) = (c.n_head * c.head_dim, c.kv_width());
        let layers = (0..c.n_layer)
            .map(|il| {
                let w = |s: &str| format!("blk.{il}.{s}.weight");
                let b = |s: &str| format!("blk.{il}.{s}.bias");
                let head_norm = |s: &str| match c.qk_norm {
                    true => required(model, &w(s), &[c.head_dim]).map(Some),
                    false => Ok(None),
                };
                Ok(DenseLayerTensors {
                    attn_norm: required(model, &w("attn_norm"), &[d])?,
                    attn_q: required(model, &w("attn_q"), &[d, q_w])?,
                    attn_k: required(model, &w("attn_k"), &[d, kv_w])?,
                    attn_v: required(model, &w("attn_v"), &[d, kv_w])?,
                    attn_q_bias: optional(model, &b("attn_q"), &[q_w])?,
                    attn_k_bias: optional(model, &b("attn_k"), &[kv_w])?,
                    attn_v_bias: optional(model, &b("attn_v"), &[kv_w])?,
                    attn_q_norm: head_norm("attn_q_norm")?,
                    attn_k_norm: head_norm("attn_k_norm")?,
                    attn_output: required(model, &w("attn_output"), &[q_w, d])?,
                    ffn_norm: required(model, &w("ffn_norm"), &[d])?,
                    ffn_gate: required(model, &w("ffn_gate"), &[d, c.n_ff])?,
                    ffn_up: required(model, &w("ffn_up"), &[d, c.n_ff])?,
                    ffn_down: required(model, &w("ffn_down"), &[c.n_ff, d])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DenseTensors {
            token_embd: required(model, "token_embd.weight", &[d, v])?,
            output_norm: required(model, "output_norm.weight", &[d])?,
            output: optional(model, "output.weight", &[d, v])?,
            rope_freqs: match c.arch {
                Arch::Llama => optional(model, "rope_freqs.weight", &[c.n_rot / 2])?,
                _ => None,
            },
            layers,
        })
    }
}

fn optional<'m>(
    model: &'m GgufModel,
    name: &str,
    expected: &[usize],
) -> Result<Option<&'m TensorInfo>> {
    let Some(info) = model.tensor(name) else {
        return Ok(None);
    };
    let want: Vec<u64> = expected.iter().map(|&d| d as u64).collect();
    if trim(&info.shape) != trim(&want) {
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

fn required<'m>(model: &'m GgufModel, name: &str, expected: &[usize]) -> Result<&'m TensorInfo> {
    optional(model, name, expected)?.ok_or_else(|| Error::Tensor {
        name: name.into(),
        what: format!("missing (expected shape {expected:?})"),
    })
}

/// A shape without trailing 1s.
fn trim(shape: &[u64]) -> &[u64] {
    let len = shape.iter().rposition(|&d| d != 1).map_or(0, |i| i + 1);
    &shape[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_architecture_is_named() {
        let get = |k: &str| (k == "general.architecture").then_some(Value::String("gemma3"));
        let err = architecture_from(&get).err().map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(
            msg.contains("gemma3") && msg.contains("not supported"),
            "{msg}"
        );
    }
}
