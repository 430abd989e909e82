//! Chat templates (spec §7.4): renders a model's Jinja `tokenizer.chat_template` into the prompt
//! text, byte for byte as Hugging Face's `apply_chat_template` does in Python.
//!
//! Hugging Face compiles templates in `jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True,
//! lstrip_blocks=True)` with loop controls, a `tojson` filter that is `json.dumps`, and the globals
//! `raise_exception` and `strftime_now`; it renders with `messages`, `tools`, `documents`,
//! `add_generation_prompt` and the special-token strings (`bos_token`, `eos_token`, …). This module
//! builds the same environment in minijinja: Python string methods come from minijinja-contrib's
//! `pycompat`, and values print as Python would (`None`, `True`, `['a']`, see `python.rs`).
//!
//! Known differences from Jinja2 (none affects the DeepSeek templates): the `~` operator and
//! filters other than `string`/`tojson` spell `none`/`true` in minijinja's way; string literals
//! know fewer escapes (no `\x41`, `\N{…}`, octal); `repr` escapes unassigned code points that
//! Python would; Hugging Face's `{% generation %}` tag is not supported; `strftime_now` formats UTC
//! rather than local time.
//!
//! The rendered text contains the special tokens as text (BOS included), so encode it with
//! special-token parsing on and without adding another BOS.

mod builtin;
mod message;
mod python;
mod strftime;

use std::collections::BTreeMap;
use std::time::SystemTime;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, ErrorKind, State};

pub use builtin::Builtin;
pub use message::{ChatMessage, FunctionCall, RenderOptions, ToolCall};

use crate::gguf::GgufModel;
use crate::{Error, Result};

/// The GGUF key holding the template source.
pub const KEY_CHAT_TEMPLATE: &str = "tokenizer.chat_template";

/// Template variable → GGUF key of the token id whose text it holds (llama.cpp's key names,
/// including its spelling of "seperator").
const SPECIAL_TOKEN_KEYS: [(&str, &str); 6] = [
    ("bos_token", "tokenizer.ggml.bos_token_id"),
    ("eos_token", "tokenizer.ggml.eos_token_id"),
    ("unk_token", "tokenizer.ggml.unknown_token_id"),
    ("sep_token", "tokenizer.ggml.seperator_token_id"),
    ("pad_token", "tokenizer.ggml.padding_token_id"),
    ("cls_token", "tokenizer.ggml.cls_token_id"),
];

/// Name of the compiled template inside the environment (shows up in error positions).
const TEMPLATE_NAME: &str = "chat_template";

/// The work one render may do, in minijinja fuel (about one instruction, or 64 bytes of data a
/// template creates; so it also bounds the memory a render takes at ~64 bytes per unit). A
/// template is part of an untrusted model file: one that loops for ever, or builds a huge
/// string, fails with a clear error in a fraction of a second (80–120 ms measured) instead of
/// hanging `run`, the app or the server. The bundled templates take 8,600–24,000 units for 100
/// messages of 4 KB with tools, and 87,000–243,000 for 1,000 such messages (a 4 MB prompt, ~1 M
/// tokens, far past any context): a tenth of this budget at most (`tests/chat_template.rs`
/// measures them), while 4 M units bound a render's memory at ~256 MB.
pub const RENDER_FUEL: u64 = 4_000_000;

/// The most bytes a rendered prompt may have (a million-token context is ~4 MB of text).
pub const MAX_RENDERED_BYTES: usize = 64 << 20;

/// Context variable through which [`RenderOptions::now`] reaches `strftime_now`.
const NOW_VAR: &str = "__lanternfish_now";

/// Where a template's source came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// The model file's `tokenizer.chat_template`.
    Gguf,
    /// A built-in one, chosen for a file without a template or by name.
    Builtin(Builtin),
    /// Source text given by the caller.
    Custom,
}

/// A compiled chat template plus the special-token strings it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    origin: TemplateOrigin,
    special_tokens: BTreeMap<String, String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .field("source_len", &self.source.len())
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

