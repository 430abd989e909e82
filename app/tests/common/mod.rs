//! Shared test helpers: a real tiny synthetic model, an app on a temp data dir, a headless harness.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use lanternfish::quant::GgmlType;
use lanternfish::synth::{Layout, SynthConfig, SynthOptions, WeightType, write_model};
use lanternfish_app::ChatApp;
use lanternfish_app::state::ModelStatus;
use lanternfish_app::store::Store;

/// Where the test models live: one shared folder, so repeated runs reuse them instead of
/// leaving a copy per process behind.
fn models_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("lanternfish-app-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `path` if it exists, else what `write` puts there (written to a temp file and renamed, so
/// test binaries running at the same time never see half a file).
fn cached(path: PathBuf, write: impl FnOnce(&mut dyn std::io::Write)) -> PathBuf {
    if !path.is_file() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
        write(&mut file);
        std::io::Write::flush(&mut file).unwrap();
        drop(file);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// A tiny random-weight deepseek2 model (DeepSeek-V3 tokenizer and template).
pub fn tiny_model() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        cached(models_dir().join("tiny-v3-f32-seed7.gguf"), |out| {
            let options = SynthOptions {
                config: SynthConfig::preset("tiny-v3").unwrap(),
                weights: WeightType::Float(GgmlType::F32),
                layout: Layout::Mla,
                seed: 7,
            };
            write_model(&options, out, &|_, _| {}).unwrap();
        })
    })
}

/// The tiny model with an R1-style chat template whose generation prompt opens `<think>`, so
/// every reply streams as reasoning first.
pub fn thinking_model() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        use lanternfish::gguf::{GgufModel, GgufWriter, MetaValue};
        let source = GgufModel::open(tiny_model()).unwrap();
        let mut writer = GgufWriter::new();
        for (key, value) in source.metadata().metadata() {
            writer.set(key, MetaValue::from(value));
        }
        writer.set(
            "tokenizer.chat_template",
            MetaValue::String(
                "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}\
                 {% elif m['role'] == 'assistant' %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>{% endif %}\
                 {% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
                    .into(),
            ),
        );
        let tensors: Vec<_> = source.tensors().cloned().collect();
        for t in &tensors {
            writer.add_tensor_info(&t.name, t.ggml_type, &t.shape).unwrap();
        }
        cached(models_dir().join("tiny-v3-f32-seed7-think.gguf"), |out| {
            let mut stream = writer.start(out).unwrap();
            for t in &tensors {
                stream.write_tensor(source.tensor_data(t)).unwrap();
            }
            stream.finish().unwrap();
        })
    })
}

/// An app whose chats live in `dir`.
pub fn app_in(dir: &Path) -> ChatApp {
    ChatApp::new(Store::new(dir.to_path_buf()))
}

/// A headless harness around `app`, sized like a small laptop window; every glyph must exist
/// in the fonts (the app's theme loads the system CJK, symbol and emoji fonts).
pub fn harness(app: ChatApp) -> Harness<'static, ChatApp> {
    builder().build_ui_state(|ui, app: &mut ChatApp| app.show(ui), app)
}

/// The same for tests that stream a random-weight model's text (any script, invalid UTF-8
/// shown as U+FFFD): missing glyphs are drawn as boxes instead of failing.
pub fn model_harness(app: ChatApp) -> Harness<'static, ChatApp> {
    builder()
        .allow_missing_glyphs()
        .build_ui_state(|ui, app: &mut ChatApp| app.show(ui), app)
}

/// A strict harness in the light theme.
pub fn light_harness(app: ChatApp) -> Harness<'static, ChatApp> {
    builder()
        .with_theme(egui::Theme::Light)
        .build_ui_state(|ui, app: &mut ChatApp| app.show(ui), app)
}

fn builder() -> egui_kittest::HarnessBuilder<ChatApp> {
    Harness::builder()
        .with_size(egui::vec2(1000.0, 680.0))
        .with_render_cursor(false)
        .with_max_steps(1000)
}

/// Steps the harness until `done` holds (panics after `timeout`).
pub fn wait_for(
    harness: &mut Harness<'_, ChatApp>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&ChatApp) -> bool,
) {
    let start = Instant::now();
    loop {
        harness.step();
        if done(harness.state()) {
            harness.step();
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; model: {:?}; error: {:?}",
            harness.state().state.model,
            harness.state().state.error
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Loads the tiny model on the CPU reference (or the GPU) and waits until it is ready.
pub fn load_tiny(harness: &mut Harness<'_, ChatApp>, cpu: bool) {
    load(harness, tiny_model(), cpu);
}

/// Loads `model` and waits until it is ready.
pub fn load(harness: &mut Harness<'_, ChatApp>, model: &Path, cpu: bool) {
    let app = harness.state_mut();
    app.state.settings.cpu_backend = cpu;
    app.state.settings.n_ctx = 512;
    app.open_model(model.to_path_buf());
    wait_for(
        harness,
        "the model to load",
        Duration::from_secs(300),
        |app| matches!(app.state.model, ModelStatus::Ready(_)) || app.state.error.is_some(),
    );
    assert!(
        harness.state().state.error.is_none(),
        "{:?}",
        harness.state().state.error
    );
}
