//! Synthetic dense models of the R1 distills: `qwen3` (DeepSeek-R1-0528-Qwen3-8B: per-head q/k
//! RMSNorm, NeoX RoPE with YaRN ×4 over a 32768-token original context) and `llama`
//! (DeepSeek-R1-Distill-Llama-8B/70B: llama3 RoPE through a `rope_freqs.weight` tensor), with
//! the metadata keys and tensor names llama.cpp's converter writes for them, random weights
//! scaled as the deepseek2 presets' (`tensors.rs`), and the bundled DeepSeek-V3 tokenizer.
//!
//! R1-0528-Qwen3 uses DeepSeek-R1-0528's tokenizer, which is this one; R1-Distill-Llama uses
//! Llama 3's (128,256 entries, pre-tokenizer `llama-bpe`), which is not bundled: its presets
//! carry the DeepSeek-V3 tokenizer instead (the shapes and the RoPE are what they test).

use std::io::Write;

use super::{Init, TensorSpec, WeightType, bundled_tokenizer, encode_rows, write_file};
use crate::Result;
use crate::cpu::dense_rope::llama3_factors;
use crate::gguf::{GgufWriter, MetaValue};

/// The RoPE a dense preset records.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DenseRopeSpec {
    /// `rope.scaling.type = yarn` with this factor and original context (Qwen3's long context).
    Yarn { factor: f32, n_ctx_orig: u64 },
    /// llama3: `rope_freqs.weight` from (factor, low, high, original context).
    Llama3 {
        factor: f32,
        low: f32,
        high: f32,
        n_ctx_orig: u64,
    },
}

/// The hyper-parameters of a synthetic dense model.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseSynthConfig {
    pub name: &'static str,
    /// `qwen3` or `llama`.
    pub arch: &'static str,
    pub n_layer: u64,
    pub n_embd: u64,
    pub n_ff: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    /// Written as `attention.key_length`/`value_length` (may differ from `n_embd / n_head`).
    pub head_dim: u64,
    pub rope_base: f32,
    pub rope: DenseRopeSpec,
    pub rms_eps: f32,
    pub context_length: u64,
    /// The full DeepSeek-V3 vocabulary or its 4096-row cut.
    pub full_vocab: bool,
}

impl DenseSynthConfig {
    /// Every dense preset name.
    pub const PRESETS: &'static [&'static str] =
        &["r1-qwen3", "r1-qwen3-8b", "r1-llama", "r1-llama-8b"];

    pub fn preset(name: &str) -> Option<DenseSynthConfig> {
        // Tiny: head_dim 64 ≠ n_embd / n_head (48) so the key_length path is exercised, GQA 2:1.
        let qwen3 = DenseSynthConfig {
            name: "r1-qwen3",
            arch: "qwen3",
            n_layer: 2,
            n_embd: 192,
            n_ff: 384,
            n_head: 4,
            n_head_kv: 2,
            head_dim: 64,
            rope_base: 1_000_000.0,
            rope: DenseRopeSpec::Yarn {
                factor: 4.0,
                n_ctx_orig: 32768,
            },
            rms_eps: 1e-6,
            context_length: 131_072,
            full_vocab: false,
        };
        let llama = DenseSynthConfig {
            name: "r1-llama",
            arch: "llama",
            n_layer: 2,
            n_embd: 256,
            n_ff: 512,
            n_head: 4,
            n_head_kv: 2,
            head_dim: 64,
            rope_base: 500_000.0,
            rope: DenseRopeSpec::Llama3 {
                factor: 8.0,
                low: 1.0,
                high: 4.0,
                n_ctx_orig: 8192,
            },
            rms_eps: 1e-5,
            context_length: 131_072,
            full_vocab: false,
        };
        Some(match name {
            "r1-qwen3" => qwen3,
            // DeepSeek-R1-0528-Qwen3-8B (Qwen3-8B shapes).
            "r1-qwen3-8b" => DenseSynthConfig {
                name: "r1-qwen3-8b",
                n_layer: 36,
                n_embd: 4096,
                n_ff: 12288,
                n_head: 32,
                n_head_kv: 8,
                head_dim: 128,
                full_vocab: true,
                ..qwen3
            },
            "r1-llama" => llama,
            // DeepSeek-R1-Distill-Llama-8B (Llama-3.1-8B shapes).
            "r1-llama-8b" => DenseSynthConfig {
                name: "r1-llama-8b",
                n_layer: 32,
                n_embd: 4096,
                n_ff: 14336,
                n_head: 32,
                n_head_kv: 8,
                head_dim: 128,
                full_vocab: true,
                ..llama
            },
            _ => return None,
        })
    }

    /// Every tensor in the order written (GGUF shapes, contiguous dimension first).
    pub fn tensor_specs(&self, n_vocab: u64) -> Vec<TensorSpec> {
        let (d, hd, f) = (self.n_embd, self.head_dim, self.n_ff);
        let (q_w, kv_w) = (self.n_head * hd, self.n_head_kv * hd);
        let spec = |name: String, shape: &[u64], init: Init| TensorSpec {
            name,
            shape: shape.to_vec(),
            init,
        };
        let linear = |name: String, shape: &[u64]| {
            let std = 1.0 / (shape[0] as f32).sqrt();
            spec(name, shape, Init::Normal(std))
        };
        let mut specs = vec![
            spec("token_embd.weight".into(), &[d, n_vocab], Init::Normal(1.0)),
            spec("output_norm.weight".into(), &[d], Init::NormWeight),
            spec(
                "output.weight".into(),
                &[d, n_vocab],
                Init::Normal(2.0 / (d as f32).sqrt()),
            ),
        ];
        if matches!(self.rope, DenseRopeSpec::Llama3 { .. }) {
            specs.push(spec("rope_freqs.weight".into(), &[hd / 2], Init::Computed));
        }
        for il in 0..self.n_layer {
            let n = |s: &str| format!("blk.{il}.{s}.weight");
            specs.push(spec(n("attn_norm"), &[d], Init::NormWeight));
            specs.push(linear(n("attn_q"), &[d, q_w]));
            specs.push(linear(n("attn_k"), &[d, kv_w]));
            specs.push(linear(n("attn_v"), &[d, kv_w]));
            specs.push(linear(n("attn_output"), &[q_w, d]));
            if self.arch == "qwen3" {
                specs.push(spec(n("attn_q_norm"), &[hd], Init::NormWeight));
                specs.push(spec(n("attn_k_norm"), &[hd], Init::NormWeight));
            }
            specs.push(spec(n("ffn_norm"), &[d], Init::NormWeight));
            specs.push(linear(n("ffn_gate"), &[d, f]));
            specs.push(linear(n("ffn_up"), &[d, f]));
            specs.push(linear(n("ffn_down"), &[f, d]));
        }
        specs
    }

    /// llama3's `rope_freqs.weight` values, if this preset has them.
    pub fn rope_factors(&self) -> Option<Vec<f32>> {
        match self.rope {
            DenseRopeSpec::Llama3 {
                factor,
                low,
                high,
                n_ctx_orig,
            } => Some(llama3_factors(
                self.head_dim as usize,
                self.rope_base,
                factor,
                (low, high),
                n_ctx_orig as usize,
            )),
            DenseRopeSpec::Yarn { .. } => None,
        }
    }
}

