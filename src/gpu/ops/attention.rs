//! `attention`: causal attention over a cache, MQA/GQA-shaped: a workgroup takes 4 query heads
//! that share a cached head and a chunk of a query's positions, with an online, max-subtracted
//! softmax; when positions are split over several chunks, `attention_merge` combines them. See
//! `shaders/kernels/attention.wgsl` and `attention_merge.wgsl`. A query at position p reads
//! cache rows `0..=p`. Two forms ([`KvLayout`]): absorbed MLA over the latent cache (spec §4.7)
//! and grouped-query attention over a K/V cache (dense llama / qwen2, driven through
//! `plan_dense`).
//!
//! MLA, per head h, over cached positions `t < n_pos` (a query at position p has `n_pos = p + 1`):
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
use crate::model::AttnTemperature;

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "attention";
/// The merge kernel's name.
pub const MERGE_LABEL: &str = "attention_merge";

const SOURCE: &str = include_str!("../../../shaders/kernels/attention.wgsl");
const MERGE_SOURCE: &str = include_str!("../../../shaders/kernels/attention_merge.wgsl");

/// Largest value width (MLA: the latent's r; GQA: head_dim) the kernel supports (`MAX_VALUE`).
pub const MAX_VALUE: u32 = 512;
/// Largest key width (MLA: r + dr; GQA: head_dim) the kernel supports (4 × `MAX_KEY_QUADS`).
pub const MAX_KEY: u32 = 576;
/// Positions per tile (`TILE` in the WGSL file): the smallest chunk a plan splits into.
pub const TILE: u32 = 32;
/// Query heads per workgroup (`HEADS`: one per vec4 component).
pub const HEADS: u32 = 4;
/// The shortest span a plan splits: up to 4 tiles of positions a workgroup takes in about the
/// time of the extra merge dispatch a split costs, so shorter contexts run unsplit (and take
/// the dispatch counts they had before splits existed).
pub const MIN_SPLIT_SPAN: u32 = 4 * TILE;

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

/// Mirrors the WGSL `Params` struct of attention.wgsl (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AttentionParams {
    n_tok: u32,
    n_head: u32,
    n_head_kv: u32,
    kq_scale: f32,
    key_len: u32,
    value_len: u32,
    q_pe_stride: u32,
    q_pe_offset: u32,
    k_row: u32,
    v_row: u32,
    n_ctx: u32,
    n_chunks: u32,
    min_chunk: u32,
    /// Query temperature (`temp_length` 0: none).
    temp_scale: f32,
    temp_length: u32,
    _pad: u32,
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
    n_ctx: u32,
    _pad: [u32; 2],
}

/// Where keys and values live in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvLayout {
    /// MLA's latent cache: one row `[c_kv (value_len) ‖ k_pe]` per position is the key, its first
    /// `value_len` values the value (`k` and `v` bind the same buffer).
    Latent,
    /// Separate K and V caches of `n_head_kv` heads per position (row `[n_head_kv, key_len]`).
    Separate,
}

/// The factor on a query's scores: `kq_scale`, times the query temperature at the query's
/// position when the model has one (Mistral Large 3; [`AttnTemperature`]). An `f32` is a plain
/// `kq_scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreScale {
    pub kq_scale: f32,
    pub temperature: Option<AttnTemperature>,
}

impl From<f32> for ScoreScale {
    fn from(kq_scale: f32) -> ScoreScale {
        ScoreScale {
            kq_scale,
            temperature: None,
        }
    }
}

