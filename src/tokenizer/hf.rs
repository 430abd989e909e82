//! Hugging Face `tokenizer.json` (+ `tokenizer_config.json`) → GGUF tokenizer metadata, following
//! the rules of llama.cpp's `convert_hf_to_gguf.py` (`get_vocab_base`, `does_token_look_special`,
//! `gguf.SpecialVocab`) for byte-level BPE models. Used to make GGUF metadata for tokenizers that
//! ship without a GGUF (DeepSeek-V4) and to check our reading against real conversions.
//!
//! Token types: an id with no entry becomes `[PAD<id>]`, UNUSED; an added token is CONTROL when
//! it is `special` or looks special (`<|…|>`, `<｜…｜>`, `<pad>`, `<mask>`, `<unused…>`), else
//! USER_DEFINED with `▁` written as a space; every other token is NORMAL. The converter's
//! `decode(encode(token))` round trip for non-normalized added tokens is not repeated: it is the
//! identity when the normalizer is empty, as in all DeepSeek tokenizers.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::pre::{Step, TABLE};
use super::vocab::{
    KEY_ADD_BOS, KEY_ADD_EOS, KEY_BOS, KEY_CHAT_TEMPLATE, KEY_EOS, KEY_MERGES, KEY_MODEL, KEY_PAD,
    KEY_PRE, KEY_TOKEN_TYPE, KEY_TOKENS, TokenType,
};
use crate::gguf::{MetaValue, ValueType};
use crate::{Error, Result};

fn err(what: impl Into<String>) -> Error {
    Error::Tokenizer {
        what: format!("tokenizer.json: {}", what.into()),
    }
}

