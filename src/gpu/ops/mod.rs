//! One module per WGSL kernel family in `shaders/kernels/`, with the same stem.

pub mod argmax;
pub mod attention;
pub mod axpy;
pub mod dequantize;
pub mod elementwise;
pub mod matvec;
pub mod moe_router;
pub mod rmsnorm;
pub mod rope;
