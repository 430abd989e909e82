//! The CPU reference forward pass against the HF goldens of the tiny deepseek2 models
//! (tests/golden/tiny/README.md): logits, residual stream and routing of the fixed sequence,
//! greedy decoding of the chat prompt through the latent cache, naive vs absorbed MLA,
//! step-by-step decode vs one batch, and the legacy `attn_kv_b` layout vs the split one.

#![allow(clippy::unwrap_used)]

mod tiny_golden;

use tiny_golden::{
    argmax, assert_logits_match, ids, inputs, max_abs, max_abs_diff, open, read_npy,
};

use lanternfish::cpu::{CpuModel, MlaForm, Trace};
use lanternfish::gguf::{GgufFile, GgufModel, GgufWriter, MetaValue};
use lanternfish::model::MlaLayout;
use lanternfish::quant::GgmlType;
use lanternfish::synth::{Layout, SynthConfig, SynthOptions, WeightType, write_model};

/// Fixed sequence in one batch vs HF (F16 files hold exactly the goldens' weights): logits,
/// residual stream after every layer, chosen experts and their weights.
fn check_f16_against_hf(model: &str) {
    let info = inputs(model);
    let gguf = open(&format!("{model}-F16.gguf"));
    let cpu = CpuModel::load(&gguf).unwrap();
    let n_vocab = cpu.config.n_vocab;
    let mut trace = Trace::default();
    let logits = cpu
        .session()
        .forward_traced(&ids(&info["fixed"]["ids"]), &mut trace)
        .unwrap();
    let (_, reference) = read_npy(&format!("{model}/fixed_logits.npy"));
    assert_logits_match(&format!("{model} F16 fixed"), &logits, &reference, n_vocab);

    let (shape, hidden) = read_npy(&format!("{model}/fixed_hidden.npy"));
    assert_eq!(shape[0], trace.hidden.len());
    let per_entry = shape[1] * shape[2];
    for (i, (ours, theirs)) in trace
        .hidden
        .iter()
        .zip(hidden.chunks_exact(per_entry))
        .enumerate()
    {
        let diff = max_abs_diff(ours, theirs);
        assert!(
            diff <= 1e-4 * max_abs(theirs),
            "{model} hidden[{i}]: max |Δ| {diff:e}"
        );
        eprintln!(
            "{model} hidden[{i}]: max |Δ| = {diff:.2e} (max |h| {:.2})",
            max_abs(theirs)
        );
    }

    for layer in info["routing_layers"].as_array().unwrap() {
        let il = layer.as_u64().unwrap() as usize;
        let (_, want_idx) = read_npy(&format!("{model}/fixed_routing/layer{il}_idx.npy"));
        let (_, want_w) = read_npy(&format!("{model}/fixed_routing/layer{il}_w.npy"));
        let routing = trace.routing[il].as_ref().unwrap();
        let k = cpu.config.n_expert_used;
        let mut w_diff = 0f32;
        for (t, r) in routing.iter().enumerate() {
            // The goldens list experts in ascending order.
            let mut pairs: Vec<(usize, f32)> = r
                .experts
                .iter()
                .copied()
                .zip(r.weights.iter().copied())
                .collect();
            pairs.sort_by_key(|p| p.0);
            let experts: Vec<f32> = pairs.iter().map(|p| p.0 as f32).collect();
            assert_eq!(
                experts,
                want_idx[t * k..(t + 1) * k],
                "{model} layer {il} token {t}: experts"
            );
            let weights: Vec<f32> = pairs.iter().map(|p| p.1).collect();
            w_diff = w_diff.max(max_abs_diff(&weights, &want_w[t * k..(t + 1) * k]));
        }
        assert!(
            w_diff <= 1e-4 * cpu.config.expert_weights_scale,
            "{model} layer {il}: weights {w_diff:e}"
        );
        eprintln!("{model} layer {il} routing: experts equal, max |Δw| = {w_diff:.2e}");
    }
}

/// Chat prompt in one batch, then greedy decoding one token at a time through the cache: the
/// tokens must be HF's (`greedy`, from inputs.json). Returns the last prompt position's logits.
fn check_chat_greedy(model: &str, file: &str, greedy: &serde_json::Value) -> Vec<f32> {
    let info = inputs(model);
    let gguf = open(file);
    let cpu = CpuModel::load(&gguf).unwrap();
    let mut session = cpu.session();
    let prompt = ids(&info["chat"]["ids"]);
    let logits = session.forward(&prompt).unwrap();
    let last = logits[(prompt.len() - 1) * cpu.config.n_vocab..].to_vec();
    let want = ids(greedy);
    let mut got = vec![argmax(&last) as u32];
    while got.len() < want.len() {
        let next = session.step(*got.last().unwrap()).unwrap();
        got.push(argmax(&next) as u32);
    }
    assert_eq!(got, want, "{file}: greedy chat continuation");
    last
}

