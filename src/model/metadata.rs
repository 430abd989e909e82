//! Typed reading of `deepseek2.*` metadata keys for [`DeepSeekConfig`](super::DeepSeekConfig):
//! a present key of the wrong type, or one that contradicts another, is an error naming it.

use super::config::{AttnTemperature, GatingFunc, MlaLayout, RopeScaling, YarnConfig, key};
use crate::gguf::Value;
use crate::{Error, Result};

pub(super) fn meta_error(name: &str, what: impl Into<String>) -> Error {
    Error::Metadata {
        key: key(name),
        what: what.into(),
    }
}

/// Typed access to `deepseek2.*` keys; a present key of the wrong type is an error.
pub(super) struct Meta<'f, 'a> {
    pub(super) get: &'f dyn Fn(&str) -> Option<Value<'a>>,
}

impl<'a> TypedKeys<'a> for Meta<'_, 'a> {
    fn value(&self, name: &str) -> Option<Value<'a>> {
        (self.get)(&key(name))
    }

    fn error(&self, name: &str, what: String) -> Error {
        meta_error(name, what)
    }
}

/// Typed reads of an architecture's keys by short name (`"rope.freq_base"`), shared by the
/// deepseek2 and the dense metadata readers, whose prefixes differ: a present key of the wrong
/// type is an error naming it.
pub(super) trait TypedKeys<'a> {
    /// The value of `{arch}.{name}`.
    fn value(&self, name: &str) -> Option<Value<'a>>;
    /// An error about `{arch}.{name}`.
    fn error(&self, name: &str, what: String) -> Error;

    fn opt_usize(&self, name: &str) -> Result<Option<usize>> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    self.error(name, format!("expected a non-negative integer, found {v}"))
                }),
        }
    }

    fn usize(&self, name: &str) -> Result<usize> {
        self.opt_usize(name)?
            .ok_or_else(|| self.error(name, "missing".into()))
    }

    fn opt_f32(&self, name: &str) -> Result<Option<f32>> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(|x| Some(x as f32))
                .ok_or_else(|| self.error(name, format!("expected a finite number, found {v}"))),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.error(name, format!("expected a bool, found {v}"))),
        }
    }

    fn opt_str(&self, name: &str) -> Result<Option<String>> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| self.error(name, format!("expected a string, found {v}"))),
        }
    }
}

/// Head sizes and layout (spec §2 notes): `(dn, dr, dv, layout, r)`. A file is split-layout when
/// both `*_mla` keys are present (llama.cpp `llama_hparams::is_mla`); then `key_length` /
/// `value_length` describe the latent MQA view (r + dr, r), otherwise the per-head sizes.
pub(super) fn read_head_dims(
    m: &Meta<'_, '_>,
    n_embd: usize,
    n_head: usize,
) -> Result<(usize, usize, usize, MlaLayout, usize)> {
    let n_rot = m.usize("rope.dimension_count")?;
    let r = m.usize("attention.kv_lora_rank")?;
    let key_length = m.opt_usize("attention.key_length")?;
    let value_length = m.opt_usize("attention.value_length")?;
    let k_mla = m.opt_usize("attention.key_length_mla")?;
    let v_mla = m.opt_usize("attention.value_length_mla")?;
    let (head_k, head_v, layout) = match (k_mla, v_mla) {
        (Some(k), Some(v)) => {
            for (name, found, want) in [
                ("attention.key_length", key_length, r + n_rot),
                ("attention.value_length", value_length, r),
            ] {
                if found.is_some_and(|f| f != want) {
                    let what = format!(
                        "{found:?} does not match kv_lora_rank {r} (+ rope.dimension_count {n_rot}) = {want}"
                    );
                    return Err(meta_error(name, what));
                }
            }
            (k, v, MlaLayout::Split)
        }
        (None, None) => {
            // llama.cpp's default head size is n_embd / n_head for both.
            let default = n_embd.checked_div(n_head).unwrap_or(0);
            (
                key_length.unwrap_or(default),
                value_length.unwrap_or(default),
                MlaLayout::Legacy,
            )
        }
        (Some(_), None) => {
            return Err(meta_error(
                "attention.value_length_mla",
                "missing, but key_length_mla is present",
            ));
        }
        (None, Some(_)) => {
            return Err(meta_error(
                "attention.key_length_mla",
                "missing, but value_length_mla is present",
            ));
        }
    };
    let key_name = match layout {
        MlaLayout::Split => "attention.key_length_mla",
        MlaLayout::Legacy => "attention.key_length",
    };
    if n_rot == 0 || !n_rot.is_multiple_of(2) || n_rot >= head_k {
        let what = format!(
            "{n_rot} must be even, positive and below the key head size {head_k} ({key_name})"
        );
        return Err(meta_error("rope.dimension_count", what));
    }
    if head_v == 0 {
        return Err(meta_error(
            key_name.replace("key", "value").as_str(),
            "must be positive",
        ));
    }
    Ok((head_k - n_rot, n_rot, head_v, layout, r))
}

