//! What the chat-shaped endpoints (Chat Completions, Messages, Responses) share once a request
//! is converted to template messages: rendering and tokenizing the prompt ([`render`]), and the
//! engine's events turned into reply pieces ([`Pieces`]: thinking, answer text with tool-call
//! blocks held back, then the parsed calls), which each API formats its own way.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::ServerState;
use super::error::ApiError;
use super::job::AsyncJob;
use super::metrics::{Endpoint, Metrics};
use super::params;
use super::tools::{self, CallGate, ParsedCall};
use crate::chat_template::{ChatMessage, RenderOptions};
use crate::engine::{
    Channel, Event, GenerateOptions, Generation, Request, TokenLogprob, prompt_opens_thinking,
};
use crate::sampler::SamplerConfig;

/// A rendered and tokenized prompt, ready for the engine.
pub struct Prepared {
    pub tokens: Vec<u32>,
    pub starts_thinking: bool,
}

/// How to generate the reply to a prepared prompt.
pub struct Generate {
    /// Already checked against the context (`params::max_tokens`).
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    pub stop: Vec<String>,
    pub logprobs: Option<usize>,
    /// Tools were offered, so tool-call blocks in the answer are parsed.
    pub use_tools: bool,
}

impl Prepared {
    /// Queues the generation (503 when the queue is full); the pieces of its reply, counted
    /// under `endpoint` and logged as `id` when done.
    pub fn submit(
        self,
        state: &ServerState,
        generate: Generate,
        (endpoint, id): (Endpoint, &str),
    ) -> Result<Pieces, ApiError> {
        let options = GenerateOptions {
            max_tokens: generate.max_tokens,
            sampler: generate.sampler,
            stop: generate.stop,
            starts_thinking: self.starts_thinking,
            logprobs: generate.logprobs,
        };
        let request = Request {
            tokens: self.tokens,
            options,
        };
        let job = AsyncJob::submit(state, request)?;
        let record = Record {
            endpoint,
            id: id.to_owned(),
            log: !state.options.quiet,
            metrics: state.metrics.clone(),
        };
        Ok(Pieces::new(job, generate.use_tools, record))
    }
}

/// Renders `messages` with the server's template and tokenizes the text. `tools` are passed to
/// the template, and described in a system instruction when the template does not use them;
/// `instructions` are added to the system turn; `extra` are further template variables.
pub fn render(
    state: &ServerState,
    mut messages: Vec<ChatMessage>,
    tools: Option<Vec<Json>>,
    mut instructions: Vec<String>,
    extra: Map<String, Json>,
) -> Result<Prepared, ApiError> {
    let template = state.template();
    if let Some(tools) = &tools
        && !template.source().contains("tools")
    {
        instructions.insert(0, tools::system_instruction(tools));
    }
    if !instructions.is_empty() {
        add_system_text(&mut messages, &instructions.join("\n\n"));
    }
    let options = RenderOptions {
        add_generation_prompt: true,
        tools,
        extra,
        ..RenderOptions::default()
    };
    let text = template.render(&messages, &options)?;
    let tokens = state.engine.tokenizer().encode_with(&text, false, true)?;
    if tokens.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "the prompt has no tokens",
        ));
    }
    Ok(Prepared {
        starts_thinking: prompt_opens_thinking(&text),
        tokens,
    })
}

/// Renders on a blocking thread (a long conversation is CPU work the async threads should not do).
pub async fn render_blocking(
    state: &Arc<ServerState>,
    make: impl FnOnce(&ServerState) -> Result<Prepared, ApiError> + Send + 'static,
) -> Result<Prepared, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || make(&state))
        .await
        .map_err(|e| ApiError::server(format!("preparing the prompt failed: {e}")))?
}

/// Appends `text` to the first system message, or adds one in front.
pub fn add_system_text(messages: &mut Vec<ChatMessage>, text: &str) {
    match messages.first_mut() {
        Some(first) if first.role == "system" => {
            let content = first.content.get_or_insert_with(String::new);
            if !content.is_empty() {
                content.push_str("\n\n");
            }
            content.push_str(text);
        }
        _ => messages.insert(0, ChatMessage::system(text)),
    }
}

