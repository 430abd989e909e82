//! The streamed answer of `POST /v1/messages`: `message_start`, then per content block
//! `content_block_start`, `content_block_delta` (`thinking_delta`, `text_delta`,
//! `input_json_delta`) and `content_block_stop`, then `message_delta` (stop reason and usage) and
//! `message_stop`; `ping` while the request waits, `error` if the engine fails. Each SSE event
//! is named by its type, as the Anthropic SDKs expect.

use std::convert::Infallible;

use axum::response::sse;
use futures_util::{Stream, StreamExt, stream};
use serde_json::{Value as Json, json};

use super::messages::{Reply, error_event, usage};
use super::reply::{Piece, Pieces};
use super::tools::ParsedCall;
use crate::engine::Generation;

/// The kind of the content block that is open.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    None,
    Thinking,
    Text,
}

struct Streamer {
    pieces: Pieces,
    reply: Reply,
    prompt_tokens: usize,
    started: bool,
    finished: bool,
    open: Open,
    /// The index of the next content block.
    next_index: usize,
}

/// The events of one streamed message.
pub fn events(
    pieces: Pieces,
    reply: Reply,
    prompt_tokens: usize,
) -> impl Stream<Item = Result<sse::Event, Infallible>> + Send {
    let streamer = Streamer {
        pieces,
        reply,
        prompt_tokens,
        started: false,
        finished: false,
        open: Open::None,
        next_index: 0,
    };
    stream::unfold(streamer, |mut s| async move {
        let events = s.next_events().await?;
        Some((stream::iter(events.into_iter().map(Ok)), s))
    })
    .flatten()
}

fn event(data: Json) -> sse::Event {
    let name = data["type"].as_str().unwrap_or("message").to_owned();
    sse::Event::default().event(name).data(data.to_string())
}

impl Streamer {
    async fn next_events(&mut self) -> Option<Vec<sse::Event>> {
        if self.finished {
            return None;
        }
        if !self.started {
            self.started = true;
            let message = json!({
                "id": self.reply.id,
                "type": "message",
                "role": "assistant",
                "model": self.reply.model,
                "content": [],
                "stop_reason": Json::Null,
                "stop_sequence": Json::Null,
                "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 0,
                          "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
            });
            return Some(vec![
                event(json!({"type": "message_start", "message": message})),
                event(json!({"type": "ping"})),
            ]);
        }
        loop {
            let Some(piece) = self.pieces.next().await else {
                self.finished = true;
                return None;
            };
            let mut events = Vec::new();
            match piece {
                Piece::Thinking(text) => {
                    self.open_block(Open::Thinking, &mut events);
                    events.push(self.delta(json!({"type": "thinking_delta", "thinking": text})));
                }
                Piece::Text(text) => {
                    self.open_block(Open::Text, &mut events);
                    events.push(self.delta(json!({"type": "text_delta", "text": text})));
                }
                Piece::Token(_) => continue,
                Piece::Done { generation, calls } => {
                    self.finished = true;
                    self.finish(&generation, &calls, &mut events);
                }
                Piece::Failed(error) => {
                    self.finished = true;
                    events.push(error_event(&error));
                }
            }
            return Some(events);
        }
    }

    /// The index of the open block.
    fn index(&self) -> usize {
        self.next_index.saturating_sub(1)
    }

    fn delta(&self, delta: Json) -> sse::Event {
        event(json!({"type": "content_block_delta", "index": self.index(), "delta": delta}))
    }

    fn close_block(&mut self, events: &mut Vec<sse::Event>) {
        if self.open != Open::None {
            events.push(event(
                json!({"type": "content_block_stop", "index": self.index()}),
            ));
            self.open = Open::None;
        }
    }

    /// Starts a block of `kind` unless one is open.
    fn open_block(&mut self, kind: Open, events: &mut Vec<sse::Event>) {
        if self.open == kind {
            return;
        }
        self.close_block(events);
        let block = match kind {
            Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            _ => json!({"type": "text", "text": ""}),
        };
        events.push(event(
            json!({"type": "content_block_start", "index": self.next_index,
                                 "content_block": block}),
        ));
        self.next_index += 1;
        self.open = kind;
    }

    /// The tool-use blocks, `message_delta` and `message_stop`.
    fn finish(
        &mut self,
        generation: &Generation,
        calls: &[ParsedCall],
        events: &mut Vec<sse::Event>,
    ) {
        if self.next_index == 0 && calls.is_empty() {
            // An empty answer is still a text block, as in the non-streamed message.
            self.open_block(Open::Text, events);
        }
        self.close_block(events);
        for (i, call) in calls.iter().enumerate() {
            let index = self.next_index;
            self.next_index += 1;
            let block = self.reply.tool_use(i, call, false);
            events.push(event(json!({"type": "content_block_start", "index": index,
                                     "content_block": block})));
            events.push(event(json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": call.arguments}})));
            events.push(event(json!({"type": "content_block_stop", "index": index})));
        }
        let (stop_reason, stop_sequence) = self.reply.stop(generation, calls);
        events.push(event(json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": usage(generation),
        })));
        events.push(event(json!({"type": "message_stop"})));
    }
}
