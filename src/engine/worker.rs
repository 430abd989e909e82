//! [`Engine`]: a loaded model on its own worker thread, the API the app and the server (and the
//! CLI's `chat`) drive. Loading reports progress and can be cancelled; requests queue first in,
//! first out, and each streams [`Event`]s over a channel. The worker keeps up to
//! [`EngineConfig::slots`] sequences, each with its [`Generator`], in a [`SlotTable`]: a request
//! runs on the slot whose cached tokens share the longest prefix with its prompt (see
//! [`super::slots`]) and reuses that KV cache.
//!
//! Only plain data crosses threads: the GGUF map and the tokenizer are shared read-only, and the
//! backend (GPU buffers, CPU caches) lives and dies on the worker thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::context::ContextSize;
use super::generate::{GenEvent, GenerateOptions, Generation, Generator, TokenLogprob};
use super::load::{Backend, Loaded};
use super::sequence::Sequence;
use super::slots::{Pick, SlotTable};
use super::think::{Channel, prompt_opens_thinking};
use crate::chat_template::{ChatMessage, ChatTemplate, RenderOptions};
use crate::gguf::GgufModel;
use crate::gpu::engine::{DEFAULT_BATCH, LoadProgress, PlacementOptions, SessionStats};
use crate::gpu::ops::cache_type::CacheType;
use crate::gpu::paging::{Budget, Prefetch};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// What to load and how.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub model: PathBuf,
    pub backend: Backend,
    /// Context window in tokens (the KV cache is allocated for this many), or auto
    /// ([`ContextSize`]).
    pub n_ctx: ContextSize,
    /// Prompt tokens per prefill batch on the GPU.
    pub batch: usize,
    /// Bytes of GPU memory the weights may use; routed experts that do not fit are paged.
    /// `None` (and no `expert_cache`): everything resident.
    pub gpu_budget: Option<u64>,
    /// Instead of `gpu_budget`: the share (0..=1) of routed-expert bytes kept on the GPU.
    pub expert_cache: Option<f64>,
    /// How paged experts are prefetched.
    pub prefetch: Prefetch,
    /// How the GPU caches store keys and values.
    pub cache_type: CacheType,
    /// Sequences (KV caches of `n_ctx` tokens each) kept for requests with different prefixes;
    /// created as requests need them, fewer when the GPU has no memory for more.
    pub slots: usize,
    /// Where the worker's one-time notices go besides `tracing` (e.g. that the GPU had no memory
    /// for another slot); `serve` prints them on stderr.
    pub notes: Option<fn(&str)>,
}

impl EngineConfig {
    /// The defaults (GPU, automatic context size) for `model`.
    pub fn new(model: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            model: model.into(),
            backend: Backend::Gpu,
            n_ctx: ContextSize::Auto,
            batch: DEFAULT_BATCH,
            gpu_budget: None,
            expert_cache: None,
            prefetch: Prefetch::Router,
            cache_type: CacheType::default(),
            slots: 1,
            notes: None,
        }
    }
}

/// What the loaded model is and where it runs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelInfo {
    /// `general.name`, or the file name.
    pub name: String,
    pub path: PathBuf,
    /// `general.architecture`: `deepseek2`, `llama` or `qwen2`.
    pub arch: String,
    /// The engine's context window.
    pub n_ctx: usize,
    pub n_vocab: usize,
    /// The adapter in words, or the CPU reference.
    pub device: String,
    /// Bytes of the GGUF file(s).
    pub file_bytes: u64,
    /// Weights, KV cache and scratch held on the GPU at load, with the first slot (0 on the CPU).
    pub gpu_bytes: u64,
    /// The most sequences (KV caches) kept ([`EngineConfig::slots`]).
    pub slots: usize,
}

/// A conversation rendered with the chat template and tokenized.
#[derive(Clone, Debug)]
pub struct RenderedPrompt {
    pub text: String,
    pub tokens: Vec<u32>,
    /// Oldest messages left out so that the prompt and a reply fit the context.
    pub dropped: usize,
    /// The prompt ends inside an open `<think>` block (R1 templates).
    pub starts_thinking: bool,
}

/// One generation to run.
#[derive(Clone, Debug)]
pub struct Request {
    /// The whole prompt (the worker reuses the cache of a shared prefix).
    pub tokens: Vec<u32>,
    pub options: GenerateOptions,
}

