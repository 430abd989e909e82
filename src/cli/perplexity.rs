//! `lanternfish perplexity --model F --file T [--ctx N] [--backend gpu|cpu] [--json]`: the model's
//! perplexity on a text, computed the way llama.cpp's `llama-perplexity` does, so the numbers can
//! be compared with it:
//!
//! - the whole text is tokenized once (with BOS when the file's `add_bos_token` says so);
//! - it is split into `len / N` non-overlapping chunks of `N` tokens (the tail is dropped), and at
//!   least two chunks are needed; `--chunks K` keeps only the first `K` (llama-perplexity's
//!   `--chunks`);
//! - every chunk is evaluated from an empty cache, its first token replaced by BOS when the model
//!   adds one;
//! - only the second half of each chunk is scored, so every scored token has at least `N/2` tokens
//!   of context: positions `N/2 .. N-1` predict tokens `N/2+1 .. N`, each with
//!   `nll = -log softmax(logits)[token]` accumulated in f64;
//! - `ppl = exp(mean nll)`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::load::{Backend, BackendArgs, load_model};
use crate::gguf::GgufModel;
use crate::gpu::engine::DEFAULT_BATCH;
use crate::tokenizer::Tokenizer;

#[derive(Debug, clap::Args)]
pub struct PerplexityArgs {
    /// The GGUF model.
    #[arg(long)]
    model: PathBuf,
    /// The text file to score (UTF-8).
    #[arg(long)]
    file: PathBuf,
    /// Tokens per chunk; the second half of every chunk is scored.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    #[arg(long, value_enum, default_value = "gpu")]
    backend: Backend,
    /// Score only the first K chunks (at least 2), as llama-perplexity's `--chunks`.
    #[arg(long, value_name = "K")]
    chunks: Option<usize>,
    /// How the GPU caches store keys and values (f16 or f32).
    #[arg(long, value_enum, default_value_t = crate::gpu::ops::cache_type::CacheType::default())]
    cache_type: crate::gpu::ops::cache_type::CacheType,
    /// Tokens per prefill batch on the GPU.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The result of a perplexity run.
#[derive(Debug, Clone, Copy)]
pub struct Perplexity {
    pub ppl: f64,
    pub nll_mean: f64,
    pub n_tokens_scored: usize,
    pub n_chunks: usize,
}

/// `-log softmax(logits)[token]`, in f64 with the max subtracted.
fn nll(logits: &[f32], token: u32) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let logit = logits[token as usize] as f64;
    sum.ln() - (logit - max)
}

pub fn run(args: &PerplexityArgs) -> Result<()> {
    let started = Instant::now();
    if args.ctx < 4 {
        bail!("--ctx must be at least 4 (it is {})", args.ctx);
    }
    if let Some(k) = args.chunks
        && k < 2
    {
        bail!("--chunks must be at least 2 (it is {k})");
    }
    let text = std::fs::read(&args.file)
        .with_context(|| format!("cannot read the text file {}", args.file.display()))?;
    let text = String::from_utf8(text)
        .map_err(|e| anyhow::anyhow!("{} is not UTF-8 text: {e}", args.file.display()))?;
    if text.trim().is_empty() {
        bail!(
            "{} is empty: perplexity needs a text of at least {} tokens (2 chunks of --ctx {})",
            args.file.display(),
            2 * args.ctx,
            args.ctx
        );
    }

    let model = GgufModel::open(&crate::hub::resolve_model_path(&args.model)?)?;
    let tokenizer = Tokenizer::from_gguf(&model)?;
    let add_bos = tokenizer.add_bos_token();
    let bos = if add_bos { tokenizer.bos() } else { None };
    // llama-perplexity tokenizes with special-token parsing on (common_tokenize's default).
    let tokens = tokenizer.encode_with(&text, add_bos, true)?;
    let n_ctx = args.ctx;
    if tokens.len() < 2 * n_ctx {
        bail!(
            "{} has {} tokens; perplexity with --ctx {n_ctx} needs at least {} (2 chunks of {n_ctx} \
             tokens): use a longer text or a smaller --ctx",
            args.file.display(),
            tokens.len(),
            2 * n_ctx
        );
    }
    let n_chunks = match args.chunks {
        Some(k) => k.min(tokens.len() / n_ctx),
        None => tokens.len() / n_ctx,
    };

    let backend = BackendArgs {
        backend: args.backend,
        ctx: crate::engine::ContextSize::Tokens(n_ctx),
        batch: args.batch,
        cache_type: args.cache_type,
        gpu_budget: None,
        expert_cache: None,
        prefetch: Default::default(),
        trace_experts: None,
    };
    let loaded = load_model(&model, &backend)?;
    let mut seq = backend.sequence(&loaded)?;
    tracing::info!(
        "perplexity on {}: {} tokens, {n_chunks} chunks of {n_ctx}",
        loaded.device(),
        tokens.len()
    );

    let progress = indicatif::ProgressBar::new(n_chunks as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} chunk {pos}/{len} ({eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let first = n_ctx / 2;
    let mut nll_sum = 0f64;
    let mut count = 0usize;
    let mut chunk = vec![0u32; n_ctx];
    for i in 0..n_chunks {
        let start = i * n_ctx;
        chunk.copy_from_slice(&tokens[start..start + n_ctx]);
        if let Some(bos) = bos {
            chunk[0] = bos;
        }
        seq.truncate(0);
        let logits = seq
            .forward_all(&chunk)
            .with_context(|| format!("evaluating chunk {} of {n_chunks}", i + 1))?;
        let n_vocab = logits.len() / n_ctx;
        for pos in first..n_ctx - 1 {
            // The target is the text's token, never the BOS substituted at position 0.
            let target = tokens[start + pos + 1];
            let value = nll(&logits[pos * n_vocab..(pos + 1) * n_vocab], target);
            if !value.is_finite() {
                bail!(
                    "chunk {}, position {pos}: the log-probability of token {target} is not finite",
                    i + 1
                );
            }
            nll_sum += value;
            count += 1;
        }
        progress.set_message(format!("ppl {:.4}", (nll_sum / count as f64).exp()));
        progress.inc(1);
    }
    progress.finish_and_clear();
    let nll_mean = nll_sum / count as f64;
    let result = Perplexity {
        ppl: nll_mean.exp(),
        nll_mean,
        n_tokens_scored: count,
        n_chunks,
    };
    let seconds = started.elapsed().as_secs_f64();
    let backend_name = match args.backend {
        Backend::Gpu => "gpu",
        Backend::Cpu => "cpu",
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let out = json!({
            "ppl": result.ppl,
            "nll_mean": result.nll_mean,
            "n_tokens_scored": result.n_tokens_scored,
            "n_chunks": result.n_chunks,
            "ctx": n_ctx,
            "backend": backend_name,
            "seconds": seconds,
        });
        writeln!(stdout, "{}", serde_json::to_string(&out)?)?;
    } else {
        writeln!(
            stdout,
            "perplexity {:.4} (mean nll {:.6}) over {} tokens scored in {} chunks of {n_ctx} ({}, {seconds:.1} s)",
            result.ppl,
            result.nll_mean,
            result.n_tokens_scored,
            result.n_chunks,
            loaded.device()
        )?;
    }
    Ok(())
}
