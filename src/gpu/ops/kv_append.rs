//! `kv_append`: writes the K/V rows of `n_tok` new tokens into a standard K/V cache at each
//! token's position (dense `llama` / `qwen2` models, read by `attention` in its GQA form); see
//! `shaders/kernels/kv_append.wgsl`.

use bytemuck::{Pod, Zeroable};
use wgpu::BufferUsages;

use super::cache_type::CacheType;
use super::elementwise::{
    Family, check_lens, gpu_error, grid_for, len_u32, submit_all, upload_f32,
};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "kv_append";

const SOURCE: &str = include_str!("../../../shaders/kernels/kv_append.wgsl");

/// `kv_append.wgsl` after the rotary angle code it shares with `rope` and the cache type's
/// element code.
fn source(cache_type: CacheType) -> String {
    format!("{}\n{}\n{SOURCE}", super::rope::ANGLE, cache_type.wgsl())
}

/// The rope folded into `kv_append`: the first `2 n_pairs` values of every `head_dim`-value head
/// of k as it is written, and of q (`q_heads` heads per token) in place; adjacent pairs or, with
/// `neox`, halves (as [`super::rope::RopeLayout`] with offset 0).
#[derive(Clone, Copy, Debug)]
pub struct KvRope<'a> {
    /// The frequency table of [`super::rope::upload_freqs`], at least `n_pairs` entries.
    pub turns: Binding<'a>,
    pub q: Binding<'a>,
    pub q_heads: u32,
    pub head_dim: u32,
    pub n_pairs: u32,
    pub neox: bool,
}

/// Threads per workgroup; must equal `WORKGROUP_SIZE` in the WGSL file.
const WORKGROUP_SIZE: u32 = 64;

/// Mirrors the WGSL `Params` struct (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct KvAppendParams {
    n_tok: u32,
    width: u32,
    n_ctx: u32,
    rope: u32,
    head_dim: u32,
    n_pairs: u32,
    neox: u32,
    q_heads: u32,
}

/// The compiled `kv_append` pipelines, one per cache type.
pub struct KvAppend {
    families: Vec<Family>,
}

impl KvAppend {
    pub fn new(gpu: &Gpu) -> Result<KvAppend> {
        let params = size_of::<KvAppendParams>() as u64;
        Ok(KvAppend {
            families: super::cache_type::families(gpu, LABEL, source, (4, 3), params)?,
        })
    }

    /// The dispatch writing `k_new`, `v_new` `[n_tok, width]` (`width = H_kv · hd`, a multiple
    /// of 4, as is hd) into rows `positions[t]` of `k_cache`, `v_cache` `[n_ctx, width]` (values
    /// of `cache_type`); positions are read when it runs and rows at or past `n_ctx` are not
    /// written.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        gpu: &Gpu,
        [k_new, v_new, positions, k_cache, v_cache]: [Binding<'_>; 5],
        width: u32,
        n_tok: u32,
        n_ctx: u32,
        rope: Option<KvRope<'_>>,
        cache_type: CacheType,
    ) -> Result<Dispatch> {
        let head_dim = rope.map_or(4, |r| r.head_dim);
        if !width.is_multiple_of(4) || !head_dim.is_multiple_of(4) {
            return Err(gpu_error(
                LABEL,
                format!("width {width} and head_dim {head_dim} must be multiples of 4"),
            ));
        }
        let kv_threads = u64::from(n_tok) * u64::from(width / 4);
        let q_pairs = rope.map_or(0, |r| {
            u64::from(n_tok) * u64::from(r.q_heads) * u64::from(r.n_pairs)
        });
        if let Some(r) = rope {
            let fits = r.head_dim > 0
                && 2 * r.n_pairs <= r.head_dim
                && width.is_multiple_of(r.head_dim)
                && r.turns.len() >= 16 * u64::from(r.n_pairs)
                && r.q.len() >= 4 * u64::from(n_tok) * u64::from(r.q_heads * r.head_dim);
            if !fits {
                return Err(gpu_error(
                    LABEL,
                    format!(
                        "rope of {} pairs in heads of {} over width {width}, {} q heads: \
                         shapes or buffers do not fit",
                        r.n_pairs, r.head_dim, r.q_heads
                    ),
                ));
            }
        }
        let threads = kv_threads + q_pairs;
        if threads == 0 || n_ctx == 0 {
            return Err(gpu_error(
                LABEL,
                format!("{n_tok} tokens of width {width} into {n_ctx} rows"),
            ));
        }
        let threads = u32::try_from(threads)
            .map_err(|_| gpu_error(LABEL, format!("{threads} values in one dispatch")))?;
        let new_bytes = 4 * u64::from(n_tok) * u64::from(width);
        let cache_bytes = cache_type.value_bytes() * u64::from(n_ctx) * u64::from(width);
        let needs = [
            ("k_new", k_new, new_bytes),
            ("v_new", v_new, new_bytes),
            ("positions", positions, 4 * u64::from(n_tok)),
            ("k_cache", k_cache, cache_bytes),
            ("v_cache", v_cache, cache_bytes),
        ];
        check_lens(LABEL, &needs, || {
            format!("n_tok = {n_tok}, width = {width}, n_ctx = {n_ctx} ")
        })?;
        if u64::from(n_ctx) * u64::from(width) > u64::from(u32::MAX) {
            return Err(gpu_error(
                LABEL,
                format!("a cache of {n_ctx} rows of {width} values overflows u32 indices"),
            ));
        }
        let groups = grid_for(gpu, LABEL, threads.div_ceil(WORKGROUP_SIZE))?;
        let params = KvAppendParams {
            n_tok,
            width,
            n_ctx,
            rope: u32::from(rope.is_some()),
            head_dim: rope.map_or(1, |r| r.head_dim),
            n_pairs: rope.map_or(0, |r| r.n_pairs),
            neox: u32::from(rope.is_some_and(|r| r.neox)),
            q_heads: rope.map_or(0, |r| r.q_heads),
        };
        // Without a rope the kernel reads neither: k_new and the k cache stand in.
        let (turns, q) = rope.map_or((k_new, k_cache), |r| (r.turns, r.q));
        self.families[cache_type.index()].bind(
            gpu,
            &[k_new, v_new, positions, turns, k_cache, v_cache, q],
            bytemuck::bytes_of(&params),
            groups,
        )
    }

