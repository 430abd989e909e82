//! llama-server's utility endpoints, which editor plugins and tools call next to the OpenAI API:
//! `GET /props` (the context size and chat template: Zed reads `n_ctx` here), `POST /tokenize`,
//! `POST /detokenize` and `POST /apply-template` (a conversation rendered with the chat template,
//! not generated from).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::ServerState;
use super::error::ApiError;
use super::routes::read_json;
use super::types::InMessage;
use crate::chat_template::RenderOptions;

/// `GET /props`: what the server runs, in llama-server's field names.
pub async fn props(State(state): State<Arc<ServerState>>) -> Response {
    let info = state.engine.info();
    axum::Json(json!({
        "default_generation_settings": {
            "n_ctx": info.n_ctx,
            "model": state.options.model_id,
        },
        "n_ctx": info.n_ctx,
        "total_slots": info.slots,
        "model_path": info.path.display().to_string(),
        "model_alias": state.options.model_id,
        "chat_template": state.template().source(),
        "modalities": {"vision": false, "audio": false},
        "n_vocab": info.n_vocab,
        "device": info.device,
        "build_info": format!("lanternfish {}", env!("CARGO_PKG_VERSION")),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenizeRequest {
    content: String,
    /// Add the model's BOS token (llama-server's `add_special`).
    #[serde(default)]
    add_special: bool,
    /// Read special-token text (`<｜User｜>`, FIM markers) as those tokens.
    #[serde(default = "yes")]
    parse_special: bool,
    /// Return `{id, piece}` objects instead of ids.
    #[serde(default)]
    with_pieces: bool,
}

fn yes() -> bool {
    true
}

/// `POST /tokenize`: `{"content": …}` → `{"tokens": [ids]}` (or `[{id, piece}]`).
pub async fn tokenize(State(state): State<Arc<ServerState>>, body: Body) -> Response {
    let result = async {
        let request: TokenizeRequest = read_json(&state, body).await?;
        let tokenizer = state.engine.tokenizer();
        let ids =
            tokenizer.encode_with(&request.content, request.add_special, request.parse_special)?;
        let tokens: Vec<serde_json::Value> = if request.with_pieces {
            ids.iter()
                .map(|&id| json!({"id": id, "piece": tokenizer.decode_with(&[id], false)}))
                .collect()
        } else {
            ids.iter().map(|&id| json!(id)).collect()
        };
        Ok::<_, ApiError>(axum::Json(json!({ "tokens": tokens })).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetokenizeRequest {
    tokens: Vec<u32>,
}

/// `POST /detokenize`: `{"tokens": [ids]}` → `{"content": …}`; an id outside the vocabulary is
/// a 400 naming it.
pub async fn detokenize(State(state): State<Arc<ServerState>>, body: Body) -> Response {
    let result = async {
        let request: DetokenizeRequest = read_json(&state, body).await?;
        let tokenizer = state.engine.tokenizer();
        let n_vocab = tokenizer.vocab_size();
        if let Some(bad) = request.tokens.iter().find(|&&id| id as usize >= n_vocab) {
            return Err(ApiError::invalid_param(
                "tokens",
                format!("token {bad} is outside the vocabulary of {n_vocab}"),
            ));
        }
        let content = tokenizer.decode_with(&request.tokens, false);
        Ok(axum::Json(json!({ "content": content })).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
struct ApplyTemplateRequest {
    messages: Vec<InMessage>,
    #[serde(default)]
    chat_template_kwargs: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    reasoning_effort: Option<String>,
}

/// `POST /apply-template`: `{"messages": […]}` (and `chat_template_kwargs`, `reasoning_effort` as
/// a chat completion takes them) → `{"prompt": …}`, the text a chat completion with these
/// messages would start from (generation prompt included).
pub async fn apply_template(State(state): State<Arc<ServerState>>, body: Body) -> Response {
    let result = async {
        let request: ApplyTemplateRequest = read_json(&state, body).await?;
        let messages = super::chat::convert_messages(&request.messages)?;
        let template = state.template();
        let extra = super::params::template_variables(
            template.source(),
            request.chat_template_kwargs.as_ref(),
            request.reasoning_effort.as_deref(),
        )?;
        let options = RenderOptions {
            add_generation_prompt: true,
            extra,
            ..RenderOptions::default()
        };
        let prompt = template.render(&messages, &options)?;
        Ok::<_, ApiError>(axum::Json(json!({ "prompt": prompt })).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}
