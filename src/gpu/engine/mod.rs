//! The GPU inference engine: a deepseek2 model uploaded once ([`GpuModel`]) and sequences decoded
//! on it ([`GpuSession`]) through pre-built plans of the kernels in [`crate::gpu::ops`].

pub mod kernels;
pub mod model;
pub mod plan;
mod plan_blocks;
mod plan_dense;
pub mod profile;
pub mod session;
pub mod weights;

pub use model::{GpuModel, PlacementOptions};
pub use session::{DEFAULT_BATCH, DeviceChoice, GpuSession, MAX_IN_FLIGHT, SessionStats};
pub use weights::LoadProgress;
