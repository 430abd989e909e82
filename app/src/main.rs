//! `lanternfish-app [--model FILE]`: the desktop chat app.

use std::path::PathBuf;

use clap::Parser;
use lanternfish_app::ChatApp;
use lanternfish_app::store::Store;

/// Offline chat with DeepSeek-architecture GGUF models.
#[derive(Parser, Debug)]
#[command(name = "lanternfish-app", version)]
struct Args {
    /// A GGUF model to load at start.
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// With --model: run it on the exact but slow CPU reference instead of the GPU.
    #[arg(long)]
    cpu: bool,
    /// With --model: its context window in tokens.
    #[arg(long)]
    ctx: Option<usize>,
}

fn main() -> eframe::Result {
    let args = Args::parse();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("lanternfish")
            .with_app_id("lanternfish")
            .with_inner_size([1100.0, 720.0])
            .with_min_inner_size([480.0, 360.0])
            .with_position([0.0, 0.0]),
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    eframe::run_native(
        "lanternfish",
        options,
        Box::new(move |_cc| {
            let mut app = ChatApp::new(Store::default_location());
            if let Some(model) = args.model {
                // --cpu and --ctx apply to this load only; the saved options stay as they are.
                let cpu = args.cpu || app.state.settings.cpu_backend;
                let n_ctx = args.ctx.unwrap_or(app.state.settings.n_ctx);
                app.state.model_path = model.display().to_string();
                app.open_model_with(model, cpu, n_ctx);
            }
            Ok(Box::new(app))
        }),
    )
}
