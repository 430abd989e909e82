//! The composer: the message field (Enter sends, Shift+Enter adds a line), Send/Stop, the
//! trimmed-history notice, and the chat settings button.

use crate::state::{Action, AppState};

/// The composer's widget id (tests and the app focus it).
pub fn id() -> egui::Id {
    egui::Id::unique("composer")
}

pub fn show(ui: &mut egui::Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    let streaming = state.current_is_streaming();
    let busy = state.is_streaming();
    let dropped = state
        .chat()
        .and_then(|c| state.dropped.get(&c.id))
        .copied()
        .unwrap_or(0);
    egui::Panel::bottom("composer").show(ui, |ui| {
        ui.add_space(6.0);
        if dropped > 0 {
            ui.label(
                egui::RichText::new(format!(
                    "⚠ The conversation is longer than the context: the oldest {dropped} message(s) \
                     were left out of the prompt."
                ))
                .color(ui.visuals().warn_fg_color),
            );
        }
        let label = ui.label("Message");
        let has_focus = ui.memory(|m| m.has_focus(id()));
        let ime = ime_activity(ui, state.ime_composing);
        state.ime_composing = ime.composing;
        // Enter that confirms an input method's composition (Chinese, Japanese, Korean: some
        // platforms deliver the key as well as the commit) must not send the half-typed message.
        let enter = has_focus
            && !ime.blocks_enter
            && ui.input(|i| i.key_pressed(egui::Key::Enter) && !i.modifiers.shift);
        let field = ui.add(
            egui::TextEdit::multiline(&mut state.composer)
                .id(id())
                .hint_text("Type a message — Enter sends, Shift+Enter adds a line")
                .return_key(egui::KeyboardShortcut::new(
                    egui::Modifiers::SHIFT,
                    egui::Key::Enter,
                ))
                .desired_rows(3)
                .desired_width(f32::INFINITY),
        );
        field.labelled_by(label.id);
        if state.focus_composer {
            state.focus_composer = false;
            ui.memory_mut(|m| m.request_focus(id()));
        }
        let can_send = !busy && !state.composer.trim().is_empty();
        if enter && can_send {
            actions.push(Action::Send);
        }
        ui.horizontal(|ui| {
            if streaming {
                let stopping = state.live.as_ref().is_some_and(|l| l.stopping);
                if ui
                    .add_enabled(!stopping, egui::Button::new("■ Stop"))
                    .on_hover_text("Esc")
                    .clicked()
                {
                    actions.push(Action::Stop);
                }
            } else if ui
                .add_enabled(can_send, egui::Button::new("Send"))
                .on_hover_text("Enter")
                .clicked()
            {
                actions.push(Action::Send);
            }
            if ui
                .button("⚙ Chat settings")
                .on_hover_text("System prompt and sampling for this chat")
                .clicked()
            {
                state.chat_settings_open = !state.chat_settings_open;
            }
        });
        ui.add_space(4.0);
    });
}

/// What the input method did this frame.
struct ImeActivity {
    /// Still composing after this frame's events.
    composing: bool,
    /// Composing at the start of the frame, or any composition event this frame.
    blocks_enter: bool,
}

fn ime_activity(ui: &egui::Ui, composing_before: bool) -> ImeActivity {
    ui.input(|i| {
        let mut composing = composing_before;
        let mut seen = false;
        for event in &i.events {
            match event {
                egui::Event::Ime(egui::ImeEvent::Preedit { text, .. }) => {
                    composing = !text.is_empty();
                    seen = true;
                }
                egui::Event::Ime(egui::ImeEvent::Commit(_)) => {
                    composing = false;
                    seen = true;
                }
                _ => {}
            }
        }
        ImeActivity {
            composing,
            blocks_enter: composing_before || seen,
        }
    })
}
