//! `lanternfish logits --model F (--tokens IDS | --prompt TEXT [--chat]) --out X.npy
//! [--all-positions]`: the model's logits as a numpy file.

use std::path::PathBuf;

use anyhow::Result;

use super::load::{BackendArgs, load_model};
use super::prompt::{PromptArgs, prompt_tokens};
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
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn run(args: &LogitsArgs) -> Result<()> {
    let model = GgufModel::open(&crate::hub::resolve_model_path(&args.model)?)?;
    let tokenizer = Tokenizer::from_gguf(&model)?;
    let tokens = prompt_tokens(&model, &tokenizer, &args.prompt)?;
    let loaded = load_model(&model, &args.backend)?;
    let mut seq = args.backend.sequence(&loaded)?;
    let logits = if args.all_positions {
        seq.forward_all(&tokens)?
    } else {
        seq.forward_last(&tokens)?
    };
    let shape = if args.all_positions {
        let n_vocab = logits.len() / tokens.len();
        vec![tokens.len() as u64, n_vocab as u64]
    } else {
        vec![logits.len() as u64]
    };
    let values = &logits[..];
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
