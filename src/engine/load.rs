//! Loading a model on the chosen backend: the GPU engine (the default) or the CPU reference.
//! The CLI wraps this with a progress bar; the worker ([`super::Engine`]) relays progress to
//! the app and the server.

use std::sync::Arc;

use super::context::ContextSize;
use super::{CpuDenseSequence, CpuSequence, Sequence};
use crate::Result;
use crate::cpu::CpuModel;
use crate::cpu::dense::DenseModel;
use crate::gguf::GgufModel;
use crate::gpu::Gpu;
use crate::gpu::engine::{GpuModel, GpuSession, LoadProgress, PlacementOptions};
use crate::gpu::ops::cache_type::CacheType;
use crate::gpu::paging::human_bytes;
use crate::model::DeepSeekConfig;
use crate::model::dense::{Arch, architecture};

/// Which implementation runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The GPU engine (wgpu: Vulkan, Metal, DX12; lavapipe without a GPU).
    #[default]
    Gpu,
    /// The f32 reference forward pass on the CPU (slow, exact; the oracle for GPU kernels).
    Cpu,
}

/// What to change when placing `model`'s weights on the GPU ran out of memory: a MoE model can
/// page its routed experts, a dense one needs a smaller file or the CPU.
pub fn load_advice(model: &GgufModel, placement: &PlacementOptions) -> String {
    let weights: u64 = model
        .tensors()
        .map(|t| model.tensor_data(t).len() as u64)
        .sum();
    let weights = human_bytes(weights);
    let file = model.metadata().path().display();
    let moe = matches!(architecture(model), Ok(Arch::DeepSeek2 | Arch::DeepSeek32))
        && DeepSeekConfig::from_gguf(model).is_ok_and(|c| c.n_expert > 0);
    match (moe, placement.budget.is_some()) {
        (true, false) => format!(
            "the weights are {weights}, all of them placed on the GPU: keep only part of the \
             routed experts there and page the rest from disk with --gpu-budget SIZE (below the \
             GPU's free memory) or --expert-cache 50% (`lanternfish info --memory {file} \
             --gpu-budget SIZE` shows the plan)"
        ),
        (true, true) => format!(
            "the weights are {weights}: a smaller --gpu-budget or --expert-cache keeps fewer routed \
             experts on the GPU (`lanternfish info --memory {file} --gpu-budget SIZE` shows the plan)"
        ),
        (false, _) => format!(
            "the weights are {weights} and a dense model cannot page them: use a smaller \
             quantization of it (`lanternfish quantize … --type q4_k_m`) or --backend cpu"
        ),
    }
}

