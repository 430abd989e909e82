//! Anthropic's Messages API, `POST /v1/messages` and `POST /v1/messages/count_tokens`, as
//! Claude Code and the Anthropic SDKs call it: `system` (a string or text blocks), `messages`
//! whose content is a string or `text`, `tool_use`, `tool_result` and `thinking` blocks, `tools`
//! with `input_schema`, `tool_choice`, `thinking` (the template's thinking switch),
//! `stop_sequences`, `max_tokens` (required), `temperature`, `top_p`, `top_k`. The request is
//! converted to template messages and OpenAI-shaped tools and runs through the same pipeline as a
//! chat completion (`reply.rs`); the answer is a `message` object, or the streamed events of
//! `messages_stream.rs`. Errors are `{"type": "error", "error": {"type", "message"}}`.
//!
//! Any `model` name is accepted and served by the one model (Claude Code asks for several model
//! names, e.g. a small one for titles); replies name the served model.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::ServerState;
use super::error::ApiError;
use super::metrics::Endpoint;
use super::params;
use super::reply::{self, Collected, Generate, Prepared};
use super::routes::read_json;
use super::tools::ParsedCall;
use crate::chat_template::{ChatMessage, ToolCall};
use crate::engine::{Generation, StopReason};

/// How often an idle stream sends a `ping` event.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// `system`: a string or a list of text blocks.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<TextBlock>),
}

#[derive(Clone, Debug, Deserialize)]
pub struct TextBlock {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

/// A message's `content`: a string or blocks.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

/// The content blocks this server reads (images and documents are 400s naming the types).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Json,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<ToolResultContent>,
        #[serde(default)]
        is_error: bool,
    },
    Thinking {
        thinking: String,
    },
    RedactedThinking {},
}

/// A tool result: a string or text blocks.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    Text(String),
    Blocks(Vec<TextBlock>),
}

#[derive(Clone, Debug, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Content,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: Option<Json>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: String,
}

/// `POST /v1/messages` (and, without `max_tokens`, `count_tokens`); `model`, `metadata` and
/// `thinking.budget_tokens` are accepted and ignored.
#[derive(Clone, Debug, Deserialize)]
pub struct MessagesRequest {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub system: Option<System>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub thinking: Option<Thinking>,
}

/// An error in Anthropic's shape; the status is the one the OpenAI-shaped error has.
pub fn error_response(error: &ApiError) -> Response {
    let kind = match error.status {
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::FORBIDDEN => "permission_error",
        StatusCode::NOT_FOUND => "not_found_error",
        StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
        StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
        StatusCode::SERVICE_UNAVAILABLE => "overloaded_error",
        s if s.is_server_error() => "api_error",
        _ => "invalid_request_error",
    };
    (error.status, axum::Json(error_body(kind, error))).into_response()
}

fn error_body(kind: &str, error: &ApiError) -> Json {
    let message = match &error.param {
        Some(param) if !error.message.contains(param.as_str()) => {
            format!("{param}: {}", error.message)
        }
        _ => error.message.clone(),
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// The SSE event for an error in the middle of a stream.
pub fn error_event(error: &ApiError) -> sse::Event {
    sse::Event::default()
        .event("error")
        .data(error_body("api_error", error).to_string())
}

/// The answer to `POST /v1/messages`.
pub async fn handle(State(state): State<Arc<ServerState>>, body: Body) -> Response {
    match respond(state, body).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

/// The answer to `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, the tokens of the
/// prompt the same request would be rendered to.
pub async fn count_tokens(State(state): State<Arc<ServerState>>, body: Body) -> Response {
    let counted = async {
        let request: MessagesRequest = read_json(&state, body).await?;
        let prepared = reply::render_blocking(&state, move |s| prepare(s, &request)).await?;
        Ok::<_, ApiError>(prepared.tokens.len())
    };
    match counted.await {
        Ok(n) => axum::Json(json!({"input_tokens": n})).into_response(),
        Err(error) => error_response(&error),
    }
}

/// What a reply needs besides the pieces.
pub struct Reply {
    pub id: String,
    pub model: String,
    pub stop: Vec<String>,
    pub state: Arc<ServerState>,
}

impl Reply {
    /// `stop_reason` and `stop_sequence`.
    pub fn stop(&self, generation: &Generation, calls: &[ParsedCall]) -> (&'static str, Json) {
        if !calls.is_empty() {
            return ("tool_use", Json::Null);
        }
        match generation.stop_reason {
            StopReason::EndOfText | StopReason::Cancelled => ("end_turn", Json::Null),
            StopReason::Length | StopReason::ContextFull => ("max_tokens", Json::Null),
            StopReason::Stop => (
                "stop_sequence",
                reply::matched_stop(
                    &self.state.engine.tokenizer().decode(&generation.tokens),
                    &generation.answer,
                    &self.stop,
                )
                .map_or(Json::Null, Json::from),
            ),
        }
    }

    /// A `tool_use` block (with its input, or `{}` to be streamed as JSON deltas).
    pub fn tool_use(&self, i: usize, call: &ParsedCall, with_input: bool) -> Json {
        let input = if with_input {
            serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}))
        } else {
            json!({})
        };
        let id = &self.id[self.id.len().saturating_sub(12)..];
        json!({"type": "tool_use", "id": format!("toolu_{id}_{i}"), "name": call.name, "input": input})
    }
}

