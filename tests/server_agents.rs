//! The APIs coding agents speak, end to end through the real binary with the tiny golden V3 model:
//! Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`, what Claude Code
//! calls) and OpenAI's Responses API (`/v1/responses`, what Codex CLI calls): the event
//! sequences on the wire, hostile bodies answered in each API's own error shape, clients that
//! disconnect, and the real `anthropic` and `openai` Python clients (tests/agent_clients.py, run
//! with the venv scripts/openai-venv.sh makes).

#![allow(clippy::unwrap_used)]

mod server_common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_common::scripted::{self, HERMES_SCRIPT, HERMES_TEMPLATE};
use server_common::{Response, Server, request, send_and_leave};

/// `(event name, data)` of each server-sent event.
fn named_events(response: &Response) -> Vec<(String, Value)> {
    let text = String::from_utf8_lossy(&response.body).replace("\r\n", "\n");
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str(v.trim()).unwrap());
                }
            }
            Some((name?, data?))
        })
        .collect()
}

/// Asserts an Anthropic-shaped error with this status; returns the `error` object.
fn anthropic_error(response: &Response, status: u16) -> Value {
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let body = response.json();
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["error"]["type"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"].clone()
}

fn messages_body(content: &str, max_tokens: u64, stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": max_tokens,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "stream": stream,
    })
}

/// `/v1/messages` whole and streamed: the message object, the event sequence (named events, one
/// block opened and closed in order, `message_delta` with the stop reason and usage, then
/// `message_stop`), the same text both ways, usage split into fresh and cached input tokens
/// that add up to `count_tokens`.
#[test]
fn messages_api_objects_and_event_sequence() {
    let server = Server::start(&[]);
    let whole = server.post("/v1/messages", &messages_body("Hello there", 6, false));
    assert_eq!(
        whole.status,
        200,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    let whole = whole.json();
    assert_eq!(whole["type"], "message");
    assert!(whole["id"].as_str().unwrap().starts_with("msg_"), "{whole}");
    assert_eq!(whole["model"], "tiny-v3-Q4_K_M");
    let text = whole["content"][0]["text"].as_str().unwrap().to_owned();
    let stop = whole["stop_reason"].as_str().unwrap();
    assert!(["end_turn", "max_tokens"].contains(&stop), "{whole}");
    let usage = &whole["usage"];
    let prompt = usage["input_tokens"].as_u64().unwrap()
        + usage["cache_read_input_tokens"].as_u64().unwrap();
    let mut count = messages_body("Hello there", 6, false);
    count.as_object_mut().unwrap().remove("max_tokens");
    let counted = server.post("/v1/messages/count_tokens", &count).json();
    assert_eq!(counted["input_tokens"].as_u64(), Some(prompt), "{counted}");

    let streamed = server.post("/v1/messages", &messages_body("Hello there", 6, true));
    assert_eq!(streamed.status, 200);
    let events = named_events(&streamed);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "{name}: {data}");
    }
    assert_eq!(names[0], "message_start", "{names:?}");
    assert_eq!(
        names[names.len() - 2..],
        ["message_delta", "message_stop"],
        "{names:?}"
    );
    let mut open = None;
    let mut streamed_text = String::new();
    for (name, data) in &events {
        match name.as_str() {
            "content_block_start" => {
                assert!(open.is_none(), "{names:?}");
                open = Some(data["index"].as_u64().unwrap());
            }
            "content_block_delta" => {
                assert_eq!(open, data["index"].as_u64(), "{names:?}");
                streamed_text += data["delta"]["text"].as_str().unwrap();
            }
            "content_block_stop" => {
                assert_eq!(open.take(), data["index"].as_u64(), "{names:?}");
            }
            _ => {}
        }
    }
    assert_eq!(streamed_text, text);
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], stop, "{delta}");
    // The same prompt again: all but the last token come from the cache.
    let cached = delta["usage"]["cache_read_input_tokens"].as_u64().unwrap();
    assert!(cached * 10 >= prompt * 9, "{delta}");
    assert_eq!(
        delta["usage"]["input_tokens"].as_u64().unwrap() + cached,
        prompt,
        "{delta}"
    );

    // Finished requests are counted under their own endpoint.
    let metrics = String::from_utf8(server.get("/metrics").body).unwrap();
    assert!(
        metrics.contains("lanternfish_requests_total{endpoint=\"messages\"} 2"),
        "{metrics}"
    );

    // A stop sequence from the middle of the greedy reply ends it there, and is the one named.
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() >= 3, "the reply is too short to cut: {text:?}");
    let cut: String = chars[1..3].iter().collect();
    let mut body = messages_body("Hello there", 6, false);
    body["stop_sequences"] = json!(["never in this reply", cut]);
    let stopped = server.post("/v1/messages", &body).json();
    assert_eq!(stopped["stop_reason"], "stop_sequence", "{stopped}");
    assert_eq!(stopped["stop_sequence"], cut.as_str(), "{stopped}");
    let kept = stopped["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(kept) && kept.len() < text.len(),
        "{stopped}"
    );
}

