//! The pager: makes the experts a batch routed to resident in a MoE layer's GPU slots, copying
//! missing ones straight from the file's memory map (the map is never copied as a whole: each
//! expert's gate, up and down are three large sequential reads through `queue.write_buffer`),
//! and mirrors the [`ExpertPolicy`]'s slot table into the layer's GPU table.
//!
//! A batch may route to more distinct experts than the layer has slots (a prompt chunk, or a
//! budget of exactly one token's experts): the experts are then split into *groups* that fit, and
//! the layer's expert kernels run once per group. The `matvec_id` kernel writes only outputs whose
//! expert is resident, so each pass fills in its group's outputs and the result is the same, bit
//! for bit, as one pass over a fully resident pool.

use std::sync::Arc;
use std::time::Instant;

use super::budget::{EXPERT_PARTS, MemoryPlan, expert_tensor_name};
use super::policy::{ExpertPolicy, NOT_RESIDENT, Placement, PolicyConfig};
use crate::gguf::GgufModel;
use crate::gpu::Gpu;
use crate::gpu::engine::weights::{ExpertPools, GpuTensor};
use crate::{Error, Result};

/// How the pager loads experts ahead of need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Prefetch {
    /// The next MoE layer's router applied to the current hidden state picks candidates.
    #[default]
    Router,
    /// No prefetch.
    Off,
    /// Deliberately wrong candidates (tests: a useless prefetch must not change any result).
    Wrong,
}

/// Counters of the pager since the model was loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct PagingStats {
    /// Distinct experts requested per (layer, batch), summed.
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    /// Bytes copied into expert slots (misses and prefetches).
    pub paged_bytes: u64,
    /// Bytes copied by prefetches.
    pub prefetch_bytes: u64,
    /// Experts predicted for a layer and then really routed to, and all experts routed to in
    /// layers that had a prediction: `prefetch_accuracy = predicted_right / predicted_total`.
    pub predicted_right: u64,
    pub predicted_total: u64,
    /// Synchronisation points (id readbacks) and expert passes (more than one per sync when a
    /// batch routes to more experts than a layer has slots).
    pub syncs: u64,
    pub passes: u64,
    /// Host time waiting for the router's ids (includes the GPU work before them).
    pub sync_wait_us: u64,
    /// Host time in the policy and the copies into slots.
    pub upload_us: u64,
}

impl PagingStats {
    pub fn hit_rate(&self) -> f64 {
        self.hits as f64 / (self.hits + self.misses).max(1) as f64
    }

    pub fn prefetch_accuracy(&self) -> f64 {
        self.predicted_right as f64 / self.predicted_total.max(1) as f64
    }
}

/// One paged MoE layer: the tensors its experts come from.
#[derive(Debug)]
struct PagedLayer {
    layer: usize,
    /// Per part (gate, up, down): tensor name and bytes of one expert.
    parts: [(String, u64); 3],
    /// The experts the last prediction picked for this layer, if any.
    predicted: Option<Vec<u32>>,
}

/// Expert residency for a paged model; lives in the model behind a lock.
#[derive(Debug)]
pub struct Pager {
    file: Arc<GgufModel>,
    policy: ExpertPolicy,
    layers: Vec<PagedLayer>,
    /// Block index → paged layer index.
    by_block: Vec<Option<usize>>,
    pub prefetch: Prefetch,
    pub stats: PagingStats,
}

