//! Headless UI tests (egui_kittest, rendered on wgpu: lavapipe without a GPU) with a real tiny
//! synthetic model on the CPU reference backend, and one on the GPU engine.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{
    app_in, harness, light_harness, load, load_tiny, model_harness, thinking_model, tiny_model,
    wait_for,
};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use lanternfish_app::store::{Chat, Message, ReplyStats, Role as MsgRole, Store};

const LONG: Duration = Duration::from_secs(240);

/// Focuses the composer, types `text` and presses Enter.
fn type_and_send(h: &mut egui_kittest::Harness<'_, lanternfish_app::ChatApp>, text: &str) {
    h.get_by_role_and_label(Role::MultilineTextInput, "Message")
        .focus();
    h.step();
    h.get_by_role_and_label(Role::MultilineTextInput, "Message")
        .type_text(text);
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
}

fn reply_text(app: &lanternfish_app::ChatApp) -> String {
    let chat = app.state.chat().unwrap();
    let last = chat.messages.last().unwrap();
    format!("{}{}", last.thinking, last.content)
}

#[test]
fn empty_screen() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(app_in(dir.path()));
    h.run_steps(4);
    assert!(h.query_by_label("lanternfish").is_some());
    h.get_by_label("Send");
    h.snapshot("empty");
}

#[test]
fn send_stream_stop_regenerate_edit() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = model_harness(app_in(dir.path()));
    h.step();
    load_tiny(&mut h, true);
    {
        let chat = h.state_mut().state.chat_mut().unwrap();
        chat.sampling.temperature = 1.0;
        chat.sampling.seed = 1;
        chat.sampling.max_tokens = 400;
    }

    type_and_send(&mut h, "Hello there");
    let chat = h.state().state.chat().unwrap();
    assert_eq!(chat.messages[0].content, "Hello there");
    assert_eq!(chat.title, "Hello there");
    assert!(h.state().state.composer.is_empty());
    // The user message is on disk before the reply starts.
    h.state().saver.flush();
    let saved = Store::new(dir.path().to_path_buf()).load_chats();
    assert_eq!(saved.chats[0].messages[0].content, "Hello there");

    // A streamed reply: text arrives while the job runs.
    wait_for(&mut h, "streamed text", LONG, |app| {
        app.state.live.as_ref().is_some_and(|l| l.pieces >= 3)
    });
    assert!(!reply_text(h.state()).is_empty());
    assert!(h.state().state.stats.ctx_used > 0);

    // Stop mid-reply.
    h.get_by_label("■ Stop").click();
    wait_for(&mut h, "the stop", LONG, |app| app.state.live.is_none());
    let chat = h.state().state.chat().unwrap();
    assert_eq!(chat.messages.len(), 2);
    let stats = chat.messages[1].stats.clone().unwrap();
    assert_eq!(stats.stop_reason, "stopped");
    assert!(stats.generated_tokens < 400, "{stats:?}");
    assert!(!chat.messages[1].partial);

    // Regenerate: a short fresh reply replaces the stopped one.
    h.state_mut().state.chat_mut().unwrap().sampling.max_tokens = 6;
    h.get_by_label("↻ Regenerate").click();
    h.step();
    assert!(h.state().state.live.is_some());
    wait_for(&mut h, "the regenerated reply", LONG, |app| {
        app.state.live.is_none()
    });
    let chat = h.state().state.chat().unwrap();
    assert_eq!(chat.messages.len(), 2);
    let stats = chat.messages[1].stats.clone().unwrap();
    assert_ne!(stats.stop_reason, "stopped");
    assert!(stats.generated_tokens <= 6);
    assert!(h.state().state.error.is_none());

    // Edit and resend the last user message.
    h.get_by_label("✏ Edit last message").click();
    h.step();
    assert_eq!(h.state().state.composer, "Hello there");
    assert!(h.state().state.chat().unwrap().messages.is_empty());
    h.get_by_label("Send").click();
    h.step();
    wait_for(&mut h, "the resent reply", LONG, |app| {
        app.state.live.is_none()
    });
    assert_eq!(h.state().state.chat().unwrap().messages.len(), 2);

    // Ctrl+N starts a new, empty chat; the old one stays in the sidebar.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::N);
    h.step();
    assert!(h.state().state.chat().unwrap().messages.is_empty());
    assert!(h.query_by_label("Hello there").is_some());
}