/// `/v1/responses` whole and streamed: the response object, the numbered event sequence and the
/// same text both ways, usage with cached tokens; `previous_response_id` is a 400.
#[test]
fn responses_api_objects_and_event_sequence() {
    let server = Server::start(&[]);
    let body = |stream: bool| {
        json!({
            "model": "tiny-v3-Q4_K_M",
            "instructions": "Be brief.",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hello there"}]}],
            "max_output_tokens": 6,
            "temperature": 0,
            "store": false,
            "stream": stream,
        })
    };
    let whole = server.post("/v1/responses", &body(false));
    assert_eq!(
        whole.status,
        200,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    let whole = whole.json();
    assert_eq!(whole["object"], "response");
    assert!(["completed", "incomplete"].contains(&whole["status"].as_str().unwrap()));
    let item = &whole["output"][0];
    assert_eq!(item["type"], "message", "{whole}");
    let text = item["content"][0]["text"].as_str().unwrap().to_owned();
    let usage = &whole["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 5, "{usage}");
    assert!(usage["output_tokens"].as_u64().unwrap() <= 6, "{usage}");

    let streamed = server.post("/v1/responses", &body(true));
    assert_eq!(streamed.status, 200);
    let events = named_events(&streamed);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str(), "{data}");
        assert_eq!(data["sequence_number"].as_u64(), Some(i as u64), "{data}");
    }
    assert_eq!(names[..2], ["response.created", "response.in_progress"]);
    let last = names[names.len() - 1];
    assert!(
        last == "response.completed" || last == "response.incomplete",
        "{names:?}"
    );
    let order = [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|n| {
            names
                .iter()
                .position(|m| m == n)
                .unwrap_or_else(|| panic!("{n}: {names:?}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deltas, text);
    let done = &events[events.len() - 1].1["response"];
    assert_eq!(done["output"][0]["content"][0]["text"], text.as_str());
    let usage = &done["usage"];
    let cached = usage["input_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached * 10 >= usage["input_tokens"].as_u64().unwrap() * 9,
        "{usage}"
    );

    let mut stateful = body(false);
    stateful["previous_response_id"] = json!("resp_123");
    let e = server.post("/v1/responses", &stateful).error(400);
    assert_eq!(e["param"], "previous_response_id");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("stores no responses"),
        "{e}"
    );
}

/// Hostile and wrong bodies on the new endpoints: 4xx in the API's own error shape, never a 5xx
/// or a dropped connection, and the server keeps serving.
#[test]
fn hostile_bodies_get_each_apis_error_shape() {
    let mut server = Server::start(&[]);
    let long = "word ".repeat(2000);
    let raw = |path: &str, body: &[u8]| request(server.addr, "POST", path, &[], body);
    let bad_bodies: [&[u8]; 6] = [
        b"{",
        b"",
        b"null",
        b"[]",
        b"\xff\xfe",
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"\\ud800\"}]}",
    ];
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        for body in bad_bodies {
            anthropic_error(&raw(path, body), 400);
        }
    }
    for body in bad_bodies {
        raw("/v1/responses", body).error(400);
    }
    let message = |extra: Value| {
        let mut body = json!({"max_tokens": 4, "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    for (extra, status) in [
        (json!({"max_tokens": null}), 400),
        (json!({"max_tokens": 0}), 400),
        (json!({"max_tokens": -1}), 400),
        (json!({"max_tokens": "ten"}), 400),
        (json!({"messages": []}), 400),
        (json!({"messages": "hello"}), 400),
        (json!({"messages": [{"role": "tool", "content": "x"}]}), 400),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}),
            400,
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "1", "name": "f"}]}]}),
            400,
        ),
        (
            json!({"messages": [{"role": "user", "content": long}]}),
            400,
        ),
        (json!({"system": 5}), 400),
        (json!({"system": [{"type": "image", "text": "x"}]}), 400),
        (json!({"temperature": 1.5}), 400),
        (json!({"top_p": 2}), 400),
        (json!({"stop_sequences": "x"}), 400),
        (json!({"stream": "yes"}), 400),
        (json!({"tools": [{"description": "no name"}]}), 400),
        (
            json!({"tools": [{"name": "f"}], "tool_choice": {"type": "tool", "name": "g"}}),
            400,
        ),
        (json!({"tool_choice": {"type": "sometimes"}}), 400),
        (json!({"thinking": {"type": "maybe"}}), 400),
    ] {
        let body = message(extra.clone());
        let error = anthropic_error(&server.post("/v1/messages", &body), status);
        assert_eq!(error["type"], "invalid_request_error", "{extra}: {error}");
    }
    let responses = |extra: Value| {
        let mut body = json!({"model": "tiny-v3-Q4_K_M", "input": "x", "max_output_tokens": 4});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for extra in [
        json!({"input": 5}),
        json!({"input": []}),
        json!({"input": [{"role": "wizard", "content": "x"}]}),
        json!({"input": [{"type": "item_reference", "id": "x"}]}),
        json!({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}),
        json!({"input": [{"type": "function_call", "name": "f"}]}),
        json!({"input": long}),
        json!({"tools": [{"type": "teleport"}]}),
        json!({"tools": [{"type": "function"}]}),
        json!({"tool_choice": 7}),
        json!({"max_output_tokens": 0}),
        json!({"temperature": 3}),
        json!({"reasoning": {"effort": "extreme"}}),
        json!({"model": "gpt-5"}),
    ] {
        let r = server.post("/v1/responses", &responses(extra.clone()));
        assert!((400..500).contains(&r.status), "{extra}: {}", r.status);
        r.error(r.status);
    }
    // Without the key, the Messages API answers 401 in its shape.
    let keyed = Server::start(&["--api-key", "k"]);
    let e = anthropic_error(&keyed.post("/v1/messages", &message(json!({}))), 401);
    assert_eq!(e["type"], "authentication_error");
    let ok = request(
        keyed.addr,
        "POST",
        "/v1/messages",
        &[("x-api-key", "k")],
        message(json!({})).to_string().as_bytes(),
    );
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));

    assert!(server.alive());
    assert_eq!(
        server
            .post("/v1/messages", &messages_body("still there?", 2, false))
            .status,
        200
    );
}