/// Usage in Anthropic's terms: `input_tokens` are the prompt tokens that were not read from the
/// cache (the API's total is `input_tokens + cache_read_input_tokens`).
pub fn usage(generation: &Generation) -> Json {
    let s = &generation.stats;
    json!({
        "input_tokens": s.prompt_tokens - s.reused_tokens.min(s.prompt_tokens),
        "output_tokens": s.generated_tokens,
        "cache_read_input_tokens": s.reused_tokens,
        "cache_creation_input_tokens": 0,
    })
}

async fn respond(state: Arc<ServerState>, body: Body) -> Result<Response, ApiError> {
    let request: MessagesRequest = read_json(&state, body).await?;
    let Some(max_tokens) = request.max_tokens else {
        return Err(ApiError::invalid_param(
            "max_tokens",
            "max_tokens: Field required",
        ));
    };
    let temperature = request.temperature.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&temperature) {
        return Err(ApiError::invalid_param(
            "temperature",
            format!("temperature must be between 0 and 1, got {temperature}"),
        ));
    }
    let mut sampler = params::sampler(Some(temperature), request.top_p, None)?;
    if let Some(k) = request.top_k {
        sampler.top_k = k as usize;
    }
    let stop = params::stop_strings(request.stop_sequences.clone().map(super::types::Stop::Many))
        .map_err(|e| e.with_param("stop_sequences"))?;
    let use_tools = tools_on(&request)?;
    let stream = request.stream.unwrap_or(false);
    let prepared = reply::render_blocking(&state, move |s| prepare(s, &request)).await?;
    let n_ctx = state.engine.info().n_ctx;
    let prompt_tokens = prepared.tokens.len();
    let max_tokens = params::max_tokens(Some(max_tokens), "max_tokens", prompt_tokens, n_ctx)?;
    let reply = Reply {
        id: params::response_id("msg").replacen('-', "_", 1),
        model: state.options.model_id.clone(),
        stop: stop.clone(),
        state: state.clone(),
    };
    let generate = Generate {
        max_tokens,
        sampler,
        stop,
        logprobs: None,
        use_tools,
    };
    let pieces = prepared.submit(&state, generate, (Endpoint::Messages, &reply.id))?;
    if stream {
        let ping = sse::Event::default()
            .event("ping")
            .data(json!({"type": "ping"}).to_string());
        let events = super::messages_stream::events(pieces, reply, prompt_tokens);
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).event(ping))
            .into_response());
    }
    let whole = pieces.collect().await?;
    Ok(axum::Json(message(&reply, &whole)).into_response())
}

/// The whole `message` object.
fn message(reply: &Reply, whole: &Collected) -> Json {
    let mut content = Vec::new();
    if !whole.thinking.is_empty() {
        content.push(json!({"type": "thinking", "thinking": whole.thinking, "signature": ""}));
    }
    if !whole.content.is_empty() || whole.calls.is_empty() {
        content.push(json!({"type": "text", "text": whole.content}));
    }
    for (i, call) in whole.calls.iter().enumerate() {
        content.push(reply.tool_use(i, call, true));
    }
    let (stop_reason, stop_sequence) = reply.stop(&whole.generation, &whole.calls);
    json!({
        "id": reply.id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage(&whole.generation),
    })
}

