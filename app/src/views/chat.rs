//! The conversation: messages as markdown (code blocks in monospace with colour and a copy
//! button), the collapsible "Thinking…" trace, and per-reply stats.
//!
//! Only the messages in view are laid out: each message's height is cached (keyed by its length
//! and the width), and messages outside the viewport are skipped with a blank of that height, so
//! a streaming token re-lays-out only the visible messages, not the whole history.

use std::hash::{Hash, Hasher};

use egui_commonmark::{CommonMarkCache, CommonMarkViewer};

use crate::state::{Action, AppState, HeightCache};
use crate::store::{Message, Role};
use crate::theme;

/// Extra points above and below the viewport that are still drawn.
const OVERSCAN: f32 = 300.0;

pub fn show(
    ui: &mut egui::Ui,
    state: &mut AppState,
    md: &mut CommonMarkCache,
    actions: &mut Vec<Action>,
) {
    let streaming = state.current_is_streaming();
    let idle = !state.is_streaming();
    let AppState {
        chats,
        current,
        heights,
        ..
    } = state;
    let Some(chat) = chats.get(*current) else {
        return;
    };
    if chat.messages.is_empty() {
        empty(ui);
        return;
    }
    let cache = heights
        .entry(chat.id.clone())
        .or_insert_with(HeightCache::default);
    cache.rows.resize(chat.messages.len(), (0, 0.0));
    cache.drawn = 0;
    let n = chat.messages.len();
    let last_user = chat.messages.iter().rposition(|m| m.role == Role::User);
    egui::ScrollArea::vertical()
        .id_salt(("messages", &chat.id))
        .stick_to_bottom(true)
        .auto_shrink(false)
        .show_viewport(ui, |ui, viewport| {
            let width = ui.available_width();
            let top = ui.min_rect().top();
            for (i, message) in chat.messages.iter().enumerate() {
                let is_last = i + 1 == n;
                let key = layout_key(message, width, is_last, idle);
                let y = ui.cursor().top() - top;
                let (cached_key, h) = cache.rows[i];
                let outside = y + h < viewport.min.y - OVERSCAN || y > viewport.max.y + OVERSCAN;
                if cached_key == key && h > 0.0 && outside {
                    ui.allocate_space(egui::vec2(width, h));
                    continue;
                }
                cache.drawn += 1;
                let response = ui
                    .vertical(|ui| {
                        ui.set_width(width);
                        let ctx = MessageCtx {
                            chat_id: &chat.id,
                            index: i,
                            streaming: streaming && is_last,
                            // Also under a last user message left without a reply (a crash
                            // or a failed reply): ask again.
                            can_regenerate: idle && is_last,
                            can_edit: idle && Some(i) == last_user,
                        };
                        message_ui(ui, message, &ctx, md, actions);
                    })
                    .response;
                cache.rows[i] = (key, response.rect.height());
            }
        });
}

/// What a message needs to know about its place in the chat.
struct MessageCtx<'a> {
    chat_id: &'a str,
    index: usize,
    streaming: bool,
    can_regenerate: bool,
    can_edit: bool,
}

fn layout_key(message: &Message, width: f32, is_last: bool, idle: bool) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (
        message.content.len(),
        message.thinking.len(),
        message.partial,
        message.stats.is_some(),
        width.to_bits(),
        is_last,
        idle,
    )
        .hash(&mut h);
    h.finish().max(1)
}

fn empty(ui: &mut egui::Ui) {
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() * 0.3);
        ui.heading("lanternfish");
        ui.add_space(6.0);
        ui.label(
            egui::RichText::new(
                "Offline chat with DeepSeek-style models. Open a GGUF model (Ctrl+O), then type a message.",
            )
            .color(theme::weak(ui)),
        );
        ui.label(
            egui::RichText::new("Enter sends · Shift+Enter new line · Ctrl+N new chat · Esc stops")
                .small()
                .color(theme::weak(ui)),
        );
    });
}

fn message_ui(
    ui: &mut egui::Ui,
    message: &Message,
    ctx: &MessageCtx<'_>,
    md: &mut CommonMarkCache,
    actions: &mut Vec<Action>,
) {
    ui.add_space(4.0);
    match message.role {
        Role::User => {
            egui::Frame::new()
                .fill(theme::user_bubble(ui))
                .corner_radius(8.0)
                .inner_margin(10.0)
                .show(ui, |ui| {
                    ui.set_width(ui.available_width());
                    ui.label(egui::RichText::new("You").strong());
                    CommonMarkViewer::new().show(ui, md, &message.content);
                });
            if !ctx.can_edit && !ctx.can_regenerate {
                return;
            }
            ui.horizontal(|ui| {
                if ctx.can_edit
                    && ui
                        .small_button("✏ Edit last message")
                        .on_hover_text("Put this message back in the composer and resend it")
                        .clicked()
                {
                    actions.push(Action::EditLast);
                }
                if ctx.can_regenerate
                    && ui
                        .small_button("↻ Reply")
                        .on_hover_text("Ask the model to answer this message")
                        .clicked()
                {
                    actions.push(Action::Regenerate);
                }
            });
        }
        Role::Assistant => {
            egui::Frame::new().inner_margin(10.0).show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.label(egui::RichText::new("Assistant").strong());
                if !message.thinking.is_empty() {
                    thinking_ui(ui, message, ctx);
                }
                if message.content.is_empty() && ctx.streaming && message.thinking.is_empty() {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(egui::RichText::new("Reading the prompt…").color(theme::weak(ui)));
                    });
                } else {
                    CommonMarkViewer::new().show(ui, md, &message.content);
                }
                if ctx.streaming {
                    ui.spinner();
                }
                if let Some(stats) = &message.stats {
                    ui.label(
                        egui::RichText::new(format!(
                            "{} tokens · {:.1} tok/s · {}",
                            stats.generated_tokens, stats.decode_tok_s, stats.stop_reason
                        ))
                        .small()
                        .color(theme::weak(ui)),
                    );
                } else if message.partial && !ctx.streaming {
                    ui.label(
                        egui::RichText::new("(interrupted reply)")
                            .small()
                            .color(theme::weak(ui)),
                    );
                }
            });
            if ctx.can_regenerate {
                ui.horizontal(|ui| {
                    if ui
                        .small_button("↻ Regenerate")
                        .on_hover_text("Replace this reply with a new one")
                        .clicked()
                    {
                        actions.push(Action::Regenerate);
                    }
                });
            }
        }
    }
}

/// The reasoning trace: open while the model thinks, collapsed once the answer starts (the
/// header's id changes then, so it starts out closed; the user can open it again).
fn thinking_ui(ui: &mut egui::Ui, message: &Message, ctx: &MessageCtx<'_>) {
    let answering = !message.content.is_empty() || !ctx.streaming;
    let title = if answering {
        format!(
            "Reasoning ({} words)",
            message.thinking.split_whitespace().count()
        )
    } else {
        "Thinking…".to_owned()
    };
    egui::CollapsingHeader::new(title)
        .id_salt(("think", ctx.chat_id, ctx.index, answering))
        .default_open(!answering)
        .show(ui, |ui| {
            ui.label(
                egui::RichText::new(&message.thinking)
                    .italics()
                    .color(theme::weak(ui)),
            );
        });
}
