//! OpenAI's Responses API, `POST /v1/responses`, as Codex CLI uses it statelessly (the whole
//! history in `input` each turn): `input` as a string or items (messages with `input_text` /
//! `output_text` parts, `function_call` and `function_call_output` items, `reasoning` items),
//! `instructions`, function `tools` (the flat shape; hosted tools such as `web_search` are left
//! out), `tool_choice`, `max_output_tokens`, `temperature`, `top_p`, `reasoning.effort` (the
//! template's thinking switch), `stream`. The input is converted to template messages and runs through the chat pipeline (`reply.rs`); the
//! answer is a `response` object whose `output` holds `reasoning`, `message` and `function_call`
//! items, or the streamed events of `responses_stream.rs`.
//!
//! Nothing is stored: `store` is accepted and ignored, and `previous_response_id` is a 400 that
//! says to send the whole conversation.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use super::ServerState;
use super::error::ApiError;
use super::metrics::Endpoint;
use super::params;
use super::reply::{self, Collected, Generate, Prepared};
use super::routes::{check_model, read_json};
use super::tools::ParsedCall;
use crate::chat_template::{ChatMessage, ToolCall};
use crate::engine::{Generation, StopReason};

const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// `input`: a string (one user message) or items.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<Json>),
}

/// One input item (a message without `type` is read as `"type": "message"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Item {
    Message {
        role: String,
        content: Parts,
    },
    FunctionCall {
        call_id: String,
        name: String,
        #[serde(default)]
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: Parts,
    },
    Reasoning {
        #[serde(default)]
        summary: Vec<Part>,
        #[serde(default)]
        content: Option<Vec<Part>>,
    },
}

/// Text content: a string or parts.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Parts {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Clone, Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Reasoning {
    #[serde(default)]
    pub effort: Option<String>,
}

/// `POST /v1/responses`.
#[derive(Clone, Debug, Deserialize)]
pub struct ResponsesRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub input: Input,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<Json>>,
    #[serde(default)]
    pub tool_choice: Option<Json>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub reasoning: Option<Reasoning>,
}

/// The answer to `POST /v1/responses`.
pub async fn handle(State(state): State<Arc<ServerState>>, body: Body) -> Response {
    match respond(state, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// What every event and the final object of one response share.
pub struct Reply {
    pub id: String,
    pub created_at: u64,
    pub model: String,
    /// The request's settings as the response object echoes them.
    pub echo: Map<String, Json>,
}

impl Reply {
    /// The `response` object with `status`, `output` and (when finished) usage.
    pub fn object(&self, status: &str, output: Vec<Json>, generation: Option<&Generation>) -> Json {
        let mut object = json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": Json::Null,
            "incomplete_details": Json::Null,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": Json::Null,
            "store": false,
            "text": {"format": {"type": "text"}},
            "truncation": "disabled",
            "metadata": {},
            "usage": Json::Null,
        });
        if let Some(o) = object.as_object_mut() {
            o.extend(self.echo.clone());
        }
        if let Some(generation) = generation {
            object["usage"] = usage(generation);
            if status == "incomplete" {
                object["incomplete_details"] = json!({"reason": "max_output_tokens"});
            }
        }
        object
    }

    /// A short unique suffix for item ids.
    fn suffix(&self) -> &str {
        &self.id[self.id.len().saturating_sub(12)..]
    }

    /// The id of the `message` item at `index` of the output.
    pub fn message_id(&self, index: usize) -> String {
        format!("msg_{}_{index}", self.suffix())
    }

    /// The id of the `reasoning` item at `index` of the output.
    pub fn reasoning_id(&self, index: usize) -> String {
        format!("rs_{}_{index}", self.suffix())
    }

    /// A `function_call` item (`arguments` empty while they stream).
    pub fn function_call(&self, i: usize, call: &ParsedCall, done: bool) -> Json {
        json!({
            "type": "function_call",
            "id": format!("fc_{}_{i}", self.suffix()),
            "call_id": format!("call_{}_{i}", self.suffix()),
            "name": call.name,
            "arguments": if done { call.arguments.as_str() } else { "" },
            "status": if done { "completed" } else { "in_progress" },
        })
    }
}

