//! UI state only: what is on screen and what the user is editing. No engine types live here
//! except the plain [`ModelInfo`] description; the engine itself sits behind [`crate::bridge`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use lanternfish::engine::ModelInfo;

use crate::store::{Chat, Settings};

/// The model side as the UI sees it.
#[derive(Debug, Default)]
pub enum ModelStatus {
    #[default]
    None,
    Loading {
        path: PathBuf,
        done: u64,
        total: u64,
    },
    Ready(ModelInfo),
}

/// A modal error message (bad model file, failed reply, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDialog {
    pub title: String,
    pub body: String,
}

/// The reply that is streaming now.
#[derive(Debug)]
pub struct Live {
    pub chat_id: String,
    pub started: Instant,
    /// When the worker took the job (prefill began).
    pub prefill_started: Option<Instant>,
    /// When the first text arrived (prefill ended).
    pub first_text: Option<Instant>,
    /// Text pieces received (about one per token).
    pub pieces: usize,
    pub prompt_tokens: usize,
    /// The last time the partial reply was written to disk.
    pub last_save: Instant,
    /// Stop was pressed; waiting for the engine to confirm.
    pub stopping: bool,
}

/// The numbers in the stats bar.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LiveStats {
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    /// Tokens of the context in use after the last reply (or during this one).
    pub ctx_used: usize,
    /// Expert-cache hit rate when the model pages experts (None when fully resident).
    pub expert_hit_rate: Option<f64>,
}

/// Per-message layout cache of one chat, for drawing only the messages in view.
#[derive(Debug, Default)]
pub struct HeightCache {
    /// (key, height in points) per message; the key changes when the message or width does.
    pub rows: Vec<(u64, f32)>,
    /// Messages laid out in the last frame (the rest were skipped as blank space).
    pub drawn: usize,
}

/// Everything the views read and edit.
#[derive(Debug, Default)]
pub struct AppState {
    /// Newest first, as in the sidebar.
    pub chats: Vec<Chat>,
    pub current: usize,
    /// The message being typed.
    pub composer: String,
    /// Notices shown in a dismissable strip (corrupt files, trimmed history ...).
    pub notices: Vec<String>,
    pub error: Option<ErrorDialog>,
    pub model: ModelStatus,
    pub model_dialog_open: bool,
    /// The model dialog's path field.
    pub model_path: String,
    pub chat_settings_open: bool,
    pub live: Option<Live>,
    pub stats: LiveStats,
    /// Oldest messages of the current chat left out of the last prompt.
    pub dropped: HashMap<String, usize>,
    pub settings: Settings,
    pub heights: HashMap<String, HeightCache>,
    /// Focus the composer on the next frame.
    pub focus_composer: bool,
    /// An input method is composing text in the composer (a non-empty pre-edit was seen and not
    /// yet committed): Enter then confirms the composition instead of sending.
    pub ime_composing: bool,
}

impl AppState {
    pub fn chat(&self) -> Option<&Chat> {
        self.chats.get(self.current)
    }

    pub fn chat_mut(&mut self) -> Option<&mut Chat> {
        self.chats.get_mut(self.current)
    }

    /// Index of the chat with this id.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.chats.iter().position(|c| c.id == id)
    }

    pub fn is_streaming(&self) -> bool {
        self.live.is_some()
    }

    /// Whether the current chat is the one streaming.
    pub fn current_is_streaming(&self) -> bool {
        match (&self.live, self.chat()) {
            (Some(live), Some(chat)) => live.chat_id == chat.id,
            _ => false,
        }
    }

    pub fn model_info(&self) -> Option<&ModelInfo> {
        match &self.model {
            ModelStatus::Ready(info) => Some(info),
            _ => None,
        }
    }
}

/// What the user asked for in a frame; the app applies these after drawing.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    NewChat,
    SelectChat(usize),
    DeleteChat(usize),
    Send,
    Stop,
    Regenerate,
    /// Put the last user message back in the composer and remove it (and its reply).
    EditLast,
    OpenModel(PathBuf),
    BrowseModel,
    CancelLoad,
    DismissNotice(usize),
    CloseError,
    /// The current chat's settings changed; save it.
    ChatSettingsChanged,
    /// The app settings changed; save them.
    SettingsChanged,
}