/// Writes a synthetic dense model to `sink`; `progress` is called with (tensor index, count).
pub fn write_dense_model<W: Write>(
    c: &DenseSynthConfig,
    weights: WeightType,
    seed: u64,
    sink: W,
    progress: &dyn Fn(usize, usize),
) -> Result<()> {
    let (tokenizer, n_vocab) = bundled_tokenizer(c.full_vocab)?;
    let mut w = GgufWriter::new();
    write_metadata(&mut w, c, weights, seed, n_vocab);
    let specs = c.tensor_specs(n_vocab);
    let factors = c.rope_factors();
    let kinds = (weights, c.n_layer);
    write_file(
        w,
        &tokenizer,
        &specs,
        kinds,
        sink,
        progress,
        &|s, ty| match (&factors, s.name.as_str()) {
            (Some(f), "rope_freqs.weight") => bytemuck::cast_slice::<f32, u8>(f).to_vec(),
            _ => encode_rows(seed, s, ty, &|_, _| {}),
        },
    )
}

fn write_metadata(
    w: &mut GgufWriter,
    c: &DenseSynthConfig,
    weights: WeightType,
    seed: u64,
    n_vocab: u64,
) {
    let u32v = |v: u64| MetaValue::U32(v as u32);
    let arch = |k: &str| format!("{}.{k}", c.arch);
    w.set("general.architecture", MetaValue::String(c.arch.into()));
    w.set("general.type", MetaValue::String("model".into()));
    w.set(
        "general.name",
        MetaValue::String(format!("lanternfish synthetic {} seed {seed}", c.name)),
    );
    w.set("general.file_type", MetaValue::U32(weights.file_type()));
    w.set("general.quantization_version", MetaValue::U32(2));
    w.set(&arch("block_count"), u32v(c.n_layer));
    w.set(&arch("context_length"), u32v(c.context_length));
    w.set(&arch("embedding_length"), u32v(c.n_embd));
    w.set(&arch("feed_forward_length"), u32v(c.n_ff));
    w.set(&arch("attention.head_count"), u32v(c.n_head));
    w.set(&arch("attention.head_count_kv"), u32v(c.n_head_kv));
    w.set(&arch("attention.key_length"), u32v(c.head_dim));
    w.set(&arch("attention.value_length"), u32v(c.head_dim));
    w.set(&arch("rope.freq_base"), MetaValue::F32(c.rope_base));
    w.set(
        &arch("attention.layer_norm_rms_epsilon"),
        MetaValue::F32(c.rms_eps),
    );
    match c.rope {
        DenseRopeSpec::Yarn { factor, n_ctx_orig } => {
            w.set(&arch("rope.scaling.type"), MetaValue::String("yarn".into()));
            w.set(&arch("rope.scaling.factor"), MetaValue::F32(factor));
            w.set(
                &arch("rope.scaling.original_context_length"),
                u32v(n_ctx_orig),
            );
        }
        DenseRopeSpec::Llama3 { .. } => {
            w.set(&arch("rope.dimension_count"), u32v(c.head_dim));
            w.set(&arch("vocab_size"), u32v(n_vocab));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn presets_exist_and_shapes_are_consistent() {
        for name in DenseSynthConfig::PRESETS {
            let c = DenseSynthConfig::preset(name).unwrap();
            assert_eq!(c.name, *name);
            assert!(c.n_head.is_multiple_of(c.n_head_kv));
            let specs = c.tensor_specs(100);
            let per_layer = if c.arch == "qwen3" { 11 } else { 9 };
            let extra = usize::from(c.rope_factors().is_some());
            assert_eq!(specs.len(), 3 + extra + per_layer * c.n_layer as usize);
        }
        assert!(DenseSynthConfig::preset("tiny-v3").is_none());
    }
}
