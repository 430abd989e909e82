//! # lanternfish: DeepSeek-architecture GGUF inference on any GPU
//!
//! Brief overview: [`gguf`] maps a GGUF file (or a set of split files) and gives zero-copy views of
//! its metadata and tensor bytes; the block formats live in the `lanternfish-quant` crate
//! (re-exported as [`quant`]); [`model`] reads a `deepseek2` file's config and checks its tensors;
//! [`cpu`] is the plain f32 reference forward pass; [`gpu`] owns wgpu device selection and compute
//! kernels; [`hub`] fetches models from the Hugging Face Hub into its cache; [`cli`] holds the
//! `lanternfish` command-line front end.
//!
//! ```no_run
//! let model = lanternfish::gguf::GgufModel::open("model.gguf".as_ref())?;
//! println!("{} tensors", model.tensors().count());
//! # Ok::<(), lanternfish::Error>(())
//! ```

pub mod chat_template;
pub mod cli;
pub mod cpu;
pub mod engine;
pub mod error;
pub mod gguf;
pub mod gpu;
pub mod hub;
pub mod model;
pub mod npy;
pub mod quantize;
pub mod rng;
pub mod sampler;
pub mod server;
pub mod synth;
pub mod tokenizer;

pub use error::{Error, Result};
pub use lanternfish_quant as quant;
