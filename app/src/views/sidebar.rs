//! The sidebar: new chat, the saved conversations, and the model button.

use crate::state::{Action, AppState};

pub fn show(ui: &mut egui::Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    egui::Panel::left("sidebar")
        .resizable(true)
        .default_size(220.0)
        .show(ui, |ui| {
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                if ui.button("+ New chat").on_hover_text("Ctrl+N").clicked() {
                    actions.push(Action::NewChat);
                }
                if ui
                    .button("Model…")
                    .on_hover_text("Open a GGUF model (Ctrl+O)")
                    .clicked()
                {
                    state.model_dialog_open = true;
                }
            });
            ui.separator();
            egui::ScrollArea::vertical()
                .auto_shrink(false)
                .show(ui, |ui| {
                    for (i, chat) in state.chats.iter().enumerate() {
                        let streaming = state.live.as_ref().is_some_and(|l| l.chat_id == chat.id);
                        let title = if streaming {
                            format!("● {}", chat.title)
                        } else {
                            chat.title.clone()
                        };
                        let response = ui.add(
                            egui::Button::selectable(i == state.current, title)
                                .truncate()
                                .min_size(egui::vec2(ui.available_width(), 0.0)),
                        );
                        if response.clicked() {
                            actions.push(Action::SelectChat(i));
                        }
                        response.context_menu(|ui| {
                            if ui.button("🗑 Delete chat").clicked() {
                                actions.push(Action::DeleteChat(i));
                                ui.close();
                            }
                        });
                    }
                });
        });
}
