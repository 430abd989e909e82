//! The engine's error type. Messages are lowercase, carry the file, byte offset, key or tensor
//! they are about, and never end with a period.

use std::path::PathBuf;

/// Everything that can go wrong in the engine library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or mapping a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A GGUF file is malformed: `what` says which field, key or tensor, `offset` where it sits.
    #[error("{}: invalid GGUF at byte {offset}: {what}", path.display())]
    Gguf {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    /// A set of split GGUF files does not fit together.
    #[error("{}: {what}", path.display())]
    Split { path: PathBuf, what: String },
    /// A metadata key is missing or has the wrong type.
    #[error("metadata key {key}: {what}")]
    Metadata { key: String, what: String },
    /// A tensor is missing, has the wrong shape or cannot be computed with.
    #[error("tensor {name}: {what}")]
    Tensor { name: String, what: String },
    /// No GPU adapter could be found.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The GPU device reported an error.
    #[error("GPU error in {what}: {message}")]
    Gpu { what: String, message: String },
    /// The GPU ran out of memory in `what`; `advice` (empty, or starting with "; ") says what to
    /// change, e.g. page routed experts with `--gpu-budget` or use a smaller `--ctx`.
    #[error("out of GPU memory in {what}: {message}{advice}")]
    GpuOutOfMemory {
        what: String,
        message: String,
        advice: String,
    },
    /// The tokenizer metadata cannot be used, or text cannot be tokenized.
    #[error("tokenizer: {what}")]
    Tokenizer { what: String },
    /// A chat template does not compile, raised an exception, or failed while rendering.
    #[error("chat template: {what}")]
    ChatTemplate { what: String },
    /// The prompt and the reply do not fit the context window.
    #[error("context full: {what}")]
    ContextFull { what: String },
    /// The caller cancelled the operation (loading, generation).
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// `self` with `advice` added when it is [`Error::GpuOutOfMemory`] without advice yet;
    /// other errors are returned unchanged.
    pub fn with_memory_advice(self, advice: impl FnOnce() -> String) -> Error {
        match self {
            Error::GpuOutOfMemory {
                what,
                message,
                advice: old,
            } if old.is_empty() => Error::GpuOutOfMemory {
                what,
                message,
                advice: format!("; {}", advice()),
            },
            other => other,
        }
    }
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