/// `does_token_look_special` of llama.cpp's converter.
fn looks_special(text: &str) -> bool {
    matches!(text, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (text.starts_with("<|") && text.ends_with("|>"))
        || (text.starts_with("<｜") && text.ends_with("｜>"))
        || (text.starts_with("<unused") && text.ends_with('>'))
}

/// A merge rule as GGUF stores it: `"left right"` (tokenizer.json has strings or pairs).
fn merge_rule(i: usize, m: &Json) -> Result<String> {
    match m {
        Json::String(s) => Ok(s.clone()),
        Json::Array(pair) => match pair.as_slice() {
            [Json::String(a), Json::String(b)] => Ok(format!("{a} {b}")),
            _ => Err(err(format!("merge {i} is not a pair of strings"))),
        },
        _ => Err(err(format!("merge {i} is neither a string nor a pair"))),
    }
}

/// The content of a special-token entry of tokenizer_config.json (a string or an AddedToken).
fn config_token(config: &Json, name: &str) -> Option<String> {
    match config.get(name)? {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// GGUF metadata for a byte-level BPE `tokenizer.json`, with `pre` as `tokenizer.ggml.pre` and
/// `vocab_size` rows (default: the highest id + 1; model configs often pad beyond it).
/// `config` (tokenizer_config.json) supplies BOS/EOS/PAD, `add_bos/eos_token` and the chat
/// template. The pairs are ready for [`crate::gguf::GgufWriter::set`].
pub fn gguf_metadata(
    tokenizer: &Json,
    config: Option<&Json>,
    pre: &str,
    vocab_size: Option<usize>,
) -> Result<Vec<(String, MetaValue)>> {
    let model = tokenizer.get("model").ok_or_else(|| err("no model"))?;
    if model.get("type").and_then(Json::as_str) != Some("BPE") {
        return Err(err("model is not BPE"));
    }
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| err("model.vocab is not an object"))?;
    let merges = model
        .get("merges")
        .and_then(Json::as_array)
        .ok_or_else(|| err("model.merges is not an array"))?;

    // id → (text, type); added tokens override the model's entry for the same id.
    let mut rows: HashMap<u64, (String, TokenType)> = HashMap::with_capacity(vocab.len());
    for (text, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| err(format!("vocab id of {text:?}")))?;
        rows.insert(id, (text.clone(), TokenType::Normal));
    }
    let added = match tokenizer.get("added_tokens") {
        Some(a) => a
            .as_array()
            .ok_or_else(|| err("added_tokens is not an array"))?
            .as_slice(),
        None => &[],
    };
    for token in added {
        let id = token.get("id").and_then(Json::as_u64);
        let text = token.get("content").and_then(Json::as_str);
        let (Some(id), Some(text)) = (id, text) else {
            return Err(err(format!("added token {token} has no id or content")));
        };
        let special = token
            .get("special")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let row = if special || looks_special(text) {
            (text.to_owned(), TokenType::Control)
        } else {
            (text.replace('▁', " "), TokenType::UserDefined)
        };
        rows.insert(id, row);
    }

    let n = match vocab_size {
        Some(n) => n,
        None => rows.keys().max().map_or(0, |&m| m as usize + 1),
    };
    if let Some(&beyond) = rows.keys().find(|&&id| id >= n as u64) {
        return Err(err(format!("token id {beyond} is beyond vocab_size {n}")));
    }
    let mut texts = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for id in 0..n as u64 {
        let (text, ty) = rows
            .remove(&id)
            .unwrap_or_else(|| (format!("[PAD{id}]"), TokenType::Unused));
        texts.push(MetaValue::String(text));
        types.push(MetaValue::I32(ty.gguf_id()));
    }
    let rules = merges
        .iter()
        .enumerate()
        .map(|(i, m)| merge_rule(i, m).map(MetaValue::String))
        .collect::<Result<Vec<_>>>()?;

    // The special ids are looked up by text before the token list moves into the metadata.
    let special = config
        .map(|c| config_metadata(c, &texts))
        .unwrap_or_default();
    let mut out = vec![
        (KEY_MODEL.to_owned(), MetaValue::String("gpt2".into())),
        (KEY_PRE.to_owned(), MetaValue::String(pre.into())),
        (
            KEY_TOKENS.to_owned(),
            MetaValue::Array(ValueType::String, texts),
        ),
        (
            KEY_TOKEN_TYPE.to_owned(),
            MetaValue::Array(ValueType::I32, types),
        ),
        (
            KEY_MERGES.to_owned(),
            MetaValue::Array(ValueType::String, rules),
        ),
    ];
    out.extend(special);
    Ok(out)
}

/// Special ids, flags and template from tokenizer_config.json, as `gguf.SpecialVocab` writes.
fn config_metadata(config: &Json, texts: &[MetaValue]) -> Vec<(String, MetaValue)> {
    let id_of = |content: &str| {
        texts
            .iter()
            .position(|t| matches!(t, MetaValue::String(s) if s == content))
    };
    let mut out = Vec::new();
    for (name, key) in [
        ("bos_token", KEY_BOS),
        ("eos_token", KEY_EOS),
        ("pad_token", KEY_PAD),
    ] {
        if let Some(id) = config_token(config, name).and_then(|c| id_of(&c)) {
            out.push((key.to_owned(), MetaValue::U32(id as u32)));
        }
    }
    for (name, key) in [
        ("add_bos_token", KEY_ADD_BOS),
        ("add_eos_token", KEY_ADD_EOS),
    ] {
        if let Some(b) = config.get(name).and_then(Json::as_bool) {
            out.push((key.to_owned(), MetaValue::Bool(b)));
        }
    }
    if let Some(t) = config.get("chat_template").and_then(Json::as_str) {
        out.push((
            KEY_CHAT_TEMPLATE.to_owned(),
            MetaValue::String(t.to_owned()),
        ));
    }
    out
}

/// Replaces `\x{HEX}` escapes by the characters, so table regexes compare with the literal
/// characters tokenizer.json files use.
fn unescape_hex(regex: &str) -> String {
    let mut out = String::with_capacity(regex.len());
    let mut rest = regex;
    while let Some(at) = rest.find("\\x{") {
        let after = &rest[at + 3..];
        let decoded = after.find('}').and_then(|end| {
            let c = u32::from_str_radix(&after[..end], 16)
                .ok()
                .and_then(char::from_u32)?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push_str(&rest[..at]);
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[..at + 3]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A pre-tokenizer step in comparable form: regexes with `\x{…}` escapes resolved.
#[derive(Debug, PartialEq)]
enum Kind {
    Split(String),
    Digits,
    Gpt2Regex,
}

fn table_kinds(steps: &[Step]) -> Vec<Kind> {
    steps
        .iter()
        .map(|s| match s {
            Step::Split(r) => Kind::Split(unescape_hex(r)),
            Step::Digits => Kind::Digits,
            Step::Gpt2Regex => Kind::Gpt2Regex,
        })
        .collect()
}

/// One step of a tokenizer.json pre-tokenizer: `Some(None)` for the final byte mapping without
/// regex (implied by every table entry), `None` for a step the table cannot express.
fn json_kind(step: &Json) -> Option<Option<Kind>> {
    match step.get("type")?.as_str()? {
        "Split" => {
            let regex = step.get("pattern")?.get("Regex")?.as_str()?;
            let isolated = step.get("behavior")?.as_str()? == "Isolated";
            let inverted = step.get("invert").and_then(Json::as_bool).unwrap_or(false);
            (isolated && !inverted).then(|| Some(Kind::Split(regex.to_owned())))
        }
        "Digits" => step
            .get("individual_digits")?
            .as_bool()?
            .then_some(Some(Kind::Digits)),
        "ByteLevel" => {
            let prefix = step
                .get("add_prefix_space")
                .and_then(Json::as_bool)
                .unwrap_or(true);
            let regex = step
                .get("use_regex")
                .and_then(Json::as_bool)
                .unwrap_or(true);
            (!prefix).then_some(regex.then_some(Kind::Gpt2Regex))
        }
        _ => None,
    }
}

/// Whether the normalizer is NFC (`Some(true)`), absent or empty (`Some(false)`), or something
/// else (`None`).
fn json_nfc(tokenizer: &Json) -> Option<bool> {
    let Some(n) = tokenizer.get("normalizer").filter(|n| !n.is_null()) else {
        return Some(false);
    };
    match n.get("type")?.as_str()? {
        "NFC" => Some(true),
        "Sequence" => n
            .get("normalizers")?
            .as_array()?
            .is_empty()
            .then_some(false),
        _ => None,
    }
}

/// The `tokenizer.ggml.pre` value whose pre-tokenizer (and normalizer) is exactly the one in
/// `tokenizer` (DeepSeek-V4's tokenizer.json gives "deepseek-v3"), or `None` when no table
/// entry matches. llama.cpp decides by hashing a test tokenization instead; a structural match
/// needs no hash list. Families with identical pre-tokenizers give the first one's name.
pub fn detect_pre(tokenizer: &Json) -> Option<&'static str> {
    let pre = tokenizer.get("pre_tokenizer")?;
    let steps: Vec<&Json> = match pre.get("type")?.as_str()? {
        "Sequence" => pre.get("pretokenizers")?.as_array()?.iter().collect(),
        _ => vec![pre],
    };
    let mut kinds = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        match json_kind(step)? {
            Some(kind) => kinds.push(kind),
            // The plain byte mapping is only allowed as the last step.
            None if i + 1 == steps.len() => {}
            None => return None,
        }
    }
    let nfc = json_nfc(tokenizer)?;
    TABLE
        .iter()
        .find(|spec| spec.nfc == nfc && table_kinds(spec.steps) == kinds)
        .map(|spec| spec.names[0])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn looks_special_like_the_converter() {
        assert!(looks_special("<｜User｜>"));
        assert!(looks_special("<|EOT|>"));
        assert!(!looks_special("<think>"));
        assert!(!looks_special("｜DSML｜"));
    }

    #[test]
    fn unescape() {
        assert_eq!(unescape_hex("[\\x{4E00}-\\x{9FA5}]+"), "[一-龥]+");
        assert_eq!(unescape_hex("a\\x{zz}b"), "a\\x{zz}b");
    }

    #[test]
    fn small_conversion() {
        let json: Json = serde_json::from_str(
            r#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
                "merges": ["a b"]},
                "added_tokens": [
                  {"id": 3, "content": "<｜x｜>", "special": false},
                  {"id": 5, "content": "<t▁u>", "special": false}]}"#,
        )
        .unwrap();
        let config: Json = serde_json::from_str(
            r#"{"bos_token": {"content": "<｜x｜>"}, "eos_token": "b", "add_bos_token": true}"#,
        )
        .unwrap();
        let meta: HashMap<String, MetaValue> = gguf_metadata(&json, Some(&config), "gpt-2", None)
            .unwrap()
            .into_iter()
            .collect();
        let strings = |v: &MetaValue| match v {
            MetaValue::Array(_, items) => items
                .iter()
                .map(|i| match i {
                    MetaValue::String(s) => s.clone(),
                    MetaValue::I32(t) => t.to_string(),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>(),
            other => vec![format!("{other:?}")],
        };
        assert_eq!(
            strings(&meta[KEY_TOKENS]),
            ["a", "b", "ab", "<｜x｜>", "[PAD4]", "<t u>"]
        );
        assert_eq!(
            strings(&meta[KEY_TOKEN_TYPE]),
            ["1", "1", "1", "3", "5", "4"]
        );
        assert_eq!(strings(&meta[KEY_MERGES]), ["a b"]);
        assert_eq!(meta[KEY_BOS], MetaValue::U32(3));
        assert_eq!(meta[KEY_EOS], MetaValue::U32(1));
        assert_eq!(meta[KEY_ADD_BOS], MetaValue::Bool(true));
    }
}
