//! `lanternfish run --model F (--prompt TEXT [--chat] | --tokens IDS) -n N`: generate text,
//! streamed to stdout as it is decoded (a model's `<think>` reasoning dimmed on a terminal);
//! `--json` prints one object at the end instead.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use serde_json::json;

use super::load::{BackendArgs, load_model};
use super::prompt::{PromptArgs, prompt_tokens};
use crate::engine::{Channel, GenerateOptions, Generator, prompt_opens_thinking};
use crate::gguf::GgufModel;
use crate::sampler::SamplerConfig;
use crate::tokenizer::Tokenizer;

/// Sampling options shared by `run` and `chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.0)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0: all). With 1 to 256 and no repeat penalty the GPU
    /// samples, so only the token comes back.
    #[arg(long, default_value_t = crate::sampler::DEFAULT_TOP_K)]
    pub top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed: the same seed, prompt and settings give the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn config(&self) -> SamplerConfig {
        SamplerConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            seed: self.seed,
            ..Default::default()
        }
    }
}

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
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Print one JSON object at the end (prompt and generated ids, text, timings).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

/// ANSI dim on, and reset.
pub const DIM: &str = "\x1b[2m";
pub const RESET: &str = "\x1b[0m";

pub fn run(args: &RunArgs) -> Result<()> {
    let model = GgufModel::open(&crate::hub::resolve_model_path(&args.model)?)?;
    let tokenizer = Tokenizer::from_gguf(&model)?;
    let prompt = prompt_tokens(&model, &tokenizer, &args.prompt)?;
    let loaded = load_model(&model, &args.backend)?;
    let mut seq = args.backend.sequence(&loaded)?;
    let options = GenerateOptions {
        max_tokens: args.n_predict,
        sampler: args.sampling.config(),
        stop: Vec::new(),
        starts_thinking: prompt_opens_thinking(&tokenizer.decode(&prompt)),
        logprobs: None,
    };
    let mut stdout = std::io::stdout().lock();
    let dim = stdout.is_terminal();
    let mut channel = Channel::Answer;
    let mut write_error = None;
    let cancel = AtomicBool::new(false);
    let mut generator = Generator::new(&tokenizer);
    let generation =
        generator.generate(&mut *seq, &prompt, &options, &cancel, &mut |c, text| {
            if args.json || write_error.is_some() {
                return;
            }
            let mut out = String::new();
            if c != channel && dim {
                out.push_str(if c == Channel::Thinking { DIM } else { RESET });
            }
            if c != channel && c == Channel::Answer {
                out.push_str("\n\n");
            }
            channel = c;
            out.push_str(text);
            if let Err(e) = stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                write_error = Some(e);
            }
        })?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let stats = &generation.stats;
    if args.json {
        let out = json!({
            "prompt_tokens": prompt,
            "generated_tokens": generation.tokens,
            "text": tokenizer.decode(&generation.tokens),
            "answer": generation.answer,
            "thinking": generation.thinking,
            "stop_reason": generation.stop_reason,
            "prefill_tokens_per_s": stats.prefill_tok_s(),
            "decode_tokens_per_s": stats.decode_tok_s(),
            "prefill_s": stats.prefill_s,
            "decode_s": stats.decode_s,
            "device": loaded.device(),
        });
        writeln!(stdout, "{out}")?;
    } else {
        if dim && channel == Channel::Thinking {
            write!(stdout, "{RESET}")?;
        }
        writeln!(stdout)?;
        eprintln!(
            "[{} prompt tokens at {:.1} tok/s, {} generated at {:.2} tok/s on {}]",
            prompt.len(),
            stats.prefill_tok_s(),
            stats.generated_tokens,
            stats.decode_tok_s(),
            loaded.device()
        );
    }
    Ok(())
}
