//! Architectures: the `deepseek2` config read from GGUF metadata and its validated tensor set.
//! Knows the DeepSeek names and shapes; does no arithmetic (that is `cpu/` and `gpu/`).

pub mod config;
pub mod dense;
mod metadata;
pub mod weights;

pub use config::{DeepSeekConfig, GatingFunc, GroupScore, MlaLayout, RopeScaling, YarnConfig};
pub use weights::{FfnTensors, KvBTensors, LayerTensors, ModelTensors, MoeTensors, QTensors};

#[cfg(test)]
pub(crate) mod tests;
