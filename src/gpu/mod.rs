//! wgpu device selection and compute kernels.
//!
//! [`Gpu`] opens a device on the best adapter (or the one `LANTERNFISH_ADAPTER` names) with the
//! adapter's own limits. Its `checked` helpers run wgpu calls inside error scopes so that
//! validation and out-of-memory errors come back as [`crate::Error::Gpu`]. [`ops`] holds one
//! module per kernel in `shaders/kernels/`.

pub mod adapter;
mod checked;
pub mod context;
pub mod dispatch;
pub mod engine;
mod iq_tables;
pub mod ops;
pub mod paging;
mod readback;
pub mod shader;

pub use context::Gpu;
