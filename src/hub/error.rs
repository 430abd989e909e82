//! The Hub module's error type. Messages are lowercase and name the repository, file or URL they
//! are about.

use std::path::PathBuf;

/// Everything that can go wrong while resolving or fetching a model from the Hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A `REPO[:QUANT]` or `hf://` reference cannot be parsed.
    #[error("{reference:?} is not a Hub model reference: {what}")]
    BadReference { reference: String, what: String },
    /// The repository has no GGUF file that fits, or more than one does.
    #[error("{repo}: {what}")]
    Selection { repo: String, what: String },
    /// A request to the Hub failed (HTTP status, connection, TLS, malformed answer).
    #[error("{url}: {what}")]
    Network { url: String, what: String },
    /// The Hub cannot be used (`HF_HUB_OFFLINE` or no connection) and the cache lacks the model.
    #[error("{repo}: {what}")]
    NotCached { repo: String, what: String },
    /// A downloaded file's sha256 is not the one the Hub lists; the file was deleted.
    #[error(
        "{file}: sha256 mismatch (expected {expected}, got {actual}); the corrupt copy was deleted"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    /// Reading or writing the cache failed.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// `Result` with [`HubError`].
pub type HubResult<T> = std::result::Result<T, HubError>;
