//! A deepseek2 model loaded onto the GPU: config, weights in device buffers, compiled kernels and
//! the RoPE frequency table. Sessions ([`super::GpuSession`]) share it through an `Arc`.

use std::sync::{Arc, Mutex};

use lanternfish_quant::GgmlType;
use wgpu::Buffer;

use super::kernels::Kernels;
use super::weights::{DenseGpuWeights, GpuFfn, GpuQ, GpuTensor, GpuWeights, LoadProgress};
use crate::Result;
use crate::cpu::CpuModel;
use crate::cpu::dense::DenseModel;
use crate::gguf::GgufModel;
use crate::gpu::Gpu;
use crate::gpu::ops::rope;
use crate::gpu::paging::{Budget, MemoryPlan, Pager, Prefetch};
use crate::model::DeepSeekConfig;
use crate::model::dense::{Arch, DenseConfig, architecture};

/// How to place a model's weights: everything resident (the default), or routed experts paged
/// into slots under a budget.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlacementOptions {
    /// `None`: every weight resident.
    pub budget: Option<Budget>,
    pub prefetch: Prefetch,
    /// Page experts even when they all fit (every expert gets a slot, loaded on first use): the
    /// router's ids are then read back each layer, which `--trace-experts` needs.
    pub force_paging: bool,
}

/// The architecture-specific part of a model on the GPU.
#[derive(Debug)]
pub enum GpuArch {
    /// deepseek2: MLA attention over a latent cache, DeepSeekMoE.
    DeepSeek {
        config: DeepSeekConfig,
        weights: GpuWeights,
    },
    /// llama / qwen2: grouped-query attention over a K/V cache, SwiGLU FFN.
    Dense {
        config: DenseConfig,
        weights: DenseGpuWeights,
    },
}

/// A model resident on the GPU.
#[derive(Debug)]
pub struct GpuModel {
    pub gpu: Arc<Gpu>,
    pub arch: GpuArch,
    pub n_vocab: usize,
    /// Bytes of all weight buffers.
    pub weight_bytes: u64,
    pub kernels: Kernels,
    /// RoPE turns per rotary pair (see `shaders/kernels/rope.wgsl`).
    pub rope_turns: Buffer,
    /// Weight bytes one decoded token reads: everything but the embedding table (one row) and
    /// the routed experts not chosen (k of E per MoE layer).
    pub active_bytes_per_token: u64,
    /// Where the weights are (deepseek2 files; `None` for dense models).
    pub memory: Option<MemoryPlan>,
    /// Expert residency when routed experts are paged.
    pub pager: Option<Mutex<Pager>>,
}

impl GpuModel {
    /// The shape of the model's attention (the same in every layer).
    pub fn attention_shape(&self) -> crate::gpu::ops::attention::AttentionShape {
        use crate::gpu::ops::attention::AttentionShape;
        match &self.arch {
            GpuArch::DeepSeek { config: c, .. } => {
                AttentionShape::mla(c.n_head as u32, c.n_lora_kv as u32, c.n_rot as u32)
            }
            GpuArch::Dense { config: c, .. } => {
                AttentionShape::gqa(c.n_head as u32, c.n_head_kv as u32, c.head_dim as u32)
            }
        }
    }

    /// Checks the model (through the CPU loader's shape checks), compiles the kernels for its
    /// weight types and uploads every tensor. deepseek2, llama and qwen2 files are supported.
    pub fn load(
        gpu: Arc<Gpu>,
        file: &GgufModel,
        progress: Option<&LoadProgress<'_>>,
    ) -> Result<GpuModel> {
        Self::load_inner(gpu, file, None, &PlacementOptions::default(), progress)
    }

    /// [`GpuModel::load`] under a placement: with a budget that does not hold every routed
    /// expert, they stay in the file's map and are paged into GPU slots on demand.
    pub fn load_placed(
        gpu: Arc<Gpu>,
        file: &Arc<GgufModel>,
        placement: &PlacementOptions,
        progress: Option<&LoadProgress<'_>>,
    ) -> Result<GpuModel> {
        Self::load_inner(gpu, file, Some(file), placement, progress)
    }