/// Shift+Enter adds a line; Enter sends.
#[test]
fn shift_enter_adds_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = model_harness(app_in(dir.path()));
    h.step();
    load_tiny(&mut h, true);
    h.state_mut().state.chat_mut().unwrap().sampling.max_tokens = 2;
    h.get_by_role_and_label(Role::MultilineTextInput, "Message")
        .focus();
    h.step();
    h.get_by_role_and_label(Role::MultilineTextInput, "Message")
        .type_text("one");
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Enter);
    h.step();
    h.get_by_role_and_label(Role::MultilineTextInput, "Message")
        .type_text("two");
    h.step();
    assert_eq!(h.state().state.composer, "one\ntwo");
    h.key_press(egui::Key::Enter);
    h.step();
    assert_eq!(
        h.state().state.chat().unwrap().messages[0].content,
        "one\ntwo"
    );
    wait_for(&mut h, "the reply", LONG, |app| app.state.live.is_none());
}

/// A saved chat with a markdown answer (code block) and a reasoning trace.
fn markdown_chat() -> Chat {
    let mut chat = Chat::new();
    chat.messages
        .push(Message::user("How do I reverse a string in Rust?"));
    let mut reply = Message::assistant(
        "Use **`chars().rev()`**:\n\n```rust\nfn reverse(s: &str) -> String {\n    s.chars().rev().collect()\n}\n```\n\n- works on Unicode scalar values\n- allocates a new `String`",
    );
    reply.thinking =
        "The user wants to reverse a string. Byte reversal would break UTF-8, so iterate chars."
            .into();
    reply.stats = Some(ReplyStats {
        prompt_tokens: 20,
        generated_tokens: 48,
        prefill_tok_s: 310.0,
        decode_tok_s: 24.5,
        stop_reason: "end of text".into(),
    });
    chat.messages.push(reply);
    chat.retitle();
    chat
}

#[test]
fn markdown_code_and_thinking() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_path_buf());
    store.save_chat(&markdown_chat()).unwrap();
    let mut app = app_in(dir.path());
    app.state.current = app
        .state
        .chats
        .iter()
        .position(|c| !c.messages.is_empty())
        .unwrap();
    let mut h = harness(app);
    h.run_steps(4);
    // The finished reply's thinking is collapsed.
    h.get_by_label_contains("Reasoning (");
    assert!(h.query_by_label_contains("Byte reversal").is_none());
    h.snapshot("chat_markdown");
    h.get_by_label_contains("Reasoning (").click();
    h.run_steps(10);
    assert!(h.query_by_label_contains("Byte reversal").is_some());
    h.snapshot("thinking");
}

/// A template that opens `<think>`: the reply streams into an open "Thinking…" section, which
/// folds into "Reasoning (N words)" once the reply ends.
#[test]
fn live_thinking_section() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = model_harness(app_in(dir.path()));
    h.step();
    load(&mut h, thinking_model(), true);
    {
        let chat = h.state_mut().state.chat_mut().unwrap();
        chat.sampling.seed = 2;
        chat.sampling.max_tokens = 400;
    }
    type_and_send(&mut h, "Think first");
    wait_for(&mut h, "streamed reasoning", LONG, |app| {
        app.state.live.as_ref().is_some_and(|l| l.pieces >= 3)
    });
    let reply = h.state().state.chat().unwrap().messages[1].clone();
    assert!(!reply.thinking.is_empty(), "{reply:?}");
    assert!(reply.content.is_empty(), "{reply:?}");
    h.get_by_label("Thinking…");
    // The open section shows the reasoning text as it streams.
    let first_words: String = reply.thinking.chars().take(3).collect();
    assert!(
        h.query_by_label_contains(first_words.trim()).is_some() || first_words.trim().is_empty()
    );
    h.get_by_label("■ Stop").click();
    wait_for(&mut h, "the stop", LONG, |app| app.state.live.is_none());
    h.run_steps(3);
    assert!(h.query_by_label("Thinking…").is_none());
    h.get_by_label_contains("Reasoning (");
    let reply = &h.state().state.chat().unwrap().messages[1];
    assert!(!reply.thinking.is_empty());
}

