//! One module per WGSL kernel family in `shaders/kernels/`, with the same stem.

pub mod axpy;
