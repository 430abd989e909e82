//! A deepseek2 model loaded onto the GPU: config, weights in device buffers, compiled kernels and
//! the RoPE frequency table. Sessions ([`super::GpuSession`]) share it through an `Arc`.

use std::sync::Arc;

use lanternfish_quant::GgmlType;
use wgpu::Buffer;

use super::kernels::Kernels;
use super::weights::{GpuFfn, GpuQ, GpuTensor, GpuWeights, LoadProgress};
use crate::Result;
use crate::cpu::CpuModel;
use crate::gguf::GgufModel;
use crate::gpu::Gpu;
use crate::gpu::ops::rope;
use crate::model::DeepSeekConfig;

/// A model resident on the GPU.
#[derive(Debug)]
pub struct GpuModel {
    pub gpu: Arc<Gpu>,
    pub config: DeepSeekConfig,
    pub weights: GpuWeights,
    pub kernels: Kernels,
    /// RoPE turns per rotary pair (see `shaders/kernels/rope.wgsl`).
    pub rope_turns: Buffer,
    /// Weight bytes one decoded token reads: everything but the embedding table (one row) and
    /// the routed experts not chosen (k of E per MoE layer).
    pub active_bytes_per_token: u64,
}

impl GpuModel {
    /// Checks the model (through the CPU loader's shape checks), compiles the kernels for its
    /// weight types and uploads every tensor.
    pub fn load(
        gpu: Arc<Gpu>,
        file: &GgufModel,
        progress: Option<&LoadProgress<'_>>,
    ) -> Result<GpuModel> {
        let cpu = CpuModel::load(file)?;
        let total: u64 = file
            .tensors()
            .map(|t| file.tensor_data(t).len() as u64)
            .sum();
        let weights = GpuWeights::upload(&gpu, &cpu.config, &cpu.weights, total, progress)?;
        let types = weight_types(&weights);
        let kernels = Kernels::new(&gpu, weights.token_embd.ty, &types)?;
        let rope_turns = rope::upload_freqs(&gpu, &cpu.rope_freqs)?;
        let active_bytes_per_token = active_bytes(&cpu.config, &weights);
        Ok(GpuModel {
            gpu,
            config: cpu.config,
            weights,
            kernels,
            rope_turns,
            active_bytes_per_token,
        })
    }
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
            GpuFfn::Dense(f) => out.extend([&f.gate, &f.up, &f.down]),
            GpuFfn::Moe(moe) => {
                out.push(&moe.router);
                out.extend(moe.experts.all());
                if let Some(s) = &moe.shared {
                    out.extend([&s.gate, &s.up, &s.down]);
                }
            }
        }
    }
    out
}

fn weight_types(w: &GpuWeights) -> Vec<GgmlType> {
    let mut types: Vec<GgmlType> = matrices(w).iter().map(|t| t.ty).collect();
    types.sort_by_key(|t| t.id());
    types.dedup();
    types
}

fn active_bytes(c: &DeepSeekConfig, w: &GpuWeights) -> u64 {
    let mut bytes = w.token_embd.row_bytes();
    for t in matrices(w) {
        bytes += t.bytes();
    }
    for layer in &w.layers {
        if let GpuFfn::Moe(moe) = &layer.ffn {
            bytes -= moe.experts.expert_bytes() * (c.n_expert - c.n_expert_used) as u64;
        }
    }
    bytes
}