impl ChatTemplate {
    /// Compiles `source`; `bos` and `eos` are the texts of the BOS and EOS tokens.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<ChatTemplate> {
        let mut template = ChatTemplate::compile(source, TemplateOrigin::Custom)?;
        template.set_special_token("bos_token", bos);
        template.set_special_token("eos_token", eos);
        Ok(template)
    }

    /// A built-in template with the given BOS and EOS texts.
    pub fn builtin(which: Builtin, bos: &str, eos: &str) -> Result<ChatTemplate> {
        let mut template = ChatTemplate::new(which.source(), bos, eos)?;
        template.origin = TemplateOrigin::Builtin(which);
        Ok(template)
    }

    /// The model's own template, or for a file without one the built-in [`Builtin::for_model`]
    /// picks (logged). Special-token strings come from `tokenizer.ggml.tokens` at the ids in
    /// `tokenizer.ggml.{bos,eos,…}_token_id`; a token the file does not name stays undefined in
    /// the template, as in Hugging Face when the tokenizer has none.
    pub fn from_gguf(model: &GgufModel) -> Result<ChatTemplate> {
        let mut template = match model.get(KEY_CHAT_TEMPLATE) {
            Some(value) => {
                let source = value.as_str().ok_or_else(|| Error::Metadata {
                    key: KEY_CHAT_TEMPLATE.into(),
                    what: format!("expected a string, found {}", value.value_type().name()),
                })?;
                ChatTemplate::compile(source, TemplateOrigin::Gguf)?
            }
            None => {
                let which = Builtin::for_model(model);
                let arch = model.get("general.architecture").and_then(|v| v.as_str());
                tracing::info!(
                    architecture = arch.unwrap_or("unknown"),
                    template = which.name(),
                    "the model file has no {KEY_CHAT_TEMPLATE}; using a built-in chat template"
                );
                ChatTemplate::compile(which.source(), TemplateOrigin::Builtin(which))?
            }
        };
        for (var, key) in SPECIAL_TOKEN_KEYS {
            if let Some(text) = token_text(model, key)? {
                template.set_special_token(var, &text);
            }
        }
        Ok(template)
    }

    fn compile(source: &str, origin: TemplateOrigin) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| template_error("cannot configure the template syntax", &e))?;
        env.set_syntax(syntax);
        env.set_fuel(Some(RENDER_FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(|out, _state, value| {
            out.write_str(&python::py_str(value))
                .map_err(minijinja::Error::from)
        });
        env.add_filter("tojson", python::tojson);
        env.add_filter("string", |value: Value| python::py_str(&value));
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        // Jinja2's lexer turns every \r\n and \r of the source into \n; minijinja keeps them.
        let normalized = source.replace("\r\n", "\n").replace('\r', "\n");
        env.add_template_owned(TEMPLATE_NAME, normalized)
            .map_err(|e| template_error("does not compile", &e))?;
        Ok(ChatTemplate {
            env,
            source: source.into(),
            origin,
            special_tokens: BTreeMap::new(),
        })
    }

    /// Sets (or adds) a special-token variable such as `pad_token`.
    pub fn set_special_token(&mut self, name: &str, text: &str) {
        self.special_tokens.insert(name.into(), text.into());
    }

    /// The template's source as given (before newline normalization).
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn origin(&self) -> TemplateOrigin {
        self.origin
    }

    /// The text of special token `name` (`bos_token`, `eos_token`, …) if the template has one.
    pub fn special_token(&self, name: &str) -> Option<&str> {
        self.special_tokens.get(name).map(String::as_str)
    }

    /// Renders a conversation. Errors (a `raise_exception` call, a type error such as adding
    /// `None` to a string, a render past [`RENDER_FUEL`] or [`MAX_RENDERED_BYTES`]) become
    /// [`Error::ChatTemplate`].
    pub fn render(&self, messages: &[ChatMessage], opts: &RenderOptions) -> Result<String> {
        self.render_measured(messages, opts).map(|(text, _)| text)
    }

    /// [`ChatTemplate::render`], also returning the fuel the render used.
    pub fn render_measured(
        &self,
        messages: &[ChatMessage],
        opts: &RenderOptions,
    ) -> Result<(String, u64)> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| template_error("is missing", &e))?;
        let mut ctx: BTreeMap<String, Value> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        for (key, value) in &opts.extra {
            ctx.insert(key.clone(), Value::from(Serde(value)));
        }
        ctx.insert("messages".into(), Value::from(Serde(messages)));
        ctx.insert(
            "tools".into(),
            opts.tools
                .as_ref()
                .map_or(Value::from(()), |t| Value::from(Serde(t))),
        );
        ctx.insert("documents".into(), Value::from(()));
        ctx.insert(
            "add_generation_prompt".into(),
            Value::from(opts.add_generation_prompt),
        );
        if let Some(now) = opts.now {
            ctx.insert(NOW_VAR.into(), Value::from(unix_seconds(now)));
        }
        let mut out = BoundedOutput {
            bytes: Vec::new(),
            full: false,
        };
        let rendered = template.render_captured_to(Value::from(ctx), &mut out);
        let captured = match rendered {
            Ok(captured) => captured,
            Err(e) if out.full => {
                return Err(Error::ChatTemplate {
                    what: format!(
                        "template failed: its output passed {MAX_RENDERED_BYTES} bytes (the \
                         chat template is broken or hostile; `serve --chat-template` can \
                         replace a model file's): {e}"
                    ),
                });
            }
            Err(e) if e.kind() == ErrorKind::OutOfFuel => {
                return Err(Error::ChatTemplate {
                    what: format!(
                        "template failed: it did more than the {RENDER_FUEL} units of work a \
                         render may do (the chat template is broken or hostile; \
                         `serve --chat-template` can replace a model file's)"
                    ),
                });
            }
            Err(e) => return Err(template_error("failed", &e)),
        };
        let fuel = captured.state().fuel_levels().map_or(0, |(used, _)| used);
        let text = String::from_utf8(out.bytes).map_err(|_| Error::ChatTemplate {
            what: "template failed: its output is not UTF-8".to_owned(),
        })?;
        Ok((text, fuel))
    }
}