/// What a running [`Job`] reports, in order: `Started`, then text (and tokens), then exactly one
/// of `Done` or `Error`.
// `Done` is large (the whole generation) but comes once per job; boxing it would only add noise
// to every consumer's match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// The worker took the job: its wait in the queue is over.
    Started,
    /// Decoded text of the reply, in its channel.
    Text { channel: Channel, text: String },
    /// A sampled token's log-probabilities (when the request asked for them).
    Token(TokenLogprob),
    /// The generation finished; `n_past` tokens are now in the cache.
    Done {
        generation: Generation,
        n_past: usize,
        session: SessionStats,
    },
    /// The request failed; the engine keeps serving others.
    Error(Error),
}

/// A queued or running generation. Dropping it cancels the generation.
#[derive(Debug)]
pub struct Job {
    pub events: Receiver<Event>,
    cancel: Arc<AtomicBool>,
}

impl Job {
    /// Stops the generation (within one token), or skips it while it waits in the queue.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// The flag that [`Job::cancel`] sets, for cancelling from elsewhere.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// A job as the worker sees it.
struct Queued {
    request: Request,
    cancel: Arc<AtomicBool>,
    events: Sender<Event>,
}

/// What the worker reports while it loads.
enum LoadMessage {
    Progress(u64, u64),
    Ready {
        device: String,
        gpu_bytes: u64,
        n_ctx: usize,
    },
    Failed(Error),
}

/// A model loaded on a worker thread. `Send + Sync`: share it behind an `Arc`.
pub struct Engine {
    info: ModelInfo,
    tokenizer: Arc<Tokenizer>,
    template: ChatTemplate,
    queue: Option<Sender<Queued>>,
    /// The running job's cancel flag, so that dropping the engine stops it.
    running: Arc<Mutex<Option<Arc<AtomicBool>>>>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("info", &self.info).finish()
    }
}