    /// Returns the f32 caches `(k_cache, v_cache)` `[n_ctx, width]` after writing `k_new`,
    /// `v_new` `[n_tok, width]` (`n_tok = positions.len()`) into rows `positions` on the GPU;
    /// every position must be below `n_ctx = k_cache.len() / width`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        gpu: &Gpu,
        k_new: &[f32],
        v_new: &[f32],
        positions: &[u32],
        k_cache: &[f32],
        v_cache: &[f32],
        width: u32,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let w = width as usize;
        let fits = w > 0
            && k_new.len() == positions.len() * w
            && v_new.len() == k_new.len()
            && k_cache.len().is_multiple_of(w)
            && v_cache.len() == k_cache.len()
            && !k_cache.is_empty();
        if !fits {
            return Err(gpu_error(
                LABEL,
                format!(
                    "k_new {}, v_new {}, k_cache {}, v_cache {} values and {} positions do \
                     not fit width {width}",
                    k_new.len(),
                    v_new.len(),
                    k_cache.len(),
                    v_cache.len(),
                    positions.len()
                ),
            ));
        }
        let n_ctx = len_u32(gpu, LABEL, k_cache.len())? / width;
        if let Some(p) = positions.iter().find(|&&p| p >= n_ctx) {
            return Err(gpu_error(
                LABEL,
                format!("position {p} is outside the cache of {n_ctx} rows"),
            ));
        }
        if positions.is_empty() {
            return Ok((k_cache.to_vec(), v_cache.to_vec()));
        }
        len_u32(gpu, LABEL, k_new.len())?;
        let n_tok = positions.len() as u32; // fewer than k_new's values
        let k_new = upload_f32(gpu, "kv_append.k_new", k_new)?;
        let v_new = upload_f32(gpu, "kv_append.v_new", v_new)?;
        let positions = gpu.upload(
            "kv_append.positions",
            bytemuck::cast_slice(positions),
            BufferUsages::STORAGE,
        )?;
        let k_buffer = upload_f32(gpu, "kv_append.k_cache", k_cache)?;
        let v_buffer = upload_f32(gpu, "kv_append.v_cache", v_cache)?;
        let dispatch = self.bind(
            gpu,
            [
                (&k_new).into(),
                (&v_new).into(),
                (&positions).into(),
                (&k_buffer).into(),
                (&v_buffer).into(),
            ],
            width,
            n_tok,
            n_ctx,
            None,
            CacheType::F32,
        )?;
        submit_all(gpu, LABEL, [&dispatch])?;
        Ok((
            gpu.read_f32("kv_append.k_cache", &k_buffer, k_cache.len())?,
            gpu.read_f32("kv_append.v_cache", &v_buffer, v_cache.len())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        for ty in CacheType::ALL {
            let span = super::super::elementwise::validated_params_size(LABEL, &source(ty));
            assert_eq!(span, size_of::<KvAppendParams>());
        }
    }
}
