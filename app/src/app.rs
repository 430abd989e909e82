//! The app: owns the UI state, the chat store and the engine bridge; each frame it applies the
//! engine's updates, draws the views and carries out the user's actions.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_commonmark::CommonMarkCache;
use lanternfish::engine::{Backend, EngineConfig};

use crate::bridge::{Bridge, Update};
use crate::state::{Action, AppState, ErrorDialog, Live, ModelStatus};
use crate::store::{Chat, Message, Role, Saver, Store, now_secs};
use crate::{theme, views};

/// How often a streaming reply is written to disk by default.
pub const SAVE_EVERY: Duration = Duration::from_secs(2);

pub struct ChatApp {
    pub state: AppState,
    pub bridge: Bridge,
    /// Writes chats and settings on its own thread.
    pub saver: Saver,
    /// How often a streaming reply is written to disk ([`SAVE_EVERY`]).
    pub save_every: Duration,
    md: CommonMarkCache,
    started: bool,
    /// The current chat's settings were edited; saved when the settings window closes.
    settings_dirty: bool,
}

impl ChatApp {
    /// Loads the saved chats and settings from `store` (corrupt files become notices).
    pub fn new(store: Store) -> ChatApp {
        let loaded = store.load_chats();
        let mut state = AppState {
            chats: loaded.chats,
            notices: loaded.notices,
            settings: store.load_settings(),
            focus_composer: true,
            ..AppState::default()
        };
        // Open on an empty chat: reuse the newest one if it is empty.
        if state.chats.first().is_none_or(|c| !c.messages.is_empty()) {
            state.chats.insert(0, Chat::new());
        }
        ChatApp {
            state,
            bridge: Bridge::new(),
            saver: Saver::new(store),
            save_every: SAVE_EVERY,
            md: CommonMarkCache::default(),
            started: false,
            settings_dirty: false,
        }
    }