/// Head counts and widths of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// H: query heads, a multiple of `n_head_kv`.
    pub n_head: u32,
    /// Cached heads (MLA: 1).
    pub n_head_kv: u32,
    /// Values per key (MLA: r + dr; GQA: head_dim), a multiple of 4, at most [`MAX_KEY`].
    pub key_len: u32,
    /// Values per value (MLA: r; GQA: head_dim), a multiple of 4, at most [`MAX_VALUE`]; the
    /// query's first `value_len` values are in `q`, the rest (MLA's rope part) in `q_pe`.
    pub value_len: u32,
    pub layout: KvLayout,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

    /// The split a plan uses for `n_tok` queries of `shape` over at most `n_ctx` positions:
    /// enough chunks for `target` workgroups ([`target_workgroups`]), each at least a tile of
    /// positions (so a short context takes few chunks and the rest return at once), none for a
    /// batch that fills the GPU by itself or a span below [`MIN_SPLIT_SPAN`].
    pub fn for_batch(n_tok: u32, shape: &AttentionShape, n_ctx: u32, target: u32) -> Split {
        if n_ctx < MIN_SPLIT_SPAN {
            return Split::NONE;
        }
        let groups = n_tok.max(1) * shape.head_groups().max(1);
        let n_chunks = target.div_ceil(groups).min(n_ctx.div_ceil(TILE)).max(1);
        if n_chunks == 1 {
            return Split::NONE;
        }
        Split {
            n_chunks,
            min_chunk: TILE,
        }
    }

    /// The scratch a split needs for `n_tok` queries of `shape`: f32 values of the chunk
    /// accumulators and (m, l) pairs.
    pub fn scratch(self, n_tok: u32, shape: &AttentionShape) -> (u64, u64) {
        if self.n_chunks == 1 {
            return (0, 0);
        }
        let slots = u64::from(n_tok) * u64::from(self.n_chunks) * u64::from(shape.n_head);
        (slots * u64::from(shape.value_len), slots)
    }
}

impl AttentionShape {
    /// Absorbed MLA over a latent cache of rank `r` and rope width `dr`.
    pub fn mla(n_head: u32, r: u32, dr: u32) -> AttentionShape {
        AttentionShape {
            n_head,
            n_head_kv: 1,
            key_len: r + dr,
            value_len: r,
            layout: KvLayout::Latent,
        }
    }

    /// Grouped-query attention over K/V caches of `n_head_kv` heads of `head_dim`.
    pub fn gqa(n_head: u32, n_head_kv: u32, head_dim: u32) -> AttentionShape {
        AttentionShape {
            n_head,
            n_head_kv,
            key_len: head_dim,
            value_len: head_dim,
            layout: KvLayout::Separate,
        }
    }

    /// Workgroups per (query, chunk): 4 query heads of one cached head each.
    pub fn head_groups(&self) -> u32 {
        let per_kv = self.n_head / self.n_head_kv.max(1);
        self.n_head_kv * per_kv.div_ceil(HEADS)
    }

