//! The chat settings window: system prompt and sampling, kept per chat.

use crate::state::{Action, AppState};

pub fn show(ui: &mut egui::Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    if !state.chat_settings_open {
        return;
    }
    let mut open = true;
    let Some(chat) = state.chats.get_mut(state.current) else {
        state.chat_settings_open = false;
        return;
    };
    let mut changed = false;
    egui::Window::new("Chat settings")
        .open(&mut open)
        .collapsible(false)
        .default_width(420.0)
        .show(ui.ctx(), |ui| {
            let label = ui.label("System prompt");
            changed |= ui
                .add(
                    egui::TextEdit::multiline(&mut chat.system_prompt)
                        .id_salt("system-prompt")
                        .hint_text("You are a helpful assistant.")
                        .desired_rows(3)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id)
                .changed();
            ui.add_space(6.0);
            let s = &mut chat.sampling;
            egui::Grid::new("sampling").num_columns(2).show(ui, |ui| {
                let label = ui.label("Temperature");
                changed |= ui
                    .add(egui::Slider::new(&mut s.temperature, 0.0..=2.0))
                    .labelled_by(label.id)
                    .on_hover_text("0 = greedy")
                    .changed();
                ui.end_row();
                let label = ui.label("Top-p");
                changed |= ui
                    .add(egui::Slider::new(&mut s.top_p, 0.0..=1.0))
                    .labelled_by(label.id)
                    .changed();
                ui.end_row();
                let label = ui.label("Min-p");
                changed |= ui
                    .add(egui::Slider::new(&mut s.min_p, 0.0..=1.0))
                    .labelled_by(label.id)
                    .changed();
                ui.end_row();
                let label = ui.label("Seed");
                changed |= ui
                    .add(egui::DragValue::new(&mut s.seed))
                    .labelled_by(label.id)
                    .changed();
                ui.end_row();
                let label = ui.label("Max tokens");
                changed |= ui
                    .add(egui::DragValue::new(&mut s.max_tokens).range(1..=131_072))
                    .labelled_by(label.id)
                    .changed();
                ui.end_row();
            });
            if ui.button("Reset to defaults").clicked() {
                *s = Default::default();
                changed = true;
            }
        });
    if changed {
        actions.push(Action::ChatSettingsChanged);
    }
    if !open {
        state.chat_settings_open = false;
    }
}