impl Pager {
    /// A pager with every slot empty, for the layers of `plan` that have fewer slots than
    /// experts (a layer whose experts all fit stays resident: no readback, no copies), or for
    /// every MoE layer when `all` (expert tracing needs the ids of every layer).
    pub fn new(
        file: Arc<GgufModel>,
        plan: &MemoryPlan,
        n_layer: usize,
        all: bool,
    ) -> Result<Pager> {
        let paged: Vec<&super::budget::LayerPlan> = plan
            .layers
            .iter()
            .filter(|l| all || l.slots < plan.n_expert)
            .collect();
        let quotas: Vec<u32> = paged.iter().map(|l| l.slots).collect();
        let n_slots = quotas.iter().sum();
        let min_quota = quotas.iter().copied().min().unwrap_or(0);
        let k = plan.n_expert_used;
        let mut config = PolicyConfig::new(paged.len(), plan.n_expert, n_slots);
        config.quotas = Some(quotas);
        // Pin the hottest quarter of a layer's slots after a warm-up, when there is room.
        if min_quota >= 2 * k {
            config.pinned_per_layer = min_quota / 4;
            config.warmup_tokens = 64;
        }
        let policy = ExpertPolicy::new(config).map_err(|error| Error::Gpu {
            what: "planning the expert slots".to_owned(),
            message: format!("{error:?}"),
        })?;
        let mut by_block = vec![None; n_layer];
        let mut layers = Vec::with_capacity(paged.len());
        for (i, l) in paged.iter().enumerate() {
            let part = |name: &str| -> Result<(String, u64)> {
                let tensor = expert_tensor_name(l.layer, name);
                let info = file.tensor(&tensor).ok_or_else(|| Error::Tensor {
                    name: tensor.clone(),
                    what: "missing".to_owned(),
                })?;
                let bytes = file.tensor_data(info).len() as u64 / u64::from(plan.n_expert.max(1));
                if !bytes.is_multiple_of(4) {
                    return Err(Error::Tensor {
                        name: tensor,
                        what: format!(
                            "one expert is {bytes} bytes, not a multiple of 4: it cannot be paged \
                             (run without --gpu-budget)"
                        ),
                    });
                }
                Ok((tensor, bytes))
            };
            layers.push(PagedLayer {
                layer: l.layer,
                parts: [
                    part(EXPERT_PARTS[0])?,
                    part(EXPERT_PARTS[1])?,
                    part(EXPERT_PARTS[2])?,
                ],
                predicted: None,
            });
            if let Some(slot) = by_block.get_mut(l.layer) {
                *slot = Some(i);
            }
        }
        Ok(Pager {
            file,
            policy,
            layers,
            by_block,
            prefetch: Prefetch::default(),
            stats: PagingStats::default(),
        })
    }

    /// The paged index of block `layer`, if its experts are paged.
    pub fn paged_index(&self, layer: usize) -> Option<usize> {
        self.by_block.get(layer).copied().flatten()
    }

    /// The first global slot and the slot count of paged layer `m`.
    pub fn slot_range(&self, m: usize) -> std::ops::Range<u32> {
        self.policy.slot_range(m)
    }

    /// Splits the distinct experts `needed` by paged layer `m` into groups that each fit its
    /// slots (one group when they all fit). Also scores the layer's last prediction.
    pub fn groups(&mut self, m: usize, needed: &[u32]) -> Vec<Vec<u32>> {
        let mut distinct: Vec<u32> = needed.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if let Some(predicted) = self.layers.get_mut(m).and_then(|l| l.predicted.take()) {
            self.stats.predicted_total += distinct.len() as u64;
            self.stats.predicted_right +=
                distinct.iter().filter(|e| predicted.contains(e)).count() as u64;
        }
        let pinned = self.policy.pinned(m);
        let quota = self.policy.quota(m) as usize;
        let capacity = quota.saturating_sub(pinned.len()).max(1);
        let (always, rest): (Vec<u32>, Vec<u32>) =
            distinct.into_iter().partition(|e| pinned.contains(e));
        if rest.is_empty() {
            return vec![always];
        }
        rest.chunks(capacity)
            .map(|chunk| always.iter().chain(chunk).copied().collect())
            .collect()
    }

    /// Makes `group` of paged layer `m` resident: copies the missing experts into `pools` and
    /// writes the layer's slot table into `slot_of`.
    pub fn load_group(
        &mut self,
        gpu: &Gpu,
        m: usize,
        group: &[u32],
        pools: &ExpertPools,
        slot_of: &wgpu::Buffer,
    ) -> Result<()> {
        let started = Instant::now();
        let placements = self
            .policy
            .request(m, group)
            .map_err(|error| paging_error(m, &error))?;
        self.stats.requests += group.len() as u64;
        for (&expert, placement) in group.iter().zip(&placements) {
            match *placement {
                Placement::Hit { .. } => self.stats.hits += 1,
                Placement::Miss { slot, .. } => {
                    self.stats.misses += 1;
                    self.stats.paged_bytes += self.copy_expert(gpu, m, expert, slot, pools)?;
                }
            }
        }
        self.write_table(gpu, m, slot_of);
        self.stats.passes += 1;
        self.stats.upload_us += started.elapsed().as_micros() as u64;
        Ok(())
    }

