//! Which type each tensor gets in a quantized file: llama.cpp's per-tensor mix rules for the
//! tensors of deepseek2, llama and qwen2 models (spec §6.6; `src/llama-quant.cpp`,
//! `llama_tensor_get_type_impl` and `tensor_type_fallback`).

use lanternfish_quant::GgmlType;

/// A target of `lanternfish quantize`: one type for every quantizable tensor, or a K-quant mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantMix {
    /// Every quantizable weight in this type (output.weight gets Q6_K unless the type is Q8_0).
    Uniform(GgmlType),
    /// Q4_K base, Q6_K for output and for "more bits" ffn_down / attn_v-like tensors.
    Q4KM,
    /// Q5_K base, Q6_K for output and for "more bits" ffn_down / attn_v-like tensors.
    Q5KM,
}

impl QuantMix {
    /// The accepted names, for help texts.
    pub const NAMES: &'static [&'static str] = &[
        "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q4_k_m",
        "q5_k_m",
    ];

    pub fn from_name(name: &str) -> Option<QuantMix> {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "q4_k_m" => Some(QuantMix::Q4KM),
            "q5_k_m" => Some(QuantMix::Q5KM),
            _ if Self::NAMES.contains(&name.as_str()) => {
                GgmlType::from_name(&name).map(QuantMix::Uniform)
            }
            _ => None,
        }
    }

    pub fn name(&self) -> String {
        match self {
            QuantMix::Uniform(t) => t.name().to_ascii_lowercase(),
            QuantMix::Q4KM => "q4_k_m".into(),
            QuantMix::Q5KM => "q5_k_m".into(),
        }
    }

    /// `general.file_type` (llama.cpp's `llama_ftype`) for the result.
    pub fn file_type(&self) -> u32 {
        match self {
            QuantMix::Q4KM => 15,
            QuantMix::Q5KM => 17,
            QuantMix::Uniform(t) => match t {
                GgmlType::Q4_0 => 2,
                GgmlType::Q4_1 => 3,
                GgmlType::Q8_0 => 7,
                GgmlType::Q5_0 => 8,
                GgmlType::Q5_1 => 9,
                GgmlType::Q2K => 10,
                GgmlType::Q3K => 12,
                GgmlType::Q4K => 14,
                GgmlType::Q5K => 16,
                GgmlType::Q6K => 18,
                _ => 0,
            },
        }
    }

    fn base(&self) -> GgmlType {
        match self {
            QuantMix::Uniform(t) => *t,
            QuantMix::Q4KM => GgmlType::Q4K,
            QuantMix::Q5KM => GgmlType::Q5K,
        }
    }
}

/// `use_more_bits(i, n)` of llama-quant.cpp: the first and last eighth of the layers and every
/// third layer in between.
pub fn use_more_bits(i: u64, n: u64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// Whether a tensor is quantized at all: llama.cpp leaves 1-D tensors, norms, router weights
/// (`ffn_gate_inp`) and the V3 selection bias in their original type.
pub fn is_quantizable(name: &str, shape: &[u64]) -> bool {
    shape.iter().filter(|&&d| d > 1).count() >= 2
        && name.ends_with(".weight")
        && !name.ends_with("_norm.weight")
        && !name.contains("ffn_gate_inp")
        && !name.contains("exp_probs_b")
}

/// The layer index in a `blk.N.` tensor name.
pub fn layer_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("blk.")?;
    rest.split('.').next()?.parse().ok()
}

/// The type `name` gets under `mix`, in a model of `n_layer` blocks, or `None` to keep the
/// source type. `has_output` says whether the file has a separate `output.weight` (if not,
/// `token_embd.weight` is also the output head and follows the output rule).
pub fn target_type(
    mix: QuantMix,
    name: &str,
    shape: &[u64],
    n_layer: u64,
    has_output: bool,
) -> Option<GgmlType> {
    if !is_quantizable(name, shape) {
        return None;
    }
    let base = mix.base();
    let more_bits = |name: &str| layer_of(name).is_some_and(|i| use_more_bits(i, n_layer.max(1)));
    let is_output = name == "output.weight" || (!has_output && name == "token_embd.weight");
    let wanted = if is_output {
        if base == GgmlType::Q8_0 {
            GgmlType::Q8_0
        } else {
            GgmlType::Q6K
        }
    } else {
        let is_attn_v_like = name.contains("attn_v.weight") || name.contains("attn_kv_b.weight");
        let is_ffn_down = name.contains("ffn_down");
        match mix {
            QuantMix::Q4KM | QuantMix::Q5KM
                if (is_attn_v_like || is_ffn_down) && more_bits(name) =>
            {
                GgmlType::Q6K
            }
            _ => base,
        }
    };
    Some(fallback(wanted, shape[0]))
}

