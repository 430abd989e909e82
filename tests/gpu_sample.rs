//! Choosing tokens on the GPU: the sampler kernels against `lanternfish::sampler` (the CPU
//! reference) on the same logits and seed stream, and pipelined decoding through the generator
//! against the path that reads the logits back each token.

#![allow(clippy::unwrap_used)]

mod gpu_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gpu_common::{shared_gpu, test_gpu, values};
use lanternfish::engine::{GenerateOptions, Generator, StopReason};
use lanternfish::gguf::{GgufFile, GgufModel};
use lanternfish::gpu::engine::{DeviceChoice, GpuModel, GpuSession};
use lanternfish::gpu::ops::sample::{GpuSampler, MAX_TOP_K, SampleStep};
use lanternfish::quant::GgmlType;
use lanternfish::sampler::{Sampler, SamplerConfig};
use lanternfish::synth::{Layout, SynthConfig, SynthOptions, WeightType, write_model};
use lanternfish::tokenizer::Tokenizer;

/// How far (absolute) the GPU's f32 cumulative probabilities may be from the CPU's f64 ones, so
/// that a draw, top_p or min_p threshold farther than this from every boundary must give the
/// same token. With u = 2^-24 and n ≤ k terms:
/// - e_i = exp(v_i − v_0): the difference is rounded once (relative u of |x|), and WGSL's exp is
///   within 3 + 2|x| ULP, so e_i is within (3 + 3|x|)u relative; Σ e_i |x_i| / S ≤ n/e because
///   x·e^x ≥ −1/e and S ≥ 1, so these contribute at most (3 + 1.2n)u to any cumulative sum;
/// - the sum S adds (n − 1)u relative, each p_i = e_i / S 2.5u (WGSL division), and the running
///   cumulative sum n·u: (2.5 + 2n)u;
/// - the tempered softmax repeats all of that, plus s_i = v_i / T within 2.5 ULP of the CPU's
///   correctly rounded f32 quotient, an exponent error of 2.5u·|s| on s_i and on max s: 5u·max|s|;
/// - the draw u is rounded from f64 to f32: u/2.
///
/// Total: (11 + 6.4n + 5·max|v|/T)u; we state (12 + 7n + 5·max|v|/T)·2^-24.
fn bound(n: usize, max_abs_logit: f32, temperature: f32) -> f64 {
    (12.0 + 7.0 * n as f64 + 5.0 * f64::from(max_abs_logit / temperature)) * 2f64.powi(-24)
}

