//! Config and tensor-set checks on the golden tiny models (tests/golden/tiny), with metadata keys
//! removed or overridden to provoke each error.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::Error;
use crate::gguf::{GgufModel, Value};

pub(crate) fn open_tiny(name: &str) -> GgufModel {
    let path = format!(
        "{}/tests/golden/tiny/gguf/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    GgufModel::open(path.as_ref()).unwrap()
}

/// The config of a golden tiny model, e.g. `tiny-v3-F16.gguf`.
pub(crate) fn tiny_config(name: &str) -> DeepSeekConfig {
    DeepSeekConfig::from_gguf(&open_tiny(name)).unwrap()
}

/// The file's metadata with `overrides` (`None` removes the key).
fn read_with(
    model: &GgufModel,
    overrides: &[(&str, Option<Value<'static>>)],
) -> crate::Result<DeepSeekConfig> {
    DeepSeekConfig::from_metadata(&|k| match overrides.iter().find(|(name, _)| *name == k) {
        Some((_, v)) => *v,
        None => model.get(k),
    })
}

fn metadata_error(result: crate::Result<DeepSeekConfig>) -> (String, String) {
    match result {
        Err(Error::Metadata { key, what }) => (key, what),
        other => panic!("expected a metadata error, got {other:?}"),
    }
}

#[test]
fn tiny_v3_config() {
    let c = tiny_config("tiny-v3-F16.gguf");
    assert_eq!(
        (c.n_layer, c.n_embd, c.n_head, c.n_vocab, c.n_ctx_train),
        (4, 256, 4, 4096, 163_840)
    );
    assert_eq!((c.n_lora_q, c.n_lora_kv), (96, 64));
    assert_eq!(
        (c.n_embd_head_qk_nope, c.n_rot, c.n_embd_head_v),
        (32, 16, 48)
    );
    assert_eq!((c.layout, c.n_head_kv), (MlaLayout::Split, 1));
    assert_eq!(
        (
            c.n_expert,
            c.n_expert_used,
            c.n_expert_shared,
            c.n_ff_exp,
            c.n_ff
        ),
        (16, 4, 1, 64, 512)
    );
    assert_eq!(c.n_layer_dense_lead, 1);
    assert_eq!(
        (c.expert_gating_func, c.group_score),
        (GatingFunc::Sigmoid, GroupScore::Top2Sum)
    );
    assert_eq!((c.n_expert_groups, c.n_group_used), (4, 2));
    assert!(c.expert_weights_norm);
    assert_eq!(c.expert_weights_scale, 2.5);
    let RopeScaling::Yarn(y) = c.rope_scaling else {
        panic!("{:?}", c.rope_scaling)
    };
    assert_eq!(
        (
            y.factor,
            y.n_ctx_orig,
            y.beta_fast,
            y.beta_slow,
            y.ext_factor
        ),
        (40.0, 4096, 32.0, 1.0, 1.0)
    );
    // spec §4.5: m = 1 + 0.1·1.0·ln 40 = 1.36889; kq_scale = m² / sqrt(dn + dr).
    assert!((c.yarn_mscale() - 1.368_888_8).abs() < 1e-6);
    assert!((c.kq_scale() - 1.368_888_8f32.powi(2) / 48f32.sqrt()).abs() < 1e-6);
}

#[test]
fn tiny_v2_config() {
    let c = tiny_config("tiny-v2-F16.gguf");
    assert_eq!(c.n_lora_q, 0); // the file has q_lora_rank = 0 and attn_q
    assert_eq!(
        (c.expert_gating_func, c.group_score),
        (GatingFunc::Softmax, GroupScore::Max)
    );
    assert!(!c.is_group_limited() && !c.expert_weights_norm);
    // V2-Lite's mscale_all_dim 0.707 (key 0.0707): m = 1.26080.
    assert!((c.yarn_mscale() - 1.260_80).abs() < 1e-5);
    let gl = tiny_config("tiny-v2-gl-F16.gguf");
    assert_eq!(
        (gl.n_expert_groups, gl.n_group_used, gl.group_score),
        (4, 2, GroupScore::Max)
    );
    assert_eq!(gl.expert_weights_scale, 16.0);
}

#[test]
fn defaults_where_llama_cpp_has_them() {
    let model = open_tiny("tiny-v2-F16.gguf");
    let absent = |k: &'static str| (k, None);
    let c = read_with(
        &model,
        &[
            absent("deepseek2.attention.q_lora_rank"),
            absent("deepseek2.expert_gating_func"),
            absent("deepseek2.expert_weights_scale"),
            absent("deepseek2.expert_weights_norm"),
            absent("deepseek2.expert_group_count"),
            absent("deepseek2.expert_group_used_count"),
            absent("deepseek2.vocab_size"),
            absent("deepseek2.rope.freq_base"),
            absent("deepseek2.rope.scaling.original_context_length"),
        ],
    )
    .unwrap();
    assert_eq!(c.n_lora_q, 0);
    assert_eq!(c.expert_gating_func, GatingFunc::Softmax);
    assert_eq!(
        (c.expert_weights_scale, c.expert_weights_norm),
        (1.0, false)
    );
    assert_eq!(c.n_vocab, 4096); // from tokenizer.ggml.tokens
    assert_eq!(c.rope_freq_base, 10_000.0);
    let RopeScaling::Yarn(y) = c.rope_scaling else {
        panic!()
    };
    assert_eq!(y.n_ctx_orig, c.n_ctx_train);
    let none = read_with(
        &model,
        &[
            absent("deepseek2.rope.scaling.type"),
            absent("deepseek2.rope.scaling.factor"),
        ],
    );
    assert_eq!(none.unwrap().kq_scale(), 1.0 / 48f32.sqrt());
}

#[test]
fn missing_required_keys_are_named() {
    let model = open_tiny("tiny-v3-F16.gguf");
    for k in [
        "block_count",
        "context_length",
        "embedding_length",
        "attention.head_count",
        "attention.layer_norm_rms_epsilon",
        "attention.kv_lora_rank",
        "rope.dimension_count",
        "expert_shared_count",
        "expert_feed_forward_length",
        "expert_count",
        "expert_used_count",
        "feed_forward_length",
    ] {
        let full = format!("deepseek2.{k}");
        let (key, what) = metadata_error(read_with(&model, &[(full.as_str(), None)]));
        assert_eq!(key, full, "{what}");
    }
}

#[test]
fn inconsistent_keys_are_named() {
    let model = open_tiny("tiny-v3-F16.gguf");
    let cases: [(&str, Option<Value<'static>>, &str); 9] = [
        (
            "general.architecture",
            Some(Value::String("llama")),
            "general.architecture",
        ),
        (
            "deepseek2.block_count",
            Some(Value::String("4")),
            "deepseek2.block_count",
        ),
        (
            "deepseek2.attention.value_length_mla",
            None,
            "deepseek2.attention.value_length_mla",
        ),
        (
            "deepseek2.attention.head_count_kv",
            Some(Value::U32(4)),
            "deepseek2.attention.head_count_kv",
        ),
        (
            "deepseek2.attention.key_length",
            Some(Value::U32(48)),
            "deepseek2.attention.key_length",
        ),
        (
            "deepseek2.expert_group_count",
            Some(Value::U32(3)),
            "deepseek2.expert_group_count",
        ),
        (
            "deepseek2.expert_used_count",
            Some(Value::U32(17)),
            "deepseek2.expert_used_count",
        ),
        (
            "deepseek2.expert_gating_func",
            Some(Value::U32(4)),
            "deepseek2.expert_gating_func",
        ),
        (
            "deepseek2.rope.scaling.type",
            Some(Value::String("longrope")),
            "deepseek2.rope.scaling.type",
        ),
    ];
    for (name, value, want_key) in cases {
        let (key, what) = metadata_error(read_with(&model, &[(name, value)]));
        assert_eq!(key, want_key, "{name}: {what}");
        eprintln!("{key}: {what}");
    }
}

#[test]
fn tensor_shapes_are_checked_against_the_config() {
    let model = open_tiny("tiny-v3-F16.gguf");
    let mut c = DeepSeekConfig::from_gguf(&model).unwrap();
    ModelTensors::load(&model, &c).unwrap();
    c.n_ff_exp = 32;
    match ModelTensors::load(&model, &c) {
        Err(Error::Tensor { name, what }) => {
            assert_eq!(name, "blk.1.ffn_gate_exps.weight");
            assert!(
                what.contains("[256, 32, 16]") && what.contains("[256, 64, 16]"),
                "{what}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A file with attn_q_a but no q_lora_rank key is an error naming the key.
    let no_lora = read_with(&model, &[("deepseek2.attention.q_lora_rank", None)]).unwrap();
    let (key, what) = match ModelTensors::load(&model, &no_lora) {
        Err(Error::Metadata { key, what }) => (key, what),
        other => panic!("{other:?}"),
    };
    assert_eq!(key, "deepseek2.attention.q_lora_rank");
    assert!(what.contains("blk.0.attn_q_a.weight"), "{what}");
}
