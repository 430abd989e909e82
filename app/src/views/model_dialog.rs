//! The model dialog: a path field (with a native file dialog where one exists), recent models,
//! load options, and the loading progress with Cancel.

use std::path::PathBuf;

use crate::state::{Action, AppState, ModelStatus};

pub fn show(ui: &mut egui::Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    if !state.model_dialog_open {
        return;
    }
    let mut open = true;
    egui::Window::new("Open a model")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .default_width(520.0)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ui.ctx(), |ui| {
            let loading = matches!(state.model, ModelStatus::Loading { .. });
            let label = ui.label("GGUF file");
            let mut submit = false;
            ui.horizontal(|ui| {
                let field = ui.add(
                    egui::TextEdit::singleline(&mut state.model_path)
                        .id_salt("model-path")
                        .hint_text("/path/to/model.gguf")
                        .desired_width(340.0),
                );
                let field = field.labelled_by(label.id);
                submit |= field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui
                    .button("Browse…")
                    .on_hover_text("Choose a file with the system file dialog")
                    .clicked()
                {
                    actions.push(Action::BrowseModel);
                }
                submit |= ui
                    .add_enabled(
                        !loading && !state.model_path.trim().is_empty(),
                        egui::Button::new("Open"),
                    )
                    .clicked();
            });
            if submit && !loading && !state.model_path.trim().is_empty() {
                actions.push(Action::OpenModel(PathBuf::from(state.model_path.trim())));
            }

            ui.add_space(6.0);
            ui.collapsing("Load options", |ui| {
                let mut changed = ui
                    .checkbox(
                        &mut state.settings.cpu_backend,
                        "CPU reference backend (exact but slow; no GPU needed)",
                    )
                    .changed();
                ui.horizontal(|ui| {
                    let label = ui.label("Context window (tokens, 0 = default 4096)");
                    changed |= ui
                        .add(egui::DragValue::new(&mut state.settings.n_ctx).range(0..=262_144))
                        .labelled_by(label.id)
                        .changed();
                });
                ui.horizontal(|ui| {
                    let label = ui.label("GPU budget (MiB, 0 = whole model on the GPU)");
                    changed |= ui
                        .add(
                            egui::DragValue::new(&mut state.settings.gpu_budget_mib)
                                .range(0..=1_048_576),
                        )
                        .labelled_by(label.id)
                        .on_hover_text("Experts beyond the budget are paged from disk")
                        .changed();
                });
                if changed {
                    actions.push(Action::SettingsChanged);
                }
            });

            if !state.settings.recent_models.is_empty() {
                ui.add_space(6.0);
                ui.label(egui::RichText::new("Recent models").strong());
                for path in &state.settings.recent_models {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| path.display().to_string());
                    if ui
                        .add_enabled(!loading, egui::Button::new(name))
                        .on_hover_text(path.display().to_string())
                        .clicked()
                    {
                        state.model_path = path.display().to_string();
                        actions.push(Action::OpenModel(path.clone()));
                    }
                }
            }

            match &state.model {
                ModelStatus::Loading { done, total, .. } => {
                    ui.add_space(8.0);
                    ui.horizontal(|ui| {
                        let fraction = if *total > 0 {
                            *done as f32 / *total as f32
                        } else {
                            0.0
                        };
                        ui.add(
                            egui::ProgressBar::new(fraction)
                                .desired_width(400.0)
                                .show_percentage(),
                        );
                        if ui.button("Cancel").clicked() {
                            actions.push(Action::CancelLoad);
                        }
                    });
                }
                ModelStatus::Ready(info) => {
                    ui.add_space(8.0);
                    ui.label(format!(
                        "Loaded: {} ({}, {} context) on {}",
                        info.name, info.arch, info.n_ctx, info.device
                    ));
                }
                ModelStatus::None => {}
            }
        });
    if !open {
        state.model_dialog_open = false;
    }
}