/// The light theme (the app follows the system's).
#[test]
fn light_theme() {
    let dir = tempfile::tempdir().unwrap();
    Store::new(dir.path().to_path_buf())
        .save_chat(&markdown_chat())
        .unwrap();
    let mut app = app_in(dir.path());
    app.state.current = 1;
    let mut h = light_harness(app);
    h.run_steps(4);
    assert_eq!(h.ctx.theme(), egui::Theme::Light);
    h.snapshot("chat_light");
}

/// A conversation longer than the context: the oldest messages are left out of the prompt and a
/// notice says so.
#[test]
fn history_trimmed_to_the_context_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let mut chat = Chat::new();
    for i in 0..30 {
        chat.messages.push(Message::user(format!(
            "Question {i}: tell me a long story about lanterns, fish and the deep sea at night."
        )));
        chat.messages.push(Message::assistant(format!(
            "Answer {i}: once upon a time a lanternfish swam in the dark water, glowing softly."
        )));
    }
    chat.messages.push(Message::user("And the last one?"));
    chat.sampling.max_tokens = 4;
    chat.retitle();
    Store::new(dir.path().to_path_buf())
        .save_chat(&chat)
        .unwrap();
    let mut app = app_in(dir.path());
    app.state.current = 1;
    let mut h = model_harness(app);
    h.step();
    load_tiny(&mut h, true);
    assert!(
        h.query_by_label_contains("left out of the prompt")
            .is_none()
    );
    h.get_by_label("↻ Reply").click();
    wait_for(&mut h, "the reply", LONG, |app| app.state.live.is_none());
    assert!(
        h.state().state.error.is_none(),
        "{:?}",
        h.state().state.error
    );
    let dropped = h.state().state.dropped[&chat.id];
    assert!(dropped >= 2, "{dropped}");
    assert!(
        h.query_by_label_contains("left out of the prompt")
            .is_some()
    );
    assert!(h.state().state.stats.ctx_used <= 512);
}

#[test]
fn switch_chats() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_path_buf());
    let mut a = Chat::new();
    a.messages.push(Message::user("first chat message"));
    a.retitle();
    a.updated = 1;
    let mut b = Chat::new();
    b.messages.push(Message::user("second chat message"));
    b.retitle();
    b.updated = 2;
    store.save_chat(&a).unwrap();
    store.save_chat(&b).unwrap();
    let mut h = harness(app_in(dir.path()));
    h.run_steps(3);
    // Opens on a fresh empty chat; the saved ones are in the sidebar, newest first.
    assert_eq!(h.state().state.chats.len(), 3);
    h.get_by_label("first chat message").click();
    h.run_steps(3);
    assert_eq!(h.state().state.chat().unwrap().id, a.id);
    assert_eq!(
        h.query_all_by_label("first chat message").count(),
        2,
        "sidebar entry and the message"
    );
    h.get_by_label("second chat message").click();
    h.run_steps(3);
    assert_eq!(h.state().state.chat().unwrap().id, b.id);
}

#[test]
fn bad_model_file_shows_an_error_dialog() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed path, so the snapshot shows the same text on every run.
    let bad = std::env::temp_dir().join("lanternfish-app-broken.gguf");
    std::fs::write(&bad, b"GGUF this is not really a model").unwrap();
    let mut h = harness(app_in(dir.path()));
    h.step();
    h.state_mut().state.model_path = bad.display().to_string();
    h.state_mut().state.model_dialog_open = true;
    h.run_steps(3);
    h.get_by_label("Open").click();
    wait_for(&mut h, "the error", LONG, |app| app.state.error.is_some());
    let error = h.state().state.error.clone().unwrap();
    assert_eq!(error.title, "Could not open the model");
    assert!(error.body.contains("broken.gguf"), "{}", error.body);
    assert!(error.body.contains("invalid GGUF"), "{}", error.body);
    h.run_steps(3);
    h.snapshot("error_dialog");
    h.get_by_label("OK").click();
    h.run_steps(3);
    assert!(h.state().state.error.is_none());
    // The app keeps running and can still load a good model.
    load_tiny(&mut h, true);
}

