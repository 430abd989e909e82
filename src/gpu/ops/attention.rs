//! `attention`: absorbed-MLA attention over the latent cache (spec §4.7), MQA-shaped: a workgroup
//! takes 4 heads of a query and a chunk of its positions, with an online, max-subtracted softmax;
//! when positions are split over several chunks, `attention_merge` combines them. See
//! `shaders/kernels/attention.wgsl` and `attention_merge.wgsl`. Causal: a query at position p
//! reads cache rows `0..=p`.
//!
//! Per head h, over cached positions `t < n_pos` (a query at position p has `n_pos = p + 1`):
//! `o_lat[h] = Σ_t softmax_t(kq_scale·(q_abs[h]·c_kv[t] + q_pe[h]·k_pe[t])) · c_kv[t]`, with
//! cache rows `[c_kv (r) ‖ k_pe (dr)]`. This is `lanternfish::cpu::attention::attend_latent`:
//! the CPU's `attend_absorbed` fuses the same math with the k_b absorption before it
//! (`q_abs = W_UK,hᵀ q_nope`) and the v_b up-projection after it (`o = W_UV,h o_lat`); on the
//! GPU those two are separate matvecs.

use bytemuck::{Pod, Zeroable};

use super::cache_type::CacheType;
use super::elementwise::{
    Family, check_lens, gpu_error, grid_for, len_u32, output_buffer, submit_all, upload_f32,
};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "attention";
/// The merge kernel's name.
pub const MERGE_LABEL: &str = "attention_merge";

const SOURCE: &str = include_str!("../../../shaders/kernels/attention.wgsl");
const MERGE_SOURCE: &str = include_str!("../../../shaders/kernels/attention_merge.wgsl");

/// Largest latent width `r` the kernel supports (`MAX_R` in the WGSL file).
pub const MAX_R: u32 = 512;
/// Largest rope width `dr` the kernel supports (`MAX_DR` in the WGSL file).
pub const MAX_DR: u32 = 64;
/// Positions per tile (`TILE` in the WGSL file): the smallest chunk a plan splits into.
pub const TILE: u32 = 32;
/// Query heads per workgroup (`HEADS`: one per vec4 component).
pub const HEADS: u32 = 4;
/// Workgroups a split decode step aims for when the adapter's compute units are unknown (wgpu
/// does not say for GPUs), a stated default: two workgroups per unit on GPUs of up to 128 units
/// (an RTX 4090 has 128 SMs, an M3 Max 40 cores, an H100 132 SMs).
pub const TARGET_WORKGROUPS: u32 = 256;

/// Workgroups a split decode step aims for on `gpu`: two per compute unit where
/// [`Gpu::compute_units`] knows them, else [`TARGET_WORKGROUPS`].
pub fn target_workgroups(gpu: &Gpu) -> u32 {
    gpu.compute_units()
        .map_or(TARGET_WORKGROUPS, |units| 2 * units)
}

/// Mirrors the WGSL `Params` struct of attention.wgsl (48 bytes).
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
    n_chunks: u32,
    min_chunk: u32,
    _pad: [u32; 3],
}

/// Mirrors the WGSL `Params` struct of attention_merge.wgsl (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MergeParams {
    n_head: u32,
    r: u32,
    n_tok: u32,
    n_chunks: u32,
    min_chunk: u32,
    _pad: [u32; 3],
}

/// Head count and widths of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// H: query heads.
    pub n_head: u32,
    /// r: latent width (`kv_lora_rank`), a multiple of 4, at most [`MAX_R`].
    pub r: u32,
    /// dr: rope width (`rope.dimension_count`), a multiple of 4, at most [`MAX_DR`].
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

/// How a query's positions are split: into at most `n_chunks` chunks of
/// `max(ceil(n_pos / n_chunks), min_chunk)` positions each (one chunk: no merge dispatch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub n_chunks: u32,
    pub min_chunk: u32,
}

impl Split {
    /// No split: one workgroup per (query, head group) over all its positions.
    pub const NONE: Split = Split {
        n_chunks: 1,
        min_chunk: 1,
    };

    /// The split a plan uses for `n_tok` queries of `n_head` heads over at most `n_ctx`
    /// positions: enough chunks for `target` workgroups ([`target_workgroups`]), each at least a
    /// tile of positions (so a short context takes few chunks and the rest return at once), none
    /// for a batch that fills the GPU by itself.
    pub fn for_batch(n_tok: u32, n_head: u32, n_ctx: u32, target: u32) -> Split {
        let groups = n_tok.max(1) * n_head.div_ceil(HEADS).max(1);
        let n_chunks = target.div_ceil(groups).min(n_ctx.div_ceil(TILE)).max(1);
        if n_chunks == 1 {
            return Split::NONE;
        }
        Split {
            n_chunks,
            min_chunk: TILE,
        }
    }

