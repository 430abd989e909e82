//! The error dialog and the strip of notices.

use crate::state::{Action, AppState};

/// A modal with the error's title and text; the app keeps running behind it.
pub fn error(ui: &mut egui::Ui, state: &AppState, actions: &mut Vec<Action>) {
    let Some(error) = &state.error else { return };
    let response = egui::Modal::new(egui::Id::unique("error-dialog")).show(ui.ctx(), |ui| {
        ui.set_max_width(460.0);
        ui.heading(format!("⚠ {}", error.title));
        ui.add_space(6.0);
        ui.label(&error.body);
        ui.add_space(10.0);
        ui.vertical_centered(|ui| ui.button("OK").clicked()).inner
    });
    if response.inner || response.should_close() {
        actions.push(Action::CloseError);
    }
}

/// One line per notice, each with a dismiss button.
pub fn notices(ui: &mut egui::Ui, state: &AppState, actions: &mut Vec<Action>) {
    if state.notices.is_empty() {
        return;
    }
    egui::Panel::top("notices").show(ui, |ui| {
        for (i, notice) in state.notices.iter().enumerate() {
            ui.horizontal(|ui| {
                if ui.small_button("✖").on_hover_text("Dismiss").clicked() {
                    actions.push(Action::DismissNotice(i));
                }
                ui.label(
                    egui::RichText::new(format!("⚠ {notice}")).color(ui.visuals().warn_fg_color),
                );
            });
        }
    });
}