    /// Loads the experts predicted for paged layer `m` into its free or evictable slots (never
    /// over a pinned expert or one of the layer's latest request) and remembers the prediction
    /// to score it when the layer's real ids arrive.
    pub fn prefetch(
        &mut self,
        gpu: &Gpu,
        m: usize,
        predicted: &[u32],
        pools: &ExpertPools,
        slot_of: &wgpu::Buffer,
    ) -> Result<()> {
        let started = Instant::now();
        let n_expert = self.policy.config().n_experts;
        let mut candidates: Vec<u32> = match self.prefetch {
            Prefetch::Off => return Ok(()),
            Prefetch::Router => predicted.to_vec(),
            Prefetch::Wrong => predicted
                .iter()
                .map(|&e| (e + n_expert / 2) % n_expert.max(1))
                .collect(),
        };
        candidates.dedup();
        let max_loads = self.policy.quota(m) as usize;
        let loads = self
            .policy
            .prefetch(m, &candidates, max_loads)
            .map_err(|error| paging_error(m, &error))?;
        for &(expert, slot) in &loads {
            let bytes = self.copy_expert(gpu, m, expert, slot, pools)?;
            self.stats.paged_bytes += bytes;
            self.stats.prefetch_bytes += bytes;
        }
        if !loads.is_empty() {
            self.write_table(gpu, m, slot_of);
        }
        if let Some(layer) = self.layers.get_mut(m) {
            let mut set = candidates;
            set.sort_unstable();
            set.dedup();
            layer.predicted = Some(set);
        }
        self.stats.upload_us += started.elapsed().as_micros() as u64;
        Ok(())
    }

    /// Asks the OS to start reading `experts` of paged layer `m` from disk (they are likely
    /// needed soon; pages already in the page cache cost nothing).
    pub fn read_ahead(&self, m: usize, experts: &[u32]) {
        let Some(layer) = self.layers.get(m) else {
            return;
        };
        for (tensor, bytes) in &layer.parts {
            if let Some(info) = self.file.tensor(tensor) {
                for &expert in experts {
                    let start = u64::from(expert) * bytes;
                    self.file
                        .advise_will_need(info, start as usize, *bytes as usize);
                }
            }
        }
    }

    /// Copies expert `expert` of paged layer `m` into global slot `slot`; returns the bytes.
    fn copy_expert(
        &self,
        gpu: &Gpu,
        m: usize,
        expert: u32,
        slot: u32,
        pools: &ExpertPools,
    ) -> Result<u64> {
        let layer = &self.layers[m];
        let mut copied = 0;
        for ((tensor, bytes), (pool_set, in_slot)) in layer.parts.iter().zip(pools.destinations()) {
            let info = self.file.tensor(tensor).ok_or_else(|| Error::Tensor {
                name: tensor.clone(),
                what: "missing".to_owned(),
            })?;
            let data = self.file.tensor_data(info);
            let start = u64::from(expert) * bytes;
            let source = data
                .get(start as usize..(start + bytes) as usize)
                .ok_or_else(|| Error::Tensor {
                    name: tensor.clone(),
                    what: format!("expert {expert} lies past the end of the tensor"),
                })?;
            let pool = pool_of(pool_set, slot).ok_or_else(|| Error::Gpu {
                what: format!("paging expert {expert} of layer {}", layer.layer),
                message: format!("no pool holds slot {slot}"),
            })?;
            let offset = u64::from(slot - pool.slot_base as u32) * pool.slot_bytes() + in_slot;
            gpu.queue.write_buffer(&pool.buffer, offset, source);
            copied += bytes;
        }
        Ok(copied)
    }

    fn write_table(&self, gpu: &Gpu, m: usize, slot_of: &wgpu::Buffer) {
        let table = self.policy.slot_table(m);
        debug_assert!(table.iter().all(|&s| s == NOT_RESIDENT || s < u32::MAX));
        gpu.queue
            .write_buffer(slot_of, 0, bytemuck::cast_slice(table));
    }
}

/// The pool of `pools` that holds global slot `slot`.
fn pool_of(pools: &[GpuTensor], slot: u32) -> Option<&GpuTensor> {
    pools.iter().find(|p| {
        let base = p.slot_base as u32;
        slot >= base && slot < base + p.n_slots as u32
    })
}

fn paging_error(m: usize, error: &super::policy::PolicyError) -> Error {
    Error::Gpu {
        what: format!("paging the experts of MoE layer {m}"),
        message: format!("{error:?}"),
    }
}
