//! The GPU engine end to end (`lanternfish::gpu::engine`) on lavapipe when no GPU is present:
//! every tiny golden file's logits against the HF references with the CPU path's tolerance,
//! against the CPU reference itself, greedy decoding, prefill vs token-by-token decode, and the
//! legacy `attn_kv_b` layout through synth models.

#![allow(clippy::unwrap_used)]

mod gpu_common;
mod tiny_golden;

use std::sync::Arc;

use gpu_common::{exact_session as exact, shared_gpu};
use lanternfish::cpu::CpuModel;
use lanternfish::gguf::{GgufFile, GgufModel};
use lanternfish::gpu::engine::{GpuModel, GpuSession};
use lanternfish::gpu::ops::cache_type::CacheType;
use lanternfish::quant::GgmlType;
use lanternfish::synth::{Layout, SynthConfig, SynthOptions, WeightType, write_model};
use tiny_golden::{
    argmax, assert_logits_match, ids, inputs, max_abs, max_abs_diff, open, read_npy,
};

fn load(gguf: &GgufModel) -> Arc<GpuModel> {
    Arc::new(GpuModel::load(shared_gpu().clone(), gguf, None).unwrap())
}

/// Relative max difference.
fn rel(a: &[f32], b: &[f32]) -> f32 {
    max_abs_diff(a, b) / max_abs(b)
}

/// The fixed sequence in batches of 3 (so prefill runs the tiled matmul with a partial tile and
/// several submissions) against HF's logits, with the exact f32 cache and (where `f16` says so)
/// with the default f16 cache, and the chat prompt then greedy decoding on the GPU against HF's
/// tokens.
///
/// The f16 cache must meet the fidelity goal (max |Δlogit| ≤ 1e-3·max |logit|, same top-1): one
/// f16 rounding of every cached latent (relative ≤ 2^-11) gives ~3e-4 of the largest logit on
/// tiny-v2 and tiny-v3 (measured 2026-12-07: ≤ 5.2e-3 of 11.0 and ≤ 4.1e-3 of 9.1 against the f32
/// cache). Two goldens are not held to it, measured the same day: tiny-v2-gl's random attention
/// amplifies the same rounding to 3.8e-2 of 8.7 at one position (no routed expert changes), and
/// in tiny-v3-Q4_K_M the rounding flips a near-tie of the router (layer 1, position 9: expert 9
/// or 10), after which the sequences differ by up to 3.5 — what any perturbation of a MoE does
/// at a tie (llama.cpp's f16 cache and quantized activations included). They are checked in f32.
fn check_file(model: &str, file: &str, reference: &str, greedy: &serde_json::Value, f16: bool) {
    let info = inputs(model);
    let gguf = open(file);
    let gpu_model = load(&gguf);
    let v = gpu_model.n_vocab;
    let fixed = ids(&info["fixed"]["ids"]);
    let (_, want) = read_npy(reference);
    if f16 {
        let mut session = GpuSession::new(gpu_model.clone(), 256, 3).unwrap();
        assert_eq!(session.cache_type(), CacheType::F16);
        let logits = session.forward_all(&fixed).unwrap();
        assert_logits_match(&format!("GPU {file} fixed, f16 cache"), &logits, &want, v);
    }
    let mut session = exact(gpu_model.clone(), 256, 3);
    let logits = session.forward_all(&fixed).unwrap();
    assert_logits_match(&format!("GPU {file} fixed"), &logits, &want, v);

    // The CPU reference on the same file: the two engines agree far inside the HF tolerance.
    let cpu = CpuModel::load(&gguf).unwrap();
    let cpu_logits = cpu.session().forward(&fixed).unwrap();
    let r = rel(&logits, &cpu_logits);
    eprintln!("{file}: GPU vs CPU max rel {r:.2e}");
    assert!(r <= 1e-4, "{file}: GPU vs CPU {r:e}");

    let mut session = exact(gpu_model, 256, 64);
    let prompt = ids(&info["chat"]["ids"]);
    let want = ids(greedy);
    let mut got = vec![session.forward_greedy(&prompt).unwrap()];
    while got.len() < want.len() {
        got.push(session.forward_greedy(&[*got.last().unwrap()]).unwrap());
    }
    assert_eq!(got, want, "{file}: greedy chat continuation on the GPU");
}

#[test]
fn tiny_v2_f16() {
    let info = inputs("tiny-v2");
    check_file(
        "tiny-v2",
        "tiny-v2-F16.gguf",
        "tiny-v2/fixed_logits.npy",
        &info["chat"]["greedy"],
        true,
    );
}

#[test]
fn tiny_v2_gl_f16() {
    let info = inputs("tiny-v2-gl");
    check_file(
        "tiny-v2-gl",
        "tiny-v2-gl-F16.gguf",
        "tiny-v2-gl/fixed_logits.npy",
        &info["chat"]["greedy"],
        false,
    );
}

