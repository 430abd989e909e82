//! Reading the tokenizer metadata of a GGUF file (spec §7.1): tokens, token types, merges, the
//! special token ids and the end-of-generation set, with llama.cpp's load-time rules
//! (`llama_vocab::impl::load` in `src/llama-vocab.cpp`).

use std::collections::BTreeSet;

use crate::gguf::{GgufModel, ValueType};
use crate::{Error, Result};

pub const KEY_MODEL: &str = "tokenizer.ggml.model";
pub const KEY_PRE: &str = "tokenizer.ggml.pre";
pub const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
pub const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
pub const KEY_MERGES: &str = "tokenizer.ggml.merges";
pub const KEY_BOS: &str = "tokenizer.ggml.bos_token_id";
pub const KEY_EOS: &str = "tokenizer.ggml.eos_token_id";
pub const KEY_EOT: &str = "tokenizer.ggml.eot_token_id";
pub const KEY_EOM: &str = "tokenizer.ggml.eom_token_id";
pub const KEY_PAD: &str = "tokenizer.ggml.padding_token_id";
pub const KEY_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
pub const KEY_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
pub const KEY_CHAT_TEMPLATE: &str = "tokenizer.chat_template";
const KEY_FIM_PAD: &str = "tokenizer.ggml.fim_pad_token_id";
const KEY_FIM_REP: &str = "tokenizer.ggml.fim_rep_token_id";
const KEY_FIM_SEP: &str = "tokenizer.ggml.fim_sep_token_id";

/// `tokenizer.ggml.token_type` values (`llama_token_type` in llama.cpp).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    Undefined,
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    /// The type for a stored value; values outside 1..=6 are `Undefined`, as in llama.cpp.
    pub fn from_gguf(value: i64) -> TokenType {
        match value {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }

    /// The stored value.
    pub fn gguf_id(self) -> i32 {
        match self {
            TokenType::Undefined => 0,
            TokenType::Normal => 1,
            TokenType::Unknown => 2,
            TokenType::Control => 3,
            TokenType::UserDefined => 4,
            TokenType::Unused => 5,
            TokenType::Byte => 6,
        }
    }

    /// Matched as one piece of text before pre-tokenization (llama.cpp's special-token cache).
    pub fn is_added(self) -> bool {
        matches!(
            self,
            TokenType::Control | TokenType::UserDefined | TokenType::Unknown
        )
    }
}

// Texts llama.cpp takes as end-of-turn when `eot_token_id` is absent, and as end of generation.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
];
const EOG_EXTRA_TEXTS: &[&str] = &["<|eom_id|>"];
// Qwen's repository/file FIM tokens (pad, repo, file separator) also end generation.
const FIM_EOG_TEXTS: &[&str] = &[
    "<|fim_pad|>",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<|file_sep|>",
];
// FIM markers llama.cpp promotes to CONTROL when a file stores them as NORMAL (old DeepSeek-V2
// conversions do, spec §7.2); they are not end-of-generation tokens.
const FIM_TEXTS: &[&str] = &[
    "<｜fim▁begin｜>",
    "<｜fim▁hole｜>",
    "<｜fim▁end｜>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
];

/// The tokenizer metadata of one file, checked and with llama.cpp's fix-ups applied.
#[derive(Debug)]
pub(crate) struct Vocab {
    pub tokens: Vec<String>,
    pub types: Vec<TokenType>,
    pub merges: Vec<(String, String)>,
    pub pre: String,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: bool,
    pub eog: BTreeSet<u32>,
}

fn meta_err(key: &str, what: impl Into<String>) -> Error {
    Error::Metadata {
        key: key.to_owned(),
        what: what.into(),
    }
}

fn string_key<'a>(model: &'a GgufModel, key: &str) -> Result<Option<&'a str>> {
    match model.get(key) {
        None => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or_else(|| {
            meta_err(
                key,
                format!("expected a string, found {}", v.value_type().name()),
            )
        }),
    }
}

fn string_array(model: &GgufModel, key: &str) -> Result<Vec<String>> {
    let value = model.get(key).ok_or_else(|| meta_err(key, "missing"))?;
    let array = value
        .as_array()
        .filter(|a| a.elem_type() == ValueType::String)
        .ok_or_else(|| meta_err(key, format!("expected an array of strings, found {value}")))?;
    let out: Vec<String> = array.strings().map(str::to_owned).collect();
    if out.len() != array.len() {
        return Err(meta_err(key, "array could not be read whole"));
    }
    Ok(out)
}

/// A token id key: absent is `None`; present it must name a token.
fn token_id(model: &GgufModel, key: &str, n_tokens: usize) -> Result<Option<u32>> {
    let Some(value) = model.get(key) else {
        return Ok(None);
    };
    let id = value
        .as_u64()
        .ok_or_else(|| meta_err(key, format!("expected a token id, found {value}")))?;
    if id >= n_tokens as u64 {
        return Err(meta_err(
            key,
            format!("token id {id} is outside the vocabulary of {n_tokens}"),
        ));
    }
    Ok(Some(id as u32))
}

fn bool_key(model: &GgufModel, key: &str) -> Result<Option<bool>> {
    match model.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| meta_err(key, format!("expected a bool, found {v}"))),
    }
}

