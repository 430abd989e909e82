//! The OpenAI-compatible HTTP server behind `lanternfish serve`: `GET /v1/models`,
//! `POST /v1/chat/completions`, `POST /v1/completions` (with `suffix` as fill-in-the-middle),
//! `POST /v1/responses` (OpenAI's Responses API), `POST /v1/messages` (Anthropic's Messages API)
//! and `GET /health`, streamed with server-sent events, over one [`Engine`].
//!
//! - `routes.rs`: the router, API-key check, request bodies (size limit, read timeout, JSON
//!   errors) and the small endpoints; `chat.rs` and `completions.rs`: the two OpenAI generation
//!   endpoints; `responses.rs`, `messages.rs` and their `_stream.rs` files: the agent APIs;
//!   `reply.rs`: what the chat-shaped APIs share (prompt rendering, reply pieces);
//!   `job.rs`: engine jobs bridged to tokio (cancelled when the client goes away);
//!   `types.rs`: the wire types; `params.rs`: shared parameter checks; `tools.rs`: DeepSeek
//!   tool-call parsing; `fim.rs`: fill-in-the-middle prompts; `error.rs`: OpenAI-shaped errors.
//! - Requests queue in the engine's FIFO and run one at a time (the engine does not batch
//!   sequences yet); the KV cache of the previous request is reused for a shared prefix.
//! - Every failure is an HTTP status with `{"error": {"message", "type", "param", "code"}}`
//!   (Anthropic's `{"type": "error", "error": {"type", "message"}}` on `/v1/messages`); an
//!   engine error fails its own request only.

mod chat;
mod completions;
pub mod error;
pub mod fim;
mod infill;
mod job;
mod messages;
mod messages_stream;
mod metrics;
mod params;
mod reply;
mod responses;
mod responses_stream;
mod routes;
pub mod tools;
pub mod types;
mod utility;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::chat_template::ChatTemplate;
use crate::engine::Engine;
use fim::FimTokens;

pub use routes::router;

/// How long a client may take to send a request's headers before its connection is closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of a server (the CLI's flags).
#[derive(Debug)]
pub struct ServerOptions {
    /// The id `/v1/models` lists and requests must name (any of [`ServerState::model_names`]).
    pub model_id: String,
    /// Require `Authorization: Bearer <key>` on every route but `/health`.
    pub api_key: Option<String>,
    /// Largest request body, in bytes (larger ones get 413).
    pub body_limit: usize,
    /// How long a client may take to send its body (408 after).
    pub read_timeout: Duration,
    /// A chat template used instead of the model's.
    pub template: Option<ChatTemplate>,
    /// Sequences the engine decodes together (accepted; 1 today: requests run in turn).
    pub parallel: usize,
    /// Most requests queued or running at once; more get 503.
    pub max_queue: usize,
    /// No line per request on stderr.
    pub quiet: bool,
}

impl ServerOptions {
    pub fn new(model_id: impl Into<String>) -> ServerOptions {
        ServerOptions {
            model_id: model_id.into(),
            api_key: None,
            body_limit: 8 << 20,
            read_timeout: Duration::from_secs(30),
            template: None,
            parallel: 1,
            max_queue: 256,
            quiet: false,
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct ServerState {
    pub engine: Arc<Engine>,
    pub options: ServerOptions,
    /// The model's fill-in-the-middle tokens, if it has them.
    pub fim: Option<FimTokens>,
    /// When the server started (the `created` of `/v1/models`).
    pub created: u64,
    /// Jobs queued or running in the engine.
    pub in_flight: Arc<AtomicUsize>,
    /// Counters of finished requests (`/metrics`).
    pub metrics: Arc<metrics::Metrics>,
}

impl ServerState {
    pub fn new(engine: Arc<Engine>, options: ServerOptions) -> ServerState {
        let fim = FimTokens::find(engine.tokenizer());
        ServerState {
            engine,
            options,
            fim,
            created: params::unix_now(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            metrics: Arc::default(),
        }
    }

    /// The chat template requests are rendered with.
    pub fn template(&self) -> &ChatTemplate {
        self.options
            .template
            .as_ref()
            .unwrap_or_else(|| self.engine.template())
    }

    /// Names a request's `model` may use: the served id, the model's own name and file name.
    pub fn model_names(&self) -> Vec<String> {
        let info = self.engine.info();
        let mut names = vec![self.options.model_id.clone(), info.name.clone()];
        if let Some(file) = info.path.file_name() {
            names.push(file.to_string_lossy().into_owned());
        }
        names
    }
}

/// Serves `state` on `listener` until the process ends. Each connection is HTTP/1.1 with
/// keep-alive; a request's headers must arrive within 30 s of the connection opening or going idle
/// (slower or idle clients are disconnected, so half-sent requests cannot pile up).
pub async fn serve(listener: TcpListener, state: Arc<ServerState>) -> std::io::Result<()> {
    let app = router(state);
    loop {
        let (stream, _peer): (_, SocketAddr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!("connection closed: {error}");
            }
        });
    }
}