/// Whether a request's tools are offered to the model, for OpenAI's `tool_choice` (`"none"`
/// turns them off; `"auto"`, `"required"` and an object naming a tool leave them on: the model
/// is asked, not forced).
pub fn tools_requested(has_tools: bool, choice: Option<&Json>) -> Result<bool, ApiError> {
    match choice {
        None => Ok(has_tools),
        Some(Json::String(s)) if s == "none" => Ok(false),
        Some(Json::String(s)) if s == "auto" || s == "required" => Ok(has_tools),
        Some(Json::Object(_)) => Ok(has_tools),
        Some(_) => Err(ApiError::invalid_param(
            "tool_choice",
            "tool_choice must be \"none\", \"auto\", \"required\" or an object",
        )),
    }
}

/// One piece of a reply, in order.
pub enum Piece {
    /// R1-style thinking text.
    Thinking(String),
    /// Answer text that can be sent (never part of a tool-call block).
    Text(String),
    /// A generated token's log-probabilities (when the request asked for them).
    Token(TokenLogprob),
    /// The end: the generation and the tool calls parsed from the held-back text.
    Done {
        generation: Generation,
        calls: Vec<ParsedCall>,
    },
    /// The engine failed on this request.
    Failed(ApiError),
}

/// Where a finished request is counted and logged.
struct Record {
    endpoint: Endpoint,
    id: String,
    log: bool,
    metrics: Arc<Metrics>,
}

/// A job's events as reply pieces; dropping it cancels the generation.
pub struct Pieces {
    job: AsyncJob,
    gate: CallGate,
    queue: VecDeque<Piece>,
    finished: bool,
    record: Record,
}

/// A whole reply.
pub struct Collected {
    pub thinking: String,
    pub content: String,
    pub calls: Vec<ParsedCall>,
    pub logprobs: Vec<TokenLogprob>,
    pub generation: Generation,
}

impl Pieces {
    fn new(job: AsyncJob, use_tools: bool, record: Record) -> Pieces {
        Pieces {
            job,
            gate: CallGate::new(use_tools),
            queue: VecDeque::new(),
            finished: false,
            record,
        }
    }

    /// The next piece; `None` after `Done` or `Failed`.
    pub async fn next(&mut self) -> Option<Piece> {
        loop {
            if let Some(piece) = self.queue.pop_front() {
                return Some(piece);
            }
            if self.finished {
                return None;
            }
            match self.job.next().await {
                Some(Event::Text {
                    channel: Channel::Thinking,
                    text,
                }) if !text.is_empty() => return Some(Piece::Thinking(text)),
                Some(Event::Text {
                    channel: Channel::Answer,
                    text,
                }) => {
                    let ready = self.gate.push(&text);
                    if !ready.is_empty() {
                        return Some(Piece::Text(ready));
                    }
                }
                Some(Event::Token(t)) => return Some(Piece::Token(t)),
                Some(Event::Done { generation, .. }) => {
                    let r = &self.record;
                    params::log_done((r.log, &r.metrics), r.endpoint, &r.id, &generation);
                    self.finished = true;
                    let (rest, calls) = self.gate.finish();
                    if !rest.is_empty() {
                        self.queue.push_back(Piece::Text(rest));
                    }
                    self.queue.push_back(Piece::Done { generation, calls });
                }
                Some(Event::Error(error)) => {
                    self.finished = true;
                    return Some(Piece::Failed(error.into()));
                }
                Some(_) => {}
                None => {
                    self.finished = true;
                    return Some(Piece::Failed(ApiError::server(
                        "the engine stopped before finishing the request",
                    )));
                }
            }
        }
    }

    /// Waits for the whole reply.
    pub async fn collect(mut self) -> Result<Collected, ApiError> {
        let (mut thinking, mut content, mut logprobs) = (String::new(), String::new(), Vec::new());
        while let Some(piece) = self.next().await {
            match piece {
                Piece::Thinking(t) => thinking.push_str(&t),
                Piece::Text(t) => content.push_str(&t),
                Piece::Token(t) => logprobs.push(t),
                Piece::Done { generation, calls } => {
                    return Ok(Collected {
                        thinking,
                        content,
                        calls,
                        logprobs,
                        generation,
                    });
                }
                Piece::Failed(error) => return Err(error),
            }
        }
        Err(ApiError::server(
            "the engine stopped before finishing the request",
        ))
    }
}

