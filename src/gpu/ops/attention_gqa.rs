//! `attention_gqa`: causal grouped-query attention over a standard K/V cache (dense `llama` and
//! `qwen2` models), one workgroup per (query token, head) with an online, max-subtracted
//! softmax; see `shaders/kernels/attention_gqa.wgsl`. A query at position p reads cache rows
//! `0..=p`; query head h reads K/V head `h / (H / H_kv)`:
//! `out[i, h] = Σ_t softmax_t(scale · q[i, h]·k[t, g]) · v[t, g]`.

use bytemuck::{Pod, Zeroable};

use super::elementwise::{
    Family, check_lens, gpu_error, grid_for, len_u32, output_buffer, submit_all, upload_f32,
};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "attention_gqa";

const SOURCE: &str = include_str!("../../../shaders/kernels/attention_gqa.wgsl");

/// Largest head width the kernel supports (`MAX_HEAD_DIM` in the WGSL file).
pub const MAX_HEAD_DIM: u32 = 256;

/// Mirrors the WGSL `Params` struct (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct GqaParams {
    n_tok: u32,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    n_ctx: u32,
    scale: f32,
    _pad: [u32; 2],
}

/// Head counts and width of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GqaShape {
    /// H: query heads, a multiple of `n_head_kv`.
    pub n_head: u32,
    /// H_kv: key/value heads.
    pub n_head_kv: u32,
    /// hd: width of every head, `1..=`[`MAX_HEAD_DIM`].
    pub head_dim: u32,
}

impl GqaShape {
    fn check(&self) -> Result<()> {
        if self.head_dim == 0 || self.head_dim > MAX_HEAD_DIM {
            return Err(gpu_error(
                LABEL,
                format!("head_dim = {} outside 1..={MAX_HEAD_DIM}", self.head_dim),
            ));
        }
        if self.n_head == 0 || self.n_head_kv == 0 || !self.n_head.is_multiple_of(self.n_head_kv) {
            return Err(gpu_error(
                LABEL,
                format!(
                    "{} query heads are not a positive multiple of {} kv heads",
                    self.n_head, self.n_head_kv
                ),
            ));
        }
        Ok(())
    }

    /// f32 values of one cache row, `H_kv · hd`.
    pub fn kv_width(&self) -> u64 {
        u64::from(self.n_head_kv) * u64::from(self.head_dim)
    }

    /// f32 values of one token's queries (and outputs), `H · hd`.
    pub fn q_width(&self) -> u64 {
        u64::from(self.n_head) * u64::from(self.head_dim)
    }
}

/// A compiled `attention_gqa` pipeline.
pub struct AttentionGqa {
    family: Family,
}

impl AttentionGqa {
    pub fn new(gpu: &Gpu) -> Result<AttentionGqa> {
        let params = size_of::<GqaParams>() as u64;
        Ok(AttentionGqa {
            family: Family::new(gpu, LABEL, SOURCE, "main", 4, 1, params)?,
        })
    }

