//! Expert paging: routed experts held in a GPU slot pool smaller than the model's experts.
//!
//! [`policy`] is the pure decision logic (no GPU): which `(layer, expert)` occupies which slot of
//! the pool, what a token's routing misses, what to evict and what to prefetch, and the cache
//! statistics. [`budget`] plans which weights are resident and how many expert slots each layer
//! gets under `--gpu-budget`/`--expert-cache`; [`pager`] drives the policy during a forward pass,
//! copying missing experts from the file's map into the slots and mirrors
//! [`ExpertPolicy::slot_table`] into the GPU slot table that the `matvec_id` kernel reads.

pub mod budget;
pub mod pager;
pub mod policy;

pub use budget::{Budget, LayerPlan, MemoryPlan, human_bytes};
pub use pager::{Pager, PagingStats, Prefetch};

pub use policy::{
    Eviction, ExpertPolicy, NOT_RESIDENT, Placement, PolicyConfig, PolicyError, PolicyStats,
};