/// Whether tools are offered: `tool_choice` `none` turns them off; `auto`, `any` and `tool`
/// leave them on (the model is asked, not forced).
fn tools_on(request: &MessagesRequest) -> Result<bool, ApiError> {
    let has_tools = request.tools.as_ref().is_some_and(|t| !t.is_empty());
    match request.tool_choice.as_ref().map(|c| c.kind.as_str()) {
        None | Some("auto" | "any") => Ok(has_tools),
        Some("none") => Ok(false),
        Some("tool") => match &request.tool_choice.as_ref().and_then(|c| c.name.clone()) {
            Some(name) if request.tools.iter().flatten().any(|t| &t.name == name) => Ok(true),
            _ => Err(ApiError::invalid_param(
                "tool_choice",
                "tool_choice of type \"tool\" must name one of the request's tools",
            )),
        },
        Some(other) => Err(ApiError::invalid_param(
            "tool_choice",
            format!("tool_choice type {other:?} is not one of auto, any, tool, none"),
        )),
    }
}

/// Converts, renders and tokenizes the request.
fn prepare(state: &ServerState, request: &MessagesRequest) -> Result<Prepared, ApiError> {
    let messages = convert(request)?;
    let tools = if tools_on(request)? {
        request.tools.as_ref().map(|tools| {
            tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name,
                        "description": t.description.clone().unwrap_or_default(),
                        "parameters": t.input_schema.clone().unwrap_or_else(|| json!({"type": "object"})),
                    }})
                })
                .collect()
        })
    } else {
        None
    };
    let effort = match request.thinking.as_ref().map(|t| t.kind.as_str()) {
        None => None,
        Some("enabled" | "adaptive" | "between_tools") => Some("high"),
        Some("disabled") => Some("none"),
        Some(other) => {
            return Err(ApiError::invalid_param(
                "thinking",
                format!(
                    "thinking type {other:?} is not one of enabled, adaptive, between_tools, disabled"
                ),
            ));
        }
    };
    let extra = params::template_variables(state.template().source(), None, effort)?;
    reply::render(state, messages, tools, Vec::new(), extra)
}

fn text_of(blocks: &[TextBlock], param: &str) -> Result<String, ApiError> {
    let mut text = String::new();
    for block in blocks {
        if block.kind != "text" {
            return Err(ApiError::invalid_param(
                param,
                format!(
                    "{param}: block type {:?} is not supported here (only text)",
                    block.kind
                ),
            ));
        }
        if !text.is_empty() && !block.text.is_empty() {
            text.push('\n');
        }
        text.push_str(&block.text);
    }
    Ok(text)
}

