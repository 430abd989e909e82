//! Errors as the OpenAI API shapes them: an HTTP status and
//! `{"error": {"message", "type", "param", "code"}}`. Every failure a handler can meet becomes
//! one of these, so a client always gets a JSON body it can show, never a bare status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One API error: the status and the body's fields.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `not_found_error`, `server_error`, …
    pub kind: &'static str,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// A machine-readable code (`model_not_found`, `context_length_exceeded`, …).
    pub code: Option<&'static str>,
}

/// The JSON body of an error.
#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
        }
    }

    /// 400: a parameter or the body is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400 about one parameter.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::bad_request(message).with_param(param)
    }

    /// 401: a missing or wrong API key.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid or missing API key: send the header `Authorization: Bearer <key>` with the key the server was started with",
        )
        .with_code("invalid_api_key")
    }

    /// 404: no such route.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }

    /// 404: the `model` field names a model this server does not serve.
    pub fn unknown_model(requested: &str, served: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("the model `{requested}` does not exist; this server serves `{served}`"),
        )
        .with_param("model")
        .with_code("model_not_found")
    }

    /// 405: a route exists but not for this method.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method not allowed on this route",
        )
    }

    /// 408: the client took too long to send its request body.
    pub fn timeout() -> ApiError {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "the request body did not arrive in time",
        )
    }

    /// 413: the body is larger than the server accepts.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("the request body is larger than {limit} bytes"),
        )
        .with_code("request_too_large")
    }

    /// 503: too many requests are queued; clients retry (the openai client does by itself).
    pub fn busy(queued: usize) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            format!("the server is busy: {queued} requests are queued or running; retry shortly"),
        )
        .with_code("server_busy")
    }

    /// 400: the prompt does not fit the context window.
    pub fn context_length(message: impl Into<String>) -> ApiError {
        ApiError::bad_request(message)
            .with_param("messages")
            .with_code("context_length_exceeded")
    }

    /// 500: the engine failed on this request (the server keeps serving others).
    pub fn server(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    pub fn with_param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_owned());
        self
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    /// The JSON body (also sent as an SSE event when a stream fails part-way).
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        })
        .unwrap_or_default()
    }
}

impl From<crate::Error> for ApiError {
    /// Engine errors: a prompt that does not fit is the client's (400); a tokenizer or template
    /// failure on the client's messages is too; anything else is the server's (500).
    fn from(error: crate::Error) -> ApiError {
        match error {
            crate::Error::ContextFull { .. } => ApiError::context_length(error.to_string()),
            crate::Error::ChatTemplate { .. } | crate::Error::Tokenizer { .. } => {
                ApiError::bad_request(error.to_string())
            }
            _ => ApiError::server(error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_openai_shape() {
        let e = ApiError::unknown_model("gpt-4", "tiny");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let body = e.body();
        let error = &body["error"];
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["param"], "model");
        assert_eq!(error["code"], "model_not_found");
        assert!(error["message"].as_str().unwrap_or("").contains("gpt-4"));
        let plain = ApiError::bad_request("x").body();
        assert!(plain["error"]["param"].is_null());
        assert!(plain["error"]["code"].is_null());
    }

    #[test]
    fn engine_errors_map_to_client_or_server() {
        let full = ApiError::from(crate::Error::ContextFull { what: "x".into() });
        assert_eq!(full.status, StatusCode::BAD_REQUEST);
        assert_eq!(full.code, Some("context_length_exceeded"));
        let gpu = ApiError::from(crate::Error::Gpu {
            what: "submit".into(),
            message: "lost".into(),
        });
        assert_eq!(gpu.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