/// A model loaded on one backend.
pub enum Loaded<'a> {
    Cpu(Box<CpuModel<'a>>),
    CpuDense(Box<DenseModel<'a>>),
    Gpu(Arc<GpuModel>),
}

impl<'a> Loaded<'a> {
    /// Loads `model` on `backend`, placed as `placement` asks (GPU only); `progress` sees the GPU
    /// upload (and may cancel it).
    pub fn load(
        model: &'a GgufModel,
        backend: Backend,
        placement: &PlacementOptions,
        progress: Option<&LoadProgress>,
    ) -> Result<Loaded<'a>> {
        match backend {
            Backend::Cpu => match architecture(model)? {
                Arch::DeepSeek2 | Arch::DeepSeek32 => {
                    Ok(Loaded::Cpu(Box::new(CpuModel::load(model)?)))
                }
                Arch::Llama | Arch::Qwen2 | Arch::Qwen3 => {
                    Ok(Loaded::CpuDense(Box::new(DenseModel::load(model)?)))
                }
            },
            Backend::Gpu => {
                let gpu = Arc::new(Gpu::new()?);
                tracing::info!("GPU: {}", gpu.describe());
                let placed = if placement.budget.is_some() || placement.force_paging {
                    // The pager reads experts from its own map of the same file(s) for as long
                    // as the model lives.
                    let path = model.metadata().path();
                    let shared = Arc::new(GgufModel::open(path)?);
                    GpuModel::load_placed(gpu, &shared, placement, progress)
                } else {
                    GpuModel::load(gpu, model, progress)
                };
                let placed =
                    placed.map_err(|e| e.with_memory_advice(|| load_advice(model, placement)))?;
                Ok(Loaded::Gpu(Arc::new(placed)))
            }
        }
    }

    /// A new empty sequence of `n_ctx` tokens (prefill in batches of `batch` on the GPU).
    pub fn sequence(&self, n_ctx: usize, batch: usize) -> Result<Box<dyn Sequence + '_>> {
        self.sequence_traced(n_ctx, batch, CacheType::default(), None)
    }

    /// [`Loaded::sequence`] with GPU caches of `cache_type`, writing the routed experts of
    /// every token to `trace` (GPU with paging only; see [`GpuSession::set_trace`]). The CPU
    /// backends keep f32 caches.
    pub fn sequence_traced(
        &self,
        n_ctx: usize,
        batch: usize,
        cache_type: CacheType,
        trace: Option<Box<dyn std::io::Write + Send>>,
    ) -> Result<Box<dyn Sequence + '_>> {
        if let (Some(_), Loaded::Cpu(_) | Loaded::CpuDense(_)) = (&trace, self) {
            return Err(crate::Error::Gpu {
                what: "tracing experts".to_owned(),
                message: "the expert trace needs the GPU backend".to_owned(),
            });
        }
        Ok(match self {
            Loaded::Cpu(cpu) => Box::new(CpuSequence {
                session: cpu.session(),
                n_ctx,
            }),
            Loaded::CpuDense(dense) => Box::new(CpuDenseSequence {
                session: dense.session(),
                n_ctx,
            }),
            Loaded::Gpu(model) => {
                let mut session =
                    GpuSession::with_cache_type(model.clone(), n_ctx, batch, cache_type)?;
                if let Some(trace) = trace {
                    session.set_trace(trace)?;
                }
                Box::new(session)
            }
        })
    }

    /// The device in words.
    pub fn device(&self) -> String {
        match self {
            Loaded::Cpu(_) | Loaded::CpuDense(_) => "CPU reference (f32)".to_owned(),
            Loaded::Gpu(model) => model.gpu.describe(),
        }
    }

    /// The context the model was trained for (`context_length`).
    pub fn n_ctx_train(&self) -> usize {
        match self {
            Loaded::Cpu(model) => model.config.n_ctx_train,
            Loaded::CpuDense(model) => model.config.n_ctx_train,
            Loaded::Gpu(model) => match &model.arch {
                crate::gpu::engine::model::GpuArch::DeepSeek { config, .. } => config.n_ctx_train,
                crate::gpu::engine::model::GpuArch::Dense { config, .. } => config.n_ctx_train,
            },
        }
    }

    /// A new empty sequence of `ctx` tokens ([`ContextSize::Auto`]: the largest of its
    /// candidates whose GPU cache fits, see [`super::context`]), with `trace()` as
    /// [`Loaded::sequence_traced`] takes it; returns the sequence and the line saying what auto
    /// chose (None for an explicit size).
    pub fn sequence_sized(
        &self,
        ctx: ContextSize,
        batch: usize,
        cache_type: CacheType,
        trace: &dyn Fn() -> Result<Option<Box<dyn std::io::Write + Send>>>,
    ) -> Result<(Box<dyn Sequence + '_>, Option<String>)> {
        let n_ctx_train = self.n_ctx_train();
        // DeepSeek-V3.2 on the GPU: its attention runs dense, exact up to the indexer's top_k.
        let cap = self.gpu_dense_limit().filter(|&k| k < n_ctx_train);
        let limit = cap.unwrap_or(n_ctx_train);
        let (seq, n_ctx) = super::context::first_that_fits(ctx, limit, |n_ctx| {
            self.sequence_traced(n_ctx, batch, cache_type, trace()?)
        })?;
        let line = match (ctx, cap) {
            (ContextSize::Auto, Some(k)) => Some(format!(
                "context: {n_ctx} tokens (auto: DeepSeek-V3.2's sparse attention runs on the GPU up \
                 to its indexer's top_k of {k} positions; --backend cpu for longer contexts)"
            )),
            _ => ctx.describe_choice(n_ctx, n_ctx_train),
        };
        Ok((seq, line))
    }

    /// DeepSeek-V3.2 on the GPU: the indexer's top_k, the longest context its dense attention
    /// computes exactly.
    fn gpu_dense_limit(&self) -> Option<usize> {
        match self {
            Loaded::Gpu(model) => match &model.arch {
                crate::gpu::engine::model::GpuArch::DeepSeek { config, .. } => {
                    config.indexer.map(|ix| ix.top_k)
                }
                crate::gpu::engine::model::GpuArch::Dense { .. } => None,
            },
            Loaded::Cpu(_) | Loaded::CpuDense(_) => None,
        }
    }

    /// Bytes of weights resident on the GPU (0 on the CPU).
    pub fn gpu_weight_bytes(&self) -> u64 {
        match self {
            Loaded::Cpu(_) | Loaded::CpuDense(_) => 0,
            Loaded::Gpu(model) => model.weight_bytes,
        }
    }
}
