//! A reply streaming into a 200-message chat: only the messages in view are laid out (a test), and
//! the frame time and memory over a 2,000-token reply (a benchmark, run by hand and recorded in
//! BENCHMARKS.md: `cargo test -p lanternfish-app --test perf -- --ignored --nocapture`).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::{app_in, harness};
use egui_kittest::kittest::Queryable;
use lanternfish_app::state::Live;
use lanternfish_app::store::{Chat, Message, Store};

fn long_chat(n: usize) -> Chat {
    let mut chat = Chat::new();
    for i in 0..n / 2 {
        chat.messages.push(Message::user(format!(
            "Question {i}: how does **MLA** attention compress the KV cache?"
        )));
        chat.messages.push(Message::assistant(format!(
            "Answer {i}. It projects keys and values into a *latent* of rank r:\n\n```rust\nlet c = w_dkv.matvec(&h); // [r]\nlet k = w_uk.matvec(&c);\n```\n\n- cache only `c` and the rope part\n- absorb `w_uk` into the query\n\nThat is why the cache is small."
        )));
    }
    chat.retitle();
    chat
}

/// Frame times of one run, in milliseconds.
struct Measured {
    /// The UI pass (layout, tessellation) per frame: median and 95th percentile.
    ui_p50: f64,
    ui_p95: f64,
    /// A whole frame drawn with wgpu (lavapipe in CI) and read back: median.
    render_p50: f64,
    /// Resident memory growth over the streamed tokens, in MiB.
    rss_growth_mib: f64,
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0 / (1024.0 * 1024.0))
}

fn percentile(times: &mut [f64], p: usize) -> f64 {
    times.sort_by(f64::total_cmp);
    times[(times.len() - 1) * p / 100]
}

/// Streams `frames` tokens into a chat of `messages` messages, one token per frame.
fn measure(messages: usize, frames: usize) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    Store::new(dir.path().to_path_buf())
        .save_chat(&long_chat(messages))
        .unwrap();
    let mut app = app_in(dir.path());
    app.state.current = 1;
    let mut h = harness(app);
    h.run_steps(5);
    // A reply streaming at the end.
    let id = h.state().state.chat().unwrap().id.clone();
    h.state_mut()
        .state
        .chat_mut()
        .unwrap()
        .messages
        .push(Message::user("and now a long answer"));
    h.state_mut()
        .state
        .chat_mut()
        .unwrap()
        .messages
        .push(Message::assistant(""));
    h.state_mut().state.live = Some(Live {
        chat_id: id,
        started: Instant::now(),
        prefill_started: None,
        first_text: None,
        pieces: 0,
        prompt_tokens: 0,
        last_save: Instant::now(),
        stopping: false,
    });
    h.run_steps(5);
    let push = |h: &mut egui_kittest::Harness<'_, lanternfish_app::ChatApp>, i: usize| {
        let piece = if i % 12 == 11 { "\n\n" } else { " token" };
        h.state_mut()
            .state
            .chat_mut()
            .unwrap()
            .messages
            .last_mut()
            .unwrap()
            .content
            .push_str(piece);
    };
    let rss_before = rss_mib();
    let mut times = Vec::with_capacity(frames);
    for i in 0..frames {
        push(&mut h, i);
        let start = Instant::now();
        h.step();
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let rss_growth_mib = rss_mib() - rss_before;
    let mut renders = Vec::new();
    for i in 0..20 {
        push(&mut h, frames + i);
        let start = Instant::now();
        h.step();
        h.render().unwrap();
        renders.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Measured {
        ui_p50: percentile(&mut times, 50),
        ui_p95: percentile(&mut times, 95),
        render_p50: percentile(&mut renders, 50),
        rss_growth_mib,
    }
}

/// The layout work per frame does not grow with the history: of 200 messages, only those in
/// view (plus a margin) are laid out while a reply streams at the end.
#[test]
fn only_messages_in_view_are_laid_out() {
    let dir = tempfile::tempdir().unwrap();
    Store::new(dir.path().to_path_buf())
        .save_chat(&long_chat(200))
        .unwrap();
    let mut app = app_in(dir.path());
    app.state.current = 1;
    let id = app.state.chats[1].id.clone();
    let mut h = harness(app);
    h.run_steps(5);
    for _ in 0..20 {
        h.state_mut()
            .state
            .chat_mut()
            .unwrap()
            .messages
            .last_mut()
            .unwrap()
            .content
            .push_str(" token");
        h.step();
        let drawn = h.state().state.heights[&id].drawn;
        assert!(
            (1..=12).contains(&drawn),
            "{drawn} of 200 messages laid out"
        );
    }
    // The end of the chat is in view.
    assert!(h.query_by_label_contains("Answer 99.").is_some());
    assert!(h.query_by_label_contains("Answer 0.").is_none());
}

/// Frame time and memory while streaming (a benchmark: prints, asserts only gross regressions).
#[test]
#[ignore = "benchmark; run by hand with --ignored --nocapture"]
fn streaming_into_a_long_chat_stays_fast() {
    let short = measure(2, 300);
    let long = measure(200, 2000);
    println!(
        "frame time, 2 messages: UI pass p50 {:.2} ms p95 {:.2} ms, rendered frame p50 {:.1} ms",
        short.ui_p50, short.ui_p95, short.render_p50
    );
    println!(
        "frame time, 200 messages + 2,000 streamed tokens: UI pass p50 {:.2} ms p95 {:.2} ms, \
         rendered frame p50 {:.1} ms; resident memory +{:.1} MiB",
        long.ui_p50, long.ui_p95, long.render_p50, long.rss_growth_mib
    );
    // 30 frames/s leaves 33 ms per frame; a long history must not cost much more than a short
    // one, and memory must not grow with every token.
    assert!(long.ui_p50 < 33.0, "UI pass p50 {:.2} ms", long.ui_p50);
    assert!(
        long.ui_p50 < short.ui_p50 * 4.0 + 2.0,
        "200 messages {:.2} ms vs 2 messages {:.2} ms",
        long.ui_p50,
        short.ui_p50
    );
    assert!(
        long.rss_growth_mib < 64.0,
        "+{:.1} MiB",
        long.rss_growth_mib
    );
}
