//! RoPE settings of the dense architectures (`llama`, `qwen2`, `qwen3`), read from the file:
//! the frequency scaling (`rope.scaling.*`: none, linear or YaRN), llama3's per-pair frequency
//! divisors (the `rope_freqs.weight` tensor the converter writes for `rope_type: llama3`; llama.cpp
//! loads it for `llama` only, shape `{n_rot/2}`; found by `DenseTensors`) and
//! `rope.scaling.attn_factor`. The arithmetic is in `cpu::dense_rope`.

use super::config::RopeScaling;

/// How one dense model rotates q and k.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseRope {
    /// `rope.freq_base`, default 10000.
    pub freq_base: f32,
    /// `rope.scaling.*`.
    pub scaling: RopeScaling,
    /// `rope.scaling.attn_factor`, default 1: llama.cpp's `hparams.rope_attn_factor`, a factor on
    /// the rotated values.
    pub attn_factor: f32,
}
