//! The arithmetic of dense RoPE settings ([`DenseRope`]): per-pair frequencies with llama3's
//! divisors, the magnitude factor of YaRN, and the llama3 divisors themselves.
//!
//! Facts from llama.cpp: `src/llama-context.cpp` (how `yarn_ext_factor` and `yarn_attn_factor`
//! are resolved from the file), `ggml/src/ggml-cpu/ops.cpp: rope_yarn` (θ and the `mscale` factor
//! on cos and sin) and `convert_hf_to_gguf.py` (how llama3 factors are derived).

use super::ops::rope_freqs;
use crate::model::dense_rope::DenseRope;
use crate::model::{RopeScaling, YarnConfig};

/// ω_i for the `n_rot / 2` rotated pairs: the scaled base frequencies divided by the file's
/// per-pair factors (`rope_freqs.weight`). (ggml divides θ_extrap by the factor before the YaRN
/// blend, which is linear in it, so dividing the blended ω is the same.)
pub fn dense_freqs(rope: &DenseRope, n_rot: usize, factors: Option<&[f32]>) -> Vec<f64> {
    let mut freqs = rope_freqs(n_rot, rope.freq_base, &rope.scaling);
    if let Some(factors) = factors {
        for (w, &f) in freqs.iter_mut().zip(factors) {
            *w /= f64::from(f);
        }
    }
    freqs
}

/// The factor on every rotated value (ggml's `mscale` on cos and sin).
///
/// llama.cpp: with YaRN (`ext_factor` ≠ 0) `yarn_attn_factor` = `get_mscale(s, 1) /
/// get_mscale(s, mscale_all_dim)` (or `get_mscale(s, 1)` without a log multiplier), divided by
/// `1 + 0.1 ln s` and multiplied by `attn_factor`; `rope_yarn` then multiplies by `1 + 0.1 ln s`
/// again. Without YaRN it is `attn_factor`. `get_mscale(s, m) = 1 + 0.1 m ln s` for s > 1, else 1.
pub fn mscale(rope: &DenseRope) -> f64 {
    let attn = f64::from(rope.attn_factor);
    match rope.scaling {
        RopeScaling::Yarn(y) if y.ext_factor != 0.0 => attn * yarn_magnitude(&y),
        _ => attn,
    }
}

/// `get_mscale(s, 1) / get_mscale(s, mscale_all_dim)` (the second term 1 without a log
/// multiplier); the GGUF stores `yarn_log_multiplier = 0.1 · mscale_all_dim`.
fn yarn_magnitude(y: &YarnConfig) -> f64 {
    let s = f64::from(y.factor);
    let get_mscale = |m: f64| {
        if s <= 1.0 {
            1.0
        } else {
            1.0 + 0.1 * m * s.ln()
        }
    };
    if y.log_multiplier == 0.0 {
        get_mscale(1.0)
    } else {
        get_mscale(1.0) / get_mscale(f64::from(y.log_multiplier) / 0.1)
    }
}

/// llama3's frequency divisors, as the converter derives `rope_freqs.weight` from HF's
/// `rope_scaling = {rope_type: llama3, factor, low_freq_factor, high_freq_factor,
/// original_max_position_embeddings}`: pairs whose wavelength is shorter than
/// `n_ctx_orig / high` keep their frequency (1), longer than `n_ctx_orig / low` are divided by
/// `factor`, and the band between blends the two smoothly.
pub fn llama3_factors(
    n_rot: usize,
    freq_base: f32,
    factor: f32,
    (low, high): (f32, f32),
    n_ctx_orig: usize,
) -> Vec<f32> {
    let (factor, low, high) = (f64::from(factor), f64::from(low), f64::from(high));
    let n_ctx_orig = n_ctx_orig as f64;
    (0..n_rot / 2)
        .map(|i| {
            let freq = f64::from(freq_base).powf(-2.0 * i as f64 / n_rot as f64);
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            if wavelen < n_ctx_orig / high {
                1.0
            } else if wavelen > n_ctx_orig / low {
                factor as f32
            } else {
                let smooth = (n_ctx_orig / wavelen - low) / (high - low);
                (1.0 / ((1.0 - smooth) / factor + smooth)) as f32
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn yarn(factor: f32, log_multiplier: f32) -> RopeScaling {
        RopeScaling::Yarn(YarnConfig {
            factor,
            n_ctx_orig: 32768,
            beta_fast: 32.0,
            beta_slow: 1.0,
            ext_factor: 1.0,
            log_multiplier,
        })
    }

    fn rope(scaling: RopeScaling, attn_factor: f32) -> DenseRope {
        DenseRope {
            freq_base: 1e6,
            scaling,
            attn_factor,
        }
    }

    #[test]
    fn yarn_magnitude_follows_llama_cpp() {
        // Qwen3 with YaRN factor 4: 1 + 0.1 ln 4.
        let m = mscale(&rope(yarn(4.0, 0.0), 1.0));
        assert!((m - (1.0 + 0.1 * 4f64.ln())).abs() < 1e-12, "{m}");
        // An attn_factor of 1/(1 + 0.1 ln 4) cancels it.
        let cancel = (1.0 / (1.0 + 0.1 * 4f64.ln())) as f32;
        assert!((mscale(&rope(yarn(4.0, 0.0), cancel)) - 1.0).abs() < 1e-7);
        // mscale_all_dim 1 (log multiplier 0.1) divides the magnitude out.
        assert!((mscale(&rope(yarn(4.0, 0.1), 1.0)) - 1.0).abs() < 1e-7);
        // No scaling, linear: only attn_factor.
        assert_eq!(mscale(&rope(RopeScaling::None, 0.5)), 0.5);
        assert_eq!(mscale(&rope(RopeScaling::Linear { factor: 2.0 }, 1.0)), 1.0);
    }

    #[test]
    fn llama3_factors_cover_three_bands() {
        // R1-Distill-Llama: θ 500000, head 128, factor 8, low 1, high 4, original 8192.
        let f = llama3_factors(128, 500_000.0, 8.0, (1.0, 4.0), 8192);
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[63], 8.0);
        let blended = f.iter().filter(|&&x| x > 1.0 && x < 8.0).count();
        assert!(blended > 0, "{f:?}");
        assert!(f.windows(2).all(|w| w[0] <= w[1]), "{f:?}");
    }

    #[test]
    fn freq_factors_divide_frequencies() {
        let r = rope(RopeScaling::None, 1.0);
        let plain = dense_freqs(&r, 8, None);
        let scaled = dense_freqs(&r, 8, Some(&[1.0, 2.0, 4.0, 8.0]));
        for (i, (p, s)) in plain.iter().zip(&scaled).enumerate() {
            assert!((p / s - f64::from(1u32 << i)).abs() < 1e-12);
        }
    }
}
