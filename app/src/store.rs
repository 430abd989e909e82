//! Saved chats: one JSON file per conversation under the data dir, written atomically (temp file,
//! fsync, rename), so a crash or `kill -9` never leaves a half-written file behind. A file that does
//! not parse is moved aside to `NAME.corrupt` and reported as a notice; it never stops the app.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// Speed and size of one reply, shown under it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyStats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    /// Why the reply ended: "end of text", "length", "stopped", ...
    pub stop_reason: String,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// R1-style reasoning (the text between `<think>` and `</think>`), kept apart from the answer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thinking: String,
    /// Set on a reply that was still streaming when the file was written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<ReplyStats>,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: content.into(),
            thinking: String::new(),
            partial: false,
            stats: None,
        }
    }

    pub fn assistant(content: impl Into<String>) -> Message {
        Message {
            role: Role::Assistant,
            ..Message::user(content)
        }
    }
}

/// Sampling settings, kept per chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sampling {
    pub temperature: f32,
    pub top_p: f32,
    pub min_p: f32,
    pub seed: u64,
    pub max_tokens: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.6,
            top_p: 0.95,
            min_p: 0.0,
            seed: 0,
            max_tokens: 1024,
        }
    }
}

/// One conversation, the unit that is saved to one file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    /// File stem; letters, digits and `-` only.
    pub id: String,
    pub title: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub updated: u64,
    #[serde(default)]
    pub system_prompt: String,
    #[serde(default)]
    pub sampling: Sampling,
    #[serde(default)]
    pub messages: Vec<Message>,
}

impl Chat {
    /// An empty chat with a fresh id.
    pub fn new() -> Chat {
        let now = now_secs();
        Chat {
            id: new_id(),
            title: "New chat".into(),
            created: now,
            updated: now,
            system_prompt: String::new(),
            sampling: Sampling::default(),
            messages: Vec::new(),
        }
    }

    /// Sets the title from the first user message (first line, at most 40 characters).
    pub fn retitle(&mut self) {
        if let Some(first) = self.messages.iter().find(|m| m.role == Role::User) {
            let line = first.content.lines().next().unwrap_or("").trim();
            if !line.is_empty() {
                let mut title: String = line.chars().take(40).collect();
                if line.chars().count() > 40 {
                    title.push('…');
                }
                self.title = title;
            }
        }
    }
}

impl Default for Chat {
    fn default() -> Self {
        Chat::new()
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A unique, sortable id: nanoseconds since the epoch in hex plus a process-wide counter.
fn new_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{nanos:x}-{:x}",
        COUNTER.fetch_add(1, Ordering::Relaxed) ^ std::process::id()
    )
}

/// App-wide settings kept next to the chats.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Most recent first.
    pub recent_models: Vec<PathBuf>,
    /// Context window to load models with (0 = the engine's default).
    pub n_ctx: usize,
    /// Run on the CPU reference instead of the GPU.
    pub cpu_backend: bool,
    /// GPU memory the model may use, in MiB (0 = everything resident).
    pub gpu_budget_mib: u64,
}

impl Settings {
    /// Moves `path` to the front of the recent list (at most 10 entries).
    pub fn add_recent(&mut self, path: &Path) {
        self.recent_models.retain(|p| p != path);
        self.recent_models.insert(0, path.to_path_buf());
        self.recent_models.truncate(10);
    }
}

/// The folder of saved chats and settings.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// What loading the saved chats found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Newest first.
    pub chats: Vec<Chat>,
    /// One line per file that was set aside or could not be read.
    pub notices: Vec<String>,
}