/// Loading on the GPU (pipelines compile for a while on lavapipe) shows a progress bar with
/// Cancel; cancelling returns to "no model" and a late result of that load is ignored.
#[test]
fn cancel_loading() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(app_in(dir.path()));
    h.step();
    h.state_mut().state.settings.cpu_backend = false;
    h.state_mut().open_model(tiny_model().to_path_buf());
    h.step();
    assert!(matches!(
        h.state().state.model,
        lanternfish_app::state::ModelStatus::Loading { .. }
    ));
    h.get_by_label("Cancel").click();
    h.run_steps(3);
    assert!(matches!(
        h.state().state.model,
        lanternfish_app::state::ModelStatus::None
    ));
    std::thread::sleep(Duration::from_millis(1500));
    h.run_steps(3);
    assert!(matches!(
        h.state().state.model,
        lanternfish_app::state::ModelStatus::None
    ));
    assert!(h.state().state.error.is_none());
    // The app loads again after a cancel.
    load_tiny(&mut h, true);
}

#[test]
fn chinese_text_and_emoji_render() {
    assert!(
        lanternfish_app::theme::cjk_font_path().is_some(),
        "no CJK font found; install one (Debian: apt-get install fonts-wqy-microhei)"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_path_buf());
    let mut chat = Chat::new();
    chat.messages
        .push(Message::user("你好！请用中文介绍一下你自己。🙂"));
    chat.messages.push(Message::assistant(
        "你好！我是一个在本地运行的语言模型。\n\n- 支持 **Markdown**\n- 日本語とかな、한국어도 OK 🚀",
    ));
    chat.retitle();
    store.save_chat(&chat).unwrap();
    let mut app = app_in(dir.path());
    app.state.current = 1;
    let mut h = harness(app);
    h.run_steps(4);
    assert!(
        h.query_by_label_contains("我是一个在本地运行的语言模型")
            .is_some()
    );
    h.snapshot("cjk");
}

/// Typing through an input method: the pre-edit shows in the composer, an Enter that reaches the
/// app while composing does not send (egui-winit filters the keys an IME consumes, but not every
/// integration does), the commit replaces the pre-edit, and the next Enter sends.
#[test]
fn input_method_composition_then_enter() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = model_harness(app_in(dir.path()));
    h.step();
    load_tiny(&mut h, true);
    h.state_mut().state.chat_mut().unwrap().sampling.max_tokens = 2;
    h.get_by_role_and_label(Role::MultilineTextInput, "Message")
        .focus();
    h.step();
    let preedit = |text: &str| {
        egui::Event::Ime(egui::ImeEvent::Preedit {
            text: text.to_string(),
            active_range_chars: None,
        })
    };
    h.event(preedit("ni"));
    h.step();
    assert_eq!(h.state().state.composer, "ni");
    h.event(preedit("nihao"));
    h.step();
    assert_eq!(h.state().state.composer, "nihao");
    h.key_press(egui::Key::Enter);
    h.step();
    assert!(h.state().state.chat().unwrap().messages.is_empty());
    h.event(egui::Event::Ime(egui::ImeEvent::Commit("你好".to_string())));
    h.step();
    assert_eq!(h.state().state.composer, "你好");
    assert!(h.state().state.chat().unwrap().messages.is_empty());
    h.key_press(egui::Key::Enter);
    h.step();
    assert_eq!(h.state().state.chat().unwrap().messages[0].content, "你好");
    wait_for(&mut h, "the reply", LONG, |app| app.state.live.is_none());
}

#[test]
fn truncated_chat_file_is_set_aside_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().to_path_buf());
    let chat = markdown_chat();
    store.save_chat(&chat).unwrap();
    let path = store.chat_path(&chat.id);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let mut h = harness(app_in(dir.path()));
    h.run_steps(3);
    assert!(h.query_by_label_contains(".corrupt").is_some());
    assert!(!path.exists());
    h.get_by_label("✖").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains(".corrupt").is_none());
}

/// The reply's partial text is saved while it streams; an app that dies mid-reply (dropped
/// without finishing) leaves every earlier message, and the reply up to its last save, on disk.
#[test]
fn earlier_messages_survive_an_interrupted_reply() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_in(dir.path());
    app.save_every = Duration::from_millis(100);
    let mut h = model_harness(app);
    h.step();
    load_tiny(&mut h, true);
    h.state_mut().state.chat_mut().unwrap().sampling.max_tokens = 3;
    type_and_send(&mut h, "first question");
    wait_for(&mut h, "the first reply", LONG, |app| {
        app.state.live.is_none()
    });
    {
        let chat = h.state_mut().state.chat_mut().unwrap();
        chat.sampling.max_tokens = 400;
        chat.sampling.seed = 1;
    }
    type_and_send(&mut h, "second question");
    wait_for(&mut h, "a save of the partial reply", LONG, |app| {
        app.state
            .live
            .as_ref()
            .is_some_and(|l| l.pieces >= 1 && l.last_save > l.started)
    });
    drop(h);
    let loaded = Store::new(dir.path().to_path_buf()).load_chats();
    assert!(loaded.notices.is_empty());
    let chat = loaded
        .chats
        .iter()
        .find(|c| !c.messages.is_empty())
        .unwrap();
    let users: Vec<_> = chat
        .messages
        .iter()
        .filter(|m| m.role == MsgRole::User)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(users, ["first question", "second question"]);
    assert!(chat.messages[1].stats.is_some());
    let partial = &chat.messages[3];
    assert!(partial.partial, "{partial:?}");
    assert!(
        !partial.content.is_empty() || !partial.thinking.is_empty(),
        "{partial:?}"
    );
}