#[test]
fn tiny_v2_f16_matches_hf() {
    check_f16_against_hf("tiny-v2");
    check_chat_greedy(
        "tiny-v2",
        "tiny-v2-F16.gguf",
        &inputs("tiny-v2")["chat"]["greedy"],
    );
}

#[test]
fn tiny_v2_gl_f16_matches_hf_group_max_routing() {
    check_f16_against_hf("tiny-v2-gl");
    check_chat_greedy(
        "tiny-v2-gl",
        "tiny-v2-gl-F16.gguf",
        &inputs("tiny-v2-gl")["chat"]["greedy"],
    );
}

#[test]
fn tiny_v3_f16_matches_hf() {
    check_f16_against_hf("tiny-v3");
    check_chat_greedy(
        "tiny-v3",
        "tiny-v3-F16.gguf",
        &inputs("tiny-v3")["chat"]["greedy"],
    );
}

/// A quantized file against HF run on its dequantized weights (`dequant_<TYPE>`).
fn check_quantized(model: &str, quant: &str) {
    let info = inputs(model);
    let file = format!("{model}-{quant}.gguf");
    let gguf = open(&file);
    let cpu = CpuModel::load(&gguf).unwrap();
    let n_vocab = cpu.config.n_vocab;
    let logits = cpu.session().forward(&ids(&info["fixed"]["ids"])).unwrap();
    let (_, reference) = read_npy(&format!("{model}/dequant_{quant}/fixed_logits.npy"));
    assert_logits_match(&format!("{file} fixed"), &logits, &reference, n_vocab);
    let last = check_chat_greedy(model, &file, &info["dequant"][quant]["chat_greedy"]);
    let (_, reference) = read_npy(&format!("{model}/dequant_{quant}/chat_last_logits.npy"));
    assert_logits_match(&format!("{file} chat last"), &last, &reference, n_vocab);
}

#[test]
fn tiny_v2_q4_k_m_matches_hf_on_dequantized_weights() {
    check_quantized("tiny-v2", "Q4_K_M");
}

#[test]
fn tiny_v3_q4_k_m_matches_hf_on_dequantized_weights() {
    check_quantized("tiny-v3", "Q4_K_M");
}

#[test]
fn tiny_v3_q4_0_matches_hf_on_dequantized_weights() {
    check_quantized("tiny-v3", "Q4_0");
}

/// Relative max difference of two logit arrays.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    max_abs_diff(a, b) / max_abs(b)
}

#[test]
fn naive_and_absorbed_mla_agree() {
    for model in ["tiny-v2", "tiny-v3"] {
        let gguf = open(&format!("{model}-F16.gguf"));
        let cpu = CpuModel::load(&gguf).unwrap();
        let tokens = ids(&inputs(model)["fixed"]["ids"]);
        let absorbed = cpu.session().forward(&tokens).unwrap();
        let mut naive_session = cpu.session();
        naive_session.mla_form = MlaForm::Naive;
        let naive = naive_session.forward(&tokens).unwrap();
        let rel = rel_diff(&naive, &absorbed);
        eprintln!("{model}: naive vs absorbed MLA, max |Δ| / max |logit| = {rel:.2e}");
        assert!(rel <= 1e-5, "{model}: naive vs absorbed {rel:e}");
    }
}

#[test]
fn step_by_step_decode_equals_one_batch() {
    let gguf = open("tiny-v3-F16.gguf");
    let cpu = CpuModel::load(&gguf).unwrap();
    let n_vocab = cpu.config.n_vocab;
    let tokens = ids(&inputs("tiny-v3")["fixed"]["ids"]);
    for form in [MlaForm::Absorbed, MlaForm::Naive] {
        let mut session = cpu.session();
        session.mla_form = form;
        let batch = session.forward(&tokens).unwrap();
        // A prefill of the first half, then one token at a time.
        let mut session = cpu.session();
        session.mla_form = form;
        let half = tokens.len() / 2;
        let mut stepped = session.forward(&tokens[..half]).unwrap();
        for &t in &tokens[half..] {
            stepped.extend(session.step(t).unwrap());
        }
        assert_eq!(session.n_past(), tokens.len());
        assert_eq!(
            session.cache().n_tokens(cpu.config.n_layer - 1),
            tokens.len()
        );
        // Every dot product is computed in the same order either way: bit-identical.
        for (pos, (a, b)) in stepped
            .chunks_exact(n_vocab)
            .zip(batch.chunks_exact(n_vocab))
            .enumerate()
        {
            assert!(
                a == b,
                "{form:?}: position {pos}: step-by-step differs from batch by {:e}",
                max_abs_diff(a, b)
            );
        }
    }
}