/// A render's output, refusing to grow past [`MAX_RENDERED_BYTES`].
struct BoundedOutput {
    bytes: Vec<u8>,
    full: bool,
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_RENDERED_BYTES {
            self.full = true;
            return Err(std::io::Error::other("the rendered prompt is too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The text of the token whose id is stored under `key`, if the key exists.
fn token_text(model: &GgufModel, key: &str) -> Result<Option<String>> {
    let Some(id) = model.get(key) else {
        return Ok(None);
    };
    let bad = |what: String| Error::Metadata {
        key: key.into(),
        what,
    };
    let id = id
        .as_u64()
        .ok_or_else(|| bad(format!("expected a token id, found {id}")))?;
    let tokens = model
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("tokenizer.ggml.tokens is missing or not an array".into()))?;
    let text = usize::try_from(id)
        .ok()
        .and_then(|i| tokens.get(i))
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| {
            bad(format!(
                "token id {id} is not in tokenizer.ggml.tokens ({} entries)",
                tokens.len()
            ))
        })?;
    Ok(Some(text))
}

/// `raise_exception(message)`: Hugging Face raises `TemplateError(message)`; the message is kept
/// verbatim after a marker so the caller can tell a template's own complaint from a bug.
fn raise_exception(message: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("raise_exception: {message}"),
    ))
}

/// `strftime_now(format)`: the render's pinned time if [`RenderOptions::now`] gave one.
fn strftime_now(state: &State, format: String) -> String {
    let pinned = state.lookup(NOW_VAR).and_then(|v| v.as_i64());
    let now = match pinned {
        Some(secs) => from_unix_seconds(secs),
        None => SystemTime::now(),
    };
    strftime::strftime(&format, now)
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn from_unix_seconds(secs: i64) -> SystemTime {
    let magnitude = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}

/// A minijinja error as [`Error::ChatTemplate`], with its causes (minijinja nests the error of a
/// failed function call inside the render error).
fn template_error(stage: &str, e: &minijinja::Error) -> Error {
    let mut what = format!("template {stage}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        what.push_str(": ");
        what.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::ChatTemplate { what }
}