impl Store {
    /// The store in `LANTERNFISH_DATA_DIR` if set, else the platform's data dir
    /// (`~/.local/share/lanternfish` on Linux).
    pub fn default_location() -> Store {
        if let Some(dir) = std::env::var_os("LANTERNFISH_DATA_DIR") {
            return Store::new(PathBuf::from(dir));
        }
        let dir = directories::ProjectDirs::from("", "", "lanternfish")
            .map(|d| d.data_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".lanternfish"));
        Store::new(dir)
    }

    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn chats_dir(&self) -> PathBuf {
        self.dir.join("chats")
    }

    /// The file a chat is saved in.
    pub fn chat_path(&self, id: &str) -> PathBuf {
        self.chats_dir().join(format!("{id}.json"))
    }

    /// Reads every `*.json` chat, newest first; corrupt files are renamed to `*.corrupt`.
    pub fn load_chats(&self) -> Loaded {
        let mut loaded = Loaded::default();
        let entries = match fs::read_dir(self.chats_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return loaded,
            Err(e) => {
                loaded.notices.push(format!(
                    "Could not read saved chats in {}: {e}",
                    self.chats_dir().display()
                ));
                return loaded;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let parsed = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<Chat>(&bytes).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(mut chat) => {
                    // The file name is the id; a copied file keeps working.
                    if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                        chat.id = stem.to_string();
                    }
                    loaded.chats.push(chat);
                }
                Err(why) => {
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    match set_aside(&path) {
                        Ok(to) => loaded.notices.push(format!(
                            "Saved chat {name} could not be read ({why}); it was moved to {}",
                            to.display()
                        )),
                        Err(e) => loaded.notices.push(format!(
                            "Saved chat {name} could not be read ({why}) nor moved aside ({e})"
                        )),
                    }
                }
            }
        }
        loaded
            .chats
            .sort_by(|a, b| b.updated.cmp(&a.updated).then(b.id.cmp(&a.id)));
        loaded
    }

    /// Writes `chat` atomically.
    pub fn save_chat(&self, chat: &Chat) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(chat).map_err(std::io::Error::other)?;
        write_atomic(&self.chat_path(&chat.id), &bytes)
    }

    /// Removes a chat's file (missing is fine).
    pub fn delete_chat(&self, id: &str) -> std::io::Result<()> {
        match fs::remove_file(self.chat_path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn settings_path(&self) -> PathBuf {
        self.dir.join("settings.json")
    }

    /// The saved settings, or the defaults (a corrupt file is ignored and later overwritten).
    pub fn load_settings(&self) -> Settings {
        fs::read(self.settings_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save_settings(&self, settings: &Settings) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(settings).map_err(std::io::Error::other)?;
        write_atomic(&self.settings_path(), &bytes)
    }
}

/// One job of the [`Saver`] thread.
enum SaveOp {
    Chat(Box<Chat>),
    Delete(String),
    Settings(Settings),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Writes chats and settings on a background thread, in order, so the UI never waits for a disk
/// (`fsync`). Errors come back as notices through [`Saver::errors`]. Dropping it finishes the
/// queued writes.
pub struct Saver {
    store: Store,
    tx: Option<std::sync::mpsc::Sender<SaveOp>>,
    errors: std::sync::mpsc::Receiver<String>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Saver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saver")
            .field("dir", &self.store.dir)
            .finish()
    }
}

impl Saver {
    pub fn new(store: Store) -> Saver {
        let (tx, rx) = std::sync::mpsc::channel::<SaveOp>();
        let (err_tx, errors) = std::sync::mpsc::channel();
        let worker = store.clone();
        let thread = std::thread::Builder::new()
            .name("lanternfish-app-save".into())
            .spawn(move || {
                for op in rx {
                    let error = match op {
                        SaveOp::Chat(chat) => worker.save_chat(&chat).err().map(|e| {
                            format!(
                                "Could not save the chat to {}: {e}",
                                worker.chat_path(&chat.id).display()
                            )
                        }),
                        SaveOp::Delete(id) => worker
                            .delete_chat(&id)
                            .err()
                            .map(|e| format!("Could not delete the chat's file: {e}")),
                        SaveOp::Settings(settings) => worker
                            .save_settings(&settings)
                            .err()
                            .map(|e| format!("Could not save the settings: {e}")),
                        SaveOp::Flush(done) => {
                            let _ = done.send(());
                            None
                        }
                    };
                    if let Some(error) = error {
                        let _ = err_tx.send(error);
                    }
                }
            })
            .ok();
        Saver {
            store,
            tx: thread.as_ref().map(|_| tx),
            errors,
            thread,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn send(&self, op: SaveOp) {
        match &self.tx {
            Some(tx) => {
                let _ = tx.send(op);
            }
            // No thread (could not spawn one): write right here.
            None => match op {
                SaveOp::Chat(chat) => {
                    let _ = self.store.save_chat(&chat);
                }
                SaveOp::Delete(id) => {
                    let _ = self.store.delete_chat(&id);
                }
                SaveOp::Settings(settings) => {
                    let _ = self.store.save_settings(&settings);
                }
                SaveOp::Flush(_) => {}
            },
        }
    }

    /// Queues a write of `chat` (a snapshot of it now).
    pub fn save_chat(&self, chat: &Chat) {
        self.send(SaveOp::Chat(Box::new(chat.clone())));
    }

    pub fn delete_chat(&self, id: &str) {
        self.send(SaveOp::Delete(id.to_owned()));
    }

    pub fn save_settings(&self, settings: &Settings) {
        self.send(SaveOp::Settings(settings.clone()));
    }

    /// Waits until everything queued so far is on disk.
    pub fn flush(&self) {
        let (done_tx, done) = std::sync::mpsc::channel();
        self.send(SaveOp::Flush(done_tx));
        let _ = done.recv();
    }

    /// Errors reported since the last call.
    pub fn errors(&self) -> Vec<String> {
        self.errors.try_iter().collect()
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes `bytes` to a temp file in the same folder, fsyncs it, renames it over `path` and fsyncs
/// the folder, so `path` holds either the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable (not supported on every platform; best effort).
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renames `path` to `path.corrupt` (or `path.corrupt.N` if that exists) and returns the new path.
fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let base = path.as_os_str().to_owned();
    let mut n = 0;
    loop {
        let mut to = base.clone();
        if n == 0 {
            to.push(".corrupt");
        } else {
            to.push(format!(".corrupt.{n}"));
        }
        let to = PathBuf::from(to);
        if !to.exists() {
            fs::rename(path, &to)?;
            return Ok(to);
        }
        n += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let mut a = Chat::new();
        a.updated = 10;
        a.messages.push(Message::user("你好，世界 🌍"));
        let mut b = Chat::new();
        b.updated = 20;
        b.messages.push(Message::user("hi"));
        let mut reply = Message::assistant("answer");
        reply.thinking = "hmm".into();
        reply.partial = true;
        b.messages.push(reply);
        store.save_chat(&a).unwrap();
        store.save_chat(&b).unwrap();
        let loaded = store.load_chats();
        assert!(loaded.notices.is_empty());
        assert_eq!(loaded.chats, vec![b.clone(), a.clone()]);
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("chats"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        store.delete_chat(&a.id).unwrap();
        store.delete_chat(&a.id).unwrap();
        assert_eq!(store.load_chats().chats, vec![b]);
    }

    #[test]
    fn corrupt_file_is_set_aside_with_a_notice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let mut good = Chat::new();
        good.messages.push(Message::user("kept"));
        store.save_chat(&good).unwrap();
        let bad = Chat::new();
        store.save_chat(&bad).unwrap();
        let path = store.chat_path(&bad.id);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let loaded = store.load_chats();
        assert_eq!(loaded.chats, vec![good]);
        assert_eq!(loaded.notices.len(), 1);
        assert!(
            loaded.notices[0].contains(".corrupt"),
            "{}",
            loaded.notices[0]
        );
        assert!(!path.exists());
        let mut aside = path.into_os_string();
        aside.push(".corrupt");
        assert!(PathBuf::from(aside).exists());
        // A second load is clean.
        assert!(store.load_chats().notices.is_empty());
    }

    #[test]
    fn saver_writes_in_order_and_drop_finishes_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let saver = Saver::new(store.clone());
        let mut chat = Chat::new();
        for i in 0..20 {
            chat.messages.push(Message::user(format!("m{i}")));
            saver.save_chat(&chat);
        }
        saver.flush();
        assert_eq!(store.load_chats().chats, vec![chat.clone()]);
        saver.delete_chat(&chat.id);
        let other = Chat::new();
        saver.save_chat(&other);
        drop(saver);
        assert_eq!(store.load_chats().chats, vec![other]);

        // A folder that cannot be written reports an error instead of failing silently.
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let saver = Saver::new(Store::new(file));
        saver.save_chat(&chat);
        saver.flush();
        let errors = saver.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("Could not save the chat"),
            "{errors:?}"
        );
    }

    #[test]
    fn settings_round_trip_and_recent_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("nested"));
        assert_eq!(store.load_settings(), Settings::default());
        let mut s = Settings::default();
        for i in 0..12 {
            s.add_recent(Path::new(&format!("/m/{i}.gguf")));
        }
        s.add_recent(Path::new("/m/5.gguf"));
        assert_eq!(s.recent_models.len(), 10);
        assert_eq!(s.recent_models[0], Path::new("/m/5.gguf"));
        store.save_settings(&s).unwrap();
        assert_eq!(store.load_settings(), s);
    }

    #[test]
    fn title_from_first_message() {
        let mut c = Chat::new();
        c.messages
            .push(Message::user("  Explain MLA attention\nin detail"));
        c.retitle();
        assert_eq!(c.title, "Explain MLA attention");
        c.messages[0].content = "x".repeat(50);
        c.retitle();
        assert_eq!(c.title.chars().count(), 41);
    }
}