    /// The scratch a split needs: f32 values of the chunk accumulators and (m, l) pairs.
    pub fn scratch(self, n_tok: u32, n_head: u32, r: u32) -> (u64, u64) {
        if self.n_chunks == 1 {
            return (0, 0);
        }
        let slots = u64::from(n_tok) * u64::from(self.n_chunks) * u64::from(n_head);
        (slots * u64::from(r), slots)
    }
}

impl AttentionShape {
    fn check(&self, n_pos: u32) -> Result<()> {
        if self.r == 0
            || self.r > MAX_R
            || self.dr > MAX_DR
            || !self.r.is_multiple_of(4)
            || !self.dr.is_multiple_of(4)
        {
            return Err(gpu_error(
                LABEL,
                format!(
                    "r = {} and dr = {} outside 1..={MAX_R} and 0..={MAX_DR}, or not multiples \
                     of 4",
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

/// The compiled `attention` pipelines: one per cache type, and the merge.
pub struct Attention {
    chunks: Vec<Family>,
    merge: Family,
}

impl Attention {
    pub fn new(gpu: &Gpu) -> Result<Attention> {
        let params = size_of::<AttentionParams>() as u64;
        let chunks = CacheType::ALL
            .iter()
            .map(|ty| {
                let label = format!("{LABEL}.{ty}");
                let source = format!("{}\n{SOURCE}", ty.wgsl());
                Family::new(gpu, &label, &source, "main", 4, 2, params)
            })
            .collect::<Result<Vec<_>>>()?;
        let merge_params = size_of::<MergeParams>() as u64;
        Ok(Attention {
            chunks,
            merge: Family::new(gpu, MERGE_LABEL, MERGE_SOURCE, "main", 3, 1, merge_params)?,
        })
    }

    /// The dispatches computing `o_lat [n_tok, H, r]` for queries `q_abs [n_tok, H, r]` and
    /// their rope parts in `q_pe` (laid out as `pe`), each token `i` over the cache rows
    /// `0..=positions[i]` of `cache [n_ctx, r + dr]` (values of `cache_type`; `positions` u32
    /// `[n_tok]`, read when the dispatch runs, so one plan serves every decode step): one
    /// dispatch, or two with a [`Split`] of several chunks, which need `acc` and `ml` as
    /// [`Split::scratch`] says (any buffers otherwise). `n_ctx` bounds the positions the host
    /// may write; `o_lat`, `acc` and `ml` must not alias the inputs or each other.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        gpu: &Gpu,
        [q_abs, q_pe, cache, positions, o_lat, acc, ml]: [Binding<'_>; 7],
        shape: AttentionShape,
        pe: QPeLayout,
        n_tok: u32,
        n_ctx: u32,
        kq_scale: f32,
        cache_type: CacheType,
        split: Split,
    ) -> Result<Vec<Dispatch>> {
        shape.check(n_ctx)?;
        if n_tok == 0 || shape.n_head == 0 || split.n_chunks == 0 || split.min_chunk == 0 {
            return Err(gpu_error(
                LABEL,
                format!(
                    "attention for {n_tok} queries of {} heads, {split:?}",
                    shape.n_head
                ),
            ));
        }
        let f32_bytes = |n: u32, width: u32| u64::from(n) * u64::from(width) * 4;
        let pe_end = u64::from(n_tok * shape.n_head).saturating_sub(1) * u64::from(pe.stride)
            + u64::from(pe.offset + shape.dr);
        let cache_bytes =
            u64::from(n_ctx) * u64::from(shape.r + shape.dr) * cache_type.value_bytes();
        let (acc_values, ml_pairs) = split.scratch(n_tok, shape.n_head, shape.r);
        let needs = [
            ("q_abs", q_abs, f32_bytes(n_tok * shape.n_head, shape.r)),
            ("q_pe", q_pe, 4 * pe_end),
            ("cache", cache, cache_bytes),
            ("positions", positions, 4 * u64::from(n_tok)),
            ("o_lat", o_lat, f32_bytes(n_tok * shape.n_head, shape.r)),
            ("acc", acc, 4 * acc_values),
            ("ml", ml, 8 * ml_pairs.max(1)),
        ];
        check_lens(LABEL, &needs, String::new)?;
        let head_groups = shape.n_head.div_ceil(HEADS);
        let workgroups = n_tok
            .checked_mul(head_groups)
            .and_then(|n| n.checked_mul(split.n_chunks))
            .ok_or_else(|| gpu_error(LABEL, format!("too many workgroups for {split:?}")))?;
        let groups = grid_for(gpu, LABEL, workgroups)?;
        let params = AttentionParams {
            n_head: shape.n_head,
            r: shape.r,
            dr: shape.dr,
            n_tok,
            kq_scale,
            q_pe_stride: pe.stride,
            q_pe_offset: pe.offset,
            n_chunks: split.n_chunks,
            min_chunk: split.min_chunk,
            _pad: [0; 3],
        };
        let out = if split.n_chunks == 1 { o_lat } else { acc };
        let family = &self.chunks[cache_type.index()];
        let chunks = family.bind(
            gpu,
            &[q_abs, q_pe, cache, positions, out, ml],
            bytemuck::bytes_of(&params),
            groups,
        )?;
        if split.n_chunks == 1 {
            return Ok(vec![chunks]);
        }
        let merge_params = MergeParams {
            n_head: shape.n_head,
            r: shape.r,
            n_tok,
            n_chunks: split.n_chunks,
            min_chunk: split.min_chunk,
            _pad: [0; 3],
        };
        let threads = n_tok * shape.n_head * shape.r;
        let merge = self.merge.bind(
            gpu,
            &[acc, ml, positions, o_lat],
            bytemuck::bytes_of(&merge_params),
            grid_for(gpu, MERGE_LABEL, threads.div_ceil(64))?,
        )?;
        Ok(vec![chunks, merge])
    }

    /// Returns `o_lat [H, r]` computed on the GPU for `q_abs [H, r]`, `q_pe [H, dr]` and the
    /// first `n_pos` rows of `cache [n_ctx, r + dr]`, stored as `cache_type` (f16: each value
    /// rounded to nearest, ties to even, as it is uploaded) and split as `split`.
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
        cache_type: CacheType,
        split: Split,
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
        let cache_buffer = match cache_type {
            CacheType::F32 => upload_f32(gpu, "attention.cache", cache)?,
            CacheType::F16 => {
                let halves: Vec<half::f16> =
                    cache.iter().map(|&v| half::f16::from_f32(v)).collect();
                gpu.upload(
                    "attention.cache",
                    bytemuck::cast_slice(&halves),
                    wgpu::BufferUsages::STORAGE,
                )?
            }
        };
        let o_lat = output_buffer(gpu, "attention.o_lat", size_of_val(q_abs) as u64)?;
        let (acc_values, ml_pairs) = split.scratch(1, shape.n_head, shape.r);
        let acc = output_buffer(gpu, "attention.acc", 4 * acc_values)?;
        let ml = output_buffer(gpu, "attention.ml", 8 * ml_pairs.max(1))?;
        let positions = gpu.upload(
            "attention.positions",
            bytemuck::bytes_of(&(n_pos - 1)),
            wgpu::BufferUsages::STORAGE,
        )?;
        let dispatches = self.bind(
            gpu,
            [
                (&q_abs_buffer).into(),
                (&q_pe_buffer).into(),
                (&cache_buffer).into(),
                (&positions).into(),
                (&o_lat).into(),
                (&acc).into(),
                (&ml).into(),
            ],
            shape,
            QPeLayout {
                stride: shape.dr,
                offset: 0,
            },
            1,
            n_pos,
            kq_scale,
            cache_type,
            split,
        )?;
        submit_all(gpu, LABEL, &dispatches)?;
        gpu.read_f32("attention.o_lat", &o_lat, q_abs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        for ty in CacheType::ALL {
            let source = format!("{}\n{SOURCE}", ty.wgsl());
            let span = super::super::elementwise::validated_params_size(LABEL, &source);
            assert_eq!(span, size_of::<AttentionParams>());
        }
        let span = super::super::elementwise::validated_params_size(MERGE_LABEL, MERGE_SOURCE);
        assert_eq!(span, size_of::<MergeParams>());
    }

    #[test]
    fn limits_match_the_wgsl() {
        assert!(SOURCE.contains(&format!("const MAX_R: u32 = {MAX_R}u;")));
        assert!(SOURCE.contains(&format!("const MAX_DR: u32 = {MAX_DR}u;")));
        assert!(SOURCE.contains(&format!("const TILE: u32 = {TILE}u;")));
        assert!(SOURCE.contains(&format!("const HEADS: u32 = {HEADS}u;")));
        assert!(SOURCE.contains(&format!(
            "const MAX_ROW_QUADS: u32 = {}u;",
            (MAX_R + MAX_DR) / 4
        )));
        assert!(SOURCE.contains(&format!(
            "var<workgroup> query: array<vec4<f32>, {}>;",
            HEADS * (MAX_R + MAX_DR) / 4
        )));
    }

    #[test]
    fn a_split_fills_the_target_and_stops_at_a_batch() {
        // V2-Lite decode: 4 head groups, 64 chunks at a 4096 context.
        let target = TARGET_WORKGROUPS;
        assert_eq!(
            Split::for_batch(1, 16, 4096, target),
            Split {
                n_chunks: 64,
                min_chunk: TILE
            }
        );
        // A short context has at most one chunk per tile.
        assert_eq!(Split::for_batch(1, 4, 64, target).n_chunks, 2);
        // A prefill batch fills the GPU by itself.
        assert_eq!(Split::for_batch(512, 16, 4096, target), Split::NONE);
        // Two cores: four workgroups.
        assert_eq!(Split::for_batch(1, 4, 4096, 4).n_chunks, 4);
        assert_eq!(Split::NONE.scratch(7, 16, 512), (0, 0));
        let split = Split::for_batch(1, 16, 4096, target);
        assert_eq!(split.scratch(1, 16, 512), (64 * 16 * 512, 64 * 16));
    }
}
