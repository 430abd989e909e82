//! The streamed answer of `POST /v1/responses`: `response.created` and `response.in_progress`;
//! for a reasoning item or the message, `response.output_item.added`,
//! `response.content_part.added`, the text deltas (`response.reasoning_text.delta`,
//! `response.output_text.delta`) and their `.done` events, `response.content_part.done` and
//! `response.output_item.done`; for each function call its item events around
//! `response.function_call_arguments.delta` and `.done`; last `response.completed` (or
//! `response.incomplete` when cut by `max_output_tokens`) with usage, or `response.failed`. Every
//! event carries a `sequence_number` and is named by its type.

use std::convert::Infallible;

use axum::response::sse;
use futures_util::{Stream, StreamExt, stream};
use serde_json::{Value as Json, json};

use super::error::ApiError;
use super::reply::{Piece, Pieces};
use super::responses::{Reply, message_item, output_text, reasoning_item, status};
use super::tools::ParsedCall;
use crate::engine::Generation;

/// The kind of output item that is open.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    None,
    Reasoning,
    Message,
}

struct Streamer {
    pieces: Pieces,
    reply: Reply,
    sequence: u64,
    started: bool,
    finished: bool,
    open: Open,
    /// The open item's text so far.
    text: String,
    /// Finished output items.
    output: Vec<Json>,
}

/// The events of one streamed response.
pub fn events(
    pieces: Pieces,
    reply: Reply,
) -> impl Stream<Item = Result<sse::Event, Infallible>> + Send {
    let streamer = Streamer {
        pieces,
        reply,
        sequence: 0,
        started: false,
        finished: false,
        open: Open::None,
        text: String::new(),
        output: Vec::new(),
    };
    stream::unfold(streamer, |mut s| async move {
        let events = s.next_events().await?;
        Some((stream::iter(events.into_iter().map(Ok)), s))
    })
    .flatten()
}

impl Streamer {
    /// An event of `kind` with `fields` and the next sequence number.
    fn event(&mut self, kind: &str, fields: Json) -> sse::Event {
        let mut data = json!({"type": kind, "sequence_number": self.sequence});
        self.sequence += 1;
        if let (Some(data), Json::Object(fields)) = (data.as_object_mut(), fields) {
            data.extend(fields);
        }
        sse::Event::default().event(kind).data(data.to_string())
    }

    async fn next_events(&mut self) -> Option<Vec<sse::Event>> {
        if self.finished {
            return None;
        }
        if !self.started {
            self.started = true;
            let response = self.reply.object("in_progress", Vec::new(), None);
            return Some(vec![
                self.event("response.created", json!({"response": response})),
                self.event("response.in_progress", json!({"response": response})),
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
                    self.open_item(Open::Reasoning, &mut events);
                    events.push(self.text_delta("response.reasoning_text.delta", &text));
                }
                Piece::Text(text) => {
                    self.open_item(Open::Message, &mut events);
                    events.push(self.text_delta("response.output_text.delta", &text));
                }
                Piece::Token(_) => continue,
                Piece::Done { generation, calls } => {
                    self.finished = true;
                    self.finish(&generation, &calls, &mut events);
                }
                Piece::Failed(error) => {
                    self.finished = true;
                    events.push(self.failed(&error));
                }
            }
            return Some(events);
        }
    }

    fn item_id(&self) -> String {
        match self.open {
            Open::Reasoning => self.reply.reasoning_id(self.output.len()),
            _ => self.reply.message_id(self.output.len()),
        }
    }

    fn text_delta(&mut self, kind: &str, text: &str) -> sse::Event {
        self.text.push_str(text);
        let mut fields = json!({"item_id": self.item_id(), "output_index": self.output.len(),
                                "content_index": 0, "delta": text});
        if self.open == Open::Message {
            fields["logprobs"] = json!([]);
        }
        self.event(kind, fields)
    }

    /// Opens an item of `kind` (closing another one) unless it is open.
    fn open_item(&mut self, kind: Open, events: &mut Vec<sse::Event>) {
        if self.open == kind {
            return;
        }
        self.close_item(events);
        self.open = kind;
        let id = self.item_id();
        let (item, part) = match kind {
            Open::Reasoning => (
                json!({"type": "reasoning", "id": id, "summary": [], "content": [],
                       "status": "in_progress"}),
                json!({"type": "reasoning_text", "text": ""}),
            ),
            _ => (
                json!({"type": "message", "id": id, "role": "assistant", "content": [],
                       "status": "in_progress"}),
                output_text(""),
            ),
        };
        let index = self.output.len();
        events.push(self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        ));
        events.push(self.event(
            "response.content_part.added",
            json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
        ));
    }

    /// Sends the open item's `.done` events and keeps it for the final object.
    fn close_item(&mut self, events: &mut Vec<sse::Event>) {
        let text = std::mem::take(&mut self.text);
        let id = self.item_id();
        let index = self.output.len();
        let (done, part, item) = match self.open {
            Open::None => return,
            Open::Reasoning => (
                "response.reasoning_text.done",
                json!({"type": "reasoning_text", "text": text}),
                reasoning_item(&id, &text),
            ),
            Open::Message => (
                "response.output_text.done",
                output_text(&text),
                message_item(&id, &text),
            ),
        };
        let mut fields = json!({"item_id": id, "output_index": index, "content_index": 0,
                                "text": text});
        if self.open == Open::Message {
            fields["logprobs"] = json!([]);
        }
        events.push(self.event(done, fields));
        events.push(self.event(
            "response.content_part.done",
            json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
        ));
        events.push(self.event(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
        self.output.push(item);
        self.open = Open::None;
    }

    /// The function calls' events and `response.completed` (or `.incomplete`).
    fn finish(
        &mut self,
        generation: &Generation,
        calls: &[ParsedCall],
        events: &mut Vec<sse::Event>,
    ) {
        self.close_item(events);
        if self.output.is_empty() && calls.is_empty() {
            // An empty answer is still a message, as in the non-streamed object.
            self.open_item(Open::Message, events);
            self.close_item(events);
        }
        for (i, call) in calls.iter().enumerate() {
            let index = self.output.len();
            let added = self.reply.function_call(i, call, false);
            let item = self.reply.function_call(i, call, true);
            let id = item["id"].clone();
            events.push(self.event(
                "response.output_item.added",
                json!({"output_index": index, "item": added}),
            ));
            events.push(self.event(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": call.arguments}),
            ));
            events.push(self.event(
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": index, "name": call.name,
                       "arguments": call.arguments}),
            ));
            events.push(self.event(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            ));
            self.output.push(item);
        }
        let status = status(generation);
        let response =
            self.reply
                .object(status, std::mem::take(&mut self.output), Some(generation));
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        events.push(self.event(kind, json!({"response": response})));
    }

    /// `response.failed` with the error.
    fn failed(&mut self, error: &ApiError) -> sse::Event {
        let mut response = self
            .reply
            .object("failed", std::mem::take(&mut self.output), None);
        response["error"] = json!({"code": error.code.unwrap_or("server_error"),
                                   "message": error.message});
        self.event("response.failed", json!({"response": response}))
    }
}