fn token_types(model: &GgufModel, n_tokens: usize) -> Result<Vec<TokenType>> {
    let Some(value) = model.get(KEY_TOKEN_TYPE) else {
        // llama.cpp treats every token as NORMAL when the key is absent.
        return Ok(vec![TokenType::Normal; n_tokens]);
    };
    let array = value
        .as_array()
        .ok_or_else(|| meta_err(KEY_TOKEN_TYPE, format!("expected an array, found {value}")))?;
    if array.len() != n_tokens {
        return Err(meta_err(
            KEY_TOKEN_TYPE,
            format!("{} entries for {n_tokens} tokens", array.len()),
        ));
    }
    array
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_i64().map(TokenType::from_gguf).ok_or_else(|| {
                meta_err(KEY_TOKEN_TYPE, format!("entry {i} is {v}, not an integer"))
            })
        })
        .collect()
}

/// Splits a merge rule `"left right"` at the first space after the first byte, as llama.cpp
/// does (a left part may itself be a space-like stand-in, never a plain space).
fn split_merge(i: usize, rule: &str) -> Result<(String, String)> {
    let at = rule
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == ' ')
        .map(|(at, _)| at)
        .ok_or_else(|| meta_err(KEY_MERGES, format!("merge {i} {rule:?} has no space")))?;
    Ok((rule[..at].to_owned(), rule[at + 1..].to_owned()))
}

impl Vocab {
    pub fn from_gguf(model: &GgufModel) -> Result<Vocab> {
        let kind = string_key(model, KEY_MODEL)?.ok_or_else(|| meta_err(KEY_MODEL, "missing"))?;
        if kind != "gpt2" {
            return Err(Error::Tokenizer {
                what: format!(
                    "{KEY_MODEL} = {kind:?} is not supported (only byte-level BPE, \"gpt2\")"
                ),
            });
        }
        let pre = string_key(model, KEY_PRE)?
            .ok_or_else(|| meta_err(KEY_PRE, "missing: the pre-tokenizer cannot be chosen"))?
            .to_owned();
        let mut tokens = string_array(model, KEY_TOKENS)?;
        let n = tokens.len();
        if n == 0 || n > u32::MAX as usize {
            return Err(meta_err(KEY_TOKENS, format!("{n} tokens")));
        }
        for (i, token) in tokens.iter_mut().enumerate() {
            if token.is_empty() {
                // llama.cpp's name for an empty entry, so that every id has a distinct text.
                *token = format!("[EMPTY_{i}]");
            }
        }
        let mut types = token_types(model, n)?;
        let merges = string_array(model, KEY_MERGES)?
            .iter()
            .enumerate()
            .map(|(i, rule)| split_merge(i, rule))
            .collect::<Result<Vec<_>>>()?;

        let find = |texts: &[&str]| -> Option<u32> {
            let i = tokens.iter().position(|t| texts.contains(&t.as_str()))?;
            Some(i as u32)
        };
        let bos = token_id(model, KEY_BOS, n)?;
        let eos = token_id(model, KEY_EOS, n)?;
        let eot = match token_id(model, KEY_EOT, n)? {
            Some(id) => Some(id),
            None => find(EOT_TEXTS),
        };
        let eom = match token_id(model, KEY_EOM, n)? {
            Some(id) => Some(id),
            None => find(EOG_EXTRA_TEXTS),
        };

        let mut eog = BTreeSet::new();
        for key in [KEY_FIM_PAD, KEY_FIM_REP, KEY_FIM_SEP] {
            eog.extend(token_id(model, key, n)?);
        }
        for (i, token) in tokens.iter().enumerate() {
            let text = token.as_str();
            let is_eog = EOT_TEXTS.contains(&text)
                || EOG_EXTRA_TEXTS.contains(&text)
                || FIM_EOG_TEXTS.contains(&text);
            if is_eog {
                eog.insert(i as u32);
            }
            // llama.cpp overrides the type of these control-looking tokens to CONTROL.
            if (is_eog || FIM_TEXTS.contains(&text)) && types[i] != TokenType::Control {
                types[i] = TokenType::Control;
            }
        }
        eog.extend(eos);
        eog.extend(eot);
        eog.extend(eom);

        Ok(Vocab {
            tokens,
            types,
            merges,
            pre,
            bos,
            eos,
            eot,
            add_bos: bool_key(model, KEY_ADD_BOS)?,
            add_eos: bool_key(model, KEY_ADD_EOS)?.unwrap_or(false),
            eog,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn merges_split_at_the_first_inner_space() {
        assert_eq!(split_merge(0, "Ġ t").unwrap(), ("Ġ".into(), "t".into()));
        assert_eq!(split_merge(0, "Ġt he").unwrap(), ("Ġt".into(), "he".into()));
        assert!(
            split_merge(3, "abc")
                .unwrap_err()
                .to_string()
                .contains("merge 3")
        );
    }

    #[test]
    fn token_type_round_trip() {
        for id in 0..=6 {
            assert_eq!(TokenType::from_gguf(id.into()).gguf_id(), id);
        }
        assert_eq!(TokenType::from_gguf(42), TokenType::Undefined);
    }
}
