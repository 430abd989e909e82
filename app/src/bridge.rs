//! The bridge between the UI and the engine. The engine runs on its own worker thread
//! ([`lanternfish::engine::Engine`]); loading and each generation get a small forwarding thread
//! that turns engine events into [`Update`]s on one channel and wakes the UI with
//! `request_repaint`. The UI calls [`Bridge::poll`] once per frame and never blocks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use lanternfish::chat_template::{ChatMessage, RenderOptions};
use lanternfish::engine::{
    Channel, Engine, EngineConfig, Event, GenerateOptions, ModelInfo, Request, StopReason,
};
use lanternfish::sampler::SamplerConfig;

use crate::store::{Message, ReplyStats, Role, Sampling};

/// Wakes the UI from another thread (set once the UI's context exists).
#[derive(Clone, Default)]
pub struct Waker(Arc<OnceLock<egui::Context>>);

impl Waker {
    pub fn set(&self, ctx: &egui::Context) {
        let _ = self.0.set(ctx.clone());
    }

    pub fn wake(&self) {
        if let Some(ctx) = self.0.get() {
            ctx.request_repaint();
        }
    }
}

/// What the engine side reports to the UI.
#[derive(Debug)]
pub enum Update {
    /// Bytes of the model uploaded so far.
    LoadProgress { done: u64, total: u64 },
    /// The model is ready.
    Loaded(ModelInfo),
    /// Loading failed (bad file, unsupported model, out of memory ...).
    LoadFailed { path: PathBuf, message: String },
    /// The user cancelled the load.
    LoadCancelled,
    /// The prompt was rendered; `dropped` oldest messages did not fit the context.
    Started {
        chat_id: String,
        prompt_tokens: usize,
        dropped: usize,
    },
    /// The worker began prefilling (the wait in the queue is over).
    Prefilling { chat_id: String },
    /// Streamed reply text.
    Text {
        chat_id: String,
        thinking: bool,
        text: String,
    },
    /// The reply finished (also when stopped).
    Done {
        chat_id: String,
        stats: ReplyStats,
        /// Tokens now in the context (prompt + reply).
        n_past: usize,
        /// Share of routed experts found on the GPU since the model was loaded (when paging).
        expert_hit_rate: Option<f64>,
    },
    /// The reply failed; the engine keeps serving.
    Failed { chat_id: String, message: String },
}

/// Internal: what the background threads send. Load messages carry their load's cancel flag, so
/// that a superseded or cancelled load's late messages are ignored.
enum Internal {
    Update(Update),
    Load {
        token: Arc<AtomicBool>,
        msg: LoadMsg,
    },
}

enum LoadMsg {
    Progress(u64, u64),
    Ready(Arc<Engine>),
    Failed(PathBuf, String),
    Cancelled,
}

/// A running generation: the flag the Stop button sets, and the job's own flag once submitted.
struct Generating {
    chat_id: String,
    stop: Arc<AtomicBool>,
    job_flag: Arc<Mutex<Option<Arc<AtomicBool>>>>,
}

/// Owns the engine (once loaded) and the threads that talk to it.
pub struct Bridge {
    tx: Sender<Internal>,
    rx: Receiver<Internal>,
    waker: Waker,
    engine: Option<Arc<Engine>>,
    loading: Option<Arc<AtomicBool>>,
    generating: Option<Generating>,
}

impl Default for Bridge {
    fn default() -> Self {
        Bridge::new()
    }
}

impl Bridge {
    pub fn new() -> Bridge {
        let (tx, rx) = channel();
        Bridge {
            tx,
            rx,
            waker: Waker::default(),
            engine: None,
            loading: None,
            generating: None,
        }
    }

    /// Lets the background threads wake the UI.
    pub fn set_context(&self, ctx: &egui::Context) {
        self.waker.set(ctx);
    }