/// `completed`, or `incomplete` when the output was cut by `max_output_tokens` or the context.
pub fn status(generation: &Generation) -> &'static str {
    match generation.stop_reason {
        StopReason::Length | StopReason::ContextFull => "incomplete",
        _ => "completed",
    }
}

pub fn usage(generation: &Generation) -> Json {
    let s = &generation.stats;
    json!({
        "input_tokens": s.prompt_tokens,
        "input_tokens_details": {"cached_tokens": s.reused_tokens},
        "output_tokens": s.generated_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": s.prompt_tokens + s.generated_tokens,
    })
}

/// A finished `reasoning` item.
pub fn reasoning_item(id: &str, text: &str) -> Json {
    json!({"type": "reasoning", "id": id, "summary": [], "status": "completed",
           "content": [{"type": "reasoning_text", "text": text}]})
}

/// A finished `message` item.
pub fn message_item(id: &str, text: &str) -> Json {
    json!({"type": "message", "id": id, "role": "assistant", "status": "completed",
           "content": [output_text(text)]})
}

pub fn output_text(text: &str) -> Json {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

async fn respond(state: Arc<ServerState>, body: Body) -> Result<Response, ApiError> {
    let request: ResponsesRequest = read_json(&state, body).await?;
    check_model(&state, request.model.as_deref())?;
    if request.previous_response_id.is_some() {
        return Err(ApiError::invalid_param(
            "previous_response_id",
            "previous_response_id is not supported: this server stores no responses, so send \
             the whole conversation in `input` (with `store: false`)",
        ));
    }
    let sampler = params::sampler(request.temperature, request.top_p, None)?;
    let has_tools = request.tools.as_ref().is_some_and(|t| !t.is_empty());
    let use_tools = reply::tools_requested(has_tools, request.tool_choice.as_ref())?;
    let stream = request.stream.unwrap_or(false);
    let mut echo = Map::new();
    echo.insert("instructions".into(), json!(request.instructions));
    echo.insert("max_output_tokens".into(), json!(request.max_output_tokens));
    echo.insert(
        "temperature".into(),
        json!(request.temperature.unwrap_or(1.0)),
    );
    echo.insert("top_p".into(), json!(request.top_p.unwrap_or(1.0)));
    echo.insert(
        "tools".into(),
        json!(request.tools.clone().unwrap_or_default()),
    );
    echo.insert(
        "tool_choice".into(),
        request.tool_choice.clone().unwrap_or_else(|| json!("auto")),
    );
    echo.insert(
        "reasoning".into(),
        json!({"effort": request.reasoning.as_ref().and_then(|r| r.effort.clone()), "summary": Json::Null}),
    );
    let requested_max = request.max_output_tokens;
    let prepared = reply::render_blocking(&state, move |s| prepare(s, &request, use_tools)).await?;
    let max_tokens = params::max_tokens(
        requested_max,
        "max_output_tokens",
        prepared.tokens.len(),
        state.engine.info().n_ctx,
    )
    .map_err(|e| match e.code {
        Some("context_length_exceeded") => e.with_param("input"),
        _ => e,
    })?;
    let reply = Reply {
        id: params::response_id("resp").replacen('-', "_", 1),
        created_at: params::unix_now(),
        model: state.options.model_id.clone(),
        echo,
    };
    let generate = Generate {
        max_tokens,
        sampler,
        stop: Vec::new(),
        logprobs: None,
        use_tools,
    };
    let pieces = prepared.submit(&state, generate, (Endpoint::Responses, &reply.id))?;
    if stream {
        let events = super::responses_stream::events(pieces, reply);
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response());
    }
    let whole = pieces.collect().await?;
    Ok(axum::Json(response(&reply, &whole)).into_response())
}

/// The finished `response` object.
fn response(reply: &Reply, whole: &Collected) -> Json {
    let mut output = Vec::new();
    if !whole.thinking.is_empty() {
        output.push(reasoning_item(&reply.reasoning_id(0), &whole.thinking));
    }
    if !whole.content.is_empty() || whole.calls.is_empty() {
        output.push(message_item(
            &reply.message_id(output.len()),
            &whole.content,
        ));
    }
    for (i, call) in whole.calls.iter().enumerate() {
        output.push(reply.function_call(i, call, true));
    }
    reply.object(status(&whole.generation), output, Some(&whole.generation))
}

