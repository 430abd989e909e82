//! `lanternfish serve` end to end through the real binary on a free loopback port, with the
//! tiny golden V3 model: the endpoints and their errors, a hostile-request corpus, the API key,
//! 64 concurrent streaming clients with a third disconnecting, the GPU backend, tool calls from a
//! scripted model (tests/server_common/scripted.rs), and the real `openai` Python client
//! (tests/openai_client.py, run with the venv scripts/openai-venv.sh makes); the Messages and
//! Responses APIs are in tests/server_agents.rs.

#![allow(clippy::unwrap_used)]

mod server_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_common::scripted::{self, DEEPSEEK_SCRIPT, HERMES_SCRIPT, HERMES_TEMPLATE};
use server_common::{Server, exchange, parse_response, request, send_and_leave, stream_partially};

fn chat_body(content: &str, max_tokens: u64) -> Value {
    json!({
        "model": "tiny-v3-Q4_K_M",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
    })
}

/// Checks a finished chat stream: a role chunk first, content chunks, one finish reason,
/// usage when asked, `[DONE]` last. Returns the streamed text.
fn check_chat_stream(events: &[String], usage: bool) -> String {
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut text = String::new();
    let mut finishes = 0;
    for chunk in &chunks {
        assert!(chunk.get("error").is_none(), "{chunk}");
        if let Some(choice) = chunk["choices"].get(0) {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            if let Some(t) = choice["delta"]["content"].as_str() {
                text.push_str(t);
            }
            if let Some(t) = choice["delta"]["reasoning_content"].as_str() {
                text.push_str(t);
            }
            if !choice["finish_reason"].is_null() {
                finishes += 1;
            }
        }
    }
    assert_eq!(finishes, 1, "{events:?}");
    if usage {
        let last = &chunks[chunks.len() - 1];
        assert_eq!(last["choices"], json!([]));
        let u = &last["usage"];
        assert_eq!(
            u["total_tokens"].as_u64(),
            Some(u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap())
        );
    }
    text
}

