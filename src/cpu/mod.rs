//! The CPU reference backend: a plain f32 deepseek2 forward pass (spec §4), written independently
//! of the GPU wiring so the two can check each other. Weights stay in the GGUF mapping and are
//! dequantized a row at a time as products need them. Slow and obvious on purpose.
//!
//! ```no_run
//! let gguf = lanternfish::gguf::GgufModel::open("model.gguf".as_ref())?;
//! let model = lanternfish::cpu::CpuModel::load(&gguf)?;
//! let mut session = model.session();
//! let logits = session.forward(&[0, 42, 7])?; // [3, n_vocab]
//! let next = session.step(99)?; // [n_vocab], position 3
//! # Ok::<(), lanternfish::Error>(())
//! ```

pub mod attention;
pub mod dense;
pub mod dense_rope;
pub mod forward;
pub mod indexer;
pub mod kv_cache;
pub mod matrix;
pub mod moe;
pub mod ops;
pub mod weights;

pub use attention::MlaForm;
pub use forward::{CpuModel, Session, Trace};
pub use kv_cache::LatentCache;
pub use matrix::Matrix;
pub use moe::Routing;
