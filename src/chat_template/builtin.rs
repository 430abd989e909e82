//! Templates shipped with the engine, for GGUF files that carry no `tokenizer.chat_template` (base
//! models, or converters that dropped it) and for callers who pick one by name. The DeepSeek ones
//! are the models' own Jinja sources, byte for byte (provenance in `templates/README.md`).

use crate::gguf::GgufModel;

/// A built-in chat template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// DeepSeek-V2-Chat / V2-Lite-Chat: `User: …\n\nAssistant: …<｜end▁of▁sentence｜>`.
    DeepSeekV2Chat,
    /// DeepSeek-V3: `<｜User｜>…<｜Assistant｜>…`, tool calls, system prompts joined at the start.
    DeepSeekV3,
    /// DeepSeek-R1 (2025-02 revision): V3's format, older reasoning stripped, prompt ends
    /// `<｜Assistant｜><think>\n`.
    DeepSeekR1,
    /// ChatML (`<|im_start|>role\n…<|im_end|>\n`), the fallback for other architectures.
    ChatMl,
}

impl Builtin {
    pub const ALL: [Builtin; 4] = [
        Builtin::DeepSeekV2Chat,
        Builtin::DeepSeekV3,
        Builtin::DeepSeekR1,
        Builtin::ChatMl,
    ];

    /// The name used in logs and accepted by [`Builtin::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            Builtin::DeepSeekV2Chat => "deepseek-v2-chat",
            Builtin::DeepSeekV3 => "deepseek-v3",
            Builtin::DeepSeekR1 => "deepseek-r1",
            Builtin::ChatMl => "chatml",
        }
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The Jinja source.
    pub fn source(self) -> &'static str {
        match self {
            Builtin::DeepSeekV2Chat => include_str!("templates/deepseek-v2-chat.jinja"),
            Builtin::DeepSeekV3 => include_str!("templates/deepseek-v3.jinja"),
            Builtin::DeepSeekR1 => include_str!("templates/deepseek-r1.jinja"),
            Builtin::ChatMl => include_str!("templates/chatml.jinja"),
        }
    }

    /// The template for a file without one. For `deepseek2` the vocabulary decides (spec §7.4):
    /// V2.5/V3/R1 vocabularies have `<｜User｜>` and `<｜Assistant｜>` tokens and are V3-format
    /// models (R1 files always ship their own template, so V3's is the better guess); V2/V2-Lite
    /// and Coder-V2 vocabularies have neither and use V2-Chat's plain-text turns. Every other
    /// architecture (`llama`, `qwen2`, …) gets ChatML.
    pub fn for_model(model: &GgufModel) -> Builtin {
        let arch = model.get("general.architecture").and_then(|v| v.as_str());
        if arch != Some("deepseek2") {
            return Builtin::ChatMl;
        }
        let tokens = model
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array());
        let (mut user, mut assistant) = (false, false);
        for token in tokens.iter().flat_map(|a| a.strings()) {
            user |= token == "<｜User｜>";
            assistant |= token == "<｜Assistant｜>";
            if user && assistant {
                return Builtin::DeepSeekV3;
            }
        }
        Builtin::DeepSeekV2Chat
    }
}
