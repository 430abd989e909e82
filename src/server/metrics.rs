//! `GET /metrics`: the server's counters in Prometheus' text format (version 0.0.4): finished
//! requests per endpoint, prompt tokens (and those served from the cache), generated tokens,
//! prefill and decode seconds, and the requests queued or running now.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::ServerState;
use crate::engine::Generation;

/// The endpoints whose finished requests are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completion,
    Infill,
    Messages,
    Responses,
}

impl Endpoint {
    const ALL: [Endpoint; 5] = [
        Endpoint::Chat,
        Endpoint::Completion,
        Endpoint::Infill,
        Endpoint::Messages,
        Endpoint::Responses,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completion => "completion",
            Endpoint::Infill => "infill",
            Endpoint::Messages => "messages",
            Endpoint::Responses => "responses",
        }
    }
}

/// Counters since the server started; updated once per finished request.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; Endpoint::ALL.len()],
    prompt_tokens: AtomicU64,
    cached_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    prefill_us: AtomicU64,
    decode_us: AtomicU64,
}

impl Metrics {
    /// Counts one finished request of `endpoint`.
    pub fn record(&self, endpoint: Endpoint, generation: &Generation) {
        let s = &generation.stats;
        let add = |counter: &AtomicU64, n: u64| counter.fetch_add(n, Ordering::Relaxed);
        add(&self.requests[endpoint as usize], 1);
        add(&self.prompt_tokens, s.prompt_tokens as u64);
        add(&self.cached_tokens, s.reused_tokens as u64);
        add(&self.generated_tokens, s.generated_tokens as u64);
        add(&self.prefill_us, (s.prefill_s * 1e6) as u64);
        add(&self.decode_us, (s.decode_s * 1e6) as u64);
    }

    /// The text `/metrics` serves, with `in_flight` requests queued or running.
    pub fn render(&self, in_flight: usize) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut text = String::new();
        let _ = writeln!(
            text,
            "# HELP lanternfish_requests_total Finished requests by endpoint."
        );
        let _ = writeln!(text, "# TYPE lanternfish_requests_total counter");
        for endpoint in Endpoint::ALL {
            let _ = writeln!(
                text,
                "lanternfish_requests_total{{endpoint=\"{}\"}} {}",
                endpoint.name(),
                get(&self.requests[endpoint as usize])
            );
        }
        let counters = [
            (
                "prompt_tokens_total",
                "Prompt tokens of finished requests.",
                get(&self.prompt_tokens) as f64,
            ),
            (
                "prompt_tokens_cached_total",
                "Prompt tokens served from the KV cache instead of prefilled.",
                get(&self.cached_tokens) as f64,
            ),
            (
                "tokens_generated_total",
                "Tokens generated.",
                get(&self.generated_tokens) as f64,
            ),
            (
                "prefill_seconds_total",
                "Seconds spent prefilling prompts.",
                get(&self.prefill_us) as f64 / 1e6,
            ),
            (
                "decode_seconds_total",
                "Seconds spent generating tokens.",
                get(&self.decode_us) as f64 / 1e6,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(text, "# HELP lanternfish_{name} {help}");
            let _ = writeln!(text, "# TYPE lanternfish_{name} counter");
            let _ = writeln!(text, "lanternfish_{name} {value}");
        }
        let _ = writeln!(
            text,
            "# HELP lanternfish_requests_in_flight Requests queued or running."
        );
        let _ = writeln!(text, "# TYPE lanternfish_requests_in_flight gauge");
        let _ = writeln!(text, "lanternfish_requests_in_flight {in_flight}");
        text
    }
}

/// `GET /metrics`.
pub async fn handle(State(state): State<Arc<ServerState>>) -> Response {
    let in_flight = state.in_flight.load(Ordering::Relaxed);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(in_flight),
    )
        .into_response()
}