/// `system` and `messages` as template messages: text blocks joined, `thinking` blocks as the
/// assistant turn's reasoning, `tool_use` blocks as its tool calls, `tool_result` blocks as
/// `tool` messages in their place. Claude Code's billing line is dropped from the system text.
fn convert(request: &MessagesRequest) -> Result<Vec<ChatMessage>, ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "messages: at least one message is required",
        ));
    }
    let mut out = Vec::new();
    let mut system = match &request.system {
        None => String::new(),
        Some(System::Text(text)) => text.clone(),
        Some(System::Blocks(blocks)) => text_of(blocks, "system")?,
    };
    // Tool names by id, for the `tool` messages that answer them.
    let mut names: Vec<(String, String)> = Vec::new();
    for (i, m) in request.messages.iter().enumerate() {
        let param = format!("messages.{i}");
        let blocks = match &m.content {
            Content::Text(text) => vec![Block::Text { text: text.clone() }],
            Content::Blocks(blocks) => blocks.clone(),
        };
        match m.role.as_str() {
            "system" => {
                for block in &blocks {
                    match block {
                        Block::Text { text } => {
                            if !system.is_empty() {
                                system.push('\n');
                            }
                            system.push_str(text);
                        }
                        _ => return Err(only_text(&param)),
                    }
                }
            }
            "user" => {
                let mut text = String::new();
                for block in blocks {
                    match block {
                        Block::Text { text: t } => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(&t);
                        }
                        Block::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        } => {
                            if !text.is_empty() {
                                out.push(ChatMessage::user(std::mem::take(&mut text)));
                            }
                            let mut result = match content {
                                None => String::new(),
                                Some(ToolResultContent::Text(t)) => t,
                                Some(ToolResultContent::Blocks(b)) => {
                                    text_of(&b, &format!("{param}.content"))?
                                }
                            };
                            if is_error {
                                result = format!("Error: {result}");
                            }
                            let name = names
                                .iter()
                                .find(|(id, _)| *id == tool_use_id)
                                .map(|(_, n)| n.clone());
                            out.push(ChatMessage {
                                role: "tool".into(),
                                content: Some(result),
                                tool_call_id: Some(tool_use_id),
                                name,
                                ..ChatMessage::default()
                            });
                        }
                        _ => {
                            return Err(ApiError::invalid_param(
                                &param,
                                format!(
                                    "{param}: a user message holds text and tool_result blocks only"
                                ),
                            ));
                        }
                    }
                }
                if !text.is_empty() {
                    out.push(ChatMessage::user(text));
                }
            }
            "assistant" => {
                let (mut text, mut thinking, mut calls) =
                    (String::new(), String::new(), Vec::new());
                for block in blocks {
                    match block {
                        Block::Text { text: t } => text.push_str(&t),
                        Block::Thinking { thinking: t } => thinking.push_str(&t),
                        Block::RedactedThinking {} => {}
                        Block::ToolUse { id, name, input } => {
                            names.push((id.clone(), name.clone()));
                            let input = if input.is_null() { json!({}) } else { input };
                            calls.push(ToolCall::function(Some(id), name, input.to_string()));
                        }
                        Block::ToolResult { .. } => {
                            return Err(ApiError::invalid_param(
                                &param,
                                format!("{param}: tool_result blocks belong in user messages"),
                            ));
                        }
                    }
                }
                // The DeepSeek templates recognise a tool-call turn by `content is none`.
                let content = if calls.is_empty() || !text.is_empty() {
                    Some(text)
                } else {
                    None
                };
                out.push(ChatMessage {
                    role: "assistant".into(),
                    content,
                    reasoning_content: (!thinking.is_empty()).then_some(thinking),
                    tool_calls: calls,
                    ..ChatMessage::default()
                });
            }
            other => {
                return Err(ApiError::invalid_param(
                    &format!("{param}.role"),
                    format!("{param}.role: {other:?} is not one of user, assistant"),
                ));
            }
        }
    }
    let system = reply::strip_billing_header(&system);
    if !system.trim().is_empty() {
        out.insert(0, ChatMessage::system(system));
    }
    Ok(out)
}

fn only_text(param: &str) -> ApiError {
    ApiError::invalid_param(
        param,
        format!("{param}: a system message holds text blocks only"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(body: Json) -> MessagesRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn converts_system_blocks_tool_use_and_results() {
        let r = request(json!({
            "max_tokens": 5,
            "system": [
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=1; cch=abc;"},
                {"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral"}},
            ],
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "sunny"}]},
                    {"type": "text", "text": "Thanks"},
                ]},
            ],
        }));
        let m = convert(&r).unwrap();
        let roles: Vec<&str> = m.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
        assert_eq!(m[0].content.as_deref(), Some("You are helpful."));
        assert_eq!(m[2].content, None);
        assert_eq!(m[2].reasoning_content.as_deref(), Some("hmm"));
        assert_eq!(m[2].tool_calls[0].function.name, "get_weather");
        assert_eq!(m[3].content.as_deref(), Some("sunny"));
        assert_eq!(m[3].tool_call_id.as_deref(), Some("t1"));
        assert_eq!(m[3].name.as_deref(), Some("get_weather"));
    }

    #[test]
    fn rejects_bad_content_and_choices() {
        assert!(convert(&request(json!({"messages": []}))).is_err());
        let e = convert(&request(
            json!({"messages": [{"role": "tool", "content": "x"}]}),
        ))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages.0.role"));
        assert!(
            serde_json::from_value::<MessagesRequest>(json!({"messages": [{"role": "user",
                "content": [{"type": "image", "source": {}}]}]}))
            .is_err()
        );
        let r = request(json!({"messages": [], "tools": [{"name": "f"}],
            "tool_choice": {"type": "tool", "name": "g"}}));
        assert!(tools_on(&r).is_err());
        let r = request(json!({"messages": [], "tools": [{"name": "f"}],
            "tool_choice": {"type": "none"}}));
        assert_eq!(tools_on(&r), Ok(false));
    }

    #[test]
    fn errors_have_the_anthropic_shape() {
        let response = error_response(&ApiError::invalid_param("max_tokens", "required"));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = error_body("invalid_request_error", &ApiError::bad_request("nope"));
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], "nope");
    }
}