    /// Values per cache row of the keys and of the values.
    pub fn rows(&self) -> (u32, u32) {
        match self.layout {
            KvLayout::Latent => (self.key_len, self.key_len),
            KvLayout::Separate => (
                self.n_head_kv * self.key_len,
                self.n_head_kv * self.value_len,
            ),
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        let (k, v) = (self.key_len, self.value_len);
        if v == 0
            || v > MAX_VALUE
            || k < v
            || k > MAX_KEY
            || !k.is_multiple_of(4)
            || !v.is_multiple_of(4)
        {
            return Err(gpu_error(
                LABEL,
                format!(
                    "key width {k} and value width {v}: the kernel takes multiples of 4, \
                     values 4..={MAX_VALUE}, keys value..={MAX_KEY}"
                ),
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
        if self.layout == KvLayout::Latent && self.n_head_kv != 1 {
            return Err(gpu_error(LABEL, "a latent cache has one head".to_owned()));
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
        let source = |ty: CacheType| format!("{}\n{SOURCE}", ty.wgsl());
        let chunks = super::cache_type::families(gpu, LABEL, source, (5, 2), params)?;
        let merge_params = size_of::<MergeParams>() as u64;
        Ok(Attention {
            chunks,
            merge: Family::new(gpu, MERGE_LABEL, MERGE_SOURCE, "main", 3, 1, merge_params)?,
        })
    }

    /// The dispatches computing `out [n_tok, H, value_len]` for queries `q [n_tok, H,
    /// value_len]` (MLA: q_abs) with their rope parts (MLA) in `q_pe` laid out as `pe`, each
    /// token `i` over the rows `0..=positions[i]` of the caches `k` and `v` (values of
    /// `cache_type`, rows as [`AttentionShape::rows`]; MLA binds the latent cache as both;
    /// `positions` u32 `[n_tok]`, read when the dispatch runs, so one plan serves every decode
    /// step): one dispatch, or two with a [`Split`] of several chunks, which need `acc` and `ml`
    /// as [`Split::scratch`] says (any buffers otherwise). `n_ctx` bounds the positions the host
    /// may write; `out`, `acc` and `ml` must not alias the inputs or each other.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        gpu: &Gpu,
        [q, q_pe, k, v, positions, out, acc, ml]: [Binding<'_>; 8],
        shape: AttentionShape,
        pe: QPeLayout,
        n_tok: u32,
        n_ctx: u32,
        scale: impl Into<ScoreScale>,
        cache_type: CacheType,
        split: Split,
    ) -> Result<Vec<Dispatch>> {
        shape.check()?;
        let scale = scale.into();
        let (temp_scale, temp_length) = match scale.temperature {
            Some(t) => (
                t.scale,
                u32::try_from(t.length)
                    .map_err(|_| gpu_error(LABEL, format!("temperature length {}", t.length)))?,
            ),
            None => (0.0, 0),
        };
        if n_tok == 0 || n_ctx == 0 || split.n_chunks == 0 || split.min_chunk == 0 {
            return Err(gpu_error(
                LABEL,
                format!("attention for {n_tok} queries over {n_ctx} rows, {split:?}"),
            ));
        }
        let f32_bytes = |n: u32, width: u32| u64::from(n) * u64::from(width) * 4;
        let rope = shape.key_len - shape.value_len;
        let pe_end = if rope == 0 {
            0
        } else {
            u64::from(n_tok * shape.n_head).saturating_sub(1) * u64::from(pe.stride)
                + u64::from(pe.offset + rope)
        };
        let (k_row, v_row) = shape.rows();
        let cache_bytes = |row: u32| u64::from(n_ctx) * u64::from(row) * cache_type.value_bytes();
        let (acc_values, ml_pairs) = split.scratch(n_tok, &shape);
        let limit = gpu.limits.max_storage_buffer_binding_size;
        if 4 * acc_values > limit {
            return Err(gpu_error(
                LABEL,
                format!(
                    "{split:?} of {n_tok} queries needs {} bytes of chunk accumulators, more \
                     than one binding ({limit} bytes): use fewer chunks",
                    4 * acc_values
                ),
            ));
        }
        let heads_out = f32_bytes(n_tok * shape.n_head, shape.value_len);
        let needs = [
            ("q", q, heads_out),
            ("q_pe", q_pe, 4 * pe_end),
            ("k", k, cache_bytes(k_row)),
            ("v", v, cache_bytes(v_row)),
            ("positions", positions, 4 * u64::from(n_tok)),
            ("out", out, heads_out),
            ("acc", acc, 4 * acc_values),
            ("ml", ml, 8 * ml_pairs.max(1)),
        ];
        check_lens(LABEL, &needs, || {
            format!("{shape:?} with n_tok = {n_tok}, n_ctx = {n_ctx} ")
        })?;
        let workgroups = n_tok
            .checked_mul(shape.head_groups())
            .and_then(|n| n.checked_mul(split.n_chunks))
            .ok_or_else(|| gpu_error(LABEL, format!("too many workgroups for {split:?}")))?;
        let groups = grid_for(gpu, LABEL, workgroups)?;
        let params = AttentionParams {
            n_tok,
            n_head: shape.n_head,
            n_head_kv: shape.n_head_kv,
            kq_scale: scale.kq_scale,
            key_len: shape.key_len,
            value_len: shape.value_len,
            q_pe_stride: pe.stride,
            q_pe_offset: pe.offset,
            k_row,
            v_row,
            n_ctx,
            n_chunks: split.n_chunks,
            min_chunk: split.min_chunk,
            temp_scale,
            temp_length,
            _pad: 0,
        };
        let chunks_out = if split.n_chunks == 1 { out } else { acc };
        let family = &self.chunks[cache_type.index()];
        let chunks = family.bind(
            gpu,
            &[q, q_pe, k, v, positions, chunks_out, ml],
            bytemuck::bytes_of(&params),
            groups,
        )?;
        if split.n_chunks == 1 {
            return Ok(vec![chunks]);
        }
        let merge_params = MergeParams {
            n_head: shape.n_head,
            r: shape.value_len,
            n_tok,
            n_chunks: split.n_chunks,
            min_chunk: split.min_chunk,
            n_ctx,
            _pad: [0; 2],
        };
        let threads = n_tok * shape.n_head * shape.value_len;
        let merge = self.merge.bind(
            gpu,
            &[acc, ml, positions, out],
            bytemuck::bytes_of(&merge_params),
            grid_for(gpu, MERGE_LABEL, threads.div_ceil(64))?,
        )?;
        Ok(vec![chunks, merge])
    }

    /// Returns `out [n_tok, H, value_len]` computed on the GPU for queries `q [n_tok, H,
    /// value_len]` with their rope parts `q_pe [n_tok, H, key_len - value_len]` (MLA), query `i`
    /// at position `positions[i]`, over the cache `k` (and `v`, for [`KvLayout::Separate`]) of
    /// whole rows as [`AttentionShape::rows`], stored as `cache_type` (f16: each value rounded to
    /// nearest, ties to even, as it is uploaded) and split as `split`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        gpu: &Gpu,
        (q, q_pe): (&[f32], &[f32]),
        (k, v): (&[f32], &[f32]),
        positions: &[u32],
        shape: AttentionShape,
        scale: impl Into<ScoreScale>,
        cache_type: CacheType,
        split: Split,
    ) -> Result<Vec<f32>> {
        shape.check()?;
        let n_tok = positions.len();
        let heads = n_tok * shape.n_head as usize;
        let (k_row, v_row) = shape.rows();
        let n_ctx = k.len() / k_row as usize;
        let separate = shape.layout == KvLayout::Separate;
        let rope = (shape.key_len - shape.value_len) as usize;
        if q.len() != heads * shape.value_len as usize
            || q_pe.len() != heads * rope
            || k.len() != n_ctx * k_row as usize
            || (separate && v.len() != n_ctx * v_row as usize)
            || n_ctx == 0
            || n_tok == 0
        {
            return Err(gpu_error(
                LABEL,
                format!(
                    "q {}, q_pe {}, k {}, v {} values and {n_tok} positions do not fit {shape:?}",
                    q.len(),
                    q_pe.len(),
                    k.len(),
                    v.len(),
                ),
            ));
        }
        if let Some(p) = positions.iter().find(|&&p| p as usize >= n_ctx) {
            return Err(gpu_error(
                LABEL,
                format!("position {p} is outside the cache of {n_ctx} rows"),
            ));
        }
        len_u32(gpu, LABEL, k.len())?;
        let cache = |label: &str, values: &[f32]| match cache_type {
            CacheType::F32 => upload_f32(gpu, label, values),
            CacheType::F16 => {
                let halves: Vec<half::f16> =
                    values.iter().map(|&x| half::f16::from_f32(x)).collect();
                gpu.upload(
                    label,
                    bytemuck::cast_slice(&halves),
                    wgpu::BufferUsages::STORAGE,
                )
            }
        };
        // A buffer is at least 4 bytes even when there is no rope part.
        let q_pe_values: &[f32] = if q_pe.is_empty() { &[0.0] } else { q_pe };
        let q_buffer = upload_f32(gpu, "attention.q", q)?;
        let q_pe_buffer = upload_f32(gpu, "attention.q_pe", q_pe_values)?;
        let k_buffer = cache("attention.k", k)?;
        let v_buffer = if separate {
            Some(cache("attention.v", v)?)
        } else {
            None
        };
        let out = output_buffer(gpu, "attention.out", size_of_val(q) as u64)?;
        let (acc_values, ml_pairs) = split.scratch(n_tok as u32, &shape);
        let acc = output_buffer(gpu, "attention.acc", 4 * acc_values)?;
        let ml = output_buffer(gpu, "attention.ml", 8 * ml_pairs.max(1))?;
        let positions_buffer = gpu.upload(
            "attention.positions",
            bytemuck::cast_slice(positions),
            wgpu::BufferUsages::STORAGE,
        )?;
        let dispatches = self.bind(
            gpu,
            [
                (&q_buffer).into(),
                (&q_pe_buffer).into(),
                (&k_buffer).into(),
                v_buffer.as_ref().unwrap_or(&k_buffer).into(),
                (&positions_buffer).into(),
                (&out).into(),
                (&acc).into(),
                (&ml).into(),
            ],
            shape,
            QPeLayout {
                stride: rope as u32,
                offset: 0,
            },
            n_tok as u32,
            n_ctx as u32,
            scale,
            cache_type,
            split,
        )?;
        submit_all(gpu, LABEL, &dispatches)?;
        gpu.read_f32("attention.out", &out, q.len())
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
        assert!(SOURCE.contains(&format!("const MAX_VALUE: u32 = {MAX_VALUE}u;")));
        assert!(SOURCE.contains(&format!("const TILE: u32 = {TILE}u;")));
        assert!(SOURCE.contains(&format!("const HEADS: u32 = {HEADS}u;")));
        assert!(SOURCE.contains(&format!("const MAX_KEY_QUADS: u32 = {}u;", MAX_KEY / 4)));
        assert!(SOURCE.contains(&format!(
            "var<workgroup> query: array<vec4<f32>, {}>;",
            HEADS * MAX_KEY / 4
        )));
    }

    #[test]
    fn a_split_fills_the_target_and_stops_at_a_batch() {
        // V2-Lite decode: 4 head groups, 64 chunks at a 4096 context.
        let target = TARGET_WORKGROUPS;
        let v2_lite = AttentionShape::mla(16, 512, 64);
        assert_eq!(
            Split::for_batch(1, &v2_lite, 4096, target),
            Split {
                n_chunks: 64,
                min_chunk: TILE
            }
        );
        // A short context has at most one chunk per tile, and none below MIN_SPLIT_SPAN.
        let tiny = AttentionShape::mla(4, 64, 16);
        assert_eq!(Split::for_batch(1, &tiny, 256, target).n_chunks, 8);
        assert_eq!(Split::for_batch(1, &tiny, 64, target), Split::NONE);
        // A prefill batch fills the GPU by itself.
        assert_eq!(Split::for_batch(512, &v2_lite, 4096, target), Split::NONE);
        // Two cores: four workgroups.
        assert_eq!(Split::for_batch(1, &tiny, 4096, 4).n_chunks, 4);
        assert_eq!(Split::NONE.scratch(7, &v2_lite), (0, 0));
        let split = Split::for_batch(1, &v2_lite, 4096, target);
        assert_eq!(split.scratch(1, &v2_lite), (64 * 16 * 512, 64 * 16));
        // SmolLM2: 9 query heads over 3 kv heads, one group of 3 each; Qwen2-7B: 28 over 4,
        // two groups of 4 and 3 each.
        assert_eq!(AttentionShape::gqa(9, 3, 64).head_groups(), 3);
        assert_eq!(AttentionShape::gqa(28, 4, 128).head_groups(), 8);
    }
}