/// A synthetic model written in `layout`, same seed (so the same weights) for both layouts.
fn synth(preset: &str, layout: Layout) -> GgufModel {
    let options = SynthOptions {
        config: SynthConfig::preset(preset).unwrap(),
        weights: WeightType::Float(GgmlType::F32),
        layout,
        seed: 7,
    };
    let mut bytes = Vec::new();
    write_model(&options, &mut bytes, &|_, _| {}).unwrap();
    let file = GgufFile::from_bytes(format!("{preset}-{layout:?}.gguf").as_ref(), bytes).unwrap();
    GgufModel::from_parts(vec![file]).unwrap()
}

#[test]
fn legacy_kv_b_layout_equals_split_layout() {
    for preset in ["tiny-v2", "tiny-v3"] {
        let (split, legacy) = (synth(preset, Layout::Mla), synth(preset, Layout::Legacy));
        let (split, legacy) = (
            CpuModel::load(&split).unwrap(),
            CpuModel::load(&legacy).unwrap(),
        );
        assert_eq!(split.config.layout, MlaLayout::Split);
        assert_eq!(legacy.config.layout, MlaLayout::Legacy);
        assert_eq!(split.config.n_head_kv, 1);
        assert_eq!(legacy.config.n_head_kv, split.config.n_head);
        // k_b derived from kv_b equals the file's k_b, value for value.
        for (a, b) in split.weights.layers[0]
            .attn_k_b
            .iter()
            .zip(&legacy.weights.layers[0].attn_k_b)
        {
            assert_eq!(a.to_vec(), b.to_vec(), "{preset}: derived k_b");
        }
        let tokens = [0, 17, 4003, 99, 1000, 5, 5, 3000];
        let want = split.session().forward(&tokens).unwrap();
        // Same weights, same arithmetic: bit-identical in the absorbed form.
        assert_eq!(
            legacy.session().forward(&tokens).unwrap(),
            want,
            "{preset}: legacy vs split"
        );
        let mut naive = legacy.session();
        naive.mla_form = MlaForm::Naive;
        let rel = rel_diff(&naive.forward(&tokens).unwrap(), &want);
        assert!(
            rel <= 1e-5,
            "{preset}: legacy naive vs split absorbed {rel:e}"
        );
    }
}

/// A copy of `model` without the tensors `drop_tensors` and the keys `drop_keys`, in memory.
fn rewrite(model: &GgufModel, drop_tensors: &[&str], drop_keys: &[&str]) -> GgufModel {
    let mut writer = GgufWriter::new();
    for (key, value) in model.metadata().metadata() {
        if !drop_keys.contains(&key) {
            writer.set(key, MetaValue::from(value));
        }
    }
    for info in model
        .tensors()
        .filter(|t| !drop_tensors.contains(&t.name.as_str()))
    {
        let data = model.tensor_data(info).to_vec();
        writer
            .add_tensor(&info.name, info.ggml_type, &info.shape, data)
            .unwrap();
    }
    let mut bytes = Vec::new();
    writer.write_to(&mut bytes).unwrap();
    GgufModel::from_parts(vec![
        GgufFile::from_bytes("rewritten.gguf".as_ref(), bytes).unwrap(),
    ])
    .unwrap()
}

/// Real V2-Lite files have no `q_lora_rank` key (only `attn_q`); a file without `output.weight`
/// reuses `token_embd` as the output head.
#[test]
fn absent_q_lora_key_and_tied_output() {
    let original = open("tiny-v2-F16.gguf");
    let tokens = [0, 5, 700, 4001];
    let want = CpuModel::load(&original)
        .unwrap()
        .session()
        .forward(&tokens)
        .unwrap();
    let no_key = rewrite(&original, &[], &["deepseek2.attention.q_lora_rank"]);
    let no_key = CpuModel::load(&no_key).unwrap();
    assert_eq!(no_key.config.n_lora_q, 0);
    assert_eq!(no_key.session().forward(&tokens).unwrap(), want);

    let tied = rewrite(&original, &["output.weight"], &[]);
    let tied = CpuModel::load(&tied).unwrap();
    let mut trace = Trace::default();
    let logits = tied.session().forward_traced(&tokens, &mut trace).unwrap();
    let (n_embd, n_vocab) = (tied.config.n_embd, tied.config.n_vocab);
    let final_norm = trace.hidden.last().unwrap();
    let mut row = vec![0f32; n_embd];
    for (t, h) in final_norm.chunks_exact(n_embd).enumerate() {
        for v in [0, 1, 4001, n_vocab - 1] {
            tied.weights.token_embd.row(v, &mut row);
            let want: f32 = row.iter().zip(h).map(|(a, b)| a * b).sum();
            assert!(
                (logits[t * n_vocab + v] - want).abs() <= 1e-4,
                "token {t}, logit {v}"
            );
        }
    }
}
