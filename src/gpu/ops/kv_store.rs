//! `kv_store`: normalises the latent part of `n_tok` new `attn_kv_a_mqa` outputs and writes them,
//! with their roped key, into the layer's latent cache at each token's position; see
//! `shaders/kernels/kv_store.wgsl`. With a [`QRope`] the same dispatch ropes k_pe as it writes it
//! and q_pe of every head in place (the decode step's two `rope` dispatches folded in).

use bytemuck::{Pod, Zeroable};

use super::cache_type::CacheType;
use super::elementwise::{Family, gpu_error, grid_for};
use crate::Result;
use crate::gpu::Gpu;
use crate::gpu::dispatch::{Binding, Dispatch};

/// The kernel's name: the WGSL file stem.
pub const LABEL: &str = "kv_store";

const SOURCE: &str = include_str!("../../../shaders/kernels/kv_store.wgsl");

/// `kv_store.wgsl` after the rotary angle code it shares with `rope` and the cache type's
/// element code.
fn source(cache_type: CacheType) -> String {
    format!("{}\n{}\n{SOURCE}", super::rope::ANGLE, cache_type.wgsl())
}

/// Mirrors the WGSL `Params` struct (48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct KvStoreParams {
    r: u32,
    dr: u32,
    n_tok: u32,
    n_ctx: u32,
    eps: f32,
    rope: u32,
    q_heads: u32,
    q_stride: u32,
    q_offset: u32,
    _pad: [u32; 3],
}

/// The rope folded into `kv_store` (adjacent pairs, as `rope` with `neox` false): k_pe as it is
/// written and, in place, q_pe of `heads` heads of `stride` values per token, starting at
/// `offset` inside each head.
#[derive(Clone, Copy, Debug)]
pub struct QRope<'a> {
    /// The frequency table of [`super::rope::upload_freqs`], at least dr / 2 entries.
    pub turns: Binding<'a>,
    pub q: Binding<'a>,
    pub heads: u32,
    pub stride: u32,
    pub offset: u32,
}

/// The compiled `kv_store` pipelines, one per cache type.
pub struct KvStore {
    families: Vec<Family>,
}

impl KvStore {
    pub fn new(gpu: &Gpu) -> Result<KvStore> {
        let params = size_of::<KvStoreParams>() as u64;
        Ok(KvStore {
            families: super::cache_type::families(gpu, LABEL, source, (4, 2), params)?,
        })
    }

    /// The dispatch writing `kv [n_tok, r + dr]` (normalised by `w [r]`) into rows
    /// `positions[t]` of `cache [n_ctx, r + dr]` (values of `cache_type`; r and dr multiples of
    /// 4); positions are read when it runs. With `rope`, k_pe is roped as it is written and q_pe
    /// in place ([`QRope`]).
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        gpu: &Gpu,
        [kv, w, positions, cache]: [Binding<'_>; 4],
        r: u32,
        dr: u32,
        n_tok: u32,
        n_ctx: u32,
        eps: f32,
        rope: Option<QRope<'_>>,
        cache_type: CacheType,
    ) -> Result<Dispatch> {
        if !r.is_multiple_of(4) || !dr.is_multiple_of(4) {
            return Err(gpu_error(
                LABEL,
                format!("r = {r} and dr = {dr} must be multiples of 4"),
            ));
        }
        let row = 4 * u64::from(r + dr);
        let cache_row = cache_type.value_bytes() * u64::from(r + dr);
        // Without a rope the kernel reads neither: kv and the cache stand in.
        let (turns, q, q_bytes, turns_bytes) = match rope {
            Some(rope) => {
                let per_token = u64::from(rope.heads) * u64::from(rope.stride);
                let reach = u64::from(rope.offset) + u64::from(dr);
                if rope.heads > 0 && reach > u64::from(rope.stride) {
                    return Err(gpu_error(
                        LABEL,
                        format!(
                            "q_pe at {} + {dr} exceeds a {}-value head",
                            rope.offset, rope.stride
                        ),
                    ));
                }
                (
                    rope.turns,
                    rope.q,
                    4 * per_token * u64::from(n_tok),
                    16 * u64::from(dr / 2),
                )
            }
            None => (kv, cache, 0, 0),
        };
        if rope.is_some() && !dr.is_multiple_of(2) {
            return Err(gpu_error(LABEL, format!("rope needs an even dr, not {dr}")));
        }
        let needs = [
            ("kv", kv, row * u64::from(n_tok)),
            ("w", w, 4 * u64::from(r)),
            ("positions", positions, 4 * u64::from(n_tok)),
            ("cache", cache, cache_row * u64::from(n_ctx)),
        ];
        for (name, binding, bytes) in [("q", q, q_bytes), ("turns", turns, turns_bytes)] {
            if binding.len() < bytes {
                return Err(gpu_error(
                    LABEL,
                    format!("{name} has {} bytes, needs {bytes}", binding.len()),
                ));
            }
        }
        for (name, binding, bytes) in needs {
            if binding.len() < bytes || bytes == 0 {
                return Err(gpu_error(
                    LABEL,
                    format!("{name} has {} bytes, needs {bytes}", binding.len()),
                ));
            }
        }
        let groups = grid_for(gpu, LABEL, n_tok)?;
        let params = KvStoreParams {
            r,
            dr,
            n_tok,
            n_ctx,
            eps,
            rope: u32::from(rope.is_some()),
            q_heads: rope.map_or(0, |r| r.heads),
            q_stride: rope.map_or(0, |r| r.stride),
            q_offset: rope.map_or(0, |r| r.offset),
            _pad: [0; 3],
        };
        self.families[cache_type.index()].bind(
            gpu,
            &[kv, w, positions, turns, cache, q],
            bytemuck::bytes_of(&params),
            groups,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_validates_and_params_match() {
        for ty in CacheType::ALL {
            let span = super::super::elementwise::validated_params_size(LABEL, &source(ty));
            assert_eq!(span, size_of::<KvStoreParams>());
        }
    }
}