/// `expert_gating_func` (spec §2): absent ⇒ softmax, except llama.cpp's GLM-4.7-Lite heuristic
/// (47 or 48 layers with a 154880-row vocabulary ⇒ sigmoid).
pub(super) fn read_gating(m: &Meta<'_, '_>, n_layer: usize, n_vocab: usize) -> Result<GatingFunc> {
    match m.opt_usize("expert_gating_func")? {
        Some(1) => Ok(GatingFunc::Softmax),
        Some(2) => Ok(GatingFunc::Sigmoid),
        Some(other) => Err(meta_error(
            "expert_gating_func",
            format!("{other} is not supported (1 = softmax, 2 = sigmoid)"),
        )),
        None if matches!(n_layer, 47 | 48) && n_vocab == 154_880 => Ok(GatingFunc::Sigmoid),
        None => Ok(GatingFunc::Softmax),
    }
}

/// `rope.scaling.*` (spec §2, §4.4) as llama.cpp reads it for every architecture. Without a type
/// key llama.cpp uses linear scaling with the factor (none when it is absent, 0 or 1); YaRN takes
/// its original context (default `context_length`, also for 0), betas, extrapolation factor and
/// log multiplier; any other type is an error naming it.
pub(super) fn rope_scaling(m: &dyn TypedKeys<'_>, n_ctx_train: usize) -> Result<RopeScaling> {
    let factor = m.opt_f32("rope.scaling.factor")?;
    if factor.is_some_and(|f| f < 0.0) {
        return Err(m.error("rope.scaling.factor", "must not be negative".into()));
    }
    // llama.cpp: a factor of 0 means "no scaling" (freq_scale 1).
    let factor = factor.filter(|&f| f != 0.0).unwrap_or(1.0);
    match m.opt_str("rope.scaling.type")?.as_deref() {
        Some("none") => Ok(RopeScaling::None),
        None | Some("linear") if factor == 1.0 => Ok(RopeScaling::None),
        None | Some("linear") => Ok(RopeScaling::Linear { factor }),
        Some("yarn") => Ok(RopeScaling::Yarn(YarnConfig {
            factor,
            n_ctx_orig: m
                .opt_usize("rope.scaling.original_context_length")?
                .filter(|&n| n != 0)
                .unwrap_or(n_ctx_train),
            beta_fast: m.opt_f32("rope.scaling.yarn_beta_fast")?.unwrap_or(32.0),
            beta_slow: m.opt_f32("rope.scaling.yarn_beta_slow")?.unwrap_or(1.0),
            // llama.cpp: a negative ext_factor means "the default", 1 for YaRN.
            ext_factor: m
                .opt_f32("rope.scaling.yarn_ext_factor")?
                .filter(|&v| v >= 0.0)
                .unwrap_or(1.0),
            log_multiplier: m
                .opt_f32("rope.scaling.yarn_log_multiplier")?
                .unwrap_or(0.0),
        })),
        Some(other) => Err(m.error(
            "rope.scaling.type",
            format!("\"{other}\" is not supported (none, linear, yarn)"),
        )),
    }
}

/// deepseek2's `rope.scaling.*`: [`rope_scaling`], with an attention factor other than 1 refused.
pub(super) fn read_rope_scaling(m: &Meta<'_, '_>, n_ctx_train: usize) -> Result<RopeScaling> {
    for name in ["rope.scaling.attn_factor", "rope.scaling.yarn_attn_factor"] {
        if let Some(v) = m.opt_f32(name)?
            && v != 1.0
        {
            return Err(meta_error(name, format!("{v} is not supported (only 1)")));
        }
    }
    rope_scaling(m, n_ctx_train)
}

/// `attention.temperature_scale` / `_length` (Mistral Large 3): absent or a scale of 0 ⇒ none
/// (llama.cpp applies it when the scale is non-zero); a scale needs a positive length.
pub(super) fn read_temperature(m: &Meta<'_, '_>) -> Result<Option<AttnTemperature>> {
    let scale = m.opt_f32("attention.temperature_scale")?.unwrap_or(0.0);
    let length = m.opt_usize("attention.temperature_length")?;
    if scale == 0.0 {
        return Ok(None);
    }
    match length {
        Some(length) if length > 0 => Ok(Some(AttnTemperature { scale, length })),
        _ => Err(meta_error(
            "attention.temperature_length",
            format!("missing or 0, needed by attention.temperature_scale {scale}"),
        )),
    }
}
