//! `lanternfish logits --model F (--tokens IDS | --prompt TEXT [--chat]) --out X.npy
//! [--all-positions]`: the model's logits as a numpy file.

use std::path::PathBuf;

use anyhow::Result;

use super::prompt::{Backend, PromptArgs, prompt_tokens};
use crate::cpu::CpuModel;
use crate::gguf::GgufModel;
use crate::tokenizer::Tokenizer;

#[derive(Debug, clap::Args)]
pub struct LogitsArgs {
    /// The GGUF model.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    prompt: PromptArgs,
    /// Where to write the `.npy` (f32, shape `(n_vocab,)`, or `(n_tokens, n_vocab)` with
    /// --all-positions).
    #[arg(long)]
    out: PathBuf,
    /// Write the logits of every position, not only the last.
    #[arg(long)]
    all_positions: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
}

pub fn run(args: &LogitsArgs) -> Result<()> {
    let model = GgufModel::open(&args.model)?;
    let tokenizer = Tokenizer::from_gguf(&model)?;
    let tokens = prompt_tokens(&model, &tokenizer, &args.prompt)?;
    let Backend::Cpu = args.backend;
    let cpu = CpuModel::load(&model)?;
    let logits = cpu.session().forward(&tokens)?;
    let n_vocab = logits.len() / tokens.len();
    let (shape, values) = if args.all_positions {
        (vec![tokens.len() as u64, n_vocab as u64], &logits[..])
    } else {
        (vec![n_vocab as u64], &logits[logits.len() - n_vocab..])
    };
    super::write_atomically(&args.out, |out| {
        crate::npy::write_header(out, &shape)?;
        crate::npy::write_values(out, values)?;
        Ok(())
    })?;
    eprintln!(
        "wrote {} ({} tokens, shape {shape:?})",
        args.out.display(),
        tokens.len()
    );
    Ok(())
}