impl Engine {
    /// Opens `config.model` and loads it on a new worker thread, blocking until it is ready
    /// (call it from a background thread in a UI). `on_progress(done, total)` sees the bytes
    /// uploaded, on the calling thread; setting `cancel` stops the load with
    /// [`Error::Cancelled`].
    pub fn load(
        config: EngineConfig,
        on_progress: &mut dyn FnMut(u64, u64),
        cancel: &AtomicBool,
    ) -> Result<Engine> {
        let model = Arc::new(GgufModel::open(&config.model)?);
        let tokenizer = Arc::new(Tokenizer::from_gguf(&model)?);
        let template = ChatTemplate::from_gguf(&model)?;
        let arch = model
            .get("general.architecture")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let name = model
            .get("general.name")
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|name| !name.is_empty())
            .or_else(|| {
                config
                    .model
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        let file_bytes = model.parts().iter().map(|part| part.len()).sum();
        if config.gpu_budget.is_some() && config.backend == Backend::Cpu {
            tracing::warn!("--gpu-budget has no effect on the CPU backend");
        }

        let (load_tx, load_rx) = mpsc::channel();
        let (queue_tx, queue_rx) = mpsc::channel();
        let cancel_load = Arc::new(AtomicBool::new(cancel.load(Ordering::SeqCst)));
        let running = Arc::new(Mutex::new(None));
        let worker = {
            let (model, tokenizer, cancel_load, running) = (
                model.clone(),
                tokenizer.clone(),
                cancel_load.clone(),
                running.clone(),
            );
            let worker_config = config.clone();
            std::thread::Builder::new()
                .name("lanternfish-engine".to_owned())
                .spawn(move || {
                    run_worker(
                        &model,
                        &tokenizer,
                        &worker_config,
                        &load_tx,
                        &cancel_load,
                        &queue_rx,
                        &running,
                    );
                })
                .map_err(|error| Error::Io {
                    path: config.model.clone(),
                    error,
                })?
        };

        let (device, gpu_bytes, n_ctx) = loop {
            match load_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(LoadMessage::Progress(done, total)) => on_progress(done, total),
                Ok(LoadMessage::Ready {
                    device,
                    gpu_bytes,
                    n_ctx,
                }) => break (device, gpu_bytes, n_ctx),
                Ok(LoadMessage::Failed(error)) => {
                    let _ = worker.join();
                    return Err(error);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if cancel.load(Ordering::SeqCst) {
                        cancel_load.store(true, Ordering::SeqCst);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = worker.join();
                    return Err(Error::Gpu {
                        what: "loading the model".to_owned(),
                        message: "the engine thread stopped unexpectedly".to_owned(),
                    });
                }
            }
        };
        Ok(Engine {
            info: ModelInfo {
                name,
                path: config.model.clone(),
                arch,
                n_ctx,
                n_vocab: tokenizer.vocab_size(),
                device,
                file_bytes,
                gpu_bytes,
                slots: config.slots.max(1),
            },
            tokenizer,
            template,
            queue: Some(queue_tx),
            running,
            worker: Some(worker),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The file's chat template, or the built-in one for its architecture.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Renders `messages` (with the assistant header appended) and tokenizes them, leaving out
    /// the oldest non-system messages while the prompt and `reserve` reply tokens do not fit
    /// the context: two at a time (a user turn and its answer) while three or more remain.
    /// A prompt that does not fit even with only the last message is [`Error::ContextFull`].
    pub fn render_chat(
        &self,
        messages: &[ChatMessage],
        options: &RenderOptions,
        reserve: usize,
    ) -> Result<RenderedPrompt> {
        let options = RenderOptions {
            add_generation_prompt: true,
            ..options.clone()
        };
        let n_system = messages
            .iter()
            .take_while(|message| message.role == "system")
            .count();
        let (system, mut turns) = (&messages[..n_system], &messages[n_system..]);
        let mut dropped = 0;
        loop {
            let kept: Vec<ChatMessage> = system.iter().chain(turns).cloned().collect();
            let text = self.template.render(&kept, &options)?;
            let tokens = self
                .tokenizer
                .encode(&text, self.tokenizer.add_bos_token())?;
            if tokens.len() + reserve <= self.info.n_ctx || turns.len() <= 1 {
                if tokens.len() >= self.info.n_ctx {
                    return Err(Error::ContextFull {
                        what: format!(
                            "the prompt has {} tokens, and a context of {} leaves no room for a reply",
                            tokens.len(),
                            self.info.n_ctx
                        ),
                    });
                }
                let starts_thinking = prompt_opens_thinking(&text);
                return Ok(RenderedPrompt {
                    text,
                    tokens,
                    dropped,
                    starts_thinking,
                });
            }
            let drop = if turns.len() >= 3 { 2 } else { 1 };
            turns = &turns[drop..];
            dropped += drop;
        }
    }

    /// Queues a generation; never blocks. Requests run one at a time in arrival order, each on
    /// the slot that has the most of its prompt cached.
    pub fn submit(&self, request: Request) -> Job {
        let (events_tx, events) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let queued = Queued {
            request,
            cancel: cancel.clone(),
            events: events_tx,
        };
        if let Some(queue) = &self.queue
            && let Err(mpsc::SendError(queued)) = queue.send(queued)
        {
            // The worker thread is gone (it panicked): fail this job with a clear error.
            let _ = queued.events.send(Event::Error(worker_gone()));
        }
        Job { events, cancel }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(cancel) = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            cancel.store(true, Ordering::SeqCst);
        }
        self.queue = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn worker_gone() -> Error {
    Error::Gpu {
        what: "running the request".to_owned(),
        message: "the engine thread has stopped".to_owned(),
    }
}

/// The worker thread: load, report, then serve the queue until the engine is dropped.
fn run_worker(
    model: &GgufModel,
    tokenizer: &Tokenizer,
    config: &EngineConfig,
    load: &Sender<LoadMessage>,
    cancel_load: &AtomicBool,
    queue: &Receiver<Queued>,
    running: &Mutex<Option<Arc<AtomicBool>>>,
) {
    let on_bytes = |done: u64, total: u64| {
        let _ = load.send(LoadMessage::Progress(done, total));
    };
    let progress = LoadProgress {
        on_bytes: &on_bytes,
        cancel: Some(cancel_load),
    };
    let placement = PlacementOptions {
        budget: config
            .gpu_budget
            .map(Budget::Bytes)
            .or(config.expert_cache.map(Budget::ExpertShare)),
        prefetch: config.prefetch,
        force_paging: false,
    };
    let loaded = match Loaded::load(model, config.backend, &placement, Some(&progress)) {
        Ok(loaded) => loaded,
        Err(error) => {
            let _ = load.send(LoadMessage::Failed(error));
            return;
        }
    };
    let sized = loaded.sequence_sized(config.n_ctx, config.batch, config.cache_type, &|| Ok(None));
    let seq = match sized {
        Ok((seq, choice)) => {
            if let Some(choice) = choice {
                tracing::info!("{choice}");
            }
            seq
        }
        Err(error) => {
            let _ = load.send(LoadMessage::Failed(error));
            return;
        }
    };
    let n_ctx = seq.n_ctx();
    let _ = load.send(LoadMessage::Ready {
        device: loaded.device(),
        gpu_bytes: loaded.gpu_weight_bytes() + seq.gpu_bytes(),
        n_ctx,
    });

    let first = Slot {
        seq,
        generator: Generator::new(tokenizer),
    };
    let mut slots = SlotTable::new(config.slots, first);
    for job in queue {
        if job.cancel.load(Ordering::SeqCst) || job.events.send(Event::Started).is_err() {
            continue;
        }
        let index = choose_slot(&mut slots, &loaded, config, n_ctx, tokenizer, &job.request);
        let Some(slot) = slots.claim(index) else {
            let _ = job.events.send(Event::Error(Error::Gpu {
                what: "running the request".to_owned(),
                message: format!("the engine has no slot {index}"),
            }));
            continue;
        };
        *running.lock().unwrap_or_else(PoisonError::into_inner) = Some(job.cancel.clone());
        let result = slot.generator.generate_events(
            &mut *slot.seq,
            &job.request.tokens,
            &job.request.options,
            &job.cancel,
            &mut |event| {
                let event = match event {
                    GenEvent::Text(channel, text) => Event::Text {
                        channel,
                        text: text.to_owned(),
                    },
                    GenEvent::Token(logprob) => Event::Token(logprob.clone()),
                };
                // Nobody is listening any more: stop generating for them.
                if job.events.send(event).is_err() {
                    job.cancel.store(true, Ordering::SeqCst);
                }
            },
        );
        *running.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let _ = job.events.send(match result {
            Ok(generation) => Event::Done {
                generation,
                n_past: slot.seq.n_past(),
                session: slot.seq.stats(),
            },
            Err(error) => Event::Error(error),
        });
        slots.release(index);
    }
}

/// One slot of the worker: a sequence and the generator that knows which tokens it holds.
struct Slot<'m, 't> {
    seq: Box<dyn Sequence + 'm>,
    generator: Generator<'t>,
}

/// The slot `request` runs on: [`SlotTable::pick`]'s choice, creating a sequence of `n_ctx`
/// tokens when it asks for a new one. When that fails (the GPU has no memory for another KV
/// cache), the table stops growing, which is logged once, and the least recently used slot is
/// reused from then on.
fn choose_slot<'m, 't>(
    slots: &mut SlotTable<Slot<'m, 't>>,
    loaded: &'m Loaded,
    config: &EngineConfig,
    n_ctx: usize,
    tokenizer: &'t Tokenizer,
    request: &Request,
) -> usize {
    loop {
        match slots.pick(&request.tokens, |slot| slot.generator.cached()) {
            Pick::Slot { index, .. } => return index,
            // Serial: the one running slot is released before the next job is picked.
            Pick::Wait => return 0,
            Pick::New => {
                match loaded.sequence_traced(n_ctx, config.batch, config.cache_type, None) {
                    Ok(seq) => {
                        let bytes = seq.gpu_bytes();
                        let slot = Slot {
                            seq,
                            generator: Generator::new(tokenizer),
                        };
                        if let Some(index) = slots.push(slot) {
                            tracing::info!(
                                "slot {} of {} created ({} MiB of GPU memory)",
                                index + 1,
                                slots.limit(),
                                bytes >> 20
                            );
                            return index;
                        }
                        slots.stop_growing();
                    }
                    Err(error) => {
                        let why = match error {
                            Error::GpuOutOfMemory { .. } => format!(
                                "the GPU has no memory for another KV cache of {n_ctx} tokens"
                            ),
                            error => format!("cannot create another slot ({error})"),
                        };
                        note(
                            config,
                            &format!(
                                "{why}: keeping {} of the {} slots asked for, the least recently \
                                 used one is reused",
                                slots.len(),
                                slots.limit()
                            ),
                        );
                        slots.stop_growing();
                    }
                }
            }
        }
    }
}

/// A one-time notice: to `tracing`, and to [`EngineConfig::notes`] when set.
fn note(config: &EngineConfig, line: &str) {
    tracing::warn!("{line}");
    if let Some(notes) = config.notes {
        notes(line);
    }
}
