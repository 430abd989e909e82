//! A "scripted" model: a tiny dense `qwen2` GGUF whose greedy output is a fixed sequence of
//! tokens whatever the prompt, so that the server tests can see a real model answer with a tool
//! call.
//!
//! The vocabulary is the 256 byte-level tokens (so any prompt encodes; no merges), the ChatML
//! markers `<|im_start|>` and `<|im_end|>` (the EOS), and the script's tokens, stored as
//! USER_DEFINED so that each decodes to its text as written (`{"name": …}` with literal spaces).
//!
//! The weights make the model a bigram table. Every attention and FFN weight is zero, so both
//! blocks add nothing and the final hidden state at a position is the output norm of that
//! position's token embedding. Token embeddings are one-hot: script token `k` (0-based) is
//! `e[k+1]`, every other token `e[0]`. RMS norm (weights 1) turns `e[d]` into `sqrt(D)·e[d]`, so
//! the logits are `sqrt(D) · output[:, d]`: column `d` of the output head picks the successor.
//! We put `GAIN` at `output[next(d), d]` and zeros elsewhere, with `next(0) = script[0]`,
//! `next(k+1) = script[k+1]` and, after the last script token, EOS. The winner leads every other
//! token by `sqrt(D)·GAIN` ≈ 57 nats: after any prompt (its last token is not in the script) the
//! model says `script[0]`, then each script token is followed by the next, then EOS.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use lanternfish::gguf::{GgufWriter, MetaValue, ValueType};
use lanternfish::quant::GgmlType;

const D: usize = 32;
const HEADS: usize = 4;
const FF: usize = 32;
const GAIN: f32 = 10.0;

/// The Hermes script: one call in Qwen's `<tool_call>` format.
pub const HERMES_SCRIPT: &[&str] = &[
    "<tool_call>",
    "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n",
    "</tool_call>",
];

/// The DeepSeek-V3 script: one call between DeepSeek's markers, arguments in a JSON fence.
pub const DEEPSEEK_SCRIPT: &[&str] = &[
    "<｜tool▁calls▁begin｜>",
    "<｜tool▁call▁begin｜>",
    "function",
    "<｜tool▁sep｜>",
    "get_weather\n```json\n{\"city\": \"Paris\", \"days\": 2}\n```",
    "<｜tool▁call▁end｜>",
    "<｜tool▁calls▁end｜>",
];

/// A small Hermes-style ChatML template of our own that lists `tools` in a system turn (the
/// shape Qwen2.5-family templates use).
pub const HERMES_TEMPLATE: &str = r#"{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}

{% endif %}# Tools

<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools>

To call a tool, answer with a JSON object of its "name" and "arguments" between <tool_call> and </tool_call>.<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if not (tools and loop.first and message.role == 'system') %}<|im_start|>{{ message.role }}
{{ message.content or '' }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"#;

/// GPT-2's byte → printable character map (the stand-ins byte-level BPE stores bytes as).
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        char::from(b)
    } else {
        // The others in order, from U+0100.
        let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + rank).unwrap()
    }
}

/// Writes the model for `script` (with `template` as its chat template, if any) to
/// `CARGO_TARGET_TMPDIR/name` and returns the path.
pub fn write(name: &str, script: &[&str], template: Option<&str>) -> PathBuf {
    assert!(script.len() < D, "one embedding direction per script token");
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    let mut types = vec![1i32; 256]; // NORMAL
    let im_start = tokens.len();
    let eos = im_start + 1;
    tokens.extend(["<|im_start|>".to_owned(), "<|im_end|>".to_owned()]);
    types.extend([3, 3]); // CONTROL
    let first = tokens.len();
    tokens.extend(script.iter().map(|s| s.to_string()));
    types.extend(std::iter::repeat_n(4, script.len())); // USER_DEFINED
    let v = tokens.len();

    // Embedding row of token t: e[dir(t)]; output row of next(d): GAIN·e[d] (ne order [D, V]).
    let mut embd = vec![0f32; D * v];
    for t in 0..v {
        let dir = if t >= first { t - first + 1 } else { 0 };
        embd[t * D + dir] = 1.0;
    }
    let mut output = vec![0f32; D * v];
    for d in 0..=script.len() {
        let next = if d < script.len() { first + d } else { eos };
        output[next * D + d] = GAIN;
    }

    let mut w = GgufWriter::new();
    let s = |x: &str| MetaValue::String(x.into());
    w.set("general.architecture", s("qwen2"));
    w.set("general.name", s(name));
    for (k, val) in [
        ("block_count", 1),
        ("context_length", 4096),
        ("embedding_length", D),
        ("feed_forward_length", FF),
        ("attention.head_count", HEADS),
        ("attention.head_count_kv", HEADS),
    ] {
        w.set(&format!("qwen2.{k}"), MetaValue::U32(val as u32));
    }
    w.set(
        "qwen2.attention.layer_norm_rms_epsilon",
        MetaValue::F32(1e-6),
    );
    w.set("tokenizer.ggml.model", s("gpt2"));
    w.set("tokenizer.ggml.pre", s("qwen2"));
    let strings = |v: Vec<String>| {
        MetaValue::Array(
            ValueType::String,
            v.into_iter().map(MetaValue::String).collect(),
        )
    };
    w.set("tokenizer.ggml.tokens", strings(tokens));
    w.set(
        "tokenizer.ggml.token_type",
        MetaValue::Array(
            ValueType::I32,
            types.into_iter().map(MetaValue::I32).collect(),
        ),
    );
    w.set("tokenizer.ggml.merges", strings(Vec::new()));
    w.set("tokenizer.ggml.eos_token_id", MetaValue::U32(eos as u32));
    if let Some(template) = template {
        w.set("tokenizer.chat_template", s(template));
    }

    let zeros = |n: usize| vec![0f32; n];
    let mut tensors = vec![
        ("token_embd.weight".to_owned(), vec![D, v], embd),
        ("output_norm.weight".to_owned(), vec![D], vec![1.0; D]),
        ("output.weight".to_owned(), vec![D, v], output),
    ];
    for (t, shape) in [
        ("attn_norm", vec![D]),
        ("attn_q", vec![D, D]),
        ("attn_k", vec![D, D]),
        ("attn_v", vec![D, D]),
        ("attn_output", vec![D, D]),
        ("ffn_norm", vec![D]),
        ("ffn_gate", vec![D, FF]),
        ("ffn_up", vec![D, FF]),
        ("ffn_down", vec![FF, D]),
    ] {
        let n = shape.iter().product();
        tensors.push((format!("blk.0.{t}.weight"), shape, zeros(n)));
    }
    for (name, shape, data) in tensors {
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.add_tensor(&name, GgmlType::F32, &shape, bytes).unwrap();
    }
    let mut bytes = Vec::new();
    w.write_to(&mut bytes).unwrap();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.gguf"));
    std::fs::write(&path, bytes).unwrap();
    path
}
