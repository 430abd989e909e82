//! The input of `logits` and `run`: token ids given directly, a raw prompt, or a prompt wrapped in
//! the model's chat template as one user message.

use anyhow::{Result, bail};

use crate::chat_template::{ChatMessage, ChatTemplate, RenderOptions};
use crate::gguf::GgufModel;
use crate::tokenizer::Tokenizer;

#[derive(Debug, Clone, clap::Args)]
pub struct PromptArgs {
    /// The prompt text.
    #[arg(long, conflicts_with = "tokens")]
    pub prompt: Option<String>,
    /// Wrap the prompt in the model's chat template as a user message (with the assistant header).
    #[arg(long, requires = "prompt")]
    pub chat: bool,
    /// Comma-separated token ids instead of a prompt, e.g. 0,100,200.
    #[arg(long, value_delimiter = ',')]
    pub tokens: Option<Vec<u32>>,
}

/// The prompt's token ids, checked against the vocabulary.
pub fn prompt_tokens(
    model: &GgufModel,
    tokenizer: &Tokenizer,
    args: &PromptArgs,
) -> Result<Vec<u32>> {
    let ids = match (&args.tokens, &args.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(text)) if args.chat => {
            let template = ChatTemplate::from_gguf(model)?;
            let options = RenderOptions {
                add_generation_prompt: true,
                ..Default::default()
            };
            let rendered = template.render(&[ChatMessage::user(text.as_str())], &options)?;
            // The rendered text carries the BOS token itself when the template writes it.
            tokenizer.encode(&rendered, tokenizer.add_bos_token())?
        }
        (None, Some(text)) => tokenizer.encode(text, tokenizer.add_bos_token())?,
        (None, None) => bail!("give --prompt TEXT or --tokens IDS"),
    };
    if ids.is_empty() {
        bail!("the prompt has no tokens");
    }
    if let Some(bad) = ids
        .iter()
        .find(|&&id| id as usize >= tokenizer.vocab_size())
    {
        bail!(
            "token id {bad} is outside the vocabulary of {} tokens",
            tokenizer.vocab_size()
        );
    }
    Ok(ids)
}