    /// Everything reported since the last call; never blocks.
    pub fn poll(&mut self) -> Vec<Update> {
        let mut out = Vec::new();
        while let Ok(message) = self.rx.try_recv() {
            match message {
                Internal::Load { token, msg } => {
                    let current = self
                        .loading
                        .as_ref()
                        .is_some_and(|flag| Arc::ptr_eq(flag, &token));
                    if !current {
                        continue;
                    }
                    match msg {
                        LoadMsg::Progress(done, total) => {
                            out.push(Update::LoadProgress { done, total });
                        }
                        LoadMsg::Ready(engine) => {
                            self.loading = None;
                            out.push(Update::Loaded(engine.info().clone()));
                            self.engine = Some(engine);
                        }
                        LoadMsg::Failed(path, message) => {
                            self.loading = None;
                            out.push(Update::LoadFailed { path, message });
                        }
                        LoadMsg::Cancelled => {
                            self.loading = None;
                            out.push(Update::LoadCancelled);
                        }
                    }
                }
                Internal::Update(update) => {
                    if let Update::Done { chat_id, .. } | Update::Failed { chat_id, .. } = &update
                        && self.generating.as_ref().map(|g| &g.chat_id) == Some(chat_id)
                    {
                        self.generating = None;
                    }
                    out.push(update);
                }
            }
        }
        out
    }

    pub fn info(&self) -> Option<&ModelInfo> {
        self.engine.as_ref().map(|e| e.info())
    }

    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    /// The chat whose reply is streaming, if any.
    pub fn generating(&self) -> Option<&str> {
        self.generating.as_ref().map(|g| g.chat_id.as_str())
    }

    /// Starts loading `config` in the background (the current model is dropped first to free its
    /// memory). Progress, success and failure arrive through [`Bridge::poll`].
    pub fn load(&mut self, config: EngineConfig) {
        self.stop();
        if let Some(old) = self.loading.take() {
            old.store(true, Ordering::SeqCst);
        }
        self.engine = None;
        let cancel = Arc::new(AtomicBool::new(false));
        self.loading = Some(cancel.clone());
        let (tx, waker) = (self.tx.clone(), self.waker.clone());
        let spawned = std::thread::Builder::new()
            .name("lanternfish-app-load".into())
            .spawn(move || {
                let path = config.model.clone();
                let mut last = Instant::now();
                let send = |msg: LoadMsg| {
                    let _ = tx.send(Internal::Load {
                        token: cancel.clone(),
                        msg,
                    });
                    waker.wake();
                };
                let mut on_progress = |done: u64, total: u64| {
                    if last.elapsed().as_millis() >= 30 || done == total {
                        last = Instant::now();
                        send(LoadMsg::Progress(done, total));
                    }
                };
                let result = Engine::load(config, &mut on_progress, &cancel);
                send(match result {
                    Ok(engine) if !cancel.load(Ordering::SeqCst) => {
                        LoadMsg::Ready(Arc::new(engine))
                    }
                    Ok(_) | Err(lanternfish::Error::Cancelled) => LoadMsg::Cancelled,
                    Err(e) => LoadMsg::Failed(path, e.to_string()),
                });
            });
        if let Err(e) = spawned {
            self.loading = None;
            let _ = self.tx.send(Internal::Update(Update::LoadFailed {
                path: PathBuf::new(),
                message: format!("could not start the loader thread: {e}"),
            }));
        }
    }

    /// Cancels a load in progress (the loader reports `LoadCancelled`).
    pub fn cancel_load(&mut self) {
        if let Some(flag) = self.loading.take() {
            flag.store(true, Ordering::SeqCst);
            let _ = self.tx.send(Internal::Update(Update::LoadCancelled));
            self.waker.wake();
        }
    }

