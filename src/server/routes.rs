//! The router, the API-key check, request bodies and the small endpoints (`/health`,
//! `/v1/models`; llama-server's `/props`, `/tokenize`, `/detokenize` and `/apply-template` are in
//! `utility.rs`, `/metrics` in `metrics.rs`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::ServerState;
use super::error::ApiError;
use super::types::ModelEntry;

/// The routes, with the API-key check in front of all but `/health`.
pub fn router(state: Arc<ServerState>) -> Router {
    let api = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/chat/completions", post(super::chat::handle))
        .route("/v1/completions", post(super::completions::handle))
        // The same without the /v1 prefix, as llama-server and some clients use.
        .route("/models", get(models))
        .route("/chat/completions", post(super::chat::handle))
        .route("/completions", post(super::completions::handle))
        // llama-server's utility endpoints.
        .route("/props", get(super::utility::props))
        .route("/tokenize", post(super::utility::tokenize))
        .route("/detokenize", post(super::utility::detokenize))
        .route("/apply-template", post(super::utility::apply_template))
        .route("/metrics", get(super::metrics::handle))
        .route("/infill", post(super::infill::handle))
        // Anthropic's Messages API and OpenAI's Responses API.
        .route("/v1/messages", post(super::messages::handle))
        .route(
            "/v1/messages/count_tokens",
            post(super::messages::count_tokens),
        )
        .route("/v1/responses", post(super::responses::handle))
        .route("/responses", post(super::responses::handle))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Rejects requests without the right key (when the server has one): `Authorization: Bearer`,
/// or `x-api-key` as the Anthropic SDKs send it (the Messages API answers in its own shape).
async fn authorize(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(key) = &state.options.api_key {
        let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
        let bearer = header(AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let matches = |given: Option<&str>| {
            given.is_some_and(|given| constant_time_eq(given.as_bytes(), key.as_bytes()))
        };
        if !matches(bearer) && !matches(header("x-api-key").map(str::trim)) {
            let error = ApiError::unauthorized();
            if request.uri().path().starts_with("/v1/messages") {
                return super::messages::error_response(&error);
            }
            return error.into_response();
        }
    }
    next.run(request).await
}

/// Compares without an early exit, so the time taken does not reveal how much of a key matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn health(State(state): State<Arc<ServerState>>) -> Response {
    axum::Json(json!({"status": "ok", "model": state.options.model_id})).into_response()
}

fn model_entry(state: &ServerState) -> ModelEntry {
    ModelEntry {
        id: state.options.model_id.clone(),
        object: "model",
        created: state.created,
        owned_by: "lanternfish",
    }
}

async fn models(State(state): State<Arc<ServerState>>) -> Response {
    axum::Json(json!({"object": "list", "data": [model_entry(&state)]})).into_response()
}

async fn model(State(state): State<Arc<ServerState>>, Path(id): Path<String>) -> Response {
    match check_model(&state, Some(&id)) {
        Ok(()) => axum::Json(model_entry(&state)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// A request's `model` must name the served model (or be absent).
pub fn check_model(state: &ServerState, requested: Option<&str>) -> Result<(), ApiError> {
    match requested {
        None => Ok(()),
        Some(name) if state.model_names().iter().any(|n| n == name) => Ok(()),
        Some(name) => Err(ApiError::unknown_model(name, &state.options.model_id)),
    }
}

/// Reads the whole body within the size limit and the read timeout, then parses it as `T`.
/// Too large: 413; too slow: 408; not JSON, not UTF-8 or wrong types: 400 naming the problem.
pub async fn read_json<T: DeserializeOwned>(
    state: &ServerState,
    body: Body,
) -> Result<T, ApiError> {
    let limit = state.options.body_limit;
    let read = async {
        let mut bytes = Vec::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    let bytes = tokio::time::timeout(state.options.read_timeout, read)
        .await
        .map_err(|_| ApiError::timeout())??;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "invalid request",
            _ => "the body is not valid JSON",
        };
        ApiError::bad_request(format!("{what}: {e}"))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn key_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
