//! One module per WGSL kernel family in `shaders/kernels/`, with the same stem (`sample` drives
//! `sample_reduce` and `sample_pick`).

pub mod argmax;
pub mod attention;
pub mod axpy;
pub mod bias_add;
pub mod cache_type;
pub mod dequantize;
pub mod elementwise;
pub mod embed;
pub mod kv_append;
pub mod kv_store;
pub mod matmul;
pub mod matvec;
pub mod matvec_id;
pub mod matvec_id_swiglu;
pub mod matvec_swiglu;
pub mod moe_combine;
pub mod moe_down;
pub mod moe_router;
pub mod rmsnorm;
pub mod rope;
pub mod sample;
