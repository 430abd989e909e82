//! The status bar: model and device, loading progress with Cancel, live speed, context and memory.

use super::bytes;
use crate::state::{Action, AppState, ModelStatus};

pub fn show(ui: &mut egui::Ui, state: &mut AppState, actions: &mut Vec<Action>) {
    egui::Panel::bottom("stats").show(ui, |ui| {
        ui.horizontal(|ui| match &state.model {
            ModelStatus::None => {
                ui.label("No model loaded.");
                if ui.button("Open a model…").clicked() {
                    state.model_dialog_open = true;
                }
            }
            ModelStatus::Loading { path, done, total } => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let fraction = if *total > 0 {
                    *done as f32 / *total as f32
                } else {
                    0.0
                };
                ui.label(format!("Loading {name}"));
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .desired_width(220.0)
                        .show_percentage(),
                );
                if ui.button("Cancel").clicked() {
                    actions.push(Action::CancelLoad);
                }
            }
            ModelStatus::Ready(info) => {
                ui.label(egui::RichText::new(&info.name).strong())
                    .on_hover_text(info.path.display().to_string());
                ui.separator();
                ui.label(&info.device).on_hover_text("Device / adapter");
                if info.gpu_bytes > 0 {
                    ui.separator();
                    ui.label(format!("GPU {}", bytes(info.gpu_bytes)))
                        .on_hover_text("Weights, KV cache and scratch on the GPU");
                }
                if let Some(rate) = state.stats.expert_hit_rate {
                    ui.separator();
                    ui.label(format!("experts {:.0}% on GPU", rate * 100.0))
                        .on_hover_text("Expert-cache hit rate (paged experts)");
                }
                ui.separator();
                ui.label(format!("ctx {} / {}", state.stats.ctx_used, info.n_ctx))
                    .on_hover_text("Context tokens in use");
                ui.separator();
                ui.label(format!(
                    "prefill {:.1} tok/s · decode {:.1} tok/s",
                    state.stats.prefill_tok_s, state.stats.decode_tok_s
                ));
            }
        });
    });
}
