//! Architectures: the `deepseek2` and dense (`llama`, `qwen2`, `qwen3`) configs read from GGUF
//! metadata and their validated tensor sets.
//! Knows the DeepSeek names and shapes; does no arithmetic (that is `cpu/` and `gpu/`).

pub mod config;
pub mod dense;
pub mod dense_rope;
pub mod family;
mod metadata;
pub mod weights;

pub use config::{
    AttnTemperature, DeepSeekConfig, GatingFunc, GroupScore, MlaLayout, RopeScaling, YarnConfig,
};
pub use weights::{FfnTensors, KvBTensors, LayerTensors, ModelTensors, MoeTensors, QTensors};

#[cfg(test)]
pub(crate) mod tests;
