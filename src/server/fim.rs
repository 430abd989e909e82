//! Fill-in-the-middle prompts for `/v1/completions` with a `suffix`, which is how editors ask
//! for an inline completion at the cursor. The tokens are looked up by text in the model's
//! vocabulary (never hard-coded ids, spec §7.3):
//!
//! - DeepSeek-Coder (V1, V2): `<｜fim▁begin｜>PREFIX<｜fim▁hole｜>SUFFIX<｜fim▁end｜>`, the model
//!   writes the middle;
//! - Qwen2.5-Coder / StarCoder style: `<|fim_prefix|>PREFIX<|fim_suffix|>SUFFIX<|fim_middle|>`.
//!
//! The prefix and suffix are encoded without special-token parsing, so code that happens to
//! contain a marker's text cannot inject one.

use crate::Result;
use crate::tokenizer::Tokenizer;

/// The three FIM token ids of a model, in prefix-suffix-middle order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FimTokens {
    /// Before the prefix (`<｜fim▁begin｜>`, `<|fim_prefix|>`).
    pub prefix: u32,
    /// Between prefix and suffix (`<｜fim▁hole｜>`, `<|fim_suffix|>`).
    pub suffix: u32,
    /// After the suffix; the model writes the middle next (`<｜fim▁end｜>`, `<|fim_middle|>`).
    pub middle: u32,
}

/// Marker texts per model family, in prefix, suffix, middle order.
const FAMILIES: [[&str; 3]; 3] = [
    ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
    ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
    ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
];

impl FimTokens {
    /// The model's FIM tokens, or `None` if its vocabulary has no complete set.
    pub fn find(tokenizer: &Tokenizer) -> Option<FimTokens> {
        FAMILIES.iter().find_map(|[p, s, m]| {
            Some(FimTokens {
                prefix: tokenizer.token_id(p)?,
                suffix: tokenizer.token_id(s)?,
                middle: tokenizer.token_id(m)?,
            })
        })
    }

    /// The prompt tokens for filling in between `prefix` and `suffix` (BOS first when the
    /// model adds one).
    pub fn prompt(&self, tokenizer: &Tokenizer, prefix: &str, suffix: &str) -> Result<Vec<u32>> {
        let mut tokens = Vec::new();
        if tokenizer.add_bos_token()
            && let Some(bos) = tokenizer.bos()
        {
            tokens.push(bos);
        }
        tokens.push(self.prefix);
        tokens.extend(tokenizer.encode_with(prefix, false, false)?);
        tokens.push(self.suffix);
        tokens.extend(tokenizer.encode_with(suffix, false, false)?);
        tokens.push(self.middle);
        Ok(tokens)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::gguf::GgufModel;
    use crate::synth::{SynthConfig, tokenizer_gguf};

    fn tokenizer() -> Tokenizer {
        let config = SynthConfig::preset("tiny-v3").unwrap();
        let model = GgufModel::from_parts(vec![tokenizer_gguf(&config).unwrap()]).unwrap();
        Tokenizer::from_gguf(&model).unwrap()
    }

    #[test]
    fn deepseek_fim_prompt() {
        let tokenizer = tokenizer();
        let fim = FimTokens::find(&tokenizer).unwrap();
        assert_eq!(Some(fim.prefix), tokenizer.token_id("<｜fim▁begin｜>"));
        let tokens = fim.prompt(&tokenizer, "a = ", "\nb = a").unwrap();
        let text = tokenizer.decode(&tokens);
        assert!(
            text.ends_with("<｜fim▁begin｜>a = <｜fim▁hole｜>\nb = a<｜fim▁end｜>"),
            "{text}"
        );
        // Marker text inside the code stays text, never a special token.
        let injected = fim.prompt(&tokenizer, "<｜fim▁end｜>", "").unwrap();
        assert_eq!(injected.iter().filter(|&&t| t == fim.middle).count(), 1);
    }
}