/// llama-server's utility endpoints: `/props` says the context, `/tokenize` and `/detokenize`
/// round-trip text (special tokens parsed, pieces that add up to the text), `/apply-template`
/// renders what a chat completion would start from, `/metrics` counts requests and tokens; bad
/// bodies are 400s in the OpenAI error shape.
#[test]
fn props_tokenize_detokenize_apply_template_and_metrics() {
    let server = Server::start(&[]);
    let props = server.get("/props").json();
    assert_eq!(
        props["default_generation_settings"]["n_ctx"], 512,
        "{props}"
    );
    assert_eq!(props["n_ctx"], 512, "{props}");
    assert!(
        props["chat_template"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    let text = "Hello world, 2+2=4. 你好";
    let tokens = server.post("/tokenize", &json!({"content": text})).json();
    let ids: Vec<u64> = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert!(ids.len() > 3, "{tokens}");
    let back = server.post("/detokenize", &json!({"tokens": ids})).json();
    assert_eq!(back["content"], text);
    let pieces = server
        .post("/tokenize", &json!({"content": text, "with_pieces": true}))
        .json();
    let joined: String = pieces["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["piece"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(joined, text);
    // With BOS, and with the special-token text read as the special token (one id).
    let bos = server
        .post("/tokenize", &json!({"content": text, "add_special": true}))
        .json();
    assert_eq!(bos["tokens"].as_array().unwrap().len(), ids.len() + 1);
    let special = server
        .post("/tokenize", &json!({"content": "<｜User｜>"}))
        .json();
    assert_eq!(special["tokens"].as_array().unwrap().len(), 1, "{special}");
    let literal = server
        .post(
            "/tokenize",
            &json!({"content": "<｜User｜>", "parse_special": false}),
        )
        .json();
    assert!(literal["tokens"].as_array().unwrap().len() > 1, "{literal}");

    let prompt = server
        .post(
            "/apply-template",
            &json!({"messages": [{"role": "user", "content": "Hi there"}]}),
        )
        .json();
    let prompt = prompt["prompt"].as_str().unwrap();
    assert!(prompt.contains("Hi there"), "{prompt}");
    assert!(prompt.ends_with("<｜Assistant｜>"), "{prompt}");

    // /metrics counts finished requests and their tokens, in Prometheus' text format.
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    let before = String::from_utf8(server.get("/metrics").body).unwrap();
    assert_eq!(
        metric(&before, "lanternfish_requests_total{endpoint=\"chat\"}"),
        0.0
    );
    let mut prompt_tokens = 0;
    let mut generated = 0;
    for content in ["Hello there", "Hello there, again"] {
        let reply = server
            .post("/v1/chat/completions", &chat_body(content, 3))
            .json();
        prompt_tokens += reply["usage"]["prompt_tokens"].as_u64().unwrap();
        generated += reply["usage"]["completion_tokens"].as_u64().unwrap();
    }
    let after = String::from_utf8(server.get("/metrics").body).unwrap();
    assert!(
        after.contains("# TYPE lanternfish_requests_total counter"),
        "{after}"
    );
    assert_eq!(
        metric(&after, "lanternfish_requests_total{endpoint=\"chat\"}"),
        2.0
    );
    assert_eq!(
        metric(
            &after,
            "lanternfish_requests_total{endpoint=\"completion\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(&after, "lanternfish_prompt_tokens_total"),
        prompt_tokens as f64
    );
    assert_eq!(
        metric(&after, "lanternfish_tokens_generated_total"),
        generated as f64
    );
    // The second prompt starts with the first one's system turn: some of it came from the cache.
    assert!(
        metric(&after, "lanternfish_prompt_tokens_cached_total") > 0.0,
        "{after}"
    );
    assert_eq!(metric(&after, "lanternfish_requests_in_flight"), 0.0);

    // Bad bodies: 400 with the API's error shape.
    for (path, body) in [
        ("/tokenize", json!({})),
        ("/tokenize", json!({"content": 5})),
        ("/tokenize", json!({"content": "x", "surprise": true})),
        ("/detokenize", json!({"tokens": [1, 99999999]})),
        ("/detokenize", json!({"tokens": "1 2"})),
        ("/apply-template", json!({"messages": []})),
        (
            "/apply-template",
            json!({"messages": [{"role": "wizard", "content": "x"}]}),
        ),
    ] {
        let error = server.post(path, &body).error(400);
        assert!(
            error["message"].as_str().is_some(),
            "{path} {body}: {error}"
        );
    }
}

/// `reasoning_effort` sets the template's thinking switch (`thinking` here, as DeepSeek-V3.1's
/// template names it; Jinja prints Python's True and False), `chat_template_kwargs` pass
/// variables through and win, in `/apply-template` and in chat completions alike; bad values
/// are 400s.
#[test]
fn reasoning_effort_and_chat_template_kwargs_reach_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("switch.jinja");
    std::fs::write(
        &template,
        "{% for m in messages %}{{ m.content }}{% endfor %}\
         [thinking={{ thinking | default('unset') }}, mood={{ mood | default('unset') }}]",
    )
    .unwrap();
    let server = Server::start(&["--chat-template", template.to_str().unwrap()]);
    let render = |extra: Value| {
        let mut body = json!({"messages": [{"role": "user", "content": "Hi"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        server.post("/apply-template", &body)
    };
    let prompt = |extra: Value| render(extra).json()["prompt"].as_str().unwrap().to_owned();
    assert_eq!(prompt(json!({})), "Hi[thinking=unset, mood=unset]");
    assert_eq!(
        prompt(json!({"reasoning_effort": "high"})),
        "Hi[thinking=True, mood=unset]"
    );
    assert_eq!(
        prompt(json!({"reasoning_effort": "none"})),
        "Hi[thinking=False, mood=unset]"
    );
    assert_eq!(
        prompt(
            json!({"reasoning_effort": "low", "chat_template_kwargs": {"thinking": false, "mood": "calm"}})
        ),
        "Hi[thinking=False, mood=calm]"
    );
    render(json!({"reasoning_effort": "extreme"})).error(400);
    render(json!({"chat_template_kwargs": {"messages": []}})).error(400);
    render(json!({"chat_template_kwargs": "thinking"})).error(400);
    // A chat completion renders the same prompt: its usage counts its tokens.
    let tokens = |text: &str| {
        server.post("/tokenize", &json!({"content": text})).json()["tokens"]
            .as_array()
            .unwrap()
            .len() as u64
    };
    let chat = server
        .post(
            "/v1/chat/completions",
            &json!({
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 1,
                "chat_template_kwargs": {"mood": "a much longer mood than before"},
            }),
        )
        .json();
    assert_eq!(
        chat["usage"]["prompt_tokens"].as_u64(),
        Some(tokens(
            "Hi[thinking=unset, mood=a much longer mood than before]"
        )),
        "{chat}"
    );
}

/// llama-server's `/infill` as llama.vscode calls it: the prompt is the extra chunks (after a
/// snippet line: the tiny model has no repo-level tokens) then the FIM prompt, token for token;
/// `n_predict: 0` only warms the cache, so the next request with that prompt is served from it;
/// a stream ends with a `stop: true` object; a prefix past the context is cut from its start and
/// says `truncated`; bad bodies are 400s.
#[test]
fn infill_builds_the_fim_prompt_warms_the_cache_and_streams() {
    let server = Server::start(&[]);
    let count = |text: &str| {
        server
            .post(
                "/tokenize",
                &json!({"content": text, "parse_special": false}),
            )
            .json()["tokens"]
            .as_array()
            .unwrap()
            .len()
    };
    let bos = server
        .post("/tokenize", &json!({"content": "x", "add_special": true}))
        .json()["tokens"]
        .as_array()
        .unwrap()
        .len()
        - count("x");
    let (prefix, suffix, extra) = ("def f(x):\n    return ", "\n\nprint(f(2))\n", "x = 1\n");
    let body = |n_predict: i64| {
        json!({
            "input_prefix": prefix,
            "input_suffix": suffix,
            "input_extra": [{"filename": "a.py", "text": extra}],
            "n_predict": n_predict,
            "temperature": 0,
            "samplers": ["top_k"],
            "cache_prompt": true,
        })
    };
    let warm = server.post("/infill", &body(0)).json();
    assert_eq!(warm["content"], "", "{warm}");
    assert_eq!(warm["tokens_predicted"], 0, "{warm}");
    let want =
        bos + count(&format!("\n--- snippet ---\n{extra}")) + count(prefix) + count(suffix) + 3;
    assert_eq!(
        warm["tokens_evaluated"].as_u64(),
        Some(want as u64),
        "{warm}"
    );
    assert_eq!(warm["truncated"], false);
    let answer = server.post("/infill", &body(4)).json();
    assert!(answer["content"].is_string(), "{answer}");
    assert_eq!(answer["stop"], true);
    let evaluated = answer["tokens_evaluated"].as_u64().unwrap();
    let cached = answer["tokens_cached"].as_u64().unwrap();
    assert!(cached * 10 >= evaluated * 9, "{answer}");
    assert!(answer["tokens_predicted"].as_u64().unwrap() <= 4);

    // Streamed: content pieces, then the final object.
    let mut streamed = body(3);
    streamed["stream"] = json!(true);
    let events = server.post("/infill", &streamed).events();
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["stop"], true, "{events:?}");
    for event in &events[..events.len() - 1] {
        let piece: Value = serde_json::from_str(event).unwrap();
        assert_eq!(piece["stop"], false, "{event}");
    }

    // A prefix longer than the context (512 here) keeps its end and says so.
    let long = "value = value + 1\n".repeat(200);
    let cut = server
        .post(
            "/infill",
            &json!({"input_prefix": long, "input_suffix": "", "n_predict": 2}),
        )
        .json();
    assert_eq!(cut["truncated"], true, "{cut}");
    assert!(cut["tokens_evaluated"].as_u64().unwrap() <= 510, "{cut}");

    for bad in [
        json!({"input_prefix": 5}),
        json!({"input_extra": "text"}),
        json!({"input_extra": [{"filename": "a"}]}),
        json!({"input_prefix": "a", "temperature": -1}),
    ] {
        server.post("/infill", &bad).error(400);
    }
}

#[test]
fn endpoints_usage_and_errors() {
    let server = Server::start(&[]);
    let health = server.get("/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let models = server.get("/v1/models").json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "tiny-v3-Q4_K_M");

    // Non-streaming chat, twice: the second reuses the cached prompt prefix.
    let first = server.post("/v1/chat/completions", &chat_body("Hello there", 4));
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let first = first.json();
    assert_eq!(first["object"], "chat.completion");
    assert_eq!(first["choices"][0]["message"]["role"], "assistant");
    assert!(first["choices"][0]["message"]["content"].is_string());
    let reason = first["choices"][0]["finish_reason"].as_str().unwrap();
    assert!(["stop", "length"].contains(&reason), "{reason}");
    let usage = &first["usage"];
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!(prompt > 5 && completion <= 4, "{usage}");
    assert_eq!(usage["total_tokens"].as_u64(), Some(prompt + completion));
    let second = server
        .post("/v1/chat/completions", &chat_body("Hello there", 4))
        .json();
    assert_eq!(
        second["choices"][0]["message"],
        first["choices"][0]["message"]
    );
    assert!(
        second["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Streaming with usage.
    let mut body = chat_body("Stream it", 5);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let streamed = server.post("/v1/chat/completions", &body);
    assert_eq!(streamed.status, 200);
    assert!(
        streamed
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream"))
    );
    check_chat_stream(&streamed.events(), true);

    // Log-probabilities: one entry per generated token, with the alternatives asked for.
    let mut body = chat_body("Numbers", 3);
    body["logprobs"] = json!(true);
    body["top_logprobs"] = json!(2);
    let r = server.post("/v1/chat/completions", &body).json();
    let content = r["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(
        content.len() as u64,
        r["usage"]["completion_tokens"].as_u64().unwrap()
    );
    for t in content {
        assert!(t["logprob"].as_f64().unwrap() <= 0.0);
        assert_eq!(t["top_logprobs"].as_array().unwrap().len(), 2);
    }

    // Completions: plain, and fill-in-the-middle with the model's FIM tokens.
    let plain = server.post(
        "/v1/completions",
        &json!({"model": "tiny-v3-Q4_K_M", "prompt": "def add(a, b):", "max_tokens": 4, "temperature": 0}),
    );
    assert_eq!(
        plain.status,
        200,
        "{}",
        String::from_utf8_lossy(&plain.body)
    );
    let plain = plain.json();
    assert_eq!(plain["object"], "text_completion");
    assert!(plain["choices"][0]["text"].is_string());
    let fim = server
        .post(
            "/v1/completions",
            &json!({"prompt": "def add(a, b):\n    ", "suffix": "\n\nprint(add(1, 2))", "max_tokens": 4}),
        )
        .json();
    assert!(fim["usage"]["prompt_tokens"].as_u64().unwrap() > 3);
    let mut body = json!({"prompt": "x = ", "suffix": ";", "max_tokens": 3, "stream": true});
    body["stream_options"] = json!({"include_usage": true});
    let events = server.post("/v1/completions", &body).events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    // Errors: each an OpenAI-shaped body with the right status, param and code.
    let e = server
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}),
        )
        .error(404);
    assert_eq!(e["code"], "model_not_found");
    let mut body = chat_body("x", 2);
    body["n"] = json!(2);
    assert_eq!(
        server.post("/v1/chat/completions", &body).error(400)["param"],
        "n"
    );
    let mut body = chat_body("x", 2);
    body["temperature"] = json!(5);
    assert_eq!(
        server.post("/v1/chat/completions", &body).error(400)["param"],
        "temperature"
    );
    let mut body = chat_body("x", 2);
    body["max_tokens"] = json!("ten");
    server.post("/v1/chat/completions", &body).error(400);
    let mut body = chat_body("x", 2);
    body["top_logprobs"] = json!(3);
    server.post("/v1/chat/completions", &body).error(400);
    server
        .post("/v1/chat/completions", &json!({"model": "tiny-v3-Q4_K_M"}))
        .error(400);
    let long = "word ".repeat(2000);
    let e = server
        .post("/v1/chat/completions", &chat_body(&long, 2))
        .error(400);
    assert_eq!(e["code"], "context_length_exceeded");
    let e = server
        .post("/v1/completions", &json!({"prompt": long}))
        .error(400);
    assert_eq!(e["code"], "context_length_exceeded");
    server
        .post("/v1/completions", &json!({"prompt": [999999]}))
        .error(400);
    server
        .post("/v1/completions", &json!({"prompt": ["a", "b"]}))
        .error(400);
    server.get("/v1/nothing").error(404);
    server.get("/v1/chat/completions").error(405);
    server.get("/v1/models/other").error(404);
    assert_eq!(server.get("/v1/models/tiny-v3-Q4_K_M").status, 200);
}

#[test]
fn reasoning_content_with_a_thinking_template() {
    // The R1 template opens `<think>` in the generation prompt: the reply is reasoning.
    let server = Server::start(&["--chat-template", "deepseek-r1"]);
    let r = server
        .post("/v1/chat/completions", &chat_body("Think about it", 6))
        .json();
    let message = &r["choices"][0]["message"];
    assert!(
        !message["reasoning_content"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{r}"
    );
    let mut body = chat_body("Think about it", 6);
    body["stream"] = json!(true);
    let events = server.post("/v1/chat/completions", &body).events();
    check_chat_stream(&events, false);
    assert!(
        events.iter().any(|e| e.contains("\"reasoning_content\"")),
        "{events:?}"
    );
}

#[test]
fn api_key_is_required_when_set() {
    let server = Server::start(&["--api-key", "sekrit"]);
    assert_eq!(server.get("/health").status, 200);
    let e = server.get("/v1/models").error(401);
    assert_eq!(e["code"], "invalid_api_key");
    let wrong = request(
        server.addr,
        "GET",
        "/v1/models",
        &[("Authorization", "Bearer nope")],
        b"",
    );
    wrong.error(401);
    let right = request(
        server.addr,
        "GET",
        "/v1/models",
        &[("Authorization", "Bearer sekrit")],
        b"",
    );
    assert_eq!(right.status, 200);
    let body = chat_body("x", 2).to_string();
    request(
        server.addr,
        "POST",
        "/v1/chat/completions",
        &[],
        body.as_bytes(),
    )
    .error(401);
}

/// Sends raw bytes; the answer must be a 4xx with an OpenAI error body, or a closed connection.
fn hostile(server: &Server, bytes: &[u8]) -> Option<u16> {
    let response = exchange(server.addr, bytes, Duration::from_secs(20)).unwrap_or_default();
    if response.is_empty() {
        return None;
    }
    let parsed = parse_response(&response)
        .unwrap_or_else(|| panic!("unparseable answer: {}", String::from_utf8_lossy(&response)));
    assert!(
        (400..500).contains(&parsed.status),
        "{} for {:?}",
        parsed.status,
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
    Some(parsed.status)
}

fn post_bytes(body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

#[test]
fn hostile_requests_get_clean_errors() {
    let mut server = Server::start(&["--read-timeout", "2"]);
    let status = |body: &[u8]| {
        let r = request(server.addr, "POST", "/v1/chat/completions", &[], body);
        r.error(r.status);
        r.status
    };
    // Malformed JSON, wrong types, invalid UTF-8, deep nesting, empty bodies.
    for body in [
        &b"{"[..],
        b"not json at all",
        b"[]",
        b"null",
        b"",
        b"{\"messages\": \"hello\"}",
        b"{\"messages\": [{\"role\": 5, \"content\": \"x\"}]}",
        b"{\"messages\": [{\"role\": \"user\", \"content\": {\"a\": 1}}]}",
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": -1}",
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": 1e99}",
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": [1, 2]}",
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stream\": \"yes\"}",
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}",
        b"\xff\xfe\xfd",
        b"{\"messages\": [{\"role\": \"user\", \"content\": \"\\ud800\"}]}",
    ] {
        assert_eq!(status(body), 400, "{:?}", String::from_utf8_lossy(body));
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(status(deep.as_bytes()), 400);
    // Unknown fields are ignored, as OpenAI does.
    let mut body = chat_body("x", 2);
    body["frequency_penalty"] = json!(0.5);
    body["user"] = json!("someone");
    body["some_future_field"] = json!({"a": [1, 2]});
    assert_eq!(server.post("/v1/chat/completions", &body).status, 200);

    // Huge bodies: 413 (declared or sent chunked), never read into memory.
    let huge = vec![b'a'; 9 << 20];
    assert_eq!(hostile(&server, &post_bytes(&huge)).unwrap_or(413), 413);
    let declared =
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{";
    let got = hostile(&server, declared);
    assert!(
        matches!(got, None | Some(413) | Some(400) | Some(408)),
        "{got:?}"
    );
    let mut chunked =
        b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n", 1 << 20).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 1 << 20));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(hostile(&server, &chunked).unwrap_or(413), 413);

    // Garbage and broken HTTP.
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"\x00\x01\x02\x03\r\n\r\n",
    ] {
        hostile(&server, raw);
    }

    // A slow client that sends half a body: 408 after --read-timeout; others are served meanwhile.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mess",
    )
    .unwrap();
    let mut half_header = TcpStream::connect(server.addr).unwrap();
    half_header
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
        .unwrap();
    let started = Instant::now();
    assert_eq!(server.get("/health").status, 200);
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    assert!(started.elapsed() < Duration::from_secs(15));
    if !answer.is_empty() {
        assert_eq!(parse_response(&answer).unwrap().status, 408);
    }

    // Still serving.
    assert!(server.alive());
    let ok = server.post("/v1/chat/completions", &chat_body("still there?", 2));
    assert_eq!(ok.status, 200);
    drop(half_header);
}

#[test]
fn concurrent_streams_with_disconnects() {
    const CLIENTS: usize = 64;
    let mut server = Server::start(&[]);
    let addr = server.addr;
    let stream_body = |i: usize| {
        json!({
            "messages": [{"role": "user", "content": format!("client {i} says hello")}],
            "max_tokens": 6,
            "temperature": 0.7,
            "seed": i,
            "stream": true,
            "stream_options": {"include_usage": true},
        })
    };
    let burst = |n: usize| {
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let body = stream_body(i);
                std::thread::spawn(move || {
                    if i % 3 == 2 {
                        // Leave after the first content chunk.
                        drop(stream_partially(addr, "/v1/chat/completions", &body, 2));
                        None
                    } else {
                        let r = request(
                            addr,
                            "POST",
                            "/v1/chat/completions",
                            &[],
                            body.to_string().as_bytes(),
                        );
                        assert_eq!(r.status, 200);
                        Some(r.events())
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    };
    // Warm up (allocator pools, the blocking-thread pool), then measure.
    burst(CLIENTS);
    std::thread::sleep(Duration::from_secs(1));
    let start_rss = server.rss_kib();
    let started = Instant::now();
    let results = burst(CLIENTS);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(90), "{elapsed:?}");
    let finished = results.iter().flatten().count();
    assert_eq!(finished, CLIENTS - CLIENTS / 3);
    for events in results.iter().flatten() {
        check_chat_stream(events, true);
    }
    assert!(server.alive());
    assert_eq!(server.get("/health").status, 200);
    // RSS back within 10 % of the start (idle threads exit and memory is returned over a few s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut rss = server.rss_kib();
    while rss > start_rss + start_rss / 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        rss = server.rss_kib();
    }
    eprintln!("RSS {start_rss} KiB before the burst, {rss} KiB after ({elapsed:?} for the burst)");
    assert!(
        rss <= start_rss + start_rss / 10,
        "RSS {start_rss} KiB at the start, {rss} KiB after"
    );
}

#[test]
fn gpu_backend_smoke() {
    let server = Server::start_with(&["--backend", "gpu"], &[]);
    let r = server.post("/v1/chat/completions", &chat_body("Hello GPU", 4));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["usage"]["completion_tokens"].as_u64().unwrap() <= 4);
    let mut body = chat_body("Hello GPU", 4);
    body["stream"] = json!(true);
    check_chat_stream(&server.post("/v1/chat/completions", &body).events(), false);
}

/// A chat request about the weather, offering a `get_weather` tool when `tools`.
fn weather_request(tools: bool, stream: bool) -> Value {
    let mut body = json!({
        "messages": [{"role": "user", "content": "What is the weather in Paris for two days?"}],
        "max_tokens": 20,
        "temperature": 0,
        "stream": stream,
    });
    if tools {
        body["tools"] = json!([{"type": "function", "function": {
            "name": "get_weather",
            "description": "The weather forecast for a city.",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]},
        }}]);
    }
    body
}

/// The tool calls of a finished chat stream as `(id, name, arguments)`, their deltas assembled
/// by `index` as the OpenAI clients do (name and arguments concatenated), and the content.
fn streamed_tool_calls(events: &[String]) -> (String, Vec<(String, String, String)>) {
    let content = check_chat_stream(events, false);
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        for delta in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = delta["index"].as_u64().unwrap() as usize;
            if i == calls.len() {
                calls.push(Default::default());
            }
            let call = &mut calls[i];
            if let Some(id) = delta["id"].as_str() {
                call.0 = id.to_owned();
            }
            call.1 += delta["function"]["name"].as_str().unwrap_or("");
            call.2 += delta["function"]["arguments"].as_str().unwrap_or("");
        }
    }
    (content, calls)
}

/// A model that answers with a tool call (the scripted model, in the Hermes and DeepSeek-V3
/// formats, on both backends): with `tools` offered, the reply is `tool_calls` with the name and
/// the arguments as compact JSON text, finish reason `tool_calls`, streamed or not; without
/// `tools` the same reply is plain content.
#[test]
fn tool_calls_from_a_scripted_model() {
    let cases = [
        (
            "scripted-hermes",
            HERMES_SCRIPT,
            Some(HERMES_TEMPLATE),
            &[][..],
        ),
        (
            "scripted-deepseek",
            DEEPSEEK_SCRIPT,
            None,
            &["--chat-template", "deepseek-v3"][..],
        ),
    ];
    let want_args = json!({"city": "Paris", "days": 2});
    for (name, script, template, extra) in cases {
        let model = scripted::write(name, script, template);
        for backend in ["cpu", "gpu"] {
            let what = format!("{name} on {backend}");
            let server = Server::start_model(&model, 2048, &["--backend", backend], extra);

            // Without tools the script is the answer, as text.
            let plain = server.post("/v1/chat/completions", &weather_request(false, false));
            assert_eq!(
                plain.status,
                200,
                "{what}: {}",
                String::from_utf8_lossy(&plain.body)
            );
            let plain = plain.json();
            let choice = &plain["choices"][0];
            assert_eq!(choice["message"]["content"], script.concat(), "{what}");
            assert!(
                choice["message"].get("tool_calls").is_none(),
                "{what}: {plain}"
            );
            assert_eq!(choice["finish_reason"], "stop", "{what}");

            // With tools: one call, no content.
            let r = server.post("/v1/chat/completions", &weather_request(true, false));
            assert_eq!(
                r.status,
                200,
                "{what}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let r = r.json();
            let choice = &r["choices"][0];
            assert_eq!(choice["finish_reason"], "tool_calls", "{what}: {r}");
            let message = &choice["message"];
            assert_eq!(message["role"], "assistant", "{what}");
            assert!(message["content"].is_null(), "{what}: {r}");
            let calls = message["tool_calls"].as_array().unwrap();
            assert_eq!(calls.len(), 1, "{what}: {r}");
            assert_eq!(calls[0]["type"], "function", "{what}");
            assert!(
                calls[0]["id"].as_str().is_some_and(|id| !id.is_empty()),
                "{what}"
            );
            assert_eq!(calls[0]["function"]["name"], "get_weather", "{what}");
            let args = calls[0]["function"]["arguments"].as_str().unwrap();
            assert_eq!(args, want_args.to_string(), "{what}");
            // The tools reached the prompt (the template lists them, or the server's instruction
            // does for the DeepSeek-V3 template): every byte of their JSON is a token here.
            let tokens = |v: &Value| v["usage"]["prompt_tokens"].as_u64().unwrap();
            assert!(tokens(&r) > tokens(&plain) + 100, "{what}: {r} {plain}");

            // Streamed: no content, the call in deltas, the same name and arguments.
            let events = server
                .post("/v1/chat/completions", &weather_request(true, true))
                .events();
            let (content, calls) = streamed_tool_calls(&events);
            assert_eq!(content, "", "{what}: {events:?}");
            assert_eq!(calls.len(), 1, "{what}: {events:?}");
            assert!(!calls[0].0.is_empty(), "{what}: {events:?}");
            assert_eq!(calls[0].1, "get_weather", "{what}");
            assert_eq!(calls[0].2, want_args.to_string(), "{what}");
            let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
            assert_eq!(last["choices"][0]["finish_reason"], "tool_calls", "{what}");
        }
    }
}

#[test]
fn openai_python_client() {
    let server = Server::start(&[]);
    let thinking = Server::start(&["--chat-template", "deepseek-r1", "--api-key", "k"]);
    let model = scripted::write(
        "scripted-hermes-openai",
        HERMES_SCRIPT,
        Some(HERMES_TEMPLATE),
    );
    let tools = Server::start_model(&model, 2048, &["--backend", "cpu"], &[]);
    server_common::run_client_script(
        "openai_client.py",
        &[server.base_url(), thinking.base_url(), tools.base_url()],
    );
}

#[test]
fn a_client_that_leaves_cancels_its_generation() {
    let server = Server::start(&[]);
    let long = |stream: bool| {
        json!({
            "messages": [{"role": "user", "content": "Tell me a long story"}],
            "max_tokens": 450,
            "temperature": 0.7,
            "seed": 3,
            "stream": stream,
        })
    };
    let quick = chat_body("Quick", 1);
    // Unhindered, the long request takes seconds; the quick one waits its turn behind it.
    for stream in [false, true] {
        send_and_leave(
            server.addr,
            "/v1/chat/completions",
            &long(stream),
            Duration::from_millis(300),
        );
        let started = Instant::now();
        assert_eq!(server.post("/v1/chat/completions", &quick).status, 200);
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(1500),
            "stream {stream}: waited {waited:?}"
        );
    }
}

#[test]
fn a_full_queue_answers_503() {
    let server = Server::start(&["--max-queue", "1"]);
    let body = json!({
        "messages": [{"role": "user", "content": "Tell me a long story"}],
        "max_tokens": 450,
        "temperature": 0.7,
        "seed": 5,
    })
    .to_string();
    let raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut long = TcpStream::connect(server.addr).unwrap();
    long.write_all(raw.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let e = server
        .post("/v1/chat/completions", &chat_body("me too", 1))
        .error(503);
    assert_eq!(e["code"], "server_busy");
    // The place is free again once the first client leaves (its job is cancelled).
    drop(long);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = server.post("/v1/chat/completions", &chat_body("me too", 1));
        if r.status == 200 {
            break;
        }
        r.error(503);
        assert!(Instant::now() < deadline, "the slot was not returned");
        std::thread::sleep(Duration::from_millis(50));
    }
}