/// The same flow on the GPU engine (lavapipe without a GPU).
#[test]
fn gpu_backend_streams_a_reply() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = model_harness(app_in(dir.path()));
    h.step();
    load_tiny(&mut h, false);
    let info = h.state().state.model_info().unwrap().clone();
    assert!(info.gpu_bytes > 0, "{info:?}");
    h.state_mut().state.chat_mut().unwrap().sampling.max_tokens = 8;
    type_and_send(&mut h, "Hi GPU");
    wait_for(&mut h, "the reply", LONG, |app| app.state.live.is_none());
    let chat = h.state().state.chat().unwrap();
    assert_eq!(chat.messages.len(), 2);
    assert!(chat.messages[1].stats.as_ref().unwrap().generated_tokens > 0);
    assert!(h.query_by_label_contains(&info.device).is_some());
}

/// With a GPU budget below the model's size the engine pages experts, and the status bar shows
/// the expert-cache hit rate.
#[test]
fn gpu_budget_pages_experts_and_shows_the_hit_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = model_harness(app_in(dir.path()));
    h.step();
    // tiny-v3 needs 14.4 MiB at least and 20.9 MiB for everything.
    h.state_mut().state.settings.gpu_budget_mib = 16;
    load_tiny(&mut h, false);
    h.state_mut().state.chat_mut().unwrap().sampling.max_tokens = 4;
    type_and_send(&mut h, "Page some experts");
    wait_for(&mut h, "the reply", LONG, |app| app.state.live.is_none());
    assert!(
        h.state().state.error.is_none(),
        "{:?}",
        h.state().state.error
    );
    let rate = h.state().state.stats.expert_hit_rate.unwrap();
    assert!((0.0..=1.0).contains(&rate), "{rate}");
    assert!(h.query_by_label_contains("% on GPU").is_some());
}

/// Per-chat settings: edited in the settings window, saved with the chat when it closes.
#[test]
fn chat_settings_are_saved_per_chat() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(app_in(dir.path()));
    h.step();
    h.get_by_label("⚙ Chat settings").click();
    h.run_steps(3);
    h.get_by_role_and_label(Role::MultilineTextInput, "System prompt")
        .focus();
    h.step();
    h.get_by_role_and_label(Role::MultilineTextInput, "System prompt")
        .type_text("You are terse.");
    h.run_steps(3);
    assert_eq!(
        h.state().state.chat().unwrap().system_prompt,
        "You are terse."
    );
    h.get_by_label("⚙ Chat settings").click();
    h.run_steps(3);
    assert!(!h.state().state.chat_settings_open);
    let id = h.state().state.chat().unwrap().id.clone();
    h.state().saver.flush();
    let saved = Store::new(dir.path().to_path_buf()).load_chats();
    let chat = saved.chats.iter().find(|c| c.id == id).unwrap();
    assert_eq!(chat.system_prompt, "You are terse.");
}

/// Keyboard only: the composer has the focus at start, Tab moves it on, Ctrl+O opens the model
/// dialog.
#[test]
fn keyboard_navigation() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(app_in(dir.path()));
    h.run_steps(3);
    assert!(
        h.get_by_role_and_label(Role::MultilineTextInput, "Message")
            .is_focused()
    );
    h.key_press(egui::Key::Tab);
    h.run_steps(2);
    assert!(
        !h.get_by_role_and_label(Role::MultilineTextInput, "Message")
            .is_focused()
    );
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::O);
    h.run_steps(3);
    assert!(h.state().state.model_dialog_open);
    assert!(h.query_by_label("GGUF file").is_some());
}