    /// Draws one frame (the eframe `ui` and the tests call this).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        if !self.started {
            self.started = true;
            theme::install(ui.ctx());
            self.bridge.set_context(ui.ctx());
        }
        for update in self.bridge.poll() {
            self.apply(update);
        }
        for error in self.saver.errors() {
            if !self.state.notices.contains(&error) {
                self.state.notices.push(error);
            }
        }
        let mut actions = Vec::new();
        self.shortcuts(ui, &mut actions);
        views::dialogs::notices(ui, &self.state, &mut actions);
        views::sidebar::show(ui, &mut self.state, &mut actions);
        views::stats_bar::show(ui, &mut self.state, &mut actions);
        views::composer::show(ui, &mut self.state, &mut actions);
        egui::CentralPanel::default().show(ui, |ui| {
            views::chat::show(ui, &mut self.state, &mut self.md, &mut actions);
        });
        views::model_dialog::show(ui, &mut self.state, &mut actions);
        views::settings::show(ui, &mut self.state, &mut actions);
        views::dialogs::error(ui, &self.state, &mut actions);
        for action in actions {
            self.act(action);
        }
        if self.settings_dirty && !self.state.chat_settings_open {
            self.settings_dirty = false;
            self.save_current();
        }
        if self.state.live.is_some() {
            // Keep the spinner turning while the prompt is read.
            ui.ctx().request_repaint_after(Duration::from_millis(100));
        }
    }

    fn shortcuts(&mut self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        use egui::{Key, KeyboardShortcut, Modifiers};
        ui.input_mut(|i| {
            if i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::N)) {
                actions.push(Action::NewChat);
            }
            if i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::O)) {
                self.state.model_dialog_open = true;
            }
            if self.state.live.is_some()
                && self.state.error.is_none()
                && i.consume_key(Modifiers::NONE, Key::Escape)
            {
                actions.push(Action::Stop);
            }
        });
    }

    /// Starts loading `path` with the saved load options.
    pub fn open_model(&mut self, path: PathBuf) {
        let settings = &self.state.settings;
        let (cpu, n_ctx) = (settings.cpu_backend, settings.n_ctx);
        self.open_model_with(path, cpu, n_ctx);
    }

    /// Starts loading `path` on the CPU reference or the GPU with a context of `n_ctx` tokens
    /// (0 = the engine's default), without changing the saved options (the command line uses
    /// this).
    pub fn open_model_with(&mut self, path: PathBuf, cpu: bool, n_ctx: usize) {
        // An absolute path, so the recent list works from any directory.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let mut config = EngineConfig::new(path.clone());
        if cpu {
            config.backend = Backend::Cpu;
        }
        if n_ctx > 0 {
            config.n_ctx = lanternfish::engine::ContextSize::Tokens(n_ctx);
        }
        if self.state.settings.gpu_budget_mib > 0 {
            config.gpu_budget = Some(self.state.settings.gpu_budget_mib * 1024 * 1024);
        }
        if let Some(live) = &mut self.state.live {
            live.stopping = true;
        }
        self.state.model = ModelStatus::Loading {
            path,
            done: 0,
            total: 0,
        };
        self.bridge.load(config);
    }

    /// Cancels the model load in progress.
    pub fn cancel_load(&mut self) {
        self.bridge.cancel_load();
        self.state.model = ModelStatus::None;
    }

    fn act(&mut self, action: Action) {
        if self.settings_dirty
            && matches!(
                action,
                Action::NewChat | Action::SelectChat(_) | Action::DeleteChat(_)
            )
        {
            // The edited chat is about to stop being the current one.
            self.settings_dirty = false;
            self.save_current();
        }
        match action {
            Action::NewChat => self.new_chat(),
            Action::SelectChat(i) => {
                if i < self.state.chats.len() {
                    self.state.current = i;
                    self.state.focus_composer = true;
                }
            }
            Action::DeleteChat(i) => self.delete_chat(i),
            Action::Send => self.send(),
            Action::Stop => self.stop(),
            Action::Regenerate => self.regenerate(),
            Action::EditLast => self.edit_last(),
            Action::OpenModel(path) => self.open_model(path),
            Action::BrowseModel => self.browse(),
            Action::CancelLoad => self.cancel_load(),
            Action::DismissNotice(i) => {
                if i < self.state.notices.len() {
                    self.state.notices.remove(i);
                }
            }
            Action::CloseError => self.state.error = None,
            // Saved once the window closes, not on every keystroke.
            Action::ChatSettingsChanged => self.settings_dirty = true,
            Action::SettingsChanged => self.save_settings(),
        }
    }

    pub fn new_chat(&mut self) {
        if let Some(i) = self.state.chats.iter().position(|c| c.messages.is_empty()) {
            self.state.current = i;
        } else {
            let mut chat = Chat::new();
            if let Some(current) = self.state.chat() {
                // A new chat keeps the current one's system prompt and sampling.
                chat.system_prompt = current.system_prompt.clone();
                chat.sampling = current.sampling.clone();
            }
            self.state.chats.insert(0, chat);
            self.state.current = 0;
        }
        self.state.focus_composer = true;
    }

    fn delete_chat(&mut self, i: usize) {
        let Some(chat) = self.state.chats.get(i) else {
            return;
        };
        if self
            .state
            .live
            .as_ref()
            .is_some_and(|l| l.chat_id == chat.id)
        {
            self.state
                .notices
                .push("Stop the reply before deleting its chat.".into());
            return;
        }
        self.saver.delete_chat(&chat.id);
        let id = self.state.chats.remove(i).id;
        self.state.heights.remove(&id);
        if self.state.chats.is_empty() {
            self.state.chats.push(Chat::new());
        }
        if self.state.current >= i && self.state.current > 0 {
            self.state.current -= 1;
        }
    }

    /// Sends the composer's text as a user message and starts the reply.
    pub fn send(&mut self) {
        let text = self.state.composer.trim().to_owned();
        if text.is_empty() || self.state.is_streaming() {
            return;
        }
        if self.state.model_info().is_none() {
            self.state.error = Some(ErrorDialog {
                title: "No model loaded".into(),
                body: "Open a GGUF model first (the Model… button or Ctrl+O).".into(),
            });
            return;
        }
        self.state.composer.clear();
        let Some(chat) = self.state.chat_mut() else {
            return;
        };
        chat.messages.push(Message::user(text));
        chat.updated = now_secs();
        chat.retitle();
        self.save_current();
        self.start_reply();
    }

    /// Removes the last reply and asks again.
    pub fn regenerate(&mut self) {
        if self.state.is_streaming() {
            return;
        }
        let Some(chat) = self.state.chat_mut() else {
            return;
        };
        if chat
            .messages
            .last()
            .is_some_and(|m| m.role == Role::Assistant)
        {
            chat.messages.pop();
        }
        if chat.messages.last().is_some_and(|m| m.role == Role::User) {
            self.save_current();
            self.start_reply();
        }
    }

    /// Moves the last user message (and drops its reply) back into the composer.
    pub fn edit_last(&mut self) {
        if self.state.is_streaming() {
            return;
        }
        let Some(chat) = self.state.chat_mut() else {
            return;
        };
        let Some(i) = chat.messages.iter().rposition(|m| m.role == Role::User) else {
            return;
        };
        let text = chat.messages[i].content.clone();
        chat.messages.truncate(i);
        self.state.composer = text;
        self.state.focus_composer = true;
        self.save_current();
    }

    pub fn stop(&mut self) {
        if let Some(live) = &mut self.state.live {
            live.stopping = true;
            self.bridge.stop();
        }
    }

    fn start_reply(&mut self) {
        let Some(chat) = self.state.chats.get_mut(self.state.current) else {
            return;
        };
        let result = self.bridge.generate(
            &chat.id,
            &chat.system_prompt,
            &chat.messages,
            &chat.sampling,
        );
        match result {
            Ok(()) => {
                let mut reply = Message::assistant("");
                reply.partial = true;
                chat.messages.push(reply);
                let now = Instant::now();
                self.state.live = Some(Live {
                    chat_id: chat.id.clone(),
                    started: now,
                    prefill_started: None,
                    first_text: None,
                    pieces: 0,
                    prompt_tokens: 0,
                    last_save: now,
                    stopping: false,
                });
            }
            Err(message) => {
                self.state.error = Some(ErrorDialog {
                    title: "Cannot reply".into(),
                    body: message,
                });
            }
        }
    }

    /// Applies one engine update to the state.
    fn apply(&mut self, update: Update) {
        match update {
            Update::LoadProgress { done, total } => {
                if let ModelStatus::Loading {
                    done: d, total: t, ..
                } = &mut self.state.model
                {
                    (*d, *t) = (done, total);
                }
            }
            Update::Loaded(info) => {
                self.state.settings.add_recent(&info.path);
                self.save_settings();
                self.state.model_path = info.path.display().to_string();
                self.state.model = ModelStatus::Ready(info);
                self.state.model_dialog_open = false;
                self.state.stats = Default::default();
                self.state.focus_composer = true;
            }
            Update::LoadFailed { path, message } => {
                self.state.model = ModelStatus::None;
                let file = path.display().to_string();
                let body = if message.contains(&file) {
                    message
                } else {
                    format!("{file}: {message}")
                };
                self.state.error = Some(ErrorDialog {
                    title: "Could not open the model".into(),
                    body,
                });
            }
            Update::LoadCancelled => self.state.model = ModelStatus::None,
            Update::Started {
                chat_id,
                prompt_tokens,
                dropped,
            } => {
                if let Some(live) = &mut self.state.live {
                    live.prompt_tokens = prompt_tokens;
                }
                self.state.stats.ctx_used = prompt_tokens;
                self.state.dropped.insert(chat_id, dropped);
            }
            Update::Prefilling { .. } => {
                if let Some(live) = &mut self.state.live {
                    live.prefill_started = Some(Instant::now());
                }
            }
            Update::Text {
                chat_id,
                thinking,
                text,
            } => {
                let now = Instant::now();
                let Some(i) = self.state.find(&chat_id) else {
                    return;
                };
                if let Some(reply) = self.state.chats[i].messages.last_mut() {
                    if thinking {
                        reply.thinking.push_str(&text);
                    } else {
                        reply.content.push_str(&text);
                    }
                }
                let mut save = false;
                if let Some(live) = &mut self.state.live {
                    live.pieces += 1;
                    let first = *live.first_text.get_or_insert(now);
                    let prefill_start = live.prefill_started.unwrap_or(live.started);
                    let prefill_s = (first - prefill_start).as_secs_f64();
                    if live.pieces == 1 && prefill_s > 0.0 {
                        self.state.stats.prefill_tok_s = live.prompt_tokens as f64 / prefill_s;
                    }
                    let decode_s = (now - first).as_secs_f64();
                    if live.pieces > 1 && decode_s > 0.0 {
                        self.state.stats.decode_tok_s = (live.pieces - 1) as f64 / decode_s;
                    }
                    self.state.stats.ctx_used = live.prompt_tokens + live.pieces;
                    if now - live.last_save >= self.save_every {
                        live.last_save = now;
                        save = true;
                    }
                }
                if save {
                    self.save_chat(i);
                }
            }
            Update::Done {
                chat_id,
                stats,
                n_past,
                expert_hit_rate,
            } => {
                self.state.stats.expert_hit_rate = expert_hit_rate;
                self.state.live = None;
                self.state.stats.prefill_tok_s = stats.prefill_tok_s;
                self.state.stats.decode_tok_s = stats.decode_tok_s;
                self.state.stats.ctx_used = n_past;
                let Some(i) = self.state.find(&chat_id) else {
                    return;
                };
                let chat = &mut self.state.chats[i];
                if let Some(reply) = chat.messages.last_mut()
                    && reply.role == Role::Assistant
                {
                    reply.partial = false;
                    reply.stats = Some(stats);
                }
                chat.updated = now_secs();
                self.save_chat(i);
            }
            Update::Failed { chat_id, message } => {
                self.state.live = None;
                if let Some(i) = self.state.find(&chat_id) {
                    let chat = &mut self.state.chats[i];
                    // Drop an empty reply; keep a partial one.
                    if chat.messages.last().is_some_and(|m| {
                        m.role == Role::Assistant && m.content.is_empty() && m.thinking.is_empty()
                    }) {
                        chat.messages.pop();
                    }
                    self.save_chat(i);
                }
                self.state.error = Some(ErrorDialog {
                    title: "The reply failed".into(),
                    body: message,
                });
            }
        }
    }

    fn browse(&mut self) {
        let dialog = rfd::FileDialog::new()
            .set_title("Open a GGUF model")
            .add_filter("GGUF model", &["gguf"]);
        if let Some(path) = dialog.pick_file() {
            self.state.model_path = path.display().to_string();
            self.open_model(path);
        }
    }

    fn save_current(&mut self) {
        self.save_chat(self.state.current);
    }

    fn save_chat(&mut self, i: usize) {
        if let Some(chat) = self.state.chats.get(i) {
            self.saver.save_chat(chat);
        }
    }

    fn save_settings(&mut self) {
        self.saver.save_settings(&self.state.settings);
    }
}

impl Drop for ChatApp {
    /// Closing the window during a reply keeps what was streamed so far (the saver thread writes
    /// it before it stops).
    fn drop(&mut self) {
        if let Some(live) = &self.state.live
            && let Some(i) = self.state.find(&live.chat_id)
        {
            self.save_chat(i);
        }
    }
}

impl eframe::App for ChatApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}
