//! The one engine API that the CLI, the app and the server share: a [`Sequence`] (CPU reference
//! or GPU session) driven by a [`Generator`] that streams text split into thinking and answer,
//! and [`Engine`], which runs both on a worker thread behind a request queue.

pub mod context;
pub mod generate;
pub mod load;
pub mod sequence;
pub mod slots;
pub mod think;
pub mod worker;

pub use context::ContextSize;
pub use generate::{
    GenEvent, GenerateOptions, Generation, GenerationStats, Generator, MAX_TOP_LOGPROBS,
    StopReason, TokenLogprob,
};
pub use load::{Backend, Loaded};
pub use sequence::{CpuDenseSequence, CpuSequence, Sequence};
pub use slots::{Pick, SlotTable, SlotView};
pub use think::{Channel, ThinkSplitter, prompt_opens_thinking};
pub use worker::{Engine, EngineConfig, Event, Job, ModelInfo, RenderedPrompt, Request};
