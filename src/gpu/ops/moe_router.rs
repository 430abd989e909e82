//! `moe_router`: router logits `[n_tok, E]` → per token the `k` chosen expert ids and their
//! weights, written to GPU buffers that the expert kernels read (spec §4.9); the GPU twin of
//! [`crate::cpu::moe::route`]. See `shaders/kernels/moe_router.wgsl`.

use bytemuck::{Pod, Zeroable};
use wgpu::{Buffer, CommandEncoder};

use super::elementwise::{Family, gpu_error, grid_for, len_u32, output_buffer, submit, upload_f32};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};
use crate::model::{DeepSeekConfig, GatingFunc, GroupScore};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "moe_router";

const SOURCE: &str = include_str!("../../../shaders/kernels/moe_router.wgsl");

/// Limits of the shader's shared-memory arrays (`MAX_EXPERTS`, `MAX_GROUPS`, `MAX_USED`).
pub const MAX_EXPERTS: usize = 1024;
pub const MAX_GROUPS: usize = 64;
pub const MAX_USED: usize = 16;

/// Mirrors the WGSL `Params` struct (48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct RouterParams {
    n_tok: u32,
    n_expert: u32,
    n_used: u32,
    gating: u32,
    has_bias: u32,
    n_groups: u32,
    n_group_used: u32,
    group_score: u32,
    norm: u32,
    scale: f32,
    _pad: [u32; 2],
}

/// The routing rule of one MoE layer: the router fields of [`DeepSeekConfig`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RouterConfig {
    /// E.
    pub n_expert: usize,
    /// k.
    pub n_expert_used: usize,
    pub gating: GatingFunc,
    /// 1 = no group limiting.
    pub n_groups: usize,
    pub n_group_used: usize,
    pub group_score: GroupScore,
    /// Renormalise the chosen weights to sum 1.
    pub norm: bool,
    /// `expert_weights_scale`.
    pub scale: f32,
}

impl RouterConfig {
    pub fn from_model(c: &DeepSeekConfig) -> RouterConfig {
        RouterConfig {
            n_expert: c.n_expert,
            n_expert_used: c.n_expert_used,
            gating: c.expert_gating_func,
            n_groups: c.n_expert_groups.max(1),
            n_group_used: c.n_group_used,
            group_score: c.group_score,
            norm: c.expert_weights_norm,
            scale: c.expert_weights_scale,
        }
    }

    /// Checks the shapes against the shader's limits and each other.
    fn check(&self) -> std::result::Result<(), String> {
        let c = self;
        if c.n_expert == 0 || c.n_expert > MAX_EXPERTS {
            return Err(format!(
                "{} experts (1..={MAX_EXPERTS} supported)",
                c.n_expert
            ));
        }
        if c.n_expert_used == 0 || c.n_expert_used > MAX_USED.min(c.n_expert) {
            return Err(format!(
                "{} experts used of {} (at most {MAX_USED})",
                c.n_expert_used, c.n_expert
            ));
        }
        if c.n_groups > 1 {
            let size = c.n_expert / c.n_groups;
            if c.n_groups > MAX_GROUPS
                || !c.n_expert.is_multiple_of(c.n_groups)
                || c.n_group_used == 0
                || c.n_group_used > c.n_groups
                || c.n_group_used * size < c.n_expert_used
            {
                return Err(format!(
                    "{} groups (keep {}) of {} experts, {} used",
                    c.n_groups, c.n_group_used, c.n_expert, c.n_expert_used
                ));
            }
        }
        Ok(())
    }

    fn params(&self, n_tok: u32, has_bias: bool) -> RouterParams {
        let grouped = self.n_groups > 1;
        RouterParams {
            n_tok,
            n_expert: self.n_expert as u32,
            n_used: self.n_expert_used as u32,
            gating: match self.gating {
                GatingFunc::Softmax => 0,
                GatingFunc::Sigmoid => 1,
            },
            has_bias: u32::from(has_bias),
            n_groups: if grouped { self.n_groups as u32 } else { 1 },
            n_group_used: if grouped { self.n_group_used as u32 } else { 1 },
            group_score: match self.group_score {
                GroupScore::Max => 0,
                GroupScore::Top2Sum => 1,
            },
            norm: u32::from(self.norm),
            scale: self.scale,
            _pad: [0; 2],
        }
    }
}