/// The CPU sampler's decision quantities in f64 (its own arithmetic, step by step, as in
/// `src/sampler.rs`): the distance of top_p, the min_p floor and the draw from the nearest
/// boundary that would change the token.
fn margin(logits: &[f32], config: &SamplerConfig, draw: f64) -> f64 {
    let mut candidates: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, &l)| (i as u32, l))
        .collect();
    if candidates.is_empty() {
        return f64::INFINITY;
    }
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    candidates.truncate(config.top_k);
    let softmax = |values: Vec<f32>| {
        let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f64> = values.iter().map(|&v| f64::from(v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.into_iter().map(|e| e / sum).collect::<Vec<f64>>()
    };
    let probs = softmax(candidates.iter().map(|c| c.1).collect());
    let mut m = f64::INFINITY;
    let mut keep = probs.len();
    if config.top_p < 1.0 {
        let mut cum = 0.0;
        for (i, p) in probs.iter().enumerate() {
            cum += p;
            m = m.min((cum - f64::from(config.top_p)).abs());
            if cum >= f64::from(config.top_p) && keep == probs.len() {
                keep = i + 1;
            }
        }
    }
    if config.min_p > 0.0 {
        let floor = probs[0] * f64::from(config.min_p);
        let n = probs.iter().take_while(|&&p| p >= floor).count();
        for p in &probs[1..] {
            m = m.min((p - floor).abs());
        }
        keep = keep.min(n.max(1));
    }
    let scaled = softmax(
        candidates[..keep]
            .iter()
            .map(|c| c.1 / config.temperature)
            .collect(),
    );
    let mut cum = 0.0;
    for q in &scaled[..scaled.len() - 1] {
        cum += q;
        m = m.min((draw - cum).abs());
    }
    m
}

/// Logits of `n` values with a few strong ones, ties, both zeros and non-finite values.
fn logits(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut l = values(seed, n);
    for v in &mut l {
        *v *= scale;
    }
    for (j, i) in (0..n).step_by(97).enumerate() {
        l[i] += [6.0, 4.5, 3.0, 5.0][j % 4];
    }
    if n > 40 {
        l[3] = l[11];
        l[20] = 0.0;
        l[21] = -0.0;
        l[5] = f32::NEG_INFINITY;
        l[6] = f32::NAN;
        l[7] = f32::INFINITY;
    }
    l
}

#[test]
fn gpu_sampler_matches_the_cpu_sampler() {
    let gpu = test_gpu();
    let sampler = GpuSampler::new(gpu).unwrap();
    let configs = [
        (1.0, 1.0, 0.0),
        (0.7, 0.9, 0.05),
        (1.5, 0.5, 0.0),
        (0.4, 1.0, 0.2),
    ];
    let (mut decided, mut total) = (0, 0);
    for (n, scale) in [
        (1, 1.0),
        (7, 2.0),
        (1000, 3.0),
        (1025, 1.0),
        (5000, 4.0),
        (129_280, 2.0),
    ] {
        let l = logits(n as u64, n, scale);
        let max_abs = l
            .iter()
            .filter(|v| v.is_finite())
            .fold(0f32, |m, v| m.max(v.abs()));
        for k in [1, 2, 40, MAX_TOP_K] {
            for &(temperature, top_p, min_p) in &configs {
                for seed in 0..4u64 {
                    let config = SamplerConfig {
                        temperature,
                        top_k: k,
                        top_p,
                        min_p,
                        seed: seed * 1000 + n as u64,
                        ..SamplerConfig::default()
                    };
                    let want = Sampler::new(config.clone()).sample(&l, &[]);
                    let draw = Sampler::new(config.clone()).next_draw();
                    let step = SampleStep {
                        top_p,
                        min_p,
                        temperature,
                        u: draw as f32,
                    };
                    let got = sampler.run(gpu, &l, k, step).unwrap();
                    total += 1;
                    let m = margin(&l, &config, draw);
                    if m > bound(k.min(n), max_abs, temperature) {
                        decided += 1;
                        assert_eq!(
                            got, want,
                            "n {n} k {k} T {temperature} top_p {top_p} min_p {min_p} seed \
                             {seed}: GPU chose {got}, CPU {want} (margin {m:e})"
                        );
                    } else {
                        eprintln!("n {n} k {k}: margin {m:e} within the bound, not compared");
                    }
                }
            }
        }
    }
    // Ties across chunks: equal logits are ordered by id, so top_k keeps the lowest ids and the
    // draw walks them in id order (a reversed tie order fails here).
    let mut equal = vec![0.25f32; 3000];
    equal[2500] = 0.5;
    for seed in 0..16 {
        let config = SamplerConfig {
            temperature: 1.0,
            top_k: 40,
            seed,
            ..SamplerConfig::default()
        };
        let want = Sampler::new(config.clone()).sample(&equal, &[]);
        let draw = Sampler::new(config.clone()).next_draw();
        let step = SampleStep {
            top_p: 1.0,
            min_p: 0.0,
            temperature: 1.0,
            u: draw as f32,
        };
        let got = sampler.run(gpu, &equal, 40, step).unwrap();
        total += 1;
        if margin(&equal, &config, draw) > bound(40, 0.5, 1.0) {
            decided += 1;
            assert_eq!(got, want, "equal logits, seed {seed}");
        }
    }
    eprintln!("{decided} of {total} draws decided outside the rounding bound");
    assert!(decided * 10 >= total * 9, "{decided} of {total}");
}

#[test]
fn gpu_sampler_rejects_what_it_cannot_do() {
    let gpu = test_gpu();
    let sampler = GpuSampler::new(gpu).unwrap();
    let step = SampleStep {
        top_p: 1.0,
        min_p: 0.0,
        temperature: 1.0,
        u: 0.5,
    };
    for k in [0, MAX_TOP_K + 1] {
        let error = sampler
            .run(gpu, &[1.0; 8], k, step)
            .unwrap_err()
            .to_string();
        assert!(error.contains("top_k"), "{error}");
    }
    // Only non-finite logits: token 0, as documented.
    let got = sampler
        .run(gpu, &[f32::NAN, f32::NEG_INFINITY, f32::INFINITY], 2, step)
        .unwrap();
    assert_eq!(got, 0);
}

fn synth_model() -> (GgufModel, Arc<GpuModel>) {
    let options = SynthOptions {
        config: SynthConfig::preset("tiny-v3").unwrap(),
        weights: WeightType::Float(GgmlType::F32),
        layout: Layout::Mla,
        seed: 5,
    };
    let mut bytes = Vec::new();
    write_model(&options, &mut bytes, &|_, _| {}).unwrap();
    let file = GgufFile::from_bytes("tiny-v3.gguf".as_ref(), bytes).unwrap();
    let gguf = GgufModel::from_parts(vec![file]).unwrap();
    let model = Arc::new(GpuModel::load(shared_gpu().clone(), &gguf, None).unwrap());
    (gguf, model)
}

/// One generation; `host` forces the path that reads the logits back every token (asking for
/// log-probabilities does), `cancel_after` sets the cancel flag after that many text pieces.
fn generate(
    generator: &mut Generator<'_>,
    session: &mut GpuSession,
    prompt: &[u32],
    sampler: &SamplerConfig,
    max_tokens: usize,
    host: bool,
    cancel_after: Option<usize>,
) -> (Vec<u32>, StopReason, usize) {
    let options = GenerateOptions {
        max_tokens,
        sampler: sampler.clone(),
        logprobs: host.then_some(0),
        ..GenerateOptions::default()
    };
    let cancel = AtomicBool::new(false);
    let mut pieces = 0;
    let generation = generator
        .generate(session, prompt, &options, &cancel, &mut |_, _| {
            pieces += 1;
            if cancel_after.is_some_and(|n| pieces >= n) {
                cancel.store(true, Ordering::Relaxed);
            }
        })
        .unwrap();
    (
        generation.tokens,
        generation.stop_reason,
        generation.stats.reused_tokens,
    )
}

/// Pipelined decoding (greedy and sampled on the GPU) gives the tokens, stop reasons and cache
/// state of the path that reads the logits back and chooses on the host, for every way a reply
/// ends; and each pipelined token costs one submission and one readback.
#[test]
fn pipelined_decoding_equals_reading_logits_back() {
    let (gguf, model) = synth_model();
    let tokenizer = Tokenizer::from_gguf(&gguf).unwrap();
    let prompt: Vec<u32> = (0..12)
        .map(|i| (i * 211 + 7) % model.n_vocab as u32)
        .collect();
    let greedy = SamplerConfig::default();
    let sampled = SamplerConfig {
        temperature: 0.9,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.02,
        seed: 5,
        ..SamplerConfig::default()
    };
    // (sampler, max_tokens, context, cancel after)
    let cases = [
        (&greedy, 1, 64, None),
        (&greedy, 2, 64, None),
        (&greedy, 24, 64, None),
        (&sampled, 24, 64, None),
        (&greedy, 24, 16, None),
        (&sampled, 24, 17, None),
        (&greedy, 24, 64, Some(5)),
        (&sampled, 24, 64, Some(3)),
    ];
    for (config, max_tokens, n_ctx, cancel_after) in cases {
        let run = |host: bool| {
            let mut session = GpuSession::new(model.clone(), n_ctx, 8).unwrap();
            let mut generator = Generator::new(&tokenizer);
            let first = generate(
                &mut generator,
                &mut session,
                &prompt,
                config,
                max_tokens,
                host,
                cancel_after,
            );
            let n_past = session.n_past();
            let stats = session.stats;
            // The next turn: the reply and a new token, prefix reused from the cache.
            let mut next_prompt = prompt.clone();
            next_prompt.extend(&first.0);
            next_prompt.push(3);
            next_prompt.truncate(n_ctx - 2);
            let second = generate(
                &mut generator,
                &mut session,
                &next_prompt,
                config,
                4,
                host,
                None,
            );
            (first, n_past, stats, second)
        };
        let what = format!("{config:?} max {max_tokens} ctx {n_ctx} cancel {cancel_after:?}");
        let (pipe, pipe_past, stats, pipe_next) = run(false);
        let (host, host_past, _, host_next) = run(true);
        assert_eq!(pipe, host, "{what}: first reply");
        assert_eq!(pipe_past, host_past, "{what}: tokens in the cache");
        assert_eq!(pipe_next, host_next, "{what}: second reply");
        // One submission and one readback per token: the prompt's (8-token batches) and one
        // per generated token after the first.
        let n = pipe.0.len() as u64;
        let steps = prompt.len().div_ceil(8) as u64 + n.saturating_sub(1);
        assert!(
            stats.readbacks <= n && stats.submits <= steps + 1,
            "{what}: {stats:?} for {n} tokens"
        );
    }
}

/// The session's pipelining contract: the device's token feeds the next step, at most two
/// steps wait, and truncating forgets the waiting ones.
#[test]
fn submit_choice_feeds_the_device_token() {
    let (_, model) = synth_model();
    let prompt = [5u32, 9, 200, 7];
    let mut reference = GpuSession::new(model.clone(), 32, 8).unwrap();
    let mut want = vec![reference.forward_greedy(&prompt).unwrap()];
    for _ in 0..5 {
        want.push(reference.forward_greedy(&[want[want.len() - 1]]).unwrap());
    }
    let mut session = GpuSession::new(model, 32, 8).unwrap();
    let error = session
        .submit_choice(&[], &DeviceChoice::Greedy)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no token chosen"), "{error}");
    session
        .submit_choice(&prompt, &DeviceChoice::Greedy)
        .unwrap();
    session.submit_choice(&[], &DeviceChoice::Greedy).unwrap();
    let error = session
        .submit_choice(&[], &DeviceChoice::Greedy)
        .unwrap_err()
        .to_string();
    assert!(error.contains("waiting"), "{error}");
    let mut got = vec![session.wait_choice().unwrap()];
    for _ in 0..4 {
        session.submit_choice(&[], &DeviceChoice::Greedy).unwrap();
        got.push(session.wait_choice().unwrap());
    }
    got.push(session.wait_choice().unwrap());
    assert_eq!(got, want);
    assert_eq!(session.n_past(), prompt.len() + 5);
    assert!(session.wait_choice().is_err());

    session.submit_choice(&[], &DeviceChoice::Greedy).unwrap();
    session.truncate(prompt.len());
    assert_eq!(session.in_flight(), 0);
    assert!(session.submit_choice(&[], &DeviceChoice::Greedy).is_err());
    session
        .submit_choice(&[want[0]], &DeviceChoice::Greedy)
        .unwrap();
    assert_eq!(session.wait_choice().unwrap(), want[1]);
}