/// Converts, renders and tokenizes the request.
fn prepare(
    state: &ServerState,
    request: &ResponsesRequest,
    use_tools: bool,
) -> Result<Prepared, ApiError> {
    let messages = convert(request)?;
    let tools = match (&request.tools, use_tools) {
        (Some(tools), true) => Some(convert_tools(tools)?).filter(|t| !t.is_empty()),
        _ => None,
    };
    let effort = request.reasoning.as_ref().and_then(|r| r.effort.as_deref());
    let extra = params::template_variables(state.template().source(), None, effort)
        .map_err(|e| e.with_param("reasoning.effort"))?;
    reply::render(state, messages, tools, Vec::new(), extra)
}

/// OpenAI's hosted tools and Codex's built-in ones, which run on OpenAI's side or need their own
/// item types: left out of the prompt (the model is not offered them) rather than failing the
/// request, since Codex CLI may list them beside its function tools.
const HOSTED_TOOLS: [&str; 8] = [
    "web_search",
    "file_search",
    "code_interpreter",
    "image_generation",
    "computer_use",
    "local_shell",
    "custom",
    "mcp",
];

/// Function tools in the flat shape (`{"type": "function", "name", "description",
/// "parameters"}`) as the Chat Completions shape the templates know; hosted tools are left out,
/// other types are 400s.
fn convert_tools(tools: &[Json]) -> Result<Vec<Json>, ApiError> {
    let mut out = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        let kind = tool.get("type").and_then(Json::as_str).unwrap_or("");
        if HOSTED_TOOLS.iter().any(|hosted| kind.starts_with(hosted)) {
            continue;
        }
        if kind != "function" {
            return Err(ApiError::invalid_param(
                &param,
                format!("tool type {kind:?} is not supported (function tools are)"),
            ));
        }
        let Some(name) = tool.get("name").and_then(Json::as_str) else {
            return Err(ApiError::invalid_param(
                &param,
                format!("{param} has no name"),
            ));
        };
        out.push(json!({"type": "function", "function": {
            "name": name,
            "description": tool.get("description").cloned().unwrap_or(json!("")),
            "parameters": tool.get("parameters").cloned().unwrap_or(json!({"type": "object"})),
        }}));
    }
    Ok(out)
}

fn text_of(parts: Parts, param: &str) -> Result<String, ApiError> {
    match parts {
        Parts::Text(text) => Ok(text),
        Parts::Parts(parts) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), part.text, part.refusal) {
                    ("input_text" | "output_text" | "text", Some(t), _) => text.push_str(&t),
                    ("refusal", _, Some(t)) => text.push_str(&t),
                    (kind, _, _) => {
                        return Err(ApiError::invalid_param(
                            param,
                            format!(
                                "content part type {kind:?} is not supported (input_text, output_text)"
                            ),
                        ));
                    }
                }
            }
            Ok(text)
        }
    }
}

