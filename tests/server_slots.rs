//! `lanternfish serve --slots`: several prompt caches kept at once, on the GPU backend (lavapipe
//! in CI). The pattern of issue 19: chat turn A, a raw fill-in-the-middle completion B with a
//! different prompt, chat turn A+1 (A's prompt, its reply and a new user message), then B' (B's
//! prefix extended). With the default slots the second visit of each finds its prefix cached;
//! with `--slots 1` each switch re-prefills.

#![allow(clippy::unwrap_used)]

mod server_common;

use serde_json::{Value, json};
use server_common::Server;

/// `n` words of made-up prose, different for each `seed`.
fn words(seed: usize, n: usize) -> String {
    const WORDS: [&str; 12] = [
        "river", "stone", "lantern", "fish", "harbor", "window", "garden", "copper", "morning",
        "letter", "bridge", "candle",
    ];
    (0..n)
        .map(|i| WORDS[(i * 7 + seed * 5 + i / 3) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn chat(messages: &[Value]) -> Value {
    json!({"messages": messages, "max_tokens": 4, "temperature": 0})
}

fn fim(prefix: &str) -> Value {
    json!({
        "prompt": format!("<｜fim▁begin｜>{prefix}<｜fim▁hole｜>\n<｜fim▁end｜>"),
        "max_tokens": 4,
        "temperature": 0,
    })
}

/// `(prompt_tokens, cached_tokens)` of a successful response.
fn post(server: &Server, path: &str, body: &Value) -> (Value, u64, u64) {
    let r = server.post(path, body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let json = r.json();
    let usage = &json["usage"];
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    let cached = usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    (json, prompt, cached)
}

/// Runs A, B, A+1, B' and returns `(prompt, cached)` of A+1 and of B'.
fn interleave(server: &Server) -> [(u64, u64); 2] {
    let user_a = json!({"role": "user", "content": words(1, 80)});
    let (reply, _, cached_a) = post(
        server,
        "/v1/chat/completions",
        &chat(std::slice::from_ref(&user_a)),
    );
    assert_eq!(cached_a, 0, "the first request finds nothing cached");
    let answer = reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();

    let prefix_b = words(2, 80);
    let (_, _, cached_b) = post(server, "/v1/completions", &fim(&prefix_b));
    assert!(cached_b <= 1, "B shares at most the BOS token: {cached_b}");

    let turn = [
        user_a,
        json!({"role": "assistant", "content": answer}),
        json!({"role": "user", "content": "Go on."}),
    ];
    let (_, prompt_a1, cached_a1) = post(server, "/v1/chat/completions", &chat(&turn));
    let (_, prompt_b1, cached_b1) = post(
        server,
        "/v1/completions",
        &fim(&format!("{prefix_b} river")),
    );
    eprintln!("A+1: {cached_a1} of {prompt_a1} cached; B': {cached_b1} of {prompt_b1} cached");
    [(prompt_a1, cached_a1), (prompt_b1, cached_b1)]
}

#[test]
fn slots_keep_each_prefix_cached_on_the_gpu() {
    let server = Server::start_with(&["--backend", "gpu"], &[]);
    let props = server.get("/props").json();
    assert_eq!(props["total_slots"], 4, "{props}");
    for (prompt, cached) in interleave(&server) {
        assert!(
            cached * 10 >= prompt * 9,
            "{cached} of {prompt} prompt tokens cached, expected at least 90 %"
        );
    }
}

#[test]
fn one_slot_re_prefills_on_each_switch() {
    let server = Server::start_with(&["--backend", "gpu"], &["--slots", "1"]);
    assert_eq!(server.get("/props").json()["total_slots"], 1);
    for (prompt, cached) in interleave(&server) {
        assert!(
            cached * 10 < prompt,
            "{cached} of {prompt} prompt tokens cached with one slot, expected a re-prefill"
        );
    }
}