/// A client that leaves a streamed (or waiting) Messages or Responses request cancels its
/// generation: the next request does not wait for the long one.
#[test]
fn a_client_that_leaves_cancels_messages_and_responses() {
    let server = Server::start(&[]);
    let quick = messages_body("Quick", 1, false);
    for (path, body) in [
        (
            "/v1/messages",
            messages_body("Tell me a long story", 450, true),
        ),
        (
            "/v1/messages",
            messages_body("Tell me a long story", 450, false),
        ),
        (
            "/v1/responses",
            json!({"input": "Tell me a long story", "max_output_tokens": 450, "stream": true}),
        ),
        (
            "/v1/responses",
            json!({"input": "Tell me a long story", "max_output_tokens": 450}),
        ),
    ] {
        let mut body = body;
        body["temperature"] = json!(0.7);
        send_and_leave(server.addr, path, &body, Duration::from_millis(300));
        let started = Instant::now();
        assert_eq!(server.post("/v1/messages", &quick).status, 200);
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(1500),
            "{path}: waited {waited:?}"
        );
    }
}

#[test]
fn anthropic_and_openai_python_clients() {
    let server = Server::start(&[]);
    let thinking = Server::start(&["--chat-template", "deepseek-r1", "--api-key", "k"]);
    let model = scripted::write(
        "scripted-hermes-agents",
        HERMES_SCRIPT,
        Some(HERMES_TEMPLATE),
    );
    let tools = Server::start_model(&model, 2048, &["--backend", "cpu"], &[]);
    // Without /v1: the Anthropic client adds it.
    let root = |s: &Server| format!("http://{}", s.addr);
    server_common::run_client_script(
        "agent_clients.py",
        &[root(&server), root(&thinking), root(&tools)],
    );
}