/// Which of `stop` ended a generation that stopped on a stop string, given the text of all its
/// tokens (`decoded`) and its `answer` (which the engine cuts before the stop string): the one
/// that follows the answer in the text, the first one if that cannot be told.
pub fn matched_stop(decoded: &str, answer: &str, stop: &[String]) -> Option<String> {
    // The end of the answer is enough to place it (its start may have had newlines trimmed).
    let tail_start = (0..=answer.len().saturating_sub(32))
        .rev()
        .find(|&i| answer.is_char_boundary(i))
        .unwrap_or(0);
    let tail = &answer[tail_start..];
    stop.iter()
        .filter_map(|s| decoded.find(&format!("{tail}{s}")).map(|at| (at, s)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, s)| s.clone())
        .or_else(|| stop.first().cloned())
}

/// Removes the lines Claude Code puts at the top of its system prompt for Anthropic's billing,
/// `x-anthropic-billing-header: cc_version=…; cc_entrypoint=…; cch=…;`. The `cch` hash changes
/// with every request, so left in, the prompt would differ from the previous one within its
/// first few dozen tokens and the KV cache of the shared prefix could never be reused (as
/// llama-server does, the line is dropped before the template is rendered, so it is never
/// tokenized). Only whole lines that start with the header name are removed.
pub fn strip_billing_header(text: &str) -> String {
    const HEADER: &str = "x-anthropic-billing-header:";
    if !text.contains(HEADER) {
        return text.to_owned();
    }
    text.split_inclusive('\n')
        .filter(|line| !line.trim_start().starts_with(HEADER))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn system_text_is_merged_or_added() {
        let mut m = vec![ChatMessage::user("hi")];
        add_system_text(&mut m, "x");
        assert_eq!(m[0].role, "system");
        add_system_text(&mut m, "y");
        assert_eq!(m[0].content.as_deref(), Some("x\n\ny"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn tool_choice_values() {
        assert_eq!(tools_requested(true, None), Ok(true));
        assert_eq!(tools_requested(false, None), Ok(false));
        assert_eq!(tools_requested(true, Some(&Json::from("none"))), Ok(false));
        assert_eq!(
            tools_requested(true, Some(&Json::from("required"))),
            Ok(true)
        );
        assert!(tools_requested(true, Some(&Json::from("sometimes"))).is_err());
        assert!(tools_requested(true, Some(&Json::from(3))).is_err());
    }

    #[test]
    fn the_stop_string_that_ended_the_answer() {
        let stop = ["END".to_owned(), "\n\n".to_owned()];
        let m = |decoded: &str, answer: &str| matched_stop(decoded, answer, &stop);
        assert_eq!(m("<think>x</think>Hi.\n\nEND", "Hi."), Some("\n\n".into()));
        assert_eq!(m("Hi. END\n\n", "Hi. "), Some("END".into()));
        // An END earlier in a long answer is not the one that stopped it.
        let answer = format!("END {}", "word ".repeat(20));
        assert_eq!(m(&format!("{answer}\n\nEND"), &answer), Some("\n\n".into()));
        // Not placeable (a stop string cut in the middle of a token's text): the first one.
        assert_eq!(m("Hi.", "Hi."), Some("END".into()));
        assert_eq!(matched_stop("x", "x", &[]), None);
    }

    #[test]
    fn billing_header_lines_are_removed() {
        let system = "x-anthropic-billing-header: cc_version=2.1.100.7b4; cc_entrypoint=cli; cch=eb6c6;\nYou are Claude Code.\n";
        assert_eq!(strip_billing_header(system), "You are Claude Code.\n");
        assert_eq!(
            strip_billing_header("x-anthropic-billing-header: cch=1;"),
            ""
        );
        // Elsewhere in a line it is text, and text without it is untouched.
        let quoted = "see x-anthropic-billing-header: in the docs\nok";
        assert_eq!(strip_billing_header(quoted), quoted);
        assert_eq!(strip_billing_header("plain\r\ntext"), "plain\r\ntext");
    }
}
