//! `attention`: absorbed-MLA attention over the latent cache (spec §4.7), one workgroup per
//! (query token, head) with an online, max-subtracted softmax; see
//! `shaders/kernels/attention.wgsl`. Causal: a query at position p reads cache rows `0..=p`.
//!
//! Per head h, over cached positions `t < n_pos` (a query at position p has `n_pos = p + 1`):
//! `o_lat[h] = Σ_t softmax_t(kq_scale·(q_abs[h]·c_kv[t] + q_pe[h]·k_pe[t])) · c_kv[t]`, with
//! cache rows `[c_kv (r) ‖ k_pe (dr)]`. This is `lanternfish::cpu::attention::attend_latent`:
//! the CPU's `attend_absorbed` fuses the same math with the k_b absorption before it
//! (`q_abs = W_UK,hᵀ q_nope`) and the v_b up-projection after it (`o = W_UV,h o_lat`); on the
//! GPU those two are separate matvecs.

use bytemuck::{Pod, Zeroable};

use super::elementwise::{
    Family, check_lens, gpu_error, grid_for, len_u32, output_buffer, submit_all, upload_f32,
};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

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
    n_tok: u32,
    kq_scale: f32,
    q_pe_stride: u32,
    q_pe_offset: u32,
    _pad: u32,
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

/// Where each query's rope part lies in the `q_pe` buffer: `dr` values at
/// `(token·H + h)·stride + offset` (the roped q `[n_tok, H, dn + dr]`: stride `dn + dr`, offset
/// `dn`; a packed `[n_tok, H, dr]`: stride `dr`, offset 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QPeLayout {
    pub stride: u32,
    pub offset: u32,
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
            family: Family::new(gpu, LABEL, SOURCE, "main", 4, 1, params)?,
        })
    }

    /// The dispatch computing `o_lat [n_tok, H, r]` for queries `q_abs [n_tok, H, r]` and
    /// their rope parts in `q_pe` (laid out as `pe`), each token `i` over the cache rows
    /// `0..=positions[i]` of `cache [n_ctx, r + dr]` (f32 buffers; `positions` u32 `[n_tok]`,
    /// read when the dispatch runs, so one dispatch serves every decode step). `n_ctx` bounds
    /// the positions the host may write; `o_lat` must not alias the inputs.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        gpu: &Gpu,
        [q_abs, q_pe, cache, positions, o_lat]: [Binding<'_>; 5],
        shape: AttentionShape,
        pe: QPeLayout,
        n_tok: u32,
        n_ctx: u32,
        kq_scale: f32,
    ) -> Result<Dispatch> {
        shape.check(n_ctx)?;
        let f32_bytes = |n: u32, width: u32| u64::from(n) * u64::from(width) * 4;
        let pe_end = u64::from(n_tok * shape.n_head).saturating_sub(1) * u64::from(pe.stride)
            + u64::from(pe.offset + shape.dr);
        let needs = [
            ("q_abs", q_abs, f32_bytes(n_tok * shape.n_head, shape.r)),
            ("q_pe", q_pe, 4 * pe_end),
            ("cache", cache, f32_bytes(n_ctx, shape.r + shape.dr)),
            ("positions", positions, 4 * u64::from(n_tok)),
            ("o_lat", o_lat, f32_bytes(n_tok * shape.n_head, shape.r)),
        ];
        check_lens(LABEL, &needs, String::new)?;
        if n_tok == 0 || shape.n_head == 0 {
            return Err(gpu_error(LABEL, "attention for no query".to_owned()));
        }
        let groups = grid_for(gpu, LABEL, n_tok * shape.n_head)?;
        let params = AttentionParams {
            n_head: shape.n_head,
            r: shape.r,
            dr: shape.dr,
            n_tok,
            kq_scale,
            q_pe_stride: pe.stride,
            q_pe_offset: pe.offset,
            _pad: 0,
        };
        self.family.bind(
            gpu,
            &[q_abs, q_pe, cache, positions, o_lat],
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
        let positions = gpu.upload(
            "attention.positions",
            bytemuck::bytes_of(&(n_pos - 1)),
            wgpu::BufferUsages::STORAGE,
        )?;
        let dispatch = self.bind(
            gpu,
            [
                (&q_abs_buffer).into(),
                (&q_pe_buffer).into(),
                (&cache_buffer).into(),
                (&positions).into(),
                (&o_lat).into(),
            ],
            shape,
            QPeLayout {
                stride: shape.dr,
                offset: 0,
            },
            1,
            n_pos,
            kq_scale,
        )?;
        submit_all(gpu, LABEL, [&dispatch])?;
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
