//! Loading a model on the chosen backend for `logits`, `run`, `chat` and `bench`: the GPU engine
//! by default (with a progress bar while the weights upload), or the CPU reference.

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::cpu::CpuModel;
use crate::cpu::dense::DenseModel;
use crate::engine::{CpuDenseSequence, CpuSequence, Sequence};
use crate::gguf::GgufModel;
use crate::gpu::Gpu;
use crate::gpu::engine::{DEFAULT_BATCH, GpuModel, GpuSession, LoadProgress};
use crate::model::dense::{Arch, architecture};

/// Which implementation runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The GPU engine (wgpu: Vulkan, Metal, DX12; lavapipe without a GPU).
    Gpu,
    /// The f32 reference forward pass on the CPU (slow, exact; the oracle for GPU kernels).
    Cpu,
}

/// Backend options shared by the commands that run a model.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    #[arg(long, value_enum, default_value = "gpu")]
    pub backend: Backend,
    /// Context window in tokens (the KV cache is allocated for this many).
    #[arg(long, default_value_t = 4096)]
    pub ctx: usize,
    /// Prompt tokens per prefill batch on the GPU.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
}

/// A model loaded on one backend.
pub enum Loaded<'a> {
    Cpu(Box<CpuModel<'a>>),
    CpuDense(Box<DenseModel<'a>>),
    Gpu(Arc<GpuModel>),
}

impl<'a> Loaded<'a> {
    /// Loads `model` as `args` ask; the GPU load shows a progress bar on stderr.
    pub fn load(model: &'a GgufModel, args: &BackendArgs) -> Result<Loaded<'a>> {
        match args.backend {
            Backend::Cpu => match architecture(model)? {
                Arch::DeepSeek2 => Ok(Loaded::Cpu(Box::new(CpuModel::load(model)?))),
                Arch::Llama | Arch::Qwen2 => {
                    Ok(Loaded::CpuDense(Box::new(DenseModel::load(model)?)))
                }
            },
            Backend::Gpu => {
                let gpu = Arc::new(Gpu::new()?);
                tracing::info!("GPU: {}", gpu.describe());
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "loading {bar:40} {binary_bytes}/{binary_total_bytes} ({eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                let on_bytes = |done: u64, total: u64| {
                    bar.set_length(total);
                    bar.set_position(done.min(total));
                };
                let progress = LoadProgress {
                    on_bytes: &on_bytes,
                    cancel: None,
                };
                let loaded = GpuModel::load(gpu, model, Some(&progress));
                bar.finish_and_clear();
                Ok(Loaded::Gpu(Arc::new(
                    loaded.context("loading the model onto the GPU")?,
                )))
            }
        }
    }

    /// A new empty sequence with the context and batch of `args`.
    pub fn sequence(&self, args: &BackendArgs) -> Result<Box<dyn Sequence + '_>> {
        Ok(match self {
            Loaded::Cpu(cpu) => Box::new(CpuSequence {
                session: cpu.session(),
                n_ctx: args.ctx,
            }),
            Loaded::CpuDense(dense) => Box::new(CpuDenseSequence {
                session: dense.session(),
                n_ctx: args.ctx,
            }),
            Loaded::Gpu(model) => Box::new(GpuSession::new(model.clone(), args.ctx, args.batch)?),
        })
    }

    /// The device in words.
    pub fn device(&self) -> String {
        match self {
            Loaded::Cpu(_) | Loaded::CpuDense(_) => "CPU reference (f32)".to_owned(),
            Loaded::Gpu(model) => model.gpu.describe(),
        }
    }
}
