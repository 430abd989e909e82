//! `lanternfish run --model F (--prompt TEXT [--chat] | --tokens IDS) -n N`: generate text,
//! streamed to stdout as it is decoded; `--json` prints one object at the end instead.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::prompt::{Backend, PromptArgs, prompt_tokens};
use crate::cpu::CpuModel;
use crate::gguf::GgufModel;
use crate::sampler::{Sampler, SamplerConfig};
use crate::tokenizer::Tokenizer;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The GGUF model.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    prompt: PromptArgs,
    /// Tokens to generate at most (generation also stops at an end-of-generation token).
    #[arg(short = 'n', long = "n-predict", default_value_t = 64)]
    n_predict: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object at the end (prompt and generated ids, text, timings).
    #[arg(long)]
    json: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
}

pub fn run(args: &RunArgs) -> Result<()> {
    let model = GgufModel::open(&args.model)?;
    let tokenizer = Tokenizer::from_gguf(&model)?;
    let prompt = prompt_tokens(&model, &tokenizer, &args.prompt)?;
    let Backend::Cpu = args.backend;
    let cpu = CpuModel::load(&model)?;
    let mut sampler = Sampler::new(SamplerConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        seed: args.seed,
        ..Default::default()
    });
    let mut session = cpu.session();
    let started = Instant::now();
    let logits = session.forward(&prompt)?;
    let prefill_s = started.elapsed().as_secs_f64();
    let n_vocab = logits.len() / prompt.len();
    let mut last = logits[logits.len() - n_vocab..].to_vec();
    let mut history = prompt.clone();
    let mut generated = Vec::new();
    let mut stream = tokenizer.stream();
    let mut stdout = std::io::stdout().lock();
    let decode_started = Instant::now();
    for _ in 0..args.n_predict {
        let token = sampler.sample(&last, &history);
        if tokenizer.is_eog(token) {
            break;
        }
        generated.push(token);
        history.push(token);
        let piece = stream.push(token);
        if !args.json {
            stdout.write_all(piece.as_bytes())?;
            stdout.flush()?;
        }
        if generated.len() < args.n_predict {
            last = session.step(token)?;
        }
    }
    let tail = stream.finish();
    let decode_s = decode_started.elapsed().as_secs_f64();
    if args.json {
        let out = json!({
            "prompt_tokens": prompt,
            "generated_tokens": generated,
            "text": tokenizer.decode(&generated),
            "prefill_tokens_per_s": prompt.len() as f64 / prefill_s.max(1e-9),
            "decode_tokens_per_s": generated.len() as f64 / decode_s.max(1e-9),
            "prefill_s": prefill_s,
            "decode_s": decode_s,
        });
        writeln!(stdout, "{out}")?;
    } else {
        writeln!(stdout, "{tail}")?;
        eprintln!(
            "[{} prompt tokens in {prefill_s:.2} s, {} generated at {:.2} tok/s]",
            prompt.len(),
            generated.len(),
            generated.len() as f64 / decode_s.max(1e-9)
        );
    }
    Ok(())
}