    /// Starts a reply to `messages` in chat `chat_id`. Returns an error (for a notice) when no
    /// model is loaded or a reply is already streaming.
    pub fn generate(
        &mut self,
        chat_id: &str,
        system_prompt: &str,
        messages: &[Message],
        sampling: &Sampling,
    ) -> Result<(), String> {
        let Some(engine) = self.engine.clone() else {
            return Err("Load a model first (Model → Open).".into());
        };
        if self.generating.is_some() {
            return Err("A reply is already streaming; stop it first.".into());
        }
        let mut history = Vec::with_capacity(messages.len() + 1);
        if !system_prompt.trim().is_empty() {
            history.push(ChatMessage::system(system_prompt));
        }
        history.extend(messages.iter().map(|m| match m.role {
            Role::User => ChatMessage::user(m.content.clone()),
            Role::Assistant => ChatMessage::assistant(m.content.clone()),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let job_flag = Arc::new(Mutex::new(None::<Arc<AtomicBool>>));
        self.generating = Some(Generating {
            chat_id: chat_id.to_owned(),
            stop: stop.clone(),
            job_flag: job_flag.clone(),
        });
        let (tx, waker) = (self.tx.clone(), self.waker.clone());
        let chat_id = chat_id.to_owned();
        let sampling = sampling.clone();
        let spawned = std::thread::Builder::new()
            .name("lanternfish-app-reply".into())
            .spawn(move || {
                let send = |update: Update| {
                    let _ = tx.send(Internal::Update(update));
                    waker.wake();
                };
                run_reply(
                    &engine, &chat_id, &history, &sampling, &stop, &job_flag, &send,
                );
            });
        if let Err(e) = spawned {
            self.generating = None;
            return Err(format!("could not start the reply thread: {e}"));
        }
        Ok(())
    }

    /// Stops the streaming reply within one token (its `Done` arrives with what was generated).
    pub fn stop(&mut self) {
        if let Some(g) = &self.generating {
            g.stop.store(true, Ordering::SeqCst);
            let slot = g.job_flag.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(flag) = slot.as_ref() {
                flag.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Renders, submits and forwards one reply (on its own thread).
fn run_reply(
    engine: &Engine,
    chat_id: &str,
    history: &[ChatMessage],
    sampling: &Sampling,
    stop: &AtomicBool,
    job_flag: &Mutex<Option<Arc<AtomicBool>>>,
    send: &dyn Fn(Update),
) {
    let id = || chat_id.to_owned();
    let n_ctx = engine.info().n_ctx;
    let reserve = sampling.max_tokens.clamp(1, (n_ctx / 2).max(1));
    let rendered = match engine.render_chat(history, &RenderOptions::default(), reserve) {
        Ok(r) => r,
        Err(e) => {
            return send(Update::Failed {
                chat_id: id(),
                message: e.to_string(),
            });
        }
    };
    send(Update::Started {
        chat_id: id(),
        prompt_tokens: rendered.tokens.len(),
        dropped: rendered.dropped,
    });
    let room = n_ctx.saturating_sub(rendered.tokens.len());
    let options = GenerateOptions {
        max_tokens: sampling.max_tokens.min(room).max(1),
        sampler: SamplerConfig {
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            min_p: sampling.min_p,
            seed: sampling.seed,
            ..SamplerConfig::default()
        },
        stop: Vec::new(),
        starts_thinking: rendered.starts_thinking,
        logprobs: None,
    };
    let job = engine.submit(Request {
        tokens: rendered.tokens,
        options,
    });
    {
        let mut slot = job_flag.lock().unwrap_or_else(PoisonError::into_inner);
        if stop.load(Ordering::SeqCst) {
            job.cancel();
        }
        *slot = Some(job.cancel_flag());
    }
    for event in job.events.iter() {
        match event {
            Event::Started => send(Update::Prefilling { chat_id: id() }),
            Event::Text { channel, text } => send(Update::Text {
                chat_id: id(),
                thinking: channel == Channel::Thinking,
                text,
            }),
            Event::Token(_) => {}
            Event::Done {
                generation,
                n_past,
                session,
            } => {
                let paging = session.paging;
                let expert_hit_rate = (paging.requests > 0).then(|| paging.hit_rate());
                let s = &generation.stats;
                let stats = ReplyStats {
                    prompt_tokens: s.prompt_tokens,
                    generated_tokens: s.generated_tokens,
                    prefill_tok_s: s.prefill_tok_s(),
                    decode_tok_s: s.decode_tok_s(),
                    stop_reason: stop_reason_words(generation.stop_reason).into(),
                };
                return send(Update::Done {
                    chat_id: id(),
                    stats,
                    n_past,
                    expert_hit_rate,
                });
            }
            Event::Error(e) => {
                return send(Update::Failed {
                    chat_id: id(),
                    message: e.to_string(),
                });
            }
        }
    }
    send(Update::Failed {
        chat_id: id(),
        message: "the engine stopped without finishing the reply".into(),
    });
}

fn stop_reason_words(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndOfText => "end of text",
        StopReason::Length => "length limit",
        StopReason::Stop => "stop string",
        StopReason::Cancelled => "stopped",
        StopReason::ContextFull => "context full",
    }
}