    /// The dispatch computing `out [n_tok, H, hd]` for queries `q [n_tok, H, hd]`, each token
    /// `i` over the rows `0..=positions[i]` of `k`, `v` `[n_ctx, H_kv, hd]` (f32 buffers;
    /// `positions` u32 `[n_tok]`, read when the dispatch runs, so one dispatch serves every
    /// decode step; rows past `n_ctx` are never read). `out` must not alias the inputs.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        gpu: &Gpu,
        [q, k, v, positions, out]: [Binding<'_>; 5],
        shape: GqaShape,
        n_tok: u32,
        n_ctx: u32,
        scale: f32,
    ) -> Result<Dispatch> {
        shape.check()?;
        if n_tok == 0 || n_ctx == 0 {
            return Err(gpu_error(
                LABEL,
                format!("attention for {n_tok} queries over a cache of {n_ctx} rows"),
            ));
        }
        let q_bytes = 4 * u64::from(n_tok) * shape.q_width();
        let kv_bytes = 4 * u64::from(n_ctx) * shape.kv_width();
        let needs = [
            ("q", q, q_bytes),
            ("k", k, kv_bytes),
            ("v", v, kv_bytes),
            ("positions", positions, 4 * u64::from(n_tok)),
            ("out", out, q_bytes),
        ];
        check_lens(LABEL, &needs, || {
            format!("{shape:?} with n_tok = {n_tok}, n_ctx = {n_ctx} ")
        })?;
        let n_groups = n_tok.checked_mul(shape.n_head).ok_or_else(|| {
            gpu_error(
                LABEL,
                format!("{n_tok} tokens × {} heads overflow", shape.n_head),
            )
        })?;
        let groups = grid_for(gpu, LABEL, n_groups)?;
        let params = GqaParams {
            n_tok,
            n_head: shape.n_head,
            n_head_kv: shape.n_head_kv,
            head_dim: shape.head_dim,
            n_ctx,
            scale,
            _pad: [0; 2],
        };
        self.family.bind(
            gpu,
            &[q, k, v, positions, out],
            bytemuck::bytes_of(&params),
            groups,
        )
    }

    /// Returns `out [n_tok, H, hd]` computed on the GPU for `q [n_tok, H, hd]` with
    /// `n_tok = positions.len()`, over the caches `k`, `v` `[n_ctx, H_kv, hd]`
    /// (`n_ctx = k.len() / (H_kv · hd)`); every position must be below `n_ctx`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        gpu: &Gpu,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        positions: &[u32],
        shape: GqaShape,
        scale: f32,
    ) -> Result<Vec<f32>> {
        shape.check()?;
        let kv_width = shape.kv_width() as usize;
        let n_ctx = k.len() / kv_width;
        if q.len() as u64 != positions.len() as u64 * shape.q_width()
            || k.len() != n_ctx * kv_width
            || v.len() != k.len()
            || n_ctx == 0
        {
            return Err(gpu_error(
                LABEL,
                format!(
                    "q {}, k {}, v {} values and {} positions do not fit {shape:?}",
                    q.len(),
                    k.len(),
                    v.len(),
                    positions.len()
                ),
            ));
        }
        if let Some(p) = positions.iter().find(|&&p| p as usize >= n_ctx) {
            return Err(gpu_error(
                LABEL,
                format!("position {p} is outside the cache of {n_ctx} rows"),
            ));
        }
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        len_u32(gpu, LABEL, q.len())?;
        len_u32(gpu, LABEL, k.len())?;
        // Both fit u32: q holds more values than there are tokens, k more than rows.
        let (n_tok, n_ctx) = (positions.len() as u32, n_ctx as u32);
        let q_buffer = upload_f32(gpu, "attention_gqa.q", q)?;
        let k_buffer = upload_f32(gpu, "attention_gqa.k", k)?;
        let v_buffer = upload_f32(gpu, "attention_gqa.v", v)?;
        let positions = gpu.upload(
            "attention_gqa.positions",
            bytemuck::cast_slice(positions),
            wgpu::BufferUsages::STORAGE,
        )?;
        let out = output_buffer(gpu, "attention_gqa.out", size_of_val(q) as u64)?;
        let dispatch = self.bind(
            gpu,
            [
                (&q_buffer).into(),
                (&k_buffer).into(),
                (&v_buffer).into(),
                (&positions).into(),
                (&out).into(),
            ],
            shape,
            n_tok,
            n_ctx,
            scale,
        )?;
        submit_all(gpu, LABEL, [&dispatch])?;
        gpu.read_f32("attention_gqa.out", &out, q.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        let span = super::super::elementwise::validated_params_size(LABEL, SOURCE);
        assert_eq!(span, size_of::<GqaParams>());
    }

    #[test]
    fn limits_match_the_wgsl() {
        assert!(SOURCE.contains(&format!("const MAX_HEAD_DIM: u32 = {MAX_HEAD_DIM}u;")));
        assert!(SOURCE.contains(&format!("const WORKGROUP_SIZE: u32 = {MAX_HEAD_DIM}u;")));
    }
}
