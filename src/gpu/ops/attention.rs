//! `attention`: absorbed-MLA decode over the latent cache (spec §4.7), one workgroup per head
//! with an online, max-subtracted softmax; see `shaders/kernels/attention.wgsl`.
//!
//! Per head h, over cached positions `t < n_pos` (a query at position p has `n_pos = p + 1`):
//! `o_lat[h] = Σ_t softmax_t(kq_scale·(q_abs[h]·c_kv[t] + q_pe[h]·k_pe[t])) · c_kv[t]`, with
//! cache rows `[c_kv (r) ‖ k_pe (dr)]`. This is `lanternfish::cpu::attention::attend_latent`:
//! the CPU's `attend_absorbed` fuses the same math with the k_b absorption before it
//! (`q_abs = W_UK,hᵀ q_nope`) and the v_b up-projection after it (`o = W_UV,h o_lat`); on the
//! GPU those two are separate matvecs.

use bytemuck::{Pod, Zeroable};
use wgpu::{Buffer, CommandEncoder};

use super::elementwise::{Family, gpu_error, grid_for, len_u32, output_buffer, submit, upload_f32};
use crate::Result;
use crate::gpu::Gpu;

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "attention";

const SOURCE: &str = include_str!("../../../shaders/kernels/attention.wgsl");

/// Largest latent width `r` the kernel supports (`MAX_R` in the WGSL file).
pub const MAX_R: u32 = 512;
/// Largest rope width `dr` the kernel supports (`MAX_DR` in the WGSL file).
pub const MAX_DR: u32 = 64;

/// Mirrors the WGSL `Params` struct (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AttentionParams {
    n_head: u32,
    r: u32,
    dr: u32,
    n_pos: u32,
    kq_scale: f32,
    _pad: [u32; 3],
}

/// Head count and widths of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// H: query heads.
    pub n_head: u32,
    /// r: latent width (`kv_lora_rank`), at most [`MAX_R`].
    pub r: u32,
    /// dr: rope width (`rope.dimension_count`), at most [`MAX_DR`].
    pub dr: u32,
}

impl AttentionShape {
    fn check(&self, n_pos: u32) -> Result<()> {
        if self.r == 0 || self.r > MAX_R || self.dr > MAX_DR {
            return Err(gpu_error(
                LABEL,
                format!(
                    "r = {} and dr = {} outside 1..={MAX_R} and 0..={MAX_DR}",
                    self.r, self.dr
                ),
            ));
        }
        if n_pos == 0 {
            return Err(gpu_error(LABEL, "attention over no positions".to_owned()));
        }
        Ok(())
    }
}

/// A compiled `attention` pipeline.
pub struct Attention {
    family: Family,
}

impl Attention {
    pub fn new(gpu: &Gpu) -> Result<Attention> {
        let params = size_of::<AttentionParams>() as u64;
        Ok(Attention {
            family: Family::new(gpu, LABEL, SOURCE, "main", 3, 1, params)?,
        })
    }

    /// Records `o_lat [H, r]` = attention of `q_abs [H, r]` and `q_pe [H, dr]` over the first
    /// `n_pos` rows of `cache [n_ctx, r + dr]` (f32 buffers; `o_lat` must not alias the
    /// inputs). Fails when a buffer is too small for the shape.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut CommandEncoder,
        [q_abs, q_pe, cache, o_lat]: [&Buffer; 4],
        shape: AttentionShape,
        n_pos: u32,
        kq_scale: f32,
    ) -> Result<()> {
        shape.check(n_pos)?;
        if shape.n_head == 0 {
            return Ok(());
        }
        let f32_bytes = |n: u32, width: u32| u64::from(n) * u64::from(width) * 4;
        let needs = [
            ("q_abs", q_abs, f32_bytes(shape.n_head, shape.r)),
            ("q_pe", q_pe, f32_bytes(shape.n_head, shape.dr)),
            ("cache", cache, f32_bytes(n_pos, shape.r + shape.dr)),
            ("o_lat", o_lat, f32_bytes(shape.n_head, shape.r)),
        ];
        for (name, buffer, bytes) in needs {
            if buffer.size() < bytes {
                return Err(gpu_error(
                    LABEL,
                    format!("{name} has {} bytes, needs {bytes}", buffer.size()),
                ));
            }
        }
        let groups = grid_for(gpu, LABEL, shape.n_head)?;
        let params = AttentionParams {
            n_head: shape.n_head,
            r: shape.r,
            dr: shape.dr,
            n_pos,
            kq_scale,
            _pad: [0; 3],
        };
        self.family.encode(
            gpu,
            encoder,
            &[q_abs, q_pe, cache, o_lat],
            bytemuck::bytes_of(&params),
            groups,
        )
    }

    /// Returns `o_lat [H, r]` computed on the GPU for `q_abs [H, r]`, `q_pe [H, dr]` and the
    /// first `n_pos` rows of `cache [n_ctx, r + dr]`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        gpu: &Gpu,
        q_abs: &[f32],
        q_pe: &[f32],
        cache: &[f32],
        shape: AttentionShape,
        n_pos: u32,
        kq_scale: f32,
    ) -> Result<Vec<f32>> {
        shape.check(n_pos)?;
        let n_head = shape.n_head as usize;
        let (r, dr) = (shape.r as usize, shape.dr as usize);
        if q_abs.len() != n_head * r
            || q_pe.len() != n_head * dr
            || cache.len() < n_pos as usize * (r + dr)
        {
            return Err(gpu_error(
                LABEL,
                format!(
                    "q_abs {}, q_pe {}, cache {} values do not fit H = {n_head}, r = {r}, \
                     dr = {dr}, n_pos = {n_pos}",
                    q_abs.len(),
                    q_pe.len(),
                    cache.len()
                ),
            ));
        }
        if n_head == 0 {
            return Ok(Vec::new());
        }
        len_u32(gpu, LABEL, cache.len())?;
        // A buffer is at least 4 bytes even when dr = 0.
        let q_pe_values: &[f32] = if q_pe.is_empty() { &[0.0] } else { q_pe };
        let q_abs_buffer = upload_f32(gpu, "attention.q_abs", q_abs)?;
        let q_pe_buffer = upload_f32(gpu, "attention.q_pe", q_pe_values)?;
        let cache_buffer = upload_f32(gpu, "attention.cache", cache)?;
        let o_lat = output_buffer(gpu, "attention.o_lat", size_of_val(q_abs) as u64)?;
        submit(gpu, LABEL, |encoder| {
            self.encode(
                gpu,
                encoder,
                [&q_abs_buffer, &q_pe_buffer, &cache_buffer, &o_lat],
                shape,
                n_pos,
                kq_scale,
            )
        })?;
        gpu.read_f32("attention.o_lat", &o_lat, q_abs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        let span = super::super::elementwise::validated_params_size(LABEL, SOURCE);
        assert_eq!(span, size_of::<AttentionParams>());
    }

    #[test]
    fn limits_match_the_wgsl() {
        assert!(SOURCE.contains(&format!("const MAX_R: u32 = {MAX_R}u;")));
        assert!(SOURCE.contains(&format!("const MAX_DR: u32 = {MAX_DR}u;")));
        assert!(SOURCE.contains(&format!(
            "var<workgroup> query: array<f32, {}>;",
            MAX_R + MAX_DR
        )));
    }
}
