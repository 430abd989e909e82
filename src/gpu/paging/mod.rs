//! Expert paging: routed experts held in a GPU slot pool smaller than the model's experts.
//!
//! [`policy`] is the pure decision logic (no GPU): which `(layer, expert)` occupies which slot of
//! the pool, what a token's routing misses, what to evict and what to prefetch, and the cache
//! statistics. A loader drives it and mirrors [`ExpertPolicy::slot_table`] into the GPU slot table
//! that the `matvec_id` kernel reads.

pub mod policy;

pub use policy::{
    Eviction, ExpertPolicy, NOT_RESIDENT, Placement, PolicyConfig, PolicyError, PolicyStats,
};
