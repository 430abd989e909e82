//! The one engine API that the CLI, the app and the server share: a [`Sequence`] (CPU reference
//! or GPU session) driven by a [`Generator`] that streams text split into thinking and answer.

pub mod generate;
pub mod sequence;
pub mod think;

pub use generate::{GenerateOptions, Generation, GenerationStats, Generator, StopReason};
pub use sequence::{CpuDenseSequence, CpuSequence, Sequence};
pub use think::{Channel, ThinkSplitter, prompt_opens_thinking};