#[test]
fn tiny_v3_f16() {
    let info = inputs("tiny-v3");
    check_file(
        "tiny-v3",
        "tiny-v3-F16.gguf",
        "tiny-v3/fixed_logits.npy",
        &info["chat"]["greedy"],
        true,
    );
}

fn check_quantized(model: &str, quant: &str) {
    let info = inputs(model);
    check_file(
        model,
        &format!("{model}-{quant}.gguf"),
        &format!("{model}/dequant_{quant}/fixed_logits.npy"),
        &info["dequant"][quant]["chat_greedy"],
        false,
    );
}

#[test]
fn tiny_v2_q4_k_m() {
    check_quantized("tiny-v2", "Q4_K_M");
}

#[test]
fn tiny_v3_q4_k_m() {
    check_quantized("tiny-v3", "Q4_K_M");
}

#[test]
fn tiny_v3_q4_0() {
    check_quantized("tiny-v3", "Q4_0");
}

fn synth(preset: &str, layout: Layout, weights: WeightType) -> GgufModel {
    let options = SynthOptions {
        config: SynthConfig::preset(preset).unwrap(),
        weights,
        layout,
        seed: 11,
    };
    let mut bytes = Vec::new();
    write_model(&options, &mut bytes, &|_, _| {}).unwrap();
    let file = GgufFile::from_bytes(format!("{preset}-{layout:?}.gguf").as_ref(), bytes).unwrap();
    GgufModel::from_parts(vec![file]).unwrap()
}

/// Prefill in one batch equals the same tokens decoded one at a time (same cache, same
/// kernels but matmul vs matvec, and decode attention split over position chunks once the
/// depth passes MIN_SPLIT_SPAN, so only summation order may differ), and 32 greedy steps on the
/// GPU equal the CPU reference's, on synth models in both MLA layouts.
#[test]
fn prefill_equals_decode_and_greedy_matches_cpu_on_synth_models() {
    for (preset, layout) in [
        ("tiny-v2", Layout::Legacy),
        ("tiny-v3", Layout::Mla),
        ("tiny-v3", Layout::Legacy),
    ] {
        let gguf = synth(preset, layout, WeightType::Float(GgmlType::F32));
        let model = load(&gguf);
        let v = model.n_vocab;
        // 140 tokens: the decode plans at spans 128 and 256 split attention into chunks.
        let tokens: Vec<u32> = (0..140).map(|i| (i * 37 + 5) % v as u32).collect();
        let mut batch = exact(model.clone(), 256, 64);
        let all = batch.forward_all(&tokens).unwrap();
        let mut single = exact(model.clone(), 256, 1);
        for (t, &token) in tokens.iter().enumerate() {
            let step = single.forward_last(&[token]).unwrap();
            let r = rel(&step, &all[t * v..(t + 1) * v]);
            assert!(
                r <= 1e-5,
                "{preset} {layout:?} position {t}: prefill vs decode {r:e}"
            );
        }

        let cpu = CpuModel::load(&gguf).unwrap();
        let mut cpu_session = cpu.session();
        let cpu_all = cpu_session.forward(&tokens).unwrap();
        let r = rel(&all, &cpu_all);
        assert!(r <= 1e-4, "{preset} {layout:?}: GPU vs CPU {r:e}");
        let mut next_cpu = argmax(&cpu_all[(tokens.len() - 1) * v..]) as u32;
        let mut next_gpu = argmax(&all[(tokens.len() - 1) * v..]) as u32;
        let mut gpu_session = batch;
        for step in 0..32 {
            assert_eq!(
                next_gpu, next_cpu,
                "{preset} {layout:?}: greedy step {step}"
            );
            next_cpu = argmax(&cpu_session.step(next_cpu).unwrap()) as u32;
            next_gpu = gpu_session.forward_greedy(&[next_gpu]).unwrap();
        }
    }
}

/// A prompt past the context is a clear error, and the session stays usable.
#[test]
fn context_overflow_is_an_error() {
    let gguf = synth("tiny-v2", Layout::Mla, WeightType::Float(GgmlType::F32));
    let model = load(&gguf);
    let mut session = GpuSession::new(model, 8, 4).unwrap();
    let error = session.forward_last(&[1; 9]).unwrap_err().to_string();
    assert!(error.contains("context"), "{error}");
    assert_eq!(session.n_past(), 0);
    session.forward_last(&[1; 8]).unwrap();
    let error = session.forward_last(&[1]).unwrap_err().to_string();
    assert!(error.contains("context"), "{error}");
    session.truncate(4);
    session.forward_last(&[2, 3]).unwrap();
    assert_eq!(session.n_past(), 6);
}
