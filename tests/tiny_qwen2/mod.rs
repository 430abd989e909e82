//! A tiny random `qwen2` model (NeoX RoPE, q/k/v biases, grouped-query attention, F32 weights)
//! written with `GgufWriter`, shared by the dense CPU and GPU tests. Include with
//! `mod tiny_qwen2;`.

#![allow(dead_code, clippy::unwrap_used)]

use lanternfish::gguf::{GgufFile, GgufModel, GgufWriter, MetaValue};
use lanternfish::quant::GgmlType;
use lanternfish::rng::Rng;

pub const D: usize = 32;
pub const H: usize = 4;
pub const HKV: usize = 2;
pub const HD: usize = 8;
pub const FF: usize = 48;
pub const V: usize = 40;
pub const L: usize = 2;
pub const EPS: f32 = 1e-6;
pub const BASE: f32 = 10_000.0;

pub struct Tiny {
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Tiny {
    pub fn get(&self, name: &str) -> &[f32] {
        &self.tensors.iter().find(|t| t.0 == name).unwrap().2
    }
}

/// Random weights; shapes in GGUF ne order.
pub fn tiny_weights() -> Tiny {
    let mut rng = Rng::new(11);
    let mut tensors = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
        let n = shape.iter().product();
        let data = (0..n).map(|_| offset + scale * rng.normal()).collect();
        tensors.push((name, shape, data));
    };
    add("token_embd.weight".into(), vec![D, V], 1.0, 0.0);
    add("output_norm.weight".into(), vec![D], 0.1, 1.0);
    add("output.weight".into(), vec![D, V], 0.2, 0.0);
    for il in 0..L {
        let n = |s: &str| format!("blk.{il}.{s}");
        add(n("attn_norm.weight"), vec![D], 0.1, 1.0);
        add(n("attn_q.weight"), vec![D, H * HD], 0.3, 0.0);
        add(n("attn_k.weight"), vec![D, HKV * HD], 0.3, 0.0);
        add(n("attn_v.weight"), vec![D, HKV * HD], 0.3, 0.0);
        add(n("attn_q.bias"), vec![H * HD], 0.5, 0.0);
        add(n("attn_k.bias"), vec![HKV * HD], 0.5, 0.0);
        add(n("attn_v.bias"), vec![HKV * HD], 0.5, 0.0);
        add(n("attn_output.weight"), vec![H * HD, D], 0.2, 0.0);
        add(n("ffn_norm.weight"), vec![D], 0.1, 1.0);
        add(n("ffn_gate.weight"), vec![D, FF], 0.2, 0.0);
        add(n("ffn_up.weight"), vec![D, FF], 0.2, 0.0);
        add(n("ffn_down.weight"), vec![FF, D], 0.2, 0.0);
    }
    Tiny { tensors }
}

pub fn tiny_gguf(t: &Tiny) -> GgufModel {
    let mut w = GgufWriter::new();
    let s = |x: &str| MetaValue::String(x.into());
    w.set("general.architecture", s("qwen2"));
    for (k, val) in [
        ("block_count", L),
        ("context_length", 256),
        ("embedding_length", D),
        ("feed_forward_length", FF),
        ("attention.head_count", H),
        ("attention.head_count_kv", HKV),
    ] {
        w.set(&format!("qwen2.{k}"), MetaValue::U32(val as u32));
    }
    w.set(
        "qwen2.attention.layer_norm_rms_epsilon",
        MetaValue::F32(EPS),
    );
    w.set("qwen2.rope.freq_base", MetaValue::F32(BASE));
    for (name, shape, data) in &t.tensors {
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.add_tensor(name, GgmlType::F32, &shape, bytes).unwrap();
    }
    let mut bytes = Vec::new();
    w.write_to(&mut bytes).unwrap();
    let file = GgufFile::from_bytes("tiny-qwen2.gguf".as_ref(), bytes).unwrap();
    GgufModel::from_parts(vec![file]).unwrap()
}