/// A compiled `moe_router` pipeline.
pub struct MoeRouter {
    family: Family,
}

impl MoeRouter {
    pub fn new(gpu: &Gpu) -> Result<MoeRouter> {
        let params = size_of::<RouterParams>() as u64;
        Ok(MoeRouter {
            family: Family::new(gpu, LABEL, SOURCE, "main", 2, 2, params)?,
        })
    }

    /// Records the routing of `n_tok` tokens: `logits` f32 `[n_tok, E]`, `bias` f32 `[E]` (any
    /// non-empty buffer when `has_bias` is false), outputs `ids` u32 and `weights` f32, both
    /// `[n_tok, k]`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut CommandEncoder,
        config: &RouterConfig,
        [logits, bias, ids, weights]: [&Buffer; 4],
        n_tok: u32,
        has_bias: bool,
    ) -> Result<()> {
        config
            .check()
            .map_err(|message| gpu_error(LABEL, message))?;
        if n_tok == 0 {
            return Ok(());
        }
        let buffers = [logits.into(), bias.into(), ids.into(), weights.into()];
        let dispatch = self.bind(gpu, config, buffers, n_tok, has_bias)?;
        Dispatch::record_all(encoder, LABEL, [&dispatch]);
        Ok(())
    }

    /// The dispatch of [`MoeRouter::encode`], built once and recorded every step.
    pub fn bind(
        &self,
        gpu: &Gpu,
        config: &RouterConfig,
        [logits, bias, ids, weights]: [Binding<'_>; 4],
        n_tok: u32,
        has_bias: bool,
    ) -> Result<Dispatch> {
        config
            .check()
            .map_err(|message| gpu_error(LABEL, message))?;
        let (e, k, n) = (
            config.n_expert as u64,
            config.n_expert_used as u64,
            u64::from(n_tok),
        );
        if logits.len() < 4 * n * e
            || (has_bias && bias.len() < 4 * e)
            || ids.len() < 4 * n * k
            || weights.len() < 4 * n * k
        {
            return Err(gpu_error(
                LABEL,
                format!("buffers too small for {n_tok} tokens"),
            ));
        }
        let groups = grid_for(gpu, LABEL, n_tok.max(1))?;
        let params = config.params(n_tok, has_bias);
        self.family.bind(
            gpu,
            &[logits, bias, ids, weights],
            bytemuck::bytes_of(&params),
            groups,
        )
    }

    /// Routes the tokens of `logits` (`[n_tok, E]`) on the GPU and returns `(ids, weights)`,
    /// each `[n_tok, k]`, best selection first.
    pub fn run(
        &self,
        gpu: &Gpu,
        config: &RouterConfig,
        logits: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        config
            .check()
            .map_err(|message| gpu_error(LABEL, message))?;
        let e = config.n_expert;
        if !logits.len().is_multiple_of(e) || bias.is_some_and(|b| b.len() != e) {
            return Err(gpu_error(
                LABEL,
                format!(
                    "{} logits and {:?} biases for {e} experts",
                    logits.len(),
                    bias.map(<[f32]>::len)
                ),
            ));
        }
        let n_tok = len_u32(gpu, LABEL, logits.len())? / e as u32;
        if n_tok == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let k = config.n_expert_used;
        let out_len = n_tok as usize * k;
        len_u32(gpu, LABEL, out_len)?;
        let logits_buffer = upload_f32(gpu, "moe_router.logits", logits)?;
        let bias_buffer = upload_f32(gpu, "moe_router.bias", bias.unwrap_or(&[0.0]))?;
        let ids = output_buffer(gpu, "moe_router.ids", (out_len * 4) as u64)?;
        let weights = output_buffer(gpu, "moe_router.weights", (out_len * 4) as u64)?;
        submit(gpu, LABEL, |encoder| {
            self.encode(
                gpu,
                encoder,
                config,
                [&logits_buffer, &bias_buffer, &ids, &weights],
                n_tok,
                bias.is_some(),
            )
        })?;
        let id_bytes = gpu.read_buffer("moe_router.ids", &ids, (out_len * 4) as u64)?;
        let weights = gpu.read_f32("moe_router.weights", &weights, out_len)?;
        Ok((bytemuck::pod_collect_to_vec(&id_bytes), weights))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        let span = super::super::elementwise::validated_params_size(LABEL, SOURCE);
        assert_eq!(span, size_of::<RouterParams>());
    }
}