/// `tensor_type_fallback`: K-quants need rows that are a multiple of 256; other rows get the
/// nearest legacy type, and F16 if even that does not fit.
pub fn fallback(wanted: GgmlType, row_len: u64) -> GgmlType {
    if row_len.is_multiple_of(wanted.block_elems() as u64) {
        return wanted;
    }
    let alternative = match wanted {
        GgmlType::Q2K | GgmlType::Q3K => GgmlType::Q4_0,
        GgmlType::Q4K => GgmlType::Q5_0,
        GgmlType::Q5K => GgmlType::Q5_1,
        GgmlType::Q6K => GgmlType::Q8_0,
        _ => GgmlType::F16,
    };
    if row_len.is_multiple_of(alternative.block_elems() as u64) {
        alternative
    } else {
        GgmlType::F16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_bits_layers_of_a_27_layer_model() {
        // DeepSeek-V2-Lite has 27 layers: 27/8 = 3, 7*27/8 = 23.
        let picked: Vec<u64> = (0..27).filter(|&i| use_more_bits(i, 27)).collect();
        assert_eq!(picked, vec![0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26]);
    }

    #[test]
    fn v2_lite_q4_k_m_types() {
        let m = QuantMix::Q4KM;
        let n = 27;
        // Expert down-projections are 1408 wide: Q6_K → Q8_0 and Q4_K → Q5_0 by fallback.
        assert_eq!(
            target_type(m, "blk.0.ffn_down_exps.weight", &[1408, 2048, 64], n, true),
            Some(GgmlType::Q8_0)
        );
        assert_eq!(
            target_type(m, "blk.3.ffn_down_exps.weight", &[1408, 2048, 64], n, true),
            Some(GgmlType::Q5_0)
        );
        assert_eq!(
            target_type(m, "blk.3.ffn_down_shexp.weight", &[2816, 2048], n, true),
            Some(GgmlType::Q4K)
        );
        assert_eq!(
            target_type(m, "blk.2.attn_k_b.weight", &[128, 512, 16], n, true),
            Some(GgmlType::Q5_0)
        );
        assert_eq!(
            target_type(m, "output.weight", &[2048, 102400], n, true),
            Some(GgmlType::Q6K)
        );
        assert_eq!(
            target_type(m, "token_embd.weight", &[2048, 102400], n, true),
            Some(GgmlType::Q4K)
        );
        assert_eq!(
            target_type(m, "blk.1.attn_norm.weight", &[2048], n, true),
            None
        );
        assert_eq!(
            target_type(m, "blk.1.ffn_gate_inp.weight", &[2048, 64], n, true),
            None
        );
        // Dense FFN of layer 0: 10944 wide, Q6_K (more bits) → Q8_0.
        assert_eq!(
            target_type(m, "blk.0.ffn_down.weight", &[10944, 2048], n, true),
            Some(GgmlType::Q8_0)
        );
    }

    #[test]
    fn tied_embeddings_follow_the_output_rule() {
        let m = QuantMix::Uniform(GgmlType::Q4_0);
        assert_eq!(
            target_type(m, "token_embd.weight", &[576, 49152], 30, false),
            Some(GgmlType::Q8_0)
        );
        assert_eq!(
            target_type(m, "token_embd.weight", &[512, 49152], 30, false),
            Some(GgmlType::Q6K)
        );
        assert_eq!(
            target_type(
                QuantMix::Uniform(GgmlType::Q8_0),
                "output.weight",
                &[512, 10],
                1,
                true
            ),
            Some(GgmlType::Q8_0)
        );
    }

    #[test]
    fn names_parse() {
        for name in QuantMix::NAMES {
            let mix = QuantMix::from_name(name).expect("listed name parses");
            assert_eq!(&mix.name(), name);
        }
        assert_eq!(QuantMix::from_name("iq2_xxs"), None);
        assert_eq!(QuantMix::from_name("f32"), None);
    }
}