    fn load_inner(
        gpu: Arc<Gpu>,
        file: &GgufModel,
        shared: Option<&Arc<GgufModel>>,
        placement: &PlacementOptions,
        progress: Option<&LoadProgress<'_>>,
    ) -> Result<GpuModel> {
        let total: u64 = file
            .tensors()
            .map(|t| file.tensor_data(t).len() as u64)
            .sum();
        match architecture(file)? {
            Arch::DeepSeek2 | Arch::DeepSeek32 => {
                let cpu = CpuModel::load(file)?;
                let memory = MemoryPlan::new(file, &cpu.config, placement.budget)?;
                let pager = match shared {
                    Some(shared) if memory.paged || placement.force_paging => {
                        let mut pager = Pager::new(
                            shared.clone(),
                            &memory,
                            cpu.config.n_layer,
                            placement.force_paging,
                        )?;
                        pager.prefetch = placement.prefetch;
                        Some(pager)
                    }
                    _ => None,
                };
                let paged: Vec<Option<std::ops::Range<u32>>> = (0..cpu.config.n_layer)
                    .map(|il| {
                        let pager = pager.as_ref()?;
                        Some(pager.slot_range(pager.paged_index(il)?))
                    })
                    .collect();
                // Bytes of the paged layers' slot pools (allocated, filled on demand) and of
                // their experts in the file (never uploaded).
                let (pool_bytes, paged_expert_bytes) = memory
                    .layers
                    .iter()
                    .filter(|l| paged.get(l.layer).is_some_and(Option::is_some))
                    .fold((0, 0), |(pool, file), l| {
                        (
                            pool + u64::from(l.slots) * l.expert_bytes,
                            file + u64::from(memory.n_expert) * l.expert_bytes,
                        )
                    });
                let total = total - paged_expert_bytes.min(total);
                let weights =
                    GpuWeights::upload(&gpu, &cpu.config, &cpu.weights, &paged, total, progress)?;
                let types = types_of(&matrices(&weights));
                let kernels = Kernels::new(&gpu, weights.token_embd.ty, &types)?;
                let rope_turns = rope::upload_freqs(&gpu, &cpu.rope_freqs)?;
                Ok(GpuModel {
                    n_vocab: cpu.config.n_vocab,
                    weight_bytes: weights.bytes + pool_bytes,
                    active_bytes_per_token: active_bytes(&cpu.config, &weights),
                    gpu,
                    kernels,
                    rope_turns,
                    arch: GpuArch::DeepSeek {
                        config: cpu.config,
                        weights,
                    },
                    memory: Some(memory),
                    pager: pager.map(Mutex::new),
                })
            }
            Arch::Llama | Arch::Qwen2 | Arch::Qwen3 => {
                let cpu = DenseModel::load(file)?;
                let weights = DenseGpuWeights::upload(&gpu, &cpu, total, progress)?;
                let mut matrices = vec![&weights.output];
                for l in &weights.layers {
                    matrices.extend([&l.q, &l.k, &l.v, &l.attn_output]);
                    matrices.extend(l.ffn.tensors());
                }
                let kernels = Kernels::new(&gpu, weights.token_embd.ty, &types_of(&matrices))?;
                let c = &cpu.config;
                let rope_turns = rope::upload_scaled_freqs(&gpu, &cpu.rope_freqs, cpu.rope_mscale)?;
                let active = weights.token_embd.row_bytes()
                    + matrices.iter().map(|t| t.bytes()).sum::<u64>();
                Ok(GpuModel {
                    n_vocab: c.n_vocab,
                    weight_bytes: weights.bytes,
                    active_bytes_per_token: active,
                    gpu,
                    kernels,
                    rope_turns,
                    arch: GpuArch::Dense {
                        config: cpu.config,
                        weights,
                    },
                    memory: None,
                    pager: None,
                })
            }
        }
    }

    /// Layers of the model.
    pub fn n_layer(&self) -> usize {
        match &self.arch {
            GpuArch::DeepSeek { config, .. } => config.n_layer,
            GpuArch::Dense { config, .. } => config.n_layer,
        }
    }
}

fn types_of(tensors: &[&GpuTensor]) -> Vec<GgmlType> {
    let mut types: Vec<GgmlType> = tensors.iter().map(|t| t.ty).collect();
    types.sort_by_key(|t| t.id());
    types.dedup();
    types
}

/// Every tensor that a matvec, matmul or matvec_id reads.
pub(crate) fn matrices(w: &GpuWeights) -> Vec<&GpuTensor> {
    let mut out = vec![&w.output];
    for layer in &w.layers {
        match &layer.q {
            GpuQ::Plain(q) => out.push(q),
            GpuQ::Lora { a, b, .. } => out.extend([a, b]),
        }
        out.extend([&layer.kv_a, &layer.k_b, &layer.v_b, &layer.attn_output]);
        match &layer.ffn {
            GpuFfn::Dense(f) => out.extend(f.tensors()),
            GpuFfn::Moe(moe) => {
                out.push(&moe.router);
                out.extend(moe.experts.all());
                if let Some(s) = &moe.shared {
                    out.extend(s.tensors());
                }
            }
        }
    }
    out
}

fn active_bytes(c: &DeepSeekConfig, w: &GpuWeights) -> u64 {
    let mut bytes = w.token_embd.row_bytes();
    let mut experts = std::collections::HashSet::new();
    for layer in &w.layers {
        if let GpuFfn::Moe(moe) = &layer.ffn {
            bytes += moe.experts.expert_bytes() * c.n_expert_used as u64;
            experts.extend(moe.experts.all().map(|t| t as *const GpuTensor));
        }
    }
    for t in matrices(w) {
        if !experts.contains(&(t as *const GpuTensor)) {
            bytes += t.bytes();
        }
    }
    bytes
}