/// `instructions` and `input` as template messages: `function_call` items join the assistant
/// turn before them (or start one), `function_call_output` items are `tool` messages, and a
/// `reasoning` item's text is the next assistant turn's reasoning. Claude Code's billing line is
/// dropped from system text here too.
fn convert(request: &ResponsesRequest) -> Result<Vec<ChatMessage>, ApiError> {
    let mut out: Vec<ChatMessage> = Vec::new();
    if let Some(instructions) = &request.instructions {
        let text = reply::strip_billing_header(instructions);
        if !text.trim().is_empty() {
            out.push(ChatMessage::system(text));
        }
    }
    let items = match &request.input {
        Input::Text(text) => {
            out.push(ChatMessage::user(text.clone()));
            return Ok(out);
        }
        Input::Items(items) => items,
    };
    if items.is_empty() {
        return Err(ApiError::invalid_param("input", "input must not be empty"));
    }
    let mut reasoning: Option<String> = None;
    // Whether the last message is an assistant turn that function calls may join.
    let mut open_turn = false;
    for (i, raw) in items.iter().enumerate() {
        let param = format!("input[{i}]");
        let mut raw = raw.clone();
        if let Some(object) = raw.as_object_mut()
            && !object.contains_key("type")
            && object.contains_key("role")
        {
            object.insert("type".into(), json!("message"));
        }
        let item: Item = serde_json::from_value(raw)
            .map_err(|e| ApiError::invalid_param(&param, format!("{param}: {e}")))?;
        match item {
            Item::Message { role, content } => {
                let text = text_of(content, &format!("{param}.content"))?;
                let role = match role.as_str() {
                    "system" | "developer" => {
                        ChatMessage::system(reply::strip_billing_header(&text))
                    }
                    "user" => ChatMessage::user(text),
                    "assistant" => ChatMessage {
                        role: "assistant".into(),
                        content: Some(text),
                        reasoning_content: reasoning.take(),
                        ..ChatMessage::default()
                    },
                    other => {
                        return Err(ApiError::invalid_param(
                            &format!("{param}.role"),
                            format!(
                                "unknown role {other:?} in {param} (user, assistant, system, developer)"
                            ),
                        ));
                    }
                };
                open_turn = role.role == "assistant";
                out.push(role);
            }
            Item::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let arguments = if arguments.trim().is_empty() {
                    "{}".to_owned()
                } else {
                    arguments
                };
                let call = ToolCall::function(Some(call_id), name, arguments);
                match out.last_mut() {
                    Some(last) if open_turn => {
                        // The DeepSeek templates recognise a tool-call turn by `content is none`.
                        if last.content.as_deref() == Some("") {
                            last.content = None;
                        }
                        last.tool_calls.push(call);
                    }
                    _ => out.push(ChatMessage {
                        role: "assistant".into(),
                        content: None,
                        reasoning_content: reasoning.take(),
                        tool_calls: vec![call],
                        ..ChatMessage::default()
                    }),
                }
                open_turn = true;
            }
            Item::FunctionCallOutput { call_id, output } => {
                let name = out
                    .iter()
                    .flat_map(|m| &m.tool_calls)
                    .find(|c| c.id.as_deref() == Some(call_id.as_str()))
                    .map(|c| c.function.name.clone());
                out.push(ChatMessage {
                    role: "tool".into(),
                    content: Some(text_of(output, &format!("{param}.output"))?),
                    tool_call_id: Some(call_id),
                    name,
                    ..ChatMessage::default()
                });
                open_turn = false;
            }
            Item::Reasoning { summary, content } => {
                let parts = content.unwrap_or(summary);
                let text: String = parts.into_iter().filter_map(|p| p.text).collect();
                if !text.is_empty() {
                    reasoning = Some(text);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request(body: Json) -> ResponsesRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn converts_items() {
        let r = request(json!({
            "instructions": "Be terse.",
            "input": [
                {"role": "user", "content": "Weather in Paris?"},
                {"type": "reasoning", "id": "rs_1", "summary": [],
                 "content": [{"type": "reasoning_text", "text": "use the tool"}]},
                {"type": "function_call", "call_id": "c1", "name": "get_weather",
                 "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "message", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Sunny."}]},
                {"role": "user", "content": [{"type": "input_text", "text": "Thanks"}]},
            ],
        }));
        let m = convert(&r).unwrap();
        let roles: Vec<&str> = m.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            ["system", "user", "assistant", "tool", "assistant", "user"]
        );
        assert_eq!(m[2].content, None);
        assert_eq!(m[2].reasoning_content.as_deref(), Some("use the tool"));
        assert_eq!(m[2].tool_calls[0].function.name, "get_weather");
        assert_eq!(m[3].name.as_deref(), Some("get_weather"));
        assert_eq!(m[4].content.as_deref(), Some("Sunny."));
        assert_eq!(m[5].content.as_deref(), Some("Thanks"));
        let plain = convert(&request(json!({"input": "Hi"}))).unwrap();
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn rejects_bad_items_and_tools() {
        for input in [
            json!([]),
            json!([{"role": "wizard", "content": "x"}]),
            json!([{"type": "item_reference", "id": "x"}]),
            json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]),
            json!([{"type": "function_call", "name": "f"}]),
        ] {
            assert!(
                convert(&request(json!({"input": input}))).is_err(),
                "{input}"
            );
        }
        assert!(convert_tools(&[json!({"type": "teleport"})]).is_err());
        assert!(convert_tools(&[json!({"name": "f"})]).is_err());
        assert!(convert_tools(&[json!({"type": "function"})]).is_err());
        let t = convert_tools(&[
            json!({"type": "web_search_preview"}),
            json!({"type": "function", "name": "f"}),
            json!({"type": "local_shell"}),
        ])
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0]["function"]["name"], "f");
    }
}
